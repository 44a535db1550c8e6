/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The emulated driver over the netlink connector; see emu-netlink.h. */
#include "emu-netlink.h"

#include <errno.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "emu-util.h"
#include "hv-cn.h"
#include "hv-vss.h"

#define RXBUF (HV_CN_HDR_LEN + EMU_MSG_MAX + 64)

struct emu_netlink {
	struct emu_chardev *c;
	uint32_t idx, val;
	emu_event_fn event;
	void *userdata;

	int fd;
	int stop_fd;
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t lock; /* port, seq, filter */
	emu_sender_fn accept;
	void *accept_ud;
	uint32_t daemon_port; /* 0: none registered yet */
	bool legacy;	      /* an old driver: REGISTER1 unknown, never answered */
	uint32_t seq;	      /* of our last message */
	uint8_t tx[RXBUF];
};

static void nl_event(struct emu_netlink *nl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void nl_event(struct emu_netlink *nl, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (!nl->event)
		return;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	nl->event(emu_now_ns(), "netlink", buf, nl->userdata);
}

/* emu_deliver_fn: called with the device lock held. */
static int nl_deliver(const void *msg, size_t len, void *userdata)
{
	struct emu_netlink *nl = userdata;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	int n, r = 0;

	pthread_mutex_lock(&nl->lock);
	if (!nl->daemon_port) {
		/* hvutil_transport_send() in INIT mode */
		r = -EINVAL;
		goto out;
	}

	sa.nl_pid = nl->daemon_port;
	n = hv_cn_build(nl->tx, sizeof(nl->tx), nl->idx, nl->val, ++nl->seq, 0, 0, msg, len);
	if (n < 0) {
		r = n;
		goto out;
	}

	if (sendto(nl->fd, nl->tx, (size_t)n, 0, (struct sockaddr *)&sa, sizeof(sa)) != n) {
		r = errno ? -errno : -EIO;
		nl_event(nl, "send to port %u: %s (the daemon's socket is gone)", sa.nl_pid,
			 strerror(-r));
	}
out:
	pthread_mutex_unlock(&nl->lock);
	return r;
}

static void nl_received(struct emu_netlink *nl, const uint8_t *buf, size_t n, uint32_t port,
			pid_t pid)
{
	hv_cn_frame f;
	uint32_t old, seq;
	bool ours, legacy, late = false;
	int r;

	if (port == 0)
		return; /* the real kernel: not ours to play */

	pthread_mutex_lock(&nl->lock);
	ours = !nl->accept || nl->accept(pid, nl->accept_ud);
	pthread_mutex_unlock(&nl->lock);
	if (!ours) {
		/* e.g. another test's daemon in the same network namespace */
		nl_event(nl, "ignored a message from port %u, pid %d: not our daemon", port,
			 (int)pid);
		return;
	}

	r = hv_cn_parse(buf, n, nl->idx, nl->val, EMU_MSG_MAX, &f);
	if (r < 0) {
		nl_event(nl, "dropped a %zu-byte message from port %u: %s", n, port, strerror(-r));
		return;
	}

	pthread_mutex_lock(&nl->lock);
	legacy = nl->legacy;
	pthread_mutex_unlock(&nl->lock);
	if (legacy && f.len && f.data[0] == HV_VSS_OP_REGISTER1 &&
	    emu_chardev_svc(nl->c)->kind == EMU_SVC_KIND_VSS) {
		/* the old vss_cn_callback(): not REGISTER while waiting for a daemon, no answer */
		nl_event(nl, "legacy driver: op %u from port %u ignored (spurious call, no answer)",
			 f.data[0], port);
		return;
	}

	pthread_mutex_lock(&nl->lock);
	old = nl->daemon_port;
	seq = nl->seq;
	/* a registration names the daemon's port; so does any later message */
	nl->daemon_port = port;
	pthread_mutex_unlock(&nl->lock);

	/*
	 * The daemon echoes the seq of the message it answers. The kernel sends
	 * seq 0 and cannot tell; we number our messages so that a late answer
	 * (e.g. to the hibernation THAW, after a new request went out) is not
	 * taken for the answer to the newer request.
	 */
	if (old != port) {
		nl_event(nl, "daemon at port %u%s", port, old ? " (a new socket)" : "");
	} else if (f.len && f.data[0] != emu_chardev_svc(nl->c)->reg_op_legacy &&
		   f.data[0] != emu_chardev_svc(nl->c)->reg_op && f.seq != seq) {
		nl_event(nl, "reply with seq %u answers an earlier message (last sent: seq %u)",
			 f.seq, seq);
		late = true;
	}

	r = emu_chardev_inject(nl->c, f.data, f.len, port, late);
	if (r < 0)
		nl_event(nl, "the driver's handler returned %s (not reported over the connector)",
			 strerror(-r));
}

void emu_netlink_set_legacy(struct emu_netlink *nl, bool legacy)
{
	pthread_mutex_lock(&nl->lock);
	nl->legacy = legacy;
	pthread_mutex_unlock(&nl->lock);
}

static void *nl_loop(void *arg)
{
	struct emu_netlink *nl = arg;
	static uint8_t buf[RXBUF];
	struct pollfd pfd[2] = {
	    {.fd = nl->fd, .events = POLLIN},
	    {.fd = nl->stop_fd, .events = POLLIN},
	};

	for (;;) {
		struct sockaddr_nl sa;
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(struct ucred))];
		} ctl;
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr mh = {
			.msg_name = &sa,
			.msg_namelen = sizeof(sa),
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = &ctl,
			.msg_controllen = sizeof(ctl),
		};
		pid_t pid = 0;
		ssize_t n;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;

		n = recvmsg(nl->fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			nl_event(nl, "receive: %s", strerror(errno));
			if (errno == ENOBUFS)
				continue;
			break;
		}
		if ((size_t)n > sizeof(buf)) {
			nl_event(nl, "dropped a %zd-byte message (too large)", n);
			continue;
		}
		/* the sender's pid, in our pid namespace (0 if not visible there) */
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred uc;

				memcpy(&uc, CMSG_DATA(c), sizeof(uc));
				pid = uc.pid;
			}
		nl_received(nl, buf, (size_t)n, sa.nl_pid, pid);
	}
	return NULL;
}

int emu_netlink_start(struct emu_chardev *c, uint32_t idx, uint32_t val, emu_event_fn event,
		      void *userdata, struct emu_netlink **ret)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	struct emu_netlink *nl;
	int group = (int)idx, r;

	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;

	nl->c = c;
	nl->idx = idx;
	nl->val = val;
	nl->event = event;
	nl->userdata = userdata;
	nl->stop_fd = -1;
	pthread_mutex_init(&nl->lock, NULL);

	nl->fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
	if (nl->fd < 0) {
		r = -errno;
		goto fail;
	}
	/* joining a connector group needs CAP_NET_ADMIN: we run as root */
	if (setsockopt(nl->fd, SOL_SOCKET, SO_PASSCRED, &(int){ 1 }, sizeof(int)) < 0 ||
	    bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    setsockopt(nl->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0) {
		r = -errno;
		goto fail;
	}

	nl->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (nl->stop_fd < 0) {
		r = -errno;
		goto fail;
	}

	emu_chardev_set_deliver(c, nl_deliver, nl);
	r = emu_thread_start(&nl->thread, nl_loop, nl);
	if (r < 0)
		goto fail;
	nl->thread_started = true;

	*ret = nl;
	return 0;
fail:
	emu_netlink_free(nl);
	return r;
}

struct emu_netlink *emu_netlink_free(struct emu_netlink *nl)
{
	if (!nl)
		return NULL;

	if (nl->thread_started) {
		uint64_t one = 1;

		if (write(nl->stop_fd, &one, sizeof(one)) < 0)
			pthread_cancel(nl->thread);
		pthread_join(nl->thread, NULL);
	}
	emu_chardev_set_deliver(nl->c, NULL, NULL);
	if (nl->fd >= 0)
		close(nl->fd);
	if (nl->stop_fd >= 0)
		close(nl->stop_fd);
	pthread_mutex_destroy(&nl->lock);
	free(nl);
	return NULL;
}

int emu_netlink_foreign(struct emu_netlink *nl, const void *msg, size_t len, uint64_t wait_ms,
			uint32_t *ret_port)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	socklen_t sl = sizeof(sa);
	uint8_t buf[256];
	uint32_t port;
	int fd, n, r;

	pthread_mutex_lock(&nl->lock);
	port = nl->daemon_port;
	pthread_mutex_unlock(&nl->lock);
	if (!port)
		return -ENOTCONN;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
		r = -errno;
		goto out;
	}
	*ret_port = sa.nl_pid;

	n = hv_cn_build(buf, sizeof(buf), nl->idx, nl->val, 1, 0, 0, msg, len);
	if (n < 0) {
		r = n;
		goto out;
	}
	sa = (struct sockaddr_nl){.nl_family = AF_NETLINK, .nl_pid = port};
	if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&sa, sizeof(sa)) != n) {
		r = -errno;
		goto out;
	}

	/* a daemon that took it would answer this socket */
	struct pollfd p = {.fd = fd, .events = POLLIN};

	r = poll(&p, 1, (int)wait_ms);
	if (r < 0)
		r = -errno;
	else
		r = r > 0 ? -EPROTO : 0;
out:
	close(fd);
	return r;
}

void emu_netlink_set_filter(struct emu_netlink *nl, emu_sender_fn fn, void *userdata)
{
	pthread_mutex_lock(&nl->lock);
	nl->accept = fn;
	nl->accept_ud = userdata;
	pthread_mutex_unlock(&nl->lock);
}
