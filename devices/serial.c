// SPDX-License-Identifier: MIT
/*
 * 16550A UART. See serial.h for the model; the register layout follows the
 * National Semiconductor PC16550D datasheet.
 */
#include "devices/serial.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/bus.h"
#include "vmm/irq.h"
#include "vmm/kvm.h"

/* register offsets */
#define UART_RX 0  /* RBR (read), THR (write), DLL with DLAB */
#define UART_IER 1 /* DLM with DLAB */
#define UART_IIR 2 /* IIR (read), FCR (write) */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IER_RDI 0x01  /* received data available */
#define UART_IER_THRI 0x02 /* THR empty */
#define UART_IER_RLSI 0x04 /* receiver line status */
#define UART_IER_MSI 0x08  /* modem status */
#define UART_IER_MASK 0x0f

#define UART_IIR_NO_INT 0x01
#define UART_IIR_MSI 0x00
#define UART_IIR_THRI 0x02
#define UART_IIR_RDI 0x04
#define UART_IIR_RLSI 0x06
#define UART_IIR_TIMEOUT 0x0c
#define UART_IIR_ID_MASK 0x0f
#define UART_IIR_FIFO_ENABLED 0xc0

#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLEAR_RCVR 0x02
#define UART_FCR_CLEAR_XMIT 0x04
#define UART_FCR_DMA 0x08
#define UART_FCR_TRIGGER_MASK 0xc0

#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10
#define UART_MCR_MASK 0x1f

#define UART_LSR_DR 0x01
#define UART_LSR_OE 0x02
#define UART_LSR_PE 0x04
#define UART_LSR_FE 0x08
#define UART_LSR_BI 0x10
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_LSR_ERRORS (UART_LSR_OE | UART_LSR_PE | UART_LSR_FE | UART_LSR_BI)

#define UART_MSR_DCTS 0x01
#define UART_MSR_DDSR 0x02
#define UART_MSR_TERI 0x04
#define UART_MSR_DDCD 0x08
#define UART_MSR_DELTAS 0x0f
#define UART_MSR_CTS 0x10
#define UART_MSR_DSR 0x20
#define UART_MSR_RI 0x40
#define UART_MSR_DCD 0x80

static bool serial_fifo_enabled(const struct serial *s)
{
	return s->fcr & UART_FCR_ENABLE;
}

/* in 16450 mode the "FIFO" is the one-byte receive buffer register */
static unsigned int serial_fifo_cap(const struct serial *s)
{
	return serial_fifo_enabled(s) ? SERIAL_FIFO_SIZE : 1;
}

static unsigned int serial_trigger_level(const struct serial *s)
{
	static const unsigned int levels[4] = { 1, 4, 8, 14 };

	if (!serial_fifo_enabled(s))
		return 1;
	return levels[(s->fcr & UART_FCR_TRIGGER_MASK) >> 6];
}

static bool serial_loopback(const struct serial *s)
{
	return s->mcr & UART_MCR_LOOP;
}

static void serial_fifo_clear(struct serial *s)
{
	s->fifo_head = 0;
	s->fifo_count = 0;
}

/* a byte arriving at the receiver; a full FIFO is an overrun and the byte is lost */
static void serial_fifo_push(struct serial *s, uint8_t b)
{
	if (s->fifo_count >= serial_fifo_cap(s)) {
		s->lsr |= UART_LSR_OE;
		s->overruns++;
		return;
	}
	s->fifo[(s->fifo_head + s->fifo_count) % SERIAL_FIFO_SIZE] = b;
	s->fifo_count++;
}

static void serial_pull_input(struct serial *s);

static void serial_feed_fifo(struct serial *s)
{
	while (s->backlog_count && s->fifo_count < serial_fifo_cap(s)) {
		serial_fifo_push(s, s->backlog[s->backlog_head]);
		s->backlog_head = (s->backlog_head + 1) % SERIAL_BACKLOG_SIZE;
		s->backlog_count--;
	}
}

/*
 * Moves backlog bytes into the FIFO while it has room (the line is
 * disconnected in loopback). When in_fd was left unread because the backlog
 * was full, what it holds now is pulled in: the fd watch only fires on new
 * input, so the guest draining the FIFO is what restarts the flow.
 */
static void serial_feed(struct serial *s)
{
	if (serial_loopback(s))
		return;
	serial_feed_fifo(s);
	if (s->in_pending && s->backlog_count < SERIAL_BACKLOG_SIZE) {
		serial_pull_input(s);
		serial_feed_fifo(s);
	}
}

static uint8_t serial_iir(const struct serial *s)
{
	uint8_t id;

	if ((s->ier & UART_IER_RLSI) && (s->lsr & UART_LSR_ERRORS))
		id = UART_IIR_RLSI;
	else if ((s->ier & UART_IER_RDI) && s->fifo_count)
		id = s->fifo_count >= serial_trigger_level(s) ? UART_IIR_RDI : UART_IIR_TIMEOUT;
	else if ((s->ier & UART_IER_THRI) && s->thr_pending)
		id = UART_IIR_THRI;
	else if ((s->ier & UART_IER_MSI) && (s->msr & UART_MSR_DELTAS))
		id = UART_IIR_MSI;
	else
		id = UART_IIR_NO_INT;
	return id | (serial_fifo_enabled(s) ? UART_IIR_FIFO_ENABLED : 0);
}

static void serial_update_irq(struct serial *s)
{
	bool level = !(serial_iir(s) & UART_IIR_NO_INT);

	if (level == s->irq_level)
		return;
	s->irq_level = level;
	irq__line(&s->vm->irq, s->irq, level);
}

static uint8_t serial_lsr(const struct serial *s)
{
	uint8_t lsr = s->lsr | UART_LSR_THRE | UART_LSR_TEMT;

	if (s->fifo_count)
		lsr |= UART_LSR_DR;
	return lsr;
}

/* modem status inputs: wired to the modem outputs in loopback, always "on" otherwise */
static uint8_t serial_modem_inputs(const struct serial *s)
{
	uint8_t v = 0;

	if (!serial_loopback(s))
		return UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD;
	if (s->mcr & UART_MCR_RTS)
		v |= UART_MSR_CTS;
	if (s->mcr & UART_MCR_DTR)
		v |= UART_MSR_DSR;
	if (s->mcr & UART_MCR_OUT1)
		v |= UART_MSR_RI;
	if (s->mcr & UART_MCR_OUT2)
		v |= UART_MSR_DCD;
	return v;
}

static void serial_update_msr(struct serial *s)
{
	uint8_t old = s->msr & ~UART_MSR_DELTAS;
	uint8_t now = serial_modem_inputs(s);
	uint8_t deltas = s->msr & UART_MSR_DELTAS;

	if ((old ^ now) & UART_MSR_CTS)
		deltas |= UART_MSR_DCTS;
	if ((old ^ now) & UART_MSR_DSR)
		deltas |= UART_MSR_DDSR;
	if ((old & UART_MSR_RI) && !(now & UART_MSR_RI))
		deltas |= UART_MSR_TERI;
	if ((old ^ now) & UART_MSR_DCD)
		deltas |= UART_MSR_DDCD;
	s->msr = now | deltas;
}

/* never blocks: a byte that cannot be written right now is dropped */
static void serial_tx(struct serial *s, uint8_t b)
{
	struct pollfd pfd = { .fd = s->out_fd, .events = POLLOUT };
	ssize_t n = -1;

	if (s->out_fd < 0)
		return;
	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT))
		n = log__console_write(s->out_fd, b); /* no log line lands inside the guest's */
	if (n == 1) {
		s->tx_bytes++;
		return;
	}
	s->tx_dropped++;
	log_err_rl(&s->rl, s->name, "output not writable, dropped a byte (%llu so far)",
		   (unsigned long long)s->tx_dropped);
}

static uint8_t serial_read_reg(struct serial *s, unsigned int reg)
{
	uint8_t v;

	switch (reg) {
	case UART_RX:
		if (s->lcr & UART_LCR_DLAB)
			return s->dll;
		if (!s->fifo_count)
			return s->last_rx;
		v = s->fifo[s->fifo_head];
		s->fifo_head = (s->fifo_head + 1) % SERIAL_FIFO_SIZE;
		s->fifo_count--;
		s->last_rx = v;
		serial_feed(s);
		return v;
	case UART_IER:
		if (s->lcr & UART_LCR_DLAB)
			return s->dlm;
		return s->ier;
	case UART_IIR:
		v = serial_iir(s);
		/* reading IIR acknowledges a THRE interrupt it reports */
		if ((v & UART_IIR_ID_MASK) == UART_IIR_THRI)
			s->thr_pending = false;
		return v;
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		v = serial_lsr(s);
		s->lsr &= ~UART_LSR_ERRORS;
		return v;
	case UART_MSR:
		v = s->msr;
		s->msr &= ~UART_MSR_DELTAS;
		return v;
	case UART_SCR:
	default:
		return s->scr;
	}
}

static void serial_write_fcr(struct serial *s, uint8_t val)
{
	/* FIFO enable must be set for the other bits to take; toggling it clears the FIFOs */
	if ((val ^ s->fcr) & UART_FCR_ENABLE)
		serial_fifo_clear(s);
	if (!(val & UART_FCR_ENABLE)) {
		s->fcr = 0;
	} else {
		if (val & UART_FCR_CLEAR_RCVR)
			serial_fifo_clear(s);
		/* UART_FCR_CLEAR_XMIT: the transmitter is always empty */
		s->fcr = val & (UART_FCR_ENABLE | UART_FCR_DMA | UART_FCR_TRIGGER_MASK);
	}
	serial_feed(s);
}

static void serial_write_reg(struct serial *s, unsigned int reg, uint8_t val)
{
	uint8_t changed;

	switch (reg) {
	case UART_RX:
		if (s->lcr & UART_LCR_DLAB) {
			s->dll = val;
			return;
		}
		if (serial_loopback(s))
			serial_fifo_push(s, val);
		else
			serial_tx(s, val);
		/* the byte is gone at once: THR is empty again */
		s->thr_pending = true;
		return;
	case UART_IER:
		if (s->lcr & UART_LCR_DLAB) {
			s->dlm = val;
			return;
		}
		changed = (s->ier ^ val) & UART_IER_MASK;
		s->ier = val & UART_IER_MASK;
		/*
		 * A rising edge of THRI with THR empty raises THRE again even if
		 * an IIR read had acknowledged it (Linux's startup THRE test
		 * toggles IER to check this); clearing THRI drops it.
		 */
		if (changed & UART_IER_THRI)
			s->thr_pending = s->ier & UART_IER_THRI;
		return;
	case UART_IIR:
		serial_write_fcr(s, val);
		return;
	case UART_LCR:
		s->lcr = val;
		return;
	case UART_MCR:
		changed = (s->mcr ^ val) & UART_MCR_MASK;
		s->mcr = val & UART_MCR_MASK;
		if (changed)
			serial_update_msr(s);
		if (changed & UART_MCR_LOOP)
			serial_feed(s);
		return;
	case UART_LSR:
	case UART_MSR:
		/* factory test registers on real parts: ignored */
		return;
	case UART_SCR:
	default:
		s->scr = val;
		return;
	}
}

static void serial_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct serial *s = opaque;
	uint32_t i;

	pthread_mutex_lock(&s->lock);
	/* wider accesses act as consecutive byte accesses, as on an 8-bit ISA part */
	for (i = 0; i < len; i++) {
		if (offset >= SERIAL_NR_REGS || i >= SERIAL_NR_REGS - offset) {
			if (!is_write)
				data[i] = 0xff;
			continue;
		}
		if (is_write)
			serial_write_reg(s, offset + i, data[i]);
		else
			data[i] = serial_read_reg(s, offset + i);
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_backlog_push(struct serial *s, uint8_t b)
{
	if (s->backlog_count >= SERIAL_BACKLOG_SIZE) {
		s->rx_dropped++;
		log_err_rl(&s->rl, s->name, "input buffer full, dropped a byte (%llu so far)",
			   (unsigned long long)s->rx_dropped);
		return;
	}
	s->backlog[(s->backlog_head + s->backlog_count) % SERIAL_BACKLOG_SIZE] = b;
	s->backlog_count++;
	s->rx_bytes++;
}

static void serial_input_byte(struct serial *s, uint8_t b)
{
	if (s->in_is_tty) {
		if (s->escape) {
			s->escape = false;
			if (b == 'x' || b == 'X') {
				log_info(s->name, "Ctrl-A x: stopping the VM");
				kvm__request_exit(s->vm, VM_EXIT_SIGNAL, 0);
				return;
			}
			if (b != SERIAL_ESCAPE_CHAR)
				serial_backlog_push(s, SERIAL_ESCAPE_CHAR);
		} else if (b == SERIAL_ESCAPE_CHAR) {
			s->escape = true;
			return;
		}
	}
	serial_backlog_push(s, b);
}

/*
 * Reads what in_fd holds right now (never blocking) while the backlog has
 * room; leaves the rest there (in_pending) when the backlog fills up.
 */
static void serial_pull_input(struct serial *s)
{
	struct pollfd pfd = { .fd = s->in_fd, .events = POLLIN };
	uint8_t buf[256];
	size_t room;
	ssize_t n, i;

	if (s->in_fd < 0 || s->in_closed)
		return;
	for (;;) {
		room = SERIAL_BACKLOG_SIZE - s->backlog_count;
		/* a pending Ctrl-A can turn the next byte into two */
		if (s->escape && room)
			room--;
		if (!room) {
			s->in_pending = true;
			return;
		}
		s->in_pending = false;
		if (poll(&pfd, 1, 0) != 1)
			return;
		n = read(s->in_fd, buf, MIN(room, sizeof(buf)));
		if (n > 0) {
			for (i = 0; i < n; i++)
				serial_input_byte(s, buf[i]);
			continue;
		}
		if (n == 0) {
			log_info(s->name, "input closed");
			s->in_closed = true;
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			log_err(s->name, "input read failed: %s", strerror(errno));
			s->in_closed = true;
		}
		return;
	}
}

static void serial_rx_ready(void *opaque, int res)
{
	struct serial *s = opaque;
	bool stop;

	pthread_mutex_lock(&s->lock);
	if (res < 0) {
		/* the watch itself failed: stop reading rather than spin on it */
		log_err(s->name, "input watch failed: %s", strerror(-res));
		s->in_closed = true;
	}
	serial_pull_input(s);
	serial_feed(s);
	serial_update_irq(s);
	stop = s->in_closed;
	pthread_mutex_unlock(&s->lock);

	if (stop && s->watching) {
		s->watching = false;
		evloop__del_fd(&s->vm->loop, &s->watch);
	}
}

static void serial_reset(struct serial *s)
{
	s->ier = 0;
	s->lcr = 0;
	s->mcr = 0;
	s->lsr = 0;
	s->scr = 0;
	s->dll = 0x0c; /* 9600 baud */
	s->dlm = 0;
	s->fcr = 0;
	s->thr_pending = false;
	s->msr = serial_modem_inputs(s);
	serial_fifo_clear(s);
}

/* --- state: migration section "serial" (docs/migration.md) ------------------- */

#define SERIAL_STATE_VERSION 1

static int serial_save(void *opaque, void *fdt)
{
	struct serial *s = opaque;
	uint8_t fifo[SERIAL_FIFO_SIZE];
	uint32_t v[11];
	static const char *const names[] = { "ier", "lcr", "mcr", "lsr", "msr", "scr", "dll", "dlm",
					     "fcr", "thr_pending", "last_rx" };
	unsigned int i, n;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	v[0] = s->ier, v[1] = s->lcr, v[2] = s->mcr, v[3] = s->lsr, v[4] = s->msr, v[5] = s->scr;
	v[6] = s->dll, v[7] = s->dlm, v[8] = s->fcr, v[9] = s->thr_pending, v[10] = s->last_rx;
	n = s->fifo_count;
	for (i = 0; i < n; i++)
		fifo[i] = s->fifo[(s->fifo_head + i) % SERIAL_FIFO_SIZE];
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < ARRAY_SIZE(names) && !ret; i++)
		ret = mig__put_u32(fdt, names[i], v[i]);
	if (!ret)
		ret = mig__put_bytes(fdt, "rx_fifo", fifo, n);
	return ret;
}

static int serial_load(void *opaque, const void *fdt, int node, uint32_t version)
{
	struct serial *s = opaque;
	static const char *const names[] = { "ier", "lcr", "mcr", "lsr", "msr", "scr", "dll", "dlm",
					     "fcr", "thr_pending", "last_rx" };
	uint32_t v[11];
	const void *fifo;
	size_t n;
	unsigned int i;
	int ret = 0;

	(void)version;
	for (i = 0; i < ARRAY_SIZE(names) && !ret; i++)
		ret = mig__get_u32_max(fdt, node, names[i], i == 9 ? 1 : 255, &v[i]);
	if (!ret)
		ret = mig__get_blob(fdt, node, "rx_fifo", &fifo, &n);
	if (ret)
		return ret;
	if (n > SERIAL_FIFO_SIZE) {
		log_err(s->name, "state: rx_fifo holds %zu bytes, the FIFO %d", n, SERIAL_FIFO_SIZE);
		return -EINVAL;
	}
	pthread_mutex_lock(&s->lock);
	s->ier = (uint8_t)v[0], s->lcr = (uint8_t)v[1], s->mcr = (uint8_t)v[2];
	s->lsr = (uint8_t)v[3], s->msr = (uint8_t)v[4], s->scr = (uint8_t)v[5];
	s->dll = (uint8_t)v[6], s->dlm = (uint8_t)v[7], s->fcr = (uint8_t)v[8];
	s->thr_pending = v[9], s->last_rx = (uint8_t)v[10];
	memcpy(s->fifo, fifo, n);
	s->fifo_head = 0;
	s->fifo_count = (unsigned int)n;
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static const struct mig_section_ops serial_state_ops = {
	.save = serial_save,
	.load = serial_load,
};

static void serial_dev_destroy(struct vmm_device *d)
{
	serial__destroy(container_of(d, struct serial, dev));
}

/* the UART's registers and counters (`devices`, SIGUSR2): is an interrupt held or lost? */
static void serial_dev_describe(struct vmm_device *d, json_t *o)
{
	struct serial *s = container_of(d, struct serial, dev);

	pthread_mutex_lock(&s->lock);
	json_object_set_new(o, "uart",
			    json_pack("{s:i,s:i,s:i,s:i,s:b,s:b,s:i,s:I,s:I,s:I,s:I,s:b}",
				      "ier", s->ier, "iir", serial_iir(s), "lsr", serial_lsr(s),
				      "mcr", s->mcr, "thr_pending", s->thr_pending,
				      "irq_level", s->irq_level, "rx_fifo", (int)s->fifo_count,
				      "tx_bytes", (json_int_t)s->tx_bytes,
				      "tx_dropped", (json_int_t)s->tx_dropped,
				      "rx_bytes", (json_int_t)s->rx_bytes,
				      "rx_dropped", (json_int_t)s->rx_dropped,
				      "tx_coalesced", s->coalesced));
	pthread_mutex_unlock(&s->lock);
}

static const struct vmm_device_ops serial_dev_ops = {
	.destroy = serial_dev_destroy,
	.describe = serial_dev_describe,
};

int serial__create(struct vm *vm, const char *name, uint16_t base, uint32_t irq, int in_fd,
		   int out_fd, struct serial **out)
{
	struct serial *s;
	int ret;

	if (!vm || !out)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->vm = vm;
	snprintf(s->name, sizeof(s->name), "%s", name ? name : "serial");
	s->base = base;
	s->irq = irq;
	s->in_fd = in_fd;
	s->out_fd = out_fd;
	s->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT;
	ret = -pthread_mutex_init(&s->lock, NULL);
	if (ret)
		goto err_free;
	serial_reset(s);

	ret = bus__register(&vm->pio, base, SERIAL_NR_REGS, serial_io, s, s->name);
	if (ret) {
		log_err(s->name, "cannot register ports %#x-%#x: %s", base,
			base + SERIAL_NR_REGS - 1, strerror(-ret));
		goto err_mutex;
	}
	s->registered = true;
	/*
	 * THR writes need no exit: what the guest can observe of one (LSR,
	 * IIR, the THRE interrupt) it observes through a later access or
	 * exit, before which KVM's queue is applied. A printk byte then costs
	 * one exit (its LSR poll), not two
	 */
	ret = kvm__coalesce_pio(vm, base + UART_RX, 1);
	if (!ret) {
		s->coalesced = true;
		log_info(s->name, "transmit writes are coalesced (KVM_CAP_COALESCED_PIO): no exit of their own");
	} else if (ret != -ENOTSUP)
		log_warn(s->name, "transmit writes will exit one by one: %s", strerror(-ret));

	if (in_fd >= 0) {
		s->in_is_tty = isatty(in_fd);
		ret = evloop__add_fd(&vm->loop, &s->watch, in_fd, POLLIN, serial_rx_ready, s);
		if (ret) {
			log_err(s->name, "cannot watch input fd %d: %s", in_fd, strerror(-ret));
			goto err_deregister;
		}
		s->watching = true;
	}
	device__init(&s->dev, name, "serial", DEVICE_BUS_PLATFORM, &serial_dev_ops);
	snprintf(s->dev.where, sizeof(s->dev.where), "io %#x irq %u", base, irq);
	ret = device__register_state(&s->dev, &vm->mig, "serial", 0, SERIAL_STATE_VERSION, 1,
				     &serial_state_ops, s);
	if (!ret)
		ret = device__add(&s->vm->devices, &s->dev);
	if (ret) {
		log_err(s->name, "cannot add device '%s': %s", s->dev.id,
			ret == -EEXIST ? "the id is taken" : strerror(-ret));
		serial__destroy(s);
		return ret;
	}
	*out = s;
	return 0;

err_deregister:
	bus__deregister(&vm->pio, base);
err_mutex:
	pthread_mutex_destroy(&s->lock);
err_free:
	free(s);
	return ret;
}

void serial__destroy(struct serial *s)
{
	if (!s)
		return;
	device__remove(&s->vm->devices, &s->dev);
	device__unregister_state(&s->dev, &s->vm->mig);
	if (s->coalesced)
		kvm__uncoalesce_pio(s->vm, s->base + UART_RX, 1);
	if (s->registered)
		bus__deregister(&s->vm->pio, s->base);
	if (s->watching)
		evloop__del_fd(&s->vm->loop, &s->watch);
	if (s->irq_level)
		irq__line(&s->vm->irq, s->irq, 0);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
