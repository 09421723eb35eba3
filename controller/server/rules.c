/*
 * rules.c - a collection's access rules applied to one caller: a rule
 * becomes a SQL condition over the records table (through the filter
 * compiler, so rule text and caller data are never pasted into SQL), and a
 * single-record check is "records.id = ? AND (rule)" run on the store's
 * read pool or inside a write transaction.
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
		struct buf *sql, json_t *args, struct err *e)
{
	const char *rule;
	struct err fe = ERR_INIT;
	int rc;

	if ((int)a < 0 || a >= RULE__COUNT)
		return err_set(e, ERR_INTERNAL, "unknown rule action %d", (int)a);
	rule = c->rules[a];
	if (auth && auth->superuser)
		return buf_putc(sql, '1') ? err_set(e, ERR_NOMEM, "out of memory") : 0;
	if (!rule)
		return err_set(e, ERR_FORBIDDEN, RULES_SUPERUSER_ONLY);
	if (!*rule)
		return buf_putc(sql, '1') ? err_set(e, ERR_NOMEM, "out of memory") : 0;
	rc = filter_compile(s, c, rule, auth, sql, args, &fe);
	if (rc == ERR_INVALID)
		return err_set(e, ERR_INTERNAL,
			       "the %s rule of collection '%s' does not compile: %s",
			       action_names[a], c->name, fe.msg);
	if (rc && e)
		*e = fe;
	return rc;
}

/* "records.id = ? AND (rule)" with its binds, the id first. */
static int where_id(const struct schema *s, const struct collection *c,
		    enum rule_action a, const char *id,
		    const struct filter_auth *auth, struct buf *sql,
		    json_t **args, struct err *e)
{
	int rc;

	*args = json_array();
	if (!*args || json_array_append_new(*args, json_string(id)) ||
	    buf_puts(sql, "records.id = ? AND ("))
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = rules_where(s, c, a, auth, sql, *args, e);
	if (rc)
		return rc;
	if (buf_putc(sql, ')'))
		return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
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
	struct buf sql = BUF_INIT;
	struct store_query q;
	json_t *args = NULL;
	int rc;

	record_init(out);
	if (!id || !util_valid_id(id))
		return err_set(e, ERR_NOT_FOUND, "no %s record with that id",
			       c->name);
	if (auth && auth->superuser)
		return store_get(st, c->name, id, out, e);
	rc = where_id(s, c, a, id, auth, &sql, &args, e);
	if (rc)
		goto out;
	memset(&q, 0, sizeof(q));
	q.where = sql.ptr;
	q.args = args;
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
	buf_release(&sql);
	json_decref(args);
	return rc;
}

int rules_txn_check(struct store_txn *t, const struct schema *s,
		    const struct collection *c, enum rule_action a,
		    const char *id, const struct filter_auth *auth,
		    struct err *e)
{
	struct buf sql = BUF_INIT;
	struct store_query q;
	json_t *args = NULL;
	int64_t n = 0;
	int rc;

	if (!id || !util_valid_id(id))
		return 0;
	rc = where_id(s, c, a, id, auth, &sql, &args, e);
	if (rc)
		goto out;
	memset(&q, 0, sizeof(q));
	q.where = sql.ptr;
	q.args = args;
	rc = store_txn_count(t, c->name, &q, &n, e);
	if (!rc)
		rc = n > 0;
out:
	buf_release(&sql);
	json_decref(args);
	return rc;
}
