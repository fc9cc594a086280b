// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>

#include "vmm/evloop.h"
#include "vmm/sys.h"

struct hit {
	int calls;
	int res;
	int fd;
};

static void hit_fn(void *opaque, int res)
{
	struct hit *h = opaque;
	uint64_t v;

	h->calls++;
	h->res = res;
	if (h->fd >= 0 && read(h->fd, &v, sizeof(v)) < 0)
		h->res = -1;
}

Test(evloop, watch_fires_repeatedly_until_removed)
{
	struct evloop l;
	struct evloop_watch w;
	struct hit h = { 0 };
	int efd = sys__eventfd(0);

	h.fd = efd;
	cr_assert_eq(evloop__init(&l, 16), 0);
	cr_assert_eq(evloop__add_fd(&l, &w, efd, POLLIN, hit_fn, &h), 0);
	cr_assert_eq(sys__eventfd_signal(efd), 0);
	while (h.calls < 1)
		cr_assert_geq(evloop__run_once(&l, true), 0);
	cr_assert(h.res & POLLIN);
	cr_assert_eq(sys__eventfd_signal(efd), 0);
	while (h.calls < 2)
		cr_assert_geq(evloop__run_once(&l, true), 0);
	cr_assert_eq(evloop__del_fd(&l, &w), 0);
	cr_assert(!w.armed, "del_fd returns only once the poll is gone");
	cr_assert_eq(sys__eventfd_signal(efd), 0);
	cr_assert_geq(evloop__run_once(&l, false), 0);
	cr_assert_eq(h.calls, 2, "a removed watch never fires");
	cr_assert_eq(evloop__del_fd(&l, &w), -ENOENT);
	evloop__destroy(&l);
	close(efd);
}

struct opdone {
	int res;
	int done;
};

static void op_fn(void *opaque, int res)
{
	struct opdone *d = opaque;

	d->res = res;
	d->done = 1;
}

Test(evloop, io_operations_complete_on_the_loop)
{
	struct evloop l;
	struct evloop_op op = { .fn = op_fn };
	struct opdone d = { 0 };
	struct io_uring_sqe *sqe;
	char path[] = "/tmp/evloop-XXXXXX";
	char buf[16] = { 0 };
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	unlink(path);
	cr_assert_eq(write(fd, "hello uring", 11), 11);
	cr_assert_eq(evloop__init(&l, 16), 0);
	op.opaque = &d;
	sqe = evloop__get_sqe(&l, &op);
	cr_assert_not_null(sqe);
	io_uring_prep_read(sqe, fd, buf, sizeof(buf), 0);
	cr_assert_eq(evloop__submit(&l), 0);
	while (!d.done)
		cr_assert_geq(evloop__run_once(&l, true), 0);
	cr_assert_eq(d.res, 11);
	cr_assert_str_eq(buf, "hello uring");
	evloop__destroy(&l);
	close(fd);
}

static void *stopper(void *arg)
{
	usleep(50 * 1000);
	evloop__stop(arg, 42);
	return NULL;
}

Test(evloop, stop_from_another_thread)
{
	struct evloop l;
	pthread_t t;

	cr_assert_eq(evloop__init(&l, 16), 0);
	pthread_create(&t, NULL, stopper, &l);
	cr_assert_eq(evloop__run(&l), 42);
	pthread_join(t, NULL);
	evloop__destroy(&l);
}

struct remover {
	struct evloop *l;
	struct evloop_watch *w;
	int ret;
};

static void *remove_thread(void *arg)
{
	struct remover *r = arg;

	r->ret = evloop__del_fd(r->l, r->w);
	evloop__stop(r->l, 7);
	return NULL;
}

Test(evloop, remove_watch_from_another_thread_while_running)
{
	struct evloop l;
	struct evloop_watch w;
	struct hit h = { .fd = -1 };
	struct remover r;
	int p[2];
	pthread_t t;

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(evloop__init(&l, 16), 0);
	cr_assert_eq(evloop__add_fd(&l, &w, p[0], POLLIN, hit_fn, &h), 0);
	r = (struct remover){ .l = &l, .w = &w };
	pthread_create(&t, NULL, remove_thread, &r);
	cr_assert_eq(evloop__run(&l), 7);
	pthread_join(t, NULL);
	cr_assert_eq(r.ret, 0);
	cr_assert(!w.armed);
	evloop__destroy(&l);
}

static void *remove_poison_thread(void *arg)
{
	struct remover *r = arg;

	r->ret = evloop__del_fd(r->l, r->w);
	/* del_fd returned: the watch is the caller's again, poison and free it */
	memset(r->w, 0xff, sizeof(*r->w));
	free(r->w);
	evloop__stop(r->l, 9);
	return NULL;
}

/*
 * The loop thread must not touch a watch once it has told a del_fd waiting on
 * another thread that the poll ended (the waiter may free it at once). A
 * poisoned, freed watch makes a late access crash (or ASan report it). The
 * race window is a few instructions wide, so this catches a regression only
 * now and then; it always checks that a heap watch can be removed and freed
 * from another thread while the loop runs.
 */
Test(evloop, removed_watch_is_not_touched_after_del_fd_returns)
{
	struct evloop l;
	struct hit h = { .fd = -1 };
	struct remover r;
	int i, p[2];
	pthread_t t;

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(write(p[1], "x", 1), 1); /* keep the watch firing */
	for (i = 0; i < 100; i++) {
		struct evloop_watch *w = malloc(sizeof(*w));

		cr_assert_not_null(w);
		cr_assert_eq(evloop__init(&l, 16), 0);
		cr_assert_eq(evloop__add_fd(&l, w, p[0], POLLIN, hit_fn, &h), 0);
		r = (struct remover){ .l = &l, .w = w };
		pthread_create(&t, NULL, remove_poison_thread, &r);
		cr_assert_eq(evloop__run(&l), 9);
		pthread_join(t, NULL);
		cr_assert_eq(r.ret, 0);
		evloop__destroy(&l);
	}
	close(p[0]);
	close(p[1]);
}

/* evloop__call: from other threads, run on the loop thread, in order */
struct calls {
	struct evloop *l;
	pthread_t loop_thread;
	int order[64];
	_Atomic int n;
	int wrong_thread;
	struct evloop_call c[64];
};

struct call_arg {
	struct calls *cs;
	int i;
};

static struct call_arg call_args[64];

static void call_record(void *opaque)
{
	struct call_arg *a = opaque;

	if (!pthread_equal(pthread_self(), a->cs->loop_thread))
		a->cs->wrong_thread++;
	a->cs->order[atomic_fetch_add(&a->cs->n, 1)] = a->i;
	/* a call may queue another one: it runs in this same pass or the next */
	if (a->i == 5)
		evloop__call(a->cs->l, &a->cs->c[63], call_record, &call_args[63]);
}

static void *call_thread(void *opaque)
{
	struct calls *cs = opaque;

	for (int i = 0; i < 10; i++) {
		call_args[i] = (struct call_arg){ cs, i };
		evloop__call(cs->l, &cs->c[i], call_record, &call_args[i]);
	}
	return NULL;
}

Test(evloop, calls_from_another_thread_run_on_the_loop_in_order)
{
	static struct calls cs;
	struct evloop l;
	pthread_t t;

	cr_assert_eq(evloop__init(&l, 16), 0);
	cs.l = &l;
	cs.loop_thread = pthread_self();
	call_args[63] = (struct call_arg){ &cs, 63 };
	cr_assert_eq(pthread_create(&t, NULL, call_thread, &cs), 0);
	pthread_join(t, NULL);
	while (atomic_load(&cs.n) < 11)
		cr_assert_geq(evloop__run_once(&l, true), 0);
	cr_assert_eq(cs.wrong_thread, 0, "every call ran on the loop thread");
	for (int i = 0; i < 10; i++)
		cr_assert_eq(cs.order[i], i, "call %d ran out of order", i);
	cr_assert_eq(cs.order[10], 63, "the call queued by call 5 runs after those queued before it");
	evloop__destroy(&l);
}

Test(evloop, silenced_watch_does_not_fire_and_wakes_again)
{
	struct evloop l;
	struct evloop_watch w;
	struct hit h = { 0 };
	int efd = sys__eventfd(0), i;

	h.fd = efd;
	cr_assert_eq(evloop__init(&l, 16), 0);
	cr_assert_eq(evloop__add_fd(&l, &w, efd, POLLIN, hit_fn, &h), 0);
	cr_assert_eq(evloop__watch_enable(&l, &w, false), 0);
	for (i = 0; i < 10 && w.armed; i++)
		cr_assert_geq(evloop__run_once(&l, false), 0);
	cr_assert_not(w.armed, "silenced: its poll left the ring");
	cr_assert_eq(sys__eventfd_signal(efd), 0);
	cr_assert_geq(evloop__run_once(&l, false), 0);
	cr_assert_eq(h.calls, 0, "a silenced watch never fires");
	cr_assert_eq(evloop__watch_enable(&l, &w, true), 0);
	for (i = 0; i < 10 && !h.calls; i++)
		cr_assert_geq(evloop__run_once(&l, true), 0);
	cr_assert_eq(h.calls, 1, "woken: the pending event fires");
	/* off and on again before the removal completed: still one live poll */
	cr_assert_eq(evloop__watch_enable(&l, &w, false), 0);
	cr_assert_eq(evloop__watch_enable(&l, &w, true), 0);
	for (i = 0; i < 5; i++)
		cr_assert_geq(evloop__run_once(&l, false), 0);
	cr_assert(w.armed);
	cr_assert_eq(sys__eventfd_signal(efd), 0);
	for (i = 0; i < 10 && h.calls < 2; i++)
		cr_assert_geq(evloop__run_once(&l, true), 0);
	cr_assert_eq(h.calls, 2);
	/* del_fd takes a silenced watch too */
	cr_assert_eq(evloop__watch_enable(&l, &w, false), 0);
	cr_assert_eq(evloop__del_fd(&l, &w), 0);
	cr_assert_not(w.armed);
	cr_assert_eq(evloop__del_fd(&l, &w), -ENOENT);
	evloop__destroy(&l);
	close(efd);
}

/*
 * A removal racing the fd's wake-up: another thread signals the eventfd
 * just before del_fd, while the loop thread makes no system call, so the
 * poll's wake-up is still queued (as task work) when the removal reaches
 * the kernel. A poll-remove refuses a multishot poll it cannot take over
 * then (-EALREADY) and the poll stays armed: del_fd waited for a last
 * completion that never came (kvm_unplug in the lab's L1 hung after quit).
 */
struct racer {
	int efd;
	atomic_int go, fired, stop;
};

static void *racer_thread(void *opaque)
{
	struct racer *r = opaque;

	for (;;) {
		while (!atomic_load(&r->go) && !atomic_load(&r->stop))
			;
		if (atomic_load(&r->stop))
			return NULL;
		atomic_store(&r->go, 0);
		if (sys__eventfd_signal(r->efd))
			return NULL;
		atomic_store(&r->fired, 1);
	}
}

Test(evloop, del_fd_racing_a_wakeup_gets_its_last_completion, .timeout = 120)
{
	struct evloop l;
	struct evloop_watch w;
	struct hit h = { 0 };
	struct racer r = { 0 };
	pthread_t t;
	uint64_t v;
	int i;

	r.efd = sys__eventfd(0);
	cr_assert_geq(r.efd, 0);
	h.fd = -1; /* the test reads the counter itself */
	/* the wake-up's task work waits for the loop thread's next io_uring_enter */
	if (evloop__init_flags(&l, 16, IORING_SETUP_COOP_TASKRUN))
		cr_assert_eq(evloop__init(&l, 16), 0); /* a kernel before 5.19: a narrower race */
	cr_assert_eq(pthread_create(&t, NULL, racer_thread, &r), 0);
	for (i = 0; i < 1000; i++) {
		cr_assert_eq(evloop__add_fd(&l, &w, r.efd, POLLIN, hit_fn, &h), 0);
		atomic_store(&r.go, 1);
		while (!atomic_load(&r.fired))
			; /* no system call: the wake-up stays queued */
		atomic_store(&r.fired, 0);
		cr_assert_eq(evloop__del_fd(&l, &w), 0);
		cr_assert(!w.armed);
		cr_assert_eq(read(r.efd, &v, sizeof(v)), (ssize_t)sizeof(v));
	}
	atomic_store(&r.stop, 1);
	pthread_join(t, NULL);
	cr_assert_eq(l.del_retries, 0, "%u of 1000 removals got no last completion until asked again",
		     l.del_retries);
	evloop__destroy(&l);
	close(r.efd);
}
