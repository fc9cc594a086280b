/* SPDX-License-Identifier: MIT */
/* IDT, local APIC (timer, EOI) and MSI-X table programming. */
#include "tiny.h"

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t zero;
} __attribute__((packed));

struct intr_frame {
	uint64_t r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

extern const char isr_stubs[];
void intr_dispatch(struct intr_frame *f);

static struct idt_gate idt[256] __attribute__((aligned(16)));
volatile uint32_t intr_count[256];
volatile uint64_t ticks;

static inline void lapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(LAPIC_BASE + reg, v);
}

static inline uint32_t lapic_read(uint32_t reg)
{
	return mmio_read32(LAPIC_BASE + reg);
}

void intr_dispatch(struct intr_frame *f)
{
	uint64_t cr2;

	if (f->vector < 32) {
		__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
		report("exception vector=%lu error=0x%lx rip=0x%lx cr2=0x%lx rsp=0x%lx", f->vector, f->error,
		       f->rip, cr2, f->rsp);
		guest_exit(3);
	}
	intr_count[f->vector]++;
	if (f->vector == VEC_TIMER)
		ticks++;
	if (f->vector != VEC_SPURIOUS)
		lapic_write(LAPIC_EOI, 0);
}

void intr_init(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
	uint64_t apic_base;

	for (int v = 0; v < 256; v++) {
		uint64_t h = (uint64_t)(uintptr_t)(isr_stubs + 16 * v);

		idt[v].off_lo = (uint16_t)h;
		idt[v].sel = 0x10;
		idt[v].ist = 0;
		idt[v].type = 0x8e; /* present, DPL0, 64-bit interrupt gate */
		idt[v].off_mid = (uint16_t)(h >> 16);
		idt[v].off_hi = (uint32_t)(h >> 32);
		idt[v].zero = 0;
	}
	__asm__ volatile("lidt %0" : : "m"(idtr));

	/* xAPIC mode, enabled, at the default base */
	apic_base = rdmsr(0x1b);
	if ((apic_base & 0xfffff000u) != LAPIC_BASE || !(apic_base & (1u << 11)))
		wrmsr(0x1b, LAPIC_BASE | (apic_base & 0x100) | (1u << 11));
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS);
}

void timer_start(uint32_t us)
{
	/* KVM's APIC timer counts at 1 GHz with divide-by-1 */
	lapic_write(LAPIC_TIMER_DIV, 0xb);
	lapic_write(LAPIC_LVT_TIMER, (1u << 17) | VEC_TIMER);
	lapic_write(LAPIC_TIMER_INIT, us * 1000u);
}

void timer_stop(void)
{
	lapic_write(LAPIC_TIMER_INIT, 0);
	lapic_write(LAPIC_LVT_TIMER, 1u << 16);
}

void wait_intr(void)
{
	sti_hlt();
	cli();
}

int msix_init(struct msix *m, uint8_t devfn, const uint64_t bases[6])
{
	uint32_t tbl;

	m->devfn = devfn;
	m->cap = pci_find_cap(devfn, PCI_CAP_ID_MSIX, 0);
	if (!m->cap)
		return -1;
	m->nr = (uint16_t)((pci_read16(devfn, (uint16_t)(m->cap + 2)) & 0x7ff) + 1);
	tbl = pci_read32(devfn, (uint16_t)(m->cap + 4));
	if (!bases[tbl & 7])
		return -1;
	m->table = bases[tbl & 7] + (tbl & ~7u);
	return 0;
}

void msix_set(struct msix *m, uint16_t entry, uint8_t vector, bool masked)
{
	uint64_t e = m->table + 16ull * entry;

	if (entry >= m->nr)
		return;
	mmio_write32(e + 0, (uint32_t)LAPIC_BASE); /* destination APIC id 0, physical */
	mmio_write32(e + 4, 0);
	mmio_write32(e + 8, vector);               /* fixed delivery, edge */
	mmio_write32(e + 12, masked ? 1 : 0);
}

void msix_enable(struct msix *m, bool on)
{
	uint16_t ctl = pci_read16(m->devfn, (uint16_t)(m->cap + 2));

	ctl &= (uint16_t)~(1u << 14); /* function mask off */
	if (on)
		ctl |= 1u << 15;
	else
		ctl &= (uint16_t)~(1u << 15);
	pci_write16(m->devfn, (uint16_t)(m->cap + 2), ctl);
}
