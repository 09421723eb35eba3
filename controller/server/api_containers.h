/*
 * api_containers.h - the container routes of `pocketctl serve`:
 *
 *   POST /api/v1/containers/:name/restart   api_container_restart
 *   GET  /api/pocketcoder/logs/:container   api_container_logs (SSE)
 *
 * Both are for admins only (a superuser, or a users record with role
 * admin: 401 without a token, 403 otherwise) and only for containers of
 * the `containers` collection: any other name is 404 before any engine
 * call is made.
 *
 * restart records a manual restart request (containers.h) and answers
 * 202 {"name", "request": {"id", "at", "by"}} at once; the reconciler
 * restarts the container (reason ManualRestart) off the request path, and
 * the outcome shows in the container's status and on /api/v1/watch.
 *
 * logs streams the container's log as Server-Sent Events, one event per
 * log line ("data: LINE", stdout and stderr alike; Docker's multiplexed
 * frames decoded, TTY containers read raw), with ?tail=N (default 100,
 * "all" for everything) and ?follow=1|0 (default 1). A comment line
 * (": heartbeat") goes out every 15 s while nothing else does
 * (POCKETCTL_HEARTBEAT_MS overrides); when the engine ends the stream an
 * "end" event is sent, and an engine failure mid-stream is an "error"
 * event. When the client goes away the next write (a line or a heartbeat)
 * fails and the upstream request to the engine is aborted at once.
 */
#ifndef POCKETCTL_API_CONTAINERS_H
#define POCKETCTL_API_CONTAINERS_H

#include "http.h"

int api_container_restart(struct http_req *r);
int api_container_logs(struct http_req *r);

#endif
