/* SPDX-License-Identifier: MIT */
/*
 * The migration's transport (docs/migration.md): a stream socket from the
 * source to the destination (TCP or a Unix socket), carrying the stream of
 * vmm/snapshot.c, then the destination's one-line answer the other way
 * (migration/live.h: MIG_ACK_LOADED or MIG_ACK_REFUSED <reason>).
 */
#ifndef MINIVMM_VMM_MIGRATE_H
#define MINIVMM_VMM_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

#include "migration/live.h"
#include "vmm/util.h"

/* source: a connected socket fd, or -errno with the reason in err */
int migrate__connect(const struct mig_uri *u, int timeout_ms, char *err, size_t errlen) __must_check;
/* tcp:HOST:PORT whose HOST resolves only to loopback addresses (unix: counts as local) */
bool migrate__is_local(const struct mig_uri *u);
/*
 * Destination, in three steps (it serves its control socket while it waits
 * and takes several connections, plans, on one socket): listen (the
 * listening fd, or -errno with err), accept_one when lfd is readable (the
 * connection, TCP_NODELAY for tcp), unlisten (closes lfd and removes a unix
 * socket's path).
 */
int migrate__listen(const struct mig_uri *u, char *err, size_t errlen) __must_check;
int migrate__accept_one(int lfd, const struct mig_uri *u, char *err, size_t errlen) __must_check;
void migrate__unlisten(int lfd, const struct mig_uri *u);
/* source: the destination's answer line within timeout_ms; 0 or -errno (-ETIMEDOUT, -ECONNRESET) */
int migrate__read_ack(int fd, int timeout_ms, char *ack, size_t len) __must_check;
/*
 * the same, waiting through wait(opaque, fd, timeout_ms) instead of a plain
 * poll: it returns 0 once fd is readable, -ETIMEDOUT when timeout_ms passed,
 * or another -errno that ends the read (a cancel). The source's VMM thread
 * serves its event loop there while the destination takes its time.
 */
int migrate__read_ack_wait(int fd, int timeout_ms, char *ack, size_t len,
			   int (*wait)(void *opaque, int fd, int timeout_ms), void *opaque)
	__must_check;
/*
 * destination, after a refusal: ends its side and reads (and drops) what
 * the source still sends, until it closes or timeout_ms pass, so that the
 * close does not reset the connection before the source read the answer
 */
void migrate__drain(int fd, int timeout_ms);
/* destination: the answer line ("\n" added); 0 or -errno */
int migrate__write_ack(int fd, const char *line) __must_check;

#endif
