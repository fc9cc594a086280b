// SPDX-License-Identifier: MIT
/* migration/stream.c: framing, round trips and every corruption we can think of. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/stream.h"

/* ---- two fake devices ---- */

struct nic {
	uint32_t status;
	uint64_t features;
	uint8_t mac[6];
	char label[16];
	uint16_t qsize[2];
	uint32_t extra;   /* added in version 2: default 77 when loading version 1 */
	int skip_field;   /* save leaves "features" out */
	int dup_field;    /* save writes "status" twice */
	int loads;
};

static int nic_save(void *opaque, void *fdt)
{
	struct nic *n = opaque;
	char qname[16];
	int rc;

	rc = mig__put_u32(fdt, "status", n->status);
	if (!rc && n->dup_field)
		rc = mig__put_u32(fdt, "status", n->status);
	if (!rc && !n->skip_field)
		rc = mig__put_u64(fdt, "features", n->features);
	if (!rc)
		rc = mig__put_bytes(fdt, "mac", n->mac, sizeof(n->mac));
	if (!rc)
		rc = mig__put_str(fdt, "label", n->label);
	if (!rc)
		rc = mig__put_u32(fdt, "extra", n->extra);
	for (int i = 0; i < 2 && !rc; i++) {
		snprintf(qname, sizeof(qname), "queue@%d", i);
		rc = mig__begin_node(fdt, qname);
		if (!rc)
			rc = mig__put_u32(fdt, "size", n->qsize[i]);
		if (!rc)
			rc = mig__end_node(fdt);
	}
	return rc;
}

static int nic_load(void *opaque, const void *fdt, int node, uint32_t version)
{
	struct nic *n = opaque;
	struct nic tmp = *n;
	char qname[16];
	int rc;

	/* validate everything into tmp, then commit */
	rc = mig__get_u32(fdt, node, "status", &tmp.status);
	if (!rc)
		rc = mig__get_u64(fdt, node, "features", &tmp.features);
	if (!rc)
		rc = mig__get_bytes(fdt, node, "mac", tmp.mac, sizeof(tmp.mac));
	if (!rc)
		rc = mig__get_str(fdt, node, "label", tmp.label, sizeof(tmp.label));
	if (!rc) {
		if (version >= 2)
			rc = mig__get_u32(fdt, node, "extra", &tmp.extra);
		else
			tmp.extra = 77;
	}
	for (int i = 0; i < 2 && !rc; i++) {
		uint32_t sz = 0;
		int q;

		snprintf(qname, sizeof(qname), "queue@%d", i);
		q = mig__get_node(fdt, node, qname);
		if (q < 0) {
			rc = q;
			break;
		}
		rc = mig__get_u32(fdt, q, "size", &sz);
		if (!rc && sz > 0xffff)
			rc = -EINVAL;
		tmp.qsize[i] = (uint16_t)sz;
	}
	if (rc)
		return rc;
	tmp.loads = n->loads + 1;
	*n = tmp;
	return 0;
}

static const struct mig_section_ops nic_ops = { .save = nic_save, .load = nic_load };

struct disk {
	uint64_t sectors;
	size_t blob_len;
	uint8_t *blob; /* big enough to make the tree grow past its first buffer */
	int loads;
};

static int disk_save(void *opaque, void *fdt)
{
	struct disk *d = opaque;
	int rc = mig__put_u64(fdt, "sectors", d->sectors);

	if (!rc)
		rc = mig__put_bytes(fdt, "blob", d->blob, d->blob_len);
	return rc;
}

static int disk_load(void *opaque, const void *fdt, int node, uint32_t version)
{
	struct disk *d = opaque;
	uint64_t sectors;
	const void *blob;
	size_t len;
	int rc;

	rc = mig__get_u64(fdt, node, "sectors", &sectors);
	if (!rc)
		rc = mig__get_blob(fdt, node, "blob", &blob, &len);
	if (rc)
		return rc;
	if (len != d->blob_len)
		return -EINVAL;
	memcpy(d->blob, blob, len);
	d->sectors = sectors;
	d->loads++;
	return 0;
}

static const struct mig_section_ops disk_ops = { .save = disk_save, .load = disk_load };

/* ---- fixtures ---- */

#define BLOB_LEN 20000

static struct nic src_nic, dst_nic;
static struct disk src_disk, dst_disk;
static uint8_t src_blob[BLOB_LEN], dst_blob[BLOB_LEN];
static struct mig_registry src, dst;

static void nic_fill(struct nic *n)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };

	memset(n, 0, sizeof(*n));
	n->status = 0xf;
	n->features = 0x1300000000ull | 0x20;
	memcpy(n->mac, mac, sizeof(mac));
	strcpy(n->label, "net0");
	n->qsize[0] = 256;
	n->qsize[1] = 1024;
	n->extra = 5;
}

/* the destination devices as before any load */
static void setup_dst(void)
{
	memset(&dst_nic, 0, sizeof(dst_nic));
	dst_nic.status = 0x5a5a5a5a; /* sentinel: must survive a failed load */
	memset(dst_blob, 0xee, BLOB_LEN);
	dst_disk = (struct disk){ .sectors = 1, .blob = dst_blob, .blob_len = BLOB_LEN };
}

static void setup(void)
{
	nic_fill(&src_nic);
	for (size_t i = 0; i < BLOB_LEN; i++)
		src_blob[i] = (uint8_t)(i * 7 + 3);
	src_disk = (struct disk){ .sectors = 1ull << 33, .blob = src_blob, .blob_len = BLOB_LEN };
	setup_dst();

	mig__registry_init(&src);
	mig__registry_init(&dst);
}

static void teardown(void)
{
	mig__registry_release(&src);
	mig__registry_release(&dst);
}

TestSuite(stream, .init = setup, .fini = teardown);

static void reg_both(uint32_t src_nic_ver, uint32_t dst_nic_ver, uint32_t dst_nic_min)
{
	cr_assert_eq(mig__section_register(&src, "virtio-net", 0, src_nic_ver, 1, &nic_ops,
					   &src_nic), 0);
	cr_assert_eq(mig__section_register(&src, "virtio-blk", 3, 1, 1, &disk_ops, &src_disk), 0);
	cr_assert_eq(mig__section_register(&dst, "virtio-net", 0, dst_nic_ver, dst_nic_min,
					   &nic_ops, &dst_nic), 0);
	cr_assert_eq(mig__section_register(&dst, "virtio-blk", 3, 1, 1, &disk_ops, &dst_disk), 0);
}

/* saves src into a memory writer; caller releases it */
static const uint8_t *save_mem(struct mig_writer *w, size_t *len)
{
	mig__writer_init_mem(w, 0);
	cr_assert_eq(mig__stream_save(&src, w), 0, "%s", mig__error(&src));
	return mig__writer_data(w, len);
}

static int load_mem(const void *buf, size_t len)
{
	struct mig_reader rd;

	mig__reader_init_mem(&rd, buf, len);
	return mig__stream_load(&dst, &rd, NULL);
}

static void assert_loaded(void)
{
	cr_assert_eq(dst_nic.loads, 1);
	cr_assert_eq(dst_nic.status, src_nic.status);
	cr_assert_eq(dst_nic.features, src_nic.features);
	cr_assert_eq(memcmp(dst_nic.mac, src_nic.mac, 6), 0);
	cr_assert_str_eq(dst_nic.label, "net0");
	cr_assert_eq(dst_nic.qsize[0], 256);
	cr_assert_eq(dst_nic.qsize[1], 1024);
	cr_assert_eq(dst_disk.loads, 1);
	cr_assert_eq(dst_disk.sectors, 1ull << 33);
	cr_assert_eq(memcmp(dst_blob, src_blob, BLOB_LEN), 0);
}

static void assert_untouched(void)
{
	cr_assert_eq(dst_nic.loads, 0);
	cr_assert_eq(dst_nic.status, 0x5a5a5a5a);
	cr_assert_eq(dst_disk.loads, 0);
	cr_assert_eq(dst_disk.sectors, 1);
	cr_assert_eq(dst_blob[0], 0xee);
}

static void assert_err(const char *needle)
{
	cr_assert(strstr(mig__error(&dst), needle), "error '%s' lacks '%s'", mig__error(&dst),
		  needle);
}

Test(stream, crc32_known_value)
{
	cr_assert_eq(mig__crc32(0, "123456789", 9), 0xcbf43926u);
	cr_assert_eq(mig__crc32(mig__crc32(0, "1234", 4), "56789", 5), 0xcbf43926u);
	cr_assert_eq(mig__crc32(0, NULL, 0), 0);
}

Test(stream, round_trip_memory)
{
	struct mig_writer w;
	size_t len;
	const uint8_t *buf;

	reg_both(2, 2, 1);
	buf = save_mem(&w, &len);
	cr_assert_eq(memcmp(buf, "MVMMSTRM\1\0\0\0\0\0\0\0", 16), 0, "header layout");
	cr_assert_eq(buf[16], MIG_REC_SECTION);
	cr_assert_eq(load_mem(buf, len), 0, "%s", mig__error(&dst));
	assert_loaded();
	cr_assert_eq(dst_nic.extra, 5);
	mig__writer_release(&w);
}

Test(stream, round_trip_pipe)
{
	struct mig_writer w;
	struct mig_reader rd;
	int p[2];

	src_disk.blob_len = dst_disk.blob_len = 1000; /* the whole stream fits the pipe */
	reg_both(2, 2, 1);
	cr_assert_eq(pipe(p), 0);
	mig__writer_init_fd(&w, p[1]);
	cr_assert_eq(mig__stream_save(&src, &w), 0, "%s", mig__error(&src));
	mig__writer_release(&w);
	close(p[1]);
	mig__reader_init_fd(&rd, p[0]);
	cr_assert_eq(mig__stream_load(&dst, &rd, NULL), 0, "%s", mig__error(&dst));
	cr_assert_eq(rd.consumed, w.written);
	close(p[0]);
	cr_assert_eq(dst_nic.loads, 1);
	cr_assert_eq(dst_nic.features, src_nic.features);
	cr_assert_eq(memcmp(dst_blob, src_blob, 1000), 0);
}

struct ram_ctx {
	uint8_t *mem;
	int calls;
};

static int ram_load(void *opaque, uint64_t gpa, const void *data, size_t len)
{
	struct ram_ctx *c = opaque;

	if (gpa < 0x1000 || gpa + len > 0x1000 + 3 * 4096)
		return -EFAULT;
	memcpy(c->mem + (gpa - 0x1000), data, len);
	c->calls++;
	return 0;
}

Test(stream, round_trip_tmpfile_with_ram)
{
	struct mig_writer w;
	struct mig_reader rd;
	static uint8_t ram[3 * 4096], guest[3 * 4096];
	struct mig_ram_sink sink = { 0 };
	FILE *f = tmpfile();
	int fd;

	struct ram_ctx ctx = { guest, 0 };

	cr_assert_not_null(f);
	fd = fileno(f);
	for (size_t i = 0; i < sizeof(ram); i++)
		ram[i] = (uint8_t)(i ^ (i >> 8));
	reg_both(2, 2, 1);
	mig__writer_init_fd(&w, fd);
	cr_assert_eq(mig__stream_write_header(&src, &w), 0);
	cr_assert_eq(mig__stream_write_ram(&src, &w, 0x1000, ram, 4096), 0);
	for (size_t i = 0; i < mig__section_count(&src); i++)
		cr_assert_eq(mig__stream_write_section(&src, &w, mig__section_at(&src, i)), 0);
	cr_assert_eq(mig__stream_write_ram(&src, &w, 0x2000, ram + 4096, 2 * 4096), 0);
	cr_assert_eq(mig__stream_write_end(&src, &w), 0);
	mig__writer_release(&w);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);

	/* no sink: RAM records are refused and no device is touched */
	mig__reader_init_fd(&rd, fd);
	cr_assert_eq(mig__stream_load(&dst, &rd, NULL), -EINVAL);
	assert_err("no RAM sink");
	assert_untouched();

	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	sink.load = ram_load;
	sink.opaque = &ctx;
	mig__reader_init_fd(&rd, fd);
	cr_assert_eq(mig__stream_load(&dst, &rd, &sink), 0, "%s", mig__error(&dst));
	cr_assert_eq(ctx.calls, 2);
	cr_assert_eq(memcmp(guest, ram, sizeof(ram)), 0);
	assert_loaded();
	fclose(f);
}

Test(stream, flipped_payload_byte_is_a_crc_error)
{
	struct mig_writer w;
	size_t len;
	uint8_t *copy;

	reg_both(2, 2, 1);
	{
		const uint8_t *buf = save_mem(&w, &len);

		copy = malloc(len);
		memcpy(copy, buf, len);
	}
	/* every byte of the first record's payload, one at a time */
	{
		uint64_t plen = 0;

		memcpy(&plen, copy + 16 + 8, 8);
		for (uint64_t i = 0; i < plen; i += 7) {
			copy[32 + i] ^= 0x40;
			cr_assert_eq(load_mem(copy, len), -EBADMSG, "byte %llu",
				     (unsigned long long)i);
			assert_err("CRC mismatch");
			copy[32 + i] ^= 0x40;
		}
		/* the disk record too, near its end */
		copy[len - 16 - 3] ^= 1;
		cr_assert_eq(load_mem(copy, len), -EBADMSG);
		assert_err("CRC mismatch");
	}
	assert_untouched();
	free(copy);
	mig__writer_release(&w);
}

Test(stream, truncated_at_every_offset)
{
	struct mig_writer w;
	size_t len;
	const uint8_t *buf;

	src_disk.blob_len = dst_disk.blob_len = 64; /* keep the stream small */
	reg_both(2, 2, 1);
	buf = save_mem(&w, &len);
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		int rc;

		memcpy(copy, buf, cut);
		rc = load_mem(copy, cut);
		cr_assert_eq(rc, -EBADMSG, "cut at %zu of %zu: rc %d (%s)", cut, len, rc,
			     mig__error(&dst));
		cr_assert(strstr(mig__error(&dst), "truncated"), "cut %zu: %s", cut,
			  mig__error(&dst));
		assert_untouched();
		free(copy);
	}
	/* and through a pipe, cut in the middle */
	{
		struct mig_reader rd;
		int p[2];

		cr_assert_eq(pipe(p), 0);
		cr_assert_eq(write(p[1], buf, len / 2), (ssize_t)(len / 2));
		close(p[1]);
		mig__reader_init_fd(&rd, p[0]);
		cr_assert_eq(mig__stream_load(&dst, &rd, NULL), -EBADMSG);
		close(p[0]);
	}
	cr_assert_eq(load_mem(buf, len), 0, "%s", mig__error(&dst));
	mig__writer_release(&w);
}

/* writes header + the given section trees (raw) + end */
static void write_stream(struct mig_writer *w, void **trees, size_t *lens, size_t n)
{
	mig__writer_init_mem(w, 0);
	cr_assert_eq(mig__stream_write_header(&src, w), 0);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(mig__stream_write_record(&src, w, MIG_REC_SECTION, trees[i], lens[i]),
			     0);
	cr_assert_eq(mig__stream_write_end(&src, w), 0);
}

/* a stream of these trees is refused (-EBADMSG), the error naming needle (unless NULL) */
static void assert_trees_refused(void **trees, size_t *lens, size_t n, const char *needle,
				 bool untouched)
{
	struct mig_writer w;
	const void *buf;
	size_t len;

	write_stream(&w, trees, lens, n);
	buf = mig__writer_data(&w, &len);
	cr_assert_eq(load_mem(buf, len), -EBADMSG);
	if (needle)
		assert_err(needle);
	if (untouched)
		assert_untouched();
	mig__writer_release(&w);
}

Test(stream, tree_failing_fdt_check_full)
{
	void *trees[2];
	size_t lens[2];
	uint8_t *t;

	reg_both(2, 2, 1);
	cr_assert_eq(mig__section_save_fdt(&src, mig__section_at(&src, 0), &trees[0], &lens[0]), 0);
	cr_assert_eq(mig__section_save_fdt(&src, mig__section_at(&src, 1), &trees[1], &lens[1]), 0);
	/* break the structure block's first token (FDT_BEGIN_NODE) */
	t = trees[0];
	t[fdt_off_dt_struct(t) + 3] = 0x7;
	cr_assert_neq(fdt_check_full(t, lens[0]), 0);
	assert_trees_refused(trees, lens, 2, "fdt_check_full", true);

	/* a header whose totalsize lies */
	t[fdt_off_dt_struct(t) + 3] = 0x1;
	cr_assert_eq(fdt_check_full(t, lens[0]), 0);
	((struct fdt_header *)t)->totalsize = cpu_to_fdt32(lens[0] + 100);
	assert_trees_refused(trees, lens, 2, "fdt_check_full", false);

	/*
	 * an old-version tree (version 9) whose root is named without a '/':
	 * libfdt 1.6.1's fdt_check_full dereferences the NULL that
	 * fdt_get_name gives for it (the migration fuzz harness's crash of
	 * 2026-12-03): refused before libfdt walks it
	 */
	((struct fdt_header *)t)->totalsize = cpu_to_fdt32(lens[0]);
	((struct fdt_header *)t)->version = cpu_to_fdt32(9);
	((struct fdt_header *)t)->last_comp_version = cpu_to_fdt32(2);
	assert_trees_refused(trees, lens, 2, "not a version 17 flattened tree", true);
	((struct fdt_header *)t)->version = cpu_to_fdt32(17);
	((struct fdt_header *)t)->last_comp_version = cpu_to_fdt32(16);

	/* not a tree at all */
	memset(t, 0xab, lens[0]);
	assert_trees_refused(trees, lens, 2, NULL, true);
	free(trees[0]);
	free(trees[1]);
}

Test(stream, section_from_the_future)
{
	struct mig_writer w;
	const void *buf;
	size_t len;

	reg_both(3, 2, 1);
	buf = save_mem(&w, &len);
	cr_assert_eq(load_mem(buf, len), -EINVAL);
	assert_err("'virtio-net' instance 0");
	assert_err("version 3, newer than this build's version 2");
	assert_untouched();
	mig__writer_release(&w);
}

Test(stream, section_below_min_version)
{
	struct mig_writer w;
	const void *buf;
	size_t len;

	reg_both(1, 4, 2);
	buf = save_mem(&w, &len);
	cr_assert_eq(load_mem(buf, len), -EINVAL);
	assert_err("'virtio-net' instance 0");
	assert_err("version 1, older");
	assert_err("accepts 2..4");
	assert_untouched();
	mig__writer_release(&w);
}

Test(stream, older_version_inside_window_uses_defaults)
{
	struct mig_writer w;
	const void *buf;
	size_t len;

	reg_both(1, 2, 1);
	buf = save_mem(&w, &len);
	cr_assert_eq(load_mem(buf, len), 0, "%s", mig__error(&dst));
	assert_loaded();
	cr_assert_eq(dst_nic.extra, 77, "version 1 stream: the v2 field gets its default");
	mig__writer_release(&w);
}

Test(stream, missing_required_field)
{
	struct mig_writer w;
	const void *buf;
	size_t len;

	src_nic.skip_field = 1;
	reg_both(2, 2, 1);
	buf = save_mem(&w, &len);
	cr_assert_eq(load_mem(buf, len), -ENOENT);
	assert_err("'virtio-net' instance 0 (version 2): load failed");
	assert_err("required field 'features' is missing");
	cr_assert_eq(dst_nic.loads, 0);
	cr_assert_eq(dst_nic.status, 0x5a5a5a5a, "load() validated before committing");
	mig__writer_release(&w);
}

Test(stream, unknown_section_name)
{
	struct mig_writer w;
	const void *buf;
	size_t len;

	reg_both(2, 2, 1);
	cr_assert_eq(mig__section_register(&src, "ghost", 0, 1, 1, &nic_ops, &src_nic), 0);
	buf = save_mem(&w, &len);
	cr_assert_eq(load_mem(buf, len), -EINVAL);
	assert_err("section 'ghost' instance 0 (version 1), which nobody registered");
	assert_untouched();
	mig__writer_release(&w);
}

Test(stream, registered_section_missing_from_stream)
{
	struct mig_writer w;
	const void *buf;
	size_t len;

	reg_both(2, 2, 1);
	cr_assert_eq(mig__section_register(&dst, "rtc", 0, 1, 1, &nic_ops, &dst_nic), 0);
	buf = save_mem(&w, &len);
	cr_assert_eq(load_mem(buf, len), -EINVAL);
	assert_err("'rtc' instance 0 is registered but not in the stream");
	assert_untouched();
	mig__writer_release(&w);
}

Test(stream, duplicated_section)
{
	struct mig_writer w;
	void *trees[3];
	size_t lens[3];
	const void *buf;
	size_t len;

	reg_both(2, 2, 1);
	cr_assert_eq(mig__section_save_fdt(&src, mig__section_at(&src, 0), &trees[0], &lens[0]), 0);
	cr_assert_eq(mig__section_save_fdt(&src, mig__section_at(&src, 1), &trees[1], &lens[1]), 0);
	trees[2] = trees[0];
	lens[2] = lens[0];
	write_stream(&w, trees, lens, 3);
	buf = mig__writer_data(&w, &len);
	cr_assert_eq(load_mem(buf, len), -EINVAL);
	assert_err("'virtio-net' instance 0 twice");
	assert_untouched();
	mig__writer_release(&w);
	free(trees[0]);
	free(trees[1]);
}

Test(stream, duplicate_field_refused_on_save)
{
	struct mig_writer w;

	src_nic.dup_field = 1;
	reg_both(2, 2, 1);
	mig__writer_init_mem(&w, 0);
	cr_assert_eq(mig__stream_save(&src, &w), -EINVAL);
	cr_assert(strstr(mig__error(&src), "property 'status' twice"), "%s", mig__error(&src));
	mig__writer_release(&w);
}

static void put_rec_header(uint8_t *p, uint32_t type, uint32_t crc, uint64_t len)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t)(type >> (8 * i));
		p[4 + i] = (uint8_t)(crc >> (8 * i));
	}
	for (int i = 0; i < 8; i++)
		p[8 + i] = (uint8_t)(len >> (8 * i));
}

Test(stream, bad_headers_and_records)
{
	uint8_t s[64];

	reg_both(2, 2, 1);
	memcpy(s, "MVMMSTRM\1\0\0\0\0\0\0\0", 16);

	/* unknown record type */
	put_rec_header(s + 16, 9, 0, 0);
	cr_assert_eq(load_mem(s, 32), -EBADMSG);
	assert_err("unknown record type 9 at offset 16");

	/* a section claiming 2^60 bytes: refused before any allocation */
	put_rec_header(s + 16, MIG_REC_SECTION, 0, 1ull << 60);
	cr_assert_eq(load_mem(s, 64), -EBADMSG);
	assert_err("out of range");
	put_rec_header(s + 16, MIG_REC_SECTION, 0, (uint64_t)MIG_SECTION_MAX + 1);
	cr_assert_eq(load_mem(s, 64), -EBADMSG);

	/* RAM record too short to hold its address */
	put_rec_header(s + 16, MIG_REC_RAM, 0, 4);
	cr_assert_eq(load_mem(s, 64), -EBADMSG);

	/* end record with a payload */
	put_rec_header(s + 16, MIG_REC_END, 0, 4);
	cr_assert_eq(load_mem(s, 64), -EBADMSG);

	/* empty section record: CRC of nothing is 0, then the tree is too small */
	put_rec_header(s + 16, MIG_REC_SECTION, 0, 0);
	put_rec_header(s + 32, MIG_REC_END, 0, 0);
	cr_assert_eq(load_mem(s, 48), -EBADMSG);
	assert_err("size 0 out of range");

	/* bad magic, future format, unknown flags */
	put_rec_header(s + 16, MIG_REC_END, 0, 0);
	s[0] = 'X';
	cr_assert_eq(load_mem(s, 32), -EBADMSG);
	assert_err("bad magic");
	s[0] = 'M';
	s[8] = 2;
	cr_assert_eq(load_mem(s, 32), -EINVAL);
	assert_err("format version 2 is not supported");
	s[8] = 1;
	s[12] = 2;
	cr_assert_eq(load_mem(s, 32), -EINVAL);
	assert_err("unknown flags");
	s[12] = MIG_F_PLAN; /* known, but a plan is not a VM */
	cr_assert_eq(load_mem(s, 32), -EINVAL);
	assert_err("a plan stream");
	s[12] = 0;

	/* header + end only: every registered section is missing */
	cr_assert_eq(load_mem(s, 32), -EINVAL);
	assert_err("not in the stream");
	assert_untouched();
}

Test(stream, empty_registry_round_trip_and_writer_cap)
{
	struct mig_writer w;
	size_t len;
	const void *buf;

	buf = save_mem(&w, &len);
	cr_assert_eq(len, 32);
	cr_assert_eq(load_mem(buf, len), 0);
	mig__writer_release(&w);

	reg_both(2, 2, 1);
	mig__writer_init_mem(&w, 100);
	cr_assert_eq(mig__stream_save(&src, &w), -ENOSPC);
	cr_assert(strstr(mig__error(&src), "No space"), "%s", mig__error(&src));
	mig__writer_release(&w);
}

Test(stream, tree_without_root_properties)
{
	struct mig_writer w;
	uint64_t tree[64];
	void *trees[1] = { tree };
	size_t lens[1];
	const void *buf;
	size_t len;

	reg_both(2, 2, 1);
	cr_assert_eq(fdt_create(tree, sizeof(tree)), 0);
	cr_assert_eq(fdt_finish_reservemap(tree), 0);
	cr_assert_eq(fdt_begin_node(tree, ""), 0);
	cr_assert_eq(fdt_property_string(tree, "name", "virtio-net"), 0);
	cr_assert_eq(fdt_property_u32(tree, "instance", 0), 0);
	cr_assert_eq(fdt_end_node(tree), 0);
	cr_assert_eq(fdt_finish(tree), 0);
	lens[0] = fdt_totalsize(tree);
	write_stream(&w, trees, lens, 1);
	buf = mig__writer_data(&w, &len);
	cr_assert_eq(load_mem(buf, len), -EBADMSG);
	assert_err("root property 'version' is missing");
	assert_untouched();
	mig__writer_release(&w);
}

/*
 * Damage inside a tree whose record CRC is then made to match: every byte of
 * the nic's tree, flipped in turn, either loads (a value changed) or fails
 * with an error; never a crash (run it under ASan to mean something). The CRC
 * cannot catch it, so the tree checks must: a tree that fdt_check_full()
 * rejects never reaches a load() op, and a failed load changes no device.
 */
Test(stream, damaged_tree_with_matching_crc_never_crashes)
{
	void *trees[2];
	size_t lens[2];
	int fails = 0, bad_trees = 0;

	reg_both(2, 2, 1);
	cr_assert_eq(mig__section_save_fdt(&src, mig__section_at(&src, 0), &trees[0], &lens[0]), 0);
	cr_assert_eq(mig__section_save_fdt(&src, mig__section_at(&src, 1), &trees[1], &lens[1]), 0);
	for (size_t i = 0; i < lens[0]; i++) {
		struct mig_writer w;
		const void *buf;
		size_t len;
		bool tree_ok;
		int rc;

		setup_dst();
		((uint8_t *)trees[0])[i] ^= 0xff;
		tree_ok = fdt_check_full(trees[0], lens[0]) == 0;
		write_stream(&w, trees, lens, 2);
		buf = mig__writer_data(&w, &len);
		rc = load_mem(buf, len);
		if (!tree_ok) {
			bad_trees++;
			cr_assert_eq(rc, -EBADMSG, "byte %zu: a tree failing fdt_check_full gave %d",
				     i, rc);
			/* refused by libfdt's check, or before it for a header of another version */
			cr_assert(strstr(mig__error(&dst), "fdt_check_full") ||
					  strstr(mig__error(&dst), "flattened tree"),
				  "byte %zu: error '%s' gives no reason", i, mig__error(&dst));
		}
		if (rc) {
			fails++;
			cr_assert(rc == -EBADMSG || rc == -EINVAL || rc == -ENOENT,
				  "byte %zu: unexpected error %d (%s)", i, rc, mig__error(&dst));
			cr_assert_str_not_empty(mig__error(&dst), "byte %zu: error %d unexplained",
						i, rc);
			assert_untouched();
		} else {
			/* a value changed, but both sections loaded once, the disk intact */
			cr_assert_eq(dst_nic.loads, 1, "byte %zu", i);
			cr_assert_eq(dst_disk.loads, 1, "byte %zu", i);
			cr_assert_eq(dst_disk.sectors, src_disk.sectors);
			cr_assert_eq(memcmp(dst_blob, src_blob, BLOB_LEN), 0);
			cr_assert_lt(strnlen(dst_nic.label, sizeof(dst_nic.label)),
				     sizeof(dst_nic.label));
		}
		mig__writer_release(&w);
		((uint8_t *)trees[0])[i] ^= 0xff;
	}
	cr_assert_gt(fails, (int)lens[0] / 2, "most damage is caught (%d of %zu)", fails, lens[0]);
	cr_assert_gt(bad_trees, 0, "some damage breaks the tree structure itself");
	free(trees[0]);
	free(trees[1]);
}

/* a section's check runs when the stream brings it: a refusal stops the load before the RAM */
struct machine {
	uint32_t vcpus;
	int checks, loads;
};

static int machine_save(void *opaque, void *fdt)
{
	return mig__put_u32(fdt, "vcpus", ((struct machine *)opaque)->vcpus);
}

static int machine_check(void *opaque, const void *fdt, int node, uint32_t version)
{
	struct machine *m = opaque;
	uint32_t v;
	int rc = mig__get_u32(fdt, node, "vcpus", &v);

	m->checks++;
	if (rc)
		return rc;
	return v == m->vcpus ? 0 : -EINVAL;
}

static int machine_load(void *opaque, const void *fdt, int node, uint32_t version)
{
	((struct machine *)opaque)->loads++;
	return 0;
}

static const struct mig_section_ops machine_ops = {
	.save = machine_save, .load = machine_load, .check = machine_check,
};

/* registers the machine section on both sides; w: header, machine, [confirm,] one RAM page, end */
static void machine_stream(struct mig_writer *w, struct machine *ms, struct machine *md, bool confirm)
{
	static uint8_t ram[4096];

	cr_assert_eq(mig__section_register(&src, "machine", 0, 1, 1, &machine_ops, ms), 0);
	cr_assert_eq(mig__section_register(&dst, "machine", 0, 1, 1, &machine_ops, md), 0);
	mig__writer_init_mem(w, 0);
	cr_assert_eq(mig__stream_write_header(&src, w), 0);
	cr_assert_eq(mig__stream_write_section(&src, w, mig__section_at(&src, 0)), 0);
	if (confirm)
		cr_assert_eq(mig__stream_write_confirm(&src, w), 0);
	cr_assert_eq(mig__stream_write_ram(&src, w, 0x1000, ram, sizeof(ram)), 0);
	cr_assert_eq(mig__stream_write_end(&src, w), 0);
}

Test(stream, a_check_refuses_before_the_ram)
{
	struct machine ms = { .vcpus = 4 }, md = { .vcpus = 2 };
	static uint8_t guest[3 * 4096];
	struct ram_ctx ctx = { guest, 0 };
	struct mig_ram_sink sink = { .load = ram_load, .opaque = &ctx };
	struct mig_writer w;
	struct mig_reader rd;
	const uint8_t *buf;
	size_t len;

	machine_stream(&w, &ms, &md, false);
	buf = mig__writer_data(&w, &len);

	mig__reader_init_mem(&rd, buf, len);
	cr_assert_eq(mig__stream_load(&dst, &rd, &sink), -EINVAL);
	cr_assert_eq(md.checks, 1);
	cr_assert_eq(ctx.calls, 0, "no RAM was written after the refusal");
	cr_assert_eq(md.loads, 0);
	assert_err("section 'machine' instance 0 (version 1)");

	md.vcpus = 4;
	mig__reader_init_mem(&rd, buf, len);
	cr_assert_eq(mig__stream_load(&dst, &rd, &sink), 0, "%s", mig__error(&dst));
	cr_assert_eq(md.checks, 2);
	cr_assert_eq(md.loads, 1);
	cr_assert_eq(ctx.calls, 1);
	mig__writer_release(&w);
}

/* migrate --plan: only the checking sections travel; the reader checks and loads nothing */
Test(stream, a_plan_is_checked_never_loaded)
{
	struct machine ms = { .vcpus = 4 }, md = { .vcpus = 4 };
	struct mig_writer w;
	struct mig_reader rd;
	const uint8_t *buf;
	size_t len;
	bool plan = false;

	reg_both(1, 1, 1); /* sections without a check op: not in a plan */
	cr_assert_eq(mig__section_register(&src, "machine", 0, 1, 1, &machine_ops, &ms), 0);
	cr_assert_eq(mig__section_register(&dst, "machine", 0, 1, 1, &machine_ops, &md), 0);
	mig__writer_init_mem(&w, 0);
	cr_assert_eq(mig__stream_save_plan(&src, &w), 0, "%s", mig__error(&src));
	buf = mig__writer_data(&w, &len);

	/* a plan holds no VM: a plain load (a snapshot file) refuses it */
	mig__reader_init_mem(&rd, buf, len);
	cr_assert_eq(mig__stream_load(&dst, &rd, NULL), -EINVAL);
	assert_err("a plan stream");
	cr_assert_eq(md.checks, 0);

	mig__reader_init_mem(&rd, buf, len);
	cr_assert_eq(mig__stream_load_or_plan(&dst, &rd, NULL, &plan), 0, "%s", mig__error(&dst));
	cr_assert(plan);
	cr_assert_eq(md.checks, 1);
	cr_assert_eq(md.loads, 0, "a plan loads nothing");
	cr_assert_eq(dst_nic.loads, 0, "and needs no other section");
	assert_untouched();

	md.vcpus = 2;
	plan = false;
	mig__reader_init_mem(&rd, buf, len);
	cr_assert_eq(mig__stream_load_or_plan(&dst, &rd, NULL, &plan), -EINVAL);
	cr_assert(plan, "a refused plan is still a plan");
	mig__writer_release(&w);

	/* a full stream through load_or_plan: plan stays false */
	mig__writer_init_mem(&w, 0);
	cr_assert_eq(mig__stream_save(&src, &w), 0, "%s", mig__error(&src));
	buf = mig__writer_data(&w, &len);
	md.vcpus = 4;
	plan = true;
	mig__reader_init_mem(&rd, buf, len);
	cr_assert_eq(mig__stream_load_or_plan(&dst, &rd, NULL, &plan), 0, "%s", mig__error(&dst));
	cr_assert(!plan);
	cr_assert_eq(md.loads, 1);
	mig__writer_release(&w);
}

static int confirm_calls, confirm_rc;

static int count_confirm(void *opaque)
{
	(void)opaque;
	confirm_calls++;
	return confirm_rc;
}

/*
 * A live migration's confirm record: after the checking sections, the
 * reader answers (the sink's confirm op) before any RAM; a reader that
 * refused the machine never confirms; a file (no confirm op) skips it.
 */
Test(stream, confirm_comes_after_the_checks_and_before_the_ram)
{
	struct machine ms = { .vcpus = 4 }, md = { .vcpus = 4 };
	static uint8_t guest[3 * 4096];
	struct ram_ctx ctx = { guest, 0 };
	struct mig_ram_sink sink = { .load = ram_load, .confirm = count_confirm, .opaque = &ctx };
	struct mig_ram_sink file = { .load = ram_load, .opaque = &ctx };
	struct mig_writer w;
	struct mig_reader rd;
	const uint8_t *buf;
	size_t len;

	machine_stream(&w, &ms, &md, true);
	buf = mig__writer_data(&w, &len);

	confirm_calls = 0;
	confirm_rc = 0;
	mig__reader_init_mem(&rd, buf, len);
	cr_assert_eq(mig__stream_load(&dst, &rd, &sink), 0, "%s", mig__error(&dst));
	cr_assert_eq(confirm_calls, 1);
	cr_assert_eq(ctx.calls, 1);

	/* the machine refused: no confirm, no RAM */
	md.vcpus = 2;
	confirm_calls = 0;
	ctx.calls = 0;
	mig__reader_init_mem(&rd, buf, len);
	cr_assert_eq(mig__stream_load(&dst, &rd, &sink), -EINVAL);
	cr_assert_eq(confirm_calls, 0, "a refused machine is never confirmed");
	cr_assert_eq(ctx.calls, 0);

	/* the answer could not be given: the load stops there */
	md.vcpus = 4;
	confirm_rc = -EPIPE;
	mig__reader_init_mem(&rd, buf, len);
	cr_assert_eq(mig__stream_load(&dst, &rd, &sink), -EPIPE);
	cr_assert_eq(confirm_calls, 1);
	cr_assert_eq(ctx.calls, 0, "no RAM after a failed confirm");
	assert_err("cannot confirm at offset");

	/* a reader without the op (a file) skips the record */
	ctx.calls = 0;
	mig__reader_init_mem(&rd, buf, len);
	cr_assert_eq(mig__stream_load(&dst, &rd, &file), 0, "%s", mig__error(&dst));
	cr_assert_eq(ctx.calls, 1);

	/* a confirm record with a payload is damage */
	{
		uint8_t bad[MIG_HEADER_SIZE + MIG_RECORD_HEADER_SIZE + 1];

		memcpy(bad, buf, MIG_HEADER_SIZE);
		memset(bad + MIG_HEADER_SIZE, 0, sizeof(bad) - MIG_HEADER_SIZE);
		bad[MIG_HEADER_SIZE] = MIG_REC_CONFIRM;
		bad[MIG_HEADER_SIZE + 8] = 1;
		mig__reader_init_mem(&rd, bad, sizeof(bad));
		cr_assert_eq(mig__stream_load(&dst, &rd, &sink), -EBADMSG);
		assert_err("confirm record at offset 16 has a payload");
	}
	mig__writer_release(&w);
}

struct drain_ctx {
	int peer;
	unsigned int waits;
	size_t drained;
};

/* the writer's wait hook: the reader takes what is there, as a destination would */
static int drain_peer(void *opaque, int fd)
{
	struct drain_ctx *d = opaque;
	uint8_t buf[65536];
	ssize_t n;

	(void)fd;
	d->waits++;
	while ((n = read(d->peer, buf, sizeof(buf))) > 0)
		d->drained += (size_t)n;
	return 0;
}

static int refuse_wait(void *opaque, int fd)
{
	(void)opaque;
	(void)fd;
	return -ECANCELED;
}

/* a non-blocking socket that fills up: the writer waits through its hook, never loses a byte */
Test(stream, a_full_socket_waits_in_the_hook)
{
	static uint8_t big[1 << 20];
	struct drain_ctx d = { 0 };
	struct mig_writer w;
	int sv[2], sz = 4096;
	uint8_t buf[65536];
	ssize_t n;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	cr_assert_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	cr_assert_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	memset(big, 0x5a, sizeof(big));
	d.peer = sv[1];
	mig__writer_init_fd(&w, sv[0]);
	w.wait = drain_peer;
	w.wait_opaque = &d;
	cr_assert_eq(mig__write_all(&w, big, sizeof(big)), 0);
	cr_assert_gt(d.waits, 0, "the socket filled up at least once");
	while ((n = read(sv[1], buf, sizeof(buf))) > 0)
		d.drained += (size_t)n;
	cr_assert_eq(d.drained, sizeof(big));
	cr_assert_eq(w.written, sizeof(big));

	/* a hook that gives up fails the write with its error */
	w.wait = refuse_wait;
	cr_assert_eq(mig__write_all(&w, big, sizeof(big)), -ECANCELED);
	mig__writer_release(&w);
	close(sv[0]);
	close(sv[1]);
}

static size_t drain_nonblock(int fd, uint8_t *buf, size_t cap)
{
	size_t got = 0;
	ssize_t n;

	while (got < cap && (n = read(fd, buf + got, cap - got)) > 0)
		got += (size_t)n;
	return got;
}

/*
 * An fd writer stages small writes: nothing reaches the fd before a record
 * the reader answers (CONFIRM, END) or an explicit flush; a large write
 * goes out after what was staged before it; the bytes are those a memory
 * writer makes of the same records, in the same order.
 */
Test(stream, small_writes_are_staged_until_a_record_is_answered)
{
	static uint8_t page[4096], run[MIG_WRITER_STAGE + 8192], got[1 << 20];
	struct mig_writer w, m;
	const void *want;
	size_t want_len, n;
	int sv[2], i;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	memset(page, 0x11, sizeof(page));
	memset(run, 0x22, sizeof(run));
	reg_both(2, 2, 1);
	mig__writer_init_fd(&w, sv[0]);
	mig__writer_init_mem(&m, 0);

	cr_assert_eq(mig__stream_write_header(&src, &w), 0);
	cr_assert_eq(mig__stream_write_header(&src, &m), 0);
	cr_assert_eq(mig__stream_write_ram(&src, &w, 0x1000, page, sizeof(page)), 0);
	cr_assert_eq(mig__stream_write_ram(&src, &m, 0x1000, page, sizeof(page)), 0);
	cr_assert_eq(drain_nonblock(sv[1], got, sizeof(got)), 0, "a header and a page are staged");
	cr_assert_eq(w.written, m.len, "staged bytes count as written");

	cr_assert_eq(mig__stream_write_confirm(&src, &w), 0);
	cr_assert_eq(mig__stream_write_confirm(&src, &m), 0);
	n = drain_nonblock(sv[1], got, sizeof(got));
	cr_assert_eq(n, m.len, "a CONFIRM goes out with what was staged before it");

	/* many small records, one larger than the stage, more small ones */
	for (i = 0; i < 20; i++) {
		cr_assert_eq(mig__stream_write_zero(&src, &w, 0x100000 + (uint64_t)i * 8192, 4096), 0);
		cr_assert_eq(mig__stream_write_zero(&src, &m, 0x100000 + (uint64_t)i * 8192, 4096), 0);
		cr_assert_eq(mig__stream_write_ram(&src, &w, 0x101000 + (uint64_t)i * 8192, page, 4096), 0);
		cr_assert_eq(mig__stream_write_ram(&src, &m, 0x101000 + (uint64_t)i * 8192, page, 4096), 0);
	}
	n += drain_nonblock(sv[1], got + n, sizeof(got) - n); /* (the socket's buffer is finite) */
	cr_assert_gt(n, 32 + 16 + 4096 + 24, "a full stage went out");
	cr_assert_eq(mig__stream_write_ram(&src, &w, 0x800000, run, sizeof(run)), 0);
	cr_assert_eq(mig__stream_write_ram(&src, &m, 0x800000, run, sizeof(run)), 0);
	cr_assert_eq(mig__stream_write_zero(&src, &w, 0x900000, 4096), 0);
	cr_assert_eq(mig__stream_write_zero(&src, &m, 0x900000, 4096), 0);
	n += drain_nonblock(sv[1], got + n, sizeof(got) - n);
	cr_assert_lt(n, m.len, "the last zero record is still staged");
	cr_assert_eq(mig__stream_write_end(&src, &w), 0);
	cr_assert_eq(mig__stream_write_end(&src, &m), 0);
	n += drain_nonblock(sv[1], got + n, sizeof(got) - n);
	want = mig__writer_data(&m, &want_len);
	cr_assert_eq(n, want_len);
	cr_assert_eq(memcmp(got, want, n), 0, "the same bytes in the same order");
	cr_assert_eq(w.written, want_len);

	/* an explicit flush; a release sends nothing more */
	cr_assert_eq(mig__stream_write_zero(&src, &w, 0x1000, 4096), 0);
	cr_assert_eq(mig__writer_flush(&w), 0);
	cr_assert_eq(drain_nonblock(sv[1], got, sizeof(got)), 32);
	cr_assert_eq(mig__stream_write_zero(&src, &w, 0x1000, 4096), 0);
	mig__writer_release(&w);
	cr_assert_eq(drain_nonblock(sv[1], got, sizeof(got)), 0, "a given-up stream sends no more");
	mig__writer_release(&m);
	close(sv[0]);
	close(sv[1]);
}
