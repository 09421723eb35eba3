/*
 * rec_containers.c - the containers reconciler: keeps every container of
 * the `containers` collection running with the files it declares,
 * restarting it only when the hash of those files changed, never in storms
 * (governor.h). The pass decides: desired hash of each container's files,
 * observed state from a quick inspect, one governor verdict, and the
 * outcome of the last action, all reported as status on the container's
 * record through rctx_set_status(). Acting - the action threads and the
 * /events thread - is the runtime's (controller/containers.h), which
 * start() makes and stop() frees.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "containers.h"
#include "reconciler.h"
#include "util.h"

#define MISSING_RETRY_MS 30000       /* ask again for a missing container */
#define ERROR_RETRY_MS 5000          /* an unreadable file, an engine error */
#define DOWN_GRACE_MS 500            /* a container seen stopped is started
                                      * only if still stopped this much
                                      * later: the engine's own restart
                                      * (die ... start) is not a stop */

static int64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The status keys this module writes; everything else is kept. */
static const char *const my_keys[] = {
	"desiredHash", "appliedHash", "appliedAt", "container", "lastAction",
	"actions", "breaker", "budget", "conditions", "manualRestartHandled",
	NULL
};

/* A monotonic deadline as a wall-clock time string. */
static void mono_to_time(int64_t mono_ms, char out[TIME_LEN + 1])
{
	int64_t wall_ms = realtime_ns() / 1000000 + (mono_ms - util_monotonic_ms());
	time_t s = (time_t)(wall_ms / 1000);
	struct tm tm;
	char sec[20];

	gmtime_r(&s, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(out, TIME_LEN + 1, "%.19s.%03uZ", sec,
		 (unsigned)(wall_ms % 1000) % 1000u);
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* ---- status --------------------------------------------------------------- */

/* Append condition type to conds, keeping lastTransitionTime from old when
 * its status did not change. */
static void add_cond(json_t *conds, json_t *old, const char *type,
		     bool status, const char *reason, const char *msg,
		     const char *now)
{
	const char *since = now, *st = status ? "True" : "False";
	size_t i;
	json_t *o;

	json_array_foreach(old, i, o) {
		if (!strcmp(jstr(o, "type"), type) && !strcmp(jstr(o, "status"), st) &&
		    *jstr(o, "lastTransitionTime"))
			since = jstr(o, "lastTransitionTime");
	}
	json_array_append_new(conds, json_pack("{s:s, s:s, s:s, s:s, s:s}",
					       "type", type, "status", st,
					       "reason", reason, "message", msg,
					       "lastTransitionTime", since)); /* stolen */
}

/* ---- the pass --------------------------------------------------------------- */

struct pass {
	struct rctx *c;
	struct containers *rt;
	const struct containers_options *o;
	int64_t now;
	int64_t next;            /* earliest requested pass (monotonic), 0 */
	bool unreachable;
	char unreachable_msg[ERR_MSG_MAX];
};

static void want_pass(struct pass *p, int64_t at)
{
	if (at > 0 && (!p->next || at < p->next))
		p->next = at;
}

/* What one container's pass found, for its status. */
struct view {
	const char *desired;
	const char *applied;
	bool have_state;
	struct docker_state st;
	bool busy;
	enum containers_act busy_kind;
	struct governor_decision dec;
	const char *degraded;       /* a Degraded reason, or NULL */
	char degraded_msg[ERR_MSG_MAX];
	bool running_wanted;
};

static json_t *build_status(struct pass *p, struct container_book *c, json_t *old,
			    const struct view *v)
{
	json_t *mine = json_object(), *conds = json_array();
	json_t *oldc = json_object_get(old, "conditions");
	const char *now = rctx_now(p->c);
	char until[TIME_LEN + 1];
	const char *why;
	bool ready, healthy, stale;

	if (!mine || !conds) {
		json_decref(mine);
		json_decref(conds);
		return NULL;
	}
	/* Carry over what this pass does not recompute. */
	if (json_object_get(old, "lastAction"))
		json_object_set(mine, "lastAction", json_object_get(old, "lastAction"));
	if (json_object_get(old, "appliedAt"))
		json_object_set(mine, "appliedAt", json_object_get(old, "appliedAt"));
	if (json_object_get(old, "manualRestartHandled"))
		json_object_set(mine, "manualRestartHandled",
				json_object_get(old, "manualRestartHandled"));
	json_object_set_new(mine, "actions",
			    json_integer(json_integer_value(json_object_get(old, "actions"))));
	if (v->desired)
		json_object_set_new(mine, "desiredHash", json_string(v->desired));
	if (v->applied && *v->applied)
		json_object_set_new(mine, "appliedHash", json_string(v->applied));
	if (v->have_state)
		json_object_set_new(mine, "container",
				    json_pack("{s:b, s:s, s:s, s:s}",
					      "running", v->st.running,
					      "status", v->st.status,
					      "startedAt", v->st.started_at,
					      "health", v->st.health));
	else if (json_object_get(old, "container") && !v->degraded)
		json_object_set(mine, "container", json_object_get(old, "container"));
	if (governor_breaker_open(&c->gov, p->now)) {
		mono_to_time(c->gov.open_until_ms, until);
		json_object_set_new(mine, "breaker", json_pack("{s:b, s:s}", "open", 1,
							       "until", until));
	} else {
		json_object_set_new(mine, "breaker", json_pack("{s:b}", "open", 0));
	}
	json_object_set_new(mine, "budget", json_pack("{s:i, s:i, s:I}",
			    "left", governor_budget_left(&c->gov, &p->o->gov, p->now),
			    "max", p->o->gov.budget,
			    "windowS", (json_int_t)(p->o->gov.window_ms / 1000)));

	healthy = v->have_state && v->st.running &&
		  (!v->st.has_health || !strcmp(v->st.health, "healthy"));
	stale = v->desired && v->applied && strcmp(v->desired, v->applied);
	ready = !v->degraded && !v->busy && v->have_state &&
		(v->running_wanted ? healthy && !stale : !v->st.running || !stale);
	if (ready)
		why = v->st.running ? "Running" : "Stopped";
	else if (v->degraded)
		why = v->degraded;
	else if (v->busy)
		why = "ActionInProgress";
	else if (stale)
		why = "FilesChanged";
	else if (v->have_state && !v->st.running)
		why = "NotRunning";
	else
		why = "Unhealthy";
	add_cond(conds, oldc, "Ready", ready, why,
		 ready ? (v->st.running ? "running with the declared files"
					: "not running, as declared")
		       : v->degraded ? v->degraded_msg : why, now);
	if (v->busy || v->dec.verdict == GOVERNOR_WAIT || v->dec.verdict == GOVERNOR_START ||
	    v->dec.verdict == GOVERNOR_RESTART) {
		why = v->busy ? (v->busy_kind == CONTAINERS_START ? "Starting" : "Restarting")
			      : v->dec.reason;
		add_cond(conds, oldc, "Reconciling", true, why,
			 !strcmp(why, "QuietPeriod") ? "waiting for the files to settle"
			 : !strcmp(why, "Backoff") ? "retrying after a failed action"
			 : !strcmp(why, "RestartBudgetExhausted") ? "restart budget exhausted; waiting for the cool-down"
			 : !strcmp(why, "Starting") ? "starting the container"
			 : !strcmp(why, "Restarting") ? "restarting the container"
			 : !strcmp(why, "ConfirmingStop") ? "the container stopped; starting it unless the engine does"
			 : why, now);
	} else if (v->degraded && strcmp(v->degraded, "InvalidSpec")) {
		add_cond(conds, oldc, "Reconciling", true, "Retrying",
			 "waiting to see the container again", now);
	} else {
		add_cond(conds, oldc, "Reconciling", false, "Converged", "nothing to do", now);
	}
	if (v->degraded) {
		add_cond(conds, oldc, "Degraded", true, v->degraded, v->degraded_msg, now);
	} else if (governor_breaker_open(&c->gov, p->now)) {
		char msg[200];

		snprintf(msg, sizeof(msg), "more than %d actions in %lld s; automatic restarts paused until %s",
			 p->o->gov.budget, (long long)(p->o->gov.window_ms / 1000), until);
		add_cond(conds, oldc, "Degraded", true, "RestartBudgetExhausted", msg, now);
	} else if (!strcmp(jstr(json_object_get(mine, "lastAction"), "phase"), "Failed")) {
		json_t *la = json_object_get(mine, "lastAction");

		add_cond(conds, oldc, "Degraded", true,
			 *jstr(la, "failReason") ? jstr(la, "failReason") : "ActionFailed",
			 jstr(la, "message"), now);
	} else {
		add_cond(conds, oldc, "Degraded", false, "AsExpected", "", now);
	}
	json_object_set_new(mine, "conditions", conds);    /* stolen */
	return mine;
}

/* Collect a finished action into status (lastAction, appliedHash, ...).
 * Returns true when there was one; *ok says how it went. */
static bool collect(struct pass *p, const char *name, struct container_book *c,
		    json_t *status, bool *ok)
{
	struct containers_action a;
	char now[TIME_LEN + 1];

	if (!containers_collect(p->rt, name, &a))
		return false;
	*ok = a.rc == 0;
	governor_end(&c->gov, &p->o->gov, p->now, *ok);
	snprintf(now, sizeof(now), "%s", rctx_now(p->c));
	json_object_set_new(status, "lastAction",
			    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
				      "action", a.kind == CONTAINERS_START ? "start" : "restart",
				      "reason", a.reason,
				      "phase", *ok ? "Succeeded" : "Failed",
				      "hash", a.hash, "at", a.at, "finishedAt", now,
				      "failReason", a.fail_reason, "message", a.msg));
	if (*ok) {
		json_object_set_new(status, "appliedHash", json_string(a.hash));
		json_object_set_new(status, "appliedAt", json_string(now));
	}
	if (a.manual_id[0])
		json_object_set_new(status, "manualRestartHandled", json_string(a.manual_id));
	return true;
}

/* Launch an action for container name. */
static int launch(struct pass *p, const char *name, struct container_book *c,
		  json_t *status, enum containers_act kind, const char *reason,
		  const char *hash, const char *manual_id, int stop_timeout,
		  int health_timeout)
{
	struct containers_action a;

	memset(&a, 0, sizeof(a));
	a.kind = kind;
	snprintf(a.reason, sizeof(a.reason), "%s", reason);
	snprintf(a.hash, sizeof(a.hash), "%s", hash);
	snprintf(a.manual_id, sizeof(a.manual_id), "%s", manual_id ? manual_id : "");
	snprintf(a.at, sizeof(a.at), "%s", rctx_now(p->c));
	a.stop_timeout = stop_timeout;
	a.health_timeout = health_timeout;
	governor_begin(&c->gov, p->now);
	if (containers_launch(p->rt, name, &a) != 0) {
		governor_end(&c->gov, &p->o->gov, p->now, false);
		return ERR_INTERNAL;
	}
	if (kind == CONTAINERS_START)
		c->starts++;
	else
		c->restarts++;
	json_object_set_new(status, "lastAction",
			    json_pack("{s:s, s:s, s:s, s:s, s:s}",
				      "action", kind == CONTAINERS_START ? "start" : "restart",
				      "reason", reason, "phase", "InProgress",
				      "hash", hash, "at", a.at));
	json_object_set_new(status, "actions",
			    json_integer(json_integer_value(json_object_get(status, "actions")) + 1));
	return 0;
}

static int one_container(struct pass *p, json_t *rec, struct err *e)
{
	json_t *data = json_object_get(rec, "data");
	json_t *old = json_object_get(rec, "status");
	json_t *work = NULL, *mine = NULL;
	const char *name = jstr(rec, "name"), *id = jstr(rec, "id");
	const char *req_id, *handled;
	char desired[CONTAINERS_HASH_LEN + 1], applied[CONTAINERS_HASH_LEN + 1] = "";
	int64_t newest = 0;
	struct governor_input in;
	struct view v;
	struct err he = ERR_INIT;
	struct container_book *c;
	bool ok = false, manual, grace = false;
	int rc = 0, stop_timeout, health_timeout;

	memset(&v, 0, sizeof(v));
	v.running_wanted = json_is_true(json_object_get(data, "running"));
	stop_timeout = (int)json_integer_value(json_object_get(data, "stop_timeout"));
	health_timeout = (int)json_integer_value(json_object_get(data, "health_timeout"));
	c = containers_book(p->rt, name);
	if (!c)
		return err_set(e, ERR_NOMEM, "out of memory");
	/* work: the status as this pass leaves it (old + collected outcome). */
	work = json_is_object(old) ? json_deep_copy(old) : json_object();
	if (!work)
		return err_set(e, ERR_NOMEM, "out of memory");
	collect(p, name, c, work, &ok);
	snprintf(applied, sizeof(applied), "%s", jstr(work, "appliedHash"));
	v.applied = applied;

	if (!docker_name_ok(name)) {
		v.degraded = "InvalidSpec";
		snprintf(v.degraded_msg, sizeof(v.degraded_msg),
			 "'%.64s' is not a container name", name);
		goto report;
	}
	rc = containers_hash_files(p->o->root, json_object_get(data, "files"), desired,
				   &newest, &he);
	if (rc) {
		v.degraded = rc == ERR_IO ? "FilesUnreadable" : "InvalidSpec";
		snprintf(v.degraded_msg, sizeof(v.degraded_msg), "%s", he.msg);
		want_pass(p, p->now + ERROR_RETRY_MS);
		rc = 0;
		goto report;
	}
	v.desired = desired;
	v.busy = containers_busy(p->rt, name, &v.busy_kind);
	if (v.busy) {
		v.dec.verdict = GOVERNOR_WAIT;
		v.dec.reason = "ActionInFlight";
		goto report;
	}
	rc = containers_peek(p->rt, name, &v.st, &he);
	if (rc) {
		if (rc == ERR_NOT_FOUND) {
			v.degraded = "ContainerMissing";
			c->retry_delay = MISSING_RETRY_MS;
		} else if (rc == ERR_UNAVAILABLE) {
			v.degraded = "EngineUnreachable";
			p->unreachable = true;
			snprintf(p->unreachable_msg, sizeof(p->unreachable_msg), "%s", he.msg);
			c->retry_delay = 0;   /* the events thread wakes us */
		} else {
			v.degraded = "EngineError";
			c->retry_delay = c->retry_delay ? c->retry_delay * 2 : 500;
			if (c->retry_delay > ERROR_RETRY_MS * 12)
				c->retry_delay = ERROR_RETRY_MS * 12;
		}
		snprintf(v.degraded_msg, sizeof(v.degraded_msg), "%s", he.msg);
		if (c->retry_delay)
			want_pass(p, p->now + c->retry_delay);
		rc = 0;
		goto report;
	}
	c->retry_delay = 0;
	v.have_state = true;

	/* First sight of this container: adopt it when it started after
	 * its files were last written, otherwise it runs with stale ones. */
	if (!applied[0] && v.st.running && v.st.started_ns >= newest) {
		snprintf(applied, sizeof(applied), "%s", desired);
		json_object_set_new(work, "appliedAt", json_string(rctx_now(p->c)));
	}
	req_id = jstr(json_object_get(work, "restartRequest"), "id");
	handled = jstr(work, "manualRestartHandled");
	manual = *req_id && strcmp(req_id, handled);
	memset(&in, 0, sizeof(in));
	in.desired = desired;
	if (newest > 0)     /* the newest file's mtime on the monotonic clock */
		in.changed_ms = p->now - (realtime_ns() - newest) / 1000000;
	in.stale = strcmp(applied, desired) != 0 && (v.st.running || v.running_wanted);
	in.not_running = v.running_wanted && !v.st.running;
	if (!in.not_running) {
		c->down_since = 0;
	} else if (!c->down_since || v.st.restarting) {
		c->down_since = c->down_since ? c->down_since : p->now;
		in.not_running = false;
		grace = true;
		want_pass(p, p->now + DOWN_GRACE_MS);
	} else if (p->now - c->down_since < DOWN_GRACE_MS) {
		in.not_running = false;
		grace = true;
		want_pass(p, c->down_since + DOWN_GRACE_MS);
	}
	in.manual = manual;
	governor_decide(&c->gov, &p->o->gov, p->now, &in, &v.dec);
	if (grace && v.dec.verdict == GOVERNOR_IDLE) {
		v.dec.verdict = GOVERNOR_WAIT;
		v.dec.reason = "ConfirmingStop";
	}
	if (v.dec.verdict == GOVERNOR_WAIT)
		want_pass(p, v.dec.wake_ms);
	if (v.dec.verdict == GOVERNOR_START || v.dec.verdict == GOVERNOR_RESTART) {
		rc = launch(p, name, c, work,
			    v.dec.verdict == GOVERNOR_START ? CONTAINERS_START
							    : CONTAINERS_RESTART,
			    v.dec.reason, desired, manual ? req_id : NULL,
			    stop_timeout, health_timeout);
		if (rc) {
			v.degraded = "ActionFailed";
			snprintf(v.degraded_msg, sizeof(v.degraded_msg),
				 "cannot start an action thread");
			want_pass(p, p->now + ERROR_RETRY_MS);
			rc = 0;
		} else {
			v.busy = true;
			v.busy_kind = v.dec.verdict == GOVERNOR_START ?
				      CONTAINERS_START : CONTAINERS_RESTART;
		}
	}
report:
	mine = build_status(p, c, work, &v);
	if (!mine) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Only write when something of mine changed (the snapshot's status
	 * is what the store holds unless a request thread wrote since). */
	{
		json_t *cmp = json_is_object(old) ? json_deep_copy(old) : json_object();
		size_t k;
		bool same;

		for (k = 0; cmp && my_keys[k]; k++) {
			json_t *x = json_object_get(mine, my_keys[k]);

			if (x)
				json_object_set(cmp, my_keys[k], x);
			else
				json_object_del(cmp, my_keys[k]);
		}
		same = cmp && json_equal(cmp, old);
		json_decref(cmp);
		if (!same)
			rc = rctx_set_status(p->c, CONTAINERS_COLLECTION, id, my_keys,
					     mine, e);
	}
out:
	json_decref(mine);
	json_decref(work);
	return rc;
}

static int containers_reconcile(struct rctx *c, struct err *e)
{
	struct pass p;
	json_t *recs = NULL, *rec, *actions;
	size_t i;
	int rc = 0, rc1;
	bool busy;

	memset(&p, 0, sizeof(p));
	p.c = c;
	p.rt = rctx_state(c);
	if (!p.rt) {
		json_array_append_new(rctx_warnings(c),
				      json_string("no container runtime in this process: containers are not reconciled"));
		return 0;
	}
	p.o = containers_options(p.rt);
	rc = rctx_records(c, CONTAINERS_COLLECTION, &recs, e);
	if (rc)
		return rc;
	p.now = util_monotonic_ms();
	containers_pass_begin(p.rt);
	actions = json_object();
	json_array_foreach(recs, i, rec) {
		struct err e1 = ERR_INIT;
		struct container_book *b;

		rc1 = one_container(&p, rec, &e1);
		b = containers_book(p.rt, jstr(rec, "name"));
		if (b && actions)
			json_object_set_new(actions, jstr(rec, "name"),
					    json_pack("{s:I, s:I}", "start",
						      (json_int_t)b->starts,
						      "restart",
						      (json_int_t)b->restarts));
		if (rc1) {
			json_array_append_new(rctx_warnings(c),
					      json_sprintf("container '%s': %s",
							   jstr(rec, "name"), e1.msg));
			want_pass(&p, p.now + ERROR_RETRY_MS);
		}
	}
	/* Actions launched since the server started, by container: the
	 * figures /metrics shows (only the declared containers). */
	if (actions)
		rctx_status_set(c, "actionsSinceStart", actions);   /* stolen */
	/* Collect finished actions of containers no longer declared. */
	busy = containers_pass_end(p.rt);
	if (!p.o->wake)
		want_pass(&p, p.now + p.o->poll_ms);
	else if (busy)
		/* An action in flight wakes us when it ends; keep a slow
		 * safety net in case a wake-up is lost. */
		want_pass(&p, p.now + 5000);
	if (p.next)
		rctx_requeue_after(c, p.next > p.now ? p.next - p.now : 0);
	if (p.unreachable)
		rc = err_set(e, ERR_UNAVAILABLE, "%s", p.unreachable_msg);
	return rc;
}

/* The runtime, with the engine's wake-up and the POCKETCTL_RESTART_*
 * settings; the state is the struct containers (engine_state() gives it
 * to the API's restart and logs handlers). */
static int start(const struct reconciler_env *env, void **state,
		 struct err *e)
{
	struct containers_options o;

	containers_options_init(&o);
	o.root = env->root;
	o.docker_host = env->docker_host;
	o.wake = env->wake;
	o.wake_arg = env->wake_arg;
	return containers_new((struct containers **)state, &o, e);
}

static void stop(void *state)
{
	containers_free(state);
}

static const char *const containers_reads[] = {
	CONTAINERS_COLLECTION, RECONCILER_READS_FILES, NULL
};

const struct reconciler rec_containers = {
	.name = CONTAINERS_RECONCILER,
	.description = "managed containers: restart when their files change, start when stopped",
	.reads = containers_reads,
	.start = start,
	.stop = stop,
	.reconcile = containers_reconcile,
};
