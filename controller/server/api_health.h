/*
 * api_health.h - liveness, readiness and metrics endpoints:
 * GET /healthz, /readyz, /api/health (PocketBase's) and /metrics
 * (Prometheus text). None of them needs authentication.
 */
#ifndef POCKETCTL_API_HEALTH_H
#define POCKETCTL_API_HEALTH_H

#include "http.h"

/* 200 "ok" (text/plain) while the process serves requests at all. */
int api_healthz(struct http_req *r);

/* 200 "ok" when the store answers a query and the server is not stopping;
 * otherwise 503 with the reason (text/plain). */
int api_readyz(struct http_req *r);

/* PocketBase's health check: {"code":200,"message":"API is healthy.",
 * "data":{}}. */
int api_health(struct http_req *r);

/* Prometheus text exposition format 0.0.4 (see metrics.h). */
int api_metrics(struct http_req *r);

#endif
