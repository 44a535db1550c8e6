/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The hv_utils_transport char device (/dev/vmbus/hv_vss, hv_kvp, ...).
 *
 * Driver behaviour (Linux drivers/hv/hv_utils_transport.c): one opener at a
 * time (-EBUSY otherwise); every read() returns exactly one whole message
 * and fails with -EINVAL if the buffer is too small; every write() is handed
 * whole to the service; poll() reports POLLIN while a message is queued and
 * POLLERR|POLLHUP once the transport is destroyed. The driver does not honour
 * O_NONBLOCK, so we only read after poll() said so.
 */
#include "hv-transport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_readable(int fd, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		int r;

		if (left < 0)
			left = 0;

		r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;

		if (r < 0)
			return -errno;

		if (r == 0)
			return -ETIMEDOUT;

		if (p.revents & POLLIN)
			return 0;

		if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
			return -EPIPE;
	}
}

static int write_whole(int fd, const void *buf, size_t len)
{
	for (;;) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;

		if (n < 0)
			return -errno;

		/* The driver takes whole messages; a short write is a broken transport. */
		if ((size_t)n != len)
			return -EIO;

		return 0;
	}
}

static int chardev_handshake(hv_transport *t)
{
	const hv_service *s = t->service;
	size_t bufsize;
	void *buf;
	ssize_t n;
	int r;

	r = write_whole(t->fd, s->register_msg, s->register_len);
	if (r < 0)
		return r;

	if (s->register_reply_len == 0) {
		t->version = 0;
		return 0;
	}

	r = wait_readable(t->fd, t->handshake_timeout_ms);
	if (r < 0)
		return r;

	/* Read with room for the largest message so that a wrong answer is seen whole. */
	bufsize = s->max_msg > s->register_reply_len ? s->max_msg : s->register_reply_len;
	buf = calloc(1, bufsize);
	if (!buf)
		return -ENOMEM;

	do
		n = read(t->fd, buf, bufsize);
	while (n < 0 && errno == EINTR);

	if (n < 0)
		r = -errno;
	else if (n == 0)
		r = -EPIPE;
	else if (s->parse_register_reply)
		r = s->parse_register_reply(buf, (size_t)n, &t->version);
	else
		r = (size_t)n == s->register_reply_len ? 0 : -EBADMSG;

	free(buf);
	return r;
}

static int chardev_open(hv_transport *t)
{
	int r;

	t->fd = open(t->device, O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (t->fd < 0)
		return -errno;

	r = chardev_handshake(t);
	if (r < 0) {
		close(t->fd);
		t->fd = -1;
		return r;
	}

	return 0;
}

static ssize_t chardev_recv(hv_transport *t, void *buf, size_t size)
{
	ssize_t n = read(t->fd, buf, size);

	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return -EAGAIN;

		return -errno;
	}

	/* End of file: the driver went away under us. */
	if (n == 0)
		return -EPIPE;

	return n;
}

static int chardev_send(hv_transport *t, const void *buf, size_t len)
{
	return write_whole(t->fd, buf, len);
}

static void chardev_close(hv_transport *t)
{
	close(t->fd);
}

const hv_transport_ops hv_transport_chardev_ops = {
	.name = "chardev",
	.open = chardev_open,
	.recv = chardev_recv,
	.send = chardev_send,
	.close = chardev_close,
};
