// SPDX-License-Identifier: MIT
/*
 * PCI functions in sysfs (see pcisys.h). Layout relied upon (Linux 6.x):
 *   bus/pci/devices/BDF -> ../../../devices/pci0000:00/.../BDF
 *   BDF/driver -> ../../../bus/pci/drivers/NAME
 */
#include "devices/pcisys.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pcisys__parse_bdf(const char *s, char out[PCISYS_BDF_LEN])
{
	unsigned int dom = 0, bus, dev, fn;
	int n = 0;

	if (!s)
		return -EINVAL;
	if (sscanf(s, "%4x:%2x:%2x.%1u%n", &dom, &bus, &dev, &fn, &n) == 4 && !s[n] &&
	    n == 12) {
		/* full form */
	} else if (dom = 0, n = 0,
		   sscanf(s, "%2x:%2x.%1u%n", &bus, &dev, &fn, &n) == 3 && !s[n] && n == 7) {
		/* short form: domain 0 */
	} else {
		return -EINVAL;
	}
	for (const char *p = s; *p; p++)
		if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
			return -EINVAL;
	if (dev > 0x1f || fn > 7)
		return -EINVAL;
	snprintf(out, PCISYS_BDF_LEN, "%04x:%02x:%02x.%u", dom, bus, dev, fn);
	return 0;
}

int pcisys__path(char *out, size_t outlen, const char *root, const char *fmt, ...)
{
	va_list ap;
	int n, m;

	n = snprintf(out, outlen, "%s/", root);
	if (n < 0 || (size_t)n >= outlen)
		return -ENAMETOOLONG;
	va_start(ap, fmt);
	m = vsnprintf(out + n, outlen - n, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)m >= outlen - n)
		return -ENAMETOOLONG;
	return 0;
}

int pcisys__read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	if (!len)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		n--;
	buf[n] = '\0';
	return 0;
}

int pcisys__write_file(const char *path, const char *val)
{
	size_t len = strlen(val);
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	if (n < 0)
		ret = -errno;
	else if ((size_t)n != len)
		ret = -EIO;
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

int pcisys__link_base(const char *path, char *buf, size_t len)
{
	char target[4096];
	const char *base;
	ssize_t n;

	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	while (n > 1 && target[n - 1] == '/')
		target[--n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (strlen(base) >= len)
		return -ENAMETOOLONG;
	strcpy(buf, base);
	return 0;
}

void pcisys__msg_add(char *msg, size_t len, const char *fmt, ...)
{
	size_t used;
	va_list ap;

	if (!msg || !len)
		return;
	used = strnlen(msg, len);
	if (used >= len - 1)
		return;
	if (used) {
		msg[used++] = '\n';
		msg[used] = '\0';
	}
	va_start(ap, fmt);
	vsnprintf(msg + used, len - used, fmt, ap);
	va_end(ap);
}

void pcisys__msg_set(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!msg || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
}

bool pcisys__dev_exists(const char *root, const char *bdf)
{
	char p[4096];
	struct stat st;

	if (pcisys__path(p, sizeof(p), root, "bus/pci/devices/%s", bdf))
		return false;
	return !stat(p, &st) && S_ISDIR(st.st_mode);
}

int pcisys__pci_driver(const char *root, const char *bdf, char *drv, size_t len)
{
	char p[4096];
	int ret;

	if (!pcisys__dev_exists(root, bdf))
		return -ENODEV;
	ret = pcisys__path(p, sizeof(p), root, "bus/pci/devices/%s/driver", bdf);
	if (ret)
		return ret;
	ret = pcisys__link_base(p, drv, len);
	if (ret == -ENOENT) {
		drv[0] = '\0';
		return 0;
	}
	return ret;
}

int pcisys__driver_loaded(const char *root, const char *drv)
{
	char p[4096];
	struct stat st;

	if (pcisys__path(p, sizeof(p), root, "bus/pci/drivers/%s", drv))
		return 0;
	return !stat(p, &st) && S_ISDIR(st.st_mode);
}
