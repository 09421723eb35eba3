/*
 * countcache.h - list totals remembered per store revision.
 *
 * A PocketBase list returns totalItems, which costs a COUNT over every
 * matching row: at 10,000 records that count is most of the request. The
 * answer cannot change while the store's head revision does not, so the
 * store keeps the last COUNTCACHE_SLOTS counts, each keyed by its exact
 * query (collection, and the condition as the store runs it with its bound
 * values: query_sql_key()) and tagged with the
 * head revision read before it was computed; a lookup under any other
 * revision misses. Replacement is round-robin.
 *
 * THREAD SAFETY NOTES: every function may be called from any thread at
 * once; one mutex guards the slots (held for a few string compares).
 */
#ifndef POCKETCTL_COUNTCACHE_H
#define POCKETCTL_COUNTCACHE_H

#include <stdbool.h>
#include <stdint.h>

#define COUNTCACHE_SLOTS 32
#define COUNTCACHE_KEY_MAX 2048   /* longer keys are never cached */

struct countcache;

/* NULL when out of memory (the caller then counts every time). */
struct countcache *countcache_new(void);
void countcache_free(struct countcache *cc);     /* accepts NULL */

/* True, with *count, when key was counted at exactly revision rev. */
bool countcache_get(struct countcache *cc, const char *key, int64_t rev,
		    int64_t *count);

/* Remember count for key at revision rev (cc NULL or an over-long key:
 * nothing). */
void countcache_put(struct countcache *cc, const char *key, int64_t rev,
		    int64_t count);

#endif
