/*
 * respcache.c - the reply table of respcache.h: RESPCACHE_SLOTS slots, a
 * key's slot chosen by its FNV-1a hash, the full key compared on every
 * lookup, each slot under its own mutex. The bytes kept are counted per
 * slot (key and body) and added up in one atomic, adjusted under the
 * slot's mutex, so the sum never passes RESPCACHE_BYTES_MAX. See
 * respcache.h for the THREAD SAFETY NOTES.
 */
#include "respcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "util.h"

struct rc_slot {
	pthread_mutex_t lock;
	char *key;                      /* NULL = empty */
	int64_t head;
	char *body;
	size_t len;
	size_t cost;                    /* key + NUL + body, in bytes */
	char extra[RESPCACHE_EXTRA_MAX];
};

struct respcache {
	_Atomic size_t bytes;          /* the slots' cost, added up */
	_Atomic uint64_t hits, misses;
	struct rc_slot slots[RESPCACHE_SLOTS];
};

struct respcache *respcache_new(void)
{
	struct respcache *rc = calloc(1, sizeof(*rc));
	size_t i;

	if (!rc)
		return NULL;
	for (i = 0; i < RESPCACHE_SLOTS; i++)
		pthread_mutex_init(&rc->slots[i].lock, NULL);
	return rc;
}

void respcache_free(struct respcache *rc)
{
	size_t i;

	if (!rc)
		return;
	for (i = 0; i < RESPCACHE_SLOTS; i++) {
		pthread_mutex_destroy(&rc->slots[i].lock);
		free(rc->slots[i].key);
		free(rc->slots[i].body);
	}
	free(rc);
}

static struct rc_slot *slot_of(struct respcache *rc, const char *key)
{
	uint64_t h = util_hash(key, strlen(key), UTIL_HASH_INIT);

	return &rc->slots[(h ^ (h >> 32)) % RESPCACHE_SLOTS];
}

/* Empty sl (its lock held): its key and body go to *key and *body for the
 * caller to free after the unlock, and its cost leaves the sum. */
static void slot_take(struct respcache *rc, struct rc_slot *sl, char **key,
		      char **body)
{
	*key = sl->key;
	*body = sl->body;
	atomic_fetch_sub(&rc->bytes, sl->cost);
	sl->key = NULL;
	sl->body = NULL;
	sl->len = 0;
	sl->cost = 0;
	sl->head = 0;
}

int respcache_get(struct respcache *rc, const char *key, int64_t head,
		  struct buf *body, char *extra)
{
	struct rc_slot *sl = slot_of(rc, key);
	char *dead_k = NULL, *dead_b = NULL;
	int hit = 0;

	pthread_mutex_lock(&sl->lock);
	if (sl->key && sl->head == head && strcmp(sl->key, key) == 0) {
		hit = buf_add(body, sl->body, sl->len) ? ERR_NOMEM : 1;
		if (hit == 1)
			memcpy(extra, sl->extra, sizeof(sl->extra));
	} else if (sl->key && sl->head < head) {
		slot_take(rc, sl, &dead_k, &dead_b);
	}
	pthread_mutex_unlock(&sl->lock);
	free(dead_k);
	free(dead_b);
	atomic_fetch_add_explicit(hit == 1 ? &rc->hits : &rc->misses, 1,
				  memory_order_relaxed);
	return hit;
}

void respcache_put(struct respcache *rc, const char *key, int64_t head,
		   const char *body, size_t len, const char *extra)
{
	struct rc_slot *sl;
	size_t klen = strlen(key), elen = extra ? strlen(extra) : 0;
	size_t cost = klen + 1 + len;
	char *k = NULL, *b = NULL, *old_k = NULL, *old_b = NULL;

	if (klen > RESPCACHE_KEY_MAX || len > RESPCACHE_BODY_MAX ||
	    elen >= RESPCACHE_EXTRA_MAX)
		return;
	k = malloc(klen + 1);
	b = malloc(len ? len : 1);
	if (!k || !b)
		goto out;
	memcpy(k, key, klen + 1);
	memcpy(b, body, len);
	sl = slot_of(rc, key);
	pthread_mutex_lock(&sl->lock);
	/* A slower reader of the same request at an older head finishing
	 * last must not push out the newer reply. */
	if (sl->key && sl->head > head && strcmp(sl->key, key) == 0) {
		pthread_mutex_unlock(&sl->lock);
		goto out;
	}
	/* The old contents go in any case (they are freed after the
	 * unlock); the new ones are kept only within the budget. */
	if (sl->key)
		slot_take(rc, sl, &old_k, &old_b);
	if (atomic_fetch_add(&rc->bytes, cost) + cost > RESPCACHE_BYTES_MAX) {
		atomic_fetch_sub(&rc->bytes, cost);
		pthread_mutex_unlock(&sl->lock);
		goto out;
	}
	sl->key = k;
	sl->body = b;
	sl->head = head;
	sl->len = len;
	sl->cost = cost;
	memcpy(sl->extra, extra ? extra : "", elen + 1);
	k = b = NULL;
	pthread_mutex_unlock(&sl->lock);
out:
	free(k);
	free(b);
	free(old_k);
	free(old_b);
}

void respcache_stats(struct respcache *rc, struct respcache_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!rc)
		return;
	out->hits = atomic_load(&rc->hits);
	out->misses = atomic_load(&rc->misses);
	out->bytes = atomic_load(&rc->bytes);
}
