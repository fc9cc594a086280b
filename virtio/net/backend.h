/* SPDX-License-Identifier: MIT */
/*
 * The packet backend behind virtio-net: one ops struct, so the device model
 * never branches on what carries its frames (a tap on io_uring today, vhost-net
 * later).
 *
 * Frames in both directions carry the virtio-net header in front, with the
 * length set by set_vnet_hdr_len() (10 or 12 bytes: struct virtio_net_hdr or
 * struct virtio_net_hdr_v1). The backend passes headers through untouched;
 * the device fills num_buffers on receive.
 *
 * Threads: every op except destroy() runs on the event-loop thread, and every
 * callback runs on it too, always from the event-loop dispatch and never from
 * inside an op (a backend that has something to report while in an op defers
 * it, e.g. with a NOP on the ring). So a device may call ops from its
 * callbacks without re-entering itself.
 *
 * Receive: the backend owns its receive buffer. For each frame it calls
 * cbs->rx(). The device returns 0 when it consumed the frame (delivered or
 * dropped), or -ENOBUFS when the guest has no buffers: the backend then keeps
 * that frame, stops reading (the host side queues or drops, which is the
 * back-pressure a real NIC gives) and offers the same frame again after the
 * device calls rx_resume().
 *
 * Transmit: tx() queues one frame (header first) given as iovecs that stay
 * valid until cbs->tx_done(token) is called with the bytes written or -errno.
 * tx() returns 0 when queued, -EBUSY when the backend cannot take more now
 * (the device retries after its next tx_done, or at the next kick), or
 * another -errno for a frame that was not sent (no tx_done follows).
 *
 * Ring-owning backends (vhost-net): a backend whose host side can walk the
 * guest's rings itself sets rings_start/rings_stop (and offer_mask). It
 * still implements the frame ops on the same host side (the same tap), and
 * the device picks one of the two ways for each stretch of an activation:
 * it hands the rings over (rings_start) whenever it may (DRIVER_OK, MSI-X
 * on, not paused, no migration's dirty tracking, no transmit of its own in
 * flight) and walks them itself with start()/tx()/... otherwise. The two
 * never overlap: rings_start() only while the frame side is stopped, and
 * start() only after rings_stop(). What the rings' owner consumed carries
 * over: the device passes each ring's last avail index in, rings_stop()
 * passes it back, and the used index is the one in guest memory. The
 * control queue always stays with the device. The device never asks which
 * kind of backend it has: it only looks at whether rings_start is set.
 */
#ifndef MINIVMM_VIRTIO_NET_BACKEND_H
#define MINIVMM_VIRTIO_NET_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct net_backend;
struct guest_mem;

#define NET_BACKEND_RINGS 2 /* receive (0) and transmit (1) */

struct net_ring {
	uint16_t size;
	uint16_t last_avail_idx; /* in: where to start; rings_stop: where it stopped */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	int call_fd;             /* in: signalled for used buffers (an MSI-X vector's irqfd), -1: none */
	int kick_fd;             /* out: the eventfd the backend polls; the device routes the queue's kicks there */
};

struct net_rings {
	const struct guest_mem *mem;
	uint64_t features;       /* negotiated with the driver */
	struct net_ring q[NET_BACKEND_RINGS];
};

struct net_backend_cbs {
	/* a received frame (header first); 0 consumed, -ENOBUFS keep it and pause */
	int (*rx)(void *opaque, const void *frame, size_t len);
	/* a tx() finished: bytes written (header included) or -errno */
	void (*tx_done)(void *opaque, uint32_t token, int res);
};

struct net_backend_ops {
	/*
	 * Begin (or, after stop(), resume) service: receive frames and report
	 * them through cbs. cbs and opaque stay valid until destroy().
	 */
	int (*start)(struct net_backend *b, const struct net_backend_cbs *cbs, void *opaque);
	/* send one frame; see above */
	int (*tx)(struct net_backend *b, const struct iovec *iov, int cnt, uint32_t token);
	/* the guest posted receive buffers: offer the held frame again, read on */
	void (*rx_resume)(struct net_backend *b);
	/* virtio-net header length in both directions (10 or 12) */
	int (*set_vnet_hdr_len)(struct net_backend *b, unsigned int len);
	/* receive offloads the guest accepts, from its negotiated feature bits */
	int (*set_offloads)(struct net_backend *b, uint64_t guest_features);
	/*
	 * Stop receiving: drops a held frame; a read already under way may
	 * still complete, and its frame is offered after the next start().
	 * tx() operations already queued still complete through tx_done.
	 */
	void (*stop)(struct net_backend *b);
	/*
	 * Cancel what is in flight, wait for it and free the backend. Called
	 * when the event loop no longer runs, or on its thread.
	 */
	void (*destroy)(struct net_backend *b);

	/* ---- ring-owning backends only (NULL otherwise); see above ---- */
	/*
	 * The feature bits (the device's and the transport's) the backend can
	 * carry: the device offers only these. Bits it has no say on are set.
	 */
	uint64_t (*offer_mask)(struct net_backend *b);
	/*
	 * Take the rings: fills each ring's kick_fd. 0, or -errno with
	 * everything undone (the device then walks the rings itself).
	 */
	int (*rings_start)(struct net_backend *b, struct net_rings *r);
	/*
	 * Give them back: fills each ring's last_avail_idx. Every ring is
	 * stopped even on an error; 0, or the first -errno (the indices are
	 * then unknown).
	 */
	int (*rings_stop)(struct net_backend *b, struct net_rings *r);
};

struct net_backend {
	const struct net_backend_ops *ops;
	const char *kind; /* "tap", "vhost-net" */
};

#endif
