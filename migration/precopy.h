/* SPDX-License-Identifier: MIT */
/*
 * When pre-copy stops iterating (docs/migration.md, "Pre-copy"): after each
 * round the caller gives the backlog (the pages dirtied since they were
 * sent: what the pause would have to send now) and the bandwidth the round
 * measured; the verdict is another round, or one of three ends:
 *
 *   CONVERGED    the backlog crosses within the downtime target at that
 *                bandwidth
 *   NO_PROGRESS  the backlog has not reached a new low, by at least an
 *                eighth of the lowest so far, in MIG_PRECOPY_STALE_ROUNDS
 *                rounds: the guest dirties about as fast as the link
 *                carries, more rounds only resend the same pages (a
 *                plateau that wobbles counts: "did not shrink in a row"
 *                missed it, and a lab migration ran 30 rounds and 100 MB
 *                more for the same pause)
 *   MAX_ROUNDS   MIG_PRECOPY_MAX_ROUNDS rounds, whatever else
 *
 * A guest that converges slowly (the backlog a tenth smaller each round)
 * reaches a new low every other round and goes on. Pure logic: no I/O, no
 * clock (tests/unit/test_precopy.c).
 */
#ifndef MINIVMM_MIGRATION_PRECOPY_H
#define MINIVMM_MIGRATION_PRECOPY_H

#include <stdint.h>

#define MIG_PRECOPY_MAX_ROUNDS 30
#define MIG_PRECOPY_STALE_ROUNDS 4

enum mig_precopy_verdict {
	MIG_PRECOPY_AGAIN,
	MIG_PRECOPY_CONVERGED,
	MIG_PRECOPY_NO_PROGRESS,
	MIG_PRECOPY_MAX_ROUNDS_DONE,
};

struct mig_precopy {
	unsigned int downtime_ms; /* the target */
	unsigned int rounds;      /* rounds judged */
	uint64_t best_pages;      /* the lowest backlog after a round */
	unsigned int since_best;  /* rounds since the backlog last reached a new low */
	double expected_ms;       /* the last round's expected downtime */
};

void mig__precopy_init(struct mig_precopy *p, unsigned int downtime_ms);
/*
 * judges the round just done: pending_pages is the backlog after it,
 * bw_bps the bandwidth in bytes per second (<= 0: not known yet, then only
 * an empty backlog converges)
 */
enum mig_precopy_verdict mig__precopy_judge(struct mig_precopy *p, uint64_t pending_pages,
					    double bw_bps);
const char *mig__precopy_verdict_name(enum mig_precopy_verdict v);

#endif
