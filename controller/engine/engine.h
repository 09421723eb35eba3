/*
 * engine.h - the reconcile engine: one thread that keeps every rendered
 * file in step with the store.
 *
 * The thread sleeps in one poll() on three descriptors: an eventfd (kicked
 * after every commit through a store commit hook, and by engine_kick() /
 * engine_request_full()), an inotify descriptor (the directory of every
 * file a reconciler owns, plus the manifests directory with --watch) and a
 * timerfd (the earliest of: a retry after backoff, a requested requeue,
 * the manifests debounce, the periodic resync). When it wakes it reads the
 * change log after the last revision it saw (the change log is the source
 * of truth; a kick only wakes), enqueues the reconcilers whose `reads`
 * include a changed collection (status-only changes are skipped, so status
 * writes never re-trigger anything), and runs the ready keys of its work
 * queue (workq.h) one at a time. Idle, it does not wake at all until the
 * next periodic resync (default 10 minutes, jittered) and writes nothing.
 *
 * Every outcome becomes status: one reconcile_status record per reconciler
 * (and one named "manifests" with --watch), whose status carries
 * Kubernetes-style conditions (Ready, Reconciling, Degraded with reason,
 * message and lastTransitionTime), observedRevision, lastError, failures,
 * nextRetryTime, warnings, the artifacts (path, sha256, mode, conditions)
 * and recent events (DriftCorrected naming the file). Those writes go
 * through the change log, so /api/v1/watch streams them. Records read by a
 * reconciler are not written after a pass: their observedGeneration is
 * computed when they are read, from the reconcilers' observedRevision
 * (observed.h; engine_observed()).
 *
 * Calling sequence (server.c):
 *     engine_new() -> engine_start() -> ... -> engine_stop() -> engine_free()
 * engine_new() starts the reconcilers that have a lifecycle (their start(),
 * reconciler.h) and engine_free() stops them, after the thread has ended;
 * engine_stop() and engine_start() in between only stop and restart the
 * thread.
 *
 * THREAD SAFETY NOTES: engine_kick(), engine_enqueue(),
 * engine_request_full(), engine_reload(), engine_status(), engine_observed(),
 * engine_full_done(), engine_wakeups() and engine_state() may be called
 * from any thread between engine_start() and engine_free() (engine_kick()
 * also on NULL);
 * a state from engine_state() locks itself.
 * Everything else in struct engine belongs to the engine thread, except the
 * published status snapshot, which a mutex guards. engine_new(),
 * engine_start(), engine_stop() and engine_free() belong to the thread that
 * owns the server. The engine thread blocks every signal.
 */
#ifndef POCKETCTL_ENGINE_H
#define POCKETCTL_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "observed.h"
#include "store/schema.h"
#include "protocol.h"
#include "store/store.h"

struct push_options;
struct poco_options;

struct reconciler;

#define ENGINE_RESYNC_MS ((int64_t)10 * 60 * 1000)  /* periodic full pass */
#define ENGINE_DEBOUNCE_MS 200                      /* manifests re-apply */
#define ENGINE_EVENTS_KEPT 10                       /* per status record */
/* The status wire names live in protocol.h, which the CLI shares. */
#define ENGINE_STATUS_COLLECTION PROTO_STATUS_COLLECTION
#define ENGINE_MANIFESTS_KEY PROTO_MANIFESTS_KEY

struct engine;

struct engine_options {
	struct store *store;            /* borrowed; outlives the engine */
	const struct schema *schema;    /* borrowed */
	const char *root;               /* --root; NULL = ./pocket-root */
	const char *paths_config;       /* path overrides file; NULL = the
	                                 * one paths_default_config() finds
	                                 * for data_dir (none without) */
	const char *data_dir;           /* the data directory, or NULL */
	const char *docker_host;        /* --docker for the containers
	                                 * reconciler; NULL = $DOCKER_HOST */
	const char *manifests_dir;      /* re-applied on change when
	                                 * watch_manifests; NULL = none */
	bool watch_manifests;
	int64_t backup_every_ms;        /* scheduled backups (rec_backups);
	                                 * 0 = none */
	int backup_keep;                /* scheduled backups kept */
	int64_t cron_grace_ms;          /* cron catch-up window (rec_cron);
	                                 * 0 = no catch-up */
	const char *manifests_applyset; /* the apply set they apply as, with
	                                 * prune; NULL or "": none */
	const struct push_options *push; /* rec_push's options (reconciler.h);
	                                 * borrowed, outlives the engine;
	                                 * NULL = defaults */
	const struct poco_options *poco; /* rec_poco's options (reconciler.h);
	                                 * borrowed, outlives the engine;
	                                 * NULL = off */
	int64_t resync_ms;              /* 0 = ENGINE_RESYNC_MS; < 0 = never */
	int64_t backoff_min_ms;         /* 0 = 100 ms */
	int64_t backoff_max_ms;         /* 0 = 60 s */
	int64_t debounce_ms;            /* 0 = ENGINE_DEBOUNCE_MS */
	/* The reconcilers to run; NULL = the registry (reconcilers[]). */
	const struct reconciler *const *reconcilers;
	size_t nreconcilers;
};

/*
 * Fill o with the defaults, taking these from the environment when set
 * (for tests and tuning): POCKETCTL_RESYNC_MS (periodic full pass; a
 * negative value turns it off), POCKETCTL_BACKOFF_MIN_MS,
 * POCKETCTL_BACKOFF_MAX_MS, POCKETCTL_DEBOUNCE_MS. Malformed values are
 * ignored.
 */
void engine_options_init(struct engine_options *o);

/*
 * Make an engine: resolve the paths (the keys the reconcilers declare),
 * start the reconcilers that have a start() (one that says RECONCILER_OFF
 * is left out), create (or find) the status records and load what they
 * remember (the files owned and their hashes, the conditions), register
 * the store commit hook. Does not start the thread. On error e says why (a
 * bad paths config names its file:line:column; a start() that failed names
 * its reconciler). Caller owns *out (engine_free()).
 */
int engine_new(struct engine **out, const struct engine_options *o,
	       struct err *e);

/*
 * Start the engine thread. Its first pass is a full one: every reconciler
 * runs (catching changes made while the server was down, and drift), and
 * with watch_manifests the manifests are applied first. Returns 0 or
 * ERR_INTERNAL / ERR_IO (descriptors, thread).
 */
int engine_start(struct engine *en, struct err *e);

/* Stop and join the thread (the reconciler running, if any, finishes its
 * pass first). Idempotent; accepts NULL. */
void engine_stop(struct engine *en);

/* Stop if needed, stop the reconcilers (their stop(), in reverse order),
 * unregister the commit hook and free. Accepts NULL. No other thread may
 * call into the engine, or use a state from engine_state(), any more. */
void engine_free(struct engine *en);

/* Wake the engine to read new change-log rows. Cheap and non-blocking
 * (one write to an eventfd); safe from any thread. Accepts NULL. */
void engine_kick(struct engine *en);

/*
 * Ask for a pass of the reconciler called name soon, from any thread (a
 * container event, an action that finished): cheap and non-blocking (a
 * flag and a kick). Unknown names are ignored; accepts NULL.
 */
void engine_enqueue(struct engine *en, const char *name);

/*
 * The state the start() of the reconciler called name made (NULL when
 * there is none, or no such reconciler runs): how a request handler
 * reaches a reconciler's runtime (the containers one: containers.h).
 * Borrowed; valid until engine_free(). The state locks itself.
 */
void *engine_state(struct engine *en, const char *name);

/*
 * The configured paths of the files the reconcilers declare secret
 * (struct reconciler.secret_keys: llm.env, its copy, mcp.env), every
 * reconciler of the registry's, turned-off ones left out: up to max of
 * them into out (borrowed; valid until engine_free()). Returns how many
 * there are (possibly more than max). Read-only after engine_new(), so
 * any thread may call it; accepts NULL (0).
 */
size_t engine_secret_paths(struct engine *en, const char **out, size_t max);

/*
 * Ask for an immediate full pass (every reconciler, and a re-apply of the
 * watched manifests). Returns the request's number: the pass is over when
 * engine_full_done() reaches it.
 */
uint64_t engine_request_full(struct engine *en);

/*
 * Re-read the paths configuration (SIGHUP), from any thread: the file
 * engine_options.paths_config named, or the one paths_default_config()
 * finds now; then a full pass (and a re-apply of the watched manifests),
 * whose number is returned as engine_request_full() does. Cheap and
 * non-blocking (a counter and a kick); the work is the engine thread's.
 * A good file replaces the paths: the passes render to the new ones and
 * remove the files they owned at the old ones (when still as written). A
 * bad file is logged, the paths stay as they were, and every reconciler
 * that owns paths is Degraded (reason PathsInvalid, the file:line:col
 * message; also "pathsError" in engine_status()) until a reload succeeds.
 * Accepts NULL (returns 0).
 */
uint64_t engine_reload(struct engine *en);

/* The number of the last requested full pass that has completed (every
 * reconciler ran once after the request, successfully or not). */
uint64_t engine_full_done(struct engine *en);

/*
 * How many times the engine thread has woken from its poll() so far: a
 * counter that moves as long as the thread goes round its loop (an
 * engine_kick() makes it move when idle; it stands still while a pass is
 * stuck, or after engine_stop()). Any thread; accepts NULL (0). The
 * systemd watchdog (server/sdnotify.h) reads it.
 */
uint64_t engine_wakeups(struct engine *en);

/*
 * The status of everything, as GET /api/v1/status returns it:
 *   {"head": REV, "observedRevision": REV, "root": DIR,
 *    "paths": {key: path|null}, "pathsError": MSG (after a refused
 *    reload, engine_reload()),
 *    "engine": {"running": true, "fullPassRequested": N,
 *               "fullPassCompleted": N, "wakeups": N, "passes": N,
 *               "resyncIntervalMs": N},
 *    "reconcilers": [{"name", "description", "reads", "queue": {...},
 *                     ...status...}],
 *    "manifests": {...status...} (only with a manifests directory)}
 * Caller owns *out (json_decref). Returns 0 or ERR_NOMEM.
 */
int engine_status(struct engine *en, json_t **out, struct err *e);

/*
 * observed_add() to o every running reconciler's reads and the
 * observedRevision of its last good pass, as last published (the source
 * of engine_status(), so cheap: no store read). From any thread. Returns
 * 0 or ERR_NOMEM.
 */
int engine_observed(struct engine *en, struct observed *o, struct err *e);

#endif
