/* SPDX-License-Identifier: MIT */
/* virtio-blk requests on queue 0 for the tiny guests. */
#include "blk.h"

static struct blk_req_hdr req_hdr;
static volatile uint8_t req_status;

int blk_request(struct vdev *d, uint32_t type, uint64_t sector, void *data, uint32_t len, uint32_t max_ticks,
		uint32_t *used_len)
{
	struct vbuf vb[3];
	struct vq *q = &d->vq[0];
	uint32_t uid = 0, ulen = 0;
	int n = 0;

	req_hdr.type = type;
	req_hdr.reserved = 0;
	req_hdr.sector = sector;
	req_status = BLK_NO_STATUS;
	vb[n++] = (struct vbuf){ &req_hdr, sizeof(req_hdr), false };
	if (len)
		vb[n++] = (struct vbuf){ data, len, type != VIRTIO_BLK_T_OUT };
	vb[n++] = (struct vbuf){ (void *)&req_status, 1, true };
	if (vq_add(q, vb, n) < 0)
		return BLK_NO_STATUS;
	vq_kick(q);
	if (!vq_wait_used(q, max_ticks, &uid, &ulen))
		return BLK_NO_STATUS;
	if (used_len)
		*used_len = ulen;
	return req_status;
}
