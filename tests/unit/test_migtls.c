// SPDX-License-Identifier: MIT
/*
 * vmm/migtls.c: the migration channel's TLS, for real (GnuTLS) over a
 * socketpair standing in for the network: key files are checked with the
 * reason; the same key carries bytes both ways intact; another key fails the
 * handshake on both ends before a byte of plaintext passes, with the reason
 * kept for the caller; a byte altered on the wire drops the connection.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/migtls.h"

static char dir[] = "/tmp/minivmm-test-migtls.XXXXXX";

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN); /* as minivmm's main() does */
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(migtls, .init = setup, .fini = teardown);

static const char *key_file(const char *name, const char *line)
{
	static char path[4][512];
	static int n;
	char *p = path[n++ % 4];
	FILE *f;

	snprintf(p, 512, "%s/%s", dir, name);
	f = fopen(p, "w");
	cr_assert_not_null(f);
	fprintf(f, "%s\n", line);
	fclose(f);
	return p;
}

static struct migtls_creds *load(const char *line)
{
	struct migtls_creds *c = NULL;
	char err[512];

	cr_assert_eq(migtls__creds_load(&c, key_file("k", line), NULL, err, sizeof(err)), 0, "%s",
		     err);
	return c;
}

static const char KEY_A[] = "mig:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char KEY_B[] = "mig:ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

Test(migtls, key_files_are_checked_with_the_reason)
{
	struct migtls_creds *c = NULL;
	char err[512];

	cr_assert_eq(migtls__creds_load(&c, key_file("a", "no-colon-here"), NULL, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "expected IDENTITY:HEXKEY"), "%s", err);
	cr_assert_eq(migtls__creds_load(&c, key_file("b", "id:0011"), NULL, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "the key must be 16 to 64 bytes in hex (4 hex digits given)"), "%s", err);
	cr_assert_eq(migtls__creds_load(&c, key_file("c", "id:zz0102030405060708090a0b0c0d0e0f"), NULL,
					err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "not hex"), "%s", err);
	cr_assert_eq(migtls__creds_load(&c, key_file("d", ":000102030405060708090a0b0c0d0e0f"), NULL,
					err, sizeof(err)),
		     -EINVAL, "an empty identity");
	cr_assert_eq(migtls__creds_load(&c, "/nonexistent/key", NULL, err, sizeof(err)), -ENOENT);
	cr_assert_eq(migtls__creds_load(&c, NULL, NULL, err, sizeof(err)), -EINVAL);
	cr_assert_eq(migtls__creds_load(&c, key_file("e", KEY_A), dir, err, sizeof(err)), -EINVAL,
		     "a key and certificates at once");
	cr_assert_eq(migtls__creds_load(&c, NULL, dir, err, sizeof(err)), -EINVAL,
		     "a directory without ca.pem");
	cr_assert(strstr(err, "ca.pem"), "%s", err);
	cr_assert_null(c);
	c = load(KEY_A);
	cr_assert(strstr(migtls__creds_describe(c), "identity 'mig'"), "%s", migtls__creds_describe(c));
	migtls__creds_free(c);
}

/* both ends of a "network" (a socketpair), each wrapped by its own creds */
static void wrap_pair(struct migtls_creds *cli, struct migtls_creds *srv, int *a, int *b)
{
	char err[512];
	int net[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, net), 0);
	*a = migtls__wrap(cli, net[0], false, NULL, 5000, err, sizeof(err));
	cr_assert_geq(*a, 0, "%s", err);
	*b = migtls__wrap(srv, net[1], true, NULL, 5000, err, sizeof(err));
	cr_assert_geq(*b, 0, "%s", err);
}

static ssize_t read_some(int fd, void *buf, size_t len, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, timeout_ms) <= 0)
		return -ETIMEDOUT;
	return read(fd, buf, len);
}

Test(migtls, the_same_key_carries_bytes_both_ways)
{
	struct migtls_creds *c = load(KEY_A);
	static uint8_t out[1 << 20], in[1 << 20];
	size_t got = 0, i;
	int a, b;

	for (i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 7 + (i >> 9));
	wrap_pair(c, c, &a, &b);
	/* 1 MiB one way, in pieces, while the other end reads */
	for (i = 0; i < sizeof(out);) {
		ssize_t n = write(a, out + i, sizeof(out) - i < 65536 ? sizeof(out) - i : 65536);

		cr_assert_gt(n, 0);
		i += (size_t)n;
		while (got < i) {
			ssize_t r = read_some(b, in + got, sizeof(in) - got, 5000);

			cr_assert_gt(r, 0, "read: %zd", r);
			got += (size_t)r;
		}
	}
	cr_assert_eq(memcmp(in, out, sizeof(out)), 0, "the bytes arrived intact");
	cr_assert(migtls__authenticated(a) && migtls__authenticated(b));
	/* and an answer line back */
	cr_assert_eq(write(b, "MVMM-LOADED\n", 12), 12);
	memset(in, 0, 16);
	cr_assert_eq(read_some(a, in, 16, 5000), 12);
	cr_assert_str_eq((char *)in, "MVMM-LOADED\n");
	/* closing one end closes the other's (after TLS's close_notify) */
	close(a);
	cr_assert_eq(read_some(b, in, 16, 5000), 0, "the peer's close arrives as the end");
	close(b);
	migtls__creds_free(c);
}

Test(migtls, another_key_fails_the_handshake_before_any_byte)
{
	struct migtls_creds *ca = load(KEY_A), *cb = load(KEY_B);
	char buf[64], why[320];
	int a, b;

	wrap_pair(ca, cb, &a, &b);
	/* the source writes at once: it waits in the pair until the handshake, which fails */
	cr_assert_eq(write(a, "MVMM stream header", 18), 18);
	cr_assert_eq(read_some(b, buf, sizeof(buf), 5000), 0, "the destination reads nothing: the end");
	cr_assert_leq(read_some(a, buf, sizeof(buf), 5000), 0, "the source's side ends too");
	cr_assert_not(migtls__authenticated(b));
	cr_assert_eq(migtls__error(b, why, sizeof(why)), 0);
	cr_assert(strstr(why, "TLS handshake failed"), "%s", why);
	cr_assert(strstr(why, "same --migration-psk"), "%s", why);
	cr_assert_eq(migtls__error(a, why, sizeof(why)), 0);
	cr_assert(strstr(why, "TLS handshake failed"), "%s", why);
	close(a);
	close(b);
	migtls__creds_free(ca);
	migtls__creds_free(cb);
}

/* a "wire" that relays one direction and inverts one byte at `at` */
struct tamper {
	int from, to;
	size_t at;
};

static void *tamper_fn(void *arg)
{
	struct tamper *t = arg;
	uint8_t buf[65536];
	size_t off = 0;
	ssize_t n;

	while ((n = read(t->from, buf, sizeof(buf))) > 0) {
		if (t->at >= off && t->at < off + (size_t)n)
			buf[t->at - off] ^= 0xff;
		off += (size_t)n;
		if (write(t->to, buf, (size_t)n) != n)
			break;
	}
	shutdown(t->to, SHUT_WR);
	return NULL;
}

Test(migtls, an_altered_record_drops_the_connection)
{
	struct migtls_creds *c = load(KEY_A);
	static uint8_t out[256 * 1024], in[256 * 1024];
	struct tamper fwd, back;
	pthread_t t1, t2;
	char err[512], why[320];
	int n1[2], n2[2], a, b;
	size_t got = 0;
	ssize_t r;

	memset(out, 0x5a, sizeof(out));
	/* client <-> n1 <-> [tamper] <-> n2 <-> server */
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, n1), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, n2), 0);
	fwd = (struct tamper){ .from = n1[1], .to = n2[0], .at = 100000 };
	back = (struct tamper){ .from = n2[0], .to = n1[1], .at = (size_t)-1 };
	cr_assert_eq(pthread_create(&t1, NULL, tamper_fn, &fwd), 0);
	cr_assert_eq(pthread_create(&t2, NULL, tamper_fn, &back), 0);
	a = migtls__wrap(c, n1[0], false, NULL, 5000, err, sizeof(err));
	cr_assert_geq(a, 0, "%s", err);
	b = migtls__wrap(c, n2[1], true, NULL, 5000, err, sizeof(err));
	cr_assert_geq(b, 0, "%s", err);
	cr_assert_eq(write(a, out, sizeof(out)), (ssize_t)sizeof(out));
	while ((r = read_some(b, in + got, sizeof(in) - got, 5000)) > 0)
		got += (size_t)r;
	cr_assert_eq(r, 0, "the connection ends");
	cr_assert_lt(got, sizeof(out), "the altered record and what follows never arrive");
	cr_assert_lt(got, 100000, "what arrived is from before the altered byte: %zu", got);
	cr_assert_eq(memcmp(in, out, got), 0, "and it is intact");
	cr_assert_eq(migtls__error(b, why, sizeof(why)), 0);
	cr_assert(strstr(why, "did not authenticate"), "%s", why);
	close(a);
	close(b);
	pthread_join(t1, NULL);
	close(n2[0]);
	pthread_join(t2, NULL);
	close(n1[1]);
	migtls__creds_free(c);
}
