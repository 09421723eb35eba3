/*
 * protocol.h - the wire constants the CLI and the server share: content
 * types, the JSON keys of the apply protocol's files form (api_apply.h),
 * and the names under which the engine's status is stored and served.
 * Both sides include this one header, so a key spelled on one side is the
 * key read on the other; it holds definitions only, no code.
 */
#ifndef POCKETCTL_PROTOCOL_H
#define POCKETCTL_PROTOCOL_H

/* Content types. */
#define PROTO_JSON_TYPE "application/json"
/* The CLI's apply and diff body: {"files": [{"name", "text"}, ...]}. */
#define PROTO_APPLY_FILES_TYPE "application/vnd.pocketctl.files+json"

/* The JSON keys of the files form. */
#define PROTO_APPLY_FILES "files"
#define PROTO_APPLY_FILE_NAME "name"
#define PROTO_APPLY_FILE_TEXT "text"

/* The query parameter of /api/v1/watch, /api/v1/manifests, /apply and
 * /diff that asks for secret fields in clear (superusers only; masked
 * otherwise, secrets.h). */
#define PROTO_SHOW_SECRETS "showSecrets"

/* The collection holding each reconciler's last status (one record per
 * reconciler, named after it), and the name of the manifests watch's own
 * status record (engine.h's ENGINE_STATUS_COLLECTION and
 * ENGINE_MANIFESTS_KEY are these). */
#define PROTO_STATUS_COLLECTION "reconcile_status"
#define PROTO_MANIFESTS_KEY "manifests"

#endif
