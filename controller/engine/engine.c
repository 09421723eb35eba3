/*
 * engine.c - the reconcile engine (see engine.h): the poll loop and its
 * thread, the triggers (change log, timers, full-pass requests), the work
 * queue's keys, the --watch manifests re-apply and the public API. One pass
 * is rctx.c, status status.c, inotify and git watch.c (engine_int.h).
 */
#include "engine_int.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "manifest.h"

#define CHANGES_BATCH 512        /* change-log rows read per query */

static _Thread_local bool on_engine_thread;

void eng_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "pocketctl: engine: %s\n", line);
}

bool eng_reads_has(const struct reconciler *r, const char *coll)
{
	size_t i;

	if (!r || !r->reads)
		return false;
	for (i = 0; r->reads[i]; i++)
		if (!strcmp(r->reads[i], coll))
			return true;
	return false;
}

static void run_manifests(struct engine *en, struct rstate *rs)
{
	const char *paths[1] = { en->manifests_dir };
	struct manifest_set set = { NULL, 0 };
	struct apply_opts ao;
	struct err e = ERR_INIT;
	json_t *result = NULL, *warn = json_array();
	char rev[64], now[TIME_LEN + 1], msg[512];
	enum workq_outcome out;
	bool dirty = false, invalid = false;
	int64_t delay;
	int rc;

	util_now(now);
	eng_git_state(en->manifests_dir, rev, &dirty);
	rc = manifest_load_paths(en->schema, paths, 1, &set, &e);
	if (rc) {
		invalid = rc == ERR_INVALID || rc == ERR_TOO_LARGE;
	} else {
		memset(&ao, 0, sizeof(ao));
		rc = apply_run(en->store, &set, &ao, &result, &e);
		if (rc)
			invalid = rc == ERR_INVALID || rc == ERR_CONFLICT ||
				  rc == ERR_NOT_FOUND || rc == ERR_TOO_LARGE;
	}
	out = rc && !invalid ? WORKQ_FAILED : WORKQ_OK;
	delay = workq_done(en->q, rs->name, out, 0, util_monotonic_ms());
	rs->passes++;
	atomic_fetch_add(&en->passes, 1);
	json_object_set_new(rs->extra, "directory", eng_jstr(en->manifests_dir));
	json_object_set_new(rs->extra, "git", json_boolean(rev[0] != '\0'));
	json_object_set_new(rs->extra, "lastAttemptedRevision", eng_jstr(rev));
	if (!rc) {
		json_object_set_new(rs->extra, "lastAppliedRevision", eng_jstr(rev));
		json_object_set_new(rs->extra, "dirty", json_boolean(dirty));
		json_object_set_new(rs->extra, "lastApply", json_pack(
			"{s:O, s:O, s:O}",
			"created", json_object_get(result, "created"),
			"configured", json_object_get(result, "configured"),
			"unchanged", json_object_get(result, "unchanged")));
		rs->observed_rev = json_integer_value(json_object_get(result,
								    "revision"));
		if (json_integer_value(json_object_get(result, "created")) ||
		    json_integer_value(json_object_get(result, "configured")))
			eng_log("manifests: applied '%s'%s%s: %lld created, %lld configured",
				    en->manifests_dir, rev[0] ? " at " : "",
				    rev,
				    (long long)json_integer_value(json_object_get(result, "created")),
				    (long long)json_integer_value(json_object_get(result, "configured")));
		eng_set_conditions(rs, 0, &e, 0, warn, now);
		snprintf(msg, sizeof(msg), "applied '%s'%s%.12s%s",
			 en->manifests_dir, rev[0] ? " at " : "", rev,
			 rev[0] && dirty ? " (work tree dirty)" : "");
		eng_cond_set(rs->conds, "Ready", "True", "Applied", msg, now);
	} else {
		eng_log("manifests: %s", e.msg);
		eng_set_conditions(rs, rc, &e, delay, warn, now);
		if (invalid) {
			eng_cond_set(rs->conds, "Ready", "False", "InvalidManifests",
				 e.msg, now);
			eng_cond_set(rs->conds, "Degraded", "True",
				 "InvalidManifests", e.msg, now);
			eng_cond_set(rs->conds, "Reconciling", "False",
				 "WaitingForChange",
				 "nothing applied; waiting for the files to change",
				 now);
			rs->next_retry[0] = '\0';
		}
	}
	eng_persist(en, rs, NULL);
	eng_watch_tree(en, en->manifests_dir, 0);
	json_decref(result);
	json_decref(warn);
	manifest_set_release(&set);
}

static struct rstate *state_of(struct engine *en, const char *key)
{
	size_t i;

	if (en->mrs && !strcmp(key, en->mrs->name))
		return en->mrs;
	for (i = 0; i < en->nrs; i++)
		if (!strcmp(en->rs[i].name, key))
			return &en->rs[i];
	return NULL;
}

void eng_enqueue_all(struct engine *en, bool manifests)
{
	int64_t now = util_monotonic_ms();
	size_t i;

	if (manifests && en->mrs)
		workq_add(en->q, en->mrs->name, now);
	for (i = 0; i < en->nrs; i++)
		workq_add(en->q, en->rs[i].name, now);
}

/* ---- the change log ---------------------------------------------------- */

struct changes_walk {
	struct engine *en;
	int n;
};

static int on_change(const struct store_change *c, void *arg)
{
	struct changes_walk *w = arg;
	struct engine *en = w->en;
	size_t i;

	w->n++;
	en->last_rev = c->revision;
	if (c->status_only)
		return 0;
	for (i = 0; i < en->nrs; i++) {
		if (!eng_reads_has(en->rs[i].r, c->collection))
			continue;
		en->rs[i].data_rev = c->revision;
		workq_add(en->q, en->rs[i].name, util_monotonic_ms());
	}
	return 0;
}

/* Enqueue the reconcilers of every data change after last_rev. */
static void read_changes(struct engine *en)
{
	struct changes_walk w = { en, 0 };
	struct err e = ERR_INIT;
	int64_t oldest = store_changelog_oldest(en->store);
	size_t i;
	int rc;

	if (oldest > en->last_rev + 1) {
		/* Rows we never saw were trimmed: assume everything changed. */
		eng_log("change log trimmed past revision %lld: full pass",
			    (long long)en->last_rev);
		eng_enqueue_all(en, false);
		for (i = 0; i < en->nrs; i++)
			en->rs[i].data_rev = oldest - 1;
		en->last_rev = oldest - 1;
	}
	do {
		w.n = 0;
		rc = store_change_keys(en->store, en->last_rev,
				       CHANGES_BATCH, on_change, &w, &e);
	} while (!rc && w.n == CHANGES_BATCH);
	if (rc)
		eng_log("cannot read the change log: %s", e.msg);
}

static int64_t jittered(struct engine *en, int64_t ms)
{
	/* +-10%, so that several servers do not resync in lock step. */
	return ms - ms / 10 + (int64_t)(rand_r(&en->rng) % 1000) * (ms / 5) / 1000;
}

static void arm_timer(struct engine *en)
{
	struct itimerspec its;
	int64_t next = workq_next_deadline(en->q);

	if (en->next_resync < next)
		next = en->next_resync;
	memset(&its, 0, sizeof(its));
	if (next != WORKQ_NEVER) {
		if (next < 1)
			next = 1;
		its.it_value.tv_sec = (time_t)(next / 1000);
		its.it_value.tv_nsec = (long)(next % 1000) * 1000000L;
	}
	timerfd_settime(en->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void drain(int fd)
{
	uint64_t v;

	while (fd >= 0 && read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		;
}

/* One round: full-pass requests, the resync timer, then every ready key. */
static void step(struct engine *en)
{
	uint64_t req = atomic_load(&en->full_req), pending = 0;
	int64_t now = util_monotonic_ms();
	const char *key;
	struct rstate *rs;
	bool ran = false;
	size_t i;

	for (i = 0; i < en->nrs; i++)
		if (atomic_exchange(&en->rs[i].wanted, false))
			workq_add(en->q, en->rs[i].name, now);
	if (req > en->full_seen) {
		eng_enqueue_all(en, true);
		en->full_seen = req;
		pending = req;
	}
	if (now >= en->next_resync) {
		eng_enqueue_all(en, false);
		en->next_resync = now + jittered(en, en->resync_ms);
	}
	for (;;) {
		read_changes(en);
		if (atomic_load(&en->stop))
			return;
		if (!workq_get(en->q, util_monotonic_ms(), &key))
			break;
		rs = state_of(en, key);
		if (!rs)
			workq_done(en->q, key, WORKQ_OK, 0, util_monotonic_ms());
		else if (rs->r)
			eng_run_pass(en, rs);
		else
			run_manifests(en, rs);
		ran = true;
	}
	/* Publish first: whoever sees full_done must see this pass's status. */
	if (ran || pending)
		eng_publish(en);
	if (pending)
		atomic_store(&en->full_done, pending);
}

static void *engine_main(void *arg)
{
	struct engine *en = arg;
	struct pollfd fds[3];
	char *refs;
	size_t i;

	on_engine_thread = true;
	pthread_setname_np(pthread_self(), "pctl-engine");
	for (i = 0; i < en->nrs; i++)
		eng_watch_artifacts(en, &en->rs[i]);
	if (en->mrs) {
		eng_watch_tree(en, en->manifests_dir, 0);
		en->git_dir = eng_git_dir_of(en->manifests_dir);
		if (en->git_dir) {
			eng_watch_add(en, en->git_dir, W_GIT_DIR);
			refs = path_join(en->git_dir, "refs/heads");
			if (refs)
				eng_watch_add(en, refs, W_GIT_REFS);
			free(refs);
		}
	}
	en->next_resync = en->resync_ms > 0 ?
		util_monotonic_ms() + jittered(en, en->resync_ms) : WORKQ_NEVER;
	fds[0].fd = en->efd;
	fds[1].fd = en->ifd;
	fds[2].fd = en->tfd;
	for (i = 0; i < 3; i++)
		fds[i].events = POLLIN;
	while (!atomic_load(&en->stop)) {
		drain(en->efd);
		drain(en->tfd);
		eng_read_inotify(en);
		step(en);
		if (atomic_load(&en->stop))
			break;
		arm_timer(en);
		while (poll(fds, 3, -1) < 0 && errno == EINTR)
			;
		atomic_fetch_add(&en->wakeups, 1);
	}
	return NULL;
}

/* ---- public API ------------------------------------------------------------ */

void engine_kick(struct engine *en)
{
	uint64_t one = 1;

	if (en && en->efd >= 0)
		(void)!write(en->efd, &one, sizeof(one));
}

/* The store commit hook: wake the engine, except for its own commits (it
 * reads the change log before it sleeps anyway). */
static void commit_hook(void *arg, int64_t head)
{
	(void)head;
	if (!on_engine_thread)
		engine_kick(arg);
}

static void rstate_release(struct rstate *rs)
{
	size_t i;

	if (!rs)
		return;
	for (i = 0; i < rs->narts; i++)
		eng_art_release(&rs->arts[i]);
	free(rs->arts);
	json_decref(rs->conds);
	json_decref(rs->events);
	json_decref(rs->warnings);
	json_decref(rs->extra);
	json_decref(rs->written);
	free(rs->last_error);
}

static int rstate_init(struct rstate *rs, const struct reconciler *r,
		       const char *name, struct err *e)
{
	memset(rs, 0, sizeof(*rs));
	rs->r = r;
	rs->name = name;
	rs->conds = json_array();
	rs->events = json_array();
	rs->warnings = json_array();
	if (!r)
		rs->extra = json_object();
	if (!rs->conds || !rs->events || !rs->warnings || (!r && !rs->extra))
		return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
}

static bool key_ok(const char *k)
{
	return k && *k && strlen(k) <= 64 &&
	       strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(k);
}

/* An absolute form of dir (cwd + dir when relative, "./" dropped), so
 * status and watches name files unambiguously. */
static char *absolute(const char *dir)
{
	char cwd[4096];

	if (dir[0] == '/')
		return strdup(dir);
	if (!getcwd(cwd, sizeof(cwd)))
		return strdup(dir);
	while (dir[0] == '.' && dir[1] == '/')
		dir += 2;
	if (!strcmp(dir, "."))
		return strdup(cwd);
	return path_join(cwd, dir);
}

/* Milliseconds from the environment: -1 ... one year, or fallback. */
static int64_t env_ms(const char *name, int64_t fallback)
{
	return util_env_int(name, fallback, -1, (int64_t)365 * 86400 * 1000);
}

void engine_options_init(struct engine_options *o)
{
	memset(o, 0, sizeof(*o));
	o->resync_ms = env_ms("POCKETCTL_RESYNC_MS", 0);
	o->backoff_min_ms = env_ms("POCKETCTL_BACKOFF_MIN_MS", 0);
	o->backoff_max_ms = env_ms("POCKETCTL_BACKOFF_MAX_MS", 0);
	o->debounce_ms = env_ms("POCKETCTL_DEBOUNCE_MS", 0);
}

int engine_new(struct engine **out, const struct engine_options *o,
	       struct err *e)
{
	const struct reconciler *const *regs = o->reconcilers ? o->reconcilers :
							        reconcilers;
	size_t n = o->reconcilers ? o->nreconcilers : nreconcilers, i, j;
	struct workq_options wo;
	struct engine *en;
	int rc = 0;

	*out = NULL;
	if (!o->store || !o->schema)
		return err_set(e, ERR_INVALID, "engine: no store or schema");
	if (!schema_find(o->schema, ENGINE_STATUS_COLLECTION))
		return err_set(e, ERR_INVALID,
			       "engine: the schema has no '%s' collection",
			       ENGINE_STATUS_COLLECTION);
	en = calloc(1, sizeof(*en));
	if (!en)
		return err_set(e, ERR_NOMEM, "out of memory");
	en->efd = en->ifd = en->tfd = -1;
	pthread_mutex_init(&en->slock, NULL);
	en->store = o->store;
	en->schema = o->schema;
	en->resync_ms = o->resync_ms == 0 ? ENGINE_RESYNC_MS :
			o->resync_ms < 0 ? 0 : o->resync_ms;
	en->debounce_ms = o->debounce_ms > 0 ? o->debounce_ms :
					       ENGINE_DEBOUNCE_MS;
	en->rng = (unsigned)util_monotonic_ms() ^ (unsigned)getpid();
	en->root = absolute(o->root && *o->root ? o->root : PATHS_DEFAULT_ROOT);
	if (!en->root) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = paths_load(&en->paths, en->root, o->paths_config, e);
	if (rc)
		goto out;
	memset(&wo, 0, sizeof(wo));
	wo.backoff_min_ms = o->backoff_min_ms;
	wo.backoff_max_ms = o->backoff_max_ms;
	wo.jitter_pct = 10;
	rc = workq_new(&en->q, &wo, e);
	if (rc)
		goto out;
	en->rs = calloc(n ? n : 1, sizeof(*en->rs));
	if (!en->rs) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!regs[i] || !key_ok(regs[i]->name) || !regs[i]->reconcile ||
		    !strcmp(regs[i]->name, ENGINE_MANIFESTS_KEY)) {
			rc = err_set(e, ERR_INVALID,
				     "engine: reconciler %zu has a bad name or no reconcile function",
				     i);
			goto out;
		}
		for (j = 0; j < i; j++)
			if (!strcmp(regs[i]->name, regs[j]->name)) {
				rc = err_set(e, ERR_INVALID,
					     "engine: two reconcilers are named '%s'",
					     regs[i]->name);
				goto out;
			}
		rc = rstate_init(&en->rs[i], regs[i], regs[i]->name, e);
		en->nrs = i + 1;
		if (rc)
			goto out;
	}
	if (o->manifests_dir && *o->manifests_dir && o->watch_manifests) {
		en->manifests_dir = strdup(o->manifests_dir);
		en->mrs = calloc(1, sizeof(*en->mrs));
		if (!en->manifests_dir || !en->mrs) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		rc = rstate_init(en->mrs, NULL, ENGINE_MANIFESTS_KEY, e);
		if (rc)
			goto out;
	}
	for (i = 0; !rc && i < en->nrs; i++)
		rc = eng_ensure_record(en, &en->rs[i], e);
	if (!rc && en->mrs)
		rc = eng_ensure_record(en, en->mrs, e);
	if (rc)
		goto out;
	en->last_rev = store_head(en->store);
	for (i = 0; i < en->nrs; i++)
		en->rs[i].data_rev = en->last_rev;
	en->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	en->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (en->efd < 0 || en->tfd < 0) {
		rc = err_set(e, ERR_IO, "engine: cannot create its descriptors: %s",
			     strerror(errno));
		goto out;
	}
	en->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (en->ifd < 0)
		eng_log("inotify unavailable (%s): drift is corrected only by the periodic resync",
			    strerror(errno));
	rc = store_add_commit_hook(en->store, commit_hook, en, e);
	if (rc)
		goto out;
	en->hooked = true;
	eng_publish(en);
out:
	if (rc)
		engine_free(en);
	else
		*out = en;
	return rc;
}

int engine_start(struct engine *en, struct err *e)
{
	sigset_t all, old;
	int rc;

	if (en->started)
		return 0;
	atomic_store(&en->stop, 0);
	atomic_fetch_add(&en->full_req, 1);   /* the start-up full pass */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&en->thread, NULL, engine_main, en);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return err_set(e, ERR_INTERNAL, "cannot start the engine thread: %s",
			       strerror(rc));
	en->started = true;
	return 0;
}

void engine_stop(struct engine *en)
{
	if (!en || !en->started)
		return;
	atomic_store(&en->stop, 1);
	engine_kick(en);
	pthread_join(en->thread, NULL);
	en->started = false;
}

void engine_free(struct engine *en)
{
	size_t i;

	if (!en)
		return;
	engine_stop(en);
	if (en->hooked)
		store_remove_commit_hook(en->store, commit_hook, en);
	if (en->efd >= 0)
		close(en->efd);
	if (en->ifd >= 0)
		close(en->ifd);
	if (en->tfd >= 0)
		close(en->tfd);
	for (i = 0; i < en->nw; i++)
		free(en->w[i].dir);
	free(en->w);
	for (i = 0; i < en->nrs; i++)
		rstate_release(&en->rs[i]);
	free(en->rs);
	rstate_release(en->mrs);
	free(en->mrs);
	workq_free(en->q);
	paths_release(&en->paths);
	json_decref(en->snap);
	pthread_mutex_destroy(&en->slock);
	free(en->root);
	free(en->manifests_dir);
	free(en->git_dir);
	free(en);
}

void engine_enqueue(struct engine *en, const char *name)
{
	size_t i;

	if (!en || !name)
		return;
	for (i = 0; i < en->nrs; i++) {
		if (strcmp(en->rs[i].name, name))
			continue;
		atomic_store(&en->rs[i].wanted, true);
		engine_kick(en);
		return;
	}
}

uint64_t engine_request_full(struct engine *en)
{
	uint64_t n = atomic_fetch_add(&en->full_req, 1) + 1;

	engine_kick(en);
	return n;
}

uint64_t engine_full_done(struct engine *en)
{
	return atomic_load(&en->full_done);
}
