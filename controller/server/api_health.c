/*
 * api_health.c - /healthz, /readyz, /api/health and /metrics (the
 * request counters of metrics.c, the store's group commit, the connection
 * guard, and the reconcile engine's figures from its status).
 *
 * /healthz says the process answers; /readyz also asks the store for a
 * cheap count and refuses while the server drains (so a load balancer stops
 * sending work before SIGTERM finishes); /api/health is PocketBase's own
 * check, which SDK-based clients poll.
 */
#include "api_health.h"

#include <stdio.h>
#include <string.h>

#include "conns.h"
#include "engine/engine.h"
#include "metrics.h"
#include "respcache.h"
#include "server.h"

int api_healthz(struct http_req *r)
{
	return http_reply_text(r, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

int api_readyz(struct http_req *r)
{
	struct err e = ERR_INIT;
	char msg[ERR_MSG_MAX + 32];
	int64_t n = 0;
	int len;

	if (atomic_load(&r->srv->stopping))
		return http_reply_text(r, 503, "text/plain; charset=utf-8",
				       "stopping\n", 9);
	if (store_count(r->srv->store, "_superusers", NULL, &n, &e)) {
		len = snprintf(msg, sizeof(msg), "store not ready: %s\n",
			       e.msg);
		if (len < 0 || (size_t)len >= sizeof(msg))
			len = (int)strlen(msg);
		return http_reply_text(r, 503, "text/plain; charset=utf-8",
				       msg, (size_t)len);
	}
	return http_reply_text(r, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

int api_health(struct http_req *r)
{
	json_t *body = json_pack("{s:i, s:s, s:{}}", "code", 200, "message",
				 "API is healthy.", "data");

	return http_reply_json(r, 200, body, NULL);   /* body stolen */
}

/* The connection guard's figures (conns.h). */
static int render_conns(struct conns *c, struct buf *out)
{
	struct conns_stats cs;

	conns_get_stats(c, &cs);
	return buf_printf(out,
		"# HELP pocketctl_connections_open Connections holding a worker.\n"
		"# TYPE pocketctl_connections_open gauge\n"
		"pocketctl_connections_open %lld\n"
		"# HELP pocketctl_connections_over_cap_total Connections beyond --max-conns-per-ip.\n"
		"# TYPE pocketctl_connections_over_cap_total counter\n"
		"pocketctl_connections_over_cap_total %lld\n"
		"# HELP pocketctl_connections_cut_total Connections the guard closed, by reason.\n"
		"# TYPE pocketctl_connections_cut_total counter\n"
		"pocketctl_connections_cut_total{reason=\"deadline\"} %lld\n"
		"pocketctl_connections_cut_total{reason=\"pressure\"} %lld\n"
		"pocketctl_connections_cut_total{reason=\"over_cap\"} %lld\n",
		(long long)cs.open, (long long)cs.over_cap,
		(long long)cs.cut[CONNS_CUT_DEADLINE],
		(long long)cs.cut[CONNS_CUT_PRESSURE],
		(long long)cs.cut[CONNS_CUT_OVER_CAP]);
}

int api_metrics(struct http_req *r)
{
	struct buf out = BUF_INIT;
	int rc;

	struct store_stats st;
	struct respcache_stats rs;
	struct err e = ERR_INIT;
	json_t *status = NULL;

	store_stats(r->srv->store, &st);
	rc = metrics_render(r->srv->metrics, store_head(r->srv->store), &out);
	/* Group commit: how many writes each COMMIT and each fdatasync()
	 * carried is commits / batches and commits / syncs. */
	if (!rc)
		rc = buf_printf(&out,
				"# HELP pocketctl_store_commits_total Write transactions committed durably.\n"
				"# TYPE pocketctl_store_commits_total counter\n"
				"pocketctl_store_commits_total %lld\n"
				"# HELP pocketctl_store_commit_failures_total Write transactions whose commit failed.\n"
				"# TYPE pocketctl_store_commit_failures_total counter\n"
				"pocketctl_store_commit_failures_total %lld\n"
				"# HELP pocketctl_store_batches_total SQLite COMMITs (group commit batches).\n"
				"# TYPE pocketctl_store_batches_total counter\n"
				"pocketctl_store_batches_total %lld\n"
				"# HELP pocketctl_store_syncs_total fdatasync() calls that made batches durable.\n"
				"# TYPE pocketctl_store_syncs_total counter\n"
				"pocketctl_store_syncs_total %lld\n"
				"# HELP pocketctl_store_batch_max Most transactions in one COMMIT so far.\n"
				"# TYPE pocketctl_store_batch_max gauge\n"
				"pocketctl_store_batch_max %lld\n",
				(long long)st.commits, (long long)st.failed,
				(long long)st.batches, (long long)st.syncs,
				(long long)st.max_batch);
	if (!rc) {
		respcache_stats(r->srv->replies, &rs);
		rc = buf_printf(&out,
				"# HELP pocketctl_reply_cache_hits_total Record lists and views answered from the reply cache.\n"
				"# TYPE pocketctl_reply_cache_hits_total counter\n"
				"pocketctl_reply_cache_hits_total %llu\n"
				"# HELP pocketctl_reply_cache_misses_total Record lists and views looked up in the reply cache and read afresh.\n"
				"# TYPE pocketctl_reply_cache_misses_total counter\n"
				"pocketctl_reply_cache_misses_total %llu\n"
				"# HELP pocketctl_reply_cache_bytes Bytes of replies and keys the reply cache holds.\n"
				"# TYPE pocketctl_reply_cache_bytes gauge\n"
				"pocketctl_reply_cache_bytes %llu\n",
				(unsigned long long)rs.hits,
				(unsigned long long)rs.misses,
				(unsigned long long)rs.bytes);
	}
	if (!rc)
		rc = render_conns(r->srv->conns, &out);
	if (!rc && r->srv->engine) {
		rc = engine_status(r->srv->engine, &status, &e);
		if (!rc)
			rc = metrics_render_reconcile(status, &out);
		json_decref(status);
	}
	if (rc) {
		buf_release(&out);
		return http_fail(r, rc, "cannot render metrics");
	}
	rc = http_reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8",
			     out.ptr, out.len);
	buf_release(&out);
	return rc;
}
