/* SPDX-License-Identifier: MIT */
/*
 * The IOMMU side of VFIO: one DMA address space per VM into which every
 * assigned device's group is attached, holding exactly the guest RAM regions
 * (IOVA == GPA). One struct, one ops table per kernel interface, as the
 * kernel's VFIO selftests (libvfio iommu.h) do:
 *
 *   - legacy: /dev/vfio/vfio container + /dev/vfio/N groups, VFIO_TYPE1v2_IOMMU
 *     (implemented here; the only one Debian's 6.1/6.12 kernels offer);
 *   - iommufd: /dev/iommu IOAS + VFIO device cdevs bound with
 *     VFIO_DEVICE_BIND_IOMMUFD / VFIO_DEVICE_ATTACH_IOMMUFD_PT. Not
 *     implemented: it needs CONFIG_IOMMUFD and CONFIG_VFIO_DEVICE_CDEV, which
 *     Debian does not enable, so it could not be exercised. A second ops table
 *     (attach_group becoming "attach device", dma_map to IOMMU_IOAS_MAP) and a
 *     vfio_iommu__create_iommufd() are where it would go.
 */
#ifndef MINIVMM_DEVICES_VFIO_IOMMU_H
#define MINIVMM_DEVICES_VFIO_IOMMU_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/mem.h"
#include "vmm/util.h"

struct vm;
struct vfio_backend;
struct vfio_iommu;

#define VFIO_IOMMU_MAX_GROUPS 16

struct vfio_group {
	unsigned int id;     /* /dev/vfio/<id> */
	int fd;
	unsigned int refs;   /* devices of this group in use */
	bool kvm_added;      /* added to the KVM VFIO device */
};

struct vfio_dma {
	uint64_t iova, size;
	void *hva;
};

struct vfio_iommu_ops {
	const char *name;
	/* attach an opened, viable group to the address space */
	int (*attach_group)(struct vfio_iommu *io, struct vfio_group *g);
	void (*detach_group)(struct vfio_iommu *io, struct vfio_group *g);
	int (*dma_map)(struct vfio_iommu *io, uint64_t iova, uint64_t size, void *hva);
	int (*dma_unmap)(struct vfio_iommu *io, uint64_t iova, uint64_t size);
	void (*destroy)(struct vfio_iommu *io);
};

struct vfio_iommu {
	const struct vfio_iommu_ops *ops;
	struct vfio_backend *be;
	struct vm *vm;
	pthread_mutex_t lock;
	int container;       /* legacy: the container handle */
	bool iommu_set;      /* legacy: VFIO_SET_IOMMU done (after the first group) */
	struct vfio_group groups[VFIO_IOMMU_MAX_GROUPS];
	unsigned int nr_groups;
	struct vfio_dma dma[MEM_MAX_REGIONS];
	unsigned int nr_dma;
	bool caged;          /* every mapping revoked for good (reset ladder's last step) */
};

/*
 * Opens a legacy container: checks VFIO_GET_API_VERSION and that TYPE1v2 is
 * supported. Groups are attached (and RAM mapped) by vfio_iommu__get_group.
 * vm may be NULL (a device opened without a guest): no DMA mappings at all.
 */
int vfio_iommu__create_legacy(struct vm *vm, struct vfio_backend *be,
			      struct vfio_iommu **out) __must_check;
/* unmaps everything, detaches and closes the groups, frees io */
void vfio_iommu__destroy(struct vfio_iommu *io);

/*
 * The group with this id, opened and attached on first use: it must be viable
 * (VFIO_GROUP_GET_STATUS), then VFIO_GROUP_SET_CONTAINER, then (first group
 * only) VFIO_SET_IOMMU and the DMA mappings of guest RAM. Refcounted; msg gets
 * a sentence for the user on failure.
 */
int vfio_iommu__get_group(struct vfio_iommu *io, unsigned int id, struct vfio_group **out,
			  char *msg, size_t msglen) __must_check;
void vfio_iommu__put_group(struct vfio_iommu *io, struct vfio_group *g);

/*
 * Maps every guest RAM region (and nothing else) at IOVA == GPA; regions
 * already mapped are kept. Called once the address space has an IOMMU; again
 * after a RAM layout change.
 */
int vfio_iommu__map_ram(struct vfio_iommu *io) __must_check;
/* revokes every DMA mapping; caged: never map again (a device that failed reset) */
int vfio_iommu__unmap_all(struct vfio_iommu *io, bool cage);

#endif
