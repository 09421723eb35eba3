/*
 * client.c - the CLI's HTTP client for a running server (see client.h).
 *
 * One libcurl easy handle per client, reset before every call so that no
 * option leaks from one request into the next (the connection cache
 * survives the reset, so consecutive calls reuse the connection). Every
 * transfer has a connect and a total timeout, follows no redirects, speaks
 * only http/https, and bounds the reply it buffers.
 */
#include "client.h"

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "buf.h"

struct client {
	CURL *curl;
	char *url;                  /* base URL, no trailing '/' */
	char *auth;                 /* "Authorization: Bearer ..." or NULL */
	char *noproxy;              /* loopback never goes through a proxy */
	long connect_timeout_ms;
	long timeout_ms;
	long status;                /* of the last reply, 0 when none */
	json_t *last_error;         /* body of the last error reply, or NULL */
	char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* True when s holds a byte below 0x20 or DEL (header or URL injection). */
static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/*
 * The hosts that bypass any proxy: whatever no_proxy says, plus loopback
 * (a proxy in the environment must not swallow the local server).
 */
static char *make_noproxy(void)
{
	const char *env = getenv("no_proxy");
	char *out = NULL;

	if (!env || !*env)
		env = getenv("NO_PROXY");
	if (env && !strcmp(env, "*"))
		return strdup("*");
	if (asprintf(&out, "%s%slocalhost,127.0.0.1,::1", env ? env : "",
		     env && *env ? "," : "") < 0)
		return NULL;
	return out;
}

int client_new(struct client **out, const struct client_options *o,
	       struct err *e)
{
	struct client *c = NULL;
	size_t n;
	int rc = 0;

	if (!o->url || !*o->url)
		return err_set(e, ERR_INVALID, "server URL is empty");
	if (strncasecmp(o->url, "http://", 7) &&
	    strncasecmp(o->url, "https://", 8))
		return err_set(e, ERR_INVALID,
			       "server URL '%.200s' must start with http:// or https://",
			       o->url);
	if (has_ctl(o->url) || strchr(o->url, ' '))
		return err_set(e, ERR_INVALID,
			       "server URL holds spaces or control characters");
	if (o->token && has_ctl(o->token))
		return err_set(e, ERR_INVALID,
			       "token holds control characters");
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return err_set(e, ERR_INTERNAL, "cannot initialise libcurl: %s",
			       curl_easy_strerror(global_rc));
	c = calloc(1, sizeof(*c));
	if (!c)
		return err_set(e, ERR_NOMEM, "out of memory");
	c->curl = curl_easy_init();
	c->url = strdup(o->url);
	c->noproxy = make_noproxy();
	if (!c->curl || !c->url || !c->noproxy) {
		rc = err_set(e, ERR_NOMEM, "cannot set up an HTTP client");
		goto out;
	}
	n = strlen(c->url);
	while (n > 0 && c->url[n - 1] == '/')
		c->url[--n] = '\0';
	if (o->token && *o->token &&
	    asprintf(&c->auth, "Authorization: Bearer %s", o->token) < 0) {
		c->auth = NULL;
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	c->connect_timeout_ms = o->connect_timeout_ms > 0 ?
					o->connect_timeout_ms :
					CLIENT_CONNECT_TIMEOUT_MS;
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : CLIENT_TIMEOUT_MS;
out:
	if (rc) {
		client_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void client_free(struct client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	json_decref(c->last_error);
	free(c->url);
	if (c->auth) {
		/* Do not leave a superuser token lying around in freed memory. */
		memset(c->auth, 0, strlen(c->auth));
		free(c->auth);
	}
	free(c->noproxy);
	free(c);
}

const char *client_url(const struct client *c)
{
	return c->url;
}

json_t *client_last_error(const struct client *c)
{
	return c->last_error;
}

void client_set_timeout(struct client *c, long ms)
{
	if (ms > 0)
		c->timeout_ms = ms;
}

long client_last_status(const struct client *c)
{
	return c->status;
}

char *client_escape(struct client *c, const char *s)
{
	char *esc = curl_easy_escape(c->curl, s, 0);
	char *copy;

	if (!esc)
		return NULL;
	copy = strdup(esc);
	curl_free(esc);
	return copy;
}

struct sink {
	struct buf body;             /* the reply, or a stream's error reply */
	bool overflow;
	CURL *curl;
	client_line_fn fn;           /* a stream: each line of a 2xx reply */
	void *arg;
	struct buf line;             /* a stream: the line being received */
	bool stopped;                /* fn asked to stop */
};

/* A 2xx stream: hand each complete line (without "\n" or "\r") to fn. */
static size_t stream_lines(struct sink *s, const char *data, size_t n)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		if (data[i] != '\n')
			continue;
		if (buf_add(&s->line, data + start, i - start))
			goto overflow;
		if (s->line.len && s->line.ptr[s->line.len - 1] == '\r')
			s->line.ptr[--s->line.len] = '\0';
		if (s->fn(s->arg, s->line.ptr, s->line.len)) {
			s->stopped = true;
			return 0;
		}
		buf_reset(&s->line);
		start = i + 1;
	}
	if (start < n && buf_add(&s->line, data + start, n - start))
		goto overflow;
	return n;
overflow:
	s->overflow = true;
	return 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nmemb;
	long status = 0;

	if (s->fn) {
		curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status <= 299)
			return stream_lines(s, data, n);
	}
	if (buf_add(&s->body, data, n)) {
		s->overflow = true;
		return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
	}
	return n;
}

static int status_code(long status)
{
	switch (status) {
	case 400: return ERR_INVALID;
	case 401: return ERR_UNAUTHORIZED;
	case 403: return ERR_FORBIDDEN;
	case 404: return ERR_NOT_FOUND;
	case 409: return ERR_CONFLICT;
	case 412: return ERR_PRECONDITION;
	case 413: return ERR_TOO_LARGE;
	case 502: return ERR_ENGINE;
	case 503: return ERR_UNAVAILABLE;
	default:
		return status >= 400 && status < 500 ? ERR_INVALID :
						       ERR_INTERNAL;
	}
}

/* Turn a non-2xx reply into e: the PocketBase error body when there is
 * one, else the status and the start of the body. */
static int reply_error(struct client *c, long status,
		       const struct buf *body, struct err *e)
{
	int code = status_code(status);
	json_t *root = json_loadb(body->ptr, body->len, 0, NULL);
	json_t *msg = json_object_get(root, "message");
	json_t *data = json_object_get(root, "data");
	const char *field = NULL;
	char snippet[161];
	size_t i;

	if (json_is_string(msg) && json_string_length(msg)) {
		if (json_is_object(data) && json_object_size(data))
			field = json_object_iter_key(json_object_iter(data));
		err_set_field(e, code, field, "%s", json_string_value(msg));
		c->last_error = root;   /* kept for client_last_error() */
		return code;
	}
	json_decref(root);
	for (i = 0; i < body->len && i + 1 < sizeof(snippet); i++)
		snippet[i] = isprint((unsigned char)body->ptr[i]) ?
				     body->ptr[i] : ' ';
	snippet[i] = '\0';
	return err_set(e, code, "server at %s replied HTTP %ld%s%s", c->url,
		       status, i ? ": " : "", snippet);
}

/* client_call(), or with fn a stream (client_stream()). */
static int transfer(struct client *c, const char *method, const char *path,
		    const char *content_type, const char *body, size_t len,
		    json_t **reply, client_line_fn fn, void *arg,
		    struct err *e)
{
	struct curl_slist *hdrs = NULL, *h;
	struct sink sink;
	char *url = NULL, *ctype = NULL;
	json_t *root = NULL;
	json_error_t jerr;
	CURLcode cc;
	long status = 0;
	int rc = 0;

	memset(&sink, 0, sizeof(sink));
	buf_init(&sink.body, CLIENT_MAX_REPLY);
	buf_init(&sink.line, CLIENT_MAX_REPLY);
	sink.curl = c->curl;
	sink.fn = fn;
	sink.arg = arg;
	c->status = 0;
	json_decref(c->last_error);
	c->last_error = NULL;
	c->errbuf[0] = '\0';
	if (has_ctl(path) || has_ctl(method)) {
		rc = err_set(e, ERR_INVALID, "request path holds control characters");
		goto out;
	}
	if (asprintf(&url, "%s%s", c->url, path) < 0) {
		url = NULL;
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	h = curl_slist_append(hdrs, fn ? "Accept: text/event-stream" :
					 "Accept: application/json");
	if (h)
		hdrs = h;
	/* An empty "Expect:" stops libcurl waiting for 100-continue. */
	h = h ? curl_slist_append(hdrs, "Expect:") : NULL;
	if (h && c->auth)
		h = curl_slist_append(hdrs, c->auth);
	if (h && body && content_type) {
		if (asprintf(&ctype, "Content-Type: %s", content_type) < 0)
			ctype = NULL;
		h = ctype ? curl_slist_append(hdrs, ctype) : NULL;
	}
	if (!h) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}

	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_NOPROXY, c->noproxy);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 c->connect_timeout_ms);
	if (fn) {
		/* A stream has no end to wait for; a silent one (no
		 * heartbeat for CLIENT_STREAM_STALL_S) is a dead one. */
		curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_TIME,
				 CLIENT_STREAM_STALL_S);
	} else {
		curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	}
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "pocketctl");
	if (body) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)len);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	}
	if (strcmp(method, body ? "POST" : "GET"))
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);

	cc = curl_easy_perform(c->curl);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	c->status = status;
	if (sink.stopped)
		goto out;
	if (sink.overflow) {
		rc = err_set(e, ERR_TOO_LARGE,
			     "reply from pocketctl server at %s is larger than %zu MiB",
			     c->url, CLIENT_MAX_REPLY >> 20);
		goto out;
	}
	if (cc != CURLE_OK) {
		rc = err_set(e, ERR_UNAVAILABLE,
			     "cannot reach pocketctl server at %s: %s", c->url,
			     c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
		goto out;
	}
	if (status < 200 || status > 299) {
		rc = reply_error(c, status, &sink.body, e);
		goto out;
	}
	if (fn) {
		if (sink.line.len)
			fn(arg, sink.line.ptr, sink.line.len);
		goto out;
	}
	if (sink.body.len == 0) {
		root = json_null();
	} else {
		root = json_loadb(sink.body.ptr, sink.body.len,
				  JSON_DECODE_ANY, &jerr);
		if (!root) {
			rc = err_set(e, ERR_INVALID,
				     "reply from pocketctl server at %s is not JSON: %s",
				     c->url, jerr.text);
			goto out;
		}
	}
	if (reply) {
		*reply = root;
		root = NULL;
	}
out:
	json_decref(root);
	curl_slist_free_all(hdrs);
	free(ctype);
	free(url);
	buf_release(&sink.body);
	buf_release(&sink.line);
	return rc;
}

int client_call(struct client *c, const char *method, const char *path,
		const char *content_type, const char *body, size_t len,
		json_t **reply, struct err *e)
{
	return transfer(c, method, path, content_type, body, len, reply, NULL,
			NULL, e);
}

int client_stream(struct client *c, const char *path, client_line_fn fn,
		  void *arg, struct err *e)
{
	return transfer(c, "GET", path, NULL, NULL, 0, NULL, fn, arg, e);
}
