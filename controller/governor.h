/*
 * governor.h - the restart governor: the pure policy (no clock, no I/O)
 * that decides when a managed container may be started or restarted, so
 * that bursts of file changes coalesce and a crash loop cannot become a
 * restart storm. The containers reconciler drives one struct governor per
 * container; it is tested alone (tests/unit/test_docker.c).
 *
 * THREAD SAFETY NOTES: a struct governor belongs to its caller and is not
 * locked (the containers pass runs on the engine thread only).
 */
#ifndef POCKETCTL_GOVERNOR_H
#define POCKETCTL_GOVERNOR_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The policy that keeps a managed container from restart storms, one struct
 * governor per container, driven by the reconciler with the monotonic
 * clock in milliseconds:
 *   - quiet period: a change of the desired hash waits until quiet_ms have
 *     passed without a further change, so a burst becomes one restart (but
 *     never longer than max_delay_ms after the burst began);
 *   - at most one action in flight (begin .. end);
 *   - budget: at most `budget` actions per window_ms; one more opens the
 *     breaker (RestartBudgetExhausted) for cooldown_ms, after which it
 *     closes with a fresh budget - it never gives up for good;
 *   - a failed action is retried after a capped exponential backoff.
 * A manual restart skips the quiet period and the breaker (it still counts
 * against the budget and waits for an action in flight and for backoff).
 *
 * Calling sequence per pass: governor_decide(); when the verdict is START
 * or RESTART, governor_begin() as the action is launched and
 * governor_end() once its outcome is known.
 */
#define GOVERNOR_BUDGET_MAX 64
#define GOVERNOR_HASH_LEN 64          /* hex SHA-256 */

struct governor_config {
	int64_t quiet_ms;           /* default 1000 */
	int64_t max_delay_ms;       /* default 10000 */
	int budget;                 /* actions per window, default 5
	                             * (1..GOVERNOR_BUDGET_MAX) */
	int64_t window_ms;          /* default 300000 (5 minutes) */
	int64_t cooldown_ms;        /* breaker open time, default 60000 */
	int64_t backoff_min_ms;     /* default 1000 */
	int64_t backoff_max_ms;     /* default 60000 */
};

/* Fill c with the defaults above. */
void governor_config_default(struct governor_config *c);

/* Clamp every field of c into a sane range (budget 1..MAX, times >= 0,
 * backoff_min <= backoff_max). */
void governor_config_clamp(struct governor_config *c);

struct governor {
	char seen[GOVERNOR_HASH_LEN + 1];  /* desired hash seen last pass */
	bool burst;                 /* changes are waiting for a restart */
	int64_t burst_first_ms;     /* first change of the current burst */
	int64_t burst_last_ms;      /* latest change of the current burst */
	int64_t times[GOVERNOR_BUDGET_MAX]; /* recent action times, oldest
	                                       * first */
	int ntimes;
	int64_t open_until_ms;      /* breaker open until then; 0 = closed */
	int64_t opened_ms;          /* when it last opened */
	int failures;               /* consecutive failed actions */
	int64_t retry_at_ms;        /* not before this after a failure */
	bool in_flight;
};

enum governor_verdict {
	GOVERNOR_IDLE = 0,        /* nothing to do */
	GOVERNOR_WAIT,            /* something to do, not yet: ask again at
	                             * wake_ms (0: when the action in flight
	                             * ends) */
	GOVERNOR_START,
	GOVERNOR_RESTART,
};

struct governor_input {
	const char *desired;        /* desired hash now (NULL: unknown) */
	int64_t changed_ms;         /* when the inputs last changed (e.g. the
	                             * newest file's mtime), on the same clock;
	                             * 0 or later than now: now */
	bool stale;                 /* desired differs from the applied hash */
	bool not_running;           /* should run and does not */
	bool manual;                /* a manual restart is requested */
};

struct governor_decision {
	enum governor_verdict verdict;
	int64_t wake_ms;            /* WAIT: absolute time to decide again */
	const char *reason;         /* WAIT: "QuietPeriod", "ActionInFlight",
	                             * "RestartBudgetExhausted", "Backoff";
	                             * START/RESTART: "ManualRestart",
	                             * "NotRunning", "FilesChanged"; IDLE: "" */
};

void governor_init(struct governor *g);

/* Decide what to do now. Updates the burst tracking and opens or closes
 * the breaker as time passes; otherwise does not change g. */
void governor_decide(struct governor *g, const struct governor_config *c,
		       int64_t now_ms, const struct governor_input *in,
		       struct governor_decision *out);

/* An action starts now: it is in flight, counts against the budget, and
 * takes the changes seen so far with it (the burst ends). */
void governor_begin(struct governor *g, int64_t now_ms);

/* The action in flight ended: ok resets the backoff; a failure schedules
 * the retry (backoff_min doubling up to backoff_max). */
void governor_end(struct governor *g, const struct governor_config *c,
		    int64_t now_ms, bool ok);

/* True while the breaker is open at now_ms. */
bool governor_breaker_open(const struct governor *g, int64_t now_ms);

/* The actions the budget still allows in the window ending at now_ms
 * (0..c->budget); does not change g. */
int governor_budget_left(const struct governor *g,
			 const struct governor_config *c, int64_t now_ms);

#endif
