/*
 * api_rendered.h - GET /api/v1/files: every file the reconcilers render,
 * as the status page's Files view shows it. Admins only.
 */
#ifndef POCKETCTL_API_RENDERED_H
#define POCKETCTL_API_RENDERED_H

#include "http.h"

/*
 * {"root": DIR, "items": [{"path", "relPath" (below the root, or the
 * path), "reconciler", "sha256", "mode", "size" and "modified" (from
 * lstat; null when the file is missing), "ready" (the artifact's Ready
 * condition status), "sources" (the collections its reconciler reads),
 * "record" ({collection, name} of the one record a per-record file comes
 * from - an agent's .md, a sealed SOP's SKILL.md - else null), "secret"
 * (a file the reconcilers declare secret), "keys" (a secret file's
 * variable names, never their values; [] otherwise)}]}, in the engine's
 * order. 401 for a guest, 403 for anyone but an admin, 503 without the
 * engine.
 */
int api_rendered_files(struct http_req *r);

#endif
