// SPDX-License-Identifier: MIT
/*
 * vmm/image.c: each test builds real disk images in a temp dir with mke2fs
 * (e2fsprogs) and sfdisk (fdisk) and checks what image__load_boot_files()
 * reads back, byte for byte; then damaged and hostile images must give an
 * error and never a crash. The tools are required: without them the tests
 * fail rather than skip.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/image.h"
#include "vmm/log.h"

static char tmp[64];
static FILE *log_fp;
static char *logbuf;
static size_t loglen;

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	cr_assert_eq(rc, 0, "command failed (%d): %s", rc, cmd);
}

static void need_tool(const char *tool, const char *pkg)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	cr_assert_eq(system(cmd), 0, "%s not found: install the Debian package %s", tool, pkg);
}

static void setup(void)
{
	const char *path = getenv("PATH");
	char newpath[4096];

	snprintf(newpath, sizeof(newpath), "/usr/sbin:/sbin:%s", path ? path : "/usr/bin:/bin");
	setenv("PATH", newpath, 1);
	need_tool("mke2fs", "e2fsprogs");
	need_tool("sfdisk", "fdisk");
	snprintf(tmp, sizeof(tmp), "/tmp/minivmm-image-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	log_fp = open_memstream(&logbuf, &loglen);
	cr_assert_not_null(log_fp);
	log__set_stream(log_fp);
}

static void teardown(void)
{
	log__set_stream(NULL);
	if (log_fp)
		fclose(log_fp);
	free(logbuf);
	logbuf = NULL;
	log_fp = NULL;
	if (tmp[0])
		sh("rm -rf '%s'", tmp);
}

/* everything logged so far */
static const char *logged(void)
{
	fflush(log_fp);
	return logbuf ? logbuf : "";
}

TestSuite(image, .init = setup, .fini = teardown);

/* deterministic contents: seed picks the bytes */
static void *pattern(size_t len, uint32_t seed)
{
	uint8_t *p = malloc(len);
	uint32_t x = seed * 2654435761u + 1;

	cr_assert_not_null(p);
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
	return p;
}

/* writes a file of len pattern bytes under the temp dir; returns the bytes */
static void *put(const char *rel, size_t len, uint32_t seed)
{
	char path[512];
	void *data = pattern(len, seed);
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	sh("mkdir -p \"$(dirname '%s')\"", path);
	f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	fclose(f);
	return data;
}

static void link_(const char *target, const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	sh("mkdir -p \"$(dirname '%s')\"", path);
	cr_assert_eq(symlink(target, path), 0, "symlink %s: %s", path, strerror(errno));
}

static char *tpath(const char *rel)
{
	static char bufs[4][512];
	static int i;
	char *b = bufs[i++ % 4];

	snprintf(b, 512, "%s/%s", tmp, rel);
	return b;
}

/* ext4 of mib MiB from the tree under root/ into file rel */
static void mkfs(const char *rel, unsigned int mib, const char *extra)
{
	sh("mke2fs -q -F -t ext4 %s -d '%s/root' '%s' %uM >/dev/null 2>&1", extra, tmp, tpath(rel),
	   mib);
}

static void check_loaded(const struct image_boot_files *f, const void *k, size_t klen,
			 const void *i, size_t ilen)
{
	cr_assert_eq(f->kernel_len, klen, "kernel length %zu, want %zu", f->kernel_len, klen);
	cr_assert_not_null(f->kernel);
	cr_assert(!memcmp(f->kernel, k, klen), "kernel bytes differ");
	if (!i) {
		cr_assert_null(f->initrd);
		cr_assert_eq(f->initrd_len, 0);
		cr_assert_str_empty(f->initrd_path);
		return;
	}
	cr_assert_eq(f->initrd_len, ilen, "initrd length %zu, want %zu", f->initrd_len, ilen);
	cr_assert_not_null(f->initrd);
	cr_assert(!memcmp(f->initrd, i, ilen), "initrd bytes differ");
}

static int load(const char *rel, struct image_boot_files *f)
{
	return image__load_boot_files(tpath(rel), f);
}

static void write_at(const char *rel, uint64_t off, const void *buf, size_t len)
{
	int fd = open(tpath(rel), O_WRONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void read_at(const char *rel, uint64_t off, void *buf, size_t len)
{
	int fd = open(tpath(rel), O_RDONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static int find(const char *rel, uint64_t *off, char *desc, size_t desclen)
{
	struct stat st;
	int fd = open(tpath(rel), O_RDONLY), ret;

	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &st), 0);
	ret = image__find_fs(fd, (uint64_t)st.st_size, off, desc, desclen);
	close(fd);
	return ret;
}

/* places fs file fsrel into image imgrel at byte offset off */
static void dd_into(const char *fsrel, const char *imgrel, uint64_t off)
{
	sh("dd if='%s' of='%s' bs=512 seek=%llu conv=notrunc status=none", tpath(fsrel),
	   tpath(imgrel), (unsigned long long)(off / 512));
}

static void sfdisk(const char *imgrel, const char *script)
{
	sh("printf '%s' | sfdisk -q --no-reread --no-tell-kernel '%s' >/dev/null", script,
	   tpath(imgrel));
}

/* the standard tree: /boot/vmlinuz -> vmlinuz-6.1.0-test, /boot/initrd.img */
static void std_tree(void **k, size_t *klen, void **i, size_t *ilen)
{
	*klen = 300 * 1024 + 17;
	*ilen = 123 * 1024 + 5;
	*k = put("root/boot/vmlinuz-6.1.0-test", *klen, 1);
	*i = put("root/boot/initrd.img", *ilen, 2);
	link_("vmlinuz-6.1.0-test", "root/boot/vmlinuz");
	free(put("root/etc/hostname", 10, 3));
}

Test(image, bare_ext4_symlink_and_initrd)
{
	struct image_boot_files f;
	void *k, *i;
	size_t klen, ilen;
	uint64_t off = 1;
	char desc[64];

	std_tree(&k, &klen, &i, &ilen);
	mkfs("disk.img", 16, "");
	cr_assert_eq(find("disk.img", &off, desc, sizeof(desc)), 0);
	cr_assert_eq(off, 0);
	cr_assert_str_eq(desc, "whole disk");

	cr_assert_eq(load("disk.img", &f), 0, "log: %s", logged());
	check_loaded(&f, k, klen, i, ilen);
	cr_assert_str_eq(f.kernel_path, "/boot/vmlinuz-6.1.0-test");
	cr_assert_str_eq(f.initrd_path, "/boot/initrd.img");
	cr_assert_eq(f.fs_offset, 0);
	cr_assert_str_eq(f.fs_desc, "whole disk");
	image__boot_files_free(&f);
	cr_assert_null(f.kernel);
	cr_assert_null(f.initrd);
	image__boot_files_free(&f); /* twice is fine */
	free(k);
	free(i);
}

Test(image, mbr_partition_1)
{
	struct image_boot_files f;
	void *k, *i;
	size_t klen, ilen;

	std_tree(&k, &klen, &i, &ilen);
	mkfs("fs.img", 16, "");
	sh("truncate -s 18M '%s'", tpath("disk.img"));
	sfdisk("disk.img", "label: dos\\nstart=2048, size=32768, type=83\\n");
	dd_into("fs.img", "disk.img", 1 * MiB);

	cr_assert_eq(load("disk.img", &f), 0, "log: %s", logged());
	check_loaded(&f, k, klen, i, ilen);
	cr_assert_eq(f.fs_offset, 1 * MiB);
	cr_assert_str_eq(f.fs_desc, "MBR partition 1");
	image__boot_files_free(&f);
	free(k);
	free(i);
}

Test(image, mbr_logical_partition)
{
	struct image_boot_files f;
	void *k, *i;
	size_t klen, ilen;

	std_tree(&k, &klen, &i, &ilen);
	mkfs("fs.img", 16, "");
	sh("truncate -s 24M '%s'", tpath("disk.img"));
	sfdisk("disk.img", "label: dos\\nstart=2048, size=2048, type=c\\n"
			   "start=4096, size=40960, type=5\\nstart=6144, size=32768, type=83\\n");
	dd_into("fs.img", "disk.img", 6144 * 512);

	cr_assert_eq(load("disk.img", &f), 0, "log: %s", logged());
	check_loaded(&f, k, klen, i, ilen);
	cr_assert_eq(f.fs_offset, 6144 * 512);
	cr_assert_str_eq(f.fs_desc, "MBR partition 5");
	image__boot_files_free(&f);
	free(k);
	free(i);
}

#define ESP_GUID "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
#define LINUX_GUID "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
#define ROOT_GUID "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
#define GPT_FS_LBA 10240

/* GPT: partition 1 ESP-like (junk, not ext), partition 2 the fs of type type */
static void gpt_image(const char *type)
{
	char script[512];

	mkfs("fs.img", 16, "-b 4096");
	sh("truncate -s 22M '%s'", tpath("disk.img"));
	snprintf(script, sizeof(script),
		 "label: gpt\\nstart=2048, size=8192, type=" ESP_GUID
		 "\\nstart=%u, size=32768, type=%s\\n", GPT_FS_LBA, type);
	sfdisk("disk.img", script);
	free(put("junk", 4 * MiB, 9));
	dd_into("junk", "disk.img", 2048 * 512);
	dd_into("fs.img", "disk.img", GPT_FS_LBA * 512);
}

Test(image, gpt_partition_2)
{
	struct image_boot_files f;
	void *k, *i;
	size_t klen, ilen;
	uint64_t off;
	char desc[64];

	std_tree(&k, &klen, &i, &ilen);
	gpt_image(LINUX_GUID);
	cr_assert_eq(find("disk.img", &off, desc, sizeof(desc)), 0);
	cr_assert_eq(off, GPT_FS_LBA * 512);
	cr_assert_str_eq(desc, "GPT partition 2");

	cr_assert_eq(load("disk.img", &f), 0, "log: %s", logged());
	check_loaded(&f, k, klen, i, ilen);
	cr_assert_eq(f.fs_offset, GPT_FS_LBA * 512);
	cr_assert_str_eq(f.fs_desc, "GPT partition 2");
	image__boot_files_free(&f);
	free(k);
	free(i);
}

Test(image, gpt_root_type_and_backup_header)
{
	struct image_boot_files f;
	uint8_t b;
	void *k, *i;
	size_t klen, ilen;

	std_tree(&k, &klen, &i, &ilen);
	gpt_image(ROOT_GUID);
	/* break the primary header's CRC: the backup at the last LBA must do */
	read_at("disk.img", 512 + 16, &b, 1);
	b ^= 0xff;
	write_at("disk.img", 512 + 16, &b, 1);

	cr_assert_eq(load("disk.img", &f), 0, "log: %s", logged());
	check_loaded(&f, k, klen, i, ilen);
	cr_assert_str_eq(f.fs_desc, "GPT partition 2");
	cr_assert(strstr(logged(), "backup header"), "log: %s", logged());
	image__boot_files_free(&f);
	free(k);
	free(i);
}

Test(image, prefers_partition_with_kernel)
{
	struct image_boot_files f;
	void *k, *i;
	size_t klen, ilen;

	/* partition 1: Linux type, ext4 without a kernel; partition 2: the one */
	free(put("root/home/user/notes", 100, 4));
	mkfs("home.img", 8, "");
	sh("rm -rf '%s/root'", tmp);
	std_tree(&k, &klen, &i, &ilen);
	mkfs("fs.img", 16, "");
	sh("truncate -s 26M '%s'", tpath("disk.img"));
	sfdisk("disk.img", "label: gpt\\nstart=2048, size=16384, type=" LINUX_GUID
			   "\\nstart=18432, size=32768, type=" LINUX_GUID "\\n");
	dd_into("home.img", "disk.img", 2048 * 512);
	dd_into("fs.img", "disk.img", 18432 * 512);

	cr_assert_eq(load("disk.img", &f), 0, "log: %s", logged());
	check_loaded(&f, k, klen, i, ilen);
	cr_assert_str_eq(f.fs_desc, "GPT partition 2");
	image__boot_files_free(&f);
	free(k);
	free(i);
}

Test(image, damaged_first_filesystem_passed_over)
{
	static const uint8_t magic[2] = { 0x53, 0xef };
	struct image_boot_files f;
	void *k, *i;
	size_t klen, ilen;

	std_tree(&k, &klen, &i, &ilen);
	mkfs("fs.img", 16, "");
	sh("truncate -s 26M '%s'", tpath("disk.img"));
	sfdisk("disk.img", "label: gpt\\nstart=2048, size=16384, type=" LINUX_GUID
			   "\\nstart=18432, size=32768, type=" LINUX_GUID "\\n");
	/* partition 1: junk with an ext magic, libext2fs refuses it */
	free(put("junk", 8 * MiB, 5));
	dd_into("junk", "disk.img", 2048 * 512);
	write_at("disk.img", 2048 * 512 + 1080, magic, 2);
	dd_into("fs.img", "disk.img", 18432 * 512);

	cr_assert_eq(load("disk.img", &f), 0, "log: %s", logged());
	check_loaded(&f, k, klen, i, ilen);
	cr_assert_str_eq(f.fs_desc, "GPT partition 2");
	cr_assert(strstr(logged(), "cannot open the ext2/3/4 filesystem at GPT partition 1"),
		  "log: %s", logged());
	image__boot_files_free(&f);

	/* alone, the damaged one is an error, not -ENOENT */
	sh("truncate -s 10M '%s'", tpath("disk.img"));
	sfdisk("disk.img", "label: gpt\\nstart=2048, size=16384, type=" LINUX_GUID "\\n");
	cr_assert_eq(load("disk.img", &f), -EINVAL, "log: %s", logged());
	free(k);
	free(i);
}

Test(image, newest_version_and_its_initrd)
{
	struct image_boot_files f;
	void *k9, *k10, *i9, *i10;

	k9 = put("root/boot/vmlinuz-6.1.0-9", 50000, 10);
	k10 = put("root/boot/vmlinuz-6.1.0-10", 60000, 11);
	i9 = put("root/boot/initrd.img-6.1.0-9", 7000, 12);
	i10 = put("root/boot/initrd.img-6.1.0-10", 8000, 13);
	free(put("root/boot/vmlinuz-6.1.0-2", 1000, 14));
	free(put("root/boot/vmlinuz-6.1.0-11.dpkg-tmp", 1000, 15)); /* not a kernel */
	free(put("root/boot/config-6.1.0-12", 1000, 16));
	mkfs("disk.img", 16, "");

	cr_assert_eq(load("disk.img", &f), 0, "log: %s", logged());
	check_loaded(&f, k10, 60000, i10, 8000);
	cr_assert_str_eq(f.kernel_path, "/boot/vmlinuz-6.1.0-10");
	cr_assert_str_eq(f.initrd_path, "/boot/initrd.img-6.1.0-10");
	image__boot_files_free(&f);
	free(k9);
	free(k10);
	free(i9);
	free(i10);
}

Test(image, debian_root_symlinks)
{
	struct image_boot_files f;
	void *k, *i;

	/* Debian keeps /vmlinuz and /initrd.img at the root, relative links */
	k = put("root/boot/vmlinuz-6.1.0-10-amd64", 40000, 20);
	i = put("root/boot/initrd.img-6.1.0-10-amd64", 9000, 21);
	free(put("root/boot/vmlinuz-6.1.0-9-amd64", 40000, 22));
	free(put("root/boot/vmlinuz-6.1.0-11-amd64", 40000, 23));
	link_("boot/vmlinuz-6.1.0-10-amd64", "root/vmlinuz");
	link_("boot/initrd.img-6.1.0-10-amd64", "root/initrd.img");
	mkfs("disk.img", 16, "");

	cr_assert_eq(load("disk.img", &f), 0, "log: %s", logged());
	check_loaded(&f, k, 40000, i, 9000);
	cr_assert_str_eq(f.kernel_path, "/boot/vmlinuz-6.1.0-10-amd64");
	image__boot_files_free(&f);
	free(k);
	free(i);
}

Test(image, absolute_and_chained_symlinks)
{
	struct image_boot_files f;
	void *k, *i;

	/* /boot/vmlinuz -> /kernels/current -> ../kernels/./vmlinuz-7.0 via a linked dir */
	k = put("root/kernels/vmlinuz-7.0", 30000, 30);
	i = put("root/kernels/initrd.img-7.0", 3000, 31);
	link_("/kernels/current", "root/boot/vmlinuz");
	link_("../k/./vmlinuz-7.0", "root/kernels/current");
	link_("kernels", "root/k");
	mkfs("disk.img", 16, "");

	cr_assert_eq(load("disk.img", &f), 0, "log: %s", logged());
	check_loaded(&f, k, 30000, i, 3000);
	cr_assert_str_eq(f.kernel_path, "/kernels/vmlinuz-7.0");
	cr_assert_str_eq(f.initrd_path, "/kernels/initrd.img-7.0");
	image__boot_files_free(&f);
	free(k);
	free(i);
}

Test(image, no_initrd)
{
	struct image_boot_files f;
	void *k;

	k = put("root/boot/vmlinuz-6.1.0-1", 70000, 40);
	link_("vmlinuz-6.1.0-1", "root/boot/vmlinuz");
	link_("initrd.img-6.1.0-1", "root/boot/initrd.img"); /* dangling */
	mkfs("disk.img", 16, "");

	cr_assert_eq(load("disk.img", &f), 0, "log: %s", logged());
	check_loaded(&f, k, 70000, NULL, 0);
	image__boot_files_free(&f);
	free(k);
}

Test(image, no_kernel)
{
	struct image_boot_files f;

	free(put("root/boot/config-6.1.0-1", 100, 50));
	free(put("root/boot/initrd.img-6.1.0-1", 100, 51));
	mkfs("fs.img", 16, "");
	sh("truncate -s 22M '%s'", tpath("disk.img"));
	sfdisk("disk.img", "label: gpt\\nstart=2048, size=8192, type=" ESP_GUID
			   "\\nstart=10240, size=32768, type=" LINUX_GUID "\\n");
	dd_into("fs.img", "disk.img", 10240 * 512);

	memset(&f, 0xa5, sizeof(f));
	cr_assert_eq(load("disk.img", &f), -ENOENT);
	cr_assert_null(f.kernel);
	cr_assert_null(f.initrd);
	cr_assert(strstr(logged(), "no /boot/vmlinuz"), "log: %s", logged());
	cr_assert(strstr(logged(), "ext4 filesystem at GPT partition 2; use --kernel"), "log: %s",
		  logged());
}

Test(image, no_filesystem)
{
	struct image_boot_files f;
	uint64_t off;

	sh("truncate -s 4M '%s'", tpath("zero.img"));
	cr_assert_eq(load("zero.img", &f), -ENOENT);
	cr_assert_eq(find("zero.img", &off, NULL, 0), -ENOENT);
	sh("truncate -s 0 '%s'", tpath("empty.img"));
	cr_assert_eq(load("empty.img", &f), -ENOENT);
	cr_assert_eq(load("does-not-exist.img", &f), -ENOENT);
	cr_assert_lt(image__load_boot_files(tmp, &f), 0); /* a directory */
}

Test(image, symlink_loop)
{
	struct image_boot_files f;

	free(put("root/boot/vmlinuz-6.1.0-1", 1000, 60));
	link_("vmlinuz-b", "root/boot/vmlinuz");
	link_("vmlinuz-a", "root/boot/vmlinuz-b");
	link_("/boot/vmlinuz", "root/boot/vmlinuz-a");
	mkfs("disk.img", 16, "");

	cr_assert_eq(load("disk.img", &f), -ELOOP, "log: %s", logged());
	cr_assert_null(f.kernel);
	cr_assert(strstr(logged(), "levels of symlinks"), "log: %s", logged());
}

/* /boot/vmlinuz -> c1 -> ... -> c<n-1> -> vmlinuz-6.1: n symlinks in all */
static void link_chain(unsigned int n)
{
	char name[64], target[64];

	for (unsigned int c = 1; c < n; c++) {
		snprintf(name, sizeof(name), "root/boot/c%u", c);
		if (c + 1 < n)
			snprintf(target, sizeof(target), "c%u", c + 1);
		else
			snprintf(target, sizeof(target), "vmlinuz-6.1");
		link_(target, name);
	}
	link_(n > 1 ? "c1" : "vmlinuz-6.1", "root/boot/vmlinuz");
}

Test(image, symlink_depth_limit)
{
	struct image_boot_files f;
	void *k;

	/* 8 levels are followed (one of them a long, block-stored target) ... */
	k = put("root/boot/vmlinuz-6.1", 5000, 70);
	link_chain(8);
	sh("rm '%s/root/boot/c7' && ln -s "
	   "'/boot/./././././././././././././././././././././././././././vmlinuz-6.1' '%s/root/boot/c7'",
	   tmp, tmp);
	mkfs("disk.img", 16, "");
	cr_assert_eq(load("disk.img", &f), 0, "log: %s", logged());
	check_loaded(&f, k, 5000, NULL, 0);
	cr_assert_str_eq(f.kernel_path, "/boot/vmlinuz-6.1");
	image__boot_files_free(&f);

	/* ... 9 are not */
	sh("rm -rf '%s/root/boot'", tmp);
	free(put("root/boot/vmlinuz-6.1", 5000, 70));
	link_chain(9);
	mkfs("disk9.img", 16, "");
	cr_assert_eq(load("disk9.img", &f), -ELOOP, "log: %s", logged());
	free(k);
}

Test(image, directory_symlink_loop)
{
	struct image_boot_files f;

	link_("boot", "root/boot2");
	link_("../boot2/vmlinuz", "root/boot/vmlinuz");
	mkfs("disk.img", 16, "");
	cr_assert_eq(load("disk.img", &f), -ELOOP, "log: %s", logged());
}

Test(image, kernel_over_limit)
{
	struct image_boot_files f;

	sh("mkdir -p '%s/root/boot' && truncate -s 513M '%s/root/boot/vmlinuz-6.1.0-1'", tmp, tmp);
	mkfs("disk.img", 16, "");
	cr_assert_eq(load("disk.img", &f), -EFBIG, "log: %s", logged());
	cr_assert_null(f.kernel);
}

Test(image, gpt_bad_crc)
{
	struct image_boot_files f;
	struct stat st;
	uint64_t off;
	uint8_t b;
	void *k, *i;
	size_t klen, ilen;

	std_tree(&k, &klen, &i, &ilen);
	gpt_image(LINUX_GUID);
	cr_assert_eq(stat(tpath("disk.img"), &st), 0);
	/* primary and backup header CRC both wrong */
	read_at("disk.img", 512 + 16, &b, 1);
	b ^= 0x01;
	write_at("disk.img", 512 + 16, &b, 1);
	read_at("disk.img", (uint64_t)st.st_size - 512 + 16, &b, 1);
	b ^= 0x01;
	write_at("disk.img", (uint64_t)st.st_size - 512 + 16, &b, 1);
	cr_assert_eq(load("disk.img", &f), -EINVAL, "log: %s", logged());
	cr_assert_eq(find("disk.img", &off, NULL, 0), -EINVAL);
	cr_assert(strstr(logged(), "bad header CRC"), "log: %s", logged());
	free(k);
	free(i);
}

Test(image, gpt_bad_entry_array_crc)
{
	struct image_boot_files f;
	struct stat st;
	uint8_t b;
	void *k, *i;
	size_t klen, ilen;

	std_tree(&k, &klen, &i, &ilen);
	gpt_image(LINUX_GUID);
	cr_assert_eq(stat(tpath("disk.img"), &st), 0);
	/* one byte of entry 2 in both arrays (LBA 2, and 33 sectors before the end) */
	read_at("disk.img", 2 * 512 + 128 + 32, &b, 1);
	b ^= 0x40;
	write_at("disk.img", 2 * 512 + 128 + 32, &b, 1);
	read_at("disk.img", (uint64_t)st.st_size - 33 * 512 + 128 + 32, &b, 1);
	b ^= 0x40;
	write_at("disk.img", (uint64_t)st.st_size - 33 * 512 + 128 + 32, &b, 1);
	cr_assert_eq(load("disk.img", &f), -EINVAL, "log: %s", logged());
	cr_assert(strstr(logged(), "entry array CRC"), "log: %s", logged());
	free(k);
	free(i);
}

/* a hand-made MBR with the given four entries (type, start, count) */
static void write_mbr(const char *rel, const uint32_t ent[4][3])
{
	uint8_t mbr[512] = { 0 };

	for (int n = 0; n < 4; n++) {
		uint8_t *e = mbr + 446 + 16 * n;

		e[4] = (uint8_t)ent[n][0];
		memcpy(e + 8, &ent[n][1], 4);
		memcpy(e + 12, &ent[n][2], 4);
	}
	mbr[510] = 0x55;
	mbr[511] = 0xaa;
	write_at(rel, 0, mbr, sizeof(mbr));
}

Test(image, mbr_partition_beyond_end)
{
	static const uint32_t ents[][4][3] = {
		{ { 0x83, 2048, 1u << 20 } },				/* past the end */
		{ { 0x83, 0xffffffffu, 0xffffffffu } },			/* far past */
		{ { 0x83, 0, 4096 }, { 0x07, 2048, 0 } },		/* empty/at 0 */
		{ { 0x05, 2048, 4096 } },				/* EBR of zeros */
		{ { 0x0f, 0xfffffff0u, 0xffffffffu } },			/* EBR outside */
	};
	struct image_boot_files f;
	uint64_t off;

	sh("truncate -s 4M '%s'", tpath("disk.img"));
	for (size_t n = 0; n < sizeof(ents) / sizeof(ents[0]); n++) {
		write_mbr("disk.img", ents[n]);
		cr_assert_eq(load("disk.img", &f), -EINVAL, "case %zu, log: %s", n, logged());
		cr_assert_eq(find("disk.img", &off, NULL, 0), -EINVAL, "case %zu", n);
	}
	cr_assert(strstr(logged(), "beyond the end of the image"), "log: %s", logged());
}

Test(image, mbr_ebr_loop)
{
	static const uint32_t ents[4][3] = { { 0x05, 2048, 4096 } };
	uint8_t ebr[512] = { 0 };
	uint32_t v;
	struct image_boot_files f;

	sh("truncate -s 4M '%s'", tpath("disk.img"));
	write_mbr("disk.img", ents);
	/* the EBR's "next" entry points back at itself */
	ebr[446 + 16 + 4] = 0x05;
	v = 0;
	memcpy(ebr + 446 + 16 + 8, &v, 4);
	v = 2048;
	memcpy(ebr + 446 + 16 + 12, &v, 4);
	/* and its logical entry starts in the EBR itself */
	ebr[446 + 4] = 0x83;
	v = 0;
	memcpy(ebr + 446 + 8, &v, 4);
	v = 100;
	memcpy(ebr + 446 + 12, &v, 4);
	ebr[510] = 0x55;
	ebr[511] = 0xaa;
	write_at("disk.img", 2048 * 512, ebr, sizeof(ebr));
	cr_assert_eq(load("disk.img", &f), -EINVAL, "log: %s", logged());

	/* a chain that moves forward each time, longer than the limit */
	for (uint32_t s = 0; s < 200; s++) {
		memset(ebr, 0, sizeof(ebr));
		ebr[446 + 16 + 4] = 0x05;
		v = s + 1;
		memcpy(ebr + 446 + 16 + 8, &v, 4);
		v = 1;
		memcpy(ebr + 446 + 16 + 12, &v, 4);
		ebr[510] = 0x55;
		ebr[511] = 0xaa;
		write_at("disk.img", (2048 + s) * 512, ebr, sizeof(ebr));
	}
	cr_assert_eq(load("disk.img", &f), -ENOENT, "log: %s", logged());
	cr_assert(strstr(logged(), "logical partitions"), "log: %s", logged());
}

Test(image, truncated_images)
{
	struct image_boot_files f;
	void *k, *i;
	size_t klen, ilen;
	int ret;

	std_tree(&k, &klen, &i, &ilen);
	/* bare filesystem cut to a quarter */
	mkfs("bare.img", 16, "");
	sh("truncate -s 4M '%s'", tpath("bare.img"));
	ret = load("bare.img", &f);
	cr_assert(ret < 0, "ret %d", ret);
	cr_assert_null(f.kernel);
	cr_assert(strstr(logged(), "truncated image?"), "log: %s", logged());

	/* bare filesystem cut inside its superblock area */
	sh("truncate -s 1500 '%s'", tpath("bare.img"));
	cr_assert_eq(load("bare.img", &f), -ENOENT);

	/* GPT image cut in the middle of partition 2 (and without its backup) */
	gpt_image(LINUX_GUID);
	sh("truncate -s 12M '%s'", tpath("disk.img"));
	cr_assert_eq(load("disk.img", &f), -EINVAL, "log: %s", logged());

	/* MBR image cut inside the table sector */
	sh("truncate -s 300 '%s'", tpath("disk.img"));
	cr_assert_eq(load("disk.img", &f), -ENOENT);
	free(k);
	free(i);
}

Test(image, random_bytes)
{
	struct image_boot_files f;
	uint64_t off;
	int ret;

	for (uint32_t seed = 100; seed < 140; seed++) {
		void *junk = pattern(64 * 1024, seed);
		uint8_t *p = junk;

		/* odd seeds: make it look like an MBR, every fourth a protective one */
		if (seed & 1) {
			p[510] = 0x55;
			p[511] = 0xaa;
			for (int n = 0; n < 4; n++) {
				p[446 + 16 * n + 4] = (seed & 2) ? 0xee : (uint8_t)(0x83 + n);
				p[446 + 16 * n + 8 + 2] = p[446 + 16 * n + 8 + 3] = 0;
			}
			memcpy(p + 512, "EFI PART", 8);
		}
		/* sometimes an ext magic too */
		if (seed % 3 == 0) {
			p[1080] = 0x53;
			p[1081] = 0xef;
		}
		unlink(tpath("junk.img"));
		{
			int fd = open(tpath("junk.img"), O_WRONLY | O_CREAT | O_TRUNC, 0644);

			cr_assert_geq(fd, 0);
			cr_assert_eq(write(fd, junk, 64 * 1024), 64 * 1024);
			close(fd);
		}
		ret = load("junk.img", &f);
		cr_assert(ret < 0, "seed %u: ret %d", seed, ret);
		cr_assert_null(f.kernel);
		ret = find("junk.img", &off, NULL, 0);
		if (seed % 3)
			cr_assert(ret == -ENOENT || ret == -EINVAL, "seed %u: ret %d", seed, ret);
		free(junk);
	}
}

/* the number of extents debugfs lists for file fsfile in image rel */
static int extents_of(const char *rel, const char *fsfile)
{
	char cmd[1024];
	char line[512];
	int n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "debugfs -R 'ex %s' '%s' 2>/dev/null", fsfile, tpath(rel));
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while (fgets(line, sizeof(line), p))
		if (strstr(line, " - ") && !strstr(line, "Level"))
			n++;
	pclose(p);
	return n;
}

/* file data is read run by run of contiguous blocks: a kernel scattered over
 * the free blocks left between other files reads back whole */
Test(image, fragmented_kernel)
{
	struct image_boot_files f;
	size_t klen = 600 * 1024 + 123, ilen;
	void *k, *i;
	int n;

	need_tool("debugfs", "e2fsprogs");
	ilen = 50 * 1024 + 1;
	i = put("root/boot/initrd.img", ilen, 2);
	link_("vmlinuz-6.1.0-test", "root/boot/vmlinuz");
	for (n = 0; n < 200; n++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "root/fill/f%03d", n);
		free(put(rel, 4096, (uint32_t)n + 10));
	}
	k = put("kernel.src", klen, 1);
	mkfs("disk.img", 16, "-b 4096");
	/* every other filler goes: one-block holes for the kernel to land in */
	sh("for n in $(seq 0 2 199); do printf 'rm /fill/f%%03d\\n' $n; done > '%s'", tpath("cmds"));
	sh("printf 'cd /boot\\nwrite %s vmlinuz-6.1.0-test\\n' >> '%s'", tpath("kernel.src"),
	   tpath("cmds"));
	sh("debugfs -w -f '%s' '%s' >/dev/null 2>&1", tpath("cmds"), tpath("disk.img"));
	n = extents_of("disk.img", "/boot/vmlinuz-6.1.0-test");
	cr_assert_gt(n, 20, "the kernel is in %d extents: not fragmented, the test tests nothing", n);
	cr_assert_eq(load("disk.img", &f), 0, "log: %s", logged());
	check_loaded(&f, k, klen, i, ilen);
	image__boot_files_free(&f);
	free(k);
	free(i);
}

/* holes read as zeros, and a block map (ext2, 1 KiB blocks: direct, indirect
 * and double indirect blocks) reads like extents */
Test(image, sparse_kernel_and_ext2_block_maps)
{
	struct image_boot_files f;
	size_t klen = 2 * 1024 * 1024 + 77, ilen;
	uint8_t *k;
	void *i, *part;
	FILE *fp;
	struct stat st;

	ilen = 1000;
	i = put("root/boot/initrd.img", ilen, 2);
	/* data, a hole of 1 MiB, data, and a hole up to the end */
	k = calloc(1, klen);
	cr_assert_not_null(k);
	part = pattern(300 * 1024, 1);
	memcpy(k, part, 300 * 1024);
	memcpy(k + 300 * 1024 + 1024 * 1024, part, 200 * 1024);
	free(part);
	fp = fopen(tpath("root/boot/vmlinuz"), "wb");
	cr_assert_not_null(fp);
	cr_assert_eq(fwrite(k, 1, 300 * 1024, fp), 300 * 1024);
	cr_assert_eq(fseek(fp, 1024 * 1024, SEEK_CUR), 0);
	cr_assert_eq(fwrite(k + 300 * 1024 + 1024 * 1024, 1, 200 * 1024, fp), 200 * 1024);
	fclose(fp);
	cr_assert_eq(truncate(tpath("root/boot/vmlinuz"), (off_t)klen), 0);
	cr_assert_eq(stat(tpath("root/boot/vmlinuz"), &st), 0);
	cr_assert_lt((uint64_t)st.st_blocks * 512, klen, "the source file is not sparse");

	mkfs("ext4.img", 16, "");
	cr_assert_eq(load("ext4.img", &f), 0, "log: %s", logged());
	check_loaded(&f, k, klen, i, ilen);
	image__boot_files_free(&f);

	sh("mke2fs -q -F -t ext2 -b 1024 -d '%s/root' '%s' 16M >/dev/null 2>&1", tmp,
	   tpath("ext2.img"));
	cr_assert_eq(load("ext2.img", &f), 0, "log: %s", logged());
	check_loaded(&f, k, klen, i, ilen);
	cr_assert(strstr(logged(), "ext2 filesystem"), "log: %s", logged());
	image__boot_files_free(&f);
	free(k);
	free(i);
}
