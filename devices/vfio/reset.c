// SPDX-License-Identifier: MIT
#include "devices/vfio/reset.h"
#include "devices/vfio/backend.h"
#include "devices/vfio/iommu.h"
#include "vmm/log.h"

#include <errno.h>
#include <linux/pci_regs.h>
#include <stdlib.h>
#include <string.h>

#define VFIO_PM_DELAY_MS 10

const char *vfio_reset__step_name(enum vfio_reset_step s)
{
	switch (s) {
	case VFIO_RESET_NONE: return "none";
	case VFIO_RESET_FUNCTION: return "function reset (VFIO_DEVICE_RESET)";
	case VFIO_RESET_HOT: return "bus reset (VFIO_DEVICE_PCI_HOT_RESET)";
	case VFIO_RESET_PM: return "PM D3hot->D0 cycle";
	case VFIO_RESET_CAGED: return "caged (bus master off, DMA revoked)";
	case VFIO_RESET_NR_STEPS: break;
	}
	return "?";
}

static int vfio_reset_cfg_read(const struct vfio_reset_dev *d, uint32_t off, void *buf,
			       size_t len)
{
	ssize_t n = d->be->ops->pread(d->be, d->dev, buf, len, d->cfg_off + off);

	return n < 0 ? (int)n : (size_t)n == len ? 0 : -EIO;
}

static int vfio_reset_cfg_write16(const struct vfio_reset_dev *d, uint32_t off, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	ssize_t n = d->be->ops->pwrite(d->be, d->dev, b, 2, d->cfg_off + off);

	return n < 0 ? (int)n : n == 2 ? 0 : -EIO;
}

static int vfio_reset_cfg_read16(const struct vfio_reset_dev *d, uint32_t off, uint16_t *v)
{
	uint8_t b[2];
	int ret = vfio_reset_cfg_read(d, off, b, 2);

	if (!ret)
		*v = (uint16_t)(b[0] | b[1] << 8);
	return ret;
}

bool vfio_reset__alive(const struct vfio_reset_dev *d)
{
	uint8_t id[4], cls[4];

	if (vfio_reset_cfg_read(d, PCI_VENDOR_ID, id, 4) ||
	    vfio_reset_cfg_read(d, PCI_CLASS_REVISION, cls, 4))
		return false;
	if ((id[0] | id[1] << 8) == 0xffff || (d->vendor && (id[0] | id[1] << 8) != d->vendor))
		return false;
	return !(cls[0] == 0xff && cls[1] == 0xff && cls[2] == 0xff && cls[3] == 0xff);
}

static int vfio_reset_function(const struct vfio_reset_dev *d)
{
	int ret;

	if (!(d->dev_flags & VFIO_DEVICE_FLAGS_RESET))
		return -ENOTSUP;
	ret = d->be->ops->reset(d->be, d->dev);
	if (ret)
		return ret;
	return vfio_reset__alive(d) ? 0 : -EIO;
}

static int vfio_reset_hot(const struct vfio_reset_dev *d)
{
	struct vfio_pci_hot_reset_info *info = NULL;
	uint32_t i;
	int ret;

	if (!d->be->ops->hot_reset_info || !d->be->ops->hot_reset)
		return -ENOTSUP;
	ret = d->be->ops->hot_reset_info(d->be, d->dev, &info);
	if (ret)
		/* -ENODEV: neither the slot nor the bus can be reset (e.g. a VF on a root bus) */
		return ret == -ENOTTY || ret == -EINVAL || ret == -ENODEV ? -ENOTSUP : ret;
	for (i = 0; i < info->count; i++) {
		if (info->devices[i].group_id != d->group_id) {
			log_info(d->name, "no bus reset: it would also reset %04x:%02x:%02x.%x "
					  "(IOMMU group %u, not ours)",
				 info->devices[i].segment, info->devices[i].bus,
				 info->devices[i].devfn >> 3, info->devices[i].devfn & 7,
				 info->devices[i].group_id);
			ret = -EBUSY;
			break;
		}
	}
	free(info);
	if (ret)
		return ret;
	ret = d->be->ops->hot_reset(d->be, d->dev, &d->group_fd, 1);
	if (ret)
		return ret;
	return vfio_reset__alive(d) ? 0 : -EIO;
}

static int vfio_reset_pm(const struct vfio_reset_dev *d)
{
	uint32_t pmcsr = (uint32_t)d->pm_cap + PCI_PM_CTRL;
	uint16_t v;
	int ret;

	if (!d->pm_cap)
		return -ENOTSUP;
	ret = vfio_reset_cfg_read16(d, pmcsr, &v);
	if (ret)
		return ret;
	if (v == 0xffff)
		v = 0; /* not answering: write a clean PMCSR anyway */
	if (v & PCI_PM_CTRL_NO_SOFT_RESET)
		log_info(d->name, "PM cycle: the device says No_Soft_Reset, D3hot may keep its state");
	v = (uint16_t)(v & ~(PCI_PM_CTRL_STATE_MASK | PCI_PM_CTRL_PME_STATUS));
	ret = vfio_reset_cfg_write16(d, pmcsr, v | 3 /* D3hot */);
	if (ret)
		return ret;
	d->be->ops->msleep(d->be, VFIO_PM_DELAY_MS);
	ret = vfio_reset_cfg_write16(d, pmcsr, v /* D0 */);
	if (ret)
		return ret;
	d->be->ops->msleep(d->be, VFIO_PM_DELAY_MS);
	if (vfio_reset_cfg_read16(d, pmcsr, &v) || (v & PCI_PM_CTRL_STATE_MASK))
		return -EIO;
	return vfio_reset__alive(d) ? 0 : -EIO;
}

int vfio_reset__cage(const struct vfio_reset_dev *d)
{
	uint16_t cmd = 0;
	int ret, ret2 = 0;

	ret = vfio_reset_cfg_read16(d, PCI_COMMAND, &cmd);
	/* a dead device reads all-ones: write a clean "everything off" then */
	if (ret || cmd == 0xffff)
		cmd = 0;
	ret = vfio_reset_cfg_write16(d, PCI_COMMAND,
				     (uint16_t)(cmd & ~(PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY |
							PCI_COMMAND_IO)) | PCI_COMMAND_INTX_DISABLE);
	if (d->iommu)
		ret2 = vfio_iommu__unmap_all(d->iommu, true);
	log_err(d->name, "caged: bus mastering %s, DMA mappings %s", ret ? "could not be cleared" : "off",
		d->iommu ? (ret2 ? "revoked (with errors)" : "revoked") : "(none)");
	return ret ? ret : ret2;
}

static int (*const vfio_reset_steps[])(const struct vfio_reset_dev *) = {
	[VFIO_RESET_FUNCTION] = vfio_reset_function,
	[VFIO_RESET_HOT] = vfio_reset_hot,
	[VFIO_RESET_PM] = vfio_reset_pm,
};

int vfio_reset__step(const struct vfio_reset_dev *d, enum vfio_reset_step s)
{
	if (s == VFIO_RESET_CAGED)
		return vfio_reset__cage(d);
	if (s < VFIO_RESET_FUNCTION || s > VFIO_RESET_PM)
		return -EINVAL;
	return vfio_reset_steps[s](d);
}

int vfio_reset__ladder(const struct vfio_reset_dev *d, struct vfio_reset_report *rep)
{
	enum vfio_reset_step s;

	memset(rep, 0, sizeof(*rep));
	for (s = VFIO_RESET_FUNCTION; s <= VFIO_RESET_PM; s++) {
		/* each later step only runs when the one before was unavailable or failed */
		rep->tried[s] = true;
		rep->result[s] = vfio_reset_steps[s](d);
		if (!rep->result[s]) {
			rep->step = s;
			log_debug(d->name, "reset: %s", vfio_reset__step_name(s));
			return 0;
		}
		if (rep->result[s] != -ENOTSUP)
			log_warn(d->name, "reset step '%s' failed: %s", vfio_reset__step_name(s),
				 rep->result[s] == -EIO ? "device still not responding" :
							  strerror(-rep->result[s]));
	}
	if (vfio_reset__alive(d)) {
		/* no method was available (nothing ran), and the device answers */
		log_warn(d->name, "not reset: no reset method available; the device responds, "
				  "so it is used as is");
		rep->step = VFIO_RESET_NONE;
		return 0;
	}
	rep->tried[VFIO_RESET_CAGED] = true;
	rep->result[VFIO_RESET_CAGED] = vfio_reset__cage(d);
	rep->step = VFIO_RESET_CAGED;
	return -EIO;
}
