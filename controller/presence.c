/*
 * presence.c - the presence registry (see presence.h): a chained hash of
 * user id -> number of live realtime connections, entries freed when the
 * count drops to zero, so it holds only the users connected now.
 */
#include "presence.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define NBUCKETS 1024

struct here {
	struct here *next;
	long count;
	char user[];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct here *buckets[NBUCKETS];

static struct here **slot(const char *user)
{
	uint64_t h = util_hash(user, strlen(user), UTIL_HASH_INIT);
	struct here **pp;

	for (pp = &buckets[h % NBUCKETS]; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->user, user))
			break;
	return pp;
}

void presence_enter(const char *user)
{
	struct here **pp, *n;
	size_t len;

	if (!user || !*user)
		return;
	pthread_mutex_lock(&lock);
	pp = slot(user);
	if (*pp) {
		(*pp)->count++;
	} else {
		len = strlen(user) + 1;
		n = malloc(sizeof(*n) + len);
		if (n) {
			n->next = NULL;
			n->count = 1;
			memcpy(n->user, user, len);
			*pp = n;
		}
	}
	pthread_mutex_unlock(&lock);
}

void presence_leave(const char *user)
{
	struct here **pp, *n;

	if (!user || !*user)
		return;
	pthread_mutex_lock(&lock);
	pp = slot(user);
	n = *pp;
	if (n && --n->count <= 0) {
		*pp = n->next;
		free(n);
	}
	pthread_mutex_unlock(&lock);
}

bool presence_here(const char *user)
{
	bool here;

	if (!user || !*user)
		return false;
	pthread_mutex_lock(&lock);
	here = *slot(user) != NULL;
	pthread_mutex_unlock(&lock);
	return here;
}
