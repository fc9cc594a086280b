/* SPDX-License-Identifier: MIT */
/*
 * The ELF64 x86-64 executable header the loader tests' synthetic kernels
 * start with: program headers right after it, phnum of them.
 */
#ifndef MINIVMM_TESTS_UNIT_ELF_EHDR_H
#define MINIVMM_TESTS_UNIT_ELF_EHDR_H

#include <elf.h>
#include <string.h>

static inline void elf_ehdr_fill(Elf64_Ehdr *eh, uint64_t entry, uint16_t phnum)
{
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = entry;
	eh->e_phoff = sizeof(Elf64_Ehdr);
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = phnum;
}

#endif
