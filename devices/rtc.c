// SPDX-License-Identifier: MIT
/* MC146818 RTC and CMOS RAM (see rtc.h). */
#include "devices/rtc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/bus.h"
#include "vmm/kvm.h"
#include "vmm/log.h"
#include "vmm/mem.h"
#include "vmm/x86/platform.h"

#define RTC_PREFIX "rtc"

/* CMOS RAM layout used by PC firmware */
#define CMOS_BASE_MEM_LO 0x15
#define CMOS_BASE_MEM_HI 0x16
#define CMOS_EXT_MEM_LO 0x17
#define CMOS_EXT_MEM_HI 0x18
#define CMOS_CHECKSUM_HI 0x2e
#define CMOS_CHECKSUM_LO 0x2f
#define CMOS_EXT_MEM2_LO 0x30
#define CMOS_EXT_MEM2_HI 0x31
#define CMOS_MEM_16M_LO 0x34
#define CMOS_MEM_16M_HI 0x35
#define CMOS_MEM_4G_LO 0x5b
#define CMOS_MEM_4G_MID 0x5c
#define CMOS_MEM_4G_HI 0x5d

static const uint8_t rtc_time_regs[] = {
	RTC_SECONDS, RTC_MINUTES,     RTC_HOURS, RTC_DAY_OF_WEEK, RTC_DAY_OF_MONTH,
	RTC_MONTH,   RTC_YEAR,        RTC_CENTURY,
};

static bool rtc_is_time_reg(uint8_t reg)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(rtc_time_regs); i++)
		if (rtc_time_regs[i] == reg)
			return true;
	return false;
}

static uint8_t rtc_to_reg(const struct rtc *r, unsigned int v)
{
	v %= 100;
	if (r->cmos[RTC_REG_B] & RTC_B_DM_BINARY)
		return v;
	return ((v / 10) << 4) | (v % 10);
}

/* junk BCD digits decode to out-of-range numbers; timegm() normalises them */
static unsigned int rtc_from_reg(const struct rtc *r, uint8_t v)
{
	if (r->cmos[RTC_REG_B] & RTC_B_DM_BINARY)
		return v;
	return (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t rtc_hour_to_reg(const struct rtc *r, unsigned int hour)
{
	unsigned int h12;

	if (r->cmos[RTC_REG_B] & RTC_B_24H)
		return rtc_to_reg(r, hour);
	h12 = hour % 12 ? hour % 12 : 12;
	return rtc_to_reg(r, h12) | (hour >= 12 ? 0x80 : 0);
}

static unsigned int rtc_hour_from_reg(const struct rtc *r, uint8_t v)
{
	if (r->cmos[RTC_REG_B] & RTC_B_24H)
		return rtc_from_reg(r, v);
	return rtc_from_reg(r, v & 0x7f) % 12 + ((v & 0x80) ? 12 : 0);
}

static time_t rtc_guest_now(const struct rtc *r)
{
	return time(NULL) + (time_t)r->offset;
}

static uint8_t rtc_time_field(const struct rtc *r, const struct tm *tm, uint8_t reg)
{
	switch (reg) {
	case RTC_SECONDS:
		return rtc_to_reg(r, tm->tm_sec);
	case RTC_MINUTES:
		return rtc_to_reg(r, tm->tm_min);
	case RTC_HOURS:
		return rtc_hour_to_reg(r, tm->tm_hour);
	case RTC_DAY_OF_WEEK:
		return rtc_to_reg(r, tm->tm_wday + 1);
	case RTC_DAY_OF_MONTH:
		return rtc_to_reg(r, tm->tm_mday);
	case RTC_MONTH:
		return rtc_to_reg(r, tm->tm_mon + 1);
	case RTC_YEAR:
		return rtc_to_reg(r, tm->tm_year % 100);
	case RTC_CENTURY:
	default:
		return rtc_to_reg(r, (tm->tm_year + 1900) / 100);
	}
}

static uint8_t rtc_read_time(const struct rtc *r, uint8_t reg)
{
	time_t now = rtc_guest_now(r);
	struct tm tm;

	if (!gmtime_r(&now, &tm))
		return 0;
	return rtc_time_field(r, &tm, reg);
}

/* copies the running clock into the time registers (for SET, or a single register write) */
static void rtc_latch(struct rtc *r)
{
	time_t now = rtc_guest_now(r);
	struct tm tm;
	unsigned int i;

	if (!gmtime_r(&now, &tm))
		return;
	for (i = 0; i < ARRAY_SIZE(rtc_time_regs); i++)
		r->cmos[rtc_time_regs[i]] = rtc_time_field(r, &tm, rtc_time_regs[i]);
}

/* sets the clock from the time registers */
static void rtc_commit(struct rtc *r)
{
	struct tm tm = { 0 };
	time_t t;

	tm.tm_sec = rtc_from_reg(r, r->cmos[RTC_SECONDS]);
	tm.tm_min = rtc_from_reg(r, r->cmos[RTC_MINUTES]);
	tm.tm_hour = rtc_hour_from_reg(r, r->cmos[RTC_HOURS]);
	tm.tm_mday = rtc_from_reg(r, r->cmos[RTC_DAY_OF_MONTH]);
	tm.tm_mon = (int)rtc_from_reg(r, r->cmos[RTC_MONTH]) - 1;
	tm.tm_year = (int)(rtc_from_reg(r, r->cmos[RTC_CENTURY]) * 100 +
			   rtc_from_reg(r, r->cmos[RTC_YEAR])) - 1900;
	t = timegm(&tm);
	if (t == (time_t)-1) {
		log_warn(RTC_PREFIX, "guest wrote an invalid date, clock unchanged");
		return;
	}
	r->offset = (int64_t)t - (int64_t)time(NULL);
}

static uint8_t rtc_read_data(struct rtc *r)
{
	uint8_t reg = r->index;
	uint8_t v;
	time_t now;

	switch (reg) {
	case RTC_REG_A:
		return r->cmos[RTC_REG_A] & ~RTC_A_UIP;
	case RTC_REG_C:
		now = time(NULL);
		v = 0;
		if (now != r->last_c_read)
			v |= RTC_C_UF;
		if (v & r->cmos[RTC_REG_B] & (RTC_B_PIE | RTC_B_AIE | RTC_B_UIE))
			v |= RTC_C_IRQF;
		r->last_c_read = now;
		return v;
	case RTC_REG_D:
		return RTC_D_VRT;
	default:
		if (rtc_is_time_reg(reg) && !(r->cmos[RTC_REG_B] & RTC_B_SET))
			return rtc_read_time(r, reg);
		return r->cmos[reg];
	}
}

static void rtc_write_data(struct rtc *r, uint8_t v)
{
	uint8_t reg = r->index;
	uint8_t old;

	switch (reg) {
	case RTC_REG_A:
		r->cmos[RTC_REG_A] = v & ~RTC_A_UIP;
		return;
	case RTC_REG_B:
		old = r->cmos[RTC_REG_B];
		r->cmos[RTC_REG_B] = v;
		if (!(old & RTC_B_SET) && (v & RTC_B_SET))
			rtc_latch(r);
		else if ((old & RTC_B_SET) && !(v & RTC_B_SET))
			rtc_commit(r);
		return;
	case RTC_REG_C:
	case RTC_REG_D:
		return; /* read-only */
	default:
		if (rtc_is_time_reg(reg) && !(r->cmos[RTC_REG_B] & RTC_B_SET)) {
			rtc_latch(r);
			r->cmos[reg] = v;
			rtc_commit(r);
			return;
		}
		r->cmos[reg] = v;
		return;
	}
}

static void rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rtc *r = opaque;
	uint32_t i;

	pthread_mutex_lock(&r->lock);
	/* a word access writes index then data, as some firmware does with outw */
	for (i = 0; i < len; i++) {
		uint64_t port = offset + i;

		if (offset >= 2 || i >= 2 - offset) {
			if (!is_write)
				data[i] = 0xff;
			continue;
		}
		if (port == 0) {
			if (is_write) {
				r->index = data[i] & 0x7f;
				r->nmi_disabled = data[i] & 0x80;
			} else {
				data[i] = 0xff; /* the index register is write-only */
			}
		} else if (is_write) {
			rtc_write_data(r, data[i]);
		} else {
			data[i] = rtc_read_data(r);
		}
	}
	pthread_mutex_unlock(&r->lock);
}

static void rtc_set_memory(struct rtc *r, uint64_t ram_size)
{
	uint64_t low = MIN(ram_size, MEM_LOW_END);
	uint64_t high = ram_size - low;
	uint64_t v;
	unsigned int i, sum = 0;

	r->cmos[CMOS_BASE_MEM_LO] = 640 & 0xff;
	r->cmos[CMOS_BASE_MEM_HI] = 640 >> 8;

	v = low > 1 * MiB ? MIN((low - 1 * MiB) / KiB, 0xffff) : 0;
	r->cmos[CMOS_EXT_MEM_LO] = r->cmos[CMOS_EXT_MEM2_LO] = v & 0xff;
	r->cmos[CMOS_EXT_MEM_HI] = r->cmos[CMOS_EXT_MEM2_HI] = v >> 8;

	v = low > 16 * MiB ? MIN((low - 16 * MiB) / (64 * KiB), 0xffff) : 0;
	r->cmos[CMOS_MEM_16M_LO] = v & 0xff;
	r->cmos[CMOS_MEM_16M_HI] = v >> 8;

	v = MIN(high / (64 * KiB), 0xffffff);
	r->cmos[CMOS_MEM_4G_LO] = v & 0xff;
	r->cmos[CMOS_MEM_4G_MID] = (v >> 8) & 0xff;
	r->cmos[CMOS_MEM_4G_HI] = v >> 16;

	for (i = 0x10; i <= 0x2d; i++)
		sum += r->cmos[i];
	r->cmos[CMOS_CHECKSUM_HI] = sum >> 8;
	r->cmos[CMOS_CHECKSUM_LO] = sum & 0xff;
}

/* --- state: migration section "rtc" (docs/migration.md) ---------------------- */

#define RTC_STATE_VERSION 1

static int rtc_save(void *opaque, void *fdt)
{
	struct rtc *r = opaque;
	uint8_t cmos[RTC_CMOS_SIZE];
	uint32_t index, nmi;
	int64_t offset;
	int ret;

	pthread_mutex_lock(&r->lock);
	memcpy(cmos, r->cmos, sizeof(cmos));
	index = r->index;
	nmi = r->nmi_disabled;
	offset = r->offset;
	pthread_mutex_unlock(&r->lock);
	ret = mig__put_u32(fdt, "index", index);
	if (!ret)
		ret = mig__put_u32(fdt, "nmi_disabled", nmi);
	/* the guest clock as an offset from the host's UTC seconds */
	if (!ret)
		ret = mig__put_u64(fdt, "offset_s", (uint64_t)offset);
	if (!ret)
		ret = mig__put_bytes(fdt, "cmos", cmos, sizeof(cmos));
	return ret;
}

static int rtc_load(void *opaque, const void *fdt, int node, uint32_t version)
{
	struct rtc *r = opaque;
	uint8_t cmos[RTC_CMOS_SIZE];
	uint32_t index, nmi;
	uint64_t offset;
	int ret;

	(void)version;
	ret = mig__get_u32_max(fdt, node, "index", RTC_CMOS_SIZE - 1, &index);
	if (!ret)
		ret = mig__get_u32_max(fdt, node, "nmi_disabled", 1, &nmi);
	if (!ret)
		ret = mig__get_u64(fdt, node, "offset_s", &offset);
	if (!ret)
		ret = mig__get_bytes(fdt, node, "cmos", cmos, sizeof(cmos));
	if (ret)
		return ret;
	pthread_mutex_lock(&r->lock);
	memcpy(r->cmos, cmos, sizeof(cmos));
	r->index = (uint8_t)index;
	r->nmi_disabled = nmi;
	r->offset = (int64_t)offset;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static const struct mig_section_ops rtc_state_ops = {
	.save = rtc_save,
	.load = rtc_load,
};

static void rtc_dev_destroy(struct vmm_device *d)
{
	rtc__destroy(container_of(d, struct rtc, dev));
}

static const struct vmm_device_ops rtc_dev_ops = {
	.destroy = rtc_dev_destroy,
};

int rtc__create(struct vm *vm, uint64_t ram_size, struct rtc **out)
{
	struct rtc *r;
	int ret;

	if (!vm || !out)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->vm = vm;
	r->ram_size = ram_size;
	r->cmos[RTC_REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz rate */
	r->cmos[RTC_REG_B] = RTC_B_24H;
	r->last_c_read = time(NULL);
	rtc_set_memory(r, ram_size);
	ret = -pthread_mutex_init(&r->lock, NULL);
	if (ret)
		goto err_free;

	ret = bus__register(&vm->pio, X86_RTC_INDEX_PORT, 2, rtc_io, r, RTC_PREFIX);
	if (ret) {
		log_err(RTC_PREFIX, "cannot register ports: %s", strerror(-ret));
		goto err_mutex;
	}
	r->registered = true;
	device__init(&r->dev, "rtc", "rtc", DEVICE_BUS_PLATFORM, &rtc_dev_ops);
	snprintf(r->dev.where, sizeof(r->dev.where), "io %#x", X86_RTC_INDEX_PORT);
	ret = device__register_state(&r->dev, &vm->mig, "rtc", 0, RTC_STATE_VERSION, 1,
				     &rtc_state_ops, r);
	if (!ret)
		ret = device__add(&r->vm->devices, &r->dev);
	if (ret) {
		log_err(RTC_PREFIX, "cannot add device '%s': %s", r->dev.id,
			ret == -EEXIST ? "the id is taken" : strerror(-ret));
		rtc__destroy(r);
		return ret;
	}
	*out = r;
	return 0;

err_mutex:
	pthread_mutex_destroy(&r->lock);
err_free:
	free(r);
	return ret;
}

void rtc__destroy(struct rtc *r)
{
	if (!r)
		return;
	device__remove(&r->vm->devices, &r->dev);
	device__unregister_state(&r->dev, &r->vm->mig);
	if (r->registered)
		bus__deregister(&r->vm->pio, X86_RTC_INDEX_PORT);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
