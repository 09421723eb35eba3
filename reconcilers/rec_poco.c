/*
 * rec_poco.c - tell Poco (the agent, through OpenCode's server API) when
 * an MCP server becomes available, is revoked or is denied: every chat
 * with an OpenCode session (`ai_engine_session_id`) active within
 * --poco-notify-window gets POST {--opencode-url}/session/<id>/prompt_async
 * with the original's "[SYSTEM] MCP server '<n>' ..." text.
 *
 * Not before the gateway runs with the new config: a state change waits
 * until the rendered docker-mcp.yaml and mcp.env on disk are what the
 * current records render to and, when a running `containers` record
 * mounts either file (the MCP gateway), until that container's
 * appliedHash is the hash of its files as they are now (rec_containers
 * confirmed it restarted with them). Without such a container the files
 * being in place is enough.
 *
 * At most once per server and state change, across restarts: the change
 * and its delivery live in the server record's status (`poco`: the state
 * told, the chats chosen when it became ready, each chat's attempts and
 * outcome), written before the first request goes out; a restart resumes
 * it and never picks new chats for it. The requests go out on the push
 * sender's thread (pushsend.h: curl multi, timeouts, capped answers);
 * 5xx, timeouts and network errors are retried with capped exponential
 * backoff and jitter, other answers settle the chat. A request whose
 * answer never came before a restart is sent again (at least once).
 * Failures show in that status and in the reconciler's; a pass never
 * waits for OpenCode.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "containers.h"
#include "pushsend.h"
#include "reconciler.h"
#include "render.h"
#include "util.h"

#define WAIT_POLL_MS 500          /* look again at a gateway not ready */
#define SESSION_MAX 128           /* an OpenCode session id's length */
#define LAST_ERROR_MAX 300

static const char *const poco_reads[] = {
	"mcp_servers", "chats", "containers", RECONCILER_READS_FILES, NULL
};

struct poco {
	struct pushsend *send;
	char *url;                  /* OpenCode's base URL, no trailing '/' */
	char *root;                 /* the render root */
	int64_t window_ms;
	struct pushsend_retry retry;   /* attempts, backoff */
	json_t *inflight;           /* "server/gen/chat" -> 1: submitted by this
	                             * process, result not yet folded in */
	json_t *due;                /* "server/gen/chat" -> monotonic ms of the
	                             * next attempt */
	json_t *totals;             /* outcome -> count, since start */
	char last_error[LAST_ERROR_MAX]; /* the newest failed attempt */
	char failing[LAST_ERROR_MAX];    /* this pass: a chat retrying */
};

static const char *jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static bool told_state(const char *s)
{
	return !strcmp(s, "approved") || !strcmp(s, "revoked") ||
	       !strcmp(s, "denied");
}

static bool chat_settled(const char *s)
{
	return !strcmp(s, "sent") || !strcmp(s, "failed");
}

static void count(struct poco *ps, const char *what)
{
	json_t *v = json_object_get(ps->totals, what);

	json_object_set_new(ps->totals, what,
			    json_integer(json_integer_value(v) + 1));
}

/* The original's words for state (reference §6.3). */
static char *message(const char *name, const char *state)
{
	char *m = NULL;
	int n;

	if (!strcmp(state, "approved"))
		n = asprintf(&m, "[SYSTEM] MCP server '%s' is now available. "
			     "Sandbox agents can connect to the gateway at "
			     "http://mcp-gateway:8811/sse.", name);
	else if (!strcmp(state, "revoked"))
		n = asprintf(&m, "[SYSTEM] MCP server '%s' has been revoked and "
			     "is no longer available to sandbox agents.", name);
	else
		n = asprintf(&m, "[SYSTEM] MCP server '%s' request was denied "
			     "by the user.", name);
	return n < 0 ? NULL : m;
}

/* An OpenCode session id goes into the URL's path: letters, digits, '_'
 * and '-' only, so that a chat's field can never reach another route. */
static bool session_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (!n || n > SESSION_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
		    !(s[i] >= '0' && s[i] <= '9') && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

/* ---- the gate: the gateway runs with the new config ---------------------- */

/* path relative to the root, or NULL when it lies outside it. */
static const char *rel_path(struct poco *ps, const char *path)
{
	size_t n = strlen(ps->root);

	if (!path || strncmp(path, ps->root, n) || path[n] != '/')
		return NULL;
	return path + n + 1;
}

/* Does the files array of a container name rel (itself, or a directory
 * "dir/" above it)? */
static bool mounts(json_t *files, const char *rel)
{
	json_t *f;
	size_t i, n;
	const char *s;

	if (!rel)
		return false;
	json_array_foreach(files, i, f) {
		s = json_string_value(f);
		if (!s)
			continue;
		n = strlen(s);
		if (!strcmp(s, rel) ||
		    (n && s[n - 1] == '/' && !strncmp(s, rel, n)))
			return true;
	}
	return false;
}

/* Is the file at path (NULL: turned off) exactly want? */
static int file_is(struct rctx *c, const char *path, const struct buf *want,
		   bool *same, struct err *e)
{
	struct buf have = BUF_INIT;
	bool exists = false;
	int rc;

	*same = true;
	if (!path)
		return 0;
	rc = rctx_read(c, path, &have, &exists, e);
	if (!rc)
		*same = exists && have.len == want->len &&
			!memcmp(have.ptr, want->ptr, want->len);
	buf_release(&have);
	return rc;
}

/*
 * *ready: the rendered files are in place and every running container
 * that mounts them was confirmed started with them; otherwise why says
 * what is awaited.
 */
static int gateway_ready(struct rctx *c, struct poco *ps, json_t *servers,
			 bool *ready, char *why, size_t whylen, struct err *e)
{
	const char *pc = rctx_path(c, "docker_mcp_yaml");
	const char *pe = rctx_path(c, "mcp_env");
	struct buf cat = BUF_INIT, env = BUF_INIT;
	char hash[CONTAINERS_HASH_LEN + 1];
	json_t *warnings = json_array(), *ctrs, *rec, *data, *files;
	struct err he = ERR_INIT;
	bool same_c = true, same_e = true;
	size_t i;
	int rc;

	*ready = false;
	if (!warnings)
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = render_docker_mcp(servers, pc ? &cat : NULL, pe ? &env : NULL,
			       warnings, e);
	if (rc == ERR_INVALID) {        /* rec_docker_mcp reports it */
		snprintf(why, whylen, "the gateway's files cannot be "
			 "rendered: %.400s", e->msg);
		err_clear(e);
		rc = 0;
		goto out;
	}
	if (!rc)
		rc = file_is(c, pc, &cat, &same_c, e);
	if (!rc)
		rc = file_is(c, pe, &env, &same_e, e);
	if (rc == ERR_UNAVAILABLE) {    /* being written: look again */
		snprintf(why, whylen, "%.400s", e->msg);
		err_clear(e);
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	if (!same_c || !same_e) {
		snprintf(why, whylen, "the gateway's files ('%s') are not yet "
			 "rendered from the new records", !same_c ? pc : pe);
		goto out;
	}
	rc = rctx_records(c, "containers", &ctrs, e);
	if (rc)
		goto out;
	json_array_foreach(ctrs, i, rec) {
		data = json_object_get(rec, "data");
		files = json_object_get(data, "files");
		if (!json_is_true(json_object_get(data, "running")) ||
		    (!mounts(files, rel_path(ps, pc)) &&
		     !mounts(files, rel_path(ps, pe))))
			continue;
		if (containers_hash_files(ps->root, files, hash, NULL, &he)) {
			snprintf(why, whylen, "container '%.64s': %.300s",
				 jstr(rec, "name"), he.msg);
			err_clear(&he);
			goto out;
		}
		if (strcmp(jstr(json_object_get(rec, "status"), "appliedHash"),
			   hash)) {
			snprintf(why, whylen, "container '%s' does not yet run "
				 "with the new config", jstr(rec, "name"));
			goto out;
		}
	}
	*ready = true;
out:
	json_decref(warnings);
	buf_release(&cat);
	buf_release(&env);
	return rc;
}

/* ---- delivery ------------------------------------------------------------- */

/* The chats told about a change: an OpenCode session, active within the
 * window; one chat per session (the first in created order), so that a
 * session shared by two chats is told once. */
static json_t *targets(struct poco *ps, json_t *chats)
{
	char cutoff[TIME_LEN + 1];
	struct timespec ts;
	json_t *out = json_array(), *seen = json_object(), *rec, *data;
	const char *sess, *id;
	size_t i;

	if (!out || !seen) {
		json_decref(out);
		json_decref(seen);
		return NULL;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	util_format_ms((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 -
		       ps->window_ms, cutoff);
	json_array_foreach(chats, i, rec) {
		data = json_object_get(rec, "data");
		sess = jstr(data, "ai_engine_session_id");
		id = jstr(rec, "id");
		if (!*sess || strcmp(jstr(data, "last_active"), cutoff) < 0 ||
		    json_object_get(seen, sess))
			continue;
		json_object_set_new(seen, sess, json_true());
		if (!session_ok(sess))
			json_array_append_new(out, json_pack(
				"{s:s, s:s, s:s, s:i, s:i, s:s}", "chat", id,
				"session", "", "state", "failed", "attempts", 0,
				"code", 0, "error", "ai_engine_session_id is not "
				"an OpenCode session id ([A-Za-z0-9_-], at most "
				"128)"));
		else
			json_array_append_new(out, json_pack(
				"{s:s, s:s, s:s, s:i, s:i, s:s}", "chat", id,
				"session", sess, "state", "queued", "attempts",
				0, "code", 0, "error", ""));
	}
	json_decref(seen);
	return out;
}

static int submit(struct poco *ps, const char *key, const char *tag,
		  const char *msg, json_t *ch, struct err *e)
{
	const char *hdrs[] = { "Content-Type: application/json", NULL };
	struct pushsend_req r;
	json_t *body;
	char *text = NULL, *url = NULL;
	int rc;

	body = json_pack("{s:[{s:s, s:s}]}", "parts", "type", "text", "text",
			 msg);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text || asprintf(&url, "%s/session/%s/prompt_async", ps->url,
			      jstr(ch, "session")) < 0) {
		free(text);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	memset(&r, 0, sizeof(r));
	r.tag = tag;
	r.device = jstr(ch, "chat");
	r.attempt = (int)json_integer_value(json_object_get(ch, "attempts"));
	r.url = url;
	r.body = text;
	r.headers = hdrs;
	r.guard = false;     /* the operator's own OpenCode */
	rc = pushsend_submit(ps->send, &r, e);
	if (!rc)
		json_object_set_new(ps->inflight, key, json_true());
	free(text);
	free(url);
	return rc;
}

/* Fold result res into chat entry ch (of the server's delivery). */
static void take_result(struct rctx *c, struct poco *ps, const char *key,
			const struct pushsend_result *res, json_t *ch,
			int64_t now)
{
	int attempts = (int)json_integer_value(json_object_get(ch, "attempts"));
	char why[PUSHSEND_ERR_MAX + 64];
	const char *state;

	snprintf(why, sizeof(why), "%s", res->error);
	if (res->code >= 200 && res->code < 300) {
		state = "sent";
	} else if (res->code >= 300 && res->code < 500) {
		state = "failed";
		snprintf(why, sizeof(why), "OpenCode answered %ld (not "
			 "retried)", res->code);
	} else if (attempts < ps->retry.max_attempts) {
		state = "retrying";
		if (res->code)
			snprintf(why, sizeof(why), "OpenCode answered %ld",
				 res->code);
		json_object_set_new(ps->due, key, json_integer(
					    now + pushsend_backoff(&ps->retry, attempts)));
	} else {
		state = "failed";
		if (res->code)
			snprintf(why, sizeof(why), "OpenCode answered %ld; gave "
				 "up after %d attempts", res->code, attempts);
		else
			snprintf(why, sizeof(why), "%.200s; gave up after %d "
				 "attempts", res->error, attempts);
	}
	json_object_set_new(ch, "state", json_string(state));
	json_object_set_new(ch, "code", json_integer(res->code));
	json_object_set_new(ch, "error", json_string(why));
	json_object_set_new(ch, "at", json_string(rctx_now(c)));
	count(ps, state);
	if (*why && strcmp(state, "sent"))
		snprintf(ps->last_error, sizeof(ps->last_error),
			 "chat %.32s: %.250s", jstr(ch, "chat"), why);
}

/* Drive the delivery of one server's change (work, its poco status). */
static int drive(struct rctx *c, struct poco *ps, const char *server,
		 const char *name, json_t *work, const struct pushsend_result *res,
		 json_t *got, int64_t now, struct err *e)
{
	json_t *chats = json_object_get(work, "chats"), *ch, *j;
	const char *st, *chat;
	char tag[PUSHSEND_TAG_MAX], key[2 * PUSHSEND_TAG_MAX + 2];
	char *msg = NULL;
	size_t i, sent = 0, settled = 0;
	int64_t next;
	int rc = 0;

	/* the change's own tag: a result of an earlier change of the same
	 * server can never settle this one */
	snprintf(tag, sizeof(tag), "%.32s/%lld", server, (long long)
		 json_integer_value(json_object_get(work, "generation")));
	json_array_foreach(chats, i, ch) {
		chat = jstr(ch, "chat");
		snprintf(key, sizeof(key), "%s/%.32s", tag, chat);
		j = json_object_get(got, key);
		if (j && !strcmp(jstr(ch, "state"), "inflight"))
			take_result(c, ps, key, &res[json_integer_value(j)], ch,
				    now);
		st = jstr(ch, "state");
		/* an answer that never came before a restart: send again */
		if (!strcmp(st, "inflight") && !json_object_get(ps->inflight, key))
			st = "queued";
		next = json_integer_value(json_object_get(ps->due, key));
		if (!strcmp(st, "retrying") && !*ps->failing)
			snprintf(ps->failing, sizeof(ps->failing),
				 "chat %.32s: %.250s", chat, jstr(ch, "error"));
		if (!strcmp(st, "retrying") && next > now) {
			rctx_requeue_after(c, next - now);
			continue;
		}
		if (strcmp(st, "queued") && strcmp(st, "retrying")) {
			sent += !strcmp(st, "sent");
			settled += chat_settled(st);
			continue;
		}
		if (!msg)
			msg = message(name, jstr(work, "state"));
		if (!msg) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			break;
		}
		json_object_del(ps->due, key);
		json_object_set_new(ch, "attempts", json_integer(
			json_integer_value(json_object_get(ch, "attempts")) + 1));
		json_object_set_new(ch, "state", json_string("inflight"));
		rc = submit(ps, key, tag, msg, ch, e);
		if (rc)
			break;
	}
	free(msg);
	if (!rc && settled == json_array_size(chats))
		json_object_set_new(work, "phase", json_string(
			!settled ? "nochat" : sent == settled ? "sent" :
			sent ? "partial" : "failed"));
	return rc;
}

/* ---- the reconciler ------------------------------------------------------- */

/* The next poco status of server rec (a new object; NULL: out of memory):
 * its stored one, or a new change to tell when its state is another. */
static json_t *advance(struct rctx *c, json_t *rec, bool *changed)
{
	json_t *old = json_object_get(json_object_get(rec, "status"), "poco");
	const char *state = jstr(json_object_get(rec, "data"), "status");

	*changed = false;
	if (json_is_object(old) && !strcmp(jstr(old, "state"), state))
		return json_deep_copy(old);
	*changed = true;
	return json_pack("{s:s, s:I, s:s, s:s, s:[]}", "state", state,
			 "generation", json_integer_value(json_object_get(
				 rec, "generation")), "phase",
			 told_state(state) ? "waiting" : "none", "changedAt",
			 rctx_now(c), "chats");
}

static int poco_reconcile(struct rctx *c, struct err *e)
{
	struct poco *ps = rctx_state(c);
	json_t *servers = NULL, *chats = NULL, *rec, *old, *work = NULL, *list;
	json_t *writes = json_array(), *got = json_object(), *summary;
	char key[2 * PUSHSEND_TAG_MAX + 2];
	struct pushsend_result *res = NULL;
	int64_t now = util_monotonic_ms();
	char why[512] = "";
	bool ready = false, looked = false, changed;
	size_t i, nres, waiting = 0, delivering = 0;
	const char *phase;
	int rc;

	nres = pushsend_collect(ps->send, &res);
	/* every result collected is out of flight, folded in or not: an
	 * entry still "inflight" without one is sent again */
	for (i = 0; i < nres; i++) {
		snprintf(key, sizeof(key), "%s/%s", res[i].tag, res[i].device);
		json_object_del(ps->inflight, key);
		json_object_set_new(got, key, json_integer((json_int_t)i));
	}
	*ps->failing = '\0';
	if (!writes || !got) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = rctx_records(c, "mcp_servers", &servers, e);
	json_array_foreach(servers, i, rec) {
		if (rc)
			break;
		work = advance(c, rec, &changed);
		if (!work) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			break;
		}
		phase = jstr(work, "phase");
		if (!strcmp(phase, "waiting")) {
			if (!looked)
				rc = gateway_ready(c, ps, servers, &ready, why,
						   sizeof(why), e);
			looked = true;
			if (rc)
				break;
			if (!ready) {
				json_object_set_new(work, "reason",
						    json_string(why));
				rctx_requeue_after(c, WAIT_POLL_MS);
				waiting++;
			} else {
				/* read only now: chats change on every message */
				if (!chats)
					rc = rctx_records(c, "chats", &chats, e);
				if (rc)
					break;
				list = targets(ps, chats);
				if (!list) {
					rc = err_set(e, ERR_NOMEM, "out of memory");
					break;
				}
				json_object_set_new(work, "chats", list);
				json_object_set_new(work, "phase",
						    json_string("delivering"));
				json_object_set_new(work, "readyAt",
						    json_string(rctx_now(c)));
				json_object_del(work, "reason");
				/* the chats chosen are written before the
				 * first request goes out: the next pass sends */
				rctx_requeue_after(c, 1);
				delivering++;
			}
		} else if (!strcmp(phase, "delivering")) {
			rc = drive(c, ps, jstr(rec, "id"), jstr(rec, "name"),
				   work, res, got, now, e);
			if (rc)
				break;
			if (!strcmp(jstr(work, "phase"), "delivering"))
				delivering++;
			else
				count(ps, "changesSettled");
		}
		old = json_object_get(json_object_get(rec, "status"), "poco");
		if (changed || !json_equal(old, work))
			json_array_append_new(writes, json_pack(
				"{s:s, s:{s:O}}", "id", jstr(rec, "id"),
				"status", "poco", work));
		json_decref(work);
		work = NULL;
	}
	json_decref(work);
	if (!rc)
		rc = rctx_update(c, "mcp_servers", writes, e);
	summary = json_deep_copy(ps->totals);
	if (summary) {
		json_object_set_new(summary, "waiting",
				    json_integer((json_int_t)waiting));
		json_object_set_new(summary, "delivering",
				    json_integer((json_int_t)delivering));
		json_object_set_new(summary, "pending", json_integer(
				(json_int_t)pushsend_pending(ps->send)));
		json_object_set_new(summary, "lastError",
				    json_string(ps->last_error));
		rctx_status_set(c, "poco", summary);   /* stolen */
	}
	if (!rc && *ps->failing)
		rctx_condition(c, "Delivered", "False", "Retrying",
			       ps->failing);
	else if (!rc)
		rctx_condition(c, "Delivered", "True", "NoneRetrying",
			       "no chat waits for a retry");
out:
	free(res);
	json_decref(writes);
	json_decref(got);
	return rc;
}

static void poco_stop(void *state)
{
	struct poco *ps = state;

	if (!ps)
		return;
	pushsend_free(ps->send);
	free(ps->url);
	free(ps->root);
	json_decref(ps->inflight);
	json_decref(ps->due);
	json_decref(ps->totals);
	free(ps);
}

static int poco_start(const struct reconciler_env *env, void **state,
		      struct err *e)
{
	const struct poco_options *o = env->poco;
	struct pushsend_opts so;
	struct poco *ps;
	size_t n;
	int rc = 0;

	if (!o || !o->url || !*o->url)
		return RECONCILER_OFF;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return err_set(e, ERR_NOMEM, "out of memory");
	ps->url = strdup(o->url);
	ps->root = strdup(env->root);
	ps->inflight = json_object();
	ps->due = json_object();
	ps->totals = json_object();
	if (!ps->url || !ps->root || !ps->inflight || !ps->due || !ps->totals)
		rc = err_set(e, ERR_NOMEM, "out of memory");
	n = ps->url ? strlen(ps->url) : 0;
	while (n && ps->url[n - 1] == '/')
		ps->url[--n] = '\0';
	ps->window_ms = o->window_ms > 0 ? o->window_ms : POCO_WINDOW_DEFAULT_MS;
	memset(&so, 0, sizeof(so));
	/* 20 attempts; a timeout of 10 s, the original's */
	pushsend_retry_env(&ps->retry, &so, "POCKETCTL_POCO", 20);
	so.wake = env->wake;
	so.wake_arg = env->wake_arg;
	if (!rc)
		rc = pushsend_new(&ps->send, &so, e);
	if (rc) {
		poco_stop(ps);
		return rc;
	}
	*state = ps;
	return 0;
}

const struct reconciler rec_poco = {
	.name = "poco",
	.description = "mcp_servers changes -> Poco's OpenCode sessions",
	.reads = poco_reads,
	.start = poco_start,
	.stop = poco_stop,
	.reconcile = poco_reconcile,
};
