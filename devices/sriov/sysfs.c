// SPDX-License-Identifier: MIT
/*
 * SR-IOV and driver binding through sysfs. Layout relied upon (Linux 6.x):
 *   bus/pci/devices/BDF -> ../../../devices/pci0000:00/.../BDF
 *   BDF/sriov_totalvfs, BDF/sriov_numvfs, BDF/virtfnN -> ../VF   (PF)
 *   BDF/physfn -> ../PF                                           (VF)
 *   BDF/driver -> ../../../bus/pci/drivers/NAME, BDF/driver_override
 *   BDF/net/IFNAME, class/net/IFNAME/device -> ../../../BDF
 *   bus/pci/drivers_probe, bus/pci/drivers/NAME/unbind
 */
#include "devices/sriov/sysfs.h"
#include "devices/pcisys.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int sriov__resolve_pf(const char *root, const char *pf, char bdf[PCISYS_BDF_LEN],
		      char *msg, size_t msglen)
{
	char p[4096], base[256];
	int ret;

	if (!pcisys__parse_bdf(pf, bdf)) {
		if (pcisys__dev_exists(root, bdf))
			return 0;
		pcisys__msg_set(msg, msglen, "no PCI device %s (see `lspci -D`)", bdf);
		return -ENODEV;
	}
	if (!*pf || strchr(pf, '/') || strlen(pf) >= 16) {
		pcisys__msg_set(msg, msglen, "'%s' is neither a PCI address (0000:03:00.0) "
			      "nor a network interface name", pf);
		return -EINVAL;
	}
	ret = pcisys__path(p, sizeof(p), root, "class/net/%s/device", pf);
	if (ret)
		return ret;
	ret = pcisys__link_base(p, base, sizeof(base));
	if (ret == -ENOENT) {
		char q[4096];
		struct stat st;

		if (!pcisys__path(q, sizeof(q), root, "class/net/%s", pf) && !lstat(q, &st))
			pcisys__msg_set(msg, msglen, "network interface %s is not a PCI device", pf);
		else
			pcisys__msg_set(msg, msglen, "no network interface or PCI device '%s' "
				      "(see `ip link` or `lspci -D`)", pf);
		return -ENODEV;
	}
	if (ret) {
		pcisys__msg_set(msg, msglen, "cannot read %s: %s", p, strerror(-ret));
		return ret;
	}
	if (pcisys__parse_bdf(base, bdf)) {
		pcisys__msg_set(msg, msglen, "network interface %s is not a PCI device (%s)", pf, base);
		return -ENODEV;
	}
	return 0;
}

int sriov__netdev(const char *root, const char *bdf, char *name, size_t len)
{
	struct dirent *de;
	char p[4096];
	int ret = -ENOENT;
	DIR *d;

	if (pcisys__path(p, sizeof(p), root, "bus/pci/devices/%s/net", bdf))
		return -ENAMETOOLONG;
	d = opendir(p);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (strlen(de->d_name) >= len) {
			ret = -ENAMETOOLONG;
			break;
		}
		/* several ports: the smallest name, so the answer is stable */
		if (ret == -ENOENT || strcmp(de->d_name, name) < 0)
			strcpy(name, de->d_name);
		ret = 0;
	}
	closedir(d);
	return ret;
}

static int sriov_read_uint(const char *path, unsigned int *out)
{
	char buf[32], *end;
	unsigned long v;
	int ret;

	ret = pcisys__read_file(path, buf, sizeof(buf));
	if (ret)
		return ret;
	errno = 0;
	v = strtoul(buf, &end, 10);
	if (errno || end == buf || *end || v > 0xffffffffUL)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

int sriov__num_vfs(const char *root, const char *pf_bdf, unsigned int *num, unsigned int *total)
{
	char p[4096];
	int ret;

	if (!pcisys__dev_exists(root, pf_bdf))
		return -ENODEV;
	if (pcisys__path(p, sizeof(p), root, "bus/pci/devices/%s/sriov_totalvfs", pf_bdf))
		return -ENAMETOOLONG;
	ret = sriov_read_uint(p, total);
	if (ret == -ENOENT)
		return -ENOTSUP;
	if (ret)
		return ret;
	if (pcisys__path(p, sizeof(p), root, "bus/pci/devices/%s/sriov_numvfs", pf_bdf))
		return -ENAMETOOLONG;
	ret = sriov_read_uint(p, num);
	return ret == -ENOENT ? -ENOTSUP : ret;
}

int sriov__set_num_vfs(const char *root, const char *pf_bdf, unsigned int n, char *msg,
		       size_t msglen)
{
	unsigned int num, total;
	char p[4096], val[16], drv[PCISYS_NAME_LEN] = "";
	int ret;

	ret = sriov__num_vfs(root, pf_bdf, &num, &total);
	if (ret == -ENODEV) {
		pcisys__msg_set(msg, msglen, "no PCI device %s (see `lspci -D`)", pf_bdf);
		return ret;
	}
	if (ret == -ENOTSUP) {
		pcisys__msg_set(msg, msglen, "%s is not an SR-IOV physical function "
			      "(no sriov_totalvfs): give the PF, not a VF or a plain device",
			      pf_bdf);
		return ret;
	}
	if (ret) {
		pcisys__msg_set(msg, msglen, "cannot read the VF count of %s: %s", pf_bdf,
			      strerror(-ret));
		return ret;
	}
	if (n > total) {
		pcisys__msg_set(msg, msglen, "%s supports at most %u VFs, %u asked", pf_bdf,
			      total, n);
		return -ERANGE;
	}
	if (n == num)
		return 0;
	if (pcisys__path(p, sizeof(p), root, "bus/pci/devices/%s/sriov_numvfs", pf_bdf))
		return -ENAMETOOLONG;
	/* the kernel refuses to change a non-zero count directly */
	if (num && n) {
		ret = pcisys__write_file(p, "0");
		if (ret) {
			pcisys__msg_set(msg, msglen, "removing the %u VFs of %s failed: %s "
				      "(is a VF still in use by a VM?)", num, pf_bdf,
				      strerror(-ret));
			return ret;
		}
	}
	snprintf(val, sizeof(val), "%u", n);
	ret = pcisys__write_file(p, val);
	if (ret) {
		pcisys__pci_driver(root, pf_bdf, drv, sizeof(drv));
		if (!drv[0])
			pcisys__msg_set(msg, msglen, "writing %u to %s failed: %s; the PF has no "
				      "driver: load it (e.g. `modprobe igb`)", n, p,
				      strerror(-ret));
		else
			pcisys__msg_set(msg, msglen, "writing %u to %s failed: %s (PF driver %s; "
				      "see `dmesg`)", n, p, strerror(-ret), drv);
		return ret;
	}
	return 0;
}

static int sriov_vf_cmp(const void *a, const void *b)
{
	const struct sriov_vf *x = a, *y = b;

	return (x->index > y->index) - (x->index < y->index);
}

int sriov__list_vfs(const char *root, const char *pf_bdf, struct sriov_vf *vfs, unsigned int max)
{
	struct dirent *de;
	unsigned int count = 0;
	char p[4096], base[256];
	DIR *d;
	int ret = 0;

	if (!pcisys__dev_exists(root, pf_bdf))
		return -ENODEV;
	if (pcisys__path(p, sizeof(p), root, "bus/pci/devices/%s", pf_bdf))
		return -ENAMETOOLONG;
	d = opendir(p);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char lp[4096], *end;
		unsigned long idx;

		if (strncmp(de->d_name, "virtfn", 6) || !isdigit((unsigned char)de->d_name[6]))
			continue;
		idx = strtoul(de->d_name + 6, &end, 10);
		if (*end || idx >= 65536)
			continue;
		if (count == max) {
			ret = -ENOSPC;
			break;
		}
		if (pcisys__path(lp, sizeof(lp), root, "bus/pci/devices/%s/%s", pf_bdf,
				de->d_name) ||
		    pcisys__link_base(lp, base, sizeof(base)) ||
		    pcisys__parse_bdf(base, vfs[count].bdf))
			continue;
		vfs[count].index = (unsigned int)idx;
		if (pcisys__pci_driver(root, vfs[count].bdf, vfs[count].driver,
				      sizeof(vfs[count].driver)))
			vfs[count].driver[0] = '\0';
		count++;
	}
	closedir(d);
	if (ret)
		return ret;
	qsort(vfs, count, sizeof(*vfs), sriov_vf_cmp);
	return (int)count;
}

int sriov__physfn(const char *root, const char *vf_bdf, char pf[PCISYS_BDF_LEN], int *index)
{
	struct sriov_vf vfs[SRIOV_MAX_VFS];
	char p[4096], base[256];
	int n, ret;

	if (!pcisys__dev_exists(root, vf_bdf))
		return -ENODEV;
	if (pcisys__path(p, sizeof(p), root, "bus/pci/devices/%s/physfn", vf_bdf))
		return -ENAMETOOLONG;
	ret = pcisys__link_base(p, base, sizeof(base));
	if (ret)
		return ret;
	if (pcisys__parse_bdf(base, pf))
		return -EINVAL;
	if (index) {
		*index = -1;
		n = sriov__list_vfs(root, pf, vfs, SRIOV_MAX_VFS);
		for (int i = 0; i < n; i++)
			if (!strcmp(vfs[i].bdf, vf_bdf))
				*index = (int)vfs[i].index;
	}
	return 0;
}


int sriov__bind_vfio(const char *root, const char *bdf, char *msg, size_t msglen)
{
	char p[4096], drv[PCISYS_NAME_LEN];
	int ret;

	ret = pcisys__pci_driver(root, bdf, drv, sizeof(drv));
	if (ret == -ENODEV) {
		pcisys__msg_set(msg, msglen, "no PCI device %s; is it a VF? create VFs with "
			      "`minivmm sriov PF --num-vfs N`", bdf);
		return ret;
	}
	if (ret) {
		pcisys__msg_set(msg, msglen, "cannot read the driver of %s: %s", bdf, strerror(-ret));
		return ret;
	}
	if (!strcmp(drv, "vfio-pci"))
		return 0;
	if (!pcisys__driver_loaded(root, "vfio-pci")) {
		pcisys__msg_set(msg, msglen, "the vfio-pci driver is not loaded: run "
			      "`modprobe vfio-pci` first");
		return -ENOENT;
	}
	pcisys__path(p, sizeof(p), root, "bus/pci/devices/%s/driver_override", bdf);
	ret = pcisys__write_file(p, "vfio-pci");
	if (ret) {
		pcisys__msg_set(msg, msglen, "writing vfio-pci to %s failed: %s%s", p,
			      strerror(-ret), ret == -EACCES || ret == -EPERM ?
			      " (run as root)" : "");
		return ret;
	}
	if (drv[0]) {
		pcisys__path(p, sizeof(p), root, "bus/pci/devices/%s/driver/unbind", bdf);
		ret = pcisys__write_file(p, bdf);
		if (ret) {
			pcisys__msg_set(msg, msglen, "unbinding %s from %s failed: %s", bdf, drv,
				      strerror(-ret));
			return ret;
		}
	}
	pcisys__path(p, sizeof(p), root, "bus/pci/drivers_probe");
	ret = pcisys__write_file(p, bdf);
	if (ret) {
		pcisys__msg_set(msg, msglen, "probing %s failed: %s (see `dmesg`)", bdf,
			      strerror(-ret));
		return ret;
	}
	ret = pcisys__pci_driver(root, bdf, drv, sizeof(drv));
	if (ret || strcmp(drv, "vfio-pci")) {
		pcisys__msg_set(msg, msglen, "%s is bound to %s after probing, not vfio-pci "
			      "(driver_override is set; see `dmesg`)", bdf,
			      ret ? "an unknown driver" : drv[0] ? drv : "no driver");
		return -EIO;
	}
	return 0;
}

int sriov__unbind_vfio(const char *root, const char *bdf, char *msg, size_t msglen)
{
	char p[4096], drv[PCISYS_NAME_LEN];
	int ret;

	ret = pcisys__pci_driver(root, bdf, drv, sizeof(drv));
	if (ret == -ENODEV) {
		pcisys__msg_set(msg, msglen, "no PCI device %s", bdf);
		return ret;
	}
	if (ret) {
		pcisys__msg_set(msg, msglen, "cannot read the driver of %s: %s", bdf, strerror(-ret));
		return ret;
	}
	if (drv[0] && strcmp(drv, "vfio-pci")) {
		pcisys__msg_set(msg, msglen, "%s is bound to %s, not vfio-pci: left alone", bdf, drv);
		return -EINVAL;
	}
	/* "\n" clears driver_override, so the host driver matches again */
	pcisys__path(p, sizeof(p), root, "bus/pci/devices/%s/driver_override", bdf);
	ret = pcisys__write_file(p, "\n");
	if (ret) {
		pcisys__msg_set(msg, msglen, "clearing %s failed: %s", p, strerror(-ret));
		return ret;
	}
	if (drv[0]) {
		pcisys__path(p, sizeof(p), root, "bus/pci/devices/%s/driver/unbind", bdf);
		ret = pcisys__write_file(p, bdf);
		if (ret) {
			pcisys__msg_set(msg, msglen, "unbinding %s from vfio-pci failed: %s (is it "
				      "still assigned to a VM?)", bdf, strerror(-ret));
			return ret;
		}
	}
	pcisys__path(p, sizeof(p), root, "bus/pci/drivers_probe");
	ret = pcisys__write_file(p, bdf);
	if (ret && ret != -ENODEV) {
		/* -ENODEV: no driver wants it, which is fine */
		pcisys__msg_set(msg, msglen, "probing %s failed: %s", bdf, strerror(-ret));
		return ret;
	}
	return 0;
}
