// SPDX-License-Identifier: MIT
/*
 * virtio-blk on a fake VM: a temp file as the disk, a hand-made driver that
 * programs the transport through MMIO and builds requests in guest RAM, and the
 * event loop run by the test to complete the io_uring requests.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "virtio/blk.h"
#include "vmm/kvm.h"
#include "vmm/sys.h"

#define RAM (16 * MiB)
#define DISK_SECTORS 2048 /* 1 MiB */
#define QSIZE 64
#define DESC 0x10000
#define AVAIL 0x11000
#define USED 0x12000
#define HDR 0x20000   /* request headers, 16 bytes per slot */
#define STATUS 0x21000 /* status bytes, one per slot */
#define DATA 0x100000 /* data, 64 KiB per slot */

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

static struct vm vm;
static struct virtio_blk *blk;
static char path[64];
static int disk_fd = -1;
static uint64_t bar;
static uint16_t next_desc, avail_idx;

static void *g(uint64_t gpa) { return mem__gpa_to_hva(&vm.mem, gpa, 1); }
static uint16_t *avail(void) { return g(AVAIL); }
static uint16_t used_idx(void) { return __atomic_load_n((uint16_t *)g(USED) + 1, __ATOMIC_ACQUIRE); }
static uint32_t used_len(uint16_t i) { return ((uint32_t *)g(USED + 4 + 8 * (i % QSIZE)))[1]; }
static uint32_t used_id(uint16_t i) { return ((uint32_t *)g(USED + 4 + 8 * (i % QSIZE)))[0]; }

static uint64_t mm_rd(uint64_t off, uint32_t len)
{
	uint8_t d[8] = { 0 };
	uint64_t v = 0;
	uint32_t i;

	cr_assert_eq(bus__dispatch(&vm.mmio, bar + off, d, len, false), 0);
	for (i = 0; i < len; i++)
		v |= (uint64_t)d[i] << (8 * i);
	return v;
}

static void mm_wr(uint64_t off, uint32_t len, uint64_t v)
{
	uint8_t d[8];
	uint32_t i;

	for (i = 0; i < len; i++)
		d[i] = (uint8_t)(v >> (8 * i));
	cr_assert_eq(bus__dispatch(&vm.mmio, bar + off, d, len, true), 0);
}

static uint64_t device_features(void)
{
	uint64_t f;

	mm_wr(VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	f = mm_rd(VIRTIO_PCI_COMMON_DF, 4);
	mm_wr(VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
	return f | mm_rd(VIRTIO_PCI_COMMON_DF, 4) << 32;
}

/* the driver's side of initialisation, accepting every offered feature */
static void driver_init(void)
{
	uint64_t f = device_features();

	memset(g(DESC), 0, 0x3000);
	next_desc = avail_idx = 0;
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	mm_wr(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	mm_wr(VIRTIO_PCI_COMMON_GF, 4, (uint32_t)f);
	mm_wr(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	mm_wr(VIRTIO_PCI_COMMON_GF, 4, (uint32_t)(f >> 32));
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 1, 0xb);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1), 0xb);
	mm_wr(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), VIRTIO_BLK_QUEUE_SIZE);
	mm_wr(VIRTIO_PCI_COMMON_Q_SIZE, 2, QSIZE);
	mm_wr(VIRTIO_PCI_COMMON_Q_DESCLO, 8, DESC);
	mm_wr(VIRTIO_PCI_COMMON_Q_AVAILLO, 8, AVAIL);
	mm_wr(VIRTIO_PCI_COMMON_Q_USEDLO, 8, USED);
	mm_wr(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 1, 0xf);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1), 0xf);
}

static void open_disk(bool readonly)
{
	uint8_t sec[512];
	unsigned int i;

	snprintf(path, sizeof(path), "/tmp/minivmm-blk-XXXXXX");
	disk_fd = mkstemp(path);
	cr_assert_geq(disk_fd, 0);
	for (i = 0; i < DISK_SECTORS; i++) {
		memset(sec, (int)(i & 0xff), sizeof(sec));
		cr_assert_eq(pwrite(disk_fd, sec, sizeof(sec), (off_t)i * 512), 512);
	}
	cr_assert_eq(virtio_blk__create(&vm, path, readonly, "vblk0", &blk), 0);
	bar = blk->vd.pci.bars[VIRTIO_PCI_BAR].addr;
	pci__cfg_access(&vm.pci, 0, (uint8_t)blk->vd.pci.devfn, PCI_COMMAND,
			(uint8_t[]){ PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 0 }, 2, true);
	cr_assert(blk->vd.pci.bars[VIRTIO_PCI_BAR].active);
}

static void setup(void)
{
	cr_assert_eq(kvm__vm_init_fake(&vm, RAM), 0);
	open_disk(false);
	driver_init();
}

static void setup_ro(void)
{
	cr_assert_eq(kvm__vm_init_fake(&vm, RAM), 0);
	open_disk(true);
	driver_init();
}

static void teardown(void)
{
	virtio_blk__destroy(blk);
	kvm__vm_destroy(&vm);
	close(disk_fd);
	unlink(path);
}

static uint16_t add_desc(uint64_t addr, uint32_t len, uint16_t flags)
{
	struct desc *d = (struct desc *)g(DESC) + next_desc;
	uint16_t i = next_desc;

	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = (uint16_t)((i + 1) % QSIZE);
	next_desc = (uint16_t)((next_desc + 1) % QSIZE);
	return i;
}

static void publish(uint16_t head)
{
	avail()[2 + avail_idx % QSIZE] = head;
	avail_idx++;
	__atomic_store_n(&avail()[1], avail_idx, __ATOMIC_RELEASE);
}

static void kick(void)
{
	mm_wr(VIRTIO_PCI_NOTIFY_OFF, 2, 0);
}

/* a request with one data buffer; slot picks the header/status/data area */
static uint16_t request(unsigned int slot, uint32_t type, uint64_t sector, uint32_t data_len,
			bool data_writable)
{
	struct hdr *h = g(HDR + 16 * slot);
	uint16_t head;

	h->type = type;
	h->reserved = 0;
	h->sector = sector;
	*(uint8_t *)g(STATUS + slot) = 0xee;
	head = add_desc(HDR + 16 * slot, 16, 1);
	if (data_len)
		add_desc(DATA + 0x10000ULL * slot, data_len, (uint16_t)(1 | (data_writable ? 2 : 0)));
	add_desc(STATUS + slot, 1, 2);
	publish(head);
	return head;
}

static uint8_t status_of(unsigned int slot) { return *(uint8_t *)g(STATUS + slot); }

/* runs the event loop until `n` requests have been used in total */
static void wait_used(uint16_t n)
{
	int i;

	for (i = 0; i < 1000 && used_idx() != n; i++)
		cr_assert_geq(evloop__run_once(&vm.loop, true), 0);
	cr_assert_eq(used_idx(), n, "used idx %u, expected %u", used_idx(), n);
}

TestSuite(virtio_blk, .init = setup, .fini = teardown, .timeout = 30);

Test(virtio_blk, config_and_features)
{
	uint64_t f;

	/* driver_init already ran: the features were accepted */
	f = device_features();
	cr_assert(f & 1ULL << VIRTIO_BLK_F_SEG_MAX);
	cr_assert(f & 1ULL << VIRTIO_BLK_F_BLK_SIZE);
	cr_assert(f & 1ULL << VIRTIO_BLK_F_FLUSH);
	cr_assert_not(f & 1ULL << VIRTIO_BLK_F_RO);
	cr_assert(f & 1ULL << VIRTIO_F_VERSION_1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_DEVCFG_OFF + 0, 8), DISK_SECTORS);
	cr_assert_eq(mm_rd(VIRTIO_PCI_DEVCFG_OFF + 0, 4), DISK_SECTORS);
	cr_assert_eq(mm_rd(VIRTIO_PCI_DEVCFG_OFF + 12, 4), VIRTIO_BLK_QUEUE_SIZE - 2);
	cr_assert_eq(mm_rd(VIRTIO_PCI_DEVCFG_OFF + 20, 4), 512);
	cr_assert_eq(blk->vd.pci.cfg[PCI_DEVICE_ID], 0x42);
	cr_assert_eq(blk->capacity, DISK_SECTORS);
}

Test(virtio_blk, read)
{
	uint8_t *d = g(DATA);

	memset(d, 0xaa, 1024);
	request(0, VIRTIO_BLK_T_IN, 7, 1024, true);
	kick();
	wait_used(1);
	cr_assert_eq(status_of(0), VIRTIO_BLK_S_OK);
	cr_assert_eq(used_len(0), 1025);
	cr_assert_eq(used_id(0), 0);
	cr_assert_eq(d[0], 7);
	cr_assert_eq(d[511], 7);
	cr_assert_eq(d[512], 8);
	cr_assert_eq(d[1023], 8);
	/* INTx (MSI-X off): ISR bit 0 */
	cr_assert_eq(mm_rd(VIRTIO_PCI_ISR_OFF, 1), 1);
}

Test(virtio_blk, write_then_read_back)
{
	uint8_t buf[1536];
	uint8_t *d = g(DATA);
	unsigned int i;

	for (i = 0; i < 1536; i++)
		d[i] = (uint8_t)(i * 7);
	request(0, VIRTIO_BLK_T_OUT, 100, 1536, false);
	kick();
	wait_used(1);
	cr_assert_eq(status_of(0), VIRTIO_BLK_S_OK);
	cr_assert_eq(used_len(0), 1);
	cr_assert_eq(pread(disk_fd, buf, sizeof(buf), 100 * 512), (ssize_t)sizeof(buf));
	cr_assert_eq(memcmp(buf, d, sizeof(buf)), 0);

	memset(g(DATA + 0x10000), 0, 1536);
	request(1, VIRTIO_BLK_T_IN, 100, 1536, true);
	kick();
	wait_used(2);
	cr_assert_eq(status_of(1), VIRTIO_BLK_S_OK);
	cr_assert_eq(memcmp(g(DATA + 0x10000), d, 1536), 0);
}

Test(virtio_blk, scattered_buffers)
{
	struct hdr *h = g(HDR);
	uint16_t head;

	/* header split over two descriptors, data over three, status alone */
	h->type = VIRTIO_BLK_T_IN;
	h->reserved = 0;
	h->sector = 9;
	head = add_desc(HDR, 10, 1);
	add_desc(HDR + 10, 6, 1);
	add_desc(DATA, 100, 3);
	add_desc(DATA + 0x1000, 412, 3);
	add_desc(DATA + 0x2000, 512, 3);
	add_desc(STATUS, 1, 2);
	publish(head);
	kick();
	wait_used(1);
	cr_assert_eq(status_of(0), VIRTIO_BLK_S_OK);
	cr_assert_eq(*(uint8_t *)g(DATA + 99), 9);
	cr_assert_eq(*(uint8_t *)g(DATA + 0x1000 + 411), 9);
	cr_assert_eq(*(uint8_t *)g(DATA + 0x2000), 10);
	cr_assert_eq(used_len(0), 1025);
}

Test(virtio_blk, status_shares_the_data_buffer)
{
	uint16_t head;
	struct hdr *h = g(HDR);

	/* one writable buffer holding 512 data bytes and the status byte */
	h->type = VIRTIO_BLK_T_IN;
	h->sector = 1;
	head = add_desc(HDR, 16, 1);
	add_desc(DATA, 513, 2);
	*(uint8_t *)g(DATA + 512) = 0xee;
	publish(head);
	kick();
	wait_used(1);
	cr_assert_eq(*(uint8_t *)g(DATA + 512), VIRTIO_BLK_S_OK);
	cr_assert_eq(*(uint8_t *)g(DATA + 511), 1);
}

Test(virtio_blk, flush)
{
	request(0, VIRTIO_BLK_T_FLUSH, 0, 0, false);
	kick();
	wait_used(1);
	cr_assert_eq(status_of(0), VIRTIO_BLK_S_OK);
	cr_assert_eq(used_len(0), 1);
}

Test(virtio_blk, get_id)
{
	char id[20];

	memset(g(DATA), 0x55, 20);
	request(0, VIRTIO_BLK_T_GET_ID, 0, 20, true);
	kick();
	wait_used(1);
	cr_assert_eq(status_of(0), VIRTIO_BLK_S_OK);
	memcpy(id, g(DATA), 20);
	cr_assert_str_eq(id, "minivmm-vblk0");
	cr_assert_eq(used_len(0), 21);
}

Test(virtio_blk, out_of_range_and_bad_lengths)
{
	request(0, VIRTIO_BLK_T_IN, DISK_SECTORS, 512, true);
	request(1, VIRTIO_BLK_T_IN, DISK_SECTORS - 1, 1024, true);
	request(2, VIRTIO_BLK_T_OUT, UINT64_MAX, 512, false);
	request(3, VIRTIO_BLK_T_IN, 0, 100, true); /* not a multiple of 512 */
	request(4, VIRTIO_BLK_T_IN, DISK_SECTORS - 1, 512, true); /* the last sector: fine */
	kick();
	wait_used(5);
	cr_assert_eq(status_of(0), VIRTIO_BLK_S_IOERR);
	cr_assert_eq(status_of(1), VIRTIO_BLK_S_IOERR);
	cr_assert_eq(status_of(2), VIRTIO_BLK_S_IOERR);
	cr_assert_eq(status_of(3), VIRTIO_BLK_S_IOERR);
	cr_assert_eq(status_of(4), VIRTIO_BLK_S_OK);
	cr_assert_eq(*(uint8_t *)g(DATA + 0x40000), (DISK_SECTORS - 1) & 0xff);
	cr_assert_not(blk->vd.broken);
}

Test(virtio_blk, unknown_type)
{
	request(0, 42, 0, 512, true);
	request(1, VIRTIO_BLK_T_DISCARD, 0, 16, false);
	kick();
	wait_used(2);
	cr_assert_eq(status_of(0), VIRTIO_BLK_S_UNSUPP);
	cr_assert_eq(status_of(1), VIRTIO_BLK_S_UNSUPP);
}

Test(virtio_blk, short_header_breaks_the_device)
{
	uint16_t head;

	head = add_desc(HDR, 8, 1);
	add_desc(STATUS, 1, 2);
	publish(head);
	kick();
	cr_assert(blk->vd.broken);
	cr_assert(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
	cr_assert_eq(used_idx(), 0);
	/* the config interrupt went out through INTx */
	cr_assert_eq(mm_rd(VIRTIO_PCI_ISR_OFF, 1), 2);
	/* further requests are not processed */
	request(1, VIRTIO_BLK_T_FLUSH, 0, 0, false);
	kick();
	cr_assert_eq(used_idx(), 0);
	/* a reset brings it back */
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 1, 0);
	driver_init();
	request(0, VIRTIO_BLK_T_FLUSH, 0, 0, false);
	kick();
	wait_used(1);
	cr_assert_eq(status_of(0), VIRTIO_BLK_S_OK);
}

Test(virtio_blk, missing_status_breaks_the_device)
{
	uint16_t head;

	head = add_desc(HDR, 16, 1);
	add_desc(DATA, 512, 0); /* readable only: nowhere to put the status */
	publish(head);
	kick();
	cr_assert(blk->vd.broken);
	cr_assert_eq(used_idx(), 0);
}

Test(virtio_blk, ring_violation_breaks_the_device)
{
	struct desc *d = g(DESC);

	d[0] = (struct desc){ HDR, 16, 1, 1 };
	d[1] = (struct desc){ STATUS, 1, 3, 0 }; /* loops back to 0 */
	publish(0);
	kick();
	cr_assert(blk->vd.broken);
	cr_assert_eq(used_idx(), 0);
}

Test(virtio_blk, reset_drops_inflight_completions)
{
	unsigned int i;

	uint8_t before;

	request(0, VIRTIO_BLK_T_IN, 5, 4096, true);
	kick();
	cr_assert_eq(blk->inflight, 1);
	before = (uint8_t)mm_rd(VIRTIO_PCI_COMMON_STATUS, 1);
	cr_assert(before & VIRTIO_CONFIG_S_DRIVER_OK);
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 1, 0);
	/* the read can still write guest memory: the reset is not complete */
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1), before);
	for (i = 0; i < 100 && blk->inflight; i++)
		evloop__run_once(&vm.loop, true);
	cr_assert_eq(blk->inflight, 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1), 0, "reset completes once the read landed");
	cr_assert_eq(used_idx(), 0);
	cr_assert_eq(status_of(0), 0xee);
	/* the device works again after re-initialisation */
	memset(g(USED), 0, 0x1000);
	driver_init();
	request(0, VIRTIO_BLK_T_IN, 5, 512, true);
	kick();
	wait_used(1);
	cr_assert_eq(status_of(0), VIRTIO_BLK_S_OK);
}

Test(virtio_blk, reinit_before_reset_completes_is_survived)
{
	unsigned int i;

	request(0, VIRTIO_BLK_T_IN, 5, 4096, true);
	kick();
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 1, 0);
	/* a driver that does not wait for 0: logged, and it gets the device */
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1), VIRTIO_CONFIG_S_ACKNOWLEDGE);
	for (i = 0; i < 100 && blk->inflight; i++)
		evloop__run_once(&vm.loop, true);
	cr_assert_eq(blk->inflight, 0);
	cr_assert_eq(used_idx(), 0, "the old request's completion is dropped");
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1), VIRTIO_CONFIG_S_ACKNOWLEDGE);
}

Test(virtio_blk, many_requests_in_flight)
{
	unsigned int i;
	uint8_t buf[512];

	/* 20 writes of 512 bytes to sectors 200.., each with its own pattern */
	for (i = 0; i < 20; i++) {
		memset(g(DATA + 0x10000ULL * i), (int)(0x80 + i), 512);
		request(i, VIRTIO_BLK_T_OUT, 200 + i, 512, false);
	}
	kick();
	wait_used(20);
	for (i = 0; i < 20; i++) {
		cr_assert_eq(status_of(i), VIRTIO_BLK_S_OK);
		cr_assert_eq(pread(disk_fd, buf, 512, (off_t)(200 + i) * 512), 512);
		cr_assert_eq(buf[0], 0x80 + i);
		cr_assert_eq(buf[511], 0x80 + i);
	}
	cr_assert_eq(blk->writes, 20);
}

Test(virtio_blk, kick_through_eventfd)
{
	request(0, VIRTIO_BLK_T_FLUSH, 0, 0, false);
	cr_assert_eq(sys__eventfd_signal(blk->vd.kick_fd[0]), 0);
	wait_used(1);
	cr_assert_eq(status_of(0), VIRTIO_BLK_S_OK);
}

/*
 * After a migration (vmm_device_ops.moved): a request the driver published
 * and kicked on the source, whose kick the source took while its devices
 * were paused for the save, is served here; and the queue's interrupt is
 * raised again, spurious or not.
 */
Test(virtio_blk, moved_serves_a_request_whose_kick_stayed_on_the_source)
{
	int i;

	request(0, VIRTIO_BLK_T_FLUSH, 0, 0, false);
	for (i = 0; i < 20; i++)
		cr_assert_geq(evloop__run_once(&vm.loop, false), 0);
	cr_assert_eq(used_idx(), 0, "not kicked here: not served");
	cr_assert_not_null(blk->dev.ops->moved);
	blk->dev.ops->moved(&blk->dev);
	wait_used(1);
	cr_assert_eq(status_of(0), VIRTIO_BLK_S_OK);
	cr_assert_eq(mm_rd(VIRTIO_PCI_ISR_OFF, 1), 1, "its completion interrupts (INTx, MSI-X off)");
	cr_assert_eq(mm_rd(VIRTIO_PCI_ISR_OFF, 1), 0, "acknowledged");
	/* nothing pending: the queue interrupt is raised anyway, once */
	blk->dev.ops->moved(&blk->dev);
	for (i = 0; i < 20; i++)
		cr_assert_geq(evloop__run_once(&vm.loop, false), 0);
	cr_assert_eq(used_idx(), 1, "no request served twice");
	cr_assert_eq(mm_rd(VIRTIO_PCI_ISR_OFF, 1), 1, "the interrupt raised again");
}

Test(virtio_blk_ro, readonly_disk, .init = setup_ro, .fini = teardown, .timeout = 30)
{
	uint8_t buf[512];

	cr_assert(device_features() & 1ULL << VIRTIO_BLK_F_RO);
	memset(g(DATA), 0x11, 512);
	request(0, VIRTIO_BLK_T_OUT, 3, 512, false);
	request(1, VIRTIO_BLK_T_IN, 3, 512, true);
	kick();
	wait_used(2);
	cr_assert_eq(status_of(0), VIRTIO_BLK_S_IOERR);
	cr_assert_eq(status_of(1), VIRTIO_BLK_S_OK);
	cr_assert_eq(*(uint8_t *)g(DATA + 0x10000), 3);
	cr_assert_eq(pread(disk_fd, buf, 512, 3 * 512), 512);
	cr_assert_eq(buf[0], 3);
}

Test(virtio_blk, create_fails_cleanly)
{
	struct virtio_blk *b2 = NULL;

	cr_assert_eq(virtio_blk__create(&vm, "/nonexistent/disk.img", false, "vblk1", &b2), -ENOENT);
	cr_assert_null(b2);
	cr_assert_eq(virtio_blk__create(&vm, "/tmp", false, "vblk1", &b2), -EISDIR);
}
