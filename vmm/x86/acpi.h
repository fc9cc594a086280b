/* SPDX-License-Identifier: MIT */
/*
 * ACPI tables for the x86 board: RSDP (v2), XSDT, FADT (rev 6, full hardware
 * model with a PM1a event/control block, reset register, FACS), MADT, MCFG
 * and a DSDT describing \_SB.PCI0 (PNP0A08 host bridge with its windows),
 * \_SB.COM1 and \_S5_ (plus, on request, the ACPI PCI hot-plug AML and a
 * GPE0 block). Fixed ports, IRQs and the S5 sleep type come from
 * vmm/x86/platform.h, which the board also gives the devices.
 *
 * Layout from base_gpa: RSDP, XSDT, FADT, FACS (64-byte aligned), MADT, MCFG,
 * DSDT, each 16-byte aligned. Linux finds the RSDP through boot_params
 * (protocol 2.14+) or by scanning 0xE0000-0xFFFFF.
 */
#ifndef MINIVMM_VMM_X86_ACPI_H
#define MINIVMM_VMM_X86_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vmm/mem.h"
#include "vmm/util.h"

#define X86_ACPI_BASE_GPA 0xE0000ULL
#define X86_ACPI_END_GPA 0x100000ULL
#define X86_ACPI_IOAPIC_ADDR 0xFEC00000U
#define X86_ACPI_LAPIC_ADDR 0xFEE00000U

struct x86_acpi_config {
	unsigned int nr_vcpus;       /* 1..254 */
	uint64_t ecam_base;
	uint64_t ecam_size;          /* multiple of 1 MiB, at most 256 buses */
	uint64_t mmio32_base, mmio32_size;
	uint64_t mmio64_base, mmio64_size; /* size 0: no 64-bit window */
	uint16_t io_base, io_size;   /* PCI I/O BAR pool; must lie inside 0x0D00-0xFFFF */
	uint16_t pm1a_evt_port;      /* 4 bytes: PM1_STS, PM1_EN */
	uint16_t pm1a_cnt_port;      /* 2 bytes: PM1_CNT (SLP_TYP 5 + SLP_EN = poweroff) */
	uint16_t reset_port;
	uint8_t reset_value;
	uint8_t sci_irq;
	bool com1;                   /* a 16550A at X86_COM1_BASE, X86_COM1_IRQ (vmm/x86/platform.h) */
	/*
	 * an i8042 with a keyboard port and no AUX (mouse) port at
	 * X86_I8042_DATA_PORT/CMD_PORT, IRQ X86_I8042_KBD_IRQ: described as
	 * PNP0303 so Linux finds it through PNP and, seeing no PNP0F13, does not
	 * probe an AUX port that would only time out
	 */
	bool kbd;
	/*
	 * ACPI PCI hot-plug (devices/hotplug.h), 0 = none: the register block
	 * (PCIU, PCID, B0EJ, PCRM; X86_ACPI_HOTPLUG_LEN bytes) and the GPE0
	 * block (GPE0_STS, GPE0_EN; X86_ACPI_GPE0_LEN bytes). With hotplug_port
	 * set, the DSDT gets \_SB.PCI0.PCNT, Device S01..S1F (_ADR, _SUN, _EJ0)
	 * and \_GPE._E01, and the FADT the GPE0 block (gpe0_port is then
	 * required); with both 0 the tables are what they were without them.
	 */
	uint16_t hotplug_port;
	uint16_t gpe0_port;
};

#define X86_ACPI_HOTPLUG_LEN 0x10
#define X86_ACPI_GPE0_LEN 4

/* pure: writes the tables into buf (guest address base_gpa); *used = bytes written */
int x86_acpi__build_tables(uint8_t *buf, size_t len, uint64_t base_gpa,
			   const struct x86_acpi_config *c, uint64_t *rsdp_gpa,
			   size_t *used) __must_check;

/* builds the tables at X86_ACPI_BASE_GPA in guest RAM */
int x86_acpi__build(struct guest_mem *m, const struct x86_acpi_config *c,
		    uint64_t *rsdp_gpa) __must_check;

#endif
