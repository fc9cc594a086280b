// SPDX-License-Identifier: MIT
/*
 * seccomp allow-lists, one per kind of thread (docs/security.md, "seccomp").
 *
 * sandbox__prepare() builds each kind's filter with libseccomp once, on the
 * main thread before any other thread exists, and keeps it as a BPF program
 * (exported through a memfd); sandbox__enter() then costs each thread one
 * seccomp(2) call and no allocation. The default action is SCMP_ACT_TRAP:
 * the SIGSYS reporter below writes one line naming the thread kind and the
 * call (names resolved at prepare time, so the handler only formats and
 * write(2)s), then re-issues the trapped call with SIGSYS blocked, which
 * the kernel answers as SECCOMP_RET_KILL_PROCESS would: the process dies of
 * SIGSYS. exit_group is the fallback.
 *
 * Narrowed arguments: ioctl by request number (compared on the low 32 bits,
 * as the kernel does), mmap/mprotect never with PROT_EXEC, socket by
 * address family, prctl to PR_SET_NAME/PR_GET_NAME, clone only for threads
 * (CLONE_THREAD; clone3 answers ENOSYS so that glibc falls back to clone),
 * seccomp to SECCOMP_SET_MODE_FILTER with FLAG_LOG only, no TSYNC (a worker
 * adds its own filter to the one it inherited from the VMM thread).
 */
#include "vmm/sandbox.h"
#include "vmm/log.h"

#include <errno.h>
#include <time.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/vfio.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/vhost.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#define SC_LOG "seccomp"
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1 /* siginfo si_code of a SECCOMP_RET_TRAP */
#endif
#define SANDBOX_MAX_NR 512 /* names kept for numbers below this */

/* ---- the lists --------------------------------------------------------- */

/* every thread: libc, malloc, pthreads, logging, the clocks */
static const char *const sandbox_base[] = {
	"read", "write", "readv", "writev", "close",
	"futex", "set_robust_list", "rseq", "sched_yield", "sched_getaffinity",
	"brk", "munmap", "mremap", "madvise", /* mmap, mprotect: without PROT_EXEC, below */
	"rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall",
	"exit", "exit_group", "getpid", "gettid", "tgkill", /* pthread_kill: vCPU kicks */
	"clock_gettime", "clock_getres", "gettimeofday", "clock_nanosleep", "nanosleep",
	"getrandom", "poll", "ppoll", "sysinfo",
	/* prctl: PR_SET_NAME/PR_GET_NAME only, below */
};

/* KVM_RUN's exit handlers: buses, PCI config (BAR moves), MSI-X, virtqueue set-up */
static const char *const sandbox_vcpu[] = {
	"pread64", "pwrite64", "preadv", "pwritev", /* VFIO config space and regions */
	"eventfd2", "timerfd_settime", "timerfd_gettime", "io_uring_enter", "fcntl",
	/* ioctl: KVM vCPU/VM requests and VFIO device requests, below */
};

/* VFIO assignment and release, sysfs, rtnetlink (VF MACs) */
#define SANDBOX_HOST_IO                                                                       \
	"openat", "newfstatat", "fstat", "statx", "lseek", "pread64", "pwrite64", "preadv",  \
	"pwritev", "getdents64", "readlink", "readlinkat", "access", "faccessat",             \
	"faccessat2", "fcntl", "dup", "dup3", "eventfd2", "timerfd_settime",                  \
	"timerfd_gettime", "io_uring_enter", "bind", "connect", "getsockname", "getsockopt", \
	"setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "prlimit64", "getrlimit",  \
	"uname", "getuid", "geteuid", "getgid", "getegid",                                   \
	"capget" /* the memlock check: CAP_IPC_LOCK (devices/vfio/check.c) */

static const char *const sandbox_worker[] = {
	SANDBOX_HOST_IO,
	/* ioctl: VFIO, the KVM VM requests a VF needs, SIOCGIF*; socket: below */
};

/* the VMM thread: all of the worker's (a worker that cannot start runs inline) and more */
static const char *const sandbox_vmm[] = {
	SANDBOX_HOST_IO,
	/* the control socket, migration (TCP or Unix, TLS), snapshots */
	"accept4", "accept", "listen", "shutdown", "getpeername", "sendmmsg", "recvmmsg",
	"socketpair", "pipe2", "fsync", "fdatasync", "ftruncate", "fallocate", "unlink",
	"unlinkat", "rename", "renameat", "renameat2", "umask", "chmod", "fchmod",
	/* the event loop */
	"io_uring_register", "timerfd_create", "epoll_create1", "epoll_ctl", "epoll_wait",
	"epoll_pwait",
	/* clone (threads only), clone3 (ENOSYS): below */
};

struct sandbox_ioctl {
	unsigned long req;
	const char *name;
};
#define SC_IOCTL(r) { (unsigned long)(r), #r }

/* what vCPU exit handlers issue: KVM_RUN and the dumps, the VM fd, a VF's device fd */
static const struct sandbox_ioctl sandbox_ioctl_vcpu[] = {
	SC_IOCTL(KVM_RUN), SC_IOCTL(KVM_GET_REGS), SC_IOCTL(KVM_GET_SREGS),
	SC_IOCTL(KVM_GET_VCPU_EVENTS), SC_IOCTL(KVM_CHECK_EXTENSION),
	SC_IOCTL(KVM_IOEVENTFD), SC_IOCTL(KVM_IRQFD), SC_IOCTL(KVM_SET_GSI_ROUTING),
	SC_IOCTL(KVM_IRQ_LINE), SC_IOCTL(KVM_SIGNAL_MSI), SC_IOCTL(KVM_SET_USER_MEMORY_REGION),
	SC_IOCTL(VFIO_DEVICE_GET_INFO), SC_IOCTL(VFIO_DEVICE_GET_REGION_INFO),
	SC_IOCTL(VFIO_DEVICE_GET_IRQ_INFO), SC_IOCTL(VFIO_DEVICE_SET_IRQS),
	SC_IOCTL(VFIO_DEVICE_RESET),
};

/* a VF's assignment and release (VFIO container, group, device; KVM's side of it) */
#define SANDBOX_IOCTL_VF                                                                     \
	SC_IOCTL(VFIO_GET_API_VERSION), SC_IOCTL(VFIO_CHECK_EXTENSION),                      \
	SC_IOCTL(VFIO_SET_IOMMU), SC_IOCTL(VFIO_GROUP_GET_STATUS),                           \
	SC_IOCTL(VFIO_GROUP_SET_CONTAINER), SC_IOCTL(VFIO_GROUP_UNSET_CONTAINER),           \
	SC_IOCTL(VFIO_GROUP_GET_DEVICE_FD), SC_IOCTL(VFIO_DEVICE_GET_INFO),                  \
	SC_IOCTL(VFIO_DEVICE_GET_REGION_INFO), SC_IOCTL(VFIO_DEVICE_GET_IRQ_INFO),           \
	SC_IOCTL(VFIO_DEVICE_SET_IRQS), SC_IOCTL(VFIO_DEVICE_RESET),                         \
	SC_IOCTL(VFIO_DEVICE_GET_PCI_HOT_RESET_INFO), SC_IOCTL(VFIO_DEVICE_PCI_HOT_RESET),   \
	SC_IOCTL(VFIO_IOMMU_GET_INFO), SC_IOCTL(VFIO_IOMMU_MAP_DMA),                         \
	SC_IOCTL(VFIO_IOMMU_UNMAP_DMA), SC_IOCTL(KVM_CHECK_EXTENSION),                       \
	SC_IOCTL(KVM_SET_USER_MEMORY_REGION), SC_IOCTL(KVM_IRQFD),                           \
	SC_IOCTL(KVM_IOEVENTFD), SC_IOCTL(KVM_SET_GSI_ROUTING), SC_IOCTL(KVM_IRQ_LINE),      \
	SC_IOCTL(KVM_SIGNAL_MSI), SC_IOCTL(KVM_CREATE_DEVICE), SC_IOCTL(KVM_SET_DEVICE_ATTR), \
	SC_IOCTL(KVM_HAS_DEVICE_ATTR), SC_IOCTL(SIOCGIFINDEX), SC_IOCTL(SIOCGIFNAME),         \
	SC_IOCTL(SIOCGIFFLAGS), SC_IOCTL(SIOCGIFHWADDR), SC_IOCTL(FIONBIO), SC_IOCTL(FIOCLEX)

static const struct sandbox_ioctl sandbox_ioctl_worker[] = {
	SANDBOX_IOCTL_VF,
};

/*
 * The VMM thread: a VF (inline when no worker starts, and at exit), taps
 * (device-add net), pause/snapshot/migration (vCPU and VM state: read, and
 * written back on a destination's rollback), the dirty log, the console.
 * Never KVM_CREATE_VM/VCPU/IRQCHIP/PIT2 or the boot-time set-up requests.
 */
static const struct sandbox_ioctl sandbox_ioctl_vmm[] = {
	SANDBOX_IOCTL_VF,
	SC_IOCTL(KVM_GET_DIRTY_LOG), SC_IOCTL(KVM_GET_CLOCK), SC_IOCTL(KVM_SET_CLOCK),
	SC_IOCTL(KVM_GET_IRQCHIP), SC_IOCTL(KVM_SET_IRQCHIP), SC_IOCTL(KVM_GET_PIT2),
	SC_IOCTL(KVM_SET_PIT2), SC_IOCTL(KVM_GET_REGS), SC_IOCTL(KVM_SET_REGS),
	SC_IOCTL(KVM_GET_SREGS), SC_IOCTL(KVM_SET_SREGS), SC_IOCTL(KVM_GET_MSRS),
	SC_IOCTL(KVM_SET_MSRS), SC_IOCTL(KVM_GET_LAPIC), SC_IOCTL(KVM_SET_LAPIC),
	SC_IOCTL(KVM_GET_MP_STATE), SC_IOCTL(KVM_SET_MP_STATE), SC_IOCTL(KVM_GET_VCPU_EVENTS),
	SC_IOCTL(KVM_SET_VCPU_EVENTS), SC_IOCTL(KVM_GET_XSAVE), SC_IOCTL(KVM_GET_XSAVE2),
	SC_IOCTL(KVM_SET_XSAVE), SC_IOCTL(KVM_GET_XCRS), SC_IOCTL(KVM_SET_XCRS),
	SC_IOCTL(KVM_GET_DEBUGREGS), SC_IOCTL(KVM_SET_DEBUGREGS), SC_IOCTL(KVM_SET_FPU),
	SC_IOCTL(TUNSETIFF), SC_IOCTL(TUNGETIFF), SC_IOCTL(TUNGETFEATURES),
	SC_IOCTL(TUNSETOFFLOAD), SC_IOCTL(TUNSETVNETHDRSZ), SC_IOCTL(TUNSETPERSIST),
	/* vhost-net: set up at DRIVER_OK and hot-plug, torn down at reset, pause, unplug */
	SC_IOCTL(VHOST_SET_OWNER), SC_IOCTL(VHOST_GET_FEATURES), SC_IOCTL(VHOST_SET_FEATURES),
	SC_IOCTL(VHOST_SET_MEM_TABLE), SC_IOCTL(VHOST_SET_VRING_NUM), SC_IOCTL(VHOST_SET_VRING_ADDR),
	SC_IOCTL(VHOST_SET_VRING_BASE), SC_IOCTL(VHOST_GET_VRING_BASE), SC_IOCTL(VHOST_SET_VRING_KICK),
	SC_IOCTL(VHOST_SET_VRING_CALL), SC_IOCTL(VHOST_NET_SET_BACKEND),
	SC_IOCTL(SIOCSIFFLAGS), SC_IOCTL(TCGETS), SC_IOCTL(TCSETS), SC_IOCTL(TCSETSW),
	SC_IOCTL(TCSETSF), SC_IOCTL(TIOCGWINSZ), SC_IOCTL(FIONREAD),
	/* the UART's teardown: its coalesced transmit register (kvm__uncoalesce_pio) */
	SC_IOCTL(KVM_UNREGISTER_COALESCED_MMIO),
};

static const int sandbox_families[] = { AF_UNIX, AF_INET, AF_INET6, AF_NETLINK };

/*
 * What the sanitizer runtimes call from instrumented threads (their
 * allocators, shadow memory, reports; LeakSanitizer's check at exit stops
 * the world with a ptrace'ing helper task). Only in -fsanitize builds, and
 * never counted as a kind's list (docs/security.md).
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANDBOX_SANITIZER 1
static const char *const sandbox_sanitizer[] = {
	"open", "openat", "newfstatat", "fstat", "stat", "lstat", "readlink", "getdents", "getdents64",
	"lseek", "pread64", "access",
	"ptrace", "wait4", "waitid", "kill", "getppid", "prctl", "sched_getaffinity",
	"getrlimit", "prlimit64", "mincore", "rt_sigaction", "rt_sigtimedwait", "pipe2",
	"dup", "dup2", "dup3", "fcntl", "uname", "sigaltstack", "clone",
};
#endif

struct sandbox_list {
	const char *const *calls;
	size_t nr_calls;
	const struct sandbox_ioctl *ioctls;
	size_t nr_ioctls;
	bool sockets; /* socket(2) in sandbox_families */
	bool threads; /* clone(CLONE_THREAD), clone3 (ENOSYS), seccomp(SET_MODE_FILTER, LOG) */
};

#define SC_ARRAY(a) (a), sizeof(a) / sizeof((a)[0])
static const struct sandbox_list sandbox_lists[SANDBOX_NR_KINDS] = {
	[SANDBOX_VMM] = { SC_ARRAY(sandbox_vmm), SC_ARRAY(sandbox_ioctl_vmm), true, true },
	[SANDBOX_VCPU] = { SC_ARRAY(sandbox_vcpu), SC_ARRAY(sandbox_ioctl_vcpu), false, false },
	[SANDBOX_WORKER] = { SC_ARRAY(sandbox_worker), SC_ARRAY(sandbox_ioctl_worker), true, false },
};

static const char *const sandbox_kind_names[SANDBOX_NR_KINDS] = {
	[SANDBOX_VMM] = "vmm",
	[SANDBOX_VCPU] = "vcpu",
	[SANDBOX_WORKER] = "worker",
};

/* ---- state ------------------------------------------------------------- */

static struct {
	bool ready;
	struct sock_fprog prog[SANDBOX_NR_KINDS];
	const char *names[SANDBOX_MAX_NR]; /* for the reporter: resolved at prepare */
} sandbox_state;

static int sandbox_selftest_kind = -1;
static __thread int sandbox_thread_kind = -1;

const char *sandbox__kind_name(enum sandbox_kind kind)
{
	return (unsigned int)kind < SANDBOX_NR_KINDS ? sandbox_kind_names[kind] : "unknown";
}

int sandbox__kind_from_name(const char *name)
{
	int k;

	for (k = 0; name && k < SANDBOX_NR_KINDS; k++)
		if (!strcmp(name, sandbox_kind_names[k]))
			return k;
	return -EINVAL;
}

void sandbox__set_selftest(int kind)
{
	sandbox_selftest_kind = kind;
}

unsigned int sandbox__nr_filters(void)
{
	return sandbox_state.ready ? SANDBOX_NR_KINDS : 0;
}

/* ---- building ---------------------------------------------------------- */

static bool sandbox_in(const char *const *calls, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(calls[i], name))
			return true;
	return false;
}

static const char *const sandbox_special[] = { "mmap", "mprotect", "prctl", "ioctl" };

bool sandbox__allows(enum sandbox_kind kind, const char *name)
{
	const struct sandbox_list *l;

	if ((unsigned int)kind >= SANDBOX_NR_KINDS || !name)
		return false;
	l = &sandbox_lists[kind];
	if (sandbox_in(sandbox_base, sizeof(sandbox_base) / sizeof(sandbox_base[0]), name) ||
	    sandbox_in(l->calls, l->nr_calls, name) ||
	    sandbox_in(sandbox_special, sizeof(sandbox_special) / sizeof(sandbox_special[0]), name))
		return true;
	if (!strcmp(name, "socket"))
		return l->sockets;
	if (!strcmp(name, "clone") || !strcmp(name, "seccomp"))
		return l->threads;
	return false;
}

unsigned int sandbox__nr_allowed(enum sandbox_kind kind)
{
	const struct sandbox_list *l;
	unsigned int n = 0;
	size_t i;

	if ((unsigned int)kind >= SANDBOX_NR_KINDS)
		return 0;
	l = &sandbox_lists[kind];
	n = sizeof(sandbox_base) / sizeof(sandbox_base[0]) +
	    sizeof(sandbox_special) / sizeof(sandbox_special[0]) + l->sockets + 2u * l->threads;
	for (i = 0; i < l->nr_calls; i++)
		if (!sandbox_in(sandbox_base, sizeof(sandbox_base) / sizeof(sandbox_base[0]),
				l->calls[i]) && !sandbox_in(l->calls, i, l->calls[i]))
			n++;
	return n;
}

static int sandbox_allow(scmp_filter_ctx ctx, const char *name)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR) {
		log_err(SC_LOG, "unknown system call %s", name);
		return -EINVAL;
	}
	return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
}

static int sandbox_allow_names(scmp_filter_ctx ctx, const char *const *calls, size_t n)
{
	size_t i;
	int ret;

	for (i = 0; i < n; i++) {
		ret = sandbox_allow(ctx, calls[i]);
		if (ret)
			return ret;
	}
	return 0;
}

static int sandbox_add_rules(scmp_filter_ctx ctx, enum sandbox_kind kind)
{
	const struct sandbox_list *l = &sandbox_lists[kind];
	size_t i;
	int ret;

	ret = sandbox_allow_names(ctx, sandbox_base, sizeof(sandbox_base) / sizeof(sandbox_base[0]));
	if (!ret)
		ret = sandbox_allow_names(ctx, l->calls, l->nr_calls);
	/* memory: never executable */
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				       SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				       SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
				       SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
				       SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME));
	for (i = 0; !ret && i < l->nr_ioctls; i++)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL,
					       (scmp_datum_t)(l->ioctls[i].req & 0xffffffffUL)));
	for (i = 0; !ret && l->sockets && i < sizeof(sandbox_families) / sizeof(int); i++)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				       SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)sandbox_families[i]));
	if (!ret && l->threads)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				       SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	if (!ret && l->threads)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/* the threads it starts load their own filter (which can only narrow; no TSYNC) */
	if (!ret && l->threads)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(seccomp), 2,
				       SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER),
				       SCMP_A1(SCMP_CMP_EQ, SECCOMP_FILTER_FLAG_LOG));
	if (!ret && kind == SANDBOX_VCPU)
		ret = seccomp_syscall_priority(ctx, SCMP_SYS(ioctl), 255); /* KVM_RUN first */
#ifdef SANDBOX_SANITIZER
	/* in every list: a worker inherits the VMM thread's filter */
	for (i = 0; !ret && i < sizeof(sandbox_sanitizer) / sizeof(sandbox_sanitizer[0]); i++) {
		ret = sandbox_allow(ctx, sandbox_sanitizer[i]);
		if (ret == -EEXIST)
			ret = 0;
	}
#endif
	return ret;
}

static scmp_filter_ctx sandbox_build(enum sandbox_kind kind, int *err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	int ret;

	if (!ctx) {
		*err = -ENOMEM;
		return NULL;
	}
	/* this thread only (no TSYNC); no_new_privs is set once by prepare */
	ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (!ret)
		ret = sandbox_add_rules(ctx, kind);
	if (ret) {
		log_err(SC_LOG, "cannot build the %s filter: %s", sandbox__kind_name(kind),
			strerror(ret < 0 ? -ret : ret));
		seccomp_release(ctx);
		*err = ret < 0 ? ret : -EINVAL;
		return NULL;
	}
	return ctx;
}

int sandbox__check_build(enum sandbox_kind kind)
{
	scmp_filter_ctx ctx;
	int err = 0;

	if ((unsigned int)kind >= SANDBOX_NR_KINDS)
		return -EINVAL;
	ctx = sandbox_build(kind, &err);
	if (!ctx)
		return err;
	seccomp_release(ctx);
	return 0;
}

/* the filter as BPF, through a memfd (libseccomp 2.5 exports to a descriptor only) */
static int sandbox_export(scmp_filter_ctx ctx, struct sock_fprog *prog)
{
	int fd = memfd_create("minivmm-seccomp", MFD_CLOEXEC);
	struct sock_filter *f = NULL;
	off_t len;
	int ret;

	if (fd < 0)
		return -errno;
	ret = seccomp_export_bpf(ctx, fd);
	if (ret)
		goto out;
	len = lseek(fd, 0, SEEK_END);
	if (len <= 0 || len % (off_t)sizeof(*f) || len / (off_t)sizeof(*f) > 0xffff) {
		ret = -EINVAL;
		goto out;
	}
	f = malloc((size_t)len);
	if (!f) {
		ret = -ENOMEM;
		goto out;
	}
	if (pread(fd, f, (size_t)len, 0) != len) {
		ret = -EIO;
		free(f);
		goto out;
	}
	prog->filter = f;
	prog->len = (unsigned short)(len / (off_t)sizeof(*f));
	ret = 0;
out:
	close(fd);
	return ret;
}

/* ---- the reporter ------------------------------------------------------ */

static size_t sandbox_cat(char *buf, size_t at, size_t size, const char *s)
{
	while (*s && at + 1 < size)
		buf[at++] = *s++;
	return at;
}

static size_t sandbox_cat_num(char *buf, size_t at, size_t size, long v)
{
	char tmp[24];
	size_t n = 0;
	unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;

	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u && n < sizeof(tmp));
	if (v < 0 && at + 1 < size)
		buf[at++] = '-';
	while (n && at + 1 < size)
		buf[at++] = tmp[--n];
	return at;
}

static void sandbox_sigsys(int sig, siginfo_t *si, void *ucv)
{
	int nr = si->si_syscall, kind = sandbox_thread_kind;
	const char *name = nr >= 0 && nr < SANDBOX_MAX_NR ? sandbox_state.names[nr] : NULL;
	char buf[256];
	size_t n = 0;

	(void)sig;
	if (si->si_code != SYS_SECCOMP)
		return; /* someone's kill(2): not ours */
	n = sandbox_cat(buf, n, sizeof(buf), "minivmm: seccomp: thread ");
	n = sandbox_cat(buf, n, sizeof(buf), kind >= 0 ? sandbox__kind_name(kind) : "unknown");
	n = sandbox_cat(buf, n, sizeof(buf), " made a forbidden system call ");
	n = sandbox_cat(buf, n, sizeof(buf), name ? name : "?");
	n = sandbox_cat(buf, n, sizeof(buf), " (nr ");
	n = sandbox_cat_num(buf, n, sizeof(buf), nr);
	n = sandbox_cat(buf, n, sizeof(buf), ")");
#ifdef __x86_64__
	/* which file: what a missing call was for is then plain (the path is ours, mapped) */
	if (nr == SYS_openat || nr == SYS_open) {
		const greg_t *g = ((ucontext_t *)ucv)->uc_mcontext.gregs;
		const char *path = (const char *)(uintptr_t)g[nr == SYS_openat ? REG_RSI : REG_RDI];
		char p[96];
		size_t i;

		for (i = 0; path && i < sizeof(p) - 1 && path[i]; i++)
			p[i] = path[i];
		p[i] = 0;
		n = sandbox_cat(buf, n, sizeof(buf), " of ");
		n = sandbox_cat(buf, n, sizeof(buf), p);
	}
#endif
	n = sandbox_cat(buf, n, sizeof(buf), ": killing the process\n");
	if (syscall(SYS_write, STDERR_FILENO, buf, n) < 0)
		buf[0] = 0;
#ifdef __x86_64__
	{
		/*
		 * The same call again, SIGSYS blocked in this handler: it traps
		 * again, and the kernel resets SIGSYS to its default and kills
		 * the process with it (SECCOMP_RET_KILL_PROCESS's outcome)
		 */
		const greg_t *g = ((ucontext_t *)ucv)->uc_mcontext.gregs;

		syscall(nr, g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], g[REG_R8], g[REG_R9]);
	}
#else
	(void)ucv;
#endif
	syscall(SYS_exit_group, 128 + SIGSYS);
}

/* ---- set-up and per-thread load --------------------------------------- */

int sandbox__prepare(void)
{
	struct sigaction sa = { .sa_sigaction = sandbox_sigsys, .sa_flags = SA_SIGINFO };
	int k, nr, ret;

	if (sandbox_state.ready)
		return 0;
	/*
	 * libc state that is set up lazily, on first use, by opening a file:
	 * done here, before any filter, so that no filtered thread opens it.
	 * The time zone: gmtime_r (the RTC's clock, on a vCPU thread) calls
	 * tzset on its first use, which reads /etc/localtime (the lab's Linux
	 * guest reading its CMOS clock died of it).
	 */
	tzset();
	for (k = 0; k < SANDBOX_NR_KINDS; k++) {
		scmp_filter_ctx ctx = sandbox_build((enum sandbox_kind)k, &ret);

		if (!ctx)
			goto err;
		ret = sandbox_export(ctx, &sandbox_state.prog[k]);
		seccomp_release(ctx);
		if (ret) {
			log_err(SC_LOG, "cannot export the %s filter: %s", sandbox_kind_names[k],
				strerror(-ret));
			goto err;
		}
	}
	for (nr = 0; nr < SANDBOX_MAX_NR; nr++)
		sandbox_state.names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		ret = -errno;
		log_err(SC_LOG, "cannot set up: %s", strerror(-ret));
		goto err;
	}
	sandbox_state.ready = true;
	return 0;

err:
	for (k = 0; k < SANDBOX_NR_KINDS; k++) {
		free(sandbox_state.prog[k].filter);
		sandbox_state.prog[k].filter = NULL;
	}
	return ret ? ret : -EINVAL;
}

static void sandbox_selftest(enum sandbox_kind kind)
{
	static char *const argv[] = { "minivmm-seccomp-selftest", NULL };

	log_warn(SC_LOG, "self-test: thread %s calls execve", sandbox__kind_name(kind));
	syscall(SYS_execve, "/nonexistent/minivmm-seccomp-selftest", argv, NULL);
	log_err(SC_LOG, "self-test: thread %s: execve was not stopped (%s): seccomp is off",
		sandbox__kind_name(kind), strerror(errno));
}

int sandbox__enter(enum sandbox_kind kind)
{
	int ret = 0;

	if ((unsigned int)kind >= SANDBOX_NR_KINDS)
		return -EINVAL;
	if (sandbox_state.ready) {
		sandbox_thread_kind = (int)kind;
		/* FLAG_LOG: a forbidden call also reaches the kernel's audit log */
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_LOG,
			    &sandbox_state.prog[kind])) {
			ret = -errno;
			log_err(SC_LOG, "thread %s: cannot load its filter: %s",
				sandbox__kind_name(kind), strerror(-ret));
			return ret;
		}
	}
	if (sandbox_selftest_kind == (int)kind)
		sandbox_selftest(kind);
	return ret;
}
