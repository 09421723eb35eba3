/*
 * test_store.c - unit tests for the record store: create/get/update, the
 * unchanged no-op, partial updates, labels, if_revision, revisions equal to
 * change-log rows, generation vs revision, validation and relation errors
 * that leave nothing written, unique indexes, name collisions, cascade and
 * refused deletes, change-log retention, record sets, reopen and migrations,
 * concurrent writers, queries, and the embedded product schema.
 *
 * Most tests run against a small inline schema (st_schema_json) so that
 * they do not depend on the product schema's details. JSON in the tests is
 * written with ' for " to stay readable; tl_json() swaps them back.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "store/embedded.h"
#include "store/schema.h"
#include "store/store.h"
#include "testlib.h"

/*
 * agents: name field, a select; chats: no name field, a relation without
 * cascade to agents; messages: cascade to chats; perms: cascade to agents
 * and a unique (agent, tool, pattern) index.
 */
#define ST_PERMS_UNIQUE \
	"{'name': 'idx_perms_atp', 'unique': true," \
	" 'fields': ['agent', 'tool', 'pattern']}"
#define ST_SCHEMA(version, perms_indexes) \
	"{'version': " version ", 'collections': [" \
	" {'name': 'agents', 'id': 'pc_agents', 'kind': 'Agent'," \
	"  'nameField': 'name'," \
	"  'fields': [{'name': 'name', 'type': 'text', 'required': true}," \
	"             {'name': 'mode', 'type': 'select'," \
	"              'values': ['primary', 'sub']}," \
	"             {'name': 'temp', 'type': 'number'}]," \
	"  'indexes': [{'name': 'idx_agents_name', 'unique': true," \
	"               'fields': ['name']}]," \
	"  'rules': {'list': null, 'view': null, 'create': null," \
	"            'update': null, 'delete': null}}," \
	" {'name': 'chats', 'id': 'pc_chats', 'kind': 'Chat'," \
	"  'fields': [{'name': 'title', 'type': 'text', 'required': true}," \
	"             {'name': 'agent', 'type': 'relation'," \
	"              'collection': 'agents'}]," \
	"  'rules': {'list': null, 'view': null, 'create': null," \
	"            'update': null, 'delete': null}}," \
	" {'name': 'messages', 'id': 'pc_messages', 'kind': 'Message'," \
	"  'fields': [{'name': 'chat', 'type': 'relation', 'required': true," \
	"              'collection': 'chats', 'cascadeDelete': true}," \
	"             {'name': 'text', 'type': 'text'}]," \
	"  'rules': {'list': null, 'view': null, 'create': null," \
	"            'update': null, 'delete': null}}," \
	" {'name': 'perms', 'id': 'pc_perms', 'kind': 'Perm'," \
	"  'fields': [{'name': 'agent', 'type': 'relation'," \
	"              'collection': 'agents', 'cascadeDelete': true}," \
	"             {'name': 'tool', 'type': 'text', 'required': true}," \
	"             {'name': 'pattern', 'type': 'text'}]," \
	"  'indexes': [" perms_indexes "]," \
	"  'rules': {'list': null, 'view': null, 'create': null," \
	"            'update': null, 'delete': null}}," \
	" {'name': 'users', 'id': 'pc_users', 'kind': 'User', 'auth': true," \
	"  'fields': [{'name': 'email', 'type': 'email'}," \
	"             {'name': 'password', 'type': 'password'}," \
	"             {'name': 'tokenKey', 'type': 'text'}," \
	"             {'name': 'name', 'type': 'text'}]," \
	"  'rules': {'list': null, 'view': null, 'create': null," \
	"            'update': null, 'delete': null}}" \
	"]}"

static const char st_schema_json[] = ST_SCHEMA("3", ST_PERMS_UNIQUE);

static char st_dir[256];
static struct schema *st_sch;
static struct store *st;

static void st_setup(void)
{
	tl_store_setup(st_dir, sizeof(st_dir), "store", st_schema_json, 0,
		       &st_sch, &st);
}

static void st_teardown(void)
{
	tl_store_teardown(st_dir, &st_sch, &st);
}

TestSuite(store, .init = st_setup, .fini = st_teardown);

/* One put in its own transaction. */
static int st_put(const char *coll, const char *id, const char *name,
		  const char *data, bool partial, struct record *out,
		  enum store_action *act, struct err *e)
{
	struct store_put p;
	struct store_txn *t = NULL;
	json_t *d = data ? tl_json(data) : NULL;
	int rc;

	memset(&p, 0, sizeof(p));
	p.collection = coll;
	p.id = id;
	p.name = name;
	p.data = d;
	p.partial = partial;
	rc = store_begin(st, &t, e);
	cr_assert_eq(rc, 0, "begin: %s", e->msg);
	rc = store_txn_put(t, &p, out, act, e);
	if (rc)
		store_abort(t);
	else
		rc = store_commit(t, e);
	json_decref(d);
	return rc;
}

/* Create a record that must succeed; returns its id in id_out. */
static void st_make(const char *coll, const char *name, const char *data,
		    char id_out[ID_LEN + 1])
{
	struct err e = ERR_INIT;
	struct record r;
	enum store_action act;
	int rc;

	record_init(&r);
	rc = st_put(coll, NULL, name, data, false, &r, &act, &e);
	cr_assert_eq(rc, 0, "create %s %s: %s", coll, name ? name : "", e.msg);
	cr_assert_eq(act, STORE_CREATED);
	if (id_out)
		snprintf(id_out, ID_LEN + 1, "%s", r.id);
	record_release(&r);
}

static int64_t st_sql_int(const char *sql)
{
	char path[300];
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int64_t v = -1;

	snprintf(path, sizeof(path), "%s/pocket.db", st_dir);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK,
		     "%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

static void st_sql_exec(const char *sql)
{
	char path[300];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/pocket.db", st_dir);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK,
		     "%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

static int64_t st_rows(const char *table)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	return st_sql_int(sql);
}

static void st_assert_json(json_t *got, const char *want)
{
	json_t *w = tl_json(want);
	char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);

	cr_assert(json_equal(got, w), "got %s, want %s", g, want);
	free(g);
	json_decref(w);
}

/* ---- create / get / update ------------------------------------------- */

Test(store, create_and_get)
{
	struct err e = ERR_INIT;
	struct record r, g;
	enum store_action act;
	json_t *j;

	record_init(&r);
	record_init(&g);
	cr_assert_eq(st_put("agents", NULL, NULL, "{'name': 'poco', 'mode': 'primary'}",
			    false, &r, &act, &e), 0, "%s", e.msg);
	cr_assert_eq(act, STORE_CREATED);
	cr_assert(util_valid_id(r.id));
	cr_assert_str_eq(r.name, "poco");
	cr_assert_eq(r.generation, 1);
	cr_assert_eq(r.revision, 1);
	cr_assert_eq(store_head(st), 1);
	cr_assert_str_eq(r.created, r.updated);
	st_assert_json(r.data, "{'name': 'poco', 'mode': 'primary', 'temp': 0}");
	st_assert_json(r.labels, "{}");
	st_assert_json(r.status, "{}");

	cr_assert_eq(store_get(st, "agents", r.id, &g, &e), 0, "%s", e.msg);
	cr_assert_str_eq(g.name, "poco");
	cr_assert(json_equal(g.data, r.data));
	cr_assert_eq(g.revision, 1);
	record_release(&g);
	cr_assert_eq(store_get_by_name(st, "agents", "poco", &g, &e), 0);
	cr_assert_str_eq(g.id, r.id);

	j = record_to_json(&g);
	cr_assert_str_eq(json_string_value(json_object_get(j, "collection")),
			 "agents");
	cr_assert_eq(json_integer_value(json_object_get(j, "revision")), 1);
	cr_assert(json_is_object(json_object_get(j, "data")));
	json_decref(j);
	record_release(&g);

	cr_assert_eq(store_get(st, "agents", "aaaaaaaaaaaaaaa", &g, &e),
		     ERR_NOT_FOUND);
	cr_assert_eq(store_get_by_name(st, "agents", "nobody", &g, &e),
		     ERR_NOT_FOUND);
	cr_assert(strstr(e.msg, "nobody"), "%s", e.msg);
	cr_assert_eq(store_get(st, "nope", r.id, &g, &e), ERR_NOT_FOUND);
	cr_assert_null(g.name);
	cr_assert_str_eq(store_action_name(STORE_CREATED), "created");
	record_release(&r);
	record_release(&g);
}

Test(store, update_unchanged_and_partial)
{
	struct err e = ERR_INIT;
	struct record r1, r2;
	enum store_action act;

	record_init(&r1);
	record_init(&r2);
	cr_assert_eq(st_put("agents", NULL, "poco", "{'mode': 'primary', 'temp': 1}",
			    false, &r1, &act, &e), 0, "%s", e.msg);
	cr_assert_str_eq(json_string_value(json_object_get(r1.data, "name")),
			 "poco", "the name fills the name field");

	/* Same data again: nothing written. */
	cr_assert_eq(st_put("agents", NULL, "poco", "{'mode': 'primary', 'temp': 1}",
			    false, &r2, &act, &e), 0, "%s", e.msg);
	cr_assert_eq(act, STORE_UNCHANGED);
	cr_assert_eq(r2.revision, r1.revision);
	cr_assert_eq(r2.generation, 1);
	cr_assert_eq(store_head(st), 1);
	cr_assert_eq(st_rows("changelog"), 1);
	record_release(&r2);

	/* A real change. */
	cr_assert_eq(st_put("agents", r1.id, NULL,
			    "{'name': 'poco', 'mode': 'sub', 'temp': 1}", false,
			    &r2, &act, &e), 0, "%s", e.msg);
	cr_assert_eq(act, STORE_UPDATED);
	cr_assert_eq(r2.generation, 2);
	cr_assert_eq(r2.revision, 2);
	cr_assert_str_eq(r2.created, r1.created);
	record_release(&r2);

	/* Partial: only temp changes; a whole put would reset mode. */
	cr_assert_eq(st_put("agents", r1.id, NULL, "{'temp': 1.5}", true, &r2,
			    &act, &e), 0, "%s", e.msg);
	cr_assert_eq(act, STORE_UPDATED);
	st_assert_json(r2.data, "{'name': 'poco', 'mode': 'sub', 'temp': 1.5}");
	record_release(&r2);
	cr_assert_eq(st_put("agents", r1.id, NULL, "{'temp': 1.5}", true, &r2,
			    &act, &e), 0);
	cr_assert_eq(act, STORE_UNCHANGED, "a partial no-op writes nothing");
	record_release(&r2);
	cr_assert_eq(st_put("agents", r1.id, NULL, "{'name': 'poco', 'temp': 1.5}",
			    false, &r2, &act, &e), 0, "%s", e.msg);
	st_assert_json(r2.data, "{'name': 'poco', 'mode': '', 'temp': 1.5}");
	cr_assert_eq(r2.generation, 4);
	cr_assert_eq(r2.revision, 4);
	record_release(&r2);

	/* Rename through the name field (by id). */
	cr_assert_eq(st_put("agents", r1.id, NULL, "{'name': 'poco2'}", true,
			    &r2, &act, &e), 0, "%s", e.msg);
	cr_assert_str_eq(r2.name, "poco2");
	record_release(&r2);
	cr_assert_eq(store_get_by_name(st, "agents", "poco", &r2, &e),
		     ERR_NOT_FOUND);
	record_release(&r1);
	record_release(&r2);
}

Test(store, labels)
{
	struct err e = ERR_INIT;
	struct store_put p;
	struct store_txn *t;
	struct record r;
	enum store_action act;
	json_t *d = tl_json("{'name': 'a'}"), *l1 = tl_json("{'team': 'x'}");
	json_t *bad = tl_json("{'team': 1}");

	record_init(&r);
	memset(&p, 0, sizeof(p));
	p.collection = "agents";
	p.data = d;
	p.labels = l1;
	cr_assert_eq(store_begin(st, &t, &e), 0);
	cr_assert_eq(store_txn_put(t, &p, &r, &act, &e), 0, "%s", e.msg);
	st_assert_json(r.labels, "{'team': 'x'}");
	record_release(&r);

	p.labels = NULL;        /* keeps the stored labels */
	cr_assert_eq(store_txn_put(t, &p, &r, &act, &e), 0);
	cr_assert_eq(act, STORE_UNCHANGED);
	st_assert_json(r.labels, "{'team': 'x'}");
	record_release(&r);

	json_object_set_new(l1, "team", json_string("y"));
	p.labels = l1;
	cr_assert_eq(store_txn_put(t, &p, &r, &act, &e), 0);
	cr_assert_eq(act, STORE_UPDATED, "a label change is a change");
	cr_assert_eq(r.generation, 2);
	record_release(&r);

	p.labels = bad;
	cr_assert_eq(store_txn_put(t, &p, &r, &act, &e), ERR_INVALID);
	cr_assert_str_eq(e.field, "labels");
	cr_assert_eq(store_commit(t, &e), 0, "%s", e.msg);
	json_decref(d);
	json_decref(l1);
	json_decref(bad);
}

Test(store, if_revision)
{
	struct err e = ERR_INIT;
	struct store_put p;
	struct store_txn *t;
	char id[ID_LEN + 1];
	json_t *d = tl_json("{'name': 'a', 'temp': 2}");

	st_make("agents", "a", "{}", id);
	memset(&p, 0, sizeof(p));
	p.collection = "agents";
	p.id = id;
	p.data = d;
	p.if_revision = 7;
	cr_assert_eq(store_begin(st, &t, &e), 0);
	cr_assert_eq(store_txn_put(t, &p, NULL, NULL, &e), ERR_PRECONDITION);
	cr_assert(strstr(e.msg, "record 'a' is at revision 1, not 7"), "%s",
		  e.msg);
	cr_assert_eq(err_http_status(e.code), 412);
	cr_assert_eq(store_txn_delete(t, "agents", id, 9, &e),
		     ERR_PRECONDITION);
	p.if_revision = 1;
	cr_assert_eq(store_txn_put(t, &p, NULL, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), 0);
	cr_assert_eq(store_head(st), 2);
	json_decref(d);
}

Test(store, put_modes_and_ids)
{
	struct err e = ERR_INIT;
	struct store_put p;
	struct store_txn *t;
	struct record r;
	json_t *d = tl_json("{'title': 'hello'}");

	record_init(&r);
	memset(&p, 0, sizeof(p));
	p.collection = "chats";
	p.data = d;
	p.mode = STORE_UPDATE;
	p.id = "abcdefghij12345";
	cr_assert_eq(store_begin(st, &t, &e), 0);
	cr_assert_eq(store_txn_put(t, &p, NULL, NULL, &e), ERR_NOT_FOUND);
	p.mode = STORE_CREATE;
	cr_assert_eq(store_txn_put(t, &p, &r, NULL, &e), 0, "%s", e.msg);
	cr_assert_str_eq(r.id, "abcdefghij12345");
	cr_assert_str_eq(r.name, "abcdefghij12345", "name defaults to the id");
	record_release(&r);
	cr_assert_eq(store_txn_put(t, &p, NULL, NULL, &e), ERR_CONFLICT);
	cr_assert_str_eq(e.field, "id");
	p.id = "BAD";
	cr_assert_eq(store_txn_put(t, &p, NULL, NULL, &e), ERR_INVALID);
	cr_assert_str_eq(e.field, "id");
	p.id = NULL;
	p.name = "";
	cr_assert_eq(store_txn_put(t, &p, &r, NULL, &e), 0, "%s", e.msg);
	cr_assert_str_eq(r.name, r.id);
	record_release(&r);
	p.collection = "nope";
	cr_assert_eq(store_txn_put(t, &p, NULL, NULL, &e), ERR_NOT_FOUND);
	cr_assert_eq(store_commit(t, &e), 0);
	json_decref(d);
}

Test(store, names_are_checked)
{
	struct err e = ERR_INIT;
	char longname[260];

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(st_put("chats", NULL, longname, "{'title': 't'}", false,
			    NULL, NULL, &e), ERR_INVALID);
	cr_assert_str_eq(e.field, "name");
	cr_assert_eq(st_put("chats", NULL, "a\nb", "{'title': 't'}", false,
			    NULL, NULL, &e), ERR_INVALID);
	cr_assert_eq(st_put("agents", NULL, NULL, "{'mode': 'sub'}", false,
			    NULL, NULL, &e), ERR_INVALID);
	cr_assert_str_eq(e.field, "name", "%s", e.msg);
	cr_assert_eq(st_put("agents", NULL, "x", "{'name': 'y'}", false,
			    NULL, NULL, &e), ERR_INVALID);
	cr_assert_eq(st_rows("records"), 0);
}

/* ---- revisions and the change log ------------------------------------ */

struct st_walk {
	int n;
	int64_t last;
	int64_t revs[64];
	char actions[64][8];
};

static int st_collect(const struct store_change *c, void *arg)
{
	struct st_walk *w = arg;

	cr_assert_gt(c->revision, w->last, "revisions strictly increase");
	if (strcmp(c->action, "delete"))
		cr_assert_eq(json_integer_value(json_object_get(c->record,
								"revision")),
			     c->revision, "the logged record has its revision");
	cr_assert_str_eq(json_string_value(json_object_get(c->record, "id")),
			 c->id);
	w->last = c->revision;
	if (w->n < 64) {
		w->revs[w->n] = c->revision;
		snprintf(w->actions[w->n], sizeof(w->actions[0]), "%s",
			 c->action);
	}
	w->n++;
	return 0;
}

/* The change log's copy of a record, written from its parts
 * (store_write.c's change_text()), is record_to_json() of the record as
 * stored: names, labels and data that need escaping included. */
static int st_last_change(const struct store_change *c, void *arg)
{
	json_t **out = arg;

	json_decref(*out);
	*out = json_incref(c->record);
	return 0;
}

Test(store, changelog_row_is_the_record)
{
	struct err e = ERR_INIT;
	struct store_txn *t;
	struct store_put p;
	struct record r, got;
	json_t *logged = NULL, *want, *labels, *data;
	const char *name = "q\"uote\\back/slash \xc3\xa9\xf0\x9f\x98\x80";

	record_init(&r);
	record_init(&got);
	labels = json_pack("{s:s, s:s}", "team", "a\"b\\c\n", "x/y",
			   "\xc3\xa9");
	data = json_pack("{s:s, s:i}", "name", name, "temp", -3);
	memset(&p, 0, sizeof(p));
	p.collection = "agents";
	p.data = data;
	p.labels = labels;
	cr_assert_eq(store_begin(st, &t, &e), 0);
	cr_assert_eq(store_txn_put(t, &p, &r, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), 0, "%s", e.msg);
	cr_assert_eq(store_get(st, "agents", r.id, &got, &e), 0, "%s", e.msg);
	cr_assert_eq(store_changes(st, 0, 0, st_last_change, &logged, &e), 0);
	cr_assert_not_null(logged);
	want = record_to_json(&got);
	cr_assert(json_equal(logged, want), "logged %s\nwant %s",
		  json_dumps(logged, JSON_COMPACT), json_dumps(want, JSON_COMPACT));
	cr_assert_str_eq(json_string_value(json_object_get(logged, "name")),
			 name);
	json_decref(want);
	json_decref(logged);
	json_decref(labels);
	json_decref(data);
	record_release(&r);
	record_release(&got);
}

Test(store, revisions_are_changelog_rows)
{
	struct err e = ERR_INIT;
	struct store_txn *t;
	struct st_walk w;
	struct record r;
	char a[ID_LEN + 1], c[ID_LEN + 1];
	json_t *status = tl_json("{'phase': 'ready'}");
	int i;

	record_init(&r);
	st_make("agents", "a", "{}", a);
	st_make("chats", NULL, "{'title': 't'}", c);
	st_put("agents", a, NULL, "{'temp': 1}", true, NULL, NULL, &e);
	cr_assert_eq(store_begin(st, &t, &e), 0);
	cr_assert_eq(store_txn_set_status(t, "agents", a, status, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(store_txn_delete(t, "chats", c, 0, &e), 0, "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), 0);
	cr_assert_eq(store_head(st), 5);

	memset(&w, 0, sizeof(w));
	cr_assert_eq(store_changes(st, 0, 0, st_collect, &w, &e), 0);
	cr_assert_eq(w.n, 5);
	for (i = 0; i < 5; i++)
		cr_assert_eq(w.revs[i], i + 1, "no gaps");
	cr_assert_str_eq(w.actions[0], "create");
	cr_assert_str_eq(w.actions[2], "update");
	cr_assert_str_eq(w.actions[3], "update");
	cr_assert_str_eq(w.actions[4], "delete");
	cr_assert_eq(store_get(st, "agents", a, &r, &e), 0);
	cr_assert_eq(r.revision, 4, "the record carries its last change");
	cr_assert_eq(st_sql_int("SELECT max(revision) FROM changelog"), 5);

	memset(&w, 0, sizeof(w));
	cr_assert_eq(store_changes(st, 2, 2, st_collect, &w, &e), 0);
	cr_assert_eq(w.n, 2);
	cr_assert_eq(w.revs[0], 3);
	cr_assert_eq(store_changelog_oldest(st), 1);
	record_release(&r);
	json_decref(status);
}

/* store_auth_seq() moves with writes to auth collections only. */
Test(store, auth_seq_moves_with_auth_writes_only)
{
	struct err e = ERR_INIT;
	struct store_txn *t;
	char u[ID_LEN + 1];
	uint64_t a0, a1, a2;

	a0 = store_auth_seq(st);
	st_make("agents", "a", "{}", NULL);
	st_make("chats", NULL, "{'title': 't'}", NULL);
	cr_assert_eq(store_auth_seq(st), a0, "no auth record changed");
	st_make("users", NULL, "{'email': 'u@example.com', 'tokenKey': 'k1'}",
		u);
	a1 = store_auth_seq(st);
	cr_assert_neq(a1, a0, "a user was created");
	st_put("users", u, NULL, "{'name': 'U'}", true, NULL, NULL, &e);
	a2 = store_auth_seq(st);
	cr_assert_neq(a2, a1, "a user was updated");
	cr_assert_eq(store_begin(st, &t, &e), 0);
	cr_assert_eq(store_txn_delete(t, "users", u, 0, &e), 0, "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), 0);
	cr_assert_neq(store_auth_seq(st), a2, "a user was deleted");
}

/* store_change_keys(): the same rows and flags, no records. */
struct st_keys {
	int n;
	int64_t revs[8];
	bool status_only[8];
	char colls[8][32];
};

static int st_collect_keys(const struct store_change *c, void *arg)
{
	struct st_keys *k = arg;

	cr_assert_null(c->record);
	cr_assert_not_null(c->id);
	if (k->n < 8) {
		k->revs[k->n] = c->revision;
		k->status_only[k->n] = c->status_only;
		snprintf(k->colls[k->n], sizeof(k->colls[0]), "%s",
			 c->collection);
	}
	k->n++;
	return 0;
}

Test(store, change_keys_walk_without_records)
{
	struct err e = ERR_INIT;
	struct store_txn *t;
	struct st_keys k;
	char a[ID_LEN + 1];
	json_t *status = tl_json("{'phase': 'ready'}");

	st_make("agents", "a", "{}", a);
	cr_assert_eq(store_begin(st, &t, &e), 0);
	cr_assert_eq(store_txn_set_status(t, "agents", a, status, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), 0);
	st_make("chats", NULL, "{'title': 't'}", NULL);

	memset(&k, 0, sizeof(k));
	cr_assert_eq(store_change_keys(st, 0, 0, st_collect_keys, &k, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(k.n, 3);
	cr_assert_eq(k.revs[0], 1);
	cr_assert_eq(k.revs[2], 3);
	cr_assert_not(k.status_only[0]);
	cr_assert(k.status_only[1], "a status write reads as status-only");
	cr_assert_str_eq(k.colls[2], "chats");

	memset(&k, 0, sizeof(k));
	cr_assert_eq(store_change_keys(st, 1, 1, st_collect_keys, &k, &e), 0);
	cr_assert_eq(k.n, 1, "the limit holds");
	cr_assert_eq(k.revs[0], 2);
	json_decref(status);
}

static int st_count_change(const struct store_change *c, void *arg)
{
	(void)c;
	(*(int *)arg)++;
	return 0;
}

/* A change-log walk from inside a walk's callback (same thread). */
static int st_nested_change(const struct store_change *c, void *arg)
{
	struct err e = ERR_INIT;
	int inner = 0;

	cr_assert_eq(store_changes(st, 0, 0, st_count_change, &inner, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(inner, 3);
	(*(int *)arg)++;
	return c->revision == 2 ? 7 : 0;
}

Test(store, nested_change_walks)
{
	struct err e = ERR_INIT;
	int outer = 0;

	st_make("agents", "a", "{}", NULL);
	st_make("agents", "b", "{}", NULL);
	st_make("agents", "c", "{}", NULL);
	cr_assert_eq(store_changes(st, 0, 0, st_nested_change, &outer, &e), 7);
	cr_assert_eq(outer, 2, "the walk stopped where the callback said");
}

Test(store, status_bumps_revision_not_generation)
{
	struct err e = ERR_INIT;
	struct store_txn *t;
	struct record r;
	char a[ID_LEN + 1];
	json_t *s1 = tl_json("{'conditions': [{'type': 'Ready'}]}");
	json_t *bad = json_string("x");

	record_init(&r);
	st_make("agents", "a", "{}", a);
	cr_assert_eq(store_begin(st, &t, &e), 0);
	cr_assert_eq(store_txn_set_status(t, "agents", a, s1, &e), 0);
	cr_assert_eq(store_txn_set_status(t, "agents", a, s1, &e), 0);
	cr_assert_eq(store_txn_set_status(t, "agents", a, bad, &e),
		     ERR_INVALID);
	cr_assert_eq(store_txn_set_status(t, "agents", "zzzzzzzzzzzzzzz", s1,
					  &e), ERR_NOT_FOUND);
	cr_assert_eq(store_commit(t, &e), 0);
	cr_assert_eq(store_get(st, "agents", a, &r, &e), 0);
	cr_assert_eq(r.generation, 1);
	cr_assert_eq(r.revision, 2, "one write: the second was equal");
	st_assert_json(r.status, "{'conditions': [{'type': 'Ready'}]}");
	record_release(&r);
	cr_assert_eq(st_rows("changelog"), 2);

	/* A data change keeps the status. */
	cr_assert_eq(st_put("agents", a, NULL, "{'temp': 3}", true, &r, NULL,
			    &e), 0);
	cr_assert_eq(r.generation, 2);
	cr_assert_eq(r.revision, 3);
	st_assert_json(r.status, "{'conditions': [{'type': 'Ready'}]}");
	record_release(&r);
	json_decref(s1);
	json_decref(bad);
}

/* ---- validation ------------------------------------------------------- */

Test(store, validation_errors_write_nothing)
{
	static const struct {
		const char *coll, *data, *field;
	} cases[] = {
		{ "agents", "{'name': 'a', 'mode': 'boss'}", "mode" },
		{ "agents", "{'name': 'a', 'temp': 'hot'}", "temp" },
		{ "agents", "{'name': 'a', 'colour': 'red'}", "colour" },
		{ "chats", "{'title': ''}", "title" },
		{ "chats", "{'title': 't', 'agent': 'not-an-id'}", "agent" },
		{ "messages", "{'text': 'x'}", "chat" },
	};
	struct err e = ERR_INIT;
	struct store_txn *t;
	struct store_put p;
	json_t *good = tl_json("{'name': 'good'}"), *d;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(store_begin(st, &t, &e), 0);
		memset(&p, 0, sizeof(p));
		p.collection = "agents";
		p.data = good;
		cr_assert_eq(store_txn_put(t, &p, NULL, NULL, &e), 0);
		d = tl_json(cases[i].data);
		p.collection = cases[i].coll;
		p.data = d;
		cr_assert_eq(store_txn_put(t, &p, NULL, NULL, &e), ERR_INVALID,
			     "case %zu", i);
		cr_assert_str_eq(e.field, cases[i].field, "case %zu: %s", i,
				 e.msg);
		store_abort(t);
		json_decref(d);
	}
	cr_assert_eq(st_rows("records"), 0, "abort kept nothing");
	cr_assert_eq(st_rows("changelog"), 0);
	cr_assert_eq(store_head(st), 0);
	json_decref(good);
}

Test(store, relation_must_exist)
{
	struct err e = ERR_INIT;
	struct store_txn *t;
	struct store_put p;
	struct record a;
	json_t *d;

	record_init(&a);
	cr_assert_eq(st_put("chats", NULL, NULL,
			    "{'title': 't', 'agent': 'aaaaaaaaaaaaaaa'}", false,
			    NULL, NULL, &e), ERR_INVALID);
	cr_assert_str_eq(e.field, "agent");
	cr_assert(strstr(e.msg, "no agents record with id 'aaaaaaaaaaaaaaa'"),
		  "%s", e.msg);

	/* A target created earlier in the same transaction counts. */
	cr_assert_eq(store_begin(st, &t, &e), 0);
	memset(&p, 0, sizeof(p));
	p.collection = "agents";
	p.data = d = tl_json("{'name': 'a'}");
	cr_assert_eq(store_txn_put(t, &p, &a, NULL, &e), 0);
	json_decref(d);
	d = json_pack("{s:s,s:s}", "title", "t", "agent", a.id);
	p.collection = "chats";
	p.data = d;
	cr_assert_eq(store_txn_put(t, &p, NULL, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), 0);
	cr_assert_eq(st_rows("records"), 2);
	json_decref(d);
	record_release(&a);
}

Test(store, unique_index)
{
	struct err e = ERR_INIT;
	char a[ID_LEN + 1], p2[ID_LEN + 1];
	char d1[128], d2[128];
	int64_t head;

	st_make("agents", "a", "{}", a);
	snprintf(d1, sizeof(d1), "{'agent': '%s', 'tool': 'bash', 'pattern': '*'}", a);
	snprintf(d2, sizeof(d2), "{'agent': '%s', 'tool': 'bash', 'pattern': 'ls'}", a);
	st_make("perms", NULL, d1, NULL);
	st_make("perms", NULL, d2, p2);
	head = store_head(st);

	cr_assert_eq(st_put("perms", NULL, NULL, d1, false, NULL, NULL, &e),
		     ERR_CONFLICT);
	cr_assert_str_eq(e.field, "agent");
	cr_assert(strstr(e.msg, "is not unique for perms (agent, tool, pattern)"),
		  "%s", e.msg);
	cr_assert(strstr(e.msg, "'bash', '*'"), "%s", e.msg);
	cr_assert_eq(err_http_status(e.code), 409);

	/* Updating into the other's values is refused too. */
	cr_assert_eq(st_put("perms", p2, NULL, "{'pattern': '*'}", true, NULL,
			    NULL, &e), ERR_CONFLICT);
	cr_assert_str_eq(e.field, "agent");
	cr_assert_eq(store_head(st), head, "nothing written");
	cr_assert_eq(st_rows("records"), 3);

	/* A global rule (empty agent) with the same tool/pattern is fine. */
	st_make("perms", NULL, "{'tool': 'bash', 'pattern': '*'}", NULL);
	cr_assert_eq(st_put("perms", NULL, NULL, "{'tool': 'bash', 'pattern': '*'}",
			    false, NULL, NULL, &e), ERR_CONFLICT);
}

Test(store, name_collision)
{
	struct err e = ERR_INIT;
	struct store_put p;
	struct store_txn *t;
	char b[ID_LEN + 1];
	json_t *d = tl_json("{'name': 'a'}");

	st_make("chats", "c1", "{'title': 't'}", NULL);
	cr_assert_eq(st_put("chats", "bbbbbbbbbbbbbbb", "c1", "{'title': 'u'}",
			    false, NULL, NULL, &e), ERR_CONFLICT);
	cr_assert_str_eq(e.field, "name");
	cr_assert(strstr(e.msg, "'c1'"), "%s", e.msg);

	st_make("agents", "a", "{}", NULL);
	st_make("agents", "b", "{}", b);
	cr_assert_eq(st_put("agents", b, NULL, "{'name': 'a'}", true, NULL,
			    NULL, &e), ERR_CONFLICT);
	cr_assert_str_eq(e.field, "name");

	memset(&p, 0, sizeof(p));
	p.collection = "agents";
	p.data = d;
	p.mode = STORE_CREATE;
	cr_assert_eq(store_begin(st, &t, &e), 0);
	cr_assert_eq(store_txn_put(t, &p, NULL, NULL, &e), ERR_CONFLICT);
	cr_assert_str_eq(e.field, "name");
	store_abort(t);
	cr_assert_eq(st_rows("records"), 3);
	json_decref(d);
}

/* ---- delete ----------------------------------------------------------- */

Test(store, cascade_and_refused_delete)
{
	struct err e = ERR_INIT;
	struct store_txn *t;
	struct st_walk w;
	struct record r;
	char a[ID_LEN + 1], c[ID_LEN + 1], data[128];
	int64_t head;
	int i;

	record_init(&r);
	st_make("agents", "a", "{}", a);
	for (i = 0; i < 2; i++) {
		snprintf(data, sizeof(data), "{'agent': '%s', 'tool': 't%d'}",
			 a, i);
		st_make("perms", NULL, data, NULL);
	}
	snprintf(data, sizeof(data), "{'title': 't', 'agent': '%s'}", a);
	st_make("chats", "chat1", data, c);
	for (i = 0; i < 3; i++) {
		snprintf(data, sizeof(data), "{'chat': '%s', 'text': 'm%d'}",
			 c, i);
		st_make("messages", NULL, data, NULL);
	}
	cr_assert_eq(st_rows("records"), 7);

	/* chats.agent does not cascade: the agent cannot go. */
	head = store_head(st);
	cr_assert_eq(store_begin(st, &t, &e), 0);
	cr_assert_eq(store_txn_delete(t, "agents", a, 0, &e), ERR_CONFLICT);
	cr_assert(strstr(e.msg, "record 'a' is referenced by chats.agent of 'chat1'"),
		  "%s", e.msg);
	store_abort(t);
	cr_assert_eq(st_rows("records"), 7, "nothing deleted");
	cr_assert_eq(store_head(st), head);

	/* Deleting the chat takes its messages along, each logged. */
	cr_assert_eq(store_begin(st, &t, &e), 0);
	cr_assert_eq(store_txn_delete(t, "chats", c, 0, &e), 0, "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), 0);
	cr_assert_eq(st_rows("records"), 3);
	memset(&w, 0, sizeof(w));
	cr_assert_eq(store_changes(st, head, 0, st_collect, &w, &e), 0);
	cr_assert_eq(w.n, 4);
	for (i = 0; i < 4; i++)
		cr_assert_str_eq(w.actions[i], "delete");
	cr_assert_eq(st_sql_int("SELECT count(*) FROM changelog WHERE "
				"action = 'delete' AND collection = 'messages'"),
		     3);
	cr_assert_eq(st_sql_int("SELECT max(revision) FROM changelog WHERE "
				"collection = 'chats'"), store_head(st),
		     "referrers go first, the chat last");

	/* Now the agent goes, with its perms. */
	cr_assert_eq(store_begin(st, &t, &e), 0);
	cr_assert_eq(store_txn_delete(t, "agents", a, 0, &e), 0, "%s", e.msg);
	cr_assert_eq(store_txn_delete(t, "agents", a, 0, &e), ERR_NOT_FOUND);
	cr_assert_eq(store_commit(t, &e), 0);
	cr_assert_eq(st_rows("records"), 0);
	cr_assert_eq(store_head(st), head + 7);
	record_release(&r);
}

/* ---- change-log retention ----------------------------------------------- */

Test(store, changelog_retention)
{
	struct err e = ERR_INIT;
	struct st_walk w;
	char name[16];
	int i;

	store_close(st);
	st = tl_store_open(st_sch, st_dir, 5);
	cr_assert_eq(store_changelog_oldest(st), 1, "empty: head + 1");
	for (i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "a%d", i);
		st_make("agents", name, "{}", NULL);
	}
	cr_assert_eq(store_head(st), 20);
	cr_assert_eq(st_rows("changelog"), 5);
	cr_assert_eq(store_changelog_oldest(st), 16);
	memset(&w, 0, sizeof(w));
	cr_assert_eq(store_changes(st, 0, 0, st_collect, &w, &e), 0);
	cr_assert_eq(w.n, 5);
	cr_assert_eq(w.revs[0], 16);
	cr_assert_eq(w.revs[4], 20);

	/* Revisions continue after the trim, also across a reopen. */
	store_close(st);
	st = tl_store_open(st_sch, st_dir, 1);
	st_make("agents", "more", "{}", NULL);
	cr_assert_eq(store_head(st), 21);
	cr_assert_eq(st_rows("changelog"), 1, "the head row is kept");
	cr_assert_eq(store_changelog_oldest(st), 21);
}

/* ---- record sets (apply keeps its apply sets in them) ---------------- */

Test(store, applysets)
{
	struct err e = ERR_INIT;
	struct store_txn *t;
	char a[ID_LEN + 1], b[ID_LEN + 1];
	json_t *m = NULL, *set;

	st_make("agents", "a", "{}", a);
	st_make("agents", "b", "{}", b);
	cr_assert_eq(store_begin(st, &t, &e), 0);
	cr_assert_eq(store_txn_recset_get(t, "default", &m, &e), 0);
	cr_assert_eq(json_array_size(m), 0);
	json_decref(m);
	set = json_pack("[{s:s,s:s},{s:s,s:s}]", "collection", "agents", "id",
			a, "collection", "agents", "id", b);
	cr_assert_eq(store_txn_recset_put(t, "default", set, &e), 0);
	json_decref(set);
	cr_assert_eq(store_txn_recset_get(t, "default", &m, &e), 0);
	cr_assert_eq(json_array_size(m), 2);
	json_decref(m);
	set = json_pack("[{s:s}]", "collection", "agents");
	cr_assert_eq(store_txn_recset_put(t, "default", set, &e),
		     ERR_INVALID);
	json_decref(set);
	cr_assert_eq(store_commit(t, &e), 0);

	/* A deleted record leaves its sets; a put replaces the members. */
	cr_assert_eq(store_begin(st, &t, &e), 0);
	cr_assert_eq(store_txn_delete(t, "agents", a, 0, &e), 0);
	cr_assert_eq(store_txn_recset_get(t, "default", &m, &e), 0);
	cr_assert_eq(json_array_size(m), 1);
	cr_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(m, 0), "id")), b);
	json_decref(m);
	set = json_array();
	cr_assert_eq(store_txn_recset_put(t, "default", set, &e), 0);
	json_decref(set);
	cr_assert_eq(store_commit(t, &e), 0);
	cr_assert_eq(st_rows("applysets"), 0);
}

/* ---- open, reopen, migrations --------------------------------------- */

Test(store, reopen_keeps_data_and_levels)
{
	struct err e = ERR_INIT;
	struct store_options o = { .dir = st_dir, .read_only = false };
	struct schema *v4;
	struct record r;
	char a[ID_LEN + 1];

	record_init(&r);
	st_make("agents", "a", "{'temp': 2}", a);
	cr_assert_eq(store_migration_level(st), (int)embedded_nmigrations);
	cr_assert_eq(store_schema_version(st), 3);
	store_close(st);
	st = tl_store_open(st_sch, st_dir, 0);
	cr_assert_eq(store_get(st, "agents", a, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(json_integer_value(json_object_get(r.data, "temp")), 2);
	record_release(&r);
	cr_assert_eq(store_head(st), 1);
	cr_assert_eq(st_sql_int("PRAGMA user_version"),
		     (int64_t)embedded_nmigrations);
	st_make("agents", "b", "{}", NULL);
	cr_assert_eq(store_head(st), 2);
	store_close(st);
	st = NULL;

	/* A new schema version is recorded; the old one stays readable;
	 * an index the schema dropped goes away. */
	v4 = tl_schema_text(ST_SCHEMA("4", ""));
	cr_assert_eq(store_open(&st, v4, &o, &e), 0, "%s", e.msg);
	cr_assert_eq(store_schema_version(st), 4);
	cr_assert_eq(st_sql_int("SELECT value FROM meta WHERE key = 'schema_version_previous'"),
		     3);
	cr_assert_eq(st_sql_int("SELECT count(*) FROM sqlite_master WHERE name LIKE 'u_perms%'"),
		     0);
	cr_assert_eq(st_sql_int("SELECT count(*) FROM sqlite_master WHERE name = 'r_perms_agent'"),
		     1, "a relation lookup index replaces it");
	store_close(st);
	st = tl_store_open(st_sch, st_dir, 0);
	cr_assert_eq(st_sql_int("SELECT count(*) FROM sqlite_master WHERE name LIKE 'u_perms%'"),
		     1);
	schema_free(v4);
}

Test(store, new_unique_index_over_duplicates)
{
	struct err e = ERR_INIT;
	struct store_options o = { .dir = st_dir, .read_only = false };
	struct schema *loose = tl_schema_text(ST_SCHEMA("4", ""));

	store_close(st);
	st = tl_store_open(loose, st_dir, 0);
	st_make("perms", NULL, "{'tool': 'bash', 'pattern': '*'}", NULL);
	st_make("perms", NULL, "{'tool': 'bash', 'pattern': '*'}", NULL);
	store_close(st);
	st = NULL;
	cr_assert_eq(store_open(&st, st_sch, &o, &e), ERR_CONFLICT);
	cr_assert_null(st);
	cr_assert(strstr(e.msg, "existing records of perms (agent, tool, pattern) are not unique"),
		  "%s", e.msg);
	schema_free(loose);
}

Test(store, future_store_is_refused)
{
	struct err e = ERR_INIT;
	struct store_options o = { .dir = st_dir, .read_only = false };
	struct store *s = NULL;

	store_close(st);
	st = NULL;
	st_sql_exec("PRAGMA user_version = 99");
	cr_assert_neq(store_open(&s, st_sch, &o, &e), 0);
	cr_assert_null(s);
	cr_assert(strstr(e.msg, "newer than this pocketctl"), "%s", e.msg);
	o.read_only = true;
	cr_assert_neq(store_open(&s, st_sch, &o, &e), 0);
	cr_assert(strstr(e.msg, "99"), "%s", e.msg);
}

Test(store, read_only)
{
	struct err e = ERR_INIT;
	struct store_options o = { .dir = st_dir, .read_only = true };
	struct store *ro = NULL;
	struct store_txn *t = NULL;
	struct record r;
	char a[ID_LEN + 1];

	record_init(&r);
	st_make("agents", "a", "{}", a);
	cr_assert_eq(store_open(&ro, st_sch, &o, &e), 0, "%s", e.msg);
	cr_assert_eq(store_begin(ro, &t, &e), ERR_FORBIDDEN);
	cr_assert_eq(store_get(ro, "agents", a, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(store_head(ro), 1);
	cr_assert_eq(store_schema_version(ro), 3);
	record_release(&r);
	store_close(ro);

	o.dir = "/nonexistent/pocket";
	cr_assert_eq(store_open(&ro, st_sch, &o, &e), ERR_NOT_FOUND);
}

Test(store, nested_begin_is_refused)
{
	struct err e = ERR_INIT;
	struct store_txn *t, *t2 = NULL;

	cr_assert_eq(store_begin(st, &t, &e), 0);
	cr_assert_eq(store_begin(st, &t2, &e), ERR_INTERNAL);
	cr_assert_null(t2);
	store_abort(t);
	cr_assert_eq(store_begin(st, &t, &e), 0);
	store_abort(t);
	store_abort(NULL);
}

/* ---- concurrency ------------------------------------------------------ */

struct st_writer {
	int base;
	int errors;
	int64_t revs[500];
};

static void *st_write_loop(void *arg)
{
	struct st_writer *w = arg;
	struct err e = ERR_INIT;
	struct store_txn *t;
	struct store_put p;
	struct record r;
	char name[32];
	json_t *d;
	int i;

	for (i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "w%d-%d", w->base, i);
		d = json_pack("{s:s}", "title", name);
		memset(&p, 0, sizeof(p));
		p.collection = "chats";
		p.name = name;
		p.data = d;
		record_init(&r);
		if (store_begin(st, &t, &e) ||
		    store_txn_put(t, &p, &r, NULL, &e)) {
			w->errors++;
			if (t)
				store_abort(t);
		} else if (store_commit(t, &e)) {
			w->errors++;
		}
		w->revs[i] = r.revision;
		record_release(&r);
		json_decref(d);
		/* Reads from the pool while the other thread writes. */
		if (i % 50 == 0 && store_get_by_name(st, "chats", name, &r, &e))
			w->errors++;
		record_release(&r);
	}
	return NULL;
}

static int st_cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

Test(store, concurrent_writers, .timeout = 120)
{
	static struct st_writer w[2];
	static int64_t all[1000];
	pthread_t th[2];
	int i;

	for (i = 0; i < 2; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].base = i;
		cr_assert_eq(pthread_create(&th[i], NULL, st_write_loop, &w[i]), 0);
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(w[0].errors + w[1].errors, 0);
	memcpy(all, w[0].revs, sizeof(w[0].revs));
	memcpy(all + 500, w[1].revs, sizeof(w[1].revs));
	qsort(all, 1000, sizeof(all[0]), st_cmp64);
	for (i = 0; i < 1000; i++)
		cr_assert_eq(all[i], i + 1, "revisions are distinct, gap-free");
	cr_assert_eq(store_head(st), 1000);
	cr_assert_eq(st_rows("records"), 1000);
}

/* ---- queries ---------------------------------------------------------- */

struct st_list {
	int n;
	char names[8][16];
	bool nested_ok;
};

static int st_list_cb(const struct record *r, void *arg)
{
	struct st_list *l = arg;
	struct record again;
	struct err e = ERR_INIT;

	/* A read from inside a walk must not wait on the walk itself. */
	record_init(&again);
	l->nested_ok = store_get(st, r->collection, r->id, &again, &e) == 0;
	record_release(&again);
	if (l->n < 8)
		snprintf(l->names[l->n], sizeof(l->names[0]), "%s", r->name);
	l->n++;
	return l->n == 3 ? 42 : 0;
}

Test(store, list_and_count)
{
	struct err e = ERR_INIT;
	struct query_pred *where;
	struct query_sort order = { 0 };
	struct store_query q;
	struct st_list l;
	char name[16], data[64];
	int64_t n;
	int i;

	for (i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "a%d", i);
		snprintf(data, sizeof(data), "{'temp': %d, 'mode': '%s'}", i,
			 i % 2 ? "sub" : "primary");
		st_make("agents", name, data, NULL);
	}
	where = query_and(query_cmp(QUERY_EQ, query_field("mode", false),
				    query_literal(json_string("sub"))),
			  query_cmp(QUERY_GTE, query_field("temp", false),
				    query_literal(json_integer(2))));
	cr_assert_not_null(where);
	query_sort_add(&order, QUERY_SORT_FIELD, "temp", false, true);
	memset(&q, 0, sizeof(q));
	q.where = where;
	q.order = &order;
	memset(&l, 0, sizeof(l));
	cr_assert_eq(store_list(st, "agents", &q, st_list_cb, &l, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(l.n, 2);
	cr_assert_str_eq(l.names[0], "a5");
	cr_assert_str_eq(l.names[1], "a3");
	cr_assert(l.nested_ok);
	cr_assert_eq(store_count(st, "agents", &q, &n, &e), 0);
	cr_assert_eq(n, 2);
	query_pred_free(where);

	/* Default order, limit/offset, and a stopping walker. */
	memset(&q, 0, sizeof(q));
	memset(&order, 0, sizeof(order));
	query_sort_add(&order, QUERY_SORT_COLUMN, "name", false, false);
	q.order = &order;
	q.limit = 2;
	q.offset = 1;
	memset(&l, 0, sizeof(l));
	cr_assert_eq(store_list(st, "agents", &q, st_list_cb, &l, &e), 0);
	cr_assert_eq(l.n, 2);
	cr_assert_str_eq(l.names[0], "a1");
	memset(&l, 0, sizeof(l));
	cr_assert_eq(store_list(st, "agents", NULL, st_list_cb, &l, &e), 42);
	cr_assert_eq(l.n, 3);
	cr_assert_eq(store_count(st, "agents", NULL, &n, &e), 0);
	cr_assert_eq(n, 6);
	cr_assert_eq(store_count(st, "chats", NULL, &n, &e), 0);
	cr_assert_eq(n, 0);

	/* Bad queries are refused, not run: a value that is not a scalar, a
	 * column the records table does not have, a name that is not one. */
	where = query_cmp(QUERY_EQ, query_column("name"),
			  query_literal(json_object()));
	q.where = where;
	cr_assert_eq(store_count(st, "agents", &q, &n, &e), ERR_INVALID);
	query_pred_free(where);
	where = query_cmp(QUERY_EQ, query_column("nope"),
			  query_literal(json_string("a")));
	q.where = where;
	cr_assert_eq(store_count(st, "agents", &q, &n, &e), ERR_INVALID);
	cr_assert(strstr(e.msg, "'nope'"), "%s", e.msg);
	query_pred_free(where);
	where = query_cmp(QUERY_EQ, query_field("1); DROP TABLE records; --",
						false),
			  query_literal(json_null()));
	q.where = where;
	cr_assert_eq(store_count(st, "agents", &q, &n, &e), ERR_INVALID);
	query_pred_free(where);
	where = query_pred_new(QUERY_TRUE);
	q.where = where;
	cr_assert_eq(store_count(st, "agents", &q, &n, &e), 0);
	cr_assert_eq(n, 6);
	query_pred_free(where);
	cr_assert_eq(store_count(st, "nope", NULL, &n, &e), ERR_NOT_FOUND);
}

/* store_list_rows(): the rows as stored, in the query's order, data as the
 * text the store wrote; store_data_clean() notices a key the schema does
 * not have, once, and remembers. */
struct st_rows {
	int n;
	char ids[4][ID_LEN + 1];
	json_t *data[4];
};

static int st_rows_cb(const struct store_row *row, void *arg)
{
	struct st_rows *r = arg;

	cr_assert_lt(r->n, 4);
	cr_assert_eq(strlen(row->id), ID_LEN);
	cr_assert_eq(strlen(row->created), TIME_LEN);
	cr_assert_gt(row->revision, 0);
	snprintf(r->ids[r->n], sizeof(r->ids[0]), "%s", row->id);
	r->data[r->n] = json_loadb(row->data, row->data_len, 0, NULL);
	cr_assert_not_null(r->data[r->n], "%.*s", (int)row->data_len,
			   row->data);
	r->n++;
	return 0;
}

Test(store, rows_as_stored_and_foreign_keys_noticed)
{
	struct err e = ERR_INIT;
	struct query_sort order = { 0 };
	struct store_query q;
	struct st_rows rows;
	struct record r;
	bool clean = false;
	int i;

	st_make("agents", "r1", "{'temp': 1, 'mode': 'primary'}", NULL);
	st_make("agents", "r2", "{'temp': 2, 'mode': 'sub'}", NULL);
	query_sort_add(&order, QUERY_SORT_COLUMN, "name", false, true);
	memset(&q, 0, sizeof(q));
	q.order = &order;
	memset(&rows, 0, sizeof(rows));
	cr_assert_eq(store_list_rows(st, "agents", &q, st_rows_cb, &rows, &e),
		     0, "%s", e.msg);
	cr_assert_eq(rows.n, 2);
	for (i = 0; i < 2; i++) {
		cr_assert_eq(store_get(st, "agents", rows.ids[i], &r, &e), 0);
		cr_assert(json_equal(rows.data[i], r.data));
		cr_assert_str_eq(r.name, i ? "r1" : "r2");
		record_release(&r);
		json_decref(rows.data[i]);
	}
	cr_assert_eq(store_list_rows(st, "nope", NULL, st_rows_cb, &rows, &e),
		     ERR_NOT_FOUND);
	cr_assert_eq(store_data_clean(st, "agents", &clean, &e), 0, "%s",
		     e.msg);
	cr_assert(clean);

	/* A key the schema does not have, written behind the store's back
	 * (as an older schema would have): a fresh store notices. */
	store_close(st);
	st_sql_exec("UPDATE records SET data = json_set(data, '$.gone', 1) "
		    "WHERE collection = 'agents' AND name = 'r1'");
	st = tl_store_open(st_sch, st_dir, 0);
	cr_assert_eq(store_data_clean(st, "agents", &clean, &e), 0, "%s",
		     e.msg);
	cr_assert_not(clean);
	cr_assert_eq(store_data_clean(st, "chats", &clean, &e), 0);
	cr_assert(clean, "an empty collection is clean");
}

/* ---- the product schema ---------------------------------------------- */

Test(store, default_schema)
{
	struct err e = ERR_INIT;
	struct schema *def = NULL;
	struct record r;
	enum store_action act;
	char path[300];

	record_init(&r);
	store_close(st);
	st = NULL;
	tl_rmtree(st_dir);
	snprintf(path, sizeof(path), "%s/sub/data", st_dir);
	cr_assert_eq(schema_load_default(&def, &e), 0, "%s", e.msg);
	{
		struct store_options o = { .dir = path, .read_only = false };
		struct stat sb;

		cr_assert_eq(store_open(&st, def, &o, &e), 0, "%s", e.msg);
		cr_assert_eq(stat(path, &sb), 0);
		cr_assert_eq(sb.st_mode & 0777, 0700);
	}
	cr_assert_eq(st_put("ai_prompts", NULL, "persona", "{'body': 'hi'}",
			    false, &r, &act, &e), 0, "%s", e.msg);
	cr_assert_eq(act, STORE_CREATED);
	cr_assert_str_eq(r.name, "persona");
	record_release(&r);
	store_close(st);
	st = NULL;
	schema_free(def);
}

/* The condition "mode = m" on agents (caller frees). */
static struct query_pred *st_mode_is(const char *m)
{
	struct query_pred *p = query_cmp(QUERY_EQ, query_field("mode", false),
					 query_literal(json_string(m)));

	cr_assert_not_null(p);
	return p;
}

/* Totals are remembered per revision: the same query answers from the
 * cache until any write, and every write (create, update that moves a
 * record in or out of the condition, delete) is seen by the next count. */
Test(store, counts_follow_every_write)
{
	struct err e = ERR_INIT;
	struct store_query q;
	struct store_txn *t = NULL;
	struct record r;
	int64_t n = -1;
	struct query_pred *where = st_mode_is("primary");

	memset(&q, 0, sizeof(q));
	q.where = where;
	cr_assert_eq(store_count(st, "agents", &q, &n, &e), 0, "%s", e.msg);
	cr_expect_eq(n, 0);
	record_init(&r);
	cr_assert_eq(st_put("agents", NULL, "a1", "{'mode': 'primary'}", false,
			    &r, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(store_count(st, "agents", &q, &n, &e), 0);
	cr_expect_eq(n, 1);
	cr_assert_eq(store_count(st, "agents", &q, &n, &e), 0);   /* cached */
	cr_expect_eq(n, 1);
	cr_assert_eq(store_count(st, "agents", NULL, &n, &e), 0);
	cr_expect_eq(n, 1);
	/* an update that leaves the condition */
	cr_assert_eq(st_put("agents", NULL, "a1", "{'mode': 'sub'}", false,
			    NULL, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(store_count(st, "agents", &q, &n, &e), 0);
	cr_expect_eq(n, 0);
	cr_assert_eq(store_count(st, "agents", NULL, &n, &e), 0);
	cr_expect_eq(n, 1);
	/* other bound values are other queries */
	query_pred_free(where);
	where = st_mode_is("sub");
	q.where = where;
	cr_assert_eq(store_count(st, "agents", &q, &n, &e), 0);
	cr_expect_eq(n, 1);
	cr_assert_eq(store_begin(st, &t, &e), 0);
	cr_assert_eq(store_txn_delete(t, "agents", r.id, 0, &e), 0, "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), 0, "%s", e.msg);
	cr_assert_eq(store_count(st, "agents", &q, &n, &e), 0);
	cr_expect_eq(n, 0);
	record_release(&r);
	query_pred_free(where);
}

/* List statements are kept prepared per connection: the same query again
 * sees later writes, and the same query run from inside its own walk (a
 * nested use on the same connection) gets a statement of its own. */
struct nest_walk {
	struct store_query *q;
	int outer, inner;
	int depth;
};

static int nest_one(const struct record *r, void *arg)
{
	struct nest_walk *w = arg;
	struct err e = ERR_INIT;

	(void)r;
	if (w->depth) {
		w->inner++;
		return 0;
	}
	w->outer++;
	w->depth = 1;
	cr_assert_eq(store_list(st, "agents", w->q, nest_one, w, &e), 0,
		     "%s", e.msg);
	w->depth = 0;
	return 0;
}

Test(store, repeated_and_nested_list_queries)
{
	struct err e = ERR_INIT;
	struct store_query q;
	struct nest_walk w;
	struct query_pred *where = st_mode_is("primary");
	int i;

	memset(&q, 0, sizeof(q));
	q.where = where;
	for (i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "n%d", i);
		cr_assert_eq(st_put("agents", NULL, name, "{'mode': 'primary'}",
				    false, NULL, NULL, &e), 0, "%s", e.msg);
		memset(&w, 0, sizeof(w));
		w.q = &q;
		cr_assert_eq(store_list(st, "agents", &q, nest_one, &w, &e), 0,
			     "%s", e.msg);
		cr_expect_eq(w.outer, i + 1, "pass %d saw %d rows", i, w.outer);
		cr_expect_eq(w.inner, (i + 1) * (i + 1));
	}
	query_pred_free(where);
}
