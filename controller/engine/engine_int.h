/*
 * engine_int.h - what the parts of the reconcile engine share (SQLite
 * style: a private header, never included outside controller/engine/).
 * engine.c runs the loop and the thread, rctx.c one reconciler pass and
 * the files it owns, status.c the status records and the published
 * snapshot, watch.c inotify, the watched directories and git.
 *
 * THREAD SAFETY NOTES: everything declared here runs on the engine thread
 * (or in engine_new()/engine_free() while no thread runs), except where a
 * field says otherwise (atomics, the snapshot under slock).
 */
#ifndef POCKETCTL_ENGINE_INT_H
#define POCKETCTL_ENGINE_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "engine.h"
#include "log.h"
#include "paths.h"
#include "reconciler.h"
#include "util.h"
#include "workq.h"

#define SHA_HEX 65

enum {
	W_FILES = 1,             /* the directory of owned files */
	W_TREE = 2,              /* a directory of a watched tree
	                          * (rctx_watch_tree) */
	W_GIT_DIR = 4,           /* that tree's git dir (HEAD) */
	W_GIT_REFS = 8,          /* its refs/heads */
	W_INPUT = 16,            /* an input directory (rctx_watch_dir) */
	W_PATH = 32,             /* a directory on the way from the root to
	                          * owned files (a rename or a symlink there
	                          * redirects the path) */
};

struct watch {
	int wd;
	unsigned flags;
	char *dir;
	const char *input;       /* W_INPUT, W_TREE, W_GIT_*: the reconciler
	                          * to run (its name, static) */
};

/* A file owned by a reconciler. */
struct artifact {
	char *path;
	char *base;              /* basename, matched against inotify names */
	int wd;                  /* watch of its directory, -1 when none */
	char sha[SHA_HEX];       /* what we last wrote (or found matching) */
	unsigned mode;
	bool declared;           /* written or kept in the current pass */
	bool cleaned;            /* stale temporaries removed (once) */
	bool suspect;            /* inotify saw a change: check it */
	char *error;             /* last error, NULL when fine */
	const char *reason;      /* condition reason of error (static) */
	json_t *conds;           /* Ready, Degraded */
};

/* One key of the work queue: a reconciler and what the engine keeps of
 * it. */
struct rstate {
	const struct reconciler *r;
	const char *name;
	struct engine *en;            /* its engine (for env.wake) */
	struct reconciler_env env;    /* what start() got; lives as long */
	void *state;                  /* what start() made */
	bool live;                    /* start() succeeded: stop() is due */
	char *git_dir;                /* rctx_watch_tree(): the checkout's git
	                               * dir, once looked up (git_looked) */
	bool git_looked;
	char id[ID_LEN + 1];          /* its reconcile_status record */
	struct artifact *arts;        /* sorted by path */
	size_t narts, aalloc;
	json_t *conds;                /* Ready, Reconciling, Degraded */
	json_t *events;               /* newest last, ENGINE_EVENTS_KEPT */
	json_t *warnings;
	json_t *extra;                /* keys of rctx_status_set() */
	json_t *written;              /* the status last stored */
	char *last_error;
	int failures;
	char next_retry[TIME_LEN + 1];
	int64_t data_rev;             /* newest relevant data change seen */
	json_t *deps;                 /* collection -> {id: ...}: the only
	                               * records of that collection whose
	                               * changes wake it (the ids its last good
	                               * pass read with rctx_related()); NULL
	                               * or a collection not in it: any */
	int64_t observed_rev;         /* data_rev when the last good pass began */
	uint64_t passes, writes;
	uint64_t errors;             /* failed passes, since the start */
	uint64_t drift;              /* DriftCorrected events, since the start */
	int64_t last_ms;
	int64_t total_ms;            /* every pass's last_ms, summed */
	atomic_bool wanted;           /* engine_enqueue() from another thread */
};

struct engine {
	struct store *store;
	const struct schema *schema;
	char *root;
	char *data_dir, *docker_host, *manifests_dir;  /* for env */
	char *manifests_applyset;                       /* for env */
	bool watch_manifests;
	int64_t backup_every_ms;     /* for env */
	const struct push_options *push; /* for env; borrowed */
	const struct poco_options *poco; /* for env; borrowed */
	int backup_keep;
	int64_t cron_grace_ms;       /* for env */
	int64_t resync_ms, debounce_ms;
	struct paths paths;
	struct paths old_paths;       /* before the last reload (engine_reload()):
	                               * its files are still removed when no
	                               * longer rendered */
	char *paths_config;           /* the file given (NULL: found anew at
	                               * each load, paths_default_config()) */
	char *paths_error;            /* the last reload's error, or NULL */
	const struct reconciler *const *regs;  /* whose keys paths resolves */
	size_t nregs;
	_Atomic uint64_t reload_req;  /* engine_reload() requests */
	uint64_t reload_seen;
	struct rstate *rs;            /* reconcilers, registry order (those
	                               * whose start() said RECONCILER_OFF
	                               * left out) */
	size_t nrs;
	struct workq *q;
	int efd, ifd, tfd;
	struct watch *w;
	size_t nw, walloc;
	pthread_t thread;
	atomic_bool started;          /* read by engine_status() */
	bool hooked;
	atomic_int stop;
	_Atomic uint64_t full_req, full_done;
	uint64_t full_seen;
	int64_t last_rev;
	int64_t next_resync;
	_Atomic uint64_t wakeups, passes;
	unsigned rng;
	pthread_mutex_t slock;        /* guards snap */
	json_t *snap;
};

/* ---- engine.c ----------------------------------------------------------- */

/* A log line (log.h, level info): "... info engine: ...". */
void eng_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The same at level lv (a failure: LOG_ERROR; a degraded mode: LOG_WARN). */
void eng_log_at(enum log_level lv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* True when r declares coll in its reads. */
bool eng_reads_has(const struct reconciler *r, const char *coll);

/* Enqueue every reconciler now; the sources (RECONCILER_SOURCE) too,
 * first, when sources. */
void eng_enqueue_all(struct engine *en, bool sources);

/* Enqueue every source after the debounce delay. */
void eng_debounce_sources(struct engine *en);

/* Enqueue the reconciler called name after the debounce delay. */
void eng_debounce(struct engine *en, const char *name);

/* ---- rctx.c --------------------------------------------------------------- */

/* Run one pass of rs's reconciler and record its outcome (status, queue,
 * garbage collection, watches). */
void eng_run_pass(struct engine *en, struct rstate *rs);

/* The artifact of path in rs, created (sorted in) when missing; NULL on
 * OOM. */
struct artifact *eng_art_get(struct rstate *rs, const char *path);

/* Free what a holds; a is left zeroed. */
void eng_art_release(struct artifact *a);

/* True when the file is exactly what we last wrote. */
bool eng_art_intact(const struct engine *en, const struct artifact *a);

/* ---- status.c ------------------------------------------------------------- */

/* A JSON string that never fails on bad UTF-8; NULL only on OOM. */
json_t *eng_jstr(const char *s);

/* Set condition type in conds ("True"/"False"/"Unknown");
 * lastTransitionTime moves only when the status flips. */
void eng_cond_set(json_t *conds, const char *type, const char *status,
		  const char *reason, const char *message, const char *now);

/* Create (or find) rs's reconcile_status record and load what it
 * remembers. */
int eng_ensure_record(struct engine *en, struct rstate *rs, struct err *e);

/* Store rs's status when it changed (one write at most). Failures are
 * logged. */
void eng_persist(struct engine *en, struct rstate *rs);

/* The conditions of rs and its artifacts after a pass that returned rc. */
void eng_set_conditions(struct rstate *rs, int rc, const struct err *e,
			int64_t delay, json_t *warnings, const char *now);

/* True for the keys of a status record the engine writes itself
 * ("conditions", "artifacts", ...), which rctx_status_set() refuses. */
bool eng_status_key(const char *key);

/* Keep the newest ENGINE_EVENTS_KEPT events. */
void eng_trim_events(json_t *events);

/* Publish the snapshot engine_status() serves. */
void eng_publish(struct engine *en);

/* ---- watch.c -------------------------------------------------------------- */

/* Watch dir for flags; the wd, or -1 (missing directory, limit). */
int eng_watch_add(struct engine *en, const char *dir, unsigned flags);

/* eng_watch_add() for a directory rendered into: reached by a confined
 * walk from the root (util.h, fs_open_dir_beneath()), so a symlinked
 * directory on the way is not watched (-1), never followed. */
int eng_watch_add_beneath(struct engine *en, const char *dir,
			  unsigned flags);

/* The watch of wd, or NULL. */
struct watch *eng_watch_by_wd(struct engine *en, int wd);

/* Watch the directory of every artifact of rs that has no watch yet. */
void eng_watch_artifacts(struct engine *en, struct rstate *rs);

/* Watch the directory tree at dir (not .git), recursively, for the
 * reconciler called input. */
void eng_watch_tree(struct engine *en, const char *dir, const char *input,
		    int depth);

/* HEAD's commit of the checkout at dir ("" when none) and whether its
 * work tree is dirty. */
void eng_git_state(const char *dir, char rev[64], bool *dirty);

/* The checkout's git directory (absolute), or NULL. Caller frees. */
char *eng_git_dir_of(const char *dir);

/* Read every pending inotify event, then enqueue the owners of files
 * that changed. */
void eng_read_inotify(struct engine *en);

#endif
