/* SPDX-License-Identifier: MIT */
/*
 * counter: a guest whose whole state a snapshot must carry (tests/kvm/snapshot.sh).
 *
 * It runs `steps=N` steps (default 60), each about `ticks=T` LAPIC timer
 * ticks long (default 5 ticks of 10 ms). A step advances a 64-bit generator
 * x, writes x into one page of a 16 MiB buffer at 32 MiB (`burst=B` pages,
 * x+0..x+B-1, default 1: a guest that dirties memory faster than a
 * migration's pre-copy sends it; the pages depend on the step) and reports
 * "counter step=S x=X". So a restored guest that
 * lost its registers, its RAM, its LAPIC timer or its interrupt state stops,
 * goes back, or ends with a wrong result. At the end it replays the whole
 * sequence from the start, compares every page and x with what it has,
 * reports "counter: PASS" and exits 0 (or says what differs and exits 1).
 * (No FPU or SSE: this machine's nested KVM emulates guest ring 0 and its
 * emulator has neither; the XSAVE state is exercised by the lab's Linux
 * guests.)
 */
#include "tiny.h"

int main(const uint8_t *bp);

#define BUF ((volatile uint64_t *)0x2000000ULL) /* 32 MiB */
#define BUF_PAGES 4096u                         /* 16 MiB */
#define WORDS_PER_PAGE 512u

static uint64_t next_x(uint64_t x, unsigned int step)
{
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x + step;
}

static unsigned int page_of(unsigned int step)
{
	return (step * 7919u) % BUF_PAGES;
}

static uint64_t expect[BUF_PAGES];

int main(const uint8_t *bp)
{
	char arg[16];
	unsigned int steps = 60, per = 5, burst = 1, s, p, k, bad = 0;
	uint64_t x = 0x9e3779b97f4a7c15ULL, rx, sum = 0, t0;

	(void)bp;
	if (cmdline_get("steps", arg, sizeof(arg)) >= 0)
		steps = (unsigned int)strtoul_tiny(arg, NULL, 10);
	if (cmdline_get("ticks", arg, sizeof(arg)) >= 0)
		per = (unsigned int)strtoul_tiny(arg, NULL, 10);
	if (cmdline_get("burst", arg, sizeof(arg)) >= 0)
		burst = (unsigned int)strtoul_tiny(arg, NULL, 10);
	if (!burst || burst > BUF_PAGES)
		burst = 1;
	intr_init();
	timer_start(10000);
	report("counter: %u steps of %u ticks", steps, per);
	for (s = 1; s <= steps; s++) {
		x = next_x(x, s);
		for (k = 0; k < burst; k++) {
			p = page_of((s - 1) * burst + k + 1);
			BUF[p * WORDS_PER_PAGE] = x + k;
			BUF[p * WORDS_PER_PAGE + WORDS_PER_PAGE - 1] = ~(x + k);
		}
		t0 = ticks;
		while (ticks - t0 < per)
			wait_intr();
		report("counter step=%u x=0x%llx", s, (unsigned long long)x);
	}
	/* the replay */
	rx = 0x9e3779b97f4a7c15ULL;
	for (s = 1; s <= steps; s++) {
		rx = next_x(rx, s);
		for (k = 0; k < burst; k++)
			expect[page_of((s - 1) * burst + k + 1)] = rx + k;
		sum += rx;
	}
	for (p = 0; p < BUF_PAGES; p++) {
		uint64_t a = BUF[p * WORDS_PER_PAGE], b = BUF[p * WORDS_PER_PAGE + WORDS_PER_PAGE - 1];

		if (a != expect[p] || (expect[p] && b != ~expect[p]) || (!expect[p] && b)) {
			if (bad++ < 4)
				report("counter: FAIL page %u holds 0x%llx/0x%llx, expected 0x%llx", p,
				       (unsigned long long)a, (unsigned long long)b,
				       (unsigned long long)expect[p]);
		}
	}
	if (x != rx) {
		report("counter: FAIL x 0x%llx, replay 0x%llx", (unsigned long long)x, (unsigned long long)rx);
		bad++;
	}
	if (bad)
		return 1;
	report("counter: PASS steps=%u sum=0x%llx", steps, (unsigned long long)sum);
	return 0;
}
