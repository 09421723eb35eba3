/*
 * engine.c - the reconcile engine (see engine.h): the poll loop and its
 * thread, the triggers (change log, timers, full-pass requests), the work
 * queue's keys, the reconcilers' lifecycle (start/stop) and the public
 * API. One pass is rctx.c, status status.c, inotify and git watch.c
 * (engine_int.h).
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


#define CHANGES_BATCH 512        /* change-log rows read per query */

static _Thread_local bool on_engine_thread;

void eng_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_INFO, "engine", fmt, ap);
	va_end(ap);
}

void eng_log_at(enum log_level lv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lv, "engine", fmt, ap);
	va_end(ap);
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

static struct rstate *state_of(struct engine *en, const char *key)
{
	size_t i;

	for (i = 0; i < en->nrs; i++)
		if (!strcmp(en->rs[i].name, key))
			return &en->rs[i];
	return NULL;
}

static bool is_source(const struct rstate *rs)
{
	return rs->r->flags & RECONCILER_SOURCE;
}

void eng_enqueue_all(struct engine *en, bool sources)
{
	int64_t now = util_monotonic_ms();
	size_t i;

	/* The sources first: what they write is what the others render. */
	for (i = 0; sources && i < en->nrs; i++)
		if (is_source(&en->rs[i]))
			workq_add(en->q, en->rs[i].name, now);
	for (i = 0; i < en->nrs; i++)
		if (!is_source(&en->rs[i]))
			workq_add(en->q, en->rs[i].name, now);
}

void eng_debounce(struct engine *en, const char *name)
{
	workq_add_after(en->q, name, util_monotonic_ms() + en->debounce_ms);
}

void eng_debounce_sources(struct engine *en)
{
	size_t i;

	for (i = 0; i < en->nrs; i++)
		if (is_source(&en->rs[i]))
			eng_debounce(en, en->rs[i].name);
}

/* ---- the change log ---------------------------------------------------- */

struct changes_walk {
	struct engine *en;
	int n;
};

/*
 * Does change c (of a collection rs reads) wake rs? Yes, unless its last
 * good pass read that collection only by id (rs->deps) and c is of
 * another record: a prompt no agent names changes no rendered byte. The
 * change that makes such a record matter (an agent naming it) is of a
 * collection the reconciler lists, and wakes it.
 */
static bool change_matters(const struct rstate *rs,
			   const struct store_change *c)
{
	json_t *ids = json_object_get(rs->deps, c->collection);

	return !ids || json_object_get(ids, c->id) != NULL;
}

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
		if (!change_matters(&en->rs[i], c))
			continue;
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
		eng_log_at(LOG_ERROR, "cannot read the change log: %s", e.msg);
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

static void reload_paths(struct engine *en);

/* One round: reloads and full-pass requests, the resync timer, then every
 * ready key. */
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
	if (atomic_load(&en->reload_req) > en->reload_seen) {
		en->reload_seen = atomic_load(&en->reload_req);
		reload_paths(en);
	}
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
		else
			eng_run_pass(en, rs);
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
	size_t i;

	on_engine_thread = true;
	pthread_setname_np(pthread_self(), "pctl-engine");
	for (i = 0; i < en->nrs; i++)
		eng_watch_artifacts(en, &en->rs[i]);
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
	json_decref(rs->deps);
	free(rs->last_error);
	free(rs->git_dir);
}

/* env->wake of a reconciler: a flag step() reads, and a kick. */
static void wake_rstate(void *arg)
{
	struct rstate *rs = arg;

	atomic_store(&rs->wanted, true);
	engine_kick(rs->en);
}

static int rstate_init(struct engine *en, struct rstate *rs,
		       const struct reconciler *r, struct err *e)
{
	memset(rs, 0, sizeof(*rs));
	rs->r = r;
	rs->name = r->name;
	rs->en = en;
	rs->conds = json_array();
	rs->events = json_array();
	rs->warnings = json_array();
	rs->extra = json_object();
	if (!rs->conds || !rs->events || !rs->warnings || !rs->extra)
		return err_set(e, ERR_NOMEM, "out of memory");
	rs->env.root = en->root;
	rs->env.data_dir = en->data_dir;
	rs->env.docker_host = en->docker_host;
	rs->env.manifests_dir = en->manifests_dir;
	rs->env.watch_manifests = en->watch_manifests;
	rs->env.backup_every_ms = en->backup_every_ms;
	rs->env.backup_keep = en->backup_keep;
	rs->env.cron_grace_ms = en->cron_grace_ms;
	rs->env.manifests_applyset = en->manifests_applyset;
	rs->env.push = en->push;
	rs->env.poco = en->poco;
	rs->env.wake = wake_rstate;
	rs->env.wake_arg = rs;
	return 0;
}

/* Start rs's reconciler. Returns 0, RECONCILER_OFF or an error. */
static int rstate_start(struct rstate *rs, struct err *e)
{
	int rc;

	if (!rs->r->start)
		return 0;
	rc = rs->r->start(&rs->env, &rs->state, e);
	if (rc < 0) {
		if (!e || !e->msg[0])
			err_set(e, rc, "cannot start reconciler '%s'", rs->name);
		else
			err_prefix(e, "reconciler '%s': ", rs->name);
		return rc;
	}
	rs->live = rc == 0;
	return rc;
}

/* Is r one of the n of regs? */
static bool listed(const struct reconciler *const *regs, size_t n,
		   const struct reconciler *r)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (regs[i] == r)
			return true;
	return false;
}

/*
 * The paths of the registry, then of any reconciler of en->regs that is
 * not in it (the key list is the registry's even when a test runs a
 * few), into *out, from en->paths_config or else the file found now.
 */
static int load_paths(struct engine *en, struct paths *out, struct err *e)
{
	const struct reconciler **all;
	char *cfg = NULL;
	size_t i, k = 0;
	int rc;

	all = calloc(nreconcilers + en->nregs + 1, sizeof(*all));
	if (!all)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (i = 0; i < nreconcilers; i++)
		all[k++] = reconcilers[i];
	for (i = 0; i < en->nregs; i++)
		if (en->regs[i] &&
		    !listed(reconcilers, nreconcilers, en->regs[i]))
			all[k++] = en->regs[i];
	if (!en->paths_config && en->data_dir)
		cfg = paths_default_config(en->data_dir);
	rc = paths_load(out, en->root,
			en->paths_config ? en->paths_config : cfg,
			(const struct reconciler *const *)all, k, e);
	free(cfg);
	free(all);
	return rc;
}

/*
 * engine_reload() on the engine thread: a good configuration replaces the
 * paths (the old ones are kept, so that the files rendered there are
 * removed by the next passes); a bad one is logged and kept as the error
 * every reconciler's status shows (rctx.c), and nothing moves.
 */
static void reload_paths(struct engine *en)
{
	struct paths next;
	struct err e = ERR_INIT;

	memset(&next, 0, sizeof(next));
	free(en->paths_error);
	en->paths_error = NULL;
	if (load_paths(en, &next, &e)) {
		eng_log_at(LOG_ERROR, "paths: reload refused, the current paths stay: %s",
			e.msg);
		en->paths_error = strdup(e.msg[0] ? e.msg : "paths: reload failed");
		return;
	}
	paths_release(&en->old_paths);
	en->old_paths = en->paths;
	en->paths = next;
	eng_log("paths: reloaded (%s)",
		next.config ? next.config : "no config file: the defaults");
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

/* *dst = a copy of src (NULL stays NULL). Returns -1 on OOM. */
static int dup_opt(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return src && !*dst ? -1 : 0;
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
	struct rstate *rs;
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
	if (!en->root || dup_opt(&en->data_dir, o->data_dir) ||
	    dup_opt(&en->docker_host, o->docker_host) ||
	    dup_opt(&en->manifests_dir, o->manifests_dir) ||
	    dup_opt(&en->manifests_applyset, o->manifests_applyset) ||
	    dup_opt(&en->paths_config, o->paths_config)) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	en->watch_manifests = o->watch_manifests;
	en->backup_every_ms = o->backup_every_ms;
	en->backup_keep = o->backup_keep;
	en->cron_grace_ms = o->cron_grace_ms;
	en->push = o->push;
	en->poco = o->poco;
	en->regs = regs;
	en->nregs = n;
	rc = load_paths(en, &en->paths, e);
	if (rc)
		goto out;
	memset(&wo, 0, sizeof(wo));
	wo.backoff_min_ms = o->backoff_min_ms;
	wo.backoff_max_ms = o->backoff_max_ms;
	wo.jitter_pct = 10;
	rc = workq_new(&en->q, &wo, e);
	if (rc)
		goto out;
	/* Before any start(): a reconciler's threads may wake it at once. */
	en->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	en->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (en->efd < 0 || en->tfd < 0) {
		rc = err_set(e, ERR_IO, "engine: cannot create its descriptors: %s",
			     strerror(errno));
		goto out;
	}
	en->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (en->ifd < 0)
		eng_log_at(LOG_WARN, "inotify unavailable (%s): drift is corrected only by the periodic resync",
			    strerror(errno));
	en->rs = calloc(n ? n : 1, sizeof(*en->rs));
	if (!en->rs) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!regs[i] || !key_ok(regs[i]->name) || !regs[i]->reconcile) {
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
		rs = &en->rs[en->nrs];
		rc = rstate_init(en, rs, regs[i], e);
		en->nrs++;
		if (!rc)
			rc = rstate_start(rs, e);
		if (rc == RECONCILER_OFF) {
			/* Not used with these options: as if not listed. */
			rstate_release(rs);
			en->nrs--;
			rc = 0;
		}
		if (rc)
			goto out;
	}
	for (i = 0; !rc && i < en->nrs; i++)
		rc = eng_ensure_record(en, &en->rs[i], e);
	if (rc)
		goto out;
	en->last_rev = store_head(en->store);
	for (i = 0; i < en->nrs; i++)
		en->rs[i].data_rev = en->last_rev;
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
	/* The lifecycle's end, in reverse order; a reconciler's threads may
	 * still wake the engine (the eventfd is open) while they end. */
	for (i = en->nrs; i-- > 0;)
		if (en->rs[i].live && en->rs[i].r->stop) {
			en->rs[i].r->stop(en->rs[i].state);
			en->rs[i].live = false;
		}
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
	workq_free(en->q);
	paths_release(&en->paths);
	paths_release(&en->old_paths);
	free(en->paths_config);
	free(en->paths_error);
	json_decref(en->snap);
	pthread_mutex_destroy(&en->slock);
	free(en->root);
	free(en->data_dir);
	free(en->docker_host);
	free(en->manifests_dir);
	free(en->manifests_applyset);
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

uint64_t engine_reload(struct engine *en)
{
	if (!en)
		return 0;
	atomic_fetch_add(&en->reload_req, 1);
	return engine_request_full(en);   /* kicks */
}

void *engine_state(struct engine *en, const char *name)
{
	size_t i;

	for (i = 0; en && name && i < en->nrs; i++)
		if (!strcmp(en->rs[i].name, name))
			return en->rs[i].state;
	return NULL;
}

size_t engine_secret_paths(struct engine *en, const char **out, size_t max)
{
	const char *const *k;
	const char *p;
	size_t i, n = 0;

	for (i = 0; en && i < nreconcilers; i++)
		for (k = reconcilers[i]->secret_keys; k && *k; k++) {
			p = paths_get(&en->paths, *k);
			if (!p)
				continue;
			if (n < max)
				out[n] = p;
			n++;
		}
	return n;
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

uint64_t engine_wakeups(struct engine *en)
{
	return en ? atomic_load(&en->wakeups) : 0;
}
