/*
 * netguard.h - the SSRF guard of outgoing requests to user-given URLs
 * (push endpoints): which IP addresses may be connected to.
 *
 * An address is refused when it is loopback, unspecified, link-local
 * (the cloud metadata address 169.254.169.254 among them), private
 * (RFC 1918), shared (100.64.0.0/10, Alibaba's metadata address among
 * them), benchmarking, unique-local (fc00::/7), multicast, reserved or
 * broadcast; an IPv4-mapped, IPv4-compatible or NAT64 IPv6 address is
 * judged by the IPv4 address inside. An allow-list of CIDR blocks
 * (serve --push-allow) lets chosen addresses through.
 *
 * THREAD SAFETY NOTES: pure functions over caller-owned values.
 */
#ifndef POCKETCTL_NETGUARD_H
#define POCKETCTL_NETGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "err.h"

/* A CIDR block: IPv4 blocks are kept as IPv4-mapped IPv6 (::ffff:a.b.c.d,
 * prefix + 96). */
struct netguard_cidr {
	uint8_t addr[16];
	int prefix;                /* 0..128 */
};

/*
 * Parse "a.b.c.d[/n]" or "v6[/n]" (no prefix: one address) into out.
 * ERR_INVALID naming the text otherwise.
 */
int netguard_cidr_parse(const char *text, struct netguard_cidr *out,
			struct err *e);

/*
 * May sa (AF_INET or AF_INET6) be connected to? Returns true when the
 * address is public or inside one of allow[0..nallow). Otherwise false,
 * with why (nullable, up to whylen bytes) saying which address and range:
 * "127.0.0.1 is loopback (127.0.0.0/8)". Any other family is refused.
 */
bool netguard_allowed(const struct sockaddr *sa,
		      const struct netguard_cidr *allow, size_t nallow,
		      char *why, size_t whylen);

/*
 * Is text an http:// or https:// URL with a host (curl's URL parser)?
 * Returns 0, or ERR_INVALID with a message (no field) saying what is
 * wrong.
 */
int netguard_http_url(const char *text, struct err *e);

#endif
