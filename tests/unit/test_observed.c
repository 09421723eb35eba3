/*
 * test_observed.c - observedGeneration computed at read time (observed.h)
 * on a real store with the product schema: the floor of a collection is
 * the smallest observedRevision of the reconcile_status records that read
 * it; a record at or below it, or changed since only in its status, is
 * observed; a newer data change reads generation - 1; a record created
 * after the floor, or of a collection nobody reads, has no value.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "observed.h"
#include "store/schema.h"
#include "store/store.h"
#include "testlib.h"

static char dir[256];
static struct schema *sc;
static struct store *st;

static void setup(void)
{
	tl_store_setup(dir, sizeof(dir), "observed", NULL, 0, &sc, &st);
}

static void teardown(void)
{
	tl_store_teardown(dir, &sc, &st);
}

static void set_status(const char *coll, const char *id, json_t *status)
{
	struct store_txn *t = NULL;
	struct err e = ERR_INIT;

	cr_assert_eq(store_begin(st, &t, &e), 0, "%s", e.msg);
	cr_assert_eq(store_txn_set_status(t, coll, id, status, &e), 0, "%s",
		     e.msg);
	cr_assert_eq(store_commit(t, &e), 0, "%s", e.msg);
	json_decref(status);
}

/* A reconcile_status record named name reading reads (JSON text, ' for
 * ") that has observed everything up to rev. */
static void reconciler(const char *name, const char *reads, int64_t rev)
{
	char text[512], id[ID_LEN + 1] = "";

	snprintf(text, sizeof(text), "{'name': '%s', 'reads': %s}", name,
		 reads);
	tl_upsert(st, "reconcile_status", text, id);
	set_status("reconcile_status", id,
		   json_pack("{s:I}", "observedRevision", (json_int_t)rev));
}

static void model(const char *name, const char *ident, char *id)
{
	char text[256];

	snprintf(text, sizeof(text), "{'name': '%s', 'identifier': '%s'}",
		 name, ident);
	tl_upsert(st, "ai_models", text, id);
}

/* The observedGeneration a read shows for record id of coll: -1 when the
 * key is absent. */
static int64_t shown(const char *coll, const char *id)
{
	struct observed *o = observed_new(st);
	struct record r;
	json_t *j, *v, *before;
	int64_t og;

	record_init(&r);
	cr_assert(o);
	cr_assert_eq(observed_load(o, NULL), 0);
	cr_assert_eq(store_get(st, coll, id, &r, NULL), 0);
	j = record_to_json(&r);
	before = json_deep_copy(r.status);
	cr_assert(j && before);
	cr_assert_eq(observed_set(o, j, false, NULL), 0);
	v = json_object_get(json_object_get(j, "status"), "observedGeneration");
	og = v ? json_integer_value(v) : -1;
	/* The record itself is left as it was. */
	cr_expect(json_equal(before, r.status));
	json_decref(before);
	json_decref(j);
	record_release(&r);
	observed_free(o);
	return og;
}

TestSuite(observed, .init = setup, .fini = teardown);

Test(observed, nobody_reads_the_collection)
{
	char id[ID_LEN + 1] = "";

	model("m", "p/m", id);
	cr_expect_eq(shown("ai_models", id), -1);
}

Test(observed, at_or_below_the_floor_is_observed)
{
	char id[ID_LEN + 1] = "";

	model("m", "p/m", id);
	model("m", "p/m2", id);
	reconciler("r1", "['ai_models', '@files']", store_head(st));
	cr_expect_eq(shown("ai_models", id), 2);
}

Test(observed, a_newer_data_change_is_pending)
{
	char id[ID_LEN + 1] = "", id2[ID_LEN + 1] = "";

	model("m", "p/m", id);
	reconciler("r1", "['ai_models']", store_head(st));
	model("m", "p/m2", id);
	model("n", "p/n", id2);
	cr_expect_eq(shown("ai_models", id), 1);
	/* Created after the floor: nothing observed yet. */
	cr_expect_eq(shown("ai_models", id2), -1);
	reconciler("r1", "['ai_models']", store_head(st));
	cr_expect_eq(shown("ai_models", id), 2);
	cr_expect_eq(shown("ai_models", id2), 1);
}

Test(observed, a_status_write_is_no_data_change)
{
	char id[ID_LEN + 1] = "";

	model("m", "p/m", id);
	reconciler("r1", "['ai_models']", store_head(st));
	set_status("ai_models", id, json_pack("{s:s}", "note", "x"));
	cr_expect_eq(shown("ai_models", id), 1);
}

Test(observed, the_slowest_reader_decides)
{
	char id[ID_LEN + 1] = "";
	int64_t before;

	model("m", "p/m", id);
	before = store_head(st);
	model("m", "p/m2", id);
	reconciler("fast", "['ai_models']", store_head(st));
	reconciler("slow", "['ai_agents', 'ai_models']", before);
	cr_expect_eq(shown("ai_models", id), 1);
	reconciler("slow", "['ai_agents', 'ai_models']", store_head(st));
	cr_expect_eq(shown("ai_models", id), 2);
}

Test(observed, a_stored_value_is_replaced)
{
	char id[ID_LEN + 1] = "";

	model("m", "p/m", id);
	/* What an older binary wrote into the record. */
	set_status("ai_models", id, json_pack("{s:i, s:{s:i}}",
		   "observedGeneration", 7, "observedGenerations", "x", 7));
	cr_expect_eq(shown("ai_models", id), -1);
	reconciler("r1", "['ai_models']", store_head(st));
	cr_expect_eq(shown("ai_models", id), 1);
}

Test(observed, without_a_store_walk_when_the_change_is_known)
{
	struct observed *o = observed_new(st);
	const char *reads[] = { "ai_models", NULL };

	cr_assert(o);
	cr_assert_eq(observed_add(o, reads, 10, NULL), 0);
	cr_expect_eq(observed_generation(o, "ai_models", "x", 3, 10, true), 3);
	cr_expect_eq(observed_generation(o, "ai_models", "x", 3, 11, true), 2);
	cr_expect_eq(observed_generation(o, "ai_models", "x", 1, 11, true), 0);
	cr_expect_eq(observed_generation(o, "ai_agents", "x", 3, 1, true), 0);
	observed_free(o);
}
