// SPDX-License-Identifier: MIT
/*
 * Split virtqueue (virtio/queue.c) over hostile guest memory: the input lays
 * out the descriptor table, the avail ring, the used ring and a data area
 * (indirect tables, buffers) of one queue, then drives the device side:
 * pop, copy through the chain's iovecs, push, unpop, notification checks.
 *
 * Input: u8 flags (bit 0 event index, bit 1 dirty tracking), u8 log2(queue
 * size), u16 avail idx bias, u8 number of device steps, then the descriptor
 * table (16 * size bytes), the avail ring (6 + 2 * size), the used ring's
 * flags (4 bytes), and whatever is left into the data area at DATA_GPA.
 * Guest RAM is one exactly-sized heap buffer, so ASan sees any access that
 * escapes it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "virtio/queue.h"
#include "vmm/mem.h"

#define GPA_BASE 0x10000ULL
#define MEM_SIZE 0x20000ULL /* desc 16 KiB, avail, used, data */
#define DESC_GPA (GPA_BASE + 0x0000)
#define AVAIL_GPA (GPA_BASE + 0x4000)
#define USED_GPA (GPA_BASE + 0x5000)
#define DATA_GPA (GPA_BASE + 0x8000)

static uint8_t *ram;
static struct guest_mem mem;
static struct virtq q;
static struct virtq_chain chain;
static uint8_t scratch[65536];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	ram = malloc(MEM_SIZE);
	if (!ram || mem__init_from_buffer(&mem, ram, GPA_BASE, MEM_SIZE))
		abort();
	return 0;
}

static uint8_t *hva(uint64_t gpa)
{
	return ram + (gpa - GPA_BASE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in;
	uint8_t flags, steps;
	uint16_t qsize, bias;
	unsigned int i;
	size_t got;
	const uint8_t *rest;

	fuzz_in_init(&in, data, size);
	flags = fuzz_u8(&in);
	qsize = (uint16_t)(1u << (fuzz_u8(&in) % 11)); /* 1 .. 1024 */
	bias = fuzz_u16(&in);
	steps = fuzz_u8(&in);

	memset(ram, 0, MEM_SIZE);
	fuzz_bytes(&in, hva(DESC_GPA), 16ULL * qsize);
	fuzz_bytes(&in, hva(AVAIL_GPA), 6ULL + 2ULL * qsize);
	fuzz_bytes(&in, hva(USED_GPA), 4);
	rest = fuzz_take(&in, MEM_SIZE - (DATA_GPA - GPA_BASE), &got);
	memcpy(hva(DATA_GPA), rest, got);

	if (flags & 2) {
		if (mem__dirty_start(&mem))
			abort();
	}
	virtq__init(&q, &mem, VIRTQ_MAX_SIZE);
	q.size = qsize;
	q.desc_gpa = DESC_GPA;
	q.avail_gpa = AVAIL_GPA;
	q.used_gpa = USED_GPA;
	q.event_idx = flags & 1;
	if (virtq__enable(&q))
		goto out;
	q.ready = true;
	/* where the device resumes (a migrated queue does not start at 0) */
	q.last_avail_idx = bias;
	q.used_idx = bias;

	for (i = 0; i < (unsigned int)steps + 1; i++) {
		uint8_t op = (uint8_t)(i < got ? rest[i] : i);
		int ret = virtq__pop(&q, &chain);
		size_t n;

		if (ret <= 0)
			break;
		if (chain.nr_out + chain.nr_in > VIRTQ_MAX_SEGS)
			abort();
		/* read what the driver gave, write what it lets us write */
		n = virtq__iov_to_buf(chain.iov, chain.nr_out, op & 7, scratch, sizeof(scratch));
		if (n > chain.out_len)
			abort();
		n = virtq__buf_to_iov(chain.iov + chain.nr_out, chain.nr_in, op & 3, scratch,
				      chain.in_len < sizeof(scratch) ? chain.in_len
								     : sizeof(scratch));
		if (n > chain.in_len)
			abort();
		if ((op & 0xc0) == 0xc0) {
			virtq__unpop(&q);
			continue;
		}
		virtq__mark_written(&q, &chain, n);
		if (virtq__push(&q, chain.head, (uint32_t)n))
			break;
		(void)virtq__should_notify(&q);
		(void)virtq__has_avail(&q);
	}
	(void)virtq__should_notify(&q);
	virtq__reset(&q);
out:
	if (flags & 2)
		mem__dirty_stop(&mem);
	return 0;
}
