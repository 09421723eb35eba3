/*
 * pick.c - the ?fields= projection: parse "a,b.c:excerpt(10,true),*" into a
 * list of dotted paths with optional modifiers, then walk a JSON value
 * keeping only what the paths name, level by level (a path "b.c" keeps key
 * "b" and continues into it with "c").
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pick.h"

struct modifier {
	bool excerpt;
	long max;
	bool ellipsis;
};

struct pfield {
	char *path;                /* owned, trimmed, non-empty */
	struct modifier mod;
};

struct pick {
	struct pfield f[PICK_MAX_FIELDS];
	size_t n;
};

/* One level of the walk: a path suffix and the modifier it carries. */
struct lfield {
	const char *path;
	const struct modifier *mod;
};

static int invalid(struct err *e, const char *what, const char *s, size_t n)
{
	return err_set_field(e, ERR_INVALID, "fields", "fields: %s in '%.*s'",
			     what, (int)(n > 64 ? 64 : n), s);
}

static void trim(const char **s, size_t *n)
{
	while (*n && isspace((unsigned char)**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

static bool truthy(const char *s, size_t n)
{
	static const char *const yes[] = { "1", "t", "T", "true", "TRUE",
					   "True" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (strlen(yes[i]) == n && !memcmp(yes[i], s, n))
			return true;
	return false;
}

/* Parse "excerpt(200, true)" (s[0..n), already trimmed) into m. */
static int parse_modifier(const char *s, size_t n, struct modifier *m,
			  struct err *e)
{
	const char *open = memchr(s, '(', n), *a, *comma;
	char num[24];
	size_t nlen, alen, blen;
	char *end;

	if (!open || s[n - 1] != ')')
		return invalid(e, "a modifier needs arguments", s, n);
	nlen = (size_t)(open - s);
	trim(&s, &nlen);
	if (nlen != 7 || memcmp(s, "excerpt", 7))
		return invalid(e, "unknown modifier (only excerpt is known)", s,
			       n);
	a = open + 1;
	alen = (size_t)(s + n - 1 - a);
	comma = memchr(a, ',', alen);
	blen = comma ? (size_t)(comma - a) : alen;
	{
		const char *x = a;
		size_t xl = blen;

		trim(&x, &xl);
		if (!xl || xl >= sizeof(num))
			return invalid(e, "excerpt needs a max length", s, n);
		memcpy(num, x, xl);
		num[xl] = '\0';
	}
	errno = 0;
	m->max = strtol(num, &end, 10);
	if (errno || *end || m->max <= 0 || m->max > 1000000)
		return invalid(e, "excerpt max must be a positive integer", s, n);
	m->excerpt = true;
	m->ellipsis = false;
	if (comma) {
		const char *y = comma + 1;
		size_t yl = (size_t)(a + alen - y);

		trim(&y, &yl);
		if (memchr(y, ',', yl))
			return invalid(e, "excerpt takes at most two arguments",
				       s, n);
		m->ellipsis = truthy(y, yl);
	}
	return 0;
}

static int add_field(struct pick *p, const char *s, size_t n, struct err *e)
{
	const char *colon;
	struct pfield *f;
	size_t plen;
	int rc;

	trim(&s, &n);
	if (!n)
		return 0;
	if (p->n >= PICK_MAX_FIELDS)
		return err_set_field(e, ERR_INVALID, "fields",
				     "fields: more than %d entries",
				     PICK_MAX_FIELDS);
	f = &p->f[p->n];
	memset(f, 0, sizeof(*f));
	colon = memchr(s, ':', n);
	plen = colon ? (size_t)(colon - s) : n;
	if (colon) {
		const char *ms = colon + 1;
		size_t ml = n - plen - 1;

		trim(&ms, &ml);
		if (!ml)
			return invalid(e, "empty modifier", s, n);
		rc = parse_modifier(ms, ml, &f->mod, e);
		if (rc)
			return rc;
	}
	trim(&s, &plen);
	if (!plen)
		return invalid(e, "empty field name", s, n);
	f->path = strndup(s, plen);
	if (!f->path)
		return err_set(e, ERR_NOMEM, "out of memory");
	p->n++;
	return 0;
}

int pick_parse(const char *spec, struct pick **out, struct err *e)
{
	struct pick *p = NULL;
	const char *s, *start;
	int depth = 0, rc = 0;
	size_t len;

	*out = NULL;
	if (!spec)
		return 0;
	len = strlen(spec);
	if (len > PICK_MAX_LEN)
		return err_set_field(e, ERR_INVALID, "fields",
				     "fields: longer than %d bytes",
				     PICK_MAX_LEN);
	p = calloc(1, sizeof(*p));
	if (!p)
		return err_set(e, ERR_NOMEM, "out of memory");
	/* Split on commas outside parentheses (modifier arguments). */
	for (s = start = spec;; s++) {
		if (*s == '(') {
			depth++;
		} else if (*s == ')') {
			if (--depth < 0) {
				rc = invalid(e, "unbalanced ')'", spec, len);
				goto out;
			}
		} else if ((*s == ',' && depth == 0) || !*s) {
			if (!*s && depth) {
				rc = invalid(e, "unbalanced '('", spec, len);
				goto out;
			}
			rc = add_field(p, start, (size_t)(s - start), e);
			if (rc)
				goto out;
			start = s + 1;
			if (!*s)
				break;
		}
	}
	if (p->n) {
		*out = p;
		p = NULL;
	}
out:
	pick_free(p);
	return rc;
}

void pick_free(struct pick *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->n; i++)
		free(p->f[i].path);
	free(p);
}

/* ---- excerpt ------------------------------------------------------------ */

/* Whitespace collapsed and trimmed, cut to at most max bytes on a UTF-8
 * character boundary, "..." added when cut and asked for. */
static json_t *excerpt(const char *s, const struct modifier *m)
{
	struct buf b = BUF_INIT;
	bool space = true;     /* drop leading whitespace */
	json_t *v = NULL;
	size_t cut;

	for (; *s && b.len <= (size_t)m->max + 4; s++) {
		if (isspace((unsigned char)*s)) {
			if (!space && buf_putc(&b, ' '))
				goto out;
			space = true;
			continue;
		}
		space = false;
		if (buf_putc(&b, *s))
			goto out;
	}
	while (b.len && b.ptr[b.len - 1] == ' ')
		b.ptr[--b.len] = '\0';
	if (b.len > (size_t)m->max || *s) {
		cut = b.len < (size_t)m->max ? b.len : (size_t)m->max;
		while (cut && ((unsigned char)b.ptr[cut] & 0xC0) == 0x80)
			cut--;
		while (cut && b.ptr[cut - 1] == ' ')
			cut--;
		b.len = cut;
		b.ptr[cut] = '\0';
		if (m->ellipsis && buf_puts(&b, "..."))
			goto out;
	}
	v = json_stringn(b.ptr, b.len);
out:
	buf_release(&b);
	return v;
}

static int modify(json_t *obj, const char *key, const struct modifier *m)
{
	json_t *v = json_object_get(obj, key), *nv;

	if (!m || !m->excerpt || !json_is_string(v))
		return 0;   /* like PocketBase: non-strings are left alone */
	nv = excerpt(json_string_value(v), m);
	if (!nv)
		return ERR_NOMEM;
	return json_object_set_new(obj, key, nv) ? ERR_NOMEM : 0;
}

/* ---- the walk ------------------------------------------------------------ */

static int pick_level(json_t *value, const struct lfield *fs, size_t n);

/* Does path name key k itself ("k") or something under it ("k.x")? Then
 * *rest is what follows ("" or "x"). */
static bool under(const char *path, const char *k, size_t klen,
		  const char **rest)
{
	if (strncmp(path, k, klen))
		return false;
	if (path[klen] == '\0') {
		*rest = path + klen;
		return true;
	}
	if (path[klen] == '.') {
		*rest = path + klen + 1;
		return true;
	}
	return false;
}

static int pick_object(json_t *obj, const struct lfield *fs, size_t n)
{
	struct lfield sub[PICK_MAX_FIELDS];
	const struct modifier *star = NULL;
	bool have_star = false, whole;
	const char *k, *rest;
	json_t *v, *drop;
	void *tmp;
	size_t i, ns, klen;
	int rc = 0;

	for (i = 0; i < n; i++)
		if (!strcmp(fs[i].path, "*")) {
			have_star = true;
			star = fs[i].mod;
		}
	drop = json_array();
	if (!drop)
		return ERR_NOMEM;
	json_object_foreach_safe(obj, tmp, k, v) {
		klen = strlen(k);
		ns = 0;
		whole = false;
		for (i = 0; i < n && !whole; i++) {
			if (!strcmp(fs[i].path, "*") ||
			    !under(fs[i].path, k, klen, &rest))
				continue;
			if (!*rest) {
				whole = true;
				rc = modify(obj, k, fs[i].mod);
			} else {
				sub[ns].path = rest;
				sub[ns].mod = fs[i].mod;
				ns++;
			}
		}
		if (rc)
			goto out;
		if (whole)
			continue;
		if (ns) {
			rc = pick_level(v, sub, ns);
			if (rc)
				goto out;
			continue;
		}
		if (have_star) {
			rc = modify(obj, k, star);
			if (rc)
				goto out;
			continue;
		}
		if (json_array_append_new(drop, json_string(k))) {
			rc = ERR_NOMEM;
			goto out;
		}
	}
	json_array_foreach(drop, i, v)
		json_object_del(obj, json_string_value(v));
out:
	json_decref(drop);
	return rc;
}

static int pick_level(json_t *value, const struct lfield *fs, size_t n)
{
	json_t *el;
	size_t i;
	int rc;

	if (json_is_object(value))
		return pick_object(value, fs, n);
	if (json_is_array(value)) {
		json_array_foreach(value, i, el) {
			if (!json_is_object(el))
				continue;
			rc = pick_object(el, fs, n);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int pick_apply(const struct pick *p, json_t *value)
{
	struct lfield fs[PICK_MAX_FIELDS];
	size_t i;

	if (!p || !p->n)
		return 0;
	for (i = 0; i < p->n; i++) {
		fs[i].path = p->f[i].path;
		fs[i].mod = p->f[i].mod.excerpt ? &p->f[i].mod : NULL;
	}
	return pick_level(value, fs, p->n);
}
