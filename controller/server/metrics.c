/*
 * metrics.c - lock-free request counters and latency histograms, rendered
 * as Prometheus text (see metrics.h).
 *
 * Each route slot holds one counter per status code 100..599 and one
 * histogram (cumulative buckets are computed at render time from
 * per-bucket counts, so an observation bumps exactly one bucket).
 *
 * THREAD SAFETY NOTES: every mutable field is a C11 atomic updated with
 * relaxed ordering; nothing orders one counter against another and nothing
 * needs to. The label array and slot array are written once by
 * metrics_new() and read-only afterwards.
 */
#include "metrics.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_MIN 100
#define STATUS_SLOTS 500   /* 100..599 */

/* The methods a request that matched no route is counted under; any other
 * method is "other". */
static const char *const unmatched_methods[] = {
	"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
};
#define NUNMATCHED (sizeof(unmatched_methods) / sizeof(unmatched_methods[0]))

/* Upper bounds of the histogram buckets, in microseconds. */
static const int64_t bucket_usec[] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};
#define NBUCKETS (sizeof(bucket_usec) / sizeof(bucket_usec[0]))

struct route_slot {
	atomic_ullong codes[STATUS_SLOTS];
	atomic_ullong buckets[NBUCKETS + 1];  /* last one: above every bound */
	atomic_ullong count;
	atomic_ullong sum_usec;
};

struct metrics {
	const char *const *methods;
	const char *const *labels;
	size_t nroutes;               /* slots = nroutes + NUNMATCHED */
	struct route_slot *slots;
	atomic_int streams;
};

struct metrics *metrics_new(const char *const *methods,
			    const char *const *labels, size_t nroutes)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	/* calloc'd memory is a valid zero value for atomic integers on every
	 * platform we build for (lock-free atomics have no hidden state). */
	m->slots = calloc(nroutes + NUNMATCHED, sizeof(*m->slots));
	if (!m->slots) {
		free(m);
		return NULL;
	}
	m->methods = methods;
	m->labels = labels;
	m->nroutes = nroutes;
	atomic_init(&m->streams, 0);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	free(m->slots);
	free(m);
}

void metrics_observe(struct metrics *m, size_t route, const char *method,
		     int status, int64_t usec)
{
	struct route_slot *s;
	size_t b;

	if (!m)
		return;
	if (route >= m->nroutes) {
		for (b = 0; b + 1 < NUNMATCHED && method &&
		     strcmp(method, unmatched_methods[b]); b++)
			;
		route = m->nroutes + (method ? b : NUNMATCHED - 1);
	}
	if (status < STATUS_MIN)
		status = STATUS_MIN;
	if (status >= STATUS_MIN + STATUS_SLOTS)
		status = STATUS_MIN + STATUS_SLOTS - 1;
	if (usec < 0)
		usec = 0;
	s = &m->slots[route];
	for (b = 0; b < NBUCKETS && usec > bucket_usec[b]; b++)
		;
	atomic_fetch_add_explicit(&s->codes[status - STATUS_MIN], 1,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->sum_usec, (unsigned long long)usec,
				  memory_order_relaxed);
}

int metrics_stream_enter(struct metrics *m, int max)
{
	int n = atomic_fetch_add_explicit(&m->streams, 1,
					  memory_order_relaxed);

	if (max > 0 && n >= max) {
		atomic_fetch_sub_explicit(&m->streams, 1, memory_order_relaxed);
		return -1;
	}
	return 0;
}

void metrics_stream_leave(struct metrics *m)
{
	atomic_fetch_sub_explicit(&m->streams, 1, memory_order_relaxed);
}

int metrics_streams_open(const struct metrics *m)
{
	/* atomic_load on a const object is not allowed by every C11 library;
	 * the cast drops only the qualifier we added in the prototype. */
	return atomic_load_explicit((atomic_int *)&m->streams,
				    memory_order_relaxed);
}

#define NSLOTS(m) ((m)->nroutes + NUNMATCHED)

static const char *slot_label(const struct metrics *m, size_t i)
{
	return i < m->nroutes ? m->labels[i] : "unmatched";
}

static const char *slot_method(const struct metrics *m, size_t i)
{
	return i < m->nroutes ? m->methods[i] :
	       unmatched_methods[i - m->nroutes];
}

/* Route labels and methods come from our own table: they hold no '"' or
 * '\\' and need no escaping. One (method, route) pair is one route, so
 * every series is written once. */
static int render_requests(struct metrics *m, struct buf *out)
{
	size_t i, c;
	int rc;

	rc = buf_puts(out,
		      "# HELP pocketctl_http_requests_total HTTP requests by route and status code.\n"
		      "# TYPE pocketctl_http_requests_total counter\n");
	for (i = 0; !rc && i < NSLOTS(m); i++) {
		for (c = 0; !rc && c < STATUS_SLOTS; c++) {
			unsigned long long v = atomic_load_explicit(
				&m->slots[i].codes[c], memory_order_relaxed);

			if (v)
				rc = buf_printf(out,
						"pocketctl_http_requests_total{method=\"%s\",route=\"%s\",code=\"%zu\"} %llu\n",
						slot_method(m, i), slot_label(m, i),
						c + STATUS_MIN, v);
		}
	}
	return rc;
}

static int render_latency(struct metrics *m, struct buf *out)
{
	size_t i, b;
	int rc;

	rc = buf_puts(out,
		      "# HELP pocketctl_http_request_duration_seconds Time from request to reply, by route.\n"
		      "# TYPE pocketctl_http_request_duration_seconds histogram\n");
	for (i = 0; !rc && i < NSLOTS(m); i++) {
		struct route_slot *s = &m->slots[i];
		unsigned long long cum = 0, count, sum;

		count = atomic_load_explicit(&s->count, memory_order_relaxed);
		if (!count)
			continue;
		for (b = 0; !rc && b <= NBUCKETS; b++) {
			cum += atomic_load_explicit(&s->buckets[b],
						    memory_order_relaxed);
			if (b < NBUCKETS)
				rc = buf_printf(out,
						"pocketctl_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"%g\"} %llu\n",
						slot_method(m, i), slot_label(m, i),
						(double)bucket_usec[b] / 1e6, cum);
			else
				rc = buf_printf(out,
						"pocketctl_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"+Inf\"} %llu\n",
						slot_method(m, i), slot_label(m, i), cum);
		}
		sum = atomic_load_explicit(&s->sum_usec, memory_order_relaxed);
		if (!rc)
			rc = buf_printf(out,
					"pocketctl_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n"
					"pocketctl_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %llu\n",
					slot_method(m, i), slot_label(m, i),
					(double)sum / 1e6, slot_method(m, i),
					slot_label(m, i), cum);
	}
	return rc;
}

int metrics_render(struct metrics *m, int64_t head, struct buf *out)
{
	int rc;

	rc = render_requests(m, out);
	if (!rc)
		rc = render_latency(m, out);
	if (!rc)
		rc = buf_printf(out,
				"# HELP pocketctl_sse_streams_open Server-sent event streams open now.\n"
				"# TYPE pocketctl_sse_streams_open gauge\n"
				"pocketctl_sse_streams_open %d\n"
				"# HELP pocketctl_changelog_head_revision Latest committed store revision.\n"
				"# TYPE pocketctl_changelog_head_revision gauge\n"
				"pocketctl_changelog_head_revision %lld\n",
				metrics_streams_open(m), (long long)head);
	return rc;
}
