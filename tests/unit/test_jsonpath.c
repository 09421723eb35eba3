/*
 * test_jsonpath.c - kubectl-style -o jsonpath templates (cli/jsonpath.c):
 * paths, wildcards, indexes, ranges, literals, missing keys, and the
 * position named for a template that does not compile.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "buf.h"
#include "cli/jsonpath.h"
#include "err.h"

static const char *doc_text =
	"{\"kind\":\"List\",\"items\":["
	"{\"kind\":\"ToolPermission\",\"metadata\":{\"name\":\"a\",\"labels\":{\"team\":\"core\"}},"
	"\"spec\":{\"tool\":\"bash\",\"priority\":3,\"on\":true}},"
	"{\"kind\":\"ToolPermission\",\"metadata\":{\"name\":\"b\"},"
	"\"spec\":{\"tool\":\"read\",\"tags\":[\"x\",\"y\"]}}]}";

struct run_case {
	const char *tmpl;
	const char *want;
};

Test(jsonpath, runs)
{
	static const struct run_case cases[] = {
		{ "{.kind}", "List" },
		{ "{$.kind}", "List" },
		{ "{.items[*].metadata.name}", "a b" },
		{ "{.items[0].spec.tool}", "bash" },
		{ "{.items[-1].spec.tool}", "read" },
		{ "{.items[5].spec.tool}", "" },
		{ "{.items[0].spec.priority}", "3" },
		{ "{.items[0].spec.on}", "true" },
		{ "{.items[1].spec.tags}", "[\"x\",\"y\"]" },
		{ "{.items[0].metadata.labels}", "{\"team\":\"core\"}" },
		{ "{.items[0].metadata['labels'].team}", "core" },
		{ "{.items[0].metadata.labels.*}", "core" },
		{ "{.nothing.here}", "" },
		{ "name: {.items[0].metadata.name}!", "name: a!" },
		{ "{range .items[*]}{.metadata.name}{\"\\n\"}{end}", "a\nb\n" },
		{ "{range .items[*]}[{.metadata.name}={.spec.tool}]{end}", "[a=bash][b=read]" },
		{ "{range .items[*]}{range .spec.tags[*]}{@}{\"\\t\"}{end}{end}", "x\ty\t" },
		{ "plain text", "plain text" },
		{ "{ .kind }", "List" },
	};
	json_t *doc = json_loads(doc_text, 0, NULL);
	size_t i;

	cr_assert_not_null(doc);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct err e = ERR_INIT;
		struct jsonpath *jp = NULL;
		struct buf out = BUF_INIT;

		cr_assert_eq(jsonpath_compile(cases[i].tmpl, &jp, &e), 0,
			     "'%s': %s", cases[i].tmpl, e.msg);
		cr_assert_eq(jsonpath_execute(jp, doc, &out, &e), 0,
			     "'%s': %s", cases[i].tmpl, e.msg);
		cr_expect_str_eq(out.ptr, cases[i].want, "'%s': '%s'",
				 cases[i].tmpl, out.ptr);
		buf_release(&out);
		jsonpath_free(jp);
	}
	json_decref(doc);
}

struct bad_case {
	const char *tmpl;
	const char *want;       /* in the message */
};

Test(jsonpath, bad_templates_name_the_position)
{
	static const struct bad_case cases[] = {
		{ "{.kind", "unclosed '{' at position 7" },
		{ "{}", "empty expression '{}' at position 1" },
		{ "x}", "'}' without '{' at position 2" },
		{ "{range .items[*]}{.a}", "{range} without {end} at position 1" },
		{ "{.a}{end}", "{end} without {range} at position 5" },
		{ "{.items[?(@.a==1)]}", "filters '[?(...)]' are not supported at position 8" },
		{ "{..name}", "recursive descent '..' is not supported at position 2" },
		{ "{.items[0:2]}", "slices '[a:b]' are not supported" },
		{ "{.items[x]}", "expected an index" },
		{ "{.items[0}", "expected ']' at position 10" },
		{ "{.}", "expected a field name at position 3" },
		{ "{kind}", "expected '.field' or '[...]' at position 2" },
		{ "{\"abc}", "unterminated string literal at position 2" },
		{ "{\"\\q\"}", "unknown escape" },
		{ "{.a .b}", "expected '}' at position 5" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct err e = ERR_INIT;
		struct jsonpath *jp = (struct jsonpath *)1;

		cr_expect_eq(jsonpath_compile(cases[i].tmpl, &jp, &e),
			     ERR_INVALID, "'%s' compiled", cases[i].tmpl);
		cr_expect_null(jp, "'%s'", cases[i].tmpl);
		cr_expect(strstr(e.msg, cases[i].want) != NULL,
			  "'%s': '%s', want '%s'", cases[i].tmpl, e.msg,
			  cases[i].want);
	}
}
