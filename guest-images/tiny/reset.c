/* SPDX-License-Identifier: MIT */
/*
 * reset: asks the i8042 for a CPU reset (outb 0xFE to port 0x64); with
 * "poweroff" on the command line it writes the ACPI PM1a sleep command
 * (SLP_TYP 5 | SLP_EN) to port 0x604 instead. Either way the VMM must stop
 * the guest; if we are still running afterwards the guest exits with 1.
 * With "triplefault" it loads an empty IDT and traps: the VMM must treat the
 * shutdown as a reset and log the vCPU state. With "hang" it idles forever (sti; hlt) so that a test can stop the VMM
 * from outside with a signal. With "spin" it burns its vCPU forever (no exit at
 * all): how much CPU the vCPU thread uses tells whether it runs (the pause test).
 */
#include "tiny.h"

int main(const uint8_t *bp);

int main(const uint8_t *bp)
{
	(void)bp;
	intr_init();
	timer_start(10000);
	if (cmdline_has("spin")) {
		report("reset: spinning");
		for (;;)
			__asm__ volatile("pause");
	}
	if (cmdline_has("hang")) {
		report("reset: hanging");
		for (;;)
			wait_intr();
	}
	if (cmdline_has("triplefault")) {
		/* an empty IDT: the breakpoint cannot be delivered -> #DF -> shutdown */
		static const struct {
			uint16_t limit;
			uint64_t base;
		} __attribute__((packed)) empty_idt = { 0, 0 };

		report("reset: triple fault");
		__asm__ volatile("lidt %0; int3" : : "m"(empty_idt));
	}
	if (cmdline_has("poweroff")) {
		report("reset: requesting ACPI poweroff");
		outw(0x604, (5u << 10) | (1u << 13));
	} else {
		report("reset: requesting i8042 reset");
		outb(0x64, 0xfe);
	}
	/* a real CPU would be gone; give the VMM two seconds to act */
	while (ticks < 200)
		wait_intr();
	report("reset: FAIL still running");
	return 1;
}
