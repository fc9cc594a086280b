// SPDX-License-Identifier: MIT
/*
 * Section registry and the field helpers devices use to save and load named
 * fields in a section's flattened device tree (see section.h).
 */
#include "migration/section.h"

#include <errno.h>
#include <libfdt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static __thread char mig_field_err[MIG_ERR_MAX];

void mig__registry_init(struct mig_registry *r)
{
	memset(r, 0, sizeof(*r));
}

void mig__registry_release(struct mig_registry *r)
{
	free(r->sections);
	memset(r, 0, sizeof(*r));
}

void mig__set_error(struct mig_registry *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
}

const char *mig__error(const struct mig_registry *r)
{
	return r->err;
}

void mig__clear_error(struct mig_registry *r)
{
	r->err[0] = '\0';
}

static int mig_name_valid(const char *name)
{
	size_t len;

	if (!name)
		return 0;
	len = strnlen(name, MIG_NAME_MAX);
	if (len == 0 || len >= MIG_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == ':' || c == '-'))
			return 0;
	}
	return 1;
}

int mig__section_index(const struct mig_registry *r, const char *name, uint32_t instance)
{
	if (!name)
		return -ENOENT;
	for (size_t i = 0; i < r->count; i++) {
		const struct mig_section *s = &r->sections[i];

		if (s->instance == instance && strcmp(s->name, name) == 0)
			return (int)i;
	}
	return -ENOENT;
}

const struct mig_section *mig__section_find(const struct mig_registry *r, const char *name,
					    uint32_t instance)
{
	int i = mig__section_index(r, name, instance);

	return i < 0 ? NULL : &r->sections[i];
}

int mig__section_register(struct mig_registry *r, const char *name, uint32_t instance,
			  uint32_t version, uint32_t min_version,
			  const struct mig_section_ops *ops, void *opaque)
{
	struct mig_section *s;

	if (!mig_name_valid(name)) {
		mig__set_error(r, "section name '%.*s' is invalid (1..%d characters of [A-Za-z0-9_.:-])",
			       MIG_NAME_MAX, name ? name : "(null)", MIG_NAME_MAX - 1);
		return -EINVAL;
	}
	if (version == 0 || min_version == 0 || min_version > version) {
		mig__set_error(r, "section '%s' instance %u: bad version window %u..%u", name,
			       instance, min_version, version);
		return -EINVAL;
	}
	if (!ops || !ops->save || !ops->load) {
		mig__set_error(r, "section '%s' instance %u: save and load ops are required", name,
			       instance);
		return -EINVAL;
	}
	if (mig__section_index(r, name, instance) >= 0) {
		mig__set_error(r, "section '%s' instance %u is already registered", name, instance);
		return -EEXIST;
	}
	if (r->count == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		struct mig_section *n = realloc(r->sections, cap * sizeof(*n));

		if (!n) {
			mig__set_error(r, "section '%s': out of memory", name);
			return -ENOMEM;
		}
		r->sections = n;
		r->cap = cap;
	}
	s = &r->sections[r->count++];
	memset(s, 0, sizeof(*s));
	memcpy(s->name, name, strlen(name) + 1);
	s->instance = instance;
	s->version = version;
	s->min_version = min_version;
	s->ops = ops;
	s->opaque = opaque;
	return 0;
}

int mig__section_unregister(struct mig_registry *r, const char *name, uint32_t instance)
{
	int i = mig__section_index(r, name, instance);

	if (i < 0)
		return -ENOENT;
	memmove(&r->sections[i], &r->sections[i + 1],
		(r->count - (size_t)i - 1) * sizeof(r->sections[0]));
	r->count--;
	return 0;
}

size_t mig__section_count(const struct mig_registry *r)
{
	return r->count;
}

const struct mig_section *mig__section_at(const struct mig_registry *r, size_t i)
{
	return i < r->count ? &r->sections[i] : NULL;
}

int mig__section_accepts(struct mig_registry *r, const struct mig_section *s, uint32_t version)
{
	if (version > s->version) {
		mig__set_error(r,
			       "section '%s' instance %u: stream has version %u, newer than this "
			       "build's version %u",
			       s->name, s->instance, version, s->version);
		return -EINVAL;
	}
	if (version < s->min_version) {
		mig__set_error(r,
			       "section '%s' instance %u: stream has version %u, older than the "
			       "oldest version this build loads (%u; accepts %u..%u)",
			       s->name, s->instance, version, s->min_version, s->min_version,
			       s->version);
		return -EINVAL;
	}
	return 0;
}

/* ---- field helpers ---- */

static int mig_fdt_err(int err)
{
	switch (err) {
	case 0:
		return 0;
	case -FDT_ERR_NOSPACE:
		return -ENOSPC;
	case -FDT_ERR_NOTFOUND:
		return -ENOENT;
	default:
		return -EINVAL;
	}
}

int mig__put_u32(void *fdt, const char *name, uint32_t val)
{
	return mig_fdt_err(fdt_property_u32(fdt, name, val));
}

int mig__put_u64(void *fdt, const char *name, uint64_t val)
{
	return mig_fdt_err(fdt_property_u64(fdt, name, val));
}

int mig__put_bytes(void *fdt, const char *name, const void *buf, size_t len)
{
	if (len > INT32_MAX)
		return -EINVAL;
	return mig_fdt_err(fdt_property(fdt, name, buf, (int)len));
}

int mig__put_str(void *fdt, const char *name, const char *str)
{
	return mig__put_bytes(fdt, name, str, strlen(str) + 1);
}

int mig__begin_node(void *fdt, const char *name)
{
	return mig_fdt_err(fdt_begin_node(fdt, name));
}

int mig__end_node(void *fdt)
{
	return mig_fdt_err(fdt_end_node(fdt));
}

const char *mig__field_error(void)
{
	return mig_field_err;
}

void mig__clear_field_error(void)
{
	mig_field_err[0] = '\0';
}

/*
 * Looks a property up. 0 with *p and *len set, -ENOENT when missing (and
 * `required` records the error), -EBADMSG when the tree is damaged.
 */
static int mig_prop(const void *fdt, int node, const char *name, int required,
		    const void **p, size_t *len)
{
	int l = 0;
	const void *v = fdt_getprop(fdt, node, name, &l);

	if (!v) {
		if (l == -FDT_ERR_NOTFOUND) {
			if (required)
				snprintf(mig_field_err, sizeof(mig_field_err),
					 "required field '%s' is missing", name);
			return -ENOENT;
		}
		snprintf(mig_field_err, sizeof(mig_field_err), "field '%s': %s", name,
			 fdt_strerror(l));
		return -EBADMSG;
	}
	*p = v;
	*len = (size_t)l;
	return 0;
}

static int mig_bad_size(const char *name, size_t got, size_t want)
{
	snprintf(mig_field_err, sizeof(mig_field_err), "field '%s' has %zu bytes, expected %zu",
		 name, got, want);
	return -EBADMSG;
}

static int mig_get_fixed(const void *fdt, int node, const char *name, void *out, size_t size,
			 int required)
{
	const void *p;
	size_t len;
	int rc = mig_prop(fdt, node, name, required, &p, &len);

	if (rc)
		return rc;
	if (len != size)
		return mig_bad_size(name, len, size);
	memcpy(out, p, size);
	return 0;
}

int mig__get_u32(const void *fdt, int node, const char *name, uint32_t *val)
{
	fdt32_t raw;
	int rc = mig_get_fixed(fdt, node, name, &raw, sizeof(raw), 1);

	if (!rc)
		*val = fdt32_to_cpu(raw);
	return rc;
}

int mig__get_u32_max(const void *fdt, int node, const char *name, uint32_t max, uint32_t *val)
{
	uint32_t v;
	int rc = mig__get_u32(fdt, node, name, &v);

	if (rc)
		return rc;
	if (v > max) {
		snprintf(mig_field_err, sizeof(mig_field_err), "field '%s' is %u, at most %u", name, v,
			 max);
		return -ERANGE;
	}
	*val = v;
	return 0;
}

int mig__get_u32_or(const void *fdt, int node, const char *name, uint32_t *val, uint32_t dflt)
{
	fdt32_t raw;
	int rc = mig_get_fixed(fdt, node, name, &raw, sizeof(raw), 0);

	if (rc == -ENOENT) {
		*val = dflt;
		return 0;
	}
	if (!rc)
		*val = fdt32_to_cpu(raw);
	return rc;
}

int mig__get_u64(const void *fdt, int node, const char *name, uint64_t *val)
{
	fdt64_t raw;
	int rc = mig_get_fixed(fdt, node, name, &raw, sizeof(raw), 1);

	if (!rc)
		*val = fdt64_to_cpu(raw);
	return rc;
}

int mig__get_u64_or(const void *fdt, int node, const char *name, uint64_t *val, uint64_t dflt)
{
	fdt64_t raw;
	int rc = mig_get_fixed(fdt, node, name, &raw, sizeof(raw), 0);

	if (rc == -ENOENT) {
		*val = dflt;
		return 0;
	}
	if (!rc)
		*val = fdt64_to_cpu(raw);
	return rc;
}

int mig__get_bytes(const void *fdt, int node, const char *name, void *buf, size_t len)
{
	return mig_get_fixed(fdt, node, name, buf, len, 1);
}

int mig__get_bytes_or(const void *fdt, int node, const char *name, void *buf, size_t len,
		      const void *dflt)
{
	int rc = mig_get_fixed(fdt, node, name, buf, len, 0);

	if (rc == -ENOENT) {
		if (dflt)
			memcpy(buf, dflt, len);
		else
			memset(buf, 0, len);
		return 0;
	}
	return rc;
}

int mig__get_blob(const void *fdt, int node, const char *name, const void **data, size_t *len)
{
	return mig_prop(fdt, node, name, 1, data, len);
}

int mig__get_str(const void *fdt, int node, const char *name, char *buf, size_t maxlen)
{
	const void *p;
	size_t len;
	int rc = mig_prop(fdt, node, name, 1, &p, &len);

	if (rc)
		return rc;
	if (len == 0 || len > maxlen || memchr(p, '\0', len) != (const char *)p + len - 1) {
		snprintf(mig_field_err, sizeof(mig_field_err),
			 "field '%s' is not a string of at most %zu bytes", name, maxlen);
		return -EBADMSG;
	}
	memcpy(buf, p, len);
	return 0;
}

int mig__get_node(const void *fdt, int node, const char *name)
{
	int off = fdt_subnode_offset(fdt, node, name);

	if (off == -FDT_ERR_NOTFOUND) {
		snprintf(mig_field_err, sizeof(mig_field_err), "required node '%s' is missing",
			 name);
		return -ENOENT;
	}
	if (off < 0) {
		snprintf(mig_field_err, sizeof(mig_field_err), "node '%s': %s", name,
			 fdt_strerror(off));
		return -EBADMSG;
	}
	return off;
}
