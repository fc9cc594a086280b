// SPDX-License-Identifier: MIT
/*
 * Guest RAM on 2 MiB hugetlbfs pages: each region's mapping is 2 MiB-aligned
 * like its guest address. Needs free 2 MiB huge pages (vm.nr_hugepages;
 * scripts/test.sh reserves them): without them the binary exits 77 and says
 * why, before Criterion runs anything.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/mem.h"

#define NEED_PAGES 16 /* 32 MiB: the 16 MiB test guest with room to spare */

static long meminfo(const char *key)
{
	char line[128];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			v = strtol(line + strlen(key) + 1, NULL, 10);
	fclose(f);
	return v;
}

Test(mem_hugetlb, regions_are_2m_placed)
{
	static const uint64_t sizes[] = { 16 * MiB, 18 * MiB, 30 * MiB };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct guest_mem m;
		const struct mem_region *r;

		cr_assert_eq(mem__init(&m, sizes[i], true), 0, "%llu MiB on hugetlbfs",
			     (unsigned long long)(sizes[i] / MiB));
		r = &m.regions[0];
		cr_assert_eq(m.nr_regions, 1u);
		cr_assert_eq(r->align, 2 * MiB);
		cr_assert_eq((uintptr_t)r->hva % (2 * MiB), 0, "hugetlb RAM at %p", (void *)r->hva);
		memset(r->hva, 0x5a, r->size); /* every page is there: no SIGBUS */
		mem__free(&m);
	}
}

Test(mem_hugetlb, shortage_fails_at_init)
{
	struct guest_mem m;
	long free_pages = meminfo("HugePages_Free");

	/* more than is free: refused when mapped, not a SIGBUS later */
	cr_assert_lt(mem__init(&m, (uint64_t)(free_pages + 2) * 2 * MiB, true), 0);
}

int main(int argc, char **argv)
{
	struct criterion_test_set *tests;
	long free_pages = meminfo("HugePages_Free"), size_kb = meminfo("Hugepagesize");
	int ret = 0;

	if (size_kb != 2048 || free_pages < NEED_PAGES) {
		printf("SKIP: needs %d free 2 MiB huge pages (Hugepagesize %ld kB, HugePages_Free %ld): "
		       "sysctl vm.nr_hugepages=%d\n", NEED_PAGES, size_kb, free_pages, NEED_PAGES);
		return 77;
	}
	tests = criterion_initialize();
	if (criterion_handle_args(argc, argv, true))
		ret = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return ret;
}
