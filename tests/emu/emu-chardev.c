/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FUSE low-level file system that plays the hv_utils_transport char
 * devices. Semantics follow PROTOCOL.md ("What the emulated char device
 * must do") and Linux drivers/hv/hv_utils_transport.c + hv_snapshot.c:
 *
 *   open      one opener; a second open gets EBUSY until release
 *   write     first write registers (12 bytes, op 129 -> a u32 129 is
 *             queued; op 128 -> silent); anything else first: EFAULT.
 *             Later writes are replies: exactly msg_size bytes to a request
 *             the daemon has read, else EFAULT; after the request timed out
 *             (or to the hibernation THAW) EINVAL ("Transaction not active")
 *   read      blocks until a message is queued; one whole message per read;
 *             a short buffer gets EINVAL and the message stays; a signal
 *             gets EINTR; other woken readers get EAGAIN
 *   poll      POLLIN|POLLRDNORM while a message waits, POLLERR|POLLHUP
 *             after a driver reset, else 0
 *   release   back to CLOSED: queued message dropped, the outstanding host
 *             request fails (the driver's on_reset answers HV_E_FAIL)
 *   reset     (host side) reads/writes get EBADF, poll POLLERR|POLLHUP,
 *             until the daemon closes; then it may open again
 *
 * Locking: one recursive mutex per directory protects everything. The
 * FUSE loop is single-threaded; held read requests are answered from the
 * host thread with the lock held (fuse_reply_* never takes a libfuse
 * request lock, so this cannot deadlock against the interrupt callback,
 * which libfuse calls with the request lock held). The mutex is recursive
 * because libfuse calls the interrupt callback immediately, from inside
 * fuse_req_interrupt_func(), when the request was already interrupted.
 *
 * Timeouts are evaluated lazily: every entry point first expires the
 * outstanding request if its deadline passed, so the observable behaviour
 * is the same as a timer firing at the deadline.
 */
#define FUSE_USE_VERSION 35

#include "emu-chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "emu-util.h"
#include "hv-kvp.h"
#include "hv-status.h"
#include "hv-vss.h"

#define EMU_MAX_FILES 4
#define EMU_MAX_READERS 8
#define EMU_WAIT_SLICE_NS (50 * EMU_NSEC_PER_MSEC)

/* FCOPY_VERSION_0 / FCOPY_VERSION_1 = FCOPY_CURRENT_VERSION (Linux <= 6.9) */
#define EMU_FCOPY_VERSION_0 0U
#define EMU_FCOPY_VERSION_1 1U

const struct emu_svc emu_svc_vss = {
	.name = "hv_vss",
	.kind = EMU_SVC_KIND_VSS,
	.msg_size = sizeof(struct hv_vss_msg),
	.reg_op = HV_VSS_OP_REGISTER1,
	.reg_op_legacy = HV_VSS_OP_REGISTER,
	.version = HV_VSS_OP_REGISTER1,
	.flags_offset = offsetof(struct hv_vss_msg, vss_cf),
};

const struct emu_svc emu_svc_kvp = {
	.name = "hv_kvp",
	.kind = EMU_SVC_KIND_KVP,
	.msg_size = sizeof(struct hv_kvp_msg),
	.reg_op = HV_KVP_OP_REGISTER1,
	.reg_op_legacy = HV_KVP_OP_REGISTER,
};

const struct emu_svc emu_svc_fcopy = {
	.name = "hv_fcopy",
	.kind = EMU_SVC_KIND_FCOPY,
	.msg_size = sizeof(uint32_t),
	.reg_op = EMU_FCOPY_VERSION_1,
	.reg_op_legacy = EMU_FCOPY_VERSION_0,
	.version = EMU_FCOPY_VERSION_1,
};

/* One kept reply (a ring of the latest EMU_REPLIES_KEPT). */
struct emu_reply {
	unsigned int id;
	size_t len;
	uint8_t *buf;
};

struct emu_reader {
	fuse_req_t req;
	size_t size;
};

struct emu_chardev {
	struct emu_devdir *dir;
	const struct emu_svc *svc;
	fuse_ino_t ino;

	enum emu_dev_state state;
	uint64_t fh;     /* open generation of the current opener */
	pid_t opener;

	/* the one queued message (hvt->outmsg) */
	uint8_t *outmsg;
	size_t outmsg_len;
	unsigned int outmsg_id; /* request id, 0 for the version answer */

	struct emu_reader readers[EMU_MAX_READERS];
	unsigned int n_readers;
	struct fuse_pollhandle *ph;

	unsigned int active;  /* host transaction in progress (0: none) */
	bool stale_read;      /* the daemon holds a message that is no longer a transaction */
	unsigned int last_stale; /* the request a late reply belongs to */
	unsigned int reg_seq;
	bool handshake_pending; /* the version answer was not read yet */
	uint32_t reg_value;	/* what the daemon registered with (KVP: dm_reg_value) */

	struct emu_reply replies[EMU_REPLIES_KEPT];
	unsigned int next_reply;

	struct emu_req *reqs;
	unsigned int n_reqs, cap_reqs;

	/* netlink mode (emu-netlink.c): messages are sent at once, no FUSE */
	emu_deliver_fn deliver;
	void *deliver_ud;

	/* socket mode: the listening socket at DEVDIR/name and the opener's connection */
	int lfd;
	int cfd;
};

struct emu_devdir {
	char *path;
	emu_event_fn event;
	void *userdata;

	pthread_mutex_t lock;
	pthread_cond_t cond;

	struct emu_chardev *files[EMU_MAX_FILES];
	unsigned int n_files;
	uint64_t next_fh;

	struct fuse_session *se;
	bool mounted;
	int stop_fd; /* socket mode: the kick eventfd */
	bool sock;   /* socket mode: no FUSE, no thread (see emu_devdir_start_socket()) */
	uint8_t *rxbuf;
	uint64_t rx_ns; /* socket mode: when the message being handled was written (0: now) */
	uint64_t last_look_ns; /* socket mode: the last poll() of the sockets (sock_pump()) */
	pthread_t thread;
	bool thread_started;
};

static const char *const req_result_names[_EMU_REQ_RESULT_MAX] = {
	[EMU_REQ_PENDING] = "pending",
	[EMU_REQ_OK] = "ok",
	[EMU_REQ_FAILED] = "failed",
	[EMU_REQ_TIMEOUT] = "timeout",
	[EMU_REQ_NOT_READY] = "not-ready",
	[EMU_REQ_SEND_FAILED] = "send-failed",
	[EMU_REQ_RESET] = "reset",
	[EMU_REQ_CANCELLED] = "cancelled",
	[EMU_REQ_FAKE] = "fake",
};

const char *emu_req_result_to_string(enum emu_req_result r)
{
	if ((unsigned int)r >= _EMU_REQ_RESULT_MAX)
		return "?";
	return req_result_names[r];
}

static const char *const dev_state_names[_EMU_DEV_STATE_MAX] = {
	[EMU_DEV_CLOSED] = "closed",
	[EMU_DEV_OPEN] = "open",
	[EMU_DEV_READY] = "ready",
	[EMU_DEV_DEAD] = "dead",
};

const char *emu_dev_state_to_string(enum emu_dev_state s)
{
	if ((unsigned int)s >= _EMU_DEV_STATE_MAX)
		return "?";
	return dev_state_names[s];
}

const char *emu_chardev_name(const struct emu_chardev *c)
{
	return c->svc->name;
}

const struct emu_svc *emu_chardev_svc(const struct emu_chardev *c)
{
	return c->svc;
}

static void dev_event(struct emu_chardev *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void dev_event(struct emu_chardev *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (!c->dir->event)
		return;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	c->dir->event(emu_now_ns(), c->svc->name, buf, c->dir->userdata);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static struct emu_req *req_get(struct emu_chardev *c, unsigned int id)
{
	if (id == 0 || id > c->n_reqs)
		return NULL;
	return &c->reqs[id - 1];
}

static struct emu_req *req_new(struct emu_chardev *c, const uint8_t *msg,
			       size_t len, uint64_t timeout_ms)
{
	struct emu_req *r;

	if (c->n_reqs == c->cap_reqs) {
		unsigned int cap = c->cap_reqs ? c->cap_reqs * 2 : 16;
		struct emu_req *n = realloc(c->reqs, cap * sizeof(*n));

		if (!n)
			return NULL;
		c->reqs = n;
		c->cap_reqs = cap;
	}

	r = &c->reqs[c->n_reqs++];
	*r = (struct emu_req){
		.id = c->n_reqs,
		.op = len ? msg[0] : 0,
		.pool = c->svc->kind == EMU_SVC_KIND_KVP && len > 1 ? msg[1] : 0,
		.len = len,
		.posted_ns = emu_now_ns(),
		.timeout_ms = timeout_ms,
		.result = EMU_REQ_PENDING,
		.status = HV_E_FAIL,
	};
	if (c->svc->kind == EMU_SVC_KIND_FCOPY && len >= 4)
		r->op = get_le32(msg);
	if (timeout_ms)
		r->deadline_ns = r->posted_ns + timeout_ms * EMU_NSEC_PER_MSEC;
	return r;
}

/* Keep a copy of the reply the daemon wrote for request r (oldest dropped). */
static void reply_keep(struct emu_chardev *c, struct emu_req *r, const uint8_t *buf, size_t size)
{
	struct emu_reply *k = &c->replies[c->next_reply];
	uint8_t *copy = malloc(size ? size : 1);

	r->reply_len = size;
	if (!copy)
		return;
	memcpy(copy, buf, size);
	free(k->buf);
	*k = (struct emu_reply){.id = r->id, .len = size, .buf = copy};
	c->next_reply = (c->next_reply + 1) % EMU_REPLIES_KEPT;
}

/* Finish the outstanding host transaction; the host got 'status'. */
static void active_finish(struct emu_chardev *c, enum emu_req_result result,
			  uint32_t status, uint64_t t_ns)
{
	struct emu_req *r = req_get(c, c->active);

	if (!r)
		return;

	r->result = result;
	r->status = status;
	r->answered_ns = t_ns;
	c->active = 0;
	pthread_cond_broadcast(&c->dir->cond);
}

static void sock_pump(struct emu_chardev *c);
static void sock_take(struct emu_chardev *c, short lrev, short crev);
static void sock_unlink(struct emu_chardev *c);
static void dev_release(struct emu_chardev *c);
static int dev_write(struct emu_chardev *c, const uint8_t *p, size_t size);

/*
 * The lazy timer: fail the outstanding request if its deadline passed. In
 * socket mode, first take in what the daemon did since the last look.
 */
static void expire_locked(struct emu_chardev *c)
{
	struct emu_req *r;
	uint64_t now;

	if (c->dir->sock)
		sock_pump(c);

	r = req_get(c, c->active);
	if (!r || !r->deadline_ns)
		return;

	now = emu_now_ns();
	if (now < r->deadline_ns)
		return;

	/* The message may stay queued; the daemon may still read it. */
	if (r->read_ns)
		c->stale_read = true;
	c->last_stale = r->id;
	active_finish(c, EMU_REQ_TIMEOUT, HV_E_FAIL, r->deadline_ns);
	dev_event(c, "request #%u timed out after %llu ms: driver answered HV_E_FAIL",
		  r->id, (unsigned long long)r->timeout_ms);
}

static void notify_poll(struct emu_chardev *c)
{
	if (!c->ph)
		return;

	fuse_lowlevel_notify_poll(c->ph);
	fuse_pollhandle_destroy(c->ph);
	c->ph = NULL;
}

static void drop_outmsg(struct emu_chardev *c)
{
	free(c->outmsg);
	c->outmsg = NULL;
	c->outmsg_len = 0;
	c->outmsg_id = 0;
}

static void readers_fail(struct emu_chardev *c, int err)
{
	for (unsigned int i = 0; i < c->n_readers; i++)
		fuse_reply_err(c->readers[i].req, err);
	c->n_readers = 0;
}

/* Bookkeeping when a queued message is handed to a read() of the daemon. */
static void outmsg_consumed(struct emu_chardev *c)
{
	struct emu_req *r = req_get(c, c->outmsg_id);

	if (!r) {
		dev_event(c, "daemon read the version answer (%zu bytes)",
			  c->outmsg_len);
		c->handshake_pending = false;
		pthread_cond_broadcast(&c->dir->cond);
	} else {
		r->read_ns = emu_now_ns();
		if (r->id == c->active) {
			c->stale_read = false;
		} else {
			/* timed out or the hibernation THAW: a reply gets EINVAL */
			c->stale_read = true;
			c->last_stale = r->id;
		}
		pthread_cond_broadcast(&c->dir->cond);
	}

	drop_outmsg(c);
}

/*
 * Wake every blocked reader, like wake_up_interruptible() on outmsg_q: the
 * first with a big enough buffer gets the message, a too small buffer gets
 * EINVAL (the message stays), readers after the message was taken get
 * EAGAIN.
 */
static void readers_wake(struct emu_chardev *c)
{
	unsigned int n = c->n_readers;

	if (!n || (!c->outmsg && c->state != EMU_DEV_DEAD))
		return;

	c->n_readers = 0;
	for (unsigned int i = 0; i < n; i++) {
		struct emu_reader *rd = &c->readers[i];

		if (c->state == EMU_DEV_DEAD) {
			fuse_reply_err(rd->req, EBADF);
		} else if (!c->outmsg) {
			fuse_reply_err(rd->req, EAGAIN);
		} else if (rd->size < c->outmsg_len) {
			dev_event(c, "read with a %zu-byte buffer for a %zu-byte message: EINVAL",
				  rd->size, c->outmsg_len);
			fuse_reply_err(rd->req, EINVAL);
		} else {
			fuse_reply_buf(rd->req, (const char *)c->outmsg, c->outmsg_len);
			outmsg_consumed(c);
		}
	}
}

/* Socket mode: hand a message to the daemon's connection (-EINVAL: no opener). */
static int sock_send(struct emu_chardev *c, const void *msg, size_t len)
{
	ssize_t n;

	if (c->cfd < 0)
		return -EINVAL;
	n = send(c->cfd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		return -EIO;
	/* a full socket: the daemon did not read what was sent before */
	return errno == EAGAIN ? -EFAULT : -errno;
}

/* hvutil_transport_send(): 0, -EFAULT (one still queued), -EINVAL (no opener). */
static int queue_msg(struct emu_chardev *c, const void *msg, size_t len,
		     unsigned int id)
{
	if (c->state != EMU_DEV_OPEN && c->state != EMU_DEV_READY)
		return -EINVAL;

	if (c->outmsg)
		return -EFAULT;

	c->outmsg = malloc(len ? len : 1);
	if (!c->outmsg)
		return -ENOMEM;

	memcpy(c->outmsg, msg, len);
	c->outmsg_len = len;
	c->outmsg_id = id;
	if (c->deliver || c->dir->sock) {
		/*
		 * The kernel's netlink mode: sent now, and "read" as far as it
		 * knows. Socket mode: in the daemon's socket now; when the daemon
		 * reads it is not seen, so the send counts as the read.
		 */
		int r = c->deliver ? c->deliver(msg, len, c->deliver_ud) : sock_send(c, msg, len);

		if (r < 0) {
			drop_outmsg(c);
			return r;
		}
		outmsg_consumed(c);
		return 0;
	}
	readers_wake(c);
	if (c->outmsg)
		notify_poll(c);
	return 0;
}

/* Back to CLOSED/DEAD: what release and reset have in common. */
static void transport_reset(struct emu_chardev *c, const char *why)
{
	struct emu_req *r = req_get(c, c->active);

	if (r) {
		dev_event(c, "request #%u failed towards the host (%s): HV_E_FAIL",
			  r->id, why);
		active_finish(c, EMU_REQ_RESET, HV_E_FAIL, emu_now_ns());
	}

	if (c->outmsg_id && req_get(c, c->outmsg_id))
		dev_event(c, "queued message #%u dropped", c->outmsg_id);
	drop_outmsg(c);
	c->stale_read = false;
	c->handshake_pending = false;
}

/* ---- FUSE side ---------------------------------------------------------- */

static struct emu_chardev *file_by_ino(struct emu_devdir *d, fuse_ino_t ino)
{
	for (unsigned int i = 0; i < d->n_files; i++)
		if (d->files[i]->ino == ino)
			return d->files[i];
	return NULL;
}

static void fill_attr(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		/* FUSE cannot serve a character device node: a regular file */
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
	}
	st->st_blksize = 4096;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct emu_devdir *d = fuse_req_userdata(req);
	struct fuse_entry_param e = { 0 };

	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}

	for (unsigned int i = 0; i < d->n_files; i++) {
		if (strcmp(d->files[i]->svc->name, name) == 0) {
			e.ino = d->files[i]->ino;
			e.attr_timeout = 1.0;
			e.entry_timeout = 1.0;
			fill_attr(e.ino, &e.attr);
			fuse_reply_entry(req, &e);
			return;
		}
	}

	fuse_reply_err(req, ENOENT);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct emu_devdir *d = fuse_req_userdata(req);
	struct stat st;

	if (ino != FUSE_ROOT_ID && !file_by_ino(d, ino)) {
		fuse_reply_err(req, ENOENT);
		return;
	}

	fill_attr(ino, &st);
	fuse_reply_attr(req, &st, 1.0);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct emu_devdir *d = fuse_req_userdata(req);
	char buf[1024];
	size_t used = 0;
	off_t i;

	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}

	if (size > sizeof(buf))
		size = sizeof(buf);

	for (i = off; i < (off_t)d->n_files + 2; i++) {
		const char *name;
		struct stat st;
		size_t n;

		if (i == 0) {
			name = ".";
			fill_attr(FUSE_ROOT_ID, &st);
		} else if (i == 1) {
			name = "..";
			fill_attr(FUSE_ROOT_ID, &st);
		} else {
			name = d->files[i - 2]->svc->name;
			fill_attr(d->files[i - 2]->ino, &st);
		}

		n = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
		if (n > size - used)
			break;
		used += n;
	}

	fuse_reply_buf(req, buf, used);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct emu_devdir *d = fuse_req_userdata(req);
	struct emu_chardev *c = file_by_ino(d, ino);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	if (!c) {
		fuse_reply_err(req, ino == FUSE_ROOT_ID ? EISDIR : ENOENT);
		return;
	}

	pthread_mutex_lock(&d->lock);
	expire_locked(c);
	switch (c->state) {
	case EMU_DEV_CLOSED:
		break;
	case EMU_DEV_OPEN:
	case EMU_DEV_READY:
	case EMU_DEV_DEAD:
		dev_event(c, "open by pid %d refused: EBUSY (pid %d has it open)",
			  (int)ctx->pid, (int)c->opener);
		pthread_mutex_unlock(&d->lock);
		fuse_reply_err(req, EBUSY);
		return;
	case _EMU_DEV_STATE_MAX:
		break;
	}

	c->state = EMU_DEV_OPEN;
	c->fh = ++d->next_fh;
	c->opener = ctx->pid;
	fi->fh = c->fh;
	fi->direct_io = 1;
	fi->nonseekable = 1;
	fi->keep_cache = 0;
	dev_event(c, "opened by pid %d", (int)ctx->pid);
	pthread_cond_broadcast(&d->cond);
	fuse_reply_open(req, fi);
	pthread_mutex_unlock(&d->lock);
}

/* Lock and look up the file for an op on an open file; NULL after replying EBADF. */
static struct emu_chardev *file_enter(fuse_req_t req, fuse_ino_t ino,
				      const struct fuse_file_info *fi)
{
	struct emu_devdir *d = fuse_req_userdata(req);
	struct emu_chardev *c = file_by_ino(d, ino);

	pthread_mutex_lock(&d->lock);
	if (!c || c->state == EMU_DEV_CLOSED || fi->fh != c->fh) {
		pthread_mutex_unlock(&d->lock);
		fuse_reply_err(req, EBADF);
		return NULL;
	}

	expire_locked(c);
	return c;
}

static void read_interrupted(fuse_req_t req, void *data)
{
	struct emu_chardev *c = data;

	pthread_mutex_lock(&c->dir->lock);
	for (unsigned int i = 0; i < c->n_readers; i++) {
		if (c->readers[i].req != req)
			continue;

		memmove(&c->readers[i], &c->readers[i + 1],
			(c->n_readers - i - 1) * sizeof(c->readers[0]));
		c->n_readers--;
		dev_event(c, "blocked read interrupted by a signal: EINTR");
		fuse_reply_err(req, EINTR);
		break;
	}
	pthread_mutex_unlock(&c->dir->lock);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct emu_chardev *c = file_enter(req, ino, fi);

	if (!c)
		return;

	switch (c->state) {
	case EMU_DEV_DEAD:
		fuse_reply_err(req, EBADF);
		break;
	case EMU_DEV_OPEN:
	case EMU_DEV_READY:
		if (c->outmsg && size < c->outmsg_len) {
			dev_event(c, "read with a %zu-byte buffer for a %zu-byte message: EINVAL",
				  size, c->outmsg_len);
			fuse_reply_err(req, EINVAL);
		} else if (c->outmsg) {
			fuse_reply_buf(req, (const char *)c->outmsg, c->outmsg_len);
			outmsg_consumed(c);
		} else if (fuse_req_interrupted(req)) {
			fuse_reply_err(req, EINTR);
		} else if (c->n_readers == EMU_MAX_READERS) {
			fuse_reply_err(req, EAGAIN);
		} else {
			/* hold the request; the host thread answers it */
			c->readers[c->n_readers++] = (struct emu_reader){
				.req = req,
				.size = size,
			};
			fuse_req_interrupt_func(req, read_interrupted, c);
		}
		break;
	case EMU_DEV_CLOSED:
	case _EMU_DEV_STATE_MAX:
		fuse_reply_err(req, EBADF);
		break;
	}

	pthread_mutex_unlock(&c->dir->lock);
}

/* Does the driver answer this registration (reg_op, or KVP's legacy op 4 too)? */
static bool reg_answered(const struct emu_chardev *c, uint32_t op)
{
	return op == c->svc->reg_op ||
	       (c->svc->kind == EMU_SVC_KIND_KVP && op == c->svc->reg_op_legacy);
}

/* A registration write (op is reg_op or reg_op_legacy). */
static int handle_register(struct emu_chardev *c, uint32_t op)
{
	bool answer = reg_answered(c, op);
	int r = 0;

	/* the driver refuses registration in the middle of a transaction */
	if (c->active) {
		dev_event(c, "registration (op %u) during request #%u: EINVAL", op, c->active);
		return -EINVAL;
	}

	if (answer && c->svc->kind == EMU_SVC_KIND_KVP) {
		/* kvp_register(): a whole zeroed hv_kvp_msg, the op and the version string */
		struct hv_kvp_msg *m = calloc(1, sizeof(*m));

		if (!m)
			return -ENOMEM;
		m->kvp_hdr.operation = (uint8_t)op;
		memcpy(m->body.kvp_register.version, EMU_KVP_DRV_VERSION,
		       sizeof(EMU_KVP_DRV_VERSION));
		r = queue_msg(c, m, sizeof(*m), 0);
		free(m);
	} else if (answer) {
		uint32_t ver = c->svc->version;
		uint8_t le[4] = {(uint8_t)ver, (uint8_t)(ver >> 8), (uint8_t)(ver >> 16),
				 (uint8_t)(ver >> 24)};

		r = queue_msg(c, le, sizeof(le), 0);
	}
	if (r < 0) {
		dev_event(c, "registration (op %u) while a message is queued: EFAULT", op);
		return -EFAULT;
	}

	c->state = EMU_DEV_READY;
	c->reg_value = op;
	/* pending while the answer is still queued (netlink mode sends it at once) */
	c->handshake_pending = answer && c->outmsg;
	c->reg_seq++;
	dev_event(c, "daemon registered (op %u%s), registration #%u", op,
		  answer ? ", version answer queued" : ", no answer", c->reg_seq);
	pthread_cond_broadcast(&c->dir->cond);
	return 0;
}

/* The host's status for an accepted reply (kvp_on_msg(): legacy daemons signal by key). */
static uint32_t reply_status(const struct emu_chardev *c, const uint8_t *buf)
{
	if (c->svc->kind == EMU_SVC_KIND_KVP && c->reg_value == HV_KVP_OP_REGISTER) {
		const struct hv_kvp_msg *m = (const struct hv_kvp_msg *)buf;

		return m->body.kvp_enum_data.data.key[0] == 0 ? HV_S_CONT : HV_S_OK;
	}
	return get_le32(buf);
}

/*
 * When the daemon wrote what is being handled: now (the write is handled in
 * the daemon's write() call, as in the kernel), or in socket mode the time
 * the kernel took the message in, so that the host thread's own wake-up is
 * not counted.
 */
static uint64_t write_time_ns(const struct emu_chardev *c)
{
	return c->dir->rx_ns ? c->dir->rx_ns : emu_now_ns();
}

/* A late reply to a request that timed out (or the THAW): EINVAL, recorded. */
static int late_reply(struct emu_chardev *c, uint32_t status)
{
	struct emu_req *stale = req_get(c, c->last_stale);
	uint64_t now = write_time_ns(c);

	/* vss_on_msg() / kvp_on_msg(): "Transaction not active" */
	stale->late_ns = now;
	stale->late_status = status;
	stale->late_errno = EINVAL;
	c->stale_read = false;
	dev_event(c, "late reply 0x%08x to request #%u (%.2f ms after post): EINVAL", status,
		  stale->id, emu_ms(stale->posted_ns, now));
	pthread_cond_broadcast(&c->dir->cond);
	return -EINVAL;
}

static int handle_reply(struct emu_chardev *c, const uint8_t *buf, size_t size)
{
	struct emu_req *r = req_get(c, c->active);
	uint32_t status, flags = 0;
	uint64_t now = write_time_ns(c);

	if (size != c->svc->msg_size) {
		dev_event(c, "write of %zu bytes (a reply is %zu): EFAULT", size, c->svc->msg_size);
		return -EFAULT;
	}

	status = get_le32(buf);
	if (c->svc->flags_offset && c->svc->flags_offset + 4 <= size)
		flags = get_le32(buf + c->svc->flags_offset);

	if (!r || !r->read_ns) {
		if (c->stale_read && req_get(c, c->last_stale))
			return late_reply(c, status);

		if (r)
			dev_event(c, "reply 0x%08x before request #%u was read: EFAULT", status,
				  r->id);
		else
			dev_event(c, "reply 0x%08x with no request outstanding: EFAULT", status);
		return -EFAULT;
	}

	r->flags = flags;
	reply_keep(c, r, buf, size);
	active_finish(c, status == HV_S_OK ? EMU_REQ_OK : EMU_REQ_FAILED, status, now);
	return 0;
}

/*
 * A write once the KVP or FCOPY driver is past the handshake: a reply to
 * the request sent to the daemon (state HVUTIL_USERSPACE_REQ, read or not),
 * else EINVAL. The size was checked by the caller.
 */
static int handle_reply_kvp_fcopy(struct emu_chardev *c, const uint8_t *buf, size_t size)
{
	struct emu_req *r = req_get(c, c->active);
	uint32_t status = reply_status(c, buf);

	if (!r) {
		if (c->stale_read && req_get(c, c->last_stale))
			return late_reply(c, status);
		dev_event(c, "reply 0x%08x with no request outstanding: EINVAL", status);
		return -EINVAL;
	}

	if (!r->read_ns)
		dev_event(
		    c, "reply 0x%08x to request #%u before it was read: accepted like the driver",
		    status, r->id);
	reply_keep(c, r, buf, size);
	active_finish(c, status == HV_S_OK ? EMU_REQ_OK : EMU_REQ_FAILED, status,
		      write_time_ns(c));
	return 0;
}

/* kvp_on_msg() / fcopy_on_msg(): the same rules for the char device and netlink. */
static int write_kvp_fcopy(struct emu_chardev *c, const uint8_t *p, size_t size, bool late)
{
	bool kvp = c->svc->kind == EMU_SVC_KIND_KVP;
	uint32_t op;

	if (kvp ? size < c->svc->msg_size : size != c->svc->msg_size) {
		dev_event(c, "write of %zu bytes (%s %zu): EINVAL", size,
			  kvp ? "a message is at least" : "a message is", c->svc->msg_size);
		return -EINVAL;
	}

	op = kvp ? p[0] : get_le32(p);
	if (c->state == EMU_DEV_OPEN) {
		if (op == c->svc->reg_op || op == c->svc->reg_op_legacy)
			return handle_register(c, op);
		dev_event(c, "handshake with op/version %u: incompatible daemon: EINVAL", op);
		return -EINVAL;
	}

	if (late) {
		struct emu_req *stale = req_get(c, c->last_stale);

		if (stale && !stale->late_ns)
			return late_reply(c, reply_status(c, p));
		dev_event(c, "reply to an earlier message that is not outstanding: EINVAL");
		return -EINVAL;
	}
	return handle_reply_kvp_fcopy(c, p, size);
}

/* A write() of the opener (FUSE write or socket message): 0 or -errno. */
static int dev_write(struct emu_chardev *c, const uint8_t *p, size_t size)
{
	int r = -EBADF;

	if (c->svc->kind != EMU_SVC_KIND_VSS)
		return c->state == EMU_DEV_OPEN || c->state == EMU_DEV_READY
			       ? write_kvp_fcopy(c, p, size, false)
			       : -EBADF;

	switch (c->state) {
	case EMU_DEV_OPEN:
		/* the first write must be a registration */
		if (size == c->svc->msg_size &&
		    (p[0] == c->svc->reg_op || p[0] == c->svc->reg_op_legacy)) {
			r = handle_register(c, p[0]);
		} else {
			dev_event(c, "first write is not a registration (%zu bytes, op %u): EFAULT",
				  size, size ? p[0] : 0);
			r = -EFAULT;
		}
		break;
	case EMU_DEV_READY:
		if (size == c->svc->msg_size &&
		    (p[0] == c->svc->reg_op || p[0] == c->svc->reg_op_legacy))
			r = handle_register(c, p[0]);
		else
			r = handle_reply(c, p, size);
		break;
	case EMU_DEV_DEAD:
		r = -EBADF;
		break;
	case EMU_DEV_CLOSED:
	case _EMU_DEV_STATE_MAX:
		r = -EBADF;
		break;
	}
	return r;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct emu_chardev *c = file_enter(req, ino, fi);
	int r;

	if (!c)
		return;

	r = dev_write(c, (const uint8_t *)buf, size);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_write(req, size);
	pthread_mutex_unlock(&c->dir->lock);
}

/* The opener's last close (FUSE release, or the socket's end). */
static void dev_release(struct emu_chardev *c)
{
	transport_reset(c, "daemon closed the device");
	readers_fail(c, EBADF);
	if (c->ph) {
		fuse_pollhandle_destroy(c->ph);
		c->ph = NULL;
	}
	c->state = EMU_DEV_CLOSED;
	c->fh = 0;
	dev_event(c, "closed by pid %d", (int)c->opener);
	c->opener = 0;
	pthread_cond_broadcast(&c->dir->cond);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct emu_devdir *d = fuse_req_userdata(req);
	struct emu_chardev *c = file_by_ino(d, ino);

	pthread_mutex_lock(&d->lock);
	if (c && c->state != EMU_DEV_CLOSED && fi->fh == c->fh) {
		expire_locked(c);
		dev_release(c);
	}
	pthread_mutex_unlock(&d->lock);
	fuse_reply_err(req, 0);
}

static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	struct emu_chardev *c = file_enter(req, ino, fi);
	unsigned int revents = 0;

	if (!c) {
		if (ph)
			fuse_pollhandle_destroy(ph);
		return;
	}

	if (ph) {
		if (c->ph)
			fuse_pollhandle_destroy(c->ph);
		c->ph = ph;
	}

	switch (c->state) {
	case EMU_DEV_DEAD:
		revents = POLLERR | POLLHUP;
		break;
	case EMU_DEV_OPEN:
	case EMU_DEV_READY:
		if (c->outmsg)
			revents = POLLIN | POLLRDNORM;
		break;
	case EMU_DEV_CLOSED:
	case _EMU_DEV_STATE_MAX:
		break;
	}

	fuse_reply_poll(req, revents);
	pthread_mutex_unlock(&c->dir->lock);
}

static const struct fuse_lowlevel_ops emu_ops = {
	.lookup = op_lookup,
	.getattr = op_getattr,
	.readdir = op_readdir,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.poll = op_poll,
};

static void *devdir_loop(void *arg)
{
	struct emu_devdir *d = arg;
	struct fuse_buf fbuf = { .mem = NULL };
	struct pollfd pfd[2] = {
		{ .fd = fuse_session_fd(d->se), .events = POLLIN },
		{ .fd = d->stop_fd, .events = POLLIN },
	};

	while (!fuse_session_exited(d->se)) {
		int r;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}

		if (pfd[1].revents)
			break;
		if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL))
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;

		r = fuse_session_receive_buf(d->se, &fbuf);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r <= 0)
			break;

		fuse_session_process_buf(d->se, &fbuf);
	}

	free(fbuf.mem);
	return NULL;
}

int emu_devdir_new(const char *path, emu_event_fn event, void *userdata,
		   struct emu_devdir **ret)
{
	struct emu_devdir *d;
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;

	d->path = strdup(path);
	if (!d->path) {
		free(d);
		return -ENOMEM;
	}

	d->event = event;
	d->userdata = userdata;
	d->stop_fd = -1;

	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&d->lock, &ma);
	pthread_mutexattr_destroy(&ma);

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &ca);
	pthread_condattr_destroy(&ca);

	*ret = d;
	return 0;
}

int emu_devdir_add(struct emu_devdir *d, const struct emu_svc *svc,
		   struct emu_chardev **ret)
{
	struct emu_chardev *c;

	if (d->n_files == EMU_MAX_FILES || d->se || d->sock)
		return -EBUSY;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;

	c->dir = d;
	c->svc = svc;
	c->ino = FUSE_ROOT_ID + 1 + d->n_files;
	c->state = EMU_DEV_CLOSED;
	c->lfd = c->cfd = -1;
	d->files[d->n_files++] = c;
	*ret = c;
	return 0;
}

/* Not started yet (-EALREADY); the directory made if missing. */
static int devdir_prepare(struct emu_devdir *d)
{
	struct stat st;

	if (d->se || d->sock)
		return -EALREADY;
	if (stat(d->path, &st) < 0) {
		if (errno != ENOENT || mkdir(d->path, 0755) < 0)
			return -errno;
	} else if (!S_ISDIR(st.st_mode)) {
		return -ENOTDIR;
	}
	return 0;
}

int emu_devdir_start(struct emu_devdir *d)
{
	char arg0[] = "hv-emu", arg1[] = "-o";
	char arg2[] = "fsname=hv-emu,subtype=hv-emu,allow_other";
	char *argv[] = { arg0, arg1, arg2, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	int r = devdir_prepare(d);

	if (r < 0)
		return r;

	d->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (d->stop_fd < 0)
		return -errno;

	d->se = fuse_session_new(&args, &emu_ops, sizeof(emu_ops), d);
	fuse_opt_free_args(&args);
	if (!d->se)
		return -EIO;

	if (fuse_session_mount(d->se, d->path) != 0)
		return -EIO;
	d->mounted = true;

	r = emu_thread_start(&d->thread, devdir_loop, d);
	if (r < 0)
		return r;
	d->thread_started = true;
	return 0;
}

struct emu_devdir *emu_devdir_free(struct emu_devdir *d)
{
	if (!d)
		return NULL;

	if (d->thread_started) {
		uint64_t one = 1;

		fuse_session_exit(d->se);
		if (write(d->stop_fd, &one, sizeof(one)) < 0)
			pthread_cancel(d->thread);
		pthread_join(d->thread, NULL);
	}

	pthread_mutex_lock(&d->lock);
	for (unsigned int i = 0; i < d->n_files; i++) {
		struct emu_chardev *c = d->files[i];

		readers_fail(c, ENODEV);
		if (c->ph) {
			fuse_pollhandle_destroy(c->ph);
			c->ph = NULL;
		}
	}
	pthread_mutex_unlock(&d->lock);

	if (d->se) {
		/* closes /dev/fuse (aborting the connection) and lazily unmounts */
		if (d->mounted)
			fuse_session_unmount(d->se);
		fuse_session_destroy(d->se);
	}

	for (unsigned int i = 0; i < d->n_files; i++) {
		struct emu_chardev *c = d->files[i];

		if (c->cfd >= 0)
			close(c->cfd);
		if (c->lfd >= 0) {
			close(c->lfd);
			sock_unlink(c);
		}
		for (unsigned int k = 0; k < EMU_REPLIES_KEPT; k++)
			free(d->files[i]->replies[k].buf);
		free(d->files[i]->outmsg);
		free(d->files[i]->reqs);
		free(d->files[i]);
	}

	if (d->stop_fd >= 0)
		close(d->stop_fd);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	free(d->rxbuf);
	free(d->path);
	free(d);
	return NULL;
}

void emu_devdir_kick(struct emu_devdir *d)
{
	pthread_mutex_lock(&d->lock);
	pthread_cond_broadcast(&d->cond);
	if (d->sock && eventfd_write(d->stop_fd, 1) < 0)
		fprintf(stderr, "hv-emu: kick: %s\n", strerror(errno));
	pthread_mutex_unlock(&d->lock);
}

/* ---- socket mode ---------------------------------------------------------- */

static void sock_unlink(struct emu_chardev *c)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", c->dir->path, c->svc->name) <
	    (int)sizeof(path))
		(void)unlink(path);
}

/* A new connection: the open(). The shim reads a u32 errno (0: opened) first. */
static void sock_accept(struct emu_chardev *c, int fd)
{
	struct ucred uc = {0};
	socklen_t len = sizeof(uc);
	uint32_t err = 0;

	(void)getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len);
	if (c->state != EMU_DEV_CLOSED) {
		dev_event(c, "open by pid %d refused: EBUSY (pid %d has it open)", (int)uc.pid,
			  (int)c->opener);
		err = EBUSY;
	}
	if (send(fd, &err, sizeof(err), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(err) ||
	    err) {
		close(fd);
		return;
	}

	/* each message's arrival time (sock_take()) */
	(void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &(int){1}, sizeof(int));
	c->cfd = fd;
	c->state = EMU_DEV_OPEN;
	c->fh = ++c->dir->next_fh;
	c->opener = uc.pid;
	dev_event(c, "opened by pid %d (socket)", (int)uc.pid);
	pthread_cond_broadcast(&c->dir->cond);
}

/* The arrival time of a message (SCM_TIMESTAMPNS, CLOCK_REALTIME) on our clock; 0 if none. */
static uint64_t sock_rx_time(struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		struct timespec ts, real;
		uint64_t mono, at;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPNS)
			continue;
		memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
		mono = emu_now_ns();
		clock_gettime(CLOCK_REALTIME, &real);
		at = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
		/* now on the realtime clock minus the message's age */
		at = (uint64_t)real.tv_sec * 1000000000ULL + (uint64_t)real.tv_nsec - at;
		return at < mono ? mono - at : 0;
	}
	return 0;
}

/*
 * Take in what poll() reported on the device's sockets: new openers (@lrev),
 * the daemon's messages (its write()s: an error is logged, as the daemon
 * cannot be told) and its close (@crev). One message at a time: another
 * one waiting shows up at the next look.
 */
static void sock_take(struct emu_chardev *c, short lrev, short crev)
{
	c->dir->last_look_ns = emu_now_ns();
	if (lrev & POLLIN) {
		int fd;

		while ((fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
			sock_accept(c, fd);
	}

	if (c->cfd >= 0 && crev) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(struct timespec))];
		} ctl;
		struct iovec iov = {.iov_base = c->dir->rxbuf, .iov_len = EMU_MSG_MAX + 1};
		struct msghdr mh = {
		    .msg_iov = &iov,
		    .msg_iovlen = 1,
		    .msg_control = &ctl,
		    .msg_controllen = sizeof(ctl),
		};
		ssize_t n = recvmsg(c->cfd, &mh, MSG_DONTWAIT | MSG_TRUNC);
		int r;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			/* the daemon closed it (a 0-byte write looks the same: none is made) */
			close(c->cfd);
			c->cfd = -1;
			dev_release(c);
			return;
		}
		if (n > EMU_MSG_MAX) {
			dev_event(c, "write of %zd bytes (more than %d): dropped", n, EMU_MSG_MAX);
			return;
		}
		c->dir->rx_ns = sock_rx_time(&mh);
		r = dev_write(c, c->dir->rxbuf, (size_t)n);
		c->dir->rx_ns = 0;
		if (r < 0)
			dev_event(c, "the daemon's %zd-byte write gets %s (not reported over the socket)",
				  n, strerror(-r));
	}
}

/*
 * The lazy look of every host entry point (expire_locked()): a poll() of
 * the sockets, at most every SOCK_LOOK_NS. A wait looks at once (its
 * ppoll()), so a reply or a registration is never late; what else the
 * daemon did (an open, a close) is seen by the next wait or within
 * SOCK_LOOK_NS. Saves a request the host's system calls of looking
 * again when nothing can have happened yet.
 */
#define SOCK_LOOK_NS (1 * EMU_NSEC_PER_MSEC)

static void sock_pump(struct emu_chardev *c)
{
	struct pollfd pfd[2] = {
	    {.fd = c->lfd, .events = POLLIN},
	    {.fd = c->cfd, .events = POLLIN},
	};

	if (emu_now_ns() - c->dir->last_look_ns < SOCK_LOOK_NS)
		return;
	c->dir->last_look_ns = emu_now_ns();
	if (poll(pfd, c->cfd >= 0 ? 2 : 1, 0) > 0)
		sock_take(c, pfd[0].revents, pfd[1].revents);
}

int emu_devdir_start_socket(struct emu_devdir *d)
{
	int r = devdir_prepare(d);

	if (r < 0)
		return r;
	d->rxbuf = malloc(EMU_MSG_MAX + 1);
	if (!d->rxbuf)
		return -ENOMEM;
	d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->stop_fd < 0)
		return -errno;

	for (unsigned int i = 0; i < d->n_files; i++) {
		struct emu_chardev *c = d->files[i];
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", d->path, c->svc->name) >=
		    (int)sizeof(sa.sun_path))
			return -ENAMETOOLONG;
		c->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->lfd < 0)
			return -errno;
		(void)unlink(sa.sun_path);
		if (bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(c->lfd, 4) < 0)
			return -errno;
		/* the send buffer holds one largest message at least */
		(void)setsockopt(c->lfd, SOL_SOCKET, SO_SNDBUF, &(int){4 * EMU_MSG_MAX}, sizeof(int));
	}
	d->sock = true;
	return 0;
}

/* ---- host side ---------------------------------------------------------- */

int emu_chardev_post(struct emu_chardev *c, const void *msg, size_t len,
		     uint64_t timeout_ms, unsigned int *ret_id)
{
	struct emu_devdir *d = c->dir;
	struct emu_req *r;
	unsigned int id;
	int q;

	if (len == 0 || len > EMU_MSG_MAX)
		return -EMSGSIZE;

	pthread_mutex_lock(&d->lock);
	expire_locked(c);
	if (c->active) {
		pthread_mutex_unlock(&d->lock);
		return -EBUSY;
	}

	r = req_new(c, msg, len, timeout_ms);
	if (!r) {
		pthread_mutex_unlock(&d->lock);
		return -ENOMEM;
	}
	id = r->id;

	if (c->state != EMU_DEV_READY) {
		/* vss_handle_request(): "Not ready for request" */
		r->result = EMU_REQ_NOT_READY;
		r->answered_ns = r->posted_ns;
		dev_event(c, "request #%u: no registered daemon (device %s): driver answered HV_E_FAIL",
			  id, emu_dev_state_to_string(c->state));
		goto out;
	}

	c->active = id;
	q = queue_msg(c, msg, len, id);
	if (q < 0) {
		/* vss_send_op(): "failed to communicate to the daemon" */
		dev_event(c, "request #%u: %s: driver answered HV_E_FAIL", id,
			  q == -EFAULT ? "previous message still queued (EFAULT)"
				       : strerror(-q));
		active_finish(c, EMU_REQ_SEND_FAILED, HV_E_FAIL, emu_now_ns());
	}

out:
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	if (ret_id)
		*ret_id = id;
	return 0;
}

int emu_chardev_fake_thaw(struct emu_chardev *c, unsigned int *ret_id)
{
	struct hv_vss_msg msg = { .vss_hdr.operation = HV_VSS_OP_THAW };
	struct emu_devdir *d = c->dir;
	struct emu_req *r;
	int q;

	pthread_mutex_lock(&d->lock);
	expire_locked(c);

	/* hv_vss_pre_suspend(): cancel the timeout; the host gets no answer */
	if (c->active) {
		dev_event(c, "hibernation: request #%u cancelled", c->active);
		active_finish(c, EMU_REQ_CANCELLED, HV_E_FAIL, emu_now_ns());
	}

	r = req_new(c, (const uint8_t *)&msg, sizeof(msg), 0);
	if (!r) {
		pthread_mutex_unlock(&d->lock);
		return -ENOMEM;
	}
	r->result = EMU_REQ_FAKE;
	r->answered_ns = r->posted_ns;
	q = queue_msg(c, &msg, sizeof(msg), r->id);
	dev_event(c, "hibernation: driver's own THAW #%u %s", r->id,
		  q == 0 ? "queued" : "not queued (no daemon or a message already queued)");
	if (c->state == EMU_DEV_OPEN || c->state == EMU_DEV_READY)
		c->state = EMU_DEV_READY;
	if (ret_id)
		*ret_id = r->id;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

void emu_chardev_reset(struct emu_chardev *c)
{
	struct emu_devdir *d = c->dir;

	pthread_mutex_lock(&d->lock);
	expire_locked(c);
	if (d->sock && c->cfd >= 0) {
		/* socket mode: the connection is closed; the daemon reads EOF */
		transport_reset(c, "driver reset");
		close(c->cfd);
		c->cfd = -1;
		c->state = EMU_DEV_CLOSED;
		c->fh = 0;
		dev_event(c, "driver reset (socket): connection closed; requests fail until the "
			     "daemon opens and registers again");
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
		return;
	}
	if (c->deliver) {
		/* netlink: back to INIT; the daemon is not told (nothing to close) */
		transport_reset(c, "driver reset");
		c->state = EMU_DEV_CLOSED;
		dev_event(c, "driver reset (netlink): back to INIT; requests fail until the daemon registers again");
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
		return;
	}
	switch (c->state) {
	case EMU_DEV_OPEN:
	case EMU_DEV_READY:
		transport_reset(c, "driver reset");
		c->state = EMU_DEV_DEAD;
		readers_fail(c, EBADF);
		notify_poll(c);
		dev_event(c, "driver reset: reads/writes fail with EBADF until the daemon closes");
		break;
	case EMU_DEV_CLOSED:
		dev_event(c, "driver reset with no opener: nothing to do");
		break;
	case EMU_DEV_DEAD:
		dev_event(c, "driver reset: already reset");
		break;
	case _EMU_DEV_STATE_MAX:
		break;
	}
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

/*
 * One bounded wait step: until the earliest of deadline, the slice end. In
 * socket mode the waiting thread itself polls the device's sockets (the
 * next expire_locked() takes in what came), so that a reply costs no other
 * thread's wake-up; a change made by another host thread is seen at the
 * end of the slice, or at once after emu_devdir_kick().
 */
static void wait_slice(struct emu_chardev *c, uint64_t until_ns)
{
	struct emu_devdir *d = c->dir;
	uint64_t now = emu_now_ns();
	uint64_t end = now + EMU_WAIT_SLICE_NS;
	struct timespec ts;

	if (until_ns && until_ns < end)
		end = until_ns;
	if (end <= now)
		return;

	if (d->sock) {
		struct pollfd pfd[3] = {
			{.fd = d->stop_fd, .events = POLLIN},
			{.fd = c->lfd, .events = POLLIN},
			{.fd = c->cfd, .events = POLLIN},
		};
		eventfd_t v;
		int n;

		emu_ns_to_timespec(end - now, &ts);
		pthread_mutex_unlock(&d->lock);
		n = ppoll(pfd, c->cfd >= 0 ? 3 : 2, &ts, NULL);
		if (n > 0 && pfd[0].revents)
			(void)eventfd_read(d->stop_fd, &v);
		pthread_mutex_lock(&d->lock);
		/* the connection may have changed while unlocked: look again then */
		if (n > 0 && pfd[2].fd == c->cfd)
			sock_take(c, pfd[1].revents, pfd[2].revents);
		else if (n > 0)
			d->last_look_ns = 0;
		return;
	}

	emu_ns_to_timespec(end, &ts);
	pthread_cond_timedwait(&d->cond, &d->lock, &ts);
}

int emu_chardev_wait(struct emu_chardev *c, unsigned int id, uint64_t max_ms,
		     emu_abort_fn abort_fn, void *userdata, struct emu_req *ret)
{
	struct emu_devdir *d = c->dir;
	uint64_t end = max_ms ? emu_now_ns() + max_ms * EMU_NSEC_PER_MSEC : 0;
	struct emu_req *r;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	for (;;) {
		uint64_t until = end;

		expire_locked(c);
		r = req_get(c, id);
		if (!r) {
			rc = -ENOENT;
			break;
		}
		if (r->result != EMU_REQ_PENDING)
			break;
		if (end && emu_now_ns() >= end) {
			rc = -ETIMEDOUT;
			break;
		}
		if (abort_fn && abort_fn(userdata)) {
			rc = -ECANCELED;
			break;
		}
		if (r->deadline_ns && (!until || r->deadline_ns < until))
			until = r->deadline_ns;
		wait_slice(c, until);
	}

	if (r && ret)
		*ret = *r;
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int emu_chardev_wait_registered(struct emu_chardev *c, unsigned int after_seq,
				uint64_t max_ms, emu_abort_fn abort_fn,
				void *userdata)
{
	struct emu_devdir *d = c->dir;
	uint64_t end = emu_now_ns() + max_ms * EMU_NSEC_PER_MSEC;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	for (;;) {
		expire_locked(c);
		if (c->state == EMU_DEV_READY && !c->handshake_pending &&
		    c->reg_seq > after_seq)
			break;
		if (emu_now_ns() >= end) {
			rc = -ETIMEDOUT;
			break;
		}
		if (abort_fn && abort_fn(userdata)) {
			rc = -ECANCELED;
			break;
		}
		wait_slice(c, end);
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int emu_chardev_get(struct emu_chardev *c, unsigned int id, struct emu_req *ret)
{
	struct emu_req *r;
	int rc = 0;

	pthread_mutex_lock(&c->dir->lock);
	expire_locked(c);
	r = req_get(c, id);
	if (r)
		*ret = *r;
	else
		rc = -ENOENT;
	pthread_mutex_unlock(&c->dir->lock);
	return rc;
}

ssize_t emu_chardev_reply(struct emu_chardev *c, unsigned int id, void *buf, size_t size)
{
	struct emu_req *r;
	ssize_t rc = -ESTALE;

	pthread_mutex_lock(&c->dir->lock);
	expire_locked(c);
	r = req_get(c, id);
	if (!r) {
		rc = -ENOENT;
	} else if (!r->reply_len) {
		rc = -ENODATA;
	} else {
		for (unsigned int k = 0; k < EMU_REPLIES_KEPT; k++) {
			const struct emu_reply *kept = &c->replies[k];

			if (kept->id != id || !kept->buf)
				continue;
			memcpy(buf, kept->buf, kept->len < size ? kept->len : size);
			rc = (ssize_t)kept->len;
			break;
		}
	}
	pthread_mutex_unlock(&c->dir->lock);
	return rc;
}

unsigned int emu_chardev_count(struct emu_chardev *c)
{
	unsigned int n;

	pthread_mutex_lock(&c->dir->lock);
	n = c->n_reqs;
	pthread_mutex_unlock(&c->dir->lock);
	return n;
}

unsigned int emu_chardev_reg_seq(struct emu_chardev *c)
{
	unsigned int n;

	pthread_mutex_lock(&c->dir->lock);
	n = c->reg_seq;
	pthread_mutex_unlock(&c->dir->lock);
	return n;
}

enum emu_dev_state emu_chardev_state(struct emu_chardev *c)
{
	enum emu_dev_state s;

	pthread_mutex_lock(&c->dir->lock);
	expire_locked(c);
	s = c->state;
	pthread_mutex_unlock(&c->dir->lock);
	return s;
}

/* ---- netlink mode (emu-netlink.c) --------------------------------------- */

void emu_chardev_set_deliver(struct emu_chardev *c, emu_deliver_fn fn, void *userdata)
{
	pthread_mutex_lock(&c->dir->lock);
	c->deliver = fn;
	c->deliver_ud = userdata;
	pthread_mutex_unlock(&c->dir->lock);
}

/* A reply that names an earlier message (netlink seq): never the active request's. */
static int handle_late_reply(struct emu_chardev *c, const uint8_t *buf, size_t size)
{
	struct emu_req *stale = req_get(c, c->last_stale);
	uint32_t status = size >= 4 ? get_le32(buf) : HV_E_FAIL;

	if (!stale || stale->late_ns) {
		dev_event(c, "reply 0x%08x to an earlier message that is not outstanding: EINVAL",
			  status);
		return -EINVAL;
	}
	return late_reply(c, status);
}

int emu_chardev_inject(struct emu_chardev *c, const void *buf, size_t size, uint32_t sender,
		       bool late)
{
	const uint8_t *p = buf;
	int r = -EBADF;

	pthread_mutex_lock(&c->dir->lock);
	expire_locked(c);
	if (c->state == EMU_DEV_CLOSED) {
		/* hvt_cn_callback(): the first connector message switches INIT -> NETLINK */
		c->state = EMU_DEV_OPEN;
		c->opener = (pid_t)sender;
		dev_event(c, "netlink mode: first message from port %u", sender);
	}

	switch (c->state) {
	case EMU_DEV_OPEN:
	case EMU_DEV_READY:
		if (c->svc->kind != EMU_SVC_KIND_VSS)
			r = write_kvp_fcopy(c, p, size, late);
		else if (size == c->svc->msg_size &&
			 (p[0] == c->svc->reg_op || p[0] == c->svc->reg_op_legacy))
			r = handle_register(c, p[0]);
		else if (c->state == EMU_DEV_OPEN)
			r = -EINVAL; /* vss_on_msg(): "Transaction not active" */
		else if (late)
			r = handle_late_reply(c, p, size);
		else
			r = handle_reply(c, p, size);
		break;
	case EMU_DEV_DEAD:
	case EMU_DEV_CLOSED:
	case _EMU_DEV_STATE_MAX:
		break;
	}
	pthread_mutex_unlock(&c->dir->lock);
	return r;
}
