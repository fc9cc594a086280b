/* SPDX-License-Identifier: MIT */
/*
 * PCI bus 0: host bridge, config access through CF8/CFC and ECAM, devfn and
 * BAR allocation. The bus owns the COMMAND register and BAR semantics (size
 * masks, decode enables, moves); devices only get bar_map/bar_unmap callbacks
 * telling them where a BAR is now live (kvmtool's pci_config_command_wr and
 * vfio_pci_bar_activate split the work the same way).
 *
 * Guest config writes are filtered through a per-byte writable mask: read-only
 * bytes (IDs, capability lists, BAR low bits) can never be changed by a guest.
 */
#ifndef MINIVMM_VMM_PCI_H
#define MINIVMM_VMM_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "vmm/log.h"
#include "vmm/util.h"

struct bus;

#define PCI_CFG_SPACE_SIZE 256
#define PCI_CFG_SPACE_EXP_SIZE 4096
#define PCI_MAX_DEVICES 32
#define PCI_NUM_BARS 6

/* x86 platform addresses */
#define PCI_CF8_PORT 0xcf8
#define PCI_ECAM_BASE 0xE0000000ULL
#define PCI_ECAM_SIZE (1ULL * 1024 * 1024) /* bus 0 only: 32 dev x 8 fn x 4 KiB */
#define PCI_MMIO32_BASE 0xC0000000ULL
#define PCI_MMIO32_SIZE 0x20000000ULL     /* up to the ECAM */
#define PCI_MMIO64_BASE 0x8000000000ULL   /* 512 GiB: the default; see pci__mmio64_place */
/* up to the AMD HyperTransport hole at 1012 GiB, which CPUs reserve */
#define PCI_MMIO64_END 0xFD00000000ULL
#define PCI_MMIO64_SIZE (PCI_MMIO64_END - PCI_MMIO64_BASE)
#define PCI_IOPORT_BASE 0x1000
#define PCI_IOPORT_SIZE 0xF000

/* BAR flags for pci__dev_add_bar */
#define PCI_BAR_F_IO (1u << 0)
#define PCI_BAR_F_MEM64 (1u << 1)
#define PCI_BAR_F_PREFETCH (1u << 2)

/*
 * A window of bus address space (the 32-bit or 64-bit MMIO window, the I/O
 * port pool) handing out aligned ranges and taking them back.
 *
 * The free space is a sorted, coalesced list of ranges; the "tail" is the one
 * reaching the window's end (everything above the highest allocation). An
 * allocation takes the lowest fitting hole left by pci__window_free() and only
 * then carves the tail; alignment padding cut off the tail's front is kept as
 * a "gap" that is not handed out until a neighbour is freed (it then
 * coalesces with it). So allocations without frees place exactly as a bump
 * allocator does (the boot-time placement of earlier minivmm versions), while
 * an unplugged device's hole goes to the next device that fits.
 *
 * Only exact allocations can be freed: a double free or a range never handed
 * out is refused with -EINVAL. No locking: the PCI bus uses it under its lock.
 */
struct pci_range {
	uint64_t base, end; /* [base, end) */
	bool gap;           /* free list: alignment padding cut off the tail */
};

struct pci_window {
	uint64_t base, end;       /* [base, end) */
	struct pci_range *free;   /* sorted by base, never adjacent; the last may be the tail */
	struct pci_range *used;   /* sorted by base: the allocations handed out */
	unsigned int nr_free, cap_free, nr_used, cap_used;
};

/* an empty window of `size` bytes at `base`: -EINVAL if it is empty or reaches 2^64 */
int pci__window_init(struct pci_window *w, uint64_t base, uint64_t size) __must_check;
void pci__window_destroy(struct pci_window *w);
/*
 * size bytes aligned to align (a power of two; PCI BARs use align == size):
 * 0 and *addr, -EINVAL for a bad size or alignment, -ENOSPC when nothing
 * fits, -ENOMEM.
 */
int pci__window_alloc(struct pci_window *w, uint64_t size, uint64_t align,
		      uint64_t *addr) __must_check;
/* gives back an allocation made by pci__window_alloc (same base and size), else -EINVAL */
int pci__window_free(struct pci_window *w, uint64_t base, uint64_t size);
/* bytes currently handed out */
uint64_t pci__window_used(const struct pci_window *w);

struct pci_dev;

struct pci_dev_ops {
	/* the BAR is now decoded at addr: register traps or map memory */
	int (*bar_map)(struct pci_dev *d, int bar, uint64_t addr);
	/* the BAR no longer decodes at addr */
	int (*bar_unmap)(struct pci_dev *d, int bar, uint64_t addr);
	/*
	 * Optional: device-specific config behaviour. cfg_write is called after
	 * the bus applied the masked write to d->cfg (off/len as the guest wrote);
	 * cfg_read may refresh d->cfg before the bus copies it out.
	 */
	void (*cfg_read)(struct pci_dev *d, uint32_t off, uint32_t len);
	void (*cfg_write)(struct pci_dev *d, uint32_t off, uint32_t len);
};

struct pci_bar {
	uint64_t size;      /* power of two, 0 = unused */
	uint32_t flags;     /* PCI_BAR_F_* */
	uint64_t addr;      /* address programmed in the BAR */
	bool active;        /* decoded at addr (command bit on, addr valid) */
	/* where pci__register placed it, given back by pci__unregister (win NULL: none) */
	struct pci_window *win;
	uint64_t win_addr;
};

struct pci_dev {
	uint8_t cfg[PCI_CFG_SPACE_EXP_SIZE];
	uint8_t wmask[PCI_CFG_SPACE_EXP_SIZE];  /* guest-writable bits */
	uint8_t w1cmask[PCI_CFG_SPACE_EXP_SIZE]; /* write-1-to-clear bits */
	struct pci_bar bars[PCI_NUM_BARS];
	uint8_t last_cap;   /* offset of the last capability added, 0 if none */
	uint8_t next_cap;   /* where the next capability goes */
	int devfn;          /* -1 until registered */
	uint32_t intx_gsi;  /* legacy line when INTx pin is set */
	const struct pci_dev_ops *ops;
	struct pci_bus *bus;
	char name[32];      /* log prefix, e.g. "virtio-net0" */
};

struct pci_bus {
	struct pci_dev *devs[PCI_MAX_DEVICES]; /* function 0 of each slot */
	struct pci_dev host_bridge;
	struct bus *pio, *mmio;
	pthread_mutex_t lock;
	uint32_t cf8;
	/* BAR space: below 4 GiB, above 4 GiB, and the I/O port pool */
	struct pci_window mmio32, mmio64, io;
	bool no_mmio64;     /* the guest's address width leaves no 64-bit window */
	struct log_ratelimit *rl;
	/* port 0xcf9 (reset control) lives inside the CF8 dword; the board hooks it up */
	void (*cf9_fn)(void *opaque, uint8_t *data, bool is_write);
	void *cf9_opaque;
};

/*
 * Where the 64-bit MMIO window goes for a guest whose physical addresses
 * have phys_bits bits (CPUID 0x80000008 EAX[7:0]) and whose RAM ends at
 * ram_end: [PCI_MMIO64_BASE, PCI_MMIO64_END) when the address width reaches
 * it, else the upper half of what the width allows, above RAM (1 GiB
 * aligned), so that a BAR placed there is an address the guest can reach.
 * -ENOSPC when RAM leaves no room below 2^phys_bits (no 64-bit window:
 * 64-bit BARs then go below 4 GiB or fail), -EINVAL for a width outside 32..64.
 */
int pci__mmio64_place(uint64_t ram_end, unsigned int phys_bits, uint64_t *base, uint64_t *size)
	__must_check;
/*
 * Moves the (still empty) 64-bit window to [base, base + size); size 0 means
 * none. -EBUSY once a BAR was placed in it.
 */
int pci__bus_set_mmio64(struct pci_bus *pb, uint64_t base, uint64_t size) __must_check;

/*
 * A device's config space in its state section (property "pci_config"):
 * load applies only the bits the guest can write (and sticky status bits),
 * then decodes the BARs as COMMAND and the BAR registers say (bar_map).
 */
int pci__dev_save(struct pci_dev *d, void *fdt) __must_check;
int pci__dev_load(struct pci_dev *d, const void *fdt, int node) __must_check;

/* registers CF8/CFC and ECAM traps and the host bridge at 00:00.0 */
int pci__bus_init(struct pci_bus *pb, struct bus *pio, struct bus *mmio) __must_check;
void pci__bus_destroy(struct pci_bus *pb);
/* byte accesses to port 0xcf9 go to fn (the platform's reset control register) */
void pci__set_cf9_handler(struct pci_bus *pb, void (*fn)(void *opaque, uint8_t *data, bool is_write),
			  void *opaque);

/* fills the header: IDs, class (24 bits: base/sub/prog-if), header type 0 */
void pci__dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		   uint32_t class_code, uint16_t subsys_vendor, uint16_t subsys_id,
		   uint8_t revision, const struct pci_dev_ops *ops);
/* declares a BAR (size rounded up to a power of two, at least 16 bytes / 4 KiB for MEM) */
int pci__dev_add_bar(struct pci_dev *d, int bar, uint64_t size, uint32_t flags) __must_check;
/*
 * Appends a capability (body excludes the 2-byte id/next header, which the bus
 * writes) and returns its config offset, or -ENOSPC.
 */
int pci__dev_add_cap(struct pci_dev *d, uint8_t cap_id, const void *body, uint32_t body_len) __must_check;
/* makes bytes [off, off+len) of d->cfg guest-writable with the given mask byte */
void pci__dev_set_wmask(struct pci_dev *d, uint32_t off, uint32_t len, uint8_t mask);

/*
 * Puts d in a free slot (or slot `slot` when >= 0), assigns BAR addresses as
 * firmware would and leaves decoding off until the guest sets COMMAND bits.
 * BARs up to 256 MiB go to the 32-bit window while it has room, larger or
 * overflowing 64-bit BARs to the 64-bit window, each naturally aligned.
 */
int pci__register(struct pci_bus *pb, struct pci_dev *d, int slot) __must_check;
/*
 * Unmaps active BARs, gives the BAR space pci__register assigned back to its
 * window (the next device that fits may land there: hot-unplug then plug) and
 * frees the slot.
 */
int pci__unregister(struct pci_bus *pb, struct pci_dev *d);

/* config access by the guest: off < 4096, len 1/2/4, never crosses a dword */
void pci__cfg_access(struct pci_bus *pb, uint8_t bus, uint8_t devfn, uint32_t off,
		     uint8_t *data, uint32_t len, bool is_write);

/*
 * INTx routing of bus 0: pin (0 = INTA .. 3 = INTD) of slot `slot` reaches
 * IOAPIC pin 16-19 with the usual swizzle. The DSDT's _PRT says the same.
 */
#define PCI_INTX_GSI_BASE 16
static inline uint32_t pci__intx_gsi(unsigned int slot, unsigned int pin)
{
	return PCI_INTX_GSI_BASE + (slot + pin) % 4;
}

/*
 * little-endian accessors on d->cfg. Config writes happen under the bus lock,
 * but some readers do not take it (the MSI-X enable and mask bits are read
 * when an interrupt fires on the event loop thread), so every byte is loaded
 * and stored with a relaxed atomic: no torn bytes, no data race.
 */
static inline uint8_t pci__cfg_rd8(const struct pci_dev *d, uint32_t off)
{
	return __atomic_load_n(&d->cfg[off], __ATOMIC_RELAXED);
}
static inline uint16_t pci__cfg_rd16(const struct pci_dev *d, uint32_t off)
{
	return (uint16_t)(pci__cfg_rd8(d, off) | pci__cfg_rd8(d, off + 1) << 8);
}
static inline uint32_t pci__cfg_rd32(const struct pci_dev *d, uint32_t off)
{
	return (uint32_t)pci__cfg_rd16(d, off) | (uint32_t)pci__cfg_rd16(d, off + 2) << 16;
}
static inline void pci__cfg_wr8(struct pci_dev *d, uint32_t off, uint8_t v)
{
	__atomic_store_n(&d->cfg[off], v, __ATOMIC_RELAXED);
}
static inline void pci__cfg_wr16(struct pci_dev *d, uint32_t off, uint16_t v)
{
	pci__cfg_wr8(d, off, (uint8_t)v);
	pci__cfg_wr8(d, off + 1, (uint8_t)(v >> 8));
}
static inline void pci__cfg_wr32(struct pci_dev *d, uint32_t off, uint32_t v)
{
	pci__cfg_wr16(d, off, (uint16_t)v);
	pci__cfg_wr16(d, off + 2, (uint16_t)(v >> 16));
}

#endif
