/*
 * test_sse.c - SSE output (sse.h) over a real socketpair: chunk framing,
 * a socket that takes only part of a chunk (the rest goes out later, byte
 * for byte), a client that left, and HTTP/1.0's unframed body.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/sse.h"

static struct mg_request_info ri;
static struct http_req req;
static int sp[2];

static void sse_test_init(const char *version, struct sse *s)
{
	memset(&ri, 0, sizeof(ri));
	memset(&req, 0, sizeof(req));
	ri.http_version = version;
	req.ri = &ri;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	cr_assert_eq(fcntl(sp[0], F_SETFL, O_NONBLOCK), 0);
	sse_init(s, &req);
}

/* Read whatever the peer has, up to max bytes, waiting a little. */
static size_t sse_read_some(char *out, size_t max)
{
	ssize_t n;
	size_t got = 0;
	int tries = 0;

	while (got < max && tries < 50) {
		n = recv(sp[1], out + got, max - got, MSG_DONTWAIT);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (got)
			break;
		usleep(1000);
		tries++;
	}
	return got;
}

Test(sse, one_chunk_per_send_with_its_size)
{
	struct sse s;
	char buf[512];
	size_t n;

	sse_test_init("1.1", &s);
	cr_assert_eq(sse_event(&s, " ", "7", "create", "{\"a\":1}", 7), 0);
	cr_assert_eq(sse_event(&s, "", NULL, "PB_CONNECT", "{}", 2), 0);
	cr_assert_eq(sse_send(&s, sp[0]), 0);
	cr_assert_eq(sse_pending(&s), 0);
	n = sse_read_some(buf, sizeof(buf) - 1);
	buf[n] = '\0';
	cr_assert_str_eq(buf, "0000003d\r\n"
			      "id: 7\nevent: create\ndata: {\"a\":1}\n\n"
			      "event:PB_CONNECT\ndata:{}\n\n\r\n");
	cr_assert_str_eq(sse_tail(&s), "0\r\n\r\n");
	sse_release(&s);
	close(sp[0]);
	close(sp[1]);
}

Test(sse, a_full_socket_takes_the_rest_later_byte_for_byte)
{
	struct sse s;
	char *want, *got, data[1000];
	size_t total = 0, n, wlen, i;
	int rc, rounds = 0;
	int small = 4096;

	sse_test_init("1.1", &s);
	cr_assert_eq(setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &small,
				sizeof(small)), 0);
	memset(data, 'x', sizeof(data));
	for (i = 0; i < 300; i++) {
		data[0] = (char)('a' + i % 26);
		cr_assert_eq(sse_event(&s, " ", "1", "update", data,
				       sizeof(data)), 0);
	}
	wlen = s.out.len - SSE_CHUNK_HEAD;   /* the events, unframed */
	want = malloc(wlen);
	cr_assert_not_null(want);
	memcpy(want, s.out.ptr + SSE_CHUNK_HEAD, wlen);
	got = malloc(wlen + 64);
	cr_assert_not_null(got);

	rc = sse_send(&s, sp[0]);
	cr_assert_eq(rc, 1, "a 4 KiB socket cannot take 300 KB at once");
	cr_assert_gt(sse_pending(&s), 0);
	/* No new events may be added while a chunk is half-written. */
	cr_assert_null(sse_out(&s));
	while (rc == 1 && rounds++ < 10000) {
		n = sse_read_some(got + total, wlen + 64 - total);
		total += n;
		rc = sse_send(&s, sp[0]);
	}
	cr_assert_eq(rc, 0);
	total += sse_read_some(got + total, wlen + 64 - total);
	while (total < wlen + SSE_CHUNK_HEAD + 2) {
		n = sse_read_some(got + total, wlen + 64 - total);
		if (!n)
			break;
		total += n;
	}
	cr_assert_eq(total, wlen + SSE_CHUNK_HEAD + 2);
	cr_assert_eq(strtoul(got, NULL, 16), wlen);
	cr_assert_eq(memcmp(got + SSE_CHUNK_HEAD, want, wlen), 0);
	cr_assert_eq(memcmp(got + total - 2, "\r\n", 2), 0);
	/* Empty again: the next events start a new chunk. */
	cr_assert_not_null(sse_out(&s));
	free(want);
	free(got);
	sse_release(&s);
	close(sp[0]);
	close(sp[1]);
}

Test(sse, a_client_that_left_is_dead)
{
	struct sse s;

	sse_test_init("1.1", &s);
	close(sp[1]);
	cr_assert_eq(sse_event(&s, " ", "1", "create", "{}", 2), 0);
	cr_assert_eq(sse_send(&s, sp[0]), -1);
	cr_assert(s.dead);
	cr_assert_eq(sse_send(&s, sp[0]), -1);
	sse_release(&s);
	close(sp[0]);
}

Test(sse, http_1_0_is_unframed)
{
	struct sse s;
	char buf[128];
	size_t n;

	sse_test_init("1.0", &s);
	cr_assert_eq(sse_event(&s, " ", "2", "delete", "{}", 2), 0);
	cr_assert_eq(sse_send(&s, sp[0]), 0);
	n = sse_read_some(buf, sizeof(buf) - 1);
	buf[n] = '\0';
	cr_assert_str_eq(buf, "id: 2\nevent: delete\ndata: {}\n\n");
	cr_assert_str_eq(sse_tail(&s), "");
	sse_release(&s);
	close(sp[0]);
	close(sp[1]);
}
