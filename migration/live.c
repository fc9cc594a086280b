// SPDX-License-Identifier: MIT
/* The source side of a migration as one transaction: see live.h for the states. */
#include "migration/live.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *mig__live_state_name(enum mig_live_state s)
{
	switch (s) {
	case MIG_LIVE_CONNECTING: return "connecting";
	case MIG_LIVE_UNPLUGGING: return "unplugging";
	case MIG_LIVE_PRECOPY: return "pre-copy";
	case MIG_LIVE_PAUSING: return "pausing";
	case MIG_LIVE_TRANSFERRING: return "transferring";
	case MIG_LIVE_AWAITING_ACK: return "awaiting the destination";
	case MIG_LIVE_COMMITTING: return "committing";
	case MIG_LIVE_COMPLETED: return "completed";
	case MIG_LIVE_FAILED: return "failed";
	case MIG_LIVE_ROLLED_BACK: return "rolled back";
	}
	return "?";
}

static void live_enter(const struct mig_live_ops *ops, void *opaque, enum mig_live_state s)
{
	if (ops->progress)
		ops->progress(opaque, s);
}

static bool live_cancelled(const struct mig_live_ops *ops, void *opaque, struct mig_live_result *res,
			   enum mig_live_state at)
{
	if (!ops->cancel || !ops->cancel(opaque))
		return false;
	res->failed = at;
	res->error = -ECANCELED;
	snprintf(res->reason, sizeof(res->reason), "cancelled");
	return true;
}

int mig__live_run(const struct mig_live_ops *ops, void *opaque, struct mig_live_result *res)
{
	char ack[MIG_ACK_MAX] = "";
	bool connected = false, unplugged = false, paused = false;
	int ret;

	memset(res, 0, sizeof(*res));
	/* CONNECTING */
	res->failed = MIG_LIVE_CONNECTING;
	live_enter(ops, opaque, MIG_LIVE_CONNECTING);
	ret = ops->connect(opaque, res->reason, sizeof(res->reason));
	if (ret)
		goto fail;
	connected = true;
	if (live_cancelled(ops, opaque, res, MIG_LIVE_CONNECTING)) {
		ret = res->error;
		goto fail;
	}
	/* UNPLUGGING */
	if (ops->unplug) {
		res->failed = MIG_LIVE_UNPLUGGING;
		live_enter(ops, opaque, MIG_LIVE_UNPLUGGING);
		ret = ops->unplug(opaque, res->reason, sizeof(res->reason));
		if (ret)
			goto fail; /* unplug undoes its own partial work */
		unplugged = true;
		if (live_cancelled(ops, opaque, res, MIG_LIVE_UNPLUGGING)) {
			ret = res->error;
			goto fail;
		}
	}
	/* PRECOPY */
	if (ops->precopy) {
		res->failed = MIG_LIVE_PRECOPY;
		live_enter(ops, opaque, MIG_LIVE_PRECOPY);
		ret = ops->precopy(opaque, res->reason, sizeof(res->reason));
		if (ret)
			goto rollback;
		if (live_cancelled(ops, opaque, res, MIG_LIVE_PRECOPY)) {
			ret = res->error;
			goto rollback;
		}
	}
	/* PAUSING */
	res->failed = MIG_LIVE_PAUSING;
	live_enter(ops, opaque, MIG_LIVE_PAUSING);
	ret = ops->pause(opaque, res->reason, sizeof(res->reason));
	if (ret) {
		if (ops->precopy)
			goto rollback; /* pre-copy's part of the stream left */
		goto fail; /* pause undoes its own partial work */
	}
	paused = true;
	if (live_cancelled(ops, opaque, res, MIG_LIVE_PAUSING)) {
		ret = res->error;
		goto fail;
	}
	/* TRANSFERRING */
	res->failed = MIG_LIVE_TRANSFERRING;
	live_enter(ops, opaque, MIG_LIVE_TRANSFERRING);
	ret = ops->transfer(opaque, res->reason, sizeof(res->reason));
	if (ret)
		goto rollback;
	if (live_cancelled(ops, opaque, res, MIG_LIVE_TRANSFERRING)) {
		ret = res->error;
		goto rollback;
	}
	/* AWAITING_ACK */
	res->failed = MIG_LIVE_AWAITING_ACK;
	live_enter(ops, opaque, MIG_LIVE_AWAITING_ACK);
	ret = ops->await_ack(opaque, ack, sizeof(ack), res->reason, sizeof(res->reason));
	if (ret)
		goto rollback;
	if (strcmp(ack, MIG_ACK_LOADED)) {
		const char *why = ack;

		if (!strncmp(ack, MIG_ACK_REFUSED, strlen(MIG_ACK_REFUSED)))
			why = ack + strlen(MIG_ACK_REFUSED) + (ack[strlen(MIG_ACK_REFUSED)] == ' ');
		snprintf(res->reason, sizeof(res->reason), "the destination refused the VM: %.400s",
			 why[0] ? why : "(no reason given)");
		ret = -EREMOTEIO;
		goto rollback;
	}
	/* COMMITTING */
	res->failed = MIG_LIVE_COMMITTING;
	live_enter(ops, opaque, MIG_LIVE_COMMITTING);
	ret = ops->commit(opaque, res->reason, sizeof(res->reason));
	if (ret)
		goto rollback;
	/* COMPLETED: the guest is the destination's now */
	ops->disconnect(opaque);
	ops->finish(opaque);
	res->state = MIG_LIVE_COMPLETED;
	res->error = 0;
	live_enter(ops, opaque, MIG_LIVE_COMPLETED);
	return 0;

rollback:
	res->state = MIG_LIVE_ROLLED_BACK;
	goto undo;
fail:
	res->state = MIG_LIVE_FAILED;
undo:
	if (!res->reason[0])
		snprintf(res->reason, sizeof(res->reason), "%s", strerror(ret < 0 ? -ret : EIO));
	res->error = ret < 0 ? ret : -EIO;
	if (connected)
		ops->disconnect(opaque);
	if (paused)
		ops->resume(opaque);
	if (unplugged && ops->replug) {
		size_t len = strlen(res->reason);

		ops->replug(opaque, res->reason + len, sizeof(res->reason) - len);
	}
	live_enter(ops, opaque, res->state);
	return res->error;
}

int mig__parse_uri(const char *uri, struct mig_uri *out, char *err, size_t errlen)
{
	const char *rest, *colon;
	size_t hlen;

	memset(out, 0, sizeof(*out));
	if (!strncmp(uri, "unix:", 5)) {
		rest = uri + 5;
		if (!rest[0] || strlen(rest) >= sizeof(out->path)) {
			snprintf(err, errlen, "'%s': unix:PATH with a path of 1 to %zu characters", uri,
				 sizeof(out->path) - 1);
			return -EINVAL;
		}
		out->unix_socket = true;
		snprintf(out->path, sizeof(out->path), "%s", rest);
		return 0;
	}
	if (strncmp(uri, "tcp:", 4)) {
		snprintf(err, errlen, "'%s': expected tcp:HOST:PORT or unix:PATH", uri);
		return -EINVAL;
	}
	rest = uri + 4;
	if (rest[0] == '[') {
		const char *close = strchr(rest, ']');

		if (!close || close[1] != ':') {
			snprintf(err, errlen, "'%s': an IPv6 host is written [ADDR]:PORT", uri);
			return -EINVAL;
		}
		hlen = (size_t)(close - rest - 1);
		rest++;
		colon = close + 1;
	} else {
		colon = strrchr(rest, ':');
		if (!colon) {
			snprintf(err, errlen, "'%s': expected tcp:HOST:PORT", uri);
			return -EINVAL;
		}
		hlen = (size_t)(colon - rest);
	}
	if (!hlen || hlen >= sizeof(out->host)) {
		snprintf(err, errlen, "'%s': no host", uri);
		return -EINVAL;
	}
	memcpy(out->host, rest, hlen);
	out->host[hlen] = 0;
	colon++;
	{
		char *end;
		long p = strtol(colon, &end, 10);

		if (!colon[0] || *end || p < 1 || p > 65535) {
			snprintf(err, errlen, "'%s': the port must be 1 to 65535", uri);
			return -EINVAL;
		}
		snprintf(out->port, sizeof(out->port), "%ld", p);
	}
	return 0;
}
