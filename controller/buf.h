/*
 * buf.h - a growable byte buffer with a hard cap (after git's strbuf and
 * curl's dynbuf).
 *
 * b->ptr is never NULL and always NUL-terminated, so a buf can be handed to
 * any C string function at any time.  Appends beyond the cap fail with
 * ERR_TOO_LARGE and leave the buffer as it was.  HTTP bodies, YAML files and
 * rendered artifacts all go through it.
 */
#ifndef POCKETCTL_BUF_H
#define POCKETCTL_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "err.h"

#define BUF_DEFAULT_CAP ((size_t)64 << 20) /* 64 MiB */

struct buf {
	char *ptr;      /* never NULL; NUL-terminated */
	size_t len;     /* bytes used, not counting the NUL */
	size_t alloc;   /* bytes allocated, 0 while ptr points at a static "" */
	size_t cap;     /* most bytes len may reach */
};

extern char buf_empty[];
#define BUF_INIT { buf_empty, 0, 0, BUF_DEFAULT_CAP }

/* Initialise an empty buffer with the given cap (0 = BUF_DEFAULT_CAP). */
void buf_init(struct buf *b, size_t cap);

/* Free the memory and return to the empty state. Accepts NULL. */
void buf_release(struct buf *b);

/* Empty the buffer, keeping its memory. */
void buf_reset(struct buf *b);

/*
 * Hand the bytes over: caller owns the result (free with free()); *len, if
 * not NULL, receives the length. The buffer is left empty. Never NULL
 * except on allocation failure of an empty buffer.
 */
char *buf_detach(struct buf *b, size_t *len);

/* Appends. Return 0, ERR_TOO_LARGE past the cap or ERR_NOMEM; on error the
 * buffer is unchanged. */
int buf_add(struct buf *b, const void *data, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Make room for n more bytes without changing len. Same errors. */
int buf_grow(struct buf *b, size_t n);

/*
 * Read a whole regular file into b (appending). Refuses files larger than
 * the remaining cap with ERR_TOO_LARGE before reading them. On error e says
 * which file and why; the buffer is unchanged.
 */
int buf_read_file(struct buf *b, const char *path, struct err *e);

/*
 * Read fd to its end into b (appending), whatever it is (a pipe: stdin);
 * path names it in messages. ERR_TOO_LARGE beyond the cap, ERR_IO on a
 * read error; on error the buffer is unchanged. fd stays open.
 */
int buf_read_fd(struct buf *b, int fd, const char *path, struct err *e);

#endif
