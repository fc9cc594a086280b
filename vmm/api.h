/* SPDX-License-Identifier: MIT */
/*
 * The control socket (docs/api.md): a Unix stream socket, mode 0600, that
 * accepts root or the VMM's own uid (SO_PEERCRED). One JSON request per
 * line, one JSON reply per request, in order; events to the clients that
 * subscribed. Everything runs on the VMM thread's event loop: a request's
 * handler runs there too (Firecracker's api_server_adapter is the model), so
 * handlers take no device locks across threads.
 *
 *   request  {"id": ANY, "command": "NAME", "args": {...}}   (id and args optional)
 *   reply    {"id": ANY, "ok": true, "return": {...}}
 *            {"id": ANY, "ok": false, "error": {"code": CODE, "message": TEXT}}
 *   event    {"event": "NAME", "data": {...}, "timestamp": {"seconds": S, "microseconds": U}}
 *
 * Error codes: parse-error, invalid-request, unknown-command, invalid-args,
 * refused (the VMM cannot do it now; the message says why), too-long (a line
 * over API_MAX_LINE: the connection is closed after the reply), busy (too
 * many clients: closed), permission-denied (another uid: closed). A client
 * whose unread output passes API_MAX_OUTBUF is disconnected; no client can
 * block the loop.
 *
 * This layer knows no command but its own (subscribe, commands): the
 * composition root registers the rest (api__register), so vmm/ core stays
 * unaware of concrete devices.
 */
#ifndef MINIVMM_VMM_API_H
#define MINIVMM_VMM_API_H

#include <jansson.h>
#include <stddef.h>

#include "vmm/evloop.h"
#include "vmm/util.h"

#define API_PROTOCOL_VERSION 1
#define API_MAX_LINE (64 * 1024)
#define API_MAX_CLIENTS 16
#define API_MAX_OUTBUF (256 * 1024)
#define API_MAX_READ_PER_EVENT (256 * 1024)
#define API_MAX_COMMANDS 32

struct api;

/*
 * A command: args is the request's "args" object ({} when absent). On
 * success return 0 and set *ret to a new JSON value or leave it NULL (the
 * reply's "return" is then {}). On failure return -EINVAL for bad arguments
 * (code invalid-args) or another -errno (code refused), with the reason in
 * err.
 */
typedef int (*api_cmd_fn)(void *opaque, json_t *args, json_t **ret, char *err, size_t errlen);

/*
 * A command that finishes later (device-del waits for the guest's eject):
 * the handler calls api__defer() and returns API_DEFERRED; the reply is sent
 * when it calls api__complete() with the handle, exactly once, on the loop
 * thread. Meanwhile that client's next requests wait (replies stay in
 * order); other clients are served. A client that goes away meanwhile loses
 * the reply, nothing else. A handler that called api__defer() and then
 * returns an error instead replies at once (the handle is dropped).
 */
#define API_DEFERRED 1
struct api_pending;

/* only inside a command handler: the handle for the request being handled, or NULL (no memory) */
struct api_pending *api__defer(struct api *api);
/*
 * Sends the deferred reply and frees the handle: rc and ret as a handler's
 * (ret is taken), err the reason when rc != 0. The api may be gone by then
 * (the handle outlives it).
 */
void api__complete(struct api_pending *p, int rc, json_t *ret, const char *err);

/* listens on path (an existing socket nobody listens on is replaced) */
int api__create(struct evloop *loop, const char *path, struct api **out) __must_check;
/* closes every connection and removes the socket file */
void api__destroy(struct api *api);
int api__register(struct api *api, const char *name, const char *help, api_cmd_fn fn,
		  void *opaque) __must_check;
/*
 * Lets a registered command run while another command's handler runs the
 * event loop (a migration serving the guest between records): other
 * clients' requests for it are answered then, in order per client; every
 * other request waits for the running handler to return. Such a command
 * must only read state or set a flag the running handler polls
 * (migrate-cancel, status). -ENOENT when name is not registered.
 */
int api__set_nested(struct api *api, const char *name) __must_check;
/*
 * While held (a destination waiting for its migration), only the nested
 * commands are answered, as while a handler runs the loop; the others wait
 * and are answered, in order, once released. Calls nest; NULL api is a no-op.
 */
void api__hold(struct api *api, bool hold);
/* sends an event to its subscribers; takes the reference to data (may be NULL) */
void api__event(struct api *api, const char *name, json_t *data);
/* clients connected now (tests, status) */
unsigned int api__nr_clients(const struct api *api);

#endif
