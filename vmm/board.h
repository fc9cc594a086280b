/* SPDX-License-Identifier: MIT */
/*
 * The composition root's machine: the VM plus the devices the options ask for,
 * built in the order of the device table in board.c. The live devices are
 * the VM's device list (vmm/device.h); the board adds what only it knows:
 * the failover pairs (a VF kept off the bus until its standby virtio-net
 * NIC's driver negotiated STANDBY) and the one runtime device operation
 * (device-add, device-del) that may be in progress.
 */
#ifndef MINIVMM_VMM_BOARD_H
#define MINIVMM_VMM_BOARD_H

#include <stdatomic.h>
#include <time.h>

#include "vmm/device.h"
#include "vmm/kvm.h"
#include "vmm/options.h"

struct vfio_iommu;
struct api;
struct hotplug;
struct board_op;
struct board_migration;

#define BOARD_MAX_FAILOVER OPTIONS_MAX_VFS
#define BOARD_MAX_STANDBY_SEEN 16
#define BOARD_UNPLUG_TIMEOUT_MS 10000 /* device-del's default deadline */

/* a VF paired with a failover=on virtio-net NIC */
struct board_failover {
	bool used;
	char vf_id[DEVICE_ID_LEN];
	char net_id[DEVICE_ID_LEN];
	bool plugged;        /* on the guest's bus (STANDBY was negotiated) */
	bool mac_at_plug;    /* the standby's MAC goes on the VF right before the plug */
	char bdf[32];        /* the VF's host address */
	bool declined_said;  /* the "driver declined STANDBY" line was logged */
};

/* the last STANDBY state the board reported for a NIC (events on change) */
struct board_standby_seen {
	char id[DEVICE_ID_LEN];
	int state;
	unsigned int negotiations;
};

struct migtls_creds;

struct board {
	struct vm vm;
	const struct options *opts;
	int console_in, console_out;
	struct api *api;                        /* the control socket (--api), or NULL */
	struct hotplug *hotplug;                /* ACPI PCI hot-plug (--api or a failover VF), or NULL */
	struct vfio_iommu *vfio_iommu;          /* one DMA address space for every VF */
	struct board_failover fo[BOARD_MAX_FAILOVER];
	struct board_standby_seen sb_seen[BOARD_MAX_STANDBY_SEEN];
	struct board_op *op;                    /* device-add/device-del in progress, or NULL */
	struct board_migration *mig;            /* a migration in progress (its handler runs), or NULL */
	struct board_incoming *incoming;        /* --incoming: waiting or receiving, or NULL */
	json_t *incoming_done;                  /* --incoming: what status says once the guest runs */
	atomic_bool standby_queued;             /* standby_call is queued on the loop */
	struct evloop_call standby_call;
	struct evloop_call announce_call;       /* after an incoming migration (GUEST_ANNOUNCE) */
	unsigned int nr_nets_made;              /* default MACs of NICs, in creation order */
	struct timespec started;                /* CLOCK_MONOTONIC at board__build */
	struct migtls_creds *tls;               /* the migration channel's TLS, or NULL (plain) */
	/* plugged VFs' traffic watch (vfio_pci__traffic_poll), a 100 ms timer while one waits */
	int traffic_tfd;
	bool traffic_watching;
	struct evloop_watch traffic_watch;
	/* SIGUSR2: log the vCPUs' and devices' state (board__request_inspect) */
	int inspect_efd;
	struct evloop_watch inspect_watch;
};

/* creates the VM and its devices and loads the kernel; 0 or -errno (already logged) */
int board__build(struct board *b, const struct options *o) __must_check;
void board__destroy(struct board *b);
/*
 * Asks the event loop to log what the vCPUs and devices are doing (the
 * `cpu-state` command's answer, then each device's description): for a
 * guest gone silent. Async-signal-safe (SIGUSR2's handler calls it).
 */
void board__request_inspect(struct board *b);
/* prints per-vCPU exit counters and device statistics (at exit, with -v) */
void board__print_stats(struct board *b);

#endif
