// SPDX-License-Identifier: MIT
/* ACPI PM1a event/control blocks and the 0xCF9 reset register (see pm.h). */
#include "devices/pm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/bus.h"
#include "vmm/irq.h"
#include "vmm/kvm.h"
#include "vmm/pci.h"

#define PM_PREFIX "pm"

#define PM_RESET_RST_CPU 0x04
#define PM_RESET_MASK 0x0e

static void pm_update_sci(struct pm *pm)
{
	bool level = pm->sts & pm->en;

	if (level == pm->sci_level)
		return;
	pm->sci_level = level;
	irq__line(&pm->vm->irq, pm->cfg.sci_irq, level);
}

/* byte-wise: PM1_STS bytes are write-1-to-clear, PM1_EN bytes are plain */
static void pm_evt_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pm *pm = opaque;
	uint32_t i;

	pthread_mutex_lock(&pm->lock);
	for (i = 0; i < len; i++) {
		uint64_t reg = offset + i;
		unsigned int shift;

		if (offset >= PM_EVT_LEN || i >= PM_EVT_LEN - offset) {
			if (!is_write)
				data[i] = 0xff;
			continue;
		}
		shift = (reg & 1) * 8;
		if (reg < 2) {
			if (is_write)
				pm->sts &= ~(uint16_t)(data[i] << shift);
			else
				data[i] = pm->sts >> shift;
		} else {
			if (is_write)
				pm->en = (pm->en & ~(uint16_t)(0xff << shift)) |
					 (uint16_t)(data[i] << shift);
			else
				data[i] = pm->en >> shift;
		}
	}
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

static void pm_sleep(struct pm *pm, unsigned int typ)
{
	if (typ == pm->cfg.slp_typ_s5) {
		log_info(PM_PREFIX, "guest entered S5: powering off");
		kvm__request_exit(pm->vm, VM_EXIT_POWEROFF, 0);
		return;
	}
	log_err_rl(&pm->rl, PM_PREFIX, "sleep type %u not supported, ignored", typ);
}

static void pm_cnt_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pm *pm = opaque;
	uint16_t val;
	bool wrote = false;
	uint32_t i;

	pthread_mutex_lock(&pm->lock);
	val = pm->cnt | PM1_CNT_SCI_EN;
	for (i = 0; i < len; i++) {
		unsigned int shift;

		if (offset >= PM_CNT_LEN || i >= PM_CNT_LEN - offset) {
			if (!is_write)
				data[i] = 0xff;
			continue;
		}
		shift = ((offset + i) & 1) * 8;
		if (is_write) {
			val = (val & ~(uint16_t)(0xff << shift)) | (uint16_t)(data[i] << shift);
			wrote = true;
		} else {
			data[i] = val >> shift;
		}
	}
	if (wrote) {
		/* SLP_EN is write-only and SCI_EN is hardwired */
		pm->cnt = (val & ~PM1_CNT_SLP_EN) | PM1_CNT_SCI_EN;
		if (val & PM1_CNT_SLP_EN)
			pm_sleep(pm, (val & PM1_CNT_SLP_TYP_MASK) >> PM1_CNT_SLP_TYP_SHIFT);
	}
	pthread_mutex_unlock(&pm->lock);
}

static void pm_cf9_io(void *opaque, uint8_t *data, bool is_write)
{
	struct pm *pm = opaque;

	pthread_mutex_lock(&pm->lock);
	if (!is_write) {
		data[0] = pm->reset_reg;
	} else {
		/* RST_CPU triggers the reset and does not stick */
		pm->reset_reg = data[0] & PM_RESET_MASK & ~PM_RESET_RST_CPU;
		if (data[0] & PM_RESET_RST_CPU) {
			log_info(PM_PREFIX, "reset requested through 0xcf9 (%#x)", data[0]);
			kvm__request_exit(pm->vm, VM_EXIT_RESET, 0);
		}
	}
	pthread_mutex_unlock(&pm->lock);
}

void pm__power_button(struct pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts |= PM1_PWRBTN;
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

/* --- state: migration section "acpi-pm" (docs/migration.md) ------------------ */

#define PM_STATE_VERSION 1

static int pm_save(void *opaque, void *fdt)
{
	struct pm *pm = opaque;
	uint32_t sts, en, cnt, reset_reg;
	int ret;

	pthread_mutex_lock(&pm->lock);
	sts = pm->sts, en = pm->en, cnt = pm->cnt, reset_reg = pm->reset_reg;
	pthread_mutex_unlock(&pm->lock);
	ret = mig__put_u32(fdt, "pm1_sts", sts);
	if (!ret)
		ret = mig__put_u32(fdt, "pm1_en", en);
	if (!ret)
		ret = mig__put_u32(fdt, "pm1_cnt", cnt);
	if (!ret)
		ret = mig__put_u32(fdt, "reset_reg", reset_reg);
	return ret;
}

static int pm_load(void *opaque, const void *fdt, int node, uint32_t version)
{
	struct pm *pm = opaque;
	uint32_t sts, en, cnt, reset_reg;
	int ret;

	(void)version;
	ret = mig__get_u32_max(fdt, node, "pm1_sts", 0xffff, &sts);
	if (!ret)
		ret = mig__get_u32_max(fdt, node, "pm1_en", 0xffff, &en);
	if (!ret)
		ret = mig__get_u32_max(fdt, node, "pm1_cnt", 0xffff, &cnt);
	if (!ret)
		ret = mig__get_u32_max(fdt, node, "reset_reg", 255, &reset_reg);
	if (ret)
		return ret;
	if (cnt & PM1_CNT_SLP_EN) {
		log_err(PM_PREFIX, "state: pm1_cnt %#x has SLP_EN set (a guest going to sleep)", cnt);
		return -EINVAL;
	}
	pthread_mutex_lock(&pm->lock);
	pm->sts = (uint16_t)sts, pm->en = (uint16_t)en, pm->cnt = (uint16_t)cnt;
	pm->reset_reg = (uint8_t)reset_reg;
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	return 0;
}

static const struct mig_section_ops pm_state_ops = {
	.save = pm_save,
	.load = pm_load,
};

static void pm_dev_destroy(struct vmm_device *d)
{
	pm__destroy(container_of(d, struct pm, dev));
}

static const struct vmm_device_ops pm_dev_ops = {
	.destroy = pm_dev_destroy,
};

int pm__create(struct vm *vm, const struct pm_config *cfg, struct pm **out)
{
	struct pm *pm;
	int ret;

	if (!vm || !cfg || !out || cfg->slp_typ_s5 > 7 ||
	    cfg->evt_port > 0x10000 - PM_EVT_LEN || cfg->cnt_port > 0x10000 - PM_CNT_LEN)
		return -EINVAL;
	pm = calloc(1, sizeof(*pm));
	if (!pm)
		return -ENOMEM;
	pm->vm = vm;
	pm->cfg = *cfg;
	pm->cnt = PM1_CNT_SCI_EN;
	pm->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT;
	ret = -pthread_mutex_init(&pm->lock, NULL);
	if (ret)
		goto err_free;

	ret = bus__register(&vm->pio, cfg->evt_port, PM_EVT_LEN, pm_evt_io, pm, PM_PREFIX);
	if (ret)
		goto err_mutex;
	pm->evt_registered = true;
	ret = bus__register(&vm->pio, cfg->cnt_port, PM_CNT_LEN, pm_cnt_io, pm, PM_PREFIX);
	if (ret)
		goto err_evt;
	pm->cnt_registered = true;
	pci__set_cf9_handler(&vm->pci, pm_cf9_io, pm);
	pm->cf9_hooked = true;
	device__init(&pm->dev, "acpi-pm", "acpi-pm", DEVICE_BUS_PLATFORM, &pm_dev_ops);
	snprintf(pm->dev.where, sizeof(pm->dev.where), "io %#x irq %u", cfg->evt_port, cfg->sci_irq);
	ret = device__register_state(&pm->dev, &vm->mig, "acpi-pm", 0, PM_STATE_VERSION, 1,
				     &pm_state_ops, pm);
	if (!ret)
		ret = device__add(&pm->vm->devices, &pm->dev);
	if (ret) {
		log_err(PM_PREFIX, "cannot add device '%s': %s", pm->dev.id,
			ret == -EEXIST ? "the id is taken" : strerror(-ret));
		pm__destroy(pm);
		return ret;
	}
	*out = pm;
	return 0;

err_evt:
	bus__deregister(&vm->pio, cfg->evt_port);
err_mutex:
	log_err(PM_PREFIX, "cannot register ports: %s", strerror(-ret));
	pthread_mutex_destroy(&pm->lock);
err_free:
	free(pm);
	return ret;
}

void pm__destroy(struct pm *pm)
{
	if (!pm)
		return;
	device__remove(&pm->vm->devices, &pm->dev);
	device__unregister_state(&pm->dev, &pm->vm->mig);
	if (pm->cf9_hooked)
		pci__set_cf9_handler(&pm->vm->pci, NULL, NULL);
	if (pm->cnt_registered)
		bus__deregister(&pm->vm->pio, pm->cfg.cnt_port);
	if (pm->evt_registered)
		bus__deregister(&pm->vm->pio, pm->cfg.evt_port);
	if (pm->sci_level)
		irq__line(&pm->vm->irq, pm->cfg.sci_irq, 0);
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}
