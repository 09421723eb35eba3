/*
 * engine.c - the reconcile engine (see engine.h): the poll loop, the
 * triggers (change log, inotify, timers), the reconcile context handed to
 * reconcilers (reconcilers/reconciler.h), drift detection, garbage
 * collection of owned files, status and the --watch manifests re-apply.
 *
 * Status is kept in memory per key (struct rstate) and written to the
 * key's reconcile_status record only when it differs from what was written
 * last, so an idle engine writes nothing. Nothing in a status changes on a
 * pass that changes nothing: no "last run" timestamps; lastTransitionTime
 * moves only when a condition's status flips; observedRevision is the
 * newest DATA change (status-only changes excluded) the pass had seen.
 *
 * observedGeneration: after a successful pass, every record the reconciler
 * read gets status.observedGenerations.<reconciler> = its generation, and
 * status.observedGeneration = the smallest of those over every reconciler
 * reading that collection once all of them have reported. Written only for
 * records whose value changes (none on an idle pass), in chunks of
 * OBS_CHUNK per transaction so API writers never wait long.
 */
#include "engine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "apply.h"
#include "buf.h"
#include "manifest.h"
#include "paths.h"
#include "reconciler.h"
#include "util.h"
#include "workq.h"

extern char **environ;

#define SHA_HEX 65
#define OBS_CHUNK 500            /* observedGeneration writes per txn */
#define CHANGES_BATCH 512        /* change-log rows read per query */
#define GIT_OUTPUT_MAX 4096      /* bytes of git output kept */
#define WATCH_MASK (IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | \
		    IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF |    \
		    IN_MOVE_SELF | IN_ONLYDIR)

enum {
	W_FILES = 1,             /* the directory of owned files */
	W_MANIFESTS = 2,         /* a directory of the manifests tree */
	W_GIT_DIR = 4,           /* the manifests checkout's git dir (HEAD) */
	W_GIT_REFS = 8,          /* its refs/heads */
	W_INPUT = 16,            /* an input directory (rctx_watch_dir) */
};

struct watch {
	int wd;
	unsigned flags;
	char *dir;
	const char *input;       /* W_INPUT: the reconciler to run (its
	                          * name, static) */
};

/* A file owned by a reconciler. */
struct artifact {
	char *path;
	char *base;              /* basename, matched against inotify names */
	int wd;                  /* watch of its directory, -1 when none */
	char sha[SHA_HEX];       /* what we last wrote (or found matching) */
	unsigned mode;
	bool declared;           /* written or kept in the current pass */
	bool cleaned;            /* stale temporaries removed (once) */
	bool suspect;            /* inotify saw a change: check it */
	char *error;             /* last error, NULL when fine */
	const char *reason;      /* condition reason of error (static) */
	json_t *conds;           /* Ready, Degraded */
};

/* One key of the work queue: a reconciler, or the manifests re-apply. */
struct rstate {
	const struct reconciler *r;   /* NULL for the manifests key */
	const char *name;
	char id[ID_LEN + 1];          /* its reconcile_status record */
	struct artifact *arts;        /* sorted by path */
	size_t narts, aalloc;
	json_t *conds;                /* Ready, Reconciling, Degraded */
	json_t *events;               /* newest last, ENGINE_EVENTS_KEPT */
	json_t *warnings;
	json_t *extra;                /* manifests: directory, git, counts */
	json_t *written;              /* the status last stored */
	char *last_error;
	int failures;
	char next_retry[TIME_LEN + 1];
	int64_t data_rev;             /* newest relevant data change seen */
	int64_t observed_rev;         /* data_rev when the last good pass began */
	uint64_t passes, writes;
	int64_t last_ms;
	atomic_bool wanted;           /* engine_enqueue() from another thread */
};

struct engine {
	struct store *store;
	const struct schema *schema;
	char *root;
	char *manifests_dir;
	int64_t resync_ms, debounce_ms;
	struct paths paths;
	struct rstate *rs;            /* reconcilers, registry order */
	size_t nrs;
	struct rstate *mrs;           /* the manifests key, or NULL */
	struct workq *q;
	int efd, ifd, tfd;
	struct watch *w;
	size_t nw, walloc;
	pthread_t thread;
	atomic_bool started;          /* read by engine_status() */
	bool hooked;
	atomic_int stop;
	_Atomic uint64_t full_req, full_done;
	uint64_t full_seen;
	int64_t last_rev;
	int64_t next_resync;
	_Atomic uint64_t wakeups, passes;
	unsigned rng;
	char *git_dir;
	pthread_mutex_t slock;        /* guards snap */
	json_t *snap;
};

static _Thread_local bool on_engine_thread;

/* ---- small helpers ---------------------------------------------------- */

static void logf_engine(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void logf_engine(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "pocketctl: engine: %s\n", line);
}

static void sha256_hex(const void *data, size_t len, char out[SHA_HEX])
{
	static const char hx[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	out[0] = '\0';
	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
		return;
	for (i = 0; i < n; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[2 * n] = '\0';
}

/* A JSON string that never fails on bad UTF-8 (bytes >= 0x80 become '?'
 * when the text is not valid UTF-8). NULL only on OOM. */
static json_t *jstr(const char *s)
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

static bool reads_has(const struct reconciler *r, const char *coll)
{
	size_t i;

	if (!r || !r->reads)
		return false;
	for (i = 0; r->reads[i]; i++)
		if (!strcmp(r->reads[i], coll))
			return true;
	return false;
}

/*
 * Set condition type in conds: status "True"/"False"/"Unknown".
 * lastTransitionTime moves only when the status flips.
 */
static void cond_set(json_t *conds, const char *type, const char *status,
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
		json_object_set_new(c, "type", jstr(type));
		json_object_set_new(c, "status", jstr("Unknown"));
		json_object_set_new(c, "reason", jstr(""));
		json_object_set_new(c, "message", jstr(""));
		json_object_set_new(c, "lastTransitionTime", jstr(now));
	}
	old = json_string_value(json_object_get(c, "status"));
	if (!old || strcmp(old, status))
		json_object_set_new(c, "lastTransitionTime", jstr(now));
	json_object_set_new(c, "status", jstr(status));
	json_object_set_new(c, "reason", jstr(reason));
	json_object_set_new(c, "message", jstr(message));
}

/* ---- artifacts -------------------------------------------------------- */

static void art_release(struct artifact *a)
{
	free(a->path);
	free(a->base);
	free(a->error);
	json_decref(a->conds);
	memset(a, 0, sizeof(*a));
}

static struct artifact *art_find(struct rstate *rs, const char *path)
{
	size_t i;

	for (i = 0; i < rs->narts; i++)
		if (!strcmp(rs->arts[i].path, path))
			return &rs->arts[i];
	return NULL;
}

/* The artifact of path, created (sorted in) when missing; NULL on OOM. */
static struct artifact *art_get(struct rstate *rs, const char *path)
{
	struct artifact *a = art_find(rs, path), *v, na;
	char *copy;
	size_t i, n;

	if (a)
		return a;
	memset(&na, 0, sizeof(na));
	na.wd = -1;
	na.path = strdup(path);
	copy = strdup(path);
	na.conds = json_array();
	if (na.path && copy)
		na.base = strdup(basename(copy));
	free(copy);
	if (!na.path || !na.base || !na.conds)
		goto oom;
	if (rs->narts == rs->aalloc) {
		n = rs->aalloc ? rs->aalloc * 2 : 4;
		v = realloc(rs->arts, n * sizeof(*v));
		if (!v)
			goto oom;
		rs->arts = v;
		rs->aalloc = n;
	}
	for (i = 0; i < rs->narts && strcmp(rs->arts[i].path, path) < 0; i++)
		;
	memmove(&rs->arts[i + 1], &rs->arts[i],
		(rs->narts - i) * sizeof(*rs->arts));
	rs->arts[i] = na;
	rs->narts++;
	return &rs->arts[i];
oom:
	art_release(&na);
	return NULL;
}

static void art_remove(struct rstate *rs, size_t i)
{
	art_release(&rs->arts[i]);
	memmove(&rs->arts[i], &rs->arts[i + 1],
		(rs->narts - i - 1) * sizeof(*rs->arts));
	rs->narts--;
}

static void art_set_error(struct artifact *a, const char *reason,
			  const char *msg)
{
	free(a->error);
	a->error = msg ? strdup(msg) : NULL;
	a->reason = msg ? reason : NULL;
}

/*
 * Hash of the regular file at path into sha (and its mode); returns 1 when
 * it is a regular file, 0 when missing, -1 when something else is there or
 * it cannot be read.
 */
static int file_state(const char *path, char sha[SHA_HEX], unsigned *mode)
{
	struct buf b = BUF_INIT;
	struct stat st;
	int rc;

	sha[0] = '\0';
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISREG(st.st_mode))
		return -1;
	*mode = st.st_mode & 07777;
	rc = buf_read_file(&b, path, NULL);
	if (!rc)
		sha256_hex(b.ptr, b.len, sha);
	buf_release(&b);
	return rc ? -1 : 1;
}

/* True when the file is exactly what we last wrote. */
static bool art_intact(const struct artifact *a)
{
	char sha[SHA_HEX];
	unsigned mode = 0;

	if (!a->sha[0])
		return false;
	if (file_state(a->path, sha, &mode) != 1)
		return false;
	return !strcmp(sha, a->sha) && mode == a->mode;
}

/*
 * Remove temporaries fs_write_atomic() left behind when a process died
 * between creating and renaming them ("<base>.tmp.<pid>", other pids).
 */
static void clean_stale_tmp(struct artifact *a)
{
	char *copy, *dir, *full;
	struct dirent *de;
	size_t bl = strlen(a->base);
	const char *p;
	long pid;
	DIR *d;

	a->cleaned = true;
	copy = strdup(a->path);
	if (!copy)
		return;
	dir = dirname(copy);
	d = opendir(dir);
	while (d && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, a->base, bl) ||
		    strncmp(de->d_name + bl, ".tmp.", 5))
			continue;
		p = de->d_name + bl + 5;
		if (!*p || strspn(p, "0123456789") != strlen(p))
			continue;
		pid = strtol(p, NULL, 10);
		if (pid == (long)getpid())
			continue;
		full = path_join(dir, de->d_name);
		if (full && unlink(full) == 0)
			logf_engine("removed stale temporary '%s'", full);
		free(full);
	}
	if (d)
		closedir(d);
	free(copy);
}

/* ---- watches ---------------------------------------------------------- */

static struct watch *watch_by_wd(struct engine *en, int wd)
{
	size_t i;

	for (i = 0; i < en->nw; i++)
		if (en->w[i].wd == wd)
			return &en->w[i];
	return NULL;
}

/* Watch dir for flags; returns the wd or -1 (missing directory, limit). */
static int watch_add(struct engine *en, const char *dir, unsigned flags)
{
	struct watch *w, *v;
	size_t n;
	int wd;

	if (en->ifd < 0)
		return -1;
	wd = inotify_add_watch(en->ifd, dir, WATCH_MASK);
	if (wd < 0)
		return -1;
	w = watch_by_wd(en, wd);
	if (w) {
		w->flags |= flags;
		return wd;
	}
	if (en->nw == en->walloc) {
		n = en->walloc ? en->walloc * 2 : 16;
		v = realloc(en->w, n * sizeof(*v));
		if (!v)
			goto fail;
		en->w = v;
		en->walloc = n;
	}
	w = &en->w[en->nw];
	w->dir = strdup(dir);
	if (!w->dir)
		goto fail;
	w->wd = wd;
	w->flags = flags;
	w->input = NULL;
	en->nw++;
	return wd;
fail:
	inotify_rm_watch(en->ifd, wd);
	return -1;
}

/* The watch is gone (IN_IGNORED): forget it and the artifacts' wd. */
static void watch_forget(struct engine *en, int wd)
{
	size_t i, j;

	for (i = 0; i < en->nrs; i++)
		for (j = 0; j < en->rs[i].narts; j++)
			if (en->rs[i].arts[j].wd == wd)
				en->rs[i].arts[j].wd = -1;
	for (i = 0; i < en->nw; i++) {
		if (en->w[i].wd != wd)
			continue;
		free(en->w[i].dir);
		en->w[i] = en->w[en->nw - 1];
		en->nw--;
		return;
	}
}

/* Watch the directory of every artifact that has no watch yet. */
static void watch_artifacts(struct engine *en, struct rstate *rs)
{
	struct artifact *a;
	char *copy;
	size_t i;

	for (i = 0; i < rs->narts; i++) {
		a = &rs->arts[i];
		if (a->wd >= 0)
			continue;
		copy = strdup(a->path);
		if (!copy)
			return;
		a->wd = watch_add(en, dirname(copy), W_FILES);
		free(copy);
	}
}

/* Watch the manifests directory tree (not .git), recursively. */
static void watch_tree(struct engine *en, const char *dir, int depth)
{
	struct dirent *de;
	struct stat st;
	char *sub;
	DIR *d;

	if (depth > 32 || watch_add(en, dir, W_MANIFESTS) < 0)
		return;
	d = opendir(dir);
	while (d && (de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, ".git"))
			continue;
		sub = path_join(dir, de->d_name);
		if (sub && stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			watch_tree(en, sub, depth + 1);
		free(sub);
	}
	if (d)
		closedir(d);
}

/* ---- git -------------------------------------------------------------- */

/*
 * Run git -C dir ARGS... without a shell; its stdout (first
 * GIT_OUTPUT_MAX bytes, the rest drained) goes to out. Returns git's exit
 * status, or -1 when it could not run.
 */
static int run_git(const char *dir, const char *const *args, struct buf *out)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	const char *argv[16];
	char chunk[4096];
	sigset_t none, def;
	int pfd[2] = { -1, -1 }, status = 0, rc = -1;
	size_t i, n = 0;
	ssize_t got;
	pid_t pid;

	argv[n++] = "git";
	argv[n++] = "--no-optional-locks";
	argv[n++] = "-C";
	argv[n++] = dir;
	for (i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &def);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (posix_spawnp(&pid, "git", &fa, &attr, (char *const *)argv,
			 environ) != 0)
		goto out;
	close(pfd[1]);
	pfd[1] = -1;
	for (;;) {
		got = read(pfd[0], chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		if (out->len < GIT_OUTPUT_MAX)
			buf_add(out, chunk, (size_t)got);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
out:
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	return rc;
}

/* HEAD's commit of the checkout at dir into rev ("" when dir is not a git
 * checkout or has no commit), and whether its work tree (under dir) is
 * dirty. */
static void git_state(const char *dir, char rev[64], bool *dirty)
{
	static const char *const head[] = { "rev-parse", "--verify", "-q",
					    "HEAD", NULL };
	static const char *const st[] = { "status", "--porcelain",
					  "--untracked-files=normal", "--",
					  ".", NULL };
	struct buf b = BUF_INIT;

	rev[0] = '\0';
	*dirty = false;
	if (run_git(dir, head, &b) == 0 && b.len >= 40 &&
	    strspn(b.ptr, "0123456789abcdef") >= 40)
		snprintf(rev, 64, "%.*s", (int)strspn(b.ptr, "0123456789abcdef"),
			 b.ptr);
	buf_reset(&b);
	if (rev[0] && run_git(dir, st, &b) == 0)
		*dirty = b.len > 0;
	buf_release(&b);
}

/* The checkout's git directory (absolute), or NULL. */
static char *git_dir_of(const char *dir)
{
	static const char *const args[] = { "rev-parse", "--absolute-git-dir",
					    NULL };
	struct buf b = BUF_INIT;
	char *r = NULL;

	if (run_git(dir, args, &b) == 0 && b.len > 1 && b.ptr[0] == '/') {
		b.ptr[strcspn(b.ptr, "\n")] = '\0';
		r = strdup(b.ptr);
	}
	buf_release(&b);
	return r;
}

/* ---- the reconcile context -------------------------------------------- */

struct rctx {
	struct engine *en;
	struct rstate *rs;
	json_t *cache;           /* collection -> array of records */
	json_t *warnings;
	json_t *drift;           /* events of this pass */
	char now[TIME_LEN + 1];
	int64_t requeue_ms;      /* -1: none */
	bool wrote;              /* a file was replaced or removed */
};

static int collect_record(const struct record *r, void *arg)
{
	json_t *j = record_to_json(r);

	if (!j || json_array_append_new(arg, j))
		return ERR_NOMEM;
	return 0;
}

int rctx_records(struct rctx *c, const char *collection, json_t **out,
		 struct err *e)
{
	json_t *arr;
	int rc;

	*out = NULL;
	if (!reads_has(c->rs->r, collection))
		return err_set(e, ERR_INVALID,
			       "reconciler '%s' reads '%s' without declaring it",
			       c->rs->name, collection);
	arr = json_object_get(c->cache, collection);
	if (arr) {
		*out = arr;
		return 0;
	}
	arr = json_array();
	if (!arr)
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = store_list(c->en->store, collection, NULL, collect_record, arr, e);
	if (rc) {
		if (rc == ERR_NOMEM)   /* from collect_record: e not set */
			err_set(e, ERR_NOMEM, "out of memory");
		json_decref(arr);
		return rc;
	}
	/* arr is stolen by the cache, even when this fails. */
	if (json_object_set_new(c->cache, collection, arr))
		return err_set(e, ERR_NOMEM, "out of memory");
	*out = arr;                /* borrowed from the cache */
	return 0;
}

struct store *rctx_store(struct rctx *c)
{
	return c->en->store;
}

void rctx_watch_dir(struct rctx *c, const char *dir)
{
	struct watch *w;
	char *copy;
	int wd;

	wd = watch_add(c->en, dir, W_INPUT);
	if (wd < 0) {
		/* missing: its parent, to see it appear */
		copy = strdup(dir);
		wd = copy ? watch_add(c->en, dirname(copy), W_INPUT) : -1;
		free(copy);
	}
	w = wd >= 0 ? watch_by_wd(c->en, wd) : NULL;
	if (w)
		w->input = c->rs->name;
}

const char *rctx_path(struct rctx *c, enum path_id id)
{
	return paths_get(&c->en->paths, id);
}

char *rctx_opencode_path(struct rctx *c, const char *name)
{
	const char *p = rctx_path(c, PATH_AGENTS_DIR);
	char *copy, *dir;

	if (!p)
		p = rctx_path(c, PATH_OPENCODE_JSON);
	if (!p || !(copy = strdup(p)))
		return NULL;
	dir = path_join(dirname(copy), name);
	free(copy);
	return dir;
}

const char *rctx_now(struct rctx *c)
{
	return c->now;
}

json_t *rctx_warnings(struct rctx *c)
{
	return c->warnings;
}

void rctx_requeue_after(struct rctx *c, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	if (c->requeue_ms < 0 || ms < c->requeue_ms)
		c->requeue_ms = ms;
}

void rctx_keep(struct rctx *c, const char *path, const struct err *err)
{
	struct artifact *a = art_get(c->rs, path);

	if (!a)
		return;
	a->declared = true;
	art_set_error(a, "NotRendered", err ? err->msg : NULL);
}

int rctx_read(struct rctx *c, const char *path, struct buf *out,
	      bool *exists, struct err *e)
{
	struct stat st;

	(void)c;
	*exists = false;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return err_set(e, ERR_IO, "cannot read '%s': %s", path,
			       strerror(errno));
	}
	if (!S_ISREG(st.st_mode))
		return err_set(e, ERR_IO, "cannot read '%s': %s is in the way",
			       path, S_ISDIR(st.st_mode) ? "a directory" :
			       "something that is not a regular file");
	*exists = true;
	return buf_read_file(out, path, e);
}

static void add_event(json_t *events, const char *type, const char *reason,
		      const char *file, const char *message, const char *now)
{
	json_t *ev = json_object();

	if (!ev)
		return;
	json_object_set_new(ev, "type", jstr(type));
	json_object_set_new(ev, "reason", jstr(reason));
	json_object_set_new(ev, "file", jstr(file));
	json_object_set_new(ev, "message", jstr(message));
	json_object_set_new(ev, "time", jstr(now));
	json_array_append_new(events, ev);
}

int rctx_write(struct rctx *c, const char *path, const struct buf *data,
	       mode_t mode, bool *written, struct err *e)
{
	struct artifact *a;
	struct buf cur = BUF_INIT;
	struct stat st;
	char want[SHA_HEX], have[SHA_HEX] = "", msg[512];
	const char *drift = NULL;
	unsigned have_mode = 0;
	int rc = 0;

	if (written)
		*written = false;
	a = art_get(c->rs, path);
	if (!a)
		return err_set(e, ERR_NOMEM, "out of memory");
	a->declared = true;
	if (!a->cleaned)
		clean_stale_tmp(a);
	sha256_hex(data->ptr, data->len, want);
	mode &= 07777;
	if (lstat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			rc = err_set(e, ERR_IO,
				     "cannot write '%s': a directory is in the way",
				     path);
			goto out;
		}
		if (S_ISREG(st.st_mode) &&
		    buf_read_file(&cur, path, NULL) == 0) {
			sha256_hex(cur.ptr, cur.len, have);
			have_mode = st.st_mode & 07777;
			if (cur.len == data->len &&
			    !memcmp(cur.ptr, data->ptr, data->len) &&
			    have_mode == mode)
				goto same;
			if (a->sha[0] && strcmp(have, a->sha))
				drift = "Modified";
			else if (a->sha[0] && a->mode == mode &&
				 have_mode != mode)
				drift = "ModeChanged";
		} else if (a->sha[0]) {
			drift = "Replaced";
		}
	} else if (errno == ENOENT && a->sha[0]) {
		drift = "Deleted";
	}
	rc = fs_write_atomic(path, data->ptr, data->len, mode, e);
	if (rc)
		goto out;
	if (written)
		*written = true;
	c->wrote = true;
	c->rs->writes++;
	logf_engine("%s: wrote '%s' (%zu bytes)", c->rs->name, path,
		    data->len);
	if (drift) {
		snprintf(msg, sizeof(msg), "'%s' was %s outside pocketctl; restored",
			 path, !strcmp(drift, "Deleted") ? "deleted" :
			 !strcmp(drift, "ModeChanged") ? "given another mode" :
			 !strcmp(drift, "Replaced") ? "replaced" : "modified");
		add_event(c->drift, "DriftCorrected", drift, path, msg, c->now);
		logf_engine("%s: DriftCorrected: %s", c->rs->name, msg);
	}
same:
	memcpy(a->sha, want, sizeof(want));
	a->mode = mode;
	art_set_error(a, NULL, NULL);
out:
	if (rc) {
		art_set_error(a, "WriteFailed", e ? e->msg : "write failed");
		/* The directory may exist now even though the write failed. */
	}
	buf_release(&cur);
	return rc;
}

/*
 * True when path lies in (or below) one of the directories the current
 * paths configuration renders into: agents_dir itself and the parent of
 * every other path (so <root>/workspace/.opencode/skills/<name>/SKILL.md
 * counts). A file owned under an older root or an older configuration is
 * let go, not deleted: changing --root must never delete the files of the
 * previous one.
 */
static bool in_rendered_dir(const struct engine *en, const char *path)
{
	const char *p, *slash;
	size_t pl, i;

	for (i = 0; i < PATH__COUNT; i++) {
		p = paths_get(&en->paths, (enum path_id)i);
		if (!p)
			continue;
		pl = strlen(p);
		if (i != PATH_AGENTS_DIR) {
			slash = strrchr(p, '/');
			pl = slash ? (size_t)(slash - p) : 0;
		}
		if (pl && !strncmp(p, path, pl) && path[pl] == '/')
			return true;
	}
	return false;
}

/*
 * After a good pass: delete the files the reconciler owned before but did
 * not declare this time - only when they are in a directory we render into
 * and still hold what we wrote (a file changed by hand, or left under an
 * older root, is let go with a warning, not deleted).
 */
static int collect_garbage(struct rctx *c, struct err *e)
{
	struct rstate *rs = c->rs;
	struct artifact *a;
	size_t i = rs->narts;
	int rc = 0;

	while (i-- > 0) {
		a = &rs->arts[i];
		if (a->declared)
			continue;
		if (!in_rendered_dir(c->en, a->path)) {
			logf_engine("%s: no longer managing '%s' (outside the configured paths); left in place",
				    rs->name, a->path);
		} else if (art_intact(a)) {
			if (unlink(a->path) < 0 && errno != ENOENT) {
				if (!rc)
					rc = err_set(e, ERR_IO,
						     "cannot remove '%s': %s",
						     a->path, strerror(errno));
				art_set_error(a, "RemoveFailed",
					      e ? e->msg : "cannot remove");
				a->declared = true;
				continue;
			}
			c->wrote = true;
			logf_engine("%s: removed '%s' (no longer rendered)",
				    rs->name, a->path);
		} else if (a->sha[0] && access(a->path, F_OK) == 0) {
			char msg[600];

			snprintf(msg, sizeof(msg),
				 "'%s' is no longer rendered but was changed by hand: left in place, no longer managed",
				 a->path);
			json_array_append_new(c->warnings, jstr(msg));
		}
		art_remove(rs, i);
	}
	return rc;
}

/* ---- status ----------------------------------------------------------- */

static json_t *art_json(const struct artifact *a)
{
	char mode[16];

	snprintf(mode, sizeof(mode), "%04o", a->mode);
	return json_pack("{s:o, s:s, s:s, s:o, s:o}",
			 "path", jstr(a->path),
			 "sha256", a->sha,
			 "mode", a->sha[0] ? mode : "",
			 "conditions", json_deep_copy(a->conds),
			 "lastError", jstr(a->error ? a->error : ""));
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
		       "lastError", jstr(rs->last_error ? rs->last_error : ""),
		       "nextRetryTime", rs->next_retry,
		       "warnings", json_deep_copy(rs->warnings),
		       "artifacts", arts,
		       "events", json_deep_copy(rs->events));
	if (st && rs->extra && json_object_update(st, rs->extra)) {
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
		art = art_get(rs, path);
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
	if (rs->extra) {
		static const char *const keep[] = {
			"directory", "git", "lastAppliedRevision",
			"lastAttemptedRevision", "dirty", "lastApply", NULL
		};
		for (i = 0; keep[i]; i++) {
			v = json_object_get(st, keep[i]);
			if (v)
				json_object_set(rs->extra, keep[i], v);
		}
	}
	json_decref(rs->written);
	rs->written = json_deep_copy(st);
}

/* Create (or find) the key's reconcile_status record and load it. */
static int ensure_record(struct engine *en, struct rstate *rs, struct err *e)
{
	struct store_txn *t = NULL;
	struct store_put p;
	struct record r;
	json_t *data = NULL, *reads;
	size_t i;
	int rc;

	record_init(&r);
	reads = json_array();
	for (i = 0; rs->r && rs->r->reads && rs->r->reads[i]; i++)
		json_array_append_new(reads, jstr(rs->r->reads[i]));
	data = json_pack("{s:s, s:o, s:o}", "name", rs->name,
			 "description",
			 jstr(rs->r ? rs->r->description :
			      "re-apply of the watched manifests directory"),
			 "reads", reads);
	if (!data) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
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
	memcpy(rs->id, r.id, sizeof(rs->id));
	load_state(rs, r.status);
out:
	json_decref(data);
	record_release(&r);
	return rc;
}

/* Records the pass read whose observedGenerations.<name> is not their
 * generation yet: todo gets {collection, id, generation}. */
static void collect_observed(const struct rstate *rs, json_t *cache,
			     json_t *todo)
{
	const char *coll;
	json_t *arr, *rec, *by, *cur;
	json_int_t gen;
	size_t i;

	json_object_foreach(cache, coll, arr) {
		json_array_foreach(arr, i, rec) {
			gen = json_integer_value(json_object_get(rec,
								 "generation"));
			by = json_object_get(json_object_get(rec, "status"),
					     "observedGenerations");
			cur = json_object_get(by, rs->name);
			if (json_is_integer(cur) && json_integer_value(cur) == gen)
				continue;
			json_array_append_new(todo, json_pack(
				"{s:s, s:s, s:I}", "collection", coll, "id",
				json_string_value(json_object_get(rec, "id")),
				"generation", gen));
		}
	}
}

/* Write one record's observedGenerations / observedGeneration, merged
 * into its current status, unless it changed since the pass read it. */
static int observe_one(struct engine *en, struct store_txn *t,
		       const struct rstate *rs, json_t *item, struct err *e)
{
	const char *coll = json_string_value(json_object_get(item, "collection"));
	const char *id = json_string_value(json_object_get(item, "id"));
	json_int_t gen = json_integer_value(json_object_get(item, "generation"));
	json_int_t min = 0;
	json_t *st = NULL, *by, *v;
	struct record r;
	bool all = true;
	size_t i;
	int rc;

	record_init(&r);
	if (!coll || !id)
		return 0;
	rc = store_txn_get(t, coll, id, &r, e);
	if (rc == ERR_NOT_FOUND) {
		err_clear(e);
		rc = 0;
		goto out;
	}
	if (rc || r.generation != gen)
		goto out;
	st = json_is_object(r.status) ? json_deep_copy(r.status) : json_object();
	by = json_object_get(st, "observedGenerations");
	if (!json_is_object(by)) {
		by = json_object();
		json_object_set_new(st, "observedGenerations", by);
	}
	json_object_set_new(by, rs->name, json_integer(gen));
	for (i = 0; i < en->nrs; i++) {
		if (!reads_has(en->rs[i].r, coll))
			continue;
		v = json_object_get(by, en->rs[i].name);
		if (!json_is_integer(v)) {
			all = false;
			break;
		}
		if (min == 0 || json_integer_value(v) < min)
			min = json_integer_value(v);
	}
	if (all)
		json_object_set_new(st, "observedGeneration", json_integer(min));
	rc = store_txn_set_status(t, coll, id, st, e);
out:
	json_decref(st);
	record_release(&r);
	return rc;
}

/*
 * Store rs's status when it differs from what was stored last, and the
 * observedGeneration updates of todo (nullable). Failures are logged: the
 * next pass tries again.
 */
static void persist(struct engine *en, struct rstate *rs, json_t *todo)
{
	struct store_txn *t = NULL;
	struct err e = ERR_INIT;
	json_t *status = build_status(rs);
	size_t n = todo ? json_array_size(todo) : 0, i = 0, k;
	bool same;
	int rc = 0, tries = 0;

	if (!status)
		return;
	same = rs->written && json_equal(status, rs->written);
	while (!same || i < n) {
		rc = store_begin(en->store, &t, &e);
		if (rc)
			break;
		if (!same)
			rc = store_txn_set_status(t, ENGINE_STATUS_COLLECTION,
						  rs->id, status, &e);
		for (k = 0; !rc && k < OBS_CHUNK && i < n; k++, i++)
			rc = observe_one(en, t, rs, json_array_get(todo, i), &e);
		if (rc) {
			store_abort(t);
			if (rc == ERR_NOT_FOUND && !same && tries++ == 0 &&
			    ensure_record(en, rs, &e) == 0) {
				i = 0;
				continue;
			}
			break;
		}
		rc = store_commit(t, &e);
		if (rc)
			break;
		if (!same) {
			json_decref(rs->written);
			rs->written = json_incref(status);
			same = true;
		}
	}
	if (rc)
		logf_engine("%s: cannot store status: %s", rs->name, e.msg);
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
static void set_conditions(struct rstate *rs, int rc, const struct err *e,
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
		cond_set(rs->conds, "Ready", "True",
			 nw ? "ReconciledWithWarnings" : "Reconciled",
			 nw ? "files match the store; see warnings for records that were skipped or overridden" :
			      "files match the store", now);
		cond_set(rs->conds, "Reconciling", "False", "Reconciled", "",
			 now);
		if (nw) {
			snprintf(msg, sizeof(msg), "%s%s",
				 json_string_value(json_array_get(warnings, 0)),
				 nw > 1 ? " (and more, see warnings)" : "");
			cond_set(rs->conds, "Degraded", "True", "RenderWarnings",
				 msg, now);
		} else {
			cond_set(rs->conds, "Degraded", "False", "Reconciled",
				 "", now);
		}
	} else {
		rs->failures++;
		free(rs->last_error);
		rs->last_error = strdup(e->msg);
		wall_after(delay, rs->next_retry);
		cond_set(rs->conds, "Ready", "False", reason_of(rc), e->msg,
			 now);
		snprintf(msg, sizeof(msg), "attempt %d failed; retrying in %lld ms",
			 rs->failures, (long long)delay);
		cond_set(rs->conds, "Reconciling", "True", "RetryScheduled", msg,
			 now);
		cond_set(rs->conds, "Degraded", "True", reason_of(rc), e->msg,
			 now);
	}
	json_decref(rs->warnings);
	rs->warnings = json_deep_copy(warnings);
	for (i = 0; i < rs->narts; i++) {
		a = &rs->arts[i];
		if (a->error) {
			cond_set(a->conds, "Ready", "False", a->reason, a->error,
				 now);
			cond_set(a->conds, "Degraded", "True", a->reason,
				 a->error, now);
		} else {
			cond_set(a->conds, "Ready", "True", "UpToDate",
				 "matches the store", now);
			cond_set(a->conds, "Degraded", "False", "UpToDate", "",
				 now);
		}
	}
}

/* ---- running keys ----------------------------------------------------- */

static void trim_events(json_t *events)
{
	while (json_array_size(events) > ENGINE_EVENTS_KEPT)
		json_array_remove(events, 0);
}

/* Enqueue the reconcilers that read rendered files ("@files"). */
static void trigger_files(struct engine *en, const struct rstate *self)
{
	size_t i;

	for (i = 0; i < en->nrs; i++)
		if (&en->rs[i] != self &&
		    reads_has(en->rs[i].r, RECONCILER_READS_FILES))
			workq_add(en->q, en->rs[i].name, util_monotonic_ms());
}

static void run_reconciler(struct engine *en, struct rstate *rs)
{
	struct rctx c;
	struct err e = ERR_INIT;
	enum workq_outcome out;
	json_t *todo = NULL, *ev;
	int64_t t0 = util_monotonic_ms(), start_rev = rs->data_rev, delay;
	size_t i;
	int rc;

	memset(&c, 0, sizeof(c));
	c.en = en;
	c.rs = rs;
	c.requeue_ms = -1;
	c.cache = json_object();
	c.warnings = json_array();
	c.drift = json_array();
	util_now(c.now);
	if (!c.cache || !c.warnings || !c.drift) {
		rc = err_set(&e, ERR_NOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < rs->narts; i++)
		rs->arts[i].declared = false;
	rc = rs->r->reconcile(&c, &e);
	if (!rc)
		rc = collect_garbage(&c, &e);
	if (rc && !e.msg[0])
		err_set(&e, rc, "reconciler '%s' failed (%s)", rs->name,
			err_name(rc));
done:
	out = rc ? WORKQ_FAILED : c.requeue_ms >= 0 ? WORKQ_REQUEUE : WORKQ_OK;
	delay = workq_done(en->q, rs->name, out, c.requeue_ms,
			   util_monotonic_ms());
	rs->passes++;
	atomic_fetch_add(&en->passes, 1);
	if (rc && rs->failures == 0)
		logf_engine("%s: Degraded: %s", rs->name, e.msg);
	else if (!rc && rs->failures > 0)
		logf_engine("%s: recovered after %d failed attempts", rs->name,
			    rs->failures);
	set_conditions(rs, rc, &e, delay, c.warnings, c.now);
	if (!rc) {
		rs->observed_rev = start_rev;
		todo = json_array();
		if (todo)
			collect_observed(rs, c.cache, todo);
	}
	json_array_foreach(c.drift, i, ev)
		json_array_append(rs->events, ev);
	trim_events(rs->events);
	persist(en, rs, todo);
	if (c.wrote)
		trigger_files(en, rs);
	watch_artifacts(en, rs);
	rs->last_ms = util_monotonic_ms() - t0;
	json_decref(todo);
	json_decref(c.cache);
	json_decref(c.warnings);
	json_decref(c.drift);
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
	git_state(en->manifests_dir, rev, &dirty);
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
	json_object_set_new(rs->extra, "directory", jstr(en->manifests_dir));
	json_object_set_new(rs->extra, "git", json_boolean(rev[0] != '\0'));
	json_object_set_new(rs->extra, "lastAttemptedRevision", jstr(rev));
	if (!rc) {
		json_object_set_new(rs->extra, "lastAppliedRevision", jstr(rev));
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
			logf_engine("manifests: applied '%s'%s%s: %lld created, %lld configured",
				    en->manifests_dir, rev[0] ? " at " : "",
				    rev,
				    (long long)json_integer_value(json_object_get(result, "created")),
				    (long long)json_integer_value(json_object_get(result, "configured")));
		set_conditions(rs, 0, &e, 0, warn, now);
		snprintf(msg, sizeof(msg), "applied '%s'%s%.12s%s",
			 en->manifests_dir, rev[0] ? " at " : "", rev,
			 rev[0] && dirty ? " (work tree dirty)" : "");
		cond_set(rs->conds, "Ready", "True", "Applied", msg, now);
	} else {
		logf_engine("manifests: %s", e.msg);
		set_conditions(rs, rc, &e, delay, warn, now);
		if (invalid) {
			cond_set(rs->conds, "Ready", "False", "InvalidManifests",
				 e.msg, now);
			cond_set(rs->conds, "Degraded", "True",
				 "InvalidManifests", e.msg, now);
			cond_set(rs->conds, "Reconciling", "False",
				 "WaitingForChange",
				 "nothing applied; waiting for the files to change",
				 now);
			rs->next_retry[0] = '\0';
		}
	}
	persist(en, rs, NULL);
	watch_tree(en, en->manifests_dir, 0);
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

static void enqueue_all(struct engine *en, bool manifests)
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
		if (!reads_has(en->rs[i].r, c->collection))
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
		logf_engine("change log trimmed past revision %lld: full pass",
			    (long long)en->last_rev);
		enqueue_all(en, false);
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
		logf_engine("cannot read the change log: %s", e.msg);
}

/* ---- inotify ------------------------------------------------------------ */

static void debounce_manifests(struct engine *en)
{
	if (en->mrs)
		workq_add_after(en->q, en->mrs->name,
				util_monotonic_ms() + en->debounce_ms);
}

static void handle_event(struct engine *en, const struct inotify_event *ev)
{
	const char *name = ev->len ? ev->name : "";
	bool self = ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED);
	struct artifact *a;
	struct watch *w;
	size_t i, j, n;
	unsigned flags;

	if (ev->mask & IN_Q_OVERFLOW) {
		logf_engine("inotify queue overflow: full pass");
		enqueue_all(en, false);
		debounce_manifests(en);
		return;
	}
	w = watch_by_wd(en, ev->wd);
	if (!w)
		return;
	flags = w->flags;
	if (flags & W_FILES) {
		for (i = 0; i < en->nrs; i++) {
			for (j = 0; j < en->rs[i].narts; j++) {
				a = &en->rs[i].arts[j];
				if (a->wd == ev->wd &&
				    (self || !strcmp(a->base, name)))
					a->suspect = true;
			}
		}
	}
	if ((flags & W_INPUT) && w->input)
		workq_add_after(en->q, w->input,
				util_monotonic_ms() + en->debounce_ms);
	if ((flags & W_MANIFESTS) &&
	    !((ev->mask & IN_ISDIR) && !strcmp(name, ".git")))
		debounce_manifests(en);
	if ((flags & W_GIT_DIR) && !strcmp(name, "HEAD"))
		debounce_manifests(en);
	n = strlen(name);
	if ((flags & W_GIT_REFS) && n &&
	    !(n >= 5 && !strcmp(name + n - 5, ".lock")))
		debounce_manifests(en);
	if (ev->mask & IN_IGNORED)
		watch_forget(en, ev->wd);
}

/* Files inotify flagged: enqueue the owner of any that is no longer what
 * we wrote (our own renames land here too and are recognised by hash). */
static void check_suspects(struct engine *en)
{
	struct artifact *a;
	size_t i, j;

	for (i = 0; i < en->nrs; i++) {
		for (j = 0; j < en->rs[i].narts; j++) {
			a = &en->rs[i].arts[j];
			if (!a->suspect)
				continue;
			a->suspect = false;
			if (!art_intact(a))
				workq_add(en->q, en->rs[i].name,
					  util_monotonic_ms());
		}
	}
}

static void read_inotify(struct engine *en)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;
	char *p;

	if (en->ifd < 0)
		return;
	for (;;) {
		n = read(en->ifd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (p = buf; p < buf + n;
		     p += sizeof(struct inotify_event) + ev->len) {
			ev = (const struct inotify_event *)(void *)p;
			handle_event(en, ev);
		}
	}
	check_suspects(en);
}

/* ---- the thread --------------------------------------------------------- */

static int64_t jittered(struct engine *en, int64_t ms)
{
	/* +-10%, so that several servers do not resync in lock step. */
	return ms - ms / 10 + (int64_t)(rand_r(&en->rng) % 1000) * (ms / 5) / 1000;
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
	for (i = 0; rs->r && rs->r->reads && rs->r->reads[i]; i++)
		json_array_append_new(reads, jstr(rs->r->reads[i]));
	workq_info(en->q, rs->name, &qi);
	if (qi.processing)
		state = "processing";
	else if (qi.ready)
		state = "ready";
	else if (qi.delayed)
		state = "delayed";
	json_object_set_new(o, "name", jstr(rs->name));
	json_object_set_new(o, "description",
			    jstr(rs->r ? rs->r->description :
				 "re-apply of the watched manifests directory"));
	json_object_set_new(o, "reads", reads);
	json_object_set_new(o, "queue", json_pack("{s:s, s:i}", "state", state,
						  "failures", qi.failures));
	json_object_set_new(o, "passes", json_integer((json_int_t)rs->passes));
	json_object_set_new(o, "writes", json_integer((json_int_t)rs->writes));
	json_object_set_new(o, "lastPassMs", json_integer(rs->last_ms));
	return o;
}

/* Publish the status snapshot engine_status() serves. */
static void publish(struct engine *en)
{
	json_t *snap = json_object(), *list = json_array(), *paths = json_object();
	json_t *old;
	size_t i;

	if (!snap || !list || !paths)
		goto fail;
	for (i = 0; i < en->nrs; i++)
		if (json_array_append_new(list, rstate_json(en, &en->rs[i])))
			goto fail;
	for (i = 0; i < PATH__COUNT; i++) {
		const char *p = paths_get(&en->paths, (enum path_id)i);

		json_object_set_new(paths, paths_key((enum path_id)i),
				    p ? jstr(p) : json_null());
	}
	json_object_set_new(snap, "root", jstr(en->root));
	json_object_set_new(snap, "pathsConfig",
			    en->paths.config ? jstr(en->paths.config) :
					       json_null());
	json_object_set_new(snap, "paths", paths);
	paths = NULL;
	json_object_set_new(snap, "observedRevision",
			    json_integer(en->last_rev));
	json_object_set_new(snap, "reconcilers", list);
	list = NULL;
	if (en->mrs)
		json_object_set_new(snap, "manifests", rstate_json(en, en->mrs));
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
		enqueue_all(en, true);
		en->full_seen = req;
		pending = req;
	}
	if (now >= en->next_resync) {
		enqueue_all(en, false);
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
			run_reconciler(en, rs);
		else
			run_manifests(en, rs);
		ran = true;
	}
	/* Publish first: whoever sees full_done must see this pass's status. */
	if (ran || pending)
		publish(en);
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
		watch_artifacts(en, &en->rs[i]);
	if (en->mrs) {
		watch_tree(en, en->manifests_dir, 0);
		en->git_dir = git_dir_of(en->manifests_dir);
		if (en->git_dir) {
			watch_add(en, en->git_dir, W_GIT_DIR);
			refs = path_join(en->git_dir, "refs/heads");
			if (refs)
				watch_add(en, refs, W_GIT_REFS);
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
		read_inotify(en);
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
		art_release(&rs->arts[i]);
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
		rc = ensure_record(en, &en->rs[i], e);
	if (!rc && en->mrs)
		rc = ensure_record(en, en->mrs, e);
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
		logf_engine("inotify unavailable (%s): drift is corrected only by the periodic resync",
			    strerror(errno));
	rc = store_add_commit_hook(en->store, commit_hook, en, e);
	if (rc)
		goto out;
	en->hooked = true;
	publish(en);
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
