/* SPDX-License-Identifier: MIT */
/*
 * virtioblk: reads sectors 0 and 1 through virtio-blk (first 16 bytes and a
 * CRC-32 of each), writes a known pattern to sector 2 and reads it back,
 * flushes when offered, and asks for the device id (GET_ID).
 */
#include "blk.h"

int main(const uint8_t *bp);

static struct vdev vd;
static uint8_t sec[512] __attribute__((aligned(512)));
static uint8_t pattern[512];
static char id[21];

static void fill_pattern(void)
{
	static const char line[] = "minivmm tiny guest wrote sector 2\n";
	size_t l = sizeof(line) - 1;

	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)line[i % l];
}

int main(const uint8_t *bp)
{
	static const uint8_t vectors[1] = { VEC_MSIX0 };
	uint64_t cap;
	uint32_t ulen = 0;
	int rc, st, bad = 0;

	(void)bp;
	intr_init();
	/* exercise the VMM's BAR move path even when the BAR is already below 4 GiB */
	pci_move_bars = !cmdline_has("keep_bars");
	if (virtio_probe(&vd, VIRTIO_DEV_BLK))
		return 2;
	rc = virtio_start(&vd, 1ull << VIRTIO_BLK_F_FLUSH, 1, vectors);
	if (rc) {
		report("FAIL blk: virtio_start step %d status=0x%x", -rc, virtio_status(&vd));
		return 2;
	}
	cap = mmio_read32(vd.device) | (uint64_t)mmio_read32(vd.device + 4) << 32;
	report("blk: found 00:%02x.%x features=0x%lx capacity=%lu qsize=%u vector=%u", vd.devfn >> 3, vd.devfn & 7,
	       vd.features, cap, vd.vq[0].size, vd.vq[0].vector);
	timer_start(10000);

	for (uint64_t s = 0; s < 2; s++) {
		char key[16];

		memset(sec, 0xaa, sizeof(sec));
		st = blk_request(&vd, VIRTIO_BLK_T_IN, s, sec, 512, 500, &ulen);
		report("blk: read sector=%lu status=%d used_len=%u", s, st, ulen);
		if (st != VIRTIO_BLK_S_OK) {
			report("FAIL blk read sector %lu", s);
			bad++;
			continue;
		}
		snprintf_tiny(key, sizeof(key), "sector%lu_head", s);
		report_hex(key, sec, 16);
		report("sector%lu_crc32=0x%08x", s, crc32(sec, 512));
	}

	fill_pattern();
	memcpy(sec, pattern, sizeof(sec));
	st = blk_request(&vd, VIRTIO_BLK_T_OUT, 2, sec, 512, 500, &ulen);
	report("blk: write sector=2 status=%d used_len=%u", st, ulen);
	if (st != VIRTIO_BLK_S_OK) {
		report("FAIL blk write sector 2");
		bad++;
	}
	if (vd.features & (1ull << VIRTIO_BLK_F_FLUSH)) {
		st = blk_request(&vd, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, 500, &ulen);
		report("blk: flush status=%d", st);
		if (st != VIRTIO_BLK_S_OK) {
			report("FAIL blk flush");
			bad++;
		}
	}
	memset(sec, 0, sizeof(sec));
	st = blk_request(&vd, VIRTIO_BLK_T_IN, 2, sec, 512, 500, &ulen);
	if (st != VIRTIO_BLK_S_OK || memcmp(sec, pattern, 512)) {
		report("FAIL blk readback sector 2 status=%d", st);
		bad++;
	} else {
		report("sector2_readback=ok crc32=0x%08x", crc32(sec, 512));
	}

	/* reading past the end must fail cleanly */
	st = blk_request(&vd, VIRTIO_BLK_T_IN, cap, sec, 512, 500, &ulen);
	report("blk: read past end sector=%lu status=%d", cap, st);
	if (st != VIRTIO_BLK_S_IOERR) {
		report("FAIL blk read past end gave status %d", st);
		bad++;
	}

	memset(id, 0, sizeof(id));
	st = blk_request(&vd, VIRTIO_BLK_T_GET_ID, 0, id, 20, 500, &ulen);
	if (st == VIRTIO_BLK_S_OK) {
		for (int i = 0; i < 20 && id[i]; i++)
			if (id[i] < 0x20 || id[i] > 0x7e)
				id[i] = '?';
		report("blk_id=%s", id);
	} else {
		report("FAIL blk GET_ID status=%d", st);
		bad++;
	}
	timer_stop();
	report("blk: irqs=%u timer_ticks=%lu status=0x%x", intr_count[VEC_MSIX0], ticks, virtio_status(&vd));
	if (!intr_count[VEC_MSIX0]) {
		report("FAIL blk: no MSI-X interrupt");
		bad++;
	}
	report("virtioblk %s", bad ? "FAIL" : "PASS");
	return bad ? 1 : 0;
}
