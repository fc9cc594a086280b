/* SPDX-License-Identifier: MIT */
/*
 * The migration/snapshot stream: a header, then records, then an end record.
 * docs/migration.md has the byte layout; in short (all integers little-endian):
 *
 *   header:  "MVMMSTRM" | u32 format version (1) | u32 flags (0)      16 bytes
 *   record:  u32 type | u32 crc32(payload) | u64 payload length       16 bytes
 *            payload
 *
 *   type 1 SECTION  payload: a flattened device tree, root properties "name"
 *                   (string), "instance" (u32), "version" (u32) and the
 *                   device's fields; at most MIG_SECTION_MAX bytes
 *   type 2 RAM      payload: u64 guest-physical address (LE), then the bytes;
 *                   at most MIG_RAM_RECORD_MAX bytes
 *   type 3 END      empty payload; the stream ends here
 *   type 4 ZERO     u64 guest-physical address, u64 length: zeros (pre-copy)
 *   type 5 CONFIRM  empty payload; a live migration's writer waits here for
 *                   the reader's word that what came so far (the checking
 *                   sections) is accepted (migration/live.h: MIG_ACK_READY)
 *
 * Loading is two-phase: mig__stream_load() reads every record, checks its
 * CRC and bounds, validates each section tree with fdt_check_full() before any
 * other read, refuses duplicated, unknown, missing and out-of-window sections,
 * and only then calls the load() ops in registration order. A corrupt or
 * incompatible stream therefore changes no device state. RAM records are
 * handed to the RAM sink during the first phase, after their CRC check: the
 * destination's RAM is fresh and is entirely overwritten by a good stream.
 * A device load() that fails in the second phase leaves earlier devices
 * loaded; the caller must then discard the destination VM.
 */
#ifndef MINIVMM_MIGRATION_STREAM_H
#define MINIVMM_MIGRATION_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migration/section.h"

#define MIG_MAGIC "MVMMSTRM"
#define MIG_FORMAT_VERSION 1u
#define MIG_HEADER_SIZE 16
/*
 * Header flag: a plan stream (`migrate --plan`): only the sections that
 * have a check op, no RAM. The reader runs their checks, loads nothing and
 * requires no other section (mig__stream_load_or_plan).
 */
#define MIG_F_PLAN 0x1u
#define MIG_RECORD_HEADER_SIZE 16
#define MIG_SECTION_MAX (64u << 20)    /* one section's tree */
#define MIG_FDT_VERSION 17u            /* a section tree's flattened-tree version (fdt_create's) */
#define MIG_RAM_RECORD_MAX (64u << 20) /* one RAM record's payload, address included */

enum mig_record_type {
	MIG_REC_SECTION = 1,
	MIG_REC_RAM = 2,
	MIG_REC_END = 3,
	/* u64 guest-physical address, u64 length (LE): that RAM reads as zeros (pre-copy) */
	MIG_REC_ZERO = 4,
	/* empty: the reader confirms what it has checked so far (live migration) */
	MIG_REC_CONFIRM = 5,
};

/* ---- I/O: an fd (EINTR-safe, full reads/writes) or a memory buffer ---- */

enum mig_io_kind { MIG_IO_FD, MIG_IO_MEM };

struct mig_writer {
	enum mig_io_kind kind;
	int fd;
	uint8_t *buf; /* MIG_IO_MEM: owned, grows */
	size_t len;
	size_t cap;
	size_t max; /* MIG_IO_MEM: -ENOSPC past this many bytes */
	uint64_t written;
	/*
	 * MIG_IO_FD, optional: called when a non-blocking fd cannot take more
	 * (EAGAIN); returns once it can (0) or with -errno (the write fails).
	 * Without it, the writer polls the fd.
	 */
	int (*wait)(void *opaque, int fd);
	void *wait_opaque;
	/*
	 * MIG_IO_FD: small writes gather here (MIG_WRITER_STAGE bytes, owned)
	 * and go out in one write: a record's header and a run of zero records
	 * are not a system call each (and not a TLS record each behind the
	 * relay, vmm/migtls.c). Flushed before a record the writer then waits
	 * on an answer for (CONFIRM, END), by mig__writer_flush, and never by
	 * mig__writer_release (a stream given up sends no more).
	 */
	uint8_t *stage;
	size_t staged;
};

/* the writer's staging buffer; a write at least this long goes out directly */
#define MIG_WRITER_STAGE (64u << 10)

struct mig_reader {
	enum mig_io_kind kind;
	int fd;
	const uint8_t *buf; /* MIG_IO_MEM: borrowed */
	size_t len;
	size_t pos;
	uint64_t consumed;
};

void mig__writer_init_fd(struct mig_writer *w, int fd);
/* max 0 means no limit other than memory */
void mig__writer_init_mem(struct mig_writer *w, size_t max);
/* MIG_IO_MEM: the bytes written so far (owned by w) */
const void *mig__writer_data(const struct mig_writer *w, size_t *len);
void mig__writer_release(struct mig_writer *w);
/* MIG_IO_FD: what is staged goes out now (0 or -errno); MIG_IO_MEM: nothing to do */
int mig__writer_flush(struct mig_writer *w) __attribute__((warn_unused_result));
/* 0 or -errno; all of buf is written (MIG_IO_FD: or staged, see stage) */
int mig__write_all(struct mig_writer *w, const void *buf, size_t len)
	__attribute__((warn_unused_result));

void mig__reader_init_fd(struct mig_reader *r, int fd);
void mig__reader_init_mem(struct mig_reader *r, const void *buf, size_t len);
/* 0, -EBADMSG when the stream ends before len bytes, or -errno */
int mig__read_all(struct mig_reader *r, void *buf, size_t len) __attribute__((warn_unused_result));

/* CRC-32 (IEEE 802.3, as zlib's crc32()); start with crc = 0 */
uint32_t mig__crc32(uint32_t crc, const void *buf, size_t len);

/* ---- saving ---- */

int mig__stream_write_header(struct mig_registry *r, struct mig_writer *w)
	__attribute__((warn_unused_result));
/* a raw record: computes the CRC; refuses payloads over the type's cap */
/* a confirm record (type 5): the writer then reads the reader's answer itself */
int mig__stream_write_confirm(struct mig_registry *r, struct mig_writer *w);
int mig__stream_write_record(struct mig_registry *r, struct mig_writer *w, uint32_t type,
			     const void *payload, size_t len) __attribute__((warn_unused_result));
/* runs s's save() into a fresh tree (grown as needed) and writes it */
int mig__stream_write_section(struct mig_registry *r, struct mig_writer *w,
			      const struct mig_section *s) __attribute__((warn_unused_result));
int mig__stream_write_ram(struct mig_registry *r, struct mig_writer *w, uint64_t gpa,
			  const void *data, size_t len) __attribute__((warn_unused_result));
/* a run of guest RAM that is all zeros (16 bytes in the stream whatever its length) */
int mig__stream_write_zero(struct mig_registry *r, struct mig_writer *w, uint64_t gpa,
			   uint64_t len) __attribute__((warn_unused_result));
int mig__stream_write_end(struct mig_registry *r, struct mig_writer *w)
	__attribute__((warn_unused_result));
/* header, every registered section in registration order, end */
int mig__stream_save(struct mig_registry *r, struct mig_writer *w)
	__attribute__((warn_unused_result));
/* a plan stream: header with MIG_F_PLAN, the sections that have a check op, end */
int mig__stream_save_plan(struct mig_registry *r, struct mig_writer *w)
	__attribute__((warn_unused_result));

/*
 * Builds the tree of one section (what write_section writes) into a malloc'd
 * buffer: *fdt (free() it) of *len bytes.
 */
int mig__section_save_fdt(struct mig_registry *r, const struct mig_section *s, void **fdt,
			  size_t *len) __attribute__((warn_unused_result));

/* ---- loading ---- */

struct mig_ram_sink {
	/* 0 or -errno; data is valid only during the call */
	int (*load)(void *opaque, uint64_t gpa, const void *data, size_t len);
	/* [gpa, gpa + len) reads as zeros (a zero record); NULL refuses them */
	int (*zero)(void *opaque, uint64_t gpa, uint64_t len);
	/*
	 * A confirm record: every section so far passed its check; the reader
	 * tells the writer so (0 or -errno). NULL: the record is skipped (a
	 * file has no one to answer).
	 */
	int (*confirm)(void *opaque);
	/* optional: runs between records (consumed: the stream's bytes so far) */
	void (*idle)(void *opaque, uint64_t consumed);
	void *opaque;
};

/*
 * Reads a whole stream and loads it into the registered sections (see the
 * top of this file). ram may be NULL: RAM records are then refused.
 * 0, or -EBADMSG (corrupt or truncated stream), -EINVAL (valid framing but
 * not loadable here: unknown/duplicated/missing section, version outside the
 * window, unsupported format version or flags), -ENOMEM, or a load() op's
 * error; mig__error(r) says which section and why.
 */
int mig__stream_load(struct mig_registry *r, struct mig_reader *rd, const struct mig_ram_sink *ram)
	__attribute__((warn_unused_result));
/*
 * The same, and a plan stream (MIG_F_PLAN) is accepted too: its sections'
 * checks run and nothing is loaded. *plan says which kind the header named
 * (set before the checks: a refused plan is still a plan).
 * mig__stream_load refuses plan streams (a plan holds no VM).
 */
int mig__stream_load_or_plan(struct mig_registry *r, struct mig_reader *rd,
			     const struct mig_ram_sink *ram, bool *plan)
	__attribute__((warn_unused_result));

/*
 * Validates one section tree exactly as the loader does: fdt_check_full(),
 * total size equal to len, no duplicate property names, root properties
 * name/instance/version well formed. Returns 0 and fills name/instance/version.
 */
int mig__section_check_fdt(struct mig_registry *r, const void *fdt, size_t len,
			   char name[MIG_NAME_MAX], uint32_t *instance, uint32_t *version)
	__attribute__((warn_unused_result));

#endif
