/*
 * ratelimit.c - the fixed-window counters of ratelimit.h in a striped,
 * fixed-size open-addressing table. A key is reduced to a 64-bit keyed
 * hash (a random seed per table, so that nobody outside can aim keys at
 * one slot); a probe sequence of RL_PROBES slots inside one stripe holds
 * it, and when they are all taken by live windows the one ending soonest
 * is evicted. See ratelimit.h for the THREAD SAFETY NOTES.
 */
#include "ratelimit.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util.h"

#define RL_STRIPES 64
#define RL_PROBES 8

struct rl_slot {
	uint64_t h;           /* 0 = empty */
	int64_t end_ms;       /* the window ends here */
	int count;
};

struct rl_stripe {
	pthread_mutex_t lock;
	struct rl_slot *slots;
};

struct ratelimit {
	uint64_t seed;
	size_t per;           /* slots per stripe */
	struct rl_stripe stripes[RL_STRIPES];
};

static const char *const group_names[RL__COUNT] = {
	[RL_AUTH] = "auth",
	[RL_WRITE] = "write",
	[RL_ALL] = "all",
	[RL_LOGIN_IDENTITY] = "login-identity",
	[RL_LOGIN_IP] = "login-ip",
};

const char *ratelimit_group_name(enum rl_group g)
{
	return (unsigned)g < RL__COUNT ? group_names[g] : "?";
}

void ratelimit_config_init(struct ratelimit_config *c)
{
	memset(c, 0, sizeof(*c));
	c->rules[RL_LOGIN_IDENTITY] = (struct rl_rule){ 5, 60 };
	c->rules[RL_LOGIN_IP] = (struct rl_rule){ 50, 60 };
	c->rules[RL_AUTH] = (struct rl_rule){ 600, 60 };
}

/* One "GROUP=N/SECONDS" of len bytes at p into *g and *rule. */
static int parse_one(const char *p, size_t len, enum rl_group *g,
		     struct rl_rule *rule, struct err *e)
{
	char item[96], *eq, *slash, *end;
	long max, secs;
	size_t i;

	if (len >= sizeof(item))
		return err_set(e, ERR_INVALID, "rate limit '%.40s...' is too "
			       "long", p);
	memcpy(item, p, len);
	item[len] = '\0';
	eq = strchr(item, '=');
	slash = eq ? strchr(eq, '/') : NULL;
	if (!slash)
		return err_set(e, ERR_INVALID, "rate limit '%s' must be "
			       "GROUP=N/SECONDS", item);
	*eq = '\0';
	for (i = 0; i < RL__COUNT && strcmp(item, group_names[i]); i++)
		;
	if (i == RL__COUNT)
		return err_set(e, ERR_INVALID, "rate limit group '%s' is not "
			       "one of auth, write, all, login-identity, "
			       "login-ip", item);
	*g = (enum rl_group)i;
	max = strtol(eq + 1, &end, 10);
	if (end == eq + 1 || end != slash || max < 0 || max > INT_MAX)
		return err_set(e, ERR_INVALID, "rate limit '%s': N must be a "
			       "whole number from 0", item);
	secs = strtol(slash + 1, &end, 10);
	if (end == slash + 1 || *end || secs < 1 || secs > 86400)
		return err_set(e, ERR_INVALID, "rate limit '%s': SECONDS must "
			       "be a whole number from 1 to 86400", item);
	*rule = (struct rl_rule){ (int)max, (int)secs };
	return 0;
}

int ratelimit_config_parse(struct ratelimit_config *c, const char *spec,
			   struct err *e)
{
	struct ratelimit_config tmp = *c;
	const char *p = spec;
	enum rl_group g = RL_AUTH;
	struct rl_rule rule = { 0, 0 };
	size_t len;
	int rc;

	for (;;) {
		len = strcspn(p, ",");
		rc = parse_one(p, len, &g, &rule, e);
		if (rc)
			return rc;
		tmp.rules[g] = rule;
		if (!p[len])
			break;
		p += len + 1;
	}
	*c = tmp;
	return 0;
}

struct ratelimit *ratelimit_new(size_t cap)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));
	size_t i;

	if (!rl)
		return NULL;
	rl->per = (cap + RL_STRIPES - 1) / RL_STRIPES;
	if (rl->per < RL_PROBES)
		rl->per = RL_PROBES;
	if (getrandom(&rl->seed, sizeof(rl->seed), 0) !=
	    (ssize_t)sizeof(rl->seed))
		rl->seed = (uint64_t)(uintptr_t)rl ^ 0x9e3779b97f4a7c15ULL;
	for (i = 0; i < RL_STRIPES; i++) {
		pthread_mutex_init(&rl->stripes[i].lock, NULL);
		rl->stripes[i].slots = calloc(rl->per, sizeof(struct rl_slot));
		if (!rl->stripes[i].slots) {
			ratelimit_free(rl);
			return NULL;
		}
	}
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	size_t i;

	if (!rl)
		return;
	for (i = 0; i < RL_STRIPES; i++) {
		pthread_mutex_destroy(&rl->stripes[i].lock);
		free(rl->stripes[i].slots);
	}
	free(rl);
}

/* splitmix64's finaliser over FNV-1a of the group and the key, seeded;
 * never 0 (the empty slot). */
static uint64_t key_hash(const struct ratelimit *rl, enum rl_group g,
			 const char *key)
{
	uint64_t h = util_hash(&g, sizeof(g), UTIL_HASH_INIT ^ rl->seed);

	h = util_hash(key, strlen(key), h);
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h ? h : 1;
}

/*
 * The slot of h in its stripe (locked by the caller): its own, else an
 * empty or ended one (reset), else - with create - the live one ending
 * soonest (evicted, reset). NULL without create when h has no live slot.
 */
static struct rl_slot *find_slot(struct rl_stripe *st, size_t per,
				 uint64_t h, bool create, int64_t now_ms)
{
	struct rl_slot *free_slot = NULL, *soonest = NULL, *sl;
	size_t i, start = (size_t)((h >> 6) % per);

	for (i = 0; i < RL_PROBES; i++) {
		sl = &st->slots[(start + i) % per];
		if (sl->h == h && sl->end_ms > now_ms)
			return sl;
		if (!free_slot && (!sl->h || sl->end_ms <= now_ms))
			free_slot = sl;
		if (!soonest || sl->end_ms < soonest->end_ms)
			soonest = sl;
	}
	if (!create)
		return NULL;
	sl = free_slot ? free_slot : soonest;
	sl->h = h;
	sl->end_ms = 0;
	sl->count = 0;
	return sl;
}

int ratelimit_take(struct ratelimit *rl, enum rl_group g,
		   const struct rl_rule *rule, const char *key, bool take,
		   int64_t now_ms)
{
	uint64_t h;
	struct rl_stripe *st;
	struct rl_slot *sl;
	int wait = 0;

	if (!rl || !rule || rule->max <= 0)
		return 0;
	h = key_hash(rl, g, key);
	st = &rl->stripes[h % RL_STRIPES];
	pthread_mutex_lock(&st->lock);
	sl = find_slot(st, rl->per, h, take, now_ms);
	if (sl && sl->end_ms <= now_ms)   /* a new window */
		sl->end_ms = now_ms + (int64_t)rule->window_s * 1000;
	if (sl && sl->count >= rule->max)
		wait = (int)((sl->end_ms - now_ms + 999) / 1000);
	else if (sl && take)
		sl->count++;
	pthread_mutex_unlock(&st->lock);
	return wait;   /* end_ms > now_ms: at least 1 when over */
}

int64_t ratelimit_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ratelimit_give_back(struct ratelimit *rl, enum rl_group g,
			 const char *key, int n)
{
	uint64_t h;
	struct rl_stripe *st;
	size_t i, start;

	if (!rl)
		return;
	h = key_hash(rl, g, key);
	st = &rl->stripes[h % RL_STRIPES];
	start = (size_t)((h >> 6) % rl->per);
	pthread_mutex_lock(&st->lock);
	for (i = 0; i < RL_PROBES; i++) {
		struct rl_slot *sl = &st->slots[(start + i) % rl->per];

		if (sl->h != h)
			continue;
		sl->count = n < 0 || n >= sl->count ? 0 : sl->count - n;
		break;
	}
	pthread_mutex_unlock(&st->lock);
}
