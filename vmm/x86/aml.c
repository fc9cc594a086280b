// SPDX-License-Identifier: MIT
/*
 * AML emitter (ACPI 6.x, chapter 20 "ACPI Machine Language Specification" and
 * 6.4 "Resource Data Types"). Constructs with a PkgLength are written content
 * first; aml__end() then inserts the PkgLength (1-4 bytes) in front of it.
 */
#include "vmm/x86/aml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0A
#define AML_WORD_PREFIX 0x0B
#define AML_DWORD_PREFIX 0x0C
#define AML_STRING_PREFIX 0x0D
#define AML_QWORD_PREFIX 0x0E
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_METHOD_OP 0x14
#define AML_DUAL_NAME_PREFIX 0x2E
#define AML_MULTI_NAME_PREFIX 0x2F
#define AML_EXT_OP_PREFIX 0x5B
#define AML_OPREGION_OP 0x80 /* after 0x5B */
#define AML_FIELD_OP 0x81 /* after 0x5B */
#define AML_DEVICE_OP 0x82 /* after 0x5B */
#define AML_LOCAL0_OP 0x60
#define AML_ARG0_OP 0x68
#define AML_STORE_OP 0x70
#define AML_ADD_OP 0x72
#define AML_SUBTRACT_OP 0x74
#define AML_INCREMENT_OP 0x75
#define AML_DECREMENT_OP 0x76
#define AML_SHIFT_LEFT_OP 0x79
#define AML_SHIFT_RIGHT_OP 0x7A
#define AML_AND_OP 0x7B
#define AML_OR_OP 0x7D
#define AML_NOTIFY_OP 0x86
#define AML_LAND_OP 0x90
#define AML_LOR_OP 0x91
#define AML_LNOT_OP 0x92
#define AML_LEQUAL_OP 0x93
#define AML_LGREATER_OP 0x94
#define AML_LLESS_OP 0x95
#define AML_IF_OP 0xA0
#define AML_ELSE_OP 0xA1
#define AML_WHILE_OP 0xA2
#define AML_BREAK_OP 0xA5
#define AML_ROOT_CHAR '\\'
#define AML_PARENT_PREFIX '^'
#define AML_RETURN_OP 0xA4
#define AML_NULL_NAME 0x00
#define AML_RESERVED_FIELD 0x00
#define AML_PKGLEN_MAX 0x0FFFFFFFu /* 28 bits */
#define AML_ONES_OP 0xFF

#define RES_END_TAG 0x79
#define RES_IO 0x47
#define RES_IRQ_NOFLAGS 0x22
#define RES_DWORD_ADDR 0x87
#define RES_WORD_ADDR 0x88
#define RES_QWORD_ADDR 0x8A
#define RES_TYPE_MEM 0
#define RES_TYPE_IO 1
#define RES_TYPE_BUS 2
#define RES_GEN_MIN_MAX_FIXED 0x0C /* producer, positive decode, _MIF, _MAF */

enum { BLK_PLAIN, BLK_PACKAGE, BLK_BUFFER, BLK_RESTEMPLATE, BLK_FIELD };

void aml__init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml__free(struct aml *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

int aml__error(const struct aml *a)
{
	return a->error;
}

static bool aml_reserve(struct aml *a, size_t extra)
{
	size_t cap;
	uint8_t *p;

	if (a->error)
		return false;
	if (a->len + extra <= a->cap)
		return true;
	cap = MAX(a->cap * 2, a->len + extra + 256);
	p = realloc(a->buf, cap);
	if (!p) {
		a->error = -ENOMEM;
		free(a->buf);
		a->buf = NULL;
		a->len = a->cap = 0;
		return false;
	}
	a->buf = p;
	a->cap = cap;
	return true;
}

/* marks a malformed input; the first error sticks */
static void aml_invalid(struct aml *a)
{
	if (!a->error)
		a->error = -EINVAL;
}

void aml__bytes(struct aml *a, const void *p, size_t n)
{
	if (!n || !aml_reserve(a, n))
		return;
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void aml__byte(struct aml *a, uint8_t b)
{
	aml__bytes(a, &b, 1);
}

static void aml_le(struct aml *a, uint64_t v, unsigned int n)
{
	uint8_t b[8];
	unsigned int i;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	aml__bytes(a, b, n);
}

static bool aml_name_char(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

void aml__name_string(struct aml *a, const char *path)
{
	const char *p = path, *seg;
	unsigned int nseg = 0, i;

	if (*p == AML_ROOT_CHAR) {
		aml__byte(a, AML_ROOT_CHAR);
		p++;
	} else {
		while (*p == AML_PARENT_PREFIX) {
			aml__byte(a, AML_PARENT_PREFIX);
			p++;
		}
	}
	if (!*p) {
		aml__byte(a, 0x00); /* NullName */
		return;
	}
	for (seg = p; *seg; seg++)
		if (*seg == '.')
			nseg++;
	nseg++;
	if (nseg > 255) {
		aml_invalid(a);
		return;
	}
	if (nseg == 2) {
		aml__byte(a, AML_DUAL_NAME_PREFIX);
	} else if (nseg > 2) {
		aml__byte(a, AML_MULTI_NAME_PREFIX);
		aml__byte(a, (uint8_t)nseg);
	}
	while (nseg--) {
		char s[4] = { '_', '_', '_', '_' };

		for (i = 0; *p && *p != '.'; i++, p++) {
			if (i >= 4 || !aml_name_char(*p, i == 0)) {
				aml_invalid(a);
				return;
			}
			s[i] = *p;
		}
		if (!i) {
			aml_invalid(a);
			return;
		}
		aml__bytes(a, s, 4);
		if (*p == '.')
			p++;
	}
}

void aml__integer(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml__byte(a, AML_ZERO_OP);
	} else if (v == 1) {
		aml__byte(a, AML_ONE_OP);
	} else if (v == UINT64_MAX) {
		aml__byte(a, AML_ONES_OP);
	} else if (v <= 0xff) {
		aml__byte(a, AML_BYTE_PREFIX);
		aml_le(a, v, 1);
	} else if (v <= 0xffff) {
		aml__byte(a, AML_WORD_PREFIX);
		aml_le(a, v, 2);
	} else if (v <= 0xffffffffULL) {
		aml__byte(a, AML_DWORD_PREFIX);
		aml_le(a, v, 4);
	} else {
		aml__byte(a, AML_QWORD_PREFIX);
		aml_le(a, v, 8);
	}
}

void aml__string(struct aml *a, const char *s)
{
	const char *p;

	for (p = s; *p; p++)
		if ((unsigned char)*p > 0x7f) {
			aml_invalid(a);
			return;
		}
	aml__byte(a, AML_STRING_PREFIX);
	aml__bytes(a, s, strlen(s) + 1);
}

static int aml_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

uint32_t aml__eisaid_value(const char *id)
{
	uint32_t v = 0;
	int i;

	if (strlen(id) != 7)
		return 0;
	for (i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return 0;
		v |= (uint32_t)((id[i] - 0x40) & 0x1f) << (26 - 5 * i);
	}
	for (i = 3; i < 7; i++) {
		int h = aml_hex(id[i]);

		if (h < 0)
			return 0;
		v |= (uint32_t)h << (4 * (6 - i));
	}
	return __builtin_bswap32(v);
}

void aml__eisaid(struct aml *a, const char *id)
{
	uint32_t v = aml__eisaid_value(id);

	if (!v) {
		aml_invalid(a);
		return;
	}
	aml__byte(a, AML_DWORD_PREFIX);
	aml_le(a, v, 4);
}

void aml__name(struct aml *a, const char *path)
{
	aml__byte(a, AML_NAME_OP);
	aml__name_string(a, path);
}

void aml__return(struct aml *a)
{
	aml__byte(a, AML_RETURN_OP);
}

size_t aml__pkglen_encode(uint8_t out[4], size_t content_len)
{
	size_t n, total;

	for (n = 1; n <= 4; n++) {
		total = content_len + n;
		if (n == 1 && total < 0x40) {
			out[0] = (uint8_t)total;
			return 1;
		}
		if (n > 1 && total < (1ULL << (4 + 8 * (n - 1)))) {
			size_t i;

			out[0] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
			for (i = 1; i < n; i++)
				out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
			return n;
		}
	}
	return 0;
}

static void aml_insert(struct aml *a, size_t at, const uint8_t *p, size_t n)
{
	if (!aml_reserve(a, n))
		return;
	memmove(a->buf + at + n, a->buf + at, a->len - at);
	memcpy(a->buf + at, p, n);
	a->len += n;
}

static struct aml_blk aml_begin(struct aml *a, int kind)
{
	struct aml_blk b = { .start = a->len, .kind = kind, .nelem = 0, .bit = 0 };

	return b;
}

struct aml_blk aml__scope_begin(struct aml *a, const char *path)
{
	struct aml_blk b;

	aml__byte(a, AML_SCOPE_OP);
	b = aml_begin(a, BLK_PLAIN);
	aml__name_string(a, path);
	return b;
}

struct aml_blk aml__device_begin(struct aml *a, const char *path)
{
	struct aml_blk b;

	aml__byte(a, AML_EXT_OP_PREFIX);
	aml__byte(a, AML_DEVICE_OP);
	b = aml_begin(a, BLK_PLAIN);
	aml__name_string(a, path);
	return b;
}

struct aml_blk aml__method_begin(struct aml *a, const char *path, unsigned int nargs, bool serialized)
{
	struct aml_blk b;

	aml__byte(a, AML_METHOD_OP);
	b = aml_begin(a, BLK_PLAIN);
	aml__name_string(a, path);
	if (nargs > 7)
		aml_invalid(a);
	aml__byte(a, (uint8_t)((nargs & 7) | (serialized ? 0x08 : 0)));
	return b;
}

struct aml_blk aml__package_begin(struct aml *a)
{
	aml__byte(a, AML_PACKAGE_OP);
	return aml_begin(a, BLK_PACKAGE);
}

void aml__elem(struct aml_blk *b)
{
	b->nelem++;
}

struct aml_blk aml__buffer_begin(struct aml *a)
{
	aml__byte(a, AML_BUFFER_OP);
	return aml_begin(a, BLK_BUFFER);
}

struct aml_blk aml__restemplate_begin(struct aml *a)
{
	aml__byte(a, AML_BUFFER_OP);
	return aml_begin(a, BLK_RESTEMPLATE);
}

void aml__end(struct aml *a, struct aml_blk b)
{
	uint8_t pre[16], pl[4];
	size_t content, npre = 0, npl;

	if (a->error)
		return;
	if (b.kind == BLK_RESTEMPLATE) {
		aml__byte(a, RES_END_TAG);
		aml__byte(a, 0x00); /* checksum 0: treated as valid */
	}
	if (a->error || b.start > a->len)
		return;
	content = a->len - b.start;

	if (b.kind == BLK_PACKAGE) {
		if (b.nelem > 255) {
			aml_invalid(a);
			return;
		}
		pre[npre++] = (uint8_t)b.nelem;
	} else if (b.kind == BLK_BUFFER || b.kind == BLK_RESTEMPLATE) {
		struct aml tmp;

		/* BufferSize is a TermArg: encode the byte count as an integer */
		aml__init(&tmp);
		aml__integer(&tmp, content);
		if (aml__error(&tmp) || tmp.len > sizeof(pre)) {
			aml__free(&tmp);
			a->error = -ENOMEM;
			return;
		}
		memcpy(pre, tmp.buf, tmp.len);
		npre = tmp.len;
		aml__free(&tmp);
	}
	npl = aml__pkglen_encode(pl, content + npre);
	if (!npl) {
		aml_invalid(a);
		return;
	}
	aml_insert(a, b.start, pre, npre);
	aml_insert(a, b.start, pl, npl);
}

void aml__res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	aml__byte(a, RES_IO);
	aml__byte(a, 0x01); /* 16-bit decode */
	aml_le(a, min, 2);
	aml_le(a, max, 2);
	aml__byte(a, align);
	aml__byte(a, len);
}

void aml__res_irq_noflags(struct aml *a, uint16_t mask)
{
	aml__byte(a, RES_IRQ_NOFLAGS);
	aml_le(a, mask, 2);
}

static void aml_res_word(struct aml *a, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
	aml__byte(a, RES_WORD_ADDR);
	aml_le(a, 13, 2);
	aml__byte(a, type);
	aml__byte(a, RES_GEN_MIN_MAX_FIXED);
	aml__byte(a, tflags);
	aml_le(a, 0, 2);                          /* granularity */
	aml_le(a, min, 2);
	aml_le(a, max, 2);
	aml_le(a, 0, 2);                          /* translation */
	aml_le(a, (uint32_t)max - min + 1, 2);    /* length */
}

void aml__res_word_bus(struct aml *a, uint16_t min, uint16_t max)
{
	aml_res_word(a, RES_TYPE_BUS, 0, min, max);
}

void aml__res_word_io(struct aml *a, uint16_t min, uint16_t max)
{
	aml_res_word(a, RES_TYPE_IO, 0x03 /* EntireRange */, min, max);
}

/* memory type-specific flags: read-write, non-cacheable or prefetchable */
static uint8_t aml_mem_flags(bool prefetch)
{
	return prefetch ? 0x07 : 0x01;
}

void aml__res_dword_mem(struct aml *a, uint32_t min, uint32_t max, bool prefetch)
{
	aml__byte(a, RES_DWORD_ADDR);
	aml_le(a, 23, 2);
	aml__byte(a, RES_TYPE_MEM);
	aml__byte(a, RES_GEN_MIN_MAX_FIXED);
	aml__byte(a, aml_mem_flags(prefetch));
	aml_le(a, 0, 4);
	aml_le(a, min, 4);
	aml_le(a, max, 4);
	aml_le(a, 0, 4);
	aml_le(a, (uint64_t)max - min + 1, 4);
}

void aml__res_qword_mem(struct aml *a, uint64_t min, uint64_t max, bool prefetch)
{
	aml__byte(a, RES_QWORD_ADDR);
	aml_le(a, 43, 2);
	aml__byte(a, RES_TYPE_MEM);
	aml__byte(a, RES_GEN_MIN_MAX_FIXED);
	aml__byte(a, aml_mem_flags(prefetch));
	aml_le(a, 0, 8);
	aml_le(a, min, 8);
	aml_le(a, max, 8);
	aml_le(a, 0, 8);
	aml_le(a, max - min + 1, 8);
}

/* ---- named objects for register-backed methods ---- */

static void aml_ext_op(struct aml *a, uint8_t op)
{
	aml__byte(a, AML_EXT_OP_PREFIX);
	aml__byte(a, op);
}

/* a single NameSeg ("PCIU", "B0" -> "B0__"), no prefixes or dots */
static void aml_name_seg(struct aml *a, const char *name)
{
	char s[4] = { '_', '_', '_', '_' };
	size_t i;

	for (i = 0; name[i]; i++) {
		if (i >= 4 || !aml_name_char(name[i], i == 0)) {
			aml_invalid(a);
			return;
		}
		s[i] = name[i];
	}
	if (!i) {
		aml_invalid(a);
		return;
	}
	aml__bytes(a, s, 4);
}

/*
 * The PkgLength encoding of a plain value (a field unit's bit count): unlike
 * a package's, it does not count its own bytes.
 */
static void aml_pkglen_value(struct aml *a, uint32_t v)
{
	uint8_t b[4];
	size_t n, i;

	if (v > AML_PKGLEN_MAX) {
		aml_invalid(a);
		return;
	}
	if (v < 0x40) {
		aml__byte(a, (uint8_t)v);
		return;
	}
	n = v < (1u << 12) ? 2 : v < (1u << 20) ? 3 : 4;
	b[0] = (uint8_t)(((n - 1) << 6) | (v & 0xf));
	for (i = 1; i < n; i++)
		b[i] = (uint8_t)(v >> (4 + 8 * (i - 1)));
	aml__bytes(a, b, n);
}

void aml__operation_region(struct aml *a, const char *name, enum aml_region_space space,
			   uint64_t offset, uint64_t len)
{
	if ((unsigned int)space > 0xff) {
		aml_invalid(a);
		return;
	}
	aml_ext_op(a, AML_OPREGION_OP);
	aml_name_seg(a, name);
	aml__byte(a, (uint8_t)space);
	aml__integer(a, offset);
	aml__integer(a, len);
}

struct aml_blk aml__field_begin(struct aml *a, const char *region, enum aml_field_access access,
				bool lock, enum aml_field_update update)
{
	struct aml_blk b;

	aml_ext_op(a, AML_FIELD_OP);
	b = aml_begin(a, BLK_FIELD);
	aml__name_string(a, region);
	if ((unsigned int)access > AML_BUFFER_ACC || (unsigned int)update > AML_WRITE_AS_ZEROS)
		aml_invalid(a);
	/* bits 0-3 AccessType, bit 4 LockRule, bits 5-6 UpdateRule */
	aml__byte(a, (uint8_t)((access & 0xf) | (lock ? 0x10 : 0) | ((update & 3) << 5)));
	return b;
}

static bool aml_field_check(struct aml *a, const struct aml_blk *f, uint64_t bits)
{
	if (f->kind != BLK_FIELD || bits > AML_PKGLEN_MAX) {
		aml_invalid(a);
		return false;
	}
	return true;
}

void aml__field_named(struct aml *a, struct aml_blk *f, const char *name, uint32_t bits)
{
	if (!aml_field_check(a, f, bits))
		return;
	if (!bits) {
		aml_invalid(a);
		return;
	}
	aml_name_seg(a, name);
	aml_pkglen_value(a, bits);
	f->bit += bits;
}

void aml__field_reserved(struct aml *a, struct aml_blk *f, uint32_t bits)
{
	if (!aml_field_check(a, f, bits) || !bits)
		return;
	aml__byte(a, AML_RESERVED_FIELD);
	aml_pkglen_value(a, bits);
	f->bit += bits;
}

void aml__field_offset(struct aml *a, struct aml_blk *f, uint32_t byte_off)
{
	uint64_t to = (uint64_t)byte_off * 8;

	if (f->kind != BLK_FIELD || to < f->bit || to - f->bit > AML_PKGLEN_MAX) {
		aml_invalid(a);
		return;
	}
	aml__field_reserved(a, f, (uint32_t)(to - f->bit));
}

/* ---- method bodies ---- */

void aml__local(struct aml *a, unsigned int n)
{
	if (n > 7) {
		aml_invalid(a);
		return;
	}
	aml__byte(a, (uint8_t)(AML_LOCAL0_OP + n));
}

void aml__arg(struct aml *a, unsigned int n)
{
	if (n > 6) {
		aml_invalid(a);
		return;
	}
	aml__byte(a, (uint8_t)(AML_ARG0_OP + n));
}

void aml__no_target(struct aml *a)
{
	aml__byte(a, AML_NULL_NAME);
}

void aml__call(struct aml *a, const char *path)
{
	aml__name_string(a, path);
}

void aml__store(struct aml *a)
{
	aml__byte(a, AML_STORE_OP);
}

void aml__add(struct aml *a)
{
	aml__byte(a, AML_ADD_OP);
}

void aml__subtract(struct aml *a)
{
	aml__byte(a, AML_SUBTRACT_OP);
}

void aml__and(struct aml *a)
{
	aml__byte(a, AML_AND_OP);
}

void aml__or(struct aml *a)
{
	aml__byte(a, AML_OR_OP);
}

void aml__shift_left(struct aml *a)
{
	aml__byte(a, AML_SHIFT_LEFT_OP);
}

void aml__shift_right(struct aml *a)
{
	aml__byte(a, AML_SHIFT_RIGHT_OP);
}

void aml__increment(struct aml *a)
{
	aml__byte(a, AML_INCREMENT_OP);
}

void aml__decrement(struct aml *a)
{
	aml__byte(a, AML_DECREMENT_OP);
}

void aml__land(struct aml *a)
{
	aml__byte(a, AML_LAND_OP);
}

void aml__lor(struct aml *a)
{
	aml__byte(a, AML_LOR_OP);
}

void aml__lnot(struct aml *a)
{
	aml__byte(a, AML_LNOT_OP);
}

void aml__lequal(struct aml *a)
{
	aml__byte(a, AML_LEQUAL_OP);
}

void aml__lgreater(struct aml *a)
{
	aml__byte(a, AML_LGREATER_OP);
}

void aml__lless(struct aml *a)
{
	aml__byte(a, AML_LLESS_OP);
}

void aml__notify(struct aml *a)
{
	aml__byte(a, AML_NOTIFY_OP);
}

void aml__break(struct aml *a)
{
	aml__byte(a, AML_BREAK_OP);
}

struct aml_blk aml__if_begin(struct aml *a)
{
	aml__byte(a, AML_IF_OP);
	return aml_begin(a, BLK_PLAIN);
}

struct aml_blk aml__else_begin(struct aml *a)
{
	aml__byte(a, AML_ELSE_OP);
	return aml_begin(a, BLK_PLAIN);
}

struct aml_blk aml__while_begin(struct aml *a)
{
	aml__byte(a, AML_WHILE_OP);
	return aml_begin(a, BLK_PLAIN);
}
