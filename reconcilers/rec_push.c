/*
 * rec_push.c - the push reconciler: drains the notification outbox
 * (notifications records, outbox.h) to the user's devices. A pass plans
 * every record not yet settled - the user's notification_rules (opt-out:
 * only an explicit false suppresses), presence (a live realtime
 * connection suppresses, presence.h), the per-user rate limit (the excess
 * coalesced into one "N more notifications" push) and the user's active
 * devices - hands the requests to the sending thread (pushsend.h: curl
 * multi, the SSRF guard, timeouts, caps), and on later passes folds the
 * results in: 2xx sent; 404/410 deactivates the device with the reason;
 * another 4xx, or a redirect (never followed), fails; 5xx, timeouts and
 * network errors are retried with capped exponential backoff and jitter.
 * Every attempt is written into the
 * record's status (one transaction per pass for all records), so a
 * restart resumes where it stopped and never sends to a device twice
 * once its delivery was recorded; the reconciler's status counts them.
 *
 * Settled records beyond the newest POCKETCTL_PUSH_KEEP (1000) are
 * deleted, oldest first. The sending thread never touches the store: it
 * wakes the engine, which runs the next pass.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netguard.h"
#include "presence.h"
#include "pushsend.h"
#include "reconciler.h"
#include "util.h"

#define WINDOW_MS 60000              /* the rate limit's window */
#define ATTEMPTS_LOGGED 20           /* per record */
#define SECRET_MAX 1024

static const char *const push_reads[] = {
	"notifications", "devices", "notification_rules", NULL
};

struct pstate {
	struct pushsend *send;
	char *relay;                /* the FCM relay URL, or NULL */
	char *secret;               /* its X-Relay-Secret, or NULL */
	int rate;                   /* per user a minute; 0: no limit */
	struct pushsend_retry retry;   /* attempts, backoff */
	size_t keep;                /* settled records kept */
	long long summaries;        /* ids of summary pushes */
	json_int_t passes;
	json_t *tracks;             /* record id (or summary:N) -> track */
	json_t *windows;            /* user -> [monotonic ms of a push] */
	json_t *coalesced;          /* user -> pushes held back */
	json_t *totals;             /* outcome -> count, since start */
};

/* ---- small helpers -------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static const char *dstr(const json_t *rec, const char *k)
{
	return jstr(json_object_get(rec, "data"), k);
}

static void count(struct pstate *ps, const char *what, json_int_t n)
{
	json_t *v = json_object_get(ps->totals, what);

	json_object_set_new(ps->totals, what, json_integer(
				    json_integer_value(v) + n));
}

static bool dev_settled(const char *state)
{
	return !strcmp(state, "sent") || !strcmp(state, "failed") ||
	       !strcmp(state, "refused") || !strcmp(state, "deactivated") ||
	       !strcmp(state, "skipped");
}

static bool note_settled(const json_t *rec)
{
	const char *s = jstr(json_object_get(rec, "status"), "state");

	return *s && strcmp(s, "delivering");
}

/* A header value: control characters become spaces, cut at 255 bytes on
 * a UTF-8 boundary (no header injection from a title). */
static void header_value(char *out, size_t size, const char *in)
{
	size_t n = 0;

	for (; *in && n + 1 < size && n < 255; in++)
		out[n++] = iscntrl((unsigned char)*in) ? ' ' : *in;
	/* cut before the sequence the cap split: back to its lead byte */
	if (*in)
		while (n && ((unsigned char)*in & 0xc0) == 0x80) {
			n--;
			in--;
		}
	out[n] = '\0';
}

/* ---- requests ------------------------------------------------------------- */

/* The request of device dev (a track's entry) for track t, submitted. */
static int submit(struct pstate *ps, const char *tag, json_t *t,
		  const char *dev_id, json_t *dev, struct err *e)
{
	char title[512], click[320], tags[96], secret_h[SECRET_MAX + 32];
	char title_h[600], click_h[400];
	const char *hdrs[8];
	const char *chat = jstr(t, "chat");
	struct pushsend_req r;
	json_t *body;
	char *text;
	bool fcm = !strcmp(jstr(dev, "service"), "fcm");
	int rc;

	if (*chat)
		snprintf(click, sizeof(click), "pocketcoder://chat/%.255s",
			 chat);
	else
		snprintf(click, sizeof(click), "pocketcoder://");
	/* json_pack copies every string */
	if (fcm)
		body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "token",
				 jstr(dev, "token"), "user_id", jstr(t, "user"),
				 "service", "fcm", "title", jstr(t, "title"),
				 "message", jstr(t, "message"), "type",
				 jstr(t, "type"), "chat", chat);
	else
		body = json_pack("{s:s, s:s, s:s, s:s, s:s}", "title",
				 jstr(t, "title"), "message",
				 jstr(t, "message"), "type", jstr(t, "type"),
				 "chat", chat, "click", click);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text)
		return err_set(e, ERR_NOMEM, "out of memory");
	memset(&r, 0, sizeof(r));
	hdrs[0] = "Content-Type: application/json";
	if (fcm) {
		snprintf(secret_h, sizeof(secret_h), "X-Relay-Secret: %s",
			 ps->secret ? ps->secret : "");
		hdrs[1] = ps->secret ? secret_h : NULL;
		hdrs[2] = NULL;
		r.url = ps->relay;
		r.guard = false;   /* the operator's own relay */
	} else {
		header_value(title, sizeof(title), jstr(t, "title"));
		snprintf(title_h, sizeof(title_h), "Title: %s", title);
		snprintf(click_h, sizeof(click_h), "Click: %s", click);
		header_value(tags, sizeof(tags), jstr(t, "type"));
		hdrs[1] = title_h;
		hdrs[2] = click_h;
		hdrs[3] = "Priority: high";
		hdrs[4] = NULL;
		if (*tags) {
			snprintf(secret_h, sizeof(secret_h), "Tags: %s", tags);
			hdrs[4] = secret_h;
		}
		hdrs[5] = NULL;
		r.url = jstr(dev, "token");
		r.guard = true;
	}
	r.tag = tag;
	r.device = dev_id;
	r.attempt = (int)json_integer_value(json_object_get(dev, "attempts"));
	r.body = text;
	r.headers = hdrs;
	rc = pushsend_submit(ps->send, &r, e);
	free(text);
	return rc;
}

/* ---- results -------------------------------------------------------------- */

/* Fold one result into its track; a device answering 404/410 goes into
 * dev_writes to be deactivated. */
static void take_result(struct rctx *c, struct pstate *ps,
			const struct pushsend_result *res, int64_t now,
			json_t *dev_writes)
{
	json_t *t = json_object_get(ps->tracks, res->tag);
	json_t *dev = json_object_get(json_object_get(t, "devices"),
				      res->device);
	json_t *log;
	const char *state;
	char why[PUSHSEND_ERR_MAX + 64];
	int attempts;

	if (!dev)
		return;
	attempts = (int)json_integer_value(json_object_get(dev, "attempts"));
	snprintf(why, sizeof(why), "%s", res->error);
	if (res->refused) {
		state = "refused";
	} else if (res->code >= 200 && res->code < 300) {
		state = "sent";
	} else if (res->code == 404 || res->code == 410) {
		state = "deactivated";
		snprintf(why, sizeof(why), "the endpoint answered %ld: the "
			 "device was deactivated", res->code);
		json_array_append_new(dev_writes, json_pack(
			"{s:s, s:{s:b}, s:{s:s, s:s}}", "id", res->device,
			"data", "is_active", 0, "status", "deactivated", why,
			"deactivatedAt", rctx_now(c)));
	} else if (res->code >= 300 && res->code < 500) {
		state = "failed";
		snprintf(why, sizeof(why), "the endpoint answered %ld (%snot "
			 "retried)", res->code, res->code < 400 ?
			 "a redirect, not followed and " : "");
	} else if (attempts < ps->retry.max_attempts) {
		state = "retrying";
		if (res->code)
			snprintf(why, sizeof(why), "the endpoint answered %ld",
				 res->code);
		json_object_set_new(dev, "next", json_integer(
					    now + pushsend_backoff(&ps->retry, attempts)));
	} else {
		state = "failed";
		if (res->code)
			snprintf(why, sizeof(why), "the endpoint answered %ld; "
				 "gave up after %d attempts", res->code,
				 attempts);
	}
	json_object_set_new(dev, "state", json_string(state));
	json_object_set_new(dev, "code", json_integer(res->code));
	json_object_set_new(dev, "error", json_string(why));
	count(ps, state, 1);
	log = json_object_get(t, "attempts");
	json_array_append_new(log, json_pack("{s:s, s:i, s:s, s:s, s:i, s:s,"
					     " s:I}", "device", res->device,
					     "attempt", res->attempt, "at",
					     rctx_now(c), "outcome", state,
					     "code", (int)res->code, "error",
					     why, "ms", (json_int_t)res->ms));
	while (json_array_size(log) > ATTEMPTS_LOGGED)
		json_array_remove(log, 0);
	json_object_set_new(t, "dirty", json_true());
}

/* ---- planning ------------------------------------------------------------- */

/* Only an explicit false in the user's rules suppresses type. */
static bool rule_off(json_t *rules_by_user, const char *user,
		     const char *type)
{
	json_t *rules = json_object_get(rules_by_user, user);

	return json_is_false(json_object_get(rules, type));
}

/* Room in user's window now? Makes the window current. */
static bool window_room(struct pstate *ps, const char *user, int64_t now,
			int64_t *frees_at)
{
	json_t *w = json_object_get(ps->windows, user);

	while (json_array_size(w) &&
	       json_integer_value(json_array_get(w, 0)) <= now - WINDOW_MS)
		json_array_remove(w, 0);
	if (frees_at)
		*frees_at = json_array_size(w) ?
			    json_integer_value(json_array_get(w, 0)) +
			    WINDOW_MS : now;
	return !ps->rate || json_array_size(w) < (size_t)ps->rate;
}

static void window_add(struct pstate *ps, const char *user, int64_t now)
{
	json_t *w = json_object_get(ps->windows, user);

	if (!w) {
		w = json_array();
		json_object_set_new(ps->windows, user, w);
	}
	json_array_append_new(w, json_integer(now));
}

/*
 * A new track for user: a device entry for each active device of theirs,
 * carrying over what the record's stored status says was settled (a
 * restart sends nothing twice).
 */
static json_t *track_new(struct pstate *ps, const char *user,
			 const json_t *data, json_t *devices,
			 const json_t *stored)
{
	json_t *t, *devs, *d, *old;
	const char *id;
	size_t i, j;
	bool fcm;

	old = json_object_get(stored, "attempts");
	t = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{}, s:o, s:b}", "user",
		      user, "type", jstr(data, "type"), "title",
		      jstr(data, "title"), "message", jstr(data, "message"),
		      "chat", jstr(data, "chat"), "devices", "attempts",
		      json_is_array(old) ? json_deep_copy(old) : json_array(),
		      "dirty", 1);
	if (!t)
		return NULL;
	devs = json_object_get(t, "devices");
	json_array_foreach(devices, i, d) {
		id = jstr(d, "id");
		fcm = !strcmp(dstr(d, "push_service"), "fcm");
		old = NULL;
		json_array_foreach(json_object_get(stored, "devices"), j, old)
			if (!strcmp(jstr(old, "id"), id))
				break;
		if (j == json_array_size(json_object_get(stored, "devices")))
			old = NULL;
		if (old && dev_settled(jstr(old, "state"))) {
			json_object_set_new(devs, id, json_pack(
				"{s:s, s:s, s:s, s:I, s:I, s:s}", "service",
				fcm ? "fcm" : "unifiedpush", "token", "",
				"state", jstr(old, "state"), "attempts",
				json_integer_value(json_object_get(
					old, "attempts")),
				"code", json_integer_value(json_object_get(
					old, "code")),
				"error", jstr(old, "error")));
			continue;
		}
		json_object_set_new(devs, id, json_pack(
			"{s:s, s:s, s:s, s:I, s:i, s:s}", "service",
			fcm ? "fcm" : "unifiedpush", "token",
			dstr(d, "push_token"), "state",
			fcm && !ps->relay ? "skipped" : "queued", "attempts",
			old ? json_integer_value(json_object_get(old,
				"attempts")) : (json_int_t)0, "code", 0,
			"error", fcm && !ps->relay ?
			"no FCM relay is configured (--push-relay or PN_URL)" :
			""));
	}
	return t;
}

/* The status of a track: its overall state and every device. */
static json_t *track_status(json_t *t, const char *reason)
{
	json_t *devs = json_array(), *d;
	const char *id, *st;
	size_t sent = 0, settled = 0, n = 0;
	const char *state;

	json_object_foreach(json_object_get(t, "devices"), id, d) {
		st = jstr(d, "state");
		n++;
		sent += !strcmp(st, "sent");
		settled += dev_settled(st);
		json_array_append_new(devs, json_pack(
			"{s:s, s:s, s:s, s:O, s:O, s:s}", "id", id, "service",
			jstr(d, "service"), "state", st, "attempts",
			json_object_get(d, "attempts"), "code",
			json_object_get(d, "code"), "error",
			jstr(d, "error")));
	}
	if (!n)
		state = "nodevice";
	else if (settled < n)
		state = "delivering";
	else if (sent == n)
		state = "sent";
	else if (sent)
		state = "partial";
	else
		state = "failed";
	return json_pack("{s:s, s:s, s:o, s:O}", "state", state, "reason",
			 reason ? reason : "", "devices", devs, "attempts",
			 json_object_get(t, "attempts"));
}

/* A settled record without a track: suppressed, coalesced, no device. */
static json_t *settle(const char *state, const char *reason)
{
	return json_pack("{s:s, s:s, s:[], s:[]}", "state", state, "reason",
			 reason, "devices", "attempts");
}

/* Plan the record rec (not settled, not tracked). */
static int plan(struct rctx *c, struct pstate *ps, json_t *rec,
		json_t *devs_by_user, json_t *rules_by_user, int64_t now,
		json_t *writes, struct err *e)
{
	json_t *data = json_object_get(rec, "data");
	const char *user = dstr(rec, "user"), *id = jstr(rec, "id");
	json_t *t, *st = NULL, *held;

	(void)c;
	if (rule_off(rules_by_user, user, dstr(rec, "type"))) {
		st = settle("suppressed", "rule: the user turned this type off");
		count(ps, "suppressedRule", 1);
	} else if (presence_here(user)) {
		st = settle("suppressed", "presence: the user has the app open");
		count(ps, "suppressedPresence", 1);
	} else if (!window_room(ps, user, now, NULL)) {
		st = settle("coalesced", "rate limit: in the next \"more "
			    "notifications\" push");
		held = json_object_get(ps->coalesced, user);
		json_object_set_new(ps->coalesced, user, json_integer(
					    json_integer_value(held) + 1));
		count(ps, "coalesced", 1);
	}
	if (st)
		return json_array_append_new(writes, json_pack(
			"{s:s, s:o}", "id", id, "status", st)) ?
		       err_set(e, ERR_NOMEM, "out of memory") : 0;
	window_add(ps, user, now);
	t = track_new(ps, user, data, json_object_get(devs_by_user, user),
		      json_object_get(rec, "status"));
	if (!t || json_object_set_new(ps->tracks, id, t))
		return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
}

/* The "N more notifications" push of every user whose window has room
 * again. */
static int summaries(struct rctx *c, struct pstate *ps, json_t *devs_by_user,
		     int64_t now, struct err *e)
{
	json_t *n, *t, *data;
	const char *user;
	char msg[96], tag[64];
	void *tmp;
	int64_t frees;

	json_object_foreach_safe(ps->coalesced, tmp, user, n) {
		if (!window_room(ps, user, now, &frees)) {
			rctx_requeue_after(c, frees - now);
			continue;
		}
		snprintf(msg, sizeof(msg), "%lld more notifications",
			 (long long)json_integer_value(n));
		snprintf(tag, sizeof(tag), "summary:%lld", ++ps->summaries);
		data = json_pack("{s:s, s:s, s:s, s:s}", "type", "summary",
				 "title", "PocketCoder", "message", msg, "chat",
				 "");
		t = data ? track_new(ps, user, data,
				     json_object_get(devs_by_user, user), NULL) :
			   NULL;
		json_decref(data);
		if (!t)
			return err_set(e, ERR_NOMEM, "out of memory");
		json_object_set_new(t, "summary", json_string("yes"));
		json_object_set_new(ps->tracks, tag, t);
		window_add(ps, user, now);
		json_object_del(ps->coalesced, user);
	}
	return 0;
}

/* Send what is due of every track, settle finished ones into writes. */
static int drive(struct rctx *c, struct pstate *ps, int64_t now,
		 json_t *writes, struct err *e)
{
	json_t *t, *d;
	const char *tag, *id, *st;
	void *tmp;
	int64_t next;
	bool open;
	int rc;

	json_object_foreach_safe(ps->tracks, tmp, tag, t) {
		open = false;
		json_object_foreach(json_object_get(t, "devices"), id, d) {
			st = jstr(d, "state");
			next = json_integer_value(json_object_get(d, "next"));
			if (!strcmp(st, "retrying") && next > now) {
				rctx_requeue_after(c, next - now);
				open = true;
				continue;
			}
			if (strcmp(st, "queued") && strcmp(st, "retrying")) {
				open = open || !dev_settled(st);
				continue;
			}
			json_object_set_new(d, "attempts", json_integer(
				json_integer_value(json_object_get(
					d, "attempts")) + 1));
			json_object_set_new(d, "state", json_string("inflight"));
			rc = submit(ps, tag, t, id, d, e);
			if (rc)
				return rc;
			open = true;
		}
		if (strcmp(jstr(t, "summary"), "yes") &&
		    (json_is_true(json_object_get(t, "dirty")) || !open))
			json_array_append_new(writes, json_pack(
				"{s:s, s:o}", "id", tag, "status",
				track_status(t, NULL)));
		json_object_set_new(t, "dirty", json_false());
		if (!open)
			json_object_del(ps->tracks, tag);
	}
	return 0;
}

/* Delete the oldest settled records beyond ps->keep (notes is in created
 * order). */
static void prune(struct pstate *ps, json_t *notes, json_t *writes)
{
	size_t settled = 0, i, drop;
	json_t *rec;

	json_array_foreach(notes, i, rec)
		settled += note_settled(rec);
	if (settled <= ps->keep)
		return;
	drop = settled - ps->keep;
	json_array_foreach(notes, i, rec) {
		if (!drop)
			break;
		if (!note_settled(rec))
			continue;
		json_array_append_new(writes, json_pack("{s:s, s:b}", "id",
							jstr(rec, "id"),
							"delete", 1));
		drop--;
	}
}

/* ---- the reconciler ------------------------------------------------------- */

/*
 * The active devices (by_user: user -> [device records]) and the rules
 * (rules_by_user: user -> rules) of every user, read once a pass and only
 * when something is to be planned: a pass that only folds results in
 * reads neither.
 */
static int index_users(struct rctx *c, bool *done, json_t *by_user,
		       json_t *rules_by_user, struct err *e)
{
	json_t *devices, *rules, *rec, *list;
	size_t i;
	int rc;

	if (*done)
		return 0;
	rc = rctx_records(c, "devices", &devices, e);
	if (!rc)
		rc = rctx_records(c, "notification_rules", &rules, e);
	if (rc)
		return rc;
	json_array_foreach(devices, i, rec) {
		if (!json_is_true(json_object_get(json_object_get(rec, "data"),
						  "is_active")))
			continue;
		list = json_object_get(by_user, dstr(rec, "user"));
		if (!list) {
			list = json_array();
			json_object_set_new(by_user, dstr(rec, "user"), list);
		}
		json_array_append(list, rec);     /* borrowed from the pass */
	}
	json_array_foreach(rules, i, rec)
		json_object_set(rules_by_user, dstr(rec, "user"),
				json_object_get(json_object_get(rec, "data"),
						"rules"));
	*done = true;
	return 0;
}

static int push_reconcile(struct rctx *c, struct err *e)
{
	struct pstate *ps = rctx_state(c);
	json_t *notes, *rec, *summary;
	json_t *by_user = json_object(), *rules_by_user = json_object();
	json_t *writes = json_array(), *dev_writes = json_array();
	struct pushsend_result *res = NULL;
	int64_t now = util_monotonic_ms();
	bool indexed = false;
	size_t i, n;
	int rc;

	if (!by_user || !rules_by_user || !writes || !dev_writes) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = rctx_records(c, "notifications", &notes, e);
	if (rc)
		goto out;
	n = pushsend_collect(ps->send, &res);
	for (i = 0; i < n; i++)
		take_result(c, ps, &res[i], now, dev_writes);
	json_array_foreach(notes, i, rec) {
		if (rc)
			break;
		if (note_settled(rec) ||
		    json_object_get(ps->tracks, jstr(rec, "id")))
			continue;
		rc = index_users(c, &indexed, by_user, rules_by_user, e);
		if (!rc)
			rc = plan(c, ps, rec, by_user, rules_by_user, now,
				  writes, e);
	}
	if (!rc && json_object_size(ps->coalesced))
		rc = index_users(c, &indexed, by_user, rules_by_user, e);
	if (!rc)
		rc = summaries(c, ps, by_user, now, e);
	if (!rc)
		rc = drive(c, ps, now, writes, e);
	if (rc)
		goto out;
	prune(ps, notes, writes);
	rc = rctx_update(c, "notifications", writes, e);
	if (!rc)
		rc = rctx_update(c, "devices", dev_writes, e);
	summary = json_deep_copy(ps->totals);
	if (summary) {
		json_object_set_new(summary, "pending", json_integer(
				(json_int_t)pushsend_pending(ps->send)));
		json_object_set_new(summary, "tracked", json_integer(
				(json_int_t)json_object_size(ps->tracks)));
		json_object_set_new(summary, "relay", json_boolean(ps->relay));
		/* the pass's own cost, for the benchmark (status writes
		 * above included) */
		ps->passes++;
		json_object_set_new(summary, "passes", json_integer(ps->passes));
		json_object_set_new(summary, "lastPassMs", json_integer(
				util_monotonic_ms() - now));
		rctx_status_set(c, "deliveries", summary);  /* stolen */
	}
out:
	free(res);
	json_decref(by_user);
	json_decref(rules_by_user);
	json_decref(writes);
	json_decref(dev_writes);
	return rc;
}

static void push_stop(void *state)
{
	struct pstate *ps = state;

	if (!ps)
		return;
	pushsend_free(ps->send);
	free(ps->relay);
	free(ps->secret);
	json_decref(ps->tracks);
	json_decref(ps->windows);
	json_decref(ps->coalesced);
	json_decref(ps->totals);
	free(ps);
}

/* The relay's secret: the file's first line, else $PN_RELAY_SECRET. */
static int read_secret(const char *file, char **out, struct err *e)
{
	char line[SECRET_MAX + 2];
	const char *v;
	FILE *f;
	size_t n, i;

	*out = NULL;
	if (!file) {
		v = getenv("PN_RELAY_SECRET");
		snprintf(line, sizeof(line), "%s", v ? v : "");
	} else {
		f = fopen(file, "re");
		if (!f)
			return err_set(e, ERR_IO, "--push-relay-secret-file "
				       "'%s': cannot read it", file);
		if (!fgets(line, sizeof(line), f))
			line[0] = '\0';
		fclose(f);
	}
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	for (i = 0; i < n; i++)
		if (iscntrl((unsigned char)line[i]))
			return err_set(e, ERR_INVALID, "the relay secret holds "
				       "a control character");
	if (!n)
		return 0;
	*out = strdup(line);
	return *out ? 0 : err_set(e, ERR_NOMEM, "out of memory");
}

static int push_start(const struct reconciler_env *env, void **state,
		      struct err *e)
{
	const struct push_options *o = env->push;
	struct netguard_cidr allow[PUSH_ALLOW_MAX];
	struct pushsend_opts so;
	struct pstate *ps = calloc(1, sizeof(*ps));
	size_t i;
	int rc = 0;

	if (!ps)
		return err_set(e, ERR_NOMEM, "out of memory");
	memset(&so, 0, sizeof(so));
	for (i = 0; o && i < o->nallow && !rc; i++)
		rc = netguard_cidr_parse(o->allow[i], &allow[so.nallow++], e);
	if (!rc && o && o->relay && *o->relay) {
		ps->relay = strdup(o->relay);
		if (!ps->relay)
			rc = err_set(e, ERR_NOMEM, "out of memory");
	}
	if (!rc)
		rc = read_secret(o ? o->relay_secret_file : NULL, &ps->secret, e);
	ps->rate = o ? o->rate : PUSH_RATE_DEFAULT;
	pushsend_retry_env(&ps->retry, &so, "POCKETCTL_PUSH", 8);
	ps->keep = (size_t)util_env_int("POCKETCTL_PUSH_KEEP", 1000, 1,
					1000000);
	ps->tracks = json_object();
	ps->windows = json_object();
	ps->coalesced = json_object();
	ps->totals = json_object();
	if (!rc && (!ps->tracks || !ps->windows || !ps->coalesced ||
		    !ps->totals))
		rc = err_set(e, ERR_NOMEM, "out of memory");
	so.allow = allow;
	so.wake = env->wake;
	so.wake_arg = env->wake_arg;
	if (!rc)
		rc = pushsend_new(&ps->send, &so, e);
	if (rc) {
		push_stop(ps);
		return rc;
	}
	*state = ps;
	return 0;
}

const struct reconciler rec_push = {
	.name = "push",
	.description = "notifications -> UnifiedPush and the FCM relay",
	.reads = push_reads,
	.start = push_start,
	.stop = push_stop,
	.reconcile = push_reconcile,
};
