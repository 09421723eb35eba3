/*
 * governance.c - the domain rules of the human-in-the-loop collections:
 * the write hooks the store runs for proposals, permissions and
 * mcp_servers (store_write_hooks[], see governance.h; sealing itself is
 * ledger.c's), and the permission and MCP request logic behind the HTTP
 * endpoints of server/api_governance.c.
 *
 * Every write here is one store transaction: the mcp_request lookup by
 * name and the create-or-sync that follows happen under the store's writer
 * lock, so concurrent requests for one server produce one row; the
 * decision hooks read the row's status inside the deciding transaction, so
 * of two concurrent decisions exactly one finds a draft.
 */
#include "governance.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "cron.h"
#include "chat_activity.h"
#include "ledger.h"
#include "outbox.h"
#include "permeval.h"
#include "sshkey.h"
#include "util.h"

#define TEXT_MAX 255
#define UUID_LEN 36

static const char *dstr(const struct record *r, const char *f)
{
	const char *s = r ? json_string_value(json_object_get(r->data, f)) :
			    NULL;

	return s ? s : "";
}

/* A fresh random UUIDv4 (RFC 4122) into out. */
static int uuid4(char out[UUID_LEN + 1], struct err *e)
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return err_set(e, ERR_INTERNAL, "the random generator failed");
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
		 b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
	return 0;
}

/* ---- hooks ------------------------------------------------------------------- */

/*
 * permissions: a change of status away from "draft" is a decision. It
 * needs the owner of the row's chat or an admin (ERR_FORBIDDEN), and it
 * sets approved_by (the deciding users record; "" for a superuser or the
 * server) and approved_at (now). A decided row is an audit record: any
 * later write of it is ERR_CONFLICT, so of two concurrent decisions
 * exactly one wins. A create in a decided status needs an admin (the
 * endpoint creates its rows itself, as the server); a draft created
 * without a challenge gets a fresh random one (UUIDv4).
 */
static int on_permission_write(struct store_txn *t,
			       const struct record *before,
			       struct record *after,
			       const struct store_actor *actor, struct err *e)
{
	struct ledger_actor who;
	struct record chat;
	const char *was, *now;
	char ts[TIME_LEN + 1], challenge[UUID_LEN + 1];
	bool owner = false;
	int rc;

	if (!after || strcmp(after->collection, "permissions"))
		return 0;
	was = before ? dstr(before, "status") : NULL;
	now = dstr(after, "status");
	/* A decided row is an audit record: it never changes again. */
	if (was && strcmp(was, "draft"))
		return err_set(e, ERR_CONFLICT, "permission '%s' was already "
			       "decided (%s); it cannot be changed",
			       after->id, was);
	if (!strcmp(now, "draft")) {
		/* a new request gets its challenge, as the original's
		 * create hook did */
		if (was || *dstr(after, "challenge"))
			return 0;
		rc = uuid4(challenge, e);
		return rc ? rc : store_txn_patch(t, after, json_pack("{s:s}",
					  "challenge", challenge), e);
	}
	rc = ledger_actor_resolve(t, actor->id, &who, e);
	if (rc)
		return rc;
	if (!who.admin) {
		if (!was)
			return err_set_field(e, ERR_FORBIDDEN, "status",
					     "only an admin can create a "
					     "permission that is already %s",
					     now);
		record_init(&chat);
		if (*dstr(after, "chat")) {
			rc = store_txn_get(t, "chats", dstr(after, "chat"),
					   &chat, e);
			if (rc && rc != ERR_NOT_FOUND)
				return rc;
			owner = !rc && *who.user_id &&
				!strcmp(dstr(&chat, "user"), who.user_id);
			record_release(&chat);
			err_clear(e);
		}
		if (!owner)
			return err_set_field(e, ERR_FORBIDDEN, "status",
					     "only the owner of the chat or an "
					     "admin can decide permission '%s'",
					     after->id);
	}
	util_now(ts);
	/* json_pack copies both strings. */
	return store_txn_patch(t, after, json_pack("{s:s, s:s}", "approved_by",
					    who.user_id, "approved_at", ts), e);
}

/*
 * mcp_servers: a create in any status but "pending" needs an admin
 * (ERR_FORBIDDEN: an agent cannot approve its own request); a change to
 * "approved" sets approved_by and approved_at.
 */
static int on_mcp_write(struct store_txn *t, const struct record *before,
			struct record *after, const struct store_actor *actor,
			struct err *e)
{
	struct ledger_actor who;
	const char *now;
	char ts[TIME_LEN + 1];
	int rc;

	if (!after || strcmp(after->collection, "mcp_servers"))
		return 0;
	now = dstr(after, "status");
	if (before && !strcmp(dstr(before, "status"), now))
		return 0;
	if (!before && !strcmp(now, "pending"))
		return 0;
	if (before && strcmp(now, "approved"))
		return 0;
	rc = ledger_actor_resolve(t, actor->id, &who, e);
	if (rc)
		return rc;
	if (!who.admin)
		return err_set_field(e, ERR_FORBIDDEN, "status",
				     "only an admin can %s mcp server '%s'",
				     strcmp(now, "approved") ? "decide" :
				     "approve", dstr(after, "name"));
	if (strcmp(now, "approved"))
		return 0;
	util_now(ts);
	return store_txn_patch(t, after, json_pack("{s:s, s:s}", "approved_by",
					    who.user_id, "approved_at", ts), e);
}

/*
 * proposals: sealing on approval (ledger_on_proposal_write()). A writer
 * that declares desired state (an apply) and says "approved" approves
 * what it declares: the hook sees no earlier approval, so changed content
 * is sealed rather than sent back to draft (and the same content is not
 * sealed twice, ledger.h).
 */
static int on_proposal_write(struct store_txn *t, const struct record *before,
			     struct record *after,
			     const struct store_actor *actor, struct err *e)
{
	if (actor->declares && !strcmp(dstr(after, "status"), "approved"))
		before = NULL;
	return ledger_on_proposal_write(t, before, after, actor->id, e);
}

/* The write hooks the store runs (store.h), whoever writes. */
const struct store_write_hook store_write_hooks[] = {
	{ "proposals", on_proposal_write },
	{ "permissions", on_permission_write },
	{ "mcp_servers", on_mcp_write },
	{ "cron_jobs", cron_on_write },            /* cron.c */
	{ "chats", chat_activity_on_chat_write },
	{ "messages", chat_activity_on_message_write },
	{ "ssh_keys", sshkey_on_write },          /* sshkey.c */
	/* the notification outbox (outbox.h), after the rules above */
	{ "permissions", outbox_on_permission },
	{ "questions", outbox_on_question },
	{ "mcp_servers", outbox_on_mcp },
	{ "devices", outbox_on_device },
	{ NULL, NULL },
};

/* ---- body helpers ---------------------------------------------------------------- */

static int collect(const struct record *r, void *arg)
{
	json_t *j = record_to_json(r);

	/* j is stolen by the array. */
	if (!j || json_array_append_new(arg, j))
		return ERR_NOMEM;
	return 0;
}

/* ---- permission ------------------------------------------------------------------- */

/* The agent the rules are for: body.agent (id or name), else the chat's. */
static int resolve_agent(struct store *s, const char *agent,
			 const struct record *chat, char out[ID_LEN + 1],
			 struct err *e)
{
	struct record a;
	int rc;

	out[0] = '\0';
	if (!*agent) {
		snprintf(out, ID_LEN + 1, "%s", dstr(chat, "agent"));
		return 0;
	}
	record_init(&a);
	rc = util_valid_id(agent) ? store_get(s, "ai_agents", agent, &a, e) :
				    ERR_NOT_FOUND;
	if (rc == ERR_NOT_FOUND)
		rc = store_get_by_name(s, "ai_agents", agent, &a, e);
	if (rc == ERR_NOT_FOUND)
		return err_set_field(e, ERR_INVALID, "agent",
				     "agent '%.80s' does not exist", agent);
	if (rc)
		return rc;
	memcpy(out, a.id, ID_LEN + 1);
	record_release(&a);
	return 0;
}

int governance_permission_request(struct store *s, json_t *body,
				  json_t **reply, struct err *e)
{
	const char *perm, *opencode_id, *session_id, *chat_id, *message;
	const char *message_id, *call_id, *agent, *status;
	json_t *patterns, *metadata, *records = NULL, *why = NULL;
	json_t *data = NULL;
	struct permeval_rules rules;
	struct store_txn *t = NULL;
	struct store_put p;
	struct record chat, rec;
	enum permeval_action a;
	char agent_id[ID_LEN + 1], challenge[UUID_LEN + 1];
	int rc;

	*reply = NULL;
	memset(&rules, 0, sizeof(rules));
	record_init(&chat);
	record_init(&rec);
	if (!json_is_object(body))
		return err_set(e, ERR_INVALID, "the body must be a JSON object");
	rc = util_json_str(body, "permission", true, TEXT_MAX, &perm, e);
	if (!rc)
		rc = util_json_str(body, "opencode_id", true, TEXT_MAX, &opencode_id,
			      e);
	if (!rc)
		rc = util_json_str(body, "session_id", true, TEXT_MAX, &session_id,
			      e);
	if (!rc)
		rc = util_json_str(body, "chat_id", false, TEXT_MAX, &chat_id, e);
	if (!rc)
		rc = util_json_str(body, "message", false, 0, &message, e);
	if (!rc)
		rc = util_json_str(body, "message_id", false, TEXT_MAX, &message_id,
			      e);
	if (!rc)
		rc = util_json_str(body, "call_id", false, TEXT_MAX, &call_id, e);
	if (!rc)
		rc = util_json_str(body, "agent", false, TEXT_MAX, &agent, e);
	if (rc)
		return rc;
	patterns = json_object_get(body, "patterns");   /* borrowed */
	metadata = json_object_get(body, "metadata");   /* borrowed */
	if (json_is_null(patterns))
		patterns = NULL;
	if (json_is_null(metadata))
		metadata = NULL;
	if (*chat_id) {
		rc = util_valid_id(chat_id) ?
		     store_get(s, "chats", chat_id, &chat, e) : ERR_NOT_FOUND;
		if (rc == ERR_NOT_FOUND)
			return err_set_field(e, ERR_INVALID, "chat_id",
					     "chat '%.40s' does not exist",
					     chat_id);
		if (rc)
			return rc;
	}
	rc = resolve_agent(s, agent, *chat_id ? &chat : NULL, agent_id, e);
	if (rc)
		goto out;
	records = json_array();
	if (!records)
		goto nomem;
	rc = store_list(s, "tool_permissions", NULL, collect, records, e);
	if (rc == ERR_NOMEM)
		goto nomem;
	if (!rc)
		rc = permeval_rules_build(records, agent_id, &rules, e);
	if (!rc)
		rc = permeval_evaluate(&rules, perm, patterns, metadata, &a,
				       &why, e);
	if (!rc)
		rc = uuid4(challenge, e);
	if (rc)
		goto out;
	status = a == PERMEVAL_ALLOW ? "authorized" :
		 a == PERMEVAL_DENY ? "denied" : "draft";
	/* "O" shares the request's values; "o" steals a fresh one. */
	data = json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:s, s:s,"
			 " s:s, s:s}",
			 "ai_engine_permission_id", opencode_id,
			 "session_id", session_id, "permission", perm,
			 "patterns", patterns ? json_incref(patterns) :
				     json_array(),
			 "metadata", metadata ? json_incref(metadata) :
				     json_object(),
			 "status", status, "message", message,
			 "source", "interface", "message_id", message_id,
			 "call_id", call_id, "challenge", challenge,
			 "chat", *chat_id ? chat.id : "");
	if (!data)
		goto nomem;
	memset(&p, 0, sizeof(p));
	p.collection = "permissions";
	p.data = data;
	p.mode = STORE_CREATE;
	rc = store_begin(s, &t, e);
	if (!rc)
		rc = store_txn_put(t, &p, &rec, NULL, e);
	if (rc)
		goto out;
	/* A draft asks the human: the outbox hook (outbox.h) queued its
	 * notification in this transaction. */
	rc = store_commit(t, e);
	t = NULL;
	if (rc)
		goto out;
	*reply = json_pack("{s:b, s:s, s:s, s:O}", "permitted",
			   a == PERMEVAL_ALLOW, "id", rec.id, "status", status,
			   "decision", why);
	if (!*reply)
		goto nomem;
	goto out;
nomem:
	rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	store_abort(t);
	permeval_rules_release(&rules);
	record_release(&chat);
	record_release(&rec);
	json_decref(records);
	json_decref(why);
	json_decref(data);
	return rc;
}

/* ---- mcp_request ---------------------------------------------------------------- */

int64_t governance_mcp_cooldown(void)
{
	return util_env_int(GOVERNANCE_MCP_COOLDOWN_ENV,
			    GOVERNANCE_MCP_COOLDOWN_DEFAULT, 0, INT64_MAX);
}

static bool mcp_name_ok(const char *n)
{
	size_t i;

	if (!n || !*n || !((n[0] >= 'a' && n[0] <= 'z') ||
			   (n[0] >= 'A' && n[0] <= 'Z') ||
			   (n[0] >= '0' && n[0] <= '9')))
		return false;
	for (i = 0; n[i]; i++) {
		if (i >= GOVERNANCE_MCP_NAME_MAX)
			return false;
		if (!((n[i] >= 'a' && n[i] <= 'z') ||
		      (n[i] >= 'A' && n[i] <= 'Z') ||
		      (n[i] >= '0' && n[i] <= '9') || n[i] == '.' ||
		      n[i] == '_' || n[i] == '-'))
			return false;
	}
	return true;
}

/* Milliseconds since the epoch of a "YYYY-MM-DD HH:MM:SS.sssZ" time, or
 * -1 when it does not parse. */
static int64_t time_ms(const char *s)
{
	struct tm tm;
	int ms = 0, n = 0;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2d %2d:%2d:%2d.%3d%n", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms,
		   &n) != 7 || !n)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copy the members of body that an mcp request may set into data. */
static int request_fields(json_t *body, const char *session_id,
			  json_t *data, struct err *e)
{
	static const char *const keys[] = { "reason", "image",
					    "config_schema" };
	json_t *v;
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
		v = json_object_get(body, keys[i]);   /* borrowed */
		if (!v || json_is_null(v))
			continue;
		/* json_object_set shares v. */
		if (json_object_set(data, keys[i], v))
			return err_set(e, ERR_NOMEM, "out of memory");
	}
	if (*session_id &&
	    json_object_set_new(data, "requested_by", json_string(session_id)))
		return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
}

/* True when data would change key of the stored record. */
static bool changes(const struct record *cur, json_t *data, const char *key)
{
	json_t *v = json_object_get(data, key), *was;

	if (!v)
		return false;
	was = json_object_get(cur->data, key);
	return !was || !json_equal(v, was);
}

int governance_mcp_request(struct store *s, json_t *body, int64_t cooldown_s,
			   json_t **reply, int64_t *retry_after,
			   struct err *e)
{
	const char *name, *reason, *session_id, *image, *status;
	struct store_txn *t = NULL;
	struct store_put p;
	struct record cur, rec;
	json_t *data = NULL, *cs;
	int64_t left;
	bool have, reopen = false;
	int rc;

	*reply = NULL;
	*retry_after = 0;
	record_init(&cur);
	record_init(&rec);
	if (!json_is_object(body))
		return err_set(e, ERR_INVALID, "the body must be a JSON object");
	rc = util_json_str(body, "server_name", true, 0, &name, e);
	if (!rc)
		rc = util_json_str(body, "reason", false, 0, &reason, e);
	if (!rc)
		rc = util_json_str(body, "session_id", false, TEXT_MAX, &session_id,
			      e);
	if (!rc)
		rc = util_json_str(body, "image", false, 1024, &image, e);
	if (rc)
		return rc;
	if (!mcp_name_ok(name))
		return err_set_field(e, ERR_INVALID, "server_name",
				     "server_name '%.80s' must be 1-%d "
				     "characters of [A-Za-z0-9._-] starting "
				     "with a letter or digit", name,
				     GOVERNANCE_MCP_NAME_MAX);
	cs = json_object_get(body, "config_schema");
	if (cs && !json_is_null(cs) && !json_is_object(cs))
		return err_set_field(e, ERR_INVALID, "config_schema",
				     "config_schema must be an object");
	data = json_object();
	if (!data)
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = request_fields(body, session_id, data, e);
	if (rc)
		goto out;

	rc = store_begin(s, &t, e);
	if (rc)
		goto out;
	rc = store_txn_get_by_name(t, "mcp_servers", name, &cur, e);
	have = !rc;
	if (rc && rc != ERR_NOT_FOUND)
		goto out;
	err_clear(e);
	rc = 0;
	status = have ? dstr(&cur, "status") : "";
	memset(&p, 0, sizeof(p));
	p.collection = "mcp_servers";
	p.data = data;
	if (!have) {
		if (json_object_set_new(data, "name", json_string(name)) ||
		    json_object_set_new(data, "status", json_string("pending")) ||
		    json_object_set_new(data, "catalog",
					json_string("docker-mcp")))
			goto nomem;
		p.mode = STORE_CREATE;
	} else {
		if (!strcmp(status, "denied")) {
			left = cooldown_s * 1000 -
			       (now_ms() - time_ms(cur.updated));
			if (time_ms(cur.updated) >= 0 && left > 0) {
				*retry_after = (left + 999) / 1000;
				rc = err_set(e, ERR_CONFLICT,
					     "mcp server '%s' was denied; it "
					     "can be requested again in %" PRId64
					     " s", name, *retry_after);
				goto out;
			}
		}
		if (!strcmp(status, "approved") &&
		    (changes(&cur, data, "image") ||
		     changes(&cur, data, "config_schema"))) {
			rc = err_set_field(e, ERR_CONFLICT, "image",
					   "mcp server '%s' is approved; only "
					   "an admin can change its image or "
					   "config_schema", name);
			goto out;
		}
		reopen = !strcmp(status, "denied") || !strcmp(status, "revoked");
		if (reopen &&
		    json_object_set_new(data, "status", json_string("pending")))
			goto nomem;
		p.id = cur.id;
		p.partial = true;
		p.mode = STORE_UPDATE;
	}
	rc = store_txn_put(t, &p, &rec, NULL, e);
	if (rc)
		goto out;
	rc = store_commit(t, e);
	t = NULL;
	if (rc)
		goto out;
	if (!have)
		*reply = json_pack("{s:s, s:s}", "id", rec.id, "status",
				   "pending");
	else if (reopen)
		*reply = json_pack("{s:s, s:s, s:b}", "id", rec.id, "status",
				   "pending", "reopened", 1);
	else
		*reply = json_pack("{s:s, s:s, s:b}", "id", rec.id, "status",
				   dstr(&rec, "status"), "synced", 1);
	if (!*reply)
		goto nomem;
	goto out;
nomem:
	rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	store_abort(t);
	record_release(&cur);
	record_release(&rec);
	json_decref(data);
	return rc;
}
