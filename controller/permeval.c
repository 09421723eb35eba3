/*
 * permeval.c - OpenCode's wildcard matcher and last-match-wins evaluation
 * over tool_permissions rows (see permeval.h).
 *
 * The matcher is the classic linear-space glob walk with one remembered
 * star, stepping over whole UTF-8 sequences so that '?' is one character as
 * in OpenCode (which compiles the pattern to a JavaScript regular
 * expression). Command chaining is defeated before matching: a bash command
 * is split into every part that could run on its own, and each part must be
 * allowed by itself.
 */
#include "permeval.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- actions ------------------------------------------------------------ */

const char *permeval_action_name(enum permeval_action a)
{
	switch (a) {
	case PERMEVAL_ALLOW:
		return "allow";
	case PERMEVAL_DENY:
		return "deny";
	case PERMEVAL_ASK:
		break;
	}
	return "ask";
}

int permeval_action_parse(const char *s)
{
	if (!s)
		return -1;
	if (!strcmp(s, "allow"))
		return PERMEVAL_ALLOW;
	if (!strcmp(s, "ask"))
		return PERMEVAL_ASK;
	if (!strcmp(s, "deny"))
		return PERMEVAL_DENY;
	return -1;
}

/* ---- the matcher ---------------------------------------------------------- */

static bool cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

/*
 * Length of the valid UTF-8 sequence at s[0..n) (n >= 1), or 0 when s does
 * not start one (Go's utf8.DecodeRune rules: no overlong forms, no
 * surrogates, nothing above U+10FFFF).
 */
static size_t u8seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return n >= 2 && cont(s[1]) ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF) {
		if (n < 3 || !cont(s[1]) || !cont(s[2]))
			return 0;
		if (c == 0xE0 && s[1] < 0xA0)
			return 0;
		if (c == 0xED && s[1] > 0x9F)
			return 0;
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		if (n < 4 || !cont(s[1]) || !cont(s[2]) || !cont(s[3]))
			return 0;
		if (c == 0xF0 && s[1] < 0x90)
			return 0;
		if (c == 0xF4 && s[1] > 0x8F)
			return 0;
		return 4;
	}
	return 0;
}

/* The width of one character at s[0..n): a valid sequence, else 1 byte. */
static size_t u8char(const unsigned char *s, size_t n)
{
	size_t k = u8seq(s, n);

	return k ? k : 1;
}

static bool u8valid(const unsigned char *s, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		k = u8seq(s + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

/* A character that ends a shell word: blanks, newlines and bash's
 * metacharacters (plus the backtick). */
static bool word_end(unsigned char c)
{
	return c && strchr(" \t\n\r\v\f|&;()<>`", c) != NULL;
}

/*
 * Whole-string glob match of p[0..pn) against s[0..sn). The pattern byte
 * at ws (SIZE_MAX: none), a space, matches any one word_end() character.
 */
static bool glob(const unsigned char *p, size_t pn, const unsigned char *s,
		 size_t sn, size_t ws)
{
	size_t pi = 0, si = 0, star_p = SIZE_MAX, star_s = 0, pl, sl;

	while (si < sn) {
		if (pi < pn && p[pi] == '*') {
			star_p = ++pi;
			star_s = si;
			continue;
		}
		if (pi < pn && p[pi] == '?') {
			pi++;
			si += u8char(s + si, sn - si);
			continue;
		}
		if (pi == ws && word_end(s[si])) {
			pi++;
			si++;
			continue;
		}
		if (pi < pn) {
			pl = u8char(p + pi, pn - pi);
			sl = u8char(s + si, sn - si);
			if (pl == sl && !memcmp(p + pi, s + si, pl)) {
				pi += pl;
				si += sl;
				continue;
			}
		}
		if (star_p == SIZE_MAX)
			return false;
		/* Let the last star swallow one more character. */
		star_s += u8char(s + star_s, sn - star_s);
		si = star_s;
		pi = star_p;
	}
	while (pi < pn && p[pi] == '*')
		pi++;
	return pi == pn;
}

bool permeval_match(const char *pattern, const char *subject)
{
	const unsigned char *p = (const unsigned char *)pattern;
	const unsigned char *s = (const unsigned char *)subject;
	size_t pn, sn;

	if (!pattern || !subject)
		return false;
	pn = strlen(pattern);
	sn = strlen(subject);
	if (!u8valid(p, pn))
		return false;
	if (pn < 2 || p[pn - 2] != ' ' || p[pn - 1] != '*')
		return glob(p, pn, s, sn, SIZE_MAX);
	/*
	 * "cmd *": the tail is optional, so "cmd" alone matches, and the
	 * space before it stands for anything that ends the shell word "cmd"
	 * (reference §8.3: "ls *" matches "ls\n..." and "ls; rm -rf /", not
	 * "lsof").
	 */
	return glob(p, pn, s, sn, pn - 2) || glob(p, pn - 2, s, sn, SIZE_MAX);
}

/* ---- splitting commands ---------------------------------------------------- */

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}

/* Length of the separator at s (0 when none starts there). */
static size_t separator(const char *s)
{
	switch (s[0]) {
	case ';':
	case '&':
	case '|':
	case '`':
	case '\n':
	case '\r':
		return 1;
	case '$':
	case '<':
	case '>':
		return s[1] == '(' ? 2 : 0;
	default:
		return 0;
	}
}

static int add_part(json_t *parts, const char *a, size_t n)
{
	while (n && blank(*a)) {
		a++;
		n--;
	}
	while (n && blank(a[n - 1]))
		n--;
	if (!n)
		return 0;
	/* json_stringn_nocheck: the command came from a JSON string (valid
	 * UTF-8) and separators are ASCII, so every part is valid too;
	 * stolen by the array. */
	return json_array_append_new(parts, json_stringn_nocheck(a, n)) ?
	       ERR_NOMEM : 0;
}

int permeval_split_command(const char *cmd, json_t **out, struct err *e)
{
	json_t *parts = json_array();
	const char *start, *p;
	size_t k;
	int rc = 0;

	*out = NULL;
	if (!parts)
		return err_set(e, ERR_NOMEM, "out of memory");
	start = p = cmd ? cmd : "";
	while (*p && !rc) {
		k = separator(p);
		if (!k) {
			p++;
			continue;
		}
		rc = add_part(parts, start, (size_t)(p - start));
		p += k;
		start = p;
	}
	if (!rc)
		rc = add_part(parts, start, (size_t)(p - start));
	if (!rc && !json_array_size(parts))
		rc = json_array_append_new(parts, json_string("")) ? ERR_NOMEM :
								    0;
	if (rc) {
		json_decref(parts);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	*out = parts;
	return 0;
}

/* ---- rules ------------------------------------------------------------------ */

struct sortable {
	struct permeval_rule r;
	bool agent;        /* false: global (sorts first) */
	double priority;
	size_t index;      /* position in the input: the last tie-breaker */
};

static int cmp_sortable(const void *pa, const void *pb)
{
	const struct sortable *a = pa, *b = pb;
	int c;

	if (a->agent != b->agent)
		return a->agent ? 1 : -1;
	if (a->priority != b->priority)
		return a->priority < b->priority ? -1 : 1;
	c = strcmp(a->r.tool, b->r.tool);
	if (!c)
		c = strcmp(a->r.pattern, b->r.pattern);
	if (!c)
		c = strcmp(a->r.name, b->r.name);
	if (c)
		return c;
	return a->index < b->index ? -1 : a->index > b->index;
}

static const char *str_member(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

int permeval_rules_build(json_t *records, const char *agent_id,
			 struct permeval_rules *out, struct err *e)
{
	struct sortable *v = NULL;
	json_t *rec, *data, *prio;
	const char *agent;
	size_t i, n = 0;
	int action;

	memset(out, 0, sizeof(*out));
	if (!json_is_array(records))
		return err_set(e, ERR_INVALID,
			       "tool_permissions: expected an array of records");
	if (!agent_id)
		agent_id = "";
	if (json_array_size(records)) {
		v = calloc(json_array_size(records), sizeof(*v));
		if (!v)
			return err_set(e, ERR_NOMEM, "out of memory");
	}
	json_array_foreach(records, i, rec) {
		data = json_object_get(rec, "data");
		if (!json_is_true(json_object_get(data, "active")))
			continue;
		agent = str_member(data, "agent");
		if (*agent && (!*agent_id || strcmp(agent, agent_id)))
			continue;
		action = permeval_action_parse(str_member(data, "action"));
		if (action < 0 || !*str_member(data, "tool") ||
		    !*str_member(data, "pattern"))
			continue;
		v[n].r.tool = str_member(data, "tool");
		v[n].r.pattern = str_member(data, "pattern");
		v[n].r.action = (enum permeval_action)action;
		v[n].r.name = str_member(rec, "name");
		v[n].agent = *agent != '\0';
		prio = json_object_get(data, "priority");
		v[n].priority = json_is_number(prio) ? json_number_value(prio) :
						       0;
		v[n].index = i;
		n++;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_sortable);
	if (n) {
		out->v = calloc(n, sizeof(*out->v));
		if (!out->v) {
			free(v);
			return err_set(e, ERR_NOMEM, "out of memory");
		}
	}
	for (i = 0; i < n; i++)
		out->v[i] = v[i].r;
	out->n = n;
	out->src = json_incref(records);
	free(v);
	return 0;
}

void permeval_rules_release(struct permeval_rules *r)
{
	if (!r)
		return;
	free(r->v);
	json_decref(r->src);
	memset(r, 0, sizeof(*r));
}

enum permeval_action permeval_decide(const struct permeval_rules *r,
				     const char *permission,
				     const char *subject, long *matched)
{
	size_t i;

	if (matched)
		*matched = -1;
	for (i = r ? r->n : 0; i-- > 0;) {
		if (permeval_match(r->v[i].tool, permission) &&
		    permeval_match(r->v[i].pattern, subject)) {
			if (matched)
				*matched = (long)i;
			return r->v[i].action;
		}
	}
	return PERMEVAL_ASK;
}

/* The subjects of a request, as a new array of strings in *out. */
static int subjects(const char *permission, json_t *patterns,
		    json_t *metadata, json_t **out, struct err *e)
{
	json_t *cmd = json_object_get(metadata, "command");   /* borrowed */
	json_t *v, *list;
	size_t i;

	*out = NULL;
	/* A command too long to match is one subject, which then asks:
	 * splitting it would only multiply the matcher's work. */
	if (!strcmp(permission, "bash") && json_is_string(cmd) &&
	    json_string_length(cmd) <= PERMEVAL_SUBJECT_MAX)
		return permeval_split_command(json_string_value(cmd), out, e);
	if (!strcmp(permission, "bash") && json_is_string(cmd)) {
		list = json_array();
		/* json_array_append shares cmd. */
		if (!list || json_array_append(list, cmd)) {
			json_decref(list);
			return err_set(e, ERR_NOMEM, "out of memory");
		}
		*out = list;
		return 0;
	}
	list = json_array();
	if (!list)
		return err_set(e, ERR_NOMEM, "out of memory");
	json_array_foreach(patterns, i, v) {
		/* json_incref: the string is shared with the request. */
		if (json_array_append(list, v)) {
			json_decref(list);
			return err_set(e, ERR_NOMEM, "out of memory");
		}
	}
	if (!json_array_size(list) &&
	    json_array_append_new(list, json_string("*"))) {
		json_decref(list);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	*out = list;
	return 0;
}

int permeval_evaluate(const struct permeval_rules *r, const char *permission,
		      json_t *patterns, json_t *metadata,
		      enum permeval_action *out, json_t **why, struct err *e)
{
	json_t *subj = NULL, *expl = NULL, *v, *item;
	enum permeval_action a, result = PERMEVAL_ALLOW;
	const char *s;
	bool any_ask = false, any_deny = false;
	long m;
	size_t i;
	int rc = 0;

	*out = PERMEVAL_ASK;
	if (why)
		*why = NULL;
	if (!permission || !*permission)
		return err_set_field(e, ERR_INVALID, "permission",
				     "permission must be a non-empty string");
	if (patterns && !json_is_null(patterns)) {
		if (!json_is_array(patterns))
			return err_set_field(e, ERR_INVALID, "patterns",
					     "patterns must be an array of "
					     "strings");
		json_array_foreach(patterns, i, v)
			if (!json_is_string(v))
				return err_set_field(e, ERR_INVALID,
						     "patterns",
						     "patterns[%zu] is not a "
						     "string", i);
	}
	if (metadata && !json_is_null(metadata) && !json_is_object(metadata))
		return err_set_field(e, ERR_INVALID, "metadata",
				     "metadata must be an object");
	rc = subjects(permission, json_is_array(patterns) ? patterns : NULL,
		      json_is_object(metadata) ? metadata : NULL, &subj, e);
	if (rc)
		return rc;
	expl = json_array();
	if (!expl)
		goto nomem;
	json_array_foreach(subj, i, v) {
		s = json_string_value(v);
		m = -1;
		if (strlen(s) > PERMEVAL_SUBJECT_MAX)
			a = PERMEVAL_ASK;
		else
			a = permeval_decide(r, permission, s, &m);
		if (a == PERMEVAL_DENY)
			any_deny = true;
		else if (a == PERMEVAL_ASK)
			any_ask = true;
		/* "O" shares v; "s" copies; "s?" gives null for NULL. */
		item = json_pack("{s:O, s:s, s:s?}", "subject", v, "action",
				 permeval_action_name(a), "rule",
				 m >= 0 ? r->v[m].name : NULL);
		if (!item || json_array_append_new(expl, item))
			goto nomem;
	}
	if (any_deny)
		result = PERMEVAL_DENY;
	else if (any_ask)
		result = PERMEVAL_ASK;
	*out = result;
	if (why) {
		*why = expl;
		expl = NULL;
	}
	goto out;
nomem:
	rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	json_decref(subj);
	json_decref(expl);
	return rc;
}
