// SPDX-License-Identifier: MIT
/* When pre-copy stops iterating: see precopy.h */
#include "migration/precopy.h"

#include <stdbool.h>
#include <string.h>

#define MIG_PAGE_BYTES 4096.0

void mig__precopy_init(struct mig_precopy *p, unsigned int downtime_ms)
{
	memset(p, 0, sizeof(*p));
	p->downtime_ms = downtime_ms;
}

enum mig_precopy_verdict mig__precopy_judge(struct mig_precopy *p, uint64_t pending_pages,
					    double bw_bps)
{
	bool first = p->rounds == 0;

	p->rounds++;
	if (!pending_pages)
		p->expected_ms = 0;
	else if (bw_bps > 0)
		p->expected_ms = (double)pending_pages * MIG_PAGE_BYTES / bw_bps * 1e3;
	else
		p->expected_ms = -1; /* not known */
	if (p->expected_ms >= 0 && p->expected_ms <= (double)p->downtime_ms)
		return MIG_PRECOPY_CONVERGED;
	/* a new low: below the lowest so far by an eighth of it */
	if (first || pending_pages < p->best_pages - p->best_pages / 8) {
		p->best_pages = pending_pages;
		p->since_best = 0;
	} else {
		p->since_best++;
	}
	if (p->rounds >= MIG_PRECOPY_MAX_ROUNDS)
		return MIG_PRECOPY_MAX_ROUNDS_DONE;
	if (p->since_best >= MIG_PRECOPY_STALE_ROUNDS)
		return MIG_PRECOPY_NO_PROGRESS;
	return MIG_PRECOPY_AGAIN;
}

const char *mig__precopy_verdict_name(enum mig_precopy_verdict v)
{
	switch (v) {
	case MIG_PRECOPY_AGAIN:
		return "again";
	case MIG_PRECOPY_CONVERGED:
		return "converged";
	case MIG_PRECOPY_NO_PROGRESS:
		return "no-progress";
	case MIG_PRECOPY_MAX_ROUNDS_DONE:
		return "max-rounds";
	}
	return "?";
}
