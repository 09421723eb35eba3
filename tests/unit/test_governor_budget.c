/*
 * test_governor_budget.c - governor_budget_left(), which the containers
 * reconciler publishes as status.budget.left (the status page shows it):
 * the full budget at first, one less per action inside the window, back
 * as actions age out of it, never below zero.
 */
#include <criterion/criterion.h>

#include "governor.h"

Test(governor_budget, counts_actions_inside_the_window)
{
	struct governor_config c;
	struct governor g;
	int i;

	governor_config_default(&c);
	c.budget = 3;
	c.window_ms = 1000;
	governor_init(&g);
	cr_assert_eq(governor_budget_left(&g, &c, 10), 3);
	governor_begin(&g, 100);
	governor_end(&g, &c, 110, true);
	cr_assert_eq(governor_budget_left(&g, &c, 200), 2);
	governor_begin(&g, 500);
	governor_end(&g, &c, 510, true);
	cr_assert_eq(governor_budget_left(&g, &c, 600), 1);
	/* the first action leaves the window at 1100 */
	cr_assert_eq(governor_budget_left(&g, &c, 1099), 1);
	cr_assert_eq(governor_budget_left(&g, &c, 1100), 2);
	cr_assert_eq(governor_budget_left(&g, &c, 1600), 3);
	for (i = 0; i < 5; i++) {
		governor_begin(&g, 2000 + i);
		governor_end(&g, &c, 2000 + i, true);
	}
	cr_assert_eq(governor_budget_left(&g, &c, 2010), 0);
}
