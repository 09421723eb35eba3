/*
 * chat_activity.h - chats.last_active, kept by the store for every writer:
 * two write hooks (store.h) that governance.c lists in
 * store_write_hooks[]. A write to a chat, and a message created in a
 * chat, set the chat's last_active to the current time in the writer's
 * own transaction, so the change and the new last_active commit together
 * (or not at all) whoever writes: the records API, apply, the offline
 * CLI. The engine's "notify Poco" picks recent chats by it.
 *
 * THREAD SAFETY NOTES: no state of its own; the hooks run on the writing
 * thread inside its transaction (the store serialises writers).
 */
#ifndef POCKETCTL_CHAT_ACTIVITY_H
#define POCKETCTL_CHAT_ACTIVITY_H

#include "err.h"
#include "store/store.h"

/*
 * The chats hook (store_write_hook_fn): sets after's last_active to now
 * on every put of a chat, a create or an update, and replaces *after with
 * the record as written. Returns 0 or the store's error of the patch.
 */
int chat_activity_on_chat_write(struct store_txn *t,
				const struct record *before,
				struct record *after,
				const struct store_actor *actor,
				struct err *e);

/*
 * The messages hook (store_write_hook_fn): when a message is created
 * (before is NULL), sets last_active of the chat it belongs to to now.
 * An update of a message changes nothing. Returns 0 or the store's
 * error (a chat that is gone is ERR_NOT_FOUND, which the store's own
 * relation check has refused before the hook runs).
 */
int chat_activity_on_message_write(struct store_txn *t,
				   const struct record *before,
				   struct record *after,
				   const struct store_actor *actor,
				   struct err *e);

#endif
