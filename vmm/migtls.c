// SPDX-License-Identifier: MIT
/* TLS 1.3 for the migration channel: see migtls.h. */
#include "vmm/migtls.h"
#include "vmm/dynlib.h"
#include "vmm/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
/*
 * GnuTLS is opened with the first credentials (migtls__creds_load: at start,
 * before the sandbox), not linked: linked, it and its libraries (p11-kit,
 * libtasn1, libidn2, libunistring, hogweed, gmp, libffi) cost about 2.3 MiB
 * of resident memory in every VMM process, and most never migrate over TLS.
 * The build still checks its headers through pkg-config. gnutls_free and
 * gnutls_malloc are the C library's free and malloc (GnuTLS 3.7 has no
 * other allocator), so this file calls those directly.
 */
#include <gnutls/gnutls.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MIGTLS_LOG "migration-tls"
#define MIGTLS_BUF (64 * 1024)
#define MIGTLS_PAIR_BUF (1 << 20)  /* each way, between the stream code and the relay */
#define MIGTLS_PSK_MIN 16          /* bytes of key at least */
#define MIGTLS_PSK_MAX 64
#define MIGTLS_BYE_MS 2000         /* the close_notify alert at the end */
/* TLS 1.3 only; with a PSK, an ephemeral key exchange on top (forward secrecy) */
#define MIGTLS_PRIO_PSK "SECURE128:-VERS-ALL:+VERS-TLS1.3:+ECDHE-PSK:+DHE-PSK"
#define MIGTLS_PRIO_X509 "SECURE128:-VERS-ALL:+VERS-TLS1.3"

struct migtls_creds {
	bool psk;
	char identity[128];
	uint8_t key[MIGTLS_PSK_MAX];
	size_t key_len;
	gnutls_psk_client_credentials_t psk_cli;
	gnutls_psk_server_credentials_t psk_srv;
	gnutls_certificate_credentials_t x509;
	bool gnutls_up; /* gt.gnutls_global_init() done for these credentials */
	char desc[320];
};

/*
 * One wrapped connection. The record outlives its thread: it is kept in the
 * list (for migtls__error) until a later wrap returns the same fd number,
 * which means the caller closed the old one.
 */
struct migtls_relay {
	const struct migtls_creds *c;
	gnutls_session_t s;
	int sock;          /* the network side */
	int local;         /* the relay's end of the pair */
	int user_fd;       /* the caller's end (its number, for lookups) */
	bool server;
	int timeout_ms;
	char peer[256];
	char err[320];     /* why it ended the connection; "" while fine */
	unsigned long long sent, received; /* atomic: the relay adds, readers load */
	/* under migtls_lock: the thread ended; the caller's fd was reused (free at the end) */
	bool done, orphaned;
	bool authenticated; /* under migtls_lock: the handshake completed */
	struct migtls_relay *next;
};

static pthread_mutex_t migtls_lock = PTHREAD_MUTEX_INITIALIZER;
static struct migtls_relay *migtls_relays;

#define MIGTLS_GNUTLS_SONAME "libgnutls.so.30"
#define MIGTLS_GNUTLS_FNS(X) \
	X(gnutls_bye) X(gnutls_certificate_allocate_credentials) \
	X(gnutls_certificate_free_credentials) X(gnutls_certificate_server_set_request) \
	X(gnutls_certificate_set_x509_key_file) X(gnutls_certificate_set_x509_trust_file) \
	X(gnutls_certificate_verification_status_print) X(gnutls_credentials_set) \
	X(gnutls_deinit) X(gnutls_error_is_fatal) X(gnutls_global_deinit) \
	X(gnutls_global_init) X(gnutls_handshake) X(gnutls_init) X(gnutls_priority_set_direct) \
	X(gnutls_psk_allocate_client_credentials) X(gnutls_psk_allocate_server_credentials) \
	X(gnutls_psk_free_client_credentials) X(gnutls_psk_free_server_credentials) \
	X(gnutls_psk_set_client_credentials) X(gnutls_psk_set_server_credentials_function) \
	X(gnutls_record_check_pending) X(gnutls_record_get_direction) X(gnutls_record_recv) \
	X(gnutls_record_send) X(gnutls_server_name_set) X(gnutls_session_get_desc) \
	X(gnutls_session_get_ptr) X(gnutls_session_get_verify_cert_status) \
	X(gnutls_session_set_ptr) X(gnutls_session_set_verify_cert) X(gnutls_strerror) \
	X(gnutls_transport_set_int2)

/* GnuTLS's functions, opened with the first credentials (migtls_gnutls_open) */
static struct {
#define MIGTLS_FN(f) __typeof__(f) *f;
	MIGTLS_GNUTLS_FNS(MIGTLS_FN)
#undef MIGTLS_FN
	char why[256];
	bool ok;
} gt;

static pthread_once_t migtls_gnutls_once = PTHREAD_ONCE_INIT;

static void migtls_gnutls_open(void)
{
	static const struct dynlib_sym syms[] = {
#define MIGTLS_FN(f) DYNLIB_SYM(gt, f),
		MIGTLS_GNUTLS_FNS(MIGTLS_FN)
#undef MIGTLS_FN
	};
	void *h;

	/* h stays open for the life of the process */
	gt.ok = !dynlib__open(MIGTLS_GNUTLS_SONAME, "libgnutls30", syms, ARRAY_SIZE(syms), &h,
			      gt.why, sizeof(gt.why));
}

/* ---- credentials ---------------------------------------------------------------- */

static int migtls_hex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int migtls_load_psk(struct migtls_creds *c, const char *file, char *err, size_t errlen)
{
	char line[512], *colon, *hex;
	size_t n, i;
	FILE *f = fopen(file, "re");

	if (!f) {
		snprintf(err, errlen, "--migration-psk %s: %s", file, strerror(errno));
		return -errno;
	}
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		snprintf(err, errlen, "--migration-psk %s: empty (expected one line IDENTITY:HEXKEY)",
			 file);
		return -EINVAL;
	}
	fclose(f);
	line[strcspn(line, "\r\n")] = 0;
	colon = strchr(line, ':');
	if (!colon || colon == line || (size_t)(colon - line) >= sizeof(c->identity)) {
		snprintf(err, errlen, "--migration-psk %s: expected IDENTITY:HEXKEY (psktool's format) "
			 "with an identity of 1 to %zu characters", file, sizeof(c->identity) - 1);
		return -EINVAL;
	}
	*colon = 0;
	hex = colon + 1;
	n = strlen(hex);
	if (n % 2 || n / 2 < MIGTLS_PSK_MIN || n / 2 > MIGTLS_PSK_MAX) {
		snprintf(err, errlen, "--migration-psk %s: the key must be %d to %d bytes in hex "
			 "(%zu hex digits given)", file, MIGTLS_PSK_MIN, MIGTLS_PSK_MAX, n);
		return -EINVAL;
	}
	for (i = 0; i < n / 2; i++) {
		int hi = migtls_hex(hex[2 * i]), lo = migtls_hex(hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			snprintf(err, errlen, "--migration-psk %s: the key is not hex", file);
			return -EINVAL;
		}
		c->key[i] = (uint8_t)(hi << 4 | lo);
	}
	c->key_len = n / 2;
	memcpy(c->identity, line, (size_t)(colon - line) + 1); /* its NUL is where ':' was */
	explicit_bzero(line, sizeof(line));
	return 0;
}

/* the server's lookup: only our one identity has a key */
static int migtls_psk_lookup(gnutls_session_t s, const char *username, gnutls_datum_t *key)
{
	const struct migtls_creds *c = gt.gnutls_session_get_ptr(s);

	if (!c || strcmp(username, c->identity))
		return -1;
	key->data = malloc(c->key_len);
	if (!key->data)
		return -1;
	memcpy(key->data, c->key, c->key_len);
	key->size = (unsigned int)c->key_len;
	return 0;
}

int migtls__creds_load(struct migtls_creds **out, const char *psk_file, const char *x509_dir,
		       char *err, size_t errlen)
{
	struct migtls_creds *c;
	int ret;

	*out = NULL;
	if (!!psk_file == !!x509_dir) {
		snprintf(err, errlen, "give one of --migration-psk and --migration-x509");
		return -EINVAL;
	}
	pthread_once(&migtls_gnutls_once, migtls_gnutls_open);
	if (!gt.ok) {
		snprintf(err, errlen, "TLS for migration: %s", gt.why);
		return -ENOENT;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	ret = gt.gnutls_global_init();
	if (ret < 0) {
		snprintf(err, errlen, "GnuTLS does not initialize: %s", gt.gnutls_strerror(ret));
		free(c);
		return -EIO;
	}
	c->gnutls_up = true;
	if (psk_file) {
		gnutls_datum_t key;

		c->psk = true;
		ret = migtls_load_psk(c, psk_file, err, errlen);
		if (ret)
			goto err_free;
		key.data = c->key;
		key.size = (unsigned int)c->key_len;
		if (gt.gnutls_psk_allocate_client_credentials(&c->psk_cli) ||
		    gt.gnutls_psk_allocate_server_credentials(&c->psk_srv)) {
			ret = -ENOMEM;
			snprintf(err, errlen, "--migration-psk: out of memory");
			goto err_free;
		}
		ret = gt.gnutls_psk_set_client_credentials(c->psk_cli, c->identity, &key,
							GNUTLS_PSK_KEY_RAW);
		if (ret < 0) {
			snprintf(err, errlen, "--migration-psk %s: %s", psk_file, gt.gnutls_strerror(ret));
			ret = -EINVAL;
			goto err_free;
		}
		gt.gnutls_psk_set_server_credentials_function(c->psk_srv, migtls_psk_lookup);
		snprintf(c->desc, sizeof(c->desc), "TLS 1.3 with the pre-shared key of identity '%s'",
			 c->identity);
	} else {
		char ca[4096], cert[4096], key[4096];

		snprintf(ca, sizeof(ca), "%s/ca.pem", x509_dir);
		snprintf(cert, sizeof(cert), "%s/cert.pem", x509_dir);
		snprintf(key, sizeof(key), "%s/key.pem", x509_dir);
		if (gt.gnutls_certificate_allocate_credentials(&c->x509)) {
			ret = -ENOMEM;
			snprintf(err, errlen, "--migration-x509: out of memory");
			goto err_free;
		}
		ret = gt.gnutls_certificate_set_x509_trust_file(c->x509, ca, GNUTLS_X509_FMT_PEM);
		if (ret <= 0) {
			snprintf(err, errlen, "--migration-x509 %s: no authority read from %s%s%s", x509_dir,
				 ca, ret < 0 ? ": " : "", ret < 0 ? gt.gnutls_strerror(ret) : "");
			ret = -EINVAL;
			goto err_free;
		}
		ret = gt.gnutls_certificate_set_x509_key_file(c->x509, cert, key, GNUTLS_X509_FMT_PEM);
		if (ret < 0) {
			snprintf(err, errlen, "--migration-x509 %s: %s and %s: %s", x509_dir, cert, key,
				 gt.gnutls_strerror(ret));
			ret = -EINVAL;
			goto err_free;
		}
		snprintf(c->desc, sizeof(c->desc), "TLS 1.3 with X.509 certificates from %s (both "
			 "ends authenticated by its ca.pem)", x509_dir);
	}
	*out = c;
	return 0;

err_free:
	migtls__creds_free(c);
	return ret;
}

void migtls__creds_free(struct migtls_creds *c)
{
	if (!c)
		return;
	if (c->psk_cli)
		gt.gnutls_psk_free_client_credentials(c->psk_cli);
	if (c->psk_srv)
		gt.gnutls_psk_free_server_credentials(c->psk_srv);
	if (c->x509)
		gt.gnutls_certificate_free_credentials(c->x509);
	explicit_bzero(c->key, sizeof(c->key));
	if (c->gnutls_up)
		gt.gnutls_global_deinit();
	free(c);
}

const char *migtls__creds_describe(const struct migtls_creds *c)
{
	return c->desc;
}

/* ---- the relay ------------------------------------------------------------------ */

/* "WHY: WHAT" becomes the relay's reason (the first one stays) and is logged */
static void migtls_fail(struct migtls_relay *r, const char *why, const char *what)
{
	pthread_mutex_lock(&migtls_lock);
	if (!r->err[0])
		snprintf(r->err, sizeof(r->err), "%s: %s", why, what);
	pthread_mutex_unlock(&migtls_lock);
	log_err(MIGTLS_LOG, "%s %s: %s", r->server ? "from" : "to", r->peer, r->err);
}

/*
 * Waits until sock has `events` or deadline_ms passes (-1: none), watching
 * the caller's end: its close ends the wait (-EPIPE). 0, -ETIMEDOUT, -EPIPE.
 */
static int migtls_wait(struct migtls_relay *r, short events, const struct timespec *t0,
		       int deadline_ms)
{
	for (;;) {
		struct pollfd p[2] = { { .fd = r->sock, .events = events },
				       { .fd = r->local, .events = 0 } };
		int left = -1;

		if (deadline_ms >= 0) {
			left = deadline_ms - (int)ms_since(t0);
			if (left <= 0)
				return -ETIMEDOUT;
		}
		if (poll(p, 2, left) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[1].revents & (POLLHUP | POLLERR))
			return -EPIPE;
		if (p[0].revents)
			return 0;
	}
}

static int migtls_handshake(struct migtls_relay *r)
{
	struct timespec t0;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		ret = gt.gnutls_handshake(r->s);
		if (ret == GNUTLS_E_SUCCESS)
			break;
		if (gt.gnutls_error_is_fatal(ret)) {
			char reason[256];

			snprintf(reason, sizeof(reason), "%s%s", gt.gnutls_strerror(ret),
				 r->c->psk ? " (do both hosts have the same --migration-psk?)" : "");
			migtls_fail(r, "TLS handshake failed", reason);
			if (ret == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
				gnutls_datum_t why;
				unsigned int status = gt.gnutls_session_get_verify_cert_status(r->s);

				if (!gt.gnutls_certificate_verification_status_print(
					    status, GNUTLS_CRT_X509, &why, 0)) {
					log_err(MIGTLS_LOG, "%s: the peer's certificate: %s", r->peer,
						why.data);
					free(why.data);
				}
			}
			return -EACCES;
		}
		ret = migtls_wait(r, gt.gnutls_record_get_direction(r->s) ? POLLOUT : POLLIN, &t0,
				  r->timeout_ms);
		if (ret == -ETIMEDOUT) {
			migtls_fail(r, "TLS handshake failed", "no answer in time");
			return ret;
		}
		if (ret) {
			migtls_fail(r, "TLS handshake abandoned", "the connection was given up");
			return ret;
		}
	}
	pthread_mutex_lock(&migtls_lock);
	r->authenticated = true;
	pthread_mutex_unlock(&migtls_lock);
	{
		char *d = gt.gnutls_session_get_desc(r->s);

		log_info(MIGTLS_LOG, "%s %s: %s", r->server ? "from" : "to", r->peer, d ? d : "TLS");
		free(d);
	}
	return 0;
}

/* all of buf into the session; -EPIPE when the caller gave up meanwhile */
static int migtls_send(struct migtls_relay *r, const uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = gt.gnutls_record_send(r->s, buf + off, len - off);

		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
			int ret = migtls_wait(r, POLLOUT, NULL, -1);

			if (ret)
				return ret;
			continue;
		}
		if (n < 0) {
			migtls_fail(r, "TLS send failed", gt.gnutls_strerror((int)n));
			return -EIO;
		}
		off += (size_t)n;
	}
	__atomic_fetch_add(&r->sent, len, __ATOMIC_RELAXED);
	return 0;
}

/* all of buf to the caller's end (blocking: that is the back pressure) */
static int migtls_deliver(struct migtls_relay *r, const uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(r->local, buf + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno; /* the caller closed its end */
		off += (size_t)n;
	}
	__atomic_fetch_add(&r->received, len, __ATOMIC_RELAXED);
	return 0;
}

static void migtls_relay_loop(struct migtls_relay *r, uint8_t *buf)
{
	bool peer_open = true;

	for (;;) {
		struct pollfd p[2] = { { .fd = r->local, .events = POLLIN },
				       { .fd = r->sock, .events = POLLIN } };
		ssize_t n;

		/* records GnuTLS has read already do not show on the socket */
		if (!peer_open || !gt.gnutls_record_check_pending(r->s)) {
			if (poll(p, peer_open ? 2 : 1, -1) < 0) {
				if (errno == EINTR)
					continue;
				migtls_fail(r, "poll", strerror(errno));
				return;
			}
		} else {
			p[1].revents = POLLIN;
		}
		if (p[0].revents) {
			n = recv(r->local, buf, MIGTLS_BUF, MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				return; /* the caller is done: the normal end */
			if (n > 0 && peer_open && migtls_send(r, buf, (size_t)n))
				return;
		}
		if (peer_open && p[1].revents) {
			n = gt.gnutls_record_recv(r->s, buf, MIGTLS_BUF);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
				continue;
			if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION) {
				/* the peer closed: so does the caller's side, once it read all */
				if (n)
					log_info(MIGTLS_LOG, "%s %s: the connection closed without TLS's "
						 "close_notify", r->server ? "from" : "to", r->peer);
				shutdown(r->local, SHUT_WR);
				peer_open = false;
				continue;
			}
			if (n < 0) {
				migtls_fail(r, "TLS: the peer's data did not authenticate or could not be read, "
					    "the connection is dropped", gt.gnutls_strerror((int)n));
				return;
			}
			if (migtls_deliver(r, buf, (size_t)n))
				return;
		}
	}
}

static void *migtls_relay_fn(void *arg)
{
	struct migtls_relay *r = arg;
	uint8_t *buf = malloc(MIGTLS_BUF);

	if (!buf)
		migtls_fail(r, "TLS relay", "out of memory");
	else if (!migtls_handshake(r))
		migtls_relay_loop(r, buf);
	free(buf);
	if (!r->err[0]) {
		/* a clean end: tell the peer, briefly */
		struct timespec t0;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (gt.gnutls_bye(r->s, GNUTLS_SHUT_WR) == GNUTLS_E_AGAIN &&
		       !migtls_wait(r, POLLOUT, &t0, MIGTLS_BYE_MS))
			;
	}
	gt.gnutls_deinit(r->s);
	r->s = NULL;
	close(r->sock);
	close(r->local); /* the caller reads its end to the close, then closes it */
	pthread_mutex_lock(&migtls_lock);
	r->done = true;
	if (r->orphaned)
		free(r); /* out of the list already */
	pthread_mutex_unlock(&migtls_lock);
	return NULL;
}

int migtls__wrap(const struct migtls_creds *c, int sock, bool server, const char *peer_host,
		 int timeout_ms, char *err, size_t errlen)
{
	struct migtls_relay *r, **pp;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	pthread_attr_t attr;
	pthread_t thread;
	int pair[2], ret, size = MIGTLS_PAIR_BUF;
	char host[INET6_ADDRSTRLEN] = "?";

	r = calloc(1, sizeof(*r));
	if (!r) {
		close(sock);
		return -ENOMEM;
	}
	r->c = c;
	r->sock = sock;
	r->server = server;
	r->timeout_ms = timeout_ms;
	if (!getpeername(sock, (struct sockaddr *)&ss, &sl)) {
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host,
				  sizeof(host));
		else if (ss.ss_family == AF_UNIX)
			snprintf(host, sizeof(host), "a unix socket");
	}
	snprintf(r->peer, sizeof(r->peer), "%s", peer_host ? peer_host : host);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair)) {
		ret = -errno;
		snprintf(err, errlen, "socketpair: %s", strerror(-ret));
		goto err_free;
	}
	setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(pair[0], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(pair[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(pair[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	r->local = pair[1];
	r->user_fd = pair[0];
	if (fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK)) {
		ret = -errno;
		snprintf(err, errlen, "fcntl: %s", strerror(-ret));
		goto err_pair;
	}
	ret = gt.gnutls_init(&r->s, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK);
	if (ret < 0) {
		snprintf(err, errlen, "TLS: %s", gt.gnutls_strerror(ret));
		ret = -ENOMEM;
		goto err_pair;
	}
	gt.gnutls_session_set_ptr(r->s, (void *)c);
	ret = gt.gnutls_priority_set_direct(r->s, c->psk ? MIGTLS_PRIO_PSK : MIGTLS_PRIO_X509, NULL);
	if (ret >= 0 && c->psk)
		ret = gt.gnutls_credentials_set(r->s, GNUTLS_CRD_PSK,
					     server ? (void *)c->psk_srv : (void *)c->psk_cli);
	if (ret >= 0 && !c->psk) {
		ret = gt.gnutls_credentials_set(r->s, GNUTLS_CRD_CERTIFICATE, c->x509);
		if (server)
			gt.gnutls_certificate_server_set_request(r->s, GNUTLS_CERT_REQUIRE);
		/* the client checks the name it connected to; the server only the chain */
		gt.gnutls_session_set_verify_cert(r->s, server ? NULL : peer_host, 0);
		if (ret >= 0 && !server && peer_host) {
			struct in6_addr a6;
			struct in_addr a4;

			/* SNI carries names only, never addresses */
			if (inet_pton(AF_INET, peer_host, &a4) != 1 &&
			    inet_pton(AF_INET6, peer_host, &a6) != 1)
				ret = gt.gnutls_server_name_set(r->s, GNUTLS_NAME_DNS, peer_host,
							     strlen(peer_host));
		}
	}
	if (ret < 0) {
		snprintf(err, errlen, "TLS: %s", gt.gnutls_strerror(ret));
		ret = -EINVAL;
		goto err_session;
	}
	gt.gnutls_transport_set_int2(r->s, sock, sock);

	/* the record of an older connection whose fd number this one reuses is done */
	pthread_mutex_lock(&migtls_lock);
	for (pp = &migtls_relays; *pp;) {
		struct migtls_relay *old = *pp;

		if (old->user_fd == r->user_fd) {
			*pp = old->next;
			if (old->done)
				free(old);
			else
				old->orphaned = true; /* its thread frees it as it ends */
		} else {
			pp = &old->next;
		}
	}
	r->next = migtls_relays;
	migtls_relays = r;
	pthread_mutex_unlock(&migtls_lock);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = -pthread_create(&thread, &attr, migtls_relay_fn, r);
	pthread_attr_destroy(&attr);
	if (ret) {
		snprintf(err, errlen, "cannot start the TLS relay: %s", strerror(-ret));
		pthread_mutex_lock(&migtls_lock);
		for (pp = &migtls_relays; *pp; pp = &(*pp)->next)
			if (*pp == r) {
				*pp = r->next;
				break;
			}
		pthread_mutex_unlock(&migtls_lock);
		goto err_session;
	}
	return pair[0];

err_session:
	gt.gnutls_deinit(r->s);
err_pair:
	close(pair[0]);
	close(pair[1]);
err_free:
	close(sock);
	free(r);
	return ret;
}

static struct migtls_relay *migtls_find(int fd)
{
	struct migtls_relay *r;

	for (r = migtls_relays; r; r = r->next)
		if (r->user_fd == fd)
			return r;
	return NULL;
}

int migtls__error(int fd, char *buf, size_t len)
{
	struct migtls_relay *r;
	int ret = -ENOENT;

	pthread_mutex_lock(&migtls_lock);
	r = migtls_find(fd);
	if (r && r->err[0]) {
		snprintf(buf, len, "%s", r->err);
		ret = 0;
	}
	pthread_mutex_unlock(&migtls_lock);
	return ret;
}

bool migtls__authenticated(int fd)
{
	struct migtls_relay *r;
	bool ok;

	pthread_mutex_lock(&migtls_lock);
	r = migtls_find(fd);
	ok = r && r->authenticated;
	pthread_mutex_unlock(&migtls_lock);
	return ok;
}

int migtls__counters(int fd, unsigned long long *sent, unsigned long long *received)
{
	struct migtls_relay *r;
	int ret = -ENOENT;

	pthread_mutex_lock(&migtls_lock);
	r = migtls_find(fd);
	if (r) {
		*sent = __atomic_load_n(&r->sent, __ATOMIC_RELAXED);
		*received = __atomic_load_n(&r->received, __ATOMIC_RELAXED);
		ret = 0;
	}
	pthread_mutex_unlock(&migtls_lock);
	return ret;
}
