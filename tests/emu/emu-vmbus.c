/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "emu-vmbus.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "emu-util.h"
#include "hv-status.h"
#include "transport-uio.h"

typedef struct reply {
	struct reply *next;
	struct hv_vmpacket_descriptor desc;
	uint64_t at_ns;
	size_t len;
	uint8_t data[];
} reply;

struct emu_vmbus {
	char dir[PATH_MAX];
	char device[PATH_MAX + 8];
	uint8_t *map;
	size_t map_size;
	hv_ring tx; /* guest -> host: we read */
	hv_ring rx; /* host -> guest: we write */
	int listen_fd;
	int fd; /* the accepted interrupt channel, -1 before open / after the guest left */
	bool guest_gone;
	uint32_t irq_count;
	int look_ms;
	uint8_t *req_buf; /* emu_vmbus_request()'s message, built in place */
	reply *head, *tail;
	reply *spare; /* one reply entry (dsize bytes) kept for reuse */
	emu_vmbus_stats stats;
};

static void drop_replies(emu_vmbus *v)
{
	while (v->head) {
		reply *n = v->head->next;

		free(v->head);
		v->head = n;
	}
	v->tail = NULL;
}

/*
 * The ring headers as a channel open leaves them: hv_ringbuffer_init()
 * (__vmbus_open() via vmbus_connect_ring()) sets both indices to 0 and
 * keeps the pending-send feature; hv_uio_open() then masks the inbound
 * ring. The data areas keep whatever was there, as the kernel's pages do.
 */
static void reset_rings(emu_vmbus *v)
{
	hv_ring_init(&v->tx);
	hv_ring_init(&v->rx);
	hv_ring_set_interrupt_mask(&v->rx, true);
}

/*
 * The guest closed its end (a daemon that exited or was killed):
 * hv_uio_release() on the last close calls vmbus_disconnect_ring(), which
 * closes the channel towards the host; the host forgets what it had read
 * and not yet taken. The next open starts from reset headers.
 */
static void release(emu_vmbus *v)
{
	if (v->fd >= 0)
		close(v->fd);
	v->fd = -1;
	v->guest_gone = true;
	drop_replies(v);
	reset_rings(v);
	v->stats.releases++;
}

/*
 * The host closes the guest's interrupt channel so that the guest reads an
 * end of file: shut down first (nothing more can arrive), read what is
 * queued, then close; closing with unread signals would make the guest see
 * ECONNRESET instead.
 */
static void hang_up(emu_vmbus *v)
{
	int32_t one;

	if (v->fd < 0)
		return;
	shutdown(v->fd, SHUT_RDWR);
	while (recv(v->fd, &one, sizeof(one), MSG_DONTWAIT) > 0)
		;
	close(v->fd);
	v->fd = -1;
}

static int path_in(const emu_vmbus *v, const char *name, char *buf, size_t size)
{
	if ((size_t)snprintf(buf, size, "%s/%s", v->dir, name) >= size)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * A fresh ring file: what the VMBus core gives a channel when it is offered
 * (vmbus_alloc_ring() at probe: new memory) and opened (hv_ringbuffer_init():
 * indices 0), then hv_uio_open(): the inbound ring masked until the guest
 * unmasks it. Unlinked first, so that a guest still mapping the old file
 * (a reset: the rescinded device's memory) writes where nobody looks.
 */
static int map_ring(emu_vmbus *v, size_t ring_size)
{
	char path[PATH_MAX];
	uint8_t *map;
	int fd, r;

	r = path_in(v, HV_UIO_EMU_RING_FILE, path, sizeof(path));
	if (r < 0)
		return r;
	unlink(path);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)(2 * ring_size)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	map = mmap(NULL, 2 * ring_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	r = -errno;
	close(fd);
	if (map == MAP_FAILED)
		return r;

	if (v->map)
		munmap(v->map, v->map_size);
	v->map = map;
	v->map_size = 2 * ring_size;
	r = hv_ring_attach(&v->tx, v->map, ring_size);
	if (r == 0)
		r = hv_ring_attach(&v->rx, v->map + ring_size, ring_size);
	if (r < 0)
		return r;
	reset_rings(v);
	return 0;
}

int emu_vmbus_new(const char *dir, size_t ring_size, emu_vmbus **ret)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char path[PATH_MAX];
	emu_vmbus *v;
	int r;

	if (!dir || !ret)
		return -EINVAL;

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->listen_fd = v->fd = -1;
	v->look_ms = 10;
	snprintf(v->dir, sizeof(v->dir), "%s", dir);
	snprintf(v->device, sizeof(v->device), "%s%s", HV_UIO_EMU_PREFIX, dir);

	r = map_ring(v, ring_size);
	if (r < 0)
		goto fail;

	v->req_buf = malloc(v->rx.dsize);
	if (!v->req_buf) {
		r = -ENOMEM;
		goto fail;
	}

	r = path_in(v, HV_UIO_EMU_IRQ_SOCKET, path, sizeof(path));
	if (r < 0)
		goto fail;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		r = -ENAMETOOLONG;
		goto fail;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	unlink(path);
	v->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (v->listen_fd < 0 || bind(v->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(v->listen_fd, 1) < 0) {
		r = -errno;
		goto fail;
	}

	*ret = v;
	return 0;

fail:
	emu_vmbus_free(v);
	return r;
}

void emu_vmbus_free(emu_vmbus *v)
{
	char path[PATH_MAX];

	if (!v)
		return;

	hang_up(v);
	if (v->listen_fd >= 0)
		close(v->listen_fd);
	if (v->map)
		munmap(v->map, v->map_size);
	drop_replies(v);
	free(v->spare);
	free(v->req_buf);
	if (path_in(v, HV_UIO_EMU_RING_FILE, path, sizeof(path)) == 0)
		unlink(path);
	if (path_in(v, HV_UIO_EMU_IRQ_SOCKET, path, sizeof(path)) == 0)
		unlink(path);
	free(v);
}

const char *emu_vmbus_device(const emu_vmbus *v)
{
	return v->device;
}

hv_ring *emu_vmbus_rx(emu_vmbus *v)
{
	return &v->rx;
}

hv_ring *emu_vmbus_tx(emu_vmbus *v)
{
	return &v->tx;
}

const emu_vmbus_stats *emu_vmbus_get_stats(const emu_vmbus *v)
{
	return &v->stats;
}

bool emu_vmbus_connected(const emu_vmbus *v)
{
	return v->fd >= 0;
}

static int left_ms(uint64_t deadline)
{
	uint64_t now = emu_now_ns();

	if (now >= deadline)
		return 0;
	return (int)((deadline - now + EMU_NSEC_PER_MSEC - 1) / EMU_NSEC_PER_MSEC);
}

static int take_signals(emu_vmbus *v);

/* Without blocking: has the guest closed its end? Releases the channel if so. */
static bool guest_left(emu_vmbus *v)
{
	struct pollfd p = {.fd = v->fd, .events = POLLIN};

	if (v->fd < 0)
		return true;
	if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLIN))) {
		/* the end of file comes after the signals sent before it */
		while (take_signals(v) > 0)
			;
	}
	return v->fd < 0;
}

int emu_vmbus_accept(emu_vmbus *v, int timeout_ms)
{
	struct pollfd p = {.fd = v->listen_fd, .events = POLLIN};
	int r;

	/*
	 * One guest at a time, as /dev/uioN is one channel: a new connection
	 * is taken only once the previous one is gone (and the channel
	 * released: reset headers for the next open).
	 */
	if (v->fd >= 0 && !guest_left(v))
		return 0;

	r = poll(&p, 1, timeout_ms);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;

	v->fd = accept4(v->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (v->fd < 0)
		return -errno;
	v->guest_gone = false;
	v->stats.opens++;
	return 0;
}

int emu_vmbus_wait_gone(emu_vmbus *v, int timeout_ms)
{
	uint64_t deadline = emu_now_ns() + (uint64_t)timeout_ms * EMU_NSEC_PER_MSEC;

	while (!guest_left(v)) {
		struct pollfd p = {.fd = v->fd, .events = POLLIN};
		int ms = left_ms(deadline);

		if (ms == 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, ms) < 0 && errno != EINTR)
			return -errno;
	}
	return 0;
}

int emu_vmbus_reset(emu_vmbus *v)
{
	size_t ring_size = v->map_size / 2;
	int r;

	/*
	 * New ring memory first, then the guest's interrupt fd ends: a guest
	 * that reopens on seeing that maps the new ring, never the old one.
	 */
	drop_replies(v);
	r = map_ring(v, ring_size);
	hang_up(v);
	v->guest_gone = false;
	if (r < 0)
		return r;
	v->stats.resets++;
	return 0;
}

/*
 * Reads every pending guest signal (up to 16 per system call); each one is
 * hv_uio_irqcontrol(1): RX unmasked. Returns how many there were.
 */
static int take_signals(emu_vmbus *v)
{
	int32_t ones[16];
	struct iovec iov[16];
	struct mmsghdr msgs[16];

	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < 16; i++) {
		iov[i].iov_base = &ones[i];
		iov[i].iov_len = sizeof(ones[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	for (int taken = 0;;) {
		int n = recvmmsg(v->fd, msgs, 16, MSG_DONTWAIT, NULL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return taken;
		if (n <= 0) {
			/* 0 messages (or ECONNRESET): the guest closed its end */
			release(v);
			return -EPIPE;
		}
		for (int i = 0; i < n; i++) {
			/* a 0-byte message is the end of file */
			if (msgs[i].msg_len != sizeof(ones[i])) {
				release(v);
				return -EPIPE;
			}
			v->stats.guest_signals++;
			if (ones[i] == 1)
				hv_ring_set_interrupt_mask(&v->rx, false);
		}
		taken += n;
		if (n < 16)
			return taken;
	}
}

/* Drains TX into the reply queue (each packet read straight into its entry). */
static int drain_tx(emu_vmbus *v)
{
	for (;;) {
		struct hv_vmpacket_descriptor d;
		uint32_t before = v->tx.hdr->read_index;
		reply *e = v->spare;
		ssize_t n;

		v->spare = NULL;
		if (!e)
			e = malloc(sizeof(*e) + v->tx.dsize);
		if (!e)
			return -ENOMEM;

		n = hv_ring_read(&v->tx, e->data, v->tx.dsize, false, &d, NULL);
		if (n < 0) {
			v->spare = e;
			return n == -EAGAIN ? 0 : (int)n;
		}

		if (v->tx.hdr->read_index < before)
			v->stats.tx_wraps++;
		e->next = NULL;
		e->desc = d;
		e->at_ns = emu_now_ns();
		e->len = (size_t)n;
		if (v->tail)
			v->tail->next = e;
		else
			v->head = e;
		v->tail = e;
		v->stats.replies++;
	}
}

void emu_vmbus_set_look_interval(emu_vmbus *v, int ms)
{
	v->look_ms = ms;
}

/*
 * Waits up to timeout_ms for a guest signal, then takes signals and drains
 * TX. Also looks at the rings every look_ms, unless that is 0.
 */
static int pump(emu_vmbus *v, bool want_reply, int timeout_ms)
{
	struct pollfd p = {.fd = v->fd, .events = POLLIN};
	int r, taken = 0;

	if (v->fd < 0)
		return v->guest_gone ? -EPIPE : -ENOTCONN;

	/*
	 * Signals are taken on every look, so they never pile up in the
	 * socket; one taken here may be the one the caller waits for (room in
	 * RX), so the caller looks again before anything blocks. A caller
	 * waiting for a reply only needs TX: a pending signal makes poll()
	 * return at once, and it is taken below.
	 */
	if (!want_reply) {
		taken = take_signals(v);
		if (taken < 0)
			return taken;
	}
	r = drain_tx(v);
	if (r < 0 || taken > 0 || (want_reply && v->head))
		return r;

	r = poll(&p, 1, v->look_ms > 0 && v->look_ms < timeout_ms ? v->look_ms : timeout_ms);
	if (r < 0 && errno != EINTR)
		return -errno;

	r = take_signals(v);
	if (r < 0)
		return r;

	return drain_tx(v);
}

int emu_vmbus_post(emu_vmbus *v, const void *payload, size_t len, uint64_t trans_id, int timeout_ms,
		   uint64_t *ret_posted_ns)
{
	uint64_t deadline = emu_now_ns() + (uint64_t)timeout_ms * EMU_NSEC_PER_MSEC;
	uint32_t need = (uint32_t)(hv_vmbus_packet_size(len) + HV_VMBUS_PKT_TRAILER);
	bool waited = false;

	if (v->fd < 0)
		return v->guest_gone ? -EPIPE : -ENOTCONN;

	for (;;) {
		uint32_t before = v->rx.hdr->write_index;
		bool sig = false;
		int r;

		r = hv_ring_write_packet(&v->rx, HV_VM_PKT_DATA_INBAND,
					 HV_VMBUS_PKT_FLAG_COMPLETION_REQUESTED, trans_id, payload,
					 len, &sig);
		if (r == 0) {
			uint32_t count;

			hv_ring_set_pending_send(&v->rx, 0);
			if (v->rx.hdr->write_index < before)
				v->stats.rx_wraps++;
			v->stats.posted++;
			if (sig) {
				/* hv_uio_channel_cb(): mask the inbound ring, then notify. */
				hv_ring_set_interrupt_mask(&v->rx, true);
				count = ++v->irq_count;
				v->stats.interrupts++;
				if (send(v->fd, &count, sizeof(count),
					 MSG_NOSIGNAL | MSG_DONTWAIT) != sizeof(count)) {
					/*
					 * Full of notifications the guest has not read: it
					 * has one to wake up on. A UIO device adds to the
					 * count its read returns, it never refuses one.
					 */
					if (errno != EAGAIN && errno != EWOULDBLOCK) {
						release(v);
						return -EPIPE;
					}
					v->stats.interrupts_coalesced++;
				}
			}
			if (ret_posted_ns)
				*ret_posted_ns = emu_now_ns();
			return 0;
		}
		if (r != -EAGAIN)
			return r;

		if (!waited) {
			v->stats.rx_full_waits++;
			waited = true;
		}
		/* Ask to be told when there is room (the guest's recv signals), then look again. */
		hv_ring_set_pending_send(&v->rx, need);
		if (hv_ring_avail_write(&v->rx) > need)
			continue;

		if (left_ms(deadline) == 0) {
			hv_ring_set_pending_send(&v->rx, 0);
			return -EAGAIN;
		}

		r = pump(v, false, left_ms(deadline));
		if (r < 0)
			return r;
	}
}

ssize_t emu_vmbus_wait_reply(emu_vmbus *v, void *buf, size_t size,
			     struct hv_vmpacket_descriptor *ret_desc, uint64_t *ret_ns,
			     int timeout_ms)
{
	uint64_t deadline = emu_now_ns() + (uint64_t)timeout_ms * EMU_NSEC_PER_MSEC;

	for (;;) {
		reply *e = v->head;
		int r;

		if (e) {
			if (e->len > size)
				return -ENOBUFS;
			memcpy(buf, e->data, e->len);
			if (ret_desc)
				*ret_desc = e->desc;
			if (ret_ns)
				*ret_ns = e->at_ns;
			v->head = e->next;
			if (!v->head)
				v->tail = NULL;
			r = (int)e->len;
			if (!v->spare)
				v->spare = e;
			else
				free(e);
			return r;
		}

		if (left_ms(deadline) == 0)
			return -ETIMEDOUT;

		r = pump(v, true, left_ms(deadline));
		if (r < 0)
			return r;
	}
}

int emu_vmbus_negotiate(emu_vmbus *v, const uint32_t *fw, size_t n_fw, const uint32_t *srv,
			size_t n_srv, int timeout_ms, uint32_t *ret_fw, uint32_t *ret_srv)
{
	uint8_t *buf;
	ssize_t n;
	int len, r;

	buf = malloc(v->rx.dsize);
	if (!buf)
		return -ENOMEM;

	len = hv_ic_build_offer(buf, v->rx.dsize, fw, n_fw, srv, n_srv, 0);
	if (len < 0) {
		free(buf);
		return len;
	}

	r = emu_vmbus_post(v, buf, (size_t)len, 1, timeout_ms, NULL);
	if (r == 0) {
		n = emu_vmbus_wait_reply(v, buf, v->rx.dsize, NULL, NULL, timeout_ms);
		r = n < 0 ? (int)n
			  : hv_ic_parse_negotiate_reply(buf, (size_t)n, ret_fw, ret_srv, NULL);
	}
	free(buf);
	return r;
}

ssize_t emu_vmbus_request(emu_vmbus *v, uint16_t type, uint32_t msg_version, const void *body,
			  size_t body_len, int timeout_ms, uint32_t *ret_status, void *reply_body,
			  size_t reply_size, emu_vmbus_times *times)
{
	struct hv_vmpacket_descriptor d;
	uint64_t posted, answered, xid;
	uint8_t *buf;
	hv_ic_msg m;
	ssize_t n;
	int len, r;

	buf = v->req_buf;
	len = hv_ic_build_request(buf, v->rx.dsize, type, HV_UTIL_FW_VERSION, msg_version,
				  (uint8_t)(v->stats.posted & 0xff), body, body_len);
	if (len < 0)
		return len;

	xid = v->stats.posted + 1;
	r = emu_vmbus_post(v, buf, (size_t)len, xid, timeout_ms, &posted);
	if (r < 0)
		return r;

	n = emu_vmbus_wait_reply(v, buf, v->rx.dsize, &d, &answered, timeout_ms);
	if (n < 0)
		return n;

	/* The guest echoes the transaction id (as the kernel's util drivers do). */
	r = d.trans_id == xid ? hv_ic_msg_parse(buf, (size_t)n, &m) : -EPROTO;
	if (r == 0 && (!(m.hdr.icflags & HV_ICMSGHDRFLAG_RESPONSE) || m.hdr.icmsgtype != type))
		r = -EBADMSG;
	if (r < 0)
		return r;

	if (ret_status)
		*ret_status = m.hdr.status;
	if (reply_body)
		memcpy(reply_body, buf + m.body_offset,
		       m.body_len < reply_size ? m.body_len : reply_size);
	if (times) {
		times->posted = posted;
		times->answered = answered;
	}
	return (ssize_t)m.body_len;
}
