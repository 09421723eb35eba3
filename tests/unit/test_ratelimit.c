/*
 * test_ratelimit.c - the request budgets of server/ratelimit.c: a fixed
 * window per key and group, Retry-After seconds, giving attempts back,
 * the table's cap under a flood of distinct keys, concurrent takers, and
 * the "GROUP=N/SECONDS" syntax of --rate-limit.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "server/ratelimit.h"

static const struct rl_rule three_per_10s = { 3, 10 };

Test(ratelimit, budget_then_retry_after_then_new_window)
{
	struct ratelimit *rl = ratelimit_new(1024);
	int64_t t = 1000000;

	cr_assert_not_null(rl);
	cr_expect_eq(ratelimit_take(rl, RL_AUTH, &three_per_10s, "1.2.3.4", true, t), 0);
	cr_expect_eq(ratelimit_take(rl, RL_AUTH, &three_per_10s, "1.2.3.4", true, t + 100), 0);
	cr_expect_eq(ratelimit_take(rl, RL_AUTH, &three_per_10s, "1.2.3.4", true, t + 200), 0);
	/* the window started at t: 10 s, so 9.7 s rounded up are left */
	cr_expect_eq(ratelimit_take(rl, RL_AUTH, &three_per_10s, "1.2.3.4", true, t + 300), 10);
	cr_expect_eq(ratelimit_take(rl, RL_AUTH, &three_per_10s, "1.2.3.4", false, t + 9500), 1);
	/* other keys and other groups have budgets of their own */
	cr_expect_eq(ratelimit_take(rl, RL_AUTH, &three_per_10s, "1.2.3.5", true, t + 300), 0);
	cr_expect_eq(ratelimit_take(rl, RL_WRITE, &three_per_10s, "1.2.3.4", true, t + 300), 0);
	/* a new window once it ended */
	cr_expect_eq(ratelimit_take(rl, RL_AUTH, &three_per_10s, "1.2.3.4", true, t + 10000), 0);
	ratelimit_free(rl);
}

Test(ratelimit, check_only_counts_nothing_and_off_is_off)
{
	struct ratelimit *rl = ratelimit_new(64);
	struct rl_rule one = { 1, 60 }, off = { 0, 60 };
	int i;

	for (i = 0; i < 5; i++)
		cr_expect_eq(ratelimit_take(rl, RL_ALL, &one, "k", false, 5000), 0);
	cr_expect_eq(ratelimit_take(rl, RL_ALL, &one, "k", true, 5000), 0);
	cr_expect_eq(ratelimit_take(rl, RL_ALL, &one, "k", false, 5000), 60);
	for (i = 0; i < 1000; i++)
		cr_expect_eq(ratelimit_take(rl, RL_ALL, &off, "k", true, 5000), 0);
	ratelimit_free(rl);
}

Test(ratelimit, give_back)
{
	struct ratelimit *rl = ratelimit_new(64);
	int i;

	for (i = 0; i < 3; i++)
		ratelimit_take(rl, RL_LOGIN_IDENTITY, &three_per_10s, "u:a@x", true, 0);
	cr_expect_neq(ratelimit_take(rl, RL_LOGIN_IDENTITY, &three_per_10s, "u:a@x", true, 1), 0);
	ratelimit_give_back(rl, RL_LOGIN_IDENTITY, "u:a@x", 1);
	cr_expect_eq(ratelimit_take(rl, RL_LOGIN_IDENTITY, &three_per_10s, "u:a@x", true, 2), 0);
	cr_expect_neq(ratelimit_take(rl, RL_LOGIN_IDENTITY, &three_per_10s, "u:a@x", true, 3), 0);
	ratelimit_give_back(rl, RL_LOGIN_IDENTITY, "u:a@x", -1);
	for (i = 0; i < 3; i++)
		cr_expect_eq(ratelimit_take(rl, RL_LOGIN_IDENTITY, &three_per_10s, "u:a@x", true, 4), 0);
	ratelimit_give_back(rl, RL_LOGIN_IDENTITY, "never seen", 1);   /* no-op */
	ratelimit_free(rl);
}

/* A flood of distinct keys evicts; it never fails, and a key that keeps
 * coming back inside a small table still gets limited between floods. */
Test(ratelimit, flood_of_keys_stays_in_the_table)
{
	struct ratelimit *rl = ratelimit_new(512);
	struct rl_rule two = { 2, 60 };
	char key[32];
	int i, limited = 0;

	for (i = 0; i < 200000; i++) {
		snprintf(key, sizeof(key), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		cr_assert_eq(ratelimit_take(rl, RL_ALL, &two, key, true, 1000 + i / 1000), 0);
	}
	for (i = 0; i < 3; i++)
		limited += ratelimit_take(rl, RL_ALL, &two, "victim", true, 2000) != 0;
	cr_expect_eq(limited, 1);
	ratelimit_free(rl);
}

struct taker {
	struct ratelimit *rl;
	int allowed;
};

static void *take_many(void *arg)
{
	struct taker *t = arg;
	struct rl_rule rule = { 1000, 60 };
	int i;

	for (i = 0; i < 5000; i++)
		if (ratelimit_take(t->rl, RL_ALL, &rule, "shared", true, 42) == 0)
			t->allowed++;
	return NULL;
}

/* 8 threads, 40,000 takes of one key with a budget of 1,000: exactly
 * 1,000 get through. */
Test(ratelimit, concurrent_takers_never_overrun)
{
	struct ratelimit *rl = ratelimit_new(1024);
	struct taker t[8];
	pthread_t th[8];
	int i, sum = 0;

	for (i = 0; i < 8; i++) {
		t[i] = (struct taker){ rl, 0 };
		cr_assert_eq(pthread_create(&th[i], NULL, take_many, &t[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		sum += t[i].allowed;
	}
	cr_expect_eq(sum, 1000);
	ratelimit_free(rl);
}

Test(ratelimit, config_syntax)
{
	struct ratelimit_config c;
	struct err e = ERR_INIT;
	static const char *const bad[] = {
		"auth", "auth=5", "auth=5/", "auth=/5", "auth=x/5", "auth=5/0",
		"auth=-1/5", "nope=5/5", "auth=5/5,", "auth=5/5s", "=5/5",
	};
	size_t i;

	ratelimit_config_init(&c);
	cr_expect_eq(c.rules[RL_LOGIN_IDENTITY].max, 5);
	cr_expect_eq(c.rules[RL_WRITE].max, 0);
	cr_expect_eq(ratelimit_config_parse(&c, "write=100/1,all=0/10,login-ip=7/30", &e), 0);
	cr_expect_eq(c.rules[RL_WRITE].max, 100);
	cr_expect_eq(c.rules[RL_WRITE].window_s, 1);
	cr_expect_eq(c.rules[RL_LOGIN_IP].max, 7);
	cr_expect_eq(c.rules[RL_LOGIN_IP].window_s, 30);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ratelimit_config before = c;

		cr_expect_eq(ratelimit_config_parse(&c, bad[i], &e), ERR_INVALID,
			     "'%s' was accepted", bad[i]);
		cr_expect(strlen(e.msg) > 0);
		cr_expect_eq(memcmp(&before, &c, sizeof(c)), 0, "'%s' changed the config", bad[i]);
	}
	cr_expect_str_eq(ratelimit_group_name(RL_LOGIN_IDENTITY), "login-identity");
}
