/*
 * test_sockfind.c - finding a connection's socket by its addresses
 * (server/sockfind.c): the remembered table answers for sockets it saw,
 * a new connection or a descriptor number reused by another connection is
 * found by a new pass, and a closed one is not found.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/sockfind.h"
#include "testlib.h"

/* Connect to port; *acc: the accepted end; *key: its addresses. */
static int dial(int l, int port, int *acc, struct sockfind_key *key)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int c = socket(AF_INET, SOCK_STREAM, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	cr_assert_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	*acc = accept(l, NULL, NULL);
	cr_assert_geq(*acc, 0);
	memset(key, 0, sizeof(*key));
	cr_assert_eq(getsockname(c, (struct sockaddr *)&a, &len), 0);
	inet_ntop(AF_INET, &a.sin_addr, key->addr, sizeof(key->addr));
	key->port = ntohs(a.sin_port);
	key->local_port = port;
	return c;
}

Test(sockfind, finds_remembered_new_and_reused_descriptors)
{
	enum { N = 40 };
	int port, l = tl_tcp_listener(&port), cli[N], acc[N], i, c2, a2;
	struct sockfind_key key[N], k, k2;

	for (i = 0; i < N; i++)
		cli[i] = dial(l, port, &acc[i], &key[i]);
	for (i = 0; i < N; i++) {
		k = key[i];
		cr_assert_eq(sockfind_find(&k), 0);
		cr_expect_eq(k.fd, acc[i], "key %d: fd %d, want %d", i, k.fd,
			     acc[i]);
		cr_expect_eq(k.matches, 1);
	}
	/* The accepted end of connection 7 closes; its number goes to a
	 * socket of the next connection (the lowest free number), whose
	 * peer is another. */
	close(acc[7]);
	c2 = dial(l, port, &a2, &k2);
	cr_assert(c2 == acc[7] || a2 == acc[7], "number %d not reused", acc[7]);
	k = key[7];
	cr_assert_eq(sockfind_find(&k), 0);
	cr_expect_eq(k.fd, -1, "a closed connection was found at %d", k.fd);
	cr_expect_eq(k.matches, 0);
	k = k2;
	cr_assert_eq(sockfind_find(&k), 0);
	cr_expect_eq(k.fd, a2);
	/* sockfind_scan() agrees. */
	k = key[3];
	cr_assert_eq(sockfind_scan(&k, 1), 0);
	cr_expect_eq(k.fd, acc[3]);
	cr_expect_eq(k.matches, 1);
	for (i = 0; i < N; i++) {
		close(cli[i]);
		if (i != 7)
			close(acc[i]);
	}
	close(c2);
	close(a2);
	close(l);
}
