/*
 * yamljson.h - YAML <-> JSON (jansson) conversion on libyaml, with source
 * positions.
 *
 * Reading: every document of a YAML stream becomes one JSON value. Plain
 * scalars are typed by the YAML 1.2 core schema (null, ~, true/false,
 * integers, floats); quoted scalars are always strings. Anchors/aliases,
 * duplicate mapping keys, non-string keys, invalid UTF-8 and tags other
 * than the core ones are refused, with file:line:column.
 *
 * Writing: a JSON value is emitted as block-style YAML with libyaml's
 * emitter (real escaping), object keys in the order of the object.
 */
#ifndef POCKETCTL_YAMLJSON_H
#define POCKETCTL_YAMLJSON_H

#include <stddef.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"

/* One parsed document. */
struct yaml_doc {
	json_t *value;       /* owned; NULL for an empty document */
	int line, column;    /* 1-based start of the document's root node */
	size_t offset;       /* and its byte offset in the text parsed */
	json_t *positions;   /* owned object: JSON-pointer-ish path such as
	                      * "spec.env_vars.KEY" or "metadata.name" ->
	                      * an integer holding the 1-based line and
	                      * column of that value, and of its key; read
	                      * it with yaml_doc_pos(), yaml_doc_key_pos() */
};

struct yaml_docs {
	struct yaml_doc *docs;
	size_t n;
};

/*
 * Parse every document of text[0..len) (YAML, or JSON, which is YAML).
 * filename is used only in messages. On error e->msg starts with
 * "FILENAME:LINE:COLUMN: " and *out is left empty.
 * Caller owns *out (release with yaml_docs_release()).
 */
int yaml_parse_docs(const char *filename, const char *text, size_t len,
		    struct yaml_docs *out, struct err *e);

/* The same for a piece of a file whose first line is the file's line
 * first_line: every line reported (positions, documents, messages) is
 * the file's. */
int yaml_parse_docs_at(const char *filename, const char *text, size_t len,
		       int first_line, struct yaml_docs *out, struct err *e);

void yaml_docs_release(struct yaml_docs *d);   /* accepts NULL */

/* Look up the [line, column] recorded for path; 0/0 when unknown. */
void yaml_doc_pos(const struct yaml_doc *d, const char *path, int *line,
		  int *column);

/* The same, but of the key when path is a mapping's value ("spec" -> where
 * "spec:" stands, for a problem with the key itself, or with what the
 * mapping lacks); of the value when the key is not known (a list item, or
 * a key more than 6 lines above its value or past column 4095). */
void yaml_doc_key_pos(const struct yaml_doc *d, const char *path, int *line,
		      int *column);

/*
 * Emit v as one YAML document (no "---" marker unless start_marker) and
 * append it to out. Strings that would read back as another type ("true",
 * "1", "null", "") are quoted.
 */
int yaml_emit(struct buf *out, json_t *v, int start_marker, struct err *e);

#endif
