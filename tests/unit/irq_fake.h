/* SPDX-License-Identifier: MIT */
/*
 * Reading back what a VM without KVM (vm_fd -1) recorded in its struct irq:
 * the MSI routes and the irqfds that KVM would hold. An eventfd given to a
 * device reaches the guest only if it is attached to a GSI whose route points
 * at the guest's address/data: these helpers follow that chain.
 */
#ifndef MINIVMM_TESTS_UNIT_IRQ_FAKE_H
#define MINIVMM_TESTS_UNIT_IRQ_FAKE_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/irq.h"

/* the irqfd record of eventfd efd, or NULL when it is attached to nothing */
static inline const struct irq_irqfd *fake_irqfd(const struct irq *irq, int efd)
{
	unsigned int i;

	for (i = 0; i < irq->nr_irqfds; i++)
		if (irq->irqfds[i].efd == efd)
			return &irq->irqfds[i];
	return NULL;
}

/* the MSI route of gsi, or NULL */
static inline const struct kvm_irq_routing_entry *fake_msi_route(const struct irq *irq,
								 uint32_t gsi)
{
	uint32_t i;

	for (i = 0; i < irq->routing->nr; i++)
		if (irq->routing->entries[i].gsi == gsi &&
		    irq->routing->entries[i].type == KVM_IRQ_ROUTING_MSI)
			return &irq->routing->entries[i];
	return NULL;
}

/*
 * true when efd reaches the guest as the MSI (addr, data): attached by an
 * irqfd to a GSI whose route says exactly that
 */
static inline bool fake_efd_delivers(const struct irq *irq, int efd, uint64_t addr, uint32_t data)
{
	const struct irq_irqfd *f = fake_irqfd(irq, efd);
	const struct kvm_irq_routing_entry *e = f ? fake_msi_route(irq, f->gsi) : NULL;

	return e && e->u.msi.address_lo == (uint32_t)addr &&
	       e->u.msi.address_hi == (uint32_t)(addr >> 32) && e->u.msi.data == data;
}

#endif
