// SPDX-License-Identifier: MIT
#include "vmm/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <pthread.h>
#include <unistd.h>

static int log_level = LOG_INFO;
static FILE *log_stream;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static bool log_console_mid; /* under log_lock: the guest's console is inside a line */
static unsigned int log_console_wait_ms = LOG_CONSOLE_WAIT_MS;

void log__set_console_wait_ms(unsigned int ms) { log_console_wait_ms = ms; }

static const char *const log_names[] = { "error", "warning", "info", "debug" };

void log__set_level(int level) { log_level = level; }
int log__get_level(void) { return log_level; }
void log__set_stream(void *file) { log_stream = file; }

void log__msg(int level, const char *prefix, const char *fmt, ...)
{
	FILE *out = log_stream ? log_stream : stderr;
	va_list ap;
	char line[4096];
	int n, m;

	if (level > log_level)
		return;
	/*
	 * The whole line in one write: the guest's console often shares the
	 * file, and a byte of it must not land inside a line
	 */
	if (level <= LOG_WARN)
		n = snprintf(line, sizeof(line), "minivmm: %s: %s: ", prefix ? prefix : "vmm",
			     log_names[level]);
	else
		n = snprintf(line, sizeof(line), "minivmm: %s: ", prefix ? prefix : "vmm");
	if (n < 0 || (size_t)n >= sizeof(line) - 1)
		n = 0;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2; /* a longer message is cut */
	line[n++] = '\n';
	/*
	 * And not inside a line of the guest's console either: wait (a bounded
	 * while) for the one it is writing to end (log__console_write)
	 */
	for (m = 0;; m++) {
		pthread_mutex_lock(&log_lock);
		if (!log_console_mid || (unsigned int)m >= log_console_wait_ms)
			break;
		pthread_mutex_unlock(&log_lock);
		usleep(1000);
	}
	fwrite(line, 1, (size_t)n, out);
	fflush(out);
	pthread_mutex_unlock(&log_lock);
}

ssize_t log__console_write(int fd, uint8_t b)
{
	ssize_t n;

	pthread_mutex_lock(&log_lock);
	do {
		n = write(fd, &b, 1);
	} while (n < 0 && errno == EINTR);
	if (n == 1)
		log_console_mid = b != '\n';
	pthread_mutex_unlock(&log_lock);
	return n;
}

int log__ratelimit_ok(struct log_ratelimit *rl)
{
	struct timespec ts;
	int ok;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	pthread_mutex_lock(&log_lock);
	if (!rl->interval_s)
		rl->interval_s = 5;
	if (!rl->burst)
		rl->burst = 10;
	if (ts.tv_sec - rl->window_start >= (time_t)rl->interval_s) {
		if (rl->suppressed) {
			FILE *out = log_stream ? log_stream : stderr;
			fprintf(out, "minivmm: %u similar messages suppressed\n", rl->suppressed);
		}
		rl->window_start = ts.tv_sec;
		rl->printed = 0;
		rl->suppressed = 0;
	}
	ok = rl->printed < rl->burst;
	if (ok)
		rl->printed++;
	else
		rl->suppressed++;
	pthread_mutex_unlock(&log_lock);
	return ok;
}
