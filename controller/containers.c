/*
 * containers.c - the container runtime (see containers.h): the engine
 * clients, the action threads (start or restart, then wait until the
 * container runs and is healthy), the /events thread, the managed-name
 * check of the request-side calls, and the desired hash of a container's
 * files. The reconciler's pass (reconcilers/rec_containers.c) never
 * blocks on an action: it hands a start or restart to a thread of its
 * own, which asks for another pass when it ends; that pass collects the
 * outcome. So a 10 s stop timeout never holds up the file reconcilers,
 * and each container has at most one action in flight.
 */
#include "containers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "store/store.h"

#define INSPECT_TIMEOUT_MS 3000L     /* a pass never waits longer per call */
#define EVENTS_BACKOFF_MIN_MS 250
#define EVENTS_BACKOFF_MAX_MS 5000
#define HASH_DEPTH_MAX 16
#define HASH_PATH_MAX 4096
#define EV_STOP 1                    /* idle/event callback: end the stream */

/* What the runtime knows about one managed container, by name. */
struct ctr {
	struct ctr *next;
	struct containers *rt;
	char name[DOCKER_NAME_MAX + 1];
	bool seen;                  /* named by the current pass */
	struct container_book book; /* the pass's, engine thread only */
	bool busy;                  /* an action thread exists, not joined */
	bool done;                  /* its outcome is in act (under mu) */
	pthread_t th;
	struct containers_action act;  /* parameters fixed while busy */
};

struct containers {
	struct containers_options o;
	char *root;
	char *host;
	struct docker *d;           /* actions, waits, logs, events */
	struct docker *dq;          /* the pass's inspect: a short timeout */
	pthread_mutex_t mu;         /* everything below */
	pthread_cond_t cv;          /* CLOCK_MONOTONIC: names changed, stop */
	struct ctr *ctrs;
	char **names;               /* followed by the events thread */
	size_t nnames;
	uint64_t names_gen;
	bool engine_down;
	int64_t ev_since_ns;
	atomic_bool stopping;
	pthread_t ev_th;
	bool ev_started;
};


static int64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void wake(struct containers *rt)
{
	if (rt->o.wake)
		rt->o.wake(rt->o.wake_arg);
}

/* ---- options, new, free ------------------------------------------------ */

void containers_options_init(struct containers_options *o)
{
	struct governor_config *g = &o->gov;

	memset(o, 0, sizeof(*o));
	governor_config_default(g);
	g->quiet_ms = util_env_int("POCKETCTL_RESTART_QUIET_MS", g->quiet_ms, 0, 3600000);
	g->max_delay_ms = util_env_int("POCKETCTL_RESTART_MAX_DELAY_MS",
				  g->max_delay_ms, 0, 86400000);
	g->budget = (int)util_env_int("POCKETCTL_RESTART_BUDGET", g->budget, 1,
				 GOVERNOR_BUDGET_MAX);
	g->window_ms = util_env_int("POCKETCTL_RESTART_WINDOW_MS", g->window_ms, 0,
			       86400000);
	g->cooldown_ms = util_env_int("POCKETCTL_RESTART_COOLDOWN_MS", g->cooldown_ms,
				 0, 86400000);
	g->backoff_min_ms = util_env_int("POCKETCTL_RESTART_BACKOFF_MS",
				    g->backoff_min_ms, 0, 3600000);
	g->backoff_max_ms = util_env_int("POCKETCTL_RESTART_BACKOFF_MAX_MS",
				    g->backoff_max_ms, 0, 86400000);
	governor_config_clamp(g);
	o->health_poll_ms = 100;
	o->poll_ms = 1000;
}

static void *events_main(void *arg);

static void runtime_free(struct containers *rt)
{
	struct ctr *c, *next;
	size_t i;

	if (!rt)
		return;
	for (c = rt->ctrs; c; c = next) {
		next = c->next;
		if (c->busy)
			pthread_join(c->th, NULL);
		free(c);
	}
	for (i = 0; i < rt->nnames; i++)
		free(rt->names[i]);
	free(rt->names);
	docker_free(rt->d);
	docker_free(rt->dq);
	pthread_cond_destroy(&rt->cv);
	pthread_mutex_destroy(&rt->mu);
	free(rt->root);
	free(rt->host);
	free(rt);
}

int containers_new(struct containers **out, const struct containers_options *o,
		   struct err *e)
{
	struct docker_options dopt;
	struct containers *rt = NULL;
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc = 0, prc;

	*out = NULL;
	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return err_set(e, ERR_NOMEM, "out of memory");
	rt->o = *o;
	governor_config_clamp(&rt->o.gov);
	if (rt->o.health_poll_ms <= 0)
		rt->o.health_poll_ms = 100;
	if (rt->o.poll_ms <= 0)
		rt->o.poll_ms = 1000;
	pthread_mutex_init(&rt->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->cv, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&rt->stopping, false);
	rt->root = strdup(o->root && *o->root ? o->root : ".");
	rt->host = o->docker_host ? strdup(o->docker_host) : NULL;
	if (!rt->root || (o->docker_host && !rt->host)) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rt->o.root = rt->root;
	rt->o.docker_host = rt->host;
	memset(&dopt, 0, sizeof(dopt));
	dopt.host = rt->host;
	rc = docker_new(&rt->d, &dopt, e);
	dopt.timeout_ms = INSPECT_TIMEOUT_MS;
	if (!rc)
		rc = docker_new(&rt->dq, &dopt, e);
	if (rc)
		goto out;
	/* The runtime's threads (and the action threads the engine thread
	 * starts, which inherit its mask) never take the server's signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	prc = pthread_create(&rt->ev_th, NULL, events_main, rt);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (prc != 0) {
		rc = err_set(e, ERR_INTERNAL, "cannot start the container events thread");
		goto out;
	}
	rt->ev_started = true;
	*out = rt;
	rt = NULL;
out:
	runtime_free(rt);
	return rc;
}

void containers_free(struct containers *rt)
{
	if (!rt)
		return;
	/* Streams and waits see this at once and end. */
	pthread_mutex_lock(&rt->mu);
	atomic_store(&rt->stopping, true);
	pthread_cond_broadcast(&rt->cv);
	pthread_mutex_unlock(&rt->mu);
	if (rt->ev_started)
		pthread_join(rt->ev_th, NULL);
	runtime_free(rt);     /* joins the action threads */
}

const struct containers_options *containers_options(const struct containers *rt)
{
	return &rt->o;
}

/* A call from a request thread: refused without a runtime. */
static int need_rt(const struct containers *rt, struct err *e)
{
	if (rt && !atomic_load(&rt->stopping))
		return 0;
	return err_set(e, ERR_UNAVAILABLE, "the container runtime is not running");
}

/* ---- the desired hash --------------------------------------------------- */

/* A safe relative path: no leading '/', no "." or ".." component, no empty
 * component except a final one (a trailing '/'), no control characters. */
static bool rel_path_ok(const char *p)
{
	const char *s = p, *slash;
	size_t n;

	if (!p || !*p || *p == '/' || strlen(p) >= HASH_PATH_MAX)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	for (s = p; *s; s = slash + 1) {
		slash = strchr(s, '/');
		n = slash ? (size_t)(slash - s) : strlen(s);
		if (n == 0 && slash)
			return false;     /* "a//b" */
		if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		if (!slash)
			break;
	}
	return true;
}

struct pathlist {
	char **v;
	size_t n, alloc;
};

static int pl_add(struct pathlist *pl, const char *p, struct err *e)
{
	char *dup;

	if (pl->n >= CONTAINERS_FILES_MAX)
		return err_set(e, ERR_TOO_LARGE, "more than %d files to hash",
			       CONTAINERS_FILES_MAX);
	if (pl->n == pl->alloc) {
		size_t na = pl->alloc ? pl->alloc * 2 : 16;
		char **nv = realloc(pl->v, na * sizeof(*nv));

		if (!nv)
			return err_set(e, ERR_NOMEM, "out of memory");
		pl->v = nv;
		pl->alloc = na;
	}
	dup = strdup(p);
	if (!dup)
		return err_set(e, ERR_NOMEM, "out of memory");
	pl->v[pl->n++] = dup;
	return 0;
}

static void pl_free(struct pathlist *pl)
{
	size_t i;

	for (i = 0; i < pl->n; i++)
		free(pl->v[i]);
	free(pl->v);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file below root/rel (rel ends in '/'), recursively. A
 * missing directory adds nothing (its marker is added by the caller). */
static int walk_dir(const char *root, const char *rel, int depth,
		    struct pathlist *pl, bool *exists, struct err *e)
{
	char *abs = NULL, child[HASH_PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *dir = NULL;
	int rc = 0;

	*exists = false;
	if (depth > HASH_DEPTH_MAX)
		return 0;
	abs = path_join(root, rel);
	if (!abs)
		return err_set(e, ERR_NOMEM, "out of memory");
	dir = opendir(abs);
	if (!dir) {
		if (errno != ENOENT && errno != ENOTDIR)
			rc = err_set(e, ERR_IO, "cannot read directory '%s': %s", abs,
				     strerror(errno));
		goto out;
	}
	*exists = true;
	while ((de = readdir(dir)) != NULL) {
		bool sub;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((size_t)snprintf(child, sizeof(child), "%s%s", rel, de->d_name) >=
		    sizeof(child) - 1)
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;          /* vanished meanwhile */
		if (S_ISREG(st.st_mode)) {
			rc = pl_add(pl, child, e);
		} else if (S_ISDIR(st.st_mode)) {
			strcat(child, "/");
			rc = walk_dir(root, child, depth + 1, pl, &sub, e);
		}
		if (rc)
			goto out;
	}
out:
	if (dir)
		closedir(dir);
	free(abs);
	return rc;
}

/* Feed one file (or its absence) into the digest. */
static int hash_one(EVP_MD_CTX *md, const char *root, const char *rel,
		    int64_t *newest, struct err *e)
{
	char *abs = path_join(root, rel), chunk[65536];
	unsigned char len8[8];
	struct stat st;
	int fd = -1, rc = 0, i;
	ssize_t n;

	if (!abs)
		return err_set(e, ERR_NOMEM, "out of memory");
	EVP_DigestUpdate(md, rel, strlen(rel) + 1);
	fd = open(abs, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && (errno == ENOENT || errno == ENOTDIR)) {
		EVP_DigestUpdate(md, "missing", 8);
		goto out;
	}
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = err_set(e, ERR_IO, "cannot read '%s': %s", abs, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		EVP_DigestUpdate(md, "not-a-file", 11);
		goto out;
	}
	if (newest) {
		int64_t m = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;

		if (m > *newest)
			*newest = m;
	}
	for (i = 0; i < 8; i++)
		len8[i] = (unsigned char)((uint64_t)st.st_size >> (56 - 8 * i));
	EVP_DigestUpdate(md, "file", 5);
	EVP_DigestUpdate(md, len8, 8);
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = err_set(e, ERR_IO, "cannot read '%s': %s", abs, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(md, chunk, (size_t)n);
	}
out:
	if (fd >= 0)
		close(fd);
	free(abs);
	return rc;
}

int containers_hash_files(const char *root, json_t *files,
			  char out[CONTAINERS_HASH_LEN + 1], int64_t *newest_ns,
			  struct err *e)
{
	struct pathlist pl = { NULL, 0, 0 };
	unsigned char dg[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	EVP_MD_CTX *md = NULL;
	char marker[HASH_PATH_MAX + 16];
	size_t i, j;
	json_t *v;
	int rc = 0;

	if (newest_ns)
		*newest_ns = 0;
	if (files && !json_is_array(files) && !json_is_null(files))
		return err_set_field(e, ERR_INVALID, "files", "files must be a list of paths");
	json_array_foreach(files, i, v) {
		const char *p = json_string_value(v);
		bool exists;

		if (!p || !rel_path_ok(p) || strlen(p) != json_string_length(v)) {
			rc = err_set_field(e, ERR_INVALID, "files",
					   "files[%zu] is not a safe path relative to the render root",
					   i);
			goto out;
		}
		if (p[strlen(p) - 1] != '/') {
			rc = pl_add(&pl, p, e);
		} else {
			rc = walk_dir(root, p, 0, &pl, &exists, e);
			if (!rc && !exists) {
				/* "\001" sorts before any path below the directory. */
				snprintf(marker, sizeof(marker), "%s\001missing-dir", p);
				rc = pl_add(&pl, marker, e);
			}
		}
		if (rc)
			goto out;
	}
	if (pl.n)
		qsort(pl.v, pl.n, sizeof(*pl.v), cmp_str);
	md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		rc = err_set(e, ERR_INTERNAL, "sha-256 unavailable");
		goto out;
	}
	for (i = 0; i < pl.n; i++) {
		if (i && !strcmp(pl.v[i], pl.v[i - 1]))
			continue;
		if (strchr(pl.v[i], '\001')) {
			EVP_DigestUpdate(md, pl.v[i], strlen(pl.v[i]) + 1);
			continue;
		}
		rc = hash_one(md, root, pl.v[i], newest_ns, e);
		if (rc)
			goto out;
	}
	EVP_DigestFinal_ex(md, dg, &dlen);
	for (j = 0; j < dlen && j * 2 < CONTAINERS_HASH_LEN; j++)
		snprintf(out + j * 2, 3, "%02x", dg[j]);
	out[CONTAINERS_HASH_LEN] = '\0';
out:
	EVP_MD_CTX_free(md);
	pl_free(&pl);
	return rc;
}

/* ---- the managed set ------------------------------------------------------ */

/* Is name a record of the containers collection? Reads the store. */
static int check_managed(struct store *s, const char *name, struct err *e)
{
	struct record r;
	int rc;

	if (!docker_name_ok(name))
		return err_set(e, ERR_NOT_FOUND, "container '%.64s' is not managed by pocketctl",
			       name ? name : "");
	record_init(&r);
	rc = store_get_by_name(s, CONTAINERS_COLLECTION, name, &r, e);
	record_release(&r);
	if (rc == ERR_NOT_FOUND)
		return err_set(e, ERR_NOT_FOUND, "container '%s' is not managed by pocketctl",
			       name);
	return rc;
}

int containers_inspect(struct containers *rt, struct store *s,
		       const char *name, struct docker_state *st,
		       struct err *e)
{
	int rc = need_rt(rt, e);

	if (!rc)
		rc = check_managed(s, name, e);
	if (!rc)
		rc = docker_inspect(rt->d, name, st, e);
	return rc;
}

struct logs_idle {
	struct containers *rt;
	docker_idle_fn idle;
	void *arg;
};

static int logs_idle(void *arg)
{
	struct logs_idle *li = arg;

	if (atomic_load(&li->rt->stopping))
		return EV_STOP;
	return li->idle ? li->idle(li->arg) : 0;
}

/* docker_logs gives the same arg to fn and idle: this pair carries both. */
struct logs_pair {
	struct logs_idle li;
	docker_line_fn fn;
};

static int logs_line(void *arg, int stream, const char *line, size_t len)
{
	struct logs_pair *lp = arg;

	return lp->fn(lp->li.arg, stream, line, len);
}

static int logs_pair_idle(void *arg)
{
	return logs_idle(&((struct logs_pair *)arg)->li);
}

int containers_logs(struct containers *rt, struct store *s, const char *name,
		    const struct docker_logs_options *lo, docker_line_fn fn,
		    docker_idle_fn idle, void *arg, struct err *e)
{
	struct logs_pair lp;
	int rc = need_rt(rt, e);

	if (!rc)
		rc = check_managed(s, name, e);
	if (!rc) {
		lp.li.rt = rt;
		lp.li.idle = idle;
		lp.li.arg = arg;
		lp.fn = fn;
		rc = docker_logs(rt->d, name, lo, logs_line, logs_pair_idle, &lp, e);
	}
	return rc;
}

int containers_request_restart(struct containers *rt, struct store *s,
			       const char *name, const char *by, json_t **out,
			       struct err *e)
{
	struct store_txn *t = NULL;
	struct record r;
	json_t *status = NULL, *req = NULL;
	char id[ID_LEN + 1], now[TIME_LEN + 1];
	int rc;

	rc = need_rt(rt, e);
	if (rc)
		return rc;
	record_init(&r);
	rc = check_managed(s, name, e);
	if (rc)
		goto out;
	util_new_id(id);
	util_now(now);
	req = json_pack("{s:s, s:s, s:s}", "id", id, "at", now, "by", by ? by : "");
	if (!req) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = store_begin(s, &t, e);
	if (!rc)
		rc = store_txn_get_by_name(t, CONTAINERS_COLLECTION, name, &r, e);
	if (rc)
		goto out;
	status = json_is_object(r.status) ? json_deep_copy(r.status) : json_object();
	if (!status || json_object_set(status, "restartRequest", req)) { /* borrowed */
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = store_txn_set_status(t, CONTAINERS_COLLECTION, r.id, status, e);
	if (!rc)
		rc = store_commit(t, e);
	t = NULL;
	if (rc)
		goto out;
	wake(rt);
	if (out)
		*out = json_pack("{s:s, s:O}", "name", name, "request", req);
out:
	store_abort(t);
	json_decref(status);
	json_decref(req);
	record_release(&r);
	return rc;
}

/* ---- actions ------------------------------------------------------------ */

/* Sleep ms unless the runtime stops. Returns true when it is stopping. */
static bool nap(struct containers *rt, int64_t ms)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&rt->mu);
	while (!(stop = atomic_load(&rt->stopping)) &&
	       pthread_cond_timedwait(&rt->cv, &rt->mu, &ts) == 0)
		;
	pthread_mutex_unlock(&rt->mu);
	return stop;
}

/* After a start or restart: wait until the container runs, and is healthy
 * when it has a healthcheck, for at most timeout_s seconds. */
static int wait_up(struct containers *rt, const char *name, int timeout_s,
		   char *why, size_t whylen, struct err *e)
{
	int64_t deadline = util_monotonic_ms() + (int64_t)timeout_s * 1000;
	struct docker_state st;
	int rc;

	for (;;) {
		rc = docker_inspect(rt->d, name, &st, e);
		if (rc) {
			snprintf(why, whylen, "%s", rc == ERR_NOT_FOUND ? "ContainerMissing"
				 : rc == ERR_UNAVAILABLE ? "EngineUnreachable" : "ActionFailed");
			return rc;
		}
		if (st.running && (!st.has_health || !strcmp(st.health, "healthy")))
			return 0;
		if (!st.running && !st.restarting && strcmp(st.status, "created") &&
		    strcmp(st.status, "configured") && strcmp(st.status, "initialized")) {
			snprintf(why, whylen, "ActionFailed");
			return err_set(e, ERR_ENGINE,
				       "container '%s' is %s (exit code %d) after it was started",
				       name, st.status[0] ? st.status : "not running",
				       st.exit_code);
		}
		if (util_monotonic_ms() >= deadline) {
			snprintf(why, whylen, "HealthTimeout");
			return err_set(e, ERR_ENGINE,
				       "container '%s' did not become %s within %d s (%s%s%s)",
				       name, st.has_health ? "healthy" : "running", timeout_s,
				       st.status, st.health[0] ? ", " : "", st.health);
		}
		if (nap(rt, rt->o.health_poll_ms)) {
			snprintf(why, whylen, "ActionFailed");
			return err_set(e, ERR_UNAVAILABLE, "stopping");
		}
	}
}

static void *action_main(void *arg)
{
	struct ctr *c = arg;
	struct containers *rt = c->rt;
	struct err e = ERR_INIT;
	char why[32] = "ActionFailed";
	int rc, tries = 0;

	/* c->act's parameters are fixed while c->busy: read without the lock. */
	do {
		if (c->act.kind == CONTAINERS_START)
			rc = docker_start(rt->d, c->name, &e);
		else
			rc = docker_restart(rt->d, c->name, c->act.stop_timeout, &e);
		/* podman answers 500 "container state improper" while another
		 * stop/start of the container is under way: try again shortly. */
	} while (rc == ERR_CONFLICT && ++tries < 3 && !nap(rt, 300));
	if (rc)
		snprintf(why, sizeof(why), "%s", rc == ERR_NOT_FOUND ? "ContainerMissing"
			 : rc == ERR_UNAVAILABLE ? "EngineUnreachable" : "ActionFailed");
	else
		rc = wait_up(rt, c->name, c->act.health_timeout, why, sizeof(why), &e);
	pthread_mutex_lock(&rt->mu);
	c->act.rc = rc;
	snprintf(c->act.fail_reason, sizeof(c->act.fail_reason), "%s", rc ? why : "");
	snprintf(c->act.msg, sizeof(c->act.msg), "%s", rc ? e.msg : "");
	c->done = true;
	pthread_mutex_unlock(&rt->mu);
	wake(rt);
	return NULL;
}

/* ---- the events thread --------------------------------------------------- */

struct ev_ctx {
	struct containers *rt;
	uint64_t gen;
	bool pending;           /* events seen since the last wake */
};

/*
 * Called by the transfer between reads (and about once a second while
 * idle): one wake for every batch of events that arrived together (a
 * reconnect replays many), and the end of the stream when the runtime
 * stops or the managed names changed.
 */
static int ev_idle(void *arg)
{
	struct ev_ctx *x = arg;
	bool stop;

	if (x->pending) {
		x->pending = false;
		wake(x->rt);
	}
	pthread_mutex_lock(&x->rt->mu);
	stop = atomic_load(&x->rt->stopping) || x->rt->names_gen != x->gen;
	pthread_mutex_unlock(&x->rt->mu);
	return stop ? EV_STOP : 0;
}

static int ev_event(void *arg, const struct docker_event *ev)
{
	struct ev_ctx *x = arg;

	if (strcmp(ev->type, "container") || !strncmp(ev->action, "exec", 4))
		return 0;
	pthread_mutex_lock(&x->rt->mu);
	if (ev->time_ns > x->rt->ev_since_ns)
		x->rt->ev_since_ns = ev->time_ns;
	pthread_mutex_unlock(&x->rt->mu);
	/* The stream is filtered to the managed names already. */
	x->pending = true;
	return 0;
}

static void set_engine_down(struct containers *rt, bool down)
{
	bool changed;

	pthread_mutex_lock(&rt->mu);
	changed = rt->engine_down != down;
	rt->engine_down = down;
	pthread_mutex_unlock(&rt->mu);
	if (changed)
		wake(rt);   /* down: report it; up again: converge now */
}

static void *events_main(void *arg)
{
	struct containers *rt = arg;
	int64_t backoff = EVENTS_BACKOFF_MIN_MS, since, t0;
	struct ev_ctx x;
	struct err e;
	char **names;
	size_t n, i, got;
	int rc;

	for (;;) {
		pthread_mutex_lock(&rt->mu);
		while (!atomic_load(&rt->stopping) && !rt->nnames)
			pthread_cond_wait(&rt->cv, &rt->mu);
		if (atomic_load(&rt->stopping)) {
			pthread_mutex_unlock(&rt->mu);
			break;
		}
		n = rt->nnames;
		names = calloc(n, sizeof(*names));
		for (got = 0; names && got < n; got++) {
			names[got] = strdup(rt->names[got]);
			if (!names[got])
				break;
		}
		x.rt = rt;
		x.gen = rt->names_gen;
		x.pending = false;
		since = rt->ev_since_ns;
		pthread_mutex_unlock(&rt->mu);
		err_clear(&e);
		t0 = realtime_ns();
		rc = !names || got < n ? ERR_NOMEM : docker_ping(rt->d, &e);
		if (!rc) {
			set_engine_down(rt, false);
			rc = docker_events(rt->d, (const char *const *)names, n, since,
					   ev_event, ev_idle, &x, &e);
			if (x.pending)
				wake(rt);
			/* Resume after what this connection covered. */
			pthread_mutex_lock(&rt->mu);
			if (rt->ev_since_ns < t0)
				rt->ev_since_ns = t0;
			pthread_mutex_unlock(&rt->mu);
		}
		for (i = 0; names && i < got; i++)
			free(names[i]);
		free(names);
		if (rc == EV_STOP) {
			backoff = EVENTS_BACKOFF_MIN_MS;
			continue;
		}
		/* The stream ended or never started: the engine went away. */
		if (rc != ERR_NOMEM)
			set_engine_down(rt, true);
		if (nap(rt, backoff))
			break;
		backoff = backoff * 2 > EVENTS_BACKOFF_MAX_MS ? EVENTS_BACKOFF_MAX_MS
							      : backoff * 2;
	}
	return NULL;
}

/* Replace the names the events thread follows, when they changed. Engine
 * thread; takes rt->mu. names are the containers seen by this pass. */
static void follow_names(struct containers *rt)
{
	struct ctr *c;
	size_t n = 0, i = 0;
	char **v;
	bool same = true;

	pthread_mutex_lock(&rt->mu);
	for (c = rt->ctrs; c; c = c->next)
		if (c->seen && docker_name_ok(c->name))
			n++;
	if (n != rt->nnames)
		same = false;
	for (c = rt->ctrs; same && c; c = c->next)
		if (c->seen && docker_name_ok(c->name) && strcmp(rt->names[i++], c->name))
			same = false;
	if (same) {
		pthread_mutex_unlock(&rt->mu);
		return;
	}
	v = calloc(n ? n : 1, sizeof(*v));
	for (c = rt->ctrs, i = 0; v && c; c = c->next) {
		if (!c->seen || !docker_name_ok(c->name))
			continue;
		v[i] = strdup(c->name);
		if (!v[i])
			break;
		i++;
	}
	if (v && i == n) {
		for (i = 0; i < rt->nnames; i++)
			free(rt->names[i]);
		free(rt->names);
		rt->names = v;
		rt->nnames = n;
		rt->names_gen++;
		pthread_cond_broadcast(&rt->cv);
	} else if (v) {
		while (i > 0)
			free(v[--i]);
		free(v);
	}
	pthread_mutex_unlock(&rt->mu);
}

/* ---- the pass's side (engine thread) ------------------------------------ */

/* The entry of name, or NULL. Under rt->mu. */
static struct ctr *ctr_get(struct containers *rt, const char *name)
{
	struct ctr *c;

	for (c = rt->ctrs; c; c = c->next)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

/* The entry of name, made when missing (NULL on OOM). Under rt->mu. */
static struct ctr *ctr_find(struct containers *rt, const char *name)
{
	struct ctr *c = ctr_get(rt, name);

	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->rt = rt;
	snprintf(c->name, sizeof(c->name), "%s", name);
	governor_init(&c->book.gov);
	c->next = rt->ctrs;
	rt->ctrs = c;
	return c;
}

/* Forget containers no longer declared (once their action has ended). */
static void ctr_sweep(struct containers *rt)
{
	struct ctr **pp = &rt->ctrs, *c;

	pthread_mutex_lock(&rt->mu);
	while ((c = *pp) != NULL) {
		if (!c->seen && (!c->busy || c->done)) {
			*pp = c->next;
			pthread_mutex_unlock(&rt->mu);
			if (c->busy)
				pthread_join(c->th, NULL);
			free(c);
			pthread_mutex_lock(&rt->mu);
			continue;
		}
		pp = &c->next;
	}
	pthread_mutex_unlock(&rt->mu);
}

void containers_pass_begin(struct containers *rt)
{
	struct ctr *c;

	pthread_mutex_lock(&rt->mu);
	for (c = rt->ctrs; c; c = c->next)
		c->seen = false;
	pthread_mutex_unlock(&rt->mu);
}

struct container_book *containers_book(struct containers *rt,
				       const char *name)
{
	struct ctr *c;

	pthread_mutex_lock(&rt->mu);
	c = ctr_find(rt, name);
	if (c)
		c->seen = true;
	pthread_mutex_unlock(&rt->mu);
	return c ? &c->book : NULL;
}

bool containers_pass_end(struct containers *rt)
{
	struct ctr *c;
	bool busy = false;

	ctr_sweep(rt);
	follow_names(rt);
	pthread_mutex_lock(&rt->mu);
	for (c = rt->ctrs; c; c = c->next)
		busy = busy || c->busy;
	pthread_mutex_unlock(&rt->mu);
	return busy;
}

bool containers_busy(struct containers *rt, const char *name,
		     enum containers_act *kind)
{
	struct ctr *c;
	bool busy;

	pthread_mutex_lock(&rt->mu);
	c = ctr_get(rt, name);
	busy = c && c->busy;
	if (busy && kind)
		*kind = c->act.kind;
	pthread_mutex_unlock(&rt->mu);
	return busy;
}

int containers_launch(struct containers *rt, const char *name,
		      const struct containers_action *a)
{
	struct ctr *c;
	int rc = 0;

	pthread_mutex_lock(&rt->mu);
	c = ctr_find(rt, name);
	if (!c) {
		rc = ERR_NOMEM;
	} else if (c->busy) {
		rc = ERR_CONFLICT;
	} else {
		c->act = *a;
		c->done = false;
		c->busy = true;
		if (pthread_create(&c->th, NULL, action_main, c) != 0) {
			c->busy = false;
			rc = ERR_INTERNAL;
		}
	}
	pthread_mutex_unlock(&rt->mu);
	return rc;
}

bool containers_collect(struct containers *rt, const char *name,
			struct containers_action *out)
{
	struct ctr *c;

	pthread_mutex_lock(&rt->mu);
	c = ctr_get(rt, name);
	if (!c || !c->busy || !c->done) {
		pthread_mutex_unlock(&rt->mu);
		return false;
	}
	*out = c->act;
	pthread_mutex_unlock(&rt->mu);
	pthread_join(c->th, NULL);
	/* Only the engine thread launches, collects and sweeps: c stays. */
	pthread_mutex_lock(&rt->mu);
	c->busy = false;
	pthread_mutex_unlock(&rt->mu);
	return true;
}

int containers_peek(struct containers *rt, const char *name,
		    struct docker_state *st, struct err *e)
{
	return docker_inspect(rt->dq, name, st, e);
}
