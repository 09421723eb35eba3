/*
 * api_records.c - the records API (see api_records.h): one handler per
 * action. Reads go through the store's read pool with the access rule
 * ANDed into the query; writes run in one store transaction in which the
 * rule is checked (create: against the new row, before commit; update and
 * delete: against the current row, and an update's new row against the
 * create rule where the collection has owner fields), and every relation
 * the caller sets must reach a record it may view (rules_check_write()),
 * so a refused write leaves nothing behind and nothing is handed over.
 * Record JSON comes from pb_record_json(), relation expansion from
 * expand.c, the ?fields= projection from pick.c.
 */
#include "api_records.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_auth.h"
#include "auth.h"
#include "expand.h"
#include "store/filter.h"
#include "pbjson.h"
#include "pick.h"
#include "respcache.h"
#include "rules.h"
#include "server.h"

#define PER_PAGE_DEFAULT 30
#define PER_PAGE_MAX 500
#define BODY_CAP_DEFAULT ((size_t)1 << 20)
#define QUERY_MAX 8192            /* bytes of one decoded query parameter */
#define JSON_TYPE "application/json"

#define MSG_NOT_FOUND "The requested resource wasn't found."
#define MSG_NO_COLLECTION "Missing collection context."
#define MSG_CREATE_REFUSED "Failed to create record."

/* Body keys of an auth collection that are no fields but are read by the
 * write itself (api_auth_prepare_password(), the oldPassword check). */
static const char *const auth_form_keys[] = {
	"passwordConfirm", "oldPassword",
};

/* ---- request helpers --------------------------------------------------- */

static const struct collection *find_collection(const struct http_req *r)
{
	const struct schema *s = r->srv->schema;
	const char *name = r->params[0];
	const struct collection *c;

	if (!name || !*name)
		return NULL;
	c = schema_find(s, name);
	return c ? c : schema_find_by_id(s, name);
}

static int no_collection(struct http_req *r)
{
	return http_fail(r, ERR_NOT_FOUND, MSG_NO_COLLECTION);
}

static int not_found(struct http_req *r)
{
	return http_fail(r, ERR_NOT_FOUND, MSG_NOT_FOUND);
}

static bool is_superuser(const struct http_req *r)
{
	return r->auth.kind == CALLER_SUPERUSER;
}

static void caller(const struct http_req *r, json_t *body,
		   struct filter_auth *fa)
{
	fa->superuser = is_superuser(r);
	fa->record = r->auth.record;   /* borrowed; NULL for guests */
	fa->body = body;
}

/*
 * Query parameter name into a fresh string (*out, caller frees; NULL when
 * absent). A value longer than QUERY_MAX bytes is ERR_INVALID naming it.
 */
static int query_param(const struct http_req *r, const char *name,
		       char **out, struct err *e)
{
	char *v;
	int n;

	*out = NULL;
	v = malloc(QUERY_MAX + 1);
	if (!v)
		return err_set(e, ERR_NOMEM, "out of memory");
	n = http_query(r, name, v, QUERY_MAX + 1);
	if (n == -2) {
		free(v);
		return err_set_field(e, ERR_INVALID, name,
				     "%s: longer than %d bytes", name,
				     QUERY_MAX);
	}
	if (n < 0) {
		free(v);
		return 0;
	}
	*out = v;
	return 0;
}

/* A boolean query parameter, parsed as Go's strconv.ParseBool (which
 * PocketBase uses); absent or empty = false. */
static int query_bool(const struct http_req *r, const char *name, bool *out,
		      struct err *e)
{
	static const char *const yes[] = { "1", "t", "T", "TRUE", "true",
					   "True" };
	static const char *const no[] = { "0", "f", "F", "FALSE", "false",
					  "False" };
	char v[16];
	size_t i;
	int n;

	*out = false;
	n = http_query(r, name, v, sizeof(v));
	if (n == -1 || n == 0)
		return 0;
	for (i = 0; n > 0 && i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcmp(v, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcmp(v, no[i]))
			return 0;
	}
	return err_set_field(e, ERR_INVALID, name,
			     "%s: want true or false", name);
}

/*
 * If-Match: a revision, bare or as the quoted ETag we send ("12", W/"12"),
 * or "*". *rev is 0 when the header is absent or "*" (no condition).
 */
static int if_match(const struct http_req *r, int64_t *rev, struct err *e)
{
	const char *h = http_header(r, "If-Match");
	char buf[40], *end;
	size_t n;
	long long x;

	*rev = 0;
	if (!h)
		return 0;
	while (*h == ' ' || *h == '\t')
		h++;
	n = strlen(h);
	while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	if (n == 1 && *h == '*')
		return 0;
	if (n >= 2 && !strncmp(h, "W/", 2)) {
		h += 2;
		n -= 2;
	}
	if (n >= 2 && h[0] == '"' && h[n - 1] == '"') {
		h++;
		n -= 2;
	}
	if (!n || n >= sizeof(buf))
		goto bad;
	memcpy(buf, h, n);
	buf[n] = '\0';
	errno = 0;
	x = strtoll(buf, &end, 10);
	if (errno || *end || x <= 0 || buf[0] < '0' || buf[0] > '9')
		goto bad;
	*rev = x;
	return 0;
bad:
	return err_set_field(e, ERR_INVALID, "If-Match",
			     "If-Match must be a record revision such as \"12\" "
			     "(the ETag of a previous reply)");
}

/* store_changes() callback: the generation the record had at one
 * revision. */
struct gen_at {
	const char *collection, *id;
	int64_t revision;
	int64_t generation;        /* -1: that revision was not this record */
};

static int gen_at_one(const struct store_change *ch, void *arg)
{
	struct gen_at *g = arg;
	json_t *gen;

	if (ch->revision == g->revision && !strcmp(ch->collection, g->collection) &&
	    !strcmp(ch->id, g->id) && strcmp(ch->action, "delete")) {
		gen = json_object_get(ch->record, "generation");
		if (json_is_integer(gen))
			g->generation = json_integer_value(gen);
	}
	return 1;   /* one row is all we asked for */
}

/*
 * If-Match against the current record cur (read inside the write
 * transaction). The ETag is the record's revision, and revisions also move
 * when the server records reconcile status, which is not part of the API
 * representation; so a stale revision still matches when the record's
 * fields have not changed since (the change log says which generation the
 * record had at that revision). On a match *if_rev is cur's revision, so
 * the store re-checks it in the same transaction. want 0 = no If-Match.
 * Returns 0 or ERR_PRECONDITION.
 */
static int precondition(struct http_req *r, const struct collection *c,
			const struct record *cur, int64_t want,
			int64_t *if_rev, struct err *e)
{
	struct gen_at g;
	struct err le = ERR_INIT;
	int rc;

	*if_rev = cur->revision;
	if (!want || want == cur->revision)
		return 0;
	if (want < cur->revision) {
		g.collection = c->name;
		g.id = cur->id;
		g.revision = want;
		g.generation = -1;
		rc = store_changes(r->srv->store, want - 1, 1, gen_at_one, &g,
				   &le);
		if (rc >= 0 && g.generation == cur->generation)
			return 0;
	}
	return err_set(e, ERR_PRECONDITION,
		       "record '%s' of %s changed since revision %lld (it is "
		       "at revision %lld)", cur->id, c->name, (long long)want,
		       (long long)cur->revision);
}

static size_t body_cap(const struct http_req *r)
{
	size_t cap = r->srv->opts ? r->srv->opts->max_body : 0;

	return cap ? cap : BODY_CAP_DEFAULT;
}

static bool auth_form_key(const struct collection *c, const char *k)
{
	size_t i;

	for (i = 0; c->auth && i < sizeof(auth_form_keys) /
		    sizeof(auth_form_keys[0]); i++)
		if (!strcmp(k, auth_form_keys[i]))
			return true;
	return false;
}

/*
 * Take out of body every key that is no field of c, as PocketBase loads
 * only the collection's fields from a body: "approved_at" sent to a
 * collection without it, "created", "updated", "collectionId",
 * "collectionName" and "expand" echoed back from a record are ignored, not
 * refused (manifests stay strict: apply.c refuses an unknown field). "id"
 * is the caller's (read_body()); an auth collection keeps its form keys.
 * A key taken out here never reaches the store, so it never gets an owner.
 */
static void drop_unknown_keys(const struct collection *c, json_t *body)
{
	const char *k;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(body, tmp, k, v) {
		if (!strcmp(k, "id") || collection_field(c, k) ||
		    auth_form_key(c, k))
			continue;
		json_object_del(body, k);
	}
}

/*
 * Read the JSON body of a create / update of c and take out what
 * PocketBase ignores (drop_unknown_keys()). *id_out receives a
 * client-chosen id (create only; NULL when none). On an update an "id"
 * other than the record's own (rid) is ERR_INVALID naming "id", as
 * PocketBase refuses a primary key change. Caller owns *out.
 */
static int read_body(struct http_req *r, const struct collection *c,
		     const char *rid, json_t **out, char **id_out,
		     struct err *e)
{
	const char *ct = http_header(r, "Content-Type");
	bool create = !rid;
	json_t *body = NULL, *id;
	int rc;

	*out = NULL;
	if (id_out)
		*id_out = NULL;
	if (ct && (!strncasecmp(ct, "multipart/form-data", 19) ||
		   !strncasecmp(ct, "application/x-www-form-urlencoded", 33)))
		return err_set(e, ERR_INVALID,
			       "form bodies (%s) are not supported: send the "
			       "record as application/json",
			       !strncasecmp(ct, "multipart", 9) ?
			       "multipart/form-data" :
			       "application/x-www-form-urlencoded");
	rc = http_read_json(r, body_cap(r), &body, e);
	if (rc)
		return rc;
	drop_unknown_keys(c, body);
	id = json_object_get(body, "id");   /* borrowed */
	if (id && !create && !(json_is_string(id) &&
			       !strcmp(json_string_value(id), rid))) {
		json_decref(body);
		return err_set_field(e, ERR_INVALID, "id",
				     "The record primary key cannot be "
				     "changed.");
	}
	if (id && create && !(json_is_string(id) &&
			      !*json_string_value(id))) {
		if (!json_is_string(id) || !util_valid_id(json_string_value(id))) {
			json_decref(body);
			return err_set_field(e, ERR_INVALID, "id",
					     "id must be %d characters of [a-z0-9]",
					     ID_LEN);
		}
		*id_out = strdup(json_string_value(id));
		if (!*id_out) {
			json_decref(body);
			return err_set(e, ERR_NOMEM, "out of memory");
		}
	}
	json_object_del(body, "id");
	*out = body;
	return 0;
}

/* ---- system fields ------------------------------------------------------ */

static bool zero_value(const json_t *v)
{
	return !v || json_is_null(v) || json_is_false(v) ||
	       (json_is_string(v) && !*json_string_value(v)) ||
	       (json_is_number(v) && json_number_value(v) == 0);
}

static bool same_value(const json_t *a, const json_t *b)
{
	if (zero_value(a) && zero_value(b))
		return true;
	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b);
	return a && b && json_equal((json_t *)a, (json_t *)b);
}

/* Whether the caller uid is an owner of the record data (an owner field,
 * rules_owner_field(), holds uid). */
static bool owned_by(const struct collection *c, const json_t *data,
		     const char *uid)
{
	const char *v;
	size_t i;

	if (!uid || !*uid)
		return false;
	for (i = 0; i < c->nfields; i++) {
		if (!rules_owner_field(c, &c->fields[i]))
			continue;
		v = json_string_value(json_object_get(data,
						      c->fields[i].name));
		if (v && !strcmp(v, uid))
			return true;
	}
	return false;
}

/*
 * A non-superuser may not set a system field (users.role, verified, sops.*,
 * approved_by, ...): sending one back unchanged is fine (clients echo whole
 * records), any other value is refused naming the field. The one exception
 * is an "ownerWritable" system field (ssh_keys.last_used), which the
 * record's owner may set: uid is the caller's auth id. cur is the stored
 * data for an update (whose owner fields count), NULL for a create
 * (compared with the default; the body's owner fields count, which the
 * create rule ties to the caller).
 */
static int check_system_fields(const struct collection *c, json_t *body,
			       json_t *cur, const char *uid, struct err *e)
{
	const struct field *f;
	const char *k;
	json_t *v, *was;

	json_object_foreach(body, k, v) {
		f = collection_field(c, k);
		if (!f || !f->system)
			continue;
		was = cur ? json_object_get(cur, k) : f->def;
		if (same_value(v, was))
			continue;
		if (f->owner_writable && owned_by(c, cur ? cur : body, uid))
			continue;
		return err_set_field(e, ERR_FORBIDDEN, k,
				     "field '%s' of %s can be set only by a "
				     "superuser", k, c->name);
	}
	return 0;
}

/*
 * The owner a create leaves out is the caller: where c's owner field
 * (ownerField in schema/collections.json) is one its create rule compares
 * with @request.auth.id ("user = @request.auth.id") and points at the
 * caller's own auth collection, a body without it (absent, null or "")
 * gets the caller's id, so the app's llm_keys {provider_id, env_vars} and
 * model_selection {model, chat} creates work. The create rule still runs
 * on the result; guests and superusers get no default.
 */
static int default_owner(const struct http_req *r, const struct collection *c,
			 json_t *body, struct err *e)
{
	const struct field *f = c->owner_field ?
				collection_field(c, c->owner_field) : NULL;
	const struct collection *target;
	json_t *v;

	if (r->auth.kind != CALLER_USER || !f || f->type != FT_RELATION ||
	    !filter_compares_auth_id(c->rules[RULE_CREATE], f->name))
		return 0;
	target = schema_find(r->srv->schema, f->target);
	if (!target || strcmp(target->id, r->auth.collection_id))
		return 0;
	v = json_object_get(body, f->name);   /* borrowed */
	if (v && !json_is_null(v) &&
	    !(json_is_string(v) && !*json_string_value(v)))
		return 0;
	/* json_string() copies the id; set_new steals it. */
	if (json_object_set_new(body, f->name, json_string(r->auth.id)))
		return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
}

/* ---- replies ------------------------------------------------------------ */

static json_t *render(const struct collection *c, const struct record *rec,
		      void *arg)
{
	struct http_req *r = arg;

	return pb_record_json(r->srv->schema, c, rec, &r->auth);
}

/* What ?expand= and ?fields= ask for, parsed once per request. */
struct shape {
	json_t *expand;            /* tree, owned */
	struct pick *pick;         /* owned, NULL = everything */
	struct expand_ctx x;
	struct filter_auth fa;
};

static int shape_init(struct http_req *r, struct shape *sh, struct err *e)
{
	char *spec = NULL;
	int rc;

	memset(sh, 0, sizeof(*sh));
	caller(r, NULL, &sh->fa);
	sh->x.store = r->srv->store;
	sh->x.schema = r->srv->schema;
	sh->x.auth = &sh->fa;
	sh->x.render = render;
	sh->x.render_arg = r;
	rc = query_param(r, "expand", &spec, e);
	if (!rc)
		rc = expand_parse(spec, &sh->expand, e);
	free(spec);
	spec = NULL;
	if (!rc)
		rc = query_param(r, "fields", &spec, e);
	if (!rc)
		rc = pick_parse(spec, &sh->pick, e);
	free(spec);
	return rc;
}

static void shape_release(struct shape *sh)
{
	json_decref(sh->expand);
	pick_free(sh->pick);
	expand_release(&sh->x);
	memset(sh, 0, sizeof(*sh));
}

/* The record as the caller sees it, expanded and projected. Caller owns
 * *out. */
static int shape_record(struct http_req *r, struct shape *sh,
			const struct collection *c, const struct record *rec,
			json_t **out, struct err *e)
{
	json_t *obj, *copy;
	int rc = 0;

	*out = NULL;
	obj = pb_record_json(r->srv->schema, c, rec, &r->auth);
	if (!obj)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (sh->pick) {
		/* pb_record_json shares field values with rec: projecting
		 * into JSON fields must not change the stored record. */
		copy = json_deep_copy(obj);
		json_decref(obj);
		obj = copy;
		if (!obj)
			return err_set(e, ERR_NOMEM, "out of memory");
	}
	if (json_object_size(sh->expand))
		rc = expand_apply(&sh->x, c, rec->data, obj, sh->expand, e);
	if (!rc && pick_apply(sh->pick, obj))
		rc = err_set(e, ERR_NOMEM, "out of memory");
	if (rc) {
		json_decref(obj);
		return rc;
	}
	*out = obj;
	return 0;
}

/* Reply 200 with one record, shaped by sh (parsed before any write, so a
 * bad ?fields= never follows a committed write), and its ETag. */
static int reply_record(struct http_req *r, struct shape *sh,
			const struct collection *c, const struct record *rec)
{
	struct err e = ERR_INIT;
	char etag[64];
	json_t *obj = NULL;
	int rc;

	rc = shape_record(r, sh, c, rec, &obj, &e);
	if (rc)
		return http_reply_error(r, &e);
	snprintf(etag, sizeof(etag), "ETag: \"%" PRId64 "\"\r\n",
		 rec->revision);
	return http_reply_json(r, 200, obj, etag);   /* obj stolen */
}

/*
 * Store errors of a write, as PocketBase reports them: a conflict (unique
 * value, taken id or name, or a delete blocked by a relation) is a 400
 * whose data names the field with code validation_not_unique where there
 * is one; everything else maps through the error table.
 */
static int reply_write_error(struct http_req *r, struct err *e)
{
	json_t *body;

	if (e->code != ERR_CONFLICT)
		return http_reply_error(r, e);
	if (!e->field[0]) {
		e->code = ERR_INVALID;
		return http_reply_error(r, e);
	}
	/* json_pack copies the strings; it fails on bytes that are not
	 * UTF-8, and then the generic error path (which cleans them) runs. */
	body = json_pack("{s:i, s:s, s:{s:{s:s, s:s}}}", "status", 400,
			 "message", e->msg, "data", e->field, "code",
			 "validation_not_unique", "message", e->msg);
	if (!body) {
		e->code = ERR_INVALID;
		return http_reply_error(r, e);
	}
	return http_reply_json(r, 400, body, NULL);
}

static int refuse_server_only(struct http_req *r, const struct collection *c)
{
	return http_fail(r, ERR_FORBIDDEN,
			 "records of %s are created and changed only by the "
			 "server itself", c->name);
}

/* ---- list ---------------------------------------------------------------- */

struct list_walk {
	struct http_req *r;
	struct shape *sh;
	const struct collection *c;
	json_t *items;
	struct err *e;
};

static int list_one(const struct record *rec, void *arg)
{
	struct list_walk *w = arg;
	json_t *obj;
	int rc;

	rc = shape_record(w->r, w->sh, w->c, rec, &obj, w->e);
	if (rc)
		return rc;
	if (json_array_append_new(w->items, obj))   /* stolen */
		return err_set(w->e, ERR_NOMEM, "out of memory");
	return 0;
}

/*
 * The spliced list: for a collection whose records show every stored
 * field to every caller (pb_record_public()), without expand or fields,
 * and whose stored data holds only fields of the schema
 * (store_data_clean()), each item is written from the row as stored
 * (pb_row_text()) instead of parsing the data, building the record object
 * and dumping it again, which was about 45 % of a list request's CPU. The
 * result is what pb_record_json() gives (records.bats compares every item
 * with the same record's view).
 */
static bool splice_ok(struct http_req *r, const struct collection *c,
		      const struct shape *sh)
{
	struct err e = ERR_INIT;
	bool clean = false;

	if (sh->pick || json_object_size(sh->expand) || !pb_record_public(c))
		return false;
	return store_data_clean(r->srv->store, c->name, &clean, &e) == 0 &&
	       clean;
}

struct splice {
	const struct collection *c;
	struct buf *out;
	int n;
	struct err *e;
};

static int splice_one(const struct store_row *row, void *arg)
{
	struct splice *sp = arg;

	if (sp->n++ && buf_putc(sp->out, ','))
		return err_set(sp->e, ERR_NOMEM, "out of memory");
	return pb_row_text(sp->out, sp->c, row, sp->e);
}

static int list_spliced(struct http_req *r, const struct collection *c,
			const struct store_query *q, int64_t page,
			int64_t per_page, int64_t total, int64_t pages,
			struct err *e)
{
	struct buf out = BUF_INIT;
	struct splice sp = { c, &out, 0, e };
	int rc;

	if (buf_printf(&out, "{\"page\":%lld,\"perPage\":%lld,"
		       "\"totalItems\":%lld,\"totalPages\":%lld,\"items\":[",
		       (long long)page, (long long)per_page, (long long)total,
		       (long long)pages)) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = store_list_rows(r->srv->store, c->name, q, splice_one, &sp, e);
	/* "\n": every JSON reply ends with one (http_reply_json()) */
	if (!rc && buf_puts(&out, "]}\n"))
		rc = err_set(e, ERR_NOMEM, "out of memory");
	if (!rc)
		rc = http_reply_text(r, 200, JSON_TYPE, out.ptr,
				     out.len);
out:
	buf_release(&out);
	return rc;
}

static int list_read(struct http_req *r)
{
	const struct collection *c = find_collection(r);
	struct err e = ERR_INIT;
	struct filter_auth fa;
	struct query_pred *rule = NULL, *fpred = NULL, *where = NULL;
	struct query_sort order;
	struct store_query q;
	struct shape sh;
	struct list_walk w;
	int64_t page = 1, per_page = PER_PAGE_DEFAULT, total = -1, pages = -1;
	char *filter = NULL, *sort = NULL;
	json_t *items = NULL, *body;
	bool skip_total = false;
	int rc;

	memset(&sh, 0, sizeof(sh));
	if (!c)
		return no_collection(r);
	caller(r, NULL, &fa);
	items = json_array();
	if (!items) {
		rc = err_set(&e, ERR_NOMEM, "out of memory");
		goto out;
	}
	/* The rule first: a NULL list rule is 403 whatever the query. */
	rc = rules_where(r->srv->schema, c, RULE_LIST, &fa, &rule, &e);
	if (rc)
		goto out;
	rc = http_query_page(r, PER_PAGE_DEFAULT, PER_PAGE_MAX, &page,
			     &per_page, &e);
	if (!rc)
		rc = query_bool(r, "skipTotal", &skip_total, &e);
	if (!rc)
		rc = query_param(r, "filter", &filter, &e);
	if (!rc)
		rc = query_param(r, "sort", &sort, &e);
	if (rc)
		goto out;
	rc = filter_compile_caller(r->srv->schema, c, filter ? filter : "",
				   &fa, http_is_admin(r), &fpred, &e);
	if (rc)
		goto out;
	/* "(rule) AND (filter)"; both are where's now */
	where = query_and(rule, fpred);
	rule = fpred = NULL;
	if (!where) {
		rc = err_set(&e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = filter_sort_compile(c, sort ? sort : "", &fa, &order, &e);
	if (rc)
		goto out;
	rc = shape_init(r, &sh, &e);
	if (rc)
		goto out;

	memset(&q, 0, sizeof(q));
	q.where = where;
	q.order = &order;
	if (!skip_total) {
		rc = store_count(r->srv->store, c->name, &q, &total, &e);
		if (rc)
			goto out;
		pages = (total + per_page - 1) / per_page;
	}
	q.limit = per_page;
	q.offset = (page - 1) * per_page;
	if (splice_ok(r, c, &sh)) {
		rc = list_spliced(r, c, &q, page, per_page, total, pages, &e);
		goto out;
	}
	w.r = r;
	w.sh = &sh;
	w.c = c;
	w.items = items;
	w.e = &e;
	rc = store_list(r->srv->store, c->name, &q, list_one, &w, &e);
	if (rc)
		goto out;
	/* "o" steals items, also when json_pack fails. */
	body = json_pack("{s:I, s:I, s:I, s:I, s:o}", "page", (json_int_t)page,
			 "perPage", (json_int_t)per_page, "totalItems",
			 (json_int_t)total, "totalPages", (json_int_t)pages,
			 "items", items);
	items = NULL;
	rc = http_reply_json(r, 200, body, NULL);
out:
	if (rc && !r->status)
		rc = http_reply_error(r, &e);
	shape_release(&sh);
	query_pred_free(rule);
	query_pred_free(fpred);
	query_pred_free(where);
	json_decref(items);
	free(filter);
	free(sort);
	return rc;
}

/* ---- view ---------------------------------------------------------------- */

static int view_read(struct http_req *r)
{
	const struct collection *c = find_collection(r);
	const char *id = r->params[1];
	struct err e = ERR_INIT;
	struct filter_auth fa;
	struct record rec;
	struct shape sh;
	int rc;

	memset(&sh, 0, sizeof(sh));
	if (!c)
		return no_collection(r);
	if (!id || !util_valid_id(id))
		return not_found(r);
	caller(r, NULL, &fa);
	rc = rules_get(r->srv->store, r->srv->schema, c, RULE_VIEW, id, &fa,
		       &rec, &e);
	if (rc == ERR_NOT_FOUND)
		return not_found(r);
	if (!rc)
		rc = shape_init(r, &sh, &e);
	if (rc) {
		shape_release(&sh);
		record_release(&rec);
		return http_reply_error(r, &e);
	}
	rc = reply_record(r, &sh, c, &rec);
	shape_release(&sh);
	record_release(&rec);
	return rc;
}

/* ---- the reply cache ----------------------------------------------------- */

/*
 * Whether the query string q asks for something that is no function of
 * the store: @now in a filter (the clock) or sort=@random. q is decoded
 * first, as the parameters are (http_query()), so "%40now" or "@%6Eow"
 * is seen too; case is ignored, which is more than the filter compiler
 * accepts. False when q was decoded whole and names neither.
 */
static bool query_is_volatile(const char *q)
{
	char dec[RESPCACHE_KEY_MAX + 1];
	size_t n = strlen(q);

	if (n > RESPCACHE_KEY_MAX ||
	    mg_url_decode(q, (int)n, dec, sizeof(dec), 1) < 0)
		return true;
	return strcasestr(dec, "@now") || strcasestr(dec, "@random");
}

/*
 * A list or a view (read, under the rule action) through the reply cache
 * (respcache.h). A reply kept is exactly what the same request by the
 * same caller would be answered at the same store head:
 *
 * - The key is everything the reply depends on besides the store: the
 *   action, the collection, the record id, the raw query string (every
 *   parameter a read takes: filter, sort, page, perPage, skipTotal,
 *   expand, fields) and the caller (kind, auth collection, id). No
 *   request header is read by a list or a view, and rules may name only
 *   @request.auth.*, @request.body.* (empty on a read) and @now. Parts are
 *   split by 0x1f, which no id, name or auth collection holds, and a raw
 *   query holding one is never kept, so a key names one request; the
 *   table compares whole keys.
 * - The caller's auth record (its role decides admin filters and which
 *   secret fields show) is the store's like any record: r->head was read
 *   before it (server.c), so it and every row read here are of head
 *   r->head or later, and a reply put under r->head is served only while
 *   the head has not moved from it.
 * - Not kept: anything but a GET (a HEAD is read afresh), a reply other
 *   than a 200 application/json one, a query naming @now or @random, and
 *   every reply of a schema one of whose rules names @now (then
 *   srv->replies is NULL: server.c).
 *
 * Store heads move only once a commit is durable (store_txn.c), and reads
 * may see a commit shortly before: a reply served from the table at head
 * H can then miss a write whose commit has not returned yet, which a read
 * racing that write could equally miss.
 */
static int cached(struct http_req *r, enum rule_action action,
		  http_handler_fn read)
{
	const struct collection *c = find_collection(r);
	const char *q = r->ri->query_string ? r->ri->query_string : "";
	const char *id = r->params[1] ? r->params[1] : "";
	struct respcache *cache = r->srv->replies;
	struct buf key = BUF_INIT, hit = BUF_INIT;
	struct http_capture cap;
	char extra[RESPCACHE_EXTRA_MAX];
	int rc, got;

	if (!cache || !c || r->head <= 0 ||
	    strcmp(r->ri->request_method, "GET") || strchr(q, '\x1f') ||
	    strchr(id, '\x1f') || query_is_volatile(q))
		return read(r);
	if (buf_printf(&key, "%d\x1f%s\x1f%s\x1f%s\x1f%d\x1f%s\x1f%s",
		       (int)action, c->name, id, q, (int)r->auth.kind,
		       r->auth.collection_id, r->auth.id)) {
		buf_release(&key);
		return read(r);
	}
	got = respcache_get(cache, key.ptr, r->head, &hit, extra);
	if (got == 1) {
		rc = http_reply_bytes(r, 200, JSON_TYPE, hit.ptr, hit.len,
				      extra);
		goto out;
	}
	memset(&cap, 0, sizeof(cap));
	buf_init(&cap.body, 0);
	buf_init(&cap.extra, 0);
	r->capture = &cap;
	rc = read(r);
	r->capture = NULL;
	if (!rc && cap.ok && cap.content_type &&
	    !strcmp(cap.content_type, JSON_TYPE))
		respcache_put(cache, key.ptr, r->head, cap.body.ptr,
			      cap.body.len, cap.extra.ptr);
	buf_release(&cap.body);
	buf_release(&cap.extra);
out:
	buf_release(&key);
	buf_release(&hit);
	return rc;
}

int api_records_list(struct http_req *r)
{
	return cached(r, RULE_LIST, list_read);
}

int api_records_view(struct http_req *r)
{
	return cached(r, RULE_VIEW, view_read);
}

/* ---- create -------------------------------------------------------------- */

/* A create, as one store_write() transaction: it may run on another
 * worker's thread, so it touches only what op holds. */
struct create_op {
	struct http_req *r;               /* read only */
	const struct collection *c;
	const struct store_put *put;
	struct record *rec;               /* the stored record, out */
	struct filter_auth *fa;
	bool refused;                     /* the create rule said no */
};

/* The create rule, as the put's check: it sees the new row, relations
 * included, before the write hooks (governance.h) run. */
static int create_check(struct store_txn *t, const struct record *rec,
			void *arg, struct err *e)
{
	struct create_op *op = arg;
	int ok;

	if (is_superuser(op->r))
		return 0;
	ok = rules_txn_check(t, op->r->srv->schema, op->c, RULE_CREATE,
			     rec->id, op->fa, e);
	if (ok < 0)
		return ok;
	if (!ok) {
		op->refused = true;
		return ERR_FORBIDDEN;
	}
	/* then the relations: each must reach a record the caller sees */
	return rules_check_write(t, op->r->srv->schema, op->c, rec->id,
				 rec->data, NULL, op->fa, e);
}

static int create_txn(struct store_txn *t, void *arg, struct err *e)
{
	struct create_op *op = arg;
	struct store_put p = *op->put;

	p.check = create_check;
	p.check_arg = op;
	/* the write hooks run inside the put as the caller */
	store_txn_set_actor(t, op->r->auth.id, 0);
	return store_txn_put(t, &p, op->rec, NULL, e);
}

int api_records_create(struct http_req *r)
{
	const struct collection *c = find_collection(r);
	struct err e = ERR_INIT;
	struct create_op op;
	struct store_put p;
	struct filter_auth fa;
	struct record rec;
	struct shape sh;
	json_t *body = NULL;
	char *id = NULL;
	int rc;

	memset(&sh, 0, sizeof(sh));
	record_init(&rec);
	if (!c)
		return no_collection(r);
	if (!c->api_writable)
		return refuse_server_only(r, c);
	if (!is_superuser(r) && !c->rules[RULE_CREATE])
		return http_fail(r, ERR_FORBIDDEN, RULES_SUPERUSER_ONLY);
	rc = shape_init(r, &sh, &e);
	if (!rc)
		rc = read_body(r, c, NULL, &body, &id, &e);
	if (!rc)
		rc = default_owner(r, c, body, &e);
	if (rc)
		goto fail;
	if (!is_superuser(r)) {
		rc = check_system_fields(c, body, NULL, r->auth.id, &e);
		if (rc)
			goto fail;
	}
	if (c->auth) {
		json_object_del(body, "oldPassword");
		if (!json_object_get(body, "password")) {
			rc = err_set_field(&e, ERR_INVALID, "password",
					   "password is required");
			goto fail;
		}
		/* bcrypt: before taking the writer lock */
		rc = api_auth_prepare_password(r->srv, c, body, &e);
		if (rc)
			goto fail;
	}
	caller(r, body, &fa);

	memset(&p, 0, sizeof(p));
	p.collection = c->name;
	p.id = id;
	p.data = body;
	p.mode = STORE_CREATE;
	op.r = r;
	op.c = c;
	op.put = &p;
	op.rec = &rec;
	op.fa = &fa;
	op.refused = false;
	/* Combined with the other creates queued meanwhile (store_write). */
	rc = store_write(r->srv->store, create_txn, &op, &e);
	if (op.refused) {
		rc = http_fail(r, ERR_INVALID, MSG_CREATE_REFUSED);
		goto out;
	}
	if (rc)
		goto fail;
	rc = reply_record(r, &sh, c, &rec);
	goto out;
fail:
	rc = reply_write_error(r, &e);
out:
	shape_release(&sh);
	record_release(&rec);
	json_decref(body);
	free(id);
	return rc;
}

/* ---- update -------------------------------------------------------------- */

/*
 * A non-superuser changing an auth record's password must prove the old
 * one, as PocketBase requires, so a stolen token cannot lock the owner out.
 * cur is the stored data; called only after the update rule passed, so the
 * answer never tells anything about a record the caller may not change.
 */
static int check_old_password(const json_t *old, json_t *cur,
			      struct err *e)
{
	if (!json_is_string(old) || !*json_string_value(old))
		return err_set_field(e, ERR_INVALID, "oldPassword",
				     "oldPassword is required to change the "
				     "password");
	if (!auth_password_verify(json_string_value(old),
				  json_string_value(json_object_get(cur,
								    "password"))))
		return err_set_field(e, ERR_INVALID, "oldPassword",
				     "oldPassword is not the current password");
	return 0;
}

/*
 * An update must not take a record out of its owner's hands: in a
 * collection with owner fields (rules_owner_field()), a row that satisfies
 * the create rule for the caller before the update must satisfy it after
 * (cron_jobs: "chat.user = @request.auth.id"). Rows the caller could not
 * have created (an admin's edit of another user's record) are not bound,
 * so admins keep what their update rule gives them. *owned says whether
 * the stored row binds the update; 0 or a negative ERR_*.
 */
static int owned_before(struct store_txn *t, const struct http_req *r,
			const struct collection *c, const char *id,
			const struct filter_auth *fa, bool *owned,
			struct err *e)
{
	int ok;

	*owned = false;
	if (!c->rules[RULE_CREATE] || !rules_has_owner(c))
		return 0;
	ok = rules_txn_check(t, r->srv->schema, c, RULE_CREATE, id, fa, e);
	if (ok < 0)
		return ok;
	*owned = ok;
	return 0;
}

/* The second half: the new row, seen inside t after the put. */
static int still_owned(struct store_txn *t, const struct http_req *r,
		       const struct collection *c, const char *id,
		       const struct filter_auth *fa, struct err *e)
{
	int ok = rules_txn_check(t, r->srv->schema, c, RULE_CREATE, id, fa, e);

	if (ok < 0)
		return ok;
	return ok ? 0 : err_set(e, ERR_FORBIDDEN,
				"the change would give the %s record to "
				"someone else: the new record does not "
				"satisfy the create rule", c->name);
}

int api_records_update(struct http_req *r)
{
	const struct collection *c = find_collection(r);
	const char *id = r->params[1];
	struct err e = ERR_INIT;
	struct store_txn *t = NULL;
	struct store_put p;
	struct filter_auth fa;
	struct record cur, rec;
	json_t *body = NULL, *old_pw = NULL;
	int64_t want_rev = 0, if_rev = 0;
	bool new_password, owned = false;
	struct shape sh;
	int rc, ok;

	memset(&sh, 0, sizeof(sh));
	record_init(&cur);
	record_init(&rec);
	if (!c)
		return no_collection(r);
	if (!id || !util_valid_id(id))
		return not_found(r);
	if (!c->api_writable)
		return refuse_server_only(r, c);
	if (!is_superuser(r) && !c->rules[RULE_UPDATE])
		return http_fail(r, ERR_FORBIDDEN, RULES_SUPERUSER_ONLY);
	rc = if_match(r, &want_rev, &e);
	if (!rc)
		rc = shape_init(r, &sh, &e);
	if (!rc)
		rc = read_body(r, c, id, &body, NULL, &e);
	if (rc)
		goto fail;
	new_password = c->auth && json_object_get(body, "password");
	if (c->auth) {
		/* oldPassword is not a field: keep it aside for the check */
		old_pw = json_incref(json_object_get(body, "oldPassword"));
		json_object_del(body, "oldPassword");
	}
	caller(r, body, &fa);

	rc = store_begin(r->srv->store, &t, &e);
	if (rc)
		goto fail;
	rc = store_txn_get(t, c->name, id, &cur, &e);
	if (rc == ERR_NOT_FOUND) {
		rc = not_found(r);
		goto out;
	}
	if (rc)
		goto fail;
	if (!is_superuser(r)) {
		ok = rules_txn_check(t, r->srv->schema, c, RULE_UPDATE, id, &fa,
				     &e);
		if (ok < 0) {
			rc = ok;
			goto fail;
		}
		if (!ok) {
			rc = not_found(r);
			goto out;
		}
		rc = check_system_fields(c, body, cur.data, r->auth.id,
					 &e);
		if (!rc)
			rc = rules_check_write(t, r->srv->schema, c, id, body,
					       cur.data, &fa, &e);
		if (rc)
			goto fail;
		rc = owned_before(t, r, c, id, &fa, &owned, &e);
		if (rc)
			goto fail;
	}
	/* after the rule: a hidden record is 404, never 412 */
	rc = api_auth_keep_cli_account(t, c, id, body, &e);
	if (!rc)
		rc = precondition(r, c, &cur, want_rev, &if_rev, &e);
	if (rc)
		goto fail;
	if (!want_rev)
		if_rev = 0;   /* no If-Match: last writer wins, as PocketBase */
	/* Passwords: bcrypt is slow, so never under the writer lock. The
	 * checks above passed; release the lock, verify the old password and
	 * hash the new one, then write only if nothing changed meanwhile. */
	if (new_password) {
		store_abort(t);
		t = NULL;
		if (!is_superuser(r)) {
			rc = check_old_password(old_pw, cur.data, &e);
			if (rc)
				goto fail;
		}
		rc = api_auth_prepare_password(r->srv, c, body, &e);
		if (rc)
			goto fail;
		/* the record may have changed while the lock was released */
		if_rev = cur.revision;
		rc = store_begin(r->srv->store, &t, &e);
		if (rc)
			goto fail;
	}

	memset(&p, 0, sizeof(p));
	p.collection = c->name;
	p.id = id;
	p.data = body;
	p.partial = true;
	p.if_revision = if_rev;
	p.mode = STORE_UPDATE;
	/* the write hooks (governance.h) run inside the put as the caller */
	store_txn_set_actor(t, r->auth.id, 0);
	rc = store_txn_put(t, &p, &rec, NULL, &e);
	if (!rc && owned)
		rc = still_owned(t, r, c, id, &fa, &e);
	if (rc)
		goto fail;
	rc = store_commit(t, &e);
	t = NULL;
	if (rc)
		goto fail;
	rc = reply_record(r, &sh, c, &rec);
	goto out;
fail:
	if (rc == ERR_NOT_FOUND && !r->status)
		rc = not_found(r);
	else
		rc = reply_write_error(r, &e);
out:
	store_abort(t);
	shape_release(&sh);
	record_release(&cur);
	record_release(&rec);
	json_decref(body);
	json_decref(old_pw);
	return rc;
}

/* ---- delete -------------------------------------------------------------- */

int api_records_delete(struct http_req *r)
{
	const struct collection *c = find_collection(r);
	const char *id = r->params[1];
	struct err e = ERR_INIT;
	struct store_txn *t = NULL;
	struct filter_auth fa;
	int64_t want_rev = 0, if_rev = 0, rev;
	struct record cur;
	char etag[64];
	int rc, ok;

	if (!c)
		return no_collection(r);
	if (!id || !util_valid_id(id))
		return not_found(r);
	if (!c->api_writable)
		return refuse_server_only(r, c);
	if (!is_superuser(r) && !c->rules[RULE_DELETE])
		return http_fail(r, ERR_FORBIDDEN, RULES_SUPERUSER_ONLY);
	rc = if_match(r, &want_rev, &e);
	if (rc)
		return http_reply_error(r, &e);
	caller(r, NULL, &fa);

	rc = store_begin(r->srv->store, &t, &e);
	if (rc)
		goto fail;
	ok = rules_txn_check(t, r->srv->schema, c, RULE_DELETE, id, &fa, &e);
	if (ok < 0) {
		rc = ok;
		goto fail;
	}
	if (!ok) {
		rc = not_found(r);
		goto out;
	}
	if (want_rev) {
		rc = store_txn_get(t, c->name, id, &cur, &e);
		if (!rc)
			rc = precondition(r, c, &cur, want_rev, &if_rev, &e);
		record_release(&cur);
		if (rc)
			goto fail;
	}
	rc = api_auth_keep_cli_account(t, c, id, NULL, &e);
	if (!rc)
		rc = store_txn_delete(t, c->name, id, if_rev, &e);
	if (rc)
		goto fail;
	rev = store_txn_revision(t);
	rc = store_commit(t, &e);
	t = NULL;
	if (rc)
		goto fail;
	snprintf(etag, sizeof(etag), "ETag: \"%" PRId64 "\"\r\n", rev);
	rc = http_reply_empty(r, 204, etag);
	goto out;
fail:
	rc = rc == ERR_NOT_FOUND ? not_found(r) : reply_write_error(r, &e);
out:
	store_abort(t);
	return rc;
}
