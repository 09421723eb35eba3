/*
 * outbox.c - the notification outbox (see outbox.h): the write hooks that
 * turn a draft permission, an asked question and a pending MCP request
 * into notifications records inside the writer's transaction, the check
 * of a device's push_token, and the push endpoint's logic.
 *
 * A record's name is its idempotency key: a key already in the outbox
 * writes nothing, so a second save of the same permission, a retried
 * request or a replayed apply never queues a second push.
 */
#include "outbox.h"

#include <stdio.h>
#include <string.h>

#include "netguard.h"
#include "util.h"

#define KEY_MAX 255
#define TYPE_MAX 64
#define CHAT_MAX 255

struct event {
	const char *key;
	const char *user;
	const char *type;
	const char *title;
	const char *message;
	const char *chat;
	const char *source;        /* "collection/id" or "api" */
};

static const char *dstr(const struct record *r, const char *f)
{
	const char *s = r ? json_string_value(json_object_get(r->data, f)) :
			    NULL;

	return s ? s : "";
}

/* Copy s into out (size bytes), cut before a UTF-8 sequence that would
 * not fit. */
static void cut(char *out, size_t size, const char *s)
{
	size_t n = strlen(s);

	if (n >= size) {
		n = size - 1;
		while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(out, s, n);
	out[n] = '\0';
}

/*
 * Write ev into the outbox unless its key is there already (*queued
 * says, nullable). Title and message are cut to their caps on a UTF-8
 * boundary rather than refused: an event is never lost to its length.
 */
static int add(struct store_txn *t, const struct event *ev, char *id_out,
	       bool *queued, struct err *e)
{
	struct record have, rec;
	struct store_put p;
	json_t *data;
	char title[OUTBOX_TITLE_MAX + 1], msg[OUTBOX_MESSAGE_MAX + 1];
	int rc;

	if (queued)
		*queued = false;
	record_init(&have);
	record_init(&rec);
	rc = store_txn_get_by_name(t, OUTBOX_COLLECTION, ev->key, &have, e);
	if (!rc) {
		if (id_out)
			memcpy(id_out, have.id, ID_LEN + 1);
		record_release(&have);
		return 0;
	}
	if (rc != ERR_NOT_FOUND)
		return rc;
	err_clear(e);
	cut(title, sizeof(title), ev->title);
	cut(msg, sizeof(msg), ev->message);
	/* json_pack copies every string. */
	data = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name", ev->key,
			 "user", ev->user, "type", ev->type, "title", title,
			 "message", msg, "chat", ev->chat, "source",
			 ev->source);
	if (!data)
		return err_set(e, ERR_NOMEM, "out of memory");
	memset(&p, 0, sizeof(p));
	p.collection = OUTBOX_COLLECTION;
	p.data = data;
	p.mode = STORE_CREATE;
	rc = store_txn_put(t, &p, &rec, NULL, e);
	json_decref(data);
	if (!rc && id_out)
		memcpy(id_out, rec.id, ID_LEN + 1);
	if (!rc && queued)
		*queued = true;
	record_release(&rec);
	return rc;
}

/* The owner of chat id ("" when there is none, or no such chat). */
static int chat_owner(struct store_txn *t, const char *chat,
		      char out[ID_LEN + 1], struct err *e)
{
	struct record c;
	int rc;

	out[0] = '\0';
	if (!*chat)
		return 0;
	record_init(&c);
	rc = store_txn_get(t, "chats", chat, &c, e);
	if (rc == ERR_NOT_FOUND) {
		err_clear(e);
		return 0;
	}
	if (!rc)
		snprintf(out, ID_LEN + 1, "%s", dstr(&c, "user"));
	record_release(&c);
	return rc;
}

/* Did field become value in this write? */
static bool became(const struct record *before, const struct record *after,
		   const char *field, const char *value)
{
	return !strcmp(dstr(after, field), value) &&
	       (!before || strcmp(dstr(before, field), value));
}

/* Tell the owner of rec's chat: key "<type>:<id>", source
 * "<collection>/<id>". A record without a chat (or owner) tells nobody. */
static int to_chat_owner(struct store_txn *t, const struct record *rec,
			 const char *type, const char *title, const char *msg,
			 struct err *e)
{
	char user[ID_LEN + 1], key[KEY_MAX + 1], src[96];
	struct event ev;
	int rc;

	rc = chat_owner(t, dstr(rec, "chat"), user, e);
	if (rc || !*user)
		return rc;
	snprintf(key, sizeof(key), "%s:%s", type, rec->id);
	snprintf(src, sizeof(src), "%s/%s", rec->collection, rec->id);
	ev = (struct event){ key, user, type, title, msg, dstr(rec, "chat"),
			     src };
	return add(t, &ev, NULL, NULL, e);
}

int outbox_on_permission(struct store_txn *t, const struct record *before,
			 struct record *after,
			 const struct store_actor *actor, struct err *e)
{
	char msg[OUTBOX_MESSAGE_MAX + 1];

	(void)actor;
	if (!after || !became(before, after, "status", "draft"))
		return 0;
	if (*dstr(after, "message"))
		snprintf(msg, sizeof(msg), "%s", dstr(after, "message"));
	else
		snprintf(msg, sizeof(msg), "The agent asks to use %.200s",
			 dstr(after, "permission"));
	return to_chat_owner(t, after, "permission", "Permission requested",
			     msg, e);
}

int outbox_on_question(struct store_txn *t, const struct record *before,
		       struct record *after, const struct store_actor *actor,
		       struct err *e)
{
	(void)actor;
	if (!after || !became(before, after, "status", "asked"))
		return 0;
	return to_chat_owner(t, after, "question", "The agent has a question",
			     dstr(after, "question"), e);
}

struct admins {
	struct store_txn *t;
	const struct record *mcp;
	struct err *e;
};

static int notify_admin(const struct record *u, void *arg)
{
	struct admins *a = arg;
	char key[KEY_MAX + 1], msg[OUTBOX_MESSAGE_MAX + 1], src[96];
	struct event ev;

	if (strcmp(dstr(u, "role"), "admin"))
		return 0;
	snprintf(key, sizeof(key), "mcp_request:%s@%lld:%s", a->mcp->id,
		 (long long)a->mcp->revision, u->id);
	snprintf(src, sizeof(src), "mcp_servers/%s", a->mcp->id);
	snprintf(msg, sizeof(msg), "The agent asks for MCP server '%.200s'%s"
		 "%.1000s", dstr(a->mcp, "name"),
		 *dstr(a->mcp, "reason") ? ": " : "", dstr(a->mcp, "reason"));
	ev = (struct event){ key, u->id, "mcp_request", "MCP server requested",
			     msg, "", src };
	return add(a->t, &ev, NULL, NULL, a->e);
}

int outbox_on_mcp(struct store_txn *t, const struct record *before,
		  struct record *after, const struct store_actor *actor,
		  struct err *e)
{
	struct admins a = { t, after, e };

	(void)actor;
	if (!after || !became(before, after, "status", "pending"))
		return 0;
	/* only an admin can approve: every admin hears of it */
	return store_txn_list(t, "users", NULL, notify_admin, &a, e);
}

int outbox_on_device(struct store_txn *t, const struct record *before,
		     struct record *after, const struct store_actor *actor,
		     struct err *e)
{
	const char *tok = dstr(after, "push_token");
	struct err le = ERR_INIT;
	int rc;

	(void)t;
	(void)actor;
	if (!after || strcmp(dstr(after, "push_service"), "unifiedpush"))
		return 0;
	if (before && !strcmp(dstr(before, "push_token"), tok) &&
	    !strcmp(dstr(before, "push_service"), "unifiedpush"))
		return 0;
	rc = netguard_http_url(tok, &le);
	if (rc == ERR_INVALID)
		return err_set_field(e, ERR_INVALID, "push_token",
				     "push_token of a unifiedpush device must "
				     "be an http(s) URL: %s", le.msg);
	return rc ? err_set(e, rc, "%s", le.msg) : 0;
}

/* ---- the push endpoint ------------------------------------------------------ */

static bool valid_type(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '_'))
			return false;
	return true;
}

int outbox_push_request(struct store *s, json_t *body, json_t **reply,
			struct err *e)
{
	const char *user, *type, *title, *message, *chat, *bkey;
	struct store_txn *t = NULL;
	struct record u;
	char key[KEY_MAX + 1], id[ID_LEN + 1], fresh[ID_LEN + 1];
	struct event ev;
	bool queued = false;
	int rc;

	*reply = NULL;
	record_init(&u);
	if (!json_is_object(body))
		return err_set(e, ERR_INVALID, "the body must be a JSON object");
	rc = util_json_str(body, "user_id", true, ID_LEN, &user, e);
	if (!rc)
		rc = util_json_str(body, "type", true, TYPE_MAX, &type, e);
	if (!rc && !valid_type(type))
		rc = err_set_field(e, ERR_INVALID, "type", "type must be "
				   "lower-case letters, digits and _");
	if (!rc)
		rc = util_json_str(body, "title", false, OUTBOX_TITLE_MAX, &title, e);
	if (!rc)
		rc = util_json_str(body, "message", false, OUTBOX_MESSAGE_MAX,
			    &message, e);
	if (!rc)
		rc = util_json_str(body, "chat", false, CHAT_MAX, &chat, e);
	if (!rc)
		rc = util_json_str(body, "key", false, 128, &bkey, e);
	if (rc)
		return rc;
	util_new_id(fresh);
	snprintf(key, sizeof(key), "push:%s", *bkey ? bkey : fresh);
	rc = store_begin(s, &t, e);
	if (!rc)
		rc = util_valid_id(user) ? store_txn_get(t, "users", user, &u, e) :
					   ERR_NOT_FOUND;
	if (rc == ERR_NOT_FOUND)
		rc = err_set_field(e, ERR_INVALID, "user_id",
				   "user '%.40s' does not exist", user);
	if (rc)
		goto out;
	ev = (struct event){ key, user, type, title, message, chat, "api" };
	rc = add(t, &ev, id, &queued, e);
	if (rc)
		goto out;
	rc = store_commit(t, e);
	t = NULL;
	if (rc)
		goto out;
	*reply = json_pack("{s:b, s:s, s:s, s:b}", "ok", 1, "id", id, "key",
			   key, "queued", queued);
	if (!*reply)
		rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	store_abort(t);
	record_release(&u);
	return rc;
}
