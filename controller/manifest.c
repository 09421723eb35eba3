/*
 * manifest.c - YAML manifests: files and directories of documents into a
 * validated list of {kind, name, labels, spec} with source positions (see
 * manifest.h).
 *
 * Only the envelope is checked here (apiVersion, kind, metadata, spec,
 * duplicates); what spec may contain is the schema's business, in apply.
 * Loading goes on after a bad document, so that every problem of every
 * file is found in one pass (the *_all functions hand the list over); a
 * document with a problem is left out of the set. Only what stops reading
 * (a missing file, i/o, memory) ends a load at once.
 */
#include "manifest.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "suggest.h"
#include "util.h"

#define NAME_MAX_BYTES 200
#define QUOTE_MAX 64           /* bytes of a key or value quoted in a message */

/* The document being checked: where it came from and where it sits. */
struct docctx {
	const char *file;
	const struct yaml_doc *ydoc;   /* borrowed */
	const char *prefix;            /* "" or "3" / "items.3" for lists */
	int line, column;              /* start of this document */
	struct err *e;
	struct err_list *errs;         /* every error goes here too */
};

static int at(const struct docctx *c, const char *rel, int code,
	      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int at_key(const struct docctx *c, const char *rel, int code,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* How many bytes of s to quote in a message: at most QUOTE_MAX, and never
 * half of a UTF-8 sequence (messages end up in JSON replies). */
static int qlen(const char *s)
{
	size_t n = strlen(s), q = n > QUOTE_MAX ? QUOTE_MAX : n;

	if (q < n)
		while (q > 0 && ((unsigned char)s[q] & 0xC0) == 0x80)
			q--;
	return (int)q;
}

/*
 * Record "FILE:LINE:COL: message" with the position of rel (a path inside
 * the document, "" for the document itself; of its key when key) and
 * e->field = rel.
 */
__attribute__((format(printf, 5, 0)))
static int vat(const struct docctx *c, const char *rel, bool key, int code,
	       const char *fmt, va_list ap)
{
	char msg[ERR_MSG_MAX], abs[ERR_FIELD_MAX * 2];
	int line = 0, col = 0;
	int rc;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (rel && *rel) {
		snprintf(abs, sizeof(abs), "%s%s%s", c->prefix,
			 *c->prefix ? "." : "", rel);
		(key ? yaml_doc_key_pos : yaml_doc_pos)(c->ydoc, abs, &line,
							&col);
	}
	if (!line) {
		line = c->line;
		col = c->column;
	}
	rc = err_set_field(c->e, code, rel ? rel : "", "%s:%d:%d: %s",
			   c->file, line, col, msg);
	if (err_list_add(c->errs, c->e, c->file, line, col))
		return err_set(c->e, ERR_NOMEM, "out of memory");
	return rc;
}

/* A problem with the value at rel. */
static int at(const struct docctx *c, const char *rel, int code,
	      const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vat(c, rel, false, code, fmt, ap);
	va_end(ap);
	return rc;
}

/* A problem with the key of rel itself (unknown, misspelt). */
static int at_key(const struct docctx *c, const char *rel, int code,
		  const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vat(c, rel, true, code, fmt, ap);
	va_end(ap);
	return rc;
}

/* Keep the first code of several checks in *rc. */
static void keep(int *rc, int code)
{
	if (!*rc)
		*rc = code;
}

/* Problems in a manifest, reported and gone past; anything else (memory,
 * i/o) stops the load. */
static bool invalid(int rc)
{
	return rc == ERR_INVALID || rc == ERR_CONFLICT;
}

/* " (did you mean 'X'?)" for word among the NULL-terminated names. */
static void hint_from(const char *word, const char *const *names, char *out,
		      size_t n)
{
	struct suggest sg;

	suggest_init(&sg, word);
	for (; *names; names++)
		suggest_consider(&sg, *names, *names);
	suggest_hint(&sg, out, n);
}

/* The same for a kind: every kind, collection name and plural of schema. */
static void hint_kind(const struct schema *schema, const char *word,
		      char *out, size_t n)
{
	char plural[128];
	struct suggest sg;
	size_t i;

	suggest_init(&sg, word);
	for (i = 0; i < schema->ncollections; i++) {
		const struct collection *k = &schema->collections[i];

		if (!k->api_writable)
			continue;   /* never applied: no use suggesting it */
		snprintf(plural, sizeof(plural), "%ss", k->kind);
		suggest_consider(&sg, k->kind, k->kind);
		suggest_consider(&sg, k->name, k->kind);
		suggest_consider(&sg, plural, k->kind);
	}
	suggest_hint(&sg, out, n);
}

static void doc_release(struct manifest_doc *d)
{
	free(d->file);
	free(d->name);
	free(d->known_id);
	json_decref(d->labels);
	json_decref(d->spec);
	json_decref(d->positions);
}

void manifest_set_release(struct manifest_set *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->n; i++)
		doc_release(&m->docs[i]);
	free(m->docs);
	m->docs = NULL;
	m->n = m->cap = 0;
}

/* Drop the documents appended after the first n. */
static void set_truncate(struct manifest_set *m, size_t n)
{
	size_t i;

	for (i = n; i < m->n; i++)
		doc_release(&m->docs[i]);
	m->n = n;
}

/* Room for more documents in m. */
static int set_reserve(struct manifest_set *m, size_t more, struct err *e)
{
	struct manifest_doc *docs;
	size_t cap;

	if (m->n + more <= m->cap)
		return 0;
	if (more > SIZE_MAX / sizeof(*docs) / 2 - m->n)
		return err_set(e, ERR_NOMEM, "out of memory");
	cap = m->cap * 2 > m->n + more ? m->cap * 2 : m->n + more;
	docs = realloc(m->docs, cap * sizeof(*docs));
	if (!docs)
		return err_set(e, ERR_NOMEM, "out of memory");
	m->docs = docs;
	m->cap = cap;
	return 0;
}

static const char *type_name(const json_t *v)
{
	if (!v)
		return "nothing";
	switch (json_typeof(v)) {
	case JSON_OBJECT:  return "a mapping";
	case JSON_ARRAY:   return "a list";
	case JSON_STRING:  return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL:    return "a number";
	case JSON_TRUE:
	case JSON_FALSE:   return "a boolean";
	default:           return "null";
	}
}

/*
 * Copy the positions under the path in abs (whose first skip bytes are the
 * list prefix) of value v and everything inside it from src into dst,
 * without the prefix. abs is restored on return.
 */
static int copy_positions(json_t *src, json_t *dst, struct buf *abs,
			  size_t skip, json_t *v)
{
	size_t old = abs->len, i;
	const char *key;
	json_t *item, *p;
	char idx[32];
	int rc = 0;

	if (abs->len > skip) {
		p = json_object_get(src, abs->ptr);
		/* p is borrowed from src; the new key holds its own ref. */
		if (p && json_object_set(dst, abs->ptr + skip + (skip ? 1 : 0),
					 p))
			return ERR_NOMEM;
	}
	if (json_is_object(v)) {
		json_object_foreach(v, key, item) {
			rc = abs->len ? buf_putc(abs, '.') : 0;
			if (!rc)
				rc = buf_puts(abs, key);
			if (!rc)
				rc = copy_positions(src, dst, abs, skip, item);
			abs->len = old;
			abs->ptr[old] = '\0';
			if (rc)
				return rc;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, item) {
			snprintf(idx, sizeof(idx), "%zu", i);
			rc = abs->len ? buf_putc(abs, '.') : 0;
			if (!rc)
				rc = buf_puts(abs, idx);
			if (!rc)
				rc = copy_positions(src, dst, abs, skip, item);
			abs->len = old;
			abs->ptr[old] = '\0';
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* The positions of the document at c->prefix, re-keyed relative to it. */
static int doc_positions(const struct docctx *c, json_t *v, json_t **out)
{
	struct buf abs = BUF_INIT;
	json_t *dst = NULL;
	int rc;

	*out = NULL;
	if (!*c->prefix) {
		*out = json_incref(c->ydoc->positions);
		return 0;
	}
	dst = json_object();
	if (!dst)
		return ERR_NOMEM;
	rc = buf_puts(&abs, c->prefix);
	if (!rc)
		rc = copy_positions(c->ydoc->positions, dst, &abs,
				    strlen(c->prefix), v);
	buf_release(&abs);
	if (rc) {
		json_decref(dst);
		return rc;
	}
	*out = dst;
	return 0;
}

/* metadata.name: a non-empty string of at most NAME_MAX_BYTES bytes
 * without '/' or control characters (C0, DEL, C1). */
static int check_name(const struct docctx *c, json_t *name)
{
	const unsigned char *s;
	size_t n, i;

	if (!name)
		return at(c, "metadata", ERR_INVALID,
			  "missing 'metadata.name'");
	if (!json_is_string(name))
		return at(c, "metadata.name", ERR_INVALID,
			  "metadata.name must be a string, not %s",
			  type_name(name));
	s = (const unsigned char *)json_string_value(name);
	n = json_string_length(name);
	if (n == 0)
		return at(c, "metadata.name", ERR_INVALID,
			  "metadata.name is empty");
	if (n > NAME_MAX_BYTES)
		return at(c, "metadata.name", ERR_INVALID,
			  "metadata.name is %zu bytes, more than the limit "
			  "of %d", n, NAME_MAX_BYTES);
	for (i = 0; i < n; i++) {
		bool c1 = s[i] == 0xC2 && i + 1 < n && s[i + 1] >= 0x80 &&
			  s[i + 1] <= 0x9F;
		if (s[i] < 0x20 || s[i] == 0x7F || c1)
			return at(c, "metadata.name", ERR_INVALID,
				  "metadata.name contains a control character");
		if (s[i] == '/')
			return at(c, "metadata.name", ERR_INVALID,
				  "metadata.name '%s' must not contain '/'",
				  (const char *)s);
	}
	return 0;
}

/* metadata.labels: absent/null or a mapping of strings. New ref in *out. */
static int check_labels(const struct docctx *c, json_t *labels,
			json_t **out)
{
	char rel[ERR_FIELD_MAX];
	const char *key;
	json_t *v;

	*out = NULL;
	if (!labels || json_is_null(labels)) {
		*out = json_object();
		return *out ? 0 : at(c, "", ERR_NOMEM, "out of memory");
	}
	if (!json_is_object(labels))
		return at(c, "metadata.labels", ERR_INVALID,
			  "metadata.labels must be a mapping, not %s",
			  type_name(labels));
	json_object_foreach(labels, key, v) {
		if (!json_is_string(v)) {
			snprintf(rel, sizeof(rel), "metadata.labels.%s", key);
			return at(c, rel, ERR_INVALID,
				  "label '%.*s' must be a string, not %s "
				  "(quote it)", qlen(key), key, type_name(v));
		}
	}
	*out = json_incref(labels);
	return 0;
}

static const char *const top_keys[] = { "apiVersion", "kind", "metadata",
					"spec", NULL };
static const char *const meta_keys[] = { "name", "labels", NULL };
static const char *const list_keys[] = { "items", "apiVersion", "kind",
					 "metadata", NULL };

static bool among(const char *key, const char *const *names)
{
	for (; *names; names++)
		if (!strcmp(key, *names))
			return true;
	return false;
}

/* What check_envelope() found: borrowed from the document. */
struct envelope {
	const struct collection *coll;   /* the kind's, or NULL */
	json_t *meta, *spec;             /* or NULL */
};

/*
 * Report each key of obj (at relpfx + key) that is not among names:
 * "WHAT 'KEY'SUFFIX (did you mean 'X'?) (expected EXPECTED)". Returns
 * the code of the first report, or 0.
 */
static int check_keys(const struct docctx *c, json_t *obj,
		      const char *relpfx, const char *const *names,
		      const char *what, const char *suffix,
		      const char *expected)
{
	char hint[160], rel[ERR_FIELD_MAX];
	const char *key;
	json_t *item;
	int rc = 0;

	json_object_foreach(obj, key, item) {
		if (among(key, names))
			continue;
		snprintf(rel, sizeof(rel), "%s%s", relpfx, key);
		hint_from(key, names, hint, sizeof(hint));
		keep(&rc, at_key(c, rel, ERR_INVALID, "%s '%.*s'%s%s (expected %s)",
			     what, qlen(key), key, suffix, hint, expected));
	}
	return rc;
}

/* The envelope's keys, kind and metadata; every problem is reported, the
 * code of the first returned. */
static int check_envelope(const struct schema *schema,
			  const struct docctx *c, json_t *v,
			  struct envelope *env)
{
	const struct collection **coll = &env->coll;
	const char *s;
	json_t *meta, *api, *kind, *spec;
	char hint[160];
	int rc;

	*coll = NULL;
	rc = check_keys(c, v, "", top_keys, "unknown key", "",
			"apiVersion, kind, metadata and spec");

	api = json_object_get(v, "apiVersion");
	s = json_is_string(api) ? json_string_value(api) : type_name(api);
	if (!api)
		keep(&rc, at(c, "", ERR_INVALID, "missing 'apiVersion' "
			     "(expected '" MANIFEST_API_VERSION "')"));
	else if (!json_is_string(api) ||
		 strcmp(json_string_value(api), MANIFEST_API_VERSION))
		keep(&rc, at(c, "apiVersion", ERR_INVALID,
			     "apiVersion '%.*s' is not supported (expected '"
			     MANIFEST_API_VERSION "')", qlen(s), s));

	kind = json_object_get(v, "kind");
	if (!kind) {
		keep(&rc, at(c, "", ERR_INVALID, "missing 'kind'"));
	} else if (!json_is_string(kind)) {
		keep(&rc, at(c, "kind", ERR_INVALID,
			     "kind must be a string, not %s", type_name(kind)));
	} else {
		s = json_string_value(kind);
		*coll = schema_find_kind(schema, s);
		if (!*coll) {
			hint_kind(schema, s, hint, sizeof(hint));
			keep(&rc, at(c, "kind", ERR_INVALID,
				     "unknown kind '%.*s'%s", qlen(s), s,
				     hint));
		}
	}

	meta = env->meta = json_object_get(v, "metadata");
	if (!meta) {
		keep(&rc, at(c, "", ERR_INVALID, "missing 'metadata'"));
	} else if (!json_is_object(meta)) {
		keep(&rc, at(c, "metadata", ERR_INVALID,
			     "metadata must be a mapping, not %s",
			     type_name(meta)));
	} else {
		keep(&rc, check_keys(c, meta, "metadata.", meta_keys,
				     "metadata key", " is not supported",
				     "name and labels"));
		keep(&rc, check_name(c, json_object_get(meta, "name")));
	}

	spec = env->spec = json_object_get(v, "spec");
	if (spec && !json_is_null(spec) && !json_is_object(spec))
		keep(&rc, at(c, "spec", ERR_INVALID,
			     "spec must be a mapping, not %s", type_name(spec)));
	return rc;
}

/* A document's key in the duplicate index ("collection/name" -> its
 * index in the set): caller frees; NULL when out of memory. */
static char *seen_key(const struct collection *coll, const char *name)
{
	char *key;

	return asprintf(&key, "%s/%s", coll->name, name) < 0 ? NULL : key;
}

/*
 * Check one document v and append it to m (which has room for it). seen
 * maps "collection/name" to the index of the document that defined it.
 * Every problem is reported (c->errs); the code of the first is returned
 * and the document is not appended.
 */
static int load_doc(const struct schema *schema, const struct docctx *c,
		    json_t *v, struct manifest_set *m, json_t *seen)
{
	struct manifest_doc d;
	struct envelope env;
	const char *s;
	json_t *spec, *idx;
	char *key = NULL;
	int rc = 0;

	memset(&d, 0, sizeof(d));
	if (!json_is_object(v))
		return at(c, "", ERR_INVALID,
			  "a document must be a mapping, not %s",
			  type_name(v));
	rc = check_envelope(schema, c, v, &env);
	d.coll = env.coll;
	if (json_is_object(env.meta))
		keep(&rc, check_labels(c, json_object_get(env.meta, "labels"),
				       &d.labels));
	if (rc)
		goto out;

	/* The shape is right; now the duplicate check and the copies. */
	spec = env.spec;
	s = json_string_value(json_object_get(env.meta, "name"));
	key = seen_key(d.coll, s);
	if (!key) {
		rc = at(c, "", ERR_NOMEM, "out of memory");
		goto out;
	}
	idx = json_object_get(seen, key);
	if (idx) {
		const struct manifest_doc *first =
			&m->docs[json_integer_value(idx)];
		rc = at(c, "", ERR_CONFLICT,
			"duplicate %s '%s' (first defined at %s:%d:%d)",
			d.coll->kind, s, first->file, first->line,
			first->column);
		goto out;
	}
	d.spec = spec && !json_is_null(spec) ? json_incref(spec)
					      : json_object();
	d.file = strdup(c->file);
	d.name = strdup(s);
	d.line = c->line;
	d.column = c->column;
	if (!d.spec || !d.file || !d.name ||
	    doc_positions(c, v, &d.positions) ||
	    json_object_set_new(seen, key, json_integer((json_int_t)m->n))) {
		rc = at(c, "", ERR_NOMEM, "out of memory");
		goto out;
	}
	m->docs[m->n++] = d;
	memset(&d, 0, sizeof(d));
out:
	free(key);
	free(d.file);
	free(d.name);
	json_decref(d.labels);
	json_decref(d.spec);
	json_decref(d.positions);
	return rc;
}

/* How many manifest documents yaml document v may hold. */
static size_t doc_count(json_t *v)
{
	json_t *items;

	if (!v)
		return 0;
	if (json_is_array(v))
		return json_array_size(v);
	items = json_object_get(v, "items");
	if (json_is_object(v) && json_is_array(items))
		return json_array_size(items);
	return 1;
}

/* A list wrapper {apiVersion?, kind?: List, metadata?, items: [...]}: its
 * other keys are refused, each reported. */
static int check_list_wrapper(const struct docctx *c, json_t *v)
{
	json_t *kind;
	int rc = check_keys(c, v, "", list_keys, "unknown key", " in a list",
			    "items");

	kind = json_object_get(v, "kind");
	if (kind && !(json_is_string(kind) &&
		      !strcmp(json_string_value(kind), "List")))
		keep(&rc, at(c, "kind", ERR_INVALID,
			     "a document with 'items' is a list, and its kind "
			     "must be 'List'"));
	if (!json_is_array(json_object_get(v, "items")))
		keep(&rc, at(c, "items", ERR_INVALID,
			     "items must be a list, not %s",
			     type_name(json_object_get(v, "items"))));
	return rc;
}

/* Load the yaml document y: one manifest, or a list of them. Bad
 * documents are reported and left out; a code other than a problem in
 * the manifests (invalid()) stops at once. */
static int load_ydoc(const struct schema *schema, const char *file,
		     const struct yaml_doc *y, struct manifest_set *m,
		     json_t *seen, struct err_list *errs, struct err *e)
{
	struct docctx c = { file, y, "", y->line, y->column, e, errs };
	const char *list = NULL;
	json_t *items, *item;
	char prefix[64];
	size_t i;
	int rc, first = 0;

	if (json_is_array(y->value)) {
		list = "";
		items = y->value;
	} else if (json_is_object(y->value) &&
		   json_object_get(y->value, "items")) {
		rc = check_list_wrapper(&c, y->value);
		if (rc)
			return rc;
		list = "items.";
		items = json_object_get(y->value, "items");
	} else {
		return load_doc(schema, &c, y->value, m, seen);
	}
	json_array_foreach(items, i, item) {
		snprintf(prefix, sizeof(prefix), "%s%zu", list, i);
		c.prefix = prefix;
		yaml_doc_pos(y, prefix, &c.line, &c.column);
		if (!c.line) {
			c.line = y->line;
			c.column = y->column;
		}
		rc = load_doc(schema, &c, item, m, seen);
		if (rc && !invalid(rc))
			return rc;
		keep(&first, rc);
	}
	return first;
}

/* A YAML error "FILE:LINE:COL: ..." (yamljson.h) into errs, with its
 * position read back from the message. */
static int add_parse_error(struct err_list *errs, const char *file,
			   const struct err *e)
{
	size_t n = strlen(file);
	int line = 0, col = 0;

	if (!strncmp(e->msg, file, n) && e->msg[n] == ':' &&
	    sscanf(e->msg + n + 1, "%d:%d", &line, &col) != 2)
		line = col = 0;
	return err_list_add(errs, e, file, line, col);
}

/* The duplicate index of out's documents: "collection/name" -> index. */
static int seen_index(const struct manifest_set *out, json_t **seen,
		      struct err *e)
{
	char *key;
	size_t k;

	*seen = json_object();
	if (!*seen)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (k = 0; k < out->n; k++) {
		const struct manifest_doc *d = &out->docs[k];

		if (!d->coll || !d->name)
			continue;
		key = seen_key(d->coll, d->name);
		if (!key || json_object_set_new(*seen, key,
						json_integer((json_int_t)k))) {
			free(key);
			json_decref(*seen);
			*seen = NULL;
			return err_set(e, ERR_NOMEM, "out of memory");
		}
		free(key);
	}
	return 0;
}

/* Parse text[0..len) of filename, whose first line is the file's
 * first_line, into out; seen indexes out (seen_index()). Problems in the
 * text go to errs; what stops reading is returned. */
static int parse_piece(const struct schema *schema, const char *filename,
		       const char *text, size_t len, int first_line,
		       struct manifest_set *out, json_t *seen,
		       struct err_list *errs, struct err *e)
{
	struct yaml_docs yd = { NULL, 0 };
	size_t want = 0, i, before;
	int rc;

	rc = yaml_parse_docs_at(filename, text, len, first_line, &yd, e);
	if (rc)
		return invalid(rc) ? add_parse_error(errs, filename, e) : rc;
	for (i = 0; i < yd.n; i++)
		want += doc_count(yd.docs[i].value);
	rc = set_reserve(out, want, e);
	for (i = 0; !rc && i < yd.n; i++) {
		if (!yd.docs[i].value)
			continue;   /* an empty document */
		before = out->n;
		rc = load_ydoc(schema, filename, &yd.docs[i], out, seen, errs,
			       e);
		if (rc && !invalid(rc))
			break;
		rc = 0;
		for (; before < out->n; before++) {
			out->docs[before].offset = yd.docs[i].offset;
			out->docs[before].single =
				json_is_object(yd.docs[i].value) &&
				!json_object_get(yd.docs[i].value, "items");
		}
	}
	yaml_docs_release(&yd);
	return rc;
}

/* ---- known pieces (manifest.h, struct manifest_known) ------------------- */

/* A piece that holds something: pieces with nothing but the marker,
 * blanks and comments are left out (they hold no document), so that a
 * file of markers costs no more than its documents. */
struct piece {
	size_t start, len;
	int line;            /* the file's line the piece starts at */
	int doc_line;        /* its first line with content */
	bool hit;
	unsigned char key[MANIFEST_KEY_LEN];
	struct manifest_doc *known;  /* owned; when hit */
};

/* Whether the line at p (of the n bytes left) starts a document. */
static bool marker_line(const char *p, size_t n)
{
	return n >= 3 && p[0] == '-' && p[1] == '-' && p[2] == '-' &&
	       (n == 3 || p[3] == ' ' || p[3] == '\t' || p[3] == '\r' ||
		p[3] == '\n');
}

/* Whether piece pc holds more than the marker, blanks and comments;
 * then pc->doc_line is its first line with content. */
static bool piece_scan(const char *text, struct piece *pc)
{
	const char *p = text + pc->start, *end = p + pc->len;
	int line = pc->line;

	if (marker_line(p, pc->len))
		p += 3;
	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
			p++;
		if (p < end && *p != '#' && *p != '\n') {
			pc->doc_line = line;
			return true;
		}
		while (p < end && *p != '\n')
			p++;
		if (p < end) {
			p++;
			line++;
		}
	}
	return false;
}

/*
 * Cut text into pieces (*out, caller frees; *n of them, those with
 * something in them), or *whole when it must be parsed whole: a JSON
 * text (its first character '{' or '['), or one with a directive line
 * ('%').
 */
static int split_pieces(const char *text, size_t len, struct piece **out,
			size_t *n, bool *whole, struct err *e)
{
	struct piece *v = NULL, *nv, pc;
	size_t cap = 0, i = 0, start = 0;
	int line = 1, start_line = 1;

	*out = NULL;
	*n = 0;
	*whole = true;
	while (i < len && (text[i] == ' ' || text[i] == '\t' ||
			   text[i] == '\r' || text[i] == '\n'))
		i++;
	if (i < len && (text[i] == '{' || text[i] == '['))
		return 0;
	for (i = 0; i <= len;) {
		bool cut = i == len || (i > 0 && marker_line(text + i, len - i));

		if (i < len && text[i] == '%')
			goto whole;
		if (cut && (i > start || i == len)) {
			memset(&pc, 0, sizeof(pc));
			pc.start = start;
			pc.len = i - start;
			pc.line = start_line;
			if (piece_scan(text, &pc) && *n == cap) {
				cap = cap ? cap * 2 : 64;
				nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					free(v);
					return err_set(e, ERR_NOMEM,
						       "out of memory");
				}
				v = nv;
			}
			if (pc.doc_line)
				v[(*n)++] = pc;
			start = i;
			start_line = line;
		}
		if (i == len)
			break;
		/* on to the next line */
		while (i < len && text[i] != '\n')
			i++;
		if (i < len) {
			i++;
			line++;
		}
	}
	*out = v;
	*whole = false;
	return 0;
whole:
	free(v);
	*n = 0;
	return 0;
}

/* Each piece's key: SHA-256(salt, piece), from a copy of the state
 * that has taken the salt in. */
static int key_pieces(const struct manifest_known *k, const char *text,
		      struct piece *v, size_t n, struct err *e)
{
	EVP_MD_CTX *base = EVP_MD_CTX_new(), *md = EVP_MD_CTX_new();
	unsigned int len;
	size_t i;
	int ok = base && md &&
		 EVP_DigestInit_ex(base, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(base, k->salt, k->salt_len) == 1;

	for (i = 0; ok && i < n; i++)
		ok = EVP_MD_CTX_copy_ex(md, base) == 1 &&
		     EVP_DigestUpdate(md, text + v[i].start, v[i].len) == 1 &&
		     EVP_DigestFinal_ex(md, v[i].key, &len) == 1 &&
		     len == MANIFEST_KEY_LEN;
	EVP_MD_CTX_free(md);
	EVP_MD_CTX_free(base);
	return ok ? 0 : err_set(e, ERR_INTERNAL,
				"cannot compute a SHA-256 digest");
}

/* Give the documents out->docs[n0..] parsed from the whole text the key
 * of their piece where it holds one document only. */
static void key_docs(struct manifest_set *out, size_t n0,
		     const struct piece *v, size_t n)
{
	size_t i, j = 0, k;

	for (i = n0; i < out->n; i = k) {
		size_t off = out->docs[i].offset;

		while (j + 1 < n && v[j + 1].start <= off)
			j++;
		/* the documents of piece j */
		for (k = i + 1; k < out->n &&
		     (j + 1 >= n || out->docs[k].offset < v[j + 1].start); k++)
			;
		if (k == i + 1 && out->docs[i].single) {
			memcpy(out->docs[i].key, v[j].key, MANIFEST_KEY_LEN);
			out->docs[i].keyed = true;
		}
	}
}

/* A known piece's document into out, unless it names a document already
 * there (then *taken is false: the piece is parsed, for the message). */
static int add_known(const char *filename, struct piece *pc,
		     struct manifest_set *out, json_t *seen, bool *taken,
		     struct err *e)
{
	struct manifest_doc *d = pc->known;
	char *key = NULL;
	int rc = 0;

	*taken = false;
	if (!d || !d->coll || !d->name || !d->known_id)
		return err_set(e, ERR_INTERNAL, "find: no document given");
	key = seen_key(d->coll, d->name);
	if (!key)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (json_object_get(seen, key))
		goto out;
	d->file = strdup(filename);
	rc = set_reserve(out, 1, e);
	if (!rc && (!d->file ||
		    json_object_set_new(seen, key,
					json_integer((json_int_t)out->n))))
		rc = err_set(e, ERR_NOMEM, "out of memory");
	if (rc)
		goto out;
	d->line = pc->doc_line;
	d->column = 1;
	memcpy(d->key, pc->key, MANIFEST_KEY_LEN);
	d->keyed = true;
	out->docs[out->n++] = *d;
	free(d);
	pc->known = NULL;
	*taken = true;
out:
	free(key);
	return rc;
}

/* parse_piece() of a whole file, with the short cut of known pieces. */
static int parse_text(const struct schema *schema, const char *filename,
		      const char *text, size_t len,
		      const struct manifest_known *k, struct manifest_set *out,
		      json_t *seen, struct err_list *errs, struct err *e)
{
	struct piece *v = NULL;
	struct manifest_doc scratch;
	size_t n = 0, i, hits = 0, n0 = out->n, before;
	bool taken, whole = true;
	int rc = 0;

	if (k)
		rc = split_pieces(text, len, &v, &n, &whole, e);
	if (!rc && (whole || !n))
		return parse_piece(schema, filename, text, len, 1, out, seen,
				   errs, e);
	if (!rc)
		rc = key_pieces(k, text, v, n, e);
	for (i = 0; !rc && !k->none && i < n; i++) {
		memset(&scratch, 0, sizeof(scratch));
		rc = k->find(k->arg, v[i].key, &scratch, &v[i].hit, e);
		if (!rc && v[i].hit) {
			v[i].known = malloc(sizeof(scratch));
			if (!v[i].known)
				rc = err_set(e, ERR_NOMEM, "out of memory");
		}
		if (v[i].known)
			*v[i].known = scratch;
		else
			doc_release(&scratch);
		hits += v[i].hit;
	}
	if (rc)
		goto out;
	if (k->none || hits * 4 < n * 3) {
		/* Mostly new or changed: one parse of the whole. */
		rc = parse_piece(schema, filename, text, len, 1, out, seen,
				 errs, e);
		if (!rc)
			key_docs(out, n0, v, n);
		goto out;
	}
	for (i = 0; !rc && i < n; i++) {
		if (v[i].hit) {
			rc = add_known(filename, &v[i], out, seen, &taken, e);
			if (rc || taken)
				continue;
		}
		before = out->n;
		rc = parse_piece(schema, filename, text + v[i].start, v[i].len,
				 v[i].line, out, seen, errs, e);
		if (!rc && out->n == before + 1 && out->docs[before].single) {
			memcpy(out->docs[before].key, v[i].key,
			       MANIFEST_KEY_LEN);
			out->docs[before].keyed = true;
		}
	}
out:
	for (i = 0; i < n; i++) {
		if (v[i].known)
			doc_release(v[i].known);
		free(v[i].known);
	}
	free(v);
	return rc;
}

int manifest_parse_known(const struct schema *schema, const char *filename,
			 const char *text, size_t len,
			 const struct manifest_known *known,
			 struct manifest_set *out, struct err_list *errs,
			 struct err *e)
{
	size_t n0 = out->n;
	json_t *seen = NULL;
	int rc;

	rc = seen_index(out, &seen, e);
	if (!rc)
		rc = parse_text(schema, filename, text, len, known, out, seen,
				errs, e);
	if (rc)
		set_truncate(out, n0);
	json_decref(seen);
	return rc;
}

int manifest_parse_all(const struct schema *schema, const char *filename,
		       const char *text, size_t len, struct manifest_set *out,
		       struct err_list *errs, struct err *e)
{
	return manifest_parse_known(schema, filename, text, len, NULL, out,
				    errs, e);
}

/* The old contract of the first-error functions: on any problem, e holds
 * it (or a summary of several, err_list_summary()), out is as it was and
 * the problem's code is returned. */
static int first_error(int rc, struct err_list *errs, struct manifest_set *m,
		       size_t n0, struct err *e)
{
	if (!rc && errs->n) {
		err_list_sort(errs);
		rc = err_list_summary(errs, e);
	}
	if (rc && n0)
		set_truncate(m, n0);
	else if (rc)
		manifest_set_release(m);
	err_list_release(errs);
	return rc;
}

int manifest_parse(const struct schema *schema, const char *filename,
		   const char *text, size_t len, struct manifest_set *out,
		   struct err *e)
{
	struct err_list errs = ERR_LIST_INIT;
	size_t n0 = out->n;
	int rc = manifest_parse_all(schema, filename, text, len, out, &errs,
				    e);

	return first_error(rc, &errs, out, n0, e);
}

void manifest_doc_where(const struct manifest_doc *d, const char *field,
			char *out, size_t n)
{
	const struct yaml_doc y = { .positions = d->positions };
	int line = 0, col = 0;
	char *path = NULL;

	if (field && *field) {
		if (asprintf(&path, "spec.%s", field) < 0)
			path = NULL;
		if (path)
			yaml_doc_pos(&y, path, &line, &col);
		if (!line)
			yaml_doc_pos(&y, field, &line, &col);
		free(path);
	}
	if (!line) {
		line = d->line;
		col = d->column;
	}
	snprintf(out, n, "%s:%d:%d", d->file ? d->file : "-", line, col);
}

void manifest_doc_locate(const struct manifest_doc *d, const char *field,
			 bool key, int *line, int *column)
{
	const struct yaml_doc y = { .positions = d->positions };
	char path[ERR_FIELD_MAX + 8];
	char *dot;

	*line = *column = 0;
	snprintf(path, sizeof(path), "spec%s%s", field && *field ? "." : "",
		 field ? field : "");
	(key ? yaml_doc_key_pos : yaml_doc_pos)(&y, path, line, column);
	if (*line)
		return;
	/* Not set: the key of the mapping it would be in, up to spec. */
	while ((dot = strrchr(path, '.'))) {
		*dot = '\0';
		yaml_doc_key_pos(&y, path, line, column);
		if (*line)
			return;
	}
	*line = d->line;
	*column = d->column;
}

/* ------------------------------------------------------------------ */
/* Files and directories                                               */

struct dir_id {
	dev_t dev;
	ino_t ino;
};

struct walker {
	const struct schema *schema;
	struct manifest_set *set;
	struct dir_id *stack;   /* directories on the current path */
	size_t depth, cap;
	struct err *e;
	struct err_list *errs;
	manifest_file_fn *fn;   /* or NULL */
	void *arg;
	const struct manifest_known *known;   /* or NULL */
	bool read_only;         /* hand files to fn, parse nothing */
	size_t nfiles;          /* files read */
};

/* Load one file, which must hold at least one document; path "-" is the
 * standard input, named MANIFEST_STDIN. Its problems go to w->errs. */
static int load_file(struct walker *w, const char *path)
{
	struct buf b;
	bool in = !strcmp(path, "-");
	int rc;

	buf_init(&b, MANIFEST_MAX_FILE);
	if (in)
		path = MANIFEST_STDIN;
	rc = in ? buf_read_fd(&b, 0, path, w->e) :
		  buf_read_file(&b, path, w->e);
	if (rc)
		goto out;
	w->nfiles++;
	if (!w->read_only)
		rc = manifest_parse_file(w->schema, path, b.ptr, b.len,
					 w->known, w->set, w->errs, w->e);
	if (rc)
		goto out;
	/* A file with problems goes to fn too: a server checking the same
	 * texts finds the same problems. */
	if (w->fn)
		rc = w->fn(w->arg, path, b.ptr, b.len, w->e);
out:
	buf_release(&b);
	return rc;
}

static bool is_manifest_name(const char *name)
{
	size_t n = strlen(name);

	return (n > 5 && !strcmp(name + n - 5, ".yaml")) ||
	       (n > 4 && !strcmp(name + n - 4, ".yml"));
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_dir(struct walker *w, const char *path,
		    const struct stat *st);

/* One directory entry: a directory to descend into, a manifest to load,
 * or something else to ignore. */
static int walk_entry(struct walker *w, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return err_set(w->e, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO,
			       "cannot stat '%s': %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return walk_dir(w, path, &st);
	if (S_ISREG(st.st_mode) && is_manifest_name(strrchr(path, '/') + 1))
		return load_file(w, path);
	return 0;
}

/* Walk directory path (whose stat is st), entries in sorted order, hidden
 * ones skipped, symlinks followed unless they lead back to a directory on
 * the current path. */
static int walk_dir(struct walker *w, const char *path,
		    const struct stat *st)
{
	char **names = NULL, *child = NULL;
	size_t n = 0, cap = 0, i;
	struct dirent *de;
	DIR *dir = NULL;
	int rc = 0;

	for (i = 0; i < w->depth; i++)
		if (w->stack[i].dev == st->st_dev &&
		    w->stack[i].ino == st->st_ino)
			return err_set(w->e, ERR_INVALID, "symlink loop at '%s'",
				       path);
	if (w->depth == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 16;
		struct dir_id *p = realloc(w->stack, ncap * sizeof(*p));
		if (!p)
			return err_set(w->e, ERR_NOMEM, "out of memory");
		w->stack = p;
		w->cap = ncap;
	}
	w->stack[w->depth].dev = st->st_dev;
	w->stack[w->depth].ino = st->st_ino;
	w->depth++;

	dir = opendir(path);
	if (!dir) {
		rc = err_set(w->e, ERR_IO, "cannot open directory '%s': %s",
			     path, strerror(errno));
		goto out;
	}
	for (;;) {
		errno = 0;
		de = readdir(dir);
		if (!de)
			break;
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			char **p = realloc(names, ncap * sizeof(*p));
			if (!p) {
				rc = err_set(w->e, ERR_NOMEM, "out of memory");
				goto out;
			}
			names = p;
			cap = ncap;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			rc = err_set(w->e, ERR_NOMEM, "out of memory");
			goto out;
		}
		n++;
	}
	if (errno) {
		rc = err_set(w->e, ERR_IO, "cannot read directory '%s': %s",
			     path, strerror(errno));
		goto out;
	}
	closedir(dir);
	dir = NULL;
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	for (i = 0; i < n; i++) {
		child = path_join(path, names[i]);
		if (!child) {
			rc = err_set(w->e, ERR_NOMEM, "out of memory");
			goto out;
		}
		rc = walk_entry(w, child);
		free(child);
		child = NULL;
		if (rc)
			goto out;
	}
out:
	w->depth--;
	if (dir)
		closedir(dir);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

int manifest_load_paths(const struct schema *schema, const char *const *paths,
			size_t npaths, struct manifest_set *out, struct err *e)
{
	return manifest_load_paths_each(schema, paths, npaths, NULL, NULL, out,
					e);
}

int manifest_load_paths_each(const struct schema *schema,
			     const char *const *paths, size_t npaths,
			     manifest_file_fn *fn, void *arg,
			     struct manifest_set *out, struct err *e)
{
	struct err_list errs = ERR_LIST_INIT;
	int rc = manifest_load_all(schema, paths, npaths, fn, arg, out, &errs,
				   e);

	return first_error(rc, &errs, out, 0, e);
}

int manifest_load_all(const struct schema *schema, const char *const *paths,
		      size_t npaths, manifest_file_fn *fn, void *arg,
		      struct manifest_set *out, struct err_list *errs,
		      struct err *e)
{
	return manifest_load_known(schema, paths, npaths, NULL, fn, arg, out,
				   errs, e);
}

/* Walk paths with w (w->set empty), each path giving at least one
 * document (or, read only, one file). */
static int walk_paths(struct walker *w, const char *const *paths,
		      size_t npaths)
{
	struct stat st;
	size_t i, before, nerr, nfiles;
	int rc = 0;

	for (i = 0; i < npaths; i++) {
		before = w->set->n;
		nerr = w->errs->total;
		nfiles = w->nfiles;
		if (!strcmp(paths[i], "-")) {
			rc = load_file(w, paths[i]);
		} else if (stat(paths[i], &st) < 0) {
			if (errno == ENOENT)
				rc = err_set(w->e, ERR_NOT_FOUND,
					     "'%s' does not exist", paths[i]);
			else
				rc = err_set(w->e, ERR_IO,
					     "cannot stat '%s': %s", paths[i],
					     strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			rc = walk_dir(w, paths[i], &st);
		} else if (S_ISREG(st.st_mode)) {
			rc = load_file(w, paths[i]);
		} else {
			rc = err_set(w->e, ERR_INVALID,
				     "'%s' is not a file or a directory",
				     paths[i]);
		}
		if (rc)
			return rc;
		if (w->read_only ? w->nfiles == nfiles :
		    w->set->n == before && w->errs->total == nerr) {
			err_set(w->e, ERR_INVALID, "'%s': no documents",
				paths[i]);
			rc = err_list_add(w->errs, w->e, NULL, 0, 0);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int manifest_load_known(const struct schema *schema, const char *const *paths,
			size_t npaths, const struct manifest_known *known,
			manifest_file_fn *fn, void *arg,
			struct manifest_set *out, struct err_list *errs,
			struct err *e)
{
	struct manifest_set set = { NULL, 0, 0 };
	struct walker w = { schema, &set, NULL, 0, 0, e, errs, fn, arg, known,
			    false, 0 };
	int rc;

	out->docs = NULL;
	out->n = out->cap = 0;
	rc = walk_paths(&w, paths, npaths);
	if (!rc) {
		*out = set;
		set.docs = NULL;
		set.n = set.cap = 0;
	}
	free(w.stack);
	manifest_set_release(&set);
	return rc;
}

int manifest_read_paths(const char *const *paths, size_t npaths,
			manifest_file_fn *fn, void *arg, struct err_list *errs,
			struct err *e)
{
	struct manifest_set none = { NULL, 0, 0 };
	struct walker w = { NULL, &none, NULL, 0, 0, e, errs, fn, arg, NULL,
			    true, 0 };
	int rc = walk_paths(&w, paths, npaths);

	free(w.stack);
	return rc;
}

int manifest_parse_file(const struct schema *schema, const char *name,
			const char *text, size_t len,
			const struct manifest_known *known,
			struct manifest_set *out, struct err_list *errs,
			struct err *e)
{
	size_t before = out->n, nerr = errs->total;
	int rc = err_list_note_file(errs, name);

	if (rc)
		return err_set(e, rc, "out of memory");
	rc = manifest_parse_known(schema, name, text, len, known, out, errs,
				  e);
	if (rc)
		return rc;
	if (out->n == before && errs->total == nerr) {
		err_set(e, ERR_INVALID, "'%s': no documents", name);
		if (err_list_add(errs, e, name, 0, 0))
			return err_set(e, ERR_NOMEM, "out of memory");
	}
	return 0;
}
