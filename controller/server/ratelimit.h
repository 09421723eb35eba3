/*
 * ratelimit.h - request budgets in the manner of PocketBase's rate limits:
 * a number of requests per interval, counted per client key (an IP
 * address, or an auth collection and identity) and per group, in a fixed
 * window that starts with the key's first request and resets when it ends.
 * Over budget, callers answer 429 with Retry-After.
 *
 * The counters live in a table of fixed size, allocated once: a flood of
 * distinct keys evicts the counters whose windows end soonest and never
 * grows memory.
 *
 * THREAD SAFETY NOTES: a struct ratelimit is shared by every civetweb
 * worker. The table is split into stripes, each with its own mutex, held
 * only for a few probes; ratelimit_take() and ratelimit_forget() may be
 * called from any thread. A struct ratelimit_config is filled before the
 * server starts and read-only afterwards.
 */
#ifndef POCKETCTL_RATELIMIT_H
#define POCKETCTL_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum rl_group {
	RL_AUTH = 0,          /* every auth-with-password / auth-refresh
	                       * request, per client IP */
	RL_WRITE,             /* POST, PUT, PATCH, DELETE, per client IP */
	RL_ALL,               /* every request, per client IP */
	RL_LOGIN_IDENTITY,    /* failed password logins per auth collection
	                       * and identity (email, case-folded) */
	RL_LOGIN_IP,          /* failed password logins per client IP */
	RL__COUNT
};

/* max requests per window_s seconds; max 0 = no limit. */
struct rl_rule {
	int max;
	int window_s;
};

struct ratelimit_config {
	struct rl_rule rules[RL__COUNT];
};

/*
 * The defaults: failed logins 5 a minute per identity and 50 a minute per
 * IP, auth requests 600 a minute per IP; writes and everything else
 * unlimited (the benchmark runs ~20,000 req/s from one loopback address).
 */
void ratelimit_config_init(struct ratelimit_config *c);

/*
 * Set rules from spec: "GROUP=N/SECONDS", several separated by commas
 * (GROUP one of auth, write, all, login-identity, login-ip; N 0 turns the
 * group off). Returns 0 or ERR_INVALID naming the bad part; c is only
 * changed when all of spec is valid.
 */
int ratelimit_config_parse(struct ratelimit_config *c, const char *spec,
			   struct err *e);

/* "auth", "write", ... */
const char *ratelimit_group_name(enum rl_group g);

struct ratelimit;

/*
 * A table holding at most cap counters (rounded up to a whole number of
 * stripes). NULL when out of memory. Free with ratelimit_free().
 */
struct ratelimit *ratelimit_new(size_t cap);

/* Accepts NULL. */
void ratelimit_free(struct ratelimit *rl);

/*
 * Count one request of key in group g under rule at now_ms (a monotonic
 * clock in milliseconds). Returns 0 when it is within the budget (counted
 * when take is true; with take false it is only checked), or else the
 * whole seconds (at least 1) until the key's window ends: nothing is
 * counted then. A rule with max 0 always returns 0.
 */
int ratelimit_take(struct ratelimit *rl, enum rl_group g,
		   const struct rl_rule *rule, const char *key, bool take,
		   int64_t now_ms);

/* Give back n requests of key in g (all of them when n < 0): a login that
 * turned out to succeed. */
void ratelimit_give_back(struct ratelimit *rl, enum rl_group g,
			 const char *key, int n);

/* CLOCK_MONOTONIC in milliseconds, the clock ratelimit_take() expects. */
int64_t ratelimit_now_ms(void);

#endif
