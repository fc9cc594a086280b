/* SPDX-License-Identifier: MIT */
/*
 * ACPI fixed hardware (the parts a full, non hardware-reduced FADT points at).
 * The board places it (struct pm_config; the x86 board uses
 * vmm/x86/platform.h, which the ACPI tables describe):
 *  - PM1a event block at evt_port, PM_EVT_LEN bytes: PM1_STS (2 bytes, write
 *    1 to clear) then PM1_EN (2 bytes);
 *  - PM1a control block at cnt_port, PM_CNT_LEN bytes: SCI_EN always reads 1
 *    (the machine is always in ACPI mode, no SMI_CMD needed); writing SLP_EN
 *    with SLP_TYP == slp_typ_s5 powers off (VM_EXIT_POWEROFF), other sleep
 *    types are logged and ignored (the \_S5 package in the DSDT must give the
 *    same slp_typ_s5);
 *  - the reset control register at port PM_RESET_PORT (0xCF9, inside the PCI
 *    CF8 dword, so it is reached through pci__set_cf9_handler()): a write
 *    with bit 2 (RST_CPU) set, such as PM_RESET_VALUE or 0x0E, resets
 *    (VM_EXIT_RESET). The FADT RESET_REG should name it with PM_RESET_VALUE.
 * The SCI is sci_irq, driven as a level while (PM1_STS & PM1_EN) has a
 * bit set; only the power button (pm__power_button) ever sets a status bit.
 * There is no PM timer and no GPE block.
 */
#ifndef MINIVMM_DEVICES_PM_H
#define MINIVMM_DEVICES_PM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/log.h"
#include "vmm/device.h"
#include "vmm/util.h"

struct vm;

#define PM_EVT_LEN 4
#define PM_CNT_LEN 2
#define PM_RESET_PORT 0xcf9
#define PM_RESET_VALUE 0x06

/* PM1_STS / PM1_EN bits */
#define PM1_TMR 0x0001
#define PM1_GBL 0x0020
#define PM1_PWRBTN 0x0100
#define PM1_SLPBTN 0x0200
#define PM1_RTC 0x0400
#define PM1_WAK_STS 0x8000
/* PM1_CNT bits */
#define PM1_CNT_SCI_EN 0x0001
#define PM1_CNT_SLP_TYP_SHIFT 10
#define PM1_CNT_SLP_TYP_MASK (7u << PM1_CNT_SLP_TYP_SHIFT)
#define PM1_CNT_SLP_EN 0x2000

struct pm_config {
	uint16_t evt_port;      /* PM1a event block, PM_EVT_LEN bytes */
	uint16_t cnt_port;      /* PM1a control block, PM_CNT_LEN bytes */
	uint32_t sci_irq;       /* ISA IRQ of the SCI */
	unsigned int slp_typ_s5; /* SLP_TYP that powers off (the DSDT's \_S5_) */
};

struct pm {
	struct vm *vm;
	struct vmm_device dev;       /* the device model (vmm/device.h) */
	struct pm_config cfg;
	pthread_mutex_t lock;
	bool evt_registered, cnt_registered, cf9_hooked;

	uint16_t sts, en, cnt;
	uint8_t reset_reg;   /* last value written to 0xCF9 (bits 1-3) */
	bool sci_level;
	struct log_ratelimit rl;
};

/* registers the PM1a event and control blocks and hooks port 0xCF9 on vm->pci */
int pm__create(struct vm *vm, const struct pm_config *cfg, struct pm **out) __must_check;
/* removes the ranges and the 0xCF9 hook (waiting for running handlers); NULL is a no-op */
void pm__destroy(struct pm *pm);

/* presses the power button: sets PWRBTN_STS and raises the SCI when PWRBTN_EN is set */
void pm__power_button(struct pm *pm);

#endif
