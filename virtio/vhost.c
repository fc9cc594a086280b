// SPDX-License-Identifier: MIT
/*
 * Generic vhost ioctls over the sys seam (virtio/vhost.h).
 */
#include "virtio/vhost.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/log.h"
#include "vmm/sys.h"

int vhost__open(struct vhost *v, const char *path, const char *name)
{
	int ret;

	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name ? name : "vhost");
	ret = sys__open_raw(path, O_RDWR);
	if (ret < 0) {
		v->fd = -1;
		return ret;
	}
	v->fd = ret;
	ret = sys__ioctl(v->fd, VHOST_SET_OWNER, NULL);
	if (ret < 0)
		goto err_close;
	ret = sys__ioctl(v->fd, VHOST_GET_FEATURES, &v->features);
	if (ret < 0)
		goto err_close;
	return 0;

err_close:
	log_err(v->name, "%s: cannot set the device up: %s", path, strerror(-ret));
	sys__close(v->fd);
	v->fd = -1;
	return ret;
}

void vhost__close(struct vhost *v)
{
	if (v->fd >= 0)
		sys__close(v->fd);
	v->fd = -1;
}

int vhost__set_features(struct vhost *v, uint64_t features)
{
	int ret;

	if (features & ~v->features)
		return -EINVAL;
	ret = sys__ioctl(v->fd, VHOST_SET_FEATURES, &features);
	if (!ret)
		v->acked = features;
	return ret < 0 ? ret : 0;
}

int vhost__set_mem_table(struct vhost *v, const struct guest_mem *m)
{
	struct vhost_memory *t;
	unsigned int i;
	int ret;

	t = calloc(1, sizeof(*t) + m->nr_regions * sizeof(t->regions[0]));
	if (!t)
		return -ENOMEM;
	t->nregions = m->nr_regions;
	for (i = 0; i < m->nr_regions; i++) {
		t->regions[i].guest_phys_addr = m->regions[i].gpa;
		t->regions[i].memory_size = m->regions[i].size;
		t->regions[i].userspace_addr = (uint64_t)(uintptr_t)m->regions[i].hva;
	}
	ret = sys__ioctl(v->fd, VHOST_SET_MEM_TABLE, t);
	free(t);
	return ret < 0 ? ret : 0;
}

static int vhost_set_file(struct vhost *v, unsigned long req, const char *req_name,
			  unsigned int index, int fd)
{
	struct vhost_vring_file f = { .index = index, .fd = fd };
	int ret = sys__ioctl_checked(v->fd, req, req_name, &f);

	return ret < 0 ? ret : 0;
}

int vhost__vring_start(struct vhost *v, const struct guest_mem *m, const struct vhost_vring *r)
{
	struct vhost_vring_state num = { .index = r->index, .num = r->num };
	struct vhost_vring_state base = { .index = r->index, .num = r->base };
	struct vhost_vring_addr addr = { .index = r->index };
	void *desc, *avail, *used;
	int ret;

	desc = mem__gpa_to_hva(m, r->desc_gpa, 16ULL * r->num);
	avail = mem__gpa_to_hva(m, r->avail_gpa, 6 + 2ULL * r->num);
	used = mem__gpa_to_hva(m, r->used_gpa, 6 + 8ULL * r->num);
	if (!r->num || !desc || !avail || !used)
		return -EFAULT;
	addr.desc_user_addr = (uint64_t)(uintptr_t)desc;
	addr.avail_user_addr = (uint64_t)(uintptr_t)avail;
	addr.used_user_addr = (uint64_t)(uintptr_t)used;
	addr.log_guest_addr = r->used_gpa;

	ret = sys__ioctl(v->fd, VHOST_SET_VRING_NUM, &num);
	if (ret >= 0)
		ret = sys__ioctl(v->fd, VHOST_SET_VRING_BASE, &base);
	if (ret >= 0)
		ret = sys__ioctl(v->fd, VHOST_SET_VRING_ADDR, &addr);
	if (ret < 0)
		return ret;
	ret = vhost_set_file(v, VHOST_SET_VRING_KICK, "VHOST_SET_VRING_KICK", r->index, r->kick_fd);
	if (ret)
		return ret;
	ret = vhost_set_file(v, VHOST_SET_VRING_CALL, "VHOST_SET_VRING_CALL", r->index, r->call_fd);
	if (ret)
		goto err_kick;
	return 0;

err_kick:
	if (vhost_set_file(v, VHOST_SET_VRING_KICK, "VHOST_SET_VRING_KICK", r->index, -1))
		log_err(v->name, "ring %u: cannot unbind its kick eventfd", r->index);
	return ret;
}

int vhost__vring_set_call(struct vhost *v, unsigned int index, int call_fd)
{
	return vhost_set_file(v, VHOST_SET_VRING_CALL, "VHOST_SET_VRING_CALL", index, call_fd);
}

int vhost__vring_stop(struct vhost *v, unsigned int index, uint16_t *base)
{
	struct vhost_vring_state st = { .index = index };
	int ret, r;

	ret = sys__ioctl(v->fd, VHOST_GET_VRING_BASE, &st);
	if (ret >= 0) {
		*base = (uint16_t)st.num;
		ret = 0;
	}
	r = vhost_set_file(v, VHOST_SET_VRING_KICK, "VHOST_SET_VRING_KICK", index, -1);
	if (!ret)
		ret = r;
	r = vhost_set_file(v, VHOST_SET_VRING_CALL, "VHOST_SET_VRING_CALL", index, -1);
	if (!ret)
		ret = r;
	return ret;
}
