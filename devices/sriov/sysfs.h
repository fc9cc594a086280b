/* SPDX-License-Identifier: MIT */
/*
 * Host side of SR-IOV through sysfs: PF lookup (by PCI address or netdev
 * name), VF count, VF listing, driver binding to vfio-pci. Every function
 * takes the sysfs root ("/sys" in production, a fake tree in tests) and
 * returns 0 or -errno; where a msg buffer is given it receives a sentence for
 * the user that names the problem and the fix. The generic PCI sysfs helpers
 * (BDF parsing, attribute files, driver lookup) are in devices/pcisys.h.
 */
#ifndef MINIVMM_DEVICES_SRIOV_SYSFS_H
#define MINIVMM_DEVICES_SRIOV_SYSFS_H

#include <stdbool.h>
#include <stddef.h>

#include "devices/pcisys.h"

#define SRIOV_MAX_VFS 256

struct sriov_vf {
	unsigned int index;            /* N of the PF's virtfnN link */
	char bdf[PCISYS_BDF_LEN];
	char driver[PCISYS_NAME_LEN];   /* "" when unbound */
};

/* PF given as a PCI address or a netdev name to its canonical address */
int sriov__resolve_pf(const char *root, const char *pf, char bdf[PCISYS_BDF_LEN],
		      char *msg, size_t msglen);
/* first network interface of a PCI function; -ENOENT when it has none */
int sriov__netdev(const char *root, const char *bdf, char *name, size_t len);
/* current and maximum number of VFs of a PF; -ENOTSUP when it is no SR-IOV PF */
int sriov__num_vfs(const char *root, const char *pf_bdf, unsigned int *num, unsigned int *total);
/* sets the VF count (going through 0 when a different non-zero count is set) */
int sriov__set_num_vfs(const char *root, const char *pf_bdf, unsigned int n, char *msg,
		       size_t msglen);
/* VFs of a PF sorted by index; returns how many (at most max) or -errno */
int sriov__list_vfs(const char *root, const char *pf_bdf, struct sriov_vf *vfs, unsigned int max);
/* the PF and VF index of a VF; -ENOENT when bdf is no VF, -ENODEV when absent */
int sriov__physfn(const char *root, const char *vf_bdf, char pf[PCISYS_BDF_LEN], int *index);
/*
 * Binds a device to vfio-pci: driver_override, unbind from the current
 * driver, drivers_probe, then checks the result. 0 when bound (or already).
 */
int sriov__bind_vfio(const char *root, const char *bdf, char *msg, size_t msglen);
/* Unbinds from vfio-pci, clears driver_override and lets the host driver probe again. */
int sriov__unbind_vfio(const char *root, const char *bdf, char *msg, size_t msglen);

#endif
