/*
 * test_manifest.c - manifest loading against the embedded schema: good
 * documents and lists, every bad envelope with its position, duplicate
 * names, directory walks (order, hidden entries, symlinks and their loops),
 * size limits, empty inputs and all-or-nothing failure.
 */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest.h"
#include "testlib.h"

static int mf_parse(const struct schema *s, const char *text,
		    struct manifest_set *m, struct err *e)
{
	return manifest_parse(s, "f.yaml", text, strlen(text), m, e);
}

#define MF_DOC(kind, name, rest)                                         \
	"apiVersion: pocketcoder.dev/v1\nkind: " kind "\nmetadata:\n"     \
	"  name: " name "\n" rest

/* ---- good documents ----------------------------------------------- */

Test(manifest, good_document)
{
	static const char text[] =
		"# an MCP server\n"                         /* 1 */
		"apiVersion: pocketcoder.dev/v1\n"          /* 2 */
		"kind: McpServer\n"                         /* 3 */
		"metadata:\n"                               /* 4 */
		"  name: github\n"                          /* 5 */
		"  labels: {team: core, tier: \"1\"}\n"     /* 6 */
		"spec:\n"                                   /* 7 */
		"  status: approved\n"                      /* 8 */
		"  mode: fast\n"                            /* 9 */
		"  env_vars:\n"                             /* 10 */
		"    KEY: value\n";                         /* 11 */
	struct schema *s = tl_schema();
	struct manifest_set m = { NULL, 0, 0 };
	struct err e = ERR_INIT;
	struct manifest_doc *d;
	char where[256];

	cr_assert_eq(mf_parse(s, text, &m, &e), 0, "%s", e.msg);
	cr_assert_eq(m.n, 1);
	d = &m.docs[0];
	cr_expect_str_eq(d->file, "f.yaml");
	cr_expect(d->line == 2 && d->column == 1, "at %d:%d", d->line,
		  d->column);
	cr_expect_eq(d->coll, schema_find(s, "mcp_servers"));
	cr_expect_str_eq(d->name, "github");
	cr_expect_str_eq(json_string_value(json_object_get(d->labels, "team")),
			 "core");
	cr_expect_str_eq(json_string_value(json_object_get(d->labels, "tier")),
			 "1");
	cr_expect_str_eq(json_string_value(json_object_get(d->spec, "status")),
			 "approved");
	cr_expect_eq(json_object_size(d->spec), 3);

	manifest_doc_where(d, "mode", where, sizeof(where));
	cr_expect_str_eq(where, "f.yaml:9:9");
	manifest_doc_where(d, "env_vars.KEY", where, sizeof(where));
	cr_expect_str_eq(where, "f.yaml:11:10");
	manifest_doc_where(d, "metadata.name", where, sizeof(where));
	cr_expect_str_eq(where, "f.yaml:5:9");
	manifest_doc_where(d, "no_such_field", where, sizeof(where));
	cr_expect_str_eq(where, "f.yaml:2:1");
	manifest_doc_where(d, NULL, where, sizeof(where));
	cr_expect_str_eq(where, "f.yaml:2:1");

	manifest_set_release(&m);
	manifest_set_release(NULL);
	schema_free(s);
}

Test(manifest, defaults_and_kind_spellings)
{
	static const char text[] =
		MF_DOC("McpServer", "a", "")
		"---\n" MF_DOC("mcpserver", "b", "spec:\n")
		"---\n" MF_DOC("mcp_servers", "c", "  labels:\nspec: {}\n")
		"---\n---\n# nothing\n";
	struct schema *s = tl_schema();
	struct manifest_set m = { NULL, 0, 0 };
	struct err e = ERR_INIT;
	size_t i;

	cr_assert_eq(mf_parse(s, text, &m, &e), 0, "%s", e.msg);
	cr_assert_eq(m.n, 3);
	for (i = 0; i < m.n; i++) {
		cr_expect_eq(m.docs[i].coll, schema_find(s, "mcp_servers"));
		cr_expect(json_is_object(m.docs[i].spec) &&
			  json_object_size(m.docs[i].spec) == 0);
		cr_expect(json_is_object(m.docs[i].labels) &&
			  json_object_size(m.docs[i].labels) == 0);
	}
	cr_expect_eq(m.docs[1].line, 6);
	manifest_set_release(&m);
	schema_free(s);
}

Test(manifest, lists_of_documents)
{
	static const char json_list[] =
		"[{\"apiVersion\": \"pocketcoder.dev/v1\", \"kind\": \"AiModel\",\n"
		"  \"metadata\": {\"name\": \"m1\"}, \"spec\": {\"mode\": 1}},\n"
		" {\"apiVersion\": \"pocketcoder.dev/v1\", \"kind\": \"AiModel\",\n"
		"  \"metadata\": {\"name\": \"m2\"}}]\n";
	static const char items[] =
		"apiVersion: v1\n"
		"kind: List\n"
		"items:\n"
		"  - apiVersion: pocketcoder.dev/v1\n"
		"    kind: Container\n"
		"    metadata: {name: c1}\n"
		"    spec:\n"
		"      mode: fast\n"
		"  - apiVersion: pocketcoder.dev/v1\n"
		"    kind: Container\n"
		"    metadata: {name: c2}\n";
	struct schema *s = tl_schema();
	struct manifest_set m = { NULL, 0, 0 };
	struct err e = ERR_INIT;
	char where[256];

	cr_assert_eq(mf_parse(s, json_list, &m, &e), 0, "%s", e.msg);
	cr_assert_eq(m.n, 2);
	cr_expect_str_eq(m.docs[0].name, "m1");
	cr_expect_str_eq(m.docs[1].name, "m2");
	cr_expect(m.docs[1].line == 3 && m.docs[1].column == 2);
	manifest_doc_where(&m.docs[0], "mode", where, sizeof(where));
	cr_expect_str_eq(where, "f.yaml:2:48");
	/* Positions are relative to the item, not to the list. */
	cr_expect_null(json_object_get(m.docs[0].positions, "0.spec.mode"));
	cr_expect_not_null(json_object_get(m.docs[1].positions,
					   "metadata.name"));

	cr_assert_eq(mf_parse(s, items, &m, &e), 0, "%s", e.msg);
	cr_assert_eq(m.n, 4);
	cr_expect_str_eq(m.docs[2].name, "c1");
	cr_expect_eq(m.docs[2].coll, schema_find(s, "containers"));
	cr_expect(m.docs[2].line == 4 && m.docs[2].column == 5);
	manifest_doc_where(&m.docs[2], "mode", where, sizeof(where));
	cr_expect_str_eq(where, "f.yaml:8:13");
	cr_expect(m.docs[3].line == 9);
	manifest_set_release(&m);
	schema_free(s);
}

/* ---- bad envelopes ------------------------------------------------ */

static const struct {
	const char *text;
	int code;
	const char *msg;
	const char *field;
} mf_bad[] = {
	{ "just a string\n", ERR_INVALID,
	  "f.yaml:1:1: a document must be a mapping, not a string", "" },
	{ "- 1\n", ERR_INVALID,
	  "f.yaml:1:3: a document must be a mapping, not an integer", "" },
	{ "kind: McpServer\nmetadata: {name: a}\n", ERR_INVALID,
	  "f.yaml:1:1: missing 'apiVersion' (expected 'pocketcoder.dev/v1')",
	  "" },
	{ "apiVersion: v1\nkind: McpServer\nmetadata: {name: a}\n",
	  ERR_INVALID, "f.yaml:1:13: apiVersion 'v1' is not supported "
	  "(expected 'pocketcoder.dev/v1')", "apiVersion" },
	{ "apiVersion: 1\nkind: McpServer\nmetadata: {name: a}\n",
	  ERR_INVALID, "f.yaml:1:13: apiVersion 'an integer' is not supported "
	  "(expected 'pocketcoder.dev/v1')", "apiVersion" },
	{ "apiVersion: pocketcoder.dev/v1\nmetadata: {name: a}\n",
	  ERR_INVALID, "f.yaml:1:1: missing 'kind'", "" },
	{ "apiVersion: pocketcoder.dev/v1\nkind: [x]\nmetadata: {name: a}\n",
	  ERR_INVALID, "f.yaml:2:7: kind must be a string, not a list",
	  "kind" },
	{ "apiVersion: pocketcoder.dev/v1\nkind: Nope\nmetadata: {name: a}\n",
	  ERR_INVALID, "f.yaml:2:7: unknown kind 'Nope'", "kind" },
	{ "apiVersion: pocketcoder.dev/v1\nkind: McpServer\n", ERR_INVALID,
	  "f.yaml:1:1: missing 'metadata'", "" },
	{ "apiVersion: pocketcoder.dev/v1\nkind: McpServer\nmetadata: x\n",
	  ERR_INVALID, "f.yaml:3:11: metadata must be a mapping, not a string",
	  "metadata" },
	{ MF_DOC("McpServer", "a", "  namespace: default\n"), ERR_INVALID,
	  "f.yaml:5:3: metadata key 'namespace' is not supported (expected "
	  "name and labels)", "metadata.namespace" },
	{ MF_DOC("McpServer", "a", "  annotations: {x: y}\n"), ERR_INVALID,
	  "f.yaml:5:3: metadata key 'annotations' is not supported (expected "
	  "name and labels)", "metadata.annotations" },
	{ "apiVersion: pocketcoder.dev/v1\nkind: McpServer\nmetadata: {}\n",
	  ERR_INVALID, "f.yaml:3:11: missing 'metadata.name'", "metadata" },
	{ MF_DOC("McpServer", "5", ""), ERR_INVALID,
	  "f.yaml:4:9: metadata.name must be a string, not an integer",
	  "metadata.name" },
	{ MF_DOC("McpServer", "''", ""), ERR_INVALID,
	  "f.yaml:4:9: metadata.name is empty", "metadata.name" },
	{ MF_DOC("McpServer", "", ""), ERR_INVALID,
	  "f.yaml:4:8: metadata.name must be a string, not null",
	  "metadata.name" },
	{ MF_DOC("McpServer", "a/b", ""), ERR_INVALID,
	  "f.yaml:4:9: metadata.name 'a/b' must not contain '/'",
	  "metadata.name" },
	{ MF_DOC("McpServer", "\"a\\tb\"", ""), ERR_INVALID,
	  "f.yaml:4:9: metadata.name contains a control character",
	  "metadata.name" },
	{ MF_DOC("McpServer", "\"a\\x85b\"", ""), ERR_INVALID,
	  "f.yaml:4:9: metadata.name contains a control character",
	  "metadata.name" },
	{ MF_DOC("McpServer", "a", "  labels: [x]\n"), ERR_INVALID,
	  "f.yaml:5:11: metadata.labels must be a mapping, not a list",
	  "metadata.labels" },
	{ MF_DOC("McpServer", "a", "  labels: {v: 1}\n"), ERR_INVALID,
	  "f.yaml:5:15: label 'v' must be a string, not an integer (quote it)",
	  "metadata.labels.v" },
	{ MF_DOC("McpServer", "a", "spec: [1]\n"), ERR_INVALID,
	  "f.yaml:5:7: spec must be a mapping, not a list", "spec" },
	{ MF_DOC("McpServer", "a", "spec: text\n"), ERR_INVALID,
	  "f.yaml:5:7: spec must be a mapping, not a string", "spec" },
	{ MF_DOC("McpServer", "a", "status: {}\n"), ERR_INVALID,
	  "f.yaml:5:1: unknown key 'status' (expected apiVersion, kind, "
	  "metadata and spec)", "status" },
	{ "kind: List\nitems: 5\n", ERR_INVALID,
	  "f.yaml:2:8: items must be a list, not an integer", "items" },
	{ "kind: McpServer\nitems: []\n", ERR_INVALID,
	  "f.yaml:1:7: a document with 'items' is a list, and its kind must "
	  "be 'List'", "kind" },
	{ "items: []\nspec: {}\n", ERR_INVALID,
	  "f.yaml:2:1: unknown key 'spec' in a list (expected items)", "spec" },
	{ "items:\n  - 1\n", ERR_INVALID,
	  "f.yaml:2:5: a document must be a mapping, not an integer", "" },
	/* Every problem of the document, by position, in one line. */
	{ "items:\n  - apiVersion: v2\n", ERR_INVALID,
	  "3 errors: f.yaml:2:5: missing 'kind'; f.yaml:2:5: missing "
	  "'metadata'; f.yaml:2:17: apiVersion 'v2' is not supported "
	  "(expected 'pocketcoder.dev/v1')", "" },
	/* Errors of the YAML layer come through with their positions. */
	{ MF_DOC("McpServer", "a", "spec: {x: 1, x: 2}\n"), ERR_INVALID,
	  "f.yaml:5:14: duplicate key 'x'", "" },
	{ MF_DOC("McpServer", "\xc3", ""), ERR_INVALID,
	  "f.yaml:4:10: invalid trailing UTF-8 octet (0xa)", "" },
};

Test(manifest, bad_shapes)
{
	struct schema *s = tl_schema();
	size_t i;

	for (i = 0; i < sizeof(mf_bad) / sizeof(mf_bad[0]); i++) {
		struct manifest_set m = { NULL, 0, 0 };
		struct err e = ERR_INIT;
		int rc = mf_parse(s, mf_bad[i].text, &m, &e);

		cr_expect_eq(rc, mf_bad[i].code, "'%s': rc %d (%s)",
			     mf_bad[i].text, rc, e.msg);
		cr_expect_str_eq(e.msg, mf_bad[i].msg, "for '%s'",
				 mf_bad[i].text);
		cr_expect_str_eq(e.field, mf_bad[i].field, "for '%s'",
				 mf_bad[i].text);
		cr_expect_eq(m.n, 0);
		manifest_set_release(&m);
	}
	schema_free(s);
}

Test(manifest, name_length_limit)
{
	struct schema *s = tl_schema();
	struct manifest_set m = { NULL, 0, 0 };
	struct err e = ERR_INIT;
	char name[202], text[512];

	memset(name, 'n', 200);
	name[200] = '\0';
	snprintf(text, sizeof(text), MF_DOC("McpServer", "%s", ""), name);
	cr_expect_eq(mf_parse(s, text, &m, &e), 0, "%s", e.msg);
	cr_expect_eq(m.n, 1);
	manifest_set_release(&m);
	strcat(name, "n");
	snprintf(text, sizeof(text), MF_DOC("McpServer", "%s", ""), name);
	cr_expect_eq(mf_parse(s, text, &m, &e), ERR_INVALID);
	cr_expect_str_eq(e.msg, "f.yaml:4:9: metadata.name is 201 bytes, more "
			 "than the limit of 200");
	manifest_set_release(&m);
	schema_free(s);
}

/* ---- duplicates and all-or-nothing -------------------------------- */

Test(manifest, duplicates)
{
	static const char one[] = MF_DOC("McpServer", "gh", "")
				  "---\n" MF_DOC("Container", "gh", "");
	static const char dup[] = MF_DOC("AiModel", "m", "")
				  "---\n" MF_DOC("mcp_servers", "gh", "");
	struct schema *s = tl_schema();
	struct manifest_set m = { NULL, 0, 0 };
	struct err e = ERR_INIT;

	/* The same name in two kinds is fine. */
	cr_assert_eq(manifest_parse(s, "one.yaml", one, strlen(one), &m, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(m.n, 2);
	/* A second stream naming an existing McpServer fails as a whole:
	 * its good first document is not kept either. */
	cr_expect_eq(manifest_parse(s, "two.yaml", dup, strlen(dup), &m, &e),
		     ERR_CONFLICT);
	cr_expect_str_eq(e.msg, "two.yaml:6:1: duplicate McpServer 'gh' (first "
			 "defined at one.yaml:1:1)");
	cr_expect_eq(m.n, 2);
	cr_expect_str_eq(m.docs[1].name, "gh");
	manifest_set_release(&m);

	/* Within one stream. */
	cr_expect_eq(manifest_parse(s, "d.yaml", one, strlen(one), &m, &e), 0);
	cr_expect_eq(manifest_parse(s, "d.yaml", one, strlen(one), &m, &e),
		     ERR_CONFLICT);
	manifest_set_release(&m);
	schema_free(s);
}

Test(manifest, error_keeps_earlier_documents)
{
	static const char text[] = MF_DOC("McpServer", "a", "")
				   "---\n" MF_DOC("McpServer", "b", "spec: 1\n");
	static const char good[] = MF_DOC("McpServer", "z", "");
	struct schema *s = tl_schema();
	struct manifest_set m = { NULL, 0, 0 };
	struct err e = ERR_INIT;

	cr_assert_eq(mf_parse(s, good, &m, &e), 0, "%s", e.msg);
	cr_expect_eq(mf_parse(s, text, &m, &e), ERR_INVALID);
	cr_expect_str_eq(e.msg, "f.yaml:10:7: spec must be a mapping, not an "
			 "integer");
	cr_expect_eq(m.n, 1);
	cr_expect_str_eq(m.docs[0].name, "z");
	manifest_set_release(&m);
	schema_free(s);
}

/* ---- files and directories ---------------------------------------- */

Test(manifest, directory_walk_order)
{
	struct schema *s = tl_schema();
	struct manifest_set m = { NULL, 0, 0 };
	struct err e = ERR_INIT;
	char *dir = tl_tmpdir("manifest"), *other = tl_tmpdir("manifest");
	char path[4096], link[4096];
	const char *paths[1];
	static const char *const want[] = {
		"0sub/d.yaml", "a.yml", "b.yaml", "b.yaml", "linked.yaml",
		"sub/c.yaml", "sub/deeper/e.yaml",
	};
	size_t i;

	tl_write(dir, "b.yaml", MF_DOC("McpServer", "b1", "") "---\n"
		 MF_DOC("McpServer", "b2", ""));
	tl_write(dir, "a.yml", MF_DOC("McpServer", "a", ""));
	tl_write(dir, "sub/c.yaml", MF_DOC("McpServer", "c", ""));
	tl_write(dir, "sub/deeper/e.yaml", MF_DOC("McpServer", "e", ""));
	tl_write(dir, "0sub/d.yaml", MF_DOC("McpServer", "d", ""));
	/* Hidden entries and other extensions are not read. */
	tl_write(dir, ".hidden/x.yaml", "bad: [\n");
	tl_write(dir, ".x.yaml", "bad: [\n");
	tl_write(dir, "notes.txt", "bad: [\n");
	tl_write(dir, "c.json", "bad: [\n");
	/* A symlink to a file elsewhere is followed. */
	tl_write(other, "target.yaml", MF_DOC("McpServer", "l", ""));
	snprintf(path, sizeof(path), "%s/target.yaml", other);
	snprintf(link, sizeof(link), "%s/linked.yaml", dir);
	cr_assert_eq(symlink(path, link), 0);

	paths[0] = dir;
	cr_assert_eq(manifest_load_paths(s, paths, 1, &m, &e), 0, "%s", e.msg);
	cr_assert_eq(m.n, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < m.n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, want[i]);
		cr_expect_str_eq(m.docs[i].file, path);
	}
	cr_expect_str_eq(m.docs[3].name, "b2");
	cr_expect_str_eq(m.docs[4].name, "l");
	manifest_set_release(&m);

	/* A file given directly is read whatever its name; several paths. */
	snprintf(path, sizeof(path), "%s/target.yaml", other);
	snprintf(link, sizeof(link), "%s/sub", dir);
	{
		const char *two[] = { path, link };
		cr_assert_eq(manifest_load_paths(s, two, 2, &m, &e), 0, "%s",
			     e.msg);
		cr_expect_eq(m.n, 3);
		cr_expect_str_eq(m.docs[0].file, path);
		manifest_set_release(&m);
		/* The same file twice is a duplicate. */
		two[1] = path;
		cr_expect_eq(manifest_load_paths(s, two, 2, &m, &e),
			     ERR_CONFLICT);
		cr_expect_eq(m.n, 0);
	}
	tl_rmtree(dir);
	tl_rmtree(other);
	free(dir);
	free(other);
	schema_free(s);
}

Test(manifest, symlink_loop)
{
	struct schema *s = tl_schema();
	struct manifest_set m = { NULL, 0, 0 };
	struct err e = ERR_INIT;
	char *dir = tl_tmpdir("manifest");
	char link[4096], want[4200];
	const char *paths[1] = { dir };

	tl_write(dir, "a.yaml", MF_DOC("McpServer", "a", ""));
	tl_write(dir, "sub/b.yaml", MF_DOC("McpServer", "b", ""));
	snprintf(link, sizeof(link), "%s/sub/up", dir);
	cr_assert_eq(symlink("..", link), 0);
	cr_expect_eq(manifest_load_paths(s, paths, 1, &m, &e), ERR_INVALID);
	snprintf(want, sizeof(want), "symlink loop at '%s'", link);
	cr_expect_str_eq(e.msg, want);
	cr_expect(m.n == 0 && m.docs == NULL);

	/* A symlink to a sibling directory is not a loop. */
	unlink(link);
	mkdir(link, 0755);
	rmdir(link);
	snprintf(link, sizeof(link), "%s/zz", dir);
	cr_assert_eq(symlink("sub", link), 0);
	tl_write(dir, "sub/c.yaml", MF_DOC("Container", "c", ""));
	/* ...but it names the same documents twice. */
	cr_expect_eq(manifest_load_paths(s, paths, 1, &m, &e), ERR_CONFLICT);
	cr_expect(strstr(e.msg, "duplicate McpServer 'b'") != NULL, "%s",
		  e.msg);
	tl_rmtree(dir);
	free(dir);
	schema_free(s);
}

Test(manifest, too_big_file)
{
	struct schema *s = tl_schema();
	struct manifest_set m = { NULL, 0, 0 };
	struct err e = ERR_INIT;
	char *dir = tl_tmpdir("manifest");
	char path[4096], want[4200];
	const char *paths[1] = { path };
	int fd;

	snprintf(path, sizeof(path), "%s/big.yaml", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0);
	cr_assert_eq(ftruncate(fd, (off_t)MANIFEST_MAX_FILE + 1), 0);
	close(fd);
	cr_expect_eq(manifest_load_paths(s, paths, 1, &m, &e), ERR_TOO_LARGE);
	snprintf(want, sizeof(want), "'%s' is %zu bytes, more than the limit "
		 "of %zu", path, MANIFEST_MAX_FILE + 1, MANIFEST_MAX_FILE);
	cr_expect_str_eq(e.msg, want);
	cr_expect_eq(m.n, 0);

	/* Found by a directory walk: the same. */
	paths[0] = dir;
	cr_expect_eq(manifest_load_paths(s, paths, 1, &m, &e), ERR_TOO_LARGE);
	cr_expect_str_eq(e.msg, want);
	tl_rmtree(dir);
	free(dir);
	schema_free(s);
}

Test(manifest, empty_and_missing_paths)
{
	struct schema *s = tl_schema();
	struct manifest_set m = { NULL, 0, 0 };
	struct err e = ERR_INIT;
	char *dir = tl_tmpdir("manifest");
	char path[4096], want[4200];
	const char *paths[1] = { path };
	static const char *const empties[] = {
		"", "# only a comment\n", "---\n", "---\n...\n---\n~\n",
	};
	size_t i;

	for (i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
		snprintf(path, sizeof(path), "%s/e%zu.yaml", dir, i);
		tl_write(dir, path + strlen(dir) + 1, empties[i]);
		cr_expect_eq(manifest_load_paths(s, paths, 1, &m, &e),
			     ERR_INVALID);
		snprintf(want, sizeof(want), "'%s': no documents", path);
		cr_expect_str_eq(e.msg, want);
		unlink(path);
	}

	/* A directory with nothing to read. */
	tl_write(dir, "readme.txt", "hello\n");
	snprintf(path, sizeof(path), "%s", dir);
	cr_expect_eq(manifest_load_paths(s, paths, 1, &m, &e), ERR_INVALID);
	snprintf(want, sizeof(want), "'%s': no documents", dir);
	cr_expect_str_eq(e.msg, want);

	/* Missing. */
	snprintf(path, sizeof(path), "%s/nope.yaml", dir);
	cr_expect_eq(manifest_load_paths(s, paths, 1, &m, &e), ERR_NOT_FOUND);
	snprintf(want, sizeof(want), "'%s' does not exist", path);
	cr_expect_str_eq(e.msg, want);

	/* A dangling symlink inside a directory. */
	snprintf(path, sizeof(path), "%s/dangling.yaml", dir);
	cr_assert_eq(symlink("nowhere.yaml", path), 0);
	snprintf(path, sizeof(path), "%s", dir);
	cr_expect_eq(manifest_load_paths(s, paths, 1, &m, &e), ERR_NOT_FOUND);
	cr_expect(strstr(e.msg, "dangling.yaml") != NULL, "%s", e.msg);
	cr_expect_eq(m.n, 0);
	tl_rmtree(dir);
	free(dir);
	schema_free(s);
}

Test(manifest, invalid_utf8_file_is_all_or_nothing)
{
	struct schema *s = tl_schema();
	struct manifest_set m = { NULL, 0, 0 };
	struct err e = ERR_INIT;
	char *dir = tl_tmpdir("manifest");
	char want[4200];
	const char *paths[1] = { dir };

	tl_write(dir, "a.yaml", MF_DOC("McpServer", "a", ""));
	tl_write(dir, "b.yaml", MF_DOC("McpServer", "b",
		 "spec:\n  x: \"caf\xe9\"\n"));
	cr_expect_eq(manifest_load_paths(s, paths, 1, &m, &e), ERR_INVALID);
	snprintf(want, sizeof(want), "%s/b.yaml:6:11: invalid trailing UTF-8 "
		 "octet (0x22)", dir);
	cr_expect_str_eq(e.msg, want);
	cr_expect(m.n == 0 && m.docs == NULL);
	tl_rmtree(dir);
	free(dir);
	schema_free(s);
}
