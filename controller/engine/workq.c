/*
 * workq.c - the reconcile engine's work queue (see workq.h).
 *
 * Keys live in one growable array, each with its state; the FIFO order of
 * ready keys is a sequence number given when a key becomes ready. The
 * engine has a handful of keys (one per reconciler), so linear scans are
 * both the simplest and the fastest structure here.
 */
#include "workq.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

enum wq_state { WQ_IDLE, WQ_READY, WQ_DELAYED, WQ_PROCESSING };

struct wq_item {
	char *key;
	enum wq_state state;
	uint64_t seq;            /* FIFO order while ready */
	int64_t at;              /* due time while delayed */
	bool dirty;              /* re-added while processing: run again now */
	int64_t pending_at;      /* add_after() while processing, or NEVER */
	int failures;
	int64_t last_delay;
};

struct workq {
	struct workq_options o;
	struct wq_item *items;
	size_t n, alloc;
	uint64_t seq;
	uint64_t rng;            /* xorshift64 state for jitter */
};

int workq_new(struct workq **out, const struct workq_options *o,
	      struct err *e)
{
	struct workq *q;

	*out = NULL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (o)
		q->o = *o;
	if (q->o.backoff_min_ms <= 0)
		q->o.backoff_min_ms = WORKQ_BACKOFF_MIN_MS;
	if (q->o.backoff_max_ms <= 0)
		q->o.backoff_max_ms = WORKQ_BACKOFF_MAX_MS;
	if (q->o.backoff_max_ms < q->o.backoff_min_ms)
		q->o.backoff_max_ms = q->o.backoff_min_ms;
	if (q->o.jitter_pct < 0)
		q->o.jitter_pct = 0;
	if (q->o.jitter_pct > 50)
		q->o.jitter_pct = 50;
	q->rng = (uint64_t)util_monotonic_ms() * 0x9E3779B97F4A7C15ull ^
		 (uint64_t)getpid();
	if (!q->rng)
		q->rng = 1;
	*out = q;
	return 0;
}

void workq_free(struct workq *q)
{
	size_t i;

	if (!q)
		return;
	for (i = 0; i < q->n; i++)
		free(q->items[i].key);
	free(q->items);
	free(q);
}

int64_t workq_backoff(const struct workq_options *o, int failures)
{
	int64_t lo = o && o->backoff_min_ms > 0 ? o->backoff_min_ms
						: WORKQ_BACKOFF_MIN_MS;
	int64_t hi = o && o->backoff_max_ms > 0 ? o->backoff_max_ms
						: WORKQ_BACKOFF_MAX_MS;
	int64_t d = lo;
	int i;

	if (hi < lo)
		hi = lo;
	for (i = 1; i < failures && d < hi; i++)
		d *= 2;
	return d < hi ? d : hi;
}

static struct wq_item *find(const struct workq *q, const char *key)
{
	size_t i;

	for (i = 0; i < q->n; i++)
		if (!strcmp(q->items[i].key, key))
			return &q->items[i];
	return NULL;
}

/* The item of key, created idle when missing; NULL on allocation failure. */
static struct wq_item *get_or_add(struct workq *q, const char *key)
{
	struct wq_item *it = find(q, key), *v;
	size_t na;

	if (it)
		return it;
	if (q->n == q->alloc) {
		na = q->alloc ? q->alloc * 2 : 8;
		v = realloc(q->items, na * sizeof(*v));
		if (!v)
			return NULL;
		q->items = v;
		q->alloc = na;
	}
	it = &q->items[q->n];
	memset(it, 0, sizeof(*it));
	it->key = strdup(key);
	if (!it->key)
		return NULL;
	it->state = WQ_IDLE;
	it->pending_at = WORKQ_NEVER;
	q->n++;
	return it;
}

static void make_ready(struct workq *q, struct wq_item *it)
{
	it->state = WQ_READY;
	it->seq = ++q->seq;
	it->at = WORKQ_NEVER;
}

static void make_delayed(struct wq_item *it, int64_t at)
{
	it->state = WQ_DELAYED;
	it->at = at;
}

int workq_add(struct workq *q, const char *key, int64_t now)
{
	struct wq_item *it = get_or_add(q, key);

	(void)now;
	if (!it)
		return ERR_NOMEM;
	switch (it->state) {
	case WQ_PROCESSING:
		it->dirty = true;
		break;
	case WQ_READY:
		break;
	case WQ_IDLE:
	case WQ_DELAYED:
		make_ready(q, it);
		break;
	}
	return 0;
}

int workq_add_after(struct workq *q, const char *key, int64_t at)
{
	struct wq_item *it = get_or_add(q, key);

	if (!it)
		return ERR_NOMEM;
	switch (it->state) {
	case WQ_PROCESSING:
		if (at < it->pending_at)
			it->pending_at = at;
		break;
	case WQ_READY:
		break;
	case WQ_IDLE:
		make_delayed(it, at);
		break;
	case WQ_DELAYED:
		if (at < it->at)
			it->at = at;
		break;
	}
	return 0;
}

/* Make every delayed key due at now ready, earliest first. */
static void promote(struct workq *q, int64_t now)
{
	struct wq_item *best;
	size_t i;

	for (;;) {
		best = NULL;
		for (i = 0; i < q->n; i++) {
			struct wq_item *it = &q->items[i];

			if (it->state == WQ_DELAYED && it->at <= now &&
			    (!best || it->at < best->at))
				best = it;
		}
		if (!best)
			return;
		make_ready(q, best);
	}
}

bool workq_get(struct workq *q, int64_t now, const char **key)
{
	struct wq_item *best = NULL;
	size_t i;

	promote(q, now);
	for (i = 0; i < q->n; i++) {
		struct wq_item *it = &q->items[i];

		if (it->state == WQ_READY && (!best || it->seq < best->seq))
			best = it;
	}
	if (!best)
		return false;
	best->state = WQ_PROCESSING;
	best->dirty = false;
	best->pending_at = WORKQ_NEVER;
	*key = best->key;
	return true;
}

/* The delay after a failure, with jitter. */
static int64_t retry_delay(struct workq *q, int failures)
{
	int64_t d = workq_backoff(&q->o, failures), extra;

	if (q->o.jitter_pct > 0) {
		q->rng ^= q->rng << 13;
		q->rng ^= q->rng >> 7;
		q->rng ^= q->rng << 17;
		extra = (int64_t)(q->rng % 1000) * d * q->o.jitter_pct / 100000;
		d += extra;
		if (d > q->o.backoff_max_ms)
			d = q->o.backoff_max_ms;
	}
	return d;
}

int64_t workq_done(struct workq *q, const char *key, enum workq_outcome out,
		   int64_t requeue_ms, int64_t now)
{
	struct wq_item *it = find(q, key);
	int64_t delay = 0, pending;
	bool dirty;

	if (!it || it->state != WQ_PROCESSING)
		return 0;
	dirty = it->dirty;
	pending = it->pending_at;
	it->dirty = false;
	it->pending_at = WORKQ_NEVER;
	it->state = WQ_IDLE;
	switch (out) {
	case WORKQ_OK:
		it->failures = 0;
		break;
	case WORKQ_FAILED:
		if (it->failures < 1000000)
			it->failures++;
		delay = retry_delay(q, it->failures);
		it->last_delay = delay;
		make_delayed(it, now + delay);
		break;
	case WORKQ_REQUEUE:
		it->failures = 0;
		delay = requeue_ms > 0 ? requeue_ms : 0;
		make_delayed(it, now + delay);
		break;
	}
	if (dirty) {
		make_ready(q, it);
	} else if (pending != WORKQ_NEVER) {
		if (it->state == WQ_IDLE)
			make_delayed(it, pending);
		else if (pending < it->at)
			it->at = pending;
	}
	return delay;
}

int64_t workq_next_deadline(const struct workq *q)
{
	int64_t best = WORKQ_NEVER;
	size_t i;

	for (i = 0; i < q->n; i++)
		if (q->items[i].state == WQ_DELAYED && q->items[i].at < best)
			best = q->items[i].at;
	return best;
}

size_t workq_ready(const struct workq *q)
{
	size_t i, n = 0;

	for (i = 0; i < q->n; i++)
		if (q->items[i].state == WQ_READY)
			n++;
	return n;
}

bool workq_info(const struct workq *q, const char *key,
		struct workq_info *info)
{
	const struct wq_item *it = find(q, key);

	memset(info, 0, sizeof(*info));
	info->next_at = WORKQ_NEVER;
	if (!it)
		return false;
	info->ready = it->state == WQ_READY;
	info->delayed = it->state == WQ_DELAYED;
	info->processing = it->state == WQ_PROCESSING;
	info->dirty = it->dirty;
	info->failures = it->failures;
	info->last_delay = it->last_delay;
	if (it->state == WQ_DELAYED)
		info->next_at = it->at;
	return true;
}
