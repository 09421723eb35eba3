/*
 * presence.h - which users have a live realtime connection now: the
 * process-wide registry the realtime endpoint (server/api_realtime.c)
 * updates as clients bind and go, and the push reconciler reads to
 * suppress a notification to someone who is looking at the app.
 *
 * A user counts as present while at least one realtime client is bound to
 * their auth (POST /api/realtime with their token) and its stream is open.
 *
 * THREAD SAFETY NOTES: every function may be called from any thread; the
 * table is guarded by one mutex, held for a hash lookup only.
 */
#ifndef POCKETCTL_PRESENCE_H
#define POCKETCTL_PRESENCE_H

#include <stdbool.h>

/* One more live connection of user (a users record id). Out of memory
 * forgets it (the user then counts as absent: a push too many, never
 * one lost). */
void presence_enter(const char *user);

/* One fewer; a user with none left is absent. Unknown users are ignored. */
void presence_leave(const char *user);

/* Does user have a live realtime connection? */
bool presence_here(const char *user);

#endif
