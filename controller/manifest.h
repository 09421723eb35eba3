/*
 * manifest.h - YAML manifests: files and directories of documents
 *
 *     apiVersion: pocketcoder.dev/v1
 *     kind: McpServer            # CamelCase singular of the collection
 *     metadata: {name: github, labels: {team: core}}
 *     spec: {status: approved, image: mcp/github}
 *
 * loaded into a list of validated documents with their source positions.
 * Loading checks the shape only (apiVersion, known kind, metadata.name,
 * spec is a mapping, no unknown top-level or metadata keys, no duplicate
 * kind/name); field-level validation against the schema happens in apply,
 * where relation names are resolved.
 */
#ifndef POCKETCTL_MANIFEST_H
#define POCKETCTL_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "err.h"
#include "store/schema.h"
#include "yamljson.h"

#define MANIFEST_API_VERSION "pocketcoder.dev/v1"
#define MANIFEST_MAX_FILE ((size_t)16 << 20)   /* 16 MiB per file */

struct manifest_doc {
	char *file;                        /* owned; as given or found */
	int line, column;                  /* where the document starts */
	const struct collection *coll;     /* borrowed from the schema */
	char *name;                        /* owned; metadata.name */
	json_t *labels;                    /* owned; object of strings, {} */
	json_t *spec;                      /* owned; object */
	json_t *positions;                 /* owned; see struct yaml_doc */
};

struct manifest_set {
	struct manifest_doc *docs;
	size_t n;
};

/* The name the standard input goes by in messages ("<stdin>:3:5: ..."). */
#define MANIFEST_STDIN "<stdin>"

/*
 * Load paths (files, or directories searched recursively for *.yaml and
 * *.yml in sorted order; symlinks followed, loops detected; "-" is the
 * standard input, read to its end, any mix of documents). Empty
 * documents are skipped; a path with no document at all is an error. On
 * error e->msg starts with "FILE:LINE:COLUMN: " where there is a position,
 * and *out is left empty. Caller owns *out (manifest_set_release()).
 */
int manifest_load_paths(const struct schema *schema, const char *const *paths,
			size_t npaths, struct manifest_set *out, struct err *e);

/*
 * Called by manifest_load_paths_each() once per file loaded, in load
 * order, after its documents parsed, with the file's text as read (borrowed;
 * valid during the call only). A nonzero return (with e set) stops the load
 * with that code.
 */
typedef int manifest_file_fn(void *arg, const char *file, const char *text,
			     size_t len, struct err *e);

/* manifest_load_paths(), handing each file's text to fn as well, so that a
 * caller needing the text (the CLI sends it to a server) reads it once. */
int manifest_load_paths_each(const struct schema *schema,
			     const char *const *paths, size_t npaths,
			     manifest_file_fn *fn, void *arg,
			     struct manifest_set *out, struct err *e);

/* Parse one in-memory stream (YAML or JSON; a JSON array or an object with
 * "items" counts as a list of documents). Appends to out. */
int manifest_parse(const struct schema *schema, const char *filename,
		   const char *text, size_t len, struct manifest_set *out,
		   struct err *e);

/*
 * Every problem in one pass. Like manifest_load_paths_each() and
 * manifest_parse(), but a problem in the manifests themselves (bad YAML,
 * a bad envelope, an unknown kind - with a "did you mean" -, a duplicate,
 * a file without documents) is appended to errs (err.h, with its
 * FILE:LINE:COL) and loading goes on: out holds the documents without
 * problems, each file is handed to fn whether or not it has some, and 0
 * is returned. Only what stops reading (a missing or unreadable or too
 * large file, memory) returns its code at once, with e set; then out is
 * left empty (manifest_load_all) or as it was (manifest_parse_all).
 * The first-error functions above are these, with the problems put
 * together into e by err_list_summary().
 */
int manifest_load_all(const struct schema *schema, const char *const *paths,
		      size_t npaths, manifest_file_fn *fn, void *arg,
		      struct manifest_set *out, struct err_list *errs,
		      struct err *e);
int manifest_parse_all(const struct schema *schema, const char *filename,
		       const char *text, size_t len, struct manifest_set *out,
		       struct err_list *errs, struct err *e);

void manifest_set_release(struct manifest_set *m);  /* accepts NULL */

/* "FILE:LINE:COL" of a spec field (or of the document when unknown), into
 * out (size n). */
void manifest_doc_where(const struct manifest_doc *d, const char *field,
			char *out, size_t n);

/* The line and column of spec field (a path such as "env_vars.KEY"; of
 * its key when key), or, when the document does not set it, of the key of
 * the nearest mapping it would be in ("spec:"), else of the document. */
void manifest_doc_locate(const struct manifest_doc *d, const char *field,
			 bool key, int *line, int *column);

#endif
