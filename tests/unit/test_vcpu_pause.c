// SPDX-License-Identifier: MIT
/*
 * The vCPU pause point (vmm/vcpu.c) on real KVM: a vCPU parks with its last
 * exit's instruction completed. KVM finishes an OUT (advances RIP) or an IN
 * (fills the register) only when KVM_RUN is entered again; a vCPU parked
 * right after serving such an exit, and saved then (a migration, a
 * snapshot), would run the instruction a second time wherever it is
 * restored: a port write twice. Found by kvm_migrate under TSan in the lab's
 * L1 (2026-12-03): a test-device report line was written with one character
 * twice on the destination.
 *
 * A tiny real-mode guest writes a counter to a port in a loop
 * (mov eax, ebx; out dx, eax; inc ebx); the test pauses and resumes it many
 * times and reads its registers while it is parked: RIP may stand on the OUT
 * only while EBX holds a value the port has not been given yet.
 */
#include <criterion/criterion.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm_skip.h"
#include "vmm/bus.h"
#include "vmm/kvm.h"

#define PORT 0x1234
#define CODE 0x1000
#define OUT_AT (CODE + 9)    /* out dx, eax */
#define AFTER_OUT (CODE + 11) /* inc ebx */

static struct vm vm;
static bool vm_made;
static atomic_uint served;  /* port writes seen */
static atomic_uint last;    /* the last value written */
static atomic_uint repeats; /* a value written twice in a row */

static void port_write(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	uint32_t v;

	(void)opaque;
	(void)off;
	if (!is_write || len != 4)
		return;
	memcpy(&v, data, 4);
	if (atomic_load(&served) && v == atomic_load(&last))
		atomic_fetch_add(&repeats, 1);
	atomic_store(&last, v);
	atomic_fetch_add(&served, 1);
}

static void vm_fini(void)
{
	if (vm_made) {
		kvm__vcpus_stop(&vm);
		kvm__vm_destroy(&vm);
	}
	vm_made = false;
}

Test(vcpu_pause, a_parked_vcpu_has_completed_its_last_port_write, .fini = vm_fini, .timeout = 120)
{
	/*
	 * real mode at 0x1000:
	 *   xor ebx, ebx
	 * L: mov eax, ebx ; mov dx, 0x1234 ; out dx, eax ; inc ebx ; jmp L
	 */
	static const uint8_t code[] = {
		0x66, 0x31, 0xdb,
		0x66, 0x89, 0xd8, 0xba, 0x34, 0x12, 0x66, 0xef, 0x66, 0x43, 0xeb, 0xf4,
	};
	unsigned int i, parked_on_out = 0, after_served = 0, cycles = 200;
	struct kvm_sregs sr;
	struct kvm_regs r;
	int fd = kvm_open_or_skip();

	close(fd);
	cr_assert_eq(kvm__vm_create(&vm, 16ull << 20, false, 1), 0);
	vm_made = true;
	cr_assert_eq(kvm__vcpus_create(&vm), 0);
	cr_assert_eq(bus__register(&vm.pio, PORT, 4, port_write, NULL, "counter"), 0);
	cr_assert_eq(mem__write(&vm.mem, CODE, code, sizeof(code)), 0);
	cr_assert_eq(ioctl(vm.vcpus[0].fd, KVM_GET_SREGS, &sr), 0);
	sr.cs.base = 0;
	sr.cs.selector = 0;
	cr_assert_eq(ioctl(vm.vcpus[0].fd, KVM_SET_SREGS, &sr), 0);
	memset(&r, 0, sizeof(r));
	r.rip = CODE;
	r.rflags = 2;
	cr_assert_eq(ioctl(vm.vcpus[0].fd, KVM_SET_REGS, &r), 0);
	cr_assert_eq(kvm__vcpus_start(&vm), 0);
	while (atomic_load(&served) < 10)
		usleep(1000);

	for (i = 0; i < cycles; i++) {
		uint32_t v;

		cr_assert_eq(kvm__vcpus_pause(&vm, 10000), 0, "cycle %u: the vCPU parks", i);
		v = atomic_load(&last);
		cr_assert_eq(ioctl(vm.vcpus[0].fd, KVM_GET_REGS, &r), 0);
		cr_assert(r.rip >= CODE + 3 && r.rip < CODE + sizeof(code), "cycle %u: RIP %#llx is in the loop",
			  i, (unsigned long long)r.rip);
		if ((uint32_t)r.rbx == v && (r.rip == OUT_AT || r.rip == AFTER_OUT))
			after_served++; /* parked right after the port was given EBX */
		if (r.rip == OUT_AT) {
			parked_on_out++;
			cr_assert_neq((uint32_t)r.rbx, v,
				      "cycle %u: parked on the OUT with EBX %u already written: the exit's "
				      "instruction was not completed, and a restore would write %u again",
				      i, (uint32_t)r.rbx, v);
		}
		kvm__vcpus_resume(&vm);
		usleep(200 + (i % 7) * 100);
	}
	kvm__vcpus_stop(&vm);
	cr_log_info("%u pauses: %u right after a served write, %u on the OUT; %u writes", cycles,
		    after_served, parked_on_out, atomic_load(&served));
	cr_assert_gt(after_served, 0, "at least one pause came right after a served port write "
				      "(the case under test)");
	cr_assert_eq(atomic_load(&repeats), 0, "no value was written twice");
}
