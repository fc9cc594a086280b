/* SPDX-License-Identifier: MIT */
/*
 * pcienum: enumerates bus 0 through CF8/CFC and through ECAM, checks both
 * paths agree byte for byte, reports each function, its BARs (sized with the
 * all-ones write, then restored) and capabilities, and finds the virtio devices.
 */
#include "tiny.h"

int main(const uint8_t *bp);

static int bad;

#define FAIL(...)                      \
	do {                           \
		report("FAIL " __VA_ARGS__); \
		bad++;                 \
	} while (0)

static void check_bars(uint8_t devfn)
{
	uint8_t dev = devfn >> 3, fn = devfn & 7;
	uint16_t cmd = pci_read16(devfn, PCI_COMMAND);
	uint32_t before[6], after[6];

	for (int i = 0; i < 6; i++)
		before[i] = pci_read32(devfn, (uint16_t)(PCI_BAR0 + 4 * i));
	/* decode off while the BARs hold all-ones */
	pci_write16(devfn, PCI_COMMAND, (uint16_t)(cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY)));
	for (int i = 0; i < 6; i++) {
		struct pci_bar_info bi;
		int used = pci_bar_probe(devfn, i, &bi);

		if (!used)
			continue;
		report("bar 00:%02x.%x/%d kind=%s addr=0x%lx size=0x%lx%s", dev, fn, i,
		       bi.io ? "io" : bi.mem64 ? "mem64" : "mem32", bi.addr, bi.size,
		       bi.prefetch ? " prefetch" : "");
		if (!bi.size || (bi.size & (bi.size - 1)))
			FAIL("bar 00:%02x.%x/%d size 0x%lx not a power of two", dev, fn, i, bi.size);
		else if (bi.addr & (bi.size - 1))
			FAIL("bar 00:%02x.%x/%d addr 0x%lx not aligned to its size", dev, fn, i, bi.addr);
		if (!bi.io && bi.size < 16)
			FAIL("bar 00:%02x.%x/%d memory BAR smaller than 16 bytes", dev, fn, i);
		if (!bi.io && bi.addr && !bi.mem64 && (bi.addr < PCI_MMIO32_BASE || bi.addr >= PCI_MMIO32_END))
			FAIL("bar 00:%02x.%x/%d outside the 32-bit window", dev, fn, i);
		if (used == 2)
			i++;
	}
	pci_write16(devfn, PCI_COMMAND, cmd);
	for (int i = 0; i < 6; i++) {
		after[i] = pci_read32(devfn, (uint16_t)(PCI_BAR0 + 4 * i));
		if (after[i] != before[i])
			FAIL("bar 00:%02x.%x/%d not restored: 0x%x -> 0x%x", dev, fn, i, before[i], after[i]);
	}
	if (pci_read16(devfn, PCI_COMMAND) != cmd)
		FAIL("00:%02x.%x command not restored", dev, fn);
}

static void check_caps(uint8_t devfn, bool virtio)
{
	uint8_t dev = devfn >> 3, fn = devfn & 7;
	unsigned int vtypes = 0, msix = 0;
	uint8_t pos;
	int guard = 48;

	if (!(pci_read16(devfn, PCI_STATUS) & PCI_STATUS_CAP_LIST)) {
		if (virtio)
			FAIL("virtio 00:%02x.%x has no capability list", dev, fn);
		return;
	}
	pos = pci_read8(devfn, PCI_CAP_PTR);
	while (pos && guard--) {
		uint8_t id, next;

		if (pos < 0x40 || (pos & 3)) {
			FAIL("00:%02x.%x bad capability pointer 0x%x", dev, fn, pos);
			return;
		}
		id = pci_read8(devfn, pos);
		next = pci_read8(devfn, (uint16_t)(pos + 1));
		if (id == PCI_CAP_ID_VNDR) {
			uint8_t type = pci_read8(devfn, (uint16_t)(pos + 3));
			uint8_t bar = pci_read8(devfn, (uint16_t)(pos + 4));
			uint32_t off = pci_read32(devfn, (uint16_t)(pos + 8));
			uint32_t len = pci_read32(devfn, (uint16_t)(pos + 12));

			report("cap 00:%02x.%x off=0x%x id=0x%x virtio_type=%u bar=%u offset=0x%x length=0x%x", dev,
			       fn, pos, id, type, bar, off, len);
			if (type < 32)
				vtypes |= 1u << type;
		} else if (id == PCI_CAP_ID_MSIX) {
			uint16_t ctl = pci_read16(devfn, (uint16_t)(pos + 2));
			uint32_t tbl = pci_read32(devfn, (uint16_t)(pos + 4));
			uint32_t pba = pci_read32(devfn, (uint16_t)(pos + 8));

			msix = (ctl & 0x7ffu) + 1;
			report("cap 00:%02x.%x off=0x%x id=0x%x msix_entries=%u table=bar%u+0x%x pba=bar%u+0x%x", dev, fn,
			       pos, id, msix, tbl & 7, tbl & ~7u, pba & 7, pba & ~7u);
		} else {
			report("cap 00:%02x.%x off=0x%x id=0x%x", dev, fn, pos, id);
		}
		pos = next;
	}
	if (guard < 0)
		FAIL("00:%02x.%x capability list loops", dev, fn);
	if (virtio) {
		for (unsigned int t = 1; t <= 4; t++)
			if (!(vtypes & (1u << t)))
				FAIL("virtio 00:%02x.%x lacks virtio cap type %u", dev, fn, t);
		if (!msix)
			FAIL("virtio 00:%02x.%x lacks MSI-X", dev, fn);
	}
}

int main(const uint8_t *bp)
{
	int nfunc = 0, nnet = 0, nblk = 0, ecam_extra = 0;
	bool host_bridge = false;

	(void)bp;
	for (int dev = 0; dev < 32; dev++) {
		int nfn = 1;

		for (int fn = 0; fn < 8; fn++) {
			uint8_t devfn = (uint8_t)(dev << 3 | fn);
			uint32_t id = pci_cf8_read(devfn, 0, 4);
			uint32_t eid = pci_ecam_read(devfn, 0, 4);
			uint32_t cls;
			uint8_t hdr;
			int diff = 0;

			if (fn >= nfn) {
				/* single-function device: ECAM must not invent functions either */
				if (eid != 0xffffffffu && eid != id)
					ecam_extra++;
				continue;
			}
			if ((id & 0xffff) == 0xffff) {
				if (eid != 0xffffffffu)
					FAIL("00:%02x.%x absent via CF8 but ECAM reads 0x%x", dev, fn, eid);
				continue;
			}
			hdr = pci_read8(devfn, PCI_HEADER_TYPE);
			if (fn == 0 && (hdr & 0x80))
				nfn = 8;
			cls = pci_read32(devfn, PCI_CLASS_REVISION) >> 8;
			nfunc++;
			report("pci 00:%02x.%x vendor=0x%04x device=0x%04x class=0x%06x hdr=0x%02x", dev, fn,
			       id & 0xffff, id >> 16, cls, hdr);
			for (uint16_t off = 0; off < 256; off += 4) {
				uint32_t a = pci_cf8_read(devfn, off, 4), b = pci_ecam_read(devfn, off, 4);

				if (a != b) {
					report("mismatch 00:%02x.%x off=0x%02x cf8=0x%08x ecam=0x%08x", dev, fn, off, a, b);
					diff++;
				}
			}
			/* sub-dword reads through both paths */
			if (pci_cf8_read(devfn, 2, 2) != pci_ecam_read(devfn, 2, 2) ||
			    pci_cf8_read(devfn, 0xe, 1) != pci_ecam_read(devfn, 0xe, 1) ||
			    pci_cf8_read(devfn, 0xb, 1) != pci_ecam_read(devfn, 0xb, 1))
				diff++;
			if (diff)
				FAIL("00:%02x.%x CF8 and ECAM disagree (%d)", dev, fn, diff);
			if (dev == 0 && fn == 0 && (cls >> 16) == 0x06)
				host_bridge = true;
			if ((hdr & 0x7f) == 0)
				check_bars(devfn);
			if ((id & 0xffff) == 0x1af4) {
				const char *kind = (id >> 16) == 0x1041 ? "net" : (id >> 16) == 0x1042 ? "blk" : "other";

				report("virtio 00:%02x.%x kind=%s", dev, fn, kind);
				if ((id >> 16) == 0x1041)
					nnet++;
				if ((id >> 16) == 0x1042)
					nblk++;
				check_caps(devfn, true);
			} else {
				check_caps(devfn, false);
			}
		}
	}
	if (ecam_extra)
		FAIL("ECAM shows %d functions CF8 does not", ecam_extra);
	if (!host_bridge)
		FAIL("no host bridge at 00:00.0");
	report("pci_functions=%d virtio_net=%d virtio_blk=%d", nfunc, nnet, nblk);
	report("pcienum %s", bad ? "FAIL" : "PASS");
	return bad ? 1 : 0;
}
