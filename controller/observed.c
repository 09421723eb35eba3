/*
 * observed.c - observedGeneration at read time (see observed.h): the
 * floors of the collections, from the reconcilers' observedRevision, and
 * the records whose data changed after a floor, from the change log.
 */
#include "observed.h"

#include <stdlib.h>
#include <string.h>

#include "protocol.h"

struct obs_coll {
	char name[64];
	int64_t floor;
	bool walked;             /* ids holds the data changes after floor */
	bool overflow;           /* too many rows to walk: all pending */
	json_t *ids;             /* id -> true */
};

struct observed {
	struct store *store;
	struct obs_coll *c;
	size_t n, alloc;
};

struct observed *observed_new(struct store *store)
{
	struct observed *o = calloc(1, sizeof(*o));

	if (o)
		o->store = store;
	return o;
}

void observed_free(struct observed *o)
{
	size_t i;

	if (!o)
		return;
	for (i = 0; i < o->n; i++)
		json_decref(o->c[i].ids);
	free(o->c);
	free(o);
}

static struct obs_coll *find(struct observed *o, const char *name)
{
	size_t i;

	for (i = 0; name && i < o->n; i++)
		if (!strcmp(o->c[i].name, name))
			return &o->c[i];
	return NULL;
}

int observed_add(struct observed *o, const char *const *reads, int64_t rev,
		 struct err *e)
{
	struct obs_coll *c, *grown;
	size_t i;

	for (i = 0; reads && reads[i]; i++) {
		if (reads[i][0] == '@' || strlen(reads[i]) >= sizeof(c->name))
			continue;
		c = find(o, reads[i]);
		if (c) {
			if (rev < c->floor)
				c->floor = rev;
			continue;
		}
		if (o->n == o->alloc) {
			grown = realloc(o->c, (o->alloc ? o->alloc * 2 : 16) *
					      sizeof(*grown));
			if (!grown)
				return err_set(e, ERR_NOMEM, "out of memory");
			o->c = grown;
			o->alloc = o->alloc ? o->alloc * 2 : 16;
		}
		c = &o->c[o->n++];
		memset(c, 0, sizeof(*c));
		strcpy(c->name, reads[i]);
		c->floor = rev;
	}
	return 0;
}

#define READS_MAX 64

static int load_one(const struct record *r, void *arg)
{
	struct observed *o = arg;
	const char *reads[READS_MAX + 1];
	json_t *arr = json_object_get(r->data, "reads"), *v;
	size_t i, n = 0;
	struct err e = ERR_INIT;

	json_array_foreach(arr, i, v)
		if (json_is_string(v) && n < READS_MAX)
			reads[n++] = json_string_value(v);
	reads[n] = NULL;
	return observed_add(o, reads, json_integer_value(json_object_get(
		r->status, "observedRevision")), &e);
}

int observed_load(struct observed *o, struct err *e)
{
	int rc = store_list(o->store, PROTO_STATUS_COLLECTION, NULL, load_one,
			    o, e);

	if (rc == ERR_NOMEM && !e->msg[0])    /* from load_one: e not set */
		err_set(e, ERR_NOMEM, "out of memory");
	return rc;
}

struct walk {
	struct obs_coll *c;
	int64_t n;
};

static int walk_one(const struct store_change *ch, void *arg)
{
	struct walk *w = arg;

	w->n++;
	if (ch->status_only || strcmp(ch->collection, w->c->name) ||
	    !strcmp(ch->action, "delete"))
		return 0;
	return json_object_set_new(w->c->ids, ch->id, json_true()) ?
	       ERR_NOMEM : 0;
}

/* The ids of c whose data changed after its floor, once. */
static void walk_changes(struct observed *o, struct obs_coll *c)
{
	struct walk w = { c, 0 };
	struct err e = ERR_INIT;

	c->walked = true;
	c->ids = json_object();
	if (!c->ids ||
	    store_changelog_oldest(o->store) > c->floor + 1 ||
	    store_change_keys(o->store, c->floor, OBSERVED_SCAN_MAX + 1,
			      walk_one, &w, &e) ||
	    w.n > OBSERVED_SCAN_MAX)
		c->overflow = true;
}

int64_t observed_generation(struct observed *o, const char *collection,
			    const char *id, int64_t generation,
			    int64_t revision, bool data_change)
{
	struct obs_coll *c = find(o, collection);

	if (!c)
		return 0;
	if (revision <= c->floor)
		return generation;
	if (!data_change) {
		if (!c->walked)
			walk_changes(o, c);
		if (!c->overflow && id && !json_object_get(c->ids, id))
			return generation;
	}
	return generation > 0 ? generation - 1 : 0;
}

int observed_set(struct observed *o, json_t *rec, bool data_change,
		 struct err *e)
{
	json_t *st = json_object_get(rec, "status");
	int64_t og;

	og = observed_generation(o,
		json_string_value(json_object_get(rec, "collection")),
		json_string_value(json_object_get(rec, "id")),
		json_integer_value(json_object_get(rec, "generation")),
		json_integer_value(json_object_get(rec, "revision")),
		data_change);
	st = json_is_object(st) ? json_copy(st) : json_object();
	if (!st || json_object_set_new(rec, "status", st)) /* st stolen */
		return err_set(e, ERR_NOMEM, "out of memory");
	json_object_del(st, "observedGenerations");
	if (!og) {
		json_object_del(st, "observedGeneration");
		return 0;
	}
	if (json_object_set_new(st, "observedGeneration", json_integer(og)))
		return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
}
