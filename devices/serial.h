/* SPDX-License-Identifier: MIT */
/*
 * 16550A UART on the port I/O bus (8 registers at base: RBR/THR, IER, IIR/FCR,
 * LCR, MCR, LSR, MSR, SCR; DLL/DLM when LCR.DLAB is set).
 *
 * Transmit is instantaneous: every THR write goes straight to out_fd, so LSR
 * always shows THRE|TEMT. The vCPU never blocks on it: when out_fd is not
 * writable right now the byte is dropped and counted (tx_dropped).
 *
 * Receive: in_fd is watched by the VM's event loop; what it reads goes into a
 * 4 KiB backlog (the "wire") that feeds the 16-byte RX FIFO as the guest drains
 * it. When the backlog is full the rest stays in in_fd (flow control) and is
 * read, without blocking, as the guest drains the FIFO; nothing is dropped
 * (rx_dropped is a safety counter that stays 0).
 * in_fd is never read with a blocking call. There is no character timer: data
 * sitting below the FIFO
 * trigger level is reported at once as a character timeout (IIR 0xC), which
 * is what a real UART does once the line goes quiet.
 *
 * Interrupts: the IIR priority is RLS (overrun) > RDA/timeout > THRE > MSR.
 * THRE is pending after each THR write and on a rising edge of IER.THRI while
 * THR is empty; reading IIR while THRE is the reported source clears it (the
 * behaviour Linux's 8250 driver tests for at startup). The line is driven with
 * irq__line(irq, level) whenever the pending state changes. MCR.OUT2 does not
 * gate the line.
 *
 * Loopback (MCR.LOOP): THR writes go into the RX FIFO (a full FIFO sets LSR.OE
 * and loses the byte), the modem inputs follow the modem outputs (CTS=RTS,
 * DSR=DTR, RI=OUT1, DCD=OUT2) and in_fd input waits in the backlog. Out of
 * loopback MSR shows CTS|DSR|DCD.
 *
 * Escape: when in_fd is a terminal, Ctrl-A x asks the VM to exit
 * (VM_EXIT_SIGNAL); Ctrl-A Ctrl-A sends one Ctrl-A to the guest; Ctrl-A
 * followed by anything else sends both bytes.
 */
#ifndef MINIVMM_DEVICES_SERIAL_H
#define MINIVMM_DEVICES_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/evloop.h"
#include "vmm/log.h"
#include "vmm/device.h"
#include "vmm/util.h"

struct vm;

#define SERIAL_NR_REGS 8
#define SERIAL_FIFO_SIZE 16
#define SERIAL_BACKLOG_SIZE 4096

/* Ctrl-A: the escape character when in_fd is a terminal */
#define SERIAL_ESCAPE_CHAR 0x01

struct serial {
	struct vm *vm;
	struct vmm_device dev;       /* the device model (vmm/device.h) */
	char name[32];
	uint16_t base;
	uint32_t irq;
	int in_fd;        /* -1: no input */
	int out_fd;       /* -1: output discarded */
	bool in_is_tty;   /* Ctrl-A escapes are honoured */
	bool registered;  /* port range is on the bus */
	bool coalesced;   /* THR writes queue in KVM's coalesced ring (kvm__coalesce_pio) */
	bool watching;    /* in_fd is on the event loop */

	pthread_mutex_t lock;

	/* registers */
	uint8_t ier, lcr, mcr, lsr, msr, scr, dll, dlm;
	uint8_t fcr;           /* last FCR write (write-only register) */
	bool thr_pending;      /* THRE interrupt condition */
	bool irq_level;        /* what the line is driven to */

	/* RX FIFO (ring) */
	uint8_t fifo[SERIAL_FIFO_SIZE];
	unsigned int fifo_head, fifo_count;
	uint8_t last_rx;

	/* input not yet in the FIFO (ring) */
	uint8_t backlog[SERIAL_BACKLOG_SIZE];
	unsigned int backlog_head, backlog_count;
	bool escape;           /* Ctrl-A seen, waiting for the command byte */
	bool in_pending;       /* in_fd was left unread because the backlog was full */
	bool in_closed;        /* in_fd hit EOF or failed: no more reads */

	struct evloop_watch watch;

	uint64_t tx_bytes, tx_dropped, rx_bytes, rx_dropped, overruns;
	struct log_ratelimit rl;
};

/*
 * Registers the UART at [base, base+8) on vm->pio, raising irq (the board
 * chooses both: COM1 is vmm/x86/platform.h's X86_COM1_BASE/IRQ) and, when in_fd >= 0,
 * watches in_fd on vm->loop (the caller keeps both fds open until
 * serial__destroy). name is the log prefix ("ttyS0").
 */
int serial__create(struct vm *vm, const char *name, uint16_t base, uint32_t irq, int in_fd,
		   int out_fd, struct serial **out) __must_check;
/* removes the port range (waiting for running handlers) and the fd watch; NULL is a no-op */
void serial__destroy(struct serial *s);

#endif
