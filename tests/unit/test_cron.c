/*
 * test_cron.c - the cron expression parser (every kind of token, the
 * errors naming their field) and the next fire time against a table:
 * ranges, steps, names, macros, the Vixie day OR rule, leap days, month
 * ends, and the DST gaps and repeated hours of Europe/Berlin and
 * America/New_York, through an injected clock (the instant to search from).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cronexpr.h"
#include "err.h"

/* "2026-03-29T00:59:00Z" -> ms since the epoch. */
static int64_t utc(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	cr_assert_not_null(strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm), "%s", s);
	return (int64_t)timegm(&tm) * 1000;
}

static const struct {
	const char *expr, *zone, *after, *next;
} next_cases[] = {
	/* every minute; whole minutes, strictly after */
	{ "* * * * *", "UTC", "2026-01-01T00:00:30Z", "2026-01-01T00:01:00Z" },
	{ "* * * * *", "UTC", "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z" },
	/* steps and ranges */
	{ "*/15 * * * *", "UTC", "2026-01-01T00:14:00Z", "2026-01-01T00:15:00Z" },
	{ "*/15 * * * *", "UTC", "2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z" },
	{ "1-30/10 * * * *", "UTC", "2026-01-01T00:21:00Z", "2026-01-01T01:01:00Z" },
	{ "50/5 * * * *", "UTC", "2026-01-01T00:56:00Z", "2026-01-01T01:50:00Z" },
	{ "0 9-17/4 * * *", "UTC", "2026-01-01T13:00:00Z", "2026-01-01T17:00:00Z" },
	{ "5,10,15 * * * *", "UTC", "2026-01-01T00:10:00Z", "2026-01-01T00:15:00Z" },
	/* names (any case), ranges of names, 7 = Sunday (2026-01-01 is a
	 * Thursday) */
	{ "0 9 * * mon-fri", "UTC", "2026-01-03T10:00:00Z", "2026-01-05T09:00:00Z" },
	{ "30 6 * JAN,jul Sun", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T06:30:00Z" },
	{ "0 0 * * 7", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z" },
	{ "0 0 * * 5-7", "UTC", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z" },
	{ "0 0 1 feb-mar *", "UTC", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z" },
	/* Vixie: both restricted -> either; one starting with '*' -> both */
	{ "0 0 13 * 5", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z" },
	{ "0 0 13 * 5", "UTC", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z" },
	{ "0 0 */2 * 5", "UTC", "2026-01-01T00:00:00Z", "2026-01-09T00:00:00Z" },
	{ "0 0 * * 1", "UTC", "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z" },
	/* macros */
	{ "@hourly", "UTC", "2026-01-01T10:59:59Z", "2026-01-01T11:00:00Z" },
	{ "@daily", "UTC", "2026-01-01T10:00:00Z", "2026-01-02T00:00:00Z" },
	{ "@midnight", "UTC", "2026-01-01T10:00:00Z", "2026-01-02T00:00:00Z" },
	{ "@weekly", "UTC", "2026-01-01T10:00:00Z", "2026-01-04T00:00:00Z" },
	{ "@monthly", "UTC", "2026-01-15T00:00:00Z", "2026-02-01T00:00:00Z" },
	{ "@yearly", "UTC", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z" },
	{ "@annually", "UTC", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z" },
	/* leap days and month ends */
	{ "0 12 29 2 *", "UTC", "2026-03-01T00:00:00Z", "2028-02-29T12:00:00Z" },
	{ "0 12 29 2 *", "UTC", "2096-03-01T00:00:00Z", "2104-02-29T12:00:00Z" },
	{ "0 0 31 * *", "UTC", "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z" },
	{ "0 0 30 * *", "UTC", "2026-01-30T00:00:00Z", "2026-03-30T00:00:00Z" },
	{ "59 23 31 12 *", "UTC", "2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z" },
	/* a zone: wall time, not UTC */
	{ "0 9 * * *", "Europe/Berlin", "2026-01-01T00:00:00Z", "2026-01-01T08:00:00Z" },
	{ "0 9 * * *", "Europe/Berlin", "2026-07-01T00:00:00Z", "2026-07-01T07:00:00Z" },
	{ "0 0 * * *", "America/New_York", "2026-01-01T04:00:00Z", "2026-01-01T05:00:00Z" },
	/* Berlin spring forward, 2026-03-29 02:00 CET -> 03:00 CEST: a slot
	 * in the gap runs once at 03:00; every gap minute folds into it */
	{ "30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z" },
	{ "30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z" },
	{ "* * * * *", "Europe/Berlin", "2026-03-29T00:59:00Z", "2026-03-29T01:00:00Z" },
	{ "* * * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", "2026-03-29T01:01:00Z" },
	{ "0 3 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z" },
	/* Berlin fall back, 2026-10-25 03:00 CEST -> 02:00 CET: the repeated
	 * hour runs once, at its first occurrence */
	{ "30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z" },
	{ "30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z" },
	{ "* * * * *", "Europe/Berlin", "2026-10-25T00:59:00Z", "2026-10-25T02:00:00Z" },
	/* New York spring forward, 2026-03-08 02:00 EST -> 03:00 EDT */
	{ "30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z" },
	{ "30 2 * * *", "America/New_York", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z" },
	/* New York fall back, 2026-11-01 02:00 EDT -> 01:00 EST */
	{ "30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z" },
	{ "30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z" },
	{ "0 * * * *", "America/New_York", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z" },
	/* searching from inside the second 01:xx: that run is done */
	{ "30 1 * * *", "America/New_York", "2026-11-01T06:10:00Z", "2026-11-02T06:30:00Z" },
};

Test(cron, next_table)
{
	struct cronexpr x;
	struct crontz *z;
	struct err e = ERR_INIT;
	int64_t next = 0;
	char got[32];
	time_t secs;
	size_t i;

	for (i = 0; i < sizeof(next_cases) / sizeof(next_cases[0]); i++) {
		cr_assert_eq(cronexpr_parse(next_cases[i].expr, &x, &e), 0,
			     "%s: %s", next_cases[i].expr, e.msg);
		cr_assert_eq(crontz_open(next_cases[i].zone, &z, &e), 0, "%s",
			     e.msg);
		cr_assert_eq(cronexpr_next(&x, z, utc(next_cases[i].after),
					   &next, &e), 0, "%s", e.msg);
		secs = (time_t)(next / 1000);
		strftime(got, sizeof(got), "%Y-%m-%dT%H:%M:%SZ", gmtime(&secs));
		cr_expect_str_eq(got, next_cases[i].next, "'%s' in %s after %s",
				 next_cases[i].expr, next_cases[i].zone,
				 next_cases[i].after);
		crontz_free(z);
	}
}

Test(cron, never_fires)
{
	struct cronexpr x;
	struct crontz *z;
	struct err e = ERR_INIT;
	int64_t next;

	cr_assert_eq(cronexpr_parse("0 0 30 2 *", &x, &e), 0);
	cr_assert_eq(crontz_open(NULL, &z, &e), 0);
	cr_assert_eq(cronexpr_next(&x, z, utc("2026-01-01T00:00:00Z"), &next,
				   &e), ERR_NOT_FOUND);
	cr_assert(strstr(e.msg, "never fires"), "%s", e.msg);
	/* Vixie OR: a restricted weekday makes Feb 30 fire on Mondays */
	cr_assert_eq(cronexpr_parse("0 0 30 2 1", &x, &e), 0);
	cr_assert_eq(cronexpr_next(&x, z, utc("2026-01-01T00:00:00Z"), &next,
				   &e), 0);
	cr_assert_eq(next, utc("2026-02-02T00:00:00Z"));
	crontz_free(z);
}

static const struct {
	const char *expr, *msg;
} bad_exprs[] = {
	{ "* 25 * * *", "field 2 (hour): 25 is out of range 0-23" },
	{ "61 * * * *", "field 1 (minute): 61 is out of range 0-59" },
	{ "* * 0 * *", "field 3 (day-of-month): 0 is out of range 1-31" },
	{ "* * 32 * *", "field 3 (day-of-month): 32 is out of range 1-31" },
	{ "* * * 13 *", "field 4 (month): 13 is out of range 1-12" },
	{ "* * * * 8", "field 5 (day-of-week): 8 is out of range 0-7" },
	{ "*/0 * * * *", "field 1 (minute): step in '*/0' must be 1-59" },
	{ "*/ * * * *", "field 1 (minute): '*/' has no step after '/'" },
	{ "5-2 * * * *", "field 1 (minute): range '5-2' is reversed" },
	{ "* * * foo *", "field 4 (month): unknown name 'foo'" },
	{ "* * * * funday", "field 5 (day-of-week): unknown name 'funday'" },
	{ "a * * * *", "field 1 (minute): 'a' is not a number" },
	{ "1x * * * *", "field 1 (minute): '1x' is not a number" },
	{ "1,,2 * * * *", "field 1 (minute): empty list item" },
	{ "1, * * * *", "field 1 (minute): empty list item" },
	{ "* * * *", "expected 5 fields (minute hour day-of-month month "
		     "day-of-week), got 4" },
	{ "", "expected 5 fields (minute hour day-of-month month "
	      "day-of-week), got 0" },
	{ "* * * * * *", "expected 5 fields (minute hour day-of-month month "
			 "day-of-week), got more than 5" },
	{ "@often", "unknown macro '@often'" },
	{ "@daily *", "unknown macro '@daily'" },
	{ "99999999999999999999 * * * *",
	  "field 1 (minute): 99999999999999999999 is out of range 0-59" },
};

Test(cron, parse_errors_name_the_field)
{
	struct cronexpr x;
	struct err e;
	size_t i;

	for (i = 0; i < sizeof(bad_exprs) / sizeof(bad_exprs[0]); i++) {
		err_clear(&e);
		cr_expect_eq(cronexpr_parse(bad_exprs[i].expr, &x, &e),
			     ERR_INVALID, "'%s' accepted", bad_exprs[i].expr);
		cr_expect(!strncmp(e.msg, bad_exprs[i].msg,
				   strlen(bad_exprs[i].msg)),
			  "'%s': got '%s'", bad_exprs[i].expr, e.msg);
	}
}

Test(cron, parse_bits)
{
	struct cronexpr x;
	struct err e = ERR_INIT;

	cr_assert_eq(cronexpr_parse("  0,30  */6\t1-7 * sun,7 ", &x, &e), 0,
		     "%s", e.msg);
	cr_expect_eq(x.minute, ((uint64_t)1 << 0) | ((uint64_t)1 << 30));
	cr_expect_eq(x.hour, (1u << 0) | (1u << 6) | (1u << 12) | (1u << 18));
	cr_expect_eq(x.dom, 0xfeu);
	cr_expect_eq(x.month, 0x1ffeu);
	cr_expect_eq(x.dow, 1u);
	cr_expect(!x.dom_star);
	cr_expect(!x.dow_star);
	cr_assert_eq(cronexpr_parse("@HOURLY", &x, &e), 0, "%s", e.msg);
	cr_expect_eq(x.minute, 1u);
	cr_expect_eq(x.hour, 0xffffffu);
}

Test(cron, zones)
{
	static const char *const good[] = {
		"UTC", "Etc/UTC", "Europe/Berlin", "America/New_York",
		"America/Argentina/Buenos_Aires", "Etc/GMT+5", "Asia/Kolkata",
	};
	static const char *const bad[] = {
		"../../etc/passwd", "/etc/localtime", "Mars/Olympus",
		"Europe/../../../etc/passwd", "Europe/./Berlin", ".", "Europe/",
		"Europe//Berlin", "Europe/Berlin\n", "Europe", "zone.tab",
		"tzdata.zi", "Europe/Berlin/x",
		"a_very_long_zone_name_that_exceeds_the_limit/of_sixty_four_chars",
	};
	struct crontz *z;
	struct err e;
	char title[16];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		err_clear(&e);
		cr_expect_eq(crontz_open(good[i], &z, &e), 0, "%s: %s", good[i],
			     e.msg);
		cr_expect_str_eq(crontz_name(z), good[i]);
		crontz_free(z);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err_clear(&e);
		z = NULL;
		cr_expect_eq(crontz_open(bad[i], &z, &e), ERR_INVALID,
			     "'%s' accepted", bad[i]);
		cr_expect(strstr(e.msg, "timezone '"), "%s", e.msg);
		cr_expect_null(z);
	}
	cr_assert_eq(crontz_open("Europe/Berlin", &z, &e), 0);
	crontz_format_short(z, utc("2026-03-05T08:07:00Z"), title);
	cr_expect_str_eq(title, "Mar 5 09:07");
	crontz_free(z);
	crontz_free(NULL);
}

/* ---- the cron_jobs hook and the fire, on a real store ------------------- */

#include "cron.h"
#include "store/store.h"
#include "testlib.h"

static struct schema *cj_schema;
static struct store *cj_store;
static char cj_dir[256], cj_user[ID_LEN + 1], cj_other[ID_LEN + 1];
static char cj_chat[ID_LEN + 1];

static void cj_setup(void)
{
	tl_store_setup(cj_dir, sizeof(cj_dir), "cron", NULL, 0, &cj_schema,
		       &cj_store);
	tl_create(cj_store, "users", "{'email': 'u@x.io', 'password': 'h', "
		  "'role': 'user'}", cj_user);
	tl_create(cj_store, "users", "{'email': 'o@x.io', 'password': 'h', "
		  "'role': 'user'}", cj_other);
	tl_put_new(cj_store, "chats", json_pack("{s:s, s:s}", "title", "t",
		   "user", cj_other), STORE_CREATE, NULL, cj_chat);
}

static void cj_teardown(void)
{
	tl_store_teardown(cj_dir, &cj_schema, &cj_store);
}

/* Create a job of cj_user: 0 or the error, e set. */
static int cj_put(const char *expr, const char *zone, const char *mode,
		  const char *chat, char id[ID_LEN + 1], struct err *e)
{
	struct store_txn *t = NULL;
	struct store_put p;
	struct record r;
	json_t *data;
	int rc;

	data = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name", "j",
			 "cron_expression", expr, "timezone", zone, "prompt",
			 "hello", "session_mode", mode, "chat", chat, "user",
			 cj_user);
	memset(&p, 0, sizeof(p));
	p.collection = "cron_jobs";
	p.data = data;
	p.mode = STORE_CREATE;
	record_init(&r);
	rc = store_begin(cj_store, &t, e);
	if (!rc)
		rc = store_txn_put(t, &p, &r, NULL, e);
	if (!rc) {
		rc = store_commit(t, e);
		if (id)
			snprintf(id, ID_LEN + 1, "%s", r.id);
	} else {
		store_abort(t);
	}
	record_release(&r);
	json_decref(data);
	return rc;
}

TestSuite(cron_store, .init = cj_setup, .fini = cj_teardown);

Test(cron_store, the_hook_names_the_field_and_stores_nothing)
{
	struct err e = ERR_INIT;
	int64_t n = -1;

	cr_assert_eq(cj_put("* 25 * * *", "UTC", "new", "", NULL, &e),
		     ERR_INVALID);
	cr_expect_str_eq(e.field, "cron_expression");
	cr_expect_str_eq(e.msg, "cron_expression: field 2 (hour): 25 is out "
			 "of range 0-23");
	err_clear(&e);
	cr_assert_eq(cj_put("* * * * *", "Nowhere/Land", "new", "", NULL, &e),
		     ERR_INVALID);
	cr_expect_str_eq(e.field, "timezone");
	err_clear(&e);
	cr_assert_eq(cj_put("* * * * *", "UTC", "existing", "", NULL, &e),
		     ERR_INVALID);
	cr_expect_str_eq(e.field, "chat");
	err_clear(&e);
	/* another user's chat */
	cr_assert_eq(cj_put("* * * * *", "UTC", "existing", cj_chat, NULL, &e),
		     ERR_INVALID);
	cr_expect_str_eq(e.field, "chat");
	cr_expect(strstr(e.msg, "another user"), "%s", e.msg);
	cr_assert_eq(store_count(cj_store, "cron_jobs", NULL, &n, &e), 0);
	cr_expect_eq(n, 0);
}

Test(cron_store, a_slot_fires_once)
{
	struct err e = ERR_INIT;
	struct cron_fire f;
	struct cron_batch b;
	struct record r;
	char id[ID_LEN + 1];
	int64_t n = -1, slot;

	cr_assert_eq(cj_put("* * * * *", "Europe/Berlin", "new", "", id, &e), 0,
		     "%s", e.msg);
	record_init(&r);
	cr_assert_eq(store_get(cj_store, "cron_jobs", id, &r, &e), 0);
	/* the schedule starts at its creation */
	slot = cron_parse_time(json_string_value(json_object_get(r.data,
						 "last_slot")));
	cr_assert_gt(slot, 0);
	record_release(&r);
	slot = (slot / 60000 + 1) * 60000;
	memset(&f, 0, sizeof(f));
	f.job_id = id;
	f.slot_ms = slot;
	b.fires = &f;
	b.n = 1;
	b.now_ms = slot + 5;
	cr_assert_eq(store_write(cj_store, cron_fire_txn, &b, &e), 0, "%s",
		     e.msg);
	cr_expect(f.fired);
	/* the same slot again (a retry, a second pass): nothing */
	cr_assert_eq(store_write(cj_store, cron_fire_txn, &b, &e), 0);
	cr_expect(f.skipped);
	cr_expect(!f.fired);
	cr_assert_eq(store_count(cj_store, "messages", NULL, &n, &e), 0);
	cr_expect_eq(n, 1);
	cr_assert_eq(store_count(cj_store, "chats", NULL, &n, &e), 0);
	cr_expect_eq(n, 2);
	record_init(&r);
	cr_assert_eq(store_get(cj_store, "cron_jobs", id, &r, &e), 0);
	cr_expect_str_eq(json_string_value(json_object_get(r.data,
			 "last_status")), "ok");
	cr_expect_eq(cron_parse_time(json_string_value(json_object_get(r.data,
			 "last_slot"))), slot);
	record_release(&r);
}
