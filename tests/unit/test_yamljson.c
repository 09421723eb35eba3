/*
 * test_yamljson.c - YAML <-> JSON: core-schema scalar typing, positions,
 * every refused construct with its file:line:column, multi-document
 * streams, and emit round trips of strings that are easy to get wrong.
 */
#include <criterion/criterion.h>

#include <limits.h>
#include <string.h>

#include "yamljson.h"

/* Parse text as one document and return its value (new ref; NULL when
 * empty). Fails the test on a parse error. */
static json_t *yj_parse_one(const char *text)
{
	struct yaml_docs d = { NULL, 0 };
	struct err e = ERR_INIT;
	json_t *v;

	cr_assert_eq(yaml_parse_docs("t.yaml", text, strlen(text), &d, &e), 0,
		     "parse of '%s' failed: %s", text, e.msg);
	cr_assert_eq(d.n, 1, "'%s' gave %zu documents", text, d.n);
	v = json_incref(d.docs[0].value);
	yaml_docs_release(&d);
	return v;
}

static void yj_expect_json(json_t *got, const char *want_json,
			   const char *what)
{
	json_error_t jerr;
	json_t *want = json_loads(want_json, JSON_DECODE_ANY, &jerr);
	char *g = got ? json_dumps(got, JSON_ENCODE_ANY) : NULL;

	cr_assert_not_null(want, "bad expectation %s", want_json);
	cr_expect(json_equal(got, want), "%s: got %s, want %s", what,
		  g ? g : "(none)", want_json);
	free(g);
	json_decref(want);
}

/* ---- scalar typing (YAML 1.2 core schema) ------------------------- */

static const struct {
	const char *yaml;   /* the value after "v: " */
	const char *json;   /* what it must read as */
} yj_scalars[] = {
	{ "", "null" },
	{ "~", "null" },
	{ "null", "null" },
	{ "Null", "null" },
	{ "NULL", "null" },
	{ "nULL", "\"nULL\"" },
	{ "true", "true" },
	{ "True", "true" },
	{ "TRUE", "true" },
	{ "false", "false" },
	{ "False", "false" },
	{ "FALSE", "false" },
	{ "yes", "\"yes\"" },          /* YAML 1.1 booleans are strings */
	{ "no", "\"no\"" },
	{ "on", "\"on\"" },
	{ "off", "\"off\"" },
	{ "y", "\"y\"" },
	{ "0", "0" },
	{ "-12", "-12" },
	{ "+7", "7" },
	{ "0777", "777" },             /* 1.2: decimal, not octal */
	{ "0o17", "15" },
	{ "0x1F", "31" },
	{ "0x1f", "31" },
	{ "0x", "\"0x\"" },
	{ "0o8", "\"0o8\"" },
	{ "-0x1", "\"-0x1\"" },
	{ "1_000", "\"1_000\"" },
	{ "1:20", "\"1:20\"" },
	{ "9223372036854775807", "9223372036854775807" },
	{ "-9223372036854775808", "-9223372036854775808" },
	{ "0x7FFFFFFFFFFFFFFF", "9223372036854775807" },
	{ "1.5", "1.5" },
	{ ".5", "0.5" },
	{ "-.5", "-0.5" },
	{ "1.", "1.0" },
	{ "-1.5e3", "-1500.0" },
	{ "1e3", "1000.0" },
	{ "2.5E-1", "0.25" },
	{ "1e", "\"1e\"" },
	{ ".", "\".\"" },
	{ "2001-12-14", "\"2001-12-14\"" },  /* no timestamps in 1.2 */
	{ "inf", "\"inf\"" },
	{ "hello world", "\"hello world\"" },
	{ "'1'", "\"1\"" },
	{ "\"true\"", "\"true\"" },
	{ "'~'", "\"~\"" },
	{ "''", "\"\"" },
	{ "\"\"", "\"\"" },
	{ "\"a\\tb\\u00e9\"", "\"a\\tb\\u00e9\"" },
	{ "!!str 12", "\"12\"" },
	{ "!!str true", "\"true\"" },
	{ "! 12", "\"12\"" },
	{ "!!int \"12\"", "12" },
	{ "!!float 1", "1.0" },
	{ "!!float '2.5'", "2.5" },
	{ "!!bool 'true'", "true" },
	{ "!!null ''", "null" },
	{ "[1, a, \"b\"]", "[1, \"a\", \"b\"]" },
	{ "{}", "{}" },
	{ "[]", "[]" },
};

Test(yamljson, scalar_typing)
{
	char text[256];
	size_t i;

	for (i = 0; i < sizeof(yj_scalars) / sizeof(yj_scalars[0]); i++) {
		json_t *doc, *v;

		snprintf(text, sizeof(text), "v: %s\n", yj_scalars[i].yaml);
		doc = yj_parse_one(text);
		cr_assert(json_is_object(doc), "'%s' is not a mapping", text);
		v = json_object_get(doc, "v");
		yj_expect_json(v, yj_scalars[i].json, yj_scalars[i].yaml);
		json_decref(doc);
	}
}

Test(yamljson, block_scalars_are_strings)
{
	json_t *doc = yj_parse_one("lit: |\n  1\n  true\nfold: >-\n  a\n  b\n"
				   "keep: |+\n  x\n\nnum: |-\n  12\n");

	yj_expect_json(doc, "{\"lit\": \"1\\ntrue\\n\", \"fold\": \"a b\","
		       " \"keep\": \"x\\n\\n\", \"num\": \"12\"}", "blocks");
	json_decref(doc);
}

Test(yamljson, json_input_is_yaml)
{
	const char *text = "{\"a\": [1, 2.5, \"x\", true, null, "
			   "{\"b\": {}}], \"c\": \"\\u00e9\\n\"}";
	json_t *doc = yj_parse_one(text);

	yj_expect_json(doc, text, "json");
	json_decref(doc);
}

/* ---- positions ---------------------------------------------------- */

Test(yamljson, positions)
{
	static const char text[] =
		"# leading comment\n"                 /* 1 */
		"metadata:\n"                         /* 2 */
		"  name: x\n"                         /* 3 */
		"spec:\n"                             /* 4 */
		"  mode: fast\n"                      /* 5 */
		"  env_vars:\n"                       /* 6 */
		"    KEY: \"v\"\n"                    /* 7 */
		"  files:\n"                          /* 8 */
		"    - a\n"                           /* 9 */
		"    - {b: [1, 2]}\n";                /* 10 */
	static const struct {
		const char *path;
		int line, col;
	} want[] = {
		{ "metadata", 3, 3 },
		{ "metadata.name", 3, 9 },
		{ "spec", 5, 3 },
		{ "spec.mode", 5, 9 },
		{ "spec.env_vars", 7, 5 },
		{ "spec.env_vars.KEY", 7, 10 },
		{ "spec.files", 9, 5 },
		{ "spec.files.0", 9, 7 },
		{ "spec.files.1", 10, 7 },
		{ "spec.files.1.b", 10, 11 },
		{ "spec.files.1.b.1", 10, 15 },
		{ "spec.nope", 0, 0 },
		{ "", 0, 0 },
	};
	struct yaml_docs d;
	struct err e = ERR_INIT;
	int line, col;
	size_t i;

	cr_assert_eq(yaml_parse_docs("p.yaml", text, strlen(text), &d, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(d.n, 1);
	cr_expect_eq(d.docs[0].line, 2);
	cr_expect_eq(d.docs[0].column, 1);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		yaml_doc_pos(&d.docs[0], want[i].path, &line, &col);
		cr_expect(line == want[i].line && col == want[i].col,
			  "%s: got %d:%d, want %d:%d", want[i].path, line, col,
			  want[i].line, want[i].col);
	}
	yaml_doc_pos(NULL, "spec", &line, &col);
	cr_expect(line == 0 && col == 0);
	yaml_docs_release(&d);
	yaml_docs_release(NULL);
}

/* ---- refused input, each with its position ------------------------ */

static const struct {
	const char *text;
	const char *msg;    /* the whole message, or its start (prefix) */
	int prefix;
} yj_errors[] = {
	{ "a: &x 1\nb: *x\n",
	  "f.yaml:1:4: anchors and aliases are not supported", 0 },
	{ "a: 1\nb: *x\n",
	  "f.yaml:2:4: anchors and aliases are not supported", 0 },
	{ "a: &m\n  b: 1\n",
	  "f.yaml:1:4: anchors and aliases are not supported", 0 },
	{ "- &s [1]\n",
	  "f.yaml:1:3: anchors and aliases are not supported", 0 },
	{ "a: 1\nb: 2\na: 3\n", "f.yaml:3:1: duplicate key 'a'", 0 },
	{ "x:\n  k: 1\n  k: 2\n", "f.yaml:3:3: duplicate key 'k'", 0 },
	{ "{a: 1, \"a\": 2}", "f.yaml:1:8: duplicate key 'a'", 0 },
	{ "? [a]\n: 1\n", "f.yaml:1:3: mapping keys must be scalars", 0 },
	{ "{[a]: 1}", "f.yaml:1:2: mapping keys must be scalars", 0 },
	{ "? {a: 1}\n: 1\n", "f.yaml:1:3: mapping keys must be scalars", 0 },
	{ "1: x\n", "f.yaml:1:1: mapping key '1' is not a string (quote it)",
	  0 },
	{ "true: x\n",
	  "f.yaml:1:1: mapping key 'true' is not a string (quote it)", 0 },
	{ "~: x\n", "f.yaml:1:1: mapping key is empty or null", 0 },
	{ "a: !foo 1\n", "f.yaml:1:4: tag '!foo' is not supported", 0 },
	{ "a: !!set {x}\n", "f.yaml:1:4: tag '!!set' is not supported", 0 },
	{ "a: !!binary aGVsbG8=\n",
	  "f.yaml:1:4: tag '!!binary' is not supported", 0 },
	{ "a: !!int x\n", "f.yaml:1:4: 'x' is not a valid int", 0 },
	{ "a: !!bool 1\n", "f.yaml:1:4: '1' is not a valid bool", 0 },
	{ "a: \xff\n", "f.yaml:1:4: invalid leading UTF-8 octet (0xff)", 0 },
	{ "a: 1\nb: x\xc3\x28\n",
	  "f.yaml:2:6: invalid trailing UTF-8 octet (0x28)", 0 },
	{ "a: \"x\\0y\"\n",
	  "f.yaml:1:4: NUL characters in strings are not supported", 0 },
	{ "a: \"\\ud800\"\n",
	  "f.yaml:1:7: found invalid Unicode character escape code", 1 },
	{ "x: 1\n\x01\n", "f.yaml:2:1: control characters are not allowed", 1 },
	{ "a: .inf\n", "f.yaml:1:4: '.inf': infinity and NaN cannot be "
	  "represented in JSON", 0 },
	{ "a: -.Inf\n", "f.yaml:1:4: '-.Inf': infinity and NaN cannot be "
	  "represented in JSON", 0 },
	{ "a: [.NaN]\n", "f.yaml:1:5: '.NaN': infinity and NaN cannot be "
	  "represented in JSON", 0 },
	{ "a: 9223372036854775808\n",
	  "f.yaml:1:4: integer '9223372036854775808' does not fit in 64 bits",
	  0 },
	{ "a: -9223372036854775809\n",
	  "f.yaml:1:4: integer '-9223372036854775809' does not fit in 64 "
	  "bits", 0 },
	{ "a: 0x10000000000000000\n",
	  "f.yaml:1:4: integer '0x10000000000000000' does not fit in 64 bits",
	  0 },
	{ "a: 1e999\n", "f.yaml:1:4: number '1e999' is out of range", 0 },
	{ "a: [1, 2\n", "f.yaml:2:1: did not find expected ',' or ']'", 1 },
	{ "a: b: c\n",
	  "f.yaml:1:5: mapping values are not allowed in this context", 0 },
	{ "a:\n  - b\n c: d\n", "f.yaml:3:2: did not find expected key", 1 },
	{ "\tx: 1\n",
	  "f.yaml:1:1: found character that cannot start any token", 1 },
	{ "a: 'unterminated\n",
	  "f.yaml:2:1: found unexpected end of stream", 1 },
	{ "ok: 1\n---\nbad: [\n", "f.yaml:4:1: did not find expected node "
	  "content", 1 },
};

Test(yamljson, errors_with_positions)
{
	size_t i;

	for (i = 0; i < sizeof(yj_errors) / sizeof(yj_errors[0]); i++) {
		struct yaml_docs d = { (struct yaml_doc *)1, 99 };
		struct err e = ERR_INIT;
		const char *want = yj_errors[i].msg;
		int rc = yaml_parse_docs("f.yaml", yj_errors[i].text,
					 strlen(yj_errors[i].text), &d, &e);

		cr_expect_eq(rc, ERR_INVALID, "'%s' gave %d", yj_errors[i].text,
			     rc);
		cr_expect(d.docs == NULL && d.n == 0,
			  "'%s': output not left empty", yj_errors[i].text);
		if (yj_errors[i].prefix)
			cr_expect(strncmp(e.msg, want, strlen(want)) == 0,
				  "'%s': got '%s', want '%s...'",
				  yj_errors[i].text, e.msg, want);
		else
			cr_expect_str_eq(e.msg, want, "for '%s'",
					 yj_errors[i].text);
	}
}

static char *yj_nested(int depth, int flow)
{
	size_t cap = (size_t)depth * ((size_t)depth * 2 + 16) + 16, i;
	char *s = calloc(1, cap), *p = s;

	cr_assert_not_null(s);
	if (flow) {
		for (i = 0; i < (size_t)depth; i++)
			*p++ = '[';
		for (i = 0; i < (size_t)depth; i++)
			*p++ = ']';
	} else {
		for (i = 0; i < (size_t)depth; i++)
			p += sprintf(p, "%*sk:\n", (int)i * 2, "");
		p += sprintf(p, "%*sv\n", depth * 2, "");
	}
	return s;
}

Test(yamljson, nesting_limit)
{
	struct yaml_docs d;
	struct err e = ERR_INIT;
	char *ok = yj_nested(64, 1), *bad = yj_nested(65, 1);
	char *bok = yj_nested(63, 0), *bbad = yj_nested(65, 0);

	cr_expect_eq(yaml_parse_docs("n.yaml", ok, strlen(ok), &d, &e), 0,
		     "%s", e.msg);
	yaml_docs_release(&d);
	cr_expect_eq(yaml_parse_docs("n.yaml", bad, strlen(bad), &d, &e),
		     ERR_INVALID);
	cr_expect_str_eq(e.msg, "n.yaml:1:65: nesting deeper than 64 levels");
	/* 63 nested "k:" mappings plus the root mapping: 64 levels. */
	cr_expect_eq(yaml_parse_docs("n.yaml", bok, strlen(bok), &d, &e), 0,
		     "%s", e.msg);
	yaml_docs_release(&d);
	cr_expect_eq(yaml_parse_docs("n.yaml", bbad, strlen(bbad), &d, &e),
		     ERR_INVALID);
	cr_expect(strstr(e.msg, "nesting deeper than 64 levels") != NULL,
		  "%s", e.msg);
	free(ok);
	free(bad);
	free(bok);
	free(bbad);
}

/* ---- streams and empty documents ---------------------------------- */

Test(yamljson, multi_document_stream)
{
	static const char text[] = "a: 1\n"
				   "---\n"
				   "b: 2\n"
				   "...\n"
				   "---\n"
				   "- x\n"
				   "--- 42\n";
	struct yaml_docs d;
	struct err e = ERR_INIT;

	cr_assert_eq(yaml_parse_docs("s.yaml", text, strlen(text), &d, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(d.n, 4);
	yj_expect_json(d.docs[0].value, "{\"a\": 1}", "doc 0");
	yj_expect_json(d.docs[1].value, "{\"b\": 2}", "doc 1");
	yj_expect_json(d.docs[2].value, "[\"x\"]", "doc 2");
	yj_expect_json(d.docs[3].value, "42", "doc 3");
	cr_expect_eq(d.docs[0].line, 1);
	cr_expect_eq(d.docs[1].line, 3);
	cr_expect_eq(d.docs[2].line, 6);
	cr_expect(d.docs[3].line == 7 && d.docs[3].column == 5);
	yaml_docs_release(&d);
}

Test(yamljson, empty_documents)
{
	static const struct {
		const char *text;
		size_t n;        /* documents */
		size_t empty;    /* of which empty (value NULL) */
	} cases[] = {
		{ "", 0, 0 },
		{ "# only a comment\n", 0, 0 },
		{ "\n\n   \n", 0, 0 },
		{ "---\n", 1, 1 },
		{ "---\n---\n", 2, 2 },
		{ "--- ~\n", 1, 1 },
		{ "null\n", 1, 1 },
		{ "---\n# c\n---\na: 1\n", 2, 1 },
		{ "a: 1\n---\n...\n", 2, 1 },
	};
	size_t i, j, empty;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct yaml_docs d;
		struct err e = ERR_INIT;

		cr_assert_eq(yaml_parse_docs("e.yaml", cases[i].text,
					     strlen(cases[i].text), &d, &e),
			     0, "%s", e.msg);
		cr_expect_eq(d.n, cases[i].n, "'%s': %zu documents",
			     cases[i].text, d.n);
		for (j = 0, empty = 0; j < d.n; j++)
			empty += d.docs[j].value == NULL;
		cr_expect_eq(empty, cases[i].empty, "'%s': %zu empty",
			     cases[i].text, empty);
		yaml_docs_release(&d);
	}
}

/* ---- emitting ----------------------------------------------------- */

static const char *const yj_awkward[] = {
	"true", "false", "True", "NULL", "null", "~", "", "1", "-1", "+1",
	"1.5", ".5", "1e3", "0x10", "0o7", "0777", ".inf", "-.Inf", ".nan",
	"yes", "no", "on", "off", "y", "N",
	"a: b", "a:b", "#x", "x #y", "- a", "-", "?", ":", "key:", "@at",
	"`tick", "%pct", "!bang", "&amp", "*star", "|pipe", ">gt", "{flow}",
	"[a]", "a, b", "---", "...", "--- x", "'single'", "\"double\"",
	"quote ' and \"", "back\\slash", "  lead", "trail  ", " ", "\t",
	"tab\there", "h\xc3\xa9llo w\xc3\xb6rld", "\xe6\x97\xa5\xe6\x9c\xac",
	"emoji \xf0\x9f\x98\x80", "multi\nline\n", "multi\nline",
	"\nleading newline", "  indented\nmulti\n", "trailing\n\n\n",
	"\n", "\n\n", "a\n b\n  c", "cr\r\nlf", "line\xe2\x80\xa8sep",
	"nel\xc2\x85x", "del\x7f", "bell\x07", "bom\xef\xbb\xbf",
	"a: |\n  b", "x\n- y\n", "0\n1",
};

static void yj_round_trip(json_t *v, const char *what)
{
	struct buf b = BUF_INIT;
	struct err e = ERR_INIT;
	json_t *back;

	cr_assert_eq(yaml_emit(&b, v, 0, &e), 0, "%s: %s", what, e.msg);
	back = yj_parse_one(b.ptr);
	if (!json_equal(back, v)) {
		char *g = back ? json_dumps(back, JSON_ENCODE_ANY) : NULL;
		char *w = json_dumps(v, JSON_ENCODE_ANY);
		cr_expect_fail("%s: emitted\n%s\nread back %s, want %s", what,
			       b.ptr, g ? g : "(empty)", w);
		free(g);
		free(w);
	}
	json_decref(back);
	buf_release(&b);
}

Test(yamljson, emit_round_trip_strings)
{
	size_t i;

	for (i = 0; i < sizeof(yj_awkward) / sizeof(yj_awkward[0]); i++) {
		const char *s = yj_awkward[i];
		json_t *v = json_pack("{s:s, s:s, s:[s], s:{s:s}}", "value", s,
				      s, "as key", "in list", s, "nested", s,
				      s);

		cr_assert_not_null(v, "cannot pack '%s'", s);
		yj_round_trip(v, s);
		json_decref(v);
		v = json_string(s);
		yj_round_trip(v, s);   /* as the root */
		json_decref(v);
	}
}

Test(yamljson, emit_round_trip_numbers)
{
	static const double reals[] = {
		0.1, 1.0, -0.0, 0.5, 1e300, -1e-300, 5e-324, 1.0 / 3.0,
		123456789.123456789, 1e15, 1e16, 1e17, 2.5e-7, 100.0,
	};
	static const json_int_t ints[] = {
		0, 1, -1, 42, 777, LLONG_MAX, LLONG_MIN,
	};
	size_t i;

	for (i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
		json_t *v = json_pack("{s:f, s:[f]}", "r", reals[i], "l",
				      reals[i]);
		char what[64];

		snprintf(what, sizeof(what), "%.17g", reals[i]);
		yj_round_trip(v, what);
		cr_expect(json_is_real(json_object_get(v, "r")));
		json_decref(v);
	}
	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		json_t *v = json_pack("{s:I}", "i", ints[i]);

		yj_round_trip(v, "integer");
		json_decref(v);
	}
}

Test(yamljson, emit_shape)
{
	static const char want[] =
		"a: 'true'\n"
		"b: 1\n"
		"c: 1.5\n"
		"d: {}\n"
		"e: []\n"
		"f: |\n"
		"  x\n"
		"  y\n"
		"g: null\n"
		"h: true\n"
		"i: 2.0\n"
		"j: ''\n"
		"k:\n"
		"  l:\n"
		"  - 1\n"
		"  - m: 'n'\n"          /* a YAML 1.1 boolean */
		"'1': 'yes'\n";
	json_t *v = json_pack("{s:s, s:i, s:f, s:{}, s:[], s:s, s:n, s:b, "
			      "s:f, s:s, s:{s:[i, {s:s}]}, s:s}",
			      "a", "true", "b", 1, "c", 1.5, "d", "e", "f",
			      "x\ny\n", "g", "h", 1, "i", 2.0, "j", "", "k",
			      "l", 1, "m", "n", "1", "yes");
	struct buf b = BUF_INIT;
	struct err e = ERR_INIT;

	cr_assert_not_null(v);
	cr_assert_eq(yaml_emit(&b, v, 0, &e), 0, "%s", e.msg);
	cr_expect_str_eq(b.ptr, want);
	buf_reset(&b);
	cr_assert_eq(yaml_emit(&b, v, 1, &e), 0, "%s", e.msg);
	cr_expect(strncmp(b.ptr, "---\n", 4) == 0, "no marker: %s", b.ptr);
	json_decref(v);

	/* Appends; a scalar root; a NULL value is null. */
	buf_reset(&b);
	cr_assert_eq(buf_puts(&b, "# head\n"), 0);
	v = json_string("plain");
	cr_assert_eq(yaml_emit(&b, v, 0, &e), 0, "%s", e.msg);
	json_decref(v);
	cr_expect_str_eq(b.ptr, "# head\nplain\n");
	buf_reset(&b);
	cr_assert_eq(yaml_emit(&b, NULL, 0, &e), 0, "%s", e.msg);
	cr_expect_str_eq(b.ptr, "null\n");
	buf_release(&b);
}

Test(yamljson, emit_over_cap_leaves_buffer)
{
	struct buf b;
	struct err e = ERR_INIT;
	char big[300];
	json_t *v;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	v = json_pack("{s:s}", "k", big);
	buf_init(&b, 64);
	cr_assert_eq(buf_puts(&b, "keep"), 0);
	cr_expect_eq(yaml_emit(&b, v, 0, &e), ERR_TOO_LARGE);
	cr_expect_str_eq(b.ptr, "keep");
	cr_expect_eq(b.len, 4);
	json_decref(v);
	buf_release(&b);
}

Test(yamljson, long_quotes_stay_valid_utf8)
{
	struct yaml_docs d;
	struct err e = ERR_INIT;
	char key[256], text[600];
	json_t *msg;
	size_t i;

	/* 'a' then 2-byte characters: a 64-byte cut would split one. */
	key[0] = 'a';
	for (i = 0; i < 50; i++)
		memcpy(key + 1 + 2 * i, "\xc3\xa9", 2);
	key[101] = '\0';
	snprintf(text, sizeof(text), "%s: 1\n%s: 2\n", key, key);
	cr_assert_eq(yaml_parse_docs("q.yaml", text, strlen(text), &d, &e),
		     ERR_INVALID);
	msg = json_string(e.msg);
	cr_expect_not_null(msg, "not UTF-8: %s", e.msg);
	json_decref(msg);
	cr_expect(strncmp(e.msg, "q.yaml:2:1: duplicate key 'a\xc3\xa9", 30) == 0,
		  "%s", e.msg);
	cr_expect_eq(strlen(e.msg), strlen("q.yaml:2:1: duplicate key ''") + 63);
}
