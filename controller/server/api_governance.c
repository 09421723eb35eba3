/*
 * api_governance.c - the human-in-the-loop endpoints over HTTP (see
 * api_governance.h): roles, bodies and replies around the core's
 * governance logic (governance.h) and ledger verification (ledger.h).
 */
#include "api_governance.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "governance.h"
#include "ledger.h"
#include "server.h"

#define BODY_CAP_DEFAULT ((size_t)1 << 20)
#define MSG_AUTH "The request requires valid record authorization token."

/* ---- routes ------------------------------------------------------------------------ */

static size_t body_cap(const struct http_req *r)
{
	size_t cap = r->srv->opts ? r->srv->opts->max_body : 0;

	return cap ? cap : BODY_CAP_DEFAULT;
}

int api_governance_permission(struct http_req *r)
{
	struct err e = ERR_INIT;
	json_t *body = NULL, *reply = NULL;
	int rc;

	if (!http_agent_or_admin(r, "ask for a permission"))
		return 0;
	rc = http_read_json(r, body_cap(r), &body, &e);
	if (!rc)
		rc = governance_permission_request(r->srv->store, body, &reply,
						   &e);
	json_decref(body);
	if (rc)
		return http_reply_error(r, &e);
	return http_reply_json(r, 200, reply, NULL);   /* reply stolen */
}

int api_governance_mcp_request(struct http_req *r)
{
	struct err e = ERR_INIT;
	json_t *body = NULL, *reply = NULL;
	int64_t retry = 0;
	char hdr[64];
	int rc;

	if (!http_agent_or_admin(r, "request an mcp server"))
		return 0;
	rc = http_read_json(r, body_cap(r), &body, &e);
	if (!rc)
		rc = governance_mcp_request(r->srv->store, body,
					    governance_mcp_cooldown(), &reply,
					    &retry, &e);
	json_decref(body);
	if (rc && retry > 0) {
		snprintf(hdr, sizeof(hdr), "Retry-After: %" PRId64 "\r\n",
			 retry);
		reply = json_pack("{s:i, s:s, s:{}, s:I}", "status", 429,
				  "message", e.msg, "data", "retryAfter",
				  (json_int_t)retry);
		if (reply)
			return http_reply_json(r, 429, reply, hdr);
	}
	if (rc)
		return http_reply_error(r, &e);
	return http_reply_json(r, 200, reply, NULL);   /* reply stolen */
}

int api_governance_ledger_verify(struct http_req *r)
{
	struct err e = ERR_INIT;
	json_t *report = NULL;

	if (r->auth.kind == CALLER_GUEST)
		return http_fail(r, ERR_UNAUTHORIZED, MSG_AUTH);
	if (ledger_verify(r->srv->store, &report, &e))
		return http_reply_error(r, &e);
	return http_reply_json(r, 200, report, NULL);   /* report stolen */
}
