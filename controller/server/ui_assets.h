/*
 * ui_assets.h - the status page's files (controller/server/ui/), put into
 * .rodata at build time with EMBED() (store/embedded.h), so a bare
 * ./pocketctl serves the page without touching the file system or the
 * network.
 */
#ifndef POCKETCTL_UI_ASSETS_H
#define POCKETCTL_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
	const char *name;          /* "app.js": the path below /_/ */
	const char *content_type;
	const char *data;          /* NUL-terminated */
	const char *end;           /* data + length */
};

extern const struct ui_asset ui_assets[];
extern const size_t ui_nassets;

#endif
