/*
 * test_tokens.c - unit tests for the token cache (server/tokens.h): a
 * verified token names its caller with the record as rules see it, a
 * repeated token is answered from the cache and still follows its record,
 * a tokenKey change signs the token out at once, and bad or expired
 * tokens are refused.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "auth.h"
#include "server/tokens.h"
#include "store/schema.h"
#include "store/store.h"
#include "testlib.h"

static char tk_dir[256];
static struct schema *tk_sch;
static struct store *tk_st;
static struct auth_keys tk_keys;
static struct tokens *tk;

static void tk_open(void)
{
	struct err e = ERR_INIT;

	tl_store_setup(tk_dir, sizeof(tk_dir), "tokens", NULL, 0, &tk_sch,
		       &tk_st);
	cr_assert_eq(auth_keys_load_or_create(tk_dir, &tk_keys, &e), 0, "%s",
		     e.msg);
	tk = tokens_new(tk_st, tk_sch, &tk_keys);
	cr_assert_not_null(tk);
}

static void tk_close(void)
{
	tokens_free(tk);
	tk = NULL;
	auth_keys_wipe(&tk_keys);
	tl_store_teardown(tk_dir, &tk_sch, &tk_st);
}

TestSuite(tokens, .init = tk_open, .fini = tk_close);

/* A user with tokenKey key and a token for it, issued at now. */
static char *tk_user(const char *key, int64_t ttl, int64_t now,
		     char id[ID_LEN + 1])
{
	struct err e = ERR_INIT;
	char json[256], *token = NULL;

	snprintf(json, sizeof(json),
		 "{\"email\": \"u@example.com\", \"password\": \"x\", "
		 "\"name\": \"Una\", \"tokenKey\": \"%s\"}", key);
	tl_put_new(tk_st, "users", json_loads(json, 0, NULL), STORE_CREATE,
		   NULL, id);
	cr_assert_eq(auth_token_issue(&tk_keys, "_pb_users_auth_", id, key, ttl,
				      now, &token, &e), 0, "%s", e.msg);
	return token;
}

/* tokens_check() on token: its code, and the caller's name (or ""). */
static int tk_check(const char *token, char *name, size_t n)
{
	struct http_auth a;
	struct err e = ERR_INIT;
	const char *v;
	int rc;

	memset(&a, 0, sizeof(a));
	rc = tokens_check(tk, token, &a, &e);
	v = json_string_value(json_object_get(a.record, "name"));
	snprintf(name, n, "%s", v ? v : "");
	if (!rc) {
		cr_assert_eq(a.kind, CALLER_USER);
		cr_assert_str_eq(a.collection_id, "_pb_users_auth_");
		cr_assert_null(json_object_get(a.record, "password"));
		cr_assert_null(json_object_get(a.record, "tokenKey"));
		cr_assert_str_eq(json_string_value(json_object_get(
				 a.record, "collectionName")), "users");
		cr_assert_str_eq(json_string_value(json_object_get(
				 a.record, "id")), a.id);
	}
	json_decref(a.record);
	return rc;
}

Test(tokens, a_token_names_its_caller_again_and_follows_the_record)
{
	char id[ID_LEN + 1], name[64], *token;

	token = tk_user("key-one-0123456789", 3600, (int64_t)time(NULL), id);
	cr_assert_eq(tk_check(token, name, sizeof(name)), 0);
	cr_assert_str_eq(name, "Una");
	/* From the cache, however many other records are written. */
	tl_create(tk_st, "ai_prompts", "{'name': 'p1', 'body': 'hi'}", NULL);
	cr_assert_eq(tk_check(token, name, sizeof(name)), 0);
	cr_assert_str_eq(name, "Una");
	/* A change to the record itself is seen at once. */
	tl_patch(tk_st, "users", id, "{'name': 'Ula'}");
	cr_assert_eq(tk_check(token, name, sizeof(name)), 0);
	cr_assert_str_eq(name, "Ula");
	free(token);
}

Test(tokens, a_new_token_key_signs_the_token_out)
{
	char id[ID_LEN + 1], name[64], *token;

	token = tk_user("key-one-0123456789", 3600, (int64_t)time(NULL), id);
	cr_assert_eq(tk_check(token, name, sizeof(name)), 0);
	tl_patch(tk_st, "users", id, "{'tokenKey': 'key-two-0123456789'}");
	cr_assert_eq(tk_check(token, name, sizeof(name)), ERR_UNAUTHORIZED);
	cr_assert_eq(tk_check(token, name, sizeof(name)), ERR_UNAUTHORIZED);
	free(token);
}

Test(tokens, bad_and_expired_tokens_are_refused)
{
	char id[ID_LEN + 1], name[64], *token;

	token = tk_user("key-one-0123456789", 60, (int64_t)time(NULL) - 3600,
			id);
	cr_assert_eq(tk_check(token, name, sizeof(name)), ERR_UNAUTHORIZED);
	cr_assert_eq(tk_check("not.a.token", name, sizeof(name)),
		     ERR_UNAUTHORIZED);
	token[strlen(token) - 2] ^= 1;   /* a broken signature */
	cr_assert_eq(tk_check(token, name, sizeof(name)), ERR_UNAUTHORIZED);
	free(token);
}
