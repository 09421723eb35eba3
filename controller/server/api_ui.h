/*
 * api_ui.h - the status page: GET /_/ and its assets, compiled into the
 * binary from controller/server/ui/ (ui_assets.c), and GET / redirecting
 * to it. The page reads everything through the public API with the token
 * its user signs in with; these handlers serve only static files.
 */
#ifndef POCKETCTL_API_UI_H
#define POCKETCTL_API_UI_H

#include "http.h"

/* GET / and GET /_ : 302 to /_/. */
int api_ui_redirect(struct http_req *r);

/*
 * GET /_/ and GET /_/FILE: index.html for the bare prefix, else the asset
 * named FILE; 404 for another name. Every reply carries the page's
 * Content-Security-Policy, X-Content-Type-Options: nosniff, a strong
 * ETag (If-None-Match answers 304) and Cache-Control: no-cache, so a
 * browser revalidates but never downloads an unchanged file twice.
 */
int api_ui_asset(struct http_req *r);

#endif
