/*
 * jsonpath.h - the subset of kubectl's -o jsonpath templates that
 * `pocketctl get` prints with (Debian has no well-kept C JSONPath
 * library, and kubectl's templates are not plain JSONPath anyway).
 *
 * A template is text with {EXPR} parts:
 *     {.spec.tool}                 a field path; the leading '$' is optional
 *     {.items[*].metadata.name}    [*] every element, [N] one (N < 0 from
 *                                  the end), .* every member, ['key'] a key
 *     {range .items[*]}...{end}    the inner template once per element,
 *                                  paths inside relative to the element
 *     {"\n"}                       a string literal (\n \t \" \\)
 * Text outside braces is printed as is. Several results of one path are
 * joined by a space; strings print raw, other values as compact JSON; a
 * missing field prints nothing (kubectl's --allow-missing-template-keys).
 * Filters ([?(...)]), recursive descent (..) and slices are refused with
 * "not supported".
 */
#ifndef POCKETCTL_JSONPATH_H
#define POCKETCTL_JSONPATH_H

#include <jansson.h>

#include "buf.h"
#include "err.h"

struct jsonpath;

/*
 * Compile tmpl. On error returns ERR_INVALID with e naming the problem and
 * its 1-based position in tmpl, and *out is left NULL. Caller owns *out
 * (jsonpath_free).
 */
int jsonpath_compile(const char *tmpl, struct jsonpath **out, struct err *e);

/* Append the template's output for doc (borrowed) to out. Returns 0, or
 * ERR_NOMEM / ERR_TOO_LARGE with e set. */
int jsonpath_execute(const struct jsonpath *jp, json_t *doc, struct buf *out,
		     struct err *e);

/* Accepts NULL. */
void jsonpath_free(struct jsonpath *jp);

#endif
