/* SPDX-License-Identifier: MIT */
/*
 * The reset ladder for an assigned device, run on assign and on release:
 *
 *   1. function reset: VFIO_DEVICE_RESET when the device offers it (FLR, PM
 *      or bus reset chosen by the kernel); otherwise, or when it left the
 *      device dead, a secondary bus reset through VFIO_DEVICE_PCI_HOT_RESET,
 *      but only when every device the bus reset would hit is in our own group;
 *   2. a PM cycle through the power management capability: D3hot, 10 ms,
 *      D0, 10 ms (PCI PM 1.2 recovery times);
 *   3. caging: clear Bus Master Enable and revoke every DMA mapping of the
 *      IOMMU address space for good, so the device can never DMA again.
 *
 * After each step the device must answer config reads with its vendor ID and
 * a class code that is not all-ones, else the next step runs. A device with
 * no reset method at all that still answers is used as is (step NONE, with a
 * warning): only a device seen dead is caged.
 */
#ifndef MINIVMM_DEVICES_VFIO_RESET_H
#define MINIVMM_DEVICES_VFIO_RESET_H

#include <stdbool.h>
#include <stdint.h>

struct vfio_backend;
struct vfio_iommu;

enum vfio_reset_step {
	VFIO_RESET_NONE = 0, /* nothing ran */
	VFIO_RESET_FUNCTION, /* VFIO_DEVICE_RESET */
	VFIO_RESET_HOT,      /* VFIO_DEVICE_PCI_HOT_RESET */
	VFIO_RESET_PM,       /* D3hot -> D0 */
	VFIO_RESET_CAGED,    /* nothing brought it back: bus master off, DMA revoked */
	VFIO_RESET_NR_STEPS,
};

struct vfio_reset_dev {
	const char *name;         /* log prefix */
	struct vfio_backend *be;
	int dev;                  /* device handle */
	uint64_t cfg_off;         /* offset of the config region in the device file */
	uint32_t dev_flags;       /* vfio_device_info.flags (VFIO_DEVICE_FLAGS_RESET) */
	uint8_t pm_cap;           /* PM capability offset, 0 if none */
	uint16_t vendor;          /* the vendor ID the device must read back */
	unsigned int group_id;
	int group_fd;
	struct vfio_iommu *iommu; /* revoked when caging; may be NULL */
};

struct vfio_reset_report {
	enum vfio_reset_step step;          /* the step that worked, or CAGED */
	/* per step: 0 worked, -ENOTSUP not available, -EBUSY not allowed, -EIO still dead, ... */
	int result[VFIO_RESET_NR_STEPS];
	bool tried[VFIO_RESET_NR_STEPS];
};

const char *vfio_reset__step_name(enum vfio_reset_step s);
/* true when the device reads back its vendor ID and a sane class code */
bool vfio_reset__alive(const struct vfio_reset_dev *d);
/*
 * Runs the ladder. 0 when a reset step brought the device back (rep->step says
 * which; NONE when no method was available and the device answers), -EIO
 * when it had to be caged.
 */
int vfio_reset__ladder(const struct vfio_reset_dev *d, struct vfio_reset_report *rep);
/* the cage alone (also used by release when the device must not be trusted) */
int vfio_reset__cage(const struct vfio_reset_dev *d);
/*
 * One step of the ladder on its own (FUNCTION, HOT, PM or CAGED): 0 when it
 * ran and the device answers afterwards, -ENOTSUP when the device or the
 * kernel does not offer it, -EBUSY when not allowed, -EIO when the device
 * still does not answer.
 */
int vfio_reset__step(const struct vfio_reset_dev *d, enum vfio_reset_step s);

#endif
