/* SPDX-License-Identifier: MIT */
/*
 * Loading the kernel modules the host side needs (vfio-pci and its IOMMU
 * backend) through libkmod, as modprobe would: aliases, dependencies, soft
 * dependencies and the blacklist are honoured.
 */
#ifndef MINIVMM_DEVICES_SRIOV_KMOD_H
#define MINIVMM_DEVICES_SRIOV_KMOD_H

#include <stddef.h>

/*
 * Loads module (or alias) name and what it depends on; 0 when it is loaded
 * afterwards (already loaded included), -errno with a sentence in msg
 * otherwise (-ENOENT: no such module for the running kernel, -EPERM: not
 * root, -EACCES: blacklisted, -ENOSYS: libkmod.so.2 cannot be opened).
 */
int sriov__load_module(const char *name, char *msg, size_t msglen);

#endif
