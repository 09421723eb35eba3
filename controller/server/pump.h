/*
 * pump.h - the stream pump: a few threads that serve every open SSE stream
 * (/api/v1/watch, /api/realtime) off civetweb's worker threads.
 *
 * civetweb runs a handler on a worker thread for as long as the handler
 * runs, so a stream used to hold a thread (and its stack) for hours: a
 * thousand watchers were a thousand threads, 28 KiB each. Now a stream
 * handler sets its stream up on the worker (checks, headers, the first
 * events), hands the connection's socket to the pump and returns: the
 * worker is free at once, and an idle stream costs its state only.
 *
 * Hand-off: civetweb 1.15 has no call that gives up a connection, so
 * pump_find_socket() finds the descriptor by its address pair (the peer and
 * local address of each open socket against the request's) and
 * pump_adopt() keeps a duplicate of it, then puts one end of a socketpair
 * whose other end is already closed under the original descriptor number:
 * civetweb finishes the request on a connection whose peer has left (reads
 * see end of file), closes that, and never touches the client again.
 *
 * Lanes: the pump runs one thread per CPU, at most PUMP_LANES
 * (POCKETCTL_PUMP_THREADS sets the count, 1 to PUMP_LANES_MAX). A new
 * stream goes to the lane that serves the fewest and stays there. Writing
 * an event to a thousand sockets is a thousand send() calls, each paying
 * the kernel's TCP path and the wake-up of the reader: one thread was the
 * bound on how soon the last watcher gets a change, and lanes share it
 * out over the CPUs. Lanes run PUMP_NICE steps nicer than the process:
 * with every CPU busy telling watchers, the worker that committed a write
 * still answers it soon (without it, on 2 CPUs with 1,000 watchers, the
 * writer's reply p50 went from 1.0-1.1 ms to 1.3-2.2 ms; with it 1.1-1.2).
 *
 * Each lane thread sleeps in epoll on its own hub wake descriptor (written
 * at every publish), on the streams' sockets (the client left, or the socket
 * is writable again) and until the earliest stream deadline. On news each
 * stream whose output is written out is asked to fill (struct sse_stream)
 * and what it buffered is written without blocking. A client that does not
 * read keeps its unwritten bytes while its cursor waits (it catches up from
 * the ring or the store later, or is reset); one whose socket's send
 * queue (PUMP_SNDBUF) does not move for PUMP_STALL_MS
 * (POCKETCTL_STREAM_STALL_MS) is dropped. Ended streams get the body's end
 * (when their socket takes it) and are closed; their slot under
 * max_streams is given back through metrics_stream_leave().
 *
 * Calling sequence (server.c): pump_new() -> pump_start() -> stream
 * handlers call pump_find_socket() + pump_adopt() -> pump_stop() (ends
 * every stream) -> mg_stop() -> pump_free().
 *
 * THREAD SAFETY NOTES: pump_find_socket() and pump_adopt() may be called
 * from any worker while the pump runs; new streams reach their lane's
 * thread through that lane's mutex-guarded queue. Everything else about a
 * stream, once adopted, belongs to its lane's thread (its fill and release
 * run there); streams of different lanes share only what the hub, the
 * presence registry and the metrics guard themselves (the same as streams
 * on civetweb workers).
 */
#ifndef POCKETCTL_PUMP_H
#define POCKETCTL_PUMP_H

#include "err.h"
#include "http.h"
#include "hub.h"
#include "metrics.h"
#include "sse.h"

#define PUMP_STALL_MS 60000    /* a socket that takes nothing this long */
#define PUMP_SNDBUF (128 << 10) /* SO_SNDBUF of a stream's socket (the
                                 * kernel doubles it) */
#define PUMP_LANES 4            /* lane threads at most, by default */
#define PUMP_LANES_MAX HUB_WAKE_FDS /* POCKETCTL_PUMP_THREADS at most */
#define PUMP_NICE 5             /* the lanes' nice increment
                                 * (POCKETCTL_PUMP_NICE, 0-19) */

struct pump;

/* Make a pump that wakes on h's publishes and gives stream slots back to
 * m (both borrowed, nullable m). Returns 0, ERR_NOMEM or ERR_IO. */
int pump_new(struct pump **out, struct hub *h, struct metrics *m,
	     struct err *e);

/* Start the lane threads. Returns 0 or ERR_INTERNAL (the lanes started
 * are stopped again). */
int pump_start(struct pump *p, struct err *e);

/*
 * The socket descriptor of r's connection, found by address. Call before
 * anything is sent, so that a failure can still be replied to. Returns
 * the descriptor (still civetweb's) or ERR_UNAVAILABLE with e set.
 */
int pump_find_socket(const struct http_req *r, struct err *e);

/*
 * Take over the connection whose socket is fd (from pump_find_socket()):
 * from now on st (owned by the pump from here) is driven by the pump
 * thread, which writes st->out as it is and fills it from there, and
 * calls st->release once the stream ended. Returns 0, or ERR_UNAVAILABLE
 * (the pump is stopping) / ERR_IO / ERR_NOMEM with e set, leaving st and
 * the connection with the caller as they were.
 */
int pump_adopt(struct pump *p, int fd, struct sse_stream *st, struct err *e);

/* Streams the pump serves now. */
size_t pump_count(struct pump *p);

/* End every stream (the body's end is written when the socket takes it),
 * refuse new ones, and join the threads. Idempotent; accepts NULL. */
void pump_stop(struct pump *p);

/* Free the pump (stopping it first). Accepts NULL. */
void pump_free(struct pump *p);

#endif
