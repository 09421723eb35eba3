/*
 * test_respcache.c - the reply table of server/respcache.c: a reply comes
 * back only for its exact key and head, two keys that share a slot never
 * see each other's reply, a dead (older head) entry gives its bytes back,
 * a newer reply is not pushed out by an older one, the byte budget holds
 * under a flood of large distinct replies, and concurrent readers and
 * writers only ever get a reply that was put for their key.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "server/respcache.h"

/* The slot respcache.c picks (FNV-1a folded): used only to find two keys
 * that collide. Should the table change its hash, collide() still finds
 * no pair and the test says so instead of passing blindly. */
static size_t slot_of(const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const unsigned char *p = (const unsigned char *)key;

	for (; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return (h ^ (h >> 32)) % RESPCACHE_SLOTS;
}

/* A caller key in the shape api_records.c builds: list of "posts" by the
 * user uid, query q. */
static void user_key(char *out, size_t n, const char *uid, const char *q)
{
	snprintf(out, n, "1\x1fposts\x1f\x1f%s\x1f%d\x1f_pb_users_auth_\x1f%s",
		 q, 1, uid);
}

static size_t bytes(struct respcache *rc)
{
	struct respcache_stats st;

	respcache_stats(rc, &st);
	return st.bytes;
}

static int get(struct respcache *rc, const char *key, int64_t head,
	       struct buf *out)
{
	char extra[RESPCACHE_EXTRA_MAX];

	buf_release(out);
	buf_init(out, 0);
	return respcache_get(rc, key, head, out, extra);
}

Test(respcache, exact_key_and_head_only)
{
	struct respcache *rc = respcache_new();
	struct buf b = BUF_INIT;
	struct respcache_stats st;
	char extra[RESPCACHE_EXTRA_MAX] = "";

	cr_assert_not_null(rc);
	cr_expect_eq(get(rc, "k", 5, &b), 0);
	respcache_put(rc, "k", 5, "{\"a\":1}\n", 8, "ETag: \"5\"\r\n");
	cr_expect_eq(respcache_get(rc, "k", 5, &b, extra), 1);
	cr_expect_eq(b.len, 8);
	cr_expect(!memcmp(b.ptr, "{\"a\":1}\n", 8));
	cr_expect_str_eq(extra, "ETag: \"5\"\r\n");
	cr_expect_eq(get(rc, "k", 6, &b), 0, "served after the head moved");
	cr_expect_eq(get(rc, "k", 5, &b), 0, "a dead entry was kept");
	cr_expect_eq(bytes(rc), 0);
	cr_expect_eq(get(rc, "K", 5, &b), 0);
	cr_expect_eq(get(rc, "k\x1f", 5, &b), 0);
	respcache_stats(rc, &st);
	cr_expect_eq(st.hits, 1);
	cr_expect_eq(st.misses, 5);
	buf_release(&b);
	respcache_free(rc);
	respcache_free(NULL);
}

Test(respcache, keys_sharing_a_slot_never_see_each_other)
{
	struct respcache *rc = respcache_new();
	struct buf b = BUF_INIT;
	char a[128], other[128], q[32];
	int i;

	user_key(a, sizeof(a), "aaaaaaaaaaaaaaa", "page=1");
	for (i = 0; i < 1000000; i++) {
		snprintf(q, sizeof(q), "page=%d", i);
		user_key(other, sizeof(other), "bbbbbbbbbbbbbbb", q);
		if (slot_of(other) == slot_of(a))
			break;
	}
	cr_assert_lt(i, 1000000, "no colliding key found: the hash changed?");
	respcache_put(rc, a, 7, "A's list", 8, NULL);
	cr_expect_eq(get(rc, other, 7, &b), 0, "B got A's reply");
	cr_expect_eq(get(rc, a, 7, &b), 1, "B's miss took A's entry");
	respcache_put(rc, other, 7, "B's list", 8, NULL);
	cr_expect_eq(get(rc, a, 7, &b), 0, "A got B's reply");
	cr_expect_eq(get(rc, other, 7, &b), 1);
	cr_expect(!memcmp(b.ptr, "B's list", 8));
	buf_release(&b);
	respcache_free(rc);
}

Test(respcache, newer_reply_stays_and_limits_hold)
{
	struct respcache *rc = respcache_new();
	struct buf b = BUF_INIT;
	static char big[RESPCACHE_BODY_MAX + 1];
	char key[RESPCACHE_KEY_MAX + 2], extra[RESPCACHE_EXTRA_MAX + 1];

	respcache_put(rc, "k", 9, "new", 3, NULL);
	respcache_put(rc, "k", 8, "old", 3, NULL);   /* a slower reader */
	cr_expect_eq(get(rc, "k", 9, &b), 1);
	cr_expect(!memcmp(b.ptr, "new", 3));
	respcache_put(rc, "big", 9, big, sizeof(big), NULL);
	cr_expect_eq(get(rc, "big", 9, &b), 0, "a body over the cap was kept");
	memset(key, 'x', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	respcache_put(rc, key, 9, "v", 1, NULL);
	cr_expect_eq(get(rc, key, 9, &b), 0, "a key over the cap was kept");
	memset(extra, 'h', sizeof(extra) - 1);
	extra[sizeof(extra) - 1] = '\0';
	respcache_put(rc, "x", 9, "v", 1, extra);
	cr_expect_eq(get(rc, "x", 9, &b), 0, "headers over the cap were kept");
	cr_expect_eq(bytes(rc), 2 + 3);
	buf_release(&b);
	respcache_free(rc);
}

Test(respcache, budget_holds_under_a_flood)
{
	struct respcache *rc = respcache_new();
	static char body[RESPCACHE_BODY_MAX];
	char key[32];
	int i, kept = 0;
	struct buf b = BUF_INIT;

	/* 4096 distinct 64 KiB replies would be 256 MiB */
	for (i = 0; i < 2 * RESPCACHE_SLOTS; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		respcache_put(rc, key, 3, body, sizeof(body), NULL);
		cr_assert_leq(bytes(rc), RESPCACHE_BYTES_MAX);
	}
	for (i = 0; i < 2 * RESPCACHE_SLOTS; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		kept += get(rc, key, 3, &b) == 1;
	}
	cr_expect_gt(kept, 0);
	cr_expect_leq((size_t)kept * sizeof(body), RESPCACHE_BYTES_MAX);
	/* once the head moves, looking the old keys up frees them, and new
	 * replies are kept again */
	for (i = 0; i < 2 * RESPCACHE_SLOTS; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		get(rc, key, 4, &b);
	}
	cr_expect_eq(bytes(rc), 0);
	respcache_put(rc, "fresh", 4, body, sizeof(body), NULL);
	cr_expect_eq(get(rc, "fresh", 4, &b), 1);
	buf_release(&b);
	respcache_free(rc);
}

/* Threads put and get replies whose body names their key and head; a get
 * must never return another key's or another head's body. */
struct worker {
	struct respcache *rc;
	int id;
	int bad;
};

static void *hammer(void *arg)
{
	struct worker *w = arg;
	struct buf b = BUF_INIT;
	char key[32], body[64], extra[RESPCACHE_EXTRA_MAX];
	int i, n;

	for (i = 0; i < 20000; i++) {
		int k = (i * 7 + w->id) % 300;
		int64_t head = 1 + i / 1000;

		snprintf(key, sizeof(key), "u%d", k);
		n = snprintf(body, sizeof(body), "%s@%lld", key,
			     (long long)head);
		if (i % 3 == 0) {
			respcache_put(w->rc, key, head, body, (size_t)n, NULL);
			continue;
		}
		buf_release(&b);
		buf_init(&b, 0);
		if (respcache_get(w->rc, key, head, &b, extra) == 1 &&
		    (b.len != (size_t)n || memcmp(b.ptr, body, (size_t)n)))
			w->bad++;
	}
	buf_release(&b);
	return NULL;
}

Test(respcache, concurrent_use_returns_only_own_replies)
{
	struct respcache *rc = respcache_new();
	struct worker w[4];
	pthread_t t[4];
	int i;

	for (i = 0; i < 4; i++) {
		w[i] = (struct worker){ rc, i, 0 };
		pthread_create(&t[i], NULL, hammer, &w[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_expect_eq(w[i].bad, 0, "worker %d got a foreign reply", i);
	}
	respcache_free(rc);
}
