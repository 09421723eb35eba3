/*
 * test_client.c - the CLI's HTTP client (client.c) against a canned
 * one-shot HTTP server on loopback, and the CLI's option set-up in cli.c
 * (cli_take_conn_opts, cli_take_output, cli_operands).
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"

/* ---- a one-shot server ---------------------------------------------- */

struct canned {
	int fd;                 /* listening socket */
	const char *reply;      /* raw HTTP reply, or NULL: never answer */
	char request[4096];     /* what the client sent (head and body) */
	int hold_ms;            /* NULL reply: keep the connection this long */
};

static int tc_listen(int *port)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	cr_assert(listen(fd, 4) == 0);
	cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void *tc_serve(void *arg)
{
	struct canned *c = arg;
	size_t got = 0;
	ssize_t n;
	int conn = accept(c->fd, NULL, NULL);

	if (conn < 0)
		return NULL;
	/* Read until the head (and a short body) has arrived. */
	while (got + 1 < sizeof(c->request)) {
		n = recv(conn, c->request + got, sizeof(c->request) - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
		c->request[got] = '\0';
		if (strstr(c->request, "\r\n\r\n") &&
		    (!strstr(c->request, "Content-Length") ||
		     strstr(c->request, "\r\n\r\n")[4] != '\0'))
			break;
	}
	if (c->reply)
		(void)!write(conn, c->reply, strlen(c->reply));
	else
		usleep((useconds_t)c->hold_ms * 1000);
	close(conn);
	return NULL;
}

/* Run one call against a canned reply; with fn, a client_stream() of it. */
static int tc_run(const char *reply, int timeout_ms, const char *method,
		  const char *body, json_t **out, struct err *e,
		  char request[4096], client_line_fn fn, void *arg)
{
	struct canned c;
	struct client *cl = NULL;
	struct client_options o;
	pthread_t th;
	char url[64];
	int port, rc;

	memset(&c, 0, sizeof(c));
	c.fd = tc_listen(&port);
	c.reply = reply;
	c.hold_ms = 1500;
	cr_assert(pthread_create(&th, NULL, tc_serve, &c) == 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	memset(&o, 0, sizeof(o));
	o.url = url;
	o.token = "tok123";
	o.timeout_ms = timeout_ms;
	cr_assert(client_new(&cl, &o, e) == 0, "%s", e->msg);
	rc = fn ? client_stream(cl, "/api/v1/x?y=1", fn, arg, e) :
	     client_call(cl, method, "/api/v1/x?y=1", "application/yaml", body,
			 body ? strlen(body) : 0, out, e);
	pthread_join(th, NULL);
	close(c.fd);
	client_free(cl);
	if (request)
		memcpy(request, c.request, sizeof(c.request));
	return rc;
}

static int tc_call(const char *reply, int timeout_ms, const char *method,
		   const char *body, json_t **out, struct err *e,
		   char request[4096])
{
	return tc_run(reply, timeout_ms, method, body, out, e, request, NULL,
		      NULL);
}

#define OK_HEAD "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"

struct reply_case {
	const char *reply;
	int code;                /* expected return */
	const char *msg;         /* expected in e.msg, or the reply's JSON */
	const char *field;       /* expected e.field, or NULL */
};

static const struct reply_case reply_cases[] = {
	{ OK_HEAD "Content-Length: 11\r\n\r\n{\"items\":1}", 0, "items", NULL },
	{ OK_HEAD "Content-Length: 0\r\n\r\n", 0, NULL, NULL },
	{ "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"
	  "{\"status\":400,\"message\":\"a.yaml:3:5: bad\",\"data\":{\"spec.mode\":{\"code\":\"x\",\"message\":\"m\"}}}",
	  ERR_INVALID, "a.yaml:3:5: bad", "spec.mode" },
	{ "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n"
	  "{\"status\":401,\"message\":\"no token\",\"data\":{}}",
	  ERR_UNAUTHORIZED, "no token", "" },
	{ "HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n"
	  "{\"status\":403,\"message\":\"not you\"}", ERR_FORBIDDEN, "not you", "" },
	{ "HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n"
	  "{\"status\":404,\"message\":\"gone\"}", ERR_NOT_FOUND, "gone", "" },
	{ "HTTP/1.1 409 Conflict\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
	  ERR_CONFLICT, "replied HTTP 409: {}", "" },
	{ "HTTP/1.1 413 Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig",
	  ERR_TOO_LARGE, "replied HTTP 413: big", "" },
	{ "HTTP/1.1 418 Teapot\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	  ERR_INVALID, "replied HTTP 418", "" },
	{ "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 9\r\nConnection: close\r\n\r\nupstream\n",
	  ERR_ENGINE, "replied HTTP 502: upstream ", "" },
	{ "HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	  ERR_UNAVAILABLE, "replied HTTP 503", "" },
	{ "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	  ERR_INTERNAL, "replied HTTP 500", "" },
	{ OK_HEAD "Content-Length: 8\r\n\r\nnot json", ERR_INVALID, "is not JSON", "" },
	{ "garbage that is not http\r\n\r\n", ERR_UNAVAILABLE,
	  "cannot reach pocketctl server at http://127.0.0.1:", "" },
};

Test(client, replies_map_to_codes_and_messages)
{
	size_t i;

	for (i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
		const struct reply_case *t = &reply_cases[i];
		struct err e = ERR_INIT;
		json_t *out = NULL;
		int rc = tc_call(t->reply, 0, "GET", NULL, &out, &e, NULL);

		cr_assert_eq(rc, t->code, "case %zu: rc %d (%s)", i, rc, e.msg);
		if (rc) {
			cr_assert_null(out, "case %zu", i);
			cr_assert(strstr(e.msg, t->msg), "case %zu: '%s'", i,
				  e.msg);
			if (t->field)
				cr_assert_str_eq(e.field, t->field, "case %zu", i);
			continue;
		}
		cr_assert_not_null(out, "case %zu", i);
		if (t->msg)
			cr_assert(json_is_integer(json_object_get(out, t->msg)),
				  "case %zu", i);
		else
			cr_assert(json_is_null(out), "case %zu", i);
		json_decref(out);
	}
}

Test(client, sends_method_token_type_and_body)
{
	char req[4096];
	struct err e = ERR_INIT;
	json_t *out = NULL;
	int rc;

	rc = tc_call(OK_HEAD "Content-Length: 2\r\n\r\n{}", 0, "POST",
		     "kind: X\n", &out, &e, req);
	cr_assert_eq(rc, 0, "%s", e.msg);
	json_decref(out);
	cr_assert(!strncmp(req, "POST /api/v1/x?y=1 HTTP/1.1\r\n", 29), "%s", req);
	cr_assert(strstr(req, "Authorization: Bearer tok123\r\n"), "%s", req);
	cr_assert(strstr(req, "Content-Type: application/yaml\r\n"), "%s", req);
	cr_assert(!strstr(req, "Expect:"), "%s", req);
	cr_assert(strstr(req, "\r\n\r\nkind: X\n"), "%s", req);

	rc = tc_call(OK_HEAD "Content-Length: 2\r\n\r\n{}", 0, "DELETE", NULL,
		     NULL, &e, req);
	cr_assert_eq(rc, 0, "%s", e.msg);
	cr_assert(!strncmp(req, "DELETE /api/v1/x?y=1 ", 21), "%s", req);
	cr_assert(!strstr(req, "Content-Type"), "%s", req);
}

Test(client, a_silent_server_times_out)
{
	struct err e = ERR_INIT;
	int rc = tc_call(NULL, 300, "GET", NULL, NULL, &e, NULL);

	cr_assert_eq(rc, ERR_UNAVAILABLE, "%d %s", rc, e.msg);
	cr_assert(strstr(e.msg, "cannot reach pocketctl server at"), "%s", e.msg);
	cr_assert(strstr(e.msg, "imed out"), "%s", e.msg);
}

Test(client, a_closed_port_cannot_be_reached)
{
	struct client *c = NULL;
	struct client_options o;
	struct err e = ERR_INIT;
	char url[64];
	int port, fd = tc_listen(&port), rc;

	close(fd);   /* nobody listens there now */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	memset(&o, 0, sizeof(o));
	o.url = url;
	cr_assert_eq(client_new(&c, &o, &e), 0);
	rc = client_call(c, "GET", "/healthz", NULL, NULL, 0, NULL, &e);
	cr_assert_eq(rc, ERR_UNAVAILABLE);
	cr_assert(strstr(e.msg, url), "%s", e.msg);
	cr_assert_eq(client_last_status(c), 0);
	client_free(c);
}

Test(client, bad_urls_and_tokens_are_refused)
{
	static const struct {
		const char *url, *token, *msg;
	} cases[] = {
		{ "", NULL, "empty" },
		{ "ftp://127.0.0.1", NULL, "must start with http" },
		{ "127.0.0.1:8090", NULL, "must start with http" },
		{ "http://a b", NULL, "spaces or control" },
		{ "http://a\r\nX: y", NULL, "spaces or control" },
		{ "http://a", "tok\r\nX-Evil: 1", "control characters" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct client *c = NULL;
		struct client_options o;
		struct err e = ERR_INIT;

		memset(&o, 0, sizeof(o));
		o.url = cases[i].url;
		o.token = cases[i].token;
		cr_assert_eq(client_new(&c, &o, &e), ERR_INVALID, "case %zu", i);
		cr_assert_null(c);
		cr_assert(strstr(e.msg, cases[i].msg), "case %zu: %s", i, e.msg);
	}
}

Test(client, url_keeps_no_trailing_slash_and_escape_works)
{
	struct client *c = NULL;
	struct client_options o;
	struct err e = ERR_INIT;
	char *s;

	memset(&o, 0, sizeof(o));
	o.url = "https://example.test:8443///";
	cr_assert_eq(client_new(&c, &o, &e), 0);
	cr_assert_str_eq(client_url(c), "https://example.test:8443");
	s = client_escape(c, "a b/c?d&e");
	cr_assert_str_eq(s, "a%20b%2Fc%3Fd%26e");
	free(s);
	client_free(c);
	client_free(NULL);
}

/* ---- cli_take_conn_opts ---------------------------------------------- */

/* in (NULL-terminated) into argv (room for 8); returns argc. */
static int tc_argv(const char *const *in, char **argv)
{
	int argc = 0;

	memset(argv, 0, 8 * sizeof(*argv));
	while (in[argc]) {
		argv[argc] = (char *)in[argc];
		argc++;
	}
	return argc;
}

/* argv after an option taker returned argc: exactly out. */
static void tc_assert_argv(char **argv, int argc, const char *const *out,
			   size_t i)
{
	int k;

	for (k = 0; k < argc; k++)
		cr_assert_str_eq(argv[k], out[k], "case %zu/%d", i, k);
	cr_assert_null(argv[argc], "case %zu", i);
}

Test(client, connection_options_leave_the_rest)
{
	static const struct {
		const char *in[8];
		const char *out[8];
		bool offline;
		const char *token;
		int rc;
	} cases[] = {
		{ { "get", "aiagent", NULL }, { "get", "aiagent", NULL }, false, NULL, 2 },
		{ { "get", "--offline", "aiagent", NULL }, { "get", "aiagent", NULL }, true, NULL, 2 },
		{ { "apply", "-f", "x", "--token", "T", NULL }, { "apply", "-f", "x", NULL }, false, "T", 3 },
		{ { "apply", "--token=U", "--offline", NULL }, { "apply", NULL }, true, "U", 1 },
		{ { "get", "--", "--offline", NULL }, { "get", "--", "--offline", NULL }, false, NULL, 3 },
		{ { "get", "--token", NULL }, { NULL }, false, NULL, -1 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[8];
		struct cli cli;
		int argc = tc_argv(cases[i].in, argv), rc;

		memset(&cli, 0, sizeof(cli));
		rc = cli_take_conn_opts(&cli, "test", argc, argv);
		cr_assert_eq(rc, cases[i].rc, "case %zu: %d", i, rc);
		if (rc < 0)
			continue;
		cr_assert_eq(cli.offline, cases[i].offline, "case %zu", i);
		if (cases[i].token)
			cr_assert_str_eq(cli.token, cases[i].token, "case %zu", i);
		else
			cr_assert_null(cli.token, "case %zu", i);
		tc_assert_argv(argv, rc, cases[i].out, i);
	}
}

/* ---- cli_take_output and cli_operands ------------------------------ */

Test(client, output_option_is_taken_out_and_checked)
{
	static const struct cli_command get = {
		.name = "get", .flags = CLI_CONN | CLI_OUTPUT,
		.formats = "table|json|yaml", .usage = "get"
	};
	static const struct cli_command status = {
		.name = "status", .flags = CLI_CONN | CLI_OUTPUT,
		.formats = "text=table|json", .usage = "status"
	};
	static const struct {
		const struct cli_command *cmd;
		const char *in[8];
		const char *out[8];
		const char *output;
		int rc;
	} cases[] = {
		{ &get, { "get", "aiagent", NULL }, { "get", "aiagent", NULL }, "table", 2 },
		{ &get, { "get", "-o", "json", "aiagent", NULL }, { "get", "aiagent", NULL }, "json", 2 },
		{ &get, { "get", "aiagent", "-oyaml", NULL }, { "get", "aiagent", NULL }, "yaml", 2 },
		{ &get, { "get", "--output=json", "x", NULL }, { "get", "x", NULL }, "json", 2 },
		{ &get, { "get", "--output", "yaml", "-o", "json", NULL }, { "get", NULL }, "json", 1 },
		{ &get, { "get", "--", "-o", "json", NULL }, { "get", "--", "-o", "json", NULL }, "table", 4 },
		{ &get, { "get", "-o", "xml", NULL }, { NULL }, NULL, -1 },
		{ &get, { "get", "-o", NULL }, { NULL }, NULL, -1 },
		{ &status, { "status", "-o", "table", NULL }, { "status", NULL }, "text", 1 },
		{ &status, { "status", "-o", "json", NULL }, { "status", NULL }, "json", 1 },
		{ &status, { "status", NULL }, { "status", NULL }, "text", 1 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[8];
		struct cli cli;
		int argc = tc_argv(cases[i].in, argv), rc;

		memset(&cli, 0, sizeof(cli));
		cli.cmd = cases[i].cmd;
		rc = cli_take_output(&cli, argc, argv);
		cr_assert_eq(rc, cases[i].rc, "case %zu: %d", i, rc);
		if (rc < 0)
			continue;
		cr_assert_str_eq(cli.output, cases[i].output, "case %zu", i);
		tc_assert_argv(argv, rc, cases[i].out, i);
	}
}

Test(client, operands_refuse_options_left_over)
{
	char *ok[] = { (char *)"status", (char *)"llm-env", NULL };
	char *bad[] = { (char *)"status", (char *)"--bogus", NULL };
	char *dash[] = { (char *)"get", (char *)"--", (char *)"-x", NULL };

	cr_assert_eq(cli_operands("status", 2, ok), 1);
	cr_assert_eq(cli_operands("status", 2, bad), -1);
	cr_assert_eq(cli_operands("get", 3, dash), 2);
	cr_assert_str_eq(dash[2], "-x");
}

/* ---- client_stream(), cli_parse_duration() ------------------------------ */

struct lines {
	char got[16][32];
	int n;
	int stop_at;             /* stop after this many lines; 0: never */
};

static int collect(void *arg, const char *line, size_t len)
{
	struct lines *l = arg;

	cr_assert(memchr(line, '\n', len) == NULL && memchr(line, '\r', len) == NULL);
	if (l->n < 16)
		snprintf(l->got[l->n++], sizeof(l->got[0]), "%.*s", (int)len, line);
	return l->stop_at && l->n >= l->stop_at;
}

#define SSE_HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"

Test(client, stream_hands_over_each_line_as_it_comes)
{
	static const char *const want[] = { ": logs", "", "data: one", "", "data: two",
					    "", "event: end", "data: {}", "", "tail" };
	struct lines l;
	struct err e = ERR_INIT;
	char req[4096];
	size_t i;

	memset(&l, 0, sizeof(l));
	cr_assert_eq(tc_run(SSE_HEAD ": logs\n\ndata: one\r\n\ndata: two\n\nevent: end\ndata: {}\n\ntail",
			    5000, "GET", NULL, NULL, &e, req, collect, &l), 0, "%s", e.msg);
	cr_assert_eq(l.n, (int)(sizeof(want) / sizeof(want[0])));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert_str_eq(l.got[i], want[i]);
	cr_assert(strstr(req, "Accept: text/event-stream"));
	cr_assert(strstr(req, "Authorization: Bearer tok123"));
	/* the callback stops it: 0, nothing after */
	memset(&l, 0, sizeof(l));
	l.stop_at = 3;
	cr_assert_eq(tc_run(SSE_HEAD "a\nb\nc\nd\ne\n", 5000, "GET", NULL, NULL,
			    &e, NULL, collect, &l), 0, "%s", e.msg);
	cr_assert_eq(l.n, 3);
}

Test(client, stream_error_replies_are_errors_and_reach_no_callback)
{
	struct lines l;
	struct err e = ERR_INIT;

	memset(&l, 0, sizeof(l));
	cr_assert_eq(tc_run("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n"
			    "{\"status\":404,\"message\":\"container 'x' is not managed by pocketctl\"}\n",
			    5000, "GET", NULL, NULL, &e, NULL, collect, &l), ERR_NOT_FOUND);
	cr_assert_str_eq(e.msg, "container 'x' is not managed by pocketctl");
	cr_assert_eq(l.n, 0);
}

struct duration_case {
	const char *in;
	int rc;
	int64_t ms;
};

static const struct duration_case duration_cases[] = {
	{ "90", 0, 90000 }, { "45s", 0, 45000 }, { "2m", 0, 120000 },
	{ "1h30m", 0, 5400000 }, { "1m30", 0, 90000 }, { "1", 0, 1000 },
	{ "366h", 0, (int64_t)366 * 3600000 },
	{ "", -1, 0 }, { "0", -1, 0 }, { "0s", -1, 0 }, { "-5s", -1, 0 },
	{ "5x", -1, 0 }, { "s", -1, 0 }, { "1.5s", -1, 0 }, { " 5s", -1, 0 },
	{ "9999999999999999999s", -1, 0 }, { "367d", -1, 0 }, { "9000h", -1, 0 },
};

Test(cli, durations_parse_or_are_refused)
{
	size_t i;
	int64_t ms;

	for (i = 0; i < sizeof(duration_cases) / sizeof(duration_cases[0]); i++) {
		ms = -7;
		cr_assert_eq(cli_parse_duration(duration_cases[i].in, true, &ms),
			     duration_cases[i].rc, "'%s'", duration_cases[i].in);
		cr_assert_eq(ms, duration_cases[i].rc ? -7 : duration_cases[i].ms,
			     "'%s': %lld", duration_cases[i].in, (long long)ms);
	}
	/* serve's durations need their units */
	cr_assert_eq(cli_parse_duration("10", false, &ms), -1);
	cr_assert_eq(cli_parse_duration("1m30", false, &ms), -1);
	cr_assert_eq(cli_parse_duration("1m30s", false, &ms), 0);
	cr_assert_eq(ms, 90000);
}
