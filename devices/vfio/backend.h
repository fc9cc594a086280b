/* SPDX-License-Identifier: MIT */
/*
 * Everything the VFIO code asks of the outside world, as one ops struct: the
 * container, group and device ioctls, region I/O and mmap, the KVM side
 * (memory slots, the KVM VFIO device) and the isolation check. The real
 * backend (backend.c) goes through vmm/sys.h; unit tests plug in a fake that
 * keeps a config space array and BARs in memory and records what was asked.
 *
 * Handles (container, group, device) are small integers: file descriptors in
 * the real backend, whatever the fake likes. Every op returns 0 (or a handle /
 * byte count) or -errno.
 */
#ifndef MINIVMM_DEVICES_VFIO_BACKEND_H
#define MINIVMM_DEVICES_VFIO_BACKEND_H

#include <linux/vfio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vm;
struct vfio_backend;

struct vfio_backend_ops {
	/* isolation checks before anything is opened (devices/vfio/check.h) */
	int (*check)(struct vfio_backend *b, const char *bdf, uint64_t pin_bytes,
		     bool allow_unsafe_interrupts, char *msg, size_t msglen);
	/* the IOMMU group number of a PCI device (sysfs iommu_group link) */
	int (*group_id)(struct vfio_backend *b, const char *bdf);

	/* container: /dev/vfio/vfio */
	int (*container_open)(struct vfio_backend *b);
	int (*get_api_version)(struct vfio_backend *b, int container);
	int (*check_extension)(struct vfio_backend *b, int container, unsigned long ext);
	int (*set_iommu)(struct vfio_backend *b, int container, unsigned long type);
	int (*dma_map)(struct vfio_backend *b, int container, uint64_t iova, uint64_t size,
		       void *vaddr);
	int (*dma_unmap)(struct vfio_backend *b, int container, uint64_t iova, uint64_t size);

	/* group: /dev/vfio/N */
	int (*group_open)(struct vfio_backend *b, unsigned int group_id);
	int (*group_status)(struct vfio_backend *b, int group, uint32_t *flags);
	int (*group_set_container)(struct vfio_backend *b, int group, int container);
	int (*group_unset_container)(struct vfio_backend *b, int group);
	int (*group_device_fd)(struct vfio_backend *b, int group, const char *bdf);

	/* device */
	int (*device_info)(struct vfio_backend *b, int dev, struct vfio_device_info *info);
	/*
	 * region info with its capability chain: *out is malloc()ed, argsz bytes
	 * (the caller frees it); capability offsets are relative to *out
	 */
	int (*region_info)(struct vfio_backend *b, int dev, uint32_t index,
			   struct vfio_region_info **out);
	int (*irq_info)(struct vfio_backend *b, int dev, struct vfio_irq_info *info);
	int (*set_irqs)(struct vfio_backend *b, int dev, const struct vfio_irq_set *set);
	int (*reset)(struct vfio_backend *b, int dev);
	/* *out malloc()ed with room for every device the hot reset would hit */
	int (*hot_reset_info)(struct vfio_backend *b, int dev,
			      struct vfio_pci_hot_reset_info **out);
	int (*hot_reset)(struct vfio_backend *b, int dev, const int *group_fds, unsigned int nr);
	/* whole-length region I/O at an absolute device file offset */
	ssize_t (*pread)(struct vfio_backend *b, int dev, void *buf, size_t len, uint64_t off);
	ssize_t (*pwrite)(struct vfio_backend *b, int dev, const void *buf, size_t len,
			  uint64_t off);
	/* maps len bytes of the device file at off (shared, read/write); NULL-free ERR_PTR on error */
	void *(*mmap)(struct vfio_backend *b, int dev, uint64_t off, uint64_t len);
	void (*munmap)(struct vfio_backend *b, void *addr, uint64_t len);
	void (*close)(struct vfio_backend *b, int fd);

	/* KVM side */
	int (*set_memslot)(struct vfio_backend *b, struct vm *vm, uint32_t slot, uint64_t gpa,
			   uint64_t size, void *hva);
	/* add (or delete) a group to the VM's KVM VFIO device: kvm__vfio_group_add/del */
	int (*kvm_vfio_group)(struct vfio_backend *b, struct vm *vm, int group, bool add);

	/* sleeps (the reset ladder's settle times); fakes record instead */
	void (*msleep)(struct vfio_backend *b, unsigned int ms);
};

struct vfio_backend {
	const struct vfio_backend_ops *ops;
	void *priv;
};

/* the backend over the real VFIO and KVM ioctls (a static singleton) */
struct vfio_backend *vfio_backend__real(void);

#endif
