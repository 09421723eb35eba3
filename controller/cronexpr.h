/*
 * cronexpr.h - cron expressions and their next fire time in a time zone.
 *
 * The five-field form (minute hour day-of-month month day-of-week) with
 * `*`, numbers, lists, ranges, steps (`*\/15`, `1-30/5`, `5/10` = 5-max/10),
 * month and day names (jan..dec, sun..sat, any case), 7 as Sunday, and the
 * macros @yearly @annually @monthly @weekly @daily @midnight @hourly.
 * Day-of-month and day-of-week combine as in Vixie cron: when both are
 * restricted (neither starts with `*`) a day matches if EITHER does;
 * otherwise both must (the original PocketBase parser always ANDs them).
 *
 * Times are computed on the wall clock of an IANA zone through ICU's
 * calendar (ucal): a wall time skipped by a forward DST jump runs at the
 * first valid minute after the gap (once, however many slots fell in it);
 * a wall time that occurs twice (the repeated autumn hour) runs at its
 * first occurrence only. The clock is the caller's: every function takes
 * the instant it computes from, so tests inject any time.
 *
 * THREAD SAFETY NOTES: a struct cronexpr is a value, shared freely. A
 * struct crontz holds an ICU calendar and belongs to one thread at a time.
 */
#ifndef POCKETCTL_CRONEXPR_H
#define POCKETCTL_CRONEXPR_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* A zone name's longest form (IANA names are far shorter). */
#define CRONTZ_NAME_MAX 64

struct cronexpr {
	uint64_t minute;     /* bit n: minute n matches (0-59) */
	uint32_t hour;       /* 0-23 */
	uint32_t dom;        /* 1-31 */
	uint16_t month;      /* 1-12 */
	uint8_t dow;         /* 0-6, Sunday = 0 */
	bool dom_star;       /* the field started with '*' (Vixie rule) */
	bool dow_star;
};

/*
 * Parse text into *out. Returns 0, or ERR_INVALID with e's message naming
 * the field and the problem without a prefix ("field 2 (hour): 25 is out
 * of range 0-23", "expected 5 fields ..., got 4", "unknown macro
 * '@often'"); *out is then unspecified. An expression that can never fire
 * ("0 0 31 2 *") is not refused here: cronexpr_next() says so.
 */
int cronexpr_parse(const char *text, struct cronexpr *out, struct err *e);

struct crontz;

/*
 * Open the time zone called name for computing: NULL or "" is UTC. The
 * name must be an IANA zone of the system's tz database (a file under
 * $TZDIR or /usr/share/zoneinfo that starts like a TZif file, found
 * without leaving that directory: no absolute path, "." or ".." component,
 * or character outside [A-Za-z0-9_+-/]) that ICU knows too. Caller owns
 * *out (crontz_free()). ERR_INVALID naming the zone and why otherwise;
 * ERR_NOMEM, ERR_INTERNAL (ICU failed).
 */
int crontz_open(const char *name, struct crontz **out, struct err *e);
void crontz_free(struct crontz *z);              /* accepts NULL */

/* The zone's name as opened ("UTC" for NULL). Borrowed. */
const char *crontz_name(const struct crontz *z);

/*
 * The first fire time of x strictly after after_ms (ms since the epoch)
 * in zone z, into *next_ms (a whole minute). Returns 0, or ERR_NOT_FOUND
 * when x never fires within the next eight years (e.g. "0 0 30 2 *"),
 * ERR_INTERNAL when ICU fails.
 */
int cronexpr_next(const struct cronexpr *x, struct crontz *z,
		  int64_t after_ms, int64_t *next_ms, struct err *e);

/* The wall clock of at_ms in z, as "Jan 2 15:04" (the original's chat
 * title form) into out (at least 16 bytes). */
void crontz_format_short(struct crontz *z, int64_t at_ms, char out[16]);

#endif
