// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "devices/i8042.h"
#include "vmm/kvm.h"
#include "vmm/log.h"

static struct vm vm;
static struct i8042 *k;

static void setup(void)
{
	cr_assert_eq(kvm__vm_init_fake(&vm, 16 * MiB), 0);
	cr_assert_eq(i8042__create(&vm, &k), 0);
}

static void teardown(void)
{
	i8042__destroy(k);
	kvm__vm_destroy(&vm);
}

TestSuite(i8042, .init = setup, .fini = teardown);

static void outb(uint16_t port, uint8_t v)
{
	cr_assert_eq(bus__dispatch(&vm.pio, port, &v, 1, true), 0);
}

static uint8_t inb(uint16_t port)
{
	uint8_t v = 0;

	cr_assert_eq(bus__dispatch(&vm.pio, port, &v, 1, false), 0);
	return v;
}

static uint8_t command_with_reply(uint8_t cmd)
{
	outb(0x64, cmd);
	cr_assert_eq(inb(0x64) & 0x01, 0x01, "output buffer full after %#x", cmd);
	return inb(0x60);
}

Test(i8042, self_test_and_interface_tests)
{
	cr_assert_eq(inb(0x64) & 0x01, 0, "nothing to read at first");
	cr_assert_eq(command_with_reply(0xaa), 0x55);
	cr_assert_eq(inb(0x64) & 0x01, 0, "reading 0x60 emptied the buffer");
	cr_assert_eq(inb(0x64) & 0x04, 0x04, "system flag after self test");
	cr_assert_eq(command_with_reply(0xab), 0x00);
	cr_assert_eq(command_with_reply(0xa9), 0x00);
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_RUNNING);
}

Test(i8042, command_byte)
{
	uint8_t ctr = command_with_reply(0x20);

	cr_assert_eq(ctr & 0x04, 0x04, "system flag set: we are past POST");
	outb(0x64, 0x60);
	cr_assert_eq(inb(0x64) & 0x08, 0x08, "last write was a command");
	outb(0x60, 0x30);
	cr_assert_eq(inb(0x64) & 0x08, 0, "last write was data");
	cr_assert_eq(command_with_reply(0x20), 0x30);
	cr_assert_eq(inb(0x64) & 0x04, 0, "system flag follows the command byte");

	outb(0x64, 0xae);
	cr_assert_eq(command_with_reply(0x20), 0x20, "keyboard enabled");
	outb(0x64, 0xa8);
	cr_assert_eq(command_with_reply(0x20), 0x00, "aux enabled");
	outb(0x64, 0xad);
	outb(0x64, 0xa7);
	cr_assert_eq(command_with_reply(0x20), 0x30, "both disabled");
}

Test(i8042, output_port)
{
	cr_assert_eq(command_with_reply(0xd0) & 0x03, 0x03, "reset line high, A20 on");
	outb(0x64, 0xd1);
	outb(0x60, 0x01); /* A20 off, reset line still high */
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_RUNNING);
	cr_assert_eq(command_with_reply(0xd0), 0x01);
	outb(0x64, 0xd1);
	outb(0x60, 0x02); /* reset line low */
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_EXIT_RESET);
}

Test(i8042, pulse_reset)
{
	outb(0x64, 0xff); /* pulses nothing */
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_RUNNING);
	outb(0x64, 0xfe);
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_EXIT_RESET);
	cr_assert_eq(atomic_load(&vm.exit_code), 0);
}

Test(i8042, no_keyboard_answers)
{
	outb(0x60, 0xf2); /* keyboard "get ID": nobody there */
	outb(0x60, 0xff);
	cr_assert_eq(inb(0x64) & 0x01, 0);
}

Test(i8042, junk_never_resets_or_crashes)
{
	uint8_t buf[4];
	unsigned int c;

	log__set_level(-1);
	for (c = 0; c < 0x100; c++) {
		if (c >= 0xf0 && !(c & 1))
			continue; /* the pulse-reset commands */
		if (c == 0xd1)
			continue; /* output port write: tested above */
		outb(0x64, (uint8_t)c);
		outb(0x60, (uint8_t)(c * 3 + 1));
		(void)inb(0x60);
		(void)inb(0x64);
	}
	log__set_level(LOG_INFO);
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_RUNNING);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(bus__dispatch(&vm.pio, 0x60, buf, 2, true), -ENOENT, "2 bytes at 0x60");
	cr_assert_eq(bus__dispatch(&vm.pio, 0x64, buf, 4, false), -ENOENT);
	cr_assert_eq(command_with_reply(0xaa), 0x55, "still works");
}
