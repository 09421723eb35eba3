/*
 * test_tokens.c - unit tests for the token cache (server/tokens.h): a
 * verified token names its caller with the record as rules see it, a
 * repeated token is answered from the cache and still follows its record,
 * a tokenKey change signs the token out at once, and bad or expired
 * tokens are refused.
 */
#include <criterion/criterion.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "auth.h"
#include "server/tokens.h"
#include "store/schema.h"
#include "store/store.h"

static char tk_dir[256];
static struct schema *tk_sch;
static struct store *tk_st;
static struct auth_keys tk_keys;
static struct tokens *tk;

static int tk_rm(const char *p, const struct stat *sb, int flag,
		 struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void tk_open(void)
{
	struct store_options o;
	struct err e = ERR_INIT;

	snprintf(tk_dir, sizeof(tk_dir), "/tmp/pocketctl-tokens-XXXXXX");
	cr_assert_not_null(mkdtemp(tk_dir));
	cr_assert_eq(schema_load_default(&tk_sch, &e), 0, "%s", e.msg);
	memset(&o, 0, sizeof(o));
	o.dir = tk_dir;
	cr_assert_eq(store_open(&tk_st, tk_sch, &o, &e), 0, "%s", e.msg);
	cr_assert_eq(auth_keys_load_or_create(tk_dir, &tk_keys, &e), 0, "%s",
		     e.msg);
	tk = tokens_new(tk_st, tk_sch, &tk_keys);
	cr_assert_not_null(tk);
}

static void tk_close(void)
{
	tokens_free(tk);
	tk = NULL;
	store_close(tk_st);
	tk_st = NULL;
	schema_free(tk_sch);
	tk_sch = NULL;
	auth_keys_wipe(&tk_keys);
	nftw(tk_dir, tk_rm, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(tokens, .init = tk_open, .fini = tk_close);

/* Write one record (JSON text data) of collection c; its id into id. */
static void tk_put(const char *c, const char *id, const char *json,
		   enum store_put_mode mode, char out_id[ID_LEN + 1])
{
	struct err e = ERR_INIT;
	struct store_txn *t = NULL;
	struct store_put p;
	struct record rec;
	json_t *data = json_loads(json, 0, NULL);

	cr_assert_not_null(data, "%s", json);
	memset(&p, 0, sizeof(p));
	p.collection = c;
	p.id = id;
	p.data = data;
	p.partial = mode == STORE_UPDATE;
	p.mode = mode;
	record_init(&rec);
	cr_assert_eq(store_begin(tk_st, &t, &e), 0, "%s", e.msg);
	cr_assert_eq(store_txn_put(t, &p, &rec, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), 0, "%s", e.msg);
	if (out_id)
		snprintf(out_id, ID_LEN + 1, "%s", rec.id);
	record_release(&rec);
	json_decref(data);
}

/* A user with tokenKey key and a token for it, issued at now. */
static char *tk_user(const char *key, int64_t ttl, int64_t now,
		     char id[ID_LEN + 1])
{
	struct err e = ERR_INIT;
	char json[256], *token = NULL;

	snprintf(json, sizeof(json),
		 "{\"email\": \"u@example.com\", \"password\": \"x\", "
		 "\"name\": \"Una\", \"tokenKey\": \"%s\"}", key);
	tk_put("users", NULL, json, STORE_CREATE, id);
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
	tk_put("ai_prompts", NULL, "{\"name\": \"p1\", \"body\": \"hi\"}",
	       STORE_CREATE, NULL);
	cr_assert_eq(tk_check(token, name, sizeof(name)), 0);
	cr_assert_str_eq(name, "Una");
	/* A change to the record itself is seen at once. */
	tk_put("users", id, "{\"name\": \"Ula\"}", STORE_UPDATE, NULL);
	cr_assert_eq(tk_check(token, name, sizeof(name)), 0);
	cr_assert_str_eq(name, "Ula");
	free(token);
}

Test(tokens, a_new_token_key_signs_the_token_out)
{
	char id[ID_LEN + 1], name[64], *token;

	token = tk_user("key-one-0123456789", 3600, (int64_t)time(NULL), id);
	cr_assert_eq(tk_check(token, name, sizeof(name)), 0);
	tk_put("users", id, "{\"tokenKey\": \"key-two-0123456789\"}",
	       STORE_UPDATE, NULL);
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
