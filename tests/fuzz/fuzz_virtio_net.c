// SPDX-License-Identifier: MIT
/*
 * virtio-net (virtio/net/net.c) on a fake VM behind a fake packet backend:
 * the guest's transmit chains (virtio-net header, then the frame), receive
 * buffers with and without MRG_RXBUF, and control-queue commands, driven
 * through the real virtio-pci transport.
 *
 * Input: u64 features the driver accepts (masked by the offer), the three
 * queues' descriptor tables and avail rings (FV_QSIZE entries each), the
 * data area the descriptors point into, then a program of one-byte ops:
 *   0 kick TX     1 complete the oldest TX (u8: 0 ok, else -EIO)
 *   2 receive a frame (u16 length, then its bytes; header included)
 *   3 kick RX     4 kick the control queue   5 publish u8 more avail
 *     entries on queue u8 % 3   6 announce   7 reset and initialise again
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_virtio.h"
#include "virtio/net/net.h"

#define MAX_TX 64

struct fake_be {
	struct net_backend be;
	const struct net_backend_cbs *cbs;
	void *opaque;
	uint32_t tokens[MAX_TX];
	int results[MAX_TX];
	unsigned int ntx;
};

static struct vm vm;
static struct virtio_net *net;
static struct virtio_dev *vd;
static struct fake_be fake;
static uint8_t sink[65536 + 64];
static uint8_t frame[65536 + 64];

static int fake_start(struct net_backend *b, const struct net_backend_cbs *cbs, void *opaque)
{
	fake.cbs = cbs;
	fake.opaque = opaque;
	return 0;
}

static int fake_tx(struct net_backend *b, const struct iovec *iov, int cnt, uint32_t token)
{
	size_t len = 0;
	int i;

	if (fake.ntx == MAX_TX)
		return -EBUSY;
	for (i = 0; i < cnt; i++) {
		size_t k = iov[i].iov_len;

		if (len + k > sizeof(sink))
			k = sizeof(sink) - len;
		memcpy(sink + len, iov[i].iov_base, k); /* every byte the device hands on is read */
		len += k;
	}
	fake.results[fake.ntx] = (int)len;
	fake.tokens[fake.ntx++] = token;
	return 0;
}

static void fake_rx_resume(struct net_backend *b) {}
static int fake_set_hdr(struct net_backend *b, unsigned int len)
{
	return 0;
}
static int fake_set_offloads(struct net_backend *b, uint64_t f)
{
	return 0;
}
static void fake_stop(struct net_backend *b) {}
static void fake_destroy(struct net_backend *b) {}

static const struct net_backend_ops fake_ops = {
    .start = fake_start,
    .tx = fake_tx,
    .rx_resume = fake_rx_resume,
    .set_vnet_hdr_len = fake_set_hdr,
    .set_offloads = fake_set_offloads,
    .stop = fake_stop,
    .destroy = fake_destroy,
};

static void complete_one(int err)
{
	uint32_t token;
	int res;

	if (!fake.ntx)
		return;
	token = fake.tokens[0];
	res = err ? err : fake.results[0];
	fake.ntx--;
	memmove(fake.tokens, fake.tokens + 1, fake.ntx * sizeof(fake.tokens[0]));
	memmove(fake.results, fake.results + 1, fake.ntx * sizeof(fake.results[0]));
	fake.cbs->tx_done(fake.opaque, token, res);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct virtio_net_config cfg = {0};

	fuzz_quiet();
	fake.be.ops = &fake_ops;
	fake.be.kind = "fake";
	if (kvm__vm_init_fake(&vm, 16 * MiB))
		abort();
	cfg.name = "virtio-net-fuzz";
	cfg.has_mac = true;
	cfg.failover = true;
	memcpy(cfg.mac, (uint8_t[]){0x52, 0x54, 0, 0xab, 0xcd, 0xef}, 6);
	if (virtio_net__create_with_backend(&vm, &cfg, &fake.be, &net))
		abort();
	vd = virtio_net__vdev(net);
	fv_enable(&vm, vd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *area = mem__gpa_to_hva(&vm.mem, FV_DATA_GPA, FV_DATA_SIZE);
	struct fuzz_in in;
	uint64_t features;
	unsigned int steps = 0;
	uint16_t q;

	fuzz_in_init(&in, data, size);
	features = fuzz_u64(&in);
	for (q = 0; q < 3; q++)
		fv_fill_ring(&vm, &in, q);
	fuzz_bytes(&in, area, 0x800); /* headers and small frames; the rest stays as it was */
	if (!fv_driver_init(&vm, vd, features, 3))
		goto out;

	while (!fuzz_empty(&in) && steps++ < 256) {
		uint8_t op = fuzz_u8(&in);

		switch (op % 8) {
		case 0:
			fv_kick(&vm, vd, VIRTIO_NET_TXQ);
			break;
		case 1:
			complete_one(fuzz_u8(&in) ? -EIO : 0);
			break;
		case 2: {
			size_t len = fuzz_u16(&in) % (sizeof(frame) - 64), got;
			const uint8_t *p = fuzz_take(&in, len, &got);

			memcpy(frame, p, got);
			memset(frame + got, 0xa5, len - got);
			if (fake.cbs)
				(void)fake.cbs->rx(fake.opaque, frame, len);
			break;
		}
		case 3:
			fv_kick(&vm, vd, VIRTIO_NET_RXQ);
			break;
		case 4:
			fv_kick(&vm, vd, VIRTIO_NET_CTRLQ);
			break;
		case 5: {
			uint8_t n = fuzz_u8(&in);

			fv_publish(&vm, fuzz_u8(&in) % 3, n);
			break;
		}
		case 6:
			(void)virtio_net__announce(net);
			break;
		case 7:
			fv_reset(&vm, vd);
			if (!fv_driver_init(&vm, vd, features, 3))
				goto out;
			break;
		}
	}
out:
	/* the backend finishes what it was given (tx_done after stop), then the driver resets */
	while (fake.ntx)
		complete_one(0);
	fv_reset(&vm, vd);
	return 0;
}
