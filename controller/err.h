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

#endif
