/*
 * api_status.c - GET /api/v1/status and POST /api/v1/reconcile (see
 * api_status.h). Both only read the engine's published snapshot or set
 * its request counter; nothing here runs a reconciler, so a request never
 * waits for a file write (except a reconcile with ?wait=true, which asks
 * to).
 */
#include "api_status.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"
#include "server.h"
#include "util.h"

#define WAIT_DEFAULT_S 30
#define WAIT_MAX_S 300
#define WAIT_POLL_MS 5

/* Admins only; the engine must be running. Returns true after replying
 * with the refusal. */
static bool refused(struct http_req *r)
{
	if (r->auth.kind == CALLER_GUEST)
		http_fail(r, ERR_UNAUTHORIZED,
			  "The request requires valid admin authorization token.");
	else if (!http_is_admin(r))
		http_fail(r, ERR_FORBIDDEN, "Only admins can access this action.");
	else if (!r->srv->engine)
		http_fail(r, ERR_UNAVAILABLE, "the reconcile engine is not running");
	else
		return false;
	return true;
}

int api_status(struct http_req *r)
{
	struct err e = ERR_INIT;
	json_t *s = NULL;

	if (refused(r))
		return 0;
	if (engine_status(r->srv->engine, &s, &e))
		return http_reply_error(r, &e);
	return http_reply_json(r, 200, s, NULL);   /* s stolen */
}

/* ?name=true|1 */
static bool query_true(const struct http_req *r, const char *name)
{
	char v[16];

	if (http_query(r, name, v, sizeof(v)) < 0)
		return false;
	return !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "");
}

int api_reconcile(struct http_req *r)
{
	struct err e = ERR_INIT;
	struct timespec ts = { 0, WAIT_POLL_MS * 1000000L };
	json_t *s = NULL, *body;
	char v[16];
	uint64_t n;
	int64_t deadline;
	long secs = WAIT_DEFAULT_S;
	char *end = NULL;

	if (refused(r))
		return 0;
	if (http_query(r, "timeout", v, sizeof(v)) >= 0) {
		secs = strtol(v, &end, 10);
		if (!*v || *end || secs < 1 || secs > WAIT_MAX_S)
			return http_fail(r, ERR_INVALID,
					 "timeout must be 1 to %d seconds",
					 WAIT_MAX_S);
	}
	n = engine_request_full(r->srv->engine);
	if (!query_true(r, "wait")) {
		body = json_pack("{s:I}", "requested", (json_int_t)n);
		return http_reply_json(r, 202, body, NULL);   /* stolen */
	}
	deadline = util_monotonic_ms() + secs * 1000;
	while (engine_full_done(r->srv->engine) < n) {
		if (atomic_load(&r->srv->stopping) || util_monotonic_ms() > deadline) {
			body = json_pack("{s:i, s:s, s:{}}", "status", 504,
					 "message",
					 "the full pass did not complete in time; see GET /api/v1/status",
					 "data");
			return http_reply_json(r, 504, body, NULL);
		}
		nanosleep(&ts, NULL);
	}
	if (engine_status(r->srv->engine, &s, &e))
		return http_reply_error(r, &e);
	body = json_pack("{s:I, s:b, s:o}", "requested", (json_int_t)n,
			 "completed", 1, "status", s);   /* s stolen */
	return http_reply_json(r, 200, body, NULL);
}
