/*
 * test_selector.c - kubectl label selectors (selector.c): every operator
 * on labels that have, lack or differ in the key, and the position named
 * for text that does not parse.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "err.h"
#include "selector.h"

struct match_case {
	const char *sel;
	const char *labels;     /* JSON object */
	bool want;
};

Test(selector, matches)
{
	static const struct match_case cases[] = {
		{ "", "{}", true },
		{ "team=core", "{\"team\":\"core\"}", true },
		{ "team==core", "{\"team\":\"core\"}", true },
		{ "team=core", "{\"team\":\"web\"}", false },
		{ "team=core", "{}", false },
		{ "team!=core", "{\"team\":\"web\"}", true },
		{ "team!=core", "{}", true },
		{ "team!=core", "{\"team\":\"core\"}", false },
		{ "env in (prod,staging)", "{\"env\":\"staging\"}", true },
		{ "env in (prod, staging)", "{\"env\":\"dev\"}", false },
		{ "env in (prod)", "{}", false },
		{ "env notin (prod,staging)", "{\"env\":\"dev\"}", true },
		{ "env notin (prod,staging)", "{}", true },
		{ "env notin (prod)", "{\"env\":\"prod\"}", false },
		{ "canary", "{\"canary\":\"\"}", true },
		{ "canary", "{}", false },
		{ "!canary", "{}", true },
		{ "!canary", "{\"canary\":\"yes\"}", false },
		{ "team=core,tier!=db", "{\"team\":\"core\",\"tier\":\"web\"}", true },
		{ "team=core,tier!=db", "{\"team\":\"core\",\"tier\":\"db\"}", false },
		{ " team = core , !x ", "{\"team\":\"core\"}", true },
		{ "app.example/name=a_b-c.d", "{\"app.example/name\":\"a_b-c.d\"}", true },
		{ "team=", "{\"team\":\"\"}", true },
		{ "team=", "{\"team\":\"x\"}", false },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct err e = ERR_INIT;
		struct selector *s = NULL;
		json_t *labels = json_loads(cases[i].labels, 0, NULL);

		cr_assert_not_null(labels, "%s", cases[i].labels);
		cr_assert_eq(selector_parse(cases[i].sel, &s, &e), 0,
			     "'%s': %s", cases[i].sel, e.msg);
		cr_expect_eq(selector_match(s, labels), cases[i].want,
			     "'%s' on %s", cases[i].sel, cases[i].labels);
		selector_free(s);
		json_decref(labels);
	}
}

Test(selector, null_selector_and_labels)
{
	struct err e = ERR_INIT;
	struct selector *s = NULL;

	cr_expect(selector_match(NULL, NULL));
	cr_assert_eq(selector_parse("!x", &s, &e), 0);
	cr_expect(selector_match(s, NULL));
	selector_free(s);
	selector_free(NULL);
}

struct bad_case {
	const char *sel;
	const char *want;       /* in the message */
};

Test(selector, bad_text_names_the_position)
{
	static const struct bad_case cases[] = {
		{ "=x", "expected a label key at position 1" },
		{ "team=core,", "expected a requirement after ',' at position 11" },
		{ "team=core tier=db", "expected ',' between requirements at position 11" },
		{ "env in prod", "expected '(' after in/notin at position 8" },
		{ "env in (a b)", "expected ',' or ')' in a value set at position 11" },
		{ "env in (a", "expected ',' or ')' in a value set at position 10" },
		{ "team>3", "expected '=', '!=', 'in', 'notin' or ',' at position 5" },
		{ "a/b/c=x", "at most one '/'" },
		{ "team=co re", "position 9" },
		{ "!", "expected a label key at position 2" },
		{ "team=a=b", "position 7" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct err e = ERR_INIT;
		struct selector *s = (struct selector *)1;

		cr_expect_eq(selector_parse(cases[i].sel, &s, &e), ERR_INVALID,
			     "'%s' parsed", cases[i].sel);
		cr_expect_null(s, "'%s'", cases[i].sel);
		cr_expect(strstr(e.msg, cases[i].want) != NULL,
			  "'%s': '%s', want '%s'", cases[i].sel, e.msg,
			  cases[i].want);
	}
}
