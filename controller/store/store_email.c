/*
 * store_email.c - records of an auth collection (users, superusers) by
 * their email, for the places that name a record by name but where a
 * person is known by email: `pocketctl get User alice@example.test` and a
 * manifest's relation to a user (apply.c). Emails compare ignoring ASCII
 * case, as PocketBase's auth-with-password does.
 */
#include <string.h>

#include "query.h"
#include "schema.h"
#include "store.h"
#include "store_int.h"

struct email_find {
	char id[ID_LEN + 1];     /* "" until found */
};

static int take_first(const struct record *r, void *arg)
{
	struct email_find *f = arg;

	memcpy(f->id, r->id, sizeof(f->id));
	return 1;   /* stop: the record is read again by id below */
}

/* The query "email = X" (case-insensitive), or NULL when out of memory. */
static struct query_pred *email_is(const char *email)
{
	struct query_val lhs, rhs;

	memset(&lhs, 0, sizeof(lhs));
	memset(&rhs, 0, sizeof(rhs));
	lhs.kind = QUERY_FIELD;
	lhs.name = "email";
	rhs.kind = QUERY_LITERAL;
	rhs.literal = json_string(email);
	return query_cmp(QUERY_EQ_NOCASE, lhs, rhs);
}

static int by_email(struct store *s, struct store_txn *t,
		    const char *collection, const char *email,
		    struct record *out, struct err *e)
{
	const struct collection *c = schema_find(store_schema(s), collection);
	struct email_find f = { "" };
	struct store_query q = { NULL, NULL, 1, 0 };
	int rc;

	record_init(out);
	if (!c || !c->auth || !collection_field(c, "email") || !strchr(email, '@'))
		return err_set(e, ERR_NOT_FOUND, "no %s record with email '%s'",
			       collection, email);
	q.where = email_is(email);
	if (!q.where)
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = t ? store_txn_list(t, collection, &q, take_first, &f, e) :
	     store_list(s, collection, &q, take_first, &f, e);
	query_pred_free((struct query_pred *)q.where);
	if (rc < 0)
		return rc;
	if (!f.id[0])
		return err_set(e, ERR_NOT_FOUND, "no %s record with email '%s'",
			       collection, email);
	return t ? store_txn_get(t, collection, f.id, out, e) :
	     store_get(s, collection, f.id, out, e);
}

int store_get_named(struct store *s, struct store_txn *t,
		    const char *collection, const char *name,
		    struct record *out, struct err *e)
{
	const struct collection *c;
	int rc;

	rc = t ? store_txn_get_by_name(t, collection, name, out, e) :
	     store_get_by_name(s, collection, name, out, e);
	c = schema_find(store_schema(t ? t->s : s), collection);
	if (rc != ERR_NOT_FOUND || !c || !c->auth || !name || !strchr(name, '@'))
		return rc;
	record_release(out);
	return by_email(t ? t->s : s, t, collection, name, out, e);
}

int store_txn_get_by_email(struct store_txn *t, const char *collection,
			   const char *email, struct record *out,
			   struct err *e)
{
	return by_email(t->s, t, collection, email, out, e);
}
