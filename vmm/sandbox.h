/* SPDX-License-Identifier: MIT */
/*
 * seccomp confinement (libseccomp): one allow-list of system calls per kind
 * of thread, built once before the first thread starts and loaded by each
 * thread into itself (no TSYNC) when its set-up is done. A call outside the
 * list traps: the SIGSYS reporter writes
 *   minivmm: seccomp: thread <kind> made a forbidden system call <name> (nr N)
 * and then kills the process with SIGSYS. docs/security.md lists the kinds,
 * what each list holds and why.
 *
 * A thread inherits its creator's filter: workers, which the VMM thread
 * starts, run under the VMM list and their own (both must allow a call).
 */
#ifndef MINIVMM_VMM_SANDBOX_H
#define MINIVMM_VMM_SANDBOX_H

#include <stdbool.h>
#include "vmm/util.h"

enum sandbox_kind {
	SANDBOX_VMM,    /* main thread: event loop, control socket, migration, teardown */
	SANDBOX_VCPU,   /* KVM_RUN and the device handlers of I/O and MMIO exits */
	SANDBOX_WORKER, /* device-add vf / device-del and migration workers (VFIO, sysfs, netlink) */
	SANDBOX_NR_KINDS
};

const char *sandbox__kind_name(enum sandbox_kind kind);
/* the kind named (vmm, vcpu, worker), or -EINVAL */
int sandbox__kind_from_name(const char *name);

/*
 * Builds every kind's filter, installs the SIGSYS reporter and sets
 * no_new_privs. Call once on the main thread before any other thread
 * starts. 0 or -errno (nothing is enforced then).
 */
int sandbox__prepare(void) __must_check;
/* the number of filters prepare built (0 when seccomp is off) */
unsigned int sandbox__nr_filters(void);
/*
 * Loads kind's filter into the calling thread; 0 (also when seccomp is not
 * prepared: --no-seccomp, unit tests) or -errno. Then runs the self-test's
 * forbidden call when it names this kind.
 */
int sandbox__enter(enum sandbox_kind kind) __must_check;
/* the hidden --seccomp-selftest=KIND: enter(KIND) then issues execve (forbidden everywhere) */
void sandbox__set_selftest(int kind);

/* for tests and docs: whether kind's list allows the call (by name) */
bool sandbox__allows(enum sandbox_kind kind, const char *syscall);
/* for tests and docs: the number of distinct calls kind's list allows */
unsigned int sandbox__nr_allowed(enum sandbox_kind kind);
/*
 * Builds kind's filter into a libseccomp context and frees it: checks
 * that every name resolves and every rule is accepted. 0 or -errno.
 */
int sandbox__check_build(enum sandbox_kind kind) __must_check;

#endif
