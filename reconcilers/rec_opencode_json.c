/*
 * rec_opencode_json.c - the opencode.json reconciler: read the file, patch
 * the keys pocketctl owns with render_opencode_json() (permission blocks
 * from tool_permissions, agent entries from ai_agents / ai_prompts /
 * ai_models: only the prompts and models the agents name), write it back
 * only when the bytes changed. A file that is
 * not valid JSON is left untouched and the pass fails with its parse
 * position (Degraded, retried; fixing the file by hand triggers a pass).
 */
#include "reconciler.h"
#include "render.h"

#define OPENCODE_MODE 0644

static const char *const reads[] = {
	"tool_permissions", "ai_agents", "ai_prompts", "ai_models", NULL
};

static const struct reconciler_path paths[] = {
	{ "opencode_json", "workspace/.opencode/opencode.json", false },
	{ NULL, NULL, false },
};

static int reconcile(struct rctx *c, struct err *e)
{
	struct buf cur = BUF_INIT, out = BUF_INIT;
	json_t *perms, *agents, *prompts, *models;
	const char *path = rctx_path(c, "opencode_json");
	bool exists = false;
	int rc;

	if (!path)
		return 0;
	rc = rctx_records(c, "tool_permissions", &perms, e);
	if (!rc)
		rc = rctx_records(c, "ai_agents", &agents, e);
	/* Only the prompts and models the agents name: thousands of other
	 * prompts are neither read nor a reason to run. */
	if (!rc)
		rc = rctx_related(c, agents, "prompt", "ai_prompts", &prompts,
				  e);
	if (!rc)
		rc = rctx_related(c, agents, "model", "ai_models", &models, e);
	if (!rc)
		rc = rctx_read(c, path, &cur, &exists, e);
	if (rc == ERR_UNAVAILABLE) {
		/* caught mid-write by hand: keep it, read again once it has
		 * settled (rctx_read() requeued us), never take it for gone */
		err_clear(e);
		rctx_keep(c, path, NULL);
		rc = 0;
		goto out;
	}
	if (!rc) {
		rc = render_opencode_json(exists ? cur.ptr : NULL,
					  exists ? cur.len : 0, perms, agents,
					  prompts, models, &out,
					  rctx_warnings(c), e);
		if (rc)
			err_prefix(e, "cannot patch '%s': ", path);
	}
	if (rc)
		rctx_keep(c, path, e);
	else
		rc = rctx_write(c, path, &out, OPENCODE_MODE, NULL, e);
out:
	buf_release(&cur);
	buf_release(&out);
	return rc;
}

const struct reconciler rec_opencode_json = {
	.name = "opencode-json",
	.description = "tool_permissions, ai_agents, ai_prompts, ai_models -> opencode.json (read, patch, write)",
	.reads = reads,
	.paths = paths,
	.reconcile = reconcile,
};
