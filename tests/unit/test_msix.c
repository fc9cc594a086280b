// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/pci_regs.h>
#include <string.h>
#include <unistd.h>

#include "irq_fake.h"
#include "vmm/irq.h"
#include "vmm/msix.h"
#include "vmm/pci.h"

static struct pci_dev dev;
static struct irq irq;
static struct msix m;

static void setup(void)
{
	pci__dev_init(&dev, "msix-test", 1, 2, 0, 0, 0, 0, NULL);
	cr_assert_eq(irq__init(&irq, -1), 0);
	cr_assert_eq(msix__init(&m, &dev, &irq, 3, 1, 0x800, 0xc00), 0);
}

static void teardown(void)
{
	msix__destroy(&m);
	irq__destroy(&irq);
}

TestSuite(msix, .init = setup, .fini = teardown);

static void entry_write(uint16_t v, uint32_t field, uint32_t val)
{
	msix__table_access(&m, v * 16 + field, (uint8_t *)&val, 4, true);
}

static void ctrl_write(uint16_t flags)
{
	pci__cfg_wr16(&dev, m.cap_off + PCI_MSIX_FLAGS,
		      (pci__cfg_rd16(&dev, m.cap_off + PCI_MSIX_FLAGS) & 0x07ff) | flags);
	msix__cfg_write(&m, m.cap_off + PCI_MSIX_FLAGS, 2);
}

Test(msix, capability_layout)
{
	cr_assert_eq(pci__cfg_rd8(&dev, m.cap_off), PCI_CAP_ID_MSIX);
	cr_assert_eq(pci__cfg_rd16(&dev, m.cap_off + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_QSIZE, 2);
	cr_assert_eq(pci__cfg_rd32(&dev, m.cap_off + PCI_MSIX_TABLE), 0x800 | 1);
	cr_assert_eq(pci__cfg_rd32(&dev, m.cap_off + PCI_MSIX_PBA), 0xc00 | 1);
	cr_assert_eq(dev.wmask[m.cap_off + PCI_MSIX_FLAGS + 1], 0xc0, "only enable/maskall writable");
	cr_assert_eq(msix__table_size(3), 48);
	cr_assert_eq(msix__pba_size(3), 8);
	cr_assert_eq(msix__pba_size(65), 16);
}

Test(msix, vectors_start_masked_and_entries_read_back)
{
	uint32_t v = 0;

	msix__table_access(&m, 12, (uint8_t *)&v, 4, false);
	cr_assert_eq(v, PCI_MSIX_ENTRY_CTRL_MASKBIT);
	entry_write(1, 0, 0xfee00000);
	entry_write(1, 8, 0x41);
	entry_write(1, 12, 0xfffffffe); /* reserved control bits stay 0 */
	msix__table_access(&m, 16, (uint8_t *)&v, 4, false);
	cr_assert_eq(v, 0xfee00000);
	msix__table_access(&m, 28, (uint8_t *)&v, 4, false);
	cr_assert_eq(v, 0);
}

Test(msix, masked_vector_sets_pending_then_fires_on_unmask)
{
	uint8_t pba[8] = { 0 };

	ctrl_write(PCI_MSIX_FLAGS_ENABLE);
	entry_write(0, 0, 0xfee00000);
	entry_write(0, 8, 0x40);
	cr_assert_eq(msix__notify(&m, 0), 0);
	cr_assert_eq(m.vec[0].count, 0);
	msix__pba_access(&m, 0, pba, 8, false);
	cr_assert_eq(pba[0], 1);
	entry_write(0, 12, 0); /* unmask: the pending message goes out */
	cr_assert_eq(m.vec[0].count, 1);
	msix__pba_access(&m, 0, pba, 8, false);
	cr_assert_eq(pba[0], 0);
	cr_assert_eq(msix__notify(&m, 0), 0);
	cr_assert_eq(m.vec[0].count, 2);
}

Test(msix, function_mask_and_disable)
{
	entry_write(2, 0, 0xfee00000);
	entry_write(2, 12, 0);
	cr_assert(!msix__enabled(&m));
	cr_assert_eq(msix__notify(&m, 2), 0);
	cr_assert_eq(m.vec[2].count, 0, "disabled MSI-X never delivers");
	ctrl_write(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	cr_assert_eq(m.vec[2].count, 0);
	ctrl_write(PCI_MSIX_FLAGS_ENABLE);
	cr_assert_eq(m.vec[2].count, 1, "pending delivered when the function mask clears");
}

Test(msix, junk_accesses)
{
	uint8_t d[8];

	memset(d, 0x77, sizeof(d));
	msix__table_access(&m, 3, d, 4, true);    /* unaligned */
	msix__table_access(&m, 0, d, 2, true);    /* narrow */
	msix__table_access(&m, 48, d, 4, true);   /* past the table */
	msix__table_access(&m, 44, d, 8, false);  /* straddles the end */
	msix__pba_access(&m, 0, d, 8, true);      /* PBA is read-only */
	msix__pba_access(&m, 1000, d, 4, false);
	cr_assert_eq(m.vec[0].addr_lo, 0);
	cr_assert_eq(msix__notify(&m, 3), -EINVAL);
	cr_assert_eq(msix__notify(&m, 0xffff), -EINVAL);
	cr_assert_eq(msix__vector_fd(&m, 7), -1);
}

Test(msix, init_rejects_bad_layout)
{
	struct pci_dev d2;
	struct msix m2;

	pci__dev_init(&d2, "x", 1, 2, 0, 0, 0, 0, NULL);
	cr_assert_eq(msix__init(&m2, &d2, NULL, 0, 0, 0, 0x100), -EINVAL);
	cr_assert_eq(msix__init(&m2, &d2, NULL, 4, 6, 0, 0x100), -EINVAL);
	cr_assert_eq(msix__init(&m2, &d2, NULL, 4, 0, 4, 0x100), -EINVAL);
}

/* ---- passthrough (VFIO): masking is done by detaching the vector's irqfd ---- */

static int pt_enables, pt_live[3];

static int pt_enable(struct msix *mx, bool on, void *opaque)
{
	pt_enables += on ? 1 : -1;
	return 0;
}

static void pt_vector(struct msix *mx, uint16_t v, bool live, void *opaque)
{
	pt_live[v] = live;
}

static const struct msix_passthrough_ops pt_ops = { .enable = pt_enable, .vector = pt_vector };

/* vector v's eventfd reaches the guest as (addr, data) through its irqfd and route */
static void assert_live(uint16_t v, uint64_t addr, uint32_t data)
{
	const struct irq_irqfd *f = fake_irqfd(&irq, m.vec[v].efd);

	cr_assert_not_null(f, "vector %u: eventfd %d has no irqfd", v, m.vec[v].efd);
	cr_assert_eq(f->gsi, (uint32_t)m.vec[v].gsi, "vector %u: irqfd on GSI %u, vector has %d",
		     v, f->gsi, m.vec[v].gsi);
	cr_assert_eq(f->resample_fd, -1);
	cr_assert(fake_efd_delivers(&irq, m.vec[v].efd, addr, data),
		  "vector %u: GSI %u is not routed to %#llx/%#x", v, f->gsi,
		  (unsigned long long)addr, data);
	cr_assert(pt_live[v]);
	cr_assert_eq(msix__vector_fd(&m, v), m.vec[v].efd);
}

static void assert_detached(uint16_t v)
{
	cr_assert_null(fake_irqfd(&irq, m.vec[v].efd), "vector %u: masked but its irqfd is attached",
		       v);
	cr_assert_not(pt_live[v]);
	cr_assert_eq(msix__vector_fd(&m, v), -1);
}

Test(msix, passthrough_irqfd_follows_mask_and_unmask)
{
	uint8_t pba[8] = { 0 };
	uint64_t one = 1;

	pt_enables = 0;
	memset(pt_live, 0, sizeof(pt_live));
	cr_assert_eq(msix__set_passthrough(&m, &pt_ops, NULL), 0);
	entry_write(0, 0, 0xfee00000);
	entry_write(0, 8, 0x41);
	entry_write(0, 12, 0);
	entry_write(1, 0, 0xfee01000);
	entry_write(1, 8, 0x42);
	cr_assert_eq(irq.nr_irqfds, 0, "nothing attached while MSI-X is off");

	ctrl_write(PCI_MSIX_FLAGS_ENABLE);
	cr_assert_eq(pt_enables, 1);
	assert_live(0, 0xfee00000, 0x41);
	assert_detached(1);
	assert_detached(2);
	cr_assert_eq(irq.nr_irqfds, 1);

	/* a new message for a live vector: the route follows, the irqfd stays */
	entry_write(0, 8, 0x43);
	assert_live(0, 0xfee00000, 0x43);

	/* unmask vector 1, mask it again, unmask it again */
	entry_write(1, 12, 0);
	assert_live(1, 0xfee01000, 0x42);
	entry_write(1, 12, PCI_MSIX_ENTRY_CTRL_MASKBIT);
	assert_detached(1);
	assert_live(0, 0xfee00000, 0x43);
	/* the device fires while masked: the event waits, the PBA shows it */
	cr_assert_eq(write(m.vec[1].efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	msix__pba_access(&m, 0, pba, 8, false);
	cr_assert_eq(pba[0], 0x2);
	entry_write(1, 12, 0);
	assert_live(1, 0xfee01000, 0x42);
	msix__pba_access(&m, 0, pba, 8, false);
	cr_assert_eq(pba[0], 0, "a live vector is never pending: KVM has the event");

	/* the function mask detaches every vector; clearing it attaches them again */
	ctrl_write(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	assert_detached(0);
	assert_detached(1);
	cr_assert_eq(irq.nr_irqfds, 0);
	ctrl_write(PCI_MSIX_FLAGS_ENABLE);
	assert_live(0, 0xfee00000, 0x43);
	assert_live(1, 0xfee01000, 0x42);

	/* disabling MSI-X detaches everything; destroy leaves nothing behind */
	ctrl_write(0);
	cr_assert_eq(pt_enables, 0);
	cr_assert_eq(irq.nr_irqfds, 0);
	ctrl_write(PCI_MSIX_FLAGS_ENABLE);
	cr_assert_eq(irq.nr_irqfds, 2);
	msix__destroy(&m);
	cr_assert_eq(irq.nr_irqfds, 0, "msix__destroy left irqfds attached");
}
