/*
 * log.c - the server's log lines (see log.h): a timestamp, a level, a
 * component and a message, as text or as JSON lines (jansson).
 */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define LOG_LINE_MAX 2048

static atomic_int log_format = LOG_TEXT;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int log_parse_format(const char *s, enum log_format *out)
{
	if (!strcmp(s, "text"))
		*out = LOG_TEXT;
	else if (!strcmp(s, "json"))
		*out = LOG_JSON;
	else
		return -1;
	return 0;
}

void log_set_format(enum log_format f)
{
	atomic_store(&log_format, (int)f);
}

/* One write(2) of p[0..n) and then tail (nullable), so that lines of
 * several threads never interleave; a failed write is dropped (there is
 * nowhere to report it). */
static void write_line(const char *p, size_t n, const char *tail)
{
	struct iovec v[2] = {
		{ (void *)p, n },
		{ (void *)tail, tail ? strlen(tail) : 0 },
	};
	ssize_t w;

	do {
		w = writev(STDERR_FILENO, v, tail ? 2 : 1);
	} while (w < 0 && errno == EINTR);
}

/* "2026-12-07T01:02:03.456Z" into out (at least 25 bytes). */
static void now_rfc3339(char *out, size_t n)
{
	struct timespec ts;
	struct tm tm;
	char sec[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%.19s.%03dZ", sec, (int)(ts.tv_nsec / 1000000L));
}

void log_vmsg(enum log_level lv, const char *component, const char *fmt,
	      va_list ap)
{
	char msg[LOG_LINE_MAX], when[40];
	const char *level = level_names[lv <= LOG_ERROR ? lv : LOG_ERROR];
	json_t *o;
	char *line;
	size_t i;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	for (i = 0; msg[i]; i++)
		if ((unsigned char)msg[i] < 0x20)
			msg[i] = ' ';
	now_rfc3339(when, sizeof(when));
	if (component && !*component)
		component = NULL;
	if (atomic_load(&log_format) == LOG_TEXT) {
		char text[LOG_LINE_MAX + 128];
		int n = snprintf(text, sizeof(text), "%s %s %s%s%s\n", when,
				 level, component ? component : "",
				 component ? ": " : "", msg);

		if (n > 0 && (size_t)n >= sizeof(text)) {  /* cut, still a line */
			n = (int)sizeof(text) - 1;
			text[n - 1] = '\n';
		}
		if (n > 0)
			write_line(text, (size_t)n, NULL);
		return;
	}
	/* json_pack copies every string; a message that is not UTF-8 is
	 * refused by jansson and written with its bytes escaped instead. */
	o = json_pack("{s:s, s:s, s:s*, s:s}", "time", when, "level", level,
		      "component", component, "msg", msg);
	if (!o) {
		for (i = 0; msg[i]; i++)
			if ((unsigned char)msg[i] >= 0x80)
				msg[i] = '?';
		o = json_pack("{s:s, s:s, s:s*, s:s}", "time", when, "level",
			      level, "component", component, "msg", msg);
	}
	line = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (line)
		write_line(line, strlen(line), "\n");
	free(line);
}

void log_msg(enum log_level lv, const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lv, component, fmt, ap);
	va_end(ap);
}
