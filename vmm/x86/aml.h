/* SPDX-License-Identifier: MIT */
/*
 * A small AML (ACPI Machine Language) emitter: a growable byte buffer plus
 * helpers for names, integers, strings, EISA ids, the package-length-prefixed
 * constructs (Scope, Device, Method, Package, Buffer, ResourceTemplate, Field,
 * If, Else, While), the resource descriptors a PCI host bridge and ISA
 * devices need, and the operation regions, fields and method bodies that ACPI
 * PCI hot-plug (a GPE handler notifying per-slot devices, _EJ0) is made of.
 *
 * Constructs nest: x = aml__device_begin(a, "PCI0"); ...; aml__end(a, x).
 * Operators are written in prefix order, as AML encodes them: emit the
 * operator, then its operands (which may be operators themselves), e.g.
 * Store(ShiftLeft(One, Arg0), B0EJ) is
 *   aml__store(a); aml__shift_left(a); aml__integer(a, 1); aml__arg(a, 0);
 *   aml__no_target(a); aml__name_string(a, "B0EJ");
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
	uint64_t bit; /* Field: bit offset of the next field unit */
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

/* ---- named objects for register-backed methods (PCI hot-plug) ---- */

/* RegionSpace of an OperationRegion (ACPI 6.x, 19.6.100) */
enum aml_region_space {
	AML_SYSTEM_MEMORY = 0x00,
	AML_SYSTEM_IO = 0x01,
	AML_PCI_CONFIG = 0x02,
};

/* OperationRegion(name, space, offset, len) */
void aml__operation_region(struct aml *a, const char *name, enum aml_region_space space,
			   uint64_t offset, uint64_t len);

/* FieldFlags: AccessType, LockRule (a bool) and UpdateRule */
enum aml_field_access {
	AML_ANY_ACC = 0,
	AML_BYTE_ACC = 1,
	AML_WORD_ACC = 2,
	AML_DWORD_ACC = 3,
	AML_QWORD_ACC = 4,
	AML_BUFFER_ACC = 5,
};
enum aml_field_update {
	AML_PRESERVE = 0,
	AML_WRITE_AS_ONES = 1,
	AML_WRITE_AS_ZEROS = 2,
};

/*
 * Field(region, access, lock ? Lock : NoLock, update) { ... }: add field units
 * in order with the three calls below, then aml__end(a, f).
 */
struct aml_blk aml__field_begin(struct aml *a, const char *region, enum aml_field_access access,
				bool lock, enum aml_field_update update);
/* a named field unit of `bits` bits (1 .. 2^28-1) at the current bit offset */
void aml__field_named(struct aml *a, struct aml_blk *f, const char *name, uint32_t bits);
/* skips `bits` bits: an unnamed (reserved) field unit, ASL's ", 8" */
void aml__field_reserved(struct aml *a, struct aml_blk *f, uint32_t bits);
/* ASL's Offset(byte_off): skips forward to that byte; going backwards is an error */
void aml__field_offset(struct aml *a, struct aml_blk *f, uint32_t byte_off);

/* ---- method bodies: operands ---- */

void aml__local(struct aml *a, unsigned int n); /* Local0 .. Local7 */
void aml__arg(struct aml *a, unsigned int n);   /* Arg0 .. Arg6 */
/* an omitted Target (NullName) of And/Or/Add/ShiftLeft/...: the result is only a value */
void aml__no_target(struct aml *a);
/* a method invocation: the path, then the caller emits the method's arguments */
void aml__call(struct aml *a, const char *path);

/* ---- method bodies: operators (operands follow, in the order shown) ---- */

void aml__store(struct aml *a);       /* Store(source, target) */
void aml__add(struct aml *a);         /* Add(x, y, target) */
void aml__subtract(struct aml *a);    /* Subtract(x, y, target) */
void aml__and(struct aml *a);         /* And(x, y, target) */
void aml__or(struct aml *a);          /* Or(x, y, target) */
void aml__shift_left(struct aml *a);  /* ShiftLeft(x, count, target) */
void aml__shift_right(struct aml *a); /* ShiftRight(x, count, target) */
void aml__increment(struct aml *a);   /* Increment(name) */
void aml__decrement(struct aml *a);   /* Decrement(name) */
void aml__land(struct aml *a);        /* LAnd(x, y) */
void aml__lor(struct aml *a);         /* LOr(x, y) */
void aml__lnot(struct aml *a);        /* LNot(x) */
void aml__lequal(struct aml *a);      /* LEqual(x, y) */
void aml__lgreater(struct aml *a);    /* LGreater(x, y) */
void aml__lless(struct aml *a);       /* LLess(x, y) */
void aml__notify(struct aml *a);      /* Notify(object, value) */
void aml__break(struct aml *a);       /* Break, inside a While */

/* If (predicate) { ... }: emit the predicate, then the body, then aml__end */
struct aml_blk aml__if_begin(struct aml *a);
/* Else { ... }: right after the aml__end of an If */
struct aml_blk aml__else_begin(struct aml *a);
/* While (predicate) { ... }: emit the predicate, then the body, then aml__end */
struct aml_blk aml__while_begin(struct aml *a);

/* encodes a PkgLength covering `len` bytes of content; returns its size (1..4) or 0 if too large */
size_t aml__pkglen_encode(uint8_t out[4], size_t content_len);

#endif
