/*
 * rec_docker_mcp.c - the MCP gateway's two files from approved
 * mcp_servers: docker-mcp.yaml (the catalog, 0644) and mcp.env (its
 * secrets, 0600), rendered together by render_docker_mcp(). One file
 * failing to write does not stop the other.
 */
#include "reconciler.h"
#include "render.h"

#define CATALOG_MODE 0644
#define SECRETS_MODE 0600

static const char *const reads[] = { "mcp_servers", NULL };

static const struct reconciler_path paths[] = {
	{ "docker_mcp_yaml", "mcp_config/docker-mcp.yaml", false },
	{ "mcp_env", "mcp_config/mcp.env", false },
	{ NULL, NULL, false },
};

/* The MCP servers' configuration values. */
static const char *const secret_keys[] = { "mcp_env", NULL };

static int reconcile(struct rctx *c, struct err *e)
{
	struct buf cat = BUF_INIT, env = BUF_INIT;
	struct err le = ERR_INIT;
	const char *pc = rctx_path(c, "docker_mcp_yaml");
	const char *pe = rctx_path(c, "mcp_env");
	json_t *servers;
	int rc, first = 0;

	if (!pc && !pe)
		return 0;
	rc = rctx_records(c, "mcp_servers", &servers, e);
	if (!rc)
		rc = render_docker_mcp(servers, pc ? &cat : NULL,
				       pe ? &env : NULL, rctx_warnings(c), e);
	if (rc) {
		if (pc)
			rctx_keep(c, pc, e);
		if (pe)
			rctx_keep(c, pe, e);
		goto out;
	}
	if (pc && rctx_write(c, pc, &cat, CATALOG_MODE, NULL, &le)) {
		first = le.code;
		*e = le;
	}
	err_clear(&le);
	if (pe && rctx_write(c, pe, &env, SECRETS_MODE, NULL, &le) && !first) {
		first = le.code;
		*e = le;
	}
out:
	buf_release(&cat);
	buf_release(&env);
	return rc ? rc : first;
}

const struct reconciler rec_docker_mcp = {
	.name = "docker-mcp",
	.description = "approved mcp_servers -> docker-mcp.yaml and mcp.env",
	.reads = reads,
	.paths = paths,
	.secret_keys = secret_keys,
	.reconcile = reconcile,
};
