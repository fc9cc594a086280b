// SPDX-License-Identifier: MIT
/*
 * Stream framing, checksums and bounds (layout in stream.h and
 * docs/migration.md). Nothing read from a stream is trusted: every length is
 * capped before allocation, every payload is CRC-checked, every section tree
 * passes fdt_check_full() before any other libfdt call reads it, and device
 * load() ops run only after the whole stream has been read and validated.
 */
#include "migration/stream.h"

#include <errno.h>
#include <poll.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIG_SECTION_INITIAL 4096u
#define MIG_READ_CHUNK (1u << 20)

/* ---- little-endian encoding ---- */

static void mig_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void mig_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t mig_rd32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t mig_rd64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* ---- CRC-32, reflected polynomial 0xEDB88320, four bits at a time ---- */

static const uint32_t mig_crc_nibble[16] = {
	0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
	0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
	0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

uint32_t mig__crc32(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		crc = (crc >> 4) ^ mig_crc_nibble[crc & 0xf];
		crc = (crc >> 4) ^ mig_crc_nibble[crc & 0xf];
	}
	return ~crc;
}

/* ---- writer ---- */

void mig__writer_init_fd(struct mig_writer *w, int fd)
{
	memset(w, 0, sizeof(*w));
	w->kind = MIG_IO_FD;
	w->fd = fd;
}

void mig__writer_init_mem(struct mig_writer *w, size_t max)
{
	memset(w, 0, sizeof(*w));
	w->kind = MIG_IO_MEM;
	w->fd = -1;
	w->max = max;
}

const void *mig__writer_data(const struct mig_writer *w, size_t *len)
{
	*len = w->len;
	return w->buf;
}

void mig__writer_release(struct mig_writer *w)
{
	if (w->kind == MIG_IO_MEM)
		free(w->buf);
	free(w->stage);
	w->stage = NULL;
	w->staged = 0;
	w->buf = NULL;
	w->len = w->cap = 0;
}

/* MIG_IO_FD: all of buf to the fd, now */
static int mig_fd_write(struct mig_writer *w, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(w->fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				struct pollfd pfd = { .fd = w->fd, .events = POLLOUT };
				int rc = w->wait ? w->wait(w->wait_opaque, w->fd) :
					 poll(&pfd, 1, -1) < 0 && errno != EINTR ? -errno : 0;

				if (rc)
					return rc;
				continue;
			}
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mig__writer_flush(struct mig_writer *w)
{
	size_t n = w->staged;

	if (w->kind != MIG_IO_FD || !n)
		return 0;
	w->staged = 0; /* sent, or the stream failed: never sent twice */
	return mig_fd_write(w, w->stage, n);
}

int mig__write_all(struct mig_writer *w, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int rc;

	if (w->kind == MIG_IO_MEM) {
		if (len > SIZE_MAX - w->len || (w->max && w->len + len > w->max))
			return -ENOSPC;
		if (w->len + len > w->cap) {
			size_t cap = w->cap ? w->cap : 4096;
			uint8_t *n;

			while (cap < w->len + len)
				cap = cap > SIZE_MAX / 2 ? w->len + len : cap * 2;
			n = realloc(w->buf, cap);
			if (!n)
				return -ENOMEM;
			w->buf = n;
			w->cap = cap;
		}
		if (len)
			memcpy(w->buf + w->len, p, len);
		w->len += len;
		w->written += len;
		return 0;
	}
	if (!w->stage && len < MIG_WRITER_STAGE)
		w->stage = malloc(MIG_WRITER_STAGE); /* without it, every write goes out directly */
	if (w->stage && len < MIG_WRITER_STAGE) {
		if (len > MIG_WRITER_STAGE - w->staged) {
			rc = mig__writer_flush(w);
			if (rc)
				return rc;
		}
		if (len)
			memcpy(w->stage + w->staged, p, len);
		w->staged += len;
		w->written += len;
		return 0;
	}
	rc = mig__writer_flush(w);
	if (!rc)
		rc = mig_fd_write(w, p, len);
	if (!rc)
		w->written += len;
	return rc;
}

/* ---- reader ---- */

void mig__reader_init_fd(struct mig_reader *r, int fd)
{
	memset(r, 0, sizeof(*r));
	r->kind = MIG_IO_FD;
	r->fd = fd;
}

void mig__reader_init_mem(struct mig_reader *r, const void *buf, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->kind = MIG_IO_MEM;
	r->fd = -1;
	r->buf = buf;
	r->len = len;
}

int mig__read_all(struct mig_reader *r, void *buf, size_t len)
{
	uint8_t *p = buf;

	if (r->kind == MIG_IO_MEM) {
		if (len > r->len - r->pos)
			return -EBADMSG;
		if (len)
			memcpy(p, r->buf + r->pos, len);
		r->pos += len;
		r->consumed += len;
		return 0;
	}
	while (len) {
		ssize_t n = read(r->fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EBADMSG;
		p += n;
		len -= (size_t)n;
		r->consumed += (uint64_t)n;
	}
	return 0;
}

/* ---- saving ---- */

static int mig_write_header(struct mig_registry *r, struct mig_writer *w, uint32_t flags)
{
	uint8_t h[MIG_HEADER_SIZE];
	int rc;

	memcpy(h, MIG_MAGIC, 8);
	mig_le32(h + 8, MIG_FORMAT_VERSION);
	mig_le32(h + 12, flags);
	rc = mig__write_all(w, h, sizeof(h));
	if (rc)
		mig__set_error(r, "writing the stream header: %s", strerror(-rc));
	return rc;
}

int mig__stream_write_header(struct mig_registry *r, struct mig_writer *w)
{
	return mig_write_header(r, w, 0);
}

static uint64_t mig_record_cap(uint32_t type)
{
	switch (type) {
	case MIG_REC_SECTION:
		return MIG_SECTION_MAX;
	case MIG_REC_RAM:
		return MIG_RAM_RECORD_MAX;
	case MIG_REC_ZERO:
		return 16;
	default:
		return 0;
	}
}

static const char *mig_record_name(uint32_t type)
{
	switch (type) {
	case MIG_REC_SECTION:
		return "section";
	case MIG_REC_RAM:
		return "ram";
	case MIG_REC_END:
		return "end";
	case MIG_REC_ZERO:
		return "zero";
	case MIG_REC_CONFIRM:
		return "confirm";
	default:
		return "unknown";
	}
}

int mig__stream_write_confirm(struct mig_registry *r, struct mig_writer *w)
{
	return mig__stream_write_record(r, w, MIG_REC_CONFIRM, NULL, 0);
}

int mig__stream_write_record(struct mig_registry *r, struct mig_writer *w, uint32_t type,
			     const void *payload, size_t len)
{
	uint8_t h[MIG_RECORD_HEADER_SIZE];
	int rc;

	if ((type != MIG_REC_SECTION && type != MIG_REC_RAM && type != MIG_REC_END &&
	     type != MIG_REC_ZERO && type != MIG_REC_CONFIRM) ||
	    (uint64_t)len > mig_record_cap(type)) {
		mig__set_error(r, "refusing to write a %s record of %zu bytes",
			       mig_record_name(type), len);
		return -EINVAL;
	}
	mig_le32(h, type);
	mig_le32(h + 4, mig__crc32(0, payload, len));
	mig_le64(h + 8, len);
	rc = mig__write_all(w, h, sizeof(h));
	if (!rc)
		rc = mig__write_all(w, payload, len);
	/* the reader answers these: they must be on their way, not staged */
	if (!rc && (type == MIG_REC_CONFIRM || type == MIG_REC_END))
		rc = mig__writer_flush(w);
	if (rc)
		mig__set_error(r, "writing a %s record: %s", mig_record_name(type), strerror(-rc));
	return rc;
}

static int mig_fdt_rc(int err)
{
	if (err == -FDT_ERR_NOSPACE)
		return -ENOSPC;
	return err < 0 ? -EINVAL : 0;
}

/* One attempt at building s's tree into buf; -ENOSPC asks for a bigger one. */
static int mig_section_build(const struct mig_section *s, void *buf, size_t size, int *fdt_err)
{
	int rc;

	*fdt_err = 0;
	rc = fdt_create(buf, (int)size);
	if (!rc)
		rc = fdt_finish_reservemap(buf);
	if (!rc)
		rc = fdt_begin_node(buf, "");
	if (!rc)
		rc = fdt_property_string(buf, "name", s->name);
	if (!rc)
		rc = fdt_property_u32(buf, "instance", s->instance);
	if (!rc)
		rc = fdt_property_u32(buf, "version", s->version);
	if (rc) {
		*fdt_err = rc;
		return mig_fdt_rc(rc);
	}
	rc = s->ops->save(s->opaque, buf);
	if (rc)
		return rc < 0 ? rc : -EINVAL;
	rc = fdt_end_node(buf);
	if (!rc)
		rc = fdt_finish(buf);
	if (rc) {
		*fdt_err = rc;
		return mig_fdt_rc(rc);
	}
	return 0;
}

int mig__section_save_fdt(struct mig_registry *r, const struct mig_section *s, void **fdt,
			  size_t *len)
{
	size_t size = MIG_SECTION_INITIAL;
	char name[MIG_NAME_MAX];
	uint32_t inst, ver;
	void *buf;
	int fdt_err;
	int rc;

	for (;;) {
		buf = malloc(size);
		if (!buf) {
			mig__set_error(r, "section '%s' instance %u: out of memory", s->name,
				       s->instance);
			return -ENOMEM;
		}
		rc = mig_section_build(s, buf, size, &fdt_err);
		if (rc != -ENOSPC)
			break;
		free(buf);
		if (size >= MIG_SECTION_MAX) {
			mig__set_error(r, "section '%s' instance %u: state exceeds %u bytes",
				       s->name, s->instance, MIG_SECTION_MAX);
			return -EFBIG;
		}
		size *= 2;
	}
	if (rc) {
		if (fdt_err)
			mig__set_error(r, "section '%s' instance %u: building the tree: %s",
				       s->name, s->instance, fdt_strerror(fdt_err));
		else
			mig__set_error(r, "section '%s' instance %u: save failed: %s", s->name,
				       s->instance, strerror(-rc));
		goto err_free;
	}
	/* the loader's checks, on our own output: catches duplicate field names */
	rc = mig__section_check_fdt(r, buf, fdt_totalsize(buf), name, &inst, &ver);
	if (rc) {
		char why[MIG_ERR_MAX];

		memcpy(why, r->err, sizeof(why));
		mig__set_error(r, "section '%s' instance %u: saved tree is invalid: %s", s->name,
			       s->instance, why);
		rc = -EINVAL;
		goto err_free;
	}
	*fdt = buf;
	*len = fdt_totalsize(buf);
	return 0;

err_free:
	free(buf);
	return rc;
}

int mig__stream_write_section(struct mig_registry *r, struct mig_writer *w,
			      const struct mig_section *s)
{
	void *fdt;
	size_t len;
	int rc = mig__section_save_fdt(r, s, &fdt, &len);

	if (rc)
		return rc;
	rc = mig__stream_write_record(r, w, MIG_REC_SECTION, fdt, len);
	free(fdt);
	return rc;
}

int mig__stream_write_zero(struct mig_registry *r, struct mig_writer *w, uint64_t gpa,
			   uint64_t len)
{
	uint8_t p[16];

	mig_le64(p, gpa);
	mig_le64(p + 8, len);
	return mig__stream_write_record(r, w, MIG_REC_ZERO, p, sizeof(p));
}

int mig__stream_write_ram(struct mig_registry *r, struct mig_writer *w, uint64_t gpa,
			  const void *data, size_t len)
{
	uint8_t h[MIG_RECORD_HEADER_SIZE];
	uint8_t addr[8];
	uint32_t crc;
	int rc;

	if (len > MIG_RAM_RECORD_MAX - sizeof(addr)) {
		mig__set_error(r, "RAM record at 0x%llx: %zu bytes is over the %u-byte cap",
			       (unsigned long long)gpa, len, MIG_RAM_RECORD_MAX);
		return -EINVAL;
	}
	mig_le64(addr, gpa);
	crc = mig__crc32(0, addr, sizeof(addr));
	crc = mig__crc32(crc, data, len);
	mig_le32(h, MIG_REC_RAM);
	mig_le32(h + 4, crc);
	mig_le64(h + 8, len + sizeof(addr));
	rc = mig__write_all(w, h, sizeof(h));
	if (!rc)
		rc = mig__write_all(w, addr, sizeof(addr));
	if (!rc)
		rc = mig__write_all(w, data, len);
	if (rc)
		mig__set_error(r, "writing a RAM record: %s", strerror(-rc));
	return rc;
}

int mig__stream_write_end(struct mig_registry *r, struct mig_writer *w)
{
	return mig__stream_write_record(r, w, MIG_REC_END, NULL, 0);
}

int mig__stream_save(struct mig_registry *r, struct mig_writer *w)
{
	const struct mig_section *s;
	int rc;

	mig__clear_error(r);
	rc = mig__stream_write_header(r, w);
	if (rc)
		return rc;
	mig_for_each_section(r, s) {
		rc = mig__stream_write_section(r, w, s);
		if (rc)
			return rc;
	}
	return mig__stream_write_end(r, w);
}

int mig__stream_save_plan(struct mig_registry *r, struct mig_writer *w)
{
	const struct mig_section *s;
	int rc;

	mig__clear_error(r);
	rc = mig_write_header(r, w, MIG_F_PLAN);
	if (rc)
		return rc;
	mig_for_each_section(r, s) {
		if (!s->ops->check)
			continue;
		rc = mig__stream_write_section(r, w, s);
		if (rc)
			return rc;
	}
	return mig__stream_write_end(r, w);
}

/* ---- validating a section tree ---- */

static int mig_cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* -EBADMSG when names[0..n-1] holds a duplicate; *dup names it */
static int mig_find_dup(const char **names, size_t n, const char **dup)
{
	qsort(names, n, sizeof(*names), mig_cmp_str);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(names[i - 1], names[i]) == 0) {
			*dup = names[i];
			return -EBADMSG;
		}
	}
	return 0;
}

static int mig_push(const char ***names, size_t *n, size_t *cap, const char *name)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 32;
		const char **p = realloc(*names, c * sizeof(*p));

		if (!p)
			return -ENOMEM;
		*names = p;
		*cap = c;
	}
	(*names)[(*n)++] = name;
	return 0;
}

/* No node may hold two properties, or two subnodes, of one name. */
static int mig_check_unique(struct mig_registry *r, const void *fdt)
{
	const char **names = NULL;
	size_t cap = 0;
	int depth = 0;
	int node, rc = 0;

	/* depth drops below 0 once the walk leaves the root node */
	for (node = 0; node >= 0 && depth >= 0; node = fdt_next_node(fdt, node, &depth)) {
		const char *dup = NULL;
		size_t n = 0;
		int off;

		fdt_for_each_property_offset(off, fdt, node) {
			const char *pname = NULL;
			int plen;

			if (!fdt_getprop_by_offset(fdt, off, &pname, &plen) || !pname) {
				mig__set_error(r, "section tree: unreadable property");
				rc = -EBADMSG;
				goto out;
			}
			rc = mig_push(&names, &n, &cap, pname);
			if (rc)
				goto err_nomem;
		}
		if (off != -FDT_ERR_NOTFOUND) {
			mig__set_error(r, "section tree: %s", fdt_strerror(off));
			rc = -EBADMSG;
			goto out;
		}
		if (mig_find_dup(names, n, &dup)) {
			mig__set_error(r, "section tree: node '%s' has property '%s' twice",
				       fdt_get_name(fdt, node, NULL) ?: "?", dup);
			rc = -EBADMSG;
			goto out;
		}
		n = 0;
		fdt_for_each_subnode(off, fdt, node) {
			const char *sname = fdt_get_name(fdt, off, NULL);

			if (!sname) {
				mig__set_error(r, "section tree: unreadable node name");
				rc = -EBADMSG;
				goto out;
			}
			rc = mig_push(&names, &n, &cap, sname);
			if (rc)
				goto err_nomem;
		}
		if (mig_find_dup(names, n, &dup)) {
			mig__set_error(r, "section tree: node '%s' has subnode '%s' twice",
				       fdt_get_name(fdt, node, NULL) ?: "?", dup);
			rc = -EBADMSG;
			goto out;
		}
	}
	if (node < 0 && node != -FDT_ERR_NOTFOUND) {
		mig__set_error(r, "section tree: %s", fdt_strerror(node));
		rc = -EBADMSG;
	}
	goto out;

err_nomem:
	mig__set_error(r, "section tree: out of memory");
out:
	free(names);
	return rc;
}

static int mig_root_u32(struct mig_registry *r, const void *fdt, const char *prop, uint32_t *v)
{
	int len = 0;
	const fdt32_t *p = fdt_getprop(fdt, 0, prop, &len);

	if (!p || len != (int)sizeof(*p)) {
		mig__set_error(r, "section tree: root property '%s' is %s", prop,
			       p ? "not a u32" : "missing");
		return -EBADMSG;
	}
	*v = fdt32_to_cpu(*p);
	return 0;
}

int mig__section_check_fdt(struct mig_registry *r, const void *fdt, size_t len,
			   char name[MIG_NAME_MAX], uint32_t *instance, uint32_t *version)
{
	const char *p;
	int plen = 0;
	int rc;

	if (len < sizeof(struct fdt_header) || len > MIG_SECTION_MAX) {
		mig__set_error(r, "section tree: size %zu out of range", len);
		return -EBADMSG;
	}
	/*
	 * Section trees are written as version 17 (fdt_create). An older one is
	 * refused before libfdt walks it: for a tree below version 16,
	 * fdt_check_full (libfdt 1.6.1) reads the root's name through
	 * fdt_get_name, which returns NULL for a name without '/', and
	 * dereferences it (found by the migration fuzz harness, 2026-12-03)
	 */
	if (fdt_magic(fdt) != FDT_MAGIC || fdt_version(fdt) < MIG_FDT_VERSION ||
	    fdt_last_comp_version(fdt) > MIG_FDT_VERSION) {
		mig__set_error(r, "section tree: not a version %u flattened tree (magic 0x%x, version %u, compatible down to %u)",
			       MIG_FDT_VERSION, fdt_magic(fdt), fdt_version(fdt),
			       fdt_last_comp_version(fdt));
		return -EBADMSG;
	}
	rc = fdt_check_full(fdt, len);
	if (rc) {
		mig__set_error(r, "section tree fails fdt_check_full: %s", fdt_strerror(rc));
		return -EBADMSG;
	}
	if (fdt_totalsize(fdt) != len) {
		mig__set_error(r, "section tree: totalsize %u but record holds %zu bytes",
			       fdt_totalsize(fdt), len);
		return -EBADMSG;
	}
	rc = mig_check_unique(r, fdt);
	if (rc)
		return rc;
	p = fdt_getprop(fdt, 0, "name", &plen);
	if (!p || plen < 2 || plen > MIG_NAME_MAX || memchr(p, '\0', (size_t)plen) != p + plen - 1) {
		mig__set_error(r, "section tree: root property 'name' is missing or not a name");
		return -EBADMSG;
	}
	for (int i = 0; i < plen - 1; i++) {
		char c = p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == ':' || c == '-')) {
			mig__set_error(r, "section tree: root property 'name' has a bad character");
			return -EBADMSG;
		}
	}
	rc = mig_root_u32(r, fdt, "instance", instance);
	if (!rc)
		rc = mig_root_u32(r, fdt, "version", version);
	if (rc)
		return rc;
	memcpy(name, p, (size_t)plen);
	return 0;
}

/* ---- loading ---- */

struct mig_loaded {
	void *fdt;
	uint32_t version;
};

/* Reads a payload of len bytes (len already capped), growing as data arrives. */
static int mig_read_payload(struct mig_reader *rd, uint64_t len, void **out)
{
	uint8_t *buf = NULL;
	size_t have = 0;
	int rc;

	while (have < len) {
		size_t chunk = len - have > MIG_READ_CHUNK ? MIG_READ_CHUNK : (size_t)(len - have);
		uint8_t *n = realloc(buf, have + chunk);

		if (!n) {
			free(buf);
			return -ENOMEM;
		}
		buf = n;
		rc = mig__read_all(rd, buf + have, chunk);
		if (rc) {
			free(buf);
			return rc;
		}
		have += chunk;
	}
	if (!buf) {
		buf = malloc(1);
		if (!buf)
			return -ENOMEM;
	}
	*out = buf;
	return 0;
}

static int mig_read_error(struct mig_registry *r, int rc, const char *what, uint64_t off)
{
	if (rc == -EBADMSG)
		mig__set_error(r, "stream truncated in %s at offset %llu", what,
			       (unsigned long long)off);
	else
		mig__set_error(r, "reading %s at offset %llu: %s", what,
			       (unsigned long long)off, strerror(-rc));
	return rc;
}

static int mig_read_header(struct mig_registry *r, struct mig_reader *rd, uint32_t *flags_out)
{
	uint8_t h[MIG_HEADER_SIZE];
	uint32_t ver, flags;
	int rc = mig__read_all(rd, h, sizeof(h));

	if (rc)
		return mig_read_error(r, rc, "the stream header", 0);
	if (memcmp(h, MIG_MAGIC, 8) != 0) {
		mig__set_error(r, "not a minivmm stream (bad magic)");
		return -EBADMSG;
	}
	ver = mig_rd32(h + 8);
	flags = mig_rd32(h + 12);
	if (ver != MIG_FORMAT_VERSION) {
		mig__set_error(r, "stream format version %u is not supported (this build reads %u)",
			       ver, MIG_FORMAT_VERSION);
		return -EINVAL;
	}
	if (flags & ~MIG_F_PLAN) {
		mig__set_error(r, "stream header has unknown flags 0x%x", flags);
		return -EINVAL;
	}
	*flags_out = flags;
	return 0;
}

static int mig_take_section(struct mig_registry *r, struct mig_loaded *loaded, void *fdt,
			    uint64_t len, uint64_t off)
{
	char name[MIG_NAME_MAX];
	uint32_t inst, ver;
	int idx, rc;

	rc = mig__section_check_fdt(r, fdt, (size_t)len, name, &inst, &ver);
	if (rc) {
		char why[MIG_ERR_MAX];

		memcpy(why, r->err, sizeof(why));
		mig__set_error(r, "section record at offset %llu: %s", (unsigned long long)off,
			       why);
		return rc;
	}
	idx = mig__section_index(r, name, inst);
	if (idx < 0) {
		mig__set_error(r, "stream has section '%s' instance %u (version %u), which nobody "
			       "registered here", name, inst, ver);
		return -EINVAL;
	}
	if (loaded[idx].fdt) {
		mig__set_error(r, "stream has section '%s' instance %u twice", name, inst);
		return -EINVAL;
	}
	rc = mig__section_accepts(r, &r->sections[idx], ver);
	if (rc)
		return rc;
	if (r->sections[idx].ops->check) {
		const struct mig_section *s = &r->sections[idx];

		mig__clear_field_error();
		mig__clear_error(r);
		rc = s->ops->check(s->opaque, fdt, 0, ver);
		if (rc) {
			char why[MIG_ERR_MAX];

			snprintf(why, sizeof(why), "%s", mig__field_error()[0] ? mig__field_error() :
							 r->err[0] ? r->err : strerror(rc > 0 ? EINVAL : -rc));
			mig__set_error(r, "section '%s' instance %u (version %u): %s", s->name,
				       s->instance, ver, why);
			return rc > 0 ? -EINVAL : rc;
		}
	}
	loaded[idx].fdt = fdt;
	loaded[idx].version = ver;
	return 0;
}

/* Phase 1: read and validate everything; RAM goes to the sink. */
static int mig_read_records(struct mig_registry *r, struct mig_reader *rd,
			    const struct mig_ram_sink *ram, struct mig_loaded *loaded)
{
	for (;;) {
		uint8_t h[MIG_RECORD_HEADER_SIZE];
		uint64_t off, len;
		uint32_t type, crc;
		void *payload = NULL;
		int rc;

		if (ram && ram->idle)
			ram->idle(ram->opaque, rd->consumed);
		off = rd->consumed;
		rc = mig__read_all(rd, h, sizeof(h));
		if (rc)
			return mig_read_error(r, rc, "a record header", off);
		type = mig_rd32(h);
		crc = mig_rd32(h + 4);
		len = mig_rd64(h + 8);
		if (type == MIG_REC_END) {
			if (len != 0 || crc != 0) {
				mig__set_error(r, "end record at offset %llu has a payload",
					       (unsigned long long)off);
				return -EBADMSG;
			}
			return 0;
		}
		if (type == MIG_REC_CONFIRM) {
			if (len != 0 || crc != 0) {
				mig__set_error(r, "confirm record at offset %llu has a payload",
					       (unsigned long long)off);
				return -EBADMSG;
			}
			if (!ram || !ram->confirm)
				continue;
			mig__clear_error(r);
			rc = ram->confirm(ram->opaque);
			if (rc) {
				if (!r->err[0])
					mig__set_error(r, "cannot confirm at offset %llu: %s",
						       (unsigned long long)off, strerror(-rc));
				return rc;
			}
			continue;
		}
		if (type != MIG_REC_SECTION && type != MIG_REC_RAM && type != MIG_REC_ZERO) {
			mig__set_error(r, "unknown record type %u at offset %llu", type,
				       (unsigned long long)off);
			return -EBADMSG;
		}
		if (len > mig_record_cap(type) || (type == MIG_REC_RAM && len < 8) ||
		    (type == MIG_REC_ZERO && len != 16)) {
			mig__set_error(r, "%s record at offset %llu: length %llu out of range",
				       mig_record_name(type), (unsigned long long)off,
				       (unsigned long long)len);
			return -EBADMSG;
		}
		if ((type == MIG_REC_RAM && (!ram || !ram->load)) ||
		    (type == MIG_REC_ZERO && (!ram || !ram->zero))) {
			mig__set_error(r, "%s record at offset %llu but no RAM sink to load it",
				       type == MIG_REC_RAM ? "RAM" : "zero", (unsigned long long)off);
			return -EINVAL;
		}
		rc = mig_read_payload(rd, len, &payload);
		if (rc)
			return mig_read_error(r, rc, "a record payload", off);
		if (mig__crc32(0, payload, (size_t)len) != crc) {
			mig__set_error(r, "%s record at offset %llu: CRC mismatch",
				       mig_record_name(type), (unsigned long long)off);
			free(payload);
			return -EBADMSG;
		}
		if (type == MIG_REC_SECTION) {
			rc = mig_take_section(r, loaded, payload, len, off);
			if (rc) {
				free(payload);
				return rc;
			}
			continue;
		}
		mig__clear_error(r); /* the sink may say why itself */
		if (type == MIG_REC_ZERO)
			rc = ram->zero(ram->opaque, mig_rd64(payload), mig_rd64((uint8_t *)payload + 8));
		else
			rc = ram->load(ram->opaque, mig_rd64(payload), (uint8_t *)payload + 8,
				       (size_t)len - 8);
		free(payload);
		if (rc) {
			char why[MIG_ERR_MAX];

			snprintf(why, sizeof(why), "%s", r->err[0] ? r->err : strerror(rc < 0 ? -rc : EINVAL));
			mig__set_error(r, "%s record at offset %llu: %s", type == MIG_REC_RAM ? "RAM" : "zero",
				       (unsigned long long)off, why);
			return rc < 0 ? rc : -EINVAL;
		}
	}
}

int mig__stream_load(struct mig_registry *r, struct mig_reader *rd, const struct mig_ram_sink *ram)
{
	return mig__stream_load_or_plan(r, rd, ram, NULL);
}

int mig__stream_load_or_plan(struct mig_registry *r, struct mig_reader *rd,
			     const struct mig_ram_sink *ram, bool *plan)
{
	struct mig_loaded *loaded;
	uint32_t flags = 0;
	size_t i;
	int rc;

	mig__clear_error(r);
	loaded = calloc(r->count ? r->count : 1, sizeof(*loaded));
	if (!loaded) {
		mig__set_error(r, "out of memory");
		return -ENOMEM;
	}
	if (plan)
		*plan = false;
	rc = mig_read_header(r, rd, &flags);
	if (rc)
		goto out;
	if (flags & MIG_F_PLAN) {
		if (!plan) {
			mig__set_error(r, "a plan stream (migrate --plan): it holds no VM");
			rc = -EINVAL;
			goto out;
		}
		/* the checks run as each section comes; no RAM, nothing applied */
		*plan = true;
		rc = mig_read_records(r, rd, NULL, loaded);
		goto out;
	}
	rc = mig_read_records(r, rd, ram, loaded);
	if (rc)
		goto out;
	for (i = 0; i < r->count; i++) {
		if (!loaded[i].fdt) {
			mig__set_error(r, "section '%s' instance %u is registered but not in the "
				       "stream", r->sections[i].name, r->sections[i].instance);
			rc = -EINVAL;
			goto out;
		}
	}
	/* Phase 2: everything is validated; apply in registration order. */
	for (i = 0; i < r->count; i++) {
		const struct mig_section *s = &r->sections[i];

		mig__clear_field_error();
		mig__clear_error(r); /* a loader may say why itself (mig__set_error) */
		rc = s->ops->load(s->opaque, loaded[i].fdt, 0, loaded[i].version);
		if (rc) {
			char why[MIG_ERR_MAX];

			if (rc > 0)
				rc = -EINVAL;
			snprintf(why, sizeof(why), "%s", mig__field_error()[0] ? mig__field_error() :
							 r->err[0] ? r->err : strerror(-rc));
			mig__set_error(r, "section '%s' instance %u (version %u): load failed: %s",
				       s->name, s->instance, loaded[i].version, why);
			goto out;
		}
	}
out:
	for (i = 0; i < r->count; i++)
		free(loaded[i].fdt);
	free(loaded);
	return rc;
}
