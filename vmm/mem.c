// SPDX-License-Identifier: MIT
#include "vmm/mem.h"
#include "vmm/log.h"

#include <errno.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << 26)
#endif

uint64_t mem__host_align(uint64_t page_size)
{
	return MAX(page_size, 2 * MiB);
}

uint64_t mem__place(uint64_t base, uint64_t gpa, uint64_t align)
{
	return base + ((gpa - base) & (align - 1));
}

/*
 * mmap() size bytes at an address congruent to gpa modulo align: reserve
 * size + align of address space (PROT_NONE, nothing committed), map the
 * region over it with MAP_FIXED at the placed address, give the rest back.
 * hugetlb mappings need the placed address aligned to their page size, which
 * it is (gpa is). QEMU's qemu_ram_mmap() does the same.
 */
static void *mem_mmap_placed(uint64_t size, uint64_t gpa, uint64_t align, int flags)
{
	uint64_t len = size + align, base, at;
	void *res, *p;

	res = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return MAP_FAILED;
	base = (uint64_t)(uintptr_t)res;
	at = mem__place(base, gpa, align);
	p = mmap((void *)(uintptr_t)at, size, PROT_READ | PROT_WRITE, flags | MAP_FIXED, -1, 0);
	if (p == MAP_FAILED) {
		int err = errno;

		munmap(res, len);
		errno = err;
		return MAP_FAILED;
	}
	if (at > base)
		munmap(res, at - base);
	if (base + len > at + size)
		munmap((void *)(uintptr_t)(at + size), base + len - (at + size));
	return p;
}

static int mem_map_region(struct guest_mem *m, uint64_t gpa, uint64_t size)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	uint64_t align = mem__host_align(m->hugepages ? 2 * MiB : 4 * KiB);
	struct mem_region *r;
	void *p;

	if (m->nr_regions >= MEM_MAX_REGIONS)
		return -ENOSPC;
	/*
	 * hugetlb pages are reserved at mmap() time, so a shortage fails here
	 * with a message instead of a SIGBUS at first touch; ordinary RAM is
	 * overcommitted like any anonymous memory
	 */
	if (m->hugepages)
		flags |= MAP_HUGETLB | MAP_HUGE_2MB;
	else
		flags |= MAP_NORESERVE;
	p = mem_mmap_placed(size, gpa, align, flags);
	if (p == MAP_FAILED) {
		int err = -errno;

		log_err("mem", "cannot map %llu MiB of guest RAM%s: %s",
			(unsigned long long)(size / MiB),
			m->hugepages ? " on 2 MiB hugepages (is vm.nr_hugepages large enough?)" : "",
			strerror(-err));
		return err;
	}
	madvise(p, size, MADV_MERGEABLE);
	if (!m->hugepages)
		madvise(p, size, MADV_HUGEPAGE);
	r = &m->regions[m->nr_regions];
	r->gpa = gpa;
	r->size = size;
	r->hva = p;
	r->slot = m->nr_regions;
	r->align = align;
	m->nr_regions++;
	log_debug("mem", "RAM gpa 0x%llx-0x%llx at hva %p (%llu KiB-aligned like its gpa)",
		(unsigned long long)gpa, (unsigned long long)(gpa + size - 1), p,
		(unsigned long long)(align / KiB));
	return 0;
}

int mem__init(struct guest_mem *m, uint64_t ram_size, bool hugepages)
{
	uint64_t low;
	int ret;

	memset(m, 0, sizeof(*m));
	if (ram_size < 16 * MiB)
		return -EINVAL;
	if (hugepages && !IS_ALIGNED(ram_size, 2 * MiB))
		return -EINVAL;
	m->hugepages = hugepages;
	m->owned = true;
	m->ram_size = ram_size;
	low = MIN(ram_size, MEM_LOW_END);
	ret = mem_map_region(m, 0, low);
	if (ret)
		goto err_free;
	if (ram_size > low) {
		ret = mem_map_region(m, MEM_HIGH_START, ram_size - low);
		if (ret)
			goto err_free;
	}
	return 0;

err_free:
	mem__free(m);
	return ret;
}

int mem__init_from_buffer(struct guest_mem *m, void *buf, uint64_t gpa, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	if (!buf || !size)
		return -EINVAL;
	m->regions[0] = (struct mem_region){ .gpa = gpa, .size = size, .hva = buf };
	m->nr_regions = 1;
	m->ram_size = size;
	return 0;
}

void mem__free(struct guest_mem *m)
{
	unsigned int i;

	atomic_store(&m->tracking, false);
	for (i = 0; i < m->nr_regions; i++) {
		if (m->owned)
			munmap(m->regions[i].hva, m->regions[i].size);
		free((void *)m->regions[i].dirty);
		m->regions[i].dirty = NULL;
	}
	m->nr_regions = 0;
}

int mem__dirty_start(struct guest_mem *m)
{
	unsigned int i;

	for (i = 0; i < m->nr_regions; i++) {
		struct mem_region *r = &m->regions[i];
		size_t words = MEM_DIRTY_WORDS(r->size);

		if (!r->dirty) {
			r->dirty = calloc(words, sizeof(*r->dirty));
			if (!r->dirty)
				return -ENOMEM;
		} else {
			for (size_t w = 0; w < words; w++)
				atomic_store_explicit(&r->dirty[w], 0, memory_order_relaxed);
		}
	}
	atomic_store(&m->tracking, true);
	return 0;
}

void mem__dirty_stop(struct guest_mem *m)
{
	atomic_store(&m->tracking, false);
}

static void mem_mark_region(const struct mem_region *r, uint64_t off, uint64_t len)
{
	uint64_t pg = off / MEM_PAGE_SIZE, last = (off + len - 1) / MEM_PAGE_SIZE;

	for (; pg <= last; pg++)
		atomic_fetch_or_explicit(&r->dirty[pg / 64], 1ULL << (pg % 64),
					 memory_order_release);
}

void mem__mark_dirty(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	unsigned int i;

	if (!len || !atomic_load_explicit(&m->tracking, memory_order_acquire))
		return;
	for (i = 0; i < m->nr_regions; i++) {
		const struct mem_region *r = &m->regions[i];

		if (r->dirty && gpa >= r->gpa && gpa - r->gpa < r->size) {
			mem_mark_region(r, gpa - r->gpa, MIN(len, r->size - (gpa - r->gpa)));
			return;
		}
	}
}

void mem__mark_dirty_hva(const struct guest_mem *m, const void *hva, size_t len)
{
	const uint8_t *p = hva;
	unsigned int i;

	if (!len || !atomic_load_explicit(&m->tracking, memory_order_acquire))
		return;
	for (i = 0; i < m->nr_regions; i++) {
		const struct mem_region *r = &m->regions[i];

		if (r->dirty && p >= r->hva && (uint64_t)(p - r->hva) < r->size) {
			uint64_t off = (uint64_t)(p - r->hva);

			mem_mark_region(r, off, MIN((uint64_t)len, r->size - off));
			return;
		}
	}
}

void mem__dirty_take(const struct guest_mem *m, unsigned int i, uint64_t *out)
{
	const struct mem_region *r = &m->regions[i];
	size_t w, words = MEM_DIRTY_WORDS(r->size);

	if (!r->dirty)
		return;
	for (w = 0; w < words; w++)
		out[w] |= atomic_exchange_explicit(&r->dirty[w], 0, memory_order_acq_rel);
}

void *mem__gpa_to_hva(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	unsigned int i;
	uint64_t end;

	if (!len || add_overflows(gpa, len, &end))
		return NULL;
	for (i = 0; i < m->nr_regions; i++) {
		const struct mem_region *r = &m->regions[i];

		if (gpa >= r->gpa && end <= r->gpa + r->size)
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

bool mem__is_ram(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	return mem__gpa_to_hva(m, gpa, len) != NULL;
}

int mem__read(const struct guest_mem *m, uint64_t gpa, void *buf, uint64_t len)
{
	void *p;

	if (!len)
		return 0;
	p = mem__gpa_to_hva(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(buf, p, len);
	return 0;
}

int mem__write(const struct guest_mem *m, uint64_t gpa, const void *buf, uint64_t len)
{
	void *p;

	if (!len)
		return 0;
	p = mem__gpa_to_hva(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, buf, len);
	return 0;
}

uint64_t mem__end(const struct guest_mem *m)
{
	uint64_t end = 0;
	unsigned int i;

	for (i = 0; i < m->nr_regions; i++)
		end = MAX(end, m->regions[i].gpa + m->regions[i].size);
	return end;
}
