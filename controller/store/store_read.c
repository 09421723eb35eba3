/*
 * store_read.c - reads of the SQLite store outside a transaction (see
 * store.h, store_int.h): get, list and count through the read pool with
 * their per-connection query cache, and the change log.
 */
#include "store_int.h"

#include "query_sql.h"

/* ---- reads ------------------------------------------------------------ */

static int pool_get(struct store *s, const char *collection, const char *key,
		    bool by_name, struct record *out, struct err *e)
{
	const struct collection *c;
	struct rconn *conn;
	sqlite3_stmt *st;
	int rc;

	record_init(out);
	rc = find_coll(s, collection, &c, e);
	if (rc)
		return rc;
	if (!key)
		return err_set(e, ERR_NOT_FOUND, "no %s record %s ''", c->name,
			       by_name ? "named" : "with id");
	rc = rconn_get(s, &conn, e);
	if (rc)
		return rc;
	rc = rstmt(conn, by_name ? R_GET_NAME : R_GET_ID, &st, e);
	if (!rc)
		rc = get_row(conn->db, st, c->name, key, by_name, out, e);
	if (!rc)
		rc = unseal_record(s, out, e);
	rconn_put(s, conn);
	return rc;
}

int store_get(struct store *s, const char *collection, const char *id,
	      struct record *out, struct err *e)
{
	return pool_get(s, collection, id, false, out, e);
}

int store_get_by_name(struct store *s, const char *collection,
		      const char *name, struct record *out, struct err *e)
{
	return pool_get(s, collection, name, true, out, e);
}

/*
 * Prepare "SELECT <what> FROM records WHERE collection = '<c>' AND (where)
 * [ORDER BY ... LIMIT ...]" with q's arguments bound.
 */
/*
 * A prepared statement for sql on db: from the connection's cache when rc
 * is not NULL (marked busy until query_done()), else a new one.
 */
static int query_prepare(sqlite3 *db, struct rconn *rc, const char *sql,
			 sqlite3_stmt **out, const char **tail)
{
	struct qslot *q, *victim = NULL;
	char *copy;
	size_t i;
	int r;

	*tail = NULL;
	for (i = 0; rc && i < QCACHE_SLOTS; i++) {
		q = &rc->q[i];
		if (q->sql && !q->busy && !strcmp(q->sql, sql)) {
			q->busy = true;
			q->used = ++rc->tick;
			*out = q->st;
			return SQLITE_OK;
		}
		if (!q->busy && (!victim || !q->sql ||
				 (victim->sql && q->used < victim->used)))
			victim = q;
	}
	r = sqlite3_prepare_v3(db, sql, -1, rc ? SQLITE_PREPARE_PERSISTENT : 0,
			       out, tail);
	if (r != SQLITE_OK || !victim || !*out || (*tail && **tail))
		return r;
	copy = strdup(sql);
	if (!copy)
		return SQLITE_OK;            /* just not cached */
	sqlite3_finalize(victim->st);
	free(victim->sql);
	victim->sql = copy;
	victim->st = *out;
	victim->busy = true;
	victim->used = ++rc->tick;
	return SQLITE_OK;
}

/* Done with a statement of query_prepare(): back into the cache (reset,
 * bindings cleared) or finalized. Accepts NULL. */
static void query_done(struct rconn *rc, sqlite3_stmt *st)
{
	size_t i;

	if (!st)
		return;
	for (i = 0; rc && i < QCACHE_SLOTS; i++) {
		if (rc->q[i].st == st && rc->q[i].busy) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			rc->q[i].busy = false;
			return;
		}
	}
	sqlite3_finalize(st);
}

static int prepare_query(sqlite3 *db, struct rconn *cache,
			 const struct collection *c,
			 const char *what, const struct store_query *q,
			 bool ordered, sqlite3_stmt **out, struct err *e)
{
	struct buf sql = BUF_INIT;
	struct query_sql qs;
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	json_t *args, *v;
	const char *order;
	size_t i, nargs;
	int rc = 0, b;
	bool paged;

	*out = NULL;
	rc = query_sql_build(&qs, q ? q->where : NULL, q ? q->order : NULL, e);
	if (rc)
		goto out;
	args = qs.args;
	nargs = json_array_size(args);
	order = qs.order.ptr;
	/*
	 * A page past the first: SQLite cannot defer the row lookups of a
	 * WITHOUT ROWID table, so it would look up every skipped row too.
	 * The page's ids come first, from the index alone where the filter
	 * and order allow (the created index holds the key), then only
	 * those rows are read.
	 */
	paged = ordered && q && q->offset > 0;
	if (buf_printf(&sql, "SELECT %s FROM ", what) ||
	    (paged && buf_puts(&sql, "(SELECT id AS page_id FROM ")) ||
	    buf_puts(&sql, "records WHERE ") ||
	    buf_coll(&sql, "collection = ", c))
		goto nomem;
	if (qs.where.len && buf_printf(&sql, " AND (%s)", qs.where.ptr))
		goto nomem;
	if (ordered) {
		if (buf_printf(&sql, " ORDER BY %s", order))
			goto nomem;
		if (q && (q->limit > 0 || q->offset > 0) &&
		    buf_printf(&sql, " LIMIT %lld OFFSET %lld",
			       (long long)(q->limit > 0 ? q->limit : -1),
			       (long long)(q->offset > 0 ? q->offset : 0)))
			goto nomem;
		/* CROSS JOIN: the page drives the loop, by primary key. */
		if (paged && (buf_puts(&sql, ") AS page CROSS JOIN records "
					     "WHERE records.id = page.page_id"
					     " AND ") ||
			      buf_coll(&sql, "records.collection = ", c) ||
			      buf_printf(&sql, " ORDER BY %s", order)))
			goto nomem;
	}
	if (query_prepare(db, cache, sql.ptr, &st, &tail) != SQLITE_OK) {
		rc = err_set(e, ERR_INVALID, "cannot compile query: %s",
			     sqlite3_errmsg(db));
		goto out;
	}
	while (tail && (*tail == ' ' || *tail == '\t' || *tail == '\n'))
		tail++;
	if (!st || (tail && *tail)) {
		rc = err_set(e, ERR_INVALID, "query must be a single statement");
		goto out;
	}
	if ((size_t)sqlite3_bind_parameter_count(st) != nargs) {
		rc = err_set(e, ERR_INVALID,
			     "query has %d placeholders but %zu arguments",
			     sqlite3_bind_parameter_count(st), nargs);
		goto out;
	}
	json_array_foreach(args, i, v) {
		if (json_is_object(v) || json_is_array(v)) {
			rc = err_set(e, ERR_INVALID,
				     "query argument %zu must be a string, number, boolean or null",
				     i + 1);
			goto out;
		}
		b = bind_value(st, (int)i + 1, v);
		if (b) {
			rc = db_err(e, db, "cannot bind query argument");
			goto out;
		}
	}
	goto out;
nomem:
	rc = nomem(e);
out:
	buf_release(&sql);
	query_sql_release(&qs);
	if (rc)
		query_done(cache, st);
	else
		*out = st;
	return rc;
}

/* Walk the records of c matching q on db (cache: its statement cache, or
 * NULL). */
static int list_on(struct store *s, sqlite3 *db, struct rconn *cache,
		   const struct collection *c, const struct store_query *q,
		   store_each_fn fn, void *arg, struct err *e)
{
	sqlite3_stmt *st = NULL;
	struct record r;
	int rc, step;

	rc = prepare_query(db, cache, c, REC_COLS, q, true, &st, e);
	if (rc)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		rc = record_from_row(st, &r, e);
		if (rc)
			goto out;
		rc = unseal_record(s, &r, e);
		if (!rc)
			rc = fn(&r, arg);
		record_release(&r);
		if (rc)
			goto out;
	}
	if (step != SQLITE_DONE)
		rc = db_err(e, db, "cannot list records");
out:
	query_done(cache, st);
	return rc;
}

int store_list(struct store *s, const char *collection,
	       const struct store_query *q, store_each_fn fn, void *arg,
	       struct err *e)
{
	const struct collection *c;
	struct rconn *conn = NULL;
	int rc;

	rc = find_coll(s, collection, &c, e);
	if (rc)
		return rc;
	rc = rconn_get(s, &conn, e);
	if (rc)
		return rc;
	rc = list_on(s, conn->db, conn, c, q, fn, arg, e);
	rconn_put(s, conn);
	return rc;
}

int store_list_eq_nocase(struct store *s, const char *collection,
			 const char *field, const char *value, int64_t limit,
			 store_each_fn fn, void *arg, struct err *e)
{
	struct store_query q;
	struct query_pred *where;
	int rc;

	where = query_cmp(QUERY_EQ_NOCASE, query_field(field, false),
			  query_literal(json_string(value)));
	if (!where)
		return err_set(e, ERR_NOMEM, "out of memory");
	memset(&q, 0, sizeof(q));
	q.where = where;   /* borrowed by the query */
	q.limit = limit;
	rc = store_list(s, collection, &q, fn, arg, e);
	query_pred_free(where);
	return rc;
}

#define ROW_COLS "id, created, updated, data, revision"

int store_list_rows(struct store *s, const char *collection,
		    const struct store_query *q, store_row_fn fn, void *arg,
		    struct err *e)
{
	const struct collection *c;
	struct rconn *conn = NULL;
	sqlite3_stmt *st = NULL;
	struct store_row row;
	char *plain = NULL;    /* row.data with its secrets opened */
	int rc, step;

	rc = find_coll(s, collection, &c, e);
	if (rc)
		return rc;
	rc = rconn_get(s, &conn, e);
	if (rc)
		return rc;
	rc = prepare_query(conn->db, conn, c, ROW_COLS, q, true, &st, e);
	if (rc)
		goto out;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		row.id = (const char *)sqlite3_column_text(st, 0);
		row.created = (const char *)sqlite3_column_text(st, 1);
		row.updated = (const char *)sqlite3_column_text(st, 2);
		row.data = (const char *)sqlite3_column_text(st, 3);
		row.data_len = (size_t)sqlite3_column_bytes(st, 3);
		row.revision = sqlite3_column_int64(st, 4);
		if (!row.id || !row.created || !row.updated || !row.data ||
		    row.data_len < 2 || row.data[0] != '{' ||
		    row.data[row.data_len - 1] != '}') {
			rc = err_set(e, ERR_DB,
				     "record '%s' of %s is corrupt in the database",
				     row.id ? row.id : "?", c->name);
			break;
		}
		rc = unseal_row_text(s, c, row.id, row.data, row.data_len,
				     &plain, e);
		if (plain) {
			row.data = plain;
			row.data_len = strlen(plain);
		}
		if (!rc)
			rc = fn(&row, arg);
		free(plain);
		plain = NULL;
		if (rc)
			break;
	}
	if (!rc && step != SQLITE_DONE)
		rc = db_err(e, conn->db, "cannot list records");
	query_done(conn, st);
out:
	rconn_put(s, conn);
	return rc;
}

/* A key in some record's data that is not a field of the collection. */
#define SQL_FOREIGN_KEY "SELECT 1 FROM records, json_each(records.data) " \
	"WHERE records.collection = ?1 AND json_each.key NOT IN " \
	"(SELECT value FROM json_each(?2)) LIMIT 1"

int store_data_clean(struct store *s, const char *collection, bool *clean,
		     struct err *e)
{
	const struct collection *c;
	struct rconn *conn = NULL;
	sqlite3_stmt *st = NULL;
	json_t *names = NULL;
	char *text = NULL;
	size_t i, k;
	int rc, step;

	*clean = false;
	rc = find_coll(s, collection, &c, e);
	if (rc)
		return rc;
	k = (size_t)(c - s->schema->collections);
	step = atomic_load(&s->clean[k]);
	if (step) {
		*clean = step == DATA_CLEAN;
		return 0;
	}
	names = json_array();
	for (i = 0; names && i < c->nfields; i++)
		if (json_array_append_new(names,
					  json_string(c->fields[i].name)))
			break;
	text = names && i == c->nfields ? json_dumps(names, JSON_COMPACT) :
					  NULL;
	json_decref(names);
	if (!text)
		return nomem(e);
	rc = rconn_get(s, &conn, e);
	if (rc)
		goto out;
	if (sqlite3_prepare_v2(conn->db, SQL_FOREIGN_KEY, -1, &st, NULL) !=
	    SQLITE_OK || bind_text(st, 1, c->name) ||
	    bind_text(st, 2, text)) {
		rc = db_err(e, conn->db, "cannot check stored fields");
		goto out;
	}
	step = sqlite3_step(st);
	if (step == SQLITE_ROW || step == SQLITE_DONE) {
		*clean = step == SQLITE_DONE;
		atomic_store(&s->clean[k], *clean ? DATA_CLEAN : DATA_FOREIGN);
	} else {
		rc = db_err(e, conn->db, "cannot check stored fields");
	}
out:
	sqlite3_finalize(st);
	if (conn)
		rconn_put(s, conn);
	free(text);
	return rc;
}

int store_txn_list(struct store_txn *t, const char *collection,
		   const struct store_query *q, store_each_fn fn, void *arg,
		   struct err *e)
{
	const struct collection *c;
	int rc;

	if (!t)
		return err_set(e, ERR_INTERNAL, "no transaction");
	rc = find_coll(t->s, collection, &c, e);
	return rc ? rc : list_on(t->s, t->s->wdb, NULL, c, q, fn, arg, e);
}

/* The count cache's key of a query (query_sql_key()). Caller frees; NULL
 * when out of memory. */
static char *count_key(const char *collection, const struct store_query *q)
{
	return query_sql_key(collection, q ? q->where : NULL);
}

int store_count(struct store *s, const char *collection,
		const struct store_query *q, int64_t *count, struct err *e)
{
	const struct collection *c;
	struct rconn *conn = NULL;
	sqlite3_stmt *st = NULL;
	/* The revision is read before counting: a count tagged with it can
	 * only be newer than it, never older. */
	int64_t rev = s->read_only ? 0 : store_head(s);
	char *key = NULL;
	int rc;

	*count = 0;
	rc = find_coll(s, collection, &c, e);
	if (rc)
		return rc;
	key = rev > 0 && s->counts ? count_key(collection, q) : NULL;
	if (key && countcache_get(s->counts, key, rev, count)) {
		free(key);
		return 0;
	}
	rc = rconn_get(s, &conn, e);
	if (rc)
		goto out;
	rc = prepare_query(conn->db, conn, c, "count(*)", q, false, &st, e);
	if (rc)
		goto out;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*count = sqlite3_column_int64(st, 0);
		if (key)
			countcache_put(s->counts, key, rev, *count);
	} else {
		rc = db_err(e, conn->db, "cannot count records");
	}
out:
	query_done(conn, st);
	if (conn)
		rconn_put(s, conn);
	free(key);
	return rc;
}

int store_txn_count(struct store_txn *t, const char *collection,
		    const struct store_query *q, int64_t *count,
		    struct err *e)
{
	const struct collection *c;
	sqlite3_stmt *st = NULL;
	int rc;

	*count = 0;
	if (!t)
		return err_set(e, ERR_INTERNAL, "no transaction");
	rc = find_coll(t->s, collection, &c, e);
	if (rc)
		return rc;
	rc = prepare_query(t->s->wdb, NULL, c, "count(*)", q, false, &st, e);
	if (rc)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW)
		*count = sqlite3_column_int64(st, 0);
	else
		rc = db_err(e, t->s->wdb, "cannot count records");
	sqlite3_finalize(st);
	return rc;
}

int64_t store_txn_revision(const struct store_txn *t)
{
	return t ? t->next_rev - 1 : 0;
}

/* ---- change log ------------------------------------------------------- */

/* One integer from a cached read statement; fallback on any error. */
static int64_t pool_int(struct store *s, enum rst k, int64_t fallback,
			bool *isnull)
{
	struct rconn *conn;
	sqlite3_stmt *st;
	int64_t v = fallback;

	if (rconn_get(s, &conn, NULL))
		return fallback;
	if (rstmt(conn, k, &st, NULL) ||
	    query_int(conn->db, st, NULL, &v, isnull, NULL))
		v = fallback;
	rconn_put(s, conn);
	return v;
}

int64_t store_head(struct store *s)
{
	if (s->read_only)
		return pool_int(s, R_HEAD, 0, NULL);
	return atomic_load(&s->head);
}

int64_t store_changelog_oldest(struct store *s)
{
	int64_t head = store_head(s), v;
	bool isnull = true;

	v = pool_int(s, R_OLDEST, head + 1, &isnull);
	return isnull ? head + 1 : v;
}

/* store_changes() and store_change_keys(): which is R_CHANGES (with the
 * record) or R_CHANGE_KEYS (without). */
static int walk_changes(struct store *s, enum rst which, int64_t after,
			int64_t limit, store_change_fn fn, void *arg,
			struct err *e)
{
	struct rconn *conn = NULL;
	struct store_change ch;
	sqlite3_stmt *st = NULL, *own = NULL;
	int rc, step;

	rc = rconn_get(s, &conn, e);
	if (rc)
		return rc;
	rc = rstmt(conn, which, &st, e);
	if (rc)
		goto out;
	if (sqlite3_stmt_busy(st)) {
		/* A walk from inside a walk's callback: the cached statement
		 * is in use by the outer one. */
		if (sqlite3_prepare_v2(conn->db, rsql[which], -1, &own,
				       NULL) != SQLITE_OK) {
			rc = db_err(e, conn->db, "cannot read the change log");
			st = NULL;
			goto out;
		}
		st = own;
	}
	/* Not beyond the durable head: a batch committed but not yet synced
	 * is not there yet (see group commit). */
	if (sqlite3_bind_int64(st, 1, after) ||
	    sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1) ||
	    sqlite3_bind_int64(st, 3, s->read_only ? INT64_MAX :
				      atomic_load(&s->head))) {
		rc = db_err(e, conn->db, "cannot read the change log");
		goto out;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(st, 4);

		ch.revision = sqlite3_column_int64(st, 0);
		ch.collection = (const char *)sqlite3_column_text(st, 1);
		ch.id = (const char *)sqlite3_column_text(st, 2);
		ch.action = (const char *)sqlite3_column_text(st, 3);
		ch.actor = (const char *)sqlite3_column_text(st, 5);
		ch.status_only = ch.action && !strcmp(ch.action, "status");
		if (ch.status_only)
			ch.action = "update";
		ch.record_len = text ? (size_t)sqlite3_column_bytes(st, 4) : 0;
		ch.record = text ? json_loadb(text, ch.record_len, 0, NULL) :
				   NULL;
		if (ch.record && ch.collection && ch.id &&
		    unseal_data(s, ch.collection, ch.id,
				json_object_get(ch.record, "data"), e)) {
			json_decref(ch.record);
			rc = e->code;
			goto out;
		}
		if (!ch.collection || !ch.id || !ch.action ||
		    (which == R_CHANGES && !ch.record)) {
			json_decref(ch.record);
			rc = err_set(e, ERR_DB,
				     "change-log row %lld is corrupt",
				     (long long)ch.revision);
			goto out;
		}
		rc = fn(&ch, arg);
		json_decref(ch.record);
		if (rc)
			goto out;
	}
	if (step != SQLITE_DONE)
		rc = db_err(e, conn->db, "cannot read the change log");
out:
	if (own)
		sqlite3_finalize(own);
	else
		done(st);
	rconn_put(s, conn);
	return rc;
}

int store_changes(struct store *s, int64_t after, int64_t limit,
		  store_change_fn fn, void *arg, struct err *e)
{
	return walk_changes(s, R_CHANGES, after, limit, fn, arg, e);
}

int store_change_keys(struct store *s, int64_t after, int64_t limit,
		      store_change_fn fn, void *arg, struct err *e)
{
	return walk_changes(s, R_CHANGE_KEYS, after, limit, fn, arg, e);
}

uint64_t store_auth_seq(struct store *s)
{
	return atomic_load(&s->auth_seq);
}
