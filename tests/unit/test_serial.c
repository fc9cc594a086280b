// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "devices/serial.h"
#include "vmm/kvm.h"
#include "vmm/log.h"

#define BASE 0x3f8
/* a second UART where a PC has COM2 (the board has none) */
#define COM2_BASE 0x2f8
#define COM2_IRQ 3
#define RBR 0
#define IER 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

static struct vm vm;
static struct serial *s;
static int in_pipe[2], out_pipe[2];

static void setup(void)
{
	cr_assert_eq(kvm__vm_init_fake(&vm, 16 * MiB), 0);
	cr_assert_eq(pipe(in_pipe), 0);
	cr_assert_eq(pipe2(out_pipe, O_NONBLOCK), 0);
	cr_assert_eq(serial__create(&vm, "ttyS0", BASE, 4, in_pipe[0], out_pipe[1], &s), 0);
}

static void teardown(void)
{
	serial__destroy(s);
	close(in_pipe[0]);
	if (in_pipe[1] >= 0)
		close(in_pipe[1]);
	close(out_pipe[0]);
	close(out_pipe[1]);
	kvm__vm_destroy(&vm);
}

TestSuite(serial, .init = setup, .fini = teardown);

static void outb(unsigned int reg, uint8_t v)
{
	cr_assert_eq(bus__dispatch(&vm.pio, BASE + reg, &v, 1, true), 0);
}

static uint8_t inb(unsigned int reg)
{
	uint8_t v = 0;

	cr_assert_eq(bus__dispatch(&vm.pio, BASE + reg, &v, 1, false), 0);
	return v;
}

/* runs the event loop until the backlog or FIFO got `want` more bytes (or 2 s passed) */
static void pump_rx(uint64_t want)
{
	uint64_t start = s->rx_bytes;
	int i;

	for (i = 0; i < 2000 && s->rx_bytes - start < want; i++) {
		cr_assert_geq(evloop__run_once(&vm.loop, false), 0);
		if (s->rx_bytes - start < want)
			usleep(1000);
	}
	cr_assert_eq(s->rx_bytes - start, want);
}

static void feed_input(const char *buf, size_t n)
{
	cr_assert_eq(write(in_pipe[1], buf, n), (ssize_t)n);
	pump_rx(n);
}

static size_t drain_output(char *buf, size_t cap)
{
	ssize_t n = read(out_pipe[0], buf, cap);

	return n < 0 ? 0 : (size_t)n;
}

Test(serial, divisor_latch)
{
	char out[8];

	cr_assert_eq(inb(LSR), 0x60, "THRE|TEMT after reset");
	outb(LCR, 0x83); /* DLAB, 8N1 */
	outb(RBR, 0x01); /* DLL: 115200 */
	outb(IER, 0x00); /* DLM */
	cr_assert_eq(inb(RBR), 0x01);
	cr_assert_eq(inb(IER), 0x00);
	cr_assert_eq(s->dll, 0x01);
	cr_assert_eq(drain_output(out, sizeof(out)), 0, "DLL writes are not output");
	outb(IER, 0x12);
	cr_assert_eq(s->dlm, 0x12);
	cr_assert_eq(s->ier, 0, "DLM write did not touch IER");
	outb(LCR, 0x03);
	cr_assert_eq(inb(LCR), 0x03);
	outb(IER, 0x05);
	cr_assert_eq(inb(IER), 0x05);
	outb(LCR, 0x83);
	cr_assert_eq(inb(IER), 0x12, "DLM still there");
	outb(LCR, 0x03);
	outb(SCR, 0xa5);
	cr_assert_eq(inb(SCR), 0xa5);
}

Test(serial, thr_goes_to_out_fd)
{
	char out[16] = { 0 };
	const char *msg = "hi!\n";
	size_t i;

	for (i = 0; i < strlen(msg); i++) {
		outb(RBR, (uint8_t)msg[i]);
		cr_assert_eq(inb(LSR) & 0x60, 0x60, "THR empty again at once");
	}
	cr_assert_eq(drain_output(out, sizeof(out)), strlen(msg));
	cr_assert_str_eq(out, msg);
	cr_assert_eq(s->tx_bytes, strlen(msg));
}

Test(serial, tx_never_blocks_when_output_full)
{
	char junk[4096];
	uint64_t before;

	memset(junk, 'j', sizeof(junk));
	while (write(out_pipe[1], junk, sizeof(junk)) > 0)
		;
	cr_assert_eq(errno, EAGAIN);
	before = s->tx_dropped;
	outb(RBR, 'x');
	outb(RBR, 'y');
	cr_assert_eq(s->tx_dropped, before + 2);
}

Test(serial, rx_from_in_fd)
{
	cr_assert_eq(inb(LSR) & 0x01, 0, "no data yet");
	feed_input("abc", 3);
	cr_assert_eq(inb(LSR) & 0x01, 0x01);
	cr_assert_eq(inb(RBR), 'a');
	cr_assert_eq(inb(RBR), 'b');
	cr_assert_eq(inb(LSR) & 0x01, 0x01);
	cr_assert_eq(inb(RBR), 'c');
	cr_assert_eq(inb(LSR) & 0x01, 0, "drained");
	cr_assert_eq(inb(RBR), 'c', "an empty RBR reads the last byte again");
}

Test(serial, rx_backlog_feeds_fifo_in_order)
{
	char in[300];
	int i;

	for (i = 0; i < (int)sizeof(in); i++)
		in[i] = (char)(i * 7 + 1);
	outb(FCR, 0x07); /* FIFO on, trigger 1 */
	feed_input(in, sizeof(in));
	cr_assert_eq(s->fifo_count, SERIAL_FIFO_SIZE);
	cr_assert_eq(s->backlog_count, sizeof(in) - SERIAL_FIFO_SIZE);
	for (i = 0; i < (int)sizeof(in); i++) {
		cr_assert_eq(inb(LSR) & 0x01, 0x01, "byte %d", i);
		cr_assert_eq(inb(RBR), (uint8_t)in[i], "byte %d", i);
	}
	cr_assert_eq(inb(LSR) & 0x03, 0, "no data, no overrun");
}

/* more input than the backlog holds stays in the fd and comes in as the guest reads */
Test(serial, rx_flow_control)
{
	static char in[3 * SERIAL_BACKLOG_SIZE + 123];
	int i;

	for (i = 0; i < (int)sizeof(in); i++)
		in[i] = (char)(i % 251);
	outb(FCR, 0x01);
	cr_assert_eq(write(in_pipe[1], in, sizeof(in)), (ssize_t)sizeof(in));
	pump_rx(SERIAL_BACKLOG_SIZE + SERIAL_FIFO_SIZE);
	cr_assert(s->in_pending);
	for (i = 0; i < (int)sizeof(in); i++) {
		cr_assert_eq(inb(LSR) & 0x03, 0x01, "byte %d", i);
		cr_assert_eq(inb(RBR), (uint8_t)in[i], "byte %d", i);
	}
	cr_assert_eq(inb(LSR) & 0x01, 0);
	cr_assert_eq(s->rx_dropped, 0);
	cr_assert_eq(s->rx_bytes, sizeof(in));
	cr_assert_not(s->in_pending);
}

Test(serial, rx_interrupt_and_trigger_level)
{
	outb(FCR, 0xc7); /* FIFO on, clear, trigger 14 */
	outb(IER, 0x01); /* RDI only */
	cr_assert_eq(inb(IIR), 0xc1);
	cr_assert_not(s->irq_level);
	feed_input("0123", 4);
	cr_assert_eq(inb(IIR), 0xcc, "below the trigger level: character timeout");
	cr_assert(s->irq_level);
	feed_input("456789abcd", 10);
	cr_assert_eq(inb(IIR), 0xc4, "14 bytes: data available");
	while (inb(LSR) & 0x01)
		(void)inb(RBR);
	cr_assert_eq(inb(IIR), 0xc1);
	cr_assert_not(s->irq_level);

	outb(FCR, 0x00); /* 16450 mode: one byte holding register, no timeout id */
	cr_assert_eq(inb(IIR), 0x01);
	feed_input("z", 1);
	cr_assert_eq(inb(IIR), 0x04);
}

Test(serial, iir_priorities)
{
	int i;

	outb(FCR, 0xc1);         /* FIFO on, trigger 14 */
	outb(IER, 0x0f);         /* all four sources */
	cr_assert(s->irq_level);
	cr_assert_eq(inb(IIR), 0xc2, "enabling THRI with THR empty: THRE");
	cr_assert_eq(inb(IIR), 0xc1, "the IIR read acknowledged THRE");
	cr_assert_not(s->irq_level);

	outb(MCR, 0x10);         /* loopback: CTS/DSR/DCD drop */
	cr_assert_eq(inb(IIR), 0xc0, "modem status change");
	cr_assert_eq(inb(MSR), 0x0b, "DCTS|DDSR|DDCD, inputs low");
	cr_assert_eq(inb(IIR), 0xc1, "MSR read cleared the deltas");

	outb(RBR, 'x');          /* loops back into the FIFO, THR empty again */
	cr_assert_eq(inb(IIR), 0xcc, "timeout beats THRE");
	for (i = 0; i < 13; i++)
		outb(RBR, (uint8_t)('a' + i));
	cr_assert_eq(inb(IIR), 0xc4, "trigger level reached");
	outb(RBR, 'y');
	outb(RBR, 'z');          /* 16 bytes: full */
	outb(RBR, '!');          /* overrun */
	cr_assert_eq(inb(IIR), 0xc6, "line status beats data");
	cr_assert_eq(inb(LSR) & 0x03, 0x03, "OE and DR");
	cr_assert_eq(inb(IIR), 0xc4, "LSR read cleared OE");
	cr_assert_eq(inb(RBR), 'x');
	for (i = 0; i < 15; i++)
		(void)inb(RBR);
	cr_assert_eq(inb(LSR) & 0x01, 0);
	cr_assert_eq(inb(IIR), 0xc2, "THRE left");
	cr_assert_eq(inb(IIR), 0xc1);
	cr_assert_not(s->irq_level);
}

/* the sequence serial8250_do_startup() uses to detect UART_BUG_THRE */
Test(serial, thre_rearms_on_ier_rising_edge)
{
	outb(IER, 0x02);
	cr_assert_eq(inb(IIR) & 0x0f, 0x02);
	outb(IER, 0x00);
	cr_assert_eq(inb(IIR) & 0x0f, 0x01);
	outb(IER, 0x02);
	cr_assert_eq(inb(IIR) & 0x0f, 0x02, "re-asserted");
	cr_assert_eq(inb(IIR) & 0x0f, 0x01);
	outb(IER, 0x02); /* no edge: stays acknowledged */
	cr_assert_eq(inb(IIR) & 0x0f, 0x01);
	outb(RBR, 'q');  /* a transmitted byte empties THR again */
	cr_assert_eq(inb(IIR) & 0x0f, 0x02);
}

Test(serial, loopback)
{
	char out[8];

	/* Linux's autoconfig loopback check: MCR = LOOP|RTS|OUT2 gives CTS|DCD */
	outb(MCR, 0x1a);
	cr_assert_eq(inb(MSR) & 0xf0, 0x90);
	outb(MCR, 0x1f);
	cr_assert_eq(inb(MSR) & 0xf0, 0xf0);
	outb(MCR, 0x1b); /* OUT1 (RI) falls: trailing edge */
	cr_assert_eq(inb(MSR) & 0x04, 0x04);
	outb(RBR, 'L');
	cr_assert_eq(drain_output(out, sizeof(out)), 0, "loopback data stays inside");
	cr_assert_eq(inb(LSR) & 0x01, 0x01);
	cr_assert_eq(inb(RBR), 'L');

	/* input waits while looped back, arrives when the loop is opened */
	feed_input("i", 1);
	cr_assert_eq(inb(LSR) & 0x01, 0);
	outb(MCR, 0x0b);
	cr_assert_eq(inb(MSR) & 0xf0, 0xb0, "CTS|DSR|DCD out of loopback");
	cr_assert_eq(inb(LSR) & 0x01, 0x01);
	cr_assert_eq(inb(RBR), 'i');
}

Test(serial, fifo_overflow_sets_oe)
{
	int i;

	outb(FCR, 0x01);
	outb(MCR, 0x10);
	for (i = 0; i < SERIAL_FIFO_SIZE + 3; i++)
		outb(RBR, (uint8_t)i);
	cr_assert_eq(s->overruns, 3);
	cr_assert_eq(inb(LSR) & 0x03, 0x03);
	cr_assert_eq(inb(LSR) & 0x03, 0x01, "OE clears on read");
	for (i = 0; i < SERIAL_FIFO_SIZE; i++)
		cr_assert_eq(inb(RBR), i, "the FIFO kept the first 16 bytes");
	cr_assert_eq(inb(LSR) & 0x01, 0);

	outb(FCR, 0x00); /* 16450: the second byte overruns */
	outb(RBR, 'a');
	outb(RBR, 'b');
	cr_assert_eq(inb(LSR) & 0x03, 0x03);
	cr_assert_eq(inb(RBR), 'a');
}

Test(serial, fcr_clears_rx_fifo)
{
	outb(FCR, 0x01);
	feed_input("12345", 5);
	cr_assert_eq(s->fifo_count, 5);
	outb(FCR, 0x03);
	cr_assert_eq(inb(LSR) & 0x01, 0);
	cr_assert_eq(inb(IIR) & 0xc0, 0xc0, "FIFOs still enabled");
}

Test(serial, escape_ctrl_a_x)
{
	int i;

	s->in_is_tty = true; /* a pipe is not a terminal: pretend */
	cr_assert_eq(write(in_pipe[1], "a\x01\x01", 3), 3);
	pump_rx(2); /* Ctrl-A Ctrl-A: one Ctrl-A */
	cr_assert_eq(inb(RBR), 'a');
	cr_assert_eq(inb(RBR), 0x01);
	cr_assert_eq(inb(LSR) & 0x01, 0);
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_RUNNING);

	cr_assert_eq(write(in_pipe[1], "\x01z", 2), 2);
	pump_rx(2); /* Ctrl-A then anything else: both go through */
	cr_assert_eq(inb(RBR), 0x01);
	cr_assert_eq(inb(RBR), 'z');

	cr_assert_eq(write(in_pipe[1], "\x01x", 2), 2);
	for (i = 0; i < 2000 && atomic_load(&vm.exit_reason) == VM_RUNNING; i++) {
		cr_assert_geq(evloop__run_once(&vm.loop, false), 0);
		usleep(1000);
	}
	cr_assert_eq(atomic_load(&vm.exit_reason), VM_EXIT_SIGNAL);
	cr_assert_eq(inb(LSR) & 0x01, 0, "the escape is not passed on");
}

Test(serial, input_eof_stops_watching)
{
	int i;

	close(in_pipe[1]);
	in_pipe[1] = -1;
	for (i = 0; i < 2000 && s->watching; i++) {
		cr_assert_geq(evloop__run_once(&vm.loop, false), 0);
		usleep(1000);
	}
	cr_assert_not(s->watching);
}

Test(serial, junk_accesses)
{
	static const uint32_t widths[] = { 1, 2, 4 };
	uint8_t buf[4];
	unsigned int w, off, v;
	char out[4096];

	log__set_level(LOG_ERR);
	for (w = 0; w < ARRAY_SIZE(widths); w++) {
		for (off = 0; off < 8; off++) {
			for (v = 0; v < 256; v += 17) {
				int ret;

				memset(buf, (int)v, sizeof(buf));
				ret = bus__dispatch(&vm.pio, BASE + off, buf, widths[w], true);
				if (off + widths[w] > 8) {
					cr_assert_eq(ret, -ENOENT);
					continue;
				}
				cr_assert_eq(ret, 0);
				cr_assert_eq(bus__dispatch(&vm.pio, BASE + off, buf, widths[w],
							   false), 0);
			}
		}
	}
	while (drain_output(out, sizeof(out)))
		;
	/* still a working UART afterwards */
	outb(LCR, 0x03);
	outb(MCR, 0x00);
	outb(FCR, 0x07);
	outb(IER, 0x00);
	while (inb(LSR) & 0x01)
		(void)inb(RBR);
	(void)inb(LSR);
	outb(RBR, 'k');
	cr_assert_eq(drain_output(out, sizeof(out)), 1);
	cr_assert_eq(out[0], 'k');
	/* a word write is two byte writes: THR then IER */
	buf[0] = 'w';
	buf[1] = 0x02;
	cr_assert_eq(bus__dispatch(&vm.pio, BASE, buf, 2, true), 0);
	cr_assert_eq(drain_output(out, sizeof(out)), 1);
	cr_assert_eq(out[0], 'w');
	cr_assert_eq(inb(IER), 0x02);
}

Test(serial, create_conflict_and_destroy)
{
	struct serial *s2 = NULL;

	log__set_level(-1);
	cr_assert_eq(serial__create(&vm, "dup", BASE + 4, 4, -1, -1, &s2), -EEXIST);
	log__set_level(LOG_INFO);
	cr_assert_eq(serial__create(&vm, "ttyS1", COM2_BASE, COM2_IRQ, -1, -1, &s2),
		     0);
	outb(SCR, 1); /* COM1 unaffected */
	serial__destroy(s2);
	{
		uint8_t v = 0;

		cr_assert_eq(bus__dispatch(&vm.pio, COM2_BASE, &v, 1, false), -ENOENT);
	}
	serial__destroy(NULL);
}
