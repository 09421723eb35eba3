/*
 * test_auth.c - unit tests for controller/auth.c: bcrypt password rules and
 * round trips, PocketBase-shaped HS256 tokens (issue, verify and every
 * rejection class), the Authorization header helper, and the installation
 * secret file. Tokens are also taken apart here with plain OpenSSL base64 to
 * show exactly what the PocketBase SDK sees.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth.h"
#include "testlib.h"

#define NOW 1800000000LL
#define USERS "_pb_users_auth_"
#define SUPERUSERS "pbc_3142635823"

/* ---- helpers --------------------------------------------------------- */

/* A tiny fake store of auth records for the tokenKey lookup. */
struct fake_rec {
	const char *collection;
	const char *id;
	const char *token_key;
};

static struct fake_rec auth_t_recs[] = {
	{ USERS, "abcdefghij12345", "tk-user-one" },
	{ USERS, "zzzzzzzzzzzzzzz", "tk-user-two" },
	{ SUPERUSERS, "su0000000000001", "tk-superuser" },
};

static char *auth_t_lookup(void *arg, const char *collection_id,
			   const char *record_id)
{
	struct fake_rec *recs = arg;
	size_t i;

	for (i = 0; i < sizeof(auth_t_recs) / sizeof(auth_t_recs[0]); i++)
		if (strcmp(recs[i].collection, collection_id) == 0 &&
		    strcmp(recs[i].id, record_id) == 0)
			return strdup(recs[i].token_key);
	return NULL;
}

static void auth_t_keys(struct auth_keys *k, unsigned char fill)
{
	memset(k->secret, fill, sizeof(k->secret));
	k->secret[0] = 0x42;
}

/* Plain base64url, written independently of auth.c with EVP_EncodeBlock. */
static char *auth_t_b64url(const void *in, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	int len, i;

	cr_assert_not_null(out);
	len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	while (len > 0 && out[len - 1] == '=')
		len--;
	out[len] = '\0';
	for (i = 0; i < len; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	return out;
}

/* Plain base64url decode of s[0..n) into a NUL-terminated malloc'd string. */
static char *auth_t_unb64url(const char *s, size_t n)
{
	size_t padded = (n + 3) / 4 * 4, i;
	char *tmp = calloc(1, padded + 1);
	unsigned char *bin = calloc(1, padded / 4 * 3 + 1);
	int r;

	cr_assert(tmp && bin);
	for (i = 0; i < n; i++)
		tmp[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	for (; i < padded; i++)
		tmp[i] = '=';
	r = EVP_DecodeBlock(bin, (unsigned char *)tmp, (int)padded);
	cr_assert_geq(r, 0);
	bin[r - (int)(padded - n)] = '\0';
	free(tmp);
	return (char *)bin;
}

/*
 * Build a token from raw header and payload JSON, signed the way auth.h
 * documents: HMAC-SHA256(HMAC-SHA256(secret, tokenKey), h64 "." p64).
 * token_key NULL: use sig_override as the signature segment verbatim.
 */
static char *auth_t_forge(const struct auth_keys *k, const char *header,
			  const char *payload, const char *token_key,
			  const char *sig_override)
{
	char *h64 = auth_t_b64url(header, strlen(header));
	char *p64 = auth_t_b64url(payload, strlen(payload));
	unsigned char key[32], mac[32];
	unsigned int klen = 0, mlen = 0;
	char *input, *s64, *tok;
	size_t n;

	n = strlen(h64) + strlen(p64) + 2;
	input = malloc(n);
	cr_assert_not_null(input);
	snprintf(input, n, "%s.%s", h64, p64);
	if (token_key) {
		cr_assert_not_null(HMAC(EVP_sha256(), k->secret,
					sizeof(k->secret),
					(const unsigned char *)token_key,
					strlen(token_key), key, &klen));
		cr_assert_not_null(HMAC(EVP_sha256(), key, (int)klen,
					(unsigned char *)input, strlen(input),
					mac, &mlen));
		s64 = auth_t_b64url(mac, mlen);
	} else {
		s64 = strdup(sig_override);
	}
	n = strlen(input) + strlen(s64) + 2;
	tok = malloc(n);
	cr_assert_not_null(tok);
	snprintf(tok, n, "%s.%s", input, s64);
	free(h64);
	free(p64);
	free(input);
	free(s64);
	return tok;
}

static char *auth_t_issue(const struct auth_keys *k, const char *coll,
			  const char *id, const char *tk, int64_t ttl)
{
	struct err e = ERR_INIT;
	char *tok = NULL;
	int rc = auth_token_issue(k, coll, id, tk, ttl, NOW, &tok, &e);

	cr_assert_eq(rc, 0, "issue failed: %s", e.msg);
	cr_assert_not_null(tok);
	return tok;
}

/* ---- passwords ------------------------------------------------------- */

Test(auth, password_rules_table)
{
	static char long72[73], long73[74];
	struct {
		const char *pw;
		int rc;
		const char *msg_part;
	} cases[] = {
		{ NULL, ERR_INVALID, "empty" },
		{ "", ERR_INVALID, "empty" },
		{ "1234567", ERR_INVALID, "at least 8" },
		{ "12345678", 0, NULL },
		{ "correct horse battery staple", 0, NULL },
		/* 4 characters in 8 bytes: too short by PocketBase's count */
		{ "\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4", ERR_INVALID, "at least 8" },
		/* "pässwörd": 8 characters, 10 bytes */
		{ "p\xc3\xa4ssw\xc3\xb6rd", 0, NULL },
		{ long72, 0, NULL },
		{ long73, ERR_INVALID, "73 bytes" },
	};
	size_t i;

	memset(long72, 'x', 72);
	memset(long73, 'y', 73);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct err e = ERR_INIT;
		int rc = auth_password_check(cases[i].pw, &e);

		cr_assert_eq(rc, cases[i].rc, "case %zu: rc %d (%s)", i, rc,
			     e.msg);
		if (!cases[i].rc)
			continue;
		cr_assert_str_eq(e.field, "password", "case %zu", i);
		cr_assert_not_null(strstr(e.msg, cases[i].msg_part),
				   "case %zu: message '%s'", i, e.msg);
	}
}

Test(auth, password_hash_round_trip)
{
	char h1[AUTH_HASH_MAX], h2[AUTH_HASH_MAX];
	struct err e = ERR_INIT;

	cr_assert_eq(auth_password_hash("s3cret-pass", 4, h1, sizeof(h1), &e),
		     0, "%s", e.msg);
	cr_assert_eq(strncmp(h1, "$2b$04$", 7), 0, "hash '%s'", h1);
	cr_assert_eq(strlen(h1), 60);
	cr_assert(auth_password_verify("s3cret-pass", h1));
	cr_assert_not(auth_password_verify("s3cret-pasS", h1));
	cr_assert_not(auth_password_verify("s3cret-pass ", h1));
	cr_assert_not(auth_password_verify("", h1));
	cr_assert_not(auth_password_verify(NULL, h1));

	/* A fresh salt each time. */
	cr_assert_eq(auth_password_hash("s3cret-pass", 4, h2, sizeof(h2), &e),
		     0);
	cr_assert_str_neq(h1, h2);
	cr_assert(auth_password_verify("s3cret-pass", h2));
}

Test(auth, password_hash_default_cost)
{
	char h[AUTH_HASH_MAX];
	struct err e = ERR_INIT;

	cr_assert_eq(auth_password_hash("default-cost", 0, h, sizeof(h), &e),
		     0, "%s", e.msg);
	cr_assert_eq(strncmp(h, "$2b$10$", 7), 0, "hash '%s'", h);
	cr_assert(auth_password_verify("default-cost", h));
}

Test(auth, password_hash_errors_table)
{
	struct {
		const char *pw;
		int cost;
		size_t n;
		int rc;
		const char *field;
	} cases[] = {
		{ "short", 4, AUTH_HASH_MAX, ERR_INVALID, "password" },
		{ "", 4, AUTH_HASH_MAX, ERR_INVALID, "password" },
		{ "long enough", 3, AUTH_HASH_MAX, ERR_INVALID, "cost" },
		{ "long enough", 32, AUTH_HASH_MAX, ERR_INVALID, "cost" },
		{ "long enough", 4, 60, ERR_TOO_LARGE, "" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[AUTH_HASH_MAX];
		struct err e = ERR_INIT;
		int rc;

		memset(out, 'Z', sizeof(out));
		rc = auth_password_hash(cases[i].pw, cases[i].cost, out,
					cases[i].n, &e);
		cr_assert_eq(rc, cases[i].rc, "case %zu: rc %d (%s)", i, rc,
			     e.msg);
		cr_assert_str_eq(e.field, cases[i].field, "case %zu", i);
		cr_assert_str_eq(out, "", "case %zu: output not cleared", i);
	}
}

Test(auth, password_verify_rejects_bad_hashes)
{
	char h[AUTH_HASH_MAX];
	char trunc[AUTH_HASH_MAX];
	struct err e = ERR_INIT;
	const char *bad[] = {
		"", "*0", "$1$abcdefgh$0123456789012345678901",
		"$2b$04$", "plaintextpassword",
		"$2x$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
		trunc,
	};
	size_t i;

	cr_assert_eq(auth_password_hash("right-password", 4, h, sizeof(h), &e),
		     0);
	snprintf(trunc, sizeof(trunc), "%.59s", h);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_not(auth_password_verify("right-password", bad[i]),
			      "hash %zu '%s' accepted", i, bad[i]);
	/* A plaintext "hash" equal to the password must never match. */
	cr_assert_not(auth_password_verify("plaintextpassword",
					   "plaintextpassword"));
	/* Unknown account: still false (after a dummy bcrypt). */
	cr_assert_not(auth_password_verify("right-password", NULL));
	/* A password over 72 bytes that shares the first 72 with the real
	 * one is refused rather than matched by bcrypt's truncation. */
	{
		char p72[73], p80[81];

		memset(p72, 'k', 72);
		p72[72] = '\0';
		memset(p80, 'k', 80);
		p80[80] = '\0';
		cr_assert_eq(auth_password_hash(p72, 4, h, sizeof(h), &e), 0);
		cr_assert(auth_password_verify(p72, h));
		cr_assert_not(auth_password_verify(p80, h));
	}
}

Test(auth, token_key_new)
{
	char a[AUTH_TOKEN_KEY_LEN + 1], b[AUTH_TOKEN_KEY_LEN + 1];
	struct err e = ERR_INIT;
	size_t i;

	cr_assert_eq(auth_token_key_new(a, &e), 0);
	cr_assert_eq(auth_token_key_new(b, &e), 0);
	cr_assert_eq(strlen(a), AUTH_TOKEN_KEY_LEN);
	for (i = 0; i < AUTH_TOKEN_KEY_LEN; i++)
		cr_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrst"
				 "uvwxyz0123456789", a[i]) && a[i],
			  "char %zu of '%s'", i, a);
	cr_assert_str_neq(a, b);
}

/* ---- tokens ---------------------------------------------------------- */

Test(auth, token_round_trip)
{
	struct auth_keys k;
	struct auth_claims c;
	struct err e = ERR_INIT;
	char *tok;

	auth_t_keys(&k, 7);
	tok = auth_t_issue(&k, USERS, "abcdefghij12345", "tk-user-one", 3600);
	cr_assert_eq(strncmp(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37),
		     0, "token '%s'", tok);
	cr_assert_eq(auth_token_verify(&k, tok, NOW, auth_t_lookup,
				       auth_t_recs, &c, &e), 0, "%s", e.msg);
	cr_assert_str_eq(c.id, "abcdefghij12345");
	cr_assert_str_eq(c.collection_id, USERS);
	cr_assert_str_eq(c.type, "auth");
	cr_assert(c.refreshable);
	cr_assert_eq(c.exp, NOW + 3600);
	/* One second before expiry is still fine; out may be NULL. */
	cr_assert_eq(auth_token_verify(&k, tok, NOW + 3599, auth_t_lookup,
				       auth_t_recs, NULL, &e), 0, "%s", e.msg);
	free(tok);

	/* Superusers use the same machinery on their own collection. */
	tok = auth_t_issue(&k, SUPERUSERS, "su0000000000001", "tk-superuser",
			   0);
	cr_assert_eq(auth_token_verify(&k, tok, NOW, auth_t_lookup,
				       auth_t_recs, &c, &e), 0, "%s", e.msg);
	cr_assert_str_eq(c.collection_id, SUPERUSERS);
	cr_assert_eq(c.exp, NOW + AUTH_TOKEN_TTL_DEFAULT);
	free(tok);
}

Test(auth, token_payload_is_what_the_sdk_reads)
{
	struct auth_keys k;
	const char *d1, *d2;
	char *tok, *hdr, *pl;
	json_t *j;

	auth_t_keys(&k, 9);
	tok = auth_t_issue(&k, USERS, "abcdefghij12345", "tk-user-one", 86400);
	d1 = strchr(tok, '.');
	cr_assert_not_null(d1);
	d2 = strchr(d1 + 1, '.');
	cr_assert_not_null(d2);
	cr_assert_null(strchr(d2 + 1, '.'));
	cr_assert_null(strchr(tok, '='), "padding in '%s'", tok);

	hdr = auth_t_unb64url(tok, (size_t)(d1 - tok));
	cr_assert_str_eq(hdr, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
	pl = auth_t_unb64url(d1 + 1, (size_t)(d2 - d1 - 1));
	cr_assert_str_eq(pl, "{\"collectionId\":\"_pb_users_auth_\","
			     "\"exp\":1800086400,\"id\":\"abcdefghij12345\","
			     "\"refreshable\":true,\"type\":\"auth\"}");
	j = json_loads(pl, 0, NULL);
	cr_assert_not_null(j);
	cr_assert_str_eq(json_string_value(json_object_get(j, "id")),
			 "abcdefghij12345");
	cr_assert_str_eq(json_string_value(json_object_get(j, "type")),
			 "auth");
	cr_assert_str_eq(json_string_value(json_object_get(j, "collectionId")),
			 USERS);
	cr_assert_eq(json_integer_value(json_object_get(j, "exp")),
		     NOW + 86400);
	cr_assert(json_is_true(json_object_get(j, "refreshable")));
	/* The signature segment is 32 bytes: 43 unpadded characters. */
	cr_assert_eq(strlen(d2 + 1), 43);
	json_decref(j);
	free(hdr);
	free(pl);
	free(tok);
}

Test(auth, token_forged_the_documented_way_verifies)
{
	/* Pins the key derivation written in auth.h. */
	struct auth_keys k;
	struct err e = ERR_INIT;
	char *tok;

	auth_t_keys(&k, 3);
	tok = auth_t_forge(&k, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
			   "{\"collectionId\":\"_pb_users_auth_\","
			   "\"exp\":1800000100,\"id\":\"zzzzzzzzzzzzzzz\","
			   "\"type\":\"auth\"}", "tk-user-two", NULL);
	cr_assert_eq(auth_token_verify(&k, tok, NOW, auth_t_lookup,
				       auth_t_recs, NULL, &e), 0, "%s", e.msg);
	free(tok);
}

/* Flip one character of segment seg (0 header, 1 payload, 2 signature) to
 * another valid base64url character. */
static char *auth_t_tamper(const char *tok, int seg, size_t off)
{
	char *t = strdup(tok), *p = t;
	int s;

	cr_assert_not_null(t);
	for (s = 0; s < seg; s++) {
		p = strchr(p, '.');
		cr_assert_not_null(p);
		p++;
	}
	p[off] = p[off] == 'A' ? 'B' : 'A';
	return t;
}

Test(auth, token_rejections_table)
{
	struct auth_keys k, other;
	const char *H = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	const char *P = "{\"collectionId\":\"_pb_users_auth_\","
			"\"exp\":1800003600,\"id\":\"abcdefghij12345\","
			"\"refreshable\":true,\"type\":\"auth\"}";
	char *good, *changed_key, *unknown, *other_inst, *nodots, *longtok;
	struct auth_t_case {
		const char *name;
		char *token;      /* owned by the table */
		int64_t now;
		const char *msg_part;
	} cases[48];
	size_t n = 0, i;

	auth_t_keys(&k, 1);
	auth_t_keys(&other, 2);
	good = auth_t_issue(&k, USERS, "abcdefghij12345", "tk-user-one", 3600);
	changed_key = auth_t_forge(&k, H, P, "tk-user-one-OLD", NULL);
	unknown = auth_t_issue(&k, USERS, "nosuchrecord000", "whatever", 3600);
	other_inst = auth_t_issue(&other, USERS, "abcdefghij12345",
				  "tk-user-one", 3600);
	nodots = strdup("eyJhbGciOiJIUzI1NiJ9");
	longtok = malloc(AUTH_TOKEN_MAX + 2);
	cr_assert(nodots && longtok);
	memset(longtok, 'a', AUTH_TOKEN_MAX + 1);
	longtok[AUTH_TOKEN_MAX + 1] = '\0';

#define CASE(nm, tk, t, part) \
	cases[n++] = (struct auth_t_case){ nm, tk, t, part }
	CASE("tampered header", auth_t_tamper(good, 0, 5), NOW,
	     "header is not valid JSON");
	CASE("tampered header alg", auth_t_tamper(good, 0, 14), NOW,
	     "algorithm 'HS056' is not accepted");
	CASE("tampered header typ", auth_t_tamper(good, 0, 31), NOW,
	     "header \"typ\" is not \"JWT\"");
	CASE("tampered header key", auth_t_tamper(good, 0, 22), NOW,
	     "signature does not match");
	CASE("tampered payload key", auth_t_tamper(good, 1, 3), NOW,
	     "claim \"collectionId\" is missing");
	CASE("tampered payload exp", auth_t_tamper(good, 1, 62), NOW,
	     "signature does not match");
	CASE("tampered payload id", auth_t_tamper(good, 1, 90), NOW,
	     "record 'abcdefghij02345' in collection '_pb_users_auth_' was "
	     "not found");
	CASE("tampered payload to bad JSON", auth_t_tamper(good, 1, 1), NOW,
	     "payload is not valid JSON");
	CASE("payload swapped to another record",
	     auth_t_forge(&k, H, "{\"collectionId\":\"_pb_users_auth_\","
			  "\"exp\":1800003600,\"id\":\"zzzzzzzzzzzzzzz\","
			  "\"refreshable\":true,\"type\":\"auth\"}",
			  "tk-user-one", NULL),
	     NOW, "signature does not match");
	CASE("tampered signature", auth_t_tamper(good, 2, 0), NOW,
	     "signature does not match");
	CASE("expired by one second", strdup(good), NOW + 3601, "expired");
	CASE("expired exactly at exp", strdup(good), NOW + 3600, "expired");
	CASE("unknown record", unknown, NOW, "was not found");
	CASE("changed tokenKey", changed_key, NOW, "signature does not match");
	CASE("other installation", other_inst, NOW,
	     "signature does not match");
	CASE("alg none, empty signature",
	     auth_t_forge(&k, "{\"alg\":\"none\",\"typ\":\"JWT\"}", P, NULL, ""),
	     NOW, "algorithm 'none' is not accepted");
	CASE("alg none, valid hmac",
	     auth_t_forge(&k, "{\"alg\":\"none\",\"typ\":\"JWT\"}", P,
			  "tk-user-one", NULL),
	     NOW, "algorithm 'none' is not accepted");
	CASE("alg None", auth_t_forge(&k, "{\"alg\":\"None\"}", P,
				      "tk-user-one", NULL),
	     NOW, "algorithm 'None'");
	CASE("alg HS512", auth_t_forge(&k, "{\"alg\":\"HS512\"}", P,
				       "tk-user-one", NULL),
	     NOW, "algorithm 'HS512'");
	CASE("alg RS256", auth_t_forge(&k, "{\"alg\":\"RS256\"}", P,
				       "tk-user-one", NULL),
	     NOW, "algorithm 'RS256'");
	CASE("alg with newline", auth_t_forge(&k, "{\"alg\":\"x\\ny\"}", P,
					      "tk-user-one", NULL),
	     NOW, "algorithm (unprintable)");
	CASE("no alg", auth_t_forge(&k, "{\"typ\":\"JWT\"}", P,
				    "tk-user-one", NULL),
	     NOW, "no \"alg\"");
	CASE("typ not JWT", auth_t_forge(&k, "{\"alg\":\"HS256\",\"typ\":1}",
					 P, "tk-user-one", NULL),
	     NOW, "\"typ\"");
	CASE("wrong type, valid signature",
	     auth_t_forge(&k, H,
			  "{\"collectionId\":\"_pb_users_auth_\","
			  "\"exp\":1800003600,\"id\":\"abcdefghij12345\","
			  "\"type\":\"passwordReset\"}", "tk-user-one", NULL),
	     NOW, "type 'passwordReset' is not \"auth\"");
	CASE("missing exp", auth_t_forge(&k, H,
					 "{\"collectionId\":\"_pb_users_auth_\","
					 "\"id\":\"abcdefghij12345\","
					 "\"type\":\"auth\"}",
					 "tk-user-one", NULL),
	     NOW, "\"exp\"");
	CASE("float exp", auth_t_forge(&k, H,
				       "{\"collectionId\":\"_pb_users_auth_\","
				       "\"exp\":1.9e9,\"id\":\"abcdefghij12345\","
				       "\"type\":\"auth\"}",
				       "tk-user-one", NULL),
	     NOW, "\"exp\"");
	CASE("id not a string", auth_t_forge(&k, H,
					     "{\"collectionId\":\"x\","
					     "\"exp\":1800003600,\"id\":5,"
					     "\"type\":\"auth\"}",
					     "tk-user-one", NULL),
	     NOW, "\"id\"");
	CASE("id with bad characters",
	     auth_t_forge(&k, H,
			  "{\"collectionId\":\"_pb_users_auth_\","
			  "\"exp\":1800003600,\"id\":\"a'b\","
			  "\"type\":\"auth\"}", "tk-user-one", NULL),
	     NOW, "\"id\" is not a valid identifier");
	CASE("refreshable not bool",
	     auth_t_forge(&k, H,
			  "{\"collectionId\":\"_pb_users_auth_\","
			  "\"exp\":1800003600,\"id\":\"abcdefghij12345\","
			  "\"refreshable\":\"yes\",\"type\":\"auth\"}",
			  "tk-user-one", NULL),
	     NOW, "\"refreshable\"");
	CASE("duplicate id claim",
	     auth_t_forge(&k, H,
			  "{\"collectionId\":\"_pb_users_auth_\","
			  "\"exp\":1800003600,\"id\":\"abcdefghij12345\","
			  "\"id\":\"zzzzzzzzzzzzzzz\",\"type\":\"auth\"}",
			  "tk-user-one", NULL),
	     NOW, "payload is not valid JSON");
	CASE("payload is an array", auth_t_forge(&k, H, "[1,2]",
						 "tk-user-one", NULL),
	     NOW, "payload is not a JSON object");
	CASE("header not JSON", auth_t_forge(&k, "alg=HS256", P,
					     "tk-user-one", NULL),
	     NOW, "header is not valid JSON");
	CASE("short signature", auth_t_forge(&k, H, P, NULL, "AAAA"),
	     NOW, "signature is 3 bytes");
	CASE("bad base64 in signature", auth_t_forge(&k, H, P, NULL,
						     "!!!!"),
	     NOW, "signature is not valid base64url");
	CASE("padded signature", auth_t_forge(&k, H, P, NULL, "AA=="),
	     NOW, "signature is not valid base64url");
	CASE("bad base64 in header", strdup("ey+J.eyJ9.AAAA"), NOW,
	     "header is not valid base64url");
	CASE("impossible base64 length", strdup("eyJhb.eyJ9.AAAA"), NOW,
	     "header is not valid base64url");
	CASE("non-canonical base64 tail",
	     strdup("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e31.AAAA"), NOW,
	     "payload is not valid base64url");
	CASE("garbage", strdup("garbage"), NOW, "three dot-separated parts");
	CASE("no dots", nodots, NOW, "three dot-separated parts");
	CASE("four parts", strdup("a.b.c.d"), NOW, "three dot-separated");
	CASE("empty parts", strdup(".."), NOW, "header is not valid base64url");
	CASE("empty", strdup(""), NOW, "missing auth token");
	CASE("trailing space", NULL, NOW, "signature is not valid base64url");
	CASE("too long", longtok, NOW, "longer than");
	CASE("Bearer left in", NULL, NOW, "header is not valid base64url");
#undef CASE
	/* Two cases built from the good token by string surgery. */
	for (i = 0; i < n; i++) {
		size_t len = strlen(good) + 16;

		if (cases[i].token)
			continue;
		cases[i].token = malloc(len);
		cr_assert_not_null(cases[i].token);
		if (strcmp(cases[i].name, "trailing space") == 0)
			snprintf(cases[i].token, len, "%s ", good);
		else
			snprintf(cases[i].token, len, "Bearer %s", good);
	}
	cr_assert_leq(n, sizeof(cases) / sizeof(cases[0]));

	for (i = 0; i < n; i++) {
		struct err e = ERR_INIT;
		struct auth_claims c;
		int rc;

		memset(&c, 0x5a, sizeof(c));
		rc = auth_token_verify(&k, cases[i].token, cases[i].now,
				       auth_t_lookup, auth_t_recs, &c, &e);
		cr_assert_eq(rc, ERR_UNAUTHORIZED, "%s: rc %d (%s)",
			     cases[i].name, rc, e.msg);
		cr_assert_eq(e.code, ERR_UNAUTHORIZED, "%s", cases[i].name);
		cr_assert_not_null(strstr(e.msg, cases[i].msg_part),
				   "%s: message '%s' lacks '%s'",
				   cases[i].name, e.msg, cases[i].msg_part);
		cr_assert_null(strchr(e.msg, '\n'), "%s", cases[i].name);
		/* out is untouched on failure */
		cr_assert_eq(((unsigned char *)&c)[0], 0x5a, "%s",
			     cases[i].name);
		free(cases[i].token);
	}
	/* NULL token too. */
	cr_assert_eq(auth_token_verify(&k, NULL, NOW, auth_t_lookup,
				       auth_t_recs, NULL, NULL),
		     ERR_UNAUTHORIZED);
	free(good);
}

Test(auth, token_tamper_every_byte)
{
	/* Any single-character change anywhere must be refused. */
	static const char alphabet[] = "AZaz09-_";
	struct auth_keys k;
	char *good;
	size_t i, j, len;

	auth_t_keys(&k, 4);
	good = auth_t_issue(&k, USERS, "abcdefghij12345", "tk-user-one", 60);
	len = strlen(good);
	for (i = 0; i < len; i++) {
		for (j = 0; j < sizeof(alphabet) - 1; j++) {
			char *t;

			if (good[i] == alphabet[j] || good[i] == '.')
				continue;
			t = strdup(good);
			cr_assert_not_null(t);
			t[i] = alphabet[j];
			cr_assert_eq(auth_token_verify(&k, t, NOW,
						       auth_t_lookup,
						       auth_t_recs, NULL,
						       NULL),
				     ERR_UNAUTHORIZED, "accepted '%s'", t);
			free(t);
		}
	}
	free(good);
}

Test(auth, token_issue_errors_table)
{
	struct auth_keys k;
	char id64[AUTH_CLAIM_MAX + 1];
	struct {
		const char *coll, *id, *tk;
		int64_t ttl, now;
		const char *field;
	} cases[] = {
		{ "", "abcdefghij12345", "tk", 60, NOW, "collectionId" },
		{ NULL, "abcdefghij12345", "tk", 60, NOW, "collectionId" },
		{ "users coll", "abcdefghij12345", "tk", 60, NOW,
		  "collectionId" },
		{ USERS, "", "tk", 60, NOW, "id" },
		{ USERS, "abc\"def", "tk", 60, NOW, "id" },
		{ USERS, id64, "tk", 60, NOW, "id" },
		{ USERS, "abcdefghij12345", "", 60, NOW, "tokenKey" },
		{ USERS, "abcdefghij12345", NULL, 60, NOW, "tokenKey" },
		{ USERS, "abcdefghij12345", "tk", -1, NOW, "" },
		{ USERS, "abcdefghij12345", "tk", INT64_MAX, NOW, "" },
	};
	size_t i;

	auth_t_keys(&k, 5);
	memset(id64, 'a', AUTH_CLAIM_MAX);
	id64[AUTH_CLAIM_MAX] = '\0';
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct err e = ERR_INIT;
		static char sentinel[] = "sentinel";
		char *tok = sentinel;
		int rc = auth_token_issue(&k, cases[i].coll, cases[i].id,
					  cases[i].tk, cases[i].ttl,
					  cases[i].now, &tok, &e);

		cr_assert_eq(rc, ERR_INVALID, "case %zu: rc %d", i, rc);
		cr_assert_str_eq(e.field, cases[i].field, "case %zu: '%s'", i,
				 e.msg);
		cr_assert_null(tok, "case %zu", i);
	}
}

Test(auth, header_token_table)
{
	struct {
		const char *in;
		const char *want; /* NULL: no token */
	} cases[] = {
		{ NULL, NULL },
		{ "", NULL },
		{ "   ", NULL },
		{ "Bearer", NULL },
		{ "Bearer ", NULL },
		{ "bearer \t ", NULL },
		{ "abc.def.ghi", "abc.def.ghi" },
		{ "  abc.def.ghi", "abc.def.ghi" },
		{ "Bearer abc.def.ghi", "abc.def.ghi" },
		{ "bearer abc.def.ghi", "abc.def.ghi" },
		{ "BEARER    abc.def.ghi", "abc.def.ghi" },
		{ "Bearerabc.def", "Bearerabc.def" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = auth_header_token(cases[i].in);

		if (!cases[i].want)
			cr_assert_null(got, "case %zu: got '%s'", i, got);
		else
			cr_assert_str_eq(got, cases[i].want, "case %zu", i);
	}
}

Test(auth, header_token_then_verify)
{
	struct auth_keys k;
	struct err e = ERR_INIT;
	char hdr[1024];
	char *tok;

	auth_t_keys(&k, 6);
	tok = auth_t_issue(&k, USERS, "zzzzzzzzzzzzzzz", "tk-user-two", 60);
	snprintf(hdr, sizeof(hdr), "Bearer %s", tok);
	cr_assert_eq(auth_token_verify(&k, auth_header_token(hdr), NOW,
				       auth_t_lookup, auth_t_recs, NULL, &e),
		     0, "%s", e.msg);
	cr_assert_eq(auth_token_verify(&k, auth_header_token(tok), NOW,
				       auth_t_lookup, auth_t_recs, NULL, &e),
		     0, "%s", e.msg);
	free(tok);
}

/* ---- the installation secret ----------------------------------------- */

Test(auth, secret_created_then_reused)
{
	struct auth_keys a, b;
	struct err e = ERR_INIT;
	char path[512];
	struct stat st;
	char *dir = tl_tmpdir("auth");
	mode_t old = umask(0);  /* creation must not depend on the umask */

	snprintf(path, sizeof(path), "%s/%s", dir, AUTH_SECRET_FILE);
	cr_assert_eq(auth_keys_load_or_create(dir, &a, &e), 0, "%s", e.msg);
	umask(old);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	cr_assert_eq(st.st_size, AUTH_SECRET_LEN);

	cr_assert_eq(auth_keys_load_or_create(dir, &b, &e), 0, "%s", e.msg);
	cr_assert_eq(memcmp(a.secret, b.secret, AUTH_SECRET_LEN), 0);
	/* Not all zero: it came from the RNG. */
	memset(b.secret, 0, sizeof(b.secret));
	cr_assert_neq(memcmp(a.secret, b.secret, AUTH_SECRET_LEN), 0);
	auth_keys_wipe(&a);
	cr_assert_eq(memcmp(a.secret, b.secret, AUTH_SECRET_LEN), 0);
	auth_keys_wipe(NULL);

	/* No temporary left behind. */
	cr_assert_eq(rmdir(dir), -1);
	tl_unlink_in(dir, AUTH_SECRET_FILE);
	cr_assert_eq(rmdir(dir), 0, "leftover files in %s", dir);
	free(dir);
}

Test(auth, secret_created_in_missing_dir)
{
	struct auth_keys a;
	struct err e = ERR_INIT;
	char sub[512], subsub[600];
	char *dir = tl_tmpdir("auth");

	snprintf(sub, sizeof(sub), "%s/a", dir);
	snprintf(subsub, sizeof(subsub), "%s/b", sub);
	cr_assert_eq(auth_keys_load_or_create(subsub, &a, &e), 0, "%s", e.msg);
	tl_unlink_in(subsub, AUTH_SECRET_FILE);
	cr_assert_eq(rmdir(subsub), 0);
	cr_assert_eq(rmdir(sub), 0);
	cr_assert_eq(rmdir(dir), 0);
	free(dir);
}

Test(auth, secret_refusals_table)
{
	struct {
		const char *name;
		mode_t mode;
		size_t size;
		int rc;
		const char *msg_part;
	} cases[] = {
		{ "world readable", 0644, AUTH_SECRET_LEN, ERR_FORBIDDEN,
		  "chmod 600" },
		{ "group readable", 0640, AUTH_SECRET_LEN, ERR_FORBIDDEN,
		  "group or others" },
		{ "other writable", 0602, AUTH_SECRET_LEN, ERR_FORBIDDEN,
		  "mode 0602" },
		{ "too short", 0600, 16, ERR_INVALID, "16 bytes, expected 32" },
		{ "empty", 0600, 0, ERR_INVALID, "0 bytes" },
		{ "too long", 0600, 33, ERR_INVALID, "33 bytes" },
		{ "owner-only 0400 is fine", 0400, AUTH_SECRET_LEN, 0, NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct auth_keys k;
		struct err e = ERR_INIT;
		char path[512], bytes[64];
		char *dir = tl_tmpdir("auth");
		int fd, rc;

		memset(bytes, 0x33, sizeof(bytes));
		snprintf(path, sizeof(path), "%s/%s", dir, AUTH_SECRET_FILE);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		cr_assert_geq(fd, 0);
		cr_assert_eq(write(fd, bytes, cases[i].size),
			     (ssize_t)cases[i].size);
		close(fd);
		cr_assert_eq(chmod(path, cases[i].mode), 0);

		rc = auth_keys_load_or_create(dir, &k, &e);
		cr_assert_eq(rc, cases[i].rc, "%s: rc %d (%s)", cases[i].name,
			     rc, e.msg);
		if (rc) {
			cr_assert_not_null(strstr(e.msg, cases[i].msg_part),
					   "%s: '%s'", cases[i].name, e.msg);
			cr_assert_not_null(strstr(e.msg, path), "%s",
					   cases[i].name);
		} else {
			cr_assert_eq(memcmp(k.secret, bytes, AUTH_SECRET_LEN),
				     0);
		}
		/* The file is never rewritten or re-moded behind our back. */
		{
			struct stat st;

			cr_assert_eq(stat(path, &st), 0);
			cr_assert_eq(st.st_mode & 07777, cases[i].mode);
			cr_assert_eq((size_t)st.st_size, cases[i].size);
		}
		tl_unlink_in(dir, AUTH_SECRET_FILE);
		cr_assert_eq(rmdir(dir), 0);
		free(dir);
	}
}

Test(auth, secret_then_chmod_0644_refused)
{
	struct auth_keys k;
	struct err e = ERR_INIT;
	char path[512];
	char *dir = tl_tmpdir("auth");

	snprintf(path, sizeof(path), "%s/%s", dir, AUTH_SECRET_FILE);
	cr_assert_eq(auth_keys_load_or_create(dir, &k, &e), 0, "%s", e.msg);
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(auth_keys_load_or_create(dir, &k, &e), ERR_FORBIDDEN);
	cr_assert_not_null(strstr(e.msg, "accessible by group or others"),
			   "%s", e.msg);
	tl_unlink_in(dir, AUTH_SECRET_FILE);
	cr_assert_eq(rmdir(dir), 0);
	free(dir);
}

Test(auth, secret_symlink_and_directory_refused)
{
	struct auth_keys k;
	struct err e = ERR_INIT;
	char path[512], target[512];
	char *dir = tl_tmpdir("auth");
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, AUTH_SECRET_FILE);
	snprintf(target, sizeof(target), "%s/real", dir);
	fd = open(target, O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "0123456789abcdef0123456789abcdef", 32), 32);
	close(fd);
	cr_assert_eq(symlink(target, path), 0);
	cr_assert_eq(auth_keys_load_or_create(dir, &k, &e), ERR_INVALID);
	cr_assert_not_null(strstr(e.msg, "symbolic link"), "%s", e.msg);
	tl_unlink_in(dir, AUTH_SECRET_FILE);

	cr_assert_eq(mkdir(path, 0700), 0);
	cr_assert_eq(auth_keys_load_or_create(dir, &k, &e), ERR_INVALID);
	cr_assert_not_null(strstr(e.msg, "not a regular file"), "%s", e.msg);
	cr_assert_eq(rmdir(path), 0);
	tl_unlink_in(dir, "real");
	cr_assert_eq(rmdir(dir), 0);
	free(dir);
}

Test(auth, private_file_written_0600)
{
	struct err e = ERR_INIT;
	char path[512], got[64];
	struct stat st;
	char *dir = tl_tmpdir("auth");
	int fd;
	ssize_t r;

	snprintf(path, sizeof(path), "%s/token", dir);
	/* An existing, too-open file is replaced by a private one. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "old", 3), 3);
	close(fd);
	cr_assert_eq(chmod(path, 0644), 0);

	cr_assert_eq(auth_write_private_file(path, "tok.en.sig", 10, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	r = read(fd, got, sizeof(got));
	close(fd);
	cr_assert_eq(r, 10);
	cr_assert_eq(memcmp(got, "tok.en.sig", 10), 0);
	tl_unlink_in(dir, "token");
	cr_assert_eq(rmdir(dir), 0, "leftover files in %s", dir);
	free(dir);
}
