/* SPDX-License-Identifier: MIT */
/*
 * The virtual machine: the KVM VM fd, guest memory, the I/O and MMIO buses,
 * interrupt routing, PCI bus 0, the event loop and the vCPUs. Devices get a
 * `struct vm *` and use its members; they never touch KVM fds directly.
 * Unit tests build a `struct vm` with vm_fd = -1 (kvm__vm_init_fake()).
 */
#ifndef MINIVMM_VMM_KVM_H
#define MINIVMM_VMM_KVM_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "migration/section.h"
#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/evloop.h"
#include "vmm/irq.h"
#include "vmm/mem.h"
#include "vmm/pci.h"
#include "vmm/util.h"

struct kvm_run;
struct kvm_coalesced_mmio_ring;

/* memory slots kvm__alloc_memslot hands out beyond the RAM regions' */
#define KVM_MEMSLOT_EXTRA 256

enum vm_exit_reason {
	VM_RUNNING = 0,
	VM_EXIT_POWEROFF,   /* guest powered off (ACPI S5) */
	VM_EXIT_RESET,      /* guest asked for a reset (i8042, CF9, ACPI reset register) */
	VM_EXIT_SIGNAL,     /* SIGINT/SIGTERM */
	VM_EXIT_TEST,       /* test device: the guest reported its exit code */
	VM_EXIT_ERROR,      /* a vCPU could not go on (KVM internal error, failed entry) */
	VM_EXIT_QUIT,       /* the control socket's quit */
	VM_EXIT_MIGRATED,   /* the guest runs on the migration's destination now */
	VM_EXIT_TRIPLE_FAULT, /* a vCPU triple-faulted (KVM_EXIT_SHUTDOWN): the guest crashed */
};

struct vcpu_stats {
	atomic_ulong exits_io, exits_mmio, exits_unhandled, exits_other;
};

struct vcpu {
	struct vm *vm;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;          /* __atomic: set (release) once thread is valid */
	bool exit_open;        /* vCPU thread only: KVM_RUN returned an exit not yet completed by a re-entry */
	struct vcpu_stats stats;
	struct log_ratelimit rl;
};

struct vm {
	int kvm_fd;
	int vm_fd;
	int run_size;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct irq irq;
	struct pci_bus pci;
	struct evloop loop;
	struct device_list devices; /* every device, in creation order (vmm/device.h) */
	struct mig_registry mig;    /* the state sections of the VM and its devices */
	unsigned int nr_vcpus;
	struct vcpu *vcpus;
	atomic_int exit_reason; /* enum vm_exit_reason, first one wins */
	atomic_int exit_code;
	int stop_efd;           /* signalled on exit requests; watched by the event loop */
	struct evloop_watch stop_watch;
	/* memory slots above RAM's (BAR passthrough): bit n = slot nr_regions + n in use */
	_Atomic uint64_t memslot_used[KVM_MEMSLOT_EXTRA / 64];
	int vfio_dev_fd;        /* KVM VFIO pseudo device, -1 until the first kvm__vfio_group_add() */
	pthread_mutex_t vfio_dev_lock;
	/*
	 * The vCPU pause point (kvm__vcpus_pause): a vCPU thread that sees
	 * pause_requested at the top of its loop parks on pause_cond, counted
	 * in nr_parked; nr_running counts the vCPU threads still in their loop.
	 */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	bool pause_requested;   /* written under pause_lock; read unlocked as a hint */
	unsigned int nr_parked, nr_running;
	/*
	 * KVM's coalesced I/O ring (vmm/coalesced.h): NULL without the
	 * capability or before the vCPUs are mapped. cring_lock serialises its
	 * consumers (the vCPU threads at each exit, the pauser, the event
	 * loop's timer); cring_tfd is a one-shot timer a drain that found
	 * writes arms, so that the last writes of a burst a guest never follows
	 * with an exit reach their device within COALESCED_FLUSH_MS.
	 */
	struct kvm_coalesced_mmio_ring *cring;
	uint32_t cring_max;
	unsigned int nr_czones;
	pthread_mutex_t cring_lock;
	int cring_tfd;
	struct evloop_watch cring_watch;
	atomic_bool cring_armed;
	atomic_ulong coalesced_writes, coalesced_bad;
	struct log_ratelimit cring_rl;
};

/* how long a coalesced write waits at most for a drain when no exit comes */
#define COALESCED_FLUSH_MS 10

/* opens /dev/kvm, creates the VM, in-kernel irqchip and PIT, guest RAM, buses, PCI, event loop */
int kvm__vm_create(struct vm *vm, uint64_t ram_size, bool hugepages, unsigned int nr_vcpus) __must_check;
/* no KVM: memory, buses, irq bookkeeping and the event loop only (unit tests) */
int kvm__vm_init_fake(struct vm *vm, uint64_t ram_size) __must_check;
void kvm__vm_destroy(struct vm *vm);

/* creates the vCPU fds and kvm_run mappings (not started) */
int kvm__vcpus_create(struct vm *vm) __must_check;
/* starts one thread per vCPU running KVM_RUN */
int kvm__vcpus_start(struct vm *vm) __must_check;
/* kicks every vCPU out of KVM_RUN and joins the threads */
void kvm__vcpus_stop(struct vm *vm);
/* kicks every started vCPU out of KVM_RUN once (async-signal-safe) */
void kvm__vcpus_kick(struct vm *vm);
/*
 * The pause point, for a thread that is not a vCPU (the VMM thread): every
 * running vCPU leaves KVM_RUN and parks; returns once all are parked (0),
 * -ETIMEDOUT when they have not within timeout_ms (the pause is undone: a
 * vCPU can be waiting for the VMM thread, which is the caller), -ESHUTDOWN
 * when the VM is stopping, -EALREADY when already paused. vCPU state may be
 * read and written while paused. kvm__vcpus_resume lets them run again.
 */
int kvm__vcpus_pause(struct vm *vm, unsigned int timeout_ms) __must_check;
void kvm__vcpus_resume(struct vm *vm);
bool kvm__vcpus_paused(struct vm *vm);

/*
 * Asks the VM to stop (any thread, async-signal-safe): the first reason wins,
 * vCPUs are kicked and the event loop returns.
 */
void kvm__request_exit(struct vm *vm, enum vm_exit_reason reason, int code);
static inline bool kvm__exiting(struct vm *vm)
{
	return atomic_load(&vm->exit_reason) != VM_RUNNING;
}
const char *kvm__exit_reason_name(enum vm_exit_reason r);

/*
 * Guest writes to ports [port, port + len) no longer exit: KVM queues them
 * (KVM_CAP_COALESCED_PIO) and minivmm applies them in order before the next
 * exit's handling, at the pause point and at stop, or within
 * COALESCED_FLUSH_MS. Reads of those ports exit as before. For registers
 * whose writes have no effect the guest could observe without a later
 * access (a UART's transmit holding register). -ENOTSUP without the
 * capability (or on a fake VM): the writes then exit as any other.
 */
int kvm__coalesce_pio(struct vm *vm, uint16_t port, uint32_t len) __must_check;
void kvm__uncoalesce_pio(struct vm *vm, uint16_t port, uint32_t len);
/* applies the queued writes now (any thread); the count applied */
unsigned int kvm__coalesced_drain(struct vm *vm);

/* KVM_CHECK_EXTENSION on the VM (or /dev/kvm); returns the value or 0 */
int kvm__check_cap(struct vm *vm, long cap);

/*
 * A free memory slot number for a device mapping (RAM owns slots
 * 0..nr_regions-1), or -ENOSPC. Thread-safe; free it with kvm__free_memslot.
 */
int kvm__alloc_memslot(struct vm *vm) __must_check;
void kvm__free_memslot(struct vm *vm, uint32_t slot);

/*
 * Adds a VFIO group (its fd) to, or deletes it from, the VM's KVM VFIO pseudo
 * device (KVM_CREATE_DEVICE, KVM_DEV_TYPE_VFIO; created on first use and
 * owned by the vm): KVM then knows about non-coherent DMA and the irq bypass
 * can post interrupts. 0 or -errno (-ENODEV without KVM).
 */
int kvm__vfio_group_add(struct vm *vm, int group_fd) __must_check;
int kvm__vfio_group_del(struct vm *vm, int group_fd);

/* adds a memory slot mapping hva at gpa (BAR passthrough, RAM); size 0 deletes */
int kvm__set_memslot(struct vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva,
		     bool readonly) __must_check;
/*
 * KVM's dirty log on the guest RAM slots (pre-copy migration): start sets
 * KVM_MEM_LOG_DIRTY_PAGES and starts mem__mark_dirty's own tracking; get
 * ORs region i's pages written since the last get into out (one bit per
 * 4 KiB page, MEM_DIRTY_WORDS words) and clears them in KVM; stop ends both.
 */
int kvm__dirty_log_start(struct vm *vm) __must_check;
int kvm__dirty_log_get(struct vm *vm, unsigned int i, uint64_t *out) __must_check;
void kvm__dirty_log_stop(struct vm *vm);

#endif
