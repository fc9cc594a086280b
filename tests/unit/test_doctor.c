// SPDX-License-Identifier: MIT
/*
 * `minivmm doctor` on fake host trees: each checklist line for IOMMU on/off,
 * interrupt remapping on/off/overridden, posted interrupts capable or not
 * (Intel and AMD), APICv, modules and device nodes, and for a VF: exists, is a
 * VF, driver, group viability, ACS on its path, memlock; the exit status.
 */
#include "devices/hosttool/cli.h"
#include "devices/hosttool/doctor.h"
#include "fake_sysfs.h"

static struct fake F;
static char *out;
static size_t outlen;
static char sys_root[160], dev_root[160], proc_root[160];

/*
 * A good host: sysfs under root/sys, /dev under root/dev, /proc under
 * root/proc. Intel IOMMU with IR and PI, APICv on, vfio loaded, and a VF
 * 0000:03:10.1 (VF 1 of 0000:03:00.0, enp3s0) bound to vfio-pci in its own
 * group behind a root port with ACS.
 */
static void build_host(void)
{
	struct fake s;
	uint8_t cfg[FK_CFG];

	fk_init(&F);
	cr_assert_lt(strlen(F.root), sizeof(sys_root) - 8);
	strcpy(sys_root, F.root);
	strcat(sys_root, "/sys");
	strcpy(dev_root, F.root);
	strcat(dev_root, "/dev");
	strcpy(proc_root, F.root);
	strcat(proc_root, "/proc");
	fk_file(&F, "", "dev/kvm");
	fk_file(&F, "", "dev/vfio/vfio");
	fk_file(&F, " 24:          0  IR-PCI-MSI 512000-edge  vfio-msix[0]\n", "proc/interrupts");

	/* a second view rooted at sys/ for the sysfs helpers */
	s = F;
	strcpy(s.root, sys_root);
	fk_mkdirs(s.root);
	fk_dir(&s, "bus/pci/devices");
	fk_file(&s, "", "bus/pci/drivers_probe");
	fk_dir(&s, "bus/pci/drivers/vfio-pci");
	fk_dir(&s, "devices/pci0000:00");
	fk_intel_iommu(&s, "dmar0", "0800000000000000\n", "f0205e\n");
	fk_file(&s, "Y\n", "module/kvm_intel/parameters/enable_apicv");
	fk_dir(&s, "module/vfio_pci");

	fk_cfg_init(cfg, 4);
	fk_cfg_acs(cfg, 0x100, 0, 0x1f, 0x1d);
	fk_pci(&s, NULL, "0000:00:1c.0", cfg, sizeof(cfg));
	fk_driver(&s, "0000:00:1c.0", "pcieport");
	fk_group(&s, "0000:00:1c.0", 9);
	fk_cfg_init(cfg, 0);
	fk_pci(&s, "0000:00:1c.0", "0000:03:00.0", cfg, sizeof(cfg));
	fk_driver(&s, "0000:03:00.0", "igb");
	fk_group(&s, "0000:03:00.0", 10);
	fk_dir(&s, "bus/pci/devices/0000:03:00.0/net/enp3s0");
	fk_pci(&s, "0000:00:1c.0", "0000:03:10.1", cfg, sizeof(cfg));
	fk_driver(&s, "0000:03:10.1", "vfio-pci");
	fk_group(&s, "0000:03:10.1", 11);
	fk_link(&s, "bus/pci/devices/0000:03:10.1/physfn", "bus/pci/devices/0000:03:00.0");
	fk_link(&s, "bus/pci/devices/0000:03:00.0/virtfn1", "bus/pci/devices/0000:03:10.1");
}

/* path in the sysfs part of the tree */
static const char *sp(const char *rel)
{
	return fk_p(&F, "sys/%s", rel);
}

static int doctor(const char *vf)
{
	struct doctor_opts o = {
		.sysfs_root = sys_root, .dev_root = dev_root, .proc_root = proc_root,
		.vf = vf, .pin_bytes = 256ULL << 20,
	};
	FILE *f;
	int ret;

	free(out);
	out = NULL;
	f = open_memstream(&out, &outlen);
	cr_assert_not_null(f);
	ret = doctor__run(&o, f);
	fclose(f);
	return ret;
}

static void teardown(void)
{
	free(out);
	out = NULL;
	fk_fini(&F);
}

TestSuite(doctor, .fini = teardown);

#define HAS(s) cr_assert(strstr(out, s), "'%s' not in:\n%s", s, out)
#define HASNT(s) cr_assert_null(strstr(out, s), "'%s' in:\n%s", s, out)

Test(doctor, good_host)
{
	build_host();
	cr_assert_eq(doctor(NULL), 1, "%s", out);
	HAS("OK    IOMMU enabled: 1 unit (dmar0), Intel VT-d\n");
	HAS("OK    interrupt remapping: every IOMMU unit supports it (1) and it is in use (IR- "
	    "chips in /proc/interrupts)\n");
	HAS("OK    posted interrupts capable: the IOMMU supports posting (VT-d cap.PI); this is "
	    "the IOMMU capability only");
	HAS("OK    APICv: kvm_intel enable_apicv=Y\n");
	HAS("FAIL  vfio modules: not loaded: vfio_iommu_type1\n");
	HASNT("VF exists");
}

Test(doctor, good_host_and_vf)
{
	build_host();
	fk_dir(&F, "sys/module/vfio_iommu_type1");
	cr_assert_eq(doctor("03:10.1"), 0, "%s", out);
	HAS("OK    vfio modules: vfio_pci, vfio_iommu_type1\n");
	HAS("OK    /dev/vfio/vfio: present\n");
	HAS("OK    KVM: ");
	HAS("OK    VF exists: 0000:03:10.1\n");
	HAS("OK    is a VF: VF 1 of PF 0000:03:00.0 (enp3s0)\n");
	HAS("OK    driver: vfio-pci\n");
	HAS("OK    IOMMU group: group 11 is viable\n");
	HAS("OK    ACS on the upstream path: 0000:00:1c.0: ACS SV RR CR UF\n");
	HAS("OK    memlock: 256 MiB of guest RAM can be pinned\n");
	HASNT("FAIL");
	HASNT("WARN");
	HASNT("fix:");
}

Test(doctor, iommu_off)
{
	build_host();
	fk_rm(sp("class/iommu/dmar0/intel-iommu/cap"), NULL, 0, NULL);
	fk_rm(sp("class/iommu/dmar0/intel-iommu/ecap"), NULL, 0, NULL);
	rmdir(sp("class/iommu/dmar0/intel-iommu"));
	rmdir(sp("class/iommu/dmar0"));
	unlink(sp("bus/pci/devices/0000:03:10.1/iommu_group"));
	cr_assert_eq(doctor("0000:03:10.1"), 4, "%s", out);
	HAS("FAIL  IOMMU enabled: no IOMMU (");
	HAS("        fix: boot with `intel_iommu=on iommu=pt` (Intel) or `amd_iommu=on iommu=pt` (AMD)");
	HAS("FAIL  interrupt remapping: no IOMMU, so no interrupt remapping\n");
	HAS("WARN  posted interrupts capable: no IOMMU, so no posted interrupts (IOMMU capability "
	    "only)");
	HAS("FAIL  IOMMU group: 0000:03:10.1 has no IOMMU group: the IOMMU is off\n");
	HAS("FAIL  vfio modules");
}

Test(doctor, interrupt_remapping_off)
{
	build_host();
	fk_dir(&F, "sys/module/vfio_iommu_type1");
	fk_file(&F, "0800000000000000\n", "sys/class/iommu/dmar0/intel-iommu/cap");
	fk_file(&F, "f02056\n", "sys/class/iommu/dmar0/intel-iommu/ecap");
	cr_assert_eq(doctor(NULL), 1, "%s", out);
	HAS("FAIL  interrupt remapping: missing on 1 of 1 IOMMU units: VFIO refuses devices\n"
	    "        fix: enable interrupt remapping (VT-d/AMD-Vi IR in the firmware, no "
	    "`intremap=off`); for a trusted guest only: echo 1 > "
	    "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts\n");
	/* the override turns it into a warning */
	fk_file(&F, "Y\n", "sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts");
	cr_assert_eq(doctor(NULL), 0, "%s", out);
	HAS("WARN  interrupt remapping: missing on 1 of 1 units; allow_unsafe_interrupts=Y");
}

Test(doctor, interrupt_remapping_capable_but_unused)
{
	build_host();
	fk_file(&F, "  0:   10  IO-APIC   2-edge      timer\n", "proc/interrupts");
	doctor(NULL);
	HAS("WARN  interrupt remapping: every IOMMU unit supports it, but no IR- interrupt chip");
	HAS("fix: remove `intremap=off`/`nointremap`");
}

Test(doctor, posted_interrupts_not_capable)
{
	build_host();
	fk_dir(&F, "sys/module/vfio_iommu_type1");
	/* QEMU's emulated VT-d: IR, no PI */
	fk_file(&F, "d2008c40660462\n", "sys/class/iommu/dmar0/intel-iommu/cap");
	cr_assert_eq(doctor(NULL), 0, "a WARN is no failure:\n%s", out);
	HAS("WARN  posted interrupts capable: the IOMMU does not support posted interrupts (IOMMU "
	    "capability only): VF interrupts go through the host kernel (still without minivmm), "
	    "not straight to the vCPU\n");
	HAS("OK    interrupt remapping");
}

Test(doctor, amd_iommu)
{
	build_host();
	fk_rm(sp("class/iommu/dmar0/intel-iommu/cap"), NULL, 0, NULL);
	fk_rm(sp("class/iommu/dmar0/intel-iommu/ecap"), NULL, 0, NULL);
	rmdir(sp("class/iommu/dmar0/intel-iommu"));
	rmdir(sp("class/iommu/dmar0"));
	fk_file(&F, "58f77ef22294ade:0\n", "sys/class/iommu/ivhd0/amd-iommu/features");
	fk_file(&F, "N\n", "sys/module/kvm_intel/parameters/enable_apicv");
	doctor(NULL);
	HAS("OK    IOMMU enabled: 1 unit (ivhd0), AMD-Vi\n");
	HAS("OK    interrupt remapping: every IOMMU unit supports it (1)");
	HAS("OK    posted interrupts capable: the IOMMU supports posting (AMD EFR GASup+GAMSup)");
	HAS("WARN  APICv: kvm_intel enable_apicv=N");
	fk_file(&F, "80\n", "sys/class/iommu/ivhd0/amd-iommu/features");
	doctor(NULL);
	HAS("WARN  posted interrupts capable: the IOMMU does not support posted interrupts");
}

Test(doctor, missing_nodes)
{
	build_host();
	unlink(fk_p(&F, "dev/vfio/vfio"));
	unlink(fk_p(&F, "dev/kvm"));
	cr_assert_eq(doctor(NULL), 3, "%s", out);
	HAS("/dev/vfio/vfio: ");
	HAS("fix: modprobe vfio (and check udev)");
	HAS("FAIL  KVM: ");
	HAS("fix: modprobe kvm_intel (or kvm_amd)");
	HAS("fix: modprobe vfio-pci vfio_iommu_type1");
}

Test(doctor, vf_missing)
{
	build_host();
	cr_assert_geq(doctor("0000:03:10.3"), 1);
	HAS("FAIL  VF exists: no PCI device 0000:03:10.3\n"
	    "        fix: create VFs with `minivmm sriov PF --num-vfs N`");
	HASNT("driver:");
}

Test(doctor, vf_wrong_driver_shared_group_no_acs)
{
	uint8_t cfg[FK_CFG];
	struct fake s = F;

	build_host();
	s = F;
	strcpy(s.root, sys_root);
	fk_dir(&F, "sys/module/vfio_iommu_type1");
	fk_driver(&s, "0000:03:10.1", "igbvf");
	fk_group(&s, "0000:03:00.0", 11);
	fk_group(&s, "0000:03:10.1", 11);
	fk_cfg_init(cfg, 4);
	fk_write_bytes(&s, "devices/pci0000:00/0000:00:1c.0/config", cfg, sizeof(cfg));
	cr_assert_eq(doctor("0000:03:10.1"), 2, "%s", out);
	HAS("FAIL  driver: bound to igbvf, not vfio-pci\n"
	    "        fix: minivmm sriov bind 0000:03:10.1\n");
	HAS("FAIL  IOMMU group: IOMMU group 11 of 0000:03:10.1 is not viable");
	HAS("          0000:03:00.0: driver igb (blocks assignment), ACS missing on its path "
	    "(0000:00:1c.0: root port without ACS capability)");
	HAS("WARN  ACS on the upstream path: 0000:00:1c.0: root port without ACS capability: "
	    "devices below that port may reach each other");
}

Test(doctor, not_a_vf)
{
	build_host();
	fk_dir(&F, "sys/module/vfio_iommu_type1");
	unlink(sp("bus/pci/devices/0000:03:10.1/physfn"));
	cr_assert_eq(doctor("0000:03:10.1"), 0, "%s", out);
	HAS("WARN  is a VF: 0000:03:10.1 has no physfn");
}

Test(doctor, cli_exit_status)
{
	char *argv[] = { "doctor", "--sysfs-root", sys_root, "--dev-root", dev_root, "--proc-root",
			 proc_root, "--mem", "1G", "0000:03:10.1", NULL };
	FILE *devnull = fopen("/dev/null", "w");

	build_host();
	cr_assert_eq(sriov_cli__run(10, argv, devnull, devnull), 1, "vfio_iommu_type1 missing");
	fk_dir(&F, "sys/module/vfio_iommu_type1");
	cr_assert_eq(sriov_cli__run(10, argv, devnull, devnull), 0);
	fclose(devnull);
}
