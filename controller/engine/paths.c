/*
 * paths.c - the rendered files' locations under --root and their
 * overrides from a YAML config file (see paths.h for the keys and
 * defaults).
 */
#include "paths.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "util.h"
#include "yamljson.h"

#define PATHS_CONFIG_MAX ((size_t)1 << 20)

static const struct {
	const char *key;
	const char *def;
} table[PATH__COUNT] = {
	[PATH_LLM_ENV] = { "llm_env", "workspace/.opencode/llm.env" },
	[PATH_LLM_ENV_COPY] = { "llm_env_copy", "llm_keys/llm.env" },
	[PATH_OPENCODE_JSON] = { "opencode_json",
				 "workspace/.opencode/opencode.json" },
	[PATH_AGENTS_DIR] = { "agents_dir", "workspace/.opencode/agents" },
	[PATH_DOCKER_MCP_YAML] = { "docker_mcp_yaml",
				   "mcp_config/docker-mcp.yaml" },
	[PATH_MCP_ENV] = { "mcp_env", "mcp_config/mcp.env" },
	[PATH_AUTHORIZED_KEYS] = { "authorized_keys",
				   "ssh_keys/authorized_keys" },
};

const char *paths_key(enum path_id id)
{
	if ((int)id < 0 || id >= PATH__COUNT)
		return NULL;
	return table[id].key;
}

const char *paths_get(const struct paths *p, enum path_id id)
{
	if (!p || (int)id < 0 || id >= PATH__COUNT)
		return NULL;
	return p->p[id];
}

void paths_release(struct paths *p)
{
	size_t i;

	if (!p)
		return;
	free(p->root);
	free(p->config);
	for (i = 0; i < PATH__COUNT; i++)
		free(p->p[i]);
	memset(p, 0, sizeof(*p));
}

/* A path under root, or as it is when absolute. NULL on OOM. */
static char *resolve(const char *root, const char *rel)
{
	if (rel[0] == '/')
		return strdup(rel);
	return path_join(root, rel);
}

static int find_key(const char *k)
{
	int i;

	for (i = 0; i < PATH__COUNT; i++)
		if (!strcmp(table[i].key, k))
			return i;
	return -1;
}

/* Apply one override: key -> value, at file:line:col. */
static int override(struct paths *p, const struct yaml_doc *d,
		    const char *file, const char *key, json_t *v,
		    struct err *e)
{
	const char *s;
	char *np;
	int id, line, col;

	yaml_doc_pos(d, key, &line, &col);
	id = find_key(key);
	if (id < 0)
		return err_set_field(e, ERR_INVALID, key,
				     "%s:%d:%d: unknown path '%s' (known: llm_env, llm_env_copy, opencode_json, agents_dir, docker_mcp_yaml, mcp_env, authorized_keys)",
				     file, line, col, key);
	if (!json_is_string(v))
		return err_set_field(e, ERR_INVALID, key,
				     "%s:%d:%d: path '%s' must be a string",
				     file, line, col, key);
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return err_set_field(e, ERR_INVALID, key,
				     "%s:%d:%d: path '%s' contains a NUL byte",
				     file, line, col, key);
	free(p->p[id]);
	p->p[id] = NULL;
	if (!*s)
		return 0;               /* turned off */
	np = resolve(p->root, s);
	if (!np)
		return err_set(e, ERR_NOMEM, "out of memory");
	p->p[id] = np;
	return 0;
}

static int read_config(struct paths *p, const char *file, struct err *e)
{
	struct buf b = BUF_INIT;
	struct yaml_docs docs = { NULL, 0 };
	const char *key;
	json_t *v;
	int rc;

	buf_init(&b, PATHS_CONFIG_MAX);
	rc = buf_read_file(&b, file, e);
	if (rc)
		goto out;
	rc = yaml_parse_docs(file, b.ptr, b.len, &docs, e);
	if (rc)
		goto out;
	if (docs.n > 1) {
		rc = err_set(e, ERR_INVALID, "%s:%d:%d: one document expected",
			     file, docs.docs[1].line, docs.docs[1].column);
		goto out;
	}
	if (docs.n == 0 || !docs.docs[0].value)
		goto out;               /* an empty file overrides nothing */
	if (!json_is_object(docs.docs[0].value)) {
		rc = err_set(e, ERR_INVALID,
			     "%s:%d:%d: expected a mapping of path names to paths",
			     file, docs.docs[0].line, docs.docs[0].column);
		goto out;
	}
	json_object_foreach(docs.docs[0].value, key, v) {
		rc = override(p, &docs.docs[0], file, key, v, e);
		if (rc)
			goto out;
	}
out:
	yaml_docs_release(&docs);
	buf_release(&b);
	return rc;
}

/* Two keys naming one file would make two reconcilers fight over it. */
static int check_distinct(const struct paths *p, struct err *e)
{
	size_t i, j;

	for (i = 0; i < PATH__COUNT; i++)
		for (j = i + 1; j < PATH__COUNT; j++)
			if (p->p[i] && p->p[j] && !strcmp(p->p[i], p->p[j]))
				return err_set(e, ERR_INVALID,
					       "%s: paths '%s' and '%s' are both '%s'",
					       p->config ? p->config : "paths",
					       table[i].key, table[j].key,
					       p->p[i]);
	return 0;
}

int paths_load(struct paths *out, const char *root, const char *config_file,
	       struct err *e)
{
	struct paths p;
	size_t i;
	int rc = 0;

	memset(&p, 0, sizeof(p));
	memset(out, 0, sizeof(*out));
	p.root = strdup(root && *root ? root : PATHS_DEFAULT_ROOT);
	if (!p.root) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < PATH__COUNT; i++) {
		p.p[i] = resolve(p.root, table[i].def);
		if (!p.p[i]) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	if (config_file && *config_file) {
		p.config = strdup(config_file);
		if (!p.config) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
		rc = read_config(&p, config_file, e);
		if (rc)
			goto out;
	}
	rc = check_distinct(&p, e);
out:
	if (rc)
		paths_release(&p);
	else
		*out = p;
	return rc;
}

char *paths_default_config(const char *data_dir)
{
	const char *env = getenv(PATHS_CONFIG_ENV);
	struct stat st;
	char *f;

	if (env && *env)
		return strdup(env);
	if (!data_dir || !*data_dir)
		return NULL;
	f = path_join(data_dir, PATHS_CONFIG_FILE);
	if (f && stat(f, &st) == 0)
		return f;
	free(f);
	return NULL;
}
