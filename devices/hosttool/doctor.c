// SPDX-License-Identifier: MIT
/*
 * The doctor's checklist. Host lines: IOMMU, interrupt remapping, posted
 * interrupts (IOMMU capability), APICv/AVIC, vfio modules, /dev/vfio/vfio,
 * /dev/kvm. With a VF: it exists, is a VF, its driver, its IOMMU group, ACS
 * on its upstream path, memlock. The facts come from devices/vfio/check.c, so
 * the doctor and the refusal at `--vf` time agree.
 */
#include "devices/hosttool/doctor.h"
#include "devices/pcisys.h"
#include "devices/sriov/sysfs.h"
#include "devices/vfio/check.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

enum doctor_status { DOCTOR_OK, DOCTOR_WARN, DOCTOR_FAIL };

struct doctor {
	const struct doctor_opts *o;
	FILE *out;
	int fails;
};

/* prints "TAG   what: detail" and, for WARN/FAIL, an indented "fix:" line */
static void doctor_line(struct doctor *d, enum doctor_status st, const char *what,
			const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void doctor_line(struct doctor *d, enum doctor_status st, const char *what,
			const char *fix, const char *fmt, ...)
{
	static const char *const tags[] = { "OK  ", "WARN", "FAIL" };
	char detail[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	fprintf(d->out, "%s  %s: ", tags[st], what);
	/* multi-line details (group members) stay under the text */
	for (const char *p = detail; *p; p++) {
		fputc(*p, d->out);
		if (*p == '\n')
			fputs("        ", d->out);
	}
	fputc('\n', d->out);
	if (st != DOCTOR_OK && fix && *fix)
		fprintf(d->out, "        fix: %s\n", fix);
	if (st == DOCTOR_FAIL)
		d->fails++;
}

static bool doctor_exists(const char *root, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;

	return !pcisys__path(p, sizeof(p), root, "%s", rel) && !stat(p, &st);
}

/* 1 when /proc/interrupts names an IR- chip, 0 when not, -errno unreadable */
static int doctor_ir_in_use(const char *proc_root)
{
	char p[PATH_MAX], line[1024];
	int found = 0;
	FILE *f;

	if (pcisys__path(p, sizeof(p), proc_root, "interrupts"))
		return -ENAMETOOLONG;
	f = fopen(p, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "IR-")) {
			found = 1;
			break;
		}
	fclose(f);
	return found;
}

static void doctor_host(struct doctor *d, const struct vfio_check_iommu *io)
{
	const char *sys = d->o->sysfs_root;
	char p[PATH_MAX], v[16];
	int unsafe, inuse;

	if (io->units)
		doctor_line(d, DOCTOR_OK, "IOMMU enabled", NULL, "%u unit%s (%s)%s%s", io->units,
			    io->units == 1 ? "" : "s", io->names,
			    io->intel ? ", Intel VT-d" : "", io->amd ? ", AMD-Vi" : "");
	else
		doctor_line(d, DOCTOR_FAIL, "IOMMU enabled",
			    "boot with `intel_iommu=on iommu=pt` (Intel) or `amd_iommu=on "
			    "iommu=pt` (AMD) and enable VT-d/AMD-Vi in the firmware",
			    "no IOMMU (%s/class/iommu is empty)", sys);

	unsafe = vfio_check__unsafe_interrupts_param(sys);
	if (!io->units) {
		doctor_line(d, DOCTOR_FAIL, "interrupt remapping", "turn the IOMMU on first",
			    "no IOMMU, so no interrupt remapping");
	} else if (io->ir == io->units) {
		inuse = doctor_ir_in_use(d->o->proc_root);
		if (inuse == 0)
			doctor_line(d, DOCTOR_WARN, "interrupt remapping",
				    "remove `intremap=off`/`nointremap` from the kernel command line",
				    "every IOMMU unit supports it, but no IR- interrupt chip in "
				    "%s/interrupts: is it disabled?", d->o->proc_root);
		else
			doctor_line(d, DOCTOR_OK, "interrupt remapping", NULL,
				    "every IOMMU unit supports it (%u)%s", io->units,
				    inuse == 1 ? " and it is in use (IR- chips in /proc/interrupts)" :
				    "");
	} else if (unsafe == 1) {
		doctor_line(d, DOCTOR_WARN, "interrupt remapping",
			    "enable interrupt remapping in the firmware and the kernel, then "
			    "echo 0 > /sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts",
			    "missing on %u of %u units; allow_unsafe_interrupts=Y: an assigned "
			    "device can send any interrupt to the host", io->units - io->ir,
			    io->units);
	} else {
		doctor_line(d, DOCTOR_FAIL, "interrupt remapping",
			    "enable interrupt remapping (VT-d/AMD-Vi IR in the firmware, no "
			    "`intremap=off`); for a trusted guest only: echo 1 > "
			    "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts",
			    "missing on %u of %u IOMMU units: VFIO refuses devices", io->units - io->ir,
			    io->units);
	}

	if (io->units && io->pi == io->units)
		doctor_line(d, DOCTOR_OK, "posted interrupts capable", NULL,
			    "the IOMMU supports posting (%s); this is the IOMMU capability "
			    "only: KVM also needs APICv/AVIC, see docs/sriov.md to verify",
			    io->intel ? "VT-d cap.PI" : "AMD EFR GASup+GAMSup");
	else
		doctor_line(d, DOCTOR_WARN, "posted interrupts capable",
			    "nothing to do in software: posting needs IOMMU hardware with VT-d PI "
			    "or AMD GA (emulated IOMMUs have none)",
			    "%s (IOMMU capability only): VF interrupts go through the host "
			    "kernel (still without minivmm), not straight to the vCPU",
			    io->units ? "the IOMMU does not support posted interrupts" :
			    "no IOMMU, so no posted interrupts");

	if (!pcisys__path(p, sizeof(p), sys, "module/kvm_intel/parameters/enable_apicv") &&
	    !pcisys__read_file(p, v, sizeof(v))) {
		if (v[0] == 'Y' || v[0] == '1')
			doctor_line(d, DOCTOR_OK, "APICv", NULL, "kvm_intel enable_apicv=Y");
		else
			doctor_line(d, DOCTOR_WARN, "APICv",
				    "modprobe -r kvm_intel && modprobe kvm_intel enable_apicv=1 "
				    "(needs APICv in the CPU; nested guests usually have none)",
				    "kvm_intel enable_apicv=N: interrupts cannot be posted to vCPUs");
	} else if (!pcisys__path(p, sizeof(p), sys, "module/kvm_amd/parameters/avic") &&
		   !pcisys__read_file(p, v, sizeof(v))) {
		if (v[0] == 'Y' || v[0] == '1')
			doctor_line(d, DOCTOR_OK, "AVIC", NULL, "kvm_amd avic=Y");
		else
			doctor_line(d, DOCTOR_WARN, "AVIC",
				    "modprobe -r kvm_amd && modprobe kvm_amd avic=1",
				    "kvm_amd avic=N: interrupts cannot be posted to vCPUs");
	}

	{
		bool pci = doctor_exists(sys, "module/vfio_pci");
		bool t1 = doctor_exists(sys, "module/vfio_iommu_type1");

		if (pci && t1)
			doctor_line(d, DOCTOR_OK, "vfio modules", NULL, "vfio_pci, vfio_iommu_type1");
		else
			doctor_line(d, DOCTOR_FAIL, "vfio modules",
				    "modprobe vfio-pci vfio_iommu_type1",
				    "not loaded:%s%s", pci ? "" : " vfio_pci", t1 ? "" : " vfio_iommu_type1");
	}
	if (doctor_exists(d->o->dev_root, "vfio/vfio"))
		doctor_line(d, DOCTOR_OK, "/dev/vfio/vfio", NULL, "present");
	else
		doctor_line(d, DOCTOR_FAIL, "/dev/vfio/vfio", "modprobe vfio (and check udev)",
			    "%s/vfio/vfio missing", d->o->dev_root);
	if (doctor_exists(d->o->dev_root, "kvm"))
		doctor_line(d, DOCTOR_OK, "KVM", NULL, "%s/kvm present", d->o->dev_root);
	else
		doctor_line(d, DOCTOR_FAIL, "KVM",
			    "modprobe kvm_intel (or kvm_amd) and enable VT-x/AMD-V in the firmware",
			    "%s/kvm missing", d->o->dev_root);
}

static void doctor_vf(struct doctor *d, const char *vf_in)
{
	const char *sys = d->o->sysfs_root;
	char bdf[PCISYS_BDF_LEN], pf[PCISYS_BDF_LEN], drv[PCISYS_NAME_LEN], ifname[PCISYS_NAME_LEN];
	char fix[256], msg[4096] = "", acs[1024];
	enum vfio_acs_state acs_st;
	int ret, index, group;

	if (pcisys__parse_bdf(vf_in, bdf)) {
		doctor_line(d, DOCTOR_FAIL, "VF exists", "give the VF as 0000:03:10.1",
			    "'%s' is not a PCI address", vf_in);
		return;
	}
	ret = pcisys__pci_driver(sys, bdf, drv, sizeof(drv));
	if (ret) {
		doctor_line(d, DOCTOR_FAIL, "VF exists",
			    "create VFs with `minivmm sriov PF --num-vfs N`, then see "
			    "`minivmm sriov PF` for their addresses",
			    "no PCI device %s", bdf);
		return;
	}
	doctor_line(d, DOCTOR_OK, "VF exists", NULL, "%s", bdf);

	ret = sriov__physfn(sys, bdf, pf, &index);
	if (!ret) {
		if (sriov__netdev(sys, pf, ifname, sizeof(ifname)))
			ifname[0] = '\0';
		doctor_line(d, DOCTOR_OK, "is a VF", NULL, "VF %d of PF %s%s%s%s", index, pf,
			    ifname[0] ? " (" : "", ifname, ifname[0] ? ")" : "");
	} else {
		doctor_line(d, DOCTOR_WARN, "is a VF",
			    "none needed to assign it; for a VF, give an address listed by "
			    "`minivmm sriov PF`",
			    "%s has no physfn: a PF or a plain function, not an SR-IOV VF", bdf);
	}

	snprintf(fix, sizeof(fix), "minivmm sriov bind %s", bdf);
	if (!strcmp(drv, "vfio-pci"))
		doctor_line(d, DOCTOR_OK, "driver", NULL, "vfio-pci");
	else
		doctor_line(d, DOCTOR_FAIL, "driver", fix, "%s%s, not vfio-pci",
			    drv[0] ? "bound to " : "no driver", drv);

	group = vfio_check__group(sys, bdf);
	if (group == -ENXIO) {
		doctor_line(d, DOCTOR_FAIL, "IOMMU group",
			    "boot with `intel_iommu=on iommu=pt` or `amd_iommu=on iommu=pt`",
			    "%s has no IOMMU group: the IOMMU is off", bdf);
	} else if (group < 0) {
		doctor_line(d, DOCTOR_FAIL, "IOMMU group", NULL, "unreadable: %s",
			    strerror(-group));
	} else {
		ret = vfio_check__group_viable(sys, bdf, msg, sizeof(msg));
		if (!ret)
			doctor_line(d, DOCTOR_OK, "IOMMU group", NULL, "group %d is viable", group);
		else if (ret == -EBUSY)
			doctor_line(d, DOCTOR_FAIL, "IOMMU group", NULL, "%s", msg);
		else
			doctor_line(d, DOCTOR_FAIL, "IOMMU group", NULL, "group %d unreadable: %s",
				    group, strerror(-ret));
	}

	acs_st = vfio_check__acs_path(sys, bdf, acs, sizeof(acs));
	if (acs_st == VFIO_ACS_OK)
		doctor_line(d, DOCTOR_OK, "ACS on the upstream path", NULL, "%s", acs);
	else if (acs_st == VFIO_ACS_MISSING)
		doctor_line(d, DOCTOR_WARN, "ACS on the upstream path",
			    "use a slot behind a port with ACS; the group line says whether "
			    "it matters for this VF",
			    "%s: devices below that port may reach each other without the IOMMU, "
			    "so the kernel groups them together", acs);
	else
		doctor_line(d, DOCTOR_WARN, "ACS on the upstream path", "run the doctor as root",
			    "unknown: %s", acs);

	msg[0] = '\0';
	ret = vfio_check__memlock(d->o->pin_bytes, msg, sizeof(msg));
	if (!ret)
		doctor_line(d, DOCTOR_OK, "memlock", NULL, "%llu MiB of guest RAM can be pinned",
			    (unsigned long long)(d->o->pin_bytes >> 20));
	else
		doctor_line(d, DOCTOR_FAIL, "memlock", NULL, "%s", msg);
}

int doctor__run(const struct doctor_opts *o, FILE *out)
{
	struct doctor d = { .o = o, .out = out };
	struct vfio_check_iommu io;

	if (vfio_check__iommu(o->sysfs_root, &io))
		memset(&io, 0, sizeof(io));
	doctor_host(&d, &io);
	if (o->vf)
		doctor_vf(&d, o->vf);
	fflush(out);
	return d.fails;
}
