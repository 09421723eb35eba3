/*
 * rec_backups.c - scheduled backups of the store (serve --backup-every
 * DURATION --backup-keep N; off by default). Level-triggered on the
 * backups directory: a pass looks at its own files there
 * (DATA_DIR/backups/pocket-auto-<UTC>-r<revision>.db), makes a backup
 * through rctx_backup() when the newest is older than the interval (or
 * there is none), deletes its oldest files beyond N - never a file it did
 * not name - and asks for its next pass when the next one is due.
 *
 * Its status record "backups" says every, keep, count and lastBackup
 * {key, path, size, revision, modified}; a failed backup is the engine's
 * Degraded condition and lastError, retried with backoff. A backup runs on
 * the engine thread: it blocks no writer, but other reconcilers wait for
 * it (about a second for 100,000 records).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "reconciler.h"
#include "util.h"

#define AUTO_PREFIX "pocket-auto-"
#define BACKUPS_DIR "backups"          /* under the data directory */

struct bstate {
	char *dir;                /* DATA_DIR/backups */
	int64_t every_ms;
	int keep;
};

/* One of our files in the directory. */
struct own {
	char *name;
	int64_t mtime_ms;         /* wall clock */
	int64_t size;
};

static bool is_own(const char *name)
{
	size_t n = strlen(name), p = strlen(AUTO_PREFIX);

	return n > p + 3 && !strncmp(name, AUTO_PREFIX, p) &&
	       !strcmp(name + n - 3, ".db");
}

static int by_age(const void *a, const void *b)
{
	const struct own *x = a, *y = b;

	if (x->mtime_ms != y->mtime_ms)
		return x->mtime_ms < y->mtime_ms ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void own_free(struct own *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

/* Our files in dir, oldest first (*out, free with own_free()). A missing
 * directory holds none. */
static int list_own(const char *dir, struct own **out, size_t *n,
		    struct err *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct own *v = NULL, *grown;
	size_t cap = 0;
	struct stat st;
	char *path;
	int rc = 0;

	*out = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 :
		       err_set(e, ERR_IO, "cannot list '%s': %s", dir,
			       strerror(errno));
	while ((de = readdir(d))) {
		if (!is_own(de->d_name))
			continue;
		path = path_join(dir, de->d_name);
		if (!path) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			break;
		}
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
			free(path);
			continue;
		}
		free(path);
		if (*n == cap) {
			cap = cap ? 2 * cap : 8;
			grown = realloc(v, cap * sizeof(*v));
			if (!grown) {
				rc = err_set(e, ERR_NOMEM, "out of memory");
				break;
			}
			v = grown;
		}
		v[*n].name = strdup(de->d_name);
		if (!v[*n].name) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			break;
		}
		v[*n].mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 +
				 st.st_mtim.tv_nsec / 1000000;
		v[*n].size = (int64_t)st.st_size;
		(*n)++;
	}
	closedir(d);
	if (rc) {
		own_free(v, *n);
		*n = 0;
		return rc;
	}
	if (*n)
		qsort(v, *n, sizeof(*v), by_age);
	*out = v;
	return 0;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Delete our oldest files beyond keep; a file that will not go is a
 * warning (the next pass tries again). */
static void prune(struct rctx *c, const struct bstate *b, struct own *v,
		  size_t n)
{
	char *path;
	size_t i;

	for (i = 0; i + (size_t)b->keep < n; i++) {
		path = path_join(b->dir, v[i].name);
		if (path && unlink(path) < 0 && errno != ENOENT)
			json_array_append_new(rctx_warnings(c), json_sprintf(
				"cannot delete old backup '%s': %s", path,
				strerror(errno)));
		free(path);
	}
}

/* The revision in NAME's "-r<revision>.db", or -1. */
static int64_t name_revision(const char *name)
{
	const char *r = strrchr(name, 'r');

	return r && r > name && r[-1] == '-' ? strtoll(r + 1, NULL, 10) : -1;
}

static int reconcile(struct rctx *c, struct err *e)
{
	struct bstate *b = rctx_state(c);
	struct own *v = NULL;
	char *path = NULL, msg[512], mod[TIME_LEN + 1];
	int64_t now, age, rev = 0, size = 0, next = b->every_ms;
	size_t n = 0;
	time_t secs;
	struct tm tm;
	int rc;

	rc = list_own(b->dir, &v, &n, e);
	if (rc)
		goto out;
	now = wall_ms();
	age = n ? now - v[n - 1].mtime_ms : b->every_ms;
	if (age < b->every_ms) {
		next = b->every_ms - age;
	} else {
		rc = rctx_backup(c, b->dir, AUTO_PREFIX, &path, &rev, &size, e);
		if (rc)
			goto out;
		rctx_log(c, "backup '%s': %lld bytes, revision %lld", path,
			 (long long)size, (long long)rev);
		own_free(v, n);
		rc = list_own(b->dir, &v, &n, e);
		if (rc)
			goto out;
		prune(c, b, v, n);
	}
	rctx_requeue_after(c, next);
	rctx_status_set(c, "every", json_sprintf("%llds",
			(long long)(b->every_ms / 1000)));
	rctx_status_set(c, "keep", json_integer(b->keep));
	rctx_status_set(c, "count", json_integer((json_int_t)
			(n < (size_t)b->keep ? n : (size_t)b->keep)));
	if (n) {
		const struct own *last = &v[n - 1];
		char *lp = path_join(b->dir, last->name);

		secs = (time_t)(last->mtime_ms / 1000);
		gmtime_r(&secs, &tm);
		strftime(mod, sizeof(mod), "%Y-%m-%d %H:%M:%S.000Z", &tm);
		rctx_status_set(c, "lastBackup", json_pack(
			"{s:s, s:s?, s:I, s:I, s:s}", "key", last->name,
			"path", lp, "size", (json_int_t)last->size,
			"revision", (json_int_t)name_revision(last->name),
			"modified", mod));
		snprintf(msg, sizeof(msg),
			 "last backup %s (%lld bytes); next in %llds",
			 last->name, (long long)last->size,
			 (long long)((next + 999) / 1000));
		free(lp);
		rctx_condition(c, "Ready", "True", "BackedUp", msg);
	}
out:
	own_free(v, n);
	free(path);
	return rc;
}

/* On only with --backup-every; the state is the directory and schedule. */
static int start(const struct reconciler_env *env, void **state,
		 struct err *e)
{
	struct bstate *b;

	if (env->backup_every_ms <= 0)
		return RECONCILER_OFF;
	if (!env->data_dir)
		return err_set(e, ERR_INVALID,
			       "scheduled backups need a data directory");
	b = calloc(1, sizeof(*b));
	if (!b)
		return err_set(e, ERR_NOMEM, "out of memory");
	b->dir = path_join(env->data_dir, BACKUPS_DIR);
	b->every_ms = env->backup_every_ms;
	b->keep = env->backup_keep > 0 ? env->backup_keep : 1;
	if (!b->dir) {
		free(b);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	*state = b;
	return 0;
}

static void stop(void *state)
{
	struct bstate *b = state;

	if (!b)
		return;
	free(b->dir);
	free(b);
}

const struct reconciler rec_backups = {
	.name = "backups",
	.description = "scheduled backups of the store (--backup-every)",
	.start = start,
	.stop = stop,
	.reconcile = reconcile,
};
