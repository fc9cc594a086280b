// SPDX-License-Identifier: MIT
/*
 * The coalesced I/O ring's consumer (see coalesced.h). KVM is the producer:
 * it writes an entry, then (after a write barrier) advances ring->last; the
 * consumer reads last with acquire, each entry, then stores first with
 * release, which is what tells KVM the slot is free again (a full ring makes
 * KVM fall back to an ordinary exit for the write, which the caller drains
 * the ring before handling: the order holds either way).
 */
#include "vmm/coalesced.h"

uint32_t coalesced__drain(struct kvm_coalesced_mmio_ring *ring, uint32_t max, struct bus *pio,
			  struct bus *mmio, uint32_t *bad)
{
	uint32_t first, last, n = 0;

	if (!ring || !max)
		return 0;
	first = __atomic_load_n(&ring->first, __ATOMIC_RELAXED);
	last = __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE);
	if (first >= max || last >= max) {
		if (bad)
			(*bad)++;
		return 0;
	}
	while (first != last) {
		struct kvm_coalesced_mmio *e = &ring->coalesced_mmio[first];
		uint8_t data[8];
		uint32_t len = e->len;

		if (len && len <= sizeof(data)) {
			__builtin_memcpy(data, e->data, len);
			/* a write nobody claims is dropped, as an unclaimed exit's */
			(void)bus__dispatch(e->pio ? pio : mmio, e->phys_addr, data, len, true);
		} else if (bad) {
			(*bad)++;
		}
		first = (first + 1) % max;
		n++;
		__atomic_store_n(&ring->first, first, __ATOMIC_RELEASE);
	}
	return n;
}
