/*
 * outbox.h - the notification outbox: every event that should reach a
 * user's phone becomes a `notifications` record (kind Notification),
 * written in the same store transaction as the change that caused it, and
 * named by its idempotency key, so that an event notifies once - not on
 * every save - and a crash neither loses nor repeats it. The push
 * reconciler (reconcilers/rec_push.c) delivers the records and writes
 * every attempt into their status.
 *
 * Events (the keys):
 *   - a permissions row that becomes a draft -> "permission:<id>", to the
 *     owner of its chat (type permission);
 *   - a questions row that becomes asked -> "question:<id>" (question);
 *   - an mcp_servers row that becomes pending -> "mcp_request:<id>@<rev>:
 *     <admin id>", to every admin (mcp_request);
 *   - POST /api/pocketcoder/push (outbox_push_request) -> "push:<key>"
 *     with the body's key, else a fresh id.
 * The hooks are lines of store_write_hooks[] (governance.c); so is the
 * devices hook, which refuses a unifiedpush push_token that is not an
 * http(s) URL.
 *
 * THREAD SAFETY NOTES: no state; the hooks run inside the writer's
 * transaction on its thread, outbox_push_request() on any request thread.
 */
#ifndef POCKETCTL_OUTBOX_H
#define POCKETCTL_OUTBOX_H

#include <jansson.h>

#include "err.h"
#include "store/store.h"

#define OUTBOX_COLLECTION "notifications"
#define OUTBOX_TITLE_MAX 255
#define OUTBOX_MESSAGE_MAX 4096

/* The write hooks (store_write_hook_fn, store.h). */
int outbox_on_permission(struct store_txn *t, const struct record *before,
			 struct record *after,
			 const struct store_actor *actor, struct err *e);
int outbox_on_question(struct store_txn *t, const struct record *before,
		       struct record *after, const struct store_actor *actor,
		       struct err *e);
int outbox_on_mcp(struct store_txn *t, const struct record *before,
		  struct record *after, const struct store_actor *actor,
		  struct err *e);
int outbox_on_device(struct store_txn *t, const struct record *before,
		     struct record *after, const struct store_actor *actor,
		     struct err *e);

/*
 * Queue a push from the body {user_id, type, title, message, chat, key}
 * (user_id and type required; type 1-64 characters of [a-z0-9_]; title up
 * to OUTBOX_TITLE_MAX bytes, message up to OUTBOX_MESSAGE_MAX; key, when
 * given, makes a repeated request a no-op) in one transaction. *reply
 * (caller owns) is {"ok": true, "id", "key", "queued": bool} (false: the
 * key was queued before). ERR_INVALID names the field of a bad body, and
 * an unknown user_id.
 */
int outbox_push_request(struct store *s, json_t *body, json_t **reply,
			struct err *e);

#endif
