// SPDX-License-Identifier: MIT
/*
 * The control socket's request parsing (vmm/api.c): line framing with
 * partial lines and the 64 KiB limit, JSON requests (jansson), the request
 * members, the built-in subscribe/commands, dispatch to registered commands
 * (one that checks its args, one that defers its reply, a nested one, one
 * that raises events), replies and event filters. A client is connected
 * through a socketpair and accepted as api_listen_fn accepts one; its bytes
 * are read by the event loop's watch, exactly as from a real client.
 *
 * vmm/api.c is included here (its client functions are file-static); the
 * harness then defines all of api.o's symbols, so the library's copy is not
 * linked in.
 *
 * Input: u8 chunking (1 + b % 4 sends, the rest split evenly), u8 how the
 * deferred request ends (0 ok, 1 refused, 2 the client goes first), then
 * the bytes the client sends.
 */
#include "../../vmm/api.c"

#include <stdlib.h>

#include "fuzz.h"

static struct evloop loop;
static struct api *api;
static struct api_pending *pending;
static char sock_path[108];

static int cmd_echo(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	json_t *v = json_object_get(args, "value");

	if (v && !json_is_integer(v)) {
		snprintf(err, errlen, "\"value\" must be an integer");
		return -EINVAL;
	}
	*ret = json_pack("{s:I,s:O?}", "value", (json_int_t)(v ? json_integer_value(v) : 0), "args",
			 args);
	return 0;
}

static int cmd_later(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	if (pending || json_is_true(json_object_get(args, "fail"))) {
		snprintf(err, errlen, "busy");
		return -EBUSY;
	}
	pending = api__defer(api);
	return pending ? API_DEFERRED : -ENOMEM;
}

static int cmd_event(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	const char *name = json_string_value(json_object_get(args, "name"));

	api__event(api, name ? name : "tick", json_pack("{s:i}", "n", 7));
	return 0;
}

static int cmd_status(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen)
{
	*ret = json_pack("{s:s}", "state", "running");
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	if (evloop__init(&loop, 64))
		abort();
	snprintf(sock_path, sizeof(sock_path), "/tmp/minivmm-fuzz-api-%d.sock", (int)getpid());
	if (api__create(&loop, sock_path, &api) ||
	    api__register(api, "echo", "echo args", cmd_echo, NULL) ||
	    api__register(api, "later", "deferred", cmd_later, NULL) ||
	    api__register(api, "event", "raise an event", cmd_event, NULL) ||
	    api__register(api, "status", "nested", cmd_status, NULL) ||
	    api__set_nested(api, "status"))
		abort();
	/* the listening socket is not needed: clients come through socketpairs */
	unlink(sock_path);
	return 0;
}

static bool alive(struct api_client *c)
{
	struct api_client *x;

	for (x = api->clients; x; x = x->next)
		if (x == c)
			return true;
	return false;
}

static void drain(int fd)
{
	char buf[65536];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

static void run_loop(struct api_client *c)
{
	(void)evloop__run_once(&loop, false);
	(void)evloop__run_once(&loop, false);
	if (alive(c) && !c->dead)
		api_client_fn(c, POLLIN); /* what the watch would say next */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_client *c;
	struct fuzz_in in;
	unsigned int chunks, i;
	uint8_t end;
	int sv[2];

	fuzz_in_init(&in, data, size);
	chunks = 1 + fuzz_u8(&in) % 4;
	end = fuzz_u8(&in) % 3;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv))
		abort();
	api_accept_one(api, sv[0]);
	c = api->clients;
	if (!c || c->fd != sv[0])
		abort();
	for (i = 0; i < chunks; i++) {
		size_t len = i + 1 == chunks ? in.n : in.n / (chunks - i), got;
		const uint8_t *p = fuzz_take(&in, len, &got);

		while (got) {
			ssize_t n = send(sv[1], p, got, MSG_NOSIGNAL);

			if (n <= 0) {
				run_loop(c);
				drain(sv[1]);
				if (!alive(c))
					break;
				continue;
			}
			p += n;
			got -= (size_t)n;
		}
		run_loop(c);
		drain(sv[1]);
		if (pending && end < 2) {
			struct api_pending *pd = pending;

			pending = NULL;
			api__complete(pd, end ? -EBUSY : 0,
				      end ? NULL : json_pack("{s:b}", "done", 1),
				      end ? "refused" : NULL);
			drain(sv[1]);
		}
	}
	/* the client hangs up: EOF, the connection is reaped */
	close(sv[1]);
	if (alive(c))
		run_loop(c);
	if (pending) {
		struct api_pending *pd = pending;

		pending = NULL;
		api__complete(pd, 0, NULL, NULL); /* its client is gone: dropped */
	}
	(void)evloop__run_once(&loop, false);
	if (api->nr_clients || api->clients)
		abort(); /* the closed connection was not reaped */
	return 0;
}
