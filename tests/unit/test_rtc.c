// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/rtc.h"
#include "vmm/kvm.h"
#include "vmm/log.h"

static struct vm vm;
static struct rtc *r;

static void setup(void)
{
	cr_assert_eq(kvm__vm_init_fake(&vm, 16 * MiB), 0);
	cr_assert_eq(rtc__create(&vm, 16 * MiB, &r), 0);
}

static void teardown(void)
{
	rtc__destroy(r);
	kvm__vm_destroy(&vm);
}

TestSuite(rtc, .init = setup, .fini = teardown);

static void cmos_write(uint8_t idx, uint8_t v)
{
	cr_assert_eq(bus__dispatch(&vm.pio, 0x70, &idx, 1, true), 0);
	cr_assert_eq(bus__dispatch(&vm.pio, 0x71, &v, 1, true), 0);
}

static uint8_t cmos_read(uint8_t idx)
{
	uint8_t v = 0;

	cr_assert_eq(bus__dispatch(&vm.pio, 0x70, &idx, 1, true), 0);
	cr_assert_eq(bus__dispatch(&vm.pio, 0x71, &v, 1, false), 0);
	return v;
}

static unsigned int bcd(unsigned int v)
{
	return ((v / 10) << 4) | (v % 10);
}

struct clock_regs {
	uint8_t sec, min, hour, wday, mday, mon, year, century;
};

static void read_clock(struct clock_regs *c)
{
	c->sec = cmos_read(RTC_SECONDS);
	c->min = cmos_read(RTC_MINUTES);
	c->hour = cmos_read(RTC_HOURS);
	c->wday = cmos_read(RTC_DAY_OF_WEEK);
	c->mday = cmos_read(RTC_DAY_OF_MONTH);
	c->mon = cmos_read(RTC_MONTH);
	c->year = cmos_read(RTC_YEAR);
	c->century = cmos_read(RTC_CENTURY);
}

/* reads the clock and the host time within the same second */
static void read_clock_now(struct clock_regs *c, struct tm *tm)
{
	int tries;

	for (tries = 0; tries < 5; tries++) {
		time_t t0 = time(NULL), t1;

		read_clock(c);
		t1 = time(NULL);
		if (t0 == t1) {
			gmtime_r(&t0, tm);
			return;
		}
	}
	cr_assert_fail("clock kept changing");
}

Test(rtc, bcd_24h_by_default)
{
	struct clock_regs c;
	struct tm tm;

	cr_assert_eq(cmos_read(RTC_REG_B), RTC_B_24H);
	read_clock_now(&c, &tm);
	cr_assert_eq(c.sec, bcd(tm.tm_sec));
	cr_assert_eq(c.min, bcd(tm.tm_min));
	cr_assert_eq(c.hour, bcd(tm.tm_hour));
	cr_assert_eq(c.wday, tm.tm_wday + 1);
	cr_assert_eq(c.mday, bcd(tm.tm_mday));
	cr_assert_eq(c.mon, bcd(tm.tm_mon + 1));
	cr_assert_eq(c.year, bcd(tm.tm_year % 100));
	cr_assert_eq(c.century, bcd((tm.tm_year + 1900) / 100));
}

Test(rtc, binary_mode)
{
	struct clock_regs c;
	struct tm tm;

	cmos_write(RTC_REG_B, RTC_B_24H | RTC_B_DM_BINARY);
	read_clock_now(&c, &tm);
	cr_assert_eq(c.sec, tm.tm_sec);
	cr_assert_eq(c.min, tm.tm_min);
	cr_assert_eq(c.hour, tm.tm_hour);
	cr_assert_eq(c.mday, tm.tm_mday);
	cr_assert_eq(c.mon, tm.tm_mon + 1);
	cr_assert_eq(c.year, tm.tm_year % 100);
	cr_assert_eq(c.century, (tm.tm_year + 1900) / 100);
}

Test(rtc, twelve_hour_mode)
{
	struct clock_regs c;
	struct tm tm;
	unsigned int h12;

	cmos_write(RTC_REG_B, 0); /* 12 h, BCD */
	read_clock_now(&c, &tm);
	h12 = tm.tm_hour % 12 ? tm.tm_hour % 12 : 12;
	cr_assert_eq(c.hour, bcd(h12) | (tm.tm_hour >= 12 ? 0x80 : 0));
}

Test(rtc, set_the_clock)
{
	struct clock_regs c;

	cmos_write(RTC_REG_B, RTC_B_24H | RTC_B_SET);
	cmos_write(RTC_SECONDS, 0x30);
	cmos_write(RTC_MINUTES, 0x59);
	cmos_write(RTC_HOURS, 0x23);
	cmos_write(RTC_DAY_OF_MONTH, 0x31);
	cmos_write(RTC_MONTH, 0x12);
	cmos_write(RTC_YEAR, 0x99);
	cmos_write(RTC_CENTURY, 0x19);
	cr_assert_eq(cmos_read(RTC_YEAR), 0x99, "SET holds the written values");
	cmos_write(RTC_REG_B, RTC_B_24H);
	cr_assert_lt(r->offset, 0, "1999 is in the past");
	read_clock(&c);
	cr_assert_eq(c.century, 0x19);
	cr_assert_eq(c.year, 0x99);
	cr_assert_eq(c.mon, 0x12);
	cr_assert_eq(c.mday, 0x31);
	cr_assert_eq(c.wday, 6, "Friday");
	cr_assert_eq(c.hour, 0x23);
	cr_assert_eq(c.min, 0x59);
	cr_assert_geq(c.sec, 0x30);

	/* one register written while running moves only that field */
	cmos_write(RTC_YEAR, 0x98);
	cr_assert_eq(cmos_read(RTC_YEAR), 0x98);
	cr_assert_eq(cmos_read(RTC_MONTH), 0x12);
}

Test(rtc, nmi_bit_ignored_in_index)
{
	cmos_write(0x80 | 0x40, 0x5a);
	cr_assert(r->nmi_disabled);
	cr_assert_eq(cmos_read(0x40), 0x5a);
	cr_assert_not(r->nmi_disabled);
	cr_assert_eq(cmos_read(0x80 | RTC_REG_D), RTC_D_VRT);
	cr_assert_eq(r->index, RTC_REG_D);
}

Test(rtc, registers_a_and_d)
{
	cr_assert_eq(cmos_read(RTC_REG_A) & RTC_A_UIP, 0);
	cmos_write(RTC_REG_A, 0xa6);
	cr_assert_eq(cmos_read(RTC_REG_A), 0x26, "UIP is never set");
	cmos_write(RTC_REG_D, 0x00);
	cr_assert_eq(cmos_read(RTC_REG_D), 0x80, "VRT always set");
}

Test(rtc, register_c_clears_on_read)
{
	uint8_t c;

	(void)cmos_read(RTC_REG_C);
	cmos_write(RTC_REG_B, RTC_B_24H | RTC_B_UIE);
	usleep(1100 * 1000);
	c = cmos_read(RTC_REG_C);
	cr_assert_eq(c, RTC_C_UF | RTC_C_IRQF, "an update ended, and UIE is set");
	c = cmos_read(RTC_REG_C);
	if (c) /* a second boundary between the two reads */
		c = cmos_read(RTC_REG_C);
	cr_assert_eq(c, 0, "read cleared it");
	cmos_write(RTC_REG_C, 0xff);
	cr_assert_eq(cmos_read(RTC_REG_C) & ~RTC_C_UF, 0, "read-only");
}

Test(rtc, cmos_ram)
{
	unsigned int i;

	for (i = 0x40; i < 0x80; i++)
		cmos_write((uint8_t)i, (uint8_t)(i ^ 0xa5));
	for (i = 0x40; i < 0x80; i++)
		cr_assert_eq(cmos_read((uint8_t)i), (uint8_t)(i ^ 0xa5));
}

Test(rtc, memory_size_bytes)
{
	struct rtc *r2;

	/* 16 MiB: nothing above 16 MiB, 15 MiB above 1 MiB */
	cr_assert_eq(cmos_read(0x34), 0);
	cr_assert_eq(cmos_read(0x35), 0);
	cr_assert_eq(cmos_read(0x30) | cmos_read(0x31) << 8, 15 * 1024);
	cr_assert_eq(cmos_read(0x15) | cmos_read(0x16) << 8, 640);
	rtc__destroy(r);
	r = NULL;

	/* 6 GiB: 3 GiB below the hole, 3 GiB above 4 GiB */
	cr_assert_eq(rtc__create(&vm, 6 * GiB, &r2), 0);
	r = r2;
	cr_assert_eq(cmos_read(0x34) | cmos_read(0x35) << 8, (3 * GiB - 16 * MiB) / (64 * KiB));
	cr_assert_eq(cmos_read(0x5b) | cmos_read(0x5c) << 8 | cmos_read(0x5d) << 16,
		     3 * GiB / (64 * KiB));
	cr_assert_eq(cmos_read(0x30) | cmos_read(0x31) << 8, 0xffff);
	rtc__destroy(r);
	r = NULL;

	cr_assert_eq(rtc__create(&vm, 1 * GiB, &r2), 0);
	r = r2;
	cr_assert_eq(cmos_read(0x34) | cmos_read(0x35) << 8, 0x3f00);
	cr_assert_eq(cmos_read(0x5b) | cmos_read(0x5c) | cmos_read(0x5d), 0);
}

Test(rtc, word_access_and_junk)
{
	uint8_t d[4] = { 0x41, 0x77, 0, 0 };
	unsigned int i;

	/* outw 0x70: index then data */
	cr_assert_eq(bus__dispatch(&vm.pio, 0x70, d, 2, true), 0);
	cr_assert_eq(cmos_read(0x41), 0x77);
	cr_assert_eq(bus__dispatch(&vm.pio, 0x70, d, 4, true), -ENOENT);

	log__set_level(LOG_ERR);
	for (i = 0; i < 0x100; i++) {
		cmos_write((uint8_t)i, (uint8_t)(i * 13));
		(void)cmos_read((uint8_t)i);
	}
	log__set_level(LOG_INFO);
	cmos_write(RTC_REG_B, RTC_B_24H);
	cr_assert_eq(cmos_read(RTC_REG_D), RTC_D_VRT);
	d[0] = 0xff;
	cr_assert_eq(bus__dispatch(&vm.pio, 0x70, d, 1, false), 0);
	cr_assert_eq(d[0], 0xff, "index is write-only");
}
