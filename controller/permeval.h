/*
 * permeval.h - the permission evaluator: OpenCode's wildcard matcher and
 * last-match-wins rule evaluation over tool_permissions rows, with command
 * chaining split apart so that no allow rule can carry a second command.
 *
 * Pure: no store, no I/O, no globals; every function may be called from any
 * thread. The HTTP endpoint (api_governance.c) reads the rows and records
 * the outcome; this module only decides.
 */
#ifndef POCKETCTL_PERMEVAL_H
#define POCKETCTL_PERMEVAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "err.h"

/* Subjects (command parts, patterns) longer than this many bytes are not
 * matched at all and decide "ask": this bounds the matcher's work. */
#define PERMEVAL_SUBJECT_MAX ((size_t)64 << 10)

enum permeval_action {
	PERMEVAL_ASK = 0,     /* also the answer when no rule matches */
	PERMEVAL_ALLOW,
	PERMEVAL_DENY,
};

/* "ask", "allow", "deny". */
const char *permeval_action_name(enum permeval_action a);

/* Parse "allow" / "ask" / "deny"; -1 for anything else (NULL included). */
int permeval_action_parse(const char *s);

/*
 * OpenCode's wildcard match (reference §8.3): the whole of subject must
 * match, case-sensitively; '*' matches any run of characters (newlines and
 * '/' included; "**" is the same as "*"); '?' matches exactly one character
 * (one UTF-8 sequence; a byte that is not valid UTF-8 counts as one); every
 * other character is literal. When the pattern ends with " *" the tail is
 * optional and its space stands for any one character that ends a shell
 * word (a blank, a newline, or one of | & ; ( ) < > `): "ls *" matches
 * "ls", "ls -la", "ls\n..." and "ls; rm -rf /" but not "lsof" or "ls.old"
 * (reference §8.3, whose examples need more than OpenCode's own matcher,
 * which wants a literal space there; the evaluator splits chained
 * commands before matching anyway).
 * A pattern that is not valid UTF-8 matches nothing; NULL matches nothing.
 * Runs in O(len(pattern) * len(subject)) time and constant space.
 */
bool permeval_match(const char *pattern, const char *subject);

/*
 * Split a shell command at every place where a second command can start:
 * ';', '&' (and so "&&"), '|' (and so "||"), a backtick, "$(", "<(", ">(",
 * '\n' and '\r'. Parts are trimmed of blanks; empty parts are dropped; a
 * command with no non-empty part gives one empty part. Quoting is ignored
 * on purpose: "echo 'a;b'" splits too, which can only turn an allow into an
 * ask, never the reverse. Caller owns *out (a JSON array of strings).
 * Returns 0 or ERR_NOMEM.
 */
int permeval_split_command(const char *cmd, json_t **out, struct err *e);

/* One rule, in evaluation order. Strings are borrowed. */
struct permeval_rule {
	const char *tool;       /* wildcard over the permission (tool) name */
	const char *pattern;    /* wildcard over the subject */
	enum permeval_action action;
	const char *name;       /* the tool_permissions record name, for the
	                         * explanation */
};

/* A set of rules in evaluation order; owns its array and holds a
 * reference to the records its strings point into. */
struct permeval_rules {
	struct permeval_rule *v;
	size_t n;
	json_t *src;            /* owned reference keeping the strings alive */
};

/*
 * Build the rules for agent_id ("" or NULL: none, only the global rules)
 * from tool_permissions records (a JSON array of record_to_json() objects,
 * borrowed): active rows whose agent is "" (global) or agent_id. Global
 * rules come first, then the agent's, as OpenCode merges the agent's block
 * over the global one; within each group rows are ordered by (priority,
 * tool, pattern, record name), the order the opencode.json renderer writes
 * them in. Rows with an empty tool or pattern or an unknown action are
 * skipped. Release with permeval_rules_release(). Returns 0, ERR_INVALID
 * (records is not an array) or ERR_NOMEM.
 */
int permeval_rules_build(json_t *records, const char *agent_id,
			 struct permeval_rules *out, struct err *e);

/* Accepts NULL; leaves r empty. */
void permeval_rules_release(struct permeval_rules *r);

/*
 * The action of the last rule whose tool matches permission and whose
 * pattern matches subject (OpenCode: last match wins); PERMEVAL_ASK when
 * none does. *matched (nullable) receives the index of that rule, or -1.
 */
enum permeval_action permeval_decide(const struct permeval_rules *r,
				     const char *permission,
				     const char *subject, long *matched);

/*
 * Evaluate one permission request:
 *   - the subjects are, for permission "bash" with a string
 *     metadata.command, the parts of that command (permeval_split_command;
 *     a command longer than PERMEVAL_SUBJECT_MAX is one subject);
 *     otherwise the strings of patterns (an array; non-strings are
 *     refused), or "*" when there are none;
 *   - each subject is decided with permeval_decide(); the result is DENY
 *     when any subject is denied, ALLOW when every subject is allowed, ASK
 *     otherwise. A subject longer than PERMEVAL_SUBJECT_MAX is ASK.
 * *why (nullable) receives an explanation the caller owns: an array of
 * {"subject", "action", "rule"} (rule = the matching record name or null).
 * Returns 0 with *out set, ERR_INVALID naming the field (permission empty,
 * patterns not an array of strings, metadata not an object) or ERR_NOMEM.
 */
int permeval_evaluate(const struct permeval_rules *r, const char *permission,
		      json_t *patterns, json_t *metadata,
		      enum permeval_action *out, json_t **why, struct err *e);

#endif
