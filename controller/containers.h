/*
 * rec_containers.h - the containers reconciler: keeps every container of
 * the `containers` collection running with the files it declares, through
 * the Docker Engine API (docker.h), restarting it only when the hash of
 * those files changed, never in storms.
 *
 * The reconciler (rec_containers, registered in registry.c) decides; the
 * runtime started here acts: it owns the engine client, one governor per
 * container (governor.h), a short-lived thread per action (start or restart,
 * then the wait until the container runs and is healthy) and one thread
 * that follows the engine's /events stream for the managed containers, so
 * an external stop or crash is noticed at once. Both threads only ask for
 * a pass (options.wake); every store write of this module happens on the
 * engine thread during a pass, except a manual restart request, which
 * containers_request_restart() records in the container's status
 * (status.restartRequest) from a request thread.
 *
 * Status of a container record (merged into what is there; other keys are
 * kept): desiredHash, appliedHash, appliedAt, container {running, status,
 * startedAt, health}, lastAction {action, reason, phase, hash, at,
 * message}, actions (count), breaker {open, until}, conditions (Ready,
 * Reconciling, Degraded with reasons ContainerMissing, EngineUnreachable,
 * RestartBudgetExhausted, ActionFailed, HealthTimeout, InvalidSpec,
 * EngineError), manualRestartHandled.
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
 * THREAD SAFETY NOTES: containers_start() and containers_stop() belong to
 * the thread that owns the server. Every other function may be called from
 * any thread between them (and returns ERR_UNAVAILABLE outside). Inside,
 * one mutex guards the container table, action results and the events
 * thread's state; a read-write lock keeps the runtime alive while a call
 * (a log stream included) uses it.
 */
#ifndef POCKETCTL_REC_CONTAINERS_H
#define POCKETCTL_REC_CONTAINERS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "docker.h"
#include "err.h"
#include "governor.h"
#include "store/store.h"

#define CONTAINERS_COLLECTION "containers"
#define CONTAINERS_RECONCILER "containers"      /* the reconciler's name */
#define CONTAINERS_FILES_MAX 10000              /* files hashed per container */
#define CONTAINERS_HASH_LEN GOVERNOR_HASH_LEN   /* hex SHA-256 */


struct containers_options {
	struct store *store;            /* borrowed; outlives the runtime */
	const char *root;               /* the render root the `files` are
	                                 * relative to (--root) */
	const char *docker_host;        /* NULL: $DOCKER_HOST, else the
	                                 * default socket */
	struct governor_config gov;   /* the restart governor */
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
 * Start the runtime: make the engine client (nothing is contacted yet:
 * an unreachable engine is a condition, not a start-up failure) and the
 * events thread. o is copied (root and docker_host too). Returns 0,
 * ERR_INVALID (a bad docker host), ERR_CONFLICT (already started) or
 * ERR_INTERNAL (thread).
 */
int containers_start(const struct containers_options *o, struct err *e);

/*
 * Stop the events thread, wait for actions in flight (their waits end at
 * once; an engine call finishes or times out), free the runtime.
 * Idempotent.
 */
void containers_stop(void);

/*
 * Record a manual restart of the managed container name, asked for by
 * `by` (an email or id, for the record): status.restartRequest = {id, at,
 * by}, then wake the reconciler, which restarts it (reason ManualRestart)
 * without waiting for the quiet period or the breaker. *out (nullable)
 * receives {name, request: {id, at, by}}; caller owns it. Returns 0,
 * ERR_NOT_FOUND (no such container in the collection - nothing else is
 * ever touched), ERR_UNAVAILABLE (runtime not started), ERR_DB.
 */
int containers_request_restart(const char *name, const char *by,
			       json_t **out, struct err *e);

/*
 * Inspect the managed container name (refused with ERR_NOT_FOUND when it
 * is not in the collection, before any engine call). Errors as
 * docker_inspect(), plus ERR_UNAVAILABLE when the runtime is not started.
 */
int containers_inspect(const char *name, struct docker_state *st,
		       struct err *e);

/*
 * docker_logs() for the managed container name, with the same refusal.
 * idle is also told to stop (returns non-zero) when the runtime stops.
 */
int containers_logs(const char *name, const struct docker_logs_options *lo,
		    docker_line_fn fn, docker_idle_fn idle, void *arg,
		    struct err *e);

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

#endif
