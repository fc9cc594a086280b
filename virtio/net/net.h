/* SPDX-License-Identifier: MIT */
/*
 * virtio-net device model (virtio 1.x, section 5.1) on the virtio-pci
 * transport: queue 0 receive, queue 1 transmit (256 entries each), no control
 * queue. Frames go through a struct net_backend (virtio/net/backend.h), so
 * the model never knows whether a tap or vhost-net carries them.
 *
 * Offered features: MAC, STATUS (link always up), MRG_RXBUF, CSUM,
 * GUEST_CSUM, HOST_TSO4/6, GUEST_TSO4/6 (the guest's receive offloads become
 * the tap's TUNSETOFFLOAD flags). Config space: mac, status,
 * max_virtqueue_pairs = 1.
 *
 * Threads: the transport may call activate/reset from a vCPU thread; they
 * only record the new state and wake the event loop, where everything else
 * (queue processing, backend calls and callbacks) happens.
 *
 * Receive without buffers: the backend holds the frame and stops reading
 * (counted in rx_stalls) until the guest posts buffers; frames that cannot
 * be delivered at all (device not running, frame larger than a whole chain
 * without MRG_RXBUF or larger than the whole ring) are dropped and counted
 * in rx_dropped.
 */
#ifndef MINIVMM_VIRTIO_NET_NET_H
#define MINIVMM_VIRTIO_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/net/backend.h"
#include "vmm/options.h"
#include "vmm/util.h"

struct vm;
struct virtio_dev;
struct virtio_net;

#define VIRTIO_NET_QUEUE_SIZE 256
#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1
#define VIRTIO_NET_CTRLQ 2 /* the control queue (VIRTIO_NET_F_CTRL_VQ): ANNOUNCE_ACK only */
#define VIRTIO_NET_IFNAMSIZ 16 /* IFNAMSIZ, without <net/if.h> */

/* vhost=: the kernel's vhost-net moves the frames (virtio/net/vhost_net.h) */
enum virtio_net_vhost {
	VIRTIO_NET_VHOST_AUTO, /* not given: vhost-net when /dev/vhost-net opens, else userspace */
	VIRTIO_NET_VHOST_ON,   /* vhost=on: vhost-net or the NIC is not created */
	VIRTIO_NET_VHOST_OFF,  /* vhost=off: userspace */
};

struct virtio_net_config {
	const char *name; /* log prefix, e.g. "virtio-net0" (NULL: "virtio-net") */
	const char *tap;  /* tap interface name */
	uint8_t mac[6];
	bool has_mac; /* false: a random locally administered 52:54:00:xx:xx:xx */
	char tap_buf[VIRTIO_NET_IFNAMSIZ]; /* storage virtio_net__parse_opts() points tap at */
	char id[OPTIONS_ID_LEN]; /* id=NAME (the control socket's device id), "" when not given */
	bool failover;           /* failover=on: offer VIRTIO_NET_F_STANDBY (net_failover) */
	enum virtio_net_vhost vhost;
	const char *vhost_path;  /* NULL: /dev/vhost-net (tests point it elsewhere) */
	/*
	 * Optional: called when the STANDBY state changes, on the vCPU thread
	 * that wrote the device status, with the transport's lock held: queue
	 * work (evloop__call), never act here.
	 */
	void (*standby_changed)(void *opaque);
	void *standby_opaque;
};

/*
 * VIRTIO_NET_F_STANDBY as the guest's driver took it (failover=on only):
 * Linux's virtio_net creates a net_failover master when it negotiates the
 * feature, and a VF with the same MAC becomes its primary. Changes on the
 * vCPU thread that writes the device status; readable from any thread.
 */
enum virtio_net_standby {
	VIRTIO_NET_STANDBY_OFF,        /* not offered (no failover=on) */
	VIRTIO_NET_STANDBY_WAITING,    /* offered; no driver has started the device yet */
	VIRTIO_NET_STANDBY_NEGOTIATED, /* the running driver accepted it */
	VIRTIO_NET_STANDBY_DECLINED,   /* the running driver did not (no net_failover) */
	VIRTIO_NET_STANDBY_RESET,      /* negotiated, then the driver reset the device */
};

struct virtio_net_stats {
	uint64_t tx_packets, tx_bytes; /* frames sent to the backend (bytes without header) */
	uint64_t tx_errors;	       /* frames the backend refused or failed to send */
	uint64_t rx_packets, rx_bytes; /* frames delivered to the guest (without header) */
	uint64_t rx_dropped;	       /* frames that could not be delivered */
	uint64_t rx_stalls;	       /* times receive paused for lack of guest buffers */
};

/*
 * Parses "tap=NAME[,mac=52:54:00:12:34:56][,id=NAME][,failover=on|off][,vhost=on|off]" into *cfg (every field but name is
 * reset; cfg->tap points at cfg->tap_buf, so re-point it after copying cfg).
 * Returns 0, or -EINVAL with a message naming the bad key or value in err.
 */
int virtio_net__parse_opts(const char *opts, struct virtio_net_config *cfg, char *err,
			   size_t errlen) __must_check;

/*
 * opens the tap (and /dev/vhost-net, as cfg->vhost says; the log says which
 * backend and why) and registers the device on the VM's PCI bus
 */
int virtio_net__create(struct vm *vm, const struct virtio_net_config *cfg,
		       struct virtio_net **out) __must_check;
/*
 * the same on a given backend; the device owns it from then on, also on
 * failure. A ring-owning backend (rings_start set) switches the device's
 * MSI-X to passthrough delivery: each vector's eventfd is its irqfd, given
 * to the backend as the rings' call eventfd.
 */
int virtio_net__create_with_backend(struct vm *vm, const struct virtio_net_config *cfg,
				    struct net_backend *be, struct virtio_net **out) __must_check;
/*
 * After the event loop stopped, or on the loop thread while it runs (a
 * device-del once the guest ejected the NIC): it drains the backend's I/O.
 */
void virtio_net__destroy(struct virtio_net *n);

/*
 * true while the backend owns the rings (vhost-net moving frames without
 * the VMM); the event loop thread, or once it stopped (tests, stats)
 */
bool virtio_net__rings_offloaded(struct virtio_net *n);

/* counters so far (exact once the event loop stopped) */
void virtio_net__get_stats(const struct virtio_net *n, struct virtio_net_stats *s);
/* logs the counters at LOG_INFO with the device prefix */
void virtio_net__log_stats(const struct virtio_net *n);

const char *virtio_net__name(const struct virtio_net *n);
/* the STANDBY state, and how many times a driver negotiated it */
enum virtio_net_standby virtio_net__standby(const struct virtio_net *n, unsigned int *negotiations);
const char *virtio_net__standby_name(enum virtio_net_standby s);
/*
 * VIRTIO_NET_F_GUEST_ANNOUNCE: asks the guest's driver to announce itself
 * (gratuitous ARP and IPv6 neighbour advertisements), as after a migration:
 * sets VIRTIO_NET_S_ANNOUNCE and raises a config interrupt; the driver's
 * ANNOUNCE_ACK on the control queue clears it. 0, or -ENOTSUP when the
 * driver did not take the feature (or is not running). Any thread.
 */
int virtio_net__announce(struct virtio_net *n);
/* ANNOUNCE_ACKs the guest sent (tests, stats) */
unsigned int virtio_net__announce_acks(const struct virtio_net *n);
void virtio_net__get_mac(const struct virtio_net *n, uint8_t mac[6]);
/* the device model's view (vmm/device.h): id, ops, PCI function */
struct vmm_device *virtio_net__device(struct virtio_net *n);
/* the virtio-net behind a device of the list, or NULL when it is another kind */
struct virtio_net *virtio_net__from_device(struct vmm_device *d);
/* the transport side (tests drive the queues through it) */
struct virtio_dev *virtio_net__vdev(struct virtio_net *n);

/* virtio-net header bytes for negotiated features: 12 with VERSION_1 or MRG_RXBUF, else 10 */
unsigned int virtio_net__hdr_len(uint64_t features);

#endif
