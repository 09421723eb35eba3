/*
 * respcache.h - finished replies of the records API (list and view), kept
 * for the store head they were read at. A reply is a pure function of the
 * request (collection, id, query string), the caller and the store's state;
 * the state is named by the head revision (every durable change moves it),
 * so a reply kept at head H is served again, byte for byte, while the head
 * is still H, and is never served once it moved. Reading a list of 20
 * records costs about eight times a request that does nothing (SQL, the
 * count, rule evaluation, the JSON text); a repeated one then costs a copy.
 * What may and may not be kept is the caller's business (api_records.c
 * cached() says it); this table only promises that a reply comes back for
 * exactly the key and head it was put with.
 *
 * The table has a fixed number of slots, allocated once; a key that
 * hashes to a taken slot replaces what it holds, and the full key is
 * compared on every lookup, so two keys that share a slot never see each
 * other's reply. An entry of an older head than the one asked for is dead
 * (heads only grow) and is freed when its slot is next looked at. A key
 * longer than RESPCACHE_KEY_MAX or a reply larger than RESPCACHE_BODY_MAX
 * is not kept, nor one that would take the keys and bodies kept past
 * RESPCACHE_BYTES_MAX, so memory is bounded whatever the load.
 *
 * THREAD SAFETY NOTES: a struct respcache is shared by every civetweb
 * worker. Each slot has its own mutex, held for a string compare and a
 * copy, never while allocating or freeing; respcache_get(),
 * respcache_put() and respcache_bytes() may be called from any thread.
 * respcache_new() and respcache_free() run on the main thread, before the
 * workers start and after they were joined.
 */
#ifndef POCKETCTL_RESPCACHE_H
#define POCKETCTL_RESPCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define RESPCACHE_SLOTS 4096
#define RESPCACHE_KEY_MAX 2048
#define RESPCACHE_BODY_MAX (64 * 1024)
#define RESPCACHE_BYTES_MAX ((size_t)32 << 20)
#define RESPCACHE_EXTRA_MAX 128   /* extra header lines, e.g. ETag */

struct respcache;

/* A table of RESPCACHE_SLOTS empty slots; NULL when out of memory. Free
 * with respcache_free() (which accepts NULL). */
struct respcache *respcache_new(void);
void respcache_free(struct respcache *rc);

/*
 * The reply kept for key at exactly head: its body appended to body and
 * its extra header lines copied into extra (RESPCACHE_EXTRA_MAX bytes,
 * NUL-terminated). Returns 1 on a hit, 0 on a miss (nothing written), or
 * ERR_NOMEM when body could not grow (extra is then left as it was). A
 * slot holding a reply of an older head is emptied on the way.
 */
int respcache_get(struct respcache *rc, const char *key, int64_t head,
		  struct buf *body, char *extra);

/*
 * Keep the 200 reply (body, len, extra lines or NULL) for key, read at
 * head, in place of whatever its slot held (a reply of the same key at a
 * later head stays instead). A key over RESPCACHE_KEY_MAX, a body over
 * RESPCACHE_BODY_MAX or over what is left of RESPCACHE_BYTES_MAX, extra
 * lines over RESPCACHE_EXTRA_MAX - 1, or a failed allocation keep nothing:
 * a cache never fails its caller.
 */
void respcache_put(struct respcache *rc, const char *key, int64_t head,
		   const char *body, size_t len, const char *extra);

/* What the table did so far, for tests and /metrics. */
struct respcache_stats {
	uint64_t hits;        /* respcache_get() calls that returned 1 */
	uint64_t misses;      /* and that returned 0 */
	size_t bytes;         /* keys and bodies kept now: never over
	                       * RESPCACHE_BYTES_MAX once no respcache_put()
	                       * is under way */
};

/* Fill *out; all zero for a NULL rc. */
void respcache_stats(struct respcache *rc, struct respcache_stats *out);

#endif
