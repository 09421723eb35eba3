/*
 * api_proxy.c - the observability reverse proxy (see api_proxy.h): one
 * libcurl easy transfer per request, run on the request's worker, whose
 * read callback pulls the caller's body from civetweb and whose header
 * and write callbacks push the upstream's reply back as it comes.
 */
#include "api_proxy.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "server.h"

#define MSG_AUTH "The request requires valid record authorization token."
#define HEAD_CAP ((size_t)64 << 10)     /* upstream reply headers kept */
#define CONNECT_MS 5000L

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_rc = CURLE_OK;

static void curl_init(void)
{
	curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Headers never passed on, either way (RFC 9110 section 7.6.1 and the
 * credentials of the caller). */
static bool dropped(const char *name, size_t n, const char *connection)
{
	static const char *const hop[] = {
		"connection", "keep-alive", "proxy-connection",
		"proxy-authenticate", "proxy-authorization", "te", "trailer",
		"transfer-encoding", "upgrade", "host", "content-length",
		"expect", "authorization", "cookie", "set-cookie",
		"x-forwarded-prefix", "x-forwarded-host", "x-forwarded-proto",
		"x-forwarded-for", "forwarded", NULL
	};
	const char *p, *end;
	size_t i;

	for (i = 0; hop[i]; i++)
		if (strlen(hop[i]) == n && !strncasecmp(name, hop[i], n))
			return true;
	/* and those the Connection header names */
	for (p = connection; p && *p; p = *end ? end + 1 : end) {
		p += strspn(p, " \t");
		end = p + strcspn(p, ",");
		i = (size_t)(end - p);
		while (i && (p[i - 1] == ' ' || p[i - 1] == '\t'))
			i--;
		if (i == n && !strncasecmp(p, name, n))
			return true;
	}
	return false;
}

struct px {
	struct http_req *r;
	bool head_only;          /* HEAD: no body back */
	int status;              /* the upstream's, 0 until its status line */
	struct buf head;         /* headers to pass back */
	char *conn_hdr;          /* the upstream's Connection header value */
	long long length;        /* its Content-Length, -1 when none */
	bool started;            /* our reply's head is sent */
	bool chunked;
	bool client_gone;
};

/* Send the reply's head, once. False when the client is gone. */
static bool start_reply(struct px *x)
{
	uint64_t len = x->length >= 0 ? (uint64_t)x->length : HTTP_LEN_CHUNKED;

	if (x->started)
		return !x->client_gone;
	x->started = true;
	if (x->head_only || x->status == 204 || x->status == 304 ||
	    (x->status >= 100 && x->status < 200))
		len = x->length >= 0 ? (uint64_t)x->length : 0;
	x->chunked = len == HTTP_LEN_CHUNKED;
	if (http_reply_start(x->r, x->status, NULL, len, x->head.ptr))
		x->client_gone = true;
	return !x->client_gone;
}

static size_t on_header(char *p, size_t size, size_t nitems, void *arg)
{
	struct px *x = arg;
	size_t n = size * nitems, k = n, name;
	const char *colon;

	while (k && (p[k - 1] == '\r' || p[k - 1] == '\n'))
		k--;
	if (k >= 5 && !strncmp(p, "HTTP/", 5)) {
		/* a status line: a new reply (after a 1xx, say) */
		const char *sp = memchr(p, ' ', k);

		x->status = sp ? atoi(sp + 1) : 0;
		buf_release(&x->head);
		buf_init(&x->head, HEAD_CAP);
		free(x->conn_hdr);
		x->conn_hdr = NULL;
		x->length = -1;
		return x->status >= 100 && x->status <= 999 ? n : 0;
	}
	if (k == 0)              /* the end of a header block */
		return n;
	colon = memchr(p, ':', k);
	if (!colon)
		return n;        /* folded or odd: not passed on */
	name = (size_t)(colon - p);
	if (name == 10 && !strncasecmp(p, "connection", 10)) {
		free(x->conn_hdr);
		x->conn_hdr = strndup(colon + 1, k - name - 1);
	}
	if (name == 14 && !strncasecmp(p, "content-length", 14))
		x->length = strtoll(colon + 1, NULL, 10);
	if (dropped(p, name, NULL))
		return n;
	if (buf_add(&x->head, p, k) || buf_puts(&x->head, "\r\n"))
		return 0;        /* over HEAD_CAP: aborts the transfer */
	return n;
}

/* Drop the headers the upstream's Connection header names from x->head. */
static void drop_connection_named(struct px *x)
{
	struct buf keep = BUF_INIT;
	const char *p = x->head.ptr, *eol, *colon;

	if (!x->conn_hdr)
		return;
	buf_init(&keep, HEAD_CAP);
	for (; *p; p = eol + 2) {
		eol = strstr(p, "\r\n");
		if (!eol)
			break;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon && dropped(p, (size_t)(colon - p), x->conn_hdr))
			continue;
		buf_add(&keep, p, (size_t)(eol - p + 2));
	}
	buf_release(&x->head);
	x->head = keep;
}

static size_t on_body(char *p, size_t size, size_t nitems, void *arg)
{
	struct px *x = arg;
	size_t n = size * nitems;

	if (!x->started)
		drop_connection_named(x);
	if (!start_reply(x))
		return 0;
	if (x->head_only || !n)
		return n;
	if (x->chunked ? mg_send_chunk(x->r->conn, p, (unsigned)n) <= 0 :
	    mg_write(x->r->conn, p, n) <= 0) {
		x->client_gone = true;
		return 0;
	}
	return n;
}

static size_t on_read(char *p, size_t size, size_t nitems, void *arg)
{
	struct px *x = arg;
	int got = mg_read(x->r->conn, p, size * nitems);

	return got < 0 ? CURL_READFUNC_ABORT : (size_t)got;
}

/* The upstream URL: base + the raw path after the prefix + the query.
 * NULL with e set on a ".." segment or no memory. */
static char *target_url(const struct http_req *r, const char *base,
			struct err *e)
{
	const char *raw = r->ri->local_uri_raw ? r->ri->local_uri_raw :
			  r->ri->local_uri;
	const char *q = r->ri->query_string, *tail, *s, *end;
	size_t bl = strlen(base);
	struct buf u = BUF_INIT;

	tail = raw + strlen(PROXY_PREFIX);
	for (s = tail; *s; s = end) {
		s += *s == '/';
		end = s + strcspn(s, "/");
		if (end - s == 2 && s[0] == '.' && s[1] == '.') {
			err_set(e, ERR_INVALID, "'..' in the proxied path");
			return NULL;
		}
	}
	while (bl && base[bl - 1] == '/')
		bl--;
	if (buf_add(&u, base, bl) || buf_puts(&u, *tail ? tail : "/") ||
	    (q && *q && (buf_putc(&u, '?') || buf_puts(&u, q)))) {
		buf_release(&u);
		err_set(e, ERR_NOMEM, "out of memory");
		return NULL;
	}
	return buf_detach(&u, NULL);
}

/* The request headers for the upstream, or NULL (no memory). */
static struct curl_slist *request_headers(const struct http_req *r)
{
	const struct mg_request_info *ri = r->ri;
	const char *conn = http_header(r, "Connection");
	const char *host = http_header(r, "Host");
	struct curl_slist *h = NULL, *n;
	char line[8192];
	int i;

	for (i = 0; i < ri->num_headers; i++) {
		const char *k = ri->http_headers[i].name;

		if (dropped(k, strlen(k), conn))
			continue;
		snprintf(line, sizeof(line), "%s: %s", k,
			 ri->http_headers[i].value);
		if (!(n = curl_slist_append(h, line)))
			goto nomem;
		h = n;
	}
	/* "Expect:" stops curl's 100-continue wait on uploads. */
	n = curl_slist_append(h, "Expect:");
	h = n ? n : h;
	if (!n)
		goto nomem;
	snprintf(line, sizeof(line), "X-Forwarded-Prefix: %s", PROXY_PREFIX);
	if (!(n = curl_slist_append(h, line)))
		goto nomem;
	h = n;
	snprintf(line, sizeof(line), "X-Forwarded-Host: %s", host ? host : "");
	if (!(n = curl_slist_append(h, line)))
		goto nomem;
	h = n;
	snprintf(line, sizeof(line), "X-Forwarded-Proto: %s",
		 ri->is_ssl ? "https" : "http");
	if (!(n = curl_slist_append(h, line)))
		goto nomem;
	h = n;
	snprintf(line, sizeof(line), "X-Forwarded-For: %s", ri->remote_addr);
	if (!(n = curl_slist_append(h, line)))
		goto nomem;
	return n;
nomem:
	curl_slist_free_all(h);
	return NULL;
}

int api_proxy_observability(struct http_req *r)
{
	const char *base = r->srv->opts->observability_url;
	const char *method = r->ri->request_method;
	long long clen = r->ri->content_length;
	bool body = clen > 0 || http_header(r, "Transfer-Encoding");
	struct curl_slist *hdrs = NULL;
	struct err e = ERR_INIT;
	struct px x;
	CURLcode cc;
	CURL *c = NULL;
	char *url = NULL;

	if (r->auth.kind == CALLER_GUEST)
		return http_fail(r, ERR_UNAUTHORIZED, MSG_AUTH);
	if (!http_is_admin(r))
		return http_fail(r, ERR_FORBIDDEN, "only an admin can use the "
				 "observability proxy");
	if (!base || !*base)
		return http_fail(r, ERR_UNAVAILABLE, "the observability proxy "
				 "is not configured (serve "
				 "--observability-url URL)");
	memset(&x, 0, sizeof(x));
	x.r = r;
	x.length = -1;
	x.head_only = !strcmp(method, "HEAD");
	buf_init(&x.head, HEAD_CAP);
	url = target_url(r, base, &e);
	if (!url) {
		http_reply_error(r, &e);
		goto out;
	}
	pthread_once(&curl_once, curl_init);
	c = curl_rc == CURLE_OK ? curl_easy_init() : NULL;
	hdrs = request_headers(r);
	if (!c || !hdrs) {
		http_fail(r, ERR_NOMEM, "cannot start the proxied request");
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_MS);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
			 (long)util_env_int("POCKETCTL_PROXY_STALL_S", 30, 1,
					    86400));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	if (x.head_only) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (!body && clen == 0) {
		/* an empty body said so: Content-Length: 0 upstream too */
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	} else if (body) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, &x);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)(clen > 0 ? clen : -1));
	}
	if (!x.head_only)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	cc = curl_easy_perform(c);
	if (cc == CURLE_OK && !x.started) {
		/* a reply without a body */
		drop_connection_named(&x);
		start_reply(&x);
	}
	if (cc == CURLE_OK && x.chunked && !x.client_gone)
		mg_send_chunk(r->conn, "", 0);   /* the last chunk */
	if (cc != CURLE_OK && !x.started)
		http_fail(r, cc == CURLE_OPERATION_TIMEDOUT ? ERR_TIMEOUT :
			  ERR_BAD_GATEWAY, "observability upstream: %s",
			  curl_easy_strerror(cc));
	else if (cc != CURLE_OK)
		/* the reply has started: it can only be cut short */
		mg_disable_connection_keep_alive(r->conn);
out:
	curl_slist_free_all(hdrs);
	if (c)
		curl_easy_cleanup(c);
	free(url);
	free(x.conn_hdr);
	buf_release(&x.head);
	return 0;
}
