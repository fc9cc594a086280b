/* SPDX-License-Identifier: MIT */
/*
 * bootinfo: reports what the VMM put in boot_params (e820 map, command line)
 * and checks the map is sane: RAM at 0 and at 1 MiB, no overlaps, our own
 * image inside RAM, and total RAM matching mem_expect=<MiB> from the cmdline.
 */
#include "tiny.h"

int main(const uint8_t *bp);

extern char __image_start[], __image_end[];

static bool in_ram(const struct e820_entry *e, int n, uint64_t a, uint64_t len)
{
	for (int i = 0; i < n; i++)
		if (e[i].type == 1 && e[i].addr <= a && a + len <= e[i].addr + e[i].size)
			return true;
	return false;
}

int main(const uint8_t *bp)
{
	const struct e820_entry *e = (const void *)(bp + BP_E820_TABLE);
	int n = bp[BP_E820_ENTRIES], bad = 0;
	uint64_t total = 0, below4g = 0;
	const char *cmdline = bp_cmdline();
	char val[32];

	report("bootinfo: boot_params=%p magic=0x%x", (const void *)bp, inl(TESTDEV_PORT_MAGIC));
	if (inl(TESTDEV_PORT_MAGIC) != TESTDEV_MAGIC) {
		report("FAIL testdev magic");
		bad++;
	}
	report("e820_count=%d", n);
	if (n <= 0 || n > BP_E820_MAX) {
		report("FAIL e820 count %d", n);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		report("e820 %d addr=0x%lx size=0x%lx type=%u", i, e[i].addr, e[i].size, e[i].type);
		if (!e[i].size || e[i].type < 1 || e[i].type > 5 || e[i].addr + e[i].size < e[i].addr) {
			report("FAIL e820 %d malformed", i);
			bad++;
		}
		for (int j = 0; j < i; j++) {
			if (e[i].addr < e[j].addr + e[j].size && e[j].addr < e[i].addr + e[i].size) {
				report("FAIL e820 %d overlaps %d", i, j);
				bad++;
			}
		}
		if (e[i].type == 1) {
			total += e[i].size;
			if (e[i].addr < (4ull << 30))
				below4g += e[i].size;
		}
	}
	report("ram_total=0x%lx ram_total_kib=%lu", total, total >> 10);
	if (!in_ram(e, n, 0, 0x1000)) {
		report("FAIL no RAM at 0");
		bad++;
	}
	if (!in_ram(e, n, 0x100000, 0x100000)) {
		report("FAIL no RAM at 1 MiB");
		bad++;
	}
	if (!in_ram(e, n, (uint64_t)(uintptr_t)__image_start,
		    (uint64_t)(__image_end - __image_start))) {
		report("FAIL image 0x%p-0x%p not in RAM", (void *)__image_start, (void *)__image_end);
		bad++;
	}
	if (!in_ram(e, n, (uint64_t)(uintptr_t)bp, 0x1000)) {
		report("FAIL boot_params not in RAM");
		bad++;
	}

	report("cmdline=%s", cmdline);
	report("cmdline_len=%d", (int)strlen(cmdline));
	if (cmdline_get("mem_expect", val, sizeof(val)) > 0) {
		uint64_t want = (uint64_t)strtoul_tiny(val, NULL, 10) << 20;

		/* the legacy hole (0xA0000-0xFFFFF) and firmware areas may be taken out */
		if (total > want || total + (1ull << 20) < want) {
			report("FAIL ram total 0x%lx, expected about 0x%lx", total, want);
			bad++;
		} else {
			report("mem_check=ok expected_mib=%lu", want >> 20);
		}
	}
	if (cmdline_get("hello", val, sizeof(val)) >= 0)
		report("hello=%s", val);
	report("bootinfo %s", bad ? "FAIL" : "PASS");
	return bad ? 1 : 0;
}
