/* SPDX-License-Identifier: MIT */
/*
 * The source side of a migration as one transaction (docs/migration.md):
 * the steps are the caller's (ops), the order and every failure edge are
 * here, so that they can be tested without KVM (tests/unit/test_live.c
 * fails each step in turn).
 *
 * States and transitions (protocol version 1; PRECOPY makes it live):
 *
 *   CONNECTING -> UNPLUGGING -> PRECOPY -> PAUSING -> TRANSFERRING -> AWAITING_ACK -> COMMITTING -> COMPLETED
 *       |             |            |          |            |               |               |
 *       +-> FAILED    |            |          |            |               |               |
 *                     +-> FAILED (what it unplugged comes back)            |               |
 *                                  +-> ROLLED_BACK (the guest never stopped)               |
 *                                             +-> ROLLED_BACK (whatever paused resumes)    |
 *                                                          +-> ROLLED_BACK |               |
 *                                                                          +-> ROLLED_BACK (refused, EOF, timeout)
 *                                                                                          +-> ROLLED_BACK (GO not sent)
 *
 *   CONNECTING    connect to the destination (which listens with --incoming;
 *                 a failed connect leaves nothing open: disconnect is not
 *                 called for it),
 *                 which checks the machine's configuration and answers
 *                 MVMM-READY (its own VFs are held) or refuses: nothing has
 *                 changed on the source yet
 *   UNPLUGGING    (optional op) the devices that cannot move leave the guest
 *                 while it runs: a failover VF is ejected, its traffic moves
 *                 to the virtio-net standby. Every later failure plugs them
 *                 back (replug) after the guest resumes: the VM runs on at
 *                 the source as it was.
 *   PRECOPY       (optional op) RAM crosses while the guest runs, in rounds
 *                 of the pages it dirtied meanwhile, until what is left fits
 *                 the downtime target (vmm/snapshot.c, snapshot__live_*)
 *   PAUSING       the vCPUs and the devices stop (nothing in flight)
 *   TRANSFERRING  the stream: what pre-copy left (the last dirty pages) and
 *                 the devices' sections; without pre-copy, all of it
 *   AWAITING_ACK  the destination loads and checks everything, then answers
 *                 one line: "MVMM-LOADED" or "MVMM-REFUSED <reason>"
 *   COMMITTING    the source sends "MVMM-GO": only then does the destination
 *                 start the guest (it never starts one the source may resume)
 *   COMPLETED     finish(): the source stops; the guest runs on the destination
 *   FAILED        nothing left the source: it runs on (resumed if it was paused)
 *   ROLLED_BACK   the stream (or part of it) left, but the destination did not
 *                 take the VM: the source resumes and runs on; the destination
 *                 discards what it loaded (it never ran it)
 *
 * A cancel request (cancel() returns true) is honoured between steps, with
 * the same rollback as a failure there.
 */
#ifndef MINIVMM_MIGRATION_LIVE_H
#define MINIVMM_MIGRATION_LIVE_H

#include <stdbool.h>
#include <stddef.h>

#define MIG_ACK_LOADED "MVMM-LOADED"
#define MIG_ACK_REFUSED "MVMM-REFUSED"
#define MIG_ACK_GO "MVMM-GO"
#define MIG_ACK_PLAN_OK "MVMM-PLAN-OK" /* a plan (migrate --plan) passed the destination's checks */
/* the destination checked the machine (a confirm record) and holds its own resources (its VFs) */
#define MIG_ACK_READY "MVMM-READY"
#define MIG_ACK_MAX 512

enum mig_live_state {
	MIG_LIVE_CONNECTING,
	MIG_LIVE_UNPLUGGING,
	MIG_LIVE_PRECOPY,
	MIG_LIVE_PAUSING,
	MIG_LIVE_TRANSFERRING,
	MIG_LIVE_AWAITING_ACK,
	MIG_LIVE_COMMITTING,
	MIG_LIVE_COMPLETED,
	MIG_LIVE_FAILED,
	MIG_LIVE_ROLLED_BACK,
};

/* every op returns 0 or -errno and may put the reason in err */
struct mig_live_ops {
	int (*connect)(void *opaque, char *err, size_t errlen);
	/* optional: take out what cannot move (undoing its own partial work on failure) */
	int (*unplug)(void *opaque, char *err, size_t errlen);
	/* optional: after a failure past UNPLUGGING, the guest running again; may add to err */
	void (*replug)(void *opaque, char *err, size_t errlen);
	/* optional: RAM while the guest runs (rolled back on failure: part of the stream left) */
	int (*precopy)(void *opaque, char *err, size_t errlen);
	int (*pause)(void *opaque, char *err, size_t errlen);
	int (*transfer)(void *opaque, char *err, size_t errlen);
	/* the destination's answer line (without the newline) in ack */
	int (*await_ack)(void *opaque, char *ack, size_t acklen, char *err, size_t errlen);
	/* tell the destination to start the guest (MIG_ACK_GO) */
	int (*commit)(void *opaque, char *err, size_t errlen);
	void (*resume)(void *opaque);
	void (*finish)(void *opaque);
	void (*disconnect)(void *opaque);
	bool (*cancel)(void *opaque); /* optional */
	void (*progress)(void *opaque, enum mig_live_state s); /* optional */
};

struct mig_live_result {
	enum mig_live_state state;   /* COMPLETED, FAILED or ROLLED_BACK */
	enum mig_live_state failed;  /* the step that failed */
	int error;                   /* its -errno */
	char reason[MIG_ACK_MAX];
};

/* runs the transaction; 0 when COMPLETED, else the failing step's -errno */
int mig__live_run(const struct mig_live_ops *ops, void *opaque, struct mig_live_result *res);
const char *mig__live_state_name(enum mig_live_state s);
/*
 * Parses a migration address: "tcp:HOST:PORT" (HOST may be [v6]) or
 * "unix:PATH". 0, or -EINVAL with the reason in err.
 */
struct mig_uri {
	bool unix_socket;
	char host[256];
	char port[16];
	char path[108];
};
int mig__parse_uri(const char *uri, struct mig_uri *out, char *err, size_t errlen);

#endif
