/*
 * test_secrets.c - unit tests for secrets.c: which fields are masked (the
 * schema's secret marks, null and absent values left alone), the mask's
 * shape, that it depends on the value, the field and the key but not on
 * key order, and that apply/diff results are masked on every side; and
 * the store's encryption at rest (store_seal.c): sealed in the file, open
 * through the API, a wrong or missing key refused at open; and masks
 * applied back (secrets_unmask()): the stored value only for its own mask
 * under the same key, any other refused naming the field, plain values and
 * fields that are not secret left alone.
 *
 * JSON in the tables is written with ' for " to stay readable; tl_json()
 * swaps them back.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "secrets.h"
#include "store/schema.h"
#include "testlib.h"

#define MASK_LEN (sizeof(SECRETS_MASK_PREFIX) - 1 + SECRETS_MASK_HEX)

/* The embedded schema, loaded for each test. */
static struct schema *sc;

static void suite_init(void)
{
	sc = tl_schema();
}

static void suite_fini(void)
{
	schema_free(sc);
	sc = NULL;
}

TestSuite(secrets, .init = suite_init, .fini = suite_fini);

static struct auth_keys key_of(unsigned char byte)
{
	struct auth_keys k;

	memset(k.secret, byte, sizeof(k.secret));
	return k;
}

static void assert_mask(const json_t *v)
{
	const char *s = json_string_value(v);
	size_t i;

	cr_assert(s, "the value is a string");
	cr_assert_eq(strlen(s), MASK_LEN, "mask '%s'", s);
	cr_assert(!strncmp(s, SECRETS_MASK_PREFIX, strlen(SECRETS_MASK_PREFIX)));
	for (i = strlen(SECRETS_MASK_PREFIX); s[i]; i++)
		cr_assert(strchr("0123456789abcdef", s[i]), "mask '%s'", s);
}

/* The schema marks what the issue names secret. */
Test(secrets, schema_marks)
{

	cr_assert(collection_field(schema_find(sc, "mcp_servers"), "config")->secret);
	cr_assert(collection_field(schema_find(sc, "llm_keys"), "env_vars")->secret);
	cr_assert(!collection_field(schema_find(sc, "mcp_servers"), "image")->secret);
}

/* Secret values masked; other fields, null and absent ones untouched. */
Test(secrets, mask_fields)
{
	const struct collection *c = schema_find(sc, "mcp_servers");
	struct auth_keys k = key_of(7);
	struct err e = ERR_INIT;
	json_t *d = tl_json("{'image': 'mcp/x', 'config': {'API_KEY': 'abc'}}");
	json_t *n = tl_json("{'image': 'mcp/x', 'config': null}");
	json_t *a = tl_json("{'image': 'mcp/x'}");

	cr_assert_eq(secrets_mask(&k, c, d, &e), 0, "%s", e.msg);
	assert_mask(json_object_get(d, "config"));
	cr_assert_str_eq(json_string_value(json_object_get(d, "image")), "mcp/x");
	cr_assert_eq(secrets_mask(&k, c, n, &e), 0);
	cr_assert(json_is_null(json_object_get(n, "config")));
	cr_assert_eq(secrets_mask(&k, c, a, &e), 0);
	cr_assert_eq(json_object_size(a), 1);
	cr_assert_eq(secrets_mask(&k, c, NULL, &e), 0);
	json_decref(d);
	json_decref(n);
	json_decref(a);
}

/* A json_copy's shared values are not changed in the original. */
Test(secrets, mask_leaves_the_original)
{
	const struct collection *c = schema_find(sc, "llm_keys");
	struct auth_keys k = key_of(7);
	struct err e = ERR_INIT;
	json_t *orig = tl_json("{'env_vars': {'KEY': 'v'}}");
	json_t *copy = json_copy(orig);

	cr_assert_eq(secrets_mask(&k, c, copy, &e), 0);
	assert_mask(json_object_get(copy, "env_vars"));
	cr_assert(json_is_object(json_object_get(orig, "env_vars")));
	json_decref(copy);
	json_decref(orig);
}

static const char *mask_of(const struct auth_keys *k, const char *coll,
			   const char *field, const char *value, char *out)
{
	struct err e = ERR_INIT;
	json_t *v = tl_json(value);

	cr_assert_eq(secrets_mask_value(k, coll, field, v, out, &e), 0, "%s",
		     e.msg);
	json_decref(v);
	return out;
}

/* Same value, field and key: same mask; change any one: another. Key
 * order in an object does not count. */
Test(secrets, mask_depends_on_value_field_key)
{
	struct auth_keys k1 = key_of(1), k2 = key_of(2);
	char a[MASK_LEN + 1], b[MASK_LEN + 1];
	json_t *s;

	cr_assert_str_eq(mask_of(&k1, "mcp_servers", "config", "{'a': 1, 'b': 2}", a),
			 mask_of(&k1, "mcp_servers", "config", "{'b': 2, 'a': 1}", b));
	cr_assert_str_neq(mask_of(&k1, "mcp_servers", "config", "{'a': 1}", a),
			  mask_of(&k1, "mcp_servers", "config", "{'a': 2}", b));
	cr_assert_str_neq(mask_of(&k1, "mcp_servers", "config", "{'a': 1}", a),
			  mask_of(&k2, "mcp_servers", "config", "{'a': 1}", b));
	cr_assert_str_neq(mask_of(&k1, "mcp_servers", "config", "{'a': 1}", a),
			  mask_of(&k1, "llm_keys", "env_vars", "{'a': 1}", b));
	/* A scalar is masked like an object. */
	s = json_string(mask_of(&k1, "llm_keys", "env_vars", "'x'", a));
	assert_mask(s);
	json_decref(s);
}

/* A diff result: the item, live and desired all masked; unknown
 * collections and items without documents are skipped. */
Test(secrets, mask_result)
{
	struct auth_keys k = key_of(3);
	struct err e = ERR_INIT;
	json_t *res = tl_json(
		"{'items': ["
		" {'collection': 'mcp_servers', 'name': 'gh',"
		"  'live': {'spec': {'config': {'K': 'old'}}},"
		"  'desired': {'spec': {'config': {'K': 'new'}}}},"
		" {'collection': 'nope', 'live': {'spec': {'config': 'x'}}},"
		" {'collection': 'llm_keys', 'action': 'created'}]}");
	json_t *items = json_object_get(res, "items");
	json_t *live, *desired;

	cr_assert_eq(secrets_mask_result(&k, sc, res, &e), 0, "%s", e.msg);
	live = json_object_get(json_object_get(json_array_get(items, 0), "live"), "spec");
	desired = json_object_get(json_object_get(json_array_get(items, 0), "desired"), "spec");
	assert_mask(json_object_get(live, "config"));
	assert_mask(json_object_get(desired, "config"));
	cr_assert_str_neq(json_string_value(json_object_get(live, "config")),
			  json_string_value(json_object_get(desired, "config")));
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(
		json_object_get(json_array_get(items, 1), "live"), "spec"), "config")), "x");
	json_decref(res);
}

/* ---- encrypted at rest (store_seal.c) ------------------------------------ */

/* The raw column text of one SQL query on DIR/pocket.db; caller frees. */
static char *raw_text(const char *dir, const char *sql)
{
	char path[600];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char *out = NULL;

	snprintf(path, sizeof(path), "%s/pocket.db", dir);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s",
		     sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		out = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return out;
}

/* A secret goes in sealed (record and change log) and comes out open, in
 * get, list and the change log; other fields stay readable in the file. */
Test(secrets, sealed_at_rest)
{
	char dir[512], id[ID_LEN + 1];
	struct store *s = NULL;
	struct record r;
	struct err e = ERR_INIT;
	char *raw;

	tl_mkdtemp(dir, sizeof(dir), "seal");
	s = tl_store_open(sc, dir, 0);
	tl_create(s, "mcp_servers",
		  "{'name': 'gh', 'image': 'mcp/gh', 'config': {'K': 'pLaIn-42'}}", id);
	raw = raw_text(dir, "SELECT data FROM records WHERE collection = 'mcp_servers'");
	cr_assert(raw && !strstr(raw, "pLaIn-42") && strstr(raw, "\"enc:v1:"), "%s", raw);
	cr_assert(strstr(raw, "mcp/gh"));
	free(raw);
	raw = raw_text(dir, "SELECT record FROM changelog WHERE collection = 'mcp_servers'");
	cr_assert(raw && !strstr(raw, "pLaIn-42") && strstr(raw, "\"enc:v1:"), "%s", raw);
	free(raw);
	record_init(&r);
	cr_assert_eq(store_get(s, "mcp_servers", id, &r, &e), 0, "%s", e.msg);
	cr_assert_str_eq(json_string_value(json_object_get(
		json_object_get(r.data, "config"), "K")), "pLaIn-42");
	record_release(&r);
	store_close(s);
	tl_rmtree(dir);
}

/* Another key does not open the store: refused at open, naming the key
 * file; so is a missing one; the right one opens it again. */
Test(secrets, wrong_or_missing_key_refused)
{
	char dir[512], key[600], good[32], bad[32];
	struct store *s = NULL;
	struct store_options o = { .dir = NULL };
	struct err e = ERR_INIT;
	FILE *f;

	tl_mkdtemp(dir, sizeof(dir), "sealkey");
	s = tl_store_open(sc, dir, 0);
	tl_create(s, "mcp_servers", "{'name': 'x', 'image': 'i', 'config': {'K': 'v'}}", NULL);
	store_close(s);
	s = NULL;
	snprintf(key, sizeof(key), "%s/secret.key", dir);
	f = fopen(key, "r+");
	cr_assert(f && fread(good, 1, 32, f) == 32);
	memcpy(bad, good, 32);
	bad[0] ^= 1;
	rewind(f);
	cr_assert_eq(fwrite(bad, 1, 32, f), 32);
	fclose(f);
	o.dir = dir;
	cr_assert_neq(store_open(&s, sc, &o, &e), 0);
	cr_assert(strstr(e.msg, key) && strstr(e.msg, "does not decrypt"), "%s", e.msg);
	cr_assert_eq(unlink(key), 0);
	e = (struct err)ERR_INIT;
	cr_assert_neq(store_open(&s, sc, &o, &e), 0);
	cr_assert(strstr(e.msg, key) && strstr(e.msg, "missing"), "%s", e.msg);
	cr_assert_eq(access(key, F_OK), -1, "no new key was written");
	f = fopen(key, "w");
	cr_assert(f && fwrite(good, 1, 32, f) == 32);
	fclose(f);
	cr_assert_eq(chmod(key, 0600), 0);
	e = (struct err)ERR_INIT;
	cr_assert_eq(store_open(&s, sc, &o, &e), 0, "%s", e.msg);
	store_close(s);
	tl_rmtree(dir);
}

/* ---- secrets_unmask(): a mask applied back -------------------------- */

/* The mask of stored's config under k. */
static json_t *masked_config(const struct auth_keys *k, json_t *stored)
{
	char mask[sizeof(SECRETS_MASK_PREFIX) + SECRETS_MASK_HEX];
	struct err e = ERR_INIT;

	cr_assert_eq(secrets_mask_value(k, "mcp_servers", "config",
					json_object_get(stored, "config"),
					mask, &e), 0, "%s", e.msg);
	return json_pack("{s:s, s:s}", "config", mask, "image", "mcp/x");
}

Test(secrets, unmask_a_matching_mask_becomes_the_stored_value)
{
	const struct collection *c = schema_find(sc, "mcp_servers");
	struct auth_keys k = key_of(7);
	json_t *stored = tl_json("{'config': {'API_KEY': 's3cret'}, 'image': 'old'}");
	json_t *fields = masked_config(&k, stored);
	struct err e = ERR_INIT;

	cr_assert(secrets_has_mask(c, fields));
	cr_assert_eq(secrets_unmask(&k, c, fields, stored, &e), 0, "%s", e.msg);
	cr_assert(json_equal(json_object_get(fields, "config"),
			     json_object_get(stored, "config")));
	/* Not a secret field: left as given. */
	cr_assert_str_eq(json_string_value(json_object_get(fields, "image")),
			 "mcp/x");
	cr_assert(!secrets_has_mask(c, fields));
	json_decref(stored);
	json_decref(fields);
}

struct refusal {
	const char *stored;       /* the stored data, or NULL */
	unsigned char key;        /* the key the mask was made with */
	bool no_key;              /* secrets_unmask() without a key */
	const char *says;
};

Test(secrets, unmask_wrong_masks_are_refused_naming_the_field)
{
	static const struct refusal cases[] = {
		/* the value changed since the mask was taken */
		{ "{'config': {'API_KEY': 'other'}}", 7, false, "does not match the stored value" },
		/* masked under another installation's key */
		{ "{'config': {'API_KEY': 's3cret'}}", 9, false, "does not match the stored value" },
		/* nothing stored (a new record, or the field unset) */
		{ NULL, 7, false, "no value is stored" },
		{ "{'config': null}", 7, false, "no value is stored" },
		/* no key to check with */
		{ "{'config': {'API_KEY': 's3cret'}}", 7, true, "no key to check it" },
	};
	const struct collection *c = schema_find(sc, "mcp_servers");
	struct auth_keys mine = key_of(7);
	json_t *orig = tl_json("{'config': {'API_KEY': 's3cret'}}");
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct auth_keys k = key_of(cases[i].key);
		json_t *fields = masked_config(&k, orig);
		json_t *stored = cases[i].stored ? tl_json(cases[i].stored) : NULL;
		struct err e = ERR_INIT;

		cr_assert_eq(secrets_unmask(cases[i].no_key ? NULL : &mine, c,
					    fields, stored, &e),
			     ERR_INVALID, "case %zu", i);
		cr_assert_str_eq(e.field, "config", "case %zu", i);
		cr_assert(strstr(e.msg, cases[i].says), "case %zu: %s", i, e.msg);
		cr_assert(strstr(e.msg, SECRETS_MASK_PREFIX), "case %zu", i);
		json_decref(fields);
		json_decref(stored);
	}
	json_decref(orig);
}

Test(secrets, unmask_plain_values_and_other_fields_are_left_alone)
{
	const struct collection *c = schema_find(sc, "mcp_servers");
	struct auth_keys k = key_of(7);
	/* A plain secret, and a mask in a field that is not secret. */
	json_t *fields = tl_json("{'config': {'API_KEY': 'new'}, 'image': '***hmac:00000000'}");
	json_t *copy = json_deep_copy(fields);
	struct err e = ERR_INIT;

	cr_assert(!secrets_has_mask(c, fields));
	cr_assert_eq(secrets_unmask(&k, c, fields, NULL, &e), 0, "%s", e.msg);
	cr_assert(json_equal(fields, copy));
	cr_assert_eq(secrets_unmask(&k, c, NULL, NULL, &e), 0);
	json_decref(fields);
	json_decref(copy);
}
