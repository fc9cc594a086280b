// SPDX-License-Identifier: MIT
/*
 * virtio-pci transport on a fake VM (no KVM): config space, common config
 * through the MMIO bus, feature negotiation, queues, reset, interrupts, junk.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <string.h>
#include <unistd.h>

#include "kvm_skip.h"
#include "virtio/pci.h"
#include "vmm/kvm.h"
#include "vmm/sys.h"

#define DUMMY_ID 0x1f
#define DUMMY_FEATURE 5
#define NQ 2
#define QMAX 256
#define RAM (16 * MiB)
/* ring addresses in the fake guest RAM */
#define DESC 0x10000
#define AVAIL 0x11000
#define USED 0x12000

struct dummy {
	struct virtio_dev vd;
	int activated, resets, notifies[NQ], vector_changes[NQ];
	int activate_ret;
	uint8_t cfg[8];
};

static struct vm vm;
static struct dummy dev;
static uint64_t bar;

static uint64_t dummy_features(struct virtio_dev *vd)
{
	return 1ULL << DUMMY_FEATURE | 1ULL << VIRTIO_F_ACCESS_PLATFORM; /* the latter is dropped */
}

static void dummy_cfg_read(struct virtio_dev *vd, uint32_t off, uint8_t *data, uint32_t len)
{
	memcpy(data, &dev.cfg[off], len);
}

static void dummy_cfg_write(struct virtio_dev *vd, uint32_t off, const uint8_t *data, uint32_t len)
{
	memcpy(&dev.cfg[off], data, len);
}

static int dummy_activate(struct virtio_dev *vd)
{
	dev.activated++;
	return dev.activate_ret;
}

static void dummy_reset(struct virtio_dev *vd)
{
	dev.resets++;
}

static void dummy_notify(struct virtio_dev *vd, uint16_t q)
{
	cr_assert_lt(q, NQ);
	dev.notifies[q]++;
}

static void dummy_queue_vector(struct virtio_dev *vd, uint16_t q)
{
	cr_assert_lt(q, NQ);
	dev.vector_changes[q]++;
}

static const struct virtio_dev_ops dummy_ops = {
	.queue_vector = dummy_queue_vector,
	.features = dummy_features,
	.cfg_read = dummy_cfg_read,
	.cfg_write = dummy_cfg_write,
	.activate = dummy_activate,
	.reset = dummy_reset,
	.queue_notify = dummy_notify,
};

static uint32_t cfg_rd(uint32_t off, uint32_t len)
{
	uint8_t d[4] = { 0 };
	uint32_t v = 0, i;

	pci__cfg_access(&vm.pci, 0, (uint8_t)dev.vd.pci.devfn, off, d, len, false);
	for (i = 0; i < len; i++)
		v |= (uint32_t)d[i] << (8 * i);
	return v;
}

static void cfg_wr(uint32_t off, uint32_t len, uint32_t v)
{
	uint8_t d[4];
	uint32_t i;

	for (i = 0; i < len; i++)
		d[i] = (uint8_t)(v >> (8 * i));
	pci__cfg_access(&vm.pci, 0, (uint8_t)dev.vd.pci.devfn, off, d, len, true);
}

static uint64_t mm_rd(uint64_t off, uint32_t len)
{
	uint8_t d[8];
	uint64_t v = 0;
	uint32_t i;

	memset(d, 0xff, sizeof(d));
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

static void setup(void)
{
	memset(&dev, 0, sizeof(dev));
	cr_assert_eq(kvm__vm_init_fake(&vm, RAM), 0);
	cr_assert_eq(virtio_pci__init(&dev.vd, &vm, "vdummy0", DUMMY_ID, 0xff00, NQ, QMAX,
				      sizeof(dev.cfg), &dummy_ops, &dev), 0);
	cr_assert_eq(virtio_pci__register(&dev.vd), 0);
	cr_assert_geq(dev.vd.pci.devfn, 0);
	/* as firmware would: turn memory decode on */
	cfg_wr(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	bar = dev.vd.pci.bars[VIRTIO_PCI_BAR].addr;
	cr_assert(dev.vd.pci.bars[VIRTIO_PCI_BAR].active);
	cr_assert_eq(dev.vd.bar_addr, bar);
}

static void teardown(void)
{
	virtio_pci__destroy(&dev.vd);
	kvm__vm_destroy(&vm);
}

TestSuite(virtio_pci, .init = setup, .fini = teardown);

/* the common sequence up to FEATURES_OK, accepting `features` */
static void negotiate(uint64_t features)
{
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	mm_wr(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	mm_wr(VIRTIO_PCI_COMMON_GF, 4, (uint32_t)features);
	mm_wr(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	mm_wr(VIRTIO_PCI_COMMON_GF, 4, (uint32_t)(features >> 32));
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 1,
	      VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
}

static const uint64_t good_features = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << DUMMY_FEATURE;

static void setup_queue(uint16_t q, uint16_t size)
{
	mm_wr(VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
	mm_wr(VIRTIO_PCI_COMMON_Q_SIZE, 2, size);
	mm_wr(VIRTIO_PCI_COMMON_Q_DESCLO, 4, DESC + q * 0x4000);
	mm_wr(VIRTIO_PCI_COMMON_Q_DESCHI, 4, 0);
	mm_wr(VIRTIO_PCI_COMMON_Q_AVAILLO, 4, AVAIL + q * 0x4000);
	mm_wr(VIRTIO_PCI_COMMON_Q_AVAILHI, 4, 0);
	mm_wr(VIRTIO_PCI_COMMON_Q_USEDLO, 8, USED + q * 0x4000); /* a 64-bit access works too */
	mm_wr(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
}

static void driver_ok(void)
{
	negotiate(good_features);
	setup_queue(0, 64);
	setup_queue(1, 128);
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 1,
	      VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
		      VIRTIO_CONFIG_S_DRIVER_OK);
}

Test(virtio_pci, header_ids_and_bar)
{
	cr_assert_eq(cfg_rd(PCI_VENDOR_ID, 2), 0x1af4);
	cr_assert_eq(cfg_rd(PCI_DEVICE_ID, 2), 0x1040 + DUMMY_ID);
	cr_assert_eq(cfg_rd(PCI_REVISION_ID, 1), 1);
	cr_assert_eq(cfg_rd(PCI_SUBSYSTEM_VENDOR_ID, 2), 0x1af4);
	cr_assert_eq(cfg_rd(PCI_SUBSYSTEM_ID, 2), DUMMY_ID);
	cr_assert_eq(cfg_rd(PCI_CLASS_DEVICE, 2), 0xff00);
	cr_assert_eq(cfg_rd(PCI_INTERRUPT_PIN, 1), 1);
	cr_assert(cfg_rd(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	/* 64-bit prefetchable memory BAR 4, 16 KiB */
	cr_assert_eq(cfg_rd(PCI_BASE_ADDRESS_4, 4) & 0xf,
		     PCI_BASE_ADDRESS_MEM_TYPE_64 | PCI_BASE_ADDRESS_MEM_PREFETCH);
	cr_assert_eq(dev.vd.pci.bars[VIRTIO_PCI_BAR].size, VIRTIO_PCI_BAR_SIZE);
	cr_assert_eq(cfg_rd(PCI_BASE_ADDRESS_0, 4), 0);
}

Test(virtio_pci, capability_walk)
{
	bool seen[6] = { false };
	uint32_t off, guard = 0, msix = 0;

	for (off = cfg_rd(PCI_CAPABILITY_LIST, 1); off; off = cfg_rd(off + 1, 1)) {
		cr_assert_lt(++guard, 48, "capability list loops");
		cr_assert_geq(off, 0x40);
		if (cfg_rd(off, 1) == PCI_CAP_ID_MSIX) {
			msix = off;
			continue;
		}
		cr_assert_eq(cfg_rd(off, 1), PCI_CAP_ID_VNDR);
		uint32_t type = cfg_rd(off + VIRTIO_PCI_CAP_CFG_TYPE, 1);
		uint32_t cbar = cfg_rd(off + VIRTIO_PCI_CAP_BAR, 1);
		uint32_t coff = cfg_rd(off + VIRTIO_PCI_CAP_OFFSET, 4);
		uint32_t clen = cfg_rd(off + VIRTIO_PCI_CAP_LENGTH, 4);

		cr_assert(type >= 1 && type <= 5, "cfg_type %u", type);
		cr_assert_not(seen[type], "cfg_type %u twice", type);
		seen[type] = true;
		cr_assert_geq(cfg_rd(off + VIRTIO_PCI_CAP_LEN, 1), 16);
		if (type == VIRTIO_PCI_CAP_PCI_CFG) {
			cr_assert_eq(cfg_rd(off + VIRTIO_PCI_CAP_LEN, 1), 20);
			continue;
		}
		cr_assert_eq(cbar, VIRTIO_PCI_BAR);
		cr_assert_leq(coff + clen, VIRTIO_PCI_BAR_SIZE);
		switch (type) {
		case VIRTIO_PCI_CAP_COMMON_CFG:
			cr_assert_eq(coff, 0);
			cr_assert_geq(clen, 0x38);
			break;
		case VIRTIO_PCI_CAP_NOTIFY_CFG:
			cr_assert_eq(coff, 0x3000);
			cr_assert_eq(cfg_rd(off + VIRTIO_PCI_CAP_LEN, 1), 20);
			cr_assert_eq(cfg_rd(off + 16, 4), 4); /* notify_off_multiplier */
			cr_assert_geq(clen, NQ * 4);
			break;
		case VIRTIO_PCI_CAP_ISR_CFG:
			cr_assert_eq(coff, 0x1000);
			cr_assert_geq(clen, 1);
			break;
		case VIRTIO_PCI_CAP_DEVICE_CFG:
			cr_assert_eq(coff, 0x2000);
			cr_assert_eq(clen, sizeof(dev.cfg));
			break;
		}
	}
	for (off = 1; off <= 5; off++)
		cr_assert(seen[off], "cfg_type %u missing", off);
	cr_assert_neq(msix, 0, "no MSI-X capability");
	cr_assert_eq((cfg_rd(msix + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_QSIZE) + 1, NQ + 1);
	cr_assert_eq(cfg_rd(msix + PCI_MSIX_TABLE, 4), VIRTIO_PCI_MSIX_TABLE_OFF | VIRTIO_PCI_BAR);
	cr_assert_eq(cfg_rd(msix + PCI_MSIX_PBA, 4), VIRTIO_PCI_MSIX_PBA_OFF | VIRTIO_PCI_BAR);
}

Test(virtio_pci, device_features)
{
	uint64_t f;

	mm_wr(VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	f = mm_rd(VIRTIO_PCI_COMMON_DF, 4);
	mm_wr(VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
	f |= mm_rd(VIRTIO_PCI_COMMON_DF, 4) << 32;
	cr_assert(f & 1ULL << VIRTIO_F_VERSION_1);
	cr_assert(f & 1ULL << VIRTIO_RING_F_EVENT_IDX);
	cr_assert(f & 1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	cr_assert(f & 1ULL << DUMMY_FEATURE);
	cr_assert_not(f & 1ULL << VIRTIO_F_ACCESS_PLATFORM);
	mm_wr(VIRTIO_PCI_COMMON_DFSELECT, 4, 7);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_DF, 4), 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_NUMQ, 2), NQ);
}

Test(virtio_pci, negotiation_accepts_subset)
{
	negotiate(good_features | 1ULL << VIRTIO_RING_F_EVENT_IDX);
	cr_assert(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK);
	cr_assert(virtio_pci__has_feature(&dev.vd, DUMMY_FEATURE));
	cr_assert(virtio_pci__has_feature(&dev.vd, VIRTIO_RING_F_EVENT_IDX));
	/* frozen after FEATURES_OK */
	mm_wr(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	mm_wr(VIRTIO_PCI_COMMON_GF, 4, 0);
	cr_assert(virtio_pci__has_feature(&dev.vd, DUMMY_FEATURE));
	mm_wr(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_GF, 4), 1); /* VERSION_1 */
	/* EVENT_IDX reaches the queues */
	setup_queue(0, 16);
	cr_assert(dev.vd.vq[0].event_idx);
}

Test(virtio_pci, features_ok_refused_for_unoffered_bits)
{
	negotiate(good_features | 1ULL << 40);
	cr_assert_not(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK);
	/* DRIVER_OK without FEATURES_OK does not activate */
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 1,
	      VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
	cr_assert_eq(dev.activated, 0);
	cr_assert_not(dev.vd.active);
}

Test(virtio_pci, features_ok_refused_for_access_platform)
{
	negotiate(good_features | 1ULL << VIRTIO_F_ACCESS_PLATFORM);
	cr_assert_not(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK);
}

Test(virtio_pci, features_ok_refused_without_version_1)
{
	negotiate(1ULL << DUMMY_FEATURE);
	cr_assert_not(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK);
}

Test(virtio_pci, queue_setup_activate_and_notify)
{
	mm_wr(VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), QMAX);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_NOFF, 2), 1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_MSIX, 2), MSIX_NO_VECTOR);

	driver_ok();
	cr_assert_eq(dev.activated, 1);
	cr_assert(dev.vd.active);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1), 0xf);

	mm_wr(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), 64);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_NOFF, 2), 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_DESCLO, 4), DESC);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_AVAILLO, 8), AVAIL);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_USEDLO, 4), USED);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_USEDHI, 4), 0);
	cr_assert(dev.vd.vq[0].ready);
	cr_assert_eq(dev.vd.vq[1].size, 128);
	cr_assert_eq(dev.vd.vq[1].desc_gpa, DESC + 0x4000);

	/* notify: queue index written at queue_notify_off * multiplier */
	mm_wr(VIRTIO_PCI_NOTIFY_OFF + 0 * 4, 2, 0);
	mm_wr(VIRTIO_PCI_NOTIFY_OFF + 1 * 4, 2, 1);
	mm_wr(VIRTIO_PCI_NOTIFY_OFF + 1 * 4, 2, 1);
	cr_assert_eq(dev.notifies[0], 1);
	cr_assert_eq(dev.notifies[1], 2);
	/* past the last queue: ignored */
	mm_wr(VIRTIO_PCI_NOTIFY_OFF + 5 * 4, 2, 5);
}

Test(virtio_pci, kick_eventfd_runs_on_the_event_loop)
{
	int i;

	driver_ok();
	cr_assert_eq(sys__eventfd_signal(dev.vd.kick_fd[1]), 0);
	for (i = 0; i < 10 && !dev.notifies[1]; i++)
		evloop__run_once(&vm.loop, true);
	cr_assert_eq(dev.notifies[1], 1);
	cr_assert_eq(dev.notifies[0], 0);
}

Test(virtio_pci, kicks_redirected_to_another_eventfd)
{
	int efd = sys__eventfd(0), i;

	cr_assert_geq(efd, 0);
	driver_ok();
	cr_assert_eq(virtio_pci__redirect_kick(&dev.vd, 1, efd), 0);
	cr_assert_eq(sys__eventfd_drain(efd), 1, "the new owner is told to look at the ring");
	mm_wr(VIRTIO_PCI_NOTIFY_OFF + 1 * 4, 2, 1);
	cr_assert_eq(sys__eventfd_drain(efd), 1, "a kick of queue 1 goes to the new eventfd");
	cr_assert_eq(dev.notifies[1], 0, "not to the device");
	mm_wr(VIRTIO_PCI_NOTIFY_OFF + 0 * 4, 2, 0);
	cr_assert_eq(dev.notifies[0], 1, "other queues are unchanged");
	/* given back: the transport's own eventfd is signalled once, then kicks are the device's */
	cr_assert_eq(virtio_pci__redirect_kick(&dev.vd, 1, -1), 0);
	for (i = 0; i < 10 && !dev.notifies[1]; i++)
		evloop__run_once(&vm.loop, true);
	cr_assert_eq(dev.notifies[1], 1);
	mm_wr(VIRTIO_PCI_NOTIFY_OFF + 1 * 4, 2, 1);
	cr_assert_eq(dev.notifies[1], 2);
	cr_assert_eq(sys__eventfd_drain(efd), 0);
	cr_assert_eq(virtio_pci__redirect_kick(&dev.vd, NQ, efd), -EINVAL);
	close(efd);
}

Test(virtio_pci, a_live_queue_vector_change_is_reported)
{
	mm_wr(VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	mm_wr(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
	cr_assert_eq(dev.vector_changes[1], 0, "not before DRIVER_OK");
	driver_ok();
	mm_wr(VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	mm_wr(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
	cr_assert_eq(dev.vector_changes[1], 0, "the same vector: no change");
	mm_wr(VIRTIO_PCI_COMMON_Q_MSIX, 2, 2);
	cr_assert_eq(dev.vector_changes[1], 1);
	cr_assert_eq(dev.vd.vq_vector[1], 2);
	cr_assert_eq(dev.vector_changes[0], 0);
}

Test(virtio_pci, no_notify_before_driver_ok)
{
	negotiate(good_features);
	setup_queue(0, 64);
	mm_wr(VIRTIO_PCI_NOTIFY_OFF, 2, 0);
	cr_assert_eq(dev.notifies[0], 0);
}

Test(virtio_pci, reset_restores_defaults)
{
	driver_ok();
	mm_wr(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 1, 0);
	cr_assert_eq(dev.resets, 1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1), 0);
	cr_assert_not(dev.vd.active);
	cr_assert_eq(dev.vd.guest_features, 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), QMAX);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_MSIX, 2), MSIX_NO_VECTOR);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_MSIX, 2), MSIX_NO_VECTOR);
	/* and it can be brought up again */
	driver_ok();
	cr_assert_eq(dev.activated, 2);
}

Test(virtio_pci, set_broken)
{
	driver_ok();
	virtio_pci__set_broken(&dev.vd, "test fault %d", 42);
	cr_assert(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
	cr_assert(dev.vd.broken);
	/* MSI-X is off: a config interrupt through INTx, acknowledged by reading ISR */
	cr_assert_eq(mm_rd(VIRTIO_PCI_ISR_OFF, 1), 0x2);
	cr_assert_eq(mm_rd(VIRTIO_PCI_ISR_OFF, 1), 0);
	/* no more queue processing */
	mm_wr(VIRTIO_PCI_NOTIFY_OFF, 2, 0);
	cr_assert_eq(dev.notifies[0], 0);
	/* a second fault logs nothing new and keeps the state */
	virtio_pci__set_broken(&dev.vd, "again");
	cr_assert(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* the driver's status writes keep NEEDS_RESET */
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 1, 0xf);
	cr_assert(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* reset clears it */
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 1, 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1), 0);
	driver_ok();
	mm_wr(VIRTIO_PCI_NOTIFY_OFF, 2, 0);
	cr_assert_eq(dev.notifies[0], 1);
}

Test(virtio_pci, activate_failure_breaks_the_device)
{
	dev.activate_ret = -EIO;
	driver_ok();
	cr_assert_eq(dev.activated, 1);
	cr_assert_not(dev.vd.active);
	cr_assert(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

Test(virtio_pci, junk_queue_sizes_and_rings)
{
	negotiate(good_features);
	mm_wr(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	mm_wr(VIRTIO_PCI_COMMON_Q_SIZE, 2, 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), QMAX);
	mm_wr(VIRTIO_PCI_COMMON_Q_SIZE, 2, 100);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), QMAX);
	mm_wr(VIRTIO_PCI_COMMON_Q_SIZE, 2, 1024);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), QMAX);
	mm_wr(VIRTIO_PCI_COMMON_Q_SIZE, 2, 0xffff);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), QMAX);
	mm_wr(VIRTIO_PCI_COMMON_Q_SIZE, 2, 32);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), 32);

	/* rings outside RAM: enable is refused */
	mm_wr(VIRTIO_PCI_COMMON_Q_DESCLO, 8, 0xfffffffffffff000ULL);
	mm_wr(VIRTIO_PCI_COMMON_Q_AVAILLO, 8, AVAIL);
	mm_wr(VIRTIO_PCI_COMMON_Q_USEDLO, 8, USED);
	mm_wr(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	cr_assert(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET,
		  "the driver is told its queue is unusable");
	mm_wr(VIRTIO_PCI_COMMON_Q_DESCLO, 8, RAM - 0x100); /* straddles the end of RAM */
	mm_wr(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	mm_wr(VIRTIO_PCI_COMMON_Q_DESCLO, 8, DESC);
	mm_wr(VIRTIO_PCI_COMMON_Q_USEDLO, 4, 0xC0000000u); /* the MMIO hole */
	mm_wr(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	mm_wr(VIRTIO_PCI_COMMON_Q_USEDLO, 4, USED);
	mm_wr(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);

	/* a live queue cannot be moved, resized or disabled */
	mm_wr(VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x1000);
	mm_wr(VIRTIO_PCI_COMMON_Q_SIZE, 2, 16);
	mm_wr(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_DESCLO, 4), DESC);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), 32);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);

	/* queues that do not exist read as size 0 and swallow writes */
	mm_wr(VIRTIO_PCI_COMMON_Q_SELECT, 2, 99);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
	mm_wr(VIRTIO_PCI_COMMON_Q_SIZE, 2, 16);
	mm_wr(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	mm_wr(VIRTIO_PCI_COMMON_Q_MSIX, 2, 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_SELECT, 2), 99);
}

Test(virtio_pci, junk_widths_and_offsets)
{
	mm_wr(VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
	/* wrong widths read 0 and writes are ignored */
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_DFSELECT, 1), 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_DF, 2), 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_DF, 8), 0);
	mm_wr(VIRTIO_PCI_COMMON_DFSELECT, 2, 0);
	mm_wr(VIRTIO_PCI_COMMON_DFSELECT + 1, 1, 0);
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 4, 0xffffffff);
	mm_wr(VIRTIO_PCI_COMMON_NUMQ, 2, 7);
	mm_wr(VIRTIO_PCI_COMMON_CFGGENERATION, 1, 7);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_DFSELECT, 4), 1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1), 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_NUMQ, 2), NQ);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_CFGGENERATION, 1), 0);
	/* misaligned, reserved and unused parts of the BAR */
	cr_assert_eq(mm_rd(0x3, 4), 0);
	cr_assert_eq(mm_rd(0x3e, 2), 0);
	cr_assert_eq(mm_rd(0x800, 8), 0);
	mm_wr(0x800, 8, ~0ULL);
	cr_assert_eq(mm_rd(VIRTIO_PCI_ISR_OFF + 2, 1), 0);
	mm_wr(VIRTIO_PCI_ISR_OFF, 1, 0xff);
	cr_assert_eq(mm_rd(VIRTIO_PCI_ISR_OFF, 1), 0);
	/* device config: past its end is ignored, inside goes to the device */
	mm_wr(VIRTIO_PCI_DEVCFG_OFF + 6, 4, 0x12345678);
	cr_assert_eq(mm_rd(VIRTIO_PCI_DEVCFG_OFF + 6, 4), 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_DEVCFG_OFF + 64, 4), 0);
	mm_wr(VIRTIO_PCI_DEVCFG_OFF + 4, 4, 0xcafef00d);
	cr_assert_eq(mm_rd(VIRTIO_PCI_DEVCFG_OFF + 4, 4), 0xcafef00d);
	cr_assert_eq(mm_rd(VIRTIO_PCI_DEVCFG_OFF + 6, 2), 0xcafe);
	/* MSI-X vectors out of range become NO_VECTOR */
	mm_wr(VIRTIO_PCI_COMMON_MSIX, 2, NQ + 1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_MSIX, 2), MSIX_NO_VECTOR);
	mm_wr(VIRTIO_PCI_COMMON_MSIX, 2, NQ);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_MSIX, 2), NQ);
	mm_wr(VIRTIO_PCI_COMMON_Q_MSIX, 2, 500);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_MSIX, 2), MSIX_NO_VECTOR);
}

Test(virtio_pci, random_mmio_never_crashes)
{
	unsigned int i;

	srand(99);
	for (i = 0; i < 20000; i++) {
		static const uint32_t lens[] = { 1, 2, 4, 8 };
		uint32_t len = lens[rand() % 4];
		uint64_t off = ((uint64_t)rand() % VIRTIO_PCI_BAR_SIZE) & ~(uint64_t)(len - 1);
		uint64_t v = (uint64_t)rand() << 32 | (uint64_t)rand();

		if (rand() % 4 == 0)
			off = (uint64_t)(rand() % 0x40) & ~(uint64_t)(len - 1);
		if (off + len > VIRTIO_PCI_BAR_SIZE)
			continue;
		if (rand() & 1)
			mm_wr(off, len, v);
		else
			mm_rd(off, len);
	}
	/* still answers sensibly, and a reset brings it back */
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 1, 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_STATUS, 1), 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_NUMQ, 2), NQ);
	driver_ok();
	cr_assert(dev.vd.active);
}

Test(virtio_pci, intx_queue_interrupt)
{
	uint16_t *avail = mem__gpa_to_hva(&vm.mem, AVAIL, 4);

	driver_ok();
	avail[0] = 0;
	virtio_pci__notify_queue(&dev.vd, 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_ISR_OFF, 1), 0x1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_ISR_OFF, 1), 0);
	/* the driver asked for no interrupts */
	avail[0] = 1;
	virtio_pci__notify_queue(&dev.vd, 0);
	cr_assert_eq(mm_rd(VIRTIO_PCI_ISR_OFF, 1), 0);
	/* config change */
	virtio_pci__notify_config(&dev.vd);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_CFGGENERATION, 1), 1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_ISR_OFF, 1), 0x2);
}

static uint32_t find_msix(void)
{
	uint32_t off;

	for (off = cfg_rd(PCI_CAPABILITY_LIST, 1); off; off = cfg_rd(off + 1, 1))
		if (cfg_rd(off, 1) == PCI_CAP_ID_MSIX)
			return off;
	return 0;
}

Test(virtio_pci, msix_queue_and_config_interrupts)
{
	uint32_t cap = find_msix();
	uint64_t entry = VIRTIO_PCI_MSIX_TABLE_OFF + 1 * 16;

	cr_assert_neq(cap, 0);
	/* enable MSI-X, program and unmask vectors 0 (config) and 1 (queue 0) */
	cfg_wr(cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
	mm_wr(VIRTIO_PCI_MSIX_TABLE_OFF + 0, 4, 0xfee00000);
	mm_wr(VIRTIO_PCI_MSIX_TABLE_OFF + 8, 4, 0x30);
	mm_wr(VIRTIO_PCI_MSIX_TABLE_OFF + 12, 4, 0);
	mm_wr(entry + 0, 4, 0xfee00000);
	mm_wr(entry + 8, 4, 0x31);
	mm_wr(entry + 12, 4, 0);
	negotiate(good_features);
	mm_wr(VIRTIO_PCI_COMMON_MSIX, 2, 0);
	mm_wr(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	mm_wr(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_Q_MSIX, 2), 1);
	setup_queue(0, 64);
	mm_wr(VIRTIO_PCI_COMMON_STATUS, 1, 0xf);
	cr_assert(dev.vd.active);

	virtio_pci__notify_queue(&dev.vd, 0);
	cr_assert_eq(dev.vd.msix.vec[1].count, 1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_ISR_OFF, 1), 0, "no ISR bits with MSI-X");
	virtio_pci__notify_config(&dev.vd);
	cr_assert_eq(dev.vd.msix.vec[0].count, 1);

	/* a masked vector becomes pending in the PBA */
	mm_wr(entry + 12, 4, 1);
	virtio_pci__notify_queue(&dev.vd, 0);
	cr_assert_eq(dev.vd.msix.vec[1].count, 1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_MSIX_PBA_OFF, 8) & 2, 2);
	mm_wr(entry + 12, 4, 0);
	cr_assert_eq(dev.vd.msix.vec[1].count, 2);

	/* NO_VECTOR: nothing at all */
	mm_wr(VIRTIO_PCI_COMMON_Q_MSIX, 2, MSIX_NO_VECTOR);
	virtio_pci__notify_queue(&dev.vd, 0);
	cr_assert_eq(dev.vd.msix.vec[1].count, 2);
	cr_assert_eq(mm_rd(VIRTIO_PCI_ISR_OFF, 1), 0);
}

Test(virtio_pci, pci_cfg_access_window)
{
	uint32_t c = dev.vd.cfg_cap_off;
	uint32_t data = c + 16;

	cr_assert_neq(c, 0);
	cr_assert_eq(cfg_rd(c + VIRTIO_PCI_CAP_CFG_TYPE, 1), VIRTIO_PCI_CAP_PCI_CFG);
	/* read num_queues through config space */
	cfg_wr(c + VIRTIO_PCI_CAP_BAR, 1, VIRTIO_PCI_BAR);
	cfg_wr(c + VIRTIO_PCI_CAP_OFFSET, 4, VIRTIO_PCI_COMMON_NUMQ);
	cfg_wr(c + VIRTIO_PCI_CAP_LENGTH, 4, 2);
	cr_assert_eq(cfg_rd(data, 4) & 0xffff, NQ);
	/* write device_feature_select through it */
	cfg_wr(c + VIRTIO_PCI_CAP_OFFSET, 4, VIRTIO_PCI_COMMON_DFSELECT);
	cfg_wr(c + VIRTIO_PCI_CAP_LENGTH, 4, 4);
	cfg_wr(data, 4, 1);
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_DFSELECT, 4), 1);
	cr_assert_eq(cfg_rd(data, 4), 1);
	/* junk windows read 0 and do nothing */
	cfg_wr(c + VIRTIO_PCI_CAP_LENGTH, 4, 3);
	cr_assert_eq(cfg_rd(data, 4), 0);
	cfg_wr(c + VIRTIO_PCI_CAP_LENGTH, 4, 4);
	cfg_wr(c + VIRTIO_PCI_CAP_OFFSET, 4, 0xfffffffc);
	cr_assert_eq(cfg_rd(data, 4), 0);
	cfg_wr(c + VIRTIO_PCI_CAP_BAR, 1, 0);
	cfg_wr(c + VIRTIO_PCI_CAP_OFFSET, 4, 0);
	cr_assert_eq(cfg_rd(data, 4), 0);
	/* the capability's type and length stay read-only */
	cfg_wr(c + VIRTIO_PCI_CAP_CFG_TYPE, 1, 1);
	cr_assert_eq(cfg_rd(c + VIRTIO_PCI_CAP_CFG_TYPE, 1), VIRTIO_PCI_CAP_PCI_CFG);
}

Test(virtio_pci, bar_unmap_and_move)
{
	unsigned int n = bus__count(&vm.mmio);
	uint8_t d[4];
	uint64_t nbar;

	cfg_wr(PCI_COMMAND, 2, 0);
	cr_assert_eq(bus__count(&vm.mmio), n - 1);
	cr_assert_eq(dev.vd.bar_addr, 0);
	cr_assert_eq(bus__dispatch(&vm.mmio, bar, d, 4, false), -ENOENT);
	/* move it and turn decode back on */
	nbar = bar + 0x100000;
	cfg_wr(PCI_BASE_ADDRESS_4, 4, (uint32_t)nbar);
	cfg_wr(PCI_BASE_ADDRESS_5, 4, (uint32_t)(nbar >> 32));
	cfg_wr(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	cr_assert_eq(dev.vd.bar_addr, nbar);
	bar = nbar;
	cr_assert_eq(mm_rd(VIRTIO_PCI_COMMON_NUMQ, 2), NQ);
}

Test(virtio_pci, init_rejects_bad_parameters)
{
	struct virtio_dev vd2;

	cr_assert_eq(virtio_pci__init(&vd2, &vm, "bad", 1, 0, 0, 256, 0, &dummy_ops, NULL), -EINVAL);
	cr_assert_eq(virtio_pci__init(&vd2, &vm, "bad", 1, 0, VIRTIO_MAX_QUEUES + 1, 256, 0,
				      &dummy_ops, NULL), -EINVAL);
	cr_assert_eq(virtio_pci__init(&vd2, &vm, "bad", 1, 0, 1, 100, 0, &dummy_ops, NULL), -EINVAL);
	cr_assert_eq(virtio_pci__init(&vd2, &vm, "bad", 1, 0, 1, 256, 0x2000, &dummy_ops, NULL),
		     -EINVAL);
}

/* with a real KVM VM: ioeventfds are registered at the notify addresses */
Test(virtio_pci_kvm, ioeventfds_follow_the_bar)
{
	static struct vm kvm_vm;
	uint8_t d[2] = { 0, 0 };
	uint16_t cmd = PCI_COMMAND_MEMORY;
	int i, fd, ret;

	/* skip only without a usable /dev/kvm; with one, minivmm's VM must come up */
	fd = kvm_open_or_skip();
	close(fd);
	ret = kvm__vm_create(&kvm_vm, 16 * MiB, false, 1);
	cr_assert_eq(ret, 0, "kvm__vm_create with a working /dev/kvm: %s", strerror(-ret));
	memset(&dev, 0, sizeof(dev));
	cr_assert_eq(virtio_pci__init(&dev.vd, &kvm_vm, "vdummy1", DUMMY_ID, 0xff00, NQ, QMAX,
				      sizeof(dev.cfg), &dummy_ops, &dev), 0);
	cr_assert_eq(virtio_pci__register(&dev.vd), 0);
	pci__cfg_access(&kvm_vm.pci, 0, (uint8_t)dev.vd.pci.devfn, PCI_COMMAND, (uint8_t *)&cmd, 2,
			true);
	cr_assert_neq(dev.vd.bar_addr, 0);
	cr_assert(dev.vd.kick_ioeventfd[0]);
	cr_assert(dev.vd.kick_ioeventfd[1]);

	/* bring the device up (by hand) so kicks are delivered */
	dev.vd.active = true;
	dev.vd.vq[1].ready = true;
	/* a notify write that reaches userspace is forwarded to the event loop */
	cr_assert_eq(bus__dispatch(&kvm_vm.mmio, dev.vd.bar_addr + VIRTIO_PCI_NOTIFY_OFF + 4, d, 2,
				   true), 0);
	cr_assert_eq(dev.notifies[1], 0);
	for (i = 0; i < 10 && !dev.notifies[1]; i++)
		evloop__run_once(&kvm_vm.loop, true);
	cr_assert_eq(dev.notifies[1], 1);

	/* decode off: the ioeventfds go away with the BAR */
	cmd = 0;
	pci__cfg_access(&kvm_vm.pci, 0, (uint8_t)dev.vd.pci.devfn, PCI_COMMAND, (uint8_t *)&cmd, 2,
			true);
	cr_assert_eq(dev.vd.bar_addr, 0);
	cr_assert_not(dev.vd.kick_ioeventfd[0]);
	cmd = PCI_COMMAND_MEMORY;
	pci__cfg_access(&kvm_vm.pci, 0, (uint8_t)dev.vd.pci.devfn, PCI_COMMAND, (uint8_t *)&cmd, 2,
			true);
	cr_assert(dev.vd.kick_ioeventfd[0]);

	/*
	 * queue 1's kicks moved to another eventfd (vhost's): KVM holds the new
	 * one at the notify address and no longer the old one, also across a
	 * BAR decode off and on; and back
	 */
	{
		uint64_t a = dev.vd.bar_addr + VIRTIO_PCI_NOTIFY_OFF + 4;
		uint32_t elen = kvm__check_cap(&kvm_vm, KVM_CAP_IOEVENTFD_ANY_LENGTH) > 0 ? 0 : 2;
		int efd = sys__eventfd(0);

		cr_assert_geq(efd, 0);
		cr_assert_eq(virtio_pci__redirect_kick(&dev.vd, 1, efd), 0);
		/* KVM holds the new eventfd there: it can be taken off (and is put back) */
		cr_assert_eq(irq__ioeventfd(&kvm_vm.irq, a, elen, -1, false, efd, false), 0);
		cr_assert_eq(irq__ioeventfd(&kvm_vm.irq, a, elen, -1, false, efd, true), 0);
		cr_assert_eq(irq__ioeventfd(&kvm_vm.irq, a, elen, -1, false, dev.vd.kick_fd[1], false),
			     -ENOENT, "and not the old one");
		cmd = 0;
		pci__cfg_access(&kvm_vm.pci, 0, (uint8_t)dev.vd.pci.devfn, PCI_COMMAND,
				(uint8_t *)&cmd, 2, true);
		cmd = PCI_COMMAND_MEMORY;
		pci__cfg_access(&kvm_vm.pci, 0, (uint8_t)dev.vd.pci.devfn, PCI_COMMAND,
				(uint8_t *)&cmd, 2, true);
		a = dev.vd.bar_addr + VIRTIO_PCI_NOTIFY_OFF + 4;
		cr_assert_eq(irq__ioeventfd(&kvm_vm.irq, a, elen, -1, false, efd, false), 0,
			     "the BAR came back with the redirected eventfd");
		cr_assert_eq(irq__ioeventfd(&kvm_vm.irq, a, elen, -1, false, efd, true), 0);
		cr_assert_eq(virtio_pci__redirect_kick(&dev.vd, 1, -1), 0);
		cr_assert_eq(irq__ioeventfd(&kvm_vm.irq, a, elen, -1, false, efd, false), -ENOENT);
		cr_assert_eq(irq__ioeventfd(&kvm_vm.irq, a, elen, -1, false, dev.vd.kick_fd[1], false),
			     0, "the transport's own eventfd is back");
		cr_assert_eq(irq__ioeventfd(&kvm_vm.irq, a, elen, -1, false, dev.vd.kick_fd[1], true), 0);
		close(efd);
	}

	virtio_pci__destroy(&dev.vd);
	kvm__vm_destroy(&kvm_vm);
}
