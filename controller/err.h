/*
 * err.h - one result code table and a one-line error message.
 *
 * Every fallible function in pocketctl returns an int: 0 on success or a
 * negative ERR_* code, and fills a caller-provided struct err with a single
 * lower-case line (no newline) naming the subject and, where there is one,
 * the field.  The HTTP layer maps codes to status codes through the same
 * table, the CLI maps them to exit codes, so nothing has to guess.
 */
#ifndef POCKETCTL_ERR_H
#define POCKETCTL_ERR_H

#include <stdarg.h>
#include <stddef.h>

/*   name          value  http  description */
#define ERR_TABLE(X)                                                   \
	X(OK,            0,   200, "ok")                                 \
	X(INVALID,      -1,   400, "invalid input")                      \
	X(NOT_FOUND,    -2,   404, "not found")                          \
	X(CONFLICT,     -3,   409, "conflict")                           \
	X(PRECONDITION, -4,   412, "precondition failed")                \
	X(TOO_LARGE,    -5,   413, "too large")                          \
	X(FORBIDDEN,    -6,   403, "forbidden")                          \
	X(UNAUTHORIZED, -7,   401, "unauthorized")                       \
	X(IO,           -8,   500, "i/o error")                          \
	X(DB,           -9,   500, "database error")                     \
	X(NOMEM,       -10,   500, "out of memory")                      \
	X(ENGINE,      -11,   502, "container engine error")             \
	X(UNAVAILABLE, -12,   503, "unavailable")                        \
	X(INTERNAL,    -13,   500, "internal error")                     \
	X(BAD_GATEWAY, -14,   502, "bad gateway")                        \
	X(TIMEOUT,     -15,   504, "gateway timeout")

enum err_code {
#define ERR_ENUM(name, value, http, desc) ERR_##name = value,
	ERR_TABLE(ERR_ENUM)
#undef ERR_ENUM
};

#define ERR_MSG_MAX 768
#define ERR_FIELD_MAX 128

struct err {
	int code;                      /* 0 or a negative ERR_* code */
	char field[ERR_FIELD_MAX];     /* offending field ("mode", "spec.mode"), or "" */
	char msg[ERR_MSG_MAX];         /* one line, lower-case start, no newline */
};

#define ERR_INIT { 0, "", "" }

/* Reset e to the no-error state. Accepts NULL. */
void err_clear(struct err *e);

/*
 * Record an error and return its code, so that
 *     return err_set(e, ERR_CONFLICT, "record '%s' changed", name);
 * is one statement. e may be NULL (the code is still returned). The field
 * is cleared.
 */
int err_set(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like err_set() but also names the offending field. */
int err_set_field(struct err *e, int code, const char *field,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Prepend context to an existing message: "file.yaml:3:5: " + old message.
 * Keeps code and field. Returns e->code. Accepts NULL.
 */
int err_prefix(struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The symbolic name ("ERR_CONFLICT" -> "conflict") and HTTP status of a code. */
const char *err_name(int code);
int err_http_status(int code);

/* ------------------------------------------------------------------ */
/* Every error of one pass                                             */

/*
 * A validation that goes on after a problem (manifests, apply) appends each
 * one to a struct err_list and reports them all at the end. The first
 * ERR_LIST_MAX are kept; total counts every one. Each entry keeps its
 * position apart from the message (which starts with "FILE:LINE:COL: "
 * where there is one) so that the list can be sorted and sent as JSON.
 * Lists are plain values for one thread.
 */
#define ERR_LIST_MAX 50

struct err_entry {
	struct err err;
	char *file;            /* owned; NULL when the error has no position */
	int line, column;      /* 1-based; 0 when unknown */
	size_t seq;            /* order of arrival, for a stable sort */
};

struct err_list {
	struct err_entry *v;   /* the first n (at most ERR_LIST_MAX) */
	size_t n;
	size_t total;          /* every error appended, kept or not */
	char **files;          /* files in load order, for err_list_sort() */
	size_t nfiles;
};

#define ERR_LIST_INIT { NULL, 0, 0, NULL, 0 }

/*
 * Append a copy of e (which must hold an error) found at file:line:column
 * (file may be NULL). Beyond ERR_LIST_MAX only total grows. Returns 0, or
 * ERR_NOMEM (the list is left as it was, total aside).
 */
int err_list_add(struct err_list *l, const struct err *e, const char *file,
		 int line, int column);

/* Note that file was loaded, in load order, so that err_list_sort() puts
 * its errors after those of the files noted before it. 0 or ERR_NOMEM. */
int err_list_note_file(struct err_list *l, const char *file);

/* Sort by file (noted order, then others by name), line, column, then
 * order of arrival. Errors without a position come first. */
void err_list_sort(struct err_list *l);

/*
 * Put the list into one struct err for a caller that shows one line: the
 * first entry as it is when it is the only one, else its code and field
 * with the message "N errors: FIRST; SECOND; THIRD; ..." (the first
 * ERR_SUMMARY_FIRST, as far as they fit). Returns the code (0 for an empty
 * list, e cleared).
 */
#define ERR_SUMMARY_FIRST 3
int err_list_summary(const struct err_list *l, struct err *e);

void err_list_release(struct err_list *l);   /* accepts NULL */

#endif
