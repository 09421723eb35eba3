/*
 * test_outbox.c - the notification outbox's write hooks (outbox.h) on a
 * real store: a draft permission queues one notification for its chat's
 * owner, in the same transaction, and a second save queues none; a
 * question and an MCP request do too; an aborted transaction leaves no
 * notification; a unifiedpush device's push_token must be an http(s) URL;
 * the push request's validation names its fields.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "outbox.h"
#include "testlib.h"

static struct schema *ob_schema;
static struct store *ob_store;
static char ob_dir[256];
static char ob_user[ID_LEN + 1], ob_admin[ID_LEN + 1], ob_chat[ID_LEN + 1];

static void ob_setup(void)
{
	char json[256];

	tl_store_setup(ob_dir, sizeof(ob_dir), "outbox", NULL, 0, &ob_schema,
		       &ob_store);
	tl_create(ob_store, "users",
		  "{'email': 'u@x.io', 'password': 'h', 'role': 'user'}",
		  ob_user);
	tl_create(ob_store, "users",
		  "{'email': 'a@x.io', 'password': 'h', 'role': 'admin'}",
		  ob_admin);
	snprintf(json, sizeof(json), "{'title': 't', 'user': '%s'}", ob_user);
	tl_create(ob_store, "chats", json, ob_chat);
}

static void ob_teardown(void)
{
	tl_store_teardown(ob_dir, &ob_schema, &ob_store);
}

static int64_t ob_count(void)
{
	struct err e = ERR_INIT;
	int64_t n = -1;

	cr_assert_eq(store_count(ob_store, OUTBOX_COLLECTION, NULL, &n, &e), 0,
		     "%s", e.msg);
	return n;
}

static void ob_get(const char *key, struct record *r)
{
	struct err e = ERR_INIT;

	record_init(r);
	cr_assert_eq(store_get_by_name(ob_store, OUTBOX_COLLECTION, key, r, &e),
		     0, "%s: %s", key, e.msg);
}

static const char *ob_str(const struct record *r, const char *f)
{
	const char *s = json_string_value(json_object_get(r->data, f));

	return s ? s : "";
}

TestSuite(outbox, .init = ob_setup, .fini = ob_teardown);

Test(outbox, a_draft_permission_notifies_its_chat_owner_once)
{
	char json[512], id[ID_LEN + 1], key[64];
	struct record r;

	snprintf(json, sizeof(json), "{'ai_engine_permission_id': 'op1', "
		 "'session_id': 's', 'permission': 'bash', 'status': 'draft', "
		 "'chat': '%s', 'message': 'run make'}", ob_chat);
	tl_create(ob_store, "permissions", json, id);
	cr_expect_eq(ob_count(), 1);
	snprintf(key, sizeof(key), "permission:%s", id);
	ob_get(key, &r);
	cr_expect_str_eq(ob_str(&r, "user"), ob_user);
	cr_expect_str_eq(ob_str(&r, "type"), "permission");
	cr_expect_str_eq(ob_str(&r, "message"), "run make");
	cr_expect_str_eq(ob_str(&r, "chat"), ob_chat);
	record_release(&r);
	/* saved again, still a draft: nothing more */
	tl_patch(ob_store, "permissions", id, "{'message': 'run make now'}");
	tl_patch(ob_store, "permissions", id, "{'metadata': {'x': 1}}");
	cr_expect_eq(ob_count(), 1);
	/* a decision notifies nobody */
	tl_patch(ob_store, "permissions", id, "{'status': 'authorized'}");
	cr_expect_eq(ob_count(), 1);
	/* without a chat there is nobody to tell */
	tl_create(ob_store, "permissions", "{'ai_engine_permission_id': 'op2', "
		  "'session_id': 's', 'permission': 'bash', 'status': 'draft'}",
		  NULL);
	cr_expect_eq(ob_count(), 1);
}

Test(outbox, an_aborted_transaction_leaves_no_notification)
{
	struct store_txn *t = NULL;
	struct store_put p;
	struct err e = ERR_INIT;
	char json[512];
	json_t *data;

	snprintf(json, sizeof(json), "{'chat': '%s', 'question': 'Which?'}",
		 ob_chat);
	data = tl_json(json);
	memset(&p, 0, sizeof(p));
	p.collection = "questions";
	p.data = data;
	p.mode = STORE_CREATE;
	cr_assert_eq(store_begin(ob_store, &t, &e), 0, "%s", e.msg);
	cr_assert_eq(store_txn_put(t, &p, NULL, NULL, &e), 0, "%s", e.msg);
	store_abort(t);
	json_decref(data);
	cr_expect_eq(ob_count(), 0);
}

Test(outbox, a_question_and_an_mcp_request_notify)
{
	char json[512], id[ID_LEN + 1], key[64];
	struct record r;

	snprintf(json, sizeof(json), "{'chat': '%s', 'question': 'Which "
		 "branch?'}", ob_chat);
	tl_create(ob_store, "questions", json, id);
	snprintf(key, sizeof(key), "question:%s", id);
	ob_get(key, &r);
	cr_expect_str_eq(ob_str(&r, "message"), "Which branch?");
	cr_expect_str_eq(ob_str(&r, "user"), ob_user);
	record_release(&r);
	tl_patch(ob_store, "questions", id, "{'status': 'replied'}");
	cr_expect_eq(ob_count(), 1);
	/* a pending MCP server: every admin, only admins */
	tl_create(ob_store, "mcp_servers", "{'name': 'github', 'status': "
		  "'pending', 'reason': 'to open PRs'}", id);
	cr_expect_eq(ob_count(), 2);
}

Test(outbox, a_unifiedpush_token_must_be_an_http_url)
{
	static const char *const bad[] = {
		"file:///etc/passwd", "not a url", "gopher://x/", "",
	};
	struct store_txn *t = NULL;
	struct store_put p;
	struct err e = ERR_INIT;
	json_t *data;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		data = json_pack("{s:s, s:s, s:s, s:s}", "user", ob_user,
				 "name", "d", "push_service", "unifiedpush",
				 "push_token", bad[i]);
		memset(&p, 0, sizeof(p));
		p.collection = "devices";
		p.data = data;
		p.mode = STORE_CREATE;
		err_clear(&e);
		cr_assert_eq(store_begin(ob_store, &t, &e), 0, "%s", e.msg);
		cr_expect_eq(store_txn_put(t, &p, NULL, NULL, &e), ERR_INVALID,
			     "'%s'", bad[i]);
		cr_expect_str_eq(e.field, "push_token", "'%s'", bad[i]);
		store_abort(t);
		json_decref(data);
	}
	/* an fcm token is no URL, and a good endpoint passes */
	tl_put_new(ob_store, "devices", json_pack("{s:s, s:s, s:s, s:s}",
		   "user", ob_user, "name", "f", "push_service", "fcm",
		   "push_token", "fcm-token"), STORE_CREATE, NULL, NULL);
	tl_put_new(ob_store, "devices", json_pack("{s:s, s:s, s:s, s:s}",
		   "user", ob_user, "name", "u", "push_service", "unifiedpush",
		   "push_token", "https://ntfy.sh/up123"), STORE_CREATE, NULL,
		   NULL);
}

Test(outbox, push_requests_are_validated_and_idempotent_by_key)
{
	/* with_user: user_id is set to the test's user */
	static const struct {
		const char *body, *field;
		bool with_user;
	} bad[] = {
		{ "{'type': 'task_complete'}", "user_id", false },
		{ "{'user_id': 'nosuchuser12345', 'type': 'x'}", "user_id",
		  false },
		{ "{'type': ''}", "type", true },
		{ "{'type': 'Task Complete'}", "type", true },
		{ "{'type': 'x', 'title': 7}", "title", true },
	};
	char text[256];
	json_t *body, *reply = NULL;
	struct err e = ERR_INIT;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		body = tl_json(bad[i].body);
		if (bad[i].with_user)
			json_object_set_new(body, "user_id",
					    json_string(ob_user));
		err_clear(&e);
		cr_expect_eq(outbox_push_request(ob_store, body, &reply, &e),
			     ERR_INVALID, "%s", bad[i].body);
		cr_expect_str_eq(e.field, bad[i].field, "%s", bad[i].body);
		json_decref(body);
	}
	cr_expect_eq(ob_count(), 0);
	snprintf(text, sizeof(text), "{'user_id': '%s', 'type': "
		 "'task_complete', 'key': 'k1'}", ob_user);
	body = tl_json(text);
	cr_assert_eq(outbox_push_request(ob_store, body, &reply, &e), 0, "%s",
		     e.msg);
	cr_expect(json_is_true(json_object_get(reply, "queued")));
	json_decref(reply);
	cr_assert_eq(outbox_push_request(ob_store, body, &reply, &e), 0, "%s",
		     e.msg);
	cr_expect(json_is_false(json_object_get(reply, "queued")));
	json_decref(reply);
	json_decref(body);
	cr_expect_eq(ob_count(), 1);
}
