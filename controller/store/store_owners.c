/*
 * store_owners.c - field ownership in the SQLite store (see store.h,
 * "field ownership"): which manager last set each top-level field of a
 * record, kept as one JSON object per record in table field_owners
 * (schema/migrations/0002_owners.sql), written in the record's own
 * transaction. Apply manages its own entries (apply.c); every other writer
 * gets its changed fields noted by store_txn_put() through owners_note().
 */
#include "store_int.h"

/* Parse the owners text of one row; corrupt text is an error naming the
 * record, so that nothing is written on top of it. */
static int parse_owners(const char *txt, const char *coll, const char *id,
			json_t **out, struct err *e)
{
	json_error_t je;
	json_t *o = json_loads(txt, JSON_REJECT_DUPLICATES, &je);
	const char *k;
	json_t *v;

	if (!json_is_object(o))
		goto corrupt;
	json_object_foreach(o, k, v)
		if (!json_is_string(v))
			goto corrupt;
	*out = o;
	return 0;
corrupt:
	json_decref(o);
	return err_set(e, ERR_DB,
		       "field ownership of %s record '%s' is corrupt (not an object of strings)",
		       coll, id);
}

/* The owners of one record through statement st (bound and stepped
 * here); {} when it has none. */
static int read_owners(sqlite3 *db, sqlite3_stmt *st, const char *coll,
		       const char *id, json_t **out, struct err *e)
{
	int rc = 0, r;

	*out = NULL;
	if (bind_text(st, 1, coll) || bind_text(st, 2, id)) {
		rc = db_err(e, db, "cannot read field ownership");
		goto out;
	}
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		const char *txt = (const char *)sqlite3_column_text(st, 0);

		rc = parse_owners(txt ? txt : "", coll, id, out, e);
	} else if (r == SQLITE_DONE) {
		*out = json_object();
		if (!*out)
			rc = nomem(e);
	} else {
		rc = db_err(e, db, "cannot read field ownership");
	}
out:
	done(st);
	return rc;
}

int store_txn_owners_get(struct store_txn *t, const char *collection,
			 const char *id, json_t **owners, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	*owners = NULL;
	if (!t || !collection || !id)
		return err_set(e, ERR_INTERNAL, "store_txn_owners_get: bad call");
	rc = wstmt(t->s, W_OWN_GET, &st, e);
	if (rc)
		return rc;
	return read_owners(t->s->wdb, st, collection, id, owners, e);
}

int store_txn_owners_find(struct store_txn *t, const char *collection,
			  const char *name, json_t **owners, struct err *e)
{
	char id[ID_LEN + 1];
	int rc;

	*owners = NULL;
	if (!t || !collection || !name)
		return err_set(e, ERR_INTERNAL, "store_txn_owners_find: bad call");
	/* Two cached lookups: a join binding the collection would be
	 * prepared again at every step (the records' partial indexes). */
	rc = name_owner(t, collection, name, id, e);
	if (rc)
		return rc;
	if (!id[0]) {
		*owners = json_object();
		return *owners ? 0 : nomem(e);
	}
	return store_txn_owners_get(t, collection, id, owners, e);
}

int store_txn_owners_list(struct store_txn *t, const char *collection,
			  json_t **by_name, struct err *e)
{
	sqlite3_stmt *st = NULL;
	json_t *all = NULL, *seen = NULL, *o;
	int rc = 0, r;

	*by_name = NULL;
	if (!t || !collection)
		return err_set(e, ERR_INTERNAL, "store_txn_owners_list: bad call");
	/* Prepared per call: run once per collection of a large apply. */
	if (sqlite3_prepare_v2(t->s->wdb,
			       "SELECT r.name, r.id, o.owners FROM field_owners o "
			       "JOIN records r ON r.collection = o.collection "
			       "AND r.id = o.id WHERE o.collection = ?1",
			       -1, &st, NULL) != SQLITE_OK ||
	    bind_text(st, 1, collection)) {
		rc = db_err(e, t->s->wdb, "cannot read field ownership");
		goto out;
	}
	all = json_object();
	seen = json_object();
	if (!all || !seen) {
		rc = nomem(e);
		goto out;
	}
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *id = (const char *)sqlite3_column_text(st, 1);
		const char *txt = (const char *)sqlite3_column_text(st, 2);

		/* Most records share a few ownership texts: parse each
		 * once, and share the object (the caller must not modify
		 * it). */
		o = json_incref(json_object_get(seen, txt ? txt : ""));
		if (!o) {
			rc = parse_owners(txt ? txt : "", collection,
					  id ? id : "", &o, e);
			if (rc)
				goto out;
			if (json_object_set(seen, txt ? txt : "", o)) {
				json_decref(o);
				rc = nomem(e);
				goto out;
			}
		}
		if (json_object_set_new(all, name ? name : "", o)) {
			rc = nomem(e);
			goto out;
		}
	}
	if (r != SQLITE_DONE)
		rc = db_err(e, t->s->wdb, "cannot read field ownership");
out:
	sqlite3_finalize(st);
	json_decref(seen);
	if (rc)
		json_decref(all);
	else
		*by_name = all;
	return rc;
}

int owners_check(const json_t *owners, struct err *e)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)owners, k, v)
		if (!json_is_string(v) || !json_string_length(v))
			return err_set_field(e, ERR_INVALID, k,
					     "owner of field '%s' must be a non-empty string",
					     k);
	return 0;
}

int store_txn_owners_put(struct store_txn *t, const char *collection,
			 const char *id, const json_t *owners, struct err *e)
{
	struct err le = ERR_INIT;
	sqlite3_stmt *st;
	int rc, b = 0;

	if (!t || !collection || !id || !json_is_object(owners))
		return err_set(e, ERR_INTERNAL, "store_txn_owners_put: bad call");
	rc = owners_check(owners, e);
	if (rc)
		return rc;
	rc = wstmt(t->s, json_object_size(owners) ? W_OWN_PUT : W_OWN_DEL,
		   &st, e);
	if (rc)
		return rc;
	b |= bind_text(st, 1, collection);
	b |= bind_text(st, 2, id);
	if (json_object_size(owners))
		b |= bind_json(st, 3, owners);
	if (b) {
		rc = db_err(&le, t->s->wdb, "cannot write field ownership");
		done(st);
		return poison(t, rc, &le, e);
	}
	rc = run(t->s->wdb, st, "cannot write field ownership", &le);
	return rc ? poison(t, rc, &le, e) : 0;
}

int store_owners_get(struct store *s, const char *collection, const char *id,
		     json_t **owners, struct err *e)
{
	struct rconn *conn;
	sqlite3_stmt *st = NULL;
	int rc;

	*owners = NULL;
	rc = rconn_get(s, &conn, e);
	if (rc)
		return rc;
	/* Not cached: only `get --show-managed` reads through here. */
	if (sqlite3_prepare_v2(conn->db, wsql[W_OWN_GET], -1, &st, NULL) !=
	    SQLITE_OK)
		rc = db_err(e, conn->db, "cannot read field ownership");
	else
		rc = read_owners(conn->db, st, collection, id, owners, e);
	sqlite3_finalize(st);
	rconn_put(s, conn);
	return rc;
}

/* A value a create leaves as the schema's zero: not an owned field. */
static bool zero_value(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		return !json_string_length(v);
	case JSON_INTEGER:
		return !json_integer_value(v);
	case JSON_REAL:
		return json_real_value(v) == 0.0;
	case JSON_OBJECT:
		return !json_object_size(v);
	case JSON_ARRAY:
		return !json_array_size(v);
	case JSON_TRUE:
		return false;
	default:
		return true;
	}
}

/* The manager name of t's actor: "server", "guest", "superuser:ID" or
 * "user:ID" (an id that is not a superuser's is a user's). */
static int actor_manager(struct store_txn *t, char *out, size_t size,
			 struct err *e)
{
	int rc;

	if (!t->actor.id) {
		snprintf(out, size, "server");
		return 0;
	}
	if (!*t->actor.id) {
		snprintf(out, size, "guest");
		return 0;
	}
	rc = schema_find(t->s->schema, "_superusers") ?
	     txn_exists(t, "_superusers", t->actor.id, e) : 0;
	if (rc < 0)
		return rc;
	snprintf(out, size, "%s:%s", rc ? "superuser" : "user", t->actor.id);
	return 0;
}

int owners_note(struct store_txn *t, const struct collection *c,
		const struct record *before, const struct record *after,
		struct err *e)
{
	char mgr[128];
	json_t *owners = NULL;
	bool changed = false;
	size_t i;
	int rc;

	if (t->actor.declares)
		return 0;       /* apply records its own (apply.c) */
	rc = actor_manager(t, mgr, sizeof(mgr), e);
	if (rc)
		return rc;
	if (before) {
		rc = store_txn_owners_get(t, c->name, after->id, &owners, e);
		if (rc)
			return rc;
	} else {
		owners = json_object();
		if (!owners)
			return nomem(e);
	}
	for (i = 0; i < c->nfields; i++) {
		const char *f = c->fields[i].name;
		json_t *nv = json_object_get(after->data, f);
		json_t *cur = json_object_get(owners, f);

		if (before ? json_equal(nv, json_object_get(before->data, f)) :
			     !nv || zero_value(nv))
			continue;
		if (cur && !strcmp(json_string_value(cur), mgr))
			continue;
		if (json_object_set_new(owners, f, json_string(mgr))) {
			json_decref(owners);
			return nomem(e);
		}
		changed = true;
	}
	rc = changed ? store_txn_owners_put(t, c->name, after->id, owners, e) : 0;
	json_decref(owners);
	return rc;
}
