/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueue over guest memory (virtio 1.x, section 2.7). Pure logic, and
 * hostile-input safe: every descriptor address is bounds-checked against guest
 * RAM, descriptor loops and chains longer than the queue are detected, indirect
 * tables are validated. A violation returns -EIO (or -EFAULT) and the device
 * must then mark itself broken (DEVICE_NEEDS_RESET) instead of going on.
 */
#ifndef MINIVMM_VIRTIO_QUEUE_H
#define MINIVMM_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include "vmm/mem.h"
#include "vmm/util.h"

#define VIRTQ_MAX_SIZE 1024
#define VIRTQ_MAX_SEGS 1024 /* max iovecs in one chain */

struct virtq {
	const struct guest_mem *mem;
	uint16_t size;      /* queue size set by the driver (power of two) */
	uint16_t max_size;  /* what the device offers */
	bool ready;
	bool event_idx;     /* VIRTIO_RING_F_EVENT_IDX negotiated */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t last_avail_idx;
	uint16_t used_idx;
	uint16_t signalled_used; /* used idx at the last interrupt (event idx) */
	bool signalled_used_valid;
};

/* one descriptor chain, flattened to host iovecs */
struct virtq_chain {
	uint16_t head;
	unsigned int nr_out, nr_in;   /* device-readable iovecs first, then device-writable */
	uint32_t out_len, in_len;     /* total bytes of each kind */
	struct iovec iov[VIRTQ_MAX_SEGS];
};

void virtq__init(struct virtq *q, const struct guest_mem *mem, uint16_t max_size);
void virtq__reset(struct virtq *q);
/* checks size and ring addresses; 0 or -EINVAL (the driver set a bad queue) */
int virtq__enable(struct virtq *q) __must_check;

/* 1: a chain was popped into c; 0: no buffers; -EIO/-EFAULT: the ring is broken */
int virtq__pop(struct virtq *q, struct virtq_chain *c) __must_check;
/*
 * the device wrote the first len bytes of c's writable buffers: marked dirty
 * for a migration's pre-copy (mem__mark_dirty); call it before pushing c
 */
void virtq__mark_written(const struct virtq *q, const struct virtq_chain *c, size_t len);
/* put back the last popped chain (no room to process it now) */
void virtq__unpop(struct virtq *q);
/* return a chain to the driver with `written` bytes written into its in-buffers */
int virtq__push(struct virtq *q, uint16_t head, uint32_t written) __must_check;
/* true when the driver wants an interrupt for what was pushed since the last one */
bool virtq__should_notify(struct virtq *q);
/* true when buffers are available */
bool virtq__has_avail(const struct virtq *q);

/* copy helpers over a chain's iovecs: return bytes copied */
size_t virtq__iov_to_buf(const struct iovec *iov, unsigned int nr, size_t skip, void *buf, size_t len);
size_t virtq__buf_to_iov(const struct iovec *iov, unsigned int nr, size_t skip, const void *buf, size_t len);

#endif
