/*
 * api_containers.c - manual restarts and container logs over SSE (see
 * api_containers.h). The handlers only check who asks and for what; the
 * managed-name check, the engine calls and the request record live in the
 * container runtime (containers.h), which the containers reconciler
 * started and the engine hands out (engine_state()), so the API can never
 * reach a container the reconciler would not.
 */
#include "api_containers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "containers.h"
#include "docker.h"
#include "engine/engine.h"
#include "server.h"
#include "sse.h"
#include "util.h"

#define HEARTBEAT_MS 15000
#define TAIL_DEFAULT 100
#define TAIL_MAX 100000

static int64_t heartbeat_ms(void)
{
	return util_env_int("POCKETCTL_HEARTBEAT_MS", HEARTBEAT_MS, 10,
			    3600000);
}

/* The container runtime of the server's engine, or NULL (the calls then
 * answer ERR_UNAVAILABLE). */
static struct containers *runtime(struct http_req *r)
{
	return engine_state(r->srv->engine, CONTAINERS_RECONCILER);
}

/* 401 for guests, 403 for non-admins; 0 for admins. */
static int need_admin(struct http_req *r)
{
	if (r->auth.kind == CALLER_GUEST)
		return http_fail(r, ERR_UNAUTHORIZED,
				 "The request requires valid record authorization token.");
	if (!http_is_admin(r))
		return http_fail(r, ERR_FORBIDDEN,
				 "Only admins can perform this action.");
	return 0;
}

int api_container_restart(struct http_req *r)
{
	struct err e = ERR_INIT;
	json_t *out = NULL;
	const char *by;

	if (need_admin(r) || r->status)
		return 0;
	by = json_string_value(json_object_get(r->auth.record, "email"));
	if (!by || !*by)
		by = r->auth.id;
	if (containers_request_restart(runtime(r), r->srv->store, r->params[0],
				       by, &out, &e))
		return http_reply_error(r, &e);
	json_object_set_new(out, "message", json_string("restart requested"));
	return http_reply_json(r, 202, out, NULL);      /* out stolen */
}

/* ---- logs ---------------------------------------------------------------- */

/* A log stream keeps its worker (STREAM_WORKER): the engine's log
 * transfer runs on it and writes through sse_flush(). */
struct logs_stream {
	struct http_req *r;
	struct sse sse;
	int64_t hb_every;
	int64_t next_hb;
};

/* Write what is buffered; once a write fails the client is gone. */
static int ls_flush(struct logs_stream *s)
{
	if (sse_flush(&s->sse))
		return -1;
	s->next_hb = util_monotonic_ms() + s->hb_every;
	return 0;
}

/* One SSE event per log line. CR and NUL would end or corrupt the SSE
 * field, so they become spaces; the line never holds a newline. */
static int ls_line(void *arg, int stream, const char *line, size_t len)
{
	struct logs_stream *s = arg;
	struct buf *b = sse_out(&s->sse);
	size_t i;

	(void)stream;
	if (!b || buf_puts(b, "data: "))
		return 1;
	for (i = 0; i < len; i++) {
		char ch = line[i];

		if (buf_putc(b, ch == '\r' || ch == '\0' || ch == '\n' ? ' ' : ch))
			return 1;
	}
	if (buf_puts(b, "\n\n"))
		return 1;
	return ls_flush(s) ? 1 : 0;
}

/* Called by the engine transfer about once a second: stop when the server
 * stops or the client is gone; send a heartbeat when one is due. */
static int ls_idle(void *arg)
{
	struct logs_stream *s = arg;
	struct buf *b;

	if (atomic_load(&s->r->srv->stopping) || s->sse.dead)
		return 1;
	if (util_monotonic_ms() >= s->next_hb) {
		b = sse_out(&s->sse);
		if (!b || buf_puts(b, ": heartbeat\n\n") || ls_flush(s))
			return 1;
	}
	return 0;
}

static void ls_event(struct logs_stream *s, const char *event, json_t *data)
{
	char *text = json_dumps(data, JSON_COMPACT);
	struct buf *b = sse_out(&s->sse);

	if (text && b && !buf_printf(b, "event: %s\ndata: %s\n\n", event, text))
		ls_flush(s);
	free(text);
	json_decref(data);
}

/* "1"/"true"/"yes" or "0"/"false"/"no"; -1 otherwise. */
static int parse_bool(const char *v)
{
	if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"))
		return 1;
	if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no"))
		return 0;
	return -1;
}

int api_container_logs(struct http_req *r)
{
	struct docker_logs_options lo;
	struct docker_state st;
	struct logs_stream s;
	struct buf *out;
	struct err e = ERR_INIT;
	char v[32];
	char *end = NULL;
	long t;
	int b, rc;

	if (need_admin(r) || r->status)
		return 0;
	memset(&lo, 0, sizeof(lo));
	lo.tail = TAIL_DEFAULT;
	lo.follow = true;
	if (http_query(r, "tail", v, sizeof(v)) >= 0 && v[0]) {
		errno = 0;
		t = strtol(v, &end, 10);
		if (!strcmp(v, "all"))
			lo.tail = -1;
		else if (errno || !end || *end || t < 0 || t > TAIL_MAX)
			return http_fail(r, ERR_INVALID,
					 "tail must be a whole number from 0 to %d or 'all'",
					 TAIL_MAX);
		else
			lo.tail = (int)t;
	}
	if (http_query(r, "follow", v, sizeof(v)) >= 0 && v[0]) {
		b = parse_bool(v);
		if (b < 0)
			return http_fail(r, ERR_INVALID, "follow must be 1 or 0");
		lo.follow = b;
	}
	/* Refuse unmanaged names, missing containers and an unreachable
	 * engine with a proper status before the stream starts. */
	if (containers_inspect(runtime(r), r->srv->store, r->params[0], &st,
			       &e))
		return http_reply_error(r, &e);

	memset(&s, 0, sizeof(s));
	s.r = r;
	s.hb_every = heartbeat_ms();
	sse_init(&s.sse, r);
	sse_start(r, &s.sse);
	s.next_hb = util_monotonic_ms() + s.hb_every;
	/* Tell the client at once that the stream is open. */
	out = sse_out(&s.sse);
	if (out && buf_puts(out, ": logs\n\n") == 0)
		ls_flush(&s);

	rc = s.sse.dead ? 1 : containers_logs(runtime(r), r->srv->store,
					      r->params[0], &lo, ls_line,
					      ls_idle, &s, &e);
	if (rc < 0)
		ls_event(&s, "error", json_pack("{s:s}", "message", e.msg));
	else if (rc == 0)
		ls_event(&s, "end", json_pack("{s:s}", "reason",
					      lo.follow ? "the container stopped" : "end of log"));
	sse_end(&s.sse);
	sse_release(&s.sse);
	return 0;
}
