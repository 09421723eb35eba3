/*
 * cronexpr.c - the cron expression parser and the next fire time (see
 * cronexpr.h). The search walks the zone's wall clock day by day on the
 * civil (proleptic Gregorian) calendar, which needs no time zone, and asks
 * ICU only to turn a matching wall time into an instant: ICU owns every
 * offset and DST rule, nothing here reads a TZif file.
 */
#include "cronexpr.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <unicode/ucal.h>
#include <unicode/ustring.h>

#define ZONEINFO_DEFAULT "/usr/share/zoneinfo"
#define SEARCH_DAYS (366 * 8 + 2)       /* leap days skip 2100 */

struct crontz {
	UCalendar *cal;
	char name[CRONTZ_NAME_MAX + 1];
};

/* ---- parsing --------------------------------------------------------------- */

struct field_def {
	const char *label;
	int lo, hi;
	const char *const *names;     /* names[i] is value lo + i, or NULL */
};

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
	"nov", "dec", NULL,
};
static const char *const dow_names[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL,
};

/* Day-of-week accepts 7 (Sunday), folded to 0 after parsing. */
static const struct field_def fields[5] = {
	{ "minute", 0, 59, NULL },
	{ "hour", 0, 23, NULL },
	{ "day-of-month", 1, 31, NULL },
	{ "month", 1, 12, month_names },
	{ "day-of-week", 0, 7, dow_names },
};

static const struct { const char *name, *expr; } macros[] = {
	{ "@yearly", "0 0 1 1 *" },
	{ "@annually", "0 0 1 1 *" },
	{ "@monthly", "0 0 1 * *" },
	{ "@weekly", "0 0 * * 0" },
	{ "@daily", "0 0 * * *" },
	{ "@midnight", "0 0 * * *" },
	{ "@hourly", "0 * * * *" },
};

static int ferr(struct err *e, int idx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int ferr(struct err *e, int idx, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return err_set(e, ERR_INVALID, "field %d (%s): %s", idx + 1,
		       fields[idx].label, what);
}

/* One value (a number or a name) of [s, end) into *v. */
static int parse_value(const struct field_def *f, int idx, const char *s,
		       size_t len, int *v, struct err *e)
{
	char tok[32];
	size_t i;
	long n = 0;

	if (!len || len >= sizeof(tok))
		return ferr(e, idx, "'%.*s' is not a value", (int)len, s);
	memcpy(tok, s, len);
	tok[len] = '\0';
	if (tok[0] >= '0' && tok[0] <= '9') {
		for (i = 0; i < len; i++) {
			if (tok[i] < '0' || tok[i] > '9')
				return ferr(e, idx, "'%s' is not a number",
					    tok);
			n = n * 10 + (tok[i] - '0');
			if (n > 1000)
				break;
		}
		if (n < f->lo || n > f->hi)
			return ferr(e, idx, "%s is out of range %d-%d", tok,
				    f->lo, f->hi);
		*v = (int)n;
		return 0;
	}
	for (i = 0; f->names && f->names[i]; i++)
		if (!strcasecmp(tok, f->names[i])) {
			*v = f->lo + (int)i;
			return 0;
		}
	return f->names ? ferr(e, idx, "unknown name '%s'", tok) :
			  ferr(e, idx, "'%s' is not a number", tok);
}

/* One comma-separated item: "*", "a", "a-b", each with an optional
 * "/step". Sets its bits in *bits. */
static int parse_item(int idx, const char *s, size_t len, uint64_t *bits,
		      struct err *e)
{
	const struct field_def *f = &fields[idx];
	const char *slash = memchr(s, '/', len), *dash;
	size_t rlen = slash ? (size_t)(slash - s) : len;
	int lo, hi, step = 1, v;
	char tok[64];
	int rc;

	snprintf(tok, sizeof(tok), "%.*s", (int)len, s);
	if (slash) {
		size_t slen = len - rlen - 1;
		long n = 0;
		size_t i;

		if (!slen)
			return ferr(e, idx, "'%s' has no step after '/'", tok);
		for (i = 0; i < slen; i++) {
			if (slash[1 + i] < '0' || slash[1 + i] > '9')
				return ferr(e, idx, "step in '%s' is not a "
					    "number", tok);
			n = n * 10 + (slash[1 + i] - '0');
			if (n > 1000)
				break;
		}
		if (n < 1 || n > f->hi)
			return ferr(e, idx, "step in '%s' must be 1-%d", tok,
				    f->hi);
		step = (int)n;
	}
	if (rlen == 1 && s[0] == '*') {
		lo = f->lo;
		hi = f->hi == 7 ? 6 : f->hi;
	} else {
		dash = memchr(s, '-', rlen);
		rc = parse_value(f, idx, s, dash ? (size_t)(dash - s) : rlen,
				 &lo, e);
		if (rc)
			return rc;
		if (dash) {
			rc = parse_value(f, idx, dash + 1,
					 rlen - (size_t)(dash - s) - 1, &hi, e);
			if (rc)
				return rc;
			if (hi < lo)
				return ferr(e, idx, "range '%s' is reversed",
					    tok);
		} else {
			/* "5/10" runs from 5 to the end, as in Vixie cron */
			hi = slash ? (f->hi == 7 ? 6 : f->hi) : lo;
			if (hi < lo)
				hi = lo;
		}
	}
	for (v = lo; v <= hi; v += step)
		*bits |= (uint64_t)1 << (idx == 4 && v == 7 ? 0 : v);
	return 0;
}

static int parse_field(int idx, const char *s, size_t len, uint64_t *bits,
		       struct err *e)
{
	const char *end = s + len, *comma;
	int rc;

	*bits = 0;
	while (s <= end) {
		comma = memchr(s, ',', (size_t)(end - s));
		if (!comma)
			comma = end;
		if (comma == s)
			return ferr(e, idx, "empty list item");
		rc = parse_item(idx, s, (size_t)(comma - s), bits, e);
		if (rc)
			return rc;
		s = comma + 1;
	}
	return 0;
}

int cronexpr_parse(const char *text, struct cronexpr *out, struct err *e)
{
	const char *p = text ? text : "", *start[6];
	size_t len[6], i, n = 0;
	uint64_t bits[5];
	int rc;

	memset(out, 0, sizeof(*out));
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '@') {
		size_t l = strcspn(p, " \t");
		const char *rest = p + l;

		while (*rest == ' ' || *rest == '\t')
			rest++;
		for (i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
			if (strlen(macros[i].name) == l &&
			    !strncasecmp(p, macros[i].name, l) && !*rest)
				return cronexpr_parse(macros[i].expr, out, e);
		return err_set(e, ERR_INVALID, "unknown macro '%.*s' (use "
			       "@yearly, @annually, @monthly, @weekly, "
			       "@daily, @midnight or @hourly)", (int)l, p);
	}
	while (*p) {
		if (n == 6)
			break;
		start[n] = p;
		len[n] = strcspn(p, " \t");
		p += len[n];
		n++;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	if (n != 5)
		return err_set(e, ERR_INVALID, "expected 5 fields (minute hour "
			       "day-of-month month day-of-week), got %s%zu",
			       n == 6 ? "more than " : "", n == 6 ? 5 : n);
	for (i = 0; i < 5; i++) {
		rc = parse_field((int)i, start[i], len[i], &bits[i], e);
		if (rc)
			return rc;
	}
	out->minute = bits[0];
	out->hour = (uint32_t)bits[1];
	out->dom = (uint32_t)bits[2];
	out->month = (uint16_t)bits[3];
	out->dow = (uint8_t)bits[4];
	out->dom_star = start[2][0] == '*';
	out->dow_star = start[4][0] == '*';
	return 0;
}

/* ---- time zones ---------------------------------------------------------- */

/* A name that cannot step outside the zoneinfo directory. */
static bool zone_name_ok(const char *name)
{
	const char *p, *comp = name;

	if (!*name || strlen(name) > CRONTZ_NAME_MAX || *name == '/')
		return false;
	for (p = name;; p++) {
		if (*p == '/' || !*p) {
			if (p == comp || *comp == '.' || *comp == '-')
				return false;
			if (!*p)
				return true;
			comp = p + 1;
			continue;
		}
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '+' ||
		      *p == '-'))
			return false;
	}
}

/* The zone file exists beneath the tz database and is a TZif file: the
 * system's list of zones, read without a path trick. */
static int zone_in_tzdb(const char *name, struct err *e)
{
	const char *dir = getenv("TZDIR");
	struct open_how how;
	struct stat st;
	char magic[4];
	int dfd, fd;
	ssize_t n;

	if (!dir || !*dir)
		dir = ZONEINFO_DEFAULT;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return err_set(e, ERR_INVALID, "timezone '%s': cannot open "
			       "the tz database '%s': %s", name, dir,
			       strerror(errno));
	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	fd = (int)syscall(SYS_openat2, dfd, name, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)   /* the name was checked already */
		fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY |
			    O_NONBLOCK);
	close(dfd);
	if (fd < 0)
		return err_set(e, ERR_INVALID, "timezone '%s' is not in the "
			       "tz database (%s)", name, dir);
	n = fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ? -1 :
	    read(fd, magic, sizeof(magic));
	close(fd);
	if (n != (ssize_t)sizeof(magic) || memcmp(magic, "TZif", 4))
		return err_set(e, ERR_INVALID, "timezone '%s' is not a zone "
			       "of the tz database (%s)", name, dir);
	return 0;
}

int crontz_open(const char *name, struct crontz **out, struct err *e)
{
	UChar id[CRONTZ_NAME_MAX + 1], canon[128];
	UErrorCode st = U_ZERO_ERROR;
	UBool system = 0;
	struct crontz *z;
	int rc;

	*out = NULL;
	if (!name || !*name)
		name = "UTC";
	if (!zone_name_ok(name))
		return err_set(e, ERR_INVALID, "timezone '%.*s' is not an IANA "
			       "zone name (like Europe/Berlin)",
			       CRONTZ_NAME_MAX, name);
	rc = zone_in_tzdb(name, e);
	if (rc)
		return rc;
	u_uastrncpy(id, name, CRONTZ_NAME_MAX);
	id[strlen(name)] = 0;
	ucal_getCanonicalTimeZoneID(id, -1, canon, 128, &system, &st);
	if (U_FAILURE(st) || !system)
		return err_set(e, ERR_INVALID, "timezone '%s' is not known to "
			       "ICU", name);
	z = calloc(1, sizeof(*z));
	if (!z)
		return err_set(e, ERR_NOMEM, "out of memory");
	z->cal = ucal_open(id, -1, "en_US_POSIX", UCAL_GREGORIAN, &st);
	if (U_FAILURE(st) || !z->cal) {
		free(z);
		return err_set(e, ERR_INTERNAL, "timezone '%s': ICU: %s", name,
			       u_errorName(st));
	}
	/* The repeated hour runs once (its first occurrence); a wall time
	 * in a gap runs at the first valid minute after it. */
	ucal_setAttribute(z->cal, UCAL_REPEATED_WALL_TIME, UCAL_WALLTIME_FIRST);
	ucal_setAttribute(z->cal, UCAL_SKIPPED_WALL_TIME,
			  UCAL_WALLTIME_NEXT_VALID);
	snprintf(z->name, sizeof(z->name), "%s", name);
	*out = z;
	return 0;
}

void crontz_free(struct crontz *z)
{
	if (!z)
		return;
	if (z->cal)
		ucal_close(z->cal);
	free(z);
}

const char *crontz_name(const struct crontz *z)
{
	return z ? z->name : "UTC";
}

/* ---- the search ------------------------------------------------------------ */

struct wall {
	int y, mo, d, h, mi;      /* month 1-12 */
};

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int mdays(int y, int mo)
{
	static const int n[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
				   31 };

	return mo == 2 && leap(y) ? 29 : n[mo - 1];
}

/* 0 = Sunday (Sakamoto's method). */
static int weekday(int y, int mo, int d)
{
	static const int t[12] = { 0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4 };

	if (mo < 3)
		y--;
	return (y + y / 4 - y / 100 + y / 400 + t[mo - 1] + d) % 7;
}

static bool day_matches(const struct cronexpr *x, int y, int mo, int d)
{
	bool dom = x->dom & (1u << d);
	bool dow = x->dow & (1u << weekday(y, mo, d));

	if (!(x->month & (1u << mo)))
		return false;
	return x->dom_star || x->dow_star ? dom && dow : dom || dow;
}

static int wall_of(struct crontz *z, int64_t ms, struct wall *w)
{
	UErrorCode st = U_ZERO_ERROR;

	ucal_setMillis(z->cal, (UDate)ms, &st);
	w->y = ucal_get(z->cal, UCAL_EXTENDED_YEAR, &st);
	w->mo = ucal_get(z->cal, UCAL_MONTH, &st) + 1;
	w->d = ucal_get(z->cal, UCAL_DATE, &st);
	w->h = ucal_get(z->cal, UCAL_HOUR_OF_DAY, &st);
	w->mi = ucal_get(z->cal, UCAL_MINUTE, &st);
	return U_FAILURE(st) ? -1 : 0;
}

static int instant_of(struct crontz *z, const struct wall *w, int64_t *ms)
{
	UErrorCode st = U_ZERO_ERROR;

	ucal_clear(z->cal);
	ucal_set(z->cal, UCAL_EXTENDED_YEAR, w->y);
	ucal_set(z->cal, UCAL_MONTH, w->mo - 1);
	ucal_set(z->cal, UCAL_DATE, w->d);
	ucal_set(z->cal, UCAL_HOUR_OF_DAY, w->h);
	ucal_set(z->cal, UCAL_MINUTE, w->mi);
	ucal_set(z->cal, UCAL_SECOND, 0);
	ucal_set(z->cal, UCAL_MILLISECOND, 0);
	*ms = (int64_t)ucal_getMillis(z->cal, &st);
	return U_FAILURE(st) ? -1 : 0;
}

int cronexpr_next(const struct cronexpr *x, struct crontz *z,
		  int64_t after_ms, int64_t *next_ms, struct err *e)
{
	struct wall w;
	int64_t at;
	int day, h0, m0;

	/* whole minutes: the wall minute of after_ms is done */
	if (wall_of(z, after_ms, &w))
		return err_set(e, ERR_INTERNAL, "ICU cannot read the time in "
			       "'%s'", z->name);
	h0 = w.h;
	m0 = w.mi + 1;
	for (day = 0; day < SEARCH_DAYS; day++) {
		if (day_matches(x, w.y, w.mo, w.d)) {
			for (w.h = h0; w.h < 24; w.h++) {
				if (!(x->hour & (1u << w.h)))
					continue;
				for (w.mi = w.h == h0 ? m0 : 0; w.mi < 60;
				     w.mi++) {
					if (!(x->minute & ((uint64_t)1 << w.mi)))
						continue;
					if (instant_of(z, &w, &at))
						return err_set(e, ERR_INTERNAL,
							"ICU cannot compute a "
							"time in '%s'", z->name);
					/* not yet past: a repeated hour's
					 * second run, or a gap's slots
					 * already run at its end */
					if (at > after_ms) {
						*next_ms = at;
						return 0;
					}
				}
			}
		}
		h0 = 0;
		m0 = 0;
		if (++w.d > mdays(w.y, w.mo)) {
			w.d = 1;
			if (++w.mo > 12) {
				w.mo = 1;
				w.y++;
			}
		}
	}
	return err_set(e, ERR_NOT_FOUND, "never fires (no matching day in "
		       "the next 8 years)");
}

void crontz_format_short(struct crontz *z, int64_t at_ms, char out[16])
{
	static const char *const mon[12] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
		"Oct", "Nov", "Dec",
	};
	struct wall w;

	if (wall_of(z, at_ms, &w) || w.mo < 1 || w.mo > 12) {
		snprintf(out, 16, "?");
		return;
	}
	snprintf(out, 16, "%s %d %02d:%02d", mon[w.mo - 1], w.d % 100,
		 w.h % 100, w.mi % 100);
}
