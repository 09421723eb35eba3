/*
 * api_status.h - the reconcile engine over HTTP (admins only):
 *   GET  /api/v1/status     everything engine_status() knows: per
 *                           reconciler and per artifact conditions,
 *                           observedRevision, hashes, errors, retries,
 *                           events; the manifests watch; the queue.
 *   POST /api/v1/reconcile  ask for an immediate full pass. ?wait=true
 *                           waits (up to ?timeout=SECONDS, default 30,
 *                           at most 300) until it has completed and
 *                           returns the status with it.
 */
#ifndef POCKETCTL_API_STATUS_H
#define POCKETCTL_API_STATUS_H

#include "http.h"

/* 200 with the status object; 401/403 for non-admins; 503 when the
 * engine is not running. */
int api_status(struct http_req *r);

/* 202 {"requested": N} (or 200 {"requested": N, "completed": true,
 * "status": {...}} with wait; 504 when the wait times out). */
int api_reconcile(struct http_req *r);

#endif
