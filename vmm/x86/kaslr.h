/* SPDX-License-Identifier: MIT */
/*
 * KASLR for a kernel that minivmm decompressed (--decompress host).
 *
 * A bzImage's own decompressor randomizes where the kernel runs before it
 * jumps to it (the kernel's arch/x86/boot/compressed/kaslr.c and misc.c): a
 * physical address for the image and, on x86-64 separately, a virtual
 * offset inside the kernel's 1 GiB text mapping, applied through the
 * relocation table that the build appends to the compressed vmlinux
 * (CONFIG_X86_NEED_RELOCS, which x86-64 has with CONFIG_RANDOMIZE_BASE).
 * Booting the ELF directly skips that code, so minivmm does the same work on
 * the host: the guest keeps its KASLR, and the kernel is told so
 * (KASLR_FLAG in boot_params, which also turns on its own randomization of
 * the direct map, vmalloc and vmemmap regions). "nokaslr" on the command
 * line turns it off, as it does for the kernel's decompressor.
 *
 * The table follows the ELF's own bytes in the decompressed payload; read
 * backwards from its end, as the kernel reads it:
 *   0, 64-bit relocations, 0, inverse 32-bit relocations, 0, 32-bit relocations
 * each entry the link-time virtual address of a location, 32 bits that are
 * sign-extended (0x81000010 is 0xffffffff81000010).
 *
 * Everything here is pure logic over untrusted bytes: every entry is checked
 * to point inside the image before any is applied.
 */
#ifndef MINIVMM_VMM_X86_KASLR_H
#define MINIVMM_VMM_X86_KASLR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vmm/util.h"

/* __START_KERNEL_map: where the kernel's text mapping starts */
#define X86_KASLR_START_KERNEL_MAP 0xffffffff80000000ULL
/* KERNEL_IMAGE_SIZE with CONFIG_RANDOMIZE_BASE: the virtual window the image moves in */
#define X86_KASLR_IMAGE_SIZE (1 * GiB)
/* MIN_KERNEL_ALIGN: no smaller alignment for either address */
#define X86_KASLR_MIN_ALIGN (2 * MiB)

struct x86_kaslr_relocs {
	const uint8_t *table; /* the first word: the 64-bit list's terminator */
	size_t n64, ninv32, n32;
};

/*
 * Finds the relocation table after the ELF in buf (len bytes: the whole
 * decompressed payload). Returns 0, -ENOENT when there is none (a kernel
 * built without RANDOMIZE_BASE: it runs at its link-time virtual address)
 * or -EINVAL when the ELF's headers or the table are malformed.
 */
int x86_kaslr__find_relocs(const void *buf, size_t len, struct x86_kaslr_relocs *r) __must_check;

/*
 * Moves the kernel's virtual addresses by delta (the chosen virtual base
 * minus the link-time one, a multiple of X86_KASLR_MIN_ALIGN): image holds
 * the kernel as it lies in memory, byte 0 at its link-time physical address
 * load_addr (which its virtual address __START_KERNEL_map + load_addr maps),
 * image_len bytes of it covered by the ELF's file data. Returns 0, or
 * -EINVAL (and changes nothing) when an entry points outside image_len.
 */
int x86_kaslr__apply(uint8_t *image, uint64_t image_len, uint64_t load_addr, uint64_t delta,
		     const struct x86_kaslr_relocs *r) __must_check;

/*
 * A base for an object of size bytes, aligned to align (a power of two),
 * inside [lo, hi): one of the possible slots, chosen by rnd. Returns
 * UINT64_MAX when not even one fits; *slots (may be NULL) says how many
 * there were.
 */
uint64_t x86_kaslr__slot(uint64_t lo, uint64_t hi, uint64_t size, uint64_t align, uint64_t rnd,
			 uint64_t *slots);

/* whether cmdline turns KASLR off ("nokaslr" as a word of it) */
bool x86_kaslr__disabled(const char *cmdline);

#endif
