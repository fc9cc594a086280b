/* SPDX-License-Identifier: MIT */
/*
 * The test port for tiny freestanding test guests (the KVM selftests' "ucall"
 * idea), created only with --testdev:
 *  - TESTDEV_PUTC_PORT (0x500), 1-byte writes: characters of a report; each
 *    completed line is written to out_fd as "testdev: <line>\n". A line of
 *    more than TESTDEV_LINE_MAX bytes is split; '\r' is dropped and other
 *    control characters (except tab) are shown as '?'.
 *  - TESTDEV_EXIT_PORT (0x504), 4-byte write: the guest's exit code; any
 *    partial line is flushed and the VM exits with VM_EXIT_TEST and that code.
 *  - TESTDEV_MAGIC_PORT (0x508), 4-byte read: TESTDEV_MAGIC ("TEST"), so a
 *    guest can detect the device.
 * Every other access in [0x500, 0x50c) is ignored (reads return all-ones).
 * Output never blocks the vCPU: a line out_fd cannot take right now is
 * dropped and counted.
 */
#ifndef MINIVMM_DEVICES_TESTDEV_H
#define MINIVMM_DEVICES_TESTDEV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/log.h"
#include "vmm/device.h"
#include "vmm/util.h"

struct vm;

#define TESTDEV_BASE 0x500
#define TESTDEV_PUTC_PORT 0x500
#define TESTDEV_EXIT_PORT 0x504
#define TESTDEV_MAGIC_PORT 0x508
#define TESTDEV_RANGE_LEN 12
#define TESTDEV_MAGIC 0x54534554u /* "TEST" little endian */
#define TESTDEV_LINE_MAX 256

struct testdev {
	struct vm *vm;
	struct vmm_device dev;       /* the device model (vmm/device.h) */
	int out_fd;
	pthread_mutex_t lock;
	bool registered;
	char line[TESTDEV_LINE_MAX];
	unsigned int len;
	/*
	 * line came in a migration stream and the guest has not run here
	 * since: until it does (the device's moved op, or a character from
	 * the guest) the source still owns it, and a destination that never
	 * ran the guest (a migration that failed before GO) prints none of it
	 */
	bool line_from_stream;
	uint64_t lines, lines_dropped;
	struct log_ratelimit rl;
};

int testdev__create(struct vm *vm, int out_fd, struct testdev **out) __must_check;
/* flushes a partial line, removes the range (waiting for running handlers); NULL is a no-op */
void testdev__destroy(struct testdev *t);

#endif
