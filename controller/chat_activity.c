/*
 * chat_activity.c - chats.last_active from the writes themselves (see
 * chat_activity.h): the chat is patched inside the writer's transaction
 * with store_txn_patch(), whose own put runs no hook, so a message's patch
 * of its chat does not run the chats hook a second time.
 */
#include "chat_activity.h"

#include <string.h>

#include "util.h"

#define CHATS "chats"
#define LAST_ACTIVE "last_active"

/* Patch rec (a chat) with last_active = now; *rec becomes the record as
 * written. A chat the hook's own put just changed is amended
 * (store_txn_amend()), so the write stays one change with one event; a
 * message's chat gets a change of its own. A schema whose chats have no
 * last_active (stored data holds every field of the schema) is left
 * alone. */
static int touch(struct store_txn *t, struct record *rec, struct err *e)
{
	char now[TIME_LEN + 1];

	if (!json_object_get(rec->data, LAST_ACTIVE))
		return 0;
	util_now(now);
	/* json_pack copies the string; store_txn_patch steals the object. */
	return store_txn_amend(t, rec, json_pack("{s:s}", LAST_ACTIVE, now), e);
}

int chat_activity_on_chat_write(struct store_txn *t,
				const struct record *before,
				struct record *after,
				const struct store_actor *actor,
				struct err *e)
{
	(void)before;
	(void)actor;
	if (!after || strcmp(after->collection, CHATS))
		return 0;
	return touch(t, after, e);
}

int chat_activity_on_message_write(struct store_txn *t,
				   const struct record *before,
				   struct record *after,
				   const struct store_actor *actor,
				   struct err *e)
{
	struct record chat;
	const char *id;
	int rc;

	(void)actor;
	if (before || !after)
		return 0;
	id = json_string_value(json_object_get(after->data, "chat"));
	if (!id || !*id)
		return 0;
	record_init(&chat);
	rc = store_txn_get(t, CHATS, id, &chat, e);
	if (!rc)
		rc = touch(t, &chat, e);
	record_release(&chat);
	return rc;
}
