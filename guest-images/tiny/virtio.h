/* SPDX-License-Identifier: MIT */
/*
 * Minimal modern virtio-pci driver for the tiny guests: capability parsing,
 * reset, feature negotiation, split queues in static memory, MSI-X vectors,
 * notify and used-ring waiting (sti;hlt with a LAPIC timer as the timeout).
 */
#ifndef TINY_VIRTIO_H
#define TINY_VIRTIO_H

#include "tiny.h"

#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_DEV_NET 0x1041
#define VIRTIO_DEV_BLK 0x1042

#define VIRTIO_S_ACKNOWLEDGE 1
#define VIRTIO_S_DRIVER 2
#define VIRTIO_S_DRIVER_OK 4
#define VIRTIO_S_FEATURES_OK 8
#define VIRTIO_S_NEEDS_RESET 0x40
#define VIRTIO_S_FAILED 0x80

#define VIRTIO_F_VERSION_1 32
#define VIRTIO_MSI_NO_VECTOR 0xffff

/* common config offsets (virtio 1.x 4.1.4.3) */
#define VC_DFSELECT 0x00
#define VC_DF 0x04
#define VC_GFSELECT 0x08
#define VC_GF 0x0c
#define VC_MSIX_CONFIG 0x10
#define VC_NUM_QUEUES 0x12
#define VC_STATUS 0x14
#define VC_GENERATION 0x15
#define VC_Q_SELECT 0x16
#define VC_Q_SIZE 0x18
#define VC_Q_MSIX 0x1a
#define VC_Q_ENABLE 0x1c
#define VC_Q_NOTIFY_OFF 0x1e
#define VC_Q_DESC 0x20
#define VC_Q_DRIVER 0x28
#define VC_Q_DEVICE 0x30

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2

#define TINY_QSIZE 16
#define TINY_MAX_QUEUES 2

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[TINY_QSIZE];
	uint16_t used_event;
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[TINY_QSIZE];
	uint16_t avail_event;
};

struct vring_mem {
	struct vring_desc desc[TINY_QSIZE] __attribute__((aligned(16)));
	struct vring_avail avail __attribute__((aligned(2)));
	struct vring_used used __attribute__((aligned(4)));
};

struct vq {
	uint16_t index;
	uint16_t size;
	uint16_t vector;
	struct vring_mem *ring;
	uint64_t notify;     /* notify register address */
	uint16_t avail_idx;  /* next avail slot (free-running) */
	uint16_t last_used;  /* next used slot to consume (free-running) */
	uint16_t nfree;
	uint16_t free[TINY_QSIZE];
	uint16_t chain_len[TINY_QSIZE];
};

struct vbuf {
	void *addr;
	uint32_t len;
	bool write; /* device writes */
};

struct vdev {
	uint8_t devfn;
	uint16_t device_id;
	uint64_t bases[6];
	uint64_t common, isr, device, notify_base;
	uint32_t notify_mult;
	uint32_t device_len;
	struct msix msix;
	bool has_msix;
	uint64_t features;
	uint16_t nq;
	struct vq vq[TINY_MAX_QUEUES];
};

/* finds the first device, moves its BAR below 4 GiB if needed, enables decode, parses caps */
int virtio_probe(struct vdev *vd, uint16_t pci_device_id);
/*
 * reset, ACK, DRIVER, negotiate (VERSION_1 | want), MSI-X (queue i uses
 * vectors[i], NO_VECTOR when 0), set up nq queues and DRIVER_OK.
 * Returns 0 or a negative step number.
 */
int virtio_start(struct vdev *vd, uint64_t want, uint16_t nq, const uint8_t *vectors);
/* status 0 and wait (bounded) until the device reads back 0; 0 or -1 */
int virtio_reset(struct vdev *vd);
uint8_t virtio_status(struct vdev *vd);

static inline uint8_t vc_read8(struct vdev *vd, uint32_t off) { return mmio_read8(vd->common + off); }
static inline uint16_t vc_read16(struct vdev *vd, uint32_t off) { return mmio_read16(vd->common + off); }
static inline uint32_t vc_read32(struct vdev *vd, uint32_t off) { return mmio_read32(vd->common + off); }
static inline void vc_write8(struct vdev *vd, uint32_t off, uint8_t v) { mmio_write8(vd->common + off, v); }
static inline void vc_write16(struct vdev *vd, uint32_t off, uint16_t v) { mmio_write16(vd->common + off, v); }
static inline void vc_write32(struct vdev *vd, uint32_t off, uint32_t v) { mmio_write32(vd->common + off, v); }
static inline void vc_write64(struct vdev *vd, uint32_t off, uint64_t v)
{
	mmio_write32(vd->common + off, (uint32_t)v);
	mmio_write32(vd->common + off + 4, (uint32_t)(v >> 32));
}

/* queues the buffers as one chain; head id or -1 when the ring is full */
int vq_add(struct vq *q, const struct vbuf *bufs, int n);
void vq_kick(struct vq *q);
/* consumes one used element: returns 1 and fills id and len, 0 when none */
int vq_get_used(struct vq *q, uint32_t *id, uint32_t *len);
/* waits up to max_ticks timer ticks for a used element (timer must run) */
int vq_wait_used(struct vq *q, uint32_t max_ticks, uint32_t *id, uint32_t *len);

#endif
