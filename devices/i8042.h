/* SPDX-License-Identifier: MIT */
/*
 * The PC keyboard controller (i8042) at ports 0x60 (data) and 0x64
 * (status/command) (X86_I8042_DATA_PORT/CMD_PORT in vmm/x86/platform.h), modelled only as far as firmware and kernels use it to
 * probe the controller and to reset the machine:
 *  - 0x20/0x60 read/write the command byte, 0xAA self test (0x55),
 *    0xAB/0xA9 interface tests (0x00), 0xAD/0xAE and 0xA7/0xA8 disable/enable
 *    the keyboard/aux clocks (command byte bits 4/5), 0xD0/0xD1 read/write the
 *    output port;
 *  - a pulse command 0xF0-0xFF with bit 0 clear (0xFE) or an output port write
 *    with bit 0 (the reset line) clear asks the VM to reset (VM_EXIT_RESET).
 * There is no keyboard or mouse behind it: writes to the devices are ignored
 * and never answered, and no interrupt is raised (Linux guests boot faster
 * with i8042.nokbd i8042.noaux, or i8042.noprobe, which avoid the probe
 * timeouts).
 */
#ifndef MINIVMM_DEVICES_I8042_H
#define MINIVMM_DEVICES_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/log.h"
#include "vmm/device.h"
#include "vmm/util.h"

struct vm;

struct i8042 {
	struct vm *vm;
	struct vmm_device dev;       /* the device model (vmm/device.h) */
	pthread_mutex_t lock;
	bool data_registered, cmd_registered;

	uint8_t ctr;          /* command byte */
	uint8_t outport;      /* output port: bit 0 reset line (active low), bit 1 A20 */
	uint8_t outbuf;       /* output buffer (last byte stays readable) */
	bool outbuf_full;
	bool last_was_cmd;    /* status bit 3: last write went to 0x64 */
	uint8_t pending_cmd;  /* command waiting for its data byte (0x60, 0xD1), 0 when none */
	struct log_ratelimit rl;
};

int i8042__create(struct vm *vm, struct i8042 **out) __must_check;
/* removes both port ranges (waiting for running handlers); NULL is a no-op */
void i8042__destroy(struct i8042 *k);

#endif
