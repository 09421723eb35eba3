/*
 * test_owners.c - field ownership in the store (store.h, "field
 * ownership") and apply's use of it (apply.h): every non-apply put notes
 * its actor as the owner of the fields it changed, a deleted record's
 * ownership goes with it, and ownership data that is corrupt is refused
 * with a message naming the record, by the store and by apply, which then
 * writes nothing.
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "apply.h"
#include "err.h"
#include "manifest.h"
#include "store/store.h"
#include "testlib.h"

static struct schema *ow_schema;
static struct store *ow_store;
static char ow_dir[256];

static void ow_setup(void)
{
	tl_store_setup(ow_dir, sizeof(ow_dir), "owners", NULL, 0, &ow_schema,
		       &ow_store);
}

static void ow_teardown(void)
{
	tl_store_teardown(ow_dir, &ow_schema, &ow_store);
}

TestSuite(owners, .init = ow_setup, .fini = ow_teardown);

/* One put of fixture JSON as actor (NULL: the server). */
static void put_as(const char *actor, const char *coll, const char *text,
		   bool partial, const char *id)
{
	struct err e = ERR_INIT;
	struct store_txn *t;
	struct store_put p;
	json_t *data = tl_json(text);

	memset(&p, 0, sizeof(p));
	p.collection = coll;
	p.id = id;
	p.data = data;
	p.partial = partial;
	p.mode = id ? STORE_UPDATE : STORE_CREATE;
	cr_assert_eq(store_begin(ow_store, &t, &e), 0, "%s", e.msg);
	store_txn_set_actor(t, actor, 0);
	cr_assert_eq(store_txn_put(t, &p, NULL, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), 0, "%s", e.msg);
	json_decref(data);
}

static const char *owner_of(const char *coll, const char *id,
			    const char *field, char *buf, size_t n)
{
	struct err e = ERR_INIT;
	json_t *o = NULL;

	cr_assert_eq(store_owners_get(ow_store, coll, id, &o, &e), 0, "%s",
		     e.msg);
	snprintf(buf, n, "%s", json_string_value(json_object_get(o, field)) ?
		 json_string_value(json_object_get(o, field)) : "");
	json_decref(o);
	return buf;
}

static void apply_text(const char *text, int want, struct err *e)
{
	struct manifest_set m = { NULL, 0, 0 };
	struct apply_opts o;
	json_t *res = NULL;

	memset(&o, 0, sizeof(o));
	cr_assert_eq(manifest_parse(ow_schema, "m.yaml", text, strlen(text),
				    &m, e), 0, "%s", e->msg);
	cr_assert_eq(apply_run(ow_store, &m, &o, &res, e), want, "%s", e->msg);
	json_decref(res);
	manifest_set_release(&m);
}

Test(owners, non_apply_writers_own_what_they_change)
{
	char su[ID_LEN + 1], user[ID_LEN + 1], mcp[ID_LEN + 1], b[128];
	char want[128];

	tl_create(ow_store, "_superusers", "{'email':'a@x.io','password':'h'}",
		  su);
	tl_create(ow_store, "users",
		  "{'email':'u@x.io','password':'h','role':'user'}", user);
	tl_create(ow_store, "mcp_servers", "{'name':'gh','image':'mcp/gh'}",
		  mcp);
	/* A create by the server owns its non-zero fields only. */
	cr_assert_str_eq(owner_of("mcp_servers", mcp, "image", b, sizeof(b)),
			 "server");
	cr_assert_str_eq(owner_of("mcp_servers", mcp, "reason", b, sizeof(b)),
			 "");
	put_as(su, "mcp_servers", "{'config':{'K':'v'}}", true, mcp);
	snprintf(want, sizeof(want), "superuser:%s", su);
	cr_assert_str_eq(owner_of("mcp_servers", mcp, "config", b, sizeof(b)),
			 want);
	cr_assert_str_eq(owner_of("mcp_servers", mcp, "image", b, sizeof(b)),
			 "server");
	put_as(user, "mcp_servers", "{'image':'mcp/other'}", true, mcp);
	snprintf(want, sizeof(want), "user:%s", user);
	cr_assert_str_eq(owner_of("mcp_servers", mcp, "image", b, sizeof(b)),
			 want);
	/* A put that changes nothing changes no owner. */
	put_as(NULL, "mcp_servers", "{'image':'mcp/other'}", true, mcp);
	cr_assert_str_eq(owner_of("mcp_servers", mcp, "image", b, sizeof(b)),
			 want);
}

Test(owners, a_deleted_record_takes_its_ownership_along)
{
	struct err e = ERR_INIT;
	struct store_txn *t;
	char id[ID_LEN + 1], b[64];
	json_t *o = NULL;

	tl_create(ow_store, "mcp_servers", "{'name':'gh','image':'mcp/gh'}", id);
	cr_assert_str_eq(owner_of("mcp_servers", id, "image", b, sizeof(b)),
			 "server");
	cr_assert_eq(store_begin(ow_store, &t, &e), 0, "%s", e.msg);
	cr_assert_eq(store_txn_delete(t, "mcp_servers", id, 0, &e), 0, "%s",
		     e.msg);
	cr_assert_eq(store_commit(t, &e), 0, "%s", e.msg);
	cr_assert_eq(store_owners_get(ow_store, "mcp_servers", id, &o, &e), 0);
	cr_assert_eq(json_object_size(o), 0);
	json_decref(o);
}

Test(owners, corrupt_ownership_is_refused_and_nothing_is_written)
{
	static const char doc[] =
		"apiVersion: pocketcoder.dev/v1\nkind: McpServer\n"
		"metadata: {name: gh}\nspec: {image: mcp/new}\n";
	struct err e = ERR_INIT;
	struct record r;
	char id[ID_LEN + 1], path[512], sql[256];
	sqlite3 *db;
	json_t *o = NULL;
	int64_t head;

	apply_text(doc, 0, &e);
	record_init(&r);
	cr_assert_eq(store_get_by_name(ow_store, "mcp_servers", "gh", &r, &e), 0);
	snprintf(id, sizeof(id), "%s", r.id);
	record_release(&r);
	snprintf(path, sizeof(path), "%s/pocket.db", ow_dir);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql),
		 "UPDATE field_owners SET owners = '[1' WHERE id = '%s'", id);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	cr_assert_eq(store_owners_get(ow_store, "mcp_servers", id, &o, &e),
		     ERR_DB);
	cr_assert(strstr(e.msg, "field ownership of mcp_servers record"), "%s",
		  e.msg);
	cr_assert(strstr(e.msg, id), "%s", e.msg);
	head = store_head(ow_store);
	e = (struct err)ERR_INIT;
	apply_text("apiVersion: pocketcoder.dev/v1\nkind: McpServer\n"
		   "metadata: {name: gh}\nspec: {image: mcp/newer}\n", ERR_DB,
		   &e);
	cr_assert(strstr(e.msg, "m.yaml:"), "%s", e.msg);
	cr_assert(strstr(e.msg, "is corrupt"), "%s", e.msg);
	cr_assert_eq(store_head(ow_store), head);
}
