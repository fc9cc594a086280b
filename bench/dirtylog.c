// SPDX-License-Identifier: MIT
/*
 * Dirty tracking benchmark (issue 8, docs/migration.md "Dirty bitmap or
 * dirty ring"): which of KVM's two interfaces this kernel serves better for
 * pre-copy. One vCPU runs a tiny 32-bit guest that writes one word into
 * every page of a buffer, over and over; another thread harvests what it
 * dirtied every INTERVAL ms for SECS seconds, either with the bitmap
 * (KVM_MEM_LOG_DIRTY_PAGES + KVM_GET_DIRTY_LOG, what minivmm uses) or with
 * the per-vCPU dirty ring (KVM_CAP_DIRTY_LOG_RING[_ACQ_REL], mmap'ed ring,
 * KVM_RESET_DIRTY_RINGS). Prints, per interface: distinct pages per harvest
 * summed, ring entries read (a page written again after a reset comes
 * again), harvests,
 * the mean and max time of one harvest, the guest's own progress (page
 * writes per second: what tracking costs it), and ring-full exits.
 *
 *   minivmm-bench-dirtylog [--mib N] [--secs S] [--interval MS] [--ring-entries N]
 *
 * Exit 0 when both ran (77 when the ring is not offered: the bitmap's
 * figures are still printed), 1 on an error. Needs /dev/kvm.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define GUEST_CODE 0x1000u
#define BUF_START (1u << 20)

struct bench {
	int kvm, vm, vcpu;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *mem;
	uint64_t mem_size;
	uint32_t buf_pages;
	bool ring;
	struct kvm_dirty_gfn *gfns;
	uint32_t ring_entries, fetch;
	atomic_bool stop;
	uint64_t ring_full, exits;
	int err;
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* mov edi, BUF; 1: mov [edi], eax; add edi, 4096; cmp edi, END; jb 1b; inc eax; jmp 0 */
static void bench_code(uint8_t *p, uint32_t start, uint32_t end)
{
	const uint8_t code[] = {
		0xbf, 0, 0, 0, 0,             /* 0: mov edi, start */
		0x89, 0x07,                   /* 5: mov [edi], eax */
		0x81, 0xc7, 0x00, 0x10, 0, 0, /* 7: add edi, 4096 */
		0x81, 0xff, 0, 0, 0, 0,       /* 13: cmp edi, end */
		0x72, 0xf0,                   /* 19: jb 5 */
		0x40,                         /* 21: inc eax */
		0xeb, 0xe8,                   /* 22: jmp 0 */
	};

	memcpy(p, code, sizeof(code));
	memcpy(p + 1, &start, 4);
	memcpy(p + 15, &end, 4);
}

static int bench_setup(struct bench *b, bool ring, uint32_t mib, uint32_t ring_entries)
{
	struct kvm_userspace_memory_region r = { 0 };
	struct kvm_segment seg = { .base = 0, .limit = 0xffffffff, .present = 1, .s = 1, .db = 1,
				   .g = 1 };
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = GUEST_CODE, .rflags = 2 };

	memset(b, 0, sizeof(*b));
	b->ring = ring;
	b->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (b->kvm < 0)
		return -errno;
	b->vm = ioctl(b->kvm, KVM_CREATE_VM, 0);
	if (b->vm < 0)
		return -errno;
	if (ring) {
		struct kvm_enable_cap cap = { .args[0] = ring_entries * sizeof(struct kvm_dirty_gfn) };
		int c = KVM_CAP_DIRTY_LOG_RING;

#ifdef KVM_CAP_DIRTY_LOG_RING_ACQ_REL
		if (ioctl(b->vm, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING_ACQ_REL) > 0)
			c = KVM_CAP_DIRTY_LOG_RING_ACQ_REL;
#endif
		if (ioctl(b->vm, KVM_CHECK_EXTENSION, c) <= 0)
			return -EOPNOTSUPP;
		cap.cap = (uint32_t)c;
		if (ioctl(b->vm, KVM_ENABLE_CAP, &cap))
			return -errno;
		b->ring_entries = ring_entries;
	}
	b->buf_pages = mib * 256;
	b->mem_size = BUF_START + (uint64_t)mib * (1u << 20);
	b->mem = mmap(NULL, b->mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b->mem == MAP_FAILED)
		return -errno;
	bench_code(b->mem + GUEST_CODE, BUF_START, (uint32_t)b->mem_size);
	r.slot = 0;
	r.flags = KVM_MEM_LOG_DIRTY_PAGES;
	r.guest_phys_addr = 0;
	r.memory_size = b->mem_size;
	r.userspace_addr = (uint64_t)(uintptr_t)b->mem;
	if (ioctl(b->vm, KVM_SET_USER_MEMORY_REGION, &r))
		return -errno;
	b->vcpu = ioctl(b->vm, KVM_CREATE_VCPU, 0);
	if (b->vcpu < 0)
		return -errno;
	b->run_size = (size_t)ioctl(b->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	b->run = mmap(NULL, b->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, b->vcpu, 0);
	if (b->run == MAP_FAILED)
		return -errno;
	if (ring) {
		b->gfns = mmap(NULL, ring_entries * sizeof(struct kvm_dirty_gfn), PROT_READ | PROT_WRITE,
			       MAP_SHARED, b->vcpu, KVM_DIRTY_LOG_PAGE_OFFSET * getpagesize());
		if (b->gfns == MAP_FAILED)
			return -errno;
	}
	if (ioctl(b->vcpu, KVM_GET_SREGS, &sregs))
		return -errno;
	seg.type = 11; /* code: execute/read, accessed */
	seg.selector = 8;
	sregs.cs = seg;
	seg.type = 3; /* data: read/write, accessed */
	seg.selector = 16;
	sregs.ds = sregs.es = sregs.ss = sregs.fs = sregs.gs = seg;
	sregs.cr0 = 0x11; /* PE, ET: flat 32-bit, no paging */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(b->vcpu, KVM_SET_SREGS, &sregs) || ioctl(b->vcpu, KVM_SET_REGS, &regs))
		return -errno;
	return 0;
}

static void *bench_vcpu(void *opaque)
{
	struct bench *b = opaque;

	while (!atomic_load(&b->stop)) {
		if (ioctl(b->vcpu, KVM_RUN, 0) && errno != EINTR) {
			b->err = -errno;
			break;
		}
		b->exits++;
		if (b->run->exit_reason == KVM_EXIT_DIRTY_RING_FULL) {
			b->ring_full++;
			usleep(500); /* the harvester empties it */
		} else if (b->run->exit_reason != KVM_EXIT_INTR) {
			fprintf(stderr, "dirtylog: unexpected exit %u\n", b->run->exit_reason);
			b->err = -EIO;
			break;
		}
	}
	return NULL;
}

/* one harvest into bits; *entries: the ring entries read (a page may come more than once) */
static void bench_harvest(struct bench *b, uint64_t *bits, uint64_t *entries)
{
	uint64_t n = 0;

	*entries = 0;
	if (!b->ring) {
		struct kvm_dirty_log d = { .slot = 0, .dirty_bitmap = bits };

		if (ioctl(b->vm, KVM_GET_DIRTY_LOG, &d))
			b->err = -errno;
		return;
	}
	for (;;) {
		struct kvm_dirty_gfn *g = &b->gfns[b->fetch % b->ring_entries];

		if (!(__atomic_load_n(&g->flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY))
			break;
		bits[g->offset / 64] |= 1ull << (g->offset % 64);
		__atomic_store_n(&g->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		b->fetch++;
		n++;
	}
	if (n && ioctl(b->vm, KVM_RESET_DIRTY_RINGS, 0) < 0)
		b->err = -errno;
	*entries = n;
}

static int bench_run(bool ring, uint32_t mib, double secs, unsigned int interval_ms,
		     uint32_t ring_entries)
{
	struct bench b;
	struct kvm_regs regs;
	size_t words;
	uint64_t *bits, pages = 0, harvests = 0, entries = 0, e;
	double t0, t_end, h_sum = 0, h_max = 0, passes;
	pthread_t th;
	int ret;

	ret = bench_setup(&b, ring, mib, ring_entries);
	if (ret) {
		fprintf(stderr, "dirtylog: %s: setup: %s\n", ring ? "ring" : "bitmap", strerror(-ret));
		return ret;
	}
	words = (b.mem_size / 4096 + 63) / 64;
	bits = calloc(words, sizeof(*bits));
	if (!bits)
		return -ENOMEM;
	t0 = now_s();
	t_end = t0 + secs;
	if (pthread_create(&th, NULL, bench_vcpu, &b))
		return -EAGAIN;
	while (now_s() < t_end && !b.err) {
		double h0;

		usleep(interval_ms * 1000);
		memset(bits, 0, words * sizeof(*bits));
		h0 = now_s();
		bench_harvest(&b, bits, &e);
		h0 = now_s() - h0;
		entries += e;
		for (size_t w = 0; w < words; w++)
			pages += (uint64_t)__builtin_popcountll(bits[w]);
		h_sum += h0;
		h_max = h0 > h_max ? h0 : h_max;
		harvests++;
	}
	atomic_store(&b.stop, true);
	/* KVM_RUN returns on the next exit; a signal would be faster, a ring-full or timer suffices */
	while (pthread_tryjoin_np(th, NULL)) {
		pthread_kill(th, SIGUSR1);
		usleep(1000);
	}
	if (ioctl(b.vcpu, KVM_GET_REGS, &regs))
		return -errno;
	/* whole passes (eax), and how far into the current one (edi) */
	passes = (double)(uint32_t)regs.rax +
		 (double)((uint32_t)regs.rdi - BUF_START) / 4096.0 / (double)b.buf_pages;
	printf("%-7s %8u MiB %10llu %10llu %9llu %10.3f %9.3f %14.0f %9llu\n", ring ? "ring" : "bitmap",
	       mib, (unsigned long long)pages, (unsigned long long)entries, (unsigned long long)harvests,
	       harvests ? h_sum / (double)harvests * 1e3 : 0.0, h_max * 1e3,
	       passes * b.buf_pages / (now_s() - t0), (unsigned long long)b.ring_full);
	free(bits);
	return b.err;
}

static void bench_sig(int s)
{
	(void)s;
}

int main(int argc, char **argv)
{
	uint32_t mib = 32, ring_entries = 65536;
	unsigned int interval = 100;
	double secs = 5;
	struct sigaction sa = { .sa_handler = bench_sig };
	int i, rb, rr;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--mib"))
			mib = (uint32_t)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--secs"))
			secs = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--interval"))
			interval = (unsigned int)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--ring-entries"))
			ring_entries = (uint32_t)atoi(argv[i + 1]);
		else
			break;
	}
	if (i < argc || !mib || mib > 2048 || secs <= 0 || !interval || ring_entries < 1024 ||
	    (ring_entries & (ring_entries - 1))) {
		fprintf(stderr, "usage: %s [--mib 1..2048] [--secs S] [--interval MS] "
			"[--ring-entries 2^n >= 1024]\n", argv[0]);
		return 2;
	}
	sigaction(SIGUSR1, &sa, NULL);
	printf("# a guest writing one word per page over %u MiB, harvested every %u ms for %.0f s\n",
	       mib, interval, secs);
	printf("%-7s %12s %10s %10s %9s %10s %9s %14s %9s\n", "#mode", "buffer", "pages", "entries", "harvests",
	       "mean_ms", "max_ms", "guest_pages/s", "ring_full");
	rb = bench_run(false, mib, secs, interval, ring_entries);
	rr = bench_run(true, mib, secs, interval, ring_entries);
	if (rr == -EOPNOTSUPP) {
		printf("ring    not offered by this kernel (KVM_CAP_DIRTY_LOG_RING)\n");
		return rb ? 1 : 77;
	}
	return rb || rr ? 1 : 0;
}
