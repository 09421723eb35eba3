/*
 * store_int.h - private to the parts of the SQLite store (store_open.c,
 * store_txn.c, store_write.c, store_read.c): struct store and its
 * transaction, the cached statements, the small helpers every part uses and
 * the functions one part defines for the others. Nothing outside
 * controller/store/store_*.c includes it; store.h stays the public seam.
 *
 * The store as a whole: one write connection, serialised by wlock (taken in store_begin(),
 * released by store_commit()/store_abort()), and a pool of up to POOL_MAX
 * read-only connections for reads outside a transaction. Transactions run
 * as savepoints inside a shared SQLite transaction, the batch, that is
 * committed and made durable for many of them at once (group commit, see
 * store_txn.c). A transaction numbers its changes from the head
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
 * a leaf: nothing else is taken while it is held. Read connections are
 * handed out under plock; a thread that already holds one (inside a
 * store_list()/store_changes() callback) gets the same one back, so nested
 * reads never wait on themselves. Do not call store_begin() from such a callback: the writer
 * could then wait for a read connection held by a thread waiting for it.
 * s->head is atomic so store_head() takes no lock.
 */
#ifndef POCKETCTL_STORE_INT_H
#define POCKETCTL_STORE_INT_H

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
	W_NAME_OWNER, W_EXISTS, W_INSERT, W_UPDATE, W_STATUS, W_LOG, W_LOG_AMEND,
	W_DELETE, W_FORGET, W_TRIM, W_SET_GET, W_SET_CLEAR, W_SET_ADD,
	W_OWN_GET, W_OWN_PUT, W_OWN_DEL, W_DIG_NAME,
	W_DIG_MATCH, W_DIG_PUT, W_DIG_ANY, W_TEXT_FIND,
	W_TEXT_PUT, W_TEXT_ANY, W_RENAMES,
	W__COUNT
};


/* Cached statements of each read connection. */
enum rst { R_GET_ID, R_GET_NAME, R_CHANGES, R_CHANGE_KEYS, R_OLDEST, R_HEAD,
	   R__COUNT };


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
	char actor_id[64];       /* store_txn_set_actor()'s id, copied */
	struct store_actor actor;    /* what the write hooks see */
	char writer[STORE_WRITER_MAX]; /* the change log's actor for its
	                          * changes (store_txn_set_writer()) */
	bool in_hook;            /* a write hook runs: its puts run none */
	int64_t amend_rev;       /* the revision of the put whose hook runs,
	                          * which store_txn_amend() may amend; 0:
	                          * none (an unchanged put) */
	bool amending;           /* store_txn_amend()'s put is under way */
};

/* A queued store_write(): on its caller's stack until state is WREQ_RAN. */
struct wreq {
	struct wreq *next;
	store_write_fn fn;
	void *arg;
	const char *writer;      /* the caller's thread writer (borrowed:
	                          * the caller waits while it is used) */
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
	unsigned char seal_key[32];  /* store_seal.c: AES-256-GCM key */
	char seal_path[4096];        /* the key file it came from */

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

static inline int nomem(struct err *e)
{
	return err_set(e, ERR_NOMEM, "out of memory");
}

/* Turn the connection's last error into an ERR_* code and message. */
static inline int db_err(struct err *e, sqlite3 *db, const char *what)
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
static inline int prep(sqlite3 *db, sqlite3_stmt **slot, const char *sql,
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

static inline void done(sqlite3_stmt *st)
{
	if (!st)
		return;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Step st to completion (no rows expected) and reset it. */
static inline int run(sqlite3 *db, sqlite3_stmt *st, const char *what,
	       struct err *e)
{
	int rc = 0;

	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_err(e, db, what);
	done(st);
	return rc;
}

static inline int exec(sqlite3 *db, const char *sql, struct err *e)
{
	char *msg = NULL;
	int rc;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	rc = db_err(e, db, "cannot run SQL");
	sqlite3_free(msg);
	return rc;
}

static inline int bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* store_text.c: the compact JSON text of v, as json_dumps(v,
 * JSON_COMPACT | JSON_ENCODE_ANY) writes it - text_of() as a malloc'd
 * string (NULL on no memory), text_add() appended to b (-1 on no memory);
 * text_plain(): s[0..n) goes into a JSON string as it is (no quote,
 * backslash or control character). */
bool text_plain(const char *s, size_t n);
int text_add(struct buf *b, const json_t *v);
char *text_of(const json_t *v);

/* Bind the compact JSON text of v; SQLite frees it. */
static inline int bind_json(sqlite3_stmt *st, int i, const json_t *v)
{
	char *s = text_of(v);

	if (!s)
		return SQLITE_NOMEM;
	return sqlite3_bind_text(st, i, s, -1, free);
}

/* Bind a JSON scalar the way json_extract() would return it; objects and
 * arrays bind as their compact text. */
static inline int bind_value(sqlite3_stmt *st, int i, const json_t *v)
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


/* ---- shared by the parts (defined in the part named) ------------------ */

/* store_open.c */
extern const char *const wsql[W__COUNT];
extern const char *const rsql[R__COUNT];
int query_int(sqlite3 *db, sqlite3_stmt *cached, const char *sql,
	      int64_t *out, bool *isnull, struct err *e);
int index_expr(struct buf *b, const struct collection *c, const char *f,
	       struct err *e);
int buf_coll(struct buf *b, const char *prefix, const struct collection *c);
void index_fields(char *out, size_t size, const struct index *ix);
int copy_col(char *dst, size_t size, sqlite3_stmt *st, int col);
int record_from_row(sqlite3_stmt *st, struct record *r, struct err *e);
int get_row(sqlite3 *db, sqlite3_stmt *st, const char *coll, const char *key,
	    bool by_name, struct record *out, struct err *e);
int find_coll(const struct store *s, const char *name,
	      const struct collection **out, struct err *e);
/* ---- store_seal.c: secret fields encrypted at rest ---- */

/*
 * At open (after the database is open and migrated): derive the key from
 * key_file, NULL meaning DIR/secret.key (created when missing and the store holds no encrypted
 * value; refused, naming the file, when missing while it does, or when
 * the key does not open the store's values), then, read-write, seal the
 * plaintext secret values an older version left in records and change
 * log and VACUUM. Returns 0 or the error with e set; nothing is changed
 * on error.
 */
int seal_open(struct store *s, const char *key_file, struct err *e);

/* Wipe the key (store_close). */
void seal_close(struct store *s);

/*
 * data with each secret field of coll's schema sealed (a new reference:
 * data itself when there is nothing to seal, else a shallow copy with the
 * values replaced). NULL with e set on failure.
 */
json_t *seal_data(struct store *s, const char *coll, const char *id,
		  json_t *data, struct err *e);

/* Open the sealed secret fields of data in place; plaintext ones (an
 * older version's, not yet migrated) are left. ERR_DB naming the field
 * and the key file when one does not open. */
int unseal_data(struct store *s, const char *coll, const char *id,
		json_t *data, struct err *e);

/* unseal_data() on r->data. */
int unseal_record(struct store *s, struct record *r, struct err *e);

/*
 * A stored row's data text with its secrets opened: *out is NULL when the
 * text holds none to open (use text as it is), else a new compact JSON
 * text the caller frees. Same errors as unseal_data().
 */
int unseal_row_text(struct store *s, const struct collection *c,
		    const char *id, const char *text, size_t len, char **out,
		    struct err *e);

int rconn_get(struct store *s, struct rconn **out, struct err *e);
void rconn_put(struct store *s, struct rconn *c);
int rstmt(struct rconn *c, enum rst k, sqlite3_stmt **out, struct err *e);
int wstmt(struct store *s, enum wst k, sqlite3_stmt **out, struct err *e);

/* store_txn.c */
void batch_close(struct store *s);
void txn_rollback(struct store_txn *t);
int poison(struct store_txn *t, int rc, const struct err *le, struct err *e);
int txn_get(struct store_txn *t, const char *coll, const char *key,
	    bool by_name, struct record *out, struct err *e);
int txn_exists(struct store_txn *t, const char *coll, const char *id,
	       struct err *e);
int name_owner(struct store_txn *t, const char *coll, const char *name,
	       char id_out[ID_LEN + 1], struct err *e);

/* store_owners.c: note t's actor as the owner of the top-level fields of
 * after that differ from before (NULL: a create; its non-zero fields).
 * Nothing for a declaring actor (apply keeps its own). */
int owners_note(struct store_txn *t, const struct collection *c,
		const struct record *before, const struct record *after,
		struct err *e);
/* store_owners.c: ERR_INVALID naming the field when an owner in owners is
 * not a non-empty string. */
int owners_check(const json_t *owners, struct err *e);

#endif
