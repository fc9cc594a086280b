// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>

#include "devices/vfio/iommu.h"
#include "vmm/kvm.h"
#include "vmm/log.h"
#include "vfio_fake.h"

static struct vm vm;
static struct fake_vfio f;

static void setup(void)
{
	log__set_level(-1);
	cr_assert_eq(kvm__vm_init_fake(&vm, 32 * MiB), 0);
	fake_init(&f);
}

static void teardown(void)
{
	kvm__vm_destroy(&vm);
	log__set_level(LOG_INFO);
}

TestSuite(vfio_iommu, .init = setup, .fini = teardown);

Test(vfio_iommu, needs_type1v2)
{
	struct vfio_iommu *io = NULL;

	f.type1v2 = 0;
	cr_assert_eq(vfio_iommu__create_legacy(&vm, &f.be, &io), -ENOTSUP);
	cr_assert_null(io);
	cr_assert_eq(f.closes, 1, "container closed");
}

Test(vfio_iommu, attach_order_and_exact_ram_mapping)
{
	struct vfio_iommu *io;
	struct vfio_group *g, *g2;
	char msg[256];

	cr_assert_eq(vfio_iommu__create_legacy(&vm, &f.be, &io), 0);
	cr_assert_eq(vfio_iommu__get_group(io, 7, &g, msg, sizeof(msg)), 0);
	cr_assert_str_eq(f.log, "set_container,set_iommu3,map0");
	cr_assert_eq(f.nr_maps, 1);
	cr_assert_eq(f.maps[0].size, 32 * MiB);
	cr_assert_eq(f.maps[0].vaddr, vm.mem.regions[0].hva);
	cr_assert_eq(vfio_iommu__get_group(io, 7, &g2, msg, sizeof(msg)), 0);
	cr_assert_eq(g, g2);
	cr_assert_eq(g->refs, 2);
	cr_assert_eq(vfio_iommu__map_ram(io), 0);
	cr_assert_eq(f.nr_maps, 1, "already mapped regions are kept");
	vfio_iommu__put_group(io, g);
	cr_assert_eq(f.nr_unmaps, 0);
	vfio_iommu__put_group(io, g);
	cr_assert_eq(f.nr_unmaps, 1, "last group gone: DMA unmapped");
	cr_assert(strstr(f.log, "unset_container") != NULL);
	vfio_iommu__destroy(io);
}

Test(vfio_iommu, group_not_viable)
{
	struct vfio_iommu *io;
	struct vfio_group *g;
	char msg[256];

	f.viable = false;
	cr_assert_eq(vfio_iommu__create_legacy(&vm, &f.be, &io), 0);
	cr_assert_eq(vfio_iommu__get_group(io, 7, &g, msg, sizeof(msg)), -EBUSY);
	cr_assert(strstr(msg, "group 7 is not viable") != NULL, "%s", msg);
	cr_assert(strstr(msg, "/sys/kernel/iommu_groups/7/devices") != NULL);
	cr_assert_eq(f.nr_maps, 0);
	vfio_iommu__destroy(io);
}

Test(vfio_iommu, memslot_allocator_skips_ram)
{
	int a, b, c;

	a = kvm__alloc_memslot(&vm);
	b = kvm__alloc_memslot(&vm);
	cr_assert_eq(a, (int)vm.mem.nr_regions);
	cr_assert_eq(b, a + 1);
	kvm__free_memslot(&vm, (uint32_t)a);
	c = kvm__alloc_memslot(&vm);
	cr_assert_eq(c, a);
	kvm__free_memslot(&vm, 0); /* a RAM slot: ignored */
	cr_assert_eq(kvm__alloc_memslot(&vm), b + 1);
	cr_assert_eq(kvm__vfio_group_add(&vm, 5), -ENODEV, "no KVM, no KVM VFIO device");
	cr_assert_eq(kvm__vfio_group_del(&vm, 5), -ENODEV);
	cr_assert_eq(vm.vfio_dev_fd, -1);
}
