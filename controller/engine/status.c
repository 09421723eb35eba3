/*
 * status.c - status and conditions (see engine.h): one reconcile_status
 * record per key, kept in memory (struct rstate) and written only when it
 * differs from what was written last, so an idle engine writes nothing.
 * Nothing in a status changes on a pass that changes nothing: no "last
 * run" timestamps; lastTransitionTime moves only when a condition's status
 * flips; observedRevision is the newest DATA change (status-only changes
 * excluded) the pass had seen.
 *
 * Records read by a reconciler are never written here: their
 * observedGeneration is computed when they are read, from the
 * observedRevision of the reconcilers that read them (observed.h).
 */
#include "engine_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A JSON string that never fails on bad UTF-8 (bytes >= 0x80 become '?'
 * when the text is not valid UTF-8). NULL only on OOM. */
json_t *eng_jstr(const char *s)
{
	json_t *v = json_string(s ? s : "");
	char *c;
	size_t i;

	if (v || !s)
		return v;
	c = strdup(s);
	if (!c)
		return NULL;
	for (i = 0; c[i]; i++)
		if ((unsigned char)c[i] >= 0x80)
			c[i] = '?';
	v = json_string(c);
	free(c);
	return v;
}

/* Wall-clock time ms from now, in the store's timestamp form. */
static void wall_after(int64_t ms, char out[TIME_LEN + 1])
{
	struct timespec ts;
	struct tm tm;
	char date[32];
	int64_t t;
	time_t sec;

	clock_gettime(CLOCK_REALTIME, &ts);
	t = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + ms;
	sec = (time_t)(t / 1000);
	gmtime_r(&sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(out, TIME_LEN + 1, "%.19s.%03uZ", date,
		 (unsigned)(t % 1000));
}

/*
 * Set condition type in conds: status "True"/"False"/"Unknown".
 * lastTransitionTime moves only when the status flips.
 */
void eng_cond_set(json_t *conds, const char *type, const char *status,
		     const char *reason, const char *message, const char *now)
{
	json_t *c = NULL, *v;
	const char *old;
	size_t i;

	json_array_foreach(conds, i, v) {
		old = json_string_value(json_object_get(v, "type"));
		if (old && !strcmp(old, type)) {
			c = v;
			break;
		}
	}
	if (!c) {
		c = json_object();
		if (!c || json_array_append_new(conds, c))
			return;
		json_object_set_new(c, "type", eng_jstr(type));
		json_object_set_new(c, "status", eng_jstr("Unknown"));
		json_object_set_new(c, "reason", eng_jstr(""));
		json_object_set_new(c, "message", eng_jstr(""));
		json_object_set_new(c, "lastTransitionTime", eng_jstr(now));
	}
	old = json_string_value(json_object_get(c, "status"));
	if (!old || strcmp(old, status))
		json_object_set_new(c, "lastTransitionTime", eng_jstr(now));
	json_object_set_new(c, "status", eng_jstr(status));
	json_object_set_new(c, "reason", eng_jstr(reason));
	json_object_set_new(c, "message", eng_jstr(message));
}

/* ---- status ----------------------------------------------------------- */

static json_t *art_json(const struct artifact *a)
{
	char mode[16];

	snprintf(mode, sizeof(mode), "%04o", a->mode);
	return json_pack("{s:o, s:s, s:s, s:o, s:o}",
			 "path", eng_jstr(a->path),
			 "sha256", a->sha,
			 "mode", a->sha[0] ? mode : "",
			 "conditions", json_deep_copy(a->conds),
			 "lastError", eng_jstr(a->error ? a->error : ""));
}

/* The keys of a status record that the engine itself writes. */
static const char *const engine_keys[] = {
	"conditions", "observedRevision", "failures", "lastError",
	"nextRetryTime", "warnings", "artifacts", "events", NULL
};

bool eng_status_key(const char *key)
{
	size_t i;

	for (i = 0; engine_keys[i]; i++)
		if (!strcmp(engine_keys[i], key))
			return true;
	return false;
}

/* The status of rs as stored: fresh copies, never aliasing live state. */
static json_t *build_status(const struct rstate *rs)
{
	json_t *st, *arts;
	size_t i;

	arts = json_array();
	for (i = 0; arts && i < rs->narts; i++)
		if (json_array_append_new(arts, art_json(&rs->arts[i]))) {
			json_decref(arts);
			return NULL;
		}
	st = json_pack("{s:o, s:I, s:i, s:o, s:s, s:o, s:o, s:o}",
		       "conditions", json_deep_copy(rs->conds),
		       "observedRevision", (json_int_t)rs->observed_rev,
		       "failures", rs->failures,
		       "lastError", eng_jstr(rs->last_error ? rs->last_error : ""),
		       "nextRetryTime", rs->next_retry,
		       "warnings", json_deep_copy(rs->warnings),
		       "artifacts", arts,
		       "events", json_deep_copy(rs->events));
	if (st && json_object_update(st, rs->extra)) {
		json_decref(st);
		return NULL;
	}
	return st;
}

/* Take back what a status record remembers: owned files and their hashes,
 * conditions (so a restart is no transition), events. */
static void load_state(struct rstate *rs, json_t *st)
{
	json_t *v, *a;
	struct artifact *art;
	const char *path, *sha, *mode;
	size_t i;

	if (!json_is_object(st))
		return;
	v = json_object_get(st, "conditions");
	if (json_is_array(v)) {
		json_decref(rs->conds);
		rs->conds = json_deep_copy(v);
	}
	v = json_object_get(st, "events");
	if (json_is_array(v)) {
		json_decref(rs->events);
		rs->events = json_deep_copy(v);
	}
	rs->observed_rev = json_integer_value(json_object_get(st,
							    "observedRevision"));
	json_array_foreach(json_object_get(st, "artifacts"), i, a) {
		path = json_string_value(json_object_get(a, "path"));
		sha = json_string_value(json_object_get(a, "sha256"));
		mode = json_string_value(json_object_get(a, "mode"));
		if (!path || !*path || path[0] != '/')
			continue;
		art = eng_art_get(rs, path);
		if (!art)
			return;
		if (sha && strlen(sha) == SHA_HEX - 1)
			memcpy(art->sha, sha, SHA_HEX);
		if (mode)
			art->mode = (unsigned)strtoul(mode, NULL, 8) & 07777;
		v = json_object_get(a, "conditions");
		if (json_is_array(v)) {
			json_decref(art->conds);
			art->conds = json_deep_copy(v);
		}
	}
	json_object_foreach(st, path, v)
		if (!eng_status_key(path))
			json_object_set(rs->extra, path, v);
	/* Nothing changes st afterwards (what rs keeps of it are copies, and
	 * extra's values are replaced, never changed in place), so a
	 * reference does: a copy of a status of 1,000 files was a sixth of
	 * the start-up's instructions. */
	json_decref(rs->written);
	rs->written = json_incref(st);
}

/* Every key of want has an equal value in have. */
static bool same_fields(json_t *want, json_t *have)
{
	const char *k;
	json_t *v;

	json_object_foreach(want, k, v)
		if (!json_equal(v, json_object_get(have, k)))
			return false;
	return true;
}

/* Create (or find) the key's reconcile_status record and load it. */
int eng_ensure_record(struct engine *en, struct rstate *rs, struct err *e)
{
	struct store_txn *t = NULL;
	struct store_put p;
	struct record r;
	json_t *data = NULL, *reads;
	size_t i;
	int rc;

	record_init(&r);
	reads = json_array();
	for (i = 0; rs->r->reads && rs->r->reads[i]; i++)
		json_array_append_new(reads, eng_jstr(rs->r->reads[i]));
	data = json_pack("{s:s, s:o, s:o}", "name", rs->name,
			 "description", eng_jstr(rs->r->description),
			 "reads", reads);
	if (!data) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	/* At start-up the record is almost always there and unchanged: read
	 * it without a write transaction, which would cost a COMMIT and an
	 * fdatasync() per reconciler for nothing. */
	if (!store_get_by_name(en->store, ENGINE_STATUS_COLLECTION, rs->name,
			       &r, NULL) &&
	    same_fields(data, r.data))
		goto found;
	record_release(&r);
	record_init(&r);
	memset(&p, 0, sizeof(p));
	p.collection = ENGINE_STATUS_COLLECTION;
	p.data = data;            /* borrowed by the store */
	p.mode = STORE_UPSERT;
	rc = store_begin(en->store, &t, e);
	if (!rc)
		rc = store_txn_put(t, &p, &r, NULL, e);
	if (!rc) {
		rc = store_commit(t, e);
		t = NULL;
	}
	store_abort(t);
	if (rc) {
		err_prefix(e, "cannot create the status record of '%s': ",
			   rs->name);
		goto out;
	}
found:
	memcpy(rs->id, r.id, sizeof(rs->id));
	load_state(rs, r.status);
out:
	json_decref(data);
	record_release(&r);
	return rc;
}

/*
 * Store rs's status when it differs from what was stored last: at most one
 * write (one revision) per pass, none when nothing changed. Failures are
 * logged: the next pass tries again.
 */
void eng_persist(struct engine *en, struct rstate *rs)
{
	struct store_txn *t = NULL;
	struct err e = ERR_INIT;
	json_t *status = build_status(rs);
	int rc = 0, tries = 0;

	if (!status)
		return;
	while (!rs->written || !json_equal(status, rs->written)) {
		rc = store_begin(en->store, &t, &e);
		if (!rc)
			rc = store_txn_set_status(t, ENGINE_STATUS_COLLECTION,
						  rs->id, status, &e);
		if (rc) {
			store_abort(t);
			if (rc == ERR_NOT_FOUND && tries++ == 0 &&
			    eng_ensure_record(en, rs, &e) == 0) {
				rc = 0;       /* made again: store it there */
				continue;
			}
			break;
		}
		rc = store_commit(t, &e);
		if (rc)
			break;
		json_decref(rs->written);
		rs->written = json_incref(status);
	}
	if (rc)
		eng_log("%s: cannot store status: %s", rs->name, e.msg);
	json_decref(status);
}

static const char *reason_of(int rc)
{
	switch (rc) {
	case ERR_IO: return "WriteFailed";
	case ERR_INVALID: return "InvalidInput";
	case ERR_TOO_LARGE: return "TooLarge";
	case ERR_DB: return "StoreError";
	case ERR_NOMEM: return "OutOfMemory";
	default: return "ReconcileFailed";
	}
}

/* Conditions of rs and its artifacts after a pass that returned rc. */
void eng_set_conditions(struct rstate *rs, int rc, const struct err *e,
			   int64_t delay, json_t *warnings, const char *now)
{
	struct artifact *a;
	char msg[ERR_MSG_MAX + 64];
	size_t i, nw = json_array_size(warnings);

	if (!rc) {
		rs->failures = 0;
		free(rs->last_error);
		rs->last_error = NULL;
		rs->next_retry[0] = '\0';
		eng_cond_set(rs->conds, "Ready", "True",
			 nw ? "ReconciledWithWarnings" : "Reconciled",
			 nw ? "files match the store; see warnings for records that were skipped or overridden" :
			      "files match the store", now);
		eng_cond_set(rs->conds, "Reconciling", "False", "Reconciled", "",
			 now);
		if (nw) {
			snprintf(msg, sizeof(msg), "%s%s",
				 json_string_value(json_array_get(warnings, 0)),
				 nw > 1 ? " (and more, see warnings)" : "");
			eng_cond_set(rs->conds, "Degraded", "True", "RenderWarnings",
				 msg, now);
		} else {
			eng_cond_set(rs->conds, "Degraded", "False", "Reconciled",
				 "", now);
		}
	} else {
		rs->failures++;
		free(rs->last_error);
		rs->last_error = strdup(e->msg);
		wall_after(delay, rs->next_retry);
		eng_cond_set(rs->conds, "Ready", "False", reason_of(rc), e->msg,
			 now);
		snprintf(msg, sizeof(msg), "attempt %d failed; retrying in %lld ms",
			 rs->failures, (long long)delay);
		eng_cond_set(rs->conds, "Reconciling", "True", "RetryScheduled", msg,
			 now);
		eng_cond_set(rs->conds, "Degraded", "True", reason_of(rc), e->msg,
			 now);
	}
	json_decref(rs->warnings);
	rs->warnings = json_deep_copy(warnings);
	for (i = 0; i < rs->narts; i++) {
		a = &rs->arts[i];
		if (a->error) {
			eng_cond_set(a->conds, "Ready", "False", a->reason, a->error,
				 now);
			eng_cond_set(a->conds, "Degraded", "True", a->reason,
				 a->error, now);
		} else {
			eng_cond_set(a->conds, "Ready", "True", "UpToDate",
				 "matches the store", now);
			eng_cond_set(a->conds, "Degraded", "False", "UpToDate", "",
				 now);
		}
	}
}

void eng_trim_events(json_t *events)
{
	while (json_array_size(events) > ENGINE_EVENTS_KEPT)
		json_array_remove(events, 0);
}

static json_t *rstate_json(struct engine *en, const struct rstate *rs)
{
	struct workq_info qi;
	json_t *o = build_status(rs), *reads = json_array();
	const char *state = "idle";
	size_t i;

	if (!o || !reads) {
		json_decref(o);
		json_decref(reads);
		return NULL;
	}
	for (i = 0; rs->r->reads && rs->r->reads[i]; i++)
		json_array_append_new(reads, eng_jstr(rs->r->reads[i]));
	workq_info(en->q, rs->name, &qi);
	if (qi.processing)
		state = "processing";
	else if (qi.ready)
		state = "ready";
	else if (qi.delayed)
		state = "delayed";
	json_object_set_new(o, "name", eng_jstr(rs->name));
	json_object_set_new(o, "description", eng_jstr(rs->r->description));
	json_object_set_new(o, "reads", reads);
	json_object_set_new(o, "queue", json_pack("{s:s, s:i}", "state", state,
						  "failures", qi.failures));
	json_object_set_new(o, "passes", json_integer((json_int_t)rs->passes));
	json_object_set_new(o, "writes", json_integer((json_int_t)rs->writes));
	json_object_set_new(o, "lastPassMs", json_integer(rs->last_ms));
	/* counters since the server started, for /metrics */
	json_object_set_new(o, "errors", json_integer((json_int_t)rs->errors));
	json_object_set_new(o, "passMsTotal", json_integer(rs->total_ms));
	json_object_set_new(o, "driftCorrections",
			    json_integer((json_int_t)rs->drift));
	return o;
}

/* Publish the status snapshot engine_status() serves. */
void eng_publish(struct engine *en)
{
	json_t *snap = json_object(), *list = json_array(), *paths = json_object();
	json_t *old;
	size_t i;

	if (!snap || !list || !paths)
		goto fail;
	for (i = 0; i < en->nrs; i++)
		if (!(en->rs[i].r->flags & RECONCILER_SOURCE) &&
		    json_array_append_new(list, rstate_json(en, &en->rs[i])))
			goto fail;
	for (i = 0; i < en->paths.n; i++)
		json_object_set_new(paths, en->paths.key[i],
				    en->paths.p[i] ? eng_jstr(en->paths.p[i]) :
						     json_null());
	json_object_set_new(snap, "root", eng_jstr(en->root));
	json_object_set_new(snap, "pathsConfig",
			    en->paths.config ? eng_jstr(en->paths.config) :
					       json_null());
	json_object_set_new(snap, "paths", paths);
	paths = NULL;
	if (en->paths_error)
		json_object_set_new(snap, "pathsError",
				    eng_jstr(en->paths_error));
	json_object_set_new(snap, "observedRevision",
			    json_integer(en->last_rev));
	json_object_set_new(snap, "reconcilers", list);
	list = NULL;
	/* Sources beside the list, under their names ("manifests"). */
	for (i = 0; i < en->nrs; i++)
		if (en->rs[i].r->flags & RECONCILER_SOURCE)
			json_object_set_new(snap, en->rs[i].name,
					    rstate_json(en, &en->rs[i]));
	pthread_mutex_lock(&en->slock);
	old = en->snap;
	en->snap = snap;
	pthread_mutex_unlock(&en->slock);
	json_decref(old);
	return;
fail:
	json_decref(snap);
	json_decref(list);
	json_decref(paths);
}

int engine_status(struct engine *en, json_t **out, struct err *e)
{
	json_t *s;

	pthread_mutex_lock(&en->slock);
	s = en->snap ? json_deep_copy(en->snap) : json_object();
	pthread_mutex_unlock(&en->slock);
	if (!s)
		return err_set(e, ERR_NOMEM, "out of memory");
	json_object_set_new(s, "head", json_integer(store_head(en->store)));
	json_object_set_new(s, "engine", json_pack(
		"{s:b, s:I, s:I, s:I, s:I, s:I}",
		"running", atomic_load(&en->started) && !atomic_load(&en->stop),
		"fullPassRequested", (json_int_t)atomic_load(&en->full_req),
		"fullPassCompleted", (json_int_t)atomic_load(&en->full_done),
		"wakeups", (json_int_t)atomic_load(&en->wakeups),
		"passes", (json_int_t)atomic_load(&en->passes),
		"resyncIntervalMs", (json_int_t)en->resync_ms));
	*out = s;
	return 0;
}

int engine_observed(struct engine *en, struct observed *o, struct err *e)
{
	const char *reads[65];
	json_t *list, *r, *v;
	size_t i, k, n;
	int rc = 0;

	pthread_mutex_lock(&en->slock);
	list = json_object_get(en->snap, "reconcilers");
	json_array_foreach(list, i, r) {
		n = 0;
		json_array_foreach(json_object_get(r, "reads"), k, v)
			if (json_is_string(v) && n < 64)
				reads[n++] = json_string_value(v);
		reads[n] = NULL;
		rc = observed_add(o, reads, json_integer_value(json_object_get(
			r, "observedRevision")), e);
		if (rc)
			break;
	}
	pthread_mutex_unlock(&en->slock);
	return rc;
}
