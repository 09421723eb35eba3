/*
 * reconciler.h - the plug-in interface of the reconcile engine, and the one
 * table that lists every reconciler (reconcilers/registry.c).
 *
 * A reconciler declares the collections it reads; the engine runs it (on
 * its own thread, never on a request thread) whenever a record of one of
 * those collections changes, when a file it owns drifts, at start-up and on
 * every periodic resync. reconcile() reads the CURRENT store through its
 * context (level-triggered: it is never told what changed), renders the
 * desired bytes and hands every file to rctx_write(), which writes only
 * when the bytes (or the mode) on disk differ, atomically. Running it twice
 * in a row writes nothing the second time.
 *
 * Adding a reconciler = one new file in reconcilers/ with a `const struct
 * reconciler` and one line in registry.c.
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
 * THREAD SAFETY NOTES: reconcile() runs on the engine thread only, one
 * reconciler at a time; a struct rctx is valid only during that call. It
 * must not block for long (no sleeping, no waiting for a container): to
 * look again later it calls rctx_requeue_after().
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
#include "engine/paths.h"

struct store;

/* A pseudo-collection for `reads`: run this reconciler whenever another
 * reconciler wrote or deleted a file (e.g. a container that hashes its
 * input files). */
#define RECONCILER_READS_FILES "@files"

struct rctx;

struct reconciler {
	const char *name;           /* key, status record name: [a-z0-9-] */
	const char *description;    /* one line, for `pocketctl status` */
	const char *const *reads;   /* collections read, NULL-terminated */
	/*
	 * One pass. Returns 0 when the world matches the store (warnings
	 * about skipped records included), or a negative ERR_* with e set:
	 * the engine marks the reconciler Degraded, keeps the files as they
	 * were, and retries with capped exponential backoff.
	 */
	int (*reconcile)(struct rctx *c, struct err *e);
};

/* The registry (registry.c): every reconciler, in the order they run
 * during a full pass. */
extern const struct reconciler *const reconcilers[];
extern const size_t nreconcilers;

/* The reconcilers of reconcilers/rec_*.c. */
extern const struct reconciler rec_llm_env;
extern const struct reconciler rec_opencode_json;
extern const struct reconciler rec_agent_bundles;
extern const struct reconciler rec_docker_mcp;
extern const struct reconciler rec_authorized_keys;

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

/* The configured path of id, or NULL when that file is turned off.
 * Borrowed; valid during the pass. */
const char *rctx_path(struct rctx *c, enum path_id id);

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

/*
 * The store, for a reconciler that turns files into records (proposal
 * provisioning); it writes through its own short transactions. Borrowed;
 * valid during the pass.
 */
struct store *rctx_store(struct rctx *c);

/*
 * Run this reconciler again whenever something inside directory dir
 * changes (a file created, written, renamed or deleted; not recursive),
 * debounced like the manifests directory. A missing directory is watched
 * through its parent, so that it is seen when it appears. Declare it on
 * every pass.
 */
void rctx_watch_dir(struct rctx *c, const char *dir);

/* Ask for another pass after ms milliseconds even if nothing changes
 * (e.g. an ssh key that expires then). The earliest request wins. */
void rctx_requeue_after(struct rctx *c, int64_t ms);

#endif
