/*
 * metrics.h - the server's Prometheus counters: requests by method, route
 * and status code, a latency histogram per method and route, open SSE
 * streams; and (metrics_render_reconcile(), metrics_reconcile.c) the
 * reconcile engine's figures from its status.
 *
 * Routes are known up front (the route table), so every counter lives in a
 * fixed array indexed by route and is bumped with relaxed atomics: a request
 * never takes a lock to be counted. metrics_render() writes the Prometheus
 * text exposition format (version 0.0.4).
 *
 * THREAD SAFETY NOTES: metrics_observe(), metrics_stream_enter(),
 * metrics_stream_leave() and metrics_render() may be called from any number
 * of threads at once; they only touch C11 atomics. A render running during
 * updates may see a count and a sum from slightly different instants (as
 * with any Prometheus client); each single value is exact. metrics_new()
 * and metrics_free() are not concurrent with anything else.
 */
#ifndef POCKETCTL_METRICS_H
#define POCKETCTL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"

struct metrics;

/*
 * A metrics registry for nroutes routes: route i is methods[i] on the
 * pattern labels[i] (borrowed: both must outlive the registry, string
 * literals in practice; no two routes share a method and a pattern). A few
 * more slots, labelled route "unmatched", count the requests that matched
 * no route by method (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, or
 * "other"). Returns NULL on allocation failure.
 * Caller owns the result (free with metrics_free()).
 */
struct metrics *metrics_new(const char *const *methods,
			    const char *const *labels, size_t nroutes);

/* Accepts NULL. */
void metrics_free(struct metrics *m);

/*
 * Count one finished request of route index route (nroutes or more means
 * "unmatched": then method, nullable, picks its slot) replied with status
 * (clamped into 100..599) after usec microseconds.
 */
void metrics_observe(struct metrics *m, size_t route, const char *method,
		     int status, int64_t usec);

/*
 * Take one stream slot. Returns 0, or -1 when max streams are already open
 * (nothing is taken then). max <= 0 means no cap.
 */
int metrics_stream_enter(struct metrics *m, int max);

/* Give back a slot taken by metrics_stream_enter(). */
void metrics_stream_leave(struct metrics *m);

/* Streams open now. */
int metrics_streams_open(const struct metrics *m);

/*
 * Append the exposition text to out: pocketctl_http_requests_total{method,
 * route, code}, pocketctl_http_request_duration_seconds{method, route}
 * (histogram),
 * pocketctl_sse_streams_open and pocketctl_changelog_head_revision (head,
 * supplied by the caller). Returns 0 or the buf error (ERR_NOMEM,
 * ERR_TOO_LARGE).
 */
int metrics_render(struct metrics *m, int64_t head, struct buf *out);

/*
 * Append the reconcile engine's figures to out, from status (borrowed; the
 * document engine_status() returns): passes, errors, writes, time spent,
 * the latest duration, consecutive failures, drift corrections and
 * Degraded by reconciler; the work queue by state; the engine's passes,
 * wake-ups, full passes and observed revision; container starts and
 * restarts by container; the notification outbox and cron figures.
 * Members missing from status count as 0. Returns 0 or the buf error.
 */
int metrics_render_reconcile(json_t *status, struct buf *out);

#endif
