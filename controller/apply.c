/*
 * apply.c - make the store match a set of manifests (see apply.h).
 *
 * Every apply, dry run and diff runs inside one store transaction: the
 * documents are written in relation order (targets first) so that names can
 * be resolved against records created by the same apply, and a dry run or
 * diff simply aborts at the end. That gives the three commands exactly the
 * same validation and the same answers.
 */
#include "apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "applyset.h"
#include "secrets.h"
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

		if (f->hidden || is_zero(v))
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

/* Prefix e with the position of field in document d. */
static int at_doc(const struct manifest_doc *d, const char *field,
		  struct err *e)
{
	char where[512];
	char path[ERR_FIELD_MAX];

	manifest_doc_where(d, field && *field ? field : NULL, where,
			   sizeof(where));
	if (field && *field) {
		snprintf(path, sizeof(path), "spec.%.*s",
			 (int)sizeof(path) - 6, field);
		snprintf(e->field, sizeof(e->field), "%s", path);
		return err_prefix(e, "%s: %s: ", where, path);
	}
	return err_prefix(e, "%s: ", where);
}

/*
 * The ids of records by collection and name, as this apply has seen or
 * written them: relation names resolve without another store lookup. Only
 * valid inside one transaction.
 */
static const char *id_cache_get(json_t *ids, const char *coll,
				const char *name)
{
	char key[512];

	snprintf(key, sizeof(key), "%s\x1f%s", coll, name);
	return json_string_value(json_object_get(ids, key));
}

static void id_cache_put(json_t *ids, const char *coll, const char *name,
			 const char *id)
{
	char key[512];

	snprintf(key, sizeof(key), "%s\x1f%s", coll, name);
	json_object_set_new(ids, key, json_string(id));
}

/*
 * Turn a document's spec into record data: relation names resolved to ids
 * (a value that is already an existing record's id is accepted too), the
 * name field filled from metadata.name. Caller owns *out.
 */
static int doc_data(struct store_txn *t, json_t *ids,
		    const struct manifest_doc *d, json_t **out, struct err *e)
{
	const struct collection *c = d->coll;
	json_t *data = NULL;
	size_t i;
	int rc = 0;

	data = json_deep_copy(d->spec);
	if (!data)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (c->name_field) {
		json_t *n = json_object_get(data, c->name_field);

		if (n && (!json_is_string(n) ||
			  strcmp(json_string_value(n), d->name))) {
			rc = err_set_field(e, ERR_INVALID, c->name_field,
					   "must equal metadata.name '%s' (or be left out)",
					   d->name);
			goto out;
		}
		json_object_set_new(data, c->name_field, json_string(d->name));
	}
	for (i = 0; i < c->nfields; i++) {
		const struct field *f = &c->fields[i];
		json_t *v = json_object_get(data, f->name);
		struct record r;
		const char *ref, *cached;

		if (f->type == FT_PASSWORD && v && !json_is_null(v)) {
			rc = err_set_field(e, ERR_INVALID, f->name,
					   "passwords cannot be set from manifests; set them through the API");
			goto out;
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
		if (rc == ERR_NOT_FOUND) {
			record_release(&r);
			rc = err_set_field(e, ERR_INVALID, f->name,
					   "no %s record named '%s'", f->target,
					   ref);
			goto out;
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
	if (rc)
		json_decref(data);
	else
		*out = data;
	return rc;
}

static json_t *member(const char *collection, const char *id)
{
	return json_pack("{s:s,s:s}", "collection", collection, "id", id);
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
	return json_pack("{s:s,s:s,s:s,s:s,s:s}", "kind", c->kind,
			 "collection", c->name, "name", name, "id", id,
			 "action", action);
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

/* Apply one document inside t as manager mgr, appending its item to
 * items. pre: the ownership of d's collection by record name, when it was
 * read ahead (NULL: look the record's up). */
static int apply_doc(const struct schema *sc, struct store_txn *t,
		     json_t *ids, const struct manifest_doc *d, json_t *pre,
		     const char *mgr, const struct auth_keys *keys,
		     bool with_diff, json_t *items, json_t *members,
		     struct err *e)
{
	struct lookup l = { NULL, t };
	struct store_put p;
	struct record before, after;
	enum store_action act = STORE_UNCHANGED;
	json_t *data = NULL, *item = NULL, *live = NULL, *desired = NULL;
	json_t *owners = NULL, *next = NULL, *took = NULL;
	const char *action;
	bool foreign;
	int rc, existed;

	record_init(&before);
	record_init(&after);
	rc = doc_data(t, ids, d, &data, e);
	if (!rc)
		rc = unmask_doc(t, keys, d, data, e);
	if (!rc)
		rc = auth_exists(t, d, e);
	if (rc) {
		at_doc(d, e->field, e);
		goto out;
	}
	/* Who owns the record's fields (from pre: shared, never modified);
	 * the record as it was only when a diff shows it or a field may be
	 * taken back from another manager (one lookup less per document of
	 * an unchanged re-apply). */
	owners = pre ? json_incref(json_object_get(pre, d->name)) : NULL;
	rc = pre ? 0 : store_txn_owners_find(t, d->coll->name, d->name,
					     &owners, e);
	if (!rc && !owners)
		owners = json_object();
	if (!rc && !owners)
		rc = err_set(e, ERR_NOMEM, "out of memory");
	if (rc) {
		at_doc(d, NULL, e);
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
		at_doc(d, e->field, e);
		goto out;
	}
	id_cache_put(ids, after.collection, after.name, after.id);
	took = json_array();
	if (!took || next_owners(d, owners, existed ? &before : NULL, &after,
				 mgr, took, &next)) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if (next) {
		rc = store_txn_owners_put(t, after.collection, after.id, next,
					  e);
		if (rc) {
			at_doc(d, NULL, e);
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
	json_array_append_new(members, member(after.collection, after.id));
out:
	json_decref(item);
	json_decref(live);
	json_decref(desired);
	json_decref(data);
	json_decref(owners);
	json_decref(next);
	json_decref(took);
	record_release(&before);
	record_release(&after);
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
static int readonly_doc(struct store *s, const struct manifest_doc *d,
			json_t *items, struct err *e)
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
			rc = e->code ? e->code : ERR_NOMEM;
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
	rc = at_doc(d, NULL, e);
out:
	json_decref(doc);
	record_release(&r);
	return rc;
}

/* Documents of one collection from which run() reads the collection's
 * ownership ahead. */
#define APPLY_READ_AHEAD 64

static int run(struct store *s, const struct manifest_set *m,
	       const struct apply_opts *o, bool with_diff, json_t **result,
	       struct err *e)
{
	const struct schema *sc = store_schema(s);
	const struct collection **order = NULL;
	struct store_txn *t = NULL;
	json_t *res = NULL, *items, *members = NULL, *prev = NULL, *ids = NULL;
	json_t *pre = NULL;
	char mgr[256];
	size_t ci, di;
	int rc = 0;

	if (o->prune && !o->applyset)
		return err_set(e, ERR_INVALID, "--prune needs --applyset NAME");
	if (o->applyset && !*o->applyset)
		return err_set(e, ERR_INVALID, "apply set name is empty");
	snprintf(mgr, sizeof(mgr), "%s%s", APPLY_MANAGER_PREFIX,
		 o->applyset ? o->applyset : APPLY_DEFAULT_SET);
	order = calloc(sc->ncollections, sizeof(*order));
	res = json_pack("{s:b,s:[],s:i,s:i,s:i,s:i}", "dryRun",
			o->dry_run || with_diff, "items", "created", 0,
			"configured", 0, "unchanged", 0, "pruned", 0);
	members = json_array();
	ids = json_object();
	if (!order || !res || !members || !ids) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	items = json_object_get(res, "items");
	for (di = 0; di < m->n; di++) {
		if (m->docs[di].coll->api_writable)
			continue;
		rc = readonly_doc(s, &m->docs[di], items, e);
		if (rc)
			goto out;
	}
	schema_topo_order(sc, order);
	rc = store_begin(s, &t, e);
	if (rc)
		goto out;
	/* The write hooks judge each document as a declaration by o->actor. */
	store_txn_set_actor(t, o->actor, STORE_ACTOR_DECLARES);
	for (ci = 0; ci < sc->ncollections; ci++) {
		size_t n = 0;

		for (di = 0; di < m->n; di++)
			n += m->docs[di].coll == order[ci];
		/* Many documents: one read of the collection's ownership
		 * instead of two lookups each. Each record is written by one
		 * document only (manifest_load refuses duplicates), so what
		 * was read ahead stays true for the document that uses it. */
		json_decref(pre);
		pre = NULL;
		if (n >= APPLY_READ_AHEAD) {
			rc = store_txn_owners_list(t, order[ci]->name, &pre, e);
			if (rc)
				goto out;
		}
		for (di = 0; di < m->n; di++) {
			if (m->docs[di].coll != order[ci] ||
			    !order[ci]->api_writable)
				continue;
			rc = apply_doc(sc, t, ids, &m->docs[di], pre, mgr,
				       o->keys, with_diff, items, members, e);
			if (rc)
				goto out;
		}
	}
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
	free(order);
	return rc;
}

int apply_run(struct store *s, const struct manifest_set *m,
	      const struct apply_opts *o, json_t **result, struct err *e)
{
	return run(s, m, o, false, result, e);
}

int apply_diff(struct store *s, const struct manifest_set *m,
	       const struct apply_opts *o, json_t **result, struct err *e)
{
	return run(s, m, o, true, result, e);
}
