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
