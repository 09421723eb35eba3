/*
 * workq.h - the reconcile engine's work queue: keys (reconciler names) that
 * need a pass, deduplicated, never processed twice at once, retried with
 * capped exponential backoff (after client-go's rate-limited work queue).
 *
 * A key is in one of four states: idle (known, nothing to do), ready
 * (waiting in FIFO order), delayed (ready at a given time: a retry after a
 * failure, a requested requeue, a debounce) or processing (handed out by
 * workq_get() and not yet workq_done()). Adding a key that is ready does
 * nothing; adding a key that is processing marks it dirty, so it runs once
 * more after the current run ends; adding a delayed key makes it ready now
 * (a new trigger deserves an attempt at once; its failure count is kept,
 * so a further failure waits longer). A failed key is never dropped.
 *
 * Time is passed in by the caller (milliseconds on any monotonic clock), so
 * the queue is deterministic and testable; it never sleeps and keeps no
 * thread. THREAD SAFETY NOTES: none; the engine touches it only from its
 * own thread.
 */
#ifndef POCKETCTL_WORKQ_H
#define POCKETCTL_WORKQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define WORKQ_BACKOFF_MIN_MS 100
#define WORKQ_BACKOFF_MAX_MS 60000
#define WORKQ_NEVER INT64_MAX

struct workq;

struct workq_options {
	int64_t backoff_min_ms;   /* first retry delay; 0 = 100 ms */
	int64_t backoff_max_ms;   /* cap; 0 = 60 s */
	int jitter_pct;           /* 0..50: each retry delay is stretched by a
	                           * random 0..jitter_pct percent (capped at
	                           * backoff_max_ms) so failing keys do not
	                           * retry in lock step; 0 = exact delays */
};

enum workq_outcome {
	WORKQ_OK = 0,         /* done: reset the failure count */
	WORKQ_FAILED,         /* retry after backoff(failures + 1) */
	WORKQ_REQUEUE,        /* done, but run again after requeue_ms */
};

/* What the queue knows about one key (for status). */
struct workq_info {
	bool ready;
	bool delayed;
	bool processing;
	bool dirty;           /* re-added while processing */
	int failures;         /* consecutive failures, 0 after a success */
	int64_t next_at;      /* when delayed: due time; else WORKQ_NEVER */
	int64_t last_delay;   /* the last backoff delay chosen, 0 if none */
};

/* Create an empty queue. o may be NULL (defaults). Returns 0 or ERR_NOMEM.
 * Caller owns *out (free with workq_free()). */
int workq_new(struct workq **out, const struct workq_options *o,
	      struct err *e);

/* Accepts NULL. */
void workq_free(struct workq *q);

/*
 * The delay before retry number `failures` (1 = after the first failure):
 * min(backoff_min * 2^(failures-1), backoff_max), without jitter. Pure.
 */
int64_t workq_backoff(const struct workq_options *o, int failures);

/* Make key ready now (see the state rules above). The key is copied.
 * Returns 0 or ERR_NOMEM. */
int workq_add(struct workq *q, const char *key, int64_t now);

/*
 * Make key ready at time at: an idle key becomes delayed; a delayed key
 * keeps the earlier of the two times; a ready key stays ready; a key being
 * processed is scheduled for at once its run ends (unless it is dirty,
 * which runs it at once). Returns 0 or ERR_NOMEM.
 */
int workq_add_after(struct workq *q, const char *key, int64_t at);

/*
 * Hand out the oldest ready key (delayed keys due at now are made ready
 * first, in due order) and mark it processing. Returns true and sets *key
 * (borrowed; valid until workq_done() for that key), or false when no key
 * is ready.
 */
bool workq_get(struct workq *q, int64_t now, const char **key);

/*
 * End the run of key (which must be processing; anything else is ignored).
 * requeue_ms is used with WORKQ_REQUEUE only. Returns the delay chosen for
 * a failure or requeue (0 otherwise).
 */
int64_t workq_done(struct workq *q, const char *key, enum workq_outcome out,
		   int64_t requeue_ms, int64_t now);

/* The earliest time a delayed key falls due, or WORKQ_NEVER. */
int64_t workq_next_deadline(const struct workq *q);

/* Number of ready keys (not counting delayed or processing ones). */
size_t workq_ready(const struct workq *q);

/* Fill *info for key; false when the key was never added. */
bool workq_info(const struct workq *q, const char *key,
		struct workq_info *info);

#endif
