/* SPDX-License-Identifier: MIT */
/*
 * A fake VFIO device for the unit tests: a config space array, BARs in
 * memory, region capability chains (sparse mmap, MSI-X mappable), and records
 * of what was asked (SET_IRQS, DMA maps, memory slots, groups on the KVM VFIO
 * device, an operation log).
 * Region i lives at file offset i << 40, as in vfio-pci.
 */
#ifndef MINIVMM_TESTS_UNIT_VFIO_FAKE_H
#define MINIVMM_TESTS_UNIT_VFIO_FAKE_H

#include <errno.h>
#include <linux/pci_regs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/vfio/backend.h"
#include "vmm/util.h"

#define FAKE_CONTAINER 100
#define FAKE_GROUP 200
#define FAKE_DEVICE 300
#define FAKE_BAR_MAX 0x8000
#define FAKE_REGION_SHIFT 40

enum fake_recover { FAKE_RECOVER_NEVER, FAKE_RECOVER_RESET, FAKE_RECOVER_HOT, FAKE_RECOVER_PM };

struct fake_irqset {
	uint32_t index, flags, start, count;
	int32_t fds[64];
};

struct fake_slot {
	uint32_t slot;
	uint64_t gpa, size;
	void *hva;
};

struct fake_dma {
	uint64_t iova, size;
	void *vaddr;
};

struct fake_vfio {
	struct vfio_backend be;
	/* the device */
	uint8_t cfg[4096];
	uint32_t cfg_size;
	uint8_t bar[6][FAKE_BAR_MAX];
	uint64_t bar_size[6];
	bool bar_mmap[6];
	struct { uint64_t off, size; } sparse[6][4];
	unsigned int nr_sparse[6];
	bool msix_mappable[6];
	bool bad_chain[6];      /* capability chain that points backwards */
	uint32_t irq_count[VFIO_PCI_NUM_IRQS];
	uint32_t dev_flags;
	uint8_t pm_cap;
	/* behaviour */
	int check_ret;
	const char *check_msg;
	int group_id;
	bool viable;
	bool dead;              /* config reads return all-ones */
	enum fake_recover recover;
	int hot_other_group;    /* >= 0: the bus reset would also hit a device of this group */
	bool no_bus_reset;      /* the kernel finds no slot or bus reset (-ENODEV), as for a VF on a root bus */
	int type1v2;            /* CHECK_EXTENSION answer */
	/* records */
	char log[8192];
	struct fake_irqset irqs[64];
	unsigned int nr_irqs;
	struct fake_slot slots[128];
	unsigned int nr_slots;
	struct fake_dma maps[16];
	unsigned int nr_maps;
	struct fake_dma unmaps[16];
	unsigned int nr_unmaps;
	unsigned int cfg_pwrites;
	unsigned int group_opens, closes, mmaps, munmaps;
	int kvm_groups;         /* groups on the KVM VFIO device now */
	int kvm_group_ret;      /* what adding a group to the KVM VFIO device returns */
	unsigned int kvm_adds, kvm_dels;
	int kvm_last_group;     /* handle of the last add/del */
	struct vm *kvm_last_vm;
	bool iommu_set;
};

static inline struct fake_vfio *fake_of(struct vfio_backend *b)
{
	return container_of(b, struct fake_vfio, be);
}

static inline void fake_log(struct fake_vfio *f, const char *fmt, ...)
{
	size_t n = strlen(f->log);
	va_list ap;

	if (n && n < sizeof(f->log) - 1)
		f->log[n++] = ',';
	va_start(ap, fmt);
	vsnprintf(f->log + n, sizeof(f->log) - n, fmt, ap);
	va_end(ap);
}

static inline int fake_check(struct vfio_backend *b, const char *bdf, uint64_t pin, bool unsafe,
			     char *msg, size_t len)
{
	struct fake_vfio *f = fake_of(b);

	if (f->check_msg)
		snprintf(msg, len, "%s", f->check_msg);
	return f->check_ret;
}

static inline int fake_group_id(struct vfio_backend *b, const char *bdf)
{
	return fake_of(b)->group_id;
}

static inline int fake_container_open(struct vfio_backend *b) { return FAKE_CONTAINER; }
static inline int fake_api(struct vfio_backend *b, int c) { return VFIO_API_VERSION; }
static inline int fake_ext(struct vfio_backend *b, int c, unsigned long ext)
{
	return ext == VFIO_TYPE1v2_IOMMU ? fake_of(b)->type1v2 : 0;
}

static inline int fake_set_iommu(struct vfio_backend *b, int c, unsigned long type)
{
	fake_log(fake_of(b), "set_iommu%lu", type);
	fake_of(b)->iommu_set = true;
	return 0;
}

static inline int fake_dma_map(struct vfio_backend *b, int c, uint64_t iova, uint64_t size,
			       void *vaddr)
{
	struct fake_vfio *f = fake_of(b);

	if (!f->iommu_set)
		return -EINVAL;
	f->maps[f->nr_maps++] = (struct fake_dma){ iova, size, vaddr };
	fake_log(f, "map%#llx", (unsigned long long)iova);
	return 0;
}

static inline int fake_dma_unmap(struct vfio_backend *b, int c, uint64_t iova, uint64_t size)
{
	struct fake_vfio *f = fake_of(b);

	f->unmaps[f->nr_unmaps++] = (struct fake_dma){ iova, size, NULL };
	fake_log(f, "unmap%#llx", (unsigned long long)iova);
	return 0;
}

static inline int fake_group_open(struct vfio_backend *b, unsigned int id)
{
	fake_of(b)->group_opens++;
	return FAKE_GROUP;
}

static inline int fake_group_status(struct vfio_backend *b, int g, uint32_t *flags)
{
	*flags = fake_of(b)->viable ? VFIO_GROUP_FLAGS_VIABLE : 0;
	return 0;
}

static inline int fake_group_set_container(struct vfio_backend *b, int g, int c)
{
	fake_log(fake_of(b), "set_container");
	return 0;
}

static inline int fake_group_unset_container(struct vfio_backend *b, int g)
{
	fake_log(fake_of(b), "unset_container");
	return 0;
}

static inline int fake_device_fd(struct vfio_backend *b, int g, const char *bdf)
{
	return FAKE_DEVICE;
}

static inline int fake_device_info(struct vfio_backend *b, int dev, struct vfio_device_info *i)
{
	memset(i, 0, sizeof(*i));
	i->argsz = sizeof(*i);
	i->flags = fake_of(b)->dev_flags | VFIO_DEVICE_FLAGS_PCI;
	i->num_regions = VFIO_PCI_NUM_REGIONS;
	i->num_irqs = VFIO_PCI_NUM_IRQS;
	return 0;
}

static inline int fake_region_info(struct vfio_backend *b, int dev, uint32_t index,
				   struct vfio_region_info **out)
{
	struct fake_vfio *f = fake_of(b);
	size_t sz = sizeof(struct vfio_region_info) + 256;
	struct vfio_region_info *info = calloc(1, sz);
	uint32_t off = sizeof(*info);

	if (!info)
		return -ENOMEM;
	info->argsz = (uint32_t)sz;
	info->index = index;
	info->offset = (uint64_t)index << FAKE_REGION_SHIFT;
	if (index == VFIO_PCI_CONFIG_REGION_INDEX) {
		info->size = f->cfg_size;
		info->flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	} else if (index < 6 && f->bar_size[index]) {
		info->size = f->bar_size[index];
		info->flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
		if (f->bar_mmap[index])
			info->flags |= VFIO_REGION_INFO_FLAG_MMAP;
		if (f->nr_sparse[index] || f->msix_mappable[index] || f->bad_chain[index]) {
			struct vfio_info_cap_header *prev = NULL;

			info->flags |= VFIO_REGION_INFO_FLAG_CAPS;
			info->cap_offset = off;
			if (f->nr_sparse[index]) {
				struct vfio_region_info_cap_sparse_mmap *sp = (void *)((uint8_t *)info + off);
				unsigned int i;

				sp->header.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP;
				sp->header.version = 1;
				sp->nr_areas = f->nr_sparse[index];
				for (i = 0; i < sp->nr_areas; i++) {
					sp->areas[i].offset = f->sparse[index][i].off;
					sp->areas[i].size = f->sparse[index][i].size;
				}
				prev = &sp->header;
				off += (uint32_t)(sizeof(*sp) + sp->nr_areas * sizeof(sp->areas[0]));
			}
			if (f->msix_mappable[index] || f->bad_chain[index]) {
				struct vfio_info_cap_header *h = (void *)((uint8_t *)info + off);

				h->id = VFIO_REGION_INFO_CAP_MSIX_MAPPABLE;
				h->version = 1;
				if (prev)
					prev->next = off;
				else
					info->cap_offset = off;
				/* a chain that loops back onto its first entry */
				if (f->bad_chain[index])
					h->next = info->cap_offset;
			}
		}
	}
	*out = info;
	return 0;
}

static inline int fake_irq_info(struct vfio_backend *b, int dev, struct vfio_irq_info *i)
{
	if (i->index >= VFIO_PCI_NUM_IRQS)
		return -EINVAL;
	i->count = fake_of(b)->irq_count[i->index];
	i->flags = VFIO_IRQ_INFO_EVENTFD;
	return 0;
}

static inline int fake_set_irqs(struct vfio_backend *b, int dev, const struct vfio_irq_set *s)
{
	struct fake_vfio *f = fake_of(b);
	struct fake_irqset *r = &f->irqs[f->nr_irqs++ % 64];

	memset(r, 0, sizeof(*r));
	r->index = s->index;
	r->flags = s->flags;
	r->start = s->start;
	r->count = s->count;
	if ((s->flags & VFIO_IRQ_SET_DATA_EVENTFD) && s->count <= 64)
		memcpy(r->fds, s->data, s->count * sizeof(int32_t));
	fake_log(f, "irqs%u/%u", s->index, s->count);
	return 0;
}

static inline uint16_t fake_cfg16(struct fake_vfio *f, uint32_t off)
{
	return (uint16_t)(f->cfg[off] | f->cfg[off + 1] << 8);
}

static inline int fake_reset(struct vfio_backend *b, int dev)
{
	struct fake_vfio *f = fake_of(b);

	if (dev != FAKE_DEVICE)
		return -ENOTTY; /* as the kernel answers on a handle that is not the device */
	fake_log(f, "reset");
	if (f->recover == FAKE_RECOVER_RESET)
		f->dead = false;
	return 0;
}

static inline int fake_hot_reset_info(struct vfio_backend *b, int dev,
				      struct vfio_pci_hot_reset_info **out)
{
	struct fake_vfio *f = fake_of(b);
	struct vfio_pci_hot_reset_info *i = calloc(1, sizeof(*i) + 2 * sizeof(i->devices[0]));

	if (!i)
		return -ENOMEM;
	fake_log(f, "hotinfo");
	if (f->no_bus_reset) {
		free(i);
		return -ENODEV;
	}
	i->count = f->hot_other_group >= 0 ? 2 : 1;
	i->devices[0].group_id = (uint32_t)f->group_id;
	i->devices[0].devfn = 0x81;
	if (f->hot_other_group >= 0) {
		i->devices[1].group_id = (uint32_t)f->hot_other_group;
		i->devices[1].devfn = 0x80;
	}
	*out = i;
	return 0;
}

static inline int fake_hot_reset(struct vfio_backend *b, int dev, const int *fds, unsigned int n)
{
	struct fake_vfio *f = fake_of(b);

	fake_log(f, "hotreset");
	if (f->recover == FAKE_RECOVER_HOT)
		f->dead = false;
	return 0;
}

static inline uint8_t *fake_region_ptr(struct fake_vfio *f, uint64_t off, size_t len)
{
	uint64_t idx = off >> FAKE_REGION_SHIFT, o = off & ((1ULL << FAKE_REGION_SHIFT) - 1);

	if (idx == VFIO_PCI_CONFIG_REGION_INDEX)
		return o + len <= f->cfg_size ? &f->cfg[o] : NULL;
	if (idx < 6 && o + len <= f->bar_size[idx] && o + len <= FAKE_BAR_MAX)
		return &f->bar[idx][o];
	return NULL;
}

static inline ssize_t fake_pread(struct vfio_backend *b, int dev, void *buf, size_t len,
				 uint64_t off)
{
	struct fake_vfio *f = fake_of(b);

	uint8_t *p = fake_region_ptr(f, off, len);

	if (dev != FAKE_DEVICE)
		return -EBADF;
	if (!p)
		return -EINVAL;
	if (f->dead && (off >> FAKE_REGION_SHIFT) == VFIO_PCI_CONFIG_REGION_INDEX)
		memset(buf, 0xff, len);
	else
		memcpy(buf, p, len);
	return (ssize_t)len;
}

static inline ssize_t fake_pwrite(struct vfio_backend *b, int dev, const void *buf, size_t len,
				  uint64_t off)
{
	struct fake_vfio *f = fake_of(b);

	uint8_t *p = fake_region_ptr(f, off, len);
	uint64_t o = off & ((1ULL << FAKE_REGION_SHIFT) - 1);

	if (dev != FAKE_DEVICE)
		return -EBADF;
	if (!p)
		return -EINVAL;
	memcpy(p, buf, len);
	if ((off >> FAKE_REGION_SHIFT) == VFIO_PCI_CONFIG_REGION_INDEX) {
		f->cfg_pwrites++;
		if (len == 2)
			fake_log(f, "cfg%#llx=%#x", (unsigned long long)o, fake_cfg16(f, (uint32_t)o));
		else
			fake_log(f, "cfg%#llx", (unsigned long long)o);
		/* the PM cycle brings it back when it reaches D0 */
		if (f->pm_cap && o == (uint64_t)f->pm_cap + PCI_PM_CTRL && f->recover == FAKE_RECOVER_PM &&
		    !(fake_cfg16(f, (uint32_t)o) & PCI_PM_CTRL_STATE_MASK) && strstr(f->log, "=0x3"))
			f->dead = false;
	}
	return (ssize_t)len;
}

static inline void *fake_mmap(struct vfio_backend *b, int dev, uint64_t off, uint64_t len)
{
	struct fake_vfio *f = fake_of(b);
	uint8_t *p = fake_region_ptr(f, off, len);

	if (!p || (off >> FAKE_REGION_SHIFT) >= 6)
		return ERR_PTR(-EINVAL);
	f->mmaps++;
	return p;
}

static inline void fake_munmap(struct vfio_backend *b, void *addr, uint64_t len)
{
	fake_of(b)->munmaps++;
}

static inline void fake_close(struct vfio_backend *b, int fd) { fake_of(b)->closes++; }

static inline int fake_set_memslot(struct vfio_backend *b, struct vm *vm, uint32_t slot,
				   uint64_t gpa, uint64_t size, void *hva)
{
	struct fake_vfio *f = fake_of(b);

	f->slots[f->nr_slots++ % 128] = (struct fake_slot){ slot, gpa, size, hva };
	return 0;
}

/* recorded in the log as kvm_add<handle> / kvm_del<handle> */
static inline int fake_kvm_vfio_group(struct vfio_backend *b, struct vm *vm, int g, bool add)
{
	struct fake_vfio *f = fake_of(b);

	fake_log(f, "kvm_%s%d", add ? "add" : "del", g);
	f->kvm_last_group = g;
	f->kvm_last_vm = vm;
	if (!add) {
		f->kvm_dels++;
		f->kvm_groups--;
		return 0;
	}
	f->kvm_adds++;
	if (f->kvm_group_ret)
		return f->kvm_group_ret;
	f->kvm_groups++;
	return 0;
}

static inline void fake_msleep(struct vfio_backend *b, unsigned int ms)
{
	fake_log(fake_of(b), "sleep%u", ms);
}

static const struct vfio_backend_ops fake_ops = {
	.check = fake_check,
	.group_id = fake_group_id,
	.container_open = fake_container_open,
	.get_api_version = fake_api,
	.check_extension = fake_ext,
	.set_iommu = fake_set_iommu,
	.dma_map = fake_dma_map,
	.dma_unmap = fake_dma_unmap,
	.group_open = fake_group_open,
	.group_status = fake_group_status,
	.group_set_container = fake_group_set_container,
	.group_unset_container = fake_group_unset_container,
	.group_device_fd = fake_device_fd,
	.device_info = fake_device_info,
	.region_info = fake_region_info,
	.irq_info = fake_irq_info,
	.set_irqs = fake_set_irqs,
	.reset = fake_reset,
	.hot_reset_info = fake_hot_reset_info,
	.hot_reset = fake_hot_reset,
	.pread = fake_pread,
	.pwrite = fake_pwrite,
	.mmap = fake_mmap,
	.munmap = fake_munmap,
	.close = fake_close,
	.set_memslot = fake_set_memslot,
	.kvm_vfio_group = fake_kvm_vfio_group,
	.msleep = fake_msleep,
};

static inline void fake_w16(struct fake_vfio *f, uint32_t off, uint16_t v)
{
	f->cfg[off] = (uint8_t)v;
	f->cfg[off + 1] = (uint8_t)(v >> 8);
}

static inline void fake_w32(struct fake_vfio *f, uint32_t off, uint32_t v)
{
	fake_w16(f, off, (uint16_t)v);
	fake_w16(f, off + 2, (uint16_t)(v >> 16));
}

/*
 * An igbvf-like VF: 8086:10ca, class 0x020000, BAR0 64-bit 16 KiB registers
 * (fully mmappable), BAR3 64-bit 32 KiB with the MSI-X table (3 vectors) at 0
 * and the PBA at 0x2000, sparse-mmap'd as one area the kernel left whole
 * (MSIX_MAPPABLE). Capabilities: PM at 0x40 -> MSI-X at 0x50 -> PCIe at 0x70
 * -> vendor-specific at 0xa0; extended: AER at 0x100 -> SR-IOV at 0x140 -> ARI
 * at 0x180.
 */
static inline void fake_init(struct fake_vfio *f)
{
	memset(f, 0, sizeof(*f));
	f->be.ops = &fake_ops;
	f->cfg_size = 4096;
	f->group_id = 7;
	f->viable = true;
	f->type1v2 = 1;
	f->hot_other_group = -1;
	f->dev_flags = VFIO_DEVICE_FLAGS_RESET;
	f->recover = FAKE_RECOVER_RESET;
	f->irq_count[VFIO_PCI_MSIX_IRQ_INDEX] = 3;
	fake_w16(f, PCI_VENDOR_ID, 0x8086);
	fake_w16(f, PCI_DEVICE_ID, 0x10ca);
	fake_w16(f, PCI_COMMAND, 0x0400); /* INTx disabled, as a VF reads */
	fake_w16(f, PCI_STATUS, PCI_STATUS_CAP_LIST);
	fake_w32(f, PCI_CLASS_REVISION, 0x02000001);
	fake_w32(f, PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_MEM_TYPE_64);
	fake_w32(f, PCI_BASE_ADDRESS_3, PCI_BASE_ADDRESS_MEM_TYPE_64);
	fake_w16(f, PCI_SUBSYSTEM_VENDOR_ID, 0x8086);
	fake_w16(f, PCI_SUBSYSTEM_ID, 0xa01c);
	f->cfg[PCI_CAPABILITY_LIST] = 0x40;
	/* PM */
	f->pm_cap = 0x40;
	f->cfg[0x40] = PCI_CAP_ID_PM;
	f->cfg[0x41] = 0x50;
	fake_w16(f, 0x42, 0x0003);
	/* MSI-X: 3 vectors, table BIR 3 offset 0, PBA BIR 3 offset 0x2000 */
	f->cfg[0x50] = PCI_CAP_ID_MSIX;
	f->cfg[0x51] = 0x70;
	fake_w16(f, 0x52, 2);
	fake_w32(f, 0x54, 0x0000 | 3);
	fake_w32(f, 0x58, 0x2000 | 3);
	/* PCIe v2 endpoint */
	f->cfg[0x70] = PCI_CAP_ID_EXP;
	f->cfg[0x71] = 0xa0;
	fake_w16(f, 0x72, 0x0002);
	fake_w32(f, 0x74, 0x10008000); /* DEVCAP: FLR */
	/* vendor specific */
	f->cfg[0xa0] = PCI_CAP_ID_VNDR;
	f->cfg[0xa1] = 0;
	f->cfg[0xa2] = 8;
	f->cfg[0xa3] = 0x5a;
	/* extended capabilities */
	fake_w32(f, 0x100, PCI_EXT_CAP_ID_ERR | 1 << 16 | 0x140u << 20);
	fake_w32(f, 0x140, PCI_EXT_CAP_ID_SRIOV | 1 << 16 | 0x180u << 20);
	fake_w32(f, 0x148, 0xdeadbeef);
	fake_w32(f, 0x180, PCI_EXT_CAP_ID_ARI | 1 << 16);
	f->bar_size[0] = 0x4000;
	f->bar_mmap[0] = true;
	f->bar_size[3] = 0x8000;
	f->bar_mmap[3] = true;
	f->msix_mappable[3] = true;
}

#endif
