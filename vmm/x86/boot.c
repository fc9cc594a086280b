// SPDX-License-Identifier: MIT
/*
 * x86 boot: bzImage (Documentation/arch/x86/boot.rst, 64-bit entry) and ELF64
 * loading, boot_params and e820, and the BSP long-mode register state.
 *
 * Every field of the kernel image is untrusted: sizes and offsets are checked
 * against the file length and guest RAM before anything is copied.
 */
#include "vmm/x86/boot.h"

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kvm.h>

#include "vmm/log.h"
#include "vmm/pci.h"
#include "vmm/sys.h"
#include "vmm/x86/kaslr.h"

#define BOOT_PREFIX "boot"

#define SETUP_HDR_OFF 0x1f1
#define SETUP_JUMP_OFF 0x200
#define SETUP_HDRS_OFF 0x202
#define HDRS_MAGIC 0x53726448U /* "HdrS" */
#define BOOT_FLAG_MAGIC 0xAA55
#define BOOT_MIN_VERSION 0x020c /* xloadflags (XLF_KERNEL_64) appeared in 2.12 */
#define BOOT_DEFAULT_INITRD_MAX 0x37FFFFFFU
#define BOOT_DEFAULT_CMDLINE_SIZE 255
#define BOOT_HEAP_END 0xfe00 /* heap_end_ptr: end of the setup heap, relative to the setup segment */
#define BOOT_ELF_MAX_PHDRS 64
#define BOOT_64BIT_ENTRY_OFF 0x200

/* page-table entry bits */
#define PTE_P (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_PS (1ULL << 7)

/* control registers */
#define CR0_PE (1ULL << 0)
#define CR0_ET (1ULL << 4)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

/* the end of the RAM region at GPA 0, capped to the 32-bit hole; 0 if none */
static uint64_t boot_low_ram_end(const struct guest_mem *m)
{
	unsigned int i;

	for (i = 0; i < m->nr_regions; i++)
		if (m->regions[i].gpa == 0)
			return MIN(m->regions[i].size, MEM_LOW_END);
	return 0;
}

static size_t e820_add(struct boot_e820_entry *out, size_t n, size_t max, uint64_t addr,
		       uint64_t size, uint32_t type)
{
	if (!size || n >= max)
		return n;
	out[n].addr = addr;
	out[n].size = size;
	out[n].type = type;
	return n + 1;
}

size_t x86_boot__build_e820(const struct guest_mem *m, struct boot_e820_entry *out, size_t max)
{
	bool ecam_clash = false;
	size_t n = 0, i, j;
	unsigned int r;

	for (r = 0; r < m->nr_regions; r++) {
		uint64_t s = m->regions[r].gpa, e = s + m->regions[r].size;

		/* RAM minus the EBDA/BIOS hole [0x9FC00, 1 MiB) */
		if (s < X86_BOOT_EBDA_START)
			n = e820_add(out, n, max, s, MIN(e, X86_BOOT_EBDA_START) - s, X86_E820_RAM);
		if (e > X86_BOOT_HIMEM_START) {
			uint64_t hs = MAX(s, X86_BOOT_HIMEM_START);

			n = e820_add(out, n, max, hs, e - hs, X86_E820_RAM);
		}
		if (ranges_overlap(s, e - s, PCI_ECAM_BASE, PCI_ECAM_SIZE))
			ecam_clash = true;
	}
	n = e820_add(out, n, max, X86_BOOT_EBDA_START, X86_BOOT_HIMEM_START - X86_BOOT_EBDA_START,
		     X86_E820_RESERVED);
	if (!ecam_clash)
		n = e820_add(out, n, max, PCI_ECAM_BASE, PCI_ECAM_SIZE, X86_E820_RESERVED);

	/* insertion sort by address: a handful of entries */
	for (i = 1; i < n; i++) {
		struct boot_e820_entry t = out[i];

		for (j = i; j > 0 && out[j - 1].addr > t.addr; j--)
			out[j] = out[j - 1];
		out[j] = t;
	}
	return n;
}

/* the boot structures below 1 MiB that no kernel segment may overwrite */
static bool boot_hits_low_structures(uint64_t gpa, uint64_t len)
{
	return ranges_overlap(gpa, len, 0, X86_BOOT_LOW_RESERVED_END) ||
	       ranges_overlap(gpa, len, X86_BOOT_EBDA_START,
			      X86_BOOT_HIMEM_START - X86_BOOT_EBDA_START);
}

static int boot_write_cmdline(struct guest_mem *m, const char *cmdline, uint64_t limit)
{
	size_t len;

	if (!cmdline)
		cmdline = "";
	len = strlen(cmdline) + 1;
	if (len > limit) {
		log_err(BOOT_PREFIX, "command line is %zu bytes, the kernel accepts at most %llu",
			len - 1, (unsigned long long)(limit - 1));
		return -E2BIG;
	}
	return mem__write(m, X86_BOOT_CMDLINE_GPA, cmdline, len);
}

/* where an initrd of ilen bytes goes below top (ilen <= top): page-aligned, as high as it fits */
static uint64_t boot_initrd_at(uint64_t top, size_t ilen)
{
	return ALIGN_DOWN(top - ilen, 4096ULL);
}

/*
 * Places the initrd page-aligned at the top of low RAM below max_end (exclusive),
 * never below floor. Returns its GPA in *gpa.
 */
static int boot_place_initrd(struct guest_mem *m, const void *initrd, size_t ilen,
			     uint64_t max_end, uint64_t floor, uint64_t *gpa)
{
	uint64_t top = MIN(MIN(max_end, boot_low_ram_end(m)), MEM_LOW_END);
	uint64_t at;

	if (ilen > top) {
		log_err(BOOT_PREFIX, "initrd (%zu bytes) does not fit below 0x%llx", ilen,
			(unsigned long long)top);
		return -ENOMEM;
	}
	at = boot_initrd_at(top, ilen);
	if (at < floor) {
		log_err(BOOT_PREFIX,
			"initrd (%zu bytes) does not fit between the kernel (ends at 0x%llx) and 0x%llx",
			ilen, (unsigned long long)floor, (unsigned long long)top);
		return -ENOMEM;
	}
	*gpa = at;
	return mem__write(m, at, initrd, ilen);
}

static void boot_fill_e820(struct guest_mem *m, struct boot_params *bp)
{
	bp->e820_entries = (uint8_t)x86_boot__build_e820(m, bp->e820_table, E820_MAX_ENTRIES_ZEROPAGE);
}

static int boot_load_bzimage(struct guest_mem *m, const uint8_t *k, size_t klen, const void *initrd,
			     size_t ilen, const char *cmdline, uint64_t rsdp_gpa,
			     struct x86_boot_info *bi, struct boot_params *bp)
{
	struct setup_header *h = &bp->hdr;
	uint64_t setup_size, ksize, load, run, align, init_size, kernel_end, limit, low_end;
	uint64_t initrd_max_end, initrd_gpa = 0;
	size_t hdr_end, copy;
	unsigned int setup_sects;
	int ret;

	hdr_end = SETUP_HDRS_OFF + (size_t)k[SETUP_JUMP_OFF + 1];
	if (hdr_end > klen) {
		log_err(BOOT_PREFIX, "bzImage truncated inside its setup header (%zu < %zu bytes)",
			klen, hdr_end);
		return -EINVAL;
	}
	if (hdr_end < SETUP_HDR_OFF + offsetof(struct setup_header, cmdline_size) + 4) {
		log_err(BOOT_PREFIX, "bzImage setup header too short (%zu bytes)",
			hdr_end - SETUP_HDR_OFF);
		return -ENOEXEC;
	}
	copy = MIN(hdr_end - SETUP_HDR_OFF, sizeof(*h));
	memcpy(h, k + SETUP_HDR_OFF, copy);

	if (h->boot_flag != BOOT_FLAG_MAGIC) {
		log_err(BOOT_PREFIX, "bzImage has no 0xAA55 boot flag");
		return -ENOEXEC;
	}
	if (h->version < BOOT_MIN_VERSION) {
		log_err(BOOT_PREFIX, "boot protocol %u.%02u is too old (need 2.12 or later)",
			h->version >> 8, h->version & 0xff);
		return -ENOEXEC;
	}
	if (!(h->loadflags & LOADED_HIGH)) {
		log_err(BOOT_PREFIX, "zImage (loaded low) kernels are not supported");
		return -ENOEXEC;
	}
	if (!(h->xloadflags & XLF_KERNEL_64)) {
		log_err(BOOT_PREFIX, "kernel has no 64-bit entry point (XLF_KERNEL_64 clear)");
		return -ENOEXEC;
	}

	setup_sects = h->setup_sects ? h->setup_sects : 4;
	setup_size = (uint64_t)(setup_sects + 1) * 512;
	if (setup_size >= klen) {
		log_err(BOOT_PREFIX, "bzImage truncated: %zu bytes, setup alone is %llu", klen,
			(unsigned long long)setup_size);
		return -EINVAL;
	}
	ksize = klen - setup_size;
	if ((uint64_t)h->syssize * 16 > ksize) {
		log_err(BOOT_PREFIX, "bzImage truncated: protected-mode part is %llu bytes, header says %llu",
			(unsigned long long)ksize, (unsigned long long)h->syssize * 16);
		return -EINVAL;
	}

	/*
	 * Load at 1 MiB. A relocatable kernel's 64-bit entry moves itself to
	 * ALIGN_UP(load, kernel_alignment) but not below LOAD_PHYSICAL_ADDR
	 * (pref_address) and needs init_size bytes there; a fixed one runs at
	 * pref_address. Reserve that whole span.
	 */
	init_size = h->init_size ? h->init_size : ksize;
	load = X86_BOOT_KERNEL_GPA;
	if (h->relocatable_kernel) {
		align = h->kernel_alignment;
		if (!align || (align & (align - 1)) || align > 1 * GiB) {
			log_err(BOOT_PREFIX, "bad kernel_alignment 0x%llx", (unsigned long long)align);
			return -EINVAL;
		}
		run = MAX(ALIGN_UP(load, align), h->pref_address);
	} else {
		if (h->pref_address >= X86_BOOT_KERNEL_GPA && h->pref_address < MEM_LOW_END)
			load = h->pref_address;
		else if (h->pref_address)
			log_warn(BOOT_PREFIX, "ignoring pref_address 0x%llx of a fixed kernel",
				 (unsigned long long)h->pref_address);
		run = MAX(load, (uint64_t)h->pref_address);
	}
	low_end = boot_low_ram_end(m);
	kernel_end = MAX(load + ksize, run + init_size);
	if (run > MEM_LOW_END || kernel_end > low_end) {
		log_err(BOOT_PREFIX, "kernel needs RAM up to 0x%llx, low RAM ends at 0x%llx",
			(unsigned long long)kernel_end, (unsigned long long)low_end);
		return -ENOMEM;
	}

	limit = h->cmdline_size ? (uint64_t)h->cmdline_size + 1 : BOOT_DEFAULT_CMDLINE_SIZE + 1;
	ret = boot_write_cmdline(m, cmdline, MIN(limit, X86_BOOT_CMDLINE_MAX));
	if (ret)
		return ret;

	if (ilen) {
		initrd_max_end = (uint64_t)(h->initrd_addr_max ? h->initrd_addr_max
							       : BOOT_DEFAULT_INITRD_MAX) + 1;
		ret = boot_place_initrd(m, initrd, ilen, initrd_max_end, kernel_end, &initrd_gpa);
		if (ret)
			return ret;
	}

	ret = mem__write(m, load, k + setup_size, ksize);
	if (ret)
		return ret;

	h->type_of_loader = 0xff;
	h->loadflags |= CAN_USE_HEAP | LOADED_HIGH;
	h->loadflags &= (uint8_t)~(QUIET_FLAG | KEEP_SEGMENTS);
	h->heap_end_ptr = BOOT_HEAP_END;
	h->code32_start = (uint32_t)load;
	h->cmd_line_ptr = (uint32_t)X86_BOOT_CMDLINE_GPA;
	bp->ext_cmd_line_ptr = 0;
	h->ramdisk_image = (uint32_t)initrd_gpa;
	h->ramdisk_size = (uint32_t)ilen;
	bp->ext_ramdisk_image = (uint32_t)(initrd_gpa >> 32);
	bp->ext_ramdisk_size = (uint32_t)((uint64_t)ilen >> 32);
	if (h->version >= 0x020e)
		bp->acpi_rsdp_addr = rsdp_gpa;
	boot_fill_e820(m, bp);

	bi->entry = load + BOOT_64BIT_ENTRY_OFF;
	bi->initrd_gpa = initrd_gpa;
	bi->initrd_size = ilen;
	bi->elf = false;
	log_info(BOOT_PREFIX, "bzImage protocol %u.%02u, %llu KiB at 0x%llx, init_size %llu KiB",
		 h->version >> 8, h->version & 0xff, (unsigned long long)(ksize / KiB),
		 (unsigned long long)load, (unsigned long long)(init_size / KiB));
	return 0;
}

static void boot_elf_phdr(const uint8_t *k, const Elf64_Ehdr *eh, unsigned int i, Elf64_Phdr *ph)
{
	memcpy(ph, k + eh->e_phoff + (uint64_t)i * sizeof(*ph), sizeof(*ph));
}

/* the span of an ELF kernel's PT_LOAD segments (phdrs already bounded by the file) */
struct boot_elf_span {
	uint64_t load;     /* the lowest p_paddr: the link-time physical address */
	uint64_t mem_end;  /* the highest p_paddr + p_memsz */
	uint64_t file_end; /* the highest p_paddr + p_filesz */
};

static void boot_elf_span(const uint8_t *k, const Elf64_Ehdr *eh, struct boot_elf_span *sp)
{
	Elf64_Phdr ph;
	unsigned int i;

	sp->load = UINT64_MAX;
	sp->mem_end = sp->file_end = 0;
	for (i = 0; i < eh->e_phnum; i++) {
		boot_elf_phdr(k, eh, i, &ph);
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		sp->load = MIN(sp->load, ph.p_paddr);
		/* sums checked by the caller's validation */
		sp->mem_end = MAX(sp->mem_end, ph.p_paddr + ph.p_memsz);
		sp->file_end = MAX(sp->file_end, ph.p_paddr + ph.p_filesz);
	}
}

/*
 * KASLR for an ELF kernel (kaslr.h): the physical address, below the initrd
 * that goes at the top of low RAM (limit), and the virtual offset. Sets
 * *phys_delta and bi's figures; the relocations are applied after the copy.
 */
static void boot_kaslr_choose(const struct x86_boot_kaslr *ka, const struct boot_elf_span *sp,
			      uint64_t limit, uint64_t *phys_delta, uint64_t *virt_delta,
			      struct x86_boot_info *bi)
{
	uint64_t align = MAX(ka->align, X86_KASLR_MIN_ALIGN);
	uint64_t need = MAX(sp->mem_end - sp->load, ka->init_size), at;

	*phys_delta = *virt_delta = 0;
	if (!IS_ALIGNED(sp->load, X86_KASLR_MIN_ALIGN) || (align & (align - 1))) {
		log_warn(BOOT_PREFIX, "KASLR: the kernel's load address 0x%llx or alignment 0x%llx is not one it can move by: it runs where it was linked",
			 (unsigned long long)sp->load, (unsigned long long)ka->align);
		return;
	}
	at = x86_kaslr__slot(sp->load, limit, need, align, ka->rnd[0], &bi->kaslr_phys_slots);
	if (at != UINT64_MAX)
		*phys_delta = at - sp->load;
	at = x86_kaslr__slot(sp->load, X86_KASLR_IMAGE_SIZE, need, align, ka->rnd[1],
			     &bi->kaslr_virt_slots);
	if (at != UINT64_MAX)
		*virt_delta = at - sp->load;
}

static int boot_load_elf(struct guest_mem *m, const uint8_t *k, size_t klen, const void *initrd,
			 size_t ilen, const char *cmdline, uint64_t rsdp_gpa,
			 const struct x86_boot_kaslr *kaslr, struct x86_boot_info *bi,
			 struct boot_params *bp)
{
	uint64_t phend, end, initrd_gpa = 0, top, limit, phys_delta = 0, virt_delta = 0;
	struct x86_kaslr_relocs relocs;
	struct boot_elf_span span;
	bool entry_ok = false, relocs_ok = false;
	unsigned int i, nload = 0;
	double copy_ms, reloc_ms;
	struct timespec t0;
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	int ret;

	if (klen < sizeof(eh)) {
		log_err(BOOT_PREFIX, "ELF file truncated (%zu bytes)", klen);
		return -EINVAL;
	}
	memcpy(&eh, k, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB) {
		log_err(BOOT_PREFIX, "ELF kernel is not 64-bit little-endian");
		return -ENOEXEC;
	}
	if (eh.e_machine != EM_X86_64) {
		log_err(BOOT_PREFIX, "ELF kernel is for machine %u, not x86-64", eh.e_machine);
		return -ENOEXEC;
	}
	if (eh.e_type != ET_EXEC) {
		log_err(BOOT_PREFIX, "ELF kernel is type %u, not an executable (ET_EXEC)", eh.e_type);
		return -ENOEXEC;
	}
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 ||
	    eh.e_phnum > BOOT_ELF_MAX_PHDRS) {
		log_err(BOOT_PREFIX, "ELF kernel has bad program headers (%u x %u bytes)",
			eh.e_phnum, eh.e_phentsize);
		return -EINVAL;
	}
	if (add_overflows(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), &phend) ||
	    phend > klen) {
		log_err(BOOT_PREFIX, "ELF program headers lie beyond the end of the file");
		return -EINVAL;
	}

	/* the file's own bounds first: sizes, overflow */
	for (i = 0; i < eh.e_phnum; i++) {
		boot_elf_phdr(k, &eh, i, &ph);
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		if (ph.p_filesz > ph.p_memsz) {
			log_err(BOOT_PREFIX, "ELF segment %u: file size exceeds memory size", i);
			return -EINVAL;
		}
		if (add_overflows(ph.p_offset, ph.p_filesz, &end) || end > klen) {
			log_err(BOOT_PREFIX, "ELF segment %u: data beyond the end of the file", i);
			return -EINVAL;
		}
		if (add_overflows(ph.p_paddr, ph.p_memsz, &end) || end > MEM_LOW_END) {
			log_err(BOOT_PREFIX, "ELF segment %u [0x%llx+0x%llx] is outside guest RAM", i,
				(unsigned long long)ph.p_paddr, (unsigned long long)ph.p_memsz);
			return -EINVAL;
		}
		nload++;
	}
	if (!nload) {
		log_err(BOOT_PREFIX, "ELF kernel has no loadable segment");
		return -ENOEXEC;
	}
	boot_elf_span(k, &eh, &span);

	/* the initrd goes at the top of low RAM; a moved kernel stays below it */
	top = MIN(boot_low_ram_end(m), MEM_LOW_END);
	limit = ilen && ilen < top ? boot_initrd_at(top, ilen) : top;
	if (kaslr && x86_kaslr__disabled(cmdline)) {
		log_info(BOOT_PREFIX, "KASLR: off (nokaslr on the command line)");
		kaslr = NULL;
	}
	if (kaslr) {
		ret = x86_kaslr__find_relocs(k, klen, &relocs);
		if (!ret)
			relocs_ok = true;
		else
			log_warn(BOOT_PREFIX, "KASLR: %s: the kernel keeps its link-time virtual address (its physical address is still chosen at random)",
				 ret == -ENOENT ? "the kernel has no relocation table (built without RANDOMIZE_BASE)"
						: "the relocation table after the ELF is malformed");
		boot_kaslr_choose(kaslr, &span, limit, &phys_delta, &virt_delta, bi);
		if (!relocs_ok)
			virt_delta = 0;
	}

	/* then every segment where it will go, before copying any */
	for (i = 0; i < eh.e_phnum; i++) {
		boot_elf_phdr(k, &eh, i, &ph);
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		if (!mem__is_ram(m, ph.p_paddr + phys_delta, ph.p_memsz)) {
			log_err(BOOT_PREFIX, "ELF segment %u [0x%llx+0x%llx] is outside guest RAM", i,
				(unsigned long long)(ph.p_paddr + phys_delta),
				(unsigned long long)ph.p_memsz);
			return -EINVAL;
		}
		if (boot_hits_low_structures(ph.p_paddr + phys_delta, ph.p_memsz)) {
			log_err(BOOT_PREFIX,
				"ELF segment %u [0x%llx+0x%llx] overlaps the boot structures below 1 MiB",
				i, (unsigned long long)(ph.p_paddr + phys_delta),
				(unsigned long long)ph.p_memsz);
			return -EINVAL;
		}
		if (eh.e_entry >= ph.p_paddr && eh.e_entry < ph.p_paddr + ph.p_memsz)
			entry_ok = true;
	}
	if (!entry_ok) {
		log_err(BOOT_PREFIX, "ELF entry 0x%llx is not inside a loaded segment",
			(unsigned long long)eh.e_entry);
		return -EINVAL;
	}

	ret = boot_write_cmdline(m, cmdline, X86_BOOT_CMDLINE_MAX);
	if (ret)
		return ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < eh.e_phnum; i++) {
		uint8_t *dst;

		boot_elf_phdr(k, &eh, i, &ph);
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		dst = mem__gpa_to_hva(m, ph.p_paddr + phys_delta, ph.p_memsz);
		if (!dst)
			return -EINVAL;
		memcpy(dst, k + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
	}
	copy_ms = ms_since(&t0);
	if (virt_delta) {
		uint64_t ilen_img = span.file_end - span.load;
		uint8_t *img = mem__gpa_to_hva(m, span.load + phys_delta, ilen_img);

		if (!img || x86_kaslr__apply(img, ilen_img, span.load, virt_delta, &relocs)) {
			log_err(BOOT_PREFIX, "KASLR: a relocation of the kernel points outside its image (%zu + %zu + %zu entries)",
				relocs.n32, relocs.ninv32, relocs.n64);
			return -EINVAL;
		}
	}
	reloc_ms = ms_since(&t0) - copy_ms;

	if (ilen) {
		ret = boot_place_initrd(m, initrd, ilen, top, X86_BOOT_HIMEM_START, &initrd_gpa);
		if (ret)
			return ret;
		for (i = 0; i < eh.e_phnum; i++) {
			boot_elf_phdr(k, &eh, i, &ph);
			if (ph.p_type == PT_LOAD && ph.p_memsz &&
			    ranges_overlap(initrd_gpa, ilen, ph.p_paddr + phys_delta, ph.p_memsz)) {
				log_err(BOOT_PREFIX, "initrd at 0x%llx would overlap ELF segment %u",
					(unsigned long long)initrd_gpa, i);
				return -ENOMEM;
			}
		}
	}

	bp->hdr.boot_flag = BOOT_FLAG_MAGIC;
	bp->hdr.header = HDRS_MAGIC;
	bp->hdr.version = 0x020f;
	bp->hdr.type_of_loader = 0xff;
	bp->hdr.loadflags = LOADED_HIGH | CAN_USE_HEAP;
	/* what the decompressor says when it ran KASLR: the kernel then randomizes its memory regions too */
	if (kaslr)
		bp->hdr.loadflags |= KASLR_FLAG;
	bp->hdr.heap_end_ptr = BOOT_HEAP_END;
	bp->hdr.xloadflags = XLF_KERNEL_64;
	bp->hdr.cmd_line_ptr = (uint32_t)X86_BOOT_CMDLINE_GPA;
	bp->hdr.cmdline_size = (uint32_t)(X86_BOOT_CMDLINE_MAX - 1);
	bp->hdr.ramdisk_image = (uint32_t)initrd_gpa;
	bp->hdr.ramdisk_size = (uint32_t)ilen;
	bp->ext_ramdisk_size = (uint32_t)((uint64_t)ilen >> 32);
	bp->acpi_rsdp_addr = rsdp_gpa;
	boot_fill_e820(m, bp);

	bi->entry = eh.e_entry + phys_delta;
	bi->initrd_gpa = initrd_gpa;
	bi->initrd_size = ilen;
	bi->elf = true;
	bi->kaslr_phys_delta = phys_delta;
	bi->kaslr_virt_delta = virt_delta;
	bi->copy_ms = copy_ms;
	bi->reloc_ms = reloc_ms;
	log_info(BOOT_PREFIX, "ELF kernel: %u segments%s", nload,
		 kaslr ? (virt_delta || phys_delta ? ", KASLR: moved by minivmm"
						   : ", KASLR: no room to move it")
		       : "");
	log_debug(BOOT_PREFIX, "ELF kernel: entry 0x%llx, physical +0x%llx (of %llu slots), virtual +0x%llx (of %llu slots)",
		  (unsigned long long)bi->entry, (unsigned long long)phys_delta,
		  (unsigned long long)bi->kaslr_phys_slots, (unsigned long long)virt_delta,
		  (unsigned long long)bi->kaslr_virt_slots);
	return 0;
}

int x86_boot__load(struct guest_mem *m, const void *kernel, size_t klen, const void *initrd,
		   size_t ilen, const char *cmdline, uint64_t rsdp_gpa,
		   const struct x86_boot_kaslr *kaslr, struct x86_boot_info *bi)
{
	const uint8_t *k = kernel;
	struct boot_params *bp;
	uint32_t magic;
	int ret;

	if (!m || !kernel || !bi || (ilen && !initrd))
		return -EINVAL;
	if (!mem__is_ram(m, 0, X86_BOOT_HIMEM_START) || boot_low_ram_end(m) <= X86_BOOT_HIMEM_START) {
		log_err(BOOT_PREFIX, "guest RAM must start at 0 and extend beyond 1 MiB");
		return -EINVAL;
	}
	memset(bi, 0, sizeof(*bi));
	bp = calloc(1, sizeof(*bp));
	if (!bp)
		return -ENOMEM;

	if (klen >= SELFMAG && !memcmp(k, ELFMAG, SELFMAG)) {
		ret = boot_load_elf(m, k, klen, initrd, ilen, cmdline, rsdp_gpa, kaslr, bi, bp);
	} else if (klen >= SETUP_HDRS_OFF + 4 &&
		   (memcpy(&magic, k + SETUP_HDRS_OFF, 4), magic == HDRS_MAGIC)) {
		ret = boot_load_bzimage(m, k, klen, initrd, ilen, cmdline, rsdp_gpa, bi, bp);
	} else {
		log_err(BOOT_PREFIX, "kernel is neither a bzImage (no HdrS) nor an ELF file (%zu bytes)",
			klen);
		ret = -ENOEXEC;
	}
	if (ret)
		goto err_free;

	ret = mem__write(m, X86_BOOT_PARAMS_GPA, bp, sizeof(*bp));
	if (ret)
		goto err_free;
	free(bp);
	bi->boot_params_gpa = X86_BOOT_PARAMS_GPA;
	bi->cmdline_gpa = X86_BOOT_CMDLINE_GPA;
	return 0;

err_free:
	free(bp);
	memset(bi, 0, sizeof(*bi));
	return ret;
}

static uint64_t boot_gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
	       ((uint64_t)(limit & 0xf0000u) << 32) | ((uint64_t)(base & 0xffffffu) << 16) |
	       (uint64_t)(limit & 0xffffu);
}

int x86_boot__write_tables(struct guest_mem *m)
{
	uint64_t gdt[X86_BOOT_GDT_ENTRIES] = {
		[X86_BOOT_SEL_CODE >> 3] = boot_gdt_entry(0xa09b, 0, 0xfffff),
		[X86_BOOT_SEL_DATA >> 3] = boot_gdt_entry(0xc093, 0, 0xfffff),
		/* 64-bit busy TSS: 16 bytes, the upper half (base 63:32) is zero */
		[X86_BOOT_SEL_TSS >> 3] = boot_gdt_entry(0x008b, 0, 0x67),
	};
	uint64_t idt[2] = { 0, 0 };
	uint64_t *pml4, *pdpt, *pd;
	unsigned int i;
	int ret;

	ret = mem__write(m, X86_BOOT_GDT_GPA, gdt, sizeof(gdt));
	if (ret)
		return ret;
	ret = mem__write(m, X86_BOOT_IDT_GPA, idt, sizeof(idt));
	if (ret)
		return ret;

	pml4 = mem__gpa_to_hva(m, X86_BOOT_PML4_GPA, 4096);
	pdpt = mem__gpa_to_hva(m, X86_BOOT_PDPT_GPA, 4096);
	pd = mem__gpa_to_hva(m, X86_BOOT_PD_GPA, 4 * 4096);
	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = X86_BOOT_PDPT_GPA | PTE_P | PTE_RW;
	for (i = 0; i < 4; i++)
		pdpt[i] = (X86_BOOT_PD_GPA + i * 4096ULL) | PTE_P | PTE_RW;
	for (i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | PTE_P | PTE_RW | PTE_PS;
	return 0;
}

static void boot_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = 0;
	s->db = code ? 0 : 1;
	s->s = 1;
	s->l = code ? 1 : 0;
	s->g = 1;
}

void x86_boot__fill_sregs(struct kvm_sregs *s)
{
	boot_seg(&s->cs, X86_BOOT_SEL_CODE, 0xb, true);
	boot_seg(&s->ds, X86_BOOT_SEL_DATA, 0x3, false);
	s->es = s->ds;
	s->fs = s->ds;
	s->gs = s->ds;
	s->ss = s->ds;

	memset(&s->tr, 0, sizeof(s->tr));
	s->tr.selector = X86_BOOT_SEL_TSS;
	s->tr.limit = 0x67;
	s->tr.type = 0xb; /* busy 64-bit TSS */
	s->tr.present = 1;

	s->gdt.base = X86_BOOT_GDT_GPA;
	s->gdt.limit = X86_BOOT_GDT_ENTRIES * 8 - 1;
	s->idt.base = X86_BOOT_IDT_GPA;
	s->idt.limit = 15;

	s->cr0 = CR0_PE | CR0_ET | CR0_PG;
	s->cr3 = X86_BOOT_PML4_GPA;
	s->cr4 = CR4_PAE;
	s->efer = EFER_LME | EFER_LMA;
}

int x86_boot__setup_vcpu(int vcpu_fd, struct guest_mem *m, const struct x86_boot_info *bi)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int ret;

	ret = x86_boot__write_tables(m);
	if (ret) {
		log_err(BOOT_PREFIX, "cannot write the GDT and page tables: guest RAM too small");
		return ret;
	}
	ret = sys__ioctl(vcpu_fd, KVM_GET_SREGS, &sregs);
	if (ret < 0)
		return ret;
	x86_boot__fill_sregs(&sregs);
	ret = sys__ioctl(vcpu_fd, KVM_SET_SREGS, &sregs);
	if (ret < 0)
		return ret;

	memset(&regs, 0, sizeof(regs));
	regs.rip = bi->entry;
	regs.rsi = bi->boot_params_gpa;
	regs.rflags = 2;
	regs.rsp = 0;
	ret = sys__ioctl(vcpu_fd, KVM_SET_REGS, &regs);
	if (ret < 0)
		return ret;
	return 0;
}
