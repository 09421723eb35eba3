/*
 * hub.h - the change-log hub: one thread tails the store's change log into
 * a bounded in-memory ring of recent changes and wakes every SSE stream
 * (/api/v1/watch, /api/realtime) when new ones arrive.
 *
 * Each change is read from SQLite once, by the hub thread, however many
 * streams are open; a stream keeps only its cursor (the last revision it
 * delivered) and takes references to ring entries while it writes them.
 * A stream whose cursor fell behind the ring (a slow client, a resume with
 * Last-Event-ID) reads the missing changes straight from the store, in the
 * same entry form, so callers see one interface.
 *
 * The hub thread sleeps on a condition variable until hub_notify() (the
 * store's commit hook calls it after every commit) or one second passes: an
 * idle server wakes once a second, a commit reaches the streams within
 * microseconds.
 *
 * Calling sequence (server.c):
 *     hub_new() -> hub_start() -> ... -> hub_stop() -> hub_free()
 * and in a stream handler:
 *     loop { hub_wait() -> hub_fetch() -> use entries -> hub_entries_put() }
 *
 * THREAD SAFETY NOTES: hub_notify(), hub_wait(), hub_fetch(), hub_head(),
 * hub_entry_cache(), hub_entries_put() and the hub_client_*() functions may
 * be called from any thread at any time between hub_new() and hub_free()
 * (hub_notify() also on NULL). Inside: the ring and its bounds are guarded
 * by a reader-writer lock that only the tail thread takes for writing;
 * streams sleep on a futex word the tail thread bumps after each publish
 * (and on stop) and read the published head as an atomic, so a thousand
 * woken streams never queue on one mutex. Notifications reach the tail
 * thread through their own mutex and condition variable, so writers never
 * contend with streams; the client table has a third mutex, never held
 * together with the others. Entries are reference counted with C11 atomics
 * and immutable once published except for their format cache: a slot is
 * filled once under the entry's mutex and then read without it. Every
 * access to entry->record after publication must go through a
 * hub_entry_cache() callback (jansson objects are not safe to read from
 * several threads while anything may touch them). hub_new(), hub_start(),
 * hub_stop(), hub_free() and hub_wake_fd() belong to the thread that owns
 * the server.
 */
#ifndef POCKETCTL_HUB_H
#define POCKETCTL_HUB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "store/schema.h"
#include "store/store.h"

#define HUB_RING_MAX 1024               /* entries kept in memory */
#define HUB_RING_BYTES ((size_t)4 << 20) /* approximate bytes kept */
#define HUB_IDLE_WAKE_MS 1000           /* hub thread's retry after a
                                         * failed read of the change log */
#define HUB_CACHE_SLOTS 7               /* per-entry formatted variants */
#define HUB_WAKE_FDS 16                 /* hub_wake_fd() descriptors */

/* hub_wait() / hub_fetch() results besides counts. */
#define HUB_STOPPED (-100)   /* the server is stopping: end the stream */
#define HUB_GAP (-101)       /* changes after the cursor are no longer
                              * retained: the stream must reset */

struct hub;

/*
 * One change, as the streams see it. Fields are set before the entry is
 * published and read-only afterwards; record must only be read inside a
 * hub_entry_cache() callback.
 */
struct hub_entry {
	int64_t revision;
	char action[8];                 /* "create", "update", "delete" */
	bool status_only;               /* an update of the status alone */
	char collection[64];
	char id[ID_LEN + 1];
	char *name;                     /* record name ("" when unknown) */
	const struct collection *coll;  /* schema collection, NULL if unknown */
	char owner[ID_LEN + 1];         /* owner field value ("" when none);
	                                 * for auth collections the id */
	char *actor;                    /* who wrote it (actor.h); NULL for
	                                 * a row older than the actor column */
	char *actor_public;             /* actor as non-superusers read it
	                                 * (actor_public()); NULL with actor */
	char actor_user[ID_LEN + 1];    /* the users record actor names
	                                 * (actor_user_id()), "" when none */
	/* private */
	struct hub *hub;                /* for the format-ahead table */
	_Atomic int refs;
	pthread_mutex_t lock;           /* taken to fill a cache slot */
	json_t *record;                 /* record_to_json form; guarded */
	char *_Atomic cache[HUB_CACHE_SLOTS]; /* set once, under lock */
	size_t cache_len[HUB_CACHE_SLOTS];   /* written before cache[] */
	size_t bytes;                   /* ring accounting */
};

/*
 * Format an entry's record into a string, once. Called by hub_entry_cache()
 * with the entry lock held: record is borrowed (never keep or change it).
 * Return a malloc'd NUL-terminated string and its length in *len, or NULL
 * on failure.
 */
typedef char *(*hub_format_fn)(const struct hub_entry *en, json_t *record,
			       void *arg, size_t *len);

/*
 * Make a hub over store (borrowed; must outlive the hub). stopping
 * (nullable, borrowed) is the server's stop flag: the tail thread ends
 * when it sees it true at its next wake-up (a commit); hub_stop() wakes
 * it, and every stream, at once. Returns 0, ERR_NOMEM or ERR_INTERNAL
 * (pthread setup). Caller owns *out (hub_free()).
 */
int hub_new(struct hub **out, struct store *store, const struct schema *schema,
	    const atomic_bool *stopping, struct err *e);

/*
 * Tell the hub how to count the streams open now (count(arg), asked by the
 * tail thread before each read of new changes; set before hub_start()).
 * While it says 0 the tail thread reads nothing into the ring: it empties
 * the ring and only moves the published head, and a stream that opens
 * later reads what it needs from the store, as one behind the ring does.
 * A count that is momentarily stale only sends a stream to the store once.
 * Without a counter (the default) the ring is always filled.
 */
void hub_set_listeners(struct hub *h, int (*count)(void *arg), void *arg);

/* Register the store commit hook and start the tail thread, beginning at
 * the current head (older changes are fetched from the store on demand).
 * Returns 0, ERR_TOO_LARGE (no commit hook slot left) or ERR_INTERNAL. */
int hub_start(struct hub *h, struct err *e);

/*
 * Stop: every hub_wait() returns HUB_STOPPED from now on, and the tail
 * thread is joined. Idempotent; accepts NULL. Streams may still hold
 * entries; they stay valid until released.
 */
void hub_stop(struct hub *h);

/* Free the hub. Accepts NULL. Stops it first if needed; no stream may be
 * inside a hub call any more (civetweb has been stopped) and nothing may
 * commit to the store any more (its commit hook is removed here). */
void hub_free(struct hub *h);

/*
 * Tell the hub that a commit happened. Cheap (one uncontended mutex and a
 * condvar signal). The store's commit hook calls it; writers to another
 * store handle may call it too. Accepts NULL.
 */
void hub_notify(struct hub *h);

/*
 * The i-th (0 <= i < HUB_WAKE_FDS) of the hub's non-blocking eventfds,
 * for a thread that sleeps in poll or epoll instead of hub_wait(): made
 * when first asked for (with those before it), it becomes readable after
 * every publish (and on stop); read it empty, then hub_fetch(). One per
 * sleeping thread: a thread that empties another's descriptor would steal
 * its wake-up. Returns -1 with errno set: EINVAL for an i out of range,
 * or eventfd()'s. Borrowed: valid until hub_free().
 */
int hub_wake_fd(struct hub *h, int i);

/* The last revision the hub has published (<= store_head()). */
int64_t hub_head(struct hub *h);

/*
 * Block until the hub has published a revision > after, until
 * deadline_ms (util_monotonic_ms() clock), or until stopping. Returns 1
 * (changes are there), 0 (deadline passed) or HUB_STOPPED.
 */
int hub_wait(struct hub *h, int64_t after, int64_t deadline_ms);

/*
 * Fill out[0..max) with the changes of revision after+1, after+2, ... in
 * order (at most max, fewer when the log ends). Entries come from the ring
 * when it still holds them, otherwise from the store. The caller owns one
 * reference to each (hub_entries_put()). Returns the count (0: nothing
 * after the cursor), HUB_GAP when revision after+1 is no longer retained
 * (the change log was trimmed past the cursor), or a negative ERR_* with e
 * set when the store cannot be read.
 */
int hub_fetch(struct hub *h, int64_t after, struct hub_entry **out, int max,
	      struct err *e);

/* Drop one reference to each of en[0..n). Accepts NULL entries. */
void hub_entries_put(struct hub_entry **en, int n);

/*
 * The formatted variant slot (0..HUB_CACHE_SLOTS-1) of en, computing it
 * with fn on first use (under the entry lock; later callers get the cached
 * bytes). Every caller must use the same fn and arg for a given slot: the
 * hub remembers them and formats slots used in the last minute for new
 * changes ahead of time, on its own thread, so arg must stay valid as long
 * as the hub lives. Returns a
 * string borrowed from the entry (valid while the caller holds its
 * reference) with its length in *len, or NULL when fn failed (not cached:
 * the next call tries again).
 */
const char *hub_entry_cache(struct hub_entry *en, int slot, hub_format_fn fn,
			    void *arg, size_t *len);

/* ---- named streams ---------------------------------------------------------
 *
 * Realtime clients open their stream with one request (GET) and change its
 * subscriptions with others (POST) on other workers. The hub keeps the table
 * that lets a POST reach the stream's state: each open stream registers a
 * pointer under its id and removes it before it frees that state.
 */

#define HUB_CLIENT_ID_MAX 256   /* bytes of a client id, with the NUL */

/* Register ptr under id (copied). Returns 0, ERR_INVALID for an empty or
 * over-long id, ERR_CONFLICT when id is taken, ERR_NOMEM. */
int hub_client_add(struct hub *h, const char *id, void *ptr, struct err *e);

/* Unregister id. Once it returns, no hub_client_with() callback is running
 * on its pointer or will start on it. Unknown ids are ignored. */
void hub_client_remove(struct hub *h, const char *id);

/*
 * Run fn(ptr, arg) for the stream registered under id, with the table lock
 * held (so fn must be short and must not call other hub_client_*()
 * functions). Returns fn's result, or ERR_NOT_FOUND when no stream has that
 * id.
 */
int hub_client_with(struct hub *h, const char *id,
		    int (*fn)(void *ptr, void *arg), void *arg);

/* Streams registered now. */
size_t hub_client_count(struct hub *h);

#endif
