/*
 * api_governance.h - the human-in-the-loop endpoints and the write hooks
 * that keep governance invariants whoever writes the records:
 *
 *   POST /api/pocketcoder/permission    api_governance_permission
 *   POST /api/pocketcoder/mcp_request   api_governance_mcp_request
 *   GET  /api/v1/ledger/verify          api_governance_ledger_verify
 *
 * The hooks run inside the writer's store transaction (the records API
 * calls governance_on_write() after every create and update, before
 * commit), so an invariant holds or the write does not happen:
 *   - proposals: sealing on approval (ledger_on_proposal_write);
 *   - permissions: only the chat's owner or an admin decides, only while
 *     the row is a draft, and the decision records approved_by and
 *     approved_at (governance_on_permission_write);
 *   - mcp_servers: only an admin creates a row in another status than
 *     pending, and approval records approved_by and approved_at.
 *
 * The endpoint logic is split from HTTP (governance_permission_request,
 * governance_mcp_request) so that it can be driven directly by tests.
 *
 * THREAD SAFETY NOTES: no state of its own; every function may run on any
 * request thread at once (the store serialises the writes).
 */
#ifndef POCKETCTL_API_GOVERNANCE_H
#define POCKETCTL_API_GOVERNANCE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "http.h"
#include "store/store.h"

/* The mcp_request cool-down after a denial, in seconds, unless
 * $POCKETCTL_MCP_COOLDOWN (a non-negative integer of seconds) says
 * otherwise. */
#define GOVERNANCE_MCP_COOLDOWN_DEFAULT 3600
#define GOVERNANCE_MCP_COOLDOWN_ENV "POCKETCTL_MCP_COOLDOWN"
#define GOVERNANCE_MCP_NAME_MAX 128

/* ---- write hooks ------------------------------------------------------- */

/*
 * Call after store_txn_put() of any record and before store_commit(), in
 * the same transaction t: dispatches on after->collection to the hooks
 * below (other collections: nothing). before is the stored record (NULL
 * on create), after the record as written, which a hook may replace with
 * the record as it is after its own writes (so reply with *after);
 * actor_id is the caller's auth record id (users or _superusers), NULL for
 * the server itself. On error the caller aborts t and replies with e
 * (ERR_FORBIDDEN 403, ERR_CONFLICT 409, ERR_INVALID 400, ...).
 */
int governance_on_write(struct store_txn *t, const struct record *before,
			struct record *after, const char *actor_id,
			struct err *e);

/* True when governance_on_write() acts on records of collection (so a
 * writer must pass the stored record as before). */
bool governance_watches(const char *collection);

/*
 * permissions: a change of status away from "draft" is a decision. It
 * needs the owner of the row's chat or an admin (ERR_FORBIDDEN), and it
 * sets approved_by (the deciding users record; "" for a superuser or the
 * server) and approved_at (now). A decided row is an audit record: any
 * later write of it is ERR_CONFLICT, so of two concurrent decisions
 * exactly one wins. A create in a decided status needs an admin (the
 * endpoint creates its rows itself, as the server); a draft created
 * without a challenge gets a fresh random one (UUIDv4).
 */
int governance_on_permission_write(struct store_txn *t,
				   const struct record *before,
				   struct record *after, const char *actor_id,
				   struct err *e);

/*
 * mcp_servers: a create in any status but "pending" needs an admin
 * (ERR_FORBIDDEN: an agent cannot approve its own request); a change to
 * "approved" sets approved_by and approved_at.
 */
int governance_on_mcp_write(struct store_txn *t, const struct record *before,
			    struct record *after, const char *actor_id,
			    struct err *e);

/* ---- endpoint logic ------------------------------------------------------ */

/*
 * Evaluate a permission request (reference §8.1 body: permission,
 * patterns, chat_id, session_id, opencode_id, metadata, message,
 * message_id, call_id; plus optional "agent", an ai_agents id or name,
 * which defaults to the chat's agent) against the active tool_permissions
 * (permeval.h), and record it: a permissions row with source "interface",
 * a fresh random challenge (UUIDv4) and status authorized (allow), draft
 * (ask: a human decides) or denied (deny). *reply (caller owns) is
 * {"permitted": bool, "id", "status", "decision": [per-subject
 * explanation]}. ERR_INVALID names the field for a bad body (permission,
 * opencode_id and session_id are required strings; chat_id must name a
 * chat; agent an agent).
 */
int governance_permission_request(struct store *s, json_t *body,
				  json_t **reply, struct err *e);

/*
 * Request an MCP server (reference §11.4 body: server_name, reason,
 * session_id, image, config_schema), idempotently by name in one
 * transaction:
 *   - no row of that name: create it pending -> {"id", "status":
 *     "pending"};
 *   - a pending or approved row: update requested_by and the reason,
 *     image and config_schema that the body carries -> {"id", "status",
 *     "synced": true}; an approved row whose image or config_schema would
 *     change is ERR_CONFLICT (an admin must change an approved server);
 *   - a revoked row, or a denied one whose cool-down is over: pending
 *     again with the new fields -> {"id", "status": "pending",
 *     "reopened": true};
 *   - a denied row within cooldown_s seconds of its last change:
 *     ERR_CONFLICT with *retry_after = the seconds left (> 0).
 * *retry_after is 0 otherwise. ERR_INVALID names the field of a bad body
 * (server_name: 1-128 characters of [A-Za-z0-9._-], starting with a
 * letter or digit).
 */
int governance_mcp_request(struct store *s, json_t *body, int64_t cooldown_s,
			   json_t **reply, int64_t *retry_after,
			   struct err *e);

/* The cool-down in effect (GOVERNANCE_MCP_COOLDOWN_ENV or the default). */
int64_t governance_mcp_cooldown(void);

/* ---- routes ----------------------------------------------------------------- */

/* POST /api/pocketcoder/permission: role agent or admin (401 for guests,
 * 403 otherwise); 200 with the reply above, 400 for a bad body. */
int api_governance_permission(struct http_req *r);

/* POST /api/pocketcoder/mcp_request: role agent or admin; 200, 400, 409,
 * or 429 with Retry-After and "retryAfter" (seconds) during a cool-down. */
int api_governance_mcp_request(struct http_req *r);

/* GET /api/v1/ledger/verify: any authenticated caller; 200 with the
 * ledger_verify() report (also when the ledger is broken: see "ok"). */
int api_governance_ledger_verify(struct http_req *r);

#endif
