/*
 * schema.c - loads schema/collections.json into struct schema and checks
 * record data against it (see schema.h).
 *
 * The loader is strict on purpose: unknown keys, wrong types, unknown field
 * types, dangling relations, bad indexes, duplicates and relation cycles are
 * refused with a message naming the collection and field, because a typo in
 * the schema would otherwise surface much later as a confusing API error.
 * Every string in the structs is borrowed from the parsed document
 * (s->root); the arrays are malloc'd and freed by schema_free().
 * schema_normalize() is the one place where field values are type-checked
 * and brought into canonical form (dates in UTC, integral numbers as
 * integers), so every writer - API, apply, reconcilers - agrees on them.
 */
#include "schema.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "embedded.h"
#include "util.h"

#define NAME_MAX_LEN 63                     /* names, ids, kinds */
#define MAX_COLLECTIONS 256                 /* bounds topo sort's stack */
#define TEXT_MAX_DEFAULT ((size_t)65536)    /* text, password */
#define EMAIL_MAX_DEFAULT ((size_t)254)     /* RFC 5321 path limit */
#define JSON_MAX_DEFAULT ((size_t)1 << 20)  /* 1 MiB encoded */
#define MAX_SIZE_LIMIT ((size_t)64 << 20)   /* the largest maxSize allowed */
#define EXACT_INT_LIMIT 9007199254740992.0  /* 2^53: doubles are exact below */

static const char *const type_names[] = {
	[FT_TEXT] = "text",
	[FT_NUMBER] = "number",
	[FT_BOOL] = "bool",
	[FT_SELECT] = "select",
	[FT_JSON] = "json",
	[FT_DATE] = "date",
	[FT_RELATION] = "relation",
	[FT_EMAIL] = "email",
	[FT_PASSWORD] = "password",
};
#define NTYPES (sizeof(type_names) / sizeof(type_names[0]))

static const char *const rule_keys[RULE__COUNT] = {
	[RULE_LIST] = "list",
	[RULE_VIEW] = "view",
	[RULE_CREATE] = "create",
	[RULE_UPDATE] = "update",
	[RULE_DELETE] = "delete",
};

/* Record metadata the store adds itself; a field may not shadow them. */
static const char *const reserved_fields[] = {
	"id", "created", "updated", "collectionId", "collectionName", "expand",
	NULL
};

const char *field_type_name(enum field_type t)
{
	if ((size_t)t >= NTYPES || !type_names[t])
		return "unknown";
	return type_names[t];
}

/* "a string", "an object", ... for "expected X, got Y" messages. */
static const char *json_kind(const json_t *v)
{
	if (!v)
		return "nothing";
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "an unknown value";
}

/* ---- value normalisation --------------------------------------------- */

static size_t effective_max(const struct field *f)
{
	if (f->max_size)
		return f->max_size;
	switch (f->type) {
	case FT_JSON:
		return JSON_MAX_DEFAULT;
	case FT_EMAIL:
		return EMAIL_MAX_DEFAULT;
	default:
		return TEXT_MAX_DEFAULT;
	}
}

static json_t *zero_value(const struct field *f)
{
	switch (f->type) {
	case FT_NUMBER:
		return json_integer(0);
	case FT_BOOL:
		return json_false();
	case FT_JSON:
		return json_null();
	default:
		return json_string("");
	}
}

/*
 * True for the values a required field refuses: "" / 0 / false / null; for
 * json fields null, "", [] and {} (as PocketBase does).
 */
static bool is_zero(const struct field *f, const json_t *v)
{
	if (f->type == FT_JSON)
		return json_is_null(v) ||
		       (json_is_string(v) && json_string_length(v) == 0) ||
		       (json_is_array(v) && json_array_size(v) == 0) ||
		       (json_is_object(v) && json_object_size(v) == 0);
	switch (json_typeof(v)) {
	case JSON_STRING:
		return json_string_length(v) == 0;
	case JSON_INTEGER:
	case JSON_REAL:
		return json_number_value(v) == 0;
	case JSON_FALSE:
	case JSON_NULL:
		return true;
	default:
		return false;
	}
}

static bool digits(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

static int num2(const char *p)
{
	return (p[0] - '0') * 10 + (p[1] - '0');
}

static int days_in_month(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30,
				       31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/*
 * Parse "YYYY-MM-DD", or "YYYY-MM-DD(T| )HH:MM:SS[.f+](Z|+hh:mm|-hh:mm)"
 * (PocketBase's stored form and RFC 3339), into PocketBase's stored form in
 * UTC: "YYYY-MM-DD HH:MM:SS.sssZ". Fractions beyond milliseconds are
 * truncated. False for anything else, impossible dates included.
 */
static bool parse_date(const char *s, size_t len, char out[TIME_LEN + 1])
{
	int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, off = 0;
	size_t i, n;
	struct tm tm;
	time_t t;
	char tmp[64];

	if (len < 10 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) ||
	    s[7] != '-' || !digits(s + 8, 2))
		return false;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + num2(s + 2);
	mo = num2(s + 5);
	d = num2(s + 8);
	if (len > 10) {
		if (s[10] != ' ' && s[10] != 'T' && s[10] != 't')
			return false;
		if (len < 19 || !digits(s + 11, 2) || s[13] != ':' ||
		    !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
			return false;
		h = num2(s + 11);
		mi = num2(s + 14);
		sec = num2(s + 17);
		i = 19;
		if (i < len && s[i] == '.') {
			for (i++, n = 0; i < len && digits(s + i, 1); i++, n++)
				if (n < 3)
					ms = ms * 10 + (s[i] - '0');
			if (n == 0 || n > 9)
				return false;
			for (; n < 3; n++)
				ms *= 10;
		}
		if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
			i++;
		} else if (i < len && (s[i] == '+' || s[i] == '-')) {
			if (len - i < 6 || !digits(s + i + 1, 2) ||
			    s[i + 3] != ':' || !digits(s + i + 4, 2))
				return false;
			if (num2(s + i + 1) > 23 || num2(s + i + 4) > 59)
				return false;
			off = (num2(s + i + 1) * 60 + num2(s + i + 4)) * 60;
			if (s[i] == '-')
				off = -off;
			i += 6;
		} else {
			return false;   /* a time needs its zone */
		}
		if (i != len)
			return false;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
	    h > 23 || mi > 59 || sec > 59)
		return false;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm) - off;
	if (!gmtime_r(&t, &tm))
		return false;
	if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
		return false;   /* the offset pushed it out of 0000..9999 */
	snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d %02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, ms);
	memcpy(out, tmp, TIME_LEN);
	out[TIME_LEN] = '\0';
	return true;
}

/* One '@' with something on both sides, and no spaces or control bytes. */
static bool email_ok(const char *s, size_t len)
{
	const char *at = NULL;
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == 0x7f)
			return false;
		if (c == '@') {
			if (at)
				return false;
			at = s + i;
		}
	}
	return at && at > s && at < s + len - 1;
}

/* Append "a|b|c" (truncated if it must be) for select messages. */
static void join_values(const struct field *f, char *out, size_t size)
{
	size_t i, used = 0;
	int n;

	out[0] = '\0';
	for (i = 0; i < f->nvalues && used < size; i++) {
		n = snprintf(out + used, size - used, "%s%s", i ? "|" : "",
			     f->values[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* The string inside v, refusing non-strings and embedded NUL bytes. */
static int want_string(const struct field *f, const json_t *v,
		       const char **s, size_t *len, struct err *e)
{
	if (!json_is_string(v))
		return err_set_field(e, ERR_INVALID, f->name,
				     "expected a string, got %s", json_kind(v));
	*s = json_string_value(v);
	*len = json_string_length(v);
	if (strlen(*s) != *len)
		return err_set_field(e, ERR_INVALID, f->name,
				     "value contains a NUL byte");
	return 0;
}

static int norm_string(const struct field *f, const json_t *v, json_t **out,
		       struct err *e)
{
	char date[TIME_LEN + 1], list[256];
	const char *s = NULL;
	size_t len = 0, i, max = effective_max(f);
	int rc;

	rc = want_string(f, v, &s, &len, e);
	if (rc)
		return rc;
	if (len > max)
		return err_set_field(e, ERR_INVALID, f->name,
				     "value is %zu bytes, more than the maximum %zu",
				     len, max);
	if (len == 0)
		goto plain;
	switch (f->type) {
	case FT_SELECT:
		for (i = 0; i < f->nvalues; i++)
			if (strcmp(s, f->values[i]) == 0)
				goto plain;
		join_values(f, list, sizeof(list));
		return err_set_field(e, ERR_INVALID, f->name,
				     "value '%.64s' is not one of %s", s, list);
	case FT_DATE:
		if (!parse_date(s, len, date))
			return err_set_field(e, ERR_INVALID, f->name,
					     "value '%.64s' is not a date "
					     "(expected YYYY-MM-DD HH:MM:SS.sssZ, "
					     "RFC 3339 or YYYY-MM-DD)", s);
		*out = json_string(date);
		return *out ? 0 : err_set(e, ERR_NOMEM, "out of memory");
	case FT_RELATION:
		if (!util_valid_id(s))
			return err_set_field(e, ERR_INVALID, f->name,
					     "value '%.64s' is not a record id "
					     "(15 characters of a-z0-9)", s);
		break;
	case FT_EMAIL:
		if (!email_ok(s, len))
			return err_set_field(e, ERR_INVALID, f->name,
					     "value '%.64s' is not an email address",
					     s);
		break;
	default:
		break;
	}
plain:
	*out = json_stringn(s, len);
	return *out ? 0 : err_set(e, ERR_NOMEM, "out of memory");
}

static int norm_number(const struct field *f, const json_t *v, json_t **out,
		       struct err *e)
{
	double d;

	if (!json_is_number(v))
		return err_set_field(e, ERR_INVALID, f->name,
				     "expected a number, got %s", json_kind(v));
	d = json_number_value(v);
	if (f->only_int && trunc(d) != d)
		return err_set_field(e, ERR_INVALID, f->name,
				     "value %.15g is not an integer", d);
	if (f->has_min && d < f->min)
		return err_set_field(e, ERR_INVALID, f->name,
				     "value %.15g is less than the minimum %.15g",
				     d, f->min);
	if (f->has_max && d > f->max)
		return err_set_field(e, ERR_INVALID, f->name,
				     "value %.15g is more than the maximum %.15g",
				     d, f->max);
	/* Integral values are stored as integers, so 10 and 10.0 compare
	 * equal and render alike. */
	if (trunc(d) == d && fabs(d) <= EXACT_INT_LIMIT)
		*out = json_integer((json_int_t)d);
	else
		*out = json_real(d);
	return *out ? 0 : err_set(e, ERR_NOMEM, "out of memory");
}

static int norm_json(const struct field *f, const json_t *v, json_t **out,
		     struct err *e)
{
	size_t max = effective_max(f), n;

	n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	if (n == 0)
		return err_set_field(e, ERR_INVALID, f->name,
				     "value cannot be encoded as JSON");
	if (n > max)
		return err_set_field(e, ERR_INVALID, f->name,
				     "value encodes to %zu bytes, more than the "
				     "maximum %zu", n, max);
	/* A deep copy, so the result shares nothing with the caller's
	 * objects (or the schema's defaults). */
	*out = json_deep_copy(v);
	return *out ? 0 : err_set(e, ERR_NOMEM, "out of memory");
}

/*
 * Check and normalise one value of field f. v is borrowed and may be NULL
 * (absent); NULL and JSON null become the field's zero value. *out is a new
 * reference sharing nothing with v.
 */
static int norm_value(const struct field *f, const json_t *v, json_t **out,
		      struct err *e)
{
	*out = NULL;
	if (f->type == FT_JSON && v)
		return norm_json(f, v, out, e);
	if (!v || json_is_null(v)) {
		*out = zero_value(f);
		return *out ? 0 : err_set(e, ERR_NOMEM, "out of memory");
	}
	switch (f->type) {
	case FT_NUMBER:
		return norm_number(f, v, out, e);
	case FT_BOOL:
		if (!json_is_boolean(v))
			return err_set_field(e, ERR_INVALID, f->name,
					     "expected a boolean, got %s",
					     json_kind(v));
		*out = json_boolean(json_is_true(v));
		return 0;
	default:
		return norm_string(f, v, out, e);
	}
}

int schema_normalize(const struct collection *c, json_t *in, json_t *base,
		     json_t **out, struct err *e)
{
	json_t *res = NULL, *nv = NULL, *v;
	const struct field *f;
	const char *key;
	size_t i;
	int rc = 0;

	if (!json_is_object(in))
		return err_set(e, ERR_INVALID,
			       "record data must be an object, got %s",
			       json_kind(in));
	if (base && !json_is_object(base))
		return err_set(e, ERR_INVALID,
			       "stored data of the '%s' record is not an object",
			       c->name);
	json_object_foreach(in, key, v) {
		if (!collection_field(c, key))
			return err_set_field(e, ERR_INVALID, key,
					     "unknown field '%.64s'", key);
	}
	res = json_object();
	if (!res)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (i = 0; i < c->nfields; i++) {
		f = &c->fields[i];
		v = json_object_get(in, f->name);        /* borrowed */
		if (!v && base)
			v = json_object_get(base, f->name);
		if (!v)
			v = f->def;   /* create, or a record older than f */
		rc = norm_value(f, v, &nv, e);
		if (rc)
			goto out;
		if (f->required && is_zero(f, nv)) {
			rc = err_set_field(e, ERR_INVALID, f->name,
					   "missing required value");
			goto out;
		}
		rc = json_object_set_new(res, f->name, nv);   /* steals nv */
		nv = NULL;
		if (rc) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	*out = res;
	res = NULL;
out:
	json_decref(nv);
	json_decref(res);
	return rc;
}

/* ---- lookups --------------------------------------------------------- */

const struct collection *schema_find(const struct schema *s, const char *name)
{
	size_t i;

	if (!s || !name)
		return NULL;
	for (i = 0; i < s->ncollections; i++)
		if (strcmp(s->collections[i].name, name) == 0)
			return &s->collections[i];
	return NULL;
}

const struct collection *schema_find_by_id(const struct schema *s,
					   const char *id)
{
	size_t i;

	if (!s || !id)
		return NULL;
	for (i = 0; i < s->ncollections; i++)
		if (strcmp(s->collections[i].id, id) == 0)
			return &s->collections[i];
	return NULL;
}

/* k == kind + "s", ignoring case ("McpServers"). */
static bool eq_plural(const char *k, const char *kind)
{
	size_t n = strlen(kind);

	return strncasecmp(k, kind, n) == 0 && (k[n] == 's' || k[n] == 'S') &&
	       k[n + 1] == '\0';
}

/* k == name without its underscores, ignoring case ("mcpservers"). */
static bool eq_squashed(const char *k, const char *name)
{
	for (; *name; name++) {
		if (*name == '_')
			continue;
		if (tolower((unsigned char)*k) != tolower((unsigned char)*name))
			return false;
		k++;
	}
	return *k == '\0';
}

static bool kind_matches(const struct collection *c, const char *k)
{
	return strcasecmp(k, c->kind) == 0 || strcasecmp(k, c->name) == 0 ||
	       eq_plural(k, c->kind) || eq_squashed(k, c->name);
}

const struct collection *schema_find_kind(const struct schema *s,
					  const char *kind)
{
	size_t i;

	if (!s || !kind || !*kind)
		return NULL;
	for (i = 0; i < s->ncollections; i++)
		if (kind_matches(&s->collections[i], kind))
			return &s->collections[i];
	return NULL;
}

const struct collection *schema_find_kind_or_short(const struct schema *s,
						   const char *kind)
{
	const struct collection *c = schema_find_kind(s, kind);
	size_t i, j;

	for (i = 0; !c && s && kind && i < s->ncollections; i++)
		for (j = 0; j < s->collections[i].nshort_names; j++)
			if (!strcmp(kind, s->collections[i].short_names[j]))
				return &s->collections[i];
	return c;
}

const struct field *collection_field(const struct collection *c,
				     const char *name)
{
	size_t i;

	if (!c || !name)
		return NULL;
	for (i = 0; i < c->nfields; i++)
		if (strcmp(c->fields[i].name, name) == 0)
			return &c->fields[i];
	return NULL;
}

/* ---- topological order ----------------------------------------------- */

static bool targets_placed(const struct schema *s, const struct collection *c,
			   const bool *placed)
{
	const struct collection *t;
	size_t i;

	for (i = 0; i < c->nfields; i++) {
		if (c->fields[i].type != FT_RELATION ||
		    strcmp(c->fields[i].target, c->name) == 0)
			continue;
		t = schema_find(s, c->fields[i].target);
		if (t && !placed[t - s->collections])
			return false;
	}
	return true;
}

/*
 * Fill order[] and return how many collections could be placed: fewer than
 * s->ncollections only when relations form a cycle (schema_load refuses
 * those). Repeatedly takes the first unplaced collection, in schema order,
 * whose targets are all placed, so the order is stable.
 */
static size_t topo_fill(const struct schema *s,
			const struct collection **order)
{
	bool placed[MAX_COLLECTIONS] = { false };
	size_t n = 0, i;
	bool progress = true;

	if (s->ncollections > MAX_COLLECTIONS)
		return 0;
	while (n < s->ncollections && progress) {
		progress = false;
		for (i = 0; i < s->ncollections; i++) {
			if (placed[i] ||
			    !targets_placed(s, &s->collections[i], placed))
				continue;
			placed[i] = true;
			order[n++] = &s->collections[i];
			progress = true;
			break;
		}
	}
	return n;
}

void schema_topo_order(const struct schema *s,
		       const struct collection **order)
{
	size_t n = topo_fill(s, order), i, j;

	/* Unreachable for a loaded schema; keep the contract (every
	 * collection exactly once) anyway. */
	for (i = 0; n < s->ncollections && i < s->ncollections; i++) {
		for (j = 0; j < n; j++)
			if (order[j] == &s->collections[i])
				break;
		if (j == n)
			order[n++] = &s->collections[i];
	}
}

/* ---- loading --------------------------------------------------------- */

static int check_keys(json_t *obj, const char *const *allowed,
		      const char *where, struct err *e)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(obj, key, v) {
		(void)v;
		for (i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (!allowed[i])
			return err_set(e, ERR_INVALID, "%s: unknown key '%.64s'",
				       where, key);
	}
	return 0;
}

/*
 * A string member. Absent or null gives *out = NULL; that is an error when
 * required (absent) or !nullable (null).
 */
static int get_str(json_t *obj, const char *key, bool required,
		   bool nullable, const char **out, const char *where,
		   struct err *e)
{
	json_t *v = json_object_get(obj, key);   /* borrowed */

	*out = NULL;
	if (!v) {
		if (required)
			return err_set(e, ERR_INVALID, "%s: missing '%s'", where,
				       key);
		return 0;
	}
	if (json_is_null(v) && nullable)
		return 0;
	if (!json_is_string(v))
		return err_set(e, ERR_INVALID, "%s: '%s' must be a string%s, got %s",
			       where, key, nullable ? " or null" : "",
			       json_kind(v));
	if (strlen(json_string_value(v)) != json_string_length(v))
		return err_set(e, ERR_INVALID, "%s: '%s' contains a NUL byte",
			       where, key);
	*out = json_string_value(v);
	return 0;
}

/* A boolean member; absent leaves *out as it is. */
static int get_bool(json_t *obj, const char *key, bool *out,
		    const char *where, struct err *e)
{
	json_t *v = json_object_get(obj, key);   /* borrowed */

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return err_set(e, ERR_INVALID, "%s: '%s' must be a boolean, got %s",
			       where, key, json_kind(v));
	*out = json_is_true(v);
	return 0;
}

/* [A-Za-z_][A-Za-z0-9_]* (or lower-case only), at most NAME_MAX_LEN. */
static bool ident_ok(const char *s, bool lower_only)
{
	size_t i;

	if (!s || !*s || strlen(s) > NAME_MAX_LEN)
		return false;
	for (i = 0; s[i]; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || c == '_' ||
			  (!lower_only && c >= 'A' && c <= 'Z') ||
			  (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

/* CamelCase: [A-Z][A-Za-z0-9]*, at most NAME_MAX_LEN. */
static bool kind_ok(const char *s)
{
	size_t i;

	if (!s || !(s[0] >= 'A' && s[0] <= 'Z') || strlen(s) > NAME_MAX_LEN)
		return false;
	for (i = 1; s[i]; i++)
		if (!isalnum((unsigned char)s[i]))
			return false;
	return true;
}

/* The optional free-text "description"/"comment" members. */
static int check_note(json_t *obj, const char *where, struct err *e)
{
	static const char *const keys[] = { "description", "comment" };
	json_t *v;
	size_t i;

	for (i = 0; i < 2; i++) {
		v = json_object_get(obj, keys[i]);   /* borrowed */
		if (v && !json_is_string(v))
			return err_set(e, ERR_INVALID,
				       "%s: '%s' must be a string, got %s", where,
				       keys[i], json_kind(v));
	}
	return 0;
}

static bool reserved(const char *name)
{
	size_t i;

	for (i = 0; reserved_fields[i]; i++)
		if (strcmp(name, reserved_fields[i]) == 0)
			return true;
	return false;
}

static int parse_values(struct field *f, json_t *jv, const char *where,
			struct err *e)
{
	size_t i, j;
	json_t *v;

	if (!json_is_array(jv) || json_array_size(jv) == 0)
		return err_set(e, ERR_INVALID,
			       "%s: 'values' must be a non-empty array of strings",
			       where);
	f->values = calloc(json_array_size(jv), sizeof(*f->values));
	if (!f->values)
		return err_set(e, ERR_NOMEM, "out of memory");
	json_array_foreach(jv, i, v) {
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return err_set(e, ERR_INVALID,
				       "%s: select value #%zu must be a non-empty "
				       "string", where, i + 1);
		for (j = 0; j < i; j++)
			if (strcmp(f->values[j], json_string_value(v)) == 0)
				return err_set(e, ERR_INVALID,
					       "%s: duplicate select value '%.64s'",
					       where, f->values[j]);
		f->values[i] = json_string_value(v);
		f->nvalues = i + 1;
	}
	return 0;
}

static int parse_field(struct field *f, json_t *jf, const char *cname,
		       size_t idx, struct err *e)
{
	static const char *const keys[] = {
		"name", "type", "required", "hidden", "secret", "system",
		"ownerWritable", "values", "collection", "cascadeDelete",
		"min", "max", "maxSize", "onlyInt", "default", "description", "comment",
		NULL
	};
	char where[256];
	const char *type = NULL;
	json_t *v, *nv = NULL;
	size_t t;
	int rc;

	snprintf(where, sizeof(where), "collection '%s' field #%zu", cname,
		 idx + 1);
	if (!json_is_object(jf))
		return err_set(e, ERR_INVALID, "%s: must be an object, got %s",
			       where, json_kind(jf));
	rc = get_str(jf, "name", true, false, &f->name, where, e);
	if (rc)
		return rc;
	if (!ident_ok(f->name, false) || reserved(f->name))
		return err_set(e, ERR_INVALID,
			       "%s: invalid field name '%.64s' (letters, digits "
			       "and '_', at most %d, not record metadata)",
			       where, f->name, NAME_MAX_LEN);
	snprintf(where, sizeof(where), "collection '%s' field '%s'", cname,
		 f->name);
	rc = check_keys(jf, keys, where, e);
	if (rc)
		return rc;
	rc = get_str(jf, "type", true, false, &type, where, e);
	if (rc)
		return rc;
	for (t = 0; t < NTYPES; t++)
		if (strcmp(type, type_names[t]) == 0)
			break;
	if (t == NTYPES)
		return err_set(e, ERR_INVALID, "%s: unknown field type '%.64s'",
			       where, type);
	f->type = (enum field_type)t;

	rc = get_bool(jf, "required", &f->required, where, e);
	if (!rc)
		rc = get_bool(jf, "hidden", &f->hidden, where, e);
	if (!rc)
		rc = get_bool(jf, "secret", &f->secret, where, e);
	if (!rc)
		rc = get_bool(jf, "system", &f->system, where, e);
	if (!rc)
		rc = get_bool(jf, "ownerWritable", &f->owner_writable, where,
			      e);
	if (rc)
		return rc;
	if (f->owner_writable && !f->system)
		return err_set(e, ERR_INVALID, "%s: ownerWritable needs "
			       "\"system\": true", where);
	if (f->type == FT_PASSWORD)
		f->hidden = true;   /* hashes never leave the server */
	rc = check_note(jf, where, e);
	if (rc)
		return rc;

	/* Type-specific options, refused on other types. */
	v = json_object_get(jf, "values");
	if (f->type == FT_SELECT) {
		rc = parse_values(f, v, where, e);
		if (rc)
			return rc;
	} else if (v) {
		return err_set(e, ERR_INVALID,
			       "%s: 'values' is only valid for select fields",
			       where);
	}
	if (f->type == FT_RELATION) {
		rc = get_str(jf, "collection", true, false, &f->target, where,
			     e);
		if (!rc)
			rc = get_bool(jf, "cascadeDelete", &f->cascade, where, e);
		if (rc)
			return rc;
	} else if (json_object_get(jf, "collection") ||
		   json_object_get(jf, "cascadeDelete")) {
		return err_set(e, ERR_INVALID,
			       "%s: 'collection' and 'cascadeDelete' are only "
			       "valid for relation fields", where);
	}
	if (f->type == FT_NUMBER) {
		v = json_object_get(jf, "min");
		if (v) {
			if (!json_is_number(v))
				return err_set(e, ERR_INVALID,
					       "%s: 'min' must be a number, got %s",
					       where, json_kind(v));
			f->min = json_number_value(v);
			f->has_min = true;
		}
		v = json_object_get(jf, "max");
		if (v) {
			if (!json_is_number(v))
				return err_set(e, ERR_INVALID,
					       "%s: 'max' must be a number, got %s",
					       where, json_kind(v));
			f->max = json_number_value(v);
			f->has_max = true;
		}
		if (f->has_min && f->has_max && f->min > f->max)
			return err_set(e, ERR_INVALID, "%s: 'min' is above 'max'",
				       where);
		rc = get_bool(jf, "onlyInt", &f->only_int, where, e);
		if (rc)
			return rc;
	} else if (json_object_get(jf, "min") || json_object_get(jf, "max") ||
		   json_object_get(jf, "onlyInt")) {
		return err_set(e, ERR_INVALID,
			       "%s: 'min', 'max' and 'onlyInt' are only valid for "
			       "number fields", where);
	}
	v = json_object_get(jf, "maxSize");
	if (v) {
		if (f->type != FT_TEXT && f->type != FT_JSON &&
		    f->type != FT_EMAIL && f->type != FT_PASSWORD)
			return err_set(e, ERR_INVALID,
				       "%s: 'maxSize' is only valid for text, "
				       "json, email and password fields", where);
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    (unsigned long long)json_integer_value(v) > MAX_SIZE_LIMIT)
			return err_set(e, ERR_INVALID,
				       "%s: 'maxSize' must be an integer from 1 "
				       "to %zu", where, MAX_SIZE_LIMIT);
		f->max_size = (size_t)json_integer_value(v);
	}
	f->max_size = effective_max(f);

	/* The default goes through the same checks as any value, and is
	 * kept in its normalised form (which the document then owns). */
	v = json_object_get(jf, "default");
	if (v && !json_is_null(v)) {
		if (f->type == FT_PASSWORD || f->type == FT_RELATION)
			return err_set(e, ERR_INVALID,
				       "%s: a %s field cannot have a default",
				       where, type_names[f->type]);
		rc = norm_value(f, v, &nv, e);
		if (rc)
			return err_prefix(e, "%s: default: ", where);
		if (f->required && is_zero(f, nv)) {
			json_decref(nv);
			return err_set(e, ERR_INVALID,
				       "%s: the default of a required field "
				       "cannot be a zero value", where);
		}
		if (json_object_set_new(jf, "default", nv))   /* steals nv */
			return err_set(e, ERR_NOMEM, "out of memory");
		f->def = json_object_get(jf, "default");
	}
	return 0;
}

static int parse_index(struct index *ix, json_t *ji,
		       const struct collection *c, size_t idx, struct err *e)
{
	static const char *const keys[] = {
		"name", "unique", "fields", "description", "comment", NULL
	};
	char where[256];
	json_t *jfields, *v;
	size_t i, j;
	int rc;

	snprintf(where, sizeof(where), "collection '%s' index #%zu", c->name,
		 idx + 1);
	if (!json_is_object(ji))
		return err_set(e, ERR_INVALID, "%s: must be an object, got %s",
			       where, json_kind(ji));
	rc = get_str(ji, "name", true, false, &ix->name, where, e);
	if (rc)
		return rc;
	if (!ident_ok(ix->name, false))
		return err_set(e, ERR_INVALID, "%s: invalid index name '%.64s'",
			       where, ix->name);
	snprintf(where, sizeof(where), "collection '%s' index '%s'", c->name,
		 ix->name);
	rc = check_keys(ji, keys, where, e);
	if (!rc)
		rc = get_bool(ji, "unique", &ix->unique, where, e);
	if (rc)
		return rc;
	jfields = json_object_get(ji, "fields");
	if (!json_is_array(jfields) || json_array_size(jfields) == 0)
		return err_set(e, ERR_INVALID,
			       "%s: 'fields' must be a non-empty array of field "
			       "names", where);
	ix->fields = calloc(json_array_size(jfields), sizeof(*ix->fields));
	if (!ix->fields)
		return err_set(e, ERR_NOMEM, "out of memory");
	json_array_foreach(jfields, i, v) {
		const char *name = json_string_value(v);
		if (!name)
			return err_set(e, ERR_INVALID,
				       "%s: field #%zu must be a string, got %s",
				       where, i + 1, json_kind(v));
		/* "name" may also mean the record name (see schema.h). */
		if (!collection_field(c, name) && strcmp(name, "name") != 0)
			return err_set(e, ERR_INVALID,
				       "%s: field '%.64s' does not exist", where,
				       name);
		for (j = 0; j < i; j++)
			if (strcmp(ix->fields[j], name) == 0)
				return err_set(e, ERR_INVALID,
					       "%s: field '%.64s' is listed twice",
					       where, name);
		ix->fields[i] = name;
		ix->nfields = i + 1;
	}
	return 0;
}

static int parse_rules(struct collection *c, json_t *jr, const char *where,
		       struct err *e)
{
	static const char *const keys[] = {
		"list", "view", "create", "update", "delete", NULL
	};
	char w[300];
	size_t a;
	int rc;

	if (!json_is_object(jr))
		return err_set(e, ERR_INVALID,
			       "%s: 'rules' must be an object, got %s", where,
			       json_kind(jr));
	snprintf(w, sizeof(w), "%s rules", where);
	rc = check_keys(jr, keys, w, e);
	if (rc)
		return rc;
	for (a = 0; a < RULE__COUNT; a++) {
		rc = get_str(jr, rule_keys[a], true, true, &c->rules[a], w, e);
		if (rc)
			return rc;
	}
	return 0;
}

/* "shortNames": lower-case words ([a-z]+, at most 16). */
static int parse_short_names(struct collection *c, json_t *jc,
			     const char *where, struct err *e)
{
	json_t *arr = json_object_get(jc, "shortNames"), *v;
	const char *sn;
	size_t i, n;

	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return err_set(e, ERR_INVALID, "%s: 'shortNames' must be an array",
			       where);
	c->short_names = calloc(json_array_size(arr) + 1, sizeof(char *));
	if (!c->short_names)
		return err_set(e, ERR_NOMEM, "out of memory");
	json_array_foreach(arr, i, v) {
		sn = json_string_value(v);
		n = sn ? strspn(sn, "abcdefghijklmnopqrstuvwxyz") : 0;
		if (!sn || n == 0 || sn[n] || n > 16)
			return err_set(e, ERR_INVALID,
				       "%s: shortNames[%zu] must be a lower-case "
				       "word ([a-z]+, at most 16)", where, i);
		c->short_names[c->nshort_names++] = sn;
	}
	return 0;
}

/* Is path "spec.FIELD" with a field of c, or "status.KEY[.KEY...]"? */
static bool column_path_ok(const struct collection *c, const char *path)
{
	size_t n;

	if (!strncmp(path, "spec.", 5))
		return collection_field(c, path + 5) != NULL &&
		       !collection_field(c, path + 5)->hidden &&
		       !collection_field(c, path + 5)->secret;
	if (strncmp(path, "status.", 7))
		return false;
	n = strspn(path + 7, "abcdefghijklmnopqrstuvwxyz"
		   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.");
	return n > 0 && !path[7 + n] && path[6 + n] != '.' &&
	       !strstr(path, "..");
}

/* "columns": [{"header": "ACTION", "path": "spec.action", "wide": false}] */
static int parse_columns(struct collection *c, json_t *jc, const char *where,
			 struct err *e)
{
	static const char *const keys[] = { "header", "path", "wide", NULL };
	json_t *arr = json_object_get(jc, "columns"), *v;
	char w[320];
	size_t i;
	int rc;

	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return err_set(e, ERR_INVALID, "%s: 'columns' must be an array",
			       where);
	c->columns = calloc(json_array_size(arr) + 1, sizeof(*c->columns));
	if (!c->columns)
		return err_set(e, ERR_NOMEM, "out of memory");
	json_array_foreach(arr, i, v) {
		struct column *col = &c->columns[c->ncolumns++];

		snprintf(w, sizeof(w), "%s columns[%zu]", where, i);
		if (!json_is_object(v))
			return err_set(e, ERR_INVALID, "%s: must be an object", w);
		rc = check_keys(v, keys, w, e);
		if (!rc)
			rc = get_str(v, "header", true, false, &col->header, w, e);
		if (!rc)
			rc = get_str(v, "path", true, false, &col->path, w, e);
		if (!rc)
			rc = get_bool(v, "wide", &col->wide, w, e);
		if (rc)
			return rc;
		if (!*col->header || strlen(col->header) > 32)
			return err_set(e, ERR_INVALID,
				       "%s: 'header' must be 1 to 32 bytes", w);
		if (!column_path_ok(c, col->path))
			return err_set(e, ERR_INVALID,
				       "%s: path '%.64s' is not spec.FIELD (a "
				       "field of %s, not hidden or secret) or "
				       "status.KEY", w, col->path, c->name);
	}
	return 0;
}

static int parse_collection(struct collection *c, json_t *jc, size_t idx,
			    struct err *e)
{
	static const char *const keys[] = {
		"name", "id", "kind", "auth", "nameField", "ownerField",
		"apiWritable", "fields", "indexes", "rules", "description",
		"comment", "shortNames", "columns", NULL
	};
	char where[256];
	json_t *jfields, *jindexes, *v;
	size_t i, j;
	int rc;

	snprintf(where, sizeof(where), "collection #%zu", idx + 1);
	if (!json_is_object(jc))
		return err_set(e, ERR_INVALID, "%s: must be an object, got %s",
			       where, json_kind(jc));
	rc = get_str(jc, "name", true, false, &c->name, where, e);
	if (rc)
		return rc;
	if (!ident_ok(c->name, true))
		return err_set(e, ERR_INVALID,
			       "%s: invalid collection name '%.64s' ([a-z_][a-z0-9_]*, "
			       "at most %d)", where, c->name, NAME_MAX_LEN);
	snprintf(where, sizeof(where), "collection '%s'", c->name);
	rc = check_keys(jc, keys, where, e);
	if (!rc)
		rc = get_str(jc, "id", true, false, &c->id, where, e);
	if (!rc)
		rc = get_str(jc, "kind", true, false, &c->kind, where, e);
	if (!rc)
		rc = get_str(jc, "nameField", false, true, &c->name_field,
			     where, e);
	if (!rc)
		rc = get_str(jc, "ownerField", false, true, &c->owner_field,
			     where, e);
	if (!rc)
		rc = get_bool(jc, "auth", &c->auth, where, e);
	c->api_writable = true;
	if (!rc)
		rc = get_bool(jc, "apiWritable", &c->api_writable, where, e);
	if (rc)
		return rc;
	if (!ident_ok(c->id, false))
		return err_set(e, ERR_INVALID, "%s: invalid id '%.64s'", where,
			       c->id);
	if (!kind_ok(c->kind))
		return err_set(e, ERR_INVALID,
			       "%s: invalid kind '%.64s' (CamelCase, at most %d)",
			       where, c->kind, NAME_MAX_LEN);
	rc = check_note(jc, where, e);
	if (rc)
		return rc;

	jfields = json_object_get(jc, "fields");
	if (!json_is_array(jfields) || json_array_size(jfields) == 0)
		return err_set(e, ERR_INVALID,
			       "%s: 'fields' must be a non-empty array", where);
	c->fields = calloc(json_array_size(jfields), sizeof(*c->fields));
	if (!c->fields)
		return err_set(e, ERR_NOMEM, "out of memory");
	c->nfields = json_array_size(jfields);
	json_array_foreach(jfields, i, v) {
		rc = parse_field(&c->fields[i], v, c->name, i, e);
		if (rc)
			return rc;
		for (j = 0; j < i; j++)
			if (strcmp(c->fields[j].name, c->fields[i].name) == 0)
				return err_set(e, ERR_INVALID,
					       "%s: duplicate field '%s'", where,
					       c->fields[i].name);
	}

	jindexes = json_object_get(jc, "indexes");
	if (jindexes && !json_is_array(jindexes))
		return err_set(e, ERR_INVALID, "%s: 'indexes' must be an array",
			       where);
	if (json_array_size(jindexes) > 0) {
		c->indexes = calloc(json_array_size(jindexes),
				    sizeof(*c->indexes));
		if (!c->indexes)
			return err_set(e, ERR_NOMEM, "out of memory");
		c->nindexes = json_array_size(jindexes);
	}
	json_array_foreach(jindexes, i, v) {
		rc = parse_index(&c->indexes[i], v, c, i, e);
		if (rc)
			return rc;
	}

	v = json_object_get(jc, "rules");
	if (!v)
		return err_set(e, ERR_INVALID, "%s: missing 'rules'", where);
	rc = parse_rules(c, v, where, e);
	if (!rc)
		rc = parse_short_names(c, jc, where, e);
	if (!rc)
		rc = parse_columns(c, jc, where, e);
	return rc;
}

/* Keys schema_find_kind() accepts for c, for the collision check. */
static void lookup_keys(const struct collection *c, char plural[],
			char squashed[], const char *keys[4])
{
	size_t i, n = 0;

	snprintf(plural, NAME_MAX_LEN + 2, "%ss", c->kind);
	for (i = 0; c->name[i]; i++)
		if (c->name[i] != '_')
			squashed[n++] = c->name[i];
	squashed[n] = '\0';
	keys[0] = c->kind;
	keys[1] = c->name;
	keys[2] = plural;
	keys[3] = squashed;
}

/* Cross-collection checks, once every collection is parsed. */
static int check_schema(const struct schema *s, struct err *e)
{
	const struct collection *order[MAX_COLLECTIONS];
	char plural[NAME_MAX_LEN + 2], squashed[NAME_MAX_LEN + 1];
	const char *keys[4];
	const struct collection *c, *d, *t;
	const struct field *f;
	size_t i, j, k, m, n;

	for (i = 0; i < s->ncollections; i++) {
		c = &s->collections[i];
		lookup_keys(c, plural, squashed, keys);
		for (k = 0; k < c->nshort_names; k++) {
			d = schema_find_kind_or_short(s, c->short_names[k]);
			if (d != c)
				return err_set(e, ERR_INVALID,
					       "collection '%s': short name '%s' "
					       "also names collection '%s'",
					       c->name, c->short_names[k],
					       d->name);
		}
		for (j = 0; j < s->ncollections; j++) {
			d = &s->collections[j];
			if (j == i)
				continue;
			if (strcmp(c->id, d->id) == 0)
				return err_set(e, ERR_INVALID,
					       "collection '%s': id '%s' is also "
					       "the id of collection '%s'",
					       c->name, c->id, d->name);
			for (k = 0; k < 4; k++)
				if (kind_matches(d, keys[k]))
					return err_set(e, ERR_INVALID,
						       "collection '%s': '%s' also "
						       "names collection '%s'",
						       c->name, keys[k], d->name);
			for (k = 0; k < c->nindexes; k++)
				for (m = 0; m < d->nindexes; m++)
					if (strcmp(c->indexes[k].name,
						   d->indexes[m].name) == 0)
						return err_set(e, ERR_INVALID,
							       "collection '%s': index "
							       "'%s' is also declared "
							       "by '%s'", c->name,
							       c->indexes[k].name,
							       d->name);
		}
		for (k = 0; k < c->nindexes; k++)
			for (m = 0; m < k; m++)
				if (strcmp(c->indexes[k].name,
					   c->indexes[m].name) == 0)
					return err_set(e, ERR_INVALID,
						       "collection '%s': duplicate "
						       "index '%s'", c->name,
						       c->indexes[k].name);
		for (k = 0; k < c->nfields; k++) {
			f = &c->fields[k];
			if (f->type == FT_RELATION && !schema_find(s, f->target))
				return err_set(e, ERR_INVALID,
					       "collection '%s' field '%s': relation "
					       "to unknown collection '%.64s'",
					       c->name, f->name, f->target);
		}
		if (c->name_field) {
			f = collection_field(c, c->name_field);
			if (!f || f->type != FT_TEXT)
				return err_set(e, ERR_INVALID,
					       "collection '%s': nameField '%.64s' "
					       "is not a text field", c->name,
					       c->name_field);
		}
		if (c->owner_field) {
			f = collection_field(c, c->owner_field);
			t = f && f->type == FT_RELATION ?
				schema_find(s, f->target) : NULL;
			if (!t || !t->auth)
				return err_set(e, ERR_INVALID,
					       "collection '%s': ownerField '%.64s' "
					       "is not a relation to an auth "
					       "collection", c->name,
					       c->owner_field);
		}
		if (c->auth) {
			f = collection_field(c, "email");
			if (!f || f->type != FT_EMAIL)
				return err_set(e, ERR_INVALID,
					       "collection '%s': an auth collection "
					       "needs an email field 'email'", c->name);
			f = collection_field(c, "password");
			if (!f || f->type != FT_PASSWORD)
				return err_set(e, ERR_INVALID,
					       "collection '%s': an auth collection "
					       "needs a password field 'password'",
					       c->name);
		}
	}
	n = topo_fill(s, order);
	if (n < s->ncollections) {
		/* Name one collection on the cycle: the first unplaced. */
		for (i = 0; i < s->ncollections; i++) {
			for (j = 0; j < n; j++)
				if (order[j] == &s->collections[i])
					break;
			if (j == n)
				break;
		}
		return err_set(e, ERR_INVALID,
			       "collection '%s': its relations form a cycle "
			       "(apply could not create targets first)",
			       s->collections[i].name);
	}
	return 0;
}

int schema_load(struct schema **out, const char *json_text, size_t len,
		struct err *e)
{
	static const char *const keys[] = {
		"version", "collections", "description", "comment", NULL
	};
	struct schema *s = NULL;
	json_error_t jerr;
	json_t *jcolls, *v;
	size_t i;
	int rc = 0;

	if (!json_text)
		return err_set(e, ERR_INVALID, "schema: no document");
	s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ERR_NOMEM, "out of memory");
	s->root = json_loadb(json_text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!s->root) {
		rc = err_set(e, ERR_INVALID, "schema: line %d column %d: %s",
			     jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(s->root)) {
		rc = err_set(e, ERR_INVALID, "schema: must be an object, got %s",
			     json_kind(s->root));
		goto out;
	}
	rc = check_keys(s->root, keys, "schema", e);
	if (rc)
		goto out;
	v = json_object_get(s->root, "version");
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > 1000000) {
		rc = err_set(e, ERR_INVALID,
			     "schema: 'version' must be a positive integer");
		goto out;
	}
	s->version = (int)json_integer_value(v);
	jcolls = json_object_get(s->root, "collections");
	if (!json_is_array(jcolls) || json_array_size(jcolls) == 0 ||
	    json_array_size(jcolls) > MAX_COLLECTIONS) {
		rc = err_set(e, ERR_INVALID,
			     "schema: 'collections' must be an array of 1 to %d "
			     "collections", MAX_COLLECTIONS);
		goto out;
	}
	s->collections = calloc(json_array_size(jcolls),
				sizeof(*s->collections));
	if (!s->collections) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	s->ncollections = json_array_size(jcolls);
	json_array_foreach(jcolls, i, v) {
		rc = parse_collection(&s->collections[i], v, i, e);
		if (rc)
			goto out;
		if (schema_find(s, s->collections[i].name) !=
		    &s->collections[i]) {
			rc = err_set(e, ERR_INVALID,
				     "collection '%s': declared twice",
				     s->collections[i].name);
			goto out;
		}
	}
	rc = check_schema(s, e);
	if (rc)
		goto out;
	*out = s;
	s = NULL;
out:
	schema_free(s);
	return rc;
}

int schema_load_default(struct schema **out, struct err *e)
{
	int rc = schema_load(out, embedded_schema.data, EMBEDDED_LEN(&embedded_schema), e);

	if (rc)
		err_prefix(e, "%s: ", embedded_schema.name);
	return rc;
}

const char *schema_default_text(size_t *len)
{
	if (len)
		*len = EMBEDDED_LEN(&embedded_schema);
	return embedded_schema.data;
}

void schema_free(struct schema *s)
{
	struct collection *c;
	size_t i, j;

	if (!s)
		return;
	for (i = 0; s->collections && i < s->ncollections; i++) {
		c = &s->collections[i];
		for (j = 0; c->fields && j < c->nfields; j++)
			free(c->fields[j].values);
		free(c->fields);
		for (j = 0; c->indexes && j < c->nindexes; j++)
			free(c->indexes[j].fields);
		free(c->indexes);
		free(c->short_names);
		free(c->columns);
	}
	free(s->collections);
	json_decref(s->root);
	free(s);
}
