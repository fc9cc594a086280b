/* SPDX-License-Identifier: MIT */
/*
 * Library of the tiny freestanding test guests: test-port reporting, string
 * helpers, boot_params access, PCI config (CF8/CFC and ECAM), IDT, LAPIC and
 * MSI-X helpers. Guests run in 64-bit long mode on the VMM's identity map of
 * the first 4 GiB; see start.S.
 */
#ifndef TINY_H
#define TINY_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io.h"

/* test device (devices/testdev) */
#define TESTDEV_PORT_OUT 0x500
#define TESTDEV_PORT_EXIT 0x504
#define TESTDEV_PORT_MAGIC 0x508
#define TESTDEV_MAGIC 0x54534554u

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))

/* lib.c */
void *memset(void *s, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
int vsnprintf_tiny(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf_tiny(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* one report line to the test port; a trailing newline is added when missing */
void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void report_hex(const char *key, const void *buf, size_t len);
__attribute__((noreturn)) void guest_exit(int code);
uint32_t crc32(const void *buf, size_t len);

/* boot_params (Linux zero page) */
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR 0x1f1
#define BP_CMD_LINE_PTR 0x228
#define BP_CMDLINE_SIZE 0x238
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

extern const uint8_t *boot_params;
const char *bp_cmdline(void);
/* value of key=... in the command line into buf; -1 when absent */
int cmdline_get(const char *key, char *buf, size_t size);
bool cmdline_has(const char *word);
unsigned long strtoul_tiny(const char *s, const char **end, int base);

/* pci.c */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_STATUS 0x06
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_CLASS_REVISION 0x08
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_CAP_PTR 0x34
#define PCI_CAP_ID_MSIX 0x11
#define PCI_CAP_ID_VNDR 0x09
#define PCI_ECAM_BASE 0xE0000000ull
#define PCI_MMIO32_BASE 0xC0000000ull
#define PCI_MMIO32_END 0xE0000000ull

uint32_t pci_cf8_read(uint8_t devfn, uint16_t off, int len);
void pci_cf8_write(uint8_t devfn, uint16_t off, int len, uint32_t v);
uint32_t pci_ecam_read(uint8_t devfn, uint16_t off, int len);
void pci_ecam_write(uint8_t devfn, uint16_t off, int len, uint32_t v);
/* default accessors (CF8/CFC) */
static inline uint32_t pci_read32(uint8_t devfn, uint16_t off) { return pci_cf8_read(devfn, off, 4); }
static inline uint16_t pci_read16(uint8_t devfn, uint16_t off) { return (uint16_t)pci_cf8_read(devfn, off, 2); }
static inline uint8_t pci_read8(uint8_t devfn, uint16_t off) { return (uint8_t)pci_cf8_read(devfn, off, 1); }
static inline void pci_write32(uint8_t devfn, uint16_t off, uint32_t v) { pci_cf8_write(devfn, off, 4, v); }
static inline void pci_write16(uint8_t devfn, uint16_t off, uint16_t v) { pci_cf8_write(devfn, off, 2, v); }
static inline void pci_write8(uint8_t devfn, uint16_t off, uint8_t v) { pci_cf8_write(devfn, off, 1, v); }

struct pci_bar_info {
	uint64_t addr;
	uint64_t size;
	bool io, mem64, prefetch;
};
/* sizes BAR i (decode must be off); returns the number of BAR slots used (1 or 2), 0 if unused */
int pci_bar_probe(uint8_t devfn, int bar, struct pci_bar_info *bi);
/* first function with vendor:device on bus 0, -1 if none */
int pci_find(uint16_t vendor, uint16_t device);
/* next capability with id after config offset `from` (0: start of list), 0 if none */
uint8_t pci_find_cap(uint8_t devfn, uint8_t id, uint8_t from);
/* a free, size-aligned address in the 32-bit MMIO window above every BAR seen */
uint64_t pci_alloc_mmio32(uint64_t size);
/*
 * Makes every memory BAR of devfn decode below 4 GiB (moving 64-bit BARs that
 * sit above the identity map), then turns on memory decode and bus mastering.
 * bases[i] receives the address of BAR i (0 when unused). With pci_move_bars
 * set, every 64-bit memory BAR is moved to a fresh address (BAR move path).
 */
extern bool pci_move_bars;
int pci_enable_mem(uint8_t devfn, uint64_t bases[6]);

/* intr.c: IDT, LAPIC, MSI-X */
#define LAPIC_BASE 0xFEE00000ull
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_TPR 0x80
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_DIV 0x3e0
#define VEC_TIMER 0x40
#define VEC_MSIX0 0x41
#define VEC_SPURIOUS 0xff

extern volatile uint32_t intr_count[256];
extern volatile uint64_t ticks;
/* loads the IDT (exceptions report and exit 3) and enables the LAPIC */
void intr_init(void);
/* periodic LAPIC timer every `us` microseconds on VEC_TIMER (updates ticks) */
void timer_start(uint32_t us);
void timer_stop(void);
/* one sti;hlt;cli round: sleeps until the next interrupt */
void wait_intr(void);
/* MSI-X: cap at cfg offset cap, table mapped at table_addr */
struct msix {
	uint8_t devfn;
	uint8_t cap;
	uint16_t nr;
	uint64_t table;
};
int msix_init(struct msix *m, uint8_t devfn, const uint64_t bases[6]);
void msix_set(struct msix *m, uint16_t entry, uint8_t vector, bool masked);
void msix_enable(struct msix *m, bool on);

#endif
