/*
 * docker.h - a small Docker Engine API client (libcurl) and the log-frame
 * demultiplexer: the container-backend seam. The restart governor that
 * decides when a managed container may be restarted is governor.h.
 *
 * The client speaks the versioned API (/v1.41/...) over a unix socket
 * (unix:///var/run/docker.sock) or TCP (tcp://host:port, the socket-proxy
 * setup), with a connect and a total timeout on every call; streams (logs,
 * events) have a connect timeout and end when their callback says so. Errors
 * carry the engine's own JSON "message". The client refuses container names
 * that are not Docker names, so a name can never smuggle a path; deciding
 * WHICH containers may be touched is the caller's job (containers.c and
 * api_containers.c allow only the `containers` collection).
 *
 * The demultiplexer is a pure state machine (no clock, no I/O) so that it
 * can be tested alone.
 *
 * THREAD SAFETY NOTES: a struct docker is immutable after docker_new() and
 * may be used from any number of threads at once; every call makes its own
 * curl handle. A struct docker_demux belongs to its caller and is not
 * locked.
 */
#ifndef POCKETCTL_DOCKER_H
#define POCKETCTL_DOCKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define DOCKER_DEFAULT_HOST "unix:///var/run/docker.sock"
#define DOCKER_API_VERSION "1.41"
#define DOCKER_CONNECT_TIMEOUT_MS 2000L
#define DOCKER_TIMEOUT_MS 10000L       /* whole call, short calls */
#define DOCKER_NAME_MAX 128            /* longest container name accepted */
#define DOCKER_LINE_MAX 16384          /* longer log lines are split */

struct docker;

struct docker_options {
	const char *host;           /* "unix:///path", "tcp://host:port" or
	                             * "http://host:port"; NULL or "": $DOCKER_HOST,
	                             * else DOCKER_DEFAULT_HOST */
	long connect_timeout_ms;    /* <= 0: DOCKER_CONNECT_TIMEOUT_MS */
	long timeout_ms;            /* <= 0: DOCKER_TIMEOUT_MS */
};

/*
 * Make a client. Nothing is contacted yet. Returns 0, ERR_INVALID when the
 * host is not one of the forms above (or its socket path is too long),
 * ERR_NOMEM or ERR_INTERNAL (libcurl could not be initialised). Caller owns
 * *out (docker_free()).
 */
int docker_new(struct docker **out, const struct docker_options *o,
	       struct err *e);

/* Accepts NULL. */
void docker_free(struct docker *d);

/* The host as given ("unix:///run/docker.sock"), for messages. Borrowed;
 * valid until docker_free(). */
const char *docker_host(const struct docker *d);

/* True when name is a Docker container name: [A-Za-z0-9][A-Za-z0-9_.-]+,
 * at most DOCKER_NAME_MAX bytes. NULL is false. */
bool docker_name_ok(const char *name);

/*
 * Error convention for every call below:
 *   - ERR_INVALID: a bad name or argument (no engine call was made), or the
 *     engine answered 400;
 *   - ERR_UNAVAILABLE: the engine could not be reached, the connection
 *     broke, or the call timed out ("container engine at 'HOST'
 *     unreachable: WHY");
 *   - ERR_NOT_FOUND: the engine answered 404 (no such container);
 *   - ERR_CONFLICT: 409, or podman's 500 "container state improper"
 *     (another action is under way: retry later);
 *   - ERR_ENGINE: any other answer >= 400, or a reply that is not the JSON
 *     expected; the message carries the engine's "message".
 */

/* GET /_ping. Returns 0 or an error above. */
int docker_ping(struct docker *d, struct err *e);

/* What inspect says about a container. */
struct docker_state {
	char id[72];
	char status[24];        /* "running", "exited", "created", ... */
	bool running;
	bool restarting;
	bool tty;               /* Config.Tty: logs are raw, not framed */
	bool has_health;        /* the container has a healthcheck */
	char health[24];        /* "starting", "healthy", "unhealthy", or "" */
	int exit_code;
	char started_at[48];    /* RFC 3339 as the engine gives it, or "" */
	char finished_at[48];
	int64_t started_ns;     /* StartedAt as Unix nanoseconds; 0 when never */
};

/* GET /containers/NAME/json into *out. Errors above. */
int docker_inspect(struct docker *d, const char *name,
		   struct docker_state *out, struct err *e);

/* POST /containers/NAME/start. Already running (304) is success. */
int docker_start(struct docker *d, const char *name, struct err *e);

/*
 * POST /containers/NAME/restart?t=T (and /stop?t=T): T seconds for the
 * process to exit after SIGTERM before SIGKILL (always sent: podman kills at
 * once without it). The call's timeout is T seconds plus the short-call
 * timeout. stop: already stopped (304) is success.
 */
int docker_restart(struct docker *d, const char *name, int t, struct err *e);
int docker_stop(struct docker *d, const char *name, int t, struct err *e);

/*
 * Called by streams at least about once a second while nothing arrives, and
 * between deliveries: return 0 to go on, non-zero to end the stream (the
 * stream call then returns that value). Used to notice that the HTTP client
 * went away (write a heartbeat, see it fail) or that the server is stopping.
 */
typedef int (*docker_idle_fn)(void *arg);

/* One log line (without its '\n' or a trailing '\r'; not NUL-terminated)
 * from stream 1 (stdout) or 2 (stderr); raw TTY output counts as stdout.
 * Return 0 to go on, non-zero to stop. */
typedef int (*docker_line_fn)(void *arg, int stream, const char *line,
			      size_t len);

struct docker_logs_options {
	int tail;               /* last N lines; < 0: all */
	bool follow;            /* keep streaming new lines */
	int64_t since;          /* Unix seconds; 0: from the beginning */
	long timeout_ms;        /* whole stream; 0: none (follow) */
};

/*
 * Stream a container's logs line by line to fn: inspect (for Config.Tty)
 * then GET /containers/NAME/logs?stdout=1&stderr=1&tail=..&follow=..
 * Multiplexed frames are decoded; TTY containers are read raw. Returns 0
 * when the engine ended the stream, the non-zero value fn or idle returned
 * when they stopped it, or an error above (ERR_INVALID for a corrupt frame).
 */
int docker_logs(struct docker *d, const char *name,
		const struct docker_logs_options *o, docker_line_fn fn,
		docker_idle_fn idle, void *arg, struct err *e);

/* One engine event; strings are borrowed for the duration of the call. */
struct docker_event {
	const char *type;       /* "container", ... */
	const char *action;     /* "start", "die", "restart", "died", ... */
	const char *name;       /* Actor.Attributes.name, or "" */
	const char *id;         /* Actor.ID, or "" */
	int64_t time_ns;        /* timeNano (or time * 1e9) */
};
typedef int (*docker_event_fn)(void *arg, const struct docker_event *ev);

/*
 * Stream GET /events?since=..&filters={"type":["container"],"container":[..]}
 * (line-delimited JSON) to fn until fn or idle returns non-zero (that value
 * is returned), the engine ends the stream (0), or an error above. names
 * (n of them, each docker_name_ok) restrict the stream to those containers;
 * n == 0 means every container. since_ns > 0 replays events from that time
 * (second granularity, inclusive: expect repeats); 0 starts from now. A
 * reconnecting caller passes the time_ns of the last event it saw.
 */
int docker_events(struct docker *d, const char *const *names, size_t n,
		  int64_t since_ns, docker_event_fn fn, docker_idle_fn idle,
		  void *arg, struct err *e);

/* ---- log frame demultiplexer (pure) ---------------------------------- */

/*
 * Docker's multiplexed log stream: frames of an 8-byte header (byte 0 the
 * stream: 0 stdin, 1 stdout, 2 stderr, 3 system error; bytes 1-3 zero;
 * bytes 4-7 the big-endian payload length) followed by the payload. Lines
 * may span frames and frames may span reads; each stream keeps its own
 * partial line. Raw mode (TTY containers) has no headers.
 *
 * Calling sequence: docker_demux_init() -> docker_demux_feed()... ->
 * docker_demux_finish() (flushes unterminated last lines) ->
 * docker_demux_release().
 */
struct docker_demux {
	bool raw;
	bool broken;            /* a corrupt header was seen: refuse more */
	unsigned char hdr[8];
	size_t hlen;            /* header bytes gathered so far */
	uint32_t left;          /* payload bytes left in the current frame */
	int stream;             /* stream of the current frame */
	struct buf line[4];     /* partial line per stream */
};

void docker_demux_init(struct docker_demux *dm, bool raw);
void docker_demux_release(struct docker_demux *dm);  /* accepts NULL */

/*
 * Feed len bytes. fn gets every completed line (lines longer than
 * DOCKER_LINE_MAX in pieces of that size). Returns 0, the non-zero value fn
 * returned (feeding stops there), ERR_INVALID for a corrupt frame header
 * (then and afterwards), or ERR_NOMEM.
 */
int docker_demux_feed(struct docker_demux *dm, const void *data, size_t len,
		      docker_line_fn fn, void *arg, struct err *e);

/* Deliver unterminated partial lines (stdout first). Same returns. */
int docker_demux_finish(struct docker_demux *dm, docker_line_fn fn,
			void *arg, struct err *e);

#endif
