// SPDX-License-Identifier: MIT
#include "devices/vfio/standalone.h"
#include "devices/vfio/backend.h"
#include "devices/vfio/iommu.h"
#include "devices/vfio/pci.h"

#include <errno.h>
#include <linux/pci_regs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void vfio_standalone_cap(void *opaque, uint8_t id, uint8_t off)
{
	struct vfio_reset_dev *d = opaque;

	if (id == PCI_CAP_ID_PM && !d->pm_cap && off <= PCI_CFG_SPACE_SIZE - PCI_PM_SIZEOF)
		d->pm_cap = off;
}

/* fills d from the open device: config region, flags, vendor, PM capability */
static int vfio_standalone_describe(struct vfio_backend *be, int dev, struct vfio_reset_dev *d,
				    char *msg, size_t msglen)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_region_info *cfg_info = NULL;
	uint8_t cfg[PCI_CFG_SPACE_SIZE];
	ssize_t n;
	int ret;

	ret = be->ops->device_info(be, dev, &info);
	if (ret) {
		snprintf(msg, msglen, "VFIO_DEVICE_GET_INFO: %s", strerror(-ret));
		return ret;
	}
	if (!(info.flags & VFIO_DEVICE_FLAGS_PCI) ||
	    info.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX) {
		snprintf(msg, msglen, "not a VFIO PCI device");
		return -ENODEV;
	}
	ret = be->ops->region_info(be, dev, VFIO_PCI_CONFIG_REGION_INDEX, &cfg_info);
	if (ret) {
		snprintf(msg, msglen, "config region info: %s", strerror(-ret));
		return ret;
	}
	d->cfg_off = cfg_info->offset;
	free(cfg_info);
	d->dev_flags = info.flags;
	n = be->ops->pread(be, dev, cfg, sizeof(cfg), d->cfg_off);
	if (n != (ssize_t)sizeof(cfg)) {
		snprintf(msg, msglen, "reading config space: %s",
			 n < 0 ? strerror((int)-n) : "short read");
		return n < 0 ? (int)n : -EIO;
	}
	/* a device already dead reads all-ones: no vendor to compare then */
	d->vendor = (uint16_t)(cfg[0] | cfg[1] << 8);
	if (d->vendor == 0xffff)
		d->vendor = 0;
	else
		vfio_pci__walk_caps(cfg, vfio_standalone_cap, d);
	return 0;
}

/* why step s did not bring the device back (ret != 0), for the user */
static const char *vfio_standalone_why(enum vfio_reset_step s, int ret)
{
	if (ret == -ENOTSUP) {
		switch (s) {
		case VFIO_RESET_FUNCTION:
			return "not available (the device offers no function reset)";
		case VFIO_RESET_HOT:
			return "not available (neither its slot nor its bus can be reset)";
		case VFIO_RESET_PM:
			return "not available (no PM capability)";
		default:
			return "not available";
		}
	}
	if (ret == -EIO)
		return "the device still does not answer";
	if (ret == -EBUSY)
		return "not allowed: it would reset devices outside the device's IOMMU group";
	return strerror(-ret);
}

int vfio_standalone__reset(struct vfio_backend *be, const char *bdf, enum vfio_reset_step only,
			   struct vfio_reset_report *rep, char *msg, size_t msglen)
{
	struct vfio_reset_dev d = { .name = bdf, .be = be };
	struct vfio_iommu *io = NULL;
	struct vfio_group *g = NULL;
	int ret, id, dev;

	memset(rep, 0, sizeof(*rep));
	if (only == VFIO_RESET_CAGED || only >= VFIO_RESET_NR_STEPS) {
		snprintf(msg, msglen, "caging only holds while a VM keeps the device open; "
			 "an unassigned device stays disabled by vfio-pci anyway");
		return -EINVAL;
	}
	id = be->ops->group_id(be, bdf);
	if (id < 0) {
		snprintf(msg, msglen, "%s has no IOMMU group (is the IOMMU on? see `minivmm "
			 "doctor %s`)", bdf, bdf);
		return id;
	}
	ret = vfio_iommu__create_legacy(NULL, be, &io);
	if (ret) {
		snprintf(msg, msglen, "cannot open a VFIO container: %s (see `minivmm doctor`)",
			 strerror(-ret));
		return ret;
	}
	ret = vfio_iommu__get_group(io, (unsigned int)id, &g, msg, msglen);
	if (ret)
		goto err_iommu;
	dev = be->ops->group_device_fd(be, g->fd, bdf);
	if (dev < 0) {
		ret = dev;
		snprintf(msg, msglen, "cannot open %s through VFIO: %s%s", bdf, strerror(-ret),
			 ret == -EBUSY ? " (a VM holds it)" : "");
		goto err_group;
	}
	d.dev = dev;
	ret = vfio_standalone_describe(be, dev, &d, msg, msglen);
	if (ret)
		goto err_dev;
	d.group_id = (unsigned int)id;
	d.group_fd = g->fd;
	if (only == VFIO_RESET_NONE) {
		ret = vfio_reset__ladder(&d, rep);
		if (ret)
			snprintf(msg, msglen, "no reset step brought %s back; it stays bound to "
				 "vfio-pci, which keeps it disabled", bdf);
	} else {
		rep->tried[only] = true;
		rep->result[only] = vfio_reset__step(&d, only);
		ret = rep->result[only];
		if (!ret)
			rep->step = only;
		else
			snprintf(msg, msglen, "%s: %s: %s", bdf, vfio_reset__step_name(only),
				 vfio_standalone_why(only, ret));
	}
err_dev:
	be->ops->close(be, dev);
err_group:
	vfio_iommu__put_group(io, g);
err_iommu:
	vfio_iommu__destroy(io);
	return ret;
}
