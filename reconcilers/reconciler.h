/*
 * reconciler.h - the plug-in interface of the reconcile engine, and the one
 * table that lists every reconciler (reconcilers/registry.c).
 *
 * A reconciler declares the collections it reads and the path keys it
 * owns (with their defaults under --root); the engine runs it (on its own
 * thread, never on a request thread) whenever a record of one of those
 * collections changes (of a collection it read only with rctx_related():
 * one of the records it read), when a file it owns drifts, at start-up
 * and on every periodic resync. reconcile() reads the CURRENT store through its
 * context (level-triggered: it is never told what changed), renders the
 * desired bytes and hands every file to rctx_write(), which writes only
 * when the bytes (or the mode) on disk differ, atomically. Running it twice
 * in a row writes nothing the second time. Records and status are written
 * only through the context too (rctx_set_status(), rctx_apply(),
 * rctx_provision()), never through a store of its own.
 *
 * Adding a reconciler = one new file in reconcilers/ with a `const struct
 * reconciler` and one line in registry.c (with its extern there).
 *
 * Lifecycle: a reconciler that needs more than a pass - threads, a client,
 * memory kept between passes - has start() and stop(). engine_new() calls
 * start(env, &state, e) once, in table order, before the engine thread
 * runs; the state comes back to every pass as rctx_state(), to other
 * threads as engine_state(), and goes to stop(state) in engine_free(),
 * after the engine thread has ended, in reverse order. start() may say
 * RECONCILER_OFF: the reconciler is not used with these options (no status
 * record, never run). Calling sequence:
 *     start() -> reconcile()... (engine thread) -> stop()
 *
 * Ownership and garbage collection: every path passed to rctx_write() in a
 * pass is an artifact owned by the reconciler. After a pass that succeeded,
 * files it owned in an earlier pass (recorded in its status, so across
 * restarts too) but did not write or rctx_keep() this time are deleted: an
 * agent bundle disappears with its agent without the reconciler listing
 * the directory. A failed pass deletes nothing; neither is a
 * file deleted that was changed by hand since we wrote it, or that lies
 * outside the directories of the current paths configuration (a new
 * --root never deletes the files under the old one): those are let go.
 *
 * THREAD SAFETY NOTES: start() and stop() run on the thread that owns the
 * engine, reconcile() on the engine thread only, one reconciler at a time;
 * a struct rctx is valid only during that call. It must not block for long
 * (no sleeping, no waiting for a container): to look again later it calls
 * rctx_requeue_after(). env->wake() may be called from any thread. Whatever
 * the state shares with other threads (engine_state() users, threads of
 * its own) it locks itself.
 */
#ifndef POCKETCTL_RECONCILER_H
#define POCKETCTL_RECONCILER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"

struct manifest_set;
struct schema;

/* serve's options of the push reconciler (rec_push.c). */
#define PUSH_ALLOW_MAX 32
struct push_options {
	const char *relay;              /* --push-relay URL (else $PN_URL):
	                                 * the FCM relay; NULL: none */
	const char *relay_secret_file;  /* --push-relay-secret-file; NULL:
	                                 * $PN_RELAY_SECRET, else no secret */
	const char *allow[PUSH_ALLOW_MAX]; /* --push-allow CIDR blocks */
	size_t nallow;
	int rate;                       /* --push-rate: pushes per user a
	                                 * minute; 0 = no limit */
};
#define PUSH_RATE_DEFAULT 30

/* serve's options of the notify-Poco reconciler (rec_poco.c). */
struct poco_options {
	const char *url;                /* --opencode-url (else $OPENCODE_URL):
	                                 * OpenCode's server; NULL: off */
	int64_t window_ms;              /* --poco-notify-window: chats active
	                                 * this recently are told */
};
#define POCO_WINDOW_DEFAULT_MS ((int64_t)24 * 3600 * 1000)

/* A pseudo-collection for `reads`: run this reconciler whenever another
 * reconciler wrote or deleted a file (e.g. a container that hashes its
 * input files). */
#define RECONCILER_READS_FILES "@files"

struct rctx;

/* A path key a reconciler owns: DATA_DIR/paths.yaml (paths.h) may move it
 * or turn it off ("") under this key. */
struct reconciler_path {
	const char *key;            /* config key: [a-z0-9_], unique */
	const char *def;            /* default, relative to --root */
	bool dir;                   /* a directory rendered into (garbage
	                             * collection may delete below it), not a
	                             * file (then its parent directory is) */
};

/* What start() may use; borrowed, valid until stop() returns. */
struct reconciler_env {
	const char *root;           /* the render root, absolute */
	const char *data_dir;       /* the data directory, or NULL */
	const char *docker_host;    /* --docker, or NULL ($DOCKER_HOST, else
	                             * the default socket) */
	const char *manifests_dir;  /* --manifests, or NULL */
	bool watch_manifests;       /* --watch */
	int64_t backup_every_ms;    /* serve --backup-every; 0: no scheduled
	                             * backups */
	int backup_keep;            /* serve --backup-keep: scheduled backups
	                             * kept */
	int64_t cron_grace_ms;      /* serve --cron-grace: how late a missed
	                             * cron slot may still run once; 0: never */
	const char *manifests_applyset; /* the set they apply as, or NULL */
	const struct push_options *push; /* serve's push options (rec_push),
	                                 * or NULL: the defaults */
	const struct poco_options *poco; /* serve's notify-Poco options
	                                 * (rec_poco), or NULL: off */
	/*
	 * Ask for a pass of this reconciler soon, from any thread (its own
	 * threads, a request thread): cheap and non-blocking (a flag and an
	 * eventfd write). Passes are never run on the caller's thread.
	 */
	void (*wake)(void *wake_arg);
	void *wake_arg;
};

/* start(): the reconciler is not used with these options. */
#define RECONCILER_OFF 1

/* flags: the reconciler feeds the store instead of the world (the
 * manifests re-apply). It runs first in a full pass (at start-up and when
 * one is requested) and when its watched directories change, but not on
 * the periodic resync; its status is published beside the list of
 * reconcilers, under its name. */
#define RECONCILER_SOURCE 1u

struct reconciler {
	const char *name;           /* key, status record name: [a-z0-9-] */
	const char *description;    /* one line, for `pocketctl status` */
	const char *const *reads;   /* collections read, NULL-terminated;
	                             * NULL: none */
	/* The path keys it owns, ended by {NULL}; NULL: none. */
	const struct reconciler_path *paths;
	/* Those of its path keys whose files hold secrets, NULL-terminated
	 * (NULL: none): never served by the artifacts endpoint
	 * (engine_secret_paths()). */
	const char *const *secret_keys;
	unsigned flags;             /* RECONCILER_SOURCE or 0 */
	/*
	 * Optional (NULL: no state). Make the state the passes will see
	 * (*state, may stay NULL). Returns 0, RECONCILER_OFF, or a negative
	 * ERR_* with e set: engine_new() then fails with that error.
	 */
	int (*start)(const struct reconciler_env *env, void **state,
		     struct err *e);
	/* Optional. Release what start() made; state may be NULL. */
	void (*stop)(void *state);
	/*
	 * One pass. Returns 0 when the world matches the store (warnings
	 * about skipped records included), or a negative ERR_* with e set:
	 * the engine marks the reconciler Degraded, keeps the files as they
	 * were, and retries with capped exponential backoff (unless the pass
	 * said rctx_no_retry()).
	 */
	int (*reconcile)(struct rctx *c, struct err *e);
};

/* The registry (registry.c): every reconciler, in the order they run
 * during a full pass. */
extern const struct reconciler *const reconcilers[];
extern const size_t nreconcilers;

/* ---- the context: what a reconciler may do during its pass ------------ */

/*
 * Every record of collection (which must be in the reconciler's `reads`),
 * as an array of record_to_json() objects in (created, id) order. The array
 * is borrowed: valid until reconcile() returns. Reading the same collection
 * twice in one pass returns the same snapshot. Returns 0, ERR_INVALID (a
 * collection not declared in reads), ERR_DB or ERR_NOMEM.
 */
int rctx_records(struct rctx *c, const char *collection, json_t **out,
		 struct err *e);

/*
 * The records of collection (which must be in the reconciler's `reads`)
 * that relation field `field` of the records in from names (a record id,
 * or an array of ids), each once, in (created, id) order: the prompts of
 * the agents, say, read by id rather than the whole collection. Ids that
 * name no record are skipped. The array is borrowed: valid until
 * reconcile() returns. A reconciler that reads a collection only this way
 * in a good pass is woken by a change of that collection only when the
 * change is of a record it asked for (found or not); the changes that make
 * another record matter (an agent naming it) are of the collections it
 * lists, and wake it. Returns 0, ERR_INVALID (an undeclared collection),
 * ERR_DB or ERR_NOMEM.
 */
int rctx_related(struct rctx *c, json_t *from, const char *field,
		 const char *collection, json_t **out, struct err *e);

/* The configured path of key (any reconciler's, "llm_env"), or NULL when
 * that file is turned off (or no reconciler declares key). Borrowed;
 * valid during the pass. */
const char *rctx_path(struct rctx *c, const char *key);

/* name inside OpenCode's directory (the parent of agents_dir, else of
 * opencode_json): "skills" -> <root>/workspace/.opencode/skills by
 * default. Caller frees; NULL when both paths are turned off or out of
 * memory (tell them apart with rctx_path()). */
char *rctx_opencode_path(struct rctx *c, const char *name);

/* The current UTC time as "YYYY-MM-DD HH:MM:SS.sssZ", fixed for the pass. */
const char *rctx_now(struct rctx *c);

/*
 * Make the file at path hold exactly data (and mode): compare with what is
 * on disk and, only when the bytes or the mode differ, replace it with
 * fs_write_atomic(). The path becomes an artifact of the reconciler: its
 * SHA-256, conditions and errors appear in the status, its directory is
 * watched, and a later change by anyone else is drift (restored, with a
 * DriftCorrected event). A directory or another non-regular file where the
 * file should be is refused (ERR_IO), as is any write error; the old file
 * is then left intact and the artifact is Degraded. *written (nullable)
 * says whether the file was replaced.
 */
int rctx_write(struct rctx *c, const char *path, const struct buf *data,
	       mode_t mode, bool *written, struct err *e);

/*
 * Open the directory dir for reading (fd, the caller closes it) the way
 * rctx_write() reaches files: walked from the root without following a
 * symbolic link (util.h, fs_open_dir_beneath()), never created. Work
 * below it with the *at() calls on that fd, so a directory swapped for a
 * link meanwhile cannot send them elsewhere. Returns the fd, or
 * ERR_NOT_FOUND when dir (or a directory on the way) is missing, ERR_IO
 * naming a symbolic link or a non-directory in the way, ERR_NOMEM.
 */
int rctx_open_dir(struct rctx *c, const char *dir, struct err *e);

/*
 * Read the file at path into out (appending; at most BUF_DEFAULT_CAP):
 * for read-patch-write artifacts. *exists is false (and out untouched) when
 * there is no file. Anything else that is not a regular file, and read
 * errors, are ERR_IO naming the path.
 */
int rctx_read(struct rctx *c, const char *path, struct buf *out,
	      bool *exists, struct err *e);

/*
 * Mark path as an artifact of this pass without writing it (so that it is
 * not garbage-collected), with an optional error: a file the reconciler
 * could not produce this time (e.g. opencode.json that is not valid JSON,
 * left untouched) is reported Degraded with err's message. err may be NULL.
 */
void rctx_keep(struct rctx *c, const char *path, const struct err *err);

/* The pass's warnings array: append human-readable lines (the renderers
 * take it as their `warnings` argument). Borrowed. */
json_t *rctx_warnings(struct rctx *c);

/* The state start() made (NULL without start()). Borrowed. */
void *rctx_state(struct rctx *c);

/*
 * Merge fields into the status of record id of collection (which must be
 * in reads): each of keys (NULL-terminated) present in fields is set, each
 * absent is deleted, every other key of the status is kept. Written in a
 * transaction of its own, and only when the status changes; a record
 * deleted meanwhile is not an error. Status-only changes never trigger a
 * pass. fields is borrowed. Returns 0, ERR_INVALID (an undeclared
 * collection), ERR_DB or ERR_NOMEM.
 */
int rctx_set_status(struct rctx *c, const char *collection, const char *id,
		    const char *const *keys, json_t *fields, struct err *e);

/*
 * Change many records of collection (which must be in reads) in one
 * transaction, as the server: items (borrowed) is an array of
 * {"id", "status": {key: value}, "data": {field: value}, "delete": true}:
 * "status" keys are merged into the record's status (a null value deletes
 * the key; written only when it changes, and status-only changes never
 * trigger a pass), "data" is a partial update of its fields (the write
 * hooks run; it triggers the readers' passes as any change does),
 * "delete" deletes it. A record deleted meanwhile is skipped. All or
 * nothing: an error (ERR_INVALID, a write hook's refusal, ERR_DB,
 * ERR_NOMEM) keeps none of it.
 */
int rctx_update(struct rctx *c, const char *collection, json_t *items,
		struct err *e);

/*
 * Provision the proposal files of directory dir into draft proposals
 * (provision_sync(), its own short transactions). *report as
 * provision_sync() gives it; caller owns it. Errors as provision_sync().
 */
int rctx_provision(struct rctx *c, const char *dir, json_t **report,
		   struct err *e);

/* The schema the records follow, for loading manifests. Borrowed. */
const struct schema *rctx_schema(struct rctx *c);

/*
 * Load the manifests under dir and apply them to the store as `pocketctl
 * apply -f DIR` does, loading inside the apply's transaction
 * (apply_run_load(): text unchanged since the last apply is not parsed):
 * with applyset (non-NULL, non-empty) as that apply set with prune (the
 * half-set guard applies: more than half of the set gone is refused with
 * ERR_INVALID naming the counts), else with default options. *result as
 * apply_run() gives it (caller owns it). errs (or NULL) gets every
 * problem, of the files and of the apply; nothing is written when there
 * is any. On error, *load_rc is the load's own code (0 when the load
 * went through and the apply failed).
 */
int rctx_apply(struct rctx *c, const char *dir, const char *applyset,
	       struct err_list *errs, json_t **result, int *load_rc,
	       struct err *e);

/*
 * The state of the git checkout at dir: HEAD's commit into rev ("" when
 * dir is not a checkout or has no commit) and whether its work tree is
 * dirty.
 */
void rctx_git_state(struct rctx *c, const char *dir, char rev[64],
		    bool *dirty);

/*
 * Run this reconciler again (debounced) whenever anything changes in the
 * directory tree at dir (recursively, .git excluded) or, when dir is a
 * git checkout, its HEAD or a branch moves. Declare it on every pass.
 */
void rctx_watch_tree(struct rctx *c, const char *dir);

/* ---- what a pass may add to its own status ------------------------------ */

/* Set key of the reconciler's status record to v (stolen), kept across
 * restarts; the engine's own keys (conditions, artifacts, ...) are
 * refused and v dropped. */
void rctx_status_set(struct rctx *c, const char *key, json_t *v);

/* After the engine has set the conditions of the pass: set condition type
 * to status ("True"/"False") with reason and message (a reconciler that
 * explains its outcome better than the generic reasons). */
void rctx_condition(struct rctx *c, const char *type, const char *status,
		    const char *reason, const char *message);

/* A failed pass that must not be retried with backoff: the failure is
 * reported, and the next pass comes from a change (a watch, a full pass). */
void rctx_no_retry(struct rctx *c);

/* The status's observedRevision after a good pass: rev instead of the
 * newest data change the pass had seen (a source reports the revision it
 * wrote). */
void rctx_observed(struct rctx *c, int64_t rev);

/* Log one line (log.h): "... info engine: NAME: ...". */
void rctx_log(struct rctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Run this reconciler again whenever something inside directory dir
 * changes (a file created, written, renamed or deleted; not recursive),
 * debounced like the manifests directory. A missing directory is watched
 * through its parent, so that it is seen when it appears. Declare it on
 * every pass.
 */
void rctx_watch_dir(struct rctx *c, const char *dir);

/*
 * Write an online backup of the store into directory dir (created 0700
 * when missing) as PREFIX<UTC>-r<revision>.db, as store_backup() does: one
 * consistent snapshot, copied without blocking writers, renamed into place
 * once synced. *path (caller frees), *revision and *size describe it.
 * Errors (ERR_IO, ERR_DB, ERR_NOMEM) leave no file at the target.
 */
int rctx_backup(struct rctx *c, const char *dir, const char *prefix,
		char **path, int64_t *revision, int64_t *size, struct err *e);

/*
 * Run fn(t, arg, e) as one store transaction (store_write(), written as
 * the server), for a reconciler whose output is records: a core function
 * that takes the transaction (cron.h's fire). The records it writes
 * trigger passes of the reconcilers reading them, its own included.
 * Returns fn's result or the commit's; nothing is kept on error.
 */
struct store_txn;
int rctx_transact(struct rctx *c,
		  int (*fn)(struct store_txn *t, void *arg, struct err *e),
		  void *arg, struct err *e);

/* Ask for another pass after ms milliseconds even if nothing changes
 * (e.g. an ssh key that expires then). The earliest request wins. */
void rctx_requeue_after(struct rctx *c, int64_t ms);

#endif
