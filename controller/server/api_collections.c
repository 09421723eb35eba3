/*
 * api_collections.c - the collections as PocketBase describes them (see
 * api_collections.h). Everything comes from struct collection: a field's
 * PocketBase type and options from its schema type, a field id from a
 * hash of "collection.field" (stable across starts and builds, in the
 * "<type><digits>" form PocketBase's ids have), indexes rendered as the
 * statements PocketBase lists.
 */
#include "api_collections.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "api_auth.h"
#include "buf.h"
#include "pick.h"
#include "server.h"

#define PER_PAGE_DEFAULT 30
#define PER_PAGE_MAX 500
#define ID_PATTERN "^[a-z0-9]+$"
#define ID_AUTOGENERATE "[a-z0-9]{15}"
#define QUERY_MAX 1024
#define SUPERUSERS "_superusers"

static const char *const rule_keys[RULE__COUNT] = {
	"listRule", "viewRule", "createRule", "updateRule", "deleteRule",
};

/* "<type><digits>": the first 4 bytes of SHA-256("collection.field"). */
static void field_id(const struct collection *c, const char *field,
		     const char *type, char *out, size_t n)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char key[256];
	unsigned long v = 0;

	snprintf(key, sizeof(key), "%s.%s", c->name, field);
	if (EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL) &&
	    mdlen >= 4)
		v = (unsigned long)md[0] << 24 | (unsigned long)md[1] << 16 |
		    (unsigned long)md[2] << 8 | md[3];
	snprintf(out, n, "%s%lu", type, v);
}

/* The common keys of a field: id, name, type, system, hidden,
 * presentable, required. NULL on allocation failure. */
static json_t *field_base(const struct collection *c, const char *name,
			  const char *type, bool system, bool hidden,
			  bool required)
{
	char id[96];

	field_id(c, name, type, id, sizeof(id));
	return json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:b}", "id", id,
			 "name", name, "type", type, "system", system,
			 "hidden", hidden, "presentable", false, "required",
			 required);
}

static const char *pb_type(enum field_type t)
{
	switch (t) {
	case FT_TEXT: return "text";
	case FT_NUMBER: return "number";
	case FT_BOOL: return "bool";
	case FT_SELECT: return "select";
	case FT_JSON: return "json";
	case FT_DATE: return "date";
	case FT_RELATION: return "relation";
	case FT_EMAIL: return "email";
	case FT_PASSWORD: return "password";
	}
	return "text";
}

/* The auth collection fields PocketBase itself defines (system there). */
static bool auth_builtin(const char *name)
{
	static const char *const names[] = {
		"email", "emailVisibility", "verified", "password", "tokenKey",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

/* A number bound: the value, or null. json_real() is a new reference. */
static json_t *bound(bool has, double v)
{
	return has ? json_real(v) : json_null();
}

static json_t *field_json(const struct schema *s, const struct collection *c,
			  const struct field *f)
{
	const char *type = pb_type(f->type);
	const struct collection *target;
	json_t *o, *values;
	size_t i;
	int rc = 0;

	o = field_base(c, f->name, type, c->auth && auth_builtin(f->name),
		       f->hidden || f->type == FT_PASSWORD, f->required);
	if (!o)
		return NULL;
	/* every json_object_set_new() below steals its new value */
	switch (f->type) {
	case FT_TEXT:
		rc |= json_object_set_new(o, "min", json_integer(0));
		rc |= json_object_set_new(o, "max",
					  json_integer((json_int_t)f->max_size));
		rc |= json_object_set_new(o, "pattern", json_string(""));
		rc |= json_object_set_new(o, "autogeneratePattern",
					  json_string(""));
		rc |= json_object_set_new(o, "primaryKey", json_false());
		break;
	case FT_NUMBER:
		rc |= json_object_set_new(o, "min", bound(f->has_min, f->min));
		rc |= json_object_set_new(o, "max", bound(f->has_max, f->max));
		rc |= json_object_set_new(o, "onlyInt",
					  json_boolean(f->only_int));
		break;
	case FT_SELECT:
		values = json_array();
		for (i = 0; values && i < f->nvalues; i++)
			rc |= json_array_append_new(values,
						    json_string(f->values[i]));
		rc |= json_object_set_new(o, "values", values);
		rc |= json_object_set_new(o, "maxSelect", json_integer(1));
		break;
	case FT_JSON:
		rc |= json_object_set_new(o, "maxSize",
					  json_integer((json_int_t)f->max_size));
		break;
	case FT_DATE:
		rc |= json_object_set_new(o, "min", json_string(""));
		rc |= json_object_set_new(o, "max", json_string(""));
		break;
	case FT_RELATION:
		target = schema_find(s, f->target);
		rc |= json_object_set_new(o, "collectionId",
					  json_string(target ? target->id :
						      f->target));
		rc |= json_object_set_new(o, "cascadeDelete",
					  json_boolean(f->cascade));
		rc |= json_object_set_new(o, "minSelect", json_integer(0));
		rc |= json_object_set_new(o, "maxSelect", json_integer(1));
		break;
	case FT_EMAIL:
		rc |= json_object_set_new(o, "exceptDomains", json_null());
		rc |= json_object_set_new(o, "onlyDomains", json_null());
		break;
	case FT_PASSWORD:
		rc |= json_object_set_new(o, "min", json_integer(8));
		rc |= json_object_set_new(o, "max", json_integer(72));
		rc |= json_object_set_new(o, "pattern", json_string(""));
		break;
	case FT_BOOL:
		break;
	}
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The record id, as PocketBase's primary key field. */
static json_t *id_field(const struct collection *c)
{
	json_t *o = field_base(c, "id", "text", true, false, true);

	if (o && json_object_update_missing_new(o,
			json_pack("{s:i, s:i, s:s, s:s, s:b}", "min", ID_LEN,
				  "max", ID_LEN, "pattern", ID_PATTERN,
				  "autogeneratePattern", ID_AUTOGENERATE,
				  "primaryKey", true))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* created / updated: the store's record metadata, as autodate fields. */
static json_t *autodate_field(const struct collection *c, const char *name,
			      bool on_update)
{
	json_t *o = field_base(c, name, "autodate", false, false, false);

	if (o && json_object_update_missing_new(o,
			json_pack("{s:b, s:b}", "onCreate", true, "onUpdate",
				  on_update))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* An index as the statement PocketBase lists: CREATE [UNIQUE] INDEX
 * `name` ON `collection` (`a`, `b`). NULL on allocation failure. */
static json_t *index_json(const struct collection *c, const struct index *ix)
{
	struct buf b = BUF_INIT;
	json_t *out = NULL;
	size_t i;
	int rc;

	rc = buf_printf(&b, "CREATE %sINDEX `%s` ON `%s` (",
			ix->unique ? "UNIQUE " : "", ix->name, c->name);
	for (i = 0; !rc && i < ix->nfields; i++)
		rc = buf_printf(&b, "%s`%s`", i ? ", " : "", ix->fields[i]);
	if (!rc)
		rc = buf_putc(&b, ')');
	if (!rc)
		out = json_string(b.ptr);
	buf_release(&b);
	return out;
}

/* The auth options of an auth collection, merged into o. */
static int auth_options(const struct http_req *r, json_t *o)
{
	/* "o" steals nothing here: every value is built in place. */
	return json_object_update_missing_new(o, json_pack(
		"{s:s, s:n, s:{s:b, s:[s]}, s:{s:b, s:[], s:{}},"
		" s:{s:b, s:i, s:s}, s:{s:b, s:i, s:i}, s:{s:i}}",
		"authRule", "", "manageRule",
		"passwordAuth", "enabled", true, "identityFields", "email",
		"oauth2", "enabled", false, "providers", "mappedFields",
		"mfa", "enabled", false, "duration", 1800, "rule", "",
		"otp", "enabled", false, "duration", 180, "length", 8,
		"authToken", "duration", r->srv->opts->token_ttl));
}

/* One collection in PocketBase's shape; caller owns it, NULL on
 * allocation failure. */
static json_t *collection_json(const struct http_req *r,
			       const struct collection *c)
{
	const struct schema *s = r->srv->schema;
	json_t *o, *fields, *indexes;
	size_t i, a;
	int rc = 0;

	o = json_pack("{s:s, s:s, s:s, s:b}", "id", c->id, "name", c->name,
		      "type", c->auth ? "auth" : "base", "system",
		      !strcmp(c->name, SUPERUSERS));
	fields = json_array();
	indexes = json_array();
	if (!o || !fields || !indexes) {
		json_decref(o);
		json_decref(fields);
		json_decref(indexes);
		return NULL;
	}
	/* every *_set_new / *_append_new below steals its new value */
	for (a = 0; a < RULE__COUNT; a++)
		rc |= json_object_set_new(o, rule_keys[a], c->rules[a] ?
					  json_string(c->rules[a]) :
					  json_null());
	rc |= json_array_append_new(fields, id_field(c));
	for (i = 0; i < c->nfields; i++)
		rc |= json_array_append_new(fields,
					    field_json(s, c, &c->fields[i]));
	rc |= json_array_append_new(fields, autodate_field(c, "created",
							   false));
	rc |= json_array_append_new(fields, autodate_field(c, "updated",
							   true));
	for (i = 0; i < c->nindexes; i++)
		rc |= json_array_append_new(indexes,
					    index_json(c, &c->indexes[i]));
	rc |= json_object_set_new(o, "fields", fields);
	rc |= json_object_set_new(o, "indexes", indexes);
	if (!rc && c->auth)
		rc = auth_options(r, o);
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ?fields= of the request into *out (NULL: everything). */
static int fields_param(struct http_req *r, struct pick **out, struct err *e)
{
	char v[QUERY_MAX + 1];
	int n = http_query(r, "fields", v, sizeof(v));

	*out = NULL;
	if (n == -2)
		return err_set_field(e, ERR_INVALID, "fields",
				     "fields: longer than %d bytes", QUERY_MAX);
	return n > 0 ? pick_parse(v, out, e) : 0;
}

/* An integer query parameter of at least 1; *out keeps its value when
 * absent or empty. */
static int positive_param(struct http_req *r, const char *name,
			  long long *out, struct err *e)
{
	char v[32], *end;
	long long x;
	int n = http_query(r, name, v, sizeof(v));

	if (n == -1 || n == 0)
		return 0;
	errno = 0;
	x = n > 0 ? strtoll(v, &end, 10) : 0;
	if (n < 0 || errno || *end || end == v || x < 1)
		return err_set_field(e, ERR_INVALID, name,
				     "%s: want a positive integer", name);
	*out = x;
	return 0;
}

/* Whether query parameter name is there with a value (an empty one is
 * as good as none, as the SDK may send it). */
static bool given(struct http_req *r, const char *name)
{
	char probe[2];
	int n = http_query(r, name, probe, sizeof(probe));

	return n > 0 || n == -2;
}

int api_collections_list(struct http_req *r)
{
	const struct schema *s = r->srv->schema;
	long long page = 1, per_page = PER_PAGE_DEFAULT, pages;
	struct err e = ERR_INIT;
	struct pick *pick = NULL;
	json_t *items = NULL, *one, *body;
	size_t i, first;
	int rc;

	if (api_auth_refuse_unless_superuser(r))
		return 0;
	rc = positive_param(r, "page", &page, &e);
	if (!rc)
		rc = positive_param(r, "perPage", &per_page, &e);
	if (!rc && given(r, "filter"))
		rc = err_set_field(&e, ERR_INVALID, "filter",
				   "filter is not supported on the collections "
				   "list: list them all and pick");
	if (!rc && given(r, "sort"))
		rc = err_set_field(&e, ERR_INVALID, "sort",
				   "sort is not supported on the collections "
				   "list: they come in schema order");
	if (!rc)
		rc = fields_param(r, &pick, &e);
	if (rc)
		goto out;
	if (per_page > PER_PAGE_MAX)
		per_page = PER_PAGE_MAX;
	items = json_array();
	if (!items) {
		rc = err_set(&e, ERR_NOMEM, "out of memory");
		goto out;
	}
	pages = ((long long)s->ncollections + per_page - 1) / per_page;
	first = page <= pages ? (size_t)((page - 1) * per_page) :
		s->ncollections;
	for (i = first; i < s->ncollections && i < first + (size_t)per_page;
	     i++) {
		one = collection_json(r, &s->collections[i]);
		if (!one || pick_apply(pick, one) ||
		    json_array_append_new(items, one)) {   /* stolen */
			rc = err_set(&e, ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	/* "o" steals items, also when json_pack fails. */
	body = json_pack("{s:I, s:I, s:I, s:I, s:o}", "page", (json_int_t)page,
			 "perPage", (json_int_t)per_page, "totalItems",
			 (json_int_t)s->ncollections, "totalPages",
			 (json_int_t)pages, "items", items);
	items = NULL;
	rc = http_reply_json(r, 200, body, NULL);
out:
	if (rc && !r->status)
		rc = http_reply_error(r, &e);
	json_decref(items);
	pick_free(pick);
	return rc;
}

int api_collections_view(struct http_req *r)
{
	const struct schema *s = r->srv->schema;
	const struct collection *c = NULL;
	struct err e = ERR_INIT;
	struct pick *pick = NULL;
	json_t *o;
	int rc;

	if (api_auth_refuse_unless_superuser(r))
		return 0;
	if (r->params[0] && *r->params[0]) {
		c = schema_find(s, r->params[0]);
		if (!c)
			c = schema_find_by_id(s, r->params[0]);
	}
	if (!c)
		return http_fail(r, ERR_NOT_FOUND,
				 "The requested resource wasn't found.");
	rc = fields_param(r, &pick, &e);
	if (rc)
		return http_reply_error(r, &e);
	o = collection_json(r, c);
	if (o && pick_apply(pick, o)) {
		json_decref(o);
		o = NULL;
	}
	pick_free(pick);
	return http_reply_json(r, 200, o, NULL);   /* o stolen; NULL is 500 */
}
