/*
 * test_netguard.c - the SSRF guard's address classifier (netguard.h),
 * table-driven: every refused range at its edges and the public addresses
 * beside them, IPv4 in IPv6 (mapped, compatible, NAT64), the allow-list,
 * CIDR parsing, and the http(s) URL check behind devices.push_token.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "netguard.h"

/* text as a sockaddr (v4 or v6). */
static void sa_of(const char *text, struct sockaddr_storage *ss)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		return;
	}
	cr_assert_eq(inet_pton(AF_INET6, text, &a6->sin6_addr), 1, "%s", text);
	a6->sin6_family = AF_INET6;
}

static bool allowed(const char *text, const struct netguard_cidr *allow,
		    size_t n, char *why, size_t whylen)
{
	struct sockaddr_storage ss;

	sa_of(text, &ss);
	return netguard_allowed((struct sockaddr *)&ss, allow, n, why, whylen);
}

static const struct { const char *addr; bool ok; const char *why; } cases[] = {
	{ "8.8.8.8", true, NULL },
	{ "1.1.1.1", true, NULL },
	{ "127.0.0.1", false, "loopback" },
	{ "127.255.255.254", false, "loopback" },
	{ "126.255.255.255", true, NULL },
	{ "128.0.0.0", true, NULL },
	{ "10.0.0.1", false, "private" },
	{ "11.0.0.1", true, NULL },
	{ "172.16.0.1", false, "private" },
	{ "172.31.255.255", false, "private" },
	{ "172.15.255.255", true, NULL },
	{ "172.32.0.0", true, NULL },
	{ "192.168.1.1", false, "private" },
	{ "192.169.0.1", true, NULL },
	{ "169.254.169.254", false, "link-local (cloud metadata)" },
	{ "169.254.0.1", false, "link-local" },
	{ "100.100.100.200", false, "shared" },
	{ "100.64.0.1", false, "shared" },
	{ "100.128.0.1", true, NULL },
	{ "0.0.0.0", false, "unspecified" },
	{ "224.0.0.1", false, "multicast" },
	{ "239.255.255.250", false, "multicast" },
	{ "255.255.255.255", false, "broadcast" },
	{ "198.18.0.1", false, "benchmarking" },
	{ "::1", false, "loopback" },
	{ "::", false, "unspecified" },
	{ "fe80::1", false, "link-local" },
	{ "fc00::1", false, "unique-local" },
	{ "fd00:ec2::254", false, "unique-local" },
	{ "ff02::1", false, "multicast" },
	{ "2606:4700:4700::1111", true, NULL },
	{ "::ffff:127.0.0.1", false, "127.0.0.1 is loopback" },
	{ "::ffff:169.254.169.254", false, "169.254.169.254 is link-local" },
	{ "::ffff:8.8.8.8", true, NULL },
	{ "64:ff9b::10.0.0.1", false, "10.0.0.1 is private" },
	{ "64:ff9b::8.8.8.8", true, NULL },
	{ "::127.0.0.1", false, "loopback" },
};

Test(netguard, table_of_ranges)
{
	char why[160];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why[0] = '\0';
		cr_expect_eq(allowed(cases[i].addr, NULL, 0, why, sizeof(why)),
			     cases[i].ok, "%s", cases[i].addr);
		if (cases[i].why)
			cr_expect_not_null(strstr(why, cases[i].why),
					   "%s: '%s'", cases[i].addr, why);
	}
}

Test(netguard, allow_list_lets_chosen_addresses_through)
{
	struct netguard_cidr allow[2];
	struct err e = ERR_INIT;

	cr_assert_eq(netguard_cidr_parse("127.0.0.1/32", &allow[0], &e), 0);
	cr_assert_eq(netguard_cidr_parse("fd00::/8", &allow[1], &e), 0);
	cr_expect(allowed("127.0.0.1", allow, 2, NULL, 0));
	cr_expect(allowed("::ffff:127.0.0.1", allow, 2, NULL, 0));
	cr_expect_not(allowed("127.0.0.2", allow, 2, NULL, 0));
	cr_expect(allowed("fd12::1", allow, 2, NULL, 0));
	cr_expect_not(allowed("fc00::1", allow, 2, NULL, 0));
	cr_expect_not(allowed("::1", allow, 2, NULL, 0));
	/* a whole block, and no prefix: one address */
	cr_assert_eq(netguard_cidr_parse("10.1.0.0/16", &allow[0], &e), 0);
	cr_expect(allowed("10.1.200.3", allow, 1, NULL, 0));
	cr_expect_not(allowed("10.2.0.1", allow, 1, NULL, 0));
	cr_assert_eq(netguard_cidr_parse("::1", &allow[0], &e), 0);
	cr_expect_eq(allow[0].prefix, 128);
	cr_expect(allowed("::1", allow, 1, NULL, 0));
}

Test(netguard, bad_cidrs_are_refused_by_name)
{
	static const char *const bad[] = {
		"", "/8", "10.0.0.0/33", "::/129", "10.0.0/8", "x", "10.0.0.0/",
		"10.0.0.0/-1", "10.0.0.0/8x", "example.com/32",
	};
	struct netguard_cidr c;
	struct err e = ERR_INIT;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err_clear(&e);
		cr_expect_eq(netguard_cidr_parse(bad[i], &c, &e), ERR_INVALID,
			     "'%s'", bad[i]);
		cr_expect_not_null(strstr(e.msg, "CIDR"), "%s", e.msg);
	}
}

Test(netguard, http_urls_only)
{
	static const struct { const char *url; bool ok; } urls[] = {
		{ "https://ntfy.sh/topic?up=1", true },
		{ "http://10.0.0.1:8080/x", true },    /* refused at connect */
		{ "http://[::1]/", true },
		{ "ftp://example.com/", false },
		{ "file:///etc/passwd", false },
		{ "gopher://example.com/", false },
		{ "example.com/path", false },
		{ "not a url", false },
		{ "http://", false },
		{ "", false },
	};
	struct err e = ERR_INIT;
	size_t i;

	for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		err_clear(&e);
		cr_expect_eq(netguard_http_url(urls[i].url, &e) == 0,
			     urls[i].ok, "'%s': %s", urls[i].url, e.msg);
	}
}
