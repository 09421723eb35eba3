/*
 * test_pbjson.c - pb_record_json(): PocketBase's record shape and who sees
 * which field (hidden never, secrets to owner/admin, auth emails as
 * PocketBase shows them).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "server/pbjson.h"
#include "store/schema.h"
#include "store/store.h"
#include "testlib.h"

#define OWNER_ID "owneruser00001"
#define OTHER_ID "otheruser00002"
#define ADMIN_ID "adminuser00003"
#define SUPER_ID "superuser00004"

static struct schema *pbj_schema;

static void pbj_setup(void)
{
	pbj_schema = tl_schema();
}

static void pbj_teardown(void)
{
	schema_free(pbj_schema);
	pbj_schema = NULL;
}

/* A viewer; role may be NULL (no record). Free with pbj_viewer_free. */
static struct http_auth pbj_viewer(enum http_caller kind, const char *id,
				   const char *collection_id, const char *role)
{
	struct http_auth a;

	memset(&a, 0, sizeof(a));
	a.kind = kind;
	if (id)
		snprintf(a.id, sizeof(a.id), "%s", id);
	if (collection_id)
		snprintf(a.collection_id, sizeof(a.collection_id), "%s",
			 collection_id);
	if (kind != CALLER_GUEST)
		a.record = json_pack("{s:s, s:s}", "id", a.id, "role",
				     role ? role : "user");
	return a;
}

static void pbj_record(struct record *r, const char *coll, const char *id,
		       json_t *data)
{
	record_init(r);
	snprintf(r->collection, sizeof(r->collection), "%s", coll);
	snprintf(r->id, sizeof(r->id), "%s", id);
	snprintf(r->created, sizeof(r->created), "2026-01-02 03:04:05.678Z");
	snprintf(r->updated, sizeof(r->updated), "2026-01-02 03:04:06.000Z");
	r->data = data;   /* owned by the record from here */
	r->labels = json_object();
	r->status = json_object();
}

enum pbj_viewer_kind { V_GUEST, V_OWNER, V_OTHER, V_AGENT, V_ADMIN, V_SUPER };

static struct http_auth pbj_make(enum pbj_viewer_kind k)
{
	switch (k) {
	case V_OWNER: return pbj_viewer(CALLER_USER, OWNER_ID, "_pb_users_auth_", "user");
	case V_OTHER: return pbj_viewer(CALLER_USER, OTHER_ID, "_pb_users_auth_", "user");
	case V_AGENT: return pbj_viewer(CALLER_USER, OTHER_ID, "_pb_users_auth_", "agent");
	case V_ADMIN: return pbj_viewer(CALLER_USER, ADMIN_ID, "_pb_users_auth_", "admin");
	case V_SUPER: return pbj_viewer(CALLER_SUPERUSER, SUPER_ID, "pbc_3142635823", NULL);
	default: return pbj_viewer(CALLER_GUEST, NULL, NULL, NULL);
	}
}

TestSuite(pbjson, .init = pbj_setup, .fini = pbj_teardown);

Test(pbjson, shape_and_key_order)
{
	const struct collection *c = schema_find(pbj_schema, "llm_keys");
	static const char *first[] = { "id", "collectionId", "collectionName",
				       "created", "updated" };
	struct record r;
	json_t *out;
	void *it;
	size_t i;

	cr_assert_not_null(c);
	pbj_record(&r, "llm_keys", "abcdefghij12345",
		   json_pack("{s:s, s:{s:s}, s:s}", "provider_id", "openai",
			     "env_vars", "OPENAI_API_KEY", "sk-1", "user",
			     OWNER_ID));
	out = pb_record_json(pbj_schema, c, &r, NULL);
	cr_assert_not_null(out);
	it = json_object_iter(out);
	for (i = 0; i < 5; i++) {
		cr_assert_not_null(it);
		cr_assert_str_eq(json_object_iter_key(it), first[i]);
		it = json_object_iter_next(out, it);
	}
	cr_assert_str_eq(json_string_value(json_object_get(out, "id")),
			 "abcdefghij12345");
	cr_assert_str_eq(json_string_value(json_object_get(out, "collectionId")),
			 "pc_llm_keys");
	cr_assert_str_eq(json_string_value(json_object_get(out, "collectionName")),
			 "llm_keys");
	cr_assert_str_eq(json_string_value(json_object_get(out, "created")),
			 "2026-01-02 03:04:05.678Z");
	cr_assert_str_eq(json_string_value(json_object_get(out, "updated")),
			 "2026-01-02 03:04:06.000Z");
	cr_assert_str_eq(json_string_value(json_object_get(out, "provider_id")),
			 "openai");
	cr_assert_str_eq(json_string_value(json_object_get(out, "user")),
			 OWNER_ID);
	json_decref(out);
	record_release(&r);
}

struct pbj_secret_case {
	enum pbj_viewer_kind viewer;
	bool sees_secret;
};

Test(pbjson, secret_fields_only_to_owner_and_admins)
{
	static const struct pbj_secret_case cases[] = {
		{ V_GUEST, false }, { V_OTHER, false }, { V_AGENT, false },
		{ V_OWNER, true }, { V_ADMIN, true }, { V_SUPER, true },
	};
	const struct collection *c = schema_find(pbj_schema, "llm_keys");
	struct record r;
	size_t i;

	pbj_record(&r, "llm_keys", "abcdefghij12345",
		   json_pack("{s:s, s:{s:s}, s:s}", "provider_id", "openai",
			     "env_vars", "OPENAI_API_KEY", "sk-1", "user",
			     OWNER_ID));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_auth v = pbj_make(cases[i].viewer);
		json_t *out = pb_record_json(pbj_schema, c, &r,
					     cases[i].viewer == V_GUEST ? NULL : &v);

		cr_assert_not_null(out);
		cr_expect_eq(json_object_get(out, "env_vars") != NULL,
			     cases[i].sees_secret, "case %zu", i);
		/* non-secret fields are always there */
		cr_expect_not_null(json_object_get(out, "provider_id"));
		json_decref(out);
		json_decref(v.record);
	}
	record_release(&r);
}

struct pbj_email_case {
	enum pbj_viewer_kind viewer;
	bool visibility;
	bool sees_email;
};

Test(pbjson, auth_records_hide_password_token_key_and_email)
{
	static const struct pbj_email_case cases[] = {
		{ V_GUEST, false, false }, { V_OTHER, false, false },
		{ V_AGENT, false, false }, { V_OWNER, false, true },
		{ V_ADMIN, false, true }, { V_SUPER, false, true },
		{ V_GUEST, true, true }, { V_OTHER, true, true },
	};
	const struct collection *c = schema_find(pbj_schema, "users");
	size_t i;

	cr_assert_not_null(c);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_auth v = pbj_make(cases[i].viewer);
		struct record r;
		json_t *out;

		pbj_record(&r, "users", OWNER_ID,
			   json_pack("{s:s, s:b, s:b, s:s, s:s, s:s, s:s, s:s}",
				     "email", "o@example.com", "emailVisibility",
				     cases[i].visibility, "verified", 1,
				     "password", "$2b$04$abcdefghijklmnopqrstuv",
				     "tokenKey", "tk", "name", "Owner", "avatar", "",
				     "role", "user"));
		out = pb_record_json(pbj_schema, c, &r,
				     cases[i].viewer == V_GUEST ? NULL : &v);
		cr_assert_not_null(out);
		cr_expect_null(json_object_get(out, "password"), "case %zu", i);
		cr_expect_null(json_object_get(out, "tokenKey"), "case %zu", i);
		cr_expect_eq(json_object_get(out, "email") != NULL,
			     cases[i].sees_email, "case %zu", i);
		cr_expect_str_eq(json_string_value(json_object_get(out, "name")),
				 "Owner");
		cr_expect_str_eq(json_string_value(json_object_get(out, "collectionId")),
				 "_pb_users_auth_");
		json_decref(out);
		json_decref(v.record);
		record_release(&r);
	}
}

Test(pbjson, superuser_records_and_same_id_other_collection)
{
	const struct collection *c = schema_find(pbj_schema, "_superusers");
	struct http_auth v;
	struct record r;
	json_t *out;

	cr_assert_not_null(c);
	cr_assert(c->auth);
	cr_assert_str_eq(c->id, "pbc_3142635823");
	pbj_record(&r, "_superusers", OWNER_ID,
		   json_pack("{s:s, s:s, s:s}", "email", "root@example.com",
			     "password", "$2b$04$x", "tokenKey", "tk"));
	/* a users record with the same id is not the owner of a superuser */
	v = pbj_make(V_OWNER);
	out = pb_record_json(pbj_schema, c, &r, &v);
	cr_assert_not_null(out);
	cr_expect_null(json_object_get(out, "email"));
	cr_expect_null(json_object_get(out, "password"));
	cr_expect_null(json_object_get(out, "tokenKey"));
	json_decref(out);
	json_decref(v.record);
	/* the superuser itself sees its email */
	v = pbj_viewer(CALLER_SUPERUSER, OWNER_ID, "pbc_3142635823", NULL);
	out = pb_record_json(pbj_schema, c, &r, &v);
	cr_expect_str_eq(json_string_value(json_object_get(out, "email")),
			 "root@example.com");
	json_decref(out);
	json_decref(v.record);
	record_release(&r);
}

Test(pbjson, viewer_is_admin)
{
	struct http_auth v;

	cr_expect_not(pb_viewer_is_admin(NULL));
	v = pbj_make(V_GUEST);
	cr_expect_not(pb_viewer_is_admin(&v));
	v = pbj_make(V_OWNER);
	cr_expect_not(pb_viewer_is_admin(&v));
	json_decref(v.record);
	v = pbj_make(V_ADMIN);
	cr_expect(pb_viewer_is_admin(&v));
	json_decref(v.record);
	v = pbj_make(V_SUPER);
	cr_expect(pb_viewer_is_admin(&v));
	json_decref(v.record);
	/* a users record without a record JSON is not an admin */
	v = pbj_viewer(CALLER_USER, ADMIN_ID, "_pb_users_auth_", "admin");
	json_decref(v.record);
	v.record = NULL;
	cr_expect_not(pb_viewer_is_admin(&v));
}
