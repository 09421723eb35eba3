/*
 * tickets.h - watch tickets: short-lived, single-purpose credentials that
 * let a browser's EventSource, which cannot send an Authorization header,
 * open GET /api/v1/watch?ticket=T without the long-lived auth token ever
 * appearing in a URL.
 *
 * A ticket names one auth record (collection id, record id) and an expiry,
 * signed with HMAC-SHA256 under a key of its own:
 *
 *     ticket key = HMAC-SHA256(key = installation secret,
 *                              msg = "pocketctl watch ticket:" tokenKey)
 *     ticket     = COLLECTIONID "." RECORDID "." EXP "." HEX(HMAC(ticket key,
 *                  COLLECTIONID "." RECORDID "." EXP))
 *
 * The key differs from the auth-token signing key (a tokenKey never holds
 * ':'), so a ticket is never an auth token nor the other way round, and it
 * depends on the record's tokenKey: a password change (a new tokenKey) or
 * the record's deletion revokes every ticket of that record at once. Only
 * the watch route reads tickets (server.c); everywhere else a ticket is no
 * credential. A ticket opens streams until it expires; a stream opened with
 * it runs on after that, as a stream opened with a token does.
 *
 * THREAD SAFETY NOTES: reentrant (OpenSSL one-shot HMAC, store reads).
 */
#ifndef POCKETCTL_TICKETS_H
#define POCKETCTL_TICKETS_H

#include <stdint.h>

#include "auth.h"
#include "err.h"
#include "http.h"
#include "store/schema.h"
#include "store/store.h"

#define TICKET_TTL_DEFAULT 60    /* seconds a ticket opens streams */
#define TICKET_MAX 256           /* bytes of a ticket, with its NUL */

/*
 * Issue a ticket for caller a (a user or a superuser) valid until now +
 * ttl seconds (ttl > 0) into out; *expires receives that time (unix
 * seconds). Returns 0, ERR_UNAUTHORIZED for a guest or a caller whose
 * record is gone, ERR_INTERNAL when OpenSSL fails.
 */
int ticket_issue(struct store *st, const struct schema *s,
		 const struct auth_keys *k, const struct http_auth *a,
		 int64_t now, int64_t ttl, char out[TICKET_MAX],
		 int64_t *expires, struct err *e);

/*
 * Fill *out with the caller ticket names (as tokens_check() does for a
 * token; caller owns out->record) when it is well-formed, signed for its
 * record's current tokenKey and not expired at now. Otherwise
 * ERR_UNAUTHORIZED (the message never quotes the ticket) or ERR_NOMEM,
 * leaving *out as it was.
 */
int ticket_check(struct store *st, const struct schema *s,
		 const struct auth_keys *k, const char *ticket, int64_t now,
		 struct http_auth *out, struct err *e);

#endif
