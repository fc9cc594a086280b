/* SPDX-License-Identifier: MIT */
/*
 * Guest RAM for unit tests of the loaders: an anonymous mapping of size
 * bytes at guest-physical 0, as one region of a struct guest_mem.
 */
#ifndef MINIVMM_TESTS_UNIT_GUEST_RAM_H
#define MINIVMM_TESTS_UNIT_GUEST_RAM_H

#include <criterion/criterion.h>
#include <sys/mman.h>

#include "vmm/mem.h"

static inline uint8_t *guest_ram_map(struct guest_mem *m, size_t size)
{
	uint8_t *ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert(ram != MAP_FAILED);
	cr_assert_eq(mem__init_from_buffer(m, ram, 0, size), 0);
	return ram;
}

static inline void guest_ram_unmap(struct guest_mem *m, uint8_t *ram, size_t size)
{
	mem__free(m);
	munmap(ram, size);
}

#endif
