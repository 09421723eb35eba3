/*
 * sockfind.h - find the descriptors of civetweb's connections by their
 * addresses.
 *
 * civetweb 1.15 shows a handler its connection's addresses but never the
 * socket itself. The stream pump needs the socket to take a stream over
 * (pump.h), the connection guard to cut a connection short (conns.h): both
 * look through /proc/self/fd for the TCP socket whose peer address, peer
 * port and local port are the connection's. That triple names one open
 * connection, so a match is never another client's socket.
 *
 * THREAD SAFETY NOTES: no state; any thread may call it. A descriptor found
 * may be closed by its owner right after; callers only shutdown() or dup
 * one whose connection they know is still held.
 */
#ifndef POCKETCTL_SOCKFIND_H
#define POCKETCTL_SOCKFIND_H

#define SOCKFIND_ADDR_LEN 48     /* text of an IPv4 or IPv6 address */

struct sockfind_key {
	char addr[SOCKFIND_ADDR_LEN]; /* peer address as civetweb prints it
	                               * (inet_ntop) */
	int port;                     /* peer port */
	int local_port;               /* the server's port */
	int fd;                       /* out: the socket, -1 when none */
	int matches;                  /* out: sockets that matched (1 when
	                               * fd is set) */
};

/*
 * One pass over the process's descriptors, filling fd and matches of each
 * of keys[0..n). Returns 0, or -1 with errno set when /proc/self/fd cannot
 * be read (no key is then matched).
 */
int sockfind_scan(struct sockfind_key *keys, int n);

#endif
