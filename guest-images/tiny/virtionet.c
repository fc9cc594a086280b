/* SPDX-License-Identifier: MIT */
/*
 * virtionet: drives virtio-net. Sends broadcast frames with ethertype 0x88b5
 * and payload "minivmm-ping-<n>" (one every 100 ms until answered) and waits
 * for a 0x88b5 frame with payload "minivmm-pong" delivered with an MSI-X
 * interrupt on the rx queue's vector. Passes only when the reply arrived and
 * at least one rx MSI-X interrupt was taken.
 */
#include "virtio.h"

int main(const uint8_t *bp);

#define VIRTIO_NET_F_MAC 5
#define NET_HDR_LEN 12 /* struct virtio_net_hdr_v1 */
#define RX_BUFS 4
#define FRAME_MAX 1514
#define ETHERTYPE_LOCAL 0x88b5
#define VEC_RX VEC_MSIX0
#define VEC_TX (VEC_MSIX0 + 1)

static uint8_t rxbuf[RX_BUFS][NET_HDR_LEN + FRAME_MAX + 2] __attribute__((aligned(64)));
static uint8_t txbuf[NET_HDR_LEN + 64] __attribute__((aligned(64)));
static int rx_head_buf[TINY_QSIZE];

static struct vdev vd;

static void rx_post(struct vq *q, int b)
{
	struct vbuf vb = { rxbuf[b], sizeof(rxbuf[b]), true };
	int head = vq_add(q, &vb, 1);

	if (head >= 0)
		rx_head_buf[head] = b;
}

static int tx_ping(struct vq *q, const uint8_t mac[6], int n)
{
	uint8_t *f = txbuf + NET_HDR_LEN;
	struct vbuf vb = { txbuf, NET_HDR_LEN + 60, false };
	int len;

	memset(txbuf, 0, sizeof(txbuf));
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	f[12] = ETHERTYPE_LOCAL >> 8;
	f[13] = ETHERTYPE_LOCAL & 0xff;
	len = snprintf_tiny((char *)f + 14, 46, "minivmm-ping-%d", n);
	(void)len;
	if (vq_add(q, &vb, 1) < 0)
		return -1;
	vq_kick(q);
	return 0;
}

int main(const uint8_t *bp)
{
	static const uint8_t vectors[2] = { VEC_RX, VEC_TX };
	struct vq *rxq, *txq;
	uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xfe, 0xed, 0x01 };
	int rc, pings = 0, tx_done = 0, rx_frames = 0, rx_other = 0;
	bool tx_busy = false, pong = false;
	uint32_t rx_irq_at_pong = 0;
	uint64_t next_ping = 0, deadline;

	(void)bp;
	intr_init();
	if (virtio_probe(&vd, VIRTIO_DEV_NET))
		return 2;
	report("net: found 00:%02x.%x common=0x%lx msix=%d entries=%u", vd.devfn >> 3, vd.devfn & 7, vd.common,
	       vd.has_msix, vd.msix.nr);
	rc = virtio_start(&vd, 1ull << VIRTIO_NET_F_MAC, 2, vectors);
	if (rc) {
		report("FAIL net: virtio_start step %d status=0x%x", -rc, virtio_status(&vd));
		return 2;
	}
	if (vd.features & (1ull << VIRTIO_NET_F_MAC))
		for (int i = 0; i < 6; i++)
			mac[i] = mmio_read8(vd.device + i);
	report("net: features=0x%lx mac=%02x:%02x:%02x:%02x:%02x:%02x rxq_size=%u txq_size=%u rx_vector=%u",
	       vd.features, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], vd.vq[0].size, vd.vq[1].size,
	       vd.vq[0].vector);
	rxq = &vd.vq[0];
	txq = &vd.vq[1];
	for (int b = 0; b < RX_BUFS; b++)
		rx_post(rxq, b);
	vq_kick(rxq);

	timer_start(10000); /* 10 ms ticks */
	deadline = ticks + 3000; /* 30 s */
	cli();
	while (!pong && ticks < deadline) {
		uint32_t id, len;

		while (vq_get_used(txq, &id, &len)) {
			tx_done++;
			tx_busy = false;
		}
		if (!tx_busy && ticks >= next_ping) {
			if (tx_ping(txq, mac, pings) == 0) {
				if (pings < 3 || pings % 50 == 0)
					report("net: tx ping %d", pings);
				pings++;
				tx_busy = true;
			}
			next_ping = ticks + 10;
		}
		while (vq_get_used(rxq, &id, &len)) {
			int b = id < TINY_QSIZE ? rx_head_buf[id] : 0;
			const uint8_t *f = rxbuf[b] + NET_HDR_LEN;

			rx_frames++;
			if (len >= NET_HDR_LEN + 14 + 12 && f[12] == (ETHERTYPE_LOCAL >> 8) &&
			    f[13] == (ETHERTYPE_LOCAL & 0xff) && !memcmp(f + 14, "minivmm-pong", 12)) {
				pong = true;
				rx_irq_at_pong = intr_count[VEC_RX];
				report("net: rx pong len=%u from=%02x:%02x:%02x:%02x:%02x:%02x", len - NET_HDR_LEN, f[6],
				       f[7], f[8], f[9], f[10], f[11]);
			} else if (rx_other++ < 5) {
				report("net: rx other len=%u ethertype=0x%02x%02x", len, f[12], f[13]);
			}
			rx_post(rxq, b);
			vq_kick(rxq);
		}
		if (!pong)
			wait_intr();
	}
	/*
	 * the pong can overtake the ping's TX completion: the VMM pushes the
	 * used entry when its write to the tap completes, and the responder may
	 * answer before the VMM's loop has seen that completion (up to 1 s)
	 */
	for (int i = 0; pong && tx_busy && i < 100; i++) {
		uint32_t id, len;

		while (vq_get_used(txq, &id, &len)) {
			tx_done++;
			tx_busy = false;
		}
		if (tx_busy)
			wait_intr();
	}
	/* give the rx interrupt for the pong a moment if we saw the ring first */
	for (int i = 0; pong && i < 20 && !intr_count[VEC_RX]; i++)
		wait_intr();
	timer_stop();
	report("net: pings_sent=%d tx_completed=%d rx_frames=%d rx_other=%d", pings, tx_done, rx_frames, rx_other);
	report("net: irq_rx=%u irq_tx=%u irq_timer=%u irq_rx_at_pong=%u status=0x%x", intr_count[VEC_RX],
	       intr_count[VEC_TX], intr_count[VEC_TIMER], rx_irq_at_pong, virtio_status(&vd));
	report("tx_ok=%d", tx_done > 0);
	report("rx_pong=%d", pong);
	report("msix_rx_irqs=%u", intr_count[VEC_RX]);
	if (pong && intr_count[VEC_RX] > 0) {
		report("virtionet PASS");
		return 0;
	}
	report("virtionet FAIL");
	return 1;
}
