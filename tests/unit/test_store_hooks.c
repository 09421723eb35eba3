/*
 * test_store_hooks.c - the store's write hooks (store.h, governance.c)
 * run for every writer, with no HTTP layer in sight: a put through
 * store_txn_put() or a store_write() callback runs the collection's hook
 * as the transaction's actor, a hook's error comes back unchanged from the
 * put and leaves nothing of the transaction written, and the offline
 * apply (apply_run() as `pocketctl apply` without a server runs it) of an
 * approved Proposal seals it into the ledger.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "err.h"
#include "manifest.h"
#include "store/schema.h"
#include "store/store.h"
#include "testlib.h"

static struct schema *sh_schema;
static struct store *sh_store;
static char sh_dir[256];
static char sh_user[ID_LEN + 1];   /* a users record, role "user" */

static void sh_setup(void)
{
	tl_store_setup(sh_dir, sizeof(sh_dir), "hooks", NULL, 0, &sh_schema,
		       &sh_store);
	tl_create(sh_store, "users",
		  "{'email': 'u@x.io', 'password': 'h', 'role': 'user'}",
		  sh_user);
}

static void sh_teardown(void)
{
	tl_store_teardown(sh_dir, &sh_schema, &sh_store);
}

static int64_t sh_count(const char *collection)
{
	struct err e = ERR_INIT;
	int64_t n = -1;

	cr_assert_eq(store_count(sh_store, collection, NULL, &n, &e), 0, "%s",
		     e.msg);
	return n;
}

static const char *sh_str(const struct record *r, const char *f)
{
	const char *s = json_string_value(json_object_get(r->data, f));

	return s ? s : "";
}

/* A store_write() callback: create the permission in arg's status as
 * arg's actor. */
struct sh_perm {
	const char *status;
	const char *actor;       /* NULL: the server */
	struct record rec;       /* out */
};

static int sh_perm_txn(struct store_txn *t, void *arg, struct err *e)
{
	struct sh_perm *sp = arg;
	struct store_put p;
	json_t *data;
	int rc;

	data = json_pack("{s:s, s:s, s:s, s:s}", "ai_engine_permission_id",
			 "oc1", "session_id", "ses1", "permission", "bash",
			 "status", sp->status);
	if (!data)
		return err_set(e, ERR_NOMEM, "out of memory");
	memset(&p, 0, sizeof(p));
	p.collection = "permissions";
	p.data = data;
	p.mode = STORE_CREATE;
	store_txn_set_actor(t, sp->actor, 0);
	rc = store_txn_put(t, &p, &sp->rec, NULL, e);
	json_decref(data);
	return rc;
}

TestSuite(store_hooks, .init = sh_setup, .fini = sh_teardown);

Test(store_hooks, run_for_store_txn_put_and_store_write)
{
	struct err e = ERR_INIT;
	struct store_txn *t;
	struct store_put p;
	struct record r, got;
	struct sh_perm sp;
	json_t *data;

	sp.status = "draft";
	sp.actor = NULL;
	/* store_txn_put(): the permissions hook gives a draft a challenge,
	 * and the writer gets the record as the hook left it */
	data = json_pack("{s:s, s:s, s:s}", "ai_engine_permission_id", "oc0",
			 "session_id", "ses0", "permission", "read");
	memset(&p, 0, sizeof(p));
	p.collection = "permissions";
	p.data = data;
	p.mode = STORE_CREATE;
	record_init(&r);
	record_init(&got);
	cr_assert_eq(store_begin(sh_store, &t, &e), 0, "%s", e.msg);
	cr_assert_eq(store_txn_put(t, &p, &r, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), 0, "%s", e.msg);
	cr_expect_eq(strlen(sh_str(&r, "challenge")), 36);
	cr_assert_eq(store_get(sh_store, "permissions", r.id, &got, &e), 0);
	cr_expect_str_eq(sh_str(&got, "challenge"), sh_str(&r, "challenge"));
	record_release(&got);
	record_release(&r);
	json_decref(data);

	/* store_write(): the same hook, and an approval by the server is
	 * recorded */
	record_init(&sp.rec);
	cr_assert_eq(store_write(sh_store, sh_perm_txn, &sp, &e), 0, "%s",
		     e.msg);
	cr_expect_eq(strlen(sh_str(&sp.rec, "challenge")), 36);
	record_release(&sp.rec);
	sp.status = "authorized";
	record_init(&sp.rec);
	cr_assert_eq(store_write(sh_store, sh_perm_txn, &sp, &e), 0, "%s",
		     e.msg);
	cr_expect_neq(strlen(sh_str(&sp.rec, "approved_at")), 0);
	record_release(&sp.rec);
	cr_expect_eq(sh_count("permissions"), 3);
}

Test(store_hooks, an_error_aborts_and_leaves_nothing)
{
	struct err e = ERR_INIT;
	struct store_txn *t;
	struct store_put p;
	struct record r;
	struct sh_perm sp;
	json_t *ok, *bad;
	int64_t head = store_head(sh_store);

	sp.status = "authorized";
	sp.actor = sh_user;

	/* in one transaction: a fine put, then one the mcp_servers hook
	 * refuses (a user creating an approved server) */
	ok = json_pack("{s:s}", "name", "fine");
	bad = json_pack("{s:s, s:s}", "name", "sneaky", "status", "approved");
	memset(&p, 0, sizeof(p));
	p.collection = "mcp_servers";
	p.mode = STORE_CREATE;
	record_init(&r);
	cr_assert_eq(store_begin(sh_store, &t, &e), 0, "%s", e.msg);
	store_txn_set_actor(t, sh_user, 0);
	p.data = ok;
	cr_assert_eq(store_txn_put(t, &p, &r, NULL, &e), 0, "%s", e.msg);
	record_release(&r);
	p.data = bad;
	err_clear(&e);
	cr_expect_eq(store_txn_put(t, &p, &r, NULL, &e), ERR_FORBIDDEN);
	/* the hook's error, unchanged */
	cr_expect_str_eq(e.field, "status");
	cr_expect(strstr(e.msg, "only an admin can approve mcp server "
			 "'sneaky'") == e.msg, "%s", e.msg);
	err_clear(&e);
	cr_expect_neq(store_commit(t, &e), 0);
	cr_expect_eq(sh_count("mcp_servers"), 0);
	cr_expect_eq(store_head(sh_store), head);
	json_decref(ok);
	json_decref(bad);

	/* through store_write(): the same, as a decided permission by a user */
	record_init(&sp.rec);
	err_clear(&e);
	cr_expect_eq(store_write(sh_store, sh_perm_txn, &sp, &e),
		     ERR_FORBIDDEN);
	cr_expect_str_eq(e.field, "status");
	record_release(&sp.rec);
	cr_expect_eq(sh_count("permissions"), 0);
	cr_expect_eq(store_head(sh_store), head);
}

Test(store_hooks, offline_apply_seals_an_approved_proposal)
{
	static const char doc[] =
		"apiVersion: pocketcoder.dev/v1\n"
		"kind: Proposal\n"
		"metadata:\n"
		"  name: deploy-check\n"
		"spec:\n"
		"  description: Check before deploying.\n"
		"  content: \"Step 1.\"\n"
		"  authored_by: human\n"
		"  status: approved\n";
	struct err e = ERR_INIT;
	struct manifest_set m;
	struct apply_opts o;
	struct record sop;
	json_t *res = NULL;

	memset(&m, 0, sizeof(m));
	memset(&o, 0, sizeof(o));   /* actor NULL: the offline CLI */
	cr_assert_eq(manifest_parse(sh_schema, "prop.yaml", doc, strlen(doc),
				    &m, &e), 0, "%s", e.msg);
	cr_assert_eq(apply_run(sh_store, &m, &o, &res, &e), 0, "%s", e.msg);
	json_decref(res);
	res = NULL;
	cr_assert_eq(sh_count("sops"), 1);
	record_init(&sop);
	cr_assert_eq(store_get_by_name(sh_store, "sops", "deploy-check@1", &sop,
				       &e), 0, "%s", e.msg);
	cr_expect_str_eq(sh_str(&sop, "content"), "Step 1.");
	record_release(&sop);
	/* a re-apply of the same declaration seals nothing more */
	cr_assert_eq(apply_run(sh_store, &m, &o, &res, &e), 0, "%s", e.msg);
	cr_expect_eq(sh_count("sops"), 1);
	json_decref(res);
	manifest_set_release(&m);
}
