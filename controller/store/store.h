/*
 * store.h - the record store: SQLite (WAL) holding every record, a change
 * log, and one global revision counter.
 *
 * A record is (collection, id, name, data, labels, status, generation,
 * revision, created, updated). Every change - create, update, status change,
 * delete, cascade delete - appends one row to the change log in the same
 * transaction; the change log's row id IS the new revision, so revisions are
 * strictly increasing and gap-free in commit order. generation bumps only
 * when field data or labels change; revision bumps on every change.
 *
 * Writes go through a transaction (git refs style calling sequence):
 *
 *     store_begin()  ->  store_txn_put()/_delete()/_set_status() ...
 *                    ->  store_commit()   (or store_abort())
 *
 * Every put is validated against the schema (schema_normalize), relation
 * targets must exist (inside the same transaction, so records created earlier
 * in it count), unique indexes and record names are enforced, and a rejected
 * write names the field and changes nothing: the caller aborts, and nothing
 * of the transaction is kept.
 *
 * Group commit: transactions of concurrent threads share one SQLite COMMIT
 * (one fsync). Each runs alone, in its own savepoint, inside a batch that
 * stays open while other writers are queued (up to a size and time bound);
 * store_commit() returns once the batch's COMMIT is durable, and a failed
 * COMMIT fails every transaction of the batch. A writer alone commits at
 * once, without waiting.
 *
 * THREAD SAFETY NOTES: a struct store may be used from any number of threads.
 * Writers are serialised by an in-process mutex taken in store_begin() and
 * released by store_commit()/store_abort(), so SQLite never answers BUSY to a
 * user; a transaction belongs to the thread that began it. store_commit()
 * may wait for the other transactions of its batch to end, so never hold a
 * lock across store_commit() that another thread may need before it ends
 * its own transaction, and keep transactions short (no I/O, no sleeping):
 * the batch they joined waits for them. Reads outside a transaction use a
 * small pool of read-only connections and see the last committed state (WAL
 * snapshot isolation), which may run up to one fsync ahead of what is
 * durable; store_head() and store_changes() only show durable changes.
 *
 * Queries (store_query) are backend-neutral values (query.h): a predicate
 * tree and a sort list, which the store spells in its own query language.
 */
#ifndef POCKETCTL_STORE_H
#define POCKETCTL_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "query.h"
#include "schema.h"
#include "util.h"

struct store;
struct store_txn;

struct store_options {
	const char *dir;             /* data directory; created (0700) when
	                              * missing; the database is DIR/pocket.db */
	int64_t changelog_keep;      /* change-log rows retained; 0 = 100000 */
	bool read_only;              /* open for reading only (CLI get/diff) */
	const char *key_file;        /* the key of the secret fields at rest;
	                              * NULL = DIR/secret.key (serve
	                              * --secret-key, POCKETCTL_SECRET_KEY_FILE) */
};

/* One record. A value type: fill with store_get() etc., free with
 * record_release(). */
struct record {
	char collection[64];
	char id[ID_LEN + 1];
	char *name;                  /* owned */
	json_t *data;                /* owned reference; every schema field */
	json_t *labels;              /* owned reference; object of strings */
	json_t *status;              /* owned reference; object, {} when none */
	int64_t generation;
	int64_t revision;
	char created[TIME_LEN + 1];
	char updated[TIME_LEN + 1];
};

void record_init(struct record *r);
void record_release(struct record *r);   /* accepts NULL; leaves r empty */

/*
 * The record as one JSON object: {collection, id, name, labels, data, status,
 * generation, revision, created, updated}. This is the form stored in the
 * change log. Caller owns the result (json_decref).
 */
json_t *record_to_json(const struct record *r);

/* record_to_json() without c's hidden fields in "data", for output. r is
 * borrowed and left as is (the data object is a shallow copy). NULL when
 * out of memory. */
json_t *record_to_public_json(const struct collection *c,
			      const struct record *r);

enum store_action {
	STORE_UNCHANGED = 0,
	STORE_CREATED,
	STORE_UPDATED,
	STORE_DELETED,
};
const char *store_action_name(enum store_action a); /* "created", ... */

/*
 * Open (creating if needed) the store in o->dir, running any pending
 * migrations from schema/migrations and creating the schema's unique
 * indexes. The schema is borrowed and must outlive the store.
 * Caller owns *out (free with store_close()). Read-write opens make o->dir
 * 0700 and the store's files 0600, whatever they were. A file that is
 * damaged, not a database, or another application's database is
 * ERR_DB naming it and what to do, and is left byte for byte as it was.
 *
 * Secret fields (schema "secret": true) are stored encrypted, in records
 * and change log alike (AES-256-GCM, a key derived from o->key_file or
 * o->dir/secret.key, created 0600 when missing; see store_seal.c); every
 * read returns them decrypted. An older directory's plaintext secret values are encrypted
 * at a read-write open and the file vacuumed. Refused with ERR_FORBIDDEN
 * naming the key file, changing nothing, when the key file is missing
 * while the store holds encrypted values, or does not decrypt them.
 */
int store_open(struct store **out, const struct schema *schema,
	       const struct store_options *o, struct err *e);

/* Checkpoint and close. Accepts NULL. No transaction may be open and no
 * other thread may still be calling into s (a batch still being committed
 * is waited for). */
void store_close(struct store *s);

const struct schema *store_schema(const struct store *s);

/* The schema version recorded in the data directory, and the store's own
 * SQL migration level. */
int store_schema_version(struct store *s);
int store_migration_level(struct store *s);

/* ---- transactions ---------------------------------------------------- */

/* Take the writer lock (blocking) and start a transaction (a savepoint in
 * the open batch, which starts with BEGIN IMMEDIATE). ERR_INTERNAL when the
 * calling thread already has one open; ERR_IO for good once the store
 * failed to sync its log to disk (restart the process). Caller owns *out:
 * the same thread must take it to store_commit() or store_abort(). */
int store_begin(struct store *s, struct store_txn **out, struct err *e);

/* Commit and free t. Returns 0 once t's changes (and everything t read)
 * are durable on disk, which may mean waiting for the other transactions
 * of its batch. On error (t's own, or the batch's COMMIT failing) nothing
 * of t was kept, and t is freed. */
int store_commit(struct store_txn *t, struct err *e);

/* Roll back and free t (only t: the rest of its batch is not affected).
 * Accepts NULL. */
void store_abort(struct store_txn *t);

/*
 * Run fn(t, arg, e) as one transaction and commit it: store_begin(), fn,
 * then store_commit() (store_abort() when fn returns non-zero), combined.
 * Callers queue their fn, and whichever of them holds the writer lock runs
 * every queued fn back to back in its batch, so a burst of writers does
 * not pass the lock from thread to thread, and each caller wakes once its
 * write is durable (or failed). fn runs on whichever writer's thread
 * combines, with t open: it must use only t, arg and what they reach,
 * must not begin another transaction and must not depend on the thread.
 * Returns fn's non-zero result (e as fn set it), or store_commit()'s.
 */
typedef int (*store_write_fn)(struct store_txn *t, void *arg, struct err *e);
int store_write(struct store *s, store_write_fn fn, void *arg, struct err *e);

/* Group-commit counters since store_open(). */
struct store_stats {
	int64_t commits;     /* store_commit() calls that succeeded */
	int64_t failed;      /* store_commit() calls that failed */
	int64_t batches;     /* SQLite COMMITs that made them durable */
	int64_t max_batch;   /* most transactions in one COMMIT */
	int64_t syncs;       /* fdatasync() calls that made batches durable */
};
void store_stats(struct store *s, struct store_stats *out);

/*
 * The call that makes the WAL durable: fdatasync(2). Tests replace it to
 * play a disk that fails (the real one cannot be made to); set it only
 * while no store is open. A failure breaks the store: the writes it
 * covered and every later one fail, and no later success makes them
 * durable.
 */
extern int (*store_wal_sync)(int fd);

enum store_put_mode {
	STORE_UPSERT = 0,   /* create when absent, update when present */
	STORE_CREATE,       /* ERR_CONFLICT when a record with that id/name exists */
	STORE_UPDATE,       /* ERR_NOT_FOUND when absent */
};

struct store_put {
	const char *collection;
	const char *id;          /* NULL or "": find by name (upsert/update) or
	                          * generate a new id (create) */
	const char *name;        /* NULL: the name_field's value, or else the id */
	json_t *data;            /* borrowed; the fields */
	bool partial;            /* data is a partial update over the stored one */
	json_t *labels;          /* borrowed; NULL keeps the stored labels */
	int64_t if_revision;     /* > 0: ERR_PRECONDITION unless the stored
	                          * record is at exactly this revision */
	enum store_put_mode mode;
	/* NULL, or the writer's own condition on the record as written (a
	 * create rule that must see the new row), called inside the put
	 * before the write hook; non-zero fails the put as a hook does. */
	int (*check)(struct store_txn *t, const struct record *r, void *arg,
		     struct err *e);
	void *check_arg;
};

/*
 * Validate and write one record. When the normalised data and the labels
 * equal the stored ones, nothing is written (*act = STORE_UNCHANGED, no
 * generation or revision bump). out (nullable) receives the record as it is
 * after the call; act (nullable) what happened. p->check and then the
 * collection's write hook, if any, run inside (see store_write_hook_fn).
 */
int store_txn_put(struct store_txn *t, const struct store_put *p,
		  struct record *out, enum store_action *act, struct err *e);

/*
 * Put data (a partial update; stolen, NULL counts as out of memory) over
 * the stored record *rec (collection and id) and replace *rec with the
 * record as it is after the write. For hooks that adjust the record they
 * were handed.
 */
int store_txn_patch(struct store_txn *t, struct record *rec, json_t *data,
		    struct err *e);

/*
 * store_txn_patch() for a write hook that completes the change it was
 * handed rather than making another: when rec is the hook's own *after
 * (the record its put just changed), the patch becomes part of that
 * change - the same revision and generation, its change-log row replaced,
 * so watchers see one change. Anywhere else (no hook running, an
 * unchanged put, another record) it is store_txn_patch().
 */
int store_txn_amend(struct store_txn *t, struct record *rec, json_t *data,
		    struct err *e);

/*
 * Delete one record. Records related to it through a cascade relation are
 * deleted too (recursively, each with its own change-log row); a
 * non-cascade relation pointing at it makes the delete fail with
 * ERR_CONFLICT naming the referring collection and field.
 */
int store_txn_delete(struct store_txn *t, const char *collection,
		     const char *id, int64_t if_revision, struct err *e);

/* Replace a record's status (reconcilers only). Bumps revision, not
 * generation; unchanged status writes nothing. */
int store_txn_set_status(struct store_txn *t, const char *collection,
			 const char *id, json_t *status, struct err *e);

/* ---- write hooks ------------------------------------------------------ */

/* Who writes in a transaction, as the write hooks see it. */
struct store_actor {
	const char *id;          /* the writer's auth record id (users or
	                          * _superusers; "" for a guest); NULL: the
	                          * server itself */
	bool declares;           /* the writer declares desired state (an
	                          * apply): see STORE_ACTOR_DECLARES */
};

/*
 * A write hook: a domain rule of one collection that runs inside the
 * writer's transaction t, for every store_txn_put() of a record of that
 * collection, whoever writes (HTTP, apply, the offline CLI, a reconciler).
 * before is the stored record (NULL on create), after the record as just
 * written, which the hook may replace with the record as it is after its
 * own writes (store_txn_patch()): the writer's out receives *after. Writes
 * the hook makes in t run no hooks. A non-zero return is store_txn_put()'s
 * result, with e as the hook set it; t can then only be aborted (commit
 * refuses), so nothing of the transaction is kept.
 */
typedef int (*store_write_hook_fn)(struct store_txn *t,
				   const struct record *before,
				   struct record *after,
				   const struct store_actor *actor,
				   struct err *e);

struct store_write_hook {
	const char *collection;
	store_write_hook_fn fn;
};

/*
 * The write hooks, registered at link time: one table, defined by the core
 * (governance.c), ended by an entry whose collection is NULL. A collection
 * may have several: they run in table order, each handed the record as the
 * one before left it, and the first non-zero return ends the put.
 */
extern const struct store_write_hook store_write_hooks[];

/* The writer declares desired state (apply): a put that changes nothing
 * runs no hook, and a hook judges the declared record on its own (a
 * declared approval, governance.h). */
#define STORE_ACTOR_DECLARES 1u

/*
 * Set who writes in t for the write hooks: id is the caller's auth record
 * id (copied; "" for a caller without one, a guest; NULL: the server
 * itself, the default at store_begin()), flags STORE_ACTOR_*. Call it after store_begin() (or at the start of a
 * store_write() callback), before the puts.
 */
void store_txn_set_actor(struct store_txn *t, const char *id, unsigned flags);

/* ---- writers (the change log's actor) ---------------------------------- */

#define STORE_WRITER_MAX 256            /* longest label kept, with NUL */
#define STORE_WRITER_DEFAULT "server"   /* a writer that named none */

/*
 * Who wrote, as the change log records it (store_change.actor): a short
 * label the layer above composes and gives meaning to ("superuser:EMAIL",
 * "user:ID:EMAIL", "apply:...", "reconciler/NAME", "cli:USER", "server").
 * The store only keeps it, cut to STORE_WRITER_MAX - 1 bytes.
 *
 * store_set_thread_writer(): the label every transaction begun on the
 * calling thread starts with, and every store_write() it calls (which may
 * run on another thread), until the next call; copied; NULL or "" forgets
 * it (STORE_WRITER_DEFAULT). The request workers set their caller, the
 * engine thread the reconciler whose pass runs. store_thread_writer():
 * that label now (borrowed; valid until the next call on this thread).
 *
 * store_txn_set_writer(): the label of t's changes from now on (copied;
 * NULL or "": STORE_WRITER_DEFAULT), for a writer that names itself
 * (apply). store_txn_writer(): t's label (borrowed; valid while t is).
 */
void store_set_thread_writer(const char *label);
const char *store_thread_writer(void);
void store_txn_set_writer(struct store_txn *t, const char *label);
const char *store_txn_writer(const struct store_txn *t);

/* Reads inside the transaction (they see its own writes). */
int store_txn_get(struct store_txn *t, const char *collection, const char *id,
		  struct record *out, struct err *e);
int store_txn_get_by_name(struct store_txn *t, const char *collection,
			  const char *name, struct record *out, struct err *e);

/*
 * Record sets: named sets of record keys ({collection, id} objects) that a
 * layer above keeps beside the records (apply keeps its apply sets here,
 * applyset.h); the store gives the names no meaning. A deleted record
 * leaves every set. store_txn_recset_get() gives the members in
 * (collection, id) order, an empty array for an unknown set; caller owns
 * *members. store_txn_recset_put() replaces the members of set name
 * (borrowed; an empty array empties it): ERR_INVALID for an empty name or
 * a member without string collection and id.
 */
int store_txn_recset_get(struct store_txn *t, const char *name,
			 json_t **members, struct err *e);
int store_txn_recset_put(struct store_txn *t, const char *name,
			 const json_t *members, struct err *e);

/* ---- reads ----------------------------------------------------------- */

int store_get(struct store *s, const char *collection, const char *id,
	      struct record *out, struct err *e);
int store_get_by_name(struct store *s, const char *collection,
		      const char *name, struct record *out, struct err *e);

/*
 * The record of auth collection collection (users, _superusers) whose
 * email is email, ignoring ASCII case: how a person is named on the
 * command line and in a manifest's relation. ERR_NOT_FOUND (e set) when
 * there is none, or the collection is not an auth collection, or email
 * has no '@'. Caller releases *out (record_release).
 */
int store_txn_get_by_email(struct store_txn *t, const char *collection,
			   const char *email, struct record *out,
			   struct err *e);

/*
 * By name (through t when t is not NULL, else s), and for an auth
 * collection, when no record has that name, by email: how the CLI and the
 * manifests endpoints address a record. Errors as store_get_by_name().
 */
int store_get_named(struct store *s, struct store_txn *t,
		    const char *collection, const char *name,
		    struct record *out, struct err *e);

/* A query (query.h); a tree naming a field or column the store does not
 * have is refused with ERR_INVALID. */
struct store_query {
	const struct query_pred *where;  /* borrowed; NULL = all */
	const struct query_sort *order;  /* borrowed; NULL or no keys =
	                                  * created, then id */
	int64_t limit;          /* <= 0: no limit */
	int64_t offset;
};

/* Called once per record; a non-zero return stops the walk and is returned
 * by the walker. r is borrowed for the duration of the call. */
typedef int (*store_each_fn)(const struct record *r, void *arg);

int store_list(struct store *s, const char *collection,
	       const struct store_query *q, store_each_fn fn, void *arg,
	       struct err *e);
int store_count(struct store *s, const char *collection,
		const struct store_query *q, int64_t *count, struct err *e);

/*
 * store_list() of the records whose field equals value compared without
 * regard to case (an e-mail, as PocketBase compares them), at most limit
 * (<= 0: all). Same returns; ERR_NOMEM when the query cannot be built.
 */
int store_list_eq_nocase(struct store *s, const char *collection,
			 const char *field, const char *value, int64_t limit,
			 store_each_fn fn, void *arg, struct err *e);

/*
 * store_list() without parsing anything: each matching row as stored, its
 * data the JSON object text the store wrote (compact, valid, every field
 * of the schema it was written under), for callers that copy it out
 * verbatim. All pointers are borrowed for the duration of the call.
 */
struct store_row {
	const char *id;
	const char *created;
	const char *updated;
	const char *data;        /* "{...}", data_len bytes */
	size_t data_len;
	int64_t revision;
};
typedef int (*store_row_fn)(const struct store_row *row, void *arg);
int store_list_rows(struct store *s, const char *collection,
		    const struct store_query *q, store_row_fn fn, void *arg,
		    struct err *e);

/*
 * *clean: every stored record of collection holds only fields of the
 * current schema in its data. Writes are validated against the schema, so
 * only rows written under an older one (a field since removed) or by hand
 * can fail this. One scan of the collection the first time it is asked,
 * remembered for the life of s (every later write in it is validated).
 */
int store_data_clean(struct store *s, const char *collection, bool *clean,
		     struct err *e);

/* store_list() as the transaction sees it, its own writes included. */
int store_txn_list(struct store_txn *t, const char *collection,
		   const struct store_query *q, store_each_fn fn, void *arg,
		   struct err *e);

/*
 * Count the records of collection matching q (as store_count()) as the
 * transaction sees them, its own uncommitted writes
 * included: the records API checks a create rule against the new row this
 * way before committing. q->order, limit and offset are ignored.
 */
int store_txn_count(struct store_txn *t, const char *collection,
		    const struct store_query *q, int64_t *count,
		    struct err *e);

/*
 * The revision of the last change written in t so far (the head when t began
 * when it has written nothing). After store_txn_delete() this is the
 * revision of the delete, which becomes the store head once t commits.
 */
int64_t store_txn_revision(const struct store_txn *t);

/* ---- change log ------------------------------------------------------ */

struct store_change {
	int64_t revision;
	const char *collection;
	const char *id;
	const char *action;     /* "create", "update", "delete" */
	json_t *record;         /* record_to_json() form after the change (for
	                         * delete: the record as it was); borrowed */
	size_t record_len;      /* bytes of record as the change log stores
	                         * it (compact JSON); 0 without the record */
	const char *actor;      /* who wrote it (store_txn_set_writer());
	                         * NULL for rows written before the change
	                         * log kept it */
	bool status_only;       /* an "update" made by store_txn_set_status():
	                         * only the status changed, not the data or
	                         * the generation (the change log stores its
	                         * action as "status"; rows written before
	                         * this flag existed read as false). The
	                         * reconcile engine skips these, so status
	                         * writes never re-trigger reconcilers. */
};
typedef int (*store_change_fn)(const struct store_change *c, void *arg);

/*
 * Commit hooks: fn(arg, head) is called after every successful
 * store_commit(), on the committing thread, and for combined store_write()s
 * once per round of requests that became durable together, on the thread
 * driving them, before their callers wake; always after the writer lock is
 * released, with the new (durable) head revision. It must be quick and
 * must not write to the store (the reconcile engine's hook writes to an
 * eventfd).
 * At most STORE_COMMIT_HOOKS hooks; ERR_TOO_LARGE beyond. Add hooks before
 * other threads use the store; store_remove_commit_hook() may be called
 * only when no other thread can commit any more.
 */
#define STORE_COMMIT_HOOKS 4
typedef void (*store_commit_fn)(void *arg, int64_t head);
int store_add_commit_hook(struct store *s, store_commit_fn fn, void *arg,
			  struct err *e);
void store_remove_commit_hook(struct store *s, store_commit_fn fn, void *arg);

/* Latest committed revision (0 for an empty store); it advances only once
 * the change is durable on disk. */
int64_t store_head(struct store *s);

/*
 * A number that changes after every commit that may have changed a record
 * of an auth collection (a create, update, status write or delete there).
 * A cache of auth records stays valid while this stays what it was read as
 * before the records were read: the server's token cache.
 */
uint64_t store_auth_seq(struct store *s);

/* Oldest revision still in the change log (head + 1 when empty). A watcher
 * that needs revisions older than this must reset. */
int64_t store_changelog_oldest(struct store *s);

/* Walk change-log rows with revision > after and <= store_head(), in
 * order, at most limit (<= 0: all). */
int store_changes(struct store *s, int64_t after, int64_t limit,
		  store_change_fn fn, void *arg, struct err *e);

/* The same walk without the records (record is NULL): for a reader that
 * needs only which records changed, such as the reconcile engine, and
 * should not pay for parsing each one. */
int store_change_keys(struct store *s, int64_t after, int64_t limit,
		      store_change_fn fn, void *arg, struct err *e);

/* ---- backups (store_backup.c) ---------------------------------------- */

#define STORE_BACKUP_DIR "backups"       /* DIR/backups: the default place */
#define STORE_BACKUP_PREFIX "pocket-"    /* pocket-<UTC>-r<revision>.db */

struct store_backup_opts {
	const char *dir;         /* where the backup goes; created (0700)
	                          * when missing */
	const char *file;        /* its file name in dir; NULL: PREFIX<UTC
	                          * timestamp>-r<revision>.db */
	const char *prefix;      /* with file NULL: instead of
	                          * STORE_BACKUP_PREFIX */
};

/* What a backup holds. A value: free with store_backup_info_release(). */
struct store_backup_info {
	char *path;              /* owned: the file */
	int64_t revision;        /* the store head it holds */
	int64_t size;            /* bytes */
};
void store_backup_info_release(struct store_backup_info *b); /* NULL ok */

/*
 * Write an online, consistent copy of the store into o->dir: one snapshot
 * of records and change log, copied in bounded steps while writers go on
 * (every commit that returned before the call is in it). The copy goes to
 * a temporary file in o->dir, is synced and renamed into place, so a crash
 * or kill mid-way leaves any earlier file at that path intact (and at worst
 * a hidden ".pocket-tmp-*" file, removed by a later backup into o->dir
 * once it is an hour old). out receives the file, its size and
 * revision. ERR_INVALID for a file name that is not a plain name, ERR_IO
 * or ERR_DB when writing fails (nothing is then left at the target).
 */
int store_backup(struct store *s, const struct store_backup_opts *o,
		 struct store_backup_info *out, struct err *e);

/*
 * Check that the file at path is a backup this pocketctl can restore: a
 * sound database (integrity check), a pocketctl store, at a migration
 * level and schema version no newer than this binary's. Reads the file
 * only. out receives its path, size and revision. ERR_INVALID naming the
 * file and the problem otherwise.
 */
int store_backup_check(const struct schema *schema, const char *path,
		       struct store_backup_info *out, struct err *e);

/*
 * Replace the store in data directory dir with the backup at from, which
 * must pass store_backup_check() (nothing is touched otherwise). No store
 * may be open on dir (the caller holds its lock). The current store, its
 * WAL checkpointed into it first, is kept as pocket.db.replaced-<UTC>
 * (*replaced, caller frees; NULL when there was none); the backup is
 * copied beside it and renamed into place in one step.
 */
int store_restore(const struct schema *schema, const char *dir,
		  const char *from, char **replaced, struct err *e);

/*
 * The backups in dir (its *.db files, hidden ones excepted), by name
 * (oldest first for the default names): [{key, size, modified}], as
 * PocketBase lists its backups. A missing dir lists none. Caller owns
 * *out (json_decref).
 */
int store_backup_list(const char *dir, json_t **out, struct err *e);

/* ---- field ownership --------------------------------------------------- */

/*
 * Which manager last set each top-level field of a record, as a JSON object
 * {field: manager}. Managers are names a layer above gives meaning to:
 * apply uses "apply:SET"; every other writer's puts note their changed
 * fields as the transaction's actor ("superuser:ID", "user:ID", "guest",
 * or "server" for the server itself) inside store_txn_put(), so no writer
 * can forget. A deleted record's ownership goes with it.
 *
 * store_txn_owners_get(): caller owns *owners ({} when none recorded);
 * ERR_DB naming the record when the stored ownership is corrupt.
 * store_txn_owners_find(): the same by record name ({} also when there is
 * no such record), for a writer that has not read the record.
 * store_txn_owners_list(): the ownership of every record of collection
 * that has one, as {name: {field: manager}}, in one read (a writer about
 * to touch many of them); caller owns *by_name. Records with the same
 * ownership share one object: treat the entries as read-only.
 * store_txn_owners_put(): replaces the record's ownership with owners
 * (borrowed; {} forgets it); ERR_INVALID for a non-string owner.
 * store_owners_get(): the same read outside a transaction (last committed
 * state), for output.
 */
int store_txn_owners_get(struct store_txn *t, const char *collection,
			 const char *id, json_t **owners, struct err *e);
int store_txn_owners_find(struct store_txn *t, const char *collection,
			  const char *name, json_t **owners, struct err *e);
int store_txn_owners_list(struct store_txn *t, const char *collection,
			  json_t **by_name, struct err *e);
int store_txn_owners_put(struct store_txn *t, const char *collection,
			 const char *id, const json_t *owners, struct err *e);
int store_owners_get(struct store *s, const char *collection, const char *id,
		     json_t **owners, struct err *e);

/* ---- apply digests ----------------------------------------------------- */

/*
 * What the last apply of a record declared, as an opaque digest the layer
 * above makes (apply.c), kept with the record's revision at that moment,
 * so that a re-apply of the same declaration can tell "unchanged" without
 * reading the record. A digest stands only while nobody wrote the record
 * since: any write (data, labels, status, ownership by another writer)
 * bumps its revision and the digest no longer matches. A deleted
 * record's digest goes with it.
 *
 * store_txn_digest_match(): id_out gets the id of the record of
 * collection named name when its digest is digest[0..len) and its
 * revision is still the one stored with it; "" otherwise (no record, no
 * digest, another digest, written since).
 * store_txn_declared_put(): what an apply of record id declared, in one
 * write: its ownership (as store_txn_owners_put(); NULL: as it is) and
 * digest[0..len) with revision, the record's revision as this
 * transaction's own write of it left it (struct record.revision from
 * store_txn_put()); digest NULL: no digest (the ownership alone).
 * store_txn_digest_any(): *any says whether some record of collection
 * has a digest at all; when none has, no document of it can match, and
 * the caller may skip store_txn_digest_match() for each (a first apply).
 *
 * Text digests (schema/migrations/0006_text_digest.sql): a second opaque
 * digest in the same row, of the text the declaration was written in,
 * given to store_txn_declared_put() (text, len bytes; NULL: none) with
 * the first, so that an unchanged piece of text is found before it is
 * parsed. It stands under the same revision: any write of the record
 * ends it.
 * store_txn_text_find(): the record whose text digest is
 * digest[0..len) and that nobody wrote since: *coll (NULL: none, or a
 * collection the schema no longer has), id_out, *name (owned).
 * store_txn_text_put(): record id's text digest becomes digest[0..len)
 * (its revision and declaration digest as they are: for a re-apply whose
 * text changed but not what it says); nothing without a digest row.
 * store_txn_text_any(): whether any record has a text digest.
 * store_txn_renames(): how many times a record was renamed, ever (a
 * relation named in a text may mean another record after one).
 */
int store_txn_digest_match(struct store_txn *t, const char *collection,
			   const char *name, const void *digest, size_t len,
			   char id_out[ID_LEN + 1], struct err *e);
int store_txn_declared_put(struct store_txn *t, const char *collection,
			   const char *id, const json_t *owners,
			   int64_t revision, const void *digest,
			   const void *text, size_t len, struct err *e);
int store_txn_digest_any(struct store_txn *t, const char *collection,
			 bool *any, struct err *e);
int store_txn_text_find(struct store_txn *t, const void *digest, size_t len,
			const struct collection **coll,
			char id_out[ID_LEN + 1], char **name, struct err *e);
int store_txn_text_put(struct store_txn *t, const char *collection,
		       const char *id, const void *digest, size_t len,
		       struct err *e);
int store_txn_text_any(struct store_txn *t, bool *any, struct err *e);
int store_txn_renames(struct store_txn *t, int64_t *out, struct err *e);

#endif
