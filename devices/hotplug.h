/* SPDX-License-Identifier: MIT */
/*
 * ACPI PCI hot-plug controller for the slots of PCI bus 0, modelled on QEMU's
 * acpi-pci-hotplug (hw/acpi/pcihp.c, docs/specs/acpi_pci_hotplug.rst) in its
 * single-bus layout. The board places two port ranges (struct
 * hotplug_config; the x86 board uses vmm/x86/platform.h, and the DSDT and
 * the FADT describe the same ports):
 *
 *  - the register block at `port`, HOTPLUG_REG_LEN bytes, aligned 4-byte
 *    accesses only (the AML uses DWordAcc fields):
 *      +0x0 PCIU  read: slots with a pending insertion; reading clears them
 *                 (the guest's PCNT reads it once and notifies each slot);
 *                 writes are ignored
 *      +0x4 PCID  read: slots with a pending removal (eject) request; stays
 *                 set until the guest ejects the slot or the request's
 *                 deadline passes; writes are ignored
 *      +0x8 B0EJ  write: a bitmap of slots the guest has ejected (its _EJ0);
 *                 only bits of slots with a pending removal request count;
 *                 reads 0
 *      +0xc PCRM  read: the slots that can be hot-plugged (1..31); writes
 *                 are ignored
 *  - a GPE0 block at `gpe0_port`, HOTPLUG_GPE0_LEN bytes, any width, byte
 *    lanes: GPE0_STS (2 bytes, write 1 to clear), then GPE0_EN (2 bytes).
 *    GPE HOTPLUG_GPE_PCI (bit 1) is set on every insertion or removal
 *    request; the DSDT's \_GPE._E01 calls \_SB.PCI0.PCNT, which Notifies
 *    Sxx with 1 (bus check) for PCIU bits and 3 (eject request) for PCID.
 *
 * The SCI (sci_irq) is shared with the PM1 block (devices/pm.c, which drives
 * it with irq__line), so this device asserts it through a level-triggered
 * irqfd with a resample fd: KVM ORs the two sources, lowers ours at the
 * guest's EOI and tells us through the resample fd, and the event loop
 * re-asserts it while (GPE0_STS & GPE0_EN) is still non-zero.
 *
 * Slot states (hotplug__slot_state): IDLE; PLUG_PENDING from
 * hotplug__notify_plug until the guest reads PCIU; UNPLUG_PENDING from
 * hotplug__request_unplug until the guest ejects (-> EJECTED) or the
 * deadline passes (-> IDLE: the device stays, PCID is cleared); EJECTED
 * until the board has removed the device and calls hotplug__slot_removed
 * (or plugs a new one).
 *
 * Threads: guest accesses arrive on vCPU threads, requests on the VMM
 * thread; a mutex guards the state. Completion callbacks (done_fn) always run
 * on the event loop thread (vm->loop): a guest eject only records the
 * completion and signals an eventfd the loop watches, and deadlines are a
 * timerfd the loop watches. Hostile guest accesses (an eject of a slot with
 * no request, a wrong width or offset, writes to read-only registers) are
 * counted and ignored, with a rate-limited log.
 */
#ifndef MINIVMM_DEVICES_HOTPLUG_H
#define MINIVMM_DEVICES_HOTPLUG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/evloop.h"
#include "vmm/log.h"
#include "vmm/device.h"
#include "vmm/util.h"

struct vm;

#define HOTPLUG_REG_LEN 0x10
#define HOTPLUG_PCIU 0x0
#define HOTPLUG_PCID 0x4
#define HOTPLUG_B0EJ 0x8
#define HOTPLUG_PCRM 0xc

#define HOTPLUG_GPE0_LEN 4
#define HOTPLUG_GPE_PCI (1u << 1) /* GPE 1: \_GPE._E01 */

#define HOTPLUG_NR_SLOTS 32
/* slot 0 is the host bridge */
#define HOTPLUG_SLOTS_MASK 0xfffffffeu

enum hotplug_slot_state {
	HOTPLUG_SLOT_IDLE = 0,
	HOTPLUG_SLOT_PLUG_PENDING,
	HOTPLUG_SLOT_UNPLUG_PENDING,
	HOTPLUG_SLOT_EJECTED,
};

/*
 * The end of an unplug request, on the event loop thread: 0 when the guest
 * ejected the slot, -ETIMEDOUT when the deadline passed first (the device
 * stays; the request is withdrawn).
 */
typedef void (*hotplug_done_fn)(void *opaque, unsigned int slot, int result);

struct hotplug_config {
	uint16_t port;      /* the register block, HOTPLUG_REG_LEN bytes */
	uint16_t gpe0_port; /* GPE0_STS/GPE0_EN, HOTPLUG_GPE0_LEN bytes */
	uint32_t sci_irq;   /* ISA IRQ of the SCI */
};

struct hotplug_stats {
	uint64_t bad_ejects;   /* B0EJ bits of slots without a pending request */
	uint64_t bad_accesses; /* wrong width or alignment, writes to read-only registers */
	uint64_t sci_raised;   /* times the SCI was asserted */
	uint64_t ejects;       /* requests completed by the guest */
	uint64_t timeouts;     /* requests whose deadline passed */
};

struct hotplug_slot {
	enum hotplug_slot_state state;
	uint64_t deadline_ns;  /* CLOCK_MONOTONIC, UNPLUG_PENDING only */
	hotplug_done_fn done;
	void *opaque;
	bool completed;        /* ejected; done() not yet called */
};

struct hotplug {
	struct vm *vm;
	struct vmm_device dev;       /* the device model (vmm/device.h) */
	struct hotplug_config cfg;
	pthread_mutex_t lock;
	bool closing;          /* hotplug__destroy: no more callbacks */
	bool regs_registered, gpe_registered, irqfd_attached;
	int sci_fd, resample_fd, done_fd, timer_fd;
	struct evloop_watch resample_watch, done_watch, timer_watch;

	struct hotplug_slot slots[HOTPLUG_NR_SLOTS];
	uint16_t gpe_sts, gpe_en;
	bool sci_asserted;     /* the irqfd fired and KVM has not resampled it yet */
	struct hotplug_stats stats;
	struct log_ratelimit rl;
};

/* registers both port ranges, the SCI irqfd and the loop watches */
int hotplug__create(struct vm *vm, const struct hotplug_config *cfg,
		    struct hotplug **out) __must_check;
/*
 * Removes everything (waiting for running port handlers and watches); pending
 * requests are dropped without a callback. The event loop must be running
 * or the caller must be its thread. NULL is a no-op.
 */
void hotplug__destroy(struct hotplug *hp);

/*
 * Asks the guest to eject the device in slot (1..31): sets its PCID bit and
 * raises GPE 1. done(opaque, slot, result) runs later on the loop thread.
 * -EINVAL (bad slot, deadline 0, no callback), -EBUSY (a request is pending),
 * -EALREADY (ejected, not yet removed), -ESHUTDOWN (being destroyed).
 */
int hotplug__request_unplug(struct hotplug *hp, unsigned int slot, unsigned int deadline_ms,
			    hotplug_done_fn done, void *opaque) __must_check;

/*
 * Tells the guest a device appeared in slot (1..31): sets its PCIU bit and
 * raises GPE 1. -EINVAL (bad slot), -EBUSY (an unplug request is pending).
 */
int hotplug__notify_plug(struct hotplug *hp, unsigned int slot) __must_check;

/*
 * Withdraws the pending eject request of slot, as its deadline would
 * (UNPLUG_PENDING -> IDLE; its done callback never runs): 0, or -EALREADY
 * when the guest has ejected it already (the callback comes), -ENOENT when
 * no request is pending, -EINVAL for a bad slot.
 */
int hotplug__withdraw_unplug(struct hotplug *hp, unsigned int slot);

/* the board removed the ejected device of slot: EJECTED -> IDLE; -EINVAL otherwise */
int hotplug__slot_removed(struct hotplug *hp, unsigned int slot);

/* enum hotplug_slot_state, or -EINVAL for a slot outside 0..31 */
int hotplug__slot_state(struct hotplug *hp, unsigned int slot);

void hotplug__get_stats(struct hotplug *hp, struct hotplug_stats *out);

#endif
