/*
 * buf.c - growable, capped, always NUL-terminated byte buffers (see buf.h).
 */
#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char buf_empty[1];

void buf_init(struct buf *b, size_t cap)
{
	b->ptr = buf_empty;
	b->len = 0;
	b->alloc = 0;
	b->cap = cap ? cap : BUF_DEFAULT_CAP;
}

void buf_release(struct buf *b)
{
	if (!b)
		return;
	if (b->alloc)
		free(b->ptr);
	b->ptr = buf_empty;
	b->len = 0;
	b->alloc = 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->alloc)
		b->ptr[0] = '\0';
}

char *buf_detach(struct buf *b, size_t *len)
{
	char *p;

	if (len)
		*len = b->len;
	if (b->alloc) {
		p = b->ptr;
	} else {
		p = calloc(1, 1);
	}
	b->ptr = buf_empty;
	b->len = 0;
	b->alloc = 0;
	return p;
}

int buf_grow(struct buf *b, size_t n)
{
	size_t want, nalloc;
	char *p;

	if (n > b->cap || b->len > b->cap - n)
		return ERR_TOO_LARGE;
	want = b->len + n + 1;
	if (want <= b->alloc)
		return 0;
	nalloc = b->alloc ? b->alloc : 64;
	while (nalloc < want)
		nalloc = nalloc < ((size_t)1 << 62) ? nalloc * 2 : want;
	p = realloc(b->alloc ? b->ptr : NULL, nalloc);
	if (!p)
		return ERR_NOMEM;
	if (!b->alloc)
		p[0] = '\0';
	b->ptr = p;
	b->alloc = nalloc;
	return 0;
}

int buf_add(struct buf *b, const void *data, size_t n)
{
	int rc = buf_grow(b, n);

	if (rc)
		return rc;
	if (n)
		memcpy(b->ptr + b->len, data, n);
	b->len += n;
	b->ptr[b->len] = '\0';
	return 0;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int buf_putc(struct buf *b, char c)
{
	return buf_add(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n, rc;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return ERR_INVALID;
	rc = buf_grow(b, (size_t)n);
	if (rc)
		return rc;
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

int buf_read_fd(struct buf *b, int fd, const char *path, struct err *e)
{
	size_t start = b->len;
	int rc = 0;
	ssize_t n;

	for (;;) {
		rc = buf_grow(b, 65536);
		if (rc == ERR_TOO_LARGE)
			rc = buf_grow(b, b->cap - b->len);
		if (rc) {
			err_set(e, rc, "'%s' is larger than the limit of %zu bytes",
				path, b->cap);
			goto out;
		}
		n = read(fd, b->ptr + b->len, b->alloc - b->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = err_set(e, ERR_IO, "cannot read '%s': %s", path,
				     strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		b->len += (size_t)n;
		b->ptr[b->len] = '\0';
		if (b->len == b->cap) {
			char c;
			if (read(fd, &c, 1) > 0) {
				rc = err_set(e, ERR_TOO_LARGE,
					     "'%s' is larger than the limit of %zu bytes",
					     path, b->cap);
				goto out;
			}
			break;
		}
	}
out:
	if (rc) {
		b->len = start;
		if (b->alloc)
			b->ptr[start] = '\0';
	}
	return rc;
}

int buf_read_file(struct buf *b, const char *path, struct err *e)
{
	struct stat st;
	size_t want;
	int fd = -1, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = err_set(e, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO,
			     "cannot open '%s': %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		rc = err_set(e, ERR_IO, "cannot stat '%s': %s", path,
			     strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = err_set(e, ERR_INVALID, "'%s' is not a regular file", path);
		goto out;
	}
	if ((size_t)st.st_size > b->cap - b->len) {
		rc = err_set(e, ERR_TOO_LARGE,
			     "'%s' is %lld bytes, more than the limit of %zu",
			     path, (long long)st.st_size, b->cap - b->len);
		goto out;
	}
	/* Room for all of it (and the read that finds the end) at once:
	 * no copies as it grows. */
	want = (size_t)st.st_size + 65536;
	if (buf_grow(b, want < b->cap - b->len ? want : b->cap - b->len)) {
		rc = err_set(e, ERR_NOMEM, "out of memory reading '%s'", path);
		goto out;
	}
	rc = buf_read_fd(b, fd, path, e);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}
