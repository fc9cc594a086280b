/* SPDX-License-Identifier: MIT */
/*
 * The composition root's machine: the VM plus the devices the options ask for,
 * built in the order of the device table in board.c.
 */
#ifndef MINIVMM_VMM_BOARD_H
#define MINIVMM_VMM_BOARD_H

#include <time.h>

#include "vmm/kvm.h"
#include "vmm/options.h"

struct serial;
struct i8042;
struct rtc;
struct pm;
struct testdev;
struct virtio_blk;
struct virtio_net;
struct vfio_iommu;
struct vfio_pci;
struct api;
struct hotplug;

struct board {
	struct vm vm;
	const struct options *opts;
	struct serial *serial;
	struct i8042 *i8042;
	struct rtc *rtc;
	struct pm *pm;
	struct testdev *testdev;
	struct virtio_blk *blk;
	struct virtio_net *net[OPTIONS_MAX_NICS];
	char net_id[OPTIONS_MAX_NICS][OPTIONS_ID_LEN]; /* net0, net1, ... or id=NAME */
	unsigned int nr_net;
	struct vfio_iommu *vfio_iommu;          /* one DMA address space for every VF */
	struct vfio_pci *vf[OPTIONS_MAX_VFS];
	char vf_id[OPTIONS_MAX_VFS][OPTIONS_ID_LEN];   /* vf0, vf1, ... or id=NAME */
	unsigned int nr_vf;
	int console_in, console_out;
	struct api *api;                        /* the control socket (--api), or NULL */
	struct hotplug *hotplug;                /* ACPI PCI hot-plug (with --api), or NULL */
	struct timespec started;                /* CLOCK_MONOTONIC at board__build */
};

/* creates the VM and its devices and loads the kernel; 0 or -errno (already logged) */
int board__build(struct board *b, const struct options *o) __must_check;
void board__destroy(struct board *b);
/* prints per-vCPU exit counters and device statistics (at exit, with -v) */
void board__print_stats(struct board *b);

#endif
