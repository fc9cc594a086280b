// SPDX-License-Identifier: MIT
#include "vmm/migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int migrate_wait(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do {
		n = poll(&p, 1, timeout_ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

/* a non-blocking connect bounded by timeout_ms, then blocking again */
static int migrate_connect_one(int fd, const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
	int flags = fcntl(fd, F_GETFL), ret, soerr = 0;
	socklen_t sl = sizeof(soerr);

	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	ret = connect(fd, sa, len);
	if (ret && errno == EINPROGRESS) {
		ret = migrate_wait(fd, POLLOUT, timeout_ms);
		if (!ret && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl))
			ret = -errno;
		else if (!ret && soerr)
			ret = -soerr;
	} else if (ret) {
		ret = -errno;
	}
	fcntl(fd, F_SETFL, flags);
	return ret;
}

int migrate__connect(const struct mig_uri *u, int timeout_ms, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *a;
	int fd = -1, ret, one = 1;

	if (u->unix_socket) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", u->path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		ret = migrate_connect_one(fd, (struct sockaddr *)&sa, sizeof(sa), timeout_ms);
		if (ret) {
			snprintf(err, errlen, "cannot connect to unix:%s: %s", u->path, strerror(-ret));
			close(fd);
			return ret;
		}
		return fd;
	}
	ret = getaddrinfo(u->host, u->port, &hints, &ai);
	if (ret) {
		snprintf(err, errlen, "tcp:%s:%s: %s", u->host, u->port, gai_strerror(ret));
		return -EHOSTUNREACH;
	}
	ret = -ECONNREFUSED;
	for (a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		ret = migrate_connect_one(fd, a->ai_addr, a->ai_addrlen, timeout_ms);
		if (!ret)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		snprintf(err, errlen, "cannot connect to tcp:%s:%s: %s", u->host, u->port, strerror(-ret));
		return ret;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

bool migrate__is_local(const struct mig_uri *u)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai = NULL, *a;
	bool local = true;

	if (u->unix_socket)
		return true;
	if (getaddrinfo(u->host, u->port, &hints, &ai))
		return false;
	for (a = ai; a; a = a->ai_next) {
		if (a->ai_family == AF_INET) {
			const struct sockaddr_in *in = (const struct sockaddr_in *)a->ai_addr;

			local &= (ntohl(in->sin_addr.s_addr) >> 24) == 127;
		} else if (a->ai_family == AF_INET6) {
			local &= IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a->ai_addr)->sin6_addr);
		} else {
			local = false;
		}
	}
	freeaddrinfo(ai);
	return local;
}

int migrate__listen(const struct mig_uri *u, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai = NULL;
	int lfd, ret, one = 1;

	if (u->unix_socket) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", u->path);
		lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd < 0)
			return -errno;
		unlink(u->path);
		if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1)) {
			ret = -errno;
			snprintf(err, errlen, "cannot listen on unix:%s: %s", u->path, strerror(-ret));
			close(lfd);
			return ret;
		}
		return lfd;
	}
	ret = getaddrinfo(u->host, u->port, &hints, &ai);
	if (ret) {
		snprintf(err, errlen, "tcp:%s:%s: %s", u->host, u->port, gai_strerror(ret));
		return -EADDRNOTAVAIL;
	}
	lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0) {
		ret = -errno;
		freeaddrinfo(ai);
		return ret;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, ai->ai_addr, ai->ai_addrlen) || listen(lfd, 1)) {
		ret = -errno;
		snprintf(err, errlen, "cannot listen on tcp:%s:%s: %s", u->host, u->port,
			 strerror(-ret));
		freeaddrinfo(ai);
		close(lfd);
		return ret;
	}
	freeaddrinfo(ai);
	return lfd;
}

int migrate__accept_one(int lfd, const struct mig_uri *u, char *err, size_t errlen)
{
	int fd, one = 1;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		fd = -errno;
		snprintf(err, errlen, "accept: %s", strerror(-fd));
		return fd;
	}
	if (!u->unix_socket)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

void migrate__unlisten(int lfd, const struct mig_uri *u)
{
	if (lfd < 0)
		return;
	close(lfd);
	if (u->unix_socket)
		unlink(u->path);
}

static int migrate_wait_readable(void *opaque, int fd, int timeout_ms)
{
	(void)opaque;
	return migrate_wait(fd, POLLIN, timeout_ms);
}

int migrate__read_ack(int fd, int timeout_ms, char *ack, size_t len)
{
	return migrate__read_ack_wait(fd, timeout_ms, ack, len, migrate_wait_readable, NULL);
}

int migrate__read_ack_wait(int fd, int timeout_ms, char *ack, size_t len,
			   int (*wait)(void *opaque, int fd, int timeout_ms), void *opaque)
{
	struct timespec t0, now;
	size_t n = 0;
	ssize_t r;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ack[0] = 0;
	for (;;) {
		long el;

		clock_gettime(CLOCK_MONOTONIC, &now);
		el = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (el >= timeout_ms)
			return -ETIMEDOUT;
		ret = wait(opaque, fd, (int)(timeout_ms - el));
		if (ret)
			return ret;
		r = recv(fd, ack + n, len - 1 - n, MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -ECONNRESET;
		n += (size_t)r;
		ack[n] = 0;
		if (memchr(ack, '\n', n)) {
			*strchr(ack, '\n') = 0;
			return 0;
		}
		if (n >= len - 1)
			return -EPROTO;
	}
}

int migrate__write_ack(int fd, const char *line)
{
	char buf[MIG_ACK_MAX + 2];
	size_t len, off = 0;
	ssize_t w;

	snprintf(buf, sizeof(buf) - 1, "%s", line);
	len = strlen(buf);
	buf[len++] = '\n';
	while (off < len) {
		w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			int ret = migrate_wait(fd, POLLOUT, 10000);

			if (ret)
				return ret;
			continue;
		}
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		off += (size_t)w;
	}
	return 0;
}

void migrate__drain(int fd, int timeout_ms)
{
	struct timespec t0, now;
	char buf[65536];
	ssize_t r;

	shutdown(fd, SHUT_WR);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		long el;

		clock_gettime(CLOCK_MONOTONIC, &now);
		el = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (el >= timeout_ms || migrate_wait(fd, POLLIN, (int)(timeout_ms - el)))
			return;
		r = recv(fd, buf, sizeof(buf), 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
	}
}
