// SPDX-License-Identifier: MIT
/*
 * vmm/sandbox.c: the seccomp allow-lists build, each kind of thread has
 * what it needs and none has what would hand a compromised VMM the host
 * (exec, ptrace, mounts, modules, namespaces, ...); and a filter loaded in a
 * child process lets its calls through and kills it, with the reporter's
 * line, on a forbidden one.
 */
#include "vmm/sandbox.h"

#include <criterion/criterion.h>
#include <linux/vhost.h>
#include <sys/ioctl.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const enum sandbox_kind kinds[] = { SANDBOX_VMM, SANDBOX_VCPU, SANDBOX_WORKER };

/* on no list, whatever the kind */
static const char *const never[] = {
	"execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev",
	"mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "init_module",
	"finit_module", "delete_module", "kexec_load", "kexec_file_load", "bpf", "perf_event_open",
	"keyctl", "add_key", "request_key", "setuid", "setgid", "setresuid", "setresgid",
	"capset", "reboot", "swapon", "swapoff", "personality", "userfaultfd",
	"open_by_handle_at", "name_to_handle_at", "iopl", "ioperm", "kcmp", "syslog",
	"acct", "settimeofday", "clock_settime", "adjtimex", "mknod", "mknodat", "chown",
	"fchownat", "link", "symlink", "memfd_create", "quotactl", "lookup_dcookie",
	"fanotify_init", "io_setup", "uselib", "vhangup", "pkey_mprotect",
};

Test(sandbox, kind_names)
{
	cr_assert_str_eq(sandbox__kind_name(SANDBOX_VMM), "vmm");
	cr_assert_str_eq(sandbox__kind_name(SANDBOX_VCPU), "vcpu");
	cr_assert_str_eq(sandbox__kind_name(SANDBOX_WORKER), "worker");
	cr_assert_eq(sandbox__kind_from_name("vcpu"), SANDBOX_VCPU);
	cr_assert_eq(sandbox__kind_from_name("worker"), SANDBOX_WORKER);
	cr_assert_eq(sandbox__kind_from_name("nosuch"), -EINVAL);
	cr_assert_eq(sandbox__kind_from_name(NULL), -EINVAL);
}

Test(sandbox, every_list_builds)
{
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		cr_assert_eq(sandbox__check_build(kinds[i]), 0, "kind %s",
			     sandbox__kind_name(kinds[i]));
	cr_assert_eq(sandbox__check_build(SANDBOX_NR_KINDS), -EINVAL);
	/* not prepared (unit tests, --no-seccomp): entering is a no-op */
	cr_assert_eq(sandbox__nr_filters(), 0);
	cr_assert_eq(sandbox__enter(SANDBOX_VCPU), 0);
}

Test(sandbox, nothing_dangerous)
{
	size_t i, j;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		for (j = 0; j < sizeof(never) / sizeof(never[0]); j++)
			cr_expect_not(sandbox__allows(kinds[i], never[j]), "%s allows %s",
				      sandbox__kind_name(kinds[i]), never[j]);
}

Test(sandbox, what_each_kind_needs)
{
	static const char *const all[] = { "read", "write", "futex", "exit", "exit_group",
					   "rt_sigreturn", "mmap", "munmap", "madvise", "ioctl",
					   "tgkill", "clock_nanosleep", "poll" };
	static const char *const vcpu[] = { "pwrite64", "pread64", "eventfd2", "io_uring_enter" };
	static const char *const vcpu_not[] = { "openat", "socket", "connect", "clone", "accept4",
						"unlink", "sendto", "seccomp" };
	static const char *const worker[] = { "openat", "getdents64", "readlink", "socket", "bind",
					      "sendto", "recvfrom", "newfstatat", "pwrite64" };
	static const char *const worker_not[] = { "clone", "accept4", "listen", "unlink", "seccomp" };
	static const char *const vmm[] = { "accept4", "listen", "connect", "io_uring_enter",
					   "clone", "seccomp", "unlink", "fsync", "openat", "socket",
					   "timerfd_create" };
	size_t i, j;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		for (j = 0; j < sizeof(all) / sizeof(all[0]); j++)
			cr_expect(sandbox__allows(kinds[i], all[j]), "%s lacks %s",
				  sandbox__kind_name(kinds[i]), all[j]);
	for (j = 0; j < sizeof(vcpu) / sizeof(vcpu[0]); j++)
		cr_expect(sandbox__allows(SANDBOX_VCPU, vcpu[j]), "vcpu lacks %s", vcpu[j]);
	for (j = 0; j < sizeof(vcpu_not) / sizeof(vcpu_not[0]); j++)
		cr_expect_not(sandbox__allows(SANDBOX_VCPU, vcpu_not[j]), "vcpu allows %s", vcpu_not[j]);
	for (j = 0; j < sizeof(worker) / sizeof(worker[0]); j++)
		cr_expect(sandbox__allows(SANDBOX_WORKER, worker[j]), "worker lacks %s", worker[j]);
	for (j = 0; j < sizeof(worker_not) / sizeof(worker_not[0]); j++)
		cr_expect_not(sandbox__allows(SANDBOX_WORKER, worker_not[j]), "worker allows %s",
			      worker_not[j]);
	for (j = 0; j < sizeof(vmm) / sizeof(vmm[0]); j++)
		cr_expect(sandbox__allows(SANDBOX_VMM, vmm[j]), "vmm lacks %s", vmm[j]);
	cr_expect_not(sandbox__allows(SANDBOX_VMM, "nosuchcall"));
	cr_expect_not(sandbox__allows(SANDBOX_NR_KINDS, "read"));
}

/* a worker inherits the VMM thread's filter: its list must be within the VMM's */
Test(sandbox, worker_within_vmm)
{
	static const char *const probe[] = {
		"openat", "newfstatat", "fstat", "statx", "lseek", "pread64", "pwrite64", "getdents64",
		"readlink", "readlinkat", "access", "faccessat", "fcntl", "dup", "eventfd2",
		"io_uring_enter", "socket", "bind", "connect", "getsockname", "sendto", "recvfrom",
		"sendmsg", "recvmsg", "prlimit64", "uname",
	};
	size_t j;

	for (j = 0; j < sizeof(probe) / sizeof(probe[0]); j++)
		if (sandbox__allows(SANDBOX_WORKER, probe[j]))
			cr_expect(sandbox__allows(SANDBOX_VMM, probe[j]), "worker has %s, vmm not",
				  probe[j]);
}

Test(sandbox, sizes)
{
	unsigned int vcpu = sandbox__nr_allowed(SANDBOX_VCPU);
	unsigned int worker = sandbox__nr_allowed(SANDBOX_WORKER);
	unsigned int vmm = sandbox__nr_allowed(SANDBOX_VMM);

	cr_assert_gt(vcpu, 30);
	cr_assert_lt(vcpu, worker);
	cr_assert_lt(worker, vmm);
	cr_assert_lt(vmm, 130, "the VMM thread's list grew to %u calls", vmm);
	cr_assert_eq(sandbox__nr_allowed(SANDBOX_NR_KINDS), 0);
}

/*
 * A child loads kind's filter, then makes a call: 0 when the child exited
 * normally with status 0, else the signal that ended it; its stderr in out.
 */
static int in_child(enum sandbox_kind kind, int (*fn)(void), char *out, size_t outlen)
{
	int p[2], status;
	ssize_t n;
	pid_t pid;

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		if (sandbox__prepare() || sandbox__enter(kind))
			_exit(3);
		_exit(fn());
	}
	close(p[1]);
	n = read(p[0], out, outlen - 1);
	out[n > 0 ? n : 0] = 0;
	close(p[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return WTERMSIG(status);
	return WEXITSTATUS(status) ? -WEXITSTATUS(status) : 0;
}

static int allowed_calls(void)
{
	char c = 'x';

	return write(STDERR_FILENO, &c, 1) == 1 && getpid() > 0 ? 0 : 1;
}

static int call_execve(void)
{
	static char *const argv[] = { "x", NULL };

	syscall(SYS_execve, "/nonexistent/minivmm-unit", argv, NULL);
	return 4;
}

static int call_socket(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	return fd >= 0 ? 5 : 6;
}

Test(sandbox, loaded_filter_allows_and_kills, .timeout = 30)
{
	char out[512];
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		cr_assert_eq(in_child(kinds[i], allowed_calls, out, sizeof(out)), 0, "%s: %s",
			     sandbox__kind_name(kinds[i]), out);
		cr_assert_eq(in_child(kinds[i], call_execve, out, sizeof(out)), SIGSYS,
			     "%s: execve was not stopped: %s", sandbox__kind_name(kinds[i]), out);
		cr_assert(strstr(out, "thread ") && strstr(out, sandbox__kind_name(kinds[i])) &&
			  strstr(out, "made a forbidden system call execve (nr 59)"),
			  "the reporter's line: %s", out);
	}
	cr_assert_eq(in_child(SANDBOX_VCPU, call_socket, out, sizeof(out)), SIGSYS, "%s", out);
	cr_assert(strstr(out, "minivmm: seccomp: thread vcpu made a forbidden system call socket (nr 41)"),
		  "%s", out);
}

/* the vhost-net set-up requests, on a bad fd: EBADF when the filter lets them through */
static int call_vhost_ioctls(void)
{
	static const unsigned long reqs[] = {
		VHOST_SET_OWNER, VHOST_GET_FEATURES, VHOST_SET_FEATURES, VHOST_SET_MEM_TABLE,
		VHOST_SET_VRING_NUM, VHOST_SET_VRING_ADDR, VHOST_SET_VRING_BASE,
		VHOST_GET_VRING_BASE, VHOST_SET_VRING_KICK, VHOST_SET_VRING_CALL,
		VHOST_NET_SET_BACKEND,
	};
	size_t i;

	for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
		if (ioctl(-1, reqs[i], NULL) != -1 || errno != EBADF)
			return 7;
	return 0;
}

Test(sandbox, vhost_setup_on_the_vmm_thread_only, .timeout = 30)
{
	char out[512];

	/* the VMM thread hands the rings to vhost at DRIVER_OK and takes them back */
	cr_assert_eq(in_child(SANDBOX_VMM, call_vhost_ioctls, out, sizeof(out)), 0, "%s", out);
	/* a vCPU only records the driver's writes: no vhost request there */
	cr_assert_eq(in_child(SANDBOX_VCPU, call_vhost_ioctls, out, sizeof(out)), SIGSYS, "%s", out);
}
