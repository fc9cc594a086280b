// SPDX-License-Identifier: MIT
#include "vmm/irq.h"
#include "vmm/log.h"
#include "vmm/sys.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

#define IRQ_LOG "irq"

int irq__init(struct irq *irq, int vm_fd)
{
	memset(irq, 0, sizeof(*irq));
	irq->vm_fd = vm_fd;
	irq->routing = calloc(1, sizeof(*irq->routing) +
				      IRQ_MAX_ROUTES * sizeof(struct kvm_irq_routing_entry));
	if (!irq->routing)
		return -ENOMEM;
	if (vm_fd < 0) {
		irq->irqfds = calloc(IRQ_MAX_ROUTES, sizeof(*irq->irqfds));
		if (!irq->irqfds) {
			free(irq->routing);
			irq->routing = NULL;
			return -ENOMEM;
		}
	}
	pthread_mutex_init(&irq->lock, NULL);
	irq->next_gsi = IRQ_NR_LEGACY;
	irq->next_legacy = 16; /* PCI INTx lines: IOAPIC pins 16-23 */
	return 0;
}

void irq__destroy(struct irq *irq)
{
	free(irq->routing);
	irq->routing = NULL;
	free(irq->irqfds);
	irq->irqfds = NULL;
	irq->nr_irqfds = 0;
	pthread_mutex_destroy(&irq->lock);
}

static int irq_commit(struct irq *irq)
{
	if (irq->vm_fd < 0)
		return 0;
	return sys__ioctl(irq->vm_fd, KVM_SET_GSI_ROUTING, irq->routing);
}

static int irq_add_entry(struct irq *irq, const struct kvm_irq_routing_entry *e)
{
	if (irq->routing->nr >= IRQ_MAX_ROUTES)
		return -ENOSPC;
	irq->routing->entries[irq->routing->nr++] = *e;
	return 0;
}

/*
 * The default ISA routing, as the ACPI MADT describes it: the PIT (GSI 0)
 * reaches IOAPIC pin 2 (the interrupt source override IRQ0 -> GSI2) and PIC
 * pin 0; GSI 1 and 3-15 go to the same PIC and IOAPIC pins; GSI 2 is the PIC
 * cascade and has no route; GSI 16-23 are IOAPIC-only PCI lines.
 */
int irq__setup_legacy(struct irq *irq)
{
	struct kvm_irq_routing_entry e;
	uint32_t gsi;
	int ret = 0;

	pthread_mutex_lock(&irq->lock);
	for (gsi = 0; gsi < IRQ_NR_LEGACY && !ret; gsi++) {
		if (gsi == 2)
			continue;
		if (gsi < 16) {
			e = (struct kvm_irq_routing_entry){ .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP };
			e.u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
			e.u.irqchip.pin = gsi % 8;
			ret = irq_add_entry(irq, &e);
			if (ret)
				break;
		}
		e = (struct kvm_irq_routing_entry){ .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP };
		e.u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		e.u.irqchip.pin = gsi == 0 ? 2 : gsi;
		ret = irq_add_entry(irq, &e);
	}
	if (!ret)
		ret = irq_commit(irq);
	pthread_mutex_unlock(&irq->lock);
	return ret;
}

int irq__alloc_gsi(struct irq *irq)
{
	int gsi;

	pthread_mutex_lock(&irq->lock);
	gsi = irq->next_gsi < IRQ_MAX_ROUTES ? (int)irq->next_gsi++ : -ENOSPC;
	pthread_mutex_unlock(&irq->lock);
	return gsi;
}

static int irq_find_msi(struct irq *irq, uint32_t gsi)
{
	uint32_t i;

	for (i = 0; i < irq->routing->nr; i++)
		if (irq->routing->entries[i].gsi == gsi &&
		    irq->routing->entries[i].type == KVM_IRQ_ROUTING_MSI)
			return (int)i;
	return -1;
}

int irq__set_msi_route(struct irq *irq, uint32_t gsi, uint64_t addr, uint32_t data)
{
	struct kvm_irq_routing_entry e = { .gsi = gsi, .type = KVM_IRQ_ROUTING_MSI };
	int i, ret = 0;

	if (gsi < IRQ_NR_LEGACY || gsi >= IRQ_MAX_ROUTES)
		return -EINVAL;
	e.u.msi.address_lo = (uint32_t)addr;
	e.u.msi.address_hi = (uint32_t)(addr >> 32);
	e.u.msi.data = data;
	pthread_mutex_lock(&irq->lock);
	i = irq_find_msi(irq, gsi);
	if (i >= 0) {
		struct kvm_irq_routing_entry *cur = &irq->routing->entries[i];

		if (!memcmp(&cur->u.msi, &e.u.msi, sizeof(e.u.msi)))
			goto out; /* unchanged: no routing update */
		*cur = e;
	} else {
		ret = irq_add_entry(irq, &e);
		if (ret)
			goto out;
	}
	ret = irq_commit(irq);
out:
	pthread_mutex_unlock(&irq->lock);
	return ret;
}

int irq__clear_route(struct irq *irq, uint32_t gsi)
{
	int i, ret = 0;

	pthread_mutex_lock(&irq->lock);
	i = irq_find_msi(irq, gsi);
	if (i >= 0) {
		irq->routing->entries[i] = irq->routing->entries[--irq->routing->nr];
		ret = irq_commit(irq);
	}
	pthread_mutex_unlock(&irq->lock);
	return ret;
}

/* without KVM: keep the table KVM_IRQFD would keep, with its answers */
static int irq_record_irqfd(struct irq *irq, int efd, uint32_t gsi, int resample_fd,
			    bool assign)
{
	unsigned int i;
	int ret = 0;

	if (efd < 0)
		return -EBADF;
	pthread_mutex_lock(&irq->lock);
	for (i = 0; i < irq->nr_irqfds; i++)
		if (irq->irqfds[i].efd == efd)
			break;
	if (!assign) {
		/* KVM detaches only an (eventfd, GSI) pair it has, and says nothing otherwise */
		if (i < irq->nr_irqfds && irq->irqfds[i].gsi == gsi)
			irq->irqfds[i] = irq->irqfds[--irq->nr_irqfds];
	} else if (i < irq->nr_irqfds) {
		ret = -EBUSY;
	} else if (irq->nr_irqfds >= IRQ_MAX_ROUTES) {
		ret = -ENOSPC;
	} else {
		irq->irqfds[irq->nr_irqfds++] = (struct irq_irqfd){ efd, gsi, resample_fd };
	}
	pthread_mutex_unlock(&irq->lock);
	return ret;
}

int irq__irqfd(struct irq *irq, int efd, uint32_t gsi, int resample_fd, bool assign)
{
	struct kvm_irqfd f = { .fd = (uint32_t)efd, .gsi = gsi };

	if (irq->vm_fd < 0)
		return irq_record_irqfd(irq, efd, gsi, resample_fd, assign);
	if (!assign)
		f.flags |= KVM_IRQFD_FLAG_DEASSIGN;
	else if (resample_fd >= 0) {
		f.flags |= KVM_IRQFD_FLAG_RESAMPLE;
		f.resamplefd = (uint32_t)resample_fd;
	}
	return sys__ioctl(irq->vm_fd, KVM_IRQFD, &f);
}

int irq__line(struct irq *irq, uint32_t gsi, int level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = (uint32_t)!!level };

	if (irq->vm_fd < 0)
		return 0;
	return sys__ioctl(irq->vm_fd, KVM_IRQ_LINE, &l);
}

int irq__pulse(struct irq *irq, uint32_t gsi)
{
	int ret = irq__line(irq, gsi, 1);

	return ret ? ret : irq__line(irq, gsi, 0);
}

int irq__ioeventfd(struct irq *irq, uint64_t addr, uint32_t len, int64_t datamatch, bool pio,
		   int fd, bool assign)
{
	struct kvm_ioeventfd e = { .addr = addr, .len = len, .fd = fd };

	if (irq->vm_fd < 0)
		return 0;
	if (datamatch >= 0) {
		e.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
		e.datamatch = (uint64_t)datamatch;
	}
	if (pio)
		e.flags |= KVM_IOEVENTFD_FLAG_PIO;
	if (!assign)
		e.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	return sys__ioctl(irq->vm_fd, KVM_IOEVENTFD, &e);
}

int irq__signal_msi(struct irq *irq, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = { .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32),
			       .data = data };
	int ret;

	if (irq->vm_fd < 0)
		return 0;
	ret = sys__ioctl_raw(irq->vm_fd, KVM_SIGNAL_MSI, &msi);
	return ret < 0 ? ret : 0;
}
