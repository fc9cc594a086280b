/* SPDX-License-Identifier: MIT */
/*
 * Host isolation checks before a PCI function (usually an SR-IOV VF) is given
 * to a guest through VFIO, and the host facts `minivmm doctor` reports. All
 * read sysfs under sysfs_root ("/sys" in production, a fake tree in tests).
 */
#ifndef MINIVMM_DEVICES_VFIO_CHECK_H
#define MINIVMM_DEVICES_VFIO_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * 0 when bdf can be assigned with pin_bytes of guest RAM pinned; msg is then
 * empty, or holds warnings (unsafe interrupts allowed by the user). Otherwise
 * -errno of the first problem, and msg names every problem found, one per
 * line, each with its fix:
 *   -EINVAL  bdf is not a PCI address
 *   -ENODEV  no such PCI device (stops the checks)
 *   -EBUSY   not bound to vfio-pci, or the IOMMU group is not viable
 *   -ENXIO   no IOMMU group (IOMMU off)
 *   -EPERM   no interrupt remapping and no (working) override
 *   -ENOMEM  RLIMIT_MEMLOCK below pin_bytes without CAP_IPC_LOCK
 */
int vfio_check__device(const char *sysfs_root, const char *bdf, uint64_t pin_bytes,
		       bool allow_unsafe_interrupts, char *msg, size_t msglen);

/* IOMMU group number of bdf (>= 0); -ENODEV no device, -ENXIO no group */
int vfio_check__group(const char *sysfs_root, const char *bdf);

/*
 * 0 when every other device in bdf's group is unbound or bound to a driver
 * that leaves DMA to VFIO (vfio-pci, pci-stub, pcieport); else -EBUSY and msg
 * lists each offending device with its driver and the ACS state of its path.
 */
int vfio_check__group_viable(const char *sysfs_root, const char *bdf, char *msg, size_t msglen);

enum vfio_acs_state {
	VFIO_ACS_OK,        /* every root/downstream port on the path isolates */
	VFIO_ACS_MISSING,   /* a port lacks ACS or has SV/RR/CR/UF disabled */
	VFIO_ACS_UNKNOWN,   /* config space unreadable (not root) or malformed */
};
/*
 * ACS on the upstream path of bdf (the PCIe root ports and switch downstream
 * ports above it in the sysfs device tree). desc receives a readable account:
 * "0000:00:1c.0: no ACS capability", "0000:00:01.0: ACS SV RR CR UF", ...
 */
enum vfio_acs_state vfio_check__acs_path(const char *sysfs_root, const char *bdf, char *desc,
					 size_t desclen);

/* Offset of PCIe extended capability id in a config space image (>= 0x100);
 * -ENOENT absent, -ELOOP on a cycle or runaway list, -ERANGE image too short. */
int vfio_check__find_ext_cap(const uint8_t *cfg, size_t len, uint16_t id);
/* Offset of standard capability id (walk from 0x34); -ENOENT, -ELOOP */
int vfio_check__find_cap(const uint8_t *cfg, size_t len, uint8_t id);

struct vfio_check_iommu {
	unsigned int units;     /* entries in class/iommu */
	unsigned int intel;     /* dmar* with intel-iommu/{cap,ecap} */
	unsigned int amd;       /* ivhd* with amd-iommu/features */
	unsigned int ir;        /* units with interrupt remapping (Intel ecap.IR; every AMD unit) */
	unsigned int pi;        /* units with posted interrupts (Intel cap.PI, AMD EFR.GASup) */
	char names[128];        /* "dmar0 dmar1" */
};
/* reads class/iommu; 0 (units may be 0) or -errno */
int vfio_check__iommu(const char *sysfs_root, struct vfio_check_iommu *info);

/* 1 when vfio_iommu_type1's allow_unsafe_interrupts is Y, 0 when N, -ENOENT when not loaded */
int vfio_check__unsafe_interrupts_param(const char *sysfs_root);

/*
 * 0 when this process may pin pin_bytes (CAP_IPC_LOCK, or RLIMIT_MEMLOCK large
 * enough); else -ENOMEM with "needs N MiB locked, limit is M MiB: ..." in msg.
 */
int vfio_check__memlock(uint64_t pin_bytes, char *msg, size_t msglen);

#endif
