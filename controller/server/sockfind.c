/*
 * sockfind.c - find connection sockets by address (see sockfind.h): one
 * readdir() of /proc/self/fd and a getpeername() per descriptor, whatever
 * the number of keys.
 */
#include "sockfind.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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

int sockfind_scan(struct sockfind_key *keys, int n)
{
	struct sockaddr_storage a;
	socklen_t len;
	struct dirent *de;
	char text[INET6_ADDRSTRLEN];
	int fd, port, lport, i;
	DIR *d;

	for (i = 0; i < n; i++) {
		keys[i].fd = -1;
		keys[i].matches = 0;
	}
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
		lport = -2;   /* asked for once, when a peer matches */
		for (i = 0; i < n; i++) {
			if (keys[i].port != port || strcmp(keys[i].addr, text))
				continue;
			if (lport == -2)
				lport = local_port(fd);
			if (lport != keys[i].local_port)
				continue;
			keys[i].fd = fd;
			keys[i].matches++;
		}
	}
	closedir(d);
	return 0;
}
