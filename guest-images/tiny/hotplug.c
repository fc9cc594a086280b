/* SPDX-License-Identifier: MIT */
/*
 * hotplug: the guest side of the ACPI PCI hot-plug controller
 * (devices/hotplug.h), without a controller request behind it. Finds the
 * FADT and DSDT, then:
 *  - with "expect=present" (minivmm --api): the FADT names the GPE0 block,
 *    the DSDT holds the hot-plug AML (PCST, PCNT, _E01), and the registers
 *    read PCIU = PCID = B0EJ = 0, PCRM = slots 1..31, GPE0 = 0 at boot; an
 *    eject (B0EJ) of a slot nobody asked to eject changes nothing; then the
 *    guest hammers both blocks with random widths, offsets and values and
 *    checks that no request, GPE status or SCI state appeared;
 *  - with "expect=absent": no GPE0 block, no hot-plug AML, the ports unclaimed.
 * Reports "hotplug: PASS" and exits 0 when everything held.
 *
 * With "serve=eject" or "serve=ignore" (after the checks above) it then
 * serves the controller as Linux's acpiphp would, by polling instead of the
 * SCI, until minivmm stops it (the control socket's quit): each PCIU bit
 * is reported with the new function's IDs ("hotplug inserted slot=N
 * id=0xDDDDVVVV"), each new PCID bit as "hotplug eject-request slot=N";
 * serve=eject then writes B0EJ and reports "hotplug gone slot=N" once the
 * slot reads all-ones, serve=ignore never ejects and reports "hotplug
 * request-withdrawn slot=N id=..." when minivmm gives up (the deadline),
 * with the function's IDs read then: the device is still there.
 */
#include "tiny.h"

int main(const uint8_t *bp);

#define HP_PORT 0x0cc4   /* X86_HOTPLUG_PORT */
#define HP_LEN 0x10
#define GPE0_PORT 0x0620 /* X86_GPE0_PORT */
#define GPE0_LEN 4
#define PCIU (HP_PORT + 0x0)
#define PCID (HP_PORT + 0x4)
#define B0EJ (HP_PORT + 0x8)
#define PCRM (HP_PORT + 0xc)

static int bad;

#define FAIL(...)                            \
	do {                                 \
		report("FAIL " __VA_ARGS__); \
		bad++;                       \
	} while (0)

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static bool has(const uint8_t *p, uint32_t n, const char *s)
{
	size_t l = strlen(s);

	for (uint32_t i = 0; i + l <= n; i++)
		if (!memcmp(p + i, s, l))
			return true;
	return false;
}

static const uint8_t *find_fadt(void)
{
	const uint8_t *rsdp = NULL, *xsdt;
	uint32_t n;

	for (uint64_t a = 0xE0000; a < 0x100000; a += 16) {
		if (!memcmp((const void *)a, "RSD PTR ", 8)) {
			rsdp = (const uint8_t *)a;
			break;
		}
	}
	if (!rsdp)
		return NULL;
	xsdt = (const uint8_t *)rd64(rsdp + 24);
	n = (rd32(xsdt + 4) - 36) / 8;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *t = (const uint8_t *)rd64(xsdt + 36 + 8 * i);

		if (!memcmp(t, "FACP", 4))
			return t;
	}
	return NULL;
}

static uint32_t xs = 0x12345678;

static uint32_t rnd(void)
{
	xs ^= xs << 13;
	xs ^= xs >> 17;
	xs ^= xs << 5;
	return xs;
}

static void check_regs(const char *when)
{
	uint32_t pciu = inl(PCIU), pcid = inl(PCID), b0ej = inl(B0EJ), pcrm = inl(PCRM);
	uint8_t sts0 = inb(GPE0_PORT), sts1 = inb(GPE0_PORT + 1);

	report("hotplug %s pciu=0x%x pcid=0x%x b0ej=0x%x pcrm=0x%x gpe_sts=0x%x", when, pciu, pcid,
	       b0ej, pcrm, sts0 | sts1 << 8);
	if (pciu || pcid || b0ej)
		FAIL("hotplug %s: a request appeared (pciu=0x%x pcid=0x%x b0ej=0x%x)", when, pciu, pcid, b0ej);
	if (pcrm != 0xfffffffe)
		FAIL("hotplug %s: PCRM 0x%x", when, pcrm);
	if (sts0 || sts1)
		FAIL("hotplug %s: GPE0_STS 0x%x", when, sts0 | sts1 << 8);
}

static void hammer(unsigned int n)
{
	unsigned int reads = 0, writes = 0;

	for (unsigned int i = 0; i < n; i++) {
		uint32_t r = rnd(), v = rnd();
		bool gpe = r & 1;
		uint16_t port = (uint16_t)(gpe ? GPE0_PORT + (r >> 1) % GPE0_LEN : HP_PORT + (r >> 1) % HP_LEN);
		unsigned int width = 1u << ((r >> 8) % 3);

		/* never enable a GPE with a stray status: the status cannot be set by the guest anyway */
		if ((r >> 12) & 1) {
			writes++;
			if (width == 1)
				outb(port, (uint8_t)v);
			else if (width == 2)
				outw(port, (uint16_t)v);
			else
				outl(port, v);
		} else {
			reads++;
			if (width == 1)
				(void)inb(port);
			else if (width == 2)
				(void)inw(port);
			else
				(void)inl(port);
		}
	}
	report("hotplug hammer accesses=%u reads=%u writes=%u", n, reads, writes);
}

static uint32_t slot_id(unsigned int slot)
{
	return pci_read32((uint8_t)(slot << 3), 0);
}

static void serve(bool eject)
{
	uint32_t seen = 0; /* PCID bits reported and not ejected */

	report("hotplug serving eject=%d", eject);
	for (;;) {
		uint32_t pciu = inl(PCIU), pcid = inl(PCID), fresh, gone;

		for (unsigned int s = 1; s < 32; s++)
			if (pciu & (1u << s))
				report("hotplug inserted slot=%u id=0x%x", s, slot_id(s));
		fresh = pcid & ~seen;
		gone = seen & ~pcid;
		for (unsigned int s = 1; s < 32; s++) {
			if (gone & (1u << s))
				report("hotplug request-withdrawn slot=%u id=0x%x", s, slot_id(s));
			if (!(fresh & (1u << s)))
				continue;
			report("hotplug eject-request slot=%u id=0x%x", s, slot_id(s));
			if (!eject)
				continue;
			outl(B0EJ, 1u << s);
			for (unsigned int i = 0; i < 2000000 && slot_id(s) != 0xffffffff; i++)
				cpu_relax();
			report("hotplug gone slot=%u id=0x%x", s, slot_id(s));
		}
		seen = eject ? 0 : pcid;
		if (inb(GPE0_PORT) & 2)
			outb(GPE0_PORT, 2); /* GPE0_STS is write-1-to-clear */
		for (unsigned int i = 0; i < 200; i++)
			cpu_relax();
	}
}

int main(const uint8_t *bp)
{
	const uint8_t *fadt, *dsdt;
	char expect[16];
	uint32_t gpe0, gpe0_len, dlen;
	bool dsdt_hp;

	(void)bp;
	if (cmdline_get("expect", expect, sizeof(expect)) < 0) {
		report("FAIL hotplug: no expect= on the command line");
		return 2;
	}
	fadt = find_fadt();
	if (!fadt) {
		report("FAIL hotplug: no FADT");
		return 2;
	}
	gpe0 = rd32(fadt + 80);
	gpe0_len = fadt[92];
	dsdt = (const uint8_t *)(uint64_t)rd32(fadt + 40);
	dlen = rd32(dsdt + 4);
	dsdt_hp = has(dsdt, dlen, "PCST") && has(dsdt, dlen, "PCNT") && has(dsdt, dlen, "_E01") &&
		  has(dsdt, dlen, "B0EJ");
	report("hotplug fadt gpe0=0x%x gpe0_len=%u dsdt_len=%u dsdt_hotplug=%d", gpe0, gpe0_len, dlen,
	       dsdt_hp);

	if (!strncmp(expect, "absent", 7)) {
		uint32_t r = inl(PCIU), g = inl(GPE0_PORT);

		report("hotplug absent pciu=0x%x gpe0=0x%x", r, g);
		if (gpe0 || gpe0_len)
			FAIL("hotplug: a GPE0 block without --api");
		if (dsdt_hp || has(dsdt, dlen, "S1F_"))
			FAIL("hotplug: hot-plug AML without --api");
		if (r != 0xffffffff || g != 0xffffffff)
			FAIL("hotplug: the ports answer without --api");
	} else {
		if (gpe0 != GPE0_PORT || gpe0_len != GPE0_LEN)
			FAIL("hotplug: FADT GPE0 0x%x/%u", gpe0, gpe0_len);
		if (!dsdt_hp || !has(dsdt, dlen, "S1F_"))
			FAIL("hotplug: the DSDT lacks the hot-plug AML");
		check_regs("boot");
		/* an eject nobody asked for: ignored */
		outl(B0EJ, 1u << 5);
		check_regs("after_stray_eject");
		outl(B0EJ, 0xffffffff);
		outl(PCIU, 0xffffffff);
		outl(PCID, 0xffffffff);
		check_regs("after_stray_writes");
		/* serve= runs are about what follows: a short hammering */
		hammer(cmdline_get("serve", expect, sizeof(expect)) >= 0 ? 1000 : 100000);
		check_regs("after_hammer");
		/* GPE0_EN is the guest's; leave it as Linux would find it */
		outw(GPE0_PORT + 2, 0);
		if (inw(GPE0_PORT + 2))
			FAIL("hotplug: GPE0_EN does not clear");
	}
	report("hotplug: failures=%d", bad);
	if (bad)
		return 1;
	report("hotplug: PASS");
	if (cmdline_get("serve", expect, sizeof(expect)) >= 0)
		serve(!strncmp(expect, "eject", 6));
	return 0;
}
