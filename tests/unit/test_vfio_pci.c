// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <jansson.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kvm.h>
#include <unistd.h>

#include "devices/vfio/iommu.h"
#include "devices/vfio/pci.h"
#include "vmm/device.h"
#include "vmm/kvm.h"
#include "vmm/log.h"
#include "vmm/msix.h"
#include "irq_fake.h"
#include "vfio_fake.h"

static struct vm vm;
static struct fake_vfio f;
static struct vfio_pci *vf;

static void setup(void)
{
	log__set_level(LOG_ERR - 1); /* silence: the tests provoke errors */
	cr_assert_eq(kvm__vm_init_fake(&vm, 64 * MiB), 0);
	fake_init(&f);
	vf = NULL;
}

static void teardown(void)
{
	vfio_pci__destroy(vf);
	kvm__vm_destroy(&vm);
	log__set_level(LOG_INFO);
}

TestSuite(vfio_pci, .init = setup, .fini = teardown);

static int create(void)
{
	struct vfio_pci_opts o = { .name = "vfio0", .backend = &f.be };

	return vfio_pci__create(&vm, "0000:03:10.1", &o, &vf);
}

static struct pci_dev *dev(void)
{
	return vm.pci.devs[1];
}

static uint32_t cfg_rd(uint32_t off, uint32_t len)
{
	uint8_t b[4] = { 0 };

	pci__cfg_access(&vm.pci, 0, 0x08, off, b, len, false);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void cfg_wr(uint32_t off, uint32_t len, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	pci__cfg_access(&vm.pci, 0, 0x08, off, b, len, true);
}

static uint64_t bar_addr(int bar)
{
	return dev()->bars[bar].addr;
}

static void mmio(uint64_t addr, void *data, uint32_t len, bool wr)
{
	bus__dispatch(&vm.mmio, addr, data, len, wr);
}

/* the guest's capability list: ids in order, at most 64 */
static int walk(uint8_t *ids, uint8_t *offs)
{
	uint8_t off = (uint8_t)cfg_rd(PCI_CAPABILITY_LIST, 1);
	int n = 0;

	while (off && n < 64) {
		ids[n] = (uint8_t)cfg_rd(off, 1);
		offs[n++] = off;
		off = (uint8_t)cfg_rd(off + 1u, 1);
	}
	return n;
}

static struct fake_irqset *last_irqs(void)
{
	cr_assert(f.nr_irqs > 0);
	return &f.irqs[(f.nr_irqs - 1) % 64];
}

Test(vfio_pci, create_builds_the_virtual_config_space)
{
	uint8_t ids[64], offs[64];
	int n;

	cr_assert_eq(create(), 0);
	cr_assert_not_null(dev());
	cr_assert_eq(cfg_rd(PCI_VENDOR_ID, 4), 0x10ca8086);
	cr_assert_eq(cfg_rd(PCI_CLASS_REVISION, 4), 0x02000001);
	cr_assert_eq(cfg_rd(PCI_SUBSYSTEM_ID, 2), 0xa01c);
	cr_assert_eq(cfg_rd(PCI_BASE_ADDRESS_0, 4) & 0xf, PCI_BASE_ADDRESS_MEM_TYPE_64);
	cr_assert_eq(cfg_rd(PCI_COMMAND, 2) & PCI_COMMAND_MEMORY, 0, "decoding starts off");
	n = walk(ids, offs);
	cr_assert_eq(n, 4);
	cr_assert_eq(ids[0], PCI_CAP_ID_PM);
	cr_assert_eq(ids[1], PCI_CAP_ID_MSIX);
	cr_assert_eq(offs[1], 0x50, "capabilities keep the device's offsets");
	cr_assert_eq(ids[2], PCI_CAP_ID_EXP);
	cr_assert_eq(ids[3], PCI_CAP_ID_VNDR);
	cr_assert_eq(cfg_rd(0xa3, 1), 0x5a, "unknown capabilities read through");
	cr_assert_eq(cfg_rd(0x52, 2), 2, "MSI-X: 3 vectors, disabled");
	cr_assert_eq(cfg_rd(0x54, 4), 3);
	cr_assert_eq(cfg_rd(0x58, 4), 0x2003);
	/* extended list: AER -> ARI, SR-IOV unlinked */
	cr_assert_eq(cfg_rd(0x100, 4) & 0xffff, PCI_EXT_CAP_ID_ERR);
	cr_assert_eq(cfg_rd(0x100, 4) >> 20, 0x180);
	cr_assert_eq(cfg_rd(0x180, 4) & 0xffff, PCI_EXT_CAP_ID_ARI);
	cr_assert_eq(cfg_rd(0x140, 4), 0, "the SR-IOV header is hidden");
	cr_assert_eq(f.kvm_groups, 1, "group added to the KVM VFIO device");
	cr_assert(strstr(f.log, "reset") != NULL, "reset on assign");
}

Test(vfio_pci, group_joins_the_kvm_vfio_device_on_create_and_leaves_on_destroy)
{
	char *del, *unset;

	cr_assert_eq(create(), 0);
	cr_assert_eq(f.kvm_adds, 1);
	cr_assert_eq(f.kvm_dels, 0);
	cr_assert_eq(f.kvm_last_group, FAKE_GROUP, "the group's handle is added");
	cr_assert_eq(f.kvm_last_vm, &vm);
	cr_assert(strstr(f.log, "kvm_add200") != NULL, "%s", f.log);
	f.log[0] = 0;
	vfio_pci__destroy(vf);
	vf = NULL;
	cr_assert_eq(f.kvm_adds, 1);
	cr_assert_eq(f.kvm_dels, 1);
	cr_assert_eq(f.kvm_last_group, FAKE_GROUP);
	cr_assert_eq(f.kvm_groups, 0);
	del = strstr(f.log, "kvm_del200");
	unset = strstr(f.log, "unset_container");
	cr_assert(del && unset && del < unset,
		  "deleted from KVM before the group leaves its container: %s", f.log);
}

Test(vfio_pci, kvm_vfio_device_failure_is_not_fatal_and_not_undone)
{
	f.kvm_group_ret = -ENODEV;
	cr_assert_eq(create(), 0, "interrupts are then not posted, nothing else changes");
	cr_assert_eq(f.kvm_adds, 1);
	vfio_pci__destroy(vf);
	vf = NULL;
	cr_assert_eq(f.kvm_dels, 0, "a group KVM never took is not deleted");
	cr_assert(strstr(f.log, "kvm_del") == NULL, "%s", f.log);
}

Test(vfio_pci, check_failure_is_reported_and_nothing_is_opened)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mf = open_memstream(&buf, &len);

	f.check_ret = -EBUSY;
	f.check_msg = "0000:03:10.1 is bound to igbvf, not vfio-pci: run minivmm sriov bind";
	log__set_stream(mf);
	log__set_level(LOG_ERR);
	cr_assert_eq(create(), -EBUSY);
	fflush(mf);
	log__set_stream(stderr);
	cr_assert(strstr(buf, "minivmm sriov bind") != NULL, "log: %s", buf);
	cr_assert_eq(f.group_opens, 0);
	cr_assert_null(vf);
	cr_assert_null(dev());
	fclose(mf);
	free(buf);
}

Test(vfio_pci, capability_loop_is_cut)
{
	uint8_t ids[64], offs[64];

	f.cfg[0x71] = 0x40; /* PCIe -> PM: a loop */
	cr_assert_eq(create(), 0);
	cr_assert_eq(walk(ids, offs), 3);
	cr_assert_eq(cfg_rd(0x71, 1), 0);
}

Test(vfio_pci, capability_pointer_into_the_header_is_cut)
{
	uint8_t ids[64], offs[64];

	f.cfg[0x51] = 0x10;
	cr_assert_eq(create(), 0);
	cr_assert_eq(walk(ids, offs), 2);
	cr_assert_eq(ids[1], PCI_CAP_ID_MSIX);
}

Test(vfio_pci, extended_capability_loop_and_hidden_first_entry)
{
	unsigned int n = 0;
	uint32_t off = 0x100, h;

	fake_w32(&f, 0x100, PCI_EXT_CAP_ID_SRIOV | 1 << 16 | 0x140u << 20);
	fake_w32(&f, 0x140, PCI_EXT_CAP_ID_ERR | 1 << 16 | 0x180u << 20);
	fake_w32(&f, 0x180, PCI_EXT_CAP_ID_ARI | 1 << 16 | 0x140u << 20); /* loops */
	cr_assert_eq(create(), 0);
	h = cfg_rd(0x100, 4);
	cr_assert_eq(h & 0xffff, 0, "hidden first capability becomes an empty header");
	cr_assert_eq(h >> 20, 0x140);
	while (off && n < 100) {
		h = cfg_rd(off, 4);
		off = h >> 20;
		n++;
	}
	cr_assert_eq(n, 3, "walk ends: %u", n);
}

Test(vfio_pci, bar_sizing_and_hidden_rom)
{
	cr_assert_eq(create(), 0);
	cfg_wr(PCI_BASE_ADDRESS_0, 4, 0xffffffff);
	cfg_wr(PCI_BASE_ADDRESS_1, 4, 0xffffffff);
	cr_assert_eq(cfg_rd(PCI_BASE_ADDRESS_0, 4), 0xffffc004);
	cr_assert_eq(cfg_rd(PCI_BASE_ADDRESS_1, 4), 0xffffffff);
	cfg_wr(PCI_BASE_ADDRESS_3, 4, 0xffffffff);
	cr_assert_eq(cfg_rd(PCI_BASE_ADDRESS_3, 4), 0xffff8004);
	cr_assert_eq(cfg_rd(PCI_BASE_ADDRESS_2, 4), 0, "upper half of BAR0... is BAR1");
	cfg_wr(PCI_ROM_ADDRESS, 4, 0xffffffff);
	cr_assert_eq(cfg_rd(PCI_ROM_ADDRESS, 4), 0, "no ROM");
	cr_assert_eq(f.cfg_pwrites, 0, "BAR writes never reach the device");
}

static const struct fake_slot *find_slot(uint64_t gpa, uint64_t size)
{
	unsigned int i;

	for (i = 0; i < f.nr_slots; i++)
		if (f.slots[i].gpa == gpa && f.slots[i].size == size)
			return &f.slots[i];
	return NULL;
}

Test(vfio_pci, bars_map_to_memslots_around_the_msix_pages_and_follow_moves)
{
	struct vfio_pci_stats st;
	const struct fake_slot *s;
	uint64_t b0, b3;

	cr_assert_eq(create(), 0);
	b0 = bar_addr(0);
	b3 = bar_addr(3);
	cfg_wr(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	cr_assert_eq(f.nr_slots, 3);
	s = find_slot(b0, 0x4000);
	cr_assert_not_null(s);
	cr_assert_eq(s->hva, f.bar[0]);
	cr_assert_geq(s->slot, vm.mem.nr_regions, "RAM's slots are not reused");
	s = find_slot(b3 + 0x1000, 0x1000);
	cr_assert_not_null(s, "between the table page and the PBA page");
	cr_assert_eq(s->hva, f.bar[3] + 0x1000);
	s = find_slot(b3 + 0x3000, 0x5000);
	cr_assert_not_null(s, "after the PBA page");
	cr_assert_null(find_slot(b3, 0x1000), "the MSI-X table page stays trapped");
	vfio_pci__stats(vf, &st);
	cr_assert_eq(st.memslots, 3);

	/* the guest moves BAR0: old slot deleted, new one added */
	cfg_wr(PCI_BASE_ADDRESS_0, 4, (uint32_t)b0 + 0x100000);
	cr_assert_eq(f.nr_slots, 5);
	cr_assert_eq(f.slots[3].gpa, b0);
	cr_assert_eq(f.slots[3].size, 0);
	cr_assert_eq(f.slots[4].gpa, b0 + 0x100000);
	cr_assert_eq(f.slots[4].size, 0x4000);
	cr_assert_eq(f.slots[4].slot, f.slots[3].slot, "the freed slot is reused");

	cfg_wr(PCI_COMMAND, 2, 0);
	vfio_pci__stats(vf, &st);
	cr_assert_eq(st.memslots, 0);
	cr_assert_eq(bus__count(&vm.mmio), 1, "only the ECAM trap is left");
}

Test(vfio_pci, msix_table_writes_become_routes_and_set_irqs)
{
	struct vfio_pci_stats st;
	struct fake_irqset *r;
	uint32_t v, i, found = 0;
	int32_t fds[3];
	uint8_t pba[8];
	uint64_t b3;

	cr_assert_eq(create(), 0);
	cfg_wr(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	b3 = bar_addr(3);
	v = 0xfee00000;
	mmio(b3 + 0, &v, 4, true);
	v = 0x41;
	mmio(b3 + 8, &v, 4, true);
	v = 0;
	mmio(b3 + 12, &v, 4, true); /* unmask vector 0 */
	v = 0xfee01000;
	mmio(b3 + 16, &v, 4, true);
	v = 0x42;
	mmio(b3 + 24, &v, 4, true);
	cr_assert_eq(f.nr_irqs, 0, "nothing until MSI-X is enabled");
	{
		json_t *o = device__describe(vfio_pci__device(vf));

		cr_assert(json_is_null(json_object_get(o, "driver_ms")), "no driver yet");
		json_decref(o);
	}
	cfg_wr(0x52, 2, PCI_MSIX_FLAGS_ENABLE);
	{
		/* plug to the guest's driver enabling MSI-X: measured (docs/migration.md) */
		json_t *o = device__describe(vfio_pci__device(vf));

		cr_assert(json_is_real(json_object_get(o, "driver_ms")), "the driver took it");
		cr_assert_geq(json_real_value(json_object_get(o, "driver_ms")), 0.0);
		json_decref(o);
	}
	r = last_irqs();
	cr_assert_eq(r->index, VFIO_PCI_MSIX_IRQ_INDEX);
	cr_assert_eq(r->flags, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER);
	cr_assert_eq(r->start, 0);
	cr_assert_eq(r->count, 3, "every vector's eventfd at once");
	for (i = 0; i < 3; i++) {
		cr_assert_geq(fcntl(r->fds[i], F_GETFD), 0, "vector %u has a live eventfd", i);
		if (i)
			cr_assert_neq(r->fds[i], r->fds[i - 1]);
	}
	/* the KVM route of vector 0 (the only unmasked one) */
	for (i = 0; i < vm.irq.routing->nr; i++) {
		struct kvm_irq_routing_entry *e = &vm.irq.routing->entries[i];

		if (e->type == KVM_IRQ_ROUTING_MSI && e->u.msi.address_lo == 0xfee00000 &&
		    e->u.msi.data == 0x41)
			found++;
		cr_assert_neq(e->u.msi.data, 0x42, "masked vector 1 not routed yet");
	}
	cr_assert_eq(found, 1);
	cr_assert_eq(cfg_rd(0x52, 2), PCI_MSIX_FLAGS_ENABLE | 2);
	/* the VF's vector 0 reaches the guest: its eventfd, irqfd, GSI and route */
	for (i = 0; i < 3; i++)
		fds[i] = r->fds[i];
	cr_assert(fake_efd_delivers(&vm.irq, fds[0], 0xfee00000, 0x41),
		  "vector 0's eventfd is not attached to its route");
	cr_assert_null(fake_irqfd(&vm.irq, fds[1]), "masked vector 1 has an irqfd");
	cr_assert_null(fake_irqfd(&vm.irq, fds[2]), "masked vector 2 has an irqfd");

	/* masked vector 1: the device fires, the PBA shows it */
	{
		uint64_t one = 1;

		cr_assert_eq(write(r->fds[1], &one, 8), 8);
	}
	memset(pba, 0, sizeof(pba));
	mmio(b3 + 0x2000, pba, 8, false);
	cr_assert_eq(pba[0], 0x2, "pending bit of vector 1");
	vfio_pci__stats(vf, &st);
	cr_assert_eq(st.msix_table_exits, 5);
	cr_assert_eq(st.msix_pba_exits, 1);
	cr_assert_eq(st.userspace_irqs, 0);

	/* unmask vector 1: routed now */
	v = 0;
	mmio(b3 + 28, &v, 4, true);
	found = 0;
	for (i = 0; i < vm.irq.routing->nr; i++)
		if (vm.irq.routing->entries[i].u.msi.data == 0x42)
			found++;
	cr_assert_eq(found, 1);
	cr_assert(fake_efd_delivers(&vm.irq, fds[1], 0xfee01000, 0x42),
		  "unmasked vector 1's eventfd is not attached to its route");
	cr_assert_neq(fake_irqfd(&vm.irq, fds[1])->gsi, fake_irqfd(&vm.irq, fds[0])->gsi);

	/* mask vector 1 again: detached (the VF's events wait); unmask: attached */
	v = PCI_MSIX_ENTRY_CTRL_MASKBIT;
	mmio(b3 + 28, &v, 4, true);
	cr_assert_null(fake_irqfd(&vm.irq, fds[1]), "masked vector 1 still has its irqfd");
	cr_assert(fake_efd_delivers(&vm.irq, fds[0], 0xfee00000, 0x41));
	v = 0;
	mmio(b3 + 28, &v, 4, true);
	cr_assert(fake_efd_delivers(&vm.irq, fds[1], 0xfee01000, 0x42),
		  "vector 1 lost its route on the second unmask");
	/* the function mask detaches both; clearing it attaches both */
	cfg_wr(0x52, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	cr_assert_eq(vm.irq.nr_irqfds, 0, "function mask left irqfds attached");
	cfg_wr(0x52, 2, PCI_MSIX_FLAGS_ENABLE);
	cr_assert(fake_efd_delivers(&vm.irq, fds[0], 0xfee00000, 0x41));
	cr_assert(fake_efd_delivers(&vm.irq, fds[1], 0xfee01000, 0x42));
	cr_assert_eq(f.nr_irqs, 1, "masking never reprograms VFIO");

	cfg_wr(0x52, 2, 0);
	r = last_irqs();
	cr_assert_eq(r->index, VFIO_PCI_MSIX_IRQ_INDEX);
	cr_assert_eq(r->flags, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER);
	cr_assert_eq(r->count, 0);
	cr_assert_eq(vm.irq.nr_irqfds, 0, "MSI-X off but irqfds still attached");

	/* enabled again, then the device goes away: no irqfd may outlive it */
	cfg_wr(0x52, 2, PCI_MSIX_FLAGS_ENABLE);
	cr_assert_eq(vm.irq.nr_irqfds, 2);
	vfio_pci__destroy(vf);
	vf = NULL;
	cr_assert_eq(vm.irq.nr_irqfds, 0, "irqfds left after the device was destroyed");
}

Test(vfio_pci, config_writes_are_filtered)
{
	struct vfio_pci_stats st;
	unsigned int w;

	cr_assert_eq(create(), 0);
	w = f.cfg_pwrites;
	cfg_wr(PCI_VENDOR_ID, 2, 0x1234);
	cfg_wr(0x54, 4, 0x1000); /* MSI-X table offset */
	cfg_wr(0x51, 1, 0x00);   /* capability pointer */
	cfg_wr(0x148, 4, 0);     /* inside the SR-IOV capability */
	cfg_wr(0x100, 4, 0);     /* AER header */
	cfg_wr(0x74, 4, 0);      /* PCIe DEVCAP */
	cr_assert_eq(cfg_rd(PCI_VENDOR_ID, 2), 0x8086);
	cr_assert_eq(cfg_rd(0x54, 4), 3);
	cr_assert_eq(cfg_rd(0x51, 1), 0x70);
	cr_assert_eq(cfg_rd(0x100, 4) & 0xffff, PCI_EXT_CAP_ID_ERR);
	cr_assert_eq(f.cfg_pwrites, w, "none reached the device");
	cr_assert_eq(fake_cfg16(&f, 0x148), 0xbeef);
	vfio_pci__stats(vf, &st);
	cr_assert_eq(st.cfg_writes_refused, 6);

	/* COMMAND: only I/O, memory, bus master and INTx disable go through */
	cfg_wr(PCI_COMMAND, 2, 0x0547);
	cr_assert_eq(fake_cfg16(&f, PCI_COMMAND), 0x0407);
	cr_assert_eq(cfg_rd(PCI_COMMAND, 2), 0x0547, "parity/SERR stay virtual");

	/* PM: D-state changes are forwarded */
	cfg_wr(0x44, 2, 3);
	cr_assert_eq(fake_cfg16(&f, 0x44) & PCI_PM_CTRL_STATE_MASK, 3);
	cfg_wr(0x44, 2, 0);
	cr_assert_eq(fake_cfg16(&f, 0x44) & PCI_PM_CTRL_STATE_MASK, 0);

	/* Initiate FLR becomes VFIO_DEVICE_RESET */
	f.log[0] = 0;
	cfg_wr(0x78 + 1, 1, PCI_EXP_DEVCTL_BCR_FLR >> 8);
	cr_assert_str_eq(f.log, "reset");
	cr_assert_eq(cfg_rd(0x79, 1) & 0x80, 0, "FLR bit reads back 0");
}

Test(vfio_pci, non_mmappable_bar_is_forwarded)
{
	struct vfio_pci_stats st;
	uint32_t v;

	f.bar_mmap[0] = false;
	f.bar[0][0x10] = 0x5a;
	cr_assert_eq(create(), 0);
	cfg_wr(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	cr_assert_eq(f.nr_slots, 2, "BAR3's two areas only");
	v = 0;
	mmio(bar_addr(0) + 0x10, &v, 4, false);
	cr_assert_eq(v, 0x5a);
	v = 0x11223344;
	mmio(bar_addr(0) + 0x20, &v, 4, true);
	cr_assert_eq(f.bar[0][0x20], 0x44);
	/* the rest of the MSI-X table page goes to the device too */
	v = 0x77;
	mmio(bar_addr(3) + 0x800, &v, 4, true);
	cr_assert_eq(f.bar[3][0x800], 0x77);
	vfio_pci__stats(vf, &st);
	cr_assert_eq(st.bar_trap_exits, 3);
}

Test(vfio_pci, sparse_areas_from_the_region_capability)
{
	f.msix_mappable[3] = false;
	f.nr_sparse[3] = 1;
	f.sparse[3][0].off = 0x4000; /* the kernel leaves the first half out */
	f.sparse[3][0].size = 0x4000;
	cr_assert_eq(create(), 0);
	cfg_wr(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	cr_assert_eq(f.nr_slots, 2);
	cr_assert_not_null(find_slot(bar_addr(3) + 0x4000, 0x4000));
}

Test(vfio_pci, region_capability_loop_traps_the_bar)
{
	f.msix_mappable[3] = false;
	f.bad_chain[3] = true;
	cr_assert_eq(create(), 0);
	cfg_wr(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	cr_assert_eq(f.nr_slots, 1, "BAR0 only");
}

/* a device with MSI (64-bit, 1 vector) and INTx, no MSI-X */
static void fake_msi_intx(void)
{
	f.cfg[0x41] = 0x60;
	memset(&f.cfg[0x50], 0, 16);
	f.cfg[0x60] = PCI_CAP_ID_MSI;
	f.cfg[0x61] = 0x70;
	fake_w16(&f, 0x62, PCI_MSI_FLAGS_64BIT);
	f.cfg[PCI_INTERRUPT_PIN] = 1;
	f.irq_count[VFIO_PCI_MSIX_IRQ_INDEX] = 0;
	f.irq_count[VFIO_PCI_MSI_IRQ_INDEX] = 1;
	f.irq_count[VFIO_PCI_INTX_IRQ_INDEX] = 1;
}

Test(vfio_pci, msi_and_intx_fallbacks)
{
	struct fake_irqset *r;
	unsigned int i, found = 0;
	int msi_fd;

	fake_msi_intx();
	cr_assert_eq(create(), 0);
	cr_assert_eq(cfg_rd(PCI_INTERRUPT_PIN, 1), 1, "INTx pin preserved");
	cr_assert_eq(f.nr_irqs, 2);
	cr_assert_eq(f.irqs[0].index, VFIO_PCI_INTX_IRQ_INDEX);
	cr_assert_eq(f.irqs[0].flags, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER);
	cr_assert_eq(f.irqs[1].flags, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK,
		     "resample eventfd unmasks");
	cr_assert_neq(f.irqs[0].fds[0], f.irqs[1].fds[0]);
	/* INTx: the trigger eventfd on the device's line, with the resample eventfd */
	cr_assert_not_null(fake_irqfd(&vm.irq, f.irqs[0].fds[0]), "INTx eventfd has no irqfd");
	cr_assert_eq(fake_irqfd(&vm.irq, f.irqs[0].fds[0])->gsi, dev()->intx_gsi);
	cr_assert_eq(fake_irqfd(&vm.irq, f.irqs[0].fds[0])->resample_fd, f.irqs[1].fds[0]);

	cfg_wr(0x64, 4, 0xfee00000);
	cfg_wr(0x68, 4, 0);
	cfg_wr(0x6c, 2, 0x51);
	cfg_wr(0x62, 2, PCI_MSI_FLAGS_ENABLE);
	cr_assert_eq(f.nr_irqs, 4);
	cr_assert_eq(f.irqs[2].index, VFIO_PCI_INTX_IRQ_INDEX, "INTx off first");
	cr_assert_eq(f.irqs[2].count, 0);
	r = &f.irqs[3];
	cr_assert_eq(r->index, VFIO_PCI_MSI_IRQ_INDEX);
	cr_assert_eq(r->count, 1);
	cr_assert_geq(fcntl(r->fds[0], F_GETFD), 0);
	for (i = 0; i < vm.irq.routing->nr; i++)
		if (vm.irq.routing->entries[i].type == KVM_IRQ_ROUTING_MSI &&
		    vm.irq.routing->entries[i].u.msi.data == 0x51)
			found++;
	cr_assert_eq(found, 1);
	cr_assert(fake_efd_delivers(&vm.irq, r->fds[0], 0xfee00000, 0x51),
		  "the MSI eventfd is not attached to its route");
	msi_fd = r->fds[0];

	cfg_wr(0x62, 2, 0);
	cr_assert_null(fake_irqfd(&vm.irq, msi_fd), "MSI off but its irqfd is still attached");
	cr_assert_eq(f.nr_irqs, 7);
	cr_assert_eq(f.irqs[4].index, VFIO_PCI_MSI_IRQ_INDEX);
	cr_assert_eq(f.irqs[4].count, 0);
	cr_assert_eq(f.irqs[5].index, VFIO_PCI_INTX_IRQ_INDEX, "INTx back on");
}

Test(vfio_pci, dead_device_is_refused)
{
	f.dead = true;
	f.recover = FAKE_RECOVER_NEVER;
	cr_assert_eq(create(), -EIO);
	cr_assert_null(dev());
	cr_assert_eq(f.kvm_groups, 0);
	cr_assert_eq(f.nr_maps, f.nr_unmaps, "DMA revoked");
}

Test(vfio_pci, dma_maps_exactly_guest_ram_and_release_undoes_everything)
{
	cr_assert_eq(create(), 0);
	cr_assert_eq(f.nr_maps, 1);
	cr_assert_eq(f.maps[0].iova, vm.mem.regions[0].gpa);
	cr_assert_eq(f.maps[0].size, vm.mem.regions[0].size);
	cr_assert_eq(f.maps[0].vaddr, vm.mem.regions[0].hva);
	cfg_wr(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	cfg_wr(0x52, 2, PCI_MSIX_FLAGS_ENABLE);
	f.log[0] = 0;
	vfio_pci__destroy(vf);
	vf = NULL;
	cr_assert_null(dev());
	cr_assert_eq(f.nr_unmaps, 1);
	cr_assert_eq(f.unmaps[0].iova, 0);
	cr_assert_eq(f.kvm_groups, 0);
	cr_assert(strstr(f.log, "irqs2/0") != NULL, "MSI-X disabled: %s", f.log);
	cr_assert(strstr(f.log, "reset") != NULL, "reset on release: %s", f.log);
	cr_assert(strstr(f.log, "unset_container") != NULL);
	cr_assert_eq(f.mmaps, f.munmaps);
	cr_assert_eq(bus__count(&vm.mmio), 1);
}

Test(vfio_pci, two_devices_share_the_container)
{
	struct vfio_pci_opts o = { .backend = &f.be };
	struct vfio_iommu *io = NULL;
	struct vfio_pci *vf2;

	o.iommu = &io;
	o.name = "vfio0";
	cr_assert_eq(vfio_pci__create(&vm, "0000:03:10.1", &o, &vf), 0);
	cr_assert_not_null(io, "the first device made the shared container");
	o.name = "vfio1";
	cr_assert_eq(vfio_pci__create(&vm, "0000:03:10.3", &o, &vf2), 0);
	cr_assert_eq(f.group_opens, 1);
	cr_assert_eq(f.nr_maps, 1, "RAM mapped once");
	cr_assert_eq(f.kvm_groups, 1);
	vfio_pci__destroy(vf2);
	cr_assert_eq(f.nr_unmaps, 0, "the other device still uses it");
	vfio_pci__destroy(vf);
	vf = NULL;
	cr_assert_eq(f.nr_unmaps, 1);
	cr_assert_eq(f.kvm_groups, 0);
	vfio_iommu__destroy(io);
}

Test(vfio_pci, dma_never_covers_the_mmio_hole)
{
	struct vm big;
	struct fake_vfio *f2 = malloc(sizeof(*f2));
	struct vfio_pci_opts o;
	struct vfio_pci *v2;
	unsigned int i;

	cr_assert_not_null(f2);
	fake_init(f2);
	o = (struct vfio_pci_opts){ .backend = &f2->be };
	cr_assert_eq(kvm__vm_init_fake(&big, 4 * GiB), 0);
	cr_assert_eq(big.mem.nr_regions, 2);
	cr_assert_eq(vfio_pci__create(&big, "0000:03:10.1", &o, &v2), 0);
	cr_assert_eq(f2->nr_maps, 2);
	for (i = 0; i < 2; i++) {
		cr_assert_eq(f2->maps[i].iova, big.mem.regions[i].gpa);
		cr_assert_eq(f2->maps[i].size, big.mem.regions[i].size);
		cr_assert_eq(f2->maps[i].vaddr, big.mem.regions[i].hva);
		cr_assert(!ranges_overlap(f2->maps[i].iova, f2->maps[i].size, MEM_LOW_END,
					  MEM_HIGH_START - MEM_LOW_END));
	}
	vfio_pci__destroy(v2);
	cr_assert_eq(f2->nr_unmaps, 2);
	kvm__vm_destroy(&big);
	free(f2);
}

/* plug to traffic: the host's vfio-msix counts of one VF, summed over CPUs */
Test(vfio_pci, host_irq_counts_of_one_vf)
{
	static const char text[] =
		"           CPU0       CPU1       \n"
		"  0:         45          0   IO-APIC   2-edge      timer\n"
		" 40:        100         20  IR-PCI-MSIX-0000:00:12.0    0-edge      vfio-msix[0](0000:00:12.0)\n"
		" 41:          3          4  IR-PCI-MSIX-0000:00:12.0    1-edge      vfio-msix[1](0000:00:12.0)\n"
		" 42:        999        999  IR-PCI-MSIX-0000:00:12.1    0-edge      vfio-msix[0](0000:00:12.1)\n"
		" 43:          7          0  IR-PCI-MSI-0000:00:02.0     0-edge      eth0\n"
		"NMI:          0          0   Non-maskable interrupts\n";
	uint64_t sum = 1;

	cr_assert_eq(vfio_pci__sum_host_irqs(text, "0000:00:12.0", &sum), 0);
	cr_assert_eq(sum, 127, "100 + 20 + 3 + 4, not the other VF's: %llu", (unsigned long long)sum);
	cr_assert_eq(vfio_pci__sum_host_irqs(text, "0000:00:12.1", &sum), 0);
	cr_assert_eq(sum, 1998);
	cr_assert_eq(vfio_pci__sum_host_irqs(text, "0000:00:13.0", &sum), -ENOENT,
		     "a VF without vectors on the host");
	cr_assert_eq(sum, 0);
	cr_assert_eq(vfio_pci__sum_host_irqs("", "0000:00:12.0", &sum), -ENOENT);
}

/*
 * The plug-to-traffic watch (vfio_pci__traffic_poll, the VMM thread's 100 ms
 * tick): it goes on while the guest's driver has not enabled MSI-X, and the
 * enable (a vCPU thread) arms it in one step, so that no poll can see the
 * driver no longer awaited while the watch is not armed yet (with two flags
 * a poll in between ended the watch for good: lab-migrate-hosts, 2026-12-02).
 * The fake VF has no vfio-msix lines in the host's /proc/interrupts, so the
 * armed watch ends at its first poll, saying so: that line shows it was armed.
 */
Test(vfio_pci, traffic_watch_is_armed_by_the_driver)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m;

	cr_assert_eq(create(), 0);
	cr_assert(vfio_pci__traffic_poll(vf, 200, 60000), "plugged, no driver yet: the watch goes on");
	cr_assert(vfio_pci__traffic_poll(vf, 200, 60000), "still no driver: it goes on");
	cfg_wr(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	m = open_memstream(&buf, &len);
	cr_assert_not_null(m);
	log__set_level(LOG_INFO);
	log__set_stream(m);
	cfg_wr(0x52, 2, PCI_MSIX_FLAGS_ENABLE);
	cr_assert_not(vfio_pci__traffic_poll(vf, 200, 60000),
		      "the armed watch ends here (no host interrupt lines for a fake VF)");
	cr_assert_not(vfio_pci__traffic_poll(vf, 200, 60000), "and does not start again by itself");
	log__set_stream(NULL);
	log__set_level(LOG_ERR - 1);
	fclose(m);
	cr_assert(strstr(buf, "MSI-X on"), "no driver line: %s", buf);
	cr_assert(strstr(buf, "no vfio-msix lines in /proc/interrupts"), "the watch was not armed: %s", buf);
	free(buf);
}
