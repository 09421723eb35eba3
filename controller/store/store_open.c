/*
 * store.c - the record store on SQLite in WAL mode (see store.h).
 *
 * One write connection, serialised by wlock (taken in store_begin(),
 * released by store_commit()/store_abort()), and a pool of up to POOL_MAX
 * read-only connections for reads outside a transaction. Transactions run
 * as savepoints inside a shared SQLite transaction, the batch, that is
 * committed and made durable for many of them at once (group commit, see
 * "transactions" below). A transaction numbers its changes from the head
 * of the batch so far, head + 1, head + 2, ...: each change writes the
 * record row first and then the change-log row with that explicit revision,
 * so a refused write (a UNIQUE violation, a failed validation) leaves
 * nothing behind and the change log's row id is the record's revision.
 * Indexes derived from the schema (u_* unique, i_* plain, r_* relation
 * lookups) are kept in step with the schema at open.
 *
 * THREAD SAFETY NOTES: the write connection, its statements, s->txn and
 * s->batch are touched only under wlock. glock guards what members of a
 * batch wait on (their waiter's result, the committed/durable batch
 * numbers, the sync state), the statistics and the commit hooks; it is
 * taken inside wlock, never the other way round, and nobody sleeps on
 * gcond while holding wlock. qlock guards the store_write() queue and is
 * a leaf: nothing else is taken while it is held. Read connections are handed out under plock; a
 * thread that already holds one (inside a store_list()/store_changes()
 * callback) gets the same one back, so nested reads never wait on
 * themselves. Do not call store_begin() from such a callback: the writer
 * could then wait for a read connection held by a thread waiting for it.
 * s->head is atomic so store_head() takes no lock.
 */
#include "store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "buf.h"
#include "countcache.h"
#include "embedded.h"

#define POOL_MAX 4               /* read-only connections */
#define QCACHE_SLOTS 16          /* prepared queries kept per connection */
#define NAME_MAX_BYTES 200       /* longest record name */
#define DEFAULT_KEEP 100000      /* change-log rows kept */
#define BUSY_TIMEOUT_MS 10000    /* only another process can make us wait */
#define CASCADE_MAX_DEPTH 256    /* cascade delete recursion bound */
#define DB_FILE "pocket.db"

#define REC_COLS "collection, id, name, data, labels, status, generation, " \
		 "revision, created, updated"
#define SQL_HEAD "SELECT max(coalesce((SELECT seq FROM sqlite_sequence " \
		 "WHERE name = 'changelog'), 0), coalesce((SELECT " \
		 "max(revision) FROM changelog), 0))"
#define SQL_GET_ID "SELECT " REC_COLS " FROM records " \
		   "WHERE collection = ?1 AND id = ?2"
#define SQL_GET_NAME "SELECT " REC_COLS " FROM records " \
		     "WHERE collection = ?1 AND name = ?2"

/* Cached statements of the write connection. */
enum wst {
	W_BEGIN, W_COMMIT, W_ROLLBACK, W_SAVEPOINT, W_RELEASE, W_ROLLBACK_TO,
	W_HEAD, W_GET_ID, W_GET_NAME,
	W_NAME_OWNER, W_EXISTS, W_INSERT, W_UPDATE, W_STATUS, W_LOG,
	W_DELETE, W_FORGET, W_TRIM, W_SET_GET, W_SET_CLEAR, W_SET_ADD,
	W__COUNT
};

static const char *const wsql[W__COUNT] = {
	[W_BEGIN] = "BEGIN IMMEDIATE",
	[W_COMMIT] = "COMMIT",
	[W_ROLLBACK] = "ROLLBACK",
	[W_SAVEPOINT] = "SAVEPOINT txn",
	[W_RELEASE] = "RELEASE txn",
	[W_ROLLBACK_TO] = "ROLLBACK TO txn",
	[W_HEAD] = SQL_HEAD,
	[W_GET_ID] = SQL_GET_ID,
	[W_GET_NAME] = SQL_GET_NAME,
	[W_NAME_OWNER] = "SELECT id FROM records "
			 "WHERE collection = ?1 AND name = ?2",
	[W_EXISTS] = "SELECT 1 FROM records WHERE collection = ?1 AND id = ?2",
	[W_INSERT] = "INSERT INTO records (" REC_COLS ") "
		     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[W_UPDATE] = "UPDATE records SET name = ?3, data = ?4, labels = ?5, "
		     "generation = ?6, revision = ?7, updated = ?8 "
		     "WHERE collection = ?1 AND id = ?2",
	[W_STATUS] = "UPDATE records SET status = ?3, revision = ?4 "
		     "WHERE collection = ?1 AND id = ?2",
	[W_LOG] = "INSERT INTO changelog "
		  "(revision, collection, id, action, record, time) "
		  "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[W_DELETE] = "DELETE FROM records WHERE collection = ?1 AND id = ?2",
	[W_FORGET] = "DELETE FROM applysets WHERE collection = ?1 AND id = ?2",
	[W_TRIM] = "DELETE FROM changelog WHERE revision <= ?1",
	[W_SET_GET] = "SELECT collection, id FROM applysets WHERE name = ?1 "
		      "ORDER BY collection, id",
	[W_SET_CLEAR] = "DELETE FROM applysets WHERE name = ?1",
	[W_SET_ADD] = "INSERT OR IGNORE INTO applysets (name, collection, id) "
		      "VALUES (?1, ?2, ?3)",
};

/* Cached statements of each read connection. */
enum rst { R_GET_ID, R_GET_NAME, R_CHANGES, R_CHANGE_KEYS, R_OLDEST, R_HEAD,
	   R__COUNT };

static const char *const rsql[R__COUNT] = {
	[R_GET_ID] = SQL_GET_ID,
	[R_GET_NAME] = SQL_GET_NAME,
	[R_CHANGES] = "SELECT revision, collection, id, action, record "
		      "FROM changelog WHERE revision > ?1 AND revision <= ?3 "
		      "ORDER BY revision LIMIT ?2",
	[R_CHANGE_KEYS] = "SELECT revision, collection, id, action, NULL "
			  "FROM changelog WHERE revision > ?1 AND revision <= ?3 "
			  "ORDER BY revision LIMIT ?2",
	[R_OLDEST] = "SELECT min(revision) FROM changelog",
	[R_HEAD] = SQL_HEAD,
};

/* A query statement kept prepared for the next identical SQL text (list
 * and count queries are built per request, but a client repeats them). */
struct qslot {
	char *sql;               /* owned; NULL = empty */
	sqlite3_stmt *st;
	bool busy;               /* stepping now (a nested identical query
	                          * gets a statement of its own) */
	uint64_t used;           /* for least-recently-used replacement */
};

struct rconn {
	sqlite3 *db;
	sqlite3_stmt *st[R__COUNT];
	pthread_t owner;         /* valid while refs > 0 */
	int refs;                /* nested uses by owner */
	struct qslot q[QCACHE_SLOTS];
	uint64_t tick;
};

struct store_txn {
	struct store *s;
	pthread_t owner;         /* the thread that began it */
	bool active;             /* its savepoint is open */
	int64_t next_rev;        /* revision of the next change */
	bool failed;             /* a write failed half-way: commit refuses */
	struct err ferr;
};

/* A queued store_write(): on its caller's stack until state is WREQ_RAN. */
struct wreq {
	struct wreq *next;
	store_write_fn fn;
	void *arg;
	int rc;                  /* fn's, or why it could not run; 0: it
	                          * was released into a batch, wait on w */
	struct err err;
	struct waiter *w;        /* its waiter (on the caller's stack) */
	struct wreq *pnext;      /* in store.pending (glock) */
	_Atomic bool taken;      /* a combiner dequeued it (set under qlock) */
	_Atomic uint32_t state;  /* WREQ_*, the caller's futex word */
};

enum {
	WREQ_QUEUED = 0,   /* waiting to be run, or run and pending */
	WREQ_KICKED,       /* still queued; its caller should try wlock */
	WREQ_DRIVE,        /* pending; its caller is the driver now */
	WREQ_RAN,          /* handled: rc and w are final */
};

/* A member of a batch waiting in store_commit() for the batch's COMMIT. It
 * lives on the member's stack; done, rc and err are written under glock. */
struct waiter {
	struct waiter *next;
	bool done;               /* its batch failed: rc, err */
	int rc;
	struct err err;
	bool committed;          /* its batch committed as number seq */
	uint64_t seq;
};

/*
 * The batch: one SQLite transaction (BEGIN IMMEDIATE ... COMMIT) holding the
 * released savepoints of every member so far. Touched only under wlock.
 */
struct batch {
	bool open;               /* BEGIN done, COMMIT not yet */
	int n;                   /* members released into it */
	int64_t start_head;      /* revision at BEGIN */
	int64_t head;            /* revision after its last member */
	int64_t started_ns;      /* when its first member was released */
	bool auth;               /* it changed a record of an auth collection */
	struct waiter *waiters;  /* members waiting for the COMMIT */
};

struct store {
	const struct schema *schema;
	char *dir;
	char *path;
	int64_t keep;
	bool read_only;
	int schema_version;
	int migration_level;
	_Atomic int64_t head;
	_Atomic uint64_t auth_seq;   /* see store_auth_seq() */

	pthread_mutex_t wlock;   /* the writer lock (error-checking) */
	_Atomic int queued;      /* threads in store_begin() waiting for it */
	sqlite3 *wdb;
	sqlite3_stmt *wst[W__COUNT];
	sqlite3_stmt **refst;    /* per schema field: referrer lookups */
	size_t *fbase;           /* collection i's first slot in refst */
	struct store_txn txn;    /* the one transaction, under wlock */
	struct batch batch;      /* under wlock */

	pthread_mutex_t qlock;   /* guards the store_write() queue */
	struct wreq *qhead, *qtail;
	struct wreq *pending;    /* run into a batch, not settled (glock) */
	bool driving;            /* a caller is in drive() (glock) */

	pthread_mutex_t glock;   /* guards waiters' results and the rest */
	pthread_cond_t gcond;    /* a batch failed or became durable, or
	                          * inflight reached 0 */
	int inflight;            /* members inside store_commit() */
	uint64_t committed_seq;  /* batches committed so far */
	int64_t committed_head;  /* head after the last of them */
	uint64_t durable_seq;    /* batches known to be on disk */
	_Atomic bool unsynced;   /* committed_seq > durable_seq: a sync is
	                          * due (cleared for good once broken) */
	_Atomic bool syncing;    /* a member is in fdatasync() */
	bool flushing;           /* a member is in flush() */
	bool broken;             /* an fdatasync() failed: broken_err */
	struct err broken_err;
	int walfd;               /* the WAL file, for fdatasync() */
	struct store_stats stats;
	struct hook {
		store_commit_fn fn;
		void *arg;
	} hooks[STORE_COMMIT_HOOKS];
	int nhooks;

	pthread_mutex_t plock;   /* guards pool[] */
	pthread_cond_t pcond;
	struct rconn pool[POOL_MAX];
	struct countcache *counts;   /* store_count() answers by revision;
	                              * NULL: count every time */
	_Atomic int *clean;          /* per collection: DATA_* (0: not
	                              * checked yet), store_data_clean() */
};

enum { DATA_CLEAN = 1, DATA_FOREIGN };

/* ---- small helpers ---------------------------------------------------- */

static int nomem(struct err *e)
{
	return err_set(e, ERR_NOMEM, "out of memory");
}

/* Turn the connection's last error into an ERR_* code and message. */
static int db_err(struct err *e, sqlite3 *db, const char *what)
{
	int code = sqlite3_errcode(db) & 0xff;

	if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
		return err_set(e, ERR_UNAVAILABLE,
			       "%s: the database is locked by another process (%s)",
			       what, sqlite3_errmsg(db));
	if (code == SQLITE_NOMEM)
		return nomem(e);
	return err_set(e, ERR_DB, "%s: %s", what, sqlite3_errmsg(db));
}

/* Prepare *slot once, for the life of the connection. */
static int prep(sqlite3 *db, sqlite3_stmt **slot, const char *sql,
		struct err *e)
{
	if (*slot)
		return 0;
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot,
			       NULL) != SQLITE_OK) {
		*slot = NULL;
		return db_err(e, db, "cannot prepare statement");
	}
	return 0;
}

static void done(sqlite3_stmt *st)
{
	if (!st)
		return;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Step st to completion (no rows expected) and reset it. */
static int run(sqlite3 *db, sqlite3_stmt *st, const char *what,
	       struct err *e)
{
	int rc = 0;

	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_err(e, db, what);
	done(st);
	return rc;
}

static int exec(sqlite3 *db, const char *sql, struct err *e)
{
	char *msg = NULL;
	int rc;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	rc = db_err(e, db, "cannot run SQL");
	sqlite3_free(msg);
	return rc;
}

/* The integer in the first column of sql's first row (*isnull when the
 * value is NULL or there is no row). */
static int query_int(sqlite3 *db, sqlite3_stmt *cached, const char *sql,
		     int64_t *out, bool *isnull, struct err *e)
{
	sqlite3_stmt *st = cached;
	int rc = 0, s;

	*out = 0;
	if (isnull)
		*isnull = true;
	if (!st && sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_err(e, db, "cannot prepare query");
	s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_NULL && isnull)
			*isnull = false;
		*out = sqlite3_column_int64(st, 0);
	} else if (s != SQLITE_DONE) {
		rc = db_err(e, db, "cannot read the store");
	}
	if (cached)
		done(st);
	else
		sqlite3_finalize(st);
	return rc;
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Bind the compact JSON text of v; SQLite frees it. */
static int bind_json(sqlite3_stmt *st, int i, const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	if (!s)
		return SQLITE_NOMEM;
	return sqlite3_bind_text(st, i, s, -1, free);
}

/* Bind a JSON scalar the way json_extract() would return it; objects and
 * arrays bind as their compact text. */
static int bind_value(sqlite3_stmt *st, int i, const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		return sqlite3_bind_text(st, i, json_string_value(v),
					 (int)json_string_length(v),
					 SQLITE_TRANSIENT);
	case JSON_INTEGER:
		return sqlite3_bind_int64(st, i, json_integer_value(v));
	case JSON_REAL:
		return sqlite3_bind_double(st, i, json_real_value(v));
	case JSON_TRUE:
		return sqlite3_bind_int(st, i, 1);
	case JSON_FALSE:
		return sqlite3_bind_int(st, i, 0);
	case JSON_NULL:
		return sqlite3_bind_null(st, i);
	default:
		return bind_json(st, i, v);
	}
}

/* Append s as a quoted SQL identifier (q = '"') or string literal ('\''). */
static int buf_quoted(struct buf *b, const char *s, char q)
{
	if (buf_putc(b, q))
		return ERR_NOMEM;
	for (; *s; s++) {
		if (*s == q && buf_putc(b, q))
			return ERR_NOMEM;
		if (buf_putc(b, *s))
			return ERR_NOMEM;
	}
	return buf_putc(b, q);
}

/* A field name that can go into a JSON path '$.name' unquoted. */
static bool ident_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static bool is_column(const char *f)
{
	return !strcmp(f, "name") || !strcmp(f, "id") ||
	       !strcmp(f, "created") || !strcmp(f, "updated");
}

/*
 * Append the SQL expression for index field f of c: json_extract() of a
 * schema field, or one of the record columns name/id/created/updated.
 */
static int index_expr(struct buf *b, const struct collection *c,
		      const char *f, struct err *e)
{
	if (collection_field(c, f)) {
		if (!ident_ok(f))
			return err_set(e, ERR_INVALID,
				       "collection '%s': field '%s' cannot be indexed (want [A-Za-z0-9_])",
				       c->name, f);
		if (buf_printf(b, "json_extract(data, '$.%s')", f))
			return nomem(e);
		return 0;
	}
	if (!is_column(f))
		return err_set(e, ERR_INVALID,
			       "collection '%s': index names unknown field '%s'",
			       c->name, f);
	if (buf_puts(b, f))
		return nomem(e);
	return 0;
}

/* " WHERE collection = '<c>'" style literal for c's partial indexes. */
static int buf_coll(struct buf *b, const char *prefix,
		    const struct collection *c)
{
	if (buf_puts(b, prefix) || buf_quoted(b, c->name, '\''))
		return ERR_NOMEM;
	return 0;
}

/* "(a, b, c)" for messages. */
static void index_fields(char *out, size_t size, const struct index *ix)
{
	size_t i, n = 0;

	n += (size_t)snprintf(out, size, "(");
	for (i = 0; i < ix->nfields && n < size; i++)
		n += (size_t)snprintf(out + n, size - n, "%s%s",
				      i ? ", " : "", ix->fields[i]);
	if (n < size)
		snprintf(out + n, size - n, ")");
}

/* ---- records ---------------------------------------------------------- */

void record_init(struct record *r)
{
	memset(r, 0, sizeof(*r));
}

void record_release(struct record *r)
{
	if (!r)
		return;
	free(r->name);
	json_decref(r->data);
	json_decref(r->labels);
	json_decref(r->status);
	record_init(r);
}

json_t *record_to_json(const struct record *r)
{
	return json_pack("{s:s,s:s,s:s?,s:O?,s:O?,s:O?,s:I,s:I,s:s,s:s}",
			 "collection", r->collection, "id", r->id,
			 "name", r->name, "labels", r->labels,
			 "data", r->data, "status", r->status,
			 "generation", (json_int_t)r->generation,
			 "revision", (json_int_t)r->revision,
			 "created", r->created, "updated", r->updated);
}

json_t *record_to_public_json(const struct collection *c,
			      const struct record *r)
{
	json_t *j = record_to_json(r);
	json_t *data = json_copy(r->data);
	size_t i;

	if (!j || !data) {
		json_decref(j);
		json_decref(data);
		return NULL;
	}
	for (i = 0; i < c->nfields; i++)
		if (c->fields[i].hidden)
			json_object_del(data, c->fields[i].name);
	if (json_object_set_new(j, "data", data)) { /* data stolen */
		json_decref(j);
		return NULL;
	}
	return j;
}

const char *store_action_name(enum store_action a)
{
	switch (a) {
	case STORE_UNCHANGED:
		return "unchanged";
	case STORE_CREATED:
		return "created";
	case STORE_UPDATED:
		return "updated";
	case STORE_DELETED:
		return "deleted";
	}
	return "unknown";
}

static int copy_col(char *dst, size_t size, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	int n = sqlite3_column_bytes(st, col);

	if (!t || n < 0 || (size_t)n >= size)
		return -1;
	memcpy(dst, t, (size_t)n);
	dst[n] = '\0';
	return 0;
}

/* A JSON object column; NULL when absent or malformed. */
static json_t *column_object(sqlite3_stmt *st, int col)
{
	const char *t = (const char *)sqlite3_column_text(st, col);
	json_t *v;

	if (!t)
		return NULL;
	v = json_loadb(t, (size_t)sqlite3_column_bytes(st, col), 0, NULL);
	if (v && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

/* Fill r from a row of REC_COLS. */
static int record_from_row(sqlite3_stmt *st, struct record *r, struct err *e)
{
	const char *name;
	int rc;

	record_init(r);
	name = (const char *)sqlite3_column_text(st, 2);
	if (copy_col(r->collection, sizeof(r->collection), st, 0) ||
	    copy_col(r->id, sizeof(r->id), st, 1) || !name)
		goto corrupt;
	r->name = strdup(name);
	if (!r->name) {
		record_release(r);
		return nomem(e);
	}
	r->data = column_object(st, 3);
	r->labels = column_object(st, 4);
	r->status = column_object(st, 5);
	if (!r->data || !r->labels || !r->status)
		goto corrupt;
	r->generation = sqlite3_column_int64(st, 6);
	r->revision = sqlite3_column_int64(st, 7);
	if (copy_col(r->created, sizeof(r->created), st, 8) ||
	    copy_col(r->updated, sizeof(r->updated), st, 9))
		goto corrupt;
	return 0;
corrupt:
	rc = err_set(e, ERR_DB, "record '%s' of %s is corrupt in the database",
		     r->id, r->collection[0] ? r->collection : "?");
	record_release(r);
	return rc;
}

/*
 * Look a record up with a prepared SQL_GET_ID or SQL_GET_NAME statement.
 * ERR_NOT_FOUND when absent.
 */
static int get_row(sqlite3 *db, sqlite3_stmt *st, const char *coll,
		   const char *key, bool by_name, struct record *out,
		   struct err *e)
{
	int rc, s;

	if (bind_text(st, 1, coll) || bind_text(st, 2, key)) {
		rc = db_err(e, db, "cannot read record");
		goto out;
	}
	s = sqlite3_step(st);
	if (s == SQLITE_ROW)
		rc = record_from_row(st, out, e);
	else if (s == SQLITE_DONE)
		rc = by_name ? err_set(e, ERR_NOT_FOUND,
				       "no %s record named '%s'", coll, key) :
			       err_set(e, ERR_NOT_FOUND,
				       "no %s record with id '%s'", coll, key);
	else
		rc = db_err(e, db, "cannot read record");
out:
	done(st);
	return rc;
}

static int find_coll(const struct store *s, const char *name,
		     const struct collection **out, struct err *e)
{
	*out = name ? schema_find(s->schema, name) : NULL;
	if (!*out)
		return err_set_field(e, ERR_NOT_FOUND, "collection",
				     "unknown collection '%s'",
				     name ? name : "(null)");
	return 0;
}

/* ---- read pool -------------------------------------------------------- */

static int open_db(const char *path, int flags, sqlite3 **out,
		   struct err *e)
{
	sqlite3 *db = NULL;
	int rc;

	*out = NULL;
	rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = err_set(e, ERR_DB, "cannot open database '%s': %s", path,
			     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return rc;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	*out = db;
	return 0;
}

/*
 * Take a read connection. A thread that already holds one gets the same
 * one again (so a callback of store_list() may call store_get() without
 * waiting on itself). Blocks while all POOL_MAX are in use.
 */
static int rconn_get(struct store *s, struct rconn **out, struct err *e)
{
	pthread_t self = pthread_self();
	struct rconn *c = NULL;
	int i, rc = 0;

	pthread_mutex_lock(&s->plock);
	while (!c) {
		for (i = 0; i < POOL_MAX && !c; i++)
			if (s->pool[i].refs &&
			    pthread_equal(s->pool[i].owner, self))
				c = &s->pool[i];
		for (i = 0; i < POOL_MAX && !c; i++)
			if (s->pool[i].db && !s->pool[i].refs)
				c = &s->pool[i];
		for (i = 0; i < POOL_MAX && !c; i++) {
			if (s->pool[i].db)
				continue;
			rc = open_db(s->path, SQLITE_OPEN_READONLY,
				     &s->pool[i].db, e);
			if (rc)
				goto out;
			c = &s->pool[i];
		}
		if (!c)
			pthread_cond_wait(&s->pcond, &s->plock);
	}
	c->owner = self;
	c->refs++;
	*out = c;
out:
	pthread_mutex_unlock(&s->plock);
	return rc;
}

static void rconn_put(struct store *s, struct rconn *c)
{
	pthread_mutex_lock(&s->plock);
	if (--c->refs == 0)
		pthread_cond_signal(&s->pcond);
	pthread_mutex_unlock(&s->plock);
}

static int rstmt(struct rconn *c, enum rst k, sqlite3_stmt **out,
		 struct err *e)
{
	int rc = prep(c->db, &c->st[k], rsql[k], e);

	*out = c->st[k];
	return rc;
}

static int wstmt(struct store *s, enum wst k, sqlite3_stmt **out,
		 struct err *e)
{
	int rc;

	/* After an I/O error or a full disk SQLite may roll the whole
	 * transaction back; writing on would then autocommit piecemeal. */
	if (s->txn.active && sqlite3_get_autocommit(s->wdb)) {
		*out = NULL;
		return err_set(e, ERR_DB,
			       "the database rolled the transaction back after an error");
	}
	rc = prep(s->wdb, &s->wst[k], wsql[k], e);
	*out = s->wst[k];
	return rc;
}

/* ---- open / close ----------------------------------------------------- */

/* Create the data directory (0700) and its parents when missing. */
static int make_data_dir(const char *dir, struct err *e)
{
	struct stat st;
	char *parent = NULL;
	int rc = 0;

	if (mkdir(dir, 0700) == 0)
		return 0;
	if (errno == ENOENT) {
		parent = strdup(dir);
		if (!parent)
			return nomem(e);
		rc = fs_mkdirs(dirname(parent), e);
		if (rc)
			goto out;
		if (mkdir(dir, 0700) == 0)
			goto out;
	}
	if (errno != EEXIST) {
		rc = err_set(e, ERR_IO, "cannot create data directory '%s': %s",
			     dir, strerror(errno));
		goto out;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		rc = err_set(e, ERR_IO, "data directory '%s' is not a directory",
			     dir);
out:
	free(parent);
	return rc;
}

/* Refuse schemas the store cannot hold, and size the referrer cache. */
static int check_schema(struct store *s, struct err *e)
{
	const struct schema *sc = s->schema;
	size_t i, j, n = 0;

	for (i = 0; i < sc->ncollections; i++) {
		const struct collection *c = &sc->collections[i];

		if (!c->name || !*c->name ||
		    strlen(c->name) >= sizeof(((struct record *)0)->collection))
			return err_set(e, ERR_INVALID,
				       "collection name '%s' is empty or too long",
				       c->name ? c->name : "");
		for (j = 0; j < c->nfields; j++) {
			const struct field *f = &c->fields[j];

			if (f->type != FT_RELATION)
				continue;
			if (!f->target || !schema_find(sc, f->target))
				return err_set(e, ERR_INVALID,
					       "collection '%s': relation '%s' targets unknown collection '%s'",
					       c->name, f->name,
					       f->target ? f->target : "");
			if (!ident_ok(f->name))
				return err_set(e, ERR_INVALID,
					       "collection '%s': relation field '%s' needs a plain name",
					       c->name, f->name);
		}
		n += c->nfields;
	}
	s->refst = calloc(n ? n : 1, sizeof(*s->refst));
	s->fbase = calloc(sc->ncollections ? sc->ncollections : 1,
			  sizeof(*s->fbase));
	if (!s->refst || !s->fbase)
		return nomem(e);
	for (i = 0, n = 0; i < sc->ncollections; i++) {
		s->fbase[i] = n;
		n += sc->collections[i].nfields;
	}
	return 0;
}

static int too_new(const struct store *s, int64_t level, struct err *e)
{
	return err_set(e, ERR_INVALID,
		       "data directory '%s' is at store migration level %lld, newer than this pocketctl (%zu): use a newer pocketctl",
		       s->dir, (long long)level, embedded_nmigrations);
}

/* Run every pending migration, each in its own transaction. */
static int migrate(struct store *s, struct err *e)
{
	char sql[64];
	int64_t level;
	size_t i;
	int rc;

	rc = query_int(s->wdb, NULL, "PRAGMA user_version", &level, NULL, e);
	if (rc)
		return rc;
	if (level < 0 || level > (int64_t)embedded_nmigrations)
		return too_new(s, level, e);
	for (i = (size_t)level; i < embedded_nmigrations; i++) {
		const struct embedded_file *m = &embedded_migrations[i];

		rc = exec(s->wdb, "BEGIN IMMEDIATE", e);
		if (rc)
			return rc;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %zu", i + 1);
		rc = exec(s->wdb, m->data, e);
		if (!rc)
			rc = exec(s->wdb, sql, e);
		if (!rc)
			rc = exec(s->wdb, "COMMIT", e);
		if (rc) {
			sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
			return err_prefix(e, "migration '%s': ", m->name);
		}
	}
	s->migration_level = (int)embedded_nmigrations;
	return 0;
}

/* Add one wanted index: want[name] = {sql, what}. */
static int want_index(json_t *want, struct buf *name, struct buf *sql,
		      const char *what, struct err *e)
{
	json_t *v = json_pack("{s:s,s:s}", "sql", sql->ptr, "what", what);

	if (!v || json_object_set_new(want, name->ptr, v))
		return nomem(e);
	return 0;
}

/* The indexes the schema asks for: schema indexes and relation lookups. */
static int wanted_indexes(const struct schema *sc, json_t *want,
			  struct err *e)
{
	struct buf name = BUF_INIT, sql = BUF_INIT;
	char what[512];
	size_t i, j, k;
	int rc = 0;

	for (i = 0; i < sc->ncollections; i++) {
		const struct collection *c = &sc->collections[i];

		for (j = 0; j < c->nindexes; j++) {
			const struct index *ix = &c->indexes[j];

			if (!ix->nfields)
				continue;
			buf_reset(&name);
			buf_reset(&sql);
			if (buf_printf(&name, "%s_%s_%s", ix->unique ? "u" : "i",
				       c->name, ix->name) ||
			    buf_puts(&sql, ix->unique ? "CREATE UNIQUE INDEX " :
							"CREATE INDEX ") ||
			    buf_quoted(&sql, name.ptr, '"') ||
			    buf_puts(&sql, " ON records("))
				goto nomem;
			for (k = 0; k < ix->nfields; k++) {
				if (k && buf_puts(&sql, ", "))
					goto nomem;
				rc = index_expr(&sql, c, ix->fields[k], e);
				if (rc)
					goto out;
			}
			if (buf_coll(&sql, ") WHERE collection = ", c))
				goto nomem;
			snprintf(what, sizeof(what), "%s ", c->name);
			index_fields(what + strlen(what),
				     sizeof(what) - strlen(what), ix);
			rc = want_index(want, &name, &sql, what, e);
			if (rc)
				goto out;
		}
		for (j = 0; j < c->nfields; j++) {
			const struct field *f = &c->fields[j];
			bool covered = false;

			if (f->type != FT_RELATION)
				continue;
			for (k = 0; k < c->nindexes; k++)
				if (c->indexes[k].nfields &&
				    !strcmp(c->indexes[k].fields[0], f->name))
					covered = true;
			if (covered)
				continue;
			buf_reset(&name);
			buf_reset(&sql);
			if (buf_printf(&name, "r_%s_%s", c->name, f->name) ||
			    buf_puts(&sql, "CREATE INDEX ") ||
			    buf_quoted(&sql, name.ptr, '"') ||
			    buf_printf(&sql,
				       " ON records(json_extract(data, '$.%s'))",
				       f->name) ||
			    buf_coll(&sql, " WHERE collection = ", c))
				goto nomem;
			snprintf(what, sizeof(what), "%s (%s)", c->name,
				 f->name);
			rc = want_index(want, &name, &sql, what, e);
			if (rc)
				goto out;
		}
	}
	goto out;
nomem:
	rc = nomem(e);
out:
	buf_release(&name);
	buf_release(&sql);
	return rc;
}

static bool managed_index(const char *name)
{
	return (name[0] == 'u' || name[0] == 'i' || name[0] == 'r') &&
	       name[1] == '_';
}

/*
 * Bring the schema-derived indexes in line with the schema: drop the ones
 * that are gone or changed, create the missing ones. Existing records that
 * violate a new unique index make the open fail with ERR_CONFLICT.
 */
static int sync_indexes(struct store *s, struct err *e)
{
	sqlite3_stmt *st = NULL;
	json_t *want = json_object(), *drop = json_array(), *v;
	struct buf sql = BUF_INIT;
	const char *key;
	size_t i;
	int rc = 0, r;

	if (!want || !drop) {
		rc = nomem(e);
		goto out;
	}
	rc = wanted_indexes(s->schema, want, e);
	if (rc)
		goto out;
	if (sqlite3_prepare_v2(s->wdb,
			       "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
			       "AND tbl_name = 'records' AND sql IS NOT NULL",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(e, s->wdb, "cannot list indexes");
		goto out;
	}
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *have = (const char *)sqlite3_column_text(st, 1);

		if (!name || !have || !managed_index(name))
			continue;
		v = json_object_get(json_object_get(want, name), "sql");
		if (v && !strcmp(json_string_value(v), have))
			json_object_del(want, name);
		else if (json_array_append_new(drop, json_string(name)))
			goto nomem;
	}
	if (r != SQLITE_DONE) {
		rc = db_err(e, s->wdb, "cannot list indexes");
		goto out;
	}
	json_array_foreach(drop, i, v) {
		buf_reset(&sql);
		if (buf_puts(&sql, "DROP INDEX ") ||
		    buf_quoted(&sql, json_string_value(v), '"'))
			goto nomem;
		rc = exec(s->wdb, sql.ptr, e);
		if (rc)
			goto out;
	}
	json_object_foreach(want, key, v) {
		if (sqlite3_exec(s->wdb,
				 json_string_value(json_object_get(v, "sql")),
				 NULL, NULL, NULL) == SQLITE_OK)
			continue;
		if ((sqlite3_errcode(s->wdb) & 0xff) == SQLITE_CONSTRAINT)
			rc = err_set(e, ERR_CONFLICT,
				     "cannot create unique index '%s': existing records of %s are not unique",
				     key,
				     json_string_value(json_object_get(v, "what")));
		else
			rc = db_err(e, s->wdb, "cannot create index");
		goto out;
	}
	goto out;
nomem:
	rc = nomem(e);
out:
	sqlite3_finalize(st);
	json_decref(want);
	json_decref(drop);
	buf_release(&sql);
	return rc;
}

/*
 * meta.schema_version follows the schema; the value it replaces stays as
 * schema_version_previous (with schema_changed, the time of the change).
 */
static int record_schema_version(struct store *s, struct err *e)
{
	char sql[256], now[TIME_LEN + 1];
	int64_t old;
	bool isnull;
	int rc;

	rc = query_int(s->wdb, NULL,
		       "SELECT value FROM meta WHERE key = 'schema_version'",
		       &old, &isnull, e);
	if (rc)
		return rc;
	s->schema_version = s->schema->version;
	if (!isnull && old == s->schema->version)
		return 0;
	util_now(now);
	if (!isnull) {
		snprintf(sql, sizeof(sql),
			 "INSERT OR REPLACE INTO meta (key, value) VALUES "
			 "('schema_version_previous', %lld)", (long long)old);
		rc = exec(s->wdb, sql, e);
		if (rc)
			return rc;
	}
	snprintf(sql, sizeof(sql),
		 "INSERT OR REPLACE INTO meta (key, value) VALUES "
		 "('schema_version', %d), ('schema_changed', '%s')",
		 s->schema->version, now);
	return exec(s->wdb, sql, e);
}

/*
 * From now on the write connection commits with synchronous = NORMAL and
 * the store syncs the WAL itself (see group commit below): open the WAL
 * file SQLite uses, and sync its directory once so that its entry there is
 * durable too. The WAL file stays (same inode) while the database is open.
 */
static int open_wal(struct store *s, struct err *e)
{
	const char *wal = sqlite3_filename_wal(sqlite3_db_filename(s->wdb,
								   "main"));
	char *dir = NULL;
	int dfd = -1, rc = 0;

	if (!wal || !*wal)
		return err_set(e, ERR_DB, "no WAL file for '%s'", s->path);
	s->walfd = open(wal, O_RDONLY | O_CLOEXEC);
	if (s->walfd < 0)
		return err_set(e, ERR_IO, "cannot open '%s': %s", wal,
			       strerror(errno));
	dir = strdup(wal);
	if (!dir)
		return nomem(e);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		rc = err_set(e, ERR_IO, "cannot sync the directory of '%s': %s",
			     wal, strerror(errno));
		goto out;
	}
	rc = exec(s->wdb, "PRAGMA synchronous = NORMAL", e);
out:
	if (dfd >= 0)
		close(dfd);
	free(dir);
	return rc;
}

static int open_rw(struct store *s, struct err *e)
{
	sqlite3_stmt *st = NULL;
	const char *mode;
	int64_t head;
	int rc;

	rc = make_data_dir(s->dir, e);
	if (rc)
		return rc;
	rc = open_db(s->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
		     &s->wdb, e);
	if (rc)
		return rc;
	if (sqlite3_prepare_v2(s->wdb, "PRAGMA journal_mode = WAL", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		rc = db_err(e, s->wdb, "cannot enable WAL");
		goto out;
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	if (!mode || strcmp(mode, "wal")) {
		rc = err_set(e, ERR_DB,
			     "cannot enable WAL on '%s' (journal mode is '%s')",
			     s->path, mode ? mode : "");
		goto out;
	}
	sqlite3_finalize(st);   /* a pending statement would block COMMIT */
	st = NULL;
	/* temp_store = MEMORY: each member of a batch runs in a savepoint,
	 * and SQLite keeps the pages a savepoint changes in a sub-journal,
	 * which is otherwise a temporary file (an open and a pwrite per
	 * page). */
	rc = exec(s->wdb, "PRAGMA synchronous = FULL; "
		  "PRAGMA foreign_keys = OFF; "
		  "PRAGMA temp_store = MEMORY; "
		  "PRAGMA journal_size_limit = 67108864", e);
	if (rc)
		goto out;
	rc = migrate(s, e);
	if (rc)
		goto out;
	rc = exec(s->wdb, "BEGIN IMMEDIATE", e);
	if (rc)
		goto out;
	rc = sync_indexes(s, e);
	if (!rc)
		rc = record_schema_version(s, e);
	if (!rc)
		rc = exec(s->wdb, "COMMIT", e);
	if (rc) {
		sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	rc = query_int(s->wdb, NULL, SQL_HEAD, &head, NULL, e);
	if (!rc)
		atomic_store(&s->head, head);
	if (!rc)
		rc = open_wal(s, e);
out:
	sqlite3_finalize(st);
	return rc;
}

static int open_ro(struct store *s, struct err *e)
{
	struct rconn *c = NULL;
	struct stat st;
	int64_t level, v;
	bool isnull;
	int rc;

	if (stat(s->path, &st) < 0)
		return err_set(e, ERR_NOT_FOUND, "no store in '%s': %s",
			       s->dir, strerror(errno));
	rc = rconn_get(s, &c, e);
	if (rc)
		return rc;
	rc = query_int(c->db, NULL, "PRAGMA user_version", &level, NULL, e);
	if (rc)
		goto out;
	if (level < 0 || level > (int64_t)embedded_nmigrations) {
		rc = too_new(s, level, e);
		goto out;
	}
	if (level < (int64_t)embedded_nmigrations) {
		rc = err_set(e, ERR_UNAVAILABLE,
			     "store in '%s' is at migration level %lld, this pocketctl needs %zu: open it read-write once to upgrade it",
			     s->dir, (long long)level, embedded_nmigrations);
		goto out;
	}
	s->migration_level = (int)level;
	rc = query_int(c->db, NULL,
		       "SELECT value FROM meta WHERE key = 'schema_version'",
		       &v, &isnull, e);
	if (!rc)
		s->schema_version = isnull ? 0 : (int)v;
out:
	rconn_put(s, c);
	return rc;
}

/*
 * Before SQLite's first use: no memory statistics. With them on (SQLite's
 * default) every allocation SQLite makes, on every connection, takes one
 * process-wide mutex to count it; nothing here reads the counts.
 */
static void sqlite_setup(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int store_open(struct store **out, const struct schema *schema,
	       const struct store_options *o, struct err *e)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_mutexattr_t attr;
	struct store *s;
	int rc;

	pthread_once(&once, sqlite_setup);
	*out = NULL;
	if (!schema || !o || !o->dir || !*o->dir)
		return err_set(e, ERR_INVALID, "store: no data directory given");
	s = calloc(1, sizeof(*s));
	if (!s)
		return nomem(e);
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&s->wlock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_mutex_init(&s->plock, NULL);
	pthread_cond_init(&s->pcond, NULL);
	s->counts = countcache_new();
	pthread_mutex_init(&s->glock, NULL);
	pthread_mutex_init(&s->qlock, NULL);
	pthread_cond_init(&s->gcond, NULL);
	s->walfd = -1;
	s->schema = schema;
	s->read_only = o->read_only;
	s->keep = o->changelog_keep > 0 ? o->changelog_keep : DEFAULT_KEEP;
	s->txn.s = s;
	s->dir = strdup(o->dir);
	s->path = path_join(o->dir, DB_FILE);
	if (!s->dir || !s->path) {
		rc = nomem(e);
		goto out;
	}
	s->clean = calloc(schema->ncollections ? schema->ncollections : 1,
			  sizeof(*s->clean));
	if (!s->clean) {
		rc = nomem(e);
		goto out;
	}
	rc = check_schema(s, e);
	if (rc)
		goto out;
	rc = s->read_only ? open_ro(s, e) : open_rw(s, e);
out:
	if (rc)
		store_close(s);
	else
		*out = s;
	return rc;
}

static void txn_rollback(struct store_txn *t);
static void batch_close(struct store *s);

/*
 * Before closing: roll back a transaction the calling thread left open
 * (a caller bug), commit a batch still open (none when the callers are
 * done with s), and wait until every member of the last batch has left
 * store_commit().
 */
static void flush_writer(struct store *s)
{
	int rc = pthread_mutex_lock(&s->wlock);

	if (rc && rc != EDEADLK)
		return;
	if (s->txn.active)
		txn_rollback(&s->txn);
	batch_close(s);
	pthread_mutex_unlock(&s->wlock);
	pthread_mutex_lock(&s->glock);
	while (s->inflight)
		pthread_cond_wait(&s->gcond, &s->glock);
	pthread_mutex_unlock(&s->glock);
}

void store_close(struct store *s)
{
	size_t i, j, n = 0;

	if (!s)
		return;
	if (s->wdb)
		flush_writer(s);
	for (i = 0; i < POOL_MAX; i++) {
		for (j = 0; j < R__COUNT; j++)
			sqlite3_finalize(s->pool[i].st[j]);
		for (j = 0; j < QCACHE_SLOTS; j++) {
			sqlite3_finalize(s->pool[i].q[j].st);
			free(s->pool[i].q[j].sql);
		}
		sqlite3_close(s->pool[i].db);
	}
	for (i = 0; i < W__COUNT; i++)
		sqlite3_finalize(s->wst[i]);
	if (s->refst) {
		for (i = 0; i < s->schema->ncollections; i++)
			n += s->schema->collections[i].nfields;
		for (i = 0; i < n; i++)
			sqlite3_finalize(s->refst[i]);
	}
	if (s->wdb) {
		sqlite3_exec(s->wdb, "PRAGMA wal_checkpoint(TRUNCATE)", NULL,
			     NULL, NULL);
		sqlite3_close(s->wdb);
	}
	if (s->walfd >= 0)
		close(s->walfd);
	pthread_mutex_destroy(&s->wlock);
	pthread_mutex_destroy(&s->plock);
	countcache_free(s->counts);
	pthread_cond_destroy(&s->pcond);
	pthread_mutex_destroy(&s->glock);
	pthread_mutex_destroy(&s->qlock);
	pthread_cond_destroy(&s->gcond);
	free(s->refst);
	free(s->fbase);
	free(s->clean);
	free(s->dir);
	free(s->path);
	free(s);
}

const struct schema *store_schema(const struct store *s)
{
	return s->schema;
}

int store_schema_version(struct store *s)
{
	return s->schema_version;
}

int store_migration_level(struct store *s)
{
	return s->migration_level;
}

/* ---- transactions ----------------------------------------------------- */

/*
 * Group commit. The write connection runs one SQLite transaction, the
 * batch, at a time. A logical transaction takes wlock, opens SAVEPOINT txn
 * in the batch (BEGIN IMMEDIATE first when no batch is open), does its
 * work, and on store_commit() RELEASEs its savepoint, links a waiter into
 * the batch and lets go of wlock; store_abort() rolls back only its
 * savepoint. Whoever lets go of wlock while no other thread is queued for
 * it closes the batch first (trim the change log, COMMIT), unless an
 * fdatasync() is under way or due (a committed batch waits for one): the
 * members could not be durable before the next one anyway, so the batch
 * stays open, and when the fdatasync() ends a member takes wlock and closes
 * it (flush()) if no writer is queued to do it. Bounds: BATCH_MAX members,
 * and BATCH_MAX_NS for the oldest member's wait while writers keep coming.
 * So a writer alone commits at once, and under load one batch accumulates
 * while the previous one is made durable: one COMMIT per fdatasync(). (Not
 * waiting for a due one, each writer that came between a COMMIT and the
 * start of its fdatasync() made a COMMIT of its own: 3.6 per fdatasync()
 * under 64 writers, each writing the same hot pages to the WAL again.)
 * Invariant: a batch with members is closed as soon as nobody is queued for
 * wlock and no fdatasync() is under way or due.
 *
 * Durability without holding wlock: the write connection runs with
 * synchronous = NORMAL, so a COMMIT appends the batch's frames to the WAL
 * without syncing it (SQLite still syncs the WAL before a checkpoint, the
 * database after one, and the WAL header when the WAL restarts, so the
 * file stays consistent). The members then make the WAL durable themselves
 * with fdatasync() on their own descriptor of the WAL file, outside
 * wlock, while the next batch accumulates: one member at a time syncs
 * (sync_leader()), covering every batch committed before it started, and
 * the others wait for it. Only then is the cached head advanced and a
 * member's store_commit() returns 0. Reads through the pool may see a
 * committed batch up to one fsync before it is durable; store_head() and
 * store_changes() never do. A failed fdatasync() leaves the WAL's state on
 * disk unknown (Linux may drop the dirty pages), so it breaks the store:
 * that batch's members and every later store_begin() fail.
 *
 * Revisions are numbered from the batch's head, so they stay gap-free in
 * commit order: a savepoint rolled back gives its revisions to the next
 * member, a failed COMMIT gives the whole batch's back.
 */
#define BATCH_MAX 256                    /* members per COMMIT */
#define BATCH_MAX_NS (2 * 1000 * 1000)   /* oldest member's wait */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Tell each waiter of list (detached from the batch) that its batch
 * failed, and wake them. */
static void fail_waiters(struct store *s, struct waiter *list, int rc,
			 const struct err *e)
{
	struct waiter *w, *next;

	pthread_mutex_lock(&s->glock);
	for (w = list; w; w = next) {
		next = w->next;         /* w may be gone once done is seen */
		w->rc = rc;
		w->err = *e;
		w->done = true;
	}
	pthread_cond_broadcast(&s->gcond);
	pthread_mutex_unlock(&s->glock);
}

/* ROLLBACK the batch's SQLite transaction if it is still open. */
static void batch_rollback(struct store *s)
{
	sqlite3_stmt *st;

	if (sqlite3_get_autocommit(s->wdb))
		return;
	if (wstmt(s, W_ROLLBACK, &st, NULL) == 0)
		run(s->wdb, st, "rollback", NULL);
	else
		sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
}

/* End the batch without committing: every member gets rc/e. */
static void batch_fail(struct store *s, int rc, const struct err *e)
{
	struct batch *b = &s->batch;
	struct waiter *list = b->waiters;

	batch_rollback(s);
	memset(b, 0, sizeof(*b));
	if (list)
		fail_waiters(s, list, rc, e);
}

static int rolled_back(struct err *e)
{
	return err_set(e, ERR_DB,
		       "cannot commit: the database rolled the transaction back after an error");
}

/* The store cannot make writes durable any more (a failed fdatasync). */
static bool broken(struct store *s, struct err *e)
{
	bool b;

	pthread_mutex_lock(&s->glock);
	b = s->broken;
	if (b && e)
		*e = s->broken_err;
	pthread_mutex_unlock(&s->glock);
	return b;
}

/* Retention: trim the change log in the batch's transaction; never the
 * head row. */
static int batch_trim(struct store *s, struct err *e)
{
	struct batch *b = &s->batch;
	sqlite3_stmt *st;
	int rc;

	if (b->head <= b->start_head || b->head <= s->keep)
		return 0;
	rc = wstmt(s, W_TRIM, &st, e);
	if (rc)
		return rc;
	if (sqlite3_bind_int64(st, 1, b->head - s->keep)) {
		done(st);
		return db_err(e, s->wdb, "cannot trim the change log");
	}
	return run(s->wdb, st, "cannot trim the change log", e);
}

/* COMMIT the open batch (under wlock) and hand its members the batch's
 * sequence number to wait for. */
static void batch_close(struct store *s)
{
	struct batch *b = &s->batch;
	struct err e = ERR_INIT;
	struct waiter *w;
	sqlite3_stmt *st;
	int rc;

	if (!b->open)
		return;
	if (!b->n) {
		/* Only aborted members, or none: nothing to keep. */
		batch_fail(s, 0, &e);
		return;
	}
	if (broken(s, &e)) {
		rc = e.code;
		goto fail;
	}
	if (sqlite3_get_autocommit(s->wdb)) {
		rc = rolled_back(&e);
		goto fail;
	}
	rc = batch_trim(s, &e);
	if (!rc)
		rc = wstmt(s, W_COMMIT, &st, &e);
	if (!rc)
		rc = run(s->wdb, st, "cannot commit", &e);
	if (rc)
		goto fail;
	/* After the COMMIT: a reader that saw the old value either read the
	 * old record or sees the value change. */
	if (b->auth)
		atomic_fetch_add(&s->auth_seq, 1);
	pthread_mutex_lock(&s->glock);
	s->committed_seq++;
	atomic_store(&s->unsynced, true);
	s->committed_head = b->head;
	for (w = b->waiters; w; w = w->next) {
		w->seq = s->committed_seq;
		w->committed = true;
	}
	s->stats.batches++;
	if (b->n > s->stats.max_batch)
		s->stats.max_batch = b->n;
	pthread_cond_broadcast(&s->gcond);
	pthread_mutex_unlock(&s->glock);
	memset(b, 0, sizeof(*b));
	return;
fail:
	batch_fail(s, rc, &e);
}

/* A store_write() queued while wlock was held: wake the first caller so it
 * takes wlock and runs the queue (see store_write()). */
static void kick_queue(struct store *s)
{
	uint32_t queued = WREQ_QUEUED;

	pthread_mutex_lock(&s->qlock);
	if (s->qhead &&
	    atomic_compare_exchange_strong(&s->qhead->state, &queued,
					   WREQ_KICKED))
		util_futex_wake(&s->qhead->state);
	pthread_mutex_unlock(&s->qlock);
}

/* Let go of wlock, closing the batch first unless another writer is queued
 * to join it or its members have to wait for an fdatasync() under way or
 * due anyway. Every path that took wlock ends here. */
static void wunlock(struct store *s)
{
	struct batch *b = &s->batch;
	bool queued = atomic_load(&s->queued) > 0;

	if (!b->open)
		goto out;
	if (b->n == 0 ? !queued :
	    b->n >= BATCH_MAX ||
	    (!atomic_load(&s->syncing) && !atomic_load(&s->unsynced) &&
	     (!queued || now_ns() - b->started_ns >= BATCH_MAX_NS)))
		batch_close(s);
out:
	pthread_mutex_unlock(&s->wlock);
	kick_queue(s);
}

int (*store_wal_sync)(int fd) = fdatasync;

/*
 * Make every batch committed so far durable (called and returning with
 * glock held; drops it around the fdatasync).
 */
static void sync_leader(struct store *s)
{
	uint64_t target = s->committed_seq;
	int64_t head = s->committed_head;
	int r, errnum = 0;

	atomic_store(&s->syncing, true);
	pthread_mutex_unlock(&s->glock);
	r = store_wal_sync(s->walfd);
	if (r)
		errnum = errno;
	pthread_mutex_lock(&s->glock);
	atomic_store(&s->syncing, false);
	s->stats.syncs++;
	if (r) {
		err_set(&s->broken_err, ERR_IO,
			"cannot sync the write-ahead log of '%s' to disk (%s): restart to recover",
			s->path, strerror(errnum));
		s->broken = true;
		/* No batch waits for a sync any more: none will help. */
		atomic_store(&s->unsynced, false);
	} else if (!s->broken && target > s->durable_seq) {
		/* (Once broken, a later fdatasync() that succeeds says
		 * nothing about the pages the failed one may have lost.) */
		s->durable_seq = target;
		atomic_store(&s->unsynced, target < s->committed_seq);
		atomic_store(&s->head, head);   /* only once durable */
	}
	pthread_cond_broadcast(&s->gcond);
}

/*
 * Close the open batch, w's, which was left open (called and returning with
 * glock held; drops it to take wlock, after the transaction holding it).
 */
static void flush(struct store *s, const struct waiter *w)
{
	s->flushing = true;
	pthread_mutex_unlock(&s->glock);
	pthread_mutex_lock(&s->wlock);
	/* Under wlock w cannot change: batches end only under it. */
	if (!w->committed && !w->done)
		batch_close(s);
	pthread_mutex_unlock(&s->wlock);
	kick_queue(s);
	pthread_mutex_lock(&s->glock);
	s->flushing = false;
	pthread_cond_broadcast(&s->gcond);
}

static void settle(struct store *s, struct waiter *w);

/* The end of settled member w (glock held): its result, counted, and it
 * leaves the members in flight. */
static int member_end(struct store *s, struct waiter *w, struct err *e)
{
	int rc;

	if (w->done) {
		rc = w->rc;
		if (e)
			*e = w->err;
	} else if (s->durable_seq >= w->seq) {
		rc = 0;
	} else {
		rc = s->broken_err.code;
		if (e)
			*e = s->broken_err;
	}
	if (rc)
		s->stats.failed++;
	else
		s->stats.commits++;
	if (--s->inflight == 0)
		pthread_cond_broadcast(&s->gcond);
	return rc;
}

/* Wait until w's batch is durable (committing and syncing it when nobody
 * else does) or has failed. */
static int member_wait(struct store *s, struct waiter *w, struct err *e)
{
	int rc;

	pthread_mutex_lock(&s->glock);
	settle(s, w);
	rc = member_end(s, w, e);
	pthread_mutex_unlock(&s->glock);
	return rc;
}

/* w's batch failed, is durable, or cannot be (the store broke); glock
 * held. */
static bool settled(const struct store *s, const struct waiter *w)
{
	return w->done ||
	       (w->committed && (s->durable_seq >= w->seq || s->broken));
}

/*
 * One step towards settling waiters (glock held, dropped inside): sync
 * when committed (one of them is in a committed batch) or when any
 * committed batch waits for its sync (see wunlock), else close the open
 * batch, w's, unless a sync under way or another writer is about to end
 * it: then wait for that.
 */
static void settle_step(struct store *s, bool committed,
			const struct waiter *w)
{
	if (atomic_load(&s->syncing))
		pthread_cond_wait(&s->gcond, &s->glock);
	else if (committed || atomic_load(&s->unsynced))
		sync_leader(s);
	else if (s->flushing || atomic_load(&s->queued))
		pthread_cond_wait(&s->gcond, &s->glock); /* see wunlock */
	else
		flush(s, w);
}

/* Wait (glock held) until w's batch failed, is durable, or cannot be
 * (the store broke), doing the flushing or syncing nobody else does. */
static void settle(struct store *s, struct waiter *w)
{
	while (!settled(s, w))
		settle_step(s, w->committed, w);
}

/* BEGIN IMMEDIATE a new batch and read the head it starts from. */
static int batch_open(struct store *s, struct err *e)
{
	struct batch *b = &s->batch;
	sqlite3_stmt *st;
	int64_t head;
	int rc;

	rc = wstmt(s, W_BEGIN, &st, e);
	if (!rc)
		rc = run(s->wdb, st, "cannot begin transaction", e);
	if (rc)
		return rc;
	rc = wstmt(s, W_HEAD, &st, e);
	if (!rc)
		rc = query_int(s->wdb, st, NULL, &head, NULL, e);
	if (rc) {
		batch_rollback(s);
		return rc;
	}
	memset(b, 0, sizeof(*b));
	b->open = true;
	b->start_head = head;
	b->head = head;
	return 0;
}

/*
 * Start t's savepoint in the open batch (opening one first), with wlock
 * held by the caller. On failure wlock stays held: the caller lets go.
 */
/* The store whose transaction this thread holds open, if any. */
static _Thread_local const struct store *tl_txn_store;

static int begin_locked(struct store *s, struct store_txn **out,
			struct err *e)
{
	struct store_txn *t = &s->txn;
	struct batch *b = &s->batch;
	struct err le = ERR_INIT;
	sqlite3_stmt *st;
	int rc;

	if (broken(s, &le)) {
		if (e)
			*e = le;
		return le.code;
	}
	/* SQLite may have rolled the batch back after an error in an
	 * earlier member (I/O error, disk full): its members must hear. */
	if (b->open && sqlite3_get_autocommit(s->wdb))
		batch_fail(s, rolled_back(&le), &le);
	if (!b->open) {
		rc = batch_open(s, e);
		if (rc)
			return rc;
	}
	rc = wstmt(s, W_SAVEPOINT, &st, e);
	if (!rc)
		rc = run(s->wdb, st, "cannot begin transaction", e);
	if (rc)
		return rc;
	t->owner = pthread_self();
	t->active = true;
	tl_txn_store = s;
	t->next_rev = b->head + 1;
	t->failed = false;
	err_clear(&t->ferr);
	*out = t;
	return 0;
}

int store_begin(struct store *s, struct store_txn **out, struct err *e)
{
	int rc;

	*out = NULL;
	if (s->read_only)
		return err_set(e, ERR_FORBIDDEN, "the store is open read-only");
	atomic_fetch_add(&s->queued, 1);
	rc = pthread_mutex_lock(&s->wlock);
	atomic_fetch_sub(&s->queued, 1);
	if (rc == EDEADLK)
		return err_set(e, ERR_INTERNAL,
			       "a store transaction is already open in this thread");
	if (rc)
		return err_set(e, ERR_INTERNAL, "cannot take the writer lock: %s",
			       strerror(rc));
	rc = begin_locked(s, out, e);
	if (rc)
		wunlock(s);
	return rc;
}

/* Roll back t's savepoint (only that) and end t. When that fails, or SQLite
 * already rolled everything back, the whole batch fails. */
static void txn_rollback(struct store_txn *t)
{
	struct store *s = t->s;
	struct err e = ERR_INIT;
	sqlite3_stmt *st;
	int rc;

	t->active = false;
	tl_txn_store = NULL;
	if (sqlite3_get_autocommit(s->wdb)) {
		batch_fail(s, rolled_back(&e), &e);
		return;
	}
	rc = wstmt(s, W_ROLLBACK_TO, &st, &e);
	if (!rc)
		rc = run(s->wdb, st, "cannot roll back", &e);
	if (!rc)
		rc = wstmt(s, W_RELEASE, &st, &e);
	if (!rc)
		rc = run(s->wdb, st, "cannot roll back", &e);
	if (rc)
		batch_fail(s, rc, &e);
}

/* Call the commit hooks with the (durable) head. */
static void run_hooks(struct store *s)
{
	struct hook hooks[STORE_COMMIT_HOOKS];
	int i, n;

	pthread_mutex_lock(&s->glock);
	n = s->nhooks;
	memcpy(hooks, s->hooks, sizeof(hooks));
	pthread_mutex_unlock(&s->glock);
	for (i = 0; i < n; i++)
		hooks[i].fn(hooks[i].arg, store_head(s));
}

int store_add_commit_hook(struct store *s, store_commit_fn fn, void *arg,
			  struct err *e)
{
	int rc = 0;

	if (!fn)
		return err_set(e, ERR_INTERNAL, "no commit hook given");
	pthread_mutex_lock(&s->glock);
	if (s->nhooks == STORE_COMMIT_HOOKS)
		rc = err_set(e, ERR_TOO_LARGE,
			     "too many commit hooks (at most %d)",
			     STORE_COMMIT_HOOKS);
	else
		s->hooks[s->nhooks++] = (struct hook){ fn, arg };
	pthread_mutex_unlock(&s->glock);
	return rc;
}

void store_remove_commit_hook(struct store *s, store_commit_fn fn, void *arg)
{
	int i;

	pthread_mutex_lock(&s->glock);
	for (i = 0; i < s->nhooks; i++) {
		if (s->hooks[i].fn != fn || s->hooks[i].arg != arg)
			continue;
		memmove(&s->hooks[i], &s->hooks[i + 1],
			(size_t)(s->nhooks - i - 1) * sizeof(s->hooks[0]));
		s->nhooks--;
		break;
	}
	pthread_mutex_unlock(&s->glock);
}

/* t belongs to the calling thread and is open. */
static bool txn_mine(const struct store_txn *t)
{
	return t->active && pthread_equal(t->owner, pthread_self());
}

/*
 * Release t's savepoint into the batch and link w (zeroed here) as a
 * member waiting for its COMMIT, with wlock held by the caller (who lets
 * go of it afterwards). On failure t is rolled back and nothing is linked.
 */
static int release_locked(struct store_txn *t, struct waiter *w,
			  struct err *e)
{
	struct store *s = t->s;
	struct batch *b = &s->batch;
	sqlite3_stmt *st;
	int rc;

	if (t->failed) {
		rc = t->ferr.code;
		if (e)
			*e = t->ferr;
		goto fail;
	}
	rc = wstmt(s, W_RELEASE, &st, e);
	if (!rc)
		rc = run(s->wdb, st, "cannot commit", e);
	if (rc)
		goto fail;
	t->active = false;
	tl_txn_store = NULL;
	memset(w, 0, sizeof(*w));
	w->next = b->waiters;
	b->waiters = w;
	if (b->n++ == 0)
		b->started_ns = now_ns();
	b->head = t->next_rev - 1;
	pthread_mutex_lock(&s->glock);
	s->inflight++;
	pthread_mutex_unlock(&s->glock);
	return 0;
fail:
	txn_rollback(t);
	pthread_mutex_lock(&s->glock);
	s->stats.failed++;
	pthread_mutex_unlock(&s->glock);
	return rc;
}

int store_commit(struct store_txn *t, struct err *e)
{
	struct waiter w;
	struct store *s;
	int rc;

	if (!t)
		return err_set(e, ERR_INTERNAL, "no transaction to commit");
	if (!txn_mine(t))
		return err_set(e, ERR_INTERNAL,
			       "the transaction is not open in this thread");
	s = t->s;
	rc = release_locked(t, &w, e);
	wunlock(s);     /* commits the batch now when nobody is queued */
	if (rc)
		return rc;
	rc = member_wait(s, &w, e);
	if (!rc)
		run_hooks(s);
	return rc;
}

void store_abort(struct store_txn *t)
{
	if (!t)
		return;
	/* A transaction of another thread (or one already ended) is not
	 * ours to touch: that is a caller bug. */
	assert(txn_mine(t));
	if (!txn_mine(t))
		return;
	txn_rollback(t);
	wunlock(t->s);
}

/*
 * Combined writes. A caller of store_write() queues its request, then
 * either takes wlock (trylock) and runs the queue, or sleeps on its
 * request's word until its request is done. Every path that lets go of
 * wlock wakes the first queued caller afterwards (kick_queue() in
 * wunlock()), so a request queued while wlock was held is always picked
 * up: by the holder if it still looks at the queue, else by its own caller
 * after the wake. The combiner runs each request as store_begin() + fn +
 * store_commit() would, without letting go of wlock in between, lets go,
 * and puts the requests released into a batch on the pending list. One
 * caller at a time, the driver (drive()), sees the pending requests
 * through: it closes the open batch, syncs the WAL, runs the commit hooks
 * once per round and wakes each request whose batch settled. So every
 * other caller sleeps once, on its own word, and finds its write durable
 * (or failed) when it wakes; earlier each combiner waited for its own run
 * on the shared condition variable, and each event woke all of them. A
 * caller whose request a combiner has taken off the queue only sleeps:
 * trying wlock again would find the queue empty and spin. The wakes are
 * state changes of the word (QUEUED -> KICKED, DRIVE, RAN), so none is
 * lost when it comes between a caller's check and its sleep.
 */
static struct wreq *dequeue_all(struct store *s)
{
	struct wreq *list, *q;

	pthread_mutex_lock(&s->qlock);
	list = s->qhead;
	s->qhead = s->qtail = NULL;
	for (q = list; q; q = q->next)
		atomic_store_explicit(&q->taken, true, memory_order_relaxed);
	pthread_mutex_unlock(&s->qlock);
	return list;
}

/* Hand q to its caller: rc and w are final. q may be gone right after. */
static void wreq_done(struct wreq *q)
{
	atomic_store(&q->state, WREQ_RAN);
	util_futex_wake(&q->state);
}

/*
 * Drive the pending requests to their end (called and returning without
 * glock; s->driving set for the caller, self its own request): the one
 * driver does for the whole list what settle() does for one waiter
 * (close the open batch, sync the WAL, wait for a plain writer doing
 * either), and wakes each request as its batch settles, running the
 * commit hooks once per round. Every other caller sleeps once, on its own
 * word. Once self is done the driver passes the role to a pending caller
 * (WREQ_DRIVE) instead of serving others' requests for ever.
 */
static void drive(struct store *s, struct wreq *self)
{
	struct wreq *q, **pp, *ready, *next;
	bool durable, committed;

	pthread_mutex_lock(&s->glock);
	for (;;) {
		ready = NULL;
		durable = committed = false;
		for (pp = &s->pending; (q = *pp) != NULL;) {
			if (settled(s, q->w)) {
				/* Its result now, so that its caller need
				 * not queue for glock once woken. */
				q->rc = member_end(s, q->w, &q->err);
				durable |= q->rc == 0;
				*pp = q->pnext;
				q->pnext = ready;
				ready = q;
			} else {
				committed |= q->w->committed;
				pp = &q->pnext;
			}
		}
		if (ready) {
			pthread_mutex_unlock(&s->glock);
			if (durable)
				run_hooks(s);
			for (q = ready; q; q = next) {
				next = q->pnext;
				wreq_done(q);
			}
			pthread_mutex_lock(&s->glock);
			continue;
		}
		if (!s->pending) {
			s->driving = false;
			break;
		}
		if (atomic_load(&self->state) == WREQ_RAN) {
			/* Done with ours: the next driver is a caller who
			 * waits anyway. s->driving stays set for it. */
			atomic_store(&s->pending->state, WREQ_DRIVE);
			util_futex_wake(&s->pending->state);
			break;
		}
		settle_step(s, committed, s->pending->w);
	}
	pthread_mutex_unlock(&s->glock);
}

/* Run the queue (wlock held on entry, let go on return), then hand the
 * requests released into a batch to the driver, becoming it when there
 * is none. */
static void combine(struct store *s, struct wreq *self)
{
	struct wreq *list, *q, *next, *failed = NULL, *ok = NULL;
	struct store_txn *t;
	bool drive_now = false;
	int ran = 0;

	/* At most BATCH_MAX per run, so that the callers already run hear
	 * back; later ones are kicked to the next combiner by wunlock(). */
	while (ran < BATCH_MAX && (list = dequeue_all(s)) != NULL) {
		for (q = list; q; q = next) {
			next = q->next;
			q->rc = begin_locked(s, &t, &q->err);
			if (!q->rc) {
				q->rc = q->fn(t, q->arg, &q->err);
				if (q->rc)
					txn_rollback(t);
				else
					q->rc = release_locked(t, q->w, &q->err);
			}
			if (q->rc) {
				q->next = failed;
				failed = q;
			} else {
				q->pnext = ok;
				ok = q;
			}
			ran++;
			if (s->batch.open && s->batch.n >= BATCH_MAX)
				batch_close(s);
		}
	}
	wunlock(s);
	if (ok) {
		pthread_mutex_lock(&s->glock);
		for (q = ok; q; q = next) {
			next = q->pnext;
			q->pnext = s->pending;
			s->pending = q;
		}
		if (!s->driving)
			drive_now = s->driving = true;
		pthread_mutex_unlock(&s->glock);
	}
	for (q = failed; q; q = next) {
		next = q->next;   /* q may be gone once WREQ_RAN is seen */
		wreq_done(q);
	}
	if (drive_now)
		drive(s, self);
}

int store_write(struct store *s, store_write_fn fn, void *arg, struct err *e)
{
	struct waiter w;
	struct wreq q;

	if (s->read_only)
		return err_set(e, ERR_FORBIDDEN, "the store is open read-only");
	/* It would wait for the transaction this thread holds. */
	if (tl_txn_store == s)
		return err_set(e, ERR_INTERNAL,
			       "a store transaction is already open in this thread");
	memset(&q, 0, sizeof(q));
	q.fn = fn;
	q.arg = arg;
	q.w = &w;
	err_clear(&q.err);
	atomic_init(&q.taken, false);
	atomic_init(&q.state, WREQ_QUEUED);
	pthread_mutex_lock(&s->qlock);
	if (s->qtail)
		s->qtail->next = &q;
	else
		s->qhead = &q;
	s->qtail = &q;
	pthread_mutex_unlock(&s->qlock);
	for (;;) {
		uint32_t st = atomic_load(&q.state);

		if (st == WREQ_RAN)
			break;
		if (st == WREQ_DRIVE) {
			atomic_store(&q.state, WREQ_QUEUED);
			drive(s, &q);
			continue;
		}
		if (st == WREQ_KICKED)     /* take the kick; a later one wakes */
			atomic_compare_exchange_strong(&q.state, &st,
						       WREQ_QUEUED);
		/* Once taken, only its combiner can finish it: trying wlock
		 * again would only spin while that one syncs. */
		if (!atomic_load_explicit(&q.taken, memory_order_relaxed) &&
		    pthread_mutex_trylock(&s->wlock) == 0) {
			combine(s, &q);
			continue;
		}
		/* The timeout is only a safety net: kick_queue() wakes. */
		util_futex_wait(&q.state, WREQ_QUEUED,
				util_monotonic_ms() + 50);
	}
	/* Failed, or settled and ended by the driver, who ran the commit
	 * hooks. */
	if (q.rc && e)
		*e = q.err;
	return q.rc;
}

void store_stats(struct store *s, struct store_stats *out)
{
	pthread_mutex_lock(&s->glock);
	*out = s->stats;
	pthread_mutex_unlock(&s->glock);
}

/* A write failed after part of it reached the database: the transaction
 * can no longer commit. */
static int poison(struct store_txn *t, int rc, const struct err *le,
		  struct err *e)
{
	t->failed = true;
	err_set(&t->ferr, rc, "transaction aborted after a failed write: %s",
		le->msg);
	if (e)
		*e = *le;
	return rc;
}

static int txn_get(struct store_txn *t, const char *coll, const char *key,
		   bool by_name, struct record *out, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	rc = wstmt(t->s, by_name ? W_GET_NAME : W_GET_ID, &st, e);
	if (rc)
		return rc;
	return get_row(t->s->wdb, st, coll, key, by_name, out, e);
}

/* 1 when the record exists, 0 when not, < 0 on error. */
static int txn_exists(struct store_txn *t, const char *coll, const char *id,
		      struct err *e)
{
	sqlite3_stmt *st;
	int rc, r;

	rc = wstmt(t->s, W_EXISTS, &st, e);
	if (rc)
		return rc;
	if (bind_text(st, 1, coll) || bind_text(st, 2, id)) {
		rc = db_err(e, t->s->wdb, "cannot read record");
		goto out;
	}
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		rc = 1;
	else if (r != SQLITE_DONE)
		rc = db_err(e, t->s->wdb, "cannot read record");
out:
	done(st);
	return rc;
}

/* The id of the record of coll named name into id_out ("" when none). */
static int name_owner(struct store_txn *t, const char *coll,
		      const char *name, char id_out[ID_LEN + 1],
		      struct err *e)
{
	sqlite3_stmt *st;
	int rc, r;

	id_out[0] = '\0';
	rc = wstmt(t->s, W_NAME_OWNER, &st, e);
	if (rc)
		return rc;
	if (bind_text(st, 1, coll) || bind_text(st, 2, name)) {
		rc = db_err(e, t->s->wdb, "cannot read record");
		goto out;
	}
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		copy_col(id_out, ID_LEN + 1, st, 0);
	else if (r != SQLITE_DONE)
		rc = db_err(e, t->s->wdb, "cannot read record");
out:
	done(st);
	return rc;
}

int store_txn_get(struct store_txn *t, const char *collection,
		  const char *id, struct record *out, struct err *e)
{
	const struct collection *c;
	int rc;

	record_init(out);
	if (!t)
		return err_set(e, ERR_INTERNAL, "no transaction");
	rc = find_coll(t->s, collection, &c, e);
	if (rc)
		return rc;
	if (!id)
		return err_set(e, ERR_NOT_FOUND, "no %s record with id ''",
			       collection);
	return txn_get(t, c->name, id, false, out, e);
}

int store_txn_get_by_name(struct store_txn *t, const char *collection,
			  const char *name, struct record *out, struct err *e)
{
	const struct collection *c;
	int rc;

	record_init(out);
	if (!t)
		return err_set(e, ERR_INTERNAL, "no transaction");
	rc = find_coll(t->s, collection, &c, e);
	if (rc)
		return rc;
	if (!name)
		return err_set(e, ERR_NOT_FOUND, "no %s record named ''",
			       collection);
	return txn_get(t, c->name, name, true, out, e);
}

/* ---- put -------------------------------------------------------------- */

static int check_labels(const json_t *labels, struct err *e)
{
	const char *k;
	json_t *v;

	if (!json_is_object(labels))
		return err_set_field(e, ERR_INVALID, "labels",
				     "labels must be an object of strings");
	json_object_foreach((json_t *)labels, k, v) {
		if (!*k)
			return err_set_field(e, ERR_INVALID, "labels",
					     "label names must not be empty");
		if (!json_is_string(v))
			return err_set_field(e, ERR_INVALID, "labels",
					     "label '%s' must be a string", k);
	}
	return 0;
}

static int check_name(const struct collection *c, const char *name,
		      struct err *e)
{
	const char *field = c->name_field ? c->name_field : "name";
	const unsigned char *p;

	if (!name || !*name)
		return err_set_field(e, ERR_INVALID, field,
				     "record name must not be empty");
	if (strlen(name) > NAME_MAX_BYTES)
		return err_set_field(e, ERR_INVALID, field,
				     "record name '%.40s...' is longer than %d bytes",
				     name, NAME_MAX_BYTES);
	for (p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return err_set_field(e, ERR_INVALID, field,
					     "record name must not contain control characters");
	return 0;
}

/* Append one value of a unique index's tuple for a message. */
static void describe_value(struct buf *b, const json_t *v, const char *col)
{
	char *s;

	if (col || json_is_string(v)) {
		buf_putc(b, '\'');
		buf_puts(b, col ? col : json_string_value(v));
		buf_putc(b, '\'');
		return;
	}
	s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	buf_puts(b, s ? s : "null");
	free(s);
}

static const char *column_value(const struct record *r, const char *f)
{
	if (!strcmp(f, "name"))
		return r->name;
	if (!strcmp(f, "id"))
		return r->id;
	if (!strcmp(f, "created"))
		return r->created;
	return r->updated;
}

/*
 * Find which unique index of c the write of r violated (r not yet
 * written); 1 and a message in e when one is found, 0 when none, < 0 on
 * error.
 */
static int unique_index_conflict(struct store_txn *t,
				 const struct collection *c,
				 const struct index *ix,
				 const struct record *r, struct err *e)
{
	sqlite3_stmt *st = NULL;
	struct buf sql = BUF_INIT, vals = BUF_INIT;
	char other[ID_LEN + 1] = "", fields[256];
	size_t k;
	int rc = 0, b = 0, s;

	if (buf_coll(&sql, "SELECT id FROM records WHERE collection = ", c))
		goto nomem;
	for (k = 0; k < ix->nfields; k++) {
		if (buf_puts(&sql, " AND "))
			goto nomem;
		rc = index_expr(&sql, c, ix->fields[k], e);
		if (rc)
			goto out;
		if (buf_printf(&sql, " = ?%zu", k + 1))
			goto nomem;
	}
	if (buf_printf(&sql, " AND id <> ?%zu LIMIT 1", ix->nfields + 1))
		goto nomem;
	if (sqlite3_prepare_v2(t->s->wdb, sql.ptr, -1, &st, NULL) !=
	    SQLITE_OK) {
		rc = db_err(e, t->s->wdb, "cannot check unique index");
		goto out;
	}
	for (k = 0; k < ix->nfields; k++) {
		const char *f = ix->fields[k];

		if (collection_field(c, f))
			b |= bind_value(st, (int)k + 1,
					json_object_get(r->data, f));
		else
			b |= bind_text(st, (int)k + 1, column_value(r, f));
	}
	b |= bind_text(st, (int)ix->nfields + 1, r->id);
	if (b) {
		rc = db_err(e, t->s->wdb, "cannot check unique index");
		goto out;
	}
	s = sqlite3_step(st);
	if (s == SQLITE_DONE)
		goto out;
	if (s != SQLITE_ROW) {
		rc = db_err(e, t->s->wdb, "cannot check unique index");
		goto out;
	}
	copy_col(other, sizeof(other), st, 0);
	if (ix->nfields > 1)
		buf_putc(&vals, '(');
	for (k = 0; k < ix->nfields; k++) {
		const char *f = ix->fields[k];

		if (k)
			buf_puts(&vals, ", ");
		describe_value(&vals, json_object_get(r->data, f),
			       collection_field(c, f) ? NULL :
							column_value(r, f));
	}
	if (ix->nfields > 1)
		buf_putc(&vals, ')');
	index_fields(fields, sizeof(fields), ix);
	err_set_field(e, ERR_CONFLICT, ix->fields[0],
		      "value %s is not unique for %s %s: record '%s' has it",
		      vals.ptr, c->name, fields, other);
	rc = 1;
	goto out;
nomem:
	rc = nomem(e);
out:
	sqlite3_finalize(st);
	buf_release(&sql);
	buf_release(&vals);
	return rc;
}

/* Explain a UNIQUE violation from writing r (sqlmsg: SQLite's words). */
static int unique_conflict(struct store_txn *t, const struct collection *c,
			   const struct record *r, const char *sqlmsg,
			   struct err *e)
{
	char other[ID_LEN + 1];
	size_t j;
	int rc;

	rc = name_owner(t, c->name, r->name, other, e);
	if (rc)
		return rc;
	if (other[0] && strcmp(other, r->id))
		return err_set_field(e, ERR_CONFLICT, "name",
				     "name '%s' is already used by %s record '%s'",
				     r->name, c->name, other);
	for (j = 0; j < c->nindexes; j++) {
		if (!c->indexes[j].unique)
			continue;
		rc = unique_index_conflict(t, c, &c->indexes[j], r, e);
		if (rc > 0)
			return ERR_CONFLICT;
		if (rc < 0)
			return rc;
	}
	return err_set(e, ERR_CONFLICT, "%s record '%s' conflicts with another: %s",
		       c->name, r->name, sqlmsg);
}

/* Insert (create) or update the record row. Nothing is written on error. */
static int write_record(struct store_txn *t, const struct collection *c,
			const struct record *r, bool create, struct err *e)
{
	struct store *s = t->s;
	sqlite3_stmt *st;
	char sqlmsg[256];
	int rc, b = 0, step;

	rc = wstmt(s, create ? W_INSERT : W_UPDATE, &st, e);
	if (rc)
		return rc;
	b |= bind_text(st, 1, r->collection);
	b |= bind_text(st, 2, r->id);
	b |= bind_text(st, 3, r->name);
	b |= bind_json(st, 4, r->data);
	b |= bind_json(st, 5, r->labels);
	if (create) {
		b |= bind_json(st, 6, r->status);
		b |= sqlite3_bind_int64(st, 7, r->generation);
		b |= sqlite3_bind_int64(st, 8, r->revision);
		b |= bind_text(st, 9, r->created);
		b |= bind_text(st, 10, r->updated);
	} else {
		b |= sqlite3_bind_int64(st, 6, r->generation);
		b |= sqlite3_bind_int64(st, 7, r->revision);
		b |= bind_text(st, 8, r->updated);
	}
	if (b) {
		rc = db_err(e, s->wdb, "cannot write record");
		done(st);
		return rc;
	}
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		done(st);
		return 0;
	}
	if ((step & 0xff) == SQLITE_CONSTRAINT) {
		snprintf(sqlmsg, sizeof(sqlmsg), "%s", sqlite3_errmsg(s->wdb));
		done(st);
		return unique_conflict(t, c, r, sqlmsg, e);
	}
	rc = db_err(e, s->wdb, "cannot write record");
	done(st);
	return rc;
}

/* Append the change-log row of r's change (revision rev). */
static int log_change(struct store_txn *t, int64_t rev, const struct record *r,
		      const char *action, struct err *e)
{
	struct store *s = t->s;
	const struct collection *c;
	char now[TIME_LEN + 1];
	sqlite3_stmt *st;
	json_t *j;
	int rc, b = 0;

	rc = wstmt(s, W_LOG, &st, e);
	if (rc)
		return rc;
	j = record_to_json(r);
	if (!j)
		return nomem(e);
	c = schema_find(s->schema, r->collection);
	if (c && c->auth)    /* a rolled-back member only costs a re-read */
		s->batch.auth = true;
	util_now(now);
	b |= sqlite3_bind_int64(st, 1, rev);
	b |= bind_text(st, 2, r->collection);
	b |= bind_text(st, 3, r->id);
	b |= bind_text(st, 4, action);
	b |= bind_json(st, 5, j);
	b |= bind_text(st, 6, now);
	json_decref(j);
	if (b) {
		rc = db_err(e, s->wdb, "cannot append to the change log");
		done(st);
		return rc;
	}
	return run(s->wdb, st, "cannot append to the change log", e);
}

/* Every relation of data must point at an existing record. */
static int check_relations(struct store_txn *t, const struct collection *c,
			   const char *id, json_t *data, const json_t *old,
			   struct err *e)
{
	size_t i;
	int rc;

	for (i = 0; i < c->nfields; i++) {
		const struct field *f = &c->fields[i];
		json_t *v = json_object_get(data, f->name);
		const char *target;

		if (f->type != FT_RELATION || !json_is_string(v) ||
		    !json_string_length(v))
			continue;
		if (old && json_equal(v, json_object_get(old, f->name)))
			continue;       /* checked when it was written */
		target = json_string_value(v);
		if (!strcmp(f->target, c->name) && !strcmp(target, id))
			continue;       /* points at itself */
		rc = txn_exists(t, f->target, target, e);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return err_set_field(e, ERR_INVALID, f->name,
					     "no %s record with id '%s'",
					     f->target, target);
	}
	return 0;
}

int store_txn_put(struct store_txn *t, const struct store_put *p,
		  struct record *out, enum store_action *act, struct err *e)
{
	const struct collection *c = NULL;
	struct record cur, nr;
	struct err le = ERR_INIT;
	json_t *in = NULL, *norm = NULL;
	const char *key = NULL, *name = NULL;
	char other[ID_LEN + 1];
	bool have = false, by_id;
	int rc;

	record_init(&cur);
	record_init(&nr);
	if (out)
		record_init(out);
	if (act)
		*act = STORE_UNCHANGED;
	if (!t || !p)
		return err_set(e, ERR_INTERNAL, "store_txn_put: no transaction");
	rc = find_coll(t->s, p->collection, &c, e);
	if (rc)
		return rc;
	if (p->data && !json_is_object(p->data))
		return err_set_field(e, ERR_INVALID, "data",
				     "record data must be a JSON object");
	if (p->labels) {
		rc = check_labels(p->labels, e);
		if (rc)
			return rc;
	}

	/* Find the record the put is about: by id, else by name. */
	by_id = p->id && *p->id;
	if (by_id) {
		if (!util_valid_id(p->id))
			return err_set_field(e, ERR_INVALID, "id",
					     "invalid record id '%s': want %d characters of [a-z0-9]",
					     p->id, ID_LEN);
		key = p->id;
	} else if (p->name && *p->name) {
		key = p->name;
	} else if (c->name_field) {
		key = json_string_value(json_object_get(p->data,
							c->name_field));
	}
	if (key && *key) {
		rc = txn_get(t, c->name, key, !by_id, &cur, e);
		if (rc && rc != ERR_NOT_FOUND)
			goto out;
		have = rc == 0;
		rc = 0;
	}
	if (p->mode == STORE_CREATE && have) {
		rc = err_set_field(e, ERR_CONFLICT, by_id ? "id" : "name",
				   "%s record '%s' already exists", c->name,
				   key);
		goto out;
	}
	if (p->mode == STORE_UPDATE && !have) {
		rc = key && *key ? err_set(e, ERR_NOT_FOUND, by_id ?
					   "no %s record with id '%s'" :
					   "no %s record named '%s'",
					   c->name, key) :
				   err_set(e, ERR_NOT_FOUND,
					   "no %s record given to update",
					   c->name);
		goto out;
	}
	if (p->if_revision > 0 && (!have || cur.revision != p->if_revision)) {
		rc = have ? err_set(e, ERR_PRECONDITION,
				    "record '%s' is at revision %lld, not %lld",
				    cur.name, (long long)cur.revision,
				    (long long)p->if_revision) :
			    err_set(e, ERR_PRECONDITION,
				    "record '%s' does not exist, so it is not at revision %lld",
				    key ? key : "", (long long)p->if_revision);
		goto out;
	}

	/* Identity of the result. */
	if (have)
		memcpy(nr.id, cur.id, sizeof(nr.id));
	else if (by_id)
		snprintf(nr.id, sizeof(nr.id), "%s", p->id);
	else
		util_new_record_id(nr.id);
	snprintf(nr.collection, sizeof(nr.collection), "%s", c->name);

	/* Normalise; a given name fills a name field the data leaves out. */
	in = p->data ? json_incref(p->data) : json_object();
	if (!in)
		goto nomem;
	if (c->name_field && p->name && *p->name &&
	    !json_object_get(in, c->name_field)) {
		json_t *copy = json_copy(in);

		json_decref(in);
		in = copy;
		if (!in || json_object_set_new(in, c->name_field,
					       json_string(p->name)))
			goto nomem;
	}
	rc = schema_normalize(c, in, p->partial && have ? cur.data : NULL,
			      &norm, e);
	if (rc)
		goto out;
	if (c->name_field) {
		name = json_string_value(json_object_get(norm, c->name_field));
		if (name && p->name && *p->name && strcmp(name, p->name)) {
			rc = err_set_field(e, ERR_INVALID, c->name_field,
					   "value '%s' differs from the record name '%s'",
					   name, p->name);
			goto out;
		}
	} else {
		name = p->name && *p->name ? p->name : have ? cur.name : nr.id;
	}
	rc = check_name(c, name, e);
	if (rc)
		goto out;

	nr.name = strdup(name);
	nr.data = norm;
	norm = NULL;
	nr.labels = p->labels ? json_deep_copy(p->labels) :
		    have ? json_incref(cur.labels) : json_object();
	nr.status = have ? json_incref(cur.status) : json_object();
	if (!nr.name || !nr.labels || !nr.status)
		goto nomem;

	if (have && !strcmp(nr.name, cur.name) &&
	    json_equal(nr.data, cur.data) && json_equal(nr.labels, cur.labels)) {
		if (out) {
			*out = cur;
			record_init(&cur);
		}
		goto out;       /* unchanged: nothing written */
	}
	if (!have || strcmp(nr.name, cur.name)) {
		rc = name_owner(t, c->name, nr.name, other, e);
		if (rc)
			goto out;
		if (other[0] && strcmp(other, nr.id)) {
			rc = err_set_field(e, ERR_CONFLICT, "name",
					   "name '%s' is already used by %s record '%s'",
					   nr.name, c->name, other);
			goto out;
		}
	}
	rc = check_relations(t, c, nr.id, nr.data, have ? cur.data : NULL, e);
	if (rc)
		goto out;

	/* Write the record, then its change-log row. */
	util_now(nr.updated);
	memcpy(nr.created, have ? cur.created : nr.updated, sizeof(nr.created));
	nr.generation = have ? cur.generation + 1 : 1;
	nr.revision = t->next_rev;
	rc = write_record(t, c, &nr, !have, e);
	if (rc)
		goto out;
	rc = log_change(t, nr.revision, &nr, have ? "update" : "create", &le);
	if (rc) {
		rc = poison(t, rc, &le, e);
		goto out;
	}
	t->next_rev++;
	if (act)
		*act = have ? STORE_UPDATED : STORE_CREATED;
	if (out) {
		*out = nr;
		record_init(&nr);
	}
	goto out;
nomem:
	rc = nomem(e);
out:
	json_decref(in);
	json_decref(norm);
	record_release(&cur);
	record_release(&nr);
	return rc;
}

int store_txn_patch(struct store_txn *t, struct record *rec, json_t *data,
		    struct err *e)
{
	struct store_put p;
	struct record now;
	int rc;

	if (!data)
		return nomem(e);
	record_init(&now);
	memset(&p, 0, sizeof(p));
	p.collection = rec->collection;
	p.id = rec->id;
	p.data = data;
	p.partial = true;
	p.mode = STORE_UPDATE;
	rc = store_txn_put(t, &p, &now, NULL, e);
	json_decref(data);
	if (rc)
		return rc;
	record_release(rec);
	*rec = now;
	return 0;
}

/* ---- delete ----------------------------------------------------------- */

struct del_plan {
	json_t *seen;    /* "collection/id" -> true: in the delete set */
	json_t *order;   /* [collection, id] pairs, referrers first */
	json_t *refs;    /* non-cascade references found: checked at the end */
};

/* Ids of records of rc whose relation field f points at id. */
static int referrers(struct store_txn *t, size_t ci, size_t fi,
		     const char *id, json_t *ids, struct err *e)
{
	struct store *s = t->s;
	const struct collection *rc_ = &s->schema->collections[ci];
	sqlite3_stmt **slot = &s->refst[s->fbase[ci] + fi];
	struct buf sql = BUF_INIT;
	int rc = 0, r;

	if (!*slot) {
		if (buf_coll(&sql, "SELECT id FROM records WHERE collection = ",
			     rc_) ||
		    buf_printf(&sql, " AND json_extract(data, '$.%s') = ?1",
			       rc_->fields[fi].name)) {
			buf_release(&sql);
			return nomem(e);
		}
		rc = prep(s->wdb, slot, sql.ptr, e);
		buf_release(&sql);
		if (rc)
			return rc;
	}
	if (bind_text(*slot, 1, id)) {
		rc = db_err(e, s->wdb, "cannot find referring records");
		goto out;
	}
	while ((r = sqlite3_step(*slot)) == SQLITE_ROW) {
		const char *rid = (const char *)sqlite3_column_text(*slot, 0);

		if (rid && json_array_append_new(ids, json_string(rid))) {
			rc = nomem(e);
			goto out;
		}
	}
	if (r != SQLITE_DONE)
		rc = db_err(e, s->wdb, "cannot find referring records");
out:
	done(*slot);
	return rc;
}

static int plan_key(char *out, size_t size, const char *coll, const char *id)
{
	return snprintf(out, size, "%s/%s", coll, id) >= (int)size ? -1 : 0;
}

/* Add (c, id) and, first, everything that cascades from it to the plan. */
static int plan_delete(struct store_txn *t, const struct collection *c,
		       const char *id, struct del_plan *d, int depth,
		       struct err *e)
{
	const struct schema *sc = t->s->schema;
	char key[128];
	json_t *ids = NULL, *v;
	size_t ci, fi, k;
	int rc = 0;

	if (plan_key(key, sizeof(key), c->name, id))
		return err_set(e, ERR_INVALID, "invalid record id '%s'", id);
	if (json_object_get(d->seen, key))
		return 0;
	if (depth > CASCADE_MAX_DEPTH)
		return err_set(e, ERR_CONFLICT,
			       "cascade delete from %s record '%s' is deeper than %d levels",
			       c->name, id, CASCADE_MAX_DEPTH);
	if (json_object_set_new(d->seen, key, json_true()))
		return nomem(e);
	for (ci = 0; ci < sc->ncollections; ci++) {
		const struct collection *rc_ = &sc->collections[ci];

		for (fi = 0; fi < rc_->nfields; fi++) {
			const struct field *f = &rc_->fields[fi];

			if (f->type != FT_RELATION ||
			    strcmp(f->target, c->name))
				continue;
			json_decref(ids);
			ids = json_array();
			if (!ids) {
				rc = nomem(e);
				goto out;
			}
			rc = referrers(t, ci, fi, id, ids, e);
			if (rc)
				goto out;
			json_array_foreach(ids, k, v) {
				const char *rid = json_string_value(v);

				if (rc_ == c && !strcmp(rid, id))
					continue;       /* itself */
				if (f->cascade) {
					rc = plan_delete(t, rc_, rid, d,
							 depth + 1, e);
					if (rc)
						goto out;
					continue;
				}
				if (json_array_append_new(d->refs,
					json_pack("{s:s,s:s,s:s,s:s,s:s}",
						  "coll", rc_->name,
						  "field", f->name, "id", rid,
						  "tcoll", c->name,
						  "tid", id))) {
					rc = nomem(e);
					goto out;
				}
			}
		}
	}
	if (json_array_append_new(d->order,
				  json_pack("[s,s]", c->name, id)))
		rc = nomem(e);
out:
	json_decref(ids);
	return rc;
}

/* The record name for messages (the id when it cannot be read). */
static void name_for(struct store_txn *t, const char *coll, const char *id,
		     char *out, size_t size)
{
	struct record r;

	if (txn_get(t, coll, id, false, &r, NULL) == 0)
		snprintf(out, size, "%s", r.name);
	else
		snprintf(out, size, "%s", id);
	record_release(&r);
}

/* Delete one record row with its change-log row and apply-set rows. */
static int delete_one(struct store_txn *t, const char *coll, const char *id,
		      struct err *e)
{
	struct store *s = t->s;
	struct record r;
	sqlite3_stmt *st;
	int rc;

	rc = txn_get(t, coll, id, false, &r, e);
	if (rc)
		return rc;
	rc = wstmt(s, W_DELETE, &st, e);
	if (rc)
		goto out;
	if (bind_text(st, 1, coll) || bind_text(st, 2, id)) {
		done(st);
		rc = db_err(e, s->wdb, "cannot delete record");
		goto out;
	}
	rc = run(s->wdb, st, "cannot delete record", e);
	if (rc)
		goto out;
	rc = wstmt(s, W_FORGET, &st, e);
	if (rc)
		goto out;
	if (bind_text(st, 1, coll) || bind_text(st, 2, id)) {
		done(st);
		rc = db_err(e, s->wdb, "cannot delete record");
		goto out;
	}
	rc = run(s->wdb, st, "cannot delete record", e);
	if (rc)
		goto out;
	rc = log_change(t, t->next_rev, &r, "delete", e);
	if (!rc)
		t->next_rev++;
out:
	record_release(&r);
	return rc;
}

int store_txn_delete(struct store_txn *t, const char *collection,
		     const char *id, int64_t if_revision, struct err *e)
{
	const struct collection *c;
	struct del_plan d = { NULL, NULL, NULL };
	struct record r;
	struct err le = ERR_INIT;
	char tname[NAME_MAX_BYTES + 1], rname[NAME_MAX_BYTES + 1];
	json_t *v;
	size_t i;
	int rc;

	record_init(&r);
	if (!t)
		return err_set(e, ERR_INTERNAL, "no transaction");
	rc = find_coll(t->s, collection, &c, e);
	if (rc)
		return rc;
	if (!id || !util_valid_id(id))
		return err_set(e, ERR_NOT_FOUND, "no %s record with id '%s'",
			       c->name, id ? id : "");
	rc = txn_get(t, c->name, id, false, &r, e);
	if (rc)
		goto out;
	if (if_revision > 0 && r.revision != if_revision) {
		rc = err_set(e, ERR_PRECONDITION,
			     "record '%s' is at revision %lld, not %lld", r.name,
			     (long long)r.revision, (long long)if_revision);
		goto out;
	}
	d.seen = json_object();
	d.order = json_array();
	d.refs = json_array();
	if (!d.seen || !d.order || !d.refs) {
		rc = nomem(e);
		goto out;
	}
	rc = plan_delete(t, c, id, &d, 0, e);
	if (rc)
		goto out;
	json_array_foreach(d.refs, i, v) {
		const char *rcoll = json_string_value(json_object_get(v, "coll"));
		const char *rid = json_string_value(json_object_get(v, "id"));
		const char *tcoll = json_string_value(json_object_get(v, "tcoll"));
		const char *tid = json_string_value(json_object_get(v, "tid"));
		char key[128];

		if (plan_key(key, sizeof(key), rcoll, rid) == 0 &&
		    json_object_get(d.seen, key))
			continue;       /* deleted by the same cascade */
		name_for(t, tcoll, tid, tname, sizeof(tname));
		name_for(t, rcoll, rid, rname, sizeof(rname));
		rc = err_set(e, ERR_CONFLICT,
			     "record '%s' is referenced by %s.%s of '%s'",
			     tname, rcoll,
			     json_string_value(json_object_get(v, "field")),
			     rname);
		goto out;
	}
	json_array_foreach(d.order, i, v) {
		rc = delete_one(t, json_string_value(json_array_get(v, 0)),
				json_string_value(json_array_get(v, 1)), &le);
		if (rc) {
			rc = poison(t, rc, &le, e);
			goto out;
		}
	}
out:
	json_decref(d.seen);
	json_decref(d.order);
	json_decref(d.refs);
	record_release(&r);
	return rc;
}

/* ---- status ----------------------------------------------------------- */

int store_txn_set_status(struct store_txn *t, const char *collection,
			 const char *id, json_t *status, struct err *e)
{
	const struct collection *c;
	struct record r;
	struct err le = ERR_INIT;
	sqlite3_stmt *st;
	int rc, b = 0;

	record_init(&r);
	if (!t)
		return err_set(e, ERR_INTERNAL, "no transaction");
	rc = find_coll(t->s, collection, &c, e);
	if (rc)
		return rc;
	if (!json_is_object(status))
		return err_set_field(e, ERR_INVALID, "status",
				     "status must be a JSON object");
	if (!id)
		return err_set(e, ERR_NOT_FOUND, "no %s record with id ''",
			       c->name);
	rc = txn_get(t, c->name, id, false, &r, e);
	if (rc)
		goto out;
	if (json_equal(status, r.status))
		goto out;
	json_decref(r.status);
	r.status = json_deep_copy(status);
	if (!r.status) {
		rc = nomem(e);
		goto out;
	}
	r.revision = t->next_rev;
	rc = wstmt(t->s, W_STATUS, &st, e);
	if (rc)
		goto out;
	b |= bind_text(st, 1, r.collection);
	b |= bind_text(st, 2, r.id);
	b |= bind_json(st, 3, r.status);
	b |= sqlite3_bind_int64(st, 4, r.revision);
	if (b) {
		done(st);
		rc = db_err(e, t->s->wdb, "cannot write status");
		goto out;
	}
	rc = run(t->s->wdb, st, "cannot write status", e);
	if (rc)
		goto out;
	/* "status": an update of the status alone (see store_change). */
	rc = log_change(t, r.revision, &r, "status", &le);
	if (rc) {
		rc = poison(t, rc, &le, e);
		goto out;
	}
	t->next_rev++;
out:
	record_release(&r);
	return rc;
}

/* ---- apply sets ------------------------------------------------------- */

int store_txn_applyset_get(struct store_txn *t, const char *name,
			   json_t **members, struct err *e)
{
	sqlite3_stmt *st = NULL;
	json_t *arr = NULL;
	int rc, r;

	*members = NULL;
	if (!t || !name)
		return err_set(e, ERR_INTERNAL, "store_txn_applyset_get: bad call");
	rc = wstmt(t->s, W_SET_GET, &st, e);
	if (rc)
		return rc;
	arr = json_array();
	if (!arr) {
		rc = nomem(e);
		goto out;
	}
	if (bind_text(st, 1, name)) {
		rc = db_err(e, t->s->wdb, "cannot read apply set");
		goto out;
	}
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *coll = (const char *)sqlite3_column_text(st, 0);
		const char *id = (const char *)sqlite3_column_text(st, 1);

		if (!coll || !id)
			continue;
		if (json_array_append_new(arr, json_pack("{s:s,s:s}",
							 "collection", coll,
							 "id", id))) {
			rc = nomem(e);
			goto out;
		}
	}
	if (r != SQLITE_DONE)
		rc = db_err(e, t->s->wdb, "cannot read apply set");
out:
	done(st);
	if (rc)
		json_decref(arr);
	else
		*members = arr;
	return rc;
}

int store_txn_applyset_put(struct store_txn *t, const char *name,
			   json_t *members, struct err *e)
{
	struct err le = ERR_INIT;
	sqlite3_stmt *st;
	json_t *m;
	size_t i;
	int rc;

	if (!t || !name || !*name)
		return err_set(e, ERR_INVALID, "apply set needs a name");
	if (!json_is_array(members))
		return err_set(e, ERR_INVALID,
			       "apply set '%s': members must be an array", name);
	json_array_foreach(members, i, m) {
		if (!json_is_string(json_object_get(m, "collection")) ||
		    !json_is_string(json_object_get(m, "id")))
			return err_set(e, ERR_INVALID,
				       "apply set '%s': member %zu needs string collection and id",
				       name, i);
	}
	rc = wstmt(t->s, W_SET_CLEAR, &st, e);
	if (rc)
		return rc;
	if (bind_text(st, 1, name)) {
		done(st);
		return db_err(e, t->s->wdb, "cannot write apply set");
	}
	rc = run(t->s->wdb, st, "cannot write apply set", e);
	if (rc)
		return rc;
	json_array_foreach(members, i, m) {
		rc = wstmt(t->s, W_SET_ADD, &st, &le);
		if (!rc && (bind_text(st, 1, name) ||
			    bind_text(st, 2, json_string_value(
					  json_object_get(m, "collection"))) ||
			    bind_text(st, 3, json_string_value(
					  json_object_get(m, "id"))))) {
			done(st);
			rc = db_err(&le, t->s->wdb, "cannot write apply set");
		}
		if (!rc)
			rc = run(t->s->wdb, st, "cannot write apply set", &le);
		if (rc)
			return poison(t, rc, &le, e);
	}
	return 0;
}

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
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	json_t *args = q ? q->args : NULL, *v;
	const char *order;
	size_t i, nargs;
	int rc = 0, b;
	bool paged;

	*out = NULL;
	if (args && !json_is_array(args))
		return err_set(e, ERR_INVALID, "query arguments must be an array");
	nargs = args ? json_array_size(args) : 0;
	order = q && q->order && *q->order ? q->order : "created, id";
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
	if (q && q->where && *q->where &&
	    buf_printf(&sql, " AND (%s)", q->where))
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
	if (rc)
		query_done(cache, st);
	else
		*out = st;
	return rc;
}

/* Walk the records of c matching q on db (cache: its statement cache, or
 * NULL). */
static int list_on(sqlite3 *db, struct rconn *cache,
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
	rc = list_on(conn->db, conn, c, q, fn, arg, e);
	rconn_put(s, conn);
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
		rc = fn(&row, arg);
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
	return rc ? rc : list_on(t->s->wdb, NULL, c, q, fn, arg, e);
}

/* The count cache's key of a query: "collection\nwhere\nargs". Caller
 * frees; NULL when out of memory. */
static char *count_key(const char *collection, const struct store_query *q)
{
	struct buf key = BUF_INIT;
	char *args = q && q->args ? json_dumps(q->args, JSON_COMPACT |
					      JSON_ENCODE_ANY) : NULL;

	if (q && q->args && !args)
		return NULL;
	if (buf_printf(&key, "%s\n%s\n%s", collection,
		       q && q->where ? q->where : "", args ? args : "[]")) {
		buf_release(&key);
		key.ptr = NULL;
	}
	free(args);
	return key.ptr;
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
		ch.status_only = ch.action && !strcmp(ch.action, "status");
		if (ch.status_only)
			ch.action = "update";
		ch.record_len = text ? (size_t)sqlite3_column_bytes(st, 4) : 0;
		ch.record = text ? json_loadb(text, ch.record_len, 0, NULL) :
				   NULL;
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
