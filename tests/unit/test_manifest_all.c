/*
 * test_manifest_all.c - every problem of a load in one pass
 * (manifest_load_all(), manifest_parse_all()): bad documents are reported
 * with their positions and left out while good ones load, a list keeps
 * going past a bad item, a bad YAML file is one problem and the next file
 * is still read, what stops reading stops at once, and the first-error
 * functions put the same list into one message.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "testlib.h"

#define DOC(kind, name, rest)                                            \
	"apiVersion: pocketcoder.dev/v1\nkind: " kind "\nmetadata:\n"     \
	"  name: " name "\n" rest

Test(manifest_all, bad_documents_reported_good_ones_loaded)
{
	static const char text[] =
		DOC("AiPrompt", "good", "spec: {body: x}\n")              /* 1-5 */
		"---\n"                                                    /* 6 */
		"apiVersion: pocketcoder.dev/v1\n"                         /* 7 */
		"kind: AiPromt\n"                                          /* 8 */
		"metadata: {name: b1, labls: {}}\n"                        /* 9 */
		"sepc: {}\n"                                               /* 10 */
		"---\n"                                                    /* 11 */
		"items:\n"                                                 /* 12 */
		"  - {apiVersion: pocketcoder.dev/v1, kind: AiModel, metadata: {name: m1}}\n"
		"  - 7\n"                                                  /* 14 */
		"  - {apiVersion: pocketcoder.dev/v1, kind: AiModel, metadata: {name: m2}}\n"
		"---\n"
		DOC("AiPrompt", "good", "spec: {body: again}\n");
	struct schema *s = tl_schema();
	struct manifest_set m = { NULL, 0, 0 };
	struct err_list l = ERR_LIST_INIT;
	struct err e = ERR_INIT;
	size_t i;

	cr_assert_eq(manifest_parse_all(s, "f.yaml", text, strlen(text), &m,
					&l, &e), 0, "%s", e.msg);
	/* good, m1, m2 */
	cr_assert_eq(m.n, 3);
	cr_expect_str_eq(m.docs[0].name, "good");
	cr_expect_str_eq(m.docs[1].name, "m1");
	cr_expect_str_eq(m.docs[2].name, "m2");
	err_list_sort(&l);
	for (i = 0; i < l.n; i++)
		cr_log_info("%s", l.v[i].err.msg);
	cr_assert_eq(l.total, 5);
	cr_expect_str_eq(l.v[0].err.msg, "f.yaml:8:7: unknown kind 'AiPromt' "
			 "(did you mean 'AiPrompt'?)");
	cr_expect_str_eq(l.v[1].err.msg, "f.yaml:9:22: metadata key 'labls' "
			 "is not supported (did you mean 'labels'?) (expected "
			 "name and labels)");
	cr_expect_str_eq(l.v[2].err.msg, "f.yaml:10:1: unknown key 'sepc' "
			 "(did you mean 'spec'?) (expected apiVersion, kind, "
			 "metadata and spec)");
	cr_expect_str_eq(l.v[3].err.msg, "f.yaml:14:5: a document must be a "
			 "mapping, not an integer");
	cr_expect(strstr(l.v[4].err.msg, "duplicate AiPrompt 'good' (first "
			 "defined at f.yaml:1:1)") != NULL, "%s", l.v[4].err.msg);
	cr_expect_eq(l.v[4].err.code, ERR_CONFLICT);
	cr_expect_str_eq(l.v[0].file, "f.yaml");
	cr_expect(l.v[0].line == 8 && l.v[0].column == 7);
	cr_expect_str_eq(l.v[1].err.field, "metadata.labls");

	/* The first-error function: the same problems in one line, and
	 * nothing loaded. */
	manifest_set_release(&m);
	cr_assert_eq(manifest_parse(s, "f.yaml", text, strlen(text), &m, &e),
		     ERR_INVALID);
	cr_expect_eq(m.n, 0);
	cr_expect_eq(strncmp(e.msg, "5 errors: f.yaml:8:7: unknown kind", 34),
		     0, "%s", e.msg);
	err_list_release(&l);
	manifest_set_release(&m);
	schema_free(s);
}

Test(manifest_all, files_go_on_after_bad_yaml_and_stop_on_a_missing_one)
{
	char *dir = tl_tmpdir("mfall");
	char a[512], b[512], gone[512];
	const char *paths[2] = { a, b };
	const char *missing[2] = { a, gone };
	struct schema *s = tl_schema();
	struct manifest_set m = { NULL, 0, 0 };
	struct err_list l = ERR_LIST_INIT;
	struct err e = ERR_INIT;

	snprintf(a, sizeof(a), "%s/a.yaml", dir);
	snprintf(b, sizeof(b), "%s/b.yaml", dir);
	snprintf(gone, sizeof(gone), "%s/gone.yaml", dir);
	tl_write_file(a, "kind: [unclosed\n");
	tl_write_file(b, DOC("AiPrompt", "p", "spec: {body: x}\n") "---\n"
		      DOC("Nope", "q", ""));
	cr_assert_eq(manifest_load_all(s, paths, 2, NULL, NULL, &m, &l, &e), 0,
		     "%s", e.msg);
	cr_expect_eq(m.n, 1);
	cr_assert_eq(l.total, 2);
	err_list_sort(&l);
	/* a.yaml first (load order), its position read back from libyaml's. */
	cr_expect_str_eq(l.v[0].file, a);
	cr_expect(l.v[0].line == 2 && l.v[0].column == 1, "%d:%d",
		  l.v[0].line, l.v[0].column);
	cr_expect_str_eq(l.v[1].file, b);
	cr_expect(strstr(l.v[1].err.msg, "unknown kind 'Nope'") != NULL);
	manifest_set_release(&m);
	err_list_release(&l);

	/* A path that does not exist ends the load: code, e, nothing out. */
	cr_expect_eq(manifest_load_all(s, missing, 2, NULL, NULL, &m, &l, &e),
		     ERR_NOT_FOUND);
	cr_expect(strstr(e.msg, "does not exist") != NULL, "%s", e.msg);
	cr_expect_eq(m.n, 0);
	cr_expect_null(m.docs);
	err_list_release(&l);
	schema_free(s);
	tl_rmtree(dir);
	free(dir);
}
