/*
 * api_apply.c - apply, diff and records in manifest form over HTTP (see
 * api_apply.h for the routes and the two body forms).
 *
 * The handlers are thin: they parse the request into the same
 * struct manifest_set and struct apply_opts the CLI builds, and call the
 * same apply_run() / apply_diff() / store calls, so a server-side apply and
 * an offline one cannot drift apart. All validation errors come from
 * manifest.c and apply.c with their FILE:LINE:COL, every one of them in
 * one reply (http_reply_errors()), and apply's single transaction
 * guarantees that nothing is written on any error.
 */
#include "api_apply.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api_auth.h"
#include "apply.h"
#include "manifest.h"
#include "observed.h"
#include "secrets.h"
#include "selector.h"
#include "server.h"
#include "store/store.h"

#define APPLY_BODY_DEFAULT ((size_t)16 << 20)
#define APPLYSET_MAX 256

/* 401 for guests, 403 for non-admins; 0 when the caller may go on. */
static int require_admin(struct http_req *r)
{
	if (r->auth.kind == CALLER_GUEST) {
		http_fail(r, ERR_UNAUTHORIZED,
			  "the request requires an admin or superuser token");
		return -1;
	}
	if (!http_is_admin(r)) {
		http_fail(r, ERR_FORBIDDEN,
			  "only admins and superusers may use the declarative api");
		return -1;
	}
	return 0;
}

/* Query flag name: absent = false; "true"/"1" or "false"/"0". */
static int query_bool(const struct http_req *r, const char *name, bool *out,
		      struct err *e)
{
	char v[16];
	int n = http_query(r, name, v, sizeof(v));

	*out = false;
	if (n == -1)
		return 0;
	if (n >= 0 && (!strcmp(v, "true") || !strcmp(v, "1"))) {
		*out = true;
		return 0;
	}
	if (n >= 0 && (!strcmp(v, "false") || !strcmp(v, "0")))
		return 0;
	return err_set_field(e, ERR_INVALID, name,
			     "query parameter '%s' must be true or false", name);
}

static int parse_opts(const struct http_req *r, struct apply_opts *o,
		      char applyset[APPLYSET_MAX], struct err *e)
{
	int n;

	memset(o, 0, sizeof(*o));
	if (query_bool(r, "dryRun", &o->dry_run, e) ||
	    query_bool(r, "prune", &o->prune, e) ||
	    query_bool(r, "force", &o->force, e))
		return e->code;
	n = http_query(r, "applyset", applyset, APPLYSET_MAX);
	if (n < -1)
		return err_set_field(e, ERR_INVALID, "applyset",
				     "apply set name is longer than %d bytes",
				     APPLYSET_MAX - 1);
	if (n >= 0)
		o->applyset = applyset;
	if (o->prune && !o->applyset)
		return err_set_field(e, ERR_INVALID, "prune",
				     "--prune needs --applyset NAME");
	return 0;
}

int api_show_secrets(const struct http_req *r, bool *show, struct err *e)
{
	int rc = query_bool(r, PROTO_SHOW_SECRETS, show, e);

	if (!rc && *show && r->auth.kind != CALLER_SUPERUSER)
		rc = err_set_field(e, ERR_FORBIDDEN, PROTO_SHOW_SECRETS,
				   "only superusers may read secret fields "
				   "(query parameter '%s')", PROTO_SHOW_SECRETS);
	return rc;
}

/* Content-Type without parameters equals type, case-insensitively. */
static bool is_type(const char *ctype, const char *type)
{
	size_t n = strlen(type);

	if (!ctype)
		return false;
	while (*ctype == ' ')
		ctype++;
	return !strncasecmp(ctype, type, n) &&
	       (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

static bool name_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > API_APPLY_MAX_FILE_NAME || strlen(s) != len)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* The files form: {"files": [{"name", "text"}, ...]}. */
static int parse_files(const struct schema *sc, const struct buf *body,
		       const struct manifest_known *known,
		       struct manifest_set *m, struct err_list *errs,
		       struct err *e)
{
	json_error_t jerr;
	json_t *root, *files, *f;
	const char *key;
	json_t *v;
	size_t i;
	int rc = 0;

	root = json_loadb(body->ptr, body->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return err_set(e, ERR_INVALID, "invalid JSON body at line %d, column %d: %s",
			       jerr.line, jerr.column, jerr.text);
	files = json_object_get(root, PROTO_APPLY_FILES);
	if (!json_is_object(root) || !json_is_array(files)) {
		rc = err_set_field(e, ERR_INVALID, "files",
				   "the body must be an object {\"files\": [{\"name\", \"text\"}, ...]}");
		goto out;
	}
	json_object_foreach(root, key, v) {
		if (strcmp(key, PROTO_APPLY_FILES)) {
			rc = err_set_field(e, ERR_INVALID, "files",
					   "unknown key '%.64s' in the body (expected files)",
					   key);
			goto out;
		}
	}
	if (json_array_size(files) == 0 ||
	    json_array_size(files) > API_APPLY_MAX_FILES) {
		rc = err_set_field(e, ERR_INVALID, "files",
				   "files must list 1 to %d files",
				   API_APPLY_MAX_FILES);
		goto out;
	}
	json_array_foreach(files, i, f) {
		json_t *name = json_object_get(f, PROTO_APPLY_FILE_NAME);
		json_t *text = json_object_get(f, PROTO_APPLY_FILE_TEXT);

		if (!json_is_object(f) || json_object_size(f) != 2 ||
		    !json_is_string(name) || !json_is_string(text)) {
			rc = err_set_field(e, ERR_INVALID, "files",
					   "files[%zu] must be an object {\"name\": string, \"text\": string}",
					   i);
			goto out;
		}
		if (!name_ok(json_string_value(name), json_string_length(name))) {
			rc = err_set_field(e, ERR_INVALID, "files",
					   "files[%zu].name must be 1 to %d bytes without control characters",
					   i, API_APPLY_MAX_FILE_NAME);
			goto out;
		}
		rc = manifest_parse_file(sc, json_string_value(name),
					 json_string_value(text),
					 json_string_length(text), known, m,
					 errs, e);
		if (rc)
			goto out;
	}
out:
	json_decref(root);
	return rc;
}

/* apply_load_fn: the request's body (read already) into m; each stream
 * must hold at least one document, as a file does offline. */
static int parse_body(void *arg, const struct manifest_known *known,
		      struct manifest_set *m, struct err_list *errs,
		      struct err *e)
{
	struct http_req *r = arg;

	if (is_type(http_header(r, "Content-Type"), PROTO_APPLY_FILES_TYPE))
		return parse_files(r->srv->schema, &r->body, known, m, errs,
				   e);
	return manifest_parse_file(r->srv->schema, "request", r->body.ptr,
				   r->body.len, known, m, errs, e);
}

static int run_apply(struct http_req *r, bool diff)
{
	struct manifest_set m = { NULL, 0, 0 };
	struct err_list errs = ERR_LIST_INIT;
	struct apply_opts o;
	struct err e = ERR_INIT;
	char applyset[APPLYSET_MAX];
	json_t *res = NULL;
	size_t cap;
	bool show;
	int rc;

	if (require_admin(r))
		return 0;
	cap = r->srv->opts->max_apply_body;
	if (http_read_body(r, cap ? cap : APPLY_BODY_DEFAULT, &e) ||
	    parse_opts(r, &o, applyset, &e) ||
	    api_show_secrets(r, &show, &e)) {
		rc = http_reply_error(r, &e);
		goto out;
	}
	o.actor = r->auth.id;   /* the governance hooks act as the caller */
	o.errors = &errs;       /* with the loader's, if any: all in one */
	o.keys = &r->srv->keys; /* masked secrets applied back: unchanged */
	/* An apply parses inside its transaction, taking unchanged text
	 * as it stands (apply.h); a diff shows every record. */
	if (diff) {
		rc = parse_body(r, NULL, &m, &errs, &e);
		if (!rc)
			rc = apply_diff(r->srv->store, &m, &o, &res, &e);
	} else {
		rc = apply_run_load(r->srv->store, parse_body, r, &m, &o, &res,
				    &e);
	}
	if (!rc && !show)
		rc = secrets_mask_result(&r->srv->keys, r->srv->schema, res, &e);
	if (rc) {
		json_decref(res);
		/* The problems in the manifests, unless something else
		 * (the store, memory) ended the apply. */
		rc = errs.n && e.code == errs.v[0].err.code ?
			     http_reply_errors(r, &errs) :
			     http_reply_error(r, &e);
		goto out;
	}
	rc = http_reply_json(r, 200, res, NULL); /* res stolen */
out:
	manifest_set_release(&m);
	err_list_release(&errs);
	return rc;
}

int api_apply(struct http_req *r)
{
	return run_apply(r, false);
}

int api_diff(struct http_req *r)
{
	return run_apply(r, true);
}

/* ------------------------------------------------------------------ */
/* Records in manifest form                                            */

enum view { VIEW_MANIFEST, VIEW_RECORD };

static const struct collection *find_kind(const struct http_req *r,
					  struct err *e)
{
	const char *kind = r->params[0] ? r->params[0] : "";
	const struct collection *c = schema_find_kind_or_short(r->srv->schema,
							     kind);

	if (!c)
		err_set(e, ERR_NOT_FOUND, "unknown kind '%.100s'", kind);
	return c;
}

struct walk {
	struct store *store;
	const struct collection *coll;
	enum view view;
	bool managed;            /* ?managed=true: metadata.managedFields */
	bool show_secrets;       /* ?showSecrets=true by a superuser */
	struct observed *obs;    /* VIEW_RECORD: observedGeneration */
	const struct auth_keys *keys;
	const struct selector *selector; /* ?labelSelector=, or NULL */
	json_t *items;
	struct err *e;
};

static int parse_view(const struct http_req *r, struct walk *w, struct err *e)
{
	enum view *v = &w->view;
	char s[16];
	int n = http_query(r, "managed", s, sizeof(s));

	w->managed = n >= 0 && !strcmp(s, "true");
	n = http_query(r, "view", s, sizeof(s));
	*v = VIEW_MANIFEST;
	if (n == -1 || (n >= 0 && !strcmp(s, "manifest")))
		return 0;
	if (n >= 0 && !strcmp(s, "record")) {
		*v = VIEW_RECORD;
		/* The same floors as an offline `get -o record` reads. */
		w->obs = observed_new(w->store);
		if (!w->obs)
			return err_set(e, ERR_NOMEM, "out of memory");
		return observed_load(w->obs, e);
	}
	return err_set_field(e, ERR_INVALID, "view",
			     "query parameter 'view' must be manifest or record");
}


static json_t *render(const struct walk *w, const struct record *r)
{
	json_t *doc;

	if (w->view == VIEW_RECORD) {
		doc = record_to_public_json(w->coll, r);
		if (!doc) {
			err_set(w->e, ERR_NOMEM, "out of memory");
		} else if (observed_set(w->obs, doc, false, w->e)) {
			json_decref(doc);
			doc = NULL;
		}
	} else {
		doc = apply_record_manifest(w->store, r, w->e);
		if (doc && w->managed &&
		    apply_managed_fields(w->store, r, doc, w->e)) {
			json_decref(doc);
			doc = NULL;
		}
	}
	if (doc && !w->show_secrets &&
	    secrets_mask_doc(w->keys, w->coll, doc, w->e)) {
		json_decref(doc);
		doc = NULL;
	}
	return doc;
}

static int visit(const struct record *r, void *arg)
{
	struct walk *w = arg;
	json_t *doc;

	if (!selector_match(w->selector, r->labels))
		return 0;
	doc = render(w, r);
	if (!doc)
		return w->e->code ? w->e->code : ERR_NOMEM;
	if (json_array_append_new(w->items, doc)) /* doc stolen */
		return err_set(w->e, ERR_NOMEM, "out of memory");
	return 0;
}

/* ?labelSelector= (kubectl's syntax, selector.h) into *out; NULL when
 * absent. A 400 naming the position when it does not parse. */
static int parse_selector(const struct http_req *r, struct selector **out,
			  struct err *e)
{
	char text[4096 + 1];
	int n = http_query(r, "labelSelector", text, sizeof(text));

	*out = NULL;
	if (n == -1)
		return 0;
	if (n < 0)
		return err_set_field(e, ERR_INVALID, "labelSelector",
				     "query parameter 'labelSelector' is too long");
	if (selector_parse(text, out, e)) {
		snprintf(e->field, sizeof(e->field), "labelSelector");
		return e->code;
	}
	return 0;
}

int api_manifests_list(struct http_req *r)
{
	struct store_query q = { NULL, &query_by_name, 0, 0 };
	struct err e = ERR_INIT;
	struct selector *sel = NULL;
	struct walk w;
	json_t *items = NULL, *res;
	int rc;

	if (require_admin(r))
		return 0;
	memset(&w, 0, sizeof(w));
	w.store = r->srv->store;
	w.e = &e;
	w.keys = &r->srv->keys;
	w.coll = find_kind(r, &e);
	if (!w.coll || parse_view(r, &w, &e) ||
	    api_show_secrets(r, &w.show_secrets, &e) ||
	    parse_selector(r, &sel, &e)) {
		observed_free(w.obs);
		selector_free(sel);
		return http_reply_error(r, &e);
	}
	items = json_array();
	if (!items) {
		selector_free(sel);
		observed_free(w.obs);
		return http_fail(r, ERR_NOMEM, "out of memory");
	}
	w.items = items;
	w.selector = sel;
	/* By name, as `pocketctl get` lists offline (cmd_get.c). */
	rc = store_list(w.store, w.coll->name, &q, visit, &w, &e);
	selector_free(sel);
	observed_free(w.obs);
	if (rc) {
		json_decref(items);
		if (!e.code)
			err_set(&e, rc, "cannot list %s", w.coll->name);
		return http_reply_error(r, &e);
	}
	res = json_pack("{s:o}", "items", items); /* items stolen */
	if (!res)
		return http_fail(r, ERR_NOMEM, "out of memory");
	return http_reply_json(r, 200, res, NULL); /* res stolen */
}

int api_manifests_get(struct http_req *r)
{
	struct err e = ERR_INIT;
	struct record rec;
	struct walk w;
	json_t *doc = NULL;
	int rc;

	if (require_admin(r))
		return 0;
	record_init(&rec);
	memset(&w, 0, sizeof(w));
	w.store = r->srv->store;
	w.e = &e;
	w.keys = &r->srv->keys;
	w.coll = find_kind(r, &e);
	if (!w.coll || parse_view(r, &w, &e) ||
	    api_show_secrets(r, &w.show_secrets, &e) ||
	    store_get_named(w.store, NULL, w.coll->name,
			    r->params[1] ? r->params[1] : "", &rec, &e)) {
		rc = http_reply_error(r, &e);
		goto out;
	}
	doc = render(&w, &rec);
	if (!doc) {
		rc = http_reply_error(r, &e);
		goto out;
	}
	rc = http_reply_json(r, 200, doc, NULL); /* doc stolen */
out:
	observed_free(w.obs);
	record_release(&rec);
	return rc;
}

int api_manifests_delete(struct http_req *r)
{
	const struct collection *c;
	struct store_txn *t = NULL;
	struct err e = ERR_INIT;
	struct record rec;
	json_t *res;
	int rc;

	if (require_admin(r))
		return 0;
	record_init(&rec);
	c = find_kind(r, &e);
	if (!c || store_begin(r->srv->store, &t, &e) ||
	    store_get_named(NULL, t, c->name,
			    r->params[1] ? r->params[1] : "", &rec, &e) ||
	    api_auth_keep_cli_account(t, c, rec.id, NULL, &e) ||
	    store_txn_delete(t, c->name, rec.id, 0, &e)) {
		rc = http_reply_error(r, &e);
		goto out;
	}
	rc = store_commit(t, &e);
	t = NULL;
	if (rc) {
		rc = http_reply_error(r, &e);
		goto out;
	}
	res = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "kind", c->kind,
			"collection", c->name, "name", rec.name, "id", rec.id,
			"action", "deleted",
			"revision", (json_int_t)store_head(r->srv->store));
	if (!res)
		rc = http_fail(r, ERR_NOMEM, "out of memory");
	else
		rc = http_reply_json(r, 200, res, NULL); /* res stolen */
out:
	store_abort(t);
	record_release(&rec);
	return rc;
}
