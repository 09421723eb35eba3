/*
 * governor.c - the restart governor (see governor.h): quiet period, one
 * action in flight, the restart budget and its breaker, and the backoff
 * after a failed action, all as pure functions of the caller's clock.
 */
#include "governor.h"

#include <stdio.h>
#include <string.h>

void governor_config_default(struct governor_config *c)
{
	c->quiet_ms = 1000;
	c->max_delay_ms = 10000;
	c->budget = 5;
	c->window_ms = 300000;
	c->cooldown_ms = 60000;
	c->backoff_min_ms = 1000;
	c->backoff_max_ms = 60000;
}

void governor_config_clamp(struct governor_config *c)
{
	if (c->quiet_ms < 0)
		c->quiet_ms = 0;
	if (c->max_delay_ms < c->quiet_ms)
		c->max_delay_ms = c->quiet_ms;
	if (c->budget < 1)
		c->budget = 1;
	if (c->budget > GOVERNOR_BUDGET_MAX)
		c->budget = GOVERNOR_BUDGET_MAX;
	if (c->window_ms < 0)
		c->window_ms = 0;
	if (c->cooldown_ms < 0)
		c->cooldown_ms = 0;
	if (c->backoff_min_ms < 0)
		c->backoff_min_ms = 0;
	if (c->backoff_max_ms < c->backoff_min_ms)
		c->backoff_max_ms = c->backoff_min_ms;
}

void governor_init(struct governor *g)
{
	memset(g, 0, sizeof(*g));
}

bool governor_breaker_open(const struct governor *g, int64_t now_ms)
{
	return g->open_until_ms != 0 && now_ms < g->open_until_ms;
}

int governor_budget_left(const struct governor *g,
			 const struct governor_config *c, int64_t now_ms)
{
	int i, used = 0;

	for (i = 0; i < g->ntimes; i++)
		if (g->times[i] > now_ms - c->window_ms)
			used++;
	return used >= c->budget ? 0 : c->budget - used;
}

/* Forget actions older than the window. */
static void prune(struct governor *g, const struct governor_config *c,
		      int64_t now)
{
	int i = 0, j;

	while (i < g->ntimes && g->times[i] <= now - c->window_ms)
		i++;
	if (!i)
		return;
	for (j = 0; i < g->ntimes; i++, j++)
		g->times[j] = g->times[i];
	g->ntimes = j;
}

static void wait_for(struct governor_decision *out, int64_t wake,
		     const char *reason)
{
	out->verdict = GOVERNOR_WAIT;
	out->wake_ms = wake;
	out->reason = reason;
}

void governor_decide(struct governor *g, const struct governor_config *c,
		       int64_t now, const struct governor_input *in,
		       struct governor_decision *out)
{
	int64_t due;

	memset(out, 0, sizeof(*out));
	out->reason = "";
	/* Burst tracking: every change of the desired hash extends it. */
	if (in->desired && strncmp(g->seen, in->desired, GOVERNOR_HASH_LEN)) {
		/* The quiet period runs from the change itself when the caller
		 * knows when it happened, not from when it was noticed. */
		int64_t t = in->changed_ms > 0 && in->changed_ms <= now ?
			    in->changed_ms : now;

		snprintf(g->seen, sizeof(g->seen), "%s", in->desired);
		if (g->burst && t < g->burst_last_ms)
			t = g->burst_last_ms;
		if (!g->burst)
			g->burst_first_ms = t;
		g->burst = true;
		g->burst_last_ms = t;
	}
	if (!in->stale)
		g->burst = false;
	/* The breaker closes after its cool-down, with a fresh budget. */
	if (g->open_until_ms && now >= g->open_until_ms) {
		g->open_until_ms = 0;
		g->ntimes = 0;
	}
	prune(g, c, now);
	if (!in->stale && !in->not_running && !in->manual) {
		out->verdict = GOVERNOR_IDLE;
		return;
	}
	if (g->in_flight) {
		wait_for(out, 0, "ActionInFlight");
		return;
	}
	if (g->retry_at_ms > now) {
		wait_for(out, g->retry_at_ms, "Backoff");
		return;
	}
	if (!in->manual) {
		if (g->open_until_ms) {
			wait_for(out, g->open_until_ms, "RestartBudgetExhausted");
			return;
		}
		if (!in->not_running && in->stale && g->burst) {
			due = g->burst_last_ms + c->quiet_ms;
			if (due > g->burst_first_ms + c->max_delay_ms)
				due = g->burst_first_ms + c->max_delay_ms;
			if (now < due) {
				wait_for(out, due, "QuietPeriod");
				return;
			}
		}
		if (g->ntimes >= c->budget) {
			g->open_until_ms = now + c->cooldown_ms;
			g->opened_ms = now;
			wait_for(out, g->open_until_ms, "RestartBudgetExhausted");
			return;
		}
	}
	out->verdict = in->not_running ? GOVERNOR_START : GOVERNOR_RESTART;
	out->reason = in->manual ? "ManualRestart"
				 : in->not_running ? "NotRunning" : "FilesChanged";
}

void governor_begin(struct governor *g, int64_t now_ms)
{
	int i;

	g->in_flight = true;
	g->burst = false;
	if (g->ntimes == GOVERNOR_BUDGET_MAX) {
		for (i = 1; i < g->ntimes; i++)
			g->times[i - 1] = g->times[i];
		g->ntimes--;
	}
	g->times[g->ntimes++] = now_ms;
}

void governor_end(struct governor *g, const struct governor_config *c,
		    int64_t now_ms, bool ok)
{
	int64_t delay;
	int i;

	g->in_flight = false;
	if (ok) {
		g->failures = 0;
		g->retry_at_ms = 0;
		return;
	}
	g->failures++;
	delay = c->backoff_min_ms;
	for (i = 1; i < g->failures && delay < c->backoff_max_ms; i++)
		delay *= 2;
	if (delay > c->backoff_max_ms)
		delay = c->backoff_max_ms;
	g->retry_at_ms = now_ms + delay;
}
