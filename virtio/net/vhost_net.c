// SPDX-License-Identifier: MIT
/*
 * vhost-net backend (virtio/net/vhost_net.h): the rings go to the kernel
 * while the device lets them; the frame ops are the wrapped tap's.
 *
 * rings_start, in QEMU's vhost_net_start order: SET_FEATURES, SET_MEM_TABLE,
 * per ring NUM/BASE/ADDR/KICK/CALL, then VHOST_NET_SET_BACKEND (the tap) per
 * ring. rings_stop: SET_BACKEND -1 per ring (the kernel flushes), then per
 * ring GET_VRING_BASE and KICK/CALL unbound. A failure anywhere undoes the
 * steps before it in reverse.
 */
#include "virtio/net/vhost_net.h"

#include <errno.h>
#include <linux/vhost.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/vhost.h"
#include "vmm/log.h"
#include "vmm/sys.h"

struct vhost_net {
	struct net_backend be;
	struct net_backend *frames; /* the tap, for the device's own ring walking */
	int tap_fd;
	struct vhost vh;
	int kick[NET_BACKEND_RINGS]; /* what the kernel polls: the queues' ioeventfds point here */
	bool rings;                  /* the kernel holds the rings */
	char prefix[32];
};

static struct vhost_net *to_vn(struct net_backend *b)
{
	return container_of(b, struct vhost_net, be);
}

uint64_t vhost_net__ring_features(void)
{
	return (1ULL << VIRTIO_NET_F_MRG_RXBUF) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |
	       (1ULL << VIRTIO_RING_F_EVENT_IDX) | (1ULL << VIRTIO_F_VERSION_1) |
	       (1ULL << VIRTIO_F_ANY_LAYOUT) | (1ULL << VIRTIO_F_NOTIFY_ON_EMPTY);
}

/* ---- the frame side: the tap's ------------------------------------------- */

static int vn_start(struct net_backend *b, const struct net_backend_cbs *cbs, void *opaque)
{
	struct vhost_net *vn = to_vn(b);

	if (vn->rings)
		return -EBUSY;
	return vn->frames->ops->start(vn->frames, cbs, opaque);
}

static int vn_tx(struct net_backend *b, const struct iovec *iov, int cnt, uint32_t token)
{
	struct vhost_net *vn = to_vn(b);

	return vn->frames->ops->tx(vn->frames, iov, cnt, token);
}

static void vn_rx_resume(struct net_backend *b)
{
	struct vhost_net *vn = to_vn(b);

	vn->frames->ops->rx_resume(vn->frames);
}

static int vn_set_vnet_hdr_len(struct net_backend *b, unsigned int len)
{
	struct vhost_net *vn = to_vn(b);

	return vn->frames->ops->set_vnet_hdr_len(vn->frames, len);
}

static int vn_set_offloads(struct net_backend *b, uint64_t f)
{
	struct vhost_net *vn = to_vn(b);

	return vn->frames->ops->set_offloads(vn->frames, f);
}

static void vn_stop(struct net_backend *b)
{
	struct vhost_net *vn = to_vn(b);

	vn->frames->ops->stop(vn->frames);
}

/* ---- the ring side: the kernel's ----------------------------------------- */

static uint64_t vn_offer_mask(struct net_backend *b)
{
	struct vhost_net *vn = to_vn(b);
	uint64_t ring = vhost_net__ring_features();

	return ~ring | (vn->vh.features & ring);
}

static int vn_set_backend(struct vhost_net *vn, unsigned int i, int fd)
{
	struct vhost_vring_file f = { .index = i, .fd = fd };
	int ret = sys__ioctl(vn->vh.fd, VHOST_NET_SET_BACKEND, &f);

	return ret < 0 ? ret : 0;
}

static int vn_rings_start(struct net_backend *b, struct net_rings *r)
{
	struct vhost_net *vn = to_vn(b);
	uint64_t f = r->features & vn->vh.features & vhost_net__ring_features();
	unsigned int i, j;
	uint16_t base;
	int ret;

	if (vn->rings)
		return -EBUSY;
	ret = vhost__set_features(&vn->vh, f);
	if (!ret)
		ret = vhost__set_mem_table(&vn->vh, r->mem);
	if (ret)
		goto err;
	for (i = 0; i < NET_BACKEND_RINGS; i++) {
		struct vhost_vring vr = {
			.index = i,
			.num = r->q[i].size,
			.base = r->q[i].last_avail_idx,
			.desc_gpa = r->q[i].desc_gpa,
			.avail_gpa = r->q[i].avail_gpa,
			.used_gpa = r->q[i].used_gpa,
			.kick_fd = vn->kick[i],
			.call_fd = r->q[i].call_fd,
		};

		ret = vhost__vring_start(&vn->vh, r->mem, &vr);
		if (ret)
			goto err_rings;
	}
	for (j = 0; j < NET_BACKEND_RINGS; j++) {
		ret = vn_set_backend(vn, j, vn->tap_fd);
		if (ret)
			goto err_backend;
	}
	for (i = 0; i < NET_BACKEND_RINGS; i++)
		r->q[i].kick_fd = vn->kick[i];
	vn->rings = true;
	return 0;

err_backend:
	while (j--)
		if (vn_set_backend(vn, j, -1))
			log_err(vn->prefix, "ring %u: cannot take the tap back from vhost-net", j);
err_rings:
	while (i--)
		if (vhost__vring_stop(&vn->vh, i, &base))
			log_err(vn->prefix, "ring %u: cannot unbind it from vhost-net", i);
err:
	log_err(vn->prefix, "vhost-net does not take the rings: %s", strerror(-ret));
	return ret;
}

static int vn_rings_stop(struct net_backend *b, struct net_rings *r)
{
	struct vhost_net *vn = to_vn(b);
	unsigned int i;
	int ret = 0, err;

	if (!vn->rings)
		return -EINVAL;
	for (i = 0; i < NET_BACKEND_RINGS; i++) {
		err = vn_set_backend(vn, i, -1);
		if (err && !ret)
			ret = err;
	}
	for (i = 0; i < NET_BACKEND_RINGS; i++) {
		err = vhost__vring_stop(&vn->vh, i, &r->q[i].last_avail_idx);
		if (err && !ret)
			ret = err;
	}
	vn->rings = false;
	return ret;
}

static void vn_destroy(struct net_backend *b)
{
	struct vhost_net *vn = to_vn(b);
	struct net_rings r;
	unsigned int i;

	if (vn->rings)
		(void)vn_rings_stop(b, &r);
	vhost__close(&vn->vh);
	for (i = 0; i < NET_BACKEND_RINGS; i++)
		sys__close(vn->kick[i]);
	vn->frames->ops->destroy(vn->frames);
	free(vn);
}

static const struct net_backend_ops vn_ops = {
	.start = vn_start,
	.tx = vn_tx,
	.rx_resume = vn_rx_resume,
	.set_vnet_hdr_len = vn_set_vnet_hdr_len,
	.set_offloads = vn_set_offloads,
	.stop = vn_stop,
	.destroy = vn_destroy,
	.offer_mask = vn_offer_mask,
	.rings_start = vn_rings_start,
	.rings_stop = vn_rings_stop,
};

int vhost_net__wrap(const char *prefix, const char *dev_path, struct net_backend *frames,
		    int tap_fd, struct net_backend **out)
{
	struct vhost_net *vn;
	unsigned int i;
	int ret;

	vn = calloc(1, sizeof(*vn));
	if (!vn)
		return -ENOMEM;
	snprintf(vn->prefix, sizeof(vn->prefix), "%s", prefix ? prefix : "vhost-net");
	vn->be.ops = &vn_ops;
	vn->be.kind = "vhost-net";
	vn->frames = frames;
	vn->tap_fd = tap_fd;
	for (i = 0; i < NET_BACKEND_RINGS; i++)
		vn->kick[i] = -1;
	ret = vhost__open(&vn->vh, dev_path, vn->prefix);
	if (ret)
		goto err_free;
	if (!(vn->vh.features & (1ULL << VIRTIO_F_VERSION_1))) {
		log_err(vn->prefix, "%s lacks VIRTIO_F_VERSION_1 (features %#llx)", dev_path,
			(unsigned long long)vn->vh.features);
		ret = -ENOTSUP;
		goto err_close;
	}
	for (i = 0; i < NET_BACKEND_RINGS; i++) {
		ret = sys__eventfd(0);
		if (ret < 0)
			goto err_kicks;
		vn->kick[i] = ret;
	}
	*out = &vn->be;
	return 0;

err_kicks:
	for (i = 0; i < NET_BACKEND_RINGS; i++)
		sys__close(vn->kick[i]);
err_close:
	vhost__close(&vn->vh);
err_free:
	free(vn);
	return ret;
}
