// SPDX-License-Identifier: MIT
/* migration/precopy.c: when pre-copy stops iterating. */
#include <criterion/criterion.h>

#include "migration/precopy.h"

/* 100 MB/s: a page crosses in 40.96 us, 300 ms carry 7324 pages */
#define BW 100e6

static struct mig_precopy p;

static void setup(void)
{
	mig__precopy_init(&p, 300);
}

TestSuite(precopy, .init = setup);

Test(precopy, a_backlog_that_fits_the_target_converges)
{
	cr_assert_eq(mig__precopy_judge(&p, 50000, BW), MIG_PRECOPY_AGAIN);
	cr_assert_eq(mig__precopy_judge(&p, 7000, BW), MIG_PRECOPY_CONVERGED);
	cr_assert_float_eq(p.expected_ms, 7000 * 4096.0 / BW * 1e3, 1e-6);
	cr_assert_eq(p.rounds, 2);
}

Test(precopy, an_empty_backlog_converges_even_without_a_bandwidth)
{
	cr_assert_eq(mig__precopy_judge(&p, 0, 0), MIG_PRECOPY_CONVERGED);
	cr_assert_float_eq(p.expected_ms, 0, 1e-9);
}

Test(precopy, without_a_bandwidth_a_backlog_never_converges)
{
	cr_assert_eq(mig__precopy_judge(&p, 1, 0), MIG_PRECOPY_AGAIN);
	cr_assert_lt(p.expected_ms, 0);
}

/* the lab's case (2026-12-03): a backlog that wobbles about one level */
Test(precopy, a_wobbling_plateau_stops_after_the_stale_rounds)
{
	static const uint64_t backlog[] = {60000, 12000, 11500, 12500, 10800, 11900};
	unsigned int i;

	/* 12000 pages at 10 MB/s: 4.9 s, far above the target */
	for (i = 0; i < 5; i++)
		cr_assert_eq(mig__precopy_judge(&p, backlog[i], 10e6), MIG_PRECOPY_AGAIN, "round %u", i);
	/* 11500, 12500, 10800 and 11900: none an eighth below 12000 */
	cr_assert_eq(mig__precopy_judge(&p, backlog[5], 10e6), MIG_PRECOPY_NO_PROGRESS);
	cr_assert_eq(p.best_pages, 12000);
	cr_assert_eq(p.since_best, MIG_PRECOPY_STALE_ROUNDS);
}

Test(precopy, a_backlog_that_shrinks_slowly_goes_on)
{
	double pages = 200000;
	unsigned int i;

	/* 10% smaller each round: a new low every other round */
	for (i = 0; i < 20; i++, pages *= 0.9)
		cr_assert_eq(mig__precopy_judge(&p, (uint64_t)pages, 10e6), MIG_PRECOPY_AGAIN,
			     "round %u, %.0f pages", i, pages);
	cr_assert_leq(p.since_best, 1);
}

Test(precopy, a_new_low_resets_the_count)
{
	unsigned int i;

	cr_assert_eq(mig__precopy_judge(&p, 10000, 1e6), MIG_PRECOPY_AGAIN);
	for (i = 0; i < MIG_PRECOPY_STALE_ROUNDS - 1; i++)
		cr_assert_eq(mig__precopy_judge(&p, 10000, 1e6), MIG_PRECOPY_AGAIN);
	cr_assert_eq(mig__precopy_judge(&p, 8000, 1e6), MIG_PRECOPY_AGAIN);
	cr_assert_eq(p.best_pages, 8000);
	cr_assert_eq(p.since_best, 0);
}

Test(precopy, a_round_that_grows_does_not_raise_the_low)
{
	cr_assert_eq(mig__precopy_judge(&p, 5000, 1e6), MIG_PRECOPY_AGAIN);
	cr_assert_eq(mig__precopy_judge(&p, 90000, 1e6), MIG_PRECOPY_AGAIN);
	cr_assert_eq(p.best_pages, 5000);
	cr_assert_eq(p.since_best, 1);
}

Test(precopy, the_rounds_are_bounded)
{
	double pages = 1e9;
	unsigned int i;
	enum mig_precopy_verdict v = MIG_PRECOPY_AGAIN;

	/* a new low every round, never small enough */
	for (i = 0; i < MIG_PRECOPY_MAX_ROUNDS - 1; i++, pages *= 0.8) {
		v = mig__precopy_judge(&p, (uint64_t)pages, 1);
		cr_assert_eq(v, MIG_PRECOPY_AGAIN, "round %u", i);
	}
	cr_assert_eq(mig__precopy_judge(&p, (uint64_t)pages, 1), MIG_PRECOPY_MAX_ROUNDS_DONE);
	cr_assert_eq(p.rounds, MIG_PRECOPY_MAX_ROUNDS);
}

Test(precopy, verdicts_have_names)
{
	cr_assert_str_eq(mig__precopy_verdict_name(MIG_PRECOPY_CONVERGED), "converged");
	cr_assert_str_eq(mig__precopy_verdict_name(MIG_PRECOPY_NO_PROGRESS), "no-progress");
	cr_assert_str_eq(mig__precopy_verdict_name(MIG_PRECOPY_MAX_ROUNDS_DONE), "max-rounds");
	cr_assert_str_eq(mig__precopy_verdict_name(MIG_PRECOPY_AGAIN), "again");
}
