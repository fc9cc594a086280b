// SPDX-License-Identifier: MIT
/*
 * virtio-net model: option parsing, header sizes, offload mapping, and the
 * TX/RX paths driven over split rings in fake guest memory with a fake
 * backend that records what the device asks of it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/net/net.h"
#include "virtio/net/tap.h"
#include "virtio/pci.h"
#include "virtio/queue.h"
#include "vmm/kvm.h"
#include "vmm/mem.h"

/* spec feature bits (5.1.3) */
#define F_CSUM (1ULL << 0)
#define F_GUEST_CSUM (1ULL << 1)
#define F_MAC (1ULL << 5)
#define F_GUEST_TSO4 (1ULL << 7)
#define F_GUEST_TSO6 (1ULL << 8)
#define F_GUEST_ECN (1ULL << 9)
#define F_GUEST_UFO (1ULL << 10)
#define F_HOST_TSO4 (1ULL << 11)
#define F_MRG_RXBUF (1ULL << 15)
#define F_STATUS (1ULL << 16)
#define F_VERSION_1 (1ULL << 32)

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2

/* ---- option parsing ------------------------------------------------------ */

static int parse(const char *s, struct virtio_net_config *cfg, char *err)
{
	memset(cfg, 0, sizeof(*cfg));
	return virtio_net__parse_opts(s, cfg, err, 256);
}

Test(net_opts, tap_and_mac)
{
	struct virtio_net_config cfg;
	char err[256];

	cr_assert_eq(parse("tap=tap0,mac=52:54:00:12:34:5F", &cfg, err), 0, "%s", err);
	cr_assert_str_eq(cfg.tap, "tap0");
	cr_assert(cfg.has_mac);
	uint8_t want[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x5f};
	cr_assert_arr_eq(cfg.mac, want, 6);
}

Test(net_opts, id)
{
	struct virtio_net_config cfg;
	char err[256];

	cr_assert_eq(parse("tap=tap0,id=uplink", &cfg, err), 0, "%s", err);
	cr_assert_str_eq(cfg.id, "uplink");
	cr_assert_eq(parse("id=n-1.a_b,tap=tap0", &cfg, err), 0, "%s", err);
	cr_assert_str_eq(cfg.id, "n-1.a_b");
	cr_assert_eq(parse("tap=tap0", &cfg, err), 0, "%s", err);
	cr_assert_str_eq(cfg.id, "", "no id= leaves it to the board (net0, ...)");
}

Test(net_opts, failover)
{
	struct virtio_net_config cfg;
	char err[256];

	cr_assert_eq(parse("tap=tap0,mac=52:54:00:12:34:56,failover=on", &cfg, err), 0, "%s", err);
	cr_assert(cfg.failover);
	cr_assert_eq(parse("tap=tap0,failover=off", &cfg, err), 0, "%s", err);
	cr_assert_not(cfg.failover);
	cr_assert_eq(parse("tap=tap0", &cfg, err), 0, "%s", err);
	cr_assert_not(cfg.failover, "off unless asked");
}

Test(net_opts, vhost)
{
	struct virtio_net_config cfg;
	char err[256];

	cr_assert_eq(parse("tap=tap0", &cfg, err), 0, "%s", err);
	cr_assert_eq(cfg.vhost, VIRTIO_NET_VHOST_AUTO, "not given: vhost-net when it opens");
	cr_assert_eq(parse("tap=tap0,mac=52:54:00:12:34:56,vhost=on", &cfg, err), 0, "%s", err);
	cr_assert_eq(cfg.vhost, VIRTIO_NET_VHOST_ON);
	cr_assert_eq(parse("vhost=off,tap=tap0", &cfg, err), 0, "%s", err);
	cr_assert_eq(cfg.vhost, VIRTIO_NET_VHOST_OFF);
}

Test(net_opts, tap_only_keeps_name)
{
	struct virtio_net_config cfg = {0};
	char err[256];

	cfg.name = "virtio-net3";
	cr_assert_eq(virtio_net__parse_opts("tap=vm-tap%d", &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(cfg.tap, "vm-tap%d");
	cr_assert_not(cfg.has_mac);
	cr_assert_str_eq(cfg.name, "virtio-net3");
}

Test(net_opts, mac_first)
{
	struct virtio_net_config cfg;
	char err[256];

	cr_assert_eq(parse("mac=02:00:00:00:00:01,tap=t", &cfg, err), 0, "%s", err);
	cr_assert_str_eq(cfg.tap, "t");
	cr_assert_eq(cfg.mac[5], 1);
}

static void expect_err(const char *opts, const char *needle)
{
	struct virtio_net_config cfg;
	char err[256];

	cr_assert_eq(parse(opts, &cfg, err), -EINVAL, "'%s' accepted", opts);
	cr_assert(strstr(err, needle), "'%s': error '%s' lacks '%s'", opts, err, needle);
}

Test(net_opts, bad_macs)
{
	expect_err("tap=t,mac=52:54:00:12:34", "'52:54:00:12:34'");
	expect_err("tap=t,mac=52:54:00:12:34:zz", "'52:54:00:12:34:zz'");
	expect_err("tap=t,mac=52-54-00-12-34-56", "'52-54-00-12-34-56'");
	expect_err("tap=t,mac=52:54:00:12:34:567", "not valid");
	expect_err("tap=t,mac=", "mac ''");
	expect_err("tap=t,mac=01:00:5e:00:00:01", "multicast");
	expect_err("tap=t,mac=00:00:00:00:00:00", "all zeros");
}

Test(net_opts, bad_keys_and_values)
{
	expect_err("tap=t,speed=10", "unknown option 'speed'");
	expect_err("mac=52:54:00:12:34:56", "missing tap");
	expect_err("", "expected tap=NAME");
	expect_err("tap", "'tap' needs a value");
	expect_err("tap=", "tap= needs an interface name");
	expect_err("tap=a,tap=b", "'tap' given twice");
	expect_err("tap=t,mac=52:54:00:12:34:56,mac=52:54:00:12:34:57", "'mac' given twice");
	expect_err("tap=averyveryverylongname", "'averyveryverylongname' is longer than 15");
	expect_err("tap=a/b", "contains '/'");
	expect_err("tap=t,,mac=52:54:00:12:34:56", "empty option");
	expect_err("tap=t,", "empty option");
	expect_err("tap=t,id=", "1 to 15 characters");
	expect_err("tap=t,id=0net", "must start with a letter");
	expect_err("tap=t,id=a/b", "contains '/'");
	expect_err("tap=t,id=abcdefghijklmnop", "1 to 15 characters");
	expect_err("tap=t,id=a,id=b", "'id' given twice");
	expect_err("tap=t,speed=10", "expected tap, mac, id, failover or vhost");
	expect_err("tap=t,vhost=yes", "vhost='yes': on or off");
	expect_err("tap=t,vhost=on,vhost=off", "'vhost' given twice");
	expect_err("tap=t,failover=yes", "failover='yes': on or off");
	expect_err("tap=t,failover=on,failover=off", "'failover' given twice");
}

Test(net_opts, null_err_buffer)
{
	struct virtio_net_config cfg = {0};

	cr_assert_eq(virtio_net__parse_opts("bogus=1", &cfg, NULL, 0), -EINVAL);
}

/* ---- pure helpers -------------------------------------------------------- */

Test(net_hdr, sizes)
{
	cr_assert_eq(virtio_net__hdr_len(0), 10);
	cr_assert_eq(virtio_net__hdr_len(F_CSUM | F_GUEST_CSUM), 10);
	cr_assert_eq(virtio_net__hdr_len(F_VERSION_1), 12);
	cr_assert_eq(virtio_net__hdr_len(F_MRG_RXBUF), 12);
	cr_assert_eq(virtio_net__hdr_len(F_VERSION_1 | F_MRG_RXBUF), 12);
}

Test(net_hdr, offload_flags)
{
	cr_assert_eq(tap__offload_flags(0), 0);
	cr_assert_eq(tap__offload_flags(F_CSUM | F_HOST_TSO4), 0,
		     "host-side bits are not rx offloads");
	cr_assert_eq(tap__offload_flags(F_GUEST_CSUM), TUN_F_CSUM);
	cr_assert_eq(tap__offload_flags(F_GUEST_TSO4 | F_GUEST_TSO6), 0, "TSO needs GUEST_CSUM");
	cr_assert_eq(tap__offload_flags(F_GUEST_CSUM | F_GUEST_TSO4 | F_GUEST_TSO6),
		     TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
	cr_assert_eq(tap__offload_flags(F_GUEST_CSUM | F_GUEST_ECN), TUN_F_CSUM,
		     "ECN without TSO means nothing");
	cr_assert_eq(tap__offload_flags(F_GUEST_CSUM | F_GUEST_TSO4 | F_GUEST_ECN),
		     TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN);
	cr_assert_eq(tap__offload_flags(F_GUEST_CSUM | F_GUEST_UFO), TUN_F_CSUM | TUN_F_UFO);
}

/* ---- fake backend -------------------------------------------------------- */

#define FAKE_MAX_TX 32
#define FAKE_FRAME_MAX 4096

struct fake_tx {
	uint8_t data[FAKE_FRAME_MAX];
	size_t len;
	uint32_t token;
	bool completed;
};

struct fake_be {
	struct net_backend be;
	const struct net_backend_cbs *cbs;
	void *opaque;
	int starts, stops, resumes, destroys;
	unsigned int hdr_len;
	uint64_t offload_features;
	int tx_ret;
	struct fake_tx tx[FAKE_MAX_TX];
	unsigned int ntx;
};

static struct fake_be fake;

static int fake_start(struct net_backend *b, const struct net_backend_cbs *cbs, void *opaque)
{
	fake.cbs = cbs;
	fake.opaque = opaque;
	fake.starts++;
	return 0;
}

static int fake_tx(struct net_backend *b, const struct iovec *iov, int cnt, uint32_t token)
{
	struct fake_tx *t;
	int i;

	if (fake.tx_ret)
		return fake.tx_ret;
	cr_assert_lt(fake.ntx, FAKE_MAX_TX);
	t = &fake.tx[fake.ntx++];
	t->len = 0;
	t->token = token;
	t->completed = false;
	for (i = 0; i < cnt; i++) {
		cr_assert_leq(t->len + iov[i].iov_len, FAKE_FRAME_MAX);
		memcpy(t->data + t->len, iov[i].iov_base, iov[i].iov_len);
		t->len += iov[i].iov_len;
	}
	return 0;
}

static void fake_rx_resume(struct net_backend *b)
{
	fake.resumes++;
}

static int fake_set_hdr(struct net_backend *b, unsigned int len)
{
	fake.hdr_len = len;
	return 0;
}

static int fake_set_offloads(struct net_backend *b, uint64_t f)
{
	fake.offload_features = f;
	return 0;
}

static void fake_stop(struct net_backend *b)
{
	fake.stops++;
}

static void fake_destroy(struct net_backend *b)
{
	fake.destroys++;
}

static const struct net_backend_ops fake_ops = {
    .start = fake_start,
    .tx = fake_tx,
    .rx_resume = fake_rx_resume,
    .set_vnet_hdr_len = fake_set_hdr,
    .set_offloads = fake_set_offloads,
    .stop = fake_stop,
    .destroy = fake_destroy,
};

/* complete every recorded, not yet completed transmission */
static void fake_complete_all(int res)
{
	unsigned int i;

	for (i = 0; i < fake.ntx; i++) {
		if (!fake.tx[i].completed) {
			fake.tx[i].completed = true;
			fake.cbs->tx_done(fake.opaque, fake.tx[i].token,
					  res ? res : (int)fake.tx[i].len);
		}
	}
}

/* ---- rings in fake guest memory ------------------------------------------ */

#define QSIZE 16
#define RING_GPA(q) (0x10000ULL + (q)*0x10000ULL)
#define BUF_GPA 0x100000ULL

struct tring {
	uint64_t desc, avail, used;
	uint16_t avail_idx;
	uint16_t next_desc;
};

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

static struct vm vm;
static struct virtio_net *net;
static struct virtio_dev *vd;
static struct tring ring[3];

static void *hva(uint64_t gpa, uint64_t len)
{
	void *p = mem__gpa_to_hva(&vm.mem, gpa, len);

	cr_assert_not_null(p, "gpa %#llx", (unsigned long long)gpa);
	return p;
}

static void put16(uint64_t gpa, uint16_t v)
{
	memcpy(hva(gpa, 2), &v, 2);
}

static uint16_t get16(uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, hva(gpa, 2), 2);
	return v;
}

static uint32_t get32(uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, hva(gpa, 4), 4);
	return v;
}

static void put_desc(struct tring *r, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t *d = hva(r->desc + 16ULL * i, 16);

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

static void publish(struct tring *r, uint16_t head)
{
	put16(r->avail + 4 + 2ULL * (r->avail_idx % QSIZE), head);
	r->avail_idx++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	put16(r->avail + 2, r->avail_idx);
}

/* a chain of n segments; returns its head */
static uint16_t add_chain(int q, const struct seg *s, int n)
{
	struct tring *r = &ring[q];
	uint16_t head = r->next_desc;
	int i;

	for (i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % QSIZE);
		uint16_t flags = (uint16_t)((s[i].write ? VIRTQ_DESC_F_WRITE : 0) |
					    (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));

		put_desc(r, idx, s[i].gpa, s[i].len, flags, (uint16_t)((idx + 1) % QSIZE));
	}
	r->next_desc = (uint16_t)((head + n) % QSIZE);
	publish(r, head);
	return head;
}

static uint16_t used_idx(int q)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return get16(ring[q].used + 2);
}

static void used_elem(int q, uint16_t i, uint32_t *id, uint32_t *len)
{
	uint64_t e = ring[q].used + 4 + 8ULL * (i % QSIZE);

	*id = get32(e);
	*len = get32(e + 4);
}

static bool dev_broken(void)
{
	return vd->broken || (vd->status & 0x40); /* DEVICE_NEEDS_RESET */
}

static void setup_queue(int q)
{
	struct tring *r = &ring[q];
	struct virtq *vq = &vd->vq[q];

	r->desc = RING_GPA(q);
	r->avail = r->desc + 16 * QSIZE;
	r->used = ALIGN_UP(r->avail + 6 + 2 * QSIZE, 4096);
	r->avail_idx = 0;
	r->next_desc = 0;
	memset(hva(r->desc, 0x4000), 0, 0x4000);
	virtq__reset(vq);
	vq->size = QSIZE;
	vq->desc_gpa = r->desc;
	vq->avail_gpa = r->avail;
	vq->used_gpa = r->used;
	cr_assert_eq(virtq__enable(vq), 0);
	vq->ready = true;
}

static void setup(void)
{
	struct virtio_net_config cfg = {0};

	memset(&fake, 0, sizeof(fake));
	fake.be.ops = &fake_ops;
	fake.be.kind = "fake";
	cr_assert_eq(kvm__vm_init_fake(&vm, 16 * MiB), 0);
	cfg.name = "virtio-net-test";
	cfg.has_mac = true;
	memcpy(cfg.mac, (uint8_t[]){0x52, 0x54, 0, 0xab, 0xcd, 0xef}, 6);
	cr_assert_eq(virtio_net__create_with_backend(&vm, &cfg, &fake.be, &net), 0);
	vd = virtio_net__vdev(net);
}

static void teardown(void)
{
	virtio_net__destroy(net);
	cr_assert_eq(fake.destroys, 1);
	kvm__vm_destroy(&vm);
}

/* what the transport does at DRIVER_OK, then a kick so the device syncs */
static void activate(uint64_t features)
{
	setup_queue(VIRTIO_NET_RXQ);
	setup_queue(VIRTIO_NET_TXQ);
	vd->guest_features = features;
	vd->active = true;
	cr_assert_eq(vd->ops->activate(vd), 0);
	vd->ops->queue_notify(vd, VIRTIO_NET_TXQ);
	cr_assert_eq(fake.starts, 1);
}

#define FEAT_MRG (F_VERSION_1 | F_MRG_RXBUF | F_GUEST_CSUM | F_GUEST_TSO4 | F_CSUM)
#define FEAT_V1 (F_VERSION_1 | F_CSUM)

/* ---- device: STANDBY (failover=on) ------------------------------------------ */

#define F_STANDBY (1ULL << 62)

/* the standby_changed hook: how often it was called */
static int standby_calls;

static void on_standby(void *opaque)
{
	(*(int *)opaque)++;
}

static void setup_failover(void)
{
	struct virtio_net_config cfg = {0};

	standby_calls = 0;
	cfg.standby_changed = on_standby;
	cfg.standby_opaque = &standby_calls;
	memset(&fake, 0, sizeof(fake));
	fake.be.ops = &fake_ops;
	fake.be.kind = "fake";
	cr_assert_eq(kvm__vm_init_fake(&vm, 16 * MiB), 0);
	cfg.name = "virtio-net-failover";
	cfg.has_mac = true;
	cfg.failover = true;
	memcpy(cfg.mac, (uint8_t[]){0x52, 0x54, 0, 0xab, 0xcd, 0xef}, 6);
	cr_assert_eq(virtio_net__create_with_backend(&vm, &cfg, &fake.be, &net), 0);
	vd = virtio_net__vdev(net);
}

Test(net_standby, not_offered_without_failover, .init = setup, .fini = teardown)
{
	unsigned int n;

	cr_assert_not(vd->ops->features(vd) & F_STANDBY);
	cr_assert_eq(virtio_net__standby(net, &n), VIRTIO_NET_STANDBY_OFF);
	activate(FEAT_V1 | F_STANDBY); /* a driver cannot take what is not offered: still off */
	cr_assert_eq(virtio_net__standby(net, &n), VIRTIO_NET_STANDBY_OFF);
	cr_assert_eq(n, 0);
}

Test(net_standby, negotiated_reset_renegotiated, .init = setup_failover, .fini = teardown)
{
	unsigned int n;

	cr_assert(vd->ops->features(vd) & F_STANDBY, "failover=on offers VIRTIO_NET_F_STANDBY");
	cr_assert_eq(virtio_net__standby(net, &n), VIRTIO_NET_STANDBY_WAITING);
	cr_assert_eq(n, 0);
	activate(FEAT_V1 | F_STANDBY);
	cr_assert_eq(virtio_net__standby(net, &n), VIRTIO_NET_STANDBY_NEGOTIATED);
	cr_assert_eq(n, 1);
	/* the driver resets the device: no STANDBY until it negotiates again */
	vd->ops->reset(vd);
	cr_assert_eq(virtio_net__standby(net, &n), VIRTIO_NET_STANDBY_RESET);
	vd->guest_features = FEAT_V1 | F_STANDBY;
	cr_assert_eq(vd->ops->activate(vd), 0);
	cr_assert_eq(virtio_net__standby(net, &n), VIRTIO_NET_STANDBY_NEGOTIATED);
	cr_assert_eq(n, 2, "counted again");
	cr_assert_str_eq(virtio_net__standby_name(VIRTIO_NET_STANDBY_RESET), "reset");
	/* the board heard each change: negotiated, reset, negotiated again */
	cr_assert_eq(standby_calls, 3, "standby_changed called %d times", standby_calls);
}

Test(net_standby, declined_by_a_driver_without_net_failover, .init = setup_failover, .fini = teardown)
{
	unsigned int n;

	activate(FEAT_V1); /* no STANDBY in the driver's features */
	cr_assert_eq(virtio_net__standby(net, &n), VIRTIO_NET_STANDBY_DECLINED);
	cr_assert_eq(n, 0);
	/* a reset of a device that never had STANDBY stays declined until the next driver */
	vd->ops->reset(vd);
	cr_assert_eq(virtio_net__standby(net, &n), VIRTIO_NET_STANDBY_DECLINED);
	/* a later driver (net_failover loaded) takes it */
	vd->guest_features = FEAT_V1 | F_STANDBY;
	cr_assert_eq(vd->ops->activate(vd), 0);
	cr_assert_eq(virtio_net__standby(net, &n), VIRTIO_NET_STANDBY_NEGOTIATED);
	cr_assert_eq(n, 1);
	cr_assert_geq(standby_calls, 2, "declined, then negotiated: the board heard both");
}

Test(net_standby, the_device_model_view, .init = setup_failover, .fini = teardown)
{
	struct vmm_device *d = virtio_net__device(net);
	json_t *o;

	cr_assert_eq(virtio_net__from_device(d), net);
	cr_assert_null(virtio_net__from_device(NULL));
	cr_assert_eq(device__find(&vm.devices, "virtio-net-failover"), d, "in the VM's device list");
	cr_assert(d->removable);
	activate(FEAT_V1 | F_STANDBY);
	o = device__describe(d);
	cr_assert_str_eq(json_string_value(json_object_get(o, "kind")), "virtio-net");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "standby"), "state")),
			 "negotiated");
	cr_assert(strstr(json_string_value(json_object_get(o, "detail")), "mac=52:54:00:ab:cd:ef,failover=on"));
	cr_assert_not_null(json_object_get(json_object_get(o, "counters"), "tx_packets"));
	json_decref(o);
}

/* ---- device: features and config ------------------------------------------ */

Test(net_dev, features_and_config, .init = setup, .fini = teardown)
{
	uint64_t f = vd->ops->features(vd);
	uint8_t cfg[10];

	cr_assert(f & F_MAC);
	cr_assert(f & F_STATUS);
	cr_assert(f & F_MRG_RXBUF);
	cr_assert(f & F_CSUM && f & F_GUEST_CSUM);
	cr_assert(f & F_GUEST_TSO4 && f & F_GUEST_TSO6 && f & F_HOST_TSO4);
	cr_assert(f & (1ULL << 17), "a control queue (GUEST_ANNOUNCE needs it)");
	cr_assert(f & (1ULL << 21), "GUEST_ANNOUNCE");
	cr_assert_not(f & (1ULL << 18), "no CTRL_RX: its commands would be refused");
	cr_assert_eq(vd->nr_queues, 3);
	cr_assert_eq(vd->device_id, 1);

	vd->ops->cfg_read(vd, 0, cfg, 10);
	cr_assert_arr_eq(cfg, ((uint8_t[]){0x52, 0x54, 0, 0xab, 0xcd, 0xef}), 6);
	cr_assert_eq(cfg[6] | cfg[7] << 8, 1, "link up");
	cr_assert_eq(cfg[8] | cfg[9] << 8, 1, "one queue pair");
	vd->ops->cfg_read(vd, 4, cfg, 2);
	cr_assert_eq(cfg[0], 0xcd);
	cr_assert_eq(cfg[1], 0xef);
}

Test(net_dev, activation_configures_backend, .init = setup, .fini = teardown)
{
	activate(FEAT_MRG);
	cr_assert_eq(fake.hdr_len, 12);
	cr_assert_eq(fake.offload_features, FEAT_MRG);
	cr_assert_eq(tap__offload_flags(fake.offload_features), TUN_F_CSUM | TUN_F_TSO4);
}

Test(net_dev, legacy_header_without_version_1, .init = setup, .fini = teardown)
{
	activate(F_CSUM);
	cr_assert_eq(fake.hdr_len, 10);
}

/* ---- device: GUEST_ANNOUNCE and the control queue -------------------------- */

#define F_CTRL_VQ (1ULL << 17)
#define F_GUEST_ANNOUNCE (1ULL << 21)

/* one control command: header, data, ack byte; returns the ack */
static uint8_t ctrl_cmd(uint8_t cls, uint8_t cmd)
{
	uint8_t *h = hva(BUF_GPA + 0x8000, 2);
	uint32_t id, len;
	uint16_t before = used_idx(VIRTIO_NET_CTRLQ);

	h[0] = cls;
	h[1] = cmd;
	*(uint8_t *)hva(BUF_GPA + 0x8100, 1) = 0xaa;
	add_chain(VIRTIO_NET_CTRLQ, (struct seg[]){ { BUF_GPA + 0x8000, 2, false },
						    { BUF_GPA + 0x8100, 1, true } }, 2);
	vd->ops->queue_notify(vd, VIRTIO_NET_CTRLQ);
	cr_assert_eq(used_idx(VIRTIO_NET_CTRLQ), (uint16_t)(before + 1), "the command came back");
	used_elem(VIRTIO_NET_CTRLQ, before, &id, &len);
	cr_assert_eq(len, 1);
	return *(uint8_t *)hva(BUF_GPA + 0x8100, 1);
}

Test(net_dev, guest_announce, .init = setup, .fini = teardown)
{
	uint8_t st;

	cr_assert_eq(virtio_net__announce(net), -ENOTSUP, "before the driver runs");
	setup_queue(VIRTIO_NET_CTRLQ);
	activate(FEAT_V1 | F_STATUS | F_CTRL_VQ | F_GUEST_ANNOUNCE);
	vd->status |= 0x4; /* DRIVER_OK, as the transport sets it */
	cr_assert_eq(virtio_net__announce(net), 0);
	vd->ops->cfg_read(vd, 6, &st, 1);
	cr_assert_eq(st, 1 | 2, "link up, announce");
	cr_assert_eq(ctrl_cmd(3, 0), 0, "ANNOUNCE_ACK: OK");
	vd->ops->cfg_read(vd, 6, &st, 1);
	cr_assert_eq(st, 1, "the ack cleared announce");
	cr_assert_eq(virtio_net__announce_acks(net), 1);
	cr_assert_eq(ctrl_cmd(0, 0), 1, "CTRL_RX is not offered: ERR");
	cr_assert_eq(ctrl_cmd(3, 7), 1, "an unknown announce command: ERR");
	cr_assert_not(dev_broken());
}

Test(net_dev, guest_announce_not_negotiated, .init = setup, .fini = teardown)
{
	activate(FEAT_V1 | F_STATUS);
	vd->status |= 0x4;
	cr_assert_eq(virtio_net__announce(net), -ENOTSUP);
}

Test(net_dev, control_command_without_ack_byte_breaks, .init = setup, .fini = teardown)
{
	setup_queue(VIRTIO_NET_CTRLQ);
	activate(FEAT_V1 | F_CTRL_VQ);
	add_chain(VIRTIO_NET_CTRLQ, (struct seg[]){ { BUF_GPA + 0x8000, 2, false } }, 1);
	vd->ops->queue_notify(vd, VIRTIO_NET_CTRLQ);
	cr_assert(dev_broken(), "a command with nowhere to put the ack");
}

/* ---- device: transmit ----------------------------------------------------- */

Test(net_dev, tx_forwards_frame_with_header, .init = setup, .fini = teardown)
{
	uint8_t *hdr, *body;
	uint32_t id, len;
	uint16_t head;
	unsigned int i;

	activate(FEAT_MRG);
	hdr = hva(BUF_GPA, 12);
	body = hva(BUF_GPA + 0x1000, 60);
	memset(hdr, 0, 12);
	hdr[0] = 1; /* NEEDS_CSUM, passed through untouched */
	for (i = 0; i < 60; i++)
		body[i] = (uint8_t)i;
	head = add_chain(VIRTIO_NET_TXQ,
			 (struct seg[]){{BUF_GPA, 12, false}, {BUF_GPA + 0x1000, 60, false}}, 2);
	vd->ops->queue_notify(vd, VIRTIO_NET_TXQ);

	cr_assert_eq(fake.ntx, 1);
	cr_assert_eq(fake.tx[0].len, 72);
	cr_assert_eq(fake.tx[0].data[0], 1);
	cr_assert_arr_eq(fake.tx[0].data + 12, body, 60);
	cr_assert_eq(used_idx(VIRTIO_NET_TXQ), 0, "not returned before the write completes");

	fake_complete_all(0);
	cr_assert_eq(used_idx(VIRTIO_NET_TXQ), 1);
	used_elem(VIRTIO_NET_TXQ, 0, &id, &len);
	cr_assert_eq(id, head);
	cr_assert_eq(len, 0);

	struct virtio_net_stats st;
	virtio_net__get_stats(net, &st);
	cr_assert_eq(st.tx_packets, 1);
	cr_assert_eq(st.tx_bytes, 60);
	cr_assert_not(dev_broken());
}

Test(net_dev, tx_batch_and_backend_error, .init = setup, .fini = teardown)
{
	int i;

	activate(FEAT_V1);
	for (i = 0; i < 3; i++)
		add_chain(VIRTIO_NET_TXQ, (struct seg[]){{BUF_GPA + 0x100 * i, 80, false}}, 1);
	vd->ops->queue_notify(vd, VIRTIO_NET_TXQ);
	cr_assert_eq(fake.ntx, 3);
	fake_complete_all(-EIO);
	cr_assert_eq(used_idx(VIRTIO_NET_TXQ), 3);

	/* a backend that refuses a frame outright: chain returned, error counted */
	fake.tx_ret = -EINVAL;
	add_chain(VIRTIO_NET_TXQ, (struct seg[]){{BUF_GPA, 80, false}}, 1);
	vd->ops->queue_notify(vd, VIRTIO_NET_TXQ);
	cr_assert_eq(used_idx(VIRTIO_NET_TXQ), 4);

	struct virtio_net_stats st;
	virtio_net__get_stats(net, &st);
	cr_assert_eq(st.tx_errors, 4);
	cr_assert_eq(st.tx_packets, 0);
	cr_assert_not(dev_broken());
}

Test(net_dev, tx_busy_backend_retries, .init = setup, .fini = teardown)
{
	activate(FEAT_V1);
	fake.tx_ret = -EBUSY;
	add_chain(VIRTIO_NET_TXQ, (struct seg[]){{BUF_GPA, 80, false}}, 1);
	vd->ops->queue_notify(vd, VIRTIO_NET_TXQ);
	cr_assert_eq(fake.ntx, 0);
	cr_assert_eq(used_idx(VIRTIO_NET_TXQ), 0);
	fake.tx_ret = 0;
	vd->ops->queue_notify(vd, VIRTIO_NET_TXQ);
	cr_assert_eq(fake.ntx, 1, "the chain was put back and sent on the next kick");
}

Test(net_dev, tx_header_too_short_breaks, .init = setup, .fini = teardown)
{
	activate(FEAT_MRG);
	add_chain(VIRTIO_NET_TXQ, (struct seg[]){{BUF_GPA, 11, false}}, 1);
	vd->ops->queue_notify(vd, VIRTIO_NET_TXQ);
	cr_assert(dev_broken());
	cr_assert_eq(fake.ntx, 0);
	/* further kicks do nothing */
	add_chain(VIRTIO_NET_TXQ, (struct seg[]){{BUF_GPA, 100, false}}, 1);
	vd->ops->queue_notify(vd, VIRTIO_NET_TXQ);
	cr_assert_eq(fake.ntx, 0);
}

Test(net_dev, tx_writable_buffer_breaks, .init = setup, .fini = teardown)
{
	activate(FEAT_MRG);
	add_chain(VIRTIO_NET_TXQ,
		  (struct seg[]){{BUF_GPA, 12, false}, {BUF_GPA + 0x1000, 100, true}}, 2);
	vd->ops->queue_notify(vd, VIRTIO_NET_TXQ);
	cr_assert(dev_broken());
	cr_assert_eq(fake.ntx, 0);
}

Test(net_dev, tx_descriptor_loop_breaks, .init = setup, .fini = teardown)
{
	struct tring *r = &ring[VIRTIO_NET_TXQ];

	activate(FEAT_MRG);
	put_desc(r, 0, BUF_GPA, 12, VIRTQ_DESC_F_NEXT, 1);
	put_desc(r, 1, BUF_GPA + 0x100, 64, VIRTQ_DESC_F_NEXT, 0);
	publish(r, 0);
	vd->ops->queue_notify(vd, VIRTIO_NET_TXQ);
	cr_assert(dev_broken());
	cr_assert_eq(fake.ntx, 0);
}

Test(net_dev, tx_wild_address_breaks, .init = setup, .fini = teardown)
{
	activate(FEAT_MRG);
	add_chain(VIRTIO_NET_TXQ, (struct seg[]){{0x7f0000000000ULL, 100, false}}, 1);
	vd->ops->queue_notify(vd, VIRTIO_NET_TXQ);
	cr_assert(dev_broken());
	cr_assert_eq(fake.ntx, 0);
}

/* ---- device: receive ------------------------------------------------------- */

static size_t make_frame(uint8_t *f, unsigned int hdr_len, size_t payload)
{
	size_t i;

	memset(f, 0, hdr_len);
	f[0] = 2;			    /* DATA_VALID, passed through */
	memset(f + 10, 0xee, hdr_len - 10); /* num_buffers: the device must overwrite */
	for (i = 0; i < payload; i++)
		f[hdr_len + i] = (uint8_t)(i * 7 + 3);
	return hdr_len + payload;
}

Test(net_dev, rx_single_chain, .init = setup, .fini = teardown)
{
	static uint8_t frame[2000];
	size_t len = make_frame(frame, 12, 100);
	uint32_t id, ulen;
	uint8_t *buf;
	uint16_t head;

	activate(FEAT_V1);
	buf = hva(BUF_GPA, 2000);
	memset(buf, 0, 2000);
	head = add_chain(VIRTIO_NET_RXQ,
			 (struct seg[]){{BUF_GPA, 50, true}, {BUF_GPA + 50, 1950, true}}, 2);
	cr_assert_eq(fake.cbs->rx(fake.opaque, frame, len), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RXQ), 1);
	used_elem(VIRTIO_NET_RXQ, 0, &id, &ulen);
	cr_assert_eq(id, head);
	cr_assert_eq(ulen, 112);
	cr_assert_eq(buf[0], 0, "no flags without GUEST_CSUM");
	cr_assert_eq(buf[10] | buf[11] << 8, 1, "num_buffers is 1 without MRG_RXBUF");
	cr_assert_arr_eq(buf + 12, frame + 12, 100);

	struct virtio_net_stats st;
	virtio_net__get_stats(net, &st);
	cr_assert_eq(st.rx_packets, 1);
	cr_assert_eq(st.rx_bytes, 100);
}

/* pre-copy: what the device writes into guest memory is marked dirty, after the write */
static bool page_dirty(const uint64_t *bits, uint64_t gpa)
{
	return bits[(gpa >> 12) / 64] & (1ULL << ((gpa >> 12) % 64));
}

Test(net_dev, rx_and_used_ring_writes_are_marked_dirty, .init = setup, .fini = teardown)
{
	static uint8_t frame[9000];
	static uint64_t bits[MEM_DIRTY_WORDS(16 * MiB)];
	size_t len = make_frame(frame, 12, 6000);

	activate(FEAT_MRG);
	cr_assert_eq(mem__dirty_start(&vm.mem), 0);
	/* a frame over two 4 KiB buffers on separate pages, far from the rings */
	add_chain(VIRTIO_NET_RXQ, (struct seg[]){{BUF_GPA + 0x10000, 4096, true}}, 1);
	add_chain(VIRTIO_NET_RXQ, (struct seg[]){{BUF_GPA + 0x30000, 4096, true}}, 1);
	cr_assert_eq(fake.cbs->rx(fake.opaque, frame, len), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RXQ), 2);
	memset(bits, 0, sizeof(bits));
	mem__dirty_take(&vm.mem, 0, bits);
	cr_assert(page_dirty(bits, BUF_GPA + 0x10000), "the first buffer");
	cr_assert(page_dirty(bits, BUF_GPA + 0x30000), "the second buffer");
	cr_assert(page_dirty(bits, ring[VIRTIO_NET_RXQ].used), "the used ring");
	cr_assert_not(page_dirty(bits, BUF_GPA + 0x20000), "a page nobody wrote");
	cr_assert_not(page_dirty(bits, ring[VIRTIO_NET_TXQ].used), "the idle queue's ring");
	memset(bits, 0, sizeof(bits));
	mem__dirty_take(&vm.mem, 0, bits);
	cr_assert_not(page_dirty(bits, BUF_GPA + 0x10000), "taking the bits cleared them");
	mem__dirty_stop(&vm.mem);
	add_chain(VIRTIO_NET_RXQ, (struct seg[]){{BUF_GPA + 0x50000, 4096, true}}, 1);
	cr_assert_eq(fake.cbs->rx(fake.opaque, frame, 1000), 0);
	mem__dirty_take(&vm.mem, 0, bits);
	cr_assert_not(page_dirty(bits, BUF_GPA + 0x50000), "nothing is marked once tracking stopped");
}

Test(net_dev, rx_legacy_header_untouched, .init = setup, .fini = teardown)
{
	static uint8_t frame[200];
	size_t len = make_frame(frame, 10, 60);
	uint8_t *buf;

	activate(F_CSUM);
	buf = hva(BUF_GPA, 200);
	memset(buf, 0x55, 200);
	add_chain(VIRTIO_NET_RXQ, (struct seg[]){{BUF_GPA, 200, true}}, 1);
	cr_assert_eq(fake.cbs->rx(fake.opaque, frame, len), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RXQ), 1);
	cr_assert_eq(buf[0], 0, "flags cleared without GUEST_CSUM");
	cr_assert_arr_eq(buf + 1, frame + 1, 69, "10-byte header, then the frame");
	cr_assert_eq(buf[70], 0x55);
}

Test(net_dev, rx_without_buffers_holds_and_resumes, .init = setup, .fini = teardown)
{
	static uint8_t frame[200];
	size_t len = make_frame(frame, 12, 60);

	activate(FEAT_V1);
	int resumes = fake.resumes;
	cr_assert_eq(fake.cbs->rx(fake.opaque, frame, len), -ENOBUFS);
	struct virtio_net_stats st;
	virtio_net__get_stats(net, &st);
	cr_assert_eq(st.rx_stalls, 1);
	cr_assert_eq(st.rx_packets, 0);

	add_chain(VIRTIO_NET_RXQ, (struct seg[]){{BUF_GPA, 2000, true}}, 1);
	vd->ops->queue_notify(vd, VIRTIO_NET_RXQ);
	cr_assert_eq(fake.resumes, resumes + 1, "an rx kick resumes the backend");
	cr_assert_eq(fake.cbs->rx(fake.opaque, frame, len), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RXQ), 1);
}

Test(net_dev, rx_too_big_for_chain_dropped, .init = setup, .fini = teardown)
{
	static uint8_t frame[2000];
	size_t len = make_frame(frame, 12, 1500);
	uint32_t id, ulen;
	uint16_t head;

	activate(FEAT_V1);
	head = add_chain(VIRTIO_NET_RXQ, (struct seg[]){{BUF_GPA, 1000, true}}, 1);
	cr_assert_eq(fake.cbs->rx(fake.opaque, frame, len), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RXQ), 0);
	struct virtio_net_stats st;
	virtio_net__get_stats(net, &st);
	cr_assert_eq(st.rx_dropped, 1);

	/* the chain is still there for a frame that fits */
	len = make_frame(frame, 12, 200);
	cr_assert_eq(fake.cbs->rx(fake.opaque, frame, len), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RXQ), 1);
	used_elem(VIRTIO_NET_RXQ, 0, &id, &ulen);
	cr_assert_eq(id, head);
	cr_assert_eq(ulen, 212);
}

Test(net_dev, rx_mergeable_spreads_frame, .init = setup, .fini = teardown)
{
	static uint8_t frame[3000];
	size_t len = make_frame(frame, 12, 2500);
	uint16_t heads[4];
	uint32_t id, ulen;
	int i;

	activate(FEAT_MRG);
	for (i = 0; i < 4; i++) {
		memset(hva(BUF_GPA + 0x1000 * i, 1000), 0, 1000);
		heads[i] = add_chain(VIRTIO_NET_RXQ,
				     (struct seg[]){{BUF_GPA + 0x1000 * i, 1000, true}}, 1);
	}
	cr_assert_eq(fake.cbs->rx(fake.opaque, frame, len), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RXQ), 3);
	for (i = 0; i < 3; i++) {
		used_elem(VIRTIO_NET_RXQ, (uint16_t)i, &id, &ulen);
		cr_assert_eq(id, heads[i]);
		cr_assert_eq(ulen, i < 2 ? 1000 : 512);
		cr_assert_arr_eq(hva(BUF_GPA + 0x1000 * i, ulen), frame + 1000 * i, i ? ulen : 10);
	}
	uint8_t *b0 = hva(BUF_GPA, 1000);
	cr_assert_eq(b0[0], 2, "flags pass through with GUEST_CSUM");
	cr_assert_eq(b0[10] | b0[11] << 8, 3, "num_buffers");
	cr_assert_arr_eq(b0 + 12, frame + 12, 988);
	cr_assert_arr_eq(hva(BUF_GPA + 0x2000, 512), frame + 2000, 512);

	/* the fourth buffer takes the next small frame alone */
	len = make_frame(frame, 12, 100);
	cr_assert_eq(fake.cbs->rx(fake.opaque, frame, len), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RXQ), 4);
	used_elem(VIRTIO_NET_RXQ, 3, &id, &ulen);
	cr_assert_eq(id, heads[3]);
	cr_assert_eq(ulen, 112);
	uint8_t *b3 = hva(BUF_GPA + 0x3000, 112);
	cr_assert_eq(b3[10] | b3[11] << 8, 1);
}

Test(net_dev, rx_mergeable_short_of_buffers_rewinds, .init = setup, .fini = teardown)
{
	static uint8_t frame[3000];
	size_t len = make_frame(frame, 12, 2500);
	uint32_t id, ulen;
	uint16_t h0;

	activate(FEAT_MRG);
	h0 = add_chain(VIRTIO_NET_RXQ, (struct seg[]){{BUF_GPA, 1000, true}}, 1);
	add_chain(VIRTIO_NET_RXQ, (struct seg[]){{BUF_GPA + 0x1000, 1000, true}}, 1);
	cr_assert_eq(fake.cbs->rx(fake.opaque, frame, len), -ENOBUFS);
	cr_assert_eq(used_idx(VIRTIO_NET_RXQ), 0);

	add_chain(VIRTIO_NET_RXQ, (struct seg[]){{BUF_GPA + 0x2000, 1000, true}}, 1);
	cr_assert_eq(fake.cbs->rx(fake.opaque, frame, len), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RXQ), 3);
	used_elem(VIRTIO_NET_RXQ, 0, &id, &ulen);
	cr_assert_eq(id, h0, "the same chains are used again from the first");
	uint8_t *b0 = hva(BUF_GPA, 12);
	cr_assert_eq(b0[10] | b0[11] << 8, 3);
}

Test(net_dev, rx_readable_buffer_breaks, .init = setup, .fini = teardown)
{
	static uint8_t frame[200];
	size_t len = make_frame(frame, 12, 60);

	activate(FEAT_MRG);
	add_chain(VIRTIO_NET_RXQ,
		  (struct seg[]){{BUF_GPA, 100, false}, {BUF_GPA + 100, 1000, true}}, 2);
	cr_assert_eq(fake.cbs->rx(fake.opaque, frame, len), 0);
	cr_assert(dev_broken());
	cr_assert_eq(used_idx(VIRTIO_NET_RXQ), 0);
	cr_assert_geq(fake.stops, 1, "the backend stops reading");
}

Test(net_dev, rx_mergeable_buffer_smaller_than_header_breaks, .init = setup, .fini = teardown)
{
	static uint8_t frame[200];
	size_t len = make_frame(frame, 12, 60);

	activate(FEAT_MRG);
	add_chain(VIRTIO_NET_RXQ, (struct seg[]){{BUF_GPA, 8, true}}, 1);
	cr_assert_eq(fake.cbs->rx(fake.opaque, frame, len), 0);
	cr_assert(dev_broken());
}

Test(net_dev, rx_descriptor_loop_breaks, .init = setup, .fini = teardown)
{
	struct tring *r = &ring[VIRTIO_NET_RXQ];
	static uint8_t frame[200];
	size_t len = make_frame(frame, 12, 60);

	activate(FEAT_MRG);
	put_desc(r, 0, BUF_GPA, 100, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	publish(r, 0);
	cr_assert_eq(fake.cbs->rx(fake.opaque, frame, len), 0);
	cr_assert(dev_broken());
}

/* ---- device: reset ----------------------------------------------------- */

Test(net_dev, reset_stops_backend_and_drops_stale_completions, .init = setup, .fini = teardown)
{
	static uint8_t frame[200];
	size_t len = make_frame(frame, 12, 60);

	activate(FEAT_V1);
	add_chain(VIRTIO_NET_TXQ, (struct seg[]){{BUF_GPA, 80, false}}, 1);
	vd->ops->queue_notify(vd, VIRTIO_NET_TXQ);
	cr_assert_eq(fake.ntx, 1);

	vd->ops->reset(vd);
	vd->ops->queue_notify(vd, VIRTIO_NET_TXQ); /* or the control event: either syncs */
	cr_assert_eq(fake.stops, 1);
	fake_complete_all(0);
	cr_assert_eq(used_idx(VIRTIO_NET_TXQ), 0, "no used entry after a reset");
	cr_assert_eq(fake.cbs->rx(fake.opaque, frame, len), 0);
	struct virtio_net_stats st;
	virtio_net__get_stats(net, &st);
	cr_assert_eq(st.rx_dropped, 1);

	/* the driver comes back */
	fake.starts = 0;
	activate(FEAT_MRG);
	cr_assert_eq(fake.hdr_len, 12);
	add_chain(VIRTIO_NET_TXQ, (struct seg[]){{BUF_GPA, 80, false}}, 1);
	vd->ops->queue_notify(vd, VIRTIO_NET_TXQ);
	fake_complete_all(0);
	cr_assert_eq(used_idx(VIRTIO_NET_TXQ), 1);
}

Test(net_dev, kick_before_activation_is_ignored, .init = setup, .fini = teardown)
{
	setup_queue(VIRTIO_NET_TXQ);
	add_chain(VIRTIO_NET_TXQ, (struct seg[]){{BUF_GPA, 80, false}}, 1);
	vd->ops->queue_notify(vd, VIRTIO_NET_TXQ);
	vd->ops->queue_notify(vd, 5);
	cr_assert_eq(fake.starts, 0);
	cr_assert_eq(fake.ntx, 0);
	cr_assert_not(dev_broken());
}
