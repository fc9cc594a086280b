// SPDX-License-Identifier: MIT
/* ACPI tables and the AML emitter: structure, checksums, and `iasl -d` round trips. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/mem.h"
#include "vmm/pci.h"
#include "vmm/x86/acpi.h"
#include "vmm/x86/aml.h"

#define BASE 0xE0000ULL
#define LEN (128 * 1024)

static uint8_t tbuf[LEN];

static struct x86_acpi_config cfg(unsigned int nr)
{
	struct x86_acpi_config c = {
		.nr_vcpus = nr,
		.ecam_base = PCI_ECAM_BASE,
		.ecam_size = PCI_ECAM_SIZE,
		.mmio32_base = PCI_MMIO32_BASE,
		.mmio32_size = PCI_MMIO32_SIZE,
		.mmio64_base = PCI_MMIO64_BASE,
		.mmio64_size = PCI_MMIO64_SIZE,
		.io_base = PCI_IOPORT_BASE,
		.io_size = PCI_IOPORT_SIZE,
		.pm1a_evt_port = 0x600,
		.pm1a_cnt_port = 0x604,
		.reset_port = 0xcf9,
		.reset_value = 0x06,
		.sci_irq = 9,
		.com1 = true,
		.kbd = true,
	};
	return c;
}

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* pointer into tbuf for a GPA, asserting it lies in the built range */
static uint8_t *at(uint64_t gpa, size_t used)
{
	cr_assert(gpa >= BASE && gpa < BASE + used, "gpa 0x%llx outside tables", (unsigned long long)gpa);
	return tbuf + (gpa - BASE);
}

static void check_table(const uint8_t *t, const char *sig, size_t used, const uint8_t *start)
{
	uint32_t len = rd32(t + 4);

	cr_assert(!memcmp(t, sig, 4), "expected %s, got %.4s", sig, (const char *)t);
	cr_assert(len >= 36, "%s length %u", sig, len);
	cr_assert((size_t)(t - start) + len <= used, "%s runs past the end", sig);
	cr_assert_eq(sum(t, len), 0, "%s checksum", sig);
	cr_assert(!memcmp(t + 10, "MINVMM", 6));
}

struct tables {
	size_t used;
	uint64_t rsdp;
	uint8_t *xsdt, *fadt, *madt, *mcfg, *dsdt, *facs;
};

static struct tables build(const struct x86_acpi_config *c)
{
	struct tables t = { 0 };
	uint8_t *r;

	memset(tbuf, 0xAA, sizeof(tbuf));
	cr_assert_eq(x86_acpi__build_tables(tbuf, LEN, BASE, c, &t.rsdp, &t.used), 0);
	cr_assert(t.used > 0 && t.used <= LEN);
	cr_assert_eq(t.rsdp, BASE);
	r = at(t.rsdp, t.used);
	cr_assert(!memcmp(r, "RSD PTR ", 8));
	cr_assert_eq(sum(r, 20), 0, "RSDP checksum");
	cr_assert_eq(sum(r, 36), 0, "RSDP extended checksum");
	cr_assert_eq(r[15], 2, "RSDP revision");
	cr_assert_eq(rd32(r + 20), 36, "RSDP length");
	t.xsdt = at(rd64(r + 24), t.used);
	check_table(t.xsdt, "XSDT", t.used, tbuf);
	cr_assert_eq(rd32(t.xsdt + 4), 36 + 3 * 8);
	t.fadt = at(rd64(t.xsdt + 36), t.used);
	t.madt = at(rd64(t.xsdt + 44), t.used);
	t.mcfg = at(rd64(t.xsdt + 52), t.used);
	check_table(t.fadt, "FACP", t.used, tbuf);
	check_table(t.madt, "APIC", t.used, tbuf);
	check_table(t.mcfg, "MCFG", t.used, tbuf);
	cr_assert_eq(rd64(t.fadt + 140), rd32(t.fadt + 40), "X_DSDT == DSDT");
	t.dsdt = at(rd64(t.fadt + 140), t.used);
	check_table(t.dsdt, "DSDT", t.used, tbuf);
	t.facs = at(rd32(t.fadt + 36), t.used);
	return t;
}

static bool memmem_has(const uint8_t *p, size_t n, const void *needle, size_t nl)
{
	return memmem(p, n, needle, nl) != NULL;
}

Test(acpi, fadt_fields)
{
	struct x86_acpi_config c = cfg(2);
	struct tables t = build(&c);
	const uint8_t *f = t.fadt;

	cr_assert_eq(rd32(f + 4), 276);
	cr_assert_eq(f[8], 6, "FADT revision");
	cr_assert_eq(rd16(f + 46), 9, "SCI_INT");
	cr_assert_eq(rd32(f + 48), 0, "no SMI_CMD");
	cr_assert_eq(rd32(f + 56), 0x600, "PM1a_EVT_BLK");
	cr_assert_eq(rd32(f + 64), 0x604, "PM1a_CNT_BLK");
	cr_assert_eq(f[88], 4, "PM1_EVT_LEN");
	cr_assert_eq(f[89], 2, "PM1_CNT_LEN");
	cr_assert(rd16(f + 109) & (1 << 1), "8042 present");
	cr_assert(rd32(f + 112) & (1 << 10), "RESET_REG_SUP");
	cr_assert_eq(rd32(f + 112) & (1 << 20), 0, "not HW-reduced");
	/* RESET_REG: system I/O, 8 bits at reset_port */
	cr_assert_eq(f[116], 1);
	cr_assert_eq(f[117], 8);
	cr_assert_eq(rd64(f + 120), 0xcf9);
	cr_assert_eq(f[128], 0x06, "RESET_VALUE");
	/* X_PM1a_EVT_BLK and X_PM1a_CNT_BLK */
	cr_assert_eq(f[148], 1);
	cr_assert_eq(f[149], 32);
	cr_assert_eq(rd64(f + 152), 0x600);
	cr_assert_eq(f[172], 1);
	cr_assert_eq(f[173], 16);
	cr_assert_eq(rd64(f + 176), 0x604);
	/* FACS */
	cr_assert(!memcmp(t.facs, "FACS", 4));
	cr_assert_eq(rd32(t.facs + 4), 64);
	cr_assert_eq((rd32(f + 36)) % 64, 0, "FACS 64-byte aligned");
}

static void check_madt(unsigned int nr)
{
	struct x86_acpi_config c = cfg(nr);
	struct tables t = build(&c);
	const uint8_t *m = t.madt, *p, *end;
	unsigned int nlapic = 0, nioapic = 0, niso = 0, nnmi = 0;
	bool irq0 = false, sci = false;

	cr_assert_eq(rd32(m + 4), 44 + 8 * nr + 12 + 2 * 10 + 6);
	cr_assert_eq(rd32(m + 36), 0xFEE00000);
	cr_assert_eq(rd32(m + 40), 1, "PCAT_COMPAT");
	end = m + rd32(m + 4);
	for (p = m + 44; p < end; p += p[1]) {
		cr_assert(p[1] >= 2 && p + p[1] <= end);
		switch (p[0]) {
		case 0:
			cr_assert_eq(p[1], 8);
			cr_assert_eq(p[2], nlapic, "processor uid");
			cr_assert_eq(p[3], nlapic, "APIC id == index");
			cr_assert_eq(rd32(p + 4), 1, "enabled");
			nlapic++;
			break;
		case 1:
			cr_assert_eq(p[2], 0);
			cr_assert_eq(rd32(p + 4), 0xFEC00000);
			cr_assert_eq(rd32(p + 8), 0);
			nioapic++;
			break;
		case 2:
			if (p[3] == 0) {
				irq0 = rd32(p + 4) == 2 && rd16(p + 8) == 0;
			} else if (p[3] == 9) {
				sci = rd32(p + 4) == 9 && rd16(p + 8) == 0xd;
			}
			niso++;
			break;
		case 4:
			cr_assert_eq(p[2], 0xff);
			cr_assert_eq(p[5], 1, "LINT1");
			nnmi++;
			break;
		default:
			cr_assert_fail("unexpected MADT entry type %u", p[0]);
		}
	}
	cr_assert_eq(p, end);
	cr_assert_eq(nlapic, nr);
	cr_assert_eq(nioapic, 1);
	cr_assert_eq(niso, 2);
	cr_assert_eq(nnmi, 1);
	cr_assert(irq0, "IRQ0 -> GSI2 override");
	cr_assert(sci, "SCI level/active-high override");
}

Test(acpi, madt_one_vcpu) { check_madt(1); }
Test(acpi, madt_four_vcpus) { check_madt(4); }
Test(acpi, madt_max_vcpus) { check_madt(254); }

Test(acpi, mcfg)
{
	struct x86_acpi_config c = cfg(1);
	struct tables t = build(&c);

	cr_assert_eq(rd32(t.mcfg + 4), 44 + 16);
	cr_assert_eq(rd64(t.mcfg + 44), PCI_ECAM_BASE);
	cr_assert_eq(rd16(t.mcfg + 52), 0);
	cr_assert_eq(t.mcfg[54], 0);
	cr_assert_eq(t.mcfg[55], 0, "1 MiB of ECAM is bus 0 only");

	c.ecam_size = 256 * MiB;
	t = build(&c);
	cr_assert_eq(t.mcfg[55], 255);
}

Test(acpi, dsdt_content)
{
	static const uint8_t pnp0a08[] = { 0x0c, 0x41, 0xd0, 0x0a, 0x08 };
	static const uint8_t pnp0501[] = { 0x0c, 0x41, 0xd0, 0x05, 0x01 };
	static const uint8_t pnp0303[] = { 0x0c, 0x41, 0xd0, 0x03, 0x03 };
	static const uint8_t pnp0f13[] = { 0x0c, 0x41, 0xd0, 0x0f, 0x13 };
	/* IO(Decode16, 0x60, 0x60, 0, 1), IO(Decode16, 0x64, 0x64, 0, 1), IRQNoFlags(){1} */
	static const uint8_t kbd_crs[] = { 0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x00, 0x01,
					   0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x00, 0x01,
					   0x22, 0x02, 0x00, 0x79, 0x00 };
	static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
				      0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00 };
	/* IO(Decode16, 0x3F8, 0x3F8, 0, 8) and IRQNoFlags(){4} */
	static const uint8_t com1_crs[] = { 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08,
					    0x22, 0x10, 0x00, 0x79, 0x00 };
	struct x86_acpi_config c = cfg(1);
	struct tables t = build(&c);
	size_t n = rd32(t.dsdt + 4);

	cr_assert_eq(t.dsdt[8], 2, "DSDT revision 2: 64-bit integers");
	cr_assert(memmem_has(t.dsdt, n, pnp0a08, sizeof(pnp0a08)));
	cr_assert(memmem_has(t.dsdt, n, "PCI0", 4));
	cr_assert(memmem_has(t.dsdt, n, s5, sizeof(s5)));
	cr_assert(memmem_has(t.dsdt, n, pnp0501, sizeof(pnp0501)));
	cr_assert(memmem_has(t.dsdt, n, com1_crs, sizeof(com1_crs)));
	cr_assert(memmem_has(t.dsdt, n, pnp0303, sizeof(pnp0303)));
	cr_assert(memmem_has(t.dsdt, n, kbd_crs, sizeof(kbd_crs)));
	cr_assert(!memmem_has(t.dsdt, n, pnp0f13, sizeof(pnp0f13)), "no AUX port described");

	c.kbd = false;
	t = build(&c);
	n = rd32(t.dsdt + 4);
	cr_assert(!memmem_has(t.dsdt, n, pnp0303, sizeof(pnp0303)));
	cr_assert(!memmem_has(t.dsdt, n, "PS2K", 4));
	c.kbd = true;

	c.com1 = false;
	t = build(&c);
	n = rd32(t.dsdt + 4);
	cr_assert(!memmem_has(t.dsdt, n, "COM1", 4));
	cr_assert(!memmem_has(t.dsdt, n, pnp0501, sizeof(pnp0501)));
	cr_assert(memmem_has(t.dsdt, n, s5, sizeof(s5)));
}

Test(acpi, rejects_bad_config)
{
	struct x86_acpi_config c = cfg(0);
	uint64_t rsdp;
	size_t used;

	cr_assert_eq(x86_acpi__build_tables(tbuf, LEN, BASE, &c, &rsdp, &used), -EINVAL);
	c = cfg(255);
	cr_assert_eq(x86_acpi__build_tables(tbuf, LEN, BASE, &c, &rsdp, &used), -EINVAL);
	c = cfg(1);
	c.ecam_size = 3 * MiB / 2;
	cr_assert_eq(x86_acpi__build_tables(tbuf, LEN, BASE, &c, &rsdp, &used), -EINVAL);
	c = cfg(1);
	c.io_base = 0x800;
	cr_assert_eq(x86_acpi__build_tables(tbuf, LEN, BASE, &c, &rsdp, &used), -EINVAL);
	c = cfg(1);
	c.pm1a_cnt_port = 0;
	cr_assert_eq(x86_acpi__build_tables(tbuf, LEN, BASE, &c, &rsdp, &used), -EINVAL);
	c = cfg(1);
	cr_assert_eq(x86_acpi__build_tables(tbuf, 200, BASE, &c, &rsdp, &used), -ENOSPC);
	c = cfg(254);
	cr_assert_eq(x86_acpi__build_tables(tbuf, 1024, BASE, &c, &rsdp, &used), -ENOSPC);
}

Test(acpi, build_in_guest_ram)
{
	size_t sz = 2 * MiB;
	uint8_t *ram = calloc(1, sz);
	struct x86_acpi_config c = cfg(8);
	struct guest_mem m;
	uint64_t rsdp = 0;

	cr_assert_not_null(ram);
	cr_assert_eq(mem__init_from_buffer(&m, ram, 0, sz), 0);
	cr_assert_eq(x86_acpi__build(&m, &c, &rsdp), 0);
	cr_assert_eq(rsdp, 0xE0000);
	cr_assert(!memcmp(ram + 0xE0000, "RSD PTR ", 8));
	cr_assert_eq(sum(ram + 0xE0000, 36), 0);
	mem__free(&m);

	/* no RAM at 0xE0000 */
	cr_assert_eq(mem__init_from_buffer(&m, ram, 0, 0x80000), 0);
	cr_assert_eq(x86_acpi__build(&m, &c, &rsdp), -EFAULT);
	free(ram);
}

/* ---- AML emitter ---- */

Test(aml, pkglen)
{
	uint8_t b[4];

	cr_assert_eq(aml__pkglen_encode(b, 0), 1);
	cr_assert_eq(b[0], 1);
	cr_assert_eq(aml__pkglen_encode(b, 62), 1);
	cr_assert_eq(b[0], 63);
	/* 63 bytes of content + 2 = 65 = 0x41: lead 0x41, next 0x04 */
	cr_assert_eq(aml__pkglen_encode(b, 63), 2);
	cr_assert_eq(b[0], 0x41);
	cr_assert_eq(b[1], 0x04);
	cr_assert_eq(aml__pkglen_encode(b, 0xFFD), 2);
	cr_assert_eq(aml__pkglen_encode(b, 0xFFE), 3);
	cr_assert_eq(b[0], 0x81);
	cr_assert_eq(b[1], 0x00);
	cr_assert_eq(b[2], 0x01);
	cr_assert_eq(aml__pkglen_encode(b, 0x0FFFFFFF), 0);
}

Test(aml, names_integers_eisaid)
{
	static const uint8_t sb_pci0[] = { '\\', 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0' };
	static const uint8_t multi[] = { 0x2f, 3, 'A', '_', '_', '_', 'B', 'C', '_', '_', 'D', 'E', 'F', 'G' };
	static const uint8_t ints[] = { 0x00, 0x01, 0x0a, 0x05, 0x0b, 0x34, 0x12, 0x0c, 0x78, 0x56,
					0x34, 0x12, 0x0e, 0, 0, 0, 0, 0x80, 0, 0, 0, 0xff };
	struct aml a;

	cr_assert_eq(aml__eisaid_value("PNP0A03"), 0x030AD041);
	cr_assert_eq(aml__eisaid_value("PNP0A08"), 0x080AD041);
	cr_assert_eq(aml__eisaid_value("pnp0a08"), 0);
	cr_assert_eq(aml__eisaid_value("PNP0A0"), 0);

	aml__init(&a);
	aml__name_string(&a, "\\_SB.PCI0");
	cr_assert_eq(a.len, sizeof(sb_pci0));
	cr_assert(!memcmp(a.buf, sb_pci0, sizeof(sb_pci0)));
	aml__free(&a);

	aml__init(&a);
	aml__name_string(&a, "A.BC.DEFG");
	cr_assert_eq(a.len, sizeof(multi));
	cr_assert(!memcmp(a.buf, multi, sizeof(multi)));
	aml__free(&a);

	aml__init(&a);
	aml__integer(&a, 0);
	aml__integer(&a, 1);
	aml__integer(&a, 5);
	aml__integer(&a, 0x1234);
	aml__integer(&a, 0x12345678);
	aml__integer(&a, 0x8000000000ULL);
	aml__integer(&a, UINT64_MAX);
	cr_assert_eq(a.len, sizeof(ints));
	cr_assert(!memcmp(a.buf, ints, sizeof(ints)));
	cr_assert_eq(aml__error(&a), 0);
	aml__free(&a);

	aml__init(&a);
	aml__name_string(&a, "TOOLONG");
	cr_assert_eq(aml__error(&a), -EINVAL);
	aml__free(&a);
	aml__init(&a);
	aml__name_string(&a, "1ABC");
	cr_assert_eq(aml__error(&a), -EINVAL);
	aml__free(&a);
}

Test(aml, nested_blocks)
{
	/* Device(DEV0) { Name(_UID, 0x07) Method(_STA) { Return(0x0F) } } */
	static const uint8_t want[] = { 0x5b, 0x82, 0x16, 'D', 'E', 'V', '0',
					0x08, '_', 'U', 'I', 'D', 0x0a, 0x07,
					0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f };
	struct aml_blk d, m, b;
	struct aml a;
	unsigned int i;

	aml__init(&a);
	d = aml__device_begin(&a, "DEV0");
	aml__name(&a, "_UID");
	aml__integer(&a, 7);
	m = aml__method_begin(&a, "_STA", 0, false);
	aml__return(&a);
	aml__integer(&a, 0x0f);
	aml__end(&a, m);
	aml__end(&a, d);
	cr_assert_eq(aml__error(&a), 0);
	cr_assert_eq(a.len, sizeof(want));
	cr_assert(!memcmp(a.buf, want, sizeof(want)));
	aml__free(&a);

	/* a 100-byte Buffer: BufferOp, 2-byte PkgLength, BytePrefix 100, bytes */
	aml__init(&a);
	b = aml__buffer_begin(&a);
	for (i = 0; i < 100; i++)
		aml__byte(&a, (uint8_t)i);
	aml__end(&a, b);
	cr_assert_eq(a.len, 1 + 2 + 2 + 100);
	cr_assert_eq(a.buf[0], 0x11);
	cr_assert_eq(a.buf[1] | (a.buf[2] << 4), 2 + 2 + 100);
	cr_assert_eq(a.buf[1] >> 6, 1);
	cr_assert_eq(a.buf[3], 0x0a);
	cr_assert_eq(a.buf[4], 100);
	cr_assert_eq(a.buf[5 + 99], 99);
	aml__free(&a);
}

/* decodes the PkgLength at p: its value, and its size in *n */
static uint32_t pkglen_decode(const uint8_t *p, unsigned int *n)
{
	uint32_t v;
	unsigned int i;

	*n = 1 + (p[0] >> 6);
	if (*n == 1)
		return p[0] & 0x3f;
	v = p[0] & 0x0f;
	for (i = 1; i < *n; i++)
		v |= (uint32_t)p[i] << (4 + 8 * (i - 1));
	return v;
}

/* If(One) { <content - 1 bytes of Noop> }: the PkgLength counts itself and the content */
Test(aml, pkglen_boundaries_in_blocks)
{
	static const struct {
		size_t content;
		unsigned int pl_size;
		uint8_t pl[4];
	} cases[] = {
		{ 62, 1, { 0x3f } },                     /* 63 = 0x3f: the last 1-byte length */
		{ 63, 2, { 0x41, 0x04 } },               /* 63 + 2 = 0x41 */
		{ 64, 2, { 0x42, 0x04 } },
		{ 4093, 2, { 0x4f, 0xff } },             /* 0xfff: the last 2-byte length */
		{ 4094, 3, { 0x81, 0x00, 0x01 } },       /* 4094 + 3 = 0x1001 */
		{ 4095, 3, { 0x82, 0x00, 0x01 } },
		{ 4096, 3, { 0x83, 0x00, 0x01 } },
		{ 0xffffc, 3, { 0x8f, 0xff, 0xff } },    /* 0xfffff: the last 3-byte length */
		{ 0xffffd, 4, { 0xc1, 0x00, 0x00, 0x01 } }, /* 0xffffd + 4 = 0x100001 */
	};
	unsigned int k, n;

	for (k = 0; k < ARRAY_SIZE(cases); k++) {
		struct aml_blk b;
		struct aml a;
		size_t i;

		aml__init(&a);
		b = aml__if_begin(&a);
		aml__integer(&a, 1); /* the predicate counts as content */
		for (i = 1; i < cases[k].content; i++)
			aml__byte(&a, 0xa3); /* NoopOp */
		aml__end(&a, b);
		cr_assert_eq(aml__error(&a), 0);
		cr_assert_eq(a.len, 1 + cases[k].pl_size + cases[k].content, "content %zu",
			     cases[k].content);
		cr_assert_eq(a.buf[0], 0xa0);
		cr_assert(!memcmp(a.buf + 1, cases[k].pl, cases[k].pl_size),
			  "content %zu: PkgLength %02x %02x %02x", cases[k].content, a.buf[1],
			  a.buf[2], a.buf[3]);
		cr_assert_eq(pkglen_decode(a.buf + 1, &n), cases[k].pl_size + cases[k].content);
		cr_assert_eq(n, cases[k].pl_size);
		cr_assert_eq(a.buf[1 + n], 0x01, "predicate right after the PkgLength");
		aml__free(&a);
	}
}

Test(aml, hotplug_op_bytes)
{
	/* OperationRegion(PCST, SystemIO, 0xAE00, 0x08) */
	static const uint8_t opreg[] = { 0x5b, 0x80, 'P', 'C', 'S', 'T', 0x01,
					0x0b, 0x00, 0xae, 0x0a, 0x08 };
	/* OperationRegion(HPMM, SystemMemory, 0xFEB00000, 0x10) */
	static const uint8_t opreg_mem[] = { 0x5b, 0x80, 'H', 'P', 'M', 'M', 0x00, 0x0c,
					     0x00, 0x00, 0xb0, 0xfe, 0x0a, 0x10 };
	/* Field(PCST, DWordAcc, NoLock, WriteAsZeros) { PCIU, 32, PCID, 32 } */
	static const uint8_t field[] = { 0x5b, 0x81, 0x10, 'P', 'C', 'S', 'T', 0x43,
					 'P', 'C', 'I', 'U', 0x20, 'P', 'C', 'I', 'D', 0x20 };
	/*
	 * Field(\_SB.REGS, ByteAcc, Lock, WriteAsOnes) { A, 63, , 1, Offset(16), B, 64, C, 4096 }:
	 * field widths are PkgLengths that do not count themselves
	 */
	static const uint8_t field2[] = { 0x5b, 0x81, 0x23, '\\', 0x2e, '_', 'S', 'B', '_',
					  'R', 'E', 'G', 'S', 0x31, 'A', '_', '_', '_', 0x3f,
					  0x00, 0x01, 0x00, 0x40, 0x04, 'B', '_', '_', '_',
					  0x40, 0x04, 'C', '_', '_', '_', 0x80, 0x00, 0x01 };
	/* Method(PCEJ, 1, Serialized) { Store(ShiftLeft(One, Arg0), B0EJ) } */
	static const uint8_t method[] = { 0x14, 0x0f, 'P', 'C', 'E', 'J', 0x09, 0x70, 0x79,
					  0x01, 0x68, 0x00, 'B', '0', 'E', 'J' };
	/* Notify(S01, Arg1) Notify(S02, 0x03) */
	static const uint8_t notify[] = { 0x86, 'S', '0', '1', '_', 0x69, 0x86,
					  'S', '0', '2', '_', 0x0a, 0x03 };
	/* If (LAnd(LEqual(Local0, One), Arg6)) { Increment(Local7) } Else { Decrement(Local7) } */
	static const uint8_t ifelse[] = { 0xa0, 0x08, 0x90, 0x93, 0x60, 0x01, 0x6e, 0x75, 0x67,
					  0xa1, 0x03, 0x76, 0x67 };
	/* While (LLess(Local0, 0x20)) { Break } */
	static const uint8_t loop[] = { 0xa2, 0x06, 0x95, 0x60, 0x0a, 0x20, 0xa5 };
	/* \_SB.PCI0.PCNT() */
	static const uint8_t call[] = { 0x5c, 0x2f, 0x03, '_', 'S', 'B', '_', 'P', 'C', 'I', '0',
					'P', 'C', 'N', 'T' };
	struct aml_blk b, e;
	struct aml a;

	aml__init(&a);
	aml__operation_region(&a, "PCST", AML_SYSTEM_IO, 0xAE00, 8);
	cr_assert_eq(a.len, sizeof(opreg));
	cr_assert(!memcmp(a.buf, opreg, sizeof(opreg)));
	aml__free(&a);

	aml__init(&a);
	aml__operation_region(&a, "HPMM", AML_SYSTEM_MEMORY, 0xFEB00000, 0x10);
	cr_assert_eq(a.len, sizeof(opreg_mem));
	cr_assert(!memcmp(a.buf, opreg_mem, sizeof(opreg_mem)));
	aml__free(&a);

	aml__init(&a);
	b = aml__field_begin(&a, "PCST", AML_DWORD_ACC, false, AML_WRITE_AS_ZEROS);
	aml__field_named(&a, &b, "PCIU", 32);
	aml__field_named(&a, &b, "PCID", 32);
	aml__end(&a, b);
	cr_assert_eq(a.len, sizeof(field));
	cr_assert(!memcmp(a.buf, field, sizeof(field)));
	aml__free(&a);

	aml__init(&a);
	b = aml__field_begin(&a, "\\_SB.REGS", AML_BYTE_ACC, true, AML_WRITE_AS_ONES);
	aml__field_named(&a, &b, "A", 63);
	aml__field_reserved(&a, &b, 1);
	aml__field_offset(&a, &b, 16);
	aml__field_named(&a, &b, "B", 64);
	aml__field_named(&a, &b, "C", 4096);
	aml__end(&a, b);
	cr_assert_eq(aml__error(&a), 0);
	cr_assert_eq(a.len, sizeof(field2));
	cr_assert(!memcmp(a.buf, field2, sizeof(field2)));
	aml__free(&a);

	aml__init(&a);
	b = aml__method_begin(&a, "PCEJ", 1, true);
	aml__store(&a);
	aml__shift_left(&a);
	aml__integer(&a, 1);
	aml__arg(&a, 0);
	aml__no_target(&a);
	aml__name_string(&a, "B0EJ");
	aml__end(&a, b);
	cr_assert_eq(a.len, sizeof(method));
	cr_assert(!memcmp(a.buf, method, sizeof(method)));
	aml__free(&a);

	aml__init(&a);
	aml__notify(&a);
	aml__name_string(&a, "S01");
	aml__arg(&a, 1);
	aml__notify(&a);
	aml__name_string(&a, "S02");
	aml__integer(&a, 3);
	cr_assert_eq(a.len, sizeof(notify));
	cr_assert(!memcmp(a.buf, notify, sizeof(notify)));
	aml__free(&a);

	aml__init(&a);
	b = aml__if_begin(&a);
	aml__land(&a);
	aml__lequal(&a);
	aml__local(&a, 0);
	aml__integer(&a, 1);
	aml__arg(&a, 6);
	aml__increment(&a);
	aml__local(&a, 7);
	aml__end(&a, b);
	e = aml__else_begin(&a);
	aml__decrement(&a);
	aml__local(&a, 7);
	aml__end(&a, e);
	cr_assert_eq(a.len, sizeof(ifelse));
	cr_assert(!memcmp(a.buf, ifelse, sizeof(ifelse)));
	aml__free(&a);

	aml__init(&a);
	b = aml__while_begin(&a);
	aml__lless(&a);
	aml__local(&a, 0);
	aml__integer(&a, 0x20);
	aml__break(&a);
	aml__end(&a, b);
	cr_assert_eq(a.len, sizeof(loop));
	cr_assert(!memcmp(a.buf, loop, sizeof(loop)));
	aml__free(&a);

	aml__init(&a);
	aml__call(&a, "\\_SB.PCI0.PCNT");
	cr_assert_eq(a.len, sizeof(call));
	cr_assert(!memcmp(a.buf, call, sizeof(call)));
	cr_assert_eq(aml__error(&a), 0);
	aml__free(&a);
}

Test(aml, hotplug_bad_input)
{
	struct aml_blk b, m;
	struct aml a;

	aml__init(&a);
	aml__local(&a, 8);
	cr_assert_eq(aml__error(&a), -EINVAL, "Local8");
	aml__free(&a);

	aml__init(&a);
	aml__arg(&a, 7);
	cr_assert_eq(aml__error(&a), -EINVAL, "Arg7");
	aml__free(&a);

	aml__init(&a);
	aml__operation_region(&a, "TOOLONG", AML_SYSTEM_IO, 0, 1);
	cr_assert_eq(aml__error(&a), -EINVAL, "a region name is one NameSeg");
	aml__free(&a);

	aml__init(&a);
	b = aml__field_begin(&a, "REG", AML_BUFFER_ACC + 1, false, AML_PRESERVE);
	cr_assert_eq(aml__error(&a), -EINVAL, "bad AccessType");
	aml__free(&a);

	aml__init(&a);
	b = aml__field_begin(&a, "REG", AML_ANY_ACC, false, AML_WRITE_AS_ZEROS + 1);
	cr_assert_eq(aml__error(&a), -EINVAL, "bad UpdateRule");
	aml__free(&a);

	aml__init(&a);
	b = aml__field_begin(&a, "REG", AML_ANY_ACC, false, AML_PRESERVE);
	aml__field_named(&a, &b, "X", 16);
	aml__field_offset(&a, &b, 2);
	cr_assert_eq(aml__error(&a), 0, "Offset() to where we are is a no-op");
	aml__field_offset(&a, &b, 1);
	cr_assert_eq(aml__error(&a), -EINVAL, "Offset() backwards");
	aml__free(&a);

	aml__init(&a);
	b = aml__field_begin(&a, "REG", AML_ANY_ACC, false, AML_PRESERVE);
	aml__field_named(&a, &b, "X.Y", 8);
	cr_assert_eq(aml__error(&a), -EINVAL, "a field unit name is one NameSeg");
	aml__free(&a);

	aml__init(&a);
	b = aml__field_begin(&a, "REG", AML_ANY_ACC, false, AML_PRESERVE);
	aml__field_named(&a, &b, "X", 0);
	cr_assert_eq(aml__error(&a), -EINVAL, "zero-width named field");
	aml__free(&a);

	aml__init(&a);
	b = aml__field_begin(&a, "REG", AML_ANY_ACC, false, AML_PRESERVE);
	aml__field_named(&a, &b, "X", 0x10000000);
	cr_assert_eq(aml__error(&a), -EINVAL, "wider than a PkgLength holds");
	aml__free(&a);

	aml__init(&a);
	m = aml__method_begin(&a, "FOO", 0, false);
	aml__field_named(&a, &m, "X", 8);
	cr_assert_eq(aml__error(&a), -EINVAL, "field unit outside a Field");
	aml__free(&a);
}

/* ---- iasl round trips ---- */

static char tmpdir[64];

static void write_file(const char *name, const void *p, size_t n)
{
	char path[160];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(p, 1, n, f), n);
	fclose(f);
}

static char *iasl_disassemble_opt(const char *opt, const char *base, const void *table)
{
	char cmd[512], path[160];
	char *text;
	FILE *f;
	long n;
	int st;

	write_file(base, table, rd32(table + 4));
	snprintf(cmd, sizeof(cmd), "cd %s && iasl %s %s > %s.log 2>&1", tmpdir, opt, base, base);
	st = system(cmd);
	cr_assert(st != -1 && WIFEXITED(st), "cannot run iasl");
	cr_assert_neq(WEXITSTATUS(st), 127, "iasl is not installed (Debian package acpica-tools)");
	cr_assert_eq(WEXITSTATUS(st), 0, "iasl -d %s failed (see %s/%s.log)", base, tmpdir, base);

	snprintf(path, sizeof(path), "%s/%.*s.dsl", tmpdir, (int)(strlen(base) - 4), base);
	f = fopen(path, "r");
	cr_assert_not_null(f, "no disassembly %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	text = calloc(1, (size_t)n + 1);
	cr_assert_not_null(text);
	cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return text;
}

static char *iasl_disassemble(const char *base, const void *table)
{
	return iasl_disassemble_opt("-d", base, table);
}

static void rm_tmpdir(void)
{
	char cmd[128];

	if (tmpdir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
}

Test(acpi_iasl, disassembles)
{
	struct x86_acpi_config c = cfg(4);
	struct tables t;
	char *s;

	strcpy(tmpdir, "/tmp/minivmm-acpi-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	t = build(&c);

	s = iasl_disassemble("dsdt.dat", t.dsdt);
	cr_assert_not_null(strstr(s, "PNP0A08"), "%s", s);
	cr_assert_not_null(strstr(s, "PNP0A03"));
	cr_assert_not_null(strstr(s, "_S5_"));
	cr_assert_not_null(strstr(s, "COM1"));
	cr_assert_not_null(strstr(s, "PNP0501"));
	cr_assert_not_null(strstr(s, "0x0CF7"));
	cr_assert_not_null(strstr(s, "0xDFFFFFFF"), "32-bit window end");
	cr_assert_not_null(strstr(s, "0x000000FCFFFFFFFF"), "64-bit window end");
	cr_assert_not_null(strstr(s, "0x03F8"));
	/* INTx routing: slot 1 INTA -> GSI 17, slot 31 INTD -> GSI 18 (pci__intx_gsi) */
	cr_assert_not_null(strstr(s, "Name (_PRT, Package (0x7C)"), "124 _PRT entries");
	cr_assert_not_null(strstr(s, "0x0001FFFF"));
	cr_assert_not_null(strstr(s, "0x001FFFFF"));
	cr_assert_eq(pci__intx_gsi(1, 0), 17);
	cr_assert_eq(pci__intx_gsi(31, 3), 18);
	free(s);
	/* the disassembly compiles back: the AML was well-formed ASL */
	{
		char cmd[256];
		int st;

		snprintf(cmd, sizeof(cmd), "cd %s && iasl -p recompiled dsdt.dsl > recompile.log 2>&1",
			 tmpdir);
		st = system(cmd);
		cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
			  "iasl cannot recompile the disassembled DSDT (see %s/recompile.log)", tmpdir);
	}

	s = iasl_disassemble("facp.dat", t.fadt);
	cr_assert_not_null(strstr(s, "Fixed ACPI Description Table"), "%s", s);
	cr_assert_not_null(strstr(s, "SCI Interrupt : 0009"), "%s", s);
	cr_assert_not_null(strstr(s, "0000000000000CF9"), "reset register");
	free(s);

	s = iasl_disassemble("apic.dat", t.madt);
	cr_assert_not_null(strstr(s, "Multiple APIC Description Table"), "%s", s);
	cr_assert_not_null(strstr(s, "Local Apic ID : 03"), "%s", s);
	cr_assert_null(strstr(s, "Local Apic ID : 04"));
	cr_assert_not_null(strstr(s, "FEC00000"));
	free(s);

	s = iasl_disassemble("mcfg.dat", t.mcfg);
	cr_assert_not_null(strstr(s, "00000000E0000000"), "%s", s);
	free(s);

	rm_tmpdir();
}

/* ---- AML for PCI hot-plug (acpiphp-like): regions, fields, methods, If/While, Notify ---- */

/* a DSDT around an AML body, as iasl wants it: header, then the body; checksum 0 */
static uint8_t *dsdt_wrap(const struct aml *a)
{
	size_t n = 36 + a->len;
	uint32_t len32 = (uint32_t)n, one = 1;
	uint8_t *t = calloc(1, n);

	cr_assert_not_null(t);
	memcpy(t, "DSDT", 4);
	memcpy(t + 4, &len32, 4);
	t[8] = 2;
	memcpy(t + 10, "MINVMM", 6);
	memcpy(t + 16, "HOTPLUG ", 8);
	memcpy(t + 24, &one, 4);
	memcpy(t + 28, "MVMM", 4);
	memcpy(t + 32, &one, 4);
	memcpy(t + 36, a->buf, a->len);
	t[9] = (uint8_t)-sum(t, n);
	return t;
}

/* Device(Sxx) { Name(_ADR, slot << 16) Name(_SUN, slot) Method(_EJ0, 1) { PCEJ(_SUN) } } */
static void hp_slot(struct aml *a, unsigned int slot)
{
	struct aml_blk d, m;
	char name[5];

	snprintf(name, sizeof(name), "S%02X", slot);
	d = aml__device_begin(a, name);
	aml__name(a, "_ADR");
	aml__integer(a, (uint64_t)slot << 16);
	aml__name(a, "_SUN");
	aml__integer(a, slot);
	m = aml__method_begin(a, "_EJ0", 1, false);
	aml__call(a, "PCEJ");
	aml__name_string(a, "_SUN");
	aml__end(a, m);
	aml__end(a, d);
}

/*
 * Scope(\_SB.PCI0) {
 *   OperationRegion(PCST, SystemIO, 0xAE00, 0x08)
 *   Field(PCST, DWordAcc, NoLock, WriteAsZeros) { PCIU, 32, PCID, 32 }
 *   OperationRegion(SEJ, SystemIO, 0xAE08, 0x04)
 *   Field(SEJ, DWordAcc, NoLock, WriteAsZeros) { B0EJ, 32 }
 *   OperationRegion(HPMM, SystemMemory, 0xFEB00000, 0x10)
 *   Field(HPMM, AnyAcc, Lock, Preserve) { HPST, 8, , 8, HPF1, 1, HPF2, 3, Offset(8), HPSL, 32 }
 *   Method(PCEJ, 1, Serialized) { Store(ShiftLeft(One, Arg0), B0EJ) Return(Zero) }
 *   Device(S01) ... Device(S03)
 *   Method(DVNT, 2) { If (And(Arg0, 1 << slot)) { Notify(Sxx, Arg1) } ... }
 *   Method(PCNT) { DVNT(PCIU, One) DVNT(PCID, 3) }
 *   Method(NBIT, 1) {   // a slot-scan loop: counts the bits set in Arg0 (at most 9)
 *     Store(Zero, Local0) Store(Zero, Local1)
 *     While (LLess(Local0, 32)) {
 *       If (LEqual(And(ShiftRight(Arg0, Local0), One), One)) { Increment(Local1) }
 *       If (LGreater(Local1, 8)) { Break }
 *       Increment(Local0)
 *     }
 *     Return(Local1)
 *   }
 *   Method(CHK2, 2) { If (LAnd(LEqual(Arg0, Zero), LNot(LGreater(Arg1, 5)))) { Return(One) }
 *                     Else { Return(Zero) } }
 *   Method(MATH, 2) {
 *     Add(Arg0, Arg1, Local0) Subtract(Local0, One, Local0) Decrement(Local0)
 *     If (LOr(LEqual(Local0, Zero), LLess(Arg0, Arg1))) { Return(Or(Local0, 0x80)) }
 *     Return(Local0)
 *   }
 * }
 * Scope(\_GPE) { Method(_E01) { \_SB.PCI0.PCNT() } }
 */
static void hp_fragment(struct aml *a)
{
	static const unsigned int slots[] = { 1, 2, 3 };
	struct aml_blk sc, f, m, i, w, e;
	unsigned int k;

	sc = aml__scope_begin(a, "\\_SB");
	f = aml__device_begin(a, "PCI0");
	aml__name(a, "_HID");
	aml__eisaid(a, "PNP0A08");
	aml__end(a, f);
	aml__end(a, sc);

	sc = aml__scope_begin(a, "\\_SB.PCI0");
	aml__operation_region(a, "PCST", AML_SYSTEM_IO, 0xAE00, 0x08);
	f = aml__field_begin(a, "PCST", AML_DWORD_ACC, false, AML_WRITE_AS_ZEROS);
	aml__field_named(a, &f, "PCIU", 32);
	aml__field_named(a, &f, "PCID", 32);
	aml__end(a, f);
	aml__operation_region(a, "SEJ", AML_SYSTEM_IO, 0xAE08, 0x04);
	f = aml__field_begin(a, "SEJ", AML_DWORD_ACC, false, AML_WRITE_AS_ZEROS);
	aml__field_named(a, &f, "B0EJ", 32);
	aml__end(a, f);
	aml__operation_region(a, "HPMM", AML_SYSTEM_MEMORY, 0xFEB00000, 0x10);
	f = aml__field_begin(a, "HPMM", AML_ANY_ACC, true, AML_PRESERVE);
	aml__field_named(a, &f, "HPST", 8);
	aml__field_reserved(a, &f, 8);
	aml__field_named(a, &f, "HPF1", 1);
	aml__field_named(a, &f, "HPF2", 3);
	aml__field_offset(a, &f, 8);
	aml__field_named(a, &f, "HPSL", 32);
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

	for (k = 0; k < ARRAY_SIZE(slots); k++)
		hp_slot(a, slots[k]);

	m = aml__method_begin(a, "DVNT", 2, false);
	for (k = 0; k < ARRAY_SIZE(slots); k++) {
		char name[5];

		snprintf(name, sizeof(name), "S%02X", slots[k]);
		i = aml__if_begin(a);
		aml__and(a);
		aml__arg(a, 0);
		aml__integer(a, 1ULL << slots[k]);
		aml__no_target(a);
		aml__notify(a);
		aml__name_string(a, name);
		aml__arg(a, 1);
		aml__end(a, i);
	}
	aml__end(a, m);

	m = aml__method_begin(a, "PCNT", 0, false);
	aml__call(a, "DVNT");
	aml__name_string(a, "PCIU");
	aml__integer(a, 1); /* device check */
	aml__call(a, "DVNT");
	aml__name_string(a, "PCID");
	aml__integer(a, 3); /* eject request */
	aml__end(a, m);

	m = aml__method_begin(a, "NBIT", 1, false);
	aml__store(a);
	aml__integer(a, 0);
	aml__local(a, 0);
	aml__store(a);
	aml__integer(a, 0);
	aml__local(a, 1);
	w = aml__while_begin(a);
	aml__lless(a);
	aml__local(a, 0);
	aml__integer(a, 32);
	i = aml__if_begin(a);
	aml__lequal(a);
	aml__and(a);
	aml__shift_right(a);
	aml__arg(a, 0);
	aml__local(a, 0);
	aml__no_target(a);
	aml__integer(a, 1);
	aml__no_target(a);
	aml__integer(a, 1);
	aml__increment(a);
	aml__local(a, 1);
	aml__end(a, i);
	i = aml__if_begin(a);
	aml__lgreater(a);
	aml__local(a, 1);
	aml__integer(a, 8);
	aml__break(a);
	aml__end(a, i);
	aml__increment(a);
	aml__local(a, 0);
	aml__end(a, w);
	aml__return(a);
	aml__local(a, 1);
	aml__end(a, m);

	m = aml__method_begin(a, "CHK2", 2, false);
	i = aml__if_begin(a);
	aml__land(a);
	aml__lequal(a);
	aml__arg(a, 0);
	aml__integer(a, 0);
	aml__lnot(a);
	aml__lgreater(a);
	aml__arg(a, 1);
	aml__integer(a, 5);
	aml__return(a);
	aml__integer(a, 1);
	aml__end(a, i);
	e = aml__else_begin(a);
	aml__return(a);
	aml__integer(a, 0);
	aml__end(a, e);
	aml__end(a, m);

	m = aml__method_begin(a, "MATH", 2, false);
	aml__add(a);
	aml__arg(a, 0);
	aml__arg(a, 1);
	aml__local(a, 0);
	aml__subtract(a);
	aml__local(a, 0);
	aml__integer(a, 1);
	aml__local(a, 0);
	aml__decrement(a);
	aml__local(a, 0);
	i = aml__if_begin(a);
	aml__lor(a);
	aml__lequal(a);
	aml__local(a, 0);
	aml__integer(a, 0);
	aml__lless(a);
	aml__arg(a, 0);
	aml__arg(a, 1);
	aml__return(a);
	aml__or(a);
	aml__local(a, 0);
	aml__integer(a, 0x80);
	aml__no_target(a);
	aml__end(a, i);
	aml__return(a);
	aml__local(a, 0);
	aml__end(a, m);
	aml__end(a, sc);

	sc = aml__scope_begin(a, "\\_GPE");
	m = aml__method_begin(a, "_E01", 0, false);
	aml__call(a, "\\_SB.PCI0.PCNT");
	aml__end(a, m);
	aml__end(a, sc);
}

static uint8_t *hp_table(void)
{
	struct aml a;
	uint8_t *t;

	aml__init(&a);
	hp_fragment(&a);
	cr_assert_eq(aml__error(&a), 0);
	t = dsdt_wrap(&a);
	aml__free(&a);
	return t;
}

static void assert_has(const char *s, const char *want)
{
	cr_assert_not_null(strstr(s, want), "no \"%s\" in the disassembly:\n%s", want, s);
}

Test(acpi_iasl, hotplug_aml_disassembles)
{
	static const char *const asl[] = {
		"Scope (\\_SB.PCI0)",
		"OperationRegion (PCST, SystemIO, 0xAE00, 0x08)",
		"Field (PCST, DWordAcc, NoLock, WriteAsZeros)",
		"PCIU,   32",
		"PCID,   32",
		"OperationRegion (SEJ, SystemIO, 0xAE08, 0x04)",
		"Field (SEJ, DWordAcc, NoLock, WriteAsZeros)",
		"B0EJ,   32",
		"OperationRegion (HPMM, SystemMemory, 0xFEB00000, 0x10)",
		"Field (HPMM, AnyAcc, Lock, Preserve)",
		"HPST,   8",
		"Offset (0x02)", /* the 8 reserved bits */
		"HPF1,   1",
		"HPF2,   3",
		"Offset (0x08)",
		"HPSL,   32",
		"Method (PCEJ, 1, Serialized)",
		"Device (S01)",
		"Name (_ADR, 0x00010000)",
		"Name (_SUN, One)",
		"Device (S03)",
		"Name (_ADR, 0x00030000)",
		"Name (_SUN, 0x03)",
		"Method (_EJ0, 1, NotSerialized)",
		"PCEJ (_SUN)",
		"Method (DVNT, 2, NotSerialized)",
		"Notify (S01, Arg1)",
		"Notify (S02, Arg1)",
		"Notify (S03, Arg1)",
		"Method (PCNT, 0, NotSerialized)",
		"DVNT (PCIU, One)",
		"DVNT (PCID, 0x03)",
		"Method (NBIT, 1, NotSerialized)",
		"Method (CHK2, 2, NotSerialized)",
		"Else",
		"Method (MATH, 2, NotSerialized)",
		"Scope (\\_GPE)",
		"Method (_E01, 0, NotSerialized)",
		"\\_SB.PCI0.PCNT ()",
	};
	/* legacy ASL (-dl) names every operator */
	static const char *const legacy[] = {
		"Store (ShiftLeft (One, Arg0), B0EJ)",
		"Return (Zero)",
		"If (And (Arg0, 0x02))",
		"If (And (Arg0, 0x04))",
		"If (And (Arg0, 0x08))",
		"Store (Zero, Local0)",
		"While (LLess (Local0, 0x20))",
		"If (LEqual (And (ShiftRight (Arg0, Local0), One), One))",
		"Increment (Local1)",
		"If (LGreater (Local1, 0x08))",
		"Break",
		"Increment (Local0)",
		"Return (Local1)",
		"If (LAnd (LEqual (Arg0, Zero), LLessEqual (Arg1, 0x05)))", /* LNot(LGreater) */
		"Add (Arg0, Arg1, Local0)",
		"Subtract (Local0, One, Local0)",
		"Decrement (Local0)",
		"If (LOr (LEqual (Local0, Zero), LLess (Arg0, Arg1)))",
		"Return (Or (Local0, 0x80))",
	};
	uint8_t *t = hp_table();
	unsigned int k;
	char *s;

	strcpy(tmpdir, "/tmp/minivmm-aml-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	s = iasl_disassemble("hp.dat", t);
	for (k = 0; k < ARRAY_SIZE(asl); k++)
		assert_has(s, asl[k]);
	cr_assert_null(strstr(s, "External"), "every name resolves inside the table:\n%s", s);
	free(s);
	s = iasl_disassemble_opt("-dl", "hpl.dat", t);
	for (k = 0; k < ARRAY_SIZE(legacy); k++)
		assert_has(s, legacy[k]);
	free(s);
	free(t);
	rm_tmpdir();
}

/*
 * Compiling the (legacy ASL) disassembly back, without iasl's optimizations,
 * gives our bytes exactly: every PkgLength, name and field encoding is the
 * canonical one.
 */
Test(acpi_iasl, hotplug_aml_round_trips)
{
	uint8_t *t = hp_table(), *back;
	uint32_t n = rd32(t + 4);
	char cmd[256], path[160];
	FILE *f;
	long m;
	int st;

	strcpy(tmpdir, "/tmp/minivmm-aml-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	free(iasl_disassemble_opt("-dl", "hp.dat", t));
	snprintf(cmd, sizeof(cmd), "cd %s && iasl -oa -p rt hp.dsl > rt.log 2>&1", tmpdir);
	st = system(cmd);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "iasl cannot compile the disassembly (see %s/rt.log)", tmpdir);
	snprintf(path, sizeof(path), "%s/rt.aml", tmpdir);
	f = fopen(path, "rb");
	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	m = ftell(f);
	fseek(f, 0, SEEK_SET);
	cr_assert_eq(m, (long)n, "recompiled DSDT is %ld bytes, ours %u", m, n);
	back = malloc(n);
	cr_assert_not_null(back);
	cr_assert_eq(fread(back, 1, n, f), n);
	fclose(f);
	for (uint32_t i = 36; i < n; i++)
		cr_assert_eq(back[i], t[i], "AML byte %u: iasl 0x%02x, ours 0x%02x", i - 36,
			     back[i], t[i]);
	free(back);
	free(t);
	rm_tmpdir();
}

/* ---- the machine's PCI hot-plug AML and GPE0 block (x86_acpi_config.hotplug_port) ---- */

#define HP_PORT 0x0cc4 /* X86_HOTPLUG_PORT */
#define GPE0_PORT 0x0620 /* X86_GPE0_PORT */

static struct x86_acpi_config cfg_hp(unsigned int nr)
{
	struct x86_acpi_config c = cfg(nr);

	c.hotplug_port = HP_PORT;
	c.gpe0_port = GPE0_PORT;
	return c;
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (n--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/*
 * Without hot-plug (no --api) the DSDT and FADT are byte for byte those of
 * the machine before hot-plug existed: these digests were taken from that build.
 * Update them only for a deliberate change of the machine's tables.
 */
Test(acpi, hotplug_off_tables_unchanged)
{
	struct x86_acpi_config c = cfg(1);
	struct tables t = build(&c);
	uint32_t n = rd32(t.dsdt + 4);
	uint8_t *dsdt0;

	cr_assert_eq(n, 1915, "DSDT length %u", n);
	cr_assert_eq(fnv1a(t.dsdt, n), 0x19c2a3829a07c78dULL, "the DSDT changed");
	cr_assert_eq(fnv1a(t.fadt, 276), 0x39d1d1b67aeb1975ULL, "the FADT changed");
	cr_assert_eq(t.used, 2587, "the tables' size changed");
	cr_assert_eq(rd32(t.fadt + 80), 0, "no GPE0_BLK");
	cr_assert_eq(t.fadt[92], 0, "GPE0_BLK_LEN 0");
	cr_assert_eq(rd64(t.fadt + 224), 0, "no X_GPE0_BLK");
	cr_assert(!memmem_has(t.dsdt, n, "PCNT", 4));
	cr_assert(!memmem_has(t.dsdt, n, "_GPE", 4));

	/* byte-compare: the field 0 gives the DSDT the field's absence gives */
	dsdt0 = malloc(n);
	cr_assert_not_null(dsdt0);
	memcpy(dsdt0, t.dsdt, n);
	c.hotplug_port = 0;
	c.gpe0_port = 0;
	t = build(&c);
	cr_assert_eq(rd32(t.dsdt + 4), n);
	cr_assert(!memcmp(t.dsdt, dsdt0, n));
	/* and turning hot-plug on changes the DSDT only by additions */
	c = cfg_hp(1);
	t = build(&c);
	cr_assert_gt(rd32(t.dsdt + 4), n + 1000, "31 slot devices and their methods");
	free(dsdt0);
}

Test(acpi, hotplug_fadt_gpe0_block)
{
	struct x86_acpi_config c = cfg_hp(2);
	struct tables t = build(&c);
	const uint8_t *f = t.fadt;
	uint32_t n = rd32(t.dsdt + 4);

	cr_assert_eq(rd32(f + 80), GPE0_PORT, "GPE0_BLK");
	cr_assert_eq(f[92], 4, "GPE0_BLK_LEN: 2 status + 2 enable bytes");
	cr_assert_eq(rd32(f + 84), 0, "no GPE1_BLK");
	/* X_GPE0_BLK: system I/O, 32 bits, byte access */
	cr_assert_eq(f[220], 1);
	cr_assert_eq(f[221], 32);
	cr_assert_eq(f[222], 0);
	cr_assert_eq(f[223], 1);
	cr_assert_eq(rd64(f + 224), GPE0_PORT);
	/* the rest of the FADT as without hot-plug */
	cr_assert_eq(rd32(f + 56), 0x600);
	cr_assert_eq(rd16(f + 46), 9);
	cr_assert(memmem_has(t.dsdt, n, "PCST", 4));
	cr_assert(memmem_has(t.dsdt, n, "B0EJ", 4));
	cr_assert(memmem_has(t.dsdt, n, "_E01", 4));
	cr_assert(memmem_has(t.dsdt, n, "S1F_", 4));
	cr_assert(!memmem_has(t.dsdt, n, "S00_", 4), "slot 0 is the host bridge");
}

Test(acpi, hotplug_rejects_bad_config)
{
	struct x86_acpi_config c = cfg_hp(1);
	uint64_t rsdp;
	size_t used;

	c.gpe0_port = 0;
	cr_assert_eq(x86_acpi__build_tables(tbuf, LEN, BASE, &c, &rsdp, &used), -EINVAL,
		     "_E01 needs a GPE0 block");
	c = cfg_hp(1);
	c.hotplug_port = HP_PORT + 2;
	cr_assert_eq(x86_acpi__build_tables(tbuf, LEN, BASE, &c, &rsdp, &used), -EINVAL);
	c = cfg_hp(1);
	c.hotplug_port = 0xfff8;
	cr_assert_eq(x86_acpi__build_tables(tbuf, LEN, BASE, &c, &rsdp, &used), -EINVAL);
	c = cfg_hp(1);
	c.gpe0_port = HP_PORT + 8;
	cr_assert_eq(x86_acpi__build_tables(tbuf, LEN, BASE, &c, &rsdp, &used), -EINVAL);
	c = cfg_hp(1);
	c.gpe0_port = 0xfffe;
	cr_assert_eq(x86_acpi__build_tables(tbuf, LEN, BASE, &c, &rsdp, &used), -EINVAL);
}

Test(acpi_iasl, hotplug_dsdt_disassembles)
{
	static const char *const asl[] = {
		"OperationRegion (PCST, SystemIO, 0x0CC4, 0x10)",
		"Field (PCST, DWordAcc, NoLock, WriteAsZeros)",
		"PCIU,   32",
		"PCID,   32",
		"B0EJ,   32",
		"PCRM,   32",
		"Method (PCEJ, 1, Serialized)",
		"Device (S01)",
		"Name (_ADR, 0x00010000)",
		"Name (_SUN, One)",
		"Device (S1F)",
		"Name (_ADR, 0x001F0000)",
		"Name (_SUN, 0x1F)",
		"Method (_EJ0, 1, NotSerialized)",
		"PCEJ (_SUN)",
		"Method (DVNT, 2, NotSerialized)",
		"Notify (S01, Arg1)",
		"Notify (S1F, Arg1)",
		"Method (PCNT, 0, Serialized)",
		"DVNT (PCIU, One)",
		"DVNT (PCID, 0x03)",
		"Scope (\\_GPE)",
		"Method (_E01, 0, NotSerialized)",
		"\\_SB.PCI0.PCNT ()",
		"PNP0A08",
		"_S5_",
	};
	static const char *const legacy[] = {
		"Store (ShiftLeft (One, Arg0), B0EJ)",
		"If (And (Arg0, 0x02))",
		"If (And (Arg0, 0x80000000))",
	};
	struct x86_acpi_config c = cfg_hp(2);
	struct tables t;
	unsigned int k, ndev = 0;
	const char *p;
	char *s;

	strcpy(tmpdir, "/tmp/minivmm-acpi-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	t = build(&c);
	s = iasl_disassemble("dsdt.dat", t.dsdt);
	for (k = 0; k < ARRAY_SIZE(asl); k++)
		assert_has(s, asl[k]);
	cr_assert_null(strstr(s, "External"), "every name resolves inside the table:\n%s", s);
	cr_assert_null(strstr(s, "Device (S00)"));
	for (p = s; (p = strstr(p, "Method (_EJ0, 1")); p++)
		ndev++;
	cr_assert_eq(ndev, 31, "one _EJ0 per slot 1..31, got %u", ndev);
	free(s);
	{
		char cmd[256];
		int st;

		snprintf(cmd, sizeof(cmd), "cd %s && iasl -p recompiled dsdt.dsl > recompile.log 2>&1",
			 tmpdir);
		st = system(cmd);
		cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
			  "iasl cannot recompile the hot-plug DSDT (see %s/recompile.log)", tmpdir);
	}
	s = iasl_disassemble_opt("-dl", "dsdtl.dat", t.dsdt);
	for (k = 0; k < ARRAY_SIZE(legacy); k++)
		assert_has(s, legacy[k]);
	free(s);
	s = iasl_disassemble("facp.dat", t.fadt);
	assert_has(s, "GPE0 Block Address : 00000620");
	assert_has(s, "GPE0 Block Length : 04");
	free(s);
	rm_tmpdir();
}
