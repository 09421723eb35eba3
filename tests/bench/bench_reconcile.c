/*
 * bench_reconcile.c - time from a committed record change to the new
 * llm.env renamed into place, seen by an inotify watch on its directory.
 *
 *   bench-reconcile inproc DATA_DIR ROOT N
 *       Opens the store in DATA_DIR (loaded beforehand, e.g. offline with
 *       `pocketctl apply`), runs the reconcile engine in this process on
 *       ROOT, and N times changes one llm_keys record in a store
 *       transaction: the clock starts when store_commit() returns and
 *       stops at the IN_MOVED_TO of llm.env whose content carries the new
 *       value. This is exactly commit -> rename.
 *   bench-reconcile http URL TOKEN KEY_ID FILE N
 *       The same through a running `pocketctl serve`: PATCH the llm_keys
 *       record KEY_ID over HTTP (libcurl); reports request start -> rename
 *       (an upper bound of commit -> rename: it includes parsing, the
 *       group-commit fsync and the reply) and how many renames landed
 *       before the reply did.
 *
 *   bench-reconcile toolperm DATA_DIR ROOT N
 *       As inproc, for opencode.json: N times changes the pattern of one
 *       tool_permissions record of the agent poco (applied beforehand),
 *       commit -> opencode.json renamed holding the new pattern. Run over
 *       stores with few and with many ai_prompts rows no agent names, it
 *       shows whether the reconciler's cost depends on them.
 *
 * Output: one line "p50 X ms  p99 Y ms  max Z ms  mean M ms  (n=N)".
 * Exit status 2 on errors. Not part of the unit tests; `make bench` builds
 * it against the library objects.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "buf.h"
#include "engine/engine.h"
#include "store/schema.h"
#include "store/store.h"
#include "util.h"

#define WAIT_MS 10000
#define GAP_US 50000         /* between changes: measure an idle engine */

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, int64_t *v, int n)
{
	double sum = 0;
	int i;

	qsort(v, (size_t)n, sizeof(*v), cmp_i64);
	for (i = 0; i < n; i++)
		sum += (double)v[i];
	printf("%-34s p50 %7.3f ms  p99 %7.3f ms  max %7.3f ms  mean %7.3f ms  (n=%d)\n",
	       what, v[n / 2] / 1000.0, v[(n * 99) / 100] / 1000.0,
	       v[n - 1] / 1000.0, sum / n / 1000.0, n);
}

static int watch_dir(const char *file, char *base, size_t n)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(file, '/');
	int fd, wd;

	if (!slash || (size_t)(slash - file) >= sizeof(dir))
		return -1;
	memcpy(dir, file, (size_t)(slash - file));
	dir[slash - file] = '\0';
	snprintf(base, n, "%s", slash + 1);
	fd = inotify_init1(IN_CLOEXEC);
	if (fd < 0)
		return -1;
	wd = inotify_add_watch(fd, dir, IN_MOVED_TO | IN_CLOSE_WRITE);
	if (wd < 0) {
		fprintf(stderr, "bench: cannot watch '%s': %s\n", dir,
			strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Wait for file (basename base, in the watched dir) to be renamed into
 * place holding needle; returns the time it was seen, or -1. */
static int64_t wait_rename(int fd, const char *file, const char *base,
			   const char *needle)
{
	char ev[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct pollfd p = { fd, POLLIN, 0 };
	struct buf b = BUF_INIT;
	int64_t deadline = now_us() + (int64_t)WAIT_MS * 1000, t;
	const struct inotify_event *ie;
	ssize_t n;
	char *q;
	bool ok;

	/* It may already be there (renamed before we started waiting). */
	for (;;) {
		if (poll(&p, 1, (int)((deadline - now_us()) / 1000) + 1) <= 0)
			return -1;
		n = read(fd, ev, sizeof(ev));
		t = now_us();
		if (n <= 0)
			continue;
		for (q = ev; q < ev + n; q += sizeof(*ie) + ie->len) {
			ie = (const struct inotify_event *)(void *)q;
			if (!(ie->mask & IN_MOVED_TO) || !ie->len ||
			    strcmp(ie->name, base))
				continue;
			buf_reset(&b);
			ok = buf_read_file(&b, file, NULL) == 0 &&
			     strstr(b.ptr, needle);
			if (ok) {
				buf_release(&b);
				return t;
			}
		}
		if (now_us() > deadline)
			break;
	}
	buf_release(&b);
	return -1;
}

/* ---- in-process ----------------------------------------------------- */

static int put(struct store *s, const char *coll, const char *id,
	       json_t *data, char out_id[ID_LEN + 1])
{
	struct store_txn *t = NULL;
	struct store_put p;
	struct record r;
	struct err e = ERR_INIT;
	int rc;

	memset(&p, 0, sizeof(p));
	p.collection = coll;
	p.id = id;
	p.data = data;
	p.partial = id != NULL;
	p.mode = id ? STORE_UPDATE : STORE_CREATE;
	record_init(&r);
	rc = store_begin(s, &t, &e);
	if (!rc)
		rc = store_txn_put(t, &p, &r, NULL, &e);
	if (!rc) {
		rc = store_commit(t, &e);
		t = NULL;
	}
	store_abort(t);
	if (!rc && out_id)
		memcpy(out_id, r.id, ID_LEN + 1);
	record_release(&r);
	if (rc)
		fprintf(stderr, "bench: %s\n", e.msg);
	return rc;
}

/* What the in-process rounds change, and where it must show up. */
struct bench_case {
	const char *label;
	const char *collection;      /* of the record the rounds change */
	const char *file;            /* below ROOT */
	/* Create what the rounds change (its id into id); 0 or an error. */
	int (*setup)(struct store *s, char id[ID_LEN + 1]);
	/* The change of round i: the data patch, and what file must hold. */
	json_t *(*change)(int i, char *needle, size_t n);
};

static int llm_setup(struct store *s, char key[ID_LEN + 1])
{
	char user[ID_LEN + 1], val[32], email[64];
	json_t *d;
	int rc;

	snprintf(val, sizeof(val), "bench-%ld", (long)getpid());
	snprintf(email, sizeof(email), "%s@example.com", val);
	d = json_pack("{s:s, s:s}", "email", email, "password", "unused-hash");
	rc = put(s, "users", NULL, d, user);
	json_decref(d);
	if (rc)
		return rc;
	d = json_pack("{s:s, s:s, s:{s:s}}", "provider_id", val, "user",
		      user, "env_vars", "BENCH", "start");
	rc = put(s, "llm_keys", NULL, d, key);
	json_decref(d);
	return rc;
}

static json_t *llm_change(int i, char *needle, size_t n)
{
	char val[32];

	snprintf(val, sizeof(val), "v%d", i + 100);
	snprintf(needle, n, "BENCH='%s'", val);
	return json_pack("{s:{s:s}}", "env_vars", "BENCH", val);
}

static int perm_setup(struct store *s, char id[ID_LEN + 1])
{
	struct record agent;
	struct err e = ERR_INIT;
	json_t *d;
	int rc;

	record_init(&agent);
	rc = store_get_by_name(s, "ai_agents", "poco", &agent, &e);
	if (rc) {
		fprintf(stderr, "bench: no agent poco: %s\n", e.msg);
		return rc;
	}
	d = json_pack("{s:s, s:s, s:s, s:s}", "agent", agent.id, "tool",
		      "bash", "pattern", "bench-start *", "action", "allow");
	rc = put(s, "tool_permissions", NULL, d, id);
	json_decref(d);
	record_release(&agent);
	return rc;
}

static json_t *perm_change(int i, char *needle, size_t n)
{
	char val[48];

	snprintf(val, sizeof(val), "bench-v%d *", i + 100);
	snprintf(needle, n, "\"%s\"", val);
	return json_pack("{s:s}", "pattern", val);
}

static const struct bench_case llm_case = {
	"commit -> rename (in-process)", "llm_keys",
	"workspace/.opencode/llm.env",
	llm_setup, llm_change,
};
static const struct bench_case perm_case = {
	"tool permission -> opencode.json", "tool_permissions",
	"workspace/.opencode/opencode.json",
	perm_setup, perm_change,
};

static int inproc(const struct bench_case *bc, const char *data_dir,
		  const char *root, int n)
{
	struct schema *schema = NULL;
	struct store *s = NULL;
	struct engine *en = NULL;
	struct engine_options eo;
	struct store_options so;
	struct err e = ERR_INIT;
	char id[ID_LEN + 1], file[PATH_MAX], base[256], needle[96];
	int64_t *lat = calloc((size_t)n, sizeof(*lat)), t0, t1;
	json_t *d;
	uint64_t req;
	int fd = -1, i, rc = 2;

	if (!lat || schema_load_default(&schema, &e))
		goto out;
	memset(&so, 0, sizeof(so));
	so.dir = data_dir;
	if (store_open(&s, schema, &so, &e))
		goto out;
	engine_options_init(&eo);
	eo.store = s;
	eo.schema = schema;
	eo.root = root;
	eo.resync_ms = -1;
	if (engine_new(&en, &eo, &e) || engine_start(en, &e))
		goto out;
	req = engine_request_full(en);
	while (engine_full_done(en) < req)
		usleep(1000);
	if (bc->setup(s, id))
		goto out;
	snprintf(file, sizeof(file), "%s/%s", root, bc->file);
	fd = watch_dir(file, base, sizeof(base));
	if (fd < 0)
		goto out;
	for (i = -20; i < n; i++) {      /* 20 warm-up rounds */
		d = bc->change(i, needle, sizeof(needle));
		if (put(s, bc->collection, id, d, NULL)) {
			json_decref(d);
			goto out;
		}
		t0 = now_us();
		json_decref(d);
		t1 = wait_rename(fd, file, base, needle);
		if (t1 < 0) {
			fprintf(stderr, "bench: %s never got %s\n", bc->file,
				needle);
			goto out;
		}
		if (i >= 0)
			lat[i] = t1 - t0;
		usleep(GAP_US);
	}
	report(bc->label, lat, n);
	rc = 0;
out:
	if (rc && e.msg[0])
		fprintf(stderr, "bench: %s\n", e.msg);
	if (fd >= 0)
		close(fd);
	engine_free(en);
	store_close(s);
	schema_free(schema);
	free(lat);
	return rc;
}

/* ---- through the server ---------------------------------------------- */

static size_t sink(char *p, size_t sz, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return sz * n;
}

static int http(const char *url, const char *token, const char *key,
		const char *file, int n)
{
	char target[2048], auth[4096], body[128], needle[64], base[256];
	int64_t *lat = calloc((size_t)n, sizeof(*lat)), *after = calloc((size_t)n, sizeof(*after));
	struct curl_slist *h = NULL;
	int64_t t0, ta, t1;
	long code = 0;
	int fd, i, early = 0, rc = 2;
	CURL *c;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	c = curl_easy_init();
	fd = watch_dir(file, base, sizeof(base));
	if (!c || fd < 0 || !lat || !after)
		goto out;
	snprintf(target, sizeof(target), "%s/api/collections/llm_keys/records/%s",
		 url, key);
	snprintf(auth, sizeof(auth), "Authorization: %s", token);
	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, target);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PATCH");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	for (i = -20; i < n; i++) {
		snprintf(body, sizeof(body), "{\"env_vars\":{\"BENCH\":\"h%d\"}}",
			 i + 100);
		snprintf(needle, sizeof(needle), "BENCH='h%d'", i + 100);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		t0 = now_us();
		if (curl_easy_perform(c) != CURLE_OK)
			goto out;
		ta = now_us();
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		if (code != 200) {
			fprintf(stderr, "bench: PATCH answered %ld\n", code);
			goto out;
		}
		t1 = wait_rename(fd, file, base, needle);
		if (t1 < 0) {
			fprintf(stderr, "bench: %s never got %s\n", file, needle);
			goto out;
		}
		if (i >= 0) {
			lat[i] = t1 - t0;
			after[i] = t1 > ta ? t1 - ta : 0;
			early += t1 <= ta;
		}
		usleep(GAP_US);
	}
	report("request start -> rename (HTTP)", lat, n);
	report("reply -> rename (0 if before)", after, n);
	printf("renamed into place before the HTTP reply arrived: %d of %d\n",
	       early, n);
	rc = 0;
out:
	curl_slist_free_all(h);
	if (c)
		curl_easy_cleanup(c);
	if (fd >= 0)
		close(fd);
	free(lat);
	free(after);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 5 && (!strcmp(argv[1], "inproc") ||
			  !strcmp(argv[1], "toolperm")))
		return inproc(strcmp(argv[1], "inproc") ? &perm_case :
			      &llm_case, argv[2], argv[3],
			      atoi(argv[4]) > 0 ? atoi(argv[4]) : 200);
	if (argc == 7 && !strcmp(argv[1], "http"))
		return http(argv[2], argv[3], argv[4], argv[5],
			    atoi(argv[6]) > 0 ? atoi(argv[6]) : 200);
	fprintf(stderr, "usage: bench-reconcile inproc DATA_DIR ROOT N\n"
			"       bench-reconcile toolperm DATA_DIR ROOT N\n"
			"       bench-reconcile http URL TOKEN KEY_ID FILE N\n");
	return 2;
}
