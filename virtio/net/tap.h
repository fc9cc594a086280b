/* SPDX-License-Identifier: MIT */
/*
 * Tap backend: a /dev/net/tun tap (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, single
 * queue), non-blocking, with receive and transmit as readv/writev on the
 * VMM's io_uring event loop and a POLLIN watch that restarts reading after
 * the tap ran dry. An existing (persistent) tap of that name is attached;
 * otherwise one is created, and it lives as long as the fd. The link is
 * brought up.
 */
#ifndef MINIVMM_VIRTIO_NET_TAP_H
#define MINIVMM_VIRTIO_NET_TAP_H

#include <stdint.h>
#include "virtio/net/backend.h"
#include "vmm/evloop.h"
#include "vmm/util.h"

/* largest frame read from the tap: header + 64 KiB GSO frame + VLAN/Ethernet slack */
#define TAP_RX_BUF_SIZE (12 + 65536 + 256)

/*
 * Opens the tap `ifname` (created when absent; "name%d" lets the kernel pick)
 * for the event loop `loop`; prefix names the device in log messages. On success *out is the
 * backend, started later.
 */
int tap__create(struct evloop *loop, const char *prefix, const char *ifname,
		struct net_backend **out) __must_check;
/*
 * The same with a receive buffer of rx_buf_size bytes (TAP_RX_BUF_MIN at
 * least; tap__create uses TAP_RX_BUF_SIZE). A frame longer than the buffer
 * is dropped and counted (tap__rx_oversized), never truncated: tun copies
 * what fits and returns the copied length (or, in some kernels, the
 * frame's full length), so the backend reads one byte more than it takes.
 */
int tap__create_sized(struct evloop *loop, const char *prefix, const char *ifname,
		      size_t rx_buf_size, struct net_backend **out) __must_check;
#define TAP_RX_BUF_MIN (12 + 64)
/* frames dropped because they did not fit the receive buffer */
uint64_t tap__rx_oversized(const struct net_backend *b);

/* the interface name the kernel gave (after "%d" expansion) */
const char *tap__ifname(const struct net_backend *b);
/* the tap's fd (tests, diagnostics) */
int tap__fd(const struct net_backend *b);

/* TUNSETOFFLOAD flags for negotiated virtio-net guest features (pure) */
uint32_t tap__offload_flags(uint64_t guest_features);

#endif
