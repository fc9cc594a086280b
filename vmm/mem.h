/* SPDX-License-Identifier: MIT */
/*
 * Guest RAM: a few regions of anonymous (optionally hugetlb) memory, and the
 * GPA -> HVA translation every device uses. Translation is bounds-checked:
 * a range that is not entirely inside one RAM region yields NULL, which is how
 * hostile guest addresses are caught (virtqueues, DMA descriptors).
 *
 * x86 layout: low RAM from 0 up to MEM_LOW_END (3 GiB) at most, the MMIO hole
 * (PCI 32-bit window, ECAM, IOAPIC, LAPIC) up to 4 GiB, the rest of RAM from 4 GiB.
 *
 * Host placement: each region's host mapping is congruent to its guest address
 * modulo the huge page size of its backing (2 MiB for anonymous memory with
 * transparent huge pages and for 2 MiB hugetlbfs, 1 GiB for 1 GiB hugetlbfs),
 * so that every guest-physical huge block sits on one host huge page. Only
 * then can KVM's nested page tables and the IOMMU (VFIO_IOMMU_MAP_DMA) map
 * guest RAM with huge pages; a mapping merely page-aligned (what mmap() gives
 * on kernels before 6.7) forces 4 KiB mappings for all of guest RAM.
 */
#ifndef MINIVMM_VMM_MEM_H
#define MINIVMM_VMM_MEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vmm/util.h"

#define MEM_LOW_END 0xC0000000ULL /* 3 GiB: start of the 32-bit MMIO hole */
#define MEM_HIGH_START 0x100000000ULL
#define MEM_MAX_REGIONS 4

struct mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
	uint32_t slot;
	uint64_t align; /* hva == gpa modulo align (see "Host placement" above) */
	/*
	 * The pages minivmm itself wrote while dirty tracking is on (virtio
	 * used rings, receive buffers, block reads: KVM's dirty log does not
	 * see them), one bit per 4 KiB page; allocated by mem__dirty_start and
	 * kept until mem__free (a writer on another thread may still hold it).
	 */
	_Atomic uint64_t *dirty;
};

struct guest_mem {
	struct mem_region regions[MEM_MAX_REGIONS];
	unsigned int nr_regions;
	uint64_t ram_size;
	bool hugepages;
	bool owned; /* regions were mmap()ed by mem__init and are unmapped by mem__free */
	_Atomic bool tracking; /* mem__mark_dirty records (a migration runs) */
};

#define MEM_PAGE_SIZE 4096ULL
/* the 64-bit words of a region's dirty bitmap */
#define MEM_DIRTY_WORDS(size) (((size) / MEM_PAGE_SIZE + 63) / 64)

/* allocate ram_size bytes laid out as above; hugepages uses MAP_HUGETLB (2 MiB) */
int mem__init(struct guest_mem *m, uint64_t ram_size, bool hugepages) __must_check;
void mem__free(struct guest_mem *m);

/*
 * the host alignment guest RAM backed by pages of page_size needs: at least
 * 2 MiB (a transparent huge page), or the hugetlb page size when larger
 */
uint64_t mem__host_align(uint64_t page_size);
/*
 * the lowest address >= base that is congruent to gpa modulo align (a power
 * of two): where a region at gpa goes in a reservation starting at base
 */
uint64_t mem__place(uint64_t base, uint64_t gpa, uint64_t align);

/* describe caller-owned memory as one region at gpa (unit tests, fake guests) */
int mem__init_from_buffer(struct guest_mem *m, void *buf, uint64_t gpa, uint64_t size) __must_check;

/* HVA for [gpa, gpa+len) or NULL when any byte is outside RAM or len is 0 */
void *mem__gpa_to_hva(const struct guest_mem *m, uint64_t gpa, uint64_t len);
/* true when [gpa, gpa+len) lies in RAM */
bool mem__is_ram(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* copies; return 0 or -EFAULT when the range is not RAM */
int mem__read(const struct guest_mem *m, uint64_t gpa, void *buf, uint64_t len) __must_check;
int mem__write(const struct guest_mem *m, uint64_t gpa, const void *buf, uint64_t len) __must_check;

/* highest RAM GPA + 1 */
uint64_t mem__end(const struct guest_mem *m);

/*
 * Dirty tracking of minivmm's own writes into guest memory, for pre-copy
 * migration (docs/migration.md). Start clears every bitmap; mark is cheap
 * when tracking is off (one atomic load) and safe from any thread; take
 * moves region i's bits into out (OR), clearing them.
 */
int mem__dirty_start(struct guest_mem *m) __must_check;
void mem__dirty_stop(struct guest_mem *m);
void mem__mark_dirty(const struct guest_mem *m, uint64_t gpa, uint64_t len);
/* the same for a host address inside guest RAM (an iovec from a virtqueue) */
void mem__mark_dirty_hva(const struct guest_mem *m, const void *hva, size_t len);
void mem__dirty_take(const struct guest_mem *m, unsigned int i, uint64_t *out);

#endif
