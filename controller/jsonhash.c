/*
 * jsonhash.c - a SHA-256 digest of JSON values in memory (see jsonhash.h).
 *
 * The stream fed to SHA-256 is the one apply's digests were first made
 * of, piece for piece, so that digests stored by an earlier binary still
 * match: a type byte ('s' 'i' 'r' 't' 'f' 'n' 'a' 'o'), then for a string
 * its length (uint64_t, host order) and bytes; an integer or real its
 * 8 bytes; an array its size and items; an object its size, then each
 * member's key (length and bytes) and value, keys in strcmp() order.
 * Only the way in changed: pieces are gathered in buf and handed over
 * in one EVP_DigestUpdate() when it fills, instead of one call each.
 */
#include "jsonhash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct jsonhash {
	EVP_MD *md;
	EVP_MD_CTX *ctx;
	size_t len;             /* bytes in buf not yet fed */
	unsigned char buf[2048];
};

struct jsonhash *jsonhash_new(void)
{
	struct jsonhash *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	h->ctx = EVP_MD_CTX_new();
	if (!h->md || !h->ctx) {
		jsonhash_free(h);
		return NULL;
	}
	return h;
}

void jsonhash_free(struct jsonhash *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	EVP_MD_free(h->md);
	free(h);
}

static int flush(struct jsonhash *h)
{
	int ok = !h->len || EVP_DigestUpdate(h->ctx, h->buf, h->len) == 1;

	h->len = 0;
	return ok ? 0 : -1;
}

static int feed(struct jsonhash *h, const void *p, size_t n)
{
	if (n > sizeof(h->buf) - h->len) {
		if (flush(h))
			return -1;
		if (n > sizeof(h->buf))
			return EVP_DigestUpdate(h->ctx, p, n) == 1 ? 0 : -1;
	}
	memcpy(h->buf + h->len, p, n);
	h->len += n;
	return 0;
}

static int feed_tag(struct jsonhash *h, unsigned char tag)
{
	return feed(h, &tag, 1);
}

/* A count: a length, the size of an array or an object. */
static int feed_count(struct jsonhash *h, size_t n)
{
	uint64_t v = n;

	return feed(h, &v, sizeof(v));
}

int jsonhash_begin(struct jsonhash *h)
{
	h->len = 0;
	return EVP_DigestInit_ex2(h->ctx, h->md, NULL) == 1 ? 0 : -1;
}

int jsonhash_bytes(struct jsonhash *h, const void *p, size_t n)
{
	return feed_count(h, n) || feed(h, p, n) ? -1 : 0;
}

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int feed_object(struct jsonhash *h, const json_t *v)
{
	const char *small[16], **keys = small, *key;
	size_t i = 0, n = json_object_size(v);
	json_t *x;
	int rc = 0;

	if (n > sizeof(small) / sizeof(*small)) {
		keys = malloc(n * sizeof(*keys));
		if (!keys)
			return -1;
	}
	json_object_foreach((json_t *)v, key, x)
		keys[i++] = key;
	qsort(keys, n, sizeof(*keys), cmp_keys);
	if (feed_tag(h, 'o') || feed_count(h, n))
		rc = -1;
	for (i = 0; !rc && i < n; i++) {
		if (jsonhash_bytes(h, keys[i], strlen(keys[i])) ||
		    jsonhash_value(h, json_object_get(v, keys[i])))
			rc = -1;
	}
	if (keys != small)
		free(keys);
	return rc;
}

int jsonhash_value(struct jsonhash *h, const json_t *v)
{
	json_int_t iv;
	double rv;
	json_t *x;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return feed_tag(h, 's') ||
		       jsonhash_bytes(h, json_string_value(v),
				      json_string_length(v)) ? -1 : 0;
	case JSON_INTEGER:
		iv = json_integer_value(v);
		return feed_tag(h, 'i') || feed(h, &iv, sizeof(iv)) ? -1 : 0;
	case JSON_REAL:
		rv = json_real_value(v);
		return feed_tag(h, 'r') || feed(h, &rv, sizeof(rv)) ? -1 : 0;
	case JSON_TRUE:
		return feed_tag(h, 't');
	case JSON_FALSE:
		return feed_tag(h, 'f');
	case JSON_NULL:
		return feed_tag(h, 'n');
	case JSON_ARRAY:
		if (feed_tag(h, 'a') || feed_count(h, json_array_size(v)))
			return -1;
		json_array_foreach((json_t *)v, i, x) {
			if (jsonhash_value(h, x))
				return -1;
		}
		return 0;
	case JSON_OBJECT:
		break;
	}
	return feed_object(h, v);
}

int jsonhash_end(struct jsonhash *h, unsigned char out[JSONHASH_LEN])
{
	unsigned int n = 0;

	if (flush(h) || EVP_DigestFinal_ex(h->ctx, out, &n) != 1 ||
	    n != JSONHASH_LEN)
		return -1;
	return 0;
}
