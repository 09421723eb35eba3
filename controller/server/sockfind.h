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
 * A pass over /proc/self/fd costs a getpeername() per open descriptor, so
 * with thousands of streams open, one pass per new stream made taking
 * 10,000 streams over quadratic. sockfind_find() therefore remembers
 * where every socket of its last pass was, checks a remembered one with
 * getpeername() and getsockname() before it answers, and passes over the
 * descriptors again only when that fails: a burst of new connections
 * costs one pass per burst, not one per connection.
 *
 * THREAD SAFETY NOTES: any thread may call either; sockfind_find()'s
 * table is under its own mutex (one pass at a time, the others waiting
 * for it and then finding their socket in what it saw). A descriptor found
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

/*
 * The socket of one key, as sockfind_scan() would fill it (fd, matches),
 * from the remembered table when it still holds there, else after a pass
 * that also refills the table. Same return values.
 */
int sockfind_find(struct sockfind_key *key);

#endif
