// SPDX-License-Identifier: MIT
/*
 * Isolation checks for VFIO assignment, on sysfs only (no VFIO ioctls), so
 * that every refusal can say what is wrong and how to fix it before any
 * device state is touched:
 *   - the device exists and is bound to vfio-pci;
 *   - it has an IOMMU group (the IOMMU is on) and the group is viable: every
 *     other member is unbound or bound to a driver that leaves DMA ownership
 *     to VFIO (vfio-pci, pci-stub, pcieport: driver_managed_dma since 5.19);
 *   - ACS on the root/downstream ports above each device, which is what lets
 *     the kernel split peers into separate groups;
 *   - interrupt remapping (Intel ecap.IR bit 3; AMD-Vi always remaps), which
 *     vfio_iommu_type1 itself requires unless allow_unsafe_interrupts=Y;
 *   - RLIMIT_MEMLOCK against the RAM to pin, unless CAP_IPC_LOCK.
 */
#include "devices/vfio/check.h"
#include "devices/pcisys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PCI_CFG_SPACE 256
#define PCI_CFG_EXP_SPACE 4096
#define PCI_STATUS 0x06
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_CAP_PTR 0x34
#define PCI_CAP_ID_EXP 0x10
#define PCI_EXP_TYPE_ROOT_PORT 0x4
#define PCI_EXP_TYPE_DOWNSTREAM 0x6
#define PCI_EXT_CAP_ID_ACS 0x000d
#define PCI_ACS_SV 0x01
#define PCI_ACS_RR 0x04
#define PCI_ACS_CR 0x08
#define PCI_ACS_UF 0x10
#define ACS_REQUIRED (PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF)

#define INTEL_ECAP_IR (1ULL << 3)
#define INTEL_CAP_PI (1ULL << 59)
#define AMD_EFR_GASUP (1ULL << 7)
#define AMD_EFR_GAM_VAPIC (1ULL << 21)

static uint16_t check_rd16(const uint8_t *cfg, size_t off)
{
	return (uint16_t)(cfg[off] | cfg[off + 1] << 8);
}

static uint32_t check_rd32(const uint8_t *cfg, size_t off)
{
	return (uint32_t)cfg[off] | (uint32_t)cfg[off + 1] << 8 | (uint32_t)cfg[off + 2] << 16 |
	       (uint32_t)cfg[off + 3] << 24;
}

int vfio_check__find_cap(const uint8_t *cfg, size_t len, uint8_t id)
{
	unsigned int pos, ttl = 48; /* (256 - 64) / 4 capabilities at most */

	if (len < PCI_CFG_SPACE)
		return -ERANGE;
	if (!(check_rd16(cfg, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return -ENOENT;
	pos = cfg[PCI_CAP_PTR] & ~3u;
	while (pos >= 0x40) {
		if (!ttl--)
			return -ELOOP;
		if (cfg[pos] == 0xff)
			return -ENOENT;
		if (cfg[pos] == id)
			return (int)pos;
		pos = cfg[pos + 1] & ~3u;
	}
	return -ENOENT;
}

int vfio_check__find_ext_cap(const uint8_t *cfg, size_t len, uint16_t id)
{
	unsigned int pos = PCI_CFG_SPACE;
	unsigned int ttl = (PCI_CFG_EXP_SPACE - PCI_CFG_SPACE) / 8;
	uint32_t hdr;

	if (len < PCI_CFG_EXP_SPACE)
		return -ERANGE;
	for (;;) {
		hdr = check_rd32(cfg, pos);
		if (!hdr || hdr == 0xffffffff)
			return -ENOENT;
		if ((hdr & 0xffff) == id)
			return (int)pos;
		pos = (hdr >> 20) & ~3u;
		if (pos < PCI_CFG_SPACE)
			return -ENOENT;
		if (!ttl--)
			return -ELOOP;
	}
}

/* reads a device's config file; returns bytes read or -errno */
static int check_read_config(const char *dir, uint8_t *cfg, size_t len)
{
	char p[PATH_MAX + 16];
	size_t got = 0;
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s/config", dir);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (got < len) {
		n = pread(fd, cfg + got, len - got, (off_t)got);
		if (n < 0) {
			n = -errno;
			close(fd);
			return (int)n;
		}
		if (!n)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got < len)
		memset(cfg + got, 0, len - got);
	return (int)got;
}

static void check_flags(char *buf, size_t len, unsigned int flags)
{
	static const struct { unsigned int bit; const char *name; } names[] = {
		{ PCI_ACS_SV, "SV" }, { PCI_ACS_RR, "RR" }, { PCI_ACS_CR, "CR" }, { PCI_ACS_UF, "UF" },
	};
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(flags & names[i].bit))
			continue;
		used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? " " : "",
					 names[i].name);
		if (used >= len)
			break;
	}
}

static void check_cat(char *desc, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void check_cat(char *desc, size_t len, const char *fmt, ...)
{
	size_t used;
	va_list ap;

	if (!desc || !len)
		return;
	used = strnlen(desc, len);
	if (used + 2 >= len)
		return;
	if (used) {
		strcpy(desc + used, "; ");
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(desc + used, len - used, fmt, ap);
	va_end(ap);
}

/* ACS state of one port at sysfs directory dir (named bdf) */
static enum vfio_acs_state check_port_acs(const char *dir, const char *bdf, char *desc,
					  size_t desclen)
{
	uint8_t cfg[PCI_CFG_EXP_SPACE];
	unsigned int type, acs_cap, acs_ctrl, need;
	char have[32], miss[32];
	int len, exp, acs;

	len = check_read_config(dir, cfg, sizeof(cfg));
	if (len < 0) {
		check_cat(desc, desclen, "%s: config space unreadable (%s)", bdf, strerror(-len));
		return VFIO_ACS_UNKNOWN;
	}
	if (len < PCI_CFG_SPACE) {
		check_cat(desc, desclen, "%s: only %d bytes of config space readable (run as root)",
			  bdf, len);
		return VFIO_ACS_UNKNOWN;
	}
	exp = vfio_check__find_cap(cfg, sizeof(cfg), PCI_CAP_ID_EXP);
	if (exp == -ELOOP) {
		check_cat(desc, desclen, "%s: capability list loops", bdf);
		return VFIO_ACS_UNKNOWN;
	}
	if (exp < 0) {
		check_cat(desc, desclen, "%s: conventional PCI bridge, no ACS", bdf);
		return VFIO_ACS_MISSING;
	}
	type = (check_rd16(cfg, (size_t)exp + 2) >> 4) & 0xf;
	if (type != PCI_EXP_TYPE_ROOT_PORT && type != PCI_EXP_TYPE_DOWNSTREAM)
		return VFIO_ACS_OK; /* upstream ports and the like do not route peer traffic */
	if (len < PCI_CFG_EXP_SPACE) {
		check_cat(desc, desclen, "%s: extended config space not readable", bdf);
		return VFIO_ACS_UNKNOWN;
	}
	acs = vfio_check__find_ext_cap(cfg, sizeof(cfg), PCI_EXT_CAP_ID_ACS);
	if (acs == -ELOOP) {
		check_cat(desc, desclen, "%s: extended capability list loops", bdf);
		return VFIO_ACS_UNKNOWN;
	}
	if (acs < 0) {
		check_cat(desc, desclen, "%s: %s without ACS capability", bdf,
			  type == PCI_EXP_TYPE_ROOT_PORT ? "root port" : "downstream port");
		return VFIO_ACS_MISSING;
	}
	acs_cap = check_rd16(cfg, (size_t)acs + 4);
	acs_ctrl = check_rd16(cfg, (size_t)acs + 6);
	/* as the kernel does: what the port does not implement is not required */
	need = ACS_REQUIRED & acs_cap;
	check_flags(have, sizeof(have), acs_ctrl & need);
	if ((acs_ctrl & need) != need) {
		check_flags(miss, sizeof(miss), need & ~acs_ctrl);
		check_cat(desc, desclen, "%s: ACS %s disabled", bdf, miss);
		return VFIO_ACS_MISSING;
	}
	check_cat(desc, desclen, "%s: ACS %s", bdf, have[0] ? have : "(nothing to enable)");
	return VFIO_ACS_OK;
}

enum vfio_acs_state vfio_check__acs_path(const char *sysfs_root, const char *bdf, char *desc,
					 size_t desclen)
{
	enum vfio_acs_state st = VFIO_ACS_OK, s;
	char link[PATH_MAX], real[PATH_MAX], bridge[PCISYS_BDF_LEN];
	char *slash;

	if (desc && desclen)
		desc[0] = '\0';
	if (pcisys__path(link, sizeof(link), sysfs_root, "bus/pci/devices/%s", bdf) ||
	    !realpath(link, real)) {
		check_cat(desc, desclen, "%s: not found", bdf);
		return VFIO_ACS_UNKNOWN;
	}
	/* parents in the device tree that are PCI functions are the bridges above */
	while ((slash = strrchr(real, '/')) && slash != real) {
		*slash = '\0';
		slash = strrchr(real, '/');
		if (!slash || pcisys__parse_bdf(slash + 1, bridge) || strcmp(bridge, slash + 1))
			break;
		s = check_port_acs(real, bridge, desc, desclen);
		if (s == VFIO_ACS_MISSING || (s == VFIO_ACS_UNKNOWN && st == VFIO_ACS_OK))
			st = s;
	}
	if (desc && desclen && !desc[0])
		check_cat(desc, desclen, "no bridge above %s (it sits on a root bus)", bdf);
	return st;
}

int vfio_check__group(const char *sysfs_root, const char *bdf)
{
	char p[PATH_MAX], name[32], *end;
	struct stat st;
	long n;
	int ret;

	if (pcisys__path(p, sizeof(p), sysfs_root, "bus/pci/devices/%s", bdf))
		return -ENAMETOOLONG;
	if (stat(p, &st))
		return -ENODEV;
	if (pcisys__path(p, sizeof(p), sysfs_root, "bus/pci/devices/%s/iommu_group", bdf))
		return -ENAMETOOLONG;
	ret = pcisys__link_base(p, name, sizeof(name));
	if (ret)
		return ret == -ENOENT ? -ENXIO : ret;
	n = strtol(name, &end, 10);
	if (*end || end == name || n < 0 || n > INT_MAX)
		return -EINVAL;
	return (int)n;
}

static bool check_driver_allowed(const char *drv)
{
	return !drv[0] || !strcmp(drv, "vfio-pci") || !strcmp(drv, "pci-stub") ||
	       !strcmp(drv, "pcieport");
}

static int check_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool check_is_vf(const char *sysfs_root, const char *bdf)
{
	char p[512];

	return !pcisys__path(p, sizeof(p), sysfs_root, "bus/pci/devices/%s/physfn", bdf) &&
	       access(p, F_OK) == 0;
}

int vfio_check__group_viable(const char *sysfs_root, const char *bdf, char *msg, size_t msglen)
{
	char p[PATH_MAX], drv[PCISYS_NAME_LEN], acs[512];
	char *names[256];
	unsigned int n = 0, bad = 0;
	struct dirent *de;
	int group, ret = 0;
	DIR *d;

	group = vfio_check__group(sysfs_root, bdf);
	if (group < 0)
		return group;
	if (pcisys__path(p, sizeof(p), sysfs_root, "kernel/iommu_groups/%d/devices", group))
		return -ENAMETOOLONG;
	d = opendir(p);
	if (!d)
		return -errno;
	while ((de = readdir(d)) && n < sizeof(names) / sizeof(names[0])) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, bdf))
			continue;
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			ret = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	if (ret)
		goto out;
	qsort(names, n, sizeof(names[0]), check_name_cmp);
	for (unsigned int i = 0; i < n; i++) {
		if (pcisys__path(p, sizeof(p), sysfs_root, "kernel/iommu_groups/%d/devices/%s/driver",
				group, names[i]) ||
		    pcisys__link_base(p, drv, sizeof(drv)))
			drv[0] = '\0';
		if (!check_driver_allowed(drv))
			bad++;
	}
	if (!bad)
		goto out;
	ret = -EBUSY;
	pcisys__msg_add(msg, msglen, "IOMMU group %d of %s is not viable: every device in it "
		       "must be bound to vfio-pci or to no driver; the other devices are:",
		       group, bdf);
	for (unsigned int i = 0; i < n; i++) {
		enum vfio_acs_state st;

		if (pcisys__path(p, sizeof(p), sysfs_root, "kernel/iommu_groups/%d/devices/%s/driver",
				group, names[i]) ||
		    pcisys__link_base(p, drv, sizeof(drv)))
			drv[0] = '\0';
		/*
		 * "DDDD:BB:DD.F": another function of the same multifunction device
		 * (not a VF, whose isolation is the PF's business) is grouped with us
		 * for lack of ACS between the functions, not on the path above
		 */
		if (strlen(names[i]) == 12 && strlen(bdf) == 12 && !strncmp(names[i], bdf, 10) &&
		    !check_is_vf(sysfs_root, names[i])) {
			pcisys__msg_add(msg, msglen,
				       "  %s: %s%s%s, another function of the same multifunction "
				       "device (no ACS isolates its functions)", names[i],
				       drv[0] ? "driver " : "no driver", drv,
				       check_driver_allowed(drv) ? " (fine)" : " (blocks assignment)");
			continue;
		}
		st = vfio_check__acs_path(sysfs_root, names[i], acs, sizeof(acs));
		pcisys__msg_add(msg, msglen, "  %s: %s%s%s, %s (%s)", names[i],
			       drv[0] ? "driver " : "no driver", drv,
			       check_driver_allowed(drv) ? " (fine)" : " (blocks assignment)",
			       st == VFIO_ACS_MISSING ? "ACS missing on its path" :
			       st == VFIO_ACS_OK ? "ACS on its path" : "ACS unknown",
			       acs);
	}
	pcisys__msg_add(msg, msglen, "  fix: unbind the blocking devices (`minivmm sriov bind BDF` "
		       "for each, or `echo BDF > /sys/bus/pci/devices/BDF/driver/unbind`), or "
		       "move the card behind a port with ACS so that it gets its own group");
out:
	for (unsigned int i = 0; i < n; i++)
		free(names[i]);
	return ret;
}

static int check_read_hex(const char *path, uint64_t *v)
{
	char buf[64], *end;
	int ret;

	ret = pcisys__read_file(path, buf, sizeof(buf));
	if (ret)
		return ret;
	errno = 0;
	*v = strtoull(buf, &end, 16);
	/* amd-iommu/features is "efr" or "efr:efr2" */
	if (errno || end == buf || (*end && *end != ':'))
		return -EINVAL;
	return 0;
}

static int check_unit_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

int vfio_check__iommu(const char *sysfs_root, struct vfio_check_iommu *info)
{
	char p[PATH_MAX], names[256][64];
	struct dirent *de;
	unsigned int n = 0;
	DIR *d;

	memset(info, 0, sizeof(*info));
	if (pcisys__path(p, sizeof(p), sysfs_root, "class/iommu"))
		return -ENAMETOOLONG;
	d = opendir(p);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)) && n < 256) {
		if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(names[0]))
			continue;
		strcpy(names[n++], de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), check_unit_cmp);
	for (unsigned int i = 0; i < n; i++) {
		uint64_t cap, ecap, efr;
		size_t used = strlen(info->names);

		info->units++;
		if (used + strlen(names[i]) + 2 < sizeof(info->names))
			snprintf(info->names + used, sizeof(info->names) - used, "%s%s",
				 used ? " " : "", names[i]);
		if (!pcisys__path(p, sizeof(p), sysfs_root, "class/iommu/%s/intel-iommu/ecap",
				 names[i]) && !check_read_hex(p, &ecap)) {
			info->intel++;
			if (ecap & INTEL_ECAP_IR)
				info->ir++;
			if (!pcisys__path(p, sizeof(p), sysfs_root, "class/iommu/%s/intel-iommu/cap",
					 names[i]) && !check_read_hex(p, &cap) && (cap & INTEL_CAP_PI))
				info->pi++;
		} else if (!pcisys__path(p, sizeof(p), sysfs_root,
					"class/iommu/%s/amd-iommu/features", names[i]) &&
			   !check_read_hex(p, &efr)) {
			info->amd++;
			info->ir++;
			if ((efr & AMD_EFR_GASUP) && (efr & AMD_EFR_GAM_VAPIC))
				info->pi++;
		}
	}
	return 0;
}

int vfio_check__unsafe_interrupts_param(const char *sysfs_root)
{
	char p[PATH_MAX], v[16];
	int ret;

	if (pcisys__path(p, sizeof(p), sysfs_root,
			"module/vfio_iommu_type1/parameters/allow_unsafe_interrupts"))
		return -ENAMETOOLONG;
	ret = pcisys__read_file(p, v, sizeof(v));
	if (ret)
		return ret;
	return v[0] == 'Y' || v[0] == 'y' || v[0] == '1';
}

static bool check_cap_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data))
		return false;
	return data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective & CAP_TO_MASK(CAP_IPC_LOCK);
}

int vfio_check__memlock(uint64_t pin_bytes, char *msg, size_t msglen)
{
	unsigned long long need_mib, have_mib;
	struct rlimit rl;

	if (check_cap_ipc_lock())
		return 0;
	if (getrlimit(RLIMIT_MEMLOCK, &rl))
		return -errno;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= pin_bytes)
		return 0;
	need_mib = (pin_bytes + (1ULL << 20) - 1) >> 20;
	have_mib = (unsigned long long)rl.rlim_cur >> 20;
	pcisys__msg_add(msg, msglen, "needs %llu MiB locked to pin guest RAM for DMA, limit is "
		       "%llu MiB (%llu KiB): run `ulimit -l %llu` (KiB; raise the hard limit "
		       "in /etc/security/limits.conf if needed) or run as root with CAP_IPC_LOCK",
		       need_mib, have_mib, (unsigned long long)rl.rlim_cur >> 10, need_mib << 10);
	return -ENOMEM;
}

static void check_first(int *first, int err)
{
	if (!*first)
		*first = err;
}

int vfio_check__device(const char *sysfs_root, const char *bdf_in, uint64_t pin_bytes,
		       bool allow_unsafe_interrupts, char *msg, size_t msglen)
{
	char bdf[PCISYS_BDF_LEN], drv[PCISYS_NAME_LEN], p[PATH_MAX];
	struct vfio_check_iommu io;
	struct stat st;
	int ret, group, first = 0;

	if (msg && msglen)
		msg[0] = '\0';
	if (pcisys__parse_bdf(bdf_in, bdf)) {
		pcisys__msg_add(msg, msglen, "'%s' is not a PCI address (expected 0000:03:10.1)",
			       bdf_in ? bdf_in : "(null)");
		return -EINVAL;
	}
	ret = pcisys__pci_driver(sysfs_root, bdf, drv, sizeof(drv));
	if (ret == -ENODEV) {
		pcisys__msg_add(msg, msglen, "no PCI device %s; is it a VF? create VFs with "
			       "`minivmm sriov PF --num-vfs N`", bdf);
		return -ENODEV;
	}
	if (ret) {
		pcisys__msg_add(msg, msglen, "cannot read the driver of %s: %s", bdf,
			       strerror(-ret));
		return ret;
	}
	if (strcmp(drv, "vfio-pci")) {
		check_first(&first, -EBUSY);
		pcisys__msg_add(msg, msglen, "%s is %s%s, not to vfio-pci: run `minivmm sriov bind "
			       "%s`, or by hand:", bdf, drv[0] ? "bound to " : "not bound to any driver",
			       drv, bdf);
		if (pcisys__path(p, sizeof(p), sysfs_root, "bus/pci/drivers/vfio-pci") ||
		    stat(p, &st))
			pcisys__msg_add(msg, msglen, "  modprobe vfio-pci");
		pcisys__msg_add(msg, msglen, "  echo vfio-pci > /sys/bus/pci/devices/%s/driver_override",
			       bdf);
		if (drv[0])
			pcisys__msg_add(msg, msglen,
				       "  echo %s > /sys/bus/pci/devices/%s/driver/unbind", bdf, bdf);
		pcisys__msg_add(msg, msglen, "  echo %s > /sys/bus/pci/drivers_probe", bdf);
	}
	ret = vfio_check__iommu(sysfs_root, &io);
	if (ret)
		memset(&io, 0, sizeof(io));
	group = vfio_check__group(sysfs_root, bdf);
	if (group == -ENXIO) {
		check_first(&first, -ENXIO);
		pcisys__msg_add(msg, msglen, "%s has no IOMMU group: the IOMMU is off%s. Boot the host "
			       "with `intel_iommu=on iommu=pt` (Intel) or `amd_iommu=on iommu=pt` "
			       "(AMD) on the kernel command line and enable VT-d/AMD-Vi in the "
			       "firmware", bdf, io.units ? "" : " (/sys/class/iommu is empty)");
	} else if (group < 0) {
		check_first(&first, group);
		pcisys__msg_add(msg, msglen, "cannot read the IOMMU group of %s: %s", bdf,
			       strerror(-group));
	} else {
		ret = vfio_check__group_viable(sysfs_root, bdf, msg, msglen);
		if (ret)
			check_first(&first, ret);
	}
	if (io.units && io.ir < io.units) {
		int param = vfio_check__unsafe_interrupts_param(sysfs_root);

		if (!allow_unsafe_interrupts) {
			check_first(&first, -EPERM);
			pcisys__msg_add(msg, msglen, "no interrupt remapping (%u of %u IOMMU units "
				       "support it): the device could send any interrupt to the "
				       "host, so it is refused. Fix: enable interrupt remapping "
				       "(VT-d/AMD-Vi IR in the firmware, no `intremap=off` on the "
				       "kernel command line); or, for a trusted guest only, allow "
				       "unsafe interrupts in minivmm and in the kernel: echo 1 > "
				       "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts",
				       io.ir, io.units);
		} else if (param != 1) {
			check_first(&first, -EPERM);
			pcisys__msg_add(msg, msglen, "no interrupt remapping and unsafe interrupts "
				       "are allowed here but not by the kernel, which will refuse "
				       "the group: echo 1 > /sys/module/vfio_iommu_type1/parameters/"
				       "allow_unsafe_interrupts");
		} else {
			pcisys__msg_add(msg, msglen, "warning: no interrupt remapping; unsafe "
				       "interrupts allowed as asked: %s can send any interrupt "
				       "to the host", bdf);
		}
	}
	ret = vfio_check__memlock(pin_bytes, msg, msglen);
	if (ret)
		check_first(&first, ret);
	return first;
}
