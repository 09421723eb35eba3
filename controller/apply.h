/*
 * apply.h - make the store match a set of manifests (kubectl apply / diff).
 *
 * apply_run() validates every document first (schema types, select values,
 * relation names resolved to ids, duplicates), then writes all of them in
 * one transaction: all or nothing. Documents whose normalised spec and
 * labels equal the stored record are not written. Relation fields in a
 * manifest name their target by record name ("agent: poco"); targets created
 * by the same apply are fine, in any document order.
 *
 * Apply is a writer like the records API and keeps the same invariants:
 * kinds that only the server writes (Sop, ReconcileStatus) are refused
 * naming the document; every created or changed record goes through the
 * store's write hooks (governance.h: sealing, decisions) as o->actor;
 * system fields a document leaves out (approved_at, last_used, ...) keep
 * their stored values, so a re-apply does not undo what the server
 * recorded. A Proposal document that says status "approved" approves
 * exactly its content: changed content is sealed as a new version (an
 * API edit that does not re-approve puts the proposal back to draft).
 *
 * Field ownership (server-side apply, store.h "field ownership"): an
 * apply is the manager "apply:SET" (SET = o->applyset, or "default") and
 * owns exactly the top-level spec fields its documents set. A field a
 * document leaves out is kept as stored unless the same set owned it
 * before, in which case it is cleared; a field it sets that another
 * manager changed is taken back, and the item says so:
 *   "tookBack": [{"field": "spec.image", "from": "user:abc123"}].
 *
 * Unchanged re-apply (store.h "apply digests"): each written document's
 * digest (manager, actor, schema version, its data with relations
 * resolved, its labels) is kept with the revision the write left. A
 * document with the same digest whose record nobody wrote since is
 * "unchanged" without reading the record or its ownership; any other
 * write to the record makes the next apply take the full path, so
 * ownership and take-back are exactly as above. Diffs, and documents that
 * set a secret, always take the full path.
 *
 * Unchanged text (store.h, "text digests"): apply_run_load() loads the
 * manifests inside its transaction with the known pieces of
 * manifest.h, keyed by the manager, the actor, the schema version, the
 * build of the program (util_build_id()) and the number of renames so
 * far (a relation names its target, and a rename can make a name mean
 * another record). A piece of text that
 * was last applied by the same and whose record nobody wrote since is
 * "unchanged" without being parsed; each document written or found
 * unchanged by the full path keeps its piece's key next to its digest.
 *
 * With an apply set, the set's membership is recorded; with prune, members
 * of an earlier apply of the same set that are no longer in the manifests
 * are deleted - refused when that is more than half of the set, unless
 * force.
 *
 * The result is JSON, so the CLI prints the same thing whether it ran the
 * apply itself or posted it to the server:
 *   {"dryRun": false, "revision": 42,
 *    "items": [{"kind": "McpServer", "collection": "mcp_servers",
 *               "name": "github", "id": "...",
 *               "action": "created|configured|unchanged|pruned"}],
 *    "created": 1, "configured": 0, "unchanged": 3, "pruned": 0}
 */
#ifndef POCKETCTL_APPLY_H
#define POCKETCTL_APPLY_H

#include <stdbool.h>

#include <jansson.h>

#include "err.h"
#include "manifest.h"
#include "store/store.h"

struct auth_keys;

#define APPLY_MANAGER_PREFIX "apply:"
#define APPLY_DEFAULT_SET "default"  /* the set of an apply without one */

struct apply_opts {
	bool dry_run;          /* compute and report, write nothing */
	bool prune;            /* delete set members no longer declared */
	bool force;            /* allow pruning more than half of the set */
	const char *applyset;  /* NULL: no set (prune requires one) */
	const char *actor;     /* the applying auth record's id, for the
	                        * write hooks; NULL = the server itself
	                        * (offline CLI, --manifests) */
	struct err_list *errors; /* NULL, or where every problem goes (see
	                        * below); problems already in it (the
	                        * loader's) make the apply write nothing */
	const struct auth_keys *keys; /* the installation key: a masked
	                        * secret applied back that masks the stored
	                        * value means "unchanged" (secrets.h); NULL:
	                        * every masked secret is refused */
};

/*
 * Caller owns *result (json_decref). On error nothing is written and e
 * names the file:line:column and field where there is one.
 *
 * Every problem in one pass: a document with a problem (unknown field,
 * with a "did you mean" from the schema; wrong type or value; a required
 * field left empty, placed at the mapping that lacks it; a relation to no
 * record; a unique clash, naming the other record KIND/NAME and where
 * this apply declares it) is reported and the others are still checked,
 * up to ERR_LIST_MAX problems. A document naming a failed one in a
 * relation is not blamed for it. The problems go to o->errors (sorted by
 * file, line, column) when given; e holds them put together
 * (err_list_summary()) and the code of the first is returned.
 */
int apply_run(struct store *s, const struct manifest_set *m,
	      const struct apply_opts *o, json_t **result, struct err *e);

/*
 * Load and apply in one transaction: load(arg, known, m, errs, e) fills
 * m (caller owns it; empty on entry) with manifest_load_known() or
 * manifest_parse_known() given known, its problems into errs (o->errors
 * or the apply's own list). Otherwise as apply_run().
 */
typedef int apply_load_fn(void *arg, const struct manifest_known *known,
			  struct manifest_set *m, struct err_list *errs,
			  struct err *e);
int apply_run_load(struct store *s, apply_load_fn *load, void *arg,
		   struct manifest_set *m, const struct apply_opts *o,
		   json_t **result, struct err *e);

/* The load of files and directories: apply_load_paths(arg = struct
 * apply_paths) is manifest_load_known() of them, its code kept in rc (a
 * load that failed, told from an apply that did). */
struct apply_paths {
	const struct schema *schema;
	const char *const *paths;
	size_t npaths;
	int rc;
};
int apply_load_paths(void *arg, const struct manifest_known *known,
		     struct manifest_set *m, struct err_list *errs,
		     struct err *e);

/*
 * Like a dry run, but each item also carries "live" and "desired": the
 * record as a manifest document (null when absent), for a textual diff.
 * Items whose action is "unchanged" are included.
 */
int apply_diff(struct store *s, const struct manifest_set *m,
	       const struct apply_opts *o, json_t **result, struct err *e);

/*
 * A stored record in manifest form {apiVersion, kind, metadata: {name,
 * labels}, spec}, relation ids turned back into names, empty/zero fields
 * left out unless the field's default differs (so that applied to an
 * empty store it gives the record back), hidden fields never included. Caller owns the result; NULL on
 * error with e set.
 */
json_t *apply_record_manifest(struct store *s, const struct record *r,
			      struct err *e);

/*
 * Add r's field ownership to doc (apply_record_manifest()'s form) as
 * metadata.managedFields, kubectl style: [{"manager": M, "fields":
 * ["spec.F", ...]}, ...] sorted by manager, fields in schema order. doc
 * is modified in place; 0, or an error in e (corrupt ownership data).
 */
int apply_managed_fields(struct store *s, const struct record *r, json_t *doc,
			 struct err *e);

#endif
