// SPDX-License-Identifier: MIT
/*
 * The migration stream reader (migration/stream.c, migration/section.c) and
 * every section loader a fake VM can hold: serial, i8042, rtc, acpi-pm,
 * pcihp, virtio-blk and virtio-net (with their PCI config, MSI-X and
 * virtqueue layers), testdev (last: the earlier sections keep their numbers), and the x86 "kvm-vm" and "cpu" sections of
 * vmm/x86/state.c (a fake vCPU: every field is read and checked, then the
 * KVM_SET_* ioctls fail on fd -1). The stream is what a migration's
 * destination reads from its peer, or a snapshot file: hostile.
 *
 * Input: u8 selector, then:
 *  - selector < number of sections: one section tree (a flattened device
 *    tree) for that section alone; the harness frames it (header, SECTION
 *    record with its CRC, END) and loads it into a registry holding only
 *    that section, so that the tree reaches the device's load();
 *  - otherwise a whole stream, loaded as a destination does
 *    (snapshot__load_or_plan over a socket: confirm records are answered,
 *    RAM and zero records written into guest RAM) into all the sections;
 *    the harness rewrites each record's CRC first unless the selector is
 *    0xff, so that the fuzzer gets past the checksums.
 * After a load that succeeded the VM's state is saved again and the
 * virtqueues are kicked (what a destination does next: the loaded state
 * must hold), then the pristine state is loaded back for the next input.
 *
 * MINIVMM_FUZZ_SEEDS=DIR: write seed inputs (each section as the devices
 * save it, and whole streams) into DIR and exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/hotplug.h"
#include "devices/i8042.h"
#include "devices/testdev.h"
#include "devices/pm.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "fuzz.h"
#include "migration/section.h"
#include "migration/stream.h"
#include "virtio/blk.h"
#include "virtio/net/net.h"
#include "virtio/pci.h"
#include "vmm/bus.h"
#include "vmm/kvm.h"
#include "vmm/snapshot.h"
#include "vmm/x86/platform.h"
#include "vmm/x86/state.h"

#define MAX_SECTIONS 16

static struct vm vm;
static struct virtio_net *net;
static struct virtio_blk *blk;
static struct vcpu fake_vcpu = {.fd = -1};
static struct mig_registry single[MAX_SECTIONS];
static size_t nsec;
static void *pristine;
static size_t pristine_len;

/* ---- a packet backend that drops what it is given ---- */

static const struct net_backend_cbs *be_cbs;
static void *be_opaque;

static int be_start(struct net_backend *b, const struct net_backend_cbs *c, void *o)
{
	be_cbs = c;
	be_opaque = o;
	return 0;
}

static int be_tx(struct net_backend *b, const struct iovec *iov, int cnt, uint32_t t)
{
	return -EIO;
}
static void be_nop(struct net_backend *b) {}
static int be_hdr(struct net_backend *b, unsigned int len)
{
	return 0;
}
static int be_off(struct net_backend *b, uint64_t f)
{
	return 0;
}

static const struct net_backend_ops be_ops = {
    .start = be_start,
    .tx = be_tx,
    .rx_resume = be_nop,
    .set_vnet_hdr_len = be_hdr,
    .set_offloads = be_off,
    .stop = be_nop,
    .destroy = be_nop,
};

static struct net_backend be = {.ops = &be_ops, .kind = "null"};

/* ---- set-up ---- */

static struct testdev *tdev;

static void create_devices(void)
{
	static const struct pm_config pmc = {.evt_port = X86_PM1A_EVT_PORT,
					     .cnt_port = X86_PM1A_CNT_PORT,
					     .sci_irq = X86_SCI_IRQ,
					     .slp_typ_s5 = X86_SLP_TYP_S5};
	static const struct hotplug_config hpc = {
	    .port = X86_HOTPLUG_PORT, .gpe0_port = X86_GPE0_PORT, .sci_irq = X86_SCI_IRQ};
	struct virtio_net_config ncfg = {.name = "virtio-net0", .has_mac = true};
	struct serial *ser;
	struct i8042 *kbd;
	struct rtc *rtc;
	struct pm *pm;
	struct hotplug *hp;
	char path[64];
	int fd;

	if (kvm__vm_init_fake(&vm, 16 * MiB))
		abort();
	if (serial__create(&vm, "ttyS0", X86_COM1_BASE, X86_COM1_IRQ, -1, -1, &ser) ||
	    i8042__create(&vm, &kbd) || rtc__create(&vm, 16 * MiB, &rtc) ||
	    pm__create(&vm, &pmc, &pm) || hotplug__create(&vm, &hpc, &hp))
		abort();
	fd = memfd_create("fuzz-disk", 0);
	if (fd < 0 || ftruncate(fd, 64 * 1024))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (virtio_blk__create(&vm, path, false, "vblk0", &blk))
		abort();
	close(fd);
	if (virtio_net__create_with_backend(&vm, &ncfg, &be, &net))
		abort();
	if (testdev__create(&vm, -1, &tdev))
		abort();
}

/* one registry per section, each holding only it */
static void split_registry(void)
{
	const struct mig_section *s;

	mig_for_each_section(&vm.mig, s)
	{
		if (nsec == MAX_SECTIONS)
			abort();
		mig__registry_init(&single[nsec]);
		if (mig__section_register(&single[nsec], s->name, s->instance, s->version,
					  s->min_version, s->ops, s->opaque))
			abort();
		nsec++;
	}
}

static void *save_stream(struct mig_registry *r, size_t *len)
{
	struct mig_writer w;
	const void *d;
	void *copy;

	mig__writer_init_mem(&w, 16 * MiB);
	if (mig__stream_save(r, &w)) {
		mig__writer_release(&w);
		return NULL;
	}
	d = mig__writer_data(&w, len);
	copy = malloc(*len);
	if (copy)
		memcpy(copy, d, *len);
	mig__writer_release(&w);
	return copy;
}

static void write_seed(const char *dir, const char *name, uint8_t sel, const void *p, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/seed-%s", dir, name);
	f = fopen(path, "w");
	if (!f || fwrite(&sel, 1, 1, f) != 1 || fwrite(p, 1, len, f) != len || fclose(f))
		abort();
}

/* "cpu" and "kvm-vm" as a real VM (KVM) saves them, when /dev/kvm is there */
static void write_x86_seeds(const char *dir)
{
	struct vm real;
	const struct mig_section *s;
	size_t i, len;

	if (kvm__vm_create(&real, 16 * MiB, false, 1)) {
		fprintf(stderr, "fuzz_migration: no KVM: no seeds for the x86 sections\n");
		return;
	}
	if (kvm__vcpus_create(&real) || x86_state__register(&real))
		abort();
	mig_for_each_section(&real.mig, s)
	{
		void *fdt;
		char name[80];

		for (i = 0; i < nsec; i++) {
			const struct mig_section *t = mig__section_at(&single[i], 0);

			if (!strcmp(t->name, s->name) && t->instance == s->instance)
				break;
		}
		if (i == nsec || mig__section_save_fdt(&real.mig, s, &fdt, &len))
			continue;
		snprintf(name, sizeof(name), "section-%s", s->name);
		write_seed(dir, name, (uint8_t)i, fdt, len);
		free(fdt);
	}
	x86_state__unregister(&real);
	kvm__vm_destroy(&real);
}

/* the seeds: each section's tree as its device saves it, and whole streams */
static void write_seeds(const char *dir)
{
	const struct mig_section *s;
	struct mig_writer w;
	const void *d;
	size_t i, len;
	uint8_t page[64];

	for (i = 0; i < nsec; i++) {
		const struct mig_section *sec = mig__section_at(&single[i], 0);
		void *fdt;
		char name[80];

		if (mig__section_save_fdt(&single[i], sec, &fdt, &len))
			continue; /* the x86 sections need KVM: write_x86_seeds */
		snprintf(name, sizeof(name), "section-%s", sec->name);
		write_seed(dir, name, (uint8_t)i, fdt, len);
		free(fdt);
	}
	write_x86_seeds(dir);
	write_seed(dir, "stream", 0xfe, pristine, pristine_len);
	/* a stream with RAM, zero and confirm records before its sections */
	memset(page, 0x5a, sizeof(page));
	mig__writer_init_mem(&w, 16 * MiB);
	if (mig__stream_write_header(&vm.mig, &w) ||
	    mig__stream_write_ram(&vm.mig, &w, 0x1000, page, sizeof(page)) ||
	    mig__stream_write_zero(&vm.mig, &w, 0x2000, 0x1000) ||
	    mig__stream_write_confirm(&vm.mig, &w))
		abort();
	mig_for_each_section(&vm.mig, s) if (mig__stream_write_section(&vm.mig, &w, s)) abort();
	if (mig__stream_write_end(&vm.mig, &w))
		abort();
	d = mig__writer_data(&w, &len);
	write_seed(dir, "stream-ram", 0xfe, d, len);
	mig__writer_release(&w);
	/* a plan stream */
	mig__writer_init_mem(&w, 16 * MiB);
	if (mig__stream_save_plan(&vm.mig, &w))
		abort();
	d = mig__writer_data(&w, &len);
	write_seed(dir, "stream-plan", 0xfe, d, len);
	mig__writer_release(&w);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeds = getenv("MINIVMM_FUZZ_SEEDS");

	fuzz_quiet();
	create_devices();
	/*
	 * the x86 sections on a fake vCPU: in their own registries only (their
	 * save needs KVM, and the whole-stream mode saves vm.mig)
	 */
	fake_vcpu.vm = &vm;
	vm.vcpus = &fake_vcpu;
	vm.nr_vcpus = 1;
	if (x86_state__register(&vm))
		abort();
	split_registry();
	x86_state__unregister(&vm);
	vm.vcpus = NULL;
	vm.nr_vcpus = 0;
	pristine = save_stream(&vm.mig, &pristine_len);
	if (!pristine)
		abort();
	if (seeds) {
		write_seeds(seeds);
		exit(0);
	}
	return 0;
}

/* ---- one input ---- */

/* rewrites each record's CRC (the payload as it is), as far as the records are whole */
static void fix_crcs(uint8_t *s, size_t len)
{
	size_t pos = MIG_HEADER_SIZE;

	while (pos + MIG_RECORD_HEADER_SIZE <= len) {
		uint64_t plen;
		uint32_t crc;

		memcpy(&plen, s + pos + 8, 8);
		if (plen > len - pos - MIG_RECORD_HEADER_SIZE)
			break;
		crc = mig__crc32(0, s + pos + MIG_RECORD_HEADER_SIZE, (size_t)plen);
		memcpy(s + pos + 4, &crc, 4);
		pos += MIG_RECORD_HEADER_SIZE + (size_t)plen;
	}
}

/* the destination side: the stream arrives on a socket, confirm records are answered there */
static int load_stream(const uint8_t *s, size_t len)
{
	char err[512], junk[4096];
	bool plan = false;
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	if (len && send(sv[0], s, len, MSG_NOSIGNAL) != (ssize_t)len)
		abort(); /* the socket takes 200 KiB; inputs are smaller */
	shutdown(sv[0], SHUT_WR);
	ret = snapshot__load_or_plan(&vm, sv[1], &plan, NULL, NULL, err, sizeof(err));
	if (strnlen(err, sizeof(err)) == sizeof(err))
		abort();
	while (recv(sv[0], junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
	close(sv[0]);
	close(sv[1]);
	return plan ? 1 : ret;
}

static int load_section(size_t i, const uint8_t *tree, size_t len)
{
	struct mig_writer w;
	struct mig_reader r;
	const void *d;
	size_t dlen;
	int ret;

	mig__writer_init_mem(&w, 0);
	if (mig__stream_write_header(&single[i], &w) ||
	    mig__stream_write_record(&single[i], &w, MIG_REC_SECTION, tree, len) ||
	    mig__stream_write_end(&single[i], &w)) {
		mig__writer_release(&w);
		return -EINVAL;
	}
	d = mig__writer_data(&w, &dlen);
	mig__reader_init_mem(&r, d, dlen);
	mig__clear_error(&single[i]);
	ret = mig__stream_load(&single[i], &r, NULL);
	if (strnlen(mig__error(&single[i]), MIG_ERR_MAX) == MIG_ERR_MAX)
		abort();
	mig__writer_release(&w);
	return ret;
}

/* what follows a load: the state is saved again, the queues run */
static void exercise(void)
{
	struct virtio_dev *vds[2] = {&blk->vd, virtio_net__vdev(net)};
	size_t len, i;
	uint16_t q;
	void *again = save_stream(&vm.mig, &len);

	free(again);
	for (i = 0; i < 2; i++) {
		struct pci_bar *b = &vds[i]->pci.bars[VIRTIO_PCI_BAR];

		if (!b->active)
			continue;
		for (q = 0; q < vds[i]->nr_queues; q++) {
			uint8_t d[2] = {(uint8_t)q, 0};

			(void)bus__dispatch(
			    &vm.mmio, b->addr + VIRTIO_PCI_NOTIFY_OFF + q * VIRTIO_PCI_NOTIFY_MULT,
			    d, 2, true);
		}
	}
	for (i = 0; i < 100 && blk->inflight; i++)
		(void)evloop__run_once(&vm.loop, true);
	(void)evloop__run_once(&vm.loop, false);
}

static void restore(void)
{
	struct mig_reader r;

	for (int i = 0; i < 100 && blk->inflight; i++)
		(void)evloop__run_once(&vm.loop, true);
	mig__reader_init_mem(&r, pristine, pristine_len);
	if (mig__stream_load(&vm.mig, &r, NULL))
		abort(); /* the state the VM saved itself must load */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t sel;
	int ret;

	if (!size)
		return 0;
	sel = data[0];
	if (sel < nsec) {
		ret = load_section(sel, data + 1, size - 1);
	} else {
		uint8_t *s = malloc(size - 1 ? size - 1 : 1);

		if (!s)
			return 0;
		memcpy(s, data + 1, size - 1);
		if (sel != 0xff)
			fix_crcs(s, size - 1);
		ret = load_stream(s, size - 1);
		free(s);
	}
	if (ret == 0)
		exercise();
	restore();
	return 0;
}
