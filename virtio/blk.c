// SPDX-License-Identifier: MIT
/*
 * virtio-blk (virtio 1.1, section 5.2). One request queue; each request is
 * checked here and then executed by io_uring on the VM's event loop:
 *
 *   header (16 bytes, device-readable): type, reserved, sector
 *   data   (readable for OUT, writable for IN and GET_ID)
 *   status (1 byte, the last device-writable byte)
 *
 * A request too short to hold a header and a status byte cannot be answered, so
 * it marks the device broken; a well-formed request with bad contents (a range
 * past the end of the disk, a write to a read-only disk) gets VIRTIO_BLK_S_IOERR,
 * an unknown type VIRTIO_BLK_S_UNSUPP.
 *
 * Threading: the queue is processed on the event loop thread (kick handler and
 * I/O completions), always with vd->lock held, which serialises it against a
 * reset from a vCPU thread. A reset bumps the generation: completions of older
 * requests are dropped without touching the (now reset) queue, and the reset
 * completes (device_status reads 0) only when none is left in flight, since a
 * read that lands writes guest memory.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virtio/blk.h"
#include "migration/section.h"
#include "vmm/evloop.h"
#include "vmm/kvm.h"
#include "vmm/log.h"
#include "vmm/sys.h"

#define BLK_HDR_LEN 16
#define BLK_SEG_MAX (VIRTIO_BLK_QUEUE_SIZE - 2)
/* capacity, size_max, seg_max, geometry, blk_size */
#define BLK_CONFIG_LEN 24
#define BLK_PCI_CLASS 0x0180 /* mass storage, other */

struct blk_req {
	struct evloop_op op;
	struct virtio_blk *b;
	uint64_t gen;
	uint16_t head;
	uint32_t type;
	uint8_t *status;       /* in guest memory */
	uint64_t expect;       /* bytes the operation must transfer */
	uint32_t written;      /* used length on success */
	unsigned int nr_iov;
	struct iovec iov[];
};

static struct virtio_blk *blk_from_vd(struct virtio_dev *vd)
{
	return vd->priv;
}

static uint64_t blk_features(struct virtio_dev *vd)
{
	struct virtio_blk *b = blk_from_vd(vd);
	uint64_t f = 1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
		     1ULL << VIRTIO_BLK_F_FLUSH;

	if (b->readonly)
		f |= 1ULL << VIRTIO_BLK_F_RO;
	return f;
}

static void blk_cfg_read(struct virtio_dev *vd, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_blk *b = blk_from_vd(vd);
	uint8_t cfg[BLK_CONFIG_LEN];
	uint64_t cap = htole64(b->capacity);
	uint32_t seg_max = htole32(BLK_SEG_MAX), blk_size = htole32(VIRTIO_BLK_SECTOR_SIZE);

	memset(cfg, 0, sizeof(cfg));
	memcpy(&cfg[0], &cap, 8);
	memcpy(&cfg[12], &seg_max, 4);
	memcpy(&cfg[20], &blk_size, 4);
	if (off < sizeof(cfg) && len <= sizeof(cfg) - off)
		memcpy(data, &cfg[off], len);
}

static void blk_cfg_write(struct virtio_dev *vd, uint32_t off, const uint8_t *data, uint32_t len)
{
	/* nothing writable is offered (no CONFIG_WCE) */
}

static int blk_activate(struct virtio_dev *vd)
{
	return 0;
}

/* vd->lock held */
static void blk_reset(struct virtio_dev *vd)
{
	struct virtio_blk *b = blk_from_vd(vd);

	b->generation++;
	b->stalled = false;
}

/* vd->lock held: a read still in flight writes guest memory when it lands */
static bool blk_busy(struct virtio_dev *vd)
{
	return blk_from_vd(vd)->inflight > 0;
}

/* vd->lock held: returns the chain with its status */
static void blk_complete(struct virtio_blk *b, uint16_t head, uint8_t *status, uint8_t s,
			 uint32_t written)
{
	int ret;

	*status = s;
	mem__mark_dirty_hva(b->vd.vq[0].mem, status, 1);
	if (s != VIRTIO_BLK_S_OK)
		b->errors++;
	ret = virtq__push(&b->vd.vq[0], head, written);
	if (ret)
		virtio_pci__set_broken(&b->vd, "cannot return request %u: %s", head, strerror(-ret));
}

static void blk_process(struct virtio_blk *b);

/* the request's data buffers were written (a read landed, an id was copied) */
static void blk_mark_iov(struct virtio_blk *b, const struct blk_req *r)
{
	unsigned int i;

	for (i = 0; i < r->nr_iov; i++)
		mem__mark_dirty_hva(b->vd.vq[0].mem, r->iov[i].iov_base, r->iov[i].iov_len);
}

/* event loop thread */
static void blk_io_done(void *opaque, int res)
{
	struct blk_req *r = opaque;
	struct virtio_blk *b = r->b;
	uint8_t s = VIRTIO_BLK_S_OK;

	pthread_mutex_lock(&b->vd.lock);
	b->inflight--;
	/* the kernel wrote guest memory, even for a device reset meanwhile */
	if (r->type == VIRTIO_BLK_T_IN)
		blk_mark_iov(b, r);
	if (r->gen != b->generation || !b->vd.vq[0].ready)
		goto out; /* the device was reset meanwhile */
	if (res < 0 || (uint64_t)res != r->expect) {
		log_err_rl(&b->rl, b->vd.pci.name, "request type %u: %s", r->type,
			   res < 0 ? strerror(-res) : "short transfer");
		s = VIRTIO_BLK_S_IOERR;
	}
	blk_complete(b, r->head, r->status, s, s == VIRTIO_BLK_S_OK ? r->written : 1);
	virtio_pci__notify_queue(&b->vd, 0);
	if (b->stalled && b->vd.active && !b->vd.broken) {
		b->stalled = false;
		blk_process(b);
	}
out:
	pthread_mutex_unlock(&b->vd.lock);
	free(r);
}

/* 0: queued or completed, -EAGAIN: no room in the ring (retry), -EIO: device broken */
static int blk_handle(struct virtio_blk *b, const struct virtq_chain *c, bool *pushed)
{
	struct io_uring_sqe *sqe;
	struct blk_req *r;
	const struct iovec *last;
	uint8_t *status;
	uint32_t type, data_len = 0, n;
	uint64_t sector, le_sector;
	uint32_t hdr[2];
	unsigned int i;

	if (c->out_len < BLK_HDR_LEN || c->in_len < 1) {
		virtio_pci__set_broken(&b->vd, "request %u: no room for header and status", c->head);
		return -EIO;
	}
	virtq__iov_to_buf(c->iov, c->nr_out, 0, hdr, sizeof(hdr));
	virtq__iov_to_buf(c->iov, c->nr_out, 8, &le_sector, sizeof(le_sector));
	type = le32toh(hdr[0]);
	sector = le64toh(le_sector);
	last = &c->iov[c->nr_out + c->nr_in - 1];
	status = (uint8_t *)last->iov_base + last->iov_len - 1;

	r = malloc(sizeof(*r) + sizeof(struct iovec) * (c->nr_out + c->nr_in));
	if (!r) {
		blk_complete(b, c->head, status, VIRTIO_BLK_S_IOERR, 1);
		*pushed = true;
		return 0;
	}
	*r = (struct blk_req){ .b = b, .gen = b->generation, .head = c->head, .type = type,
			       .status = status, .written = 1 };

	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_GET_ID:
		/* the writable buffers minus the status byte */
		data_len = c->in_len - 1;
		for (i = 0; i < c->nr_in; i++)
			r->iov[r->nr_iov++] = c->iov[c->nr_out + i];
		r->iov[r->nr_iov - 1].iov_len--;
		if (!r->iov[r->nr_iov - 1].iov_len)
			r->nr_iov--;
		break;
	case VIRTIO_BLK_T_OUT:
		/* the readable buffers after the header */
		data_len = c->out_len - BLK_HDR_LEN;
		n = BLK_HDR_LEN;
		for (i = 0; i < c->nr_out; i++) {
			struct iovec v = c->iov[i];

			if (n >= v.iov_len) {
				n -= (uint32_t)v.iov_len;
				continue;
			}
			v.iov_base = (uint8_t *)v.iov_base + n;
			v.iov_len -= n;
			n = 0;
			r->iov[r->nr_iov++] = v;
		}
		break;
	}

	if (type == VIRTIO_BLK_T_GET_ID) {
		n = (uint32_t)virtq__buf_to_iov(r->iov, r->nr_iov, 0, b->serial,
						MIN(data_len, (uint32_t)sizeof(b->serial)));
		blk_mark_iov(b, r);
		blk_complete(b, c->head, status, VIRTIO_BLK_S_OK, n + 1);
		goto done_sync;
	}
	if (type != VIRTIO_BLK_T_IN && type != VIRTIO_BLK_T_OUT && type != VIRTIO_BLK_T_FLUSH) {
		blk_complete(b, c->head, status, VIRTIO_BLK_S_UNSUPP, 1);
		goto done_sync;
	}
	if (type == VIRTIO_BLK_T_OUT && b->readonly) {
		log_err_rl(&b->rl, b->vd.pci.name, "write to a read-only disk");
		blk_complete(b, c->head, status, VIRTIO_BLK_S_IOERR, 1);
		goto done_sync;
	}
	if (type != VIRTIO_BLK_T_FLUSH &&
	    (data_len % VIRTIO_BLK_SECTOR_SIZE || sector > b->capacity ||
	     data_len / VIRTIO_BLK_SECTOR_SIZE > b->capacity - sector)) {
		log_err_rl(&b->rl, b->vd.pci.name, "request past the end: sector %llu, %u bytes",
			   (unsigned long long)sector, data_len);
		blk_complete(b, c->head, status, VIRTIO_BLK_S_IOERR, 1);
		goto done_sync;
	}
	if (type != VIRTIO_BLK_T_FLUSH && !data_len) {
		blk_complete(b, c->head, status, VIRTIO_BLK_S_OK, 1);
		goto done_sync;
	}

	r->op.fn = blk_io_done;
	r->op.opaque = r;
	sqe = evloop__get_sqe(&b->vm->loop, &r->op);
	if (!sqe) {
		free(r);
		return -EAGAIN;
	}
	switch (type) {
	case VIRTIO_BLK_T_IN:
		io_uring_prep_readv(sqe, b->fd, r->iov, r->nr_iov, sector * VIRTIO_BLK_SECTOR_SIZE);
		r->expect = data_len;
		r->written = data_len + 1;
		b->reads++;
		break;
	case VIRTIO_BLK_T_OUT:
		io_uring_prep_writev(sqe, b->fd, r->iov, r->nr_iov, sector * VIRTIO_BLK_SECTOR_SIZE);
		r->expect = data_len;
		b->writes++;
		break;
	default:
		io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
		r->expect = 0;
		b->flushes++;
		break;
	}
	io_uring_sqe_set_data(sqe, &r->op);
	b->inflight++;
	evloop__submit(&b->vm->loop);
	return 0;

done_sync:
	free(r);
	*pushed = true;
	return 0;
}

/* vd->lock held, event loop thread */
static void blk_process(struct virtio_blk *b)
{
	struct virtq *vq = &b->vd.vq[0];
	bool pushed = false;
	int ret;

	while (!b->vd.broken) {
		ret = virtq__pop(vq, b->chain);
		if (!ret)
			break;
		if (ret < 0) {
			virtio_pci__set_broken(&b->vd, "request queue: %s", strerror(-ret));
			break;
		}
		ret = blk_handle(b, b->chain, &pushed);
		if (ret == -EAGAIN) {
			/* io_uring is full: take it up again when a request completes */
			virtq__unpop(vq);
			b->stalled = true;
			break;
		}
		if (ret)
			break;
	}
	if (pushed)
		virtio_pci__notify_queue(&b->vd, 0);
}

static void blk_queue_notify(struct virtio_dev *vd, uint16_t q)
{
	struct virtio_blk *b = blk_from_vd(vd);

	if (q != 0)
		return;
	if (b->paused) {
		b->kick_pending = true;
		return;
	}
	blk_process(b);
}

static const struct virtio_dev_ops blk_ops = {
	.features = blk_features,
	.cfg_read = blk_cfg_read,
	.cfg_write = blk_cfg_write,
	.activate = blk_activate,
	.reset = blk_reset,
	.busy = blk_busy,
	.queue_notify = blk_queue_notify,
};

static int blk_size(int fd, uint64_t *size)
{
	struct stat st;
	int ret;

	if (fstat(fd, &st))
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		ret = sys__ioctl_raw(fd, BLKGETSIZE64, size);
		return ret < 0 ? ret : 0;
	}
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*size = (uint64_t)st.st_size;
	return 0;
}

/* ---- pause and state (a snapshot; docs/migration.md) -------------------------- */

#define BLK_STATE_VERSION 1

static int blk_dev_pause(struct vmm_device *d)
{
	struct virtio_blk *b = container_of(d, struct virtio_blk, dev);
	unsigned int i;

	pthread_mutex_lock(&b->vd.lock);
	b->paused = true;
	pthread_mutex_unlock(&b->vd.lock);
	/* requests in flight finish into guest memory and the used ring now */
	for (i = 0; i < 10000 && b->inflight; i++)
		if (evloop__run_once(&b->vm->loop, true) < 0)
			break;
	if (b->inflight) {
		log_err(b->dev.id, "pause: %u requests still in flight", b->inflight);
		pthread_mutex_lock(&b->vd.lock);
		b->paused = false;
		pthread_mutex_unlock(&b->vd.lock);
		return -EBUSY;
	}
	return 0;
}

static void blk_dev_resume(struct vmm_device *d)
{
	struct virtio_blk *b = container_of(d, struct virtio_blk, dev);

	pthread_mutex_lock(&b->vd.lock);
	b->paused = false;
	if (b->kick_pending || b->stalled) {
		b->kick_pending = false;
		if (b->vd.active && !b->vd.broken && b->vd.vq[0].ready)
			blk_process(b);
	}
	pthread_mutex_unlock(&b->vd.lock);
}

static int blk_state_save(void *opaque, void *fdt)
{
	struct virtio_blk *b = opaque;
	int ret;

	ret = mig__put_u64(fdt, "capacity_sectors", b->capacity);
	if (!ret)
		ret = mig__put_u32(fdt, "readonly", b->readonly);
	if (!ret)
		ret = virtio_pci__save(&b->vd, fdt);
	return ret;
}

static int blk_state_load(void *opaque, const void *fdt, int node, uint32_t version)
{
	struct virtio_blk *b = opaque;
	uint64_t cap;
	uint32_t ro;
	int ret;

	(void)version;
	ret = mig__get_u64(fdt, node, "capacity_sectors", &cap);
	if (!ret)
		ret = mig__get_u32_max(fdt, node, "readonly", 1, &ro);
	if (ret)
		return ret;
	if (cap != b->capacity || (bool)ro != b->readonly) {
		log_err(b->dev.id, "state: the saved disk had %llu sectors%s, this one %llu%s",
			(unsigned long long)cap, ro ? " (read-only)" : "",
			(unsigned long long)b->capacity, b->readonly ? " (read-only)" : "");
		return -EINVAL;
	}
	return virtio_pci__load(&b->vd, fdt, node);
}

static const struct mig_section_ops blk_state_ops = {
	.save = blk_state_save,
	.load = blk_state_load,
};

static void blk_dev_destroy(struct vmm_device *d)
{
	virtio_blk__destroy(container_of(d, struct virtio_blk, dev));
}

/* the requests in flight and the rings (`devices`, SIGUSR2); on the event loop thread */
static void blk_dev_describe(struct vmm_device *d, json_t *o)
{
	struct virtio_blk *b = container_of(d, struct virtio_blk, dev);

	json_object_set_new(o, "requests",
			    json_pack("{s:i,s:b,s:b,s:b,s:I,s:I,s:I,s:I}", "inflight", (int)b->inflight,
				      "stalled", b->stalled, "paused", b->paused,
				      "kick_pending", b->kick_pending, "reads", (json_int_t)b->reads,
				      "writes", (json_int_t)b->writes, "flushes", (json_int_t)b->flushes,
				      "errors", (json_int_t)b->errors));
	virtio_pci__describe(&b->vd, o);
}

static void blk_dev_moved(struct vmm_device *d)
{
	virtio_pci__notify_all(&container_of(d, struct virtio_blk, dev)->vd);
}

static const struct vmm_device_ops blk_dev_ops = {
	.describe = blk_dev_describe,
	.moved = blk_dev_moved,
	.pause = blk_dev_pause,
	.resume = blk_dev_resume,
	.destroy = blk_dev_destroy,
};

int virtio_blk__create(struct vm *vm, const char *path, bool readonly, const char *name,
		       struct virtio_blk **out)
{
	struct virtio_blk *b;
	char serial[sizeof(b->serial) + 1];
	uint64_t size;
	int ret;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->chain = malloc(sizeof(*b->chain));
	if (!b->chain) {
		ret = -ENOMEM;
		goto err_free;
	}
	b->vm = vm;
	b->readonly = readonly;
	b->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT;
	snprintf(serial, sizeof(serial), "minivmm-%s", name);
	memcpy(b->serial, serial, sizeof(b->serial)); /* zero-padded, no NUL when full */

	b->fd = sys__open_raw(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0) {
		ret = b->fd;
		log_err(name, "cannot open %s: %s", path, strerror(-ret));
		goto err_chain;
	}
	ret = blk_size(b->fd, &size);
	if (ret) {
		log_err(name, "cannot size %s: %s", path, strerror(-ret));
		goto err_close;
	}
	if (size % VIRTIO_BLK_SECTOR_SIZE)
		log_warn(name, "%s: size is not a multiple of 512, the tail is not visible", path);
	b->capacity = size / VIRTIO_BLK_SECTOR_SIZE;

	ret = virtio_pci__init(&b->vd, vm, name, VIRTIO_ID_BLOCK, BLK_PCI_CLASS, 1,
			       VIRTIO_BLK_QUEUE_SIZE, BLK_CONFIG_LEN, &blk_ops, b);
	if (ret) {
		log_err(name, "transport setup: %s", strerror(-ret));
		goto err_close;
	}
	ret = virtio_pci__register(&b->vd);
	if (ret) {
		log_err(name, "cannot register on the PCI bus: %s", strerror(-ret));
		goto err_vd;
	}
	log_info(name, "%s, %llu sectors%s", path, (unsigned long long)b->capacity,
		 readonly ? ", read-only" : "");
	device__init(&b->dev, name, "virtio-blk", DEVICE_BUS_PCI, &blk_dev_ops);
	b->dev.pci = &b->vd.pci;
	ret = device__register_state(&b->dev, &vm->mig, "virtio-blk", 0, BLK_STATE_VERSION, 1,
				     &blk_state_ops, b);
	if (!ret)
		ret = device__add(&b->vm->devices, &b->dev);
	if (ret) {
		log_err(name, "cannot add device '%s': %s", b->dev.id,
			ret == -EEXIST ? "the id is taken" : strerror(-ret));
		virtio_blk__destroy(b);
		return ret;
	}
	*out = b;
	return 0;

err_vd:
	virtio_pci__destroy(&b->vd);
err_close:
	close(b->fd);
err_chain:
	free(b->chain);
err_free:
	free(b);
	return ret;
}

void virtio_blk__destroy(struct virtio_blk *b)
{
	if (!b)
		return;
	device__remove(&b->vm->devices, &b->dev);
	device__unregister_state(&b->dev, &b->vm->mig);
	pthread_mutex_lock(&b->vd.lock);
	b->generation++;
	pthread_mutex_unlock(&b->vd.lock);
	/* completions reference b: let the submitted ones land first */
	while (b->inflight && evloop__run_once(&b->vm->loop, true) >= 0)
		;
	virtio_pci__destroy(&b->vd);
	close(b->fd);
	free(b->chain);
	free(b);
}
