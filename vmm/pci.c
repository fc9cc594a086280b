// SPDX-License-Identifier: MIT
/*
 * PCI bus 0. The bus owns the header semantics: per-byte writable and
 * write-1-to-clear masks, BAR sizing, and decode state. A BAR is live
 * ("active") when its decode bit is set in COMMAND and its address is a valid
 * one; every change of that state calls the device's bar_unmap/bar_map.
 */
#include "vmm/pci.h"
#include "migration/section.h"
#include "vmm/bus.h"
#include "vmm/log.h"

#include <errno.h>
#include <linux/pci_regs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCI_LOG "pci"
#define PCI_HOST_VENDOR 0x8086
#define PCI_HOST_DEVICE 0x0d57

static struct log_ratelimit pci_rl = LOG_RATELIMIT_INIT;

static bool pci_bar_is_upper(const struct pci_dev *d, int bar)
{
	return bar > 0 && d->bars[bar - 1].size && (d->bars[bar - 1].flags & PCI_BAR_F_MEM64);
}

static uint64_t pci_bar_read_addr(const struct pci_dev *d, int bar)
{
	uint32_t off = PCI_BASE_ADDRESS_0 + 4 * bar;
	uint64_t addr;

	if (d->bars[bar].flags & PCI_BAR_F_IO)
		return pci__cfg_rd32(d, off) & PCI_BASE_ADDRESS_IO_MASK;
	addr = pci__cfg_rd32(d, off) & PCI_BASE_ADDRESS_MEM_MASK;
	if (d->bars[bar].flags & PCI_BAR_F_MEM64)
		addr |= (uint64_t)pci__cfg_rd32(d, off + 4) << 32;
	return addr;
}

static bool pci_bar_should_decode(const struct pci_dev *d, int bar, uint64_t addr)
{
	const struct pci_bar *b = &d->bars[bar];
	uint16_t cmd = pci__cfg_rd16(d, PCI_COMMAND);
	uint64_t end;

	if (!b->size)
		return false;
	if (b->flags & PCI_BAR_F_IO) {
		if (!(cmd & PCI_COMMAND_IO))
			return false;
		/* no legacy-range or wrapping I/O BARs */
		return addr >= 0x1000 && addr + b->size <= 0x10000;
	}
	if (!(cmd & PCI_COMMAND_MEMORY))
		return false;
	if (!addr || add_overflows(addr, b->size, &end))
		return false;
	/* an address left over from sizing (all ones) is not a place to decode at */
	return (addr | (b->size - 1)) != (b->flags & PCI_BAR_F_MEM64 ? ~0ULL : 0xffffffffULL);
}

/* bring BAR `bar` to the state its registers and COMMAND ask for */
static void pci_bar_update(struct pci_dev *d, int bar)
{
	struct pci_bar *b = &d->bars[bar];
	uint64_t addr = pci_bar_read_addr(d, bar);
	bool want = pci_bar_should_decode(d, bar, addr);
	int ret;

	if (b->active && (!want || addr != b->addr)) {
		if (d->ops && d->ops->bar_unmap)
			d->ops->bar_unmap(d, bar, b->addr);
		b->active = false;
	}
	b->addr = addr;
	if (want && !b->active) {
		ret = d->ops && d->ops->bar_map ? d->ops->bar_map(d, bar, addr) : 0;
		if (ret)
			log_err_rl(&pci_rl, d->name, "cannot decode BAR%d at %#llx: %s", bar,
				   (unsigned long long)addr, strerror(-ret));
		else
			b->active = true;
	}
}

static void pci_update_all_bars(struct pci_dev *d)
{
	int i;

	for (i = 0; i < PCI_NUM_BARS; i++)
		if (d->bars[i].size)
			pci_bar_update(d, i);
}

void pci__dev_set_wmask(struct pci_dev *d, uint32_t off, uint32_t len, uint8_t mask)
{
	if (off >= PCI_CFG_SPACE_EXP_SIZE)
		return;
	if (len > PCI_CFG_SPACE_EXP_SIZE - off)
		len = PCI_CFG_SPACE_EXP_SIZE - off;
	memset(&d->wmask[off], mask, len);
}

void pci__dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		   uint32_t class_code, uint16_t subsys_vendor, uint16_t subsys_id,
		   uint8_t revision, const struct pci_dev_ops *ops)
{
	memset(d->cfg, 0, sizeof(d->cfg));
	memset(d->wmask, 0, sizeof(d->wmask));
	memset(d->w1cmask, 0, sizeof(d->w1cmask));
	memset(d->bars, 0, sizeof(d->bars));
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->ops = ops;
	d->devfn = -1;
	d->last_cap = 0;
	d->next_cap = 0x40;
	pci__cfg_wr16(d, PCI_VENDOR_ID, vendor);
	pci__cfg_wr16(d, PCI_DEVICE_ID, device);
	pci__cfg_wr8(d, PCI_REVISION_ID, revision);
	pci__cfg_wr8(d, PCI_CLASS_PROG, (uint8_t)class_code);
	pci__cfg_wr16(d, PCI_CLASS_DEVICE, (uint16_t)(class_code >> 8));
	pci__cfg_wr8(d, PCI_HEADER_TYPE, PCI_HEADER_TYPE_NORMAL);
	pci__cfg_wr16(d, PCI_SUBSYSTEM_VENDOR_ID, subsys_vendor);
	pci__cfg_wr16(d, PCI_SUBSYSTEM_ID, subsys_id);
	/* COMMAND: I/O, memory, bus master, parity, SERR, INTx disable */
	pci__cfg_wr16(d, PCI_COMMAND + 0, 0);
	d->wmask[PCI_COMMAND] = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
				PCI_COMMAND_PARITY;
	d->wmask[PCI_COMMAND + 1] = (PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE) >> 8;
	/* STATUS: error bits are write-1-to-clear */
	d->w1cmask[PCI_STATUS + 1] = (PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT |
				      PCI_STATUS_REC_TARGET_ABORT | PCI_STATUS_REC_MASTER_ABORT |
				      PCI_STATUS_SIG_SYSTEM_ERROR | PCI_STATUS_DETECTED_PARITY) >> 8;
	d->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
	d->wmask[PCI_LATENCY_TIMER] = 0xff;
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
}

int pci__dev_add_bar(struct pci_dev *d, int bar, uint64_t size, uint32_t flags)
{
	uint32_t off = PCI_BASE_ADDRESS_0 + 4 * (uint32_t)bar;
	uint64_t mask;
	uint32_t low;

	if (bar < 0 || bar >= PCI_NUM_BARS || d->bars[bar].size || pci_bar_is_upper(d, bar))
		return -EINVAL;
	if ((flags & PCI_BAR_F_MEM64) && (bar == PCI_NUM_BARS - 1 || (flags & PCI_BAR_F_IO)))
		return -EINVAL;
	if (!size || ((flags & PCI_BAR_F_IO) && size > 256) || size > (1ULL << 40))
		return -EINVAL;
	if (size & (size - 1))
		size = 1ULL << (64 - __builtin_clzll(size));
	if (flags & PCI_BAR_F_IO)
		size = MAX(size, 4);
	else
		size = MAX(size, 4096); /* page granular so BARs can be mmapped */
	d->bars[bar] = (struct pci_bar){ .size = size, .flags = flags };
	mask = ~(size - 1);
	if (flags & PCI_BAR_F_IO) {
		low = PCI_BASE_ADDRESS_SPACE_IO;
		pci__cfg_wr32(d, off, low);
		pci__dev_set_wmask(d, off, 4, 0);
		d->wmask[off] = (uint8_t)(mask & 0xfc);
		d->wmask[off + 1] = (uint8_t)(mask >> 8);
		d->wmask[off + 2] = 0xff;
		d->wmask[off + 3] = 0xff;
		return 0;
	}
	low = PCI_BASE_ADDRESS_SPACE_MEMORY;
	if (flags & PCI_BAR_F_MEM64)
		low |= PCI_BASE_ADDRESS_MEM_TYPE_64;
	if (flags & PCI_BAR_F_PREFETCH)
		low |= PCI_BASE_ADDRESS_MEM_PREFETCH;
	pci__cfg_wr32(d, off, low);
	d->wmask[off] = (uint8_t)(mask & 0xf0);
	d->wmask[off + 1] = (uint8_t)(mask >> 8);
	d->wmask[off + 2] = (uint8_t)(mask >> 16);
	d->wmask[off + 3] = (uint8_t)(mask >> 24);
	if (flags & PCI_BAR_F_MEM64) {
		pci__cfg_wr32(d, off + 4, 0);
		d->wmask[off + 4] = (uint8_t)(mask >> 32);
		d->wmask[off + 5] = (uint8_t)(mask >> 40);
		d->wmask[off + 6] = (uint8_t)(mask >> 48);
		d->wmask[off + 7] = (uint8_t)(mask >> 56);
	}
	return 0;
}

int pci__dev_add_cap(struct pci_dev *d, uint8_t cap_id, const void *body, uint32_t body_len)
{
	uint32_t off = d->next_cap;
	uint32_t total = ALIGN_UP(body_len + 2, 4u);

	if (off < 0x40 || off + total > PCI_CFG_SPACE_SIZE)
		return -ENOSPC;
	d->cfg[off] = cap_id;
	d->cfg[off + 1] = 0;
	if (body_len)
		memcpy(&d->cfg[off + 2], body, body_len);
	if (d->last_cap)
		d->cfg[d->last_cap + 1] = (uint8_t)off;
	else
		d->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
	pci__cfg_wr16(d, PCI_STATUS, pci__cfg_rd16(d, PCI_STATUS) | PCI_STATUS_CAP_LIST);
	d->last_cap = (uint8_t)off;
	d->next_cap = (uint8_t)MIN(off + total, 0xffu);
	return (int)off;
}

/* ---- BAR windows ---- */

static int pci_ranges_reserve(struct pci_range **r, unsigned int *cap, unsigned int want)
{
	unsigned int ncap = *cap ? *cap : 8;
	struct pci_range *p;

	if (want <= *cap)
		return 0;
	while (ncap < want)
		ncap *= 2;
	p = realloc(*r, ncap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	*r = p;
	*cap = ncap;
	return 0;
}

/* callers reserved room for one more entry */
static void pci_ranges_insert(struct pci_range *r, unsigned int *nr, unsigned int at,
			      struct pci_range v)
{
	memmove(&r[at + 1], &r[at], (*nr - at) * sizeof(*r));
	r[at] = v;
	(*nr)++;
}

static void pci_ranges_remove(struct pci_range *r, unsigned int *nr, unsigned int at)
{
	memmove(&r[at], &r[at + 1], (*nr - at - 1) * sizeof(*r));
	(*nr)--;
}

int pci__window_init(struct pci_window *w, uint64_t base, uint64_t size)
{
	uint64_t end;
	int ret;

	memset(w, 0, sizeof(*w));
	if (!size || add_overflows(base, size, &end))
		return -EINVAL;
	ret = pci_ranges_reserve(&w->free, &w->cap_free, 1);
	if (ret)
		return ret;
	w->base = base;
	w->end = end;
	w->free[0] = (struct pci_range){ .base = base, .end = end, .gap = false };
	w->nr_free = 1;
	return 0;
}

void pci__window_destroy(struct pci_window *w)
{
	free(w->free);
	free(w->used);
	memset(w, 0, sizeof(*w));
}

/* the lowest address in r aligned to align with size bytes of room */
static bool pci_range_fit(const struct pci_range *r, uint64_t size, uint64_t align, uint64_t *addr)
{
	uint64_t a = r->base & ~(align - 1);

	if (a < r->base && add_overflows(a, align, &a))
		return false;
	if (a >= r->end || r->end - a < size)
		return false;
	*addr = a;
	return true;
}

int pci__window_alloc(struct pci_window *w, uint64_t size, uint64_t align, uint64_t *addr)
{
	struct pci_range r, left, right;
	unsigned int i, at;
	uint64_t a = 0;
	int ret;

	if (!size || !align || (align & (align - 1)))
		return -EINVAL;
	/* a carve splits one free range in two; the allocation adds one used range */
	ret = pci_ranges_reserve(&w->free, &w->cap_free, w->nr_free + 1);
	if (!ret)
		ret = pci_ranges_reserve(&w->used, &w->cap_used, w->nr_used + 1);
	if (ret)
		return ret;
	for (i = 0; i < w->nr_free; i++)
		if (!w->free[i].gap && pci_range_fit(&w->free[i], size, align, &a))
			break;
	if (i == w->nr_free)
		return -ENOSPC;

	r = w->free[i];
	/* padding cut off the tail's front stays out of use: bump-allocator placement */
	left = (struct pci_range){ .base = r.base, .end = a, .gap = r.end == w->end };
	right = (struct pci_range){ .base = a + size, .end = r.end, .gap = false };
	if (left.base < left.end && right.base < right.end) {
		w->free[i] = left;
		pci_ranges_insert(w->free, &w->nr_free, i + 1, right);
	} else if (left.base < left.end) {
		w->free[i] = left;
	} else if (right.base < right.end) {
		w->free[i] = right;
	} else {
		pci_ranges_remove(w->free, &w->nr_free, i);
	}

	for (at = 0; at < w->nr_used && w->used[at].base < a; at++)
		;
	pci_ranges_insert(w->used, &w->nr_used, at,
			  (struct pci_range){ .base = a, .end = a + size, .gap = false });
	*addr = a;
	return 0;
}

int pci__window_free(struct pci_window *w, uint64_t base, uint64_t size)
{
	struct pci_range nb = { .base = base, .end = base + size, .gap = false };
	unsigned int i, at;
	int ret;

	for (i = 0; i < w->nr_used; i++)
		if (w->used[i].base == base)
			break;
	/* only whole allocations: a double free or a foreign range is a caller bug */
	if (i == w->nr_used || w->used[i].end - base != size)
		return -EINVAL;
	ret = pci_ranges_reserve(&w->free, &w->cap_free, w->nr_free + 1);
	if (ret)
		return ret;
	pci_ranges_remove(w->used, &w->nr_used, i);

	/* coalesce with the free neighbours (gaps included), so no hole outlives its users */
	for (at = 0; at < w->nr_free && w->free[at].base < base; at++)
		;
	if (at > 0 && w->free[at - 1].end == nb.base) {
		nb.base = w->free[at - 1].base;
		pci_ranges_remove(w->free, &w->nr_free, --at);
	}
	if (at < w->nr_free && w->free[at].base == nb.end) {
		nb.end = w->free[at].end;
		pci_ranges_remove(w->free, &w->nr_free, at);
	}
	pci_ranges_insert(w->free, &w->nr_free, at, nb);
	return 0;
}

uint64_t pci__window_used(const struct pci_window *w)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; i < w->nr_used; i++)
		n += w->used[i].end - w->used[i].base;
	return n;
}

/* gives the space of every BAR pci_assign_bars placed back to its window */
static void pci_release_bars(struct pci_dev *d)
{
	int i;

	for (i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bars[i];

		if (!b->win)
			continue;
		if (pci__window_free(b->win, b->win_addr, b->size))
			log_err_rl(&pci_rl, d->name, "BAR%d: cannot give back %#llx+%#llx", i,
				   (unsigned long long)b->win_addr, (unsigned long long)b->size);
		b->win = NULL;
		b->win_addr = 0;
	}
}

/* picks the window for one BAR, naturally aligned */
static int pci_alloc_bar(struct pci_bus *pb, const struct pci_bar *b, struct pci_window **win,
			 uint64_t *addr)
{
	int ret;

	if (b->flags & PCI_BAR_F_IO) {
		*win = &pb->io;
		return pci__window_alloc(*win, b->size, b->size, addr);
	}
	if (b->size <= 256 * MiB) {
		/* small BARs, even 64-bit ones, go below 4 GiB as firmware does */
		*win = &pb->mmio32;
		ret = pci__window_alloc(*win, b->size, b->size, addr);
		if (ret != -ENOSPC)
			return ret;
	}
	if (!(b->flags & PCI_BAR_F_MEM64) || pb->no_mmio64)
		return -ENOSPC;
	*win = &pb->mmio64;
	return pci__window_alloc(*win, b->size, b->size, addr);
}

static void pci_write_bar_addr(struct pci_dev *d, int bar, uint64_t addr)
{
	const struct pci_bar *b = &d->bars[bar];
	uint32_t off = PCI_BASE_ADDRESS_0 + 4 * (uint32_t)bar;

	pci__cfg_wr32(d, off, (pci__cfg_rd32(d, off) & (b->flags & PCI_BAR_F_IO ? 0x3 : 0xf)) |
				      (uint32_t)addr);
	if (b->flags & PCI_BAR_F_MEM64)
		pci__cfg_wr32(d, off + 4, (uint32_t)(addr >> 32));
}

/* firmware-like placement of each BAR; on failure nothing stays allocated */
static int pci_assign_bars(struct pci_bus *pb, struct pci_dev *d)
{
	struct pci_window *win;
	uint64_t addr;
	int i, ret;

	for (i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bars[i];

		if (!b->size)
			continue;
		ret = pci_alloc_bar(pb, b, &win, &addr);
		if (ret)
			goto err_release;
		b->win = win;
		b->win_addr = addr;
		b->addr = addr;
		pci_write_bar_addr(d, i, addr);
	}
	return 0;

err_release:
	pci_release_bars(d);
	for (i = 0; i < PCI_NUM_BARS; i++) {
		if (d->bars[i].size) {
			d->bars[i].addr = 0;
			pci_write_bar_addr(d, i, 0);
		}
	}
	return ret;
}

int pci__register(struct pci_bus *pb, struct pci_dev *d, int slot)
{
	int ret, s;

	pthread_mutex_lock(&pb->lock);
	if (d->devfn >= 0) {
		ret = -EBUSY; /* already on the bus: its BARs hold window space */
		goto out;
	}
	if (slot >= 0) {
		if (slot >= PCI_MAX_DEVICES || pb->devs[slot]) {
			ret = -EBUSY;
			goto out;
		}
		s = slot;
	} else {
		for (s = 1; s < PCI_MAX_DEVICES && pb->devs[s]; s++)
			;
		if (s == PCI_MAX_DEVICES) {
			ret = -ENOSPC;
			goto out;
		}
	}
	ret = pci_assign_bars(pb, d);
	if (ret) {
		log_err(d->name, "no room for its BARs in the PCI windows");
		goto out;
	}
	if (pci__cfg_rd8(d, PCI_INTERRUPT_PIN)) {
		d->intx_gsi = pci__intx_gsi((unsigned int)s,
					    (pci__cfg_rd8(d, PCI_INTERRUPT_PIN) - 1u) & 3);
		pci__cfg_wr8(d, PCI_INTERRUPT_LINE, (uint8_t)d->intx_gsi);
	}
	d->devfn = s << 3;
	d->bus = pb;
	pb->devs[s] = d;
	log_debug(d->name, "at 00:%02x.0", s);
out:
	pthread_mutex_unlock(&pb->lock);
	return ret;
}

int pci__unregister(struct pci_bus *pb, struct pci_dev *d)
{
	int i;

	pthread_mutex_lock(&pb->lock);
	if (d->devfn < 0 || pb->devs[d->devfn >> 3] != d) {
		pthread_mutex_unlock(&pb->lock);
		return -ENOENT;
	}
	for (i = 0; i < PCI_NUM_BARS; i++) {
		if (d->bars[i].active && d->ops && d->ops->bar_unmap)
			d->ops->bar_unmap(d, i, d->bars[i].addr);
		d->bars[i].active = false;
	}
	pci_release_bars(d);
	pb->devs[d->devfn >> 3] = NULL;
	d->devfn = -1;
	pthread_mutex_unlock(&pb->lock);
	return 0;
}

static void pci_dev_cfg_write(struct pci_dev *d, uint32_t off, const uint8_t *data, uint32_t len)
{
	bool bars = false, cmd = false;
	uint32_t i;

	for (i = 0; i < len; i++) {
		uint32_t o = off + i;
		uint8_t v = data[i];

		uint8_t nv = (uint8_t)((pci__cfg_rd8(d, o) & ~d->wmask[o]) | (v & d->wmask[o]));

		pci__cfg_wr8(d, o, nv & (uint8_t)~(v & d->w1cmask[o]));
		if (o >= PCI_BASE_ADDRESS_0 && o <= PCI_BASE_ADDRESS_5 + 3)
			bars = true;
		if (o == PCI_COMMAND || o == PCI_COMMAND + 1)
			cmd = true;
	}
	if (cmd || bars)
		pci_update_all_bars(d);
	if (d->ops && d->ops->cfg_write)
		d->ops->cfg_write(d, off, len);
}

void pci__cfg_access(struct pci_bus *pb, uint8_t bus, uint8_t devfn, uint32_t off,
		     uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_dev *d = NULL;

	if (!is_write)
		memset(data, 0xff, len);
	if ((len != 1 && len != 2 && len != 4) || (off & (len - 1)) ||
	    off + len > PCI_CFG_SPACE_EXP_SIZE) {
		log_err_rl(&pci_rl, PCI_LOG, "bad config access %02x:%02x.%x off %#x len %u", bus,
			   devfn >> 3, devfn & 7, off, len);
		return;
	}
	pthread_mutex_lock(&pb->lock);
	/* bus 0, function 0 only: everything else reads as absent */
	if (bus == 0 && (devfn & 7) == 0)
		d = pb->devs[devfn >> 3];
	if (!d)
		goto out;
	if (is_write) {
		pci_dev_cfg_write(d, off, data, len);
	} else {
		if (d->ops && d->ops->cfg_read)
			d->ops->cfg_read(d, off, len);
		for (uint32_t i = 0; i < len; i++)
			data[i] = pci__cfg_rd8(d, off + i);
	}
out:
	pthread_mutex_unlock(&pb->lock);
}

static void pci_cf8_handler(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			    bool is_write)
{
	struct pci_bus *pb = opaque;

	if (offset == 1 && len == 1) {
		/* 0xcf9: the reset control register shares this dword */
		if (pb->cf9_fn)
			pb->cf9_fn(pb->cf9_opaque, data, is_write);
		return;
	}
	if (offset != 0 || len != 4)
		return; /* byte/word accesses to CF8 are not config cycles */
	pthread_mutex_lock(&pb->lock);
	if (is_write)
		pb->cf8 = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
			  (uint32_t)data[3] << 24;
	else
		memcpy(data, &pb->cf8, 4);
	pthread_mutex_unlock(&pb->lock);
}

static void pci_cfc_handler(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			    bool is_write)
{
	struct pci_bus *pb = opaque;
	uint32_t cf8, off;

	pthread_mutex_lock(&pb->lock);
	cf8 = pb->cf8;
	pthread_mutex_unlock(&pb->lock);
	if (!(cf8 & 0x80000000u))
		return;
	/* bits 27:24 extend the register number (AMD/Intel ECS) */
	off = (cf8 & 0xfc) | ((cf8 >> 16) & 0xf00);
	pci__cfg_access(pb, (uint8_t)(cf8 >> 16), (uint8_t)(cf8 >> 8), off + (uint32_t)offset,
			data, len, is_write);
}

static void pci_ecam_handler(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			     bool is_write)
{
	struct pci_bus *pb = opaque;

	pci__cfg_access(pb, (uint8_t)(offset >> 20), (uint8_t)(offset >> 12),
			(uint32_t)(offset & 0xfff), data, len, is_write);
}

int pci__mmio64_place(uint64_t ram_end, unsigned int phys_bits, uint64_t *base, uint64_t *size)
{
	uint64_t limit, end, b;

	if (phys_bits < 32 || phys_bits > 64)
		return -EINVAL;
	limit = phys_bits == 64 ? UINT64_MAX : 1ULL << phys_bits;
	end = limit < PCI_MMIO64_END ? limit : PCI_MMIO64_END;
	if (end >= PCI_MMIO64_BASE + (1ULL << 30) && ram_end <= PCI_MMIO64_BASE) {
		b = PCI_MMIO64_BASE;
	} else {
		b = (ram_end + (1ULL << 30) - 1) & ~((1ULL << 30) - 1);
		if (b < end / 2)
			b = end / 2;
	}
	if (b >= end)
		return -ENOSPC;
	*base = b;
	*size = end - b;
	return 0;
}

int pci__bus_set_mmio64(struct pci_bus *pb, uint64_t base, uint64_t size)
{
	struct pci_window w;
	int ret = 0;

	pthread_mutex_lock(&pb->lock);
	if (pci__window_used(&pb->mmio64)) {
		ret = -EBUSY;
		goto out;
	}
	if (!size) {
		pb->no_mmio64 = true;
		goto out;
	}
	ret = pci__window_init(&w, base, size);
	if (ret)
		goto out;
	pci__window_destroy(&pb->mmio64);
	pb->mmio64 = w;
	pb->no_mmio64 = false;
out:
	pthread_mutex_unlock(&pb->lock);
	return ret;
}

int pci__bus_init(struct pci_bus *pb, struct bus *pio, struct bus *mmio)
{
	int ret;

	memset(pb, 0, sizeof(*pb));
	pthread_mutex_init(&pb->lock, NULL);
	pb->pio = pio;
	pb->mmio = mmio;
	pb->rl = &pci_rl;
	ret = pci__window_init(&pb->mmio32, PCI_MMIO32_BASE, PCI_MMIO32_SIZE);
	if (ret)
		goto err_mutex;
	ret = pci__window_init(&pb->mmio64, PCI_MMIO64_BASE, PCI_MMIO64_SIZE);
	if (ret)
		goto err_mmio32;
	ret = pci__window_init(&pb->io, PCI_IOPORT_BASE, PCI_IOPORT_SIZE);
	if (ret)
		goto err_mmio64;

	ret = bus__register(pio, PCI_CF8_PORT, 4, pci_cf8_handler, pb, "pci-cf8");
	if (ret)
		goto err_io;
	ret = bus__register(pio, PCI_CF8_PORT + 4, 4, pci_cfc_handler, pb, "pci-cfc");
	if (ret)
		goto err_cf8;
	ret = bus__register(mmio, PCI_ECAM_BASE, PCI_ECAM_SIZE, pci_ecam_handler, pb, "pci-ecam");
	if (ret)
		goto err_cfc;

	pci__dev_init(&pb->host_bridge, "pci-host", PCI_HOST_VENDOR, PCI_HOST_DEVICE,
		      0x060000, PCI_HOST_VENDOR, 0, 0, NULL);
	ret = pci__register(pb, &pb->host_bridge, 0);
	if (ret)
		goto err_ecam;
	return 0;

err_ecam:
	bus__deregister(mmio, PCI_ECAM_BASE);
err_cfc:
	bus__deregister(pio, PCI_CF8_PORT + 4);
err_cf8:
	bus__deregister(pio, PCI_CF8_PORT);
err_io:
	pci__window_destroy(&pb->io);
err_mmio64:
	pci__window_destroy(&pb->mmio64);
err_mmio32:
	pci__window_destroy(&pb->mmio32);
err_mutex:
	pthread_mutex_destroy(&pb->lock);
	return ret;
}

void pci__bus_destroy(struct pci_bus *pb)
{
	bus__deregister(pb->mmio, PCI_ECAM_BASE);
	bus__deregister(pb->pio, PCI_CF8_PORT + 4);
	bus__deregister(pb->pio, PCI_CF8_PORT);
	pci__window_destroy(&pb->io);
	pci__window_destroy(&pb->mmio64);
	pci__window_destroy(&pb->mmio32);
	pthread_mutex_destroy(&pb->lock);
}

void pci__set_cf9_handler(struct pci_bus *pb, void (*fn)(void *opaque, uint8_t *data, bool is_write),
			  void *opaque)
{
	pb->cf9_fn = fn;
	pb->cf9_opaque = opaque;
}

/* --- state (the device's section writes it; docs/migration.md) --------------- */

int pci__dev_save(struct pci_dev *d, void *fdt)
{
	uint8_t cfg[PCI_CFG_SPACE_EXP_SIZE];
	struct pci_bus *pb = d->bus;

	if (pb)
		pthread_mutex_lock(&pb->lock);
	memcpy(cfg, d->cfg, sizeof(cfg));
	if (pb)
		pthread_mutex_unlock(&pb->lock);
	return mig__put_bytes(fdt, "pci_config", cfg, sizeof(cfg));
}

int pci__dev_load(struct pci_dev *d, const void *fdt, int node)
{
	uint8_t cfg[PCI_CFG_SPACE_EXP_SIZE];
	struct pci_bus *pb = d->bus;
	unsigned int i;
	int ret;

	ret = mig__get_bytes(fdt, node, "pci_config", cfg, sizeof(cfg));
	if (ret)
		return ret;
	if (pb)
		pthread_mutex_lock(&pb->lock);
	/* only what the guest could have written: the device defines the rest */
	for (i = 0; i < sizeof(cfg); i++)
		d->cfg[i] = (uint8_t)((d->cfg[i] & ~d->wmask[i]) | (cfg[i] & d->wmask[i]) |
				      (cfg[i] & d->w1cmask[i]));
	pci_update_all_bars(d);
	if (pb)
		pthread_mutex_unlock(&pb->lock);
	return 0;
}
