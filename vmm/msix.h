/* SPDX-License-Identifier: MIT */
/*
 * MSI-X capability, table and PBA emulation feeding KVM GSI routes. Each vector
 * owns an eventfd bound to its GSI with an irqfd, so a device (or a VFIO
 * device, given the same eventfd) signals the guest without going through the
 * VMM. Table writes update the route; masking detaches nothing, it sets the
 * pending bit when the device fires while masked (see msix__notify).
 */
#ifndef MINIVMM_VMM_MSIX_H
#define MINIVMM_VMM_MSIX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "vmm/util.h"

struct irq;
struct msix;
struct pci_dev;

#define MSIX_ENTRY_SIZE 16
#define MSIX_MAX_VECTORS 2048
#define MSIX_NO_VECTOR 0xffff

struct msix_vector {
	uint32_t addr_lo, addr_hi, data, ctrl; /* the guest-visible table entry */
	int gsi;       /* -1 until first routed */
	int efd;       /* irqfd eventfd, -1 when none */
	bool routed;   /* irqfd assigned with a valid route */
	bool pending;  /* PBA bit */
	uint64_t count; /* interrupts delivered (or recorded, without KVM) */
};

/*
 * Passthrough producers (VFIO) signal the vectors' eventfds themselves, so the
 * VMM cannot turn a masked vector's event into a pending bit: instead a masked
 * vector's irqfd is detached (its events wait in the eventfd, shown in the PBA)
 * and attached again on unmask, where KVM delivers what is waiting. Both
 * callbacks run with m->lock held and must not call back into msix.
 */
struct msix_passthrough_ops {
	/*
	 * MSI-X was enabled (on) or disabled by the guest, after every vector's
	 * route and irqfd were brought up to date: hand all vectors' eventfds to
	 * the producer (VFIO_DEVICE_SET_IRQS) or take them back.
	 */
	int (*enable)(struct msix *m, bool on, void *opaque);
	/* vector v became live (unmasked, routed, irqfd bound) or stopped being so */
	void (*vector)(struct msix *m, uint16_t v, bool live, void *opaque);
};

struct msix {
	struct pci_dev *dev;
	struct irq *irq;
	pthread_mutex_t lock;
	uint16_t nr;
	uint8_t cap_off;      /* MSI-X capability offset in config space */
	int table_bar;
	uint32_t table_off;   /* within the BAR */
	uint32_t pba_off;
	struct msix_vector *vec;
	uint64_t userspace_injections; /* MSIs injected by the VMM (fallback path) */
	int pba_bar;          /* BAR holding the PBA (table_bar unless taken over) */
	const struct msix_passthrough_ops *pt_ops; /* NULL: emulated device */
	void *pt_opaque;
	bool pt_enabled;      /* last enable state reported to pt_ops->enable */
	int pt_error;         /* last error pt_ops->enable returned */
};

/*
 * Adds the MSI-X capability to d with nr vectors, table and PBA in BAR `bar`
 * at the given offsets. irq may be NULL in unit tests (no routes then).
 */
int msix__init(struct msix *m, struct pci_dev *d, struct irq *irq, uint16_t nr, int bar,
	       uint32_t table_off, uint32_t pba_off) __must_check;
void msix__destroy(struct msix *m);
/*
 * The vector table and pending bits in the device's state section
 * (properties "msix_table", "msix_pba"); load (after pci__dev_load, which
 * restores the capability's enable and mask bits) re-routes every vector.
 */
int msix__save(struct msix *m, void *fdt) __must_check;
int msix__load(struct msix *m, const void *fdt, int node) __must_check;
/*
 * Passthrough devices: takes over the MSI-X capability already present in d's
 * config space at cap_off (vector count, table and PBA BIR/offset are read from
 * it) instead of appending one. Only enable and function-mask become writable.
 */
int msix__init_existing(struct msix *m, struct pci_dev *d, struct irq *irq,
			uint8_t cap_off) __must_check;
/*
 * Switches m to passthrough delivery (see struct msix_passthrough_ops): every
 * vector gets its eventfd now, and GSIs/routes are kept even without KVM (unit
 * tests then see the routes in irq's table).
 */
int msix__set_passthrough(struct msix *m, const struct msix_passthrough_ops *ops,
			  void *opaque) __must_check;

/* bytes the table + PBA need */
uint32_t msix__table_size(uint16_t nr);
uint32_t msix__pba_size(uint16_t nr);

/* guest accesses to the table / PBA (offset relative to table_off / pba_off) */
void msix__table_access(struct msix *m, uint64_t off, uint8_t *data, uint32_t len, bool is_write);
void msix__pba_access(struct msix *m, uint64_t off, uint8_t *data, uint32_t len, bool is_write);
/* the bus calls this after a config write touched the capability */
void msix__cfg_write(struct msix *m, uint32_t off, uint32_t len);

bool msix__enabled(const struct msix *m);
/* the eventfd of vector v for devices that signal it themselves (irqfd path), or -1 */
int msix__vector_fd(struct msix *m, uint16_t v);
/*
 * Passthrough mode: the eventfd of vector v whether or not it is live now
 * (every vector has one, and it stays the same for the vector's life): what
 * a producer outside the VMM (vhost's call fd) is given. -1 otherwise.
 */
int msix__vector_eventfd(struct msix *m, uint16_t v);
/*
 * Deliver vector v: signal its eventfd, or set its pending bit when the
 * vector or function is masked. In passthrough mode the eventfd is always
 * signalled: a masked vector's irqfd is detached, so the event waits there
 * (and shows in the PBA) until the unmask. Returns 0, or -EINVAL for a bad
 * vector.
 */
int msix__notify(struct msix *m, uint16_t v);

#endif
