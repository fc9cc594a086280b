// SPDX-License-Identifier: MIT
/*
 * VFIO isolation checks against fake sysfs trees: every refusal of
 * vfio_check__device with its message, the group and ACS helpers, the
 * capability list walks (loops included), IOMMU capability decoding, memlock.
 */
#include "devices/vfio/check.h"
#include "fake_sysfs.h"

#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>

static struct fake F;

/*
 * Root port 0000:00:1c.0 (ACS with acs_ctrl) with PF 0000:03:00.0 (igb,
 * group 10) and VF 0000:03:10.1 (vfio-pci, group 11, alone); Intel IOMMU with
 * IR and PI; vfio-pci and vfio_iommu_type1 loaded.
 */
static void build_host(uint16_t acs_ctrl)
{
	uint8_t cfg[FK_CFG];

	fk_init(&F);
	fk_cfg_init(cfg, 4);
	fk_cfg_ext(cfg, 0x100, 0x0001, 0x140);                 /* AER */
	fk_cfg_acs(cfg, 0x140, 0, 0x5f, acs_ctrl);
	fk_pci(&F, NULL, "0000:00:1c.0", cfg, sizeof(cfg));
	fk_driver(&F, "0000:00:1c.0", "pcieport");
	fk_group(&F, "0000:00:1c.0", 9);
	fk_cfg_init(cfg, 0);
	fk_pci(&F, "0000:00:1c.0", "0000:03:00.0", cfg, sizeof(cfg));
	fk_driver(&F, "0000:03:00.0", "igb");
	fk_group(&F, "0000:03:00.0", 10);
	fk_pci(&F, "0000:00:1c.0", "0000:03:10.1", cfg, sizeof(cfg));
	fk_driver(&F, "0000:03:10.1", "vfio-pci");
	fk_group(&F, "0000:03:10.1", 11);
	fk_link(&F, "bus/pci/devices/0000:03:10.1/physfn", "bus/pci/devices/0000:03:00.0");
	/* cap: PI (bit 59); ecap: IR (bit 3) */
	fk_intel_iommu(&F, "dmar0", "0800000000000000\n", "f0205e\n");
	fk_file(&F, "N\n", "module/vfio_iommu_type1/parameters/allow_unsafe_interrupts");
	fk_dir(&F, "module/vfio_pci");
}

static void teardown(void)
{
	fk_fini(&F);
}

TestSuite(vfio_check, .fini = teardown);

static char msg[8192];

Test(vfio_check, assignable_vf_passes_clean)
{
	build_host(0x1d);
	cr_assert_eq(vfio_check__device(F.root, "0000:03:10.1", 512ULL << 20, false, msg,
					sizeof(msg)), 0, "%s", msg);
	cr_assert_str_empty(msg);
	/* the short form is accepted too */
	cr_assert_eq(vfio_check__device(F.root, "03:10.1", 1, false, msg, sizeof(msg)), 0);
}

Test(vfio_check, bad_address)
{
	build_host(0x1d);
	cr_assert_eq(vfio_check__device(F.root, "03:10", 1, false, msg, sizeof(msg)), -EINVAL);
	cr_assert(strstr(msg, "'03:10' is not a PCI address"), "%s", msg);
}

Test(vfio_check, missing_device)
{
	build_host(0x1d);
	cr_assert_eq(vfio_check__device(F.root, "0000:03:10.7", 1, false, msg, sizeof(msg)),
		     -ENODEV);
	cr_assert_str_eq(msg, "no PCI device 0000:03:10.7; is it a VF? create VFs with "
			 "`minivmm sriov PF --num-vfs N`");
}

Test(vfio_check, bound_to_host_driver)
{
	build_host(0x1d);
	fk_driver(&F, "0000:03:10.1", "igbvf");
	fk_dir(&F, "bus/pci/drivers/vfio-pci");
	cr_assert_eq(vfio_check__device(F.root, "0000:03:10.1", 1, false, msg, sizeof(msg)),
		     -EBUSY);
	cr_assert(strstr(msg, "0000:03:10.1 is bound to igbvf, not to vfio-pci: run "
			 "`minivmm sriov bind 0000:03:10.1`"), "%s", msg);
	cr_assert(strstr(msg, "echo vfio-pci > /sys/bus/pci/devices/0000:03:10.1/driver_override"));
	cr_assert(strstr(msg, "echo 0000:03:10.1 > /sys/bus/pci/devices/0000:03:10.1/driver/unbind"));
	cr_assert(strstr(msg, "echo 0000:03:10.1 > /sys/bus/pci/drivers_probe"));
	cr_assert_null(strstr(msg, "modprobe"), "vfio-pci is loaded: %s", msg);
}

Test(vfio_check, unbound_and_vfio_pci_not_loaded)
{
	build_host(0x1d);
	fk_p(&F, "bus/pci/devices/0000:03:10.1/driver");
	unlink(F.buf);
	fk_p(&F, "bus/pci/drivers/vfio-pci");
	fk_rm(fk_p(&F, "bus/pci/drivers/vfio-pci/unbind"), NULL, 0, NULL);
	fk_rm(fk_p(&F, "bus/pci/drivers/vfio-pci/bind"), NULL, 0, NULL);
	rmdir(fk_p(&F, "bus/pci/drivers/vfio-pci"));
	cr_assert_eq(vfio_check__device(F.root, "0000:03:10.1", 1, false, msg, sizeof(msg)),
		     -EBUSY);
	cr_assert(strstr(msg, "0000:03:10.1 is not bound to any driver, not to vfio-pci"), "%s", msg);
	cr_assert(strstr(msg, "modprobe vfio-pci"), "%s", msg);
	cr_assert_null(strstr(msg, "driver/unbind"), "%s", msg);
}

Test(vfio_check, no_iommu_group)
{
	build_host(0x1d);
	unlink(fk_p(&F, "bus/pci/devices/0000:03:10.1/iommu_group"));
	fk_rm(fk_p(&F, "class/iommu/dmar0/intel-iommu/cap"), NULL, 0, NULL);
	fk_rm(fk_p(&F, "class/iommu/dmar0/intel-iommu/ecap"), NULL, 0, NULL);
	rmdir(fk_p(&F, "class/iommu/dmar0/intel-iommu"));
	rmdir(fk_p(&F, "class/iommu/dmar0"));
	cr_assert_eq(vfio_check__group(F.root, "0000:03:10.1"), -ENXIO);
	cr_assert_eq(vfio_check__device(F.root, "0000:03:10.1", 1, false, msg, sizeof(msg)),
		     -ENXIO);
	cr_assert(strstr(msg, "0000:03:10.1 has no IOMMU group: the IOMMU is off "
			 "(/sys/class/iommu is empty)"), "%s", msg);
	cr_assert(strstr(msg, "`intel_iommu=on iommu=pt`"), "%s", msg);
	cr_assert(strstr(msg, "`amd_iommu=on iommu=pt`"), "%s", msg);
	/* no IOMMU: no separate interrupt remapping complaint */
	cr_assert_null(strstr(msg, "interrupt remapping"), "%s", msg);
}

Test(vfio_check, group_not_viable_names_every_member)
{
	build_host(0x00); /* root port: ACS present but nothing enabled */
	/* the VF shares group 11 with its PF (igb), another VF and the root port */
	fk_pci(&F, "0000:00:1c.0", "0000:03:10.3", NULL, 0);
	fk_driver(&F, "0000:03:10.3", "vfio-pci");
	fk_group(&F, "0000:03:10.3", 11);
	fk_link(&F, "bus/pci/devices/0000:03:10.3/physfn", "bus/pci/devices/0000:03:00.0");
	fk_group(&F, "0000:03:00.0", 11);
	fk_group(&F, "0000:00:1c.0", 11);
	fk_group(&F, "0000:03:10.1", 11);
	cr_assert_eq(vfio_check__group(F.root, "0000:03:10.1"), 11);
	cr_assert_eq(vfio_check__device(F.root, "0000:03:10.1", 1, false, msg, sizeof(msg)),
		     -EBUSY);
	cr_assert(strstr(msg, "IOMMU group 11 of 0000:03:10.1 is not viable: every device in it "
			 "must be bound to vfio-pci or to no driver"), "%s", msg);
	cr_assert(strstr(msg, "  0000:03:00.0: driver igb (blocks assignment), ACS missing on "
			 "its path (0000:00:1c.0: ACS SV RR CR UF disabled)"), "%s", msg);
	cr_assert(strstr(msg, "  0000:03:10.3: driver vfio-pci (fine), ACS missing on its path"),
		  "%s", msg);
	cr_assert(strstr(msg, "  0000:00:1c.0: driver pcieport (fine), ACS on its path (no bridge "
			 "above 0000:00:1c.0"), "%s", msg);
	cr_assert(strstr(msg, "fix: unbind the blocking devices"), "%s", msg);
	cr_assert_null(strstr(msg, "0000:03:10.1:"), "the device itself is not listed: %s", msg);
}

Test(vfio_check, multifunction_siblings_are_named_as_such)
{
	build_host(0x1d);
	/* a chipset function grouped with its siblings (no ACS between functions) */
	fk_pci(&F, NULL, "0000:00:1f.2", NULL, 0);
	fk_driver(&F, "0000:00:1f.2", "vfio-pci");
	fk_group(&F, "0000:00:1f.2", 5);
	fk_pci(&F, NULL, "0000:00:1f.0", NULL, 0);
	fk_driver(&F, "0000:00:1f.0", "lpc_ich");
	fk_group(&F, "0000:00:1f.0", 5);
	cr_assert_eq(vfio_check__group_viable(F.root, "0000:00:1f.2", msg, sizeof(msg)), -EBUSY);
	cr_assert(strstr(msg, "  0000:00:1f.0: driver lpc_ich (blocks assignment), another function "
			 "of the same multifunction device (no ACS isolates its functions)"),
		  "%s", msg);
}

Test(vfio_check, viable_group_with_unbound_and_stub_members)
{
	build_host(0x1d);
	fk_pci(&F, "0000:00:1c.0", "0000:03:10.3", NULL, 0);
	fk_group(&F, "0000:03:10.3", 11);                       /* no driver */
	fk_pci(&F, "0000:00:1c.0", "0000:03:10.5", NULL, 0);
	fk_driver(&F, "0000:03:10.5", "pci-stub");
	fk_group(&F, "0000:03:10.5", 11);
	fk_group(&F, "0000:03:10.1", 11);
	cr_assert_eq(vfio_check__group_viable(F.root, "0000:03:10.1", msg, sizeof(msg)), 0, "%s", msg);
}

Test(vfio_check, every_problem_is_named)
{
	build_host(0x1d);
	fk_driver(&F, "0000:03:10.1", "igbvf");
	fk_group(&F, "0000:03:00.0", 11);
	fk_group(&F, "0000:03:10.1", 11);
	fk_intel_iommu(&F, "dmar0", "0\n", "0\n");              /* no IR */
	cr_assert_eq(vfio_check__device(F.root, "0000:03:10.1", 1, false, msg, sizeof(msg)),
		     -EBUSY);
	cr_assert(strstr(msg, "is bound to igbvf, not to vfio-pci"), "%s", msg);
	cr_assert(strstr(msg, "IOMMU group 11 of 0000:03:10.1 is not viable"), "%s", msg);
	cr_assert(strstr(msg, "no interrupt remapping"), "%s", msg);
}

Test(vfio_check, no_interrupt_remapping_refused)
{
	build_host(0x1d);
	fk_intel_iommu(&F, "dmar0", "0\n", "f02056\n");         /* IR bit clear */
	fk_intel_iommu(&F, "dmar1", "0\n", "f0205e\n");         /* one unit with IR is not enough */
	cr_assert_eq(vfio_check__device(F.root, "0000:03:10.1", 1, false, msg, sizeof(msg)),
		     -EPERM);
	cr_assert(strstr(msg, "no interrupt remapping (1 of 2 IOMMU units support it)"), "%s", msg);
	cr_assert(strstr(msg, "so it is refused"), "%s", msg);
	cr_assert(strstr(msg, "echo 1 > /sys/module/vfio_iommu_type1/parameters/"
			 "allow_unsafe_interrupts"), "%s", msg);
}

Test(vfio_check, unsafe_override_needs_the_kernel_too)
{
	build_host(0x1d);
	fk_intel_iommu(&F, "dmar0", "0\n", "0\n");
	cr_assert_eq(vfio_check__device(F.root, "0000:03:10.1", 1, true, msg, sizeof(msg)), -EPERM);
	cr_assert(strstr(msg, "allowed here but not by the kernel"), "%s", msg);
}

Test(vfio_check, unsafe_override_warns)
{
	build_host(0x1d);
	fk_intel_iommu(&F, "dmar0", "0\n", "0\n");
	fk_file(&F, "Y\n", "module/vfio_iommu_type1/parameters/allow_unsafe_interrupts");
	cr_assert_eq(vfio_check__unsafe_interrupts_param(F.root), 1);
	cr_assert_eq(vfio_check__device(F.root, "0000:03:10.1", 1, true, msg, sizeof(msg)), 0);
	cr_assert(strstr(msg, "warning: no interrupt remapping; unsafe interrupts allowed"),
		  "%s", msg);
}

static void drop_cap_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	cr_assert_eq(syscall(SYS_capget, &hdr, data), 0);
	data[0].effective &= ~CAP_TO_MASK(CAP_IPC_LOCK);
	cr_assert_eq(syscall(SYS_capset, &hdr, data), 0);
}

Test(vfio_check, memlock_too_small)
{
	struct rlimit rl = { .rlim_cur = 64 << 10, .rlim_max = RLIM_INFINITY };

	build_host(0x1d);
	cr_assert_eq(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
	rl.rlim_cur = 64 << 10;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < rl.rlim_cur)
		rl.rlim_cur = rl.rlim_max;
	cr_assert_eq(setrlimit(RLIMIT_MEMLOCK, &rl), 0);
	/* with CAP_IPC_LOCK (root) the limit does not apply */
	if (geteuid() == 0)
		cr_assert_eq(vfio_check__memlock(512ULL << 20, msg, sizeof(msg)), 0);
	drop_cap_ipc_lock();
	cr_assert_eq(vfio_check__device(F.root, "0000:03:10.1", 512ULL << 20, false, msg,
					sizeof(msg)), -ENOMEM);
	cr_assert(strstr(msg, "needs 512 MiB locked to pin guest RAM for DMA, limit is 0 MiB "
			 "(64 KiB): run `ulimit -l 524288`"), "%s", msg);
	cr_assert(strstr(msg, "or run as root with CAP_IPC_LOCK"), "%s", msg);
	/* within the limit */
	msg[0] = '\0';
	cr_assert_eq(vfio_check__memlock(32 << 10, msg, sizeof(msg)), 0);
	cr_assert_str_empty(msg);
}

Test(vfio_check, group_numbers)
{
	build_host(0x1d);
	cr_assert_eq(vfio_check__group(F.root, "0000:03:00.0"), 10);
	cr_assert_eq(vfio_check__group(F.root, "0000:03:10.1"), 11);
	cr_assert_eq(vfio_check__group(F.root, "0000:05:00.0"), -ENODEV);
}

Test(vfio_check, ext_cap_walk)
{
	static uint8_t cfg[FK_CFG];

	fk_cfg_init(cfg, 4);
	cr_assert_eq(vfio_check__find_ext_cap(cfg, sizeof(cfg), 0x0d), -ENOENT);
	fk_cfg_ext(cfg, 0x100, 0x0001, 0x148);
	fk_cfg_ext(cfg, 0x148, 0x0010, 0x200);                  /* SR-IOV */
	fk_cfg_acs(cfg, 0x200, 0, 0x1f, 0x1d);
	cr_assert_eq(vfio_check__find_ext_cap(cfg, sizeof(cfg), 0x0d), 0x200);
	cr_assert_eq(vfio_check__find_ext_cap(cfg, sizeof(cfg), 0x10), 0x148);
	cr_assert_eq(vfio_check__find_ext_cap(cfg, sizeof(cfg), 0x0b), -ENOENT);
	cr_assert_eq(vfio_check__find_ext_cap(cfg, 256, 0x0d), -ERANGE);
	/* a cycle 0x100 -> 0x148 -> 0x100 */
	fk_cfg_ext(cfg, 0x148, 0x0010, 0x100);
	cr_assert_eq(vfio_check__find_ext_cap(cfg, sizeof(cfg), 0x0d), -ELOOP);
	/* a self loop */
	fk_cfg_ext(cfg, 0x100, 0x0001, 0x100);
	cr_assert_eq(vfio_check__find_ext_cap(cfg, sizeof(cfg), 0x0d), -ELOOP);
	/* pointer back into standard space ends the list */
	fk_cfg_ext(cfg, 0x100, 0x0001, 0x040);
	cr_assert_eq(vfio_check__find_ext_cap(cfg, sizeof(cfg), 0x0d), -ENOENT);
}

Test(vfio_check, std_cap_walk)
{
	static uint8_t cfg[FK_CFG];

	fk_cfg_init(cfg, 4);
	cr_assert_eq(vfio_check__find_cap(cfg, sizeof(cfg), 0x10), 0x40);
	cr_assert_eq(vfio_check__find_cap(cfg, sizeof(cfg), 0x11), -ENOENT);
	cfg[0x41] = 0x50;
	cfg[0x50] = 0x05;
	cfg[0x51] = 0x40;                                       /* back to 0x40 */
	cr_assert_eq(vfio_check__find_cap(cfg, sizeof(cfg), 0x11), -ELOOP);
	cfg[0x06] = 0;
	cr_assert_eq(vfio_check__find_cap(cfg, sizeof(cfg), 0x10), -ENOENT);
	cr_assert_eq(vfio_check__find_cap(cfg, 64, 0x10), -ERANGE);
}

Test(vfio_check, acs_path_states)
{
	char desc[1024];
	uint8_t cfg[FK_CFG];

	build_host(0x1d);
	cr_assert_eq(vfio_check__acs_path(F.root, "0000:03:10.1", desc, sizeof(desc)), VFIO_ACS_OK);
	cr_assert_str_eq(desc, "0000:00:1c.0: ACS SV RR CR UF");

	/* RR and CR off */
	fk_cfg_init(cfg, 4);
	fk_cfg_acs(cfg, 0x100, 0, 0x1f, 0x11);
	fk_write_bytes(&F, "devices/pci0000:00/0000:00:1c.0/config", cfg, sizeof(cfg));
	cr_assert_eq(vfio_check__acs_path(F.root, "0000:03:10.1", desc, sizeof(desc)),
		     VFIO_ACS_MISSING);
	cr_assert_str_eq(desc, "0000:00:1c.0: ACS RR CR disabled");

	/* a port that does not implement UF is not asked for it */
	fk_cfg_acs(cfg, 0x100, 0, 0x0d, 0x0d);
	fk_write_bytes(&F, "devices/pci0000:00/0000:00:1c.0/config", cfg, sizeof(cfg));
	cr_assert_eq(vfio_check__acs_path(F.root, "0000:03:10.1", desc, sizeof(desc)), VFIO_ACS_OK);

	/* no ACS at all */
	fk_cfg_init(cfg, 4);
	fk_cfg_ext(cfg, 0x100, 0x0001, 0);
	fk_write_bytes(&F, "devices/pci0000:00/0000:00:1c.0/config", cfg, sizeof(cfg));
	cr_assert_eq(vfio_check__acs_path(F.root, "0000:03:10.1", desc, sizeof(desc)),
		     VFIO_ACS_MISSING);
	cr_assert_str_eq(desc, "0000:00:1c.0: root port without ACS capability");

	/* a looping list is reported, not followed forever */
	fk_cfg_ext(cfg, 0x100, 0x0001, 0x180);
	fk_cfg_ext(cfg, 0x180, 0x0002, 0x100);
	fk_write_bytes(&F, "devices/pci0000:00/0000:00:1c.0/config", cfg, sizeof(cfg));
	cr_assert_eq(vfio_check__acs_path(F.root, "0000:03:10.1", desc, sizeof(desc)),
		     VFIO_ACS_UNKNOWN);
	cr_assert_str_eq(desc, "0000:00:1c.0: extended capability list loops");

	/* what an unprivileged reader gets: 64 bytes */
	fk_write_bytes(&F, "devices/pci0000:00/0000:00:1c.0/config", cfg, 64);
	cr_assert_eq(vfio_check__acs_path(F.root, "0000:03:10.1", desc, sizeof(desc)),
		     VFIO_ACS_UNKNOWN);
	cr_assert(strstr(desc, "only 64 bytes of config space readable (run as root)"), "%s", desc);
}

Test(vfio_check, acs_path_through_a_switch)
{
	char desc[1024];
	uint8_t cfg[FK_CFG];

	fk_init(&F);
	fk_cfg_init(cfg, 4);                                    /* root port with ACS */
	fk_cfg_acs(cfg, 0x100, 0, 0x1f, 0x1d);
	fk_pci(&F, NULL, "0000:00:01.0", cfg, sizeof(cfg));
	fk_cfg_init(cfg, 5);                                    /* switch upstream port */
	fk_pci(&F, "0000:00:01.0", "0000:01:00.0", cfg, sizeof(cfg));
	fk_cfg_init(cfg, 6);                                    /* downstream port, no ACS */
	fk_pci(&F, "0000:01:00.0", "0000:02:03.0", cfg, sizeof(cfg));
	fk_cfg_init(cfg, 0);
	fk_pci(&F, "0000:02:03.0", "0000:04:00.0", cfg, sizeof(cfg));
	cr_assert_eq(vfio_check__acs_path(F.root, "0000:04:00.0", desc, sizeof(desc)),
		     VFIO_ACS_MISSING);
	cr_assert_str_eq(desc, "0000:02:03.0: downstream port without ACS capability; "
			 "0000:00:01.0: ACS SV RR CR UF");
}

Test(vfio_check, iommu_capabilities)
{
	struct vfio_check_iommu io;

	fk_init(&F);
	cr_assert_eq(vfio_check__iommu(F.root, &io), 0);
	cr_assert_eq(io.units, 0);
	fk_intel_iommu(&F, "dmar0", "d2008c40660462\n", "f0205e\n"); /* QEMU: IR, no PI */
	fk_intel_iommu(&F, "dmar1", "8d2008c40660462\n", "f02056\n"); /* PI, no IR */
	cr_assert_eq(vfio_check__iommu(F.root, &io), 0);
	cr_assert_eq(io.units, 2);
	cr_assert_eq(io.intel, 2);
	cr_assert_eq(io.ir, 1);
	cr_assert_eq(io.pi, 1);
	cr_assert_str_eq(io.names, "dmar0 dmar1");

	fk_fini(&F);
	fk_init(&F);
	fk_file(&F, "58f77ef22294ade:0\n", "class/iommu/ivhd0/amd-iommu/features"); /* GA + vAPIC */
	fk_file(&F, "80\n", "class/iommu/ivhd1/amd-iommu/features");                 /* GA only */
	cr_assert_eq(vfio_check__iommu(F.root, &io), 0);
	cr_assert_eq(io.amd, 2);
	cr_assert_eq(io.ir, 2);
	cr_assert_eq(io.pi, 1);
}
