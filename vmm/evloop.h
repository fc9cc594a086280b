/* SPDX-License-Identifier: MIT */
/*
 * The VMM thread's event loop on io_uring. Two kinds of work:
 *  - fd watches (multishot poll): eventfds from ioeventfd, tap readiness, the
 *    control socket, signalfd;
 *  - I/O operations that devices prepare themselves (readv/writev on a disk
 *    image or a tap) with a completion callback.
 * Completions run on the loop thread (the one that called evloop__init, or
 * later evloop__run). Watches and operations may be added from any thread;
 * evloop__del_fd from another thread waits for the loop thread to confirm
 * the removal, so the loop must be running then.
 */
#ifndef MINIVMM_VMM_EVLOOP_H
#define MINIVMM_VMM_EVLOOP_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "vmm/util.h"

struct evloop;

/* res: poll revents, or -errno (e.g. -ECANCELED when the watch was removed) */
typedef void (*evloop_fd_fn)(void *opaque, int res);
/* res: the cqe result of the operation */
typedef void (*evloop_op_fn)(void *opaque, int res);

enum { EVLOOP_TAG_WATCH = 0x57, EVLOOP_TAG_OP = 0x4f };

/* both kinds start with a tag: a cqe's user_data points at one of them */
struct evloop_watch {
	uint8_t tag;
	struct evloop *loop;
	int fd;
	uint32_t events;
	evloop_fd_fn fn;
	void *opaque;
	bool active;  /* wanted by the owner */
	bool armed;   /* a multishot poll is in the ring */
};

struct evloop_op {
	uint8_t tag;
	evloop_op_fn fn;
	void *opaque;
};

/*
 * A function to run on the loop thread, queued from any thread
 * (evloop__call): the way other threads hand work to the VMM thread instead of
 * taking its locks. The caller owns the struct until fn has started.
 */
struct evloop_call {
	void (*fn)(void *opaque);
	void *opaque;
	struct evloop_call *next;
};

struct evloop {
	struct io_uring ring;
	int wake_fd;
	struct evloop_watch wake_watch;
	volatile bool stop;
	int stop_code;
	bool running;           /* evloop__run() is active on loop_thread */
	pthread_t loop_thread;  /* the thread that completes events: evloop__init's, then evloop__run's */
	pthread_mutex_t sq_lock; /* the submission queue, shared by all threads */
	pthread_mutex_t cq_lock; /* watch disarm notifications */
	pthread_cond_t cq_cond;
	pthread_mutex_t call_lock; /* the queue of evloop__call */
	struct evloop_call *calls, **calls_tail;
	bool in_calls;             /* the loop thread is running queued calls */
	/* evloop__del_fd on the loop thread had to ask again for a removal (none expected) */
	unsigned int del_retries;
};

int evloop__init(struct evloop *l, unsigned int entries) __must_check;
/*
 * the same with io_uring setup flags (minivmm uses none; a unit test uses
 * IORING_SETUP_COOP_TASKRUN, which holds a completion's task work until the
 * loop thread enters the kernel, to make a race with a wake-up certain)
 */
int evloop__init_flags(struct evloop *l, unsigned int entries, unsigned int ring_flags) __must_check;
void evloop__destroy(struct evloop *l);

/*
 * Start watching fd for events (POLLIN...) until evloop__del_fd; any thread.
 * evloop__del_fd returns once the watch can no longer fire, so w may be freed then.
 */
int evloop__add_fd(struct evloop *l, struct evloop_watch *w, int fd, uint32_t events,
		   evloop_fd_fn fn, void *opaque) __must_check;
int evloop__del_fd(struct evloop *l, struct evloop_watch *w);
/*
 * Silence a watch (on = false) or wake it again, on the loop thread, without
 * waiting: off takes its poll out of the ring (no wake-up of the loop per
 * event any more) and returns at once; on re-arms it (or lets the poll's
 * last completion re-arm it). w stays the caller's until evloop__del_fd,
 * which also accepts a silenced watch. 0 or -errno.
 */
int evloop__watch_enable(struct evloop *l, struct evloop_watch *w, bool on);

/*
 * An SQE whose completion calls op->fn(op->opaque, res) on the loop thread.
 * get_sqe takes the submission lock: fill the SQE with io_uring_prep_*() and
 * then call evloop__submit(), which drops it. NULL (lock not held) when the
 * ring is full even after submitting: retry later.
 */
struct io_uring_sqe *evloop__get_sqe(struct evloop *l, struct evloop_op *op);
int evloop__submit(struct evloop *l);

/*
 * Queues c->fn(c->opaque) to run on the loop thread, in the order queued;
 * any thread, never blocks. Calls still queued at evloop__destroy are dropped.
 */
void evloop__call(struct evloop *l, struct evloop_call *c, void (*fn)(void *opaque), void *opaque);

/* run until evloop__stop(); returns the stop code */
int evloop__run(struct evloop *l);
/*
 * A descriptor that polls readable (POLLIN) when the loop has completions
 * to run: a caller that must also wait on another fd polls both, then
 * runs evloop__run_once(l, false).
 */
int evloop__pollfd(const struct evloop *l);
/* process what is ready without blocking (tests) */
int evloop__run_once(struct evloop *l, bool wait);
void evloop__stop(struct evloop *l, int code);

#endif
