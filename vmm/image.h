/* SPDX-License-Identifier: MIT */
/*
 * Boot files from a raw disk image: finds the ext2/3/4 filesystem (bare, in an
 * MBR partition or in a GPT partition) and reads the kernel and initrd out of
 * it with libext2fs, so that `minivmm guest.img` boots without --kernel.
 *
 * Every offset and size read from the image is checked against the image size;
 * a hostile or damaged image gives -EINVAL/-ENOENT and a log line, never a
 * crash. The image is only ever opened read-only.
 */
#ifndef MINIVMM_VMM_IMAGE_H
#define MINIVMM_VMM_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/util.h"

/* largest kernel or initrd image__load_boot_files() reads */
#define IMAGE_MAX_BOOT_FILE (512 * MiB)

struct image_boot_files {
	void *kernel;		/* malloc'd (or mapped: kernel_mapped), kernel_len bytes */
	size_t kernel_len;
	bool kernel_mapped;	/* kernel is a private file mapping: munmap, not free */
	void *initrd;		/* malloc'd, or NULL when the image has none */
	size_t initrd_len;
	char kernel_path[256];	/* path in the filesystem, symlinks resolved */
	char initrd_path[256];	/* "" when there is no initrd */
	uint64_t fs_offset;	/* byte offset of the filesystem in the image */
	char fs_desc[64];	/* "whole disk", "MBR partition 1", "GPT partition 2" */
};

/*
 * Finds the best ext2/3/4 filesystem in the image open on fd (size bytes long):
 * a partition of a Linux type (MBR 0x83; GPT Linux filesystem, root-x86-64 or
 * extended boot) holding an ext superblock, else any partition holding one,
 * else a bare filesystem at offset 0. Logical partitions in an MBR extended
 * partition are followed. On success stores the byte offset and a description
 * (e.g. "GPT partition 2") and returns 0. Returns -EINVAL when the partition
 * table is damaged (bad CRC, entries outside the image) and nothing usable is
 * left, -ENOENT when there is simply no ext filesystem, -EIO on a read error.
 */
int image__find_fs(int fd, uint64_t size, uint64_t *offset, char *desc, size_t desclen)
	__must_check;

/*
 * Reads the kernel and initrd out of the disk image at path. Kernel: /boot/vmlinuz,
 * then /vmlinuz (symlinks followed, 8 levels at most), then the newest
 * /boot/vmlinuz-<version> (version order as `sort -V`; for a separate /boot
 * partition, /vmlinuz-<version> at its root). Initrd: initrd.img beside the
 * vmlinuz symlink used, else initrd.img-<version> beside the kernel; optional.
 * When several filesystems qualify, the first one (in image__find_fs order)
 * that yields a kernel is used; one that fails (damaged, symlink loop) is
 * logged and passed over, and its error returned if no other one has a kernel.
 * Files larger than IMAGE_MAX_BOOT_FILE are
 * refused. On success fills *out (free it with image__boot_files_free()) and
 * returns 0; on failure *out is left empty, the reason is logged and -errno is
 * returned (-ENOENT: no filesystem or no kernel; -ELOOP: symlink loop).
 */
int image__load_boot_files(const char *path, struct image_boot_files *out) __must_check;

/* frees the buffers and zeroes *f; safe on a zeroed or already freed struct */
void image__boot_files_free(struct image_boot_files *f);

#endif
