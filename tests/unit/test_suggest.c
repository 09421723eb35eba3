/*
 * test_suggest.c - "did you mean" (suggest.c) and the list of every
 * error of one pass (err_list in err.c): distances, thresholds, ties,
 * case-only differences, the cap, the sort and the one-line summary.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "err.h"
#include "suggest.h"

struct dist_case {
	const char *a, *b;
	int want;
};

Test(suggest, distances)
{
	static const struct dist_case cases[] = {
		{ "", "", 0 },
		{ "abc", "", 3 },
		{ "", "abc", 3 },
		{ "pattern", "pattern", 0 },
		{ "patern", "pattern", 1 },          /* deletion */
		{ "patterns", "pattern", 1 },        /* insertion */
		{ "pattarn", "pattern", 1 },         /* substitution */
		{ "ptatren", "pattern", 2 },         /* two swaps */
		{ "ptatern", "ptattern", 1 },
		{ "acb", "abc", 1 },                 /* one swap, not two edits */
		{ "ToolPermision", "ToolPermission", 1 },
		{ "toolpermission", "ToolPermission", 0 },   /* case only */
		{ "kitten", "sitting", 3 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(suggest_distance(cases[i].a, cases[i].b),
			     cases[i].want, "'%s' / '%s': %d, want %d",
			     cases[i].a, cases[i].b,
			     suggest_distance(cases[i].a, cases[i].b),
			     cases[i].want);
}

/* The suggestion for word among the NULL-terminated names, or NULL. */
static const char *best(const char *word, const char *const *names)
{
	static struct suggest s;

	suggest_init(&s, word);
	for (; *names; names++)
		suggest_consider(&s, *names, *names);
	return suggest_result(&s);
}

struct hint_case {
	const char *word;
	const char *want;   /* NULL: no suggestion */
};

Test(suggest, thresholds_and_case)
{
	static const char *const fields[] = { "agent", "tool", "pattern",
					      "action", "active", "priority",
					      NULL };
	static const struct hint_case cases[] = {
		{ "patern", "pattern" },
		{ "Pattern", "pattern" },      /* case only */
		{ "PATTERN", "pattern" },
		{ "prioirty", "priority" },    /* a swap */
		{ "agnet", "agent" },
		{ "tol", "tool" },             /* 3 bytes: one edit allowed */
		{ "to", NULL },                /* two edits from "tool": too far */
		{ "xyz", NULL },
		{ "colour", NULL },
		{ "pattern", NULL },           /* itself is never suggested */
		{ "activ", "active" },         /* "action" is 2 away, "active" 1 */
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = best(cases[i].word, fields);

		if (!cases[i].want)
			cr_expect_null(got, "'%s': got '%s'", cases[i].word,
				       got);
		else
			cr_expect(got && !strcmp(got, cases[i].want),
				  "'%s': got '%s', want '%s'", cases[i].word,
				  got ? got : "(none)", cases[i].want);
	}
}

Test(suggest, ties_keep_the_first_and_answers_differ)
{
	static const char *const two[] = { "abcd", "abce", NULL };
	struct suggest s;
	char hint[64];

	cr_expect_str_eq(best("abcx", two), "abcd");
	/* A collection name suggests its kind. */
	suggest_init(&s, "tool_permisions");
	suggest_consider(&s, "McpServer", "McpServer");
	suggest_consider(&s, "tool_permissions", "ToolPermission");
	cr_expect_str_eq(suggest_result(&s), "ToolPermission");
	suggest_hint(&s, hint, sizeof(hint));
	cr_expect_str_eq(hint, " (did you mean 'ToolPermission'?)");
	suggest_init(&s, "nothing-like-it");
	suggest_consider(&s, "McpServer", "McpServer");
	suggest_hint(&s, hint, sizeof(hint));
	cr_expect_str_eq(hint, "");
}

Test(suggest, long_words_get_nothing)
{
	char w[SUGGEST_MAX_LEN + 2];
	const char *names[2] = { NULL, NULL };

	memset(w, 'a', sizeof(w) - 1);
	w[sizeof(w) - 1] = '\0';
	names[0] = "aaaa";
	cr_expect_null(best(w, names));
	w[SUGGEST_MAX_LEN - 1] = '\0';   /* 63 bytes: compared */
	names[0] = w;
	cr_expect_eq(suggest_distance(w, w), 0);
}

/* ---- err_list ------------------------------------------------------ */

static void add(struct err_list *l, const char *file, int line, int col,
		const char *msg)
{
	struct err e = ERR_INIT;

	err_set(&e, ERR_INVALID, "%s:%d:%d: %s", file, line, col, msg);
	cr_assert_eq(err_list_add(l, &e, file, line, col), 0);
}

Test(err_list, sorts_by_file_order_then_position)
{
	struct err_list l = ERR_LIST_INIT;
	struct err e = ERR_INIT;

	cr_assert_eq(err_list_note_file(&l, "z.yaml"), 0);
	cr_assert_eq(err_list_note_file(&l, "a.yaml"), 0);
	add(&l, "a.yaml", 3, 1, "third");
	add(&l, "z.yaml", 9, 2, "second");
	add(&l, "z.yaml", 2, 5, "first");
	add(&l, "a.yaml", 3, 1, "fourth");   /* same place: arrival order */
	err_list_sort(&l);
	cr_assert_eq(l.n, 4);
	cr_expect_str_eq(l.v[0].err.msg, "z.yaml:2:5: first");
	cr_expect_str_eq(l.v[1].err.msg, "z.yaml:9:2: second");
	cr_expect_str_eq(l.v[2].err.msg, "a.yaml:3:1: third");
	cr_expect_str_eq(l.v[3].err.msg, "a.yaml:3:1: fourth");

	cr_expect_eq(err_list_summary(&l, &e), ERR_INVALID);
	cr_expect_str_eq(e.msg, "4 errors: z.yaml:2:5: first; z.yaml:9:2: "
			 "second; a.yaml:3:1: third; ...");
	err_list_release(&l);
	err_list_release(&l);     /* released twice: still fine */
	err_list_release(NULL);
	cr_expect_eq(err_list_summary(&l, &e), 0);
	cr_expect_eq(e.code, 0);
}

Test(err_list, one_error_is_itself)
{
	struct err_list l = ERR_LIST_INIT;
	struct err e = ERR_INIT, one = ERR_INIT;

	err_set_field(&one, ERR_CONFLICT, "spec.agent", "f:1:2: clash");
	cr_assert_eq(err_list_add(&l, &one, "f", 1, 2), 0);
	cr_expect_eq(err_list_summary(&l, &e), ERR_CONFLICT);
	cr_expect_str_eq(e.msg, "f:1:2: clash");
	cr_expect_str_eq(e.field, "spec.agent");
	err_list_release(&l);
}

Test(err_list, caps_and_counts_the_rest)
{
	struct err_list l = ERR_LIST_INIT;
	struct err e = ERR_INIT;
	char long_msg[600];
	int i;

	memset(long_msg, 'x', sizeof(long_msg) - 1);
	long_msg[sizeof(long_msg) - 1] = '\0';
	for (i = 0; i < ERR_LIST_MAX + 7; i++)
		add(&l, "f.yaml", i + 1, 1, long_msg);
	cr_expect_eq(l.n, ERR_LIST_MAX);
	cr_expect_eq(l.total, ERR_LIST_MAX + 7);
	/* The summary stays one line of at most ERR_MSG_MAX - 1 bytes and
	 * says where it was cut. */
	err_list_summary(&l, &e);
	cr_expect_eq(strncmp(e.msg, "57 errors: f.yaml:1:1: ", 23), 0, "%s",
		     e.msg);
	cr_expect_lt(strlen(e.msg), sizeof(e.msg));
	cr_expect_str_eq(e.msg + strlen(e.msg) - 3, "...");
	err_list_release(&l);
}
