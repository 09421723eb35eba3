/*
 * test_tickets.c - who wrote a change: the change log's actor as writers set
 * it (the thread's writer, a transaction's own, store_write() on another
 * thread) and as a non-superuser reads it (actor.h); watch tickets
 * (tickets.h): a ticket names its caller until it expires, dies with a new
 * tokenKey, cannot be forged, and is no auth token.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "auth.h"
#include "server/actor.h"
#include "server/tickets.h"
#include "server/tokens.h"
#include "store/schema.h"
#include "store/store.h"
#include "testlib.h"

static char tt_dir[256];
static struct schema *tt_sch;
static struct store *tt_st;
static struct auth_keys tt_keys;

static void tt_open(void)
{
	struct err e = ERR_INIT;

	tl_store_setup(tt_dir, sizeof(tt_dir), "tickets", NULL, 0, &tt_sch,
		       &tt_st);
	cr_assert_eq(auth_keys_load_or_create(tt_dir, &tt_keys, &e), 0, "%s",
		     e.msg);
}

static void tt_close(void)
{
	store_set_thread_writer(NULL);
	auth_keys_wipe(&tt_keys);
	tl_store_teardown(tt_dir, &tt_sch, &tt_st);
}

TestSuite(actor, .init = tt_open, .fini = tt_close);
TestSuite(tickets, .init = tt_open, .fini = tt_close);

/* ---- the change log's actor ----------------------------------------- */

struct actors {
	char got[8][STORE_WRITER_MAX];
	int n;
};

static int collect(const struct store_change *c, void *arg)
{
	struct actors *a = arg;

	if (a->n < 8)
		snprintf(a->got[a->n++], STORE_WRITER_MAX, "%s",
			 c->actor ? c->actor : "(null)");
	return 0;
}

static int put_prompt(struct store_txn *t, void *arg, struct err *e)
{
	struct store_put p;
	json_t *data = json_pack("{s:s, s:s}", "name", (const char *)arg,
				 "body", "x");
	int rc;

	memset(&p, 0, sizeof(p));
	p.collection = "ai_prompts";
	p.data = data;
	p.mode = STORE_CREATE;
	rc = store_txn_put(t, &p, NULL, NULL, e);
	json_decref(data);
	return rc;
}

static void *write_from_thread(void *arg)
{
	struct err e = ERR_INIT;

	store_set_thread_writer("reconciler/other-thread");
	cr_assert_eq(store_write(tt_st, put_prompt, arg, &e), 0, "%s", e.msg);
	return NULL;
}

static char p2[] = "p2", p3[] = "p3", p4[] = "p4";

Test(actor, every_change_names_its_writer)
{
	struct actors a = { .n = 0 };
	struct store_txn *t = NULL;
	struct err e = ERR_INIT;
	int64_t head = store_head(tt_st);
	pthread_t th;

	tl_create(tt_st, "ai_prompts", "{'name': 'p0', 'body': 'x'}", NULL);
	store_set_thread_writer("superuser:a@example.com");
	tl_create(tt_st, "ai_prompts", "{'name': 'p1', 'body': 'x'}", NULL);
	/* A transaction that names itself. */
	cr_assert_eq(store_begin(tt_st, &t, &e), 0, "%s", e.msg);
	cr_assert_str_eq(store_txn_writer(t), "superuser:a@example.com");
	store_txn_set_writer(t, "apply:superuser:a@example.com");
	cr_assert_eq(put_prompt(t, p2, &e), 0, "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), 0, "%s", e.msg);
	/* store_write() keeps its caller's writer, whichever thread runs it. */
	cr_assert_eq(store_write(tt_st, put_prompt, p3, &e), 0, "%s", e.msg);
	cr_assert_eq(pthread_create(&th, NULL, write_from_thread, p4), 0);
	pthread_join(th, NULL);
	store_set_thread_writer(NULL);
	tl_create(tt_st, "ai_prompts", "{'name': 'p5', 'body': 'x'}", NULL);

	cr_assert_eq(store_changes(tt_st, head, 0, collect, &a, &e), 0, "%s",
		     e.msg);
	cr_assert_eq(a.n, 6);
	cr_assert_str_eq(a.got[0], "server");
	cr_assert_str_eq(a.got[1], "superuser:a@example.com");
	cr_assert_str_eq(a.got[2], "apply:superuser:a@example.com");
	cr_assert_str_eq(a.got[3], "superuser:a@example.com");
	cr_assert_str_eq(a.got[4], "reconciler/other-thread");
	cr_assert_str_eq(a.got[5], "server");
}

Test(actor, others_read_as_their_kind)
{
	static const struct { const char *in, *out, *uid; } cases[] = {
		{ "superuser:a@example.com", "superuser", "" },
		{ "user:abcdefghij12345:u@example.com", "user",
		  "abcdefghij12345" },
		{ "user:abcdefghij12345", "user", "abcdefghij12345" },
		{ "apply:superuser:a@example.com", "apply:superuser", "" },
		{ "apply:user:abcdefghij12345:u@x.y", "apply:user",
		  "abcdefghij12345" },
		{ "apply:cli:root", "apply:cli", "" },
		{ "cli:alice", "cli", "" },
		{ "reconciler/cron", "reconciler/cron", "" },
		{ "apply:reconciler/manifests", "apply:reconciler/manifests", "" },
		{ "guest", "guest", "" },
		{ "server", "server", "" },
		{ "user:short:x@y.z", "user", "" },
		{ "superusers", "superusers", "" },
	};
	char out[STORE_WRITER_MAX], uid[ID_LEN + 1];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_str_eq(actor_public(cases[i].in, out, sizeof(out)),
				 cases[i].out, "%s", cases[i].in);
		actor_user_id(cases[i].in, uid);
		cr_assert_str_eq(uid, cases[i].uid, "%s", cases[i].in);
	}
}

Test(actor, a_caller_is_named_by_kind_id_and_email)
{
	struct http_auth a;
	char out[STORE_WRITER_MAX];

	memset(&a, 0, sizeof(a));
	actor_of_caller(&a, out, sizeof(out));
	cr_assert_str_eq(out, "guest");
	a.kind = CALLER_USER;
	snprintf(a.id, sizeof(a.id), "abcdefghij12345");
	a.record = json_pack("{s:s}", "email", "u@example.com");
	actor_of_caller(&a, out, sizeof(out));
	cr_assert_str_eq(out, "user:abcdefghij12345:u@example.com");
	a.kind = CALLER_SUPERUSER;
	actor_of_caller(&a, out, sizeof(out));
	cr_assert_str_eq(out, "superuser:u@example.com");
	json_decref(a.record);
}

/* ---- tickets --------------------------------------------------------- */

/* A users record with tokenKey key; its caller in *a (record NULL). */
static void tt_user(const char *key, struct http_auth *a)
{
	char json[256];

	memset(a, 0, sizeof(*a));
	snprintf(json, sizeof(json),
		 "{\"email\": \"%.7s@example.com\", \"password\": \"x\", "
		 "\"name\": \"Una\", \"tokenKey\": \"%s\"}", key, key);
	tl_put_new(tt_st, "users", json_loads(json, 0, NULL), STORE_CREATE,
		   NULL, a->id);
	a->kind = CALLER_USER;
	snprintf(a->collection_id, sizeof(a->collection_id),
		 "_pb_users_auth_");
}

static int tt_check(const char *ticket, int64_t now, struct http_auth *out)
{
	struct err e = ERR_INIT;

	memset(out, 0, sizeof(*out));
	return ticket_check(tt_st, tt_sch, &tt_keys, ticket, now, out, &e);
}

Test(tickets, a_ticket_names_its_caller_until_it_expires)
{
	struct http_auth a, got;
	struct err e = ERR_INIT;
	char ticket[TICKET_MAX];
	int64_t now = (int64_t)time(NULL), exp = 0;

	tt_user("key-one-0123456789", &a);
	cr_assert_eq(ticket_issue(tt_st, tt_sch, &tt_keys, &a, now, 60, ticket,
				  &exp, &e), 0, "%s", e.msg);
	cr_assert_eq(exp, now + 60);
	cr_assert_eq(tt_check(ticket, now, &got), 0);
	cr_assert_eq(got.kind, CALLER_USER);
	cr_assert_str_eq(got.id, a.id);
	cr_assert_str_eq(json_string_value(json_object_get(got.record,
							   "name")), "Una");
	cr_assert_null(json_object_get(got.record, "tokenKey"));
	json_decref(got.record);
	cr_assert_eq(tt_check(ticket, now + 59, &got), 0);
	json_decref(got.record);
	cr_assert_eq(tt_check(ticket, now + 60, &got), ERR_UNAUTHORIZED);
	cr_assert_null(got.record);
}

Test(tickets, a_new_token_key_or_a_forgery_is_refused)
{
	struct http_auth a, b, got;
	struct err e = ERR_INIT;
	char ticket[TICKET_MAX], forged[TICKET_MAX], *p;
	int64_t now = (int64_t)time(NULL), exp = 0;

	tt_user("key-one-0123456789", &a);
	tt_user("key-two-0123456789", &b);
	cr_assert_eq(ticket_issue(tt_st, tt_sch, &tt_keys, &a, now, 60, ticket,
				  &exp, &e), 0, "%s", e.msg);
	/* Another user's id under a's signature. */
	snprintf(forged, sizeof(forged), "%s", ticket);
	p = strstr(forged, a.id);
	cr_assert_not_null(p);
	memcpy(p, b.id, ID_LEN);
	cr_assert_eq(tt_check(forged, now, &got), ERR_UNAUTHORIZED);
	/* A later expiry under the same signature, a changed signature. */
	snprintf(forged, sizeof(forged), "%s", ticket);
	p = strrchr(forged, '.');
	p[-1] = p[-1] == '9' ? '8' : '9';
	cr_assert_eq(tt_check(forged, now, &got), ERR_UNAUTHORIZED);
	snprintf(forged, sizeof(forged), "%s", ticket);
	forged[strlen(forged) - 1] = forged[strlen(forged) - 1] == 'A' ? 'B' :
				     'A';
	cr_assert_eq(tt_check(forged, now, &got), ERR_UNAUTHORIZED);
	cr_assert_eq(tt_check("", now, &got), ERR_UNAUTHORIZED);
	cr_assert_eq(tt_check("a.b.c.d", now, &got), ERR_UNAUTHORIZED);
	/* A password change (a new tokenKey) revokes it. */
	cr_assert_eq(tt_check(ticket, now, &got), 0);
	json_decref(got.record);
	tl_patch(tt_st, "users", a.id, "{'tokenKey': 'key-new-0123456789'}");
	cr_assert_eq(tt_check(ticket, now, &got), ERR_UNAUTHORIZED);
	/* A guest gets none. */
	memset(&b, 0, sizeof(b));
	cr_assert_eq(ticket_issue(tt_st, tt_sch, &tt_keys, &b, now, 60, ticket,
				  &exp, &e), ERR_UNAUTHORIZED);
}

Test(tickets, a_ticket_is_no_auth_token_and_a_token_no_ticket)
{
	struct http_auth a, got;
	struct err e = ERR_INIT;
	struct tokens *tk = tokens_new(tt_st, tt_sch, &tt_keys);
	char ticket[TICKET_MAX], *token = NULL;
	int64_t now = (int64_t)time(NULL), exp = 0;

	cr_assert_not_null(tk);
	tt_user("key-one-0123456789", &a);
	cr_assert_eq(ticket_issue(tt_st, tt_sch, &tt_keys, &a, now, 60, ticket,
				  &exp, &e), 0, "%s", e.msg);
	cr_assert_eq(auth_token_issue(&tt_keys, "_pb_users_auth_", a.id,
				      "key-one-0123456789", 60, now, &token,
				      &e), 0, "%s", e.msg);
	memset(&got, 0, sizeof(got));
	cr_assert_eq(tokens_check(tk, ticket, &got, &e), ERR_UNAUTHORIZED);
	cr_assert_eq(tt_check(token, now, &got), ERR_UNAUTHORIZED);
	free(token);
	tokens_free(tk);
}
