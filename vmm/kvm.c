// SPDX-License-Identifier: MIT
#include "vmm/kvm.h"
#include "vmm/coalesced.h"
#include "vmm/log.h"
#include "vmm/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define KVM_LOG "kvm"
#define KVM_TSS_ADDR 0xfffbd000ULL
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL

static const struct {
	long cap;
	const char *name;
} kvm_required_caps[] = {
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
	{ KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
};

const char *kvm__exit_reason_name(enum vm_exit_reason r)
{
	switch (r) {
	case VM_RUNNING: return "running";
	case VM_EXIT_POWEROFF: return "guest powered off";
	case VM_EXIT_RESET: return "guest reset";
	case VM_EXIT_SIGNAL: return "stopped by signal";
	case VM_EXIT_TEST: return "test device exit";
	case VM_EXIT_ERROR: return "vCPU error";
	case VM_EXIT_QUIT: return "quit (control socket)";
	case VM_EXIT_MIGRATED: return "migrated (the guest runs on the destination)";
	case VM_EXIT_TRIPLE_FAULT: return "guest reset by a triple fault";
	}
	return "?";
}

int kvm__check_cap(struct vm *vm, long cap)
{
	int fd = vm->vm_fd >= 0 ? vm->vm_fd : vm->kvm_fd;
	int ret;

	if (fd < 0)
		return 0;
	ret = sys__ioctl_raw(fd, KVM_CHECK_EXTENSION, (void *)cap);
	return ret < 0 ? 0 : ret;
}

int kvm__set_memslot(struct vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva,
		     bool readonly)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = readonly ? KVM_MEM_READONLY : 0,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};

	if (vm->vm_fd < 0)
		return 0;
	return sys__ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

static int kvm_ram_slots_flags(struct vm *vm, uint32_t flags)
{
	unsigned int i;
	int ret;

	for (i = 0; i < vm->mem.nr_regions; i++) {
		const struct mem_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region k = {
			.slot = r->slot,
			.flags = flags,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)r->hva,
		};

		if (vm->vm_fd < 0)
			continue;
		ret = sys__ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &k);
		if (ret)
			return ret;
	}
	return 0;
}

int kvm__dirty_log_start(struct vm *vm)
{
	int ret = mem__dirty_start(&vm->mem);

	if (ret)
		return ret;
	ret = kvm_ram_slots_flags(vm, KVM_MEM_LOG_DIRTY_PAGES);
	if (ret) {
		log_err(KVM_LOG, "cannot turn KVM's dirty log on: %s", strerror(-ret));
		kvm__dirty_log_stop(vm);
	}
	return ret;
}

int kvm__dirty_log_get(struct vm *vm, unsigned int i, uint64_t *out)
{
	const struct mem_region *r = &vm->mem.regions[i];
	size_t w, words = MEM_DIRTY_WORDS(r->size);
	struct kvm_dirty_log d = { .slot = r->slot };
	uint64_t *bits;
	int ret = 0;

	if (vm->vm_fd >= 0) {
		bits = calloc(words, sizeof(*bits));
		if (!bits)
			return -ENOMEM;
		d.dirty_bitmap = bits;
		ret = sys__ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &d);
		if (!ret)
			for (w = 0; w < words; w++)
				out[w] |= bits[w];
		free(bits);
	}
	mem__dirty_take(&vm->mem, i, out);
	return ret;
}

void kvm__dirty_log_stop(struct vm *vm)
{
	mem__dirty_stop(&vm->mem);
	if (kvm_ram_slots_flags(vm, 0))
		log_err(KVM_LOG, "cannot turn KVM's dirty log off");
}

int kvm__alloc_memslot(struct vm *vm)
{
	unsigned int w, b;
	uint64_t cur;

	for (w = 0; w < ARRAY_SIZE(vm->memslot_used); w++) {
		cur = atomic_load(&vm->memslot_used[w]);
		while (cur != ~0ULL) {
			b = (unsigned int)__builtin_ctzll(~cur);
			if (atomic_compare_exchange_weak(&vm->memslot_used[w], &cur, cur | 1ULL << b))
				return (int)(vm->mem.nr_regions + w * 64 + b);
		}
	}
	return -ENOSPC;
}

void kvm__free_memslot(struct vm *vm, uint32_t slot)
{
	uint32_t n;

	if (slot < vm->mem.nr_regions)
		return;
	n = slot - vm->mem.nr_regions;
	if (n >= KVM_MEMSLOT_EXTRA)
		return;
	atomic_fetch_and(&vm->memslot_used[n / 64], ~(1ULL << (n % 64)));
}

/*
 * Linux 6.6 renamed the KVM VFIO device's group attributes to "file"
 * attributes (KVM_DEV_VFIO_FILE/FILE_ADD) with the same values, accepting
 * group fds and, later, cdev device fds. Older headers only have the group
 * names; a group fd works with either.
 */
#ifdef KVM_DEV_VFIO_FILE
#define KVM_VFIO_ATTR_GROUP KVM_DEV_VFIO_FILE
#define KVM_VFIO_ATTR_ADD KVM_DEV_VFIO_FILE_ADD
#define KVM_VFIO_ATTR_DEL KVM_DEV_VFIO_FILE_DEL
#else
#define KVM_VFIO_ATTR_GROUP KVM_DEV_VFIO_GROUP
#define KVM_VFIO_ATTR_ADD KVM_DEV_VFIO_GROUP_ADD
#define KVM_VFIO_ATTR_DEL KVM_DEV_VFIO_GROUP_DEL
#endif

/* the KVM VFIO pseudo device, created on first use; fd or -errno (-ENODEV without KVM) */
static int kvm_vfio_device_fd(struct vm *vm)
{
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };
	int ret;

	if (vm->vm_fd < 0)
		return -ENODEV;
	pthread_mutex_lock(&vm->vfio_dev_lock);
	ret = 0;
	if (vm->vfio_dev_fd < 0) {
		ret = sys__ioctl(vm->vm_fd, KVM_CREATE_DEVICE, &cd);
		if (!ret)
			vm->vfio_dev_fd = (int)cd.fd;
	}
	if (!ret)
		ret = vm->vfio_dev_fd;
	pthread_mutex_unlock(&vm->vfio_dev_lock);
	return ret;
}

static int kvm_vfio_group_attr(struct vm *vm, int group_fd, uint64_t which)
{
	int32_t gfd = group_fd;
	struct kvm_device_attr attr = {
		.group = KVM_VFIO_ATTR_GROUP,
		.attr = which,
		.addr = (uint64_t)(uintptr_t)&gfd,
	};
	int fd = kvm_vfio_device_fd(vm);

	if (fd < 0)
		return fd;
	/* unchecked: the caller decides how loud a failure is */
	return sys__ioctl_raw(fd, KVM_SET_DEVICE_ATTR, &attr);
}

int kvm__vfio_group_add(struct vm *vm, int group_fd)
{
	return kvm_vfio_group_attr(vm, group_fd, KVM_VFIO_ATTR_ADD);
}

int kvm__vfio_group_del(struct vm *vm, int group_fd)
{
	return kvm_vfio_group_attr(vm, group_fd, KVM_VFIO_ATTR_DEL);
}

static void kvm_stop_fn(void *opaque, int res)
{
	struct vm *vm = opaque;

	sys__eventfd_drain(vm->stop_efd);
	if (kvm__exiting(vm))
		evloop__stop(&vm->loop, atomic_load(&vm->exit_reason));
}

/* ---- coalesced port writes (vmm/coalesced.h) ---- */

static void kvm_coalesced_arm(struct vm *vm)
{
	struct itimerspec its = { .it_value.tv_nsec = COALESCED_FLUSH_MS * 1000000L };

	if (vm->cring_tfd < 0 || atomic_exchange(&vm->cring_armed, true))
		return;
	if (timerfd_settime(vm->cring_tfd, 0, &its, NULL))
		atomic_store(&vm->cring_armed, false);
}

unsigned int kvm__coalesced_drain(struct vm *vm)
{
	struct kvm_coalesced_mmio_ring *ring = vm->cring;
	uint32_t bad = 0, n;

	/* the fast path of every exit: nothing queued */
	if (!ring || __atomic_load_n(&ring->first, __ATOMIC_RELAXED) ==
			     __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&vm->cring_lock);
	n = coalesced__drain(ring, vm->cring_max, &vm->pio, &vm->mmio, &bad);
	pthread_mutex_unlock(&vm->cring_lock);
	if (n)
		atomic_fetch_add(&vm->coalesced_writes, n);
	if (bad)
		atomic_fetch_add(&vm->coalesced_bad, bad);
	/* the guest may write again without exiting: look once more soon */
	if (n)
		kvm_coalesced_arm(vm);
	return n;
}

static void kvm_coalesced_timer_fn(void *opaque, int res)
{
	struct vm *vm = opaque;
	uint64_t ticks;

	(void)res;
	if (read(vm->cring_tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		log_err_rl(&vm->cring_rl, KVM_LOG, "coalesced writes' timer: %s", strerror(errno));
	atomic_store(&vm->cring_armed, false);
	kvm__coalesced_drain(vm);
}

static int kvm_coalesced_zone(struct vm *vm, uint16_t port, uint32_t len, unsigned long req)
{
	struct kvm_coalesced_mmio_zone z = { .addr = port, .size = len, .pio = 1 };

	return sys__ioctl(vm->vm_fd, req, &z);
}

int kvm__coalesce_pio(struct vm *vm, uint16_t port, uint32_t len)
{
	const char *knob = getenv("MINIVMM_COALESCED_PIO");
	int ret;

	/* MINIVMM_COALESCED_PIO=off: every write exits (an A/B of the cost, debugging) */
	if (knob && !strcmp(knob, "off"))
		return -ENOTSUP;
	if (vm->vm_fd < 0 || !len || !kvm__check_cap(vm, KVM_CAP_COALESCED_PIO) ||
	    kvm__check_cap(vm, KVM_CAP_COALESCED_MMIO) <= 0)
		return -ENOTSUP;
	if (vm->cring_tfd < 0) {
		ret = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (ret < 0)
			return -errno;
		vm->cring_tfd = ret;
		ret = evloop__add_fd(&vm->loop, &vm->cring_watch, vm->cring_tfd, POLLIN,
				     kvm_coalesced_timer_fn, vm);
		if (ret)
			goto err_tfd;
	}
	ret = kvm_coalesced_zone(vm, port, len, KVM_REGISTER_COALESCED_MMIO);
	if (ret)
		goto err_watch;
	vm->nr_czones++;
	return 0;

err_watch:
	if (!vm->nr_czones)
		evloop__del_fd(&vm->loop, &vm->cring_watch);
err_tfd:
	if (!vm->nr_czones) {
		close(vm->cring_tfd);
		vm->cring_tfd = -1;
	}
	return ret;
}

void kvm__uncoalesce_pio(struct vm *vm, uint16_t port, uint32_t len)
{
	if (vm->vm_fd < 0 || !vm->nr_czones)
		return;
	/* what the guest wrote there before goes first */
	kvm__coalesced_drain(vm);
	if (kvm_coalesced_zone(vm, port, len, KVM_UNREGISTER_COALESCED_MMIO) == 0)
		vm->nr_czones--;
	kvm__coalesced_drain(vm);
}

/* buses, irq bookkeeping, PCI and the event loop: common to real and fake VMs */
static int kvm_vm_init_common(struct vm *vm)
{
	int ret;

	ret = bus__init(&vm->pio, "pio");
	if (ret)
		return ret;
	ret = bus__init(&vm->mmio, "mmio");
	if (ret)
		goto err_pio;
	ret = irq__init(&vm->irq, vm->vm_fd);
	if (ret)
		goto err_mmio;
	ret = pci__bus_init(&vm->pci, &vm->pio, &vm->mmio);
	if (ret)
		goto err_irq;
	ret = evloop__init(&vm->loop, 256);
	if (ret)
		goto err_pci;
	vm->vfio_dev_fd = -1;
	pthread_mutex_init(&vm->vfio_dev_lock, NULL);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	pthread_mutex_init(&vm->cring_lock, NULL);
	vm->cring_tfd = -1;
	vm->cring_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT;
	vm->stop_efd = sys__eventfd(0);
	if (vm->stop_efd < 0) {
		ret = vm->stop_efd;
		goto err_loop;
	}
	ret = evloop__add_fd(&vm->loop, &vm->stop_watch, vm->stop_efd, POLLIN, kvm_stop_fn, vm);
	if (ret)
		goto err_efd;
	return 0;

err_efd:
	close(vm->stop_efd);
err_loop:
	evloop__destroy(&vm->loop);
err_pci:
	pci__bus_destroy(&vm->pci);
err_irq:
	irq__destroy(&vm->irq);
err_mmio:
	bus__destroy(&vm->mmio);
err_pio:
	bus__destroy(&vm->pio);
	return ret;
}

int kvm__vm_init_fake(struct vm *vm, uint64_t ram_size)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	device__list_init(&vm->devices);
	mig__registry_init(&vm->mig);
	vm->kvm_fd = -1;
	vm->vm_fd = -1;
	vm->stop_efd = -1;
	vm->cring_tfd = -1;
	ret = mem__init(&vm->mem, ram_size, false);
	if (ret)
		return ret;
	ret = kvm_vm_init_common(vm);
	if (ret)
		mem__free(&vm->mem);
	return ret;
}

int kvm__vm_create(struct vm *vm, uint64_t ram_size, bool hugepages, unsigned int nr_vcpus)
{
	unsigned int i;
	int ret;

	memset(vm, 0, sizeof(*vm));
	device__list_init(&vm->devices);
	mig__registry_init(&vm->mig);
	vm->vm_fd = -1;
	vm->stop_efd = -1;
	vm->cring_tfd = -1;
	vm->nr_vcpus = nr_vcpus;
	vm->kvm_fd = sys__open_raw("/dev/kvm", O_RDWR);
	if (vm->kvm_fd < 0) {
		ret = vm->kvm_fd;
		log_err(KVM_LOG, "cannot open /dev/kvm: %s%s", strerror(-ret),
			ret == -ENOENT ? " (is the kvm module loaded?)" :
			ret == -EACCES ? " (add yourself to the kvm group)" : "");
		return ret;
	}
	ret = sys__ioctl(vm->kvm_fd, KVM_GET_API_VERSION, NULL);
	if (ret != KVM_API_VERSION) {
		log_err(KVM_LOG, "KVM API version %d, expected %d", ret, KVM_API_VERSION);
		ret = -ENOTSUP;
		goto err_kvm;
	}
	for (i = 0; i < ARRAY_SIZE(kvm_required_caps); i++) {
		if (!kvm__check_cap(vm, kvm_required_caps[i].cap)) {
			log_err(KVM_LOG, "this host's KVM lacks %s", kvm_required_caps[i].name);
			ret = -ENOTSUP;
			goto err_kvm;
		}
	}
	if (nr_vcpus < 1 || (int)nr_vcpus > MAX(kvm__check_cap(vm, KVM_CAP_MAX_VCPUS), 1)) {
		log_err(KVM_LOG, "%u vCPUs requested, KVM supports 1..%d", nr_vcpus,
			kvm__check_cap(vm, KVM_CAP_MAX_VCPUS));
		ret = -EINVAL;
		goto err_kvm;
	}
	vm->run_size = sys__ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
	if (vm->run_size < 0) {
		ret = vm->run_size;
		goto err_kvm;
	}
	ret = sys__ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (ret < 0)
		goto err_kvm;
	vm->vm_fd = ret;
	ret = sys__ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR);
	if (ret < 0)
		goto err_vm;
	{
		uint64_t idmap = KVM_IDENTITY_MAP_ADDR;

		ret = sys__ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap);
		if (ret < 0)
			goto err_vm;
	}
	ret = sys__ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, NULL);
	if (ret < 0)
		goto err_vm;
	{
		struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

		ret = sys__ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit);
		if (ret < 0)
			goto err_vm;
	}

	ret = mem__init(&vm->mem, ram_size, hugepages);
	if (ret)
		goto err_vm;
	for (i = 0; i < vm->mem.nr_regions; i++) {
		struct mem_region *r = &vm->mem.regions[i];

		ret = kvm__set_memslot(vm, r->slot, r->gpa, r->size, r->hva, false);
		if (ret)
			goto err_mem;
	}
	ret = kvm_vm_init_common(vm);
	if (ret)
		goto err_mem;
	ret = irq__setup_legacy(&vm->irq);
	if (ret)
		goto err_common;
	return 0;

err_common:
	evloop__destroy(&vm->loop);
	pci__bus_destroy(&vm->pci);
	irq__destroy(&vm->irq);
	bus__destroy(&vm->mmio);
	bus__destroy(&vm->pio);
err_mem:
	mem__free(&vm->mem);
err_vm:
	close(vm->vm_fd);
	vm->vm_fd = -1;
err_kvm:
	close(vm->kvm_fd);
	vm->kvm_fd = -1;
	return ret;
}

void kvm__vm_destroy(struct vm *vm)
{
	unsigned int i;

	if (vm->stop_efd >= 0) {
		evloop__del_fd(&vm->loop, &vm->stop_watch);
		close(vm->stop_efd);
		vm->stop_efd = -1;
	}
	if (vm->vfio_dev_fd >= 0)
		close(vm->vfio_dev_fd);
	vm->vfio_dev_fd = -1;
	if (vm->cring_tfd >= 0) {
		evloop__del_fd(&vm->loop, &vm->cring_watch);
		close(vm->cring_tfd);
		vm->cring_tfd = -1;
	}
	vm->cring = NULL;
	pthread_mutex_destroy(&vm->cring_lock);
	pthread_cond_destroy(&vm->pause_cond);
	pthread_mutex_destroy(&vm->pause_lock);
	device__list_destroy(&vm->devices);
	mig__registry_release(&vm->mig);
	evloop__destroy(&vm->loop);
	pci__bus_destroy(&vm->pci);
	irq__destroy(&vm->irq);
	bus__destroy(&vm->mmio);
	bus__destroy(&vm->pio);
	if (vm->vcpus) {
		for (i = 0; i < vm->nr_vcpus; i++) {
			if (vm->vcpus[i].run)
				munmap(vm->vcpus[i].run, (size_t)vm->run_size);
			if (vm->vcpus[i].fd >= 0)
				close(vm->vcpus[i].fd);
		}
		free(vm->vcpus);
		vm->vcpus = NULL;
	}
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	mem__free(&vm->mem);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = vm->kvm_fd = -1;
}

void kvm__request_exit(struct vm *vm, enum vm_exit_reason reason, int code)
{
	int expected = VM_RUNNING;

	if (atomic_compare_exchange_strong(&vm->exit_reason, &expected, (int)reason))
		atomic_store(&vm->exit_code, code);
	if (vm->stop_efd >= 0)
		sys__eventfd_signal(vm->stop_efd);
	kvm__vcpus_kick(vm);
}
