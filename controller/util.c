/*
 * util.c - record ids, timestamps and file-system primitives (see util.h).
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/futex.h>
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
	struct tm tm;

	char date[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(out, TIME_LEN + 1, "%.19s.%03uZ", date,
		 (unsigned)(ts.tv_nsec / 1000000) % 1000u);
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
		fprintf(stderr, "pocketctl: ignoring %s='%s' (want %lld..%lld)\n",
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

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int fs_write_atomic(const char *path, const void *data, size_t len,
		    mode_t mode, struct err *e)
{
	char *dcopy = NULL, *tmp = NULL;
	const char *dir;
	size_t off = 0;
	ssize_t n;
	int fd = -1, rc = 0;

	dcopy = strdup(path);
	tmp = malloc(strlen(path) + 32);
	if (!dcopy || !tmp) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	dir = dirname(dcopy);
	rc = fs_mkdirs(dir, e);
	if (rc)
		goto out;
	snprintf(tmp, strlen(path) + 32, "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  mode);
	if (fd < 0) {
		rc = err_set(e, ERR_IO, "cannot create '%s': %s", tmp,
			     strerror(errno));
		goto out;
	}
	while (off < len) {
		n = write(fd, (const char *)data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = err_set(e, ERR_IO, "cannot write '%s': %s", tmp,
				     strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
		rc = err_set(e, ERR_IO, "cannot sync '%s': %s", tmp,
			     strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = err_set(e, ERR_IO, "cannot close '%s': %s", tmp,
			     strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		rc = err_set(e, ERR_IO, "cannot rename into '%s': %s", path,
			     strerror(errno));
		goto out;
	}
	if (fsync_dir(dir) < 0) {
		/* The new file is in place; only its durability is unknown. */
		rc = err_set(e, ERR_IO, "cannot sync directory '%s': %s", dir,
			     strerror(errno));
		goto out_noremove;
	}
out:
	if (rc && tmp)
		unlink(tmp);
out_noremove:
	if (fd >= 0)
		close(fd);
	free(dcopy);
	free(tmp);
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
