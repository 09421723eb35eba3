/*
 * rec_llm_env.c - the llm.env reconciler: llm_keys records rendered by
 * render_llm_env() into the OpenCode workspace's llm.env and the sandbox's
 * copy (mode 0600, both the same bytes). A copy that cannot be written does
 * not stop the other one; the pass then fails and is retried.
 */
#include "reconciler.h"
#include "render.h"

#define ENV_MODE 0600

static const char *const reads[] = { "llm_keys", NULL };

/* Two copies of the same bytes. */
static const struct reconciler_path paths[] = {
	{ "llm_env", "workspace/.opencode/llm.env", false },
	{ "llm_env_copy", "llm_keys/llm.env", false },       /* the sandbox's */
	{ NULL, NULL, false },
};

/* Both hold every LLM key in clear. */
static const char *const secret_keys[] = { "llm_env", "llm_env_copy", NULL };

static int reconcile(struct rctx *c, struct err *e)
{
	struct buf out = BUF_INIT;
	struct err le = ERR_INIT;
	json_t *keys;
	const char *p;
	size_t i;
	int rc, first = 0;

	rc = rctx_records(c, "llm_keys", &keys, e);
	if (!rc)
		rc = render_llm_env(keys, &out, rctx_warnings(c), e);
	for (i = 0; paths[i].key; i++) {
		p = rctx_path(c, paths[i].key);
		if (!p)
			continue;
		if (rc) {
			rctx_keep(c, p, e);     /* not rendered: file untouched */
			continue;
		}
		err_clear(&le);
		if (rctx_write(c, p, &out, ENV_MODE, NULL, &le) && !first) {
			first = le.code;
			*e = le;
		}
	}
	buf_release(&out);
	return rc ? rc : first;
}

const struct reconciler rec_llm_env = {
	.name = "llm-env",
	.description = "llm_keys -> llm.env (workspace and sandbox copies)",
	.reads = reads,
	.paths = paths,
	.secret_keys = secret_keys,
	.reconcile = reconcile,
};
