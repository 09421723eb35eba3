/*
 * api_push.h - the push endpoint the interface bridge calls on
 * task_complete and task_error (and anyone allowed, for other types):
 *
 *   POST /api/pocketcoder/push    api_push
 *
 * Only HTTP lives here: the body is queued in the notification outbox
 * (outbox.h) and delivered by the push reconciler, never on the request
 * thread.
 *
 * THREAD SAFETY NOTES: no state of its own.
 */
#ifndef POCKETCTL_API_PUSH_H
#define POCKETCTL_API_PUSH_H

#include "http.h"

/* POST /api/pocketcoder/push {user_id, type, title, message, chat, key}:
 * role agent or admin (401 for guests, 403 otherwise); 200 with
 * outbox_push_request()'s reply; 400 naming the field of a bad body or an
 * unknown user_id. */
int api_push(struct http_req *r);

#endif
