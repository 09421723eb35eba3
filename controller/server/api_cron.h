/*
 * api_cron.h - the agent's scheduling endpoints, with the original's
 * request and response shapes (reference §9), so that its OpenCode tools
 * schedule_task, list_scheduled_tasks and cancel_scheduled_task work:
 *
 *   POST /api/pocketcoder/schedule_task          api_cron_schedule
 *   GET  /api/pocketcoder/scheduled_tasks        api_cron_list
 *   POST /api/pocketcoder/cancel_scheduled_task  api_cron_cancel
 *
 * Agent or admin only (401 for a guest, 403 otherwise). The user acted for
 * is the user of the newest chat whose ai_engine_session_id is the
 * request's session_id (400 "Could not resolve user from session"). The
 * job is written as the caller, so cron.h's write hook validates it as on
 * every other path.
 *
 * THREAD SAFETY NOTES: no state of its own; any request thread.
 */
#ifndef POCKETCTL_API_CRON_H
#define POCKETCTL_API_CRON_H

#include "http.h"

/* Body {name, cron_expression, prompt, session_id (required),
 * session_mode ("new" default, or "existing": the session's chat),
 * description, timezone (IANA, default UTC)}: 200 {id, name,
 * cron_expression, status: "scheduled", next_run}; 400 naming the field. */
int api_cron_schedule(struct http_req *r);

/* ?session_id=: 200 [{id, name, cron_expression, prompt, session_mode,
 * enabled, last_executed, last_status, timezone, next_run}] of that user,
 * newest first. */
int api_cron_list(struct http_req *r);

/* Body {task_id, session_id}: enabled=false, 200 {id, name, status:
 * "cancelled"}; 404 for an unknown task; 403 when the task belongs to
 * another user than the session's (an admin may give no session_id and
 * cancel any). */
int api_cron_cancel(struct http_req *r);

#endif
