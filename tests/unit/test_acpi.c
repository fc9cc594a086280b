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

static char *iasl_disassemble(const char *base, const void *table)
{
	char cmd[512], path[160];
	char *text;
	FILE *f;
	long n;
	int st;

	write_file(base, table, rd32(table + 4));
	snprintf(cmd, sizeof(cmd), "cd %s && iasl -d %s > %s.log 2>&1", tmpdir, base, base);
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
