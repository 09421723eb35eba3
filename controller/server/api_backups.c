/*
 * api_backups.c - POST and GET /api/v1/backups (see api_backups.h). The
 * backup runs on the request's worker: it reads one snapshot on a
 * connection of its own and blocks no writer, so the worker waits only for
 * its own copy (a few seconds for a large store).
 */
#include "api_backups.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "api_auth.h"
#include "server.h"
#include "util.h"

#define BACKUP_BODY_MAX 4096

/* Fill o from the body's "path" or "name" (default: DATA_DIR/backups and
 * the default name); o points into *d and *b, which the caller frees. */
static int target(struct http_req *r, json_t *body, struct store_backup_opts *o,
		  char **d, char **b, struct err *e)
{
	json_t *path = json_object_get(body, "path");
	json_t *name = json_object_get(body, "name");
	const char *p = json_string_value(path);

	if (path && name)
		return err_set(e, ERR_INVALID, "give \"path\" or \"name\", not both");
	if (name && (!json_is_string(name) ||
		     !path_component_ok(json_string_value(name)))) {
		err_set(e, ERR_INVALID, "\"name\" must be a plain file name");
		snprintf(e->field, sizeof(e->field), "name");
		return e->code;
	}
	if (path && (!p || p[0] != '/' ||
		     !path_component_ok(strrchr(p, '/') + 1))) {
		err_set(e, ERR_INVALID,
			"\"path\" must be an absolute path naming a file");
		snprintf(e->field, sizeof(e->field), "path");
		return e->code;
	}
	if (path) {
		*d = strdup(p);
		*b = strdup(p);
	} else {
		*d = path_join(r->srv->opts->data_dir, STORE_BACKUP_DIR);
		*b = name ? strdup(json_string_value(name)) : NULL;
	}
	if (!*d || ((path || name) && !*b))
		return err_set(e, ERR_NOMEM, "out of memory");
	o->dir = path ? dirname(*d) : *d;
	o->file = path ? basename(*b) : *b;
	return 0;
}

int api_backups_create(struct http_req *r)
{
	struct err e = ERR_INIT;
	struct store_backup_opts o = { NULL, NULL, NULL };
	struct store_backup_info info = { NULL, 0, 0 };
	json_t *body = NULL, *rep;
	char *d = NULL, *b = NULL;
	int rc;

	if (api_auth_refuse_unless_superuser(r))
		return 0;
	rc = http_read_json(r, BACKUP_BODY_MAX, &body, &e);
	if (!rc)
		rc = target(r, body, &o, &d, &b, &e);
	if (!rc)
		rc = store_backup(r->srv->store, &o, &info, &e);
	if (rc) {
		rc = http_reply_error(r, &e);
		goto out;
	}
	rep = json_pack("{s:s,s:s,s:I,s:I}", "key", strrchr(info.path, '/') + 1,
			"path", info.path, "size", (json_int_t)info.size,
			"revision", (json_int_t)info.revision);
	rc = rep ? http_reply_json(r, 200, rep, NULL) :   /* rep stolen */
	     http_fail(r, ERR_NOMEM, "out of memory");
out:
	store_backup_info_release(&info);
	json_decref(body);
	free(d);
	free(b);
	return rc;
}

int api_backups_list(struct http_req *r)
{
	struct err e = ERR_INIT;
	json_t *items = NULL;
	char *dir;
	int rc;

	if (api_auth_refuse_unless_superuser(r))
		return 0;
	dir = path_join(r->srv->opts->data_dir, STORE_BACKUP_DIR);
	if (!dir)
		return http_fail(r, ERR_NOMEM, "out of memory");
	rc = store_backup_list(dir, &items, &e);
	free(dir);
	if (rc)
		return http_reply_error(r, &e);
	return http_reply_json(r, 200, items, NULL);   /* items stolen */
}
