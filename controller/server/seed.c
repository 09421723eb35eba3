/*
 * seed.c - the admin and agent accounts from the environment (see
 * seed.h). They are written as the server itself (no actor), which may set
 * the system fields role and verified; the password is hashed before the
 * writer lock is taken, as every bcrypt in the server is.
 */
#include "seed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_auth.h"
#include "auth.h"

#define USERS "users"

struct seed_account {
	const char *role;
	const char *email_var, *password_var;        /* ours */
	const char *old_email_var, *old_password_var; /* the original's */
};

static const struct seed_account seed_table[] = {
	{ "admin", "POCKETCTL_USER_EMAIL", "POCKETCTL_USER_PASSWORD",
	  "POCKETBASE_ADMIN_EMAIL", "POCKETBASE_ADMIN_PASSWORD" },
	{ "agent", "POCKETCTL_AGENT_EMAIL", "POCKETCTL_AGENT_PASSWORD",
	  "AGENT_EMAIL", "AGENT_PASSWORD" },
};

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* Insert {email, password hash, tokenKey, verified, role} as the server. */
static int create_user(struct server *srv, const char *email,
		       const char *hash, const char *role, struct err *e)
{
	/* json_pack copies every string. */
	json_t *data = json_pack("{s:s, s:s, s:b, s:s}", "email", email,
				 "password", hash, "verified", 1, "role", role);
	int rc;

	if (!data)
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = api_auth_create(srv->store, USERS, data, NULL, e);
	json_decref(data);
	return rc;
}

/* An account that exists: never changed, but a difference is said out
 * loud, so a changed variable is not taken for a changed password. */
static void check_existing(const struct seed_account *a,
			   const struct record *rec, const char *email,
			   const char *pw, const char *email_var,
			   const char *pw_var)
{
	const char *hash = json_string_value(json_object_get(rec->data,
							     "password"));
	const char *role = json_string_value(json_object_get(rec->data,
							     "role"));

	if (!hash || !auth_password_verify(pw, hash))
		fprintf(stderr,
			"pocketctl: WARNING: users '%s' (%s) already exists "
			"and its password is not the one in %s: the stored "
			"password stays and %s is ignored (change it through "
			"the API, or delete the user to seed it again)\n",
			email, email_var, pw_var, pw_var);
	if (!role || strcmp(role, a->role))
		fprintf(stderr,
			"pocketctl: WARNING: users '%s' (%s) already exists "
			"with role '%s', not '%s': its role is not changed\n",
			email, email_var, role ? role : "", a->role);
}

static int seed_one(struct server *srv, const struct collection *c,
		    const struct seed_account *a, struct err *e)
{
	const char *ev = a->email_var, *pv = a->password_var;
	const char *email, *pw;
	char hash[AUTH_HASH_MAX];
	struct record rec;
	int rc;

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
		check_existing(a, &rec, email, pw, ev, pv);
	record_release(&rec);
	if (rc != ERR_NOT_FOUND)
		return rc;   /* 0: already there; or a store error */
	err_clear(e);
	rc = auth_password_check(pw, e);
	if (!rc)
		rc = auth_password_hash(pw, srv->opts->bcrypt_cost, hash,
					sizeof(hash), e);
	if (rc)
		return err_prefix(e, "%s: ", pv);
	rc = create_user(srv, email, hash, a->role, e);
	if (rc)
		return err_prefix(e, "%s: cannot create users '%s': ", ev,
				  email);
	fprintf(stderr, "pocketctl: created users '%s' (role %s) from %s\n",
		email, a->role, ev);
	return 0;
}

int seed_accounts(struct server *srv, struct err *e)
{
	const struct collection *c = schema_find(srv->schema, USERS);
	size_t i;
	int rc = 0;

	if (!c)
		return err_set(e, ERR_INTERNAL, "the schema has no users");
	for (i = 0; !rc && i < sizeof(seed_table) / sizeof(seed_table[0]); i++)
		rc = seed_one(srv, c, &seed_table[i], e);
	return rc;
}
