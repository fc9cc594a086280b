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

/* a JSON array of small integers as "a b c", or "-" when empty */
static void ctl_print_ints(const char *label, json_t *a)
{
	json_t *v;
	size_t i;

	printf(" %s", label);
	if (!json_array_size(a))
		printf(" -");
	json_array_foreach(a, i, v)
		printf(" %lld", (long long)json_integer_value(v));
}

static const char *ctl_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key)) ?: "?";
}

static void ctl_print_cpu_state(json_t *rv)
{
	json_t *c, *p;
	size_t i;

	json_array_foreach(json_object_get(rv, "vcpus"), i, c) {
		json_t *r = json_object_get(c, "regs"), *l = json_object_get(c, "lapic");
		json_t *t = json_object_get(l, "timer"), *e = json_object_get(c, "events");
		json_t *tsc = json_object_get(c, "tsc");

		printf("vcpu%lld: %s rip %s rsp %s rflags %s (IF %s) cpl %lld cr3 %s\n",
		       (long long)json_integer_value(json_object_get(c, "id")), ctl_str(c, "mp_state"),
		       ctl_str(r, "rip"), ctl_str(r, "rsp"), ctl_str(r, "rflags"),
		       json_is_true(json_object_get(r, "if")) ? "on" : "off",
		       (long long)json_integer_value(json_object_get(r, "cpl")), ctl_str(r, "cr3"));
		printf("  lapic: %s tpr %lld ppr %lld", json_is_true(json_object_get(l, "enabled")) ?
		       "enabled" : "disabled", (long long)json_integer_value(json_object_get(l, "tpr")),
		       (long long)json_integer_value(json_object_get(l, "ppr")));
		ctl_print_ints("irr", json_object_get(l, "irr"));
		ctl_print_ints("isr", json_object_get(l, "isr"));
		printf("\n  timer: %s vector %lld%s", ctl_str(t, "mode"),
		       (long long)json_integer_value(json_object_get(t, "vector")),
		       json_is_true(json_object_get(t, "masked")) ? " masked" : "");
		if (json_is_object(tsc))
			printf(", tsc %s deadline %s%s", ctl_str(tsc, "tsc"), ctl_str(tsc, "deadline"),
			       json_is_true(json_object_get(tsc, "deadline_passed")) ? " (passed)" : "");
		printf("\n  events: interrupt %s nr %lld, nmi %s, exception %s nr %lld\n",
		       json_is_true(json_object_get(json_object_get(e, "interrupt"), "injected")) ?
		       "injected" : "none",
		       (long long)json_integer_value(json_object_get(json_object_get(e, "interrupt"), "nr")),
		       json_is_true(json_object_get(json_object_get(e, "nmi"), "pending")) ? "pending" : "none",
		       json_is_true(json_object_get(json_object_get(e, "exception"), "injected")) ?
		       "injected" : "none",
		       (long long)json_integer_value(json_object_get(json_object_get(e, "exception"), "nr")));
	}
	printf("ioapic: irr %s\n", ctl_str(json_object_get(rv, "ioapic"), "irr"));
	json_array_foreach(json_object_get(json_object_get(rv, "ioapic"), "unmasked_pins"), i, p)
		printf("  pin %lld: vector %lld %s%s%s\n",
		       (long long)json_integer_value(json_object_get(p, "pin")),
		       (long long)json_integer_value(json_object_get(p, "vector")), ctl_str(p, "trigger"),
		       json_is_true(json_object_get(p, "remote_irr")) ? ", remote IRR set" : "",
		       json_is_true(json_object_get(p, "line_high")) ? ", line high" : "");
}

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
		"  device-add vf BDF[,failover=on|MAC][,id=NAME]\n"
		"                      assign a VF (hot-plug); failover: once the guest negotiated\n"
		"                      STANDBY on the standby NIC\n"
		"  device-add net tap=TAP[,mac=MAC][,failover=on][,id=NAME]\n"
		"                      hot-plug a virtio-net NIC\n"
		"  device-del ID [--timeout S]\n"
		"                      ask the guest to eject ID and release it once it did; fails\n"
		"                      after S seconds (default 10) and the device stays\n"
		"  migrate URI [--downtime MS] [--bandwidth MBIT] [--unplug-timeout MS] [--plan]\n"
		"                      move the VM to a minivmm waiting with --incoming URI\n"
		"                      (pre-copy until what is left fits MS, 300 by default;\n"
		"                      progress on stderr); --unplug-timeout: how long the guest\n"
		"                      has to eject its failover VFs (10000 by default);\n"
		"                      --plan: how each device would move\n"
		"                      and whether the destination accepts; nothing changes\n"
		"                      (tcp:HOST:PORT or unix:PATH); any failure leaves it here\n"
		"  migrate-cancel      stop the migration in progress (from another terminal): the\n"
		"                      VM runs on here, its failover VFs plugged back\n"
		"  snapshot FILE       save the VM to FILE (paused meanwhile); minivmm --restore FILE\n"
		"                      with the same options starts it again\n"
		"  cpu-state           each vCPU's run state, registers, pending events and local\n"
		"                      APIC, and the IOAPIC's unmasked pins (a guest gone silent)\n"
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

/* one event of a running migration, on stderr (stdout keeps the summary) */
static void ctl_print_progress(json_t *ev)
{
	const char *name = json_string_value(json_object_get(ev, "event")) ?: "?";
	json_t *d = json_object_get(ev, "data");
	const char *st = json_string_value(json_object_get(d, "state"));
	json_t *pct = json_object_get(d, "ram_percent");

	if (strcmp(name, "migration")) {
		fprintf(stderr, "migrate: %s %s\n", name,
			json_string_value(json_object_get(d, "id")) ?: "");
	} else if (st && !strcmp(st, "pre-copy") && pct) {
		fprintf(stderr, "migrate: pre-copy: RAM %.0f%%, %.1f MiB sent, %.0f Mbit/s\n",
			json_number_value(pct),
			(double)json_integer_value(json_object_get(d, "bytes")) / 1048576.0,
			json_number_value(json_object_get(d, "mbps")));
	} else if (st && !strcmp(st, "pre-copy") && json_object_get(d, "round")) {
		fprintf(stderr, "migrate: pre-copy round %lld: %.1f MiB sent, %lld pages dirtied, "
			"%.0f Mbit/s, expected downtime %.0f ms\n",
			(long long)json_integer_value(json_object_get(d, "round")),
			(double)json_integer_value(json_object_get(d, "bytes")) / 1048576.0,
			(long long)json_integer_value(json_object_get(d, "dirty_pages")),
			json_number_value(json_object_get(d, "mbps")),
			json_number_value(json_object_get(d, "expected_downtime_ms")));
	} else {
		fprintf(stderr, "migrate: %s\n", st ?: "?");
	}
}

/* migrate --plan's reply as a table; nonzero when the migration would fail */
static int ctl_print_plan(json_t *rv)
{
	json_t *d, *dst = json_object_get(rv, "destination");
	bool ok = json_is_true(json_object_get(rv, "feasible"));
	size_t i;

	printf("migration plan to %s: %s\n", json_string_value(json_object_get(rv, "uri")) ?: "?",
	       ok ? "feasible" : "NOT feasible");
	json_array_foreach(json_object_get(rv, "devices"), i, d)
		printf("  %-10s %-16s %-8s %s\n", json_string_value(json_object_get(d, "id")) ?: "?",
		       json_string_value(json_object_get(d, "kind")) ?: "?",
		       json_string_value(json_object_get(d, "move")) ?: "?",
		       json_string_value(json_object_get(d, "how")) ?: "");
	d = json_object_get(rv, "vcpus");
	printf("  %-10s %-16s %-8s %s\n", "vCPUs", "cpu", "state",
	       json_string_value(json_object_get(d, "how")) ?: "");
	printf("  destination: %s: %s\n",
	       json_is_true(json_object_get(dst, "accepts")) ? "accepts" : "refuses",
	       json_string_value(json_object_get(dst, "reason")) ?: "?");
	return ok ? 0 : 1;
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
		json_t *fo = json_object_get(d, "failover");

		if (sb)
			printf(" (standby %s)", json_string_value(json_object_get(sb, "state")) ?: "?");
		if (fo)
			printf(" (failover primary of %s: %s)",
			       json_string_value(json_object_get(fo, "standby")) ?: "?",
			       json_string_value(json_object_get(fo, "state")) ?: "?");
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
	bool plan = false, progress = false;
	json_t *req, *reply, *args = NULL;
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
	} else if (!strcmp(cmd, "device-add")) {
		if (argc - optind != 4 || (strcmp(argv[optind + 2], "vf") && strcmp(argv[optind + 2], "net"))) {
			fprintf(stderr, "minivmm ctl: device-add vf SPEC | device-add net SPEC\n");
			return CTL_USAGE;
		}
		args = json_pack("{s:s,s:s}", "kind", argv[optind + 2], "spec", argv[optind + 3]);
	} else if (!strcmp(cmd, "migrate")) {
		long downtime = -1, mbit = -1, unplug = -1;
		int a;

		if (argc - optind < 3) {
			fprintf(stderr, "minivmm ctl: migrate tcp:HOST:PORT|unix:PATH [--downtime MS] "
				"[--bandwidth MBIT] [--unplug-timeout MS] [--plan]\n");
			return CTL_USAGE;
		}
		for (a = optind + 3; a < argc; a++) {
			long *v = !strcmp(argv[a], "--downtime") ? &downtime :
				  !strcmp(argv[a], "--bandwidth") ? &mbit :
				  !strcmp(argv[a], "--unplug-timeout") ? &unplug : NULL;

			if (!strcmp(argv[a], "--plan")) {
				plan = true;
				continue;
			}
			if (!v || a + 1 >= argc || (*v = strtol(argv[a + 1], &end, 10)) < 0 || *end ||
			    ((v == &downtime || v == &unplug) && (*v < 1 || *v > 600000)) ||
			    (v == &mbit && *v > 1000000)) {
				fprintf(stderr, "minivmm ctl: migrate: '%s': expected --downtime MS "
					"(1..600000), --bandwidth MBIT (0..1000000, 0: no limit), "
					"--unplug-timeout MS (1..600000) or --plan\n", argv[a]);
				return CTL_USAGE;
			}
			a++;
		}
		args = json_pack("{s:s,s:b}", "uri", argv[optind + 2], "plan", plan);
		if (args && downtime >= 0)
			json_object_set_new(args, "downtime_ms", json_integer(downtime));
		if (args && mbit >= 0)
			json_object_set_new(args, "bandwidth_mbit", json_integer(mbit));
		if (args && unplug >= 0)
			json_object_set_new(args, "unplug_timeout_ms", json_integer(unplug));
		progress = !plan && !raw;
		if (timeout_ms < 600000)
			timeout_ms = 600000;
	} else if (!strcmp(cmd, "snapshot")) {
		if (argc - optind != 3) {
			fprintf(stderr, "minivmm ctl: snapshot FILE\n");
			return CTL_USAGE;
		}
		args = json_pack("{s:s}", "file", argv[optind + 2]);
		if (timeout_ms < 600000)
			timeout_ms = 600000; /* a large guest's RAM takes a while */
	} else if (!strcmp(cmd, "device-del")) {
		double dl = 10;

		if (argc - optind == 5 && !strcmp(argv[optind + 3], "--timeout")) {
			dl = strtod(argv[optind + 4], &end);
			if (*end || dl <= 0 || dl > 600) {
				fprintf(stderr, "minivmm ctl: device-del --timeout '%s': seconds, 0 to 600\n",
					argv[optind + 4]);
				return CTL_USAGE;
			}
		} else if (argc - optind != 3) {
			fprintf(stderr, "minivmm ctl: device-del ID [--timeout S]\n");
			return CTL_USAGE;
		}
		args = json_pack("{s:s,s:I}", "id", argv[optind + 2], "timeout_ms",
				 (json_int_t)(dl * 1000 < 1 ? 1 : dl * 1000));
		/* the reply comes after the guest's eject or the deadline */
		if (timeout_ms < (int)(dl * 1000) + 30000)
			timeout_ms = (int)(dl * 1000) + 30000;
	} else if (strcmp(cmd, "status") && strcmp(cmd, "devices") && strcmp(cmd, "pause") &&
		   strcmp(cmd, "resume") && strcmp(cmd, "quit") && strcmp(cmd, "commands") &&
		   strcmp(cmd, "migrate-cancel") && strcmp(cmd, "cpu-state")) {
		fprintf(stderr, "minivmm ctl: unknown command '%s'\n", cmd);
		ctl_usage(stderr);
		return CTL_USAGE;
	} else if (argc - optind > 2) {
		fprintf(stderr, "minivmm ctl: %s takes no arguments\n", cmd);
		return CTL_USAGE;
	}

	fd = ctl_connect(sock);
	if (fd < 0) {
		json_decref(args);
		return CTL_REFUSED;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		json_decref(args);
		close(fd);
		return CTL_REFUSED;
	}
	r->fd = fd;
	if (progress) {
		/* the migration's events, printed while it runs */
		json_t *sub = json_pack("{s:i,s:s,s:{s:[s,s,s,s]}}", "id", 0, "command", "subscribe",
					"args", "events", "migration", "device-unplug-requested",
					"device-removed", "device-added");

		err = sub ? ctl_send(fd, sub) : -ENOMEM;
		json_decref(sub);
		reply = err ? NULL : ctl_read(r, timeout_ms, &err);
		if (!json_is_true(json_object_get(reply, "ok")))
			progress = false; /* an older VMM: the migration runs without */
		json_decref(reply);
		reply = NULL;
	}
	req = json_pack("{s:i,s:s,s:o}", "id", 1, "command", strcmp(cmd, "events") ? cmd : "subscribe",
			"args", args ? args : json_object());
	args = NULL;
	err = req ? ctl_send(fd, req) : -ENOMEM;
	json_decref(req);
	if (err) {
		fprintf(stderr, "minivmm ctl: cannot send to %s: %s\n", sock, strerror(-err));
		goto out;
	}
	reply = ctl_read(r, timeout_ms, &err);
	while (progress && reply && json_object_get(reply, "event")) {
		ctl_print_progress(reply);
		json_decref(reply);
		reply = ctl_read(r, timeout_ms, &err);
	}
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
		/* the message starts with the command's name */
		fprintf(stderr, "minivmm ctl: %s (%s)\n",
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
		} else if (!strcmp(cmd, "cpu-state")) {
			ctl_print_cpu_state(rv);
		} else if (!strcmp(cmd, "commands")) {
			json_t *d;
			size_t i;

			json_array_foreach(json_object_get(rv, "commands"), i, d)
				printf("%-12s %s\n", json_string_value(json_object_get(d, "name")) ?: "?",
				       json_string_value(json_object_get(d, "help")) ?: "");
		} else if (!strcmp(cmd, "device-add")) {
			const char *st = json_string_value(json_object_get(rv, "state"));

			printf("%s %s", json_string_value(json_object_get(rv, "id")) ?: "?", st ? st : "added");
			if (st && !strcmp(st, "plugged"))
				printf(" at %s", json_string_value(json_object_get(rv, "address")) ?: "?");
			else if (json_object_get(rv, "failover"))
				printf(" (until %s's driver negotiates STANDBY)",
				       json_string_value(json_object_get(json_object_get(rv, "failover"), "standby")) ?: "?");
			printf("\n");
		} else if (!strcmp(cmd, "migrate") && plan) {
			if (ctl_print_plan(rv))
				ret = CTL_REFUSED;
			else
				ret = 0;
			json_decref(reply);
			goto out;
		} else if (!strcmp(cmd, "migrate")) {
			json_t *v;
			size_t i;

			printf("migrated to %s: %lld bytes (%lld bytes of RAM) in %.0f ms, the guest paused "
			       "for %.0f ms\n", json_string_value(json_object_get(rv, "uri")) ?: "?",
			       (long long)json_integer_value(json_object_get(rv, "bytes")),
			       (long long)json_integer_value(json_object_get(rv, "ram_bytes")),
			       json_number_value(json_object_get(rv, "total_ms")),
			       json_number_value(json_object_get(rv, "downtime_ms")));
			v = json_object_get(rv, "precopy");
			if (v)
				printf("  pre-copy: %lld rounds in %.0f ms, %s (target %lld ms, last round "
				       "%lld pages at %.0f Mbit/s); %lld pages crossed while paused\n",
				       (long long)json_integer_value(json_object_get(v, "rounds")),
				       json_number_value(json_object_get(v, "ms")),
				       json_is_true(json_object_get(v, "converged")) ? "converged" :
				       "did not converge",
				       (long long)json_integer_value(json_object_get(v, "downtime_target_ms")),
				       (long long)json_integer_value(json_object_get(v, "last_round_pages")),
				       json_number_value(json_object_get(v, "mbps")),
				       (long long)json_integer_value(json_object_get(v, "final_pages")));
			json_array_foreach(json_object_get(rv, "unplugged"), i, v)
				printf("  %s (VF %s) left the guest first (%s after %.0f ms); the guest used "
				       "%s meanwhile; the destination plugs its own VF\n",
				       json_string_value(json_object_get(v, "id")) ?: "?",
				       json_string_value(json_object_get(v, "bdf")) ?: "?",
				       json_is_true(json_object_get(v, "was_plugged")) ? "ejected" : "released",
				       json_number_value(json_object_get(v, "eject_ms")),
				       json_string_value(json_object_get(v, "standby")) ?: "?");
		} else if (!strcmp(cmd, "snapshot")) {
			printf("%s: %lld bytes (%lld bytes of RAM, %lld zero pages left out) in %.0f ms\n",
			       json_string_value(json_object_get(rv, "file")) ?: "?",
			       (long long)json_integer_value(json_object_get(rv, "bytes")),
			       (long long)json_integer_value(json_object_get(rv, "ram_bytes")),
			       (long long)json_integer_value(json_object_get(rv, "zero_pages")),
			       json_number_value(json_object_get(rv, "ms")));
			if (json_string_value(json_object_get(rv, "failover_vfs")))
				printf("  failover VFs unplugged for the save: %s\n",
				       json_string_value(json_object_get(rv, "failover_vfs")));
		} else if (!strcmp(cmd, "device-del")) {
			printf("%s removed (the guest ejected it after %.0f ms; released in %.0f ms)\n",
			       json_string_value(json_object_get(rv, "id")) ?: "?",
			       json_number_value(json_object_get(rv, "eject_ms")),
			       json_number_value(json_object_get(rv, "release_ms")));
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
