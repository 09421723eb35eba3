/*
 * api_proxy.h - the dashboard tab's reverse proxy:
 *
 *   ANY /api/pocketcoder/proxy/observability/{path}   api_proxy_observability
 *
 * to the upstream `serve --observability-url URL` names (503 "not
 * configured" without one), for admins and superusers only (401 for
 * guests, 403 for anyone else). The route's prefix is stripped and the
 * rest of the path (as sent, still encoded) and the query are appended to
 * URL; a ".." segment is 400. Request and response bodies are streamed
 * both ways through libcurl, never held whole: the request body as
 * civetweb reads it, the response as it arrives (with the upstream's
 * Content-Length, else chunked).
 *
 * Headers: hop-by-hop ones (Connection and those it names, Keep-Alive,
 * Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade) are dropped both ways;
 * the caller's Authorization and Cookie are never forwarded, nor any
 * Set-Cookie back; X-Forwarded-Prefix (the route's prefix), -Host (the
 * Host the caller sent), -Proto and -For (the caller's address) are set,
 * replacing any the caller sent. Redirects are passed back, not followed.
 *
 * Timeouts: 5 s to connect, and an upstream that sends nothing for
 * POCKETCTL_PROXY_STALL_S seconds (30 by default) is given up. Before the
 * reply has started that is 504; an unreachable, refusing or malformed
 * upstream is 502; once the reply has started the connection is closed.
 * The request holds its worker while it runs.
 *
 * THREAD SAFETY NOTES: no state of its own: each request makes its own
 * curl handle on its worker thread (libcurl's global init is done once at
 * start-up by the server).
 */
#ifndef POCKETCTL_API_PROXY_H
#define POCKETCTL_API_PROXY_H

#include "http.h"

#define PROXY_PREFIX "/api/pocketcoder/proxy/observability"

int api_proxy_observability(struct http_req *r);

#endif
