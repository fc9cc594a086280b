/* SPDX-License-Identifier: MIT */
/*
 * The VMM thread's event loop on io_uring. Two kinds of work:
 *  - fd watches (multishot poll): eventfds from ioeventfd, tap readiness, the
 *    control socket, signalfd;
 *  - I/O operations that devices prepare themselves (readv/writev on a disk
 *    image or a tap) with a completion callback.
 * Everything runs on the thread that calls evloop__run(); evloop__stop() and
 * evloop__kick() may be called from any thread.
 */
#ifndef MINIVMM_VMM_EVLOOP_H
#define MINIVMM_VMM_EVLOOP_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include "vmm/util.h"

struct evloop;

/* res: poll revents, or -errno (e.g. -ECANCELED when the watch was removed) */
typedef void (*evloop_fd_fn)(void *opaque, int res);
/* res: the cqe result of the operation */
typedef void (*evloop_op_fn)(void *opaque, int res);

struct evloop_watch {
	struct evloop *loop;
	int fd;
	uint32_t events;
	evloop_fd_fn fn;
	void *opaque;
	bool active;
	bool armed;
	uint8_t tag;
};

struct evloop_op {
	evloop_op_fn fn;
	void *opaque;
	uint8_t tag;
};

struct evloop {
	struct io_uring ring;
	int wake_fd;
	struct evloop_watch wake_watch;
	bool stop;
	int stop_code;
	unsigned int inflight;
};

int evloop__init(struct evloop *l, unsigned int entries) __must_check;
void evloop__destroy(struct evloop *l);

/* start watching fd for events (POLLIN...) until evloop__del_fd; w must stay alive */
int evloop__add_fd(struct evloop *l, struct evloop_watch *w, int fd, uint32_t events,
		   evloop_fd_fn fn, void *opaque) __must_check;
int evloop__del_fd(struct evloop *l, struct evloop_watch *w);

/*
 * An SQE whose completion calls op->fn(op->opaque, res). Fill it with
 * io_uring_prep_*() and call evloop__submit(); NULL when the ring is full
 * even after submitting (retry later).
 */
struct io_uring_sqe *evloop__get_sqe(struct evloop *l, struct evloop_op *op);
int evloop__submit(struct evloop *l);

/* run until evloop__stop(); returns the stop code */
int evloop__run(struct evloop *l);
/* process what is ready without blocking (tests) */
int evloop__run_once(struct evloop *l, bool wait);
void evloop__stop(struct evloop *l, int code);

#endif
