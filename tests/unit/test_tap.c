// SPDX-License-Identifier: MIT
/*
 * Tap backend on a real tap: every test runs in its own process (Criterion
 * forks) inside a fresh network namespace, so taps and links it makes vanish
 * with it. Frames cross between the backend and an AF_PACKET socket bound to
 * the tap interface.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "virtio/net/tap.h"
#include "vmm/evloop.h"

#define ETH_P_TEST 0x88b5 /* IEEE local experimental */
#define HDR 12

static struct evloop loop;
static struct net_backend *be;

struct rx_rec {
	uint8_t data[2048];
	size_t len;
};

static struct rx_rec rx_frames[16];
static unsigned int rx_count, rx_recorded;
static int rx_ret;
static int tx_res[16];
static unsigned int tx_count;

static bool is_test_frame(const uint8_t *f, size_t len, unsigned int hdr)
{
	return len >= hdr + 14 && f[hdr + 12] == (ETH_P_TEST >> 8) &&
	       f[hdr + 13] == (ETH_P_TEST & 0xff);
}

static int cb_rx(void *opaque, const void *frame, size_t len)
{
	cr_assert_eq(opaque, &loop);
	if (!is_test_frame(frame, len, HDR))
		return 0; /* IPv6 autoconf and the like */
	/* a frame offered again after -ENOBUFS is recorded once */
	if (rx_recorded == 0 || rx_frames[rx_recorded - 1].len != len ||
	    memcmp(rx_frames[rx_recorded - 1].data, frame, len)) {
		cr_assert_lt(rx_recorded, 16);
		cr_assert_leq(len, sizeof(rx_frames[0].data));
		memcpy(rx_frames[rx_recorded].data, frame, len);
		rx_frames[rx_recorded++].len = len;
	}
	rx_count++;
	return rx_ret;
}

static void cb_tx_done(void *opaque, uint32_t token, int res)
{
	cr_assert_lt(token, 16);
	tx_res[token] = res;
	tx_count++;
}

static const struct net_backend_cbs cbs = {.rx = cb_rx, .tx_done = cb_tx_done};

static void setup(void)
{
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(evloop__init(&loop, 64), 0);
	rx_count = rx_recorded = tx_count = 0;
	rx_ret = 0;
	be = NULL;
}

static void teardown(void)
{
	if (be)
		be->ops->destroy(be);
	evloop__destroy(&loop);
}

/* run the loop until *counter reaches want or ms pass; returns true when reached */
static bool run_until(unsigned int *counter, unsigned int want, int ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		evloop__run_once(&loop, false);
		if (*counter >= want)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
			return false;
		usleep(500);
	}
}

static int ifindex(const char *name)
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(s, 0);
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	cr_assert_eq(ioctl(s, SIOCGIFINDEX, &ifr), 0, "SIOCGIFINDEX %s: %s", name, strerror(errno));
	close(s);
	return ifr.ifr_ifindex;
}

static int packet_socket(const char *ifname)
{
	struct sockaddr_ll sll = {0};
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));

	cr_assert_geq(s, 0, "AF_PACKET: %s", strerror(errno));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = ifindex(ifname);
	cr_assert_gt(sll.sll_ifindex, 0);
	cr_assert_eq(bind(s, (struct sockaddr *)&sll, sizeof(sll)), 0, "bind: %s", strerror(errno));
	return s;
}

/* receive the next test frame on s into buf; returns its length or -1 on timeout */
static ssize_t packet_recv(int s, uint8_t *buf, size_t len, int ms)
{
	struct pollfd p = {.fd = s, .events = POLLIN};

	while (poll(&p, 1, ms) == 1) {
		ssize_t n = recv(s, buf, len, 0);

		if (n > 0 && is_test_frame(buf, (size_t)n, 0))
			return n;
	}
	return -1;
}

/* an Ethernet frame of the test type; payload bytes start at `seed` */
static size_t make_eth(uint8_t *f, size_t payload, uint8_t seed)
{
	static const uint8_t dst[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t src[6] = {0x52, 0x54, 0x00, 0x11, 0x22, 0x33};
	size_t i;

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = ETH_P_TEST >> 8;
	f[13] = ETH_P_TEST & 0xff;
	for (i = 0; i < payload; i++)
		f[14 + i] = (uint8_t)(seed + i);
	return 14 + payload;
}

static void open_tap(const char *name)
{
	cr_assert_eq(tap__create(&loop, "tap-test", name, &be), 0);
}

static void start(void)
{
	cr_assert_eq(be->ops->start(be, &cbs, &loop), 0);
}

Test(tap, create_configures_device, .init = setup, .fini = teardown)
{
	struct ifreq ifr = {0};
	int sz = 0, s;

	open_tap("mvt%d");
	cr_assert_str_eq(tap__ifname(be), "mvt0");
	cr_assert_eq(fcntl(tap__fd(be), F_GETFL) & O_NONBLOCK, O_NONBLOCK);
	cr_assert_eq(ioctl(tap__fd(be), TUNGETVNETHDRSZ, &sz), 0);
	cr_assert_eq(sz, 12);
	cr_assert_eq(ioctl(tap__fd(be), TUNGETIFF, &ifr), 0);
	cr_assert(ifr.ifr_flags & IFF_TAP);
	cr_assert(ifr.ifr_flags & IFF_NO_PI);
	cr_assert(ifr.ifr_flags & IFF_VNET_HDR);
	cr_assert_not(ifr.ifr_flags & IFF_MULTI_QUEUE);

	s = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "mvt0");
	cr_assert_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	cr_assert(ifr.ifr_flags & IFF_UP, "link is up");
	close(s);
}

Test(tap, bad_names_rejected, .init = setup, .fini = teardown)
{
	cr_assert_eq(tap__create(&loop, "tap-test", "", &be), -EINVAL);
	cr_assert_eq(tap__create(&loop, "tap-test", "sixteen-chars-xx", &be), -EINVAL);
	be = NULL;
}

static void make_persistent(const char *name, short extra_flags)
{
	struct ifreq ifr = {0};
	int fd = open("/dev/net/tun", O_RDWR);

	cr_assert_geq(fd, 0);
	strcpy(ifr.ifr_name, name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | extra_flags;
	cr_assert_eq(ioctl(fd, TUNSETIFF, &ifr), 0, "TUNSETIFF: %s", strerror(errno));
	cr_assert_eq(ioctl(fd, TUNSETPERSIST, 1), 0);
	close(fd);
}

Test(tap, attaches_persistent_tap, .init = setup, .fini = teardown)
{
	uint8_t f[HDR + 128] = {0};
	uint8_t got[256];
	int sz = 0, s;
	size_t len;

	make_persistent("ptap0", 0); /* as `ip tuntap add mode tap ptap0` does */
	open_tap("ptap0");
	cr_assert_str_eq(tap__ifname(be), "ptap0");
	cr_assert_eq(ioctl(tap__fd(be), TUNGETVNETHDRSZ, &sz), 0);
	cr_assert_eq(sz, 12);

	s = packet_socket("ptap0");
	start();
	len = make_eth(f + HDR, 50, 9);
	struct iovec iov = {f, HDR + len};
	cr_assert_eq(be->ops->tx(be, &iov, 1, 0), 0);
	cr_assert(run_until(&tx_count, 1, 2000));
	cr_assert_eq(tx_res[0], (int)(HDR + len));
	cr_assert_eq(packet_recv(s, got, sizeof(got), 2000), (ssize_t)len);
	close(s);
}

Test(tap, multi_queue_tap_refused, .init = setup, .fini = teardown)
{
	make_persistent("mqtap0", IFF_MULTI_QUEUE);
	cr_assert_eq(tap__create(&loop, "tap-test", "mqtap0", &be), -EINVAL);
	be = NULL;
}

Test(tap, tx_reaches_interface_without_header, .init = setup, .fini = teardown)
{
	uint8_t hdr[HDR] = {0}, eth[128], got[256];
	size_t len = make_eth(eth, 80, 1);
	struct iovec iov[3] = {
	    {hdr, HDR},
	    {eth, 20},
	    {eth + 20, len - 20},
	};
	int s;

	open_tap("mvt0");
	s = packet_socket("mvt0");
	start();
	cr_assert_eq(be->ops->tx(be, iov, 3, 7), 0);
	cr_assert(run_until(&tx_count, 1, 2000), "no tx completion");
	cr_assert_eq(tx_res[7], (int)(HDR + len));
	cr_assert_eq(packet_recv(s, got, sizeof(got), 2000), (ssize_t)len);
	cr_assert_arr_eq(got, eth, len);
	close(s);
}

Test(tap, tx_bad_gso_type_fails, .init = setup, .fini = teardown)
{
	uint8_t f[HDR + 128] = {0};
	size_t len = make_eth(f + HDR, 80, 1);
	struct iovec iov = {f, HDR + len};

	open_tap("mvt0");
	start();
	f[1] = 0x42; /* no such gso_type: the tap must parse our header and refuse */
	cr_assert_eq(be->ops->tx(be, &iov, 1, 3), 0);
	cr_assert(run_until(&tx_count, 1, 2000));
	cr_assert_eq(tx_res[3], -EINVAL);
}

Test(tap, rx_from_interface_with_header, .init = setup, .fini = teardown)
{
	uint8_t eth[128];
	size_t len = make_eth(eth, 64, 5);
	int s;

	open_tap("mvt0");
	s = packet_socket("mvt0");
	start();
	cr_assert_eq(send(s, eth, len, 0), (ssize_t)len);
	cr_assert(run_until(&rx_count, 1, 2000), "no frame from the tap");
	cr_assert_eq(rx_recorded, 1);
	cr_assert_eq(rx_frames[0].len, HDR + len);
	cr_assert_eq(rx_frames[0].data[0], 0, "no checksum flags");
	cr_assert_eq(rx_frames[0].data[1], VIRTIO_NET_HDR_GSO_NONE);
	cr_assert_arr_eq(rx_frames[0].data + HDR, eth, len);
	close(s);
}

Test(tap, rx_holds_frame_until_resume, .init = setup, .fini = teardown)
{
	uint8_t a[128], b[128];
	size_t la = make_eth(a, 64, 0x10), lb = make_eth(b, 64, 0x80);
	int s;

	open_tap("mvt0");
	s = packet_socket("mvt0");
	start();
	rx_ret = -ENOBUFS;
	cr_assert_eq(send(s, a, la, 0), (ssize_t)la);
	cr_assert(run_until(&rx_count, 1, 2000));
	cr_assert_eq(send(s, b, lb, 0), (ssize_t)lb);
	cr_assert_not(run_until(&rx_count, 2, 200), "offered again while paused");

	rx_ret = 0;
	be->ops->rx_resume(be);
	cr_assert(run_until(&rx_count, 3, 2000), "held frame and next frame not delivered");
	cr_assert_eq(rx_recorded, 2);
	/* rx_frames[0]: A (refused, then accepted: recorded once), [1]: B */
	cr_assert_arr_eq(rx_frames[0].data + HDR, a, la);
	cr_assert_arr_eq(rx_frames[1].data + HDR, b, lb);
	close(s);
}

Test(tap, stop_and_restart, .init = setup, .fini = teardown)
{
	uint8_t a[128];
	size_t la = make_eth(a, 64, 0x33);
	int s;

	open_tap("mvt0");
	s = packet_socket("mvt0");
	start();
	be->ops->stop(be);
	cr_assert_eq(send(s, a, la, 0), (ssize_t)la);
	cr_assert_not(run_until(&rx_count, 1, 200), "delivered while stopped");
	start();
	cr_assert(run_until(&rx_count, 1, 2000), "queued frame not read after restart");
	close(s);
}

/* IPv4/UDP frame sent with a partial checksum through a PACKET_VNET_HDR socket */
static uint8_t rx_csum_flags(uint64_t guest_features)
{
	uint8_t pkt[sizeof(struct virtio_net_hdr) + 14 + 20 + 8 + 32] = {0};
	struct virtio_net_hdr *vh = (struct virtio_net_hdr *)pkt;
	uint8_t *eth = pkt + sizeof(*vh), *ip = eth + 14, *udp = ip + 20;
	int one = 1, s;

	open_tap("mvt0");
	cr_assert_eq(be->ops->set_offloads(be, guest_features), 0);
	s = packet_socket("mvt0");
	cr_assert_eq(setsockopt(s, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)), 0);
	/* not started: this test reads the tap fd itself */

	memset(eth, 0xff, 6);
	memcpy(eth + 6, (uint8_t[]){0x52, 0x54, 0, 1, 2, 3}, 6);
	eth[12] = 0x08; /* IPv4 */
	ip[0] = 0x45;
	ip[3] = 20 + 8 + 32; /* total length */
	ip[8] = 64;
	ip[9] = 17; /* UDP */
	memcpy(ip + 12, (uint8_t[]){10, 0, 0, 1}, 4);
	memcpy(ip + 16, (uint8_t[]){10, 0, 0, 2}, 4);
	udp[1] = 99;
	udp[3] = 98;
	udp[5] = 8 + 32;
	vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh->gso_type = VIRTIO_NET_HDR_GSO_NONE;
	vh->csum_start = 14 + 20;
	vh->csum_offset = 6;
	cr_assert_eq(send(s, pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt), "send: %s",
		     strerror(errno));

	/* not our test ethertype: look at every frame the tap gives */
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	close(s);
	for (;;) {
		uint8_t buf[TAP_RX_BUF_SIZE];
		ssize_t n = read(tap__fd(be), buf, sizeof(buf));

		if (n >= HDR + 14 + 20 && buf[HDR + 12] == 0x08 && buf[HDR + 14 + 9] == 17)
			return buf[0];
		clock_gettime(CLOCK_MONOTONIC, &t);
		cr_assert_lt(t.tv_sec - t0.tv_sec, 3, "UDP frame never arrived");
		usleep(1000);
	}
}

Test(tap, partial_checksum_passes_with_guest_csum, .init = setup, .fini = teardown)
{
	cr_assert_eq(rx_csum_flags(1ULL << VIRTIO_NET_F_GUEST_CSUM) & VIRTIO_NET_HDR_F_NEEDS_CSUM,
		     VIRTIO_NET_HDR_F_NEEDS_CSUM);
}

Test(tap, checksum_completed_without_guest_csum, .init = setup, .fini = teardown)
{
	cr_assert_eq(rx_csum_flags(0) & VIRTIO_NET_HDR_F_NEEDS_CSUM, 0);
}

static void set_mtu(const char *name, int mtu)
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(s, 0);
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	ifr.ifr_mtu = mtu;
	cr_assert_eq(ioctl(s, SIOCSIFMTU, &ifr), 0, "SIOCSIFMTU %s: %s", name, strerror(errno));
	close(s);
}

/*
 * A frame longer than the receive buffer: tun copies what fits and reports
 * the whole length; the backend must drop it (never hand the device bytes
 * past its buffer: ASan would see the read) and go on with the next frame.
 */
Test(tap, a_frame_longer_than_the_buffer_is_dropped, .init = setup, .fini = teardown)
{
	static uint8_t big[4096], small[128];
	size_t blen, slen;
	int s;

	cr_assert_eq(tap__create_sized(&loop, "tap-test", "mvt0", 12, &be), -EINVAL, "too small");
	be = NULL;
	cr_assert_eq(tap__create_sized(&loop, "tap-test", "mvt0", 2048, &be), 0);
	set_mtu("mvt0", 9000);
	s = packet_socket("mvt0");
	start();
	blen = make_eth(big, 3000, 1);
	slen = make_eth(small, 64, 9);
	cr_assert_eq(send(s, big, blen, 0), (ssize_t)blen, "send: %s", strerror(errno));
	cr_assert_eq(send(s, small, slen, 0), (ssize_t)slen);
	cr_assert(run_until(&rx_count, 1, 2000), "the frame after the oversized one never came");
	cr_assert_eq(tap__rx_oversized(be), 1, "the 3014-byte frame was not counted as dropped");
	cr_assert_eq(rx_recorded, 1, "only the small frame reached the device");
	cr_assert_eq(rx_frames[0].len, HDR + slen);
	cr_assert_arr_eq(rx_frames[0].data + HDR, small, slen);
	close(s);
}
