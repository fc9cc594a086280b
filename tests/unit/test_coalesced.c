// SPDX-License-Identifier: MIT
/*
 * KVM's coalesced I/O ring (vmm/coalesced.c) and its use (vmm/kvm.c,
 * vmm/vcpu.c): the consumer on a ring in plain memory (order, wrap-around,
 * routing, entries KVM could not have written), then on real KVM a tiny
 * real-mode guest whose UART-style writes must reach the device in order,
 * before the exit that follows them, without exits of their own, and also
 * when the guest never exits again (the flush timer).
 */
#include <criterion/criterion.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "kvm_skip.h"
#include "vmm/bus.h"
#include "vmm/coalesced.h"
#include "vmm/kvm.h"

/* what the buses saw, in order: "p<addr>=<byte>" or "m<addr>=<byte>" items */
struct rec {
	pthread_mutex_t lock;
	char log[4096];
};

static void rec_add(struct rec *r, char kind, uint64_t addr, const uint8_t *data, uint32_t len)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = strlen(r->log);
	snprintf(r->log + n, sizeof(r->log) - n, "%c%llx=%x/%u ", kind, (unsigned long long)addr,
		 data[0], len);
	pthread_mutex_unlock(&r->lock);
}

static struct rec rec = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void rec_pio(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	cr_assert(is_write, "a drain only writes");
	rec_add(opaque, 'p', 0x3f8 + off, data, len);
}

static void rec_mmio(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	cr_assert(is_write);
	rec_add(opaque, 'm', 0xd0000000 + off, data, len);
}

static struct bus pio, mmio;
static struct kvm_coalesced_mmio_ring *ring;
static uint32_t max;

static void ring_setup(void)
{
	memset(rec.log, 0, sizeof(rec.log));
	cr_assert_eq(bus__init(&pio, "pio"), 0);
	cr_assert_eq(bus__init(&mmio, "mmio"), 0);
	cr_assert_eq(bus__register(&pio, 0x3f8, 8, rec_pio, &rec, "uart"), 0);
	cr_assert_eq(bus__register(&mmio, 0xd0000000, 0x1000, rec_mmio, &rec, "dev"), 0);
	ring = calloc(1, 4096);
	cr_assert_not_null(ring);
	max = coalesced__ring_max(4096);
}

static void ring_teardown(void)
{
	free(ring);
	bus__destroy(&mmio);
	bus__destroy(&pio);
}

/* KVM's side: one entry at last, then last moves */
static void produce(uint64_t addr, uint8_t byte, uint32_t len, bool is_pio)
{
	struct kvm_coalesced_mmio *e = &ring->coalesced_mmio[ring->last];

	e->phys_addr = addr;
	e->len = len;
	e->pio = is_pio;
	memset(e->data, byte, sizeof(e->data));
	ring->last = (ring->last + 1) % max;
}

Test(coalesced, a_page_holds_what_kvm_says)
{
	/* KVM_COALESCED_MMIO_MAX for 4 KiB pages: (4096 - 8) / 24 */
	cr_assert_eq(coalesced__ring_max(4096), 170);
	cr_assert_eq(coalesced__ring_max(8), 0);
}

Test(coalesced, entries_go_out_in_order_to_their_bus, .init = ring_setup, .fini = ring_teardown)
{
	uint32_t bad = 0;

	produce(0x3f8, 'h', 1, true);
	produce(0xd0000010, 0x55, 4, false);
	produce(0x3f8, 'i', 1, true);
	cr_assert_eq(coalesced__drain(ring, max, &pio, &mmio, &bad), 3);
	cr_assert_str_eq(rec.log, "p3f8=68/1 md0000010=55/4 p3f8=69/1 ");
	cr_assert_eq(ring->first, 3, "the slots are handed back to KVM");
	cr_assert_eq(bad, 0);
	cr_assert_eq(coalesced__drain(ring, max, &pio, &mmio, &bad), 0, "nothing twice");
}

Test(coalesced, the_ring_wraps_around, .init = ring_setup, .fini = ring_teardown)
{
	uint32_t i, bad = 0;
	char want[4096] = "";

	ring->first = ring->last = max - 2;
	for (i = 0; i < 5; i++) {
		produce(0x3f8, (uint8_t)('a' + i), 1, true);
		snprintf(want + strlen(want), sizeof(want) - strlen(want), "p3f8=%x/1 ", 'a' + i);
	}
	cr_assert_eq(ring->last, 3);
	cr_assert_eq(coalesced__drain(ring, max, &pio, &mmio, &bad), 5);
	cr_assert_str_eq(rec.log, want);
	cr_assert_eq(ring->first, 3);
}

Test(coalesced, what_kvm_cannot_have_written_is_skipped, .init = ring_setup, .fini = ring_teardown)
{
	uint32_t bad = 0;

	produce(0x3f8, 'x', 0, true);
	produce(0x3f8, 'y', 9, true);
	produce(0x3f8, 'z', 1, true);
	cr_assert_eq(coalesced__drain(ring, max, &pio, &mmio, &bad), 3);
	cr_assert_str_eq(rec.log, "p3f8=7a/1 ", "only the well-formed entry");
	cr_assert_eq(bad, 2);

	/* indices outside the ring: nothing is read, the drain stops */
	bad = 0;
	ring->last = max + 7;
	cr_assert_eq(coalesced__drain(ring, max, &pio, &mmio, &bad), 0);
	cr_assert_eq(bad, 1);
	cr_assert_eq(coalesced__drain(NULL, max, &pio, &mmio, &bad), 0);
}

/* ---- real KVM: a tiny real-mode guest ---- */

static struct vm vm;
static bool vm_made;

static void vm_fini(void)
{
	if (vm_made) {
		kvm__vcpus_stop(&vm);
		kvm__vm_destroy(&vm);
	}
	vm_made = false;
}

static void rec_mark(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	(void)off;
	if (is_write)
		rec_add(opaque, 'x', 0x1234, data, len);
}

static bool rec_has(const char *want)
{
	bool yes;

	pthread_mutex_lock(&rec.lock);
	yes = strcmp(rec.log, want) == 0;
	pthread_mutex_unlock(&rec.lock);
	return yes;
}

/* runs the event loop (the flush timer's home) until the log reads want or 10 s pass */
static bool wait_for(const char *want)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (rec_has(want))
			return true;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 10)
			return false;
		(void)evloop__run_once(&vm.loop, false);
		usleep(2000);
	}
}

Test(coalesced_kvm, uart_writes_reach_the_device_in_order_without_exits, .fini = vm_fini,
     .timeout = 60)
{
	/*
	 * real mode at 0x1000:
	 *   mov dx, 0x3f8 ; mov al, 'a' ; out dx, al ; 'b' ; 'c'
	 *   mov dx, 0x1234 ; out dx, al          (an exit: a, b, c first)
	 *   mov dx, 0x3f8 ; mov al, 'd' ; out dx, al
	 *   cli ; hlt ; jmp back to the hlt      (never exits again)
	 */
	static const uint8_t code[] = {
		0xba, 0xf8, 0x03, 0xb0, 'a', 0xee, 0xb0, 'b', 0xee, 0xb0, 'c', 0xee,
		0xba, 0x34, 0x12, 0xee,
		0xba, 0xf8, 0x03, 0xb0, 'd', 0xee,
		0xfa, 0xf4, 0xeb, 0xfd,
	};
	struct kvm_sregs sr;
	struct kvm_regs r;
	int fd = kvm_open_or_skip();

	close(fd);
	memset(rec.log, 0, sizeof(rec.log));
	cr_assert_eq(kvm__vm_create(&vm, 16ull << 20, false, 1), 0);
	vm_made = true;
	cr_assert_eq(kvm__vcpus_create(&vm), 0);
	cr_assert_not_null(vm.cring, "KVM offers the coalesced ring (KVM_CAP_COALESCED_MMIO)");
	cr_assert_eq(bus__register(&vm.pio, 0x3f8, 8, rec_pio, &rec, "uart"), 0);
	cr_assert_eq(bus__register(&vm.pio, 0x1234, 1, rec_mark, &rec, "mark"), 0);
	cr_assert_eq(kvm__coalesce_pio(&vm, 0x3f8, 1), 0,
		     "KVM_CAP_COALESCED_PIO (Linux 4.20+) on this host");
	cr_assert_eq(mem__write(&vm.mem, 0x1000, code, sizeof(code)), 0);

	cr_assert_eq(ioctl(vm.vcpus[0].fd, KVM_GET_SREGS, &sr), 0);
	sr.cs.base = 0;
	sr.cs.selector = 0;
	cr_assert_eq(ioctl(vm.vcpus[0].fd, KVM_SET_SREGS, &sr), 0);
	memset(&r, 0, sizeof(r));
	r.rip = 0x1000;
	r.rflags = 2;
	cr_assert_eq(ioctl(vm.vcpus[0].fd, KVM_SET_REGS, &r), 0);

	cr_assert_eq(kvm__vcpus_start(&vm), 0);
	cr_assert(wait_for("p3f8=61/1 p3f8=62/1 p3f8=63/1 x1234=63/1 p3f8=64/1 "),
		  "the bytes before the exit came before it, and the last one (no exit after "
		  "it) came by the flush timer: %s", rec.log);
	cr_assert_eq(atomic_load(&vm.vcpus[0].stats.exits_io), 1,
		     "one port I/O exit (0x1234), none for the four UART writes");
	cr_assert_eq(atomic_load(&vm.coalesced_writes), 4);
	cr_assert_eq(atomic_load(&vm.coalesced_bad), 0);
	kvm__vcpus_stop(&vm);
	kvm__uncoalesce_pio(&vm, 0x3f8, 1);
	cr_assert_eq(vm.nr_czones, 0);
}

Test(coalesced_kvm, the_knob_turns_it_off, .fini = vm_fini)
{
	int fd = kvm_open_or_skip();

	close(fd);
	cr_assert_eq(kvm__vm_create(&vm, 16ull << 20, false, 1), 0);
	vm_made = true;
	setenv("MINIVMM_COALESCED_PIO", "off", 1);
	cr_assert_eq(kvm__coalesce_pio(&vm, 0x3f8, 1), -ENOTSUP);
	unsetenv("MINIVMM_COALESCED_PIO");
	cr_assert_eq(vm.nr_czones, 0);
}

Test(coalesced, a_fake_vm_has_none)
{
	struct vm f;

	cr_assert_eq(kvm__vm_init_fake(&f, 16ull << 20), 0);
	cr_assert_eq(kvm__coalesce_pio(&f, 0x3f8, 1), -ENOTSUP);
	cr_assert_eq(kvm__coalesced_drain(&f), 0);
	kvm__vm_destroy(&f);
}
