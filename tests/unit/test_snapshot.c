// SPDX-License-Identifier: MIT
/*
 * vmm/snapshot.c on a VM without KVM (kvm__vm_init_fake): a device without
 * saved state refuses the snapshot by name; the devices are paused around
 * the save and resumed after it (also when one cannot pause); a stream with
 * RAM and a section round-trips into a fresh VM; RAM outside the loading VM
 * is refused with the reason.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "migration/section.h"
#include "vmm/device.h"
#include "vmm/kvm.h"
#include "vmm/snapshot.h"


static struct vm vm;
static int pauses, resumes, fail_pause;
static uint32_t saved_value, loaded_value;

static int fake_pause(struct vmm_device *d)
{
	if (fail_pause)
		return -EBUSY;
	pauses++;
	return 0;
}

static void fake_resume(struct vmm_device *d)
{
	resumes++;
}

static void fake_destroy(struct vmm_device *d)
{
}

static const struct vmm_device_ops fake_ops = {
	.pause = fake_pause,
	.resume = fake_resume,
	.destroy = fake_destroy,
};

static int fake_save(void *opaque, void *fdt)
{
	return mig__put_u32(fdt, "value", saved_value);
}

static int fake_load(void *opaque, const void *fdt, int node, uint32_t version)
{
	return mig__get_u32(fdt, node, "value", &loaded_value);
}

static const struct mig_section_ops fake_state = { .save = fake_save, .load = fake_load };

static void setup(void)
{
	cr_assert_eq(kvm__vm_init_fake(&vm, 32 * MiB), 0);
	pauses = resumes = fail_pause = 0;
}

static void teardown(void)
{
	kvm__vm_destroy(&vm);
}

static int tmpfile_fd(void)
{
	char path[] = "/tmp/minivmm-test-snap.XXXXXX";
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	unlink(path);
	return fd;
}

TestSuite(snapshot, .init = setup, .fini = teardown);

Test(snapshot, a_device_without_state_refuses_by_name)
{
	struct vmm_device d;
	struct snapshot_stats st;
	char err[256];
	int fd = tmpfile_fd();

	device__init(&d, "vf0", "vfio-pci", DEVICE_BUS_PCI, &fake_ops);
	cr_assert_eq(device__add(&vm.devices, &d), 0);
	cr_assert_eq(snapshot__save(&vm, fd, &st, err, sizeof(err)), -ENOTSUP);
	cr_assert(strstr(err, "vf0 (vfio-pci) cannot save its state yet"), "%s", err);
	cr_assert_eq(pauses, 0, "refused before anything was paused");
	cr_assert_eq(lseek(fd, 0, SEEK_END), 0, "nothing written");
	close(fd);
}

Test(snapshot, paused_around_the_save_and_round_trip)
{
	struct vmm_device d;
	struct snapshot_stats st;
	char err[256];
	uint8_t *p;
	int fd = tmpfile_fd();

	device__init(&d, "net0", "fake", DEVICE_BUS_PLATFORM, &fake_ops);
	cr_assert_eq(device__register_state(&d, &vm.mig, "fake", 0, 1, 1, &fake_state, NULL), 0);
	cr_assert_eq(device__add(&vm.devices, &d), 0);
	saved_value = 0x1234;
	p = mem__gpa_to_hva(&vm.mem, 20 * MiB, 4096);
	cr_assert_not_null(p);
	memset(p, 0xab, 4096);
	cr_assert_eq(snapshot__save(&vm, fd, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pauses, 1);
	cr_assert_eq(resumes, 1, "resumed after the save");
	cr_assert_eq(st.ram_bytes, 4096, "one page is not zero");
	cr_assert_eq(st.zero_pages, 32 * MiB / 4096 - 1);
	cr_assert_eq(st.sections, 1);
	/* the pause fails: nothing saved, nothing left paused */
	fail_pause = 1;
	cr_assert_eq(snapshot__save(&vm, tmpfile_fd(), &st, err, sizeof(err)), -EBUSY);
	cr_assert(strstr(err, "net0 (fake) cannot be paused"), "%s", err);
	fail_pause = 0;

	/* into a fresh VM with the same section */
	teardown();
	setup();
	device__init(&d, "net0", "fake", DEVICE_BUS_PLATFORM, &fake_ops);
	cr_assert_eq(device__register_state(&d, &vm.mig, "fake", 0, 1, 1, &fake_state, NULL), 0);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	loaded_value = 0;
	cr_assert_eq(snapshot__load(&vm, fd, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(loaded_value, 0x1234);
	p = mem__gpa_to_hva(&vm.mem, 20 * MiB, 4096);
	cr_assert_eq(p[0], 0xab);
	cr_assert_eq(p[4095], 0xab);

	/* into a smaller VM: its RAM ends before the page */
	teardown();
	{ int r_ = kvm__vm_init_fake(&vm, 16 * MiB); cr_assert_eq(r_, 0, "init: %s", strerror(-r_)); }
	cr_assert_eq(device__register_state(&d, &vm.mig, "fake", 0, 1, 1, &fake_state, NULL), 0);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	cr_assert_neq(snapshot__load(&vm, fd, err, sizeof(err)), 0);
	cr_assert(strstr(err, "outside this VM's 16 MiB: the saved VM had more memory"), "%s", err);
	close(fd);
}

Test(snapshot, zero_pages)
{
	static uint8_t page[4096];

	cr_assert(snapshot__page_is_zero(page));
	page[4095] = 1;
	cr_assert_not(snapshot__page_is_zero(page));
}

/*
 * A live migration's last step: the devices stay paused once the guest's
 * state has left (a kick taken while paused is the destination's to serve;
 * run here too, a write could land after the destination's own) and run
 * again only for a rollback, once.
 */
Test(snapshot, live_finish_leaves_the_devices_paused_until_a_rollback)
{
	struct snapshot_live live;
	struct mig_writer w;
	struct vmm_device d;
	uint64_t pages = 0;
	char err[256];

	device__init(&d, "blk0", "fake", DEVICE_BUS_PLATFORM, &fake_ops);
	cr_assert_eq(device__register_state(&d, &vm.mig, "fake", 0, 1, 1, &fake_state, NULL), 0);
	cr_assert_eq(device__add(&vm.devices, &d), 0);
	mig__writer_init_mem(&w, 64 * MiB);
	cr_assert_eq(snapshot__live_begin(&live, &vm, &w, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(snapshot__live_finish(&live, NULL, &pages, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pauses, 1);
	cr_assert_eq(resumes, 0, "still paused after the state was sent");
	snapshot__live_end(&live);
	cr_assert_eq(resumes, 0, "the end of the stream resumes nothing");
	snapshot__live_resume_devices(&live);
	cr_assert_eq(resumes, 1, "a rollback resumes them");
	snapshot__live_resume_devices(&live);
	cr_assert_eq(resumes, 1, "once");

	/* a device that cannot pause: the transfer fails and nothing stays paused */
	pauses = resumes = 0;
	cr_assert_eq(snapshot__live_begin(&live, &vm, &w, err, sizeof(err)), 0, "%s", err);
	fail_pause = 1;
	cr_assert_neq(snapshot__live_finish(&live, NULL, &pages, err, sizeof(err)), 0);
	fail_pause = 0;
	snapshot__live_end(&live);
	snapshot__live_resume_devices(&live);
	cr_assert_eq(resumes, 0, "nothing was left paused to resume");
	mig__writer_release(&w);
	device__remove(&vm.devices, &d);
}
