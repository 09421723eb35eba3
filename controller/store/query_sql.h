/*
 * query_sql.h - the SQLite spelling of a store query (query.h): the WHERE
 * and ORDER BY text of a predicate tree and a sort list, with the values
 * the WHERE text binds. Private to the store: only the store's own files
 * (and the unit tests that pin the text) include it; no SQL leaves the
 * store through store.h.
 *
 * The text refers to the outer table as `records` (unaliased), so the
 * statement it is pasted into must not alias that table; relation hops
 * become correlated scalar subqueries over aliases r1, r2, ... Names come
 * only from the tree (schema names, checked to be plain identifiers) and
 * every literal is a bound '?', so no user text reaches the SQL string.
 */
#ifndef POCKETCTL_QUERY_SQL_H
#define POCKETCTL_QUERY_SQL_H

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "query.h"

/* A query in SQL: init with query_sql_build(), free with
 * query_sql_release(). */
struct query_sql {
	struct buf where;    /* boolean over the records columns; "" = all */
	struct buf order;    /* ORDER BY body, never empty */
	json_t *args;        /* the binds of where, in order of their '?' */
};

/*
 * Fill qs (always initialised, so release it whatever happens) from where
 * (NULL: every record) and order (NULL or no keys: "created, id").
 * Returns 0; ERR_INVALID when a name in the tree is not a plain identifier
 * or a column the store has, or a QUERY_ON_RECORD row is not a record;
 * ERR_NOMEM / ERR_TOO_LARGE from the buffers.
 */
int query_sql_build(struct query_sql *qs, const struct query_pred *where,
		    const struct query_sort *order, struct err *e);
void query_sql_release(struct query_sql *qs);   /* accepts NULL */

/* The WHERE text of p appended to sql and its binds to args; on error
 * both are left as they were. Errors as query_sql_build(). */
int query_sql_where(const struct query_pred *p, struct buf *sql,
		    json_t *args, struct err *e);

/* The ORDER BY body of o appended to sql; on error sql is left as it
 * was. Errors as query_sql_build(). */
int query_sql_order(const struct query_sort *o, struct buf *sql,
		    struct err *e);

/* The count cache's key of where over collection: "collection\nSQL\nbinds"
 * (exactly the condition SQLite runs). Caller frees; NULL when out of
 * memory or the tree is invalid. */
char *query_sql_key(const char *collection, const struct query_pred *where);

#endif
