/* SPDX-License-Identifier: MIT */
/*
 * A whole VM as one migration stream (migration/stream.h, docs/migration.md):
 * every state section registered in vm->mig (the machine's configuration,
 * the vCPUs, the in-kernel irqchip and clocks, each device), then guest RAM
 * page runs, zero pages left out (the loading VM's RAM is fresh, so zeroes).
 * The same stream goes to a file (snapshot, restore) and, next, to another
 * host (live migration).
 *
 * Save runs with the vCPUs paused (kvm__vcpus_pause) and refuses a VM with
 * a device that has no state section yet, naming it. Load runs on a VM
 * built with the same configuration whose vCPUs have not started: every
 * record is read and checked (framing, CRCs, bounds, each section's tree,
 * unknown, missing or duplicated sections, versions) before any section's
 * state is loaded, and a loader checks its fields before it changes its
 * device; RAM records land in the fresh RAM as they are read. A failed load
 * leaves a VM that must not run: the caller discards it.
 */
#ifndef MINIVMM_VMM_SNAPSHOT_H
#define MINIVMM_VMM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migration/stream.h"
#include "vmm/mem.h"
#include "vmm/util.h"

struct vm;
struct vmm_device;

#define SNAPSHOT_RAM_RUN_MAX (1u << 20) /* bytes of RAM per record */

struct snapshot_stats {
	uint64_t bytes;       /* the stream's size */
	uint64_t ram_bytes;   /* guest RAM written (non-zero pages) */
	uint64_t zero_pages;  /* 4 KiB zero pages (left out, or in 16-byte zero records) */
	unsigned int sections;
};

/*
 * Called after each record of RAM while a pre-copy runs (the guest runs):
 * serves the event loop, paces to a bandwidth; nonzero stops the copy.
 */
struct snapshot_pacer {
	int (*fn)(void *opaque, uint64_t written);
	void *opaque;
	uint8_t *bounce; /* set by snapshot__live_round: records are copied here first */
	uint64_t *scanned; /* set by snapshot__live_round: pages looked at so far */
	/*
	 * set by snapshot__live_round and _finish: the stream's length when fn
	 * last ran; fn runs again once SNAPSHOT_PACE_BYTES more were written
	 * (not after every record: a round of scattered dirty pages is
	 * thousands of one-page records)
	 */
	uint64_t *paced;
};
#define SNAPSHOT_PACE_BYTES (64u << 10)

/*
 * Pre-copy ("live") saving, docs/migration.md:
 *   begin    header, the sections that check the destination (the machine),
 *            a confirm record (the caller then reads the destination's
 *            MVMM-READY or refusal)
 *   log_start KVM's dirty log and minivmm's own on (after the devices that
 *            cannot move left: a VF's DMA is not in any log), before round 0
 *   round    first: all of RAM (zero pages left out); then: the pending
 *            pages (dirtied since they were last sent; zero ones as zero
 *            records); *pages says how many went
 *   pending  takes the dirty logs into the pending set without sending:
 *            how many pages the next round (or the pause) has to send
 *   finish   (vCPUs paused by the caller) the devices pause, the last dirty
 *            pages, every other section, the end; the devices resume
 *   end      the dirty logs off, the writer released (always, after begin)
 */
struct snapshot_live {
	struct vm *vm;
	struct mig_writer *w;
	uint64_t *bits[MEM_MAX_REGIONS];
	uint8_t *bounce;  /* SNAPSHOT_RAM_RUN_MAX bytes: one record's copy of running RAM */
	bool logging;
	bool devices_paused; /* by a successful live_finish, until live_resume_devices */
	uint64_t scanned; /* pages looked at in this round (progress) */
	struct snapshot_stats st;
};
int snapshot__live_begin(struct snapshot_live *s, struct vm *vm, struct mig_writer *w,
			 char *err, size_t errlen) __must_check;
int snapshot__live_log_start(struct snapshot_live *s, char *err, size_t errlen) __must_check;
int snapshot__live_pending(struct snapshot_live *s, uint64_t *pending, char *err, size_t errlen)
	__must_check;
int snapshot__live_round(struct snapshot_live *s, bool first, const struct snapshot_pacer *p,
			 uint64_t *pages, char *err, size_t errlen) __must_check;
/*
 * p, when given, is called after each record of the paused transfer (its
 * bounce and scanned are not used): a non-zero return stops the transfer
 * with that error (a cancel). The guest stays paused meanwhile. On success
 * the devices stay paused too (no request of the guest's runs here once its
 * state has left: a kick taken while paused is the destination's to serve,
 * and a write run here as well could land after the destination's own);
 * snapshot__live_resume_devices undoes it for a rollback. On failure they
 * run again.
 */
int snapshot__live_finish(struct snapshot_live *s, const struct snapshot_pacer *p,
			  uint64_t *pages, char *err, size_t errlen) __must_check;
/* a rollback after a successful live_finish: the devices run again (kicks taken meanwhile served) */
void snapshot__live_resume_devices(struct snapshot_live *s);
void snapshot__live_end(struct snapshot_live *s);

/*
 * every device can be saved: 0, or -ENOTSUP naming the one that cannot.
 * leaves(d, opaque), when given, says which devices the caller takes out
 * of the VM before saving (a failover VF): those are not checked.
 */
int snapshot__check(struct vm *vm, bool (*leaves)(struct vmm_device *d, void *opaque),
		    void *opaque, char *err, size_t errlen) __must_check;
/* 0, or -errno with the reason in err (a device without state: -ENOTSUP) */
int snapshot__save(struct vm *vm, int fd, struct snapshot_stats *st, char *err, size_t errlen)
	__must_check;
/* 0, or -errno with the reason in err */
int snapshot__load(struct vm *vm, int fd, char *err, size_t errlen) __must_check;
/*
 * A plan (migrate --plan): the sections that check the destination (the
 * machine's configuration), no RAM, written without pausing anything.
 */
int snapshot__save_plan(struct vm *vm, int fd, char *err, size_t errlen) __must_check;
/*
 * A migration's connection fd: snapshot__load, and a plan is checked
 * (nothing loaded) with *plan set; a confirm record is answered MVMM-READY
 * on fd once the sections before it passed their checks. idle (may be NULL)
 * runs between records (the destination serves its control socket then).
 */
int snapshot__load_or_plan(struct vm *vm, int fd, bool *plan,
			   void (*idle)(void *opaque, uint64_t consumed), void *idle_opaque,
			   char *err, size_t errlen)
	__must_check;

/* true when the 4 KiB page at p is all zero (pure) */
bool snapshot__page_is_zero(const void *p);

#endif
