/* SPDX-License-Identifier: MIT */
/*
 * junk: a hostile guest. Pokes unmapped MMIO holes and odd ports, writes
 * garbage into PCI config space (IDs, capability pointers, BARs, ECAM
 * offsets and functions that do not exist), then feeds virtio-blk broken
 * rings: a descriptor loop, a buffer outside RAM, a chain longer than the
 * queue, an out-of-range next index, an avail index far ahead, rings outside
 * RAM, a bad queue size and a bad MSI-X address. After each attack the device
 * must show DEVICE_NEEDS_RESET or still answer; it is reset and must serve a
 * good read again. Reports "alive" and exits 0 when the VMM survived it all.
 */
#include "blk.h"

int main(const uint8_t *bp);

#define VEC_CFG (VEC_MSIX0 + 1)

static struct vdev vd;
static uint8_t sec[512] __attribute__((aligned(512)));
static uint32_t good_crc;
static struct blk_req_hdr jhdr;
static volatile uint8_t jstatus;
static int bad;

#define FAIL(...)                      \
	do {                           \
		report("FAIL " __VA_ARGS__); \
		bad++;                 \
	} while (0)

static void wild_mmio(void)
{
	static const uint64_t holes[] = { 0xD0000000ull, 0xDFFFF000ull, 0xFED00000ull, 0xFEBFF000ull,
					  0xE0100000ull, 0xE0FFFFFCull, 0xFFFFF000ull };

	for (unsigned int i = 0; i < ARRAY_SIZE(holes); i++) {
		uint64_t a = holes[i];
		uint32_t v1 = mmio_read32(a);

		mmio_write32(a, 0xdeadbeef);
		mmio_write8(a + 1, 0x5a);
		mmio_write16(a + 2, 0xa5a5);
		mmio_write64(a & ~7ull, 0x0123456789abcdefull);
		report("junk mmio addr=0x%lx read=0x%x after_write=0x%x read8=0x%x read64=0x%lx", a, v1,
		       mmio_read32(a), mmio_read8(a + 3), mmio_read64(a & ~7ull));
	}
	/* unclaimed ports, and the config data port with the enable bit off */
	outb(0x1234, 0x55);
	outw(0x1236, 0x5555);
	outl(0x1238, 0x55555555);
	outl(0xcf8, 0x00000000);
	report("junk pio in1234=0x%x in1238=0x%x cfc_disabled=0x%x", inb(0x1234), inl(0x1238), inl(0xcfc));
	outb(0xcfc, 0x11);
	/* CF8 naming a bus that does not exist and a byte write to CF8 */
	outl(0xcf8, 0x80050000u);
	report("junk pio bus5=0x%x", inl(0xcfc));
	outl(0xcfc, 0x12345678);
	outb(0xcf8, 0x42);
	outw(0xcfa, 0x4242);
	report("junk pio cf8_after_byte_writes=0x%x", inl(0xcf8));
}

static void check_ro(uint8_t devfn, uint16_t off, int len, const char *what)
{
	uint32_t before = pci_cf8_read(devfn, off, len), after_cf8, after_ecam;

	pci_cf8_write(devfn, off, len, 0xdeadbeef);
	after_cf8 = pci_cf8_read(devfn, off, len);
	pci_ecam_write(devfn, off, len, 0xcafef00d);
	after_ecam = pci_ecam_read(devfn, off, len);
	report("junk cfg %02x.%x %s before=0x%x after_cf8=0x%x after_ecam=0x%x", devfn >> 3, devfn & 7, what, before,
	       after_cf8, after_ecam);
	if (after_cf8 != before || after_ecam != before)
		FAIL("read-only config %s of %02x.%x changed", what, devfn >> 3, devfn & 7);
}

static void bad_config(uint8_t devfn)
{
	uint32_t bars[6], v;
	uint16_t cmd = pci_read16(devfn, PCI_COMMAND);
	uint8_t msix = pci_find_cap(devfn, PCI_CAP_ID_MSIX, 0);

	check_ro(0, PCI_VENDOR_ID, 4, "host-bridge-ids");
	check_ro(devfn, PCI_VENDOR_ID, 4, "ids");
	check_ro(devfn, PCI_VENDOR_ID, 2, "vendor");
	check_ro(devfn, PCI_CLASS_REVISION, 4, "class");
	check_ro(devfn, PCI_HEADER_TYPE, 1, "header-type");
	check_ro(devfn, PCI_CAP_PTR, 1, "cap-ptr");
	if (msix)
		check_ro(devfn, (uint16_t)(msix + 1), 1, "msix-next");

	/* BAR garbage with decode off, then decode on over RAM and over the ECAM */
	for (int i = 0; i < 6; i++)
		bars[i] = pci_read32(devfn, (uint16_t)(PCI_BAR0 + 4 * i));
	pci_write16(devfn, PCI_COMMAND, (uint16_t)(cmd & ~(PCI_COMMAND_MEMORY | PCI_COMMAND_IO)));
	for (int i = 0; i < 6; i++)
		pci_write32(devfn, (uint16_t)(PCI_BAR0 + 4 * i), 0x12345678u * (uint32_t)(i + 1));
	pci_write16(devfn, PCI_COMMAND, (uint16_t)(cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_IO));
	report("junk cfg bar-garbage bar0=0x%x bar1=0x%x bar4=0x%x bar5=0x%x", pci_read32(devfn, PCI_BAR0),
	       pci_read32(devfn, PCI_BAR0 + 4), pci_read32(devfn, PCI_BAR0 + 16), pci_read32(devfn, PCI_BAR0 + 20));
	pci_write16(devfn, PCI_COMMAND, (uint16_t)(cmd & ~PCI_COMMAND_MEMORY));
	for (int i = 0; i < 6; i++)
		pci_write32(devfn, (uint16_t)(PCI_BAR0 + 4 * i), 0);
	pci_write32(devfn, PCI_BAR0, 0x00200000); /* guest RAM */
	pci_write16(devfn, PCI_COMMAND, (uint16_t)(cmd | PCI_COMMAND_MEMORY));
	v = mmio_read32(0x00200000);
	report("junk cfg bar-over-ram read=0x%x", v);
	pci_write16(devfn, PCI_COMMAND, (uint16_t)(cmd & ~PCI_COMMAND_MEMORY));
	pci_write32(devfn, PCI_BAR0, (uint32_t)PCI_ECAM_BASE); /* over the ECAM window */
	pci_write16(devfn, PCI_COMMAND, (uint16_t)(cmd | PCI_COMMAND_MEMORY));
	report("junk cfg bar-over-ecam ecam_id=0x%x", pci_ecam_read(0, 0, 4));
	pci_write16(devfn, PCI_COMMAND, (uint16_t)(cmd & ~PCI_COMMAND_MEMORY));
	for (int i = 0; i < 6; i++)
		pci_write32(devfn, (uint16_t)(PCI_BAR0 + 4 * i), bars[i]);
	pci_write16(devfn, PCI_COMMAND, cmd);
	for (int i = 0; i < 6; i++)
		if (pci_read32(devfn, (uint16_t)(PCI_BAR0 + 4 * i)) != bars[i])
			FAIL("bar%d not restored", i);

	/* ECAM: extended space, unaligned and wide accesses, absent functions */
	for (uint16_t off = 0x100; off < 0x1000; off += 0x3fc)
		pci_ecam_write(devfn, off, 4, 0xffffffff);
	report("junk ecam ext=0x%x ext_last=0x%x", pci_ecam_read(devfn, 0x100, 4), pci_ecam_read(devfn, 0xffc, 4));
	v = mmio_read32(PCI_ECAM_BASE + ((uint64_t)devfn << 12) + 2);
	mmio_write32(PCI_ECAM_BASE + ((uint64_t)devfn << 12) + 0x3e, 0xffffffff);
	mmio_write64(PCI_ECAM_BASE + ((uint64_t)devfn << 12) + 0x10, 0xffffffffffffffffull);
	report("junk ecam unaligned=0x%x wide=0x%lx", v, mmio_read64(PCI_ECAM_BASE + ((uint64_t)devfn << 12)));
	pci_ecam_write((31 << 3) | 7, 0, 4, 0);
	pci_ecam_write((31 << 3) | 7, 4, 2, 7);
	v = pci_ecam_read((31 << 3) | 7, 0, 4);
	if (v != 0xffffffffu)
		FAIL("absent function 1f.7 reads 0x%x", v);
	/* the wide write above hit BAR0/1 with decode on: put everything back */
	pci_write16(devfn, PCI_COMMAND, (uint16_t)(cmd & ~PCI_COMMAND_MEMORY));
	for (int i = 0; i < 6; i++)
		pci_write32(devfn, (uint16_t)(PCI_BAR0 + 4 * i), bars[i]);
	pci_write16(devfn, PCI_COMMAND, cmd);

	/* MSI-X message control garbage */
	if (msix) {
		uint16_t ctl = pci_read16(devfn, (uint16_t)(msix + 2));

		pci_write16(devfn, (uint16_t)(msix + 2), 0xffff);
		report("junk cfg msix-ctl before=0x%x after=0x%x", ctl, pci_read16(devfn, (uint16_t)(msix + 2)));
		if ((pci_read16(devfn, (uint16_t)(msix + 2)) & 0x7ff) != (ctl & 0x7ff))
			FAIL("msix table size changed");
		pci_write16(devfn, (uint16_t)(msix + 2), ctl);
	}
}

/* starts the device with queue 0 on VEC_MSIX0 and config changes on VEC_CFG */
static int blk_start(void)
{
	static const uint8_t vectors[1] = { VEC_MSIX0 };
	int rc = virtio_start(&vd, 0, 1, vectors);

	if (rc)
		return rc;
	if (vd.has_msix && vd.msix.nr > 1) {
		msix_set(&vd.msix, 1, VEC_CFG, false);
		vc_write16(&vd, VC_MSIX_CONFIG, 1);
	}
	return 0;
}

static int good_read(uint32_t *crc)
{
	uint32_t ulen = 0;
	int st;

	memset(sec, 0, sizeof(sec));
	st = blk_request(&vd, VIRTIO_BLK_T_IN, 0, sec, 512, 300, &ulen);
	if (st != VIRTIO_BLK_S_OK)
		return -1;
	*crc = crc32(sec, 512);
	return 0;
}

static void post(struct vq *q, uint16_t head)
{
	q->ring->avail.ring[q->avail_idx % q->size] = head;
	barrier();
	q->avail_idx++;
	*(volatile uint16_t *)&q->ring->avail.idx = q->avail_idx;
	vq_kick(q);
}

static void set_desc(struct vq *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc *d = &q->ring->desc[i];

	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

static void req_hdr_in(void)
{
	jhdr.type = VIRTIO_BLK_T_IN;
	jhdr.reserved = 0;
	jhdr.sector = 0;
	jstatus = BLK_NO_STATUS;
}

#define HDR ((uint64_t)(uintptr_t)&jhdr)
#define STS ((uint64_t)(uintptr_t)&jstatus)
#define SEC ((uint64_t)(uintptr_t)sec)

static void attack_loop(struct vq *q)
{
	req_hdr_in();
	set_desc(q, 0, HDR, 16, VRING_DESC_F_NEXT, 1);
	set_desc(q, 1, SEC, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 0);
	post(q, 0);
}

static void attack_outside_ram(struct vq *q)
{
	req_hdr_in();
	set_desc(q, 0, HDR, 16, VRING_DESC_F_NEXT, 1);
	set_desc(q, 1, 0x700000000ull, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	set_desc(q, 2, STS, 1, VRING_DESC_F_WRITE, 0);
	post(q, 0);
}

static void attack_long_chain(struct vq *q)
{
	req_hdr_in();
	set_desc(q, 0, HDR, 16, VRING_DESC_F_NEXT, 1);
	for (uint16_t i = 1; i < q->size; i++)
		set_desc(q, i, SEC + 32u * (i - 1), 32, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
			 (uint16_t)((i + 1) % q->size));
	post(q, 0);
}

static void attack_bad_next(struct vq *q)
{
	req_hdr_in();
	set_desc(q, 0, HDR, 16, VRING_DESC_F_NEXT, 0x7fff);
	post(q, 0);
}

static void attack_bad_head(struct vq *q)
{
	req_hdr_in();
	post(q, 0xfff0);
}

static void attack_avail_jump(struct vq *q)
{
	req_hdr_in();
	set_desc(q, 0, HDR, 16, VRING_DESC_F_NEXT, 1);
	set_desc(q, 1, STS, 1, VRING_DESC_F_WRITE, 0);
	for (uint16_t i = 0; i < q->size; i++)
		q->ring->avail.ring[i] = 0;
	q->avail_idx = (uint16_t)(q->avail_idx + 1000);
	*(volatile uint16_t *)&q->ring->avail.idx = q->avail_idx;
	vq_kick(q);
}

static void attack_huge_len(struct vq *q)
{
	req_hdr_in();
	set_desc(q, 0, HDR, 16, VRING_DESC_F_NEXT, 1);
	set_desc(q, 1, 0x100000, 0xfffffe00u, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	set_desc(q, 2, STS, 1, VRING_DESC_F_WRITE, 0);
	post(q, 0);
}

static void attack_header_only(struct vq *q)
{
	req_hdr_in();
	set_desc(q, 0, HDR, 4, 0, 0); /* short, no status byte */
	post(q, 0);
}

static void attack_bad_notify(struct vq *q)
{
	/* notify a queue that does not exist, then write junk over the notify area */
	mmio_write16(vd.notify_base, 77);
	mmio_write32(vd.notify_base + 0x40, 0xffffffff);
	mmio_write16(q->notify, 0xffff);
	/* and the ISR and common config at odd places and widths */
	mmio_write8(vd.isr, 0xff);
	mmio_write64(vd.common + VC_Q_DESC, 0x700000000ull);
	vc_write16(&vd, VC_Q_SELECT, 100);
	report("junk attack=bad_notify q100_size=%u", vc_read16(&vd, VC_Q_SIZE));
	vc_write16(&vd, VC_Q_SIZE, 3);
	vc_write16(&vd, VC_Q_ENABLE, 1);
	vc_write32(&vd, 0x38, 0xffffffff); /* beyond the common structure */
}

typedef void (*attack_fn)(struct vq *q);

static void run_attack(const char *name, attack_fn fn)
{
	struct vq *q = &vd.vq[0];
	uint16_t used_before = q->ring->used.idx;
	uint32_t cfg_irqs = intr_count[VEC_CFG];
	uint64_t deadline;
	uint8_t st = 0;
	const char *outcome = "no_response";
	uint32_t crc = 0;
	int rc;

	fn(q);
	deadline = ticks + 50;
	cli();
	while (ticks < deadline) {
		st = virtio_status(&vd);
		if (st & VIRTIO_S_NEEDS_RESET) {
			outcome = "needs_reset";
			break;
		}
		if (*(volatile uint16_t *)&q->ring->used.idx != used_before) {
			outcome = "completed";
			break;
		}
		wait_intr();
	}
	/* the NEEDS_RESET config interrupt may still be pending behind our cli */
	for (int i = 0; i < 5 && !strncmp(outcome, "needs_reset", 11) && intr_count[VEC_CFG] == cfg_irqs; i++)
		wait_intr();
	st = virtio_status(&vd);
	report("junk attack=%s outcome=%s device_status=0x%x blk_status=0x%x used=%u cfg_irqs=%u", name, outcome, st,
	       jstatus, (uint16_t)(q->ring->used.idx - used_before), intr_count[VEC_CFG] - cfg_irqs);
	if (st == 0xff)
		FAIL("attack %s: device no longer answers", name);

	rc = blk_start();
	if (rc) {
		FAIL("attack %s: restart failed at step %d status=0x%x", name, -rc, virtio_status(&vd));
		return;
	}
	if (good_read(&crc) || crc != good_crc)
		FAIL("attack %s: good read after reset failed (crc 0x%x want 0x%x)", name, crc, good_crc);
	else
		report("junk attack=%s recovered=1", name);
}

static void attack_rings_outside_ram(void)
{
	uint8_t st;
	uint32_t crc = 0;
	int rc;

	virtio_reset(&vd);
	vc_write8(&vd, VC_STATUS, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER);
	vc_write32(&vd, VC_GFSELECT, 1);
	vc_write32(&vd, VC_GF, 1); /* VERSION_1 */
	vc_write8(&vd, VC_STATUS, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK);
	vc_write16(&vd, VC_Q_SELECT, 0);
	vc_write16(&vd, VC_Q_SIZE, 8);
	vc_write64(&vd, VC_Q_DESC, 0x700000000ull);
	vc_write64(&vd, VC_Q_DRIVER, 0x700001000ull);
	vc_write64(&vd, VC_Q_DEVICE, 0xfffffffffffff000ull);
	vc_write16(&vd, VC_Q_ENABLE, 1);
	vc_write8(&vd, VC_STATUS,
		  VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK | VIRTIO_S_DRIVER_OK);
	mmio_write16(vd.notify_base + (uint64_t)vc_read16(&vd, VC_Q_NOTIFY_OFF) * vd.notify_mult, 0);
	for (int i = 0; i < 10; i++)
		wait_intr();
	st = virtio_status(&vd);
	report("junk attack=rings_outside_ram device_status=0x%x", st);
	if (st == 0xff)
		FAIL("rings_outside_ram: device no longer answers");
	rc = blk_start();
	if (rc || good_read(&crc) || crc != good_crc)
		FAIL("rings_outside_ram: no recovery (rc %d)", rc);
	else
		report("junk attack=rings_outside_ram recovered=1");
}

/* lets interrupts that are pending behind cli come in */
static void drain_intr(void)
{
	for (int i = 0; i < 3; i++)
		wait_intr();
}

static void attack_msix_bad_addr(void)
{
	uint32_t irqs = intr_count[VEC_MSIX0], crc = 0;
	uint64_t e = vd.msix.table;

	if (!vd.has_msix)
		return;
	drain_intr();
	irqs = intr_count[VEC_MSIX0];
	/* an MSI address outside the APIC window, and writes past the table */
	mmio_write32(e, 0xdead0000u);
	mmio_write32(e + 16ull * vd.msix.nr + 0, 0xffffffff);
	mmio_write32(e + 16ull * vd.msix.nr + 12, 0);
	if (good_read(&crc) || crc != good_crc)
		FAIL("msix_bad_addr: read failed");
	drain_intr();
	report("junk attack=msix_bad_addr irqs_delta=%u", intr_count[VEC_MSIX0] - irqs);
	msix_set(&vd.msix, 0, VEC_MSIX0, false);
	irqs = intr_count[VEC_MSIX0];
	if (good_read(&crc) || crc != good_crc)
		FAIL("msix_bad_addr: read after fix failed");
	drain_intr();
	report("junk attack=msix_bad_addr recovered=1 irqs_delta=%u", intr_count[VEC_MSIX0] - irqs);
}

int main(const uint8_t *bp)
{
	int devfn, rc;

	(void)bp;
	intr_init();
	timer_start(10000);
	report("junk: wild mmio and pio");
	wild_mmio();

	devfn = pci_find(VIRTIO_VENDOR, VIRTIO_DEV_BLK);
	if (devfn < 0) {
		report("FAIL junk: needs a virtio-blk disk");
		return 2;
	}
	report("junk: bad config writes on 00:%02x.%x", devfn >> 3, devfn & 7);
	bad_config((uint8_t)devfn);

	if (virtio_probe(&vd, VIRTIO_DEV_BLK))
		return 2;
	rc = blk_start();
	if (rc) {
		report("FAIL junk: virtio start step %d", -rc);
		return 2;
	}
	if (good_read(&good_crc)) {
		report("FAIL junk: baseline read");
		return 2;
	}
	report("junk: baseline sector0 crc32=0x%08x", good_crc);

	run_attack("desc_loop", attack_loop);
	run_attack("desc_outside_ram", attack_outside_ram);
	run_attack("chain_longer_than_queue", attack_long_chain);
	run_attack("next_out_of_range", attack_bad_next);
	run_attack("head_out_of_range", attack_bad_head);
	run_attack("avail_idx_jump", attack_avail_jump);
	run_attack("huge_len", attack_huge_len);
	run_attack("header_only", attack_header_only);
	run_attack("bad_notify", attack_bad_notify);
	attack_rings_outside_ram();
	attack_msix_bad_addr();

	timer_stop();
	report("junk: failures=%d timer_ticks=%lu blk_irqs=%u cfg_irqs=%u", bad, ticks, intr_count[VEC_MSIX0],
	       intr_count[VEC_CFG]);
	report("alive");
	return bad ? 1 : 0;
}
