/*
 * query_sql.c - a store query (query.h) written as SQLite SQL (see
 * query_sql.h): the only place the store's SQL for a filter or a sort is
 * spelled. Comparisons get PocketBase's null/empty rules, contains becomes
 * LIKE with escapes, relation hops become correlated subqueries, and long
 * AND / OR lists are written as balanced trees so that every accepted
 * filter stays within SQLite's expression depth.
 */
#include "query_sql.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- SQL output with a sticky error -------------------------------------- */

/*
 * SQL text plus its binds. Every append is a no-op once rc is set, so a
 * whole fragment can be written and checked once.
 */
struct sqlout {
	struct buf sql;
	json_t *args;
	int rc;
	const char *bad;         /* the name that set rc = ERR_INVALID */
};

static void so_init(struct sqlout *o)
{
	buf_init(&o->sql, 0);
	o->args = json_array();
	o->rc = o->args ? 0 : ERR_NOMEM;
	o->bad = NULL;
}

static void so_release(struct sqlout *o)
{
	buf_release(&o->sql);
	json_decref(o->args);
	o->args = NULL;
}

static void so_puts(struct sqlout *o, const char *s)
{
	if (!o->rc)
		o->rc = buf_puts(&o->sql, s);
}

static void so_printf(struct sqlout *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void so_printf(struct sqlout *o, const char *fmt, ...)
{
	va_list ap;

	if (o->rc)
		return;
	va_start(ap, fmt);
	o->rc = buf_vprintf(&o->sql, fmt, ap);
	va_end(ap);
}

/* Append "?" and bind v. Steals v (also on error). */
static void so_bind_new(struct sqlout *o, json_t *v)
{
	if (!v && !o->rc)
		o->rc = ERR_NOMEM;
	if (o->rc) {
		json_decref(v);
		return;
	}
	o->rc = buf_putc(&o->sql, '?');
	if (!o->rc && json_array_append_new(o->args, v) < 0)
		o->rc = ERR_NOMEM;
	else if (o->rc)
		json_decref(v);
}

/* Append another fragment with its binds. */
static void so_add(struct sqlout *o, const struct sqlout *from)
{
	if (!o->rc && from->rc) {
		o->rc = from->rc;
		o->bad = from->bad;
	}
	if (!o->rc)
		o->rc = buf_add(&o->sql, from->sql.ptr, from->sql.len);
	if (!o->rc && json_array_extend(o->args, from->args) < 0)
		o->rc = ERR_NOMEM;
}

static bool is_word(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_';
}

/* A name we are willing to paste into SQL text: [A-Za-z_][A-Za-z0-9_]*.
 * Schema names are trusted, but checking costs nothing and keeps the
 * promise "no quote ever reaches the SQL text" local to this file. */
static bool plain_name(const char *s)
{
	size_t i;

	if (!s || !is_word(s[0]) || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (i = 1; s[i]; i++)
		if (!is_word(s[i]))
			return false;
	return true;
}

/* Fail o with ERR_INVALID unless name is plain (and, for a column, one the
 * records table has). */
static bool so_name(struct sqlout *o, const char *name, bool column)
{
	static const char *const columns[] = { "id", "name", "created",
					       "updated" };
	bool ok = plain_name(name);
	size_t i;

	if (ok && column) {
		ok = false;
		for (i = 0; i < sizeof(columns) / sizeof(columns[0]); i++)
			ok |= !strcmp(name, columns[i]);
	}
	if (!ok && !o->rc) {
		o->rc = ERR_INVALID;
		o->bad = name;
	}
	return ok && !o->rc;
}

/* Append "json_extract(<tab>.data, '$.<field>')" for a plain name. */
static void so_extract(struct sqlout *o, const char *tab, const char *field)
{
	if (so_name(o, field, false))
		so_printf(o, "json_extract(%s.data, '$.%s')", tab, field);
}

/* Bind '$.<field>.<key>[<n>]...' for a path into a json field: the keys
 * are user text, so they travel as a parameter, not as SQL. */
static void so_json_path(struct sqlout *o, const char *tab, const char *field,
			 const json_t *keys)
{
	struct buf path = BUF_INIT;
	json_t *kv;
	size_t i;
	int rc;

	if (!so_name(o, field, false))
		return;
	rc = buf_printf(&path, "$.%s", field);
	json_array_foreach(keys, i, kv) {
		const char *key = json_string_value(kv), *k = key;

		if (rc)
			break;
		if (!key) {
			rc = ERR_INVALID;
			break;
		}
		while (*k >= '0' && *k <= '9')
			k++;
		rc = *k ? buf_printf(&path, ".%s", key)
		       : buf_printf(&path, "[%s]", key);
	}
	if (!o->rc && rc) {
		o->rc = rc;
		o->bad = field;
	}
	so_printf(o, "json_extract(%s.data, ", tab);
	so_bind_new(o, rc ? NULL : json_string(path.ptr));
	so_puts(o, ")");
	buf_release(&path);
}

/* ---- values -------------------------------------------------------------- */

struct render {
	int nalias;              /* r1, r2, ... for relation subqueries */
};

/* One rendered operand: a bound value, or a SQL expression over rows. */
struct term {
	json_t *value;           /* owned; NULL for an expression */
	struct sqlout x;         /* the expression when value is NULL */
};

static bool term_empty(const struct term *t)
{
	return t->value && (json_is_null(t->value) ||
			    (json_is_string(t->value) &&
			     json_string_length(t->value) == 0));
}

/* A bound value other than null and "": PocketBase compares it directly. */
static bool term_known(const struct term *t)
{
	return t->value && !term_empty(t);
}

static void so_term(struct sqlout *o, const struct term *t)
{
	if (t->value)
		so_bind_new(o, json_incref(t->value));
	else
		so_add(o, &t->x);
}

/* The value of v read from the row aliased tab, after its hops from
 * hop on, each a correlated scalar subquery with an alias of its own. */
static void val_at(struct render *rd, const struct query_val *v, size_t hop,
		   const char *tab, struct sqlout *o)
{
	const struct query_hop *h = &v->hops[hop];
	char alias[16];

	if (hop == v->nhops) {
		if (v->kind == QUERY_COLUMN) {
			if (so_name(o, v->name, true))
				so_printf(o, "%s.%s", tab, v->name);
		} else if (v->kind == QUERY_JSON_PATH) {
			so_json_path(o, tab, v->name, v->keys);
		} else if (v->zero) {
			/* PocketBase's columns default to false / 0. */
			so_puts(o, "COALESCE(");
			so_extract(o, tab, v->name);
			so_puts(o, ", 0)");
		} else {
			so_extract(o, tab, v->name);
		}
		return;
	}
	if (!so_name(o, h->target, false))
		return;
	snprintf(alias, sizeof(alias), "r%d", ++rd->nalias);
	so_puts(o, "(SELECT ");
	val_at(rd, v, hop + 1, alias, o);
	so_printf(o, " FROM records %s WHERE %s.collection = '%s' AND %s.id = ",
		  alias, alias, h->target, alias);
	so_extract(o, tab, h->field);
	so_puts(o, ")");
}

/* Render v into t: literals as a bound value (true/false as 1/0), the
 * rest as SQL. Release t with term_release(). */
static int term_of(struct render *rd, const struct query_val *v,
		   struct term *t)
{
	memset(t, 0, sizeof(*t));
	if (v->kind == QUERY_LITERAL) {
		t->value = json_is_boolean(v->literal) ?
			   json_integer(json_is_true(v->literal)) :
			   json_incref(v->literal);
		return t->value ? 0 : ERR_NOMEM;
	}
	if (v->nhops > QUERY_MAX_HOPS)
		return ERR_INVALID;
	so_init(&t->x);
	val_at(rd, v, 0, "records", &t->x);
	return t->x.rc;
}

static void term_release(struct term *t)
{
	if (t->value)
		json_decref(t->value);
	else
		so_release(&t->x);
}

/* ---- comparisons ----------------------------------------------------------- */

/* The LIKE pattern for a bound value: as is when it already holds an
 * unescaped '%', otherwise '%' + value with '%' and '_' escaped + '%'.
 * Caller owns the result; NULL on allocation failure. */
static json_t *like_pattern(const json_t *v)
{
	struct buf b = BUF_INIT;
	char num[64];
	const char *s = "";
	size_t n = 0, i;
	bool wild = false;
	json_t *r = NULL;
	int rc = 0;

	if (json_is_string(v)) {
		s = json_string_value(v);
		n = json_string_length(v);
	} else if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		s = num;
		n = strlen(num);
	} else if (json_is_real(v)) {
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		s = num;
		n = strlen(num);
	}
	for (i = 0; i < n && !wild; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '%')
			wild = true;
	}
	if (wild)
		return json_stringn(s, n);
	rc = buf_putc(&b, '%');
	for (i = 0; !rc && i < n; i++) {
		if (s[i] == '\\' && i + 1 < n) {
			/* an escape the user wrote: keep the pair */
			rc = buf_add(&b, s + i, 2);
			i++;
		} else if (s[i] == '\\' || s[i] == '%' || s[i] == '_') {
			rc = buf_putc(&b, '\\');
			if (!rc)
				rc = buf_putc(&b, s[i]);
		} else {
			rc = buf_putc(&b, s[i]);
		}
	}
	if (!rc)
		rc = buf_putc(&b, '%');
	if (!rc)
		r = json_stringn(b.ptr, b.len);
	buf_release(&b);
	return r;
}

/* PocketBase's = / != : null, missing and "" are all equal, and != holds
 * for a null stored value. */
static void emit_equal(struct sqlout *o, bool eq, const struct term *l,
		       const struct term *r)
{
	const char *op = eq ? " = " : " IS NOT ";
	bool le = term_empty(l), re = term_empty(r);

	if (le && re) {
		so_puts(o, eq ? "'' = ''" : "'' IS NOT ''");
	} else if (term_known(l) || term_known(r)) {
		if (le)
			so_puts(o, "''");
		else
			so_term(o, l);
		so_puts(o, op);
		if (re)
			so_puts(o, "''");
		else
			so_term(o, r);
	} else if (le || re) {
		const struct term *x = le ? r : l;

		so_puts(o, "(");
		so_term(o, x);
		so_puts(o, op);
		so_puts(o, eq ? "'' OR " : "'' AND ");
		so_term(o, x);
		so_puts(o, eq ? " IS NULL)" : " IS NOT NULL)");
	} else {
		so_puts(o, "COALESCE(");
		so_term(o, l);
		so_puts(o, ", '')");
		so_puts(o, op);
		so_puts(o, "COALESCE(");
		so_term(o, r);
		so_puts(o, ", '')");
	}
}

static void emit_like(struct sqlout *o, bool neg, const struct term *l,
		      const struct term *r)
{
	so_term(o, l);
	so_puts(o, neg ? " NOT LIKE " : " LIKE ");
	if (r->value) {
		so_bind_new(o, like_pattern(r->value));
	} else {
		so_puts(o, "('%' || ");
		so_term(o, r);
		so_puts(o, " || '%')");
	}
	so_puts(o, " ESCAPE '\\'");
}

static const char *const op_sql[] = {
	[QUERY_GT] = " > ", [QUERY_GTE] = " >= ", [QUERY_LT] = " < ",
	[QUERY_LTE] = " <= ",
};

static void emit_cmp(struct render *rd, const struct query_pred *p,
		     struct sqlout *o)
{
	struct term l, r;
	int rc;

	rc = term_of(rd, &p->lhs, &l);
	if (!rc)
		rc = term_of(rd, &p->rhs, &r);
	else
		memset(&r, 0, sizeof(r));
	if (rc) {
		if (!o->rc) {
			o->rc = rc;
			o->bad = l.value ? r.x.bad : l.x.bad;
		}
		goto out;
	}
	switch (p->op) {
	case QUERY_EQ:
	case QUERY_NEQ:
		emit_equal(o, p->op == QUERY_EQ, &l, &r);
		break;
	case QUERY_LIKE:
	case QUERY_NLIKE:
		emit_like(o, p->op == QUERY_NLIKE, &l, &r);
		break;
	case QUERY_EQ_NOCASE:
		so_term(o, &l);
		so_puts(o, " = ");
		so_term(o, &r);
		so_puts(o, " COLLATE NOCASE");
		break;
	case QUERY_GT:
	case QUERY_GTE:
	case QUERY_LT:
	case QUERY_LTE:
		so_term(o, &l);
		so_puts(o, op_sql[p->op]);
		so_term(o, &r);
		break;
	default:
		if (!o->rc)
			o->rc = ERR_INVALID;
		break;
	}
out:
	term_release(&l);
	term_release(&r);
}

/* ---- predicates ------------------------------------------------------------ */

/* The record row of a QUERY_ON_RECORD as a one-row table named records
 * (relation subqueries' "FROM records rN" still name the real table,
 * which the CTE, named snap, does not shadow). */
#define ON_RECORD_SQL \
	"EXISTS (WITH snap(collection, id, name, data, labels, status, " \
	"generation, revision, created, updated) AS (VALUES (?, ?, ?, ?, ?, " \
	"?, ?, ?, ?, ?)) SELECT 1 FROM snap AS records WHERE ("
#define ON_RECORD_COLS 10

static void emit_pred(struct render *rd, const struct query_pred *p,
		      struct sqlout *o);

/*
 * Join kids[lo..hi) of an AND/OR node as a balanced tree of parenthesised
 * pairs, so that SQLite's expression depth (limit 1000) grows with the log
 * of a long flat chain, not with its length.
 */
static void emit_kids(struct render *rd, const struct query_pred *p,
		      size_t lo, size_t hi, struct sqlout *o)
{
	size_t mid = lo + (hi - lo) / 2;

	if (hi - lo == 1) {
		emit_pred(rd, p->kids[lo], o);
		return;
	}
	so_puts(o, "(");
	emit_kids(rd, p, lo, mid, o);
	so_puts(o, p->kind == QUERY_AND ? " AND " : " OR ");
	emit_kids(rd, p, mid, hi, o);
	so_puts(o, ")");
}

static void emit_pred(struct render *rd, const struct query_pred *p,
		      struct sqlout *o)
{
	size_t i;

	if (o->rc)
		return;
	switch (p->kind) {
	case QUERY_TRUE:
		so_puts(o, "1");
		return;
	case QUERY_CMP:
		emit_cmp(rd, p, o);
		return;
	case QUERY_NOT:
	case QUERY_ON_RECORD:
		if (p->nkids != 1)
			break;
		if (p->kind == QUERY_NOT) {
			so_puts(o, "NOT (");
		} else {
			if (!json_is_array(p->row) ||
			    json_array_size(p->row) != ON_RECORD_COLS)
				break;
			so_puts(o, ON_RECORD_SQL);
			for (i = 0; i < ON_RECORD_COLS && !o->rc; i++)
				if (json_array_append(o->args,
						      json_array_get(p->row, i)))
					o->rc = ERR_NOMEM;
		}
		emit_pred(rd, p->kids[0], o);
		so_puts(o, p->kind == QUERY_NOT ? ")" : "))");
		return;
	case QUERY_AND:
	case QUERY_OR:
		if (p->nkids < 1)
			break;
		if (!p->apart) {
			emit_kids(rd, p, 0, p->nkids, o);
			return;
		}
		for (i = 0; i < p->nkids; i++) {
			so_puts(o, i ? ") AND (" : "(");
			emit_pred(rd, p->kids[i], o);
		}
		so_puts(o, ")");
		return;
	}
	if (!o->rc)
		o->rc = ERR_INVALID;
}

/* The error of a failed rendering. */
static int so_fail(const struct sqlout *o, struct err *e)
{
	if (o->rc == ERR_INVALID && o->bad)
		return err_set(e, ERR_INVALID,
			       "query: '%.64s' is not a field or column the "
			       "store can name", o->bad);
	if (o->rc == ERR_INVALID)
		return err_set(e, ERR_INVALID, "query: malformed predicate");
	return err_set(e, o->rc, "query: %s", err_name(o->rc));
}

int query_sql_where(const struct query_pred *p, struct buf *sql,
		    json_t *args, struct err *e)
{
	struct render rd = { 0 };
	struct sqlout o;
	size_t nargs = json_array_size(args);
	int rc;

	so_init(&o);
	if (p)
		emit_pred(&rd, p, &o);
	rc = o.rc;
	if (!rc && json_array_extend(args, o.args) < 0)
		rc = ERR_NOMEM;
	if (!rc)
		rc = buf_add(sql, o.sql.ptr, o.sql.len);
	/* on failure take back the binds so that sql and args stay in step */
	while (rc && json_array_size(args) > nargs)
		json_array_remove(args, json_array_size(args) - 1);
	if (rc) {
		o.rc = rc;
		rc = so_fail(&o, e);
	}
	so_release(&o);
	return rc;
}

int query_sql_order(const struct query_sort *s, struct buf *sql,
		    struct err *e)
{
	struct sqlout o;
	size_t i;
	int rc;

	so_init(&o);
	if (!s || !s->n)
		so_puts(&o, "created, id");
	for (i = 0; s && i < s->n && i < QUERY_MAX_SORT; i++) {
		const struct query_sort_key *k = &s->keys[i];
		const char *dir = k->desc ? "DESC" : "ASC";

		if (i)
			so_puts(&o, ", ");
		if (k->kind == QUERY_SORT_RANDOM) {
			so_puts(&o, "RANDOM()");
		} else if (k->kind == QUERY_SORT_COLUMN) {
			if (so_name(&o, k->name, true))
				so_printf(&o, "records.%s %s", k->name, dir);
		} else if (k->zero) {
			so_puts(&o, "COALESCE(");
			so_extract(&o, "records", k->name);
			so_printf(&o, ", 0) %s", dir);
		} else {
			so_extract(&o, "records", k->name);
			so_printf(&o, " %s", dir);
		}
	}
	rc = o.rc;
	if (!rc)
		rc = buf_add(sql, o.sql.ptr, o.sql.len);
	if (rc) {
		o.rc = rc;
		rc = so_fail(&o, e);
	}
	so_release(&o);
	return rc;
}

int query_sql_build(struct query_sql *qs, const struct query_pred *where,
		    const struct query_sort *order, struct err *e)
{
	int rc;

	buf_init(&qs->where, 0);
	buf_init(&qs->order, 0);
	qs->args = json_array();
	if (!qs->args)
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = query_sql_where(where, &qs->where, qs->args, e);
	if (!rc)
		rc = query_sql_order(order, &qs->order, e);
	return rc;
}

void query_sql_release(struct query_sql *qs)
{
	if (!qs)
		return;
	buf_release(&qs->where);
	buf_release(&qs->order);
	json_decref(qs->args);
	qs->args = NULL;
}

char *query_sql_key(const char *collection, const struct query_pred *where)
{
	struct buf key = BUF_INIT;
	struct err e = ERR_INIT;
	json_t *args = json_array();
	char *text = NULL;
	int rc;

	rc = args ? buf_printf(&key, "%s\n", collection) : ERR_NOMEM;
	if (!rc)
		rc = query_sql_where(where, &key, args, &e);
	if (!rc)
		text = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!rc)
		rc = text ? buf_printf(&key, "\n%s", text) : ERR_NOMEM;
	free(text);
	json_decref(args);
	if (rc) {
		buf_release(&key);
		return NULL;
	}
	return buf_detach(&key, NULL);
}
