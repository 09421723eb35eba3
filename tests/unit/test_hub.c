/*
 * test_hub.c - unit tests for the change-log hub: changes arrive in order
 * after a notify, a cursor behind the ring is served from the store, a
 * cursor behind the retained change log gives HUB_GAP, a waiter times out
 * and wakes on stop, the format cache runs its function once, and the ring
 * stays bounded while many changes stream through it.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "server/hub.h"
#include "store/schema.h"
#include "store/store.h"
#include "util.h"
#include "testlib.h"

static char hb_dir[256];
static struct schema *hb_sch;
static struct store *hb_st;
static struct hub *hb;
static atomic_bool hb_stopping;

/* Open a store and a hub over it; count (NULL: none) counts its
 * listeners. */
static void hb_open_counted(int64_t keep, int (*count)(void *arg))
{
	struct err e = ERR_INIT;

	tl_store_setup(hb_dir, sizeof(hb_dir), "hub", NULL, keep, &hb_sch,
		       &hb_st);
	atomic_store(&hb_stopping, false);
	cr_assert_eq(hub_new(&hb, hb_st, hb_sch, &hb_stopping, &e), 0, "%s",
		     e.msg);
	if (count)
		hub_set_listeners(hb, count, NULL);
	cr_assert_eq(hub_start(hb, &e), 0, "%s", e.msg);
}

static void hb_open(int64_t keep)
{
	hb_open_counted(keep, NULL);
}

static void hb_close(void)
{
	hub_free(hb);
	hb = NULL;
	tl_store_teardown(hb_dir, &hb_sch, &hb_st);
}

/* Write n ai_prompts records named PREFIX-i, one transaction each. */
static void hb_write(const char *prefix, int n)
{
	char name[64];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s-%d", prefix, i);
		tl_put_new(hb_st, "ai_prompts",
			   json_pack("{s:s, s:s}", "name", name, "body", "text"),
			   STORE_CREATE, NULL, NULL);
	}
	hub_notify(hb);
}

/* Write n ai_prompts records named PREFIX-i in one transaction (one
 * commit, so large batches stay fast). */
static void hb_write_one_txn(const char *prefix, int n)
{
	struct store_txn *t = NULL;
	struct err e = ERR_INIT;
	int i;

	cr_assert_eq(store_begin(hb_st, &t, &e), 0, "%s", e.msg);
	for (i = 0; i < n; i++) {
		struct store_put p;
		char name[64];
		json_t *data;

		snprintf(name, sizeof(name), "%s-%d", prefix, i);
		data = json_pack("{s:s, s:s}", "name", name, "body", "text");
		memset(&p, 0, sizeof(p));
		p.collection = "ai_prompts";
		p.data = data;
		p.mode = STORE_CREATE;
		cr_assert_eq(store_txn_put(t, &p, NULL, NULL, &e), 0, "%s",
			     e.msg);
		json_decref(data);
	}
	cr_assert_eq(store_commit(t, &e), 0, "%s", e.msg);
}

/* Wait (up to 5 s) until the hub has published revision rev. */
static void hb_wait_for(int64_t rev)
{
	int64_t deadline = util_monotonic_ms() + 5000;

	while (hub_head(hb) < rev && util_monotonic_ms() < deadline)
		hub_wait(hb, hub_head(hb), deadline);
	cr_assert_geq(hub_head(hb), rev, "hub stuck at %lld, want %lld",
		      (long long)hub_head(hb), (long long)rev);
}

Test(hub, delivers_in_order_after_notify)
{
	struct hub_entry *en[64];
	struct err e = ERR_INIT;
	int64_t start, t0;
	int n, i;

	hb_open(0);
	start = store_head(hb_st);
	t0 = util_monotonic_ms();
	hb_write("p", 10);
	hb_wait_for(start + 10);
	/* A notified commit must not wait for the one-second idle wake. */
	cr_assert_lt(util_monotonic_ms() - t0, 900);
	n = hub_fetch(hb, start, en, 64, &e);
	cr_assert_eq(n, 10, "fetch gave %d (%s)", n, e.msg);
	for (i = 0; i < n; i++) {
		char want[16];

		snprintf(want, sizeof(want), "p-%d", i);
		cr_assert_eq(en[i]->revision, start + 1 + i);
		cr_assert_str_eq(en[i]->action, "create");
		cr_assert_str_eq(en[i]->collection, "ai_prompts");
		cr_assert_str_eq(en[i]->name, want);
		cr_assert(util_valid_id(en[i]->id));
		cr_assert_not_null(en[i]->coll);
	}
	hub_entries_put(en, n);
	/* Nothing after the head. */
	cr_assert_eq(hub_fetch(hb, start + 10, en, 64, &e), 0);
	/* max bounds the batch. */
	n = hub_fetch(hb, start + 2, en, 3, &e);
	cr_assert_eq(n, 3);
	cr_assert_eq(en[0]->revision, start + 3);
	cr_assert_eq(en[2]->revision, start + 5);
	hub_entries_put(en, n);
	hb_close();
}

Test(hub, unnotified_commit_arrives_within_the_idle_wake)
{
	struct store_txn *t = NULL;
	struct store_put p;
	struct err e = ERR_INIT;
	json_t *data;
	int64_t start;

	hb_open(0);
	start = store_head(hb_st);
	data = json_pack("{s:s, s:s}", "name", "quiet", "body", "x");
	memset(&p, 0, sizeof(p));
	p.collection = "ai_prompts";
	p.data = data;
	cr_assert_eq(store_begin(hb_st, &t, &e), 0);
	cr_assert_eq(store_txn_put(t, &p, NULL, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), 0);
	json_decref(data);
	cr_assert_eq(hub_wait(hb, start, util_monotonic_ms() + 3000), 1);
	cr_assert_eq(hub_head(hb), start + 1);
	hb_close();
}

Test(hub, cursor_behind_ring_is_served_from_the_store)
{
	struct hub_entry *en[8];
	struct err e = ERR_INIT;
	int64_t start;
	int n;

	hb_open(0);
	start = store_head(hb_st);
	hb_write_one_txn("old", HUB_RING_MAX + 20);
	hb_wait_for(start + HUB_RING_MAX + 20);
	/* The first writes have left the ring; they still come in order. */
	n = hub_fetch(hb, start, en, 8, &e);
	cr_assert_eq(n, 8, "fetch gave %d (%s)", n, e.msg);
	cr_assert_eq(en[0]->revision, start + 1);
	cr_assert_str_eq(en[0]->name, "old-0");
	cr_assert_eq(en[7]->revision, start + 8);
	hub_entries_put(en, n);
	hb_close();
}

static _Atomic int hb_listeners;

static int hb_count(void *arg)
{
	(void)arg;
	return atomic_load(&hb_listeners);
}

/* Fetch revisions after..after+n twice: the same entries (true) come from
 * the ring, fresh copies (false) from the store. Checks order and names. */
static bool hb_fetch_shared(int64_t after, int n, const char *prefix)
{
	struct hub_entry *a[16], *b[16];
	struct err e = ERR_INIT;
	char name[64];
	bool shared;
	int i;

	cr_assert_leq(n, 16);
	cr_assert_eq(hub_fetch(hb, after, a, n, &e), n, "%s", e.msg);
	cr_assert_eq(hub_fetch(hb, after, b, n, &e), n, "%s", e.msg);
	for (i = 0; i < n; i++) {
		cr_assert_eq(a[i]->revision, after + 1 + i);
		snprintf(name, sizeof(name), "%s-%d", prefix, i);
		cr_assert_str_eq(a[i]->name, name);
	}
	shared = a[0] == b[0];
	hub_entries_put(a, n);
	hub_entries_put(b, n);
	return shared;
}

/* With no stream open the ring stays empty, the head still moves and the
 * changes come from the store; once one is open the ring fills again. */
Test(hub, without_listeners_changes_come_from_the_store)
{
	int64_t start;

	atomic_store(&hb_listeners, 0);
	hb_open_counted(0, hb_count);
	start = store_head(hb_st);
	hb_write("quiet", 10);
	hb_wait_for(start + 10);
	cr_assert_not(hb_fetch_shared(start, 10, "quiet"),
		      "read into the ring with nobody listening");
	atomic_store(&hb_listeners, 1);
	hb_write("heard", 10);
	hb_wait_for(start + 20);
	cr_assert(hb_fetch_shared(start + 10, 10, "heard"),
		  "not read into the ring with a listener");
	/* What came before is still there, from the store. */
	cr_assert_not(hb_fetch_shared(start, 10, "quiet"));
	hb_close();
}

Test(hub, trimmed_cursor_gives_gap)
{
	struct hub_entry *en[8];
	struct err e = ERR_INIT;
	int64_t start;
	int n;

	hb_open(5);
	start = store_head(hb_st);
	/* Past the ring, and far past the five rows the log keeps. */
	hb_write_one_txn("g", HUB_RING_MAX + 30);
	hb_wait_for(start + HUB_RING_MAX + 30);
	cr_assert_gt(store_changelog_oldest(hb_st), start + 2);
	n = hub_fetch(hb, start, en, 8, &e);
	cr_assert_eq(n, HUB_GAP, "fetch gave %d", n);
	/* From the oldest retained revision on it works again. */
	n = hub_fetch(hb, store_changelog_oldest(hb_st) - 1, en, 8, &e);
	cr_assert_gt(n, 0, "fetch gave %d (%s)", n, e.msg);
	cr_assert_eq(en[0]->revision, store_changelog_oldest(hb_st));
	hub_entries_put(en, n);
	hb_close();
}

Test(hub, ring_still_serves_what_the_log_trimmed)
{
	struct hub_entry *en[8];
	struct err e = ERR_INIT;
	int64_t start;
	int n, i;

	hb_open(5);
	start = store_head(hb_st);
	for (i = 0; i < 30; i++) {
		char prefix[16];

		/* One at a time, each read by the hub before the next. */
		snprintf(prefix, sizeof(prefix), "t%d", i);
		hb_write(prefix, 1);
		hb_wait_for(start + 1 + i);
	}
	cr_assert_gt(store_changelog_oldest(hb_st), start + 2);
	/* The hub read them as they came: no change is lost to a stream
	 * that is behind the log but not behind the ring. */
	n = hub_fetch(hb, start, en, 8, &e);
	cr_assert_eq(n, 8, "fetch gave %d", n);
	cr_assert_eq(en[0]->revision, start + 1);
	cr_assert_str_eq(en[0]->name, "t0-0");
	hub_entries_put(en, n);
	hb_close();
}

/* hub_stop() 50 ms after the start, from another thread. */
static void *hb_stop_later(void *arg)
{
	struct timespec ts = { 0, 50 * 1000000L };

	nanosleep(&ts, NULL);
	hub_stop(arg);
	return NULL;
}

Test(hub, wait_times_out_and_wakes_on_stop)
{
	pthread_t stopper;
	int64_t t0;

	hb_open(0);
	t0 = util_monotonic_ms();
	cr_assert_eq(hub_wait(hb, hub_head(hb), t0 + 100), 0);
	cr_assert_geq(util_monotonic_ms() - t0, 100);
	/* As the server stops: its flag, then hub_stop(), which wakes a
	 * waiter at once (from another thread here). */
	atomic_store(&hb_stopping, true);
	t0 = util_monotonic_ms();
	cr_assert_eq(pthread_create(&stopper, NULL, hb_stop_later, hb), 0);
	cr_assert_eq(hub_wait(hb, hub_head(hb), t0 + 10000), HUB_STOPPED);
	cr_assert_lt(util_monotonic_ms() - t0, 50 + 500);
	pthread_join(stopper, NULL);
	hb_close();
}

static int hb_calls;

static char *hb_fmt(const struct hub_entry *en, json_t *record, void *arg,
		    size_t *len)
{
	char *s;

	(void)arg;
	hb_calls++;
	s = NULL;
	if (asprintf(&s, "%s/%s", en->collection,
		     json_string_value(json_object_get(record, "name"))) < 0)
		return NULL;
	*len = strlen(s);
	return s;
}

Test(hub, cache_formats_once)
{
	struct hub_entry *en[2];
	struct err e = ERR_INIT;
	const char *a, *b;
	size_t la = 0, lb = 0;
	int64_t start;

	hb_open(0);
	start = store_head(hb_st);
	hb_write("c", 1);
	hb_wait_for(start + 1);
	cr_assert_eq(hub_fetch(hb, start, en, 1, &e), 1);
	cr_assert_eq(hub_fetch(hb, start, en + 1, 1, &e), 1);
	cr_assert_eq(en[0], en[1], "ring entries are shared");
	hb_calls = 0;
	a = hub_entry_cache(en[0], 2, hb_fmt, NULL, &la);
	b = hub_entry_cache(en[1], 2, hb_fmt, NULL, &lb);
	cr_assert_eq(hb_calls, 1);
	cr_assert_eq(a, b);
	cr_assert_str_eq(a, "ai_prompts/c-0");
	cr_assert_eq(la, strlen(a));
	cr_assert_null(hub_entry_cache(en[0], HUB_CACHE_SLOTS, hb_fmt, NULL,
				       &la));
	hub_entries_put(en, 2);
	hb_close();
}

struct hb_reader {
	int64_t from, to;
	int got;
	bool ordered;
};

static void *hb_read_main(void *arg)
{
	struct hb_reader *r = arg;
	struct hub_entry *en[32];
	struct err e = ERR_INIT;
	int64_t cur = r->from;
	int64_t deadline = util_monotonic_ms() + 20000;
	int n, i;

	r->ordered = true;
	while (cur < r->to && util_monotonic_ms() < deadline) {
		if (hub_wait(hb, cur, deadline) != 1)
			break;
		n = hub_fetch(hb, cur, en, 32, &e);
		if (n <= 0)
			break;
		for (i = 0; i < n; i++) {
			if (en[i]->revision != cur + 1)
				r->ordered = false;
			cur = en[i]->revision;
			r->got++;
		}
		hub_entries_put(en, n);
	}
	return NULL;
}

/* More readers than wake buckets, so that some share a bucket and every
 * bucket has sleepers: a lost wake-up leaves a reader short. */
#define HB_READERS 40

Test(hub, concurrent_readers_see_every_change_once)
{
	struct hb_reader r[HB_READERS];
	pthread_t th[HB_READERS];
	int64_t start;
	int i;

	hb_open(0);
	start = store_head(hb_st);
	for (i = 0; i < HB_READERS; i++) {
		r[i].from = start;
		r[i].to = start + 300;
		r[i].got = 0;
		cr_assert_eq(pthread_create(&th[i], NULL, hb_read_main, &r[i]),
			     0);
	}
	hb_write("cc", 300);
	for (i = 0; i < HB_READERS; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(r[i].got, 300, "reader %d got %d", i, r[i].got);
		cr_assert(r[i].ordered, "reader %d out of order", i);
	}
	hb_close();
}

Test(hub, null_notify_and_free_are_safe)
{
	hub_notify(NULL);
	hub_stop(NULL);
	hub_free(NULL);
	hub_entries_put(NULL, 0);
	cr_assert(1);
}

static int hb_client_fn(void *ptr, void *arg)
{
	*(int *)arg = *(int *)ptr;
	return 7;
}

Test(hub, client_table_add_find_remove)
{
	struct err e = ERR_INIT;
	int a = 41, b = 42, got = 0;
	char big[HUB_CLIENT_ID_MAX + 1];

	hb_open(0);
	cr_assert_eq(hub_client_add(hb, "abc", &a, &e), 0);
	cr_assert_eq(hub_client_add(hb, "abd", &b, &e), 0);
	cr_assert_eq(hub_client_add(hb, "abc", &b, &e), ERR_CONFLICT);
	cr_assert_eq(hub_client_add(hb, "", &b, &e), ERR_INVALID);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(hub_client_add(hb, big, &b, &e), ERR_INVALID);
	cr_assert_eq(hub_client_count(hb), 2);
	cr_assert_eq(hub_client_with(hb, "abd", hb_client_fn, &got), 7);
	cr_assert_eq(got, 42);
	cr_assert_eq(hub_client_with(hb, "nope", hb_client_fn, &got),
		     ERR_NOT_FOUND);
	hub_client_remove(hb, "abd");
	hub_client_remove(hb, "never");
	cr_assert_eq(hub_client_with(hb, "abd", hb_client_fn, &got),
		     ERR_NOT_FOUND);
	cr_assert_eq(hub_client_count(hb), 1);
	/* Left registered: hub_free() cleans up. */
	hb_close();
}

/* One wake descriptor per sleeping thread: each one asked for becomes
 * readable at a publish, and emptying one leaves the others readable. */
Test(hub, every_wake_fd_asked_for_is_written)
{
	struct pollfd pf[2];
	uint64_t v;
	int a, b;

	hb_open(0);
	cr_assert_eq(hub_wake_fd(hb, -1), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(hub_wake_fd(hb, HUB_WAKE_FDS), -1);
	cr_assert_eq(errno, EINVAL);
	a = hub_wake_fd(hb, 0);
	b = hub_wake_fd(hb, 2);   /* 1 comes with it */
	cr_assert(a >= 0 && b >= 0 && a != b);
	cr_assert_eq(hub_wake_fd(hb, 0), a, "the same descriptor again");
	while (read(a, &v, sizeof(v)) > 0)
		;
	while (read(b, &v, sizeof(v)) > 0)
		;
	hb_write("wake", 1);
	pf[0] = (struct pollfd){ .fd = a, .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = b, .events = POLLIN };
	cr_assert_eq(poll(pf, 1, 5000), 1, "no wake-up on the first");
	cr_assert_eq(read(a, &v, sizeof(v)), (ssize_t)sizeof(v));
	cr_assert_eq(poll(pf + 1, 1, 5000), 1, "emptying one took the other's");
	cr_assert(pf[1].revents & POLLIN);
	cr_assert(hub_wake_fd(hb, 1) >= 0);
	hb_close();
}
