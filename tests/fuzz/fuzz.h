/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c): a cursor
 * over the fuzzer's input that hands out integers and byte runs (zeros once
 * the input is used up, so every input is a valid program), and a quiet log.
 */
#ifndef MINIVMM_TESTS_FUZZ_FUZZ_H
#define MINIVMM_TESTS_FUZZ_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline void fuzz_in_init(struct fuzz_in *in, const uint8_t *data, size_t size)
{
	in->p = data;
	in->n = size;
}

static inline bool fuzz_empty(const struct fuzz_in *in)
{
	return in->n == 0;
}

/* copies up to len bytes (the rest zeroed); returns how many came from the input */
static inline size_t fuzz_bytes(struct fuzz_in *in, void *buf, size_t len)
{
	size_t k = len < in->n ? len : in->n;

	memcpy(buf, in->p, k);
	memset((uint8_t *)buf + k, 0, len - k);
	in->p += k;
	in->n -= k;
	return k;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	uint8_t v;

	fuzz_bytes(in, &v, 1);
	return v;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
	uint8_t b[2];

	fuzz_bytes(in, b, 2);
	return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
	uint8_t b[4];

	fuzz_bytes(in, b, 4);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint64_t fuzz_u64(struct fuzz_in *in)
{
	uint64_t lo = fuzz_u32(in);

	return lo | (uint64_t)fuzz_u32(in) << 32;
}

/* the next len bytes of the input in place (fewer when it ends); *got says how many */
static inline const uint8_t *fuzz_take(struct fuzz_in *in, size_t len, size_t *got)
{
	const uint8_t *p = in->p;

	*got = len < in->n ? len : in->n;
	in->p += *got;
	in->n -= *got;
	return p;
}

/*
 * The harnesses feed hostile input on purpose: the device logs still format
 * their messages (a bad format argument is a bug worth finding) but into
 * /dev/null; MINIVMM_FUZZ_LOG=1 keeps them on stderr.
 */
static inline void fuzz_quiet(void)
{
	const char *e = getenv("MINIVMM_FUZZ_LOG");

	if (e && *e == '1')
		return;
	log__set_stream(fopen("/dev/null", "w"));
	log__set_level(LOG_WARN);
}


#ifdef MINIVMM_FUZZ_PCI_BARS
#include "vmm/bus.h"
#include "vmm/kvm.h"
#include "vmm/pci.h"

/*
 * One guest access to a BAR of function d (fuzz_pci, fuzz_vfio_pci): the
 * input picks the BAR, the offset, read or write and the value; an access
 * of len bytes (buf holds 8), kept inside an active BAR and aligned, through
 * the VM's port I/O or MMIO bus as a vCPU's would go.
 */
static inline void fuzz_bar_access(struct vm *vm, struct pci_dev *d, struct fuzz_in *in,
				   uint8_t *buf, unsigned int len)
{
	int bar = fuzz_u8(in) % PCI_NUM_BARS;
	uint64_t off = fuzz_u16(in);
	bool wr = fuzz_u8(in) & 1;
	uint64_t v = fuzz_u64(in);
	struct pci_bar *b;

	if (!d)
		return;
	b = &d->bars[bar];
	if (!b->size || !b->active)
		return;
	memcpy(buf, &v, 8);
	off = (off % b->size) & ~(uint64_t)(len - 1);
	if (b->flags & PCI_BAR_F_IO)
		(void)bus__dispatch(&vm->pio, b->addr + off, buf, len > 4 ? 4 : len, wr);
	else
		(void)bus__dispatch(&vm->mmio, b->addr + off, buf, len, wr);
}
#endif

#endif
