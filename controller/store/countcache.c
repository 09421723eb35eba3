/*
 * countcache.c - see countcache.h.
 */
#include "countcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	char *key;          /* owned; NULL = empty */
	int64_t rev;
	int64_t count;
};

struct countcache {
	pthread_mutex_t lock;
	struct slot slots[COUNTCACHE_SLOTS];
	size_t next;        /* the slot replaced next */
};

struct countcache *countcache_new(void)
{
	struct countcache *cc = calloc(1, sizeof(*cc));

	if (cc)
		pthread_mutex_init(&cc->lock, NULL);
	return cc;
}

void countcache_free(struct countcache *cc)
{
	size_t i;

	if (!cc)
		return;
	for (i = 0; i < COUNTCACHE_SLOTS; i++)
		free(cc->slots[i].key);
	pthread_mutex_destroy(&cc->lock);
	free(cc);
}

/* The slot holding key, or NULL. Called with the lock held. */
static struct slot *find(struct countcache *cc, const char *key)
{
	size_t i;

	for (i = 0; i < COUNTCACHE_SLOTS; i++)
		if (cc->slots[i].key && !strcmp(cc->slots[i].key, key))
			return &cc->slots[i];
	return NULL;
}

bool countcache_get(struct countcache *cc, const char *key, int64_t rev,
		    int64_t *count)
{
	struct slot *sl;
	bool hit = false;

	if (!cc)
		return false;
	pthread_mutex_lock(&cc->lock);
	sl = find(cc, key);
	if (sl && sl->rev == rev) {
		*count = sl->count;
		hit = true;
	}
	pthread_mutex_unlock(&cc->lock);
	return hit;
}

void countcache_put(struct countcache *cc, const char *key, int64_t rev,
		    int64_t count)
{
	struct slot *sl;
	char *copy;

	if (!cc || strlen(key) >= COUNTCACHE_KEY_MAX)
		return;
	pthread_mutex_lock(&cc->lock);
	sl = find(cc, key);
	if (!sl) {
		copy = strdup(key);
		if (!copy) {
			pthread_mutex_unlock(&cc->lock);
			return;
		}
		sl = &cc->slots[cc->next];
		cc->next = (cc->next + 1) % COUNTCACHE_SLOTS;
		free(sl->key);
		sl->key = copy;
	}
	sl->rev = rev;
	sl->count = count;
	pthread_mutex_unlock(&cc->lock);
}
