/*
 * governance.h - the governance rules of the core: the write hooks that
 * keep the human-in-the-loop invariants whoever writes the records, and
 * the logic of the permission and MCP request endpoints.
 *
 * The hooks are governance.c's store_write_hooks[] (store.h): the store
 * runs them inside the writer's transaction for every put of a watched
 * collection (HTTP, apply, the offline CLI, a reconciler), with the actor
 * the writer set (store_txn_set_actor()), so an invariant holds or the
 * write does not happen:
 *   - proposals: sealing on approval (ledger_on_proposal_write); a
 *     declared approval (an apply) seals what it declares;
 *   - permissions: only the chat's owner or an admin decides, only while
 *     the row is a draft, and the decision records approved_by and
 *     approved_at; a decided row never changes again; a draft gets a
 *     random challenge;
 *   - mcp_servers: only an admin creates a row in another status than
 *     pending, and approval records approved_by and approved_at.
 *
 * The endpoint logic is split from HTTP (governance_permission_request,
 * governance_mcp_request; server/api_governance.c serves them) so that it
 * can be driven directly by tests. Its writes run as the server.
 *
 * THREAD SAFETY NOTES: no state of its own; every function may run on any
 * request thread at once (the store serialises the writes).
 */
#ifndef POCKETCTL_GOVERNANCE_H
#define POCKETCTL_GOVERNANCE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "store/store.h"

/* The mcp_request cool-down after a denial, in seconds, unless
 * $POCKETCTL_MCP_COOLDOWN (a non-negative integer of seconds) says
 * otherwise. */
#define GOVERNANCE_MCP_COOLDOWN_DEFAULT 3600
#define GOVERNANCE_MCP_COOLDOWN_ENV "POCKETCTL_MCP_COOLDOWN"
#define GOVERNANCE_MCP_NAME_MAX 128

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

#endif
