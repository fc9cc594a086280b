/* SPDX-License-Identifier: MIT */
/*
 * The one seam for system calls on /dev/kvm, VFIO, vhost and tap: every call
 * returns a non-negative result or -errno (never -1 with errno). The `_raw`
 * variants only return; the checked ones also log which request failed, as the
 * KVM selftests' vm_ioctl() does (without aborting).
 */
#ifndef MINIVMM_VMM_SYS_H
#define MINIVMM_VMM_SYS_H

#include <stddef.h>
#include <sys/types.h>
#include "vmm/util.h"

int sys__open_raw(const char *path, int flags) __must_check;
int sys__open(const char *path, int flags) __must_check;
int sys__close(int fd);

int sys__ioctl_raw(int fd, unsigned long req, void *arg) __must_check;
int sys__ioctl_checked(int fd, unsigned long req, const char *req_name, void *arg) __must_check;
#define sys__ioctl(fd, req, arg) sys__ioctl_checked(fd, req, #req, (void *)(arg))

/* an eventfd in non-blocking, close-on-exec mode */
int sys__eventfd(unsigned int initval) __must_check;
/* write 1 to / drain an eventfd */
int sys__eventfd_signal(int fd);
int sys__eventfd_drain(int fd);

/*
 * A fake for unit tests: while set, open/ioctl/close go to it first; a hook
 * that returns SYS_FAKE_PASS lets the real call happen (so a test fakes
 * only its own paths and fds, e.g. /dev/vhost-net). Eventfds stay real.
 * Not thread-safe against calls in flight: set it before the code under test runs.
 */
#define SYS_FAKE_PASS (-0x7fff)
struct sys_fake {
	int (*open)(void *opaque, const char *path, int flags);
	int (*ioctl)(void *opaque, int fd, unsigned long req, void *arg);
	int (*close)(void *opaque, int fd);
	void *opaque;
};
/* NULL: back to the real system calls */
void sys__set_fake(const struct sys_fake *fake);

/* read/write whole buffers, retrying on EINTR and short counts */
ssize_t sys__pread_full(int fd, void *buf, size_t len, off_t off) __must_check;
ssize_t sys__pwrite_full(int fd, const void *buf, size_t len, off_t off) __must_check;

#endif
