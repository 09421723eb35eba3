/*
 * tokens.h - the token cache: who a request's Authorization token names,
 * remembered so that a token seen before costs no HMAC and, while no auth
 * record changed, no read of the store. server.c asks it once per request
 * before the handler runs (struct http_req.auth).
 *
 * A signature depends only on the token, the installation secret and the
 * record's tokenKey, and a tokenKey changes only through a store write. An
 * entry is reused as is while no write to an auth collection has committed
 * since its record was read (store_auth_seq()); after one the record is
 * read again and the entry kept only when its tokenKey is still the one
 * the token was verified with. So creates in other collections, however
 * many, do not make every request read its caller's record again. Expiry
 * is checked on every use.
 *
 * THREAD SAFETY NOTES: tokens_check() is called by every civetweb worker
 * at once. The cache is a fixed table of slots picked by a hash of the
 * token, one mutex per slot, held only to compare and copy, never while
 * reading the store or verifying a signature. tokens_new() and
 * tokens_free() run on the main thread, before the workers start and
 * after they were joined.
 */
#ifndef POCKETCTL_TOKENS_H
#define POCKETCTL_TOKENS_H

#include "auth.h"
#include "err.h"
#include "http.h"
#include "store/schema.h"
#include "store/store.h"

struct tokens;

/*
 * Make an empty cache for tokens signed with keys, whose auth records live
 * in st under schema s (all three borrowed; they must outlive the cache).
 * Returns NULL when memory runs out.
 */
struct tokens *tokens_new(struct store *st, const struct schema *s,
			  const struct auth_keys *keys);

/* Free the cache and every remembered token. Accepts NULL. */
void tokens_free(struct tokens *tc);

/*
 * Fill *out with the caller that token (the Authorization header's token,
 * auth_header_token()) names: kind (superuser or user), record id,
 * collection id, and the auth record as rules and handlers see it (its
 * data without the password hash and tokenKey, plus id, collectionId and
 * collectionName), which the caller owns (json_decref(out->record)).
 * Returns 0, or ERR_UNAUTHORIZED (a bad or expired token, or one for a
 * record that is gone or whose tokenKey changed) / ERR_NOMEM with e set,
 * leaving *out as it was.
 */
int tokens_check(struct tokens *tc, const char *token, struct http_auth *out,
		 struct err *e);

/*
 * Fill *out with the caller auth record rec of collection c is, as
 * tokens_check() does for a token's record (caller owns out->record): for
 * other credentials that name an auth record (tickets.h). Returns 0 or
 * ERR_NOMEM, leaving *out as it was.
 */
int tokens_caller_of(const struct collection *c, const struct record *rec,
		     struct http_auth *out, struct err *e);

#endif
