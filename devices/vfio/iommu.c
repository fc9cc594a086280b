// SPDX-License-Identifier: MIT
#include "devices/vfio/iommu.h"
#include "devices/vfio/backend.h"
#include "vmm/kvm.h"
#include "vmm/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IOMMU_LOG "vfio-iommu"

static int vfio_legacy_attach_group(struct vfio_iommu *io, struct vfio_group *g)
{
	int ret;

	ret = io->be->ops->group_set_container(io->be, g->fd, io->container);
	if (ret)
		return ret;
	if (!io->iommu_set) {
		/* the IOMMU model can only be set once the container holds a group */
		ret = io->be->ops->set_iommu(io->be, io->container, VFIO_TYPE1v2_IOMMU);
		if (ret) {
			io->be->ops->group_unset_container(io->be, g->fd);
			return ret;
		}
		io->iommu_set = true;
	}
	return 0;
}

static void vfio_legacy_detach_group(struct vfio_iommu *io, struct vfio_group *g)
{
	int ret = io->be->ops->group_unset_container(io->be, g->fd);

	if (ret)
		log_warn(IOMMU_LOG, "group %u: cannot leave the container: %s", g->id,
			 strerror(-ret));
}

static int vfio_legacy_dma_map(struct vfio_iommu *io, uint64_t iova, uint64_t size, void *hva)
{
	return io->be->ops->dma_map(io->be, io->container, iova, size, hva);
}

static int vfio_legacy_dma_unmap(struct vfio_iommu *io, uint64_t iova, uint64_t size)
{
	return io->be->ops->dma_unmap(io->be, io->container, iova, size);
}

static void vfio_legacy_destroy(struct vfio_iommu *io)
{
	if (io->container >= 0)
		io->be->ops->close(io->be, io->container);
	io->container = -1;
}

static const struct vfio_iommu_ops vfio_legacy_ops = {
	.name = "legacy container (TYPE1v2)",
	.attach_group = vfio_legacy_attach_group,
	.detach_group = vfio_legacy_detach_group,
	.dma_map = vfio_legacy_dma_map,
	.dma_unmap = vfio_legacy_dma_unmap,
	.destroy = vfio_legacy_destroy,
};

int vfio_iommu__create_legacy(struct vm *vm, struct vfio_backend *be, struct vfio_iommu **out)
{
	struct vfio_iommu *io;
	int ret;

	io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	io->ops = &vfio_legacy_ops;
	io->be = be;
	io->vm = vm;
	pthread_mutex_init(&io->lock, NULL);
	io->container = be->ops->container_open(be);
	if (io->container < 0) {
		ret = io->container;
		log_err(IOMMU_LOG, "cannot open /dev/vfio/vfio: %s%s", strerror(-ret),
			ret == -ENOENT ? " (modprobe vfio-pci)" : "");
		goto err_free;
	}
	ret = be->ops->get_api_version(be, io->container);
	if (ret != VFIO_API_VERSION) {
		log_err(IOMMU_LOG, "VFIO API version %d, expected %d", ret, VFIO_API_VERSION);
		ret = -ENOTSUP;
		goto err_close;
	}
	ret = be->ops->check_extension(be, io->container, VFIO_TYPE1v2_IOMMU);
	if (ret <= 0) {
		log_err(IOMMU_LOG, "the kernel's VFIO has no TYPE1v2 IOMMU (is an IOMMU enabled? "
				   "intel_iommu=on / amd_iommu=on)");
		ret = -ENOTSUP;
		goto err_close;
	}
	*out = io;
	return 0;

err_close:
	be->ops->close(be, io->container);
err_free:
	pthread_mutex_destroy(&io->lock);
	free(io);
	return ret;
}

static bool vfio_iommu_dma_mapped(const struct vfio_iommu *io, const struct mem_region *r)
{
	unsigned int i;

	for (i = 0; i < io->nr_dma; i++)
		if (io->dma[i].iova == r->gpa && io->dma[i].size == r->size &&
		    io->dma[i].hva == r->hva)
			return true;
	return false;
}

/* called with io->lock held */
static int vfio_iommu_map_ram_locked(struct vfio_iommu *io)
{
	const struct guest_mem *mem;
	unsigned int i;
	int ret;

	if (io->caged)
		return -EPERM;
	if (!io->vm)
		return 0; /* no VM (a device opened for a reset only): nothing to map */
	mem = &io->vm->mem;
	for (i = 0; i < mem->nr_regions; i++) {
		const struct mem_region *r = &mem->regions[i];

		if (!r->size || vfio_iommu_dma_mapped(io, r))
			continue;
		if (io->nr_dma == ARRAY_SIZE(io->dma))
			return -ENOSPC;
		ret = io->ops->dma_map(io, r->gpa, r->size, r->hva);
		if (ret) {
			log_err(IOMMU_LOG, "cannot map guest RAM [%#llx, +%#llx) for DMA: %s%s",
				(unsigned long long)r->gpa, (unsigned long long)r->size,
				strerror(-ret),
				ret == -ENOMEM ? " (RLIMIT_MEMLOCK too small? see ulimit -l)" : "");
			return ret;
		}
		io->dma[io->nr_dma++] = (struct vfio_dma){ r->gpa, r->size, r->hva };
	}
	return 0;
}

int vfio_iommu__map_ram(struct vfio_iommu *io)
{
	int ret;

	pthread_mutex_lock(&io->lock);
	ret = io->iommu_set ? vfio_iommu_map_ram_locked(io) : -ENODEV;
	pthread_mutex_unlock(&io->lock);
	return ret;
}

static int vfio_iommu_unmap_all_locked(struct vfio_iommu *io)
{
	int ret, first = 0;

	while (io->nr_dma) {
		struct vfio_dma *d = &io->dma[io->nr_dma - 1];

		ret = io->ops->dma_unmap(io, d->iova, d->size);
		if (ret && !first)
			first = ret;
		io->nr_dma--;
	}
	return first;
}

int vfio_iommu__unmap_all(struct vfio_iommu *io, bool cage)
{
	int ret;

	pthread_mutex_lock(&io->lock);
	ret = vfio_iommu_unmap_all_locked(io);
	if (cage)
		io->caged = true;
	pthread_mutex_unlock(&io->lock);
	return ret;
}

int vfio_iommu__get_group(struct vfio_iommu *io, unsigned int id, struct vfio_group **out,
			  char *msg, size_t msglen)
{
	struct vfio_backend *be = io->be;
	struct vfio_group *g = NULL;
	uint32_t flags = 0;
	unsigned int i;
	int ret;

	pthread_mutex_lock(&io->lock);
	for (i = 0; i < ARRAY_SIZE(io->groups); i++) {
		if (io->groups[i].refs && io->groups[i].id == id) {
			io->groups[i].refs++;
			*out = &io->groups[i];
			ret = 0;
			goto out;
		}
		if (!io->groups[i].refs && !g)
			g = &io->groups[i];
	}
	if (io->caged) {
		snprintf(msg, msglen, "DMA was revoked after a device could not be reset");
		ret = -EPERM;
		goto out;
	}
	if (!g) {
		snprintf(msg, msglen, "more than %u IOMMU groups", VFIO_IOMMU_MAX_GROUPS);
		ret = -ENOSPC;
		goto out;
	}
	memset(g, 0, sizeof(*g));
	g->id = id;
	g->fd = be->ops->group_open(be, id);
	if (g->fd < 0) {
		ret = g->fd;
		snprintf(msg, msglen, "cannot open /dev/vfio/%u: %s%s", id, strerror(-ret),
			 ret == -EBUSY ? " (another process, maybe another VM, holds the group)" :
			 ret == -EACCES || ret == -EPERM ? " (run as root or chown the group node)" :
			 "");
		goto out;
	}
	ret = be->ops->group_status(be, g->fd, &flags);
	if (ret) {
		snprintf(msg, msglen, "VFIO_GROUP_GET_STATUS on group %u: %s", id, strerror(-ret));
		goto err_close;
	}
	if (!(flags & VFIO_GROUP_FLAGS_VIABLE)) {
		snprintf(msg, msglen,
			 "IOMMU group %u is not viable: every device in /sys/kernel/iommu_groups/%u/devices "
			 "must be bound to vfio-pci (or unbound)", id, id);
		ret = -EBUSY;
		goto err_close;
	}
	ret = io->ops->attach_group(io, g);
	if (ret) {
		snprintf(msg, msglen, "cannot attach group %u to the %s: %s", id, io->ops->name,
			 strerror(-ret));
		goto err_close;
	}
	ret = vfio_iommu_map_ram_locked(io);
	if (ret) {
		snprintf(msg, msglen, "cannot map guest RAM for DMA: %s%s", strerror(-ret),
			 ret == -ENOMEM ? " (raise RLIMIT_MEMLOCK to the guest RAM size)" : "");
		io->ops->detach_group(io, g);
		goto err_close;
	}
	g->refs = 1;
	io->nr_groups++;
	*out = g;
	goto out;

err_close:
	be->ops->close(be, g->fd);
	g->fd = -1;
out:
	pthread_mutex_unlock(&io->lock);
	return ret;
}

void vfio_iommu__put_group(struct vfio_iommu *io, struct vfio_group *g)
{
	pthread_mutex_lock(&io->lock);
	if (!g || !g->refs || --g->refs)
		goto out;
	if (io->nr_groups == 1)
		vfio_iommu_unmap_all_locked(io); /* the last group leaves: nothing may DMA */
	io->ops->detach_group(io, g);
	io->be->ops->close(io->be, g->fd);
	g->fd = -1;
	if (!--io->nr_groups)
		io->iommu_set = false; /* the container lost its IOMMU with its last group */
out:
	pthread_mutex_unlock(&io->lock);
}

void vfio_iommu__destroy(struct vfio_iommu *io)
{
	unsigned int i;

	if (!io)
		return;
	pthread_mutex_lock(&io->lock);
	vfio_iommu_unmap_all_locked(io);
	for (i = 0; i < ARRAY_SIZE(io->groups); i++) {
		struct vfio_group *g = &io->groups[i];

		if (!g->refs)
			continue;
		io->ops->detach_group(io, g);
		io->be->ops->close(io->be, g->fd);
		g->refs = 0;
		g->fd = -1;
	}
	io->nr_groups = 0;
	pthread_mutex_unlock(&io->lock);
	io->ops->destroy(io);
	pthread_mutex_destroy(&io->lock);
	free(io);
}
