/* SPDX-License-Identifier: MIT */
/*
 * The reset ladder (devices/vfio/reset.h) on a device that no VM holds: a VF
 * left stuck by a crashed guest, reset from the host with
 * `minivmm sriov reset VF`. The device must be bound to vfio-pci and its
 * group viable; it is opened through its own container with no DMA mappings,
 * reset, checked and closed again.
 */
#ifndef MINIVMM_DEVICES_VFIO_STANDALONE_H
#define MINIVMM_DEVICES_VFIO_STANDALONE_H

#include <stddef.h>

#include "devices/vfio/reset.h"

struct vfio_backend;

/*
 * only == VFIO_RESET_NONE runs the whole ladder; FUNCTION, HOT or PM runs that
 * step alone (CAGED is refused: a cage only holds while a VM keeps the device
 * open). 0 when the device answers afterwards; -errno otherwise, with a
 * sentence in msg. rep tells which steps ran and how they ended.
 */
int vfio_standalone__reset(struct vfio_backend *be, const char *bdf, enum vfio_reset_step only,
			   struct vfio_reset_report *rep, char *msg, size_t msglen);

#endif
