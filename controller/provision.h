/*
 * provision.h - proposal files to draft proposals: every top-level
 * "*.md" file of the proposals directory (<root>/workspace/.opencode/
 * proposals) with YAML frontmatter (name, description) becomes a proposals
 * record with status "draft".
 *
 * Fixes over the original (reference §7.2, §13 item 18): a changed file of
 * an approved proposal puts it back to "draft" with the new content - it is
 * never sealed by itself; a file is synced only when its bytes changed
 * since the last sync (its SHA-256 is kept in a label), so edits made
 * through the API are not overwritten at every start; files that disappear
 * are reported, their proposals kept; bad files (frontmatter that is not a
 * YAML mapping or is not closed, a name that is not a skill name - so no
 * '/' or '..' -, more than PROVISION_MAX_BYTES, not UTF-8, a NUL byte, a
 * symlink or anything but a regular file, two files with one name) are
 * reported naming the file, and nothing of them is written.
 *
 * THREAD SAFETY NOTES: no state of its own; provision_sync() may run on any
 * thread (the reconcile engine's, normally) and writes through store
 * transactions, one per file.
 */
#ifndef POCKETCTL_PROVISION_H
#define POCKETCTL_PROVISION_H

#include <stddef.h>

#include <jansson.h>

#include "err.h"
#include "store/store.h"

#define PROVISION_MAX_BYTES ((size_t)256 << 10)  /* = proposals.content */
#define PROVISION_MAX_FILES 10000
#define PROVISION_LABEL_FILE "pocketcoder.io/source-file"
#define PROVISION_LABEL_SHA "pocketcoder.io/source-sha256"

/* One parsed proposal file. A value type; release with
 * provision_file_release(). */
struct provision_file {
	char *name;          /* owned; the frontmatter name, else the file
	                      * name without ".md" */
	char *description;   /* owned; "" when absent */
	char *body;          /* owned; the text after the frontmatter (the
	                      * whole text when there is none) */
	size_t body_len;
};

/*
 * Parse text[0..len) of the file called filename (a base name ending in
 * ".md"; used for the default name and in messages). Frontmatter is
 * recognised when the first line is "---" (trailing blanks and CR
 * ignored); it ends at the next line that is "---" or "..."; between them
 * must be a YAML mapping (libyaml, yamljson.h) whose "name" and
 * "description", when present, are strings (other keys are ignored). The
 * name must pass ledger_name_ok(). Errors are ERR_INVALID with a message
 * starting with the file name (and line:column for YAML errors, counted in
 * the file); ERR_TOO_LARGE beyond PROVISION_MAX_BYTES; ERR_NOMEM. On error
 * *out is left empty.
 */
int provision_parse(const char *filename, const char *text, size_t len,
		    struct provision_file *out, struct err *e);

/* Accepts NULL; leaves f empty. */
void provision_file_release(struct provision_file *f);

/*
 * Sync directory dir into the proposals of s (see the top of this file)
 * and describe what happened in *report (caller owns it):
 *
 *   {"directory": DIR, "exists": bool,
 *    "files": [{"file": "x.md", "name": "x"|null,
 *               "action": "created"|"updated"|"draft"|"unchanged"|
 *                         "invalid"|"missing",
 *               "message": "..."}]}
 *
 * "draft" is an update of a proposal that was approved (it is draft now);
 * "invalid" files wrote nothing; "missing" names a proposal whose source
 * file is gone (the proposal is kept). A missing directory is not an
 * error (exists false; proposals provisioned earlier are then missing).
 * When root is not NULL, dir is reached by a confined walk from root
 * (util.h, fs_open_dir_beneath()): a symlinked directory on the way is
 * ERR_IO naming it, never followed; with root NULL dir is opened as it is.
 * Returns 0 (bad files are in the report, not errors), ERR_IO when the
 * directory cannot be read, or a store error (files synced before it
 * stay synced).
 */
int provision_sync(struct store *s, const char *root, const char *dir,
		   json_t **report, struct err *e);

#endif
