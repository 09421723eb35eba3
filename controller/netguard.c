/*
 * netguard.c - the SSRF guard (see netguard.h): a table of refused ranges,
 * matched against an address in its 16-byte IPv6 form, IPv4 addresses
 * mapped into ::ffff:0:0/96 so that one table and one matcher serve both
 * families; URLs are parsed by curl's URL API, never by hand.
 */
#include "netguard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

struct range {
	const char *text;          /* as printed */
	const char *why;
	int prefix;                /* of the IPv4 block, or IPv6 */
	bool v4;
};

/* Every block that is not the public internet. */
static const struct range refused[] = {
	{ "0.0.0.0/8", "unspecified", 8, true },
	{ "10.0.0.0/8", "private", 8, true },
	{ "100.64.0.0/10", "shared (carrier-grade NAT, metadata)", 10, true },
	{ "127.0.0.0/8", "loopback", 8, true },
	{ "169.254.0.0/16", "link-local (cloud metadata)", 16, true },
	{ "172.16.0.0/12", "private", 12, true },
	{ "192.0.0.0/24", "IETF protocol assignments", 24, true },
	{ "192.0.2.0/24", "documentation", 24, true },
	{ "192.88.99.0/24", "6to4 relay", 24, true },
	{ "192.168.0.0/16", "private", 16, true },
	{ "198.18.0.0/15", "benchmarking", 15, true },
	{ "198.51.100.0/24", "documentation", 24, true },
	{ "203.0.113.0/24", "documentation", 24, true },
	{ "224.0.0.0/4", "multicast", 4, true },
	{ "240.0.0.0/4", "reserved or broadcast", 4, true },
	{ "::/128", "unspecified", 128, false },
	{ "::1/128", "loopback", 128, false },
	{ "100::/64", "discard", 64, false },
	{ "2001:db8::/32", "documentation", 32, false },
	{ "fc00::/7", "unique-local", 7, false },
	{ "fe80::/10", "link-local", 10, false },
	{ "fec0::/10", "site-local", 10, false },
	{ "ff00::/8", "multicast", 8, false },
};

#define NREFUSED (sizeof(refused) / sizeof(refused[0]))

static bool in_block(const uint8_t a[16], const uint8_t b[16], int prefix)
{
	int full = prefix / 8, rest = prefix % 8;
	uint8_t mask;

	if (memcmp(a, b, (size_t)full))
		return false;
	if (!rest)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

static void map_v4(const void *v4, uint8_t out[16])
{
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	memcpy(out + 12, v4, 4);
}

int netguard_cidr_parse(const char *text, struct netguard_cidr *out,
			struct err *e)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t n = slash ? (size_t)(slash - text) : strlen(text);
	uint8_t v4[4];
	char *end = NULL;
	long p;
	int max;

	memset(out, 0, sizeof(*out));
	if (!n || n >= sizeof(host))
		goto bad;
	memcpy(host, text, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, v4) == 1) {
		map_v4(v4, out->addr);
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		max = 128;
	} else {
		goto bad;
	}
	p = max;
	if (slash) {
		p = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end || p < 0 || p > max)
			goto bad;
	}
	out->prefix = (int)p + (max == 32 ? 96 : 0);
	return 0;
bad:
	return err_set(e, ERR_INVALID, "'%.80s' is not an address or CIDR "
		       "block (a.b.c.d/n or an IPv6 address/n)", text);
}

/* The IPv4 address an IPv6 one carries (mapped, compatible, NAT64),
 * mapped again, into out; false when it carries none. */
static bool embedded_v4(const uint8_t a[16], uint8_t out[16])
{
	static const uint8_t nat64[12] = { 0x00, 0x64, 0xff, 0x9b };
	static const uint8_t zero[12];

	if (!memcmp(a, zero, 12) && (a[12] | a[13] | a[14] | a[15]) &&
	    !(a[12] == 0 && a[13] == 0 && a[14] == 0 && a[15] == 1))
		;                      /* ::a.b.c.d (compatible) */
	else if (!memcmp(a, nat64, 12))
		;                      /* 64:ff9b::a.b.c.d */
	else if (!memcmp(a, zero, 10) && a[10] == 0xff && a[11] == 0xff)
		;                      /* ::ffff:a.b.c.d */
	else
		return false;
	map_v4(a + 12, out);
	return true;
}

bool netguard_allowed(const struct sockaddr *sa,
		      const struct netguard_cidr *allow, size_t nallow,
		      char *why, size_t whylen)
{
	char text[INET6_ADDRSTRLEN];
	uint8_t a[16], v4[16], blk[16];
	const uint8_t *judged = a;
	size_t i;
	bool is_v4 = false;

	if (sa->sa_family == AF_INET) {
		map_v4(&((const struct sockaddr_in *)(const void *)sa)->sin_addr,
		       a);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(a, &((const struct sockaddr_in6 *)(const void *)sa)
			  ->sin6_addr, 16);
	} else {
		if (why)
			snprintf(why, whylen, "address family %d is not IP",
				 sa->sa_family);
		return false;
	}
	if (sa->sa_family == AF_INET6 && embedded_v4(a, v4))
		judged = v4;
	is_v4 = judged[10] == 0xff && judged[11] == 0xff &&
		!memcmp(judged, "\0\0\0\0\0\0\0\0\0\0", 10);
	for (i = 0; i < nallow; i++)
		if (in_block(a, allow[i].addr, allow[i].prefix) ||
		    in_block(judged, allow[i].addr, allow[i].prefix))
			return true;
	for (i = 0; i < NREFUSED; i++) {
		char host[INET6_ADDRSTRLEN];
		const char *slash = strchr(refused[i].text, '/');
		int prefix = refused[i].prefix;

		if (refused[i].v4 != is_v4)
			continue;
		snprintf(host, sizeof(host), "%.*s",
			 (int)(slash - refused[i].text), refused[i].text);
		if (refused[i].v4) {
			uint8_t b4[4];

			inet_pton(AF_INET, host, b4);
			map_v4(b4, blk);
			prefix += 96;
		} else {
			inet_pton(AF_INET6, host, blk);
		}
		if (!in_block(judged, blk, prefix))
			continue;
		if (why) {
			if (is_v4)
				inet_ntop(AF_INET, judged + 12, text,
					  sizeof(text));
			else
				inet_ntop(AF_INET6, judged, text, sizeof(text));
			snprintf(why, whylen, "%s is %s (%s)", text,
				 refused[i].why, refused[i].text);
		}
		return false;
	}
	return true;
}

int netguard_http_url(const char *text, struct err *e)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rc = 0;

	if (!u)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, text, 0) ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) || !host || !*host)
		rc = err_set(e, ERR_INVALID, "'%.80s' is not a URL with a host",
			     text);
	else if (strcmp(scheme, "http") && strcmp(scheme, "https"))
		rc = err_set(e, ERR_INVALID, "'%.80s' is not an http(s) URL",
			     text);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}
