/*
 * api_apply.h - the declarative surface over HTTP: apply, diff, and records
 * in manifest form, with exactly the semantics of `pocketctl apply`, `diff`,
 * `get` and `delete` (the CLI uses these routes while a server runs).
 *
 *   POST   /api/v1/apply                 ?dryRun=&prune=&applyset=&force=
 *   POST   /api/v1/diff                  same input, apply_diff's result
 *   GET    /api/v1/manifests/:kind       ?view=manifest|record
 *                                        &labelSelector=SELECTOR (selector.h;
 *                                        400 naming the position)
 *   GET    /api/v1/manifests/:kind/:name ?view=manifest|record
 * (:kind may be a short name; :name of a users or superusers record may
 * be its email)
 *   DELETE /api/v1/manifests/:kind/:name
 *
 * Every route is for admins only (a superuser, the local CLI token, or a
 * user whose role is admin): 401 without credentials, 403 for anyone else.
 *
 * Apply and diff bodies come in two forms, told apart by Content-Type:
 *
 *   - anything else (application/yaml, application/json, text/plain, ...):
 *     one multi-document YAML or JSON stream, parsed as the file "request"
 *     (so errors read "request:LINE:COL: ...");
 *
 *   - "application/vnd.pocketctl.files+json" (PROTO_APPLY_FILES_TYPE in
 *     protocol.h): {"files": [{"name": "...", "text": "..."}, ...]}, the
 *     CLI's form. Each text is parsed as its own
 *     stream under its name, in order, into one set (duplicates across
 *     files are caught), so every error names the user's FILE:LINE:COL
 *     exactly as an offline apply would. Names are used in messages only,
 *     never opened.
 *
 * A body larger than the server's max_apply_body (16 MiB default) is 413.
 * The reply is apply's result JSON (apply.h); errors are PocketBase-shaped
 * with the file:line:col message, and nothing is written on any error.
 * Problems in the manifests are all reported in one 400 reply: the body
 * describes the first, and "errors" lists them all (the first
 * ERR_LIST_MAX; "errorCount" counts every one), see http_reply_errors().
 *
 * ?view=record returns records as record_to_json() without hidden fields
 * (password hashes, token keys); ?view=manifest (the default) returns
 * apply_record_manifest() documents, which apply takes back unchanged. A
 * list replies {"items": [...]}; a single record the object itself. DELETE
 * replies {"kind", "collection", "name", "id", "action": "deleted",
 * "revision"}.
 *
 * Secret fields (schema "secret": true) are masked in every reply - the
 * manifests and records, both sides of a diff, the apply result - as
 * secrets.h says, unless the caller is a superuser and adds
 * ?showSecrets=true (PROTO_SHOW_SECRETS; 403 for anyone else).
 */
#ifndef POCKETCTL_API_APPLY_H
#define POCKETCTL_API_APPLY_H

#include <stdbool.h>

#include "err.h"
#include "http.h"
#include "protocol.h"

#define API_APPLY_MAX_FILES 10000      /* files in one files-form body */
#define API_APPLY_MAX_FILE_NAME 1024   /* bytes of one file name */

/* Route handlers (routes.c). Each replies exactly once and returns 0. */
int api_apply(struct http_req *r);
int api_diff(struct http_req *r);
int api_manifests_list(struct http_req *r);
int api_manifests_get(struct http_req *r);
int api_manifests_delete(struct http_req *r);

/*
 * Read ?showSecrets= (PROTO_SHOW_SECRETS) of r into *show: absent, false
 * or 0 is false; true or 1 is true. Returns 0, ERR_INVALID for another
 * value, or ERR_FORBIDDEN (naming the parameter) when it is true and the
 * caller is no superuser. Also used by /api/v1/watch (api_watch.c).
 */
int api_show_secrets(const struct http_req *r, bool *show, struct err *e);

#endif
