/*
 * rules.c - a collection's access rules applied to one caller: a rule
 * becomes a store query condition (through the filter compiler, so rule
 * text and caller data are never pasted into a query), and a
 * single-record check is "id = X and the rule" run on the store's read
 * pool or inside a write transaction.
 */
#include <string.h>

#include "rules.h"
#include "util.h"

static const char *const action_names[RULE__COUNT] = {
	[RULE_LIST] = "list",
	[RULE_VIEW] = "view",
	[RULE_CREATE] = "create",
	[RULE_UPDATE] = "update",
	[RULE_DELETE] = "delete",
};

int rules_where(const struct schema *s, const struct collection *c,
		enum rule_action a, const struct filter_auth *auth,
		struct query_pred **out, struct err *e)
{
	const char *rule;
	struct err fe = ERR_INIT;
	int rc;

	*out = NULL;
	if ((int)a < 0 || a >= RULE__COUNT)
		return err_set(e, ERR_INTERNAL, "unknown rule action %d", (int)a);
	rule = c->rules[a];
	if (!(auth && auth->superuser) && !rule)
		return err_set(e, ERR_FORBIDDEN, RULES_SUPERUSER_ONLY);
	if ((auth && auth->superuser) || !*rule) {
		*out = query_pred_new(QUERY_TRUE);
		return *out ? 0 : err_set(e, ERR_NOMEM, "out of memory");
	}
	rc = filter_compile(s, c, rule, auth, out, &fe);
	if (rc == ERR_INVALID)
		return err_set(e, ERR_INTERNAL,
			       "the %s rule of collection '%s' does not compile: %s",
			       action_names[a], c->name, fe.msg);
	if (rc && e)
		*e = fe;
	return rc;
}

/* "records.id = id" and the rule, as one tree (caller frees *out). */
static int where_id(const struct schema *s, const struct collection *c,
		    enum rule_action a, const char *id,
		    const struct filter_auth *auth, struct query_pred **out,
		    struct err *e)
{
	struct query_pred *rule = NULL;
	int rc;

	rc = rules_where(s, c, a, auth, &rule, e);
	if (rc)
		return rc;
	*out = query_and(query_cmp(QUERY_EQ, query_column("id"),
				   query_literal(json_string(id))), rule);
	return *out ? 0 : err_set(e, ERR_NOMEM, "out of memory");
}

/* store_list callback: take a copy of the one record found. */
static int copy_one(const struct record *r, void *arg)
{
	struct record *out = arg;

	*out = *r;
	out->name = r->name ? strdup(r->name) : NULL;
	out->data = json_incref(r->data);
	out->labels = json_incref(r->labels);
	out->status = json_incref(r->status);
	if (r->name && !out->name) {
		record_release(out);
		return ERR_NOMEM;
	}
	return 1;   /* stop: there is at most one */
}

int rules_get(struct store *st, const struct schema *s,
	      const struct collection *c, enum rule_action a, const char *id,
	      const struct filter_auth *auth, struct record *out,
	      struct err *e)
{
	struct query_pred *where = NULL;
	struct store_query q;
	int rc;

	record_init(out);
	if (!id || !util_valid_id(id))
		return err_set(e, ERR_NOT_FOUND, "no %s record with that id",
			       c->name);
	if (auth && auth->superuser)
		return store_get(st, c->name, id, out, e);
	rc = where_id(s, c, a, id, auth, &where, e);
	if (rc)
		goto out;
	memset(&q, 0, sizeof(q));
	q.where = where;
	q.limit = 1;
	rc = store_list(st, c->name, &q, copy_one, out, e);
	if (rc == ERR_NOMEM) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if (rc < 0)
		goto out;
	rc = rc == 1 ? 0 : err_set(e, ERR_NOT_FOUND,
				   "no %s record with id '%s'", c->name, id);
out:
	if (rc)
		record_release(out);
	query_pred_free(where);
	return rc;
}

int rules_txn_check(struct store_txn *t, const struct schema *s,
		    const struct collection *c, enum rule_action a,
		    const char *id, const struct filter_auth *auth,
		    struct err *e)
{
	struct query_pred *where = NULL;
	struct store_query q;
	int64_t n = 0;
	int rc;

	if (!id || !util_valid_id(id))
		return 0;
	rc = where_id(s, c, a, id, auth, &where, e);
	if (rc)
		return rc;
	memset(&q, 0, sizeof(q));
	q.where = where;
	rc = store_txn_count(t, c->name, &q, &n, e);
	if (!rc)
		rc = n > 0;
	query_pred_free(where);
	return rc;
}

bool rules_owner_field(const struct collection *c, const struct field *f)
{
	size_t a;

	if (!f || f->type != FT_RELATION)
		return false;
	for (a = 0; a < RULE__COUNT; a++)
		if (filter_compares_auth_id(c->rules[a], f->name))
			return true;
	return false;
}

bool rules_has_owner(const struct collection *c)
{
	size_t i;

	for (i = 0; i < c->nfields; i++)
		if (rules_owner_field(c, &c->fields[i]))
			return true;
	return false;
}

/* Whether the caller may view record id of collection name: 1, 0, or a
 * negative ERR_*. A NULL view rule hides every record from it. */
static int may_view(struct store_txn *t, const struct schema *s,
		    const char *name, const char *id,
		    const struct filter_auth *auth, struct err *e)
{
	const struct collection *tc = schema_find(s, name);
	int ok;

	if (!tc)
		return err_set(e, ERR_INTERNAL, "no collection '%s'", name);
	if (!tc->rules[RULE_VIEW])
		return 0;
	ok = rules_txn_check(t, s, tc, RULE_VIEW, id, auth, e);
	return ok == ERR_FORBIDDEN ? 0 : ok;
}

int rules_check_write(struct store_txn *t, const struct schema *s,
		      const struct collection *c, const char *id,
		      const json_t *data, const json_t *old,
		      const struct filter_auth *auth, struct err *e)
{
	size_t i;
	int ok;

	if (auth && auth->superuser)
		return 0;
	for (i = 0; i < c->nfields; i++) {
		const struct field *f = &c->fields[i];
		json_t *v = json_object_get(data, f->name);
		const char *target;

		if (f->type != FT_RELATION || !v)
			continue;
		if (old && json_equal(v, json_object_get(old, f->name)))
			continue;       /* unchanged: nothing handed over */
		if (old && rules_owner_field(c, f))
			return err_set_field(e, ERR_FORBIDDEN, f->name,
					     "field '%s' of %s records can be "
					     "changed only by a superuser",
					     f->name, c->name);
		if (!json_is_string(v) || !json_string_length(v))
			continue;       /* cleared, or the store refuses it */
		target = json_string_value(v);
		if (id && !strcmp(f->target, c->name) && !strcmp(target, id))
			continue;       /* points at itself */
		ok = may_view(t, s, f->target, target, auth, e);
		if (ok < 0)
			return ok;
		if (!ok)
			return err_set_field(e, ERR_INVALID, f->name,
					     "no %s record with id '%.64s'",
					     f->target, target);
	}
	return 0;
}

bool rules_read_clock(const struct schema *s)
{
	size_t i, k;

	for (i = 0; i < s->ncollections; i++)
		for (k = 0; k < RULE__COUNT; k++)
			if (s->collections[i].rules[k] &&
			    strstr(s->collections[i].rules[k], "@now"))
				return true;
	return false;
}
