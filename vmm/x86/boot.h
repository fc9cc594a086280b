/* SPDX-License-Identifier: MIT */
/*
 * x86 boot: the 64-bit Linux boot protocol (bzImage), plain ELF64 kernels and
 * tiny test guests, the e820 map, and the BSP register state for a 64-bit entry.
 *
 * Fixed guest-physical layout below 1 MiB:
 *   0x00500  GDT (null, null, CS 0x10 64-bit code, DS 0x18 data, TSS 0x20)
 *   0x00560  IDT (one empty gate, limit 15)
 *   0x07000  boot_params ("zero page")
 *   0x09000  PML4, 0x0A000 PDPT, 0x0B000..0x0EFFF four PDs (identity, 2 MiB pages, 4 GiB)
 *   0x20000  kernel command line (up to 64 KiB)
 *   0x9FC00  EBDA .. 0x100000: reserved in e820 (ACPI tables at 0xE0000)
 * The protected-mode kernel goes at 1 MiB, the initrd page-aligned at the top
 * of low RAM.
 */
#ifndef MINIVMM_VMM_X86_BOOT_H
#define MINIVMM_VMM_X86_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <asm/bootparam.h>
#include "vmm/mem.h"
#include "vmm/util.h"

struct kvm_sregs;

#define X86_BOOT_GDT_GPA 0x500ULL
#define X86_BOOT_GDT_ENTRIES 6
#define X86_BOOT_IDT_GPA 0x560ULL
#define X86_BOOT_PARAMS_GPA 0x7000ULL
#define X86_BOOT_PML4_GPA 0x9000ULL
#define X86_BOOT_PDPT_GPA 0xA000ULL
#define X86_BOOT_PD_GPA 0xB000ULL /* 4 pages */
#define X86_BOOT_CMDLINE_GPA 0x20000ULL
#define X86_BOOT_CMDLINE_MAX 0x10000ULL /* including the NUL */
#define X86_BOOT_LOW_RESERVED_END 0x30000ULL /* [0, this) holds the structures above */
#define X86_BOOT_EBDA_START 0x9FC00ULL
#define X86_BOOT_HIMEM_START 0x100000ULL
#define X86_BOOT_KERNEL_GPA 0x100000ULL

#define X86_BOOT_SEL_CODE 0x10
#define X86_BOOT_SEL_DATA 0x18
#define X86_BOOT_SEL_TSS 0x20

/* e820 types */
#define X86_E820_RAM 1
#define X86_E820_RESERVED 2

struct x86_boot_info {
	uint64_t entry;
	uint64_t boot_params_gpa;
	uint64_t initrd_gpa, initrd_size;
	uint64_t cmdline_gpa;
	bool elf;
	/* an ELF kernel moved by KASLR: where it runs (0 and 0: its link-time addresses) */
	uint64_t kaslr_phys_delta, kaslr_virt_delta;
	uint64_t kaslr_phys_slots, kaslr_virt_slots;
	/* where the load's time went (ms; the boot-phase log line, docs/benchmarks.md) */
	double copy_ms;  /* the kernel's segments into guest RAM, their bss zeroed */
	double reloc_ms; /* KASLR's relocations applied */
};

/*
 * KASLR for an ELF kernel that came out of a bzImage (--decompress host;
 * vmm/x86/kaslr.h): the bzImage's setup header fields, and the randomness.
 */
struct x86_boot_kaslr {
	uint64_t align;     /* kernel_alignment: CONFIG_PHYSICAL_ALIGN */
	uint64_t init_size; /* init_size: the RAM the kernel needs from its start */
	uint64_t rnd[2];    /* random numbers: the physical slot, the virtual slot */
};

/*
 * Loads a bzImage (boot protocol >= 2.12 with XLF_KERNEL_64) or an ELF64
 * ET_EXEC x86-64 image, the initrd (may be NULL/0) and the command line (may
 * be NULL), and builds boot_params at X86_BOOT_PARAMS_GPA with the e820 map;
 * rsdp_gpa (0 = none) goes into boot_params.acpi_rsdp_addr. kaslr (may be
 * NULL: none) randomizes an ELF kernel's physical and virtual addresses, as
 * the bzImage's decompressor would have, unless the command line says
 * nokaslr; a bzImage randomizes itself. Returns 0, -ENOEXEC (not a kernel we
 * can boot), -EINVAL (malformed/truncated image or arguments), -E2BIG
 * (command line too long) or -ENOMEM (does not fit in RAM).
 */
int x86_boot__load(struct guest_mem *m, const void *kernel, size_t klen, const void *initrd,
		   size_t ilen, const char *cmdline, uint64_t rsdp_gpa,
		   const struct x86_boot_kaslr *kaslr, struct x86_boot_info *bi) __must_check;

/* the e820 map for m (sorted, non-overlapping); returns the number of entries written */
size_t x86_boot__build_e820(const struct guest_mem *m, struct boot_e820_entry *out, size_t max);

/* writes the GDT, IDT and identity page tables into guest RAM (0 or -EFAULT) */
int x86_boot__write_tables(struct guest_mem *m) __must_check;
/* fills the long-mode control/segment registers matching x86_boot__write_tables() */
void x86_boot__fill_sregs(struct kvm_sregs *s);

/* BSP state for the 64-bit entry: tables, sregs, RIP = entry, RSI = boot_params */
int x86_boot__setup_vcpu(int vcpu_fd, struct guest_mem *m, const struct x86_boot_info *bi) __must_check;

#endif
