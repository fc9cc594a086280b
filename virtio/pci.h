/* SPDX-License-Identifier: MIT */
/*
 * Modern virtio-pci transport (virtio 1.x, section 4.1): one 64-bit memory BAR
 * holding the common config, ISR, notify and device-config structures, plus the
 * MSI-X table and PBA. Queue notifications arrive through ioeventfds and are
 * handled on the event loop thread; interrupts leave through MSI-X irqfds.
 * Device models implement struct virtio_dev_ops and never see the transport's
 * registers; a device that meets a malformed ring calls virtio_pci__set_broken().
 */
#ifndef MINIVMM_VIRTIO_PCI_H
#define MINIVMM_VIRTIO_PCI_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtio/queue.h"
#include "vmm/evloop.h"
#include "vmm/kvm.h"
#include "vmm/msix.h"
#include "vmm/pci.h"

#define VIRTIO_MAX_QUEUES 16

/* BAR layout of the transport (one 64-bit prefetchable memory BAR) */
#define VIRTIO_PCI_BAR 4
#define VIRTIO_PCI_BAR_SIZE 0x4000
#define VIRTIO_PCI_COMMON_OFF 0x0000
#define VIRTIO_PCI_COMMON_LEN 0x40
#define VIRTIO_PCI_ISR_OFF 0x1000
#define VIRTIO_PCI_DEVCFG_OFF 0x2000
#define VIRTIO_PCI_DEVCFG_MAX 0x1000
#define VIRTIO_PCI_NOTIFY_OFF 0x3000
#define VIRTIO_PCI_NOTIFY_MULT 4
#define VIRTIO_PCI_MSIX_TABLE_OFF 0x3800
#define VIRTIO_PCI_MSIX_PBA_OFF 0x3c00
#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040

struct virtio_dev;

/* what a queue's kick watch hands to its handler */
struct virtio_kick_ctx {
	struct virtio_dev *vd;
	uint16_t q;
};

/*
 * Threading: every callback runs with vd->lock held. The lock is recursive, so
 * a callback may call virtio_pci__notify_queue()/set_broken() directly; device
 * code that runs on its own (I/O completions on the event loop) should take
 * vd->lock too before touching queues, which serialises it against a reset
 * arriving from a vCPU thread.
 */
struct virtio_dev_ops {
	/* device-specific feature bits (the transport adds VERSION_1 and ring features) */
	uint64_t (*features)(struct virtio_dev *vd);
	/* device config space (off + len <= config_len) */
	void (*cfg_read)(struct virtio_dev *vd, uint32_t off, uint8_t *data, uint32_t len);
	void (*cfg_write)(struct virtio_dev *vd, uint32_t off, const uint8_t *data, uint32_t len);
	/* DRIVER_OK was set: queues are enabled, start the backend; 0 or -errno */
	int (*activate)(struct virtio_dev *vd);
	/* the driver reset the device (or it failed): stop and drop in-flight work */
	void (*reset)(struct virtio_dev *vd);
	/*
	 * optional, vd->lock held: true while work started before a reset can
	 * still touch guest memory (I/O in flight). Until it is false the reset
	 * is not complete: device_status reads back non-zero (virtio 1.2,
	 * 4.1.4.3.2: after writing 0 the driver waits to read 0 back).
	 */
	bool (*busy)(struct virtio_dev *vd);
	/* queue q was kicked (event loop thread) */
	void (*queue_notify)(struct virtio_dev *vd, uint16_t q);
	/*
	 * optional: the driver gave live queue q another MSI-X vector (a vCPU
	 * thread): a device that handed the vector's eventfd to someone else
	 * (vhost) follows; queue work, do not act here
	 */
	void (*queue_vector)(struct virtio_dev *vd, uint16_t q);
};

struct virtio_dev {
	struct pci_dev pci;
	struct msix msix;
	struct vm *vm;
	const struct virtio_dev_ops *ops;
	void *priv;
	uint16_t device_id;        /* virtio device id (1 net, 2 blk) */
	uint16_t nr_queues;
	uint32_t config_len;

	pthread_mutex_t lock;      /* transport state vs vCPU threads */
	uint8_t status;
	uint32_t dfselect, gfselect;
	uint16_t queue_select;
	uint8_t isr;
	uint64_t host_features, guest_features;
	uint16_t config_vector;
	uint8_t config_generation;
	bool active;               /* DRIVER_OK and activate() succeeded */
	bool broken;               /* DEVICE_NEEDS_RESET was raised */
	uint8_t reset_status;      /* != 0: reset pending (ops->busy), read back as status */

	struct virtq vq[VIRTIO_MAX_QUEUES];
	uint16_t vq_vector[VIRTIO_MAX_QUEUES];
	int kick_fd[VIRTIO_MAX_QUEUES];
	struct evloop_watch kick_watch[VIRTIO_MAX_QUEUES];
	struct virtio_kick_ctx kick_ctx[VIRTIO_MAX_QUEUES];
	bool kick_ioeventfd[VIRTIO_MAX_QUEUES]; /* KVM signals the kick eventfd itself */
	int kick_redirect[VIRTIO_MAX_QUEUES]; /* -1, or the eventfd kicks go to instead of kick_fd */
	bool registered;           /* on the PCI bus */
	uint8_t cfg_cap_off;       /* VIRTIO_PCI_CAP_PCI_CFG capability in config space */
	uint64_t bar_addr;         /* where the BAR is decoded now, 0 when not */
	struct log_ratelimit rl;
};

/*
 * Adds the transport's state to a device description (`devices`, SIGUSR2):
 * status, ISR, each ready queue's indices as minivmm holds them and as the
 * guest's rings hold them (avail idx, used idx), and its MSI-X vector. What
 * a guest that waits for a completion is waiting for.
 */
void virtio_pci__describe(struct virtio_dev *vd, json_t *o);
/*
 * After a migration or a restore (vmm_device_ops.moved), on an active
 * device: every ready queue is kicked, as by a notify write, and its
 * interrupt raised once, whatever the driver's notification suppression
 * says. A kick the source took while its devices were paused for the save
 * stays there (the request waits in the avail ring the destination loaded,
 * and the driver, having kicked, will not again), and an interrupt the
 * source raised last may land after its vCPUs' state was read: a spurious
 * kick or interrupt costs a look at a ring, a lost one stalls the guest.
 */
void virtio_pci__notify_all(struct virtio_dev *vd);

int virtio_pci__init(struct virtio_dev *vd, struct vm *vm, const char *name, uint16_t device_id,
		     uint16_t pci_class_hi16, uint16_t nr_queues, uint16_t queue_max,
		     uint32_t config_len, const struct virtio_dev_ops *ops, void *priv) __must_check;
/*
 * Registers on the VM's PCI bus. bar_map puts the BAR on vm->mmio and, with
 * KVM, one ioeventfd per queue; kicks are handled on the event loop thread.
 * Without KVM (unit tests) a notify write calls ops->queue_notify directly.
 */
int virtio_pci__register(struct virtio_dev *vd) __must_check;
void virtio_pci__destroy(struct virtio_dev *vd);

/*
 * The transport's state in the device's section (config space, MSI-X
 * table, status, features, each queue's rings and indices as subnodes
 * "queue-N"): a device writes its own properties first, then calls save
 * (subnodes come last). load checks every field (features offered, queue
 * sizes, rings inside RAM, vectors) before it changes anything, then decodes
 * the BARs, routes the vectors and, for a driver that had set DRIVER_OK,
 * activates the device again. Save with the device paused (no I/O in flight).
 */
int virtio_pci__save(struct virtio_dev *vd, void *fdt) __must_check;
int virtio_pci__load(struct virtio_dev *vd, const void *fdt, int node) __must_check;

/*
 * Queue q's notifications go to the eventfd fd instead of the transport's
 * own (a backend that polls it itself: vhost), through the same ioeventfd,
 * now and after BAR moves; fd < 0 gives them back. Either way the new
 * target is signalled once, so that whoever owns the ring now looks at it.
 * Event loop thread; 0 or -errno (nothing changed).
 */
int virtio_pci__redirect_kick(struct virtio_dev *vd, uint16_t q, int fd) __must_check;

/* signal the used-buffer interrupt for queue q (respects EVENT_IDX suppression) */
void virtio_pci__notify_queue(struct virtio_dev *vd, uint16_t q);
/* signal a configuration change interrupt */
void virtio_pci__notify_config(struct virtio_dev *vd);
/* a guest fault: set DEVICE_NEEDS_RESET, notify the driver, stop processing */
void virtio_pci__set_broken(struct virtio_dev *vd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* negotiated feature test */
static inline bool virtio_pci__has_feature(const struct virtio_dev *vd, unsigned int bit)
{
	return (vd->guest_features >> bit) & 1;
}

#endif
