/*
 * server.h - `pocketctl serve`: civetweb, the routes, the SSE hubs, the
 * reconcile engine, one process.
 *
 * Threads: civetweb workers parse, validate, commit to the store and reply
 * (never waiting for a file write or a container restart); the hub thread
 * tails the change log and wakes SSE streams; the stream pump thread
 * (pump.h) writes every open SSE stream, so a stream holds a worker only
 * while it starts; the engine thread runs the reconcilers. Streams are
 * counted against their own cap (max_streams) and the worker pool is sized
 * workers + a small start-up reserve, so open SSE clients can never starve
 * ordinary requests. With the pump off (POCKETCTL_STREAM_PUMP=0) each
 * stream runs on its worker, and the pool is sized workers + max_streams.
 * controller/THREADS.md lists every thread of the process.
 *
 * Files in the data directory (besides the store and secret.key):
 *   DIR/lock         flock'd exclusively while a server runs (offline CLI
 *                    commands hold it shared); holds the server's pid.
 *   DIR/server.json  {"url": "http://HOST:PORT", "pid": N}, written once
 *                    civetweb listens (a wildcard host becomes 127.0.0.1;
 *                    port 0 becomes the port the kernel chose) and removed
 *                    on a clean stop: how a CLI on this machine finds the
 *                    server. A stale one is removed right after the lock
 *                    is taken, so a held lock without server.json means a
 *                    server is still starting (opening the store, applying
 *                    --manifests).
 *   DIR/cli.token    one line: a superuser token (0600) for the local CLI,
 *                    issued anew at every start with a 365-day lifetime for
 *                    the _superusers record "pocketctl-cli@localhost",
 *                    whose password can never match (so the token is its
 *                    only way in). Send it as "Authorization: TOKEN".
 *
 * Stream handlers (route.stream = true) hand their stream to the pump
 * (setting r->detached: the pump gives the stream slot back when it ends),
 * or, with the pump off, must end promptly when the server stops: they
 * poll atomic_load(&srv->stopping) at least once a second (hub_wait() returns
 * HUB_STOPPED for them), because mg_stop() joins every worker thread.
 *
 * Request flow: every request gets one line on stderr ("METHOD PATH STATUS
 * MS", path without the query); an invalid or expired token in
 * Authorization is a 401 on every route before the handler runs, a missing
 * one makes the caller a guest; a stream route beyond max_streams is a 503
 * before its handler runs.
 */
#ifndef POCKETCTL_SERVER_H
#define POCKETCTL_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "err.h"
#include "ratelimit.h"
#include "reconciler.h"
#include "store/schema.h"
#include "store/store.h"

struct server_options {
	const char *listen;          /* "127.0.0.1:8090" */
	const char *data_dir;        /* "./pocket-data" */
	const char *root_dir;        /* where rendered files go, "./pocket-root" */
	const char *manifests_dir;   /* applied at start when set */
	const char *secret_key_file; /* key of the secrets at rest (--secret-key,
	                              * $POCKETCTL_SECRET_KEY_FILE); NULL =
	                              * DATA_DIR/secret.key */
	const char *docker_host;     /* container engine (--docker): unix:///PATH
	                              * or tcp://HOST:PORT; NULL = $DOCKER_HOST,
	                              * else unix:///var/run/docker.sock */
	bool watch_manifests;        /* re-apply on change (--watch) */
	const char *applyset;        /* --applyset: the set the watched
	                              * manifests apply as (and prune); NULL =
	                              * named after the directory */
	size_t max_body;             /* records API bodies, default 1 MiB */
	size_t max_apply_body;       /* /api/v1/apply bodies, default 16 MiB */
	int workers;                 /* request workers, default 128 */
	int max_conns_per_ip;        /* connections held per client address
	                              * (--max-conns-per-ip), default 64, 0 =
	                              * no cap */
	int64_t header_timeout_ms;   /* a request's headers (--header-timeout),
	                              * default 10 s */
	int64_t body_timeout_ms;     /* a request's body (--body-timeout),
	                              * default 60 s */
	int max_streams;             /* concurrent SSE streams, default 1024 */
	int token_ttl;               /* auth token lifetime (s), default 86400*7 */
	int bcrypt_cost;             /* default 10 */
	struct ratelimit_config rate;/* request budgets (ratelimit.h):
	                              * --rate-limit, POCKETCTL_RATE_LIMIT */
	int64_t backup_every_ms;     /* --backup-every; 0 = no scheduled
	                              * backups (the default) */
	int backup_keep;             /* --backup-keep, default 7 */
	int64_t cron_grace_ms;       /* --cron-grace, default 1 h; 0 = no
	                              * catch-up of missed cron slots */
	const char *observability_url; /* --observability-url: the upstream
	                              * of the observability proxy
	                              * (api_proxy.h); NULL = none (503) */
	struct push_options push;    /* --push-relay, --push-relay-secret-file,
	                              * --push-allow, --push-rate
	                              * (reconciler.h) */
	struct poco_options poco;    /* --opencode-url, --poco-notify-window
	                              * (reconciler.h) */
};

struct hub;
struct pump;
struct metrics;
struct engine;
struct tokens;
struct conns;
struct respcache;

/* Shared by every thread; fields are set before civetweb starts and are
 * read-only afterwards (the objects they point at lock for themselves). */
struct server {
	const struct server_options *opts;
	const struct schema *schema;
	struct store *store;
	struct auth_keys keys;
	struct hub *hub;
	struct pump *pump;           /* NULL: streams run on their worker */
	struct metrics *metrics;
	char applyset[256];          /* the watched manifests' apply set, or
	                              * "" (no --watch) */
	struct engine *engine;       /* NULL until the engine lands (its
	                              * start/stop hooks are marked
	                              * HOOK(engine) in server.c) */
	struct mg_context *ctx;
	struct tokens *tokens;       /* verified tokens (tokens.h), so a
	                              * repeated token costs no HMAC and, while
	                              * no auth record changed, no read */
	struct ratelimit *ratelimit; /* the budgets' counters (locks for
	                              * itself) */
	struct conns *conns;         /* the connection guard (conns.h; locks
	                              * for itself) */
	struct respcache *replies;   /* list and view replies by store head
	                              * (respcache.h; locks for itself) */
	_Atomic int worker_streams;  /* STREAM_WORKER routes running */
	atomic_bool stopping;        /* set on SIGINT/SIGTERM (atomic_store,
	                              * read with atomic_load) */
};

/*
 * Streams that keep their worker while the pump runs (container logs, or a
 * stream the pump could not take over) are capped at WORKER_STREAMS_MAX at
 * once; the worker pool has room for them. Take a slot (true) or learn
 * that none is free (false); the request handler gives it back after the
 * handler returns when r->worker_stream is set.
 */
#define WORKER_STREAMS_MAX 16
bool server_worker_stream_take(struct server *srv);

/* Fill o with the defaults above. */
void server_options_init(struct server_options *o);

/*
 * Run the server until SIGINT/SIGTERM, then drain requests and streams and
 * close the store (server.json is removed before the lock is released).
 * SIGHUP re-applies an unwatched --manifests directory and has the engine
 * re-read the paths configuration (engine_reload()); failures are logged
 * and the server goes on. A second server on the same data directory is refused
 * (flock on DIR/lock) with a message naming the directory. Returns 0 or a
 * negative ERR_* with e set.
 */
int server_run(const struct server_options *o, const struct schema *schema,
	       struct err *e);

#endif
