/* SPDX-License-Identifier: MIT */
/*
 * Libraries opened when they are first needed (dlopen), not linked.
 *
 * A linked library costs resident memory in every VMM process, used or not:
 * its relocated data, its constructors' work, and its own dependencies
 * (GnuTLS brings seven). minivmm opens the ones only some runs need: GnuTLS
 * with TLS credentials (vmm/migtls.c), the decompressors and nettle while it
 * unpacks a kernel (vmm/x86/unpack.c), libext2fs while it reads the boot
 * files from a disk image (vmm/image.c), libkmod when it loads a module
 * (devices/sriov/kmod.c); those used at boot are closed after it. The build still checks their headers through
 * pkg-config, and each caller keeps a table of function pointers typed from
 * the library's own declarations (__typeof__), so a changed prototype is a
 * compile error, not a crash.
 */
#ifndef MINIVMM_VMM_DYNLIB_H
#define MINIVMM_VMM_DYNLIB_H

#include <stddef.h>
#include "vmm/util.h"

struct dynlib_sym {
	const char *name;
	void **fn;
};

/* one entry of a table whose fields are named like the library's functions */
#define DYNLIB_SYM(table, f) { #f, (void **)&(table).f }

/*
 * Opens soname (RTLD_NOW | RTLD_LOCAL) and resolves all n symbols into their
 * pointers, or none: on failure every pointer is NULL, the library closed,
 * and why says what was missing and which Debian package has it. Returns 0
 * with *handle for dynlib__close, or -ENOENT.
 */
int dynlib__open(const char *soname, const char *package, const struct dynlib_sym *syms,
		 size_t n, void **handle, char *why, size_t whylen) __must_check;

/* closes what dynlib__open opened (NULL: nothing); the pointers must not be used after */
void dynlib__close(void *handle);

#endif
