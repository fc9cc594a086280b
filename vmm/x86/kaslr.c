// SPDX-License-Identifier: MIT
/*
 * KASLR for a kernel booted from its ELF (kaslr.h): finding the relocation
 * table after the ELF, applying it for a virtual offset, and choosing slots.
 */
#include "vmm/x86/kaslr.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

static uint32_t kaslr_word(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* where the ELF's own bytes end: headers, program and section header tables, segment data */
static int kaslr_elf_end(const uint8_t *b, size_t len, uint64_t *end)
{
	uint64_t e, t;
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	unsigned int i;

	if (len < sizeof(eh) || memcmp(b, ELFMAG, SELFMAG))
		return -EINVAL;
	memcpy(&eh, b, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
	    (eh.e_shnum && eh.e_shentsize != sizeof(Elf64_Shdr)))
		return -EINVAL;
	e = sizeof(eh);
	if (add_overflows(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(ph), &t) || t > len)
		return -EINVAL;
	e = MAX(e, t);
	if (eh.e_shnum) {
		if (add_overflows(eh.e_shoff, (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr), &t) ||
		    t > len)
			return -EINVAL;
		e = MAX(e, t);
	}
	for (i = 0; i < eh.e_phnum; i++) {
		memcpy(&ph, b + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD)
			continue;
		if (add_overflows(ph.p_offset, ph.p_filesz, &t) || t > len)
			return -EINVAL;
		e = MAX(e, t);
	}
	*end = e;
	return 0;
}

int x86_kaslr__find_relocs(const void *buf, size_t len, struct x86_kaslr_relocs *r)
{
	const uint8_t *b = buf, *tab;
	size_t n, i, n32 = 0, ninv = 0, n64 = 0;
	uint64_t end;

	memset(r, 0, sizeof(*r));
	if (kaslr_elf_end(b, len, &end))
		return -EINVAL;
	if (end == len)
		return -ENOENT;
	if ((len - end) % 4 || len - end < 3 * 4)
		return -EINVAL;
	tab = b + end;
	n = (len - end) / 4;
	/* backwards, as the kernel reads it: 32-bit, inverse 32-bit, 64-bit */
	i = n - 1;
	for (; i > 0 && kaslr_word(tab + i * 4); i--)
		n32++;
	if (!i)
		return -EINVAL;
	for (i--; i > 0 && kaslr_word(tab + i * 4); i--)
		ninv++;
	if (!i)
		return -EINVAL;
	for (i--; i > 0 && kaslr_word(tab + i * 4); i--)
		n64++;
	/* the 64-bit list's terminator must be the table's first word */
	if (i || kaslr_word(tab))
		return -EINVAL;
	r->table = tab;
	r->n64 = n64;
	r->ninv32 = ninv;
	r->n32 = n32;
	return 0;
}

/* the image offset an entry names, or UINT64_MAX when width bytes there are outside */
static uint64_t kaslr_target(const uint8_t *entry, uint64_t image_len, uint64_t load_addr,
			     unsigned int width)
{
	uint64_t va = (uint64_t)(int64_t)(int32_t)kaslr_word(entry);
	uint64_t off = va - X86_KASLR_START_KERNEL_MAP - load_addr;

	if (va < X86_KASLR_START_KERNEL_MAP + load_addr || off >= image_len ||
	    image_len - off < width)
		return UINT64_MAX;
	return off;
}

/*
 * One list of entries (n, from p): checks each (write false) or applies it
 * (write true): a 32-bit value plus delta (sign -1: minus), or a 64-bit one.
 */
static int kaslr_apply_list(uint8_t *image, uint64_t image_len, uint64_t load_addr,
			    const uint8_t *p, size_t n, unsigned int width, int sign, uint64_t delta,
			    bool write)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t off = kaslr_target(p + i * 4, image_len, load_addr, width);

		if (off == UINT64_MAX)
			return -EINVAL;
		if (!write)
			continue;
		if (width == 8) {
			uint64_t v;

			memcpy(&v, image + off, 8);
			v += delta;
			memcpy(image + off, &v, 8);
		} else {
			uint32_t v;

			memcpy(&v, image + off, 4);
			v = sign < 0 ? v - (uint32_t)delta : v + (uint32_t)delta;
			memcpy(image + off, &v, 4);
		}
	}
	return 0;
}

int x86_kaslr__apply(uint8_t *image, uint64_t image_len, uint64_t load_addr, uint64_t delta,
		     const struct x86_kaslr_relocs *r)
{
	const uint8_t *p64 = r->table + 4, *pinv = p64 + r->n64 * 4 + 4,
		      *p32 = pinv + r->ninv32 * 4 + 4;
	int pass;

	if (!delta)
		return 0;
	/* pass 0 checks every entry, pass 1 writes: all of it or nothing */
	for (pass = 0; pass < 2; pass++)
		if (kaslr_apply_list(image, image_len, load_addr, p32, r->n32, 4, 1, delta, pass) ||
		    kaslr_apply_list(image, image_len, load_addr, pinv, r->ninv32, 4, -1, delta,
				     pass) ||
		    kaslr_apply_list(image, image_len, load_addr, p64, r->n64, 8, 1, delta, pass))
			return -EINVAL;
	return 0;
}

uint64_t x86_kaslr__slot(uint64_t lo, uint64_t hi, uint64_t size, uint64_t align, uint64_t rnd,
			 uint64_t *slots)
{
	uint64_t base, n;

	if (slots)
		*slots = 0;
	if (!align || (align & (align - 1)) || lo > UINT64_MAX - align)
		return UINT64_MAX;
	base = ALIGN_UP(lo, align);
	if (hi < size || base > hi - size)
		return UINT64_MAX;
	n = (hi - size - base) / align + 1;
	if (slots)
		*slots = n;
	return base + (rnd % n) * align;
}

bool x86_kaslr__disabled(const char *cmdline)
{
	const char *p = cmdline;
	size_t w;

	while (p && *p) {
		p += strspn(p, " \t\n");
		w = strcspn(p, " \t\n");
		if (w == 7 && !memcmp(p, "nokaslr", 7))
			return true;
		p += w;
	}
	return false;
}
