/*
 * test_conns.c - the connection guard of server/conns.c: the per-address
 * cap, the deadline of an idle connection (its real loopback socket sees
 * its reading side shut), and the order connections are cut in when the
 * pool runs short (idle first, oldest first; running requests and young
 * bodies never).
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <civetweb.h>

#include "server/conns.h"
#include "testlib.h"

static struct mg_request_info request_from(const char *addr, int port)
{
	struct mg_request_info ri;

	memset(&ri, 0, sizeof(ri));
	snprintf(ri.remote_addr, sizeof(ri.remote_addr), "%s", addr);
	ri.remote_port = port;
	ri.server_port = 80;
	return ri;
}

static struct conns *guard(int pool, int cap, int64_t header_ms)
{
	struct conns_options o = { pool, cap, header_ms, 60000 };
	struct err e = ERR_INIT;
	struct conns *c = NULL;

	cr_assert_eq(conns_new(&c, &o, &e), 0, "%s", e.msg);
	return c;
}

Test(conns, cap_per_address)
{
	struct conns *c = guard(8, 2, 10000);
	struct mg_request_info a1 = request_from("10.0.0.1", 1001),
			       a2 = request_from("10.0.0.1", 1002),
			       a3 = request_from("10.0.0.1", 1003),
			       b1 = request_from("10.0.0.2", 1001);
	struct conn_slot *s1 = conns_open(c, NULL), *s2 = conns_open(c, NULL),
			 *s3 = conns_open(c, NULL), *s4 = conns_open(c, NULL);
	struct conns_stats st;

	cr_expect_not(conns_request(c, s1, &a1));
	cr_expect_not(conns_request(c, s2, &a2));
	cr_expect(conns_request(c, s3, &a3), "a third from 10.0.0.1");
	cr_expect_not(conns_request(c, s4, &b1), "another address");
	/* one of the two closes: room for one more */
	conns_close(c, s1);
	conns_close(c, s3);
	s1 = conns_open(c, NULL);
	cr_expect_not(conns_request(c, s1, &a3));
	conns_get_stats(c, &st);
	cr_expect_eq(st.open, 3);
	cr_expect_eq(st.over_cap, 1);
	/* NULL slots (a connection the guard never saw) are let through */
	cr_expect_not(conns_request(c, NULL, &a1));
	conns_free(c);
}

/* A connected loopback pair: *server is the accepted end. */
static void tcp_pair(int *client, int *server, struct mg_request_info *ri)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int port, l = tl_tcp_listener(&port);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	*client = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(*client, (struct sockaddr *)&a, sizeof(a)), 0);
	*server = accept(l, NULL, NULL);
	cr_assert_geq(*server, 0);
	close(l);
	len = sizeof(a);
	cr_assert_eq(getpeername(*server, (struct sockaddr *)&a, &len), 0);
	memset(ri, 0, sizeof(*ri));
	inet_ntop(AF_INET, &a.sin_addr, ri->remote_addr, sizeof(ri->remote_addr));
	ri->remote_port = ntohs(a.sin_port);
	len = sizeof(a);
	cr_assert_eq(getsockname(*server, (struct sockaddr *)&a, &len), 0);
	ri->server_port = ntohs(a.sin_port);
}

/* True when a read on fd sees end of file within ms. */
static bool sees_eof(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char ch;

	return poll(&p, 1, ms) == 1 && recv(fd, &ch, 1, MSG_DONTWAIT) == 0;
}

Test(conns, idle_past_the_header_deadline_is_cut)
{
	struct conns *c = guard(64, 0, 300);
	struct err e = ERR_INIT;
	struct mg_request_info ri, ri2;
	struct conn_slot *s, *busy;
	int cl, sv, cl2, sv2;
	struct conns_stats st;

	tcp_pair(&cl, &sv, &ri);
	tcp_pair(&cl2, &sv2, &ri2);
	cr_assert_eq(conns_start(c, &e), 0, "%s", e.msg);
	s = conns_open(c, NULL);
	busy = conns_open(c, NULL);
	conns_request(c, s, &ri);
	conns_reply(s, false);           /* idle from now */
	conns_request(c, busy, &ri2);    /* a request that runs on */
	cr_expect_not(sees_eof(sv, 100), "cut before its deadline");
	cr_expect(sees_eof(sv, 3000), "not cut after its deadline");
	cr_expect_eq(conns_was_cut(s), CONNS_CUT_DEADLINE);
	/* the client's side still works: the server end was shut for
	 * reading only, and civetweb would close it now */
	cr_expect_eq(send(sv, "x", 1, MSG_NOSIGNAL), 1);
	cr_expect_not(sees_eof(sv2, 200), "a running request was cut");
	cr_expect_eq(conns_was_cut(busy), CONNS_CUT_NONE);
	conns_get_stats(c, &st);
	cr_expect_eq(st.cut[CONNS_CUT_DEADLINE], 1);
	conns_free(c);
	close(cl);
	close(sv);
	close(cl2);
	close(sv2);
}

Test(conns, short_of_workers_the_oldest_idle_go_first)
{
	/* 32 workers: shed below 4 free, up to 8 free */
	struct conns *c = guard(32, 0, 60000);
	struct conn_slot *idle[10], *busy[18], *body;
	struct err e = ERR_INIT;
	struct mg_request_info ri;
	char addr[32];
	int i, k = 0;

	cr_assert_eq(conns_start(c, &e), 0, "%s", e.msg);
	for (i = 0; i < 10; i++) {
		idle[i] = conns_open(c, NULL);
		snprintf(addr, sizeof(addr), "10.0.1.%d", i);
		ri = request_from(addr, 2000 + k++);
		conns_request(c, idle[i], &ri);
		conns_reply(idle[i], false);
		usleep(3000);   /* idle[0] is the oldest */
	}
	for (i = 0; i < 18; i++) {
		busy[i] = conns_open(c, NULL);
		ri = request_from("10.0.2.1", 3000 + k++);
		conns_request(c, busy[i], &ri);
	}
	body = conns_open(c, NULL);      /* 29 held, 3 free */
	ri = request_from("10.0.3.1", 4000);
	conns_request(c, body, &ri);
	conns_body(body, true);          /* young: never cut for room */
	usleep(400 * 1000);              /* a few rounds of the guard */
	/* 3 free + 5 cut = 8: the five oldest idle */
	for (i = 0; i < 5; i++)
		cr_expect_eq(conns_was_cut(idle[i]), CONNS_CUT_PRESSURE,
			     "idle %d not cut", i);
	for (i = 5; i < 10; i++)
		cr_expect_eq(conns_was_cut(idle[i]), CONNS_CUT_NONE,
			     "idle %d cut", i);
	for (i = 0; i < 18; i++)
		cr_expect_eq(conns_was_cut(busy[i]), CONNS_CUT_NONE);
	cr_expect_eq(conns_was_cut(body), CONNS_CUT_NONE);
	conns_free(c);
}

/* A stream handed to the pump and a cut exclude each other: a connection
 * the guard chose is never handed over (conns_detach() says no), and one
 * handed over is never cut, whatever its deadline. */
Test(conns, a_detached_stream_is_never_cut_and_a_cut_one_never_detached)
{
	struct conns *c = guard(64, 0, 200);
	struct err e = ERR_INIT;
	struct mg_request_info ri, ri2;
	struct conn_slot *streamed, *late;
	int cli, srv, cli2, srv2;

	tcp_pair(&cli, &srv, &ri);
	tcp_pair(&cli2, &srv2, &ri2);
	cr_assert_eq(conns_start(c, &e), 0, "%s", e.msg);
	streamed = conns_open(c, NULL);
	late = conns_open(c, NULL);
	conns_request(c, streamed, &ri);
	cr_assert(conns_detach(streamed));
	conns_reply(streamed, true);
	conns_request(c, late, &ri2);
	conns_reply(late, false);        /* idle: cut at the deadline */
	cr_expect(sees_eof(srv2, 3000), "the idle one was not cut");
	cr_expect_eq(conns_was_cut(late), CONNS_CUT_DEADLINE);
	cr_expect_not(conns_detach(late), "a cut connection was handed over");
	/* Long past the deadline: the stream's socket is open. */
	cr_expect_not(sees_eof(srv, 500), "the detached stream was cut");
	cr_expect_eq(conns_was_cut(streamed), CONNS_CUT_NONE);
	/* A stream that did not start after all is an ordinary connection
	 * again, and cut at its deadline. */
	conns_close(c, streamed);
	streamed = conns_open(c, NULL);
	conns_request(c, streamed, &ri);
	cr_assert(conns_detach(streamed));
	conns_reply(streamed, false);
	cr_expect(sees_eof(srv, 3000), "the undetached connection was not cut");
	cr_expect(conns_detach(NULL), "no guard: always");
	conns_free(c);
	close(cli);
	close(srv);
	close(cli2);
	close(srv2);
}
