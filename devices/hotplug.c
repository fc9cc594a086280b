// SPDX-License-Identifier: MIT
/* ACPI PCI hot-plug controller: registers, GPE0 block, request/eject state machine (hotplug.h). */
#include "devices/hotplug.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "vmm/bus.h"
#include "vmm/irq.h"
#include "vmm/kvm.h"
#include "vmm/sys.h"

#define HP_PREFIX "hotplug"

static uint64_t hp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool hp_slot_ok(unsigned int slot)
{
	return slot < HOTPLUG_NR_SLOTS && (HOTPLUG_SLOTS_MASK & (1u << slot));
}

/* the guest-visible bitmaps are derived from the slot states */
static uint32_t hp_bitmap(struct hotplug *hp, enum hotplug_slot_state st)
{
	uint32_t map = 0;
	unsigned int i;

	for (i = 0; i < HOTPLUG_NR_SLOTS; i++)
		if (hp->slots[i].state == st)
			map |= 1u << i;
	return map;
}

/* lock held: asserts the SCI when a GPE is both pending and enabled */
static void hp_update_sci(struct hotplug *hp)
{
	if (!(hp->gpe_sts & hp->gpe_en) || hp->sci_asserted)
		return;
	/* KVM holds the line until the guest's EOI, then tells us (hp_resample_fn) */
	hp->sci_asserted = true;
	hp->stats.sci_raised++;
	sys__eventfd_signal(hp->sci_fd);
}

/* lock held: raises GPE 1 */
static void hp_raise_gpe(struct hotplug *hp)
{
	hp->gpe_sts |= HOTPLUG_GPE_PCI;
	hp_update_sci(hp);
}

/* lock held: arms the timer for the earliest pending deadline, or disarms it */
static void hp_arm_timer(struct hotplug *hp)
{
	struct itimerspec its = { 0 };
	uint64_t first = 0;
	unsigned int i;

	for (i = 0; i < HOTPLUG_NR_SLOTS; i++) {
		const struct hotplug_slot *s = &hp->slots[i];

		if (s->state == HOTPLUG_SLOT_UNPLUG_PENDING && (!first || s->deadline_ns < first))
			first = s->deadline_ns;
	}
	if (first) {
		its.it_value.tv_sec = (time_t)(first / 1000000000ull);
		its.it_value.tv_nsec = (long)(first % 1000000000ull);
	}
	if (timerfd_settime(hp->timer_fd, TFD_TIMER_ABSTIME, &its, NULL))
		log_err_rl(&hp->rl, HP_PREFIX, "cannot arm the deadline timer: %s", strerror(errno));
}

static void hp_bad(struct hotplug *hp, const char *what, uint64_t offset, uint32_t len,
		   bool is_write)
{
	hp->stats.bad_accesses++;
	log_warn_rl(&hp->rl, HP_PREFIX, "ignored %s: %u-byte %s at +%#llx (%llu so far)", what, len,
		    is_write ? "write" : "read", (unsigned long long)offset,
		    (unsigned long long)hp->stats.bad_accesses);
}

/* lock held, vCPU thread: the guest's _EJ0 wrote a slot bitmap to B0EJ */
static void hp_eject(struct hotplug *hp, uint32_t map)
{
	uint32_t stray = 0;
	bool signal = false;
	unsigned int i;

	for (i = 0; i < HOTPLUG_NR_SLOTS; i++) {
		struct hotplug_slot *s = &hp->slots[i];

		if (!(map & (1u << i)))
			continue;
		if (s->state != HOTPLUG_SLOT_UNPLUG_PENDING) {
			hp->stats.bad_ejects++;
			stray |= 1u << i;
			continue;
		}
		/* the callback runs on the loop thread, never here */
		s->state = HOTPLUG_SLOT_EJECTED;
		s->completed = true;
		hp->stats.ejects++;
		signal = true;
		log_info(HP_PREFIX, "guest ejected slot %u", i);
	}
	if (stray)
		log_warn_rl(&hp->rl, HP_PREFIX,
			    "guest ejected slots 0x%08x without a removal request: ignored (%llu so far)",
			    stray, (unsigned long long)hp->stats.bad_ejects);
	if (signal) {
		hp_arm_timer(hp);
		sys__eventfd_signal(hp->done_fd);
	}
}

static void hp_regs_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct hotplug *hp = opaque;
	uint32_t val = 0;
	unsigned int i;

	pthread_mutex_lock(&hp->lock);
	if (len != 4 || (offset & 3) || offset >= HOTPLUG_REG_LEN) {
		hp_bad(hp, "access", offset, len, is_write);
		if (!is_write)
			memset(data, 0xff, len);
		goto out;
	}
	if (is_write) {
		memcpy(&val, data, 4);
		if (offset == HOTPLUG_B0EJ)
			hp_eject(hp, val);
		else
			hp_bad(hp, "write to a read-only register", offset, len, true);
		goto out;
	}
	switch (offset) {
	case HOTPLUG_PCIU:
		/* read-to-clear: the guest now knows about these insertions */
		val = hp_bitmap(hp, HOTPLUG_SLOT_PLUG_PENDING);
		for (i = 0; i < HOTPLUG_NR_SLOTS; i++)
			if (val & (1u << i))
				hp->slots[i].state = HOTPLUG_SLOT_IDLE;
		break;
	case HOTPLUG_PCID:
		val = hp_bitmap(hp, HOTPLUG_SLOT_UNPLUG_PENDING);
		break;
	case HOTPLUG_PCRM:
		val = HOTPLUG_SLOTS_MASK;
		break;
	default: /* B0EJ reads 0: no extra features */
		val = 0;
		break;
	}
	memcpy(data, &val, 4);
out:
	pthread_mutex_unlock(&hp->lock);
}

/* byte lanes: GPE0_STS (write 1 to clear), then GPE0_EN */
static void hp_gpe_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct hotplug *hp = opaque;
	uint32_t i;

	pthread_mutex_lock(&hp->lock);
	if (len > HOTPLUG_GPE0_LEN || offset >= HOTPLUG_GPE0_LEN ||
	    len > HOTPLUG_GPE0_LEN - offset) {
		hp_bad(hp, "GPE0 access", offset, len, is_write);
		if (!is_write)
			memset(data, 0xff, len);
		goto out;
	}
	for (i = 0; i < len; i++) {
		uint64_t reg = offset + i;
		unsigned int shift = (reg & 1) * 8;

		if (reg < 2) {
			if (is_write)
				hp->gpe_sts &= (uint16_t)~(data[i] << shift);
			else
				data[i] = (uint8_t)(hp->gpe_sts >> shift);
		} else {
			if (is_write)
				hp->gpe_en = (uint16_t)((hp->gpe_en & ~(0xff << shift)) |
							(data[i] << shift));
			else
				data[i] = (uint8_t)(hp->gpe_en >> shift);
		}
	}
	if (is_write)
		hp_update_sci(hp);
out:
	pthread_mutex_unlock(&hp->lock);
}

/* loop thread: the guest's EOI lowered our SCI source; re-assert while still pending */
static void hp_resample_fn(void *opaque, int res)
{
	struct hotplug *hp = opaque;

	sys__eventfd_drain(hp->resample_fd);
	if (res < 0)
		return;
	pthread_mutex_lock(&hp->lock);
	hp->sci_asserted = false;
	hp_update_sci(hp);
	pthread_mutex_unlock(&hp->lock);
}

struct hp_completion {
	hotplug_done_fn done;
	void *opaque;
	unsigned int slot;
	int result;
};

/* loop thread, lock not held */
static void hp_run_completions(const struct hp_completion *c, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		c[i].done(c[i].opaque, c[i].slot, c[i].result);
}

/* loop thread: deliver the ejects the vCPU threads recorded */
static void hp_done_fn(void *opaque, int res)
{
	struct hotplug *hp = opaque;
	struct hp_completion c[HOTPLUG_NR_SLOTS];
	unsigned int i, n = 0;

	sys__eventfd_drain(hp->done_fd);
	if (res < 0)
		return;
	pthread_mutex_lock(&hp->lock);
	for (i = 0; i < HOTPLUG_NR_SLOTS; i++) {
		struct hotplug_slot *s = &hp->slots[i];

		if (!s->completed)
			continue;
		s->completed = false;
		if (!hp->closing)
			c[n++] = (struct hp_completion){ s->done, s->opaque, i, 0 };
		s->done = NULL;
		s->opaque = NULL;
	}
	pthread_mutex_unlock(&hp->lock);
	hp_run_completions(c, n);
}

/* loop thread: withdraw the requests whose deadline passed; the devices stay */
static void hp_timer_fn(void *opaque, int res)
{
	struct hotplug *hp = opaque;
	struct hp_completion c[HOTPLUG_NR_SLOTS];
	uint64_t now, expirations;
	unsigned int i, n = 0;

	if (read(hp->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_err_rl(&hp->rl, HP_PREFIX, "deadline timer: %s", strerror(errno));
	if (res < 0)
		return;
	now = hp_now_ns();
	pthread_mutex_lock(&hp->lock);
	for (i = 0; i < HOTPLUG_NR_SLOTS; i++) {
		struct hotplug_slot *s = &hp->slots[i];

		if (s->state != HOTPLUG_SLOT_UNPLUG_PENDING || s->deadline_ns > now)
			continue;
		/* PCID drops with the state: the guest no longer sees an eject request */
		s->state = HOTPLUG_SLOT_IDLE;
		hp->stats.timeouts++;
		log_warn(HP_PREFIX, "slot %u: the guest did not eject the device in time; it stays", i);
		if (!hp->closing)
			c[n++] = (struct hp_completion){ s->done, s->opaque, i, -ETIMEDOUT };
		s->done = NULL;
		s->opaque = NULL;
	}
	hp_arm_timer(hp);
	pthread_mutex_unlock(&hp->lock);
	hp_run_completions(c, n);
}

int hotplug__request_unplug(struct hotplug *hp, unsigned int slot, unsigned int deadline_ms,
			    hotplug_done_fn done, void *opaque)
{
	struct hotplug_slot *s;
	int ret = 0;

	if (!hp || !hp_slot_ok(slot) || !deadline_ms || !done)
		return -EINVAL;
	pthread_mutex_lock(&hp->lock);
	s = &hp->slots[slot];
	if (hp->closing) {
		ret = -ESHUTDOWN;
	} else if (s->state == HOTPLUG_SLOT_UNPLUG_PENDING) {
		ret = -EBUSY;
	} else if (s->state == HOTPLUG_SLOT_EJECTED) {
		ret = -EALREADY;
	} else {
		/* a plug the guest has not read yet is superseded: the device is going */
		s->state = HOTPLUG_SLOT_UNPLUG_PENDING;
		s->deadline_ns = hp_now_ns() + (uint64_t)deadline_ms * 1000000ull;
		s->done = done;
		s->opaque = opaque;
		s->completed = false;
		hp_arm_timer(hp);
		hp_raise_gpe(hp);
		log_info(HP_PREFIX, "slot %u: asking the guest to eject (deadline %u ms)", slot,
			 deadline_ms);
	}
	pthread_mutex_unlock(&hp->lock);
	return ret;
}

int hotplug__withdraw_unplug(struct hotplug *hp, unsigned int slot)
{
	struct hotplug_slot *s;
	int ret = 0;

	if (!hp || !hp_slot_ok(slot))
		return -EINVAL;
	pthread_mutex_lock(&hp->lock);
	s = &hp->slots[slot];
	if (s->state == HOTPLUG_SLOT_EJECTED) {
		ret = -EALREADY;
	} else if (s->state != HOTPLUG_SLOT_UNPLUG_PENDING) {
		ret = -ENOENT;
	} else {
		/* PCID drops with the state: the guest no longer sees an eject request */
		s->state = HOTPLUG_SLOT_IDLE;
		s->done = NULL;
		s->opaque = NULL;
		hp_arm_timer(hp);
		log_info(HP_PREFIX, "slot %u: eject request withdrawn", slot);
	}
	pthread_mutex_unlock(&hp->lock);
	return ret;
}

int hotplug__notify_plug(struct hotplug *hp, unsigned int slot)
{
	struct hotplug_slot *s;
	int ret = 0;

	if (!hp || !hp_slot_ok(slot))
		return -EINVAL;
	pthread_mutex_lock(&hp->lock);
	s = &hp->slots[slot];
	if (s->state == HOTPLUG_SLOT_UNPLUG_PENDING || s->completed) {
		ret = -EBUSY;
	} else {
		s->state = HOTPLUG_SLOT_PLUG_PENDING;
		hp_raise_gpe(hp);
		log_info(HP_PREFIX, "slot %u: telling the guest about a new device", slot);
	}
	pthread_mutex_unlock(&hp->lock);
	return ret;
}

int hotplug__slot_removed(struct hotplug *hp, unsigned int slot)
{
	int ret = -EINVAL;

	if (!hp || !hp_slot_ok(slot))
		return -EINVAL;
	pthread_mutex_lock(&hp->lock);
	if (hp->slots[slot].state == HOTPLUG_SLOT_EJECTED && !hp->slots[slot].completed) {
		hp->slots[slot].state = HOTPLUG_SLOT_IDLE;
		ret = 0;
	}
	pthread_mutex_unlock(&hp->lock);
	return ret;
}

int hotplug__slot_state(struct hotplug *hp, unsigned int slot)
{
	int st;

	if (!hp || slot >= HOTPLUG_NR_SLOTS)
		return -EINVAL;
	pthread_mutex_lock(&hp->lock);
	st = (int)hp->slots[slot].state;
	pthread_mutex_unlock(&hp->lock);
	return st;
}

void hotplug__get_stats(struct hotplug *hp, struct hotplug_stats *out)
{
	pthread_mutex_lock(&hp->lock);
	*out = hp->stats;
	pthread_mutex_unlock(&hp->lock);
}

static int hp_open_fds(struct hotplug *hp)
{
	hp->sci_fd = sys__eventfd(0);
	if (hp->sci_fd < 0)
		return hp->sci_fd;
	hp->resample_fd = sys__eventfd(0);
	if (hp->resample_fd < 0)
		return hp->resample_fd;
	hp->done_fd = sys__eventfd(0);
	if (hp->done_fd < 0)
		return hp->done_fd;
	hp->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (hp->timer_fd < 0)
		return -errno;
	return 0;
}

static void hp_close_fds(struct hotplug *hp)
{
	int *fds[] = { &hp->sci_fd, &hp->resample_fd, &hp->done_fd, &hp->timer_fd };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* --- state: migration section "pcihp" (docs/migration.md) -------------------- */

#define HOTPLUG_STATE_VERSION 1

/*
 * The guest-visible registers: GPE0 status and enable, and the slots whose
 * insertion the guest has not read yet (PCIU). An unplug request in flight
 * cannot be carried (its deadline and its requester are this VMM's): the
 * save is refused until it ends.
 */
static int hotplug_save(void *opaque, void *fdt)
{
	struct hotplug *hp = opaque;
	uint32_t sts, en, pciu, busy;
	int ret;

	pthread_mutex_lock(&hp->lock);
	sts = hp->gpe_sts, en = hp->gpe_en;
	pciu = hp_bitmap(hp, HOTPLUG_SLOT_PLUG_PENDING);
	busy = hp_bitmap(hp, HOTPLUG_SLOT_UNPLUG_PENDING) | hp_bitmap(hp, HOTPLUG_SLOT_EJECTED);
	pthread_mutex_unlock(&hp->lock);
	if (busy) {
		log_err(HP_PREFIX, "state: slots %#x are being removed: save after that", busy);
		return -EBUSY;
	}
	ret = mig__put_u32(fdt, "gpe0_sts", sts);
	if (!ret)
		ret = mig__put_u32(fdt, "gpe0_en", en);
	if (!ret)
		ret = mig__put_u32(fdt, "pciu", pciu);
	return ret;
}

static int hotplug_load(void *opaque, const void *fdt, int node, uint32_t version)
{
	struct hotplug *hp = opaque;
	uint32_t sts, en, pciu;
	unsigned int i;
	int ret;

	(void)version;
	ret = mig__get_u32_max(fdt, node, "gpe0_sts", 0xffff, &sts);
	if (!ret)
		ret = mig__get_u32_max(fdt, node, "gpe0_en", 0xffff, &en);
	if (!ret)
		ret = mig__get_u32(fdt, node, "pciu", &pciu);
	if (ret)
		return ret;
	if (pciu & ~HOTPLUG_SLOTS_MASK) {
		log_err(HP_PREFIX, "state: pciu %#x names slot 0 (the host bridge)", pciu);
		return -EINVAL;
	}
	pthread_mutex_lock(&hp->lock);
	hp->gpe_sts = (uint16_t)sts;
	hp->gpe_en = (uint16_t)en;
	for (i = 1; i < HOTPLUG_NR_SLOTS; i++)
		if (pciu & (1u << i))
			hp->slots[i].state = HOTPLUG_SLOT_PLUG_PENDING;
	hp_update_sci(hp);
	pthread_mutex_unlock(&hp->lock);
	return 0;
}

static const struct mig_section_ops hotplug_state_ops = {
	.save = hotplug_save,
	.load = hotplug_load,
};

static void hotplug_dev_destroy(struct vmm_device *d)
{
	hotplug__destroy(container_of(d, struct hotplug, dev));
}

static const struct vmm_device_ops hotplug_dev_ops = {
	.destroy = hotplug_dev_destroy,
};

int hotplug__create(struct vm *vm, const struct hotplug_config *cfg, struct hotplug **out)
{
	struct hotplug *hp;
	int ret;

	if (!vm || !cfg || !out || !cfg->port || !cfg->gpe0_port || cfg->sci_irq >= 16 ||
	    (cfg->port & 3) || cfg->port > 0x10000 - HOTPLUG_REG_LEN ||
	    cfg->gpe0_port > 0x10000 - HOTPLUG_GPE0_LEN ||
	    ranges_overlap(cfg->port, HOTPLUG_REG_LEN, cfg->gpe0_port, HOTPLUG_GPE0_LEN))
		return -EINVAL;
	hp = calloc(1, sizeof(*hp));
	if (!hp)
		return -ENOMEM;
	hp->vm = vm;
	hp->cfg = *cfg;
	hp->sci_fd = hp->resample_fd = hp->done_fd = hp->timer_fd = -1;
	hp->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT;
	ret = -pthread_mutex_init(&hp->lock, NULL);
	if (ret)
		goto err_free;
	ret = hp_open_fds(hp);
	if (ret)
		goto err_fds;

	ret = irq__irqfd(&vm->irq, hp->sci_fd, cfg->sci_irq, hp->resample_fd, true);
	if (ret)
		goto err_fds;
	hp->irqfd_attached = true;
	ret = evloop__add_fd(&vm->loop, &hp->resample_watch, hp->resample_fd, POLLIN,
			     hp_resample_fn, hp);
	if (ret)
		goto err_irqfd;
	ret = evloop__add_fd(&vm->loop, &hp->done_watch, hp->done_fd, POLLIN, hp_done_fn, hp);
	if (ret)
		goto err_resample_watch;
	ret = evloop__add_fd(&vm->loop, &hp->timer_watch, hp->timer_fd, POLLIN, hp_timer_fn, hp);
	if (ret)
		goto err_done_watch;

	ret = bus__register(&vm->pio, cfg->port, HOTPLUG_REG_LEN, hp_regs_io, hp, HP_PREFIX);
	if (ret)
		goto err_timer_watch;
	hp->regs_registered = true;
	ret = bus__register(&vm->pio, cfg->gpe0_port, HOTPLUG_GPE0_LEN, hp_gpe_io, hp, HP_PREFIX);
	if (ret)
		goto err_regs;
	hp->gpe_registered = true;
	log_debug(HP_PREFIX, "registers at %#x, GPE0 at %#x, SCI %u", cfg->port, cfg->gpe0_port,
		  cfg->sci_irq);
	device__init(&hp->dev, "pcihp", "acpi-pci-hotplug", DEVICE_BUS_PLATFORM, &hotplug_dev_ops);
	snprintf(hp->dev.where, sizeof(hp->dev.where), "io %#x gpe0 %#x", cfg->port, cfg->gpe0_port);
	ret = device__register_state(&hp->dev, &vm->mig, "pcihp", 0, HOTPLUG_STATE_VERSION, 1,
				     &hotplug_state_ops, hp);
	if (!ret)
		ret = device__add(&hp->vm->devices, &hp->dev);
	if (ret) {
		log_err(HP_PREFIX, "cannot add device '%s': %s", hp->dev.id,
			ret == -EEXIST ? "the id is taken" : strerror(-ret));
		hotplug__destroy(hp);
		return ret;
	}
	*out = hp;
	return 0;

err_regs:
	bus__deregister(&vm->pio, cfg->port);
err_timer_watch:
	evloop__del_fd(&vm->loop, &hp->timer_watch);
err_done_watch:
	evloop__del_fd(&vm->loop, &hp->done_watch);
err_resample_watch:
	evloop__del_fd(&vm->loop, &hp->resample_watch);
err_irqfd:
	if (irq__irqfd(&vm->irq, hp->sci_fd, cfg->sci_irq, hp->resample_fd, false))
		log_warn(HP_PREFIX, "cannot detach the SCI irqfd");
err_fds:
	log_err(HP_PREFIX, "cannot create the hot-plug controller: %s", strerror(-ret));
	hp_close_fds(hp);
	pthread_mutex_destroy(&hp->lock);
err_free:
	free(hp);
	return ret;
}

void hotplug__destroy(struct hotplug *hp)
{
	if (!hp)
		return;
	device__remove(&hp->vm->devices, &hp->dev);
	device__unregister_state(&hp->dev, &hp->vm->mig);
	pthread_mutex_lock(&hp->lock);
	hp->closing = true; /* the watches may still run below: no callbacks from them */
	pthread_mutex_unlock(&hp->lock);
	if (hp->gpe_registered)
		bus__deregister(&hp->vm->pio, hp->cfg.gpe0_port);
	if (hp->regs_registered)
		bus__deregister(&hp->vm->pio, hp->cfg.port);
	evloop__del_fd(&hp->vm->loop, &hp->timer_watch);
	evloop__del_fd(&hp->vm->loop, &hp->done_watch);
	evloop__del_fd(&hp->vm->loop, &hp->resample_watch);
	if (hp->irqfd_attached &&
	    irq__irqfd(&hp->vm->irq, hp->sci_fd, hp->cfg.sci_irq, hp->resample_fd, false))
		log_warn(HP_PREFIX, "cannot detach the SCI irqfd");
	hp_close_fds(hp);
	pthread_mutex_destroy(&hp->lock);
	free(hp);
}
