/*
 * api_watch.h - GET /api/v1/watch on `pocketctl serve`: every change as a
 * Server-Sent Event, resumable, fed by the change-log hub (hub.h) and run
 * by the stream driver (stream_int.h).
 *
 * /api/v1/watch (any authenticated caller) sends one event per change-log
 * row, in revision order:
 *
 *     id: REVISION
 *     event: create|update|delete
 *     data: {"revision", "collection", "id", "name", "action",
 *            "statusOnly", "actor", "record"}
 *
 * where record is the store's form (record_to_json) with hidden fields
 * removed and secret fields only for an admin or the record's owner, and
 * statusOnly is true for an update that changed only the status (a
 * reconciler reporting), and actor who made the change (actor.h: as
 * written to superusers and to the user it names, other people reduced to
 * their kind for everyone else; null for a change-log row older than the
 * actor column). record.status.observedGeneration is computed
 * when the event is first formatted, from the engine's floors (observed.h),
 * not stored: nothing writes it into records. Realtime clients do not get
 * status events: PocketBase records have no status.
 * The caller authenticates with a token (Authorization header) or, for a
 * browser's EventSource, with ?ticket= (tickets.h; only on this route).
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
 * Access checks run against the record as the change wrote it (the
 * change-log snapshot), for deletes too; relation paths in a rule read the
 * related records' current state, so a rule that goes through a relation
 * deleted by the same cascade (messages of a deleted chat) no longer
 * matches and those deletes reach superusers only.
 */
#ifndef POCKETCTL_API_WATCH_H
#define POCKETCTL_API_WATCH_H

#include "http.h"

/* GET /api/v1/watch: the caller's stream (route.stream); 401 for a guest,
 * 400 for an unknown collection or a bad resume point. */
int api_watch(struct http_req *r);

/*
 * POST /api/v1/watch/tickets: a watch ticket (tickets.h) for the caller,
 * who must authenticate with a token (Authorization header):
 *     {"ticket": T, "expires": "2026-... UTC", "ttl": SECONDS}
 * T opens GET /api/v1/watch?ticket=T until it expires (60 s, or
 * POCKETCTL_WATCH_TICKET_TTL seconds) and works nowhere else. 401 for a
 * guest.
 */
int api_watch_ticket(struct http_req *r);

#endif
