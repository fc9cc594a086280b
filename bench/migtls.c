// SPDX-License-Identifier: MIT
/*
 * The migration channel's TLS cost (issue 11, docs/migration.md "The
 * channel"): the same bytes through a loopback TCP connection, plain and
 * through vmm/migtls.c's relays (TLS 1.3 with a pre-shared key on both ends,
 * as two minivmm processes use it), one after the other in this process.
 * Prints, for each: MB/s, the process's CPU seconds (user + system, both
 * ends and the relays together) per GB, and the handshake's time; then
 * TLS's throughput and CPU as ratios to plain.
 *
 *   minivmm-bench-migtls [--mib N] [--runs R]
 *
 * The sender writes N MiB (256) of pseudo-random data, the way a guest's
 * RAM records look to a cipher; the receiver reads them. The median of R
 * runs (3) is printed. Exit 0, or 1 on an error.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vmm/migtls.h"

#define CHUNK (256 * 1024)

struct sender {
	int fd;
	size_t bytes;
	const uint8_t *data;
	int ret;
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void *send_fn(void *arg)
{
	struct sender *s = arg;
	size_t off = 0;

	while (off < s->bytes) {
		size_t n = s->bytes - off < CHUNK ? s->bytes - off : CHUNK;
		ssize_t w = send(s->fd, s->data + (off % (16u << 20)), n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			s->ret = -errno;
			return NULL;
		}
		off += (size_t)w;
	}
	shutdown(s->fd, SHUT_WR);
	return NULL;
}

/* a connected loopback TCP pair: *a (the client) and *b (the server) */
static int tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sa, &sl))
		return -errno;
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*a < 0 || connect(*a, (struct sockaddr *)&sa, sizeof(sa)))
		return -errno;
	*b = accept(l, NULL, NULL);
	close(l);
	if (*b < 0)
		return -errno;
	setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

/* one run: MB/s, CPU s per GB and (TLS) the time to the first byte */
static int run(const struct migtls_creds *c, const uint8_t *data, size_t bytes, double *mbps,
	       double *cpu_per_gb, double *first_ms)
{
	struct sender s = { .bytes = bytes, .data = data };
	char err[512];
	uint8_t *buf = malloc(CHUNK);
	double t0, c0, t_first = 0;
	size_t got = 0;
	pthread_t th;
	int a = -1, b = -1, ret;

	if (!buf)
		return -ENOMEM;
	ret = tcp_pair(&a, &b);
	if (ret)
		goto out;
	t0 = now_s();
	c0 = cpu_s();
	if (c) {
		a = migtls__wrap(c, a, false, NULL, 10000, err, sizeof(err));
		b = a < 0 ? -1 : migtls__wrap(c, b, true, NULL, 10000, err, sizeof(err));
		if (a < 0 || b < 0) {
			fprintf(stderr, "minivmm-bench-migtls: %s\n", err);
			ret = -EIO;
			goto out;
		}
	}
	s.fd = a;
	ret = -pthread_create(&th, NULL, send_fn, &s);
	if (ret)
		goto out;
	for (;;) {
		ssize_t n = recv(b, buf, CHUNK, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (!got)
			t_first = now_s();
		got += (size_t)n;
	}
	pthread_join(th, NULL);
	*mbps = (double)got / 1e6 / (now_s() - t0);
	*cpu_per_gb = (cpu_s() - c0) / ((double)got / 1e9);
	*first_ms = (t_first - t0) * 1e3;
	if (got != bytes || s.ret) {
		fprintf(stderr, "minivmm-bench-migtls: %zu of %zu bytes arrived (%s)\n", got, bytes,
			strerror(s.ret ? -s.ret : EIO));
		ret = -EIO;
	}
	close(a);
	close(b);
out:
	free(buf);
	return ret;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
	char path[] = "/tmp/minivmm-bench-migtls.XXXXXX", err[512];
	double mbps[2][16], cpu[2][16], first[2][16];
	unsigned int runs = 3, mib = 256, i, k;
	struct migtls_creds *c;
	uint8_t *data;
	FILE *f;
	int fd;

	for (i = 1; i < (unsigned int)argc; i++) {
		if (!strcmp(argv[i], "--mib") && i + 1 < (unsigned int)argc)
			mib = (unsigned int)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--runs") && i + 1 < (unsigned int)argc)
			runs = (unsigned int)atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: minivmm-bench-migtls [--mib N] [--runs R (1-16)]\n");
			return 1;
		}
	}
	if (!mib || !runs || runs > 16)
		return 1;
	data = malloc(16u << 20);
	fd = mkstemp(path);
	if (!data || fd < 0)
		return 1;
	srand(1);
	for (i = 0; i < (16u << 20); i++)
		data[i] = (uint8_t)rand();
	f = fdopen(fd, "w");
	fprintf(f, "bench:");
	for (i = 0; i < 32; i++)
		fprintf(f, "%02x", data[i]);
	fprintf(f, "\n");
	fclose(f);
	if (migtls__creds_load(&c, path, NULL, err, sizeof(err))) {
		fprintf(stderr, "minivmm-bench-migtls: %s\n", err);
		unlink(path);
		return 1;
	}
	unlink(path);
	for (i = 0; i < runs; i++)
		for (k = 0; k < 2; k++)
			if (run(k ? c : NULL, data, (size_t)mib << 20, &mbps[k][i], &cpu[k][i],
				&first[k][i]))
				return 1;
	for (k = 0; k < 2; k++) {
		qsort(mbps[k], runs, sizeof(double), cmp_double);
		qsort(cpu[k], runs, sizeof(double), cmp_double);
		qsort(first[k], runs, sizeof(double), cmp_double);
	}
	printf("migration channel over loopback TCP, %u MiB per run, median of %u runs\n", mib, runs);
	printf("%-22s %10s %14s %16s\n", "channel", "MB/s", "CPU s per GB", "first byte ms");
	printf("%-22s %10.1f %14.2f %16.2f\n", "plain TCP", mbps[0][runs / 2], cpu[0][runs / 2],
	       first[0][runs / 2]);
	printf("%-22s %10.1f %14.2f %16.2f\n", "TLS 1.3 (PSK)", mbps[1][runs / 2], cpu[1][runs / 2],
	       first[1][runs / 2]);
	printf("TLS throughput: %.2fx plain; CPU per byte: %.2fx plain\n",
	       mbps[1][runs / 2] / mbps[0][runs / 2], cpu[1][runs / 2] / cpu[0][runs / 2]);
	migtls__creds_free(c);
	free(data);
	return 0;
}
