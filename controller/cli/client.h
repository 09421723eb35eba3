/*
 * client.h - the CLI's HTTP client for a running `pocketctl serve`
 * (libcurl).
 *
 * One handle per command run: a base URL, an optional token sent as
 * "Authorization: Bearer TOKEN", and hard connect and total timeouts on
 * every transfer. Replies are JSON; a non-2xx reply in PocketBase's error
 * shape ({status, message, data: {field: {code, message}}}) becomes a
 * struct err whose code is derived from the HTTP status and whose message
 * is the server's, so a command prints exactly what it would have printed
 * offline.
 */
#ifndef POCKETCTL_CLIENT_H
#define POCKETCTL_CLIENT_H

#include <stddef.h>

#include <jansson.h>

#include "err.h"

#define CLIENT_CONNECT_TIMEOUT_MS 5000L
#define CLIENT_TIMEOUT_MS 300000L            /* whole transfer: 5 minutes */
#define CLIENT_MAX_REPLY ((size_t)256 << 20) /* reply bodies beyond: error */
#define CLIENT_STREAM_STALL_S 45L            /* three missed heartbeats */

struct client;

struct client_options {
	const char *url;          /* "http://127.0.0.1:8090"; http or https only */
	const char *token;        /* NULL or "": no Authorization header */
	long connect_timeout_ms;  /* <= 0: CLIENT_CONNECT_TIMEOUT_MS */
	long timeout_ms;          /* <= 0: CLIENT_TIMEOUT_MS */
};

/*
 * Make a client for o->url (copied; a trailing '/' is dropped). Returns 0,
 * ERR_INVALID when the URL is empty, not http:// or https://, or holds
 * control characters, or ERR_NOMEM / ERR_INTERNAL when libcurl cannot be
 * set up. Caller owns *out (client_free()).
 */
int client_new(struct client **out, const struct client_options *o,
	       struct err *e);

/* Accepts NULL. */
void client_free(struct client *c);

/* The base URL, for messages. Borrowed; valid until client_free(). */
const char *client_url(const struct client *c);

/*
 * Send method to base URL + path ("/api/v1/apply?dryRun=true"; the caller
 * escapes path components with client_escape()). body may be NULL (no
 * body); content_type is used only with a body.
 *
 * On a 2xx reply returns 0 and, when reply is not NULL, stores the parsed
 * JSON body there (json null for an empty body; caller owns it). Errors:
 *   - the server could not be reached, or the transfer failed or timed
 *     out: ERR_UNAVAILABLE, "cannot reach pocketctl server at URL: WHY";
 *   - a non-2xx reply: the code of its status (400 ERR_INVALID, 401
 *     ERR_UNAUTHORIZED, 403 ERR_FORBIDDEN, 404 ERR_NOT_FOUND, 409
 *     ERR_CONFLICT, 412 ERR_PRECONDITION, 413 ERR_TOO_LARGE, 502
 *     ERR_ENGINE, 503 ERR_UNAVAILABLE, other 4xx ERR_INVALID, other 5xx
 *     ERR_INTERNAL) with the server's message and field, or a message
 *     naming the status when the body is not PocketBase-shaped;
 *   - a 2xx reply that is not JSON, or larger than CLIENT_MAX_REPLY:
 *     ERR_INVALID / ERR_TOO_LARGE naming the URL.
 * On error *reply is left untouched.
 */
int client_call(struct client *c, const char *method, const char *path,
		const char *content_type, const char *body, size_t len,
		json_t **reply, struct err *e);

/*
 * A streamed GET of path (Server-Sent Events, a log): each line of a 2xx
 * reply, without its line ending, is handed to fn as it arrives; fn
 * returns non-zero to stop (then 0 is returned). There is no total
 * timeout, but a reply that sends nothing for CLIENT_STREAM_STALL_S
 * seconds is cut. Returns 0 when the reply ended or fn stopped it, else
 * the errors of client_call() (a non-2xx reply's message as there; a cut
 * stream is ERR_UNAVAILABLE).
 */
typedef int (*client_line_fn)(void *arg, const char *line, size_t len);

int client_stream(struct client *c, const char *path, client_line_fn fn,
		  void *arg, struct err *e);

/* Bound every later transfer by ms (> 0; the default is the options'
 * timeout_ms): a command that waits for a deadline of its own. */
void client_set_timeout(struct client *c, long ms);

/* The HTTP status of the last reply (0 when none arrived). */
long client_last_status(const struct client *c);

/* The PocketBase-shaped body of the last reply when it was an error
 * ({"status", "message", "data", ...}), else NULL. Borrowed; valid until
 * the next client_call() or client_free(). */
json_t *client_last_error(const struct client *c);

/* Percent-encode s for a path segment or query value. Caller owns the
 * result (free with free()); NULL on allocation failure. */
char *client_escape(struct client *c, const char *s);

#endif
