// SPDX-License-Identifier: MIT
/*
 * The guest's view of PCI (vmm/pci.c, vmm/msix.c, the virtio-pci transport
 * of virtio/pci.c): config space through CF8/CFC and ECAM, BAR sizing and
 * moves, COMMAND decode bits, capability bytes, the MSI-X table and PBA, and
 * MMIO/PIO to the BARs, on a fresh fake VM per input with three functions:
 * a harness device (I/O BAR 0, a 32-bit BAR 1 holding the MSI-X table and
 * PBA, a 64-bit prefetchable BAR 2, a vendor capability with writable bytes,
 * INTx pin), and a virtio-net device on a fake backend.
 *
 * Input: a program of ops; each starts with a byte whose low 3 bits pick:
 *   0 config write (u8 function, u16 offset, len, u32 value)
 *   1 config read  (u8 function, u16 offset, len)
 *   2 BAR access   (u8 function, u8 bar, u16 offset, len, u8 write, u64 value)
 *   3 port I/O to 0xcf8..0xcff (u8 port, len, u8 write, u32 value)
 *   4 ECAM access  (u32 offset, len, u8 write, u32 value)
 *   5 MSI-X notify of the harness device's vector u8
 *   6 save and load the harness device's config space and MSI-X state
 *   7 unregister and register the harness device again (hot-unplug, plug)
 * len: the op byte's bits 3-4 give 1, 2, 4 or 8 (8 for MMIO only).
 */
#include <errno.h>
#include <libfdt.h>
#include <linux/pci_regs.h>
#include <stdlib.h>
#include <string.h>

#define MINIVMM_FUZZ_PCI_BARS
#include "fuzz.h"
#include "virtio/net/net.h"
#include "virtio/pci.h"
#include "vmm/bus.h"
#include "vmm/kvm.h"
#include "vmm/msix.h"
#include "vmm/pci.h"

#define TDEV_IO_SIZE 0x100
#define TDEV_MMIO_SIZE 0x1000
#define TDEV_VECTORS 5
#define TDEV_TABLE_OFF 0x0
#define TDEV_PBA_OFF 0x800

struct tdev {
	struct pci_dev pci;
	struct msix msix;
	struct vm *vm;
	uint8_t regs[TDEV_IO_SIZE];
	uint64_t mapped[PCI_NUM_BARS];
	bool registered;
};

static struct tdev tdev;

static void tdev_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct tdev *t = opaque;

	if (off + len > sizeof(t->regs))
		abort(); /* the bus handed us an access outside the range */
	if (is_write)
		memcpy(t->regs + off, data, len);
	else
		memcpy(data, t->regs + off, len);
}

static void tdev_mmio1(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct tdev *t = opaque;

	if (off >= TDEV_PBA_OFF)
		msix__pba_access(&t->msix, off - TDEV_PBA_OFF, data, len, is_write);
	else
		msix__table_access(&t->msix, off - TDEV_TABLE_OFF, data, len, is_write);
}

static void tdev_mmio2(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	if (!is_write)
		memset(data, 0x5a, len);
}

static int tdev_bar_map(struct pci_dev *d, int bar, uint64_t addr)
{
	struct tdev *t = container_of(d, struct tdev, pci);
	int ret = 0;

	if (t->mapped[bar])
		abort(); /* mapped twice without an unmap */
	switch (bar) {
	case 0:
		ret = bus__register(&t->vm->pio, addr, TDEV_IO_SIZE, tdev_io, t, d->name);
		break;
	case 1:
		ret = bus__register(&t->vm->mmio, addr, TDEV_MMIO_SIZE, tdev_mmio1, t, d->name);
		break;
	case 2:
		ret = bus__register(&t->vm->mmio, addr, TDEV_MMIO_SIZE, tdev_mmio2, t, d->name);
		break;
	}
	if (!ret)
		t->mapped[bar] = addr;
	return ret;
}

static int tdev_bar_unmap(struct pci_dev *d, int bar, uint64_t addr)
{
	struct tdev *t = container_of(d, struct tdev, pci);

	if (t->mapped[bar] != addr)
		abort(); /* unmapped where it was not mapped */
	t->mapped[bar] = 0;
	return bus__deregister(bar == 0 ? &t->vm->pio : &t->vm->mmio, addr);
}

static void tdev_cfg_write(struct pci_dev *d, uint32_t off, uint32_t len)
{
	struct tdev *t = container_of(d, struct tdev, pci);

	msix__cfg_write(&t->msix, off, len);
}

static const struct pci_dev_ops tdev_ops = {
    .bar_map = tdev_bar_map,
    .bar_unmap = tdev_bar_unmap,
    .cfg_write = tdev_cfg_write,
};

static int tdev_create(struct vm *vm)
{
	uint8_t vndr[6] = {8, 0x11, 0x22, 0x33, 0x44, 0x55};
	int off;

	memset(&tdev, 0, sizeof(tdev));
	tdev.vm = vm;
	pci__dev_init(&tdev.pci, "tdev", 0x1234, 0x5678, 0x020000, 0x1234, 1, 1, &tdev_ops);
	if (pci__dev_add_bar(&tdev.pci, 0, TDEV_IO_SIZE, PCI_BAR_F_IO) ||
	    pci__dev_add_bar(&tdev.pci, 1, TDEV_MMIO_SIZE, 0) ||
	    pci__dev_add_bar(&tdev.pci, 2, TDEV_MMIO_SIZE, PCI_BAR_F_MEM64 | PCI_BAR_F_PREFETCH))
		return -1;
	off = pci__dev_add_cap(&tdev.pci, PCI_CAP_ID_VNDR, vndr, sizeof(vndr));
	if (off < 0)
		return -1;
	pci__dev_set_wmask(&tdev.pci, (uint32_t)off + 4, 4, 0xff);
	tdev.pci.cfg[PCI_INTERRUPT_PIN] = 1;
	if (msix__init(&tdev.msix, &tdev.pci, &vm->irq, TDEV_VECTORS, 1, TDEV_TABLE_OFF,
		       TDEV_PBA_OFF))
		return -1;
	if (pci__register(&vm->pci, &tdev.pci, -1)) {
		msix__destroy(&tdev.msix);
		return -1;
	}
	tdev.registered = true;
	return 0;
}

static void tdev_destroy(void)
{
	if (tdev.registered)
		(void)pci__unregister(&tdev.vm->pci, &tdev.pci);
	msix__destroy(&tdev.msix);
}

/* ---- a virtio-net function on a backend that does nothing ---- */

static int be_start(struct net_backend *b, const struct net_backend_cbs *c, void *o)
{
	return 0;
}
static int be_tx(struct net_backend *b, const struct iovec *iov, int cnt, uint32_t t)
{
	return -EIO;
}
static void be_nop(struct net_backend *b) {}
static int be_hdr(struct net_backend *b, unsigned int len)
{
	return 0;
}
static int be_off(struct net_backend *b, uint64_t f)
{
	return 0;
}

static const struct net_backend_ops be_ops = {
    .start = be_start,
    .tx = be_tx,
    .rx_resume = be_nop,
    .set_vnet_hdr_len = be_hdr,
    .set_offloads = be_off,
    .stop = be_nop,
    .destroy = be_nop,
};

static struct net_backend be = {.ops = &be_ops, .kind = "null"};

/* ---- the program ---- */

static struct vm vm;
static struct virtio_net *net;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

static struct pci_dev *func(uint8_t sel)
{
	switch (sel % 4) {
	case 0:
		return &vm.pci.host_bridge;
	case 1:
		return tdev.registered ? &tdev.pci : NULL;
	case 2:
		return &virtio_net__vdev(net)->pci;
	}
	return NULL; /* an empty slot */
}

static uint8_t devfn_of(uint8_t sel)
{
	struct pci_dev *d = func(sel);

	if (d && d->devfn >= 0)
		return (uint8_t)d->devfn;
	return (uint8_t)(sel & 0xf8 ? sel : 0xf8); /* a function nobody has, or any */
}

static void save_load(void)
{
	char buf[16384];
	int ret;

	if (fdt_create(buf, sizeof(buf)) || fdt_finish_reservemap(buf) || fdt_begin_node(buf, ""))
		return;
	ret = pci__dev_save(&tdev.pci, buf);
	if (!ret)
		ret = msix__save(&tdev.msix, buf);
	if (ret || fdt_end_node(buf) || fdt_finish(buf))
		return;
	if (pci__dev_load(&tdev.pci, buf, 0) == 0)
		(void)msix__load(&tdev.msix, buf, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_net_config cfg = {.name = "virtio-net-fuzz", .has_mac = true};
	struct fuzz_in in;
	unsigned int steps = 0;

	if (kvm__vm_init_fake(&vm, 16 * MiB))
		abort();
	if (tdev_create(&vm))
		abort();
	if (virtio_net__create_with_backend(&vm, &cfg, &be, &net))
		abort();

	fuzz_in_init(&in, data, size);
	while (!fuzz_empty(&in) && steps++ < 512) {
		uint8_t op = fuzz_u8(&in);
		uint32_t len = 1u << ((op >> 3) & 3);
		uint8_t buf[8] = {0};

		switch (op & 7) {
		case 0:
		case 1: {
			uint8_t devfn = devfn_of(fuzz_u8(&in));
			uint32_t off = fuzz_u16(&in) % PCI_CFG_SPACE_EXP_SIZE;
			uint32_t v = fuzz_u32(&in);

			if (len == 8)
				len = 4;
			off &= ~(len - 1); /* the bus's contract: never crosses a dword */
			memcpy(buf, &v, 4);
			pci__cfg_access(&vm.pci, 0, devfn, off, buf, len, (op & 7) == 0);
			break;
		}
		case 2: {
			fuzz_bar_access(&vm, func(fuzz_u8(&in)), &in, buf, len);
			break;
		}
		case 3: {
			uint16_t port = (uint16_t)(0xcf8 + fuzz_u8(&in) % 8);
			bool wr = fuzz_u8(&in) & 1;
			uint32_t v = fuzz_u32(&in);

			if (len == 8)
				len = 4;
			memcpy(buf, &v, 4);
			(void)bus__dispatch(&vm.pio, port, buf, len, wr);
			break;
		}
		case 4: {
			uint64_t off = fuzz_u32(&in) % PCI_ECAM_SIZE;
			bool wr = fuzz_u8(&in) & 1;
			uint32_t v = fuzz_u32(&in);

			if (len == 8)
				len = 4;
			memcpy(buf, &v, 4);
			(void)bus__dispatch(&vm.mmio, PCI_ECAM_BASE + off, buf, len, wr);
			break;
		}
		case 5:
			(void)msix__notify(&tdev.msix, fuzz_u8(&in) % (TDEV_VECTORS + 2));
			break;
		case 6:
			if (tdev.registered)
				save_load();
			break;
		case 7:
			if (tdev.registered) {
				(void)pci__unregister(&vm.pci, &tdev.pci);
				tdev.registered = false;
				memset(tdev.mapped, 0, sizeof(tdev.mapped));
			} else if (!pci__register(&vm.pci, &tdev.pci, -1)) {
				tdev.registered = true;
			}
			break;
		}
	}
	virtio_net__destroy(net);
	tdev_destroy();
	kvm__vm_destroy(&vm);
	return 0;
}
