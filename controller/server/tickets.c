/*
 * tickets.c - watch tickets (see tickets.h): issued for a caller, checked
 * against the named record's current tokenKey with OpenSSL's HMAC.
 */
#include "tickets.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tokens.h"
#include "util.h"

#define KEY_LABEL "pocketctl watch ticket:"
#define MAC_LEN 32                       /* SHA-256 */
#define MAC_HEX (2 * MAC_LEN)

/* The auth record a names or a ticket claims, read with its tokenKey
 * (borrowed from rec). ERR_UNAUTHORIZED when there is none. */
static int read_record(struct store *st, const struct schema *s,
		       const char *collection_id, const char *id,
		       const struct collection **c, struct record *rec,
		       const char **token_key, struct err *e)
{
	struct err le = ERR_INIT;

	*c = schema_find_by_id(s, collection_id);
	if (!*c || !(*c)->auth || !util_valid_id(id) ||
	    store_get(st, (*c)->name, id, rec, &le))
		return err_set(e, ERR_UNAUTHORIZED, "unknown auth record");
	*token_key = json_string_value(json_object_get(rec->data, "tokenKey"));
	if (!*token_key || !**token_key)
		return err_set(e, ERR_UNAUTHORIZED, "unknown auth record");
	return 0;
}

/* HEX(HMAC(ticket key, body)) into hex (MAC_HEX + 1 bytes). */
static int sign(const struct auth_keys *k, const char *token_key,
		const char *body, char hex[MAC_HEX + 1], struct err *e)
{
	unsigned char key[MAC_LEN], mac[MAC_LEN];
	unsigned int klen = 0, mlen = 0;
	char label[sizeof(KEY_LABEL) + AUTH_TOKEN_KEY_LEN + 64];
	size_t hlen = 0;
	int rc = 0;

	snprintf(label, sizeof(label), "%s%s", KEY_LABEL, token_key);
	if (!HMAC(EVP_sha256(), k->secret, sizeof(k->secret),
		  (const unsigned char *)label, strlen(label), key, &klen) ||
	    !HMAC(EVP_sha256(), key, klen, (const unsigned char *)body,
		  strlen(body), mac, &mlen) ||
	    !OPENSSL_buf2hexstr_ex(hex, MAC_HEX + 1, &hlen, mac, mlen, '\0'))
		rc = err_set(e, ERR_INTERNAL, "cannot sign the ticket");
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(label, sizeof(label));
	return rc;
}

int ticket_issue(struct store *st, const struct schema *s,
		 const struct auth_keys *k, const struct http_auth *a,
		 int64_t now, int64_t ttl, char out[TICKET_MAX],
		 int64_t *expires, struct err *e)
{
	const struct collection *c = NULL;
	const char *tk = NULL;
	char body[TICKET_MAX - MAC_HEX - 1], hex[MAC_HEX + 1];
	struct record rec;
	int rc;

	record_init(&rec);
	out[0] = '\0';
	if (a->kind == CALLER_GUEST || ttl <= 0) {
		rc = err_set(e, ERR_UNAUTHORIZED, "a watch ticket needs an "
			     "authenticated caller");
		goto out;
	}
	rc = read_record(st, s, a->collection_id, a->id, &c, &rec, &tk, e);
	if (rc)
		goto out;
	*expires = now + ttl;
	snprintf(body, sizeof(body), "%s.%s.%" PRId64, c->id, rec.id,
		 *expires);
	rc = sign(k, tk, body, hex, e);
	if (!rc)
		snprintf(out, TICKET_MAX, "%s.%s", body, hex);
out:
	record_release(&rec);
	return rc;
}

int ticket_check(struct store *st, const struct schema *s,
		 const struct auth_keys *k, const char *ticket, int64_t now,
		 struct http_auth *out, struct err *e)
{
	const struct collection *c = NULL;
	const char *tk = NULL, *mac;
	char coll[AUTH_CLAIM_MAX], id[AUTH_CLAIM_MAX], body[TICKET_MAX];
	char hex[MAC_HEX + 1];
	struct record rec;
	long long exp = 0;
	int n = 0, rc;

	record_init(&rec);
	mac = strrchr(ticket, '.');
	if (strlen(ticket) >= TICKET_MAX || !mac ||
	    strlen(mac + 1) != MAC_HEX ||
	    sscanf(ticket, "%63[A-Za-z0-9_].%63[a-z0-9].%lld%n", coll, id,
		   &exp, &n) != 3 || ticket + n != mac) {
		rc = err_set(e, ERR_UNAUTHORIZED, "malformed watch ticket");
		goto out;
	}
	if (now >= exp) {
		rc = err_set(e, ERR_UNAUTHORIZED, "the watch ticket expired; "
			     "ask for a new one (POST /api/v1/watch/tickets)");
		goto out;
	}
	rc = read_record(st, s, coll, id, &c, &rec, &tk, e);
	if (rc)
		goto out;
	snprintf(body, sizeof(body), "%.*s", (int)(mac - ticket), ticket);
	rc = sign(k, tk, body, hex, e);
	if (rc)
		goto out;
	/* OpenSSL's hex is upper case; so is what we issued. */
	if (CRYPTO_memcmp(hex, mac + 1, MAC_HEX) != 0) {
		rc = err_set(e, ERR_UNAUTHORIZED, "the watch ticket is not "
			     "valid (revoked, or for another installation)");
		goto out;
	}
	rc = tokens_caller_of(c, &rec, out, e);
out:
	record_release(&rec);
	return rc;
}
