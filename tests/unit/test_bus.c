// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "vmm/bus.h"

struct rec {
	uint64_t off;
	uint32_t len;
	bool write;
	uint8_t last[8];
	int calls;
};

static void rec_fn(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct rec *r = opaque;

	r->off = off;
	r->len = len;
	r->write = is_write;
	r->calls++;
	if (is_write)
		memcpy(r->last, data, len);
	else
		memset(data, 0x5a, len);
}

Test(bus, dispatch_offsets_and_reads)
{
	struct bus b;
	struct rec r = { 0 };
	uint8_t d[4] = { 1, 2, 3, 4 };

	cr_assert_eq(bus__init(&b, "t"), 0);
	cr_assert_eq(bus__register(&b, 0x1000, 0x100, rec_fn, &r, "dev"), 0);
	cr_assert_eq(bus__dispatch(&b, 0x1010, d, 4, true), 0);
	cr_assert_eq(r.off, 0x10);
	cr_assert_eq(r.len, 4);
	cr_assert(r.write);
	cr_assert_eq(r.last[3], 4);
	cr_assert_eq(bus__dispatch(&b, 0x10fc, d, 4, false), 0);
	cr_assert_eq(d[0], 0x5a);
	bus__destroy(&b);
}

Test(bus, unmapped_reads_all_ones)
{
	struct bus b;
	struct rec r = { 0 };
	uint8_t d[4] = { 0 };

	cr_assert_eq(bus__init(&b, "t"), 0);
	cr_assert_eq(bus__register(&b, 0x1000, 0x100, rec_fn, &r, "dev"), 0);
	cr_assert_eq(bus__dispatch(&b, 0x2000, d, 4, false), -ENOENT);
	cr_assert_eq(d[0], 0xff);
	cr_assert_eq(d[3], 0xff);
	/* an access straddling the end of a range is not delivered */
	cr_assert_eq(bus__dispatch(&b, 0x10fe, d, 4, false), -ENOENT);
	cr_assert_eq(bus__dispatch(&b, 0xfff, d, 2, true), -ENOENT);
	cr_assert_eq(r.calls, 0);
	/* wrap-around at the top of the address space */
	cr_assert_eq(bus__dispatch(&b, ~0ULL - 1, d, 4, false), -ENOENT);
	bus__destroy(&b);
}

Test(bus, overlaps_refused_and_order_kept)
{
	struct bus b;
	struct rec r[3] = { 0 };
	uint8_t d[1];

	cr_assert_eq(bus__init(&b, "t"), 0);
	cr_assert_eq(bus__register(&b, 0x3000, 0x100, rec_fn, &r[0], "a"), 0);
	cr_assert_eq(bus__register(&b, 0x1000, 0x100, rec_fn, &r[1], "b"), 0);
	cr_assert_eq(bus__register(&b, 0x2000, 0x1000, rec_fn, &r[2], "c"), 0);
	cr_assert_eq(bus__register(&b, 0x10ff, 2, rec_fn, &r[0], "x"), -EEXIST);
	cr_assert_eq(bus__register(&b, 0x2fff, 1, rec_fn, &r[0], "x"), -EEXIST);
	cr_assert_eq(bus__register(&b, 0x0, 0x1001, rec_fn, &r[0], "x"), -EEXIST);
	cr_assert_eq(bus__register(&b, 0x0, 0, rec_fn, &r[0], "x"), -EINVAL);
	cr_assert_eq(bus__register(&b, ~0ULL, 2, rec_fn, &r[0], "x"), -EINVAL);
	cr_assert_eq(bus__count(&b), 3);
	cr_assert_eq(bus__dispatch(&b, 0x1000, d, 1, true), 0);
	cr_assert_eq(bus__dispatch(&b, 0x2fff, d, 1, true), 0);
	cr_assert_eq(bus__dispatch(&b, 0x30ff, d, 1, true), 0);
	cr_assert_eq(r[0].calls, 1);
	cr_assert_eq(r[1].calls, 1);
	cr_assert_eq(r[2].calls, 1);
	cr_assert_eq(r[2].off, 0xfff);
	cr_assert_eq(bus__deregister(&b, 0x2000), 0);
	cr_assert_eq(bus__deregister(&b, 0x2000), -ENOENT);
	cr_assert_eq(bus__dispatch(&b, 0x2fff, d, 1, true), -ENOENT);
	/* adjacent ranges are fine */
	cr_assert_eq(bus__register(&b, 0x1100, 0x100, rec_fn, &r[2], "adj"), 0);
	bus__destroy(&b);
}

/* deregistration waits for a handler that is running on another thread */
struct slow {
	volatile int inside;
	volatile int done;
};

static void slow_fn(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct slow *s = opaque;

	s->inside = 1;
	usleep(200 * 1000);
	s->done = 1;
}

static void *slow_thread(void *arg)
{
	struct bus *b = arg;
	uint8_t d[1];

	bus__dispatch(b, 0x100, d, 1, true);
	return NULL;
}

Test(bus, deregister_waits_for_running_handler)
{
	struct bus b;
	struct slow s = { 0 };
	pthread_t t;

	cr_assert_eq(bus__init(&b, "t"), 0);
	cr_assert_eq(bus__register(&b, 0x100, 0x10, slow_fn, &s, "slow"), 0);
	pthread_create(&t, NULL, slow_thread, &b);
	while (!s.inside)
		usleep(1000);
	cr_assert_eq(bus__deregister(&b, 0x100), 0);
	cr_assert_eq(s.done, 1, "deregister returned while the handler still ran");
	pthread_join(t, NULL);
	bus__destroy(&b);
}
