/* SPDX-License-Identifier: MIT */
/*
 * Registry of device state sections.
 *
 * Each device that has state to migrate registers one section: a name, an
 * instance id (several devices of one model: "virtio-net" 0, 1, ...), the
 * version its save() writes and the oldest version its load() still reads
 * (min_version). Versions are per section, never global: a change to one
 * device's state bumps that device's version only (docs/migration.md).
 *
 * save() runs with a libfdt tree in SEQUENTIAL-WRITE mode whose root node is
 * open: the stream code has already written the root properties "name",
 * "instance" and "version". save() adds the device's fields as properties of
 * the root with the mig__put_*() helpers (or subnodes with mig__begin_node()/
 * mig__end_node()), and returns 0 or the first -errno a helper returned. It
 * must not finish the root node or the tree. When the buffer is too small a
 * helper returns -ENOSPC; the stream code then grows the buffer and calls
 * save() again from scratch, so save() must only read device state.
 *
 * load() gets a read-only tree that has already passed fdt_check_full(), a
 * size check and a duplicate-property check, `node` (the root, 0), and the
 * version the section was written at, which is guaranteed to lie in
 * min_version..version. It reads fields with mig__get_*(), must validate every
 * field before it changes any device state, and returns 0 or -errno.
 *
 * This module is a leaf: libc and libfdt only. It does not log; errors are
 * described in the registry's message buffer (mig__error()) for the caller to
 * log with its own prefix.
 */
#ifndef MINIVMM_MIGRATION_SECTION_H
#define MINIVMM_MIGRATION_SECTION_H

#include <stddef.h>
#include <stdint.h>

#define MIG_NAME_MAX 64 /* including the NUL */
#define MIG_ERR_MAX 256

struct mig_section_ops {
	int (*save)(void *opaque, void *fdt);
	int (*load)(void *opaque, const void *fdt, int node, uint32_t version);
	/*
	 * optional: checks the section as soon as the stream brings it, before
	 * the rest (RAM) is read, and changes nothing; a refusal here stops the
	 * load early (the machine's configuration: a mismatch is said at once)
	 */
	int (*check)(void *opaque, const void *fdt, int node, uint32_t version);
};

struct mig_section {
	char name[MIG_NAME_MAX];
	uint32_t instance;
	uint32_t version;
	uint32_t min_version;
	const struct mig_section_ops *ops;
	void *opaque;
};

struct mig_registry {
	struct mig_section *sections; /* registration order */
	size_t count;
	size_t cap;
	char err[MIG_ERR_MAX]; /* last error, "" when none */
};

void mig__registry_init(struct mig_registry *r);
void mig__registry_release(struct mig_registry *r);

/*
 * Adds a section. Names are 1..63 characters of [A-Za-z0-9_.:-].
 * 1 <= min_version <= version; ops->save and ops->load are required.
 * -EINVAL on bad arguments, -EEXIST when (name, instance) is taken, -ENOMEM.
 */
int mig__section_register(struct mig_registry *r, const char *name, uint32_t instance,
			  uint32_t version, uint32_t min_version,
			  const struct mig_section_ops *ops, void *opaque)
	__attribute__((warn_unused_result));

/* Removes a section (hot-unplug); -ENOENT when it is not registered. */
int mig__section_unregister(struct mig_registry *r, const char *name, uint32_t instance);

/* NULL when (name, instance) is not registered. */
const struct mig_section *mig__section_find(const struct mig_registry *r, const char *name,
					    uint32_t instance);
/* Index of the section in registration order, or -ENOENT. */
int mig__section_index(const struct mig_registry *r, const char *name, uint32_t instance);

/* Iteration in registration order: i in 0..mig__section_count()-1. */
size_t mig__section_count(const struct mig_registry *r);
const struct mig_section *mig__section_at(const struct mig_registry *r, size_t i);

#define mig_for_each_section(r, s)                                              \
	for (size_t mig_i_ = 0;                                                 \
	     mig_i_ < (r)->count && ((s) = &(r)->sections[mig_i_], 1); mig_i_++)

/*
 * 0 when a section written at `version` can be loaded by s (min_version <=
 * version <= s->version); otherwise -EINVAL with a message in r naming the
 * section and the versions.
 */
int mig__section_accepts(struct mig_registry *r, const struct mig_section *s, uint32_t version);

/* The last error message ("" when none) and a way to clear it. */
const char *mig__error(const struct mig_registry *r);
void mig__clear_error(struct mig_registry *r);
void mig__set_error(struct mig_registry *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Field helpers for save(): add a property to the node being written.
 * 0, -ENOSPC (the stream grows the buffer and retries), or -EINVAL.
 * Integers are stored big-endian, as the device-tree convention is.
 */
int mig__put_u32(void *fdt, const char *name, uint32_t val) __attribute__((warn_unused_result));
int mig__put_u64(void *fdt, const char *name, uint64_t val) __attribute__((warn_unused_result));
int mig__put_bytes(void *fdt, const char *name, const void *buf, size_t len)
	__attribute__((warn_unused_result));
int mig__put_str(void *fdt, const char *name, const char *str)
	__attribute__((warn_unused_result));
int mig__begin_node(void *fdt, const char *name) __attribute__((warn_unused_result));
int mig__end_node(void *fdt) __attribute__((warn_unused_result));

/*
 * Field helpers for load(). The plain forms require the field: -ENOENT when
 * it is missing. The _or forms give `dflt` when it is missing (a field added
 * in a later version). Either way a field of the wrong size is -EBADMSG.
 * On failure the field and reason are kept for the stream's error message
 * (mig__field_error()), and *val is left untouched.
 */
int mig__get_u32(const void *fdt, int node, const char *name, uint32_t *val)
	__attribute__((warn_unused_result));
int mig__get_u32_or(const void *fdt, int node, const char *name, uint32_t *val, uint32_t dflt)
	__attribute__((warn_unused_result));
/* a required u32 of at most max (an 8-bit register: 255, a flag: 1); -ERANGE above */
int mig__get_u32_max(const void *fdt, int node, const char *name, uint32_t max, uint32_t *val)
	__attribute__((warn_unused_result));
int mig__get_u64(const void *fdt, int node, const char *name, uint64_t *val)
	__attribute__((warn_unused_result));
int mig__get_u64_or(const void *fdt, int node, const char *name, uint64_t *val, uint64_t dflt)
	__attribute__((warn_unused_result));
/* exactly len bytes */
int mig__get_bytes(const void *fdt, int node, const char *name, void *buf, size_t len)
	__attribute__((warn_unused_result));
/* missing: buf is filled from dflt, or zeroed when dflt is NULL */
int mig__get_bytes_or(const void *fdt, int node, const char *name, void *buf, size_t len,
		      const void *dflt) __attribute__((warn_unused_result));
/* variable length: *data points into the tree (valid while the tree is) */
int mig__get_blob(const void *fdt, int node, const char *name, const void **data, size_t *len)
	__attribute__((warn_unused_result));
/* a NUL-terminated string property of at most maxlen bytes including the NUL */
int mig__get_str(const void *fdt, int node, const char *name, char *buf, size_t maxlen)
	__attribute__((warn_unused_result));
/* offset of a required subnode, or -ENOENT */
int mig__get_node(const void *fdt, int node, const char *name) __attribute__((warn_unused_result));

/* The calling thread's last field error ("" when none), and a reset. */
const char *mig__field_error(void);
void mig__clear_field_error(void);

#endif
