// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>

#include "devices/vfio/iommu.h"
#include "devices/vfio/reset.h"
#include "devices/vfio/standalone.h"
#include "vmm/kvm.h"
#include "vmm/log.h"
#include "vfio_fake.h"

static struct vm vm;
static struct fake_vfio f;
static struct vfio_iommu *io;
static struct vfio_group *grp;
static struct vfio_reset_dev rd;
static struct vfio_reset_report rep;

static void setup(void)
{
	char msg[256];

	log__set_level(-1);
	cr_assert_eq(kvm__vm_init_fake(&vm, 16 * MiB), 0);
	fake_init(&f);
	cr_assert_eq(vfio_iommu__create_legacy(&vm, &f.be, &io), 0);
	cr_assert_eq(vfio_iommu__get_group(io, 7, &grp, msg, sizeof(msg)), 0);
	rd = (struct vfio_reset_dev){
		.name = "vfio0",
		.be = &f.be,
		.dev = FAKE_DEVICE,
		.cfg_off = (uint64_t)VFIO_PCI_CONFIG_REGION_INDEX << FAKE_REGION_SHIFT,
		.dev_flags = VFIO_DEVICE_FLAGS_RESET,
		.pm_cap = 0x40,
		.vendor = 0x8086,
		.group_id = 7,
		.group_fd = FAKE_GROUP,
		.iommu = io,
	};
	fake_w16(&f, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	f.log[0] = 0;
}

static void teardown(void)
{
	vfio_iommu__destroy(io);
	kvm__vm_destroy(&vm);
	log__set_level(LOG_INFO);
}

TestSuite(vfio_reset, .init = setup, .fini = teardown);

Test(vfio_reset, healthy_device_function_reset)
{
	cr_assert(vfio_reset__alive(&rd));
	cr_assert_eq(vfio_reset__ladder(&rd, &rep), 0);
	cr_assert_eq(rep.step, VFIO_RESET_FUNCTION);
	cr_assert_str_eq(f.log, "reset");
	cr_assert(!rep.tried[VFIO_RESET_HOT]);
}

Test(vfio_reset, recovers_at_function_reset)
{
	f.dead = true;
	cr_assert(!vfio_reset__alive(&rd));
	cr_assert_eq(vfio_reset__ladder(&rd, &rep), 0);
	cr_assert_eq(rep.step, VFIO_RESET_FUNCTION);
}

Test(vfio_reset, bus_reset_when_no_flr_and_the_bus_is_ours)
{
	rd.dev_flags = 0;
	f.dead = true;
	f.recover = FAKE_RECOVER_HOT;
	cr_assert_eq(vfio_reset__ladder(&rd, &rep), 0);
	cr_assert_eq(rep.step, VFIO_RESET_HOT);
	cr_assert_eq(rep.result[VFIO_RESET_FUNCTION], -ENOTSUP);
	cr_assert_str_eq(f.log, "hotinfo,hotreset");
}

Test(vfio_reset, recovers_at_pm_cycle_when_bus_is_shared)
{
	f.dead = true;
	f.recover = FAKE_RECOVER_PM;
	f.hot_other_group = 3; /* the PF is in another group */
	cr_assert_eq(vfio_reset__ladder(&rd, &rep), 0);
	cr_assert_eq(rep.step, VFIO_RESET_PM);
	cr_assert_eq(rep.result[VFIO_RESET_FUNCTION], -EIO, "reset ran, still dead");
	cr_assert_eq(rep.result[VFIO_RESET_HOT], -EBUSY, "bus reset refused");
	cr_assert_str_eq(f.log, "reset,hotinfo,cfg0x44=0x3,sleep10,cfg0x44=0,sleep10");
	cr_assert_eq(f.nr_unmaps, 0, "not caged");
}

Test(vfio_reset, never_recovers_and_is_caged)
{
	char msg[128];

	f.dead = true;
	f.recover = FAKE_RECOVER_NEVER;
	cr_assert_eq(vfio_reset__ladder(&rd, &rep), -EIO);
	cr_assert_eq(rep.step, VFIO_RESET_CAGED);
	cr_assert(rep.tried[VFIO_RESET_FUNCTION] && rep.tried[VFIO_RESET_HOT] &&
		  rep.tried[VFIO_RESET_PM] && rep.tried[VFIO_RESET_CAGED]);
	/* bus master off: the last config write is COMMAND without MASTER */
	cr_assert(strstr(f.log, "cfg0x4=0x400") != NULL, "log: %s", f.log);
	cr_assert_eq(fake_cfg16(&f, PCI_COMMAND) & PCI_COMMAND_MASTER, 0);
	cr_assert_eq(f.nr_unmaps, f.nr_maps, "every DMA mapping revoked");
	cr_assert(io->caged);
	cr_assert_eq(vfio_iommu__map_ram(io), -EPERM, "never mapped again");
	cr_assert_eq(vfio_iommu__get_group(io, 9, &grp, msg, sizeof(msg)), -EPERM);
	/* order: reset, hot reset info, PM cycle, then the cage */
	cr_assert_lt(strstr(f.log, "reset"), strstr(f.log, "hotinfo"));
	cr_assert_lt(strstr(f.log, "hotinfo"), strstr(f.log, "sleep10"));
	cr_assert_lt(strstr(f.log, "sleep10"), strstr(f.log, "cfg0x4="));
	cr_assert_lt(strstr(f.log, "cfg0x4="), strstr(f.log, "unmap"));
}

Test(vfio_reset, no_method_but_alive_is_used_as_is)
{
	rd.dev_flags = 0;
	rd.pm_cap = 0;
	f.hot_other_group = 3;
	cr_assert_eq(vfio_reset__ladder(&rd, &rep), 0);
	cr_assert_eq(rep.step, VFIO_RESET_NONE);
	cr_assert_eq(f.nr_unmaps, 0);
}

Test(vfio_reset, wrong_vendor_counts_as_dead)
{
	rd.vendor = 0x1af4;
	cr_assert(!vfio_reset__alive(&rd));
	fake_w32(&f, PCI_CLASS_REVISION, 0xffffffff);
	rd.vendor = 0x8086;
	cr_assert(!vfio_reset__alive(&rd), "all-ones class code");
}

Test(vfio_reset, step_names)
{
	cr_assert(strstr(vfio_reset__step_name(VFIO_RESET_PM), "D3hot") != NULL);
	cr_assert(strstr(vfio_reset__step_name(VFIO_RESET_CAGED), "caged") != NULL);
}

/* ---- vfio_standalone__reset: a device no VM holds ------------------------ */

Test(vfio_reset, standalone_ladder_opens_resets_and_closes)
{
	struct vfio_reset_report r;
	char msg[256] = "";
	unsigned int maps = f.nr_maps;

	f.log[0] = 0;
	cr_assert_eq(vfio_standalone__reset(&f.be, "0000:00:12.2", VFIO_RESET_NONE, &r, msg,
					    sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(r.step, VFIO_RESET_FUNCTION);
	/* its own container (TYPE1v2), the reset, and the group released again */
	cr_assert_str_eq(f.log, "set_container,set_iommu3,reset,unset_container");
	cr_assert_eq(f.nr_maps, maps, "no VM: nothing mapped for DMA");
}

Test(vfio_reset, standalone_pm_step_alone_finds_the_pm_capability)
{
	struct vfio_reset_report r;
	char msg[256] = "";

	f.log[0] = 0;
	cr_assert_eq(vfio_standalone__reset(&f.be, "0000:00:12.2", VFIO_RESET_PM, &r, msg,
					    sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(r.step, VFIO_RESET_PM);
	cr_assert(r.tried[VFIO_RESET_PM] && !r.tried[VFIO_RESET_FUNCTION]);
	cr_assert_str_eq(f.log, "set_container,set_iommu3,cfg0x44=0x3,sleep10,cfg0x44=0,sleep10,"
				"unset_container");
}

Test(vfio_reset, standalone_pm_step_without_pm_capability_says_so)
{
	struct vfio_reset_report r;
	char msg[256] = "";

	f.cfg[PCI_CAPABILITY_LIST] = 0; /* no capabilities (as on QEMU's igbvf) */
	cr_assert_eq(vfio_standalone__reset(&f.be, "0000:00:12.2", VFIO_RESET_PM, &r, msg,
					    sizeof(msg)), -ENOTSUP);
	cr_assert(strstr(msg, "no PM capability") != NULL, "%s", msg);
}

Test(vfio_reset, standalone_dead_device_is_reported_not_caged)
{
	struct vfio_reset_report r;
	char msg[256] = "";

	f.dead = true;
	f.recover = FAKE_RECOVER_NEVER;
	cr_assert_eq(vfio_standalone__reset(&f.be, "0000:00:12.2", VFIO_RESET_NONE, &r, msg,
					    sizeof(msg)), -EIO);
	cr_assert(strstr(msg, "stays bound to vfio-pci") != NULL, "%s", msg);
	cr_assert_eq(vfio_standalone__reset(&f.be, "0000:00:12.2", VFIO_RESET_CAGED, &r, msg,
					    sizeof(msg)), -EINVAL);
}

Test(vfio_reset, standalone_bus_step_without_a_resettable_bus_is_not_available)
{
	struct vfio_reset_report r;
	char msg[256] = "";

	f.no_bus_reset = true; /* what L1's kernel answers for QEMU's igb VFs */
	cr_assert_eq(vfio_standalone__reset(&f.be, "0000:00:12.2", VFIO_RESET_HOT, &r, msg,
					    sizeof(msg)), -ENOTSUP);
	cr_assert(strstr(msg, "0000:00:12.2: bus reset (VFIO_DEVICE_PCI_HOT_RESET): not available"),
		  "%s", msg);
	/* in the ladder it is skipped quietly: the PM cycle comes next */
	f.dead = true;
	f.recover = FAKE_RECOVER_PM;
	cr_assert_eq(vfio_reset__ladder(&rd, &rep), 0);
	cr_assert_eq(rep.result[VFIO_RESET_HOT], -ENOTSUP);
	cr_assert_eq(rep.step, VFIO_RESET_PM);
}

Test(vfio_reset, standalone_function_step_without_function_reset_says_so)
{
	struct vfio_reset_report r;
	char msg[256] = "";

	f.dev_flags = 0; /* no VFIO_DEVICE_FLAGS_RESET */
	cr_assert_eq(vfio_standalone__reset(&f.be, "0000:00:12.2", VFIO_RESET_FUNCTION, &r, msg,
					    sizeof(msg)), -ENOTSUP);
	cr_assert(strstr(msg, "not available (the device offers no function reset)"), "%s", msg);
}
