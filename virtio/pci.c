// SPDX-License-Identifier: MIT
/*
 * Modern virtio-pci transport (virtio 1.1, section 4.1).
 *
 * BAR 4 (64-bit, prefetchable, 16 KiB):
 *   0x0000 common configuration      VIRTIO_PCI_CAP_COMMON_CFG
 *   0x1000 ISR status                VIRTIO_PCI_CAP_ISR_CFG
 *   0x2000 device configuration      VIRTIO_PCI_CAP_DEVICE_CFG
 *   0x3000 notifications, 4 bytes per queue (queue_notify_off = queue index)
 *   0x3800 MSI-X table, 0x3c00 PBA   (nr_queues + 1 vectors)
 * plus the VIRTIO_PCI_CAP_PCI_CFG window in config space onto the same BAR.
 *
 * Everything the driver writes is checked; junk is ignored (and logged with a
 * rate limit), it never takes the VMM down. Transport state is protected by
 * vd->lock (recursive), which is also held around every device callback.
 */
#include <endian.h>
#include <errno.h>
#include <linux/kvm.h>
#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "virtio/pci.h"
#include "migration/section.h"
#include "vmm/bus.h"
#include "vmm/irq.h"
#include "vmm/log.h"
#include "vmm/sys.h"

#define VPCI_ISR_QUEUE 0x1
#define VPCI_ISR_CONFIG 0x2
/* the 1.1 common config ends with queue_device (0x38) */
#define VPCI_COMMON_CAP_LEN 0x38

#define BIT64(n) (1ULL << (n))

static struct virtio_dev *vpci_from_pci(struct pci_dev *d)
{
	return container_of(d, struct virtio_dev, pci);
}

static uint64_t vpci_get(const uint8_t *data, uint32_t len)
{
	uint64_t v = 0;
	uint32_t i;

	for (i = 0; i < len; i++)
		v |= (uint64_t)data[i] << (8 * i);
	return v;
}

static void vpci_put(uint8_t *data, uint32_t len, uint64_t v)
{
	uint32_t i;

	for (i = 0; i < len; i++)
		data[i] = (uint8_t)(v >> (8 * i));
}

/* ---- interrupts ---------------------------------------------------------- */

/* with vd->lock held */
static void vpci_raise(struct virtio_dev *vd, uint16_t vector, uint8_t isr_bit)
{
	if (msix__enabled(&vd->msix)) {
		/* MSI-X on: INTx is off, and NO_VECTOR means no interrupt at all */
		if (vector != MSIX_NO_VECTOR && msix__notify(&vd->msix, vector))
			log_err_rl(&vd->rl, vd->pci.name, "bad MSI-X vector %u", vector);
		return;
	}
	vd->isr |= isr_bit;
	if (pci__cfg_rd16(&vd->pci, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE)
		return;
	irq__line(&vd->vm->irq, vd->pci.intx_gsi, 1);
}

void virtio_pci__notify_queue(struct virtio_dev *vd, uint16_t q)
{
	pthread_mutex_lock(&vd->lock);
	if (q < vd->nr_queues && vd->vq[q].ready && virtq__should_notify(&vd->vq[q]))
		vpci_raise(vd, vd->vq_vector[q], VPCI_ISR_QUEUE);
	pthread_mutex_unlock(&vd->lock);
}


void virtio_pci__notify_config(struct virtio_dev *vd)
{
	pthread_mutex_lock(&vd->lock);
	vd->config_generation++;
	if (vd->status & VIRTIO_CONFIG_S_DRIVER_OK)
		vpci_raise(vd, vd->config_vector, VPCI_ISR_CONFIG);
	pthread_mutex_unlock(&vd->lock);
}

void virtio_pci__set_broken(struct virtio_dev *vd, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	pthread_mutex_lock(&vd->lock);
	if (vd->broken) {
		pthread_mutex_unlock(&vd->lock);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vd->broken = true;
	vd->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	/* a driver can reset and break the device again in a loop: rate-limited */
	log_err_rl(&vd->rl, vd->pci.name, "device needs reset: %s", msg);
	if (vd->status & VIRTIO_CONFIG_S_DRIVER_OK)
		vpci_raise(vd, vd->config_vector, VPCI_ISR_CONFIG);
	pthread_mutex_unlock(&vd->lock);
}

/* ---- common configuration ---------------------------------------------- */

/*
 * with vd->lock held; a reset is complete once the device model has no work
 * from before it in flight (ops->busy): until then device_status reads back
 * the status the reset came from, so the driver does not hand the device
 * buffers that an old request can still write
 */
static void vpci_reset(struct virtio_dev *vd)
{
	uint8_t from = vd->status;
	uint16_t q;

	if (vd->ops->reset)
		vd->ops->reset(vd);
	if (vd->isr)
		irq__line(&vd->vm->irq, vd->pci.intx_gsi, 0);
	vd->isr = 0;
	vd->status = 0;
	vd->active = false;
	vd->broken = false;
	vd->dfselect = vd->gfselect = 0;
	vd->queue_select = 0;
	vd->guest_features = 0;
	vd->config_vector = MSIX_NO_VECTOR;
	for (q = 0; q < vd->nr_queues; q++) {
		virtq__reset(&vd->vq[q]);
		vd->vq_vector[q] = MSIX_NO_VECTOR;
	}
	vd->reset_status = 0;
	if (vd->ops->busy && vd->ops->busy(vd))
		vd->reset_status = from ? from : VIRTIO_CONFIG_S_ACKNOWLEDGE;
}

/* with vd->lock held: the status as the driver reads it */
static uint8_t vpci_status_read(struct virtio_dev *vd)
{
	if (vd->reset_status) {
		if (vd->ops->busy(vd))
			return vd->reset_status;
		vd->reset_status = 0; /* the reset completed */
	}
	return vd->status;
}

static void vpci_set_event_idx(struct virtio_dev *vd)
{
	bool on = virtio_pci__has_feature(vd, VIRTIO_RING_F_EVENT_IDX);
	uint16_t q;

	for (q = 0; q < vd->nr_queues; q++)
		vd->vq[q].event_idx = on;
}

static void vpci_status_write(struct virtio_dev *vd, uint8_t v)
{
	uint8_t old = vd->status;
	int ret;

	if (!v) {
		vpci_reset(vd);
		return;
	}
	if (vd->reset_status && vpci_status_read(vd)) {
		/*
		 * the driver must wait for the reset to complete (device_status
		 * reads 0). The old requests' completions are dropped either way;
		 * only their data can still land in guest memory.
		 */
		log_err_rl(&vd->rl, vd->pci.name,
			   "driver reinitialises the device before its reset completed");
		vd->reset_status = 0;
	}
	if ((v & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
		if (vd->guest_features & ~vd->host_features) {
			log_err_rl(&vd->rl, vd->pci.name,
				   "driver accepted features %#llx that were not offered",
				   (unsigned long long)(vd->guest_features & ~vd->host_features));
			v &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
		} else if (!virtio_pci__has_feature(vd, VIRTIO_F_VERSION_1)) {
			log_err_rl(&vd->rl, vd->pci.name, "driver did not accept VERSION_1");
			v &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
		}
	}
	if ((v & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
		if (!(v & VIRTIO_CONFIG_S_FEATURES_OK)) {
			log_err_rl(&vd->rl, vd->pci.name, "DRIVER_OK without FEATURES_OK");
			v &= (uint8_t)~VIRTIO_CONFIG_S_DRIVER_OK;
		} else if (!vd->broken) {
			vd->status = v;
			vpci_set_event_idx(vd);
			ret = vd->ops->activate ? vd->ops->activate(vd) : 0;
			if (ret) {
				virtio_pci__set_broken(vd, "activation failed: %s", strerror(-ret));
			} else {
				vd->active = true;
			}
		}
	}
	vd->status = v | (vd->broken ? VIRTIO_CONFIG_S_NEEDS_RESET : 0);
}

static bool vpci_vector_ok(const struct virtio_dev *vd, uint16_t v)
{
	return v == MSIX_NO_VECTOR || v < vd->msix.nr;
}

static void vpci_queue_enable(struct virtio_dev *vd, uint16_t q)
{
	struct virtq *vq = &vd->vq[q];

	vq->event_idx = virtio_pci__has_feature(vd, VIRTIO_RING_F_EVENT_IDX);
	/* a driver must learn that its queue is unusable: NEEDS_RESET, not silence */
	if (virtq__enable(vq))
		virtio_pci__set_broken(vd,
			   "queue %u: refusing to enable (size %u, desc %#llx, driver %#llx, device %#llx)",
			   q, vq->size, (unsigned long long)vq->desc_gpa,
			   (unsigned long long)vq->avail_gpa, (unsigned long long)vq->used_gpa);
}

/* width of the register at off, or 0 when off does not start one */
static uint32_t vpci_common_width(uint32_t off)
{
	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
	case VIRTIO_PCI_COMMON_DF:
	case VIRTIO_PCI_COMMON_GFSELECT:
	case VIRTIO_PCI_COMMON_GF:
	case VIRTIO_PCI_COMMON_Q_DESCLO:
	case VIRTIO_PCI_COMMON_Q_DESCHI:
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
	case VIRTIO_PCI_COMMON_Q_AVAILHI:
	case VIRTIO_PCI_COMMON_Q_USEDLO:
	case VIRTIO_PCI_COMMON_Q_USEDHI:
		return 4;
	case VIRTIO_PCI_COMMON_MSIX:
	case VIRTIO_PCI_COMMON_NUMQ:
	case VIRTIO_PCI_COMMON_Q_SELECT:
	case VIRTIO_PCI_COMMON_Q_SIZE:
	case VIRTIO_PCI_COMMON_Q_MSIX:
	case VIRTIO_PCI_COMMON_Q_ENABLE:
	case VIRTIO_PCI_COMMON_Q_NOFF:
	case VIRTIO_PCI_COMMON_Q_NDATA:
	case VIRTIO_PCI_COMMON_Q_RESET:
		return 2;
	case VIRTIO_PCI_COMMON_STATUS:
	case VIRTIO_PCI_COMMON_CFGGENERATION:
		return 1;
	default:
		return 0;
	}
}

static bool vpci_common_access_ok(uint32_t off, uint32_t len)
{
	uint32_t w = vpci_common_width(off);

	if (w && w == len)
		return true;
	/* the 64-bit queue addresses may also be accessed whole */
	return len == 8 && (off == VIRTIO_PCI_COMMON_Q_DESCLO ||
			    off == VIRTIO_PCI_COMMON_Q_AVAILLO ||
			    off == VIRTIO_PCI_COMMON_Q_USEDLO);
}

static uint64_t *vpci_queue_addr(struct virtio_dev *vd, struct virtq *vq, uint32_t off)
{
	switch (off & ~7u) {
	case VIRTIO_PCI_COMMON_Q_DESCLO:
		return &vq->desc_gpa;
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
		return &vq->avail_gpa;
	case VIRTIO_PCI_COMMON_Q_USEDLO:
		return &vq->used_gpa;
	default:
		return NULL;
	}
}

static uint64_t vpci_common_read(struct virtio_dev *vd, uint32_t off, uint32_t len)
{
	uint16_t q = vd->queue_select;
	struct virtq *vq = q < vd->nr_queues ? &vd->vq[q] : NULL;
	uint64_t *addr;

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		return vd->dfselect;
	case VIRTIO_PCI_COMMON_DF:
		return vd->dfselect < 2 ? (uint32_t)(vd->host_features >> (32 * vd->dfselect)) : 0;
	case VIRTIO_PCI_COMMON_GFSELECT:
		return vd->gfselect;
	case VIRTIO_PCI_COMMON_GF:
		return vd->gfselect < 2 ? (uint32_t)(vd->guest_features >> (32 * vd->gfselect)) : 0;
	case VIRTIO_PCI_COMMON_MSIX:
		return vd->config_vector;
	case VIRTIO_PCI_COMMON_NUMQ:
		return vd->nr_queues;
	case VIRTIO_PCI_COMMON_STATUS:
		return vpci_status_read(vd);
	case VIRTIO_PCI_COMMON_CFGGENERATION:
		return vd->config_generation;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		return vd->queue_select;
	}
	if (!vq)
		return 0; /* queue_size 0: no such queue */
	switch (off) {
	case VIRTIO_PCI_COMMON_Q_SIZE:
		return vq->size;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		return vd->vq_vector[q];
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		return vq->ready;
	case VIRTIO_PCI_COMMON_Q_NOFF:
		return q;
	}
	addr = vpci_queue_addr(vd, vq, off);
	if (!addr)
		return 0;
	if (len == 8)
		return *addr;
	return (uint32_t)(*addr >> (off & 4 ? 32 : 0));
}

static void vpci_common_write(struct virtio_dev *vd, uint32_t off, uint32_t len, uint64_t v)
{
	uint16_t q = vd->queue_select;
	struct virtq *vq = q < vd->nr_queues ? &vd->vq[q] : NULL;
	uint64_t *addr;
	int shift;

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		vd->dfselect = (uint32_t)v;
		return;
	case VIRTIO_PCI_COMMON_GFSELECT:
		vd->gfselect = (uint32_t)v;
		return;
	case VIRTIO_PCI_COMMON_GF:
		if (vd->status & VIRTIO_CONFIG_S_FEATURES_OK || vd->gfselect > 1)
			return; /* features are frozen once accepted */
		shift = 32 * (int)vd->gfselect;
		vd->guest_features = (vd->guest_features & ~(0xffffffffULL << shift)) |
				     ((v & 0xffffffffULL) << shift);
		return;
	case VIRTIO_PCI_COMMON_MSIX:
		vd->config_vector = vpci_vector_ok(vd, (uint16_t)v) ? (uint16_t)v : MSIX_NO_VECTOR;
		return;
	case VIRTIO_PCI_COMMON_STATUS:
		vpci_status_write(vd, (uint8_t)v);
		return;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		vd->queue_select = (uint16_t)v;
		return;
	case VIRTIO_PCI_COMMON_DF:
	case VIRTIO_PCI_COMMON_NUMQ:
	case VIRTIO_PCI_COMMON_CFGGENERATION:
	case VIRTIO_PCI_COMMON_Q_NOFF:
	case VIRTIO_PCI_COMMON_Q_NDATA:
	case VIRTIO_PCI_COMMON_Q_RESET:
		return; /* read-only, or not offered */
	}
	if (!vq)
		return;
	if (off == VIRTIO_PCI_COMMON_Q_MSIX) {
		uint16_t old = vd->vq_vector[q];

		vd->vq_vector[q] = vpci_vector_ok(vd, (uint16_t)v) ? (uint16_t)v : MSIX_NO_VECTOR;
		if (vd->active && old != vd->vq_vector[q] && vd->ops->queue_vector)
			vd->ops->queue_vector(vd, q);
		return;
	}
	if (vq->ready) {
		/* a live queue's layout cannot change (queue_enable 0 is not allowed either) */
		if (off != VIRTIO_PCI_COMMON_Q_ENABLE || v != 1)
			log_err_rl(&vd->rl, vd->pci.name, "queue %u: write %#x to a live queue",
				   q, off);
		return;
	}
	if (off == VIRTIO_PCI_COMMON_Q_SIZE) {
		if (!v || (v & (v - 1)) || v > vq->max_size) {
			log_err_rl(&vd->rl, vd->pci.name, "queue %u: bad size %llu", q,
				   (unsigned long long)v);
			return;
		}
		vq->size = (uint16_t)v;
		return;
	}
	if (off == VIRTIO_PCI_COMMON_Q_ENABLE) {
		if (v == 1)
			vpci_queue_enable(vd, q);
		return;
	}
	addr = vpci_queue_addr(vd, vq, off);
	if (!addr)
		return;
	if (len == 8)
		*addr = v;
	else if (off & 4)
		*addr = (*addr & 0xffffffffULL) | (v << 32);
	else
		*addr = (*addr & ~0xffffffffULL) | (v & 0xffffffffULL);
}

/* ---- queue kicks ---------------------------------------------------------- */

static void vpci_do_kick(struct virtio_dev *vd, uint16_t q)
{
	pthread_mutex_lock(&vd->lock);
	if (vd->active && !vd->broken && vd->vq[q].ready && vd->ops->queue_notify)
		vd->ops->queue_notify(vd, q);
	pthread_mutex_unlock(&vd->lock);
}

/* event loop thread */
static void vpci_kick_fn(void *opaque, int res)
{
	struct virtio_kick_ctx *ctx = opaque;
	struct virtio_dev *vd = ctx->vd;

	sys__eventfd_drain(vd->kick_fd[ctx->q]);
	if (res < 0)
		return;
	vpci_do_kick(vd, ctx->q);
}

/* the eventfd queue q's notifications signal (vd->lock held, or the BAR callbacks) */
static int vpci_kick_target(const struct virtio_dev *vd, uint16_t q)
{
	return vd->kick_redirect[q] >= 0 ? vd->kick_redirect[q] : vd->kick_fd[q];
}

void virtio_pci__notify_all(struct virtio_dev *vd)
{
	uint16_t q;

	pthread_mutex_lock(&vd->lock);
	for (q = 0; vd->active && !vd->broken && q < vd->nr_queues; q++) {
		if (!vd->vq[q].ready)
			continue;
		/* as a notify write would: whoever serves the queue (us or vhost) looks at it */
		sys__eventfd_signal(vpci_kick_target(vd, q));
		vpci_raise(vd, vd->vq_vector[q], VPCI_ISR_QUEUE);
	}
	pthread_mutex_unlock(&vd->lock);
}

/* a notify write that reached userspace (no ioeventfd registered for it) */
static void vpci_notify_write(struct virtio_dev *vd, uint16_t q)
{
	int redirect;

	if (q >= vd->nr_queues)
		return;
	pthread_mutex_lock(&vd->lock);
	redirect = vd->kick_redirect[q];
	pthread_mutex_unlock(&vd->lock);
	if (redirect >= 0) {
		sys__eventfd_signal(redirect);
		return;
	}
	if (vd->vm->irq.vm_fd >= 0 && vd->kick_fd[q] >= 0) {
		/* hand it to the event loop like an ioeventfd would */
		sys__eventfd_signal(vd->kick_fd[q]);
		return;
	}
	vpci_do_kick(vd, q);
}

static uint32_t vpci_ioeventfd_len(struct virtio_dev *vd);

int virtio_pci__redirect_kick(struct virtio_dev *vd, uint16_t q, int fd)
{
	uint64_t addr;
	int from, to, ret = 0;

	if (q >= vd->nr_queues)
		return -EINVAL;
	pthread_mutex_lock(&vd->lock);
	from = vpci_kick_target(vd, q);
	to = fd >= 0 ? fd : vd->kick_fd[q];
	if (from != to && vd->kick_ioeventfd[q]) {
		/* the same address and match: one ioeventfd at a time */
		uint32_t elen = vpci_ioeventfd_len(vd);

		addr = vd->bar_addr + VIRTIO_PCI_NOTIFY_OFF + q * VIRTIO_PCI_NOTIFY_MULT;
		ret = irq__ioeventfd(&vd->vm->irq, addr, elen, -1, false, from, false);
		if (!ret) {
			ret = irq__ioeventfd(&vd->vm->irq, addr, elen, -1, false, to, true);
			if (ret && irq__ioeventfd(&vd->vm->irq, addr, elen, -1, false, from, true)) {
				log_err_rl(&vd->rl, vd->pci.name,
					   "queue %u: no ioeventfd any more, kicks go through the VMM", q);
				vd->kick_ioeventfd[q] = false;
			}
		}
	}
	if (!ret)
		vd->kick_redirect[q] = fd >= 0 ? fd : -1;
	pthread_mutex_unlock(&vd->lock);
	if (ret) {
		log_err_rl(&vd->rl, vd->pci.name, "queue %u: cannot move its ioeventfd: %s", q,
			   strerror(-ret));
		return ret;
	}
	if (from != to)
		sys__eventfd_signal(to);
	return 0;
}

/* ---- BAR accesses ---------------------------------------------------------- */

static void vpci_bar_access(struct virtio_dev *vd, uint64_t off, uint8_t *data, uint32_t len,
			    bool is_write)
{
	uint32_t tsize = msix__table_size(vd->msix.nr), psize = msix__pba_size(vd->msix.nr);
	uint64_t v;

	if (!is_write)
		memset(data, 0, len);
	if (off >= VIRTIO_PCI_BAR_SIZE || len > VIRTIO_PCI_BAR_SIZE - off)
		return;

	if (off >= VIRTIO_PCI_MSIX_TABLE_OFF && off < VIRTIO_PCI_MSIX_TABLE_OFF + tsize) {
		msix__table_access(&vd->msix, off - VIRTIO_PCI_MSIX_TABLE_OFF, data, len, is_write);
		return;
	}
	if (off >= VIRTIO_PCI_MSIX_PBA_OFF && off < VIRTIO_PCI_MSIX_PBA_OFF + psize) {
		msix__pba_access(&vd->msix, off - VIRTIO_PCI_MSIX_PBA_OFF, data, len, is_write);
		return;
	}
	if (off >= VIRTIO_PCI_NOTIFY_OFF && off < VIRTIO_PCI_NOTIFY_OFF + 0x800u) {
		if (is_write)
			vpci_notify_write(vd, (uint16_t)((off - VIRTIO_PCI_NOTIFY_OFF) /
							 VIRTIO_PCI_NOTIFY_MULT));
		return;
	}

	pthread_mutex_lock(&vd->lock);
	if (off < VIRTIO_PCI_COMMON_LEN) {
		if (!vpci_common_access_ok((uint32_t)off, len)) {
			log_err_rl(&vd->rl, vd->pci.name, "bad common config access off %#llx len %u",
				   (unsigned long long)off, len);
		} else if (is_write) {
			vpci_common_write(vd, (uint32_t)off, len, vpci_get(data, len));
		} else {
			v = vpci_common_read(vd, (uint32_t)off, len);
			vpci_put(data, len, v);
		}
	} else if (off == VIRTIO_PCI_ISR_OFF) {
		if (!is_write) {
			/* reading ISR acknowledges the interrupt */
			data[0] = vd->isr;
			if (vd->isr)
				irq__line(&vd->vm->irq, vd->pci.intx_gsi, 0);
			vd->isr = 0;
		}
	} else if (off >= VIRTIO_PCI_DEVCFG_OFF && off - VIRTIO_PCI_DEVCFG_OFF < vd->config_len) {
		uint32_t coff = (uint32_t)(off - VIRTIO_PCI_DEVCFG_OFF);

		if (len > vd->config_len - coff)
			log_err_rl(&vd->rl, vd->pci.name, "device config access past its end");
		else if (is_write && vd->ops->cfg_write)
			vd->ops->cfg_write(vd, coff, data, len);
		else if (!is_write && vd->ops->cfg_read)
			vd->ops->cfg_read(vd, coff, data, len);
	}
	pthread_mutex_unlock(&vd->lock);
}

static void vpci_mmio(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	vpci_bar_access(opaque, offset, data, len, is_write);
}

/* ---- PCI callbacks ---------------------------------------------------------- */

static uint32_t vpci_ioeventfd_len(struct virtio_dev *vd)
{
	/* any-length matches let KVM take the fast MMIO path (no instruction decode) */
	return kvm__check_cap(vd->vm, KVM_CAP_IOEVENTFD_ANY_LENGTH) > 0 ? 0 : 2;
}

static int vpci_bar_map(struct pci_dev *d, int bar, uint64_t addr)
{
	struct virtio_dev *vd = vpci_from_pci(d);
	uint32_t elen;
	uint16_t q;
	int ret;

	if (bar != VIRTIO_PCI_BAR)
		return 0;
	ret = bus__register(&vd->vm->mmio, addr, VIRTIO_PCI_BAR_SIZE, vpci_mmio, vd, d->name);
	if (ret)
		return ret;
	pthread_mutex_lock(&vd->lock);
	vd->bar_addr = addr;
	pthread_mutex_unlock(&vd->lock);
	if (vd->vm->irq.vm_fd < 0)
		return 0;
	elen = vpci_ioeventfd_len(vd);
	for (q = 0; q < vd->nr_queues; q++) {
		pthread_mutex_lock(&vd->lock);
		ret = irq__ioeventfd(&vd->vm->irq, addr + VIRTIO_PCI_NOTIFY_OFF + q * VIRTIO_PCI_NOTIFY_MULT,
				     elen, -1, false, vpci_kick_target(vd, q), true);
		/* without it, notify writes exit to us and are forwarded to the loop */
		if (ret)
			log_warn_rl(&vd->rl, d->name,
				    "queue %u: no ioeventfd (%s), kicks go through the VMM", q,
				    strerror(-ret));
		vd->kick_ioeventfd[q] = !ret;
		pthread_mutex_unlock(&vd->lock);
	}
	return 0;
}

static int vpci_bar_unmap(struct pci_dev *d, int bar, uint64_t addr)
{
	struct virtio_dev *vd = vpci_from_pci(d);
	uint32_t elen;
	uint16_t q;

	if (bar != VIRTIO_PCI_BAR)
		return 0;
	if (vd->vm->irq.vm_fd >= 0) {
		elen = vpci_ioeventfd_len(vd);
		for (q = 0; q < vd->nr_queues; q++) {
			pthread_mutex_lock(&vd->lock);
			if (vd->kick_ioeventfd[q] &&
			    irq__ioeventfd(&vd->vm->irq,
					   addr + VIRTIO_PCI_NOTIFY_OFF + q * VIRTIO_PCI_NOTIFY_MULT,
					   elen, -1, false, vpci_kick_target(vd, q), false))
				log_warn_rl(&vd->rl, d->name, "queue %u: cannot remove ioeventfd", q);
			vd->kick_ioeventfd[q] = false;
			pthread_mutex_unlock(&vd->lock);
		}
	}
	/* not under vd->lock: deregistration waits for running handlers, which take it */
	bus__deregister(&vd->vm->mmio, addr);
	pthread_mutex_lock(&vd->lock);
	vd->bar_addr = 0;
	pthread_mutex_unlock(&vd->lock);
	return 0;
}

/* the VIRTIO_PCI_CAP_PCI_CFG window: cap.bar/offset/length select, pci_cfg_data moves */
static void vpci_cfg_window(struct virtio_dev *vd, bool is_write)
{
	uint32_t c = vd->cfg_cap_off;
	uint8_t bar = pci__cfg_rd8(&vd->pci, c + VIRTIO_PCI_CAP_BAR);
	uint32_t off = pci__cfg_rd32(&vd->pci, c + VIRTIO_PCI_CAP_OFFSET);
	uint32_t len = pci__cfg_rd32(&vd->pci, c + VIRTIO_PCI_CAP_LENGTH);
	uint8_t *data = &vd->pci.cfg[c + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data)];

	if (bar != VIRTIO_PCI_BAR || (len != 1 && len != 2 && len != 4) || (off & (len - 1)) ||
	    off >= VIRTIO_PCI_BAR_SIZE) {
		if (!is_write)
			memset(data, 0, 4);
		return;
	}
	vpci_bar_access(vd, off, data, len, is_write);
}

static void vpci_cfg_read(struct pci_dev *d, uint32_t off, uint32_t len)
{
	struct virtio_dev *vd = vpci_from_pci(d);
	uint32_t data_off = vd->cfg_cap_off + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);

	if (vd->cfg_cap_off && ranges_overlap(off, len, data_off, 4))
		vpci_cfg_window(vd, false);
}

static void vpci_cfg_write(struct pci_dev *d, uint32_t off, uint32_t len)
{
	struct virtio_dev *vd = vpci_from_pci(d);
	uint32_t data_off = vd->cfg_cap_off + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);

	msix__cfg_write(&vd->msix, off, len);
	if (vd->cfg_cap_off && ranges_overlap(off, len, data_off, 4))
		vpci_cfg_window(vd, true);
}

static const struct pci_dev_ops vpci_ops = {
	.bar_map = vpci_bar_map,
	.bar_unmap = vpci_bar_unmap,
	.cfg_read = vpci_cfg_read,
	.cfg_write = vpci_cfg_write,
};

/* ---- setup ---------------------------------------------------------------- */

static int vpci_add_cap(struct virtio_dev *vd, uint8_t type, uint32_t off, uint32_t len,
			const void *extra, uint32_t extra_len)
{
	struct virtio_pci_cfg_cap cap; /* the largest of the layouts */
	uint32_t cap_len = sizeof(struct virtio_pci_cap) + extra_len;

	memset(&cap, 0, sizeof(cap));
	cap.cap.cap_vndr = PCI_CAP_ID_VNDR;
	cap.cap.cap_len = (uint8_t)cap_len;
	cap.cap.cfg_type = type;
	cap.cap.bar = type == VIRTIO_PCI_CAP_PCI_CFG ? 0 : VIRTIO_PCI_BAR;
	cap.cap.offset = htole32(off);
	cap.cap.length = htole32(len);
	if (extra_len)
		memcpy((uint8_t *)&cap + sizeof(struct virtio_pci_cap), extra, extra_len);
	/* the bus writes cap_vndr and cap_next itself */
	return pci__dev_add_cap(&vd->pci, PCI_CAP_ID_VNDR, (uint8_t *)&cap + 2, cap_len - 2);
}

static int vpci_add_caps(struct virtio_dev *vd)
{
	uint32_t mult = htole32(VIRTIO_PCI_NOTIFY_MULT), zero = 0;
	int ret, c;

	ret = vpci_add_cap(vd, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF,
			   VPCI_COMMON_CAP_LEN, NULL, 0);
	if (ret < 0)
		return ret;
	ret = vpci_add_cap(vd, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
			   (uint32_t)vd->nr_queues * VIRTIO_PCI_NOTIFY_MULT, &mult, sizeof(mult));
	if (ret < 0)
		return ret;
	ret = vpci_add_cap(vd, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 4, NULL, 0);
	if (ret < 0)
		return ret;
	if (vd->config_len) {
		ret = vpci_add_cap(vd, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVCFG_OFF,
				   vd->config_len, NULL, 0);
		if (ret < 0)
			return ret;
	}
	c = vpci_add_cap(vd, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, &zero, sizeof(zero));
	if (c < 0)
		return c;
	vd->cfg_cap_off = (uint8_t)c;
	/* the window's bar, offset, length and data are the driver's to write */
	pci__dev_set_wmask(&vd->pci, (uint32_t)c + VIRTIO_PCI_CAP_BAR, 1, 0xff);
	pci__dev_set_wmask(&vd->pci, (uint32_t)c + VIRTIO_PCI_CAP_OFFSET, 8, 0xff);
	pci__dev_set_wmask(&vd->pci, (uint32_t)c + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data),
			   4, 0xff);
	return 0;
}

/* a 16-bit index in the guest's ring at gpa, or -1 when it is not in RAM */
static int virtio_ring_idx(const struct virtq *q, uint64_t gpa)
{
	uint16_t *p = q->size ? mem__gpa_to_hva(q->mem, gpa + 2, 2) : NULL;

	return p ? (int)le16toh(__atomic_load_n(p, __ATOMIC_RELAXED)) : -1;
}

void virtio_pci__describe(struct virtio_dev *vd, json_t *o)
{
	json_t *qs = json_array();
	unsigned int i;

	pthread_mutex_lock(&vd->lock);
	for (i = 0; qs && i < vd->nr_queues; i++) {
		const struct virtq *q = &vd->vq[i];

		if (!q->ready)
			continue;
		json_array_append_new(qs, json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "queue", (int)i,
						    "size", (int)q->size,
						    "last_avail_idx", (int)q->last_avail_idx,
						    "used_idx", (int)q->used_idx,
						    "guest_avail_idx", virtio_ring_idx(q, q->avail_gpa),
						    "guest_used_idx", virtio_ring_idx(q, q->used_gpa),
						    "msix_vector", (int)vd->vq_vector[i]));
	}
	json_object_set_new(o, "virtio", json_pack("{s:i,s:b,s:b,s:i,s:o}", "status", (int)vd->status,
						   "active", vd->active, "broken", vd->broken,
						   "isr", (int)vd->isr, "queues", qs ? qs : json_null()));
	pthread_mutex_unlock(&vd->lock);
}

int virtio_pci__init(struct virtio_dev *vd, struct vm *vm, const char *name, uint16_t device_id,
		     uint16_t pci_class_hi16, uint16_t nr_queues, uint16_t queue_max,
		     uint32_t config_len, const struct virtio_dev_ops *ops, void *priv)
{
	pthread_mutexattr_t attr;
	uint16_t q;
	int ret;

	if (!nr_queues || nr_queues > VIRTIO_MAX_QUEUES || !queue_max ||
	    queue_max > VIRTQ_MAX_SIZE || (queue_max & (queue_max - 1)) ||
	    config_len > VIRTIO_PCI_DEVCFG_MAX || !ops)
		return -EINVAL;

	memset(vd, 0, sizeof(*vd));
	vd->vm = vm;
	vd->ops = ops;
	vd->priv = priv;
	vd->device_id = device_id;
	vd->nr_queues = nr_queues;
	vd->config_len = config_len;
	vd->config_vector = MSIX_NO_VECTOR;
	vd->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT;
	for (q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		vd->kick_fd[q] = -1;
		vd->kick_redirect[q] = -1;
		vd->vq_vector[q] = MSIX_NO_VECTOR;
	}
	for (q = 0; q < nr_queues; q++) {
		virtq__init(&vd->vq[q], &vm->mem, queue_max);
		vd->kick_ctx[q] = (struct virtio_kick_ctx){ .vd = vd, .q = q };
	}

	vd->host_features = (ops->features ? ops->features(vd) : 0) | BIT64(VIRTIO_F_VERSION_1) |
			    BIT64(VIRTIO_RING_F_EVENT_IDX) | BIT64(VIRTIO_RING_F_INDIRECT_DESC);
	/* guest-physical addresses only: no IOMMU in front of this device */
	vd->host_features &= ~BIT64(VIRTIO_F_ACCESS_PLATFORM);

	pci__dev_init(&vd->pci, name, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + device_id),
		      (uint32_t)pci_class_hi16 << 8, VIRTIO_PCI_VENDOR, device_id, 1, &vpci_ops);
	pci__cfg_wr8(&vd->pci, PCI_INTERRUPT_PIN, 1); /* INTA# */
	ret = pci__dev_add_bar(&vd->pci, VIRTIO_PCI_BAR, VIRTIO_PCI_BAR_SIZE,
			       PCI_BAR_F_MEM64 | PCI_BAR_F_PREFETCH);
	if (ret)
		return ret;
	ret = vpci_add_caps(vd);
	if (ret)
		return ret;
	ret = msix__init(&vd->msix, &vd->pci, &vm->irq, (uint16_t)(nr_queues + 1), VIRTIO_PCI_BAR,
			 VIRTIO_PCI_MSIX_TABLE_OFF, VIRTIO_PCI_MSIX_PBA_OFF);
	if (ret)
		return ret;

	for (q = 0; q < nr_queues; q++) {
		vd->kick_fd[q] = sys__eventfd(0);
		if (vd->kick_fd[q] < 0) {
			ret = vd->kick_fd[q];
			goto err_fds;
		}
	}

	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	ret = -pthread_mutex_init(&vd->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	if (ret)
		goto err_fds;
	return 0;

err_fds:
	for (q = 0; q < nr_queues; q++) {
		if (vd->kick_fd[q] >= 0)
			close(vd->kick_fd[q]);
		vd->kick_fd[q] = -1;
	}
	msix__destroy(&vd->msix);
	return ret;
}

static void vpci_del_watches(struct virtio_dev *vd, uint16_t n)
{
	uint16_t q;

	for (q = 0; q < n; q++)
		evloop__del_fd(&vd->vm->loop, &vd->kick_watch[q]);
}

int virtio_pci__register(struct virtio_dev *vd)
{
	uint16_t q;
	int ret;

	for (q = 0; q < vd->nr_queues; q++) {
		ret = evloop__add_fd(&vd->vm->loop, &vd->kick_watch[q], vd->kick_fd[q], POLLIN,
				     vpci_kick_fn, &vd->kick_ctx[q]);
		if (ret)
			goto err_watches;
	}
	ret = pci__register(&vd->vm->pci, &vd->pci, -1);
	if (ret)
		goto err_watches;
	vd->registered = true;
	return 0;

err_watches:
	vpci_del_watches(vd, q);
	return ret;
}

void virtio_pci__destroy(struct virtio_dev *vd)
{
	uint16_t q;

	if (vd->registered) {
		pci__unregister(&vd->vm->pci, &vd->pci);
		vpci_del_watches(vd, vd->nr_queues);
		vd->registered = false;
	}
	for (q = 0; q < vd->nr_queues; q++) {
		if (vd->kick_fd[q] >= 0)
			close(vd->kick_fd[q]);
		vd->kick_fd[q] = -1;
	}
	msix__destroy(&vd->msix);
	pthread_mutex_destroy(&vd->lock);
}

/* ---- state: the transport in the device's section (docs/migration.md) ------- */

#define VPCI_STATUS_BITS                                                                 \
	(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK |  \
	 VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED)

int virtio_pci__save(struct virtio_dev *vd, void *fdt)
{
	struct virtq qs[VIRTIO_MAX_QUEUES];
	uint16_t vec[VIRTIO_MAX_QUEUES];
	uint32_t status, dfs, gfs, qsel, isr, cvec, gen;
	uint64_t gf;
	uint16_t q;
	int ret;

	pthread_mutex_lock(&vd->lock);
	if (vd->reset_status) {
		pthread_mutex_unlock(&vd->lock);
		log_err(vd->pci.name, "state: a reset is completing: save after it");
		return -EBUSY;
	}
	status = vd->status, dfs = vd->dfselect, gfs = vd->gfselect, qsel = vd->queue_select;
	isr = vd->isr, cvec = vd->config_vector, gen = vd->config_generation;
	gf = vd->guest_features;
	memcpy(qs, vd->vq, sizeof(qs[0]) * vd->nr_queues);
	memcpy(vec, vd->vq_vector, sizeof(vec[0]) * vd->nr_queues);
	pthread_mutex_unlock(&vd->lock);

	ret = pci__dev_save(&vd->pci, fdt);
	if (!ret)
		ret = msix__save(&vd->msix, fdt);
	if (!ret)
		ret = mig__put_u32(fdt, "status", status);
	if (!ret)
		ret = mig__put_u32(fdt, "dfselect", dfs);
	if (!ret)
		ret = mig__put_u32(fdt, "gfselect", gfs);
	if (!ret)
		ret = mig__put_u32(fdt, "queue_select", qsel);
	if (!ret)
		ret = mig__put_u32(fdt, "isr", isr);
	if (!ret)
		ret = mig__put_u32(fdt, "config_vector", cvec);
	if (!ret)
		ret = mig__put_u32(fdt, "config_generation", gen);
	if (!ret)
		ret = mig__put_u64(fdt, "guest_features", gf);
	if (!ret)
		ret = mig__put_u32(fdt, "nr_queues", vd->nr_queues);
	/* subnodes last: the device-tree format's order */
	for (q = 0; q < vd->nr_queues && !ret; q++) {
		char name[16];

		snprintf(name, sizeof(name), "queue-%u", q);
		ret = mig__begin_node(fdt, name);
		if (!ret)
			ret = mig__put_u32(fdt, "size", qs[q].size);
		if (!ret)
			ret = mig__put_u32(fdt, "ready", qs[q].ready);
		if (!ret)
			ret = mig__put_u64(fdt, "desc", qs[q].desc_gpa);
		if (!ret)
			ret = mig__put_u64(fdt, "driver", qs[q].avail_gpa);
		if (!ret)
			ret = mig__put_u64(fdt, "device", qs[q].used_gpa);
		if (!ret)
			ret = mig__put_u32(fdt, "last_avail_idx", qs[q].last_avail_idx);
		if (!ret)
			ret = mig__put_u32(fdt, "used_idx", qs[q].used_idx);
		if (!ret)
			ret = mig__put_u32(fdt, "signalled_used", qs[q].signalled_used);
		if (!ret)
			ret = mig__put_u32(fdt, "signalled_used_valid", qs[q].signalled_used_valid);
		if (!ret)
			ret = mig__put_u32(fdt, "vector", vec[q]);
		if (!ret)
			ret = mig__end_node(fdt);
	}
	return ret;
}

int virtio_pci__load(struct virtio_dev *vd, const void *fdt, int node)
{
	struct virtq qs[VIRTIO_MAX_QUEUES];
	uint32_t status, dfs, gfs, qsel, isr, cvec, gen, nq, vec[VIRTIO_MAX_QUEUES];
	uint64_t gf;
	uint16_t q;
	int ret;

	ret = mig__get_u32_max(fdt, node, "status", 0xff, &status);
	if (!ret)
		ret = mig__get_u32_max(fdt, node, "dfselect", 1, &dfs);
	if (!ret)
		ret = mig__get_u32_max(fdt, node, "gfselect", 1, &gfs);
	if (!ret)
		ret = mig__get_u32_max(fdt, node, "queue_select", 0xffff, &qsel);
	if (!ret)
		ret = mig__get_u32_max(fdt, node, "isr", 3, &isr);
	if (!ret)
		ret = mig__get_u32_max(fdt, node, "config_vector", 0xffff, &cvec);
	if (!ret)
		ret = mig__get_u32_max(fdt, node, "config_generation", 0xff, &gen);
	if (!ret)
		ret = mig__get_u64(fdt, node, "guest_features", &gf);
	if (!ret)
		ret = mig__get_u32(fdt, node, "nr_queues", &nq);
	if (ret)
		return ret;
	if (status & ~VPCI_STATUS_BITS) {
		log_err(vd->pci.name, "state: status %#x has undefined bits", status);
		return -EINVAL;
	}
	if (gf & ~vd->host_features) {
		log_err(vd->pci.name, "state: the driver's features %#llx include %#llx, which this "
			"device does not offer", (unsigned long long)gf,
			(unsigned long long)(gf & ~vd->host_features));
		return -EINVAL;
	}
	if (nq != vd->nr_queues) {
		log_err(vd->pci.name, "state: %u queues, this device has %u", nq, vd->nr_queues);
		return -EINVAL;
	}
	for (q = 0; q < vd->nr_queues; q++) {
		uint32_t size, ready, lai, ui, su, suv;
		char name[16];
		int qn;

		snprintf(name, sizeof(name), "queue-%u", q);
		qn = mig__get_node(fdt, node, name);
		if (qn < 0)
			return qn;
		qs[q] = vd->vq[q];
		ret = mig__get_u32_max(fdt, qn, "size", vd->vq[q].max_size, &size);
		if (!ret)
			ret = mig__get_u32_max(fdt, qn, "ready", 1, &ready);
		if (!ret)
			ret = mig__get_u64(fdt, qn, "desc", &qs[q].desc_gpa);
		if (!ret)
			ret = mig__get_u64(fdt, qn, "driver", &qs[q].avail_gpa);
		if (!ret)
			ret = mig__get_u64(fdt, qn, "device", &qs[q].used_gpa);
		if (!ret)
			ret = mig__get_u32_max(fdt, qn, "last_avail_idx", 0xffff, &lai);
		if (!ret)
			ret = mig__get_u32_max(fdt, qn, "used_idx", 0xffff, &ui);
		if (!ret)
			ret = mig__get_u32_max(fdt, qn, "signalled_used", 0xffff, &su);
		if (!ret)
			ret = mig__get_u32_max(fdt, qn, "signalled_used_valid", 1, &suv);
		if (!ret)
			ret = mig__get_u32_max(fdt, qn, "vector", 0xffff, &vec[q]);
		if (ret)
			return ret;
		qs[q].size = (uint16_t)size;
		qs[q].ready = false;
		if (ready) {
			/* the same checks as a driver's enable: size, alignment, rings inside RAM */
			if (virtq__enable(&qs[q])) {
				log_err(vd->pci.name, "state: queue %u: size %u, rings %#llx/%#llx/%#llx "
					"are not a usable queue in this VM's memory", q, size,
					(unsigned long long)qs[q].desc_gpa,
					(unsigned long long)qs[q].avail_gpa,
					(unsigned long long)qs[q].used_gpa);
				return -EINVAL;
			}
		}
		/* after enable, which starts the indices at 0 */
		qs[q].last_avail_idx = (uint16_t)lai;
		qs[q].used_idx = (uint16_t)ui;
		qs[q].signalled_used = (uint16_t)su;
		qs[q].signalled_used_valid = suv;
	}
	/* the config space (BARs decoded, the MSI-X capability), then the vectors */
	ret = pci__dev_load(&vd->pci, fdt, node);
	if (!ret)
		ret = msix__load(&vd->msix, fdt, node);
	if (ret)
		return ret;
	if (!vpci_vector_ok(vd, (uint16_t)cvec)) {
		log_err(vd->pci.name, "state: config vector %u, the device has %u", cvec, vd->msix.nr);
		return -EINVAL;
	}
	for (q = 0; q < vd->nr_queues; q++) {
		if (!vpci_vector_ok(vd, (uint16_t)vec[q])) {
			log_err(vd->pci.name, "state: queue %u vector %u, the device has %u", q, vec[q],
				vd->msix.nr);
			return -EINVAL;
		}
	}
	pthread_mutex_lock(&vd->lock);
	vd->status = (uint8_t)status;
	vd->dfselect = dfs, vd->gfselect = gfs, vd->queue_select = (uint16_t)qsel;
	vd->isr = (uint8_t)isr;
	vd->config_vector = (uint16_t)cvec;
	vd->config_generation = (uint8_t)gen;
	vd->guest_features = gf;
	vd->broken = status & VIRTIO_CONFIG_S_NEEDS_RESET;
	for (q = 0; q < vd->nr_queues; q++) {
		vd->vq[q] = qs[q];
		vd->vq_vector[q] = (uint16_t)vec[q];
	}
	vpci_set_event_idx(vd);
	if (vd->isr && !vd->msix.nr)
		irq__line(&vd->vm->irq, vd->pci.intx_gsi, 1);
	ret = 0;
	if ((status & VIRTIO_CONFIG_S_DRIVER_OK) && !vd->broken) {
		ret = vd->ops->activate ? vd->ops->activate(vd) : 0;
		if (ret)
			log_err(vd->pci.name, "state: the device does not start again: %s", strerror(-ret));
		else
			vd->active = true;
	}
	pthread_mutex_unlock(&vd->lock);
	return ret;
}
