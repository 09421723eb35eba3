/*
 * api_files.h - the sandbox's files for the app's file viewer:
 *
 *   GET /api/pocketcoder/artifact/{path}   api_files_get (the old name)
 *   GET /api/pocketcoder/files/{path}      api_files_get
 *
 * Files under <root>/workspace, opened from a directory fd of the
 * workspace with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS): a path
 * with "..", an absolute path, an encoded '/' or '\', a path over 4096
 * bytes and a symlink that leads outside (or has an absolute target) are
 * 403; symlinks that stay inside are followed. Never served (403): the
 * files the reconcilers declare secret (llm.env, its copy, mcp.env: the
 * same inode, by any name), anything not world-readable (pocketctl writes
 * its secrets 0600), anything with more than one hard link (a link to a
 * file elsewhere cannot be told from the file), anything that is not a
 * regular file or a directory.
 *
 * A file: Content-Type from its extension, X-Content-Type-Options:
 * nosniff and Content-Security-Policy: sandbox on every reply, and
 * Content-Disposition: attachment for HTML, XHTML, SVG and XML, so a file
 * from the sandbox never runs script on the API's origin. Content-Length,
 * ETag (strong: inode, size, mtime) with If-None-Match (304),
 * Last-Modified, Accept-Ranges; one Range "bytes=A-B" / "A-" / "-N" is
 * 206 with Content-Range (If-Range honoured), an unsatisfiable or
 * malformed one 416 with Content-Range: bytes * /SIZE; a Range of several
 * ranges is ignored (200, the whole file), as RFC 9110 allows. The body
 * is streamed from the opened fd in 64 KiB chunks, never held in memory;
 * everything is decided on fstat() of that fd, so the file read is the
 * file checked.
 *
 * A directory: a JSON listing {page, perPage, totalItems, totalPages,
 * items: [{name, type: file|dir|symlink|other, size, modified}]}, sorted
 * by name (bytes), paged by ?page= (from 1) and ?perPage= (30 by default,
 * at most 1000), at most 100,000 entries (413 beyond); a name that is not
 * valid UTF-8 is left out.
 *
 * Any authenticated caller (401 for guests); 404 for a missing path or no
 * workspace.
 *
 * THREAD SAFETY NOTES: no state of its own; each request opens its own
 * descriptors, so handlers may run on any request thread at once.
 */
#ifndef POCKETCTL_API_FILES_H
#define POCKETCTL_API_FILES_H

#include "http.h"

int api_files_get(struct http_req *r);

#endif
