// SPDX-License-Identifier: MIT
/*
 * The control socket over a real Unix socket and the real event loop: the
 * protocol, every error reply, hostile clients (garbage, over-long lines,
 * floods, too many clients, a client that never reads, another uid), events.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/api.h"
#include "vmm/evloop.h"

static struct evloop loop;
static struct api *api;
static char path[108];
static int echo_calls;

static int cmd_echo(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	json_t *v = json_object_get(args, "value");

	echo_calls++;
	if (v && !json_is_integer(v)) {
		snprintf(err, errlen, "\"value\" must be an integer");
		return -EINVAL;
	}
	*ret = json_pack("{s:I}", "value", (json_int_t)(v ? json_integer_value(v) : 0));
	return 0;
}

static int cmd_refuse(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	snprintf(err, errlen, "not now");
	return -EBUSY;
}

static int cmd_event(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	api__event(api, json_string_value(json_object_get(args, "name")) ?: "tick",
		   json_pack("{s:i}", "n", 7));
	return 0;
}

/* "later": deferred; completed by the test through `pending` */
static struct api_pending *pending;

static int cmd_later(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	if (json_is_true(json_object_get(args, "fail"))) {
		/* deferred, then refused before handing the handle on */
		cr_assert_not_null(api__defer(api));
		snprintf(err, errlen, "changed my mind");
		return -EBUSY;
	}
	pending = api__defer(api);
	cr_assert_not_null(pending);
	cr_assert_null(api__defer(api), "one handle per request");
	return API_DEFERRED;
}

static void setup(void)
{
	snprintf(path, sizeof(path), "/tmp/minivmm-test-api.%d.sock", (int)getpid());
	unlink(path);
	cr_assert_eq(evloop__init(&loop, 64), 0);
	cr_assert_eq(api__create(&loop, path, &api), 0);
	cr_assert_eq(api__register(api, "echo", "echoes value", cmd_echo, NULL), 0);
	cr_assert_eq(api__register(api, "refuse", "always refuses", cmd_refuse, NULL), 0);
	cr_assert_eq(api__register(api, "event", "sends an event", cmd_event, NULL), 0);
	cr_assert_eq(api__register(api, "later", "answers later", cmd_later, NULL), 0);
	echo_calls = 0;
	pending = NULL;
}

static void teardown(void)
{
	api__destroy(api);
	evloop__destroy(&loop);
	cr_assert_eq(access(path, F_OK), -1, "the socket file is removed");
}

static int client(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	strcpy(sa.sun_path, path);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s", strerror(errno));
	return fd;
}

static void pump(int rounds)
{
	while (rounds--)
		evloop__run_once(&loop, false);
}

static void say(int fd, const char *s)
{
	cr_assert_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* the next line from fd, pumping the loop meanwhile; NULL on EOF */
static json_t *hear(int fd)
{
	static char buf[1 << 17];
	static size_t len;
	static int last_fd = -1;
	char *nl;
	int i;

	if (fd != last_fd) {
		len = 0;
		last_fd = fd;
	}
	for (i = 0; i < 2000; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		nl = memchr(buf, '\n', len);
		if (nl) {
			json_error_t e;
			size_t l = (size_t)(nl - buf);
			json_t *v = json_loadb(buf, l, 0, &e);

			cr_assert_not_null(v, "reply is not JSON: %.*s", (int)l, buf);
			memmove(buf, nl + 1, len - l - 1);
			len -= l + 1;
			return v;
		}
		pump(1);
		if (poll(&p, 1, 1) <= 0)
			continue;
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n <= 0)
			return NULL;
		len += (size_t)n;
	}
	cr_assert_fail("no reply");
	return NULL;
}

static const char *err_code(json_t *r)
{
	cr_assert(json_is_false(json_object_get(r, "ok")), "expected an error reply");
	return json_string_value(json_object_get(json_object_get(r, "error"), "code"));
}

/* EOF from the VMM within a while */
static bool closed_by_vmm(int fd)
{
	char b[4096];
	int i;

	for (i = 0; i < 2000; i++) {
		ssize_t n;

		pump(1);
		n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0)
			usleep(500);
	}
	return false;
}

TestSuite(api, .init = setup, .fini = teardown);

Test(api, socket_is_private)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
}

Test(api, request_reply_with_id)
{
	int fd = client();
	json_t *r;

	say(fd, "{\"id\": \"a1\", \"command\": \"echo\", \"args\": {\"value\": 42}}\n");
	r = hear(fd);
	cr_assert_str_eq(json_string_value(json_object_get(r, "id")), "a1");
	cr_assert(json_is_true(json_object_get(r, "ok")));
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(r, "return"), "value")), 42);
	json_decref(r);
	/* no id, no args: id null, return {} style default */
	say(fd, "{\"command\":\"echo\"}\n");
	r = hear(fd);
	cr_assert(json_is_null(json_object_get(r, "id")));
	cr_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	/* two requests in one write, answered in order */
	say(fd, "{\"id\":1,\"command\":\"echo\",\"args\":{\"value\":1}}\n{\"id\":2,\"command\":\"echo\",\"args\":{\"value\":2}}\n");
	r = hear(fd);
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 1);
	json_decref(r);
	r = hear(fd);
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 2);
	json_decref(r);
	close(fd);
}

Test(api, a_request_split_across_writes)
{
	int fd = client();
	json_t *r;

	say(fd, "{\"id\":5,\"comm");
	pump(20);
	say(fd, "and\":\"echo\"}\n");
	r = hear(fd);
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 5);
	cr_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	close(fd);
}

Test(api, every_error_reply)
{
	static const struct {
		const char *line, *code;
	} cases[] = {
		{ "not json at all\n", "parse-error" },
		{ "{\"command\": \"echo\"\n", "parse-error" },
		{ "[1, 2]\n", "invalid-request" },
		{ "\"echo\"\n", "parse-error" }, /* jansson takes only objects and arrays at the top */
		{ "{\"id\": 3}\n", "invalid-request" },
		{ "{\"command\": 7}\n", "invalid-request" },
		{ "{\"command\": \"echo\", \"args\": [1]}\n", "invalid-request" },
		{ "{\"command\": \"echo\", \"extra\": 1}\n", "invalid-request" },
		{ "{\"command\": \"echo\", \"command\": \"echo\"}\n", "parse-error" },
		{ "{\"command\": \"no-such\"}\n", "unknown-command" },
		{ "{\"command\": \"echo\", \"args\": {\"value\": \"x\"}}\n", "invalid-args" },
		{ "{\"command\": \"refuse\"}\n", "refused" },
		{ "{\"command\": \"subscribe\", \"args\": {\"events\": \"all\"}}\n", "invalid-args" },
		{ "{\"command\": \"subscribe\", \"args\": {\"events\": [1]}}\n", "invalid-args" },
	};
	int fd = client();
	unsigned int i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *r;
		const char *msg;

		say(fd, cases[i].line);
		r = hear(fd);
		cr_assert_not_null(r, "case %u: connection closed", i);
		cr_assert_str_eq(err_code(r), cases[i].code, "case %u (%s)", i, cases[i].line);
		msg = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
		cr_assert(msg && *msg, "case %u: an error says why", i);
		json_decref(r);
	}
	/* the refusal carries the handler's reason */
	say(fd, "{\"command\": \"refuse\"}\n");
	{
		json_t *r = hear(fd);

		cr_assert(strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
				 "not now"));
		json_decref(r);
	}
	/* still alive after all that */
	say(fd, "{\"command\":\"echo\"}\n");
	{
		json_t *r = hear(fd);

		cr_assert(json_is_true(json_object_get(r, "ok")));
		json_decref(r);
	}
	close(fd);
}

Test(api, commands_lists_registered_and_builtin)
{
	int fd = client();
	json_t *r, *list, *d;
	size_t i;
	int seen = 0;

	say(fd, "{\"command\":\"commands\"}\n");
	r = hear(fd);
	list = json_object_get(json_object_get(r, "return"), "commands");
	json_array_foreach(list, i, d) {
		const char *n = json_string_value(json_object_get(d, "name"));

		seen += !strcmp(n, "echo") + !strcmp(n, "subscribe") + !strcmp(n, "refuse");
	}
	cr_assert_eq(seen, 3);
	json_decref(r);
	cr_assert_eq(api__register(api, "echo", "", cmd_echo, NULL), -EEXIST);
	cr_assert_eq(api__register(api, "subscribe", "", cmd_echo, NULL), -EEXIST);
	close(fd);
}

Test(api, over_long_line_is_refused_and_closed)
{
	int fd = client(), other = client();
	char *big = malloc(API_MAX_LINE + 16);
	json_t *r;

	memset(big, 'x', API_MAX_LINE + 15);
	big[API_MAX_LINE + 15] = '\0';
	/* the VMM answers too-long and closes, without waiting for a newline */
	cr_assert_eq(write(fd, big, API_MAX_LINE + 15), API_MAX_LINE + 15);
	r = hear(fd);
	cr_assert_str_eq(err_code(r), "too-long");
	json_decref(r);
	cr_assert(closed_by_vmm(fd));
	/* the other client is served as before */
	say(other, "{\"command\":\"echo\"}\n");
	r = hear(other);
	cr_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	free(big);
	close(fd);
	close(other);
}

Test(api, too_many_clients)
{
	int fds[API_MAX_CLIENTS], extra, i;
	json_t *r;

	for (i = 0; i < API_MAX_CLIENTS; i++)
		fds[i] = client();
	pump(50);
	cr_assert_eq(api__nr_clients(api), API_MAX_CLIENTS);
	extra = client();
	r = hear(extra);
	cr_assert_str_eq(err_code(r), "busy");
	json_decref(r);
	cr_assert(closed_by_vmm(extra));
	close(extra);
	/* one leaves: a new one is served */
	close(fds[0]);
	pump(50);
	cr_assert_eq(api__nr_clients(api), API_MAX_CLIENTS - 1);
	fds[0] = client();
	say(fds[0], "{\"command\":\"echo\"}\n");
	r = hear(fds[0]);
	cr_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	for (i = 0; i < API_MAX_CLIENTS; i++)
		close(fds[i]);
	pump(50);
	cr_assert_eq(api__nr_clients(api), 0, "closed connections are reaped");
}

Test(api, a_client_that_never_reads_is_dropped)
{
	int lazy = client(), fd = client(), i;
	json_t *r;

	say(lazy, "{\"command\":\"subscribe\"}\n");
	pump(20);
	/* events pile up for it: it is disconnected, nobody waits */
	for (i = 0; i < 20000 && api__nr_clients(api) == 2; i++) {
		api__event(api, "tick", json_pack("{s:s}", "pad", "................................................"));
		pump(1);
	}
	cr_assert_eq(api__nr_clients(api), 1, "the reader that never reads was dropped after %d events", i);
	say(fd, "{\"command\":\"echo\"}\n");
	r = hear(fd);
	cr_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	close(lazy);
	close(fd);
}

Test(api, a_flood_of_requests_does_not_stall_the_loop)
{
	int fd = client(), other = client(), i;
	static char burst[64 * 1024];
	json_t *r;

	/* the flooder never reads its replies */
	for (i = 0; i + 20 < (int)sizeof(burst); i += 20)
		memcpy(burst + i, "{\"command\":\"echo\"}\n", 19), burst[i + 19] = '\n';
	for (i = 0; i < 64; i++) {
		if (send(fd, burst, sizeof(burst) - 20, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			break;
		pump(2);
	}
	pump(200);
	say(other, "{\"id\":9,\"command\":\"echo\"}\n");
	r = hear(other);
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 9);
	json_decref(r);
	cr_assert(closed_by_vmm(fd), "the flooder is disconnected");
	close(fd);
	close(other);
}

Test(api, events_only_to_subscribers_and_filtered)
{
	int sub = client(), filt = client(), none = client();
	json_t *r;

	say(sub, "{\"command\":\"subscribe\"}\n");
	json_decref(hear(sub));
	say(filt, "{\"command\":\"subscribe\",\"args\":{\"events\":[\"paused\"]}}\n");
	json_decref(hear(filt));
	say(none, "{\"id\":1,\"command\":\"event\",\"args\":{\"name\":\"tick\"}}\n");
	r = hear(none);
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 1, "the reply, not an event");
	json_decref(r);
	r = hear(sub);
	cr_assert_str_eq(json_string_value(json_object_get(r, "event")), "tick");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(r, "data"), "n")), 7);
	cr_assert_not_null(json_object_get(json_object_get(r, "timestamp"), "seconds"));
	json_decref(r);
	api__event(api, "paused", NULL);
	r = hear(filt);
	cr_assert_str_eq(json_string_value(json_object_get(r, "event")), "paused",
			 "the filtered subscriber got no tick, only paused");
	json_decref(r);
	close(sub);
	close(filt);
	close(none);
}

Test(api, another_uid_is_refused)
{
	pid_t pid;
	int st;

	if (geteuid() != 0)
		cr_skip_test("needs root to connect as another uid");
	/* the socket is 0600: open it up to reach the credential check */
	cr_assert_eq(chmod(path, 0666), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		char buf[512] = "";
		int fd;
		ssize_t n;

		if (setuid(65534))
			_exit(10);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		strcpy(sa.sun_path, path);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			_exit(11);
		n = read(fd, buf, sizeof(buf) - 1);
		_exit(n > 0 && strstr(buf, "permission-denied") ? 0 : 12);
	}
	while (waitpid(pid, &st, WNOHANG) == 0)
		pump(1);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
	cr_assert_eq(api__nr_clients(api), 0);
}

Test(api, a_live_socket_is_not_taken_over)
{
	struct api *second;

	cr_assert_eq(api__create(&loop, path, &second), -EADDRINUSE);
}

Test(api, a_stale_socket_is_replaced)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char stale[128];
	struct api *a2;
	int fd;

	snprintf(stale, sizeof(stale), "%.90s.stale", path);
	unlink(stale);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sa.sun_path, stale);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd); /* a socket file nobody listens on */
	cr_assert_eq(api__create(&loop, stale, &a2), 0);
	api__destroy(a2);
	/* a regular file is not a socket: refused */
	fd = open(stale, O_CREAT | O_WRONLY, 0600);
	close(fd);
	cr_assert_eq(api__create(&loop, stale, &a2), -EEXIST);
	unlink(stale);
}

/* nothing to read on fd for a few loop rounds */
static bool silent(int fd)
{
	char b[16];

	pump(20);
	return recv(fd, b, sizeof(b), MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

Test(api, a_deferred_reply_keeps_the_order_and_others_are_served)
{
	int a = client(), b = client();
	json_t *r;

	/* a's second request waits behind its deferred first one */
	say(a, "{\"id\":1,\"command\":\"later\"}\n{\"id\":2,\"command\":\"echo\",\"args\":{\"value\":5}}\n");
	for (int i = 0; i < 50 && !pending; i++)
		pump(1);
	cr_assert_not_null(pending, "the handler ran");
	cr_assert(silent(a), "no reply before the completion");
	cr_assert_eq(echo_calls, 0, "the request behind it has not run");
	/* another client is served meanwhile */
	say(b, "{\"id\":9,\"command\":\"echo\"}\n");
	r = hear(b);
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 9);
	json_decref(r);
	api__complete(pending, 0, json_pack("{s:s}", "state", "done"), NULL);
	pending = NULL;
	r = hear(a);
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 1);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "return"), "state")), "done");
	json_decref(r);
	r = hear(a);
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 2, "then the one that waited");
	json_decref(r);
	close(a);
	close(b);
}

Test(api, a_deferred_error_and_a_refusal_after_defer)
{
	int fd = client();
	json_t *r;

	say(fd, "{\"id\":3,\"command\":\"later\"}\n");
	for (int i = 0; i < 50 && !pending; i++)
		pump(1);
	cr_assert_not_null(pending);
	api__complete(pending, -ETIMEDOUT, NULL, "later: the guest did not eject it");
	pending = NULL;
	r = hear(fd);
	cr_assert_str_eq(err_code(r), "refused");
	cr_assert(strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
			 "did not eject"));
	json_decref(r);
	say(fd, "{\"id\":4,\"command\":\"later\",\"args\":{\"fail\":true}}\n");
	r = hear(fd);
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 4);
	cr_assert_str_eq(err_code(r), "refused", "the reply comes at once");
	json_decref(r);
	close(fd);
}

Test(api, a_client_gone_before_its_deferred_reply)
{
	int fd = client(), other;
	json_t *r;

	say(fd, "{\"id\":1,\"command\":\"later\"}\n");
	for (int i = 0; i < 50 && !pending; i++)
		pump(1);
	cr_assert_not_null(pending);
	close(fd);
	pump(20);
	cr_assert_eq(api__nr_clients(api), 0, "the connection is closed");
	/* the completion finds nobody: nothing breaks */
	api__complete(pending, 0, json_object(), NULL);
	pending = NULL;
	other = client();
	say(other, "{\"command\":\"echo\"}\n");
	r = hear(other);
	cr_assert(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	close(other);
}

/* a destination waiting for its migration: only nested commands answer, the others wait, in order */
Test(api, a_held_socket_answers_only_nested_commands)
{
	int a = client();
	json_t *r;

	cr_assert_eq(api__set_nested(api, "refuse"), 0);
	api__hold(api, true);
	say(a, "{\"id\":1,\"command\":\"echo\",\"args\":{\"value\":1}}\n{\"id\":2,\"command\":\"echo\"}\n");
	pump(20);
	cr_assert(silent(a), "a held socket does not answer echo");
	cr_assert_eq(echo_calls, 0);
	/* a nested command from another client is answered meanwhile */
	{
		int b = client();

		say(b, "{\"id\":7,\"command\":\"refuse\"}\n");
		r = hear(b);
		cr_assert_eq(json_integer_value(json_object_get(r, "id")), 7);
		json_decref(r);
		close(b);
	}
	cr_assert(silent(a));
	/* holds nest */
	api__hold(api, true);
	api__hold(api, false);
	pump(20);
	cr_assert(silent(a), "still held once");
	api__hold(api, false);
	r = hear(a);
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 1, "answered once released, in order");
	json_decref(r);
	r = hear(a);
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 2);
	json_decref(r);
	cr_assert_eq(echo_calls, 2);
	api__hold(NULL, true); /* no socket: nothing to hold */
	close(a);
}
