// SPDX-License-Identifier: MIT
/*
 * VF passthrough's config space virtualization (devices/vfio/pci.c) on the
 * unit tests' fake VFIO backend (tests/unit/vfio_fake.h): both sides are
 * hostile here. The device's own config space (its capability chains, the
 * MSI-X capability's table and PBA placement, BAR types) comes from the
 * input, then the guest's config reads and writes, MSI-X table and PBA
 * accesses and BAR accesses follow, and the device is destroyed (unplug,
 * reset ladder, DMA unmap) at the end of every input.
 *
 * Input: u8 flags (bit 0: the standard capabilities 0x40..0xff come from the
 * input, bit 1: the extended ones 0x100..0x1ff, bit 2: BAR 0..5 sizes and
 * the MSI-X vector count too, bit 3: plug later, bit 4: a dead device),
 * those bytes, then ops (low 2 bits):
 *   0 config write (u16 offset, len, u32 value)   1 config read
 *   2 BAR access (u8 bar, u16 offset, len, u8 write, u64 value)
 *   3 plug the device when plug_later kept it off the bus
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/vfio/pci.h"
#define MINIVMM_FUZZ_PCI_BARS
#include "fuzz.h"
#include "vfio_fake.h"
#include "vmm/bus.h"
#include "vmm/kvm.h"
#include "vmm/pci.h"

static struct vm vm;
static struct fake_vfio f;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	if (kvm__vm_init_fake(&vm, 16 * MiB))
		abort();
	return 0;
}

static struct pci_dev *vf_dev(void)
{
	unsigned int i;

	for (i = 1; i < PCI_MAX_DEVICES; i++)
		if (vm.pci.devs[i])
			return vm.pci.devs[i];
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vfio_pci_opts o = {.name = "vfio-fuzz", .backend = &f.be};
	struct vfio_pci *vf = NULL;
	struct fuzz_in in;
	unsigned int steps = 0, i;
	uint8_t flags;

	fuzz_in_init(&in, data, size);
	fake_init(&f);
	flags = fuzz_u8(&in);
	if (flags & 1)
		fuzz_bytes(&in, f.cfg + 0x40, 0xc0);
	if (flags & 2)
		fuzz_bytes(&in, f.cfg + 0x100, 0x100);
	if (flags & 4) {
		for (i = 0; i < 6; i++) {
			uint8_t s = fuzz_u8(&in);

			f.bar_size[i] = s ? 1ULL << (s % 16) : 0;
			f.bar_mmap[i] = s & 0x80;
			f.msix_mappable[i] = s & 0x40;
			fuzz_bytes(&in, f.cfg + PCI_BASE_ADDRESS_0 + 4 * i, 4);
		}
		f.irq_count[VFIO_PCI_MSIX_IRQ_INDEX] = fuzz_u8(&in);
		f.irq_count[VFIO_PCI_MSI_IRQ_INDEX] = fuzz_u8(&in) % 33;
		f.irq_count[VFIO_PCI_INTX_IRQ_INDEX] = fuzz_u8(&in) & 1;
	}
	o.plug_later = flags & 8;
	f.dead = flags & 16;
	if (vfio_pci__create(&vm, "0000:03:10.1", &o, &vf))
		return 0;

	while (!fuzz_empty(&in) && steps++ < 256) {
		uint8_t op = fuzz_u8(&in);
		uint32_t len = 1u << ((op >> 2) & 3);
		struct pci_dev *d = vf_dev();
		uint8_t buf[8] = {0};

		switch (op & 3) {
		case 0:
		case 1: {
			uint32_t off = fuzz_u16(&in) % PCI_CFG_SPACE_EXP_SIZE;
			uint32_t v = fuzz_u32(&in);

			if (!d)
				break;
			if (len == 8)
				len = 4;
			off &= ~(len - 1);
			memcpy(buf, &v, 4);
			pci__cfg_access(&vm.pci, 0, (uint8_t)d->devfn, off, buf, len,
					(op & 3) == 0);
			break;
		}
		case 2: {
			fuzz_bar_access(&vm, d, &in, buf, len);
			break;
		}
		case 3:
			if (o.plug_later && !d)
				(void)vfio_pci__plug(vf);
			break;
		}
	}
	vfio_pci__destroy(vf);
	if (vf_dev())
		abort(); /* destroy left the function on the bus */
	return 0;
}
