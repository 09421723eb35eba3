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
#define MANIFEST_KEY_LEN 32                     /* SHA-256 */

struct manifest_doc {
	char *file;                        /* owned; as given or found */
	int line, column;                  /* where the document starts */
	const struct collection *coll;     /* borrowed from the schema */
	char *name;                        /* owned; metadata.name */
	json_t *labels;                    /* owned; object of strings, {} */
	json_t *spec;                      /* owned; object */
	json_t *positions;                 /* owned; see struct yaml_doc */
	/* Known pieces (struct manifest_known): */
	bool keyed;                        /* key is its piece's, and the
	                                    * piece holds this document only */
	unsigned char key[MANIFEST_KEY_LEN];
	char *known_id;                    /* owned; set for a document
	                                    * taken from find(), not parsed:
	                                    * coll, name, file, line set;
	                                    * spec, labels, positions NULL */
	/* Where the YAML document it came from starts in the text parsed,
	 * and whether this is its only manifest document (not a list's). */
	size_t offset;
	bool single;
};

struct manifest_set {
	struct manifest_doc *docs;
	size_t n, cap;
};

/*
 * Known pieces: the short cut of an unchanged re-apply, before anything
 * is parsed. A loader given a struct manifest_known cuts each YAML file
 * into pieces at the lines that start with "---" (followed by a blank or
 * the end of the line): YAML makes such a line start a new document
 * wherever it stands, so each piece parses alone exactly as within its
 * file. Each piece's key is SHA-256(salt, piece). find() says whether
 * a key is known and, if so, fills in the document's coll, name
 * (owned) and known_id (owned): such a piece is not parsed (its
 * document stands for the stored record find() vouches for, which that
 * very text declared).
 * A piece that is parsed and holds exactly one document gives it the
 * key (keyed), for the caller to remember. When at most a quarter of a
 * file's pieces are not known, each of those is parsed alone; else the
 * whole file is parsed (known pieces included: one parse is cheaper than
 * thousands of small ones) and keyed the same. A file with a
 * directive (a line starting with '%') and a JSON file are parsed whole,
 * unkeyed. Messages, positions and duplicate checks are as without.
 * none: nothing can be known (find() is not called; pieces are still
 * keyed).
 */
typedef int manifest_find_fn(void *arg, const unsigned char key[MANIFEST_KEY_LEN],
			     struct manifest_doc *d, bool *hit, struct err *e);

struct manifest_known {
	const void *salt;
	size_t salt_len;
	bool none;
	manifest_find_fn *find;
	void *arg;
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

/* manifest_load_all() and manifest_parse_all() with known pieces (see
 * struct manifest_known; known NULL: none, as those). */
int manifest_load_known(const struct schema *schema, const char *const *paths,
			size_t npaths, const struct manifest_known *known,
			manifest_file_fn *fn, void *arg,
			struct manifest_set *out, struct err_list *errs,
			struct err *e);
int manifest_parse_known(const struct schema *schema, const char *filename,
			 const char *text, size_t len,
			 const struct manifest_known *known,
			 struct manifest_set *out, struct err_list *errs,
			 struct err *e);

/* Find and read the files of paths as manifest_load_all() does, handing
 * each one's text to fn and parsing nothing; a path without a file is a
 * problem ("'PATH': no documents", into errs). */
int manifest_read_paths(const char *const *paths, size_t npaths,
			manifest_file_fn *fn, void *arg, struct err_list *errs,
			struct err *e);

/* One file's text as manifest_load_known() parses it: manifest_parse_known()
 * noting the file in errs, and a file without a document is a problem. */
int manifest_parse_file(const struct schema *schema, const char *name,
			const char *text, size_t len,
			const struct manifest_known *known,
			struct manifest_set *out, struct err_list *errs,
			struct err *e);

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
