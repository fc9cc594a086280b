// SPDX-License-Identifier: MIT
/*
 * The ACPI PCI hot-plug controller (devices/hotplug.c) on a fake VM: its
 * registers and GPE0 block, the SCI irqfd, and the request/eject/deadline
 * state machine, whose callbacks must run on the event loop thread.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/hotplug.h"
#include "vmm/kvm.h"
#include "vmm/log.h"
#include "vmm/sys.h"
#include "vmm/x86/platform.h"

#define REGS X86_HOTPLUG_PORT
#define GPE X86_GPE0_PORT

static const struct hotplug_config cfg = {
	.port = REGS,
	.gpe0_port = GPE,
	.sci_irq = X86_SCI_IRQ,
};
static struct vm vm;
static struct hotplug *hp;

static void setup(void)
{
	cr_assert_eq(kvm__vm_init_fake(&vm, 16 * MiB), 0);
	cr_assert_eq(hotplug__create(&vm, &cfg, &hp), 0);
}

static void teardown(void)
{
	hotplug__destroy(hp);
	kvm__vm_destroy(&vm);
}

TestSuite(hotplug, .init = setup, .fini = teardown);

static void outl(uint16_t port, uint32_t v)
{
	uint8_t d[4];

	memcpy(d, &v, 4);
	cr_assert_eq(bus__dispatch(&vm.pio, port, d, 4, true), 0);
}

static uint32_t inl(uint16_t port)
{
	uint8_t d[4] = { 0 };
	uint32_t v;

	cr_assert_eq(bus__dispatch(&vm.pio, port, d, 4, false), 0);
	memcpy(&v, d, 4);
	return v;
}

static void outb(uint16_t port, uint8_t v)
{
	cr_assert_eq(bus__dispatch(&vm.pio, port, &v, 1, true), 0);
}

static uint8_t inb(uint16_t port)
{
	uint8_t v = 0;

	cr_assert_eq(bus__dispatch(&vm.pio, port, &v, 1, false), 0);
	return v;
}

/* how many times the SCI irqfd was signalled since the last call */
static uint64_t sci_count(void)
{
	uint64_t n = 0;

	if (read(hp->sci_fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static struct hotplug_stats stats(void)
{
	struct hotplug_stats s;

	hotplug__get_stats(hp, &s);
	return s;
}

/* ---- the completion callback and its recorder ---- */

struct done_rec {
	unsigned int calls;
	unsigned int slot;
	int result;
	pthread_t thread;
	bool inside_io; /* called while a port write was running */
};

static volatile bool in_port_write;

static void done_cb(void *opaque, unsigned int slot, int result)
{
	struct done_rec *r = opaque;

	r->calls++;
	r->slot = slot;
	r->result = result;
	r->thread = pthread_self();
	r->inside_io = in_port_write;
}

/* runs the loop until r has a call or ms pass */
static void loop_until(struct done_rec *r, unsigned int ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!r->calls) {
		evloop__run_once(&vm.loop, false);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > (long)ms)
			break;
		usleep(1000);
	}
}

/* a vCPU thread: one 4-byte port write */
struct vcpu_write {
	uint16_t port;
	uint32_t val;
	pthread_t self;
};

static void *vcpu_write_fn(void *arg)
{
	struct vcpu_write *w = arg;
	uint8_t d[4];

	w->self = pthread_self();
	memcpy(d, &w->val, 4);
	in_port_write = true;
	bus__dispatch(&vm.pio, w->port, d, 4, true);
	in_port_write = false;
	return NULL;
}

static pthread_t vcpu_outl(uint16_t port, uint32_t val)
{
	struct vcpu_write w = { .port = port, .val = val };
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, vcpu_write_fn, &w), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	return w.self;
}

/* ---- tests ---- */

Test(hotplug, registers_at_boot)
{
	unsigned int i, n = 0, irqfds = 0;

	cr_assert_eq(REGS, 0x0cc4);
	cr_assert_eq(GPE, 0x0620);
	cr_assert_eq(inl(REGS + HOTPLUG_PCIU), 0);
	cr_assert_eq(inl(REGS + HOTPLUG_PCID), 0);
	cr_assert_eq(inl(REGS + HOTPLUG_B0EJ), 0);
	cr_assert_eq(inl(REGS + HOTPLUG_PCRM), 0xfffffffe, "slots 1..31 are hot-pluggable");
	cr_assert_eq(inl(GPE), 0, "GPE0_STS and GPE0_EN start clear");
	for (i = 0; i < HOTPLUG_NR_SLOTS; i++)
		n += hotplug__slot_state(hp, i) == HOTPLUG_SLOT_IDLE;
	cr_assert_eq(n, HOTPLUG_NR_SLOTS);
	cr_assert_eq(hotplug__slot_state(hp, 32), -EINVAL);
	/* the SCI is a level-triggered irqfd on IRQ 9 with a resample fd */
	for (i = 0; i < vm.irq.nr_irqfds; i++) {
		if (vm.irq.irqfds[i].efd == hp->sci_fd) {
			cr_assert_eq(vm.irq.irqfds[i].gsi, X86_SCI_IRQ);
			cr_assert_eq(vm.irq.irqfds[i].resample_fd, hp->resample_fd);
			cr_assert_geq(hp->resample_fd, 0);
			irqfds++;
		}
	}
	cr_assert_eq(irqfds, 1);
	cr_assert_eq(sci_count(), 0);
}

Test(hotplug, unplug_request_sets_pcid_and_gpe_and_raises_sci)
{
	struct done_rec r = { 0 };

	outb(GPE + 2, HOTPLUG_GPE_PCI); /* the guest enables GPE 1 (it has an _E01) */
	cr_assert_eq(hotplug__request_unplug(hp, 3, 5000, done_cb, &r), 0);
	cr_assert_eq(hotplug__slot_state(hp, 3), HOTPLUG_SLOT_UNPLUG_PENDING);
	cr_assert_eq(inl(REGS + HOTPLUG_PCID), 1u << 3);
	cr_assert_eq(inl(REGS + HOTPLUG_PCID), 1u << 3, "PCID does not clear on read");
	cr_assert_eq(inl(REGS + HOTPLUG_PCIU), 0);
	cr_assert_eq(inb(GPE), HOTPLUG_GPE_PCI, "GPE0_STS bit 1");
	cr_assert_eq(sci_count(), 1, "SCI asserted once");
	cr_assert_eq(stats().sci_raised, 1);

	/* the guest clears the status (write 1), as Linux does for an edge GPE */
	outb(GPE, HOTPLUG_GPE_PCI);
	cr_assert_eq(inb(GPE), 0);
	cr_assert_eq(inl(REGS + HOTPLUG_PCID), 1u << 3, "the request stays until eject");

	/* a second request on the same slot is refused; bad arguments too */
	cr_assert_eq(hotplug__request_unplug(hp, 3, 5000, done_cb, &r), -EBUSY);
	cr_assert_eq(hotplug__request_unplug(hp, 0, 5000, done_cb, &r), -EINVAL);
	cr_assert_eq(hotplug__request_unplug(hp, 32, 5000, done_cb, &r), -EINVAL);
	cr_assert_eq(hotplug__request_unplug(hp, 4, 0, done_cb, &r), -EINVAL);
	cr_assert_eq(hotplug__request_unplug(hp, 4, 5000, NULL, &r), -EINVAL);
	cr_assert_eq(hotplug__notify_plug(hp, 3), -EBUSY);
	evloop__run_once(&vm.loop, false);
	cr_assert_eq(r.calls, 0);
}

Test(hotplug, sci_waits_for_gpe_enable)
{
	struct done_rec r = { 0 };

	cr_assert_eq(hotplug__request_unplug(hp, 9, 5000, done_cb, &r), 0);
	cr_assert_eq(inb(GPE), HOTPLUG_GPE_PCI);
	cr_assert_eq(sci_count(), 0, "GPE 1 disabled: no SCI");
	outb(GPE + 2, HOTPLUG_GPE_PCI);
	cr_assert_eq(sci_count(), 1, "enabling a pending GPE raises the SCI");
}

/* runs the loop for up to ms; returns the SCI count seen */
static uint64_t loop_sci(unsigned int ms)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; i < ms && !n; i++) {
		evloop__run_once(&vm.loop, false);
		n = sci_count();
		if (!n)
			usleep(1000);
	}
	return n;
}

Test(hotplug, resample_reasserts_while_pending)
{
	outb(GPE + 2, HOTPLUG_GPE_PCI);
	cr_assert_eq(hotplug__notify_plug(hp, 2), 0);
	cr_assert_eq(sci_count(), 1);
	/* a second event while the line is up does not signal again */
	cr_assert_eq(hotplug__notify_plug(hp, 6), 0);
	cr_assert_eq(sci_count(), 0);
	/* EOI without clearing GPE0_STS: KVM lowered our source, so assert it again */
	cr_assert_eq(sys__eventfd_signal(hp->resample_fd), 0);
	cr_assert_eq(loop_sci(200), 1);
	/* the guest clears the status, then EOIs: the line stays down */
	outb(GPE, HOTPLUG_GPE_PCI);
	cr_assert_eq(sys__eventfd_signal(hp->resample_fd), 0);
	cr_assert_eq(loop_sci(50), 0);
	cr_assert(!hp->sci_asserted);
	/* a new event asserts it again */
	cr_assert_eq(hotplug__notify_plug(hp, 7), 0);
	cr_assert_eq(sci_count(), 1);
}

Test(hotplug, guest_eject_completes_on_loop_thread)
{
	struct done_rec r = { 0 };
	pthread_t vcpu;

	outb(GPE + 2, HOTPLUG_GPE_PCI);
	cr_assert_eq(hotplug__request_unplug(hp, 5, 5000, done_cb, &r), 0);
	/* the guest's \_SB.PCI0.S05._EJ0, on a vCPU thread */
	vcpu = vcpu_outl(REGS + HOTPLUG_B0EJ, 1u << 5);
	cr_assert_eq(r.calls, 0, "the callback must not run on the vCPU thread");
	cr_assert_eq(hotplug__slot_state(hp, 5), HOTPLUG_SLOT_EJECTED);
	cr_assert_eq(inl(REGS + HOTPLUG_PCID), 0, "PCID clears on eject");
	loop_until(&r, 2000);
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(r.slot, 5);
	cr_assert_eq(r.result, 0);
	cr_assert(!r.inside_io);
	cr_assert(pthread_equal(r.thread, pthread_self()), "callback on the loop thread");
	cr_assert(!pthread_equal(r.thread, vcpu));
	cr_assert_eq(stats().ejects, 1);
	cr_assert_eq(stats().bad_ejects, 0);

	/* until the board removed it, the slot takes no new request */
	cr_assert_eq(hotplug__request_unplug(hp, 5, 5000, done_cb, &r), -EALREADY);
	cr_assert_eq(hotplug__slot_removed(hp, 5), 0);
	cr_assert_eq(hotplug__slot_state(hp, 5), HOTPLUG_SLOT_IDLE);
	cr_assert_eq(hotplug__slot_removed(hp, 5), -EINVAL);
	/* a second eject of the same slot is hostile: counted, no callback */
	vcpu_outl(REGS + HOTPLUG_B0EJ, 1u << 5);
	evloop__run_once(&vm.loop, false);
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(stats().bad_ejects, 1);
}

Test(hotplug, deadline_withdraws_the_request)
{
	struct done_rec r = { 0 }, r2 = { 0 };
	struct timespec t0, t1;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(hotplug__request_unplug(hp, 7, 100, done_cb, &r), 0);
	cr_assert_eq(hotplug__request_unplug(hp, 8, 60000, done_cb, &r2), 0);
	cr_assert_eq(inl(REGS + HOTPLUG_PCID), (1u << 7) | (1u << 8));
	loop_until(&r, 3000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	cr_assert_eq(r.calls, 1, "no callback after %ld ms", ms);
	cr_assert_eq(r.slot, 7);
	cr_assert_eq(r.result, -ETIMEDOUT);
	cr_assert_geq(ms, 100, "fired after %ld ms", ms);
	cr_assert(pthread_equal(r.thread, pthread_self()));
	/* the device stays: the request is withdrawn, PCID clear */
	cr_assert_eq(hotplug__slot_state(hp, 7), HOTPLUG_SLOT_IDLE);
	cr_assert_eq(inl(REGS + HOTPLUG_PCID), 1u << 8, "only slot 8 still asks");
	cr_assert_eq(stats().timeouts, 1);
	cr_assert_eq(r2.calls, 0);
	/* a late eject of slot 7 is ignored, counted, and calls nobody */
	vcpu_outl(REGS + HOTPLUG_B0EJ, 1u << 7);
	evloop__run_once(&vm.loop, false);
	cr_assert_eq(r.calls, 1);
	cr_assert_eq(stats().bad_ejects, 1);
	cr_assert_eq(hotplug__slot_state(hp, 7), HOTPLUG_SLOT_IDLE);
	/* and the slot can be asked again */
	cr_assert_eq(hotplug__request_unplug(hp, 7, 5000, done_cb, &r), 0);
	/* slot 8's eject still completes */
	vcpu_outl(REGS + HOTPLUG_B0EJ, 1u << 8);
	loop_until(&r2, 2000);
	cr_assert_eq(r2.calls, 1);
	cr_assert_eq(r2.result, 0);
}

/* migrate-cancel while the guest has not ejected: the request goes as a deadline's would */
Test(hotplug, withdraw_before_the_eject)
{
	struct done_rec r = { 0 }, r2 = { 0 };

	cr_assert_eq(hotplug__withdraw_unplug(hp, 6), -ENOENT, "nothing pending");
	cr_assert_eq(hotplug__withdraw_unplug(hp, 40), -EINVAL);
	cr_assert_eq(hotplug__request_unplug(hp, 6, 60000, done_cb, &r), 0);
	cr_assert_eq(hotplug__request_unplug(hp, 9, 60000, done_cb, &r2), 0);
	cr_assert_eq(hotplug__withdraw_unplug(hp, 6), 0);
	cr_assert_eq(hotplug__slot_state(hp, 6), HOTPLUG_SLOT_IDLE);
	cr_assert_eq(inl(REGS + HOTPLUG_PCID), 1u << 9, "only slot 9 still asks");
	/* a late eject of slot 6 calls nobody */
	vcpu_outl(REGS + HOTPLUG_B0EJ, 1u << 6);
	evloop__run_once(&vm.loop, false);
	cr_assert_eq(r.calls, 0, "a withdrawn request never completes");
	cr_assert_eq(stats().bad_ejects, 1);
	/* the guest ejected slot 9 already: too late to withdraw, its callback comes */
	vcpu_outl(REGS + HOTPLUG_B0EJ, 1u << 9);
	cr_assert_eq(hotplug__withdraw_unplug(hp, 9), -EALREADY);
	loop_until(&r2, 2000);
	cr_assert_eq(r2.calls, 1);
	cr_assert_eq(r2.result, 0);
	/* the slot can be asked again */
	cr_assert_eq(hotplug__request_unplug(hp, 6, 5000, done_cb, &r), 0);
}

Test(hotplug, eject_without_request_is_ignored_and_counted)
{
	unsigned int i;

	vcpu_outl(REGS + HOTPLUG_B0EJ, 1u << 4);
	cr_assert_eq(stats().bad_ejects, 1);
	cr_assert_eq(hotplug__slot_state(hp, 4), HOTPLUG_SLOT_IDLE);
	vcpu_outl(REGS + HOTPLUG_B0EJ, 0xffffffff);
	cr_assert_eq(stats().bad_ejects, 33);
	for (i = 0; i < HOTPLUG_NR_SLOTS; i++)
		cr_assert_eq(hotplug__slot_state(hp, i), HOTPLUG_SLOT_IDLE);
	cr_assert_eq(inl(REGS + HOTPLUG_PCID), 0);
	cr_assert_eq(inb(GPE), 0, "no GPE");
	cr_assert_eq(sci_count(), 0);
	cr_assert_eq(stats().ejects, 0);
}

Test(hotplug, plug_notify_sets_pciu_until_read)
{
	outb(GPE + 2, HOTPLUG_GPE_PCI);
	cr_assert_eq(hotplug__notify_plug(hp, 4), 0);
	cr_assert_eq(hotplug__notify_plug(hp, 30), 0);
	cr_assert_eq(hotplug__slot_state(hp, 4), HOTPLUG_SLOT_PLUG_PENDING);
	cr_assert_eq(inb(GPE), HOTPLUG_GPE_PCI);
	cr_assert_eq(sci_count(), 1);
	cr_assert_eq(inl(REGS + HOTPLUG_PCID), 0);
	cr_assert_eq(inl(REGS + HOTPLUG_PCIU), (1u << 4) | (1u << 30));
	cr_assert_eq(inl(REGS + HOTPLUG_PCIU), 0, "PCIU clears on read");
	cr_assert_eq(hotplug__slot_state(hp, 4), HOTPLUG_SLOT_IDLE);
	cr_assert_eq(hotplug__notify_plug(hp, 0), -EINVAL);
	cr_assert_eq(hotplug__notify_plug(hp, 32), -EINVAL);
}

Test(hotplug, unplug_supersedes_unread_plug)
{
	struct done_rec r = { 0 };

	cr_assert_eq(hotplug__notify_plug(hp, 4), 0);
	cr_assert_eq(hotplug__request_unplug(hp, 4, 5000, done_cb, &r), 0);
	cr_assert_eq(inl(REGS + HOTPLUG_PCIU), 0);
	cr_assert_eq(inl(REGS + HOTPLUG_PCID), 1u << 4);
}

Test(hotplug, bad_accesses_are_counted_and_ignored)
{
	uint8_t d[4] = { 0, 0, 0, 0 };
	uint64_t before;

	/* byte, word and unaligned accesses to the dword registers */
	cr_assert_eq(bus__dispatch(&vm.pio, REGS + HOTPLUG_PCID, d, 1, false), 0);
	cr_assert_eq(d[0], 0xff);
	cr_assert_eq(bus__dispatch(&vm.pio, REGS + 2, d, 2, false), 0);
	cr_assert_eq(bus__dispatch(&vm.pio, REGS + HOTPLUG_B0EJ, d, 2, true), 0);
	cr_assert_eq(bus__dispatch(&vm.pio, REGS + 1, d, 1, true), 0);
	cr_assert_eq(stats().bad_accesses, 4);
	/* writes to the read-only registers */
	outl(REGS + HOTPLUG_PCIU, 0xffffffff);
	outl(REGS + HOTPLUG_PCID, 0xffffffff);
	outl(REGS + HOTPLUG_PCRM, 0);
	cr_assert_eq(stats().bad_accesses, 7);
	cr_assert_eq(inl(REGS + HOTPLUG_PCIU), 0);
	cr_assert_eq(inl(REGS + HOTPLUG_PCID), 0);
	cr_assert_eq(inl(REGS + HOTPLUG_PCRM), 0xfffffffe);
	/* GPE0: any width inside the block; STS bits the guest writes never set */
	outl(GPE, 0xffffffff);
	cr_assert_eq(inl(GPE) & 0xffff, 0, "GPE0_STS is write-1-to-clear");
	cr_assert_eq(inl(GPE) >> 16, 0xffff, "GPE0_EN is plain");
	cr_assert_eq(sci_count(), 0);
	before = stats().bad_accesses;
	/* hammering: many bad writes, one log burst, no state change */
	for (unsigned int i = 0; i < 10000; i++) {
		uint32_t v = i * 2654435761u;

		memcpy(d, &v, 4);
		bus__dispatch(&vm.pio, REGS + (i % HOTPLUG_REG_LEN), d, 1 + i % 3, i & 1);
	}
	cr_assert_gt(stats().bad_accesses, before);
	cr_assert_eq(inl(REGS + HOTPLUG_PCID), 0);
	cr_assert_eq(stats().ejects, 0);
}

/* vCPU threads hammer B0EJ and the GPE block while the loop thread makes and completes requests */
static volatile bool hammer_stop;

static void *hammer_fn(void *arg)
{
	uint32_t x = (uint32_t)(uintptr_t)arg * 2654435761u + 1;

	while (!hammer_stop) {
		uint8_t d[4];

		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		memcpy(d, &x, 4);
		if (x & 0x100)
			bus__dispatch(&vm.pio, REGS + HOTPLUG_B0EJ, d, 4, true);
		else
			bus__dispatch(&vm.pio, GPE + (x & 3), d, 1, (x >> 9) & 1);
	}
	return NULL;
}

Test(hotplug, concurrent_hammering_completes_each_request_once)
{
	struct done_rec r[HOTPLUG_NR_SLOTS];
	pthread_t t[3];
	unsigned int i, calls = 0, round;

	log__set_level(LOG_WARN); /* a line per request and eject otherwise */
	memset(r, 0, sizeof(r));
	hammer_stop = false;
	for (i = 0; i < ARRAY_SIZE(t); i++)
		cr_assert_eq(pthread_create(&t[i], NULL, hammer_fn, (void *)(uintptr_t)(i + 1)), 0);
	for (round = 0; round < 20; round++) {
		for (i = 1; i < HOTPLUG_NR_SLOTS; i++) {
			int st = hotplug__slot_state(hp, i);

			if (st == HOTPLUG_SLOT_EJECTED && r[i].calls)
				cr_assert_eq(hotplug__slot_removed(hp, i), 0);
			if (hotplug__slot_state(hp, i) == HOTPLUG_SLOT_IDLE) {
				if (round)
					cr_assert_eq(r[i].calls, 1, "slot %u: %u calls", i, r[i].calls);
				r[i].calls = 0;
				cr_assert_eq(hotplug__request_unplug(hp, i, 20, done_cb, &r[i]), 0);
				calls++;
			}
		}
		for (i = 0; i < 30; i++) {
			evloop__run_once(&vm.loop, false);
			usleep(1000);
		}
	}
	hammer_stop = true;
	for (i = 0; i < ARRAY_SIZE(t); i++)
		pthread_join(t[i], NULL);
	/* drain: every request ends exactly once (eject or deadline) */
	for (i = 0; i < 200; i++) {
		evloop__run_once(&vm.loop, false);
		usleep(1000);
	}
	for (i = 1; i < HOTPLUG_NR_SLOTS; i++) {
		cr_assert_neq(hotplug__slot_state(hp, i), HOTPLUG_SLOT_UNPLUG_PENDING, "slot %u", i);
		cr_assert_eq(r[i].calls, 1, "slot %u: %u calls", i, r[i].calls);
	}
	cr_assert_eq(stats().ejects + stats().timeouts, calls);
}

Test(hotplug, create_rejects_bad_config)
{
	struct hotplug_config c = cfg;
	struct hotplug *h;

	c.port = 0;
	cr_assert_eq(hotplug__create(&vm, &c, &h), -EINVAL);
	c = cfg;
	c.gpe0_port = 0;
	cr_assert_eq(hotplug__create(&vm, &c, &h), -EINVAL);
	c = cfg;
	c.port = REGS + 2;
	cr_assert_eq(hotplug__create(&vm, &c, &h), -EINVAL);
	c = cfg;
	c.gpe0_port = REGS + 4;
	cr_assert_eq(hotplug__create(&vm, &c, &h), -EINVAL);
	c = cfg;
	c.sci_irq = 16;
	cr_assert_eq(hotplug__create(&vm, &c, &h), -EINVAL);
	/* the ports are taken by the instance the suite made */
	cr_assert_eq(hotplug__create(&vm, &cfg, &h), -EEXIST);
}
