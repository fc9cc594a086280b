// SPDX-License-Identifier: MIT
/*
 * Split virtqueue (virtio 1.1, section 2.6/2.7) over guest memory.
 *
 * Everything the driver wrote is hostile: the rings are re-translated through
 * mem__gpa_to_hva() on every access (so a ring can never reach outside RAM),
 * each descriptor is copied once into a local before it is checked and used (no
 * double fetch), chains are bounded by the queue size (or the indirect table
 * size) which catches loops, and index arithmetic is done modulo 2^16 as the
 * spec requires. Protocol violations return -EIO, addresses outside RAM -EFAULT.
 *
 * Memory ordering: the driver publishes avail->idx with a release store after
 * filling the ring; we load it with acquire before reading ring entries and
 * descriptors. We publish used->idx with a release store after writing the used
 * element. Notification decisions need a full fence between our used->idx store
 * and our read of the driver's flags/used_event (and symmetrically between
 * writing avail_event and re-reading avail->idx), as in Linux's virtio_ring.c.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "virtio/queue.h"

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4

#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

/* host views of the three rings, valid for one operation */
struct virtq_rings {
	struct virtq_desc *desc;
	uint16_t *avail;   /* flags, idx, ring[size], used_event */
	uint16_t *used;    /* flags, idx, then elements at byte 4, avail_event */
};

static uint64_t virtq_desc_bytes(uint16_t size) { return 16ULL * size; }
static uint64_t virtq_avail_bytes(uint16_t size) { return 6ULL + 2ULL * size; }
static uint64_t virtq_used_bytes(uint16_t size) { return 6ULL + 8ULL * size; }

/* the used ring changed: a migration's pre-copy must send its page again */
static void virtq_used_written(const struct virtq *q)
{
	mem__mark_dirty(q->mem, q->used_gpa, virtq_used_bytes(q->size));
}

static int virtq_map(const struct virtq *q, struct virtq_rings *r)
{
	r->desc = mem__gpa_to_hva(q->mem, q->desc_gpa, virtq_desc_bytes(q->size));
	r->avail = mem__gpa_to_hva(q->mem, q->avail_gpa, virtq_avail_bytes(q->size));
	r->used = mem__gpa_to_hva(q->mem, q->used_gpa, virtq_used_bytes(q->size));
	if (!r->desc || !r->avail || !r->used)
		return -EFAULT;
	return 0;
}

static uint16_t virtq_load16(const uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static uint16_t virtq_load16_acquire(const uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_ACQUIRE));
}

static void virtq_store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, htole16(v), __ATOMIC_RELAXED);
}

static void virtq_store16_release(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, htole16(v), __ATOMIC_RELEASE);
}

/* one fetch of a descriptor the guest may be rewriting under us */
static void virtq_read_desc(const void *table, uint32_t i, struct virtq_desc *d)
{
	struct virtq_desc raw;

	/* indirect tables need not be aligned: copy bytes, then use the copy only */
	memcpy(&raw, (const uint8_t *)table + (size_t)i * sizeof(raw), sizeof(raw));
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	d->addr = le64toh(raw.addr);
	d->len = le32toh(raw.len);
	d->flags = le16toh(raw.flags);
	d->next = le16toh(raw.next);
}

void virtq__init(struct virtq *q, const struct guest_mem *mem, uint16_t max_size)
{
	memset(q, 0, sizeof(*q));
	q->mem = mem;
	q->max_size = max_size;
	virtq__reset(q);
}

void virtq__reset(struct virtq *q)
{
	q->size = q->max_size;
	q->ready = false;
	q->event_idx = false;
	q->desc_gpa = q->avail_gpa = q->used_gpa = 0;
	q->last_avail_idx = 0;
	q->used_idx = 0;
	q->signalled_used = 0;
	q->signalled_used_valid = false;
}

int virtq__enable(struct virtq *q)
{
	struct virtq_rings r;

	if (!q->mem || !q->size || q->size > q->max_size || q->size > VIRTQ_MAX_SIZE ||
	    (q->size & (q->size - 1)))
		return -EINVAL;
	/* alignment from virtio 1.1 section 2.6 table "Virtqueue Part Alignment" */
	if (!IS_ALIGNED(q->desc_gpa, 16) || !IS_ALIGNED(q->avail_gpa, 2) ||
	    !IS_ALIGNED(q->used_gpa, 4))
		return -EINVAL;
	if (virtq_map(q, &r))
		return -EINVAL;
	q->ready = true;
	return 0;
}

/*
 * Adds one buffer to the chain. Zero-length buffers carry nothing and are
 * skipped; a readable buffer after a writable one is a protocol error.
 */
static int virtq_add_buf(const struct virtq *q, struct virtq_chain *c, const struct virtq_desc *d)
{
	bool write = d->flags & VIRTQ_DESC_F_WRITE;
	uint32_t *total = write ? &c->in_len : &c->out_len;
	void *hva;

	if (!write && c->nr_in)
		return -EIO;
	if (!d->len)
		return 0;
	hva = mem__gpa_to_hva(q->mem, d->addr, d->len);
	if (!hva)
		return -EFAULT;
	if (c->nr_out + c->nr_in >= VIRTQ_MAX_SEGS)
		return -EIO;
	if (__builtin_add_overflow(*total, d->len, total))
		return -EIO;
	c->iov[c->nr_out + c->nr_in].iov_base = hva;
	c->iov[c->nr_out + c->nr_in].iov_len = d->len;
	if (write)
		c->nr_in++;
	else
		c->nr_out++;
	return 0;
}

/* walks an indirect table referenced by descriptor d (which is the whole chain) */
static int virtq_walk_indirect(const struct virtq *q, struct virtq_chain *c, const struct virtq_desc *d)
{
	const void *table;
	struct virtq_desc e;
	uint32_t n, i, count = 0;
	int ret;

	if (!d->len || d->len % sizeof(struct virtq_desc))
		return -EIO;
	n = d->len / sizeof(struct virtq_desc);
	if (n > VIRTQ_MAX_SEGS)
		return -EIO;
	table = mem__gpa_to_hva(q->mem, d->addr, d->len);
	if (!table)
		return -EFAULT;

	i = 0;
	for (;;) {
		if (++count > n)
			return -EIO; /* loop inside the table */
		virtq_read_desc(table, i, &e);
		if (e.flags & VIRTQ_DESC_F_INDIRECT)
			return -EIO; /* nested indirect */
		ret = virtq_add_buf(q, c, &e);
		if (ret)
			return ret;
		if (!(e.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (e.next >= n)
			return -EIO;
		i = e.next;
	}
}

static int virtq_walk(const struct virtq *q, const struct virtq_rings *r, uint16_t head,
		      struct virtq_chain *c)
{
	struct virtq_desc d;
	uint32_t i = head, count = 0;
	int ret;

	c->head = head;
	c->nr_out = c->nr_in = 0;
	c->out_len = c->in_len = 0;

	for (;;) {
		if (++count > q->size)
			return -EIO; /* a loop, or longer than the ring */
		virtq_read_desc(r->desc, i, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/*
			 * An indirect descriptor describes the whole request: it
			 * may not be chained, nor follow other descriptors.
			 */
			if (d.flags & VIRTQ_DESC_F_NEXT || count != 1)
				return -EIO;
			return virtq_walk_indirect(q, c, &d);
		}
		ret = virtq_add_buf(q, c, &d);
		if (ret)
			return ret;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= q->size)
			return -EIO;
		i = d.next;
	}
}

int virtq__pop(struct virtq *q, struct virtq_chain *c)
{
	struct virtq_rings r;
	uint16_t avail_idx, pending, head;
	int ret;

	if (!q->ready)
		return 0;
	ret = virtq_map(q, &r);
	if (ret)
		return ret;

	avail_idx = virtq_load16_acquire(&r.avail[1]);
	pending = (uint16_t)(avail_idx - q->last_avail_idx);
	if (pending > q->size)
		return -EIO;
	if (!pending) {
		if (!q->event_idx)
			return 0;
		/*
		 * Ask for a kick when the next buffer arrives, then look again:
		 * the driver may have added one before it saw avail_event.
		 */
		virtq_store16(&r.used[2 + 4 * q->size], q->last_avail_idx);
		virtq_used_written(q);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = virtq_load16_acquire(&r.avail[1]);
		pending = (uint16_t)(avail_idx - q->last_avail_idx);
		if (pending > q->size)
			return -EIO;
		if (!pending)
			return 0;
	}

	head = virtq_load16(&r.avail[2 + (q->last_avail_idx & (q->size - 1))]);
	if (head >= q->size)
		return -EIO;
	ret = virtq_walk(q, &r, head, c);
	if (ret)
		return ret;
	q->last_avail_idx++;
	if (q->event_idx) {
		virtq_store16(&r.used[2 + 4 * q->size], q->last_avail_idx);
		virtq_used_written(q);
	}
	return 1;
}

void virtq__unpop(struct virtq *q)
{
	q->last_avail_idx--;
}

int virtq__push(struct virtq *q, uint16_t head, uint32_t written)
{
	struct virtq_used_elem *elem;
	struct virtq_rings r;
	int ret;

	if (!q->ready)
		return -EINVAL;
	if (head >= q->size)
		return -EINVAL;
	ret = virtq_map(q, &r);
	if (ret)
		return ret;
	elem = (struct virtq_used_elem *)((uint8_t *)r.used + 4) + (q->used_idx & (q->size - 1));
	__atomic_store_n(&elem->id, htole32(head), __ATOMIC_RELAXED);
	__atomic_store_n(&elem->len, htole32(written), __ATOMIC_RELAXED);
	q->used_idx++;
	virtq_store16_release(&r.used[1], q->used_idx);
	virtq_used_written(q);
	return 0;
}

void virtq__mark_written(const struct virtq *q, const struct virtq_chain *c, size_t len)
{
	unsigned int i;

	for (i = c->nr_out; i < c->nr_out + c->nr_in && len; i++) {
		size_t n = MIN(len, c->iov[i].iov_len);

		mem__mark_dirty_hva(q->mem, c->iov[i].iov_base, n);
		len -= n;
	}
}

/* virtio 1.1 section 2.6.7.2: true if event_idx lies in (old, new] */
static bool virtq_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

bool virtq__should_notify(struct virtq *q)
{
	struct virtq_rings r;
	uint16_t old, used_event;
	bool valid;

	if (!q->ready || virtq_map(q, &r))
		return false;

	/* our used->idx store must be visible before we read the driver's wishes */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	if (!q->event_idx)
		return !(virtq_load16(&r.avail[0]) & VIRTQ_AVAIL_F_NO_INTERRUPT);

	old = q->signalled_used;
	valid = q->signalled_used_valid;
	q->signalled_used = q->used_idx;
	q->signalled_used_valid = true;
	if (!valid)
		return true;
	if (old == q->used_idx)
		return false;
	used_event = virtq_load16(&r.avail[2 + q->size]);
	return virtq_need_event(used_event, q->used_idx, old);
}

bool virtq__has_avail(const struct virtq *q)
{
	const uint16_t *avail;

	if (!q->ready)
		return false;
	avail = mem__gpa_to_hva(q->mem, q->avail_gpa, virtq_avail_bytes(q->size));
	if (!avail)
		return false;
	return virtq_load16_acquire(&avail[1]) != q->last_avail_idx;
}

/* copies between a chain's iovecs (from byte skip on) and buf, either way */
static size_t virtq_iov_copy(const struct iovec *iov, unsigned int nr, size_t skip, uint8_t *buf,
			     size_t len, bool to_iov)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < nr && done < len; i++) {
		uint8_t *p;
		size_t n;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		n = MIN(iov[i].iov_len - skip, len - done);
		p = (uint8_t *)iov[i].iov_base + skip;
		if (to_iov)
			memcpy(p, buf + done, n);
		else
			memcpy(buf + done, p, n);
		done += n;
		skip = 0;
	}
	return done;
}

size_t virtq__iov_to_buf(const struct iovec *iov, unsigned int nr, size_t skip, void *buf, size_t len)
{
	return virtq_iov_copy(iov, nr, skip, buf, len, false);
}

size_t virtq__buf_to_iov(const struct iovec *iov, unsigned int nr, size_t skip, const void *buf, size_t len)
{
	/* buf is only read on this path */
	return virtq_iov_copy(iov, nr, skip, (uint8_t *)(uintptr_t)buf, len, true);
}
