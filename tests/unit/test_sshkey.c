/*
 * test_sshkey.c - OpenSSH public key lines (sshkey.h): the parser's
 * verdicts, table-driven, the fingerprint against what `ssh-keygen -l -E
 * sha256` printed for the same key, private-key detection, and the
 * ssh_keys write hook through a real store: the fingerprint filled in, a
 * wrong one refused, nothing of a refused write kept.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "err.h"
#include "sshkey.h"
#include "store/store.h"
#include "testlib.h"

/* Made by ssh-keygen -t ed25519; `ssh-keygen -l -E sha256` printed FP. */
#define ED_KEY "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOsodBcQEl/CIth6oZ8sU3" \
	       "Lp2ieN8aKXRq9f7XNiJeAF alice@laptop"
#define ED_FP "SHA256:tBLUjrSepCRsmU0S6yPR6Pv3yTvZXp4AI14Zwuz2oYs"

struct parse_case {
	const char *line;
	const char *why;      /* NULL: accepted; else the start of the reason */
};

static const struct parse_case parse_cases[] = {
	{ ED_KEY, NULL },
	{ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOsodBcQEl/CIth6oZ8sU3Lp2ieN8aK"
	  "XRq9f7XNiJeAF", NULL },                         /* no comment */
	{ "", "is empty" },
	{ "AAAAC3NzaC1lZDI1NTE5AAAAIOsodBcQEl/CIth6oZ8sU3Lp2ieN8aKXRq9f7XNiJeAF",
	  "does not start with a key type" },
	{ "command=\"sh\" " ED_KEY, "does not start with a key type" },
	{ "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOsodBcQEl/CIth6oZ8sU3Lp2ieN8aKXRq9"
	  "f7XNiJeAF", "has no valid base64 key blob" },   /* type mismatch */
	{ "ssh-ed25519 not*base64", "has no valid base64 key blob" },
	{ "ssh-ed25519 AAAA", "has no valid base64 key blob" },
	{ ED_KEY "\nssh-ed25519 AAAA", "contains a line break" },
	{ "ssh-ed25519\tAAAA", "contains a control character" },
};

Test(sshkey, parse_table)
{
	struct sshkey k;
	const char *why;
	size_t i;
	int nomem;

	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];

		why = sshkey_parse(c->line, strlen(c->line), &k, &nomem);
		cr_assert_eq(nomem, 0);
		if (!c->why) {
			cr_expect_null(why, "case %zu: %s", i, why);
			continue;
		}
		cr_expect_not_null(why, "case %zu accepted", i);
		if (why)
			cr_expect(!strncmp(why, c->why, strlen(c->why)),
				  "case %zu: '%s'", i, why);
	}
}

Test(sshkey, fingerprint_is_ssh_keygens)
{
	struct sshkey k;
	const char *p = "  " ED_KEY "\r\n";
	size_t n = strlen(p);
	int nomem;

	sshkey_trim(&p, &n);
	cr_assert_eq(n, strlen(ED_KEY));
	cr_assert_null(sshkey_parse(p, n, &k, &nomem));
	cr_expect_str_eq(k.type, "ssh-ed25519");
	cr_expect_str_eq(k.fingerprint, ED_FP);
}

Test(sshkey, private_keys_are_recognised)
{
	static const char *const priv[] = {
		"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH "
		"PRIVATE KEY-----",
		"-----BEGIN RSA PRIVATE KEY-----",
		"-----BEGIN EC PRIVATE KEY-----",
		"PuTTY-User-Key-File-3: ssh-ed25519",
	};
	size_t i;

	for (i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
		cr_expect(sshkey_is_private(priv[i], strlen(priv[i])), "%s",
			  priv[i]);
	cr_expect(!sshkey_is_private(ED_KEY, strlen(ED_KEY)));
}

/* ---- the write hook, through a store ---------------------------------- */

static struct schema *sk_schema;
static struct store *sk_store;
static char sk_dir[256];

static void sk_setup(void)
{
	tl_store_setup(sk_dir, sizeof(sk_dir), "sshkey", NULL, 0, &sk_schema,
		       &sk_store);
}

static void sk_teardown(void)
{
	tl_store_teardown(sk_dir, &sk_schema, &sk_store);
}

/* Create an ssh_keys record from fixture JSON; its result, e filled. */
static int sk_create(const char *text, struct record *out, struct err *e)
{
	json_t *data = tl_json(text);
	struct store_txn *t;
	struct store_put p;
	int rc;

	memset(&p, 0, sizeof(p));
	p.collection = "ssh_keys";
	p.data = data;
	p.mode = STORE_CREATE;
	cr_assert_eq(store_begin(sk_store, &t, e), 0, "%s", e->msg);
	rc = store_txn_put(t, &p, out, NULL, e);
	if (rc)
		store_abort(t);
	else
		cr_assert_eq(store_commit(t, e), 0, "%s", e->msg);
	json_decref(data);
	return rc;
}

static int64_t sk_count(void)
{
	struct err e = ERR_INIT;
	int64_t n = -1;

	cr_assert_eq(store_count(sk_store, "ssh_keys", NULL, &n, &e), 0);
	return n;
}

TestSuite(sshkey_hook, .init = sk_setup, .fini = sk_teardown);

Test(sshkey_hook, fills_checks_and_refuses)
{
	struct err e = ERR_INIT;
	struct record r;

	record_init(&r);
	cr_assert_eq(sk_create("{'public_key': '" ED_KEY "'}", &r, &e), 0,
		     "%s", e.msg);
	cr_expect_str_eq(json_string_value(json_object_get(r.data,
							   "fingerprint")),
			 ED_FP);
	cr_expect_str_eq(json_string_value(json_object_get(r.data,
							   "algorithm")),
			 "ssh-ed25519");
	record_release(&r);
	cr_expect_eq(sk_count(), 1);

	cr_expect_eq(sk_create("{'public_key': '" ED_KEY "', 'fingerprint': "
			       "'SHA256:nope'}", &r, &e), ERR_INVALID);
	cr_expect_str_eq(e.field, "fingerprint");
	err_clear(&e);
	cr_expect_eq(sk_create("{'public_key': '-----BEGIN OPENSSH PRIVATE "
			       "KEY----- b3BlbnNzaC1rZXktdjE'}", &r, &e),
		     ERR_INVALID);
	cr_expect_str_eq(e.field, "public_key");
	cr_expect_null(strstr(e.msg, "b3BlbnNzaC1rZXktdjE"), "%s", e.msg);
	err_clear(&e);
	cr_expect_eq(sk_create("{'public_key': 'ssh-ed25519 AAAA'}", &r, &e),
		     ERR_INVALID);
	cr_expect_str_eq(e.field, "public_key");
	cr_expect_eq(sk_count(), 1);
}
