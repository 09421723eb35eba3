/*
 * rec_containers.c - the containers reconciler and its runtime (see
 * rec_containers.h): desired hash of each container's files, observed
 * state from inspect and the /events stream, actions through the restart
 * governor, everything reported as status on the container's record.
 *
 * The pass (engine thread) never blocks on an action: it inspects (a few
 * ms on a local socket, bounded by a short timeout), decides, and hands a
 * start or restart to a thread of its own, which also waits until the
 * container runs (and is healthy) and then asks for another pass; that
 * pass records the outcome. So a 10 s stop timeout never holds up the
 * file reconcilers, and each container has at most one action in flight.
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

#include "reconciler.h"
#include "util.h"

#define INSPECT_TIMEOUT_MS 3000L     /* a pass never waits longer per call */
#define MISSING_RETRY_MS 30000       /* ask again for a missing container */
#define ERROR_RETRY_MS 5000          /* an unreadable file, an engine error */
#define EVENTS_BACKOFF_MIN_MS 250
#define EVENTS_BACKOFF_MAX_MS 5000
#define HASH_DEPTH_MAX 16
#define HASH_PATH_MAX 4096
#define EV_STOP 1                    /* idle/event callback: end the stream */
#define DOWN_GRACE_MS 500            /* a container seen stopped is started
                                      * only if still stopped this much
                                      * later: the engine's own restart
                                      * (die ... start) is not a stop */

enum act_kind { ACT_START, ACT_RESTART };

/* One action in flight; parameters are fixed when the thread starts, the
 * results are written once, under rt->mu, when it ends. */
struct action {
	enum act_kind kind;
	char reason[32];
	char hash[CONTAINERS_HASH_LEN + 1];
	char manual_id[ID_LEN + 1];
	char at[TIME_LEN + 1];
	int stop_timeout;
	int health_timeout;
	bool done;
	int rc;
	char fail_reason[32];
	char msg[ERR_MSG_MAX];
};

struct runtime;

/* What the runtime knows about one managed container, by name. */
struct ctr {
	struct ctr *next;
	struct runtime *rt;
	char name[DOCKER_NAME_MAX + 1];
	bool seen;                  /* named by the current pass */
	struct governor gov;      /* engine thread only */
	bool busy;                  /* an action thread exists, not joined */
	pthread_t th;
	struct action act;
	int64_t retry_delay;        /* after an engine error: ask again then */
	int64_t down_since;         /* first pass that saw it not running, 0 */
};

struct runtime {
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

/* The runtime of this process (the reconciler interface carries no
 * context): published under rt_lock, used under its read side. */
static pthread_rwlock_t rt_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct runtime *rt_cur;

/* The status keys this module writes; everything else is kept. */
static const char *const my_keys[] = {
	"desiredHash", "appliedHash", "appliedAt", "container", "lastAction",
	"actions", "breaker", "conditions", "manualRestartHandled", NULL
};

/* ---- small helpers ------------------------------------------------------ */

static int64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

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

static void wake(struct runtime *rt)
{
	if (rt->o.wake)
		rt->o.wake(rt->o.wake_arg);
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* ---- options, start, stop ---------------------------------------------- */

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

static void runtime_free(struct runtime *rt)
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

int containers_start(const struct containers_options *o, struct err *e)
{
	struct docker_options dopt;
	struct runtime *rt = NULL;
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc = 0, prc;

	pthread_rwlock_wrlock(&rt_lock);
	if (rt_cur) {
		rc = err_set(e, ERR_CONFLICT, "the containers runtime is already started");
		goto out;
	}
	rt = calloc(1, sizeof(*rt));
	if (!rt) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
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
	rt_cur = rt;
	rt = NULL;
out:
	pthread_rwlock_unlock(&rt_lock);
	runtime_free(rt);
	return rc;
}

void containers_stop(void)
{
	struct runtime *rt;

	pthread_rwlock_rdlock(&rt_lock);
	rt = rt_cur;
	if (rt) {
		/* Streams and waits see this at once and end. */
		pthread_mutex_lock(&rt->mu);
		atomic_store(&rt->stopping, true);
		pthread_cond_broadcast(&rt->cv);
		pthread_mutex_unlock(&rt->mu);
	}
	pthread_rwlock_unlock(&rt_lock);
	if (!rt)
		return;
	pthread_rwlock_wrlock(&rt_lock);
	rt_cur = NULL;
	pthread_rwlock_unlock(&rt_lock);
	if (rt->ev_started)
		pthread_join(rt->ev_th, NULL);
	runtime_free(rt);     /* joins the action threads */
}

/* Take the runtime for a call from outside the engine thread. */
static struct runtime *rt_get(struct err *e)
{
	pthread_rwlock_rdlock(&rt_lock);
	if (rt_cur && !atomic_load(&rt_cur->stopping))
		return rt_cur;
	pthread_rwlock_unlock(&rt_lock);
	err_set(e, ERR_UNAVAILABLE, "the container runtime is not running");
	return NULL;
}

static void rt_put(void)
{
	pthread_rwlock_unlock(&rt_lock);
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
static int check_managed(struct runtime *rt, const char *name, struct err *e)
{
	struct record r;
	int rc;

	if (!docker_name_ok(name))
		return err_set(e, ERR_NOT_FOUND, "container '%.64s' is not managed by pocketctl",
			       name ? name : "");
	record_init(&r);
	rc = store_get_by_name(rt->o.store, CONTAINERS_COLLECTION, name, &r, e);
	record_release(&r);
	if (rc == ERR_NOT_FOUND)
		return err_set(e, ERR_NOT_FOUND, "container '%s' is not managed by pocketctl",
			       name);
	return rc;
}

int containers_inspect(const char *name, struct docker_state *st,
		       struct err *e)
{
	struct runtime *rt = rt_get(e);
	int rc;

	if (!rt)
		return ERR_UNAVAILABLE;
	rc = check_managed(rt, name, e);
	if (!rc)
		rc = docker_inspect(rt->d, name, st, e);
	rt_put();
	return rc;
}

struct logs_idle {
	struct runtime *rt;
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

int containers_logs(const char *name, const struct docker_logs_options *lo,
		    docker_line_fn fn, docker_idle_fn idle, void *arg,
		    struct err *e)
{
	struct runtime *rt = rt_get(e);
	struct logs_pair lp;
	int rc;

	if (!rt)
		return ERR_UNAVAILABLE;
	rc = check_managed(rt, name, e);
	if (!rc) {
		lp.li.rt = rt;
		lp.li.idle = idle;
		lp.li.arg = arg;
		lp.fn = fn;
		rc = docker_logs(rt->d, name, lo, logs_line, logs_pair_idle, &lp, e);
	}
	rt_put();
	return rc;
}

int containers_request_restart(const char *name, const char *by,
			       json_t **out, struct err *e)
{
	struct runtime *rt = rt_get(e);
	struct store_txn *t = NULL;
	struct record r;
	json_t *status = NULL, *req = NULL;
	char id[ID_LEN + 1], now[TIME_LEN + 1];
	int rc;

	if (!rt)
		return ERR_UNAVAILABLE;
	record_init(&r);
	rc = check_managed(rt, name, e);
	if (rc)
		goto out;
	util_new_id(id);
	util_now(now);
	req = json_pack("{s:s, s:s, s:s}", "id", id, "at", now, "by", by ? by : "");
	if (!req) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = store_begin(rt->o.store, &t, e);
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
	rt_put();
	return rc;
}

/* ---- actions ------------------------------------------------------------ */

/* Sleep ms unless the runtime stops. Returns true when it is stopping. */
static bool nap(struct runtime *rt, int64_t ms)
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
static int wait_up(struct runtime *rt, const char *name, int timeout_s,
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
	struct runtime *rt = c->rt;
	struct err e = ERR_INIT;
	char why[32] = "ActionFailed";
	int rc, tries = 0;

	/* c->act's parameters are fixed while c->busy: read without the lock. */
	do {
		if (c->act.kind == ACT_START)
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
	c->act.done = true;
	pthread_mutex_unlock(&rt->mu);
	wake(rt);
	return NULL;
}

/* ---- the events thread --------------------------------------------------- */

struct ev_ctx {
	struct runtime *rt;
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

static void set_engine_down(struct runtime *rt, bool down)
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
	struct runtime *rt = arg;
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
static void follow_names(struct runtime *rt)
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

/* Merge my keys of mine into the record's current status and write it
 * when anything changed. A record deleted meanwhile is not an error. */
static int write_status(struct runtime *rt, const char *id, json_t *mine,
			struct err *e)
{
	struct store_txn *t = NULL;
	struct record r;
	json_t *merged = NULL, *v;
	size_t k;
	int rc;

	record_init(&r);
	rc = store_begin(rt->o.store, &t, e);
	if (!rc)
		rc = store_txn_get(t, CONTAINERS_COLLECTION, id, &r, e);
	if (rc == ERR_NOT_FOUND) {
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	merged = json_is_object(r.status) ? json_deep_copy(r.status) : json_object();
	if (!merged) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	for (k = 0; my_keys[k]; k++) {
		v = json_object_get(mine, my_keys[k]);
		if (v)
			json_object_set(merged, my_keys[k], v);     /* borrowed */
		else
			json_object_del(merged, my_keys[k]);
	}
	if (json_equal(merged, r.status))
		goto out;
	rc = store_txn_set_status(t, CONTAINERS_COLLECTION, id, merged, e);
	if (!rc)
		rc = store_commit(t, e);
	t = NULL;
out:
	store_abort(t);
	json_decref(merged);
	record_release(&r);
	return rc;
}

/* ---- the pass --------------------------------------------------------------- */

static struct ctr *ctr_find(struct runtime *rt, const char *name)
{
	struct ctr *c;

	for (c = rt->ctrs; c; c = c->next)
		if (!strcmp(c->name, name))
			return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->rt = rt;
	snprintf(c->name, sizeof(c->name), "%s", name);
	governor_init(&c->gov);
	c->next = rt->ctrs;
	rt->ctrs = c;
	return c;
}

/* Forget containers no longer declared (once their action has ended). */
static void ctr_sweep(struct runtime *rt)
{
	struct ctr **pp = &rt->ctrs, *c;

	pthread_mutex_lock(&rt->mu);
	while ((c = *pp) != NULL) {
		if (!c->seen && (!c->busy || c->act.done)) {
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

struct pass {
	struct rctx *c;
	struct runtime *rt;
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
	struct governor_decision dec;
	const char *degraded;       /* a Degraded reason, or NULL */
	char degraded_msg[ERR_MSG_MAX];
	bool running_wanted;
};

static json_t *build_status(struct pass *p, struct ctr *c, json_t *old,
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
		why = v->busy ? (c->act.kind == ACT_START ? "Starting" : "Restarting")
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
			 p->rt->o.gov.budget, (long long)(p->rt->o.gov.window_ms / 1000), until);
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
static bool collect(struct pass *p, struct ctr *c, json_t *status, bool *ok)
{
	struct action a;
	char now[TIME_LEN + 1];

	pthread_mutex_lock(&p->rt->mu);
	if (!c->busy || !c->act.done) {
		pthread_mutex_unlock(&p->rt->mu);
		return false;
	}
	a = c->act;
	pthread_mutex_unlock(&p->rt->mu);
	pthread_join(c->th, NULL);
	c->busy = false;
	*ok = a.rc == 0;
	governor_end(&c->gov, &p->rt->o.gov, p->now, *ok);
	snprintf(now, sizeof(now), "%s", rctx_now(p->c));
	json_object_set_new(status, "lastAction",
			    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
				      "action", a.kind == ACT_START ? "start" : "restart",
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

/* Launch an action for c. */
static int launch(struct pass *p, struct ctr *c, json_t *status,
		  enum act_kind kind, const char *reason, const char *hash,
		  const char *manual_id, int stop_timeout, int health_timeout)
{
	struct action *a = &c->act;

	memset(a, 0, sizeof(*a));
	a->kind = kind;
	snprintf(a->reason, sizeof(a->reason), "%s", reason);
	snprintf(a->hash, sizeof(a->hash), "%s", hash);
	snprintf(a->manual_id, sizeof(a->manual_id), "%s", manual_id ? manual_id : "");
	snprintf(a->at, sizeof(a->at), "%s", rctx_now(p->c));
	a->stop_timeout = stop_timeout;
	a->health_timeout = health_timeout;
	governor_begin(&c->gov, p->now);
	c->busy = true;
	if (pthread_create(&c->th, NULL, action_main, c) != 0) {
		c->busy = false;
		governor_end(&c->gov, &p->rt->o.gov, p->now, false);
		return ERR_INTERNAL;
	}
	json_object_set_new(status, "lastAction",
			    json_pack("{s:s, s:s, s:s, s:s, s:s}",
				      "action", kind == ACT_START ? "start" : "restart",
				      "reason", reason, "phase", "InProgress",
				      "hash", hash, "at", a->at));
	json_object_set_new(status, "actions",
			    json_integer(json_integer_value(json_object_get(status, "actions")) + 1));
	return 0;
}

static int one_container(struct pass *p, json_t *rec, struct err *e)
{
	struct runtime *rt = p->rt;
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
	struct ctr *c;
	bool ok = false, manual, grace = false;
	int rc = 0, stop_timeout, health_timeout;

	memset(&v, 0, sizeof(v));
	v.running_wanted = json_is_true(json_object_get(data, "running"));
	stop_timeout = (int)json_integer_value(json_object_get(data, "stop_timeout"));
	health_timeout = (int)json_integer_value(json_object_get(data, "health_timeout"));
	pthread_mutex_lock(&rt->mu);
	c = ctr_find(rt, name);
	if (c)
		c->seen = true;
	pthread_mutex_unlock(&rt->mu);
	if (!c)
		return err_set(e, ERR_NOMEM, "out of memory");
	/* work: the status as this pass leaves it (old + collected outcome). */
	work = json_is_object(old) ? json_deep_copy(old) : json_object();
	if (!work)
		return err_set(e, ERR_NOMEM, "out of memory");
	collect(p, c, work, &ok);
	snprintf(applied, sizeof(applied), "%s", jstr(work, "appliedHash"));
	v.applied = applied;

	if (!docker_name_ok(name)) {
		v.degraded = "InvalidSpec";
		snprintf(v.degraded_msg, sizeof(v.degraded_msg),
			 "'%.64s' is not a container name", name);
		goto report;
	}
	rc = containers_hash_files(rt->root, json_object_get(data, "files"), desired,
				   &newest, &he);
	if (rc) {
		v.degraded = rc == ERR_IO ? "FilesUnreadable" : "InvalidSpec";
		snprintf(v.degraded_msg, sizeof(v.degraded_msg), "%s", he.msg);
		want_pass(p, p->now + ERROR_RETRY_MS);
		rc = 0;
		goto report;
	}
	v.desired = desired;
	v.busy = c->busy;
	if (v.busy) {
		v.dec.verdict = GOVERNOR_WAIT;
		v.dec.reason = "ActionInFlight";
		goto report;
	}
	rc = docker_inspect(rt->dq, name, &v.st, &he);
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
	governor_decide(&c->gov, &rt->o.gov, p->now, &in, &v.dec);
	if (grace && v.dec.verdict == GOVERNOR_IDLE) {
		v.dec.verdict = GOVERNOR_WAIT;
		v.dec.reason = "ConfirmingStop";
	}
	if (v.dec.verdict == GOVERNOR_WAIT)
		want_pass(p, v.dec.wake_ms);
	if (v.dec.verdict == GOVERNOR_START || v.dec.verdict == GOVERNOR_RESTART) {
		rc = launch(p, c, work,
			    v.dec.verdict == GOVERNOR_START ? ACT_START : ACT_RESTART,
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
			rc = write_status(rt, id, mine, e);
	}
out:
	json_decref(mine);
	json_decref(work);
	return rc;
}

static int containers_reconcile(struct rctx *c, struct err *e)
{
	struct pass p;
	struct ctr *ct;
	json_t *recs = NULL, *rec;
	size_t i;
	int rc = 0, rc1;

	pthread_rwlock_rdlock(&rt_lock);
	memset(&p, 0, sizeof(p));
	p.c = c;
	p.rt = rt_cur;
	if (!p.rt || atomic_load(&p.rt->stopping)) {
		json_array_append_new(rctx_warnings(c),
				      json_string("no container runtime in this process: containers are not reconciled"));
		goto out;
	}
	rc = rctx_records(c, CONTAINERS_COLLECTION, &recs, e);
	if (rc)
		goto out;
	p.now = util_monotonic_ms();
	pthread_mutex_lock(&p.rt->mu);
	for (ct = p.rt->ctrs; ct; ct = ct->next)
		ct->seen = false;
	pthread_mutex_unlock(&p.rt->mu);
	json_array_foreach(recs, i, rec) {
		struct err e1 = ERR_INIT;

		rc1 = one_container(&p, rec, &e1);
		if (rc1) {
			json_array_append_new(rctx_warnings(c),
					      json_sprintf("container '%s': %s",
							   jstr(rec, "name"), e1.msg));
			want_pass(&p, p.now + ERROR_RETRY_MS);
		}
	}
	/* Collect finished actions of containers no longer declared. */
	ctr_sweep(p.rt);
	follow_names(p.rt);
	if (!p.rt->o.wake)
		want_pass(&p, p.now + p.rt->o.poll_ms);
	else {
		/* An action in flight wakes us when it ends; keep a slow
		 * safety net in case a wake-up is lost. */
		pthread_mutex_lock(&p.rt->mu);
		for (ct = p.rt->ctrs; ct; ct = ct->next)
			if (ct->busy)
				want_pass(&p, p.now + 5000);
		pthread_mutex_unlock(&p.rt->mu);
	}
	if (p.next)
		rctx_requeue_after(c, p.next > p.now ? p.next - p.now : 0);
	if (p.unreachable)
		rc = err_set(e, ERR_UNAVAILABLE, "%s", p.unreachable_msg);
out:
	pthread_rwlock_unlock(&rt_lock);
	return rc;
}

static const char *const containers_reads[] = {
	CONTAINERS_COLLECTION, RECONCILER_READS_FILES, NULL
};

const struct reconciler rec_containers = {
	.name = CONTAINERS_RECONCILER,
	.description = "managed containers: restart when their files change, start when stopped",
	.reads = containers_reads,
	.reconcile = containers_reconcile,
};
