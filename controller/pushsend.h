/*
 * pushsend.h - the HTTP client of push delivery: POSTs on a thread of its
 * own with libcurl's multi interface, so that any number of them run at
 * once and a slow or silent endpoint holds up nothing but itself, and the
 * caller (the push reconciler, on the engine thread) never waits.
 *
 * Every request is bounded: connect and total timeouts, no redirects,
 * http and https only, no proxy from the environment, response headers
 * and body capped (a larger answer is cut off, its status kept). A
 * guarded request goes through the SSRF guard (netguard.h) at the moment
 * of connecting: curl's opensocket callback sees each address it is about
 * to connect to, after its own resolution, and refuses one the guard
 * refuses, so what is checked is what is connected to and DNS rebinding
 * cannot switch it.
 *
 * Calling sequence: pushsend_new() -> pushsend_submit()... /
 * pushsend_collect()... -> pushsend_free().
 *
 * THREAD SAFETY NOTES: submit, collect and inflight may be called from
 * any thread (one mutex guards the queues); the sending thread calls
 * opts.wake (from its own thread) after results arrive: at once after a
 * quiet spell, then at most every PUSHSEND_WAKE_GAP_MS. pushsend_free()
 * must not race with the others.
 */
#ifndef POCKETCTL_PUSHSEND_H
#define POCKETCTL_PUSHSEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "netguard.h"

#define PUSHSEND_TAG_MAX 96
#define PUSHSEND_ERR_MAX 256
#define PUSHSEND_BODY_CAP 65536      /* response body bytes read */
#define PUSHSEND_HEADER_CAP 16384    /* response header bytes read */
#define PUSHSEND_WAKE_GAP_MS 50      /* opts.wake at most this often */

struct pushsend;

struct pushsend_opts {
	const struct netguard_cidr *allow;   /* copied */
	size_t nallow;
	int64_t timeout_ms;                  /* total, per request */
	int64_t connect_ms;
	size_t max_inflight;                 /* transfers at once */
	void (*wake)(void *arg);             /* results are ready */
	void *wake_arg;
};

struct pushsend_req {
	const char *tag;          /* the caller's key (a notification id) */
	const char *device;       /* the caller's second key */
	int attempt;              /* echoed in the result */
	const char *url;
	const char *body;         /* JSON */
	const char *const *headers; /* "Name: value", NULL-terminated */
	bool guard;               /* check the addresses (netguard.h) */
};

struct pushsend_result {
	char tag[PUSHSEND_TAG_MAX];
	char device[PUSHSEND_TAG_MAX];
	int attempt;
	long code;                /* HTTP status; 0 when none arrived */
	bool refused;             /* the guard refused every address */
	bool timeout;
	char error[PUSHSEND_ERR_MAX]; /* "" on a clean exchange */
	int64_t ms;               /* how long it took */
};

/*
 * The retry policy of a sender's caller: how many attempts, and a capped
 * exponential backoff with jitter between them.
 */
struct pushsend_retry {
	int max_attempts;
	int64_t backoff_ms, backoff_max_ms;
	unsigned rng;
};

/*
 * Read the policy and the sender's timeouts from the environment:
 * PREFIX_ATTEMPTS (default attempts, 1 to 1000), PREFIX_BACKOFF_MS (1 s,
 * 10 ms to 10 min; doubling up to 5 min) and PREFIX_TIMEOUT_MS (10 s,
 * 100 ms to 10 min, into o->timeout_ms; o->connect_ms at most 5 s).
 */
void pushsend_retry_env(struct pushsend_retry *r, struct pushsend_opts *o,
			const char *prefix, int attempts);

/* The wait before the attempt after attempt number attempt: somewhere in
 * [d/2, d], d doubling from backoff_ms up to backoff_max_ms. */
int64_t pushsend_backoff(struct pushsend_retry *r, int attempt);

/* Start the sending thread. Caller owns *out (pushsend_free()). ERR_NOMEM,
 * ERR_INTERNAL (curl or the thread could not be set up). */
int pushsend_new(struct pushsend **out, const struct pushsend_opts *o,
		 struct err *e);

/* Queue one request (every string copied). ERR_NOMEM. */
int pushsend_submit(struct pushsend *ps, const struct pushsend_req *r,
		    struct err *e);

/* Take the results that arrived since the last call: *out (caller frees
 * with free(); NULL when none) holds the count returned. */
size_t pushsend_collect(struct pushsend *ps, struct pushsend_result **out);

/* Requests queued or in flight whose result has not been collected. */
size_t pushsend_pending(struct pushsend *ps);

/* Stop the thread (abandoning requests in flight) and free. NULL ok. */
void pushsend_free(struct pushsend *ps);

#endif
