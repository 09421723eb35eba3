/*
 * test_engine.c - unit tests for the reconcile engine: the work queue
 * (dedup, FIFO, no concurrent runs of a key, backoff growth, cap and reset,
 * a failing key never delaying others, requeue and debounce), the render
 * paths and their config file, and the engine itself in-process against a
 * real store in a temporary directory: files rendered at start and after a
 * change, the llm.env shell round trip, idempotence (a second pass writes
 * nothing: same inode and mtime), drift correction with its event,
 * Degraded on a directory in the way and recovery, status-only changes not
 * re-triggering, agent bundles created and garbage-collected, opencode.json
 * foreign keys kept and invalid JSON left untouched, observedGeneration,
 * and engine_reload(): files moved to new paths, a bad config refused
 * with the old paths kept and a Degraded condition.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "engine/engine.h"
#include "engine/paths.h"
#include "reconciler.h"
#include "store/schema.h"
#include "store/store.h"
#include "util.h"
#include "engine/workq.h"
#include "testlib.h"

/* ------------------------------------------------------------------ */
/* The work queue                                                      */

static struct workq *eng_q(int64_t min, int64_t max)
{
	struct workq_options o = { min, max, 0 };
	struct workq *q = NULL;

	cr_assert_eq(workq_new(&q, &o, NULL), 0);
	return q;
}

Test(workq, dedup_and_fifo)
{
	struct workq *q = eng_q(0, 0);
	const char *k;

	workq_add(q, "a", 0);
	workq_add(q, "b", 0);
	workq_add(q, "a", 0);
	workq_add(q, "c", 0);
	cr_expect_eq(workq_ready(q), 3);
	cr_assert(workq_get(q, 0, &k));
	cr_expect_str_eq(k, "a");
	workq_done(q, k, WORKQ_OK, 0, 0);
	cr_assert(workq_get(q, 0, &k));
	cr_expect_str_eq(k, "b");
	workq_done(q, k, WORKQ_OK, 0, 0);
	cr_assert(workq_get(q, 0, &k));
	cr_expect_str_eq(k, "c");
	workq_done(q, k, WORKQ_OK, 0, 0);
	cr_expect_not(workq_get(q, 0, &k));
	workq_free(q);
}

Test(workq, never_twice_at_once)
{
	struct workq *q = eng_q(0, 0);
	struct workq_info qi;
	const char *k;

	workq_add(q, "a", 0);
	cr_assert(workq_get(q, 0, &k));
	/* Re-added while processing: not handed out again until done. */
	workq_add(q, "a", 1);
	workq_add(q, "a", 2);
	cr_expect_not(workq_get(q, 3, &k));
	cr_assert(workq_info(q, "a", &qi));
	cr_expect(qi.processing);
	cr_expect(qi.dirty);
	workq_done(q, "a", WORKQ_OK, 0, 4);
	/* ... and then exactly once more. */
	cr_assert(workq_get(q, 4, &k));
	cr_expect_str_eq(k, "a");
	workq_done(q, "a", WORKQ_OK, 0, 5);
	cr_expect_not(workq_get(q, 5, &k));
	workq_free(q);
}

Test(workq, backoff_growth_cap_and_reset)
{
	static const int64_t want[] = { 100, 200, 400, 800, 1600, 3200, 6400,
					12800, 25600, 51200, 60000, 60000 };
	struct workq *q = eng_q(0, 0);
	struct workq_info qi;
	int64_t now = 1000, d;
	const char *k;
	size_t i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect_eq(workq_backoff(NULL, (int)i + 1), want[i],
			     "failure %zu", i + 1);
	cr_expect_eq(workq_backoff(NULL, 1000000), 60000);
	workq_add(q, "k", now);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		cr_assert(workq_get(q, now, &k));
		d = workq_done(q, k, WORKQ_FAILED, 0, now);
		cr_expect_eq(d, want[i]);
		cr_assert(workq_info(q, "k", &qi));
		cr_expect(qi.delayed);
		cr_expect_eq(qi.failures, (int)i + 1);
		cr_expect_eq(workq_next_deadline(q), now + want[i]);
		/* Not before its time. */
		cr_expect_not(workq_get(q, now + want[i] - 1, &k));
		now += want[i];
	}
	cr_assert(workq_get(q, now, &k));
	workq_done(q, k, WORKQ_OK, 0, now);
	cr_assert(workq_info(q, "k", &qi));
	cr_expect_eq(qi.failures, 0);
	cr_expect_eq(workq_next_deadline(q), WORKQ_NEVER);
	/* After a success the next failure starts from the minimum again. */
	workq_add(q, "k", now);
	cr_assert(workq_get(q, now, &k));
	cr_expect_eq(workq_done(q, k, WORKQ_FAILED, 0, now), 100);
	workq_free(q);
}

Test(workq, custom_bounds_and_jitter_stay_capped)
{
	struct workq_options o = { 10, 50, 50 };
	struct workq *q = NULL;
	const char *k;
	int64_t now = 0, d;
	int i;

	cr_assert_eq(workq_new(&q, &o, NULL), 0);
	cr_expect_eq(workq_backoff(&o, 1), 10);
	cr_expect_eq(workq_backoff(&o, 3), 40);
	cr_expect_eq(workq_backoff(&o, 4), 50);
	workq_add(q, "k", now);
	for (i = 1; i <= 20; i++) {
		cr_assert(workq_get(q, now, &k));
		d = workq_done(q, k, WORKQ_FAILED, 0, now);
		cr_expect_geq(d, workq_backoff(&o, i));
		cr_expect_leq(d, 50);
		now += d;
	}
	workq_free(q);
}

Test(workq, failing_key_does_not_delay_others)
{
	struct workq *q = eng_q(0, 0);
	const char *k;

	workq_add(q, "bad", 0);
	workq_add(q, "good", 0);
	cr_assert(workq_get(q, 0, &k));
	cr_expect_str_eq(k, "bad");
	workq_done(q, k, WORKQ_FAILED, 0, 0);
	cr_assert(workq_get(q, 0, &k));
	cr_expect_str_eq(k, "good");
	workq_done(q, k, WORKQ_OK, 0, 0);
	workq_add(q, "good", 1);
	cr_assert(workq_get(q, 1, &k));
	cr_expect_str_eq(k, "good");
	workq_done(q, k, WORKQ_OK, 0, 1);
	/* The failing key is retried when due, never dropped. */
	cr_expect_not(workq_get(q, 99, &k));
	cr_assert(workq_get(q, 100, &k));
	cr_expect_str_eq(k, "bad");
	workq_free(q);
}

Test(workq, new_trigger_skips_the_wait_but_keeps_the_count)
{
	struct workq *q = eng_q(0, 0);
	struct workq_info qi;
	const char *k;

	workq_add(q, "k", 0);
	cr_assert(workq_get(q, 0, &k));
	workq_done(q, k, WORKQ_FAILED, 0, 0);
	cr_assert(workq_get(q, 0, &k) == false);
	workq_add(q, "k", 5);            /* a new change arrives */
	cr_assert(workq_get(q, 5, &k));
	cr_expect_eq(workq_done(q, k, WORKQ_FAILED, 0, 5), 200);
	cr_assert(workq_info(q, "k", &qi));
	cr_expect_eq(qi.failures, 2);
	workq_free(q);
}

Test(workq, requeue_and_debounce)
{
	struct workq *q = eng_q(0, 0);
	struct workq_info qi;
	const char *k;

	workq_add(q, "k", 0);
	cr_assert(workq_get(q, 0, &k));
	workq_done(q, k, WORKQ_FAILED, 0, 0);
	workq_add(q, "k", 0);
	cr_assert(workq_get(q, 0, &k));
	cr_expect_eq(workq_done(q, k, WORKQ_REQUEUE, 500, 10), 500);
	cr_assert(workq_info(q, "k", &qi));
	cr_expect_eq(qi.failures, 0);
	cr_expect_eq(qi.next_at, 510);
	/* add_after keeps the earliest time (a debounce window). */
	workq_add_after(q, "m", 200);
	workq_add_after(q, "m", 300);
	cr_expect_eq(workq_next_deadline(q), 200);
	cr_expect_not(workq_get(q, 199, &k));
	cr_assert(workq_get(q, 200, &k));
	cr_expect_str_eq(k, "m");
	/* add_after while processing schedules the next run. */
	workq_add_after(q, "m", 400);
	workq_done(q, "m", WORKQ_OK, 0, 201);
	cr_expect_eq(workq_next_deadline(q), 400);
	workq_free(q);
}

/* ------------------------------------------------------------------ */
/* Paths                                                               */

static char eng_tmp[256];

static void eng_rmtree(void)
{
	tl_rmtree(eng_tmp);
}

/* Replace path by rename, so the engine never sees a half-written file. */
static void eng_replace(const char *path, const char *text)
{
	char tmp[600];

	snprintf(tmp, sizeof(tmp), "%s.test-tmp", path);
	tl_write_file(tmp, text);
	cr_assert_eq(rename(tmp, path), 0, "%s: %s", path, strerror(errno));
}

Test(paths, defaults_under_root)
{
	struct paths p;

	cr_assert_eq(paths_load(&p, "/r", NULL, reconcilers, nreconcilers,
			        NULL), 0);
	cr_expect_str_eq(paths_get(&p, "llm_env"),
			 "/r/workspace/.opencode/llm.env");
	cr_expect_str_eq(paths_get(&p, "llm_env_copy"), "/r/llm_keys/llm.env");
	cr_expect_str_eq(paths_get(&p, "opencode_json"),
			 "/r/workspace/.opencode/opencode.json");
	cr_expect_str_eq(paths_get(&p, "agents_dir"),
			 "/r/workspace/.opencode/agents");
	cr_expect_str_eq(paths_get(&p, "docker_mcp_yaml"),
			 "/r/mcp_config/docker-mcp.yaml");
	cr_expect_str_eq(paths_get(&p, "mcp_env"), "/r/mcp_config/mcp.env");
	cr_expect_str_eq(paths_get(&p, "authorized_keys"),
			 "/r/ssh_keys/authorized_keys");
	cr_expect_str_eq(p.key[5], "mcp_env");
	paths_release(&p);
	cr_assert_eq(paths_load(&p, NULL, NULL, reconcilers, nreconcilers,
			        NULL), 0);
	cr_expect_str_eq(p.root, PATHS_DEFAULT_ROOT);
	paths_release(&p);
}

Test(paths, overrides_from_a_file, .fini = eng_rmtree)
{
	char cfg[300];
	struct paths p;

	tl_mkdtemp(eng_tmp, sizeof(eng_tmp), "engine");
	snprintf(cfg, sizeof(cfg), "%s/paths.yaml", eng_tmp);
	tl_write_file(cfg, "# comment\nllm_env_copy: \"\"\n"
		      "allow_outside_root: true\n"
		      "authorized_keys: /srv/keys/authorized_keys\n"
		      "mcp_env: other/mcp.env\n");
	cr_assert_eq(paths_load(&p, "/r", cfg, reconcilers, nreconcilers,
			        NULL), 0);
	cr_expect_null(paths_get(&p, "llm_env_copy"));
	cr_expect_str_eq(paths_get(&p, "authorized_keys"),
			 "/srv/keys/authorized_keys");
	cr_expect_str_eq(paths_get(&p, "mcp_env"), "/r/other/mcp.env");
	cr_expect_str_eq(paths_get(&p, "llm_env"),
			 "/r/workspace/.opencode/llm.env");
	paths_release(&p);
}

Test(paths, bad_config_is_refused_with_a_position, .fini = eng_rmtree)
{
	static const struct {
		const char *text;
		const char *msg;
	} cases[] = {
		{ "llm_env: a\nbogus: b\n", "paths.yaml:2:8: unknown path 'bogus'" },
		{ "llm_env: [1]\n", "paths.yaml:1:10: path 'llm_env' must be a string" },
		{ "- a\n", "expected a mapping" },
		{ "llm_env: x\nmcp_env: x\n", "paths 'llm_env' and 'mcp_env' are both" },
		{ "llm_env: 'a\n", "paths.yaml:" },
	};
	struct err e = ERR_INIT;
	char cfg[300];
	struct paths p;
	size_t i;

	tl_mkdtemp(eng_tmp, sizeof(eng_tmp), "engine");
	snprintf(cfg, sizeof(cfg), "%s/paths.yaml", eng_tmp);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tl_write_file(cfg, cases[i].text);
		err_clear(&e);
		cr_expect_eq(paths_load(&p, "/r", cfg, reconcilers,
				        nreconcilers, &e), ERR_INVALID,
			     "case %zu", i);
		cr_expect(strstr(e.msg, cases[i].msg) != NULL,
			  "case %zu: '%s' lacks '%s'", i, e.msg, cases[i].msg);
		cr_expect_null(p.root);
	}
	err_clear(&e);
	cr_expect_neq(paths_load(&p, "/r", "/nonexistent/paths.yaml",
			         reconcilers, nreconcilers, &e), 0);
	cr_expect(strstr(e.msg, "/nonexistent/paths.yaml") != NULL);
}

/* ------------------------------------------------------------------ */
/* The engine, in-process                                              */

extern const struct reconciler rec_llm_env, rec_opencode_json,
	rec_agent_bundles, rec_docker_mcp, rec_authorized_keys;

/* The file reconcilers only (the containers reconciler needs an engine). */
static const struct reconciler *const eng_recs[] = {
	&rec_llm_env, &rec_opencode_json, &rec_agent_bundles, &rec_docker_mcp,
	&rec_authorized_keys,
};

struct eng_fix {
	struct schema *schema;
	struct store *store;
	struct engine *en;
	char root[300];
	char data[300];
	char user[ID_LEN + 1];
};

static struct eng_fix F;

static void eng_path(char *out, size_t n, const char *rel)
{
	snprintf(out, n, "%s/%s", F.root, rel);
}

/* Options for an engine on the fixture's store over root, running the
 * file reconcilers. */
static void eng_options(struct engine_options *o, const char *root,
			int64_t resync_ms)
{
	memset(o, 0, sizeof(*o));
	o->store = F.store;
	o->schema = F.schema;
	o->root = root;
	o->resync_ms = resync_ms;
	o->reconcilers = eng_recs;
	o->nreconcilers = sizeof(eng_recs) / sizeof(eng_recs[0]);
}

static void eng_start(void)
{
	struct engine_options o;
	struct err e = ERR_INIT;

	tl_mkdtemp(eng_tmp, sizeof(eng_tmp), "engine");
	memset(&F, 0, sizeof(F));
	snprintf(F.root, sizeof(F.root), "%s/root", eng_tmp);
	snprintf(F.data, sizeof(F.data), "%s/data", eng_tmp);
	F.schema = tl_schema();
	F.store = tl_store_open(F.schema, F.data, 0);
	eng_options(&o, F.root, -1);
	o.backoff_min_ms = 20;
	o.backoff_max_ms = 200;
	cr_assert_eq(engine_new(&F.en, &o, &e), 0, "%s", e.msg);
	cr_assert_eq(engine_start(F.en, &e), 0, "%s", e.msg);
}

static void eng_stop(void)
{
	engine_free(F.en);
	store_close(F.store);
	schema_free(F.schema);
	memset(&F, 0, sizeof(F));
	eng_rmtree();
}

static void eng_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Wait (up to ms) until a full pass requested now has completed. */
static void eng_settle(int ms)
{
	uint64_t n = engine_request_full(F.en);
	int64_t until = util_monotonic_ms() + ms;

	while (engine_full_done(F.en) < n && util_monotonic_ms() < until)
		eng_sleep_ms(5);
	cr_assert_geq(engine_full_done(F.en), n, "engine did not settle");
}

/* Read a whole file (NULL when missing). Caller frees. */
static char *eng_read(const char *path)
{
	struct buf b = BUF_INIT;

	if (buf_read_file(&b, path, NULL))
		return NULL;
	return buf_detach(&b, NULL);
}

/* Wait up to ms for path to contain needle (or, with needle NULL, to
 * exist). Returns the elapsed ms, or -1 on timeout. */
static int64_t eng_wait_for(const char *path, const char *needle, int ms)
{
	int64_t t0 = util_monotonic_ms();
	char *s;
	bool ok;

	for (;;) {
		s = eng_read(path);
		ok = s && (!needle || strstr(s, needle));
		free(s);
		if (ok)
			return util_monotonic_ms() - t0;
		if (util_monotonic_ms() - t0 > ms)
			return -1;
		eng_sleep_ms(2);
	}
}

/* The status of reconciler name (a new reference) from engine_status. */
static json_t *eng_status(const char *name)
{
	json_t *s = NULL, *r, *v;
	size_t i;

	cr_assert_eq(engine_status(F.en, &s, NULL), 0);
	r = NULL;
	json_array_foreach(json_object_get(s, "reconcilers"), i, v)
		if (!strcmp(json_string_value(json_object_get(v, "name")), name))
			r = json_incref(v);
	json_decref(s);
	cr_assert_not_null(r, "no status for %s", name);
	return r;
}

static const char *eng_cond(json_t *st, const char *type, const char *key)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(st, "conditions"), i, c)
		if (!strcmp(json_string_value(json_object_get(c, "type")), type))
			return json_string_value(json_object_get(c, key));
	return NULL;
}

static int64_t eng_passes(const char *name)
{
	json_t *st = eng_status(name);
	int64_t n = json_integer_value(json_object_get(st, "passes"));

	json_decref(st);
	return n;
}

static void eng_delete(const char *coll, const char *id)
{
	struct store_txn *t = NULL;
	struct err e = ERR_INIT;

	cr_assert_eq(store_begin(F.store, &t, &e), 0, "%s", e.msg);
	cr_assert_eq(store_txn_delete(t, coll, id, 0, &e), 0, "%s", e.msg);
	cr_assert_eq(store_commit(t, &e), 0, "%s", e.msg);
}

static void eng_user(void)
{
	tl_upsert(F.store, "users", "{'email': 'u@example.com', 'password': 'x'}",
		  F.user);
}

static void eng_llm_key(const char *provider, const char *env_json,
			char id[ID_LEN + 1])
{
	char buf[2048];

	snprintf(buf, sizeof(buf),
		 "{'provider_id': '%s', 'user': '%s', 'env_vars': %s}",
		 provider, F.user, env_json);
	tl_upsert(F.store, "llm_keys", buf, id);
}

/* $KEY after `. file` in a POSIX shell. Caller frees. */
static char *eng_sh_value(const char *file, const char *key)
{
	char cmd[1024];
	struct buf b = BUF_INIT;
	char chunk[256];
	size_t n;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "sh -c '. \"$0\"; printf %%s \"$%s\"' '%s'",
		 key, file);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		buf_add(&b, chunk, n);
	cr_expect_eq(pclose(p), 0);
	return buf_detach(&b, NULL);
}

Test(engine, renders_every_file_at_start, .init = eng_start, .fini = eng_stop)
{
	static const struct {
		const char *rel;
		unsigned mode;
		const char *needle;
	} want[] = {
		{ "workspace/.opencode/llm.env", 0600, "# PocketCoder LLM keys" },
		{ "llm_keys/llm.env", 0600, "# PocketCoder LLM keys" },
		{ "workspace/.opencode/opencode.json", 0644, "\"*\": \"ask\"" },
		{ "mcp_config/docker-mcp.yaml", 0644, "name: docker-mcp" },
		{ "mcp_config/mcp.env", 0600, NULL },
		{ "ssh_keys/authorized_keys", 0644, NULL },
	};
	char path[512];
	struct stat st;
	json_t *s;
	size_t i;

	eng_settle(5000);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		eng_path(path, sizeof(path), want[i].rel);
		cr_assert_eq(stat(path, &st), 0, "%s missing", path);
		cr_expect_eq(st.st_mode & 07777, want[i].mode, "%s mode %o",
			     path, st.st_mode & 07777);
		cr_expect_geq(eng_wait_for(path, want[i].needle, 0), 0,
			      "%s content", path);
	}
	s = eng_status("llm-env");
	cr_expect_str_eq(eng_cond(s, "Ready", "status"), "True");
	cr_expect_str_eq(eng_cond(s, "Degraded", "status"), "False");
	cr_expect_eq(json_array_size(json_object_get(s, "artifacts")), 2);
	cr_expect_eq(strlen(json_string_value(json_object_get(
		json_array_get(json_object_get(s, "artifacts"), 0), "sha256"))), 64);
	json_decref(s);
}

Test(engine, change_reaches_both_llm_env_copies, .init = eng_start,
     .fini = eng_stop)
{
	static const char stored[] = "a b $HOME `x` \"q\" 'single' \\back é";
	char p1[512], p2[512], id[ID_LEN + 1] = "";
	char *v1, *v2, *c1, *c2;
	int64_t ms;

	eng_settle(5000);
	eng_user();
	/* JSON: \u0027 is a single quote (tl_upsert turns ' into "). */
	eng_llm_key("openai",
		    "{'OPENAI_API_KEY': 'a b $HOME `x` \\\"q\\\" \\u0027single\\u0027 \\\\back \u00e9'}",
		    id);
	eng_path(p1, sizeof(p1), "workspace/.opencode/llm.env");
	eng_path(p2, sizeof(p2), "llm_keys/llm.env");
	ms = eng_wait_for(p1, "OPENAI_API_KEY=", 2000);
	cr_assert_geq(ms, 0, "llm.env never got the key");
	cr_assert_geq(eng_wait_for(p2, "OPENAI_API_KEY=", 2000), 0);
	v1 = eng_sh_value(p1, "OPENAI_API_KEY");
	v2 = eng_sh_value(p2, "OPENAI_API_KEY");
	cr_expect_str_eq(v1, stored);
	cr_expect_str_eq(v2, v1);
	c1 = eng_read(p1);
	c2 = eng_read(p2);
	cr_expect_str_eq(c1, c2);
	free(v1);
	free(v2);
	free(c1);
	free(c2);
}

Test(engine, second_pass_writes_nothing, .init = eng_start, .fini = eng_stop)
{
	static const char *const rel[] = {
		"workspace/.opencode/llm.env", "llm_keys/llm.env",
		"workspace/.opencode/opencode.json", "mcp_config/docker-mcp.yaml",
		"mcp_config/mcp.env", "ssh_keys/authorized_keys",
		"workspace/.opencode/agents/poco.md",
	};
	struct stat before[7], after[7];
	char path[512], id[ID_LEN + 1] = "";
	json_t *s;
	int64_t w;
	size_t i;

	eng_user();
	eng_llm_key("x", "{'K': 'v'}", id);
	tl_upsert(F.store, "ai_agents", "{'name': 'poco', 'description': 'd', 'mode': 'primary'}",
		  NULL);
	tl_upsert(F.store, "mcp_servers", "{'name': 'git', 'status': 'approved', 'config': {'T': 'x'}}",
		  NULL);
	eng_settle(5000);
	eng_settle(5000);
	s = eng_status("llm-env");
	w = json_integer_value(json_object_get(s, "writes"));
	json_decref(s);
	for (i = 0; i < 7; i++) {
		eng_path(path, sizeof(path), rel[i]);
		cr_assert_eq(stat(path, &before[i]), 0, "%s", path);
	}
	eng_sleep_ms(20);
	eng_settle(5000);
	eng_settle(5000);
	for (i = 0; i < 7; i++) {
		eng_path(path, sizeof(path), rel[i]);
		cr_assert_eq(stat(path, &after[i]), 0, "%s", path);
		cr_expect_eq(before[i].st_ino, after[i].st_ino, "%s inode", path);
		cr_expect_eq(before[i].st_mtim.tv_sec, after[i].st_mtim.tv_sec);
		cr_expect_eq(before[i].st_mtim.tv_nsec, after[i].st_mtim.tv_nsec,
			     "%s mtime", path);
	}
	s = eng_status("llm-env");
	cr_expect_eq(json_integer_value(json_object_get(s, "writes")), w);
	json_decref(s);
}

Test(engine, drift_is_corrected_with_an_event, .init = eng_start,
     .fini = eng_stop)
{
	char path[512], *orig, *now;
	json_t *s, *ev;
	int64_t t0;

	eng_settle(5000);
	eng_path(path, sizeof(path), "workspace/.opencode/opencode.json");
	orig = eng_read(path);
	cr_assert_not_null(orig);
	/* Edited by hand. */
	tl_write_file(path, "{\"permission\": {\"*\": \"allow\"}}\n");
	t0 = util_monotonic_ms();
	for (;;) {
		now = eng_read(path);
		if (now && !strcmp(now, orig))
			break;
		free(now);
		cr_assert_lt(util_monotonic_ms() - t0, 1000,
			     "not restored within 1 s");
		eng_sleep_ms(2);
	}
	free(now);
	/* Deleted by hand. */
	cr_assert_eq(unlink(path), 0);
	cr_assert_geq(eng_wait_for(path, "\"*\": \"ask\"", 1000), 0,
		      "deleted file not restored within 1 s");
	eng_settle(5000);
	s = eng_status("opencode-json");
	ev = json_object_get(s, "events");
	cr_assert_geq(json_array_size(ev), 2);
	cr_expect_str_eq(json_string_value(json_object_get(
		json_array_get(ev, json_array_size(ev) - 1), "type")),
		"DriftCorrected");
	cr_expect_str_eq(json_string_value(json_object_get(
		json_array_get(ev, json_array_size(ev) - 1), "reason")),
		"Deleted");
	cr_expect_str_eq(json_string_value(json_object_get(
		json_array_get(ev, json_array_size(ev) - 1), "file")), path);
	cr_expect_str_eq(json_string_value(json_object_get(
		json_array_get(ev, json_array_size(ev) - 2), "reason")),
		"Modified");
	json_decref(s);
	free(orig);
}

Test(engine, degraded_on_a_directory_in_the_way_then_recovers,
     .init = eng_start, .fini = eng_stop)
{
	char path[512], env[512], id[ID_LEN + 1] = "";
	json_t *s;
	const char *msg;
	int64_t t0;

	eng_settle(5000);
	eng_path(path, sizeof(path), "mcp_config/docker-mcp.yaml");
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(mkdir(path, 0755), 0);
	eng_settle(5000);
	s = eng_status("docker-mcp");
	cr_expect_str_eq(eng_cond(s, "Degraded", "status"), "True");
	cr_expect_str_eq(eng_cond(s, "Ready", "status"), "False");
	msg = eng_cond(s, "Degraded", "message");
	cr_expect(msg && strstr(msg, "a directory is in the way") &&
		  strstr(msg, path), "message: %s", msg);
	cr_expect_neq(json_string_value(json_object_get(s, "nextRetryTime"))[0],
		      '\0');
	json_decref(s);
	/* Other reconcilers keep working meanwhile. */
	eng_user();
	eng_llm_key("p", "{'OTHER': '1'}", id);
	eng_path(env, sizeof(env), "workspace/.opencode/llm.env");
	cr_expect_geq(eng_wait_for(env, "OTHER='1'", 2000), 0);
	/* mcp.env (the sibling file) was still written. */
	eng_path(env, sizeof(env), "mcp_config/mcp.env");
	cr_expect_geq(eng_wait_for(env, NULL, 0), 0);
	/* The fault goes away: retried with backoff, recovers. */
	cr_assert_eq(rmdir(path), 0);
	t0 = util_monotonic_ms();
	cr_assert_geq(eng_wait_for(path, "name: docker-mcp", 3000), 0);
	cr_expect_lt(util_monotonic_ms() - t0, 3000);
	eng_settle(5000);
	s = eng_status("docker-mcp");
	cr_expect_str_eq(eng_cond(s, "Degraded", "status"), "False");
	cr_expect_str_eq(eng_cond(s, "Ready", "status"), "True");
	cr_expect_eq(json_integer_value(json_object_get(s, "failures")), 0);
	json_decref(s);
}

Test(engine, uncreatable_parent_is_degraded, .init = eng_start,
     .fini = eng_stop)
{
	char dir[512], file[512];
	const char *msg;
	json_t *s;

	eng_settle(5000);
	eng_path(dir, sizeof(dir), "ssh_keys");
	eng_path(file, sizeof(file), "ssh_keys/authorized_keys");
	engine_stop(F.en);     /* or it would restore the file at once */
	cr_assert_eq(unlink(file), 0);
	cr_assert_eq(rmdir(dir), 0);
	tl_write_file(dir, "a file where a directory should be\n");
	cr_assert_eq(engine_start(F.en, NULL), 0);
	eng_settle(5000);
	s = eng_status("authorized-keys");
	cr_expect_str_eq(eng_cond(s, "Degraded", "status"), "True");
	msg = eng_cond(s, "Degraded", "message");
	cr_expect(msg && strstr(msg, "is not a directory"), "message: %s", msg);
	json_decref(s);
	cr_assert_eq(unlink(dir), 0);
	cr_assert_geq(eng_wait_for(file, NULL, 3000), 0);
}

Test(engine, status_only_changes_do_not_retrigger, .init = eng_start,
     .fini = eng_stop)
{
	struct store_txn *t = NULL;
	char id[ID_LEN + 1] = "";
	json_t *st;
	int64_t before;

	eng_user();
	eng_llm_key("p", "{'A': '1'}", id);
	eng_settle(5000);
	eng_sleep_ms(100);
	eng_settle(5000);
	before = eng_passes("llm-env");
	st = json_pack("{s:s}", "note", "from someone else");
	cr_assert_eq(store_begin(F.store, &t, NULL), 0);
	cr_assert_eq(store_txn_set_status(t, "llm_keys", id, st, NULL), 0);
	cr_assert_eq(store_commit(t, NULL), 0);
	json_decref(st);
	eng_sleep_ms(300);
	cr_expect_eq(eng_passes("llm-env"), before);
	/* A data change does trigger. */
	eng_llm_key("p", "{'A': '2'}", id);
	eng_sleep_ms(300);
	cr_expect_gt(eng_passes("llm-env"), before);
}

/* observedGeneration read from the reconcilers' status (observed.h). */
static int64_t eng_observed_gen(const struct record *r)
{
	struct observed *o = observed_new(F.store);
	json_t *j = record_to_json(r);
	int64_t og;

	cr_assert(o && j);
	cr_assert_eq(observed_load(o, NULL), 0);
	cr_assert_eq(observed_set(o, j, false, NULL), 0);
	og = json_integer_value(json_object_get(json_object_get(j, "status"),
						"observedGeneration"));
	json_decref(j);
	observed_free(o);
	return og;
}

Test(engine, observed_generation_on_records, .init = eng_start,
     .fini = eng_stop)
{
	struct store_txn *t = NULL;
	struct record r;
	char id[ID_LEN + 1] = "";
	int64_t t0 = util_monotonic_ms(), rev;
	json_t *st;

	eng_user();
	id[0] = '\0';
	eng_llm_key("p", "{'A': '1'}", id);
	eng_llm_key("p", "{'A': '2'}", id);
	record_init(&r);
	for (;;) {
		record_release(&r);
		cr_assert_eq(store_get(F.store, "llm_keys", id, &r, NULL), 0);
		if (eng_observed_gen(&r) == r.generation)
			break;
		cr_assert_lt(util_monotonic_ms() - t0, 3000,
			     "observedGeneration never reached %lld",
			     (long long)r.generation);
		eng_sleep_ms(10);
	}
	cr_expect_eq(r.generation, 2);
	/* Nothing was written into the record for it: its revision is its
	 * own change's and its status holds no bookkeeping. */
	eng_settle(5000);
	rev = r.revision;
	record_release(&r);
	cr_assert_eq(store_get(F.store, "llm_keys", id, &r, NULL), 0);
	cr_expect_eq(r.revision, rev);
	cr_expect_null(json_object_get(r.status, "observedGeneration"));
	cr_expect_null(json_object_get(r.status, "observedGenerations"));
	/* A status write of someone else is no data change: still observed. */
	st = json_pack("{s:s}", "note", "from someone else");
	cr_assert_eq(store_begin(F.store, &t, NULL), 0);
	cr_assert_eq(store_txn_set_status(t, "llm_keys", id, st, NULL), 0);
	cr_assert_eq(store_commit(t, NULL), 0);
	json_decref(st);
	record_release(&r);
	cr_assert_eq(store_get(F.store, "llm_keys", id, &r, NULL), 0);
	cr_expect_gt(r.revision, rev);
	cr_expect_eq(eng_observed_gen(&r), 2);
	record_release(&r);
}

Test(engine, agent_bundles_follow_agents, .init = eng_start,
     .fini = eng_stop)
{
	char path[512], bad[512], id[ID_LEN + 1] = "";
	json_t *s;
	int64_t t0;

	tl_upsert(F.store, "ai_prompts", "{'name': 'p', 'body': 'You are Poco.'}", NULL);
	tl_upsert(F.store, "ai_agents", "{'name': 'poco', 'description': 'main', 'mode': 'primary'}",
		  id);
	tl_upsert(F.store, "ai_agents", "{'name': 'x y', 'mode': 'all'}", NULL);
	eng_path(path, sizeof(path), "workspace/.opencode/agents/poco.md");
	cr_assert_geq(eng_wait_for(path, "description: main", 2000), 0);
	eng_path(bad, sizeof(bad), "workspace/.opencode/agents/x y.md");
	eng_settle(5000);
	cr_expect_neq(access(bad, F_OK), 0);
	s = eng_status("agent-bundles");
	cr_expect_str_eq(eng_cond(s, "Degraded", "reason"), "RenderWarnings");
	cr_expect(strstr(eng_cond(s, "Degraded", "message"), "x y") != NULL);
	json_decref(s);
	eng_delete("ai_agents", id);
	t0 = util_monotonic_ms();
	while (access(path, F_OK) == 0) {
		cr_assert_lt(util_monotonic_ms() - t0, 2000,
			     "bundle of a deleted agent not removed");
		eng_sleep_ms(5);
	}
	eng_settle(5000);
	s = eng_status("agent-bundles");
	cr_expect_eq(json_array_size(json_object_get(s, "artifacts")), 0);
	json_decref(s);
}

Test(engine, opencode_json_keeps_foreign_keys_and_refuses_bad_json,
     .init = eng_start, .fini = eng_stop)
{
	char path[512], *txt;
	const char *msg;
	json_t *doc, *s;

	eng_settle(5000);
	eng_path(path, sizeof(path), "workspace/.opencode/opencode.json");
	/* An operator's file with keys pocketctl does not own. The write is
	 * drift, so restore it... by changing the store first: keys we do
	 * not own survive the patch. */
	engine_stop(F.en);
	tl_write_file(path, "{\"$schema\": \"https://opencode.ai/config.json\", "
		      "\"mcp\": {\"cao\": {\"type\": \"remote\"}}, "
		      "\"plugin\": [\"a.ts\"]}\n");
	cr_assert_eq(engine_start(F.en, NULL), 0);
	tl_upsert(F.store, "tool_permissions", "{'tool': 'bash', 'pattern': '*', 'action': 'deny'}",
		  NULL);
	cr_assert_geq(eng_wait_for(path, "\"bash\": \"deny\"", 2000), 0);
	txt = eng_read(path);
	doc = json_loads(txt, 0, NULL);
	cr_assert_not_null(doc, "not JSON: %s", txt);
	cr_expect_str_eq(json_string_value(json_object_get(doc, "$schema")),
			 "https://opencode.ai/config.json");
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(
		json_object_get(doc, "mcp"), "cao"), "type")), "remote");
	cr_expect(strstr(txt, "\"$schema\"") < strstr(txt, "\"permission\""));
	json_decref(doc);
	free(txt);
	/* Not JSON: left untouched, Degraded with the position. */
	eng_replace(path, "{\n  \"a\": 1,\n  oops\n}\n");
	eng_sleep_ms(700);      /* a hand edit is read once it has settled */
	eng_settle(5000);
	txt = eng_read(path);
	cr_expect_str_eq(txt, "{\n  \"a\": 1,\n  oops\n}\n");
	free(txt);
	s = eng_status("opencode-json");
	cr_expect_str_eq(eng_cond(s, "Degraded", "status"), "True");
	msg = eng_cond(s, "Degraded", "message");
	cr_expect(msg && strstr(msg, "opencode.json:3:"), "message: %s", msg);
	json_decref(s);
}

Test(engine, restart_remembers_owned_files, .init = eng_start,
     .fini = eng_stop)
{
	struct engine_options o;
	char path[512], id[ID_LEN + 1] = "";
	json_t *s;

	tl_upsert(F.store, "ai_agents", "{'name': 'gone', 'mode': 'all'}", id);
	eng_path(path, sizeof(path), "workspace/.opencode/agents/gone.md");
	cr_assert_geq(eng_wait_for(path, NULL, 2000), 0);
	eng_settle(5000);
	engine_free(F.en);
	F.en = NULL;
	/* Deleted while the engine was down: the next start removes the
	 * bundle it owned. */
	eng_delete("ai_agents", id);
	eng_options(&o, F.root, -1);
	cr_assert_eq(engine_new(&F.en, &o, NULL), 0);
	cr_assert_eq(engine_start(F.en, NULL), 0);
	eng_settle(5000);
	cr_expect_neq(access(path, F_OK), 0, "stale bundle survived a restart");
	s = eng_status("llm-env");
	cr_expect_str_eq(eng_cond(s, "Ready", "status"), "True");
	json_decref(s);
}

Test(engine, a_new_root_never_deletes_the_old_files, .init = eng_start,
     .fini = eng_stop)
{
	struct engine_options o;
	char old_env[512], new_env[700], new_root[600];

	eng_settle(5000);
	eng_path(old_env, sizeof(old_env), "workspace/.opencode/llm.env");
	cr_assert_eq(access(old_env, F_OK), 0);
	engine_free(F.en);
	F.en = NULL;
	snprintf(new_root, sizeof(new_root), "%s/root2", eng_tmp);
	eng_options(&o, new_root, -1);
	cr_assert_eq(engine_new(&F.en, &o, NULL), 0);
	cr_assert_eq(engine_start(F.en, NULL), 0);
	eng_settle(5000);
	snprintf(new_env, sizeof(new_env), "%s/workspace/.opencode/llm.env",
		 new_root);
	cr_expect_eq(access(new_env, F_OK), 0);
	cr_expect_eq(access(old_env, F_OK), 0, "the old root's file was deleted");
}

Test(engine, periodic_resync_runs_but_writes_nothing, .init = eng_start,
     .fini = eng_stop)
{
	struct engine_options o;
	char path[512];
	struct stat before, after;
	int64_t head, passes;

	eng_settle(5000);
	engine_free(F.en);
	F.en = NULL;
	eng_options(&o, F.root, 50);
	cr_assert_eq(engine_new(&F.en, &o, NULL), 0);
	cr_assert_eq(engine_start(F.en, NULL), 0);
	eng_settle(5000);
	eng_sleep_ms(100);
	eng_path(path, sizeof(path), "workspace/.opencode/opencode.json");
	cr_assert_eq(stat(path, &before), 0);
	head = store_head(F.store);
	passes = eng_passes("opencode-json");
	eng_sleep_ms(600);
	/* Several resyncs ran... */
	cr_expect_geq(eng_passes("opencode-json"), passes + 3);
	/* ... and wrote nothing: no file, no status, no revision. */
	cr_assert_eq(stat(path, &after), 0);
	cr_expect_eq(before.st_ino, after.st_ino);
	cr_expect_eq(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
	cr_expect_eq(store_head(F.store), head);
}

Test(engine, enqueue_from_another_thread, .init = eng_start, .fini = eng_stop)
{
	int64_t before, t0;

	eng_settle(5000);
	before = eng_passes("authorized-keys");
	engine_enqueue(F.en, "authorized-keys");
	engine_enqueue(F.en, "no-such-reconciler");
	engine_enqueue(NULL, "authorized-keys");
	t0 = util_monotonic_ms();
	while (eng_passes("authorized-keys") == before) {
		cr_assert_lt(util_monotonic_ms() - t0, 2000, "no pass ran");
		eng_sleep_ms(5);
	}
}

/* ---- the lifecycle: start(), the state in the pass, wake, stop() ---- */

struct life {
	int starts, stops, passes;
	const struct reconciler_env *env;
};

static struct life life_state;

static int life_start(const struct reconciler_env *env, void **state,
		      struct err *e)
{
	(void)e;
	life_state.starts++;
	life_state.env = env;
	*state = &life_state;
	return 0;
}

static void life_stop(void *state)
{
	((struct life *)state)->stops++;
}

static int life_reconcile(struct rctx *c, struct err *e)
{
	(void)e;
	((struct life *)rctx_state(c))->passes++;
	return 0;
}

static int off_start(const struct reconciler_env *env, void **state,
		     struct err *e)
{
	(void)env;
	(void)state;
	(void)e;
	return RECONCILER_OFF;
}

static const struct reconciler rec_life = {
	.name = "life", .description = "lifecycle test",
	.start = life_start, .stop = life_stop, .reconcile = life_reconcile,
};

static const struct reconciler rec_off = {
	.name = "off", .description = "never used",
	.start = off_start, .stop = life_stop, .reconcile = life_reconcile,
};

Test(engine, lifecycle_start_state_wake_stop, .init = eng_start,
     .fini = eng_stop)
{
	static const struct reconciler *const recs[] = { &rec_off, &rec_life };
	struct engine_options o;
	json_t *s = NULL;
	int passes, t0;

	engine_free(F.en);
	F.en = NULL;
	memset(&life_state, 0, sizeof(life_state));
	eng_options(&o, F.root, -1);
	o.reconcilers = recs;
	o.nreconcilers = 2;
	cr_assert_eq(engine_new(&F.en, &o, NULL), 0);
	cr_expect_eq(life_state.starts, 1);
	cr_expect(engine_state(F.en, "life") == &life_state);
	cr_expect_null(engine_state(F.en, "off"));
	cr_assert_eq(engine_start(F.en, NULL), 0);
	eng_settle(5000);
	cr_expect_geq(life_state.passes, 1);
	/* The off reconciler has no status at all. */
	cr_assert_eq(engine_status(F.en, &s, NULL), 0);
	cr_expect_eq(json_array_size(json_object_get(s, "reconcilers")), 1);
	json_decref(s);
	/* env->wake from another thread asks for a pass. */
	passes = life_state.passes;
	life_state.env->wake(life_state.env->wake_arg);
	for (t0 = 0; life_state.passes == passes && t0 < 2000; t0 += 5)
		eng_sleep_ms(5);
	cr_expect_gt(life_state.passes, passes, "wake ran no pass");
	engine_stop(F.en);
	cr_expect_eq(life_state.stops, 0, "stop() runs in engine_free()");
	engine_free(F.en);
	F.en = NULL;
	cr_expect_eq(life_state.stops, 1);
}

/* engine_reload() and wait until the full pass it asked for is over. */
static void eng_reload(void)
{
	uint64_t n = engine_reload(F.en);
	int64_t until = util_monotonic_ms() + 5000;

	while (engine_full_done(F.en) < n && util_monotonic_ms() < until)
		eng_sleep_ms(5);
	cr_assert_geq(engine_full_done(F.en), n, "reload pass did not finish");
}

Test(engine, reload_moves_files_and_a_bad_config_keeps_the_paths,
     .init = eng_start, .fini = eng_stop)
{
	struct engine_options o;
	char cfg[400], old_env[512], new_env[512];
	json_t *st, *all = NULL;

	snprintf(cfg, sizeof(cfg), "%s/paths.yaml", eng_tmp);
	eng_replace(cfg, "authorized_keys: ssh_keys/authorized_keys\n");
	engine_free(F.en);
	eng_options(&o, F.root, -1);
	o.paths_config = cfg;
	cr_assert_eq(engine_new(&F.en, &o, NULL), 0);
	cr_assert_eq(engine_start(F.en, NULL), 0);
	eng_settle(5000);
	eng_path(old_env, sizeof(old_env), "workspace/.opencode/llm.env");
	eng_path(new_env, sizeof(new_env), "workspace/.opencode/moved.env");
	cr_assert_eq(access(old_env, F_OK), 0);

	/* A good file: rendered at the new path, removed at the old one. */
	eng_replace(cfg, "llm_env: workspace/.opencode/moved.env\n");
	eng_reload();
	cr_expect_eq(access(new_env, F_OK), 0);
	cr_expect_neq(access(old_env, F_OK), 0, "the old file stayed");

	/* A bad one: the paths stay, the owners of paths are Degraded. */
	eng_replace(cfg, "llm_env: [not, a, path]\n");
	eng_reload();
	st = eng_status("llm-env");
	cr_expect_str_eq(eng_cond(st, "Degraded", "status"), "True");
	cr_expect_str_eq(eng_cond(st, "Degraded", "reason"), "PathsInvalid");
	cr_expect(strstr(eng_cond(st, "Degraded", "message"), "paths.yaml:1:"));
	json_decref(st);
	cr_assert_eq(engine_status(F.en, &all, NULL), 0);
	cr_expect(json_is_string(json_object_get(all, "pathsError")));
	cr_expect_str_eq(json_string_value(json_object_get(
			 json_object_get(all, "paths"), "llm_env")), new_env);
	json_decref(all);
	cr_expect_eq(access(new_env, F_OK), 0);

	/* Fixed: no longer Degraded, no error. */
	eng_replace(cfg, "llm_env: workspace/.opencode/moved.env\n");
	eng_reload();
	st = eng_status("llm-env");
	cr_expect_str_eq(eng_cond(st, "Degraded", "status"), "False");
	json_decref(st);
	all = NULL;
	cr_assert_eq(engine_status(F.en, &all, NULL), 0);
	cr_expect_null(json_object_get(all, "pathsError"));
	json_decref(all);
}

/* Passes of agent-bundles and opencode-json together. */
static int64_t eng_prompt_passes(void)
{
	return eng_passes("agent-bundles") + eng_passes("opencode-json");
}

Test(engine, prompts_no_agent_names_wake_nothing, .init = eng_start,
     .fini = eng_stop)
{
	char path[512], pid[ID_LEN + 1] = "", qid[ID_LEN + 1] = "";
	char aid[ID_LEN + 1] = "", buf[512], *oc;
	int64_t before;
	int i;

	tl_upsert(F.store, "ai_prompts", "{'name': 'p', 'body': 'Body P1.'}", pid);
	snprintf(buf, sizeof(buf), "{'name': 'poco', 'mode': 'primary', "
		 "'prompt': '%s'}", pid);
	tl_upsert(F.store, "ai_agents", buf, aid);
	eng_path(path, sizeof(path), "workspace/.opencode/agents/poco.md");
	cr_assert_geq(eng_wait_for(path, "Body P1.", 2000), 0);
	eng_settle(5000);
	eng_sleep_ms(100);
	eng_settle(5000);
	before = eng_prompt_passes();
	/* Prompts no agent names: neither read nor a reason to run. */
	for (i = 0; i < 20; i++) {
		snprintf(buf, sizeof(buf), "{'name': 'other-%d', 'body': 'x'}", i);
		tl_upsert(F.store, "ai_prompts", buf, NULL);
	}
	eng_sleep_ms(300);
	cr_expect_eq(eng_prompt_passes(), before,
		     "an unnamed prompt woke a reconciler");
	/* The prompt the agent names does. */
	tl_upsert(F.store, "ai_prompts", "{'name': 'p', 'body': 'Body P2.'}", pid);
	cr_assert_geq(eng_wait_for(path, "Body P2.", 2000), 0);
	eng_path(buf, sizeof(buf), "workspace/.opencode/opencode.json");
	cr_assert_geq(eng_wait_for(buf, "Body P2.", 2000), 0);
	/* The agent naming another prompt: that one is read, P no longer. */
	tl_upsert(F.store, "ai_prompts", "{'name': 'q', 'body': 'Body Q1.'}", qid);
	snprintf(buf, sizeof(buf), "{'name': 'poco', 'mode': 'primary', "
		 "'prompt': '%s'}", qid);
	tl_upsert(F.store, "ai_agents", buf, aid);
	cr_assert_geq(eng_wait_for(path, "Body Q1.", 2000), 0);
	eng_settle(5000);
	eng_sleep_ms(100);
	eng_settle(5000);
	before = eng_prompt_passes();
	tl_upsert(F.store, "ai_prompts", "{'name': 'p', 'body': 'Body P3.'}", pid);
	eng_sleep_ms(300);
	cr_expect_eq(eng_prompt_passes(), before,
		     "a prompt no longer named woke a reconciler");
	eng_path(buf, sizeof(buf), "workspace/.opencode/opencode.json");
	oc = eng_read(buf);
	cr_assert_not_null(oc);
	cr_expect(strstr(oc, "Body Q1.") && !strstr(oc, "Body P"), "%s", oc);
	free(oc);
	/* Deleting the named prompt clears it from the bundle. */
	snprintf(buf, sizeof(buf), "{'name': 'poco', 'mode': 'primary', "
		 "'prompt': ''}");
	tl_upsert(F.store, "ai_agents", buf, aid);
	eng_delete("ai_prompts", qid);
	eng_settle(5000);
	oc = eng_read(path);
	cr_assert_not_null(oc);
	cr_expect(!strstr(oc, "Body Q1."), "%s", oc);
	free(oc);
}
