/*
 * selector.c - parse and match kubectl label selectors (see selector.h).
 *
 * The parser is a small hand-written scanner over the grammar of
 * k8s.io/apimachinery/pkg/labels: requirements separated by commas,
 * whitespace allowed around tokens. The parsed form is a flat array of
 * requirements, each with its key and value set, matched in order.
 */
#include "selector.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define SELECTOR_MAX_TEXT 4096

enum sel_op { SEL_EQ, SEL_NE, SEL_IN, SEL_NOTIN, SEL_EXISTS, SEL_ABSENT };

struct requirement {
	enum sel_op op;
	char *key;              /* owned */
	char **values;          /* owned; EQ/NE have one, IN/NOTIN one or more */
	size_t nvalues;
};

struct selector {
	struct requirement *reqs;
	size_t nreqs;
};

struct scan {
	const char *text, *p;
	struct err *e;
};

void selector_free(struct selector *s)
{
	size_t i, j;

	if (!s)
		return;
	for (i = 0; i < s->nreqs; i++) {
		free(s->reqs[i].key);
		for (j = 0; j < s->reqs[i].nvalues; j++)
			free(s->reqs[i].values[j]);
		free(s->reqs[i].values);
	}
	free(s->reqs);
	free(s);
}

static int fail(struct scan *sc, const char *what)
{
	return err_set(sc->e, ERR_INVALID,
		       "label selector: %s at position %d", what,
		       (int)(sc->p - sc->text) + 1);
}

static void skip_space(struct scan *sc)
{
	while (*sc->p == ' ' || *sc->p == '\t')
		sc->p++;
}

static bool name_char(char c, bool key)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' ||
	       c == '.' || (key && c == '/');
}

/* A key or value at sc->p into *out (malloc'd; "" allowed for values). */
static int word(struct scan *sc, bool key, char **out)
{
	const char *start;
	size_t n;

	skip_space(sc);
	start = sc->p;
	while (name_char(*sc->p, key))
		sc->p++;
	n = (size_t)(sc->p - start);
	if (key && n == 0)
		return fail(sc, "expected a label key");
	if (key && (memchr(start, '/', n) != memrchr(start, '/', n) ||
		    start[0] == '/' || start[n - 1] == '/')) {
		sc->p = start;
		return fail(sc, "a label key has at most one '/' inside");
	}
	*out = strndup(start, n);
	if (!*out)
		return err_set(sc->e, ERR_NOMEM, "out of memory");
	return 0;
}

static int add_value(struct requirement *r, char *v, struct err *e)
{
	char **nv = realloc(r->values, (r->nvalues + 1) * sizeof(*nv));

	if (!nv) {
		free(v);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	r->values = nv;
	r->values[r->nvalues++] = v;
	return 0;
}

/* "(a, b, c)" after in / notin. */
static int value_set(struct scan *sc, struct requirement *r)
{
	char *v = NULL;
	int rc;

	skip_space(sc);
	if (*sc->p != '(')
		return fail(sc, "expected '(' after in/notin");
	sc->p++;
	for (;;) {
		rc = word(sc, false, &v);
		if (rc)
			return rc;
		rc = add_value(r, v, sc->e);
		if (rc)
			return rc;
		skip_space(sc);
		if (*sc->p == ')') {
			sc->p++;
			return 0;
		}
		if (*sc->p != ',')
			return fail(sc, "expected ',' or ')' in a value set");
		sc->p++;
	}
}

/* Is the word at sc->p the operator word w, followed by a space or '('? */
static bool op_word(struct scan *sc, const char *w)
{
	size_t n = strlen(w);

	if (strncmp(sc->p, w, n) ||
	    (sc->p[n] != ' ' && sc->p[n] != '\t' && sc->p[n] != '('))
		return false;
	sc->p += n;
	return true;
}

static int requirement(struct scan *sc, struct requirement *r)
{
	char *v = NULL;
	int rc;

	skip_space(sc);
	if (*sc->p == '!') {
		sc->p++;
		r->op = SEL_ABSENT;
		return word(sc, true, &r->key);
	}
	rc = word(sc, true, &r->key);
	if (rc)
		return rc;
	skip_space(sc);
	if (*sc->p == ',' || !*sc->p) {
		r->op = SEL_EXISTS;
		return 0;
	}
	if (!strncmp(sc->p, "==", 2) || !strncmp(sc->p, "!=", 2)) {
		r->op = *sc->p == '!' ? SEL_NE : SEL_EQ;
		sc->p += 2;
	} else if (*sc->p == '=') {
		r->op = SEL_EQ;
		sc->p++;
	} else if (op_word(sc, "in")) {
		r->op = SEL_IN;
		return value_set(sc, r);
	} else if (op_word(sc, "notin")) {
		r->op = SEL_NOTIN;
		return value_set(sc, r);
	} else {
		return fail(sc, "expected '=', '!=', 'in', 'notin' or ','");
	}
	rc = word(sc, false, &v);
	if (!rc)
		rc = add_value(r, v, sc->e);
	return rc;
}

int selector_parse(const char *text, struct selector **out, struct err *e)
{
	struct scan sc = { text, text, e };
	struct selector *s = NULL;
	struct requirement *nr;
	int rc = 0;

	*out = NULL;
	if (strlen(text) > SELECTOR_MAX_TEXT)
		return err_set(e, ERR_INVALID,
			       "label selector: longer than %d bytes",
			       SELECTOR_MAX_TEXT);
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ERR_NOMEM, "out of memory");
	skip_space(&sc);
	while (*sc.p) {
		nr = realloc(s->reqs, (s->nreqs + 1) * sizeof(*nr));
		if (!nr) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		s->reqs = nr;
		memset(&s->reqs[s->nreqs], 0, sizeof(*nr));
		s->nreqs++;
		rc = requirement(&sc, &s->reqs[s->nreqs - 1]);
		if (rc)
			goto out;
		skip_space(&sc);
		if (!*sc.p)
			break;
		if (*sc.p != ',') {
			rc = fail(&sc, "expected ',' between requirements");
			goto out;
		}
		sc.p++;
		skip_space(&sc);
		if (!*sc.p) {
			rc = fail(&sc, "expected a requirement after ','");
			goto out;
		}
	}
out:
	if (rc)
		selector_free(s);
	else
		*out = s;
	return rc;
}

static bool in_values(const struct requirement *r, const char *v)
{
	size_t i;

	for (i = 0; i < r->nvalues; i++)
		if (!strcmp(r->values[i], v))
			return true;
	return false;
}

bool selector_match(const struct selector *s, json_t *labels)
{
	const struct requirement *r;
	json_t *jv;
	const char *v;
	size_t i;

	if (!s)
		return true;
	for (i = 0; i < s->nreqs; i++) {
		r = &s->reqs[i];
		jv = json_is_object(labels) ? json_object_get(labels, r->key) :
		     NULL;                                 /* borrowed */
		v = json_is_string(jv) ? json_string_value(jv) : NULL;
		switch (r->op) {
		case SEL_EQ:
		case SEL_IN:
			if (!v || !in_values(r, v))
				return false;
			break;
		case SEL_NE:
		case SEL_NOTIN:
			if (v && in_values(r, v))
				return false;
			break;
		case SEL_EXISTS:
			if (!v)
				return false;
			break;
		case SEL_ABSENT:
			if (v)
				return false;
			break;
		}
	}
	return true;
}
