/* SPDX-License-Identifier: MIT */
/*
 * A small AML (ACPI Machine Language) emitter: a growable byte buffer plus
 * helpers for names, integers, strings, EISA ids, the package-length-prefixed
 * constructs (Scope, Device, Method, Package, Buffer, ResourceTemplate) and
 * the resource descriptors a PCI host bridge and ISA devices need.
 *
 * Constructs nest: x = aml__device_begin(a, "PCI0"); ...; aml__end(a, x).
 * Allocation failures are sticky: check aml__error() once at the end.
 */
#ifndef MINIVMM_VMM_X86_AML_H
#define MINIVMM_VMM_X86_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vmm/util.h"

struct aml {
	uint8_t *buf;
	size_t len, cap;
	int error; /* first error (-ENOMEM, -EINVAL), sticky */
};

/* handle returned by the *_begin functions, passed back to aml__end */
struct aml_blk {
	size_t start; /* offset of the first byte after the opcode (where PkgLength goes) */
	int kind;
	unsigned int nelem;
};

void aml__init(struct aml *a);
void aml__free(struct aml *a);
/* -ENOMEM after a failed allocation, -EINVAL after a malformed name, else 0 */
int aml__error(const struct aml *a);

void aml__byte(struct aml *a, uint8_t b);
void aml__bytes(struct aml *a, const void *p, size_t n);

/* "\\_SB.PCI0", "^FOO", "_S5_", "COM1" (segments shorter than 4 are padded with '_') */
void aml__name_string(struct aml *a, const char *path);
/* ZeroOp/OneOp/OnesOp or the shortest Byte/Word/DWord/QWord constant */
void aml__integer(struct aml *a, uint64_t v);
void aml__string(struct aml *a, const char *s);
/* "PNP0A08" -> the compressed 32-bit EISA id as an integer; a bad id sets the error */
void aml__eisaid(struct aml *a, const char *id);
uint32_t aml__eisaid_value(const char *id);

/* Name(path, <object the caller emits next>) */
void aml__name(struct aml *a, const char *path);
/* Return(<term the caller emits next>) */
void aml__return(struct aml *a);

struct aml_blk aml__scope_begin(struct aml *a, const char *path);
struct aml_blk aml__device_begin(struct aml *a, const char *path);
struct aml_blk aml__method_begin(struct aml *a, const char *path, unsigned int nargs, bool serialized);
/* Package: call aml__elem() after each element */
struct aml_blk aml__package_begin(struct aml *a);
void aml__elem(struct aml_blk *b);
struct aml_blk aml__buffer_begin(struct aml *a);
/* a Buffer holding resource descriptors; aml__end adds the EndTag */
struct aml_blk aml__restemplate_begin(struct aml *a);
void aml__end(struct aml *a, struct aml_blk b);

/* resource descriptors (inside a ResourceTemplate) */
void aml__res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
void aml__res_irq_noflags(struct aml *a, uint16_t mask);
void aml__res_word_bus(struct aml *a, uint16_t min, uint16_t max);
void aml__res_word_io(struct aml *a, uint16_t min, uint16_t max);
void aml__res_dword_mem(struct aml *a, uint32_t min, uint32_t max, bool prefetch);
void aml__res_qword_mem(struct aml *a, uint64_t min, uint64_t max, bool prefetch);

/* encodes a PkgLength covering `len` bytes of content; returns its size (1..4) or 0 if too large */
size_t aml__pkglen_encode(uint8_t out[4], size_t content_len);

#endif
