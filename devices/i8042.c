// SPDX-License-Identifier: MIT
/* i8042 keyboard controller: controller commands and reset only (see i8042.h). */
#include "devices/i8042.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/bus.h"
#include "vmm/kvm.h"
#include "vmm/x86/platform.h"

#define I8042_PREFIX "i8042"

/* status register */
#define I8042_STR_OBF 0x01
#define I8042_STR_SYS 0x04
#define I8042_STR_CMD 0x08
#define I8042_STR_UNLOCKED 0x10

/* command byte */
#define I8042_CTR_KBDINT 0x01
#define I8042_CTR_SYS 0x04
#define I8042_CTR_KBDDIS 0x10
#define I8042_CTR_AUXDIS 0x20
#define I8042_CTR_XLATE 0x40

/* output port */
#define I8042_OUT_RESET 0x01 /* active low */
#define I8042_OUT_A20 0x02

/* controller commands */
#define I8042_CMD_CTL_RCTR 0x20
#define I8042_CMD_CTL_WCTR 0x60
#define I8042_CMD_AUX_DISABLE 0xa7
#define I8042_CMD_AUX_ENABLE 0xa8
#define I8042_CMD_AUX_TEST 0xa9
#define I8042_CMD_CTL_TEST 0xaa
#define I8042_CMD_KBD_TEST 0xab
#define I8042_CMD_KBD_DISABLE 0xad
#define I8042_CMD_KBD_ENABLE 0xae
#define I8042_CMD_READ_OUTPORT 0xd0
#define I8042_CMD_WRITE_OUTPORT 0xd1
#define I8042_CMD_PULSE_BASE 0xf0

static void i8042_respond(struct i8042 *k, uint8_t v)
{
	k->outbuf = v;
	k->outbuf_full = true;
}

static void i8042_reset_request(struct i8042 *k, const char *why)
{
	log_info(I8042_PREFIX, "reset requested (%s)", why);
	kvm__request_exit(k->vm, VM_EXIT_RESET, 0);
}

static void i8042_write_outport(struct i8042 *k, uint8_t v)
{
	k->outport = v;
	if (!(v & I8042_OUT_RESET))
		i8042_reset_request(k, "output port write");
}

static void i8042_command(struct i8042 *k, uint8_t cmd)
{
	k->pending_cmd = 0;
	switch (cmd) {
	case I8042_CMD_CTL_RCTR:
		i8042_respond(k, k->ctr);
		break;
	case I8042_CMD_CTL_WCTR:
	case I8042_CMD_WRITE_OUTPORT:
		k->pending_cmd = cmd;
		break;
	case I8042_CMD_CTL_TEST:
		k->ctr |= I8042_CTR_SYS;
		i8042_respond(k, 0x55);
		break;
	case I8042_CMD_KBD_TEST:
	case I8042_CMD_AUX_TEST:
		i8042_respond(k, 0x00); /* no clock or data line stuck */
		break;
	case I8042_CMD_KBD_DISABLE:
		k->ctr |= I8042_CTR_KBDDIS;
		break;
	case I8042_CMD_KBD_ENABLE:
		k->ctr &= ~I8042_CTR_KBDDIS;
		break;
	case I8042_CMD_AUX_DISABLE:
		k->ctr |= I8042_CTR_AUXDIS;
		break;
	case I8042_CMD_AUX_ENABLE:
		k->ctr &= ~I8042_CTR_AUXDIS;
		break;
	case I8042_CMD_READ_OUTPORT:
		i8042_respond(k, k->outport);
		break;
	default:
		/* 0xF0-0xFF pulse the output port bits that are clear in the command */
		if (cmd >= I8042_CMD_PULSE_BASE) {
			if (!(cmd & I8042_OUT_RESET))
				i8042_reset_request(k, "pulse command");
			break;
		}
		log_debug(I8042_PREFIX, "unsupported command %#x ignored", cmd);
		break;
	}
}

static void i8042_data_write(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending_cmd;

	k->pending_cmd = 0;
	switch (cmd) {
	case I8042_CMD_CTL_WCTR:
		k->ctr = v;
		break;
	case I8042_CMD_WRITE_OUTPORT:
		i8042_write_outport(k, v);
		break;
	default:
		/* a byte for the keyboard: there is none, so no answer */
		break;
	}
}

static uint8_t i8042_status(const struct i8042 *k)
{
	uint8_t v = I8042_STR_UNLOCKED;

	if (k->outbuf_full)
		v |= I8042_STR_OBF;
	if (k->ctr & I8042_CTR_SYS)
		v |= I8042_STR_SYS;
	if (k->last_was_cmd)
		v |= I8042_STR_CMD;
	return v;
}

/* both ranges are one byte wide; wider junk only ever sees data[0] used */
static void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write)
{
	struct i8042 *k = opaque;

	if (offset != 0 || !len)
		return;
	pthread_mutex_lock(&k->lock);
	if (is_write) {
		k->last_was_cmd = false;
		i8042_data_write(k, data[0]);
	} else {
		data[0] = k->outbuf;
		k->outbuf_full = false;
	}
	pthread_mutex_unlock(&k->lock);
}

static void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			 bool is_write)
{
	struct i8042 *k = opaque;

	if (offset != 0 || !len)
		return;
	pthread_mutex_lock(&k->lock);
	if (is_write) {
		k->last_was_cmd = true;
		i8042_command(k, data[0]);
	} else {
		data[0] = i8042_status(k);
	}
	pthread_mutex_unlock(&k->lock);
}

/* --- state: migration section "i8042" (docs/migration.md) -------------------- */

#define I8042_STATE_VERSION 1

static int i8042_save(void *opaque, void *fdt)
{
	struct i8042 *k = opaque;
	uint32_t v[6];
	static const char *const names[] = { "ctr", "outport", "outbuf", "outbuf_full",
					     "last_was_cmd", "pending_cmd" };
	unsigned int i;
	int ret = 0;

	pthread_mutex_lock(&k->lock);
	v[0] = k->ctr, v[1] = k->outport, v[2] = k->outbuf, v[3] = k->outbuf_full;
	v[4] = k->last_was_cmd, v[5] = k->pending_cmd;
	pthread_mutex_unlock(&k->lock);
	for (i = 0; i < ARRAY_SIZE(names) && !ret; i++)
		ret = mig__put_u32(fdt, names[i], v[i]);
	return ret;
}

static int i8042_load(void *opaque, const void *fdt, int node, uint32_t version)
{
	struct i8042 *k = opaque;
	static const char *const names[] = { "ctr", "outport", "outbuf", "outbuf_full",
					     "last_was_cmd", "pending_cmd" };
	static const uint32_t max[] = { 255, 255, 255, 1, 1, 255 };
	uint32_t v[6];
	unsigned int i;
	int ret = 0;

	(void)version;
	for (i = 0; i < ARRAY_SIZE(names) && !ret; i++)
		ret = mig__get_u32_max(fdt, node, names[i], max[i], &v[i]);
	if (ret)
		return ret;
	pthread_mutex_lock(&k->lock);
	k->ctr = (uint8_t)v[0], k->outport = (uint8_t)v[1], k->outbuf = (uint8_t)v[2];
	k->outbuf_full = v[3], k->last_was_cmd = v[4], k->pending_cmd = (uint8_t)v[5];
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static const struct mig_section_ops i8042_state_ops = {
	.save = i8042_save,
	.load = i8042_load,
};

static void i8042_dev_destroy(struct vmm_device *d)
{
	i8042__destroy(container_of(d, struct i8042, dev));
}

static const struct vmm_device_ops i8042_dev_ops = {
	.destroy = i8042_dev_destroy,
};

int i8042__create(struct vm *vm, struct i8042 **out)
{
	struct i8042 *k;
	int ret;

	if (!vm || !out)
		return -EINVAL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->vm = vm;
	k->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT;
	k->ctr = I8042_CTR_KBDINT | I8042_CTR_SYS | I8042_CTR_XLATE;
	k->outport = I8042_OUT_RESET | I8042_OUT_A20;
	ret = -pthread_mutex_init(&k->lock, NULL);
	if (ret)
		goto err_free;

	ret = bus__register(&vm->pio, X86_I8042_DATA_PORT, 1, i8042_data_io, k, I8042_PREFIX);
	if (ret)
		goto err_mutex;
	k->data_registered = true;
	ret = bus__register(&vm->pio, X86_I8042_CMD_PORT, 1, i8042_cmd_io, k, I8042_PREFIX);
	if (ret)
		goto err_data;
	k->cmd_registered = true;
	device__init(&k->dev, "i8042", "i8042", DEVICE_BUS_PLATFORM, &i8042_dev_ops);
	snprintf(k->dev.where, sizeof(k->dev.where), "io %#x,%#x", X86_I8042_DATA_PORT, X86_I8042_CMD_PORT);
	ret = device__register_state(&k->dev, &vm->mig, "i8042", 0, I8042_STATE_VERSION, 1,
				     &i8042_state_ops, k);
	if (!ret)
		ret = device__add(&k->vm->devices, &k->dev);
	if (ret) {
		log_err(I8042_PREFIX, "cannot add device '%s': %s", k->dev.id,
			ret == -EEXIST ? "the id is taken" : strerror(-ret));
		i8042__destroy(k);
		return ret;
	}
	*out = k;
	return 0;

err_data:
	bus__deregister(&vm->pio, X86_I8042_DATA_PORT);
err_mutex:
	log_err(I8042_PREFIX, "cannot register ports: %s", strerror(-ret));
	pthread_mutex_destroy(&k->lock);
err_free:
	free(k);
	return ret;
}

void i8042__destroy(struct i8042 *k)
{
	if (!k)
		return;
	device__remove(&k->vm->devices, &k->dev);
	device__unregister_state(&k->dev, &k->vm->mig);
	if (k->cmd_registered)
		bus__deregister(&k->vm->pio, X86_I8042_CMD_PORT);
	if (k->data_registered)
		bus__deregister(&k->vm->pio, X86_I8042_DATA_PORT);
	pthread_mutex_destroy(&k->lock);
	free(k);
}
