// SPDX-License-Identifier: MIT
/*
 * vmm/x86/unpack.c (--decompress host): synthetic bzImages whose payload is a
 * small ELF compressed with gzip, xz and zstd, each damaged in the ways an
 * image can be; and, where the host has one, a real distribution kernel.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "vmm/x86/kaslr.h"
#include "vmm/x86/unpack.h"

#define SETUP_SECTS 4
#define PAYLOAD_OFF 0x300 /* from the start of the protected-mode part */
#define ELF_LEN (48 * 1024 + 17)

static uint8_t *elf_image(void)
{
	uint8_t *e = malloc(ELF_LEN);

	cr_assert_not_null(e);
	for (size_t i = 0; i < ELF_LEN; i++)
		e[i] = (uint8_t)(i * 7 + (i >> 9)); /* compressible, not trivial */
	memcpy(e, ELFMAG, SELFMAG);
	return e;
}

static size_t compress_gzip(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	z_stream z = { 0 };

	cr_assert_eq(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	deflateEnd(&z);
	return cap - z.avail_out;
}

static size_t compress_xz(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t pos = 0;

	cr_assert_eq(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in, len, out, &pos, cap),
		     LZMA_OK);
	return pos;
}

/* with a content checksum, as the kernel build's zstd command writes it (a
 * frame without one decompresses damaged bytes without noticing) */
static size_t compress_zstd(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	size_t r;

	cr_assert_not_null(c);
	ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 19);
	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
	r = ZSTD_compress2(c, out, cap, in, len);
	ZSTD_freeCCtx(c);
	cr_assert(!ZSTD_isError(r));
	return r;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/*
 * A bzImage: setup (header fields the unpacker reads), then PAYLOAD_OFF
 * bytes, then the payload with size_append's four bytes; *klen its length
 */
static uint8_t *bzimage(const uint8_t *payload, size_t plen, uint32_t appended,
			uint32_t init_size, size_t *klen)
{
	size_t setup = (SETUP_SECTS + 1) * 512, len = setup + PAYLOAD_OFF + plen + 4;
	uint8_t *k = calloc(1, len);

	cr_assert_not_null(k);
	k[0x1f1] = SETUP_SECTS;
	memcpy(k + 0x202, "HdrS", 4);
	k[0x206] = 0x0f;
	k[0x207] = 0x02;
	put32(k + 0x248, PAYLOAD_OFF);
	put32(k + 0x24c, (uint32_t)plen + 4);
	put32(k + 0x260, init_size);
	memcpy(k + setup + PAYLOAD_OFF, payload, plen);
	put32(k + setup + PAYLOAD_OFF + plen, appended);
	*klen = len;
	return k;
}

typedef size_t (*compress_fn)(const uint8_t *, size_t, uint8_t *, size_t);

static void roundtrip(const char *name, compress_fn fn)
{
	uint8_t *e = elf_image(), *c = malloc(2 * ELF_LEN), *k;
	size_t clen = fn(e, ELF_LEN, c, 2 * ELF_LEN), klen, out_len = 1;
	const char *fmt = NULL;
	void *out = (void *)1;

	k = bzimage(c, clen, ELF_LEN, 4 * ELF_LEN, &klen);
	cr_assert_eq(x86_unpack__bzimage(k, klen, &out, &out_len, &fmt), 0, "%s", name);
	cr_assert_str_eq(fmt, name);
	cr_assert_eq(out_len, ELF_LEN);
	cr_assert(!memcmp(out, e, ELF_LEN), "%s: bytes differ", name);
	free(out);

	/* the appended size is not what the stream holds */
	free(k);
	k = bzimage(c, clen, ELF_LEN + 1, 4 * ELF_LEN, &klen);
	cr_assert_eq(x86_unpack__bzimage(k, klen, &out, &out_len, &fmt), -EINVAL, "%s", name);
	cr_assert_null(out);
	free(k);
	k = bzimage(c, clen, ELF_LEN - 1, 4 * ELF_LEN, &klen);
	cr_assert_eq(x86_unpack__bzimage(k, klen, &out, &out_len, &fmt), -EINVAL, "%s", name);

	/* more than the kernel's own init_size */
	free(k);
	k = bzimage(c, clen, ELF_LEN, ELF_LEN - 1, &klen);
	cr_assert_eq(x86_unpack__bzimage(k, klen, &out, &out_len, &fmt), -EFBIG, "%s", name);

	/* the stream cut short, and damaged in its middle */
	free(k);
	k = bzimage(c, clen / 2, ELF_LEN, 4 * ELF_LEN, &klen);
	cr_assert_eq(x86_unpack__bzimage(k, klen, &out, &out_len, &fmt), -EINVAL, "%s", name);
	free(k);
	c[clen / 2] ^= 0x55;
	c[clen / 2 + 1] ^= 0xaa;
	k = bzimage(c, clen, ELF_LEN, 4 * ELF_LEN, &klen);
	cr_assert_eq(x86_unpack__bzimage(k, klen, &out, &out_len, &fmt), -EINVAL, "%s", name);
	cr_assert_null(out);
	free(k);
	free(c);
	free(e);
}

Test(unpack, gzip) { roundtrip("gzip", compress_gzip); }
Test(unpack, xz) { roundtrip("xz", compress_xz); }
Test(unpack, zstd) { roundtrip("zstd", compress_zstd); }

Test(unpack, refused_images)
{
	uint8_t *e = elf_image(), *c = malloc(2 * ELF_LEN), *k;
	size_t clen = compress_xz(e, ELF_LEN, c, 2 * ELF_LEN), klen, out_len;
	const char *fmt;
	void *out;

	/* not a bzImage */
	cr_assert_eq(x86_unpack__bzimage(e, ELF_LEN, &out, &out_len, &fmt), -ENOEXEC);
	k = bzimage(c, clen, ELF_LEN, 0, &klen);
	cr_assert_eq(x86_unpack__bzimage(k, 0x100, &out, &out_len, &fmt), -ENOEXEC);
	/* protocol 2.07: no payload fields */
	k[0x206] = 0x07;
	cr_assert_eq(x86_unpack__bzimage(k, klen, &out, &out_len, &fmt), -ENOEXEC);
	k[0x206] = 0x0f;
	/* init_size 0 (old kernels): only the 512 MiB bound applies */
	cr_assert_eq(x86_unpack__bzimage(k, klen, &out, &out_len, &fmt), 0);
	free(out);
	/* a payload beyond the file, and one whose length wraps */
	put32(k + 0x24c, (uint32_t)clen + 5);
	cr_assert_eq(x86_unpack__bzimage(k, klen, &out, &out_len, &fmt), -EINVAL);
	put32(k + 0x248, 0xffffff00u);
	cr_assert_eq(x86_unpack__bzimage(k, klen, &out, &out_len, &fmt), -EINVAL);
	put32(k + 0x248, PAYLOAD_OFF);
	put32(k + 0x24c, (uint32_t)clen + 4);
	/* a size over the bound */
	put32(k + (SETUP_SECTS + 1) * 512 + PAYLOAD_OFF + clen, 0xfffffff0u);
	cr_assert_eq(x86_unpack__bzimage(k, klen, &out, &out_len, &fmt), -EFBIG);
	free(k);

	/* bzip2 and lz4 are named and refused; unknown bytes are refused */
	memcpy(c, "BZh9", 4);
	k = bzimage(c, clen, ELF_LEN, 0, &klen);
	cr_assert_eq(x86_unpack__bzimage(k, klen, &out, &out_len, &fmt), -EOPNOTSUPP);
	cr_assert_str_eq(fmt, "bzip2");
	free(k);
	memcpy(c, "\x02\x21\x4c\x18", 4);
	k = bzimage(c, clen, ELF_LEN, 0, &klen);
	cr_assert_eq(x86_unpack__bzimage(k, klen, &out, &out_len, &fmt), -EOPNOTSUPP);
	cr_assert_str_eq(fmt, "lz4");
	free(k);
	memset(c, 0x42, 8);
	k = bzimage(c, clen, ELF_LEN, 0, &klen);
	cr_assert_eq(x86_unpack__bzimage(k, klen, &out, &out_len, &fmt), -EOPNOTSUPP);
	free(k);

	/* a payload that decompresses to something other than an ELF file */
	e[0] = 'X';
	clen = compress_gzip(e, ELF_LEN, c, 2 * ELF_LEN);
	k = bzimage(c, clen, ELF_LEN, 0, &klen);
	cr_assert_eq(x86_unpack__bzimage(k, klen, &out, &out_len, &fmt), -ENOEXEC);
	cr_assert_null(out);
	free(k);
	free(c);
	free(e);
}

/* a distribution kernel from this host's /boot, or the lab's cache */
Test(unpack, real_kernel)
{
	static const char *const dirs[] = { "/boot", "/var/cache/minivmm-lab/guest" };
	char path[512] = "";
	const char *fmt;
	void *out;
	size_t out_len, klen;
	uint8_t *k;
	FILE *f;
	long sz;

	for (unsigned int i = 0; i < 2 && !path[0]; i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *de;

		while (d && (de = readdir(d)))
			if (!strncmp(de->d_name, "vmlinuz", 7)) {
				snprintf(path, sizeof(path), "%s/%s", dirs[i], de->d_name);
				break;
			}
		if (d)
			closedir(d);
	}
	if (!path[0])
		cr_skip_test("no /boot/vmlinuz* nor a lab guest kernel on this host");
	f = fopen(path, "rb");
	if (!f)
		cr_skip_test("%s: cannot be read", path);
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	k = malloc((size_t)sz);
	cr_assert_not_null(k);
	cr_assert_eq(fread(k, 1, (size_t)sz, f), (size_t)sz);
	fclose(f);
	klen = (size_t)sz;
	cr_assert_eq(x86_unpack__bzimage(k, klen, &out, &out_len, &fmt), 0, "%s", path);
	cr_assert_gt(out_len, klen, "%s: %s payload of %zu bytes -> %zu", path, fmt, klen, out_len);
	cr_assert(!memcmp(out, ELFMAG, SELFMAG));
	cr_assert_eq(((Elf64_Ehdr *)out)->e_machine, EM_X86_64);
	cr_log_info("%s: %s, %zu -> %zu bytes", path, fmt, klen, out_len);
	/* what minivmm's KASLR reads of its setup header: a relocatable kernel,
	 * aligned to a power of two of 2 MiB or more, needing more RAM than
	 * its decompressed ELF */
	struct x86_boot_kaslr ka = { 0 };

	cr_assert(x86_unpack__kaslr_fields(k, klen, &ka), "%s: not relocatable?", path);
	cr_assert(ka.align >= 2 * MiB && !(ka.align & (ka.align - 1)), "%s: kernel_alignment 0x%llx",
		  path, (unsigned long long)ka.align);
	cr_assert_gt(ka.init_size, 16 * MiB, "%s: init_size", path);
	cr_assert_not(x86_unpack__kaslr_fields(k, 0x200, &ka), "too short for the fields");
	cr_assert_not(x86_unpack__kaslr_fields(out, out_len, &ka), "an ELF has no setup header");
	/* its KASLR relocation table (vmm/x86/kaslr.h): found right after the
	 * ELF, every entry inside the image as it is laid out from its
	 * link-time physical address */
	struct x86_kaslr_relocs r;
	int ret = x86_kaslr__find_relocs(out, out_len, &r);

	cr_assert(ret == 0 || ret == -ENOENT, "%s: relocation table: %s", path, strerror(-ret));
	if (!ret) {
		const Elf64_Ehdr *eh = out;
		const Elf64_Phdr *ph = (const Elf64_Phdr *)((uint8_t *)out + eh->e_phoff);
		uint64_t load = UINT64_MAX, end = 0;
		uint8_t *img;

		for (unsigned int i = 0; i < eh->e_phnum; i++)
			if (ph[i].p_type == PT_LOAD) {
				load = MIN(load, ph[i].p_paddr);
				end = MAX(end, ph[i].p_paddr + ph[i].p_filesz);
			}
		cr_assert(load != UINT64_MAX && end - load < X86_UNPACK_MAX);
		img = calloc(1, end - load);
		cr_assert_not_null(img);
		for (unsigned int i = 0; i < eh->e_phnum; i++)
			if (ph[i].p_type == PT_LOAD)
				memcpy(img + ph[i].p_paddr - load, (uint8_t *)out + ph[i].p_offset,
				       ph[i].p_filesz);
		cr_assert_gt(r.n64 + r.n32, 1000, "%s: %zu + %zu + %zu relocations", path, r.n64,
			     r.ninv32, r.n32);
		cr_assert_eq(x86_kaslr__apply(img, end - load, load, 64 * MiB, &r), 0,
			     "%s: every relocation inside the image", path);
		cr_log_info("%s: %zu 64-bit, %zu inverse 32-bit, %zu 32-bit relocations", path, r.n64,
			    r.ninv32, r.n32);
		free(img);
	}
	free(out);
	free(k);
}

/* --kernel-cache: a miss decompresses and keeps the ELF under the bzImage's
 * SHA-256, a hit reads it back, a damaged entry is replaced, and a directory
 * others can write is refused */
Test(unpack, cache)
{
	uint8_t *e = elf_image(), *c = malloc(2 * ELF_LEN), *k;
	size_t clen = compress_xz(e, ELF_LEN, c, 2 * ELF_LEN), klen, out_len;
	char dir[] = "/tmp/minivmm-kcache-XXXXXX", cmd[256], entry[512] = "";
	const char *fmt;
	bool hit = true;
	void *out;
	FILE *p;

	cr_assert_not_null(mkdtemp(dir));
	k = bzimage(c, clen, ELF_LEN, 0, &klen);
	cr_assert_eq(x86_unpack__cached(k, klen, dir, &out, &out_len, &fmt, &hit), 0);
	cr_assert_not(hit);
	cr_assert_str_eq(fmt, "xz");
	cr_assert(out_len == ELF_LEN && !memcmp(out, e, ELF_LEN));
	x86_unpack__release(out, out_len, hit);

	/* the entry is named by the SHA-256 of the bzImage (sha256sum agrees) */
	FILE *kf = fopen("/tmp/minivmm-kcache-k", "wb");
	cr_assert_not_null(kf);
	cr_assert_eq(fwrite(k, 1, klen, kf), klen);
	fclose(kf);
	p = popen("sha256sum /tmp/minivmm-kcache-k | cut -c1-64", "r");
	cr_assert_not_null(p);
	cr_assert_not_null(fgets(cmd, sizeof(cmd), p));
	pclose(p);
	unlink("/tmp/minivmm-kcache-k");
	cmd[64] = 0;
	snprintf(entry, sizeof(entry), "%s/%s.elf", dir, cmd);
	cr_assert_eq(access(entry, R_OK), 0, "no %s", entry);

	cr_assert_eq(x86_unpack__cached(k, klen, dir, &out, &out_len, &fmt, &hit), 0);
	cr_assert(hit);
	cr_assert(out_len == ELF_LEN && !memcmp(out, e, ELF_LEN));
	/* a hit is the cache file mapped (no copy into a buffer), read-only */
	{
		char maps[512], line[1024];
		bool seen = false;
		FILE *m = fopen("/proc/self/maps", "r");

		cr_assert_not_null(m);
		snprintf(maps, sizeof(maps), "%lx-", (unsigned long)out);
		while (fgets(line, sizeof(line), m))
			if (!strncmp(line, maps, strlen(maps)) && strstr(line, entry) &&
			    strstr(line, " r--p "))
				seen = true;
		fclose(m);
		cr_assert(seen, "the hit is not a read-only mapping of %s", entry);
	}
	x86_unpack__release(out, out_len, hit);

	/* a damaged entry (not an ELF file) is decompressed again and replaced */
	kf = fopen(entry, "r+b");
	cr_assert_not_null(kf);
	fputs("junk", kf);
	fclose(kf);
	cr_assert_eq(x86_unpack__cached(k, klen, dir, &out, &out_len, &fmt, &hit), 0);
	cr_assert_not(hit);
	cr_assert(out_len == ELF_LEN && !memcmp(out, e, ELF_LEN));
	x86_unpack__release(out, out_len, hit);
	cr_assert_eq(x86_unpack__cached(k, klen, dir, &out, &out_len, &fmt, &hit), 0);
	cr_assert(hit);
	x86_unpack__release(out, out_len, hit);

	/* a directory the group or others can write, and no directory at all */
	cr_assert_eq(chmod(dir, 0770), 0);
	cr_assert_eq(x86_unpack__cached(k, klen, dir, &out, &out_len, &fmt, &hit), -EPERM);
	cr_assert_null(out);
	cr_assert_eq(x86_unpack__cached(k, klen, entry, &out, &out_len, &fmt, &hit), -ENOTDIR);
	cr_assert_eq(chmod(dir, 0700), 0);
	/* a missing directory is created, private */
	snprintf(cmd, sizeof(cmd), "%s/sub", dir);
	cr_assert_eq(x86_unpack__cached(k, klen, cmd, &out, &out_len, &fmt, &hit), 0);
	cr_assert_not(hit);
	x86_unpack__release(out, out_len, hit);
	struct stat st;
	cr_assert_eq(stat(cmd, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0700);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
	free(k);
	free(c);
	free(e);
}

/* the cache keeps the X86_UNPACK_CACHE_KEEP most recently used kernels */
Test(unpack, cache_keeps_the_newest)
{
	uint8_t *e = elf_image(), *c = malloc(2 * ELF_LEN), *k;
	size_t clen = compress_xz(e, ELF_LEN, c, 2 * ELF_LEN), klen, out_len;
	char dir[] = "/tmp/minivmm-kcache-XXXXXX", path[512], cmd[600];
	struct timespec ts[2] = { { 0 } };
	const char *fmt;
	unsigned int i, n = 0, old = 0;
	struct dirent *de;
	bool hit;
	void *out;
	DIR *d;

	cr_assert_not_null(mkdtemp(dir));
	/* six older entries, 1000 s apart (entry 5 the newest), and a stranger */
	for (i = 0; i < 6; i++) {
		snprintf(path, sizeof(path), "%s/%064x.elf", dir, i);
		FILE *f = fopen(path, "wb");
		cr_assert_not_null(f);
		fputs("\177ELF", f);
		fclose(f);
		ts[0].tv_sec = ts[1].tv_sec = 1000000 + i * 1000;
		cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
	}
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	fclose(fopen(path, "w"));
	/* entry 0, the oldest, is used: it becomes the newest of them */
	snprintf(path, sizeof(path), "%s/%064x.elf", dir, 0);
	ts[0].tv_sec = ts[1].tv_sec = 1000000 + 9000;
	cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);

	k = bzimage(c, clen, ELF_LEN, 0, &klen);
	cr_assert_eq(x86_unpack__cached(k, klen, dir, &out, &out_len, &fmt, &hit), 0);
	cr_assert_not(hit);
	x86_unpack__release(out, out_len, hit);
	d = opendir(dir);
	cr_assert_not_null(d);
	while ((de = readdir(d))) {
		if (strlen(de->d_name) != 68)
			continue;
		n++;
		for (i = 1; i < 4; i++) {
			snprintf(path, sizeof(path), "%064x.elf", i);
			if (!strcmp(de->d_name, path))
				old++;
		}
	}
	closedir(d);
	cr_assert_eq(n, X86_UNPACK_CACHE_KEEP, "%u entries left", n);
	cr_assert_eq(old, 0, "entries 1-3, the least recently used, are gone");
	snprintf(path, sizeof(path), "%s/%064x.elf", dir, 0);
	cr_assert_eq(access(path, F_OK), 0, "entry 0 was used lately: kept");
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	cr_assert_eq(access(path, F_OK), 0, "what is not a cache entry stays");
	/* a hit marks the entry used */
	cr_assert_eq(x86_unpack__cached(k, klen, dir, &out, &out_len, &fmt, &hit), 0);
	cr_assert(hit);
	x86_unpack__release(out, out_len, hit);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
	free(k);
	free(c);
	free(e);
}
