// SPDX-License-Identifier: MIT
/*
 * x86 boot: e820, bzImage and ELF loading on synthetic images, page tables
 * and GDT, and (when /dev/kvm works) a tiny ELF guest entered in long mode.
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "elf_ehdr.h"
#include "guest_ram.h"
#include "kvm_skip.h"
#include "vmm/mem.h"
#include "vmm/pci.h"
#include "vmm/x86/boot.h"
#include "vmm/x86/cpu.h"

#define RAM (64 * MiB)

static uint8_t *ram;
static struct guest_mem mem;

static void ram_setup(void)
{
	ram = guest_ram_map(&mem, RAM);
	memset(ram, 0xcc, 2 * MiB);
}

static void ram_teardown(void) { guest_ram_unmap(&mem, ram, RAM); }

static struct boot_params *bp(void)
{
	return (struct boot_params *)(ram + X86_BOOT_PARAMS_GPA);
}

/* ---- e820 ---- */

static void check_e(const struct boot_e820_entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
	cr_assert_eq(e->addr, addr, "addr 0x%llx != 0x%llx", (unsigned long long)e->addr,
		     (unsigned long long)addr);
	cr_assert_eq(e->size, size, "size of 0x%llx: 0x%llx != 0x%llx", (unsigned long long)addr,
		     (unsigned long long)e->size, (unsigned long long)size);
	cr_assert_eq(e->type, type);
}

Test(e820, small_ram)
{
	struct guest_mem m = { .nr_regions = 1, .regions = { { .gpa = 0, .size = 512 * MiB } } };
	struct boot_e820_entry e[16];

	cr_assert_eq(x86_boot__build_e820(&m, e, 16), 4);
	check_e(&e[0], 0, 0x9FC00, X86_E820_RAM);
	check_e(&e[1], 0x9FC00, 0x100000 - 0x9FC00, X86_E820_RESERVED);
	check_e(&e[2], 0x100000, 512 * MiB - 0x100000, X86_E820_RAM);
	check_e(&e[3], PCI_ECAM_BASE, PCI_ECAM_SIZE, X86_E820_RESERVED);
	/* the output limit is respected */
	cr_assert_eq(x86_boot__build_e820(&m, e, 2), 2);
}

Test(e820, above_4g)
{
	struct guest_mem m = {
		.nr_regions = 2,
		.regions = { { .gpa = 0, .size = MEM_LOW_END }, { .gpa = MEM_HIGH_START, .size = 5 * GiB } },
	};
	struct boot_e820_entry e[16];

	cr_assert_eq(x86_boot__build_e820(&m, e, 16), 5);
	check_e(&e[0], 0, 0x9FC00, X86_E820_RAM);
	check_e(&e[1], 0x9FC00, 0x60400, X86_E820_RESERVED);
	check_e(&e[2], 0x100000, MEM_LOW_END - 0x100000, X86_E820_RAM);
	check_e(&e[3], PCI_ECAM_BASE, PCI_ECAM_SIZE, X86_E820_RESERVED);
	check_e(&e[4], MEM_HIGH_START, 5 * GiB, X86_E820_RAM);
}

Test(e820, from_mem_init)
{
	struct boot_e820_entry e[16];
	struct guest_mem m;
	uint64_t total = 0;
	size_t n, i;

	cr_assert_eq(mem__init(&m, 3 * GiB + 256 * MiB, false), 0);
	n = x86_boot__build_e820(&m, e, 16);
	cr_assert_eq(n, 5);
	for (i = 0; i < n; i++) {
		if (e[i].type == X86_E820_RAM)
			total += e[i].size;
		if (i)
			cr_assert(e[i].addr >= e[i - 1].addr + e[i - 1].size, "sorted, no overlap");
	}
	cr_assert_eq(total, 3 * GiB + 256 * MiB - 0x60400);
	check_e(&e[4], MEM_HIGH_START, 256 * MiB, X86_E820_RAM);
	mem__free(&m);
}

/* ---- bzImage ---- */

#define SETUP_SECTS 4
#define PAYLOAD (8 * 1024)

struct bz {
	uint8_t *img;
	size_t len;
	struct setup_header *h;
};

static struct bz make_bzimage(void)
{
	struct bz b;
	size_t i;

	b.len = (SETUP_SECTS + 1) * 512 + PAYLOAD;
	b.img = calloc(1, b.len);
	cr_assert_not_null(b.img);
	b.h = (struct setup_header *)(b.img + 0x1f1);
	b.h->setup_sects = SETUP_SECTS;
	b.h->syssize = PAYLOAD / 16;
	b.h->boot_flag = 0xAA55;
	b.h->jump = 0x66eb; /* jmp to 0x268: header length byte 0x66 */
	b.h->header = 0x53726448;
	b.h->version = 0x020f;
	b.h->loadflags = LOADED_HIGH;
	b.h->initrd_addr_max = 0x7fffffff;
	b.h->kernel_alignment = 0x200000;
	b.h->relocatable_kernel = 1;
	b.h->xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G;
	b.h->cmdline_size = 2047;
	b.h->pref_address = 0x1000000;
	b.h->init_size = 0x400000;
	for (i = 0; i < PAYLOAD; i++)
		b.img[(SETUP_SECTS + 1) * 512 + i] = (uint8_t)(i * 7 + 1);
	return b;
}

Test(bzimage, loads, .init = ram_setup, .fini = ram_teardown)
{
	static const char cmdline[] = "console=ttyS0 root=/dev/vda";
	struct bz b = make_bzimage();
	struct x86_boot_info bi;
	uint8_t initrd[10000];
	uint64_t want_initrd;
	struct boot_params *p;

	memset(initrd, 0x5a, sizeof(initrd));
	cr_assert_eq(x86_boot__load(&mem, b.img, b.len, initrd, sizeof(initrd), cmdline, 0xE0000, NULL, &bi), 0);
	cr_assert_eq(bi.entry, 0x100200, "64-bit entry at load address + 0x200");
	cr_assert_eq(bi.boot_params_gpa, 0x7000);
	cr_assert_eq(bi.cmdline_gpa, 0x20000);
	cr_assert_not(bi.elf);
	cr_assert(!memcmp(ram + 0x100000, b.img + (SETUP_SECTS + 1) * 512, PAYLOAD));

	want_initrd = (RAM - sizeof(initrd)) & ~0xfffULL;
	cr_assert_eq(bi.initrd_gpa, want_initrd);
	cr_assert_eq(bi.initrd_size, sizeof(initrd));
	cr_assert(!memcmp(ram + want_initrd, initrd, sizeof(initrd)));
	cr_assert_str_eq((char *)ram + 0x20000, cmdline);

	p = bp();
	cr_assert_eq(p->hdr.header, 0x53726448, "setup header copied");
	cr_assert_eq(p->hdr.version, 0x020f);
	cr_assert_eq(p->hdr.type_of_loader, 0xff);
	cr_assert_eq(p->hdr.loadflags & (CAN_USE_HEAP | LOADED_HIGH), CAN_USE_HEAP | LOADED_HIGH);
	cr_assert_eq(p->hdr.heap_end_ptr, 0xfe00);
	cr_assert_eq(p->hdr.cmd_line_ptr, 0x20000);
	cr_assert_eq(p->hdr.ramdisk_image, want_initrd);
	cr_assert_eq(p->hdr.ramdisk_size, sizeof(initrd));
	cr_assert_eq(p->ext_ramdisk_image, 0);
	cr_assert_eq(p->ext_ramdisk_size, 0);
	cr_assert_eq(p->hdr.code32_start, 0x100000);
	cr_assert_eq(p->acpi_rsdp_addr, 0xE0000);
	cr_assert_eq(p->e820_entries, 4);
	check_e(&p->e820_table[2], 0x100000, RAM - 0x100000, X86_E820_RAM);
	cr_assert_eq(p->hdr.init_size, 0x400000);
	free(b.img);
}

Test(bzimage, initrd_below_initrd_addr_max, .init = ram_setup, .fini = ram_teardown)
{
	struct bz b = make_bzimage();
	struct x86_boot_info bi;
	static uint8_t initrd[3 * 4096 + 1];

	b.h->initrd_addr_max = 0x01ffffff;
	b.h->version = 0x020c; /* 2.12: no acpi_rsdp_addr */
	cr_assert_eq(x86_boot__load(&mem, b.img, b.len, initrd, sizeof(initrd), NULL, 0xE0000, NULL, &bi), 0);
	cr_assert_eq(bi.initrd_gpa, 32 * MiB - 4 * 4096);
	cr_assert_eq(bp()->hdr.ramdisk_image, 32 * MiB - 4 * 4096);
	cr_assert_eq(bp()->acpi_rsdp_addr, 0, "RSDP only for protocol 2.14+");
	cr_assert_eq(ram[0x20000], 0, "empty command line");
	free(b.img);
}

Test(bzimage, fixed_kernel_at_pref_address, .init = ram_setup, .fini = ram_teardown)
{
	struct bz b = make_bzimage();
	struct x86_boot_info bi;

	b.h->relocatable_kernel = 0;
	b.h->pref_address = 0x200000;
	cr_assert_eq(x86_boot__load(&mem, b.img, b.len, NULL, 0, "x", 0, NULL, &bi), 0);
	cr_assert_eq(bi.entry, 0x200200);
	cr_assert(!memcmp(ram + 0x200000, b.img + (SETUP_SECTS + 1) * 512, PAYLOAD));
	free(b.img);
}

Test(bzimage, rejects_bad_images, .init = ram_setup, .fini = ram_teardown)
{
	struct x86_boot_info bi;
	struct bz b = make_bzimage();
	uint8_t junk[4096];
	char longcmd[64];
	uint8_t initrd[16];

	memset(junk, 0x90, sizeof(junk));
	cr_assert_eq(x86_boot__load(&mem, junk, sizeof(junk), NULL, 0, NULL, 0, NULL, &bi), -ENOEXEC);
	cr_assert_eq(x86_boot__load(&mem, junk, 10, NULL, 0, NULL, 0, NULL, &bi), -ENOEXEC);
	cr_assert_eq(x86_boot__load(&mem, b.img, 0, NULL, 0, NULL, 0, NULL, &bi), -ENOEXEC);

	/* truncated inside the setup header, the setup code, the payload */
	cr_assert_eq(x86_boot__load(&mem, b.img, 0x230, NULL, 0, NULL, 0, NULL, &bi), -EINVAL);
	cr_assert_eq(x86_boot__load(&mem, b.img, 0x400, NULL, 0, NULL, 0, NULL, &bi), -EINVAL);
	cr_assert_eq(x86_boot__load(&mem, b.img, b.len - 16, NULL, 0, NULL, 0, NULL, &bi), -EINVAL);
	/* header length byte pointing past the end of the file */
	b.h->jump = 0xffeb;
	cr_assert_eq(x86_boot__load(&mem, b.img, 0x280, NULL, 0, NULL, 0, NULL, &bi), -EINVAL);
	free(b.img);

	b = make_bzimage();
	b.h->version = 0x0205;
	cr_assert_eq(x86_boot__load(&mem, b.img, b.len, NULL, 0, NULL, 0, NULL, &bi), -ENOEXEC);
	b.h->version = 0x020a;
	cr_assert_eq(x86_boot__load(&mem, b.img, b.len, NULL, 0, NULL, 0, NULL, &bi), -ENOEXEC);
	free(b.img);

	b = make_bzimage();
	b.h->xloadflags = 0;
	cr_assert_eq(x86_boot__load(&mem, b.img, b.len, NULL, 0, NULL, 0, NULL, &bi), -ENOEXEC);
	free(b.img);

	b = make_bzimage();
	b.h->loadflags = 0;
	cr_assert_eq(x86_boot__load(&mem, b.img, b.len, NULL, 0, NULL, 0, NULL, &bi), -ENOEXEC);
	free(b.img);

	b = make_bzimage();
	b.h->boot_flag = 0;
	cr_assert_eq(x86_boot__load(&mem, b.img, b.len, NULL, 0, NULL, 0, NULL, &bi), -ENOEXEC);
	free(b.img);

	b = make_bzimage();
	b.h->kernel_alignment = 0x3000;
	cr_assert_eq(x86_boot__load(&mem, b.img, b.len, NULL, 0, NULL, 0, NULL, &bi), -EINVAL);
	free(b.img);

	/* command line longer than cmdline_size */
	b = make_bzimage();
	b.h->cmdline_size = 16;
	memset(longcmd, 'a', sizeof(longcmd));
	longcmd[sizeof(longcmd) - 1] = 0;
	cr_assert_eq(x86_boot__load(&mem, b.img, b.len, NULL, 0, longcmd, 0, NULL, &bi), -E2BIG);
	longcmd[16] = 0;
	cr_assert_eq(x86_boot__load(&mem, b.img, b.len, NULL, 0, longcmd, 0, NULL, &bi), 0);
	free(b.img);

	/* the kernel's init_size does not fit in RAM */
	b = make_bzimage();
	b.h->init_size = 0x4000000;
	cr_assert_eq(x86_boot__load(&mem, b.img, b.len, NULL, 0, NULL, 0, NULL, &bi), -ENOMEM);
	free(b.img);

	/* initrd must stay above the kernel's footprint */
	b = make_bzimage();
	b.h->initrd_addr_max = 0x013fffff; /* 20 MiB: kernel runs at 16 MiB + 4 MiB */
	cr_assert_eq(x86_boot__load(&mem, b.img, b.len, initrd, sizeof(initrd), NULL, 0, NULL, &bi), -ENOMEM);
	b.h->initrd_addr_max = 0x0140ffff;
	cr_assert_eq(x86_boot__load(&mem, b.img, b.len, initrd, sizeof(initrd), NULL, 0, NULL, &bi), 0);
	cr_assert_eq(bi.initrd_gpa, 0x1400000 + 0xf000);
	free(b.img);
}

/* ---- ELF ---- */

struct elf_seg {
	uint64_t paddr, filesz, memsz;
	uint32_t flags;
};

/* an ELF64 image: headers, then each segment's file bytes (pattern i+1) */
static uint8_t *make_elf(const struct elf_seg *segs, unsigned int n, uint64_t entry, size_t *len)
{
	size_t off = sizeof(Elf64_Ehdr) + n * sizeof(Elf64_Phdr), total = off;
	Elf64_Ehdr *eh;
	Elf64_Phdr *ph;
	uint8_t *img;
	unsigned int i;

	for (i = 0; i < n; i++)
		total += segs[i].filesz;
	img = calloc(1, total);
	cr_assert_not_null(img);
	eh = (Elf64_Ehdr *)img;
	elf_ehdr_fill(eh, entry, (uint16_t)n);
	ph = (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr));
	for (i = 0; i < n; i++) {
		ph[i].p_type = PT_LOAD;
		ph[i].p_flags = segs[i].flags ? segs[i].flags : PF_R | PF_X;
		ph[i].p_offset = off;
		ph[i].p_vaddr = segs[i].paddr;
		ph[i].p_paddr = segs[i].paddr;
		ph[i].p_filesz = segs[i].filesz;
		ph[i].p_memsz = segs[i].memsz;
		ph[i].p_align = 4096;
		memset(img + off, (int)(i + 1), segs[i].filesz);
		off += segs[i].filesz;
	}
	*len = total;
	return img;
}

Test(elf, loads_segments_and_bss, .init = ram_setup, .fini = ram_teardown)
{
	const struct elf_seg segs[] = {
		{ 0x100000, 100, 4096, 0 },
		{ 0x200000, 50, 50, PF_R | PF_W },
	};
	struct x86_boot_info bi;
	uint8_t initrd[5000];
	size_t len, i;
	uint8_t *img = make_elf(segs, 2, 0x100010, &len);

	memset(ram + 0x100000, 0xcc, 8192);
	memset(initrd, 0x77, sizeof(initrd));
	cr_assert_eq(x86_boot__load(&mem, img, len, initrd, sizeof(initrd), "test=1", 0xE0000, NULL, &bi), 0);
	cr_assert(bi.elf);
	cr_assert_eq(bi.entry, 0x100010);
	cr_assert_eq(bi.boot_params_gpa, 0x7000);
	for (i = 0; i < 100; i++)
		cr_assert_eq(ram[0x100000 + i], 1);
	for (i = 100; i < 4096; i++)
		cr_assert_eq(ram[0x100000 + i], 0, "bss byte %zu zeroed", i);
	cr_assert_eq(ram[0x100000 + 4096], 0xcc, "nothing past memsz");
	for (i = 0; i < 50; i++)
		cr_assert_eq(ram[0x200000 + i], 2);

	cr_assert_eq(bp()->hdr.cmd_line_ptr, 0x20000);
	cr_assert_str_eq((char *)ram + 0x20000, "test=1");
	cr_assert_eq(bp()->hdr.header, 0x53726448);
	cr_assert_eq(bp()->hdr.boot_flag, 0xAA55);
	cr_assert_eq(bp()->e820_entries, 4);
	check_e(&bp()->e820_table[0], 0, 0x9FC00, X86_E820_RAM);
	cr_assert_eq(bp()->acpi_rsdp_addr, 0xE0000);
	cr_assert_eq(bi.initrd_gpa, (RAM - sizeof(initrd)) & ~0xfffULL);
	cr_assert_eq(bp()->hdr.ramdisk_image, bi.initrd_gpa);
	cr_assert_eq(bp()->hdr.ramdisk_size, sizeof(initrd));
	free(img);
}

static int load_elf_with(const struct elf_seg *segs, unsigned int n, uint64_t entry,
			 void (*patch)(uint8_t *img, size_t *len))
{
	struct x86_boot_info bi;
	size_t len;
	uint8_t *img = make_elf(segs, n, entry, &len);
	int ret;

	if (patch)
		patch(img, &len);
	ret = x86_boot__load(&mem, img, len, NULL, 0, NULL, 0, NULL, &bi);
	free(img);
	return ret;
}

static void patch_machine(uint8_t *img, size_t *len) { ((Elf64_Ehdr *)img)->e_machine = EM_386; }
static void patch_type(uint8_t *img, size_t *len) { ((Elf64_Ehdr *)img)->e_type = ET_DYN; }
static void patch_class(uint8_t *img, size_t *len) { img[EI_CLASS] = ELFCLASS32; }
static void patch_phoff(uint8_t *img, size_t *len) { ((Elf64_Ehdr *)img)->e_phoff = 1ULL << 40; }
static void patch_phentsize(uint8_t *img, size_t *len) { ((Elf64_Ehdr *)img)->e_phentsize = 32; }
static void patch_truncate(uint8_t *img, size_t *len) { *len -= 10; }
static void patch_tiny(uint8_t *img, size_t *len) { *len = 40; }
static void patch_filesz(uint8_t *img, size_t *len)
{
	Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr));

	ph->p_filesz = ph->p_memsz + 1;
}
static void patch_offset(uint8_t *img, size_t *len)
{
	Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr));

	ph->p_offset = UINT64_MAX - 4;
}
static void patch_wrap(uint8_t *img, size_t *len)
{
	Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr));

	ph->p_paddr = UINT64_MAX - 8;
}

Test(elf, rejects_bad_images, .init = ram_setup, .fini = ram_teardown)
{
	const struct elf_seg ok[] = { { 0x100000, 64, 128, 0 } };
	const struct elf_seg outside[] = { { 0x100000, 64, 64, 0 }, { RAM - 32, 64, 64, 0 } };
	const struct elf_seg far[] = { { 0x100000000ULL, 64, 64, 0 } };
	const struct elf_seg zeropage[] = { { 0x7800, 64, 64, 0 } };
	const struct elf_seg acpi[] = { { 0xE0000, 64, 64, 0 } };
	const struct elf_seg low_free[] = { { 0x40000, 64, 64, 0 } };

	cr_assert_eq(load_elf_with(ok, 1, 0x100000, NULL), 0);
	cr_assert_eq(load_elf_with(low_free, 1, 0x40000, NULL), 0, "0x30000..0x9FC00 is usable");
	cr_assert_eq(load_elf_with(outside, 2, 0x100000, NULL), -EINVAL);
	cr_assert_eq(load_elf_with(far, 1, 0x100000000ULL, NULL), -EINVAL);
	cr_assert_eq(load_elf_with(zeropage, 1, 0x7800, NULL), -EINVAL);
	cr_assert_eq(load_elf_with(acpi, 1, 0xE0000, NULL), -EINVAL);
	cr_assert_eq(load_elf_with(ok, 1, 0x300000, NULL), -EINVAL, "entry outside segments");
	cr_assert_eq(load_elf_with(ok, 1, 0x100000, patch_machine), -ENOEXEC);
	cr_assert_eq(load_elf_with(ok, 1, 0x100000, patch_type), -ENOEXEC);
	cr_assert_eq(load_elf_with(ok, 1, 0x100000, patch_class), -ENOEXEC);
	cr_assert_eq(load_elf_with(ok, 1, 0x100000, patch_phoff), -EINVAL);
	cr_assert_eq(load_elf_with(ok, 1, 0x100000, patch_phentsize), -EINVAL);
	cr_assert_eq(load_elf_with(ok, 1, 0x100000, patch_truncate), -EINVAL);
	cr_assert_eq(load_elf_with(ok, 1, 0x100000, patch_tiny), -EINVAL);
	cr_assert_eq(load_elf_with(ok, 1, 0x100000, patch_filesz), -EINVAL);
	cr_assert_eq(load_elf_with(ok, 1, 0x100000, patch_offset), -EINVAL);
	cr_assert_eq(load_elf_with(ok, 1, 0x100000, patch_wrap), -EINVAL);
}

Test(boot, rejects_ram_without_low_memory)
{
	const struct elf_seg ok[] = { { 0x100000, 64, 128, 0 } };
	struct x86_boot_info bi;
	struct guest_mem m;
	uint8_t *buf = calloc(1, 2 * MiB);
	size_t len;
	uint8_t *img = make_elf(ok, 1, 0x100000, &len);

	cr_assert_eq(mem__init_from_buffer(&m, buf, 1 * MiB, 2 * MiB), 0);
	cr_assert_eq(x86_boot__load(&m, img, len, NULL, 0, NULL, 0, NULL, &bi), -EINVAL);
	cr_assert_eq(mem__init_from_buffer(&m, buf, 0, 1 * MiB), 0);
	cr_assert_eq(x86_boot__load(&m, img, len, NULL, 0, NULL, 0, NULL, &bi), -EINVAL);
	free(img);
	free(buf);
}

/* ---- page tables, GDT, sregs ---- */

Test(boot, page_tables_and_gdt, .init = ram_setup, .fini = ram_teardown)
{
	uint64_t *pml4 = (uint64_t *)(ram + 0x9000), *pdpt = (uint64_t *)(ram + 0xA000);
	uint64_t *pd = (uint64_t *)(ram + 0xB000), *gdt = (uint64_t *)(ram + 0x500);
	struct kvm_sregs s;
	unsigned int i;

	memset(ram, 0xcc, 0x10000);
	cr_assert_eq(x86_boot__write_tables(&mem), 0);
	cr_assert_eq(pml4[0], 0xA003);
	for (i = 1; i < 512; i++)
		cr_assert_eq(pml4[i], 0);
	for (i = 0; i < 4; i++)
		cr_assert_eq(pdpt[i], 0xB003 + i * 0x1000ULL);
	for (i = 4; i < 512; i++)
		cr_assert_eq(pdpt[i], 0);
	for (i = 0; i < 2048; i++)
		cr_assert_eq(pd[i], ((uint64_t)i << 21) | 0x83, "PD entry %u", i);
	cr_assert_eq(pd[2047], 0xFFE00083);

	cr_assert_eq(gdt[0], 0);
	cr_assert_eq(gdt[1], 0);
	cr_assert_eq(gdt[2], 0x00af9b000000ffffULL, "64-bit code at 0x10");
	cr_assert_eq(gdt[3], 0x00cf93000000ffffULL, "data at 0x18");
	cr_assert_eq(gdt[4], 0x00008b0000000067ULL, "busy TSS at 0x20");
	cr_assert_eq(gdt[5], 0);

	memset(&s, 0, sizeof(s));
	x86_boot__fill_sregs(&s);
	cr_assert_eq(s.cr0, 0x80000011);
	cr_assert_eq(s.cr3, 0x9000);
	cr_assert_eq(s.cr4, 0x20);
	cr_assert_eq(s.efer, 0x500);
	cr_assert_eq(s.gdt.base, 0x500);
	cr_assert_eq(s.gdt.limit, 47);
	cr_assert_eq(s.cs.selector, 0x10);
	cr_assert_eq(s.cs.l, 1);
	cr_assert_eq(s.cs.db, 0);
	cr_assert_eq(s.cs.type, 0xb);
	cr_assert_eq(s.cs.present, 1);
	cr_assert_eq(s.ds.selector, 0x18);
	cr_assert_eq(s.ss.selector, 0x18);
	cr_assert_eq(s.es.type, 3);
	cr_assert_eq(s.tr.selector, 0x20);
	cr_assert_eq(s.tr.type, 0xb);

	/* too little RAM for the page tables */
	{
		struct guest_mem small;

		cr_assert_eq(mem__init_from_buffer(&small, ram, 0, 0xA000), 0);
		cr_assert_eq(x86_boot__write_tables(&small), -EFAULT);
	}
}

/* ---- a tiny guest on real KVM: long mode, paging, RSI and the loaded image ---- */

Test(boot_kvm, tiny_elf_guest_runs, .init = ram_setup, .fini = ram_teardown, .timeout = 60)
{
	/*
	 * mov eax, [rsi+0x228]   ; boot_params.hdr.cmd_line_ptr
	 * mov dx, 0x1234 ; out dx, eax
	 * mov eax, [0x200000]    ; second segment, through the identity map
	 * out dx, eax
	 * hlt                    ; never reached by the test
	 */
	static const uint8_t code[] = { 0x8b, 0x86, 0x28, 0x02, 0x00, 0x00,
					0x66, 0xba, 0x34, 0x12, 0xef,
					0x8b, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00,
					0xef, 0xf4 };
	const struct elf_seg segs[] = { { 0x100000, sizeof(code), 4096, 0 }, { 0x200000, 4, 4, 0 } };
	struct kvm_userspace_memory_region r;
	struct x86_boot_info bi;
	struct kvm_run *run;
	struct kvm_regs regs;
	int kvm, vm, vcpu, sz;
	uint32_t data;
	size_t len;
	uint8_t *img;

	kvm = kvm_open_or_skip();
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	cr_assert(vm >= 0);
	cr_assert_eq(ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL), 0);
	cr_assert_eq(ioctl(vm, KVM_CREATE_IRQCHIP, 0), 0);
	r = (struct kvm_userspace_memory_region){ .slot = 0, .guest_phys_addr = 0,
						  .memory_size = RAM, .userspace_addr = (uintptr_t)ram };
	cr_assert_eq(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r), 0);
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	cr_assert(vcpu >= 0);
	sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	cr_assert(run != MAP_FAILED);

	img = make_elf(segs, 2, 0x100000, &len);
	memcpy(img + sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr), code, sizeof(code));
	data = 0xfeedf00d;
	memcpy(img + sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr) + sizeof(code), &data, 4);
	cr_assert_eq(x86_boot__load(&mem, img, len, NULL, 0, "hello", 0, NULL, &bi), 0);
	free(img);

	cr_assert_eq(x86_cpu__setup(kvm, vcpu, 0, 1), 0);
	cr_assert_eq(x86_boot__setup_vcpu(vcpu, &mem, &bi), 0);
	cr_assert_eq(ioctl(vcpu, KVM_GET_REGS, &regs), 0);
	cr_assert_eq(regs.rip, 0x100000);
	cr_assert_eq(regs.rsi, 0x7000);
	cr_assert_eq(regs.rflags, 2);

	cr_assert_eq(ioctl(vcpu, KVM_RUN, 0), 0);
	cr_assert_eq(run->exit_reason, KVM_EXIT_IO, "exit %u", run->exit_reason);
	cr_assert_eq(run->io.port, 0x1234);
	cr_assert_eq(run->io.size, 4);
	memcpy(&data, (uint8_t *)run + run->io.data_offset, 4);
	cr_assert_eq(data, 0x20000, "guest read cmd_line_ptr through RSI");

	cr_assert_eq(ioctl(vcpu, KVM_RUN, 0), 0);
	cr_assert_eq(run->exit_reason, KVM_EXIT_IO, "exit %u", run->exit_reason);
	memcpy(&data, (uint8_t *)run + run->io.data_offset, 4);
	cr_assert_eq(data, 0xfeedf00d, "second ELF segment visible at 2 MiB");

	/* (HLT is handled inside KVM with an in-kernel irqchip: no third exit to wait for) */
	munmap(run, (size_t)sz);
	close(vcpu);
	close(vm);
	close(kvm);
}
