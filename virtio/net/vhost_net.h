/* SPDX-License-Identifier: MIT */
/*
 * vhost-net backend: the kernel's vhost-net moves frames between the
 * guest's rings and a tap, and minivmm only sets it up (virtio/vhost.h,
 * VHOST_NET_SET_BACKEND with the tap's fd). It is a ring-owning backend
 * (virtio/net/backend.h): while the device cannot hand its rings over
 * (a migration's dirty tracking, MSI-X off), the frame ops run on the
 * wrapped tap backend, in userspace, on the same tap.
 *
 * The tap is opened with IFF_VNET_HDR; its header size (TUNSETVNETHDRSZ)
 * and offloads (TUNSETOFFLOAD) follow the driver's features through the
 * tap's own set_vnet_hdr_len/set_offloads, in both modes; vhost itself
 * adds no header (no VHOST_NET_F_VIRTIO_NET_HDR).
 */
#ifndef MINIVMM_VIRTIO_NET_VHOST_NET_H
#define MINIVMM_VIRTIO_NET_VHOST_NET_H

#include <stdint.h>
#include "virtio/net/backend.h"
#include "vmm/util.h"

#define VHOST_NET_DEV "/dev/vhost-net"

/*
 * Wraps the frame backend `frames` on the tap whose fd is tap_fd: opens
 * dev_path (VHOST_NET_DEV), takes ownership, reads the features. On success
 * the new backend owns frames; on failure frames is untouched and still
 * the caller's, and the error is -errno (the open's errno as is, e.g.
 * -ENOENT, so the caller can say why it goes on without vhost).
 */
int vhost_net__wrap(const char *prefix, const char *dev_path, struct net_backend *frames,
		    int tap_fd, struct net_backend **out) __must_check;

/* the virtio feature bits vhost-net decides on (the rest is the tap's or the device's) */
uint64_t vhost_net__ring_features(void);

#endif
