// SPDX-License-Identifier: MIT
/*
 * vCPU threads: one per vCPU, each looping on KVM_RUN and dispatching I/O and
 * MMIO exits to the buses. A stop request sets immediate_exit and sends
 * SIGUSR1, so a vCPU inside KVM_RUN returns with -EINTR and one about to enter
 * returns at once.
 *
 * The pause point (kvmtool's kvm__pause is the model): the VMM thread sets
 * pause_requested and kicks every vCPU the same way; each vCPU thread checks
 * it at the top of its loop, outside KVM_RUN, parks on pause_cond and counts
 * itself in nr_parked; the pauser waits until nr_parked == nr_running (the
 * handshake). Resume clears the request and wakes them. A stop wakes parked
 * vCPUs too (kvm__vcpus_stop broadcasts after the exit reason is set).
 *
 * A vCPU parks with its last exit completed: KVM finishes an I/O or MMIO
 * instruction only when KVM_RUN is entered again (an OUT's RIP is advanced,
 * an IN's or a read's data lands in the register), so state read while a
 * vCPU sat right after such an exit would make the destination of a
 * migration, or a restore, run that instruction a second time: a port write
 * twice, a read-to-clear register read twice. Before parking, the vCPU enters
 * KVM_RUN once with immediate_exit set, which completes the instruction and
 * returns -EINTR without running another (Documentation/virt/kvm/api.rst,
 * "kvm_run"; the selftests' vcpu_run_complete_io, QEMU's immediate exit).
 */
#include "vmm/kvm.h"
#include "vmm/coalesced.h"
#include "vmm/log.h"
#include "vmm/sandbox.h"
#include "vmm/sys.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define VCPU_KICK_SIGNAL SIGUSR1

static void vcpu_kick_handler(int sig) { (void)sig; }

int kvm__vcpus_create(struct vm *vm)
{
	struct sigaction sa = { .sa_handler = vcpu_kick_handler };
	unsigned int i;
	int ret;

	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL))
		return -errno;
	vm->vcpus = calloc(vm->nr_vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (i = 0; i < vm->nr_vcpus; i++)
		vm->vcpus[i].fd = -1;
	for (i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		void *run;

		v->vm = vm;
		v->id = i;
		v->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT;
		ret = sys__ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
		if (ret < 0)
			return ret; /* kvm__vm_destroy() releases what was created */
		v->fd = ret;
		run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
		if (run == MAP_FAILED)
			return -errno;
		v->run = run;
	}
	/* the coalesced I/O ring: a page of every vCPU's mapping, the same for all */
	{
		long page = sysconf(_SC_PAGESIZE);
		int off = kvm__check_cap(vm, KVM_CAP_COALESCED_MMIO);

		if (off > 0 && page > 0 && (long)(off + 1) * page <= vm->run_size) {
			vm->cring = (struct kvm_coalesced_mmio_ring *)((uint8_t *)vm->vcpus[0].run +
								       (size_t)off * (size_t)page);
			vm->cring_max = coalesced__ring_max((uint32_t)page);
		}
	}
	return 0;
}

static void vcpu_handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	uint32_t i;

	atomic_fetch_add(&v->stats.exits_io, 1);
	for (i = 0; i < run->io.count; i++, data += run->io.size) {
		if (bus__dispatch(&v->vm->pio, run->io.port, data, run->io.size, is_write)) {
			atomic_fetch_add(&v->stats.exits_unhandled, 1);
			/* guests probe ports freely: only debug level */
			log_debug("vcpu", "%u: unhandled port %s %#x size %u", v->id,
				  is_write ? "write" : "read", run->io.port, run->io.size);
		}
	}
}

static void vcpu_handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t len = run->mmio.len;

	atomic_fetch_add(&v->stats.exits_mmio, 1);
	if (len > sizeof(run->mmio.data))
		len = sizeof(run->mmio.data);
	if (bus__dispatch(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, len,
			  run->mmio.is_write)) {
		atomic_fetch_add(&v->stats.exits_unhandled, 1);
		log_err_rl(&v->rl, "vcpu", "%u: %s of %u bytes at unmapped address %#llx ignored",
			   v->id, run->mmio.is_write ? "write" : "read", len,
			   (unsigned long long)run->mmio.phys_addr);
	}
}

/* the state a triple fault left behind, for the log: where the guest died */
static void vcpu_dump_state(struct vcpu *v)
{
	struct kvm_vcpu_events ev;
	struct kvm_sregs sr;
	struct kvm_regs r;

	if (sys__ioctl_raw(v->fd, KVM_GET_REGS, &r) || sys__ioctl_raw(v->fd, KVM_GET_SREGS, &sr))
		return;
	log_err("vcpu", "%u: rip %#llx rsp %#llx rflags %#llx rax %#llx rbx %#llx rcx %#llx rdx %#llx",
		v->id, (unsigned long long)r.rip, (unsigned long long)r.rsp,
		(unsigned long long)r.rflags, (unsigned long long)r.rax, (unsigned long long)r.rbx,
		(unsigned long long)r.rcx, (unsigned long long)r.rdx);
	log_err("vcpu", "%u: cr0 %#llx cr2 %#llx cr3 %#llx cr4 %#llx efer %#llx cs %#x idt %#llx/%#x",
		v->id, (unsigned long long)sr.cr0, (unsigned long long)sr.cr2,
		(unsigned long long)sr.cr3, (unsigned long long)sr.cr4, (unsigned long long)sr.efer,
		sr.cs.selector, (unsigned long long)sr.idt.base, sr.idt.limit);
	if (!sys__ioctl_raw(v->fd, KVM_GET_VCPU_EVENTS, &ev))
		log_err("vcpu", "%u: exception injected %u nr %u error code %#x; nmi pending %u",
			v->id, ev.exception.injected, ev.exception.nr, ev.exception.error_code,
			ev.nmi.pending);
	/*
	 * On AMD, KVM re-initialises the vCPU (an INIT) before it reports the
	 * shutdown, because the VMCB is undefined after a SHUTDOWN intercept:
	 * what was read above is then the reset state, not the fault's
	 */
	if (r.rip == 0xfff0 && sr.cs.selector == 0xf000 && sr.cs.base == 0xffff0000)
		log_err("vcpu", "%u: these are the reset state's registers: this KVM (AMD SVM) "
			"re-initialises a vCPU before it reports the shutdown, so where the guest "
			"died is lost", v->id);
}

/* returns false when the vCPU must stop */
static bool vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	struct vm *vm = v->vm;

	/* writes KVM queued without exiting came first: apply them before this exit */
	kvm__coalesced_drain(vm);
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(v);
		return true;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(v);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_HLT:
		/* only without an in-kernel LAPIC; treat as an idle guest */
		usleep(1000);
		return true;
	case KVM_EXIT_SHUTDOWN:
		log_info("vcpu", "%u: triple fault: resetting", v->id);
		vcpu_dump_state(v);
		kvm__request_exit(vm, VM_EXIT_TRIPLE_FAULT, 0);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			kvm__request_exit(vm, VM_EXIT_POWEROFF, 0);
			break;
		case KVM_SYSTEM_EVENT_RESET:
			kvm__request_exit(vm, VM_EXIT_RESET, 0);
			break;
		default:
			log_err("vcpu", "%u: system event %u: stopping", v->id,
				run->system_event.type);
			kvm__request_exit(vm, VM_EXIT_ERROR, 1);
		}
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		log_err("vcpu", "%u: KVM_RUN failed entry, hardware reason %#llx", v->id,
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vcpu_dump_state(v);
		kvm__request_exit(vm, VM_EXIT_ERROR, 1);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		log_err("vcpu", "%u: KVM internal error, suberror %u", v->id,
			run->internal.suberror);
		vcpu_dump_state(v);
		kvm__request_exit(vm, VM_EXIT_ERROR, 1);
		return false;
	default:
		atomic_fetch_add(&v->stats.exits_other, 1);
		log_err_rl(&v->rl, "vcpu", "%u: unexpected exit reason %u", v->id, run->exit_reason);
		return true;
	}
}

void kvm__vcpus_kick(struct vm *vm)
{
	unsigned int i;

	for (i = 0; vm->vcpus && i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->run)
			__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELAXED);
		if (__atomic_load_n(&v->started, __ATOMIC_ACQUIRE) &&
		    !pthread_equal(v->thread, pthread_self()))
			pthread_kill(v->thread, VCPU_KICK_SIGNAL);
	}
}

/*
 * enter KVM_RUN without running the guest until the last exit's instruction
 * is complete; a string I/O instruction's completion can need userspace again
 * (its next chunk), which is served here like any exit
 */
static void vcpu_complete_exit(struct vcpu *v)
{
	unsigned int rounds;
	int ret;

	for (rounds = 0; v->exit_open && rounds < 4096; rounds++) {
		v->exit_open = false;
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELAXED);
		ret = sys__ioctl_raw(v->fd, KVM_RUN, NULL);
		if (ret == -EINTR || ret == -EAGAIN)
			return;
		if (ret < 0) {
			log_err_rl(&v->rl, "vcpu", "%u: KVM_RUN to complete an exit before a pause: %s",
				   v->id, strerror(-ret));
			return;
		}
		v->exit_open = true;
		if (!vcpu_handle_exit(v))
			return;
	}
	if (v->exit_open)
		log_err_rl(&v->rl, "vcpu", "%u: exit %u still not complete after %u re-entries before a pause",
			   v->id, v->run->exit_reason, rounds);
}

/* the top of a vCPU's loop: park while a pause is requested */
static void vcpu_pause_point(struct vcpu *v)
{
	struct vm *vm = v->vm;

	if (!__atomic_load_n(&vm->pause_requested, __ATOMIC_ACQUIRE))
		return;
	vcpu_complete_exit(v);
	pthread_mutex_lock(&vm->pause_lock);
	if (vm->pause_requested && !kvm__exiting(vm)) {
		vm->nr_parked++;
		pthread_cond_broadcast(&vm->pause_cond);
		while (vm->pause_requested && !kvm__exiting(vm))
			pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
		vm->nr_parked--;
	}
	pthread_mutex_unlock(&vm->pause_lock);
	/* the kick that parked it may still be pending */
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_RELAXED);
}

int kvm__vcpus_pause(struct vm *vm, unsigned int timeout_ms)
{
	struct timespec deadline;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&vm->pause_lock);
	if (vm->pause_requested) {
		pthread_mutex_unlock(&vm->pause_lock);
		return -EALREADY;
	}
	__atomic_store_n(&vm->pause_requested, true, __ATOMIC_RELEASE);
	kvm__vcpus_kick(vm);
	while (vm->nr_parked < vm->nr_running && !kvm__exiting(vm) && !ret)
		ret = -pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &deadline);
	if (kvm__exiting(vm))
		ret = -ESHUTDOWN;
	else if (vm->nr_parked == vm->nr_running)
		ret = 0;
	if (ret) {
		/* undo: a vCPU may be waiting for this (the VMM) thread */
		__atomic_store_n(&vm->pause_requested, false, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&vm->pause_cond);
	}
	pthread_mutex_unlock(&vm->pause_lock);
	/* every write the guest made is in its device before the state is read */
	if (!ret)
		kvm__coalesced_drain(vm);
	return ret;
}

void kvm__vcpus_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	__atomic_store_n(&vm->pause_requested, false, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

bool kvm__vcpus_paused(struct vm *vm)
{
	bool paused;

	pthread_mutex_lock(&vm->pause_lock);
	paused = vm->pause_requested && vm->nr_parked == vm->nr_running;
	pthread_mutex_unlock(&vm->pause_lock);
	return paused;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	char name[16];
	sigset_t set;
	int ret;

	snprintf(name, sizeof(name), "vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);
	/* only the kick signal reaches vCPU threads (and seccomp's SIGSYS reporter) */
	sigfillset(&set);
	sigdelset(&set, VCPU_KICK_SIGNAL);
	sigdelset(&set, SIGSYS);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	if (sandbox__enter(SANDBOX_VCPU))
		kvm__request_exit(v->vm, VM_EXIT_ERROR, 1);

	while (!kvm__exiting(v->vm)) {
		vcpu_pause_point(v);
		if (kvm__exiting(v->vm))
			break;
		/* this entry completes the last exit's instruction, whatever it returns */
		v->exit_open = false;
		ret = sys__ioctl_raw(v->fd, KVM_RUN, NULL);
		if (ret == -EINTR || ret == -EAGAIN) {
			__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_RELAXED);
			continue;
		}
		if (ret < 0) {
			log_err("vcpu", "%u: KVM_RUN: %s", v->id, strerror(-ret));
			kvm__request_exit(v->vm, VM_EXIT_ERROR, 1);
			break;
		}
		v->exit_open = true;
		if (!vcpu_handle_exit(v))
			break;
	}
	/* out of the loop: a pauser no longer waits for this vCPU */
	pthread_mutex_lock(&v->vm->pause_lock);
	v->vm->nr_running--;
	pthread_cond_broadcast(&v->vm->pause_cond);
	pthread_mutex_unlock(&v->vm->pause_lock);
	return NULL;
}

int kvm__vcpus_start(struct vm *vm)
{
	unsigned int i;
	sigset_t set, old;
	int ret;

	/* threads inherit a mask blocking SIGINT/SIGTERM: the main thread takes those */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	for (i = 0; i < vm->nr_vcpus; i++) {
		pthread_mutex_lock(&vm->pause_lock);
		vm->nr_running++;
		pthread_mutex_unlock(&vm->pause_lock);
		ret = -pthread_create(&vm->vcpus[i].thread, NULL, vcpu_thread, &vm->vcpus[i]);
		if (ret) {
			pthread_mutex_lock(&vm->pause_lock);
			vm->nr_running--;
			pthread_mutex_unlock(&vm->pause_lock);
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			kvm__vcpus_stop(vm);
			return ret;
		}
		/* release: a vCPU that asks to stop the VM reads .thread after this */
		__atomic_store_n(&vm->vcpus[i].started, true, __ATOMIC_RELEASE);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}

void kvm__vcpus_stop(struct vm *vm)
{
	unsigned int i;

	if (!kvm__exiting(vm))
		kvm__request_exit(vm, VM_EXIT_SIGNAL, 0);
	/* parked vCPUs: the exit reason is set, wake them to see it */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	for (i = 0; vm->vcpus && i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (!__atomic_load_n(&v->started, __ATOMIC_ACQUIRE))
			continue;
		/* kick until it is out: a kick can land just before KVM_RUN */
		while (pthread_tryjoin_np(v->thread, NULL) == EBUSY) {
			if (v->run)
				__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELAXED);
			pthread_kill(v->thread, VCPU_KICK_SIGNAL);
			usleep(1000);
		}
		__atomic_store_n(&v->started, false, __ATOMIC_RELAXED);
	}
	/* the guest's last writes (its last console bytes) are not lost at exit */
	kvm__coalesced_drain(vm);
}
