/*
 * cron.c - the cron_jobs rules (see cron.h): the write hook that validates
 * every write of a job and marks where its schedule starts, and the
 * transactions that fire due slots and record the scheduler's status.
 */
#include "cron.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

#define COLL "cron_jobs"

int64_t cron_now_ms(void)
{
	struct timespec ts;
	int64_t off = util_env_int(CRON_CLOCK_OFFSET_ENV, 0,
				   -100LL * 365 * 86400, 100LL * 365 * 86400);

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + off * 1000;
}

int64_t cron_parse_time(const char *s)
{
	struct tm tm;
	int ms = 0;
	char *end;

	if (!s || !*s)
		return -1;
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
	if (!end)
		return -1;
	if (*end == '.')
		ms = (int)strtol(end + 1, NULL, 10) % 1000;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

/* Name field as the one at fault in e, its message prefixed with prefix. */
static int blame(struct err *e, const char *field, const char *prefix)
{
	err_prefix(e, "%s", prefix);
	snprintf(e->field, sizeof(e->field), "%s", field);
	return e->code;
}

static const char *dstr(json_t *data, const char *f)
{
	const char *s = json_string_value(json_object_get(data, f));

	return s ? s : "";
}

int cron_job_schedule(json_t *data, struct cronexpr *x,
		      char zone[CRONTZ_NAME_MAX + 1], struct err *e)
{
	const char *tz = dstr(data, "timezone");
	int rc;

	rc = cronexpr_parse(dstr(data, "cron_expression"), x, e);
	if (rc)
		return blame(e, "cron_expression", "cron_expression: ");
	snprintf(zone, CRONTZ_NAME_MAX + 1, "%s", *tz ? tz : "UTC");
	return 0;
}

static bool differs(const struct record *before, const struct record *after,
		    const char *f)
{
	json_t *a = json_object_get(before->data, f);
	json_t *b = json_object_get(after->data, f);

	return !(a ? b && json_equal(a, b) : !b);
}

/* session_mode "existing" targets a chat of the job's own user. */
static int check_target(struct store_txn *t, json_t *data, struct err *e)
{
	struct record chat;
	const char *id = dstr(data, "chat");
	int rc;

	if (strcmp(dstr(data, "session_mode"), "existing"))
		return 0;
	if (!*id)
		return err_set_field(e, ERR_INVALID, "chat", "chat: "
				     "session_mode 'existing' needs a chat");
	record_init(&chat);
	rc = store_txn_get(t, "chats", id, &chat, e);
	if (rc == ERR_NOT_FOUND)
		rc = err_set_field(e, ERR_INVALID, "chat", "chat: no chat "
				   "'%s'", id);
	else if (!rc && strcmp(dstr(chat.data, "user"), dstr(data, "user")))
		rc = err_set_field(e, ERR_INVALID, "chat", "chat: chat '%s' "
				   "belongs to another user", id);
	record_release(&chat);
	return rc;
}

int cron_on_write(struct store_txn *t, const struct record *before,
		  struct record *after, const struct store_actor *actor,
		  struct err *e)
{
	static const char *const watched[] = {
		"cron_expression", "timezone", "session_mode", "chat",
		"enabled", "user", NULL,
	};
	char zone[CRONTZ_NAME_MAX + 1], ts[TIME_LEN + 1];
	struct crontz *z = NULL;
	struct cronexpr x;
	bool changed = !before, enabled, again;
	int64_t now, next;
	size_t i;
	int rc;

	(void)actor;
	if (!after)
		return 0;
	for (i = 0; before && watched[i] && !changed; i++)
		changed = differs(before, after, watched[i]);
	if (!changed)
		return 0;
	rc = cron_job_schedule(after->data, &x, zone, e);
	if (rc)
		return rc;
	rc = crontz_open(zone, &z, e);
	if (rc)
		return rc == ERR_INVALID ? blame(e, "timezone", "") : rc;
	now = cron_now_ms();
	rc = cronexpr_next(&x, z, now, &next, e);
	crontz_free(z);
	if (rc == ERR_NOT_FOUND) {
		e->code = ERR_INVALID;
		return blame(e, "cron_expression", "cron_expression: ");
	}
	if (rc)
		return rc;
	rc = check_target(t, after->data, e);
	if (rc)
		return rc;
	/* Where the schedule starts: only slots after this count. */
	enabled = json_is_true(json_object_get(after->data, "enabled"));
	again = !before || differs(before, after, "cron_expression") ||
		differs(before, after, "timezone") ||
		!json_is_true(json_object_get(before->data, "enabled"));
	if (!enabled || !again)
		return 0;
	util_format_ms(now, ts);
	return store_txn_patch(t, after, json_pack("{s:s}", "last_slot", ts),
			       e);
}

/* ---- firing ------------------------------------------------------------ */

/* The chat the job's message goes to, into chat_id; an error that is the
 * job's own (a gone target) goes to f->error with 0 returned. */
static int target_chat(struct store_txn *t, const struct record *job,
		       struct cron_fire *f, char chat_id[ID_LEN + 1],
		       struct err *e)
{
	json_t *d = job->data, *data = NULL;
	struct store_put p;
	struct crontz *z = NULL;
	struct record chat;
	char when[16], title[512];
	const char *mode = dstr(d, "session_mode");
	int rc;

	record_init(&chat);
	if (!strcmp(mode, "existing")) {
		if (!*dstr(d, "chat")) {
			snprintf(f->error, sizeof(f->error), "session_mode "
				 "'existing' but the job has no chat");
			return 0;
		}
		rc = store_txn_get(t, "chats", dstr(d, "chat"), &chat, e);
		if (rc == ERR_NOT_FOUND) {
			err_clear(e);
			snprintf(f->error, sizeof(f->error), "chat '%s' is "
				 "gone", dstr(d, "chat"));
			return 0;
		}
		if (!rc)
			snprintf(chat_id, ID_LEN + 1, "%s", chat.id);
		record_release(&chat);
		return rc;
	}
	if (strcmp(mode, "new")) {
		snprintf(f->error, sizeof(f->error), "unknown session_mode: "
			 "%.64s", mode);
		return 0;
	}
	if (!f->zone && crontz_open(dstr(d, "timezone"), &z, e)) {
		err_clear(e);
		crontz_open(NULL, &z, e);
	}
	when[0] = '\0';
	if (f->zone || z)
		crontz_format_short(f->zone ? f->zone : z, f->slot_ms, when);
	crontz_free(z);
	snprintf(title, sizeof(title), "%.400s \xe2\x80\x94 %s",
		 dstr(d, "name"), when);
	data = json_pack("{s:s, s:s, s:s}", "title", title, "user",
			 dstr(d, "user"), "turn", "user");
	if (!data)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (*dstr(d, "agent"))
		json_object_set_new(data, "agent", json_string(dstr(d, "agent")));
	memset(&p, 0, sizeof(p));
	p.collection = "chats";
	p.data = data;
	p.mode = STORE_CREATE;
	rc = store_txn_put(t, &p, &chat, NULL, e);
	if (!rc)
		snprintf(chat_id, ID_LEN + 1, "%s", chat.id);
	json_decref(data);
	record_release(&chat);
	return rc;
}

static int put_message(struct store_txn *t, const char *chat_id,
		       const char *prompt, struct err *e)
{
	struct store_put p;
	json_t *data;
	int rc;

	data = json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}]}", "chat", chat_id,
			 "role", "user", "user_message_status", "pending",
			 "parts", "type", "text", "text", prompt);
	if (!data)
		return err_set(e, ERR_NOMEM, "out of memory");
	memset(&p, 0, sizeof(p));
	p.collection = "messages";
	p.data = data;
	p.mode = STORE_CREATE;
	rc = store_txn_put(t, &p, NULL, NULL, e);
	json_decref(data);
	return rc;
}

static int fire_one(struct store_txn *t, struct cron_fire *f, int64_t now,
		    struct err *e)
{
	char chat_id[ID_LEN + 1] = "", ts[TIME_LEN + 1], slot[TIME_LEN + 1];
	struct record job;
	struct store_put p;
	json_t *patch = NULL;
	int64_t done;
	int rc;

	record_init(&job);
	rc = store_txn_get(t, COLL, f->job_id, &job, e);
	if (rc == ERR_NOT_FOUND) {
		err_clear(e);
		f->skipped = true;
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	done = cron_parse_time(dstr(job.data, "last_slot"));
	if (!json_is_true(json_object_get(job.data, "enabled")) ||
	    done >= f->slot_ms) {
		f->skipped = true;
		goto out;
	}
	rc = target_chat(t, &job, f, chat_id, e);
	if (!rc && !f->error[0])
		rc = put_message(t, chat_id, dstr(job.data, "prompt"), e);
	if (rc)
		goto out;
	f->fired = !f->error[0];
	util_format_ms(now, ts);
	util_format_ms(f->slot_ms, slot);
	patch = json_pack("{s:s, s:s, s:s, s:s}", "last_executed", ts,
			  "last_status", f->fired ? "ok" : "error",
			  "last_error", f->error, "last_slot", slot);
	if (!patch) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	memset(&p, 0, sizeof(p));
	p.collection = COLL;
	p.id = job.id;
	p.data = patch;
	p.partial = true;
	p.mode = STORE_UPDATE;
	rc = store_txn_put(t, &p, NULL, NULL, e);
	if (!rc && f->status)
		rc = store_txn_set_status(t, COLL, job.id, f->status, e);
out:
	json_decref(patch);
	record_release(&job);
	return rc;
}

int cron_fire_txn(struct store_txn *t, void *arg, struct err *e)
{
	struct cron_batch *b = arg;
	size_t i;
	int rc;

	for (i = 0; i < b->n; i++) {
		b->fires[i].fired = b->fires[i].skipped = false;
		b->fires[i].error[0] = '\0';
		rc = fire_one(t, &b->fires[i], b->now_ms, e);
		if (rc)
			return err_prefix(e, "cron job '%s': ",
					  b->fires[i].job_id);
	}
	return 0;
}

int cron_status_txn(struct store_txn *t, void *arg, struct err *e)
{
	struct cron_status_batch *b = arg;
	size_t i;
	int rc;

	for (i = 0; i < b->n; i++) {
		rc = store_txn_set_status(t, COLL, b->items[i].job_id,
					  b->items[i].status, e);
		if (rc == ERR_NOT_FOUND) {
			err_clear(e);
			continue;
		}
		if (rc)
			return rc;
	}
	return 0;
}
