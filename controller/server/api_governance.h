/*
 * api_governance.h - the human-in-the-loop endpoints:
 *
 *   POST /api/pocketcoder/permission    api_governance_permission
 *   POST /api/pocketcoder/mcp_request   api_governance_mcp_request
 *   GET  /api/v1/ledger/verify          api_governance_ledger_verify
 *
 * Only HTTP lives here; the rules and the request logic are the core's
 * (governance.h), the write hooks run in the store whoever writes.
 *
 * THREAD SAFETY NOTES: no state of its own; every handler may run on any
 * request thread at once (the store serialises the writes).
 */
#ifndef POCKETCTL_API_GOVERNANCE_H
#define POCKETCTL_API_GOVERNANCE_H

#include "http.h"

/* POST /api/pocketcoder/permission: role agent or admin (401 for guests,
 * 403 otherwise); 200 with governance_permission_request()'s reply, 400
 * for a bad body. */
int api_governance_permission(struct http_req *r);

/* POST /api/pocketcoder/mcp_request: role agent or admin; 200, 400, 409,
 * or 429 with Retry-After and "retryAfter" (seconds) during a cool-down
 * (governance_mcp_request()). */
int api_governance_mcp_request(struct http_req *r);

/* GET /api/v1/ledger/verify: any authenticated caller; 200 with the
 * ledger_verify() report (also when the ledger is broken: see "ok"). */
int api_governance_ledger_verify(struct http_req *r);

#endif
