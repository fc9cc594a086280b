/* SPDX-License-Identifier: MIT */
/*
 * MC146818 real-time clock and CMOS RAM at ports 0x70 (index; bit 7 is the
 * NMI mask, recorded and otherwise ignored) and 0x71 (data): X86_RTC_INDEX_PORT
 * and X86_RTC_DATA_PORT in vmm/x86/platform.h.
 *
 * The time registers (0-9 and the century byte 0x32) are computed from the
 * host clock (UTC) plus an offset the guest sets by writing them, in BCD or
 * binary and 12 or 24 hour format as register B says. While B.SET is set the
 * time registers hold what the guest writes; clearing B.SET (or writing one
 * time register with SET clear) sets the clock.
 *
 * Register A reads with UIP clear (the clock is never mid-update), register
 * D reads 0x80 (VRT: the RAM is valid), register C reports UF when the host
 * second has moved since C was last read and clears on read. There are no
 * interrupts: no periodic, alarm or update-ended IRQ 8 is ever raised (the
 * alarm registers are plain storage).
 *
 * The rest of the 128 bytes is CMOS RAM, preset with the memory sizes of the
 * guest: 0x15/0x16 base memory (640 KiB), 0x17/0x18 and 0x30/0x31 memory above
 * 1 MiB in KiB (at most 0xffff), 0x34/0x35 memory between 16 MiB and the 32-bit
 * hole (MEM_LOW_END) in 64 KiB units, 0x5b-0x5d memory above 4 GiB in 64 KiB
 * units, and the checksum of 0x10-0x2d at 0x2e/0x2f.
 */
#ifndef MINIVMM_DEVICES_RTC_H
#define MINIVMM_DEVICES_RTC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "vmm/device.h"
#include "vmm/util.h"

struct vm;

#define RTC_CMOS_SIZE 128

/* register indexes */
#define RTC_SECONDS 0x00
#define RTC_SECONDS_ALARM 0x01
#define RTC_MINUTES 0x02
#define RTC_MINUTES_ALARM 0x03
#define RTC_HOURS 0x04
#define RTC_HOURS_ALARM 0x05
#define RTC_DAY_OF_WEEK 0x06
#define RTC_DAY_OF_MONTH 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_REG_C 0x0c
#define RTC_REG_D 0x0d
#define RTC_CENTURY 0x32

#define RTC_A_UIP 0x80
#define RTC_B_SET 0x80
#define RTC_B_PIE 0x40
#define RTC_B_AIE 0x20
#define RTC_B_UIE 0x10
#define RTC_B_DM_BINARY 0x04
#define RTC_B_24H 0x02
#define RTC_C_IRQF 0x80
#define RTC_C_PF 0x40
#define RTC_C_AF 0x20
#define RTC_C_UF 0x10
#define RTC_D_VRT 0x80

struct rtc {
	struct vm *vm;
	struct vmm_device dev;       /* the device model (vmm/device.h) */
	pthread_mutex_t lock;
	bool registered;
	uint64_t ram_size;

	uint8_t index;          /* 0-127 */
	bool nmi_disabled;      /* bit 7 of the last index write */
	uint8_t cmos[RTC_CMOS_SIZE];
	int64_t offset;         /* guest clock - host clock, seconds */
	time_t last_c_read;     /* host second of the last register C read */
};

/* ram_size: the guest's RAM in bytes, for the memory size bytes */
int rtc__create(struct vm *vm, uint64_t ram_size, struct rtc **out) __must_check;
/* removes the port range (waiting for running handlers); NULL is a no-op */
void rtc__destroy(struct rtc *r);

#endif
