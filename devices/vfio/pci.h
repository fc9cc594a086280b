/* SPDX-License-Identifier: MIT */
/*
 * A PCI function (usually an SR-IOV VF) assigned to the guest through VFIO.
 *
 * Data path without minivmm: the BARs are mmap()ed from the VFIO device and
 * put in KVM memory slots (sparse areas only, so the MSI-X table and PBA pages
 * stay trapped and emulated); each MSI-X vector's eventfd goes both to
 * VFIO_DEVICE_SET_IRQS and to KVM_IRQFD; guest RAM is mapped in the IOMMU.
 * minivmm only sees config space accesses, MSI-X table/PBA accesses and
 * accesses to non-mmappable BAR parts; it counts them (struct vfio_pci_stats).
 *
 * Config space: the guest sees a virtual copy of the device's config space.
 * BARs, ROM BAR (hidden), MSI/MSI-X capabilities, COMMAND and PM control are
 * virtualized; only COMMAND's I/O, memory, bus-master and INTx-disable bits and
 * PM D-state changes reach the device; everything else reads through and is
 * read-only. Capability lists are walked with loop protection.
 */
#ifndef MINIVMM_DEVICES_VFIO_PCI_H
#define MINIVMM_DEVICES_VFIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/vfio/reset.h"
#include "vmm/util.h"

struct vm;
struct vfio_backend;
struct vfio_iommu;
struct vfio_pci;

struct vfio_pci_opts {
	const char *name;               /* log prefix ("vfio0"); default "vfio-<bdf>" */
	bool allow_unsafe_interrupts;   /* assign without interrupt remapping */
	struct vfio_backend *backend;   /* NULL: the real VFIO backend */
	/*
	 * Shared DMA address space: when *iommu is NULL the device creates it
	 * (after the isolation checks) and stores it there; the caller then
	 * owns it (vfio_iommu__destroy after the last device). iommu NULL: the
	 * device keeps a private one.
	 */
	struct vfio_iommu **iommu;
	/*
	 * Build everything (checks, DMA, reset, config space) but leave the
	 * device off the guest's PCI bus until vfio_pci__plug: a failover VF
	 * waits there for the guest to negotiate STANDBY.
	 */
	bool plug_later;
};

struct vfio_pci_stats {
	uint64_t cfg_reads, cfg_writes;     /* config space accesses (exits) */
	uint64_t cfg_writes_refused;        /* writes to bytes the guest may not change */
	uint64_t msix_table_exits, msix_pba_exits;
	uint64_t bar_trap_exits;            /* other trapped BAR accesses (non-mmappable parts) */
	uint64_t userspace_irqs;            /* interrupts minivmm injected itself */
	uint64_t irq_reconfigs;             /* VFIO_DEVICE_SET_IRQS calls */
	uint64_t memslots;                  /* KVM slots currently mapping BARs */
	enum vfio_reset_step last_reset;    /* the reset step that worked last */
};

/*
 * Assigns the PCI function bdf ("0000:03:10.1") to vm: runs the isolation
 * checks (devices/vfio/check.h; their message is logged and the error
 * returned), opens the group and device, resets it, builds the virtual config
 * space and registers the device on the guest's PCI bus.
 */
int vfio_pci__create(struct vm *vm, const char *bdf, const struct vfio_pci_opts *o,
		     struct vfio_pci **out) __must_check;
/*
 * Puts a device made with plug_later on the guest's PCI bus (the first free
 * slot) and sets up its INTx fallback: the hot-plug controller can then
 * announce it. -EBUSY when it is already plugged.
 */
int vfio_pci__plug(struct vfio_pci *vf) __must_check;
/* the device model's view (vmm/device.h): id (the name), ops, PCI function */
struct vmm_device *vfio_pci__device(struct vfio_pci *vf);
/* the VF behind a device of the list, or NULL when it is another kind */
struct vfio_pci *vfio_pci__from_device(struct vmm_device *d);
/* the host PCI address */
const char *vfio_pci__bdf(const struct vfio_pci *vf);
/* disables interrupts, resets (ladder), unmaps BARs, releases the device */
void vfio_pci__destroy(struct vfio_pci *vf);

void vfio_pci__stats(struct vfio_pci *vf, struct vfio_pci_stats *st);

/*
 * Plug to the VF carrying traffic, as the host sees it: from the guest's
 * driver enabling MSI-X, the host's count of the VF's vfio-msix interrupts
 * (/proc/interrupts) is watched; once it rose by `irqs`, traffic_ms is the
 * time since the plug (`devices`, the log). Called about every 100 ms by the
 * VMM thread while it returns true (still waiting); it stops waiting after
 * timeout_ms. With posted interrupts the host counts none of them: the
 * figure then stays null, and the log says why.
 */
bool vfio_pci__traffic_poll(struct vfio_pci *vf, unsigned int irqs, unsigned int timeout_ms);
/*
 * The sum, over every CPU, of the "vfio-msix[N](BDF)" lines of a
 * /proc/interrupts text for this BDF: 0, or -ENOENT when it has none.
 */
int vfio_pci__sum_host_irqs(const char *text, const char *bdf, uint64_t *sum);
/*
 * Walks the capability list of a 256-byte config space copy with loop
 * protection (pointers dword aligned, inside 0x40..0xff, never revisited);
 * the list in cfg is cut at the first bad pointer (-ELOOP). fn gets each
 * capability's ID and offset.
 */
int vfio_pci__walk_caps(uint8_t *cfg, void (*fn)(void *opaque, uint8_t id, uint8_t off),
			void *opaque);
/* one log line with the counters (board__print_stats) */
void vfio_pci__log_stats(struct vfio_pci *vf);

#endif
