// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/kvm.h>

#include "irq_fake.h"
#include "vmm/irq.h"

static const struct kvm_irq_routing_entry *find(struct irq *irq, uint32_t gsi, uint32_t chip)
{
	uint32_t i;

	for (i = 0; i < irq->routing->nr; i++) {
		const struct kvm_irq_routing_entry *e = &irq->routing->entries[i];

		if (e->gsi == gsi && e->type == KVM_IRQ_ROUTING_IRQCHIP && e->u.irqchip.irqchip == chip)
			return e;
	}
	return NULL;
}

Test(irq, legacy_routes_match_the_madt)
{
	struct irq irq;
	const struct kvm_irq_routing_entry *e;

	cr_assert_eq(irq__init(&irq, -1), 0);
	cr_assert_eq(irq__setup_legacy(&irq), 0);
	/* the PIT raises GSI 0: IOAPIC pin 2 (MADT override IRQ0 -> GSI2) and PIC pin 0 */
	e = find(&irq, 0, KVM_IRQCHIP_IOAPIC);
	cr_assert_not_null(e);
	cr_assert_eq(e->u.irqchip.pin, 2);
	cr_assert_not_null(find(&irq, 0, KVM_IRQCHIP_PIC_MASTER));
	cr_assert_null(find(&irq, 2, KVM_IRQCHIP_IOAPIC), "GSI 2 is the cascade");
	e = find(&irq, 4, KVM_IRQCHIP_IOAPIC);
	cr_assert_eq(e->u.irqchip.pin, 4);
	e = find(&irq, 9, KVM_IRQCHIP_PIC_SLAVE);
	cr_assert_eq(e->u.irqchip.pin, 1);
	cr_assert_null(find(&irq, 17, KVM_IRQCHIP_PIC_SLAVE));
	cr_assert_eq(find(&irq, 23, KVM_IRQCHIP_IOAPIC)->u.irqchip.pin, 23);
	cr_assert_eq(irq.routing->nr, 15 + 23, "PIC: GSI 0-15 but 2; IOAPIC: GSI 0-23 but 2");
	irq__destroy(&irq);
}

Test(irq, msi_routes_are_replaced_not_duplicated)
{
	struct irq irq;
	int gsi;
	uint32_t n;

	cr_assert_eq(irq__init(&irq, -1), 0);
	gsi = irq__alloc_gsi(&irq);
	cr_assert_geq(gsi, IRQ_NR_LEGACY);
	cr_assert_eq(irq__set_msi_route(&irq, (uint32_t)gsi, 0xfee00000, 0x41), 0);
	n = irq.routing->nr;
	cr_assert_eq(irq__set_msi_route(&irq, (uint32_t)gsi, 0xfee01000, 0x42), 0);
	cr_assert_eq(irq.routing->nr, n);
	cr_assert_eq(irq.routing->entries[n - 1].u.msi.data, 0x42);
	cr_assert_eq(irq__clear_route(&irq, (uint32_t)gsi), 0);
	cr_assert_eq(irq.routing->nr, n - 1);
	cr_assert_eq(irq__set_msi_route(&irq, 3, 0xfee00000, 0x41), -EINVAL, "legacy GSIs are not MSI");
	irq__destroy(&irq);
}

/* without KVM, irqfds are recorded with KVM_IRQFD's answers */
Test(irq, irqfds_are_recorded_without_kvm)
{
	struct irq irq;

	cr_assert_eq(irq__init(&irq, -1), 0);
	cr_assert_eq(irq__irqfd(&irq, 10, 30, -1, true), 0);
	cr_assert_eq(irq__irqfd(&irq, 11, 17, 12, true), 0);
	cr_assert_eq(irq.nr_irqfds, 2);
	cr_assert_eq(fake_irqfd(&irq, 10)->gsi, 30);
	cr_assert_eq(fake_irqfd(&irq, 10)->resample_fd, -1);
	cr_assert_eq(fake_irqfd(&irq, 11)->gsi, 17);
	cr_assert_eq(fake_irqfd(&irq, 11)->resample_fd, 12);
	cr_assert_eq(irq__irqfd(&irq, 10, 31, -1, true), -EBUSY, "one GSI per eventfd");
	cr_assert_eq(irq__irqfd(&irq, -1, 30, -1, true), -EBADF);
	/* detaching another GSI than the eventfd's changes nothing, as in KVM */
	cr_assert_eq(irq__irqfd(&irq, 10, 31, -1, false), 0);
	cr_assert_eq(fake_irqfd(&irq, 10)->gsi, 30);
	cr_assert_eq(irq__irqfd(&irq, 10, 30, -1, false), 0);
	cr_assert_null(fake_irqfd(&irq, 10));
	cr_assert_eq(irq.nr_irqfds, 1);
	/* attached again after a detach */
	cr_assert_eq(irq__irqfd(&irq, 10, 30, -1, true), 0);
	cr_assert_eq(fake_irqfd(&irq, 10)->gsi, 30);
	irq__destroy(&irq);
}
