/*
 * ui_assets.c - the table of the status page's embedded files (see
 * ui_assets.h). The Makefile makes this object depend on every file of
 * controller/server/ui/; a new file is one EMBED() and one table line.
 */
#include "ui_assets.h"

#include "store/embedded.h"

EMBED(ui_index_html, "controller/server/ui/index.html");
EMBED(ui_app_css, "controller/server/ui/app.css");
EMBED(ui_app_js, "controller/server/ui/app.js");
EMBED(ui_api_js, "controller/server/ui/api.js");
EMBED(ui_dom_js, "controller/server/ui/dom.js");
EMBED(ui_views_js, "controller/server/ui/views.js");
EMBED(ui_records_js, "controller/server/ui/records.js");
EMBED(ui_icon_svg, "controller/server/ui/icon.svg");

#define JS "text/javascript; charset=utf-8"
#define ASSET(name, type, sym) { name, type, sym, sym##_end }

const struct ui_asset ui_assets[] = {
	ASSET("index.html", "text/html; charset=utf-8", ui_index_html),
	ASSET("app.css", "text/css; charset=utf-8", ui_app_css),
	ASSET("app.js", JS, ui_app_js),
	ASSET("api.js", JS, ui_api_js),
	ASSET("dom.js", JS, ui_dom_js),
	ASSET("views.js", JS, ui_views_js),
	ASSET("records.js", JS, ui_records_js),
	ASSET("icon.svg", "image/svg+xml", ui_icon_svg),
};
const size_t ui_nassets = sizeof(ui_assets) / sizeof(ui_assets[0]);
