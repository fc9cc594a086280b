// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

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

/* every region's host mapping is congruent to its guest address modulo align */
static void assert_placed(const struct guest_mem *m, uint64_t align)
{
	unsigned int i;

	for (i = 0; i < m->nr_regions; i++) {
		const struct mem_region *r = &m->regions[i];
		uint64_t hva = (uint64_t)(uintptr_t)r->hva;

		cr_assert_eq(r->align, align, "region %u: align %#llx, expected %#llx", i,
			     (unsigned long long)r->align, (unsigned long long)align);
		cr_assert_eq(hva % align, r->gpa % align,
			     "region %u (gpa %#llx) at hva %#llx: not %llu KiB-aligned like its gpa", i,
			     (unsigned long long)r->gpa, (unsigned long long)hva,
			     (unsigned long long)(align / KiB));
		/* the whole region is usable memory */
		r->hva[0] = 1;
		r->hva[r->size - 1] = 2;
	}
}

Test(mem, host_align_per_backing)
{
	cr_assert_eq(mem__host_align(4 * KiB), 2 * MiB, "anonymous memory: a transparent huge page");
	cr_assert_eq(mem__host_align(2 * MiB), 2 * MiB, "2 MiB hugetlbfs");
	cr_assert_eq(mem__host_align(1 * GiB), 1 * GiB, "1 GiB hugetlbfs");
}

Test(mem, place_is_congruent_and_within_one_align)
{
	static const uint64_t gpas[] = { 0, MEM_HIGH_START, 0x200000, 0x123000 };
	static const uint64_t bases[] = { 0x7f0000000000, 0x7f000003c000, 0x7f00001ff000, 0x10000 };
	static const uint64_t aligns[] = { 2 * MiB, 1 * GiB };
	unsigned int g, b, a;

	for (g = 0; g < ARRAY_SIZE(gpas); g++)
		for (b = 0; b < ARRAY_SIZE(bases); b++)
			for (a = 0; a < ARRAY_SIZE(aligns); a++) {
				uint64_t at = mem__place(bases[b], gpas[g], aligns[a]);

				cr_assert_geq(at, bases[b]);
				cr_assert_lt(at - bases[b], aligns[a], "placed inside the reservation");
				cr_assert_eq(at % aligns[a], gpas[g] % aligns[a]);
			}
	/* the case the lab caught: a mapping 0x3c000 past a 2 MiB boundary */
	cr_assert_eq(mem__place(0x7f5a0003c000, 0, 2 * MiB), 0x7f5a00200000);
}

Test(mem, anonymous_regions_are_2m_placed)
{
	static const uint64_t sizes[] = { 16 * MiB, 384 * MiB + 4 * KiB * 15, 512 * MiB, 4 * GiB + 6 * MiB };
	unsigned int i, round;

	/* many mappings in a row: mmap() hands out 4 KiB-aligned addresses */
	for (round = 0; round < 4; round++)
		for (i = 0; i < ARRAY_SIZE(sizes); i++) {
			struct guest_mem m;

			cr_assert_eq(mem__init(&m, sizes[i], false), 0);
			cr_assert_eq(m.nr_regions, sizes[i] > MEM_LOW_END ? 2u : 1u);
			assert_placed(&m, 2 * MiB);
			mem__free(&m);
			/* an odd-sized mapping in between shifts where the next one lands */
			void *shift = mmap(NULL, (round + 1) * 0x3c000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			cr_assert_neq(shift, MAP_FAILED);
		}
}
