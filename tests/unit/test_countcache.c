/*
 * test_countcache.c - the per-revision count cache.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "store/countcache.h"

Test(countcache, hits_only_at_the_same_revision)
{
	struct countcache *cc = countcache_new();
	int64_t n = -1;

	cr_assert_not_null(cc);
	cr_expect(!countcache_get(cc, "a", 1, &n));
	countcache_put(cc, "a", 1, 42);
	cr_expect(countcache_get(cc, "a", 1, &n));
	cr_expect_eq(n, 42);
	cr_expect(!countcache_get(cc, "a", 2, &n), "another revision hit");
	cr_expect(!countcache_get(cc, "b", 1, &n));
	countcache_put(cc, "a", 2, 7);       /* replaces in place */
	cr_expect(countcache_get(cc, "a", 2, &n));
	cr_expect_eq(n, 7);
	cr_expect(!countcache_get(cc, "a", 1, &n));
	countcache_free(cc);
	countcache_free(NULL);
	cr_expect(!countcache_get(NULL, "a", 1, &n));
	countcache_put(NULL, "a", 1, 1);
}

Test(countcache, round_robin_and_long_keys)
{
	struct countcache *cc = countcache_new();
	char key[32], big[COUNTCACHE_KEY_MAX + 10];
	int64_t n;
	int i;

	for (i = 0; i < COUNTCACHE_SLOTS + 1; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		countcache_put(cc, key, 5, i);
	}
	cr_expect(!countcache_get(cc, "k0", 5, &n), "the oldest was kept");
	cr_expect(countcache_get(cc, "k1", 5, &n));
	cr_expect_eq(n, 1);
	snprintf(key, sizeof(key), "k%d", COUNTCACHE_SLOTS);
	cr_expect(countcache_get(cc, key, 5, &n));
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	countcache_put(cc, big, 5, 1);
	cr_expect(!countcache_get(cc, big, 5, &n));
	countcache_free(cc);
}
