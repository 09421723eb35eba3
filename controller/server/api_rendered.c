/*
 * api_rendered.c - GET /api/v1/files (see api_rendered.h). The list is the
 * engine's published status (artifacts per reconciler) joined with what
 * lstat() says of each file now; a secret file is read, through a walk
 * confined to the root, only to list the names of its variables.
 */
#include "api_rendered.h"

#include <ctype.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/engine.h"
#include "server.h"
#include "util.h"

#define SECRETS_MAX 16
#define SECRET_READ_CAP ((size_t)1 << 20)

/* The string at key of o, or "". */
static const char *str_of(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static bool is_secret_path(struct server *srv, const char *path)
{
	const char *paths[SECRETS_MAX];
	size_t n, i;

	n = engine_secret_paths(srv->engine, paths, SECRETS_MAX);
	for (i = 0; i < n && i < SECRETS_MAX; i++)
		if (!strcmp(paths[i], path))
			return true;
	return false;
}

/* The names of the KEY=VALUE lines of an env file (comments and other
 * lines left out), as a new array; [] when it cannot be read. */
static json_t *env_keys(const char *root, const char *path)
{
	struct buf b;
	struct stat st;
	json_t *keys = json_array();
	const char *p, *eol, *k;

	buf_init(&b, SECRET_READ_CAP);
	if (!keys || fs_read_beneath(root, path, &b, &st, NULL) != 1)
		goto out;
	for (p = b.ptr; *p; p = *eol ? eol + 1 : eol) {
		eol = p + strcspn(p, "\n");
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		if (!strncmp(p, "export ", 7))
			p += 7;
		for (k = p; k < eol && (isalnum((unsigned char)*k) || *k == '_'); k++)
			;
		if (k > p && k < eol && *k == '=')
			json_array_append_new(keys, json_stringn(p, (size_t)(k - p)));
	}
out:
	buf_release(&b);
	return keys;
}

/* {collection, name} of the record a per-record file comes from, or null:
 * AGENTS_DIR/NAME.md (an agent), .../skills/NAME/SKILL.md (a sealed SOP). */
static json_t *source_record(json_t *paths, const char *path)
{
	const char *dir = json_string_value(json_object_get(paths, "agents_dir"));
	const char *base, *slash;
	size_t n = dir ? strlen(dir) : 0, len = strlen(path);

	if (dir && !strncmp(path, dir, n) && path[n] == '/' &&
	    !strchr(path + n + 1, '/') && len > n + 4 &&
	    !strcmp(path + len - 3, ".md"))
		return json_pack("{s:s, s:s%}", "collection", "ai_agents", "name",
				 path + n + 1, len - n - 4);
	base = strrchr(path, '/');
	if (!base || strcmp(base, "/SKILL.md") != 0)
		return json_null();
	for (slash = base - 1; slash > path && *slash != '/'; slash--)
		;
	if (slash <= path || slash - path < 7 ||
	    strncmp(slash - 7, "/skills", 7) != 0)
		return json_null();
	return json_pack("{s:s, s:s%}", "collection", "sops", "name",
			 slash + 1, (size_t)(base - slash - 1));
}

/* The status of the condition called type in conds, or "". */
static const char *cond_status(json_t *conds, const char *type)
{
	size_t i;
	json_t *c;

	json_array_foreach(conds, i, c)
		if (!strcmp(str_of(c, "type"), type))
			return str_of(c, "status");
	return "";
}

/* One item for artifact a of reconciler rec; NULL when memory runs out. */
static json_t *file_item(struct server *srv, json_t *snap, json_t *rec,
			 json_t *a)
{
	const char *root = str_of(snap, "root");
	const char *path = str_of(a, "path");
	size_t rn = strlen(root);
	bool below = rn && !strncmp(path, root, rn) && path[rn] == '/';
	bool secret = is_secret_path(srv, path);
	json_t *sources = json_array(), *src;
	char mtime[TIME_LEN + 1];
	struct stat st;
	bool have;
	size_t i;

	json_array_foreach(json_object_get(rec, "reads"), i, src)
		if (json_is_string(src) && json_string_value(src)[0] != '@')
			json_array_append(sources, src);   /* borrowed, ref added */
	have = lstat(path, &st) == 0;
	if (have)
		util_format_ms((int64_t)st.st_mtim.tv_sec * 1000 +
			       st.st_mtim.tv_nsec / 1000000, mtime);
	/* "o" steals each new value, also on failure. */
	return json_pack("{s:s, s:s, s:O, s:O, s:O, s:o, s:o, s:s, s:o, s:o, s:b, s:o}",
			 "path", path, "relPath", below ? path + rn + 1 : path,
			 "reconciler", json_object_get(rec, "name"),
			 "sha256", json_object_get(a, "sha256"),
			 "mode", json_object_get(a, "mode"),
			 "size", have ? json_integer((json_int_t)st.st_size) : json_null(),
			 "modified", have ? json_string(mtime) : json_null(),
			 "ready", cond_status(json_object_get(a, "conditions"), "Ready"),
			 "sources", sources,
			 "record", source_record(json_object_get(snap, "paths"), path),
			 "secret", secret,
			 "keys", secret && below ? env_keys(root, path) : json_array());
}

int api_rendered_files(struct http_req *r)
{
	struct err e = ERR_INIT;
	json_t *snap = NULL, *items = NULL, *rec, *a, *it;
	size_t i, j;

	if (r->auth.kind == CALLER_GUEST)
		return http_fail(r, ERR_UNAUTHORIZED,
				 "The request requires valid admin authorization token.");
	if (!http_is_admin(r))
		return http_fail(r, ERR_FORBIDDEN, "Only admins can access this action.");
	if (!r->srv->engine)
		return http_fail(r, ERR_UNAVAILABLE, "the reconcile engine is not running");
	if (engine_status(r->srv->engine, &snap, &e))
		return http_reply_error(r, &e);
	items = json_array();
	if (!items)
		goto nomem;
	json_array_foreach(json_object_get(snap, "reconcilers"), i, rec) {
		json_array_foreach(json_object_get(rec, "artifacts"), j, a) {
			it = file_item(r->srv, snap, rec, a);
			if (!it || json_array_append_new(items, it))
				goto nomem;
		}
	}
	/* "O" adds a reference to the borrowed root; "o" steals items. */
	it = json_pack("{s:O, s:o}", "root", json_object_get(snap, "root"),
		       "items", items);
	json_decref(snap);
	return http_reply_json(r, 200, it, NULL);   /* it stolen */
nomem:
	json_decref(snap);
	json_decref(items);
	return http_fail(r, ERR_NOMEM, "out of memory");
}
