// SPDX-License-Identifier: MIT
/*
 * migration/live.c, the source's transaction, with fake steps: each step
 * fails in turn, and the VM must end up running on the source (resumed if it
 * was paused, never finished) except when everything succeeded; a cancel is
 * honoured between steps; the destination's refusal is reported with its
 * reason; URIs are parsed or refused.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "migration/live.h"

struct fake {
	int fail_at;             /* enum mig_live_state of the step that fails, -1 none */
	int cancel_after;        /* cancel once this many steps ran, -1 never */
	const char *ack;
	int steps, connects, pauses, transfers, acks, commits, resumes, finishes, disconnects;
	int unplugs, replugs;
	int resumes_at_replug;   /* resumes counted when replug ran: the guest runs first */
};

static int step(struct fake *f, enum mig_live_state s)
{
	f->steps++;
	return f->fail_at == (int)s ? -EIO : 0;
}

static int f_connect(void *o, char *e, size_t l) { ((struct fake *)o)->connects++; return step(o, MIG_LIVE_CONNECTING); }
static int f_pause(void *o, char *e, size_t l) { ((struct fake *)o)->pauses++; return step(o, MIG_LIVE_PAUSING); }
static int f_transfer(void *o, char *e, size_t l) { ((struct fake *)o)->transfers++; return step(o, MIG_LIVE_TRANSFERRING); }
static int f_ack(void *o, char *ack, size_t al, char *e, size_t l)
{
	struct fake *f = o;

	f->acks++;
	snprintf(ack, al, "%s", f->ack ? f->ack : MIG_ACK_LOADED);
	return step(o, MIG_LIVE_AWAITING_ACK);
}
static int f_commit(void *o, char *e, size_t l) { ((struct fake *)o)->commits++; return step(o, MIG_LIVE_COMMITTING); }
static void f_resume(void *o) { ((struct fake *)o)->resumes++; }
static void f_finish(void *o) { ((struct fake *)o)->finishes++; }
static void f_disconnect(void *o) { ((struct fake *)o)->disconnects++; }
static int f_precopy(void *o, char *e, size_t l) { return step(o, MIG_LIVE_PRECOPY); }
static int f_unplug(void *o, char *e, size_t l) { ((struct fake *)o)->unplugs++; return step(o, MIG_LIVE_UNPLUGGING); }
static void f_replug(void *o, char *e, size_t l)
{
	struct fake *f = o;

	f->replugs++;
	f->resumes_at_replug = f->resumes;
	snprintf(e, l, "; vf0 plugged back");
}
static bool f_cancel(void *o)
{
	struct fake *f = o;

	return f->cancel_after >= 0 && f->steps >= f->cancel_after;
}

static const struct mig_live_ops ops = {
	.connect = f_connect, .pause = f_pause, .transfer = f_transfer, .await_ack = f_ack,
	.commit = f_commit, .resume = f_resume, .finish = f_finish, .disconnect = f_disconnect,
	.cancel = f_cancel,
};

/* the same, with a device that leaves the guest before the pause (a failover VF) */
static const struct mig_live_ops ops_unplug = {
	.connect = f_connect, .unplug = f_unplug, .replug = f_replug, .precopy = f_precopy,
	.pause = f_pause,
	.transfer = f_transfer, .await_ack = f_ack, .commit = f_commit, .resume = f_resume,
	.finish = f_finish, .disconnect = f_disconnect, .cancel = f_cancel,
};

Test(live, everything_succeeds)
{
	struct fake f = { .fail_at = -1, .cancel_after = -1 };
	struct mig_live_result r;

	cr_assert_eq(mig__live_run(&ops, &f, &r), 0);
	cr_assert_eq(r.state, MIG_LIVE_COMPLETED);
	cr_assert_eq(f.finishes, 1, "the source stops");
	cr_assert_eq(f.resumes, 0, "and is not resumed");
	cr_assert_eq(f.commits, 1);
	cr_assert_eq(f.disconnects, 1);
}

Test(live, each_step_fails_in_turn)
{
	static const struct {
		enum mig_live_state at;
		enum mig_live_state end;
		int resumes;
	} cases[] = {
		{ MIG_LIVE_CONNECTING, MIG_LIVE_FAILED, 0 },
		{ MIG_LIVE_PAUSING, MIG_LIVE_FAILED, 0 }, /* pause undoes its own partial work */
		{ MIG_LIVE_TRANSFERRING, MIG_LIVE_ROLLED_BACK, 1 },
		{ MIG_LIVE_AWAITING_ACK, MIG_LIVE_ROLLED_BACK, 1 },
		{ MIG_LIVE_COMMITTING, MIG_LIVE_ROLLED_BACK, 1 },
	};

	for (unsigned int i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake f = { .fail_at = (int)cases[i].at, .cancel_after = -1 };
		struct mig_live_result r;

		cr_assert_eq(mig__live_run(&ops, &f, &r), -EIO, "step %s", mig__live_state_name(cases[i].at));
		cr_assert_eq(r.state, cases[i].end, "failing %s ends %s", mig__live_state_name(cases[i].at),
			     mig__live_state_name(r.state));
		cr_assert_eq(r.failed, cases[i].at);
		cr_assert_eq(f.finishes, 0, "failing %s: the source must not stop",
			     mig__live_state_name(cases[i].at));
		cr_assert_eq(f.resumes, cases[i].resumes, "failing %s: %d resumes",
			     mig__live_state_name(cases[i].at), f.resumes);
		cr_assert_eq(f.disconnects, cases[i].at == MIG_LIVE_CONNECTING ? 0 : 1);
		cr_assert(r.reason[0], "a reason is given");
	}
}

Test(live, unplugged_devices_come_back_on_every_failure_after_the_unplug)
{
	static const struct {
		enum mig_live_state at;
		int unplugs, replugs, resumes;
	} cases[] = {
		{ MIG_LIVE_CONNECTING, 0, 0, 0 },   /* nothing left the guest yet */
		{ MIG_LIVE_UNPLUGGING, 1, 0, 0 },   /* unplug undoes its own partial work */
		{ MIG_LIVE_PRECOPY, 1, 1, 0 },      /* the guest never stopped */
		{ MIG_LIVE_PAUSING, 1, 1, 0 },
		{ MIG_LIVE_TRANSFERRING, 1, 1, 1 },
		{ MIG_LIVE_AWAITING_ACK, 1, 1, 1 },
		{ MIG_LIVE_COMMITTING, 1, 1, 1 },
	};

	for (unsigned int i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake f = { .fail_at = (int)cases[i].at, .cancel_after = -1 };
		struct mig_live_result r;
		const char *name = mig__live_state_name(cases[i].at);

		cr_assert_eq(mig__live_run(&ops_unplug, &f, &r), -EIO, "step %s", name);
		cr_assert_eq(r.failed, cases[i].at);
		cr_assert_eq(r.state, cases[i].at <= MIG_LIVE_UNPLUGGING ? MIG_LIVE_FAILED :
				      MIG_LIVE_ROLLED_BACK, "failing %s ends %s", name,
			     mig__live_state_name(r.state));
		cr_assert_eq(f.unplugs, cases[i].unplugs, "failing %s: %d unplugs", name, f.unplugs);
		cr_assert_eq(f.replugs, cases[i].replugs, "failing %s: %d replugs", name, f.replugs);
		cr_assert_eq(f.resumes, cases[i].resumes, "failing %s: %d resumes", name, f.resumes);
		cr_assert_eq(f.finishes, 0);
		if (f.replugs) {
			cr_assert_eq(f.resumes_at_replug, cases[i].resumes,
				     "failing %s: the guest runs again before the replug", name);
			cr_assert(strstr(r.reason, "; vf0 plugged back"), "the replug adds to the reason: %s",
				  r.reason);
		}
	}
}

Test(live, unplug_then_success_never_replugs)
{
	struct fake f = { .fail_at = -1, .cancel_after = -1 };
	struct mig_live_result r;

	cr_assert_eq(mig__live_run(&ops_unplug, &f, &r), 0);
	cr_assert_eq(f.unplugs, 1);
	cr_assert_eq(f.replugs, 0, "the VF is the destination's business now");
	cr_assert_eq(f.finishes, 1);
	cr_assert_eq(f.steps, 7, "connect, unplug, pre-copy, pause, transfer, ack, commit");
}

Test(live, the_destination_refuses)
{
	struct fake f = { .fail_at = -1, .cancel_after = -1,
			  .ack = MIG_ACK_REFUSED " the saved VM has 64 MiB of memory, this one 32 MiB" };
	struct mig_live_result r;

	cr_assert_eq(mig__live_run(&ops, &f, &r), -EREMOTEIO);
	cr_assert_eq(r.state, MIG_LIVE_ROLLED_BACK);
	cr_assert_eq(f.commits, 0, "never told to start");
	cr_assert_eq(f.resumes, 1);
	cr_assert_eq(f.finishes, 0);
	cr_assert(strstr(r.reason, "the destination refused the VM: the saved VM has 64 MiB"), "%s", r.reason);
}

Test(live, a_cancel_between_steps)
{
	for (int after = 1; after <= 3; after++) {
		struct fake f = { .fail_at = -1, .cancel_after = after };
		struct mig_live_result r;

		cr_assert_eq(mig__live_run(&ops, &f, &r), -ECANCELED);
		cr_assert_eq(f.finishes, 0);
		cr_assert_eq(f.resumes, after >= 2 ? 1 : 0, "cancel after %d steps: resumed %d", after, f.resumes);
		cr_assert_str_eq(r.reason, "cancelled");
	}
}

Test(live, uris)
{
	struct mig_uri u;
	char err[256];

	cr_assert_eq(mig__parse_uri("tcp:10.0.0.2:4444", &u, err, sizeof(err)), 0);
	cr_assert_str_eq(u.host, "10.0.0.2");
	cr_assert_str_eq(u.port, "4444");
	cr_assert_eq(mig__parse_uri("tcp:[fe80::1]:4444", &u, err, sizeof(err)), 0);
	cr_assert_str_eq(u.host, "fe80::1");
	cr_assert_eq(mig__parse_uri("unix:/run/m.sock", &u, err, sizeof(err)), 0);
	cr_assert(u.unix_socket);
	cr_assert_str_eq(u.path, "/run/m.sock");
	cr_assert_eq(mig__parse_uri("tcp:host", &u, err, sizeof(err)), -EINVAL);
	cr_assert_eq(mig__parse_uri("tcp:host:0", &u, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "1 to 65535"), "%s", err);
	cr_assert_eq(mig__parse_uri("tcp::4444", &u, err, sizeof(err)), -EINVAL);
	cr_assert_eq(mig__parse_uri("udp:x:1", &u, err, sizeof(err)), -EINVAL);
	cr_assert_eq(mig__parse_uri("unix:", &u, err, sizeof(err)), -EINVAL);
}
