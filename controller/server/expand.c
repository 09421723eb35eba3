/*
 * expand.c - ?expand= : parse relation paths into a small tree, then walk
 * it for each record, fetching each related record once per request
 * (cached by collection and id) through the target's view rule and
 * inlining its JSON under "expand".
 */
#include <stdio.h>
#include <string.h>

#include "expand.h"
#include "rules.h"
#include "util.h"

/* Add one dotted path (s[0..n)) to tree, at most EXPAND_MAX_DEPTH deep.
 * Paths with an empty segment are ignored. */
static int add_path(json_t *tree, const char *s, size_t n)
{
	char seg[128];
	json_t *node = tree, *child;
	size_t i, start = 0, depth = 0;

	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (!n)
		return 0;
	/* a path with an empty segment is ignored whole */
	if (s[0] == '.' || s[n - 1] == '.' || memmem(s, n, "..", 2))
		return 0;
	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (i == start || i - start >= sizeof(seg))
			return 0;
		if (depth++ == EXPAND_MAX_DEPTH)
			return 0;
		memcpy(seg, s + start, i - start);
		seg[i - start] = '\0';
		child = json_object_get(node, seg);
		if (!child) {
			child = json_object();
			if (!child || json_object_set_new(node, seg, child))
				return ERR_NOMEM;
		}
		node = child;
		start = i + 1;
	}
	return 0;
}

int expand_parse(const char *spec, json_t **tree, struct err *e)
{
	const char *s, *start;
	size_t npaths = 0;
	json_t *t;
	int rc;

	*tree = NULL;
	t = json_object();
	if (!t)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (spec && strlen(spec) > EXPAND_MAX_LEN) {
		json_decref(t);
		return err_set_field(e, ERR_INVALID, "expand",
				     "expand: longer than %d bytes",
				     EXPAND_MAX_LEN);
	}
	for (s = start = spec ? spec : ""; ; s++) {
		if (*s && *s != ',')
			continue;
		if (s > start && ++npaths > EXPAND_MAX_PATHS) {
			json_decref(t);
			return err_set_field(e, ERR_INVALID, "expand",
					     "expand: more than %d paths",
					     EXPAND_MAX_PATHS);
		}
		rc = add_path(t, start, (size_t)(s - start));
		if (rc) {
			json_decref(t);
			return err_set(e, ERR_NOMEM, "out of memory");
		}
		if (!*s)
			break;
		start = s + 1;
	}
	*tree = t;
	return 0;
}

/* The cached [json, data] pair for a related record, or json null when the
 * caller may not see it. Borrowed from the cache. */
static int fetch(struct expand_ctx *x, const struct collection *tc,
		 const char *id, json_t **entry, struct err *e)
{
	char key[96];
	struct record rec;
	json_t *v = NULL, *rendered;
	int rc;

	*entry = NULL;
	if (!x->cache) {
		x->cache = json_object();
		if (!x->cache)
			return err_set(e, ERR_NOMEM, "out of memory");
	}
	snprintf(key, sizeof(key), "%s/%s", tc->name, id);
	v = json_object_get(x->cache, key);
	if (v) {
		*entry = v;
		return 0;
	}
	rc = rules_get(x->store, x->schema, tc, RULE_VIEW, id, x->auth, &rec,
		       e);
	if (rc == ERR_NOT_FOUND || rc == ERR_FORBIDDEN) {
		err_clear(e);
		v = json_null();
	} else if (rc) {
		return rc;
	} else {
		rendered = x->render(tc, &rec, x->render_arg);
		v = rendered ? json_pack("[o, O]", rendered, rec.data) : NULL;
		record_release(&rec);
		if (!v)
			return err_set(e, ERR_NOMEM, "out of memory");
	}
	if (json_object_set_new(x->cache, key, v))
		return err_set(e, ERR_NOMEM, "out of memory");
	*entry = v;
	return 0;
}

int expand_apply(struct expand_ctx *x, const struct collection *c,
		 json_t *data, json_t *obj, const json_t *tree,
		 struct err *e)
{
	const struct collection *tc;
	const struct field *f;
	const char *name, *id;
	json_t *sub, *entry, *child = NULL, *exp = NULL;
	int rc = 0;

	json_object_foreach((json_t *)tree, name, sub) {
		f = collection_field(c, name);
		if (!f || f->type != FT_RELATION)
			continue;
		id = json_string_value(json_object_get(data, name));
		if (!id || !util_valid_id(id))
			continue;
		tc = schema_find(x->schema, f->target);
		if (!tc)
			continue;
		rc = fetch(x, tc, id, &entry, e);
		if (rc)
			goto out;
		if (json_is_null(entry))
			continue;
		child = json_deep_copy(json_array_get(entry, 0));
		if (!child)
			goto nomem;
		if (json_object_size(sub)) {
			rc = expand_apply(x, tc, json_array_get(entry, 1), child,
					  sub, e);
			if (rc)
				goto out;
		}
		if (!exp) {
			exp = json_object();
			if (!exp)
				goto nomem;
		}
		rc = json_object_set_new(exp, name, child);   /* stolen */
		child = NULL;
		if (rc)
			goto nomem;
	}
	if (exp) {
		rc = json_object_set_new(obj, "expand", exp);   /* stolen */
		exp = NULL;
		if (rc)
			goto nomem;
	}
	goto out;
nomem:
	rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	json_decref(child);
	json_decref(exp);
	return rc;
}

void expand_release(struct expand_ctx *x)
{
	if (!x)
		return;
	json_decref(x->cache);
	x->cache = NULL;
}
