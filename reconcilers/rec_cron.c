/*
 * rec_cron.c - the scheduler of cron_jobs. Level-triggered: a pass reads
 * every job, computes from its record alone (expression, zone, last_slot)
 * which slot is due, fires the due ones in one store transaction
 * (cron_fire_txn(): chat, message, last_* and the slot together), writes
 * each job's status (nextRun, timezone, lastRun, catchUp, lastError) only
 * when it changed, and asks for its next pass at the earliest next run:
 * with nothing due there is no tick at all.
 *
 * Catch-up: a job whose slots passed while the server was down fires once,
 * for the newest missed slot, when that slot is at most --cron-grace old
 * (default 1 h; 0 = none); older ones are dropped. A slot less than a
 * minute late always runs (the engine was busy, not down). Never a burst.
 *
 * A job that cannot run - its chat is gone, its stored expression or zone
 * is no longer valid - is listed in the status and makes the reconciler
 * Degraded with the reason; every other job keeps running.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "reconciler.h"
#include "util.h"

#define ON_TIME_MS (60 * 1000)
#define NEVER INT64_MAX
#define ZONE_CACHE 32

struct cstate {
	int64_t grace_ms;
	int64_t passes;           /* since start: wake-ups */
	int64_t fired;            /* since start: messages created */
};

/* The zones opened in one pass, by name. */
struct zones {
	struct crontz *z[ZONE_CACHE];
	size_t n;
};

static struct crontz *zone_get(struct zones *zs, const char *name,
			       struct crontz **own, struct err *e)
{
	struct crontz *z;
	size_t i;

	*own = NULL;
	for (i = 0; i < zs->n; i++)
		if (!strcmp(crontz_name(zs->z[i]), name))
			return zs->z[i];
	if (crontz_open(name, &z, e))
		return NULL;
	if (zs->n < ZONE_CACHE)
		zs->z[zs->n++] = z;
	else
		*own = z;
	return z;
}

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

struct pass {
	struct cron_fire *fires;
	size_t nfires;
	struct cron_status *stats;
	size_t nstats;
	json_t *keep;             /* owns the status objects */
	json_t *degraded;         /* [{job, reason}] */
	int64_t earliest;
	int64_t enabled;
};

static void degrade(struct pass *p, json_t *job, const char *reason)
{
	json_array_append_new(p->degraded, json_pack("{s:s, s:s, s:s}", "job",
		jstr(json_object_get(job, "data"), "name"), "id",
		jstr(job, "id"), "reason", reason));
}

/* The newest slot in (max(base, now - window), now], or -1, and the first
 * slot after now into *next. */
static int due_slot(const struct cronexpr *x, struct crontz *z, int64_t base,
		    int64_t now, int64_t window, int64_t *slot, int64_t *next,
		    struct err *e)
{
	int64_t s;
	int rc;

	*slot = -1;
	rc = cronexpr_next(x, z, base, &s, e);
	if (rc || s > now) {
		*next = s;
		return rc;
	}
	if (base < now - window)
		base = now - window - 1;
	rc = cronexpr_next(x, z, base, &s, e);
	while (!rc && s <= now) {
		*slot = s;
		rc = cronexpr_next(x, z, s, &s, e);
	}
	*next = s;
	return rc;
}

/* The keys of a job's status this reconciler writes; the engine's own
 * (observedGeneration...) are kept as they are. */
static const char *const status_keys[] = {
	"nextRun", "timezone", "lastRun", "catchUp", "lastError", "error",
	NULL,
};

/* st with our keys as in mine (absent there: removed), owned by p->keep;
 * NULL when out of memory. */
static json_t *merged(struct pass *p, json_t *st, json_t *mine)
{
	json_t *out = json_is_object(st) ? json_deep_copy(st) : json_object();
	size_t i;

	if (!out || json_array_append_new(p->keep, out))
		return NULL;
	for (i = 0; status_keys[i]; i++) {
		json_t *v = json_object_get(mine, status_keys[i]);

		if (v)
			json_object_set(out, status_keys[i], v);
		else
			json_object_del(out, status_keys[i]);
	}
	return out;
}

/* One job: what its status should be, and whether a slot is due. */
static int plan_job(struct pass *p, struct zones *zs, json_t *job,
		    int64_t now, int64_t window)
{
	json_t *d = json_object_get(job, "data"), *st, *want;
	char zone[CRONTZ_NAME_MAX + 1], ts[TIME_LEN + 1];
	struct crontz *z = NULL, *own = NULL;
	bool cached = false;
	struct err e = ERR_INIT;
	struct cronexpr x;
	int64_t base, slot = -1, next = NEVER;
	const char *v;
	int rc;

	st = json_object_get(job, "status");
	want = json_object();
	if (!want || json_array_append_new(p->keep, want))
		return ERR_NOMEM;
	if (json_is_true(json_object_get(d, "enabled"))) {
		p->enabled++;
		rc = cron_job_schedule(d, &x, zone, &e);
		z = rc ? NULL : zone_get(zs, zone, &own, &e);
		base = cron_parse_time(jstr(d, "last_slot"));
		if (base < 0)
			base = cron_parse_time(jstr(job, "created"));
		if (z)
			rc = due_slot(&x, z, base, now, window, &slot, &next,
				      &e);
		crontz_free(own);
		cached = z && !own;
		if (!z || rc) {
			degrade(p, job, e.msg);
			json_object_set_new(want, "error", json_string(e.msg));
			next = NEVER;
			slot = -1;
		} else {
			util_format_ms(next, ts);
			json_object_set_new(want, "nextRun", json_string(ts));
			json_object_set_new(want, "timezone", json_string(zone));
		}
		if (!strcmp(jstr(d, "last_status"), "error")) {
			v = jstr(d, "last_error");
			degrade(p, job, v);
			json_object_set_new(want, "lastError", json_string(v));
		}
	}
	/* what the fires wrote stays */
	if (json_object_get(st, "lastRun"))
		json_object_set(want, "lastRun", json_object_get(st, "lastRun"));
	if (json_object_get(st, "catchUp"))
		json_object_set(want, "catchUp", json_object_get(st, "catchUp"));
	if (next < p->earliest)
		p->earliest = next;
	want = merged(p, st, want);
	if (!want)
		return ERR_NOMEM;
	if (slot >= 0) {
		struct cron_fire *f = &p->fires[p->nfires++];

		memset(f, 0, sizeof(*f));
		f->job_id = jstr(job, "id");
		f->slot_ms = slot;
		f->catch_up = now - slot >= ON_TIME_MS;
		f->zone = cached ? z : NULL;   /* zs keeps it for the pass */
		util_format_ms(slot, ts);
		json_object_set_new(want, "lastRun", json_string(ts));
		json_object_set_new(want, "catchUp", json_boolean(f->catch_up));
		f->status = want;
	} else if (!json_equal(st, want)) {   /* only our keys can differ */
		p->stats[p->nstats].job_id = jstr(job, "id");
		p->stats[p->nstats++].status = want;
	}
	return 0;
}

static void report(struct rctx *c, struct cstate *cs, struct pass *p,
		   size_t njobs, int64_t fired, int64_t now)
{
	char ts[TIME_LEN + 1], msg[512];
	json_t *first;

	rctx_status_set(c, "jobs", json_integer((json_int_t)njobs));
	rctx_status_set(c, "enabled", json_integer(p->enabled));
	rctx_status_set(c, "graceSeconds", json_integer(cs->grace_ms / 1000));
	rctx_status_set(c, "passes", json_integer(cs->passes));
	rctx_status_set(c, "fired", json_integer(cs->fired));
	if (p->earliest != NEVER) {
		util_format_ms(p->earliest, ts);
		rctx_status_set(c, "nextRun", json_string(ts));
	} else {
		rctx_status_set(c, "nextRun", json_null());
	}
	rctx_status_set(c, "degraded", json_incref(p->degraded));
	if (fired)
		rctx_log(c, "fired %lld job(s)", (long long)fired);
	if (json_array_size(p->degraded)) {
		first = json_array_get(p->degraded, 0);
		snprintf(msg, sizeof(msg), "%zu job(s) cannot run; cron job "
			 "'%s': %s", json_array_size(p->degraded),
			 jstr(first, "job"), jstr(first, "reason"));
		rctx_condition(c, "Degraded", "True", "JobFailed", msg);
		return;
	}
	if (p->earliest != NEVER)
		snprintf(msg, sizeof(msg), "%lld enabled job(s); next run %s "
			 "(in %llds)", (long long)p->enabled, ts,
			 (long long)((p->earliest - now + 999) / 1000));
	else
		snprintf(msg, sizeof(msg), "%lld enabled job(s); nothing "
			 "scheduled", (long long)p->enabled);
	rctx_condition(c, "Ready", "True", "Scheduled", msg);
}

static int reconcile(struct rctx *c, struct err *e)
{
	struct cstate *cs = rctx_state(c);
	struct pass p;
	struct zones zs;
	struct cron_batch fb;
	struct cron_status_batch sb;
	json_t *jobs = NULL, *job;
	int64_t now, window, fired = 0;
	size_t i, n;
	int rc;

	memset(&p, 0, sizeof(p));
	memset(&zs, 0, sizeof(zs));
	cs->passes++;
	rc = rctx_records(c, "cron_jobs", &jobs, e);
	if (rc)
		return rc;
	n = json_array_size(jobs);
	p.fires = calloc(n ? n : 1, sizeof(*p.fires));
	p.stats = calloc(n ? n : 1, sizeof(*p.stats));
	p.keep = json_array();
	p.degraded = json_array();
	p.earliest = NEVER;
	if (!p.fires || !p.stats || !p.keep || !p.degraded) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	now = cron_now_ms();
	window = cs->grace_ms > ON_TIME_MS ? cs->grace_ms : ON_TIME_MS;
	json_array_foreach(jobs, i, job) {
		if (plan_job(&p, &zs, job, now, window)) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	if (p.nfires) {
		fb.fires = p.fires;
		fb.n = p.nfires;
		fb.now_ms = cron_now_ms();
		rc = rctx_transact(c, cron_fire_txn, &fb, e);
		if (rc)
			goto out;
		for (i = 0; i < p.nfires; i++) {
			if (p.fires[i].fired)
				fired++;
			if (p.fires[i].error[0])
				rctx_log(c, "cron job '%s': %s",
					 p.fires[i].job_id, p.fires[i].error);
		}
		cs->fired += fired;
	}
	if (p.nstats) {
		sb.items = p.stats;
		sb.n = p.nstats;
		rc = rctx_transact(c, cron_status_txn, &sb, e);
		if (rc)
			goto out;
	}
	/* the next slot; a little after it, as the clock may run early */
	if (p.earliest != NEVER)
		rctx_requeue_after(c, p.earliest - cron_now_ms() + 5);
	report(c, cs, &p, n, fired, now);
out:
	for (i = 0; i < zs.n; i++)
		crontz_free(zs.z[i]);
	json_decref(p.keep);
	json_decref(p.degraded);
	free(p.fires);
	free(p.stats);
	return rc;
}

static int start(const struct reconciler_env *env, void **state,
		 struct err *e)
{
	struct cstate *cs = calloc(1, sizeof(*cs));

	if (!cs)
		return err_set(e, ERR_NOMEM, "out of memory");
	cs->grace_ms = env->cron_grace_ms;
	*state = cs;
	return 0;
}

static void stop(void *state)
{
	free(state);
}

static const char *const reads[] = { "cron_jobs", NULL };

const struct reconciler rec_cron = {
	.name = "cron",
	.description = "cron_jobs -> scheduled user messages in chats",
	.reads = reads,
	.start = start,
	.stop = stop,
	.reconcile = reconcile,
};
