/* SPDX-License-Identifier: MIT */
/*
 * Interrupt plumbing between devices and KVM: the GSI routing table (legacy
 * IOAPIC/PIC pins plus MSI routes), irqfd and ioeventfd. Devices never call KVM
 * themselves; they hold GSIs and eventfds handed out here (Cloud Hypervisor's
 * vm-device interrupt manager is the model).
 */
#ifndef MINIVMM_VMM_IRQ_H
#define MINIVMM_VMM_IRQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "vmm/util.h"

#define IRQ_NR_LEGACY 24  /* IOAPIC pins; GSI n == pin n, PIC for n < 16 */
#define IRQ_MAX_ROUTES 1024

struct kvm_irq_routing;

/* an eventfd attached to a GSI, as KVM_IRQFD would hold it */
struct irq_irqfd {
	int efd;
	uint32_t gsi;
	int resample_fd;           /* -1: edge-triggered */
};

struct irq {
	int vm_fd;                 /* -1: no KVM (unit tests record routes and irqfds only) */
	pthread_mutex_t lock;
	struct kvm_irq_routing *routing;
	uint32_t next_gsi;
	uint32_t next_legacy;      /* next free legacy line for PCI INTx */
	/* vm_fd < 0 only: the irqfds KVM would hold, in no particular order */
	struct irq_irqfd *irqfds;
	unsigned int nr_irqfds;
};

int irq__init(struct irq *irq, int vm_fd) __must_check;
void irq__destroy(struct irq *irq);

/* sets up default routes: pins 0-15 to PIC+IOAPIC, 16-23 to IOAPIC */
int irq__setup_legacy(struct irq *irq) __must_check;

/* a new GSI for an MSI route (starts unrouted/masked) */
int irq__alloc_gsi(struct irq *irq) __must_check;
/* set (or replace) an MSI route and commit the routing table to KVM */
int irq__set_msi_route(struct irq *irq, uint32_t gsi, uint64_t addr, uint32_t data) __must_check;
/* remove a GSI's route */
int irq__clear_route(struct irq *irq, uint32_t gsi);

/*
 * attach/detach an eventfd to a GSI; resample_fd >= 0 for level-triggered lines.
 * Without KVM the attachment is only recorded (irq->irqfds), with KVM's
 * answers: -EBADF for a bad eventfd, -EBUSY when it is already attached.
 */
int irq__irqfd(struct irq *irq, int efd, uint32_t gsi, int resample_fd, bool assign) __must_check;

/* raise/lower a legacy line (KVM_IRQ_LINE) */
int irq__line(struct irq *irq, uint32_t gsi, int level);
/* pulse an edge on a legacy line */
int irq__pulse(struct irq *irq, uint32_t gsi);

/*
 * KVM_IOEVENTFD: writes to [addr, addr+len) signal fd without an exit to
 * userspace. datamatch < 0 matches any value.
 */
int irq__ioeventfd(struct irq *irq, uint64_t addr, uint32_t len, int64_t datamatch,
		   bool pio, int fd, bool assign) __must_check;

/* inject one MSI directly (fallback when no irqfd is wired) */
int irq__signal_msi(struct irq *irq, uint64_t addr, uint32_t data);

#endif
