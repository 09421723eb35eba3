/*
 * containers.h - the container runtime: what acts on the managed
 * containers for the containers reconciler (reconcilers/rec_containers.c),
 * beside the Docker client it drives (docker.h). The reconciler decides
 * (its pass, on the engine thread, with one governor per container); the
 * runtime owns the engine clients, a short-lived thread per action (start
 * or restart, then the wait until the container runs and is healthy) and
 * one thread that follows the engine's /events stream for the managed
 * containers, so an external stop or crash is noticed at once. Both kinds
 * of thread only ask for a pass (options.wake). Request handlers reach the
 * runtime through engine_state(en, CONTAINERS_RECONCILER) for the manual
 * restart and the logs, which only ever touch a container of the
 * `containers` collection.
 *
 * Status of a container record, written by the reconciler (merged into
 * what is there; other keys are kept): desiredHash, appliedHash,
 * appliedAt, container {running, status, startedAt, health}, lastAction
 * {action, reason, phase, hash, at, message}, actions (count), breaker
 * {open, until}, conditions (Ready, Reconciling, Degraded with reasons
 * ContainerMissing, EngineUnreachable, RestartBudgetExhausted,
 * ActionFailed, HealthTimeout, InvalidSpec, EngineError),
 * manualRestartHandled. The runtime writes only status.restartRequest, in
 * containers_request_restart().
 *
 * Configuration (containers_options_init reads the environment):
 *   POCKETCTL_RESTART_QUIET_MS      quiet period, default 1000
 *   POCKETCTL_RESTART_MAX_DELAY_MS  longest a burst can defer, 10000
 *   POCKETCTL_RESTART_BUDGET        actions per window, default 5
 *   POCKETCTL_RESTART_WINDOW_MS     budget window, default 300000
 *   POCKETCTL_RESTART_COOLDOWN_MS   breaker open time, default 60000
 *   POCKETCTL_RESTART_BACKOFF_MS    first retry after a failure, 1000
 *   POCKETCTL_RESTART_BACKOFF_MAX_MS  retry cap, default 60000
 *
 * THREAD SAFETY NOTES: containers_new() and containers_free() belong to
 * the thread that owns the engine (the reconciler's start() and stop());
 * no other call may be in flight when containers_free() runs. The calls of
 * "the pass" below belong to the engine thread; the others may be called
 * from any thread. Inside, one mutex guards the container table, action
 * results and the events thread's state.
 */
#ifndef POCKETCTL_CONTAINERS_H
#define POCKETCTL_CONTAINERS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "docker.h"
#include "err.h"
#include "governor.h"
#include "util.h"

#define CONTAINERS_COLLECTION "containers"
#define CONTAINERS_RECONCILER "containers"      /* the reconciler's name */
#define CONTAINERS_FILES_MAX 10000              /* files hashed per container */
#define CONTAINERS_HASH_LEN GOVERNOR_HASH_LEN   /* hex SHA-256 */

struct store;
struct containers;

struct containers_options {
	const char *root;               /* the render root the `files` are
	                                 * relative to (--root) */
	const char *docker_host;        /* NULL: $DOCKER_HOST, else the
	                                 * default socket */
	struct governor_config gov;     /* the restart governor */
	int64_t health_poll_ms;         /* inspect interval while waiting for
	                                 * a container to come up; 100 */
	/*
	 * Ask the engine for a pass of the containers reconciler, from any
	 * thread (events thread, action threads, request threads); cheap and
	 * non-blocking. NULL: the reconciler asks for a pass every poll_ms
	 * instead (a fallback that is slower to notice events).
	 */
	void (*wake)(void *arg);
	void *wake_arg;
	int64_t poll_ms;                /* without wake; default 1000 */
};

/* Fill o with the defaults, then the POCKETCTL_RESTART_* overrides. */
void containers_options_init(struct containers_options *o);

/*
 * Make the runtime: the engine clients (nothing is contacted yet: an
 * unreachable engine is a condition, not a start-up failure) and the
 * events thread. o is copied (root and docker_host too). Returns 0,
 * ERR_INVALID (a bad docker host), ERR_NOMEM or ERR_INTERNAL (thread).
 * Caller owns *out (containers_free()).
 */
int containers_new(struct containers **out, const struct containers_options *o,
		   struct err *e);

/*
 * Stop the events thread, wait for actions in flight (their waits end at
 * once; an engine call finishes or times out), free the runtime. Accepts
 * NULL.
 */
void containers_free(struct containers *rt);

/* The options as containers_new() copied (clamped). Borrowed. */
const struct containers_options *containers_options(const struct containers *rt);

/* ---- for request handlers (any thread) ------------------------------------ */

/*
 * Record a manual restart of the managed container name, asked for by
 * `by` (an email or id, for the record): status.restartRequest = {id, at,
 * by} in store s, then wake the reconciler, which restarts it (reason
 * ManualRestart) without waiting for the quiet period or the breaker.
 * *out (nullable) receives {name, request: {id, at, by}}; caller owns it.
 * Returns 0, ERR_NOT_FOUND (no such container in the collection - nothing
 * else is ever touched), ERR_UNAVAILABLE (rt is NULL: no runtime), ERR_DB.
 */
int containers_request_restart(struct containers *rt, struct store *s,
			       const char *name, const char *by, json_t **out,
			       struct err *e);

/*
 * Inspect the managed container name (refused with ERR_NOT_FOUND when it
 * is not in the collection of s, before any engine call). Errors as
 * docker_inspect(), plus ERR_UNAVAILABLE when rt is NULL.
 */
int containers_inspect(struct containers *rt, struct store *s,
		       const char *name, struct docker_state *st,
		       struct err *e);

/*
 * docker_logs() for the managed container name, with the same refusal.
 * idle is also told to stop (returns non-zero) when the runtime stops.
 */
int containers_logs(struct containers *rt, struct store *s, const char *name,
		    const struct docker_logs_options *lo, docker_line_fn fn,
		    docker_idle_fn idle, void *arg, struct err *e);

/*
 * The desired hash of a container: SHA-256 (hex) over its files, relative
 * to root. files is a JSON array of relative paths; one ending in '/'
 * stands for every regular file below that directory (recursively).
 * Paths are sorted and de-duplicated; each contributes its name and either
 * its contents or a marker saying it is missing (a missing file is not an
 * error: the container waits for it like any change). *newest_ns
 * (nullable) receives the newest modification time (Unix ns) among them.
 * Returns 0, ERR_INVALID (files not an array of safe relative paths:
 * absolute, "..", empty, control characters), ERR_TOO_LARGE (more than
 * CONTAINERS_FILES_MAX files), ERR_IO (a file that exists cannot be read).
 */
int containers_hash_files(const char *root, json_t *files,
			  char out[CONTAINERS_HASH_LEN + 1], int64_t *newest_ns,
			  struct err *e);

/* ---- for the pass (the engine thread) ------------------------------------- */

enum containers_act { CONTAINERS_START, CONTAINERS_RESTART };

/* One action: the parameters the pass fixes when it launches it, and the
 * outcome the action thread writes once when it ends. */
struct containers_action {
	enum containers_act kind;
	char reason[32];
	char hash[CONTAINERS_HASH_LEN + 1];
	char manual_id[ID_LEN + 1];
	char at[TIME_LEN + 1];
	int stop_timeout;
	int health_timeout;
	/* the outcome */
	int rc;
	char fail_reason[32];
	char msg[ERR_MSG_MAX];
};

/* What the pass keeps of a container between passes; the runtime only
 * stores it (engine thread only, not locked). */
struct container_book {
	struct governor gov;
	int64_t retry_delay;        /* after an engine error: ask again then */
	int64_t down_since;         /* first pass that saw it not running, 0 */
	uint64_t starts, restarts;  /* actions launched since the server
	                             * started (for /metrics) */
};

/* A pass begins: no container is seen yet. */
void containers_pass_begin(struct containers *rt);

/* The book of container name, made on first sight, and name is seen by
 * this pass. Valid until containers_pass_end() forgets it. NULL on OOM. */
struct container_book *containers_book(struct containers *rt,
				       const char *name);

/*
 * A pass ends: forget the containers it did not see once their action
 * has ended, and have the events thread follow exactly those it saw.
 * Returns true when an action is still in flight.
 */
bool containers_pass_end(struct containers *rt);

/* Is an action of name in flight (launched, not collected)? *kind
 * (nullable) receives which. */
bool containers_busy(struct containers *rt, const char *name,
		     enum containers_act *kind);

/*
 * Launch action a (copied) on a thread of its own. Returns 0,
 * ERR_CONFLICT (an action of name is in flight) or ERR_INTERNAL (no
 * thread).
 */
int containers_launch(struct containers *rt, const char *name,
		      const struct containers_action *a);

/* The finished action of name into *out (the thread joined): true once
 * per action, false while none has finished. */
bool containers_collect(struct containers *rt, const char *name,
			struct containers_action *out);

/* The pass's inspect: docker_inspect() with a short timeout, so a pass
 * never waits long. */
int containers_peek(struct containers *rt, const char *name,
		    struct docker_state *st, struct err *e);

#endif
