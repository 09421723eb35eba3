/*
 * respcache.c - the reply table of respcache.h: RESPCACHE_SLOTS slots, a
 * key's slot chosen by its FNV-1a hash, the full key compared on every
 * hit, each slot under its own mutex. See respcache.h for the THREAD
 * SAFETY NOTES.
 */
#include "respcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

struct rc_slot {
	pthread_mutex_t lock;
	char *key;                      /* NULL = empty */
	int64_t head;
	char *body;
	size_t len;
	char extra[RESPCACHE_EXTRA_MAX];
};

struct respcache {
	_Atomic size_t bytes;          /* the bodies kept, added up */
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
	uint64_t h = 0xcbf29ce484222325ULL;
	const unsigned char *p = (const unsigned char *)key;

	for (; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return &rc->slots[(h ^ (h >> 32)) % RESPCACHE_SLOTS];
}

int respcache_get(struct respcache *rc, const char *key, int64_t head,
		  struct buf *body, char *extra)
{
	struct rc_slot *sl = slot_of(rc, key);
	int rc_hit = 0;

	pthread_mutex_lock(&sl->lock);
	if (sl->key && sl->head == head && strcmp(sl->key, key) == 0) {
		rc_hit = buf_add(body, sl->body, sl->len) ? ERR_NOMEM : 1;
		if (rc_hit == 1)
			memcpy(extra, sl->extra, sizeof(sl->extra));
	}
	pthread_mutex_unlock(&sl->lock);
	return rc_hit;
}

void respcache_put(struct respcache *rc, const char *key, int64_t head,
		   const char *body, size_t len, const char *extra)
{
	struct rc_slot *sl;
	char *k, *b, *old_k, *old_b;
	size_t elen = extra ? strlen(extra) : 0;

	if (len > RESPCACHE_BODY_MAX || elen >= RESPCACHE_EXTRA_MAX)
		return;
	/* the budget is taken before the body is kept and given back when
	 * it is replaced */
	if (atomic_fetch_add(&rc->bytes, len) + len > RESPCACHE_BYTES_MAX) {
		atomic_fetch_sub(&rc->bytes, len);
		return;
	}
	k = strdup(key);
	b = malloc(len ? len : 1);
	if (!k || !b) {
		atomic_fetch_sub(&rc->bytes, len);
		free(k);
		free(b);
		return;
	}
	memcpy(b, body, len);
	sl = slot_of(rc, key);
	pthread_mutex_lock(&sl->lock);
	/* the old contents are swapped out and freed after the unlock */
	old_k = sl->key;
	old_b = sl->body;
	atomic_fetch_sub(&rc->bytes, old_k ? sl->len : 0);
	sl->key = k;
	sl->body = b;
	sl->head = head;
	sl->len = len;
	memcpy(sl->extra, extra ? extra : "", elen + 1);
	pthread_mutex_unlock(&sl->lock);
	free(old_k);
	free(old_b);
}
