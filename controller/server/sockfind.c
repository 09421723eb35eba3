/*
 * sockfind.c - find connection sockets by address (see sockfind.h): one
 * readdir() of /proc/self/fd and a getpeername() per descriptor, whatever
 * the number of keys.
 */
#include "sockfind.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util.h"

/* The text and port of a, -1 for a family other than IPv4 and IPv6. */
static int addr_port(const struct sockaddr_storage *a, char *text, size_t n)
{
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)a;

		inet_ntop(AF_INET, &in->sin_addr, text, (socklen_t)n);
		return ntohs(in->sin_port);
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)a;

		inet_ntop(AF_INET6, &in6->sin6_addr, text, (socklen_t)n);
		return ntohs(in6->sin6_port);
	}
	return -1;
}

static int local_port(int fd)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	char text[INET6_ADDRSTRLEN];

	if (getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		return -1;
	return addr_port(&a, text, sizeof(text));
}

/* Call fn for every descriptor of this process that is a socket with an
 * IPv4 or IPv6 peer. 0, or -1 (errno set) when /proc/self/fd cannot be
 * read. */
static int each_peer(void (*fn)(int fd, const char *addr, int port,
				void *arg), void *arg)
{
	struct sockaddr_storage a;
	socklen_t len;
	struct dirent *de;
	char text[INET6_ADDRSTRLEN];
	int fd, port;
	DIR *d;

	d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		fd = atoi(de->d_name);
		if (fd == dirfd(d))
			continue;
		len = sizeof(a);
		if (getpeername(fd, (struct sockaddr *)&a, &len) != 0)
			continue;
		port = addr_port(&a, text, sizeof(text));
		if (port >= 0)
			fn(fd, text, port, arg);
	}
	closedir(d);
	return 0;
}

struct scan {
	struct sockfind_key *keys;
	int n;
};

static void scan_one(int fd, const char *addr, int port, void *arg)
{
	struct scan *sc = arg;
	int i, lport = -2;   /* asked for once, when a peer matches */

	for (i = 0; i < sc->n; i++) {
		struct sockfind_key *k = &sc->keys[i];

		if (k->port != port || strcmp(k->addr, addr))
			continue;
		if (lport == -2)
			lport = local_port(fd);
		if (lport != k->local_port)
			continue;
		k->fd = fd;
		k->matches++;
	}
}

int sockfind_scan(struct sockfind_key *keys, int n)
{
	struct scan sc = { keys, n };
	int i;

	for (i = 0; i < n; i++) {
		keys[i].fd = -1;
		keys[i].matches = 0;
	}
	return each_peer(scan_one, &sc);
}

/* ---- the remembered table (sockfind_find()) ----------------------------- */

struct seen {
	char addr[SOCKFIND_ADDR_LEN];   /* "" for an empty entry */
	int port;
	int fd;
};

static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static struct seen *seen;               /* open addressing, under seen_mu */
static size_t seen_cap, seen_used;      /* cap: a power of two, or 0 */

static size_t seen_hash(const char *addr, int port)
{
	return (size_t)util_hash(&port, sizeof(port),
				 util_hash(addr, strlen(addr), UTIL_HASH_INIT));
}

/* The entry of peer addr:port, or the empty one where it would go. */
static struct seen *seen_slot(struct seen *t, size_t cap, const char *addr,
			      int port)
{
	size_t i = seen_hash(addr, port) & (cap - 1);

	while (t[i].addr[0] &&
	       (t[i].port != port || strcmp(t[i].addr, addr)))
		i = (i + 1) & (cap - 1);
	return &t[i];
}

/* Remember fd as the socket of peer addr:port (the first one of a pass
 * wins); the table doubles before it is half full. */
static void seen_put(int fd, const char *addr, int port, void *arg)
{
	struct seen *e;
	size_t i;

	(void)arg;
	if (2 * (seen_used + 1) > seen_cap) {
		size_t cap = seen_cap ? 2 * seen_cap : 256;
		struct seen *t = calloc(cap, sizeof(*t));

		if (!t)
			return;         /* not remembered: found by a scan */
		for (i = 0; i < seen_cap; i++)
			if (seen[i].addr[0])
				*seen_slot(t, cap, seen[i].addr,
					   seen[i].port) = seen[i];
		free(seen);
		seen = t;
		seen_cap = cap;
	}
	e = seen_slot(seen, seen_cap, addr, port);
	if (e->addr[0])
		return;
	snprintf(e->addr, sizeof(e->addr), "%s", addr);
	e->port = port;
	e->fd = fd;
	seen_used++;
}

static int seen_get(const char *addr, int port)
{
	struct seen *e;

	if (!seen_cap)
		return -1;
	e = seen_slot(seen, seen_cap, addr, port);
	return e->addr[0] ? e->fd : -1;
}

/* fd is now the connection key names. */
static int still(int fd, const struct sockfind_key *key)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	char text[INET6_ADDRSTRLEN];

	if (getpeername(fd, (struct sockaddr *)&a, &len) != 0 ||
	    addr_port(&a, text, sizeof(text)) != key->port ||
	    strcmp(text, key->addr))
		return 0;
	return local_port(fd) == key->local_port;
}

/* A pass that refills the table with every socket's peer. -1 (errno
 * set) when /proc/self/fd cannot be read. */
static int refill(void)
{
	if (seen_cap)
		memset(seen, 0, seen_cap * sizeof(*seen));
	seen_used = 0;
	return each_peer(seen_put, NULL);
}

int sockfind_find(struct sockfind_key *key)
{
	int fd, rc = 0;

	key->fd = -1;
	key->matches = 0;
	pthread_mutex_lock(&seen_mu);
	fd = seen_get(key->addr, key->port);
	if (fd < 0 || !still(fd, key)) {
		rc = refill();
		fd = rc ? -1 : seen_get(key->addr, key->port);
	}
	if (fd >= 0 && still(fd, key)) {
		key->fd = fd;
		key->matches = 1;
	}
	pthread_mutex_unlock(&seen_mu);
	/* Not in the table (or no memory for all of it), or two sockets
	 * of one peer: the exact pass. */
	if (!rc && key->fd < 0)
		rc = sockfind_scan(key, 1);
	return rc;
}
