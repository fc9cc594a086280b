// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "devices/pm.h"
#include "vmm/kvm.h"
#include "vmm/log.h"

static struct vm vm;
static struct pm *pm;

static void setup(void)
{
	cr_assert_eq(kvm__vm_init_fake(&vm, 16 * MiB), 0);
	cr_assert_eq(pm__create(&vm, &pm), 0);
}

static void teardown(void)
{
	pm__destroy(pm);
	kvm__vm_destroy(&vm);
}

TestSuite(pm, .init = setup, .fini = teardown);

static void outw(uint16_t port, uint16_t v)
{
	uint8_t d[2] = { v & 0xff, v >> 8 };

	cr_assert_eq(bus__dispatch(&vm.pio, port, d, 2, true), 0);
}

static uint16_t inw(uint16_t port)
{
	uint8_t d[2] = { 0 };

	cr_assert_eq(bus__dispatch(&vm.pio, port, d, 2, false), 0);
	return (uint16_t)(d[0] | d[1] << 8);
}

static void outb(uint16_t port, uint8_t v)
{
	cr_assert_eq(bus__dispatch(&vm.pio, port, &v, 1, true), 0);
}

static uint8_t inb(uint16_t port)
{
	uint8_t v = 0;

	cr_assert_eq(bus__dispatch(&vm.pio, port, &v, 1, false), 0);
	return v;
}

#define SLP(typ) (PM1_CNT_SLP_EN | (typ) << PM1_CNT_SLP_TYP_SHIFT)

Test(pm, s5_powers_off)
{
	cr_assert_eq(PM_EVT_PORT, 0x600);
	cr_assert_eq(PM_CNT_PORT, 0x604);
	outw(PM_CNT_PORT, SLP(PM_SLP_TYP_S5) | PM1_CNT_SCI_EN);
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_EXIT_POWEROFF);
}

Test(pm, s5_by_byte_write)
{
	outb(PM_CNT_PORT + 1, (uint8_t)(SLP(PM_SLP_TYP_S5) >> 8));
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_EXIT_POWEROFF);
}

Test(pm, other_sleep_types_ignored)
{
	unsigned int typ;

	log__set_level(-1);
	for (typ = 0; typ < 8; typ++) {
		if (typ == PM_SLP_TYP_S5)
			continue;
		outw(PM_CNT_PORT, SLP(typ));
		cr_assert_eq(atomic_load(&vm.exit_reason), VM_RUNNING, "SLP_TYP %u", typ);
		cr_assert_eq(inw(PM_CNT_PORT), (typ << PM1_CNT_SLP_TYP_SHIFT) | PM1_CNT_SCI_EN,
			     "SLP_EN reads 0, SLP_TYP kept, SCI_EN 1");
	}
	log__set_level(LOG_INFO);
	/* SLP_TYP 5 without SLP_EN does nothing either */
	outw(PM_CNT_PORT, PM_SLP_TYP_S5 << PM1_CNT_SLP_TYP_SHIFT);
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_RUNNING);
}

Test(pm, sci_en_always_set)
{
	cr_assert_eq(inw(PM_CNT_PORT) & PM1_CNT_SCI_EN, PM1_CNT_SCI_EN);
	outw(PM_CNT_PORT, 0);
	cr_assert_eq(inw(PM_CNT_PORT) & PM1_CNT_SCI_EN, PM1_CNT_SCI_EN);
	cr_assert_eq(inb(PM_CNT_PORT) & PM1_CNT_SCI_EN, PM1_CNT_SCI_EN);
}

Test(pm, cf9_reset)
{
	cr_assert_eq(PM_RESET_PORT, 0xcf9);
	outb(PM_RESET_PORT, 0x02); /* SYS_RST alone only selects the reset type */
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_RUNNING);
	cr_assert_eq(inb(PM_RESET_PORT), 0x02);
	outb(PM_RESET_PORT, PM_RESET_VALUE);
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_EXIT_RESET);
	cr_assert_eq(inb(PM_RESET_PORT) & 0x04, 0, "RST_CPU does not stick");
}

Test(pm, cf9_full_reset_value)
{
	outb(PM_RESET_PORT, 0x0e);
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_EXIT_RESET);
}

Test(pm, pm1_sts_write_one_to_clear)
{
	cr_assert_eq(inw(PM_EVT_PORT), 0);
	pm__power_button(pm);
	cr_assert_eq(inw(PM_EVT_PORT), PM1_PWRBTN);
	cr_assert_not(pm->sci_level, "PWRBTN_EN is clear: no SCI");
	outw(PM_EVT_PORT + 2, PM1_PWRBTN);
	cr_assert_eq(inw(PM_EVT_PORT + 2), PM1_PWRBTN);
	cr_assert(pm->sci_level, "status & enable raises the SCI");
	outw(PM_EVT_PORT, 0);
	cr_assert_eq(inw(PM_EVT_PORT), PM1_PWRBTN, "writing 0 keeps the bit");
	outw(PM_EVT_PORT, (uint16_t)~PM1_PWRBTN);
	cr_assert_eq(inw(PM_EVT_PORT), PM1_PWRBTN, "writing 1 elsewhere keeps it");
	outw(PM_EVT_PORT, PM1_PWRBTN);
	cr_assert_eq(inw(PM_EVT_PORT), 0, "writing 1 clears it");
	cr_assert_not(pm->sci_level);
	cr_assert_eq(inw(PM_EVT_PORT + 2), PM1_PWRBTN, "enable untouched");

	/* a dword access covers STS and EN */
	pm__power_button(pm);
	{
		uint8_t d[4] = { 0x00, 0x01, 0x00, 0x00 };

		cr_assert_eq(bus__dispatch(&vm.pio, PM_EVT_PORT, d, 4, true), 0);
		cr_assert_eq(bus__dispatch(&vm.pio, PM_EVT_PORT, d, 4, false), 0);
		cr_assert_eq(d[0] | d[1] << 8 | d[2] << 16 | d[3] << 24, 0);
	}
}

Test(pm, junk)
{
	uint8_t d[4];
	unsigned int off, v;

	log__set_level(-1);
	for (off = 0; off < 4; off++)
		for (v = 0; v < 0x100; v += 5) {
			memset(d, (int)v, sizeof(d));
			(void)bus__dispatch(&vm.pio, PM_EVT_PORT + off, d, 4 - off, true);
			(void)bus__dispatch(&vm.pio, PM_EVT_PORT + off, d, 4 - off, false);
			if (off < 2) {
				/* never SLP_EN (bit 5 of the high byte) */
				d[0] = (uint8_t)(off ? v & ~0x20 : v);
				d[1] = (uint8_t)(v & ~0x20);
				(void)bus__dispatch(&vm.pio, PM_CNT_PORT + off, d, 2 - off, true);
			}
		}
	log__set_level(LOG_INFO);
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_RUNNING);
	cr_assert_eq(bus__dispatch(&vm.pio, PM_CNT_PORT, d, 4, true), -ENOENT);
}
