/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk over the modern virtio-pci transport: one request queue, requests
 * executed asynchronously with io_uring on the VM's event loop (readv, writev,
 * fsync on a raw image file or block device).
 */
#ifndef MINIVMM_VIRTIO_BLK_H
#define MINIVMM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/pci.h"
#include "vmm/device.h"
#include "vmm/util.h"

#define VIRTIO_BLK_QUEUE_SIZE 256
#define VIRTIO_BLK_SECTOR_SIZE 512

struct vm;

struct virtio_blk {
	struct virtio_dev vd;
	struct vm *vm;
	struct vmm_device dev;       /* the device model (vmm/device.h) */
	int fd;
	bool readonly;
	uint64_t capacity;          /* in 512-byte sectors */
	char serial[20];            /* VIRTIO_BLK_ID_BYTES, not NUL-terminated when full */
	uint64_t generation;        /* bumped on reset: older completions are dropped */
	unsigned int inflight;      /* requests submitted to io_uring, not completed */
	bool stalled;               /* the ring was full: resume on the next completion */
	bool paused;                /* a snapshot: kicks wait (event loop thread) */
	bool kick_pending;          /* a kick arrived while paused */
	struct virtq_chain *chain;  /* scratch for popping (event loop thread) */
	struct log_ratelimit rl;
	/* statistics */
	uint64_t reads, writes, flushes, errors;
};

/*
 * Opens `path` (O_RDONLY when readonly), registers a virtio-blk PCI device
 * named `name` on vm's PCI bus. The capacity is the file (or block device)
 * size rounded down to 512-byte sectors.
 */
int virtio_blk__create(struct vm *vm, const char *path, bool readonly, const char *name,
		       struct virtio_blk **out) __must_check;
/* unregisters, waits for in-flight I/O on the (stopped) event loop, frees */
void virtio_blk__destroy(struct virtio_blk *b);

#endif
