// SPDX-License-Identifier: MIT
/*
 * The bzImage payload decompressor behind --decompress host
 * (vmm/x86/unpack.c): the input is a whole kernel file, as a disk image or
 * --kernel hands it over. The setup header's payload fields, the appended
 * size and the compressed stream are all the attacker's; zlib, liblzma and
 * libzstd themselves are the system's, not instrumented.
 */
#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "vmm/x86/unpack.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *fmt = NULL;
	size_t len = 0;
	void *out = NULL;
	int ret = x86_unpack__bzimage(data, size, &out, &len, &fmt);

	if (ret) {
		if (out || len)
			abort(); /* a failure leaves nothing behind */
		return 0;
	}
	if (!out || len < sizeof(Elf64_Ehdr) || len > X86_UNPACK_MAX || !fmt ||
	    memcmp(out, ELFMAG, SELFMAG))
		abort();
	/* every byte claimed is there (ASan checks the last) */
	if (((volatile uint8_t *)out)[len - 1] == 0x100)
		abort();
	free(out);
	return 0;
}
