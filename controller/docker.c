/*
 * docker.c - the Docker Engine API client and the log-frame demultiplexer
 * (see docker.h): the container-backend seam.
 *
 * Every call builds its own curl easy handle, so the client is shared by
 * the engine thread, the events thread and request workers without locks.
 * Short calls have a total timeout; streams (logs, events) are bounded by a
 * connect timeout and by their idle callback, which libcurl's progress
 * callback invokes about once a second even when nothing arrives.
 */
#include "docker.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#define DOCKER_ERRBODY_MAX ((size_t)64 << 10)  /* error/JSON replies kept */
#define DOCKER_REPLY_MAX ((size_t)4 << 20)     /* inspect replies */
#define DOCKER_EVENT_LINE_MAX ((size_t)256 << 10)

struct docker {
	char *host;        /* as given */
	char *sock;        /* unix socket path, or NULL for TCP */
	char *base;        /* "http://localhost" or "http://host:port" */
	long connect_ms;
	long timeout_ms;
};

static pthread_once_t docker_curl_once = PTHREAD_ONCE_INIT;
static CURLcode docker_curl_rc = CURLE_OK;

static void docker_curl_init(void)
{
	docker_curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- client ------------------------------------------------------------ */

int docker_new(struct docker **out, const struct docker_options *o,
	       struct err *e)
{
	struct docker *d = NULL;
	const char *host = o ? o->host : NULL;
	const char *rest;
	int rc = 0;

	if (!host || !*host)
		host = getenv("DOCKER_HOST");
	if (!host || !*host)
		host = DOCKER_DEFAULT_HOST;
	pthread_once(&docker_curl_once, docker_curl_init);
	if (docker_curl_rc != CURLE_OK)
		return err_set(e, ERR_INTERNAL, "libcurl: %s",
			       curl_easy_strerror(docker_curl_rc));
	for (rest = host; *rest; rest++) {
		if ((unsigned char)*rest < 0x20 || *rest == 0x7f)
			return err_set(e, ERR_INVALID,
				       "docker host: control character in the address");
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return err_set(e, ERR_NOMEM, "out of memory");
	d->host = strdup(host);
	d->connect_ms = o && o->connect_timeout_ms > 0 ? o->connect_timeout_ms
						      : DOCKER_CONNECT_TIMEOUT_MS;
	d->timeout_ms = o && o->timeout_ms > 0 ? o->timeout_ms : DOCKER_TIMEOUT_MS;
	if (!d->host) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	if (!strncmp(host, "unix://", 7)) {
		rest = host + 7;
		if (*rest != '/' || strlen(rest) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			rc = err_set(e, ERR_INVALID,
				     "docker host '%s': a unix socket needs an absolute path shorter than %zu bytes",
				     host, sizeof(((struct sockaddr_un *)0)->sun_path));
			goto out;
		}
		d->sock = strdup(rest);
		d->base = strdup("http://localhost");
	} else if (!strncmp(host, "tcp://", 6) || !strncmp(host, "http://", 7)) {
		rest = strstr(host, "://") + 3;
		if (!*rest || strchr(rest, '/') || strchr(rest, '?') ||
		    strchr(rest, '@') || strchr(rest, '#') || strchr(rest, ' ')) {
			rc = err_set(e, ERR_INVALID,
				     "docker host '%s': expected tcp://HOST:PORT", host);
			goto out;
		}
		if (asprintf(&d->base, "http://%s", rest) < 0)
			d->base = NULL;
	} else {
		rc = err_set(e, ERR_INVALID,
			     "docker host '%s': expected unix:///PATH or tcp://HOST:PORT",
			     host);
		goto out;
	}
	if (!d->base || (!strncmp(host, "unix://", 7) && !d->sock))
		rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	if (rc) {
		docker_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void docker_free(struct docker *d)
{
	if (!d)
		return;
	free(d->host);
	free(d->sock);
	free(d->base);
	free(d);
}

const char *docker_host(const struct docker *d)
{
	return d->host;
}

bool docker_name_ok(const char *name)
{
	size_t i, n;

	if (!name)
		return false;
	n = strlen(name);
	if (n < 2 || n > DOCKER_NAME_MAX || !isalnum((unsigned char)name[0]))
		return false;
	for (i = 1; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!(c < 0x80 && (isalnum(c) || c == '_' || c == '.' || c == '-')))
			return false;
	}
	return true;
}

/* ---- transfers ---------------------------------------------------------- */

/* One transfer's state, shared by the curl callbacks. */
struct xfer {
	CURL *h;
	struct buf body;            /* the reply (or error reply) body */
	size_t (*sink)(struct xfer *x, const char *p, size_t n); /* 2xx data
	                             * of a stream; NULL: keep in body */
	void *arg;
	docker_idle_fn idle;
	int stop;                   /* non-zero: a callback asked to stop */
	struct err *e;              /* where a sink reports a failure */
	int sink_err;               /* an error code a sink hit */
};

static long xfer_status(struct xfer *x)
{
	long code = 0;

	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
	return code;
}

static size_t xfer_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	long code = xfer_status(x);

	if (x->sink && code >= 200 && code < 300)
		return x->sink(x, p, n);
	if (x->body.len + n > x->body.cap)
		n = x->body.cap - x->body.len;   /* keep what fits, drop the rest */
	if (n && buf_add(&x->body, p, n))
		return 0;
	return size * nmemb;
}

static int xfer_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
			 curl_off_t ultotal, curl_off_t ulnow)
{
	struct xfer *x = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (x->stop)
		return 1;
	if (x->idle) {
		int r = x->idle(x->arg);

		if (r) {
			x->stop = r;
			return 1;
		}
	}
	return 0;
}

/* Copy an engine message into a one-line, bounded form. */
static void clean_msg(const char *in, char *out, size_t n)
{
	size_t i, j = 0;

	for (i = 0; in && in[i] && j + 1 < n; i++) {
		unsigned char c = (unsigned char)in[i];

		out[j++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	while (j > 0 && out[j - 1] == ' ')
		j--;
	out[j] = '\0';
}

/* Turn an HTTP error reply into an ERR_* with the engine's message. */
static int reply_error(const struct docker *d, const char *what, long status,
		       const struct buf *body, struct err *e)
{
	char msg[400];
	json_t *j;
	const char *m = NULL;
	int code;

	(void)d;
	j = json_loadb(body->ptr, body->len, 0, NULL);
	if (json_is_object(j))
		m = json_string_value(json_object_get(j, "message"));
	if (!m && body->len && body->len < 400 && !j)
		m = body->ptr;
	clean_msg(m && *m ? m : "no message", msg, sizeof(msg));
	if (status == 400)
		code = ERR_INVALID;
	else if (status == 404)
		code = ERR_NOT_FOUND;
	else if (status == 409 || strstr(msg, "state improper"))
		code = ERR_CONFLICT;
	else
		code = ERR_ENGINE;
	err_set(e, code, "%s: engine answered %ld: %s", what, status, msg);
	json_decref(j);
	return code;
}

/*
 * Perform method on path (which starts with '/' and is already escaped)
 * with the given total timeout (0: none). On success returns 0 and
 * *status holds the HTTP status; a transport failure is ERR_UNAVAILABLE; a
 * stop requested by a callback returns that value.
 */
static int xfer_run(struct docker *d, struct xfer *x, const char *method,
		    const char *path, long timeout_ms, const char *what,
		    long *status, struct err *e)
{
	char url[2048];
	char cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	CURLcode cc;
	int rc = 0;

	if ((size_t)snprintf(url, sizeof(url), "%s%s", d->base, path) >= sizeof(url))
		return err_set(e, ERR_INVALID, "%s: request path too long", what);
	x->h = curl_easy_init();
	if (!x->h)
		return err_set(e, ERR_NOMEM, "%s: cannot create a curl handle", what);
	x->e = e;
	curl_easy_setopt(x->h, CURLOPT_URL, url);
	if (d->sock)
		curl_easy_setopt(x->h, CURLOPT_UNIX_SOCKET_PATH, d->sock);
	curl_easy_setopt(x->h, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "POST")) {
		curl_easy_setopt(x->h, CURLOPT_POST, 1L);
		curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE, 0L);
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT_MS, d->connect_ms);
	if (timeout_ms > 0)
		curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(x->h, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(x->h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(x->h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, xfer_write);
	curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(x->h, CURLOPT_XFERINFOFUNCTION, xfer_progress);
	curl_easy_setopt(x->h, CURLOPT_XFERINFODATA, x);
	cc = curl_easy_perform(x->h);
	*status = xfer_status(x);
	if (x->sink_err) {
		rc = x->sink_err;          /* e already says why */
	} else if (x->stop) {
		rc = x->stop;
	} else if (cc != CURLE_OK) {
		/* For a unix socket libcurl's own text names "localhost port
		 * 80", which misleads: say it plainly. */
		if (d->sock && cc == CURLE_COULDNT_CONNECT)
			snprintf(cerr, sizeof(cerr), "cannot connect to the socket (is the engine running?)");
		rc = err_set(e, ERR_UNAVAILABLE,
			     "%s: container engine at '%s' unreachable: %s", what,
			     d->host, cerr[0] ? cerr : curl_easy_strerror(cc));
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(x->h);
	x->h = NULL;
	return rc;
}

static void xfer_init(struct xfer *x, size_t cap)
{
	memset(x, 0, sizeof(*x));
	buf_init(&x->body, cap);
}

/* A short call whose reply body is kept in x->body. ok2 is an extra status
 * (besides 2xx) that counts as success (304), or 0. */
static int docker_call(struct docker *d, const char *method, const char *path,
		       long timeout_ms, long ok2, const char *what,
		       struct buf *reply, struct err *e)
{
	struct xfer x;
	long status = 0;
	int rc;

	xfer_init(&x, reply ? DOCKER_REPLY_MAX : DOCKER_ERRBODY_MAX);
	rc = xfer_run(d, &x, method, path, timeout_ms, what, &status, e);
	if (rc)
		goto out;
	if (!(status >= 200 && status < 300) && status != ok2) {
		rc = reply_error(d, what, status, &x.body, e);
		goto out;
	}
	if (reply) {
		rc = buf_add(reply, x.body.ptr, x.body.len);
		if (rc)
			err_set(e, rc, "%s: reply too large", what);
	}
out:
	buf_release(&x.body);
	return rc;
}

static int check_name(const char *name, struct err *e)
{
	if (docker_name_ok(name))
		return 0;
	return err_set_field(e, ERR_INVALID, "name",
			     "'%.64s' is not a container name", name ? name : "");
}

int docker_ping(struct docker *d, struct err *e)
{
	return docker_call(d, "GET", "/_ping", d->timeout_ms, 0, "ping", NULL, e);
}

/* "2026-11-25T16:37:57.036464005Z" (or +hh:mm) to Unix nanoseconds; 0 for
 * Docker's zero time or anything unparsable. */
static int64_t parse_rfc3339_ns(const char *s)
{
	struct tm tm;
	const char *p;
	int64_t frac = 0, scale = 1000000000;
	int off = 0;
	time_t t;

	if (!s || !*s)
		return 0;
	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p || tm.tm_year < 71)
		return 0;
	if (*p == '.') {
		for (p++; isdigit((unsigned char)*p); p++) {
			if (scale > 1) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
		}
	}
	if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
	    isdigit((unsigned char)p[2]) && p[3] == ':' &&
	    isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5])) {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 +
		      ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		if (*p == '-')
			off = -off;
	} else if (*p != 'Z') {
		return 0;
	}
	t = timegm(&tm);
	if (t == (time_t)-1)
		return 0;
	return ((int64_t)t - off) * 1000000000 + frac;
}

static void copy_str(char *dst, size_t n, json_t *v)
{
	const char *s = json_string_value(v);

	clean_msg(s ? s : "", dst, n);
}

int docker_inspect(struct docker *d, const char *name,
		   struct docker_state *out, struct err *e)
{
	struct buf reply = BUF_INIT;
	char path[256], what[192];
	json_t *j = NULL, *st, *cfg, *hc, *test;
	json_error_t je;
	int rc;

	rc = check_name(name, e);
	if (rc)
		return rc;
	snprintf(what, sizeof(what), "inspect container '%s'", name);
	snprintf(path, sizeof(path), "/v" DOCKER_API_VERSION "/containers/%s/json", name);
	rc = docker_call(d, "GET", path, d->timeout_ms, 0, what, &reply, e);
	if (rc)
		goto out;
	j = json_loadb(reply.ptr, reply.len, 0, &je);
	st = json_object_get(j, "State");
	if (!json_is_object(st)) {
		rc = err_set(e, ERR_ENGINE, "%s: the reply has no State object", what);
		goto out;
	}
	memset(out, 0, sizeof(*out));
	copy_str(out->id, sizeof(out->id), json_object_get(j, "Id"));
	copy_str(out->status, sizeof(out->status), json_object_get(st, "Status"));
	out->running = json_is_true(json_object_get(st, "Running"));
	out->restarting = json_is_true(json_object_get(st, "Restarting"));
	out->exit_code = (int)json_integer_value(json_object_get(st, "ExitCode"));
	copy_str(out->started_at, sizeof(out->started_at), json_object_get(st, "StartedAt"));
	copy_str(out->finished_at, sizeof(out->finished_at), json_object_get(st, "FinishedAt"));
	out->started_ns = parse_rfc3339_ns(out->started_at);
	copy_str(out->health, sizeof(out->health),
		 json_object_get(json_object_get(st, "Health"), "Status"));
	cfg = json_object_get(j, "Config");
	out->tty = json_is_true(json_object_get(cfg, "Tty"));
	hc = json_object_get(cfg, "Healthcheck");
	test = json_object_get(hc, "Test");
	out->has_health = out->health[0] != '\0' ||
		(json_array_size(test) > 0 &&
		 strcmp(json_string_value(json_array_get(test, 0)) ?
			json_string_value(json_array_get(test, 0)) : "NONE", "NONE"));
out:
	json_decref(j);
	buf_release(&reply);
	return rc;
}

static int container_action(struct docker *d, const char *name,
			    const char *action, int t, long ok2, struct err *e)
{
	char path[256], what[192];
	long timeout = d->timeout_ms;
	int rc;

	rc = check_name(name, e);
	if (rc)
		return rc;
	if (t < 0)
		t = 0;
	if (t > 3600)
		t = 3600;
	snprintf(what, sizeof(what), "%s container '%s'", action, name);
	if (!strcmp(action, "start")) {
		snprintf(path, sizeof(path), "/v" DOCKER_API_VERSION "/containers/%s/start", name);
	} else {
		snprintf(path, sizeof(path), "/v" DOCKER_API_VERSION "/containers/%s/%s?t=%d",
			 name, action, t);
		timeout += (long)t * 1000;
	}
	return docker_call(d, "POST", path, timeout, ok2, what, NULL, e);
}

int docker_start(struct docker *d, const char *name, struct err *e)
{
	return container_action(d, name, "start", 0, 304, e);
}

int docker_restart(struct docker *d, const char *name, int t, struct err *e)
{
	return container_action(d, name, "restart", t, 0, e);
}

int docker_stop(struct docker *d, const char *name, int t, struct err *e)
{
	return container_action(d, name, "stop", t, 304, e);
}

/* ---- logs --------------------------------------------------------------- */

struct logs_ctx {
	struct docker_demux dm;
	docker_line_fn fn;
	void *arg;
};

/* The transfer's arg: the sink needs the demultiplexer, the idle callback
 * the caller's own arg. */
struct logs_args {
	struct logs_ctx *lc;
	void *user;
	docker_idle_fn idle;
};

static size_t logs_sink(struct xfer *x, const char *p, size_t n)
{
	struct logs_args *la = x->arg;
	int rc;

	rc = docker_demux_feed(&la->lc->dm, p, n, la->lc->fn, la->lc->arg, x->e);
	if (rc < 0) {
		x->sink_err = rc;
		return 0;
	}
	if (rc > 0) {
		x->stop = rc;
		return 0;
	}
	return n;
}

static int logs_idle(void *arg)
{
	struct logs_args *la = arg;

	return la->idle ? la->idle(la->user) : 0;
}

int docker_logs(struct docker *d, const char *name,
		const struct docker_logs_options *o, docker_line_fn fn,
		docker_idle_fn idle, void *arg, struct err *e)
{
	struct docker_state st;
	struct logs_ctx lc;
	struct logs_args la;
	struct xfer x;
	char path[512], what[192], tail[24];
	long status = 0;
	int rc;

	rc = docker_inspect(d, name, &st, e);
	if (rc)
		return rc;
	if (o->tail < 0)
		snprintf(tail, sizeof(tail), "all");
	else
		snprintf(tail, sizeof(tail), "%d", o->tail);
	snprintf(what, sizeof(what), "logs of container '%s'", name);
	snprintf(path, sizeof(path),
		 "/v" DOCKER_API_VERSION "/containers/%s/logs?stdout=1&stderr=1&tail=%s&follow=%d&since=%lld",
		 name, tail, o->follow ? 1 : 0, (long long)(o->since > 0 ? o->since : 0));
	docker_demux_init(&lc.dm, st.tty);
	lc.fn = fn;
	lc.arg = arg;
	la.lc = &lc;
	la.user = arg;
	la.idle = idle;
	xfer_init(&x, DOCKER_ERRBODY_MAX);
	x.sink = logs_sink;
	x.arg = &la;
	x.idle = logs_idle;
	rc = xfer_run(d, &x, "GET", path, o->timeout_ms, what, &status, e);
	if (!rc && !(status >= 200 && status < 300))
		rc = reply_error(d, what, status, &x.body, e);
	else if (!rc)
		rc = docker_demux_finish(&lc.dm, fn, arg, e);
	docker_demux_release(&lc.dm);
	buf_release(&x.body);
	return rc;
}

/* ---- events ------------------------------------------------------------- */

struct events_ctx {
	struct buf line;
	docker_event_fn fn;
	void *user;
	docker_idle_fn idle;
};

static int event_deliver(struct events_ctx *ec, const char *p, size_t n)
{
	struct docker_event ev;
	json_t *j, *actor;
	int rc = 0;

	while (n && (p[n - 1] == '\r' || p[n - 1] == ' '))
		n--;
	if (!n)
		return 0;
	j = json_loadb(p, n, 0, NULL);
	if (!json_is_object(j))
		goto out;                 /* not an event: ignore the line */
	actor = json_object_get(j, "Actor");
	memset(&ev, 0, sizeof(ev));
	ev.type = json_string_value(json_object_get(j, "Type"));
	ev.action = json_string_value(json_object_get(j, "Action"));
	if (!ev.action)
		ev.action = json_string_value(json_object_get(j, "status"));
	ev.name = json_string_value(json_object_get(json_object_get(actor, "Attributes"), "name"));
	ev.id = json_string_value(json_object_get(actor, "ID"));
	if (!ev.id)
		ev.id = json_string_value(json_object_get(j, "id"));
	ev.time_ns = json_integer_value(json_object_get(j, "timeNano"));
	if (!ev.time_ns)
		ev.time_ns = json_integer_value(json_object_get(j, "time")) * 1000000000;
	if (!ev.type)
		ev.type = "";
	if (!ev.action)
		ev.action = "";
	if (!ev.name)
		ev.name = "";
	if (!ev.id)
		ev.id = "";
	rc = ec->fn(ec->user, &ev);
out:
	json_decref(j);
	return rc;
}

static size_t events_sink(struct xfer *x, const char *p, size_t n)
{
	struct events_ctx *ec = x->arg;
	size_t i, start = 0;
	int rc;

	for (i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		if (ec->line.len) {
			if (buf_add(&ec->line, p + start, i - start)) {
				buf_reset(&ec->line);  /* oversized: drop it */
				start = i + 1;
				continue;
			}
			rc = event_deliver(ec, ec->line.ptr, ec->line.len);
			buf_reset(&ec->line);
		} else {
			rc = event_deliver(ec, p + start, i - start);
		}
		start = i + 1;
		if (rc) {
			x->stop = rc;
			return 0;
		}
	}
	if (start < n && buf_add(&ec->line, p + start, n - start))
		buf_reset(&ec->line);
	return n;
}

static int events_idle(void *arg)
{
	struct events_ctx *ec = arg;

	return ec->idle ? ec->idle(ec->user) : 0;
}

int docker_events(struct docker *d, const char *const *names, size_t n,
		  int64_t since_ns, docker_event_fn fn, docker_idle_fn idle,
		  void *arg, struct err *e)
{
	struct events_ctx ec;
	struct xfer x;
	struct buf path = BUF_INIT;
	json_t *filters = NULL, *list = NULL;
	char *fj = NULL, *esc = NULL;
	CURL *h = NULL;
	long status = 0;
	size_t i;
	int rc = 0;

	memset(&ec, 0, sizeof(ec));
	buf_init(&ec.line, DOCKER_EVENT_LINE_MAX);
	xfer_init(&x, DOCKER_ERRBODY_MAX);
	filters = json_object();
	list = json_array();
	if (!filters || !list) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	json_object_set_new(filters, "type", json_pack("[s]", "container")); /* stolen */
	for (i = 0; i < n; i++) {
		rc = check_name(names[i], e);
		if (rc)
			goto out;
		json_array_append_new(list, json_string(names[i])); /* stolen */
	}
	if (n) {
		json_object_set(filters, "container", list);        /* borrowed */
	}
	fj = json_dumps(filters, JSON_COMPACT | JSON_SORT_KEYS);
	h = curl_easy_init();
	esc = fj && h ? curl_easy_escape(h, fj, 0) : NULL;
	if (!esc) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = buf_printf(&path, "/v" DOCKER_API_VERSION "/events?filters=%s", esc);
	if (!rc && since_ns > 0)
		rc = buf_printf(&path, "&since=%lld.%09lld",
				(long long)(since_ns / 1000000000),
				(long long)(since_ns % 1000000000));
	if (rc) {
		err_set(e, rc, "events: request too long");
		goto out;
	}
	ec.fn = fn;
	ec.user = arg;
	ec.idle = idle;
	x.sink = events_sink;
	x.arg = &ec;
	x.idle = events_idle;
	rc = xfer_run(d, &x, "GET", path.ptr, 0, "events", &status, e);
	if (!rc && !(status >= 200 && status < 300))
		rc = reply_error(d, "events", status, &x.body, e);
out:
	if (esc)
		curl_free(esc);
	if (h)
		curl_easy_cleanup(h);
	free(fj);
	json_decref(list);
	json_decref(filters);
	buf_release(&path);
	buf_release(&ec.line);
	buf_release(&x.body);
	return rc;
}

/* ---- demultiplexer ------------------------------------------------------ */

void docker_demux_init(struct docker_demux *dm, bool raw)
{
	int i;

	memset(dm, 0, sizeof(*dm));
	dm->raw = raw;
	dm->stream = 1;
	for (i = 0; i < 4; i++)
		buf_init(&dm->line[i], DOCKER_LINE_MAX + 1);
}

void docker_demux_release(struct docker_demux *dm)
{
	int i;

	if (!dm)
		return;
	for (i = 0; i < 4; i++)
		buf_release(&dm->line[i]);
}

/* Deliver one line of stream s; strips one trailing '\r'. */
static int emit_line(int s, const char *p, size_t n, docker_line_fn fn,
		     void *arg)
{
	if (n && p[n - 1] == '\r')
		n--;
	return fn(arg, s == 0 || s == 3 ? (s == 3 ? 2 : 1) : s, p, n);
}

/* Payload bytes p[0..n) of stream s: complete lines go to fn. */
static int demux_payload(struct docker_demux *dm, int s, const char *p,
			 size_t n, docker_line_fn fn, void *arg, struct err *e)
{
	struct buf *lb = &dm->line[s];
	size_t i = 0, take;
	const char *nl;
	int rc;

	while (i < n) {
		nl = memchr(p + i, '\n', n - i);
		take = nl ? (size_t)(nl - (p + i)) : n - i;
		if (lb->len + take > DOCKER_LINE_MAX) {
			/* Fill the pending line up to the limit and emit it. */
			size_t room = DOCKER_LINE_MAX - lb->len;

			if (buf_add(lb, p + i, room))
				return err_set(e, ERR_NOMEM, "out of memory");
			rc = emit_line(s, lb->ptr, lb->len, fn, arg);
			buf_reset(lb);
			if (rc)
				return rc;
			i += room;
			continue;
		}
		if (!nl) {
			if (buf_add(lb, p + i, take))
				return err_set(e, ERR_NOMEM, "out of memory");
			break;
		}
		if (lb->len) {
			if (buf_add(lb, p + i, take))
				return err_set(e, ERR_NOMEM, "out of memory");
			rc = emit_line(s, lb->ptr, lb->len, fn, arg);
			buf_reset(lb);
		} else {
			rc = emit_line(s, p + i, take, fn, arg);
		}
		if (rc)
			return rc;
		i += take + 1;
	}
	return 0;
}

int docker_demux_feed(struct docker_demux *dm, const void *data, size_t len,
		      docker_line_fn fn, void *arg, struct err *e)
{
	const unsigned char *p = data;
	size_t i = 0, take;
	int rc;

	if (dm->broken)
		return err_set(e, ERR_INVALID, "log stream: corrupt frame header");
	if (dm->raw)
		return demux_payload(dm, 1, data, len, fn, arg, e);
	while (i < len) {
		if (dm->left == 0) {
			take = 8 - dm->hlen;
			if (take > len - i)
				take = len - i;
			memcpy(dm->hdr + dm->hlen, p + i, take);
			dm->hlen += take;
			i += take;
			if (dm->hlen < 8)
				break;
			dm->hlen = 0;
			if (dm->hdr[0] > 3 || dm->hdr[1] || dm->hdr[2] || dm->hdr[3]) {
				dm->broken = true;
				return err_set(e, ERR_INVALID,
					       "log stream: corrupt frame header (stream byte %u)",
					       dm->hdr[0]);
			}
			dm->stream = dm->hdr[0];
			dm->left = (uint32_t)dm->hdr[4] << 24 | (uint32_t)dm->hdr[5] << 16 |
				   (uint32_t)dm->hdr[6] << 8 | (uint32_t)dm->hdr[7];
			continue;
		}
		take = dm->left;
		if (take > len - i)
			take = len - i;
		rc = demux_payload(dm, dm->stream, (const char *)p + i, take, fn, arg, e);
		dm->left -= (uint32_t)take;
		i += take;
		if (rc)
			return rc;
	}
	return 0;
}

int docker_demux_finish(struct docker_demux *dm, docker_line_fn fn,
			void *arg, struct err *e)
{
	static const int order[4] = { 1, 2, 0, 3 };
	int i, rc;

	(void)e;
	for (i = 0; i < 4; i++) {
		struct buf *lb = &dm->line[order[i]];

		if (!lb->len)
			continue;
		rc = emit_line(order[i], lb->ptr, lb->len, fn, arg);
		buf_reset(lb);
		if (rc)
			return rc;
	}
	return 0;
}
