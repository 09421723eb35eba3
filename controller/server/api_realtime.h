/*
 * api_stream.h - the two Server-Sent Events streams of `pocketctl serve`,
 * both fed by the change-log hub (hub.h):
 *
 *   GET  /api/v1/watch   api_watch               every change, resumable
 *   GET  /api/realtime   api_realtime_connect    PocketBase realtime (SSE)
 *   POST /api/realtime   api_realtime_subscribe  set a client's topics
 *
 * /api/v1/watch (any authenticated caller) sends one event per change-log
 * row, in revision order:
 *
 *     id: REVISION
 *     event: create|update|delete
 *     data: {"revision", "collection", "id", "name", "action",
 *            "statusOnly", "record"}
 *
 * where record is the store's form (record_to_json) with hidden fields
 * removed and secret fields only for an admin or the record's owner, and
 * statusOnly is true for an update that changed only the status (a
 * reconciler reporting). Realtime clients do not get those: PocketBase
 * records have no status.
 * Superusers see every change; other callers see the changes of records the
 * collection's view rule lets them see. ?collection=a,b (repeatable;
 * collection names, ids or manifest kinds) narrows the stream. A
 * Last-Event-ID header (or, without one, ?since=REV) replays exactly the
 * changes after that revision, then continues live; when they are no longer
 * retained (or REV is ahead of the store), the first event is
 *
 *     id: HEAD
 *     event: reset
 *     data: {"revision": HEAD, "reason": "..."}
 *
 * and the stream continues after HEAD. While nothing is sent, a heartbeat
 * (event: heartbeat, data: {"revision": HEAD}, id: the cursor) goes out
 * every 15 s (POCKETCTL_HEARTBEAT_MS overrides, for tests).
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

int api_watch(struct http_req *r);
int api_realtime_connect(struct http_req *r);
int api_realtime_subscribe(struct http_req *r);

#endif
