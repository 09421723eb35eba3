/*
 * server.c - `pocketctl serve`: lock the data directory, open the store,
 * prepare credentials (installation secret, bootstrap superuser, the local
 * CLI's token), apply start-up manifests, then run civetweb with one
 * request handler that dispatches through http_routes[] until SIGINT or
 * SIGTERM, and drain.
 *
 * The request path (handle_request) is the hot path: match the route, read
 * the caller's token, count streams, call the handler, count the reply, log
 * one line. It allocates only the URL-decoded path parameters and, for
 * authenticated callers, a copy of the auth record.
 *
 * THREAD SAFETY NOTES: the main thread owns start-up and shutdown and then
 * sleeps in sigwait(); every civetweb worker runs handle_request() on its
 * own struct http_req. struct server is filled before mg_start() and only
 * read afterwards, except srv->stopping, an atomic_bool that the main
 * thread sets once (workers, stream handlers and the hub only load it).
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <civetweb.h>
#include <jansson.h>

#include "actor.h"
#include "api_auth.h"
#include "api_watch.h"
#include "apply.h"
#include "applyset.h"
#include "conns.h"
#include "engine/engine.h"     /* engine */
#include "http.h"
#include "hub.h"
#include "log.h"
#include "manifest.h"
#include "metrics.h"
#include "pump.h"
#include "respcache.h"
#include "rules.h"
#include "sdnotify.h"
#include "seed.h"
#include "tickets.h"
#include "tokens.h"
#include "util.h"

#define SUPERUSERS "_superusers"
#define CLI_EMAIL API_AUTH_CLI_EMAIL
#define CLI_TOKEN_TTL ((int64_t)365 * 86400)
#define STREAM_START_WORKERS 16       /* workers beyond --workers that set
                                       * streams up for the pump */
#define KEEP_ALIVE_TIMEOUT_MS "5000"  /* idle time between requests */
#define PATH_MAX_LOG 200              /* path bytes in the request log */
#define LOCK_WAIT_MS 10000            /* for offline CLI commands to finish */
#define RATELIMIT_CAP 65536           /* counters (~1.5 MB) whatever the
                                       * number of clients */


void server_options_init(struct server_options *o)
{
	memset(o, 0, sizeof(*o));
	o->listen = "127.0.0.1:8090";
	o->data_dir = "./pocket-data";
	o->root_dir = "./pocket-root";
	o->manifests_dir = NULL;
	o->watch_manifests = false;
	o->max_body = (size_t)1 << 20;
	o->max_apply_body = (size_t)16 << 20;
	o->workers = 128;
	o->max_conns_per_ip = 64;
	o->header_timeout_ms = 10000;
	o->body_timeout_ms = 60000;
	o->max_streams = 1024;
	o->token_ttl = 86400 * 7;
	o->bcrypt_cost = AUTH_BCRYPT_COST_DEFAULT;
	ratelimit_config_init(&o->rate);
	o->backup_keep = 7;
	o->cron_grace_ms = 3600 * 1000;
	o->push.rate = PUSH_RATE_DEFAULT;
	o->poco.window_ms = POCO_WINDOW_DEFAULT_MS;
}

/* ---- the data directory lock ----------------------------------------- */

/*
 * The exclusive flock on an open DIR/lock. Offline CLI commands hold it
 * shared for their (short) duration: wait for them, up to LOCK_WAIT_MS. A
 * server holds it exclusively: refuse at once, naming its pid.
 */
static int take_lock(int fd, const char *path, const char *dir,
		     struct err *e)
{
	int64_t deadline = util_monotonic_ms() + LOCK_WAIT_MS;
	char pidbuf[32];
	ssize_t n;

	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK)
			return err_set(e, ERR_IO, "cannot lock '%s': %s", path,
				       strerror(errno));
		/* A shared lock is granted only when no server holds it. */
		if (flock(fd, LOCK_SH | LOCK_NB) != 0)
			break;
		flock(fd, LOCK_UN);
		if (util_monotonic_ms() >= deadline)
			return err_set(e, ERR_CONFLICT,
				       "data directory '%s' is in use by another "
				       "pocketctl command; try again when it "
				       "finishes", dir);
		usleep(50 * 1000);
	}
	n = pread(fd, pidbuf, sizeof(pidbuf) - 1, 0);
	pidbuf[n > 0 ? n : 0] = '\0';
	pidbuf[strcspn(pidbuf, "\n")] = '\0';
	return err_set(e, ERR_CONFLICT,
		       "another pocketctl serve is using data directory '%s' "
		       "(pid %s)", dir, pidbuf[0] ? pidbuf : "unknown");
}

/*
 * flock(DIR/lock) for the life of the process; the file holds our pid so a
 * refused second server can say who holds it. The kernel drops the lock
 * when the process dies, so a crash never leaves a stale lock behind.
 */
static int lock_data_dir(const char *dir, int *fd_out, struct err *e)
{
	char *path = NULL, pidbuf[32] = "";
	int fd = -1, rc = 0, len;

	*fd_out = -1;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = fs_mkdirs(dir, e);
		if (rc)
			goto out;
		(void)chmod(dir, 0700);
	}
	path = path_join(dir, "lock");
	if (!path) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0)
		(void)fchmod(fd, 0600);   /* one made by an older pocketctl */
	if (fd < 0) {
		rc = err_set(e, ERR_IO, "cannot open '%s': %s", path,
			     strerror(errno));
		goto out;
	}
	rc = take_lock(fd, path, dir, e);
	if (rc)
		goto out;
	len = snprintf(pidbuf, sizeof(pidbuf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pidbuf, (size_t)len, 0) != len) {
		rc = err_set(e, ERR_IO, "cannot write '%s': %s", path,
			     strerror(errno));
		goto out;
	}
	*fd_out = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

/* ---- credentials ----------------------------------------------------- */

/* Create a _superusers record {email, password hash or placeholder,
 * tokenKey}. */
static int create_superuser(struct server *srv, const char *email,
			    const char *password_hash, struct record *out,
			    struct err *e)
{
	json_t *data = json_pack("{s:s, s:s}", "email", email, "password",
				 password_hash);
	int rc;

	if (!data)
		return err_set(e, ERR_NOMEM, "out of memory");
	rc = api_auth_create(srv->store, SUPERUSERS, data, out, e);
	json_decref(data);
	return rc;
}

/*
 * The local CLI's credentials: a _superusers record CLI_EMAIL with a
 * password no bcrypt hash can match (so it can only use its token), and a
 * token for it in DATA_DIR/cli.token (0600), issued anew at each start.
 */
static int write_cli_token(struct server *srv, struct err *e)
{
	const struct collection *c = schema_find(srv->schema, SUPERUSERS);
	char *token = NULL, *path = NULL, *line = NULL;
	char placeholder[AUTH_TOKEN_KEY_LEN + 2];
	const char *tk;
	struct record rec;
	int rc;

	rc = api_auth_find_by_email(srv->store, c, CLI_EMAIL, &rec, e);
	if (rc == ERR_NOT_FOUND) {
		/* "!..." is not a bcrypt hash: auth_password_verify() refuses
		 * every password against it. */
		placeholder[0] = '!';
		rc = auth_token_key_new(placeholder + 1, e);
		if (!rc)
			rc = create_superuser(srv, CLI_EMAIL, placeholder,
					      &rec, e);
	}
	if (rc)
		goto out;
	tk = json_string_value(json_object_get(rec.data, "tokenKey"));
	rc = auth_token_issue(&srv->keys, c->id, rec.id, tk ? tk : "",
			      CLI_TOKEN_TTL, (int64_t)time(NULL), &token, e);
	if (rc)
		goto out;
	path = path_join(srv->opts->data_dir, "cli.token");
	line = malloc(strlen(token) + 2);
	if (!path || !line) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	strcpy(line, token);
	strcat(line, "\n");
	rc = auth_write_private_file(path, line, strlen(line), e);
out:
	if (rc)
		err_prefix(e, "cannot prepare the CLI token: ");
	record_release(&rec);
	free(token);
	free(path);
	free(line);
	return rc;
}

/* ---- start-up manifests ---------------------------------------------- */

static int apply_manifests(struct server *srv, struct err *e)
{
	const char *paths[1] = { srv->opts->manifests_dir };
	struct apply_paths l = { srv->schema, paths, 1, 0 };
	struct manifest_set set = { NULL, 0, 0 };
	struct apply_opts ao;
	json_t *result = NULL;
	int rc;

	memset(&ao, 0, sizeof(ao));
	/* A watched directory is an apply set from the start; the engine's
	 * first pass, right after, prunes it. */
	ao.applyset = srv->opts->watch_manifests ? srv->applyset : NULL;
	ao.keys = &srv->keys;
	/* loaded inside the apply: unchanged text is not parsed */
	rc = apply_run_load(srv->store, apply_load_paths, &l, &set, &ao,
			    &result, e);
	if (rc)
		goto out;
	log_msg(LOG_INFO, "manifests",
		"applied %s: %lld created, %lld configured, %lld unchanged",
		srv->opts->manifests_dir,
		(long long)json_integer_value(json_object_get(result, "created")),
		(long long)json_integer_value(json_object_get(result, "configured")),
		(long long)json_integer_value(json_object_get(result, "unchanged")));
out:
	json_decref(result);
	manifest_set_release(&set);
	return rc;
}

/*
 * SIGHUP, on the main thread: re-apply the manifests directory (a watched
 * one is the engine's: its full pass re-applies it) and have the engine
 * re-read paths.yaml (engine_reload()). A failure is logged; the server
 * goes on with what it had.
 */
static void reload(struct server *srv)
{
	struct err e = ERR_INIT;

	log_msg(LOG_INFO, NULL, "SIGHUP: re-reading the paths%s",
		srv->opts->manifests_dir ? " and re-applying the manifests" : "");
	if (srv->opts->manifests_dir && !srv->opts->watch_manifests &&
	    apply_manifests(srv, &e))
		log_msg(LOG_ERROR, NULL, "SIGHUP: %s not applied: %s",
			srv->opts->manifests_dir, e.msg);
	engine_reload(srv->engine);
}

/* ---- request dispatch ------------------------------------------------ */

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * One line per request on stderr, written with one write(2) of its own
 * instead of through stdio: stderr's lock, taken by every worker for every
 * request, was contended under load (a sleep and a wake each time).
 */
static void log_request(const char *method, const char *path, int status,
			int64_t us)
{
	log_msg(status >= 500 ? LOG_ERROR : LOG_INFO, "http",
		"%s %.*s %d %.1fms", method, PATH_MAX_LOG, path, status,
		(double)us / 1000.0);
}

struct span {
	const char *p;
	size_t n;
};

/*
 * Match path against pattern; on success fill spans[0..HTTP_MAX_PARAMS)
 * with the raw (still URL-encoded) parameter values and return true.
 */
static bool route_match(const char *pattern, const char *path,
			struct span *spans)
{
	const char *pp = pattern, *sp = path;
	size_t np = 0, plen, slen;

	while (*pp == '/' && *sp == '/') {
		pp++;
		sp++;
		plen = strcspn(pp, "/");
		slen = strcspn(sp, "/");
		if (plen == 1 && pp[0] == '*' && !pp[1]) {
			if (np < HTTP_MAX_PARAMS)
				spans[np++] = (struct span){ sp, strlen(sp) };
			return true;
		}
		if (pp[0] == ':') {
			if (!slen)
				return false;
			if (np < HTTP_MAX_PARAMS)
				spans[np++] = (struct span){ sp, slen };
		} else if (plen != slen || memcmp(pp, sp, plen) != 0) {
			return false;
		}
		pp += plen;
		sp += slen;
	}
	/* A trailing star pattern ("/x/ *") also matches "/x" itself. */
	if (!*sp && pp[0] == '/' && pp[1] == '*' && !pp[2]) {
		if (np < HTTP_MAX_PARAMS)
			spans[np++] = (struct span){ sp, 0 };
		return true;
	}
	return !*pp && !*sp;
}

/* Find the route for method + path. *allowed is set when some pattern
 * matched but not with this method (405). Returns the index or -1. */
static long find_route(const char *method, const char *path,
		       struct span *spans, bool *allowed)
{
	size_t i;

	*allowed = false;
	for (i = 0; i < http_nroutes; i++) {
		const struct http_route *rt = &http_routes[i];
		struct span tmp[HTTP_MAX_PARAMS];

		memset(tmp, 0, sizeof(tmp));
		if (!route_match(rt->pattern, path, tmp))
			continue;
		if (rt->method && strcmp(rt->method, method) != 0 &&
		    !(strcmp(method, "HEAD") == 0 &&
		      strcmp(rt->method, "GET") == 0)) {
			*allowed = true;
			continue;
		}
		memcpy(spans, tmp, sizeof(tmp));
		return (long)i;
	}
	return -1;
}

/*
 * The name of parameter i of pattern ("c" for ":c", "*" for a final star)
 * into out (size n). Patterns are the route table's, short and known.
 */
static void param_name(const char *pattern, size_t i, char *out, size_t n)
{
	const char *p = pattern;
	size_t len;

	snprintf(out, n, "%s", "?");
	while ((p = strchr(p, '/')) != NULL) {
		p++;
		len = strcspn(p, "/");
		if (p[0] != ':' && !(p[0] == '*' && len == 1))
			continue;
		if (i-- == 0) {
			if (p[0] == ':') {
				p++;
				len--;
			}
			snprintf(out, n, "%.*s", (int)len, p);
			return;
		}
	}
}

/*
 * URL-decode the path parameters into r->params. A decoded parameter with
 * a NUL byte or invalid UTF-8 is refused (ERR_INVALID naming it): a NUL
 * would silently cut the name everything after uses ("chats%00zzz" read as
 * "chats"), and invalid UTF-8 cannot be quoted back in a JSON reply.
 */
static int decode_params(struct http_req *r, const char *pattern,
			 const struct span *spans, struct err *e)
{
	char name[32];
	size_t i;
	int n;

	for (i = 0; i < HTTP_MAX_PARAMS && spans[i].p; i++) {
		r->params[i] = malloc(spans[i].n + 1);
		if (!r->params[i])
			return err_set(e, ERR_NOMEM, "out of memory");
		n = mg_url_decode(spans[i].p, (int)spans[i].n, r->params[i],
				  (int)spans[i].n + 1, 0);
		if (n < 0)
			n = 0;
		r->params[i][n] = '\0';
		if (!http_utf8_valid(r->params[i], (size_t)n)) {
			param_name(pattern, i, name, sizeof(name));
			return err_set_field(e, ERR_INVALID, name,
					     "path parameter '%s' must be "
					     "valid UTF-8 without NUL bytes",
					     name);
		}
	}
	return 0;
}

/*
 * RFC 9112 section 6.1: a request with both Content-Length and
 * Transfer-Encoding may be read differently by a proxy in front and by us
 * (request smuggling), so it is refused and its connection closed: what
 * follows on it is never taken for a request. Returns true when refused.
 */
static bool refuse_ambiguous_length(struct http_req *r)
{
	if (!http_header(r, "Transfer-Encoding") ||
	    !http_header(r, "Content-Length"))
		return false;
	mg_disable_connection_keep_alive(r->conn);
	http_fail(r, ERR_INVALID, "a request must not carry both "
		  "Content-Length and Transfer-Encoding");
	return true;
}

/* ---- caller identity ------------------------------------------------- */

/*
 * Fill r->auth from the Authorization header (tokens.h), or on the watch
 * route (ticket_ok) without one from ?ticket= (tickets.h). A missing
 * credential is a guest; a bad or expired one is an error
 * (ERR_UNAUTHORIZED -> 401). The request log prints the path only, never
 * the query: a ticket stays out of the log.
 */
static int read_auth(struct http_req *r, bool ticket_ok, struct err *e)
{
	const char *token = auth_header_token(http_header(r, "Authorization"));
	char ticket[TICKET_MAX];
	int n;

	if (token)
		return tokens_check(r->srv->tokens, token, &r->auth, e);
	if (!ticket_ok)
		return 0;
	n = http_query(r, "ticket", ticket, sizeof(ticket));
	if (n == -1)
		return 0;
	if (n < 0)
		return err_set(e, ERR_UNAUTHORIZED, "malformed watch ticket");
	return ticket_check(r->srv->store, r->srv->schema, &r->srv->keys,
			    ticket, (int64_t)time(NULL), &r->auth, e);
}

static int reply_not_found(struct http_req *r)
{
	json_t *body = json_pack("{s:i, s:s, s:{}}", "status", 404, "message",
				 "The requested resource wasn't found.", "data");

	return http_reply_json(r, 404, body, NULL);   /* body stolen */
}

static int reply_method_not_allowed(struct http_req *r)
{
	json_t *body = json_pack("{s:i, s:s, s:{}}", "status", 405, "message",
				 "Method not allowed.", "data");

	return http_reply_json(r, 405, body, NULL);   /* body stolen */
}

/* CORS preflight: PocketBase allows every origin by default. */
static int reply_preflight(struct http_req *r)
{
	const char *want = http_header(r, "Access-Control-Request-Headers");
	char extra[1024];

	snprintf(extra, sizeof(extra),
		 "Access-Control-Allow-Methods: GET, HEAD, POST, PUT, PATCH, DELETE\r\n"
		 "Access-Control-Allow-Headers: %.512s\r\n"
		 "Access-Control-Max-Age: 86400\r\n",
		 want && !strpbrk(want, "\r\n") ? want :
		 "Authorization, Content-Type, If-Match, Last-Event-ID");
	return http_reply_empty(r, 204, extra);
}

/*
 * The request budgets of the route's groups (ratelimit.h), per client IP:
 * "all" for every request, "auth" for the auth routes, "write" for every
 * other method than GET, HEAD and OPTIONS. Over one: 429 with Retry-After
 * and true.
 */
static bool over_budget(struct http_req *r, const struct http_route *rt)
{
	const struct rl_rule *rules = r->srv->opts->rate.rules;
	const char *m = r->ri->request_method;
	const char *ip = r->ri->remote_addr;
	bool auth = rt->fn == api_auth_with_password ||
		    rt->fn == api_auth_refresh;
	bool write = strcmp(m, "GET") && strcmp(m, "HEAD") &&
		     strcmp(m, "OPTIONS");
	enum rl_group g = auth ? RL_AUTH : RL_WRITE;
	int64_t now;
	int wait;

	if (!rules[RL_ALL].max && (!(auth || write) || !rules[g].max))
		return false;   /* the default for reads: no budget */
	now = ratelimit_now_ms();
	wait = ratelimit_take(r->srv->ratelimit, RL_ALL, &rules[RL_ALL], ip,
			      true, now);
	if (!wait && (auth || write))
		wait = ratelimit_take(r->srv->ratelimit, g, &rules[g], ip,
				      true, now);
	if (!wait)
		return false;
	http_reply_too_many(r, wait);
	return true;
}

/*
 * A connection beyond the cap of its address (conns.h): 503, and the
 * connection is closed after it.
 */
static void refuse_over_cap(struct http_req *r)
{
	char msg[200];

	snprintf(msg, sizeof(msg), "too many connections from %s (the limit "
		 "is %d per client address); try again later",
		 r->ri->remote_addr, conns_max_per_ip(r->srv->conns));
	mg_disable_connection_keep_alive(r->conn);
	http_reply_json(r, 503, json_pack("{s:i, s:s, s:{}}", "status", 503,
					  "message", msg, "data"),
			"Retry-After: 1\r\n");   /* body stolen */
}

bool server_worker_stream_take(struct server *srv)
{
	if (atomic_fetch_add(&srv->worker_streams, 1) < WORKER_STREAMS_MAX)
		return true;
	atomic_fetch_sub(&srv->worker_streams, 1);
	return false;
}

static int handle_request(struct mg_connection *conn, void *cbdata)
{
	struct server *srv = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	struct span spans[HTTP_MAX_PARAMS];
	struct err e = ERR_INIT;
	struct http_req r;
	char writer[STORE_WRITER_MAX];
	const char *path;
	int64_t t0 = now_us();
	bool allowed, stream = false;
	long idx;
	size_t i;

	memset(&r, 0, sizeof(r));
	memset(spans, 0, sizeof(spans));
	r.conn = conn;
	r.ri = ri;
	r.srv = srv;
	r.slot = mg_get_user_connection_data(conn);
	buf_init(&r.body, 0);
	/* The raw path: parameters are decoded one segment at a time, so an
	 * encoded "/" stays inside its segment. */
	path = ri->local_uri_raw ? ri->local_uri_raw : ri->local_uri;
	if (!path)
		path = "";
	idx = -1;
	if (conns_request(srv->conns, r.slot, ri)) {
		refuse_over_cap(&r);
		goto done;
	}
	if (refuse_ambiguous_length(&r))
		goto done;
	idx = find_route(ri->request_method, path, spans, &allowed);
	if (idx >= 0)
		r.route = http_routes[idx].pattern;
	if (idx < 0 && strcmp(ri->request_method, "OPTIONS") == 0) {
		reply_preflight(&r);
		goto done;
	}
	if (idx < 0) {
		if (allowed)
			reply_method_not_allowed(&r);
		else
			reply_not_found(&r);
		goto done;
	}
	if (over_budget(&r, &http_routes[idx]))
		goto done;
	if (decode_params(&r, http_routes[idx].pattern, spans, &e)) {
		http_reply_error(&r, &e);
		goto done;
	}
	/* Before the caller's auth record is read (tokens.c may hand out a
	 * copy read at an older head, kept while no auth record changed):
	 * see struct http_req.head. */
	r.head = store_head(srv->store);
	if (read_auth(&r, http_routes[idx].fn == api_watch, &e)) {
		http_reply_error(&r, &e);
		goto done;
	}
	/* Whatever the handler writes, the change log names the caller. */
	actor_of_caller(&r.auth, writer, sizeof(writer));
	store_set_thread_writer(writer);
	if (http_routes[idx].stream) {
		if (metrics_stream_enter(srv->metrics,
					 srv->opts->max_streams) != 0) {
			http_fail(&r, ERR_UNAVAILABLE,
				  "too many open streams (the limit is %d); "
				  "try again later", srv->opts->max_streams);
			goto done;
		}
		stream = true;
	}
	if (http_routes[idx].stream == STREAM_WORKER && srv->pump) {
		if (!server_worker_stream_take(srv)) {
			http_fail(&r, ERR_UNAVAILABLE,
				  "too many open log streams (the limit is "
				  "%d); try again later", WORKER_STREAMS_MAX);
			goto streams_done;
		}
		r.worker_stream = true;
	}
	if (http_routes[idx].fn(&r) < 0 && !r.status)
		http_fail(&r, ERR_INTERNAL, "the request failed");
	else if (!r.status)
		http_fail(&r, ERR_INTERNAL, "the handler sent no reply");
streams_done:
	if (r.worker_stream)
		atomic_fetch_sub(&srv->worker_streams, 1);
	if (stream && !r.detached)
		metrics_stream_leave(srv->metrics);
done:
	conns_reply(r.slot, r.detached);
	metrics_observe(srv->metrics, idx >= 0 ? (size_t)idx : http_nroutes,
			ri->request_method, r.status, now_us() - t0);
	log_request(ri->request_method, path, r.status, now_us() - t0);
	store_set_thread_writer(NULL);
	for (i = 0; i < HTTP_MAX_PARAMS; i++)
		free(r.params[i]);
	json_decref(r.auth.record);
	buf_release(&r.body);
	return r.status ? r.status : 500;
}

/* While mg_start2() runs on the main thread, civetweb's complaints are kept
 * here (the first one) for start_civetweb() to turn into one line; the
 * workers' own threads log theirs. */
static _Thread_local char *civet_start_msg;
#define CIVET_START_MSG_MAX 256

/* civetweb's own errors, in the server's log. */
static int log_message(const struct mg_connection *conn, const char *msg)
{
	(void)conn;
	if (civet_start_msg) {
		if (!civet_start_msg[0])
			snprintf(civet_start_msg, CIVET_START_MSG_MAX, "%s", msg);
		return 1;
	}
	log_msg(LOG_WARN, "civetweb", "%s", msg);
	return 1;
}

/*
 * Why civetweb could not listen, in a few words: its "cannot bind to
 * HOST:PORT: ERRNO (TEXT)" becomes "address in use" for EADDRINUSE (the
 * usual case: another server on the port), strerror() for another errno,
 * and civetweb's own words otherwise.
 */
static void listen_reason(const char *civet, const char *fallback, char *out,
			  size_t n)
{
	const char *p = strstr(civet, "cannot bind to ");
	int code = 0;

	p = p ? strstr(p, ": ") : NULL;
	if (p && sscanf(p, ": %d (", &code) == 1 && code > 0) {
		if (code == EADDRINUSE)
			snprintf(out, n, "address in use");
		else
			snprintf(out, n, "%s", strerror(code));
		return;
	}
	snprintf(out, n, "%s", civet[0] ? civet : fallback[0] ? fallback :
		 "civetweb failed to start");
}

/* ---- discovery file -------------------------------------------------- */

/* "http://HOST:PORT" for clients on this machine: a wildcard or missing
 * host becomes 127.0.0.1. */
static void server_url(const char *listen, int port, char *out, size_t n)
{
	char host[256] = "127.0.0.1";
	const char *colon = strrchr(listen, ':');
	size_t len;

	if (colon && colon != listen) {
		len = (size_t)(colon - listen);
		if (len < sizeof(host)) {
			memcpy(host, listen, len);
			host[len] = '\0';
		}
		if (!strcmp(host, "0.0.0.0") || !strcmp(host, "[::]") ||
		    !strcmp(host, "*"))
			strcpy(host, "127.0.0.1");
	}
	snprintf(out, n, "http://%s:%d", host, port);
}

static int write_server_json(struct server *srv, char *url, size_t n,
			     struct err *e)
{
	struct mg_server_port ports[4];
	char *path = NULL, *text = NULL;
	json_t *doc = NULL;
	int np, rc = 0;

	memset(ports, 0, sizeof(ports));
	np = mg_get_server_ports(srv->ctx, 4, ports);
	server_url(srv->opts->listen, np > 0 ? ports[0].port : 0, url, n);
	doc = json_pack("{s:s, s:I}", "url", url, "pid", (json_int_t)getpid());
	text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
	path = path_join(srv->opts->data_dir, "server.json");
	if (!text || !path) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	/* 0600, like every file the server writes in the data directory */
	rc = fs_write_atomic(path, text, strlen(text), 0600, e);
out:
	json_decref(doc);
	free(text);
	free(path);
	return rc;
}

static void remove_server_json(const struct server *srv)
{
	char *path = path_join(srv->opts->data_dir, "server.json");

	if (path)
		unlink(path);
	free(path);
}

/* ---- stop ------------------------------------------------------------ */

struct stopper {
	struct mg_context *ctx;
	atomic_bool done;
};

static void *stop_thread(void *arg)
{
	struct stopper *st = arg;

	mg_stop(st->ctx);
	atomic_store(&st->done, true);
	return NULL;
}

/* Open and drop one TCP connection to url ("http://HOST:PORT"). */
static void poke(const char *url)
{
	struct addrinfo hints, *ai = NULL, *a;
	char host[256];
	const char *h = url + strlen("http://"), *colon = strrchr(h, ':');
	size_t n;
	int fd;

	if (strncmp(url, "http://", 7) || !colon)
		return;
	if (*h == '[')                      /* "[::1]:8090" */
		h++;
	n = (size_t)(colon - h) - (colon[-1] == ']');
	if (n >= sizeof(host))
		return;
	memcpy(host, h, n);
	host[n] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host, colon + 1, &hints, &ai))
		return;
	for (a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK |
			    SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		(void)!connect(fd, a->ai_addr, a->ai_addrlen);
		close(fd);
		break;
	}
	freeaddrinfo(ai);
}

/*
 * mg_stop(), promptly. civetweb's master thread looks at its stop flag
 * only between polls of the listening socket, up to 2 s apart
 * (SOCKET_TIMEOUT_QUANTUM), so an idle server took that long to exit: with
 * mg_stop() on a thread of its own, the main thread knocks on the
 * listening socket every 20 ms until it returns. A knock made after the
 * stop flag is set wakes the poll and is never accepted.
 */
static void stop_civetweb(struct mg_context *ctx, const char *url)
{
	struct stopper st = { ctx, false };
	struct timespec nap = { 0, 20 * 1000000L };
	pthread_t t;

	if (pthread_create(&t, NULL, stop_thread, &st)) {
		mg_stop(ctx);
		return;
	}
	while (!atomic_load(&st.done)) {
		poke(url);
		nanosleep(&nap, NULL);
	}
	pthread_join(t, NULL);
}

/* ---- run ------------------------------------------------------------- */

/* The hub fills its ring only while streams are open (hub.h). */
static int streams_open(void *metrics)
{
	return metrics_streams_open(metrics);
}

/* Every stream is an open socket: allow as many as the hard limit. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * civetweb's own authorization, replaced: the handlers authenticate each
 * request themselves (auth.h). Without a handler here civetweb looks for a
 * passwords file for every request, "/.htpasswd" when it serves no
 * directory: one failing stat() per request, and a stray file of that name
 * would put HTTP digest authentication in front of the whole API.
 */
static int allow_all(struct mg_connection *conn, void *cbdata)
{
	(void)conn;
	(void)cbdata;
	return 1;
}

/* civetweb's init_connection: a worker took a new connection. */
static int conn_opened(const struct mg_connection *conn, void **conn_data)
{
	struct server *srv = mg_get_user_context_data(conn);

	if (srv)
		*conn_data = conns_open(srv->conns, conn);
	return 0;
}

/* jemalloc's control call in the release build (Makefile), absent (NULL)
 * under the sanitizers' allocator. */
int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp,
	    size_t newlen) __attribute__((weak));

/*
 * civetweb's connection_close, on the same worker. The worker may now sit
 * idle for long: the objects its allocator cache holds go back to the
 * shared arenas (whose unused pages are returned in time), so a large pool
 * costs memory only while it is busy.
 */
static void conn_closed(const struct mg_connection *conn)
{
	struct server *srv = mg_get_user_context_data(conn);

	if (srv)
		conns_close(srv->conns, mg_get_user_connection_data(conn));
	if (mallctl)
		mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
}

/* Threads in civetweb's pool: the request workers, then the ones kept for
 * starting streams and for log streams (or a thread per stream, without
 * the pump). */
static int pool_size(const struct server *srv)
{
	return srv->opts->workers +
	       (srv->pump ? STREAM_START_WORKERS + WORKER_STREAMS_MAX
			  : srv->opts->max_streams);
}

static int start_civetweb(struct server *srv, struct err *e)
{
	struct mg_callbacks cb;
	struct mg_init_data init;
	struct mg_error_data err_data;
	char threads[32], timeout[32], text[256] = "";
	char first[CIVET_START_MSG_MAX] = "", reason[CIVET_START_MSG_MAX];
	unsigned code = 0;
	const char *options[] = {
		"listening_ports", srv->opts->listen,
		"num_threads", threads,
		/* the wait for each read and write; the guard (conns.h)
		 * bounds a request's headers and body as a whole */
		"request_timeout_ms", timeout,
		"enable_keep_alive", "yes",
		"keep_alive_timeout_ms", KEEP_ALIVE_TIMEOUT_MS,
		"connection_queue", "1024",
		"listen_backlog", "1024",
		"decode_url", "no",
		/* headers and body go out in separate writes: without
		 * TCP_NODELAY, Nagle + delayed ACK add 40 ms per reply */
		"tcp_nodelay", "1",
		NULL,
	};

	/* Streams the pump serves hold a worker only while they start;
	 * log streams keep theirs, up to WORKER_STREAMS_MAX. */
	snprintf(threads, sizeof(threads), "%d", pool_size(srv));
	snprintf(timeout, sizeof(timeout), "%lld",
		 (long long)srv->opts->header_timeout_ms);
	memset(&cb, 0, sizeof(cb));
	cb.log_message = log_message;
	cb.init_connection = conn_opened;
	cb.connection_close = conn_closed;
	init.callbacks = &cb;
	init.user_data = srv;
	init.configuration_options = options;
	err_data.code = &code;
	err_data.text = text;
	err_data.text_buffer_size = sizeof(text);
	civet_start_msg = first;
	srv->ctx = mg_start2(&init, &err_data);
	civet_start_msg = NULL;
	if (!srv->ctx) {
		listen_reason(first, text, reason, sizeof(reason));
		return err_set(e, ERR_IO, "cannot listen on %s: %s",
			       srv->opts->listen, reason);
	}
	mg_set_auth_handler(srv->ctx, "/", allow_all, NULL);
	mg_set_request_handler(srv->ctx, "/", handle_request, srv);
	return 0;
}

/* The connection guard, for every thread of civetweb's pool. */
static int start_guard(struct server *srv, struct err *e)
{
	struct conns_options co;
	int rc;

	memset(&co, 0, sizeof(co));
	co.pool = pool_size(srv);
	co.max_per_ip = srv->opts->max_conns_per_ip;
	co.header_ms = srv->opts->header_timeout_ms;
	co.body_ms = srv->opts->body_timeout_ms;
	rc = conns_new(&srv->conns, &co, e);
	if (!rc)
		rc = conns_start(srv->conns, e);
	return rc;
}

static int check_options(const struct server_options *o, struct err *e)
{
	if (!o->listen || !*o->listen)
		return err_set_field(e, ERR_INVALID, "listen",
				     "--listen must not be empty");
	if (strpbrk(o->listen, ", "))
		return err_set_field(e, ERR_INVALID, "listen",
				     "--listen '%s' must be one HOST:PORT",
				     o->listen);
	if (o->workers < 1 || o->max_streams < 0 ||
	    o->workers + o->max_streams > 16384)
		return err_set(e, ERR_INVALID,
			       "workers (%d) must be at least 1 and workers + "
			       "max streams (%d) at most 16384", o->workers,
			       o->max_streams);
	if (o->token_ttl <= 0)
		return err_set(e, ERR_INVALID, "token ttl must be positive");
	if (o->header_timeout_ms <= 0 || o->body_timeout_ms <= 0 ||
	    o->max_conns_per_ip < 0)
		return err_set(e, ERR_INVALID, "header and body timeouts must "
			       "be positive and the connection cap not "
			       "negative");
	return 0;
}

int server_run(const struct server_options *o, const struct schema *schema,
	       struct err *e)
{
	struct server srv;
	struct store_options so;
	sigset_t sigs;
	char url[300] = "";
	int lock_fd = -1, sig = 0, rc;
	const char **labels = NULL;
	size_t i;
	bool clock_rules;
	struct engine_options eo;    /* engine */
	struct sdnotify *sdn = NULL; /* systemd */

	memset(&srv, 0, sizeof(srv));
	atomic_init(&srv.worker_streams, 0);
	atomic_init(&srv.stopping, false);
	srv.opts = o;
	srv.schema = schema;
	rc = check_options(o, e);
	if (rc)
		return rc;
	if (!schema_find(schema, SUPERUSERS))
		return err_set(e, ERR_INTERNAL,
			       "the schema has no '%s' collection", SUPERUSERS);
	rc = lock_data_dir(o->data_dir, &lock_fd, e);
	if (rc)
		return rc;
	/* One left by a crash would point clients at a dead address while we
	 * start; the new one is written once civetweb listens. */
	remove_server_json(&srv);

	memset(&so, 0, sizeof(so));
	so.dir = o->data_dir;
	so.key_file = o->secret_key_file;
	/* hub: POCKETCTL_CHANGELOG_KEEP bounds the retained change log (0 or
	 * unset: the store's default); the watch tests use a tiny one. */
	if (getenv("POCKETCTL_CHANGELOG_KEEP"))
		so.changelog_keep = strtoll(getenv("POCKETCTL_CHANGELOG_KEEP"),
					    NULL, 10);   /* hub */
	rc = store_open(&srv.store, schema, &so, e);
	if (!rc)
		rc = auth_keys_load_or_create(o->data_dir, &srv.keys, e);
	if (!rc)
		rc = seed_accounts(&srv, e);   /* superuser, admin, agent */
	if (!rc)
		rc = write_cli_token(&srv, e);
	if (!rc && o->manifests_dir && o->watch_manifests) {
		if (o->applyset)
			snprintf(srv.applyset, sizeof(srv.applyset), "%s",
				 o->applyset);
		else
			applyset_name_for_dir(o->manifests_dir, srv.applyset,
					      sizeof(srv.applyset));
	}
	if (!rc && o->manifests_dir)
		rc = apply_manifests(&srv, e);
	if (rc)
		goto out;

	labels = calloc(http_nroutes ? 2 * http_nroutes : 1, sizeof(*labels));
	if (labels)
		for (i = 0; i < http_nroutes; i++) {
			labels[i] = http_routes[i].pattern;
			labels[http_nroutes + i] = http_routes[i].method;
		}
	srv.metrics = labels ? metrics_new(labels + http_nroutes, labels,
					   http_nroutes) : NULL;
	srv.tokens = tokens_new(srv.store, schema, &srv.keys);
	srv.ratelimit = ratelimit_new(RATELIMIT_CAP);
	/* No reply cache where a rule reads the clock (rules_read_clock()):
	 * those replies are no function of the store head. */
	clock_rules = rules_read_clock(schema);
	srv.replies = clock_rules ? NULL : respcache_new();
	if (!srv.metrics || !srv.tokens || !srv.ratelimit ||
	    (!clock_rules && !srv.replies)) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}

	/* The change-log hub starts before civetweb accepts streams. */
	rc = hub_new(&srv.hub, srv.store, schema, &srv.stopping, e);
	if (!rc) {
		hub_set_listeners(srv.hub, streams_open, srv.metrics);
		rc = hub_start(srv.hub, e);
	}
	/* POCKETCTL_STREAM_PUMP=0 runs each stream on its own worker. */
	if (!rc && util_env_int("POCKETCTL_STREAM_PUMP", 1, 0, 1)) {
		rc = pump_new(&srv.pump, srv.hub, srv.metrics, e);
		if (!rc)
			rc = pump_start(srv.pump, e);
	}
	if (rc)
		goto out;
	raise_fd_limit();
	/* engine: the reconcile engine, on its own thread (engine.h); its
	 * first pass renders every file. Path overrides: paths.h (found in
	 * the data directory). */
	engine_options_init(&eo);                          /* engine */
	eo.store = srv.store;                              /* engine */
	eo.schema = schema;                                /* engine */
	eo.root = o->root_dir;                             /* engine */
	eo.data_dir = o->data_dir;                         /* engine */
	eo.docker_host = o->docker_host;                   /* engine */
	eo.manifests_dir = o->manifests_dir;               /* engine */
	eo.watch_manifests = o->watch_manifests;           /* engine */
	eo.backup_every_ms = o->backup_every_ms;           /* engine */
	eo.backup_keep = o->backup_keep;                   /* engine */
	eo.cron_grace_ms = o->cron_grace_ms;               /* engine */
	eo.manifests_applyset = srv.applyset;              /* engine */
	eo.push = &o->push;                                /* engine */
	eo.poco = &o->poco;                                /* engine */
	rc = engine_new(&srv.engine, &eo, e);              /* engine */
	if (!rc)                                           /* engine */
		rc = engine_start(srv.engine, e);          /* engine */
	if (!rc)                                           /* systemd */
		rc = sdnotify_start(&sdn, srv.engine, e);  /* systemd */
	if (rc)                                            /* engine */
		goto out;                                  /* engine */

	/* Block the stop and reload signals before civetweb starts its
	 * threads (they inherit the mask), so only sigwait() below ever sees
	 * them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = start_guard(&srv, e);
	if (!rc)
		rc = start_civetweb(&srv, e);
	if (rc)
		goto out;
	rc = write_server_json(&srv, url, sizeof(url), e);
	if (rc)
		goto out;
	log_msg(LOG_INFO, NULL, "serving on %s (data directory '%s')",
		url, o->data_dir);
	sdnotify_ready(url);   /* systemd: civetweb answers now */

	for (;;) {
		while (sigwait(&sigs, &sig) != 0)
			;
		if (sig != SIGHUP)
			break;
		reload(&srv);
	}
	log_msg(LOG_INFO, NULL, "%s: draining open requests and streams",
		sig == SIGINT ? "SIGINT" : "SIGTERM");
	sdnotify_stopping();   /* systemd */
	atomic_store(&srv.stopping, true);
out:
	sdnotify_free(sdn);   /* systemd: before the engine stops */
	engine_stop(srv.engine);   /* engine: no pass runs while draining */
	atomic_store(&srv.stopping, true);
	hub_stop(srv.hub);   /* every hub_wait() now returns HUB_STOPPED */
	pump_stop(srv.pump); /* ends the streams it serves */
	if (srv.ctx) {
		/* Stream handlers poll srv.stopping at least once a second,
		 * so mg_stop() (which joins every worker) returns promptly. */
		stop_civetweb(srv.ctx, url);
		srv.ctx = NULL;
		remove_server_json(&srv);
	}
	conns_free(srv.conns);   /* no callback can come any more */
	pump_free(srv.pump);
	hub_free(srv.hub);   /* no stream can touch it any more */
	engine_free(srv.engine);   /* engine: no writer can commit any more; its
				    * reconcilers stop (the container runtime) */
	metrics_free(srv.metrics);
	tokens_free(srv.tokens);
	ratelimit_free(srv.ratelimit);
	respcache_free(srv.replies);
	free(labels);
	store_close(srv.store);
	auth_keys_wipe(&srv.keys);
	if (lock_fd >= 0)
		close(lock_fd);
	if (!rc)
		log_msg(LOG_INFO, NULL, "stopped");
	return rc;
}
