/*
 * err.c - the result code table and one-line error messages (see err.h).
 */
#include "err.h"

#include <stdio.h>
#include <string.h>

void err_clear(struct err *e)
{
	if (!e)
		return;
	e->code = 0;
	e->field[0] = '\0';
	e->msg[0] = '\0';
}

/* Replace newlines so that a message always stays on one line. */
static void one_line(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

__attribute__((format(printf, 4, 0)))
static int err_vset(struct err *e, int code, const char *field,
		    const char *fmt, va_list ap)
{
	if (!e)
		return code;
	e->code = code;
	snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	one_line(e->msg);
	return code;
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	code = err_vset(e, code, NULL, fmt, ap);
	va_end(ap);
	return code;
}

int err_set_field(struct err *e, int code, const char *field,
		  const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	code = err_vset(e, code, field, fmt, ap);
	va_end(ap);
	return code;
}

int err_prefix(struct err *e, const char *fmt, ...)
{
	char pre[ERR_MSG_MAX], joined[2 * ERR_MSG_MAX];
	va_list ap;

	if (!e)
		return 0;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	snprintf(joined, sizeof(joined), "%s%s", pre, e->msg);
	snprintf(e->msg, sizeof(e->msg), "%.*s", (int)sizeof(e->msg) - 1,
		 joined);
	one_line(e->msg);
	return e->code;
}

const char *err_name(int code)
{
	switch (code) {
#define ERR_CASE(name, value, http, desc) case value: return desc;
	ERR_TABLE(ERR_CASE)
#undef ERR_CASE
	}
	return "unknown error";
}

int err_http_status(int code)
{
	switch (code) {
#define ERR_CASE(name, value, http, desc) case value: return http;
	ERR_TABLE(ERR_CASE)
#undef ERR_CASE
	}
	return 500;
}
