/*
 * seed.c - the superuser, admin and agent accounts from the environment
 * (see seed.h), one table row each. They are written as the server itself
 * (no actor), which may set the system fields role and verified; the
 * password is hashed before the writer lock is taken, as every bcrypt in
 * the server is.
 */
#include "seed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_auth.h"
#include "auth.h"
#include "log.h"

struct seed_account {
	const char *collection;
	const char *what;                             /* in the log */
	const char *role;                             /* NULL: no role */
	const char *email_var, *password_var;        /* ours */
	const char *old_email_var, *old_password_var; /* the original's */
};

static const struct seed_account seed_table[] = {
	{ "_superusers", "superuser", NULL,
	  "POCKETCTL_ADMIN_EMAIL", "POCKETCTL_ADMIN_PASSWORD",
	  "POCKETBASE_SUPERUSER_EMAIL", "POCKETBASE_SUPERUSER_PASSWORD" },
	{ "users", "users", "admin",
	  "POCKETCTL_USER_EMAIL", "POCKETCTL_USER_PASSWORD",
	  "POCKETBASE_ADMIN_EMAIL", "POCKETBASE_ADMIN_PASSWORD" },
	{ "users", "users", "agent",
	  "POCKETCTL_AGENT_EMAIL", "POCKETCTL_AGENT_PASSWORD",
	  "AGENT_EMAIL", "AGENT_PASSWORD" },
};

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* Insert {email, password hash, tokenKey} and, with a role, {verified,
 * role} as the server. */
static int create_account(struct server *srv, const struct seed_account *a,
			  const char *email, const char *hash, struct err *e)
{
	/* json_pack copies every string. */
	json_t *data = a->role ?
		json_pack("{s:s, s:s, s:b, s:s}", "email", email, "password",
			  hash, "verified", 1, "role", a->role) :
		json_pack("{s:s, s:s}", "email", email, "password", hash);
	int rc;

	if (!data)
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = api_auth_create(srv->store, a->collection, data, NULL, e);
	json_decref(data);
	return rc;
}

/* Hash pw for the store, after the password policy; errors name pv. */
static int hash_password(struct server *srv, const char *pw, const char *pv,
			 char hash[AUTH_HASH_MAX], struct err *e)
{
	int rc = auth_password_check(pw, e);

	if (!rc)
		rc = auth_password_hash(pw, srv->opts->bcrypt_cost, hash,
					AUTH_HASH_MAX, e);
	if (rc)
		err_prefix(e, "%s: ", pv);
	return rc;
}

/* Replace the password of stored superuser rec by pw, with a fresh
 * tokenKey (its earlier tokens stop working). */
static int apply_password(struct server *srv, const struct seed_account *a,
			  const struct record *rec, const char *email,
			  const char *pw, const char *pv, struct err *e)
{
	char hash[AUTH_HASH_MAX], tk[AUTH_TOKEN_KEY_LEN + 1];
	struct store_txn *t = NULL;
	struct store_put p;
	json_t *data = NULL;
	int rc;

	rc = hash_password(srv, pw, pv, hash, e);
	if (!rc)
		rc = auth_token_key_new(tk, e);
	if (rc)
		goto out;
	/* json_pack copies every string. */
	data = json_pack("{s:s, s:s}", "password", hash, "tokenKey", tk);
	if (!data) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	memset(&p, 0, sizeof(p));
	p.collection = a->collection;
	p.id = rec->id;
	p.data = data;   /* borrowed by the store */
	p.partial = true;
	p.mode = STORE_UPDATE;
	rc = store_begin(srv->store, &t, e);
	if (!rc)
		rc = store_txn_put(t, &p, NULL, NULL, e);
	if (!rc) {
		rc = store_commit(t, e);
		t = NULL;
	}
	if (rc)
		err_prefix(e, "%s: cannot change the password of %s '%s': ",
			   pv, a->what, email);
	else
		log_msg(LOG_WARN, "seed", "%s '%s' already exists: its password "
			"is now the one in %s (its earlier tokens are signed "
			"out)", a->what, email, pv);
out:
	store_abort(t);
	json_decref(data);
	explicit_bzero(hash, sizeof(hash));
	return rc;
}

/* An account that exists. A superuser takes the variable's password
 * (apply_password()); a users account is never changed, but a difference
 * is said out loud, so a changed variable is not taken for a changed
 * password. */
static int check_existing(struct server *srv, const struct seed_account *a,
			  const struct record *rec, const char *email,
			  const char *pw, const char *email_var,
			  const char *pw_var, struct err *e)
{
	const char *hash = json_string_value(json_object_get(rec->data,
							     "password"));
	const char *role = json_string_value(json_object_get(rec->data,
							     "role"));
	bool same = hash && auth_password_verify(pw, hash);

	if (!same && !a->role)
		return apply_password(srv, a, rec, email, pw, pw_var, e);
	if (!same)
		log_msg(LOG_WARN, "seed",
			"WARNING: %s '%s' (%s) already exists "
			"and its password is not the one in %s: the stored "
			"password stays and %s is ignored (change it with "
			"pocketctl user passwd, or delete the account to seed "
			"it again)",
			a->what, email, email_var, pw_var, pw_var);
	if (a->role && (!role || strcmp(role, a->role)))
		log_msg(LOG_WARN, "seed",
			"WARNING: %s '%s' (%s) already exists "
			"with role '%s', not '%s': its role is not changed",
			a->what, email, email_var, role ? role : "", a->role);
	return 0;
}

static int seed_one(struct server *srv, const struct seed_account *a,
		    struct err *e)
{
	const struct collection *c = schema_find(srv->schema, a->collection);
	const char *ev = a->email_var, *pv = a->password_var;
	const char *email, *pw;
	char hash[AUTH_HASH_MAX];
	struct record rec;
	int rc;

	if (!c)
		return err_set(e, ERR_INTERNAL, "the schema has no %s",
			       a->collection);

	if (!env(ev) && !env(pv)) {
		ev = a->old_email_var;
		pv = a->old_password_var;
	}
	email = env(ev);
	pw = env(pv);
	if (!email && !pw)
		return 0;
	if (!email || !pw)
		return err_set(e, ERR_INVALID, "set both %s and %s, or neither",
			       ev, pv);
	rc = api_auth_find_by_email(srv->store, c, email, &rec, e);
	if (!rc)
		rc = check_existing(srv, a, &rec, email, pw, ev, pv, e);
	else if (rc == ERR_NOT_FOUND)
		rc = 1;
	record_release(&rec);
	if (rc != 1)
		return rc;   /* 0: already there; or an error */
	err_clear(e);
	rc = hash_password(srv, pw, pv, hash, e);
	if (rc)
		return rc;
	rc = create_account(srv, a, email, hash, e);
	if (rc)
		return err_prefix(e, "%s: cannot create %s '%s': ", ev, a->what,
				  email);
	if (a->role)
		log_msg(LOG_INFO, "seed", "created %s '%s' (role %s) from "
			"%s", a->what, email, a->role, ev);
	else
		log_msg(LOG_INFO, "seed", "created %s '%s' from %s",
			a->what, email, ev);
	return 0;
}

int seed_accounts(struct server *srv, struct err *e)
{
	size_t i;
	int rc = 0;

	for (i = 0; !rc && i < sizeof(seed_table) / sizeof(seed_table[0]); i++)
		rc = seed_one(srv, &seed_table[i], e);
	return rc;
}
