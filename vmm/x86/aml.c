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
#define AML_DEVICE_OP 0x82 /* after 0x5B */
#define AML_ROOT_CHAR '\\'
#define AML_PARENT_PREFIX '^'
#define AML_RETURN_OP 0xA4
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

enum { BLK_PLAIN, BLK_PACKAGE, BLK_BUFFER, BLK_RESTEMPLATE };

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
	struct aml_blk b = { .start = a->len, .kind = kind, .nelem = 0 };

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
