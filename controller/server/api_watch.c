/*
 * api_watch.c - GET /api/v1/watch (see api_watch.h): every change the
 * caller may see, in revision order, resumable from a revision. The
 * handler checks the caller and the query, sends the headers and, when
 * the resume point is gone, a reset, then hands the stream to the driver
 * (stream_int.h); this file says what one change, a gap and a heartbeat
 * become on the stream.
 *
 * THREAD SAFETY NOTES: a watch stream is its driver's alone (stream_int.h);
 * the caller's auth is copied at the start and never changes.
 */
#include "api_watch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <civetweb.h>
#include <openssl/crypto.h>

#include "api_apply.h"
#include "engine/engine.h"
#include "observed.h"
#include "secrets.h"
#include "server.h"
#include "store/store.h"
#include "stream_int.h"
#include "tickets.h"
#include "util.h"

/* ---- events ------------------------------------------------------------ */

/* rec's status.observedGeneration as the engine's floors say now
 * (observed.h): a data change the engine has not passed over yet reads
 * as generation - 1. rec's status is replaced by a copy. */
static int observe(const struct server *srv, const struct hub_entry *en,
		   json_t *rec)
{
	struct observed *o = observed_new(srv->store);
	struct err e = ERR_INIT;
	int rc = o ? 0 : ERR_NOMEM;

	if (!rc && srv->engine)
		rc = engine_observed(srv->engine, o, &e);
	if (!rc)
		rc = observed_set(o, rec, !en->status_only, &e);
	observed_free(o);
	return rc;
}

/* The watch event data: the store's record form with its data reduced to
 * what PocketBase would show a superuser (hidden fields never), secret
 * fields in clear when priv, else masked (secrets.h); the actor as
 * written, or when public as non-superusers read it (null when the change
 * log has none). arg is the server. */
static char *fmt_watch(const struct hub_entry *en, json_t *record, void *arg,
		       bool priv, bool public, size_t *len)
{
	const struct server *srv = arg;
	struct err e = ERR_INIT;
	static const char *const sys[] = {
		"id", "collectionId", "collectionName", "created", "updated",
	};
	json_t *pb = NULL, *rec = NULL, *out = NULL, *v;
	const char *key;
	char *s = NULL;
	size_t i;

	pb = stream_pb_json(en, record, srv->schema, true);
	rec = json_object();
	if (!pb || !rec ||
	    (!priv && secrets_mask(&srv->keys, en->coll, pb, &e)))
		goto out;
	for (i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
		json_object_del(pb, sys[i]);
	json_object_foreach(record, key, v) {
		/* json_object_set adds a reference to the borrowed value. */
		if (strcmp(key, "data") != 0 && json_object_set(rec, key, v))
			goto out;
	}
	if (json_object_set(rec, "data", pb) || observe(srv, en, rec))
		goto out;
	/* "o" steals rec (also on failure); "s?" packs NULL as null. */
	out = json_pack("{s:I, s:s, s:s, s:s, s:s, s:b, s:s?, s:o}",
			"revision", (json_int_t)en->revision,
			"collection", en->collection, "id", en->id,
			"name", en->name, "action", en->action,
			"statusOnly", en->status_only,
			"actor", public ? en->actor_public : en->actor,
			"record", rec);
	rec = NULL;
	s = stream_dump(out, len);
out:
	json_decref(pb);
	json_decref(rec);
	json_decref(out);
	return s;
}

static char *fmt_watch_priv(const struct hub_entry *en, json_t *record,
			    void *arg, size_t *len)
{
	return fmt_watch(en, record, arg, true, false, len);
}

static char *fmt_watch_pub(const struct hub_entry *en, json_t *record,
			   void *arg, size_t *len)
{
	return fmt_watch(en, record, arg, false, false, len);
}

static char *fmt_watch_others(const struct hub_entry *en, json_t *record,
			      void *arg, size_t *len)
{
	return fmt_watch(en, record, arg, false, true, len);
}

/* ---- the request ----------------------------------------------------- */

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

struct watch_stream {
	struct stream s;                 /* first: the driver's view */
	struct http_auth auth;           /* the caller; record owned */
	bool *want;                      /* collections asked for */
	bool any;                        /* want[] narrows the stream */
	bool show_secrets;               /* ?showSecrets=true (superusers) */
	signed char *verdicts;           /* see stream_visible(); auth is
	                                  * fixed */
};

/* Buffer en when the caller may see it. */
static int watch_deliver(struct stream *s, struct hub_entry *en)
{
	struct watch_stream *w = (struct watch_stream *)s;
	struct server *srv = s->srv;
	char idtext[UTIL_INT_LEN];
	const char *data;
	size_t n = 0;
	bool priv;
	int rc;

	if (w->any &&
	    (!en->coll || !w->want[en->coll - srv->schema->collections]))
		return 0;
	if (w->auth.kind != CALLER_SUPERUSER &&
	    !stream_visible(srv, en, RULE_VIEW, &w->auth, NULL, w->verdicts))
		return 0;
	/* Secrets in clear only to a superuser who asked; everyone else,
	 * owners included, sees them masked. Who wrote reads as written to
	 * superusers and to the user who wrote it; to anyone else as
	 * actor_public() gives it. */
	priv = w->show_secrets;
	if (priv)
		data = hub_entry_cache(en, SLOT_WATCH_PRIV, fmt_watch_priv,
				       srv, &n);
	else if (w->auth.kind == CALLER_SUPERUSER || !en->actor ||
		 !strcmp(en->actor_user, w->auth.id))
		data = hub_entry_cache(en, SLOT_WATCH_PUB, fmt_watch_pub,
				       srv, &n);
	else
		data = hub_entry_cache(en, SLOT_WATCH_OTHERS,
				       fmt_watch_others, srv, &n);
	if (!data)
		return 0;   /* cannot happen short of memory; skip, not lie */
	util_format_int(en->revision, idtext);
	rc = sse_event(&s->base.out, " ", idtext, en->action, data, n);
	return rc ? rc : 1;
}

/* The changes after the cursor are gone: say so, go on from the head. */
static int watch_gap(struct stream *s)
{
	int64_t head = store_head(s->srv->store);
	char reason[160];

	snprintf(reason, sizeof(reason),
		 "changes after revision %lld are no longer retained",
		 (long long)s->base.cursor);
	s->base.cursor = head;
	return send_reset(&s->base.out, head, reason);
}

/* A heartbeat once the stream was quiet for an interval. */
static int watch_heartbeat(struct stream *s, int64_t now)
{
	struct sse *out = &s->base.out;

	if (now >= s->next_hb && !sse_pending(out) &&
	    sse_json_event(out, s->base.cursor, "heartbeat",
			   json_pack("{s:I}", "revision",
				     (json_int_t)hub_head(s->srv->hub))))
		return ERR_NOMEM;
	if (sse_pending(out))
		s->next_hb = stream_next_heartbeat(s, now);
	return 0;
}

static void watch_release(struct stream *s)
{
	struct watch_stream *w = (struct watch_stream *)s;

	json_decref(w->auth.record);
	free(w->want);
	free(w->verdicts);
	free(w);
}

static const struct stream_ops watch_ops = {
	.name = "watch",
	.deliver = watch_deliver,
	.gap = watch_gap,
	.heartbeat = watch_heartbeat,
	.release = watch_release,
};

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
		w->verdicts = stream_verdicts_new(srv->schema);
	if (w && r->auth.record)
		w->auth.record = json_deep_copy(r->auth.record);
	if (!w || !w->want || !w->verdicts ||
	    (r->auth.record && !w->auth.record)) {
		if (w)
			watch_release(&w->s);
		return http_fail(r, ERR_NOMEM, "out of memory");
	}
	stream_init(&w->s, srv, &watch_ops);
	w->auth.kind = r->auth.kind;
	memcpy(w->auth.id, r->auth.id, sizeof(w->auth.id));
	memcpy(w->auth.collection_id, r->auth.collection_id,
	       sizeof(w->auth.collection_id));
	rc = watch_collections(r, w->want, &w->any, &e);
	if (!rc)
		rc = watch_since(r, &since, &have, &e);
	if (!rc)
		rc = api_show_secrets(r, &w->show_secrets, &e);
	if (rc) {
		watch_release(&w->s);
		return http_reply_error(r, &e);
	}
	if (stream_socket(r, &fd)) {
		watch_release(&w->s);
		return 0;
	}
	stream_start(r, &w->s);
	head = store_head(srv->store);
	w->s.base.cursor = head;
	if (have) {
		oldest = store_changelog_oldest(srv->store);
		if (since > head) {
			snprintf(reason, sizeof(reason),
				 "revision %lld is ahead of the store "
				 "(head %lld)", (long long)since, (long long)head);
			rc = send_reset(&w->s.base.out, head, reason);
		} else if (since < oldest - 1) {
			snprintf(reason, sizeof(reason),
				 "revision %lld is older than the retained "
				 "change log (oldest %lld)", (long long)since,
				 (long long)oldest);
			rc = send_reset(&w->s.base.out, head, reason);
		} else {
			w->s.base.cursor = since;
		}
	}
	if (rc) {
		stream_release(&w->s);
		return 0;
	}
	return stream_serve(r, fd, &w->s);
}

/* ---- tickets --------------------------------------------------------- */

int api_watch_ticket(struct http_req *r)
{
	struct server *srv = r->srv;
	struct err e = ERR_INIT;
	char ticket[TICKET_MAX], when[TIME_LEN + 1];
	int64_t ttl, expires = 0;
	json_t *body;
	int rc;

	/* Only a token opens a ticket: a ticket never buys another one. */
	if (r->auth.kind == CALLER_GUEST)
		return http_fail(r, ERR_UNAUTHORIZED,
				 "The request requires valid record "
				 "authorization token.");
	ttl = util_env_int("POCKETCTL_WATCH_TICKET_TTL", TICKET_TTL_DEFAULT,
			   1, 3600);
	rc = ticket_issue(srv->store, srv->schema, &srv->keys, &r->auth,
			  (int64_t)time(NULL), ttl, ticket, &expires, &e);
	if (rc)
		return http_reply_error(r, &e);
	util_format_ms(expires * 1000, when);
	body = json_pack("{s:s, s:s, s:I}", "ticket", ticket, "expires", when,
			 "ttl", (json_int_t)ttl);
	OPENSSL_cleanse(ticket, sizeof(ticket));
	if (!body)
		return http_fail(r, ERR_NOMEM, "out of memory");
	return http_reply_json(r, 200, body, "Cache-Control: no-store\r\n");
}
