// SPDX-License-Identifier: MIT
#include "vmm/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <pthread.h>

static int log_level = LOG_INFO;
static FILE *log_stream;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const log_names[] = { "error", "warning", "info", "debug" };

void log__set_level(int level) { log_level = level; }
int log__get_level(void) { return log_level; }
void log__set_stream(void *file) { log_stream = file; }

void log__msg(int level, const char *prefix, const char *fmt, ...)
{
	FILE *out = log_stream ? log_stream : stderr;
	va_list ap;

	if (level > log_level)
		return;
	pthread_mutex_lock(&log_lock);
	if (level <= LOG_WARN)
		fprintf(out, "minivmm: %s: %s: ", prefix ? prefix : "vmm", log_names[level]);
	else
		fprintf(out, "minivmm: %s: ", prefix ? prefix : "vmm");
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
	fflush(out);
	pthread_mutex_unlock(&log_lock);
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
