// SPDX-License-Identifier: MIT
/*
 * The kernel loader (vmm/x86/boot.c) with minivmm's KASLR (vmm/x86/kaslr.c):
 * the input is a kernel file as a disk image or --kernel hands it over (a
 * bzImage, or the ELF that --decompress host took out of one, with its
 * relocation table after it), all of it the attacker's. Layout:
 *   u64 rnd[2]  the KASLR slots' random numbers
 *   u8 flags    bit 0: KASLR on; bit 1: an initrd (64 KiB); bit 2: "nokaslr"
 *   u32 align   the setup header's kernel_alignment (as the bzImage gave it)
 *   u32 init_size
 *   the kernel file
 * Guest RAM is 48 MiB (a kernel-shaped ELF is linked at 16 MiB).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fuzz.h"
#include "vmm/mem.h"
#include "vmm/x86/boot.h"

#define FUZZ_RAM (48 * MiB)

static uint8_t *ram;
static struct guest_mem mem;
static uint8_t initrd[64 * 1024];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	ram = mmap(NULL, FUZZ_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (ram == MAP_FAILED || mem__init_from_buffer(&mem, ram, 0, FUZZ_RAM))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct x86_boot_kaslr ka;
	struct x86_boot_info bi;
	struct fuzz_in in;
	uint32_t align, init_size;
	uint8_t flags;
	int ret;

	fuzz_in_init(&in, data, size);
	fuzz_bytes(&in, ka.rnd, sizeof(ka.rnd));
	fuzz_bytes(&in, &flags, 1);
	fuzz_bytes(&in, &align, 4);
	fuzz_bytes(&in, &init_size, 4);
	ka.align = align;
	ka.init_size = init_size;
	ret = x86_boot__load(&mem, in.p, in.n, (flags & 2) ? initrd : NULL, (flags & 2) ? sizeof(initrd) : 0,
			     (flags & 4) ? "console=ttyS0 nokaslr" : "console=ttyS0", 0,
			     (flags & 1) ? &ka : NULL, &bi);
	if (ret)
		return 0;
	/* what it loaded is where it said, inside RAM, clear of the initrd */
	if (!bi.entry || bi.entry >= FUZZ_RAM || bi.boot_params_gpa != X86_BOOT_PARAMS_GPA)
		abort();
	if (bi.initrd_size && (bi.initrd_gpa + bi.initrd_size > FUZZ_RAM || bi.initrd_gpa < MiB))
		abort();
	if (!(flags & 1) && (bi.kaslr_phys_delta || bi.kaslr_virt_delta))
		abort(); /* nothing moves unless asked */
	return 0;
}
