// SPDX-License-Identifier: MIT
/*
 * VFIO PCI passthrough. The layout of this file follows a device's life:
 * region and capability discovery, the virtual config space, BAR mapping,
 * interrupts (MSI-X, MSI, INTx), create and destroy.
 */
#include "devices/vfio/pci.h"
#include "devices/vfio/backend.h"
#include "devices/vfio/iommu.h"
#include "devices/vfio/reset.h"
#include "vmm/bus.h"
#include "vmm/irq.h"
#include "vmm/kvm.h"
#include "vmm/log.h"
#include "vmm/msix.h"
#include "vmm/pci.h"
#include "vmm/sys.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VFIO_PAGE 4096ULL
#define VFIO_MAX_AREAS 16
#define VFIO_MSI_MAX 32
#define VFIO_REGION_CAP_MAX 32 /* capability chain entries we follow */
#define VFIO_CAP_MAX 48        /* standard capabilities in 192 bytes */
#define VFIO_EXT_CAP_MAX ((PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE) / 8)

/* COMMAND bits the device gets; the rest stay virtual */
#define VFIO_CMD_FORWARD (PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | \
			  PCI_COMMAND_INTX_DISABLE)

enum vfio_irq_mode { VFIO_IRQ_NONE, VFIO_IRQ_INTX, VFIO_IRQ_MSI, VFIO_IRQ_MSIX };

/* a piece of a BAR that is mmap()ed and given to KVM as a memory slot */
struct vfio_area {
	uint64_t off, size; /* within the BAR, page aligned */
	void *hva;
	int slot;           /* -1 while not in KVM */
};

struct vfio_region {
	struct vfio_pci *vf;
	int bar;
	uint32_t flags;     /* VFIO_REGION_INFO_FLAG_* */
	uint64_t size, offset;
	bool is_io;
	bool msix_mappable; /* VFIO_REGION_INFO_CAP_MSIX_MAPPABLE was present */
	struct vfio_area areas[VFIO_MAX_AREAS];
	unsigned int nr_areas;
	bool trapped;
	uint64_t trap_base;
};

struct vfio_counters {
	_Atomic uint64_t cfg_reads, cfg_writes, cfg_writes_refused;
	_Atomic uint64_t msix_table_exits, msix_pba_exits, bar_trap_exits;
	_Atomic uint64_t userspace_irqs, irq_reconfigs, memslots;
};

/* where the plug-to-traffic watch of a VF stands (vfio_pci.traffic_state) */
enum vfio_traffic_state {
	VFIO_TRAFFIC_OFF,         /* nothing to watch (no plug, no MSI-X, or done) */
	VFIO_TRAFFIC_WAIT_DRIVER, /* plugged: the guest's driver has not enabled MSI-X yet */
	VFIO_TRAFFIC_ARMED,       /* it has: the next poll takes the base count */
};

struct vfio_pci {
	struct pci_dev pci;
	struct vmm_device mdev; /* the device model (vmm/device.h) */
	struct vm *vm;
	struct vfio_backend *be;
	struct vfio_iommu *iommu;
	bool own_iommu;
	struct vfio_group *group;
	int dev;
	char bdf[16];
	bool intx_tried;        /* vfio_intx_setup ran (at the first plug) */
	char name[32];
	struct vfio_device_info info;
	uint64_t cfg_off, cfg_size;
	uint8_t virt[PCI_CFG_SPACE_EXP_SIZE]; /* 1: the guest reads d->cfg; 0: read through */
	struct vfio_region regions[PCI_NUM_BARS];
	uint8_t pm_cap, msi_cap, msix_cap, pcie_cap;
	uint32_t irq_count[VFIO_PCI_NUM_IRQS];
	enum vfio_irq_mode irq_mode;
	/* MSI-X */
	bool has_msix;
	struct msix msix;
	/* MSI */
	bool msi_on;
	unsigned int msi_nr;
	int msi_efd[VFIO_MSI_MAX];
	int msi_gsi[VFIO_MSI_MAX];
	bool msi_live[VFIO_MSI_MAX];
	/* INTx */
	int intx_efd, intx_resample;
	bool intx_irqfd;
	struct vfio_reset_dev rdev;
	enum vfio_reset_step last_reset;
	struct vfio_counters cnt;
	struct log_ratelimit rl;
	/* plug to the guest's driver taking the VF (its first MSI-X enable after the plug) */
	struct timespec t_plugged;
	double driver_ms;       /* -1: not yet (or not since the last plug) */
	/*
	 * and to the VF carrying traffic (vfio_pci__traffic_poll, on the VMM
	 * thread). One atomic state, written by the plug and by the driver's
	 * MSI-X enable (a vCPU thread) in a single store, so that the poll never
	 * sees "no driver awaited" and "not armed" at once: with two flags, a
	 * poll between the enable's two stores ended the watch for good (seen
	 * in lab-migrate-hosts, 2026-12-02: no traffic figure on b)
	 */
	uint8_t traffic_state;  /* atomic: enum vfio_traffic_state */
	bool awaiting_traffic;
	uint64_t irq_base;      /* the host's count at the first poll after that enable */
	double traffic_ms;      /* -1: not yet */
};

static struct vfio_pci *vfio_from_pci(struct pci_dev *d)
{
	return container_of(d, struct vfio_pci, pci);
}

int vfio_pci__sum_host_irqs(const char *text, const char *bdf, uint64_t *sum)
{
	char tag[40];
	const char *line = text;
	bool found = false;

	snprintf(tag, sizeof(tag), "(%s)", bdf);
	*sum = 0;
	while (line && *line) {
		const char *end = strchr(line, '\n'), *p;
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char buf[1024];

		if (len < sizeof(buf)) {
			memcpy(buf, line, len);
			buf[len] = 0;
			if (strstr(buf, "vfio-msix") && strstr(buf, tag) && (p = strchr(buf, ':'))) {
				/* " 45:   12   34  IR-PCI-MSIX-... vfio-msix[0](BDF)": the counts */
				char *q;

				p++;
				for (;;) {
					unsigned long long v = strtoull(p, &q, 10);

					if (q == p)
						break;
					*sum += v;
					p = q;
				}
				found = true;
			}
		}
		line = end ? end + 1 : NULL;
	}
	return found ? 0 : -ENOENT;
}

/* the host's count of this VF's MSI-X interrupts; -errno when unknown */
static int vfio_host_irqs(struct vfio_pci *vf, uint64_t *sum)
{
	static char text[256 * 1024]; /* the VMM thread's only */
	size_t n = 0;
	ssize_t r;
	int fd = open("/proc/interrupts", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (n < sizeof(text) - 1 && (r = read(fd, text + n, sizeof(text) - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	text[n] = 0;
	return vfio_pci__sum_host_irqs(text, vf->bdf, sum);
}

bool vfio_pci__traffic_poll(struct vfio_pci *vf, unsigned int irqs, unsigned int timeout_ms)
{
	uint64_t sum = 0;
	double ms;

	if (!vf->awaiting_traffic) {
		/* the driver's MSI-X enable starts the watch: the base count now */
		uint8_t state = __atomic_load_n(&vf->traffic_state, __ATOMIC_ACQUIRE);

		if (state != VFIO_TRAFFIC_ARMED)
			return state == VFIO_TRAFFIC_WAIT_DRIVER;
		__atomic_store_n(&vf->traffic_state, VFIO_TRAFFIC_OFF, __ATOMIC_RELAXED);
		if (vfio_host_irqs(vf, &vf->irq_base)) {
			log_info(vf->name, "%s: no vfio-msix lines in /proc/interrupts: no traffic "
				 "figure", vf->bdf);
			return false;
		}
		vf->awaiting_traffic = true;
	}
	ms = ms_since(&vf->t_plugged);
	if (!vfio_host_irqs(vf, &sum) && sum - vf->irq_base >= irqs) {
		vf->traffic_ms = ms;
		vf->awaiting_traffic = false;
		log_info(vf->name, "%s carries traffic: %llu interrupts, %.0f ms after the plug",
			 vf->bdf, (unsigned long long)(sum - vf->irq_base), ms);
		return false;
	}
	if (ms > timeout_ms) {
		vf->awaiting_traffic = false;
		log_info(vf->name, "%s: %llu interrupts in the %u s after the plug, fewer than %u: no "
			 "traffic figure (idle, or its interrupts are posted and the host does not "
			 "count them)", vf->bdf, (unsigned long long)(sum - vf->irq_base),
			 timeout_ms / 1000, irqs);
		return false;
	}
	return true;
}

/* ---- device I/O helpers ------------------------------------------------ */

static int vfio_cfg_pread(struct vfio_pci *vf, uint32_t off, void *buf, uint32_t len)
{
	ssize_t n = vf->be->ops->pread(vf->be, vf->dev, buf, len, vf->cfg_off + off);

	return n < 0 ? (int)n : (uint32_t)n == len ? 0 : -EIO;
}

static int vfio_cfg_pwrite(struct vfio_pci *vf, uint32_t off, const void *buf, uint32_t len)
{
	ssize_t n = vf->be->ops->pwrite(vf->be, vf->dev, buf, len, vf->cfg_off + off);

	return n < 0 ? (int)n : (uint32_t)n == len ? 0 : -EIO;
}

static int vfio_set_irqs(struct vfio_pci *vf, uint32_t index, uint32_t flags, uint32_t start,
			 uint32_t count, const int32_t *fds)
{
	struct vfio_irq_set *set;
	size_t sz = sizeof(*set) + (fds ? count * sizeof(int32_t) : 0);
	int ret;

	set = calloc(1, sz);
	if (!set)
		return -ENOMEM;
	set->argsz = (uint32_t)sz;
	set->flags = flags;
	set->index = index;
	set->start = start;
	set->count = count;
	if (fds)
		memcpy(set->data, fds, count * sizeof(int32_t));
	ret = vf->be->ops->set_irqs(vf->be, vf->dev, set);
	free(set);
	atomic_fetch_add(&vf->cnt.irq_reconfigs, 1);
	return ret;
}

/* ---- capability discovery ------------------------------------------------ */

/*
 * Walks the standard capability list of cfg (cfg_len bytes). Pointers must be
 * dword aligned and inside 0x40..0xff; a pointer that goes back to a visited
 * capability, or too many capabilities, ends the list there. The list in cfg
 * is truncated at the first bad pointer. Calls fn for each capability.
 */
int vfio_pci__walk_caps(uint8_t *cfg, void (*fn)(void *opaque, uint8_t id, uint8_t off),
			void *opaque)
{
	uint8_t seen[PCI_CFG_SPACE_SIZE / 4] = { 0 };
	uint32_t prev_ptr = PCI_CAPABILITY_LIST;
	unsigned int n = 0;
	uint8_t off;

	if (!(cfg[PCI_STATUS] & PCI_STATUS_CAP_LIST)) {
		cfg[PCI_CAPABILITY_LIST] = 0;
		return 0;
	}
	off = cfg[PCI_CAPABILITY_LIST];
	while (off) {
		if (off < 0x40 || (off & 3) || off > PCI_CFG_SPACE_SIZE - 4 || seen[off / 4] ||
		    ++n > VFIO_CAP_MAX) {
			cfg[prev_ptr] = 0; /* cut the list before the bad pointer */
			return -ELOOP;
		}
		seen[off / 4] = 1;
		fn(opaque, cfg[off], off);
		prev_ptr = off + 1u;
		off = cfg[off + 1];
	}
	return 0;
}

static uint32_t vfio_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void vfio_wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* extended capabilities a guest must not see on an assigned function */
static bool vfio_ext_cap_hidden(uint16_t id)
{
	switch (id) {
	case PCI_EXT_CAP_ID_SRIOV:
	case PCI_EXT_CAP_ID_MRIOV:
	case PCI_EXT_CAP_ID_REBAR:
	case PCI_EXT_CAP_ID_ATS:
	case PCI_EXT_CAP_ID_PRI:
	case PCI_EXT_CAP_ID_PASID:
		return true;
	}
	return false;
}

/*
 * Walks the extended capabilities (from 0x100) with loop protection, hiding
 * the ones a guest must not drive (SR-IOV, resizable BAR, ATS/PRI/PASID): a
 * hidden capability is unlinked, or, first in the list, turned into an empty
 * header (id 0) that still points on. virt marks the headers we rewrote.
 * Returns the number of capabilities hidden, or -ELOOP after cutting a bad list.
 */
static int vfio_walk_ext_caps(uint8_t *cfg, uint32_t cfg_size, uint8_t *virt)
{
	uint8_t seen[(PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE) / 4] = { 0 };
	uint32_t off = PCI_CFG_SPACE_SIZE, prev = 0, hdr, next;
	unsigned int n = 0;
	int hidden = 0;

	if (cfg_size <= PCI_CFG_SPACE_SIZE)
		return 0;
	while (off) {
		if (off < PCI_CFG_SPACE_SIZE || (off & 3) || off > cfg_size - 4 ||
		    seen[(off - PCI_CFG_SPACE_SIZE) / 4] || ++n > VFIO_EXT_CAP_MAX) {
			/* end the list at the last good header */
			if (prev) {
				hdr = vfio_rd32(&cfg[prev]);
				vfio_wr32(&cfg[prev], hdr & 0x000fffff);
				memset(&virt[prev], 1, 4);
			}
			return -ELOOP;
		}
		seen[(off - PCI_CFG_SPACE_SIZE) / 4] = 1;
		hdr = vfio_rd32(&cfg[off]);
		if (!hdr || hdr == 0xffffffff) {
			if (hdr)
				vfio_wr32(&cfg[off], 0);
			memset(&virt[off], 1, 4);
			return hidden; /* no (more) extended capabilities */
		}
		next = PCI_EXT_CAP_NEXT(hdr);
		if (vfio_ext_cap_hidden((uint16_t)PCI_EXT_CAP_ID(hdr))) {
			hidden++;
			if (prev) {
				/* unlink it */
				uint32_t ph = vfio_rd32(&cfg[prev]);

				vfio_wr32(&cfg[prev], (ph & 0x000fffff) | next << 20);
				memset(&virt[prev], 1, 4);
				vfio_wr32(&cfg[off], 0);
			} else {
				/* the first header stays, as an empty one pointing on */
				vfio_wr32(&cfg[off], next << 20);
				prev = off;
			}
			memset(&virt[off], 1, 4);
		} else {
			prev = off;
		}
		off = next;
	}
	return hidden;
}

/* ---- region discovery ---------------------------------------------------- */

static void vfio_area_add(struct vfio_region *r, uint64_t off, uint64_t size)
{
	uint64_t end;

	if (add_overflows(off, size, &end) || end > r->size)
		return;
	off = ALIGN_UP(off, VFIO_PAGE);
	end = ALIGN_DOWN(end, VFIO_PAGE);
	if (end <= off || r->nr_areas == VFIO_MAX_AREAS)
		return; /* what does not fit stays trapped: correct, only slower */
	r->areas[r->nr_areas++] = (struct vfio_area){ .off = off, .size = end - off, .slot = -1 };
}

/* removes [hole, hole+len) rounded out to pages from every area */
static void vfio_area_punch(struct vfio_region *r, uint64_t hole, uint64_t len)
{
	struct vfio_area keep[VFIO_MAX_AREAS];
	uint64_t hs = ALIGN_DOWN(hole, VFIO_PAGE), he = ALIGN_UP(hole + len, VFIO_PAGE);
	unsigned int i, n = r->nr_areas;

	if (!len)
		return;
	memcpy(keep, r->areas, sizeof(keep));
	r->nr_areas = 0;
	for (i = 0; i < n; i++) {
		uint64_t s = keep[i].off, e = keep[i].off + keep[i].size;

		if (e <= hs || s >= he) {
			vfio_area_add(r, s, e - s);
			continue;
		}
		if (s < hs)
			vfio_area_add(r, s, hs - s);
		if (e > he)
			vfio_area_add(r, he, e - he);
	}
}

/*
 * Reads the capability chain of a region info: sparse mmap areas and the
 * MSI-X mappable flag. Headers must lie inside argsz; the chain is followed
 * for VFIO_REGION_CAP_MAX entries at most and must move forward.
 */
static int vfio_region_parse_caps(struct vfio_region *r, const struct vfio_region_info *info,
				  bool *sparse)
{
	uint32_t off = info->cap_offset, n = 0;

	*sparse = false;
	if (!(info->flags & VFIO_REGION_INFO_FLAG_CAPS))
		return 0;
	while (off) {
		const struct vfio_info_cap_header *h;

		if (off < sizeof(*info) || off > info->argsz ||
		    info->argsz - off < sizeof(*h) || (off & 3) || ++n > VFIO_REGION_CAP_MAX)
			return -EINVAL;
		h = (const void *)((const uint8_t *)info + off);
		if (h->id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
			const struct vfio_region_info_cap_sparse_mmap *sp = (const void *)h;
			uint32_t i;

			if (info->argsz - off < sizeof(*sp) ||
			    sp->nr_areas > (info->argsz - off - sizeof(*sp)) / sizeof(sp->areas[0]))
				return -EINVAL;
			*sparse = true;
			for (i = 0; i < sp->nr_areas; i++)
				vfio_area_add(r, sp->areas[i].offset, sp->areas[i].size);
		} else if (h->id == VFIO_REGION_INFO_CAP_MSIX_MAPPABLE) {
			r->msix_mappable = true;
		}
		if (h->next && h->next <= off)
			return -EINVAL; /* backwards: a loop */
		off = h->next;
	}
	return 0;
}

static int vfio_region_setup(struct vfio_pci *vf, int bar)
{
	struct vfio_region *r = &vf->regions[bar];
	struct vfio_region_info *info = NULL;
	bool sparse;
	int ret;

	memset(r, 0, sizeof(*r));
	r->vf = vf;
	r->bar = bar;
	ret = vf->be->ops->region_info(vf->be, vf->dev, VFIO_PCI_BAR0_REGION_INDEX + (uint32_t)bar,
				       &info);
	if (ret)
		return ret;
	r->flags = info->flags;
	r->size = info->size;
	r->offset = info->offset;
	ret = vfio_region_parse_caps(r, info, &sparse);
	if (ret) {
		log_warn(vf->name, "BAR%d: malformed region capability chain; trapping it all", bar);
		r->nr_areas = 0;
		sparse = true; /* nothing mmappable */
	}
	if (!sparse && (r->flags & VFIO_REGION_INFO_FLAG_MMAP))
		vfio_area_add(r, 0, r->size);
	if (!(r->flags & VFIO_REGION_INFO_FLAG_MMAP))
		r->nr_areas = 0;
	free(info);
	return 0;
}

/* mmaps every area; an area that cannot be mapped is dropped (and trapped) */
static void vfio_region_mmap(struct vfio_pci *vf, struct vfio_region *r)
{
	unsigned int i, n = 0;

	for (i = 0; i < r->nr_areas; i++) {
		struct vfio_area a = r->areas[i];

		a.hva = vf->be->ops->mmap(vf->be, vf->dev, r->offset + a.off, a.size);
		if (IS_ERR_OR_NULL(a.hva)) {
			log_warn(vf->name, "BAR%d: cannot mmap [%#llx, +%#llx): %s; trapping it", r->bar,
				 (unsigned long long)a.off, (unsigned long long)a.size,
				 a.hva ? strerror((int)-PTR_ERR(a.hva)) : "no address");
			continue;
		}
		r->areas[n++] = a;
	}
	r->nr_areas = n;
}

static void vfio_region_munmap(struct vfio_pci *vf, struct vfio_region *r)
{
	unsigned int i;

	for (i = 0; i < r->nr_areas; i++)
		if (r->areas[i].hva)
			vf->be->ops->munmap(vf->be, r->areas[i].hva, r->areas[i].size);
	r->nr_areas = 0;
}

/* ---- BAR traps and mapping ---------------------------------------------- */

static void vfio_bar_forward(struct vfio_region *r, uint64_t off, uint8_t *data, uint32_t len,
			     bool is_write)
{
	struct vfio_pci *vf = r->vf;
	ssize_t n;

	atomic_fetch_add(&vf->cnt.bar_trap_exits, 1);
	if (off >= r->size || len > r->size - off)
		return;
	if (is_write) {
		if (!(r->flags & VFIO_REGION_INFO_FLAG_WRITE))
			return;
		n = vf->be->ops->pwrite(vf->be, vf->dev, data, len, r->offset + off);
	} else {
		if (!(r->flags & VFIO_REGION_INFO_FLAG_READ))
			return;
		n = vf->be->ops->pread(vf->be, vf->dev, data, len, r->offset + off);
		if (n != (ssize_t)len)
			memset(data, 0xff, len);
	}
	if (n != (ssize_t)len)
		log_err_rl(&vf->rl, vf->name, "BAR%d %s at %#llx len %u failed: %s", r->bar,
			   is_write ? "write" : "read", (unsigned long long)off, len,
			   n < 0 ? strerror((int)-n) : "short");
}

static void vfio_bar_trap(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct vfio_region *r = opaque;
	struct vfio_pci *vf = r->vf;
	struct msix *m = &vf->msix;

	if (vf->has_msix) {
		uint64_t tsz = msix__table_size(m->nr), psz = msix__pba_size(m->nr);

		if (r->bar == m->table_bar && off >= m->table_off && off - m->table_off < tsz) {
			atomic_fetch_add(&vf->cnt.msix_table_exits, 1);
			msix__table_access(m, off - m->table_off, data, len, is_write);
			return;
		}
		if (r->bar == m->pba_bar && off >= m->pba_off && off - m->pba_off < psz) {
			atomic_fetch_add(&vf->cnt.msix_pba_exits, 1);
			msix__pba_access(m, off - m->pba_off, data, len, is_write);
			return;
		}
	}
	vfio_bar_forward(r, off, data, len, is_write);
}

static void vfio_bar_drop_slots(struct vfio_pci *vf, struct vfio_region *r, uint64_t addr)
{
	unsigned int i;
	int ret;

	for (i = 0; i < r->nr_areas; i++) {
		struct vfio_area *a = &r->areas[i];

		if (a->slot < 0)
			continue;
		ret = vf->be->ops->set_memslot(vf->be, vf->vm, (uint32_t)a->slot, addr + a->off, 0,
					       a->hva);
		if (ret)
			log_err_rl(&vf->rl, vf->name, "BAR%d: cannot remove memory slot %d: %s",
				   r->bar, a->slot, strerror(-ret));
		kvm__free_memslot(vf->vm, (uint32_t)a->slot);
		a->slot = -1;
		atomic_fetch_sub(&vf->cnt.memslots, 1);
	}
}

static int vfio_bar_map(struct pci_dev *d, int bar, uint64_t addr)
{
	struct vfio_pci *vf = vfio_from_pci(d);
	struct vfio_region *r = &vf->regions[bar];
	unsigned int i;
	int ret, slot;

	if (!r->size)
		return -EINVAL;
	/* the whole BAR traps; the mmapped areas never exit since KVM maps them */
	ret = bus__register(r->is_io ? &vf->vm->pio : &vf->vm->mmio, addr, d->bars[bar].size,
			    vfio_bar_trap, r, vf->name);
	if (ret)
		return ret;
	r->trapped = true;
	r->trap_base = addr;
	if (r->is_io)
		return 0;
	for (i = 0; i < r->nr_areas; i++) {
		struct vfio_area *a = &r->areas[i];

		slot = kvm__alloc_memslot(vf->vm);
		if (slot < 0) {
			ret = slot;
			goto err_slots;
		}
		ret = vf->be->ops->set_memslot(vf->be, vf->vm, (uint32_t)slot, addr + a->off, a->size,
					       a->hva);
		if (ret) {
			kvm__free_memslot(vf->vm, (uint32_t)slot);
			goto err_slots;
		}
		a->slot = slot;
		atomic_fetch_add(&vf->cnt.memslots, 1);
	}
	log_debug(vf->name, "BAR%d at %#llx: %u area(s) mapped", bar, (unsigned long long)addr,
		  r->nr_areas);
	return 0;

err_slots:
	vfio_bar_drop_slots(vf, r, addr);
	bus__deregister(&vf->vm->mmio, addr);
	r->trapped = false;
	return ret;
}

static int vfio_bar_unmap(struct pci_dev *d, int bar, uint64_t addr)
{
	struct vfio_pci *vf = vfio_from_pci(d);
	struct vfio_region *r = &vf->regions[bar];

	if (!r->is_io)
		vfio_bar_drop_slots(vf, r, addr);
	if (r->trapped)
		bus__deregister(r->is_io ? &vf->vm->pio : &vf->vm->mmio, r->trap_base);
	r->trapped = false;
	return 0;
}

/* ---- interrupts ---------------------------------------------------------- */

static void vfio_irqfd_detach(struct vfio_pci *vf, int efd, uint32_t gsi)
{
	int ret = irq__irqfd(&vf->vm->irq, efd, gsi, -1, false);

	if (ret)
		log_err_rl(&vf->rl, vf->name, "cannot detach irqfd from GSI %u: %s", gsi,
			   strerror(-ret));
}

static int vfio_intx_enable(struct vfio_pci *vf)
{
	int32_t fd;
	int ret;

	if (vf->intx_efd < 0 || vf->irq_mode != VFIO_IRQ_NONE)
		return 0;
	fd = vf->intx_efd;
	ret = vfio_set_irqs(vf, VFIO_PCI_INTX_IRQ_INDEX,
			    VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1, &fd);
	if (ret)
		return ret;
	/* the resample eventfd unmasks the line in VFIO when the guest EOIs it */
	fd = vf->intx_resample;
	ret = vfio_set_irqs(vf, VFIO_PCI_INTX_IRQ_INDEX,
			    VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK, 0, 1, &fd);
	if (ret) {
		vfio_set_irqs(vf, VFIO_PCI_INTX_IRQ_INDEX,
			      VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, NULL);
		return ret;
	}
	vf->irq_mode = VFIO_IRQ_INTX;
	return 0;
}

static void vfio_intx_disable(struct vfio_pci *vf)
{
	if (vf->irq_mode != VFIO_IRQ_INTX)
		return;
	vfio_set_irqs(vf, VFIO_PCI_INTX_IRQ_INDEX,
		      VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, NULL);
	vf->irq_mode = VFIO_IRQ_NONE;
}

static int vfio_intx_setup(struct vfio_pci *vf)
{
	int ret;

	if (!pci__cfg_rd8(&vf->pci, PCI_INTERRUPT_PIN) || !vf->irq_count[VFIO_PCI_INTX_IRQ_INDEX])
		return 0;
	vf->intx_efd = sys__eventfd(0);
	if (vf->intx_efd < 0)
		return vf->intx_efd;
	vf->intx_resample = sys__eventfd(0);
	if (vf->intx_resample < 0) {
		ret = vf->intx_resample;
		goto err_efd;
	}
	/* level-triggered: KVM signals the resample fd on EOI, VFIO then unmasks */
	ret = irq__irqfd(&vf->vm->irq, vf->intx_efd, vf->pci.intx_gsi, vf->intx_resample, true);
	if (ret)
		goto err_resample;
	vf->intx_irqfd = true;
	ret = vfio_intx_enable(vf);
	if (ret) {
		log_warn(vf->name, "INTx unavailable: %s", strerror(-ret));
		vfio_irqfd_detach(vf, vf->intx_efd, vf->pci.intx_gsi);
		vf->intx_irqfd = false;
		goto err_resample;
	}
	return 0;

err_resample:
	close(vf->intx_resample);
	vf->intx_resample = -1;
err_efd:
	close(vf->intx_efd);
	vf->intx_efd = -1;
	return ret;
}

static int vfio_msix_enable(struct msix *m, bool on, void *opaque)
{
	struct vfio_pci *vf = opaque;
	uint32_t n = MIN((uint32_t)m->nr, vf->irq_count[VFIO_PCI_MSIX_IRQ_INDEX]);
	int32_t fds[MSIX_MAX_VECTORS];
	uint8_t waiting = VFIO_TRAFFIC_WAIT_DRIVER;
	uint32_t i;
	int ret;

	if (!on) {
		if (vf->irq_mode != VFIO_IRQ_MSIX)
			return 0;
		ret = vfio_set_irqs(vf, VFIO_PCI_MSIX_IRQ_INDEX,
				    VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, NULL);
		vf->irq_mode = VFIO_IRQ_NONE;
		vfio_intx_enable(vf);
		return ret;
	}
	if (vf->irq_mode == VFIO_IRQ_MSIX)
		return 0;
	if (vf->irq_mode == VFIO_IRQ_MSI) {
		log_err_rl(&vf->rl, vf->name, "guest enabled MSI-X with MSI on; ignored");
		return -EBUSY;
	}
	vfio_intx_disable(vf);
	/*
	 * Every vector's eventfd at once: the kernel allocates the host vectors
	 * on the first call, and each eventfd is also the vector's irqfd, so the
	 * device reaches the guest through KVM alone. Masking is done on the
	 * irqfd side (msix.c), never by reprogramming VFIO.
	 */
	for (i = 0; i < n; i++)
		fds[i] = m->vec[i].efd;
	ret = vfio_set_irqs(vf, VFIO_PCI_MSIX_IRQ_INDEX,
			    VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 0, n, fds);
	if (ret) {
		log_err_rl(&vf->rl, vf->name, "cannot enable MSI-X (%u vectors): %s", n,
			   strerror(-ret));
		vfio_intx_enable(vf);
		return ret;
	}
	vf->irq_mode = VFIO_IRQ_MSIX;
	/*
	 * the first enable since the plug: from here, the host's count of its
	 * interrupts says when traffic flows, and the VMM thread takes the base
	 * count at its next poll (a vCPU thread opens no files: seccomp). One
	 * step: the poll sees either the wait for the driver or the armed watch
	 */
	if (__atomic_compare_exchange_n(&vf->traffic_state, &waiting, VFIO_TRAFFIC_ARMED, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		vf->driver_ms = (double)(now.tv_sec - vf->t_plugged.tv_sec) * 1e3 +
				(double)(now.tv_nsec - vf->t_plugged.tv_nsec) / 1e6;
		log_info(vf->name, "the guest's driver took %s: MSI-X on %.0f ms after the plug",
			 vf->bdf, vf->driver_ms);
	}
	return 0;
}

static void vfio_msix_vector(struct msix *m, uint16_t v, bool live, void *opaque)
{
	struct vfio_pci *vf = opaque;

	log_debug(vf->name, "MSI-X vector %u %s (gsi %d)", v, live ? "live" : "masked",
		  m->vec[v].gsi);
}

static const struct msix_passthrough_ops vfio_msix_ops = {
	.enable = vfio_msix_enable,
	.vector = vfio_msix_vector,
};

struct vfio_msi_regs {
	uint16_t flags;
	uint64_t addr;
	uint32_t data, mask;
	bool is64, maskable;
};

static void vfio_msi_read(struct vfio_pci *vf, struct vfio_msi_regs *r)
{
	const struct pci_dev *d = &vf->pci;
	uint32_t c = vf->msi_cap;

	r->flags = pci__cfg_rd16(d, c + PCI_MSI_FLAGS);
	r->is64 = r->flags & PCI_MSI_FLAGS_64BIT;
	r->maskable = r->flags & PCI_MSI_FLAGS_MASKBIT;
	r->addr = pci__cfg_rd32(d, c + PCI_MSI_ADDRESS_LO);
	if (r->is64)
		r->addr |= (uint64_t)pci__cfg_rd32(d, c + PCI_MSI_ADDRESS_HI) << 32;
	r->data = pci__cfg_rd16(d, c + (r->is64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32));
	r->mask = r->maskable ? pci__cfg_rd32(d, c + (r->is64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32))
			      : 0;
}

/* routes and irqfds of the enabled MSI vectors as the registers say */
static void vfio_msi_update_routes(struct vfio_pci *vf, const struct vfio_msi_regs *r)
{
	struct irq *irq = &vf->vm->irq;
	unsigned int i;
	int ret;

	for (i = 0; i < vf->msi_nr; i++) {
		uint32_t data = (r->data & ~(vf->msi_nr - 1)) | i;
		bool masked = r->mask & (1u << i);

		ret = irq__set_msi_route(irq, (uint32_t)vf->msi_gsi[i], r->addr, data);
		if (ret)
			log_err_rl(&vf->rl, vf->name, "MSI vector %u route: %s", i, strerror(-ret));
		if (masked && vf->msi_live[i]) {
			vfio_irqfd_detach(vf, vf->msi_efd[i], (uint32_t)vf->msi_gsi[i]);
			vf->msi_live[i] = false;
		} else if (!masked && !vf->msi_live[i] && !ret) {
			vf->msi_live[i] = !irq__irqfd(irq, vf->msi_efd[i], (uint32_t)vf->msi_gsi[i],
						      -1, true);
		}
	}
}

static void vfio_msi_teardown(struct vfio_pci *vf)
{
	unsigned int i;

	for (i = 0; i < vf->msi_nr; i++) {
		if (vf->msi_live[i])
			vfio_irqfd_detach(vf, vf->msi_efd[i], (uint32_t)vf->msi_gsi[i]);
		vf->msi_live[i] = false;
		irq__clear_route(&vf->vm->irq, (uint32_t)vf->msi_gsi[i]);
	}
	vf->msi_nr = 0;
	vf->msi_on = false;
}

static void vfio_msi_cfg_write(struct vfio_pci *vf)
{
	struct vfio_msi_regs r;
	int32_t fds[VFIO_MSI_MAX];
	unsigned int i, nr;
	int ret;

	vfio_msi_read(vf, &r);
	if (!(r.flags & PCI_MSI_FLAGS_ENABLE)) {
		if (vf->msi_on) {
			vfio_set_irqs(vf, VFIO_PCI_MSI_IRQ_INDEX,
				      VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, NULL);
			vfio_msi_teardown(vf);
			vf->irq_mode = VFIO_IRQ_NONE;
			vfio_intx_enable(vf);
		}
		return;
	}
	if (vf->msi_on) {
		vfio_msi_update_routes(vf, &r);
		return;
	}
	if (vf->irq_mode == VFIO_IRQ_MSIX) {
		log_err_rl(&vf->rl, vf->name, "guest enabled MSI with MSI-X on; ignored");
		return;
	}
	nr = 1u << ((r.flags & PCI_MSI_FLAGS_QSIZE) >> 4);
	nr = MIN(nr, 1u << ((r.flags & PCI_MSI_FLAGS_QMASK) >> 1));
	nr = MIN(nr, MIN(vf->irq_count[VFIO_PCI_MSI_IRQ_INDEX], (uint32_t)VFIO_MSI_MAX));
	if (!nr)
		return;
	for (i = 0; i < nr; i++) {
		if (vf->msi_efd[i] < 0) {
			vf->msi_efd[i] = sys__eventfd(0);
			if (vf->msi_efd[i] < 0)
				goto err;
		}
		if (vf->msi_gsi[i] < 0) {
			vf->msi_gsi[i] = irq__alloc_gsi(&vf->vm->irq);
			if (vf->msi_gsi[i] < 0)
				goto err;
		}
		fds[i] = vf->msi_efd[i];
	}
	vf->msi_nr = nr;
	vfio_msi_update_routes(vf, &r);
	vfio_intx_disable(vf);
	ret = vfio_set_irqs(vf, VFIO_PCI_MSI_IRQ_INDEX,
			    VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 0, nr, fds);
	if (ret) {
		log_err_rl(&vf->rl, vf->name, "cannot enable MSI (%u vectors): %s", nr,
			   strerror(-ret));
		vfio_msi_teardown(vf);
		vfio_intx_enable(vf);
		return;
	}
	vf->msi_on = true;
	vf->irq_mode = VFIO_IRQ_MSI;
	return;
err:
	log_err_rl(&vf->rl, vf->name, "no eventfd or GSI for MSI");
}

/* ---- config space -------------------------------------------------------- */

static void vfio_cap_found(void *opaque, uint8_t id, uint8_t off)
{
	struct vfio_pci *vf = opaque;

	/* the first of each kind counts; the list pointer bytes are ours */
	vf->virt[off + 1] = 1;
	switch (id) {
	case PCI_CAP_ID_PM:
		if (!vf->pm_cap && off <= PCI_CFG_SPACE_SIZE - PCI_PM_SIZEOF)
			vf->pm_cap = off;
		break;
	case PCI_CAP_ID_MSI:
		if (!vf->msi_cap && off <= PCI_CFG_SPACE_SIZE - 24)
			vf->msi_cap = off;
		break;
	case PCI_CAP_ID_MSIX:
		if (!vf->msix_cap && off <= PCI_CFG_SPACE_SIZE - PCI_CAP_MSIX_SIZEOF)
			vf->msix_cap = off;
		break;
	case PCI_CAP_ID_EXP:
		if (!vf->pcie_cap && off <= PCI_CFG_SPACE_SIZE - 12)
			vf->pcie_cap = off;
		break;
	}
}

/* reads the device's config space and finds its capabilities */
static int vfio_read_config(struct vfio_pci *vf, uint8_t *cfg)
{
	int ret;

	memset(cfg, 0, PCI_CFG_SPACE_EXP_SIZE);
	ret = vfio_cfg_pread(vf, 0, cfg, (uint32_t)vf->cfg_size);
	if (ret)
		return ret;
	if ((cfg[0] | cfg[1] << 8) == 0xffff)
		return -EIO;
	vf->pm_cap = vf->msi_cap = vf->msix_cap = vf->pcie_cap = 0;
	memset(vf->virt, 0, sizeof(vf->virt));
	if (vfio_pci__walk_caps(cfg, vfio_cap_found, vf) == -ELOOP)
		log_warn(vf->name, "capability list loops or points outside config space; cut short");
	return 0;
}

static const struct pci_dev_ops vfio_pci_ops;

/* builds the guest's view from the device's config space cfg */
static int vfio_build_config(struct vfio_pci *vf, uint8_t *cfg)
{
	struct pci_dev *d = &vf->pci;
	uint32_t class_rev = vfio_rd32(&cfg[PCI_CLASS_REVISION]);
	int bar, ret;

	if ((cfg[PCI_HEADER_TYPE] & 0x7f) != PCI_HEADER_TYPE_NORMAL) {
		log_err(vf->name, "header type %#x: only endpoints (type 0) can be assigned",
			cfg[PCI_HEADER_TYPE]);
		return -ENOTSUP;
	}
	pci__dev_init(d, vf->name, (uint16_t)(cfg[0] | cfg[1] << 8), (uint16_t)(cfg[2] | cfg[3] << 8),
		      class_rev >> 8, (uint16_t)(cfg[PCI_SUBSYSTEM_VENDOR_ID] |
						 cfg[PCI_SUBSYSTEM_VENDOR_ID + 1] << 8),
		      (uint16_t)(cfg[PCI_SUBSYSTEM_ID] | cfg[PCI_SUBSYSTEM_ID + 1] << 8),
		      (uint8_t)class_rev, &vfio_pci_ops);
	/* the header is ours; capabilities and device-specific space come from the device */
	memset(vf->virt, 1, PCI_STD_HEADER_SIZEOF);
	memcpy(&d->cfg[PCI_STD_HEADER_SIZEOF], &cfg[PCI_STD_HEADER_SIZEOF],
	       vf->cfg_size - PCI_STD_HEADER_SIZEOF);
	pci__cfg_wr16(d, PCI_STATUS, (uint16_t)((cfg[PCI_STATUS] | cfg[PCI_STATUS + 1] << 8) &
						 (PCI_STATUS_CAP_LIST | PCI_STATUS_66MHZ |
						  PCI_STATUS_FAST_BACK | PCI_STATUS_DEVSEL_MASK)));
	d->cfg[PCI_CAPABILITY_LIST] = cfg[PCI_CAPABILITY_LIST];
	d->cfg[PCI_INTERRUPT_PIN] = cfg[PCI_INTERRUPT_PIN] <= 4 ? cfg[PCI_INTERRUPT_PIN] : 0;
	d->cfg[PCI_MIN_GNT] = cfg[PCI_MIN_GNT];
	d->cfg[PCI_MAX_LAT] = cfg[PCI_MAX_LAT];
	/* the ROM BAR stays 0 and read-only: no ROM */
	if (vfio_walk_ext_caps(d->cfg, (uint32_t)vf->cfg_size, vf->virt) < 0)
		log_warn(vf->name, "extended capability list loops or runs away; cut short");

	for (bar = 0; bar < PCI_NUM_BARS; bar++) {
		uint32_t low = vfio_rd32(&cfg[PCI_BASE_ADDRESS_0 + 4 * bar]);
		struct vfio_region *r = &vf->regions[bar];
		uint32_t flags = 0;

		ret = vfio_region_setup(vf, bar);
		if (ret) {
			log_err(vf->name, "BAR%d region info: %s", bar, strerror(-ret));
			return ret;
		}
		if (!r->size)
			continue;
		if (r->size & (r->size - 1)) {
			log_err(vf->name, "BAR%d size %#llx is not a power of two", bar,
				(unsigned long long)r->size);
			return -EINVAL;
		}
		if (low & PCI_BASE_ADDRESS_SPACE_IO) {
			flags = PCI_BAR_F_IO;
			r->is_io = true;
			r->nr_areas = 0;
		} else {
			if ((low & PCI_BASE_ADDRESS_MEM_TYPE_MASK) == PCI_BASE_ADDRESS_MEM_TYPE_64)
				flags |= PCI_BAR_F_MEM64;
			if (low & PCI_BASE_ADDRESS_MEM_PREFETCH)
				flags |= PCI_BAR_F_PREFETCH;
		}
		ret = pci__dev_add_bar(d, bar, r->size, flags);
		if (ret) {
			log_err(vf->name, "BAR%d (%#llx bytes%s) cannot be emulated", bar,
				(unsigned long long)r->size, r->is_io ? ", I/O" : "");
			return ret;
		}
		if (flags & PCI_BAR_F_MEM64)
			bar++; /* the upper half */
	}

	/* MSI-X: table and PBA emulated, their pages left out of the mmaps */
	if (vf->msix_cap && vf->irq_count[VFIO_PCI_MSIX_IRQ_INDEX]) {
		struct msix *m = &vf->msix;

		ret = msix__init_existing(m, d, &vf->vm->irq, vf->msix_cap);
		if (ret || !vf->regions[m->table_bar].size || !vf->regions[m->pba_bar].size ||
		    (uint64_t)m->table_off + msix__table_size(m->nr) > vf->regions[m->table_bar].size ||
		    (uint64_t)m->pba_off + msix__pba_size(m->nr) > vf->regions[m->pba_bar].size) {
			log_err(vf->name, "MSI-X capability points outside its BARs");
			if (!ret)
				msix__destroy(m);
			return -EINVAL;
		}
		ret = msix__set_passthrough(m, &vfio_msix_ops, vf);
		if (ret) {
			msix__destroy(m);
			return ret;
		}
		vf->has_msix = true;
		memset(&vf->virt[vf->msix_cap], 1, PCI_CAP_MSIX_SIZEOF);
		vfio_area_punch(&vf->regions[m->table_bar], m->table_off, msix__table_size(m->nr));
		vfio_area_punch(&vf->regions[m->pba_bar], m->pba_off, msix__pba_size(m->nr));
	} else if (vf->msix_cap) {
		/* VFIO offers no MSI-X vectors: hide the capability's enable bit */
		memset(&vf->virt[vf->msix_cap], 1, PCI_CAP_MSIX_SIZEOF);
	}

	/* MSI: virtual registers, VFIO vectors on enable */
	if (vf->msi_cap) {
		uint32_t c = vf->msi_cap;
		uint16_t fl = pci__cfg_rd16(d, c + PCI_MSI_FLAGS);
		bool is64 = fl & PCI_MSI_FLAGS_64BIT;
		uint32_t len = 10 + (is64 ? 4 : 0) + (fl & PCI_MSI_FLAGS_MASKBIT ? 10 : 0);

		memset(&vf->virt[c], 1, MIN(len, PCI_CFG_SPACE_SIZE - c));
		pci__cfg_wr16(d, c + PCI_MSI_FLAGS, fl & (uint16_t)~(PCI_MSI_FLAGS_ENABLE |
								     PCI_MSI_FLAGS_QSIZE));
		if (vf->irq_count[VFIO_PCI_MSI_IRQ_INDEX]) {
			d->wmask[c + PCI_MSI_FLAGS] = PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE;
			pci__dev_set_wmask(d, c + PCI_MSI_ADDRESS_LO, 4, 0xff);
			d->wmask[c + PCI_MSI_ADDRESS_LO] = 0xfc;
			if (is64)
				pci__dev_set_wmask(d, c + PCI_MSI_ADDRESS_HI, 4, 0xff);
			pci__dev_set_wmask(d, c + (is64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32), 2, 0xff);
			if (fl & PCI_MSI_FLAGS_MASKBIT) {
				uint32_t mo = c + (is64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32);

				pci__dev_set_wmask(d, mo, 4, 0xff);
				pci__cfg_wr32(d, mo, 0);
				pci__cfg_wr32(d, mo + 4, 0); /* pending bits */
			}
		}
	}

	/* PM: the guest may change the D-state, which goes to the device */
	if (vf->pm_cap) {
		memset(&vf->virt[vf->pm_cap], 1, PCI_PM_SIZEOF);
		pci__cfg_wr16(d, vf->pm_cap + PCI_PM_CTRL,
			      pci__cfg_rd16(d, vf->pm_cap + PCI_PM_CTRL) &
				      (uint16_t)~(PCI_PM_CTRL_STATE_MASK | PCI_PM_CTRL_PME_STATUS));
		d->wmask[vf->pm_cap + PCI_PM_CTRL] = PCI_PM_CTRL_STATE_MASK;
	}

	/* PCIe: read through, read-only, except Initiate FLR which becomes a VFIO reset */
	if (vf->pcie_cap) {
		vf->virt[vf->pcie_cap + PCI_EXP_DEVCTL + 1] = 1;
		d->cfg[vf->pcie_cap + PCI_EXP_DEVCTL + 1] &= (uint8_t)~(PCI_EXP_DEVCTL_BCR_FLR >> 8);
		d->wmask[vf->pcie_cap + PCI_EXP_DEVCTL + 1] = PCI_EXP_DEVCTL_BCR_FLR >> 8;
	}
	return 0;
}

static void vfio_pci_cfg_read(struct pci_dev *d, uint32_t off, uint32_t len)
{
	struct vfio_pci *vf = vfio_from_pci(d);
	uint8_t buf[4];
	uint32_t i;

	atomic_fetch_add(&vf->cnt.cfg_reads, 1);
	if (off >= vf->cfg_size || len > vf->cfg_size - off)
		return;
	/* STATUS's interrupt bit is the device's */
	if (ranges_overlap(off, len, PCI_STATUS, 1) && !vfio_cfg_pread(vf, PCI_STATUS, buf, 1))
		pci__cfg_wr8(d, PCI_STATUS, (uint8_t)((pci__cfg_rd8(d, PCI_STATUS) &
							~PCI_STATUS_INTERRUPT) |
						       (buf[0] & PCI_STATUS_INTERRUPT)));
	for (i = 0; i < len && vf->virt[off + i]; i++)
		;
	if (i == len)
		return;
	if (vfio_cfg_pread(vf, off, buf, len)) {
		log_err_rl(&vf->rl, vf->name, "config read at %#x failed", off);
		return;
	}
	for (i = 0; i < len; i++)
		if (!vf->virt[off + i])
			pci__cfg_wr8(d, off + i, buf[i]);
}

static void vfio_forward_command(struct vfio_pci *vf)
{
	uint8_t b[2];
	uint16_t phys, v = pci__cfg_rd16(&vf->pci, PCI_COMMAND);

	if (vfio_cfg_pread(vf, PCI_COMMAND, b, 2))
		return;
	phys = (uint16_t)(b[0] | b[1] << 8);
	phys = (uint16_t)((phys & ~VFIO_CMD_FORWARD) | (v & VFIO_CMD_FORWARD));
	b[0] = (uint8_t)phys;
	b[1] = (uint8_t)(phys >> 8);
	if (vfio_cfg_pwrite(vf, PCI_COMMAND, b, 2))
		log_err_rl(&vf->rl, vf->name, "cannot write COMMAND %#x", phys);
}

static void vfio_forward_pm(struct vfio_pci *vf)
{
	uint32_t o = vf->pm_cap + PCI_PM_CTRL;
	uint8_t b[2];
	uint16_t phys;

	if (vfio_cfg_pread(vf, o, b, 2))
		return;
	phys = (uint16_t)(b[0] | b[1] << 8);
	/* PME status is write-1-to-clear: never clear it behind the guest's back */
	phys = (uint16_t)((phys & ~(PCI_PM_CTRL_STATE_MASK | PCI_PM_CTRL_PME_STATUS)) |
			  (pci__cfg_rd16(&vf->pci, o) & PCI_PM_CTRL_STATE_MASK));
	b[0] = (uint8_t)phys;
	b[1] = (uint8_t)(phys >> 8);
	if (vfio_cfg_pwrite(vf, o, b, 2))
		log_err_rl(&vf->rl, vf->name, "cannot change the power state");
}

static void vfio_pci_cfg_write(struct pci_dev *d, uint32_t off, uint32_t len)
{
	struct vfio_pci *vf = vfio_from_pci(d);
	uint32_t i;
	bool writable = false;

	atomic_fetch_add(&vf->cnt.cfg_writes, 1);
	for (i = 0; i < len; i++)
		writable |= d->wmask[off + i] || d->w1cmask[off + i];
	if (!writable) {
		/* IDs, capability bodies, extended capabilities: never reach the device */
		atomic_fetch_add(&vf->cnt.cfg_writes_refused, 1);
		log_debug(vf->name, "config write at %#x len %u refused", off, len);
		return;
	}
	if (ranges_overlap(off, len, PCI_COMMAND, 2))
		vfio_forward_command(vf);
	if (vf->has_msix)
		msix__cfg_write(&vf->msix, off, len);
	if (vf->msi_cap && vf->irq_count[VFIO_PCI_MSI_IRQ_INDEX] &&
	    ranges_overlap(off, len, vf->msi_cap + PCI_MSI_FLAGS, 22))
		vfio_msi_cfg_write(vf);
	if (vf->pm_cap && ranges_overlap(off, len, vf->pm_cap + PCI_PM_CTRL, 2))
		vfio_forward_pm(vf);
	if (vf->pcie_cap && ranges_overlap(off, len, vf->pcie_cap + PCI_EXP_DEVCTL + 1, 1) &&
	    (pci__cfg_rd8(d, vf->pcie_cap + PCI_EXP_DEVCTL + 1) & (PCI_EXP_DEVCTL_BCR_FLR >> 8))) {
		uint32_t o = vf->pcie_cap + PCI_EXP_DEVCTL + 1;
		int ret = vf->be->ops->reset(vf->be, vf->dev);

		pci__cfg_wr8(d, o, pci__cfg_rd8(d, o) & (uint8_t)~(PCI_EXP_DEVCTL_BCR_FLR >> 8));
		if (ret)
			log_err_rl(&vf->rl, vf->name, "guest FLR: VFIO_DEVICE_RESET: %s",
				   strerror(-ret));
	}
}

static const struct pci_dev_ops vfio_pci_ops = {
	.bar_map = vfio_bar_map,
	.bar_unmap = vfio_bar_unmap,
	.cfg_read = vfio_pci_cfg_read,
	.cfg_write = vfio_pci_cfg_write,
};

/* ---- create / destroy ---------------------------------------------------- */

static int vfio_reset_run(struct vfio_pci *vf, const char *when)
{
	struct vfio_reset_report rep;
	int ret;

	vf->rdev = (struct vfio_reset_dev){
		.name = vf->name,
		.be = vf->be,
		.dev = vf->dev,
		.cfg_off = vf->cfg_off,
		.dev_flags = vf->info.flags,
		.pm_cap = vf->pm_cap,
		.vendor = vf->rdev.vendor,
		.group_id = vf->group->id,
		.group_fd = vf->group->fd,
		.iommu = vf->iommu,
	};
	ret = vfio_reset__ladder(&vf->rdev, &rep);
	vf->last_reset = rep.step;
	log_info(vf->name, "reset on %s: %s", when, vfio_reset__step_name(rep.step));
	return ret;
}

static void vfio_irqs_off(struct vfio_pci *vf)
{
	switch (vf->irq_mode) {
	case VFIO_IRQ_MSIX:
		vfio_set_irqs(vf, VFIO_PCI_MSIX_IRQ_INDEX,
			      VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, NULL);
		break;
	case VFIO_IRQ_MSI:
		vfio_set_irqs(vf, VFIO_PCI_MSI_IRQ_INDEX,
			      VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, NULL);
		break;
	case VFIO_IRQ_INTX:
		vfio_intx_disable(vf);
		break;
	case VFIO_IRQ_NONE:
		break;
	}
	vf->irq_mode = VFIO_IRQ_NONE;
}

static void vfio_irqs_free(struct vfio_pci *vf)
{
	unsigned int i;

	vfio_msi_teardown(vf);
	for (i = 0; i < VFIO_MSI_MAX; i++) {
		if (vf->msi_efd[i] >= 0)
			close(vf->msi_efd[i]);
		vf->msi_efd[i] = -1;
	}
	if (vf->intx_irqfd)
		vfio_irqfd_detach(vf, vf->intx_efd, vf->pci.intx_gsi);
	vf->intx_irqfd = false;
	if (vf->intx_efd >= 0)
		close(vf->intx_efd);
	if (vf->intx_resample >= 0)
		close(vf->intx_resample);
	vf->intx_efd = vf->intx_resample = -1;
	if (vf->has_msix)
		msix__destroy(&vf->msix);
	vf->has_msix = false;
}

static int vfio_device_open(struct vfio_pci *vf, char *msg, size_t msglen)
{
	struct vfio_region_info *cfg_info = NULL;
	struct vfio_irq_info irq;
	uint32_t i;
	int ret;

	vf->dev = vf->be->ops->group_device_fd(vf->be, vf->group->fd, vf->bdf);
	if (vf->dev < 0) {
		snprintf(msg, msglen, "VFIO_GROUP_GET_DEVICE_FD: %s", strerror(-vf->dev));
		return vf->dev;
	}
	ret = vf->be->ops->device_info(vf->be, vf->dev, &vf->info);
	if (ret) {
		snprintf(msg, msglen, "VFIO_DEVICE_GET_INFO: %s", strerror(-ret));
		return ret;
	}
	if (!(vf->info.flags & VFIO_DEVICE_FLAGS_PCI) ||
	    vf->info.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX) {
		snprintf(msg, msglen, "not a VFIO PCI device");
		return -ENODEV;
	}
	ret = vf->be->ops->region_info(vf->be, vf->dev, VFIO_PCI_CONFIG_REGION_INDEX, &cfg_info);
	if (ret) {
		snprintf(msg, msglen, "config region info: %s", strerror(-ret));
		return ret;
	}
	vf->cfg_off = cfg_info->offset;
	vf->cfg_size = MIN(cfg_info->size, (uint64_t)PCI_CFG_SPACE_EXP_SIZE);
	free(cfg_info);
	if (vf->cfg_size < PCI_CFG_SPACE_SIZE) {
		snprintf(msg, msglen, "config region is only %llu bytes",
			 (unsigned long long)vf->cfg_size);
		return -EINVAL;
	}
	for (i = 0; i < VFIO_PCI_NUM_IRQS && i < vf->info.num_irqs; i++) {
		memset(&irq, 0, sizeof(irq));
		irq.argsz = sizeof(irq);
		irq.index = i;
		if (!vf->be->ops->irq_info(vf->be, vf->dev, &irq) &&
		    (irq.flags & VFIO_IRQ_INFO_EVENTFD))
			vf->irq_count[i] = irq.count;
	}
	return 0;
}

int vfio_pci__plug(struct vfio_pci *vf)
{
	int ret;

	ret = pci__register(&vf->vm->pci, &vf->pci, -1);
	if (ret) {
		log_err(vf->name, "cannot put %s on the PCI bus: %s", vf->bdf,
			ret == -ENOSPC ? "no free slot" : strerror(-ret));
		return ret;
	}
	if (!vf->intx_tried) {
		vf->intx_tried = true;
		ret = vfio_intx_setup(vf);
		if (ret)
			log_warn(vf->name, "INTx fallback not available: %s", strerror(-ret));
	}
	clock_gettime(CLOCK_MONOTONIC, &vf->t_plugged);
	vf->driver_ms = -1;
	__atomic_store_n(&vf->traffic_state,
			 vf->has_msix ? VFIO_TRAFFIC_WAIT_DRIVER : VFIO_TRAFFIC_OFF, __ATOMIC_RELEASE);
	vf->awaiting_traffic = false;
	vf->traffic_ms = -1;
	log_info(vf->name, "%s assigned at 00:%02x.0 (%04x:%04x, IOMMU group %u, %s%s)", vf->bdf,
		 vf->pci.devfn >> 3, pci__cfg_rd16(&vf->pci, PCI_VENDOR_ID),
		 pci__cfg_rd16(&vf->pci, PCI_DEVICE_ID), vf->group->id,
		 vf->has_msix ? "MSI-X" : vf->msi_cap ? "MSI" : "INTx",
		 vf->group->kvm_added ? ", KVM VFIO device" : "");
	return 0;
}

static void vfio_dev_describe(struct vmm_device *d, json_t *o)
{
	struct vfio_pci *vf = container_of(d, struct vfio_pci, mdev);
	struct vfio_pci_stats st;

	json_object_set_new(o, "detail", json_string(vf->bdf));
	/* plug to the guest's driver enabling MSI-X; null until it has */
	json_object_set_new(o, "driver_ms", vf->driver_ms >= 0 ? json_real(vf->driver_ms) : json_null());
	/* plug to the VF carrying traffic (vfio_pci__traffic_poll); null until then, or unknown */
	json_object_set_new(o, "traffic_ms", vf->traffic_ms >= 0 ? json_real(vf->traffic_ms) : json_null());
	vfio_pci__stats(vf, &st);
	json_object_set_new(o, "counters",
			    json_pack("{s:I,s:I,s:I,s:I,s:I}", "config_exits",
				      (json_int_t)(st.cfg_reads + st.cfg_writes), "msix_table_exits",
				      (json_int_t)st.msix_table_exits, "bar_trap_exits",
				      (json_int_t)st.bar_trap_exits, "userspace_irqs",
				      (json_int_t)st.userspace_irqs, "bar_memslots",
				      (json_int_t)st.memslots));
}

static void vfio_dev_log_stats(struct vmm_device *d)
{
	vfio_pci__log_stats(container_of(d, struct vfio_pci, mdev));
}

static void vfio_dev_destroy(struct vmm_device *d)
{
	vfio_pci__destroy(container_of(d, struct vfio_pci, mdev));
}

static const struct vmm_device_ops vfio_dev_ops = {
	.describe = vfio_dev_describe,
	.log_stats = vfio_dev_log_stats,
	.destroy = vfio_dev_destroy,
};

struct vmm_device *vfio_pci__device(struct vfio_pci *vf) { return &vf->mdev; }

struct vfio_pci *vfio_pci__from_device(struct vmm_device *d)
{
	return d && d->ops == &vfio_dev_ops ? container_of(d, struct vfio_pci, mdev) : NULL;
}
const char *vfio_pci__bdf(const struct vfio_pci *vf) { return vf->bdf; }

int vfio_pci__create(struct vm *vm, const char *bdf, const struct vfio_pci_opts *o,
		     struct vfio_pci **out)
{
	static const struct vfio_pci_opts defaults;
	struct vfio_pci *vf;
	uint8_t *cfg = NULL;
	char msg[2048] = "";
	int gid, ret, i;

	if (!o)
		o = &defaults;
	vf = calloc(1, sizeof(*vf));
	if (!vf)
		return -ENOMEM;
	vf->vm = vm;
	vf->be = o->backend ? o->backend : vfio_backend__real();
	vf->dev = -1;
	vf->driver_ms = -1;
	vf->traffic_ms = -1;
	vf->intx_efd = vf->intx_resample = -1;
	for (i = 0; i < VFIO_MSI_MAX; i++)
		vf->msi_efd[i] = vf->msi_gsi[i] = -1;
	vf->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT;
	snprintf(vf->bdf, sizeof(vf->bdf), "%s", bdf);
	if (o->name)
		snprintf(vf->name, sizeof(vf->name), "%s", o->name);
	else
		snprintf(vf->name, sizeof(vf->name), "vfio-%s", bdf);

	/* 1. isolation checks, with the user-facing explanation */
	ret = vf->be->ops->check(vf->be, bdf, vm->mem.ram_size, o->allow_unsafe_interrupts, msg,
				 sizeof(msg));
	if (ret) {
		log_err(vf->name, "%s cannot be assigned:\n%s", bdf, msg[0] ? msg : strerror(-ret));
		goto err_free;
	}
	if (msg[0])
		log_warn(vf->name, "%s", msg);
	gid = vf->be->ops->group_id(vf->be, bdf);
	if (gid < 0) {
		ret = gid;
		log_err(vf->name, "%s has no IOMMU group: %s", bdf, strerror(-ret));
		goto err_free;
	}

	/* 2. the DMA address space and the group */
	if (o->iommu && *o->iommu) {
		vf->iommu = *o->iommu;
	} else {
		ret = vfio_iommu__create_legacy(vm, vf->be, &vf->iommu);
		if (ret)
			goto err_free;
		if (o->iommu)
			*o->iommu = vf->iommu; /* the caller's from now on */
		else
			vf->own_iommu = true;
	}
	msg[0] = 0;
	ret = vfio_iommu__get_group(vf->iommu, (unsigned int)gid, &vf->group, msg, sizeof(msg));
	if (ret) {
		log_err(vf->name, "%s: %s", bdf, msg);
		goto err_iommu;
	}

	/* 3. the device */
	ret = vfio_device_open(vf, msg, sizeof(msg));
	if (ret) {
		log_err(vf->name, "%s: %s", bdf, msg);
		goto err_dev;
	}
	cfg = malloc(PCI_CFG_SPACE_EXP_SIZE);
	if (!cfg) {
		ret = -ENOMEM;
		goto err_dev;
	}
	ret = vfio_read_config(vf, cfg);
	if (ret) {
		log_err(vf->name, "%s: config space unreadable (%s)", bdf,
			ret == -EIO ? "reads all-ones" : strerror(-ret));
		goto err_cfg;
	}
	vf->rdev.vendor = (uint16_t)(cfg[0] | cfg[1] << 8);
	ret = vfio_reset_run(vf, "assign");
	if (ret) {
		log_err(vf->name, "%s does not come back from reset; not assigned", bdf);
		goto err_cfg;
	}
	ret = vfio_read_config(vf, cfg); /* the state after reset */
	if (ret)
		goto err_cfg;

	/* 4. KVM: let the irq bypass and coherency tracking know the group */
	if (!vf->group->kvm_added) {
		ret = vf->be->ops->kvm_vfio_group(vf->be, vm, vf->group->fd, true);
		if (ret)
			log_warn(vf->name, "KVM VFIO device: cannot add group %u (%s); interrupts "
					   "will not be posted", vf->group->id, strerror(-ret));
		else
			vf->group->kvm_added = true;
	}

	/* 5. the guest's view */
	ret = vfio_build_config(vf, cfg);
	if (ret)
		goto err_irqs;
	for (i = 0; i < PCI_NUM_BARS; i++)
		if (vf->regions[i].size && !vf->regions[i].is_io)
			vfio_region_mmap(vf, &vf->regions[i]);
	device__init(&vf->mdev, vf->name, "vfio-pci", DEVICE_BUS_PCI, &vfio_dev_ops);
	vf->mdev.pci = &vf->pci;
	vf->mdev.removable = true;
	vf->mdev.slow_destroy = true; /* the reset ladder */
	ret = device__add(&vm->devices, &vf->mdev);
	if (ret) {
		log_err(vf->name, "cannot add device '%s': %s", vf->mdev.id,
			ret == -EEXIST ? "the id is taken" : strerror(-ret));
		goto err_mmap;
	}
	free(cfg);
	cfg = NULL;
	if (!o->plug_later) {
		ret = vfio_pci__plug(vf);
		if (ret)
			goto err_list;
	} else {
		log_info(vf->name, "%s ready (%04x:%04x, IOMMU group %u, %s%s), not plugged yet", bdf,
			 pci__cfg_rd16(&vf->pci, PCI_VENDOR_ID), pci__cfg_rd16(&vf->pci, PCI_DEVICE_ID),
			 vf->group->id, vf->has_msix ? "MSI-X" : vf->msi_cap ? "MSI" : "INTx",
			 vf->group->kvm_added ? ", KVM VFIO device" : "");
	}
	*out = vf;
	return 0;

err_list:
	device__remove(&vm->devices, &vf->mdev);
err_mmap:
	for (i = 0; i < PCI_NUM_BARS; i++)
		vfio_region_munmap(vf, &vf->regions[i]);
err_irqs:
	vfio_irqs_free(vf);
err_cfg:
	free(cfg);
err_dev:
	if (vf->dev >= 0)
		vf->be->ops->close(vf->be, vf->dev);
	if (vf->group->kvm_added && vf->group->refs == 1) {
		vf->be->ops->kvm_vfio_group(vf->be, vm, vf->group->fd, false);
		vf->group->kvm_added = false;
	}
	vfio_iommu__put_group(vf->iommu, vf->group);
err_iommu:
	if (vf->own_iommu)
		vfio_iommu__destroy(vf->iommu);
err_free:
	free(vf);
	return ret;
}

void vfio_pci__destroy(struct vfio_pci *vf)
{
	int i;

	if (!vf)
		return;
	device__remove(&vf->vm->devices, &vf->mdev);
	pci__unregister(&vf->vm->pci, &vf->pci);
	vfio_irqs_off(vf);
	vfio_irqs_free(vf);
	if (vfio_reset_run(vf, "release"))
		log_err(vf->name, "%s left caged: unbind it from vfio-pci only after checking it",
			vf->bdf);
	for (i = 0; i < PCI_NUM_BARS; i++)
		vfio_region_munmap(vf, &vf->regions[i]);
	vf->be->ops->close(vf->be, vf->dev);
	if (vf->group->kvm_added && vf->group->refs == 1) {
		vf->be->ops->kvm_vfio_group(vf->be, vf->vm, vf->group->fd, false);
		vf->group->kvm_added = false;
	}
	vfio_iommu__put_group(vf->iommu, vf->group);
	if (vf->own_iommu)
		vfio_iommu__destroy(vf->iommu);
	free(vf);
}

void vfio_pci__stats(struct vfio_pci *vf, struct vfio_pci_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->cfg_reads = atomic_load(&vf->cnt.cfg_reads);
	st->cfg_writes = atomic_load(&vf->cnt.cfg_writes);
	st->cfg_writes_refused = atomic_load(&vf->cnt.cfg_writes_refused);
	st->msix_table_exits = atomic_load(&vf->cnt.msix_table_exits);
	st->msix_pba_exits = atomic_load(&vf->cnt.msix_pba_exits);
	st->bar_trap_exits = atomic_load(&vf->cnt.bar_trap_exits);
	st->userspace_irqs = atomic_load(&vf->cnt.userspace_irqs);
	if (vf->has_msix) {
		pthread_mutex_lock(&vf->msix.lock);
		st->userspace_irqs += vf->msix.userspace_injections;
		pthread_mutex_unlock(&vf->msix.lock);
	}
	st->irq_reconfigs = atomic_load(&vf->cnt.irq_reconfigs);
	st->memslots = atomic_load(&vf->cnt.memslots);
	st->last_reset = vf->last_reset;
}

void vfio_pci__log_stats(struct vfio_pci *vf)
{
	struct vfio_pci_stats st;

	vfio_pci__stats(vf, &st);
	log_info("stats", "%s (%s): config reads %llu writes %llu (refused %llu), MSI-X table "
			  "exits %llu, PBA exits %llu, other BAR exits %llu, userspace interrupts "
			  "%llu, SET_IRQS %llu, BAR memslots %llu",
		 vf->name, vf->bdf, (unsigned long long)st.cfg_reads,
		 (unsigned long long)st.cfg_writes, (unsigned long long)st.cfg_writes_refused,
		 (unsigned long long)st.msix_table_exits, (unsigned long long)st.msix_pba_exits,
		 (unsigned long long)st.bar_trap_exits, (unsigned long long)st.userspace_irqs,
		 (unsigned long long)st.irq_reconfigs, (unsigned long long)st.memslots);
}
