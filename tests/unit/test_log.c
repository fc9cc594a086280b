// SPDX-License-Identifier: MIT
/*
 * vmm/log.c and the guest's console sharing one file: a message logged
 * while the guest is inside a console line waits for that line to end (and
 * at most LOG_CONSOLE_WAIT_MS, 20 ms), so that it never splits the guest's line.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/log.h"

static FILE *f;
static int fd;

static void *finish_line(void *arg)
{
	(void)arg;
	usleep(10000); /* the log message is waiting by now */
	for (const char *p = "def\n"; *p; p++)
		cr_assert_eq(log__console_write(fd, (uint8_t)*p), 1);
	return NULL;
}

static char *contents(void)
{
	static char buf[4096];
	ssize_t n;

	fflush(f);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	cr_assert_geq(n, 0);
	buf[n] = 0;
	return buf;
}

Test(log, a_message_waits_for_the_guests_line_to_end)
{
	char path[] = "/tmp/minivmm-test-log.XXXXXX";
	pthread_t t;

	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	f = fdopen(dup(fd), "a");
	cr_assert_not_null(f);
	log__set_stream(f);
	log__set_console_wait_ms(10000); /* the finishing thread's sleep never runs past it */
	for (const char *p = "LAB-TICK 1 ping"; *p; p++)
		cr_assert_eq(log__console_write(fd, (uint8_t)*p), 1);
	cr_assert_eq(pthread_create(&t, NULL, finish_line, NULL), 0);
	log__msg(LOG_INFO, "vf0", "carries traffic");
	pthread_join(t, NULL);
	cr_assert_str_eq(contents(), "LAB-TICK 1 pingdef\nminivmm: vf0: carries traffic\n",
			 "the guest's line stays whole: '%s'", contents());

	/* a line that never ends (or a guest paused mid-line) delays a message, but only so long */
	log__set_console_wait_ms(LOG_CONSOLE_WAIT_MS);
	for (const char *p = "login: "; *p; p++)
		cr_assert_eq(log__console_write(fd, (uint8_t)*p), 1);
	log__msg(LOG_INFO, "vmm", "still logged");
	cr_assert(strstr(contents(), "login: minivmm: vmm: still logged\n"), "'%s'", contents());
	log__set_stream(NULL);
	fclose(f);
	close(fd);
}
