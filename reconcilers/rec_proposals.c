/*
 * rec_proposals.c - the proposals directory -> draft proposals.
 *
 * The proposals directory next to the skills directory
 * (<root>/workspace/.opencode/proposals by default) is provisioned into
 * draft proposals (provision.h) on every pass: at start, on every change
 * inside it (rctx_watch_dir) and at every resync. Bad and missing files
 * become warnings of this reconciler naming the file; they are not
 * failures (the files are someone else's to fix), so the pass succeeds.
 * The parsing and the rules (an approved proposal whose file changed goes
 * back to draft, never sealed by itself) are provision.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "reconciler.h"
#include "render.h"

static const char *const proposals_reads[] = { "proposals", NULL };

static int reconcile_proposals(struct rctx *c, struct err *e)
{
	json_t *report = NULL, *item;
	const char *action;
	char *dir;
	size_t i;
	int rc;

	dir = rctx_opencode_path(c, "proposals");
	if (!dir) {
		if (rctx_path(c, "agents_dir") ||
		    rctx_path(c, "opencode_json"))
			return err_set(e, ERR_NOMEM, "out of memory");
		return 0;
	}
	rctx_watch_dir(c, dir);
	rc = rctx_provision(c, dir, &report, e);
	json_array_foreach(json_object_get(report, "files"), i, item) {
		action = json_string_value(json_object_get(item, "action"));
		if (!rc && action && (!strcmp(action, "invalid") ||
				      !strcmp(action, "missing")) &&
		    render_warn(rctx_warnings(c), "%s",
				json_string_value(json_object_get(item,
								  "message"))))
			rc = err_set(e, ERR_NOMEM, "out of memory");
	}
	json_decref(report);
	free(dir);
	return rc;
}

const struct reconciler rec_proposals = {
	.name = "proposals",
	.description = "proposals/NAME.md -> draft proposals",
	.reads = proposals_reads,
	.reconcile = reconcile_proposals,
};
