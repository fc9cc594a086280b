// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "devices/pm.h"
#include "vmm/kvm.h"
#include "vmm/log.h"
#include "vmm/x86/platform.h"

/* placed as the x86 board places it */
#define EVT X86_PM1A_EVT_PORT
#define CNT X86_PM1A_CNT_PORT
#define S5 X86_SLP_TYP_S5

static const struct pm_config cfg = {
	.evt_port = EVT,
	.cnt_port = CNT,
	.sci_irq = X86_SCI_IRQ,
	.slp_typ_s5 = S5,
};
static struct vm vm;
static struct pm *pm;

static void setup(void)
{
	cr_assert_eq(kvm__vm_init_fake(&vm, 16 * MiB), 0);
	cr_assert_eq(pm__create(&vm, &cfg, &pm), 0);
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
	cr_assert_eq(EVT, 0x600);
	cr_assert_eq(CNT, 0x604);
	cr_assert_eq(S5, 5);
	outw(CNT, SLP(S5) | PM1_CNT_SCI_EN);
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_EXIT_POWEROFF);
}

Test(pm, s5_by_byte_write)
{
	outb(CNT + 1, (uint8_t)(SLP(S5) >> 8));
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_EXIT_POWEROFF);
}

Test(pm, other_sleep_types_ignored)
{
	unsigned int typ;

	log__set_level(-1);
	for (typ = 0; typ < 8; typ++) {
		if (typ == S5)
			continue;
		outw(CNT, SLP(typ));
		cr_assert_eq(atomic_load(&vm.exit_reason), VM_RUNNING, "SLP_TYP %u", typ);
		cr_assert_eq(inw(CNT), (typ << PM1_CNT_SLP_TYP_SHIFT) | PM1_CNT_SCI_EN,
			     "SLP_EN reads 0, SLP_TYP kept, SCI_EN 1");
	}
	log__set_level(LOG_INFO);
	/* SLP_TYP 5 without SLP_EN does nothing either */
	outw(CNT, S5 << PM1_CNT_SLP_TYP_SHIFT);
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_RUNNING);
}

Test(pm, sci_en_always_set)
{
	cr_assert_eq(inw(CNT) & PM1_CNT_SCI_EN, PM1_CNT_SCI_EN);
	outw(CNT, 0);
	cr_assert_eq(inw(CNT) & PM1_CNT_SCI_EN, PM1_CNT_SCI_EN);
	cr_assert_eq(inb(CNT) & PM1_CNT_SCI_EN, PM1_CNT_SCI_EN);
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
	cr_assert_eq(inw(EVT), 0);
	pm__power_button(pm);
	cr_assert_eq(inw(EVT), PM1_PWRBTN);
	cr_assert_not(pm->sci_level, "PWRBTN_EN is clear: no SCI");
	outw(EVT + 2, PM1_PWRBTN);
	cr_assert_eq(inw(EVT + 2), PM1_PWRBTN);
	cr_assert(pm->sci_level, "status & enable raises the SCI");
	outw(EVT, 0);
	cr_assert_eq(inw(EVT), PM1_PWRBTN, "writing 0 keeps the bit");
	outw(EVT, (uint16_t)~PM1_PWRBTN);
	cr_assert_eq(inw(EVT), PM1_PWRBTN, "writing 1 elsewhere keeps it");
	outw(EVT, PM1_PWRBTN);
	cr_assert_eq(inw(EVT), 0, "writing 1 clears it");
	cr_assert_not(pm->sci_level);
	cr_assert_eq(inw(EVT + 2), PM1_PWRBTN, "enable untouched");

	/* a dword access covers STS and EN */
	pm__power_button(pm);
	{
		uint8_t d[4] = { 0x00, 0x01, 0x00, 0x00 };

		cr_assert_eq(bus__dispatch(&vm.pio, EVT, d, 4, true), 0);
		cr_assert_eq(bus__dispatch(&vm.pio, EVT, d, 4, false), 0);
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
			(void)bus__dispatch(&vm.pio, EVT + off, d, 4 - off, true);
			(void)bus__dispatch(&vm.pio, EVT + off, d, 4 - off, false);
			if (off < 2) {
				/* never SLP_EN (bit 5 of the high byte) */
				d[0] = (uint8_t)(off ? v & ~0x20 : v);
				d[1] = (uint8_t)(v & ~0x20);
				(void)bus__dispatch(&vm.pio, CNT + off, d, 2 - off, true);
			}
		}
	log__set_level(LOG_INFO);
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_RUNNING);
	cr_assert_eq(bus__dispatch(&vm.pio, CNT, d, 4, true), -ENOENT);
}

Test(pm, placed_where_the_board_says)
{
	const struct pm_config other = {
		.evt_port = 0xb000, .cnt_port = 0xb004, .sci_irq = 10, .slp_typ_s5 = 7,
	};
	const struct pm_config bad = { .evt_port = 0xfffe, .cnt_port = CNT, .slp_typ_s5 = S5 };
	struct vm vm2;
	struct pm *pm2;
	uint8_t d[2] = { 0 };

	cr_assert_eq(pm__create(&vm, &bad, &pm2), -EINVAL, "event block past 0xffff");
	cr_assert_eq(pm__create(&vm, NULL, &pm2), -EINVAL);
	cr_assert_eq(kvm__vm_init_fake(&vm2, 16 * MiB), 0);
	cr_assert_eq(pm__create(&vm2, &other, &pm2), 0);
	cr_assert_eq(bus__dispatch(&vm2.pio, EVT, d, 2, false), -ENOENT);
	cr_assert_eq(bus__dispatch(&vm2.pio, 0xb000, d, 2, false), 0);
	log__set_level(-1);
	d[0] = 0;
	d[1] = (uint8_t)(SLP(S5) >> 8);
	cr_assert_eq(bus__dispatch(&vm2.pio, 0xb004, d, 2, true), 0);
	log__set_level(LOG_INFO);
	cr_assert_eq(atomic_load(&vm2.exit_reason), VM_RUNNING, "type 5 is not S5 here");
	d[1] = (uint8_t)(SLP(7) >> 8);
	cr_assert_eq(bus__dispatch(&vm2.pio, 0xb004, d, 2, true), 0);
	cr_assert_eq(atomic_load(&vm2.exit_reason), VM_EXIT_POWEROFF);
	pm__destroy(pm2);
	kvm__vm_destroy(&vm2);
}
