// SPDX-License-Identifier: MIT
/*
 * The real VFIO backend: legacy container/group ioctls, device region I/O and
 * mmap through vmm/sys.h; KVM memory slots and the KVM VFIO device through
 * vmm/kvm.h (no KVM ioctl is issued here).
 */
#include "devices/vfio/backend.h"
#include "devices/vfio/check.h"
#include "vmm/kvm.h"
#include "vmm/log.h"
#include "vmm/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static int vfio_real_check(struct vfio_backend *b, const char *bdf, uint64_t pin_bytes,
			   bool allow_unsafe_interrupts, char *msg, size_t msglen)
{
	return vfio_check__device("/sys", bdf, pin_bytes, allow_unsafe_interrupts, msg, msglen);
}

static int vfio_real_group_id(struct vfio_backend *b, const char *bdf)
{
	return vfio_check__group("/sys", bdf);
}

static int vfio_real_container_open(struct vfio_backend *b)
{
	return sys__open_raw("/dev/vfio/vfio", O_RDWR);
}

static int vfio_real_get_api_version(struct vfio_backend *b, int container)
{
	return sys__ioctl_raw(container, VFIO_GET_API_VERSION, NULL);
}

static int vfio_real_check_extension(struct vfio_backend *b, int container, unsigned long ext)
{
	return sys__ioctl_raw(container, VFIO_CHECK_EXTENSION, (void *)ext);
}

static int vfio_real_set_iommu(struct vfio_backend *b, int container, unsigned long type)
{
	return sys__ioctl(container, VFIO_SET_IOMMU, (void *)type);
}

static int vfio_real_dma_map(struct vfio_backend *b, int container, uint64_t iova, uint64_t size,
			     void *vaddr)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uint64_t)(uintptr_t)vaddr,
		.iova = iova,
		.size = size,
	};

	return sys__ioctl(container, VFIO_IOMMU_MAP_DMA, &m);
}

static int vfio_real_dma_unmap(struct vfio_backend *b, int container, uint64_t iova,
			       uint64_t size)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u),
		.iova = iova,
		.size = size,
	};

	return sys__ioctl(container, VFIO_IOMMU_UNMAP_DMA, &u);
}

static int vfio_real_group_open(struct vfio_backend *b, unsigned int group_id)
{
	char path[64];

	snprintf(path, sizeof(path), "/dev/vfio/%u", group_id);
	return sys__open_raw(path, O_RDWR);
}

static int vfio_real_group_status(struct vfio_backend *b, int group, uint32_t *flags)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	int ret = sys__ioctl(group, VFIO_GROUP_GET_STATUS, &st);

	if (!ret)
		*flags = st.flags;
	return ret;
}

static int vfio_real_group_set_container(struct vfio_backend *b, int group, int container)
{
	return sys__ioctl(group, VFIO_GROUP_SET_CONTAINER, &container);
}

static int vfio_real_group_unset_container(struct vfio_backend *b, int group)
{
	return sys__ioctl(group, VFIO_GROUP_UNSET_CONTAINER, NULL);
}

static int vfio_real_group_device_fd(struct vfio_backend *b, int group, const char *bdf)
{
	return sys__ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
}

static int vfio_real_device_info(struct vfio_backend *b, int dev, struct vfio_device_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	return sys__ioctl(dev, VFIO_DEVICE_GET_INFO, info);
}

static int vfio_real_region_info(struct vfio_backend *b, int dev, uint32_t index,
				 struct vfio_region_info **out)
{
	struct vfio_region_info *info, *bigger;
	uint32_t argsz = sizeof(*info);
	int ret;

	info = calloc(1, argsz);
	if (!info)
		return -ENOMEM;
	for (;;) {
		info->argsz = argsz;
		info->index = index;
		ret = sys__ioctl_raw(dev, VFIO_DEVICE_GET_REGION_INFO, info);
		if (ret < 0)
			goto err;
		/* the kernel says how much room the capability chain needs */
		if (info->argsz <= argsz)
			break;
		if (info->argsz > 64 * 1024) {
			ret = -E2BIG;
			goto err;
		}
		argsz = info->argsz;
		bigger = realloc(info, argsz);
		if (!bigger) {
			ret = -ENOMEM;
			goto err;
		}
		info = bigger;
		memset(info, 0, argsz);
	}
	info->argsz = argsz;
	*out = info;
	return 0;
err:
	free(info);
	return ret;
}

static int vfio_real_irq_info(struct vfio_backend *b, int dev, struct vfio_irq_info *info)
{
	info->argsz = sizeof(*info);
	return sys__ioctl_raw(dev, VFIO_DEVICE_GET_IRQ_INFO, info);
}

static int vfio_real_set_irqs(struct vfio_backend *b, int dev, const struct vfio_irq_set *set)
{
	return sys__ioctl(dev, VFIO_DEVICE_SET_IRQS, set);
}

static int vfio_real_reset(struct vfio_backend *b, int dev)
{
	return sys__ioctl_raw(dev, VFIO_DEVICE_RESET, NULL);
}

static int vfio_real_hot_reset_info(struct vfio_backend *b, int dev,
				    struct vfio_pci_hot_reset_info **out)
{
	struct vfio_pci_hot_reset_info *info;
	size_t sz = sizeof(*info);
	int ret;

	info = calloc(1, sz);
	if (!info)
		return -ENOMEM;
	info->argsz = (uint32_t)sz;
	/* first call: -ENOSPC and the count */
	ret = sys__ioctl_raw(dev, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info);
	if (ret == -ENOSPC && info->count && info->count < 1024) {
		uint32_t count = info->count;

		free(info);
		sz = sizeof(*info) + count * sizeof(struct vfio_pci_dependent_device);
		info = calloc(1, sz);
		if (!info)
			return -ENOMEM;
		info->argsz = (uint32_t)sz;
		ret = sys__ioctl_raw(dev, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info);
	}
	if (ret < 0) {
		free(info);
		return ret;
	}
	*out = info;
	return 0;
}

static int vfio_real_hot_reset(struct vfio_backend *b, int dev, const int *group_fds,
			       unsigned int nr)
{
	struct vfio_pci_hot_reset *r;
	size_t sz = sizeof(*r) + nr * sizeof(int32_t);
	unsigned int i;
	int ret;

	r = calloc(1, sz);
	if (!r)
		return -ENOMEM;
	r->argsz = (uint32_t)sz;
	r->count = nr;
	for (i = 0; i < nr; i++)
		r->group_fds[i] = group_fds[i];
	ret = sys__ioctl_raw(dev, VFIO_DEVICE_PCI_HOT_RESET, r);
	free(r);
	return ret;
}

static ssize_t vfio_real_pread(struct vfio_backend *b, int dev, void *buf, size_t len,
			       uint64_t off)
{
	return sys__pread_full(dev, buf, len, (off_t)off);
}

static ssize_t vfio_real_pwrite(struct vfio_backend *b, int dev, const void *buf, size_t len,
				uint64_t off)
{
	return sys__pwrite_full(dev, buf, len, (off_t)off);
}

static void *vfio_real_mmap(struct vfio_backend *b, int dev, uint64_t off, uint64_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, dev, (off_t)off);

	return p == MAP_FAILED ? ERR_PTR(-errno) : p;
}

static void vfio_real_munmap(struct vfio_backend *b, void *addr, uint64_t len)
{
	munmap(addr, len);
}

static void vfio_real_close(struct vfio_backend *b, int fd)
{
	sys__close(fd);
}

static int vfio_real_set_memslot(struct vfio_backend *b, struct vm *vm, uint32_t slot,
				 uint64_t gpa, uint64_t size, void *hva)
{
	return kvm__set_memslot(vm, slot, gpa, size, hva, false);
}

static int vfio_real_kvm_vfio_group(struct vfio_backend *b, struct vm *vm, int group, bool add)
{
	return add ? kvm__vfio_group_add(vm, group) : kvm__vfio_group_del(vm, group);
}

static void vfio_real_msleep(struct vfio_backend *b, unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static const struct vfio_backend_ops vfio_real_ops = {
	.check = vfio_real_check,
	.group_id = vfio_real_group_id,
	.container_open = vfio_real_container_open,
	.get_api_version = vfio_real_get_api_version,
	.check_extension = vfio_real_check_extension,
	.set_iommu = vfio_real_set_iommu,
	.dma_map = vfio_real_dma_map,
	.dma_unmap = vfio_real_dma_unmap,
	.group_open = vfio_real_group_open,
	.group_status = vfio_real_group_status,
	.group_set_container = vfio_real_group_set_container,
	.group_unset_container = vfio_real_group_unset_container,
	.group_device_fd = vfio_real_group_device_fd,
	.device_info = vfio_real_device_info,
	.region_info = vfio_real_region_info,
	.irq_info = vfio_real_irq_info,
	.set_irqs = vfio_real_set_irqs,
	.reset = vfio_real_reset,
	.hot_reset_info = vfio_real_hot_reset_info,
	.hot_reset = vfio_real_hot_reset,
	.pread = vfio_real_pread,
	.pwrite = vfio_real_pwrite,
	.mmap = vfio_real_mmap,
	.munmap = vfio_real_munmap,
	.close = vfio_real_close,
	.set_memslot = vfio_real_set_memslot,
	.kvm_vfio_group = vfio_real_kvm_vfio_group,
	.msleep = vfio_real_msleep,
};

static struct vfio_backend vfio_real_backend = { .ops = &vfio_real_ops };

struct vfio_backend *vfio_backend__real(void)
{
	return &vfio_real_backend;
}
