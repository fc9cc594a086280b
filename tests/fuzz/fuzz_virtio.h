/* SPDX-License-Identifier: MIT */
/*
 * A guest driver for the virtio harnesses: it programs the modern virtio-pci
 * transport of a device on a fake VM (kvm__vm_init_fake) through the MMIO bus,
 * as the guest does, and lays out split rings that the input fills.
 */
#ifndef MINIVMM_TESTS_FUZZ_FUZZ_VIRTIO_H
#define MINIVMM_TESTS_FUZZ_FUZZ_VIRTIO_H

#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <stdlib.h>

#include "fuzz.h"
#include "virtio/pci.h"
#include "vmm/bus.h"
#include "vmm/kvm.h"
#include "vmm/mem.h"

#define FV_QSIZE 16
/* queue q's rings: descriptors, avail at +0x100, used at +0x200 (4 KiB per queue) */
#define FV_RING_GPA(q) (0x10000ULL + 0x1000ULL * (q))
#define FV_DESC(q) FV_RING_GPA(q)
#define FV_AVAIL(q) (FV_RING_GPA(q) + 0x100)
#define FV_USED(q) (FV_RING_GPA(q) + 0x200)
/* buffers the descriptors point at */
#define FV_DATA_GPA 0x100000ULL
#define FV_DATA_SIZE 0x4000ULL

static inline uint64_t fv_bar(struct virtio_dev *vd)
{
	return vd->pci.bars[VIRTIO_PCI_BAR].addr;
}

static inline uint64_t fv_rd(struct vm *vm, struct virtio_dev *vd, uint64_t off, uint32_t len)
{
	uint8_t d[8] = {0};
	uint64_t v = 0;
	uint32_t i;

	(void)bus__dispatch(&vm->mmio, fv_bar(vd) + off, d, len, false);
	for (i = 0; i < len; i++)
		v |= (uint64_t)d[i] << (8 * i);
	return v;
}

static inline void fv_wr(struct vm *vm, struct virtio_dev *vd, uint64_t off, uint32_t len,
			 uint64_t v)
{
	uint8_t d[8];
	uint32_t i;

	for (i = 0; i < len; i++)
		d[i] = (uint8_t)(v >> (8 * i));
	(void)bus__dispatch(&vm->mmio, fv_bar(vd) + off, d, len, true);
}

/* memory decoding and bus mastering on, as firmware leaves a device */
static inline void fv_enable(struct vm *vm, struct virtio_dev *vd)
{
	uint8_t cmd[2] = {PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 0};

	pci__cfg_access(&vm->pci, 0, (uint8_t)vd->pci.devfn, PCI_COMMAND, cmd, 2, true);
	if (!vd->pci.bars[VIRTIO_PCI_BAR].active)
		abort();
}

static inline uint64_t fv_device_features(struct vm *vm, struct virtio_dev *vd)
{
	uint64_t f;

	fv_wr(vm, vd, VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	f = fv_rd(vm, vd, VIRTIO_PCI_COMMON_DF, 4);
	fv_wr(vm, vd, VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
	return f | fv_rd(vm, vd, VIRTIO_PCI_COMMON_DF, 4) << 32;
}

/* status 0: the transport resets the device */
static inline void fv_reset(struct vm *vm, struct virtio_dev *vd)
{
	fv_wr(vm, vd, VIRTIO_PCI_COMMON_STATUS, 1, 0);
}

/*
 * The driver's initialisation with the features it picked (masked by what
 * the device offers), nq queues of FV_QSIZE; true when DRIVER_OK stuck.
 */
static inline bool fv_driver_init(struct vm *vm, struct virtio_dev *vd, uint64_t want, uint16_t nq)
{
	uint64_t f = fv_device_features(vm, vd) & want;
	uint16_t q;

	fv_wr(vm, vd, VIRTIO_PCI_COMMON_STATUS, 1,
	      VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	fv_wr(vm, vd, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	fv_wr(vm, vd, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)f);
	fv_wr(vm, vd, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	fv_wr(vm, vd, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)(f >> 32));
	fv_wr(vm, vd, VIRTIO_PCI_COMMON_STATUS, 1, 0xb);
	if (fv_rd(vm, vd, VIRTIO_PCI_COMMON_STATUS, 1) != 0xb)
		return false;
	for (q = 0; q < nq; q++) {
		fv_wr(vm, vd, VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
		fv_wr(vm, vd, VIRTIO_PCI_COMMON_Q_SIZE, 2, FV_QSIZE);
		fv_wr(vm, vd, VIRTIO_PCI_COMMON_Q_DESCLO, 8, FV_DESC(q));
		fv_wr(vm, vd, VIRTIO_PCI_COMMON_Q_AVAILLO, 8, FV_AVAIL(q));
		fv_wr(vm, vd, VIRTIO_PCI_COMMON_Q_USEDLO, 8, FV_USED(q));
		fv_wr(vm, vd, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	}
	fv_wr(vm, vd, VIRTIO_PCI_COMMON_STATUS, 1, 0xf);
	return fv_rd(vm, vd, VIRTIO_PCI_COMMON_STATUS, 1) == 0xf;
}

static inline void fv_kick(struct vm *vm, struct virtio_dev *vd, uint16_t q)
{
	fv_wr(vm, vd, VIRTIO_PCI_NOTIFY_OFF + (uint64_t)q * VIRTIO_PCI_NOTIFY_MULT, 2, q);
}

/* fills queue q's descriptor table and avail ring (flags, idx, ring) from the input */
static inline void fv_fill_ring(struct vm *vm, struct fuzz_in *in, uint16_t q)
{
	uint8_t *desc = mem__gpa_to_hva(&vm->mem, FV_DESC(q), 16 * FV_QSIZE);
	uint8_t *avail = mem__gpa_to_hva(&vm->mem, FV_AVAIL(q), 6 + 2 * FV_QSIZE);
	uint8_t *used = mem__gpa_to_hva(&vm->mem, FV_USED(q), 6 + 8 * FV_QSIZE);

	fuzz_bytes(in, desc, 16 * FV_QSIZE);
	fuzz_bytes(in, avail, 6 + 2 * FV_QSIZE);
	memset(used, 0, 6 + 8 * FV_QSIZE);
}

/* publishes `count` more avail entries (the driver moves avail->idx on) */
static inline void fv_publish(struct vm *vm, uint16_t q, uint16_t count)
{
	uint16_t *idx = mem__gpa_to_hva(&vm->mem, FV_AVAIL(q) + 2, 2);

	__atomic_store_n(idx, (uint16_t)(*idx + count), __ATOMIC_RELEASE);
}

#endif
