// SPDX-License-Identifier: MIT
/*
 * virtio-net device model: option parsing, feature/config handling, and the
 * receive/transmit paths between the virtqueues and a struct net_backend.
 *
 * State changes (activate/reset, possibly on a vCPU thread) bump `gen` and
 * signal ctl_efd; the event loop thread notices in net_sync() (from the
 * ctl_efd watch or from any queue kick, whichever comes first) and starts or
 * stops the backend. Everything past net_sync() runs on the event loop
 * thread with the transport's lock (vdev.lock) held, so a reset arriving on
 * a vCPU thread never meets a half-processed ring.
 */
#include "virtio/net/net.h"

#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <linux/virtio_config.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "migration/section.h"
#include "virtio/net/tap.h"
#include "virtio/net/vhost_net.h"
#include "virtio/pci.h"
#include "virtio/queue.h"
#include "vmm/kvm.h"
#include "vmm/log.h"
#include "vmm/sys.h"

/*
 * Feature bits and layouts from the virtio spec (section 5.1). Not taken from
 * <linux/virtio_net.h>, whose struct virtio_net_config clashes with ours.
 */
#define NET_F_CSUM 0
#define NET_F_GUEST_CSUM 1
#define NET_F_MAC 5
#define NET_F_GUEST_TSO4 7
#define NET_F_GUEST_TSO6 8
#define NET_F_HOST_TSO4 11
#define NET_F_HOST_TSO6 12
#define NET_F_MRG_RXBUF 15
#define NET_F_STATUS 16
#define NET_F_CTRL_VQ 17
#define NET_F_GUEST_ANNOUNCE 21
#define NET_F_VERSION_1 32
#define NET_F_STANDBY 62

#define NET_S_LINK_UP 1
#define NET_S_ANNOUNCE 2
#define NET_CTRL_ANNOUNCE 3     /* class */
#define NET_CTRL_ANNOUNCE_ACK 0 /* command */
#define NET_CTRL_OK 0
#define NET_CTRL_ERR 1
#define NET_HDR_LEN_LEGACY 10 /* struct virtio_net_hdr */
#define NET_HDR_LEN_V1 12     /* struct virtio_net_hdr_v1: + num_buffers */
#define NET_HDR_NUM_BUFFERS_OFF 10

/* config space: mac[6], status, max_virtqueue_pairs */
#define NET_CFG_LEN 10

#define NET_VIRTIO_ID 1
#define NET_PCI_CLASS 0x0200 /* network controller, ethernet */
#define NET_TX_SLOTS 16	     /* transmit chains in flight */

struct net_tx_slot {
	bool busy;
	unsigned int gen;
	struct virtq_chain chain;
};

struct net_used {
	uint16_t head;
	uint32_t len;
};

struct net_stats_atomic {
	atomic_uint_least64_t tx_packets, tx_bytes, tx_errors;
	atomic_uint_least64_t rx_packets, rx_bytes, rx_dropped, rx_stalls;
};

struct virtio_net {
	struct virtio_dev vdev;
	struct vmm_device dev;             /* the device model (vmm/device.h) */
	struct vm *vm;
	char name[32];
	char tap[VIRTIO_NET_IFNAMSIZ];
	void (*standby_changed)(void *opaque);
	void *standby_opaque;
	uint8_t mac[6];
	struct net_backend *be;
	bool failover;                     /* STANDBY offered */
	atomic_int standby;                /* enum virtio_net_standby */
	atomic_uint standby_negotiations;
	atomic_bool announce;              /* VIRTIO_NET_S_ANNOUNCE is set */
	atomic_uint announce_acks;

	/* written by activate/reset (any thread), read by the event loop */
	atomic_bool want_active;
	atomic_uint gen;
	atomic_bool recheck;       /* MSI-X was switched on or off: who walks the rings? */
	int ctl_efd;
	struct evloop_watch ctl_watch;
	bool ctl_watching;

	/* event loop thread only */
	bool paused;           /* a snapshot: no ring processing, frames held in the backend */
	unsigned int seen_gen; /* the generation net_sync() last acted on */
	bool running;	       /* the backend's frame side started for seen_gen */
	/*
	 * Ring-owning backends (virtio/net/backend.h): the backend holds the
	 * receive and transmit rings now (read by net_busy under vdev.lock);
	 * why it may not (a migration's dirty tracking; a failed hand-over,
	 * until the next activation).
	 */
	bool can_own_rings;
	bool rings_owned;
	bool track_dirty;
	bool rings_failed;
	struct net_rings rings;
	bool broken;
	unsigned int hdr_len;
	bool mrg_rxbuf;
	bool guest_csum;
	struct net_tx_slot *tx;
	unsigned int tx_inflight;
	struct virtq_chain *rx_first, *rx_next;
	struct virtq_chain *ctrl_chain;    /* the control command being answered */
	struct net_used rx_used[VIRTQ_MAX_SIZE];

	struct net_stats_atomic st;
	struct log_ratelimit rl;
};

#define STAT_ADD(n, f, v) atomic_fetch_add_explicit(&(n)->st.f, (v), memory_order_relaxed)

static struct virtio_net *to_net(struct virtio_dev *vd)
{
	return container_of(vd, struct virtio_net, vdev);
}

unsigned int virtio_net__hdr_len(uint64_t features)
{
	if (features & ((1ULL << NET_F_VERSION_1) | (1ULL << NET_F_MRG_RXBUF)))
		return NET_HDR_LEN_V1;
	return NET_HDR_LEN_LEGACY;
}

/* ---- options ---------------------------------------------------------- */

static int net_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* "52:54:00:12:34:56" (exactly), len bytes of s */
static bool net_parse_mac(const char *s, size_t len, uint8_t mac[6])
{
	unsigned int i;

	if (len != 17)
		return false;
	for (i = 0; i < 6; i++) {
		int hi = net_hexval(s[i * 3]), lo = net_hexval(s[i * 3 + 1]);

		if (hi < 0 || lo < 0)
			return false;
		if (i < 5 && s[i * 3 + 2] != ':')
			return false;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static int net_opt_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int net_opt_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int virtio_net__parse_opts(const char *opts, struct virtio_net_config *cfg, char *err,
			   size_t errlen)
{
	const char *name = cfg->name;
	const char *p = opts;
	bool seen_tap = false, seen_mac = false, seen_failover = false, seen_vhost = false;

	memset(cfg, 0, sizeof(*cfg));
	cfg->name = name;
	if (err && errlen)
		err[0] = '\0';
	if (!opts || !*opts)
		return net_opt_err(
		    err, errlen,
		    "empty network options: expected tap=NAME[,mac=52:54:00:12:34:56]");

	while (*p) {
		const char *end = strchrnul(p, ',');
		const char *eq = memchr(p, '=', (size_t)(end - p));
		int tlen = (int)(end - p);
		const char *val;
		size_t klen, vlen;

		if (end == p)
			return net_opt_err(err, errlen, "empty option in '%s'", opts);
		if (!eq)
			return net_opt_err(err, errlen, "option '%.*s' needs a value (key=value)",
					   tlen, p);
		klen = (size_t)(eq - p);
		val = eq + 1;
		vlen = (size_t)(end - val);

		if (klen == 3 && !memcmp(p, "tap", 3)) {
			size_t i;

			if (seen_tap)
				return net_opt_err(err, errlen, "option 'tap' given twice");
			seen_tap = true;
			if (!vlen)
				return net_opt_err(err, errlen, "tap= needs an interface name");
			if (vlen >= sizeof(cfg->tap_buf))
				return net_opt_err(err, errlen,
						   "tap name '%.*s' is longer than %zu characters",
						   (int)vlen, val, sizeof(cfg->tap_buf) - 1);
			for (i = 0; i < vlen; i++) {
				if (val[i] == '/' || val[i] == ':' ||
				    isspace((unsigned char)val[i]))
					return net_opt_err(err, errlen,
							   "tap name '%.*s' contains '%c'",
							   (int)vlen, val, val[i]);
			}
			if ((vlen == 1 && val[0] == '.') || (vlen == 2 && !memcmp(val, "..", 2)))
				return net_opt_err(err, errlen, "tap name '%.*s' is not valid",
						   (int)vlen, val);
			memcpy(cfg->tap_buf, val, vlen);
			cfg->tap_buf[vlen] = '\0';
		} else if (klen == 3 && !memcmp(p, "mac", 3)) {
			if (seen_mac)
				return net_opt_err(err, errlen, "option 'mac' given twice");
			seen_mac = true;
			if (!net_parse_mac(val, vlen, cfg->mac))
				return net_opt_err(err, errlen,
						   "mac '%.*s' is not valid: expected six hex "
						   "bytes like 52:54:00:12:34:56",
						   (int)vlen, val);
			if (cfg->mac[0] & 1)
				return net_opt_err(
				    err, errlen,
				    "mac '%.*s' is a multicast address (first byte is odd)",
				    (int)vlen, val);
			if (!(cfg->mac[0] | cfg->mac[1] | cfg->mac[2] | cfg->mac[3] | cfg->mac[4] |
			      cfg->mac[5]))
				return net_opt_err(err, errlen, "mac '%.*s' is all zeros",
						   (int)vlen, val);
			cfg->has_mac = true;
		} else if (klen == 8 && !memcmp(p, "failover", 8)) {
			if (seen_failover)
				return net_opt_err(err, errlen, "option 'failover' given twice");
			seen_failover = true;
			if (vlen == 2 && !memcmp(val, "on", 2))
				cfg->failover = true;
			else if (!(vlen == 3 && !memcmp(val, "off", 3)))
				return net_opt_err(err, errlen, "failover='%.*s': on or off", (int)vlen, val);
		} else if (klen == 5 && !memcmp(p, "vhost", 5)) {
			if (seen_vhost)
				return net_opt_err(err, errlen, "option 'vhost' given twice");
			seen_vhost = true;
			if (vlen == 2 && !memcmp(val, "on", 2))
				cfg->vhost = VIRTIO_NET_VHOST_ON;
			else if (vlen == 3 && !memcmp(val, "off", 3))
				cfg->vhost = VIRTIO_NET_VHOST_OFF;
			else
				return net_opt_err(err, errlen, "vhost='%.*s': on or off", (int)vlen, val);
		} else if (klen == 2 && !memcmp(p, "id", 2)) {
			char why[128];

			if (cfg->id[0])
				return net_opt_err(err, errlen, "option 'id' given twice");
			if (options__check_id(val, vlen, why, sizeof(why)))
				return net_opt_err(err, errlen, "%s", why);
			memcpy(cfg->id, val, vlen);
			cfg->id[vlen] = '\0';
		} else {
			return net_opt_err(err, errlen,
					   "unknown option '%.*s' (expected tap, mac, id, failover or vhost)", (int)klen,
					   p);
		}
		p = *end ? end + 1 : end;
		if (*end && !*p)
			return net_opt_err(err, errlen, "empty option at the end of '%s'", opts);
	}
	if (!seen_tap)
		return net_opt_err(err, errlen, "missing tap=NAME in '%s'", opts);
	cfg->tap = cfg->tap_buf;
	return 0;
}

/* ---- state ------------------------------------------------------------ */

static void net_rings_release(struct virtio_net *n, bool carry);

static void net_stop_backend(struct virtio_net *n)
{
	if (n->running) {
		n->be->ops->stop(n->be);
		n->running = false;
	}
	if (n->rings_owned)
		net_rings_release(n, false);
}

static void net_broken(struct virtio_net *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void net_broken(struct virtio_net *n, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n->broken = true;
	net_stop_backend(n);
	virtio_pci__set_broken(&n->vdev, "%s", msg);
}

/* true while queues may be processed for the current activation */
static bool net_live(struct virtio_net *n)
{
	return n->running && !n->paused && !n->broken && atomic_load(&n->gen) == n->seen_gen;
}

/* the driver's activation net_sync() acted on is the current one, and it works */
static bool net_active(struct virtio_net *n)
{
	return atomic_load(&n->want_active) && !n->broken && atomic_load(&n->gen) == n->seen_gen;
}

static const struct net_backend_cbs net_be_cbs;
static void net_tx_process(struct virtio_net *n);

/* ---- handing the rings to a ring-owning backend (vdev.lock held) --------- */

/*
 * The backend may hold the rings: it can, nothing forbids it now, and both
 * rings are live. MSI-X must be on: the rings' call eventfds are the
 * vectors' irqfds (without MSI-X, the device raises INTx itself).
 */
static bool net_want_rings(struct virtio_net *n)
{
	return n->can_own_rings && !n->track_dirty && !n->rings_failed && !n->paused &&
	       msix__enabled(&n->vdev.msix) && n->vdev.vq[VIRTIO_NET_RXQ].ready &&
	       n->vdev.vq[VIRTIO_NET_TXQ].ready;
}

/* the vector's eventfd for queue q (the irqfd KVM injects from), -1 for none */
static int net_call_fd(struct virtio_net *n, uint16_t q)
{
	uint16_t v = n->vdev.vq_vector[q];

	return v == MSIX_NO_VECTOR ? -1 : msix__vector_eventfd(&n->vdev.msix, v);
}

/* the frame side is stopped and nothing of ours is in flight: hand the rings over */
static int net_rings_take(struct virtio_net *n)
{
	struct net_rings *r = &n->rings;
	uint16_t q;
	int ret;

	memset(r, 0, sizeof(*r));
	r->mem = &n->vm->mem;
	r->features = n->vdev.guest_features;
	for (q = 0; q < NET_BACKEND_RINGS; q++) {
		const struct virtq *vq = &n->vdev.vq[q];

		r->q[q].size = vq->size;
		r->q[q].last_avail_idx = vq->last_avail_idx;
		r->q[q].desc_gpa = vq->desc_gpa;
		r->q[q].avail_gpa = vq->avail_gpa;
		r->q[q].used_gpa = vq->used_gpa;
		r->q[q].call_fd = net_call_fd(n, q);
		r->q[q].kick_fd = -1;
	}
	ret = n->be->ops->rings_start(n->be, r);
	if (ret)
		return ret;
	for (q = 0; q < NET_BACKEND_RINGS; q++) {
		ret = virtio_pci__redirect_kick(&n->vdev, q, r->q[q].kick_fd);
		if (ret)
			break;
	}
	n->rings_owned = true;
	if (ret) {
		net_rings_release(n, true);
		return ret;
	}
	return 0;
}

/*
 * Take the rings back: the kicks come to the event loop again, the backend
 * stops. With carry (the activation goes on, in userspace or saved), each
 * queue resumes where the backend stopped: its last avail index from the
 * backend, its used index from the ring in guest memory.
 */
static void net_rings_release(struct virtio_net *n, bool carry)
{
	struct net_rings *r = &n->rings;
	uint16_t q, used;
	int ret;

	for (q = 0; q < NET_BACKEND_RINGS; q++)
		if (virtio_pci__redirect_kick(&n->vdev, q, -1))
			log_err(n->name, "queue %u: its kicks still go to the %s backend", q,
				n->be->kind);
	ret = n->be->ops->rings_stop(n->be, r);
	n->rings_owned = false;
	if (!carry)
		return;
	if (ret) {
		net_broken(n, "the %s backend does not give the rings back: %s", n->be->kind,
			   strerror(-ret));
		return;
	}
	for (q = 0; q < NET_BACKEND_RINGS; q++) {
		struct virtq *vq = &n->vdev.vq[q];

		if (mem__read(&n->vm->mem, vq->used_gpa + 2, &used, sizeof(used))) {
			net_broken(n, "queue %u: used ring outside RAM", q);
			return;
		}
		vq->last_avail_idx = r->q[q].last_avail_idx;
		vq->used_idx = le16toh(used);
		vq->signalled_used_valid = false;
	}
}

/* the call eventfds the backend has are no longer the queues' vectors' */
static bool net_calls_changed(struct virtio_net *n)
{
	uint16_t q;

	for (q = 0; q < NET_BACKEND_RINGS; q++)
		if (n->rings.q[q].call_fd != net_call_fd(n, q))
			return true;
	return false;
}

static void net_frames_start(struct virtio_net *n)
{
	int ret = n->be->ops->start(n->be, &net_be_cbs, n);

	if (ret < 0) {
		net_broken(n, "backend %s does not start: %s", n->be->kind, strerror(-ret));
		return;
	}
	n->running = true;
}

/*
 * Who walks the rings of the running activation: the backend when it may
 * (net_want_rings), the device otherwise. Called whenever one of the
 * reasons may have changed; switches keep the rings' indices.
 */
static void net_reconcile(struct virtio_net *n)
{
	bool was_running = n->running;

	if (!net_active(n) || n->paused)
		return;
	if (net_want_rings(n)) {
		if (n->rings_owned && net_calls_changed(n)) {
			/* a queue's vector changed: the backend signals the new one's eventfd */
			net_rings_release(n, true);
			if (n->broken)
				return;
		}
		if (n->rings_owned)
			return;
		if (n->tx_inflight)
			return; /* again at the last tx_done */
		if (n->running) {
			n->be->ops->stop(n->be);
			n->running = false;
		}
		if (!net_rings_take(n)) {
			log_info(n->name, "the %s backend moves the frames", n->be->kind);
			return;
		}
		n->rings_failed = true; /* until the driver activates the device again */
		log_err(n->name, "the device walks its rings itself (the %s backend cannot)",
			n->be->kind);
	} else if (n->rings_owned) {
		net_rings_release(n, true);
		if (n->broken)
			return;
		log_info(n->name, "the device walks its rings itself (%s)",
			 n->track_dirty ? "dirty tracking" : "MSI-X off");
	}
	if (n->running)
		return;
	net_frames_start(n);
	if (!n->running || was_running)
		return;
	/* what the driver queued while nobody looked */
	n->be->ops->rx_resume(n->be);
	net_tx_process(n);
}

/* act on activate/reset requests (event loop thread) */
static void net_sync(struct virtio_net *n)
{
	unsigned int gen = atomic_load(&n->gen);
	uint64_t f;
	int ret;

	if (gen == n->seen_gen)
		return;
	n->seen_gen = gen;
	net_stop_backend(n);
	n->broken = false;
	n->rings_failed = false;
	if (!atomic_load(&n->want_active))
		return;

	f = n->vdev.guest_features;
	n->hdr_len = virtio_net__hdr_len(f);
	n->mrg_rxbuf = (f >> NET_F_MRG_RXBUF) & 1;
	n->guest_csum = (f >> NET_F_GUEST_CSUM) & 1;
	ret = n->be->ops->set_vnet_hdr_len(n->be, n->hdr_len);
	if (ret >= 0)
		ret = n->be->ops->set_offloads(n->be, f);
	if (ret < 0) {
		net_broken(n, "backend %s does not start: %s", n->be->kind, strerror(-ret));
		return;
	}
	net_reconcile(n);
}

/* ---- transmit --------------------------------------------------------- */

static void net_tx_process(struct virtio_net *n)
{
	struct virtq *q = &n->vdev.vq[VIRTIO_NET_TXQ];
	bool notify = false;
	unsigned int i;
	int ret;

	while (net_live(n) && q->ready) {
		struct net_tx_slot *s = NULL;
		struct virtq_chain *c;

		for (i = 0; i < NET_TX_SLOTS; i++) {
			if (!n->tx[i].busy) {
				s = &n->tx[i];
				break;
			}
		}
		if (!s)
			break; /* resumed from net_tx_done */
		c = &s->chain;
		ret = virtq__pop(q, c);
		if (ret == 0)
			break;
		if (ret < 0) {
			net_broken(n, "tx ring: %s", strerror(-ret));
			break;
		}
		if (c->nr_in) {
			net_broken(n, "tx chain %u has %u device-writable buffers", c->head,
				   c->nr_in);
			break;
		}
		if (c->out_len < n->hdr_len) {
			net_broken(n, "tx chain %u: %u bytes, shorter than the %u-byte header",
				   c->head, c->out_len, n->hdr_len);
			break;
		}
		ret = n->be->ops->tx(n->be, c->iov, (int)c->nr_out, (uint32_t)i);
		if (ret == -EBUSY) {
			virtq__unpop(q);
			break;
		}
		if (ret < 0) {
			STAT_ADD(n, tx_errors, 1);
			log_err_rl(&n->rl, n->name, "tx: %s", strerror(-ret));
			if (virtq__push(q, c->head, 0) < 0) {
				net_broken(n, "tx ring: cannot return chain %u", c->head);
				break;
			}
			notify = true;
			continue;
		}
		s->busy = true;
		s->gen = n->seen_gen;
		n->tx_inflight++;
	}
	if (notify)
		virtio_pci__notify_queue(&n->vdev, VIRTIO_NET_TXQ);
}

static void net_tx_done_locked(struct virtio_net *n, uint32_t token, int res)
{
	struct net_tx_slot *s;

	if (token >= NET_TX_SLOTS || !n->tx[token].busy) {
		log_err_rl(&n->rl, n->name, "tx completion for unknown slot %u", token);
		return;
	}
	s = &n->tx[token];
	s->busy = false;
	n->tx_inflight--;
	if (s->gen != n->seen_gen || !net_live(n))
		return; /* the driver reset the device meanwhile: the chain is gone */

	if (res < 0) {
		STAT_ADD(n, tx_errors, 1);
		log_err_rl(&n->rl, n->name, "tx: %s", strerror(-res));
	} else {
		STAT_ADD(n, tx_packets, 1);
		if ((unsigned int)res > n->hdr_len)
			STAT_ADD(n, tx_bytes, (unsigned int)res - n->hdr_len);
	}
	if (virtq__push(&n->vdev.vq[VIRTIO_NET_TXQ], s->chain.head, 0) < 0) {
		net_broken(n, "tx ring: cannot return chain %u", s->chain.head);
		return;
	}
	virtio_pci__notify_queue(&n->vdev, VIRTIO_NET_TXQ);
	net_tx_process(n);
}

/* ---- receive ---------------------------------------------------------- */

/* copy header (with num_buffers) and frame body into a chain's writable part */
static void net_rx_copy(struct virtio_net *n, const struct virtq_chain *c, const uint8_t *frame,
			size_t off, size_t chunk)
{
	const struct iovec *iov = c->iov + c->nr_out;

	virtq__buf_to_iov(iov, c->nr_in, 0, frame + off, chunk);
}

/*
 * Finish the header in the first chain: num_buffers (v1 header), and flags
 * cleared when the driver did not take GUEST_CSUM (the tap reports
 * DATA_VALID regardless; the spec wants 0 then).
 */
static void net_rx_finish_hdr(struct virtio_net *n, const struct virtq_chain *c, uint16_t nb)
{
	const struct iovec *iov = c->iov + c->nr_out;
	uint8_t le[2] = {(uint8_t)nb, (uint8_t)(nb >> 8)};
	uint8_t zero = 0;

	if (!n->guest_csum)
		virtq__buf_to_iov(iov, c->nr_in, 0, &zero, 1);
	if (n->hdr_len >= NET_HDR_LEN_V1)
		virtq__buf_to_iov(iov, c->nr_in, NET_HDR_NUM_BUFFERS_OFF, le, 2);
}

/* pop one receive chain: 1 ok, 0 none, -EIO the device went broken */
static int net_rx_pop(struct virtio_net *n, struct virtq *q, struct virtq_chain *c)
{
	int ret = virtq__pop(q, c);

	if (ret < 0) {
		net_broken(n, "rx ring: %s", strerror(-ret));
		return -EIO;
	}
	if (ret == 0)
		return 0;
	if (c->nr_out) {
		net_broken(n, "rx chain %u has %u device-readable buffers", c->head, c->nr_out);
		return -EIO;
	}
	return 1;
}

static void net_rx_rewind(struct virtq *q, unsigned int nr)
{
	while (nr--)
		virtq__unpop(q);
}

static int net_rx_single(struct virtio_net *n, struct virtq *q, const uint8_t *frame, size_t len)
{
	struct virtq_chain *c = n->rx_first;
	int ret;

	ret = net_rx_pop(n, q, c);
	if (ret <= 0)
		return ret == 0 ? -ENOBUFS : 0;
	if (c->in_len < len) {
		/* leave the chain for a smaller frame */
		virtq__unpop(q);
		STAT_ADD(n, rx_dropped, 1);
		log_err_rl(&n->rl, n->name, "rx: %zu-byte frame does not fit a %u-byte buffer", len,
			   c->in_len);
		return 0;
	}
	net_rx_copy(n, c, frame, 0, len);
	net_rx_finish_hdr(n, c, 1);
	virtq__mark_written(q, c, len);
	if (virtq__push(q, c->head, (uint32_t)len) < 0) {
		net_broken(n, "rx ring: cannot return chain %u", c->head);
		return 0;
	}
	return 1;
}

static int net_rx_mergeable(struct virtio_net *n, struct virtq *q, const uint8_t *frame, size_t len)
{
	unsigned int nbuf = 0, i;
	size_t off = 0;
	int ret;

	while (off < len) {
		struct virtq_chain *c = nbuf ? n->rx_next : n->rx_first;
		size_t chunk;

		if (nbuf >= q->size) {
			net_rx_rewind(q, nbuf);
			STAT_ADD(n, rx_dropped, 1);
			log_err_rl(&n->rl, n->name,
				   "rx: %zu-byte frame does not fit the whole ring", len);
			return 0;
		}
		ret = net_rx_pop(n, q, c);
		if (ret < 0)
			return 0;
		if (ret == 0) {
			net_rx_rewind(q, nbuf);
			return -ENOBUFS;
		}
		if (!nbuf && c->in_len < n->hdr_len) {
			net_broken(n, "rx chain %u: %u bytes, shorter than the %u-byte header",
				   c->head, c->in_len, n->hdr_len);
			return 0;
		}
		chunk = MIN(len - off, (size_t)c->in_len);
		net_rx_copy(n, c, frame, off, chunk);
		virtq__mark_written(q, c, chunk);
		n->rx_used[nbuf].head = c->head;
		n->rx_used[nbuf].len = (uint32_t)chunk;
		nbuf++;
		off += chunk;
	}
	net_rx_finish_hdr(n, n->rx_first, (uint16_t)nbuf);
	virtq__mark_written(q, n->rx_first, n->hdr_len); /* marked after the write */
	for (i = 0; i < nbuf; i++) {
		if (virtq__push(q, n->rx_used[i].head, n->rx_used[i].len) < 0) {
			net_broken(n, "rx ring: cannot return chain %u", n->rx_used[i].head);
			return 0;
		}
	}
	return 1;
}

static int net_rx_locked(struct virtio_net *n, const void *frame, size_t len)
{
	struct virtq *q = &n->vdev.vq[VIRTIO_NET_RXQ];
	int ret;

	if (n->paused)
		return -ENOBUFS; /* the backend holds the frame until resume */
	if (!net_live(n) || !q->ready) {
		STAT_ADD(n, rx_dropped, 1);
		return 0;
	}
	if (len < n->hdr_len) {
		STAT_ADD(n, rx_dropped, 1);
		return 0;
	}
	if (n->mrg_rxbuf)
		ret = net_rx_mergeable(n, q, frame, len);
	else
		ret = net_rx_single(n, q, frame, len);
	if (ret == -ENOBUFS) {
		STAT_ADD(n, rx_stalls, 1);
		return -ENOBUFS;
	}
	if (ret > 0) {
		STAT_ADD(n, rx_packets, 1);
		STAT_ADD(n, rx_bytes, len - n->hdr_len);
		virtio_pci__notify_queue(&n->vdev, VIRTIO_NET_RXQ);
	}
	return 0;
}

/*
 * Backend callbacks run on the event loop without the transport's lock, which
 * queue kicks and the driver's status writes (reset) hold: take it, so that a
 * reset on a vCPU thread never meets a half-processed ring.
 */
static int net_rx(void *opaque, const void *frame, size_t len)
{
	struct virtio_net *n = opaque;
	int ret;

	pthread_mutex_lock(&n->vdev.lock);
	ret = net_rx_locked(n, frame, len);
	pthread_mutex_unlock(&n->vdev.lock);
	return ret;
}

static void net_tx_done(void *opaque, uint32_t token, int res)
{
	struct virtio_net *n = opaque;

	pthread_mutex_lock(&n->vdev.lock);
	net_tx_done_locked(n, token, res);
	/* the last transmit of ours (this activation's or a reset one's): the rings may go now */
	if (!n->tx_inflight && n->can_own_rings && !n->rings_owned)
		net_reconcile(n);
	pthread_mutex_unlock(&n->vdev.lock);
}

static const struct net_backend_cbs net_be_cbs = {
    .rx = net_rx,
    .tx_done = net_tx_done,
};

/* ---- transport ops ---------------------------------------------------- */

static uint64_t net_features(struct virtio_dev *vd)
{
	return (to_net(vd)->failover ? 1ULL << NET_F_STANDBY : 0) | (1ULL << NET_F_CSUM) | (1ULL << NET_F_GUEST_CSUM) | (1ULL << NET_F_MAC) |
	       (1ULL << NET_F_GUEST_TSO4) | (1ULL << NET_F_GUEST_TSO6) | (1ULL << NET_F_HOST_TSO4) |
	       (1ULL << NET_F_HOST_TSO6) | (1ULL << NET_F_MRG_RXBUF) | (1ULL << NET_F_STATUS) |
	       (1ULL << NET_F_CTRL_VQ) | (1ULL << NET_F_GUEST_ANNOUNCE);
}

static void net_cfg_read(struct virtio_dev *vd, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_net *n = to_net(vd);
	uint8_t cfg[NET_CFG_LEN];

	memcpy(cfg, n->mac, 6);
	cfg[6] = NET_S_LINK_UP | (atomic_load(&n->announce) ? NET_S_ANNOUNCE : 0); /* status */
	cfg[7] = 0;
	cfg[8] = 1; /* max_virtqueue_pairs */
	cfg[9] = 0;
	if (off >= sizeof(cfg) || len > sizeof(cfg) - off) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, cfg + off, len);
}

static void net_cfg_write(struct virtio_dev *vd, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_net *n = to_net(vd);

	log_err_rl(&n->rl, n->name, "ignoring a %u-byte config write at %u (read-only)", len, off);
}

static void net_request(struct virtio_net *n, bool active)
{
	int ret;

	atomic_store(&n->want_active, active);
	atomic_fetch_add(&n->gen, 1);
	ret = sys__eventfd_signal(n->ctl_efd);
	if (ret < 0)
		log_err_rl(&n->rl, n->name, "cannot wake the event loop: %s", strerror(-ret));
}

/* DRIVER_OK: what the driver made of STANDBY (vdev.lock held) */
static void net_standby_activate(struct virtio_net *n)
{
	enum virtio_net_standby s;

	if (!n->failover)
		return;
	if (virtio_pci__has_feature(&n->vdev, NET_F_STANDBY)) {
		s = VIRTIO_NET_STANDBY_NEGOTIATED;
		atomic_fetch_add(&n->standby_negotiations, 1);
	} else {
		s = VIRTIO_NET_STANDBY_DECLINED;
	}
	if (atomic_exchange(&n->standby, (int)s) != (int)s)
		log_info(n->name, "STANDBY %s by the guest's driver%s", virtio_net__standby_name(s),
			 s == VIRTIO_NET_STANDBY_DECLINED ? " (no net_failover): a paired VF stays out" : "");
	/* every activation, even with an unchanged state: a count went up */
	if (n->standby_changed)
		n->standby_changed(n->standby_opaque);
}

static int net_activate(struct virtio_dev *vd)
{
	net_standby_activate(to_net(vd));
	net_request(to_net(vd), true);
	return 0;
}

static void net_reset(struct virtio_dev *vd)
{
	struct virtio_net *n = to_net(vd);
	int was = (int)VIRTIO_NET_STANDBY_NEGOTIATED;

	/* a reset driver may come back without STANDBY: until it renegotiates, it has none */
	if (n->failover && atomic_compare_exchange_strong(&n->standby, &was, (int)VIRTIO_NET_STANDBY_RESET)) {
		log_info(n->name, "STANDBY: the driver reset the device; waiting for it to negotiate again");
		if (n->standby_changed)
			n->standby_changed(n->standby_opaque);
	}
	net_request(n, false);
}

/*
 * vdev.lock held: a transmit in flight still reads the old chain's buffers;
 * a backend holding the rings still walks them until the event loop takes
 * them back
 */
static bool net_busy(struct virtio_dev *vd)
{
	return to_net(vd)->tx_inflight > 0 || to_net(vd)->rings_owned;
}

/*
 * The control queue (vdev.lock held): each command is a header (class,
 * command), its data, then one device-writable ack byte. Only
 * ANNOUNCE_ACK is supported (the features that need the others are not
 * offered); anything else gets VIRTIO_NET_ERR.
 */
static void net_ctrl_process(struct virtio_net *n)
{
	struct virtq *q = &n->vdev.vq[VIRTIO_NET_CTRLQ];
	struct virtq_chain *c = n->ctrl_chain;
	bool notify = false;
	uint8_t hdr[2], ack;
	int ret;

	while (q->ready && !n->vdev.broken) {
		ret = virtq__pop(q, c);
		if (ret == 0)
			break;
		if (ret < 0) {
			net_broken(n, "control queue: %s", strerror(-ret));
			return;
		}
		if (c->out_len < sizeof(hdr) || c->in_len < 1) {
			net_broken(n, "control command %u: %u bytes out, %u in (a header and an ack "
				   "byte at least)", c->head, c->out_len, c->in_len);
			return;
		}
		virtq__iov_to_buf(c->iov, c->nr_out, 0, hdr, sizeof(hdr));
		ack = NET_CTRL_ERR;
		if (hdr[0] == NET_CTRL_ANNOUNCE && hdr[1] == NET_CTRL_ANNOUNCE_ACK) {
			ack = NET_CTRL_OK;
			if (atomic_exchange(&n->announce, false))
				log_info(n->name, "the guest announced itself (GUEST_ANNOUNCE acknowledged)");
			atomic_fetch_add(&n->announce_acks, 1);
		} else {
			log_err_rl(&n->rl, n->name, "control command class %u command %u: not supported",
				   hdr[0], hdr[1]);
		}
		virtq__buf_to_iov(c->iov + c->nr_out, c->nr_in, 0, &ack, 1);
		virtq__mark_written(q, c, 1);
		if (virtq__push(q, c->head, 1) < 0) {
			net_broken(n, "control queue: cannot return command %u", c->head);
			return;
		}
		notify = true;
	}
	if (notify)
		virtio_pci__notify_queue(&n->vdev, VIRTIO_NET_CTRLQ);
}

int virtio_net__announce(struct virtio_net *n)
{
	bool ok;

	pthread_mutex_lock(&n->vdev.lock);
	ok = virtio_pci__has_feature(&n->vdev, NET_F_GUEST_ANNOUNCE) &&
	     (n->vdev.status & VIRTIO_CONFIG_S_DRIVER_OK);
	pthread_mutex_unlock(&n->vdev.lock);
	if (!ok)
		return -ENOTSUP;
	atomic_store(&n->announce, true);
	virtio_pci__notify_config(&n->vdev);
	log_info(n->name, "asked the guest to announce itself (GUEST_ANNOUNCE)");
	return 0;
}

unsigned int virtio_net__announce_acks(const struct virtio_net *n)
{
	return atomic_load(&n->announce_acks);
}

static void net_queue_notify(struct virtio_dev *vd, uint16_t qi)
{
	struct virtio_net *n = to_net(vd);

	net_sync(n);
	if (qi == VIRTIO_NET_CTRLQ) {
		/* the control queue is always the device's, whoever has the others */
		if (net_active(n) && !n->paused)
			net_ctrl_process(n);
		return;
	}
	if (!net_live(n))
		return;
	if (qi == VIRTIO_NET_RXQ)
		n->be->ops->rx_resume(n->be);
	else if (qi == VIRTIO_NET_TXQ)
		net_tx_process(n);
	else
		log_err_rl(&n->rl, n->name, "kick on queue %u, which does not exist", qi);
}

static void net_ctl_event(void *opaque, int res)
{
	struct virtio_net *n = opaque;

	if (res < 0)
		return;
	sys__eventfd_drain(n->ctl_efd);
	pthread_mutex_lock(&n->vdev.lock);
	net_sync(n);
	if (atomic_exchange(&n->recheck, false))
		net_reconcile(n);
	if (net_live(n)) {
		/* buffers the driver queued before DRIVER_OK, without a kick we saw */
		n->be->ops->rx_resume(n->be);
		net_tx_process(n);
	}
	pthread_mutex_unlock(&n->vdev.lock);
}

static void net_queue_vector(struct virtio_dev *vd, uint16_t q);

static const struct virtio_dev_ops net_ops = {
    .features = net_features,
    .cfg_read = net_cfg_read,
    .cfg_write = net_cfg_write,
    .activate = net_activate,
    .reset = net_reset,
    .busy = net_busy,
    .queue_notify = net_queue_notify,
    .queue_vector = net_queue_vector,
};

/* ---- life cycle ------------------------------------------------------- */

static void net_random_mac(uint8_t mac[6])
{
	uint8_t r[3];

	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		unsigned int x = (unsigned int)time(NULL) ^ ((unsigned int)getpid() << 8);

		r[0] = (uint8_t)x;
		r[1] = (uint8_t)(x >> 8);
		r[2] = (uint8_t)(x >> 16);
	}
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	memcpy(mac + 3, r, 3);
}

static void net_ctl_unwatch(struct virtio_net *n)
{
	if (!n->ctl_watching)
		return;
	evloop__del_fd(&n->vm->loop, &n->ctl_watch); /* returns once it cannot fire */
	n->ctl_watching = false;
}

/* ---- pause and state (a snapshot; docs/migration.md) -------------------------- */

#define NET_STATE_VERSION 1
#define NET_PAUSE_DRAIN_MS 2000

static int net_dev_pause(struct vmm_device *d)
{
	struct virtio_net *n = container_of(d, struct virtio_net, dev);
	unsigned int i;

	pthread_mutex_lock(&n->vdev.lock);
	n->paused = true;
	/* the rings come back with their indices, for the state that is saved next */
	if (n->rings_owned)
		net_rings_release(n, true);
	pthread_mutex_unlock(&n->vdev.lock);
	/* transmits already handed to the backend complete into the used ring */
	for (i = 0; i < NET_PAUSE_DRAIN_MS && n->tx_inflight; i++) {
		evloop__run_once(&n->vm->loop, false);
		if (n->tx_inflight)
			usleep(1000);
	}
	if (n->tx_inflight) {
		log_err(n->name, "pause: %u transmits still in flight", n->tx_inflight);
		pthread_mutex_lock(&n->vdev.lock);
		n->paused = false;
		net_reconcile(n);
		pthread_mutex_unlock(&n->vdev.lock);
		return -EBUSY;
	}
	return 0;
}

static void net_dev_resume(struct vmm_device *d)
{
	struct virtio_net *n = container_of(d, struct virtio_net, dev);

	pthread_mutex_lock(&n->vdev.lock);
	n->paused = false;
	net_reconcile(n); /* the rings back to the backend, or the frame side on */
	if (net_live(n) && n->vdev.vq[VIRTIO_NET_TXQ].ready)
		net_tx_process(n); /* what the driver queued meanwhile */
	pthread_mutex_unlock(&n->vdev.lock);
	if (n->running)
		n->be->ops->rx_resume(n->be);
}

/*
 * A migration's dirty tracking (docs/migration.md): what a ring-owning
 * backend writes into guest memory neither KVM's dirty log nor
 * mem__mark_dirty sees, so while tracking is on the device walks the rings
 * itself (and marks what it writes); the rings go back to the backend
 * when it ends.
 */
static int net_dev_track_dirty(struct vmm_device *d, bool on)
{
	struct virtio_net *n = container_of(d, struct virtio_net, dev);
	int ret = 0;

	pthread_mutex_lock(&n->vdev.lock);
	n->track_dirty = on;
	net_reconcile(n);
	if (on && n->rings_owned)
		ret = -EIO;
	pthread_mutex_unlock(&n->vdev.lock);
	return ret;
}

bool virtio_net__rings_offloaded(struct virtio_net *n)
{
	bool owned;

	pthread_mutex_lock(&n->vdev.lock);
	owned = n->rings_owned;
	pthread_mutex_unlock(&n->vdev.lock);
	return owned;
}

/* MSI-X on or off (vCPU thread, the MSI-X lock held): the event loop rechecks */
static int net_msix_enable(struct msix *m, bool on, void *opaque)
{
	struct virtio_net *n = opaque;

	(void)m;
	(void)on;
	atomic_store(&n->recheck, true);
	if (sys__eventfd_signal(n->ctl_efd) < 0)
		log_err_rl(&n->rl, n->name, "cannot wake the event loop");
	return 0;
}

/* a live queue's vector changed (vCPU thread, vdev.lock held): the event loop follows */
static void net_queue_vector(struct virtio_dev *vd, uint16_t q)
{
	struct virtio_net *n = to_net(vd);

	if (!n->can_own_rings || q >= NET_BACKEND_RINGS)
		return;
	atomic_store(&n->recheck, true);
	if (sys__eventfd_signal(n->ctl_efd) < 0)
		log_err_rl(&n->rl, n->name, "cannot wake the event loop");
}

static const struct msix_passthrough_ops net_msix_pt_ops = {
	.enable = net_msix_enable,
};

static int net_state_save(void *opaque, void *fdt)
{
	struct virtio_net *n = opaque;
	unsigned int nego;
	enum virtio_net_standby sb = virtio_net__standby(n, &nego);
	int ret;

	ret = mig__put_bytes(fdt, "mac", n->mac, 6);
	if (!ret)
		ret = mig__put_u32(fdt, "standby", (uint32_t)sb);
	if (!ret)
		ret = mig__put_u32(fdt, "standby_negotiations", nego);
	if (!ret)
		ret = virtio_pci__save(&n->vdev, fdt);
	return ret;
}

static int net_state_load(void *opaque, const void *fdt, int node, uint32_t version)
{
	struct virtio_net *n = opaque;
	uint8_t mac[6];
	uint32_t sb, nego;
	int ret;

	(void)version;
	ret = mig__get_bytes(fdt, node, "mac", mac, 6);
	if (!ret)
		ret = mig__get_u32_max(fdt, node, "standby", VIRTIO_NET_STANDBY_RESET, &sb);
	if (!ret)
		ret = mig__get_u32(fdt, node, "standby_negotiations", &nego);
	if (ret)
		return ret;
	if (memcmp(mac, n->mac, 6)) {
		log_err(n->name, "state: the saved NIC's MAC is %02x:%02x:%02x:%02x:%02x:%02x, this "
			"one's %02x:%02x:%02x:%02x:%02x:%02x (mac=)", mac[0], mac[1], mac[2], mac[3],
			mac[4], mac[5], n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
		return -EINVAL;
	}
	if ((sb == VIRTIO_NET_STANDBY_OFF) != !n->failover) {
		log_err(n->name, "state: the saved NIC %s failover=on, this one %s", sb ? "had" : "had no",
			n->failover ? "has" : "has not");
		return -EINVAL;
	}
	ret = virtio_pci__load(&n->vdev, fdt, node);
	if (ret)
		return ret;
	atomic_store(&n->standby, (int)sb);
	atomic_store(&n->standby_negotiations, nego);
	return 0;
}

static const struct mig_section_ops net_state_ops = {
	.save = net_state_save,
	.load = net_state_load,
};

/* ---- the device model (vmm/device.h) ---------------------------------- */

static void net_dev_describe(struct vmm_device *d, json_t *o)
{
	struct virtio_net *n = container_of(d, struct virtio_net, dev);
	struct virtio_net_stats st;
	enum virtio_net_standby sb;
	unsigned int nego;
	char detail[96];

	snprintf(detail, sizeof(detail), "tap=%s,mac=%02x:%02x:%02x:%02x:%02x:%02x%s%s", n->tap,
		 n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5],
		 n->failover ? ",failover=on" : "", n->can_own_rings ? ",vhost=on" : "");
	json_object_set_new(o, "detail", json_string(detail));
	sb = virtio_net__standby(n, &nego);
	if (sb != VIRTIO_NET_STANDBY_OFF)
		json_object_set_new(o, "standby", json_pack("{s:s,s:i}", "state",
							    virtio_net__standby_name(sb),
							    "negotiations", (int)nego));
	virtio_net__get_stats(n, &st);
	json_object_set_new(o, "counters",
			    json_pack("{s:I,s:I,s:I,s:I}", "tx_packets", (json_int_t)st.tx_packets,
				      "tx_bytes", (json_int_t)st.tx_bytes, "rx_packets",
				      (json_int_t)st.rx_packets, "rx_bytes", (json_int_t)st.rx_bytes));
	/* with vhost-net holding the rings, only the guest_* indices are current */
	virtio_pci__describe(&n->vdev, o);
}

static void net_dev_log_stats(struct vmm_device *d)
{
	virtio_net__log_stats(container_of(d, struct virtio_net, dev));
}

static void net_dev_destroy(struct vmm_device *d)
{
	virtio_net__destroy(container_of(d, struct virtio_net, dev));
}

static void net_dev_moved(struct vmm_device *d)
{
	virtio_pci__notify_all(&container_of(d, struct virtio_net, dev)->vdev);
}

static const struct vmm_device_ops net_dev_ops = {
	.describe = net_dev_describe,
	.moved = net_dev_moved,
	.pause = net_dev_pause,
	.resume = net_dev_resume,
	.track_dirty = net_dev_track_dirty,
	.log_stats = net_dev_log_stats,
	.destroy = net_dev_destroy,
};

struct vmm_device *virtio_net__device(struct virtio_net *n) { return &n->dev; }

struct virtio_net *virtio_net__from_device(struct vmm_device *d)
{
	return d && d->ops == &net_dev_ops ? container_of(d, struct virtio_net, dev) : NULL;
}

int virtio_net__create_with_backend(struct vm *vm, const struct virtio_net_config *cfg,
				    struct net_backend *be, struct virtio_net **out)
{
	struct virtio_net *n;
	int ret;

	n = calloc(1, sizeof(*n));
	if (!n) {
		ret = -ENOMEM;
		goto err_be;
	}
	n->vm = vm;
	n->be = be;
	n->ctl_efd = -1;
	n->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT;
	snprintf(n->name, sizeof(n->name), "%s", cfg->name ? cfg->name : "virtio-net");
	n->failover = cfg->failover;
	n->standby_changed = cfg->standby_changed;
	n->standby_opaque = cfg->standby_opaque;
	snprintf(n->tap, sizeof(n->tap), "%s", cfg->tap ? cfg->tap : cfg->tap_buf);
	atomic_store(&n->standby, (int)(cfg->failover ? VIRTIO_NET_STANDBY_WAITING : VIRTIO_NET_STANDBY_OFF));
	if (cfg->has_mac)
		memcpy(n->mac, cfg->mac, 6);
	else
		net_random_mac(n->mac);
	atomic_init(&n->want_active, false);
	atomic_init(&n->gen, 0);

	n->tx = calloc(NET_TX_SLOTS, sizeof(*n->tx));
	n->rx_first = malloc(sizeof(*n->rx_first));
	n->rx_next = malloc(sizeof(*n->rx_next));
	n->ctrl_chain = malloc(sizeof(*n->ctrl_chain));
	if (!n->tx || !n->rx_first || !n->rx_next || !n->ctrl_chain) {
		ret = -ENOMEM;
		goto err_free;
	}

	ret = sys__eventfd(0);
	if (ret < 0)
		goto err_free;
	n->ctl_efd = ret;
	ret = evloop__add_fd(&vm->loop, &n->ctl_watch, n->ctl_efd, POLLIN, net_ctl_event, n);
	if (ret < 0)
		goto err_close;
	n->ctl_watching = true;

	ret = virtio_pci__init(&n->vdev, vm, n->name, NET_VIRTIO_ID, NET_PCI_CLASS, 3,
			       VIRTIO_NET_QUEUE_SIZE, NET_CFG_LEN, &net_ops, n);
	if (ret < 0) {
		log_err(n->name, "virtio-pci init: %s", strerror(-ret));
		goto err_unwatch;
	}
	if (be->ops->offer_mask)
		n->vdev.host_features &= be->ops->offer_mask(be);
	if (be->ops->rings_start) {
		/* the rings' call eventfds are the vectors' irqfds (net_call_fd) */
		n->can_own_rings = true;
		ret = msix__set_passthrough(&n->vdev.msix, &net_msix_pt_ops, n);
		if (ret < 0) {
			log_err(n->name, "MSI-X eventfds: %s", strerror(-ret));
			goto err_pci;
		}
	}
	ret = virtio_pci__register(&n->vdev);
	if (ret < 0) {
		log_err(n->name, "PCI registration: %s", strerror(-ret));
		goto err_pci;
	}
	device__init(&n->dev, n->name, "virtio-net", DEVICE_BUS_PCI, &net_dev_ops);
	n->dev.pci = &n->vdev.pci;
	n->dev.removable = true;
	ret = device__register_state(&n->dev, &vm->mig, "virtio-net", 0, NET_STATE_VERSION, 1,
				     &net_state_ops, n);
	if (!ret)
		ret = device__add(&vm->devices, &n->dev);
	if (ret) {
		log_err(n->name, "cannot add device '%s': %s", n->dev.id,
			ret == -EEXIST ? "the id is taken" : strerror(-ret));
		virtio_net__destroy(n);
		return ret;
	}
	log_info(n->name, "%s backend, mac %02x:%02x:%02x:%02x:%02x:%02x", be->kind, n->mac[0],
		 n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
	*out = n;
	return 0;

err_pci:
	virtio_pci__destroy(&n->vdev);
err_unwatch:
	net_ctl_unwatch(n);
err_close:
	sys__close(n->ctl_efd);
err_free:
	free(n->ctrl_chain);
	free(n->rx_next);
	free(n->rx_first);
	free(n->tx);
	free(n);
err_be:
	be->ops->destroy(be);
	return ret;
}

/*
 * vhost-net on the tap *be when cfg says so or when it can (auto); *be is
 * the backend to use. Only vhost=on and no vhost-net is an error (the tap
 * is freed then).
 */
static int net_pick_backend(const char *prefix, const struct virtio_net_config *cfg,
			    struct net_backend **be)
{
	const char *path = cfg->vhost_path ? cfg->vhost_path : VHOST_NET_DEV;
	struct net_backend *vn;
	int ret;

	if (cfg->vhost == VIRTIO_NET_VHOST_OFF) {
		log_info(prefix, "userspace backend (vhost=off)");
		return 0;
	}
	ret = vhost_net__wrap(prefix, path, *be, tap__fd(*be), &vn);
	if (!ret) {
		log_info(prefix, "vhost-net backend");
		*be = vn;
		return 0;
	}
	if (cfg->vhost == VIRTIO_NET_VHOST_ON) {
		log_err(prefix, "vhost=on, but %s: %s", path, strerror(-ret));
		(*be)->ops->destroy(*be);
		return ret;
	}
	log_info(prefix, "userspace backend (%s: %s)", path, strerror(-ret));
	return 0;
}

int virtio_net__create(struct vm *vm, const struct virtio_net_config *cfg, struct virtio_net **out)
{
	const char *prefix = cfg->name ? cfg->name : "virtio-net";
	const char *tap = cfg->tap ? cfg->tap : cfg->tap_buf;
	struct net_backend *be;
	struct virtio_net *n;
	int ret;

	if (!tap[0]) {
		log_err(prefix, "no tap interface given");
		return -EINVAL;
	}
	ret = tap__create(&vm->loop, prefix, tap, &be);
	if (ret < 0)
		return ret;
	ret = net_pick_backend(prefix, cfg, &be);
	if (ret < 0)
		return ret;
	ret = virtio_net__create_with_backend(vm, cfg, be, &n);
	if (ret < 0)
		return ret;
	*out = n;
	return 0;
}

void virtio_net__destroy(struct virtio_net *n)
{
	if (!n)
		return;
	device__remove(&n->vm->devices, &n->dev);
	device__unregister_state(&n->dev, &n->vm->mig);
	/* the backend drains first: its last callbacks still use the transport */
	net_stop_backend(n);
	n->be->ops->destroy(n->be);
	net_ctl_unwatch(n);
	virtio_pci__destroy(&n->vdev);
	sys__close(n->ctl_efd);
	free(n->ctrl_chain);
	free(n->rx_next);
	free(n->rx_first);
	free(n->tx);
	free(n);
}

void virtio_net__get_stats(const struct virtio_net *n, struct virtio_net_stats *s)
{
	struct net_stats_atomic *st = (struct net_stats_atomic *)&n->st;

	s->tx_packets = atomic_load_explicit(&st->tx_packets, memory_order_relaxed);
	s->tx_bytes = atomic_load_explicit(&st->tx_bytes, memory_order_relaxed);
	s->tx_errors = atomic_load_explicit(&st->tx_errors, memory_order_relaxed);
	s->rx_packets = atomic_load_explicit(&st->rx_packets, memory_order_relaxed);
	s->rx_bytes = atomic_load_explicit(&st->rx_bytes, memory_order_relaxed);
	s->rx_dropped = atomic_load_explicit(&st->rx_dropped, memory_order_relaxed);
	s->rx_stalls = atomic_load_explicit(&st->rx_stalls, memory_order_relaxed);
}

void virtio_net__log_stats(const struct virtio_net *n)
{
	struct virtio_net_stats s;

	virtio_net__get_stats(n, &s);
	log_info(n->name,
		 "tx %llu packets %llu bytes %llu errors; rx %llu packets %llu bytes %llu dropped "
		 "%llu stalls",
		 (unsigned long long)s.tx_packets, (unsigned long long)s.tx_bytes,
		 (unsigned long long)s.tx_errors, (unsigned long long)s.rx_packets,
		 (unsigned long long)s.rx_bytes, (unsigned long long)s.rx_dropped,
		 (unsigned long long)s.rx_stalls);
}

enum virtio_net_standby virtio_net__standby(const struct virtio_net *n, unsigned int *negotiations)
{
	if (negotiations)
		*negotiations = atomic_load(&n->standby_negotiations);
	return (enum virtio_net_standby)atomic_load(&n->standby);
}

const char *virtio_net__standby_name(enum virtio_net_standby s)
{
	switch (s) {
	case VIRTIO_NET_STANDBY_OFF: return "off";
	case VIRTIO_NET_STANDBY_WAITING: return "waiting";
	case VIRTIO_NET_STANDBY_NEGOTIATED: return "negotiated";
	case VIRTIO_NET_STANDBY_DECLINED: return "declined";
	case VIRTIO_NET_STANDBY_RESET: return "reset";
	}
	return "?";
}

const char *virtio_net__name(const struct virtio_net *n)
{
	return n->name;
}

void virtio_net__get_mac(const struct virtio_net *n, uint8_t mac[6])
{
	memcpy(mac, n->mac, 6);
}

struct virtio_dev *virtio_net__vdev(struct virtio_net *n)
{
	return &n->vdev;
}
