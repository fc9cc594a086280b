/* SPDX-License-Identifier: MIT */
/*
 * Decompressing a bzImage's kernel on the host (--decompress host).
 *
 * A bzImage's protected-mode part carries the kernel's vmlinux ELF
 * compressed (setup header fields payload_offset and payload_length, boot
 * protocol 2.08 and later) with its decompressed size appended as four
 * little-endian bytes; after the ELF come the relocations the kernel's own
 * decompressor applies for KASLR. Booting that ELF directly at its 64-bit
 * entry (as Firecracker boots a vmlinux) skips the guest's decompression;
 * minivmm then does the decompressor's KASLR itself (vmm/x86/kaslr.h).
 *
 * Formats: gzip (zlib), xz (liblzma), zstd (libzstd); the others (bzip2,
 * lzma, lzo, lz4) are refused with their name.
 */
#ifndef MINIVMM_VMM_X86_UNPACK_H
#define MINIVMM_VMM_X86_UNPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vmm/util.h"
#include "vmm/x86/boot.h"

/* the decompressed kernel may be this large at most (and no larger than the
 * setup header's init_size, the RAM the kernel says it needs to boot) */
#define X86_UNPACK_MAX (512 * MiB)

/*
 * Decompresses the payload of bzImage k (klen bytes) into a malloc'd buffer
 * (*out, *out_len: the ELF and what follows it); *format names the
 * compression ("xz"). Returns 0, -ENOEXEC (not a bzImage with a payload, or
 * a payload that is not an ELF), -EOPNOTSUPP (a compression not built in),
 * -EINVAL (damaged: sizes, stream errors, a size other than the appended
 * one), -EFBIG (over the bounds above) or -ENOMEM.
 */
int x86_unpack__bzimage(const void *k, size_t klen, void **out, size_t *out_len,
			const char **format) __must_check;

/*
 * The setup header fields minivmm's KASLR needs (vmm/x86/kaslr.h) into
 * ka->align and ka->init_size (ka->rnd untouched). Returns whether the
 * kernel may move: a bzImage of boot protocol 2.10 or later with
 * relocatable_kernel set.
 */
bool x86_unpack__kaslr_fields(const void *k, size_t klen, struct x86_boot_kaslr *ka);

/* a cache directory keeps this many kernels, the most recently used */
#define X86_UNPACK_CACHE_KEEP 4

/*
 * The default cache directory into buf: /var/cache/minivmm/kernels for
 * root, else $XDG_CACHE_HOME (or ~/.cache)/minivmm/kernels; its parents are
 * created (0700) when missing. Returns 0, or -errno (no home, too long,
 * a parent that cannot be made).
 */
int x86_unpack__default_cache(char *buf, size_t len) __must_check;

/*
 * The same through a cache directory (--kernel-cache DIR): the result is
 * kept as DIR/<SHA-256 of the bzImage>.elf, written to a temporary file and
 * renamed, so a later boot of the same kernel reads it instead of
 * decompressing. dir is created (mode 0700) when missing; it must belong to
 * this user and not be writable by group or others (-EPERM otherwise: anyone who can write there chooses the
 * guest's kernel; -ENOTDIR when it is not a directory). *hit says whether
 * the cache had it. A cache that cannot be written is logged and the boot
 * goes on. A hit is marked as used (its mtime); after a new entry, only the
 * X86_UNPACK_CACHE_KEEP most recently used stay. On a hit *out is a private
 * read-only mapping of the cache file (the segments are copied into guest
 * RAM from the page cache, with no read into a buffer first), else a
 * malloc'd buffer: release it with x86_unpack__release(*out, *out_len, *hit).
 */
int x86_unpack__cached(const void *k, size_t klen, const char *dir, void **out, size_t *out_len,
		       const char **format, bool *hit) __must_check;
/* frees what x86_unpack__cached returned: mapped is its *hit */
void x86_unpack__release(void *buf, size_t len, bool mapped);

#endif
