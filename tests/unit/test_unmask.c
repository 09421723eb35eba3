/*
 * test_unmask.c - unit tests for secrets_unmask() and secrets_has_mask():
 * a mask applied back stands for the stored value only when it is that
 * value's mask under the same key; a wrong mask, a mask with nothing
 * stored, or no key, is refused naming the field; fields that are not
 * secret, and values that are not masks, are never touched.
 *
 * JSON in the tables is written with ' for " to stay readable; tl_json()
 * swaps them back.
 */
#include <criterion/criterion.h>

#include <string.h>

#include <jansson.h>

#include "secrets.h"
#include "store/schema.h"
#include "testlib.h"

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

TestSuite(unmask, .init = suite_init, .fini = suite_fini);

static struct auth_keys key_of(unsigned char byte)
{
	struct auth_keys k;

	memset(k.secret, byte, sizeof(k.secret));
	return k;
}

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

Test(unmask, a_matching_mask_becomes_the_stored_value)
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

Test(unmask, wrong_masks_are_refused_naming_the_field)
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

Test(unmask, plain_values_and_other_fields_are_left_alone)
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
