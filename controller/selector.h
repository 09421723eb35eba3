/*
 * selector.h - kubectl's label selectors: "-l team=core,tier!=db,
 * env in (prod,staging),zone notin (a),canary,!legacy".
 *
 * A selector is a list of requirements, all of which must hold (AND).
 * Each requirement is one of
 *     key=value  key==value  key!=value  key in (v,...)  key notin (v,...)
 *     key        (the label exists)       !key   (the label is absent)
 * As in Kubernetes, key!=value and key notin (...) also hold when the
 * label is absent. Keys are [A-Za-z0-9] with '-', '_', '.' and one '/'
 * prefix inside; values are the same characters without '/', or empty.
 * An empty selector matches everything.
 */
#ifndef POCKETCTL_SELECTOR_H
#define POCKETCTL_SELECTOR_H

#include <stdbool.h>

#include <jansson.h>

#include "err.h"

struct selector;

/*
 * Parse text into *out. On error returns ERR_INVALID with e naming the
 * problem and its 1-based position ("label selector: expected a value at
 * position 6"), and *out is left NULL. Caller owns *out (selector_free).
 */
int selector_parse(const char *text, struct selector **out, struct err *e);

/* Do labels (an object of strings, or NULL for none) satisfy s? A NULL s
 * matches everything. */
bool selector_match(const struct selector *s, json_t *labels);

/* Accepts NULL. */
void selector_free(struct selector *s);

#endif
