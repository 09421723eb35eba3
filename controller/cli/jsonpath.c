/*
 * jsonpath.c - compile and run kubectl-style jsonpath templates (see
 * jsonpath.h).
 *
 * A compiled template is a tree of nodes: literal text, a path (a list of
 * steps), or a range with a path and a body. Running a path keeps a set of
 * current values (a jansson array holding references), applies each step
 * to every value in it and prints what is left.
 */
#include "jsonpath.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define JSONPATH_MAX_DEPTH 16    /* nested ranges */

enum step_type { STEP_FIELD, STEP_INDEX, STEP_ALL };

struct step {
	enum step_type type;
	char *field;             /* owned: STEP_FIELD */
	long index;              /* STEP_INDEX */
};

enum node_type { NODE_TEXT, NODE_PATH, NODE_RANGE };

struct node {
	enum node_type type;
	char *text;              /* owned: NODE_TEXT */
	struct step *steps;      /* owned: NODE_PATH, NODE_RANGE */
	size_t nsteps;
	struct jsonpath *body;   /* owned: NODE_RANGE */
};

struct jsonpath {
	struct node *nodes;
	size_t nnodes;
};

struct scan {
	const char *text, *p;
	int depth;
	struct err *e;
};

static void free_steps(struct step *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(s[i].field);
	free(s);
}

void jsonpath_free(struct jsonpath *jp)
{
	size_t i;

	if (!jp)
		return;
	for (i = 0; i < jp->nnodes; i++) {
		free(jp->nodes[i].text);
		free_steps(jp->nodes[i].steps, jp->nodes[i].nsteps);
		jsonpath_free(jp->nodes[i].body);
	}
	free(jp->nodes);
	free(jp);
}

static int fail_at(struct scan *sc, const char *at, const char *what)
{
	return err_set(sc->e, ERR_INVALID, "jsonpath: %s at position %d", what,
		       (int)(at - sc->text) + 1);
}

static struct node *add_node(struct jsonpath *jp, enum node_type t,
			     struct err *e)
{
	struct node *n = realloc(jp->nodes, (jp->nnodes + 1) * sizeof(*n));

	if (!n) {
		err_set(e, ERR_NOMEM, "out of memory");
		return NULL;
	}
	jp->nodes = n;
	n = &jp->nodes[jp->nnodes++];
	memset(n, 0, sizeof(*n));
	n->type = t;
	return n;
}

static int add_step(struct node *n, enum step_type t, char *field, long index,
		    struct err *e)
{
	struct step *s = realloc(n->steps, (n->nsteps + 1) * sizeof(*s));

	if (!s) {
		free(field);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	n->steps = s;
	s[n->nsteps].type = t;
	s[n->nsteps].field = field;
	s[n->nsteps].index = index;
	n->nsteps++;
	return 0;
}

static void skip_space(struct scan *sc)
{
	while (*sc->p == ' ' || *sc->p == '\t')
		sc->p++;
}

/* A path up to (not including) the closing '}' into n's steps. */
static int parse_path(struct scan *sc, struct node *n)
{
	const char *start;
	char *field;
	int rc;

	skip_space(sc);
	if (*sc->p == '$' || *sc->p == '@')
		sc->p++;
	while (*sc->p && *sc->p != '}' && *sc->p != ' ') {
		start = sc->p;
		if (!strncmp(sc->p, "..", 2))
			return fail_at(sc, start, "recursive descent '..' is not supported");
		if (*sc->p == '.') {
			sc->p++;
			if (*sc->p == '*') {
				sc->p++;
				rc = add_step(n, STEP_ALL, NULL, 0, sc->e);
				if (rc)
					return rc;
				continue;
			}
			start = sc->p;
			while (isalnum((unsigned char)*sc->p) || *sc->p == '_' ||
			       *sc->p == '-')
				sc->p++;
			if (sc->p == start)
				return fail_at(sc, start, "expected a field name");
			field = strndup(start, (size_t)(sc->p - start));
			if (!field)
				return err_set(sc->e, ERR_NOMEM, "out of memory");
			rc = add_step(n, STEP_FIELD, field, 0, sc->e);
			if (rc)
				return rc;
		} else if (*sc->p == '[') {
			sc->p++;
			if (*sc->p == '*' && sc->p[1] == ']') {
				sc->p += 2;
				rc = add_step(n, STEP_ALL, NULL, 0, sc->e);
			} else if (*sc->p == '\'' || *sc->p == '"') {
				char q = *sc->p++;
				const char *end = strchr(sc->p, q);

				if (!end || end[1] != ']')
					return fail_at(sc, start, "unterminated ['key']");
				field = strndup(sc->p, (size_t)(end - sc->p));
				if (!field)
					return err_set(sc->e, ERR_NOMEM, "out of memory");
				sc->p = end + 2;
				rc = add_step(n, STEP_FIELD, field, 0, sc->e);
			} else if (*sc->p == '?') {
				return fail_at(sc, start, "filters '[?(...)]' are not supported");
			} else {
				char *end;
				long v;

				errno = 0;
				v = strtol(sc->p, &end, 10);
				if (end == sc->p || errno)
					return fail_at(sc, sc->p, "expected an index, '*' or a quoted key in '[...]'");
				if (*end == ':')
					return fail_at(sc, start, "slices '[a:b]' are not supported");
				if (*end != ']')
					return fail_at(sc, end, "expected ']'");
				sc->p = end + 1;
				rc = add_step(n, STEP_INDEX, NULL, v, sc->e);
			}
			if (rc)
				return rc;
		} else {
			return fail_at(sc, start, "expected '.field' or '[...]'");
		}
	}
	skip_space(sc);
	if (*sc->p != '}')
		return fail_at(sc, sc->p, *sc->p ? "expected '}'" : "unclosed '{'");
	sc->p++;
	return 0;
}

/* "..." at sc->p (the opening quote) up to the closing '}' as a text node. */
static int parse_literal(struct scan *sc, struct jsonpath *jp)
{
	const char *start = sc->p;
	struct buf b = BUF_INIT;
	struct node *n;
	int rc = 0;

	for (sc->p++; *sc->p && *sc->p != '"'; sc->p++) {
		char c = *sc->p;

		if (c == '\\') {
			c = *++sc->p;
			c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' :
			    c == '"' || c == '\\' ? c : 0;
			if (!c) {
				rc = fail_at(sc, sc->p - 1, "unknown escape in a string literal");
				goto out;
			}
		}
		rc = buf_putc(&b, c);
		if (rc) {
			rc = err_set(sc->e, rc, "out of memory");
			goto out;
		}
	}
	if (*sc->p != '"') {
		rc = fail_at(sc, start, "unterminated string literal");
		goto out;
	}
	sc->p++;
	skip_space(sc);
	if (*sc->p != '}') {
		rc = fail_at(sc, sc->p, "expected '}' after a string literal");
		goto out;
	}
	sc->p++;
	n = add_node(jp, NODE_TEXT, sc->e);
	if (!n) {
		rc = ERR_NOMEM;
		goto out;
	}
	n->text = buf_detach(&b, NULL);
out:
	buf_release(&b);
	return rc;
}

static int parse_template(struct scan *sc, struct jsonpath *jp, bool in_range);

/* Is the expression at sc->p (after '{' and spaces) the word w? */
static bool keyword(struct scan *sc, const char *w)
{
	size_t n = strlen(w);

	return !strncmp(sc->p, w, n) &&
	       (sc->p[n] == ' ' || sc->p[n] == '}' || sc->p[n] == '\t');
}

/* One {...} with sc->p after the '{'. Sets *end for {end}. */
static int parse_expr(struct scan *sc, struct jsonpath *jp, const char *open,
		      bool *end)
{
	struct node *n;
	int rc;

	skip_space(sc);
	if (*sc->p == '"')
		return parse_literal(sc, jp);
	if (keyword(sc, "end")) {
		sc->p += 3;
		skip_space(sc);
		if (*sc->p != '}')
			return fail_at(sc, sc->p, "expected '}' after end");
		sc->p++;
		*end = true;
		return 0;
	}
	if (keyword(sc, "range")) {
		sc->p += 5;
		if (sc->depth >= JSONPATH_MAX_DEPTH)
			return fail_at(sc, open, "ranges nested too deep");
		n = add_node(jp, NODE_RANGE, sc->e);
		if (!n)
			return ERR_NOMEM;
		rc = parse_path(sc, n);
		if (rc)
			return rc;
		n->body = calloc(1, sizeof(*n->body));
		if (!n->body)
			return err_set(sc->e, ERR_NOMEM, "out of memory");
		sc->depth++;
		rc = parse_template(sc, n->body, true);
		sc->depth--;
		if (rc == 1)
			return fail_at(sc, open, "{range} without {end}");
		return rc;
	}
	if (*sc->p == '}')
		return fail_at(sc, open, "empty expression '{}'");
	n = add_node(jp, NODE_PATH, sc->e);
	if (!n)
		return ERR_NOMEM;
	return parse_path(sc, n);
}

/*
 * Text and expressions up to the end of the text (returns 1 there when
 * in_range) or, in a range, up to its {end}.
 */
static int parse_template(struct scan *sc, struct jsonpath *jp, bool in_range)
{
	const char *start, *open;
	struct node *n;
	bool end = false;
	int rc;

	while (*sc->p) {
		start = sc->p;
		while (*sc->p && *sc->p != '{' && *sc->p != '}')
			sc->p++;
		if (*sc->p == '}')
			return fail_at(sc, sc->p, "'}' without '{'");
		if (sc->p > start) {
			n = add_node(jp, NODE_TEXT, sc->e);
			if (!n)
				return ERR_NOMEM;
			n->text = strndup(start, (size_t)(sc->p - start));
			if (!n->text)
				return err_set(sc->e, ERR_NOMEM, "out of memory");
		}
		if (!*sc->p)
			break;
		open = sc->p++;
		rc = parse_expr(sc, jp, open, &end);
		if (rc)
			return rc;
		if (end) {
			if (!in_range)
				return fail_at(sc, open, "{end} without {range}");
			return 0;
		}
	}
	return in_range ? 1 : 0;
}

int jsonpath_compile(const char *tmpl, struct jsonpath **out, struct err *e)
{
	struct scan sc = { tmpl, tmpl, 0, e };
	struct jsonpath *jp = calloc(1, sizeof(*jp));
	int rc;

	*out = NULL;
	if (!jp)
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = parse_template(&sc, jp, false);
	if (rc) {
		jsonpath_free(jp);
		return rc;
	}
	*out = jp;
	return 0;
}

/* Apply one step to every value in cur; the results into next. */
static int apply_step(const struct step *s, json_t *cur, json_t *next)
{
	json_t *v, *m;
	const char *k;
	size_t i, n;
	int rc = 0;

	json_array_foreach(cur, i, v) {
		switch (s->type) {
		case STEP_FIELD:
			m = json_object_get(v, s->field);      /* borrowed */
			if (m)
				rc = json_array_append(next, m);
			break;
		case STEP_INDEX:
			n = json_array_size(v);
			if (s->index < 0 ? (size_t)-s->index > n :
			    (size_t)s->index >= n)
				break;
			rc = json_array_append(next, json_array_get(v,
				s->index < 0 ? n - (size_t)-s->index :
				(size_t)s->index));
			break;
		case STEP_ALL:
			if (json_is_array(v))
				rc = json_array_extend(next, v);
			else if (json_is_object(v))
				json_object_foreach(v, k, m)
					if (!rc)
						rc = json_array_append(next, m);
			break;
		}
		if (rc)
			return ERR_NOMEM;
	}
	return 0;
}

/* The values the path's steps lead to from doc: a new array (caller
 * decrefs), or NULL when out of memory. */
static json_t *eval_path(const struct node *n, json_t *doc)
{
	json_t *cur = json_pack("[O]", doc), *next;
	size_t i;

	for (i = 0; cur && i < n->nsteps; i++) {
		next = json_array();
		if (!next || apply_step(&n->steps[i], cur, next)) {
			json_decref(next);
			json_decref(cur);
			return NULL;
		}
		json_decref(cur);
		cur = next;
	}
	return cur;
}

static int print_value(json_t *v, struct buf *out)
{
	char *s;
	int rc;

	if (json_is_string(v))
		return buf_add(out, json_string_value(v), json_string_length(v));
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s)
		return ERR_NOMEM;
	rc = buf_puts(out, s);
	free(s);
	return rc;
}

int jsonpath_execute(const struct jsonpath *jp, json_t *doc, struct buf *out,
		     struct err *e)
{
	const struct node *n;
	json_t *vals = NULL, *v;
	size_t i, j;
	int rc = 0;

	for (i = 0; !rc && i < jp->nnodes; i++) {
		n = &jp->nodes[i];
		if (n->type == NODE_TEXT) {
			rc = buf_puts(out, n->text);
			if (rc)
				return err_set(e, rc, "output too large");
			continue;
		}
		vals = eval_path(n, doc);
		if (!vals)
			return err_set(e, ERR_NOMEM, "out of memory");
		json_array_foreach(vals, j, v) {
			if (n->type == NODE_RANGE)
				rc = jsonpath_execute(n->body, v, out, e);
			else if ((j && buf_putc(out, ' ')) || print_value(v, out))
				rc = err_set(e, ERR_TOO_LARGE, "output too large");
			if (rc)
				break;
		}
		json_decref(vals);
	}
	return rc;
}
