/*
 * api_cron.c - the agent's scheduling endpoints (see api_cron.h): the
 * session's user, the bodies and replies around one store write each; the
 * validation is the cron_jobs write hook's (cron.h).
 */
#include "api_cron.h"

#include <stdio.h>
#include <string.h>

#include "cron.h"
#include "server.h"
#include "util.h"

#define BODY_CAP ((size_t)1 << 20)
#define MSG_SESSION "Could not resolve user from session"

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static int keep_first(const struct record *r, void *arg)
{
	struct record *out = arg;

	memcpy(out->id, r->id, sizeof(out->id));
	out->data = json_deep_copy(r->data);    /* r is borrowed */
	return out->data ? 1 : ERR_NOMEM;
}

/* The newest chat of session sid into *chat (its id and data): the user
 * the agent acts for. ERR_INVALID on session_id when there is none. */
static int session_chat(struct store *s, const char *sid, struct record *chat,
			struct err *e)
{
	struct store_query q;
	struct query_sort sort;
	struct query_pred *where;
	int rc;

	record_init(chat);
	if (!*sid)
		return err_set_field(e, ERR_INVALID, "session_id",
				     "session_id is required");
	where = query_cmp(QUERY_EQ, query_field("ai_engine_session_id", false),
			  query_literal(json_string(sid)));
	memset(&sort, 0, sizeof(sort));
	if (!where ||
	    query_sort_add(&sort, QUERY_SORT_COLUMN, "created", false, true) ||
	    query_sort_add(&sort, QUERY_SORT_COLUMN, "id", false, true)) {
		query_pred_free(where);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	memset(&q, 0, sizeof(q));
	q.where = where;
	q.order = &sort;
	q.limit = 1;
	rc = store_list(s, "chats", &q, keep_first, chat, e);
	query_pred_free(where);
	if (rc == 1)
		return 0;
	record_release(chat);
	if (rc == ERR_NOMEM)
		return err_set(e, ERR_NOMEM, "out of memory");
	return rc ? rc : err_set_field(e, ERR_INVALID, "session_id",
				       MSG_SESSION);
}

/* The next run of a job's data from now, "" when it has none. */
static void next_run(json_t *data, char out[TIME_LEN + 1])
{
	char zone[CRONTZ_NAME_MAX + 1];
	struct crontz *z = NULL;
	struct err e = ERR_INIT;
	struct cronexpr x;
	int64_t next;

	out[0] = '\0';
	if (cron_job_schedule(data, &x, zone, &e) || crontz_open(zone, &z, &e))
		return;
	if (!cronexpr_next(&x, z, cron_now_ms(), &next, &e))
		util_format_ms(next, out);
	crontz_free(z);
}

/* One put as the caller (so the hooks see who writes). */
struct put_as {
	const char *actor;
	struct store_put put;
	struct record out;
};

static int put_as_txn(struct store_txn *t, void *arg, struct err *e)
{
	struct put_as *pa = arg;

	store_txn_set_actor(t, pa->actor, 0);
	return store_txn_put(t, &pa->put, &pa->out, NULL, e);
}

int api_cron_schedule(struct http_req *r)
{
	static const char *const texts[] = {
		"name", "cron_expression", "prompt", "description", "timezone",
		"session_mode", "session_id", NULL,
	};
	const char *v[7];
	struct err e = ERR_INIT;
	struct put_as pa;
	struct record chat;
	json_t *body = NULL, *data = NULL, *reply;
	char next[TIME_LEN + 1];
	size_t i;
	int rc;

	if (!http_agent_or_admin(r, "schedule a task"))
		return 0;
	memset(&pa, 0, sizeof(pa));
	record_init(&pa.out);
	record_init(&chat);
	rc = http_read_json(r, BODY_CAP, &body, &e);
	for (i = 0; !rc && texts[i]; i++)
		rc = util_json_str(body, texts[i], i < 3 || i == 6, 0, &v[i], &e);
	if (!rc && *v[5] && strcmp(v[5], "new") && strcmp(v[5], "existing"))
		rc = err_set_field(&e, ERR_INVALID, "session_mode",
				   "session_mode must be 'new' or 'existing', "
				   "not '%.64s'", v[5]);
	if (!rc)
		rc = session_chat(r->srv->store, v[6], &chat, &e);
	if (rc)
		goto out;
	data = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "name", v[0],
			 "cron_expression", v[1], "prompt", v[2],
			 "description", v[3], "session_mode",
			 *v[5] ? v[5] : "new", "user", jstr(chat.data, "user"),
			 "enabled", 1);
	if (!data) {
		rc = err_set(&e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if (*v[4])
		json_object_set_new(data, "timezone", json_string(v[4]));
	if (!strcmp(v[5], "existing"))
		json_object_set_new(data, "chat", json_string(chat.id));
	json_object_set_new(data, "scheduled_by", json_string(r->auth.id));
	pa.actor = r->auth.id;
	pa.put.collection = "cron_jobs";
	pa.put.data = data;
	pa.put.mode = STORE_CREATE;
	rc = store_write(r->srv->store, put_as_txn, &pa, &e);
	if (rc)
		goto out;
	next_run(pa.out.data, next);
	reply = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", pa.out.id, "name",
			  v[0], "cron_expression", v[1], "status", "scheduled",
			  "next_run", next);
	json_decref(data);
	json_decref(body);
	record_release(&pa.out);
	record_release(&chat);
	return http_reply_json(r, 200, reply, NULL);   /* reply stolen */
out:
	json_decref(data);
	json_decref(body);
	record_release(&pa.out);
	record_release(&chat);
	return http_reply_error(r, &e);
}

static int list_one(const struct record *rec, void *arg)
{
	json_t *d = rec->data;
	char next[TIME_LEN + 1] = "";
	bool on = json_is_true(json_object_get(d, "enabled"));

	if (on)
		next_run(d, next);
	return json_array_append_new(arg, json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:s}",
		"id", rec->id, "name", jstr(d, "name"), "cron_expression",
		jstr(d, "cron_expression"), "prompt", jstr(d, "prompt"),
		"session_mode", jstr(d, "session_mode"), "enabled", on,
		"last_executed", jstr(d, "last_executed"), "last_status",
		jstr(d, "last_status"), "timezone",
		*jstr(d, "timezone") ? jstr(d, "timezone") : "UTC",
		"next_run", next)) ? ERR_NOMEM : 0;
}

int api_cron_list(struct http_req *r)
{
	struct err e = ERR_INIT;
	struct store_query q;
	struct query_sort sort;
	struct query_pred *where = NULL;
	struct record chat;
	json_t *items = NULL;
	char sid[256];
	int rc, n;

	if (!http_agent_or_admin(r, "list scheduled tasks"))
		return 0;
	record_init(&chat);
	n = http_query(r, "session_id", sid, sizeof(sid));
	if (n < -1)
		rc = err_set_field(&e, ERR_INVALID, "session_id",
				   "session_id is too long");
	else
		rc = session_chat(r->srv->store, n < 0 ? "" : sid, &chat, &e);
	if (rc)
		goto out;
	where = query_cmp(QUERY_EQ, query_field("user", false),
			  query_literal(json_string(jstr(chat.data, "user"))));
	memset(&sort, 0, sizeof(sort));
	items = json_array();
	if (!where || !items ||
	    query_sort_add(&sort, QUERY_SORT_COLUMN, "created", false, true) ||
	    query_sort_add(&sort, QUERY_SORT_COLUMN, "id", false, true)) {
		rc = err_set(&e, ERR_NOMEM, "out of memory");
		goto out;
	}
	memset(&q, 0, sizeof(q));
	q.where = where;
	q.order = &sort;
	rc = store_list(r->srv->store, "cron_jobs", &q, list_one, items, &e);
	if (rc == ERR_NOMEM)
		err_set(&e, ERR_NOMEM, "out of memory");
out:
	query_pred_free(where);
	record_release(&chat);
	if (rc) {
		json_decref(items);
		return http_reply_error(r, &e);
	}
	return http_reply_json(r, 200, items, NULL);   /* items stolen */
}

/* The cancel, in one transaction: the ownership check reads the row it
 * writes. */
struct cancel {
	const char *actor;
	const char *task_id;
	const char *user;         /* the session's user; NULL: see by */
	const char *by;           /* no session: only a job this caller
	                           * scheduled; NULL: an admin's cancel of
	                           * any job */
	char name[256];
};

static int cancel_txn(struct store_txn *t, void *arg, struct err *e)
{
	struct cancel *cn = arg;
	struct store_put p;
	struct record job;
	json_t *data = NULL;
	int rc;

	store_txn_set_actor(t, cn->actor, 0);
	record_init(&job);
	rc = store_txn_get(t, "cron_jobs", cn->task_id, &job, e);
	if (rc == ERR_NOT_FOUND)
		rc = err_set_field(e, ERR_NOT_FOUND, "task_id", "no scheduled "
				   "task '%.64s'", cn->task_id);
	if (rc)
		goto out;
	if (cn->user && strcmp(jstr(job.data, "user"), cn->user)) {
		rc = err_set_field(e, ERR_FORBIDDEN, "task_id", "task '%s' "
				   "belongs to another user than the "
				   "session's", job.id);
		goto out;
	}
	if (cn->by && strcmp(jstr(job.data, "scheduled_by"), cn->by)) {
		rc = err_set_field(e, ERR_FORBIDDEN, "session_id", "task '%s' "
				   "was not scheduled by this caller; name "
				   "the session it is for", job.id);
		goto out;
	}
	snprintf(cn->name, sizeof(cn->name), "%s", jstr(job.data, "name"));
	data = json_pack("{s:b}", "enabled", 0);
	memset(&p, 0, sizeof(p));
	p.collection = "cron_jobs";
	p.id = job.id;
	p.data = data;
	p.partial = true;
	p.mode = STORE_UPDATE;
	rc = data ? store_txn_put(t, &p, NULL, NULL, e) :
		    err_set(e, ERR_NOMEM, "out of memory");
out:
	json_decref(data);
	record_release(&job);
	return rc;
}

int api_cron_cancel(struct http_req *r)
{
	struct err e = ERR_INIT;
	struct cancel cn;
	struct record chat;
	json_t *body = NULL;
	const char *sid = "";
	int rc;

	if (!http_agent_or_admin(r, "cancel a scheduled task"))
		return 0;
	memset(&cn, 0, sizeof(cn));
	record_init(&chat);
	rc = http_read_json(r, BODY_CAP, &body, &e);
	if (!rc)
		rc = util_json_str(body, "task_id", true, 0, &cn.task_id, &e);
	if (!rc)
		rc = util_json_str(body, "session_id", false, 0, &sid, &e);
	/*
	 * With a session, the agent acts for that session's user only.
	 * Without one (the original's tool sends only task_id) it may
	 * cancel only what it scheduled itself; an admin cancels anything.
	 */
	if (!rc && *sid)
		rc = session_chat(r->srv->store, sid, &chat, &e);
	if (rc)
		goto out;
	if (chat.data)
		cn.user = jstr(chat.data, "user");
	else if (!http_is_admin(r))
		cn.by = r->auth.id;
	cn.actor = r->auth.id;
	rc = store_write(r->srv->store, cancel_txn, &cn, &e);
out:
	record_release(&chat);
	if (rc) {
		json_decref(body);
		return http_reply_error(r, &e);
	}
	rc = http_reply_json(r, 200, json_pack("{s:s, s:s, s:s}", "id",
				  cn.task_id, "name", cn.name, "status",
				  "cancelled"), NULL);
	json_decref(body);
	return rc;
}
