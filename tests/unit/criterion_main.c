// SPDX-License-Identifier: MIT
/*
 * The main() of every unit test binary (tests/unit/meson.build links it in).
 * Criterion's own main exits 0 when a test calls cr_skip_test(), and prints
 * nothing about it without --verbose, so meson would show a test that never
 * ran as OK. This one lists each skipped test with its reason (give one to
 * cr_skip_test()) and exits as meson (and automake) expect: 1 when any test
 * failed or crashed, else 77 (SKIP) when any test was skipped, else 0.
 */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <stdio.h>

#define UNIT_EXIT_SKIP 77

static size_t unit_skipped;

/*
 * POST_FINI comes for every test that ran, whether it skipped itself in the
 * test or in its .init fixture; tests left out by --filter or .disabled are
 * reported as skipped too, but never run, so they do not count here.
 */
ReportHook(POST_FINI)(struct criterion_test_stats *stats)
{
	if (stats->test_status != CR_STATUS_SKIPPED)
		return;
	unit_skipped++;
	fprintf(stderr, "SKIP %s::%s: %s\n", stats->test->category, stats->test->name,
		stats->message && stats->message[0] ? stats->message : "(no reason given)");
}

int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();
	int ret = 0;

	if (criterion_handle_args(argc, argv, true)) {
		if (!criterion_run_all_tests(tests))
			ret = 1;
		else if (unit_skipped)
			ret = UNIT_EXIT_SKIP;
	}
	criterion_finalize(tests);
	if (ret == UNIT_EXIT_SKIP)
		fprintf(stderr, "%zu test(s) skipped: exit status %d\n", unit_skipped,
			UNIT_EXIT_SKIP);
	return ret;
}
