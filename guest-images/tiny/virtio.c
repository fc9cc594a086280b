/* SPDX-License-Identifier: MIT */
/* Minimal modern virtio-pci driver (virtio 1.x, split rings). */
#include "virtio.h"

static struct vring_mem rings[TINY_MAX_QUEUES] __attribute__((aligned(4096)));

int virtio_probe(struct vdev *vd, uint16_t pci_device_id)
{
	int devfn = pci_find(VIRTIO_VENDOR, pci_device_id);
	uint8_t cap = 0;

	memset(vd, 0, sizeof(*vd));
	if (devfn < 0) {
		report("virtio: no device 1af4:%04x", pci_device_id);
		return -1;
	}
	vd->devfn = (uint8_t)devfn;
	vd->device_id = pci_device_id;
	if (pci_enable_mem(vd->devfn, vd->bases))
		return -1;
	while ((cap = pci_find_cap(vd->devfn, PCI_CAP_ID_VNDR, cap))) {
		uint8_t type = pci_read8(vd->devfn, (uint16_t)(cap + 3));
		uint8_t bar = pci_read8(vd->devfn, (uint16_t)(cap + 4));
		uint32_t off = pci_read32(vd->devfn, (uint16_t)(cap + 8));
		uint32_t len = pci_read32(vd->devfn, (uint16_t)(cap + 12));
		uint64_t addr;

		if (bar > 5 || !vd->bases[bar])
			continue;
		addr = vd->bases[bar] + off;
		switch (type) {
		case 1:
			if (!vd->common)
				vd->common = addr;
			break;
		case 2:
			if (!vd->notify_base) {
				vd->notify_base = addr;
				vd->notify_mult = pci_read32(vd->devfn, (uint16_t)(cap + 16));
			}
			break;
		case 3:
			if (!vd->isr)
				vd->isr = addr;
			break;
		case 4:
			if (!vd->device) {
				vd->device = addr;
				vd->device_len = len;
			}
			break;
		default:
			break;
		}
	}
	if (!vd->common || !vd->notify_base || !vd->isr) {
		report("virtio %02x.%x: missing caps common=0x%lx notify=0x%lx isr=0x%lx", devfn >> 3, devfn & 7,
		       vd->common, vd->notify_base, vd->isr);
		return -1;
	}
	vd->has_msix = msix_init(&vd->msix, vd->devfn, vd->bases) == 0;
	return 0;
}

uint8_t virtio_status(struct vdev *vd)
{
	return vc_read8(vd, VC_STATUS);
}

int virtio_reset(struct vdev *vd)
{
	vc_write8(vd, VC_STATUS, 0);
	for (int i = 0; i < 1000; i++) {
		if (vc_read8(vd, VC_STATUS) == 0)
			return 0;
		cpu_relax();
	}
	return -1;
}

static int vq_setup(struct vdev *vd, uint16_t idx, uint8_t vector)
{
	struct vq *q = &vd->vq[idx];
	uint16_t max;

	memset(q, 0, sizeof(*q));
	memset(&rings[idx], 0, sizeof(rings[idx]));
	q->index = idx;
	q->ring = &rings[idx];
	vc_write16(vd, VC_Q_SELECT, idx);
	max = vc_read16(vd, VC_Q_SIZE);
	if (!max)
		return -1;
	q->size = max < TINY_QSIZE ? max : TINY_QSIZE;
	vc_write16(vd, VC_Q_SIZE, q->size);
	vc_write64(vd, VC_Q_DESC, (uint64_t)(uintptr_t)q->ring->desc);
	vc_write64(vd, VC_Q_DRIVER, (uint64_t)(uintptr_t)&q->ring->avail);
	vc_write64(vd, VC_Q_DEVICE, (uint64_t)(uintptr_t)&q->ring->used);
	q->vector = VIRTIO_MSI_NO_VECTOR;
	if (vector && vd->has_msix) {
		vc_write16(vd, VC_Q_MSIX, idx);
		q->vector = vc_read16(vd, VC_Q_MSIX);
		if (q->vector != idx)
			report("virtio: queue %u msix vector readback 0x%x", idx, q->vector);
	}
	q->notify = vd->notify_base + (uint64_t)vc_read16(vd, VC_Q_NOTIFY_OFF) * vd->notify_mult;
	for (uint16_t i = 0; i < q->size; i++)
		q->free[i] = (uint16_t)(q->size - 1 - i);
	q->nfree = q->size;
	vc_write16(vd, VC_Q_ENABLE, 1);
	return 0;
}

int virtio_start(struct vdev *vd, uint64_t want, uint16_t nq, const uint8_t *vectors)
{
	uint64_t host;
	uint8_t st;

	if (nq > TINY_MAX_QUEUES)
		return -1;
	if (virtio_reset(vd))
		return -2;
	vc_write8(vd, VC_STATUS, VIRTIO_S_ACKNOWLEDGE);
	vc_write8(vd, VC_STATUS, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER);
	vc_write32(vd, VC_DFSELECT, 0);
	host = vc_read32(vd, VC_DF);
	vc_write32(vd, VC_DFSELECT, 1);
	host |= (uint64_t)vc_read32(vd, VC_DF) << 32;
	if (!(host >> VIRTIO_F_VERSION_1 & 1))
		return -3;
	vd->features = host & (want | 1ull << VIRTIO_F_VERSION_1);
	vc_write32(vd, VC_GFSELECT, 0);
	vc_write32(vd, VC_GF, (uint32_t)vd->features);
	vc_write32(vd, VC_GFSELECT, 1);
	vc_write32(vd, VC_GF, (uint32_t)(vd->features >> 32));
	vc_write8(vd, VC_STATUS, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK);
	st = vc_read8(vd, VC_STATUS);
	if (!(st & VIRTIO_S_FEATURES_OK))
		return -4;
	if (nq > vc_read16(vd, VC_NUM_QUEUES))
		return -5;
	if (vd->has_msix) {
		/* like Linux: enable MSI-X before handing vectors to the device */
		for (uint16_t i = 0; i < nq && i < vd->msix.nr; i++)
			msix_set(&vd->msix, i, vectors ? vectors[i] : 0, !(vectors && vectors[i]));
		msix_enable(&vd->msix, true);
		vc_write16(vd, VC_MSIX_CONFIG, VIRTIO_MSI_NO_VECTOR);
	}
	vd->nq = nq;
	for (uint16_t i = 0; i < nq; i++)
		if (vq_setup(vd, i, vectors ? vectors[i] : 0))
			return -6;
	vc_write8(vd, VC_STATUS,
		  VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK | VIRTIO_S_DRIVER_OK);
	st = vc_read8(vd, VC_STATUS);
	if (st & (VIRTIO_S_NEEDS_RESET | VIRTIO_S_FAILED) || !(st & VIRTIO_S_DRIVER_OK))
		return -7;
	return 0;
}

int vq_add(struct vq *q, const struct vbuf *bufs, int n)
{
	struct vring_desc *d = q->ring->desc;
	uint16_t head = 0, prev = 0;

	if (n <= 0 || n > q->nfree)
		return -1;
	for (int i = 0; i < n; i++) {
		uint16_t id = q->free[--q->nfree];

		d[id].addr = (uint64_t)(uintptr_t)bufs[i].addr;
		d[id].len = bufs[i].len;
		d[id].flags = bufs[i].write ? VRING_DESC_F_WRITE : 0;
		d[id].next = 0;
		if (i == 0)
			head = id;
		else {
			d[prev].flags |= VRING_DESC_F_NEXT;
			d[prev].next = id;
		}
		prev = id;
	}
	q->chain_len[head] = (uint16_t)n;
	q->ring->avail.ring[q->avail_idx % q->size] = head;
	barrier();
	q->avail_idx++;
	*(volatile uint16_t *)&q->ring->avail.idx = q->avail_idx;
	barrier();
	return head;
}

void vq_kick(struct vq *q)
{
	barrier();
	mmio_write16(q->notify, q->index);
}

int vq_get_used(struct vq *q, uint32_t *id, uint32_t *len)
{
	volatile struct vring_used *u = &q->ring->used;
	uint32_t uid;
	uint16_t h, n;

	if (u->idx == q->last_used)
		return 0;
	barrier();
	uid = u->ring[q->last_used % q->size].id;
	if (id)
		*id = uid;
	if (len)
		*len = u->ring[q->last_used % q->size].len;
	q->last_used++;
	/* give the chain's descriptors back, following our own bookkeeping */
	if (uid < q->size && q->chain_len[uid]) {
		h = (uint16_t)uid;
		n = q->chain_len[h];
		q->chain_len[h] = 0;
		while (n-- && q->nfree < q->size) {
			uint16_t next = q->ring->desc[h].next;

			q->free[q->nfree++] = h;
			h = next;
		}
	}
	return 1;
}

int vq_wait_used(struct vq *q, uint32_t max_ticks, uint32_t *id, uint32_t *len)
{
	uint64_t deadline = ticks + max_ticks;

	for (;;) {
		cli();
		if (vq_get_used(q, id, len))
			return 1;
		if (ticks >= deadline)
			return 0;
		wait_intr();
	}
}
