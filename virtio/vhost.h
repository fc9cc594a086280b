/* SPDX-License-Identifier: MIT */
/*
 * Generic vhost: the kernel processes a virtqueue's rings itself (vhost-net
 * today), and minivmm only tells it where they are. Every call goes through
 * the vmm/sys.h seam, so unit tests replace the device with a fake.
 *
 * Life cycle, as the kernel wants it (Documentation/virt/... and QEMU's
 * hw/virtio/vhost.c order):
 *   vhost__open       open the device, VHOST_SET_OWNER (binds the kernel's
 *                     worker to this process), VHOST_GET_FEATURES
 *   vhost__set_features / vhost__set_mem_table   per activation
 *   vhost__vring_start   NUM, BASE (the last avail index to resume from),
 *                        ADDR (host addresses of the rings), KICK, CALL
 *   ... the device-specific "backend" ioctl starts the data path ...
 *   vhost__vring_stop    after the backend was removed: GET_VRING_BASE (the
 *                        last avail index, for the userspace rings or the
 *                        saved state), then KICK and CALL unbound
 *   vhost__close
 *
 * Threads: the VMM thread (device set-up at DRIVER_OK, pause, reset,
 * hot-plug); none of it is on a data path.
 */
#ifndef MINIVMM_VIRTIO_VHOST_H
#define MINIVMM_VIRTIO_VHOST_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/mem.h"
#include "vmm/util.h"

#define VHOST_NAME_LEN 32

struct vhost {
	int fd;
	char name[VHOST_NAME_LEN]; /* log prefix */
	uint64_t features;         /* what the kernel offers (VHOST_GET_FEATURES) */
	uint64_t acked;            /* what was last set (VHOST_SET_FEATURES) */
};

/* one ring as the device's transport describes it */
struct vhost_vring {
	unsigned int index;
	uint16_t num;            /* queue size */
	uint16_t base;           /* last avail index: where the kernel starts */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	int kick_fd;             /* the kernel polls it (the queue's ioeventfd) */
	int call_fd;             /* the kernel signals it (an MSI-X vector's irqfd), -1: none */
};

/*
 * Opens path (/dev/vhost-net), takes ownership and reads the features.
 * 0 or -errno (the open's errno unlogged: the caller decides whether it is
 * an error; the ioctls' failures are logged).
 */
int vhost__open(struct vhost *v, const char *path, const char *name) __must_check;
void vhost__close(struct vhost *v);

int vhost__set_features(struct vhost *v, uint64_t features) __must_check;
/* every RAM region of m (GPA, size, host address) */
int vhost__set_mem_table(struct vhost *v, const struct guest_mem *m) __must_check;
/*
 * NUM, BASE, ADDR, KICK, CALL; the ring addresses must be RAM (-EFAULT
 * otherwise, nothing issued). On failure after NUM the ring is left as the
 * kernel had it stopped (no kick or call bound).
 */
int vhost__vring_start(struct vhost *v, const struct guest_mem *m,
		       const struct vhost_vring *r) __must_check;
/* the kernel signals call_fd (-1: nothing) from now on: a vector changed */
int vhost__vring_set_call(struct vhost *v, unsigned int index, int call_fd) __must_check;
/* GET_VRING_BASE into *base, then KICK and CALL unbound; 0 or the first -errno */
int vhost__vring_stop(struct vhost *v, unsigned int index, uint16_t *base) __must_check;

#endif
