/* SPDX-License-Identifier: MIT */
/*
 * A fake sysfs tree for the SR-IOV, doctor and VFIO check tests: directories,
 * attribute files, and the symlinks the kernel makes (bus/pci/devices/BDF ->
 * devices/pci0000:00/.../BDF, driver, iommu_group, physfn, virtfnN), plus
 * config space images with crafted capability lists. Header-only, static.
 */
#ifndef MINIVMM_TESTS_FAKE_SYSFS_H
#define MINIVMM_TESTS_FAKE_SYSFS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fake {
	char root[128];
	char buf[PATH_MAX];
};

static inline const char *fk_path(struct fake *f, const char *fmt, va_list ap)
{
	int n = snprintf(f->buf, sizeof(f->buf), "%s/", f->root);

	vsnprintf(f->buf + n, sizeof(f->buf) - (size_t)n, fmt, ap);
	return f->buf;
}

static inline __attribute__((format(printf, 2, 3))) const char *fk_p(struct fake *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fk_path(f, fmt, ap);
	va_end(ap);
	return f->buf;
}

static inline void fk_mkdirs(const char *path)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *s = tmp + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		mkdir(tmp, 0755);
		*s = '/';
	}
	mkdir(tmp, 0755);
}

static inline __attribute__((format(printf, 2, 3))) void fk_dir(struct fake *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fk_path(f, fmt, ap);
	va_end(ap);
	fk_mkdirs(f->buf);
}

static inline void fk_parent(const char *path)
{
	char tmp[PATH_MAX], *s;

	snprintf(tmp, sizeof(tmp), "%s", path);
	s = strrchr(tmp, '/');
	if (s) {
		*s = '\0';
		fk_mkdirs(tmp);
	}
}

/* writes a file (creating its directory) with content */
static inline __attribute__((format(printf, 3, 4))) void fk_file(struct fake *f, const char *content,
							    const char *fmt, ...)
{
	va_list ap;
	FILE *fp;

	va_start(ap, fmt);
	fk_path(f, fmt, ap);
	va_end(ap);
	fk_parent(f->buf);
	fp = fopen(f->buf, "w");
	cr_assert_not_null(fp, "create %s", f->buf);
	fputs(content, fp);
	fclose(fp);
}

static inline void fk_write_bytes(struct fake *f, const char *rel, const void *data, size_t len)
{
	FILE *fp;

	fk_p(f, "%s", rel);
	fk_parent(f->buf);
	fp = fopen(f->buf, "w");
	cr_assert_not_null(fp);
	cr_assert_eq(fwrite(data, 1, len, fp), len);
	fclose(fp);
}

/* reads a file of the tree; "" when missing */
static inline __attribute__((format(printf, 2, 3))) const char *fk_read(struct fake *f, const char *fmt, ...)
{
	static char out[4096];
	va_list ap;
	size_t n;
	FILE *fp;

	va_start(ap, fmt);
	fk_path(f, fmt, ap);
	va_end(ap);
	out[0] = '\0';
	fp = fopen(f->buf, "r");
	if (!fp)
		return out;
	n = fread(out, 1, sizeof(out) - 1, fp);
	out[n] = '\0';
	fclose(fp);
	return out;
}

/* symlink at rel pointing to target (absolute path inside the tree) */
static inline void fk_link(struct fake *f, const char *rel, const char *target_rel)
{
	char target[PATH_MAX];

	snprintf(target, sizeof(target), "%s/%s", f->root, target_rel);
	fk_p(f, "%s", rel);
	fk_parent(f->buf);
	unlink(f->buf);
	cr_assert_eq(symlink(target, f->buf), 0, "symlink %s: %s", f->buf, strerror(errno));
}

static inline void fk_init(struct fake *f)
{
	snprintf(f->root, sizeof(f->root), "/tmp/minivmm-fakesys-XXXXXX");
	cr_assert_not_null(mkdtemp(f->root));
	fk_dir(f, "bus/pci/devices");
	fk_dir(f, "bus/pci/drivers");
	fk_file(f, "", "bus/pci/drivers_probe");
	fk_dir(f, "kernel/iommu_groups");
	fk_dir(f, "class/iommu");
	fk_dir(f, "class/net");
	fk_dir(f, "module");
	fk_dir(f, "devices/pci0000:00");
}

static inline int fk_rm(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static inline void fk_fini(struct fake *f)
{
	if (f->root[0])
		nftw(f->root, fk_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- config space images --- */
#define FK_CFG 4096

static inline void fk_cfg_init(uint8_t *cfg, int pcie_type)
{
	memset(cfg, 0, FK_CFG);
	cfg[0] = 0x86;
	cfg[1] = 0x80;
	if (pcie_type < 0)
		return;
	cfg[0x06] = 0x10;          /* status: capability list */
	cfg[0x34] = 0x40;
	cfg[0x40] = 0x10;          /* PCI Express capability */
	cfg[0x41] = 0x00;
	cfg[0x42] = (uint8_t)(0x2 | pcie_type << 4);
}

/* puts an extended capability header at off */
static inline void fk_cfg_ext(uint8_t *cfg, unsigned int off, uint16_t id, unsigned int next)
{
	uint32_t hdr = id | 1u << 16 | next << 20;

	memcpy(cfg + off, &hdr, 4);
}

/* ACS capability at off with capability and control registers */
static inline void fk_cfg_acs(uint8_t *cfg, unsigned int off, unsigned int next, uint16_t cap,
		       uint16_t ctrl)
{
	fk_cfg_ext(cfg, off, 0x000d, next);
	memcpy(cfg + off + 4, &cap, 2);
	memcpy(cfg + off + 6, &ctrl, 2);
}

/* --- devices --- */
/* device dir under parent's (NULL: the root bus), its bus link and config */
static inline void fk_pci(struct fake *f, const char *parent, const char *bdf, const uint8_t *cfg,
		   size_t cfglen)
{
	char dir[PATH_MAX], pdir[PATH_MAX], rel[PATH_MAX + 64];
	ssize_t n;

	if (parent) {
		fk_p(f, "bus/pci/devices/%s", parent);
		n = readlink(f->buf, pdir, sizeof(pdir) - 1);
		cr_assert_gt(n, 0);
		pdir[n] = '\0';
		snprintf(dir, sizeof(dir), "%s/%s", pdir + strlen(f->root) + 1, bdf);
	} else {
		snprintf(dir, sizeof(dir), "devices/pci0000:00/%s", bdf);
	}
	fk_dir(f, "%s", dir);
	snprintf(rel, sizeof(rel), "bus/pci/devices/%s", bdf);
	fk_link(f, rel, dir);
	if (cfg) {
		snprintf(rel, sizeof(rel), "%s/config", dir);
		fk_write_bytes(f, rel, cfg, cfglen);
	}
	fk_file(f, "", "%s/driver_override", dir);
}

static inline void fk_driver(struct fake *f, const char *bdf, const char *drv)
{
	char rel[256], target[256];

	fk_dir(f, "bus/pci/drivers/%s", drv);
	fk_file(f, "", "bus/pci/drivers/%s/unbind", drv);
	fk_file(f, "", "bus/pci/drivers/%s/bind", drv);
	snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver", bdf);
	snprintf(target, sizeof(target), "bus/pci/drivers/%s", drv);
	fk_link(f, rel, target);
}

static inline void fk_group(struct fake *f, const char *bdf, int group)
{
	char rel[256], target[256];

	fk_dir(f, "kernel/iommu_groups/%d/devices", group);
	snprintf(rel, sizeof(rel), "kernel/iommu_groups/%d/devices/%s", group, bdf);
	snprintf(target, sizeof(target), "bus/pci/devices/%s", bdf);
	fk_link(f, rel, target);
	snprintf(rel, sizeof(rel), "bus/pci/devices/%s/iommu_group", bdf);
	snprintf(target, sizeof(target), "kernel/iommu_groups/%d", group);
	fk_link(f, rel, target);
}

static inline void fk_intel_iommu(struct fake *f, const char *name, const char *cap, const char *ecap)
{
	fk_file(f, cap, "class/iommu/%s/intel-iommu/cap", name);
	fk_file(f, ecap, "class/iommu/%s/intel-iommu/ecap", name);
}

#endif
