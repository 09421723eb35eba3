/*
 * api_stream.c - /api/v1/watch and PocketBase's /api/realtime (see
 * api_stream.h): SSE handlers that check the caller, send the headers and
 * the first events on their civetweb worker, then hand the stream to the
 * stream pump (pump.h), which fills it from the hub as changes arrive,
 * filtered for the caller. With the pump off (POCKETCTL_STREAM_PUMP=0) the
 * worker runs the stream itself, as a blocking loop.
 *
 * Each change is formatted once per variant (privileged or public viewer,
 * watch or PocketBase shape) in the hub entry's cache, so a thousand
 * streams share one copy of each event body; a stream owns only its
 * cursor, a write buffer that is freed when it grew large, and (realtime)
 * its topic list.
 *
 * THREAD SAFETY NOTES: a stream's state belongs to its driver (the pump
 * thread, or its worker), except a realtime client's topics and bound
 * auth, which a POST on another worker replaces: those are guarded by the
 * client's mutex, and the POST reaches the client through the hub's client
 * table (whose lock is taken before the client's, never the other way
 * round).
 */
#include "api_stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "expand.h"
#include "store/filter.h"
#include "hub.h"
#include "pbjson.h"
#include "pick.h"
#include "pump.h"
#include "rules.h"
#include "server.h"
#include "sse.h"
#include "store/store.h"
#include "util.h"

#define BATCH 64                         /* entries taken per hub_fetch */
#define HEARTBEAT_MS 15000               /* default heartbeat interval */
#define RT_IDLE_MS (5 * 60 * 1000)       /* PocketBase's idle timeout */
#define RT_CLIENT_ID_LEN 40              /* PocketBase's client id length */
#define RT_MAX_SUBS 1000                 /* PocketBase's limits */
#define RT_MAX_TOPIC 2500
#define SUPERUSERS "_superusers"
#define STACK_KEEP 8192                  /* bytes kept below the frame */
#define TRIM_EVERY_MS 1000               /* stack trims, at most */

/* Cache slots of a hub entry (hub_entry_cache). */
enum {
	SLOT_WATCH_PRIV,    /* watch data, secrets included */
	SLOT_WATCH_PUB,     /* watch data, secrets left out */
	SLOT_PB_PRIV,       /* PocketBase record JSON, secrets included */
	SLOT_PB_PUB,        /* PocketBase record JSON for anyone else */
	SLOT_SNAPSHOT,      /* bind values of the snapshot row (JSON array) */
	SLOT_AUTH,          /* auth collections: the record as an auth record */
};

static int64_t heartbeat_ms(void)
{
	return util_env_int("POCKETCTL_HEARTBEAT_MS", HEARTBEAT_MS, 10, 3600000);
}

/* ---- memory ------------------------------------------------------------ */

/*
 * Give back the stack pages below the caller's frame. Before a stream
 * starts, the request path (token check, SQLite) went deep on this
 * worker's stack; a stream that then sleeps for hours would keep those
 * pages resident, some 20 KiB per stream, 20 MiB for a thousand. Memory
 * below the stack pointer is unused by definition; pages needed again are
 * faulted back in as zeroes. The bound is this function's own frame
 * address: it must not be inlined (the caller's frame pointer register may
 * hold anything when frame pointers are omitted; a function that takes its
 * frame address always gets one), and a local's address would not do
 * either, as sanitizers may keep locals on a separate fake stack.
 */
__attribute__((noinline)) static void stack_trim(void)
{
	uintptr_t lo, top, pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	pthread_attr_t a;
	void *addr = NULL;
	size_t size = 0;
	int rc;

	if (pthread_getattr_np(pthread_self(), &a) != 0)
		return;
	rc = pthread_attr_getstack(&a, &addr, &size);
	pthread_attr_destroy(&a);
	if (rc != 0 || !addr || !size)
		return;
	lo = ((uintptr_t)addr + pg - 1) & ~(pg - 1);
	top = ((uintptr_t)__builtin_frame_address(0) - STACK_KEEP) & ~(pg - 1);
	if (top > lo && top < (uintptr_t)addr + size)
		madvise((void *)lo, top - lo, MADV_DONTNEED);
}

/* ---- entries -------------------------------------------------------------- */

/* A borrowed struct record view of a change-log record (never released). */
static void entry_record(const struct hub_entry *en, json_t *record,
			 struct record *r)
{
	const char *v;

	memset(r, 0, sizeof(*r));
	snprintf(r->collection, sizeof(r->collection), "%s", en->collection);
	snprintf(r->id, sizeof(r->id), "%s", en->id);
	r->name = en->name;
	r->data = json_object_get(record, "data");
	r->labels = json_object_get(record, "labels");
	r->status = json_object_get(record, "status");
	r->generation = json_integer_value(json_object_get(record, "generation"));
	r->revision = json_integer_value(json_object_get(record, "revision"));
	v = json_string_value(json_object_get(record, "created"));
	snprintf(r->created, sizeof(r->created), "%s", v ? v : "");
	v = json_string_value(json_object_get(record, "updated"));
	snprintf(r->updated, sizeof(r->updated), "%s", v ? v : "");
}

static char *dump(json_t *v, size_t *len)
{
	char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;

	*len = s ? strlen(s) : 0;
	return s;
}

/* PocketBase's JSON of the record, for a privileged viewer (admin or
 * owner) or for anyone else. */
static json_t *pb_json(const struct hub_entry *en, json_t *record,
		       const struct schema *s, bool priv)
{
	struct http_auth viewer;
	struct record r;

	if (!en->coll)
		return NULL;
	memset(&viewer, 0, sizeof(viewer));
	viewer.kind = priv ? CALLER_SUPERUSER : CALLER_GUEST;
	entry_record(en, record, &r);
	return pb_record_json(s, en->coll, &r, &viewer);
}

static char *fmt_pb(const struct hub_entry *en, json_t *record, void *arg,
		    bool priv, size_t *len)
{
	json_t *j = pb_json(en, record, arg, priv);
	char *s = dump(j, len);

	json_decref(j);
	return s;
}

static char *fmt_pb_priv(const struct hub_entry *en, json_t *record,
			 void *arg, size_t *len)
{
	return fmt_pb(en, record, arg, true, len);
}

static char *fmt_pb_pub(const struct hub_entry *en, json_t *record,
			void *arg, size_t *len)
{
	return fmt_pb(en, record, arg, false, len);
}

/* The watch event data: the store's record form with its data reduced to
 * what PocketBase would show the viewer. */
static char *fmt_watch(const struct hub_entry *en, json_t *record, void *arg,
		       bool priv, size_t *len)
{
	static const char *const sys[] = {
		"id", "collectionId", "collectionName", "created", "updated",
	};
	json_t *pb = NULL, *rec = NULL, *out = NULL, *v;
	const char *key;
	char *s = NULL;
	size_t i;

	pb = pb_json(en, record, arg, priv);
	rec = json_object();
	if (!pb || !rec)
		goto out;
	for (i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
		json_object_del(pb, sys[i]);
	json_object_foreach(record, key, v) {
		/* json_object_set adds a reference to the borrowed value. */
		if (strcmp(key, "data") != 0 && json_object_set(rec, key, v))
			goto out;
	}
	if (json_object_set(rec, "data", pb))
		goto out;
	/* "o" steals rec (also on failure). */
	out = json_pack("{s:I, s:s, s:s, s:s, s:s, s:b, s:o}",
			"revision", (json_int_t)en->revision,
			"collection", en->collection, "id", en->id,
			"name", en->name, "action", en->action,
			"statusOnly", en->status_only, "record", rec);
	rec = NULL;
	s = dump(out, len);
out:
	json_decref(pb);
	json_decref(rec);
	json_decref(out);
	return s;
}

static char *fmt_watch_priv(const struct hub_entry *en, json_t *record,
			    void *arg, size_t *len)
{
	return fmt_watch(en, record, arg, true, len);
}

static char *fmt_watch_pub(const struct hub_entry *en, json_t *record,
			   void *arg, size_t *len)
{
	return fmt_watch(en, record, arg, false, len);
}

/* The snapshot row, in the column order of QUERY_ON_RECORD's row. */
static char *fmt_snapshot(const struct hub_entry *en, json_t *record,
			  void *arg, size_t *len)
{
	char *data, *labels, *status, *s = NULL;
	json_t *row;
	size_t n;

	(void)arg;
	data = dump(json_object_get(record, "data"), &n);
	labels = dump(json_object_get(record, "labels"), &n);
	status = dump(json_object_get(record, "status"), &n);
	row = json_pack("[s, s, s, s?, s?, s?, I, I, s?, s?]",
			en->collection, en->id, en->name, data, labels, status,
			json_integer_value(json_object_get(record, "generation")),
			(json_int_t)en->revision,
			json_string_value(json_object_get(record, "created")),
			json_string_value(json_object_get(record, "updated")));
	s = dump(row, len);
	json_decref(row);
	free(data);
	free(labels);
	free(status);
	return s;
}

/* An auth collection's record as the server binds callers: its data
 * without the password hash and tokenKey, plus id and collection. */
static char *fmt_auth(const struct hub_entry *en, json_t *record, void *arg,
		      size_t *len)
{
	json_t *data = json_deep_copy(json_object_get(record, "data"));
	char *s = NULL;

	(void)arg;
	if (!data || !en->coll || !en->coll->auth)
		goto out;
	json_object_del(data, "password");
	json_object_del(data, "tokenKey");
	if (json_object_set_new(data, "id", json_string(en->id)) ||
	    json_object_set_new(data, "collectionId",
				json_string(en->coll->id)) ||
	    json_object_set_new(data, "collectionName",
				json_string(en->coll->name)))
		goto out;
	s = dump(data, len);
out:
	json_decref(data);
	return s;
}

/* ---- access ------------------------------------------------------------ */

/* The viewer may see en's secret fields: an admin, or its owner. */
static bool privileged(const struct http_auth *a, const struct hub_entry *en)
{
	if (pb_viewer_is_admin(a))
		return true;
	if (!en->coll || !en->owner[0] || a->kind == CALLER_GUEST ||
	    strcmp(en->owner, a->id) != 0)
		return false;
	if (en->coll->auth)
		return strcmp(a->collection_id, en->coll->id) == 0;
	return a->kind == CALLER_USER;
}

/*
 * The rule is evaluated on the change-log snapshot of the record
 * (QUERY_ON_RECORD), not on the stored row, which may have changed since
 * or be gone; relation paths still read the store. store_count() needs an
 * outer row to hang that condition on: the _superusers collection always
 * has one while the server runs (the local CLI's account).
 */
/* Set when visible() ran a query on this thread's stack (see
 * stack_trim()); the stream loops read and clear it. */
static _Thread_local bool ran_sql;

/*
 * A stream's verdicts on rules that read nothing of the record, such as
 * '@request.auth.id != ""' (filter_reads_record()): one holds for every
 * event of its collection while the viewer's auth record stays the same,
 * so it is checked once, not once per event (a query each time). One
 * V_* per collection and action (view, list); all V_UNKNOWN (zero) when
 * made, and again whenever the stream's auth record changes.
 */
enum { V_UNKNOWN = 0, V_PER_RECORD, V_NO, V_YES };

static signed char *verdicts_new(const struct schema *s)
{
	return calloc(s->ncollections * 2 + 1, 1);
}

static void verdicts_forget(signed char *v, const struct schema *s)
{
	if (v)
		memset(v, V_UNKNOWN, s->ncollections * 2);
}

/*
 * 1 when the viewer a may see en under rule action act of its collection
 * and en matches filter (NULL or "" for none); 0 otherwise, including when
 * anything fails (a stream never delivers what it could not check).
 * verdicts (nullable): the stream's, see above.
 */
static int visible(struct server *srv, struct hub_entry *en,
		   enum rule_action act, const struct http_auth *a,
		   const char *filter, signed char *verdicts)
{
	signed char *v = NULL;
	struct filter_auth fa;
	struct store_query q;
	struct err e = ERR_INIT;
	struct query_pred *rp = NULL, *fp = NULL, *where = NULL;
	json_t *row = NULL;
	const char *rule, *text;
	bool su = a->kind == CALLER_SUPERUSER, nofilter = !filter || !*filter;
	int64_t count = 0;
	size_t n = 0;
	int ok = 0;

	if (!en->coll)
		return 0;
	rule = en->coll->rules[act];
	if (!su && !rule)
		return 0;
	if (nofilter && (su || !*rule))
		return 1;
	if (verdicts && nofilter && (act == RULE_VIEW || act == RULE_LIST)) {
		v = &verdicts[(en->coll - srv->schema->collections) * 2 +
			      (act == RULE_LIST)];
		if (*v == V_YES || *v == V_NO)
			return *v == V_YES;
		if (*v == V_UNKNOWN && filter_reads_record(rule))
			*v = V_PER_RECORD;
		if (*v == V_PER_RECORD)
			v = NULL;
	}
	text = hub_entry_cache(en, SLOT_SNAPSHOT, fmt_snapshot, NULL, &n);
	row = text ? json_loadb(text, n, 0, NULL) : NULL;
	if (!json_is_array(row))
		goto out;
	memset(&fa, 0, sizeof(fa));
	fa.superuser = su;
	fa.record = a->record;
	if (rules_where(srv->schema, en->coll, act, &fa, &rp, &e))
		goto out;
	if (!nofilter && filter_compile(srv->schema, en->coll, filter, &fa,
					&fp, &e))
		goto out;
	/* the rule, and the filter when there is one; row and both are
	 * where's now */
	where = query_on_record(row, nofilter ? rp : query_and(rp, fp));
	row = NULL;
	rp = fp = NULL;
	if (!where)
		goto out;
	memset(&q, 0, sizeof(q));
	q.where = where;
	ran_sql = true;
	if (store_count(srv->store, SUPERUSERS, &q, &count, &e) == 0) {
		ok = count > 0;
		if (v)      /* only a verdict that was reached is kept */
			*v = ok ? V_YES : V_NO;
	}
out:
	query_pred_free(rp);
	query_pred_free(fp);
	query_pred_free(where);
	json_decref(row);
	return ok;
}

/* ---- /api/v1/watch --------------------------------------------------- */

/*
 * Mark the collections named in every ?collection= value (comma lists)
 * in want[]. Returns 0 (with *any set when at least one was named) or
 * ERR_INVALID with e naming the unknown one.
 */
static int watch_collections(struct http_req *r, bool *want, bool *any,
			     struct err *e)
{
	const struct schema *s = r->srv->schema;
	const char *q = r->ri->query_string;
	char val[1024], *tok, *save = NULL;
	const struct collection *c;
	int occ, n;

	*any = false;
	if (!q)
		return 0;
	for (occ = 0;; occ++) {
		n = mg_get_var2(q, strlen(q), "collection", val, sizeof(val),
				(size_t)occ);
		if (n == -1)
			break;
		if (n < 0)
			return err_set_field(e, ERR_INVALID, "collection",
					     "the collection list is too long");
		for (tok = strtok_r(val, ", ", &save); tok;
		     tok = strtok_r(NULL, ", ", &save)) {
			c = schema_find_kind(s, tok);
			if (!c)
				c = schema_find_by_id(s, tok);
			if (!c)
				return err_set_field(e, ERR_INVALID,
						     "collection",
						     "unknown collection '%.100s'",
						     tok);
			want[c - s->collections] = true;
			*any = true;
		}
	}
	return 0;
}

/*
 * The resume point: Last-Event-ID, else ?since=. *have is false when
 * neither is given. Returns 0 or ERR_INVALID.
 */
static int watch_since(struct http_req *r, int64_t *since, bool *have,
		       struct err *e)
{
	const char *h = http_header(r, "Last-Event-ID"), *what;
	char val[64], *end = NULL;
	long long v;
	int n;

	*have = false;
	what = "Last-Event-ID";
	if (!h || !*h) {
		what = "since";
		n = http_query(r, "since", val, sizeof(val));
		if (n == -1)
			return 0;
		if (n < 0)
			return err_set_field(e, ERR_INVALID, "since",
					     "since must be a revision number");
		h = val;
	}
	errno = 0;
	v = strtoll(h, &end, 10);
	if (errno || !end || end == h || *end || v < 0)
		return err_set_field(e, ERR_INVALID, what,
				     "%s must be a revision number, not '%.40s'",
				     what, h);
	*since = v;
	*have = true;
	return 0;
}

static int send_reset(struct sse *s, int64_t head, const char *reason)
{
	return sse_json_event(s, head, "reset",
			      json_pack("{s:I, s:s}", "revision",
					(json_int_t)head, "reason", reason));
}

/* ---- running a stream ------------------------------------------------ */

/*
 * Run st on this worker until it ends, the client leaves or the server
 * stops (the stream pump is off), then release it.
 */
static void run_here(struct server *srv, struct sse_stream *st)
{
	int64_t last_trim = util_monotonic_ms(), now;
	bool deep = false;
	int rc;

	stack_trim();
	while (!srv->stopping && !sse_flush(&st->out)) {
		rc = st->fill(st, util_monotonic_ms());
		/* Replays from the store and access checks run SQLite on
		 * this stack: trim again before sleeping, now and then. */
		deep |= ran_sql || rc > 0;
		ran_sql = false;
		if (sse_flush(&st->out) || rc < 0)
			break;
		if (rc > 0)
			continue;
		now = util_monotonic_ms();
		if (deep && now - last_trim >= TRIM_EVERY_MS) {
			stack_trim();
			last_trim = now;
			deep = false;
		}
		if (hub_wait(srv->hub, st->cursor, st->wake_ms) == HUB_STOPPED)
			break;
	}
	sse_end(&st->out);
	st->release(st);
}

/*
 * The socket to hand a new stream to the pump (-1 when the pump is off,
 * or cannot take this one: then it runs on this worker), found before
 * anything is sent. Returns 0, or replies 503 and returns -1.
 */
static int stream_socket(struct http_req *r, int *fd)
{
	struct err e = ERR_INIT;

	*fd = -1;
	if (!r->srv->pump)
		return 0;
	*fd = pump_find_socket(r, &e);
	if (*fd >= 0)
		return 0;
	/* Not found (no /proc?): run it on this worker while there is room
	 * for such streams. */
	fprintf(stderr, "pocketctl: %s\n", e.msg);
	if (server_worker_stream_take(r->srv)) {
		r->worker_stream = true;
		return 0;
	}
	http_reply_error(r, &e);
	return -1;
}

/* Serve st, whose headers went out: through the pump when fd >= 0, else
 * on this worker. st belongs to the driver from here. */
static int stream_serve(struct http_req *r, int fd, struct sse_stream *st)
{
	struct err e = ERR_INIT;

	if (fd < 0) {
		run_here(r->srv, st);
		return 0;
	}
	if (pump_adopt(r->srv->pump, fd, st, &e) == 0) {
		r->detached = true;
		return 0;
	}
	/* Not adopted (the server is stopping): end it here. */
	if (e.code != ERR_UNAVAILABLE)
		fprintf(stderr, "pocketctl: %s\n", e.msg);
	sse_end(&st->out);
	st->release(st);
	return 0;
}

/* ---- /api/v1/watch ---------------------------------------------------- */

struct watch_stream {
	struct sse_stream base;          /* first: the drivers' view */
	struct server *srv;
	struct http_auth auth;           /* the caller; record owned */
	bool *want;                      /* collections asked for */
	bool any;                        /* want[] narrows the stream */
	signed char *verdicts;           /* see visible(); auth is fixed */
	int64_t hb, next_hb;             /* heartbeat interval, next one */
};

/* Append en to the watch stream when the caller may see it. */
static int watch_one(struct watch_stream *w, struct hub_entry *en)
{
	struct server *srv = w->srv;
	char idtext[32];
	const char *data;
	size_t n = 0;
	bool priv;

	if (w->any &&
	    (!en->coll || !w->want[en->coll - srv->schema->collections]))
		return 0;
	if (w->auth.kind != CALLER_SUPERUSER &&
	    !visible(srv, en, RULE_VIEW, &w->auth, NULL, w->verdicts))
		return 0;
	priv = privileged(&w->auth, en);
	data = hub_entry_cache(en, priv ? SLOT_WATCH_PRIV : SLOT_WATCH_PUB,
			       priv ? fmt_watch_priv : fmt_watch_pub,
			       (void *)srv->schema, &n);
	if (!data)
		return 0;   /* cannot happen short of memory; skip, not lie */
	snprintf(idtext, sizeof(idtext), "%lld", (long long)en->revision);
	return sse_event(&w->base.out, " ", idtext, en->action, data, n);
}

static int watch_fill(struct sse_stream *st, int64_t now)
{
	struct watch_stream *w = (struct watch_stream *)st;
	struct server *srv = w->srv;
	struct hub_entry *en[BATCH];
	struct err e = ERR_INIT;
	char reason[160];
	int64_t head;
	int n, i, rc = 0;

	n = hub_fetch(srv->hub, st->cursor, en, BATCH, &e);
	if (n == HUB_GAP) {
		head = store_head(srv->store);
		snprintf(reason, sizeof(reason),
			 "changes after revision %lld are no longer retained",
			 (long long)st->cursor);
		st->cursor = head;
		return send_reset(&st->out, head, reason) ? -1 : 1;
	}
	if (n < 0) {
		fprintf(stderr, "pocketctl: watch: %s\n", e.msg);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (!rc)
			rc = watch_one(w, en[i]);
		st->cursor = en[i]->revision;
	}
	hub_entries_put(en, n);
	if (rc)
		return -1;
	if (now >= w->next_hb && !sse_pending(&st->out)) {
		head = hub_head(srv->hub);
		if (sse_json_event(&st->out, st->cursor, "heartbeat",
				   json_pack("{s:I}", "revision",
					     (json_int_t)head)))
			return -1;
	}
	if (sse_pending(&st->out))
		w->next_hb = now + w->hb;
	st->wake_ms = w->next_hb;
	return n == BATCH ? 1 : 0;
}

static void watch_release(struct sse_stream *st)
{
	struct watch_stream *w = (struct watch_stream *)st;

	sse_release(&st->out);
	json_decref(w->auth.record);
	free(w->want);
	free(w->verdicts);
	free(w);
}

int api_watch(struct http_req *r)
{
	struct server *srv = r->srv;
	struct watch_stream *w;
	struct err e = ERR_INIT;
	char reason[160];
	bool have = false;
	int64_t since = 0, head, oldest;
	int fd, rc = 0;

	if (r->auth.kind == CALLER_GUEST)
		return http_fail(r, ERR_UNAUTHORIZED,
				 "The request requires valid record "
				 "authorization token.");
	if (!srv->hub)
		return http_fail(r, ERR_UNAVAILABLE, "the watch stream is not running");
	w = calloc(1, sizeof(*w));
	if (w)
		w->want = calloc(srv->schema->ncollections + 1,
				 sizeof(*w->want));
	if (w)
		w->verdicts = verdicts_new(srv->schema);
	if (w && r->auth.record)
		w->auth.record = json_deep_copy(r->auth.record);
	if (!w || !w->want || !w->verdicts ||
	    (r->auth.record && !w->auth.record)) {
		if (w)
			watch_release(&w->base);
		return http_fail(r, ERR_NOMEM, "out of memory");
	}
	w->srv = srv;
	w->auth.kind = r->auth.kind;
	memcpy(w->auth.id, r->auth.id, sizeof(w->auth.id));
	memcpy(w->auth.collection_id, r->auth.collection_id,
	       sizeof(w->auth.collection_id));
	w->base.fill = watch_fill;
	w->base.release = watch_release;
	rc = watch_collections(r, w->want, &w->any, &e);
	if (!rc)
		rc = watch_since(r, &since, &have, &e);
	if (rc) {
		watch_release(&w->base);
		return http_reply_error(r, &e);
	}
	if (stream_socket(r, &fd)) {
		watch_release(&w->base);
		return 0;
	}
	sse_init(&w->base.out, r);
	sse_start(r, &w->base.out);
	head = store_head(srv->store);
	w->base.cursor = head;
	if (have) {
		oldest = store_changelog_oldest(srv->store);
		if (since > head) {
			snprintf(reason, sizeof(reason),
				 "revision %lld is ahead of the store "
				 "(head %lld)", (long long)since, (long long)head);
			rc = send_reset(&w->base.out, head, reason);
		} else if (since < oldest - 1) {
			snprintf(reason, sizeof(reason),
				 "revision %lld is older than the retained "
				 "change log (oldest %lld)", (long long)since,
				 (long long)oldest);
			rc = send_reset(&w->base.out, head, reason);
		} else {
			w->base.cursor = since;
		}
	}
	w->hb = heartbeat_ms();
	w->next_hb = util_monotonic_ms() + w->hb;
	w->base.wake_ms = w->next_hb;
	if (rc) {
		watch_release(&w->base);
		return 0;
	}
	return stream_serve(r, fd, &w->base);
}

/* ---- /api/realtime ------------------------------------------------------ */

struct rt_sub {
	char *name;                       /* the topic as sent: event name */
	const struct collection *coll;
	char rid[ID_LEN + 1];             /* "" for every record (list rule) */
	char *filter;                     /* options.query.filter, or NULL */
	struct pick *fields;              /* options.query.fields, or NULL */
	json_t *expand;                   /* options.query.expand as a tree,
	                                   * or NULL */
};

struct rt_client {
	char id[RT_CLIENT_ID_LEN + 1];
	pthread_mutex_t lock;             /* guards everything below */
	struct rt_sub *subs;
	size_t nsubs;
	int64_t since;                    /* deliver only revisions after */
	struct http_auth auth;            /* bound by POST; record owned */
	const struct schema *schema;
	signed char *verdicts;            /* see visible(); forgotten when
	                                   * auth changes */
};

static void subs_free(struct rt_sub *subs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(subs[i].name);
		free(subs[i].filter);
		pick_free(subs[i].fields);
		json_decref(subs[i].expand);
	}
	free(subs);
}

static void client_id_new(char out[RT_CLIENT_ID_LEN + 1])
{
	char part[ID_LEN + 1];
	size_t n = 0, k;

	while (n < RT_CLIENT_ID_LEN) {
		util_new_id(part);
		k = RT_CLIENT_ID_LEN - n < ID_LEN ? RT_CLIENT_ID_LEN - n : ID_LEN;
		memcpy(out + n, part, k);
		n += k;
	}
	out[RT_CLIENT_ID_LEN] = '\0';
}

static bool same_auth(const struct http_auth *a, const struct http_auth *b)
{
	return a->kind == b->kind && strcmp(a->id, b->id) == 0 &&
	       strcmp(a->collection_id, b->collection_id) == 0;
}

/*
 * The realtime client's bound auth follows its record, as in PocketBase:
 * an update refreshes the data the rules see, a delete makes it a guest.
 * Called with the client lock held.
 */
static void rt_refresh_auth(struct rt_client *c, struct hub_entry *en)
{
	const char *text;
	json_t *rec;
	size_t n = 0;

	if (c->auth.kind == CALLER_GUEST || !en->coll || !en->coll->auth ||
	    strcmp(en->id, c->auth.id) != 0 ||
	    strcmp(en->coll->id, c->auth.collection_id) != 0)
		return;
	verdicts_forget(c->verdicts, c->schema);
	if (!strcmp(en->action, "delete")) {
		json_decref(c->auth.record);
		memset(&c->auth, 0, sizeof(c->auth));
		return;
	}
	text = hub_entry_cache(en, SLOT_AUTH, fmt_auth, NULL, &n);
	rec = text ? json_loadb(text, n, 0, NULL) : NULL;
	if (!rec)
		return;
	json_decref(c->auth.record);
	c->auth.record = rec;
}

struct rt_render_arg {
	const struct schema *schema;
	const struct http_auth *auth;
};

static json_t *rt_render(const struct collection *c, const struct record *rec,
			 void *arg)
{
	struct rt_render_arg *ra = arg;

	return pb_record_json(ra->schema, c, rec, ra->auth);
}

/*
 * options.query.expand of a subscription: the related records the viewer
 * may see, inlined into rec (the event's record JSON) under "expand", as
 * the records API does. Returns 0 (also when there is nothing to expand).
 */
static int rt_expand(struct server *srv, const struct http_auth *a,
		     const struct rt_sub *sub, struct hub_entry *en,
		     json_t *rec)
{
	struct rt_render_arg ra = { srv->schema, a };
	struct filter_auth fa;
	struct expand_ctx x;
	struct err e = ERR_INIT;
	int rc;

	if (!json_object_size(sub->expand) || !strcmp(en->action, "delete"))
		return 0;
	memset(&fa, 0, sizeof(fa));
	fa.superuser = a->kind == CALLER_SUPERUSER;
	fa.record = a->record;
	memset(&x, 0, sizeof(x));
	x.store = srv->store;
	x.schema = srv->schema;
	x.auth = &fa;
	x.render = rt_render;
	x.render_arg = &ra;
	rc = expand_apply(&x, en->coll, rec, rec, sub->expand, &e);
	expand_release(&x);
	return rc;
}

/* Buffer the events en produces for client c. Returns how many. */
static int rt_deliver(struct server *srv, struct rt_client *c,
		      struct sse *s, struct hub_entry *en)
{
	const char *rec;
	char *picked = NULL;
	json_t *j;
	size_t i, n = 0;
	int sent = 0;
	bool priv;

	pthread_mutex_lock(&c->lock);
	rt_refresh_auth(c, en);
	/* PocketBase has no status: a status-only write changes nothing the
	 * realtime record shows, so it is no realtime event. */
	if (en->revision <= c->since || !en->coll || en->status_only)
		goto out;
	priv = privileged(&c->auth, en);
	for (i = 0; i < c->nsubs; i++) {
		const struct rt_sub *sub = &c->subs[i];

		if (sub->coll != en->coll ||
		    (sub->rid[0] && strcmp(sub->rid, en->id) != 0))
			continue;
		if (!visible(srv, en, sub->rid[0] ? RULE_VIEW : RULE_LIST,
			     &c->auth, sub->filter, c->verdicts))
			continue;
		rec = hub_entry_cache(en, priv ? SLOT_PB_PRIV : SLOT_PB_PUB,
				      priv ? fmt_pb_priv : fmt_pb_pub,
				      (void *)srv->schema, &n);
		if (!rec)
			continue;
		if (sub->fields || sub->expand) {
			/* Per-topic expansion and projection: this copy is
			 * the topic's. Nothing is sent if either fails. */
			j = json_loadb(rec, n, 0, NULL);
			if (j && !rt_expand(srv, &c->auth, sub, en, j) &&
			    !pick_apply(sub->fields, j))
				picked = dump(j, &n);
			json_decref(j);
			if (!picked)
				continue;
			rec = picked;
		}
		if (!sse_out(s) ||
		    buf_printf(&s->out, "id:%s\nevent:%s\ndata:{\"action\":\"%s\","
			       "\"record\":", c->id, sub->name, en->action) ||
		    buf_add(&s->out, rec, n) || buf_puts(&s->out, "}\n\n")) {
			free(picked);
			goto out;
		}
		free(picked);
		picked = NULL;
		sent++;
	}
out:
	pthread_mutex_unlock(&c->lock);
	return sent;
}

static void client_free(struct rt_client *c)
{
	if (!c)
		return;
	subs_free(c->subs, c->nsubs);
	json_decref(c->auth.record);
	free(c->verdicts);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

struct rt_stream {
	struct sse_stream base;          /* first: the drivers' view */
	struct server *srv;
	struct rt_client *c;             /* registered with the hub */
	int64_t hb, next_hb;             /* heartbeat interval, next one */
	int64_t idle, last_msg;          /* idle limit, last event sent */
};

static int rt_fill(struct sse_stream *st, int64_t now)
{
	struct rt_stream *rs = (struct rt_stream *)st;
	struct server *srv = rs->srv;
	struct hub_entry *en[BATCH];
	struct err e = ERR_INIT;
	int n, i, sent = 0;

	if (now - rs->last_msg >= rs->idle)
		return -1;   /* forgotten client: PocketBase's idle rule */
	n = hub_fetch(srv->hub, st->cursor, en, BATCH, &e);
	if (n == HUB_GAP) {
		/* Realtime has no replay: skip to the present. */
		st->cursor = store_head(srv->store);
		return 1;
	}
	if (n < 0) {
		fprintf(stderr, "pocketctl: realtime: %s\n", e.msg);
		return -1;
	}
	for (i = 0; i < n; i++) {
		sent += rt_deliver(srv, rs->c, &st->out, en[i]);
		st->cursor = en[i]->revision;
	}
	hub_entries_put(en, n);
	if (sent > 0)
		rs->last_msg = now;
	if (now >= rs->next_hb) {
		if (!sse_out(&st->out) || buf_puts(&st->out.out, ":heartbeat\n\n"))
			return -1;
		rs->next_hb = now + rs->hb;
	}
	st->wake_ms = rs->last_msg + rs->idle < rs->next_hb ?
		      rs->last_msg + rs->idle : rs->next_hb;
	return n == BATCH ? 1 : 0;
}

static void rt_release(struct sse_stream *st)
{
	struct rt_stream *rs = (struct rt_stream *)st;

	if (rs->c)
		hub_client_remove(rs->srv->hub, rs->c->id);
	client_free(rs->c);
	sse_release(&st->out);
	free(rs);
}

int api_realtime_connect(struct http_req *r)
{
	struct server *srv = r->srv;
	struct rt_stream *rs;
	struct rt_client *c = NULL;
	struct err e = ERR_INIT;
	char data[80];
	int fd, rc;

	if (!srv->hub)
		return http_fail(r, ERR_UNAVAILABLE, "realtime is not running");
	if (stream_socket(r, &fd))
		return 0;
	rs = calloc(1, sizeof(*rs));
	c = calloc(1, sizeof(*c));
	if (c)
		c->verdicts = verdicts_new(srv->schema);
	if (!rs || !c || !c->verdicts) {
		free(rs);
		if (c)
			free(c->verdicts);
		free(c);
		return http_fail(r, ERR_NOMEM, "out of memory");
	}
	c->schema = srv->schema;
	if (pthread_mutex_init(&c->lock, NULL)) {
		free(rs);
		free(c->verdicts);
		free(c);
		return http_fail(r, ERR_INTERNAL, "cannot create a client lock");
	}
	client_id_new(c->id);
	c->since = INT64_MAX;   /* nothing until the first POST */
	rc = hub_client_add(srv->hub, c->id, c, &e);
	if (rc) {
		client_free(c);
		free(rs);
		return http_reply_error(r, &e);
	}
	rs->srv = srv;
	rs->c = c;
	rs->base.fill = rt_fill;
	rs->base.release = rt_release;
	rs->hb = heartbeat_ms();
	rs->idle = util_env_int("POCKETCTL_REALTIME_IDLE_MS", RT_IDLE_MS, 100,
				(int64_t)24 * 3600 * 1000);
	rs->last_msg = util_monotonic_ms();
	rs->next_hb = rs->last_msg + rs->hb;
	rs->base.wake_ms = rs->next_hb < rs->last_msg + rs->idle ?
			   rs->next_hb : rs->last_msg + rs->idle;
	sse_init(&rs->base.out, r);
	sse_start(r, &rs->base.out);
	rs->base.cursor = store_head(srv->store);
	snprintf(data, sizeof(data), "{\"clientId\":\"%s\"}", c->id);
	if (sse_event(&rs->base.out, "", c->id, "PB_CONNECT", data,
		      strlen(data))) {
		rt_release(&rs->base);
		return 0;
	}
	return stream_serve(r, fd, &rs->base);
}

/*
 * Parse one subscription topic into sub. Returns 1 when it can match
 * records, 0 when it names nothing we know (kept by PocketBase, but it
 * would never fire: dropped here), or ERR_NOMEM.
 */
static int parse_topic(const struct schema *s, const char *topic,
		       struct rt_sub *sub)
{
	char path[RT_MAX_TOPIC + 1], *slash, *opt = NULL;
	const char *q = strchr(topic, '?');
	size_t plen = q ? (size_t)(q - topic) : strlen(topic);
	json_t *o = NULL, *query;
	struct err e = ERR_INIT;
	const char *v;
	int n, rc = 0;

	memset(sub, 0, sizeof(*sub));
	if (plen > RT_MAX_TOPIC)
		return 0;
	memcpy(path, topic, plen);
	path[plen] = '\0';
	slash = strchr(path, '/');
	if (slash) {
		*slash++ = '\0';
		if (strcmp(slash, "*") != 0) {
			if (!util_valid_id(slash))
				return 0;
			memcpy(sub->rid, slash, ID_LEN + 1);
		}
	}
	sub->coll = schema_find(s, path);
	if (!sub->coll)
		sub->coll = schema_find_by_id(s, path);
	if (!sub->coll)
		return 0;
	sub->name = strdup(topic);
	if (!sub->name)
		return ERR_NOMEM;
	if (!q)
		return 1;
	opt = malloc(RT_MAX_TOPIC + 1);
	if (!opt) {
		rc = ERR_NOMEM;
		goto out;
	}
	n = mg_get_var(q + 1, strlen(q + 1), "options", opt, RT_MAX_TOPIC + 1);
	if (n <= 0)
		goto done;   /* no options: the topic still works */
	o = json_loads(opt, 0, NULL);
	query = json_object_get(o, "query");
	v = json_string_value(json_object_get(query, "filter"));
	if (v && *v) {
		sub->filter = strdup(v);
		if (!sub->filter) {
			rc = ERR_NOMEM;
			goto out;
		}
	}
	v = json_string_value(json_object_get(query, "fields"));
	/* A bad projection is ignored, as PocketBase ignores it. */
	if (v && *v && pick_parse(v, &sub->fields, &e) == ERR_NOMEM) {
		rc = ERR_NOMEM;
		goto out;
	}
	v = json_string_value(json_object_get(query, "expand"));
	/* So is a bad expansion (too long, too many paths). */
	if (v && *v && expand_parse(v, &sub->expand, &e) == ERR_NOMEM) {
		rc = ERR_NOMEM;
		goto out;
	}
done:
	rc = 1;
out:
	json_decref(o);
	free(opt);
	if (rc != 1) {
		free(sub->name);
		free(sub->filter);
		pick_free(sub->fields);
		json_decref(sub->expand);
		memset(sub, 0, sizeof(*sub));
	}
	return rc;
}

struct rt_set {
	struct rt_sub *subs;     /* in: the new topics; out: the old ones */
	size_t nsubs;
	struct http_auth auth;   /* in: the new auth; out: the old one */
	int64_t since;
};

/* hub_client_with() callback: swap the client's topics and auth. */
static int rt_apply(void *ptr, void *arg)
{
	struct rt_client *c = ptr;
	struct rt_set *set = arg;
	struct rt_sub *subs;
	struct http_auth auth;
	size_t n;

	pthread_mutex_lock(&c->lock);
	if (c->auth.kind != CALLER_GUEST && !same_auth(&c->auth, &set->auth)) {
		pthread_mutex_unlock(&c->lock);
		return ERR_FORBIDDEN;
	}
	subs = c->subs;
	n = c->nsubs;
	auth = c->auth;
	c->subs = set->subs;
	c->nsubs = set->nsubs;
	c->auth = set->auth;
	c->since = set->since;
	verdicts_forget(c->verdicts, c->schema);
	set->subs = subs;
	set->nsubs = n;
	set->auth = auth;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int api_realtime_subscribe(struct http_req *r)
{
	struct server *srv = r->srv;
	struct rt_set set;
	struct err e = ERR_INIT;
	json_t *body = NULL, *list, *v;
	const char *cid, *topic;
	size_t i, len;
	int rc;

	memset(&set, 0, sizeof(set));
	if (!srv->hub)
		return http_fail(r, ERR_UNAVAILABLE, "realtime is not running");
	rc = http_read_json(r, srv->opts->max_body, &body, &e);
	if (rc)
		return http_reply_error(r, &e);
	cid = json_string_value(json_object_get(body, "clientId"));
	len = cid ? strlen(cid) : 0;
	if (len == 0 || len > 255) {
		rc = err_set_field(&e, ERR_INVALID, "clientId",
				   len ? "the length must be between 1 and 255"
				       : "cannot be blank");
		goto fail;
	}
	list = json_object_get(body, "subscriptions");
	if (list && !json_is_null(list) && !json_is_array(list)) {
		rc = err_set_field(&e, ERR_INVALID, "subscriptions",
				   "must be a list of topics");
		goto fail;
	}
	if (json_array_size(list) > RT_MAX_SUBS) {
		rc = err_set_field(&e, ERR_INVALID, "subscriptions",
				   "the length must be no more than %d",
				   RT_MAX_SUBS);
		goto fail;
	}
	set.subs = calloc(json_array_size(list) + 1, sizeof(*set.subs));
	if (!set.subs) {
		rc = err_set(&e, ERR_NOMEM, "out of memory");
		goto fail;
	}
	json_array_foreach(list, i, v) {
		topic = json_string_value(v);
		if (!topic) {
			rc = err_set_field(&e, ERR_INVALID, "subscriptions",
					   "topic %zu must be a string", i);
			goto fail;
		}
		len = strlen(topic);
		if (len > RT_MAX_TOPIC) {
			rc = err_set_field(&e, ERR_INVALID, "subscriptions",
					   "topic %zu is longer than %d bytes",
					   i, RT_MAX_TOPIC);
			goto fail;
		}
		/* The topic becomes an SSE event name: no line breaks. */
		if (strpbrk(topic, "\r\n")) {
			rc = err_set_field(&e, ERR_INVALID, "subscriptions",
					   "topic %zu holds a line break", i);
			goto fail;
		}
		rc = len ? parse_topic(srv->schema, topic,
				       &set.subs[set.nsubs]) : 0;
		if (rc < 0) {
			rc = err_set(&e, ERR_NOMEM, "out of memory");
			goto fail;
		}
		set.nsubs += (size_t)rc;
	}
	set.auth = r->auth;
	set.auth.record = r->auth.record ? json_deep_copy(r->auth.record) : NULL;
	if (r->auth.record && !set.auth.record) {
		rc = err_set(&e, ERR_NOMEM, "out of memory");
		goto fail;
	}
	set.since = store_head(srv->store);
	rc = hub_client_with(srv->hub, cid, rt_apply, &set);
	if (rc == ERR_NOT_FOUND) {
		rc = err_set(&e, ERR_NOT_FOUND, "Missing or invalid client id.");
		goto fail;
	}
	if (rc == ERR_FORBIDDEN) {
		rc = err_set(&e, ERR_FORBIDDEN,
			     "The current and the previous request "
			     "authorization don't match.");
		goto fail;
	}
	/* set now holds the client's previous topics and auth. */
	subs_free(set.subs, set.nsubs);
	json_decref(set.auth.record);
	json_decref(body);
	return http_reply_empty(r, 204, NULL);
fail:
	subs_free(set.subs, set.nsubs);
	json_decref(set.auth.record);
	json_decref(body);
	return http_reply_error(r, &e);
}
