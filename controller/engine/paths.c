/*
 * paths.c - the rendered files' locations under --root and their
 * overrides from a YAML config file (see paths.h). The keys and defaults
 * are the ones the reconcilers declare (reconciler.h).
 */
#include "paths.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "reconciler.h"
#include "util.h"
#include "yamljson.h"

#define PATHS_CONFIG_MAX ((size_t)1 << 20)

void paths_release(struct paths *p)
{
	size_t i;

	if (!p)
		return;
	free(p->root);
	free(p->config);
	for (i = 0; p->p && i < p->n; i++)
		free(p->p[i]);
	free(p->p);
	free(p->key);
	free(p->dir);
	memset(p, 0, sizeof(*p));
}

static int find_key(const struct paths *p, const char *k)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (!strcmp(p->key[i], k))
			return (int)i;
	return -1;
}

const char *paths_get(const struct paths *p, const char *key)
{
	int i;

	if (!p || !key)
		return NULL;
	i = find_key(p, key);
	return i < 0 ? NULL : p->p[i];
}

/* A path under root, or as it is when absolute. NULL on OOM. */
static char *resolve(const char *root, const char *rel)
{
	if (rel[0] == '/')
		return strdup(rel);
	return path_join(root, rel);
}

/*
 * Lexically clean path in place: "//" and "." dropped, "x/.." folded. A
 * ".." that climbs above the start of a relative path is kept ("../x");
 * above "/" it is dropped, as the kernel does. ERR_NOMEM or 0.
 */
static int clean_path(char *path)
{
	bool abs = path[0] == '/';
	size_t out = abs ? 1 : 0, base = out, n;
	char *copy = strdup(path), *tok, *save = NULL;

	if (!copy)
		return ERR_NOMEM;
	for (tok = strtok_r(copy, "/", &save); tok;
	     tok = strtok_r(NULL, "/", &save)) {
		if (!strcmp(tok, "."))
			continue;
		if (!strcmp(tok, "..") && out > base) {
			while (out > base && path[out - 1] != '/')
				out--;
			if (out > (abs ? 1u : 0u))
				out--;          /* the '/' before it */
			continue;
		}
		if (!strcmp(tok, "..") && abs)
			continue;
		n = strlen(tok);
		if (out > (abs ? 1u : 0u))
			path[out++] = '/';
		memcpy(path + out, tok, n);  /* never longer than the input */
		out += n;
		if (!strcmp(tok, ".."))
			base = out;             /* a relative climb stays */
	}
	path[out] = '\0';
	free(copy);
	return 0;
}

/* The absolute, cleaned form of root (from the working directory when it
 * is relative). NULL on OOM or when the working directory is unknown. */
static char *absolute_root(const char *root)
{
	char cwd[PATH_MAX], *r;

	if (root[0] == '/')
		r = strdup(root);
	else if (getcwd(cwd, sizeof(cwd)))
		r = path_join(cwd, root);
	else
		return NULL;
	if (r && clean_path(r)) {
		free(r);
		r = NULL;
	}
	return r;
}

/*
 * Resolve override s of key at file:line:col into *out: inside the root it
 * becomes root/REL (a relative path cleaned; an absolute one inside the
 * root re-rooted, so that the confined walks start at the root). A path
 * that leaves the root (a ".." escape, an absolute path elsewhere) is
 * refused unless allow_outside is set; then it is kept absolute.
 */
static int resolve_override(const struct paths *p, const char *s,
			    bool allow_outside, const char *file,
			    const char *key, int line, int col, char **out,
			    struct err *e)
{
	char *cand = NULL, *aroot = NULL;
	const char *rel = NULL;
	size_t rl;
	int rc = 0;

	*out = NULL;
	aroot = absolute_root(p->root);
	cand = s[0] == '/' ? strdup(s) : path_join(aroot ? aroot : "", s);
	if (!aroot || !cand) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if (clean_path(cand)) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rl = strlen(aroot);
	if (!strcmp(aroot, "/"))
		rel = cand + 1;
	else if (!strncmp(cand, aroot, rl) && cand[rl] == '/')
		rel = cand + rl + 1;
	if (rel && *rel) {
		*out = path_join(p->root, rel);
	} else if (allow_outside && strcmp(cand, aroot)) {
		*out = cand;
		cand = NULL;
	} else {
		rc = err_set_field(e, ERR_INVALID, key,
				   "%s:%d:%d: path '%s' ('%s') %s; set "
				   "allow_outside_root: true to allow it",
				   file, line, col, key, s,
				   rel || !strcmp(cand, aroot) ?
				   "is the root itself" :
				   "leaves the root");
		goto out;
	}
	if (!*out)
		rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	free(cand);
	free(aroot);
	return rc;
}

/* Apply one override: key -> value, at file:line:col. */
static int override(struct paths *p, const struct yaml_doc *d,
		    const char *file, const char *key, json_t *v,
		    bool allow_outside, struct err *e)
{
	const char *s;
	char *np = NULL;
	int id, line, col, rc;

	if (!strcmp(key, PATHS_ALLOW_OUTSIDE))
		return 0;               /* read by read_config() */
	yaml_doc_pos(d, key, &line, &col);
	id = find_key(p, key);
	if (id < 0) {
		struct buf known = BUF_INIT;
		size_t i;

		for (i = 0; i < p->n; i++)
			buf_printf(&known, "%s%s", i ? ", " : "", p->key[i]);
		rc = err_set_field(e, ERR_INVALID, key,
				   "%s:%d:%d: unknown path '%s' (known: %s)",
				   file, line, col, key, known.ptr);
		buf_release(&known);
		return rc;
	}
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
	rc = resolve_override(p, s, allow_outside, file, key, line, col,
			      &np, e);
	if (rc)
		return rc;
	p->p[id] = np;
	return 0;
}

static int read_config(struct paths *p, const char *file, struct err *e)
{
	struct buf b = BUF_INIT;
	struct yaml_docs docs = { NULL, 0 };
	const char *key;
	json_t *v;
	bool allow_outside;
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
	v = json_object_get(docs.docs[0].value, PATHS_ALLOW_OUTSIDE);
	if (v && !json_is_boolean(v)) {
		int line, col;

		yaml_doc_pos(&docs.docs[0], PATHS_ALLOW_OUTSIDE, &line, &col);
		rc = err_set_field(e, ERR_INVALID, PATHS_ALLOW_OUTSIDE,
				   "%s:%d:%d: '%s' must be true or false",
				   file, line, col, PATHS_ALLOW_OUTSIDE);
		goto out;
	}
	allow_outside = json_is_true(v);
	json_object_foreach(docs.docs[0].value, key, v) {
		rc = override(p, &docs.docs[0], file, key, v, allow_outside,
			      e);
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

	for (i = 0; i < p->n; i++)
		for (j = i + 1; j < p->n; j++)
			if (p->p[i] && p->p[j] && !strcmp(p->p[i], p->p[j]))
				return err_set(e, ERR_INVALID,
					       "%s: paths '%s' and '%s' are both '%s'",
					       p->config ? p->config : "paths",
					       p->key[i], p->key[j],
					       p->p[i]);
	return 0;
}

/* The keys of regs into p (key, dir, an empty p[]). */
static int collect_keys(struct paths *p, const struct reconciler *const *regs,
			size_t nregs, struct err *e)
{
	const struct reconciler_path *rp;
	size_t i, n = 0;

	for (i = 0; i < nregs; i++)
		for (rp = regs[i]->paths; rp && rp->key; rp++)
			n++;
	p->key = calloc(n ? n : 1, sizeof(*p->key));
	p->dir = calloc(n ? n : 1, sizeof(*p->dir));
	p->p = calloc(n ? n : 1, sizeof(*p->p));
	if (!p->key || !p->dir || !p->p)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (i = 0; i < nregs; i++) {
		for (rp = regs[i]->paths; rp && rp->key; rp++) {
			if (find_key(p, rp->key) >= 0)
				return err_set(e, ERR_INVALID,
					       "paths: two reconcilers declare the path '%s'",
					       rp->key);
			p->key[p->n] = rp->key;
			p->dir[p->n] = rp->dir;
			p->n++;
		}
	}
	return 0;
}

int paths_load(struct paths *out, const char *root, const char *config_file,
	       const struct reconciler *const *regs, size_t nregs,
	       struct err *e)
{
	const struct reconciler_path *rp;
	struct paths p;
	size_t i, k = 0;
	int rc = 0;

	memset(&p, 0, sizeof(p));
	memset(out, 0, sizeof(*out));
	p.root = strdup(root && *root ? root : PATHS_DEFAULT_ROOT);
	if (!p.root) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = collect_keys(&p, regs, nregs, e);
	if (rc)
		goto out;
	for (i = 0; i < nregs; i++) {
		for (rp = regs[i]->paths; rp && rp->key; rp++, k++) {
			p.p[k] = resolve(p.root, rp->def);
			if (!p.p[k]) {
				rc = err_set(e, ERR_NOMEM, "out of memory");
				goto out;
			}
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
