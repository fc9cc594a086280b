// SPDX-License-Identifier: MIT
#include "vmm/sys.h"
#include "vmm/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <string.h>
#include <unistd.h>

static const struct sys_fake *sys_fake;

void sys__set_fake(const struct sys_fake *fake)
{
	sys_fake = fake;
}

int sys__open_raw(const char *path, int flags)
{
	int fd;

	if (sys_fake && sys_fake->open) {
		fd = sys_fake->open(sys_fake->opaque, path, flags | O_CLOEXEC);
		if (fd != SYS_FAKE_PASS)
			return fd;
	}
	fd = open(path, flags | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int sys__open(const char *path, int flags)
{
	int fd = sys__open_raw(path, flags);

	if (fd < 0)
		log_err("sys", "open %s: %s", path, strerror(-fd));
	return fd;
}

int sys__close(int fd)
{
	if (fd < 0)
		return 0;
	if (sys_fake && sys_fake->close) {
		int ret = sys_fake->close(sys_fake->opaque, fd);

		if (ret != SYS_FAKE_PASS)
			return ret;
	}
	return close(fd) ? -errno : 0;
}

/*
 * No retry on EINTR: for KVM_RUN, -EINTR is the answer to a kick (a signal or
 * immediate_exit) and the caller must see it.
 */
int sys__ioctl_raw(int fd, unsigned long req, void *arg)
{
	int ret;

	if (sys_fake && sys_fake->ioctl) {
		ret = sys_fake->ioctl(sys_fake->opaque, fd, req, arg);
		if (ret != SYS_FAKE_PASS)
			return ret;
	}
	ret = ioctl(fd, req, arg);

	return ret < 0 ? -errno : ret;
}

int sys__ioctl_checked(int fd, unsigned long req, const char *req_name, void *arg)
{
	int ret = sys__ioctl_raw(fd, req, arg);

	if (ret < 0)
		log_err("sys", "ioctl %s on fd %d: %s", req_name, fd, strerror(-ret));
	return ret;
}

int sys__eventfd(unsigned int initval)
{
	int fd = eventfd(initval, EFD_NONBLOCK | EFD_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int sys__eventfd_signal(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one))
		return -errno;
	return 0;
}

int sys__eventfd_drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return errno == EAGAIN ? 0 : -errno;
	return (int)(v > INT32_MAX ? INT32_MAX : v);
}

ssize_t sys__pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

ssize_t sys__pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return (ssize_t)done;
}
