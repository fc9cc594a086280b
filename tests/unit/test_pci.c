// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/pci_regs.h>
#include <string.h>

#include "vmm/bus.h"
#include "vmm/pci.h"

struct tdev {
	struct pci_dev pci;
	int maps, unmaps;
	int last_bar;
	uint64_t last_addr;
	uint32_t cfg_writes;
};

static int tdev_map(struct pci_dev *d, int bar, uint64_t addr)
{
	struct tdev *t = container_of(d, struct tdev, pci);

	t->maps++;
	t->last_bar = bar;
	t->last_addr = addr;
	return 0;
}

static int tdev_unmap(struct pci_dev *d, int bar, uint64_t addr)
{
	struct tdev *t = container_of(d, struct tdev, pci);

	t->unmaps++;
	return 0;
}

static void tdev_cfg_write(struct pci_dev *d, uint32_t off, uint32_t len)
{
	container_of(d, struct tdev, pci)->cfg_writes++;
}

static const struct pci_dev_ops tdev_ops = {
	.bar_map = tdev_map,
	.bar_unmap = tdev_unmap,
	.cfg_write = tdev_cfg_write,
};

static struct bus pio, mmio;
static struct pci_bus pb;
static struct tdev td;

static void setup(void)
{
	uint8_t cap[6] = { 1, 2, 3, 4, 5, 6 };

	cr_assert_eq(bus__init(&pio, "pio"), 0);
	cr_assert_eq(bus__init(&mmio, "mmio"), 0);
	cr_assert_eq(pci__bus_init(&pb, &pio, &mmio), 0);
	memset(&td, 0, sizeof(td));
	pci__dev_init(&td.pci, "tdev", 0x1234, 0x5678, 0x020000, 0x1af4, 0x11, 3, &tdev_ops);
	cr_assert_eq(pci__dev_add_bar(&td.pci, 0, 0x3000, PCI_BAR_F_MEM64 | PCI_BAR_F_PREFETCH), 0);
	cr_assert_eq(pci__dev_add_bar(&td.pci, 2, 0x20, PCI_BAR_F_IO), 0);
	cr_assert_eq(pci__dev_add_cap(&td.pci, 0x09, cap, sizeof(cap)), 0x40);
	cr_assert_eq(pci__dev_add_cap(&td.pci, 0x11, cap, 2), 0x48);
	cr_assert_eq(pci__register(&pb, &td.pci, 3), 0);
}

static void teardown(void)
{
	pci__bus_destroy(&pb);
	bus__destroy(&mmio);
	bus__destroy(&pio);
}

static uint32_t cf8_read(uint8_t dev, uint32_t off, uint32_t len)
{
	uint32_t addr = 0x80000000u | (uint32_t)dev << 11 | (off & 0xfc);
	uint32_t v = 0;

	cr_assert_eq(bus__dispatch(&pio, 0xcf8, (uint8_t *)&addr, 4, true), 0);
	cr_assert_eq(bus__dispatch(&pio, 0xcfc + (off & 3), (uint8_t *)&v, len, false), 0);
	return v;
}

static void cf8_write(uint8_t dev, uint32_t off, uint32_t v, uint32_t len)
{
	uint32_t addr = 0x80000000u | (uint32_t)dev << 11 | (off & 0xfc);

	cr_assert_eq(bus__dispatch(&pio, 0xcf8, (uint8_t *)&addr, 4, true), 0);
	cr_assert_eq(bus__dispatch(&pio, 0xcfc + (off & 3), (uint8_t *)&v, len, true), 0);
}

static uint32_t ecam_read(uint8_t dev, uint32_t off)
{
	uint32_t v = 0;

	cr_assert_eq(bus__dispatch(&mmio, PCI_ECAM_BASE + ((uint64_t)dev << 15) + off,
				   (uint8_t *)&v, 4, false), 0);
	return v;
}

static void ecam_write(uint8_t dev, uint32_t off, uint32_t v)
{
	cr_assert_eq(bus__dispatch(&mmio, PCI_ECAM_BASE + ((uint64_t)dev << 15) + off,
				   (uint8_t *)&v, 4, true), 0);
}

TestSuite(pci, .init = setup, .fini = teardown);

Test(pci, ids_through_cf8_and_ecam)
{
	cr_assert_eq(cf8_read(3, 0, 4), 0x56781234);
	cr_assert_eq(ecam_read(3, 0), 0x56781234);
	cr_assert_eq(cf8_read(3, 2, 2), 0x5678);
	cr_assert_eq(cf8_read(3, PCI_CLASS_REVISION, 4), 0x02000003);
	cr_assert_eq(cf8_read(0, 0, 4), 0x0d578086, "host bridge at 00:00.0");
	cr_assert_eq(cf8_read(4, 0, 4), 0xffffffff, "empty slot");
	cr_assert_eq(ecam_read(3 , 0) , cf8_read(3, 0, 4));
}

Test(pci, disabled_cf8_reads_all_ones)
{
	uint32_t addr = 3u << 11, v = 0;

	cr_assert_eq(bus__dispatch(&pio, 0xcf8, (uint8_t *)&addr, 4, true), 0);
	cr_assert_eq(bus__dispatch(&pio, 0xcfc, (uint8_t *)&v, 4, false), 0);
	cr_assert_eq(v, 0xffffffff);
}

Test(pci, cf8_byte_and_word_writes)
{
	cf8_write(3, PCI_LATENCY_TIMER, 0x40, 1);
	cf8_write(3, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	cr_assert_eq(cf8_read(3, PCI_LATENCY_TIMER, 1), 0x40);
	cr_assert_eq(td.maps, 1, "BAR0 decoded after the COMMAND write");
	cr_assert_eq(cf8_read(3, PCI_COMMAND, 2), PCI_COMMAND_MEMORY);
}

Test(pci, read_only_fields_survive_guest_writes)
{
	ecam_write(3, 0, 0xdeadbeef);
	ecam_write(3, PCI_CLASS_REVISION, 0);
	ecam_write(3, PCI_CAPABILITY_LIST & ~3u, 0xffffffff);
	ecam_write(3, 0x40, 0);
	cr_assert_eq(ecam_read(3, 0), 0x56781234);
	cr_assert_eq(ecam_read(3, PCI_CLASS_REVISION), 0x02000003);
	cr_assert_eq(ecam_read(3, PCI_CAPABILITY_LIST & ~3u) & 0xff, 0x40);
	cr_assert_eq(ecam_read(3, 0x40) & 0xffff, 0x4809, "cap id and next pointer intact");
	cr_assert_eq(ecam_read(3, 0x48) & 0xffff, 0x0011);
	cr_assert(ecam_read(3, PCI_COMMAND) & (PCI_STATUS_CAP_LIST << 16));
}

Test(pci, bar_sizing)
{
	uint32_t lo, hi, io;

	cr_assert_eq(td.pci.bars[0].size, 0x4000, "sizes round up to a power of two");
	ecam_write(3, PCI_BASE_ADDRESS_0, 0xffffffff);
	ecam_write(3, PCI_BASE_ADDRESS_1, 0xffffffff);
	ecam_write(3, PCI_BASE_ADDRESS_2, 0xffffffff);
	lo = ecam_read(3, PCI_BASE_ADDRESS_0);
	hi = ecam_read(3, PCI_BASE_ADDRESS_1);
	io = ecam_read(3, PCI_BASE_ADDRESS_2);
	cr_assert_eq(lo, 0xffffc000 | PCI_BASE_ADDRESS_MEM_TYPE_64 | PCI_BASE_ADDRESS_MEM_PREFETCH);
	cr_assert_eq(hi, 0xffffffff);
	cr_assert_eq(io, 0xffffffe0 | PCI_BASE_ADDRESS_SPACE_IO);
	cr_assert_eq(ecam_read(3, PCI_BASE_ADDRESS_3), 0, "unused BAR reads 0");
	cr_assert_eq(ecam_read(3, PCI_ROM_ADDRESS), 0, "no ROM BAR");
	cr_assert_eq(td.maps, 0, "decode is off: nothing mapped while sizing");
}

Test(pci, firmware_assignment_in_windows)
{
	uint64_t a = td.pci.bars[0].addr;

	cr_assert(a >= PCI_MMIO32_BASE && a + 0x4000 <= PCI_MMIO32_BASE + PCI_MMIO32_SIZE);
	cr_assert_eq(a % 0x4000, 0);
	cr_assert_eq(ecam_read(3, PCI_BASE_ADDRESS_0) & ~0xfu, (uint32_t)a);
	cr_assert(td.pci.bars[2].addr >= PCI_IO_BASE);
}

Test(pci, command_enables_and_moves_bars)
{
	uint64_t a = td.pci.bars[0].addr;

	ecam_write(3, PCI_COMMAND, PCI_COMMAND_MEMORY);
	cr_assert_eq(td.maps, 1);
	cr_assert_eq(td.last_bar, 0);
	cr_assert_eq(td.last_addr, a);
	ecam_write(3, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
	cr_assert_eq(td.maps, 2);
	cr_assert_eq(td.last_bar, 2);
	/* move BAR0 while decoding: unmap the old place, map the new one */
	ecam_write(3, PCI_BASE_ADDRESS_0, 0xd0000000);
	cr_assert_eq(td.unmaps, 1);
	cr_assert_eq(td.last_addr, 0xd0000000);
	cr_assert(td.pci.bars[0].active);
	/* sizing with decode on (a buggy guest) never maps at the all-ones address */
	ecam_write(3, PCI_BASE_ADDRESS_0, 0xffffffff);
	ecam_write(3, PCI_BASE_ADDRESS_1, 0xffffffff);
	cr_assert(!td.pci.bars[0].active);
	ecam_write(3, PCI_COMMAND, 0);
	cr_assert(!td.pci.bars[2].active);
	cr_assert(td.cfg_writes > 0, "device saw its config writes");
}

Test(pci, status_error_bits_write_one_to_clear)
{
	td.pci.cfg[PCI_STATUS + 1] |= PCI_STATUS_REC_MASTER_ABORT >> 8;
	ecam_write(3, PCI_COMMAND, (uint32_t)PCI_STATUS_REC_MASTER_ABORT << 16);
	cr_assert_eq(ecam_read(3, PCI_COMMAND) >> 16 & PCI_STATUS_REC_MASTER_ABORT, 0);
	cr_assert(ecam_read(3, PCI_COMMAND) >> 16 & PCI_STATUS_CAP_LIST, "CAP_LIST is not W1C");
}

Test(pci, junk_accesses_are_harmless)
{
	uint8_t d[8];

	memset(d, 0xab, sizeof(d));
	/* unaligned, odd widths, beyond 4 KiB, other buses and functions */
	pci__cfg_access(&pb, 0, 3 << 3, 1, d, 2, true);
	pci__cfg_access(&pb, 0, 3 << 3, 2, d, 4, true);
	pci__cfg_access(&pb, 0, 3 << 3, 0xffe, d, 4, false);
	cr_assert_eq(d[0], 0xff);
	pci__cfg_access(&pb, 0, 3 << 3, 0, d, 3, false);
	pci__cfg_access(&pb, 5, 3 << 3, 0, d, 4, false);
	cr_assert_eq(d[0], 0xff);
	pci__cfg_access(&pb, 0, (3 << 3) | 1, 0, d, 4, false);
	cr_assert_eq(d[0], 0xff);
	cr_assert_eq(bus__dispatch(&mmio, PCI_ECAM_BASE + (3 << 15), d, 8, true), 0);
	cr_assert_eq(ecam_read(3, 0), 0x56781234);
	cr_assert_eq(td.maps, 0);
}

Test(pci, bad_bar_declarations)
{
	struct pci_dev d;

	pci__dev_init(&d, "bad", 1, 2, 0, 0, 0, 0, NULL);
	cr_assert_eq(pci__dev_add_bar(&d, 5, 4096, PCI_BAR_F_MEM64), -EINVAL);
	cr_assert_eq(pci__dev_add_bar(&d, 6, 4096, 0), -EINVAL);
	cr_assert_eq(pci__dev_add_bar(&d, 0, 0, 0), -EINVAL);
	cr_assert_eq(pci__dev_add_bar(&d, 0, 4096, PCI_BAR_F_MEM64), 0);
	cr_assert_eq(pci__dev_add_bar(&d, 1, 4096, 0), -EINVAL, "BAR1 is BAR0's upper half");
	cr_assert_eq(pci__register(&pb, &d, 3), -EBUSY);
}

/* ---- BAR windows: allocation that gives space back ---- */

#define WBASE 0xC0000000ULL

static void win_init(struct pci_window *w, uint64_t base, uint64_t size)
{
	cr_assert_eq(pci__window_init(w, base, size), 0);
}

static uint64_t win_alloc(struct pci_window *w, uint64_t size, uint64_t align)
{
	uint64_t a = 0;

	cr_assert_eq(pci__window_alloc(w, size, align, &a), 0, "alloc %#llx",
		     (unsigned long long)size);
	return a;
}

struct span {
	uint64_t base, end;
};

/* the window's free list is exactly the given ranges */
static void assert_free_list(const struct pci_window *w, const struct span *want, unsigned int n)
{
	unsigned int i;

	cr_assert_eq(w->nr_free, n, "%u free ranges, want %u", w->nr_free, n);
	for (i = 0; i < n; i++) {
		cr_assert_eq(w->free[i].base, want[i].base, "free[%u].base %#llx", i,
			     (unsigned long long)w->free[i].base);
		cr_assert_eq(w->free[i].end, want[i].end, "free[%u].end %#llx", i,
			     (unsigned long long)w->free[i].end);
	}
}

Test(pci_window, alloc_free_realloc_same_address)
{
	struct pci_window w;
	uint64_t a, b;

	win_init(&w, WBASE, 512 * MiB);
	a = win_alloc(&w, 64 * KiB, 64 * KiB);
	cr_assert_eq(a, WBASE);
	b = win_alloc(&w, 64 * KiB, 64 * KiB);
	cr_assert_eq(b, WBASE + 64 * KiB);
	cr_assert_eq(pci__window_used(&w), 128 * KiB);
	cr_assert_eq(pci__window_free(&w, a, 64 * KiB), 0);
	cr_assert_eq(pci__window_used(&w), 64 * KiB);
	cr_assert_eq(win_alloc(&w, 64 * KiB, 64 * KiB), a, "the freed range comes back");
	cr_assert_eq(pci__window_free(&w, b, 64 * KiB), 0);
	cr_assert_eq(win_alloc(&w, 64 * KiB, 64 * KiB), b, "the freed tail comes back");
	cr_assert_eq(pci__window_free(&w, a, 64 * KiB), 0);
	cr_assert_eq(pci__window_free(&w, b, 64 * KiB), 0);
	assert_free_list(&w, (struct span[]){ { WBASE, WBASE + 512 * MiB } }, 1);
	cr_assert_eq(pci__window_used(&w), 0);
	pci__window_destroy(&w);
}

Test(pci_window, fragmentation_and_coalescing)
{
	struct pci_window w;
	uint64_t a[8], big;
	unsigned int i;

	win_init(&w, WBASE, 1 * MiB);
	for (i = 0; i < 8; i++) {
		a[i] = win_alloc(&w, 64 * KiB, 64 * KiB);
		cr_assert_eq(a[i], WBASE + i * 64 * KiB);
	}
	/* free 0, 2, 4, 6: four 64 KiB holes, none adjacent */
	for (i = 0; i < 8; i += 2)
		cr_assert_eq(pci__window_free(&w, a[i], 64 * KiB), 0);
	assert_free_list(&w,
			 (struct span[]){ { a[0], a[1] }, { a[2], a[3] }, { a[4], a[5] },
					       { a[6], a[7] }, { WBASE + 512 * KiB, WBASE + MiB } },
			 5);
	/* 256 KiB of holes, but 128 KiB does not fit in any: it goes to the tail */
	big = win_alloc(&w, 128 * KiB, 128 * KiB);
	cr_assert_eq(big, WBASE + 512 * KiB);
	/* freeing 1 joins holes 0, 1 and 2 into one 192 KiB range */
	cr_assert_eq(pci__window_free(&w, a[1], 64 * KiB), 0);
	assert_free_list(&w,
			 (struct span[]){ { a[0], a[3] }, { a[4], a[5] }, { a[6], a[7] },
					       { WBASE + 640 * KiB, WBASE + MiB } },
			 4);
	/* now 128 KiB fits at the bottom */
	cr_assert_eq(win_alloc(&w, 128 * KiB, 128 * KiB), WBASE);
	cr_assert_eq(pci__window_free(&w, WBASE, 128 * KiB), 0);
	/* freeing 7 and the big one merges everything from hole 6 up into the tail */
	cr_assert_eq(pci__window_free(&w, a[7], 64 * KiB), 0);
	cr_assert_eq(pci__window_free(&w, big, 128 * KiB), 0);
	assert_free_list(&w,
			 (struct span[]){ { a[0], a[3] }, { a[4], a[5] }, { a[6], WBASE + MiB } },
			 3);
	cr_assert_eq(pci__window_free(&w, a[3], 64 * KiB), 0);
	cr_assert_eq(pci__window_free(&w, a[5], 64 * KiB), 0);
	assert_free_list(&w, (struct span[]){ { WBASE, WBASE + MiB } }, 1);
	cr_assert_eq(w.nr_used, 0);
	pci__window_destroy(&w);
}

Test(pci_window, natural_alignment_4k_to_1g)
{
	struct pci_window w;
	uint64_t prev_end = 0, size, a;

	win_init(&w, PCI_MMIO64_BASE, PCI_MMIO64_SIZE);
	for (size = 4 * KiB; size <= 1 * GiB; size *= 2) {
		/* a 4 KiB spacer first, so that the next start is never already aligned */
		prev_end = win_alloc(&w, 4 * KiB, 4 * KiB) + 4 * KiB;
		a = win_alloc(&w, size, size);
		cr_assert_eq(a % size, 0, "%#llx-byte BAR at %#llx", (unsigned long long)size,
			     (unsigned long long)a);
		cr_assert(a >= prev_end, "overlaps the previous allocation");
		cr_assert(a + size <= PCI_MMIO64_BASE + PCI_MMIO64_SIZE);
		prev_end = a + size;
	}
	/* alignment larger than the size */
	a = win_alloc(&w, 4 * KiB, 2 * MiB);
	cr_assert_eq(a % (2 * MiB), 0);
	cr_assert_eq(pci__window_alloc(&w, 4 * KiB, 3 * KiB, &a), -EINVAL, "alignment not 2^n");
	cr_assert_eq(pci__window_alloc(&w, 4 * KiB, 0, &a), -EINVAL);
	cr_assert_eq(pci__window_alloc(&w, 0, 4 * KiB, &a), -EINVAL);
	pci__window_destroy(&w);
}

Test(pci_window, exhaustion)
{
	struct pci_window w;
	uint64_t a, used;
	unsigned int i;

	win_init(&w, WBASE, 1 * MiB);
	cr_assert_eq(pci__window_alloc(&w, 2 * MiB, 2 * MiB, &a), -ENOSPC,
		     "larger than the window");
	for (i = 0; i < 16; i++)
		win_alloc(&w, 64 * KiB, 64 * KiB);
	used = pci__window_used(&w);
	cr_assert_eq(used, 1 * MiB);
	cr_assert_eq(pci__window_alloc(&w, 4 * KiB, 4 * KiB, &a), -ENOSPC);
	cr_assert_eq(pci__window_used(&w), used, "a failed alloc takes nothing");
	cr_assert_eq(pci__window_free(&w, WBASE + 5 * 64 * KiB, 64 * KiB), 0);
	cr_assert_eq(pci__window_alloc(&w, 128 * KiB, 128 * KiB, &a), -ENOSPC, "one 64 KiB hole");
	cr_assert_eq(win_alloc(&w, 32 * KiB, 32 * KiB), WBASE + 5 * 64 * KiB);
	cr_assert_eq(win_alloc(&w, 32 * KiB, 32 * KiB), WBASE + 5 * 64 * KiB + 32 * KiB);
	cr_assert_eq(pci__window_alloc(&w, 4 * KiB, 4 * KiB, &a), -ENOSPC);
	pci__window_destroy(&w);

	/* a range whose aligned start lies beyond its end */
	win_init(&w, WBASE + 0x1000, 0x1000);
	cr_assert_eq(pci__window_alloc(&w, 0x1000, 0x10000, &a), -ENOSPC);
	cr_assert_eq(win_alloc(&w, 0x1000, 0x1000), WBASE + 0x1000);
	pci__window_destroy(&w);

	/* at the top of the address space: aligning up must not wrap around */
	cr_assert_eq(pci__window_init(&w, ~0ULL - 0x1fff, 0x1000), 0);
	cr_assert_eq(pci__window_alloc(&w, 0x1000, 0x4000, &a), -ENOSPC);
	cr_assert_eq(pci__window_alloc(&w, 0x2000, 0x1000, &a), -ENOSPC);
	cr_assert_eq(win_alloc(&w, 0x1000, 0x1000), ~0ULL - 0x1fff);
	pci__window_destroy(&w);
	cr_assert_eq(pci__window_init(&w, ~0ULL - 0xfff, 0x1000), -EINVAL, "reaches 2^64");
	cr_assert_eq(pci__window_init(&w, WBASE, 0), -EINVAL, "empty");
}

Test(pci_window, rejects_double_and_foreign_frees)
{
	struct pci_window w;
	uint64_t a, b;

	win_init(&w, WBASE, 1 * MiB);
	a = win_alloc(&w, 64 * KiB, 64 * KiB);
	b = win_alloc(&w, 64 * KiB, 64 * KiB);
	cr_assert_eq(pci__window_free(&w, a + 4 * KiB, 4 * KiB), -EINVAL, "inside an allocation");
	cr_assert_eq(pci__window_free(&w, a, 32 * KiB), -EINVAL, "part of an allocation");
	cr_assert_eq(pci__window_free(&w, a, 128 * KiB), -EINVAL, "two allocations at once");
	cr_assert_eq(pci__window_free(&w, WBASE + 512 * KiB, 64 * KiB), -EINVAL, "never allocated");
	cr_assert_eq(pci__window_free(&w, 0x1000, 0x1000), -EINVAL, "outside the window");
	cr_assert_eq(pci__window_used(&w), 128 * KiB, "refused frees change nothing");
	cr_assert_eq(pci__window_free(&w, a, 64 * KiB), 0);
	cr_assert_eq(pci__window_free(&w, a, 64 * KiB), -EINVAL, "double free");
	cr_assert_eq(pci__window_free(&w, b, 64 * KiB), 0);
	cr_assert_eq(pci__window_free(&w, b, 64 * KiB), -EINVAL, "double free of the tail");
	assert_free_list(&w, (struct span[]){ { WBASE, WBASE + MiB } }, 1);
	pci__window_destroy(&w);
}

/*
 * Without frees the window places as the old bump allocator did: alignment
 * padding is not handed out (so boot-time devices keep their addresses); it
 * joins the free space once a neighbour is freed.
 */
Test(pci_window, bump_placement_without_frees)
{
	struct pci_window w;
	uint64_t a, b, c;

	win_init(&w, WBASE, 512 * MiB);
	a = win_alloc(&w, 4 * KiB, 4 * KiB);
	b = win_alloc(&w, 64 * KiB, 64 * KiB);
	c = win_alloc(&w, 4 * KiB, 4 * KiB);
	cr_assert_eq(a, WBASE);
	cr_assert_eq(b, WBASE + 64 * KiB);
	cr_assert_eq(c, WBASE + 128 * KiB, "not in the padding at +4 KiB");
	cr_assert_eq(win_alloc(&w, 16 * KiB, 16 * KiB), WBASE + 144 * KiB);
	/* freeing b makes the padding in front of it usable */
	cr_assert_eq(pci__window_free(&w, b, 64 * KiB), 0);
	assert_free_list(&w,
			 (struct span[]){ { WBASE + 4 * KiB, WBASE + 128 * KiB },
					       { WBASE + 132 * KiB, WBASE + 144 * KiB },
					       { WBASE + 160 * KiB, WBASE + 512 * MiB } },
			 3);
	cr_assert(!w.free[0].gap && w.free[1].gap && !w.free[2].gap);
	cr_assert_eq(win_alloc(&w, 4 * KiB, 4 * KiB), WBASE + 4 * KiB);
	pci__window_destroy(&w);
}

/* ---- the bus gives BAR space back on unregister ---- */

static void tdev_make(struct tdev *t, const char *name, uint64_t bar0, uint32_t flags0,
		      uint64_t bar1, uint32_t flags1)
{
	memset(t, 0, sizeof(*t));
	pci__dev_init(&t->pci, name, 0x1234, 0x0001, 0xff0000, 0, 0, 0, &tdev_ops);
	cr_assert_eq(pci__dev_add_bar(&t->pci, 0, bar0, flags0), 0);
	if (bar1)
		cr_assert_eq(pci__dev_add_bar(&t->pci, 2, bar1, flags1), 0);
}

Test(pci, hot_unplug_hole_is_reused)
{
	static struct tdev dev[4];
	uint64_t b_mem, b_io, used32, usedio;
	int b_devfn;
	unsigned int i;

	for (i = 0; i < 3; i++) {
		tdev_make(&dev[i], "hp", 64 * KiB, 0, 0x40, PCI_BAR_F_IO);
		cr_assert_eq(pci__register(&pb, &dev[i].pci, -1), 0);
	}
	/* after the fixture's 16 KiB BAR: 64 KiB aligned, one after another */
	cr_assert_eq(dev[0].pci.bars[0].addr, PCI_MMIO32_BASE + 64 * KiB);
	cr_assert_eq(dev[1].pci.bars[0].addr, PCI_MMIO32_BASE + 128 * KiB);
	cr_assert_eq(dev[2].pci.bars[0].addr, PCI_MMIO32_BASE + 192 * KiB);
	b_mem = dev[1].pci.bars[0].addr;
	b_io = dev[1].pci.bars[2].addr;
	b_devfn = dev[1].pci.devfn;
	used32 = pci__window_used(&pb.mmio32);
	usedio = pci__window_used(&pb.io);

	/* the guest turns decoding on, then the middle device is unplugged */
	ecam_write((uint8_t)(b_devfn >> 3), PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
	cr_assert_eq(dev[1].maps, 2);
	cr_assert_eq(pci__unregister(&pb, &dev[1].pci), 0);
	cr_assert_eq(dev[1].unmaps, 2, "both BARs unmapped");
	cr_assert_eq(pci__window_used(&pb.mmio32), used32 - 64 * KiB, "memory BAR given back");
	cr_assert_eq(pci__window_used(&pb.io), usedio - 0x40, "I/O BAR given back");
	cr_assert_eq(pci__unregister(&pb, &dev[1].pci), -ENOENT);
	cr_assert_eq(pci__window_used(&pb.mmio32), used32 - 64 * KiB, "nothing given back twice");

	/* a new device of the same shape lands in the hole, in the same slot */
	tdev_make(&dev[3], "hp-new", 64 * KiB, 0, 0x40, PCI_BAR_F_IO);
	cr_assert_eq(pci__register(&pb, &dev[3].pci, -1), 0);
	cr_assert_eq(dev[3].pci.bars[0].addr, b_mem);
	cr_assert_eq(dev[3].pci.bars[2].addr, b_io);
	cr_assert_eq(dev[3].pci.devfn, b_devfn);
	cr_assert_eq(ecam_read((uint8_t)(b_devfn >> 3), PCI_BASE_ADDRESS_0), (uint32_t)b_mem);
	cr_assert_eq(pci__window_used(&pb.mmio32), used32);
	cr_assert_eq(pci__register(&pb, &dev[3].pci, -1), -EBUSY, "registered twice");

	for (i = 0; i < 4; i++)
		if (i != 1)
			cr_assert_eq(pci__unregister(&pb, &dev[i].pci), 0);
	cr_assert_eq(pci__unregister(&pb, &td.pci), 0);
	cr_assert_eq(pci__window_used(&pb.mmio32), 0, "everything given back");
	cr_assert_eq(pci__window_used(&pb.io), 0);
	cr_assert_eq(pb.mmio32.nr_free, 1, "and coalesced into one range");
	cr_assert_eq(pb.io.nr_free, 1);
}

/* the addresses the bump allocator gave before windows could free */
Test(pci, boot_placement_unchanged)
{
	static struct tdev d[6];

	/* fixture: 16 KiB 64-bit BAR at the window base, 32-byte I/O BAR at 0x1000 */
	cr_assert_eq(td.pci.bars[0].addr, PCI_MMIO32_BASE);
	cr_assert_eq(td.pci.bars[2].addr, PCI_IOPORT_BASE);
	tdev_make(&d[0], "a", 4 * KiB, 0, 0x100, PCI_BAR_F_IO);
	tdev_make(&d[1], "b", 1 * MiB, PCI_BAR_F_MEM64, 0x10, PCI_BAR_F_IO);
	tdev_make(&d[2], "c", 4 * KiB, 0, 0, 0);
	tdev_make(&d[3], "d", 256 * MiB, PCI_BAR_F_MEM64 | PCI_BAR_F_PREFETCH, 0, 0);
	tdev_make(&d[4], "e", 256 * MiB, PCI_BAR_F_MEM64, 0, 0);
	tdev_make(&d[5], "f", 512 * MiB, PCI_BAR_F_MEM64, 0, 0);
	for (unsigned int i = 0; i < 6; i++)
		cr_assert_eq(pci__register(&pb, &d[i].pci, -1), 0, "device %u", i);
	cr_assert_eq(d[0].pci.bars[0].addr, PCI_MMIO32_BASE + 16 * KiB);
	cr_assert_eq(d[0].pci.bars[2].addr, 0x1100);
	cr_assert_eq(d[1].pci.bars[0].addr, PCI_MMIO32_BASE + 1 * MiB);
	cr_assert_eq(d[1].pci.bars[2].addr, 0x1200, "not in the padding at 0x1020");
	cr_assert_eq(d[2].pci.bars[0].addr, PCI_MMIO32_BASE + 2 * MiB,
		     "not in the padding at +20 KiB");
	cr_assert_eq(d[3].pci.bars[0].addr, 0xD0000000ULL, "256 MiB still fits below 4 GiB");
	cr_assert_eq(d[4].pci.bars[0].addr, PCI_MMIO64_BASE, "32-bit window full: above 4 GiB");
	cr_assert_eq(d[5].pci.bars[0].addr, PCI_MMIO64_BASE + 512 * MiB, "large BARs above 4 GiB");
	cr_assert_eq(ecam_read((uint8_t)(d[5].pci.devfn >> 3), PCI_BASE_ADDRESS_1),
		     (uint32_t)((PCI_MMIO64_BASE + 512 * MiB) >> 32));
}

Test(pci, failed_register_keeps_no_space)
{
	static struct tdev d;
	uint64_t used32 = pci__window_used(&pb.mmio32);

	/* BAR0 fits, BAR2 (1 GiB, 32-bit only) cannot: BAR0's space is given back */
	tdev_make(&d, "nospace", 64 * KiB, 0, 1 * GiB, 0);
	cr_assert_eq(pci__register(&pb, &d.pci, -1), -ENOSPC);
	cr_assert_eq(pci__window_used(&pb.mmio32), used32);
	cr_assert_eq(d.pci.bars[0].addr, 0);
	cr_assert_eq(pci__cfg_rd32(&d.pci, PCI_BASE_ADDRESS_0), PCI_BASE_ADDRESS_SPACE_MEMORY);
	cr_assert_eq(d.pci.devfn, -1);
}

/* the 64-bit window within the guest's physical address width */
Test(pci, mmio64_window_fits_the_address_width)
{
	uint64_t base, size;

	/* 40 bits and more reach the default window */
	cr_assert_eq(pci__mmio64_place(4 * GiB + 1 * GiB, 40, &base, &size), 0);
	cr_assert_eq(base, PCI_MMIO64_BASE);
	cr_assert_eq(base + size, 1ULL << 40 < PCI_MMIO64_END ? 1ULL << 40 : PCI_MMIO64_END);
	cr_assert_eq(pci__mmio64_place(4 * GiB, 48, &base, &size), 0);
	cr_assert_eq(base, PCI_MMIO64_BASE);
	cr_assert_eq(base + size, PCI_MMIO64_END, "never into the HyperTransport hole");
	/* 39 bits (512 GiB): the default window would be out of reach */
	cr_assert_eq(pci__mmio64_place(4 * GiB + 1 * GiB, 39, &base, &size), 0);
	cr_assert_eq(base + size, 1ULL << 39);
	cr_assert_eq(base, 1ULL << 38, "the upper half");
	/* 36 bits (64 GiB) with 40 GiB of RAM above 4 GiB: above RAM, 1 GiB aligned */
	cr_assert_eq(pci__mmio64_place(44 * GiB + 123, 36, &base, &size), 0);
	cr_assert_eq(base, 45 * GiB);
	cr_assert_eq(base + size, 64 * GiB);
	/* RAM fills the address space: no window */
	cr_assert_eq(pci__mmio64_place(64 * GiB, 36, &base, &size), -ENOSPC);
	cr_assert_eq(pci__mmio64_place(4 * GiB, 31, &base, &size), -EINVAL);
}

Test(pci, mmio64_window_moves_only_while_empty)
{
	cr_assert_eq(pci__bus_set_mmio64(&pb, 1ULL << 38, 1ULL << 38), 0);
	cr_assert_eq(pb.mmio64.base, 1ULL << 38);
	cr_assert_eq(pb.mmio64.end, 1ULL << 39);
	cr_assert_eq(pci__bus_set_mmio64(&pb, 0, 0), 0, "none");
	cr_assert(pb.no_mmio64);
}
