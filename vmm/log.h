/* SPDX-License-Identifier: MIT */
/*
 * Logging with a per-component prefix ("virtio-net0: ...") and a rate limit for
 * faults a guest can trigger at will (bad rings, wild MMIO).
 */
#ifndef MINIVMM_VMM_LOG_H
#define MINIVMM_VMM_LOG_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

enum log_level { LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* messages at or below this level are printed (default LOG_INFO) */
void log__set_level(int level);
int log__get_level(void);
/* where messages go (default stderr); used by tests to capture output */
void log__set_stream(void *file /* FILE * */);

/*
 * The guest's console byte b to fd (the serial port's output), one write;
 * n as write(2) returns it. The log and the console often share a file (a
 * terminal, the lab's logs): a message logged while the guest is inside a
 * line waits until that line ends, LOG_CONSOLE_WAIT_MS at most, so that it
 * never splits a line of the guest's.
 */
#define LOG_CONSOLE_WAIT_MS 20 /* a guest paused mid-line delays a message this much */
ssize_t log__console_write(int fd, uint8_t b);
/* tests: another bound than LOG_CONSOLE_WAIT_MS */
void log__set_console_wait_ms(unsigned int ms);

void log__msg(int level, const char *prefix, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Allows `burst` messages per `interval_s` seconds; the rest are counted and summarised. */
struct log_ratelimit {
	unsigned int interval_s;
	unsigned int burst;
	time_t window_start;
	unsigned int printed;
	unsigned int suppressed;
};
#define LOG_RATELIMIT_INIT { .interval_s = 5, .burst = 10 }

/* returns 1 when the caller may print now */
int log__ratelimit_ok(struct log_ratelimit *rl);

#define log_err(prefix, ...) log__msg(LOG_ERR, prefix, __VA_ARGS__)
#define log_warn(prefix, ...) log__msg(LOG_WARN, prefix, __VA_ARGS__)
#define log_info(prefix, ...) log__msg(LOG_INFO, prefix, __VA_ARGS__)
#define log_debug(prefix, ...) log__msg(LOG_DEBUG, prefix, __VA_ARGS__)

/* log_err, but at most rl's burst per interval */
#define log_err_rl(rl, prefix, ...)                              \
	do {                                                     \
		if (log__ratelimit_ok(rl))                       \
			log__msg(LOG_ERR, prefix, __VA_ARGS__);  \
	} while (0)

/* log_warn, but at most rl's burst per interval */
#define log_warn_rl(rl, prefix, ...)                             \
	do {                                                     \
		if (log__ratelimit_ok(rl))                       \
			log__msg(LOG_WARN, prefix, __VA_ARGS__); \
	} while (0)

#endif
