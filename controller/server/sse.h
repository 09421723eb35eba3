/*
 * sse.h - the output side of a Server-Sent Events stream, and the shape
 * every stream kind (/api/v1/watch, /api/realtime) has, so that either of
 * two drivers can run it: the stream pump (pump.h: one thread, every
 * stream, non-blocking sockets) or, with the pump switched off, the
 * civetweb worker that opened it (blocking writes).
 *
 * The body is sent with chunked transfer encoding (HTTP/1.1), so that the
 * end of a stream is the end of the response; an HTTP/1.0 client gets the
 * body until the connection closes. Each flush is one chunk, framed in the
 * buffer itself: SSE_CHUNK_HEAD bytes are reserved in front of the events
 * and filled with the size when the chunk goes out, so a flush is one
 * write.
 *
 * THREAD SAFETY NOTES: a struct sse and the struct sse_stream holding it
 * belong to one thread at a time: the worker while it sets the stream up,
 * then the driver.
 */
#ifndef POCKETCTL_SSE_H
#define POCKETCTL_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http.h"

#define SSE_CHUNK_HEAD 10            /* "%08x\r\n" */

struct sse {
	struct mg_connection *conn;  /* blocking writes (sse_flush) */
	struct buf out;
	size_t sent;        /* bytes of out already written (sse_send) */
	uint64_t written;   /* bytes sse_send() wrote, in all */
	bool framed;        /* out's chunk head and tail are filled in */
	bool chunked;       /* HTTP/1.1: chunked; HTTP/1.0: until close */
	bool dead;          /* a write failed: the client is gone */
};

void sse_init(struct sse *s, struct http_req *r);
void sse_release(struct sse *s);

/* Send the status line and headers (through civetweb); the body stays
 * open. Sets r->status. */
void sse_start(struct http_req *r, const struct sse *s);

/* The buffer to append events to (with the chunk head reserved), or NULL
 * when that reservation fails. Only while nothing is half-written. */
struct buf *sse_out(struct sse *s);

/* Bytes buffered and not yet written (events, framing included). */
size_t sse_pending(const struct sse *s);

/* Buffer one event. id may be NULL. data must hold no newline (compact
 * JSON never does). sep is "" (PocketBase writes "id:X") or " ". Returns 0
 * or ERR_NOMEM. */
int sse_event(struct sse *s, const char *sep, const char *id,
	      const char *event, const char *data, size_t dlen);

/* An event whose data is the compact JSON of data (stolen), with id as the
 * SSE id. Returns 0 or ERR_NOMEM. */
int sse_json_event(struct sse *s, int64_t id, const char *event,
		   json_t *data);

/* Write out what is buffered through civetweb, blocking. Returns 0, or -1
 * once the client is gone. */
int sse_flush(struct sse *s);

/* Write what is buffered to the non-blocking socket fd, as far as it takes
 * it. Returns 0 (all written; the buffer is empty again), 1 (the socket is
 * full: call again when it is writable) or -1 (the client is gone). */
int sse_send(struct sse *s, int fd);

/* Write out what is buffered, then end the body, through civetweb
 * (blocking). */
void sse_end(struct sse *s);

/* The bytes that end the body ("" for HTTP/1.0), for the driver to write
 * after the last events. */
const char *sse_tail(const struct sse *s);

/* ---- a stream, as the drivers see it -------------------------------- */

struct sse_stream {
	struct sse out;
	int64_t cursor;     /* the last change-log revision handled */
	int64_t wake_ms;    /* call fill by then (util_monotonic_ms clock)
	                     * even when no change arrives */
	/*
	 * Buffer into out whatever is due at now_ms: changes after cursor,
	 * a heartbeat. Called only when out holds nothing unwritten. Returns
	 * 1 when more may be waiting (call again once out is written), 0
	 * when caught up (call again on news or at wake_ms), -1 to end the
	 * stream.
	 */
	int (*fill)(struct sse_stream *st, int64_t now_ms);
	/* The stream has ended and its client is gone: free st. */
	void (*release)(struct sse_stream *st);
};

#endif
