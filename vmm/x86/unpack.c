// SPDX-License-Identifier: MIT
/*
 * The bzImage payload decompressor behind --decompress host (unpack.h).
 * Every field of the image is untrusted: offsets and lengths are checked
 * against the file, the output is bounded before it is allocated, and the
 * decompressed size must be the one the image appends.
 */
#include "vmm/x86/unpack.h"

#include <elf.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <lzma.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "vmm/dynlib.h"
#include "vmm/log.h"
#include "vmm/sys.h"

#define UNPACK_LOG "boot"

#define SETUP_SECTS_OFF 0x1f1
#define INIT_SIZE_OFF 0x260
#define PAYLOAD_OFFSET_OFF 0x248
#define PAYLOAD_LENGTH_OFF 0x24c
#define VERSION_OFF 0x206
#define HDRS_OFF 0x202
#define HDRS_MAGIC 0x53726448U
#define PAYLOAD_MIN_VERSION 0x0208
#define KERNEL_ALIGNMENT_OFF 0x230
#define RELOCATABLE_OFF 0x234
#define RELOCATABLE_MIN_VERSION 0x020a /* kernel_alignment and relocatable_kernel: 2.05; honest alignment: 2.10 */

/*
 * The decompressors and nettle are opened for the unpacking and closed after
 * it (vmm/dynlib.h): a VMM that booted keeps none of them mapped. The caller
 * of x86_unpack__* holds unpack_lock around the open, the use and the close.
 */
static pthread_mutex_t unpack_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	__typeof__(inflateInit2_) *inflateInit2_;
	__typeof__(inflate) *inflate;
	__typeof__(inflateEnd) *inflateEnd;
} uz;
static const struct dynlib_sym uz_syms[] = {
	DYNLIB_SYM(uz, inflateInit2_), DYNLIB_SYM(uz, inflate), DYNLIB_SYM(uz, inflateEnd),
};
static struct {
	__typeof__(lzma_stream_decoder) *lzma_stream_decoder;
	__typeof__(lzma_code) *lzma_code;
	__typeof__(lzma_end) *lzma_end;
} ux;
static const struct dynlib_sym ux_syms[] = {
	DYNLIB_SYM(ux, lzma_stream_decoder), DYNLIB_SYM(ux, lzma_code), DYNLIB_SYM(ux, lzma_end),
};
static struct {
	__typeof__(ZSTD_createDCtx) *ZSTD_createDCtx;
	__typeof__(ZSTD_DCtx_setParameter) *ZSTD_DCtx_setParameter;
	__typeof__(ZSTD_decompressStream) *ZSTD_decompressStream;
	__typeof__(ZSTD_freeDCtx) *ZSTD_freeDCtx;
	__typeof__(ZSTD_isError) *ZSTD_isError;
} uzs;
static const struct dynlib_sym uzs_syms[] = {
	DYNLIB_SYM(uzs, ZSTD_createDCtx), DYNLIB_SYM(uzs, ZSTD_DCtx_setParameter),
	DYNLIB_SYM(uzs, ZSTD_decompressStream), DYNLIB_SYM(uzs, ZSTD_freeDCtx),
	DYNLIB_SYM(uzs, ZSTD_isError),
};
static struct {
	__typeof__(nettle_sha256_init) *nettle_sha256_init;
	__typeof__(nettle_sha256_update) *nettle_sha256_update;
	__typeof__(nettle_sha256_digest) *nettle_sha256_digest;
} un;
static const struct dynlib_sym un_syms[] = {
	DYNLIB_SYM(un, nettle_sha256_init), DYNLIB_SYM(un, nettle_sha256_update),
	DYNLIB_SYM(un, nettle_sha256_digest),
};

static uint32_t unpack_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int unpack_xz(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret r;

	/* the kernel's xz uses CRC32 or none, and a dictionary of a few MiB */
	if (ux.lzma_stream_decoder(&s, 256 * MiB, 0) != LZMA_OK)
		return -ENOMEM;
	s.next_in = in;
	s.avail_in = inlen;
	s.next_out = out;
	s.avail_out = outlen;
	r = ux.lzma_code(&s, LZMA_FINISH);
	ux.lzma_end(&s);
	if (r != LZMA_STREAM_END || s.avail_out)
		return r == LZMA_MEM_ERROR ? -ENOMEM : -EINVAL;
	return 0;
}

static int unpack_gzip(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
	z_stream z;
	int r;

	if (inlen > UINT32_MAX || outlen > UINT32_MAX)
		return -EFBIG;
	memset(&z, 0, sizeof(z));
	if (uz.inflateInit2_(&z, 16 + MAX_WBITS, ZLIB_VERSION, (int)sizeof(z)) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)inlen;
	z.next_out = out;
	z.avail_out = (uInt)outlen;
	r = uz.inflate(&z, Z_FINISH);
	uz.inflateEnd(&z);
	if (r != Z_STREAM_END || z.avail_out)
		return r == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
	return 0;
}

static int unpack_zstd(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
	ZSTD_DCtx *d = uzs.ZSTD_createDCtx();
	ZSTD_inBuffer ib = { in, inlen, 0 };
	ZSTD_outBuffer ob = { out, outlen, 0 };
	size_t r;

	if (!d)
		return -ENOMEM;
	/* the kernel's zstd window is at most 8 MiB (zstd22 -22 --ultra caps it) */
	uzs.ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 27);
	r = uzs.ZSTD_decompressStream(d, &ob, &ib);
	uzs.ZSTD_freeDCtx(d);
	if (uzs.ZSTD_isError(r) || r != 0 || ob.pos != outlen)
		return -EINVAL;
	return 0;
}

bool x86_unpack__kaslr_fields(const void *kernel, size_t klen, struct x86_boot_kaslr *ka)
{
	const uint8_t *k = kernel;

	if (klen < INIT_SIZE_OFF + 4 || unpack_le32(k + HDRS_OFF) != HDRS_MAGIC ||
	    (uint16_t)(k[VERSION_OFF] | k[VERSION_OFF + 1] << 8) < RELOCATABLE_MIN_VERSION ||
	    !k[RELOCATABLE_OFF])
		return false;
	ka->align = unpack_le32(k + KERNEL_ALIGNMENT_OFF);
	ka->init_size = unpack_le32(k + INIT_SIZE_OFF);
	return true;
}

int x86_unpack__bzimage(const void *kernel, size_t klen, void **out, size_t *out_len,
			const char **format)
{
	static const struct {
		const char *name;
		uint8_t magic[6];
		size_t mlen;
		int (*fn)(const uint8_t *, size_t, uint8_t *, size_t);
		const char *soname, *package;
		const struct dynlib_sym *syms;
		size_t nsyms;
	} fmts[] = {
		{ "gzip", { 0x1f, 0x8b }, 2, unpack_gzip, "libz.so.1", "zlib1g", uz_syms,
		  ARRAY_SIZE(uz_syms) },
		{ "xz", { 0xfd, '7', 'z', 'X', 'Z', 0 }, 6, unpack_xz, "liblzma.so.5", "liblzma5",
		  ux_syms, ARRAY_SIZE(ux_syms) },
		{ "zstd", { 0x28, 0xb5, 0x2f, 0xfd }, 4, unpack_zstd, "libzstd.so.1", "libzstd1",
		  uzs_syms, ARRAY_SIZE(uzs_syms) },
		{ "bzip2", { 'B', 'Z', 'h' }, 3, NULL, NULL, NULL, NULL, 0 },
		{ "lzma", { 0x5d, 0, 0 }, 3, NULL, NULL, NULL, NULL, 0 },
		{ "lzo", { 0x89, 'L', 'Z', 'O' }, 4, NULL, NULL, NULL, NULL, 0 },
		{ "lz4", { 0x02, 0x21, 0x4c, 0x18 }, 4, NULL, NULL, NULL, NULL, 0 },
	};
	char why[256];
	void *h;
	const uint8_t *k = kernel, *p;
	uint64_t setup_size, poff, plen, size, init_size;
	unsigned int i;
	uint8_t *buf;
	int ret;

	*out = NULL;
	*out_len = 0;
	*format = "?";
	if (klen < INIT_SIZE_OFF + 4 || unpack_le32(k + HDRS_OFF) != HDRS_MAGIC)
		return -ENOEXEC;
	if ((uint16_t)(k[VERSION_OFF] | k[VERSION_OFF + 1] << 8) < PAYLOAD_MIN_VERSION) {
		log_err(UNPACK_LOG, "--decompress host: boot protocol older than 2.08 has no payload fields");
		return -ENOEXEC;
	}
	setup_size = ((uint64_t)(k[SETUP_SECTS_OFF] ? k[SETUP_SECTS_OFF] : 4) + 1) * 512;
	poff = unpack_le32(k + PAYLOAD_OFFSET_OFF);
	plen = unpack_le32(k + PAYLOAD_LENGTH_OFF);
	init_size = unpack_le32(k + INIT_SIZE_OFF);
	if (plen < 8 || setup_size + poff > klen || plen > klen - setup_size - poff) {
		log_err(UNPACK_LOG, "--decompress host: payload [0x%llx+0x%llx] lies outside the %zu-byte bzImage",
			(unsigned long long)(setup_size + poff), (unsigned long long)plen, klen);
		return -EINVAL;
	}
	p = k + setup_size + poff;
	for (i = 0; i < ARRAY_SIZE(fmts); i++)
		if (!memcmp(p, fmts[i].magic, fmts[i].mlen))
			break;
	if (i == ARRAY_SIZE(fmts)) {
		log_err(UNPACK_LOG, "--decompress host: the payload's compression is not recognised (%02x %02x %02x %02x)",
			p[0], p[1], p[2], p[3]);
		return -EOPNOTSUPP;
	}
	*format = fmts[i].name;
	if (!fmts[i].fn) {
		log_err(UNPACK_LOG, "--decompress host: %s-compressed kernels are not supported (gzip, xz and zstd are): use --decompress guest",
			fmts[i].name);
		return -EOPNOTSUPP;
	}
	size = unpack_le32(p + plen - 4); /* the size the build appended */
	if (size < sizeof(Elf64_Ehdr) || size > X86_UNPACK_MAX || (init_size && size > init_size)) {
		log_err(UNPACK_LOG, "--decompress host: decompressed size %llu is out of bounds (init_size %llu, limit %llu MiB)",
			(unsigned long long)size, (unsigned long long)init_size,
			(unsigned long long)(X86_UNPACK_MAX / MiB));
		return -EFBIG;
	}
	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	pthread_mutex_lock(&unpack_lock);
	ret = dynlib__open(fmts[i].soname, fmts[i].package, fmts[i].syms, fmts[i].nsyms, &h, why,
			   sizeof(why));
	if (ret) {
		pthread_mutex_unlock(&unpack_lock);
		log_err(UNPACK_LOG, "--decompress host: %s", why);
		ret = -EOPNOTSUPP;
		goto err_free;
	}
	ret = fmts[i].fn(p, plen - 4, buf, size);
	dynlib__close(h);
	pthread_mutex_unlock(&unpack_lock);
	if (ret) {
		log_err(UNPACK_LOG, "--decompress host: the %s payload does not decompress to its %llu bytes%s",
			fmts[i].name, (unsigned long long)size, ret == -ENOMEM ? " (out of memory)" : " (damaged)");
		goto err_free;
	}
	if (memcmp(buf, ELFMAG, SELFMAG)) {
		log_err(UNPACK_LOG, "--decompress host: the decompressed payload is not an ELF file");
		ret = -ENOEXEC;
		goto err_free;
	}
	*out = buf;
	*out_len = size;
	return 0;

err_free:
	free(buf);
	return ret;
}

/*
 * The cached ELF at path, when it is there and sane; -ENOENT when absent.
 * Mapped, not read: the boot copies the ELF's segments into guest RAM from
 * the page cache directly (MAP_POPULATE: no fault per page), where a read
 * would first copy all of it into a buffer. The pages are the file's: they
 * stay what was checked because entries are never written in place (a new
 * entry is a new file renamed over the old one, whose pages this mapping
 * keeps; pruning unlinks) and the directory is this user's alone
 * (x86_unpack__cached refuses any other), so only this user could change
 * one under the boot.
 */
static int unpack_cache_read(const char *path, void **out, size_t *out_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), ret = 0;
	struct stat st;
	void *map;

	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(Elf64_Ehdr) ||
	    (uint64_t)st.st_size > X86_UNPACK_MAX) {
		close(fd);
		return -EINVAL;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	if (map == MAP_FAILED)
		ret = -errno;
	close(fd);
	if (ret)
		return ret;
	if (memcmp(map, ELFMAG, SELFMAG)) {
		munmap(map, (size_t)st.st_size);
		return -EINVAL;
	}
	*out = map;
	*out_len = (size_t)st.st_size;
	return 0;
}

void x86_unpack__release(void *buf, size_t len, bool mapped)
{
	if (!buf)
		return;
	if (mapped)
		munmap(buf, len);
	else
		free(buf);
}

/* writes buf to path through a temporary file and a rename */
static int unpack_cache_write(const char *dir, const char *path, const void *buf, size_t len)
{
	char tmp[4096];
	int fd, ret;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.minivmm-kernel-XXXXXX", dir) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = (int)sys__pwrite_full(fd, buf, len, 0);
	ret = ret < 0 ? ret : (size_t)ret == len ? 0 : -EIO;
	if (!ret && fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

int x86_unpack__default_cache(char *buf, size_t len)
{
	const char *home, *xdg;
	char *p;
	int n;

	if (geteuid() == 0) {
		n = snprintf(buf, len, "/var/cache/minivmm/kernels");
	} else if ((xdg = getenv("XDG_CACHE_HOME")) && xdg[0] == '/') {
		n = snprintf(buf, len, "%s/minivmm/kernels", xdg);
	} else if ((home = getenv("HOME")) && home[0] == '/') {
		n = snprintf(buf, len, "%s/.cache/minivmm/kernels", home);
	} else {
		return -ENOENT;
	}
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	/* the parents, one by one (the leaf is x86_unpack__cached's) */
	for (p = strchr(buf + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(buf, 0700) && errno != EEXIST) {
			int ret = -errno;

			*p = '/';
			return ret;
		}
		*p = '/';
	}
	return 0;
}

/* a cache entry's name: 64 hex digits and ".elf" */
static bool unpack_cache_name(const char *n)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'a' && n[i] <= 'f')))
			return false;
	return !strcmp(n + 64, ".elf");
}

/* removes all but the X86_UNPACK_CACHE_KEEP most recently used entries of dir */
static void unpack_cache_prune(const char *dir)
{
	struct {
		char name[72];
		struct timespec t;
	} keep[X86_UNPACK_CACHE_KEEP + 1];
	unsigned int n = 0, i, j, seen = 0;
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!unpack_cache_name(e->d_name) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		seen++;
		/* insert by mtime, newest first; what falls off the end goes */
		for (i = 0; i < n; i++)
			if (st.st_mtim.tv_sec > keep[i].t.tv_sec ||
			    (st.st_mtim.tv_sec == keep[i].t.tv_sec &&
			     st.st_mtim.tv_nsec > keep[i].t.tv_nsec))
				break;
		if (i == X86_UNPACK_CACHE_KEEP) {
			unlinkat(dirfd(d), e->d_name, 0);
			continue;
		}
		if (n == X86_UNPACK_CACHE_KEEP) {
			unlinkat(dirfd(d), keep[n - 1].name, 0);
			n--;
		}
		for (j = n; j > i; j--)
			keep[j] = keep[j - 1];
		memcpy(keep[i].name, e->d_name, 69); /* 64 + ".elf" + NUL: unpack_cache_name */
		keep[i].t = st.st_mtim;
		n++;
	}
	closedir(d);
	if (seen > n)
		log_info(UNPACK_LOG, "--kernel-cache %s: %u older kernel(s) removed (%d are kept)", dir,
			 seen - n, X86_UNPACK_CACHE_KEEP);
}

int x86_unpack__cached(const void *k, size_t klen, const char *dir, void **out, size_t *out_len,
		       const char **format, bool *hit)
{
	uint8_t digest[SHA256_DIGEST_SIZE];
	struct sha256_ctx sha;
	char path[4096], why[256];
	struct stat st;
	void *h;
	size_t n;
	int ret;

	*out = NULL;
	*out_len = 0;
	*format = "?";
	*hit = false;
	if (stat(dir, &st) && errno == ENOENT && !mkdir(dir, 0700))
		log_info(UNPACK_LOG, "--kernel-cache: created %s", dir);
	if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
		log_err(UNPACK_LOG, "--kernel-cache %s: not a directory", dir);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		log_err(UNPACK_LOG, "--kernel-cache %s: must belong to this user and not be writable by group or others (whoever writes there picks the guest's kernel)",
			dir);
		return -EPERM;
	}
	pthread_mutex_lock(&unpack_lock);
	ret = dynlib__open("libnettle.so.8", "libnettle8", un_syms, ARRAY_SIZE(un_syms), &h, why,
			   sizeof(why));
	if (!ret) {
		un.nettle_sha256_init(&sha);
		un.nettle_sha256_update(&sha, klen, k);
		un.nettle_sha256_digest(&sha, sizeof(digest), digest);
		dynlib__close(h);
	}
	pthread_mutex_unlock(&unpack_lock);
	if (ret) {
		log_err(UNPACK_LOG, "--kernel-cache: %s", why);
		return ret;
	}
	n = (size_t)snprintf(path, sizeof(path), "%s/", dir);
	for (unsigned int i = 0; i < sizeof(digest) && n < sizeof(path); i++)
		n += (size_t)snprintf(path + n, sizeof(path) - n, "%02x", digest[i]);
	if (n + 5 >= sizeof(path))
		return -ENAMETOOLONG;
	strcat(path, ".elf");

	ret = unpack_cache_read(path, out, out_len);
	if (!ret) {
		*hit = true;
		*format = "cached";
		utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW); /* used: the last to go */
		return 0;
	}
	if (ret != -ENOENT)
		log_warn(UNPACK_LOG, "--kernel-cache: %s is unusable (%s): decompressing again", path,
			 strerror(-ret));
	ret = x86_unpack__bzimage(k, klen, out, out_len, format);
	if (ret)
		return ret;
	ret = unpack_cache_write(dir, path, *out, *out_len);
	if (ret)
		log_warn(UNPACK_LOG, "--kernel-cache: cannot keep the kernel in %s: %s", dir,
			 strerror(-ret));
	else
		unpack_cache_prune(dir);
	return 0;
}
