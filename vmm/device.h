/* SPDX-License-Identifier: MIT */
/*
 * The device model: one interface for every device the VM has, whatever its
 * kind or bus, and one list of the live instances (struct vm's `devices`),
 * as kvmtool's device registry and Cloud Hypervisor's device manager keep.
 *
 * A device embeds a struct vmm_device, fills it with device__init() and
 * adds it with device__add() once it is fully built; its destroy path
 * removes it (device__remove) first. The list order is the order devices
 * were added; the board destroys them in reverse (device__last/prev).
 *
 * Ids are stable names (ttyS0, net0, vf0): the control socket, the logs and
 * (next) the migration stream's sections use them. device__add refuses a
 * second device with the same id.
 *
 * Threads: a mutex guards the list. Devices add themselves at the end of
 * their create, which may run on a worker thread (a VF's assignment); only
 * the VMM thread removes them (the board takes a device out of the list
 * before handing its destroy to a worker). vCPU threads never use it.
 */
#ifndef MINIVMM_VMM_DEVICE_H
#define MINIVMM_VMM_DEVICE_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "migration/section.h"
#include "vmm/util.h"

#define DEVICE_ID_LEN 32

struct pci_dev;
struct vmm_device;

struct vmm_device_ops {
	/*
	 * Adds what the control socket's `devices` shows beyond id, kind, bus
	 * and address: "detail" (what backs it: a tap, a file, a host PCI
	 * address) and any state of interest (a STANDBY state, counters).
	 * Optional.
	 */
	void (*describe)(struct vmm_device *d, json_t *obj);
	/*
	 * Stop touching guest memory and finish the I/O in flight, on the VMM
	 * thread with the vCPUs paused (a snapshot or migration saves next);
	 * resume undoes it. Optional (devices driven only by vCPU accesses).
	 * 0 or -errno (the pause is then not in effect).
	 */
	int (*pause)(struct vmm_device *d);
	void (*resume)(struct vmm_device *d);
	/*
	 * The guest runs on this VMM after a migration or a restore, its state
	 * loaded: raise again what the guest may be waiting for. An interrupt
	 * the source raised for the last completions before it saved (an
	 * irqfd's injection may land after the vCPUs' state was read) is in
	 * neither the stream's APIC state nor anywhere else, while the used
	 * ring it announced is in the guest's RAM: without it the guest waits
	 * for good. On the VMM thread. Optional.
	 */
	void (*moved)(struct vmm_device *d);
	/*
	 * A migration's dirty tracking starts (on) or ends, on the VMM
	 * thread with the guest running. A device whose writes into guest
	 * memory neither KVM's dirty log nor mem__mark_dirty would see (a
	 * vhost backend writing the rings from the kernel) makes them visible
	 * before it returns (docs/migration.md). Optional; 0 or -errno (the
	 * migration then fails).
	 */
	int (*track_dirty)(struct vmm_device *d, bool on);
	/* one log line of counters (-v, at exit). Optional. */
	void (*log_stats)(struct vmm_device *d);
	/*
	 * Frees the device (it removes itself from the list first). The board
	 * calls it at exit and after a guest ejected a hot-plugged device.
	 */
	void (*destroy)(struct vmm_device *d);
};

enum device_bus {
	DEVICE_BUS_PLATFORM, /* fixed ports and IRQs (ISA-style) */
	DEVICE_BUS_PCI,      /* a function on PCI bus 0 */
};

struct vmm_device {
	char id[DEVICE_ID_LEN];
	const char *kind;              /* "virtio-net", "vfio-pci", "serial", ... */
	enum device_bus bus;
	const struct vmm_device_ops *ops;
	struct pci_dev *pci;           /* DEVICE_BUS_PCI: its function, else NULL */
	char where[32];                /* DEVICE_BUS_PLATFORM: "io 0x3f8 irq 4" */
	/*
	 * May be removed while the guest runs (device-del): a PCI device the
	 * guest can eject through ACPI hot-plug. Fixed devices say false.
	 */
	bool removable;
	/*
	 * Its destroy may block for long (a VF's reset ladder): the board runs
	 * it on a worker thread, never on the event loop.
	 */
	bool slow_destroy;
	/*
	 * Its migration state: the section it registered (vm->mig), or NULL
	 * when it has none yet (a snapshot or migration is then refused,
	 * naming it); stateless devices have nothing to carry.
	 */
	const char *state_section;
	uint32_t state_instance;
	bool stateless;
	bool listed;                   /* in a device_list */
	struct vmm_device *prev, *next;
};

struct device_list {
	pthread_mutex_t lock;
	struct vmm_device *first, *last;
	unsigned int nr;
};

void device__list_init(struct device_list *l);
void device__list_destroy(struct device_list *l);

/* the embedded struct: id (copied, truncated to DEVICE_ID_LEN - 1), kind, ops */
void device__init(struct vmm_device *d, const char *id, const char *kind, enum device_bus bus,
		  const struct vmm_device_ops *ops);
/* -EEXIST when another device has the id, -EINVAL for an empty id or one already listed */
int device__add(struct device_list *l, struct vmm_device *d) __must_check;
/* no-op for a device not in a list */
void device__remove(struct device_list *l, struct vmm_device *d);
struct vmm_device *device__find(struct device_list *l, const char *id);
/* the id's PCI slot (1..31), or -ENODEV (no such id), -ENOTSUP (not on PCI), -ENOENT (not plugged) */
int device__pci_slot(struct device_list *l, const char *id);
/*
 * A JSON object for the control socket: id, kind, bus, address ("00:03.0",
 * the ports, or "-" for a PCI device not plugged), removable, then what
 * describe adds. NULL on allocation failure.
 */
json_t *device__describe(struct vmm_device *d);
/*
 * Registers d's state section in r (migration/section.h) and records it in
 * d; device__unregister_state undoes it (no-op when none). When another
 * device of the kind has `instance`, the next free one is taken (devices
 * are made in the same order on both sides of a snapshot or migration).
 */
#define DEVICE_MAX_INSTANCES 64
int device__register_state(struct vmm_device *d, struct mig_registry *r, const char *name,
			   uint32_t instance, uint32_t version, uint32_t min_version,
			   const struct mig_section_ops *ops, void *opaque) __must_check;
void device__unregister_state(struct vmm_device *d, struct mig_registry *r);
/* the first free "<prefix>N" (net2, vf1) in buf */
void device__next_id(struct device_list *l, const char *prefix, char *buf, size_t len);

/*
 * Calls fn for each device in list order, under the lock (fn must not add
 * or remove devices); stops at the first non-zero return and returns it.
 */
int device__for_each(struct device_list *l, int (*fn)(struct vmm_device *d, void *opaque),
		     void *opaque);
/* the last device of the list (the board destroys from there), or NULL */
struct vmm_device *device__last(struct device_list *l);

#endif
