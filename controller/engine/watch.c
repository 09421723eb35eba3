/*
 * watch.c - the engine's inotify side (see engine.h): the watched
 * directories (of owned files, of a reconciler's inputs, of the manifests
 * tree and its git checkout), the events that flag drift or debounce a
 * re-apply, and the few git commands that say which commit is applied.
 */
#include "engine_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"

extern char **environ;

#define GIT_OUTPUT_MAX 4096      /* bytes of git output kept */
#define WATCH_MASK (IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | \
		    IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF |    \
		    IN_MOVE_SELF | IN_ONLYDIR)

/* ---- watches ---------------------------------------------------------- */

struct watch *eng_watch_by_wd(struct engine *en, int wd)
{
	size_t i;

	for (i = 0; i < en->nw; i++)
		if (en->w[i].wd == wd)
			return &en->w[i];
	return NULL;
}

/* Watch dir (added through the name at, which may differ) for flags;
 * returns the wd or -1 (missing directory, limit). */
static int watch_add_at(struct engine *en, const char *at, const char *dir,
			unsigned flags)
{
	struct watch *w, *v;
	size_t n;
	int wd;

	if (en->ifd < 0)
		return -1;
	wd = inotify_add_watch(en->ifd, at, WATCH_MASK);
	if (wd < 0)
		return -1;
	w = eng_watch_by_wd(en, wd);
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

int eng_watch_add(struct engine *en, const char *dir, unsigned flags)
{
	return watch_add_at(en, dir, dir, flags);
}

int eng_watch_add_beneath(struct engine *en, const char *dir, unsigned flags)
{
	char at[64];
	int dfd, wd;

	/* The watch is added on the directory the confined walk opened (its
	 * /proc/self/fd name), never on whatever a symlink on the way points
	 * at; a refused walk leaves the directory unwatched and the next pass
	 * reports it. */
	dfd = fs_open_dir_beneath(en->paths.root, dir, false, NULL);
	if (dfd < 0)
		return -1;
	snprintf(at, sizeof(at), "/proc/self/fd/%d", dfd);
	wd = watch_add_at(en, at, dir, flags);
	close(dfd);
	return wd;
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

/*
 * Watch every directory from the root down to the parent of dir (W_PATH):
 * the watch of dir itself follows its inode, so a directory above it
 * renamed, deleted or swapped for a symlink would send it nothing. A path
 * outside the root (allow_outside_root) is the operator's: not watched.
 */
static void watch_path_to(struct engine *en, const char *dir)
{
	const char *root = en->paths.root;
	size_t rl = strlen(root), i;
	char *cur;

	while (rl > 1 && root[rl - 1] == '/')
		rl--;
	if (strncmp(dir, root, rl) || dir[rl] != '/')
		return;
	cur = strdup(dir);
	if (!cur)
		return;
	cur[rl] = '\0';
	if (eng_watch_add(en, cur, W_PATH) < 0)
		goto out;
	cur[rl] = '/';
	for (i = rl + 1; cur[i]; i++) {
		if (cur[i] != '/')
			continue;
		cur[i] = '\0';
		if (eng_watch_add_beneath(en, cur, W_PATH) < 0)
			goto out;  /* a link or a gap: nothing below is watched */
		cur[i] = '/';
	}
out:
	free(cur);
}

/* Watch the directory of every artifact that has no watch yet, and the
 * directories on its way from the root; one that changed before its
 * watch was in place is enqueued. */
void eng_watch_artifacts(struct engine *en, struct rstate *rs)
{
	struct artifact *a;
	char *copy, *dir;
	size_t i;

	for (i = 0; i < rs->narts; i++) {
		a = &rs->arts[i];
		if (a->wd >= 0)
			continue;
		copy = strdup(a->path);
		if (!copy)
			return;
		dir = dirname(copy);
		watch_path_to(en, dir);
		a->wd = eng_watch_add_beneath(en, dir, W_FILES);
		free(copy);
		/* A change between the write and this watch (the directory
		 * swapped, the file edited) sends no event: look once now
		 * (a failed artifact, or a reconciler whose last pass failed,
		 * is retried by its backoff instead: enqueued now it would
		 * run again at once, for ever). */
		if (a->sha[0] && !a->error && rs->failures == 0 &&
		    !eng_art_intact(en, a))
			workq_add(en->q, rs->name, util_monotonic_ms());
	}
}

/* Watch a directory tree (not .git), recursively, for input. */
void eng_watch_tree(struct engine *en, const char *dir, const char *input,
		    int depth)
{
	struct dirent *de;
	struct watch *w;
	struct stat st;
	char *sub;
	DIR *d;
	int wd;

	if (depth > 32)
		return;
	wd = eng_watch_add(en, dir, W_TREE);
	w = wd >= 0 ? eng_watch_by_wd(en, wd) : NULL;
	if (!w)
		return;
	w->input = input;
	d = opendir(dir);
	while (d && (de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, ".git"))
			continue;
		sub = path_join(dir, de->d_name);
		if (sub && stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			eng_watch_tree(en, sub, input, depth + 1);
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
void eng_git_state(const char *dir, char rev[64], bool *dirty)
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
char *eng_git_dir_of(const char *dir)
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

/* ---- inotify ------------------------------------------------------------ */

/* Drop the watch wd (it follows an inode that left the path). */
static void watch_drop(struct engine *en, int wd)
{
	inotify_rm_watch(en->ifd, wd);
	watch_forget(en, wd);
}

/*
 * An event in a directory on the way to owned files (W_PATH): when it
 * moved or went away itself, or an entry on the way below it was created,
 * deleted or renamed (a directory swapped for a symlink, with
 * renameat2(RENAME_EXCHANGE) too), every owned file below is looked at
 * (check_suspects()) and the watches below are dropped, to be added again
 * on the path as it is now (confined: not through a link). Events of
 * other entries (the agent's own files in its workspace) cost nothing.
 * Returns true when watches were dropped.
 */
static bool path_event(struct engine *en, const struct watch *w,
		       const struct inotify_event *ev, bool self)
{
	char *prefix = NULL;
	struct artifact *a;
	size_t i, j, pl;
	bool dropped = false;
	int wd = w->wd;

	if (!self && !(ev->len && (ev->mask & (IN_CREATE | IN_DELETE |
					       IN_MOVED_FROM | IN_MOVED_TO))))
		return false;
	if (asprintf(&prefix, "%s/%s%s", w->dir, self ? "" : ev->name,
		     self ? "" : "/") < 0)
		return false;
	pl = strlen(prefix);
	for (i = 0; i < en->nrs; i++) {
		for (j = 0; j < en->rs[i].narts; j++) {
			a = &en->rs[i].arts[j];
			if (strncmp(a->path, prefix, pl))
				continue;
			a->suspect = true;
			if (a->wd >= 0) {
				watch_drop(en, a->wd);
				dropped = true;
			}
		}
	}
	free(prefix);
	if (self && eng_watch_by_wd(en, wd)) {
		watch_drop(en, wd);
		dropped = true;
	}
	return dropped;
}

/* Returns true when watches were dropped (to be added again). */
static bool handle_event(struct engine *en, const struct inotify_event *ev)
{
	const char *name = ev->len ? ev->name : "";
	bool self = ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED);
	struct artifact *a;
	struct watch *w;
	size_t i, j, n;
	unsigned flags;

	if (ev->mask & IN_Q_OVERFLOW) {
		eng_log("inotify queue overflow: full pass");
		eng_enqueue_all(en, false);
		eng_debounce_sources(en);
		return false;
	}
	w = eng_watch_by_wd(en, ev->wd);
	if (!w)
		return false;
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
	n = strlen(name);
	if (w->input &&
	    ((flags & W_INPUT) ||
	     ((flags & W_TREE) &&
	      !((ev->mask & IN_ISDIR) && !strcmp(name, ".git"))) ||
	     ((flags & W_GIT_DIR) && !strcmp(name, "HEAD")) ||
	     ((flags & W_GIT_REFS) && n &&
	      !(n >= 5 && !strcmp(name + n - 5, ".lock")))))
		eng_debounce(en, w->input);
	if (ev->mask & IN_IGNORED) {
		watch_forget(en, ev->wd);
		return false;
	}
	if ((flags & W_PATH) && path_event(en, w, ev, self))
		return true;
	if ((flags & W_FILES) && (ev->mask & IN_MOVE_SELF) &&
	    eng_watch_by_wd(en, ev->wd)) {
		/* A watch follows its directory's inode: renamed away (a
		 * directory swapped for another, or for a symlink), it would
		 * keep reporting on the old one and never on the path we
		 * render into. Dropped here, it is added again on the path
		 * (confined). */
		watch_drop(en, ev->wd);
		return true;
	}
	return false;
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
			if (!eng_art_intact(en, a))
				workq_add(en->q, en->rs[i].name,
					  util_monotonic_ms());
		}
	}
}

void eng_read_inotify(struct engine *en)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;
	bool dropped = false;
	size_t i;
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
			if (handle_event(en, ev))
				dropped = true;
		}
	}
	check_suspects(en);
	/* Watches dropped with the path they followed: again on the path as
	 * it is now, at once (an artifact found changed is enqueued). */
	for (i = 0; dropped && i < en->nrs; i++)
		eng_watch_artifacts(en, &en->rs[i]);
}
