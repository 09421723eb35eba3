/*
 * stream_int.h - private to the two change streams (api_watch.c,
 * api_realtime.c) and their one driver (stream.c): what a stream is, how
 * it is filled from the hub, how it is handed to the stream pump or run on
 * its worker, and the event formatting and access checks both protocols
 * share. Not for use outside those three files.
 *
 * A protocol embeds struct stream first in its own stream, fills in a
 * struct stream_ops (what to do with one change, with a gap, with a
 * heartbeat, how to free the rest) and calls, on its civetweb worker:
 *
 *     stream_socket(r, &fd)          before anything is sent
 *     stream_init(&s, srv, &ops)     heartbeat interval, fill, release
 *     stream_start(r, &s)            status line and headers
 *     ...buffer the first events into s.base.out, set s.base.cursor...
 *     stream_serve(r, fd, &s)        the driver owns s from here
 *
 * The driver's fill (struct sse_stream.fill, for the pump or for the
 * worker loop) is the same for both: end the stream once it sent nothing
 * for idle_ms (when set), take up to a batch of changes after the cursor
 * from the hub, hand each to ops->deliver, advance the cursor, then let
 * ops->heartbeat add what is due and wake at the earlier of the next
 * heartbeat and the idle deadline.
 *
 * THREAD SAFETY NOTES: a stream belongs to the worker until stream_serve()
 * and to its driver (the pump thread, or that worker) afterwards; ops run
 * on the driver's thread. stream_visible() may run SQLite on the calling
 * thread's stack, which the worker driver trims (a thread-local marks it).
 */
#ifndef POCKETCTL_STREAM_INT_H
#define POCKETCTL_STREAM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "http.h"
#include "hub.h"
#include "rules.h"
#include "server.h"
#include "sse.h"

/* Cache slots of a hub entry (hub_entry_cache), shared by both protocols
 * so a thousand streams share one copy of each event body. */
enum {
	SLOT_WATCH_PRIV,    /* watch data, secrets included */
	SLOT_WATCH_PUB,     /* watch data, secrets masked */
	SLOT_WATCH_OTHERS,  /* watch data, secrets masked, the actor as
	                     * non-superusers read it (actor.h) */
	SLOT_PB_PRIV,       /* PocketBase record JSON, secrets included */
	SLOT_PB_PUB,        /* PocketBase record JSON for anyone else */
	SLOT_SNAPSHOT,      /* bind values of the snapshot row (JSON array) */
	SLOT_AUTH,          /* auth collections: the record as an auth record */
};

struct stream;

struct stream_ops {
	const char *name;   /* "watch", "realtime": in log lines */
	/* Buffer what change en means for this stream (nothing, when the
	 * caller may not see it). Returns the number of events buffered, or
	 * a negative ERR_* to end the stream. */
	int (*deliver)(struct stream *s, struct hub_entry *en);
	/* The changes after s->base.cursor are gone from the hub and the
	 * store: move the cursor on (and say so, when the protocol does).
	 * Returns 0, or a negative ERR_* to end the stream. */
	int (*gap)(struct stream *s);
	/* After a batch: buffer a heartbeat when one is due at now and move
	 * s->next_hb on. Returns 0, or a negative ERR_* to end the stream. */
	int (*heartbeat)(struct stream *s, int64_t now);
	/* The stream ended: free what the protocol added, and the stream
	 * itself (s->base.out is already released). */
	void (*release)(struct stream *s);
};

struct stream {
	struct sse_stream base;          /* first: the drivers' view */
	const struct stream_ops *ops;
	struct server *srv;
	int64_t hb, next_hb;             /* heartbeat interval, next one */
	int64_t idle_ms;                 /* 0, or end after this long without
	                                  * an event (PocketBase's idle rule) */
	int64_t deadline;                /* then (util_monotonic_ms clock) */
};

/* Fill s's driver part: ops (static, borrowed), srv, the heartbeat
 * interval (POCKETCTL_HEARTBEAT_MS, 15 s by default) with the first one
 * due an interval from now, no idle limit, base.fill and base.release.
 * The protocol's own fields are left alone. */
void stream_init(struct stream *s, struct server *srv,
		 const struct stream_ops *ops);

/* End s after idle_ms without an event, counted from now. */
void stream_set_idle(struct stream *s, int64_t idle_ms);

/* Send r's status line and headers; s->base.out takes the body. */
void stream_start(struct http_req *r, struct stream *s);

/*
 * The socket to hand a new stream to the pump (-1 when the pump is off,
 * or cannot take this one: then it runs on this worker), found before
 * anything is sent. Returns 0, or replies 503 and returns -1.
 */
int stream_socket(struct http_req *r, int *fd);

/* Serve s, whose headers went out: through the pump when fd >= 0, else on
 * this worker until it ends. s belongs to the driver from here (it is
 * released when it ends). Returns 0. */
int stream_serve(struct http_req *r, int fd, struct stream *s);

/* Free s at once (before stream_serve(), e.g. when its first events could
 * not be buffered): ops->release after its output. */
void stream_release(struct stream *s);

/* ---- what both protocols show ---------------------------------------- */

/* The compact JSON of v (nullable) and its length. Caller owns the result
 * (free()); NULL when v is NULL or memory runs out. */
char *stream_dump(json_t *v, size_t *len);

/* PocketBase's JSON of en's record (record: the change-log snapshot), for
 * a privileged viewer (admin or owner) or for anyone else. Caller owns the
 * result; NULL when en's collection is unknown or memory runs out. */
json_t *stream_pb_json(const struct hub_entry *en, json_t *record,
		       const struct schema *s, bool priv);

/* The viewer a may see en's secret fields: an admin, or its owner. */
bool stream_privileged(const struct http_auth *a, const struct hub_entry *en);

/*
 * A stream's verdicts on rules that read nothing of the record (such as
 * '@request.auth.id != ""'): one per collection and action (view, list),
 * unknown when made and again after stream_verdicts_forget(), which the
 * stream calls whenever its auth record changes. Caller owns the result
 * (free()); NULL when memory runs out.
 */
signed char *stream_verdicts_new(const struct schema *s);
void stream_verdicts_forget(signed char *v, const struct schema *s);

/*
 * True when the viewer a may see en under rule action act of its
 * collection and en matches filter (NULL or "" for none); false
 * otherwise, including when anything fails (a stream never delivers what
 * it could not check). verdicts (nullable): the stream's, see above.
 */
bool stream_visible(struct server *srv, struct hub_entry *en,
		    enum rule_action act, const struct http_auth *a,
		    const char *filter, signed char *verdicts);

/*
 * When s's next heartbeat is due after one at now: now + its interval,
 * rounded up to a multiple of a third of the interval, so that the
 * heartbeats of many streams fall on a few instants and an idle pump
 * wakes for them at most three times per interval (a heartbeat comes
 * every 15 to 20 s with the default 15 s).
 */
int64_t stream_next_heartbeat(const struct stream *s, int64_t now);

#endif
