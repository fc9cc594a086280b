/* SPDX-License-Identifier: MIT */
/*
 * PCI functions as the host's sysfs shows them, and the message buffers the
 * host-side checks fill: what devices/vfio (isolation checks) and
 * devices/sriov (the PF side) both need, so that neither includes the other.
 * Every function takes the sysfs root ("/sys" in production, a fake tree in
 * tests) and returns 0 or -errno unless it says otherwise.
 */
#ifndef MINIVMM_DEVICES_PCISYS_H
#define MINIVMM_DEVICES_PCISYS_H

#include <stdbool.h>
#include <stddef.h>

#define PCISYS_BDF_LEN 16   /* "0000:03:10.1" and the NUL */
#define PCISYS_NAME_LEN 64  /* driver and netdev names */

/* "0000:03:10.1" or "03:10.1" (any case) to canonical "0000:03:10.1"; -EINVAL otherwise */
int pcisys__parse_bdf(const char *s, char out[PCISYS_BDF_LEN]);

/* path = root + formatted relative path; -ENAMETOOLONG when it does not fit */
int pcisys__path(char *out, size_t outlen, const char *root, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* reads a small attribute file, trailing whitespace removed */
int pcisys__read_file(const char *path, char *buf, size_t len);
/* writes val to an existing attribute file (never creates one) */
int pcisys__write_file(const char *path, const char *val);
/* last component of a symlink's target ("igbvf" for driver -> ../igbvf) */
int pcisys__link_base(const char *path, char *buf, size_t len);
/* appends a formatted line to msg (separated by a newline); never overflows */
void pcisys__msg_add(char *msg, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* replaces msg with a formatted message; msg may be NULL */
void pcisys__msg_set(char *msg, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* true when bus/pci/devices/bdf exists (a directory) */
bool pcisys__dev_exists(const char *root, const char *bdf);
/* 1 when PCI driver drv is registered (bus/pci/drivers/drv), else 0 */
int pcisys__driver_loaded(const char *root, const char *drv);
/* 0 and the driver name ("" when none bound); -ENODEV when the device is absent */
int pcisys__pci_driver(const char *root, const char *bdf, char *drv, size_t len);

#endif
