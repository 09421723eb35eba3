/*
 * expand.h - the records API's ?expand= : related records inlined under
 * "expand" in the record JSON, as PocketBase does.
 *
 * A spec is a comma-separated list of relation paths ("prompt,model",
 * "chat.user"), at most EXPAND_MAX_DEPTH relations deep (deeper parts are
 * dropped). A related record is included only when the caller may view it
 * (the target collection's view rule, see rules.h); names that are not
 * relation fields, empty relations and records the caller may not see are
 * silently left out, like PocketBase. Back-relations ("x_via_y") are not
 * supported and are ignored the same way.
 */
#ifndef POCKETCTL_EXPAND_H
#define POCKETCTL_EXPAND_H

#include <jansson.h>

#include "err.h"
#include "store/filter.h"
#include "store/schema.h"
#include "store/store.h"

#define EXPAND_MAX_DEPTH 6     /* PocketBase's limit */
#define EXPAND_MAX_LEN 4096    /* bytes of spec */
#define EXPAND_MAX_PATHS 32    /* comma-separated paths */

/*
 * Turn record rec of collection c into its API JSON for the caller. Returns
 * a new reference (caller owns it) or NULL on allocation failure.
 */
typedef json_t *(*expand_render_fn)(const struct collection *c,
				    const struct record *rec, void *arg);

/* One request's expansion state. Fill the first five members, leave cache
 * NULL, and call expand_release() when done. */
struct expand_ctx {
	struct store *store;
	const struct schema *schema;
	const struct filter_auth *auth;   /* the caller; borrowed */
	expand_render_fn render;
	void *render_arg;
	json_t *cache;                    /* "collection/id" -> [json, data]
	                                   * or null (not visible); owned */
};

/*
 * Parse spec into a tree of relation names: {"chat": {"user": {}}}. An
 * empty spec gives an empty object. Caller owns *tree. Returns 0,
 * ERR_INVALID (field "expand") for a spec that is too long or has too many
 * paths, or ERR_NOMEM.
 */
int expand_parse(const char *spec, json_t **tree, struct err *e);

/*
 * Expand the relations named by tree into obj (the JSON of a record of c
 * whose field data is data): obj gains "expand": {field: related record
 * JSON, with its own nested "expand"} when anything was expanded. Returns 0
 * or a negative ERR_* from the store (ERR_NOMEM included); relations that
 * are not visible are not errors.
 */
int expand_apply(struct expand_ctx *x, const struct collection *c,
		 json_t *data, json_t *obj, const json_t *tree,
		 struct err *e);

/* Free the cache. Accepts NULL. */
void expand_release(struct expand_ctx *x);

#endif
