/*
 * http.h - the request context every route handler gets, and the reply
 * helpers that turn results and struct err into PocketBase-shaped JSON.
 *
 * One civetweb request handler (server.c) accepts every request, builds a
 * struct http_req (caller identity from the Authorization header, query
 * access, a capped body reader), dispatches through the route table and
 * records metrics from r->status afterwards. Handlers never write raw
 * status lines themselves: they call http_reply_*(), exactly once.
 *
 * THREAD SAFETY NOTES: a struct http_req belongs to the civetweb worker
 * thread running the request; the struct server it points at is shared and
 * documents its own locking.
 */
#ifndef POCKETCTL_HTTP_H
#define POCKETCTL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <civetweb.h>
#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "util.h"

struct server;
struct conn_slot;

enum http_caller {
	CALLER_GUEST = 0,     /* no or empty Authorization header */
	CALLER_USER,          /* a users record */
	CALLER_SUPERUSER,     /* a _superusers record, or the local CLI token */
};

struct http_auth {
	enum http_caller kind;
	char id[ID_LEN + 1];          /* the auth record's id, "" for guests */
	char collection_id[64];       /* "_pb_users_auth_", "pbc_3142635823" */
	json_t *record;               /* owned: the auth record's data plus "id"
	                               * (users: role, email, ...); NULL for
	                               * guests */
};

#define HTTP_MAX_PARAMS 3

/* A copy of the 200 reply a handler sends while r->capture points here
 * (the records API keeps it in its reply cache, respcache.h): the body,
 * the extra header lines and the content type (a string constant of the
 * handler's, borrowed). ok is set once a 200 reply was copied whole.
 * Caller owns both buffers (buf_release()). */
struct http_capture {
	struct buf body;
	struct buf extra;
	const char *content_type;
	bool ok;
};

struct http_req {
	struct mg_connection *conn;
	const struct mg_request_info *ri;
	struct server *srv;
	struct http_auth auth;
	const char *route;            /* metric label, e.g. "/api/collections/:c/records" */
	int status;                   /* the status replied, 0 until then */
	bool detached;                /* a stream handed to the pump: it
	                               * gives the stream slot back */
	bool worker_stream;           /* holds a WORKER_STREAMS_MAX slot,
	                               * given back after the handler */
	struct conn_slot *slot;       /* the connection guard's (conns.h), or
	                              * NULL */
	struct buf body;              /* filled by http_read_body() */
	char *params[HTTP_MAX_PARAMS];/* path parameters in pattern order
	                               * (":c", ":id", "*"), URL-decoded,
	                               * owned by the request; NULL past the
	                               * last one */
	struct http_capture *capture; /* borrowed, NULL: see above */
	int64_t head;                 /* store_head() as it was before the
	                               * caller was identified (server.c):
	                               * every store state the reply reads,
	                               * the caller's auth record included,
	                               * is this one or later (the reply
	                               * cache keeps a reply under it) */
};

typedef int (*http_handler_fn)(struct http_req *r);

/* Long-lived streams (SSE) are counted against max_streams and refused
 * with 503 beyond it. */
enum http_stream {
	STREAM_NONE = 0,      /* an ordinary request */
	STREAM_PUMPED,        /* handed to the stream pump once it starts */
	STREAM_WORKER,        /* keeps its worker for its life (container
	                       * logs): also capped by WORKER_STREAMS_MAX,
	                       * for which the worker pool has room */
};

/*
 * One route. pattern segments starting with ':' match one path segment; a
 * final "*" matches the rest of the path (possibly empty). Routes are tried
 * in table order; the first whose method and pattern match wins (method
 * NULL = any). A path that matches a pattern but not its method gets 405.
 */
struct http_route {
	const char *method;
	const char *pattern;
	http_handler_fn fn;
	enum http_stream stream;
};

/* The route table, in controller/routes.c: one line per route, grouped by
 * the module that implements it. */
extern const struct http_route http_routes[];
extern const size_t http_nroutes;

/*
 * Read the request body into r->body, refusing more than cap bytes with
 * ERR_TOO_LARGE (checked against Content-Length before reading, and while
 * reading for chunked bodies).
 */
int http_read_body(struct http_req *r, size_t cap, struct err *e);

/* Read and parse a JSON object body (cap as above); an empty body is {}.
 * Caller owns *out. A parse error is ERR_INVALID naming line and column;
 * so is a key repeated in one object (jansson's JSON_REJECT_DUPLICATES),
 * with the key as the error's field;
 * so is nesting deeper than HTTP_JSON_MAX_DEPTH levels (refused before
 * parsing: recursion that deep would overflow a worker's stack). */
#define HTTP_JSON_MAX_DEPTH 64
int http_read_json(struct http_req *r, size_t cap, json_t **out,
		   struct err *e);

/*
 * Copy query parameter name (URL-decoded) into out (size n). Returns its
 * length, or -1 when absent (or too long, which is also ERR_INVALID-worthy:
 * callers treat -2 as "too long").
 */
int http_query(const struct http_req *r, const char *name, char *out,
	       size_t n);

/*
 * PocketBase's paging parameters: ?page= (from 1; clamped to [1,
 * HTTP_PAGE_MAX]) and ?perPage= (per_default when absent or not positive,
 * at most per_max), into *page and *per_page. A value that is not an
 * integer is ERR_INVALID naming the parameter.
 */
#define HTTP_PAGE_MAX 100000000   /* keeps page * perPage far from overflow */
int http_query_page(const struct http_req *r, int64_t per_default,
		    int64_t per_max, int64_t *page, int64_t *per_page,
		    struct err *e);

/*
 * True when p[0..n) is valid UTF-8 (jansson's rules: no overlong forms,
 * surrogates or code points beyond U+10FFFF) and holds no NUL byte. p
 * must be NUL-terminated at n or later.
 */
bool http_utf8_valid(const char *p, size_t n);

/* A request header, or NULL. */
const char *http_header(const struct http_req *r, const char *name);

/*
 * Replies. body is stolen (json_decref'd) in every case. extra_headers is
 * NULL or "Name: value\r\n" lines. They set r->status. A JSON body ends
 * with "\n", as PocketBase's encoder writes it.
 */
int http_reply_json(struct http_req *r, int status, json_t *body,
		    const char *extra_headers);
int http_reply_text(struct http_req *r, int status, const char *content_type,
		    const char *text, size_t len);
int http_reply_bytes(struct http_req *r, int status, const char *content_type,
		     const char *data, size_t len, const char *extra_headers);
int http_reply_empty(struct http_req *r, int status,
		     const char *extra_headers);

/*
 * Start a reply whose body the handler then writes itself with mg_write()
 * (a file streamed in chunks, never held in memory): the status line and
 * the headers of every reply, Content-Length: len (none for 204 and 304;
 * len HTTP_LEN_CHUNKED: Transfer-Encoding: chunked instead, the body then
 * sent with mg_send_chunk() and ended by an empty chunk), extra_headers.
 * Sets r->status. Returns 0, ERR_NOMEM, ERR_IO (the client went away) or
 * ERR_INTERNAL (a second reply, dropped).
 */
#define HTTP_LEN_CHUNKED UINT64_MAX
int http_reply_start(struct http_req *r, int status, const char *content_type,
		     uint64_t len, const char *extra_headers);

/*
 * PocketBase error body: {"status": S, "message": M, "data": {FIELD:
 * {"code": "validation_...", "message": M}}} with S = err_http_status(code);
 * data is {} when e->field is empty.
 */
int http_reply_error(struct http_req *r, const struct err *e);

/*
 * Every problem of l (not empty) in one reply: the body http_reply_error()
 * makes for the first, with its status, plus "errors": [{"message",
 * "field", "file" (null when none), "line", "column"}, ...] (at most
 * ERR_LIST_MAX) and "errorCount": every problem found.
 */
int http_reply_errors(struct http_req *r, const struct err_list *l);

/*
 * 429 with PocketBase's body ({"status":429,"message":"Too Many
 * Requests.","data":{}}) and "Retry-After: retry_after_s".
 */
int http_reply_too_many(struct http_req *r, int retry_after_s);

/* Shorthand: build an err and reply with it. */
int http_fail(struct http_req *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* True for an admin: a superuser, or a users record with role "admin". */
bool http_is_admin(const struct http_req *r);

/* True when the caller is the agent (a users record with role "agent") or
 * an admin; otherwise replies 401 (a guest) or 403 ("only the agent or an
 * admin can WHAT") and returns false. */
bool http_agent_or_admin(struct http_req *r, const char *what);

#endif
