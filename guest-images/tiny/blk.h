/* SPDX-License-Identifier: MIT */
/* virtio-blk request helpers shared by the virtioblk and junk guests. */
#ifndef TINY_BLK_H
#define TINY_BLK_H

#include "virtio.h"

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_FLUSH 9
#define BLK_NO_STATUS 0xee

struct blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/*
 * One request on queue 0 (header, optional data, status); waits up to
 * max_ticks timer ticks. Returns the virtio-blk status byte, BLK_NO_STATUS on
 * timeout; *used_len gets the used length.
 */
int blk_request(struct vdev *vd, uint32_t type, uint64_t sector, void *data, uint32_t len,
		uint32_t max_ticks, uint32_t *used_len);

#endif
