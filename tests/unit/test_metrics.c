/*
 * test_metrics.c - the Prometheus registry: counters by method, route and code,
 * cumulative histogram buckets, the stream cap, and concurrent updates.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics.h"

static const char *const mtr_labels[] = { "/healthz", "/api/collections/:c/records",
					 "/api/collections/:c/records" };
static const char *const mtr_methods[] = { "GET", "GET", "POST" };

static char *mtr_render(struct metrics *m, int64_t head)
{
	struct buf out = BUF_INIT;

	cr_assert_eq(metrics_render(m, head, &out), 0);
	return buf_detach(&out, NULL);
}

Test(metrics, counts_by_route_and_code)
{
	struct metrics *m = metrics_new(mtr_methods, mtr_labels, 3);
	char *text;

	cr_assert_not_null(m);
	metrics_observe(m, 0, "GET", 200, 100);
	metrics_observe(m, 0, "GET", 200, 300);
	metrics_observe(m, 1, "GET", 404, 2000);
	metrics_observe(m, 7, "GET", 404, 10);      /* past the table: unmatched */
	metrics_observe(m, 7, "BREW", 404, 10);     /* unmatched, other method */
	metrics_observe(m, 2, "POST", 201, 10);     /* same route, another method */
	metrics_observe(m, 0, "GET", 42, 10);       /* clamped to 100 */
	text = mtr_render(m, 17);
	cr_expect(strstr(text, "pocketctl_http_requests_total{method=\"GET\",route=\"/healthz\",code=\"200\"} 2\n"));
	cr_expect(strstr(text, "pocketctl_http_requests_total{method=\"GET\",route=\"/api/collections/:c/records\",code=\"404\"} 1\n"));
	cr_expect(strstr(text, "pocketctl_http_requests_total{method=\"GET\",route=\"unmatched\",code=\"404\"} 1\n"));
	cr_expect(strstr(text, "pocketctl_http_requests_total{method=\"other\",route=\"unmatched\",code=\"404\"} 1\n"));
	cr_expect(strstr(text, "pocketctl_http_requests_total{method=\"POST\",route=\"/api/collections/:c/records\",code=\"201\"} 1\n"));
	cr_expect(strstr(text, "pocketctl_http_requests_total{method=\"GET\",route=\"/healthz\",code=\"100\"} 1\n"));
	cr_expect(strstr(text, "pocketctl_changelog_head_revision 17\n"));
	cr_expect(strstr(text, "pocketctl_sse_streams_open 0\n"));
	cr_expect(strstr(text, "# TYPE pocketctl_http_request_duration_seconds histogram\n"));
	/* routes never hit render no series */
	cr_expect_null(strstr(text, "code=\"500\""));
	free(text);
	metrics_free(m);
}

Test(metrics, histogram_buckets_are_cumulative)
{
	struct metrics *m = metrics_new(mtr_methods, mtr_labels, 3);
	char *text;

	metrics_observe(m, 0, "GET", 200, 400);        /* <= 0.0005 */
	metrics_observe(m, 0, "GET", 200, 700);        /* <= 0.001 */
	metrics_observe(m, 0, "GET", 200, 20000000);   /* above every bound */
	text = mtr_render(m, 0);
	cr_expect(strstr(text, "pocketctl_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"0.0005\"} 1\n"));
	cr_expect(strstr(text, "pocketctl_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"0.001\"} 2\n"));
	cr_expect(strstr(text, "pocketctl_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"10\"} 2\n"));
	cr_expect(strstr(text, "pocketctl_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"+Inf\"} 3\n"));
	cr_expect(strstr(text, "pocketctl_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\"} 3\n"));
	cr_expect(strstr(text, "pocketctl_http_request_duration_seconds_sum{method=\"GET\",route=\"/healthz\"} 20.001100\n"));
	free(text);
	metrics_free(m);
}

Test(metrics, stream_cap)
{
	struct metrics *m = metrics_new(mtr_methods, mtr_labels, 3);

	cr_assert_eq(metrics_stream_enter(m, 2), 0);
	cr_assert_eq(metrics_stream_enter(m, 2), 0);
	cr_assert_eq(metrics_stream_enter(m, 2), -1);
	cr_assert_eq(metrics_streams_open(m), 2);
	metrics_stream_leave(m);
	cr_assert_eq(metrics_streams_open(m), 1);
	cr_assert_eq(metrics_stream_enter(m, 2), 0);
	/* no cap */
	cr_assert_eq(metrics_stream_enter(m, 0), 0);
	cr_assert_eq(metrics_streams_open(m), 3);
	metrics_free(m);
	metrics_free(NULL);
}

#define MTR_THREADS 4
#define MTR_PER_THREAD 20000

static void *mtr_worker(void *arg)
{
	struct metrics *m = arg;
	int i;

	for (i = 0; i < MTR_PER_THREAD; i++) {
		metrics_observe(m, 1, "GET", 201, i % 5000);
		metrics_observe(m, 2, "POST", 201, i % 5000);
		if (metrics_stream_enter(m, 0) == 0)
			metrics_stream_leave(m);
	}
	return NULL;
}

Test(metrics, concurrent_updates_are_exact)
{
	struct metrics *m = metrics_new(mtr_methods, mtr_labels, 3);
	pthread_t t[MTR_THREADS];
	char expect[160], *text;
	int i;

	for (i = 0; i < MTR_THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, mtr_worker, m), 0);
	for (i = 0; i < MTR_THREADS; i++)
		pthread_join(t[i], NULL);
	text = mtr_render(m, 0);
	snprintf(expect, sizeof(expect),
		 "pocketctl_http_requests_total{method=\"GET\",route=\"/api/collections/:c/records\",code=\"201\"} %d\n",
		 MTR_THREADS * MTR_PER_THREAD);
	cr_expect(strstr(text, expect), "missing: %s", expect);
	snprintf(expect, sizeof(expect),
		 "pocketctl_http_requests_total{method=\"POST\",route=\"/api/collections/:c/records\",code=\"201\"} %d\n",
		 MTR_THREADS * MTR_PER_THREAD);
	cr_expect(strstr(text, expect), "missing: %s", expect);
	cr_expect_eq(metrics_streams_open(m), 0);
	free(text);
	metrics_free(m);
}
