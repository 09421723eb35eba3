/*
 * api_ui.c - serves the status page's embedded files (see api_ui.h). The
 * files never change while the server runs, so each one's ETag (the first
 * 16 bytes of its SHA-256, in hex) is computed once, on the first request.
 *
 * THREAD SAFETY NOTES: every worker may serve assets at once; the ETag
 * table is filled under pthread_once() and only read afterwards.
 */
#include "api_ui.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "ui_assets.h"

#define UI_MAX_ASSETS 32
#define ETAG_LEN 34   /* '"' + 32 hex digits + '"' */

/* Nothing but this origin, no inline script or style, no framing, no
 * <base>, forms only to here. UI_MAX_ASSETS bounds the ETag table; a
 * table of more assets needs it raised. */
#define UI_HEADERS                                                          \
	"Content-Security-Policy: default-src 'self'; script-src 'self'; "  \
	"style-src 'self'; img-src 'self' data:; connect-src 'self'; "      \
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'\r\n"   \
	"X-Content-Type-Options: nosniff\r\n"                               \
	"X-Frame-Options: DENY\r\n"                                         \
	"Referrer-Policy: no-referrer\r\n"                                  \
	"Cache-Control: no-cache\r\n"

static char etags[UI_MAX_ASSETS][ETAG_LEN + 1];
static pthread_once_t etags_once = PTHREAD_ONCE_INIT;

static void etags_fill(void)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	size_t i, j;

	for (i = 0; i < ui_nassets && i < UI_MAX_ASSETS; i++) {
		SHA256((const unsigned char *)ui_assets[i].data,
		       (size_t)(ui_assets[i].end - ui_assets[i].data), md);
		etags[i][0] = '"';
		for (j = 0; j < 16; j++)
			snprintf(etags[i] + 1 + 2 * j, 3, "%02x", md[j]);
		etags[i][ETAG_LEN - 1] = '"';
		etags[i][ETAG_LEN] = '\0';
	}
}

int api_ui_redirect(struct http_req *r)
{
	return http_reply_empty(r, 302, "Location: /_/\r\n" UI_HEADERS);
}

/* Does the If-None-Match list (or "*") hold etag? */
static bool etag_matches(const char *inm, const char *etag)
{
	const char *p = inm;
	size_t n = strlen(etag);

	if (!inm)
		return false;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (!strncmp(p, "W/", 2))
			p += 2;
		if (*p == '*' || !strncmp(p, etag, n))
			return true;
		p = strchr(p, ',');
		if (!p)
			break;
	}
	return false;
}

int api_ui_asset(struct http_req *r)
{
	const char *name = r->params[0] && *r->params[0] ? r->params[0] :
			   "index.html";
	const struct ui_asset *a = NULL;
	char extra[1024];
	size_t i, len;

	for (i = 0; i < ui_nassets && i < UI_MAX_ASSETS; i++) {
		if (!strcmp(ui_assets[i].name, name)) {
			a = &ui_assets[i];
			break;
		}
	}
	if (!a)
		return http_fail(r, ERR_NOT_FOUND,
				 "The requested resource wasn't found.");
	pthread_once(&etags_once, etags_fill);
	snprintf(extra, sizeof(extra), "ETag: %s\r\n" UI_HEADERS, etags[i]);
	if (etag_matches(http_header(r, "If-None-Match"), etags[i]))
		return http_reply_empty(r, 304, extra);
	len = (size_t)(a->end - a->data);
	if (http_reply_start(r, 200, a->content_type, len, extra))
		return 0;
	if (strcmp(r->ri->request_method, "HEAD") != 0)
		mg_write(r->conn, a->data, len);
	return 0;
}
