// SPDX-License-Identifier: MIT
/*
 * virtio-blk (virtio/blk.c) on a fake VM: request chains (header, data,
 * status) in hostile rings, over a 64 KiB disk in a memfd, executed through
 * the real event loop's io_uring, driven through the virtio-pci transport.
 *
 * Input: u64 features, the request queue's descriptor table and avail ring,
 * the data area (request headers, buffers), then ops:
 *   0 kick   1 run the event loop once   2 publish u8 more avail entries
 *   3 reset (the reset waits for I/O in flight) and initialise again
 * After the input, the loop runs until no request is in flight.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_virtio.h"
#include "virtio/blk.h"

#define DISK_SIZE (64 * 1024)

static struct vm vm;
static struct virtio_blk *blk;
static struct virtio_dev *vd;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[64];
	uint8_t sec[512];
	int fd, i;

	fuzz_quiet();
	if (kvm__vm_init_fake(&vm, 16 * MiB))
		abort();
	fd = memfd_create("fuzz-disk", 0);
	if (fd < 0)
		abort();
	for (i = 0; i < DISK_SIZE / 512; i++) {
		memset(sec, i, sizeof(sec));
		if (pwrite(fd, sec, sizeof(sec), (off_t)i * 512) != 512)
			abort();
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (virtio_blk__create(&vm, path, false, "vblk-fuzz", &blk))
		abort();
	close(fd);
	vd = &blk->vd;
	fv_enable(&vm, vd);
	return 0;
}

static void drain(void)
{
	int i;

	for (i = 0; i < 1000 && blk->inflight; i++)
		(void)evloop__run_once(&vm.loop, true);
	(void)evloop__run_once(&vm.loop, false);
	if (blk->inflight)
		abort(); /* io_uring on a memfd does not take a second */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *area = mem__gpa_to_hva(&vm.mem, FV_DATA_GPA, FV_DATA_SIZE);
	struct fuzz_in in;
	uint64_t features;
	unsigned int steps = 0;

	fuzz_in_init(&in, data, size);
	features = fuzz_u64(&in);
	fv_fill_ring(&vm, &in, 0);
	fuzz_bytes(&in, area, 0x400);
	if (!fv_driver_init(&vm, vd, features, 1))
		goto out;

	while (!fuzz_empty(&in) && steps++ < 64) {
		uint8_t op = fuzz_u8(&in);

		switch (op % 4) {
		case 0:
			fv_kick(&vm, vd, 0);
			break;
		case 1:
			(void)evloop__run_once(&vm.loop, false);
			break;
		case 2:
			fv_publish(&vm, 0, fuzz_u8(&in));
			break;
		case 3:
			fv_reset(&vm, vd);
			drain();
			if (!fv_driver_init(&vm, vd, features, 1))
				goto out;
			break;
		}
	}
out:
	drain();
	fv_reset(&vm, vd);
	drain();
	return 0;
}
