/*
 * conns.h - the connection guard: clients that send slowly, or nothing,
 * cannot hold civetweb's worker pool.
 *
 * civetweb 1.15 gives each connection a worker thread from a fixed pool for
 * as long as it is open: while its headers trickle in, while its body
 * does, and while it idles between keep-alive requests. Its own timeout
 * applies to each read (a byte a second resets nothing, but the check only
 * comes after a read returns), and it never takes an idle connection back
 * when the pool runs dry. So a few hundred slow or idle clients used to
 * leave nothing for /api/health.
 *
 * The guard keeps one slot per worker's connection (civetweb's
 * init_connection / connection_close callbacks), with its state and since
 * when (headers awaited, request running, body being read, idle after a
 * reply, handed to the stream pump) and its client address. A thread of its
 * own looks at the slots every CONNS_SWEEP_MS while some connection holds a
 * worker (else it sleeps until one opens), and at once when a new
 * connection leaves fewer than the low-water mark of workers free, and cuts
 * short (shutdown(SHUT_RD) on the socket, found by address: sockfind.h):
 *   - a connection whose request headers are not complete within
 *     header_ms of its start or of its previous reply, a body not read
 *     within body_ms, a connection over its address's cap that sent no
 *     complete request within CONNS_OVER_GRACE_MS (deadlines);
 *   - when fewer than the low-water mark of workers are free, enough
 *     others to free twice that many, in this order: over the cap, idle
 *     keep-alive, awaiting headers, then bodies read for at least
 *     CONNS_SHED_BODY_MIN_MS; the oldest first in each (pressure).
 * A cut connection's worker sees end of file at once and civetweb closes
 * it. A connection over max_per_ip (its address already holds that many)
 * is answered 503 when its request comes (server.c).
 *
 * Calling sequence (server.c): conns_new() (before civetweb starts) ->
 * conns_start() -> the callbacks call conns_open() / conns_close(), the
 * request handler conns_request(), conns_body(), conns_reply() ->
 * mg_stop() -> conns_free() (stops the thread).
 *
 * THREAD SAFETY NOTES: conns_open() and conns_close() take the guard's
 * mutex; a slot's state and time are atomics written by its own worker
 * (conns_request/body/reply, without a lock) and read by the guard thread.
 * A connection's addresses are learnt on its worker at its first request
 * or, for one that never completes a request, by the guard thread from
 * civetweb's struct through mg_get_request_info() while the slot is open
 * (civetweb writes them before init_connection and not again until after
 * connection_close, which waits for the guard's mutex). Every function
 * accepts a NULL slot (a connection the guard never saw) and does nothing
 * with it.
 */
#ifndef POCKETCTL_CONNS_H
#define POCKETCTL_CONNS_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct mg_connection;
struct mg_request_info;

#define CONNS_SWEEP_MS 100          /* the guard thread's round */
#define CONNS_OVER_GRACE_MS 1000    /* for an over-the-cap connection's
                                     * request to come and be refused */
#define CONNS_LEARN_AFTER_MS 5        /* see learn_late() in conns.c */
#define CONNS_SHED_BODY_MIN_MS 1000 /* a body younger than this is never
                                     * cut for room */

enum conns_cut {
	CONNS_CUT_NONE = 0,
	CONNS_CUT_DEADLINE,     /* headers or body too slow */
	CONNS_CUT_PRESSURE,     /* cut to free a worker */
	CONNS_CUT_OVER_CAP,     /* over its address's cap, no request */
};

struct conns_options {
	int pool;             /* civetweb's worker threads (num_threads) */
	int max_per_ip;       /* connections held per client address, 0 =
	                       * no cap */
	int64_t header_ms;    /* request headers, from the connection's start
	                       * or the previous reply */
	int64_t body_ms;      /* a request body, from its first read */
};

/* Counters since the start, for /metrics and tests. */
struct conns_stats {
	int64_t open;          /* connections held now */
	int64_t over_cap;      /* connections refused for the cap */
	int64_t cut[4];        /* by enum conns_cut (cut[0] unused) */
};

struct conns;
struct conn_slot;

/* Make a guard for o->pool workers (copied). Returns 0, ERR_INVALID (pool
 * below 1) or ERR_NOMEM. */
int conns_new(struct conns **out, const struct conns_options *o,
	      struct err *e);

/* Start the guard thread. Returns 0 or ERR_INTERNAL. */
int conns_start(struct conns *c, struct err *e);

/* Stop and join the thread, free everything. Accepts NULL. Call after
 * mg_stop(), when no callback can come any more. */
void conns_free(struct conns *c);

/*
 * A worker took a new connection (civetweb's init_connection): its slot
 * (state: awaiting headers), or NULL when every slot is taken (never, when
 * the pool is the size the guard was made for). Its addresses are learnt
 * later: civetweb shows none to init_connection.
 */
struct conn_slot *conns_open(struct conns *c,
			     const struct mg_connection *conn);

/* The connection of s was closed (civetweb's connection_close). */
void conns_close(struct conns *c, struct conn_slot *s);

/* A request's headers are in and its handler runs (ri: its request).
 * Returns true when the connection is over its address's cap (refuse
 * it). */
bool conns_request(struct conns *c, struct conn_slot *s,
		   const struct mg_request_info *ri);

/* The handler starts (reading true) or ends reading the body. */
void conns_body(struct conn_slot *s, bool reading);

/* The handler is about to hand s's socket to the stream pump: true when
 * it may (from now on the guard never cuts s, until conns_reply() says
 * the stream did not start after all), false when the guard has already
 * chosen to cut s (then it must not: the guard's shutdown() would reach
 * the pump's copy of the socket). True without a guard (s NULL). */
bool conns_detach(struct conn_slot *s);

/* The handler replied; detached: the stream pump owns the socket now (the
 * guard never cuts it), else the connection awaits its next request. */
void conns_reply(struct conn_slot *s, bool detached);

/* Why s was cut short, CONNS_CUT_NONE when it was not. */
enum conns_cut conns_was_cut(const struct conn_slot *s);

/* The cap the guard enforces (0: none). */
int conns_max_per_ip(const struct conns *c);

void conns_get_stats(struct conns *c, struct conns_stats *out);

#endif
