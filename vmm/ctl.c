// SPDX-License-Identifier: MIT
#include "vmm/ctl.h"
#include "vmm/api.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CTL_USAGE 2
#define CTL_REFUSED 1

static void ctl_usage(FILE *f)
{
	fprintf(f,
		"Usage: minivmm ctl [--json] [--timeout S] SOCK COMMAND [ARGS]\n"
		"Drive a running minivmm through its control socket (--api SOCK).\n"
		"\n"
		"Commands:\n"
		"  status              the VM's state (running or paused), vCPUs, memory, protocol\n"
		"  devices             the devices, with their ids, kinds and addresses\n"
		"  pause               park every vCPU (out of KVM_RUN)\n"
		"  resume              let the vCPUs run again\n"
		"  quit                stop the guest; minivmm exits with status 0\n"
		"  commands            the commands the VMM knows\n"
		"  events [N]          subscribe and print events as they come (N of them, or until\n"
		"                      the VMM exits)\n"
		"\n"
		"  --json              print the raw JSON reply (or events) instead\n"
		"  --timeout S         give up waiting for the reply after S seconds (default 30)\n"
		"\n"
		"Exit status: 0 on success, 1 when the VMM refuses or cannot be reached,\n"
		"2 on a usage error.\n");
}

static int ctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "minivmm ctl: %s: path too long\n", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		fprintf(stderr, "minivmm ctl: cannot connect to %s: %s\n", path, strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

static int ctl_send(int fd, json_t *req)
{
	char *s = json_dumps(req, JSON_COMPACT);
	size_t len, off = 0;
	ssize_t n;

	if (!s)
		return -ENOMEM;
	len = strlen(s);
	s[len] = '\n';
	len++;
	while (off < len) {
		n = send(fd, s + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(s);
			return -errno;
		}
		off += (size_t)n;
	}
	free(s);
	return 0;
}

/* reads one line (a JSON value) within timeout_ms (-1: no limit) */
struct ctl_reader {
	int fd;
	char buf[API_MAX_LINE + 1];
	size_t len;
};

static json_t *ctl_read(struct ctl_reader *r, int timeout_ms, int *err)
{
	struct timespec t0, now;
	char *nl;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		nl = memchr(r->buf, '\n', r->len);
		if (nl) {
			json_error_t jerr;
			size_t n = (size_t)(nl - r->buf);
			json_t *v = json_loadb(r->buf, n, 0, &jerr);

			memmove(r->buf, nl + 1, r->len - n - 1);
			r->len -= n + 1;
			if (!v) {
				fprintf(stderr, "minivmm ctl: the VMM's reply is not JSON: %s\n", jerr.text);
				*err = -EPROTO;
			}
			return v;
		}
		if (r->len >= API_MAX_LINE) {
			*err = -EMSGSIZE;
			return NULL;
		}
		struct pollfd p = { .fd = r->fd, .events = POLLIN };
		int wait = -1;

		if (timeout_ms >= 0) {
			long el;

			clock_gettime(CLOCK_MONOTONIC, &now);
			el = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
			if (el >= timeout_ms) {
				*err = -ETIMEDOUT;
				return NULL;
			}
			wait = (int)(timeout_ms - el);
		}
		if (poll(&p, 1, wait) < 0) {
			if (errno == EINTR)
				continue;
			*err = -errno;
			return NULL;
		}
		if (!p.revents)
			continue;
		ssize_t n = recv(r->fd, r->buf + r->len, API_MAX_LINE - r->len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*err = n < 0 ? -errno : -ECONNRESET;
			return NULL;
		}
		r->len += (size_t)n;
	}
}

static void ctl_print_status(json_t *ret)
{
	const char *key;
	json_t *v;

	printf("state: %s\n", json_string_value(json_object_get(ret, "state")) ?: "?");
	json_object_foreach(ret, key, v) {
		char *s;

		if (!strcmp(key, "state"))
			continue;
		if (json_is_string(v)) {
			printf("%s: %s\n", key, json_string_value(v));
			continue;
		}
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		printf("%s: %s\n", key, s ? s : "?");
		free(s);
	}
}

static void ctl_print_devices(json_t *ret)
{
	json_t *list = json_object_get(ret, "devices"), *d;
	size_t i;

	printf("%-8s %-12s %-14s %s\n", "ID", "KIND", "ADDRESS", "DETAIL");
	json_array_foreach(list, i, d) {
		json_t *sb = json_object_get(d, "standby");

		printf("%-8s %-12s %-14s %s", json_string_value(json_object_get(d, "id")) ?: "?",
		       json_string_value(json_object_get(d, "kind")) ?: "?",
		       json_string_value(json_object_get(d, "address")) ?: "-",
		       json_string_value(json_object_get(d, "detail")) ?: "");
		if (sb)
			printf(" (standby %s)", json_string_value(json_object_get(sb, "state")) ?: "?");
		printf("\n");
	}
}

static void ctl_print_event(json_t *ev, bool raw)
{
	char *s;

	if (raw) {
		s = json_dumps(ev, JSON_COMPACT);
		printf("%s\n", s ? s : "");
	} else {
		json_t *ts = json_object_get(ev, "timestamp");

		s = json_dumps(json_object_get(ev, "data"), JSON_COMPACT | JSON_ENCODE_ANY);
		printf("%lld.%06lld %s %s\n", (long long)json_integer_value(json_object_get(ts, "seconds")),
		       (long long)json_integer_value(json_object_get(ts, "microseconds")),
		       json_string_value(json_object_get(ev, "event")) ?: "?", s ? s : "");
	}
	free(s);
	fflush(stdout);
}

int ctl__main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_reader *r = NULL;
	const char *sock, *cmd;
	bool raw = false;
	long events = -1;
	int timeout_ms = 30000, c, fd, err = 0, ret = CTL_REFUSED;
	json_t *req, *reply;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			raw = true;
			break;
		case 't': {
			double s = strtod(optarg, &end);

			if (*end || s <= 0 || s > 86400) {
				fprintf(stderr, "minivmm ctl: --timeout '%s': seconds, more than 0\n", optarg);
				return CTL_USAGE;
			}
			timeout_ms = (int)(s * 1000);
			break;
		}
		case 'h':
			ctl_usage(stdout);
			return 0;
		default:
			ctl_usage(stderr);
			return CTL_USAGE;
		}
	}
	if (argc - optind < 2) {
		fprintf(stderr, "minivmm ctl: needs a socket and a command\n");
		ctl_usage(stderr);
		return CTL_USAGE;
	}
	sock = argv[optind];
	cmd = argv[optind + 1];
	if (!strcmp(cmd, "events")) {
		if (argc - optind > 3 || (argc - optind == 3 &&
		    ((events = strtol(argv[optind + 2], &end, 10)) <= 0 || *end))) {
			fprintf(stderr, "minivmm ctl: events [N]: N is a count, more than 0\n");
			return CTL_USAGE;
		}
	} else if (strcmp(cmd, "status") && strcmp(cmd, "devices") && strcmp(cmd, "pause") &&
		   strcmp(cmd, "resume") && strcmp(cmd, "quit") && strcmp(cmd, "commands")) {
		fprintf(stderr, "minivmm ctl: unknown command '%s'\n", cmd);
		ctl_usage(stderr);
		return CTL_USAGE;
	} else if (argc - optind > 2) {
		fprintf(stderr, "minivmm ctl: %s takes no arguments\n", cmd);
		return CTL_USAGE;
	}

	fd = ctl_connect(sock);
	if (fd < 0)
		return CTL_REFUSED;
	r = calloc(1, sizeof(*r));
	if (!r) {
		close(fd);
		return CTL_REFUSED;
	}
	r->fd = fd;
	req = json_pack("{s:i,s:s,s:{}}", "id", 1, "command", strcmp(cmd, "events") ? cmd : "subscribe",
			"args");
	err = req ? ctl_send(fd, req) : -ENOMEM;
	json_decref(req);
	if (err) {
		fprintf(stderr, "minivmm ctl: cannot send to %s: %s\n", sock, strerror(-err));
		goto out;
	}
	reply = ctl_read(r, timeout_ms, &err);
	if (!reply) {
		fprintf(stderr, "minivmm ctl: no reply from %s: %s\n", sock,
			err == -ETIMEDOUT ? "timed out" : strerror(-err));
		goto out;
	}
	if (!json_is_true(json_object_get(reply, "ok"))) {
		json_t *e = json_object_get(reply, "error");

		if (raw) {
			char *s = json_dumps(reply, JSON_COMPACT);

			printf("%s\n", s ? s : "");
			free(s);
		}
		fprintf(stderr, "minivmm ctl: %s: %s (%s)\n", cmd,
			json_string_value(json_object_get(e, "message")) ?: "refused",
			json_string_value(json_object_get(e, "code")) ?: "?");
		json_decref(reply);
		goto out;
	}
	if (!strcmp(cmd, "events")) {
		json_decref(reply);
		while (events != 0) {
			json_t *ev = ctl_read(r, -1, &err);

			if (!ev)
				break; /* the VMM exited */
			if (json_object_get(ev, "event")) {
				ctl_print_event(ev, raw);
				if (events > 0)
					events--;
			}
			json_decref(ev);
		}
		ret = 0;
		goto out;
	}
	if (raw) {
		char *s = json_dumps(reply, JSON_COMPACT);

		printf("%s\n", s ? s : "");
		free(s);
	} else {
		json_t *rv = json_object_get(reply, "return");

		if (!strcmp(cmd, "status")) {
			ctl_print_status(rv);
		} else if (!strcmp(cmd, "devices")) {
			ctl_print_devices(rv);
		} else if (!strcmp(cmd, "commands")) {
			json_t *d;
			size_t i;

			json_array_foreach(json_object_get(rv, "commands"), i, d)
				printf("%-12s %s\n", json_string_value(json_object_get(d, "name")) ?: "?",
				       json_string_value(json_object_get(d, "help")) ?: "");
		} else {
			const char *state = json_string_value(json_object_get(rv, "state"));

			printf("%s\n", state ? state : "ok");
		}
	}
	json_decref(reply);
	ret = 0;
out:
	free(r);
	close(fd);
	return ret;
}
