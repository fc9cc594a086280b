/* SPDX-License-Identifier: MIT */
/*
 * One range map for the traps of an address space (port I/O or MMIO). vCPU
 * threads dispatch accesses concurrently; a device can deregister a range at
 * any time (a BAR move, hot-unplug). Each range is refcounted: dispatch takes a
 * reference under the read lock and calls the handler without any lock held,
 * and bus__deregister() waits until running handlers have dropped their
 * references before it returns, so the caller may free the handler's opaque
 * data right after (the same reasoning as kvmtool's mmio.c).
 */
#ifndef MINIVMM_VMM_BUS_H
#define MINIVMM_VMM_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "vmm/util.h"

/*
 * offset: addr - range base. data: len bytes (1, 2, 4 or 8 for MMIO), little
 * endian; on reads the handler fills it (it is pre-filled with 0xff).
 */
typedef void (*bus_handler_fn)(void *opaque, uint64_t offset, uint8_t *data,
			       uint32_t len, bool is_write);

struct bus_range;

struct bus {
	const char *name;
	pthread_rwlock_t lock;
	pthread_mutex_t wait_lock;
	pthread_cond_t wait_cond;
	struct bus_range **ranges; /* sorted by base, non-overlapping */
	unsigned int nr, cap;
};

int bus__init(struct bus *b, const char *name) __must_check;
void bus__destroy(struct bus *b);

/* -EEXIST if [base, base+len) overlaps a registered range, -EINVAL if len is 0 or wraps */
int bus__register(struct bus *b, uint64_t base, uint64_t len, bus_handler_fn fn,
		  void *opaque, const char *owner) __must_check;
/* removes the range starting at base and waits for its running handlers; -ENOENT if none */
int bus__deregister(struct bus *b, uint64_t base);

/*
 * Calls the handler covering the whole access. Returns 0, or -ENOENT when no
 * range covers [addr, addr+len) (reads then return all-ones).
 */
int bus__dispatch(struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

/* number of registered ranges (tests) */
unsigned int bus__count(struct bus *b);

#endif
