/* SPDX-License-Identifier: MIT */
/*
 * `minivmm doctor [VF]`: a host checklist for VF passthrough, one line per
 * check with OK, WARN or FAIL, and for each WARN/FAIL the fix.
 */
#ifndef MINIVMM_DEVICES_HOSTTOOL_DOCTOR_H
#define MINIVMM_DEVICES_HOSTTOOL_DOCTOR_H

#include <stdint.h>
#include <stdio.h>

struct doctor_opts {
	const char *sysfs_root;  /* "/sys" */
	const char *dev_root;    /* "/dev" */
	const char *proc_root;   /* "/proc" */
	const char *vf;          /* PCI address of the VF to check, or NULL */
	uint64_t pin_bytes;      /* guest RAM that will be pinned (memlock line) */
};

/* Prints the checklist to out; returns the number of FAIL lines (0: all good). */
int doctor__run(const struct doctor_opts *o, FILE *out);

#endif
