/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The netlink connector transport: the pure framing (hv_cn_build,
 * hv_cn_parse, the sender rule) on messages built in memory, the libnl
 * error translation, and, as root, the transport on a real
 * NETLINK_CONNECTOR socket against a raw socket playing the driver.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv-cn.h"
#include "hv-transport.h"
#include "hv-vss.h"
#include "transport-netlink.h"

static const struct hv_vss_msg freeze_msg = {.vss_hdr.operation = HV_VSS_OP_FREEZE};

static int build(uint8_t *buf, size_t size, uint32_t idx, uint32_t val, const void *data,
		 size_t len)
{
	return hv_cn_build(buf, size, idx, val, 7, 3, 0, data, len);
}

static void test_build_parse(void **state)
{
	uint8_t buf[256];
	hv_cn_frame f;
	int n;

	n = build(buf, sizeof(buf), HV_CN_VSS_IDX, HV_CN_VSS_VAL, &freeze_msg, sizeof(freeze_msg));
	/* 16 + 20 + 12 = 48, already 4-aligned */
	assert_int_equal(n, 48);
	assert_int_equal(hv_cn_parse(buf, (size_t)n, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 8192, &f), 0);
	assert_int_equal(f.len, sizeof(freeze_msg));
	assert_int_equal(f.seq, 7);
	assert_int_equal(f.ack, 3);
	assert_int_equal(f.idx, HV_CN_VSS_IDX);
	assert_ptr_equal(f.data, buf + HV_CN_HDR_LEN);
	assert_memory_equal(f.data, &freeze_msg, sizeof(freeze_msg));

	/* A 4-byte version answer; an odd length is padded to NLMSG_ALIGN. */
	n = build(buf, sizeof(buf), HV_CN_VSS_IDX, HV_CN_VSS_VAL, "abcde", 5);
	assert_int_equal(n, 16 + 20 + 8);
	assert_int_equal(hv_cn_parse(buf, (size_t)n, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 8192, &f), 0);
	assert_int_equal(f.len, 5);

	/* An empty payload is a valid frame; the service rejects it. */
	n = build(buf, sizeof(buf), HV_CN_VSS_IDX, HV_CN_VSS_VAL, NULL, 0);
	assert_int_equal(n, HV_CN_HDR_LEN);
	assert_int_equal(hv_cn_parse(buf, (size_t)n, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 8192, &f), 0);
	assert_int_equal(f.len, 0);
}

static void test_build_limits(void **state)
{
	static uint8_t big[70000];
	uint8_t buf[64];

	assert_int_equal(build(buf, 47, HV_CN_VSS_IDX, HV_CN_VSS_VAL, &freeze_msg, 12), -EMSGSIZE);
	assert_int_equal(build(buf, 48, HV_CN_VSS_IDX, HV_CN_VSS_VAL, &freeze_msg, 12), 48);
	/* cn_msg.len is a u16 */
	assert_int_equal(build(big, sizeof(big), 1, 1, big, 65536), -EMSGSIZE);
	assert_int_equal(build(NULL, 64, 1, 1, NULL, 0), -EINVAL);
	assert_int_equal(build(buf, sizeof(buf), 1, 1, NULL, 4), -EINVAL);
}

static void test_truncated(void **state)
{
	uint8_t buf[256];
	hv_cn_frame f;
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	struct hv_cn_msg *cn = (struct hv_cn_msg *)(buf + NLMSG_HDRLEN);
	int n = build(buf, sizeof(buf), HV_CN_VSS_IDX, HV_CN_VSS_VAL, &freeze_msg, 12);

	/* every proper prefix of the datagram is refused */
	for (int cut = 0; cut < n; cut++)
		assert_int_equal(
		    hv_cn_parse(buf, (size_t)cut, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 8192, &f),
		    -EBADMSG);

	/* nlmsg_len shorter than the connector header */
	nlh->nlmsg_len = NLMSG_HDRLEN + 10;
	assert_int_equal(hv_cn_parse(buf, (size_t)n, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 8192, &f),
			 -EBADMSG);
	/* nlmsg_len longer than what arrived */
	nlh->nlmsg_len = (uint32_t)n + 4;
	assert_int_equal(hv_cn_parse(buf, (size_t)n, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 8192, &f),
			 -EBADMSG);
	nlh->nlmsg_len = (uint32_t)n;

	/* cn_msg.len says more than the netlink message holds */
	cn->len = 13;
	assert_int_equal(hv_cn_parse(buf, (size_t)n, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 8192, &f),
			 -EBADMSG);
	cn->len = 0xffff;
	assert_int_equal(hv_cn_parse(buf, (size_t)n, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 8192, &f),
			 -EBADMSG);
	cn->len = 12;
	assert_int_equal(hv_cn_parse(buf, (size_t)n, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 8192, &f), 0);

	/* netlink control messages are not connector messages */
	nlh->nlmsg_type = NLMSG_ERROR;
	assert_int_equal(hv_cn_parse(buf, (size_t)n, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 8192, &f),
			 -EBADMSG);
	nlh->nlmsg_type = NLMSG_NOOP;
	assert_int_equal(hv_cn_parse(buf, (size_t)n, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 8192, &f),
			 -EBADMSG);
	nlh->nlmsg_type = NLMSG_OVERRUN;
	assert_int_equal(hv_cn_parse(buf, (size_t)n, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 8192, &f),
			 -EBADMSG);
}

static void test_oversized(void **state)
{
	static uint8_t buf[HV_CN_HDR_LEN + 16384];
	static uint8_t payload[12500];
	hv_cn_frame f;
	int n;

	/* AUTO_RECOVER may be 12,500 bytes on the wire; more than the service takes */
	n = build(buf, sizeof(buf), HV_CN_VSS_IDX, HV_CN_VSS_VAL, payload, sizeof(payload));
	assert_true(n > 0);
	assert_int_equal(hv_cn_parse(buf, (size_t)n, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 8192, &f),
			 -EMSGSIZE);
	assert_int_equal(hv_cn_parse(buf, (size_t)n, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 12500, &f), 0);
	/* trailing bytes after the netlink message are ignored */
	n = build(buf, sizeof(buf), HV_CN_VSS_IDX, HV_CN_VSS_VAL, &freeze_msg, 12);
	assert_int_equal(hv_cn_parse(buf, (size_t)n + 100, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 8192, &f),
			 0);
	assert_int_equal(f.len, 12);
}

static void test_wrong_id(void **state)
{
	uint8_t buf[256];
	hv_cn_frame f;
	int n;

	/* KVP's id on the VSS transport, and a wrong value */
	n = build(buf, sizeof(buf), HV_CN_KVP_IDX, HV_CN_KVP_VAL, &freeze_msg, 12);
	assert_int_equal(hv_cn_parse(buf, (size_t)n, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 8192, &f),
			 -ENOMSG);
	n = build(buf, sizeof(buf), HV_CN_VSS_IDX, 2, &freeze_msg, 12);
	assert_int_equal(hv_cn_parse(buf, (size_t)n, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 8192, &f),
			 -ENOMSG);
	assert_int_equal(hv_cn_parse(buf, (size_t)n, HV_CN_VSS_IDX, 2, 8192, &f), 0);
}

static void test_sender(void **state)
{
	/* the kernel only; in user-peer mode one user-space port only, never the kernel */
	assert_true(hv_cn_sender_allowed(0, false, 0));
	assert_false(hv_cn_sender_allowed(0, true, 4242));
	assert_false(hv_cn_sender_allowed(0, true, 0));
	assert_false(hv_cn_sender_allowed(4242, false, 0));
	assert_false(hv_cn_sender_allowed(4242, false, 4242));
	assert_false(hv_cn_sender_allowed(0x80000001U, false, 0));
	assert_true(hv_cn_sender_allowed(4242, true, 0));
	assert_true(hv_cn_sender_allowed(4242, true, 4242));
	assert_false(hv_cn_sender_allowed(4243, true, 4242));

	assert_int_equal(hv_cn_group_mask(HV_CN_VSS_IDX), 1U << 9);
	assert_int_equal(hv_cn_group_mask(1), 1);
	assert_int_equal(hv_cn_group_mask(32), 1U << 31);
	assert_int_equal(hv_cn_group_mask(0), 0);
	assert_int_equal(hv_cn_group_mask(33), 0);
}

static void test_nl_errors(void **state)
{
	/* libnl's codes, by value (netlink/errno.h), either sign */
	assert_int_equal(hv_nl_error_to_errno(0), 0);
	assert_int_equal(hv_nl_error_to_errno(-4), -EAGAIN); /* NLE_AGAIN */
	assert_int_equal(hv_nl_error_to_errno(4), -EAGAIN);
	assert_int_equal(hv_nl_error_to_errno(-5), -ENOMEM);	/* NLE_NOMEM */
	assert_int_equal(hv_nl_error_to_errno(-3), -EBADF);	/* NLE_BAD_SOCK */
	assert_int_equal(hv_nl_error_to_errno(-27), -EACCES);	/* NLE_NOACCESS */
	assert_int_equal(hv_nl_error_to_errno(-28), -EPERM);	/* NLE_PERM */
	assert_int_equal(hv_nl_error_to_errno(-18), -EMSGSIZE); /* NLE_MSG_TRUNC */
	assert_int_equal(hv_nl_error_to_errno(-1), -EIO);	/* NLE_FAILURE */
	assert_int_equal(hv_nl_error_to_errno(-9999), -EIO);
}

static void test_selection(void **state)
{
	hv_service s = {.name = "vss", .device = "/nonexistent/hv_vss", .max_msg = 8192};
	hv_transport *t = NULL;
	const char *why = NULL;

	assert_int_equal(hv_transport_kind_from_string("netlink"), HV_TRANSPORT_NETLINK);
	assert_string_equal(hv_transport_kind_to_string(HV_TRANSPORT_NETLINK), "netlink");

	/* no connector id: netlink is not possible, auto finds nothing */
	assert_int_equal(hv_transport_new(&s, HV_TRANSPORT_NETLINK, NULL, &t, &why), -EOPNOTSUPP);
	assert_int_equal(hv_transport_new(&s, HV_TRANSPORT_AUTO, NULL, &t, &why), -ENODEV);
	assert_non_null(why);

	s.cn_idx = HV_CN_VSS_IDX;
	s.cn_val = HV_CN_VSS_VAL;
	if (!hv_transport_connector_available()) {
		assert_int_equal(hv_transport_new(&s, HV_TRANSPORT_AUTO, NULL, &t, &why), -ENODEV);
		return;
	}

	/* no node: auto falls back to the connector */
	assert_int_equal(hv_transport_new(&s, HV_TRANSPORT_AUTO, NULL, &t, &why), 0);
	assert_string_equal(t->ops->name, "netlink");
	assert_int_equal(t->kind, HV_TRANSPORT_NETLINK);
	assert_string_equal(t->device, "netlink:0xa.1");
	assert_non_null(strstr(why, "connector"));
	hv_transport_free(t);

	/* the node wins in auto */
	s.device = "/dev/null";
	assert_int_equal(hv_transport_new(&s, HV_TRANSPORT_AUTO, NULL, &t, &why), 0);
	assert_string_equal(t->ops->name, "chardev");
	hv_transport_free(t);

	assert_int_equal(hv_transport_new(&s, HV_TRANSPORT_NETLINK, NULL, &t, &why), 0);
	assert_string_equal(t->ops->name, "netlink");
	hv_transport_free(t);
}

/* ---- on a real connector socket (root) ---------------------------------- */

static int vss_reply(const void *buf, size_t len, uint32_t *ret_version)
{
	uint32_t v;

	if (len != sizeof(v))
		return -EBADMSG;
	memcpy(&v, buf, sizeof(v));
	*ret_version = v;
	return 0;
}

static const hv_service nl_service = {
    .name = "vss",
    .device = "/nonexistent/hv_vss",
    .max_msg = 8192,
    .register_msg = &(const struct hv_vss_msg){.vss_hdr.operation = HV_VSS_OP_REGISTER1},
    .register_len = sizeof(struct hv_vss_msg),
    .register_reply_len = 4,
    .parse_register_reply = vss_reply,
    /* An unused connector index: nothing else on this machine listens there. */
    .cn_idx = 0x1d,
    .cn_val = 0x7,
};

/* The same, with the legacy registration an old driver takes instead. */
static const hv_service nl_service_legacy = {
    .name = "vss",
    .device = "/nonexistent/hv_vss",
    .max_msg = 8192,
    .register_msg = &(const struct hv_vss_msg){.vss_hdr.operation = HV_VSS_OP_REGISTER1},
    .register_len = sizeof(struct hv_vss_msg),
    .register_reply_len = 4,
    .parse_register_reply = vss_reply,
    .cn_idx = 0x1d,
    .cn_val = 0x7,
    .legacy_register_msg = &(const struct hv_vss_msg){.vss_hdr.operation = HV_VSS_OP_REGISTER},
    .legacy_register_len = sizeof(struct hv_vss_msg),
    .legacy_version = HV_VSS_OP_REGISTER,
};

/* A raw connector socket playing the driver: joins the group, learns the port. */
static int peer_open(uint32_t group)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
	int g = (int)group;

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static ssize_t peer_recv(int fd, uint8_t *buf, size_t size, uint32_t *ret_port)
{
	struct sockaddr_nl sa;
	socklen_t sl = sizeof(sa);
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (poll(&p, 1, 2000) != 1)
		return -ETIMEDOUT;
	ssize_t n = recvfrom(fd, buf, size, 0, (struct sockaddr *)&sa, &sl);
	if (n >= 0 && ret_port)
		*ret_port = sa.nl_pid;
	return n;
}

static void peer_send(int fd, uint32_t port, uint32_t idx, uint32_t val, const void *data,
		      size_t len)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_pid = port};
	uint8_t buf[256];
	int n = hv_cn_build(buf, sizeof(buf), idx, val, 11, 5, 0, data, len);

	assert_true(n > 0);
	assert_int_equal(sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&sa, sizeof(sa)), n);
}

/* recv until something other than -EAGAIN or 2 s */
static ssize_t recv_wait(hv_transport *t, void *buf, size_t size)
{
	for (int i = 0; i < 40; i++) {
		struct pollfd p = {.fd = t->fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 50) != 1)
			continue;
		n = hv_transport_recv(t, buf, size);
		if (n != -EAGAIN)
			return n;
	}
	return -EAGAIN;
}

static void test_socket(void **state)
{
	const uint32_t ver = HV_VSS_OP_REGISTER1;
	struct hv_vss_msg reply = {.error = 0};
	uint8_t buf[512];
	hv_cn_frame f;
	hv_transport *t = NULL;
	uint32_t port = 0;
	ssize_t n;
	int peer;

	if (getuid() != 0 || !hv_transport_connector_available())
		skip();
	peer = peer_open(nl_service.cn_idx);
	if (peer < 0)
		skip();

	assert_int_equal(hv_transport_new(&nl_service, HV_TRANSPORT_NETLINK, NULL, &t, NULL), 0);
	hv_transport_set_allow_user_peer(t, true);
	t->handshake_timeout_ms = 3000;

	/* The driver's side of the handshake runs while open() waits: fork it. */
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		n = peer_recv(peer, buf, sizeof(buf), &port);
		if (n < 0 || hv_cn_parse(buf, (size_t)n, 0x1d, 7, 8192, &f) < 0 || f.len != 12 ||
		    f.data[0] != HV_VSS_OP_REGISTER1 || port == 0)
			_exit(1);
		/* a foreign id and a garbage datagram first: both dropped */
		peer_send(peer, port, 0x1e, 7, &ver, 4);
		struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_pid = port};
		(void)sendto(peer, "junk", 4, 0, (struct sockaddr *)&sa, sizeof(sa));
		peer_send(peer, port, 0x1d, 7, &ver, 4);
		_exit(0);
	}
	assert_int_equal(hv_transport_open(t), 0);
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(t->version, HV_VSS_OP_REGISTER1);
	assert_int_equal(t->n_dropped, 2);

	port = 0;

	/* a request from the peer; the reply goes back to it with the request's seq */
	struct sockaddr_nl me;
	socklen_t ml = sizeof(me);
	assert_int_equal(getsockname(t->fd, (struct sockaddr *)&me, &ml), 0);
	peer_send(peer, me.nl_pid, 0x1d, 7, &freeze_msg, sizeof(freeze_msg));
	n = recv_wait(t, buf, sizeof(buf));
	assert_int_equal(n, sizeof(freeze_msg));
	assert_int_equal(buf[0], HV_VSS_OP_FREEZE);
	assert_int_equal(hv_transport_send(t, &reply, sizeof(reply)), 0);
	n = peer_recv(peer, buf, sizeof(buf), &port);
	assert_true(n > 0);
	assert_int_equal(port, me.nl_pid);
	assert_int_equal(hv_cn_parse(buf, (size_t)n, 0x1d, 7, 8192, &f), 0);
	assert_int_equal(f.len, sizeof(reply));
	assert_int_equal(f.seq, 11);
	assert_int_equal(f.ack, 5);

	/* another user-space port is refused even with the allowance */
	int other = peer_open(0x1e);
	struct sockaddr_nl oa;
	socklen_t ol = sizeof(oa);

	assert_true(other >= 0);
	assert_int_equal(getsockname(other, (struct sockaddr *)&oa, &ol), 0);
	peer_send(other, me.nl_pid, 0x1d, 7, &freeze_msg, sizeof(freeze_msg));
	n = recv_wait(t, buf, sizeof(buf));
	assert_int_equal(n, -EAGAIN);
	assert_int_equal(t->n_refused, 1);
	assert_int_equal(t->refused_port, oa.nl_pid);
	close(other);

	/* without the allowance, the bound peer is refused too */
	hv_transport_set_allow_user_peer(t, false);
	peer_send(peer, me.nl_pid, 0x1d, 7, &freeze_msg, sizeof(freeze_msg));
	n = recv_wait(t, buf, sizeof(buf));
	assert_int_equal(n, -EAGAIN);
	assert_int_equal(t->n_refused, 2);
	ol = sizeof(oa);
	assert_int_equal(getsockname(peer, (struct sockaddr *)&oa, &ol), 0);
	assert_int_equal(t->refused_port, oa.nl_pid);

	hv_transport_free(t);
	close(peer);
}

static void test_handshake_timeout(void **state)
{
	hv_transport *t = NULL;

	if (getuid() != 0 || !hv_transport_connector_available())
		skip();

	/* no kernel handler for this id (/proc/net/connector): refused at once */
	assert_int_equal(hv_transport_new(&nl_service, HV_TRANSPORT_NETLINK, NULL, &t, NULL), 0);
	t->handshake_timeout_ms = 200;
	if (access("/proc/net/connector", R_OK) == 0)
		assert_int_equal(hv_transport_open(t), -ENODEV);
	assert_false(hv_transport_is_open(t));

	/* waiting for a user-space peer that never answers REGISTER1: a clear error, no hang */
	hv_transport_set_allow_user_peer(t, true);
	assert_int_equal(hv_transport_open(t), -ETIMEDOUT);
	assert_false(hv_transport_is_open(t));
	hv_transport_free(t);
}

/*
 * An old driver: REGISTER1 gets no answer, so after legacy_fallback_ms the
 * transport sends REGISTER (128) and is registered at version 128. A version
 * answer that still comes afterwards is dropped, not taken for a request.
 */
static void test_legacy_fallback(void **state)
{
	const uint32_t ver = HV_VSS_OP_REGISTER1;
	uint8_t buf[512];
	hv_transport *t = NULL;
	int64_t t0, dt;
	struct timespec ts;
	ssize_t n;
	int peer, status;

	if (getuid() != 0 || !hv_transport_connector_available())
		skip();
	peer = peer_open(nl_service_legacy.cn_idx);
	if (peer < 0)
		skip();

	assert_int_equal(hv_transport_new(&nl_service_legacy, HV_TRANSPORT_NETLINK, NULL, &t, NULL),
			 0);
	hv_transport_set_allow_user_peer(t, true);
	assert_int_equal(t->legacy_fallback_ms, 1000); /* the default */
	t->handshake_timeout_ms = 5000;
	t->legacy_fallback_ms = 300;

	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		uint32_t port = 0, port2 = 0;
		hv_cn_frame f;

		/* REGISTER1 first, left unanswered like the old vss_cn_callback() does */
		n = peer_recv(peer, buf, sizeof(buf), &port);
		if (n < 0 || hv_cn_parse(buf, (size_t)n, 0x1d, 7, 8192, &f) < 0 ||
		    f.len != sizeof(struct hv_vss_msg) || f.data[0] != HV_VSS_OP_REGISTER1 || !port)
			_exit(1);
		/* then the legacy REGISTER from the same port */
		n = peer_recv(peer, buf, sizeof(buf), &port2);
		if (n < 0 || hv_cn_parse(buf, (size_t)n, 0x1d, 7, 8192, &f) < 0 ||
		    f.len != sizeof(struct hv_vss_msg) || f.data[0] != HV_VSS_OP_REGISTER ||
		    port2 != port)
			_exit(2);
		/* a late version answer, then a real request */
		peer_send(peer, port, 0x1d, 7, &ver, 4);
		peer_send(peer, port, 0x1d, 7, &freeze_msg, sizeof(freeze_msg));
		_exit(0);
	}

	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	assert_int_equal(hv_transport_open(t), 0);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	dt = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - t0;
	/* the fallback timeout, not the handshake timeout */
	assert_true(dt >= 250 && dt < 3000);
	assert_true(t->legacy_registered);
	assert_int_equal(t->version, HV_VSS_OP_REGISTER);

	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	n = recv_wait(t, buf, sizeof(buf));
	assert_int_equal(n, sizeof(freeze_msg));
	assert_int_equal(buf[0], HV_VSS_OP_FREEZE);
	assert_int_equal(t->n_late_version, 1);
	assert_int_equal(t->n_dropped, 0);

	/* after the first request, a version-sized message is the daemon's to judge */
	struct sockaddr_nl me;
	socklen_t ml = sizeof(me);
	assert_int_equal(getsockname(t->fd, (struct sockaddr *)&me, &ml), 0);
	peer_send(peer, me.nl_pid, 0x1d, 7, &ver, 4);
	n = recv_wait(t, buf, sizeof(buf));
	assert_int_equal(n, 4);
	assert_int_equal(t->n_late_version, 1);

	hv_transport_free(t);
	close(peer);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_build_parse),	    cmocka_unit_test(test_build_limits),
	    cmocka_unit_test(test_truncated),	    cmocka_unit_test(test_oversized),
	    cmocka_unit_test(test_wrong_id),	    cmocka_unit_test(test_sender),
	    cmocka_unit_test(test_nl_errors),	    cmocka_unit_test(test_selection),
	    cmocka_unit_test(test_socket),	    cmocka_unit_test(test_handshake_timeout),
	    cmocka_unit_test(test_legacy_fallback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
