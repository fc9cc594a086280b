// SPDX-License-Identifier: MIT
/*
 * KASLR for a kernel minivmm decompressed (vmm/x86/kaslr.h): the relocation
 * table after the ELF, applying it, the slots, "nokaslr", and the ELF loader
 * moving a kernel-shaped image (linked at 16 MiB and 0xffffffff81000000).
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "elf_ehdr.h"
#include "guest_ram.h"
#include "vmm/mem.h"
#include "vmm/x86/boot.h"
#include "vmm/x86/kaslr.h"

#define LOAD (16 * MiB)
#define VBASE (X86_KASLR_START_KERNEL_MAP + LOAD) /* _text */
#define TEXT 0x4000    /* file bytes of the one segment */
#define MEMSZ 0x10000  /* with its bss */
#define NSHDR 3

/* where the fake kernel holds values to relocate */
#define AT32 0x100   /* a 32-bit absolute address (sign-extended) */
#define ATINV 0x200  /* a 32-bit value the kernel subtracts its offset from */
#define AT64 0x300   /* a 64-bit absolute address */

struct kimg {
	uint8_t *b;
	size_t len, elf_len;
};

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/*
 * A kernel-shaped ELF: one PT_LOAD at paddr LOAD, vaddr VBASE, TEXT bytes
 * of file data then bss, the section headers at the end of the file (as
 * objcopy writes vmlinux.bin), then the relocation table of n64, ninv, n32
 * entries (AT64, ATINV, AT32 repeated 8 bytes apart), or none (table=false).
 */
static struct kimg make_kernel(bool table, size_t n64, size_t ninv, size_t n32)
{
	size_t data = 0x1000, shoff = data + TEXT, elf_len = shoff + NSHDR * sizeof(Elf64_Shdr);
	size_t tab = table ? 4 * (3 + n64 + ninv + n32) : 0, i, w = 0;
	struct kimg k = { calloc(1, elf_len + tab), elf_len + tab, elf_len };
	Elf64_Ehdr *eh = (Elf64_Ehdr *)k.b;
	Elf64_Phdr *ph = (Elf64_Phdr *)(k.b + sizeof(*eh));
	uint8_t *t = k.b + elf_len;
	uint64_t v64;

	cr_assert(k.b);
	elf_ehdr_fill(eh, LOAD, 1); /* entry startup_64: physical, as vmlinux has it */
	eh->e_shoff = shoff;
	eh->e_shentsize = sizeof(Elf64_Shdr);
	eh->e_shnum = NSHDR;
	ph->p_type = PT_LOAD;
	ph->p_flags = PF_R | PF_X;
	ph->p_offset = data;
	ph->p_vaddr = VBASE;
	ph->p_paddr = LOAD;
	ph->p_filesz = TEXT;
	ph->p_memsz = MEMSZ;
	ph->p_align = 2 * MiB;
	/* the values the relocations fix: addresses of things in the image */
	for (i = 0; i < 16; i++) {
		put32(k.b + data + AT32 + i * 8, (uint32_t)(VBASE + 0x40 + i));
		put32(k.b + data + ATINV + i * 8, (uint32_t)(0x1000 + i));
		v64 = VBASE + 0x80 + i;
		memcpy(k.b + data + AT64 + i * 8, &v64, 8);
	}
	if (!table)
		return k;
	put32(t + 4 * w++, 0);
	for (i = 0; i < n64; i++)
		put32(t + 4 * w++, (uint32_t)(VBASE + AT64 + i * 8));
	put32(t + 4 * w++, 0);
	for (i = 0; i < ninv; i++)
		put32(t + 4 * w++, (uint32_t)(VBASE + ATINV + i * 8));
	put32(t + 4 * w++, 0);
	for (i = 0; i < n32; i++)
		put32(t + 4 * w++, (uint32_t)(VBASE + AT32 + i * 8));
	return k;
}

Test(kaslr, finds_the_table_after_the_elf)
{
	struct kimg k = make_kernel(true, 3, 2, 5);
	struct x86_kaslr_relocs r;

	cr_assert_eq(x86_kaslr__find_relocs(k.b, k.len, &r), 0);
	cr_assert_eq(r.n64, 3);
	cr_assert_eq(r.ninv32, 2);
	cr_assert_eq(r.n32, 5);
	cr_assert_eq(r.table, k.b + k.elf_len);
	free(k.b);

	k = make_kernel(true, 0, 0, 0);
	cr_assert_eq(x86_kaslr__find_relocs(k.b, k.len, &r), 0, "three empty lists");
	cr_assert_eq(r.n64 + r.ninv32 + r.n32, 0);
	free(k.b);

	k = make_kernel(false, 0, 0, 0);
	cr_assert_eq(x86_kaslr__find_relocs(k.b, k.len, &r), -ENOENT, "no table: not RANDOMIZE_BASE");
	free(k.b);
}

Test(kaslr, refuses_a_malformed_table)
{
	struct kimg k = make_kernel(true, 3, 2, 5);
	struct x86_kaslr_relocs r;
	uint8_t *t = k.b + k.elf_len;

	cr_assert_eq(x86_kaslr__find_relocs(k.b, k.len - 2, &r), -EINVAL, "not whole words");
	cr_assert_eq(x86_kaslr__find_relocs(k.b, k.elf_len + 8, &r), -EINVAL, "too short");
	put32(t, 0x81000000); /* the 64-bit list's terminator lost */
	cr_assert_eq(x86_kaslr__find_relocs(k.b, k.len, &r), -EINVAL);
	put32(t, 0);
	put32(t + 4 * 2, 0); /* a zero inside the 64-bit list: one terminator too many */
	cr_assert_eq(x86_kaslr__find_relocs(k.b, k.len, &r), -EINVAL);
	free(k.b);

	/* section headers said to lie beyond the file */
	k = make_kernel(true, 1, 1, 1);
	((Elf64_Ehdr *)k.b)->e_shoff = k.len;
	cr_assert_eq(x86_kaslr__find_relocs(k.b, k.len, &r), -EINVAL);
	((Elf64_Ehdr *)k.b)->e_shoff = UINT64_MAX - 8;
	cr_assert_eq(x86_kaslr__find_relocs(k.b, k.len, &r), -EINVAL, "offset overflow");
	free(k.b);
	cr_assert_eq(x86_kaslr__find_relocs("\177ELF", 4, &r), -EINVAL);
}

Test(kaslr, applies_each_list_its_own_way)
{
	struct kimg k = make_kernel(true, 4, 3, 5);
	struct x86_kaslr_relocs r;
	uint8_t *img = k.b + 0x1000; /* the segment's data: byte 0 at LOAD */
	uint64_t delta = 6 * X86_KASLR_MIN_ALIGN;
	size_t i;

	cr_assert_eq(x86_kaslr__find_relocs(k.b, k.len, &r), 0);
	cr_assert_eq(x86_kaslr__apply(img, TEXT, LOAD, delta, &r), 0);
	for (i = 0; i < 16; i++) {
		cr_assert_eq(get32(img + AT32 + i * 8),
			     (uint32_t)(VBASE + 0x40 + i + (i < 5 ? delta : 0)), "32-bit %zu", i);
		cr_assert_eq(get32(img + ATINV + i * 8),
			     (uint32_t)(0x1000 + i - (i < 3 ? delta : 0)), "inverse %zu", i);
		cr_assert_eq(get64(img + AT64 + i * 8), VBASE + 0x80 + i + (i < 4 ? delta : 0),
			     "64-bit %zu", i);
	}
	/* delta 0: nothing to do */
	cr_assert_eq(x86_kaslr__apply(img, TEXT, LOAD, 0, &r), 0);
	cr_assert_eq(get64(img + AT64), VBASE + 0x80 + delta);
	free(k.b);
}

Test(kaslr, an_entry_outside_the_image_changes_nothing)
{
	struct kimg k = make_kernel(true, 2, 2, 2);
	struct x86_kaslr_relocs r;
	uint8_t *img = k.b + 0x1000, *copy = malloc(TEXT);
	uint8_t *t = k.b + k.elf_len;

	cr_assert_eq(x86_kaslr__find_relocs(k.b, k.len, &r), 0);
	memcpy(copy, img, TEXT);
	put32(t + 4, (uint32_t)(VBASE + TEXT - 4)); /* a 64-bit entry with 4 bytes left */
	cr_assert_eq(x86_kaslr__apply(img, TEXT, LOAD, 2 * MiB, &r), -EINVAL);
	cr_assert_eq(memcmp(copy, img, TEXT), 0, "the 32-bit ones before it were not applied");
	put32(t + 4, (uint32_t)(VBASE - 8)); /* below _text */
	cr_assert_eq(x86_kaslr__apply(img, TEXT, LOAD, 2 * MiB, &r), -EINVAL);
	put32(t + 4, 0x00001000); /* sign-extends to a user address */
	cr_assert_eq(x86_kaslr__apply(img, TEXT, LOAD, 2 * MiB, &r), -EINVAL);
	cr_assert_eq(memcmp(copy, img, TEXT), 0);
	free(copy);
	free(k.b);
}

Test(kaslr, slots)
{
	uint64_t n, at, seen = 0, r;

	/* [16 MiB, 64 MiB) for 8 MiB at 2 MiB: bases 16..56 MiB, 21 slots */
	cr_assert_eq(x86_kaslr__slot(16 * MiB, 64 * MiB, 8 * MiB, 2 * MiB, 0, &n), 16 * MiB);
	cr_assert_eq(n, 21);
	cr_assert_eq(x86_kaslr__slot(16 * MiB, 64 * MiB, 8 * MiB, 2 * MiB, 20, &n), 56 * MiB);
	for (r = 0; r < 200; r++) {
		at = x86_kaslr__slot(16 * MiB, 64 * MiB, 8 * MiB, 2 * MiB, r * 7919, &n);
		cr_assert(at >= 16 * MiB && at + 8 * MiB <= 64 * MiB && !(at % (2 * MiB)));
		seen |= 1ULL << ((at - 16 * MiB) / (2 * MiB));
	}
	cr_assert_eq(seen, (1ULL << 21) - 1, "every slot can be chosen");
	/* an unaligned low bound rounds up; exactly one slot; none */
	cr_assert_eq(x86_kaslr__slot(15 * MiB, 25 * MiB, 8 * MiB, 2 * MiB, 99, &n), 16 * MiB);
	cr_assert_eq(n, 1);
	cr_assert_eq(x86_kaslr__slot(16 * MiB, 23 * MiB, 8 * MiB, 2 * MiB, 0, &n), UINT64_MAX);
	cr_assert_eq(n, 0);
	cr_assert_eq(x86_kaslr__slot(16 * MiB, 4 * MiB, 8 * MiB, 2 * MiB, 0, NULL), UINT64_MAX);
	cr_assert_eq(x86_kaslr__slot(0, 1 * GiB, 1, 3 * MiB, 0, NULL), UINT64_MAX, "not a power of 2");
	cr_assert_eq(x86_kaslr__slot(UINT64_MAX - 10, UINT64_MAX, 1, 2 * MiB, 0, NULL), UINT64_MAX);
}

Test(kaslr, nokaslr)
{
	cr_assert(x86_kaslr__disabled("nokaslr"));
	cr_assert(x86_kaslr__disabled("console=ttyS0 nokaslr quiet"));
	cr_assert(x86_kaslr__disabled("quiet\tnokaslr"));
	cr_assert_not(x86_kaslr__disabled("nokaslrx kaslr"));
	cr_assert_not(x86_kaslr__disabled("xnokaslr"));
	cr_assert_not(x86_kaslr__disabled(""));
	cr_assert_not(x86_kaslr__disabled(NULL));
}

/* ---- the ELF loader moving the image ---- */

#define RAM (256 * MiB)
static uint8_t *ram;
static struct guest_mem mem;

static void ram_setup(void) { ram = guest_ram_map(&mem, RAM); }
static void ram_teardown(void) { guest_ram_unmap(&mem, ram, RAM); }

static uint8_t loadflags(void)
{
	return ((struct boot_params *)(ram + X86_BOOT_PARAMS_GPA))->hdr.loadflags;
}

Test(kaslr_boot, moves_the_kernel_and_says_so, .init = ram_setup, .fini = ram_teardown)
{
	struct kimg k = make_kernel(true, 4, 3, 5);
	struct x86_boot_kaslr ka = { .align = 2 * MiB, .init_size = 8 * MiB, .rnd = { 5, 77 } };
	uint8_t initrd[8192];
	struct x86_boot_info bi;
	uint64_t p, v, seen_p = 0, seen_v = 0;
	int i;

	memset(initrd, 0x5a, sizeof(initrd));
	for (i = 0; i < 24; i++) {
		ka.rnd[0] = (uint64_t)i * 2654435761u;
		ka.rnd[1] = (uint64_t)i * 40503u + 3;
		memset(ram + LOAD, 0, RAM - LOAD);
		cr_assert_eq(x86_boot__load(&mem, k.b, k.len, initrd, sizeof(initrd), "console=ttyS0",
					    0, &ka, &bi), 0);
		p = bi.kaslr_phys_delta;
		v = bi.kaslr_virt_delta;
		cr_assert_eq(p % (2 * MiB), 0);
		cr_assert_eq(v % (2 * MiB), 0);
		cr_assert_eq(bi.entry, LOAD + p, "entry moves with the image");
		cr_assert(LOAD + p + ka.init_size <= bi.initrd_gpa, "below the initrd");
		cr_assert(LOAD + v + ka.init_size <= X86_KASLR_IMAGE_SIZE, "inside the text mapping");
		/* the slot counts: physical [16 MiB, initrd) for 8 MiB; virtual [16 MiB, 1 GiB) */
		cr_assert_eq(bi.kaslr_phys_slots, (ALIGN_DOWN(RAM - sizeof(initrd), 4096) - 8 * MiB - LOAD) / (2 * MiB) + 1);
		cr_assert_eq(bi.kaslr_virt_slots, (X86_KASLR_IMAGE_SIZE - 8 * MiB - LOAD) / (2 * MiB) + 1);
		cr_assert_eq(ram[LOAD + p + 0x10], 0, "file data (zeros here)");
		cr_assert_eq(get32(ram + LOAD + p + AT32), (uint32_t)(VBASE + 0x40 + v));
		cr_assert_eq(get32(ram + LOAD + p + AT32 + 5 * 8), (uint32_t)(VBASE + 0x40 + 5),
			     "not in the table: untouched");
		cr_assert_eq(get32(ram + LOAD + p + ATINV), (uint32_t)(0x1000 - v));
		cr_assert_eq(get64(ram + LOAD + p + AT64 + 8), VBASE + 0x80 + 1 + v);
		cr_assert(loadflags() & KASLR_FLAG, "the kernel is told KASLR ran");
		seen_p |= 1ULL << ((p / (2 * MiB)) % 64);
		seen_v |= 1ULL << ((v / (2 * MiB)) % 64);
	}
	cr_assert(__builtin_popcountll(seen_p) > 8 && __builtin_popcountll(seen_v) > 8,
		  "the addresses vary with the random numbers");
	free(k.b);
}

Test(kaslr_boot, nokaslr_and_kernels_without_a_table, .init = ram_setup, .fini = ram_teardown)
{
	struct kimg k = make_kernel(true, 4, 3, 5);
	struct x86_boot_kaslr ka = { .align = 2 * MiB, .init_size = 8 * MiB, .rnd = { 5, 77 } };
	struct x86_boot_info bi;

	cr_assert_eq(x86_boot__load(&mem, k.b, k.len, NULL, 0, "quiet nokaslr", 0, &ka, &bi), 0);
	cr_assert_eq(bi.kaslr_phys_delta + bi.kaslr_virt_delta, 0);
	cr_assert_eq(bi.entry, LOAD);
	cr_assert_not(loadflags() & KASLR_FLAG);
	cr_assert_eq(get32(ram + LOAD + AT32), (uint32_t)(VBASE + 0x40), "linked addresses kept");
	free(k.b);

	/* no table: the physical address still moves, the virtual one cannot */
	k = make_kernel(false, 0, 0, 0);
	cr_assert_eq(x86_boot__load(&mem, k.b, k.len, NULL, 0, NULL, 0, &ka, &bi), 0);
	cr_assert_eq(bi.kaslr_virt_delta, 0);
	cr_assert_neq(bi.kaslr_phys_delta, 0, "rnd 5 picks the sixth slot");
	cr_assert_eq(get32(ram + LOAD + bi.kaslr_phys_delta + AT32), (uint32_t)(VBASE + 0x40));
	free(k.b);

	/* no KASLR asked for: as before */
	k = make_kernel(true, 1, 1, 1);
	cr_assert_eq(x86_boot__load(&mem, k.b, k.len, NULL, 0, NULL, 0, NULL, &bi), 0);
	cr_assert_eq(bi.entry, LOAD);
	cr_assert_not(loadflags() & KASLR_FLAG);
	free(k.b);
}

Test(kaslr_boot, a_bad_entry_refuses_the_kernel, .init = ram_setup, .fini = ram_teardown)
{
	struct kimg k = make_kernel(true, 1, 1, 1);
	struct x86_boot_kaslr ka = { .align = 2 * MiB, .init_size = 8 * MiB, .rnd = { 5, 77 } };
	struct x86_boot_info bi;

	put32(k.b + k.elf_len + 4, (uint32_t)(VBASE + MEMSZ)); /* in bss: no file data there */
	cr_assert_eq(x86_boot__load(&mem, k.b, k.len, NULL, 0, NULL, 0, &ka, &bi), -EINVAL);
	free(k.b);
}

Test(kaslr_boot, small_ram_keeps_the_link_address, .init = ram_setup, .fini = ram_teardown)
{
	struct kimg k = make_kernel(true, 1, 1, 1);
	struct x86_boot_kaslr ka = { .align = 2 * MiB, .init_size = 8 * MiB, .rnd = { 5, 77 } };
	struct x86_boot_info bi;
	struct guest_mem small;

	cr_assert_eq(mem__init_from_buffer(&small, ram, 0, 24 * MiB), 0);
	cr_assert_eq(x86_boot__load(&small, k.b, k.len, NULL, 0, NULL, 0, &ka, &bi), 0);
	cr_assert_eq(bi.kaslr_phys_delta, 0, "one slot only: the link address");
	cr_assert_eq(bi.kaslr_phys_slots, 1);
	cr_assert_neq(bi.kaslr_virt_delta, 0, "the virtual offset still moves");
	mem__free(&small);
	free(k.b);
}
