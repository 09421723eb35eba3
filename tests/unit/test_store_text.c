/*
 * test_store_text.c - the store's JSON text of small values (store_text.c)
 * must be json_dumps()'s, byte for byte, whichever way it is made; and the
 * apply digest of a value (jsonhash.c) must be the SHA-256 of the stream
 * jsonhash.c describes, whatever the order of keys and however the
 * pieces reach OpenSSL.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "buf.h"
#include "jsonhash.h"
#include "store/store_int.h"

static void same_text(json_t *v)
{
	char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	char *got = text_of(v);
	struct buf b = BUF_INIT;

	cr_assert_not_null(want);
	cr_assert_not_null(got);
	cr_assert_str_eq(got, want);
	cr_assert_eq(buf_puts(&b, "x"), 0);
	cr_assert_eq(text_add(&b, v), 0);
	cr_assert_eq(b.ptr[0], 'x');
	cr_assert_str_eq(b.ptr + 1, want);
	buf_release(&b);
	free(want);
	free(got);
	json_decref(v);
}

Test(store_text, flat_objects_and_the_rest_as_jansson_writes_them)
{
	json_t *v;

	same_text(json_object());
	same_text(json_pack("{s:s}", "team", "a"));
	/* insertion order, not sorted */
	same_text(json_pack("{s:s, s:s, s:s}", "z", "1", "a", "2", "m", ""));
	same_text(json_pack("{s:s}", "", ""));
	/* what needs escaping goes to jansson */
	same_text(json_pack("{s:s}", "q", "a\"b"));
	same_text(json_pack("{s:s}", "b", "a\\b"));
	same_text(json_pack("{s:s}", "n", "line\nbreak\x01\x1f"));
	same_text(json_pack("{s:s}", "k\"ey", "v"));
	/* left as they are by both */
	same_text(json_pack("{s:s}", "slash/", "a/b \x7f"));
	same_text(json_pack("{s:s}", "\xc3\xa9", "\xf0\x9f\x98\x80 \xe2\x80\xa8"));
	/* not flat: numbers, nesting, arrays, scalars */
	same_text(json_pack("{s:s, s:i}", "a", "b", "n", 3));
	same_text(json_pack("{s:{s:s}}", "a", "b", "c"));
	same_text(json_pack("[s, i, b, n]", "a", 1, 1));
	same_text(json_string("plain"));
	same_text(json_integer(-42));
	same_text(json_null());
	/* many members */
	v = json_object();
	for (int i = 0; i < 100; i++) {
		char k[32];

		snprintf(k, sizeof(k), "field%d", i);
		json_object_set_new(v, k, json_string("user:abc"));
	}
	same_text(v);
	cr_assert(text_plain("plain text", 10));
	cr_assert_not(text_plain("a\"", 2));
	cr_assert_not(text_plain("a\\", 2));
	cr_assert_not(text_plain("\t", 1));
}

/* The digest of v through a reused hasher. */
static void digest(struct jsonhash *h, const json_t *v,
		   unsigned char out[JSONHASH_LEN])
{
	cr_assert_eq(jsonhash_begin(h), 0);
	cr_assert_eq(jsonhash_value(h, v), 0);
	cr_assert_eq(jsonhash_end(h, out), 0);
}

static void sha(const struct buf *b, unsigned char out[JSONHASH_LEN])
{
	unsigned int n = 0;

	cr_assert_eq(EVP_Digest(b->ptr, b->len, out, &n, EVP_sha256(), NULL),
		     1);
	cr_assert_eq(n, JSONHASH_LEN);
}

static void put_count(struct buf *b, uint64_t n)
{
	cr_assert_eq(buf_add(b, &n, sizeof(n)), 0);
}

static void put_str(struct buf *b, const char *s, size_t n)
{
	put_count(b, n);
	cr_assert_eq(buf_add(b, s, n), 0);
}

Test(store_text, digest_is_the_documented_stream)
{
	struct jsonhash *h = jsonhash_new();
	unsigned char got[JSONHASH_LEN], want[JSONHASH_LEN];
	struct buf b = BUF_INIT;
	json_int_t iv = 7;
	double rv = 1.5;
	json_t *v;
	char *big;

	cr_assert_not_null(h);
	/* {"b":[7,1.5,true,false,null],"a":"x"}: keys sorted in the stream */
	v = json_pack("{s:[i,f,b,b,n], s:s}", "b", 7, 1.5, 1, 0, "a", "x");
	cr_assert_eq(buf_putc(&b, 'o'), 0);
	put_count(&b, 2);
	put_str(&b, "a", 1);
	cr_assert_eq(buf_putc(&b, 's'), 0);
	put_str(&b, "x", 1);
	put_str(&b, "b", 1);
	cr_assert_eq(buf_putc(&b, 'a'), 0);
	put_count(&b, 5);
	cr_assert_eq(buf_putc(&b, 'i'), 0);
	cr_assert_eq(buf_add(&b, &iv, sizeof(iv)), 0);
	cr_assert_eq(buf_putc(&b, 'r'), 0);
	cr_assert_eq(buf_add(&b, &rv, sizeof(rv)), 0);
	cr_assert_eq(buf_puts(&b, "tfn"), 0);
	sha(&b, want);
	digest(h, v, got);
	cr_assert_eq(memcmp(got, want, JSONHASH_LEN), 0);
	/* the same hasher again: the same digest */
	digest(h, v, got);
	cr_assert_eq(memcmp(got, want, JSONHASH_LEN), 0);
	json_decref(v);

	/* A string longer than the hasher's buffer, after small pieces. */
	big = malloc(10000);
	cr_assert_not_null(big);
	memset(big, 'q', 10000);
	v = json_pack("[s, s#, s]", "x", big, (int)10000, "y");
	buf_reset(&b);
	cr_assert_eq(buf_putc(&b, 'a'), 0);
	put_count(&b, 3);
	cr_assert_eq(buf_putc(&b, 's'), 0);
	put_str(&b, "x", 1);
	cr_assert_eq(buf_putc(&b, 's'), 0);
	put_str(&b, big, 10000);
	cr_assert_eq(buf_putc(&b, 's'), 0);
	put_str(&b, "y", 1);
	sha(&b, want);
	digest(h, v, got);
	cr_assert_eq(memcmp(got, want, JSONHASH_LEN), 0);
	json_decref(v);
	free(big);

	/* Bytes fed by the caller: length, then the bytes. */
	buf_reset(&b);
	put_str(&b, "salt", 4);
	sha(&b, want);
	cr_assert_eq(jsonhash_begin(h), 0);
	cr_assert_eq(jsonhash_bytes(h, "salt", 4), 0);
	cr_assert_eq(jsonhash_end(h, got), 0);
	cr_assert_eq(memcmp(got, want, JSONHASH_LEN), 0);
	buf_release(&b);
	jsonhash_free(h);
}

Test(store_text, digest_sees_values_not_key_order)
{
	struct jsonhash *h = jsonhash_new();
	unsigned char a[JSONHASH_LEN], b[JSONHASH_LEN];
	json_t *x = json_pack("{s:i, s:s, s:{s:b, s:n}}", "n", 1, "s", "v",
			      "o", "t", 1, "z");
	json_t *y = json_pack("{s:{s:n, s:b}, s:s, s:i}", "o", "z", "t", 1,
			      "s", "v", "n", 1);
	json_t *z = json_pack("{s:s, s:s, s:{s:b, s:n}}", "n", "1", "s", "v",
			      "o", "t", 1, "z");

	cr_assert_not_null(h);
	digest(h, x, a);
	digest(h, y, b);
	cr_assert_eq(memcmp(a, b, JSONHASH_LEN), 0, "key order changed it");
	digest(h, z, b);
	cr_assert_neq(memcmp(a, b, JSONHASH_LEN), 0, "1 and \"1\" collide");
	json_decref(x);
	json_decref(y);
	json_decref(z);
	jsonhash_free(h);
}
