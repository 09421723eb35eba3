/*
 * pick.h - the records API's ?fields= projection (PocketBase's "picker").
 *
 * A fields spec is a comma-separated list of dotted paths into the record
 * JSON ("id,title,expand.prompt.name"); "*" at any level keeps every key of
 * that level not named more precisely ("*,expand.prompt.name" keeps the
 * whole record but only the prompt's name from expand). A path may end in a
 * modifier; the one PocketBase defines is ":excerpt(max, withEllipsis?)",
 * which shortens a string value to about max bytes on a character boundary,
 * with whitespace runs collapsed (plain text: HTML tags are not stripped).
 * Arrays of objects are projected element by element.
 */
#ifndef POCKETCTL_PICK_H
#define POCKETCTL_PICK_H

#include <jansson.h>

#include "err.h"

#define PICK_MAX_LEN 4096     /* bytes of fields spec */
#define PICK_MAX_FIELDS 64    /* comma-separated entries */

struct pick;

/*
 * Parse a fields spec. An empty or all-blank spec gives *out = NULL (no
 * projection: pick_apply() then leaves values alone). Caller owns *out
 * (free with pick_free()). Returns 0 or ERR_INVALID with e->field =
 * "fields" naming the problem (too long, too many entries, an unknown
 * modifier, bad modifier arguments, unbalanced parentheses); ERR_NOMEM.
 */
int pick_parse(const char *spec, struct pick **out, struct err *e);

/*
 * Project value in place: an object keeps only the picked keys (recursively),
 * an array has each object element projected, anything else is left as it
 * is. p may be NULL (no change). Returns 0 or ERR_NOMEM (value may then be
 * partly projected).
 */
int pick_apply(const struct pick *p, json_t *value);

/* Accepts NULL. */
void pick_free(struct pick *p);

#endif
