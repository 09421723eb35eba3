/*
 * jsonhash.h - a SHA-256 digest of JSON values as they are in memory,
 * without making their text: each value is fed as a type byte and its
 * content (strings and object keys after their length, object members in
 * sorted key order), so that two values have the same digest exactly when
 * they are equal as JSON, whatever the order of their keys.
 *
 * One hasher serves any number of digests in turn (apply makes one per
 * document): the digest and its context are fetched once, and the small
 * pieces of a value are gathered in a buffer before they reach OpenSSL.
 * Not for use by two threads at once.
 */
#ifndef POCKETCTL_JSONHASH_H
#define POCKETCTL_JSONHASH_H

#include <stddef.h>

#include <jansson.h>

#define JSONHASH_LEN 32 /* SHA-256 */

struct jsonhash;

/* NULL on no memory or when OpenSSL has no SHA-256. */
struct jsonhash *jsonhash_new(void);
void jsonhash_free(struct jsonhash *h);

/* Start a digest; then feed bytes (after their length) and values, and
 * finish into out. Each returns 0, or -1 on error (memory, OpenSSL):
 * the digest is then lost, and the next one starts with jsonhash_begin(). */
int jsonhash_begin(struct jsonhash *h);
int jsonhash_bytes(struct jsonhash *h, const void *p, size_t n);
int jsonhash_value(struct jsonhash *h, const json_t *v);
int jsonhash_end(struct jsonhash *h, unsigned char out[JSONHASH_LEN]);

#endif
