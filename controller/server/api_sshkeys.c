/*
 * api_sshkeys.c - GET /api/pocketcoder/ssh_keys (see api_sshkeys.h): the
 * keys the sandbox's sshd should accept, in the original's text form. The
 * lines come from the same renderer as authorized_keys, so the endpoint
 * and the file can never disagree on which keys count.
 */
#include "api_sshkeys.h"

#include <string.h>

#include "render.h"
#include "server.h"

#define MSG_AUTH "The request requires valid record authorization token."

static bool is_agent(const struct http_req *r)
{
	const char *role;

	role = json_string_value(json_object_get(r->auth.record, "role"));
	return r->auth.kind == CALLER_USER && role && !strcmp(role, "agent");
}

static int collect(const struct record *rec, void *arg)
{
	json_t *j = record_to_json(rec);

	/* j is stolen by the array (also on failure). */
	return j && !json_array_append_new(arg, j) ? 0 : ERR_NOMEM;
}

int api_sshkeys_list(struct http_req *r)
{
	struct err e = ERR_INIT;
	struct buf out = BUF_INIT;
	json_t *keys = NULL, *warnings = NULL;
	char now[TIME_LEN + 1];
	int rc;

	if (r->auth.kind == CALLER_GUEST)
		return http_fail(r, ERR_UNAUTHORIZED, MSG_AUTH);
	if (!http_is_admin(r) && !is_agent(r))
		return http_fail(r, ERR_FORBIDDEN, "only the agent or an admin "
				 "can list the ssh keys");
	keys = json_array();
	warnings = json_array();
	if (!keys || !warnings) {
		rc = err_set(&e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = store_list(r->srv->store, "ssh_keys", NULL, collect, keys, &e);
	if (rc == ERR_NOMEM)   /* from collect(): e not set */
		err_set(&e, ERR_NOMEM, "out of memory");
	util_now(now);
	if (!rc)
		rc = render_authorized_keys(keys, now, &out, warnings, &e);
	if (!rc && out.len && out.ptr[out.len - 1] == '\n')
		out.ptr[--out.len] = '\0';
out:
	if (rc)
		http_reply_error(r, &e);
	else
		http_reply_text(r, 200, "text/plain; charset=utf-8", out.ptr,
				out.len);
	json_decref(keys);
	json_decref(warnings);
	buf_release(&out);
	return 0;
}
