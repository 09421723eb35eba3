/*
 * auth.h - password hashes and PocketBase-compatible auth tokens.
 *
 * Passwords are bcrypt hashes made by libcrypt ("$2b$", cost 10 unless told
 * otherwise). Auth tokens are the JWTs PocketBase issues, so the official
 * SDKs decode them unchanged: header {"alg":"HS256","typ":"JWT"}, payload
 * {"collectionId","exp","id","refreshable":true,"type":"auth"}, signed with
 * HMAC-SHA256. The signing key depends on the installation secret
 * (DATA_DIR/secret.key, 32 random bytes) AND the record's tokenKey, so a new
 * tokenKey (set on every password change) invalidates that record's tokens:
 *
 *     signing key = HMAC-SHA256(key = installation secret, msg = tokenKey)
 *
 * PocketBase itself signs with the string tokenKey + collection secret; a
 * derived key gives the same property (both inputs needed, either change
 * kills old tokens) with a fixed-length key and no concatenation ambiguity.
 * Tokens are therefore valid only on the installation that issued them.
 *
 * THREAD SAFETY NOTES: every function is reentrant (crypt_rn with a private
 * crypt_data, OpenSSL one-shot calls); a struct auth_keys is read-only after
 * auth_keys_load_or_create() and may be shared by all request threads.
 */
#ifndef POCKETCTL_AUTH_H
#define POCKETCTL_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AUTH_SECRET_LEN 32           /* bytes in DATA_DIR/secret.key */
#define AUTH_SECRET_FILE "secret.key"
#define AUTH_BCRYPT_COST_DEFAULT 10
#define AUTH_BCRYPT_COST_MIN 4       /* bcrypt's own limits */
#define AUTH_BCRYPT_COST_MAX 31
#define AUTH_HASH_MAX 128            /* room for any bcrypt hash (60 chars) */
#define AUTH_PASSWORD_MIN 8          /* characters (PocketBase's default) */
#define AUTH_PASSWORD_MAX 72         /* bytes: bcrypt ignores the rest */
#define AUTH_TOKEN_TTL_DEFAULT 86400 /* seconds (PocketBase's default) */
#define AUTH_TOKEN_MAX 4096          /* longer Authorization values are refused */
#define AUTH_CLAIM_MAX 64            /* bytes per id / collectionId, with NUL */
#define AUTH_TOKEN_KEY_LEN 50        /* PocketBase's tokenKey length */

/* The installation secret. A value type; wipe with auth_keys_wipe(). */
struct auth_keys {
	unsigned char secret[AUTH_SECRET_LEN];
};

/* What a verified token says. */
struct auth_claims {
	char id[AUTH_CLAIM_MAX];            /* the record id */
	char collection_id[AUTH_CLAIM_MAX]; /* e.g. "_pb_users_auth_" */
	char type[AUTH_CLAIM_MAX];          /* always "auth" after a success */
	bool refreshable;                   /* false when the claim is absent */
	int64_t exp;                        /* unix seconds */
};

/* ---- passwords ------------------------------------------------------- */

/*
 * Check a new password against the rules PocketBase applies: at least
 * AUTH_PASSWORD_MIN characters (UTF-8 code points, as PocketBase counts) and
 * at most AUTH_PASSWORD_MAX bytes (bcrypt silently ignores anything past
 * byte 72, so a longer password would be a lie). Returns 0 or ERR_INVALID
 * with field "password". NULL counts as empty.
 */
int auth_password_check(const char *pw, struct err *e);

/*
 * Hash pw with bcrypt ("$2b$") at the given cost (0 or less means
 * AUTH_BCRYPT_COST_DEFAULT; otherwise AUTH_BCRYPT_COST_MIN..MAX) with a
 * fresh random salt, into out (n bytes; AUTH_HASH_MAX is always enough).
 * pw must pass auth_password_check(). Returns 0, ERR_INVALID (field
 * "password" or "cost"), ERR_TOO_LARGE when out is too small, ERR_NOMEM, or
 * ERR_INTERNAL when libcrypt fails. On error out holds "".
 */
int auth_password_hash(const char *pw, int cost, char *out, size_t n,
		       struct err *e);

/*
 * True when pw matches the bcrypt hash (compared in constant time). False
 * for any malformed input: NULL, an empty or over-long password, a hash that
 * is not bcrypt. hash may be NULL for an unknown account: a bcrypt at the
 * default cost still runs, so the time taken does not reveal whether the
 * account exists.
 */
bool auth_password_verify(const char *pw, const char *hash);

/*
 * Fill out with a fresh tokenKey: AUTH_TOKEN_KEY_LEN random [A-Za-z0-9]
 * characters (PocketBase's shape). Set one on record creation and on every
 * password change. Returns 0 or ERR_INTERNAL when the RNG fails.
 */
int auth_token_key_new(char out[AUTH_TOKEN_KEY_LEN + 1], struct err *e);

/* ---- the installation secret ----------------------------------------- */

/*
 * Load DATA_DIR/secret.key into out, creating it on first use with
 * AUTH_SECRET_LEN bytes from RAND_bytes, mode 0600, fsync'd (written to a
 * private O_CREAT|O_EXCL temporary and linked into place, so a crash never
 * leaves a short key and two concurrent first starts agree on one key).
 * data_dir is created if missing. An existing file is refused when it is
 * not a regular file, when its mode grants any group/other access
 * (ERR_FORBIDDEN, saying how to fix it) or when its size is not
 * AUTH_SECRET_LEN (ERR_INVALID). Other failures are ERR_IO naming the path.
 */
int auth_keys_load_or_create(const char *data_dir, struct auth_keys *out,
			     struct err *e);

/* The same for a key file at path (its directory created if missing). */
int auth_keys_load_or_create_file(const char *path, struct auth_keys *out,
				  struct err *e);

/* Overwrite the secret in memory. Accepts NULL. */
void auth_keys_wipe(struct auth_keys *k);

/*
 * Write data[0..len) to path with mode 0600, atomically (fs_write_atomic):
 * for CLI credentials such as a saved token. Same errors as fs_write_atomic.
 */
int auth_write_private_file(const char *path, const void *data, size_t len,
			    struct err *e);

/* ---- tokens ---------------------------------------------------------- */

/*
 * Issue an auth token for record record_id of collection collection_id,
 * valid until now + ttl_seconds (ttl_seconds > 0; 0 means
 * AUTH_TOKEN_TTL_DEFAULT). token_key is the record's current tokenKey.
 * Caller owns *out (free with free()). Returns 0, ERR_INVALID for an empty,
 * over-long or oddly-charactered id / collection id, an empty tokenKey or a
 * bad ttl, ERR_NOMEM, or ERR_INTERNAL when OpenSSL fails.
 */
int auth_token_issue(const struct auth_keys *k, const char *collection_id,
		     const char *record_id, const char *token_key,
		     int64_t ttl_seconds, int64_t now, char **out,
		     struct err *e);

/*
 * Look up the current tokenKey of record id in collection collection_id.
 * Returns a string the caller (auth_token_verify) frees with free(), or NULL
 * when there is no such record (or it cannot be read). arg is passed
 * through.
 */
typedef char *(*auth_token_key_fn)(void *arg, const char *collection_id,
				   const char *record_id);

/*
 * Verify token at time now. lookup supplies the record's tokenKey (the
 * signature can only be checked once the claimed record is known). On
 * success fills out (nullable) and returns 0. Otherwise ERR_UNAUTHORIZED
 * with a message naming what was wrong: malformed token (not three
 * base64url parts, too long), bad base64url, header or payload not a JSON
 * object, missing or ill-typed claims, an algorithm other than HS256
 * (including "none"), unknown record, bad signature (compared in constant
 * time), expired (now >= exp), or a type other than "auth". Messages may
 * quote claim values only when they are short and printable. ERR_NOMEM on
 * allocation failure.
 */
int auth_token_verify(const struct auth_keys *k, const char *token,
		      int64_t now, auth_token_key_fn lookup, void *arg,
		      struct auth_claims *out, struct err *e);

/*
 * The token in an Authorization header value: "TOKEN" (what the PocketBase
 * SDKs send) or "Bearer TOKEN" (scheme matched case-insensitively), with
 * leading spaces skipped. Returns a pointer into header_value (borrowed;
 * valid as long as it is), or NULL when header_value is NULL or holds no
 * token. Trailing junk is left to auth_token_verify() to reject.
 */
const char *auth_header_token(const char *header_value);

#endif
