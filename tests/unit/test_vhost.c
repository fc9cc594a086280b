// SPDX-License-Identifier: MIT
/*
 * vhost-net set-up and teardown against a fake vhost device: the sys seam's
 * fake (vmm/sys.h) answers /dev/vhost-net's ioctls and records them, so the
 * tests check the sequence the kernel would see (ownership, features, the
 * memory table, each ring's num/base/addr/kick/call, the backend), that a
 * driver's reset, a pause and a migration's dirty tracking take the rings
 * back with their indices, that a later activation sets everything up
 * again, and that a failing ioctl at any step leaves nothing bound.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <linux/vhost.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>
#include <string.h>

#include "irq_fake.h"
#include "virtio/net/net.h"
#include "virtio/net/vhost_net.h"
#include "virtio/pci.h"
#include "virtio/queue.h"
#include "virtio/vhost.h"
#include "vmm/device.h"
#include "vmm/kvm.h"
#include "vmm/mem.h"
#include "vmm/msix.h"
#include "vmm/sys.h"

#define FAKE_PATH "/fake/dev/vhost-net"
#define FAKE_FD 900
#define FAKE_TAP_FD 901
#define MAX_RECS 256

#define BIT(n) (1ULL << (n))
/* virtio-net feature bits (<linux/virtio_net.h> clashes with virtio/net/net.h) */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_CTRL_VQ 17
#define ALL_RING_FEATURES                                                                     \
	(BIT(VIRTIO_NET_F_MRG_RXBUF) | BIT(VIRTIO_RING_F_INDIRECT_DESC) |                    \
	 BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_ANY_LAYOUT) | \
	 BIT(VIRTIO_F_NOTIFY_ON_EMPTY))

/* ---- the fake vhost device ------------------------------------------------ */

struct rec {
	unsigned long req;
	unsigned int index;
	int64_t val; /* num, base, fd or features */
	struct vhost_vring_addr addr;
	struct vhost_memory_region regions[MEM_MAX_REGIONS];
	unsigned int nregions;
	bool failed; /* the fake answered an error: the kernel did not do it */
};

static struct {
	bool open_fails;
	int open_errno;
	uint64_t features;
	uint16_t vring_base[2]; /* what GET_VRING_BASE answers */
	int fail_at;            /* fail the n-th ioctl (0-based) with -EIO, -1 never */
	unsigned long fail_req; /* or every ioctl of this request (0: none) */
	int nr_ioctls;
	struct rec recs[MAX_RECS];
	unsigned int nrecs;
	int opens, closes;
} fk;

static int fake_open(void *opaque, const char *path, int flags)
{
	(void)opaque;
	if (strcmp(path, FAKE_PATH))
		return SYS_FAKE_PASS;
	cr_assert(flags & O_RDWR);
	if (fk.open_fails)
		return -fk.open_errno;
	fk.opens++;
	return FAKE_FD;
}

static int fake_close(void *opaque, int fd)
{
	(void)opaque;
	if (fd != FAKE_FD && fd != FAKE_TAP_FD)
		return SYS_FAKE_PASS;
	if (fd == FAKE_FD)
		fk.closes++;
	return 0;
}

static int fake_ioctl(void *opaque, int fd, unsigned long req, void *arg)
{
	struct rec *r;
	int n;

	(void)opaque;
	if (fd != FAKE_FD)
		return SYS_FAKE_PASS;
	cr_assert_eq(fk.opens - fk.closes, 1, "ioctl on a closed vhost fd");
	n = fk.nr_ioctls++;
	cr_assert_lt(fk.nrecs, MAX_RECS);
	r = &fk.recs[fk.nrecs++];
	memset(r, 0, sizeof(*r));
	r->req = req;
	switch (req) {
	case VHOST_SET_OWNER:
		break;
	case VHOST_GET_FEATURES:
	case VHOST_SET_FEATURES:
		r->val = (int64_t) * (uint64_t *)arg;
		break;
	case VHOST_SET_MEM_TABLE: {
		const struct vhost_memory *m = arg;

		r->nregions = m->nregions;
		cr_assert_leq(m->nregions, MEM_MAX_REGIONS);
		memcpy(r->regions, m->regions, m->nregions * sizeof(m->regions[0]));
		break;
	}
	case VHOST_SET_VRING_NUM:
	case VHOST_SET_VRING_BASE:
	case VHOST_GET_VRING_BASE: {
		const struct vhost_vring_state *s = arg;

		r->index = s->index;
		r->val = s->num;
		break;
	}
	case VHOST_SET_VRING_ADDR:
		r->addr = *(struct vhost_vring_addr *)arg;
		r->index = r->addr.index;
		break;
	case VHOST_SET_VRING_KICK:
	case VHOST_SET_VRING_CALL:
	case VHOST_NET_SET_BACKEND: {
		const struct vhost_vring_file *f = arg;

		r->index = f->index;
		r->val = f->fd;
		break;
	}
	default:
		cr_assert_fail("unexpected ioctl %#lx on the vhost fd", req);
	}
	if (n == fk.fail_at || req == fk.fail_req) {
		r->failed = true;
		return -EIO;
	}
	if (req == VHOST_GET_FEATURES)
		*(uint64_t *)arg = fk.features;
	if (req == VHOST_GET_VRING_BASE) {
		struct vhost_vring_state *s = arg;

		cr_assert_lt(s->index, 2u);
		s->num = fk.vring_base[s->index];
		r->val = s->num;
	}
	return 0;
}

static const struct sys_fake fake_sys = {
	.open = fake_open,
	.ioctl = fake_ioctl,
	.close = fake_close,
};

static int count(unsigned long req)
{
	int n = 0;
	unsigned int i;

	for (i = 0; i < fk.nrecs; i++)
		n += fk.recs[i].req == req;
	return n;
}

/* the last record of req on ring index that the kernel did, or NULL */
static const struct rec *last(unsigned long req, unsigned int index)
{
	const struct rec *r = NULL;
	unsigned int i;

	for (i = 0; i < fk.nrecs; i++)
		if (fk.recs[i].req == req && fk.recs[i].index == index && !fk.recs[i].failed)
			r = &fk.recs[i];
	return r;
}

static void forget(void)
{
	fk.nrecs = 0;
}

/* ---- a frame backend standing for the tap --------------------------------- */

static struct {
	struct net_backend be;
	int starts, stops, destroys, resumes;
	unsigned int hdr_len;
	uint64_t offloads;
	unsigned int ntx;
	uint32_t token;
	const struct net_backend_cbs *cbs;
	void *opaque;
} tapf;

static int tapf_start(struct net_backend *b, const struct net_backend_cbs *cbs, void *opaque)
{
	(void)b;
	tapf.starts++;
	tapf.cbs = cbs;
	tapf.opaque = opaque;
	return 0;
}

static int tapf_tx(struct net_backend *b, const struct iovec *iov, int cnt, uint32_t token)
{
	(void)b, (void)iov, (void)cnt;
	tapf.ntx++;
	tapf.token = token; /* completed later, never inside the op (backend.h) */
	return 0;
}

static void tapf_rx_resume(struct net_backend *b)
{
	(void)b;
	tapf.resumes++;
}

static int tapf_hdr(struct net_backend *b, unsigned int len)
{
	(void)b;
	tapf.hdr_len = len;
	return 0;
}

static int tapf_offloads(struct net_backend *b, uint64_t f)
{
	(void)b;
	tapf.offloads = f;
	return 0;
}

static void tapf_stop(struct net_backend *b)
{
	(void)b;
	tapf.stops++;
}

static void tapf_destroy(struct net_backend *b)
{
	(void)b;
	tapf.destroys++;
}

static const struct net_backend_ops tapf_ops = {
	.start = tapf_start,
	.tx = tapf_tx,
	.rx_resume = tapf_rx_resume,
	.set_vnet_hdr_len = tapf_hdr,
	.set_offloads = tapf_offloads,
	.stop = tapf_stop,
	.destroy = tapf_destroy,
};

/* ---- the generic layer alone ---------------------------------------------- */

static void fake_init(void)
{
	memset(&fk, 0, sizeof(fk));
	fk.fail_at = -1;
	fk.features = ALL_RING_FEATURES | BIT(VHOST_F_LOG_ALL) | BIT(VHOST_NET_F_VIRTIO_NET_HDR);
	memset(&tapf, 0, sizeof(tapf));
	tapf.be.ops = &tapf_ops;
	tapf.be.kind = "tap";
	sys__set_fake(&fake_sys);
}

static void fake_fini(void)
{
	sys__set_fake(NULL);
}

Test(vhost, open_takes_ownership_and_reads_features, .init = fake_init, .fini = fake_fini)
{
	struct vhost v;

	cr_assert_eq(vhost__open(&v, FAKE_PATH, "t"), 0);
	cr_assert_eq(fk.nrecs, 2);
	cr_assert_eq(fk.recs[0].req, VHOST_SET_OWNER, "ownership first");
	cr_assert_eq(fk.recs[1].req, VHOST_GET_FEATURES);
	cr_assert_eq(v.features, fk.features);
	cr_assert_eq(vhost__set_features(&v, BIT(VIRTIO_F_VERSION_1) | BIT(62)), -EINVAL,
		     "a feature the kernel lacks is refused before any ioctl");
	cr_assert_eq(fk.nrecs, 2);
	vhost__close(&v);
	cr_assert_eq(fk.closes, 1);
	vhost__close(&v);
	cr_assert_eq(fk.closes, 1, "closing twice closes once");
}

Test(vhost, open_failures_close_the_fd, .init = fake_init, .fini = fake_fini)
{
	struct vhost v;

	fk.open_fails = true;
	fk.open_errno = ENOENT;
	cr_assert_eq(vhost__open(&v, FAKE_PATH, "t"), -ENOENT);
	cr_assert_eq(v.fd, -1);
	cr_assert_eq(fk.nrecs, 0);
	fk.open_fails = false;
	for (int k = 0; k < 2; k++) {
		fk.fail_at = fk.nr_ioctls + k;
		cr_assert_eq(vhost__open(&v, FAKE_PATH, "t"), -EIO, "ioctl %d fails", k);
		cr_assert_eq(v.fd, -1);
		cr_assert_eq(fk.opens, fk.closes, "the fd is closed after ioctl %d failed", k);
	}
}

Test(vhost, vring_start_refuses_rings_outside_ram, .init = fake_init, .fini = fake_fini)
{
	static uint8_t ram[64 * 1024];
	struct guest_mem m;
	struct vhost v;
	struct vhost_vring r = { .index = 0, .num = 16, .desc_gpa = 0x1000, .avail_gpa = 0x2000,
				 .used_gpa = 64 * 1024 - 8, .kick_fd = 5, .call_fd = 6 };

	cr_assert_eq(mem__init_from_buffer(&m, ram, 0, sizeof(ram)), 0);
	cr_assert_eq(vhost__open(&v, FAKE_PATH, "t"), 0);
	forget();
	cr_assert_eq(vhost__vring_start(&v, &m, &r), -EFAULT);
	cr_assert_eq(fk.nrecs, 0, "nothing reaches the kernel");
	r.used_gpa = 0x3000;
	cr_assert_eq(vhost__vring_start(&v, &m, &r), 0);
	cr_assert_eq(fk.nrecs, 5);
	/* CALL fails: the kick just bound is unbound again */
	forget();
	fk.fail_req = VHOST_SET_VRING_CALL;
	cr_assert_eq(vhost__vring_start(&v, &m, &r), -EIO);
	cr_assert_eq(last(VHOST_SET_VRING_KICK, 0)->val, -1);
	vhost__close(&v);
}

Test(vhost_net, wrap_needs_version_1_and_leaves_the_tap_on_failure, .init = fake_init,
     .fini = fake_fini)
{
	struct net_backend *be;

	fk.features = BIT(VIRTIO_RING_F_EVENT_IDX);
	cr_assert_eq(vhost_net__wrap("t", FAKE_PATH, &tapf.be, FAKE_TAP_FD, &be), -ENOTSUP);
	cr_assert_eq(fk.opens, fk.closes);
	cr_assert_eq(tapf.destroys, 0, "the tap is still the caller's");
	fk.open_fails = true;
	fk.open_errno = ENOENT;
	cr_assert_eq(vhost_net__wrap("t", FAKE_PATH, &tapf.be, FAKE_TAP_FD, &be), -ENOENT);
	cr_assert_eq(tapf.destroys, 0);
}

/* ---- the device on a vhost-net backend ------------------------------------ */

#define QSIZE 16
#define RING_GPA(q) (0x10000ULL + (q) * 0x10000ULL)
#define BUF_GPA 0x100000ULL

static struct vm vm;
static struct virtio_net *net;
static struct virtio_dev *vd;
static struct net_backend *vbe;

static void *hva(uint64_t gpa, uint64_t len)
{
	void *p = mem__gpa_to_hva(&vm.mem, gpa, len);

	cr_assert_not_null(p);
	return p;
}

static void put16(uint64_t gpa, uint16_t v)
{
	memcpy(hva(gpa, 2), &v, 2);
}

static uint64_t used_gpa(int q)
{
	return ALIGN_UP(RING_GPA(q) + 16 * QSIZE + 6 + 2 * QSIZE, 4096);
}

static void setup_queue(int q)
{
	struct virtq *vq = &vd->vq[q];

	memset(hva(RING_GPA(q), 0x4000), 0, 0x4000);
	virtq__reset(vq);
	vq->size = QSIZE;
	vq->desc_gpa = RING_GPA(q);
	vq->avail_gpa = RING_GPA(q) + 16 * QSIZE;
	vq->used_gpa = used_gpa(q);
	cr_assert_eq(virtq__enable(vq), 0);
	vq->ready = true;
}

static void msix_ctrl(uint16_t flags)
{
	struct msix *m = &vd->msix;

	pci__cfg_wr16(&vd->pci, m->cap_off + PCI_MSIX_FLAGS,
		      (pci__cfg_rd16(&vd->pci, m->cap_off + PCI_MSIX_FLAGS) & 0x07ff) | flags);
	msix__cfg_write(m, m->cap_off + PCI_MSIX_FLAGS, 2);
}

static void msix_entry(uint16_t v, uint32_t field, uint32_t val)
{
	msix__table_access(&vd->msix, v * 16 + field, (uint8_t *)&val, 4, true);
}

static void dev_setup(void)
{
	struct virtio_net_config cfg = { 0 };

	fake_init();
	cr_assert_eq(kvm__vm_init_fake(&vm, 16 * MiB), 0);
	cr_assert_eq(vhost_net__wrap("vhost-test", FAKE_PATH, &tapf.be, FAKE_TAP_FD, &vbe), 0);
	cfg.name = "vhost-test";
	cfg.has_mac = true;
	memcpy(cfg.mac, (uint8_t[]){ 0x52, 0x54, 0, 1, 2, 3 }, 6);
	cr_assert_eq(virtio_net__create_with_backend(&vm, &cfg, vbe, &net), 0);
	vd = virtio_net__vdev(net);
	forget();
}

static void dev_teardown(void)
{
	virtio_net__destroy(net);
	cr_assert_eq(tapf.destroys, 1);
	cr_assert_eq(fk.opens, fk.closes, "the vhost fd is closed");
	kvm__vm_destroy(&vm);
	fake_fini();
}

#define GUEST_FEATURES                                                                      \
	(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_NET_F_MRG_RXBUF) | BIT(VIRTIO_RING_F_EVENT_IDX) | \
	 BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_GUEST_CSUM) | BIT(VIRTIO_NET_F_GUEST_TSO4) | \
	 BIT(VIRTIO_NET_F_CTRL_VQ))

/* what a driver does up to DRIVER_OK: MSI-X on, vectors 0..2 unmasked, rings, features */
static void activate(bool msix)
{
	uint16_t v;

	setup_queue(VIRTIO_NET_RXQ);
	setup_queue(VIRTIO_NET_TXQ);
	if (msix) {
		msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
		for (v = 0; v < 3; v++) {
			msix_entry(v, 0, 0xfee00000);
			msix_entry(v, 8, 0x40 + v);
			msix_entry(v, 12, 0);
		}
	}
	vd->vq_vector[VIRTIO_NET_RXQ] = 0;
	vd->vq_vector[VIRTIO_NET_TXQ] = 1;
	vd->config_vector = 2;
	vd->guest_features = GUEST_FEATURES & vd->host_features;
	vd->active = true;
	cr_assert_eq(vd->ops->activate(vd), 0);
	vd->ops->queue_notify(vd, VIRTIO_NET_CTRLQ); /* the event loop syncs */
}

/* the 14 ioctls of a hand-over, in order, with their arguments */
static void assert_setup_sequence(uint16_t base0, uint16_t base1)
{
	static const unsigned long ring_reqs[] = { VHOST_SET_VRING_NUM, VHOST_SET_VRING_BASE,
						   VHOST_SET_VRING_ADDR, VHOST_SET_VRING_KICK,
						   VHOST_SET_VRING_CALL };
	const struct rec *r = fk.recs;
	unsigned int q, i;

	cr_assert_eq(fk.nrecs, 14, "%u ioctls", fk.nrecs);
	cr_assert_eq(r[0].req, VHOST_SET_FEATURES);
	cr_assert_eq((uint64_t)r[0].val,
		     BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_NET_F_MRG_RXBUF) | BIT(VIRTIO_RING_F_EVENT_IDX),
		     "the driver's ring features only, not the tap's offloads: %#llx",
		     (unsigned long long)r[0].val);
	cr_assert_eq(r[1].req, VHOST_SET_MEM_TABLE);
	cr_assert_eq(r[1].nregions, vm.mem.nr_regions);
	for (i = 0; i < vm.mem.nr_regions; i++) {
		cr_assert_eq(r[1].regions[i].guest_phys_addr, vm.mem.regions[i].gpa);
		cr_assert_eq(r[1].regions[i].memory_size, vm.mem.regions[i].size);
		cr_assert_eq(r[1].regions[i].userspace_addr,
			     (uint64_t)(uintptr_t)vm.mem.regions[i].hva);
	}
	for (q = 0; q < 2; q++) {
		const struct rec *rq = &r[2 + 5 * q];

		for (i = 0; i < 5; i++) {
			cr_assert_eq(rq[i].req, ring_reqs[i], "ring %u step %u", q, i);
			cr_assert_eq(rq[i].index, q);
		}
		cr_assert_eq(rq[0].val, QSIZE);
		cr_assert_eq(rq[1].val, q ? base1 : base0, "ring %u starts at %lld", q,
			     (long long)rq[1].val);
		cr_assert_eq(rq[2].addr.desc_user_addr, (uint64_t)(uintptr_t)hva(RING_GPA(q), 1));
		cr_assert_eq(rq[2].addr.avail_user_addr,
			     (uint64_t)(uintptr_t)hva(RING_GPA(q) + 16 * QSIZE, 1));
		cr_assert_eq(rq[2].addr.used_user_addr, (uint64_t)(uintptr_t)hva(used_gpa(q), 1));
		cr_assert_eq(rq[2].addr.log_guest_addr, used_gpa(q));
		cr_assert_geq(rq[3].val, 0, "a kick eventfd");
		cr_assert_eq(rq[3].val, vd->kick_redirect[q], "the queue's notifications go there");
		cr_assert_neq(rq[3].val, vd->kick_fd[q], "not the event loop's own");
		cr_assert_eq(rq[4].val, msix__vector_eventfd(&vd->msix, vd->vq_vector[q]),
			     "ring %u calls its MSI-X vector's irqfd", q);
		cr_assert_not_null(fake_irqfd(&vm.irq, (int)rq[4].val), "and KVM injects from it");
	}
	cr_assert_eq(r[12].req, VHOST_NET_SET_BACKEND);
	cr_assert_eq(r[12].index, 0);
	cr_assert_eq(r[12].val, FAKE_TAP_FD);
	cr_assert_eq(r[13].req, VHOST_NET_SET_BACKEND);
	cr_assert_eq(r[13].index, 1);
	cr_assert_eq(r[13].val, FAKE_TAP_FD);
}

/* the backend first, then each ring's base read back, kick and call unbound */
static void assert_teardown_sequence(unsigned int from)
{
	const struct rec *r = &fk.recs[from];
	unsigned int q;

	cr_assert_eq(fk.nrecs - from, 8, "%u ioctls", fk.nrecs - from);
	for (q = 0; q < 2; q++) {
		cr_assert_eq(r[q].req, VHOST_NET_SET_BACKEND);
		cr_assert_eq(r[q].index, q);
		cr_assert_eq(r[q].val, -1);
		cr_assert_eq(r[2 + 3 * q].req, VHOST_GET_VRING_BASE);
		cr_assert_eq(r[2 + 3 * q].index, q);
		cr_assert_eq(r[3 + 3 * q].req, VHOST_SET_VRING_KICK);
		cr_assert_eq(r[3 + 3 * q].val, -1);
		cr_assert_eq(r[4 + 3 * q].req, VHOST_SET_VRING_CALL);
		cr_assert_eq(r[4 + 3 * q].val, -1);
		cr_assert_eq(vd->kick_redirect[q], -1, "queue %u's kicks are the event loop's again", q);
	}
}

Test(vhost_net, offer_masks_what_vhost_lacks, .init = fake_init, .fini = fake_fini)
{
	struct virtio_net_config cfg = { .name = "mask" };

	fk.features = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_INDIRECT_DESC);
	cr_assert_eq(kvm__vm_init_fake(&vm, 16 * MiB), 0);
	cr_assert_eq(vhost_net__wrap("mask", FAKE_PATH, &tapf.be, FAKE_TAP_FD, &vbe), 0);
	cr_assert_eq(virtio_net__create_with_backend(&vm, &cfg, vbe, &net), 0);
	vd = virtio_net__vdev(net);
	cr_assert_not(vd->host_features & BIT(VIRTIO_NET_F_MRG_RXBUF), "vhost lacks it: not offered");
	cr_assert_not(vd->host_features & BIT(VIRTIO_RING_F_EVENT_IDX));
	cr_assert(vd->host_features & BIT(VIRTIO_F_VERSION_1));
	cr_assert(vd->host_features & BIT(VIRTIO_RING_F_INDIRECT_DESC));
	cr_assert(vd->host_features & BIT(VIRTIO_NET_F_GUEST_TSO4), "the tap's offloads stay");
	cr_assert(vd->host_features & BIT(VIRTIO_NET_F_CTRL_VQ), "the control queue stays");
	virtio_net__destroy(net);
	kvm__vm_destroy(&vm);
}

Test(vhost_net, driver_ok_hands_the_rings_over, .init = dev_setup, .fini = dev_teardown)
{
	activate(true);
	assert_setup_sequence(0, 0);
	cr_assert(virtio_net__rings_offloaded(net));
	cr_assert_eq(tapf.starts, 0, "the tap's userspace side stays off");
	cr_assert_eq(tapf.hdr_len, 12, "TUNSETVNETHDRSZ for VERSION_1/MRG_RXBUF");
	cr_assert_eq(tapf.offloads, vd->guest_features, "TUNSETOFFLOAD from the driver's features");
	cr_assert(vd->ops->busy(vd), "a reset must wait while vhost walks the rings");
}

Test(vhost_net, masking_a_vector_keeps_vhost_wired, .init = dev_setup, .fini = dev_teardown)
{
	int call;

	activate(true);
	call = (int)last(VHOST_SET_VRING_CALL, 0)->val;
	forget();
	msix_entry(0, 12, PCI_MSIX_ENTRY_CTRL_MASKBIT);
	cr_assert_null(fake_irqfd(&vm.irq, call), "masked: KVM no longer injects from it");
	msix_entry(0, 8, 0x55); /* the driver moves the vector meanwhile */
	msix_entry(0, 12, 0);
	cr_assert_not_null(fake_irqfd(&vm.irq, call), "unmasked: the same eventfd injects again");
	cr_assert_eq(fake_msi_route(&vm.irq, fake_irqfd(&vm.irq, call)->gsi)->u.msi.data, 0x55,
		     "on the new route");
	cr_assert_eq(fk.nrecs, 0, "vhost keeps its call eventfd: no ioctl");
}

Test(vhost_net, reset_tears_down_and_driver_ok_sets_up_again, .init = dev_setup,
     .fini = dev_teardown)
{
	activate(true);
	forget();
	fk.vring_base[0] = 9;
	fk.vring_base[1] = 4;
	vd->ops->reset(vd);
	cr_assert(vd->ops->busy(vd), "until the event loop stopped vhost");
	vd->ops->queue_notify(vd, VIRTIO_NET_CTRLQ);
	assert_teardown_sequence(0);
	cr_assert_not(virtio_net__rings_offloaded(net));
	cr_assert_not(vd->ops->busy(vd), "the reset completes");
	cr_assert_eq(tapf.starts, 0);

	/* the driver comes back (a reload): fresh rings from index 0 */
	forget();
	activate(true);
	assert_setup_sequence(0, 0);
	cr_assert(virtio_net__rings_offloaded(net));
}

Test(vhost_net, pause_reads_the_bases_back_for_the_state, .init = dev_setup,
     .fini = dev_teardown)
{
	struct vmm_device *d = virtio_net__device(net);

	activate(true);
	forget();
	fk.vring_base[0] = 7;
	fk.vring_base[1] = 3;
	put16(used_gpa(0) + 2, 7); /* what vhost wrote as the used index */
	put16(used_gpa(1) + 2, 2); /* one transmit still unreturned */
	cr_assert_eq(d->ops->pause(d), 0);
	assert_teardown_sequence(0);
	cr_assert_eq(vd->vq[0].last_avail_idx, 7);
	cr_assert_eq(vd->vq[0].used_idx, 7);
	cr_assert_eq(vd->vq[1].last_avail_idx, 3);
	cr_assert_eq(vd->vq[1].used_idx, 2);
	cr_assert_eq(tapf.starts, 0, "paused: nobody walks the rings");
	forget();
	d->ops->resume(d);
	assert_setup_sequence(7, 3);
}

Test(vhost_net, dirty_tracking_moves_the_rings_to_userspace_and_back, .init = dev_setup,
     .fini = dev_teardown)
{
	struct vmm_device *d = virtio_net__device(net);
	uint8_t *desc;
	uint64_t a = BUF_GPA;
	uint32_t len = 80;
	uint16_t flags = 0, next = 0, head = 0;

	activate(true);
	forget();
	fk.vring_base[0] = 0;
	fk.vring_base[1] = 0;
	cr_assert_eq(d->ops->track_dirty(d, true), 0);
	assert_teardown_sequence(0);
	cr_assert_not(virtio_net__rings_offloaded(net));
	cr_assert_eq(tapf.starts, 1, "the device walks the rings itself, through the tap");

	/* a transmit the device handles itself meanwhile */
	desc = hva(RING_GPA(1), 16);
	memcpy(desc, &a, 8);
	memcpy(desc + 8, &len, 4);
	memcpy(desc + 12, &flags, 2);
	memcpy(desc + 14, &next, 2);
	put16(RING_GPA(1) + 16 * QSIZE + 4, head);
	put16(RING_GPA(1) + 16 * QSIZE + 2, 1);
	vd->ops->queue_notify(vd, VIRTIO_NET_TXQ);
	cr_assert_eq(tapf.ntx, 1);
	cr_assert_eq(vd->vq[1].last_avail_idx, 1);

	/* tracking ends while that transmit is in flight: the rings wait for it */
	forget();
	cr_assert_eq(d->ops->track_dirty(d, false), 0);
	cr_assert_eq(fk.nrecs, 0, "not while a transmit of the device's own is in flight");
	tapf.cbs->tx_done(tapf.opaque, tapf.token, 80);
	cr_assert_eq(vd->vq[1].used_idx, 1, "the transmit went back to the driver");
	cr_assert_eq(tapf.stops, 1, "%d stops", tapf.stops);
	assert_setup_sequence(0, 1);
	cr_assert(virtio_net__rings_offloaded(net));
}

Test(vhost_net, without_msix_the_device_walks_the_rings, .init = dev_setup,
     .fini = dev_teardown)
{
	activate(false);
	cr_assert_eq(fk.nrecs, 0, "no vhost set-up without MSI-X");
	cr_assert_eq(tapf.starts, 1);
	/* the driver turns MSI-X on: the event loop rechecks and hands the rings over */
	msix_ctrl(PCI_MSIX_FLAGS_ENABLE);
	for (uint16_t v = 0; v < 2; v++)
		msix_entry(v, 12, 0);
	cr_assert_geq(evloop__run_once(&vm.loop, false), 0);
	assert_setup_sequence(0, 0);
	cr_assert_eq(tapf.stops, 1);
}

Test(vhost_net, destroy_while_running_tears_down, .init = dev_setup, .fini = fake_fini)
{
	activate(true);
	forget();
	virtio_net__destroy(net);
	cr_assert_eq(count(VHOST_NET_SET_BACKEND), 2);
	cr_assert_eq(last(VHOST_NET_SET_BACKEND, 0)->val, -1);
	cr_assert_eq(last(VHOST_NET_SET_BACKEND, 1)->val, -1);
	cr_assert_eq(count(VHOST_GET_VRING_BASE), 2);
	cr_assert_eq(fk.opens, fk.closes);
	cr_assert_eq(tapf.destroys, 1);
	kvm__vm_destroy(&vm);
}

/* after a failed hand-over nothing the kernel holds points at the guest */
static void assert_nothing_bound(int k)
{
	unsigned int q;

	for (q = 0; q < 2; q++) {
		const struct rec *kick = last(VHOST_SET_VRING_KICK, q);
		const struct rec *be = last(VHOST_NET_SET_BACKEND, q);

		cr_assert(!kick || kick->val == -1, "ioctl %d failed: ring %u's kick still bound", k, q);
		cr_assert(!be || be->val == -1, "ioctl %d failed: ring %u still has the tap", k, q);
		cr_assert_eq(vd->kick_redirect[q], -1, "ioctl %d failed: kicks still redirected", k);
	}
}

static const unsigned long setup_reqs[14] = {
	VHOST_SET_FEATURES, VHOST_SET_MEM_TABLE,
	VHOST_SET_VRING_NUM, VHOST_SET_VRING_BASE, VHOST_SET_VRING_ADDR, VHOST_SET_VRING_KICK,
	VHOST_SET_VRING_CALL,
	VHOST_SET_VRING_NUM, VHOST_SET_VRING_BASE, VHOST_SET_VRING_ADDR, VHOST_SET_VRING_KICK,
	VHOST_SET_VRING_CALL,
	VHOST_NET_SET_BACKEND, VHOST_NET_SET_BACKEND,
};

Test(vhost_net, each_failing_setup_ioctl_unwinds, .init = fake_init, .fini = fake_fini)
{
	int k;

	for (k = 0; k < 14; k++) {
		dev_setup();
		fk.fail_at = fk.nr_ioctls + k;
		activate(true);
		cr_assert_eq(fk.recs[k].req, setup_reqs[k], "ioctl %d is the one that failed", k);
		assert_nothing_bound(k);
		cr_assert_not(virtio_net__rings_offloaded(net), "ioctl %d failed", k);
		cr_assert_eq(tapf.starts, 1, "ioctl %d failed: the device walks the rings itself", k);
		cr_assert_not(vd->broken, "ioctl %d failed: the guest is not bothered", k);
		/* each ring the kernel had completely is stopped again (base read back) */
		cr_assert_eq(count(VHOST_GET_VRING_BASE), k >= 12 ? 2 : k >= 7 ? 1 : 0,
			     "ioctl %d failed: %d rings stopped", k, count(VHOST_GET_VRING_BASE));
		/* the next activation tries again, and works */
		fk.fail_at = -1;
		vd->ops->reset(vd);
		forget();
		activate(true);
		assert_setup_sequence(0, 0);
		dev_teardown();
	}
}

Test(vhost_net, failing_teardown_breaks_the_device_not_the_vmm, .init = dev_setup,
     .fini = dev_teardown)
{
	struct vmm_device *d = virtio_net__device(net);

	activate(true);
	forget();
	fk.fail_req = VHOST_GET_VRING_BASE;
	cr_assert_eq(d->ops->pause(d), 0);
	cr_assert_eq(count(VHOST_NET_SET_BACKEND), 2, "the backend is removed anyway");
	cr_assert_eq(count(VHOST_SET_VRING_KICK), 2, "and each kick unbound");
	cr_assert(vd->broken, "the indices are unknown: NEEDS_RESET");
	cr_assert_not(virtio_net__rings_offloaded(net));
	fk.fail_req = 0;
	d->ops->resume(d);
}

Test(vhost_net, a_new_vector_gets_vhost_a_new_call_eventfd, .init = dev_setup,
     .fini = dev_teardown)
{
	activate(true);
	forget();
	fk.vring_base[0] = 2;
	fk.vring_base[1] = 5;
	put16(used_gpa(0) + 2, 2);
	put16(used_gpa(1) + 2, 5);
	/* the driver moves the live rx queue to vector 2, as the transport reports it */
	cr_assert_not_null(vd->ops->queue_vector);
	vd->vq_vector[VIRTIO_NET_RXQ] = 2;
	vd->ops->queue_vector(vd, VIRTIO_NET_RXQ);
	cr_assert_eq(fk.nrecs, 0, "nothing on the vCPU thread");
	cr_assert_geq(evloop__run_once(&vm.loop, false), 0);
	cr_assert_eq(count(VHOST_GET_VRING_BASE), 2, "the rings came back");
	cr_assert_eq(count(VHOST_NET_SET_BACKEND), 4, "and went to vhost again");
	cr_assert_eq(last(VHOST_SET_VRING_CALL, 0)->val, msix__vector_eventfd(&vd->msix, 2),
		     "ring 0 now calls vector 2's eventfd");
	cr_assert_eq(last(VHOST_SET_VRING_BASE, 0)->val, 2, "from where vhost stopped");
	cr_assert_eq(last(VHOST_SET_VRING_BASE, 1)->val, 5);
	cr_assert(virtio_net__rings_offloaded(net));
}

Test(vhost_net, a_reset_transmit_in_flight_delays_the_hand_over, .init = dev_setup,
     .fini = dev_teardown)
{
	struct vmm_device *d = virtio_net__device(net);
	uint8_t *desc;
	uint64_t a = BUF_GPA;
	uint32_t len = 80;
	uint16_t flags = 0, next = 0, head = 0;

	/* the device walks the rings (dirty tracking) and a transmit is in flight */
	activate(true);
	cr_assert_eq(d->ops->track_dirty(d, true), 0);
	desc = hva(RING_GPA(1), 16);
	memcpy(desc, &a, 8);
	memcpy(desc + 8, &len, 4);
	memcpy(desc + 12, &flags, 2);
	memcpy(desc + 14, &next, 2);
	put16(RING_GPA(1) + 16 * QSIZE + 4, head);
	put16(RING_GPA(1) + 16 * QSIZE + 2, 1);
	vd->ops->queue_notify(vd, VIRTIO_NET_TXQ);
	cr_assert_eq(tapf.ntx, 1);
	cr_assert_eq(d->ops->track_dirty(d, false), 0);
	/* the driver resets and comes back before that transmit completed */
	vd->ops->reset(vd);
	forget();
	activate(true);
	cr_assert_eq(fk.nrecs, 0, "vhost waits: the old transmit still reads guest memory");
	cr_assert_not(virtio_net__rings_offloaded(net));
	tapf.cbs->tx_done(tapf.opaque, tapf.token, 80);
	assert_setup_sequence(0, 0);
	cr_assert(virtio_net__rings_offloaded(net));
}
