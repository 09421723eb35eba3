/*
 * err.c - the result code table and one-line error messages (see err.h).
 */
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
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

/* ---- lists ----------------------------------------------------------- */

int err_list_add(struct err_list *l, const struct err *e, const char *file,
		 int line, int column)
{
	struct err_entry *v;
	char *f = NULL;

	l->total++;
	if (l->n >= ERR_LIST_MAX)
		return 0;
	if (file) {
		f = strdup(file);
		if (!f)
			return ERR_NOMEM;
	}
	if (!l->v) {
		/* The cap is small: room for all of it at once. */
		l->v = calloc(ERR_LIST_MAX, sizeof(*l->v));
		if (!l->v) {
			free(f);
			return ERR_NOMEM;
		}
	}
	v = &l->v[l->n];
	v->err = *e;
	v->file = f;
	v->line = line;
	v->column = column;
	v->seq = l->total;
	l->n++;
	return 0;
}

int err_list_note_file(struct err_list *l, const char *file)
{
	char **p, *f;

	f = strdup(file);
	p = f ? realloc(l->files, (l->nfiles + 1) * sizeof(*p)) : NULL;
	if (!p) {
		free(f);
		return ERR_NOMEM;
	}
	l->files = p;
	l->files[l->nfiles++] = f;
	return 0;
}

/* The sort's key of a file: its load order, or past every noted file. */
static size_t file_rank(const struct err_list *l, const char *file)
{
	size_t i;

	for (i = 0; i < l->nfiles; i++)
		if (!strcmp(l->files[i], file))
			return i;
	return l->nfiles;
}

static int cmp_entry(const void *pa, const void *pb, void *arg)
{
	const struct err_entry *a = pa, *b = pb;
	const struct err_list *sorting = arg;
	size_t ra, rb;
	int c;

	if (!a->file || !b->file) {
		if (a->file != b->file)
			return a->file ? 1 : -1;
	} else {
		ra = file_rank(sorting, a->file);
		rb = file_rank(sorting, b->file);
		if (ra != rb)
			return ra < rb ? -1 : 1;
		c = strcmp(a->file, b->file);
		if (c)
			return c;
	}
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->column != b->column)
		return a->column < b->column ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void err_list_sort(struct err_list *l)
{
	if (l->n < 2)
		return;
	qsort_r(l->v, l->n, sizeof(*l->v), cmp_entry, l);
}

int err_list_summary(const struct err_list *l, struct err *e)
{
	size_t i, len;
	int n;

	if (!l->n) {
		err_clear(e);
		return 0;
	}
	*e = l->v[0].err;
	if (l->total == 1)
		return e->code;
	n = snprintf(e->msg, sizeof(e->msg), "%zu errors: ", l->total);
	len = n > 0 ? (size_t)n : 0;
	for (i = 0; i < l->n && i < ERR_SUMMARY_FIRST &&
		    len + 1 < sizeof(e->msg); i++) {
		n = snprintf(e->msg + len, sizeof(e->msg) - len, "%s%s",
			     i ? "; " : "", l->v[i].err.msg);
		if (n < 0)
			break;
		len += (size_t)n;
	}
	if (i < l->total && len + 1 < sizeof(e->msg))
		snprintf(e->msg + len, sizeof(e->msg) - len, "; ...");
	if (len + 1 >= sizeof(e->msg)) {
		/* Cut: say so, and never inside a UTF-8 sequence. */
		len = sizeof(e->msg) - 4;
		while (len && ((unsigned char)e->msg[len] & 0xC0) == 0x80)
			len--;
		memcpy(e->msg + len, "...", 4);
	}
	return e->code;
}

void err_list_release(struct err_list *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++)
		free(l->v[i].file);
	for (i = 0; i < l->nfiles; i++)
		free(l->files[i]);
	free(l->v);
	free(l->files);
	memset(l, 0, sizeof(*l));
}
