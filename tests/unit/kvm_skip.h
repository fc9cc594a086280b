/* SPDX-License-Identifier: MIT */
/*
 * For the unit tests that use the real /dev/kvm: skip (exit 77 through
 * criterion_main.c, with the reason) only when this host has no usable KVM,
 * as tests/kvm/lib.sh's require_kvm does. Once /dev/kvm opens and answers
 * KVM_GET_API_VERSION, whatever fails next is a failure, not a skip.
 */
#ifndef MINIVMM_TESTS_UNIT_KVM_SKIP_H
#define MINIVMM_TESTS_UNIT_KVM_SKIP_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* an open /dev/kvm that answers as KVM does, or the test is skipped */
static inline int kvm_open_or_skip(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int ver;

	if (fd < 0)
		cr_skip_test("/dev/kvm: %s: skipped", strerror(errno));
	ver = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION) {
		int err = errno;

		close(fd);
		if (ver < 0)
			cr_skip_test("/dev/kvm does not answer KVM_GET_API_VERSION (%s): skipped",
				     strerror(err));
		cr_skip_test("/dev/kvm has KVM API version %d, not %d: skipped", ver,
			     KVM_API_VERSION);
	}
	return fd;
}

#endif
