/*
 * test_docker.c - the pure parts of docker.c: the log-frame demultiplexer
 * (frames split anywhere, lines across frames, TTY raw mode, corrupt
 * headers), the restart governor (quiet period, in-flight, budget and
 * breaker, backoff, manual restarts) as scripted scenarios, the
 * client's argument checks (hosts, names) that never reach an engine, the
 * client against a small fake engine for the failures Podman cannot
 * produce, and the containers reconciler's desired hash.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "docker.h"
#include "governor.h"
#include "containers.h"
#include "util.h"
#include "testlib.h"

/* ---- demultiplexer -------------------------------------------------- */

static int dtest_collect(void *arg, int stream, const char *line, size_t len)
{
	struct buf *out = arg;

	buf_printf(out, "%d:", stream);
	buf_add(out, line, len);
	buf_putc(out, '|');
	return 0;
}

static int dtest_stop_after_two(void *arg, int stream, const char *line,
				size_t len)
{
	struct buf *out = arg;

	dtest_collect(arg, stream, line, len);
	return out->len >= 6 ? 42 : 0;
}

/* Build a frame: header + payload. */
static void dtest_frame(struct buf *b, int stream, const char *payload)
{
	size_t n = strlen(payload);
	unsigned char h[8] = { (unsigned char)stream, 0, 0, 0,
			       (unsigned char)(n >> 24), (unsigned char)(n >> 16),
			       (unsigned char)(n >> 8), (unsigned char)n };

	buf_add(b, h, 8);
	buf_add(b, payload, n);
}

struct demux_case {
	const char *frames[6];   /* "1hello\n" = stream 1, payload "hello\n" */
	bool raw;
	const char *expect;      /* lines as "S:text|" */
};

static const struct demux_case demux_cases[] = {
	{ { "1line 25\n" }, false, "1:line 25|" },
	{ { "1a\nb\n", "2err\n" }, false, "1:a|1:b|2:err|" },
	/* a line split over two frames of the same stream */
	{ { "1hel", "1lo\n" }, false, "1:hello|" },
	/* interleaved partial lines keep apart per stream */
	{ { "1out-", "2err-", "1done\n", "2done\n" }, false,
	  "1:out-done|2:err-done|" },
	/* CRLF loses its CR; empty lines are lines; an empty frame is fine */
	{ { "1x\r\n\n", "1" }, false, "1:x|1:|" },
	/* unterminated last lines are flushed by finish, stdout first */
	{ { "2tail-err", "1tail-out" }, false, "1:tail-out|2:tail-err|" },
	/* stdin (0) is reported as stdout, system error (3) as stderr */
	{ { "0in\n", "3sys\n" }, false, "1:in|2:sys|" },
	/* TTY: raw bytes, no headers */
	{ { "1ttyline\r\nsecond\n" }, true, "1:ttyline|1:second|" },
};

/* Every case at every chunk size: frames may split anywhere. */
static void dtest_run(const struct demux_case *tc, size_t chunk)
{
	struct docker_demux dm;
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct err e = ERR_INIT;
	size_t i;

	for (i = 0; i < 6 && tc->frames[i]; i++) {
		if (tc->raw)
			buf_puts(&in, tc->frames[i] + 1);
		else
			dtest_frame(&in, tc->frames[i][0] - '0', tc->frames[i] + 1);
	}
	docker_demux_init(&dm, tc->raw);
	for (i = 0; i < in.len; i += chunk) {
		size_t n = in.len - i < chunk ? in.len - i : chunk;

		cr_assert_eq(docker_demux_feed(&dm, in.ptr + i, n, dtest_collect, &out, &e), 0,
			     "%s", e.msg);
	}
	cr_assert_eq(docker_demux_finish(&dm, dtest_collect, &out, &e), 0);
	cr_assert_str_eq(out.ptr, tc->expect, "chunk %zu: got '%s' want '%s'",
			 chunk, out.ptr, tc->expect);
	docker_demux_release(&dm);
	buf_release(&in);
	buf_release(&out);
}

/* Tables are walked inside one test each: Criterion runs tests in fresh
 * processes, where pointers inside parameter structs would dangle. */
Test(docker_demux, table)
{
	static const size_t chunks[] = { 1, 2, 3, 7, 8, 9, 4096 };
	size_t i, k;

	for (k = 0; k < sizeof(demux_cases) / sizeof(demux_cases[0]); k++)
		for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++)
			dtest_run(&demux_cases[k], chunks[i]);
}

Test(docker_demux, corrupt_header_is_refused_and_stays_refused)
{
	static const unsigned char bad[8] = { 7, 0, 0, 0, 0, 0, 0, 1 };
	static const unsigned char bad2[8] = { 1, 9, 0, 0, 0, 0, 0, 1 };
	struct docker_demux dm;
	struct buf out = BUF_INIT;
	struct err e = ERR_INIT;

	docker_demux_init(&dm, false);
	cr_assert_eq(docker_demux_feed(&dm, bad, 8, dtest_collect, &out, &e), ERR_INVALID);
	cr_assert(strstr(e.msg, "corrupt frame header"));
	cr_assert_eq(docker_demux_feed(&dm, "x", 1, dtest_collect, &out, &e), ERR_INVALID);
	docker_demux_release(&dm);
	docker_demux_init(&dm, false);
	cr_assert_eq(docker_demux_feed(&dm, bad2, 8, dtest_collect, &out, &e), ERR_INVALID);
	docker_demux_release(&dm);
	cr_assert_str_eq(out.ptr, "");
	buf_release(&out);
}

Test(docker_demux, long_lines_are_split_at_the_limit)
{
	struct docker_demux dm;
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct err e = ERR_INIT;
	char *big = malloc(DOCKER_LINE_MAX * 2 + 12);
	size_t n = DOCKER_LINE_MAX * 2 + 10;

	memset(big, 'a', n);
	big[n] = '\n';
	big[n + 1] = '\0';
	dtest_frame(&in, 1, big);
	docker_demux_init(&dm, false);
	cr_assert_eq(docker_demux_feed(&dm, in.ptr, in.len, dtest_collect, &out, &e), 0);
	cr_assert_eq(docker_demux_finish(&dm, dtest_collect, &out, &e), 0);
	/* three pieces: MAX, MAX, 10 */
	cr_assert_eq(out.len, 3 * 3 + n);
	cr_assert_eq(out.ptr[2 + DOCKER_LINE_MAX], '|');
	cr_assert(!strncmp(out.ptr + out.len - 14, "|1:aaaaaaaaaa|", 14));
	docker_demux_release(&dm);
	buf_release(&in);
	buf_release(&out);
	free(big);
}

Test(docker_demux, exactly_max_is_one_line)
{
	struct docker_demux dm;
	struct buf out = BUF_INIT;
	struct err e = ERR_INIT;
	char *big = malloc(DOCKER_LINE_MAX + 1);

	memset(big, 'b', DOCKER_LINE_MAX);
	big[DOCKER_LINE_MAX] = '\n';
	docker_demux_init(&dm, true);
	cr_assert_eq(docker_demux_feed(&dm, big, DOCKER_LINE_MAX, dtest_collect, &out, &e), 0);
	cr_assert_eq(docker_demux_feed(&dm, big + DOCKER_LINE_MAX, 1, dtest_collect, &out, &e), 0);
	cr_assert_eq(docker_demux_finish(&dm, dtest_collect, &out, &e), 0);
	cr_assert_eq(out.len, DOCKER_LINE_MAX + 3, "one line, no empty extra: %zu", out.len);
	docker_demux_release(&dm);
	buf_release(&out);
	free(big);
}

Test(docker_demux, callback_stops_the_feed)
{
	struct docker_demux dm;
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct err e = ERR_INIT;

	dtest_frame(&in, 1, "a\nb\nc\nd\n");
	docker_demux_init(&dm, false);
	cr_assert_eq(docker_demux_feed(&dm, in.ptr, in.len, dtest_stop_after_two, &out, &e), 42);
	cr_assert_str_eq(out.ptr, "1:a|1:b|");
	docker_demux_release(&dm);
	buf_release(&in);
	buf_release(&out);
}

/* ---- governor ------------------------------------------------------- */

enum gstep_do { G_NONE, G_BEGIN, G_OK, G_FAIL };

struct gstep {
	int64_t now;
	int64_t changed;          /* governor_input.changed_ms */
	const char *desired;
	bool stale, not_running, manual;
	enum governor_verdict expect;
	const char *reason;       /* NULL: not checked */
	int64_t wake;             /* -1: not checked */
	enum gstep_do act;        /* done after the decision */
};

struct gscenario {
	const char *name;
	struct gstep steps[16];
	int nsteps;
};

#define GS(now, d, st, nr, man, exp, why, wake, act) \
	{ now, 0, d, st, nr, man, GOVERNOR_##exp, why, wake, act }
#define GSC(now, chg, d, st, exp, why, wake, act) \
	{ now, chg, d, st, false, false, GOVERNOR_##exp, why, wake, act }

/* Config for every scenario: quiet 1000, max delay 5000, budget 3 per
 * 10000, cool-down 4000, backoff 500..2000. */
static const struct gscenario gov_cases[] = {
	{ "idle when nothing differs", {
		GS(0, "h1", false, false, false, IDLE, "", -1, G_NONE),
		GS(10, "h1", false, false, false, IDLE, "", -1, G_NONE),
	  }, 2 },
	{ "one change waits the quiet period then restarts once", {
		GS(0, "h1", false, false, false, IDLE, "", -1, G_NONE),
		GS(100, "h2", true, false, false, WAIT, "QuietPeriod", 1100, G_NONE),
		GS(600, "h2", true, false, false, WAIT, "QuietPeriod", 1100, G_NONE),
		GS(1100, "h2", true, false, false, RESTART, "FilesChanged", -1, G_BEGIN),
		GS(1200, "h2", true, false, false, WAIT, "ActionInFlight", 0, G_OK),
		GS(1300, "h2", false, false, false, IDLE, "", -1, G_NONE),
	  }, 6 },
	{ "a burst extends the quiet period (one restart)", {
		GS(0, "h1", true, false, false, WAIT, "QuietPeriod", 1000, G_NONE),
		GS(300, "h2", true, false, false, WAIT, "QuietPeriod", 1300, G_NONE),
		GS(900, "h3", true, false, false, WAIT, "QuietPeriod", 1900, G_NONE),
		GS(1500, "h4", true, false, false, WAIT, "QuietPeriod", 2500, G_NONE),
		GS(2500, "h4", true, false, false, RESTART, "FilesChanged", -1, G_BEGIN),
	  }, 5 },
	{ "an endless burst still restarts after max delay", {
		GS(0, "a", true, false, false, WAIT, "QuietPeriod", 1000, G_NONE),
		GS(900, "b", true, false, false, WAIT, "QuietPeriod", 1900, G_NONE),
		GS(1800, "c", true, false, false, WAIT, "QuietPeriod", 2800, G_NONE),
		GS(2700, "d", true, false, false, WAIT, "QuietPeriod", 3700, G_NONE),
		GS(3600, "e", true, false, false, WAIT, "QuietPeriod", 4600, G_NONE),
		GS(4500, "f", true, false, false, WAIT, "QuietPeriod", 5000, G_NONE),
		GS(5000, "f", true, false, false, RESTART, "FilesChanged", -1, G_BEGIN),
	  }, 7 },
	{ "a change during the restart gets its own quiet period", {
		GS(0, "a", true, false, false, WAIT, "QuietPeriod", 1000, G_NONE),
		GS(1000, "a", true, false, false, RESTART, "FilesChanged", -1, G_BEGIN),
		GS(1100, "b", true, false, false, WAIT, "ActionInFlight", 0, G_OK),
		GS(1200, "b", true, false, false, WAIT, "QuietPeriod", 2100, G_NONE),
		GS(2100, "b", true, false, false, RESTART, "FilesChanged", -1, G_BEGIN),
	  }, 5 },
	{ "not running starts at once, without quiet period", {
		GS(0, "a", false, true, false, START, "NotRunning", -1, G_BEGIN),
		GS(10, "a", false, true, false, WAIT, "ActionInFlight", 0, G_OK),
		GS(20, "a", false, false, false, IDLE, "", -1, G_NONE),
	  }, 3 },
	{ "budget exhausted opens the breaker, cool-down closes it", {
		GS(0, "a", false, true, false, START, "NotRunning", -1, G_BEGIN),
		GS(1, "a", false, true, false, WAIT, "ActionInFlight", 0, G_OK),
		GS(2, "a", false, true, false, START, "NotRunning", -1, G_BEGIN),
		GS(3, "a", false, true, false, WAIT, "ActionInFlight", 0, G_OK),
		GS(4, "a", false, true, false, START, "NotRunning", -1, G_BEGIN),
		GS(5, "a", false, true, false, WAIT, "ActionInFlight", 0, G_OK),
		GS(6, "a", false, true, false, WAIT, "RestartBudgetExhausted", 4006, G_NONE),
		GS(3000, "a", false, true, false, WAIT, "RestartBudgetExhausted", 4006, G_NONE),
		GS(4006, "a", false, true, false, START, "NotRunning", -1, G_BEGIN),
	  }, 9 },
	{ "a manual restart skips quiet period and breaker", {
		GS(0, "a", true, false, false, WAIT, "QuietPeriod", 1000, G_NONE),
		GS(10, "a", true, false, true, RESTART, "ManualRestart", -1, G_BEGIN),
		GS(20, "a", false, false, true, WAIT, "ActionInFlight", 0, G_OK),
		GS(30, "a", false, false, true, RESTART, "ManualRestart", -1, G_BEGIN),
		GS(40, "a", false, false, false, IDLE, "", -1, G_OK),
		GS(50, "a", false, true, false, START, "NotRunning", -1, G_BEGIN),
		GS(60, "a", false, true, false, WAIT, "ActionInFlight", 0, G_OK),
		GS(70, "a", false, true, false, WAIT, "RestartBudgetExhausted", 4070, G_NONE),
		GS(80, "a", false, false, true, RESTART, "ManualRestart", -1, G_NONE),
	  }, 9 },
	{ "failures back off exponentially, capped, and reset on success", {
		GS(0, "a", false, true, false, START, "NotRunning", -1, G_BEGIN),
		GS(10, "a", false, true, false, WAIT, "ActionInFlight", 0, G_FAIL),
		GS(20, "a", false, true, false, WAIT, "Backoff", 510, G_NONE),
		GS(510, "a", false, true, false, START, "NotRunning", -1, G_BEGIN),
		GS(520, "a", false, true, false, WAIT, "ActionInFlight", 0, G_FAIL),
		GS(530, "a", false, true, false, WAIT, "Backoff", 1520, G_NONE),
		GS(1520, "a", false, true, false, START, "NotRunning", -1, G_BEGIN),
		GS(1530, "a", false, true, false, WAIT, "ActionInFlight", 0, G_OK),
		GS(1540, "a", false, false, false, IDLE, "", -1, G_NONE),
	  }, 9 },
	{ "the quiet period runs from the change, not from its discovery", {
		GSC(0, 0, "a", false, IDLE, "", -1, G_NONE),
		GSC(700, 400, "b", true, WAIT, "QuietPeriod", 1400, G_NONE),
		/* a change time before the burst's last one does not go back */
		GSC(800, 100, "c", true, WAIT, "QuietPeriod", 1400, G_NONE),
		/* a change time in the future counts as now */
		GSC(900, 5000, "d", true, WAIT, "QuietPeriod", 1900, G_NONE),
		GSC(1900, 0, "d", true, RESTART, "FilesChanged", -1, G_BEGIN),
	  }, 5 },
	{ "old actions leave the window", {
		GS(0, "a", false, true, false, START, "NotRunning", -1, G_BEGIN),
		GS(1, "a", false, true, false, WAIT, "ActionInFlight", 0, G_OK),
		GS(2, "a", false, true, false, START, "NotRunning", -1, G_BEGIN),
		GS(3, "a", false, true, false, WAIT, "ActionInFlight", 0, G_OK),
		GS(4, "a", false, true, false, START, "NotRunning", -1, G_BEGIN),
		GS(5, "a", false, true, false, WAIT, "ActionInFlight", 0, G_OK),
		GS(10001, "a", false, true, false, START, "NotRunning", -1, G_BEGIN),
	  }, 7 },
};

static void gtest_run(const struct gscenario *sc)
{
	struct governor_config c;
	struct governor g;
	int i;

	governor_config_default(&c);
	c.quiet_ms = 1000;
	c.max_delay_ms = 5000;
	c.budget = 3;
	c.window_ms = 10000;
	c.cooldown_ms = 4000;
	c.backoff_min_ms = 500;
	c.backoff_max_ms = 2000;
	governor_init(&g);
	for (i = 0; i < sc->nsteps; i++) {
		const struct gstep *s = &sc->steps[i];
		struct governor_input in = { s->desired, s->changed, s->stale,
					       s->not_running, s->manual };
		struct governor_decision d;

		governor_decide(&g, &c, s->now, &in, &d);
		cr_assert_eq(d.verdict, s->expect, "%s: step %d: verdict %d, want %d (%s)",
			     sc->name, i, d.verdict, s->expect, d.reason);
		if (s->reason)
			cr_assert_str_eq(d.reason, s->reason, "%s: step %d: reason %s",
					 sc->name, i, d.reason);
		if (s->wake >= 0)
			cr_assert_eq(d.wake_ms, s->wake, "%s: step %d: wake %lld, want %lld",
				     sc->name, i, (long long)d.wake_ms, (long long)s->wake);
		if (s->act == G_BEGIN)
			governor_begin(&g, s->now);
		else if (s->act == G_OK || s->act == G_FAIL)
			governor_end(&g, &c, s->now, s->act == G_OK);
	}
}

Test(governor, scenarios)
{
	size_t k;

	for (k = 0; k < sizeof(gov_cases) / sizeof(gov_cases[0]); k++)
		gtest_run(&gov_cases[k]);
}

Test(governor, backoff_is_capped)
{
	struct governor_config c;
	struct governor g;
	int i;

	governor_config_default(&c);
	governor_init(&g);
	for (i = 0; i < GOVERNOR_BUDGET_MAX + 6; i++) {
		governor_begin(&g, 0);
		governor_end(&g, &c, 0, false);
	}
	cr_assert_eq(g.retry_at_ms, c.backoff_max_ms);
	cr_assert_eq(g.ntimes, GOVERNOR_BUDGET_MAX);
	cr_assert(!g.in_flight);
}

Test(governor, breaker_reports_open)
{
	struct governor_config c;
	struct governor g;
	struct governor_input in = { "x", 0, false, true, false };
	struct governor_decision d;
	int i;

	governor_config_default(&c);
	governor_init(&g);
	for (i = 0; i < c.budget; i++) {
		governor_decide(&g, &c, i, &in, &d);
		cr_assert_eq(d.verdict, GOVERNOR_START);
		governor_begin(&g, i);
		governor_end(&g, &c, i, true);
	}
	cr_assert(!governor_breaker_open(&g, 100));
	governor_decide(&g, &c, 100, &in, &d);
	cr_assert_str_eq(d.reason, "RestartBudgetExhausted");
	cr_assert(governor_breaker_open(&g, 101));
	cr_assert(!governor_breaker_open(&g, 100 + c.cooldown_ms));
}

Test(governor, config_clamp)
{
	struct governor_config c = { -5, -1, 0, -1, -1, 10, 5 };

	governor_config_clamp(&c);
	cr_assert_eq(c.quiet_ms, 0);
	cr_assert_eq(c.budget, 1);
	cr_assert_eq(c.window_ms, 0);
	cr_assert_eq(c.backoff_max_ms, 10);
	c.budget = 1000;
	governor_config_clamp(&c);
	cr_assert_eq(c.budget, GOVERNOR_BUDGET_MAX);
}

/* ---- client argument checks (no engine) ------------------------------- */

struct host_case {
	const char *host;
	int rc;
};

static const struct host_case host_cases[] = {
	{ "unix:///var/run/docker.sock", 0 },
	{ "unix:///tmp/podman-ci/podman.sock", 0 },
	{ "tcp://docker-socket-proxy-write:2375", 0 },
	{ "tcp://127.0.0.1:23750", 0 },
	{ "http://127.0.0.1:2375", 0 },
	{ "unix://relative.sock", ERR_INVALID },
	{ "tcp://host:1/path", ERR_INVALID },
	{ "tcp://user@host:1", ERR_INVALID },
	{ "tcp://", ERR_INVALID },
	{ "https://host:2376", ERR_INVALID },
	{ "ssh://host", ERR_INVALID },
	{ "/var/run/docker.sock", ERR_INVALID },
	{ "tcp://a\nb:1", ERR_INVALID },
	{ "unix:///aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock",
	  ERR_INVALID },
};

Test(docker_client, hosts)
{
	size_t k;

	for (k = 0; k < sizeof(host_cases) / sizeof(host_cases[0]); k++) {
		const struct host_case *tc = &host_cases[k];
		struct docker_options o = { tc->host, 0, 0 };
		struct docker *d = NULL;
		struct err e = ERR_INIT;
		int rc = docker_new(&d, &o, &e);

		cr_assert_eq(rc, tc->rc, "%s: %d %s", tc->host, rc, e.msg);
		if (!rc)
			cr_assert_str_eq(docker_host(d), tc->host);
		else
			cr_assert(e.msg[0] && !strchr(e.msg, '\n'));
		docker_free(d);
	}
}

Test(docker_client, names)
{
	static const char *ok[] = { "pocketcoder-opencode", "a1", "x_y.z-0", "AB" };
	static const char *bad[] = { "", "a", "-x", ".x", "../etc", "a/b", "a b",
				     "a?b", "a%2fb", "caf\xc3\xa9", NULL };
	char longname[DOCKER_NAME_MAX + 2];
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		cr_assert(docker_name_ok(ok[i]), "%s", ok[i]);
	for (i = 0; bad[i]; i++)
		cr_assert(!docker_name_ok(bad[i]), "%s", bad[i]);
	cr_assert(!docker_name_ok(NULL));
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert(!docker_name_ok(longname));
	longname[DOCKER_NAME_MAX] = '\0';
	cr_assert(docker_name_ok(longname));
}

Test(docker_client, bad_names_never_reach_the_engine)
{
	/* The socket does not exist: a call that got as far as connecting
	 * would say "unreachable", not "not a container name". */
	struct docker_options o = { "unix:///nonexistent/docker.sock", 200, 500 };
	struct docker *d = NULL;
	struct docker_state st;
	struct err e = ERR_INIT;

	cr_assert_eq(docker_new(&d, &o, &e), 0);
	cr_assert_eq(docker_restart(d, "../../etc", 1, &e), ERR_INVALID);
	cr_assert(strstr(e.msg, "not a container name"));
	cr_assert_eq(docker_inspect(d, "a/b", &st, &e), ERR_INVALID);
	cr_assert_eq(docker_start(d, "x?y", &e), ERR_INVALID);
	cr_assert_eq(docker_stop(d, "", 1, &e), ERR_INVALID);
	cr_assert_eq(docker_ping(d, &e), ERR_UNAVAILABLE);
	cr_assert(strstr(e.msg, "unreachable"), "%s", e.msg);
	cr_assert_eq(docker_restart(d, "valid-name", 1, &e), ERR_UNAVAILABLE);
	docker_free(d);
}

/* ---- a fake engine for failures Podman cannot produce ------------------ */

/*
 * A tiny HTTP/1.1 server on a unix socket, one connection at a time, in a
 * thread: it records each request line and answers from a script keyed by
 * a path fragment. Podman cannot be made to hang mid-request, to answer
 * 500 "container state improper" on demand, to report an unhealthy
 * healthcheck without systemd timers, or to send a TTY container's raw log
 * next to garbage event lines; this can.
 */
struct fake_route {
	const char *match;        /* substring of the request line */
	int status;               /* 0: never answer (hang) */
	const char *body;
	size_t len;               /* 0: strlen(body) */
};

struct fake {
	int fd;
	char path[108];
	const struct fake_route *routes;
	size_t nroutes;
	pthread_t th;
	char lines[8][512];       /* request lines seen */
	int nlines;
};

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	char req[4096];
	int c;

	while ((c = accept(f->fd, NULL, NULL)) >= 0) {
		size_t got = 0;
		ssize_t n;
		char *eol, head[256];
		size_t i;

		while (got < sizeof(req) - 1 &&
		       (n = read(c, req + got, sizeof(req) - 1 - got)) > 0) {
			got += (size_t)n;
			req[got] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		req[got] = '\0';
		eol = strstr(req, "\r\n");
		if (eol)
			*eol = '\0';
		if (f->nlines < 8)
			snprintf(f->lines[f->nlines++], sizeof(f->lines[0]), "%.500s", req);
		for (i = 0; i < f->nroutes; i++)
			if (strstr(req, f->routes[i].match))
				break;
		if (i == f->nroutes || f->routes[i].status == 0) {
			if (i < f->nroutes) {
				usleep(1500 * 1000); /* hang: the client times out */
			}
			close(c);
			continue;
		}
		snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
			 f->routes[i].status);
		(void)!write(c, head, strlen(head));
		(void)!write(c, f->routes[i].body,
			     f->routes[i].len ? f->routes[i].len : strlen(f->routes[i].body));
		close(c);
	}
	return NULL;
}

static void fake_start(struct fake *f, const struct fake_route *routes, size_t n)
{
	struct sockaddr_un sa;

	memset(f, 0, sizeof(*f));
	f->routes = routes;
	f->nroutes = n;
	snprintf(f->path, sizeof(f->path), "/tmp/pctl-fake-%d.sock", (int)getpid());
	unlink(f->path);
	f->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert(f->fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	cr_assert_eq(bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(f->fd, 4), 0);
	cr_assert_eq(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	shutdown(f->fd, SHUT_RDWR);
	close(f->fd);
	pthread_join(f->th, NULL);
	unlink(f->path);
}

static struct docker *fake_client(struct fake *f, long timeout_ms)
{
	char host[128];
	struct docker_options o = { host, 500, timeout_ms };
	struct docker *d = NULL;
	struct err e = ERR_INIT;

	snprintf(host, sizeof(host), "unix://%s", f->path);
	cr_assert_eq(docker_new(&d, &o, &e), 0, "%s", e.msg);
	return d;
}

Test(docker_fake, hung_engine_times_out_as_unreachable)
{
	static const struct fake_route r[] = { { "/json", 0, "", 0 } };
	struct fake f;
	struct docker *d;
	struct docker_state st;
	struct err e = ERR_INIT;
	int64_t t0;

	fake_start(&f, r, 1);
	d = fake_client(&f, 300);
	t0 = util_monotonic_ms();
	cr_assert_eq(docker_inspect(d, "svc", &st, &e), ERR_UNAVAILABLE);
	cr_assert(util_monotonic_ms() - t0 < 2000, "took %lld ms",
		  (long long)(util_monotonic_ms() - t0));
	cr_assert(strstr(e.msg, "unreachable"), "%s", e.msg);
	docker_free(d);
	fake_stop(&f);
}

Test(docker_fake, engine_errors_carry_its_message)
{
	static const struct fake_route r[] = {
		{ "/restart", 500, "{\"cause\":\"x\",\"message\":\"container state improper\",\"response\":500}", 0 },
		{ "/start", 404, "{\"message\":\"no container with name or ID \\\"svc\\\" found\\nsecond line\"}", 0 },
		{ "/stop", 502, "<html>bad gateway</html>", 0 },
	};
	struct fake f;
	struct docker *d;
	struct err e = ERR_INIT;

	fake_start(&f, r, 3);
	d = fake_client(&f, 2000);
	cr_assert_eq(docker_restart(d, "svc", 7, &e), ERR_CONFLICT);
	cr_assert(strstr(e.msg, "container state improper"), "%s", e.msg);
	cr_assert(strstr(f.lines[0], "POST /v1.41/containers/svc/restart?t=7 "), "%s", f.lines[0]);
	cr_assert_eq(docker_start(d, "svc", &e), ERR_NOT_FOUND);
	cr_assert(strstr(e.msg, "no container with name"), "%s", e.msg);
	cr_assert(!strchr(e.msg, '\n'));
	cr_assert_eq(docker_stop(d, "svc", 3, &e), ERR_ENGINE);
	cr_assert(strstr(e.msg, "502"), "%s", e.msg);
	docker_free(d);
	fake_stop(&f);
}

Test(docker_fake, inspect_reads_health_tty_and_time)
{
	static const struct fake_route r[] = {
		{ "/json", 200,
		  "{\"Id\":\"abc\",\"State\":{\"Status\":\"running\",\"Running\":true,"
		  "\"StartedAt\":\"2026-11-25T18:37:57.5+02:00\",\"ExitCode\":0,"
		  "\"Health\":{\"Status\":\"unhealthy\"}},"
		  "\"Config\":{\"Tty\":true,\"Healthcheck\":{\"Test\":[\"CMD\",\"true\"]}}}", 0 },
	};
	struct fake f;
	struct docker *d;
	struct docker_state st;
	struct err e = ERR_INIT;

	fake_start(&f, r, 1);
	d = fake_client(&f, 2000);
	cr_assert_eq(docker_inspect(d, "svc", &st, &e), 0, "%s", e.msg);
	cr_assert(st.running);
	cr_assert(st.tty);
	cr_assert(st.has_health);
	cr_assert_str_eq(st.health, "unhealthy");
	/* 16:37:57.5 UTC */
	cr_assert_eq(st.started_ns, (int64_t)1795624677 * 1000000000 + 500000000,
		     "%lld", (long long)st.started_ns);
	docker_free(d);
	fake_stop(&f);
}

static int ftest_lines(void *arg, int stream, const char *line, size_t len)
{
	struct buf *b = arg;

	buf_printf(b, "%d:", stream);
	buf_add(b, line, len);
	buf_putc(b, '|');
	return 0;
}

Test(docker_fake, tty_logs_are_read_raw)
{
	static const struct fake_route r[] = {
		{ "/json", 200, "{\"State\":{\"Running\":true},\"Config\":{\"Tty\":true}}", 0 },
		{ "/logs", 200, "first\r\nsecond\nno newline", 0 },
	};
	struct docker_logs_options lo = { 10, false, 0, 2000 };
	struct buf out = BUF_INIT;
	struct fake f;
	struct docker *d;
	struct err e = ERR_INIT;

	fake_start(&f, r, 2);
	d = fake_client(&f, 2000);
	cr_assert_eq(docker_logs(d, "svc", &lo, ftest_lines, NULL, &out, &e), 0, "%s", e.msg);
	cr_assert_str_eq(out.ptr, "1:first|1:second|1:no newline|");
	cr_assert(strstr(f.lines[1], "tail=10&follow=0"), "%s", f.lines[1]);
	buf_release(&out);
	docker_free(d);
	fake_stop(&f);
}

static int ftest_events(void *arg, const struct docker_event *ev)
{
	struct buf *b = arg;

	buf_printf(b, "%s/%s/%s/%lld|", ev->type, ev->action, ev->name,
		   (long long)ev->time_ns);
	return 0;
}

Test(docker_fake, events_stream_lines_skip_garbage)
{
	static const struct fake_route r[] = {
		{ "/events", 200,
		  "{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":\"i\","
		  "\"Attributes\":{\"name\":\"svc\"}},\"time\":5,\"timeNano\":5000000007}\n"
		  "not json\n\n"
		  "{\"status\":\"start\",\"id\":\"j\",\"Type\":\"container\",\"time\":6}\n"
		  "{\"Type\":\"container\",\"Action\":\"stop\"", 0 },
	};
	const char *names[] = { "svc", "other" };
	struct buf out = BUF_INIT;
	struct fake f;
	struct docker *d;
	struct err e = ERR_INIT;

	fake_start(&f, r, 1);
	d = fake_client(&f, 2000);
	cr_assert_eq(docker_events(d, names, 2, (int64_t)1700000000 * 1000000000 + 5,
				   ftest_events, NULL, &out, &e), 0, "%s", e.msg);
	cr_assert_str_eq(out.ptr, "container/die/svc/5000000007|container/start//6000000000|");
	cr_assert(strstr(f.lines[0], "since=1700000000.000000005"), "%s", f.lines[0]);
	cr_assert(strstr(f.lines[0], "%22container%22%3A%5B%22svc%22%2C%22other%22%5D"),
		  "%s", f.lines[0]);
	cr_assert_eq(docker_events(d, (const char *[]){ "../x" }, 1, 0, ftest_events,
				   NULL, &out, &e), ERR_INVALID);
	buf_release(&out);
	docker_free(d);
	fake_stop(&f);
}

/* ---- the desired hash of a container's files --------------------------- */

static void htest_hash(const char *root, const char *files_json,
		       char out[CONTAINERS_HASH_LEN + 1])
{
	json_t *files = json_loads(files_json, 0, NULL);
	struct err e = ERR_INIT;

	cr_assert_not_null(files);
	cr_assert_eq(containers_hash_files(root, files, out, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(strlen(out), CONTAINERS_HASH_LEN);
	json_decref(files);
}

Test(containers_hash, changes_with_content_and_presence_only)
{
	char root[] = "/tmp/pctl-hash-XXXXXX", a[65], b[65], c[65], d[65];
	char cmd[128];
	int64_t newest = 0;
	struct err e = ERR_INIT;
	json_t *files;

	cr_assert_not_null(mkdtemp(root));
	/* a missing file is a marker, not an error */
	htest_hash(root, "[\"x/llm.env\", \"agents/\"]", a);
	tl_write(root, "x/llm.env", "K='v'\n");
	htest_hash(root, "[\"x/llm.env\", \"agents/\"]", b);
	cr_assert_str_neq(a, b);
	/* order and duplicates of the list do not matter */
	htest_hash(root, "[\"agents/\", \"x/llm.env\", \"x/llm.env\"]", c);
	cr_assert_str_eq(b, c);
	/* a file appearing under a directory entry changes it, as does its
	 * content; rewriting the same bytes does not */
	tl_write(root, "agents/poco.md", "one");
	htest_hash(root, "[\"x/llm.env\", \"agents/\"]", c);
	cr_assert_str_neq(b, c);
	tl_write(root, "agents/sub/deep.md", "two");
	htest_hash(root, "[\"x/llm.env\", \"agents/\"]", d);
	cr_assert_str_neq(c, d);
	tl_write(root, "agents/sub/deep.md", "two");
	htest_hash(root, "[\"x/llm.env\", \"agents/\"]", c);
	cr_assert_str_eq(c, d);
	/* an empty directory differs from a missing one */
	htest_hash(root, "[\"empty/\"]", a);
	snprintf(cmd, sizeof(cmd), "%s/empty", root);
	cr_assert_eq(mkdir(cmd, 0755), 0);
	htest_hash(root, "[\"empty/\"]", b);
	cr_assert_str_neq(a, b);
	files = json_loads("[\"x/llm.env\"]", 0, NULL);
	cr_assert_eq(containers_hash_files(root, files, a, &newest, &e), 0);
	cr_assert(newest > 0);
	json_decref(files);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	cr_assert_eq(system(cmd), 0);
}

Test(containers_hash, refuses_unsafe_paths)
{
	static const char *bad[] = {
		"[\"/etc/passwd\"]", "[\"../x\"]", "[\"a/../../x\"]", "[\"a/./b\"]",
		"[\"\"]", "[\"a//b\"]", "[\"a\\nb\"]", "[1]", "{\"a\":1}", "\"x\"", NULL
	};
	char out[65];
	size_t i;

	for (i = 0; bad[i]; i++) {
		json_t *files = json_loads(bad[i], JSON_DECODE_ANY, NULL);
		struct err e = ERR_INIT;

		cr_assert_not_null(files, "%s", bad[i]);
		cr_assert_eq(containers_hash_files("/tmp", files, out, NULL, &e), ERR_INVALID,
			     "%s accepted", bad[i]);
		cr_assert_str_eq(e.field, "files");
		json_decref(files);
	}
}
