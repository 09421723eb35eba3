/*
 * http.c - request helpers (capped body reads, JSON bodies, query and
 * header access) and the reply helpers that send PocketBase-shaped JSON.
 *
 * Every reply goes through send_reply(): one status line, Content-Type,
 * Content-Length, CORS, the caller's extra headers, then the body. Error
 * text comes from struct err, whose message may have been cut mid-way
 * through a UTF-8 sequence at ERR_MSG_MAX bytes or may quote client bytes;
 * it is cleaned to valid UTF-8 before jansson sees it, so an error reply
 * can never fail to encode.
 */
#include "http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conns.h"
#include "log.h"
#include "server.h"

#define JSON_TYPE "application/json"

/* ---- UTF-8 ----------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when p does not
 * start one (bad lead byte, missing continuation, overlong form, surrogate,
 * beyond U+10FFFF): the same rules jansson applies. */
static size_t utf8_seq(const unsigned char *p)
{
	unsigned c = p[0];
	size_t n, i;
	unsigned long cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;   /* also stops at the terminating NUL */
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		return 0;
	return n;
}

/* Copy in to out (size n, n > 0), dropping every byte that does not belong
 * to a valid UTF-8 sequence and replacing control characters with spaces.
 * Always NUL-terminates; never splits a sequence. */
static void utf8_clean(const char *in, char *out, size_t n)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0, k;

	while (*p) {
		k = utf8_seq(p);
		if (!k) {
			p++;
			continue;
		}
		if (o + k >= n)
			break;
		if (k == 1 && *p < 0x20) {
			out[o++] = ' ';
		} else {
			memcpy(out + o, p, k);
			o += k;
		}
		p += k;
	}
	out[o] = '\0';
}

bool http_utf8_valid(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0, k;

	while (i < n) {
		if (u[i] == '\0')
			return false;
		/* utf8_seq() stops at a NUL, so it cannot read past a
		 * NUL-terminated string; a sequence cut by n is refused. */
		k = utf8_seq(u + i);
		if (!k || k > n - i)
			return false;
		i += k;
	}
	return true;
}

/* ---- requests -------------------------------------------------------- */

/*
 * The error for a body that stopped coming: the connection guard cut it
 * (too slow, or its worker was needed), or the client went away.
 */
static int body_failed(struct http_req *r, struct err *e)
{
	mg_disable_connection_keep_alive(r->conn);
	switch (conns_was_cut(r->slot)) {
	case CONNS_CUT_DEADLINE:
		return err_set(e, ERR_INVALID, "the request body did not "
			       "arrive within %lld s (%zu bytes came)",
			       (long long)(r->srv->opts->body_timeout_ms / 1000),
			       r->body.len);
	case CONNS_CUT_PRESSURE:
		return err_set(e, ERR_INVALID, "the request body came too "
			       "slowly while the server was short of workers "
			       "(%zu bytes came)", r->body.len);
	default:
		return err_set(e, ERR_INVALID, "cannot read the request body: "
			       "the connection failed");
	}
}

int http_read_body(struct http_req *r, size_t cap, struct err *e)
{
	long long clen = r->ri->content_length;
	char chunk[16384];
	int n, rc = 0;

	buf_release(&r->body);
	buf_init(&r->body, cap ? cap : 1);
	if (clen > 0 && (unsigned long long)clen > cap) {
		/* The unread body must not be taken for the next request. */
		mg_disable_connection_keep_alive(r->conn);
		return err_set(e, ERR_TOO_LARGE,
			       "request body of %lld bytes is larger than the "
			       "limit of %zu bytes", clen, cap);
	}
	if (clen == 0)
		return 0;
	conns_body(r->slot, true);
	for (;;) {
		n = mg_read(r->conn, chunk, sizeof(chunk));
		if (n == 0 && clen > 0 && r->body.len < (size_t)clen)
			n = -1;   /* end of file before Content-Length */
		if (n == 0)
			break;
		if (n < 0) {
			rc = body_failed(r, e);
			break;
		}
		if ((size_t)n > cap - r->body.len) {
			mg_disable_connection_keep_alive(r->conn);
			rc = err_set(e, ERR_TOO_LARGE,
				     "request body is larger than the limit "
				     "of %zu bytes", cap);
			break;
		}
		rc = buf_add(&r->body, chunk, (size_t)n);
		if (rc) {
			rc = err_set(e, rc, "cannot hold the request body");
			break;
		}
	}
	conns_body(r->slot, false);
	return rc;
}

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/*
 * Refuse JSON nested deeper than HTTP_JSON_MAX_DEPTH before jansson parses it:
 * its recursive parser (and every recursive walk after it) would otherwise
 * run a civetweb worker's small stack out long before jansson's own limit
 * of 2048 levels. Only brackets outside strings count.
 */
static int check_depth(const char *p, size_t n, struct err *e)
{
	bool in_str = false, esc = false;
	int depth = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		char ch = p[i];

		if (in_str) {
			if (esc)
				esc = false;
			else if (ch == '\\')
				esc = true;
			else if (ch == '"')
				in_str = false;
		} else if (ch == '"') {
			in_str = true;
		} else if (ch == '[' || ch == '{') {
			if (++depth > HTTP_JSON_MAX_DEPTH)
				return err_set(e, ERR_INVALID,
					       "invalid JSON body: nested "
					       "deeper than %d levels",
					       HTTP_JSON_MAX_DEPTH);
		} else if (ch == ']' || ch == '}') {
			depth--;
		}
	}
	return 0;
}

/*
 * The error for a body jansson refused. A duplicate key is named, as the
 * field of the error: jansson's text quotes the key's JSON token ("near
 * '\"name\"'"), decoded here; a token cut short by jansson's message limit
 * leaves the field empty and the text as it is.
 */
static int json_body_error(const json_error_t *jerr, struct err *e)
{
	const char *near, *end;
	json_t *key = NULL;
	int rc;

	if (json_error_code(jerr) != json_error_duplicate_key)
		return err_set(e, ERR_INVALID,
			       "invalid JSON body at line %d, column %d: %s",
			       jerr->line, jerr->column, jerr->text);
	near = strstr(jerr->text, "near '");
	end = near ? strrchr(near + 6, '\'') : NULL;
	if (end)
		key = json_loadb(near + 6, (size_t)(end - near - 6),
				 JSON_DECODE_ANY, NULL);
	if (json_is_string(key))
		rc = err_set_field(e, ERR_INVALID, json_string_value(key),
				   "invalid JSON body at line %d, column %d: "
				   "duplicate key '%s'", jerr->line,
				   jerr->column, json_string_value(key));
	else
		rc = err_set(e, ERR_INVALID,
			     "invalid JSON body at line %d, column %d: %s",
			     jerr->line, jerr->column, jerr->text);
	json_decref(key);
	return rc;
}

/* An empty body counts as {}: PocketBase accepts body-less POSTs (e.g.
 * auth-refresh) and so do we. */
int http_read_json(struct http_req *r, size_t cap, json_t **out,
		   struct err *e)
{
	json_error_t jerr;
	json_t *v;
	int rc;

	*out = NULL;
	rc = http_read_body(r, cap, e);
	if (!rc)
		rc = check_depth(r->body.ptr, r->body.len, e);
	if (rc)
		return rc;
	if (r->body.len == 0) {
		*out = json_object();
		return *out ? 0 : err_set(e, ERR_NOMEM, "out of memory");
	}
	/* Last-wins on a repeated key would let two readers of one body
	 * (a proxy, a rule check) see different values: refuse it. */
	v = json_loadb(r->body.ptr, r->body.len, JSON_REJECT_DUPLICATES,
		       &jerr);
	if (!v)
		return json_body_error(&jerr, e);
	if (!json_is_object(v)) {
		rc = err_set(e, ERR_INVALID,
			     "the request body must be a JSON object, not %s",
			     json_type_name(v));
		json_decref(v);
		return rc;
	}
	*out = v;
	return 0;
}

int http_query(const struct http_req *r, const char *name, char *out,
	       size_t n)
{
	const char *q = r->ri->query_string;

	if (n)
		out[0] = '\0';
	if (!q)
		return -1;
	return mg_get_var(q, strlen(q), name, out, n);
}

/* An integer query parameter: absent or empty keeps *out; not an integer
 * is ERR_INVALID naming it. */
static int query_int(const struct http_req *r, const char *name,
		     int64_t *out, struct err *e)
{
	char v[32], *end;
	long long x;
	int n;

	n = http_query(r, name, v, sizeof(v));
	if (n == -1 || n == 0)
		return 0;
	errno = 0;
	x = n > 0 ? strtoll(v, &end, 10) : 0;
	if (n < 0 || errno || *end || end == v)
		return err_set_field(e, ERR_INVALID, name,
				     "%s: want an integer", name);
	*out = x;
	return 0;
}

int http_query_page(const struct http_req *r, int64_t per_default,
		    int64_t per_max, int64_t *page, int64_t *per_page,
		    struct err *e)
{
	int rc;

	*page = 1;
	*per_page = per_default;
	rc = query_int(r, "page", page, e);
	if (!rc)
		rc = query_int(r, "perPage", per_page, e);
	if (rc)
		return rc;
	if (*page < 1)
		*page = 1;
	if (*page > HTTP_PAGE_MAX)
		*page = HTTP_PAGE_MAX;
	if (*per_page <= 0)
		*per_page = per_default;
	if (*per_page > per_max)
		*per_page = per_max;
	return 0;
}

const char *http_header(const struct http_req *r, const char *name)
{
	return mg_get_header(r->conn, name);
}

bool http_is_admin(const struct http_req *r)
{
	const char *role;

	if (r->auth.kind == CALLER_SUPERUSER)
		return true;
	if (r->auth.kind != CALLER_USER || !r->auth.record)
		return false;
	role = json_string_value(json_object_get(r->auth.record, "role"));
	return role && strcmp(role, "admin") == 0;
}

bool http_agent_or_admin(struct http_req *r, const char *what)
{
	const char *role;

	if (r->auth.kind == CALLER_GUEST) {
		http_fail(r, ERR_UNAUTHORIZED, "The request requires valid "
			  "record authorization token.");
		return false;
	}
	if (http_is_admin(r))
		return true;
	role = json_string_value(json_object_get(r->auth.record, "role"));
	if (role && !strcmp(role, "agent"))
		return true;
	http_fail(r, ERR_FORBIDDEN, "only the agent or an admin can %s", what);
	return false;
}

/* ---- replies --------------------------------------------------------- */

/*
 * The status line and headers of a reply into out (the blank line that
 * ends them included): Date, Content-Type, Content-Length (len; neither
 * for a status without a body), Connection: close when the client asked
 * to close, CORS, the caller's extra lines. Sets r->status; a second reply
 * is refused (ERR_INTERNAL, logged).
 */
static int reply_head(struct http_req *r, int status, const char *ctype,
		      uint64_t len, const char *extra, struct buf *out)
{
	bool no_body = status == 204 || status == 304 || status < 200;
	const char *conn = http_header(r, "Connection");
	char date[40];
	struct tm tm;
	time_t now = time(NULL);
	int rc;

	if (r->status) {
		log_msg(LOG_ERROR, "http", "route '%s' replied twice (%d, then "
			"%d); the second reply was dropped",
			r->route ? r->route : "?", r->status, status);
		return ERR_INTERNAL;
	}
	r->status = status;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	rc = buf_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
			mg_get_response_code_text(r->conn, status), date);
	if (!rc && ctype && !no_body)
		rc = buf_printf(out, "Content-Type: %s\r\n", ctype);
	if (!rc && !no_body && len == HTTP_LEN_CHUNKED)
		rc = buf_puts(out, "Transfer-Encoding: chunked\r\n");
	else if (!rc && !no_body)
		rc = buf_printf(out, "Content-Length: %llu\r\n",
				(unsigned long long)len);
	if (!rc && conn && !strcasecmp(conn, "close"))
		rc = buf_puts(out, "Connection: close\r\n");
	if (!rc)
		rc = buf_puts(out, "Access-Control-Allow-Origin: *\r\n");
	if (!rc && extra && *extra)
		rc = buf_puts(out, extra);
	if (!rc)
		rc = buf_puts(out, "\r\n");
	return rc ? ERR_NOMEM : 0;
}

/*
 * Write the whole reply - status line, headers and body - with one
 * mg_write(), so it leaves in one send(): civetweb's header API sends the
 * headers on their own first, and a second small write behind them waits
 * on the client's delayed ACK (measured: list replies went from ~7,000 to
 * ~11,500 req/s).
 */
static int send_reply(struct http_req *r, int status, const char *ctype,
		      const char *data, size_t len, const char *extra)
{
	bool body = !(status == 204 || status == 304 || status < 200) &&
		    len && strcmp(r->ri->request_method, "HEAD") != 0;
	struct buf out = BUF_INIT;
	int rc;

	rc = reply_head(r, status, ctype, len, extra, &out);
	if (!rc && body)
		rc = buf_add(&out, data, len) ? ERR_NOMEM : 0;
	if (!rc)
		mg_write(r->conn, out.ptr, out.len);
	buf_release(&out);
	if (!rc && r->capture && status == 200 && body) {
		r->capture->content_type = ctype;
		r->capture->ok = !buf_add(&r->capture->body, data, len) &&
				 !buf_puts(&r->capture->extra, extra ? extra : "");
	}
	return rc;
}

int http_reply_start(struct http_req *r, int status, const char *ctype,
		     uint64_t len, const char *extra_headers)
{
	struct buf out = BUF_INIT;
	int rc;

	rc = reply_head(r, status, ctype, len, extra_headers, &out);
	if (!rc && mg_write(r->conn, out.ptr, out.len) <= 0)
		rc = ERR_IO;
	buf_release(&out);
	return rc;
}

static const char encode_failed[] =
	"{\"status\":500,\"message\":\"cannot encode the reply\",\"data\":{}}\n";

int http_reply_json(struct http_req *r, int status, json_t *body,
		    const char *extra_headers)
{
	char *text;
	size_t len;
	int rc;

	if (!body) {
		/* A handler built its reply with a failing jansson call
		 * (allocation, or bytes that are not UTF-8). */
		return send_reply(r, 500, JSON_TYPE, encode_failed,
				  sizeof(encode_failed) - 1, NULL);
	}
	/* The body ends with a newline, as PocketBase's encoder writes it
	 * (json_dumpb() into a buffer one byte longer than it needs). */
	len = json_dumpb(body, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	text = len ? malloc(len + 1) : NULL;
	if (text && json_dumpb(body, text, len, JSON_COMPACT |
			       JSON_ENCODE_ANY) != len) {
		free(text);
		text = NULL;
	}
	json_decref(body);   /* stolen, as documented */
	if (!text)
		return send_reply(r, 500, JSON_TYPE, encode_failed,
				  sizeof(encode_failed) - 1, NULL);
	text[len] = '\n';
	rc = send_reply(r, status, JSON_TYPE, text, len + 1, extra_headers);
	free(text);
	return rc;
}

int http_reply_bytes(struct http_req *r, int status, const char *content_type,
		     const char *data, size_t len, const char *extra_headers)
{
	return send_reply(r, status, content_type, data, len, extra_headers);
}

int http_reply_text(struct http_req *r, int status, const char *content_type,
		    const char *text, size_t len)
{
	return send_reply(r, status,
			  content_type ? content_type : "text/plain; charset=utf-8",
			  text, len, NULL);
}

int http_reply_empty(struct http_req *r, int status,
		     const char *extra_headers)
{
	return send_reply(r, status, NULL, "", 0, extra_headers);
}

/* PocketBase's per-field error codes, from our result codes. */
static const char *field_code(int code)
{
	switch (code) {
	case ERR_CONFLICT: return "validation_not_unique";
	case ERR_TOO_LARGE: return "validation_max_size_constraint";
	default: return "validation_invalid_value";
	}
}

/* The PocketBase error body for e, NULL when out of memory. */
static json_t *error_body(struct http_req *r, const struct err *e)
{
	char msg[ERR_MSG_MAX], field[ERR_FIELD_MAX];
	int code = e && e->code ? e->code : ERR_INTERNAL;
	int status = err_http_status(code);
	json_t *data;

	utf8_clean(e && e->msg[0] ? e->msg : err_name(code), msg, sizeof(msg));
	if (status >= 500)
		log_msg(LOG_ERROR, "http", "%s %s: %s",
			r->ri->request_method, r->route ? r->route : "-", msg);
	data = json_object();
	if (data && e && e->field[0]) {
		utf8_clean(e->field, field, sizeof(field));
		/* steals the inner object */
		json_object_set_new(data, field,
				    json_pack("{s:s, s:s}", "code",
					      field_code(code), "message", msg));
	}
	/* "o" steals data (and json_pack decrefs it on failure). */
	return data ? json_pack("{s:i, s:s, s:o}", "status", status, "message",
				msg, "data", data) : NULL;
}

int http_reply_error(struct http_req *r, const struct err *e)
{
	int code = e && e->code ? e->code : ERR_INTERNAL;

	return http_reply_json(r, err_http_status(code), error_body(r, e),
			       NULL);
}

int http_reply_errors(struct http_req *r, const struct err_list *l)
{
	char msg[ERR_MSG_MAX], field[ERR_FIELD_MAX], file[512];
	json_t *body, *list, *item;
	size_t i;

	if (!l->n)
		return http_fail(r, ERR_INTERNAL, "no error to report");
	body = error_body(r, &l->v[0].err);
	list = json_array();
	if (!body || !list ||
	    json_object_set_new(body, "errors", list) ||
	    json_object_set_new(body, "errorCount",
				json_integer((json_int_t)l->total))) {
		json_decref(body);
		return http_fail(r, ERR_NOMEM, "out of memory");
	}
	for (i = 0; i < l->n; i++) {
		const struct err_entry *x = &l->v[i];

		utf8_clean(x->err.msg, msg, sizeof(msg));
		utf8_clean(x->err.field, field, sizeof(field));
		utf8_clean(x->file ? x->file : "", file, sizeof(file));
		/* "file" is null for a problem without a position. */
		item = json_pack("{s:s, s:s, s:o, s:i, s:i}", "message", msg,
				 "field", field, "file",
				 x->file ? json_string(file) : json_null(),
				 "line", x->line, "column", x->column);
		if (!item || json_array_append_new(list, item)) {
			json_decref(body);
			return http_fail(r, ERR_NOMEM, "out of memory");
		}
	}
	return http_reply_json(r, err_http_status(l->v[0].err.code), body,
			       NULL);
}

int http_reply_too_many(struct http_req *r, int retry_after_s)
{
	char extra[48];
	json_t *body = json_pack("{s:i, s:s, s:{}}", "status", 429, "message",
				 "Too Many Requests.", "data");

	snprintf(extra, sizeof(extra), "Retry-After: %d\r\n",
		 retry_after_s > 0 ? retry_after_s : 1);
	return http_reply_json(r, 429, body, extra);   /* body stolen */
}

int http_fail(struct http_req *r, int code, const char *fmt, ...)
{
	struct err e = ERR_INIT;
	va_list ap;

	e.code = code ? code : ERR_INTERNAL;
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
	va_end(ap);
	return http_reply_error(r, &e);
}
