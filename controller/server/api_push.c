/*
 * api_push.c - POST /api/pocketcoder/push (see api_push.h): the caller's
 * role, the body, and the reply around the core's outbox_push_request().
 */
#include "api_push.h"

#include "outbox.h"
#include "server.h"

int api_push(struct http_req *r)
{
	struct err e = ERR_INIT;
	json_t *body = NULL, *reply = NULL;
	size_t cap = r->srv->opts && r->srv->opts->max_body ?
		     r->srv->opts->max_body : (size_t)1 << 20;
	int rc;

	if (!http_agent_or_admin(r, "send a push notification"))
		return 0;
	rc = http_read_json(r, cap, &body, &e);
	if (!rc)
		rc = outbox_push_request(r->srv->store, body, &reply, &e);
	json_decref(body);
	if (rc)
		return http_reply_error(r, &e);
	return http_reply_json(r, 200, reply, NULL);   /* reply stolen */
}
