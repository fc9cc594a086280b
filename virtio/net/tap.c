// SPDX-License-Identifier: MIT
/*
 * Tap backend on the io_uring event loop.
 *
 * Receive: one readv at a time into a private buffer. A frame that arrives is
 * handed to the device (cbs->rx); while the device accepts frames the next
 * readv follows at once. The tap is O_NONBLOCK, so a readv on an empty tap
 * completes with -EAGAIN; the multishot POLLIN watch then restarts reading
 * when the next frame arrives. When the device answers -ENOBUFS the frame is
 * held and reading pauses until rx_resume(), which re-offers the held frame
 * from a NOP completion (callbacks never run inside an op).
 *
 * Transmit: each frame is one writev from the guest's buffers (tap writes do
 * not block, so these complete at submission); up to TAP_TX_SLOTS in flight.
 */
#include "virtio/net/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/log.h"
#include "vmm/sys.h"

#define TAP_TX_SLOTS 64
#define TAP_DRAIN_TRIES 500 /* x 1 ms at destroy */

struct tap;

struct tap_tx_slot {
	struct evloop_op op;
	struct tap *t;
	uint32_t token;
	bool busy;
};

struct tap {
	struct net_backend be;
	struct evloop *loop;
	char prefix[32];
	char ifname[IFNAMSIZ];
	int fd;

	const struct net_backend_cbs *cbs;
	void *opaque;
	bool started;
	bool paused;	  /* the device had no buffers: hold rx_buf, no reads */
	bool reading;	  /* a readv is in flight */
	bool nop_pending; /* a re-offer of the held frame is in flight */
	size_t held_len;  /* bytes of a frame held in rx_buf, 0 when none */
	uint8_t *rx_buf;
	size_t rx_buf_size;
	uint64_t rx_oversized; /* frames longer than rx_buf: dropped */
	struct iovec rx_iov;
	struct evloop_op rx_op, nop_op, cancel_op;

	struct evloop_watch watch;
	bool watching;

	struct tap_tx_slot tx[TAP_TX_SLOTS];
	unsigned int inflight; /* ring operations not yet completed */
	struct log_ratelimit rl;
};

static struct tap *to_tap(struct net_backend *b)
{
	return container_of(b, struct tap, be);
}

uint32_t tap__offload_flags(uint64_t f)
{
	uint32_t flags = 0;

	if (!(f & (1ULL << VIRTIO_NET_F_GUEST_CSUM)))
		return 0; /* segmentation offloads need checksum offload */
	flags |= TUN_F_CSUM;
	if (f & (1ULL << VIRTIO_NET_F_GUEST_TSO4))
		flags |= TUN_F_TSO4;
	if (f & (1ULL << VIRTIO_NET_F_GUEST_TSO6))
		flags |= TUN_F_TSO6;
	if ((f & (1ULL << VIRTIO_NET_F_GUEST_ECN)) && (flags & (TUN_F_TSO4 | TUN_F_TSO6)))
		flags |= TUN_F_TSO_ECN;
	if (f & (1ULL << VIRTIO_NET_F_GUEST_UFO))
		flags |= TUN_F_UFO;
	return flags;
}

const char *tap__ifname(const struct net_backend *b)
{
	return container_of(b, struct tap, be)->ifname;
}

int tap__fd(const struct net_backend *b)
{
	return container_of(b, struct tap, be)->fd;
}

/* socket(2) in the sys.h style: fd or -errno */
static int tap_sys_socket(int domain, int type, int proto)
{
	int fd = socket(domain, type | SOCK_CLOEXEC, proto);

	return fd < 0 ? -errno : fd;
}

static int tap_link_up(struct tap *t)
{
	struct ifreq ifr;
	int sock, ret;

	sock = tap_sys_socket(AF_INET, SOCK_DGRAM, 0);
	if (sock < 0)
		return sock;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, t->ifname, sizeof(ifr.ifr_name));
	ret = sys__ioctl_raw(sock, SIOCGIFFLAGS, &ifr);
	if (ret >= 0 && !(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		ret = sys__ioctl_raw(sock, SIOCSIFFLAGS, &ifr);
	}
	sys__close(sock);
	return ret < 0 ? ret : 0;
}

static void tap_rx_kick(struct tap *t);

/* hand the frame in rx_buf to the device; read on unless it has no room */
static void tap_rx_offer(struct tap *t)
{
	int ret;

	if (!t->started || !t->held_len)
		return;
	ret = t->cbs->rx(t->opaque, t->rx_buf, t->held_len);
	if (ret == -ENOBUFS) {
		t->paused = true;
		return;
	}
	t->held_len = 0;
	tap_rx_kick(t);
}

static void tap_rx_done(void *opaque, int res)
{
	struct tap *t = opaque;

	t->inflight--;
	t->reading = false;
	if (res < 0) {
		/* -EAGAIN: empty; the POLLIN watch restarts us */
		if (res != -EAGAIN && res != -ECANCELED && res != -EINTR)
			log_err_rl(&t->rl, t->prefix, "tap %s read: %s", t->ifname, strerror(-res));
		return;
	}
	if (res == 0)
		return;
	if ((size_t)res > t->rx_buf_size) {
		/*
		 * The read has one byte more than the largest frame taken: a
		 * result past rx_buf_size is a frame that did not fit. tun
		 * copies what fits and returns either that (this kernel) or
		 * the frame's whole length: either way, never hand it on.
		 */
		t->rx_oversized++;
		log_warn_rl(&t->rl, t->prefix, "tap %s: a %d-byte frame does not fit the %zu-byte "
			    "receive buffer: dropped (%llu so far)", t->ifname, res, t->rx_buf_size,
			    (unsigned long long)t->rx_oversized);
		tap_rx_kick(t);
		return;
	}
	t->held_len = (size_t)res;
	/* stopped meanwhile: keep the frame for the next start() */
	tap_rx_offer(t);
}

static void tap_nop_done(void *opaque, int res)
{
	struct tap *t = opaque;

	t->inflight--;
	t->nop_pending = false;
	if (t->paused)
		return; /* no room again before we got here */
	if (t->held_len)
		tap_rx_offer(t);
	else
		tap_rx_kick(t);
}

/* start the next step of the receive path if none is under way */
static void tap_rx_kick(struct tap *t)
{
	struct io_uring_sqe *sqe;

	if (!t->started || t->paused || t->reading || t->nop_pending)
		return;
	if (t->held_len) {
		sqe = evloop__get_sqe(t->loop, &t->nop_op);
		if (!sqe)
			return; /* ring full: the POLLIN watch or next resume retries */
		io_uring_prep_nop(sqe);
		t->nop_pending = true;
	} else {
		sqe = evloop__get_sqe(t->loop, &t->rx_op);
		if (!sqe)
			return;
		t->rx_iov.iov_base = t->rx_buf;
		t->rx_iov.iov_len = t->rx_buf_size + 1; /* one byte more: see tap_rx_done */
		io_uring_prep_readv(sqe, t->fd, &t->rx_iov, 1, 0);
		t->reading = true;
	}
	t->inflight++;
	evloop__submit(t->loop);
}

static void tap_poll_event(void *opaque, int res)
{
	struct tap *t = opaque;

	if (res < 0)
		return;
	tap_rx_kick(t);
}

static int tap_start(struct net_backend *b, const struct net_backend_cbs *cbs, void *opaque)
{
	struct tap *t = to_tap(b);
	int ret;

	t->cbs = cbs;
	t->opaque = opaque;
	if (t->watching) {
		/* silenced at the last stop() */
		ret = evloop__watch_enable(t->loop, &t->watch, true);
		if (ret < 0) {
			log_err(t->prefix, "tap %s: cannot watch: %s", t->ifname, strerror(-ret));
			return ret;
		}
	} else {
		ret = evloop__add_fd(t->loop, &t->watch, t->fd, POLLIN, tap_poll_event, t);
		if (ret < 0) {
			log_err(t->prefix, "tap %s: cannot watch: %s", t->ifname, strerror(-ret));
			return ret;
		}
		t->watching = true;
	}
	t->started = true;
	t->paused = false;
	tap_rx_kick(t);
	return 0;
}

static void tap_stop(struct net_backend *b)
{
	struct tap *t = to_tap(b);

	t->started = false;
	t->paused = false;
	t->held_len = 0;
	/*
	 * no wake-up of the loop per frame while stopped: another reader of
	 * the tap (vhost-net) may be moving them now
	 */
	if (t->watching && evloop__watch_enable(t->loop, &t->watch, false))
		log_err_rl(&t->rl, t->prefix, "tap %s: cannot silence its watch", t->ifname);
}

static void tap_rx_resume(struct net_backend *b)
{
	struct tap *t = to_tap(b);

	if (!t->started)
		return;
	t->paused = false;
	tap_rx_kick(t);
}

static void tap_tx_done(void *opaque, int res)
{
	struct tap_tx_slot *s = opaque;
	struct tap *t = s->t;

	t->inflight--;
	s->busy = false;
	t->cbs->tx_done(t->opaque, s->token, res);
}

static int tap_tx(struct net_backend *b, const struct iovec *iov, int cnt, uint32_t token)
{
	struct tap *t = to_tap(b);
	struct io_uring_sqe *sqe;
	struct tap_tx_slot *s = NULL;
	unsigned int i;

	if (cnt <= 0 || cnt > IOV_MAX)
		return -EINVAL;
	for (i = 0; i < TAP_TX_SLOTS; i++) {
		if (!t->tx[i].busy) {
			s = &t->tx[i];
			break;
		}
	}
	if (!s)
		return -EBUSY;
	sqe = evloop__get_sqe(t->loop, &s->op);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_writev(sqe, t->fd, iov, (unsigned int)cnt, 0);
	s->busy = true;
	s->token = token;
	t->inflight++;
	evloop__submit(t->loop);
	return 0;
}

static int tap_set_vnet_hdr_len(struct net_backend *b, unsigned int len)
{
	struct tap *t = to_tap(b);
	int sz = (int)len;
	int ret;

	ret = sys__ioctl_raw(t->fd, TUNSETVNETHDRSZ, &sz);
	if (ret < 0)
		log_err(t->prefix, "tap %s: TUNSETVNETHDRSZ %u: %s", t->ifname, len,
			strerror(-ret));
	return ret < 0 ? ret : 0;
}

static int tap_set_offloads(struct net_backend *b, uint64_t guest_features)
{
	struct tap *t = to_tap(b);
	uint32_t flags = tap__offload_flags(guest_features);
	int ret;

	ret = sys__ioctl_raw(t->fd, TUNSETOFFLOAD, (void *)(unsigned long)flags);
	if (ret < 0)
		log_err(t->prefix, "tap %s: TUNSETOFFLOAD %#x: %s", t->ifname, flags,
			strerror(-ret));
	return ret < 0 ? ret : 0;
}

static void tap_cancel_done(void *opaque, int res)
{
	struct tap *t = opaque;

	t->inflight--;
}

static void tap_destroy(struct net_backend *b)
{
	struct tap *t = to_tap(b);
	struct io_uring_sqe *sqe;
	unsigned int i;

	tap_stop(b);
	if (t->watching)
		evloop__del_fd(t->loop, &t->watch);
	if (t->inflight) {
		sqe = evloop__get_sqe(t->loop, &t->cancel_op);
		if (sqe) {
			io_uring_prep_cancel_fd(sqe, t->fd, IORING_ASYNC_CANCEL_ALL);
			t->inflight++;
			evloop__submit(t->loop);
		}
	}
	for (i = 0; i < TAP_DRAIN_TRIES && (t->inflight || (t->watching && t->watch.armed)); i++) {
		evloop__run_once(t->loop, false);
		if (t->inflight || t->watch.armed)
			usleep(1000);
	}
	if (t->inflight || (t->watching && t->watch.armed)) {
		/* the kernel may still write into rx_buf: leak rather than free */
		log_err(t->prefix, "tap %s: %u operations still in flight, leaking the backend",
			t->ifname, t->inflight);
		return;
	}
	sys__close(t->fd);
	free(t->rx_buf);
	free(t);
}

static const struct net_backend_ops tap_ops = {
    .start = tap_start,
    .tx = tap_tx,
    .rx_resume = tap_rx_resume,
    .set_vnet_hdr_len = tap_set_vnet_hdr_len,
    .set_offloads = tap_set_offloads,
    .stop = tap_stop,
    .destroy = tap_destroy,
};

int tap__create(struct evloop *loop, const char *prefix, const char *ifname,
		struct net_backend **out)
{
	return tap__create_sized(loop, prefix, ifname, TAP_RX_BUF_SIZE, out);
}

uint64_t tap__rx_oversized(const struct net_backend *b)
{
	return container_of(b, struct tap, be)->rx_oversized;
}

int tap__create_sized(struct evloop *loop, const char *prefix, const char *ifname,
		      size_t rx_buf_size, struct net_backend **out)
{
	struct ifreq ifr;
	unsigned int features = 0;
	unsigned int i;
	struct tap *t;
	int ret;

	if (!ifname || !*ifname || strlen(ifname) >= IFNAMSIZ) {
		log_err(prefix, "tap name '%s' is empty or longer than %d characters",
			ifname ? ifname : "", IFNAMSIZ - 1);
		return -EINVAL;
	}
	if (rx_buf_size < TAP_RX_BUF_MIN) {
		log_err(prefix, "tap %s: a %zu-byte receive buffer is too small", ifname, rx_buf_size);
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->rx_buf_size = rx_buf_size;
	t->rx_buf = malloc(rx_buf_size + 1);
	if (!t->rx_buf) {
		ret = -ENOMEM;
		goto err_free;
	}
	t->be.ops = &tap_ops;
	t->be.kind = "tap";
	t->loop = loop;
	snprintf(t->prefix, sizeof(t->prefix), "%s", prefix ? prefix : "tap");
	t->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT;
	t->rx_op.fn = tap_rx_done;
	t->rx_op.opaque = t;
	t->nop_op.fn = tap_nop_done;
	t->nop_op.opaque = t;
	t->cancel_op.fn = tap_cancel_done;
	t->cancel_op.opaque = t;
	for (i = 0; i < TAP_TX_SLOTS; i++) {
		t->tx[i].op.fn = tap_tx_done;
		t->tx[i].op.opaque = &t->tx[i];
		t->tx[i].t = t;
	}

	ret = sys__open_raw("/dev/net/tun", O_RDWR | O_NONBLOCK);
	if (ret < 0) {
		log_err(prefix, "open /dev/net/tun: %s", strerror(-ret));
		goto err_free_buf;
	}
	t->fd = ret;

	ret = sys__ioctl_raw(t->fd, TUNGETFEATURES, &features);
	if (ret >= 0 && !(features & IFF_VNET_HDR)) {
		log_err(prefix, "tun driver lacks IFF_VNET_HDR");
		ret = -EOPNOTSUPP;
		goto err_close;
	}

	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, ifname, sizeof(ifr.ifr_name) - 1);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	ret = sys__ioctl_raw(t->fd, TUNSETIFF, &ifr);
	if (ret < 0) {
		if (ret == -EINVAL)
			log_err(prefix,
				"tap %s: TUNSETIFF: %s (is it a tun or multi-queue device?)",
				ifname, strerror(-ret));
		else if (ret == -EBUSY)
			log_err(prefix, "tap %s: TUNSETIFF: %s (already attached elsewhere?)",
				ifname, strerror(-ret));
		else
			log_err(prefix, "tap %s: TUNSETIFF: %s", ifname, strerror(-ret));
		goto err_close;
	}
	memcpy(t->ifname, ifr.ifr_name, IFNAMSIZ);
	t->ifname[IFNAMSIZ - 1] = '\0';

	ret = tap_set_vnet_hdr_len(&t->be, sizeof(struct virtio_net_hdr_v1));
	if (ret < 0)
		goto err_close;
	ret = tap_set_offloads(&t->be, 0);
	if (ret < 0)
		goto err_close;
	ret = tap_link_up(t);
	if (ret == -EPERM || ret == -EACCES) {
		log_warn(prefix, "tap %s: cannot bring the link up (%s); bring it up yourself",
			 t->ifname, strerror(-ret));
	} else if (ret < 0) {
		log_err(prefix, "tap %s: bringing the link up: %s", t->ifname, strerror(-ret));
		goto err_close;
	}
	*out = &t->be;
	return 0;

err_close:
	sys__close(t->fd);
err_free_buf:
	free(t->rx_buf);
err_free:
	free(t);
	return ret;
}
