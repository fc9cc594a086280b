/* SPDX-License-Identifier: MIT */
/*
 * TLS 1.3 for the migration channel (GnuTLS), docs/migration.md "The
 * channel": a pre-shared key or X.509 certificates, on both ends.
 *
 * The stream code keeps working on a plain socket: migtls__wrap() takes a
 * connected socket and returns one end of a socketpair; a relay thread owns
 * the real socket, runs the handshake, and moves bytes between the pair and
 * the TLS session both ways. Whatever the relay cannot pass (a failed
 * handshake, a record that does not authenticate, a peer that vanished) ends
 * the plaintext side as if the connection closed, after the reason was
 * logged and kept (migtls__error) for the caller's own message. Nothing the
 * peer sends reaches the stream reader before the handshake authenticated it.
 *
 * Threads: creds are built at start-up and read-only after; each wrapped
 * connection has its own relay thread, which ends once the caller closed its
 * end of the pair.
 */
#ifndef MINIVMM_VMM_MIGTLS_H
#define MINIVMM_VMM_MIGTLS_H

#include <stdbool.h>
#include <stddef.h>

#include "vmm/util.h"

struct migtls_creds;

/*
 * psk_file: one line "IDENTITY:HEXKEY" (GnuTLS psktool's format; the key at
 * least 16 bytes). x509_dir: ca.pem (the authority both ends trust),
 * cert.pem and key.pem (this host's certificate, used as server and as
 * client: both ends authenticate). Exactly one of them. 0 or -errno with err.
 */
int migtls__creds_load(struct migtls_creds **out, const char *psk_file, const char *x509_dir,
		       char *err, size_t errlen) __must_check;
void migtls__creds_free(struct migtls_creds *c);
/* "PSK identity NAME" or "X.509 (DIR)": for the logs */
const char *migtls__creds_describe(const struct migtls_creds *c);

/*
 * Wraps the connected socket sock (owned by the relay from here on, even on
 * failure): server is the destination's side; peer_host (the source's: the
 * name its certificate must carry; NULL on the server) is checked against
 * an X.509 peer. Returns the plaintext fd (close it when done) or -errno.
 * The handshake runs in the relay, bounded by timeout_ms: writes to the
 * returned fd wait in the pair's buffer until it completes.
 */
int migtls__wrap(const struct migtls_creds *c, int sock, bool server, const char *peer_host,
		 int timeout_ms, char *err, size_t errlen) __must_check;
/*
 * The reason the relay behind fd (a migtls__wrap result, still open) ended
 * the connection, if it did: 0 with the reason in buf, or -ENOENT.
 */
int migtls__error(int fd, char *buf, size_t len);

/* the handshake behind fd (a migtls__wrap result) completed: the peer is authenticated */
bool migtls__authenticated(int fd);

/* the relay's figures for fd (bytes of plaintext each way); -ENOENT if none */
int migtls__counters(int fd, unsigned long long *sent, unsigned long long *received);

#endif
