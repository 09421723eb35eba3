/*
 * test_filter.c - filter and sort expressions compiled to SQL and run
 * against a real in-memory SQLite records table: every case asserts exactly
 * which fixture ids match, so the semantics (not just the text) are pinned.
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "store/filter.h"
#include "store/query_sql.h"
#include "store/schema.h"

/* users <- chats (self relation "parent") <- messages */
static const char fschema_json[] =
	"{\"version\": 1, \"collections\": ["
	"{\"name\": \"users\", \"id\": \"_pb_users_auth_\", \"kind\": \"User\","
	" \"auth\": true,"
	" \"fields\": ["
	"  {\"name\": \"email\", \"type\": \"email\"},"
	"  {\"name\": \"password\", \"type\": \"password\", \"hidden\": true},"
	"  {\"name\": \"name\", \"type\": \"text\"},"
	"  {\"name\": \"verified\", \"type\": \"bool\"},"
	"  {\"name\": \"role\", \"type\": \"select\","
	"   \"values\": [\"admin\", \"agent\", \"user\"]}],"
	" \"rules\": {\"list\": null, \"view\": null, \"create\": null,"
	"  \"update\": null, \"delete\": null}},"
	"{\"name\": \"chats\", \"id\": \"pc_chats\", \"kind\": \"Chat\","
	" \"fields\": ["
	"  {\"name\": \"user\", \"type\": \"relation\", \"collection\": \"users\"},"
	"  {\"name\": \"parent\", \"type\": \"relation\", \"collection\": \"chats\"},"
	"  {\"name\": \"title\", \"type\": \"text\"},"
	"  {\"name\": \"description\", \"type\": \"text\"},"
	"  {\"name\": \"archived\", \"type\": \"bool\"},"
	"  {\"name\": \"priority\", \"type\": \"number\"},"
	"  {\"name\": \"turn\", \"type\": \"select\", \"values\": [\"user\", \"assistant\"]},"
	"  {\"name\": \"meta\", \"type\": \"json\"},"
	"  {\"name\": \"notes\", \"type\": \"text\", \"secret\": true}],"
	" \"rules\": {\"list\": \"\", \"view\": \"\", \"create\": null,"
	"  \"update\": null, \"delete\": null}},"
	"{\"name\": \"messages\", \"id\": \"pc_messages\", \"kind\": \"Message\","
	" \"fields\": ["
	"  {\"name\": \"chat\", \"type\": \"relation\", \"collection\": \"chats\"},"
	"  {\"name\": \"role\", \"type\": \"text\"},"
	"  {\"name\": \"text\", \"type\": \"text\"}],"
	" \"rules\": {\"list\": \"\", \"view\": \"\", \"create\": null,"
	"  \"update\": null, \"delete\": null}}"
	"]}";

static const struct {
	const char *collection, *id, *created, *data;
} fixtures[] = {
	{ "users", "u_alice", "2024-01-01 00:00:00.000Z",
	  "{\"email\":\"alice@x.io\",\"password\":\"h1\",\"name\":\"Alice\","
	  "\"verified\":true,\"role\":\"admin\"}" },
	{ "users", "u_bob", "2024-01-02 00:00:00.000Z",
	  "{\"email\":\"bob@x.io\",\"password\":\"h2\",\"name\":\"Bob\","
	  "\"verified\":false,\"role\":\"user\"}" },
	{ "users", "u_carol", "2024-01-03 00:00:00.000Z",
	  "{\"email\":\"carol@x.io\",\"password\":\"h3\",\"name\":\"\"}" },
	{ "chats", "c1", "2024-01-01 00:00:00.000Z",
	  "{\"user\":\"u_alice\",\"parent\":\"\",\"title\":\"Alpha 100%\","
	  "\"archived\":false,\"priority\":1,\"turn\":\"user\","
	  "\"meta\":{\"tag\":\"x\",\"n\":[1,2]},\"notes\":\"s1\"}" },
	{ "chats", "c2", "2024-02-01 00:00:00.000Z",
	  "{\"user\":\"u_bob\",\"parent\":\"c1\",\"title\":\"beta_test\","
	  "\"archived\":true,\"priority\":5,\"turn\":\"\",\"meta\":null,"
	  "\"notes\":\"\"}" },
	{ "chats", "c3", "2024-03-01 00:00:00.000Z",
	  "{\"user\":\"u_bob\",\"parent\":\"c2\",\"title\":\"\"}" },
	{ "chats", "c4", "2024-04-01 00:00:00.000Z",
	  "{\"user\":\"u_carol\",\"parent\":\"c3\","
	  "\"title\":\"Gamma it's \\\"q\\\"\",\"archived\":false,"
	  "\"priority\":2.5,\"turn\":\"assistant\",\"meta\":{\"tag\":\"y\"},"
	  "\"description\":\"x' OR 1=1 --\"}" },
	{ "messages", "m1", "2024-01-01 00:00:00.000Z",
	  "{\"chat\":\"c1\",\"role\":\"user\",\"text\":\"hello World\"}" },
	{ "messages", "m2", "2024-01-02 00:00:00.000Z",
	  "{\"chat\":\"c2\",\"role\":\"assistant\",\"text\":\"HELLO there\"}" },
	{ "messages", "m3", "2024-01-03 00:00:00.000Z",
	  "{\"chat\":\"c3\",\"role\":\"system\",\"text\":\"a_b\"}" },
	{ "messages", "m4", "2024-01-04 00:00:00.000Z",
	  "{\"chat\":\"\",\"role\":\"user\",\"text\":\"a%b\"}" },
	{ "messages", "m5", "2024-01-05 00:00:00.000Z",
	  "{\"chat\":\"zzzzzzzzzzzzzzz\",\"role\":\"user\",\"text\":\"axb\"}" },
};
#define NFIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

static struct schema *fschema;
static sqlite3 *fdb;
static json_t *falice, *fbob;

enum who { GUEST, ALICE, BOB, SUPER };

static void fsetup(void)
{
	struct err e = ERR_INIT;
	sqlite3_stmt *st = NULL;
	size_t i;

	cr_assert_eq(schema_load(&fschema, fschema_json, strlen(fschema_json),
				 &e), 0, "schema: %s", e.msg);
	cr_assert_eq(sqlite3_open(":memory:", &fdb), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(fdb,
		"CREATE TABLE records(collection TEXT, id TEXT, name TEXT, "
		"data TEXT, labels TEXT, status TEXT, generation INT, "
		"revision INT, created TEXT, updated TEXT)",
		NULL, NULL, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(fdb,
		"INSERT INTO records VALUES(?1, ?2, ?2, ?3, '{}', '{}', 1, 1, "
		"?4, ?4)", -1, &st, NULL), SQLITE_OK);
	for (i = 0; i < NFIXTURES; i++) {
		sqlite3_bind_text(st, 1, fixtures[i].collection, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, fixtures[i].id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, fixtures[i].data, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, fixtures[i].created, -1, SQLITE_STATIC);
		cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	falice = json_pack("{s:s, s:s, s:s, s:b}", "id", "u_alice", "role",
			   "admin", "name", "Alice", "verified", 1);
	fbob = json_pack("{s:s, s:s, s:s}", "id", "u_bob", "role", "user",
			 "name", "Bob");
	cr_assert(falice && fbob);
}

static void fteardown(void)
{
	json_decref(falice);
	json_decref(fbob);
	sqlite3_close(fdb);
	schema_free(fschema);
}

static struct filter_auth fauth(enum who w)
{
	struct filter_auth a = { false, NULL, NULL };

	if (w == ALICE)
		a.record = falice;
	else if (w == BOB)
		a.record = fbob;
	else if (w == SUPER)
		a.superuser = true;
	return a;
}

/* filter_compile() and the store's SQL for the tree: the WHERE body and
 * its binds appended to sql and args (both left as they were on error). */
static int fcompile(const struct schema *s, const struct collection *c,
		    const char *expr, const struct filter_auth *a,
		    struct buf *sql, json_t *args, struct err *e)
{
	struct query_pred *p = NULL;
	int rc = filter_compile(s, c, expr, a, &p, e);

	if (!rc)
		rc = query_sql_where(p, sql, args, e);
	query_pred_free(p);
	return rc;
}

/* filter_sort_compile() and the store's ORDER BY body for it. */
static int fsort(const struct collection *c, const char *sort,
		 const struct filter_auth *a, struct buf *sql, struct err *e)
{
	struct query_sort o;
	int rc = filter_sort_compile(c, sort, a, &o, e);

	return rc ? rc : query_sql_order(&o, sql, e);
}

static void fbind(sqlite3_stmt *st, int i, json_t *v)
{
	if (json_is_string(v))
		sqlite3_bind_text(st, i, json_string_value(v), -1, SQLITE_TRANSIENT);
	else if (json_is_integer(v))
		sqlite3_bind_int64(st, i, json_integer_value(v));
	else if (json_is_real(v))
		sqlite3_bind_double(st, i, json_real_value(v));
	else if (json_is_boolean(v))
		sqlite3_bind_int(st, i, json_is_true(v));
	else
		sqlite3_bind_null(st, i);
}

/* Run "SELECT id ... WHERE collection = ? AND (where) ORDER BY order" and
 * return the ids comma-joined (caller frees). */
static char *frun(const char *coll, const char *where, json_t *args,
		  const char *order)
{
	struct buf q = BUF_INIT, ids = BUF_INIT;
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	size_t i;
	int rc;

	buf_printf(&q, "SELECT id FROM records WHERE collection = ? AND (%s) "
		   "ORDER BY %s", where, order ? order : "id");
	rc = sqlite3_prepare_v2(fdb, q.ptr, -1, &st, &tail);
	cr_assert_eq(rc, SQLITE_OK, "prepare %s: %s", q.ptr, sqlite3_errmsg(fdb));
	cr_assert_str_eq(tail, "", "more than one statement in %s", q.ptr);
	cr_assert_eq((size_t)sqlite3_bind_parameter_count(st),
		     json_array_size(args) + 1, "binds for %s", q.ptr);
	sqlite3_bind_text(st, 1, coll, -1, SQLITE_STATIC);
	for (i = 0; i < json_array_size(args); i++)
		fbind(st, (int)i + 2, json_array_get(args, i));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		buf_printf(&ids, "%s%s", ids.len ? "," : "",
			   (const char *)sqlite3_column_text(st, 0));
	cr_assert_eq(rc, SQLITE_DONE, "step %s: %s", q.ptr, sqlite3_errmsg(fdb));
	sqlite3_finalize(st);
	buf_release(&q);
	return buf_detach(&ids, NULL);
}

struct fcase {
	const char *collection;
	enum who who;
	const char *filter;
	const char *want;      /* ids in id order, comma-joined */
};

static void fcheck(const struct fcase *cases, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct fcase *k = &cases[i];
		const struct collection *c = schema_find(fschema, k->collection);
		struct filter_auth a = fauth(k->who);
		struct buf sql = BUF_INIT;
		struct err e = ERR_INIT;
		json_t *args = json_array();
		char *got;
		int rc;

		cr_assert_not_null(c);
		rc = fcompile(fschema, c, k->filter, &a, &sql, args, &e);
		cr_expect_eq(rc, 0, "%s: %s", k->filter, e.msg);
		if (!rc) {
			got = frun(k->collection, sql.ptr, args, NULL);
			cr_expect_str_eq(got, k->want, "%s [as %d] -> %s",
					 k->filter, k->who, sql.ptr);
			free(got);
		}
		json_decref(args);
		buf_release(&sql);
	}
}

TestSuite(filter, .init = fsetup, .fini = fteardown);

Test(filter, comparison_operators)
{
	static const struct fcase cases[] = {
		{ "chats", GUEST, "title = \"beta_test\"", "c2" },
		{ "chats", GUEST, "title != \"beta_test\"", "c1,c3,c4" },
		{ "chats", GUEST, "title = 'beta_test'", "c2" },
		{ "chats", GUEST, "\"beta_test\" = title", "c2" },
		{ "chats", GUEST, "priority > 1", "c2,c4" },
		{ "chats", GUEST, "priority >= 1", "c1,c2,c4" },
		{ "chats", GUEST, "priority < 2.5", "c1,c3" },
		{ "chats", GUEST, "priority <= 2.5", "c1,c3,c4" },
		{ "chats", GUEST, "priority = 0", "c3" },
		{ "chats", GUEST, "priority = -1", "" },
		{ "chats", GUEST, "priority > -1", "c1,c2,c3,c4" },
		{ "chats", GUEST, "priority != 5", "c1,c3,c4" },
		{ "chats", GUEST, "id = \"c1\" || id = \"c3\"", "c1,c3" },
		{ "chats", GUEST, "created > \"2024-02-15\"", "c3,c4" },
		{ "chats", GUEST, "updated <= \"2024-02-01 00:00:00.000Z\"", "c1,c2" },
		{ "chats", GUEST, "created < @now", "c1,c2,c3,c4" },
		{ "chats", GUEST, "@now < created", "" },
		{ "chats", GUEST, "title = title", "c1,c2,c3,c4" },
		{ "chats", GUEST, "1 = 1", "c1,c2,c3,c4" },
		{ "chats", GUEST, "1 = 2", "" },
		{ "chats", GUEST, "\"a\" != \"a\"", "" },
		{ "chats", GUEST, "user ?= \"u_bob\"", "c2,c3" },
		{ "chats", GUEST, "priority ?> 2", "c2,c4" },
		{ "chats", GUEST, "", "c1,c2,c3,c4" },
		{ "chats", GUEST, "  title\t=\n\"beta_test\"  ", "c2" },
	};

	fcheck(cases, sizeof(cases) / sizeof(cases[0]));
}

Test(filter, null_and_empty_semantics)
{
	static const struct fcase cases[] = {
		/* c3 has title "", turn/archived/priority missing; c2 turn "" */
		{ "chats", GUEST, "title = \"\"", "c3" },
		{ "chats", GUEST, "title = null", "c3" },
		{ "chats", GUEST, "title != null", "c1,c2,c4" },
		{ "chats", GUEST, "turn = \"\"", "c2,c3" },
		{ "chats", GUEST, "turn = null", "c2,c3" },
		{ "chats", GUEST, "null = turn", "c2,c3" },
		{ "chats", GUEST, "turn != \"\"", "c1,c4" },
		{ "chats", GUEST, "turn != NULL", "c1,c4" },
		{ "chats", GUEST, "turn != \"user\"", "c2,c3,c4" },
		{ "chats", GUEST, "description = \"\"", "c1,c2,c3" },
		{ "chats", GUEST, "\"\" = null", "c1,c2,c3,c4" },
		{ "chats", GUEST, "\"\" != null", "" },
		{ "chats", GUEST, "turn = description", "c2,c3" },
		{ "chats", GUEST, "turn != description", "c1,c4" },
	};

	fcheck(cases, sizeof(cases) / sizeof(cases[0]));
}

Test(filter, bools)
{
	static const struct fcase cases[] = {
		{ "chats", GUEST, "archived = true", "c2" },
		{ "chats", GUEST, "archived = false", "c1,c3,c4" },
		{ "chats", GUEST, "archived != true", "c1,c3,c4" },
		{ "chats", GUEST, "archived = TRUE", "c2" },
		{ "chats", GUEST, "archived = 1", "c2" },
		{ "chats", GUEST, "user.verified = true", "c1" },
		{ "chats", GUEST, "user.verified = false", "c2,c3,c4" },
	};

	fcheck(cases, sizeof(cases) / sizeof(cases[0]));
}

Test(filter, like_operators)
{
	static const struct fcase cases[] = {
		{ "chats", GUEST, "title ~ \"ALPHA\"", "c1" },
		{ "chats", GUEST, "title ~ \"_\"", "c2" },
		{ "chats", GUEST, "title !~ \"_\"", "c1,c3,c4" },
		{ "chats", GUEST, "title ~ \"a_t\"", "c2" },
		{ "chats", GUEST, "title ~ \"Alpha%\"", "c1" },
		{ "chats", GUEST, "title ~ \"%test\"", "c2" },
		{ "chats", GUEST, "title ~ \"100%\"", "" },
		{ "chats", GUEST, "title ~ \"0\\%\"", "c1" },
		{ "chats", GUEST, "title ~ \"it's\"", "c4" },
		{ "chats", GUEST, "title ~ 'it\\'s \"q\"'", "c4" },
		{ "chats", GUEST, "title = 'Gamma it\\'s \"q\"'", "c4" },
		{ "chats", GUEST, "title ~ 100", "c1" },
		/* a column operand is wrapped in '%' too; c2's turn is "" */
		{ "chats", GUEST, "title ~ turn", "c2" },
		{ "chats", GUEST, "title !~ \"a\"", "c3" },
		{ "messages", GUEST, "text ~ \"hello\"", "m1,m2" },
		{ "messages", GUEST, "text ~ \"a_b\"", "m3" },
		{ "messages", GUEST, "text ~ \"a\\%b\"", "m4" },
		{ "messages", GUEST, "text ~ \"a%b\"", "m3,m4,m5" },
		{ "messages", GUEST, "text ~ \"a\\\\\"", "" },
		{ "messages", GUEST, "text ?~ \"THERE\"", "m2" },
		{ "messages", GUEST, "text ?!~ \"l\"", "m3,m4,m5" },
	};

	fcheck(cases, sizeof(cases) / sizeof(cases[0]));
}

Test(filter, precedence_and_parentheses)
{
	static const struct fcase cases[] = {
		/* && binds tighter than || */
		{ "chats", GUEST,
		  "title = \"beta_test\" || archived = false && priority < 2",
		  "c1,c2,c3" },
		{ "chats", GUEST,
		  "(title = \"beta_test\" || archived = false) && priority < 2",
		  "c1,c3" },
		{ "chats", GUEST,
		  "archived = false && priority < 2 || title = \"beta_test\"",
		  "c1,c2,c3" },
		{ "chats", GUEST,
		  "archived = false && (priority < 2 || title = \"beta_test\")",
		  "c1,c3" },
		{ "chats", GUEST, "((((id = \"c4\"))))", "c4" },
		{ "chats", GUEST,
		  "id = \"c1\" || id = \"c2\" || id = \"c3\" && priority > 100",
		  "c1,c2" },
	};

	fcheck(cases, sizeof(cases) / sizeof(cases[0]));
}

Test(filter, relation_paths)
{
	static const struct fcase cases[] = {
		{ "chats", GUEST, "user = \"u_bob\"", "c2,c3" },
		{ "chats", GUEST, "user.id = \"u_bob\"", "c2,c3" },
		{ "chats", GUEST, "user.role = \"admin\"", "c1" },
		{ "chats", GUEST, "user.role = \"\"", "c4" },
		{ "chats", GUEST, "user.name ~ \"bo\"", "c2,c3" },
		{ "chats", GUEST, "parent.parent.title = \"Alpha 100%\"", "c3" },
		{ "chats", GUEST, "parent.parent.parent.user.name = \"Alice\"",
		  "c4" },
		{ "chats", GUEST, "parent.user = user", "c3" },
		{ "chats", GUEST, "meta.tag = \"x\"", "c1" },
		{ "chats", GUEST, "meta.n.1 = 2", "c1" },
		{ "chats", GUEST, "meta.tag != \"x\"", "c2,c3,c4" },
		/* two hops */
		{ "messages", GUEST, "chat.user = \"u_bob\"", "m2,m3" },
		{ "messages", GUEST, "chat.user.role = \"admin\"", "m1" },
		{ "messages", GUEST, "chat.user.name = \"Bob\"", "m2,m3" },
		{ "messages", GUEST, "chat.archived = true", "m2" },
		{ "messages", GUEST, "chat = \"\"", "m4" },
		{ "messages", GUEST, "chat = null", "m4" },
		/* a missing or dangling target reads as null */
		{ "messages", GUEST, "chat.title = \"\"", "m3,m4,m5" },
		{ "messages", GUEST, "chat.title != \"\"", "m1,m2" },
	};

	fcheck(cases, sizeof(cases) / sizeof(cases[0]));
}

Test(filter, request_auth)
{
	static const char rule[] =
		"@request.auth.id != \"\" && (user = @request.auth.id || "
		"@request.auth.role = \"admin\")";
	static const struct fcase cases[] = {
		{ "chats", GUEST, "@request.auth.id != \"\"", "" },
		{ "chats", BOB, "@request.auth.id != \"\"", "c1,c2,c3,c4" },
		{ "chats", GUEST, "@request.auth.id = \"\"", "c1,c2,c3,c4" },
		{ "chats", GUEST, "user = @request.auth.id", "" },
		{ "chats", BOB, "user = @request.auth.id", "c2,c3" },
		{ "chats", ALICE, "user = @request.auth.id", "c1" },
		{ "chats", GUEST, rule, "" },
		{ "chats", BOB, rule, "c2,c3" },
		{ "chats", ALICE, rule, "c1,c2,c3,c4" },
		{ "chats", GUEST, "@request.auth.role = \"\"", "c1,c2,c3,c4" },
		{ "chats", GUEST, "@request.auth.role != \"admin\"", "c1,c2,c3,c4" },
		{ "chats", ALICE, "@request.auth.verified = true", "c1,c2,c3,c4" },
		{ "chats", BOB, "@request.auth.verified = true", "" },
		{ "chats", BOB, "@request.auth.collectionName = \"users\"",
		  "c1,c2,c3,c4" },
		{ "chats", GUEST, "@request.auth.collectionName = \"users\"", "" },
		{ "messages", BOB, "chat.user = @request.auth.id", "m2,m3" },
		{ "messages", ALICE, "chat.user = @request.auth.id", "m1" },
		/* PocketBase semantics: a guest's "" equals a missing relation,
		 * which is why rules start with @request.auth.id != "" */
		{ "messages", GUEST, "chat.user = @request.auth.id", "m4,m5" },
		{ "messages", GUEST,
		  "@request.auth.id != \"\" && chat.user = @request.auth.id", "" },
		/* superusers may test secret fields, nobody else */
		{ "chats", SUPER, "notes = \"s1\"", "c1" },
	};

	fcheck(cases, sizeof(cases) / sizeof(cases[0]));
}

Test(filter, request_body)
{
	const struct collection *c = schema_find(fschema, "chats");
	json_t *body = json_pack("{s:s, s:b}", "title", "x", "archived", 1);
	struct filter_auth a = { false, fbob, body };
	struct buf sql = BUF_INIT;
	struct err e = ERR_INIT;
	json_t *args = json_array();
	char *got;

	cr_assert_eq(fcompile(fschema, c,
		"@request.body.title = \"x\" && @request.body.archived = true "
		"&& @request.body.turn != \"approved\" && id = \"c1\"",
		&a, &sql, args, &e), 0, "%s", e.msg);
	got = frun("chats", sql.ptr, args, NULL);
	cr_expect_str_eq(got, "c1");
	free(got);
	buf_reset(&sql);
	json_array_clear(args);
	cr_expect_eq(fcompile(fschema, c, "@request.body.nope = 1", &a,
				    &sql, args, &e), ERR_INVALID);
	cr_expect_str_eq(e.msg, "filter: unknown field '@request.body.nope' "
			 "at position 1");
	json_decref(body);
	json_decref(args);
	buf_release(&sql);
}

Test(filter, injection_is_data_not_sql)
{
	static const struct fcase cases[] = {
		{ "chats", GUEST, "title = \"x' OR 1=1 --\"", "" },
		{ "chats", GUEST, "title = 'x\\' OR 1=1 --'", "" },
		{ "chats", GUEST, "title = \"\\\" OR 1=1 --\"", "" },
		{ "chats", GUEST, "title ~ \"'); DROP TABLE records; --\"", "" },
		{ "chats", GUEST, "description = \"x' OR 1=1 --\"", "c4" },
		{ "chats", GUEST, "meta.tag = \"x\" || meta.x') = 1", "" },
	};
	static const char *const rejected[] = {
		"1=1; DROP TABLE records",
		"title = \"a\" -- comment",
		"title = \"a\" /* x */",
		"title = x'41'",
		"id = 1 UNION SELECT 1",
	};
	const struct collection *c = schema_find(fschema, "chats");
	struct filter_auth a = fauth(GUEST);
	sqlite3_stmt *st;
	size_t i;

	/* The sixth case must be rejected (quote in an identifier), so only
	 * the first five run. */
	fcheck(cases, 5);
	for (i = 0; i < sizeof(rejected) / sizeof(rejected[0]) + 1; i++) {
		const char *f = i < sizeof(rejected) / sizeof(rejected[0]) ?
			rejected[i] : cases[5].filter;
		struct buf sql = BUF_INIT;
		struct err e = ERR_INIT;
		json_t *args = json_array();

		cr_expect_eq(fcompile(fschema, c, f, &a, &sql, args, &e),
			     ERR_INVALID, "%s was accepted: %s", f, sql.ptr);
		cr_expect_str_eq(sql.ptr, "");
		json_decref(args);
		buf_release(&sql);
	}
	/* and no literal ever reaches the SQL text */
	{
		struct buf sql = BUF_INIT;
		struct err e = ERR_INIT;
		json_t *args = json_array();

		cr_assert_eq(fcompile(fschema, c,
			"title = \"x' OR 1=1 --\" || description ~ 'DROP'",
			&a, &sql, args, &e), 0);
		cr_expect_null(strstr(sql.ptr, "OR 1=1"), "%s", sql.ptr);
		cr_expect_null(strstr(sql.ptr, "DROP"), "%s", sql.ptr);
		cr_expect_eq(json_array_size(args), 2);
		json_decref(args);
		buf_release(&sql);
	}
	cr_assert_eq(sqlite3_prepare_v2(fdb, "SELECT count(*) FROM records",
					-1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_expect_eq(sqlite3_column_int(st, 0), (int)NFIXTURES);
	sqlite3_finalize(st);
}

Test(filter, sql_shape)
{
	const struct collection *c = schema_find(fschema, "messages");
	struct filter_auth a = fauth(GUEST);
	struct buf sql = BUF_INIT;
	struct err e = ERR_INIT;
	json_t *args = json_array();

	cr_assert_eq(fcompile(fschema, c,
		"chat.user.role = \"admin\" && text ~ \"50%_\"", &a, &sql, args,
		&e), 0, "%s", e.msg);
	cr_expect_str_eq(sql.ptr,
		"((SELECT (SELECT json_extract(r2.data, '$.role') FROM records r2 "
		"WHERE r2.collection = 'users' AND r2.id = "
		"json_extract(r1.data, '$.user')) FROM records r1 WHERE "
		"r1.collection = 'chats' AND r1.id = "
		"json_extract(records.data, '$.chat')) = ? AND "
		"json_extract(records.data, '$.text') LIKE ? ESCAPE '\\')");
	cr_expect_eq(json_array_size(args), 2);
	cr_expect_str_eq(json_string_value(json_array_get(args, 0)), "admin");
	cr_expect_str_eq(json_string_value(json_array_get(args, 1)), "50%_");
	json_decref(args);
	buf_release(&sql);
}

Test(filter, appends_and_restores_on_error)
{
	const struct collection *c = schema_find(fschema, "chats");
	struct buf sql = BUF_INIT;
	struct err e = ERR_INIT;
	json_t *args = json_pack("[s]", "keep");

	buf_puts(&sql, "collection = ? AND ");
	cr_assert_eq(fcompile(fschema, c, "title = \"a\" && nope = 1",
				    NULL, &sql, args, &e), ERR_INVALID);
	cr_expect_str_eq(sql.ptr, "collection = ? AND ");
	cr_expect_eq(json_array_size(args), 1);
	cr_expect_str_eq(e.field, "filter");
	cr_assert_eq(fcompile(fschema, c, "title = \"a\"", NULL, &sql,
				    args, &e), 0);
	cr_expect_str_eq(sql.ptr, "collection = ? AND "
			 "json_extract(records.data, '$.title') = ?");
	cr_expect_eq(json_array_size(args), 2);
	cr_expect_str_eq(json_string_value(json_array_get(args, 1)), "a");
	json_decref(args);
	buf_release(&sql);
}

struct ferr {
	const char *collection;
	const char *filter;
	const char *msg;
};

static void fcheck_errors(const struct ferr *cases, size_t n, enum who w)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct collection *c = schema_find(fschema,
							 cases[i].collection);
		struct filter_auth a = fauth(w);
		struct buf sql = BUF_INIT;
		struct err e = ERR_INIT;
		json_t *args = json_array();
		int rc;

		rc = fcompile(fschema, c, cases[i].filter, &a, &sql, args,
				    &e);
		cr_expect_eq(rc, ERR_INVALID, "%s: rc %d", cases[i].filter, rc);
		cr_expect_str_eq(e.msg, cases[i].msg, "%s", cases[i].filter);
		cr_expect_eq(json_array_size(args), 0);
		json_decref(args);
		buf_release(&sql);
	}
}

Test(filter, errors_with_positions)
{
	static const struct ferr cases[] = {
		{ "chats", "title = \"x\")",
		  "filter: unexpected ')' at position 12" },
		{ "chats", "foo = 1", "filter: unknown field 'foo' at position 1" },
		{ "chats", "title = \"abc",
		  "filter: unterminated string at position 9" },
		{ "chats", "title = 'abc\\'",
		  "filter: unterminated string at position 9" },
		{ "chats", "title = ",
		  "filter: unexpected end of expression at position 9" },
		{ "chats", "title", 
		  "filter: unexpected end of expression at position 6" },
		{ "chats", "(title = \"a\"",
		  "filter: missing ')' for '(' at position 1" },
		{ "chats", "()", "filter: unexpected ')' at position 2" },
		{ "chats", "title == \"a\"",
		  "filter: invalid operator '==' at position 7" },
		{ "chats", "title = \"a\" & id = 1",
		  "filter: invalid operator '&' at position 13" },
		{ "chats", "title = \"a\" ||| id = 1",
		  "filter: invalid operator '|||' at position 13" },
		{ "chats", "title ? \"a\"",
		  "filter: invalid operator '?' at position 7" },
		{ "chats", "1=1; DROP TABLE records",
		  "filter: unexpected character ';' at position 4" },
		{ "chats", "title = \"a\" title = \"b\"",
		  "filter: unexpected 'title' at position 13" },
		{ "chats", "title = \"a\" \"b\"",
		  "filter: unexpected string at position 13" },
		{ "chats", "&& title = 1", "filter: unexpected '&&' at position 1" },
		{ "chats", "title = \"é\" )",
		  "filter: unexpected ')' at position 13" },
		{ "chats", "title = \"\xff\"",
		  "filter: string is not valid UTF-8 at position 9" },
		{ "chats", "title = 1.2.3",
		  "filter: invalid number '1.2.3' at position 9" },
		{ "chats", "title = 1.", "filter: invalid number '1.' at position 9" },
		{ "chats", "title = -", "filter: unexpected character '-' at position 9" },
		{ "chats", "title:lower = 1",
		  "filter: unexpected character ':' at position 6" },
		{ "chats", "user.role.x = 1",
		  "filter: 'role' is not a relation in 'user.role.x' at position 1" },
		{ "chats", "id.x = 1",
		  "filter: 'id' is not a relation in 'id.x' at position 1" },
		{ "chats", "user..role = 1",
		  "filter: invalid identifier 'user..role' at position 1" },
		{ "chats", "user.nope = 1",
		  "filter: unknown field 'user.nope' at position 1" },
		{ "chats", "user.password = 1",
		  "filter: field 'user.password' cannot be filtered at position 1" },
		{ "chats", "notes = \"s1\"",
		  "filter: field 'notes' cannot be filtered at position 1" },
		{ "chats", "@request.auth.password = \"\"",
		  "filter: field '@request.auth.password' cannot be filtered at "
		  "position 1" },
		{ "chats", "@request.auth.foo = 1",
		  "filter: unknown field '@request.auth.foo' at position 1" },
		{ "chats", "@request.method = \"GET\"",
		  "filter: unsupported identifier '@request.method' at position 1" },
		{ "chats", "@collection.users.id = id",
		  "filter: unsupported identifier '@collection.users.id' at "
		  "position 1" },
		{ "chats", "title = a#b",
		  "filter: unsupported identifier 'a#b' at position 9" },
		{ "chats",
		  "parent.parent.parent.parent.parent.title = \"x\"",
		  "filter: 'parent.parent.parent.parent.parent.title' has more "
		  "than 4 relation hops at position 1" },
		{ "chats", "   ", "filter: empty expression" },
	};

	fcheck_errors(cases, sizeof(cases) / sizeof(cases[0]), BOB);
}

Test(filter, password_refused_even_for_superuser)
{
	static const struct ferr cases[] = {
		{ "chats", "user.password = \"h2\"",
		  "filter: field 'user.password' cannot be filtered at position 1" },
		{ "users", "password != \"\"",
		  "filter: field 'password' cannot be filtered at position 1" },
	};

	fcheck_errors(cases, sizeof(cases) / sizeof(cases[0]), SUPER);
}

Test(filter, limits)
{
	const struct collection *c = schema_find(fschema, "chats");
	struct buf f = BUF_INIT, sql = BUF_INIT;
	struct err e = ERR_INIT;
	json_t *args = json_array();
	char *got;
	int i;

	/* 32 levels of parentheses are fine, 33 are not */
	for (i = 0; i < FILTER_MAX_DEPTH; i++)
		buf_putc(&f, '(');
	buf_puts(&f, "id = \"c2\"");
	for (i = 0; i < FILTER_MAX_DEPTH; i++)
		buf_putc(&f, ')');
	cr_assert_eq(fcompile(fschema, c, f.ptr, NULL, &sql, args, &e),
		     0, "%s", e.msg);
	got = frun("chats", sql.ptr, args, NULL);
	cr_expect_str_eq(got, "c2");
	free(got);
	buf_reset(&f);
	for (i = 0; i < FILTER_MAX_DEPTH + 1; i++)
		buf_putc(&f, '(');
	buf_puts(&f, "id = 1");
	for (i = 0; i < FILTER_MAX_DEPTH + 1; i++)
		buf_putc(&f, ')');
	cr_expect_eq(fcompile(fschema, c, f.ptr, NULL, &sql, args, &e),
		     ERR_INVALID);
	cr_expect_str_eq(e.msg, "filter: parentheses nested deeper than 32 at "
			 "position 33");
	/* a million '(' is refused by length before any recursion */
	buf_reset(&f);
	for (i = 0; i < 1000000; i++)
		buf_putc(&f, '(');
	cr_expect_eq(fcompile(fschema, c, f.ptr, NULL, &sql, args, &e),
		     ERR_INVALID);
	cr_expect_str_eq(e.msg, "filter: expression is longer than 4096 bytes");
	/* exactly at the limit: a long flat chain of || is fine */
	buf_reset(&f);
	buf_puts(&f, "id = \"c3\"");
	while (f.len + 13 <= FILTER_MAX_LEN)
		buf_puts(&f, " || id = \"c3\"");
	buf_reset(&sql);
	json_array_clear(args);
	cr_assert_eq(fcompile(fschema, c, f.ptr, NULL, &sql, args, &e),
		     0, "%s", e.msg);
	got = frun("chats", sql.ptr, args, NULL);
	cr_expect_str_eq(got, "c3");
	free(got);
	cr_expect_eq(fcompile(fschema, c, NULL, NULL, &sql, args, &e),
		     ERR_INVALID);
	json_decref(args);
	buf_release(&f);
	buf_release(&sql);
}

/* ---- sort ---------------------------------------------------------------- */

Test(filter, sort_orders)
{
	static const struct {
		const char *sort, *sql, *ids;
	} cases[] = {
		{ "-created", "records.created DESC, records.id ASC",
		  "c4,c3,c2,c1" },
		{ "created", "records.created ASC, records.id ASC",
		  "c1,c2,c3,c4" },
		{ "", "records.created ASC, records.id ASC", "c1,c2,c3,c4" },
		{ "priority,-title",
		  "COALESCE(json_extract(records.data, '$.priority'), 0) ASC, "
		  "json_extract(records.data, '$.title') DESC, records.id ASC",
		  "c3,c1,c4,c2" },
		{ " +archived , -id ",
		  "COALESCE(json_extract(records.data, '$.archived'), 0) ASC, "
		  "records.id DESC", "c4,c3,c1,c2" },
		{ "user,-updated",
		  "json_extract(records.data, '$.user') ASC, records.updated "
		  "DESC, records.id ASC", "c1,c3,c2,c4" },
		{ "@random", "RANDOM(), records.id ASC", NULL },
	};
	const struct collection *c = schema_find(fschema, "chats");
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf sql = BUF_INIT;
		struct err e = ERR_INIT;
		json_t *none = json_array();
		char *got;

		cr_assert_eq(fsort(c, cases[i].sort, NULL, &sql,
						 &e), 0, "%s: %s", cases[i].sort,
			     e.msg);
		cr_expect_str_eq(sql.ptr, cases[i].sql);
		got = frun("chats", "1", none, sql.ptr);
		if (cases[i].ids)
			cr_expect_str_eq(got, cases[i].ids, "%s", cases[i].sort);
		else
			cr_expect_eq(strlen(got), strlen("c1,c2,c3,c4"));
		free(got);
		json_decref(none);
		buf_release(&sql);
	}
}

Test(filter, sort_errors)
{
	static const struct {
		const char *sort, *msg;
	} cases[] = {
		{ "foo", "sort: unknown field 'foo' at position 1" },
		{ "title,-foo", "sort: unknown field 'foo' at position 8" },
		{ "title,,id", "sort: empty field at position 7" },
		{ "title,", "sort: empty field at position 7" },
		{ " ", "sort: empty field at position 2" },
		{ "-", "sort: empty field at position 1" },
		{ "meta", "sort: field 'meta' cannot be sorted on at position 1" },
		{ "notes", "sort: field 'notes' cannot be sorted on at position 1" },
		{ "user.name", "sort: unknown field 'user.name' at position 1" },
		{ "title; DROP TABLE records",
		  "sort: unknown field 'title; DROP TABLE records' at position 1" },
		{ "a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a",
		  "sort: unknown field 'a' at position 1" },
		{ "id,id,id,id,id,id,id,id,id,id,id,id,id,id,id,id,id",
		  "sort: more than 16 fields at position 49" },
	};
	const struct collection *c = schema_find(fschema, "chats");
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf sql = BUF_INIT;
		struct err e = ERR_INIT;

		buf_puts(&sql, "keep");
		cr_expect_eq(fsort(c, cases[i].sort, NULL, &sql, &e),
			     ERR_INVALID, "%s", cases[i].sort);
		cr_expect_str_eq(e.msg, cases[i].msg, "%s", cases[i].sort);
		cr_expect_str_eq(e.field, "sort");
		cr_expect_str_eq(sql.ptr, "keep");
		buf_release(&sql);
	}
}

Test(filter, sort_secret_for_superuser)
{
	const struct collection *c = schema_find(fschema, "chats");
	struct filter_auth su = fauth(SUPER);
	struct buf sql = BUF_INIT;
	struct err e = ERR_INIT;

	cr_assert_eq(fsort(c, "-notes", &su, &sql, &e), 0);
	cr_expect_str_eq(sql.ptr, "json_extract(records.data, '$.notes') DESC, "
			 "records.id ASC");
	buf_release(&sql);
}

/* Every access rule in the shipped schema must compile for every kind of
 * caller and be valid SQL. */
Test(filter, default_schema_rules_compile)
{
	struct schema *s = NULL;
	struct err e = ERR_INIT;
	size_t i, w;
	int a;

	cr_assert_eq(schema_load_default(&s, &e), 0, "%s", e.msg);
	for (i = 0; i < s->ncollections; i++) {
		const struct collection *c = &s->collections[i];

		for (a = 0; a < RULE__COUNT; a++) {
			if (!c->rules[a])
				continue;
			for (w = GUEST; w <= SUPER; w++) {
				struct filter_auth au = fauth((enum who)w);
				struct buf sql = BUF_INIT;
				json_t *args = json_array();
				char *got;

				cr_expect_eq(fcompile(s, c, c->rules[a], &au,
							    &sql, args, &e), 0,
					     "%s rule %d: %s", c->name, a, e.msg);
				got = frun(c->name, sql.len ? sql.ptr : "0", args,
					   NULL);
				free(got);
				json_decref(args);
				buf_release(&sql);
			}
		}
	}
	schema_free(s);
}

/* A collection's name field is the indexed records.name column, in filters
 * (relation hops included) and in sorts; other text fields stay JSON. */
Test(filter, name_field_uses_the_name_column)
{
	struct schema *s = NULL;
	struct err e = ERR_INIT;
	struct buf sql = BUF_INIT, order = BUF_INIT;
	json_t *args = json_array();
	const struct collection *c;

	cr_assert_eq(schema_load_default(&s, &e), 0, "%s", e.msg);
	c = schema_find(s, "mcp_servers");
	cr_assert_not_null(c);
	cr_assert_eq(fcompile(s, c, "name > 'a' && reason = 'b'", NULL,
				    &sql, args, &e), 0, "%s", e.msg);
	cr_expect_str_eq(sql.ptr, "(records.name > ? AND "
			 "json_extract(records.data, '$.reason') = ?)");
	cr_assert_eq(fsort(c, "-name,reason", NULL, &order, &e),
		     0, "%s", e.msg);
	cr_expect_str_eq(order.ptr, "records.name DESC, "
			 "json_extract(records.data, '$.reason') ASC, "
			 "records.id ASC");
	/* through a relation: the target's name column */
	buf_release(&sql);
	json_array_clear(args);
	c = schema_find(s, "ai_agents");
	cr_assert_eq(fcompile(s, c, "model.name = 'm'", NULL, &sql,
				    args, &e), 0, "%s", e.msg);
	cr_expect(strstr(sql.ptr, "SELECT r1.name FROM records r1") != NULL,
		  "%s", sql.ptr);
	json_decref(args);
	buf_release(&sql);
	buf_release(&order);
	schema_free(s);
}

/* filter_reads_record(): only literals and @request.auth.<field> are
 * record-free; anything it cannot parse counts as reading the record. */
Test(filter, reads_record)
{
	cr_assert_not(filter_reads_record(""));
	cr_assert_not(filter_reads_record(NULL));
	cr_assert_not(filter_reads_record("@request.auth.id != \"\""));
	cr_assert_not(filter_reads_record(
		"(@request.auth.role = 'agent' || @request.auth.role = 'admin')"));
	cr_assert_not(filter_reads_record("1 = 1 && 'a' != 'b'"));
	cr_assert(filter_reads_record("@request.auth.id != '' && user = "
				      "@request.auth.id"));
	cr_assert(filter_reads_record("chat.user = @request.auth.id"));
	cr_assert(filter_reads_record("created > @now"));
	cr_assert(filter_reads_record("@request.body.name = 'x'"));
	cr_assert(filter_reads_record("@request.auth.team.owner = 'x'"));
	cr_assert(filter_reads_record("@request.auth = 'x'"));
	cr_assert(filter_reads_record("@request.auth.id != ''  &&"));
	cr_assert(filter_reads_record("   "));
}
