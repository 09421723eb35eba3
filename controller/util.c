/*
 * util.c - record ids, timestamps and file-system primitives (see util.h):
 * atomic replace-by-rename, and the confined walks that keep rendered
 * files from following a symlink out of --root.
 */
#include "util.h"

#include "buf.h"
#include "log.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <libgen.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Fill buf with n random bytes from getrandom(2). */
static void getrandom_all(unsigned char *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = getrandom(buf + got, n - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	/* getrandom() on Linux >= 3.17 does not fail for small reads; keep a
	 * defined result anyway. */
	for (; got < n; got++)
		buf[got] = (unsigned char)(rand() & 0xff);
}

/*
 * Random bytes for ids, drawn from getrandom(2) RANDOM_POOL bytes at a time
 * per thread: one system call per dozens of ids instead of one per id (a
 * create made 15 system calls in all). Each byte is used once. A process
 * that forked would repeat its parent's unused bytes in the child; this
 * program does not fork.
 */
#define RANDOM_POOL 512
static _Thread_local unsigned char tl_pool[RANDOM_POOL];
static _Thread_local size_t tl_pool_left;

static void random_bytes(unsigned char *buf, size_t n)
{
	size_t k;

	while (n > 0) {
		if (tl_pool_left == 0) {
			getrandom_all(tl_pool, sizeof(tl_pool));
			tl_pool_left = sizeof(tl_pool);
		}
		k = n < tl_pool_left ? n : tl_pool_left;
		memcpy(buf, tl_pool + sizeof(tl_pool) - tl_pool_left, k);
		/* a used byte is not kept around */
		memset(tl_pool + sizeof(tl_pool) - tl_pool_left, 0, k);
		tl_pool_left -= k;
		buf += k;
		n -= k;
	}
}

/* Fill out[0..n) with uniformly random chars of alphabet (36 chars):
 * bytes of 252 and above are drawn again, so that none is favoured. */
static void random_chars(char *out, size_t n, const char *alphabet)
{
	unsigned char b;
	size_t i = 0;

	while (i < n) {
		random_bytes(&b, 1);
		if (b < 252)
			out[i++] = alphabet[b % 36];
	}
}

void util_new_id(char out[ID_LEN + 1])
{
	random_chars(out, ID_LEN, "abcdefghijklmnopqrstuvwxyz0123456789");
	out[ID_LEN] = '\0';
}

/* 36^8 ms is 89 years: from 2020 until 2109 the time part keeps its order,
 * after that it wraps (ids stay valid and unique, only less local). */
#define RECORD_ID_EPOCH_MS 1577836800000LL   /* 2020-01-01T00:00:00Z */
#define RECORD_ID_TIME_LEN 8

void util_new_record_id(char out[ID_LEN + 1])
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	struct timespec ts;
	uint64_t ms;
	int i;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 -
			RECORD_ID_EPOCH_MS);
	for (i = RECORD_ID_TIME_LEN - 1; i >= 0; i--) {
		out[i] = digits[ms % 36];
		ms /= 36;
	}
	random_chars(out + RECORD_ID_TIME_LEN, ID_LEN - RECORD_ID_TIME_LEN,
		     digits);
	out[ID_LEN] = '\0';
}

static char build_id[2 * 64 + 1];
static pthread_once_t build_id_once = PTHREAD_ONCE_INIT;

/* dl_iterate_phdr() callback: the main program (the first object) only. */
static int find_build_id(struct dl_phdr_info *info, size_t size, void *arg)
{
	size_t i;

	(void)size;
	(void)arg;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const char *p, *end;

		if (ph->p_type != PT_NOTE)
			continue;
		p = (const char *)(info->dlpi_addr + ph->p_vaddr);
		end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)(const void *)p;
			const char *name = p + sizeof(*nh);
			const unsigned char *desc = (const unsigned char *)
				name + ((nh->n_namesz + 3) & ~3u);
			size_t k;

			if ((const char *)desc + nh->n_descsz > end)
				break;
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
			    !memcmp(name, "GNU", 4) && nh->n_descsz <= 64) {
				for (k = 0; k < nh->n_descsz; k++)
					snprintf(build_id + 2 * k, 3, "%02x",
						 desc[k]);
				return 1;
			}
			p = (const char *)desc + ((nh->n_descsz + 3) & ~3u);
		}
	}
	return 1;   /* the first object was the program: done */
}

static void build_id_init(void)
{
	dl_iterate_phdr(find_build_id, NULL);
}

const char *util_build_id(void)
{
	pthread_once(&build_id_once, build_id_init);
	return build_id;
}

bool util_valid_id(const char *s)
{
	int i;

	if (!s)
		return false;
	for (i = 0; i < ID_LEN; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
			return false;
	return s[ID_LEN] == '\0';
}

void util_now(char out[TIME_LEN + 1])
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	util_format_ms((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, out);
}

void util_format_ms(int64_t ms, char out[TIME_LEN + 1])
{
	/* The date and time of the last second formatted, per thread: a
	 * store put asks twice per record, so gmtime and strftime (most of
	 * this function) run once a second, not twice per write. */
	static _Thread_local int64_t last_secs = INT64_MIN;
	static _Thread_local char last[32];
	int64_t secs = ms / 1000;
	unsigned frac = (unsigned)(ms % 1000) % 1000u;
	size_t n;

	if (secs != last_secs) {
		time_t t = (time_t)secs;
		struct tm tm;

		gmtime_r(&t, &tm);
		last[0] = '\0';
		strftime(last, sizeof(last), "%Y-%m-%d %H:%M:%S", &tm);
		last_secs = secs;
	}
	n = strnlen(last, 19);  /* 19 for years 0 to 9999 */
	memcpy(out, last, n);
	out[n++] = '.';
	out[n++] = (char)('0' + frac / 100);
	out[n++] = (char)('0' + frac / 10 % 10);
	out[n++] = (char)('0' + frac % 10);
	out[n++] = 'Z';
	out[n] = '\0';
}

size_t util_format_int(int64_t v, char out[UTIL_INT_LEN])
{
	char digits[UTIL_INT_LEN], *p = digits + sizeof(digits);
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	size_t n;

	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--p = '-';
	n = (size_t)(digits + sizeof(digits) - p);
	memcpy(out, p, n);
	out[n] = '\0';
	return n;
}

uint64_t util_hash(const void *p, size_t n, uint64_t h)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ULL;
	return h;
}

int64_t util_env_int(const char *name, int64_t def, int64_t min,
		     int64_t max)
{
	const char *v = getenv(name);
	char *end = NULL;
	long long x;

	if (!v || !*v)
		return def;
	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || !end || *end || x < min || x > max) {
		log_msg(LOG_WARN, NULL, "ignoring %s='%s' (want %lld..%lld)",
			name, v, (long long)min, (long long)max);
		return def;
	}
	return x;
}

int64_t util_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fs_mkdirs(const char *path, struct err *e)
{
	char *p = NULL, *s;
	struct stat st;
	int rc = 0;

	p = strdup(path);
	if (!p)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			rc = err_set(e, ERR_IO, "cannot create directory '%s': %s",
				     p, strerror(errno));
			goto out;
		}
		if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
			rc = err_set(e, ERR_IO, "'%s' exists and is not a directory",
				     p);
			goto out;
		}
		*s = c;
		if (c == '\0')
			break;
		while (s[1] == '/')
			s++;
		if (s[1] == '\0')
			break;
	}
out:
	free(p);
	return rc;
}

/*
 * Write data[0..len) into dfd/name atomically: "<name>.tmp.<pid>" created
 * (O_NOFOLLOW), written, chmod'ed and synced, renamed over name, then dfd
 * synced. dir names dfd in messages. The temporary is removed on error.
 */
static int write_at(int dfd, const char *dir, const char *name,
		    const void *data, size_t len, mode_t mode, struct err *e)
{
	char tmp[NAME_MAX + 32];
	size_t off = 0;
	ssize_t n;
	int fd = -1, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", name, (long)getpid()) >=
	    (int)sizeof(tmp))
		return err_set(e, ERR_IO, "cannot write '%s/%s': name too long",
			       dir, name);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
		    O_NOFOLLOW, mode);
	if (fd < 0) {
		rc = err_set(e, ERR_IO, "cannot create '%s/%s': %s", dir, tmp,
			     strerror(errno));
		goto out;
	}
	while (off < len) {
		n = write(fd, (const char *)data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = err_set(e, ERR_IO, "cannot write '%s/%s': %s", dir,
				     tmp, strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
		rc = err_set(e, ERR_IO, "cannot sync '%s/%s': %s", dir, tmp,
			     strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = err_set(e, ERR_IO, "cannot close '%s/%s': %s", dir, tmp,
			     strerror(errno));
		goto out;
	}
	fd = -1;
	if (renameat(dfd, tmp, dfd, name) < 0) {
		rc = err_set(e, ERR_IO, "cannot rename into '%s/%s': %s", dir,
			     name, strerror(errno));
		goto out;
	}
	if (fsync(dfd) < 0)
		/* The new file is in place; only its durability is unknown. */
		return err_set(e, ERR_IO, "cannot sync directory '%s': %s", dir,
			       strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		unlinkat(dfd, tmp, 0);
	return rc;
}

int fs_write_atomic(const char *path, const void *data, size_t len,
		    mode_t mode, struct err *e)
{
	char *dcopy = NULL, *bcopy = NULL;
	const char *dir;
	int dfd = -1, rc = 0;

	dcopy = strdup(path);
	bcopy = strdup(path);
	if (!dcopy || !bcopy) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	dir = dirname(dcopy);
	rc = fs_mkdirs(dir, e);
	if (rc)
		goto out;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = err_set(e, ERR_IO, "cannot open directory '%s': %s", dir,
			     strerror(errno));
		goto out;
	}
	rc = write_at(dfd, dir, basename(bcopy), data, len, mode, e);
out:
	if (dfd >= 0)
		close(dfd);
	free(dcopy);
	free(bcopy);
	return rc;
}

/* ---- confined walks --------------------------------------------------- */

/* The message for component comp (named full) that openat refused. */
static int walk_error(int cur, const char *comp, const char *full, int err,
		      struct err *e)
{
	struct stat st;

	if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISLNK(st.st_mode))
			return err_set(e, ERR_IO, "'%s' is a symbolic link; "
				       "refusing to follow it", full);
		if (!S_ISDIR(st.st_mode))
			return err_set(e, ERR_IO, "'%s' exists and is not a "
				       "directory", full);
	}
	return err_set(e, ERR_IO, "cannot open directory '%s': %s", full,
		       strerror(err));
}

/*
 * Open base_fd/rel as a directory, one component at a time without
 * following symlinks; missing components are made when create. base names
 * base_fd in messages. Returns the fd or a negative ERR_*.
 */
static int walk_components(int base_fd, const char *base, const char *rel,
			   bool create, struct err *e)
{
	char *full = NULL, *comp, *end;
	size_t bl = strlen(base);
	int cur, next, rc;

	cur = openat(base_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return err_set(e, ERR_IO, "cannot open directory '%s': %s",
			       base, strerror(errno));
	full = malloc(bl + strlen(rel) + 2);
	if (!full) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto fail;
	}
	memcpy(full, base, bl);
	full[bl] = '/';
	strcpy(full + bl + 1, rel);
	for (comp = full + bl + 1; *comp; comp = end) {
		end = comp + strcspn(comp, "/");
		if (*end)
			*end++ = '\0';
		if (!*comp || !strcmp(comp, "."))
			goto next_comp;
		if (!strcmp(comp, "..")) {
			rc = err_set(e, ERR_IO, "refusing '..' in '%s/%s'",
				     base, rel);
			goto fail;
		}
		next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			      O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST) {
				rc = err_set(e, ERR_IO, "cannot create "
					     "directory '%s': %s", full,
					     strerror(errno));
				goto fail;
			}
			next = openat(cur, comp, O_RDONLY | O_DIRECTORY |
				      O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			if (errno == ENOENT)
				rc = err_set(e, ERR_NOT_FOUND, "'%s' is missing",
					     full);
			else
				rc = walk_error(cur, comp, full, errno, e);
			goto fail;
		}
		close(cur);
		cur = next;
next_comp:
		if (*end)
			end[-1] = '/';   /* restore for the next message */
	}
	free(full);
	return cur;
fail:
	free(full);
	close(cur);
	return rc;
}

/* Split path into its base (root or "/") and the part below it. */
static const char *split_base(const char *root, const char *path,
			      char **base)
{
	size_t rl = root ? strlen(root) : 0;

	while (rl > 1 && root[rl - 1] == '/')
		rl--;
	if (rl && !strncmp(path, root, rl) && path[rl] == '/') {
		*base = strndup(root, rl);
		return path + rl + 1;
	}
	*base = strdup(path[0] == '/' ? "/" : ".");
	return path[0] == '/' ? path + 1 : path;
}

int fs_openat_beneath(int dfd, const char *rel, int flags,
		      bool follow_symlinks)
{
	struct open_how how;
	int fd;

	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)flags;
	how.resolve = RESOLVE_BENEATH | (follow_symlinks ?
					 RESOLVE_NO_MAGICLINKS :
					 RESOLVE_NO_SYMLINKS);
	do
		fd = (int)syscall(SYS_openat2, dfd, rel, &how, sizeof(how));
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

int fs_open_dir_beneath(const char *root, const char *dir, bool create,
			struct err *e)
{
	char *base = NULL;
	const char *rel = split_base(root, dir, &base);
	int bfd = -1, fd;

	if (!base)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (create && strcmp(base, "/") && strcmp(base, ".")) {
		fd = fs_mkdirs(base, e);
		if (fd)
			goto out;
	}
	bfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (bfd < 0) {
		fd = errno == ENOENT ?
		     err_set(e, ERR_NOT_FOUND, "'%s' is missing", base) :
		     err_set(e, ERR_IO, "cannot open directory '%s': %s", base,
			     strerror(errno));
		goto out;
	}
	/* One system call when everything is there and clean; otherwise the
	 * walk by components creates what is missing and names what is in
	 * the way (and is the whole walk where openat2 is missing). */
	fd = *rel ? fs_openat_beneath(bfd, rel, O_RDONLY | O_DIRECTORY |
				      O_CLOEXEC, false) : -1;
	if (fd < 0)
		fd = walk_components(bfd, base, rel, create, e);
out:
	if (bfd >= 0)
		close(bfd);
	free(base);
	return fd;
}

/* Open the parent directory of path confined; *name points into path at
 * its last component. */
static int open_parent(const char *root, const char *path, bool create,
		       const char **name, char **dir, struct err *e)
{
	const char *slash = strrchr(path, '/');
	int fd;

	*dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path))
		     : strdup(".");
	*name = slash ? slash + 1 : path;
	if (!*dir)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (!path_component_ok(*name))
		return err_set(e, ERR_IO, "'%s' does not name a file", path);
	fd = fs_open_dir_beneath(root, *dir, create, e);
	return fd;
}

/* rc, or 0 (e cleared) when rc says a directory on the way is missing. */
static int missing_ok(int rc, struct err *e)
{
	if (rc != ERR_NOT_FOUND)
		return rc;
	err_clear(e);
	return 0;
}

int fs_write_beneath(const char *root, const char *path, const void *data,
		     size_t len, mode_t mode, struct err *e)
{
	const char *name;
	char *dir = NULL;
	int dfd, rc;

	dfd = open_parent(root, path, true, &name, &dir, e);
	rc = dfd < 0 ? dfd : write_at(dfd, dir, name, data, len, mode, e);
	if (dfd >= 0)
		close(dfd);
	free(dir);
	return rc;
}

int fs_read_beneath(const char *root, const char *path, struct buf *b,
		    struct stat *st, struct err *e)
{
	const char *name;
	char *dir = NULL, chunk[65536];
	ssize_t got;
	int dfd, fd = -1, rc;

	dfd = open_parent(root, path, false, &name, &dir, e);
	if (dfd < 0) {
		rc = missing_ok(dfd, e);
		goto out;
	}
	if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = errno == ENOENT ? 0 :
		     err_set(e, ERR_IO, "cannot read '%s': %s", path,
			     strerror(errno));
		goto out;
	}
	rc = 1;
	if (!S_ISREG(st->st_mode))
		goto out;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
		    O_NOCTTY);
	if (fd < 0 || fstat(fd, st) < 0) {
		rc = errno == ENOENT ? 0 :
		     err_set(e, ERR_IO, "cannot read '%s': %s", path,
			     strerror(errno));
		goto out;
	}
	if (!S_ISREG(st->st_mode))
		goto out;
	for (;;) {
		got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = err_set(e, ERR_IO, "cannot read '%s': %s", path,
				     strerror(errno));
			goto out;
		}
		if (!got)
			break;
		if (buf_add(b, chunk, (size_t)got)) {
			rc = err_set(e, ERR_TOO_LARGE, "'%s' is too large",
				     path);
			goto out;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	free(dir);
	return rc;
}

int fs_unlink_beneath(const char *root, const char *path, struct err *e)
{
	const char *name;
	char *dir = NULL;
	int dfd, rc = 0;

	dfd = open_parent(root, path, false, &name, &dir, e);
	if (dfd < 0)
		rc = missing_ok(dfd, e);
	else if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT) {
		rc = err_set(e, ERR_IO, "cannot remove '%s': %s", path,
			     strerror(errno));
	}
	if (dfd >= 0)
		close(dfd);
	free(dir);
	return rc;
}

char *path_join(const char *a, const char *b)
{
	size_t la = strlen(a);
	char *p;

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (*b == '/')
		b++;
	p = malloc(la + strlen(b) + 2);
	if (!p)
		return NULL;
	memcpy(p, a, la);
	p[la] = '/';
	strcpy(p + la + 1, b);
	return p;
}

bool path_component_ok(const char *name)
{
	if (!name || !*name || strchr(name, '/'))
		return false;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	return true;
}

void util_futex_wait(_Atomic uint32_t *word, uint32_t val,
		     int64_t deadline_ms)
{
	int64_t left = deadline_ms - util_monotonic_ms();
	struct timespec ts;

	if (left <= 0)
		return;
	ts.tv_sec = (time_t)(left / 1000);
	ts.tv_nsec = (long)(left % 1000) * 1000000L;
	/* A relative timeout; EINTR, EAGAIN and ETIMEDOUT all mean "look
	 * again", which the callers do. */
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, val, &ts,
		NULL, 0);
}

void util_futex_wake(_Atomic uint32_t *word)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL,
		NULL, 0);
}

int util_json_str(json_t *body, const char *key, bool required, size_t max,
		  const char **out, struct err *e)
{
	json_t *v = json_object_get(body, key);   /* borrowed */

	*out = json_is_string(v) ? json_string_value(v) : "";
	if (v && !json_is_null(v) && !json_is_string(v))
		return err_set_field(e, ERR_INVALID, key, "%s must be a string",
				     key);
	if (required && !**out)
		return err_set_field(e, ERR_INVALID, key, "%s is required",
				     key);
	if (max && strlen(*out) > max)
		return err_set_field(e, ERR_INVALID, key,
				     "%s is longer than %zu bytes", key, max);
	return 0;
}
