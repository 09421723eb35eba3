/*
 * testlib.h - what the unit tests share instead of each carrying a copy:
 * temporary directories (created, and removed with everything below them),
 * small files, fixture JSON written with ' for ", the embedded schema, a
 * store opened in a temporary directory, and one-transaction puts.
 *
 * Every helper fails the running test (Criterion's cr_assert) instead of
 * returning an error, so a test reads as its steps.
 */
#ifndef POCKETCTL_TESTLIB_H
#define POCKETCTL_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store/schema.h"
#include "store/store.h"

/*
 * Create a fresh directory $TMPDIR/pocketctl-TAG-XXXXXX ($TMPDIR defaults
 * to /tmp) and write its path into out (size n). Remove it with
 * tl_rmtree().
 */
void tl_mkdtemp(char *out, size_t n, const char *tag);

/* tl_mkdtemp() into a new string; caller frees it (and removes the tree). */
char *tl_tmpdir(const char *tag);

/*
 * Remove dir and everything below it, without following symbolic links;
 * directories a test made unreadable or unwritable are opened up first.
 * Accepts NULL and "" (nothing to do).
 */
void tl_rmtree(const char *dir);

/* Remove DIR/NAME (a file), ignoring a missing one. */
void tl_unlink_in(const char *dir, const char *name);

/* Write text to the file path (created or truncated). */
void tl_write_file(const char *path, const char *text);

/* Write text to DIR/REL, creating the missing directories of REL. */
void tl_write(const char *dir, const char *rel, const char *text);

/* text with every ' turned into " (fixture JSON). Caller frees. */
char *tl_quotes(const char *text);

/* Parse JSON (any value) written with ' for ". Caller owns the result. */
json_t *tl_json(const char *text);

/* The embedded schema (schema/). Caller frees it (schema_free). */
struct schema *tl_schema(void);

/* A schema loaded from JSON text written with ' for ". Caller frees it. */
struct schema *tl_schema_text(const char *text);

/*
 * Open (creating when missing) a store in dir on schema sc, keeping keep
 * change-log rows (0: the default). Caller closes it (store_close).
 */
struct store *tl_store_open(const struct schema *sc, const char *dir,
			    int64_t keep);

/*
 * A test's store, in the suite's own variables: a fresh temporary
 * directory into dir (size n, see tl_mkdtemp), the schema into *sc (the
 * embedded one when schema is NULL, else loaded from that text, written
 * with ' for ") and a store open in the directory into *s, keeping keep
 * change-log rows (0: the default).
 */
void tl_store_setup(char *dir, size_t n, const char *tag, const char *schema,
		    int64_t keep, struct schema **sc, struct store **s);

/* Undo tl_store_setup(): close *s and free *sc (both set to NULL; either
 * may be NULL already) and remove dir with everything below it. */
void tl_store_teardown(const char *dir, struct schema **sc,
		       struct store **s);

/*
 * Put one record in its own transaction, which must succeed: data (fields,
 * borrowed) in collection coll, as mode says (STORE_CREATE, STORE_UPSERT,
 * ...); the record id when id is non-NULL and non-empty. The record's id
 * is written to id_out when it is non-NULL.
 */
void tl_put(struct store *s, const char *coll, json_t *data,
	    enum store_put_mode mode, const char *id, char *id_out);

/* tl_put() taking data over (it is freed; NULL fails the test). */
void tl_put_new(struct store *s, const char *coll, json_t *data,
		enum store_put_mode mode, const char *id, char *id_out);

/* tl_put() of fixture JSON text (' for "). */
void tl_put_text(struct store *s, const char *coll, const char *json_text,
		 enum store_put_mode mode, const char *id, char *id_out);

/* A new record (STORE_CREATE, a new id) from fixture JSON text (' for
 * "); its id to id_out when non-NULL. */
void tl_create(struct store *s, const char *coll, const char *json_text,
	       char *id_out);

/* Upsert (STORE_UPSERT) a record from fixture JSON text (' for "): an
 * update of record id when id is set, else a record found by name or
 * created, whose id is then written to id (id NULL: not wanted). */
void tl_upsert(struct store *s, const char *coll, const char *json_text,
	       char *id);

/* A partial update (PATCH) of record id of coll with fixture JSON text
 * (' for "): only the fields given change. */
void tl_patch(struct store *s, const char *coll, const char *id,
	      const char *json_text);

/* A TCP socket listening on an ephemeral port of 127.0.0.1 (backlog 64),
 * its port to *port. */
int tl_tcp_listener(int *port);

#endif
