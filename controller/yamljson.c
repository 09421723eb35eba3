/*
 * yamljson.c - YAML <-> JSON on libyaml's event API, with source positions
 * (see yamljson.h).
 *
 * Reading walks parser events rather than libyaml's document loader, so
 * that aliases are refused before anything is expanded, nesting is bounded
 * while parsing, and every node keeps the mark it started at. Plain scalars
 * are typed by the YAML 1.2 core schema; integers that do not fit in 64
 * bits are refused rather than silently rounded to reals, and so are
 * .inf/.nan, which JSON cannot carry. Writing feeds emitter events and
 * quotes every string that the same resolver would read back as something
 * other than a string (and the YAML 1.1 booleans yes/no/on/off, for older
 * readers), so parse(emit(v)) == v.
 */
#include "yamljson.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#define YAML_MAX_DEPTH 64      /* nested mappings/sequences when reading */
#define EMIT_MAX_DEPTH 2048    /* jansson's own parser limit */
#define QUOTE_MAX 64           /* bytes of a scalar quoted in a message */
#define TAG_PREFIX "tag:yaml.org,2002:"

/* ------------------------------------------------------------------ */
/* The YAML 1.2 core schema resolver, shared by reader and writer.     */

enum scalar_kind { SK_STR, SK_NULL, SK_BOOL, SK_INT, SK_FLOAT, SK_NONFINITE };

static bool lit_eq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_xdigit(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
static bool is_core_float(const char *s, size_t n)
{
	size_t i = 0, d;

	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	if (i < n && s[i] == '.') {
		i++;
		for (d = i; i < n && is_digit(s[i]); i++)
			;
		if (i == d)
			return false;
	} else {
		for (d = i; i < n && is_digit(s[i]); i++)
			;
		if (i == d)
			return false;
		if (i < n && s[i] == '.')
			for (i++; i < n && is_digit(s[i]); i++)
				;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '-' || s[i] == '+'))
			i++;
		for (d = i; i < n && is_digit(s[i]); i++)
			;
		if (i == d)
			return false;
	}
	return i == n;
}

/* What the plain scalar s[0..n) means under the core schema. */
static enum scalar_kind resolve_plain(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || lit_eq(s, n, "~") || lit_eq(s, n, "null") ||
	    lit_eq(s, n, "Null") || lit_eq(s, n, "NULL"))
		return SK_NULL;
	if (lit_eq(s, n, "true") || lit_eq(s, n, "True") ||
	    lit_eq(s, n, "TRUE") || lit_eq(s, n, "false") ||
	    lit_eq(s, n, "False") || lit_eq(s, n, "FALSE"))
		return SK_BOOL;
	if (n > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
		for (i = 2; i < n; i++)
			if (s[1] == 'o' ? !(s[i] >= '0' && s[i] <= '7')
					: !is_xdigit(s[i]))
				break;
		if (i == n)
			return SK_INT;
	}
	i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
	if (i < n) {
		size_t j = i;
		while (j < n && is_digit(s[j]))
			j++;
		if (j == n)
			return SK_INT;
	}
	if (is_core_float(s, n))
		return SK_FLOAT;
	i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
	if (lit_eq(s + i, n - i, ".inf") || lit_eq(s + i, n - i, ".Inf") ||
	    lit_eq(s + i, n - i, ".INF"))
		return SK_NONFINITE;
	if (lit_eq(s, n, ".nan") || lit_eq(s, n, ".NaN") || lit_eq(s, n, ".NAN"))
		return SK_NONFINITE;
	return SK_STR;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */

struct reader {
	yaml_parser_t parser;
	const char *filename;
	const char *text;
	size_t len;
	size_t line0;        /* lines before text[0] in its file */
	struct err *e;
	json_t *positions;   /* of the document being read; borrowed */
	struct buf path;     /* dotted path of the node being read */
	const yaml_mark_t *key;   /* the key of the node being read, when it
	                           * is a mapping's value; else NULL */
};

/*
 * A position is one integer, so that recording one for every node stays
 * cheap: the value's line (bits 24-47) and column (bits 0-23), each
 * clamped to 2^24 - 1 (a file is at most 16 MiB anyway), and for a
 * mapping's value where its key stands, when that fits in 15 bits: the
 * key's column (bits 51-62, at most 4095) and how many lines above the
 * value it is, plus one (bits 48-50, at most 6 lines; 0 = no key).
 */
#define POS_MAX ((1 << 24) - 1)
#define POS_KEY_COL_MAX 4095
#define POS_KEY_LINES_MAX 6

static json_int_t pos_clamp(size_t v)
{
	return v > POS_MAX ? POS_MAX : (json_int_t)v;
}

/* Encode the 0-based marks of a value and of its key (or NULL), the
 * line counted from the start of r's file. */
static json_int_t pos_encode(const struct reader *r, const yaml_mark_t *v,
			     const yaml_mark_t *k)
{
	json_int_t p = pos_clamp(r->line0 + v->line + 1) << 24 |
		       pos_clamp(v->column + 1);

	if (k && k->line <= v->line && v->line - k->line <= POS_KEY_LINES_MAX &&
	    k->column + 1 <= POS_KEY_COL_MAX)
		p |= (json_int_t)(v->line - k->line + 1) << 48 |
		     (json_int_t)(k->column + 1) << 51;
	return p;
}

static int rd_fail(struct reader *r, int code, size_t line, size_t col,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Record "FILE:LINE:COL: message" (line and col 1-based) and return code. */
static int rd_fail(struct reader *r, int code, size_t line, size_t col,
		   const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(r->e, code, "%s:%zu:%zu: %s", r->filename, line, col,
		       msg);
}

#define MARK(m) (r->line0 + (m).line + 1), ((m).column + 1)

/* 1-based line/column of a byte offset into the input (for reader errors,
 * which libyaml reports by offset only). Columns count characters. */
static void offset_to_pos(const struct reader *r, size_t off, size_t *line,
			  size_t *col)
{
	size_t i;

	*line = r->line0 + 1;
	*col = 1;
	if (off > r->len)
		off = r->len;
	for (i = 0; i < off; i++) {
		unsigned char c = (unsigned char)r->text[i];
		if (c == '\n') {
			(*line)++;
			*col = 1;
		} else if ((c & 0xC0) != 0x80) {
			(*col)++;
		}
	}
}

/* Turn libyaml's error state into e. */
static int rd_parser_error(struct reader *r)
{
	yaml_parser_t *p = &r->parser;
	size_t line, col;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return rd_fail(r, ERR_NOMEM, 1, 1, "out of memory");
	case YAML_READER_ERROR:
		offset_to_pos(r, p->problem_offset, &line, &col);
		if (p->problem_value != -1)
			return rd_fail(r, ERR_INVALID, line, col, "%s (0x%x)",
				       p->problem ? p->problem : "invalid input",
				       (unsigned)p->problem_value);
		return rd_fail(r, ERR_INVALID, line, col, "%s",
			       p->problem ? p->problem : "invalid input");
	case YAML_SCANNER_ERROR:
	case YAML_PARSER_ERROR:
		if (p->context)
			return rd_fail(r, ERR_INVALID, MARK(p->problem_mark),
				       "%s (%s at line %zu column %zu)",
				       p->problem ? p->problem : "syntax error",
				       p->context, MARK(p->context_mark));
		return rd_fail(r, ERR_INVALID, MARK(p->problem_mark), "%s",
			       p->problem ? p->problem : "syntax error");
	default:
		return rd_fail(r, ERR_INVALID, 1, 1, "cannot parse yaml");
	}
}

/* Next event into ev (caller deletes it on success). */
static int rd_next(struct reader *r, yaml_event_t *ev)
{
	if (yaml_parser_parse(&r->parser, ev))
		return 0;
	return rd_parser_error(r);
}

static int rd_nomem(struct reader *r, const yaml_event_t *ev)
{
	return rd_fail(r, ERR_NOMEM, MARK(ev->start_mark), "out of memory");
}

/* Append "." + seg (or seg at the root); *old receives the length to
 * restore with path_pop(). */
static int path_push(struct reader *r, const char *seg, size_t *old)
{
	int rc;

	*old = r->path.len;
	if (r->path.len)
		rc = buf_putc(&r->path, '.');
	else
		rc = 0;
	if (!rc)
		rc = buf_puts(&r->path, seg);
	return rc;
}

static void path_pop(struct reader *r, size_t old)
{
	r->path.len = old;
	if (r->path.alloc)
		r->path.ptr[old] = '\0';
}

/* How many bytes of s[0..n) to quote in a message: at most QUOTE_MAX, and
 * never half of a UTF-8 sequence (messages end up in JSON replies). */
static int quote_len(const char *s, size_t n)
{
	size_t q = n > QUOTE_MAX ? QUOTE_MAX : n;

	if (q < n)
		while (q > 0 && ((unsigned char)s[q] & 0xC0) == 0x80)
			q--;
	return (int)q;
}

/* Refuse tag, shown the way it is usually written ("!!set", "!foo"). */
static int rd_bad_tag(struct reader *r, const yaml_event_t *ev,
		      const char *tag)
{
	size_t n = strlen(TAG_PREFIX);

	if (!strncmp(tag, TAG_PREFIX, n))
		return rd_fail(r, ERR_INVALID, MARK(ev->start_mark),
			       "tag '!!%.*s' is not supported",
			       quote_len(tag + n, strlen(tag + n)), tag + n);
	return rd_fail(r, ERR_INVALID, MARK(ev->start_mark),
		       "tag '%.*s' is not supported",
		       quote_len(tag, strlen(tag)), tag);
}

/*
 * Type the scalar event ev into *out (new reference). Plain scalars without
 * a tag go through the core schema; quoted and block scalars, and "!"
 * tagged ones, are strings; core tags (!!str, !!int, ...) must match.
 */
static int rd_scalar(struct reader *r, const yaml_event_t *ev, json_t **out)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;
	enum scalar_kind kind, want;
	int q = quote_len(s, n);
	char *end;

	*out = NULL;
	if (ev->data.scalar.anchor)
		return rd_fail(r, ERR_INVALID, MARK(ev->start_mark),
			       "anchors and aliases are not supported");
	if (memchr(s, '\0', n))
		return rd_fail(r, ERR_INVALID, MARK(ev->start_mark),
			       "NUL characters in strings are not supported");
	if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag)
		kind = resolve_plain(s, n);
	else
		kind = SK_STR;
	if (tag && strcmp(tag, "!") != 0) {
		if (!strcmp(tag, TAG_PREFIX "str"))
			want = SK_STR;
		else if (!strcmp(tag, TAG_PREFIX "null"))
			want = SK_NULL;
		else if (!strcmp(tag, TAG_PREFIX "bool"))
			want = SK_BOOL;
		else if (!strcmp(tag, TAG_PREFIX "int"))
			want = SK_INT;
		else if (!strcmp(tag, TAG_PREFIX "float"))
			want = SK_FLOAT;
		else
			return rd_bad_tag(r, ev, tag);
		if (want != SK_STR) {
			kind = resolve_plain(s, n);
			/* An integer is a valid !!float; infinities and NaN
			 * are reported below as such. */
			if (want == SK_FLOAT && kind == SK_INT)
				kind = SK_FLOAT;
			if (kind != want && kind != SK_NONFINITE)
				return rd_fail(r, ERR_INVALID,
					       MARK(ev->start_mark),
					       "'%.*s' is not a valid %s", q,
					       s, tag + strlen(TAG_PREFIX));
		} else {
			kind = SK_STR;
		}
	}

	switch (kind) {
	case SK_STR:
		*out = json_stringn(s, n);
		if (!*out)
			return rd_fail(r, ERR_INVALID, MARK(ev->start_mark),
				       "invalid UTF-8 in string");
		return 0;
	case SK_NULL:
		*out = json_null();
		return 0;
	case SK_BOOL:
		*out = json_boolean(s[0] == 't' || s[0] == 'T');
		return 0;
	case SK_INT: {
		long long v;
		errno = 0;
		if (n > 2 && s[0] == '0' && s[1] == 'o')
			v = strtoll(s + 2, &end, 8);
		else if (n > 2 && s[0] == '0' && s[1] == 'x')
			v = strtoll(s + 2, &end, 16);
		else
			v = strtoll(s, &end, 10);
		if (errno == ERANGE)
			return rd_fail(r, ERR_INVALID, MARK(ev->start_mark),
				       "integer '%.*s' does not fit in 64 bits",
				       q, s);
		*out = json_integer((json_int_t)v);
		break;
	}
	case SK_FLOAT: {
		double d;
		errno = 0;
		d = strtod(s, &end);
		if (!isfinite(d))
			return rd_fail(r, ERR_INVALID, MARK(ev->start_mark),
				       "number '%.*s' is out of range", q, s);
		*out = json_real(d);
		break;
	}
	case SK_NONFINITE:
		return rd_fail(r, ERR_INVALID, MARK(ev->start_mark),
			       "'%.*s': infinity and NaN cannot be represented "
			       "in JSON", q, s);
	}
	if (!*out)
		return rd_nomem(r, ev);
	return 0;
}

static int rd_node(struct reader *r, const yaml_event_t *ev, int depth,
		   json_t **out);

/* Check the anchor and tag of a collection start event. */
static int rd_check_collection(struct reader *r, const yaml_event_t *ev,
			       const char *core)
{
	const yaml_char_t *anchor, *tag;

	if (ev->type == YAML_MAPPING_START_EVENT) {
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
	} else {
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
	}
	if (anchor)
		return rd_fail(r, ERR_INVALID, MARK(ev->start_mark),
			       "anchors and aliases are not supported");
	if (tag && strcmp((const char *)tag, "!") != 0 &&
	    strcmp((const char *)tag, core) != 0)
		return rd_bad_tag(r, ev, (const char *)tag);
	return 0;
}

/* The key event kev of a mapping, as a string, into *key (new ref). */
static int rd_key(struct reader *r, const yaml_event_t *kev, json_t *obj,
		  json_t **key)
{
	const char *s;
	int rc;

	*key = NULL;
	switch (kev->type) {
	case YAML_SCALAR_EVENT:
		break;
	case YAML_ALIAS_EVENT:
		return rd_fail(r, ERR_INVALID, MARK(kev->start_mark),
			       "anchors and aliases are not supported");
	default:
		return rd_fail(r, ERR_INVALID, MARK(kev->start_mark),
			       "mapping keys must be scalars");
	}
	rc = rd_scalar(r, kev, key);
	if (rc)
		return rc;
	if (!json_is_string(*key)) {
		s = (const char *)kev->data.scalar.value;
		if (json_is_null(*key))
			rc = rd_fail(r, ERR_INVALID, MARK(kev->start_mark),
				     "mapping key is empty or null");
		else
			rc = rd_fail(r, ERR_INVALID, MARK(kev->start_mark),
				     "mapping key '%.*s' is not a string "
				     "(quote it)", quote_len(s, strlen(s)), s);
		goto fail;
	}
	s = json_string_value(*key);
	if (json_object_get(obj, s)) {
		rc = rd_fail(r, ERR_INVALID, MARK(kev->start_mark),
			     "duplicate key '%.*s'", quote_len(s, strlen(s)),
			     s);
		goto fail;
	}
	return 0;
fail:
	json_decref(*key);
	*key = NULL;
	return rc;
}

static int rd_mapping(struct reader *r, int depth, json_t *obj)
{
	yaml_event_t kev, vev;
	bool have_k = false, have_v = false;
	json_t *key = NULL, *val = NULL;
	size_t old;
	int rc;

	for (;;) {
		rc = rd_next(r, &kev);
		if (rc)
			goto out;
		have_k = true;
		if (kev.type == YAML_MAPPING_END_EVENT)
			break;
		rc = rd_key(r, &kev, obj, &key);
		if (rc)
			goto out;
		rc = rd_next(r, &vev);
		if (rc)
			goto out;
		have_v = true;
		rc = path_push(r, json_string_value(key), &old);
		if (rc) {
			rc = rd_nomem(r, &vev);
			goto out;
		}
		r->key = &kev.start_mark;
		rc = rd_node(r, &vev, depth, &val);
		path_pop(r, old);
		if (rc)
			goto out;
		/* val is stolen by the object. */
		if (json_object_set_new(obj, json_string_value(key), val)) {
			val = NULL;
			rc = rd_nomem(r, &vev);
			goto out;
		}
		val = NULL;
		json_decref(key);
		key = NULL;
		yaml_event_delete(&vev);
		have_v = false;
		yaml_event_delete(&kev);
		have_k = false;
	}
out:
	json_decref(key);
	json_decref(val);
	if (have_v)
		yaml_event_delete(&vev);
	if (have_k)
		yaml_event_delete(&kev);
	return rc;
}

static int rd_sequence(struct reader *r, int depth, json_t *arr)
{
	yaml_event_t iev;
	bool have = false;
	json_t *val = NULL;
	char idx[32];
	size_t old;
	int rc;

	for (;;) {
		rc = rd_next(r, &iev);
		if (rc)
			goto out;
		have = true;
		if (iev.type == YAML_SEQUENCE_END_EVENT)
			break;
		snprintf(idx, sizeof(idx), "%zu", json_array_size(arr));
		rc = path_push(r, idx, &old);
		if (rc) {
			rc = rd_nomem(r, &iev);
			goto out;
		}
		rc = rd_node(r, &iev, depth, &val);
		path_pop(r, old);
		if (rc)
			goto out;
		/* val is stolen by the array, even on failure. */
		if (json_array_append_new(arr, val)) {
			val = NULL;
			rc = rd_nomem(r, &iev);
			goto out;
		}
		val = NULL;
		yaml_event_delete(&iev);
		have = false;
	}
out:
	if (have)
		yaml_event_delete(&iev);
	return rc;
}

/*
 * Read the node that starts with ev (borrowed; the caller deletes it) at
 * nesting depth into *out (new reference), recording its position under
 * the current path.
 */
static int rd_node(struct reader *r, const yaml_event_t *ev, int depth,
		   json_t **out)
{
	json_t *v = NULL, *pos;
	int rc = 0;

	*out = NULL;
	if (r->path.len) {
		/* One integer per value: positions are recorded for every node
		 * of every document, so they must be cheap. */
		pos = json_integer(pos_encode(r, &ev->start_mark, r->key));
		/* pos is stolen by the positions object. */
		if (!pos || json_object_set_new(r->positions, r->path.ptr, pos))
			return rd_nomem(r, ev);
	}
	r->key = NULL;   /* the nodes inside have keys of their own, or none */
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		rc = rd_scalar(r, ev, &v);
		break;
	case YAML_ALIAS_EVENT:
		rc = rd_fail(r, ERR_INVALID, MARK(ev->start_mark),
			     "anchors and aliases are not supported");
		break;
	case YAML_MAPPING_START_EVENT:
	case YAML_SEQUENCE_START_EVENT: {
		bool map = ev->type == YAML_MAPPING_START_EVENT;
		rc = rd_check_collection(r, ev, map ? TAG_PREFIX "map"
						    : TAG_PREFIX "seq");
		if (rc)
			break;
		if (depth >= YAML_MAX_DEPTH) {
			rc = rd_fail(r, ERR_INVALID, MARK(ev->start_mark),
				     "nesting deeper than %d levels",
				     YAML_MAX_DEPTH);
			break;
		}
		v = map ? json_object() : json_array();
		if (!v) {
			rc = rd_nomem(r, ev);
			break;
		}
		rc = map ? rd_mapping(r, depth + 1, v)
			 : rd_sequence(r, depth + 1, v);
		break;
	}
	default:
		rc = rd_fail(r, ERR_INTERNAL, MARK(ev->start_mark),
			     "unexpected yaml event %d", (int)ev->type);
		break;
	}
	if (rc) {
		json_decref(v);
		return rc;
	}
	*out = v;
	return 0;
}

void yaml_docs_release(struct yaml_docs *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->n; i++) {
		json_decref(d->docs[i].value);
		json_decref(d->docs[i].positions);
	}
	free(d->docs);
	d->docs = NULL;
	d->n = 0;
}

/* Append a document to d, growing it by doubling; *cap tracks the size. */
static int docs_push(struct yaml_docs *d, size_t *cap,
		     const struct yaml_doc *doc)
{
	struct yaml_doc *p;
	size_t ncap;

	if (d->n == *cap) {
		ncap = *cap ? *cap * 2 : 4;
		p = realloc(d->docs, ncap * sizeof(*p));
		if (!p)
			return ERR_NOMEM;
		d->docs = p;
		*cap = ncap;
	}
	d->docs[d->n++] = *doc;
	return 0;
}

int yaml_parse_docs(const char *filename, const char *text, size_t len,
		    struct yaml_docs *out, struct err *e)
{
	return yaml_parse_docs_at(filename, text, len, 1, out, e);
}

int yaml_parse_docs_at(const char *filename, const char *text, size_t len,
		       int first_line, struct yaml_docs *out, struct err *e)
{
	struct reader r;
	struct yaml_docs docs = { NULL, 0 };
	struct yaml_doc doc = { NULL, 0, 0, 0, NULL };
	yaml_event_t ev;
	bool have = false;
	size_t cap = 0;
	int rc = 0;

	out->docs = NULL;
	out->n = 0;
	memset(&r, 0, sizeof(r));
	r.filename = filename ? filename : "<input>";
	r.text = text ? text : "";
	r.len = text ? len : 0;
	r.line0 = first_line > 1 ? (size_t)first_line - 1 : 0;
	r.e = e;
	buf_init(&r.path, 0);
	if (!yaml_parser_initialize(&r.parser))
		return err_set(e, ERR_NOMEM, "%s: out of memory", r.filename);
	yaml_parser_set_input_string(&r.parser, (const unsigned char *)r.text,
				     r.len);

	for (;;) {
		rc = rd_next(&r, &ev);
		if (rc)
			goto out;
		have = true;
		if (ev.type == YAML_STREAM_END_EVENT)
			break;
		if (ev.type == YAML_DOCUMENT_START_EVENT) {
			yaml_event_delete(&ev);
			have = false;
			rc = rd_next(&r, &ev);
			if (rc)
				goto out;
			have = true;
			doc.line = (int)(r.line0 + ev.start_mark.line + 1);
			doc.column = (int)ev.start_mark.column + 1;
			doc.offset = ev.start_mark.index;
			doc.positions = json_object();
			if (!doc.positions) {
				rc = rd_nomem(&r, &ev);
				goto out;
			}
			r.positions = doc.positions;
			rc = rd_node(&r, &ev, 0, &doc.value);
			if (rc)
				goto out;
			/* A document that is only null ("---", "~") is empty. */
			if (json_is_null(doc.value)) {
				json_decref(doc.value);
				doc.value = NULL;
			}
			if (docs_push(&docs, &cap, &doc)) {
				rc = rd_nomem(&r, &ev);
				goto out;
			}
			doc.value = NULL;
			doc.positions = NULL;
		}
		/* STREAM_START and DOCUMENT_END carry nothing we need. */
		yaml_event_delete(&ev);
		have = false;
	}
	*out = docs;
	docs.docs = NULL;
	docs.n = 0;
out:
	if (have)
		yaml_event_delete(&ev);
	json_decref(doc.value);
	json_decref(doc.positions);
	yaml_docs_release(&docs);
	yaml_parser_delete(&r.parser);
	buf_release(&r.path);
	return rc;
}

/* The position recorded for path, or 0 (none). */
static json_int_t pos_get(const struct yaml_doc *d, const char *path)
{
	json_t *p = NULL;

	if (d && d->positions && path)
		p = json_object_get(d->positions, path);
	return json_is_integer(p) ? json_integer_value(p) : 0;
}

void yaml_doc_pos(const struct yaml_doc *d, const char *path, int *line,
		  int *column)
{
	json_int_t p = pos_get(d, path);

	*line = (int)(p >> 24 & POS_MAX);
	*column = (int)(p & POS_MAX);
}

void yaml_doc_key_pos(const struct yaml_doc *d, const char *path, int *line,
		      int *column)
{
	json_int_t p = pos_get(d, path);
	int up = (int)(p >> 48 & 7);

	yaml_doc_pos(d, path, line, column);
	if (!up)
		return;
	*line -= up - 1;
	*column = (int)(p >> 51 & POS_KEY_COL_MAX);
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */

struct writer {
	yaml_emitter_t em;
	struct buf *out;
	int out_rc;          /* why the output handler failed, or 0 */
	struct err *e;
};

static int wr_output(void *data, unsigned char *bytes, size_t size)
{
	struct writer *w = data;
	int rc = buf_add(w->out, bytes, size);

	if (rc) {
		w->out_rc = rc;
		return 0;
	}
	return 1;
}

/* Emit ev (the emitter takes it over, even on failure). */
static int wr_emit(struct writer *w, yaml_event_t *ev)
{
	if (yaml_emitter_emit(&w->em, ev))
		return 0;
	if (w->out_rc == ERR_TOO_LARGE)
		return err_set(w->e, ERR_TOO_LARGE,
			       "yaml output is larger than the limit of %zu "
			       "bytes", w->out->cap);
	if (w->out_rc || w->em.error == YAML_MEMORY_ERROR)
		return err_set(w->e, ERR_NOMEM, "out of memory");
	return err_set(w->e, ERR_INVALID, "cannot emit yaml: %s",
		       w->em.problem ? w->em.problem : "unknown error");
}

/* Event initialisers fail only on allocation failure or invalid UTF-8. */
static int wr_init_failed(struct writer *w)
{
	return err_set(w->e, ERR_INVALID,
		       "cannot emit yaml: invalid UTF-8 or out of memory");
}

static int wr_scalar(struct writer *w, const char *s, size_t n,
		     yaml_scalar_style_t style)
{
	yaml_event_t ev;

	if (n > INT_MAX)
		return err_set(w->e, ERR_TOO_LARGE,
			       "a string of %zu bytes is too long for yaml", n);
	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s,
					  (int)n, 1, 1, style))
		return wr_init_failed(w);
	return wr_emit(w, &ev);
}

/* The YAML 1.1 booleans that 1.2 reads as strings: quoted on output so
 * that 1.1 readers (PyYAML, older Go yaml) read the same value. */
static bool is_yaml11_bool(const char *s, size_t n)
{
	static const char *const words[] = {
		"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
		"on", "On", "ON", "off", "Off", "OFF",
	};
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (lit_eq(s, n, words[i]))
			return true;
	return false;
}

/* A string, quoted when the core schema would read it as another type;
 * multi-line strings as literal blocks (libyaml falls back to double
 * quotes where a block cannot carry the text exactly). */
static int wr_string(struct writer *w, const char *s, size_t n)
{
	yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;

	if (memchr(s, '\n', n))
		style = YAML_LITERAL_SCALAR_STYLE;
	else if (resolve_plain(s, n) != SK_STR || is_yaml11_bool(s, n))
		style = YAML_SINGLE_QUOTED_SCALAR_STYLE;
	return wr_scalar(w, s, n, style);
}

/* Shortest "%.Ng" that reads back as d, always with a '.' or exponent so
 * that it reads back as a float and not an integer. */
static void fmt_real(double d, char *out, size_t n)
{
	int prec;

	for (prec = 15; prec <= 17; prec++) {
		snprintf(out, n, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			break;
	}
	if (!strpbrk(out, ".eE"))
		strncat(out, ".0", n - strlen(out) - 1);
}

static int wr_value(struct writer *w, json_t *v, int depth)
{
	yaml_event_t ev;
	const char *key;
	json_t *item;
	char num[64];
	size_t i;
	int rc;

	if (depth > EMIT_MAX_DEPTH)
		return err_set(w->e, ERR_INVALID,
			       "value nested deeper than %d levels",
			       EMIT_MAX_DEPTH);
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (!yaml_mapping_start_event_initialize(
			    &ev, NULL, NULL, 1,
			    json_object_size(v) ? YAML_BLOCK_MAPPING_STYLE
						: YAML_FLOW_MAPPING_STYLE))
			return wr_init_failed(w);
		rc = wr_emit(w, &ev);
		if (rc)
			return rc;
		json_object_foreach(v, key, item) {
			rc = wr_string(w, key, strlen(key));
			if (!rc)
				rc = wr_value(w, item, depth + 1);
			if (rc)
				return rc;
		}
		yaml_mapping_end_event_initialize(&ev);
		return wr_emit(w, &ev);
	case JSON_ARRAY:
		if (!yaml_sequence_start_event_initialize(
			    &ev, NULL, NULL, 1,
			    json_array_size(v) ? YAML_BLOCK_SEQUENCE_STYLE
					       : YAML_FLOW_SEQUENCE_STYLE))
			return wr_init_failed(w);
		rc = wr_emit(w, &ev);
		if (rc)
			return rc;
		json_array_foreach(v, i, item) {
			rc = wr_value(w, item, depth + 1);
			if (rc)
				return rc;
		}
		yaml_sequence_end_event_initialize(&ev);
		return wr_emit(w, &ev);
	case JSON_STRING:
		return wr_string(w, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		return wr_scalar(w, num, strlen(num), YAML_PLAIN_SCALAR_STYLE);
	case JSON_REAL:
		fmt_real(json_real_value(v), num, sizeof(num));
		return wr_scalar(w, num, strlen(num), YAML_PLAIN_SCALAR_STYLE);
	case JSON_TRUE:
		return wr_scalar(w, "true", 4, YAML_PLAIN_SCALAR_STYLE);
	case JSON_FALSE:
		return wr_scalar(w, "false", 5, YAML_PLAIN_SCALAR_STYLE);
	case JSON_NULL:
	default:
		return wr_scalar(w, "null", 4, YAML_PLAIN_SCALAR_STYLE);
	}
}

int yaml_emit(struct buf *out, json_t *v, int start_marker, struct err *e)
{
	struct writer w;
	yaml_event_t ev;
	size_t start = out->len;
	json_t *null = NULL;
	int rc = 0;

	memset(&w, 0, sizeof(w));
	w.out = out;
	w.e = e;
	if (!yaml_emitter_initialize(&w.em))
		return err_set(e, ERR_NOMEM, "out of memory");
	yaml_emitter_set_output(&w.em, wr_output, &w);
	yaml_emitter_set_unicode(&w.em, 1);
	yaml_emitter_set_width(&w.em, -1);
	yaml_emitter_set_indent(&w.em, 2);
	yaml_emitter_set_break(&w.em, YAML_LN_BREAK);

	if (!v) {
		null = json_null();
		v = null;
	}
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	rc = wr_emit(&w, &ev);
	if (rc)
		goto out;
	if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL,
						  !start_marker)) {
		rc = wr_init_failed(&w);
		goto out;
	}
	rc = wr_emit(&w, &ev);
	if (rc)
		goto out;
	rc = wr_value(&w, v, 0);
	if (rc)
		goto out;
	yaml_document_end_event_initialize(&ev, 1);
	rc = wr_emit(&w, &ev);
	if (rc)
		goto out;
	yaml_stream_end_event_initialize(&ev);
	rc = wr_emit(&w, &ev);
out:
	yaml_emitter_delete(&w.em);
	json_decref(null);
	if (rc) {
		out->len = start;
		if (out->alloc)
			out->ptr[start] = '\0';
	}
	return rc;
}
