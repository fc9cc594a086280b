/* SPDX-License-Identifier: MIT */
/*
 * The fixed resources of minivmm's x86 PC machine: the one place where the
 * board (vmm/board.c, which wires the devices), the ACPI tables
 * (vmm/x86/acpi.c, which describe them to the guest) and the device models
 * agree on ports and ISA IRQs.
 *
 * Resources the board chooses (a UART's base and IRQ, the ACPI PM block, the
 * SCI, the S5 sleep type) are passed by the board to the device's create
 * function and to the ACPI config; resources that only exist at one address
 * on a PC (the i8042 at 0x60/0x64, the CMOS RTC at 0x70/0x71) are taken from
 * here by the device itself.
 */
#ifndef MINIVMM_VMM_X86_PLATFORM_H
#define MINIVMM_VMM_X86_PLATFORM_H

/* COM1: 16550A, 8 registers; DSDT \_SB.COM1 */
#define X86_COM1_BASE 0x3f8
#define X86_COM1_IRQ 4

/* i8042 keyboard controller, keyboard port only (no AUX, so no IRQ 12); DSDT \_SB.PS2K */
#define X86_I8042_DATA_PORT 0x60
#define X86_I8042_CMD_PORT 0x64
#define X86_I8042_KBD_IRQ 1

/* MC146818 CMOS RTC: index, then data (no IRQ 8 is raised) */
#define X86_RTC_INDEX_PORT 0x70
#define X86_RTC_DATA_PORT 0x71

/* ACPI fixed hardware: PM1a event and control blocks (FADT), the SCI (FADT, MADT override) */
#define X86_PM1A_EVT_PORT 0x600
#define X86_PM1A_CNT_PORT 0x604
#define X86_SCI_IRQ 9
/* SLP_TYP the DSDT's \_S5_ package tells the guest to write for soft-off */
#define X86_SLP_TYP_S5 5

/*
 * ACPI PCI hot-plug (devices/hotplug.h, with --api only): the register block
 * (16 bytes: PCIU, PCID, B0EJ, PCRM; DSDT \_SB.PCI0.PCST) at q35's 0x0CC4,
 * not QEMU's PIIX 0xAE00, which lies in the PCI I/O BAR pool
 * (PCI_IOPORT_BASE..0xFFFF) and in the bridge's 0x0D00-0xFFFF window; and
 * the GPE0 block (4 bytes: GPE0_STS, GPE0_EN; FADT) at q35's PMBASE + 0x20.
 */
#define X86_HOTPLUG_PORT 0x0cc4
#define X86_GPE0_PORT 0x0620

#endif
