// SPDX-License-Identifier: MIT
/*
 * ACPI tables (ACPI 6.x): RSDP, XSDT, FADT, FACS, MADT, MCFG, DSDT.
 * Pure table building into a caller buffer; x86_acpi__build() places them in
 * guest RAM at 0xE0000 (inside the e820-reserved BIOS area).
 */
#include "vmm/x86/acpi.h"

#include <errno.h>
#include <string.h>

#include "vmm/log.h"
#include "vmm/pci.h"
#include "vmm/x86/aml.h"
#include "vmm/x86/cpu.h"
#include "vmm/x86/platform.h"

#define ACPI_PREFIX "acpi"

#define ACPI_OEM_ID "MINVMM"
#define ACPI_OEM_TABLE_ID "MINIVMM "
#define ACPI_CREATOR_ID "MVMM"

#define ACPI_GAS_SYSTEM_IO 1
#define ACPI_GAS_ACCESS_BYTE 1
#define ACPI_GAS_ACCESS_WORD 2

/* FADT flags */
#define FADT_F_WBINVD (1U << 0)
#define FADT_F_PROC_C1 (1U << 2)
#define FADT_F_SLP_BUTTON (1U << 5)
#define FADT_F_RESET_REG_SUP (1U << 10)
/* IAPC_BOOT_ARCH */
#define FADT_BOOT_LEGACY_DEVICES (1U << 0)
#define FADT_BOOT_8042 (1U << 1)
#define FADT_BOOT_VGA_NOT_PRESENT (1U << 2)

/* MADT */
#define MADT_PCAT_COMPAT (1U << 0)
#define MADT_LAPIC 0
#define MADT_IOAPIC 1
#define MADT_ISO 2
#define MADT_LAPIC_NMI 4
#define MADT_LAPIC_ENABLED (1U << 0)
#define MPS_POLARITY_HIGH 0x1
#define MPS_TRIGGER_LEVEL (0x3 << 2)

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __packed;

struct acpi_rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum;
	uint8_t reserved[3];
} __packed;

struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __packed;

struct acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	uint64_t hypervisor_id;
} __packed;

struct acpi_facs {
	char signature[4];
	uint32_t length;
	uint32_t hardware_signature;
	uint32_t firmware_waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_firmware_waking_vector;
	uint8_t version;
	uint8_t reserved[3];
	uint32_t ospm_flags;
	uint8_t reserved1[24];
} __packed;

struct acpi_madt {
	struct acpi_header h;
	uint32_t lapic_address;
	uint32_t flags;
} __packed;

struct madt_lapic {
	uint8_t type, length, processor_uid, apic_id;
	uint32_t flags;
} __packed;

struct madt_ioapic {
	uint8_t type, length, id, reserved;
	uint32_t address;
	uint32_t gsi_base;
} __packed;

struct madt_iso {
	uint8_t type, length, bus, source;
	uint32_t gsi;
	uint16_t flags;
} __packed;

struct madt_lapic_nmi {
	uint8_t type, length, processor_uid;
	uint16_t flags;
	uint8_t lint;
} __packed;

struct acpi_mcfg {
	struct acpi_header h;
	uint64_t reserved;
} __packed;

struct mcfg_alloc {
	uint64_t base;
	uint16_t segment;
	uint8_t start_bus, end_bus;
	uint32_t reserved;
} __packed;

_Static_assert(sizeof(struct acpi_header) == 36, "ACPI header");
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT rev 6");
_Static_assert(sizeof(struct acpi_facs) == 64, "FACS");
_Static_assert(sizeof(struct madt_lapic) == 8, "MADT LAPIC");
_Static_assert(sizeof(struct madt_ioapic) == 12, "MADT IOAPIC");
_Static_assert(sizeof(struct madt_iso) == 10, "MADT ISO");
_Static_assert(sizeof(struct madt_lapic_nmi) == 6, "MADT LAPIC NMI");
_Static_assert(sizeof(struct mcfg_alloc) == 16, "MCFG entry");

static uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *b++);
	return (uint8_t)(0 - sum);
}

static void acpi_header_init(struct acpi_header *h, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = rev;
	h->checksum = 0;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, 8);
	h->oem_revision = 1;
	memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
	h->creator_revision = 1;
}

static void acpi_finish(void *table)
{
	struct acpi_header *h = table;

	h->checksum = 0;
	h->checksum = acpi_checksum(table, h->length);
}

static struct acpi_gas acpi_io_gas(uint16_t port, uint8_t bytes, uint8_t access)
{
	struct acpi_gas g = {
		.space_id = ACPI_GAS_SYSTEM_IO,
		.bit_width = (uint8_t)(bytes * 8),
		.bit_offset = 0,
		.access_size = access,
		.address = port,
	};

	return g;
}

/* a bump allocator over the output buffer */
struct acpi_out {
	uint8_t *buf;
	size_t len, off;
	uint64_t base;
};

static void *acpi_alloc(struct acpi_out *o, size_t size, size_t align, uint64_t *gpa)
{
	size_t at = ALIGN_UP(o->off, align);

	if (at > o->len || size > o->len - at)
		return NULL;
	memset(o->buf + at, 0, size);
	o->off = at + size;
	*gpa = o->base + at;
	return o->buf + at;
}

static int acpi_check_config(const struct x86_acpi_config *c)
{
	uint64_t end;

	if (!c->nr_vcpus || c->nr_vcpus > X86_CPU_MAX_VCPUS) {
		log_err(ACPI_PREFIX, "%u vCPUs: must be 1..%u", c->nr_vcpus, X86_CPU_MAX_VCPUS);
		return -EINVAL;
	}
	if (!c->ecam_size || !IS_ALIGNED(c->ecam_size, MiB) || c->ecam_size > 256 * MiB ||
	    !IS_ALIGNED(c->ecam_base, MiB)) {
		log_err(ACPI_PREFIX, "bad ECAM window 0x%llx+0x%llx",
			(unsigned long long)c->ecam_base, (unsigned long long)c->ecam_size);
		return -EINVAL;
	}
	if (!c->mmio32_size || add_overflows(c->mmio32_base, c->mmio32_size, &end) ||
	    end > 0x100000000ULL) {
		log_err(ACPI_PREFIX, "bad 32-bit MMIO window");
		return -EINVAL;
	}
	if (c->mmio64_size && add_overflows(c->mmio64_base, c->mmio64_size - 1, &end)) {
		log_err(ACPI_PREFIX, "bad 64-bit MMIO window");
		return -EINVAL;
	}
	if (c->io_size && (c->io_base < 0x0d00 || (uint32_t)c->io_base + c->io_size > 0x10000)) {
		log_err(ACPI_PREFIX, "PCI I/O pool 0x%x+0x%x is outside the 0x0D00-0xFFFF window",
			c->io_base, c->io_size);
		return -EINVAL;
	}
	if (!c->pm1a_evt_port || c->pm1a_evt_port > 0xfffc || !c->pm1a_cnt_port ||
	    c->pm1a_cnt_port > 0xfffe || !c->reset_port) {
		log_err(ACPI_PREFIX, "PM1a event, PM1a control and reset ports are required");
		return -EINVAL;
	}
	if (c->hotplug_port &&
	    (!c->gpe0_port || (c->hotplug_port & 3) ||
	     (uint32_t)c->hotplug_port + X86_ACPI_HOTPLUG_LEN > 0x10000)) {
		log_err(ACPI_PREFIX, "PCI hot-plug at 0x%x needs a dword-aligned block and a GPE0 block",
			c->hotplug_port);
		return -EINVAL;
	}
	if (c->gpe0_port && ((uint32_t)c->gpe0_port + X86_ACPI_GPE0_LEN > 0x10000 ||
			     (c->hotplug_port && ranges_overlap(c->gpe0_port, X86_ACPI_GPE0_LEN,
								c->hotplug_port,
								X86_ACPI_HOTPLUG_LEN)))) {
		log_err(ACPI_PREFIX, "bad GPE0 block at 0x%x", c->gpe0_port);
		return -EINVAL;
	}
	if (c->sci_irq >= 16) {
		log_err(ACPI_PREFIX, "SCI IRQ %u is not an ISA IRQ", c->sci_irq);
		return -EINVAL;
	}
	return 0;
}

static void acpi_name_int(struct aml *a, const char *name, uint64_t v)
{
	aml__name(a, name);
	aml__integer(a, v);
}

static void acpi_name_eisaid(struct aml *a, const char *name, const char *id)
{
	aml__name(a, name);
	aml__eisaid(a, id);
}

/* _PRT: INTx of every slot on bus 0, as pci__intx_gsi() routes it (GSI, no link device) */
static void acpi_dsdt_prt(struct aml *a)
{
	struct aml_blk prt, ent;
	unsigned int slot, pin;

	aml__name(a, "_PRT");
	prt = aml__package_begin(a);
	for (slot = 1; slot < PCI_MAX_DEVICES; slot++) {
		for (pin = 0; pin < 4; pin++) {
			ent = aml__package_begin(a);
			aml__integer(a, (uint64_t)slot << 16 | 0xffff);
			aml__elem(&ent);
			aml__integer(a, pin);
			aml__elem(&ent);
			aml__integer(a, 0);
			aml__elem(&ent);
			aml__integer(a, pci__intx_gsi(slot, pin));
			aml__elem(&ent);
			aml__end(a, ent);
			aml__elem(&prt);
		}
	}
	aml__end(a, prt);
}

/* Method (_STA) { Return (0x0F) }: present, enabled, shown, functioning */
static void acpi_sta_present(struct aml *a)
{
	struct aml_blk m = aml__method_begin(a, "_STA", 0, false);

	aml__return(a);
	aml__integer(a, 0x0f);
	aml__end(a, m);
}

/* ---- ACPI PCI hot-plug (devices/hotplug.h; QEMU's acpi-pci-hotplug, one bus) ---- */

#define ACPI_HP_FIRST_SLOT 1 /* slot 0 is the host bridge */

static void acpi_hp_slot_name(char name[5], unsigned int slot)
{
	static const char hex[] = "0123456789ABCDEF";

	name[0] = 'S';
	name[1] = hex[(slot >> 4) & 0xf];
	name[2] = hex[slot & 0xf];
	name[3] = '\0';
}

/*
 * Inside \_SB.PCI0:
 *   OperationRegion (PCST, SystemIO, hotplug_port, 0x10)
 *   Field (PCST, DWordAcc, NoLock, WriteAsZeros) { PCIU, 32, PCID, 32, B0EJ, 32, PCRM, 32 }
 *   Method (PCEJ, 1, Serialized) { Store (ShiftLeft (One, Arg0), B0EJ) Return (Zero) }
 *   Device (Sxx) { Name (_ADR, xx << 16) Name (_SUN, xx) Method (_EJ0, 1) { PCEJ (_SUN) } }
 *   Method (DVNT, 2) { If (And (Arg0, 1 << xx)) { Notify (Sxx, Arg1) } ... }
 *   Method (PCNT, 0, Serialized) { DVNT (PCIU, One) DVNT (PCID, 0x03) }
 * PCIU clears on read, so PCNT reads it exactly once; Notify 1 is a bus
 * check (Linux's acpiphp rescans the slot), 3 an eject request (acpiphp
 * removes the device, then calls _EJ0).
 */
static void acpi_dsdt_hotplug(struct aml *a, const struct x86_acpi_config *c)
{
	struct aml_blk f, m, d, i;
	unsigned int slot;
	char name[5];

	aml__operation_region(a, "PCST", AML_SYSTEM_IO, c->hotplug_port, X86_ACPI_HOTPLUG_LEN);
	f = aml__field_begin(a, "PCST", AML_DWORD_ACC, false, AML_WRITE_AS_ZEROS);
	aml__field_named(a, &f, "PCIU", 32);
	aml__field_named(a, &f, "PCID", 32);
	aml__field_named(a, &f, "B0EJ", 32);
	aml__field_named(a, &f, "PCRM", 32);
	aml__end(a, f);

	m = aml__method_begin(a, "PCEJ", 1, true);
	aml__store(a);
	aml__shift_left(a);
	aml__integer(a, 1);
	aml__arg(a, 0);
	aml__no_target(a);
	aml__name_string(a, "B0EJ");
	aml__return(a);
	aml__integer(a, 0);
	aml__end(a, m);

	for (slot = ACPI_HP_FIRST_SLOT; slot < PCI_MAX_DEVICES; slot++) {
		acpi_hp_slot_name(name, slot);
		d = aml__device_begin(a, name);
		acpi_name_int(a, "_ADR", (uint64_t)slot << 16);
		acpi_name_int(a, "_SUN", slot);
		m = aml__method_begin(a, "_EJ0", 1, false);
		aml__call(a, "PCEJ");
		aml__name_string(a, "_SUN");
		aml__end(a, m);
		aml__end(a, d);
	}

	m = aml__method_begin(a, "DVNT", 2, false);
	for (slot = ACPI_HP_FIRST_SLOT; slot < PCI_MAX_DEVICES; slot++) {
		acpi_hp_slot_name(name, slot);
		i = aml__if_begin(a);
		aml__and(a);
		aml__arg(a, 0);
		aml__integer(a, 1ULL << slot);
		aml__no_target(a);
		aml__notify(a);
		aml__name_string(a, name);
		aml__arg(a, 1);
		aml__end(a, i);
	}
	aml__end(a, m);

	m = aml__method_begin(a, "PCNT", 0, true);
	aml__call(a, "DVNT");
	aml__name_string(a, "PCIU");
	aml__integer(a, 1); /* bus check: a device appeared */
	aml__call(a, "DVNT");
	aml__name_string(a, "PCID");
	aml__integer(a, 3); /* eject request */
	aml__end(a, m);
}

/* Scope (\_GPE) { Method (_E01) { \_SB.PCI0.PCNT () } }: GPE 1 of the GPE0 block */
static void acpi_dsdt_gpe(struct aml *a)
{
	struct aml_blk sc, m;

	sc = aml__scope_begin(a, "\\_GPE");
	m = aml__method_begin(a, "_E01", 0, false);
	aml__call(a, "\\_SB.PCI0.PCNT");
	aml__end(a, m);
	aml__end(a, sc);
}

static void acpi_dsdt_body(struct aml *a, const struct x86_acpi_config *c)
{
	struct aml_blk sb, dev, crs, pkg;
	unsigned int i;

	sb = aml__scope_begin(a, "\\_SB");

	dev = aml__device_begin(a, "PCI0");
	acpi_name_eisaid(a, "_HID", "PNP0A08");
	acpi_name_eisaid(a, "_CID", "PNP0A03");
	acpi_name_int(a, "_SEG", 0);
	acpi_name_int(a, "_BBN", 0);
	acpi_name_int(a, "_UID", 0);
	aml__name(a, "_CRS");
	crs = aml__restemplate_begin(a);
	aml__res_word_bus(a, 0, (uint16_t)(c->ecam_size / MiB - 1));
	aml__res_io(a, 0x0cf8, 0x0cf8, 1, 8);
	aml__res_word_io(a, 0x0000, 0x0cf7);
	aml__res_word_io(a, 0x0d00, 0xffff);
	aml__res_dword_mem(a, (uint32_t)c->mmio32_base,
			   (uint32_t)(c->mmio32_base + c->mmio32_size - 1), false);
	if (c->mmio64_size)
		aml__res_qword_mem(a, c->mmio64_base, c->mmio64_base + c->mmio64_size - 1, false);
	aml__end(a, crs);
	acpi_dsdt_prt(a);
	if (c->hotplug_port)
		acpi_dsdt_hotplug(a, c);
	aml__end(a, dev);

	if (c->com1) {
		dev = aml__device_begin(a, "COM1");
		acpi_name_eisaid(a, "_HID", "PNP0501");
		acpi_name_int(a, "_UID", 1);
		acpi_sta_present(a);
		aml__name(a, "_CRS");
		crs = aml__restemplate_begin(a);
		aml__res_io(a, X86_COM1_BASE, X86_COM1_BASE, 0, 8);
		aml__res_irq_noflags(a, 1U << X86_COM1_IRQ);
		aml__end(a, crs);
		aml__end(a, dev);
	}
	if (c->kbd) {
		dev = aml__device_begin(a, "PS2K");
		acpi_name_eisaid(a, "_HID", "PNP0303");
		acpi_sta_present(a);
		aml__name(a, "_CRS");
		crs = aml__restemplate_begin(a);
		aml__res_io(a, X86_I8042_DATA_PORT, X86_I8042_DATA_PORT, 0, 1);
		aml__res_io(a, X86_I8042_CMD_PORT, X86_I8042_CMD_PORT, 0, 1);
		aml__res_irq_noflags(a, 1U << X86_I8042_KBD_IRQ);
		aml__end(a, crs);
		aml__end(a, dev);
	}
	aml__end(a, sb);

	if (c->hotplug_port)
		acpi_dsdt_gpe(a);

	/* \_S5_: SLP_TYP for PM1a and PM1b, then two reserved values */
	aml__name(a, "_S5_");
	pkg = aml__package_begin(a);
	for (i = 0; i < 4; i++) {
		aml__integer(a, i < 2 ? X86_SLP_TYP_S5 : 0);
		aml__elem(&pkg);
	}
	aml__end(a, pkg);
}

int x86_acpi__build_tables(uint8_t *buf, size_t len, uint64_t base_gpa,
			   const struct x86_acpi_config *c, uint64_t *rsdp_gpa, size_t *used)
{
	struct acpi_out o = { .buf = buf, .len = len, .off = 0, .base = base_gpa };
	uint64_t rsdp_at, xsdt_at, fadt_at, facs_at, madt_at, mcfg_at, dsdt_at;
	size_t madt_len, xsdt_len, mcfg_len, dsdt_len;
	struct acpi_header *xsdt, *dsdt;
	struct madt_lapic_nmi *nmi;
	struct madt_ioapic *ioapic;
	struct madt_lapic *lapic;
	struct acpi_rsdp *rsdp;
	struct acpi_fadt *fadt;
	struct acpi_facs *facs;
	struct acpi_madt *madt;
	struct acpi_mcfg *mcfg;
	struct mcfg_alloc *alloc;
	struct madt_iso *iso;
	uint64_t xsdt_entries[3];
	struct aml a;
	unsigned int i;
	int ret;

	if (!buf || !c || !rsdp_gpa || !used)
		return -EINVAL;
	ret = acpi_check_config(c);
	if (ret)
		return ret;
	if (base_gpa + len > 0x100000000ULL || !IS_ALIGNED(base_gpa, 16)) {
		log_err(ACPI_PREFIX, "tables must sit 16-byte aligned below 4 GiB");
		return -EINVAL;
	}

	aml__init(&a);
	/* the DSDT body first: its size decides the layout's tail */
	acpi_dsdt_body(&a, c);
	ret = aml__error(&a);
	if (ret) {
		log_err(ACPI_PREFIX, "cannot build the DSDT: %s", strerror(-ret));
		goto err_aml;
	}

	ret = -ENOSPC;
	xsdt_len = sizeof(struct acpi_header) + sizeof(xsdt_entries);
	madt_len = sizeof(*madt) + c->nr_vcpus * sizeof(*lapic) + sizeof(*ioapic) +
		   2 * sizeof(*iso) + sizeof(*nmi);
	mcfg_len = sizeof(*mcfg) + sizeof(*alloc);
	dsdt_len = sizeof(struct acpi_header) + a.len;

	rsdp = acpi_alloc(&o, sizeof(*rsdp), 16, &rsdp_at);
	if (!rsdp)
		goto err_space;
	xsdt = acpi_alloc(&o, xsdt_len, 16, &xsdt_at);
	if (!xsdt)
		goto err_space;
	fadt = acpi_alloc(&o, sizeof(*fadt), 16, &fadt_at);
	if (!fadt)
		goto err_space;
	facs = acpi_alloc(&o, sizeof(*facs), 64, &facs_at);
	if (!facs)
		goto err_space;
	madt = acpi_alloc(&o, madt_len, 16, &madt_at);
	if (!madt)
		goto err_space;
	mcfg = acpi_alloc(&o, mcfg_len, 16, &mcfg_at);
	if (!mcfg)
		goto err_space;
	dsdt = acpi_alloc(&o, dsdt_len, 16, &dsdt_at);
	if (!dsdt)
		goto err_space;

	/* DSDT */
	acpi_header_init(dsdt, "DSDT", (uint32_t)dsdt_len, 2);
	memcpy((uint8_t *)dsdt + sizeof(*dsdt), a.buf, a.len);
	acpi_finish(dsdt);

	/* FACS (no checksum) */
	memcpy(facs->signature, "FACS", 4);
	facs->length = sizeof(*facs);
	facs->version = 2;

	/* FADT */
	acpi_header_init(&fadt->h, "FACP", sizeof(*fadt), 6);
	fadt->firmware_ctrl = (uint32_t)facs_at;
	fadt->dsdt = (uint32_t)dsdt_at;
	fadt->preferred_pm_profile = 0; /* unspecified */
	fadt->sci_int = c->sci_irq;
	fadt->smi_cmd = 0;              /* no SMM: ACPI mode is always on */
	fadt->pm1a_evt_blk = c->pm1a_evt_port;
	fadt->pm1a_cnt_blk = c->pm1a_cnt_port;
	fadt->pm1_evt_len = 4;
	fadt->pm1_cnt_len = 2;
	fadt->p_lvl2_lat = 101;         /* > 100: C2 unsupported */
	fadt->p_lvl3_lat = 1001;        /* > 1000: C3 unsupported */
	fadt->iapc_boot_arch = FADT_BOOT_LEGACY_DEVICES | FADT_BOOT_8042 | FADT_BOOT_VGA_NOT_PRESENT;
	fadt->flags = FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_SLP_BUTTON | FADT_F_RESET_REG_SUP;
	fadt->reset_reg = acpi_io_gas(c->reset_port, 1, ACPI_GAS_ACCESS_BYTE);
	fadt->reset_value = c->reset_value;
	fadt->minor_version = 0;
	fadt->x_dsdt = dsdt_at;
	fadt->x_pm1a_evt_blk = acpi_io_gas(c->pm1a_evt_port, 4, ACPI_GAS_ACCESS_WORD);
	fadt->x_pm1a_cnt_blk = acpi_io_gas(c->pm1a_cnt_port, 2, ACPI_GAS_ACCESS_WORD);
	if (c->gpe0_port) {
		/* GPE0_STS then GPE0_EN, half the block each; OSPM accesses them bytewise */
		fadt->gpe0_blk = c->gpe0_port;
		fadt->gpe0_blk_len = X86_ACPI_GPE0_LEN;
		fadt->x_gpe0_blk = acpi_io_gas(c->gpe0_port, X86_ACPI_GPE0_LEN, ACPI_GAS_ACCESS_BYTE);
	}
	acpi_finish(fadt);

	/* MADT */
	acpi_header_init(&madt->h, "APIC", (uint32_t)madt_len, 4);
	madt->lapic_address = X86_ACPI_LAPIC_ADDR;
	madt->flags = MADT_PCAT_COMPAT;
	lapic = (struct madt_lapic *)(madt + 1);
	for (i = 0; i < c->nr_vcpus; i++) {
		lapic[i].type = MADT_LAPIC;
		lapic[i].length = sizeof(*lapic);
		lapic[i].processor_uid = (uint8_t)i;
		lapic[i].apic_id = (uint8_t)i;
		lapic[i].flags = MADT_LAPIC_ENABLED;
	}
	ioapic = (struct madt_ioapic *)(lapic + c->nr_vcpus);
	ioapic->type = MADT_IOAPIC;
	ioapic->length = sizeof(*ioapic);
	ioapic->id = 0;
	ioapic->address = X86_ACPI_IOAPIC_ADDR;
	ioapic->gsi_base = 0;
	iso = (struct madt_iso *)(ioapic + 1);
	iso[0].type = MADT_ISO;
	iso[0].length = sizeof(*iso);
	iso[0].bus = 0;
	iso[0].source = 0;
	iso[0].gsi = 2;
	iso[0].flags = 0; /* conforms to the ISA bus: edge, active high */
	iso[1].type = MADT_ISO;
	iso[1].length = sizeof(*iso);
	iso[1].bus = 0;
	iso[1].source = c->sci_irq;
	iso[1].gsi = c->sci_irq;
	iso[1].flags = MPS_POLARITY_HIGH | MPS_TRIGGER_LEVEL;
	nmi = (struct madt_lapic_nmi *)(iso + 2);
	nmi->type = MADT_LAPIC_NMI;
	nmi->length = sizeof(*nmi);
	nmi->processor_uid = 0xff; /* all processors */
	nmi->flags = 0;
	nmi->lint = 1;
	acpi_finish(madt);

	/* MCFG */
	acpi_header_init(&mcfg->h, "MCFG", (uint32_t)mcfg_len, 1);
	alloc = (struct mcfg_alloc *)(mcfg + 1);
	alloc->base = c->ecam_base;
	alloc->segment = 0;
	alloc->start_bus = 0;
	alloc->end_bus = (uint8_t)(c->ecam_size / MiB - 1);
	acpi_finish(mcfg);

	/* XSDT */
	acpi_header_init(xsdt, "XSDT", (uint32_t)xsdt_len, 1);
	xsdt_entries[0] = fadt_at;
	xsdt_entries[1] = madt_at;
	xsdt_entries[2] = mcfg_at;
	memcpy(xsdt + 1, xsdt_entries, sizeof(xsdt_entries));
	acpi_finish(xsdt);

	/* RSDP v2: checksum over the first 20 bytes, extended over all 36 */
	memcpy(rsdp->signature, "RSD PTR ", 8);
	memcpy(rsdp->oem_id, ACPI_OEM_ID, 6);
	rsdp->revision = 2;
	rsdp->rsdt_address = 0;
	rsdp->length = sizeof(*rsdp);
	rsdp->xsdt_address = xsdt_at;
	rsdp->checksum = acpi_checksum(rsdp, 20);
	rsdp->extended_checksum = acpi_checksum(rsdp, sizeof(*rsdp));

	aml__free(&a);
	*rsdp_gpa = rsdp_at;
	*used = o.off;
	return 0;

err_space:
	log_err(ACPI_PREFIX, "tables do not fit in %zu bytes", len);
err_aml:
	aml__free(&a);
	return ret;
}

int x86_acpi__build(struct guest_mem *m, const struct x86_acpi_config *c, uint64_t *rsdp_gpa)
{
	size_t len = X86_ACPI_END_GPA - X86_ACPI_BASE_GPA, used;
	uint8_t *p = mem__gpa_to_hva(m, X86_ACPI_BASE_GPA, len);
	int ret;

	if (!p) {
		log_err(ACPI_PREFIX, "no guest RAM at 0x%llx for the ACPI tables",
			(unsigned long long)X86_ACPI_BASE_GPA);
		return -EFAULT;
	}
	ret = x86_acpi__build_tables(p, len, X86_ACPI_BASE_GPA, c, rsdp_gpa, &used);
	if (ret)
		return ret;
	log_debug(ACPI_PREFIX, "%zu bytes of tables at 0x%llx, RSDP at 0x%llx", used,
		  (unsigned long long)X86_ACPI_BASE_GPA, (unsigned long long)*rsdp_gpa);
	return 0;
}
