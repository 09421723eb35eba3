/*
 * rec_agent_bundles.c - one OpenCode agent-markdown file per ai_agents
 * record, agents_dir/<name>.md, rendered by render_agent_bundle() from the
 * agent and the prompt and model it names (read by id). A name
 * that cannot be a file name (render_agent_name_ok) is skipped with a
 * warning. Bundles of agents that no longer exist are deleted by the
 * engine's garbage collection (they were artifacts of an earlier pass and
 * are not written in this one).
 */
#include <stdlib.h>
#include <string.h>

#include "reconciler.h"
#include "render.h"
#include "util.h"

#define BUNDLE_MODE 0644

static const char *const reads[] = {
	"ai_agents", "ai_prompts", "ai_models", NULL
};

static const struct reconciler_path paths[] = {
	{ "agents_dir", "workspace/.opencode/agents", true }, /* <name>.md each */
	{ NULL, NULL, false },
};

/* The agent's name: data.name, else the record name. */
static const char *agent_name(json_t *rec)
{
	const char *n = render_data_str(rec, "name");

	if (!*n)
		n = json_string_value(json_object_get(rec, "name"));
	return n ? n : "";
}

static int reconcile(struct rctx *c, struct err *e)
{
	struct buf out = BUF_INIT;
	struct err le = ERR_INIT;
	json_t *agents, *prompts, *models, *rec;
	const char *dir = rctx_path(c, "agents_dir"), *name;
	char *file = NULL, *path = NULL;
	size_t i;
	int rc, first = 0;

	if (!dir)
		return 0;
	rc = rctx_records(c, "ai_agents", &agents, e);
	/* Only the prompts and models the agents name (by id). */
	if (!rc)
		rc = rctx_related(c, agents, "prompt", "ai_prompts", &prompts,
				  e);
	if (!rc)
		rc = rctx_related(c, agents, "model", "ai_models", &models, e);
	if (rc)
		return rc;
	json_array_foreach(agents, i, rec) {
		name = agent_name(rec);
		if (!render_agent_name_ok(name)) {
			render_warn(rctx_warnings(c),
				    "ai_agents '%s': the name cannot be a file name ([A-Za-z0-9._-], 1-100 bytes, not starting with '.'); no bundle",
				    render_label(rec));
			continue;
		}
		file = malloc(strlen(name) + 4);
		if (!file)
			return err_set(e, ERR_NOMEM, "out of memory");
		strcpy(file, name);
		strcat(file, ".md");
		path = path_join(dir, file);
		free(file);
		if (!path)
			return err_set(e, ERR_NOMEM, "out of memory");
		buf_reset(&out);
		err_clear(&le);
		rc = render_agent_bundle(rec, prompts, models, &out, &le);
		if (rc)
			rctx_keep(c, path, &le);
		else
			rc = rctx_write(c, path, &out, BUNDLE_MODE, NULL, &le);
		if (rc && !first) {
			first = rc;
			*e = le;
		}
		free(path);
		path = NULL;
	}
	buf_release(&out);
	return first;
}

const struct reconciler rec_agent_bundles = {
	.name = "agent-bundles",
	.description = "ai_agents, ai_prompts, ai_models -> agents/<name>.md",
	.reads = reads,
	.paths = paths,
	.reconcile = reconcile,
};
