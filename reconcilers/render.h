/*
 * render.h - the deterministic renderers: pure functions from store records
 * to the exact bytes of a generated file.
 *
 * The reconcile engine reads the records from the store, calls a renderer
 * and writes the result atomically only when the bytes differ.  Every
 * renderer here is pure: no clock, no file system, no environment.  Input
 * is jansson arrays of records in record_to_json() form ({"id", "name",
 * "updated", "data": {...}, ...}; only those four members are read), output
 * is appended to a struct buf, and anything the renderer had to skip or
 * decide is appended to a `warnings` JSON array as one human-readable line
 * (never containing a secret value).  Identical input gives byte-identical
 * output and warnings whatever the order of the input arrays: rows are
 * sorted, conflicts are resolved by a documented rule, and nothing carries
 * a timestamp or a count.
 *
 * Common conventions for every function below:
 *   - A NULL records array means "no records"; a non-array is ERR_INVALID.
 *     Array elements that are not objects with a "data" object are skipped
 *     with a warning.
 *   - warnings may be NULL (warnings are then dropped).  When it is an
 *     array, strings are appended to it (json_array_append_new).
 *   - On error nothing is appended to out (it is left as it was), e says
 *     why, and warnings may have been partly appended.
 *   - The records and warnings are borrowed; nothing is retained.
 *   - The functions keep no state and may run on any thread at once.
 *   - "Latest wins": when two records define the same thing (an env key,
 *     an MCP server name, an agent name), the record with the greatest
 *     `updated` wins, ties broken by the greatest `id` (byte order); the
 *     conflict is reported as a warning naming every record involved.
 */
#ifndef POCKETCTL_RENDER_H
#define POCKETCTL_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"

/* ---- env files: llm.env and mcp.env --------------------------------- */

enum render_env_style {
	/*
	 * KEY='value' with POSIX single quotes ('  ->  '\''), for files that
	 * are sourced with `. ./file`.  Inside single quotes every byte is
	 * literal, so spaces, quotes, $, `, backslashes, unicode and even
	 * newlines come back exactly and can never start another assignment.
	 */
	RENDER_ENV_SHELL,
	/*
	 * KEY=value verbatim, for line-based readers that do no unquoting
	 * (the Docker MCP gateway's --secrets file: it trims the line and
	 * cuts at the first '=').  Values that such a reader cannot carry
	 * exactly (a newline or CR, trailing white space, a line over its
	 * 64 KiB limit) are skipped with a warning.
	 */
	RENDER_ENV_RAW,
};

/*
 * The shared env-file writer. For every record of records (an array),
 * data[field] must be an object of variable name -> value (missing or
 * null: no variables; another type: skipped with a warning). Writes
 * header verbatim (NULL: nothing; each line should start with '#'), then
 * one KEY=value line per variable, sorted by key (byte order).
 *
 * Rules, in order:
 *   - key names must match ^[A-Za-z_][A-Za-z0-9_]*$, others are skipped
 *     with a warning;
 *   - names that change how programs load or run rather than configure a
 *     provider (LD_*, DYLD_*, BASH_FUNC_*, PATH, HOME, SHELL, IFS, ENV,
 *     BASH_ENV, NODE_OPTIONS, PYTHONPATH, GIT_SSH_COMMAND, ...: the list is
 *     in llm_env.c) are skipped with a warning: a user's key record must
 *     not inject code into the containers that load the file;
 *   - values: a string as is; a number or boolean as its JSON text
 *     (1000000.0, true); null as empty; an object or array as its compact
 *     JSON text; a value containing a NUL byte (or, for RENDER_ENV_RAW,
 *     one it cannot carry) is skipped with a warning;
 *   - a key defined by several records: latest wins (see above), with a
 *     warning "key 'K' defined by <what> 'a' and 'b'; 'b' wins (latest
 *     updated)".
 * what names the collection in warnings ("llm_keys").
 * Returns 0, ERR_INVALID (records not an array), ERR_TOO_LARGE (out's cap)
 * or ERR_NOMEM.
 */
int render_env(json_t *records, const char *field, const char *what,
	       enum render_env_style style, const char *header,
	       struct buf *out, json_t *warnings, struct err *e);

/*
 * llm.env: render_env() over llm_keys records, field "env_vars",
 * RENDER_ENV_SHELL, with a fixed two-line header comment. The file is meant
 * to be loaded with `. ./llm.env` (or `set -a; . ./llm.env; set +a`), not
 * with the original entrypoint's `export $(grep -v '^#' llm.env | xargs)`.
 * Errors as render_env().
 */
int render_llm_env(json_t *llm_keys, struct buf *out, json_t *warnings,
		   struct err *e);

/* ---- MCP gateway: docker-mcp.yaml + mcp.env ------------------------- */

/*
 * Both MCP gateway files from mcp_servers records, in one pass so that the
 * warnings are reported once. Either output may be NULL (not rendered).
 *
 * Servers: records with data.status == "approved" and a non-empty
 * data.name (the record name when data.name is missing); several records
 * with the same name: latest wins, with a warning.
 *
 * catalog_out (docker-mcp.yaml), emitted with libyaml through yaml_emit():
 *     # one fixed comment line
 *     name: docker-mcp
 *     displayName: PocketCoder Dynamic Catalog
 *     registry:            ({} when there is no server, never null)
 *       <name>:            (sorted by name)
 *         title: <name>
 *         description: Approved by user for PocketCoder
 *         type: server
 *         image: <render_mcp_image(name, data.image)>
 *         longLived: false
 *         secrets:         (when data.config has a valid variable name)
 *         - name: K        (the valid config keys, sorted; a key whose
 *           env: K          value mcp.env cannot carry is still listed)
 *
 * env_out (mcp.env): render_env() over the selected servers, field
 * "config", RENDER_ENV_RAW (the gateway reads the file verbatim, without
 * unquoting), with a fixed header comment; a key set by several servers:
 * latest wins, with a warning.
 *
 * Returns 0, ERR_INVALID (mcp_servers not an array, or a string yaml
 * cannot carry), ERR_TOO_LARGE or ERR_NOMEM.
 */
int render_docker_mcp(json_t *mcp_servers, struct buf *catalog_out,
		      struct buf *env_out, json_t *warnings, struct err *e);

/*
 * The image reference for an MCP server: "mcp/<name>" when image is NULL or
 * empty; then ":latest" is appended unless the reference has a digest ('@')
 * or its last path component already carries a ':' tag. A registry port is
 * not a tag: "host:5000/img" becomes "host:5000/img:latest" (the original
 * looked for ':' anywhere and left it untagged). Appends to out; returns 0,
 * ERR_TOO_LARGE or ERR_NOMEM.
 */
int render_mcp_image(const char *name, const char *image, struct buf *out);

/* ---- opencode.json --------------------------------------------------- */

/*
 * Read-patch-write of OpenCode's opencode.json.
 *
 * existing[0..len) is the current file; NULL or len 0 means the file is
 * missing and rendering starts from {}. It must be a JSON object, else
 * ERR_INVALID with "opencode.json:LINE:COLUMN: <parser message>" and
 * nothing rendered. Every key the renderer does not own keeps its value
 * and its position; keys it adds go at the end.
 *
 * Owned: the top-level "permission", and inside "agent" every entry and,
 * in each entry, "model", "prompt", "description", "mode", "permission".
 *
 * Permission blocks are built from tool_permissions rows with
 * data.active == true and a valid tool, pattern and action (allow|ask|
 * deny; invalid rows are skipped with a warning). Rows are ordered by
 * (priority, tool, pattern); tools appear in the order of their first
 * row; a tool with exactly one row whose pattern is "*" is written flat
 * ("bash": "ask"), otherwise nested ({"<pattern>": "<action>", ...}) with
 * patterns in (priority, pattern) order, so that OpenCode's last-match-wins
 * evaluation follows the intended order. data.priority is a number
 * (missing: 0).
 *   - "permission" = the global rows (data.agent == ""). Fail closed:
 *     unless a global row has tool "*" and pattern "*", "*": "ask" comes
 *     first (as the first pattern of the "*" tool if that tool exists
 *     with other patterns).
 *   - "agent": created when missing (replaced, with a warning, when not an
 *     object). For every ai_agents record (name = data.name, else the
 *     record name), agent[<name>] (kept when it is an object) gets:
 *     "model" = the related ai_models data.identifier, removed when the
 *     relation is empty or does not resolve; "prompt" = the related
 *     ai_prompts data.body, same rule; "description" when non-empty, else
 *     removed; "mode" when one of primary|subagent|all, else removed (with
 *     a warning when it was set, e.g. "sandbox_agent"); "permission" =
 *     the block of that agent's rows (data.agent == the agent's id), no
 *     fail-closed default, removed when the agent has no active rows.
 *     Other keys of the entry are kept. Entries of "agent" that name no
 *     ai_agents record are removed, with a warning: the store is the
 *     source of truth for agents. New entries are appended in name order.
 *
 * Output: two-space indentation (jansson JSON_INDENT(2)), UTF-8, '<', '>',
 * '&' and '/' not escaped, reals written with the fewest digits that read
 * back exactly for the whole document (at least 15), and a trailing
 * newline.
 *
 * Returns 0, ERR_INVALID (existing is not a JSON object, or an input is not
 * an array), ERR_TOO_LARGE or ERR_NOMEM.
 */
int render_opencode_json(const char *existing, size_t len,
			 json_t *tool_permissions, json_t *agents,
			 json_t *prompts, json_t *models, struct buf *out,
			 json_t *warnings, struct err *e);

/* ---- agent bundles ---------------------------------------------------- */

/*
 * One OpenCode agent-markdown file for the ai_agents record agent:
 *     ---\n<frontmatter>---\n\n<prompt body>
 * The frontmatter is a YAML mapping emitted with libyaml (yaml_emit), keys
 * in this order and each only when it applies: description (non-empty),
 * mode (one of primary|subagent|all), model (identifier of the related
 * ai_models record, when it resolves); "{}" when none applies. The body is
 * the related ai_prompts data.body (empty when it does not resolve),
 * followed by a newline unless it is empty or already ends with one.
 * prompts and models: arrays of records (NULL: none).
 * Returns 0, ERR_INVALID (agent not a record object, an input not an
 * array), ERR_TOO_LARGE or ERR_NOMEM.
 */
int render_agent_bundle(json_t *agent, json_t *prompts, json_t *models,
			struct buf *out, struct err *e);

/*
 * True when name can be used as an agent bundle's file name (name + ".md"
 * in one directory): 1 to 100 bytes of [A-Za-z0-9._-], not starting with
 * '.'. NULL is false.
 */
bool render_agent_name_ok(const char *name);

/* ---- authorized_keys -------------------------------------------------- */

/*
 * The sandbox's authorized_keys from ssh_keys records: keys with
 * data.is_active == true and data.expires_at empty (or missing/null) or
 * strictly later than now. One data.public_key per line, surrounding
 * white space trimmed, sorted (byte order) and de-duplicated, each line
 * ending in '\n'; no keys gives an empty file.
 *
 * A key is skipped with a warning when it contains a line break or a
 * control character, or does not look like "<type> <base64>[ <comment>]"
 * (type ssh-*, ecdsa-sha2-* or sk-*; base64 that decodes to a blob naming
 * the same type), so no authorized_keys options (command=, environment=)
 * can be smuggled in; and when expires_at is not a valid timestamp (fail
 * closed).
 *
 * now: the current time as "YYYY-MM-DD HH:MM:SS.sssZ" ('T' instead of the
 * space is accepted, so is a missing fraction); the caller passes it in to
 * keep the function pure. Returns 0, ERR_INVALID (now malformed, ssh_keys
 * not an array), ERR_TOO_LARGE or ERR_NOMEM.
 */
int render_authorized_keys(json_t *ssh_keys, const char *now,
			   struct buf *out, json_t *warnings, struct err *e);

/* ---- helpers shared by the renderers ---------------------------------- */

/*
 * Append one warning to warnings (no-op when it is NULL): printf-style,
 * control characters replaced by spaces so that it stays one line.
 * Returns 0 or ERR_NOMEM.
 */
int render_warn(json_t *warnings, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* data[field] of a record as a string; "" when missing or not a string.
 * Borrowed from rec. */
const char *render_data_str(json_t *rec, const char *field);

/* A record's name for messages: its "name", else its "id", else "?".
 * Borrowed from rec. */
const char *render_label(json_t *rec);

/*
 * Order records oldest first by (updated, id), then by their canonical
 * JSON text so that the order never depends on the input order. Returns
 * <0, 0, >0 like strcmp; the last of a sorted run is the one that wins.
 */
int render_cmp_age(json_t *a, json_t *b);

/*
 * Copy the valid records (objects with a "data" object) of records into a
 * newly allocated array sorted with render_cmp_age(); invalid elements
 * are reported as warnings naming what. *out receives borrowed
 * references (free the array itself with free()); *n their number.
 * Returns 0, ERR_INVALID (records neither NULL nor an array), ERR_NOMEM.
 */
int render_sorted_records(json_t *records, const char *what, json_t ***out,
			  size_t *n, json_t *warnings, struct err *e);

/* The record of records (borrowed) whose "id" is id; NULL when id is
 * empty or not found. */
json_t *render_find_id(json_t **recs, size_t n, const char *id);

/*
 * The jansson JSON_REAL_PRECISION(p) value to dump v with: the smallest p
 * (15 to 17) with which every real in v reads back exactly.
 */
size_t render_real_flags(json_t *v);

#endif
