/*
 * api_realtime.c - PocketBase's realtime protocol (see api_realtime.h):
 * GET /api/realtime opens a client's stream and sends PB_CONNECT, POST
 * /api/realtime sets that client's topics and binds the caller to it, and
 * each change goes to the client once per topic that matches it, as the
 * topic's rule (view or list) lets the bound caller see it. A parent
 * topic ("chats:<id>", rt_parent_topics[]) carries the changes of the
 * records that belong to that parent (the chat's messages) to a caller who
 * may view both. The stream itself is run by the shared driver
 * (stream_int.h).
 *
 * Each change is formatted once per variant (privileged or public viewer)
 * in the hub entry's cache; a client owns only its topic list, its bound
 * auth and (through its stream) a cursor and a write buffer.
 *
 * THREAD SAFETY NOTES: a stream's state belongs to its driver (the pump
 * thread, or its worker), except a realtime client's topics and bound
 * auth, which a POST on another worker replaces: those are guarded by the
 * client's mutex, and the POST reaches the client through the hub's client
 * table (whose lock is taken before the client's, never the other way
 * round).
 */
#include "api_realtime.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>

#include "expand.h"
#include "hub.h"
#include "pbjson.h"
#include "pick.h"
#include "presence.h"
#include "rules.h"
#include "server.h"
#include "sse.h"
#include "store/store.h"
#include "stream_int.h"
#include "util.h"

#define RT_IDLE_MS (5 * 60 * 1000)       /* PocketBase's idle timeout */
#define RT_CLIENT_ID_LEN 40              /* PocketBase's client id length */
#define RT_MAX_SUBS 1000                 /* PocketBase's limits */
#define RT_MAX_TOPIC 2500

/* ---- entries -------------------------------------------------------------- */

static char *fmt_pb(const struct hub_entry *en, json_t *record, void *arg,
		    bool priv, size_t *len)
{
	json_t *j = stream_pb_json(en, record, arg, priv);
	char *s = stream_dump(j, len);

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
	s = stream_dump(data, len);
out:
	json_decref(data);
	return s;
}

/* ---- /api/realtime ------------------------------------------------------ */

/*
 * Custom topics "<parent>:<id>" (the app's legacy chats:<id>): they carry
 * the changes of the child collection's records whose relation field
 * points at that parent record, to a viewer allowed to view the parent
 * and the child. The events are the standard {action, record} ones.
 */
struct rt_parent_topic {
	const char *parent;               /* the topic's collection */
	const char *child;                /* whose changes it carries */
	const char *field;                /* child's relation to parent */
};

static const struct rt_parent_topic rt_parent_topics[] = {
	{ "chats", "messages", "chat" },
};

struct rt_sub {
	char *name;                       /* the topic as sent: event name */
	const struct collection *coll;
	char rid[ID_LEN + 1];             /* "" for every record (list rule) */
	const struct collection *parent;  /* a parent topic's collection */
	char pid[ID_LEN + 1];             /* and its record id */
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
	signed char *verdicts;            /* see stream_visible(); forgotten when
	                                   * auth changes */
	char present[ID_LEN + 1];         /* the user counted present for this
	                                   * client (presence.h), "" for none */
};

/* Count the client's bound user as present, and only them (its previous
 * user leaves). Called with the client lock held, or on release. */
static void rt_presence(struct rt_client *c)
{
	const char *want = c->auth.kind == CALLER_USER ? c->auth.id : "";

	if (!strcmp(want, c->present))
		return;
	presence_leave(c->present);
	presence_enter(want);
	snprintf(c->present, sizeof(c->present), "%s", want);
}

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
	stream_verdicts_forget(c->verdicts, c->schema);
	if (!strcmp(en->action, "delete")) {
		json_decref(c->auth.record);
		memset(&c->auth, 0, sizeof(c->auth));
		rt_presence(c);
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

/* A parent topic's record is one the viewer may view (its view rule,
 * read from the store: the pump's thread may run SQLite, stream_int.h). */
static bool rt_parent_visible(struct server *srv, const struct http_auth *a,
			      const struct rt_sub *sub)
{
	struct filter_auth fa;
	struct record rec;
	struct err e = ERR_INIT;
	int rc;

	memset(&fa, 0, sizeof(fa));
	fa.superuser = a->kind == CALLER_SUPERUSER;
	fa.record = a->record;
	rc = rules_get(srv->store, srv->schema, sub->parent, RULE_VIEW,
		       sub->pid, &fa, &rec, &e);
	record_release(&rec);
	return rc == 0;
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
	priv = stream_privileged(&c->auth, en);
	for (i = 0; i < c->nsubs; i++) {
		const struct rt_sub *sub = &c->subs[i];

		if (sub->coll != en->coll ||
		    (sub->rid[0] && strcmp(sub->rid, en->id) != 0))
			continue;
		if (!stream_visible(srv, en, sub->rid[0] || sub->parent ?
				    RULE_VIEW : RULE_LIST, &c->auth,
				    sub->filter, c->verdicts))
			continue;
		if (sub->parent && !rt_parent_visible(srv, &c->auth, sub))
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
				picked = stream_dump(j, &n);
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
	presence_leave(c->present);
	subs_free(c->subs, c->nsubs);
	json_decref(c->auth.record);
	free(c->verdicts);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

struct rt_stream {
	struct stream s;                 /* first: the driver's view */
	struct rt_client *c;             /* registered with the hub */
};

static int rt_deliver_one(struct stream *s, struct hub_entry *en)
{
	return rt_deliver(s->srv, ((struct rt_stream *)s)->c, &s->base.out, en);
}

/* Realtime has no replay: skip to the present. */
static int rt_gap(struct stream *s)
{
	s->base.cursor = store_head(s->srv->store);
	return 0;
}

/* A comment line every interval keeps proxies awake. */
static int rt_heartbeat(struct stream *s, int64_t now)
{
	if (now < s->next_hb)
		return 0;
	if (!sse_out(&s->base.out) ||
	    buf_puts(&s->base.out.out, ":heartbeat\n\n"))
		return ERR_NOMEM;
	s->next_hb = stream_next_heartbeat(s, now);
	return 0;
}

static void rt_release(struct stream *s)
{
	struct rt_stream *rs = (struct rt_stream *)s;

	if (rs->c)
		hub_client_remove(s->srv->hub, rs->c->id);
	client_free(rs->c);
	free(rs);
}

static const struct stream_ops rt_ops = {
	.name = "realtime",
	.deliver = rt_deliver_one,
	.gap = rt_gap,
	.heartbeat = rt_heartbeat,
	.release = rt_release,
};

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
		c->verdicts = stream_verdicts_new(srv->schema);
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
	rs->c = c;
	stream_init(&rs->s, srv, &rt_ops);
	stream_set_idle(&rs->s, util_env_int("POCKETCTL_REALTIME_IDLE_MS",
					     RT_IDLE_MS, 100,
					     (int64_t)24 * 3600 * 1000));
	stream_start(r, &rs->s);
	rs->s.base.cursor = store_head(srv->store);
	snprintf(data, sizeof(data), "{\"clientId\":\"%s\"}", c->id);
	if (sse_event(&rs->s.base.out, "", c->id, "PB_CONNECT", data,
		      strlen(data))) {
		stream_release(&rs->s);
		return 0;
	}
	return stream_serve(r, fd, &rs->s);
}

/*
 * A parent topic ("chats:<id>", see rt_parent_topics[]) into sub: the
 * child collection, every record of it (no rid), the filter "<field> =
 * '<id>'" (the id is checked, so it quotes safely) and the parent record.
 * Topic options (?options=...) are ignored. Returns 1, 0 when it names
 * nothing we know, or ERR_NOMEM.
 */
static int parse_parent_topic(const struct schema *s, const char *topic,
			      char *path, struct rt_sub *sub)
{
	char *colon = strchr(path, ':');
	const struct rt_parent_topic *pt = NULL;
	char filter[128];
	size_t i;

	*colon++ = '\0';
	for (i = 0; i < sizeof(rt_parent_topics) / sizeof(rt_parent_topics[0]);
	     i++)
		if (!strcmp(path, rt_parent_topics[i].parent))
			pt = &rt_parent_topics[i];
	if (!pt || !util_valid_id(colon))
		return 0;
	sub->parent = schema_find(s, pt->parent);
	sub->coll = schema_find(s, pt->child);
	if (!sub->parent || !sub->coll)
		return 0;
	memcpy(sub->pid, colon, ID_LEN + 1);
	snprintf(filter, sizeof(filter), "%s = '%s'", pt->field, sub->pid);
	sub->name = strdup(topic);
	sub->filter = strdup(filter);
	if (!sub->name || !sub->filter) {
		free(sub->name);
		free(sub->filter);
		memset(sub, 0, sizeof(*sub));
		return ERR_NOMEM;
	}
	return 1;
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
	if (strchr(path, ':'))
		return parse_parent_topic(s, topic, path, sub);
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
	rt_presence(c);
	stream_verdicts_forget(c->verdicts, c->schema);
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
