// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "vmm/mem.h"

Test(mem, layout_small)
{
	struct guest_mem m;

	cr_assert_eq(mem__init(&m, 64 * MiB, false), 0);
	cr_assert_eq(m.nr_regions, 1);
	cr_assert_eq(m.regions[0].gpa, 0);
	cr_assert_eq(mem__end(&m), 64 * MiB);
	mem__free(&m);
}

Test(mem, layout_splits_at_mmio_hole)
{
	struct guest_mem m;

	cr_assert_eq(mem__init(&m, 4 * GiB, false), 0);
	cr_assert_eq(m.nr_regions, 2);
	cr_assert_eq(m.regions[0].size, MEM_LOW_END);
	cr_assert_eq(m.regions[1].gpa, MEM_HIGH_START);
	cr_assert_eq(m.regions[1].size, 4 * GiB - MEM_LOW_END);
	cr_assert_null(mem__gpa_to_hva(&m, MEM_LOW_END, 1), "the MMIO hole is not RAM");
	cr_assert_null(mem__gpa_to_hva(&m, MEM_LOW_END - 4, 8), "ranges cannot span the hole");
	cr_assert_not_null(mem__gpa_to_hva(&m, MEM_HIGH_START, 8));
	mem__free(&m);
}

Test(mem, bounds)
{
	struct guest_mem m;
	uint8_t *buf = calloc(1, 8192);
	uint8_t out[4] = { 0 };

	cr_assert_eq(mem__init_from_buffer(&m, buf, 0x10000, 8192), 0);
	cr_assert_eq(mem__gpa_to_hva(&m, 0x10000, 8192), buf);
	cr_assert_null(mem__gpa_to_hva(&m, 0x10000, 8193));
	cr_assert_null(mem__gpa_to_hva(&m, 0xffff, 2));
	cr_assert_null(mem__gpa_to_hva(&m, 0x10000, 0), "zero-length ranges are refused");
	cr_assert_null(mem__gpa_to_hva(&m, ~0ULL - 2, 8), "wrapping ranges are refused");
	cr_assert_eq(mem__write(&m, 0x11ffc, "abcd", 4), 0);
	cr_assert_eq(mem__read(&m, 0x11ffc, out, 4), 0);
	cr_assert_eq(memcmp(out, "abcd", 4), 0);
	cr_assert_eq(mem__write(&m, 0x11ffd, "abcd", 4), -EFAULT);
	cr_assert_eq(mem__read(&m, 0x20000, out, 1), -EFAULT);
	cr_assert(!mem__is_ram(&m, 0, 1));
	free(buf);
}

Test(mem, rejects_tiny_and_misaligned_hugepages)
{
	struct guest_mem m;

	cr_assert_eq(mem__init(&m, 1 * MiB, false), -EINVAL);
	cr_assert_eq(mem__init(&m, 65 * MiB, true), -EINVAL);
}
