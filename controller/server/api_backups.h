/*
 * api_backups.h - the store's backups over HTTP, superusers only, named
 * after PocketBase's backups API: POST /api/v1/backups makes an online
 * backup (store_backup()) and GET /api/v1/backups lists DATA_DIR/backups.
 */
#ifndef POCKETCTL_API_BACKUPS_H
#define POCKETCTL_API_BACKUPS_H

#include "http.h"

/*
 * POST /api/v1/backups, body {} or {"path": "/ABSOLUTE/FILE"} (or
 * {"name": "FILE"} inside DATA_DIR/backups): write a backup there (by
 * default DATA_DIR/backups/pocket-<UTC>-r<revision>.db) and reply 200
 * {key, path, size, revision}. 400 naming the field for a bad path or
 * name; 401/403 for a caller who is not a superuser.
 */
int api_backups_create(struct http_req *r);

/* GET /api/v1/backups: 200 [{key, size, modified}] of DATA_DIR/backups,
 * by name. */
int api_backups_list(struct http_req *r);

#endif
