/*
 * apply.c - make the store match a set of manifests (see apply.h).
 *
 * Every apply, dry run and diff runs inside one store transaction: the
 * documents are written in relation order (targets first) so that names can
 * be resolved against records created by the same apply, and a dry run or
 * diff simply aborts at the end. That gives the three commands exactly the
 * same validation and the same answers.
 *
 * A document with a problem does not stop the pass: the problem is
 * reported (struct problems), the document left out, and the next one
 * checked, so that one run finds them all; then nothing is committed.
 */
#include "apply.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "applyset.h"
#include "jsonhash.h"
#include "secrets.h"
#include "suggest.h"
#include "util.h"

/* Looks a record up by id, inside a transaction or through the store. */
struct lookup {
	struct store *store;
	struct store_txn *txn;
};

static int lookup_get(const struct lookup *l, const char *coll,
		      const char *id, struct record *r, struct err *e)
{
	if (l->txn)
		return store_txn_get(l->txn, coll, id, r, e);
	return store_get(l->store, coll, id, r, e);
}

/* Is v the zero value of its field (left out of manifests)? */
static int is_zero(json_t *v)
{
	if (!v || json_is_null(v) || json_is_false(v))
		return 1;
	if (json_is_string(v))
		return json_string_length(v) == 0;
	if (json_is_integer(v))
		return json_integer_value(v) == 0;
	if (json_is_real(v))
		return json_real_value(v) == 0.0;
	return 0;
}

/*
 * A field the manifest form leaves out: an empty/zero value, unless the
 * field's default differs from it (is_active: false over a default of
 * true is printed, or applying the manifest to a fresh store would give
 * true back).
 */
static int omitted(const struct field *f, json_t *v)
{
	if (!is_zero(v))
		return 0;
	return !v || json_is_null(v) || !f->def || json_is_null(f->def) ||
	       json_equal(v, f->def);
}

static json_t *record_manifest(const struct schema *schema,
			       const struct lookup *l, const struct record *r,
			       struct err *e)
{
	const struct collection *c = schema_find(schema, r->collection);
	json_t *doc = NULL, *meta, *spec;
	size_t i;

	if (!c) {
		err_set(e, ERR_INTERNAL, "unknown collection '%s'",
			r->collection);
		return NULL;
	}
	spec = json_object();
	meta = json_pack("{s:s}", "name", r->name);
	if (!spec || !meta)
		goto nomem;
	if (r->labels && json_object_size(r->labels))
		json_object_set(meta, "labels", r->labels); /* borrowed */
	for (i = 0; i < c->nfields; i++) {
		const struct field *f = &c->fields[i];
		json_t *v = json_object_get(r->data, f->name);

		if (f->hidden || omitted(f, v))
			continue;
		if (c->name_field && !strcmp(f->name, c->name_field))
			continue;
		if (f->type == FT_RELATION) {
			struct record t;
			struct err ignore = ERR_INIT;

			record_init(&t);
			if (!lookup_get(l, f->target, json_string_value(v), &t,
					&ignore)) {
				json_object_set_new(spec, f->name,
						    json_string(t.name));
				record_release(&t);
				continue;
			}
			record_release(&t);
		}
		json_object_set(spec, f->name, v); /* borrowed */
	}
	doc = json_pack("{s:s,s:s,s:o,s:o}", "apiVersion", MANIFEST_API_VERSION,
			"kind", c->kind, "metadata", meta, "spec", spec);
	if (!doc)
		goto nomem;
	return doc;
nomem:
	json_decref(meta);
	json_decref(spec);
	err_set(e, ERR_NOMEM, "out of memory");
	return NULL;
}

json_t *apply_record_manifest(struct store *s, const struct record *r,
			      struct err *e)
{
	struct lookup l = { s, NULL };

	return record_manifest(store_schema(s), &l, r, e);
}

static int cmp_manager(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a,
							"manager")),
		      json_string_value(json_object_get(*(json_t *const *)b,
							"manager")));
}

int apply_managed_fields(struct store *s, const struct record *r, json_t *doc,
			 struct err *e)
{
	const struct collection *c = schema_find(store_schema(s), r->collection);
	json_t *owners = NULL, *by = NULL, *list = NULL, *v, **sorted = NULL;
	const char *k;
	char field[ERR_FIELD_MAX];
	size_t i, n = 0;
	int rc;

	if (!c)
		return err_set(e, ERR_INTERNAL, "unknown collection '%s'",
			       r->collection);
	rc = store_owners_get(s, r->collection, r->id, &owners, e);
	if (rc)
		return rc;
	by = json_object();
	list = json_array();
	if (!by || !list)
		goto nomem;
	for (i = 0; i < c->nfields; i++) {
		const char *m = json_string_value(
			json_object_get(owners, c->fields[i].name));
		json_t *ent;

		if (!m)
			continue;
		ent = json_object_get(by, m);
		if (!ent) {
			ent = json_pack("{s:s,s:[]}", "manager", m, "fields");
			if (!ent || json_object_set_new(by, m, ent))
				goto nomem;
		}
		snprintf(field, sizeof(field), "spec.%s", c->fields[i].name);
		if (json_array_append_new(json_object_get(ent, "fields"),
					  json_string(field)))
			goto nomem;
	}
	sorted = calloc(json_object_size(by) + 1, sizeof(*sorted));
	if (!sorted)
		goto nomem;
	json_object_foreach(by, k, v)
		sorted[n++] = v;
	qsort(sorted, n, sizeof(*sorted), cmp_manager);
	for (i = 0; i < n; i++)
		if (json_array_append(list, sorted[i]))
			goto nomem;
	if (json_object_set(json_object_get(doc, "metadata"), "managedFields",
			    list))
		goto nomem;
	goto out;
nomem:
	rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	free(sorted);
	json_decref(owners);
	json_decref(by);
	json_decref(list);
	return rc;
}

/*
 * The problems found so far in one pass: every one is reported to errs
 * (with its position), and the documents that had one are remembered so
 * that a document naming one of them in a relation is not blamed for it.
 */
struct problems {
	struct err_list *errs;
	json_t *failed;                  /* "collection\x1fname" -> true */
	const struct manifest_set *set;
};

#define COLL_KEY_MAX 512

/* "collection\x1fname" into key, the key of a record in the id cache and
 * in the failed set; cut (never overrun) past COLL_KEY_MAX - 1 bytes. Two
 * copies instead of snprintf(): it runs once or twice per document. */
static void coll_key(char key[COLL_KEY_MAX], const char *coll,
		     const char *name)
{
	size_t a = strnlen(coll, COLL_KEY_MAX - 2);
	size_t b = strnlen(name, COLL_KEY_MAX - 2 - a);

	memcpy(key, coll, a);
	key[a] = '\x1f';
	memcpy(key + a + 1, name, b);
	key[a + 1 + b] = '\0';
}

/* Problems in a document, reported and gone past; anything else (the
 * database, memory) ends the pass. */
static bool doc_problem(int rc)
{
	return rc == ERR_INVALID || rc == ERR_CONFLICT ||
	       rc == ERR_NOT_FOUND || rc == ERR_FORBIDDEN;
}

/* Prefix e with the position of field in document d (of its key when
 * key; of the mapping it would be in when d does not set it) and report
 * it. Returns e->code, or ERR_NOMEM. */
static int report(struct problems *pb, const struct manifest_doc *d,
		  const char *field, bool key, struct err *e)
{
	char path[ERR_FIELD_MAX];
	int line, col;

	if (field && *field) {
		manifest_doc_locate(d, field, key, &line, &col);
		snprintf(path, sizeof(path), "spec.%.*s",
			 (int)sizeof(path) - 6, field);
		snprintf(e->field, sizeof(e->field), "%s", path);
		err_prefix(e, "%s:%d:%d: %s: ", d->file, line, col, path);
	} else {   /* the document as a whole */
		line = d->line;
		col = d->column;
		err_prefix(e, "%s:%d:%d: ", d->file, line, col);
	}
	if (err_list_add(pb->errs, e, d->file, line, col))
		return err_set(e, ERR_NOMEM, "out of memory");
	return e->code;
}

/* report() a problem with the value of field (or with the document). */
static int at_doc(struct problems *pb, const struct manifest_doc *d,
		  const char *field, struct err *e)
{
	return report(pb, d, field, false, e);
}

static int failed_put(struct problems *pb, const char *coll, const char *name)
{
	char key[COLL_KEY_MAX];

	coll_key(key, coll, name);
	return json_object_set_new(pb->failed, key, json_true()) ? ERR_NOMEM
								 : 0;
}

static bool failed_has(const struct problems *pb, const char *coll,
		       const char *name)
{
	char key[COLL_KEY_MAX];

	coll_key(key, coll, name);
	return json_object_get(pb->failed, key) != NULL;
}

/*
 * Every problem of document d's record data (after doc_data(); stored:
 * the record's data, or NULL when it is new), field by field, as the
 * store would see them: unknown fields (with a "did you mean"), then in
 * schema order each field's type and value and each required field left
 * empty. Fields in done (or NULL) were reported already. Only on the way out of a
 * failed put, so it may be slow: each field is checked alone, by the
 * schema's own normalisation over a collection of that one field.
 * Returns how many problems it reported, or a negative code.
 */
static int diagnose(struct problems *pb, const struct manifest_doc *d,
		    json_t *data, json_t *stored, const json_t *done)
{
	const struct collection *c = d->coll;
	struct collection one;
	struct field f1;
	struct suggest sg;
	struct err e1;
	json_t *in, *out, *v;
	const char *key;
	char hint[160];
	int n = 0, rc;
	size_t i;

	json_object_foreach(data, key, v) {
		if (collection_field(c, key) ||
		    json_object_get(done, key))
			continue;
		suggest_init(&sg, key);
		for (i = 0; i < c->nfields; i++)
			suggest_consider(&sg, c->fields[i].name,
					 c->fields[i].name);
		suggest_hint(&sg, hint, sizeof(hint));
		err_set_field(&e1, ERR_INVALID, key, "unknown field '%.64s'%s",
			      key, hint);
		rc = report(pb, d, key, true, &e1);
		if (rc == ERR_NOMEM)
			return rc;
		n++;
	}
	one = *c;
	one.fields = &f1;
	one.nfields = 1;
	for (i = 0; i < c->nfields; i++) {
		key = c->fields[i].name;
		if (json_object_get(done, key))
			continue;
		f1 = c->fields[i];
		v = json_object_get(data, key);
		in = v ? json_pack("{s:O}", key, v) : json_object();
		if (!in)
			return ERR_NOMEM;
		out = NULL;
		err_clear(&e1);
		rc = schema_normalize(&one, in, json_is_object(stored) ? stored :
					       NULL, &out, &e1);
		json_decref(in);
		json_decref(out);
		if (!rc)
			continue;
		if (!doc_problem(rc))
			return rc;
		rc = at_doc(pb, d, key, &e1);
		if (rc == ERR_NOMEM)
			return rc;
		n++;
	}
	return n;
}

/*
 * The ids of records by collection and name, as this apply has seen or
 * written them: relation names resolve without another store lookup. Only
 * valid inside one transaction.
 */
static const char *id_cache_get(json_t *ids, const char *coll,
				const char *name)
{
	char key[COLL_KEY_MAX];

	coll_key(key, coll, name);
	return json_string_value(json_object_get(ids, key));
}

static void id_cache_put(json_t *ids, const char *coll, const char *name,
			 const char *id)
{
	char key[COLL_KEY_MAX];

	coll_key(key, coll, name);
	json_object_set_new(ids, key, json_string(id));
}

/* Note field of a document as reported (*done: made on first use, so
 * that a document without problems costs nothing). 0 or ERR_NOMEM. */
static int mark_done(json_t **done, const char *field)
{
	if (!*done)
		*done = json_object();
	if (!*done || json_object_set_new(*done, field, json_true()))
		return ERR_NOMEM;
	return 0;
}

/* Report a problem of field in d (e set), and note the field as done. */
static int field_problem(struct problems *pb, const struct manifest_doc *d,
			 json_t **done, const char *field, struct err *e)
{
	int rc = at_doc(pb, d, field, e);

	if (rc != ERR_NOMEM && mark_done(done, field))
		rc = err_set(e, ERR_NOMEM, "out of memory");
	return rc;
}

/*
 * Turn a document's spec into record data: relation names resolved to ids
 * (a value that is already an existing record's id is accepted too), the
 * name field filled from metadata.name. Caller owns *out, also when the
 * document has problems: each is reported, its field left out of *out and
 * named in *done (made when needed), and ERR_INVALID returned (also,
 * silently, when a relation names a document that failed). Other codes
 * end the pass.
 */
static int doc_data(struct store_txn *t, json_t *ids, struct problems *pb,
		    const struct manifest_doc *d, json_t **done, json_t **out,
		    struct err *e)
{
	const struct collection *c = d->coll;
	json_t *data = NULL;
	size_t i;
	int rc = 0, bad = 0;

	data = json_deep_copy(d->spec);
	if (!data)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (c->name_field) {
		json_t *n = json_object_get(data, c->name_field);

		if (n && (!json_is_string(n) ||
			  strcmp(json_string_value(n), d->name))) {
			err_set_field(e, ERR_INVALID, c->name_field,
				      "must equal metadata.name '%s' (or be left out)",
				      d->name);
			rc = field_problem(pb, d, done, c->name_field, e);
			if (rc == ERR_NOMEM)
				goto out;
			bad = rc;
		}
		json_object_set_new(data, c->name_field, json_string(d->name));
	}
	for (i = 0; i < c->nfields; i++) {
		const struct field *f = &c->fields[i];
		json_t *v = json_object_get(data, f->name);
		struct record r;
		const char *ref, *cached;

		if (f->type == FT_PASSWORD && v && !json_is_null(v)) {
			err_set_field(e, ERR_INVALID, f->name,
				      "passwords cannot be set from manifests; set them through the API");
			rc = field_problem(pb, d, done, f->name, e);
			if (rc == ERR_NOMEM)
				goto out;
			bad = rc;
			json_object_del(data, f->name);
			continue;
		}
		if (f->type != FT_RELATION || !v || !json_is_string(v) ||
		    !json_string_length(v))
			continue;
		ref = json_string_value(v);
		cached = id_cache_get(ids, f->target, ref);
		if (cached) {
			json_object_set_new(data, f->name, json_string(cached));
			continue;
		}
		record_init(&r);
		rc = store_txn_get_by_name(t, f->target, ref, &r, e);
		if (rc == ERR_NOT_FOUND && util_valid_id(ref))
			rc = store_txn_get(t, f->target, ref, &r, e);
		/* A person by email ("user: alice@example.test"). */
		if (rc == ERR_NOT_FOUND && strchr(ref, '@'))
			rc = store_txn_get_by_email(t, f->target, ref, &r, e);
		if (rc == ERR_NOT_FOUND) {
			record_release(&r);
			/* A target whose document failed was blamed there. */
			if (!failed_has(pb, f->target, ref)) {
				err_set_field(e, ERR_INVALID, f->name,
					      "no %s record named '%s'",
					      f->target, ref);
				rc = at_doc(pb, d, f->name, e);
				if (rc == ERR_NOMEM)
					goto out;
			}
			bad = ERR_INVALID;
			rc = mark_done(done, f->name);
			if (!rc)
				rc = json_object_del(data, f->name);
			if (rc) {
				rc = err_set(e, ERR_NOMEM, "out of memory");
				goto out;
			}
			continue;
		}
		if (rc) {
			record_release(&r);
			goto out;
		}
		/* ref points into data's old value: cache it before replacing. */
		id_cache_put(ids, f->target, ref, r.id);
		json_object_set_new(data, f->name, json_string(r.id));
		record_release(&r);
	}
out:
	if (rc) {
		json_decref(data);
		return rc;
	}
	*out = data;
	return bad;
}

/* An object of n string members keys[i]: vals[i], NULL when out of
 * memory. The values are the schema's, ids and validated names: UTF-8
 * already (what json_pack() would check again, at ten times the cost
 * for an apply's thousands of items). */
static json_t *str_object(size_t n, const char *const *keys,
			  const char *const *vals)
{
	json_t *o = json_object();
	size_t i;

	for (i = 0; o && i < n; i++) {
		if (json_object_set_new_nocheck(o, keys[i],
						json_string_nocheck(vals[i]))) {
			json_decref(o);
			o = NULL;
		}
	}
	return o;
}

static json_t *member(const char *collection, const char *id)
{
	static const char *const keys[] = { "collection", "id" };
	const char *vals[] = { collection, id };

	return str_object(2, keys, vals);
}

/* Record (collection, id) a member of the apply set; nothing without one
 * (members NULL). 0, or -1 when out of memory. */
static int add_member(json_t *members, const char *collection, const char *id)
{
	return members ? json_array_append_new(members, member(collection, id))
		       : 0;
}

static void count_action(json_t *result, const char *action)
{
	json_t *n = json_object_get(result, action);

	json_object_set_new(result, action,
			    json_integer(json_integer_value(n) + 1));
}

static json_t *new_item(const struct collection *c, const char *name,
			const char *id, const char *action)
{
	static const char *const keys[] = { "kind", "collection", "name",
					    "id", "action" };
	const char *vals[] = { c->kind, c->name, name, id, action };

	return str_object(5, keys, vals);
}

/*
 * The put of document d as manager mgr is partial: fields the document
 * leaves out keep their stored values (system fields, what the app or
 * another apply set wrote), except those mgr owned: mgr releases them,
 * and they are cleared (set to null, which the schema makes its zero).
 * Does d set a field that another manager owns (*foreign)?
 */
static int release_fields(const struct manifest_doc *d, const json_t *owners,
			  const char *mgr, json_t *data, bool *foreign)
{
	const char *f;
	json_t *v;

	*foreign = false;
	json_object_foreach((json_t *)owners, f, v) {
		const struct field *fd = collection_field(d->coll, f);

		if (json_object_get(d->spec, f)) {
			*foreign |= strcmp(json_string_value(v), mgr) != 0;
			continue;
		}
		if (!fd || fd->system || strcmp(json_string_value(v), mgr))
			continue;
		if (json_object_set_new(data, f, json_null()))
			return -1;
	}
	return 0;
}

/* Does c have fields only the server writes, or a write hook that may
 * write fields inside an apply without noting an owner? */
static bool server_fields(const struct collection *c)
{
	const struct store_write_hook *h;
	size_t i;

	for (i = 0; i < c->nfields; i++)
		if (c->fields[i].system)
			return true;
	for (h = store_write_hooks; h->collection; h++)
		if (!strcmp(h->collection, c->name))
			return true;
	return false;
}

/*
 * Is mgr the only writer of the record with ownership o? Then a field the
 * document leaves out is one nobody set (its zero) or one mgr releases,
 * and the put can replace the data instead of merging it (cheaper). Not
 * for a record without ownership (written before it was recorded) or a
 * collection with server-written fields.
 */
static bool sole_owner(const struct collection *c, const json_t *o,
		       const char *mgr)
{
	const char *f;
	json_t *v;

	if (!json_object_size(o) || server_fields(c))
		return false;
	json_object_foreach((json_t *)o, f, v)
		if (strcmp(json_string_value(v), mgr))
			return false;
	return true;
}

/* Does applying d as mgr change who owns field i (given ownership o)? */
static bool changes_owner(const struct manifest_doc *d, size_t i,
			  const json_t *o, const char *mgr)
{
	const struct field *f = &d->coll->fields[i];
	const char *owner = json_string_value(json_object_get(o, f->name));

	if (json_object_get(d->spec, f->name))
		return !owner || strcmp(owner, mgr);
	return owner && !strcmp(owner, mgr) && !f->system;
}

/*
 * The ownership after this apply, from o (the record's; borrowed, and
 * possibly shared with other records, so never modified): mgr owns exactly
 * the fields the document sets and no longer those it leaves out. *next is
 * NULL when that is o itself (nothing to write), else a new object the
 * caller owns. A field taken from another manager with a different value
 * (before: the record as it was; NULL when not read, because no field is
 * foreign) is appended to took as {field, from}.
 */
static int next_owners(const struct manifest_doc *d, const json_t *o,
		       const struct record *before, const struct record *after,
		       const char *mgr, json_t *took, json_t **next)
{
	const struct collection *c = d->coll;
	char field[ERR_FIELD_MAX];
	json_t *n;
	bool any = false;
	size_t i;

	*next = NULL;
	for (i = 0; i < c->nfields; i++) {
		const char *f = c->fields[i].name;
		const char *owner = json_string_value(json_object_get(o, f));

		if (!changes_owner(d, i, o, mgr))
			continue;
		any = true;
		if (!owner || !before || !json_object_get(d->spec, f) ||
		    json_equal(json_object_get(before->data, f),
			       json_object_get(after->data, f)))
			continue;
		snprintf(field, sizeof(field), "spec.%s", f);
		if (json_array_append_new(took, json_pack("{s:s,s:s}", "field",
							  field, "from", owner)))
			return -1;
	}
	if (!any)
		return 0;
	n = json_deep_copy(o);
	if (!n)
		return -1;
	for (i = 0; i < c->nfields; i++) {
		const char *f = c->fields[i].name;

		if (!changes_owner(d, i, o, mgr))
			continue;
		if (json_object_get(d->spec, f) ?
		    json_object_set_new(n, f, json_string(mgr)) :
		    json_object_del(n, f)) {
			json_decref(n);
			return -1;
		}
	}
	*next = n;
	return 0;
}

/* Replace the first occurrence of from in msg (size n) with to. */
static void replace_in(char *msg, size_t n, const char *from, const char *to)
{
	char out[ERR_MSG_MAX];
	char *p = strstr(msg, from);

	if (!p)
		return;
	snprintf(out, sizeof(out), "%.*s%s%s", (int)(p - msg), msg, to,
		 p + strlen(from));
	snprintf(msg, n, "%s", out);
}

/*
 * A unique clash from the store names the other record by id ("record
 * 'ID'", store_write.c) and relation values by id: name the record
 * KIND/NAME instead, with where this apply declares it, and the relation
 * values by the names the document gave.
 */
static void name_clash(struct store_txn *t, const struct problems *pb,
		       const struct manifest_doc *d, const json_t *data,
		       struct err *e)
{
	const struct collection *c = d->coll;
	char id[ID_LEN + 1], from[ID_LEN + 16], to[512];
	const char *p, *q = NULL;
	struct record r;
	size_t i;

	for (p = strstr(e->msg, "record '"); p; p = strstr(p + 1, "record '"))
		q = p;
	if (!q || strlen(q) < 8 + ID_LEN + 1 || q[8 + ID_LEN] != '\'')
		return;
	snprintf(id, sizeof(id), "%.*s", ID_LEN, q + 8);
	record_init(&r);
	if (!util_valid_id(id) || store_txn_get(t, c->name, id, &r, NULL)) {
		record_release(&r);
		return;
	}
	snprintf(to, sizeof(to), "%s/%s", c->kind, r.name);
	for (i = 0; i < pb->set->n; i++) {
		const struct manifest_doc *o = &pb->set->docs[i];

		if (o->coll == c && !strcmp(o->name, r.name)) {
			snprintf(to, sizeof(to), "%s/%s (%s:%d:%d)", c->kind,
				 r.name, o->file, o->line, o->column);
			break;
		}
	}
	snprintf(from, sizeof(from), "record '%s'", id);
	replace_in(e->msg, sizeof(e->msg), from, to);
	record_release(&r);
	for (i = 0; i < c->nfields; i++) {
		const struct field *f = &c->fields[i];
		const char *rid = json_string_value(json_object_get(data, f->name));
		const char *ref = json_string_value(json_object_get(d->spec,
								    f->name));

		if (f->type != FT_RELATION || !rid || !ref || !strcmp(rid, ref))
			continue;
		snprintf(from, sizeof(from), "'%s'", rid);
		snprintf(to, sizeof(to), "'%.200s'", ref);
		replace_in(e->msg, sizeof(e->msg), from, to);
	}
}

/* diagnose() d's data over the record as stored (if there is one, as a
 * partial put would). How many problems, or a code with e set. */
static int diagnose_doc(struct store_txn *t, struct problems *pb,
			const struct manifest_doc *d, json_t *data,
			const json_t *done, struct err *e)
{
	struct record stored;
	int n;

	record_init(&stored);
	n = diagnose(pb, d, data,
		     store_txn_get_by_name(t, d->coll->name, d->name, &stored,
					   NULL) ? NULL : stored.data, done);
	record_release(&stored);
	return n < 0 ? err_set(e, n, "cannot check the document") : n;
}

/* The put of d failed with e: report its problems (every one the
 * diagnosis finds, else e) and return a doc_problem() code, or end the
 * pass with another. */
static int put_problem(struct store_txn *t, struct problems *pb,
		       const struct manifest_doc *d, json_t *data,
		       const json_t *done, struct err *e)
{
	int rc = e->code, n = 0;

	if (!doc_problem(rc))
		return rc;
	if (rc == ERR_CONFLICT) {
		name_clash(t, pb, d, data, e);
		return at_doc(pb, d, e->field, e);
	}
	if (rc == ERR_INVALID) {
		n = diagnose_doc(t, pb, d, data, done, e);
		if (n < 0)
			return n;
	}
	return n ? rc : at_doc(pb, d, e->field, e);
}

/*
 * Manifests never carry passwords (doc_data()), so a document of an auth
 * collection (User) may only describe an account that exists: its
 * password stays as it is. A new one is refused naming the way to make it.
 */
static int auth_exists(struct store_txn *t, const struct manifest_doc *d,
		       struct err *e)
{
	struct record r;
	int rc;

	if (!d->coll->auth)
		return 0;
	record_init(&r);
	rc = store_txn_get_by_name(t, d->coll->name, d->name, &r, NULL);
	record_release(&r);
	if (rc != ERR_NOT_FOUND)
		return 0;   /* found, or another error the put reports */
	return err_set_field(e, ERR_INVALID, "password",
			     "there is no %s '%s', and a new one needs a password, which manifests never carry: create it with POST /api/collections/%s/records, then apply",
			     d->coll->kind, d->name, d->coll->name);
}

/* A masked secret applied back stands for the stored value (secrets.h);
 * only then is the stored record read. */
static int unmask_doc(struct store_txn *t, const struct auth_keys *keys,
		      const struct manifest_doc *d, json_t *data,
		      struct err *e)
{
	struct record r;
	int rc;

	if (!secrets_has_mask(d->coll, data))
		return 0;
	record_init(&r);
	rc = store_txn_get_by_name(t, d->coll->name, d->name, &r, NULL);
	rc = secrets_unmask(keys, d->coll, data, rc ? NULL : r.data, e);
	record_release(&r);
	return rc;
}

#define DIGEST_LEN JSONHASH_LEN

/* What run() makes each document's digest with (doc_digest()). */
struct digester {
	struct jsonhash *h;
	char salt[512];
};

/*
 * The digest of what d declares (store.h, "apply digests"): salt (the
 * manager, the actor and the schema version, see run()), then data as
 * doc_data() made it (relation names resolved to ids, so a renamed or
 * recreated target changes it), then the labels, both fed to the hash as
 * they are in memory (jsonhash.h). *use is false for a document that
 * sets a secret: no hash of a secret is kept in the store, and a masked
 * secret needs the full path (unmask_doc()).
 */
static int doc_digest(struct digester *dg, const struct manifest_doc *d,
		      json_t *data, unsigned char out[DIGEST_LEN],
		      bool *use, struct err *e)
{
	size_t i;

	*use = false;
	for (i = 0; i < d->coll->nfields; i++) {
		const struct field *f = &d->coll->fields[i];

		if (f->secret && !is_zero(json_object_get(data, f->name)))
			return 0;
	}
	if (jsonhash_begin(dg->h) ||
	    jsonhash_bytes(dg->h, dg->salt, strlen(dg->salt)) ||
	    jsonhash_value(dg->h, data) || jsonhash_value(dg->h, d->labels) ||
	    jsonhash_end(dg->h, out))
		return err_set(e, ERR_INTERNAL,
			       "cannot compute a SHA-256 digest");
	*use = true;
	return 0;
}

/* d's item as "unchanged", record id a member, its id cached for the
 * relations of later documents when ids (else they look it up: a known
 * document's record was not written by this apply, and most of them are
 * named by nothing that is parsed). */
static int add_unchanged(json_t *ids, const struct manifest_doc *d,
			 const char *id, json_t *items, json_t *members,
			 struct err *e)
{
	json_t *item = new_item(d->coll, d->name, id, "unchanged");

	if (!item || json_array_append_new(items, item) ||
	    add_member(members, d->coll->name, id))
		return err_set(e, ERR_NOMEM, "out of memory");
	if (ids)
		id_cache_put(ids, d->coll->name, d->name, id);
	return 0;
}

/*
 * The short cut of an unchanged re-apply: when the record d names was last
 * written by an apply of this very declaration (same digest) and by nobody
 * since (store_txn_digest_match()), nothing would change - data, labels
 * nor ownership - so neither the record nor its ownership is read. *hit
 * says whether it was taken; then d's item is appended as "unchanged".
 */
static int apply_unchanged(struct store_txn *t, json_t *ids,
			   const struct manifest_doc *d,
			   const unsigned char dg[DIGEST_LEN], json_t *items,
			   json_t *members, bool *hit, struct err *e)
{
	char id[ID_LEN + 1];
	int rc;

	*hit = false;
	rc = store_txn_digest_match(t, d->coll->name, d->name, dg, DIGEST_LEN,
				    id, e);
	if (rc || !id[0])
		return rc;
	/* Same declaration in other words (or from an earlier version):
	 * the next apply of this text finds it unparsed. */
	if (d->keyed) {
		rc = store_txn_text_put(t, d->coll->name, id, d->key,
					DIGEST_LEN, e);
		if (rc)
			return rc;
	}
	*hit = true;
	return add_unchanged(ids, d, id, items, members, e);
}

/* Apply one document inside t as manager mgr (dg: see doc_digest()),
 * appending its item to items. *pre: the ownership of d's collection by
 * record name, read ahead at the first document that needs it when ahead
 * (else, or until then, NULL: look the record's up). */
static int apply_doc(const struct schema *sc, struct store_txn *t,
		     json_t *ids, struct problems *pb,
		     const struct manifest_doc *d, json_t **pre, bool ahead,
		     const char *mgr, struct digester *dg, bool may_hit,
		     const struct auth_keys *keys, bool with_diff,
		     json_t *items, json_t *members, struct err *e)
{
	unsigned char digest[DIGEST_LEN];
	bool use_dg = false, hit = false;
	struct lookup l = { NULL, t };
	struct store_put p;
	struct record before, after;
	enum store_action act = STORE_UNCHANGED;
	json_t *data = NULL, *item = NULL, *live = NULL, *desired = NULL;
	json_t *owners = NULL, *next = NULL, *took = NULL, *done = NULL;
	const char *action;
	bool foreign;
	int rc, existed;

	record_init(&before);
	record_init(&after);
	rc = doc_data(t, ids, pb, d, &done, &data, e);
	if (rc == ERR_INVALID) {
		/* The rest of the document is checked all the same. */
		rc = diagnose_doc(t, pb, d, data, done, e);
		rc = rc < 0 ? rc : ERR_INVALID;
		goto out;
	}
	if (rc)
		goto out;
	/* A diff shows the record itself: it takes the full path. */
	if (!with_diff) {
		rc = doc_digest(dg, d, data, digest, &use_dg, e);
		if (!rc && use_dg && may_hit)
			rc = apply_unchanged(t, ids, d, digest, items, members,
					     &hit, e);
		if (rc) {
			at_doc(pb, d, NULL, e);
			goto out;
		}
		if (hit)
			goto out;
	}
	rc = unmask_doc(t, keys, d, data, e);
	if (!rc)
		rc = auth_exists(t, d, e);
	if (rc) {
		rc = at_doc(pb, d, e->field, e);
		goto out;
	}
	/* Who owns the record's fields (from pre: shared, never modified);
	 * the record as it was only when a diff shows it or a field may be
	 * taken back from another manager (one lookup less per document of
	 * an unchanged re-apply). */
	if (ahead && !*pre) {
		rc = store_txn_owners_list(t, d->coll->name, pre, e);
		if (rc) {
			at_doc(pb, d, NULL, e);
			goto out;
		}
	}
	owners = *pre ? json_incref(json_object_get(*pre, d->name)) : NULL;
	rc = *pre ? 0 : store_txn_owners_find(t, d->coll->name, d->name,
					      &owners, e);
	if (!rc && !owners)
		owners = json_object();
	if (!rc && !owners)
		rc = err_set(e, ERR_NOMEM, "out of memory");
	if (rc) {
		at_doc(pb, d, NULL, e);
		goto out;
	}
	if (release_fields(d, owners, mgr, data, &foreign)) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	existed = (with_diff || foreign) &&
		  !store_txn_get_by_name(t, d->coll->name, d->name, &before,
					 NULL);
	memset(&p, 0, sizeof(p));
	p.collection = d->coll->name;
	p.name = d->name;
	p.data = data;
	p.partial = !sole_owner(d->coll, owners, mgr);
	p.labels = d->labels;
	p.mode = STORE_UPSERT;
	rc = store_txn_put(t, &p, &after, &act, e);
	if (rc) {
		rc = put_problem(t, pb, d, data, done, e);
		goto out;
	}
	id_cache_put(ids, after.collection, after.name, after.id);
	took = json_array();
	if (!took || next_owners(d, owners, existed ? &before : NULL, &after,
				 mgr, took, &next)) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	/* The ownership and the digest in one row; the revision kept with
	 * the digest is the one this write gave the record. */
	if (next || use_dg) {
		rc = store_txn_declared_put(t, after.collection, after.id, next,
					    after.revision,
					    use_dg ? digest : NULL,
					    use_dg && d->keyed ? d->key : NULL,
					    DIGEST_LEN, e);
		if (rc) {
			at_doc(pb, d, NULL, e);
			goto out;
		}
	}
	action = act == STORE_CREATED ? "created" :
		 act == STORE_UPDATED ? "configured" : "unchanged";
	item = new_item(d->coll, after.name, after.id, action);
	if (!item) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if (json_array_size(took))
		json_object_set(item, "tookBack", took); /* borrowed */
	if (with_diff) {
		live = existed ? record_manifest(sc, &l, &before, e) :
				 json_null();
		desired = record_manifest(sc, &l, &after, e);
		if (!live || !desired) {
			rc = e->code ? e->code : ERR_NOMEM;
			goto out;
		}
		json_object_set_new(item, "live", live);
		json_object_set_new(item, "desired", desired);
		live = desired = NULL;
	}
	json_array_append_new(items, item);
	item = NULL;
	if (add_member(members, after.collection, after.id))
		rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	json_decref(item);
	json_decref(live);
	json_decref(desired);
	json_decref(data);
	json_decref(owners);
	json_decref(next);
	json_decref(took);
	json_decref(done);
	record_release(&before);
	record_release(&after);
	if (doc_problem(rc) && failed_put(pb, d->coll->name, d->name))
		rc = err_set(e, ERR_NOMEM, "out of memory");
	return rc;
}

/* Delete the members of the previous apply that are gone now. */
static int prune(const struct schema *sc, struct store_txn *t,
		 const struct apply_opts *o, json_t *prev, json_t *members,
		 bool with_diff, json_t *items, struct err *e)
{
	struct lookup l = { NULL, t };
	size_t i, ngone = 0, nprev = json_array_size(prev);
	json_t *m;
	int rc = 0;

	json_array_foreach(prev, i, m) {
		if (!applyset_has(members,
				json_string_value(json_object_get(m, "collection")),
				json_string_value(json_object_get(m, "id"))))
			ngone++;
	}
	if (ngone && ngone * 2 > nprev && !o->force)
		return err_set(e, ERR_INVALID,
			       "prune would delete %zu of the %zu records in apply set '%s'; use --force to allow it",
			       ngone, nprev, o->applyset);
	json_array_foreach(prev, i, m) {
		const char *coll = json_string_value(json_object_get(m, "collection"));
		const char *id = json_string_value(json_object_get(m, "id"));
		const struct collection *c = schema_find(sc, coll);
		struct record r;
		json_t *item;

		if (!c || applyset_has(members, coll, id))
			continue;
		record_init(&r);
		if (store_txn_get(t, coll, id, &r, NULL)) {
			record_release(&r);
			continue; /* already gone */
		}
		item = new_item(c, r.name, r.id, "pruned");
		if (with_diff && item) {
			json_object_set_new(item, "live",
					    record_manifest(sc, &l, &r, e));
			json_object_set_new(item, "desired", json_null());
		}
		rc = store_txn_delete(t, coll, id, 0, e);
		record_release(&r);
		if (rc || !item) {
			json_decref(item);
			if (!rc)
				rc = err_set(e, ERR_NOMEM, "out of memory");
			return rc;
		}
		json_array_append_new(items, item);
	}
	return 0;
}

/*
 * A document of a kind only pocketctl writes (Sop, ReconcileStatus) is
 * taken only as an unchanged copy of its stored record, so that what get
 * prints applies back as a no-op: its item says "unchanged" and nothing
 * is written. Anything else is refused naming the document.
 */
static int readonly_doc(struct store *s, struct problems *pb,
			const struct manifest_doc *d, json_t *items,
			struct err *e)
{
	const struct collection *c = d->coll;
	struct record r;
	json_t *doc = NULL, *labels;
	bool same = false;
	int rc = 0;

	record_init(&r);
	if (!store_get_by_name(s, c->name, d->name, &r, NULL)) {
		doc = apply_record_manifest(s, &r, e);
		if (!doc) {
			rc = e->code ? at_doc(pb, d, NULL, e) :
				       err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		labels = json_object_get(json_object_get(doc, "metadata"),
					 "labels");
		same = json_equal(json_object_get(doc, "spec"), d->spec) &&
		       (json_object_size(d->labels) ?
			json_equal(labels, d->labels) : !labels);
	}
	if (same) {
		if (json_array_append_new(items, new_item(c, r.name, r.id,
							  "unchanged")))
			rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	err_set(e, ERR_INVALID, "kind %s cannot be applied: %s are written "
		"only by pocketctl itself, and only an unchanged copy of a "
		"stored one is accepted%s", c->kind, c->name,
		strcmp(c->name, "sops") ? "" :
		" (approve a Proposal to seal a new version)");
	rc = at_doc(pb, d, NULL, e);
out:
	json_decref(doc);
	record_release(&r);
	return rc;
}

/* The change log names an apply's writes "apply:WHO", WHO the thread's
 * writer (the caller of a remote apply, "cli:USER" offline,
 * "reconciler/manifests" for the watched checkout). */
static void apply_name_writer(struct store_txn *t)
{
	char label[STORE_WRITER_MAX];

	snprintf(label, sizeof(label), "%s%s", APPLY_MANAGER_PREFIX,
		 store_thread_writer());
	store_txn_set_writer(t, label);
}

/* Documents of one collection from which run() reads the collection's
 * ownership ahead. */
#define APPLY_READ_AHEAD 64

/* manifest_find_fn: a piece of text that an apply by the same manager
 * and actor, under the same schema and renames, declared record (coll,
 * id) with, nobody having written it since (store_txn_text_find()). */
static int find_text(void *arg, const unsigned char key[MANIFEST_KEY_LEN],
		     struct manifest_doc *d, bool *hit, struct err *e)
{
	const struct collection *c;
	char id[ID_LEN + 1], *name;
	int rc;

	*hit = false;
	rc = store_txn_text_find(arg, key, MANIFEST_KEY_LEN, &c, id, &name, e);
	if (rc || !c)
		return rc;
	if (!c->api_writable) {
		free(name);
		return 0;
	}
	d->coll = c;
	d->name = name;
	d->known_id = strdup(id);
	if (!d->known_id)
		return err_set(e, ERR_NOMEM, "out of memory");
	*hit = true;
	return 0;
}

/* Load the manifests inside t with the short cut of known pieces: the
 * salt of their keys is what a text's meaning depends on besides the
 * text (dg->salt), the renames so far (a relation names its target) and
 * the binary (another build may read the same text otherwise). */
static int load_known(struct store_txn *t, const struct digester *dg,
		      apply_load_fn *load, void *arg, struct manifest_set *m,
		      struct err_list *errs, struct err *e)
{
	struct manifest_known k;
	char salt[sizeof(dg->salt) + 64];
	int64_t renames;
	bool any;
	int rc;

	rc = store_txn_renames(t, &renames, e);
	if (!rc)
		rc = store_txn_text_any(t, &any, e);
	if (rc)
		return rc;
	snprintf(salt, sizeof(salt), "text\n%s\n%lld\n%s", dg->salt,
		 (long long)renames, util_build_id());
	memset(&k, 0, sizeof(k));
	k.salt = salt;
	k.salt_len = strlen(salt);
	k.none = !any;
	k.find = find_text;
	k.arg = t;
	return load(arg, &k, m, errs, e);
}

static int run(struct store *s, struct manifest_set *m, apply_load_fn *load,
	       void *load_arg, const struct apply_opts *o, bool with_diff,
	       json_t **result, struct err *e)
{
	const struct schema *sc = store_schema(s);
	const struct collection **order = NULL;
	struct store_txn *t = NULL;
	struct err_list own = ERR_LIST_INIT;
	struct problems pb = { o->errors ? o->errors : &own, NULL, m };
	json_t *res = NULL, *items, *members = NULL, *prev = NULL, *ids = NULL;
	json_t *pre = NULL;
	struct digester dg = { NULL, "" };
	char mgr[256];
	size_t ci, di;
	int rc = 0;

	if (o->prune && !o->applyset)
		return err_set(e, ERR_INVALID, "--prune needs --applyset NAME");
	if (o->applyset && !*o->applyset)
		return err_set(e, ERR_INVALID, "apply set name is empty");
	snprintf(mgr, sizeof(mgr), "%s%s", APPLY_MANAGER_PREFIX,
		 o->applyset ? o->applyset : APPLY_DEFAULT_SET);
	/* What a document's digest depends on besides the document: who
	 * applies it (ownership, the write hooks) and the schema it was
	 * normalised by. */
	snprintf(dg.salt, sizeof(dg.salt), "%s\n%s\n%d", mgr,
		 o->actor ? o->actor : "", store_schema_version(s));
	order = calloc(sc->ncollections, sizeof(*order));
	res = json_pack("{s:b,s:[],s:i,s:i,s:i,s:i}", "dryRun",
			o->dry_run || with_diff, "items", "created", 0,
			"configured", 0, "unchanged", 0, "pruned", 0);
	/* membership only matters to an apply set */
	members = o->applyset ? json_array() : NULL;
	ids = json_object();
	pb.failed = json_object();
	dg.h = jsonhash_new();
	if (!order || !res || (o->applyset && !members) || !ids ||
	    !pb.failed || !dg.h) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	items = json_object_get(res, "items");
	schema_topo_order(sc, order);
	rc = store_begin(s, &t, e);
	if (rc)
		goto out;
	/* The write hooks judge each document as a declaration by o->actor. */
	store_txn_set_actor(t, o->actor, STORE_ACTOR_DECLARES);
	apply_name_writer(t);
	if (load) {
		rc = load_known(t, &dg, load, load_arg, m, pb.errs, e);
		if (rc)
			goto out;
	}
	for (di = 0; di < m->n; di++) {
		/* Known documents are found inside this transaction only. */
		if (m->docs[di].known_id && !load) {
			rc = err_set(e, ERR_INTERNAL,
				     "apply: a known document outside apply_run_load()");
			goto out;
		}
		if (m->docs[di].coll->api_writable)
			continue;
		rc = readonly_doc(s, &pb, &m->docs[di], items, e);
		if (rc && !doc_problem(rc))
			goto out;
		rc = 0;
	}
	for (ci = 0; ci < sc->ncollections; ci++) {
		bool dig_any;
		size_t n = 0;

		/* (known documents need no ownership) */
		for (di = 0; di < m->n; di++)
			n += m->docs[di].coll == order[ci] &&
			     !m->docs[di].known_id;
		/* Many documents: one read of the collection's ownership
		 * instead of two lookups each, at the first document that
		 * is not unchanged (an unchanged re-apply reads none). Each
		 * record is written by one document only (manifest_load
		 * refuses duplicates), so what was read ahead stays true
		 * for the document that uses it. */
		json_decref(pre);
		pre = NULL;
		/* A collection of which no record has a digest (a first
		 * apply) can have no document unchanged: no lookup each.
		 * What this loop adds is for records no later document of
		 * it declares. */
		dig_any = false;
		if (n && !with_diff) {
			rc = store_txn_digest_any(t, order[ci]->name, &dig_any,
						  e);
			if (rc)
				goto out;
		}
		for (di = 0; di < m->n; di++) {
			if (m->docs[di].coll != order[ci] ||
			    !order[ci]->api_writable)
				continue;
			if (m->docs[di].known_id) {
				rc = add_unchanged(NULL, &m->docs[di],
						   m->docs[di].known_id, items,
						   members, e);
				if (rc)
					goto out;
				continue;
			}
			rc = apply_doc(sc, t, ids, &pb, &m->docs[di], &pre,
				       n >= APPLY_READ_AHEAD, mgr, &dg,
				       dig_any, o->keys, with_diff, items, members, e);
			if (rc && !doc_problem(rc))
				goto out;
			if (pb.errs->total >= ERR_LIST_MAX)
				goto checked;   /* enough for one pass */
		}
	}
checked:
	/* Any problem, here or in what the caller found before (a list
	 * given with errors in it): nothing is written, nothing pruned. */
	if (pb.errs->total) {
		err_list_sort(pb.errs);
		rc = err_list_summary(pb.errs, e);
		goto out;
	}
	rc = 0;
	if (o->applyset) {
		rc = applyset_get(t, o->applyset, &prev, e);
		if (rc)
			goto out;
		if (o->prune) {
			rc = prune(sc, t, o, prev, members, with_diff, items, e);
			if (rc)
				goto out;
		} else {
			/* Without prune, earlier members stay members. */
			rc = applyset_keep_earlier(t, prev, members, e);
			if (rc)
				goto out;
		}
		rc = applyset_put(t, o->applyset, members, e);
		if (rc)
			goto out;
	}
	for (di = 0; di < json_array_size(items); di++)
		count_action(res, json_string_value(json_object_get(
					  json_array_get(items, di), "action")));
	if (o->dry_run || with_diff) {
		store_abort(t);
	} else {
		rc = store_commit(t, e);
	}
	t = NULL;
	if (rc)
		goto out;
	json_object_set_new(res, "revision", json_integer(store_head(s)));
out:
	store_abort(t);
	if (rc)
		json_decref(res);
	else
		*result = res;
	json_decref(members);
	json_decref(prev);
	json_decref(ids);
	json_decref(pre);
	json_decref(pb.failed);
	jsonhash_free(dg.h);
	err_list_release(&own);
	free(order);
	return rc;
}

int apply_run(struct store *s, const struct manifest_set *m,
	      const struct apply_opts *o, json_t **result, struct err *e)
{
	/* run() changes m only when it loads it */
	return run(s, (struct manifest_set *)m, NULL, NULL, o, false, result,
		   e);
}

int apply_run_load(struct store *s, apply_load_fn *load, void *arg,
		   struct manifest_set *m, const struct apply_opts *o,
		   json_t **result, struct err *e)
{
	if (!load || !m)
		return err_set(e, ERR_INTERNAL, "apply_run_load: bad call");
	return run(s, m, load, arg, o, false, result, e);
}

int apply_load_paths(void *arg, const struct manifest_known *known,
		     struct manifest_set *m, struct err_list *errs,
		     struct err *e)
{
	struct apply_paths *p = arg;

	p->rc = manifest_load_known(p->schema, p->paths, p->npaths, known,
				    NULL, NULL, m, errs, e);
	return p->rc;
}

int apply_diff(struct store *s, const struct manifest_set *m,
	       const struct apply_opts *o, json_t **result, struct err *e)
{
	return run(s, (struct manifest_set *)m, NULL, NULL, o, true, result,
		   e);
}
