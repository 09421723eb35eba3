/*
 * store_write.c - the writes of a transaction in the SQLite store (see
 * store.h, store_int.h): put (validation, names, unique indexes, relations,
 * the change-log row) and the write hooks around it, delete with its
 * cascade plan, status, and record sets.
 */
#include "store_int.h"

/* ---- put -------------------------------------------------------------- */

static int check_labels(const json_t *labels, struct err *e)
{
	const char *k;
	json_t *v;

	if (!json_is_object(labels))
		return err_set_field(e, ERR_INVALID, "labels",
				     "labels must be an object of strings");
	json_object_foreach((json_t *)labels, k, v) {
		if (!*k)
			return err_set_field(e, ERR_INVALID, "labels",
					     "label names must not be empty");
		if (!json_is_string(v))
			return err_set_field(e, ERR_INVALID, "labels",
					     "label '%s' must be a string", k);
	}
	return 0;
}

static int check_name(const struct collection *c, const char *name,
		      struct err *e)
{
	const char *field = c->name_field ? c->name_field : "name";
	const unsigned char *p;

	if (!name || !*name)
		return err_set_field(e, ERR_INVALID, field,
				     "record name must not be empty");
	if (strlen(name) > NAME_MAX_BYTES)
		return err_set_field(e, ERR_INVALID, field,
				     "record name '%.40s...' is longer than %d bytes",
				     name, NAME_MAX_BYTES);
	for (p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return err_set_field(e, ERR_INVALID, field,
					     "record name must not contain control characters");
	return 0;
}

/* Append one value of a unique index's tuple for a message. */
static void describe_value(struct buf *b, const json_t *v, const char *col)
{
	char *s;

	if (col || json_is_string(v)) {
		buf_putc(b, '\'');
		buf_puts(b, col ? col : json_string_value(v));
		buf_putc(b, '\'');
		return;
	}
	s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	buf_puts(b, s ? s : "null");
	free(s);
}

static const char *column_value(const struct record *r, const char *f)
{
	if (!strcmp(f, "name"))
		return r->name;
	if (!strcmp(f, "id"))
		return r->id;
	if (!strcmp(f, "created"))
		return r->created;
	return r->updated;
}

/*
 * Find which unique index of c the write of r violated (r not yet
 * written); 1 and a message in e when one is found, 0 when none, < 0 on
 * error.
 */
static int unique_index_conflict(struct store_txn *t,
				 const struct collection *c,
				 const struct index *ix,
				 const struct record *r, struct err *e)
{
	sqlite3_stmt *st = NULL;
	struct buf sql = BUF_INIT, vals = BUF_INIT;
	char other[ID_LEN + 1] = "", fields[256];
	size_t k;
	int rc = 0, b = 0, s;

	if (buf_coll(&sql, "SELECT id FROM records WHERE collection = ", c))
		goto nomem;
	for (k = 0; k < ix->nfields; k++) {
		if (buf_puts(&sql, " AND "))
			goto nomem;
		rc = index_expr(&sql, c, ix->fields[k], e);
		if (rc)
			goto out;
		if (buf_printf(&sql, " = ?%zu", k + 1))
			goto nomem;
	}
	if (buf_printf(&sql, " AND id <> ?%zu LIMIT 1", ix->nfields + 1))
		goto nomem;
	if (sqlite3_prepare_v2(t->s->wdb, sql.ptr, -1, &st, NULL) !=
	    SQLITE_OK) {
		rc = db_err(e, t->s->wdb, "cannot check unique index");
		goto out;
	}
	for (k = 0; k < ix->nfields; k++) {
		const char *f = ix->fields[k];

		if (collection_field(c, f))
			b |= bind_value(st, (int)k + 1,
					json_object_get(r->data, f));
		else
			b |= bind_text(st, (int)k + 1, column_value(r, f));
	}
	b |= bind_text(st, (int)ix->nfields + 1, r->id);
	if (b) {
		rc = db_err(e, t->s->wdb, "cannot check unique index");
		goto out;
	}
	s = sqlite3_step(st);
	if (s == SQLITE_DONE)
		goto out;
	if (s != SQLITE_ROW) {
		rc = db_err(e, t->s->wdb, "cannot check unique index");
		goto out;
	}
	copy_col(other, sizeof(other), st, 0);
	if (ix->nfields > 1)
		buf_putc(&vals, '(');
	for (k = 0; k < ix->nfields; k++) {
		const char *f = ix->fields[k];

		if (k)
			buf_puts(&vals, ", ");
		describe_value(&vals, json_object_get(r->data, f),
			       collection_field(c, f) ? NULL :
							column_value(r, f));
	}
	if (ix->nfields > 1)
		buf_putc(&vals, ')');
	index_fields(fields, sizeof(fields), ix);
	err_set_field(e, ERR_CONFLICT, ix->fields[0],
		      "value %s is not unique for %s %s: record '%s' has it",
		      vals.ptr, c->name, fields, other);
	rc = 1;
	goto out;
nomem:
	rc = nomem(e);
out:
	sqlite3_finalize(st);
	buf_release(&sql);
	buf_release(&vals);
	return rc;
}

/* Explain a UNIQUE violation from writing r (sqlmsg: SQLite's words). */
static int unique_conflict(struct store_txn *t, const struct collection *c,
			   const struct record *r, const char *sqlmsg,
			   struct err *e)
{
	char other[ID_LEN + 1];
	size_t j;
	int rc;

	rc = name_owner(t, c->name, r->name, other, e);
	if (rc)
		return rc;
	if (other[0] && strcmp(other, r->id))
		return err_set_field(e, ERR_CONFLICT, "name",
				     "name '%s' is already used by %s record '%s'",
				     r->name, c->name, other);
	for (j = 0; j < c->nindexes; j++) {
		if (!c->indexes[j].unique)
			continue;
		rc = unique_index_conflict(t, c, &c->indexes[j], r, e);
		if (rc > 0)
			return ERR_CONFLICT;
		if (rc < 0)
			return rc;
	}
	return err_set(e, ERR_CONFLICT, "%s record '%s' conflicts with another: %s",
		       c->name, r->name, sqlmsg);
}

/* The compact text of r's data as the store keeps it (secret fields
 * sealed), made once for the record row and its change-log row; the
 * caller frees it. NULL with e set on error. */
static char *sealed_text(struct store *s, const struct record *r,
			 struct err *e)
{
	json_t *sealed = seal_data(s, r->collection, r->id, r->data, e);
	char *text;

	if (!sealed)
		return NULL;
	text = json_dumps(sealed, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(sealed);
	if (!text)
		nomem(e);
	return text;
}

/* Insert (create) or update the record row, its data being dtext
 * (sealed_text()). Nothing is written on error. */
static int write_record(struct store_txn *t, const struct collection *c,
			const struct record *r, bool create, const char *dtext,
			struct err *e)
{
	struct store *s = t->s;
	sqlite3_stmt *st;
	char sqlmsg[256];
	int rc, b = 0, step;

	rc = wstmt(s, create ? W_INSERT : W_UPDATE, &st, e);
	if (rc)
		return rc;
	b |= bind_text(st, 1, r->collection);
	b |= bind_text(st, 2, r->id);
	b |= bind_text(st, 3, r->name);
	b |= bind_text(st, 4, dtext);   /* lives until done(st) */
	b |= bind_json(st, 5, r->labels);
	if (create) {
		b |= bind_json(st, 6, r->status);
		b |= sqlite3_bind_int64(st, 7, r->generation);
		b |= sqlite3_bind_int64(st, 8, r->revision);
		b |= bind_text(st, 9, r->created);
		b |= bind_text(st, 10, r->updated);
	} else {
		b |= sqlite3_bind_int64(st, 6, r->generation);
		b |= sqlite3_bind_int64(st, 7, r->revision);
		b |= bind_text(st, 8, r->updated);
	}
	if (b) {
		rc = db_err(e, s->wdb, "cannot write record");
		done(st);
		return rc;
	}
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		done(st);
		return 0;
	}
	if ((step & 0xff) == SQLITE_CONSTRAINT) {
		snprintf(sqlmsg, sizeof(sqlmsg), "%s", sqlite3_errmsg(s->wdb));
		done(st);
		return unique_conflict(t, c, r, sqlmsg, e);
	}
	rc = db_err(e, s->wdb, "cannot write record");
	done(st);
	return rc;
}

/* True when s goes into a JSON string as it is, as ids, collection names
 * and times always do. */
static bool plain(const char *s)
{
	return text_plain(s, strlen(s));
}

/* Add v in decimal. -1 on no memory. */
static int add_int(struct buf *b, int64_t v)
{
	char digits[UTIL_INT_LEN];

	return buf_add(b, digits, util_format_int(v, digits));
}

/* Add ,"key":<v's compact text>; nothing when v is NULL, as
 * record_to_json()'s "s:O?" leaves it out. -1 on no memory. */
static int add_member(struct buf *b, const char *key, const json_t *v)
{
	if (!v)
		return 0;
	return buf_puts(b, ",\"") || buf_puts(b, key) || buf_puts(b, "\":") ||
	       text_add(b, v);
}

/*
 * The change-log text of r into out: record_to_json()'s members in its
 * order, the data being dtext (sealed_text()) as it is, so that neither
 * the data is dumped a second time nor an object built for the rest.
 * jansson writes every value that needs escaping (name, labels, status);
 * the rest is plain by construction, and checked.
 */
static int change_text(struct buf *out, const struct record *r,
		       const char *dtext, struct err *e)
{
	json_t *name = NULL;
	int b;

	if (!plain(r->collection) || !plain(r->id) || !plain(r->created) ||
	    !plain(r->updated))
		return err_set(e, ERR_DB, "record '%s' of %s is corrupt",
			       r->id, r->collection);
	if (r->name && !(name = json_string(r->name)))
		return nomem(e);
	/* plain appends: a printf here was a third of this function */
	b = buf_puts(out, "{\"collection\":\"") ||
	    buf_puts(out, r->collection) || buf_puts(out, "\",\"id\":\"") ||
	    buf_puts(out, r->id) || buf_putc(out, '"') ||
	    add_member(out, "name", name) ||
	    add_member(out, "labels", r->labels) ||
	    buf_puts(out, ",\"data\":") || buf_puts(out, dtext) ||
	    add_member(out, "status", r->status) ||
	    buf_puts(out, ",\"generation\":") ||
	    add_int(out, r->generation) || buf_puts(out, ",\"revision\":") ||
	    add_int(out, r->revision) || buf_puts(out, ",\"created\":\"") ||
	    buf_puts(out, r->created) || buf_puts(out, "\",\"updated\":\"") ||
	    buf_puts(out, r->updated) || buf_puts(out, "\"}");
	json_decref(name);
	return b ? nomem(e) : 0;
}

/* Append the change-log row of r's change (revision rev), naming t's
 * writer; action NULL: replace the record of row rev, which is r's
 * (store_txn_amend(); the row keeps its actor: the same change). dtext
 * is r's sealed_text() when the caller has it, else NULL. */
static int log_change(struct store_txn *t, int64_t rev, const struct record *r,
		      const char *action, const char *dtext, struct err *e)
{
	struct store *s = t->s;
	const struct collection *c;
	char now[TIME_LEN + 1];
	sqlite3_stmt *st;
	struct buf text;
	char *own = NULL, *tptr;
	size_t tlen;
	int rc, b = 0;

	buf_init(&text, SIZE_MAX / 2);  /* no cap of its own: the data's */

	rc = wstmt(s, action ? W_LOG : W_LOG_AMEND, &st, e);
	if (rc)
		return rc;
	if (!dtext) {
		own = sealed_text(s, r, e);
		if (!own)
			return e->code;
		dtext = own;
	}
	rc = change_text(&text, r, dtext, e);
	free(own);
	if (rc) {
		buf_release(&text);
		return rc;
	}
	c = schema_find(s->schema, r->collection);
	if (c && c->auth)    /* a rolled-back member only costs a re-read */
		s->batch.auth = true;
	util_now(now);
	b |= sqlite3_bind_int64(st, 1, rev);
	b |= bind_text(st, 2, r->collection);
	b |= bind_text(st, 3, r->id);
	if (action) {
		b |= bind_text(st, 4, action);
		b |= bind_text(st, 7, t->writer);
	}
	tptr = buf_detach(&text, &tlen);  /* SQLite frees it */
	b |= tptr ? sqlite3_bind_text(st, 5, tptr, (int)tlen, free) :
		    SQLITE_NOMEM;
	b |= bind_text(st, 6, now);
	if (b) {
		rc = db_err(e, s->wdb, "cannot append to the change log");
		done(st);
		return rc;
	}
	return run(s->wdb, st, "cannot append to the change log", e);
}

/* Every relation of data must point at an existing record. */
static int check_relations(struct store_txn *t, const struct collection *c,
			   const char *id, json_t *data, const json_t *old,
			   struct err *e)
{
	size_t i;
	int rc;

	for (i = 0; i < c->nfields; i++) {
		const struct field *f = &c->fields[i];
		json_t *v = json_object_get(data, f->name);
		const char *target;

		if (f->type != FT_RELATION || !json_is_string(v) ||
		    !json_string_length(v))
			continue;
		if (old && json_equal(v, json_object_get(old, f->name)))
			continue;       /* checked when it was written */
		target = json_string_value(v);
		if (!strcmp(f->target, c->name) && !strcmp(target, id))
			continue;       /* points at itself */
		rc = txn_exists(t, f->target, target, e);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return err_set_field(e, ERR_INVALID, f->name,
					     "no %s record with id '%s'",
					     f->target, target);
	}
	return 0;
}

/* A copy of r into *out sharing r's JSON (incref'd). */
static int record_dup(const struct record *r, struct record *out,
		      struct err *e)
{
	*out = *r;
	out->name = strdup(r->name ? r->name : "");
	if (!out->name) {
		record_init(out);
		return nomem(e);
	}
	json_incref(out->data);
	json_incref(out->labels);
	json_incref(out->status);
	return 0;
}

/* store_txn_put() without the write hook; before (nullable) receives a
 * copy of the stored record when there is one. */
static int put_one(struct store_txn *t, const struct store_put *p,
		   struct record *out, enum store_action *act,
		   struct record *before, struct err *e)
{
	const struct collection *c = NULL;
	struct record cur, nr;
	struct err le = ERR_INIT;
	json_t *in = NULL, *norm = NULL;
	const char *key = NULL, *name = NULL;
	char other[ID_LEN + 1], *dtext = NULL;
	bool have = false, by_id, amend;
	int rc;

	record_init(&cur);
	record_init(&nr);
	if (out)
		record_init(out);
	if (act)
		*act = STORE_UNCHANGED;
	if (!t || !p)
		return err_set(e, ERR_INTERNAL, "store_txn_put: no transaction");
	rc = find_coll(t->s, p->collection, &c, e);
	if (rc)
		return rc;
	if (p->data && !json_is_object(p->data))
		return err_set_field(e, ERR_INVALID, "data",
				     "record data must be a JSON object");
	if (p->labels) {
		rc = check_labels(p->labels, e);
		if (rc)
			return rc;
	}

	/* Find the record the put is about: by id, else by name. */
	by_id = p->id && *p->id;
	if (by_id) {
		if (!util_valid_id(p->id))
			return err_set_field(e, ERR_INVALID, "id",
					     "invalid record id '%s': want %d characters of [a-z0-9]",
					     p->id, ID_LEN);
		key = p->id;
	} else if (p->name && *p->name) {
		key = p->name;
	} else if (c->name_field) {
		key = json_string_value(json_object_get(p->data,
							c->name_field));
	}
	if (key && *key) {
		rc = txn_get(t, c->name, key, !by_id, &cur, e);
		if (rc && rc != ERR_NOT_FOUND)
			goto out;
		have = rc == 0;
		rc = 0;
	}
	if (have && before) {
		rc = record_dup(&cur, before, e);
		if (rc)
			goto out;
	}
	if (p->mode == STORE_CREATE && have) {
		rc = err_set_field(e, ERR_CONFLICT, by_id ? "id" : "name",
				   "%s record '%s' already exists", c->name,
				   key);
		goto out;
	}
	if (p->mode == STORE_UPDATE && !have) {
		rc = key && *key ? err_set(e, ERR_NOT_FOUND, by_id ?
					   "no %s record with id '%s'" :
					   "no %s record named '%s'",
					   c->name, key) :
				   err_set(e, ERR_NOT_FOUND,
					   "no %s record given to update",
					   c->name);
		goto out;
	}
	if (p->if_revision > 0 && (!have || cur.revision != p->if_revision)) {
		rc = have ? err_set(e, ERR_PRECONDITION,
				    "record '%s' is at revision %lld, not %lld",
				    cur.name, (long long)cur.revision,
				    (long long)p->if_revision) :
			    err_set(e, ERR_PRECONDITION,
				    "record '%s' does not exist, so it is not at revision %lld",
				    key ? key : "", (long long)p->if_revision);
		goto out;
	}

	/* Identity of the result. */
	if (have)
		memcpy(nr.id, cur.id, sizeof(nr.id));
	else if (by_id)
		snprintf(nr.id, sizeof(nr.id), "%s", p->id);
	else
		util_new_record_id(nr.id);
	snprintf(nr.collection, sizeof(nr.collection), "%s", c->name);

	/* Normalise; a given name fills a name field the data leaves out. */
	in = p->data ? json_incref(p->data) : json_object();
	if (!in)
		goto nomem;
	if (c->name_field && p->name && *p->name &&
	    !json_object_get(in, c->name_field)) {
		json_t *copy = json_copy(in);

		json_decref(in);
		in = copy;
		if (!in || json_object_set_new(in, c->name_field,
					       json_string(p->name)))
			goto nomem;
	}
	rc = schema_normalize(c, in, p->partial && have ? cur.data : NULL,
			      &norm, e);
	if (rc)
		goto out;
	if (c->name_field) {
		name = json_string_value(json_object_get(norm, c->name_field));
		if (name && p->name && *p->name && strcmp(name, p->name)) {
			rc = err_set_field(e, ERR_INVALID, c->name_field,
					   "value '%s' differs from the record name '%s'",
					   name, p->name);
			goto out;
		}
	} else {
		name = p->name && *p->name ? p->name : have ? cur.name : nr.id;
	}
	rc = check_name(c, name, e);
	if (rc)
		goto out;

	nr.name = strdup(name);
	nr.data = norm;
	norm = NULL;
	nr.labels = p->labels ? json_deep_copy(p->labels) :
		    have ? json_incref(cur.labels) : json_object();
	nr.status = have ? json_incref(cur.status) : json_object();
	if (!nr.name || !nr.labels || !nr.status)
		goto nomem;

	if (have && !strcmp(nr.name, cur.name) &&
	    json_equal(nr.data, cur.data) && json_equal(nr.labels, cur.labels)) {
		if (out) {
			*out = cur;
			record_init(&cur);
		}
		goto out;       /* unchanged: nothing written */
	}
	/* A name the lookup above found no record by is free: no second
	 * lookup of it (one less per record of a first apply). */
	if ((!have || strcmp(nr.name, cur.name)) &&
	    !(!have && !by_id && key && !strcmp(nr.name, key))) {
		rc = name_owner(t, c->name, nr.name, other, e);
		if (rc)
			goto out;
		if (other[0] && strcmp(other, nr.id)) {
			rc = err_set_field(e, ERR_CONFLICT, "name",
					   "name '%s' is already used by %s record '%s'",
					   nr.name, c->name, other);
			goto out;
		}
	}
	rc = check_relations(t, c, nr.id, nr.data, have ? cur.data : NULL, e);
	if (rc)
		goto out;

	/* Write the record, then its change-log row; an amend
	 * (store_txn_amend()) is part of the hook's own change. */
	amend = t->amending && have && t->amend_rev > 0 &&
		cur.revision == t->amend_rev;
	util_now(nr.updated);
	memcpy(nr.created, have ? cur.created : nr.updated, sizeof(nr.created));
	nr.generation = amend ? cur.generation : have ? cur.generation + 1 : 1;
	nr.revision = amend ? cur.revision : t->next_rev;
	dtext = sealed_text(t->s, &nr, e);
	if (!dtext) {
		rc = e->code;
		goto out;
	}
	rc = write_record(t, c, &nr, !have, dtext, e);
	if (rc)
		goto out;
	rc = log_change(t, nr.revision, &nr, amend ? NULL : have ? "update" :
			"create", dtext, &le);
	if (rc) {
		rc = poison(t, rc, &le, e);
		goto out;
	}
	rc = owners_note(t, c, have ? &cur : NULL, &nr, &le);
	if (rc) {
		rc = poison(t, rc, &le, e);
		goto out;
	}
	if (!amend)
		t->next_rev++;
	if (act)
		*act = have ? STORE_UPDATED : STORE_CREATED;
	if (out) {
		*out = nr;
		record_init(&nr);
	}
	goto out;
nomem:
	rc = nomem(e);
out:
	free(dtext);
	json_decref(in);
	json_decref(norm);
	record_release(&cur);
	record_release(&nr);
	return rc;
}

/* The first hook of collection in store_write_hooks[] at or after *h
 * (advanced past it), or NULL when there is no other. */
static store_write_hook_fn hook_next(const char *collection,
				     const struct store_write_hook **h)
{
	for (; (*h)->collection; (*h)++)
		if (!strcmp((*h)->collection, collection))
			return ((*h)++)->fn;
	return NULL;
}

int store_txn_put(struct store_txn *t, const struct store_put *p,
		  struct record *out, enum store_action *act, struct err *e)
{
	const struct store_write_hook *h = store_write_hooks;
	store_write_hook_fn hook;
	struct record before, after;
	struct err le = ERR_INIT;
	enum store_action a = STORE_UNCHANGED;
	int rc;

	hook = t && p && p->collection && !t->in_hook ?
	       hook_next(p->collection, &h) : NULL;
	if (!hook && !(p && p->check))
		return put_one(t, p, out, act, NULL, e);
	record_init(&before);
	record_init(&after);
	if (out)
		record_init(out);
	if (act)
		*act = STORE_UNCHANGED;
	rc = put_one(t, p, &after, &a, hook ? &before : NULL, e);
	if (rc)
		goto out;
	if (p->check)
		rc = p->check(t, &after, p->check_arg, &le);
	/* every hook of the collection, in table order, each seeing the
	 * record as the ones before it left it */
	while (!rc && hook && !(a == STORE_UNCHANGED && t->actor.declares)) {
		t->in_hook = true;
		t->amend_rev = a != STORE_UNCHANGED ? after.revision : 0;
		rc = hook(t, before.name ? &before : NULL, &after, &t->actor,
			  &le);
		t->amend_rev = 0;
		t->in_hook = false;
		hook = hook_next(p->collection, &h);
	}
	if (rc) {
		rc = poison(t, rc, &le, e);
		goto out;
	}
out:
	if (!rc && act)
		*act = a;
	if (!rc && out) {
		*out = after;
		record_init(&after);
	}
	record_release(&before);
	record_release(&after);
	return rc;
}

int store_txn_patch(struct store_txn *t, struct record *rec, json_t *data,
		    struct err *e)
{
	struct store_put p;
	struct record now;
	int rc;

	if (!data)
		return nomem(e);
	record_init(&now);
	memset(&p, 0, sizeof(p));
	p.collection = rec->collection;
	p.id = rec->id;
	p.data = data;
	p.partial = true;
	p.mode = STORE_UPDATE;
	rc = store_txn_put(t, &p, &now, NULL, e);
	json_decref(data);
	if (rc)
		return rc;
	record_release(rec);
	*rec = now;
	return 0;
}

int store_txn_amend(struct store_txn *t, struct record *rec, json_t *data,
		    struct err *e)
{
	int rc;

	if (!t || !t->in_hook || !t->amend_rev ||
	    rec->revision != t->amend_rev)
		return store_txn_patch(t, rec, data, e);
	t->amending = true;
	rc = store_txn_patch(t, rec, data, e);
	t->amending = false;
	return rc;
}

/* ---- delete ----------------------------------------------------------- */

struct del_plan {
	json_t *seen;    /* "collection/id" -> true: in the delete set */
	json_t *order;   /* [collection, id] pairs, referrers first */
	json_t *refs;    /* non-cascade references found: checked at the end */
};

/* Ids of records of rc whose relation field f points at id. */
static int referrers(struct store_txn *t, size_t ci, size_t fi,
		     const char *id, json_t *ids, struct err *e)
{
	struct store *s = t->s;
	const struct collection *rc_ = &s->schema->collections[ci];
	sqlite3_stmt **slot = &s->refst[s->fbase[ci] + fi];
	struct buf sql = BUF_INIT;
	int rc = 0, r;

	if (!*slot) {
		if (buf_coll(&sql, "SELECT id FROM records WHERE collection = ",
			     rc_) ||
		    buf_printf(&sql, " AND json_extract(data, '$.%s') = ?1",
			       rc_->fields[fi].name)) {
			buf_release(&sql);
			return nomem(e);
		}
		rc = prep(s->wdb, slot, sql.ptr, e);
		buf_release(&sql);
		if (rc)
			return rc;
	}
	if (bind_text(*slot, 1, id)) {
		rc = db_err(e, s->wdb, "cannot find referring records");
		goto out;
	}
	while ((r = sqlite3_step(*slot)) == SQLITE_ROW) {
		const char *rid = (const char *)sqlite3_column_text(*slot, 0);

		if (rid && json_array_append_new(ids, json_string(rid))) {
			rc = nomem(e);
			goto out;
		}
	}
	if (r != SQLITE_DONE)
		rc = db_err(e, s->wdb, "cannot find referring records");
out:
	done(*slot);
	return rc;
}

static int plan_key(char *out, size_t size, const char *coll, const char *id)
{
	return snprintf(out, size, "%s/%s", coll, id) >= (int)size ? -1 : 0;
}

/* Add (c, id) and, first, everything that cascades from it to the plan. */
static int plan_delete(struct store_txn *t, const struct collection *c,
		       const char *id, struct del_plan *d, int depth,
		       struct err *e)
{
	const struct schema *sc = t->s->schema;
	char key[128];
	json_t *ids = NULL, *v;
	size_t ci, fi, k;
	int rc = 0;

	if (plan_key(key, sizeof(key), c->name, id))
		return err_set(e, ERR_INVALID, "invalid record id '%s'", id);
	if (json_object_get(d->seen, key))
		return 0;
	if (depth > CASCADE_MAX_DEPTH)
		return err_set(e, ERR_CONFLICT,
			       "cascade delete from %s record '%s' is deeper than %d levels",
			       c->name, id, CASCADE_MAX_DEPTH);
	if (json_object_set_new(d->seen, key, json_true()))
		return nomem(e);
	for (ci = 0; ci < sc->ncollections; ci++) {
		const struct collection *rc_ = &sc->collections[ci];

		for (fi = 0; fi < rc_->nfields; fi++) {
			const struct field *f = &rc_->fields[fi];

			if (f->type != FT_RELATION ||
			    strcmp(f->target, c->name))
				continue;
			json_decref(ids);
			ids = json_array();
			if (!ids) {
				rc = nomem(e);
				goto out;
			}
			rc = referrers(t, ci, fi, id, ids, e);
			if (rc)
				goto out;
			json_array_foreach(ids, k, v) {
				const char *rid = json_string_value(v);

				if (rc_ == c && !strcmp(rid, id))
					continue;       /* itself */
				if (f->cascade) {
					rc = plan_delete(t, rc_, rid, d,
							 depth + 1, e);
					if (rc)
						goto out;
					continue;
				}
				if (json_array_append_new(d->refs,
					json_pack("{s:s,s:s,s:s,s:s,s:s}",
						  "coll", rc_->name,
						  "field", f->name, "id", rid,
						  "tcoll", c->name,
						  "tid", id))) {
					rc = nomem(e);
					goto out;
				}
			}
		}
	}
	if (json_array_append_new(d->order,
				  json_pack("[s,s]", c->name, id)))
		rc = nomem(e);
out:
	json_decref(ids);
	return rc;
}

/* The record name for messages (the id when it cannot be read). */
static void name_for(struct store_txn *t, const char *coll, const char *id,
		     char *out, size_t size)
{
	struct record r;

	if (txn_get(t, coll, id, false, &r, NULL) == 0)
		snprintf(out, size, "%s", r.name);
	else
		snprintf(out, size, "%s", id);
	record_release(&r);
}

/* Delete one record row with its change-log row and apply-set rows. */
static int delete_one(struct store_txn *t, const char *coll, const char *id,
		      struct err *e)
{
	struct store *s = t->s;
	struct record r;
	sqlite3_stmt *st;
	int rc;

	rc = txn_get(t, coll, id, false, &r, e);
	if (rc)
		return rc;
	rc = wstmt(s, W_DELETE, &st, e);
	if (rc)
		goto out;
	if (bind_text(st, 1, coll) || bind_text(st, 2, id)) {
		done(st);
		rc = db_err(e, s->wdb, "cannot delete record");
		goto out;
	}
	rc = run(s->wdb, st, "cannot delete record", e);
	if (rc)
		goto out;
	rc = wstmt(s, W_FORGET, &st, e);
	if (rc)
		goto out;
	if (bind_text(st, 1, coll) || bind_text(st, 2, id)) {
		done(st);
		rc = db_err(e, s->wdb, "cannot delete record");
		goto out;
	}
	rc = run(s->wdb, st, "cannot delete record", e);
	if (rc)
		goto out;
	rc = log_change(t, t->next_rev, &r, "delete", NULL, e);
	if (!rc)
		t->next_rev++;
out:
	record_release(&r);
	return rc;
}

int store_txn_delete(struct store_txn *t, const char *collection,
		     const char *id, int64_t if_revision, struct err *e)
{
	const struct collection *c;
	struct del_plan d = { NULL, NULL, NULL };
	struct record r;
	struct err le = ERR_INIT;
	char tname[NAME_MAX_BYTES + 1], rname[NAME_MAX_BYTES + 1];
	json_t *v;
	size_t i;
	int rc;

	record_init(&r);
	if (!t)
		return err_set(e, ERR_INTERNAL, "no transaction");
	rc = find_coll(t->s, collection, &c, e);
	if (rc)
		return rc;
	if (!id || !util_valid_id(id))
		return err_set(e, ERR_NOT_FOUND, "no %s record with id '%s'",
			       c->name, id ? id : "");
	rc = txn_get(t, c->name, id, false, &r, e);
	if (rc)
		goto out;
	if (if_revision > 0 && r.revision != if_revision) {
		rc = err_set(e, ERR_PRECONDITION,
			     "record '%s' is at revision %lld, not %lld", r.name,
			     (long long)r.revision, (long long)if_revision);
		goto out;
	}
	d.seen = json_object();
	d.order = json_array();
	d.refs = json_array();
	if (!d.seen || !d.order || !d.refs) {
		rc = nomem(e);
		goto out;
	}
	rc = plan_delete(t, c, id, &d, 0, e);
	if (rc)
		goto out;
	json_array_foreach(d.refs, i, v) {
		const char *rcoll = json_string_value(json_object_get(v, "coll"));
		const char *rid = json_string_value(json_object_get(v, "id"));
		const char *tcoll = json_string_value(json_object_get(v, "tcoll"));
		const char *tid = json_string_value(json_object_get(v, "tid"));
		char key[128];

		if (plan_key(key, sizeof(key), rcoll, rid) == 0 &&
		    json_object_get(d.seen, key))
			continue;       /* deleted by the same cascade */
		name_for(t, tcoll, tid, tname, sizeof(tname));
		name_for(t, rcoll, rid, rname, sizeof(rname));
		rc = err_set(e, ERR_CONFLICT,
			     "record '%s' is referenced by %s.%s of '%s'",
			     tname, rcoll,
			     json_string_value(json_object_get(v, "field")),
			     rname);
		goto out;
	}
	json_array_foreach(d.order, i, v) {
		rc = delete_one(t, json_string_value(json_array_get(v, 0)),
				json_string_value(json_array_get(v, 1)), &le);
		if (rc) {
			rc = poison(t, rc, &le, e);
			goto out;
		}
	}
out:
	json_decref(d.seen);
	json_decref(d.order);
	json_decref(d.refs);
	record_release(&r);
	return rc;
}

/* ---- status ----------------------------------------------------------- */

int store_txn_set_status(struct store_txn *t, const char *collection,
			 const char *id, json_t *status, struct err *e)
{
	const struct collection *c;
	struct record r;
	struct err le = ERR_INIT;
	sqlite3_stmt *st;
	int rc, b = 0;

	record_init(&r);
	if (!t)
		return err_set(e, ERR_INTERNAL, "no transaction");
	rc = find_coll(t->s, collection, &c, e);
	if (rc)
		return rc;
	if (!json_is_object(status))
		return err_set_field(e, ERR_INVALID, "status",
				     "status must be a JSON object");
	if (!id)
		return err_set(e, ERR_NOT_FOUND, "no %s record with id ''",
			       c->name);
	rc = txn_get(t, c->name, id, false, &r, e);
	if (rc)
		goto out;
	if (json_equal(status, r.status))
		goto out;
	json_decref(r.status);
	r.status = json_deep_copy(status);
	if (!r.status) {
		rc = nomem(e);
		goto out;
	}
	r.revision = t->next_rev;
	rc = wstmt(t->s, W_STATUS, &st, e);
	if (rc)
		goto out;
	b |= bind_text(st, 1, r.collection);
	b |= bind_text(st, 2, r.id);
	b |= bind_json(st, 3, r.status);
	b |= sqlite3_bind_int64(st, 4, r.revision);
	if (b) {
		done(st);
		rc = db_err(e, t->s->wdb, "cannot write status");
		goto out;
	}
	rc = run(t->s->wdb, st, "cannot write status", e);
	if (rc)
		goto out;
	/* "status": an update of the status alone (see store_change). */
	rc = log_change(t, r.revision, &r, "status", NULL, &le);
	if (rc) {
		rc = poison(t, rc, &le, e);
		goto out;
	}
	t->next_rev++;
out:
	record_release(&r);
	return rc;
}

/* ---- record sets ------------------------------------------------------ */

int store_txn_recset_get(struct store_txn *t, const char *name,
			 json_t **members, struct err *e)
{
	sqlite3_stmt *st = NULL;
	json_t *arr = NULL;
	int rc, r;

	*members = NULL;
	if (!t || !name)
		return err_set(e, ERR_INTERNAL, "store_txn_recset_get: bad call");
	rc = wstmt(t->s, W_SET_GET, &st, e);
	if (rc)
		return rc;
	arr = json_array();
	if (!arr) {
		rc = nomem(e);
		goto out;
	}
	if (bind_text(st, 1, name)) {
		rc = db_err(e, t->s->wdb, "cannot read record set");
		goto out;
	}
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *coll = (const char *)sqlite3_column_text(st, 0);
		const char *id = (const char *)sqlite3_column_text(st, 1);

		if (!coll || !id)
			continue;
		if (json_array_append_new(arr, json_pack("{s:s,s:s}",
							 "collection", coll,
							 "id", id))) {
			rc = nomem(e);
			goto out;
		}
	}
	if (r != SQLITE_DONE)
		rc = db_err(e, t->s->wdb, "cannot read record set");
out:
	done(st);
	if (rc)
		json_decref(arr);
	else
		*members = arr;
	return rc;
}

int store_txn_recset_put(struct store_txn *t, const char *name,
			 const json_t *members, struct err *e)
{
	struct err le = ERR_INIT;
	sqlite3_stmt *st;
	const json_t *m;
	size_t i;
	int rc;

	if (!t || !name || !*name)
		return err_set(e, ERR_INVALID, "a record set needs a name");
	if (!json_is_array(members))
		return err_set(e, ERR_INVALID,
			       "record set '%s': members must be an array", name);
	json_array_foreach(members, i, m) {
		if (!json_is_string(json_object_get(m, "collection")) ||
		    !json_is_string(json_object_get(m, "id")))
			return err_set(e, ERR_INVALID,
				       "record set '%s': member %zu needs string collection and id",
				       name, i);
	}
	rc = wstmt(t->s, W_SET_CLEAR, &st, e);
	if (rc)
		return rc;
	if (bind_text(st, 1, name)) {
		done(st);
		return db_err(e, t->s->wdb, "cannot write record set");
	}
	rc = run(t->s->wdb, st, "cannot write record set", e);
	if (rc)
		return rc;
	json_array_foreach(members, i, m) {
		rc = wstmt(t->s, W_SET_ADD, &st, &le);
		if (!rc && (bind_text(st, 1, name) ||
			    bind_text(st, 2, json_string_value(
					  json_object_get(m, "collection"))) ||
			    bind_text(st, 3, json_string_value(
					  json_object_get(m, "id"))))) {
			done(st);
			rc = db_err(&le, t->s->wdb, "cannot write record set");
		}
		if (!rc)
			rc = run(t->s->wdb, st, "cannot write record set", &le);
		if (rc)
			return poison(t, rc, &le, e);
	}
	return 0;
}
