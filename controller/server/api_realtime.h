/*
 * api_realtime.h - PocketBase's realtime protocol on `pocketctl serve`, a
 * Server-Sent Events stream fed by the change-log hub (hub.h) and run by
 * the stream driver (stream_int.h):
 *
 *   GET  /api/realtime   api_realtime_connect    open a client's stream
 *   POST /api/realtime   api_realtime_subscribe  set a client's topics
 *
 * /api/realtime speaks PocketBase's realtime protocol as the official SDKs
 * do: the GET sends "PB_CONNECT" with the client id (as the SSE id and in
 * {"clientId"}); POST {clientId, subscriptions} replaces that client's
 * topics (204; 404 for an unknown client; 403 when a client already bound
 * to one auth record posts with another) and binds the POST's caller to it.
 * Topics are "COLLECTION/" followed by a star (every record; list rule)
 * or by a RECORD_ID (that record; view rule),
 * and the deprecated bare "COLLECTION", by collection name or id, each
 * optionally followed by "?options=" + URL-encoded JSON {"query": {...},
 * "headers": {...}}; query.filter (a filter the record must also match) and
 * query.fields (a projection) are honoured, query.expand is not. Events are
 * named by the topic exactly as subscribed and carry {"action", "record"}
 * with the record in PocketBase's JSON shape, filtered for the client. A
 * client that received no event for 5 minutes (POCKETCTL_REALTIME_IDLE_MS)
 * is disconnected, as PocketBase does; comment lines keep proxies awake in
 * between.
 *
 * Access checks run against the record as the change wrote it (the
 * change-log snapshot), for deletes too; relation paths in a rule read the
 * related records' current state, so a rule that goes through a relation
 * deleted by the same cascade (messages of a deleted chat) no longer
 * matches and those deletes reach superusers only.
 */
#ifndef POCKETCTL_API_REALTIME_H
#define POCKETCTL_API_REALTIME_H

#include "http.h"

/* GET /api/realtime: a new client and its stream (route.stream). */
int api_realtime_connect(struct http_req *r);

/* POST /api/realtime: replace a client's topics and bind the caller to it
 * (204, or 400/403/404 as above). */
int api_realtime_subscribe(struct http_req *r);

#endif
