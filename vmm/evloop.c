// SPDX-License-Identifier: MIT
#include "vmm/evloop.h"
#include "vmm/log.h"
#include "vmm/sys.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EVL_LOG "evloop"
/* del_fd on the loop thread: waits in slices of this long, and says so after EVL_DEL_WARN_MS, then twice as long each time */
#define EVL_DEL_SLICE_MS 500
#define EVL_DEL_WARN_MS 3000u

static void evloop_wake_fn(void *opaque, int res)
{
	struct evloop *l = opaque;
	struct evloop_call *c;

	(void)res;
	sys__eventfd_drain(l->wake_fd);
	/*
	 * A call may run the loop itself (a device's destroy drains its I/O):
	 * the outer pass goes on with the queue, the nested one leaves it.
	 */
	if (l->in_calls)
		return;
	l->in_calls = true;
	/* one at a time: a call may queue another, or free its own struct */
	for (;;) {
		pthread_mutex_lock(&l->call_lock);
		c = l->calls;
		if (c) {
			l->calls = c->next;
			if (!l->calls)
				l->calls_tail = &l->calls;
		}
		pthread_mutex_unlock(&l->call_lock);
		if (!c)
			break;
		c->fn(c->opaque);
	}
	l->in_calls = false;
}

void evloop__call(struct evloop *l, struct evloop_call *c, void (*fn)(void *opaque), void *opaque)
{
	c->fn = fn;
	c->opaque = opaque;
	c->next = NULL;
	pthread_mutex_lock(&l->call_lock);
	*l->calls_tail = c;
	l->calls_tail = &c->next;
	pthread_mutex_unlock(&l->call_lock);
	sys__eventfd_signal(l->wake_fd);
}

int evloop__init(struct evloop *l, unsigned int entries)
{
	return evloop__init_flags(l, entries, 0);
}

int evloop__init_flags(struct evloop *l, unsigned int entries, unsigned int ring_flags)
{
	int ret;

	memset(l, 0, sizeof(*l));
	ret = io_uring_queue_init(entries, &l->ring, ring_flags);
	if (ret < 0) {
		log_err(EVL_LOG, "io_uring_queue_init: %s", strerror(-ret));
		return ret;
	}
	l->loop_thread = pthread_self();
	pthread_mutex_init(&l->sq_lock, NULL);
	pthread_mutex_init(&l->cq_lock, NULL);
	pthread_cond_init(&l->cq_cond, NULL);
	pthread_mutex_init(&l->call_lock, NULL);
	l->calls = NULL;
	l->calls_tail = &l->calls;
	l->wake_fd = sys__eventfd(0);
	if (l->wake_fd < 0) {
		ret = l->wake_fd;
		goto err_ring;
	}
	ret = evloop__add_fd(l, &l->wake_watch, l->wake_fd, POLLIN, evloop_wake_fn, l);
	if (ret)
		goto err_fd;
	return 0;

err_fd:
	close(l->wake_fd);
err_ring:
	io_uring_queue_exit(&l->ring);
	return ret;
}

void evloop__destroy(struct evloop *l)
{
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	l->wake_fd = -1;
	io_uring_queue_exit(&l->ring);
	pthread_cond_destroy(&l->cq_cond);
	pthread_mutex_destroy(&l->cq_lock);
	pthread_mutex_destroy(&l->sq_lock);
	pthread_mutex_destroy(&l->call_lock);
}

/* with sq_lock held */
static struct io_uring_sqe *evloop_sqe_locked(struct evloop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	if (!sqe) {
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	return sqe;
}

static int evloop_arm(struct evloop *l, struct evloop_watch *w)
{
	struct io_uring_sqe *sqe;
	int ret;

	pthread_mutex_lock(&l->sq_lock);
	sqe = evloop_sqe_locked(l);
	if (!sqe) {
		pthread_mutex_unlock(&l->sq_lock);
		return -EBUSY;
	}
	io_uring_prep_poll_multishot(sqe, w->fd, w->events);
	io_uring_sqe_set_data(sqe, w);
	w->armed = true;
	ret = io_uring_submit(&l->ring);
	pthread_mutex_unlock(&l->sq_lock);
	return ret < 0 ? ret : 0;
}

int evloop__add_fd(struct evloop *l, struct evloop_watch *w, int fd, uint32_t events,
		   evloop_fd_fn fn, void *opaque)
{
	int ret;

	*w = (struct evloop_watch){ .tag = EVLOOP_TAG_WATCH, .loop = l, .fd = fd,
				    .events = events, .fn = fn, .opaque = opaque, .active = true };
	ret = evloop_arm(l, w);
	if (ret) {
		w->active = false;
		w->armed = false;
	}
	return ret;
}

static bool evloop_on_loop_thread(struct evloop *l)
{
	return pthread_equal(pthread_self(), l->loop_thread);
}

/*
 * submit the removal of w's poll (its last completion clears armed). An
 * async cancel, not a poll remove: a poll remove refuses (-EALREADY) a
 * multishot poll whose wake-up is being delivered at that moment, and the
 * poll then stays armed with no last completion to come; a cancel marks
 * the poll cancelled whatever it is doing, and its last completion
 * (-ECANCELED) follows. Either answer about the removal itself (found, or
 * -ENOENT when the poll ended already and its last completion is on the
 * way) needs nothing more.
 */
static void evloop_poll_remove(struct evloop *l, struct evloop_watch *w)
{
	struct io_uring_sqe *sqe;

	pthread_mutex_lock(&l->sq_lock);
	sqe = evloop_sqe_locked(l);
	if (sqe) {
		io_uring_prep_cancel64(sqe, (__u64)(uintptr_t)w, 0);
		io_uring_sqe_set_data(sqe, NULL);
		io_uring_submit(&l->ring);
	}
	pthread_mutex_unlock(&l->sq_lock);
}

int evloop__watch_enable(struct evloop *l, struct evloop_watch *w, bool on)
{
	bool armed;

	pthread_mutex_lock(&l->cq_lock);
	if (w->active == on) {
		pthread_mutex_unlock(&l->cq_lock);
		return 0;
	}
	w->active = on;
	armed = w->armed;
	pthread_mutex_unlock(&l->cq_lock);
	if (!on) {
		if (armed)
			evloop_poll_remove(l, w);
		return 0;
	}
	/* still armed: the removal's last completion sees active and re-arms */
	return armed ? 0 : evloop_arm(l, w);
}

static int evloop_run(struct evloop *l, int wait_ms);

/*
 * a removal whose last completion does not come: the fd, what it is, and how
 * long; the wait goes on (freeing w while the kernel may still complete its
 * poll would be worse than waiting)
 */
static void evloop_del_report(const struct evloop_watch *w, long long ms)
{
	char path[64], what[128];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", w->fd);
	n = readlink(path, what, sizeof(what) - 1);
	what[n > 0 ? n : 0] = 0;
	log_err(EVL_LOG, "fd %d (%s): the removal of its watch (events %#x) has had no last "
		"completion after %lld ms; asking again and still waiting", w->fd,
		n > 0 ? what : "?", w->events, ms);
}

int evloop__del_fd(struct evloop *l, struct evloop_watch *w)
{
	if (!w->active && !w->armed)
		return -ENOENT;
	pthread_mutex_lock(&l->cq_lock);
	w->active = false;
	pthread_mutex_unlock(&l->cq_lock);
	evloop_poll_remove(l, w);

	/* wait for the poll's last completion so that w may be freed */
	if (evloop_on_loop_thread(l)) {
		struct timespec t0, now;
		unsigned int said = 0;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (w->armed && evloop_run(l, EVL_DEL_SLICE_MS) >= 0) {
			long long ms;

			if (!w->armed)
				break;
			clock_gettime(CLOCK_MONOTONIC, &now);
			ms = (now.tv_sec - t0.tv_sec) * 1000LL + (now.tv_nsec - t0.tv_nsec) / 1000000;
			if (ms < (long long)EVL_DEL_WARN_MS << said)
				continue;
			/* never silent: say which fd, and ask again (the kernel answers a removal of nothing with -ENOENT) */
			evloop_del_report(w, ms);
			said++;
			l->del_retries++;
			evloop_poll_remove(l, w);
		}
	} else {
		pthread_mutex_lock(&l->cq_lock);
		while (w->armed)
			pthread_cond_wait(&l->cq_cond, &l->cq_lock);
		pthread_mutex_unlock(&l->cq_lock);
	}
	return 0;
}

struct io_uring_sqe *evloop__get_sqe(struct evloop *l, struct evloop_op *op)
{
	struct io_uring_sqe *sqe;

	op->tag = EVLOOP_TAG_OP;
	pthread_mutex_lock(&l->sq_lock);
	sqe = evloop_sqe_locked(l);
	if (!sqe) {
		pthread_mutex_unlock(&l->sq_lock);
		return NULL;
	}
	io_uring_sqe_set_data(sqe, op);
	return sqe;
}

int evloop__submit(struct evloop *l)
{
	int ret = io_uring_submit(&l->ring);

	pthread_mutex_unlock(&l->sq_lock);
	return ret < 0 ? ret : 0;
}

static void evloop_handle_cqe(struct evloop *l, void *data, int res, unsigned int flags)
{
	uint8_t tag;

	if (!data)
		return; /* poll_remove completions */
	tag = *(uint8_t *)data;
	if (tag == EVLOOP_TAG_OP) {
		struct evloop_op *op = data;

		op->fn(op->opaque, res);
		return;
	}
	if (tag == EVLOOP_TAG_WATCH) {
		struct evloop_watch *w = data;
		evloop_fd_fn fn = w->fn;
		void *opaque = w->opaque;
		bool active;

		if (flags & IORING_CQE_F_MORE) {
			/* still armed: del_fd waits for the last completion, w stays valid */
			pthread_mutex_lock(&l->cq_lock);
			active = w->active;
			pthread_mutex_unlock(&l->cq_lock);
		} else {
			/*
			 * The multishot poll ended: re-arm it or tell del_fd. Once
			 * armed is false and the lock is dropped, a del_fd on another
			 * thread may return and free w: touch w only if it is active.
			 */
			pthread_mutex_lock(&l->cq_lock);
			w->armed = false;
			active = w->active;
			pthread_cond_broadcast(&l->cq_cond);
			pthread_mutex_unlock(&l->cq_lock);
			if (active && evloop_arm(l, w))
				log_err(EVL_LOG, "cannot re-arm watch on fd %d", w->fd);
		}
		if (active && res != -ECANCELED)
			fn(opaque, res);
		return;
	}
	log_err(EVL_LOG, "completion with unknown tag %#x", tag);
}

/* wait_ms: 0 none, -1 without bound, else at most that long for a completion */
static int evloop_run(struct evloop *l, int wait_ms)
{
	struct io_uring_cqe *cqe;
	unsigned int n = 0;
	int ret;

	pthread_mutex_lock(&l->sq_lock);
	io_uring_submit(&l->ring);
	pthread_mutex_unlock(&l->sq_lock);
	if (wait_ms) {
		struct __kernel_timespec ts = { .tv_sec = wait_ms / 1000,
						.tv_nsec = (long long)(wait_ms % 1000) * 1000000 };

		ret = wait_ms < 0 ? io_uring_wait_cqe(&l->ring, &cqe) :
				    io_uring_wait_cqe_timeout(&l->ring, &cqe, &ts);
		if (ret == -EINTR || ret == -ETIME)
			return 0;
		if (ret < 0)
			return ret;
	}
	for (;;) {
		void *data;
		int res;
		unsigned int flags;

		ret = io_uring_peek_cqe(&l->ring, &cqe);
		if (ret)
			break;
		data = io_uring_cqe_get_data(cqe);
		res = cqe->res;
		flags = cqe->flags;
		io_uring_cqe_seen(&l->ring, cqe);
		evloop_handle_cqe(l, data, res, flags);
		n++;
	}
	return (int)n;
}

int evloop__run_once(struct evloop *l, bool wait)
{
	return evloop_run(l, wait ? -1 : 0);
}

int evloop__pollfd(const struct evloop *l)
{
	return l->ring.ring_fd;
}

int evloop__run(struct evloop *l)
{
	int ret;

	l->loop_thread = pthread_self();
	l->running = true;
	while (!l->stop) {
		ret = evloop__run_once(l, true);
		if (ret < 0) {
			log_err(EVL_LOG, "waiting for completions: %s", strerror(-ret));
			l->stop_code = ret;
			break;
		}
	}
	l->running = false;
	return l->stop_code;
}

void evloop__stop(struct evloop *l, int code)
{
	l->stop_code = code;
	l->stop = true;
	sys__eventfd_signal(l->wake_fd);
}
