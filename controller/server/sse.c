/*
 * sse.c - SSE output: chunk framing, blocking and non-blocking writes (see
 * sse.h).
 */
#include "sse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define OUT_KEEP ((size_t)64 << 10)      /* a larger write buffer is freed
                                          * once written */

void sse_init(struct sse *s, struct http_req *r)
{
	memset(s, 0, sizeof(*s));
	s->conn = r->conn;
	buf_init(&s->out, 0);
	s->chunked = !r->ri->http_version ||
		     strcmp(r->ri->http_version, "1.0") != 0;
}

void sse_release(struct sse *s)
{
	buf_release(&s->out);
}

void sse_start(struct http_req *r, const struct sse *s)
{
	r->status = 200;
	mg_response_header_start(r->conn, 200);
	mg_response_header_add(r->conn, "Content-Type", "text/event-stream", -1);
	mg_response_header_add(r->conn, "Cache-Control", "no-store", -1);
	mg_response_header_add(r->conn, "X-Accel-Buffering", "no", -1);
	mg_response_header_add(r->conn, "Access-Control-Allow-Origin", "*", -1);
	if (s->chunked)
		mg_response_header_add(r->conn, "Transfer-Encoding", "chunked",
				       -1);
	/* The connection ends with the stream (the pump closes it), so no
	 * client may queue another request on it. */
	mg_response_header_add(r->conn, "Connection", "close", -1);
	mg_response_header_send(r->conn);
}

struct buf *sse_out(struct sse *s)
{
	if (s->framed)
		return NULL;
	if (s->chunked && s->out.len == 0 &&
	    buf_add(&s->out, "00000000\r\n", SSE_CHUNK_HEAD))
		return NULL;
	return &s->out;
}

size_t sse_pending(const struct sse *s)
{
	size_t head = s->chunked && !s->framed ? SSE_CHUNK_HEAD : 0;

	return s->out.len > head + s->sent ? s->out.len - head - s->sent : 0;
}

int sse_event(struct sse *s, const char *sep, const char *id,
	      const char *event, const char *data, size_t dlen)
{
	struct buf *b = sse_out(s);

	/* plain appends: this runs once per event and stream, and two
	 * printf calls were most of it */
	if (!b || (id && (buf_puts(b, "id:") || buf_puts(b, sep) ||
			  buf_puts(b, id) || buf_putc(b, '\n'))) ||
	    buf_puts(b, "event:") || buf_puts(b, sep) || buf_puts(b, event) ||
	    buf_puts(b, "\ndata:") || buf_puts(b, sep) ||
	    buf_add(b, data, dlen) || buf_puts(b, "\n\n"))
		return ERR_NOMEM;
	return 0;
}

int sse_json_event(struct sse *s, int64_t id, const char *event,
		   json_t *data)
{
	char idtext[32], *text;
	int rc;

	snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
	text = data ? json_dumps(data, JSON_COMPACT) : NULL;
	json_decref(data);
	if (!text)
		return ERR_NOMEM;
	rc = sse_event(s, " ", idtext, event, text, strlen(text));
	free(text);
	return rc;
}

/* Fill in the chunk head and tail once. Returns 0, or -1 (no memory: the
 * stream cannot go on). */
static int frame(struct sse *s)
{
	char head[SSE_CHUNK_HEAD + 1];
	size_t n;
	int i;

	if (s->framed || !s->chunked)
		return 0;
	n = s->out.len - SSE_CHUNK_HEAD;
	/* n < BUF_DEFAULT_CAP: eight hex digits suffice ("%08x\r\n"). */
	for (i = 0; i < 8; i++)
		head[7 - i] = "0123456789abcdef"[(n >> (4 * i)) & 0xf];
	head[8] = '\r';
	head[9] = '\n';
	memcpy(s->out.ptr, head, SSE_CHUNK_HEAD);
	if (buf_puts(&s->out, "\r\n"))
		return -1;
	s->framed = true;
	return 0;
}

/* Everything is written: make the buffer empty for the next events. */
static void emptied(struct sse *s)
{
	if (s->out.alloc > OUT_KEEP)
		buf_release(&s->out);
	else
		buf_reset(&s->out);
	s->sent = 0;
	s->framed = false;
}

int sse_flush(struct sse *s)
{
	if (!s->dead && sse_pending(s)) {
		if (frame(s) ||
		    mg_write(s->conn, s->out.ptr, s->out.len) != (int)s->out.len)
			s->dead = true;
	}
	emptied(s);
	return s->dead ? -1 : 0;
}

int sse_send(struct sse *s, int fd)
{
	ssize_t n;

	if (s->dead)
		return -1;
	if (!sse_pending(s)) {
		emptied(s);
		return 0;
	}
	if (frame(s)) {
		s->dead = true;
		return -1;
	}
	while (s->sent < s->out.len) {
		n = send(fd, s->out.ptr + s->sent, s->out.len - s->sent,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			s->sent += (size_t)n;
			s->written += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 1;
		s->dead = true;
		return -1;
	}
	emptied(s);
	return 0;
}

void sse_end(struct sse *s)
{
	const char *tail = sse_tail(s);

	if (!sse_flush(s) && *tail &&
	    mg_write(s->conn, tail, strlen(tail)) != (int)strlen(tail))
		s->dead = true;
}

const char *sse_tail(const struct sse *s)
{
	return s->chunked ? "0\r\n\r\n" : "";
}
