// SPDX-License-Identifier: MIT
/*
 * The control socket: listener, connections, line framing, JSON requests and
 * replies, events (see api.h for the protocol).
 *
 * Connections are closed at one safe point only (api_reap): evloop__del_fd
 * run on the loop thread processes other completions while it waits, so a
 * connection is first unlinked (dead list), and only then its watch removed,
 * its fd closed and its memory freed, outside any iteration of the lists.
 */
#include "vmm/api.h"
#include "vmm/log.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define API_LOG "api"

struct api_cmd {
	const char *name;
	const char *help;
	api_cmd_fn fn;
	void *opaque;
	bool nested; /* may run while another handler runs the loop */
};

struct api_pending {
	struct api_client *client; /* NULL once the client is gone */
	json_t *id;
	char name[32];
};

struct api_client {
	struct api *api;
	struct api_pending *pending; /* a deferred request: later lines wait */
	int fd;
	unsigned int nr;          /* for the log */
	struct evloop_watch watch;
	char *in;                 /* a partial line, API_MAX_LINE at most */
	size_t in_len;
	char *out;                /* output the socket did not take yet */
	size_t out_len;
	bool subscribed;
	bool busy;       /* api_client_fn is on the stack for it (a handler runs the loop) */
	json_t *event_filter;     /* array of event names; NULL: all */
	bool dead;                /* close at the next reap */
	struct api_client *next;
};

struct api {
	struct evloop *loop;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;
	struct evloop_watch watch;
	struct api_cmd cmds[API_MAX_COMMANDS];
	unsigned int nr_cmds;
	struct api_client *clients;
	struct api_client *dead;
	unsigned int nr_clients, next_nr;
	unsigned int depth;       /* api callbacks on the stack */
	bool reaping;
	struct log_ratelimit rl;
	struct api_client *cur;   /* the client whose request a handler runs for */
	json_t *cur_id;
	const char *cur_name;
	struct api_pending *deferred; /* api__defer during that handler */
	/*
	 * A handler may run the event loop itself (a snapshot drains the
	 * devices' I/O): connections are not read meanwhile, and are looked
	 * at again from a queued call once it returns.
	 */
	unsigned int in_handler;
	bool missed;
	struct evloop_call rescan_call;
};

static void api_client_kill(struct api_client *c)
{
	struct api *api = c->api;
	struct api_client **pp;

	if (c->dead)
		return;
	if (c->pending) {
		c->pending->client = NULL; /* its reply has nobody to go to */
		c->pending = NULL;
	}
	for (pp = &api->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	c->dead = true;
	c->next = api->dead;
	api->dead = c;
	api->nr_clients--;
}

/*
 * A Unix socket closed with unread input resets the peer, which then loses
 * the last reply (a too-long line's error): end our side, and discard what
 * is already queued (bounded) before the close.
 */
static void api_client_drain(int fd)
{
	char buf[4096];
	size_t total = 0;
	ssize_t n;

	shutdown(fd, SHUT_WR);
	while (total < API_MAX_OUTBUF && (n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		total += (size_t)n;
}

/* the safe point: close dead connections (not while a callback runs) */
static void api_reap(struct api *api)
{
	struct api_client *c;

	if (api->depth || api->reaping)
		return;
	api->reaping = true;
	while ((c = api->dead)) {
		api->dead = c->next;
		if (c->watch.active)
			evloop__del_fd(api->loop, &c->watch);
		api_client_drain(c->fd);
		close(c->fd);
		json_decref(c->event_filter);
		free(c->in);
		free(c->out);
		log_debug(API_LOG, "client %u: closed", c->nr);
		free(c);
	}
	api->reaping = false;
}

/*
 * sends as much of buf as the socket takes now: the bytes sent, or -1 after
 * a failure that ends the connection (c is then dead)
 */
static ssize_t api_client_send_some(struct api_client *c, const char *buf, size_t len)
{
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = send(c->fd, buf + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			api_client_kill(c);
			return -1;
		}
		off += (size_t)n;
	}
	return (ssize_t)off;
}

/* sends what is pending, then buf; keeps what the socket does not take */
static void api_client_write(struct api_client *c, const char *buf, size_t len)
{
	ssize_t n;
	char *p;

	if (c->dead)
		return;
	if (c->out_len) {
		n = api_client_send_some(c, c->out, c->out_len);
		if (n < 0)
			return;
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
	if (!c->out_len && len) {
		n = api_client_send_some(c, buf, len);
		if (n < 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
	if (!len)
		return;
	if (c->out_len + len > API_MAX_OUTBUF) {
		log_warn_rl(&c->api->rl, API_LOG, "client %u does not read its replies (%zu bytes waiting): disconnected",
			    c->nr, c->out_len + len);
		api_client_kill(c);
		return;
	}
	p = realloc(c->out, c->out_len + len);
	if (!p) {
		api_client_kill(c);
		return;
	}
	c->out = p;
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
}

/* writes one JSON value as a line; takes the reference */
static void api_client_send(struct api_client *c, json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT);
	size_t len;

	json_decref(v);
	if (!s) {
		api_client_kill(c);
		return;
	}
	len = strlen(s);
	s[len] = '\n'; /* json_dumps' NUL becomes the line's end */
	api_client_write(c, s, len + 1);
	free(s);
}

static json_t *api_error(json_t *id, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static json_t *api_error(json_t *id, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:O?,s:b,s:{s:s,s:s}}", "id", id, "ok", 0, "error", "code", code,
			 "message", msg);
}

static json_t *api_ok(json_t *id, json_t *ret)
{
	return json_pack("{s:O?,s:b,s:o}", "id", id, "ok", 1, "return", ret ? ret : json_object());
}

static json_t *api_builtin_commands(struct api *api)
{
	json_t *list = json_array();
	unsigned int i;

	json_array_append_new(list, json_pack("{s:s,s:s}", "name", "subscribe", "help",
					      "receive events: args {\"events\": [NAME...]} (all when absent)"));
	json_array_append_new(list, json_pack("{s:s,s:s}", "name", "commands", "help",
					      "the commands this VMM knows"));
	for (i = 0; i < api->nr_cmds; i++)
		json_array_append_new(list, json_pack("{s:s,s:s}", "name", api->cmds[i].name,
						      "help", api->cmds[i].help));
	return json_pack("{s:o}", "commands", list);
}

static json_t *api_subscribe(struct api_client *c, json_t *id, json_t *args)
{
	json_t *ev = json_object_get(args, "events"), *v;
	size_t i;

	if (ev) {
		if (!json_is_array(ev))
			return api_error(id, "invalid-args", "subscribe: \"events\" must be an array of names");
		json_array_foreach(ev, i, v) {
			if (!json_is_string(v))
				return api_error(id, "invalid-args", "subscribe: event %zu is not a string", i);
		}
	}
	json_decref(c->event_filter);
	c->event_filter = ev ? json_incref(ev) : NULL;
	c->subscribed = true;
	return api_ok(id, NULL);
}

static void api_client_fn(void *opaque, int res);

/* what the connections sent while a handler ran the loop */
static void api_rescan(void *opaque)
{
	struct api *api = opaque;
	struct api_client *c, *next;

	for (c = api->clients; c; c = next) {
		next = c->next;
		api_client_fn(c, POLLIN);
	}
}

int api__set_nested(struct api *api, const char *name)
{
	unsigned int i;

	for (i = 0; i < api->nr_cmds; i++) {
		if (!strcmp(api->cmds[i].name, name)) {
			api->cmds[i].nested = true;
			return 0;
		}
	}
	return -ENOENT;
}

void api__hold(struct api *api, bool hold)
{
	if (!api)
		return;
	if (hold) {
		api->in_handler++; /* as if a handler ran the loop: only nested commands go */
		return;
	}
	if (api->in_handler)
		api->in_handler--;
	if (api->missed && !api->in_handler) {
		api->missed = false;
		evloop__call(api->loop, &api->rescan_call, api_rescan, api);
	}
}

/* a request line that may be answered while another handler runs the loop */
static bool api_line_nested(struct api *api, const char *line, size_t len)
{
	json_t *req = json_loadb(line, len, 0, NULL);
	const char *name = json_string_value(json_object_get(req, "command"));
	bool ok = false;
	unsigned int i;

	for (i = 0; name && i < api->nr_cmds; i++)
		if (!strcmp(api->cmds[i].name, name))
			ok = api->cmds[i].nested;
	json_decref(req);
	return ok;
}

/* one request line: its reply */
static json_t *api_request(struct api_client *c, const char *line, size_t len)
{
	struct api *api = c->api;
	json_error_t jerr;
	json_t *req, *id, *cmd, *args, *ret = NULL, *reply;
	const char *name, *key;
	char err[512] = "";
	unsigned int i;
	bool nested;
	json_t *v;
	int rc;

	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req)
		return api_error(NULL, "parse-error", "not JSON: %s (column %d)", jerr.text, jerr.column);
	if (!json_is_object(req)) {
		json_decref(req);
		return api_error(NULL, "invalid-request", "a request is a JSON object");
	}
	id = json_object_get(req, "id");
	json_object_foreach(req, key, v) {
		if (strcmp(key, "id") && strcmp(key, "command") && strcmp(key, "args")) {
			reply = api_error(id, "invalid-request", "unknown member \"%.64s\"", key);
			goto out;
		}
	}
	cmd = json_object_get(req, "command");
	if (!json_is_string(cmd)) {
		reply = api_error(id, "invalid-request", "\"command\" must be a string");
		goto out;
	}
	name = json_string_value(cmd);
	args = json_object_get(req, "args");
	if (args && !json_is_object(args)) {
		reply = api_error(id, "invalid-request", "\"args\" must be an object");
		goto out;
	}
	if (!args) {
		args = json_object();
		json_object_set_new(req, "args", args);
	}
	if (!strcmp(name, "subscribe")) {
		reply = api_subscribe(c, id, args);
		goto out;
	}
	if (!strcmp(name, "commands")) {
		reply = api_ok(id, api_builtin_commands(api));
		goto out;
	}
	for (i = 0; i < api->nr_cmds; i++)
		if (!strcmp(api->cmds[i].name, name))
			break;
	if (i == api->nr_cmds) {
		reply = api_error(id, "unknown-command", "unknown command \"%.64s\" (\"commands\" lists them)",
				  name);
		goto out;
	}
	nested = api->cur != NULL;
	{
		/* a nested command runs inside another handler: keep the outer one's context */
		struct api_client *outer = api->cur;
		json_t *outer_id = api->cur_id;
		const char *outer_name = api->cur_name;
		struct api_pending *outer_deferred = api->deferred;

		api->cur = c;
		api->cur_id = id;
		api->cur_name = name;
		api->deferred = NULL;
		api->in_handler++;
		rc = api->cmds[i].fn(api->cmds[i].opaque, args, &ret, err, sizeof(err));
		api->in_handler--;
		api->cur = outer;
		api->cur_id = outer_id;
		api->cur_name = outer_name;
		if (outer) {
			/* a nested command never defers (api__set_nested) */
			if (api->deferred) {
				json_decref(api->deferred->id);
				free(api->deferred);
			}
			api->deferred = outer_deferred;
			if (rc == API_DEFERRED) {
				rc = -EPROTO;
				snprintf(err, sizeof(err), "internal error: a nested command deferred");
			}
		}
	}
	if (api->missed && !api->in_handler) {
		api->missed = false;
		evloop__call(api->loop, &api->rescan_call, api_rescan, api);
	}
	if (!nested && rc != API_DEFERRED && api->deferred) {
		/* deferred, then failed before handing the handle on: reply now */
		json_decref(api->deferred->id);
		free(api->deferred);
		api->deferred = NULL;
	}
	if (rc == API_DEFERRED) {
		if (api->deferred && !c->dead) {
			c->pending = api->deferred;
			api->deferred = NULL;
			reply = NULL; /* api__complete sends it */
			goto out;
		}
		/* a handler that deferred without a handle is a bug: say so to the client */
		rc = -EPROTO;
		snprintf(err, sizeof(err), "internal error: the reply was deferred without a handle");
	}
	if (rc) {
		json_decref(ret);
		reply = api_error(id, rc == -EINVAL ? "invalid-args" : "refused", "%s: %s", name,
				  err[0] ? err : strerror(-rc));
	} else {
		reply = api_ok(id, ret);
	}
out:
	json_decref(req);
	return reply;
}

/* the complete lines in c's buffer; true when it stopped for a running handler */
static bool api_client_lines(struct api_client *c)
{
	size_t start = 0, i;
	bool stopped = false;

	for (i = 0; i < c->in_len && !c->dead && !c->pending; i++) {
		json_t *reply;

		if (c->in[i] != '\n')
			continue;
		if (i > start && c->api->in_handler &&
		    !api_line_nested(c->api, c->in + start, i - start)) {
			c->api->missed = true; /* after the running handler, from api_rescan */
			stopped = true;
			break;
		}
		if (i > start) {
			reply = api_request(c, c->in + start, i - start);
			if (reply)
				api_client_send(c, reply);
		}
		start = i + 1;
	}
	if (c->dead)
		return stopped;
	memmove(c->in, c->in + start, c->in_len - start);
	c->in_len -= start;
	if (c->in_len >= API_MAX_LINE && !c->pending && !stopped) {
		api_client_send(c, api_error(NULL, "too-long", "a request line is %d bytes at most",
					     API_MAX_LINE));
		api_client_kill(c);
	}
	return stopped;
}

static void api_client_fn(void *opaque, int res)
{
	struct api_client *c = opaque;
	struct api *api = c->api;
	size_t got = 0;
	ssize_t n;

	if (c->dead)
		return;
	if (api->in_handler && (c == api->cur || c->busy)) {
		api->missed = true; /* its own handler runs: later, from api_rescan */
		return;
	}
	api->depth++;
	c->busy = true;
	/* lines left when a handler ran (only nested commands went then) */
	if (c->in_len && !api->in_handler && !c->pending)
		(void)api_client_lines(c);
	if (res < 0 || (res & (POLLERR | POLLNVAL))) {
		api_client_kill(c);
		goto out;
	}
	/* what the socket did not take before */
	if (c->out_len)
		api_client_write(c, NULL, 0);
	while (!c->dead) {
		if (got >= API_MAX_READ_PER_EVENT) {
			log_warn_rl(&api->rl, API_LOG, "client %u floods the socket: disconnected", c->nr);
			api_client_kill(c);
			break;
		}
		if (c->pending && c->in_len >= API_MAX_LINE)
			break; /* a deferred reply is due first: the socket holds the rest */
		n = recv(c->fd, c->in + c->in_len, API_MAX_LINE - c->in_len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			api_client_kill(c); /* EOF or error */
			break;
		}
		got += (size_t)n;
		c->in_len += (size_t)n;
		if (api_client_lines(c))
			break; /* the rest waits for the running handler; the socket holds it */
	}
out:
	c->busy = false;
	api->depth--;
	api_reap(api);
}

static void api_accept_one(struct api *api, int fd)
{
	struct ucred cred = { 0 };
	socklen_t len = sizeof(cred);
	struct api_client *c;
	const char *why = NULL, *code = NULL;
	char line[256];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
		why = "cannot read the peer's credentials";
		code = "permission-denied";
	} else if (cred.uid != 0 && cred.uid != geteuid()) {
		why = "only root and the VMM's own user may use this socket";
		code = "permission-denied";
	} else if (api->nr_clients >= API_MAX_CLIENTS) {
		why = "too many clients";
		code = "busy";
	}
	if (why) {
		int n = snprintf(line, sizeof(line),
				 "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n",
				 code, why);

		if (send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			log_debug(API_LOG, "refusing a client: %s", strerror(errno));
		log_warn_rl(&api->rl, API_LOG, "connection refused: %s (uid %u)", why,
			    (unsigned int)cred.uid);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c)
		c->in = malloc(API_MAX_LINE);
	if (!c || !c->in) {
		if (c)
			free(c);
		close(fd);
		return;
	}
	c->api = api;
	c->fd = fd;
	c->nr = ++api->next_nr;
	if (evloop__add_fd(api->loop, &c->watch, fd, POLLIN, api_client_fn, c)) {
		free(c->in);
		free(c);
		close(fd);
		return;
	}
	c->next = api->clients;
	api->clients = c;
	api->nr_clients++;
	log_debug(API_LOG, "client %u: connected (uid %u, pid %d)", c->nr, (unsigned int)cred.uid,
		  (int)cred.pid);
}

static void api_listen_fn(void *opaque, int res)
{
	struct api *api = opaque;
	int fd;

	api->depth++;
	for (;;) {
		fd = accept4(api->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn_rl(&api->rl, API_LOG, "accept: %s", strerror(errno));
			break;
		}
		api_accept_one(api, fd);
	}
	api->depth--;
	api_reap(api);
}

/* a socket file nobody listens on is stale: it may be replaced */
static int api_stale(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, ret;

	if (lstat(sa->sun_path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (!ret)
		return -EADDRINUSE;
	return unlink(sa->sun_path) ? -errno : 0;
}

int api__create(struct evloop *loop, const char *path, struct api **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct api *api;
	mode_t old_mask;
	int ret;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_err(API_LOG, "--api %s: the path is longer than %zu bytes", path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	api = calloc(1, sizeof(*api));
	if (!api)
		return -ENOMEM;
	api->loop = loop;
	api->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT;
	strcpy(api->path, path);
	ret = api_stale(&sa);
	if (ret) {
		log_err(API_LOG, "--api %s: %s", path,
			ret == -EADDRINUSE ? "another process listens on it" :
			ret == -EEXIST ? "exists and is not a socket" : strerror(-ret));
		goto err_free;
	}
	api->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (api->fd < 0) {
		ret = -errno;
		goto err_free;
	}
	/* created 0600: no window in which others could connect */
	old_mask = umask(0177);
	ret = bind(api->fd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	umask(old_mask);
	if (ret) {
		log_err(API_LOG, "--api %s: bind: %s", path, strerror(-ret));
		goto err_close;
	}
	if (chmod(path, 0600) || listen(api->fd, 16)) {
		ret = -errno;
		log_err(API_LOG, "--api %s: %s", path, strerror(-ret));
		goto err_unlink;
	}
	ret = evloop__add_fd(loop, &api->watch, api->fd, POLLIN, api_listen_fn, api);
	if (ret)
		goto err_unlink;
	log_info(API_LOG, "control socket %s (protocol %d)", path, API_PROTOCOL_VERSION);
	*out = api;
	return 0;

err_unlink:
	unlink(path);
err_close:
	close(api->fd);
err_free:
	free(api);
	return ret;
}

void api__destroy(struct api *api)
{
	if (!api)
		return;
	evloop__del_fd(api->loop, &api->watch);
	close(api->fd);
	unlink(api->path);
	while (api->clients)
		api_client_kill(api->clients);
	api->depth = 0;
	api_reap(api);
	free(api);
}

int api__register(struct api *api, const char *name, const char *help, api_cmd_fn fn, void *opaque)
{
	unsigned int i;

	if (!strcmp(name, "subscribe") || !strcmp(name, "commands"))
		return -EEXIST;
	for (i = 0; i < api->nr_cmds; i++)
		if (!strcmp(api->cmds[i].name, name))
			return -EEXIST;
	if (api->nr_cmds >= API_MAX_COMMANDS)
		return -ENOSPC;
	api->cmds[api->nr_cmds++] = (struct api_cmd){ name, help, fn, opaque, false };
	return 0;
}

static bool api_wants(const struct api_client *c, const char *name)
{
	json_t *v;
	size_t i;

	if (!c->subscribed)
		return false;
	if (!c->event_filter)
		return true;
	json_array_foreach(c->event_filter, i, v)
		if (!strcmp(json_string_value(v), name))
			return true;
	return false;
}

void api__event(struct api *api, const char *name, json_t *data)
{
	struct api_client *c, *next;
	struct timeval tv;
	json_t *ev;

	gettimeofday(&tv, NULL);
	ev = json_pack("{s:s,s:o,s:{s:I,s:I}}", "event", name, "data", data ? data : json_object(),
		       "timestamp", "seconds", (json_int_t)tv.tv_sec, "microseconds",
		       (json_int_t)tv.tv_usec);
	if (!ev)
		return;
	api->depth++;
	for (c = api->clients; c; c = next) {
		next = c->next; /* a failed write moves c to the dead list */
		if (api_wants(c, name))
			api_client_send(c, json_incref(ev));
	}
	api->depth--;
	json_decref(ev);
	api_reap(api);
}

unsigned int api__nr_clients(const struct api *api)
{
	return api->nr_clients;
}

struct api_pending *api__defer(struct api *api)
{
	struct api_pending *p;

	if (!api->cur || api->deferred)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->client = api->cur;
	p->id = json_incref(api->cur_id);
	snprintf(p->name, sizeof(p->name), "%s", api->cur_name);
	api->deferred = p;
	return p;
}

void api__complete(struct api_pending *p, int rc, json_t *ret, const char *err)
{
	struct api_client *c = p->client;
	struct api *api;
	json_t *reply;

	if (!c) {
		json_decref(ret);
		goto out;
	}
	api = c->api;
	c->pending = NULL;
	if (rc) {
		json_decref(ret);
		reply = api_error(p->id, rc == -EINVAL ? "invalid-args" : "refused", "%s: %s", p->name,
				  err && err[0] ? err : strerror(-rc));
	} else {
		reply = api_ok(p->id, ret);
	}
	api->depth++;
	api_client_send(c, reply);
	/* the requests that waited behind this one, then what the socket holds */
	if (!c->dead)
		api_client_lines(c);
	if (!c->dead && !c->pending)
		api_client_fn(c, POLLIN);
	api->depth--;
	api_reap(api);
out:
	json_decref(p->id);
	free(p);
}
