// SPDX-License-Identifier: MIT
/*
 * Kernel and initrd from a raw disk image.
 *
 * Two halves:
 *  - the partition scan (MBR with its extended-partition chain, GPT with CRC
 *    checks and the backup header) is parsed here by hand; every number read
 *    from the image is checked against the image size before it is used;
 *  - the filesystem is read with libext2fs (read-only unix_io_manager at
 *    "offset=N"). Path lookup is done here, component by component, so that
 *    symlinks are followed with a bound of 8 and the resolved path is known
 *    (the kernel's version suffix picks its initrd).
 */
#include "vmm/image.h"
#include "migration/stream.h" /* mig__crc32: the one CRC-32 of the tree */
#include "vmm/dynlib.h"
#include "vmm/log.h"
#include "vmm/sys.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ext2fs/ext2fs.h>

#define IMG "image"

/*
 * libext2fs is opened while the boot files are read and closed after
 * (vmm/dynlib.h): a VMM that booted keeps it unmapped. image__load_boot_files
 * holds image_ext2fs_lock around the open, the use and the close.
 */
static pthread_mutex_t image_ext2fs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	__typeof__(ext2fs_blocks_count) *ext2fs_blocks_count;
	__typeof__(ext2fs_bmap2) *ext2fs_bmap2;
	__typeof__(ext2fs_close_free) *ext2fs_close_free;
	__typeof__(ext2fs_dir_iterate2) *ext2fs_dir_iterate2;
	__typeof__(ext2fs_dirent_name_len) *ext2fs_dirent_name_len;
	__typeof__(ext2fs_file_close) *ext2fs_file_close;
	__typeof__(ext2fs_file_open2) *ext2fs_file_open2;
	__typeof__(ext2fs_file_read) *ext2fs_file_read;
	__typeof__(ext2fs_is_fast_symlink) *ext2fs_is_fast_symlink;
	__typeof__(ext2fs_lookup) *ext2fs_lookup;
	__typeof__(ext2fs_open2) *ext2fs_open2;
	__typeof__(ext2fs_read_inode) *ext2fs_read_inode;
	__typeof__(unix_io_manager) *unix_io_manager;
	__typeof__(et_ext2_error_table) *et_ext2_error_table;
} ie;
static const struct dynlib_sym ie_syms[] = {
	DYNLIB_SYM(ie, ext2fs_blocks_count),
	DYNLIB_SYM(ie, ext2fs_bmap2),
	DYNLIB_SYM(ie, ext2fs_close_free),
	DYNLIB_SYM(ie, ext2fs_dir_iterate2),
	DYNLIB_SYM(ie, ext2fs_dirent_name_len),
	DYNLIB_SYM(ie, ext2fs_file_close),
	DYNLIB_SYM(ie, ext2fs_file_open2),
	DYNLIB_SYM(ie, ext2fs_file_read),
	DYNLIB_SYM(ie, ext2fs_is_fast_symlink),
	DYNLIB_SYM(ie, ext2fs_lookup),
	DYNLIB_SYM(ie, ext2fs_open2),
	DYNLIB_SYM(ie, ext2fs_read_inode),
	DYNLIB_SYM(ie, unix_io_manager),
	DYNLIB_SYM(ie, et_ext2_error_table),
};

#define MBR_SIG_OFF 510
#define MBR_PART_OFF 446
#define MBR_TYPE_EXT_CHS 0x05
#define MBR_TYPE_EXT_LBA 0x0f
#define MBR_TYPE_EXT_LINUX 0x85
#define MBR_TYPE_LINUX 0x83
#define MBR_TYPE_GPT 0xee
#define MBR_MAX_LOGICAL 128

#define GPT_HDR_MIN 92
#define GPT_ENTRY_MIN 128
#define GPT_ENTRY_MAX 1024
#define GPT_ARRAY_MAX (1 * MiB)

#define EXT_MAGIC_OFF (1024 + 56)
#define EXT_MAGIC 0xEF53
#define EXT_MIN_LEN 2048

#define IMAGE_MAX_CANDS 16
#define IMAGE_MAX_LINKS 8
#define IMAGE_PATH_MAX 4096
#define IMAGE_READ_RUN_BLOCKS 4096 /* blocks read by one pread() at most (16 MiB of 4 KiB) */
#define IMAGE_MAX_VERSIONS 256

/* ---------------------------------------------------------------- scan */

struct image_cand {
	uint64_t offset;
	uint64_t len;
	int prio;		/* 0: Linux partition type, 1: other type, 2: whole disk */
	char desc[64];
};

struct image_scan {
	int fd;
	uint64_t size;
	struct image_cand cand[IMAGE_MAX_CANDS];
	unsigned int n;
	bool damaged;		/* some table or entry was invalid */
	int io_err;
};

/* GPT type GUIDs in their on-disk (mixed-endian) byte order */
static const uint8_t gpt_linux_types[][16] = {
	/* Linux filesystem 0FC63DAF-8483-4772-8E79-3D69D8477DE4 */
	{ 0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47,
	  0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4 },
	/* root x86-64 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 */
	{ 0xe3, 0xbc, 0x68, 0x4f, 0xcd, 0xe8, 0xb1, 0x4d,
	  0x96, 0xe7, 0xfb, 0xca, 0xf9, 0x84, 0xb7, 0x09 },
	/* extended boot loader BC13C2FF-59E6-4262-A352-B275FD6F7172 */
	{ 0xff, 0xc2, 0x13, 0xbc, 0xe6, 0x59, 0x62, 0x42,
	  0xa3, 0x52, 0xb2, 0x75, 0xfd, 0x6f, 0x71, 0x72 },
};

static uint32_t image_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t image_le64(const uint8_t *p)
{
	return (uint64_t)image_le32(p) | (uint64_t)image_le32(p + 4) << 32;
}

/* reads exactly len bytes at off; -EINVAL when that is past the image end */
static int image_pread(struct image_scan *s, void *buf, size_t len, uint64_t off)
{
	uint64_t end;
	size_t done = 0;

	if (add_overflows(off, len, &end) || end > s->size)
		return -EINVAL;
	while (done < len) {
		ssize_t r = pread(s->fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			s->io_err = r < 0 ? -errno : -EIO;
			log_err(IMG, "read of %zu bytes at offset %llu failed: %s", len,
				(unsigned long long)off, r < 0 ? strerror(errno) : "unexpected end of file");
			return s->io_err;
		}
		done += (size_t)r;
	}
	return 0;
}

static bool image_has_ext_sb(struct image_scan *s, uint64_t off, uint64_t len)
{
	uint8_t m[2];

	if (len < EXT_MIN_LEN || image_pread(s, m, sizeof(m), off + EXT_MAGIC_OFF))
		return false;
	return (m[0] | m[1] << 8) == EXT_MAGIC;
}

static void image_add_cand(struct image_scan *s, uint64_t off, uint64_t len, int prio,
			   const char *desc)
{
	struct image_cand *c;
	unsigned int i;

	if (s->n == IMAGE_MAX_CANDS) {
		log_warn(IMG, "%s: more than %u ext filesystems; ignored", desc, IMAGE_MAX_CANDS);
		return;
	}
	/* keep the list ordered by prio, stable within one prio */
	for (i = s->n; i > 0 && s->cand[i - 1].prio > prio; i--)
		s->cand[i] = s->cand[i - 1];
	c = &s->cand[i];
	c->offset = off;
	c->len = len;
	c->prio = prio;
	snprintf(c->desc, sizeof(c->desc), "%s", desc);
	s->n++;
}

/* a partition of count sectors of lbs bytes at sector start */
static void image_check_part(struct image_scan *s, uint64_t start, uint64_t count,
			     uint64_t lbs, bool linux_type, const char *desc)
{
	uint64_t off, len, end;

	if (!start || !count) {
		log_warn(IMG, "%s: starts at sector %llu with %llu sectors; ignored", desc,
			 (unsigned long long)start, (unsigned long long)count);
		s->damaged = true;
		return;
	}
	if (__builtin_mul_overflow(start, lbs, &off) || __builtin_mul_overflow(count, lbs, &len) ||
	    add_overflows(off, len, &end) || end > s->size) {
		log_warn(IMG, "%s (sector %llu, %llu sectors of %llu bytes) extends beyond the end of the image (%llu bytes); ignored",
			 desc, (unsigned long long)start, (unsigned long long)count,
			 (unsigned long long)lbs, (unsigned long long)s->size);
		s->damaged = true;
		return;
	}
	if (image_has_ext_sb(s, off, len)) {
		log_debug(IMG, "%s: ext2/3/4 filesystem at offset %llu", desc, (unsigned long long)off);
		image_add_cand(s, off, len, linux_type ? 0 : 1, desc);
	} else if (linux_type) {
		log_info(IMG, "%s: Linux partition type but no ext2/3/4 superblock (only ext2/3/4 can be read); skipped",
			 desc);
	}
}

static bool image_mbr_is_ext(uint8_t type)
{
	return type == MBR_TYPE_EXT_CHS || type == MBR_TYPE_EXT_LBA || type == MBR_TYPE_EXT_LINUX;
}

/* follows the chain of EBRs in the extended partition [ext_start, +ext_count) */
static void image_scan_ebr(struct image_scan *s, uint64_t ext_start, uint64_t ext_count)
{
	uint64_t ext_end = ext_start + ext_count; /* both < 2^32 */
	uint64_t ebr = ext_start;
	uint8_t sec[512];
	char desc[64];

	for (unsigned int k = 0; k < MBR_MAX_LOGICAL; k++) {
		const uint8_t *e0 = sec + MBR_PART_OFF, *e1 = e0 + 16;
		uint64_t next;

		if (ebr >= ext_end || image_pread(s, sec, sizeof(sec), ebr * 512)) {
			log_warn(IMG, "MBR: extended boot record at sector %llu is outside the extended partition or the image; chain ignored",
				 (unsigned long long)ebr);
			s->damaged = true;
			return;
		}
		if (sec[MBR_SIG_OFF] != 0x55 || sec[MBR_SIG_OFF + 1] != 0xaa) {
			log_warn(IMG, "MBR: extended boot record at sector %llu has no 0x55AA signature; chain ignored",
				 (unsigned long long)ebr);
			s->damaged = true;
			return;
		}
		if (e0[4] && image_le32(e0 + 12)) {
			uint64_t start = ebr + image_le32(e0 + 8);
			uint64_t count = image_le32(e0 + 12);

			snprintf(desc, sizeof(desc), "MBR partition %u", 5 + k);
			if (start + count > ext_end || start <= ebr) {
				log_warn(IMG, "%s lies outside its extended partition; ignored", desc);
				s->damaged = true;
			} else {
				image_check_part(s, start, count, 512, e0[4] == MBR_TYPE_LINUX, desc);
			}
		}
		if (!image_mbr_is_ext(e1[4]) || !image_le32(e1 + 8))
			return;
		next = ext_start + image_le32(e1 + 8);
		if (next <= ebr) {
			log_warn(IMG, "MBR: extended boot record chain goes backwards at sector %llu; rest ignored",
				 (unsigned long long)ebr);
			s->damaged = true;
			return;
		}
		ebr = next;
	}
	log_warn(IMG, "MBR: more than %u logical partitions; rest ignored", MBR_MAX_LOGICAL);
}

static void image_scan_mbr(struct image_scan *s, const uint8_t *mbr)
{
	char desc[64];

	for (unsigned int i = 0; i < 4; i++) {
		const uint8_t *e = mbr + MBR_PART_OFF + 16 * i;
		uint8_t type = e[4];
		uint64_t start = image_le32(e + 8), count = image_le32(e + 12);

		if (!type || type == MBR_TYPE_GPT)
			continue;
		if (image_mbr_is_ext(type)) {
			image_scan_ebr(s, start, count);
			continue;
		}
		snprintf(desc, sizeof(desc), "MBR partition %u", i + 1);
		image_check_part(s, start, count, 512, type == MBR_TYPE_LINUX, desc);
	}
}

/*
 * Checks the GPT header at lba (lbs-byte sectors) and its entry array; on
 * success returns 0 with the array in *arr (malloc'd). why gets the reason
 * for a failure.
 */
static int image_gpt_header(struct image_scan *s, uint64_t lbs, uint64_t lba, uint8_t **arr,
			    uint32_t *nent, uint32_t *esz, const char **why)
{
	uint8_t *hdr;
	uint64_t entries_lba, arr_off, arr_len;
	uint32_t hsize, crc;
	int ret = -EINVAL;

	*arr = NULL;
	hdr = malloc(lbs);
	if (!hdr)
		return -ENOMEM;
	if (image_pread(s, hdr, lbs, lba * lbs)) {
		*why = "outside the image";
		goto out;
	}
	if (memcmp(hdr, "EFI PART", 8)) {
		*why = "no \"EFI PART\" signature";
		goto out;
	}
	hsize = image_le32(hdr + 12);
	if (hsize < GPT_HDR_MIN || hsize > lbs) {
		*why = "bad header size";
		goto out;
	}
	crc = image_le32(hdr + 16);
	memset(hdr + 16, 0, 4);
	if (mig__crc32(0, hdr, hsize) != crc) {
		*why = "bad header CRC";
		goto out;
	}
	if (image_le64(hdr + 24) != lba) {
		*why = "header records another LBA for itself";
		goto out;
	}
	entries_lba = image_le64(hdr + 72);
	*nent = image_le32(hdr + 80);
	*esz = image_le32(hdr + 84);
	if (*esz < GPT_ENTRY_MIN || *esz > GPT_ENTRY_MAX || *esz % 8) {
		*why = "bad partition entry size";
		goto out;
	}
	arr_len = (uint64_t)*nent * *esz;
	if (!*nent || arr_len > GPT_ARRAY_MAX) {
		*why = "bad number of partition entries";
		goto out;
	}
	if (__builtin_mul_overflow(entries_lba, lbs, &arr_off) || entries_lba < 2 ||
	    arr_off + arr_len < arr_off || arr_off + arr_len > s->size) {
		*why = "partition entry array outside the image";
		goto out;
	}
	*arr = malloc(arr_len);
	if (!*arr) {
		ret = -ENOMEM;
		goto out;
	}
	if (image_pread(s, *arr, arr_len, arr_off)) {
		*why = "partition entry array unreadable";
		goto err_arr;
	}
	if (mig__crc32(0, *arr, arr_len) != image_le32(hdr + 88)) {
		*why = "bad partition entry array CRC";
		goto err_arr;
	}
	ret = 0;
	goto out;
err_arr:
	free(*arr);
	*arr = NULL;
out:
	free(hdr);
	return ret;
}

static void image_gpt_entries(struct image_scan *s, uint64_t lbs, const uint8_t *arr,
			      uint32_t nent, uint32_t esz)
{
	static const uint8_t zero[16];
	char desc[64];

	for (uint32_t i = 0; i < nent; i++) {
		const uint8_t *e = arr + (size_t)i * esz;
		uint64_t first = image_le64(e + 32), last = image_le64(e + 40);
		bool linux_type = false;

		if (!memcmp(e, zero, 16))
			continue;
		snprintf(desc, sizeof(desc), "GPT partition %u", i + 1);
		if (last < first || last - first == UINT64_MAX) {
			log_warn(IMG, "%s: ends (LBA %llu) before it starts (LBA %llu); ignored", desc,
				 (unsigned long long)last, (unsigned long long)first);
			s->damaged = true;
			continue;
		}
		for (size_t t = 0; t < ARRAY_SIZE(gpt_linux_types); t++)
			linux_type |= !memcmp(e, gpt_linux_types[t], 16);
		image_check_part(s, first, last - first + 1, lbs, linux_type, desc);
	}
}

/* returns 0 when a valid GPT was found (and scanned), else -errno */
static int image_scan_gpt(struct image_scan *s)
{
	static const uint64_t sizes[] = { 512, 4096 };

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		uint64_t lbs = sizes[i], backup = s->size / lbs;
		const char *why1 = "", *why2 = "outside the image";
		uint32_t nent, esz;
		uint8_t *arr;
		int ret;

		ret = image_gpt_header(s, lbs, 1, &arr, &nent, &esz, &why1);
		if (ret == -ENOMEM)
			return ret;
		if (ret && backup >= 3) {
			backup--;
			ret = image_gpt_header(s, lbs, backup, &arr, &nent, &esz, &why2);
			if (ret == -ENOMEM)
				return ret;
			if (!ret)
				log_warn(IMG, "GPT: primary header damaged (%s); using the backup header at LBA %llu",
					 why1, (unsigned long long)backup);
		}
		if (!ret) {
			image_gpt_entries(s, lbs, arr, nent, esz);
			free(arr);
			return 0;
		}
		/* 4096-byte sectors are only a guess: stay quiet unless it is GPT at all */
		if (lbs == 512 || strcmp(why1, "no \"EFI PART\" signature"))
			log_warn(IMG, "GPT (%llu-byte sectors): primary header: %s; backup header: %s",
				 (unsigned long long)lbs, why1, why2);
	}
	return -EINVAL;
}

static int image_scan(struct image_scan *s, int fd, uint64_t size)
{
	uint8_t mbr[512];

	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->size = size;

	if (size >= sizeof(mbr)) {
		if (image_pread(s, mbr, sizeof(mbr), 0))
			return s->io_err ? s->io_err : -EIO;
		if (mbr[MBR_SIG_OFF] == 0x55 && mbr[MBR_SIG_OFF + 1] == 0xaa) {
			bool protective = false;

			for (unsigned int i = 0; i < 4; i++)
				protective |= mbr[MBR_PART_OFF + 16 * i + 4] == MBR_TYPE_GPT;
			if (protective) {
				int ret = image_scan_gpt(s);

				if (ret == -ENOMEM)
					return ret;
				if (ret) {
					s->damaged = true;
					/* hybrid MBRs: the other entries may still be usable */
					image_scan_mbr(s, mbr);
				}
			} else {
				image_scan_mbr(s, mbr);
			}
		}
	}
	if (image_has_ext_sb(s, 0, size))
		image_add_cand(s, 0, size, 2, "whole disk");
	if (s->io_err)
		return s->io_err;
	if (s->n)
		return 0;
	return s->damaged ? -EINVAL : -ENOENT;
}

int image__find_fs(int fd, uint64_t size, uint64_t *offset, char *desc, size_t desclen)
{
	struct image_scan *s;
	int ret;

	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	ret = image_scan(s, fd, size);
	if (!ret) {
		*offset = s->cand[0].offset;
		if (desc && desclen)
			snprintf(desc, desclen, "%s", s->cand[0].desc);
	} else if (ret == -EINVAL) {
		log_err(IMG, "damaged partition table and no usable ext2/3/4 filesystem");
	} else if (ret == -ENOENT) {
		log_err(IMG, "no ext2/3/4 filesystem (bare, in an MBR or in a GPT partition)");
	}
	free(s);
	return ret;
}

/* ---------------------------------------------------------------- filesystem */

struct image_fs {
	ext2_filsys fs;
	int fd;			/* the image, for reading file data directly */
	uint64_t base;		/* the filesystem's offset in the image */
	const char *img;	/* image path, for messages */
	const char *desc;	/* "GPT partition 2" */
	const char *type;	/* "ext4" */
};

static const char *image_strerror(errcode_t e)
{
	long base = ie.et_ext2_error_table->base;

	if (e >= base && e < base + ie.et_ext2_error_table->n_msgs)
		return ie.et_ext2_error_table->msgs[e - base];
	if (e > 0 && e < MAX_ERRNO)
		return strerror((int)e);
	return "unknown libext2fs error";
}

static int image_errno(errcode_t e)
{
	if (e > 0 && e < MAX_ERRNO)
		return -(int)e;
	switch (e) {
	case EXT2_ET_NO_MEMORY:
		return -ENOMEM;
	case EXT2_ET_FILE_NOT_FOUND:
		return -ENOENT;
	case EXT2_ET_NO_DIRECTORY:
		return -ENOTDIR;
	case EXT2_ET_SYMLINK_LOOP:
		return -ELOOP;
	case EXT2_ET_SHORT_READ:
		return -EIO;
	default:
		return -EINVAL;
	}
}

static int image_read_inode(struct image_fs *ifs, ext2_ino_t ino, struct ext2_inode *inode)
{
	errcode_t e = ie.ext2fs_read_inode(ifs->fs, ino, inode);

	if (e) {
		log_err(IMG, "%s: %s: cannot read inode %u: %s", ifs->img, ifs->desc, ino,
			image_strerror(e));
		return image_errno(e);
	}
	return 0;
}

/* reads the whole of inode ino (size bytes) into buf through ie.ext2fs_file_read() */
static int image_read_data_file(struct image_fs *ifs, ext2_ino_t ino, struct ext2_inode *inode,
				void *buf, uint64_t size, const char *what)
{
	ext2_file_t file;
	uint64_t done = 0;
	errcode_t e;

	e = ie.ext2fs_file_open2(ifs->fs, ino, inode, 0, &file);
	if (e)
		goto err;
	while (done < size) {
		unsigned int chunk = (unsigned int)MIN(size - done, 16 * MiB), got = 0;

		e = ie.ext2fs_file_read(file, (char *)buf + done, chunk, &got);
		if (e)
			break;
		if (!got) {
			e = EXT2_ET_SHORT_READ;
			break;
		}
		done += got;
	}
	ie.ext2fs_file_close(file);
	if (!e)
		return 0;
err:
	log_err(IMG, "%s: cannot read %s in %s filesystem at %s: %s", ifs->img, what, ifs->type,
		ifs->desc, image_strerror(e));
	return image_errno(e);
}

/*
 * Reads the whole of inode ino (size bytes) into buf. Its blocks are mapped
 * with ie.ext2fs_bmap2() (extents or block maps) and each run of physically
 * contiguous blocks is read with one pread() from the image, instead of one
 * read per block through ie.ext2fs_file_read(): 2437 reads of 4 KiB for a
 * Debian kernel and its initrd, and each system call is dear in a nested
 * guest. Holes and unwritten extents read as zeros; a block outside the
 * filesystem is refused. Inline data goes through ie.ext2fs_file_read().
 */
static int image_read_data(struct image_fs *ifs, ext2_ino_t ino, struct ext2_inode *inode,
			   void *buf, uint64_t size, const char *what)
{
	uint64_t bs = ifs->fs->blocksize, nblk = size / bs + !!(size % bs), lblk = 0;
	uint64_t fs_blocks = ie.ext2fs_blocks_count(ifs->fs->super);
	errcode_t e = 0;

	if (inode->i_flags & EXT4_INLINE_DATA_FL)
		return image_read_data_file(ifs, ino, inode, buf, size, what);
	while (lblk < nblk) {
		blk64_t p0 = 0, p;
		uint64_t run = 1, off, len;
		int flags = 0, f;
		bool zero;

		e = ie.ext2fs_bmap2(ifs->fs, ino, inode, NULL, 0, lblk, &flags, &p0);
		if (e)
			goto err;
		zero = !p0 || (flags & BMAP_RET_UNINIT);
		while (lblk + run < nblk && run < IMAGE_READ_RUN_BLOCKS) {
			f = 0;
			p = 0;
			e = ie.ext2fs_bmap2(ifs->fs, ino, inode, NULL, 0, lblk + run, &f, &p);
			if (e)
				goto err;
			if (zero ? (p && !(f & BMAP_RET_UNINIT)) :
				   (p != p0 + run || (f & BMAP_RET_UNINIT)))
				break;
			run++;
		}
		off = lblk * bs;
		len = MIN(run * bs, size - off);
		if (zero) {
			memset((char *)buf + off, 0, len);
		} else if (p0 >= fs_blocks || run > fs_blocks - p0) {
			log_err(IMG, "%s: %s in %s filesystem at %s: blocks %llu..%llu lie outside the filesystem's %llu blocks",
				ifs->img, what, ifs->type, ifs->desc, (unsigned long long)p0,
				(unsigned long long)(p0 + run - 1), (unsigned long long)fs_blocks);
			return -EINVAL;
		} else {
			ssize_t r = sys__pread_full(ifs->fd, (char *)buf + off, len,
						    (off_t)(ifs->base + p0 * bs));

			if (r < 0 || (uint64_t)r != len) {
				e = r < 0 ? (errcode_t)-r : EXT2_ET_SHORT_READ;
				goto err;
			}
		}
		lblk += run;
	}
	return 0;
err:
	log_err(IMG, "%s: cannot read %s in %s filesystem at %s: %s", ifs->img, what, ifs->type,
		ifs->desc, image_strerror(e));
	return image_errno(e);
}

/* the target of symlink ino, NUL-terminated, into buf of IMAGE_PATH_MAX bytes */
static int image_readlink(struct image_fs *ifs, ext2_ino_t ino, struct ext2_inode *inode,
			  char *buf, const char *what)
{
	uint64_t size = EXT2_I_SIZE(inode);
	int ret;

	if (!size || size >= IMAGE_PATH_MAX) {
		log_err(IMG, "%s: symlink %s in %s filesystem at %s has a bad length (%llu)", ifs->img,
			what, ifs->type, ifs->desc, (unsigned long long)size);
		return -EINVAL;
	}
	if (ie.ext2fs_is_fast_symlink(inode) && size < sizeof(inode->i_block)) {
		memcpy(buf, inode->i_block, size);
	} else {
		ret = image_read_data(ifs, ino, inode, buf, size, what);
		if (ret)
			return ret;
	}
	buf[size] = '\0';
	if (strlen(buf) != size) {
		log_err(IMG, "%s: symlink %s in %s filesystem at %s holds a NUL byte", ifs->img, what,
			ifs->type, ifs->desc);
		return -EINVAL;
	}
	return 0;
}

static int image_canon_push(char *canon, size_t canonlen, const char *name, size_t len)
{
	size_t clen = strlen(canon);

	if (clen + 1 + len >= canonlen)
		return -ENAMETOOLONG;
	canon[clen] = '/';
	memcpy(canon + clen + 1, name, len);
	canon[clen + 1 + len] = '\0';
	return 0;
}

static void image_canon_pop(char *canon)
{
	char *slash = strrchr(canon, '/');

	if (slash)
		*slash = '\0';
}

/*
 * Looks up absolute path, following symlinks anywhere in it (at most
 * IMAGE_MAX_LINKS). On success stores the inode and the resolved path
 * (canonical, < canonlen bytes). -ENOENT/-ENOTDIR are returned without a
 * message (the caller decides whether "not there" is an error); *links tells
 * how many symlinks were followed. Other errors are logged.
 */
static int image_resolve(struct image_fs *ifs, const char *path, ext2_ino_t *ino_out,
			 struct ext2_inode *inode_out, char *canon, size_t canonlen,
			 unsigned int *links)
{
	char *work, *link;
	const char *rest;
	ext2_ino_t cur = EXT2_ROOT_INO;
	int ret;

	*links = 0;
	canon[0] = '\0';
	if (strlen(path) >= IMAGE_PATH_MAX)
		return -ENAMETOOLONG;
	work = malloc(IMAGE_PATH_MAX);
	link = malloc(IMAGE_PATH_MAX);
	if (!work || !link) {
		ret = -ENOMEM;
		goto out;
	}
	strcpy(work, path);
	rest = work;

	for (;;) {
		struct ext2_inode inode;
		const char *name;
		ext2_ino_t child;
		size_t len;
		errcode_t e;

		while (*rest == '/')
			rest++;
		if (!*rest) {
			/* the path names a directory: "/", "/boot/", "x/.." */
			ret = image_read_inode(ifs, cur, inode_out);
			if (!ret)
				*ino_out = cur;
			goto out;
		}
		name = rest;
		len = strcspn(rest, "/");
		rest += len;
		if (len == 1 && name[0] == '.')
			continue;
		if (len > EXT2_NAME_LEN) {
			ret = -ENAMETOOLONG;
			goto out;
		}
		e = ie.ext2fs_lookup(ifs->fs, cur, name, (int)len, NULL, &child);
		if (e) {
			ret = image_errno(e);
			if (ret != -ENOENT && ret != -ENOTDIR)
				log_err(IMG, "%s: looking up %s in %s filesystem at %s: %s", ifs->img,
					path, ifs->type, ifs->desc, image_strerror(e));
			goto out;
		}
		if (len == 2 && name[0] == '.' && name[1] == '.') {
			cur = child;
			image_canon_pop(canon);
			continue;
		}
		ret = image_read_inode(ifs, child, &inode);
		if (ret)
			goto out;
		if (LINUX_S_ISLNK(inode.i_mode)) {
			if (++*links > IMAGE_MAX_LINKS) {
				log_err(IMG, "%s: %s in %s filesystem at %s: more than %u levels of symlinks (a loop?)",
					ifs->img, path, ifs->type, ifs->desc, IMAGE_MAX_LINKS);
				ret = -ELOOP;
				goto out;
			}
			ret = image_readlink(ifs, child, &inode, link, path);
			if (ret)
				goto out;
			/* the rest of the path goes after the link's target */
			if (strlen(link) + strlen(rest) >= IMAGE_PATH_MAX) {
				ret = -ENAMETOOLONG;
				goto out;
			}
			strcat(link, rest);
			strcpy(work, link);
			rest = work;
			if (*rest == '/') {
				cur = EXT2_ROOT_INO;
				canon[0] = '\0';
			}
			continue;
		}
		ret = image_canon_push(canon, canonlen, name, len);
		if (ret)
			goto out;
		if (rest[strspn(rest, "/")]) {
			if (!LINUX_S_ISDIR(inode.i_mode)) {
				ret = -ENOTDIR;
				goto out;
			}
			cur = child;
			continue;
		}
		*ino_out = child;
		*inode_out = inode;
		ret = 0;
		goto out;
	}
out:
	if (!ret && !canon[0])
		strcpy(canon, "/");
	free(work);
	free(link);
	return ret;
}

/* a file found in the filesystem */
struct image_file {
	ext2_ino_t ino;
	struct ext2_inode inode;
	char path[256];		/* resolved */
};

/*
 * Looks up path and wants a regular file: 0 when found, -ENOENT when absent (a
 * dangling symlink or a non-regular file is warned about), else -errno (logged).
 */
static int image_lookup_file(struct image_fs *ifs, const char *path, struct image_file *f)
{
	unsigned int links;
	int ret;

	ret = image_resolve(ifs, path, &f->ino, &f->inode, f->path, sizeof(f->path), &links);
	if (ret == -ENOENT || ret == -ENOTDIR) {
		if (links)
			log_warn(IMG, "%s: %s in %s filesystem at %s is a dangling symlink; ignored",
				 ifs->img, path, ifs->type, ifs->desc);
		return -ENOENT;
	}
	if (ret == -ENAMETOOLONG) {
		log_err(IMG, "%s: %s in %s filesystem at %s: path too long after following symlinks",
			ifs->img, path, ifs->type, ifs->desc);
		return ret;
	}
	if (ret)
		return ret;
	if (!LINUX_S_ISREG(f->inode.i_mode)) {
		log_warn(IMG, "%s: %s in %s filesystem at %s is not a regular file; ignored", ifs->img,
			 path, ifs->type, ifs->desc);
		return -ENOENT;
	}
	return 0;
}

/*
 * Version order as `sort -V` / dpkg: runs of non-digits compare with letters
 * before other characters and '~' before everything, runs of digits compare
 * as numbers.
 */
static int image_verorder(unsigned char c)
{
	if (isdigit(c))
		return 0;
	if (isalpha(c))
		return c;
	if (c == '~')
		return -1;
	if (c)
		return c + 256;
	return 0;
}

static int image_vercmp(const char *a, const char *b)
{
	while (*a || *b) {
		int first_diff = 0;

		while ((*a && !isdigit((unsigned char)*a)) || (*b && !isdigit((unsigned char)*b))) {
			int ac = image_verorder((unsigned char)*a);
			int bc = image_verorder((unsigned char)*b);

			if (ac != bc)
				return ac - bc;
			a++;
			b++;
		}
		while (*a == '0')
			a++;
		while (*b == '0')
			b++;
		while (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
			if (!first_diff)
				first_diff = *a - *b;
			a++;
			b++;
		}
		if (isdigit((unsigned char)*a))
			return 1;
		if (isdigit((unsigned char)*b))
			return -1;
		if (first_diff)
			return first_diff;
	}
	return 0;
}

static int image_vercmp_desc(const void *pa, const void *pb)
{
	const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
	int r = image_vercmp(b, a);

	return r ? r : strcmp(b, a);
}

struct image_versions {
	char *names[IMAGE_MAX_VERSIONS];
	unsigned int n;
	bool overflow;
	bool nomem;
};

static bool image_skip_name(const char *name, size_t len)
{
	static const char *const suffixes[] = { ".old", ".bak", "~", ".sig", ".efi.signed" };

	if (memmem(name, len, ".dpkg-", 6))
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		size_t sl = strlen(suffixes[i]);

		if (len >= sl && !memcmp(name + len - sl, suffixes[i], sl))
			return true;
	}
	return false;
}

static int image_dir_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *dirent, int offset,
			int blocksize, char *buf, void *priv)
{
	static const char prefix[] = "vmlinuz-";
	struct image_versions *v = priv;
	size_t len = (size_t)ie.ext2fs_dirent_name_len(dirent);
	char *name;

	if (len <= sizeof(prefix) - 1 || memcmp(dirent->name, prefix, sizeof(prefix) - 1) ||
	    memchr(dirent->name, '\0', len) || image_skip_name(dirent->name, len))
		return 0;
	if (v->n == IMAGE_MAX_VERSIONS) {
		v->overflow = true;
		return DIRENT_ABORT;
	}
	name = strndup(dirent->name, len);
	if (!name) {
		v->nomem = true;
		return DIRENT_ABORT;
	}
	v->names[v->n++] = name;
	return 0;
}

/* looks up a directory: 0, -ENOENT when absent or not a directory, else -errno */
static int image_lookup_dir(struct image_fs *ifs, const char *path, struct image_file *d)
{
	unsigned int links;
	int ret;

	ret = image_resolve(ifs, path, &d->ino, &d->inode, d->path, sizeof(d->path), &links);
	if (ret == -ENOENT || ret == -ENOTDIR || (!ret && !LINUX_S_ISDIR(d->inode.i_mode)))
		return -ENOENT;
	return ret;
}

/* the newest dir/vmlinuz-* that is a regular file */
static int image_newest_kernel(struct image_fs *ifs, const char *dir, struct image_file *k)
{
	struct image_versions *v;
	struct image_file d;
	char path[512];
	errcode_t e;
	int ret;

	ret = image_lookup_dir(ifs, dir, &d);
	if (ret)
		return ret;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	e = ie.ext2fs_dir_iterate2(ifs->fs, d.ino, 0, NULL, image_dir_cb, v);
	if (e) {
		log_err(IMG, "%s: cannot list %s in %s filesystem at %s: %s", ifs->img, dir, ifs->type,
			ifs->desc, image_strerror(e));
		ret = image_errno(e);
		goto out;
	}
	if (v->nomem) {
		ret = -ENOMEM;
		goto out;
	}
	if (v->overflow)
		log_warn(IMG, "%s: more than %u vmlinuz-* files in %s; only the first ones are considered",
			 ifs->img, IMAGE_MAX_VERSIONS, dir);
	qsort(v->names, v->n, sizeof(v->names[0]), image_vercmp_desc);
	ret = -ENOENT;
	for (unsigned int i = 0; i < v->n && ret == -ENOENT; i++) {
		snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") ? dir : "", v->names[i]);
		ret = image_lookup_file(ifs, path, k);
	}
out:
	for (unsigned int i = 0; i < v->n; i++)
		free(v->names[i]);
	free(v);
	return ret;
}

struct image_kernel {
	struct image_file f;
	bool via_link;		/* found through a "vmlinuz" symlink in link_dir */
	const char *link_dir;
	char version[256];	/* "6.1.0-10-amd64" from ".../vmlinuz-6.1.0-10-amd64", or "" */
};

static int image_find_kernel(struct image_fs *ifs, struct image_kernel *k)
{
	static const struct {
		const char *path, *dir;
	} links[] = { { "/boot/vmlinuz", "/boot" }, { "/vmlinuz", "" } };
	/* "/": the root of a separate /boot partition */
	static const char *const dirs[] = { "/boot", "/" };
	const char *base;
	int ret;

	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
		ret = image_lookup_file(ifs, links[i].path, &k->f);
		if (!ret) {
			k->via_link = true;
			k->link_dir = links[i].dir;
			goto found;
		}
		if (ret != -ENOENT)
			return ret;
	}
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		ret = image_newest_kernel(ifs, dirs[i], &k->f);
		if (!ret)
			goto found;
		if (ret != -ENOENT)
			return ret;
	}
	return -ENOENT;
found:
	base = strrchr(k->f.path, '/');
	base = base ? base + 1 : k->f.path;
	if (!strncmp(base, "vmlinuz-", 8))
		snprintf(k->version, sizeof(k->version), "%s", base + 8);
	return 0;
}

/*
 * The initrd for kernel k: initrd.img-<version> (or the initramfs-/initrd-
 * spellings of other distributions) beside the kernel, else initrd.img beside
 * the vmlinuz symlink the kernel was found through. -ENOENT when none.
 */
static int image_find_initrd(struct image_fs *ifs, const struct image_kernel *k,
			     struct image_file *f)
{
	static const struct {
		const char *pre, *suf;
	} names[] = {
		{ "initrd.img-", "" }, { "initramfs-", ".img" }, { "initrd-", ".img" }, { "initrd-", "" },
	};
	char kdir[256], path[600];
	char *slash;
	int ret;

	snprintf(kdir, sizeof(kdir), "%s", k->f.path);
	slash = strrchr(kdir, '/');
	if (slash)
		*slash = '\0';
	if (k->version[0]) {
		for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
			snprintf(path, sizeof(path), "%s/%s%s%s", kdir, names[i].pre, k->version,
				 names[i].suf);
			ret = image_lookup_file(ifs, path, f);
			if (ret != -ENOENT)
				return ret;
		}
	}
	if (k->via_link) {
		snprintf(path, sizeof(path), "%s/initrd.img", k->link_dir);
		return image_lookup_file(ifs, path, f);
	}
	return -ENOENT;
}

/* reads file f whole into a malloc'd buffer */
static int image_read_file(struct image_fs *ifs, struct image_file *f, void **buf, size_t *len)
{
	uint64_t size = EXT2_I_SIZE(&f->inode);
	void *p;
	int ret;

	if (size > IMAGE_MAX_BOOT_FILE) {
		log_err(IMG, "%s: %s in %s filesystem at %s is %llu bytes, more than the %llu MiB limit",
			ifs->img, f->path, ifs->type, ifs->desc, (unsigned long long)size,
			(unsigned long long)(IMAGE_MAX_BOOT_FILE / MiB));
		return -EFBIG;
	}
	p = malloc(size ? size : 1);
	if (!p)
		return -ENOMEM;
	ret = image_read_data(ifs, f->ino, &f->inode, p, size, f->path);
	if (ret) {
		free(p);
		return ret;
	}
	*buf = p;
	*len = size;
	return 0;
}

static const char *image_fs_type(ext2_filsys fs)
{
	struct ext2_super_block *sb = fs->super;

	if (ext2fs_has_feature_extents(sb) || ext2fs_has_feature_64bit(sb) ||
	    ext2fs_has_feature_flex_bg(sb) || ext2fs_has_feature_huge_file(sb) ||
	    ext2fs_has_feature_metadata_csum(sb) || ext2fs_has_feature_dir_nlink(sb))
		return "ext4";
	if (ext2fs_has_feature_journal(sb))
		return "ext3";
	return "ext2";
}

/*
 * Opens the filesystem of candidate c and reads the boot files out of it.
 * -ENOENT (no kernel there) is returned without a message; *type gets the
 * filesystem type once it is known.
 */
static int image_try_fs(const char *path, int fd, const struct image_cand *c,
			struct image_boot_files *out, const char **type)
{
	struct image_fs ifs = { .fd = fd, .base = c->offset, .img = path, .desc = c->desc,
				.type = "ext2/3/4" };
	struct image_kernel *k;
	struct image_file *initrd;
	uint64_t fs_bytes;
	char opts[40];
	errcode_t e;
	int ret;

	snprintf(opts, sizeof(opts), "offset=%llu", (unsigned long long)c->offset);
	e = ie.ext2fs_open2(path, opts, EXT2_FLAG_64BITS, 0, 0, *ie.unix_io_manager, &ifs.fs);
	if (e) {
		log_err(IMG, "%s: cannot open the ext2/3/4 filesystem at %s: %s", path, c->desc,
			image_strerror(e));
		return image_errno(e);
	}
	ifs.type = image_fs_type(ifs.fs);
	*type = ifs.type;
	if (__builtin_mul_overflow(ie.ext2fs_blocks_count(ifs.fs->super), (uint64_t)ifs.fs->blocksize,
				   &fs_bytes) || fs_bytes > c->len) {
		log_err(IMG, "%s: %s filesystem at %s is larger than the %llu bytes there (truncated image?)",
			path, ifs.type, c->desc, (unsigned long long)c->len);
		ret = -EINVAL;
		goto err_close;
	}

	k = malloc(sizeof(*k));
	initrd = malloc(sizeof(*initrd));
	if (!k || !initrd) {
		ret = -ENOMEM;
		goto err_free_structs;
	}
	ret = image_find_kernel(&ifs, k);
	if (ret)
		goto err_free_structs;
	ret = image_read_file(&ifs, &k->f, &out->kernel, &out->kernel_len);
	if (ret)
		goto err_free_structs;
	if (!out->kernel_len) {
		log_err(IMG, "%s: %s in %s filesystem at %s is empty", path, k->f.path, ifs.type,
			c->desc);
		ret = -EINVAL;
		goto err_free_kernel;
	}
	ret = image_find_initrd(&ifs, k, initrd);
	if (!ret) {
		ret = image_read_file(&ifs, initrd, &out->initrd, &out->initrd_len);
		if (ret)
			goto err_free_kernel;
		if (!out->initrd_len) {
			log_warn(IMG, "%s: %s in %s filesystem at %s is empty; booting without an initrd",
				 path, initrd->path, ifs.type, c->desc);
			free(out->initrd);
			out->initrd = NULL;
		} else {
			snprintf(out->initrd_path, sizeof(out->initrd_path), "%s", initrd->path);
		}
	} else if (ret != -ENOENT) {
		goto err_free_kernel;
	}
	snprintf(out->kernel_path, sizeof(out->kernel_path), "%s", k->f.path);
	out->fs_offset = c->offset;
	snprintf(out->fs_desc, sizeof(out->fs_desc), "%s", c->desc);
	log_info(IMG, "%s: kernel %s (%zu bytes), initrd %s (%zu bytes) from %s filesystem at %s",
		 path, out->kernel_path, out->kernel_len, out->initrd ? out->initrd_path : "none",
		 out->initrd_len, ifs.type, c->desc);
	free(k);
	free(initrd);
	ie.ext2fs_close_free(&ifs.fs);
	return 0;

err_free_kernel:
	image__boot_files_free(out);
err_free_structs:
	free(k);
	free(initrd);
err_close:
	ie.ext2fs_close_free(&ifs.fs);
	return ret;
}

static int image_size(const char *path, int fd, uint64_t *size)
{
	struct stat st;
	off_t end;

	if (fstat(fd, &st)) {
		log_err(IMG, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	if (S_ISBLK(st.st_mode)) {
		end = lseek(fd, 0, SEEK_END);
		if (end < 0) {
			log_err(IMG, "%s: cannot get the size: %s", path, strerror(errno));
			return -errno;
		}
		*size = (uint64_t)end;
		return 0;
	}
	log_err(IMG, "%s: not a regular file or a block device", path);
	return -EINVAL;
}

int image__load_boot_files(const char *path, struct image_boot_files *out)
{
	struct image_scan *s;
	const char *types[IMAGE_MAX_CANDS];
	char where[512];
	uint64_t size = 0;
	size_t wlen = 0;
	int fd, ret, first_err;
	void *lib;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		log_err(IMG, "%s: cannot open: %s", path, strerror(errno));
		return ret;
	}
	pthread_mutex_lock(&image_ext2fs_lock);
	ret = dynlib__open("libext2fs.so.2", "libext2fs2", ie_syms, ARRAY_SIZE(ie_syms), &lib,
			   where, sizeof(where));
	if (ret) {
		log_err(IMG, "%s: cannot read its filesystem: %s; use --kernel", path, where);
		goto err_close;
	}
	s = malloc(sizeof(*s));
	if (!s) {
		ret = -ENOMEM;
		goto err_close;
	}
	ret = image_size(path, fd, &size);
	if (ret)
		goto err_free;
	ret = image_scan(s, fd, size);
	if (ret == -EINVAL) {
		log_err(IMG, "%s: damaged partition table and no usable ext2/3/4 filesystem; use --kernel",
			path);
		goto err_free;
	} else if (ret == -ENOENT) {
		log_err(IMG, "%s: no ext2/3/4 filesystem (bare, in an MBR or in a GPT partition); use --kernel",
			path);
		goto err_free;
	} else if (ret) {
		goto err_free;
	}

	/*
	 * The first filesystem that yields a kernel wins; one that cannot be
	 * read is logged and passed over, and its error is returned only when
	 * no other one has a kernel.
	 */
	first_err = -ENOENT;
	for (unsigned int i = 0; i < s->n; i++) {
		types[i] = "ext2/3/4";
		ret = image_try_fs(path, fd, &s->cand[i], out, &types[i]);
		if (!ret)
			break;
		if (ret != -ENOENT && first_err == -ENOENT)
			first_err = ret;
	}
	if (ret)
		ret = first_err;
	if (ret == -ENOENT) {
		for (unsigned int i = 0; i < s->n && wlen < sizeof(where); i++)
			wlen += (size_t)snprintf(where + wlen, sizeof(where) - wlen, "%s%s filesystem at %s",
						 i ? ", " : "", types[i], s->cand[i].desc);
		log_err(IMG, "%s: no /boot/vmlinuz, /vmlinuz or /boot/vmlinuz-* in %s; use --kernel",
			path, where);
	}
err_free:
	free(s);
	dynlib__close(lib);
err_close:
	pthread_mutex_unlock(&image_ext2fs_lock);
	close(fd);
	return ret;
}

void image__boot_files_free(struct image_boot_files *f)
{
	if (f->kernel_mapped)
		munmap(f->kernel, f->kernel_len);
	else
		free(f->kernel);
	free(f->initrd);
	memset(f, 0, sizeof(*f));
}
