/*
 * agent_bundle.c - one OpenCode agent-markdown file per ai_agents record:
 * YAML frontmatter (emitted by libyaml) and the prompt body.
 *
 * The original computed this bundle and stored it in a field that does not
 * exist, so it was lost; it also never carried the mode. Here it is a pure
 * function whose bytes the engine writes to <name>.md, with the name
 * checked by render_agent_name_ok() first.
 */
#include "render.h"

#include <stdlib.h>
#include <string.h>

#include "yamljson.h"

#define AGENT_NAME_MAX 100

bool render_agent_name_ok(const char *name)
{
	size_t i;

	if (!name || !*name || name[0] == '.')
		return false;
	for (i = 0; name[i]; i++) {
		if (i >= AGENT_NAME_MAX)
			return false;
		if (!((name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= 'a' && name[i] <= 'z') ||
		      (name[i] >= '0' && name[i] <= '9') || name[i] == '.' ||
		      name[i] == '_' || name[i] == '-'))
			return false;
	}
	return true;
}

static bool mode_ok(const char *m)
{
	return !strcmp(m, "primary") || !strcmp(m, "subagent") ||
	       !strcmp(m, "all");
}

/* The string data[field] of the record related through agent.data[rel]
 * (borrowed), or NULL when the relation does not resolve or the field is
 * not a string. */
static json_t *related(json_t *agent, const char *rel, json_t **recs,
		       size_t n, const char *field)
{
	json_t *target = render_find_id(recs, n, render_data_str(agent, rel));
	json_t *v = json_object_get(json_object_get(target, "data"), field);

	return json_is_string(v) ? v : NULL;
}

int render_agent_bundle(json_t *agent, json_t *prompts, json_t *models,
			struct buf *out, struct err *e)
{
	struct buf res = BUF_INIT;
	json_t **precs = NULL, **mrecs = NULL, *fm = NULL, *v;
	size_t nprecs = 0, nmrecs = 0, blen;
	const char *s, *body;
	int rc;

	if (!json_is_object(agent) ||
	    !json_is_object(json_object_get(agent, "data")))
		return err_set(e, ERR_INVALID, "ai_agents: expected a record "
			       "with a data object");
	rc = render_sorted_records(prompts, "ai_prompts", &precs, &nprecs,
				   NULL, e);
	if (!rc)
		rc = render_sorted_records(models, "ai_models", &mrecs, &nmrecs,
					   NULL, e);
	if (rc)
		goto out;
	res.cap = out->cap > out->len ? out->cap - out->len : 0;

	fm = json_object();
	if (!fm)
		goto nomem;
	/* json_object_set() shares v (incref); json_string() is stolen. */
	v = json_object_get(json_object_get(agent, "data"), "description");
	if (json_is_string(v) && json_string_length(v) &&
	    json_object_set(fm, "description", v))
		goto nomem;
	s = render_data_str(agent, "mode");
	if (mode_ok(s) && json_object_set_new(fm, "mode", json_string(s)))
		goto nomem;
	v = related(agent, "model", mrecs, nmrecs, "identifier");
	if (v && json_string_length(v) &&
	    json_object_set(fm, "model", v))
		goto nomem;

	rc = buf_puts(&res, "---\n");
	if (rc)
		goto fail;
	rc = yaml_emit(&res, fm, 0, e);
	if (rc) {
		err_prefix(e, "agent '%s': ", render_label(agent));
		goto out;
	}
	rc = buf_puts(&res, "---\n\n");
	if (rc)
		goto fail;
	v = related(agent, "prompt", precs, nprecs, "body");
	if (v) {
		/* A jansson string may hold NUL bytes: write all of it. */
		body = json_string_value(v);
		blen = json_string_length(v);
		rc = buf_add(&res, body, blen);
		if (!rc && blen && body[blen - 1] != '\n')
			rc = buf_putc(&res, '\n');
		if (rc)
			goto fail;
	}
	rc = buf_add(out, res.ptr, res.len);
	if (rc)
		goto fail;
	goto out;

nomem:
	rc = err_set(e, ERR_NOMEM, "out of memory");
	goto out;
fail:
	if (rc == ERR_TOO_LARGE)
		err_set(e, rc, "agent '%s': bundle is larger than the limit of "
			"%zu bytes", render_label(agent), out->cap);
	else
		rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	json_decref(fm);
	buf_release(&res);
	free(precs);
	free(mrecs);
	return rc;
}
