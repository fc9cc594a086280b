// SPDX-License-Identifier: MIT
/*
 * The disk image reader (vmm/image.c): the input is a whole raw disk image
 * (MBR with extended/logical partitions, GPT with its CRCs, or a bare
 * ext2/3/4 filesystem), put in a memfd and read as `minivmm guest.img`
 * reads it: image__find_fs, then image__load_boot_files (the filesystem
 * through libext2fs: /boot/vmlinuz, symlinks, vmlinuz-<version> ordering,
 * the initrd). libext2fs itself is the system's, not instrumented: only
 * minivmm's side of the calls is checked by the sanitizers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "vmm/image.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	fd = memfd_create("fuzz-image", 0);
	if (fd < 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct image_boot_files f;
	uint64_t off = 0;
	char desc[64];

	if (ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	if (image__find_fs(fd, size, &off, desc, sizeof(desc)) == 0) {
		if (off >= size || strnlen(desc, sizeof(desc)) == sizeof(desc))
			abort(); /* a filesystem outside the image, an unterminated description */
	}
	memset(&f, 0, sizeof(f));
	if (image__load_boot_files(path, &f) == 0) {
		if (!f.kernel || f.kernel_len > IMAGE_MAX_BOOT_FILE || f.fs_offset >= size)
			abort();
		/* the last byte the reader claims to have read is there (ASan checks) */
		if (f.kernel_len)
			(void)((volatile uint8_t *)f.kernel)[f.kernel_len - 1];
		if (f.initrd_len)
			(void)((volatile uint8_t *)f.initrd)[f.initrd_len - 1];
	}
	image__boot_files_free(&f);
	return 0;
}
