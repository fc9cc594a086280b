/* SPDX-License-Identifier: MIT */
/* PCI bus 0 config access through CF8/CFC and ECAM, BAR sizing and placement. */
#include "tiny.h"

static uint32_t cf8_addr(uint8_t devfn, uint16_t off)
{
	return 0x80000000u | (uint32_t)devfn << 8 | (off & 0xfc);
}

uint32_t pci_cf8_read(uint8_t devfn, uint16_t off, int len)
{
	uint16_t port = (uint16_t)(0xcfc + (off & 3));

	outl(0xcf8, cf8_addr(devfn, off));
	if (len == 1)
		return inb(port);
	if (len == 2)
		return inw(port);
	return inl(0xcfc);
}

void pci_cf8_write(uint8_t devfn, uint16_t off, int len, uint32_t v)
{
	uint16_t port = (uint16_t)(0xcfc + (off & 3));

	outl(0xcf8, cf8_addr(devfn, off));
	if (len == 1)
		outb(port, (uint8_t)v);
	else if (len == 2)
		outw(port, (uint16_t)v);
	else
		outl(0xcfc, v);
}

static uint64_t ecam_addr(uint8_t devfn, uint16_t off)
{
	return PCI_ECAM_BASE + ((uint64_t)devfn << 12) + (off & 0xfff);
}

uint32_t pci_ecam_read(uint8_t devfn, uint16_t off, int len)
{
	uint64_t a = ecam_addr(devfn, off);

	if (len == 1)
		return mmio_read8(a);
	if (len == 2)
		return mmio_read16(a);
	return mmio_read32(a);
}

void pci_ecam_write(uint8_t devfn, uint16_t off, int len, uint32_t v)
{
	uint64_t a = ecam_addr(devfn, off);

	if (len == 1)
		mmio_write8(a, (uint8_t)v);
	else if (len == 2)
		mmio_write16(a, (uint16_t)v);
	else
		mmio_write32(a, v);
}

int pci_bar_probe(uint8_t devfn, int bar, struct pci_bar_info *bi)
{
	uint16_t off = (uint16_t)(PCI_BAR0 + 4 * bar);
	uint32_t orig = pci_read32(devfn, off), mask;
	uint64_t mask64;
	int used = 1;

	memset(bi, 0, sizeof(*bi));
	pci_write32(devfn, off, 0xffffffffu);
	mask = pci_read32(devfn, off);
	pci_write32(devfn, off, orig);
	if (!mask || mask == 0xffffffffu)
		return 0;
	if (orig & 1) {
		bi->io = true;
		bi->addr = orig & ~3u;
		mask64 = mask & ~3u;
		mask64 |= 0xffffffff00000000ull | (mask & 0xffff0000u ? 0 : 0xffff0000u);
	} else {
		bi->addr = orig & ~0xfu;
		bi->prefetch = orig & 8;
		mask64 = (mask & ~0xfu) | 0xffffffff00000000ull;
		if ((orig & 6) == 4 && bar < 5) {
			uint32_t orig_hi = pci_read32(devfn, (uint16_t)(off + 4)), mask_hi;

			bi->mem64 = true;
			used = 2;
			pci_write32(devfn, (uint16_t)(off + 4), 0xffffffffu);
			mask_hi = pci_read32(devfn, (uint16_t)(off + 4));
			pci_write32(devfn, (uint16_t)(off + 4), orig_hi);
			bi->addr |= (uint64_t)orig_hi << 32;
			mask64 = (uint64_t)mask_hi << 32 | (mask & ~0xfu);
		}
	}
	bi->size = ~mask64 + 1;
	return used;
}

int pci_find(uint16_t vendor, uint16_t device)
{
	for (int dev = 0; dev < 32; dev++) {
		int nfn = 1;

		for (int fn = 0; fn < nfn; fn++) {
			uint8_t devfn = (uint8_t)(dev << 3 | fn);
			uint32_t id = pci_read32(devfn, PCI_VENDOR_ID);

			if ((id & 0xffff) == 0xffff)
				continue;
			if (fn == 0 && (pci_read8(devfn, PCI_HEADER_TYPE) & 0x80))
				nfn = 8;
			if ((id & 0xffff) == vendor && (id >> 16) == device)
				return devfn;
		}
	}
	return -1;
}

uint8_t pci_find_cap(uint8_t devfn, uint8_t id, uint8_t from)
{
	uint8_t pos;
	int guard = 48;

	if (!(pci_read16(devfn, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return 0;
	pos = from ? pci_read8(devfn, (uint16_t)(from + 1)) : pci_read8(devfn, PCI_CAP_PTR);
	while (pos >= 0x40 && guard--) {
		pos &= 0xfc;
		if (pci_read8(devfn, pos) == id)
			return pos;
		pos = pci_read8(devfn, (uint16_t)(pos + 1));
	}
	return 0;
}

static uint64_t mmio32_next;
bool pci_move_bars;

uint64_t pci_alloc_mmio32(uint64_t size)
{
	uint64_t a;

	if (!mmio32_next) {
		/* start above every memory BAR the VMM placed in the 32-bit window */
		mmio32_next = PCI_MMIO32_BASE;
		for (int dev = 0; dev < 32; dev++) {
			uint8_t devfn = (uint8_t)(dev << 3);
			uint16_t cmd;

			if (pci_read16(devfn, PCI_VENDOR_ID) == 0xffff)
				continue;
			if ((pci_read8(devfn, PCI_HEADER_TYPE) & 0x7f) != 0)
				continue;
			cmd = pci_read16(devfn, PCI_COMMAND);
			if (cmd & PCI_COMMAND_MEMORY)
				pci_write16(devfn, PCI_COMMAND, (uint16_t)(cmd & ~PCI_COMMAND_MEMORY));
			for (int i = 0; i < 6; i++) {
				struct pci_bar_info bi;
				int used = pci_bar_probe(devfn, i, &bi);

				if (used && !bi.io && bi.addr >= PCI_MMIO32_BASE &&
				    bi.addr + bi.size <= PCI_MMIO32_END && bi.addr + bi.size > mmio32_next)
					mmio32_next = bi.addr + bi.size;
				if (used == 2)
					i++;
			}
			if (cmd & PCI_COMMAND_MEMORY)
				pci_write16(devfn, PCI_COMMAND, cmd);
		}
		mmio32_next = ALIGN_UP(mmio32_next, 0x100000ull);
	}
	a = ALIGN_UP(mmio32_next, size);
	if (a + size > PCI_MMIO32_END - 0x10000000ull) /* keep 0xD0000000+ free as a hole */
		return 0;
	mmio32_next = a + size;
	return a;
}

int pci_enable_mem(uint8_t devfn, uint64_t bases[6])
{
	uint16_t cmd = pci_read16(devfn, PCI_COMMAND);

	pci_write16(devfn, PCI_COMMAND, (uint16_t)(cmd & ~(PCI_COMMAND_MEMORY | PCI_COMMAND_IO)));
	for (int i = 0; i < 6; i++) {
		struct pci_bar_info bi;
		int used = pci_bar_probe(devfn, i, &bi);

		bases[i] = 0;
		if (!used)
			continue;
		if (!bi.io) {
			if (!bi.addr || bi.addr + bi.size > (4ull << 30) || (pci_move_bars && bi.mem64)) {
				uint64_t a = pci_alloc_mmio32(bi.size < 0x1000 ? 0x1000 : bi.size);

				if (!a) {
					report("pci %02x.%x bar%d: no room for size 0x%lx", devfn >> 3, devfn & 7, i,
					       bi.size);
					return -1;
				}
				report("pci %02x.%x bar%d moved 0x%lx -> 0x%lx", devfn >> 3, devfn & 7, i, bi.addr, a);
				pci_write32(devfn, (uint16_t)(PCI_BAR0 + 4 * i), (uint32_t)a | (bi.mem64 ? 4 : 0) |
					    (bi.prefetch ? 8 : 0));
				if (bi.mem64)
					pci_write32(devfn, (uint16_t)(PCI_BAR0 + 4 * i + 4), 0);
				bi.addr = a;
			}
		}
		bases[i] = bi.addr;
		if (used == 2)
			bases[++i] = 0;
	}
	pci_write16(devfn, PCI_COMMAND, (uint16_t)(cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER));
	return 0;
}
