// SPDX-License-Identifier: MIT
#include "vmm/snapshot.h"
#include "migration/stream.h"
#include "vmm/device.h"
#include "vmm/kvm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define SNAP_PAGE 4096u

bool snapshot__page_is_zero(const void *p)
{
	const uint64_t *w = p;
	unsigned int i;

	for (i = 0; i < SNAP_PAGE / 8; i++)
		if (w[i])
			return false;
	return true;
}

struct snap_check {
	char *err;
	size_t errlen;
	bool (*leaves)(struct vmm_device *d, void *opaque);
	void *opaque;
};

static int snap_check_fn(struct vmm_device *d, void *opaque)
{
	struct snap_check *c = opaque;

	if (d->state_section || d->stateless || (c->leaves && c->leaves(d, c->opaque)))
		return 0;
	snprintf(c->err, c->errlen, "%s (%s) cannot save its state yet: no snapshot or migration "
		 "of this VM", d->id, d->kind);
	return -ENOTSUP;
}

/*
 * Every device stops touching guest memory, in list order; on a failure the
 * ones paused so far resume. The list is walked without its lock held across
 * the ops (a pause runs the event loop): only the VMM thread changes it, and
 * that is this thread.
 */
static void snap_resume_all(struct vm *vm, struct vmm_device *upto)
{
	struct vmm_device *d;

	for (d = vm->devices.first; d && d != upto; d = d->next)
		if (d->ops && d->ops->resume)
			d->ops->resume(d);
}

static int snap_pause_all(struct vm *vm, char *err, size_t errlen)
{
	struct vmm_device *d;
	int ret;

	for (d = vm->devices.first; d; d = d->next) {
		if (!d->ops || !d->ops->pause)
			continue;
		ret = d->ops->pause(d);
		if (ret) {
			snprintf(err, errlen, "%s (%s) cannot be paused: %s", d->id, d->kind,
				 strerror(-ret));
			snap_resume_all(vm, d);
			return ret;
		}
	}
	return 0;
}

/* runs of non-zero pages, SNAPSHOT_RAM_RUN_MAX bytes at most each */
static int snap_save_ram(struct vm *vm, struct mig_writer *w, struct snapshot_stats *st)
{
	unsigned int i;
	int ret;

	for (i = 0; i < vm->mem.nr_regions; i++) {
		const struct mem_region *r = &vm->mem.regions[i];
		uint64_t off = 0, run_start = 0, run_len = 0;

		while (off < r->size) {
			bool zero = snapshot__page_is_zero(r->hva + off);

			if (zero)
				st->zero_pages++;
			if (run_len && (zero || run_len == SNAPSHOT_RAM_RUN_MAX)) {
				ret = mig__stream_write_ram(&vm->mig, w, r->gpa + run_start,
							    r->hva + run_start, run_len);
				if (ret)
					return ret;
				st->ram_bytes += run_len;
				run_len = 0;
			}
			if (!zero) {
				if (!run_len)
					run_start = off;
				run_len += SNAP_PAGE;
			}
			off += SNAP_PAGE;
		}
		if (run_len) {
			ret = mig__stream_write_ram(&vm->mig, w, r->gpa + run_start, r->hva + run_start,
						    run_len);
			if (ret)
				return ret;
			st->ram_bytes += run_len;
		}
	}
	return 0;
}

int snapshot__check(struct vm *vm, bool (*leaves)(struct vmm_device *d, void *opaque),
		    void *opaque, char *err, size_t errlen)
{
	struct snap_check c = { err, errlen, leaves, opaque };

	err[0] = 0;
	return device__for_each(&vm->devices, snap_check_fn, &c);
}

int snapshot__save(struct vm *vm, int fd, struct snapshot_stats *st, char *err, size_t errlen)
{
	struct snap_check c = { err, errlen, NULL, NULL };
	const struct mig_section *s;
	struct mig_writer w;
	int ret;

	memset(st, 0, sizeof(*st));
	err[0] = 0;
	ret = device__for_each(&vm->devices, snap_check_fn, &c);
	if (ret)
		return ret;
	ret = snap_pause_all(vm, err, errlen);
	if (ret)
		return ret;
	mig__writer_init_fd(&w, fd);
	mig__clear_error(&vm->mig);
	ret = mig__stream_write_header(&vm->mig, &w);
	mig_for_each_section(&vm->mig, s) {
		if (ret)
			break;
		ret = mig__stream_write_section(&vm->mig, &w, s);
		if (!ret)
			st->sections++;
	}
	if (!ret)
		ret = snap_save_ram(vm, &w, st);
	if (!ret)
		ret = mig__stream_write_end(&vm->mig, &w);
	st->bytes = w.written;
	if (ret && !err[0])
		snprintf(err, errlen, "%s", mig__error(&vm->mig)[0] ? mig__error(&vm->mig) : strerror(-ret));
	mig__writer_release(&w);
	snap_resume_all(vm, NULL);
	return ret;
}

static int snap_ram_load(void *opaque, uint64_t gpa, const void *data, size_t len)
{
	struct vm *vm = opaque;
	void *hva = mem__gpa_to_hva(&vm->mem, gpa, len);

	if (!hva) {
		/* outside guest RAM: the stream is not for this VM */
		mig__set_error(&vm->mig, "guest RAM at %#llx-%#llx is outside this VM's %llu MiB: "
			       "the saved VM had more memory (--mem)", (unsigned long long)gpa,
			       (unsigned long long)(gpa + len - 1),
			       (unsigned long long)(vm->mem.ram_size >> 20));
		return -ERANGE;
	}
	memcpy(hva, data, len);
	return 0;
}

int snapshot__save_plan(struct vm *vm, int fd, char *err, size_t errlen)
{
	struct mig_writer w;
	int ret;

	err[0] = 0;
	mig__writer_init_fd(&w, fd);
	ret = mig__stream_save_plan(&vm->mig, &w);
	if (ret)
		snprintf(err, errlen, "%s", mig__error(&vm->mig)[0] ? mig__error(&vm->mig) :
					    strerror(-ret));
	mig__writer_release(&w);
	return ret;
}

int snapshot__load(struct vm *vm, int fd, char *err, size_t errlen)
{
	return snapshot__load_or_plan(vm, fd, NULL, err, errlen);
}

int snapshot__load_or_plan(struct vm *vm, int fd, bool *plan, char *err, size_t errlen)
{
	struct mig_ram_sink sink = { .load = snap_ram_load, .opaque = vm };
	struct mig_reader r;
	int ret;

	err[0] = 0;
	mig__reader_init_fd(&r, fd);
	mig__clear_error(&vm->mig);
	ret = mig__stream_load_or_plan(&vm->mig, &r, &sink, plan);
	if (ret)
		snprintf(err, errlen, "%s", mig__error(&vm->mig)[0] ? mig__error(&vm->mig) :
					    ret == -ERANGE ? "RAM outside this VM's memory" :
					    strerror(-ret));
	return ret;
}
