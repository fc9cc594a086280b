/* SPDX-License-Identifier: MIT */
/*
 * KVM's coalesced I/O ring (KVM_CAP_COALESCED_PIO / _MMIO): writes to a
 * registered zone do not exit to the VMM; KVM queues them in a page shared
 * with userspace (the vCPU mmap at KVM_CAP_COALESCED_MMIO's page offset) and
 * the guest runs on. The VMM applies them, in the order the guest made them,
 * before it handles any exit (so a read that follows a queued write sees its
 * effect), at the pause point (before device state is saved) and at stop.
 *
 * This file is the ring's consumer, free of KVM so that a test can feed it
 * a ring in plain memory; vmm/kvm.c registers the zones and decides when to
 * drain (kvm__coalesce_pio, kvm__coalesced_drain).
 */
#ifndef MINIVMM_VMM_COALESCED_H
#define MINIVMM_VMM_COALESCED_H

#include <linux/kvm.h>
#include <stdint.h>

#include "vmm/bus.h"

/* the entries a ring of ring_bytes holds (KVM_COALESCED_MMIO_MAX for one page) */
static inline uint32_t coalesced__ring_max(uint32_t ring_bytes)
{
	if (ring_bytes <= sizeof(struct kvm_coalesced_mmio_ring))
		return 0;
	return (ring_bytes - (uint32_t)sizeof(struct kvm_coalesced_mmio_ring)) /
	       (uint32_t)sizeof(struct kvm_coalesced_mmio);
}

/*
 * Dispatches the ring's entries from first up to last (KVM's producer index,
 * read once) to pio (entries with .pio set) or mmio, then publishes first.
 * One consumer at a time (the caller serialises). An entry KVM could not have
 * written (a length of 0 or over 8) is skipped and counted in *bad; indices
 * past max stop the drain (counted too). Returns the entries consumed.
 */
uint32_t coalesced__drain(struct kvm_coalesced_mmio_ring *ring, uint32_t max, struct bus *pio,
			  struct bus *mmio, uint32_t *bad);

#endif
