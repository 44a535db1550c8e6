/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The netlink connector transport (NETLINK_CONNECTOR), on libnl-3.
 *
 * Driver behaviour (Linux drivers/hv/hv_utils_transport.c, hv_snapshot.c):
 * the driver's connector callback is registered for one id {idx, val}; the
 * first connector message puts the transport in netlink mode, and every
 * message the driver sends (the version answer to REGISTER1, host
 * requests) is multicast to group idx by cn_netlink_send(). So we bind our
 * own port, join group idx, register by sending the service's registration
 * message to the kernel (port 0), and answer every request to the port it
 * came from: the kernel in production. The driver ignores the return value
 * of its handler over the connector, so a refused reply is not reported.
 *
 * Everything received is checked (hv_cn_parse): a truncated, oversized or
 * foreign-id message is dropped and counted (t->n_dropped) and recv returns
 * -EAGAIN. Messages from a user-space port are refused (t->n_refused,
 * t->refused_port). In user-peer mode (tests against the emulated driver)
 * it is the other way round: the registration is multicast to the
 * service's group instead of sent to the kernel, so that the peer learns
 * our port and a real driver on the machine never hears of us, and only
 * the first user-space port heard from (per open) is taken, never port 0.
 *
 * libnl error codes are turned into -errno here and nowhere else.
 */
#include "hv-transport.h"
#include "transport-netlink.h"

#include <errno.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hv-cn.h"

#define NL_RCVBUF (256 * 1024)

typedef struct nl_priv {
	struct nl_sock *sk;
	uint32_t next_seq;  /* for messages we originate (registration) */
	uint32_t peer_port; /* sender of the last accepted request */
	uint32_t user_peer; /* the user-space peer allowed, once heard from */
	uint32_t req_seq, req_ack;
	bool expect_late_version; /* legacy fallback taken, no request yet */
	uint8_t *txbuf;
	size_t txsize;
} nl_priv;

int hv_nl_error_to_errno(int nle)
{
	if (nle < 0)
		nle = -nle;

	switch (nle) {
	case NLE_SUCCESS:
		return 0;
	case NLE_INTR:
	case NLE_DUMP_INTR:
		return -EINTR;
	case NLE_BAD_SOCK:
		return -EBADF;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_EXIST:
		return -EEXIST;
	case NLE_INVAL:
		return -EINVAL;
	case NLE_RANGE:
	case NLE_ATTRSIZE:
		return -ERANGE;
	case NLE_MSGSIZE:
	case NLE_MSG_OVERFLOW:
	case NLE_MSG_TRUNC:
		return -EMSGSIZE;
	case NLE_OPNOTSUPP:
	case NLE_MSGTYPE_NOSUPPORT:
	case NLE_SRCRT_NOSUPPORT:
		return -EOPNOTSUPP;
	case NLE_AF_NOSUPPORT:
	case NLE_AF_MISMATCH:
		return -EAFNOSUPPORT;
	case NLE_OBJ_NOTFOUND:
	case NLE_NOATTR:
	case NLE_MISSING_ATTR:
	case NLE_PKTLOC_FILE:
		return -ENOENT;
	case NLE_SEQ_MISMATCH:
	case NLE_MSG_TOOSHORT:
	case NLE_PARSE_ERR:
		return -EBADMSG;
	case NLE_NOADDR:
		return -EADDRNOTAVAIL;
	case NLE_BUSY:
		return -EBUSY;
	case NLE_PROTO_MISMATCH:
		return -EPROTONOSUPPORT;
	case NLE_NOACCESS:
		return -EACCES;
	case NLE_PERM:
	case NLE_IMMUTABLE:
		return -EPERM;
	case NLE_NODEV:
		return -ENODEV;
	case NLE_NOCACHE:
	case NLE_OBJ_MISMATCH:
	case NLE_FAILURE:
	default:
		return -EIO;
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends one connector message to @port (and @groups); 0 or -errno. */
static int nl_send_to(hv_transport *t, uint32_t port, uint32_t groups, uint32_t seq, uint32_t ack,
		      const void *data, size_t len)
{
	nl_priv *p = t->priv;
	int n, r;

	n = hv_cn_build(p->txbuf, p->txsize, t->service->cn_idx, t->service->cn_val, seq, ack,
			nl_socket_get_local_port(p->sk), data, len);
	if (n < 0)
		return n;

	nl_socket_set_peer_port(p->sk, port);
	nl_socket_set_peer_groups(p->sk, groups);
	r = nl_sendto(p->sk, p->txbuf, (size_t)n);
	if (r < 0)
		return hv_nl_error_to_errno(r);

	return r == n ? 0 : -EIO;
}

/*
 * One datagram: its payload copied to @buf. -EAGAIN when there was none or
 * it was dropped (malformed, foreign id, refused sender).
 */
static ssize_t nl_recv_one(hv_transport *t, void *buf, size_t size)
{
	nl_priv *p = t->priv;
	struct sockaddr_nl nla = {0};
	unsigned char *msg = NULL;
	size_t max = size < t->service->max_msg ? size : t->service->max_msg;
	hv_cn_frame f;
	int n, r;

	n = nl_recv(p->sk, &nla, &msg, NULL);
	if (n == 0) {
		free(msg);
		return -EAGAIN;
	}
	if (n < 0) {
		free(msg);
		if (-n == NLE_MSG_TRUNC) {
			t->n_dropped++;
			return -EAGAIN;
		}
		/* ENOBUFS (receive queue overrun) becomes NLE_NOMEM: messages were lost. */
		if (-n == NLE_NOMEM)
			return -ENOBUFS;
		return hv_nl_error_to_errno(n);
	}

	/* our own registration, multicast in user-peer mode */
	if (nla.nl_pid && nla.nl_pid == nl_socket_get_local_port(p->sk)) {
		free(msg);
		return -EAGAIN;
	}

	if (!hv_cn_sender_allowed(nla.nl_pid, t->allow_user_peer, p->user_peer)) {
		t->n_refused++;
		t->refused_port = nla.nl_pid;
		free(msg);
		return -EAGAIN;
	}

	r = hv_cn_parse(msg, (size_t)n, t->service->cn_idx, t->service->cn_val, max, &f);
	if (r < 0) {
		t->n_dropped++;
		free(msg);
		return -EAGAIN;
	}

	memcpy(buf, f.data, f.len);
	/* the first well-formed message of a user-space peer binds it */
	if (nla.nl_pid && !p->user_peer)
		p->user_peer = nla.nl_pid;
	p->peer_port = nla.nl_pid;
	p->req_seq = f.seq;
	p->req_ack = f.ack;
	free(msg);
	return (ssize_t)f.len;
}

/*
 * Sends a registration message: to the kernel (port 0), as the driver
 * expects. A user-space peer cannot see that: in that (test) mode, multicast
 * it to the service's group instead and leave a real driver alone. A sendmsg
 * to a group is always also a unicast, so that goes to our own port, and
 * recv drops it.
 */
static int nl_send_register(hv_transport *t, const void *msg, size_t len)
{
	nl_priv *p = t->priv;

	if (t->allow_user_peer)
		return nl_send_to(t, nl_socket_get_local_port(p->sk),
				  hv_cn_group_mask(t->service->cn_idx), p->next_seq++, 0, msg, len);
	return nl_send_to(t, 0, 0, p->next_seq++, 0, msg, len);
}

/* Waits up to @timeout_ms for the version answer; 0, -ETIMEDOUT or -errno. */
static int nl_wait_version(hv_transport *t, uint8_t *buf, size_t bufsize, int timeout_ms)
{
	const hv_service *s = t->service;
	int64_t deadline = now_ms() + timeout_ms;
	int r;

	for (;;) {
		struct pollfd pfd = {.fd = t->fd, .events = POLLIN};
		int64_t left = deadline - now_ms();
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;

		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;

		n = nl_recv_one(t, buf, bufsize);
		if (n == -EAGAIN)
			continue;
		if (n < 0)
			return (int)n;

		if (s->parse_register_reply)
			return s->parse_register_reply(buf, (size_t)n, &t->version);
		return (size_t)n == s->register_reply_len ? 0 : -EBADMSG;
	}
}

/*
 * REGISTER1 first; current drivers answer it with their version. Old
 * drivers (hv_snapshot.c before REGISTER1) take only the legacy REGISTER
 * while waiting for a daemon and ignore anything else without answering:
 * when the answer has not come within t->legacy_fallback_ms, send the
 * legacy registration, which has no answer, and count as registered. A
 * version answer that still comes later is dropped by netlink_recv().
 */
static int nl_handshake(hv_transport *t)
{
	const hv_service *s = t->service;
	nl_priv *p = t->priv;
	bool legacy = s->legacy_register_msg && s->legacy_register_len;
	int timeout_ms = t->handshake_timeout_ms;
	size_t bufsize;
	uint8_t *buf;
	int r;

	t->legacy_registered = false;
	p->expect_late_version = false;

	r = nl_send_register(t, s->register_msg, s->register_len);
	if (r < 0)
		return r;

	if (s->register_reply_len == 0) {
		t->version = 0;
		return 0;
	}

	bufsize = s->max_msg > s->register_reply_len ? s->max_msg : s->register_reply_len;
	buf = calloc(1, bufsize);
	if (!buf)
		return -ENOMEM;

	if (legacy && t->legacy_fallback_ms < timeout_ms)
		timeout_ms = t->legacy_fallback_ms;

	r = nl_wait_version(t, buf, bufsize, timeout_ms);
	if (r == -ETIMEDOUT && legacy) {
		r = nl_send_register(t, s->legacy_register_msg, s->legacy_register_len);
		if (r == 0) {
			t->version = s->legacy_version;
			t->legacy_registered = true;
			p->expect_late_version = true;
		}
	}

	free(buf);
	return r;
}

/*
 * Whether the kernel has a connector handler for @idx:@val, from the list
 * in /proc/net/connector ("name idx:val" lines): 1 yes, 0 no, -errno when
 * the list cannot be read (then we do not know).
 */
static int connector_has_handler(uint32_t idx, uint32_t val)
{
	char line[256];
	int found = 0;
	FILE *f = fopen("/proc/net/connector", "re");

	if (!f)
		return -errno;

	while (fgets(line, sizeof(line), f)) {
		unsigned int i, v;
		char name[64];

		if (sscanf(line, "%63s %u:%u", name, &i, &v) == 3 && i == idx && v == val) {
			found = 1;
			break;
		}
	}

	fclose(f);
	return found;
}

static void nl_free_priv(hv_transport *t)
{
	nl_priv *p = t->priv;

	if (!p)
		return;

	if (p->sk)
		nl_socket_free(p->sk); /* closes the fd */
	free(p->txbuf);
	free(p);
	t->priv = NULL;
}

static int netlink_open(hv_transport *t)
{
	const hv_service *s = t->service;
	nl_priv *p;
	int r;

	if (!s->cn_idx)
		return -EOPNOTSUPP;

	/*
	 * No driver (hv_utils not loaded, not a Hyper-V guest): say so now
	 * rather than send a registration nobody takes and time out. A
	 * user-space peer (tests) is not in that list.
	 */
	if (!t->allow_user_peer && connector_has_handler(s->cn_idx, s->cn_val) == 0)
		return -ENODEV;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	t->priv = p;

	p->txsize = s->max_msg > s->register_len ? s->max_msg : s->register_len;
	if (s->legacy_register_len > p->txsize)
		p->txsize = s->legacy_register_len;
	p->txsize += HV_CN_HDR_LEN + 4;
	p->txbuf = malloc(p->txsize);
	p->sk = nl_socket_alloc();
	if (!p->txbuf || !p->sk) {
		r = -ENOMEM;
		goto fail;
	}

	/* Connector traffic has no netlink sequence or ack discipline. */
	nl_socket_disable_seq_check(p->sk);
	nl_socket_disable_auto_ack(p->sk);

	r = nl_connect(p->sk, NETLINK_CONNECTOR);
	if (r < 0) {
		r = hv_nl_error_to_errno(r);
		goto fail;
	}

	r = nl_socket_set_nonblocking(p->sk);
	if (r < 0) {
		r = hv_nl_error_to_errno(r);
		goto fail;
	}

	/* Best effort: a larger queue makes an overrun (lost request) unlikely. */
	(void)nl_socket_set_buffer_size(p->sk, NL_RCVBUF, 0);

	r = nl_socket_add_membership(p->sk, (int)s->cn_idx);
	if (r < 0) {
		r = hv_nl_error_to_errno(r);
		goto fail;
	}

	p->next_seq = 1;
	t->fd = nl_socket_get_fd(p->sk);
	r = nl_handshake(t);
	if (r < 0)
		goto fail;

	return 0;
fail:
	nl_free_priv(t);
	t->fd = -1;
	return r;
}

/*
 * After the legacy fallback, a version answer may still come (a driver that
 * was only slow): it is no request, so it is dropped and counted, until the
 * first request shows the handshake is over.
 */
static ssize_t netlink_recv(hv_transport *t, void *buf, size_t size)
{
	const hv_service *s = t->service;
	nl_priv *p = t->priv;
	ssize_t n = nl_recv_one(t, buf, size);
	uint32_t version;

	if (n < 0 || !p->expect_late_version)
		return n;

	if ((size_t)n == s->register_reply_len &&
	    (!s->parse_register_reply || s->parse_register_reply(buf, (size_t)n, &version) == 0)) {
		t->n_late_version++;
		return -EAGAIN;
	}

	p->expect_late_version = false;
	return n;
}

/* The reply goes to the sender of the request, with its seq and ack, as the original daemon did. */
static int netlink_send(hv_transport *t, const void *buf, size_t len)
{
	nl_priv *p = t->priv;

	return nl_send_to(t, p->peer_port, 0, p->req_seq, p->req_ack, buf, len);
}

static void netlink_close(hv_transport *t)
{
	nl_free_priv(t);
}

const hv_transport_ops hv_transport_netlink_ops = {
    .name = "netlink",
    .open = netlink_open,
    .recv = netlink_recv,
    .send = netlink_send,
    .close = netlink_close,
};
