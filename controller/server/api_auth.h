/*
 * api_auth.h - PocketBase auth endpoints for the auth collections (users
 * and _superusers): auth-with-password and auth-refresh, plus the helpers
 * the records API and the server's bootstrap share: looking an auth record
 * up by email and preparing a password for storage.
 */
#ifndef POCKETCTL_API_AUTH_H
#define POCKETCTL_API_AUTH_H

#include <jansson.h>

#include "err.h"
#include "http.h"
#include "store/schema.h"
#include "store/store.h"

struct server;

/* The local CLI's own superuser: the server creates it at start-up (an
 * unusable password) and writes a token for it to DATA_DIR/cli.token. */
#define API_AUTH_CLI_EMAIL "pocketctl-cli@localhost"

/*
 * POST /api/collections/:c/auth-with-password, body {identity, password}
 * (identity is the email; :c is the collection name or id). Replies 200
 * {"token", "record"}; 400 {"status":400,"message":"Failed to
 * authenticate.","data":{}} for an unknown email and a wrong password alike
 * (an unknown email still costs one bcrypt, so timing tells nothing); 400
 * with data.identity / data.password when either is missing; 404 when :c is
 * not an auth collection; 429 with Retry-After, before any bcrypt, once
 * the identity's or the client IP's budget of failed logins is spent
 * (rules login-identity and login-ip of the server options; a success
 * resets the identity's count).
 */
int api_auth_with_password(struct http_req *r);

/*
 * POST /api/collections/:c/auth-refresh with a valid token of a record of
 * :c: a new token (fresh expiry) and the record as it is now. 401 without
 * such a token.
 */
int api_auth_refresh(struct http_req *r);

/*
 * Find the record of auth collection c whose email is email (compared
 * case-insensitively, as PocketBase does). Returns 0 and fills out (caller
 * releases it with record_release()), ERR_NOT_FOUND, or a store error.
 */
int api_auth_find_by_email(struct store *s, const struct collection *c,
			   const char *email, struct record *out,
			   struct err *e);

/*
 * Prepare a create / update body of auth collection c for the store, as
 * the records API must before store_txn_put():
 *
 *   - when data has "password": it must be a string passing
 *     auth_password_check(); when "passwordConfirm" is present it must be
 *     equal (ERR_INVALID, field "passwordConfirm"). "password" is replaced
 *     by its bcrypt hash (cost from the server options) and "tokenKey" is
 *     set to a fresh auth_token_key_new(), which signs out every token
 *     issued before.
 *   - "passwordConfirm" is always removed (it is not a field).
 *
 * data is changed in place (borrowed). Returns 0, ERR_INVALID with e->field
 * set ("password" / "passwordConfirm"), or ERR_INTERNAL / ERR_NOMEM.
 * Creating a record also needs a tokenKey when no password was given: the
 * caller checks "password" is required on create (the schema says so).
 * Does nothing for non-auth collections. Costs one bcrypt (~50 ms at cost
 * 10) when a password is present: call it before store_begin(), never
 * while holding the writer lock.
 */
int api_auth_prepare_password(struct server *srv, const struct collection *c,
			      json_t *data, struct err *e);

/*
 * Create a record of auth collection collection as the server itself (no
 * actor: system fields such as role and verified may be set), in a
 * transaction of its own: data (borrowed) holds the fields, "password"
 * already hashed; a fresh "tokenKey" (auth_token_key_new()) is added to
 * it. out (nullable) receives the stored record (caller releases it).
 * Returns 0 or the store's error (ERR_CONFLICT for a taken email,
 * ERR_INVALID naming a bad field).
 */
int api_auth_create(struct store *s, const char *collection, json_t *data,
		    struct record *out, struct err *e);

/*
 * Refuse to delete (body NULL) or to change the email, password or
 * tokenKey (members of body, borrowed) of record id of c inside t when it
 * is the local CLI's own superuser (API_AUTH_CLI_EMAIL): the running
 * server's CLI token would stop working. Returns 0 for any other record or
 * change (or a record that does not exist: the write reports that),
 * ERR_INVALID saying why and what to do, or a store error.
 */
int api_auth_keep_cli_account(struct store_txn *t,
			      const struct collection *c, const char *id,
			      json_t *body, struct err *e);

/*
 * For the routes of superusers only: when the caller is not one, reply
 * 401 (no token) or 403 (any other caller) in PocketBase's words and
 * return true; otherwise return false and reply nothing.
 */
bool api_auth_refuse_unless_superuser(struct http_req *r);

#endif
