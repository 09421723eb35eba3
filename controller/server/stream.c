/*
 * stream.c - the one driver of the change streams (see stream_int.h): the
 * fill both protocols share, the hand-off to the stream pump (pump.h) or,
 * with the pump off (POCKETCTL_STREAM_PUMP=0), the blocking loop on the
 * stream's own worker, and what both protocols show of a change: the
 * record in PocketBase's shape, and whether a viewer may see it.
 *
 * THREAD SAFETY NOTES: see stream_int.h; nothing here is shared between
 * streams but the hub entries, whose caches lock for themselves.
 */
#include "stream_int.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conns.h"
#include "log.h"
#include "store/filter.h"
#include "pbjson.h"
#include "pump.h"
#include "store/store.h"
#include "util.h"

#define BATCH 64                         /* entries taken per hub_fetch */
#define HEARTBEAT_MS 15000               /* default heartbeat interval */
#define SUPERUSERS "_superusers"
#define STACK_KEEP 8192                  /* bytes kept below the frame */
#define TRIM_EVERY_MS 1000               /* stack trims, at most */

/* Set when stream_visible() ran a query on this thread's stack (see
 * stack_trim()); the worker loop reads and clears it. */
static _Thread_local bool ran_sql;

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

/* ---- the driver ------------------------------------------------------ */

/* The sse_stream fill of every stream (sse.h). */
static int stream_fill(struct sse_stream *st, int64_t now)
{
	struct stream *s = (struct stream *)st;
	struct hub_entry *en[BATCH];
	struct err e = ERR_INIT;
	int n, i, k, sent = 0, rc = 0;

	if (now >= s->deadline)
		return -1;   /* a forgotten client (idle_ms) */
	n = hub_fetch(s->srv->hub, st->cursor, en, BATCH, &e);
	if (n == HUB_GAP)
		return s->ops->gap(s) ? -1 : 1;
	if (n < 0) {
		log_msg(LOG_ERROR, s->ops->name, "%s", e.msg);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (!rc) {
			k = s->ops->deliver(s, en[i]);
			if (k < 0)
				rc = k;
			else
				sent += k;
		}
		st->cursor = en[i]->revision;
	}
	hub_entries_put(en, n);
	if (rc)
		return -1;
	if (sent > 0 && s->idle_ms)
		s->deadline = now + s->idle_ms;
	if (s->ops->heartbeat(s, now))
		return -1;
	st->wake_ms = s->deadline < s->next_hb ? s->deadline : s->next_hb;
	return n == BATCH ? 1 : 0;
}

static void stream_free(struct sse_stream *st)
{
	stream_release((struct stream *)st);
}

void stream_release(struct stream *s)
{
	sse_release(&s->base.out);
	s->ops->release(s);
}

int64_t stream_next_heartbeat(const struct stream *s, int64_t now)
{
	int64_t grid = s->hb / 3 > 0 ? s->hb / 3 : 1, t = now + s->hb;

	return (t + grid - 1) / grid * grid;
}

void stream_init(struct stream *s, struct server *srv,
		 const struct stream_ops *ops)
{
	s->ops = ops;
	s->srv = srv;
	s->hb = util_env_int("POCKETCTL_HEARTBEAT_MS", HEARTBEAT_MS, 10,
			     3600000);
	s->next_hb = stream_next_heartbeat(s, util_monotonic_ms());
	s->idle_ms = 0;
	s->deadline = INT64_MAX;
	s->base.wake_ms = s->next_hb;
	s->base.fill = stream_fill;
	s->base.release = stream_free;
}

void stream_set_idle(struct stream *s, int64_t idle_ms)
{
	s->idle_ms = idle_ms;
	s->deadline = util_monotonic_ms() + idle_ms;
	if (s->deadline < s->base.wake_ms)
		s->base.wake_ms = s->deadline;
}

void stream_start(struct http_req *r, struct stream *s)
{
	sse_init(&s->base.out, r);
	sse_start(r, &s->base.out);
}

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
	while (!atomic_load(&srv->stopping) && !sse_flush(&st->out)) {
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

int stream_socket(struct http_req *r, int *fd)
{
	struct err e = ERR_INIT;

	*fd = -1;
	if (!r->srv->pump)
		return 0;
	*fd = pump_find_socket(r, &e);
	/* A connection the guard chose to cut is not handed over (its
	 * shutdown() would reach the pump's copy of the socket): it is
	 * closed, as the cut would, so that the client comes back as
	 * EventSource does after a network error (a 503 would end an
	 * EventSource for good). */
	if (*fd >= 0 && !conns_detach(r->slot)) {
		shutdown(*fd, SHUT_RDWR);
		*fd = -1;
		r->status = 503;        /* for the log and metrics: nothing sent */
		return -1;
	}
	if (*fd >= 0)
		return 0;
	/* Not found (no /proc?): run it on this worker while there is room
	 * for such streams. */
	log_msg(LOG_WARN, "stream", "%s", e.msg);
	if (server_worker_stream_take(r->srv)) {
		r->worker_stream = true;
		return 0;
	}
	http_reply_error(r, &e);
	return -1;
}

int stream_serve(struct http_req *r, int fd, struct stream *s)
{
	struct sse_stream *st = &s->base;
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
		log_msg(LOG_ERROR, "stream", "%s", e.msg);
	sse_end(&st->out);
	st->release(st);
	return 0;
}

/* ---- what both protocols show ---------------------------------------- */

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

char *stream_dump(json_t *v, size_t *len)
{
	char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;

	*len = s ? strlen(s) : 0;
	return s;
}

json_t *stream_pb_json(const struct hub_entry *en, json_t *record,
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

/* The snapshot row, in the column order of QUERY_ON_RECORD's row. */
static char *fmt_snapshot(const struct hub_entry *en, json_t *record,
			  void *arg, size_t *len)
{
	char *data, *labels, *status, *s = NULL;
	json_t *row;
	size_t n;

	(void)arg;
	data = stream_dump(json_object_get(record, "data"), &n);
	labels = stream_dump(json_object_get(record, "labels"), &n);
	status = stream_dump(json_object_get(record, "status"), &n);
	row = json_pack("[s, s, s, s?, s?, s?, I, I, s?, s?]",
			en->collection, en->id, en->name, data, labels, status,
			json_integer_value(json_object_get(record, "generation")),
			(json_int_t)en->revision,
			json_string_value(json_object_get(record, "created")),
			json_string_value(json_object_get(record, "updated")));
	s = stream_dump(row, len);
	json_decref(row);
	free(data);
	free(labels);
	free(status);
	return s;
}

/* ---- access ------------------------------------------------------------ */

bool stream_privileged(const struct http_auth *a, const struct hub_entry *en)
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

/*
 * A stream's verdicts on rules that read nothing of the record, such as
 * '@request.auth.id != ""' (filter_reads_record()): one holds for every
 * event of its collection while the viewer's auth record stays the same,
 * so it is checked once, not once per event (a query each time). One
 * V_* per collection and action (view, list); all V_UNKNOWN (zero) when
 * made, and again whenever the stream's auth record changes.
 */
enum { V_UNKNOWN = 0, V_PER_RECORD, V_NO, V_YES };

signed char *stream_verdicts_new(const struct schema *s)
{
	return calloc(s->ncollections * 2 + 1, 1);
}

void stream_verdicts_forget(signed char *v, const struct schema *s)
{
	if (v)
		memset(v, V_UNKNOWN, s->ncollections * 2);
}

/* stream_visible(): see stream_int.h. */
bool stream_visible(struct server *srv, struct hub_entry *en,
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
	bool ok = false;

	if (!en->coll)
		return false;
	rule = en->coll->rules[act];
	if (!su && !rule)
		return false;
	if (nofilter && (su || !*rule))
		return true;
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
	if (!nofilter &&
	    filter_compile_caller(srv->schema, en->coll, filter, &fa,
				  pb_viewer_is_admin(a), &fp, &e))
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
