/*
 * api_auth.c - auth-with-password and auth-refresh for the auth collections
 * (users, _superusers), in PocketBase's shapes, plus the password
 * preparation the records API calls before storing an auth record.
 *
 * Failures to authenticate all look the same from outside: one message, one
 * status, and an unknown email costs the same bcrypt as a wrong password.
 * Password attempts are counted per identity and per client IP before the
 * bcrypt (ratelimit.h, groups login-identity and login-ip); a success gives
 * its attempt back, so only failures use the budget up, and past it the
 * answer is 429 at once, without a bcrypt.
 */
#include "api_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "pbjson.h"
#include "ratelimit.h"
#include "server.h"

#define AUTH_BODY_MAX ((size_t)16 << 10)  /* {identity, password}: tiny */

/* ---- lookups --------------------------------------------------------- */

/* store_list callback: copy the first record into arg and stop. */
static int keep_first(const struct record *r, void *arg)
{
	struct record *out = arg;

	memcpy(out->collection, r->collection, sizeof(out->collection));
	memcpy(out->id, r->id, sizeof(out->id));
	memcpy(out->created, r->created, sizeof(out->created));
	memcpy(out->updated, r->updated, sizeof(out->updated));
	out->generation = r->generation;
	out->revision = r->revision;
	out->name = r->name ? strdup(r->name) : NULL;
	/* deep copies: r's values are borrowed for the callback only */
	out->data = json_deep_copy(r->data);
	out->labels = json_deep_copy(r->labels);
	out->status = json_deep_copy(r->status);
	if ((r->name && !out->name) || !out->data || !out->labels ||
	    !out->status)
		return ERR_NOMEM;
	return 1;
}

int api_auth_find_by_email(struct store *s, const struct collection *c,
			   const char *email, struct record *out,
			   struct err *e)
{
	int rc;

	record_init(out);
	if (!c->auth)
		return err_set(e, ERR_NOT_FOUND,
			       "collection '%s' is not an auth collection",
			       c->name);
	rc = store_list_eq_nocase(s, c->name, "email", email, 1, keep_first,
				  out, e);
	if (rc == 1)
		return 0;
	record_release(out);
	if (rc == ERR_NOMEM)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (rc)
		return rc;
	return err_set(e, ERR_NOT_FOUND, "no %s record with that email",
		       c->name);
}

/* :c by name or collection id, which must be an auth collection. */
static const struct collection *auth_collection(struct http_req *r)
{
	const struct schema *s = r->srv->schema;
	const struct collection *c;

	if (!r->params[0])
		return NULL;
	c = schema_find(s, r->params[0]);
	if (!c)
		c = schema_find_by_id(s, r->params[0]);
	return c && c->auth ? c : NULL;
}

/* {"token", "record"} for record rec of c; the record is shown to its
 * owner. */
static int reply_token(struct http_req *r, const struct collection *c,
		       const struct record *rec)
{
	struct http_auth self;
	struct err e = ERR_INIT;
	const char *tk;
	char *token = NULL;
	json_t *body;
	int rc;

	tk = json_string_value(json_object_get(rec->data, "tokenKey"));
	if (!tk || !*tk)
		return http_fail(r, ERR_INTERNAL,
				 "%s record '%s' has no tokenKey", c->name,
				 rec->id);
	rc = auth_token_issue(&r->srv->keys, c->id, rec->id, tk,
			      r->srv->opts->token_ttl, (int64_t)time(NULL),
			      &token, &e);
	if (rc)
		return http_reply_error(r, &e);
	memset(&self, 0, sizeof(self));
	self.kind = strcmp(c->name, "_superusers") == 0 ? CALLER_SUPERUSER :
							  CALLER_USER;
	snprintf(self.id, sizeof(self.id), "%s", rec->id);
	snprintf(self.collection_id, sizeof(self.collection_id), "%s", c->id);
	self.record = rec->data;   /* borrowed for pb_record_json only */
	/* "o" steals the record JSON (json_pack decrefs it on failure). */
	body = json_pack("{s:s, s:o}", "token", token, "record",
			 pb_record_json(r->srv->schema, c, rec, &self));
	free(token);
	return http_reply_json(r, 200, body, NULL);   /* body stolen */
}

static int auth_failed(struct http_req *r)
{
	json_t *body = json_pack("{s:i, s:s, s:{}}", "status", 400, "message",
				 "Failed to authenticate.", "data");

	return http_reply_json(r, 400, body, NULL);   /* body stolen */
}

/* ---- login budgets --------------------------------------------------- */

/* "COLLECTION_ID:identity" with ASCII letters lowered (emails compare
 * case-insensitively), or NULL when out of memory. Caller frees. */
static char *identity_key(const struct collection *c, const char *identity)
{
	size_t n = strlen(c->id), i;
	char *k = malloc(n + 1 + strlen(identity) + 1);

	if (!k)
		return NULL;
	memcpy(k, c->id, n);
	k[n++] = ':';
	for (i = 0; identity[i]; i++)
		k[n + i] = (identity[i] >= 'A' && identity[i] <= 'Z') ?
			   (char)(identity[i] - 'A' + 'a') : identity[i];
	k[n + i] = '\0';
	return k;
}

/*
 * Count one password attempt of ikey from the client's IP. Returns 0, or
 * the seconds to wait when either budget is spent (then nothing is
 * counted). The IP is checked first, so that an address out of budget
 * cannot fill the table with identities; each take is atomic, so
 * concurrent attempts cannot overrun a budget.
 */
static int login_take(struct http_req *r, const char *ikey)
{
	const struct rl_rule *rules = r->srv->opts->rate.rules;
	struct ratelimit *rl = r->srv->ratelimit;
	const char *ip = r->ri->remote_addr;
	int64_t now = ratelimit_now_ms();
	int wait;

	wait = ratelimit_take(rl, RL_LOGIN_IP, &rules[RL_LOGIN_IP], ip, false,
			      now);
	if (!wait)
		wait = ratelimit_take(rl, RL_LOGIN_IDENTITY,
				      &rules[RL_LOGIN_IDENTITY], ikey, true,
				      now);
	if (wait)
		return wait;
	wait = ratelimit_take(rl, RL_LOGIN_IP, &rules[RL_LOGIN_IP], ip, true,
			      now);
	if (wait)   /* another attempt of this IP came first */
		ratelimit_give_back(rl, RL_LOGIN_IDENTITY, ikey, 1);
	return wait;
}

/* A login succeeded: the identity starts afresh, the IP gets its attempt
 * back. */
static void login_succeeded(struct http_req *r, const char *ikey)
{
	ratelimit_give_back(r->srv->ratelimit, RL_LOGIN_IDENTITY, ikey, -1);
	ratelimit_give_back(r->srv->ratelimit, RL_LOGIN_IP,
			    r->ri->remote_addr, 1);
}

/* ---- handlers -------------------------------------------------------- */

int api_auth_with_password(struct http_req *r)
{
	const struct collection *c = auth_collection(r);
	struct err e = ERR_INIT;
	struct record rec;
	const char *identity, *password, *hash;
	json_t *body = NULL;
	char *ikey = NULL;
	int rc, wait;

	record_init(&rec);
	if (!c) {
		rc = http_fail(r, ERR_NOT_FOUND,
			       "missing or invalid auth collection context");
		goto out;
	}
	rc = http_read_json(r, AUTH_BODY_MAX, &body, &e);
	if (rc) {
		rc = http_reply_error(r, &e);
		goto out;
	}
	identity = json_string_value(json_object_get(body, "identity"));
	password = json_string_value(json_object_get(body, "password"));
	if (!identity || !*identity) {
		err_set_field(&e, ERR_INVALID, "identity", "cannot be blank");
		rc = http_reply_error(r, &e);
		goto out;
	}
	if (!password || !*password) {
		err_set_field(&e, ERR_INVALID, "password", "cannot be blank");
		rc = http_reply_error(r, &e);
		goto out;
	}
	ikey = identity_key(c, identity);
	if (!ikey) {
		rc = http_fail(r, ERR_NOMEM, "out of memory");
		goto out;
	}
	wait = login_take(r, ikey);
	if (wait) {
		rc = http_reply_too_many(r, wait);
		goto out;
	}
	rc = api_auth_find_by_email(r->srv->store, c, identity, &rec, &e);
	if (rc && rc != ERR_NOT_FOUND) {
		rc = http_reply_error(r, &e);
		goto out;
	}
	/* An unknown email verifies against NULL: same bcrypt cost. */
	hash = rc ? NULL :
		json_string_value(json_object_get(rec.data, "password"));
	if (!auth_password_verify(password, hash) || rc) {
		rc = auth_failed(r);
		goto out;
	}
	login_succeeded(r, ikey);
	rc = reply_token(r, c, &rec);
out:
	json_decref(body);
	free(ikey);
	record_release(&rec);
	return rc;
}

int api_auth_refresh(struct http_req *r)
{
	const struct collection *c = auth_collection(r);
	struct err e = ERR_INIT;
	struct record rec;
	int rc;

	record_init(&rec);
	if (!c) {
		rc = http_fail(r, ERR_NOT_FOUND,
			       "missing or invalid auth collection context");
		goto out;
	}
	if (r->auth.kind == CALLER_GUEST ||
	    strcmp(r->auth.collection_id, c->id) != 0) {
		rc = http_fail(r, ERR_UNAUTHORIZED,
			       "The request requires valid record authorization token.");
		goto out;
	}
	rc = store_get(r->srv->store, c->name, r->auth.id, &rec, &e);
	if (rc) {
		if (rc == ERR_NOT_FOUND)
			err_set(&e, ERR_UNAUTHORIZED,
				"the authenticated record no longer exists");
		rc = http_reply_error(r, &e);
		goto out;
	}
	rc = reply_token(r, c, &rec);
out:
	record_release(&rec);
	return rc;
}

/* ---- password preparation -------------------------------------------- */

int api_auth_prepare_password(struct server *srv, const struct collection *c,
			      json_t *data, struct err *e)
{
	char hash[AUTH_HASH_MAX], tk[AUTH_TOKEN_KEY_LEN + 1];
	json_t *pw, *confirm;
	int rc;

	if (!c->auth || !json_is_object(data))
		return 0;
	pw = json_object_get(data, "password");             /* borrowed */
	confirm = json_object_get(data, "passwordConfirm"); /* borrowed */
	if (!pw) {
		json_object_del(data, "passwordConfirm");
		return 0;
	}
	if (!json_is_string(pw))
		return err_set_field(e, ERR_INVALID, "password",
				     "password must be a string");
	if (confirm && (!json_is_string(confirm) ||
			strcmp(json_string_value(confirm),
			       json_string_value(pw)) != 0))
		return err_set_field(e, ERR_INVALID, "passwordConfirm",
				     "values don't match");
	rc = auth_password_check(json_string_value(pw), e);
	if (!rc)
		rc = auth_password_hash(json_string_value(pw),
					srv->opts->bcrypt_cost, hash,
					sizeof(hash), e);
	if (!rc)
		rc = auth_token_key_new(tk, e);
	if (rc)
		return rc;
	/* json_string() copies; set_new steals the new strings. */
	if (json_object_set_new(data, "password", json_string(hash)) ||
	    json_object_set_new(data, "tokenKey", json_string(tk)))
		return err_set(e, ERR_NOMEM, "out of memory");
	json_object_del(data, "passwordConfirm");
	return 0;
}

/* ---- server-side creation and the superuser gate ----------------------- */

int api_auth_create(struct store *s, const char *collection, json_t *data,
		    struct record *out, struct err *e)
{
	char tk[AUTH_TOKEN_KEY_LEN + 1];
	struct store_txn *t = NULL;
	struct store_put p;
	int rc;

	rc = auth_token_key_new(tk, e);
	if (rc)
		return rc;
	/* json_string() copies; set_new steals the new string. */
	if (json_object_set_new(data, "tokenKey", json_string(tk)))
		return err_set(e, ERR_NOMEM, "out of memory");
	memset(&p, 0, sizeof(p));
	p.collection = collection;
	p.data = data;   /* borrowed by the store */
	p.mode = STORE_CREATE;
	rc = store_begin(s, &t, e);
	if (!rc)
		rc = store_txn_put(t, &p, out, NULL, e);
	if (!rc) {
		rc = store_commit(t, e);
		t = NULL;
	}
	store_abort(t);
	return rc;
}

int api_auth_keep_cli_account(struct store_txn *t,
			      const struct collection *c, const char *id,
			      json_t *body, struct err *e)
{
	struct record rec;
	const char *email;
	int rc;

	if (strcmp(c->name, "_superusers"))
		return 0;
	if (body && !json_object_get(body, "email") &&
	    !json_object_get(body, "password") &&
	    !json_object_get(body, "tokenKey"))
		return 0;
	record_init(&rec);
	rc = store_txn_get(t, c->name, id, &rec, e);
	if (rc == ERR_NOT_FOUND) {
		err_clear(e);
		return 0;
	}
	if (rc)
		return rc;
	email = json_string_value(json_object_get(rec.data, "email"));
	if (email && !strcasecmp(email, API_AUTH_CLI_EMAIL))
		rc = err_set(e, ERR_INVALID,
			     "superuser '%s' is the local CLI's own credential (its token is in the data directory's cli.token): %s would break every later CLI command while the server runs; stop the server first (it is made again at the next start)",
			     API_AUTH_CLI_EMAIL, body ?
			     "a new email, password or tokenKey" : "deleting it");
	record_release(&rec);
	return rc;
}

bool api_auth_refuse_unless_superuser(struct http_req *r)
{
	if (r->auth.kind == CALLER_GUEST)
		http_fail(r, ERR_UNAUTHORIZED,
			  "The request requires valid superuser authorization token.");
	else if (r->auth.kind != CALLER_SUPERUSER)
		http_fail(r, ERR_FORBIDDEN,
			  "Only superusers can perform this action.");
	else
		return false;
	return true;
}
