/*
 * log.h - the server's log: one line per event on stderr, each with an
 * RFC 3339 UTC timestamp (milliseconds), a level and the component that
 * speaks, as text
 *
 *     2026-12-07T01:02:03.456Z info engine: llm_env: wrote llm.env
 *
 * or, with log_set_format(LOG_JSON) (`serve --log-format json`), as JSON
 * lines with the members time, level, component (absent when none) and
 * msg. Every server-side log line goes through log_msg(), so the format is
 * decided in one place. The CLI's own messages ("pocketctl: ...") are not
 * log lines and do not use this.
 *
 * THREAD SAFETY NOTES: log_msg() may be called from any thread; a line is
 * formatted by the caller and written with one write(2) (writev), so lines
 * never interleave. log_set_format() is called once by the main
 * thread before other threads start.
 */
#ifndef POCKETCTL_LOG_H
#define POCKETCTL_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_DEBUG,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR,
};

enum log_format {
	LOG_TEXT = 0,            /* the default */
	LOG_JSON,
};

/* "text" or "json" into *out; -1 for anything else. */
int log_parse_format(const char *s, enum log_format *out);

void log_set_format(enum log_format f);

/*
 * Write one log line at level lv for component (NULL or "" for none):
 * the printf-style message, cut at 2 KiB, control characters (a newline
 * in a quoted value) replaced so that a line stays one line. Never fails
 * (a write error on stderr is dropped).
 */
void log_msg(enum log_level lv, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level lv, const char *component, const char *fmt,
	      va_list ap) __attribute__((format(printf, 3, 0)));

#endif
