// SPDX-License-Identifier: MIT
#include "vmm/snapshot.h"
#include "migration/live.h"
#include "migration/stream.h"
#include "vmm/device.h"
#include "vmm/kvm.h"
#include "vmm/log.h"
#include "vmm/migrate.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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

/* a run of pages being gathered into one record */
struct snap_run {
	uint64_t start, len; /* region offsets */
	bool zero;
};

static int snap_flush(struct vm *vm, struct mig_writer *w, const struct mem_region *r,
		      struct snap_run *run, struct snapshot_stats *st,
		      const struct snapshot_pacer *pacer)
{
	const uint8_t *data = r->hva + run->start;
	int ret;

	if (!run->len)
		return 0;
	if (run->zero) {
		ret = mig__stream_write_zero(&vm->mig, w, r->gpa + run->start, run->len);
	} else {
		/*
		 * The guest runs during a pre-copy: the record's CRC and bytes
		 * must be of one copy (the page is dirty again and goes later)
		 */
		if (pacer && pacer->bounce) {
			memcpy(pacer->bounce, data, run->len);
			data = pacer->bounce;
		}
		ret = mig__stream_write_ram(&vm->mig, w, r->gpa + run->start, data, run->len);
		if (!ret)
			st->ram_bytes += run->len;
	}
	run->len = 0;
	if (!ret && pacer && pacer->fn &&
	    (!pacer->paced || w->written - *pacer->paced >= SNAPSHOT_PACE_BYTES)) {
		if (pacer->paced)
			*pacer->paced = w->written;
		ret = pacer->fn(pacer->opaque, w->written);
	}
	return ret;
}

/*
 * The pages of region i, in records of SNAPSHOT_RAM_RUN_MAX bytes at most:
 * all of them (bits NULL) or those set in bits. A zero page is left out
 * (zero_records false: the reader's RAM starts zeroed) or sent as part of a
 * zero record (16 bytes for the whole run).
 */
static int snap_send_region(struct vm *vm, struct mig_writer *w, unsigned int i,
			    const uint64_t *bits, bool zero_records, struct snapshot_stats *st,
			    const struct snapshot_pacer *pacer)
{
	const struct mem_region *r = &vm->mem.regions[i];
	uint64_t pg, pages = r->size / SNAP_PAGE;
	uint64_t base = pacer && pacer->scanned ? *pacer->scanned : 0;
	struct snap_run run = { 0 };
	int ret;

	for (pg = 0; pg < pages; pg++) {
		uint64_t off = pg * SNAP_PAGE;
		bool zero;

		if (pacer && pacer->scanned)
			*pacer->scanned = base + pg;

		if (bits && !(bits[pg / 64] >> (pg % 64))) {
			ret = snap_flush(vm, w, r, &run, st, pacer);
			if (ret)
				return ret;
			pg |= 63; /* nothing more in this word */
			continue;
		}
		if (bits && !(bits[pg / 64] & (1ULL << (pg % 64)))) {
			ret = snap_flush(vm, w, r, &run, st, pacer);
			if (ret)
				return ret;
			continue;
		}
		zero = snapshot__page_is_zero(r->hva + off);
		if (zero)
			st->zero_pages++;
		if ((zero && !zero_records) ||
		    (run.len && (run.zero != zero || (!zero && run.len == SNAPSHOT_RAM_RUN_MAX)))) {
			ret = snap_flush(vm, w, r, &run, st, pacer);
			if (ret)
				return ret;
		}
		if (zero && !zero_records)
			continue;
		if (!run.len) {
			run.start = off;
			run.zero = zero;
		}
		run.len += SNAP_PAGE;
	}
	return snap_flush(vm, w, r, &run, st, pacer);
}

/* all of RAM, zero pages left out */
static int snap_save_ram(struct vm *vm, struct mig_writer *w, struct snapshot_stats *st)
{
	unsigned int i;
	int ret;

	for (i = 0; i < vm->mem.nr_regions; i++) {
		ret = snap_send_region(vm, w, i, NULL, false, st, NULL);
		if (ret)
			return ret;
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

/* ---- pre-copy ---------------------------------------------------------- */

int snapshot__live_begin(struct snapshot_live *s, struct vm *vm, struct mig_writer *w,
			 char *err, size_t errlen)
{
	const struct mig_section *sec;
	unsigned int i;
	int ret;

	memset(s, 0, sizeof(*s));
	s->vm = vm;
	s->w = w;
	err[0] = 0;
	s->bounce = malloc(SNAPSHOT_RAM_RUN_MAX);
	if (!s->bounce) {
		snprintf(err, errlen, "out of memory for the copy buffer");
		return -ENOMEM;
	}
	for (i = 0; i < vm->mem.nr_regions; i++) {
		s->bits[i] = calloc(MEM_DIRTY_WORDS(vm->mem.regions[i].size), sizeof(uint64_t));
		if (!s->bits[i]) {
			snprintf(err, errlen, "out of memory for the dirty bitmaps");
			return -ENOMEM;
		}
	}
	mig__clear_error(&vm->mig);
	ret = mig__stream_write_header(&vm->mig, w);
	/* the destination checks the machine before any RAM comes */
	mig_for_each_section(&vm->mig, sec) {
		if (ret)
			break;
		if (!sec->ops->check)
			continue;
		ret = mig__stream_write_section(&vm->mig, w, sec);
		if (!ret)
			s->st.sections++;
	}
	/* and it says whether it takes this machine before anything else happens */
	if (!ret)
		ret = mig__stream_write_confirm(&vm->mig, w);
	if (ret)
		snprintf(err, errlen, "%s", mig__error(&vm->mig)[0] ? mig__error(&vm->mig) :
					    strerror(-ret));
	return ret;
}

/*
 * Devices hear that dirty tracking starts or ends (vmm/device.h track_dirty:
 * a vhost backend's writes must become visible); on: up to the first
 * failure, which is returned after the ones before it heard "off" again.
 */
static int snap_track_dirty_all(struct vm *vm, bool on, char *err, size_t errlen)
{
	struct vmm_device *d, *e;
	int ret;

	for (d = vm->devices.first; d; d = d->next) {
		if (!d->ops || !d->ops->track_dirty)
			continue;
		ret = d->ops->track_dirty(d, on);
		if (!ret || !on) {
			if (ret)
				log_err("snapshot", "%s: dirty tracking off: %s", d->id, strerror(-ret));
			continue;
		}
		snprintf(err, errlen, "%s (%s) cannot have its writes logged: %s", d->id, d->kind,
			 strerror(-ret));
		for (e = vm->devices.first; e && e != d; e = e->next)
			if (e->ops && e->ops->track_dirty)
				(void)e->ops->track_dirty(e, false);
		return ret;
	}
	return 0;
}

int snapshot__live_log_start(struct snapshot_live *s, char *err, size_t errlen)
{
	int ret = kvm__dirty_log_start(s->vm);

	if (ret) {
		snprintf(err, errlen, "cannot log the guest's writes: %s", strerror(-ret));
		return ret;
	}
	/* before the first round reads any page: what a device wrote until now is in it */
	ret = snap_track_dirty_all(s->vm, true, err, errlen);
	if (ret) {
		kvm__dirty_log_stop(s->vm);
		return ret;
	}
	s->logging = true;
	return 0;
}

static uint64_t snap_popcount(const uint64_t *bits, uint64_t size)
{
	uint64_t n = 0, w;

	for (w = 0; w < MEM_DIRTY_WORDS(size); w++)
		n += (uint64_t)__builtin_popcountll(bits[w]);
	return n;
}

/* harvests the dirty pages of every region and sends them */
/* KVM's and minivmm's dirty logs, taken (cleared there) into the pending set s->bits */
static int snap_harvest(struct snapshot_live *s, uint64_t *pending)
{
	struct vm *vm = s->vm;
	unsigned int i;
	int ret;

	*pending = 0;
	for (i = 0; i < vm->mem.nr_regions; i++) {
		ret = kvm__dirty_log_get(vm, i, s->bits[i]); /* ORs into the pending bits */
		if (ret)
			return ret;
		*pending += snap_popcount(s->bits[i], vm->mem.regions[i].size);
	}
	return 0;
}

/* harvests, then sends every pending page and empties the set; *pages: how many */
static int snap_send_dirty(struct snapshot_live *s, const struct snapshot_pacer *p,
			   uint64_t *pages)
{
	struct vm *vm = s->vm;
	unsigned int i;
	int ret;

	ret = snap_harvest(s, pages);
	for (i = 0; i < vm->mem.nr_regions && !ret; i++) {
		ret = snap_send_region(vm, s->w, i, s->bits[i], true, &s->st, p);
		memset(s->bits[i], 0, MEM_DIRTY_WORDS(vm->mem.regions[i].size) * sizeof(uint64_t));
	}
	return ret;
}

int snapshot__live_pending(struct snapshot_live *s, uint64_t *pending, char *err, size_t errlen)
{
	int ret = snap_harvest(s, pending);

	if (ret)
		snprintf(err, errlen, "cannot read the dirty log: %s", strerror(-ret));
	return ret;
}

int snapshot__live_round(struct snapshot_live *s, bool first, const struct snapshot_pacer *pacer,
			 uint64_t *pages, char *err, size_t errlen)
{
	uint64_t paced = s->w->written;
	struct snapshot_pacer pc = { .fn = pacer ? pacer->fn : NULL,
				     .opaque = pacer ? pacer->opaque : NULL,
				     .bounce = s->bounce, .scanned = &s->scanned, .paced = &paced };
	const struct snapshot_pacer *p = &pc;
	struct vm *vm = s->vm;
	unsigned int i;
	int ret = 0;

	err[0] = 0;
	s->scanned = 0;
	if (first) {
		*pages = 0;
		for (i = 0; i < vm->mem.nr_regions && !ret; i++) {
			*pages += vm->mem.regions[i].size / SNAP_PAGE;
			ret = snap_send_region(vm, s->w, i, NULL, false, &s->st, p);
		}
	} else {
		ret = snap_send_dirty(s, p, pages);
	}
	s->st.bytes = s->w->written;
	if (ret && !err[0])
		snprintf(err, errlen, "%s", mig__error(&vm->mig)[0] ? mig__error(&vm->mig) :
					    strerror(-ret));
	return ret;
}

int snapshot__live_finish(struct snapshot_live *s, const struct snapshot_pacer *pacer,
			  uint64_t *pages, char *err, size_t errlen)
{
	/* nothing runs that could write the pages: no bounce copy needed */
	uint64_t paced = s->w->written;
	struct snapshot_pacer pc = { .fn = pacer ? pacer->fn : NULL,
				     .opaque = pacer ? pacer->opaque : NULL, .paced = &paced };
	struct vm *vm = s->vm;
	const struct mig_section *sec;
	int ret;

	err[0] = 0;
	ret = snap_pause_all(vm, err, errlen);
	if (ret)
		return ret;
	/* nothing writes guest memory now: the last dirty pages, then the state */
	ret = snap_send_dirty(s, pc.fn ? &pc : NULL, pages);
	mig_for_each_section(&vm->mig, sec) {
		if (ret)
			break;
		if (sec->ops->check)
			continue; /* sent first, in begin */
		ret = mig__stream_write_section(&vm->mig, s->w, sec);
		if (!ret)
			s->st.sections++;
		if (!ret && pc.fn)
			ret = pc.fn(pc.opaque, s->w->written);
	}
	if (!ret)
		ret = mig__stream_write_end(&vm->mig, s->w);
	s->st.bytes = s->w->written;
	if (ret && !err[0])
		snprintf(err, errlen, "%s", mig__error(&vm->mig)[0] ? mig__error(&vm->mig) :
					    strerror(-ret));
	if (ret)
		snap_resume_all(vm, NULL);
	else
		s->devices_paused = true;
	return ret;
}

void snapshot__live_resume_devices(struct snapshot_live *s)
{
	if (!s->devices_paused)
		return;
	s->devices_paused = false;
	snap_resume_all(s->vm, NULL);
}

void snapshot__live_end(struct snapshot_live *s)
{
	unsigned int i;

	if (s->logging) {
		(void)snap_track_dirty_all(s->vm, false, NULL, 0);
		kvm__dirty_log_stop(s->vm);
	}
	s->logging = false;
	for (i = 0; i < MEM_MAX_REGIONS; i++) {
		free(s->bits[i]);
		s->bits[i] = NULL;
	}
	free(s->bounce);
	s->bounce = NULL;
}

/* what the reader's callbacks get: the VM, and the connection (-1: a file) */
struct snap_in {
	struct vm *vm;
	int fd;
	void (*idle)(void *opaque, uint64_t consumed);
	void *idle_opaque;
};

static int snap_ram_zero(void *opaque, uint64_t gpa, uint64_t len)
{
	struct vm *vm = ((struct snap_in *)opaque)->vm;
	void *hva = mem__gpa_to_hva(&vm->mem, gpa, len);

	if (!hva) {
		mig__set_error(&vm->mig, "zeros for guest RAM at %#llx (+%#llx) outside this VM's "
			       "%llu MiB", (unsigned long long)gpa, (unsigned long long)len,
			       (unsigned long long)(vm->mem.ram_size >> 20));
		return -ERANGE;
	}
	memset(hva, 0, len);
	return 0;
}

static int snap_ram_load(void *opaque, uint64_t gpa, const void *data, size_t len)
{
	struct vm *vm = ((struct snap_in *)opaque)->vm;
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
	return snapshot__load_or_plan(vm, fd, NULL, NULL, NULL, err, errlen);
}

/* a migration's confirm record: the machine passed its checks; the source may go on */
static int snap_confirm(void *opaque)
{
	const struct snap_in *in = opaque;

	return in->fd < 0 ? 0 : migrate__write_ack(in->fd, MIG_ACK_READY);
}

static void snap_idle(void *opaque, uint64_t consumed)
{
	const struct snap_in *in = opaque;

	in->idle(in->idle_opaque, consumed);
}

int snapshot__load_or_plan(struct vm *vm, int fd, bool *plan,
			   void (*idle)(void *opaque, uint64_t consumed), void *idle_opaque,
			   char *err, size_t errlen)
{
	/* a connection (plan given) answers confirm records; a file has no one to answer */
	struct snap_in in = { vm, plan ? fd : -1, idle, idle_opaque };
	struct mig_ram_sink sink = { .load = snap_ram_load, .zero = snap_ram_zero,
				     .confirm = snap_confirm, .idle = idle ? snap_idle : NULL,
				     .opaque = &in };
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
