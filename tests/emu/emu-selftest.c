/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Client-side test of the emulated char device (emu-chardev.c): plays the
 * daemon with plain open/read/write/poll on <tmpdir>/hv_vss while the host
 * side is driven directly. Freezes nothing and starts no daemon. Runs in a
 * private mount namespace; exits 77 (skipped) without root, /dev/fuse or
 * the right to create a mount namespace. -v prints the device timeline.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emu-chardev.h"
#include "emu-util.h"
#include "hv-kvp.h"
#include "hv-status.h"
#include "hv-vss.h"

#define SKIP 77

static unsigned int n_tests, n_failed;
static char dev_path[256], kvp_path[256], fcopy_path[256];
static struct emu_chardev *vss, *kvp, *fcopy;

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void check(bool ok, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);

	n_tests++;
	if (!ok)
		n_failed++;
	printf("%sok %u - %s\n", ok ? "" : "not ", n_tests, buf);
	fflush(stdout);
}

static void event(uint64_t t_ns, const char *dev, const char *text, void *userdata)
{
	emu_tl_at(t_ns, "%-8s %s", dev, text);
}

static int dev_open(void)
{
	return open(dev_path, O_RDWR | O_CLOEXEC);
}

/* write a 12-byte message with the first u32 and the flags; -errno or bytes */
static ssize_t put(int fd, uint32_t first, uint32_t flags, size_t len)
{
	struct hv_vss_msg m = { .error = (int32_t)first, .vss_cf.flags = flags };
	uint8_t buf[64] = { 0 };
	ssize_t n;

	memcpy(buf, &m, sizeof(m));
	n = write(fd, buf, len);
	return n < 0 ? -errno : n;
}

static ssize_t get(int fd, void *buf, size_t len)
{
	ssize_t n = read(fd, buf, len);

	return n < 0 ? -errno : n;
}

static short poll_now(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDNORM };

	if (poll(&p, 1, timeout_ms) < 0)
		return -1;
	return p.revents;
}

struct bg {
	pthread_t th;
	int fd;
	size_t size;
	bool do_poll;
	ssize_t n;
	short revents;
	uint8_t buf[64];
	volatile bool done;
};

static void *bg_thread(void *arg)
{
	struct bg *b = arg;

	if (b->do_poll)
		b->revents = poll_now(b->fd, 3000);
	else
		b->n = get(b->fd, b->buf, b->size);
	b->done = true;
	return NULL;
}

static void bg_start(struct bg *b, int fd, size_t size, bool do_poll)
{
	*b = (struct bg){ .fd = fd, .size = size, .do_poll = do_poll };
	pthread_create(&b->th, NULL, bg_thread, b);
}

/* join within ms; false if the thread is still blocked (it is then left running) */
static bool bg_join(struct bg *b, unsigned int ms)
{
	for (unsigned int i = 0; i < ms / 10 && !b->done; i++)
		emu_sleep_ms(10);
	if (!b->done)
		return false;
	pthread_join(b->th, NULL);
	return true;
}

static void on_usr1(int sig)
{
}

static unsigned int post(uint8_t op, uint64_t timeout_ms)
{
	struct hv_vss_msg m = { .vss_hdr.operation = op };
	unsigned int id = 0;
	int r = emu_chardev_post(vss, &m, sizeof(m), timeout_ms, &id);

	if (r < 0)
		check(false, "post op %u: %s", op, strerror(-r));
	return id;
}

static struct emu_req wait_req(unsigned int id)
{
	struct emu_req r = { .result = EMU_REQ_PENDING };

	emu_chardev_wait(vss, id, 3000, NULL, NULL, &r);
	return r;
}

static int registered_open(void)
{
	uint32_t ver = 0;
	int fd = dev_open();

	if (fd < 0 || put(fd, HV_VSS_OP_REGISTER1, 0, 12) != 12 || get(fd, &ver, 4) != 4 ||
	    ver != HV_VSS_OP_REGISTER1)
		check(false, "open + register");
	return fd;
}

static void test_open_register(void)
{
	uint8_t buf[64];
	uint32_t ver = 0;
	struct emu_req r;
	int fd, fd2;

	fd = dev_open();
	check(fd >= 0, "open %s", dev_path);
	fd2 = dev_open();
	check(fd2 < 0 && errno == EBUSY, "second open gets EBUSY");
	if (fd2 >= 0)
		close(fd2);

	check(poll_now(fd, 0) == 0, "poll before registration: nothing readable");
	check(put(fd, 42, 0, 12) == -EFAULT, "first write with op 42: EFAULT");
	check(put(fd, HV_VSS_OP_REGISTER1, 0, 8) == -EFAULT, "first write of 8 bytes: EFAULT");

	r = wait_req(post(HV_VSS_OP_FREEZE, 1000));
	check(r.result == EMU_REQ_NOT_READY && r.status == HV_E_FAIL,
	      "FREEZE before registration fails at once (%s)", emu_req_result_to_string(r.result));

	check(put(fd, HV_VSS_OP_REGISTER1, 0, 12) == 12, "register with op 129");
	check(emu_chardev_state(vss) == EMU_DEV_READY, "device is ready");
	{
		short pr = poll_now(fd, 0);

		check(pr == (POLLIN | POLLRDNORM), "poll: version answer readable (0x%x)", pr);
	}
	check(get(fd, buf, 2) == -EINVAL, "read with a 2-byte buffer: EINVAL");
	check(poll_now(fd, 0) == (POLLIN | POLLRDNORM), "message still queued after EINVAL");
	check(get(fd, &ver, 4) == 4 && ver == HV_VSS_OP_REGISTER1, "read the 4-byte version");
	check(poll_now(fd, 0) == 0, "poll: nothing queued");
	check(put(fd, 0, 0, 12) == -EFAULT, "reply with no request outstanding: EFAULT");
	check(pread(fd, buf, 12, 0) < 0 && errno == ESPIPE, "pread: ESPIPE (nonseekable)");
	close(fd);
}

static void test_requests(void)
{
	uint8_t buf[64];
	struct emu_req r;
	struct bg b;
	unsigned int id;
	uint64_t t;
	bool ok;
	int fd = registered_open();

	/* FREEZE: reply checks */
	id = post(HV_VSS_OP_FREEZE, 5000);
	check(poll_now(fd, 0) == (POLLIN | POLLRDNORM), "poll: FREEZE readable");
	check(put(fd, 0, 0, 12) == -EFAULT, "reply before the request was read: EFAULT");
	check(get(fd, buf, sizeof(buf)) == 12 && buf[0] == HV_VSS_OP_FREEZE,
	      "read FREEZE (12 bytes, op 5)");
	check(put(fd, 0, 0, 8) == -EFAULT, "8-byte reply: EFAULT");
	check(put(fd, 0, 0, 16) == -EFAULT, "16-byte reply: EFAULT");
	check(put(fd, HV_S_OK, 0, 12) == 12, "12-byte reply status 0 accepted");
	r = wait_req(id);
	check(r.result == EMU_REQ_OK && r.posted_ns <= r.read_ns && r.read_ns <= r.answered_ns,
	      "FREEZE ok, posted <= read <= answered (%.3f / %.3f ms)",
	      emu_ms(r.posted_ns, r.read_ns), emu_ms(r.posted_ns, r.answered_ns));
	check(r.reply_len == 12 && emu_chardev_reply(vss, id, buf, sizeof(buf)) == 12 &&
		  buf[0] == 0,
	      "FREEZE reply kept (12 bytes)");

	/* a blocked read is answered by the host thread */
	bg_start(&b, fd, sizeof(b.buf), false);
	emu_sleep_ms(100);
	check(!b.done, "read blocks while nothing is queued");
	id = post(HV_VSS_OP_HOT_BACKUP, 5000);
	check(bg_join(&b, 2000) && b.n == 12 && b.buf[0] == HV_VSS_OP_HOT_BACKUP,
	      "blocked read returns HOT_BACKUP");
	check(put(fd, HV_E_FAIL, HV_VSS_HBU_NO_AUTO_RECOVERY, 12) == 12, "reply HV_E_FAIL");
	r = wait_req(id);
	check(r.result == EMU_REQ_FAILED && r.status == HV_E_FAIL &&
	      r.flags == HV_VSS_HBU_NO_AUTO_RECOVERY,
	      "HOT_BACKUP failed, status 0x%08x flags 0x%x", r.status, r.flags);

	/* a blocked poll is woken by fuse_lowlevel_notify_poll */
	bg_start(&b, fd, 0, true);
	emu_sleep_ms(100);
	t = emu_now_ns();
	id = post(HV_VSS_OP_THAW, 5000);
	ok = bg_join(&b, 2000);
	t = emu_now_ns() - t;
	check(ok && b.revents == (POLLIN | POLLRDNORM) && t < 1000 * EMU_NSEC_PER_MSEC,
	      "blocked poll woken by a post (revents 0x%x)", b.revents);
	check(get(fd, buf, sizeof(buf)) == 12 && put(fd, 0, 0, 12) == 12 &&
	      wait_req(id).result == EMU_REQ_OK, "THAW read and answered");

	/* interrupted read */
	bg_start(&b, fd, sizeof(b.buf), false);
	emu_sleep_ms(100);
	pthread_kill(b.th, SIGUSR1);
	ok = bg_join(&b, 2000);
	check(ok && b.n == -EINTR, "signal to a blocked read: EINTR (%zd)", b.n);

	/* timeout after the daemon read the request: a late reply gets EINVAL */
	id = post(HV_VSS_OP_FREEZE, 100);
	check(get(fd, buf, sizeof(buf)) == 12, "read FREEZE with a 100 ms timeout");
	emu_sleep_ms(200);
	r = wait_req(id);
	check(r.result == EMU_REQ_TIMEOUT && r.status == HV_E_FAIL, "request timed out");
	check(put(fd, 0, 0, 12) == -EINVAL, "late reply: EINVAL");
	emu_chardev_get(vss, id, &r);
	check(r.late_errno == EINVAL && r.late_ns > r.answered_ns, "late reply recorded");

	/* timeout before the daemon read it: the message stays and blocks the next send */
	id = post(HV_VSS_OP_THAW, 100);
	emu_sleep_ms(200);
	check(wait_req(id).result == EMU_REQ_TIMEOUT, "unread request timed out");
	id = post(HV_VSS_OP_THAW, 1000);
	check(wait_req(id).result == EMU_REQ_SEND_FAILED,
	      "next request fails: the old message is still queued");
	check(get(fd, buf, sizeof(buf)) == 12 && buf[0] == HV_VSS_OP_THAW,
	      "stale message can still be read");
	check(put(fd, 0, 0, 12) == -EINVAL, "reply to the stale message: EINVAL");
	id = post(HV_VSS_OP_THAW, 1000);
	check(get(fd, buf, sizeof(buf)) == 12 && put(fd, 0, 0, 12) == 12 &&
	      wait_req(id).result == EMU_REQ_OK, "back to normal afterwards");

	/* registration again while idle, and during a transaction */
	check(put(fd, HV_VSS_OP_REGISTER1, 0, 12) == 12 && get(fd, buf, sizeof(buf)) == 4,
	      "re-registration while idle queues the version again");
	id = post(HV_VSS_OP_FREEZE, 1000);
	check(put(fd, HV_VSS_OP_REGISTER1, 0, 12) == -EINVAL, "registration during a request: EINVAL");
	check(get(fd, buf, sizeof(buf)) == 12 && put(fd, 0, 0, 12) == 12 &&
	      wait_req(id).result == EMU_REQ_OK, "request still answered");

	/* a raw 20-byte message */
	{
		uint8_t raw[20] = { HV_VSS_OP_FREEZE, 1, 2, 3 };

		emu_chardev_post(vss, raw, sizeof(raw), 1000, &id);
		check(get(fd, buf, 12) == -EINVAL, "12-byte read of a 20-byte message: EINVAL");
		check(get(fd, buf, sizeof(buf)) == 20, "64-byte read gets all 20 bytes");
		check(put(fd, 0, 0, 12) == 12 && wait_req(id).result == EMU_REQ_OK,
		      "reply to the raw message");
	}

	/* the hibernation THAW */
	emu_chardev_fake_thaw(vss, &id);
	check(get(fd, buf, sizeof(buf)) == 12 && buf[0] == HV_VSS_OP_THAW, "read the fake THAW");
	check(put(fd, 0, 0, 12) == -EINVAL, "reply to the fake THAW: EINVAL");

	/* close with a request outstanding, then reopen at once */
	id = post(HV_VSS_OP_FREEZE, 5000);
	check(get(fd, buf, sizeof(buf)) == 12, "read FREEZE, then close without replying");
	close(fd);
	fd = dev_open();
	check(fd >= 0, "reopen right after close");
	r = wait_req(id);
	check(r.result == EMU_REQ_RESET && r.status == HV_E_FAIL, "outstanding request failed: %s",
	      emu_req_result_to_string(r.result));
	check(emu_chardev_state(vss) == EMU_DEV_OPEN, "reopened device is not registered");
	check(wait_req(post(HV_VSS_OP_FREEZE, 1000)).result == EMU_REQ_NOT_READY,
	      "post before re-registration fails at once");

	/* legacy registration: no answer */
	check(put(fd, HV_VSS_OP_REGISTER, 0, 12) == 12, "register with op 128");
	check(poll_now(fd, 0) == 0, "op 128: no version answer queued");
	id = post(HV_VSS_OP_THAW, 1000);
	check(get(fd, buf, sizeof(buf)) == 12 && put(fd, 0, 0, 12) == 12 &&
	      wait_req(id).result == EMU_REQ_OK, "requests work after op 128");
	close(fd);
}

static void test_reset(void)
{
	uint8_t buf[64];
	struct emu_req r;
	struct bg b, p;
	unsigned int id;
	bool ok;
	int fd = registered_open(), fd2;

	bg_start(&b, fd, sizeof(b.buf), false);
	emu_sleep_ms(50);
	bg_start(&p, fd, 0, true);
	emu_sleep_ms(50);
	emu_chardev_reset(vss);
	ok = bg_join(&b, 2000);
	check(ok && b.n == -EBADF, "reset: blocked read gets EBADF (%zd)", b.n);
	ok = bg_join(&p, 2000);
	check(ok && (p.revents & (POLLERR | POLLHUP)) == (POLLERR | POLLHUP),
	      "reset: blocked poll gets POLLERR|POLLHUP (0x%x)", p.revents);
	check(poll_now(fd, 0) == (POLLERR | POLLHUP), "poll after reset: POLLERR|POLLHUP");
	check(get(fd, buf, sizeof(buf)) == -EBADF, "read after reset: EBADF");
	check(put(fd, 0, 0, 12) == -EBADF, "write after reset: EBADF");
	fd2 = dev_open();
	check(fd2 < 0 && errno == EBUSY, "open while the reset device is still open: EBUSY");
	check(wait_req(post(HV_VSS_OP_FREEZE, 1000)).result == EMU_REQ_NOT_READY,
	      "post after reset fails at once");
	close(fd);

	fd = registered_open();
	check(fd >= 0 && emu_chardev_state(vss) == EMU_DEV_READY,
	      "close, reopen and register after reset");

	id = post(HV_VSS_OP_FREEZE, 5000);
	check(get(fd, buf, sizeof(buf)) == 12, "read FREEZE");
	emu_chardev_reset(vss);
	r = wait_req(id);
	check(r.result == EMU_REQ_RESET, "reset fails the outstanding request (%s)",
	      emu_req_result_to_string(r.result));
	check(put(fd, 0, 0, 12) == -EBADF, "reply after reset: EBADF");
	close(fd);
}

/* ---- KVP ---------------------------------------------------------------- */

static ssize_t put_raw(int fd, const void *buf, size_t len)
{
	ssize_t n = write(fd, buf, len);

	return n < 0 ? -errno : n;
}

/* a whole hv_kvp_msg with op, status (error overlaps the header) and key */
static ssize_t put_kvp(int fd, uint8_t op, uint32_t status, const char *key, size_t len)
{
	static struct hv_kvp_msg m[2]; /* room for a longer-than-whole write */

	memset(m, 0, sizeof(m));
	if (status)
		m[0].error = (int32_t)status;
	else
		m[0].kvp_hdr.operation = op;
	if (key)
		snprintf((char *)m[0].body.kvp_enum_data.data.key,
			 sizeof(m[0].body.kvp_enum_data.data.key), "%s", key);
	return put_raw(fd, m, len);
}

static unsigned int post_kvp(uint8_t op, uint8_t pool, const char *key, uint64_t timeout_ms)
{
	static struct hv_kvp_msg m;
	unsigned int id = 0;
	int r;

	memset(&m, 0, sizeof(m));
	m.kvp_hdr.operation = op;
	m.kvp_hdr.pool = pool;
	if (key) {
		m.body.kvp_get.data.key_size = (uint32_t)strlen(key) + 1;
		memcpy(m.body.kvp_get.data.key, key, strlen(key) + 1);
	}
	r = emu_chardev_post(kvp, &m, sizeof(m), timeout_ms, &id);
	if (r < 0)
		check(false, "post KVP op %u: %s", op, strerror(-r));
	return id;
}

static struct emu_req wait_on(struct emu_chardev *c, unsigned int id)
{
	struct emu_req r = {.result = EMU_REQ_PENDING};

	emu_chardev_wait(c, id, 3000, NULL, NULL, &r);
	return r;
}

static void test_kvp(void)
{
	static struct hv_kvp_msg in, reply;
	const size_t whole = sizeof(struct hv_kvp_msg);
	struct emu_req r;
	unsigned int id;
	ssize_t n;
	int fd = open(kvp_path, O_RDWR | O_CLOEXEC);

	check(fd >= 0 && whole == 7432, "open hv_kvp (a message is %zu bytes)", whole);
	check(put_kvp(fd, HV_KVP_OP_REGISTER1, 0, NULL, whole - 1) == -EINVAL,
	      "KVP: registration of 7,431 bytes: EINVAL");
	check(put_kvp(fd, 42, 0, NULL, whole) == -EINVAL, "KVP: handshake with op 42: EINVAL");
	check(emu_chardev_state(kvp) == EMU_DEV_OPEN, "KVP: still not registered");
	check(wait_on(kvp, post_kvp(HV_KVP_OP_GET, 0, "k", 1000)).result == EMU_REQ_NOT_READY,
	      "KVP: GET before registration fails at once");

	check(put_kvp(fd, HV_KVP_OP_REGISTER1, 0, NULL, whole) == (ssize_t)whole,
	      "KVP: register with op 100");
	check(get(fd, &in, 4) == -EINVAL, "KVP: 4-byte read of the answer: EINVAL");
	n = get(fd, &in, sizeof(in));
	check(n == (ssize_t)whole && in.kvp_hdr.operation == HV_KVP_OP_REGISTER1 &&
		  strcmp((const char *)in.body.kvp_register.version, EMU_KVP_DRV_VERSION) == 0,
	      "KVP: answer is a whole message, op 100, version \"%s\" (%zd bytes)",
	      (const char *)in.body.kvp_register.version, n);
	check(put_kvp(fd, 0, 0, NULL, whole) == -EINVAL,
	      "KVP: reply with no request outstanding: EINVAL");
	check(put_kvp(fd, HV_KVP_OP_REGISTER1, 0, NULL, whole) == -EINVAL,
	      "KVP: registering again once registered is a spurious reply: EINVAL");

	/* a request: op and pool recorded, reply captured */
	id = post_kvp(HV_KVP_OP_GET, 3, "key1", 5000);
	check(get(fd, &in, sizeof(in)) == (ssize_t)whole && in.kvp_hdr.operation == HV_KVP_OP_GET &&
		  in.kvp_hdr.pool == 3 &&
		  strcmp((const char *)in.body.kvp_get.data.key, "key1") == 0,
	      "KVP: read GET pool 3 key1");
	check(put_kvp(fd, 0, 0, NULL, whole - 4) == -EINVAL, "KVP: 7,428-byte reply: EINVAL");
	memset(&reply, 0, sizeof(reply));
	memcpy(reply.body.kvp_enum_data.data.value, "v1", 3);
	check(put_raw(fd, &reply, whole) == (ssize_t)whole, "KVP: reply status 0");
	r = wait_on(kvp, id);
	check(r.result == EMU_REQ_OK && r.op == HV_KVP_OP_GET && r.pool == 3 &&
		  r.reply_len == whole,
	      "KVP: record shows op %u pool %u reply %zu bytes", r.op, r.pool, r.reply_len);
	memset(&in, 0xff, sizeof(in));
	n = emu_chardev_reply(kvp, id, &in, sizeof(in));
	check(n == (ssize_t)whole &&
		  strcmp((const char *)in.body.kvp_enum_data.data.value, "v1") == 0,
	      "KVP: emu_chardev_reply returns the reply (%zd bytes)", n);
	check(emu_chardev_reply(kvp, id + 1, &in, sizeof(in)) == -ENOENT,
	      "KVP: reply of an unknown request: ENOENT");

	/* status HV_S_CONT; a longer-than-whole write is accepted */
	id = post_kvp(HV_KVP_OP_ENUMERATE, 1, NULL, 5000);
	check(get(fd, &in, sizeof(in)) == (ssize_t)whole, "KVP: read ENUMERATE");
	check(put_kvp(fd, 0, HV_S_CONT, NULL, whole + 8) == (ssize_t)whole + 8,
	      "KVP: a reply longer than a message is accepted");
	r = wait_on(kvp, id);
	check(r.result == EMU_REQ_FAILED && r.status == HV_S_CONT && r.reply_len == whole + 8,
	      "KVP: status 0x%08x from the first 4 bytes", r.status);

	/* reply before the read: accepted like the driver; the message stays queued */
	id = post_kvp(HV_KVP_OP_DELETE, 0, "x", 5000);
	check(put_kvp(fd, 0, 0, NULL, whole) == (ssize_t)whole &&
		  wait_on(kvp, id).result == EMU_REQ_OK,
	      "KVP: reply before read accepted");
	check(get(fd, &in, sizeof(in)) == (ssize_t)whole &&
		  put_kvp(fd, 0, 0, NULL, whole) == -EINVAL,
	      "KVP: the message is still read; a second reply: EINVAL");

	/* timeout, late reply */
	id = post_kvp(HV_KVP_OP_SET, 0, "t", 100);
	check(get(fd, &in, sizeof(in)) == (ssize_t)whole, "KVP: read SET with a 100 ms timeout");
	emu_sleep_ms(200);
	check(wait_on(kvp, id).result == EMU_REQ_TIMEOUT, "KVP: request timed out");
	check(put_kvp(fd, 0, 0, NULL, whole) == -EINVAL, "KVP: late reply: EINVAL");
	emu_chardev_get(kvp, id, &r);
	check(r.late_errno == EINVAL && r.reply_len == 0 &&
		  emu_chardev_reply(kvp, id, &in, sizeof(in)) == -ENODATA,
	      "KVP: late reply recorded, not kept as the reply");
	close(fd);

	/* legacy op 4: answered too; status from the key */
	fd = open(kvp_path, O_RDWR | O_CLOEXEC);
	check(fd >= 0 && put_kvp(fd, HV_KVP_OP_REGISTER, 0, NULL, whole) == (ssize_t)whole &&
		  get(fd, &in, sizeof(in)) == (ssize_t)whole &&
		  in.kvp_hdr.operation == HV_KVP_OP_REGISTER,
	      "KVP: register with op 4: answered with op 4");
	id = post_kvp(HV_KVP_OP_ENUMERATE, 0, NULL, 5000);
	check(get(fd, &in, sizeof(in)) == (ssize_t)whole &&
		  put_kvp(fd, 0, 7, "", whole) == (ssize_t)whole,
	      "KVP (op 4): reply with an empty key and status 7");
	r = wait_on(kvp, id);
	check(r.status == HV_S_CONT, "KVP (op 4): empty key means HV_S_CONT (0x%08x)", r.status);
	id = post_kvp(HV_KVP_OP_ENUMERATE, 0, NULL, 5000);
	check(get(fd, &in, sizeof(in)) == (ssize_t)whole &&
		  put_kvp(fd, 0, 7, "k", whole) == (ssize_t)whole,
	      "KVP (op 4): reply with a key and status 7");
	r = wait_on(kvp, id);
	check(r.result == EMU_REQ_OK && r.status == HV_S_OK,
	      "KVP (op 4): a key means success (0x%08x)", r.status);
	close(fd);
}

/* ---- FCOPY -------------------------------------------------------------- */

static ssize_t put_u32(int fd, uint32_t v, size_t len)
{
	uint8_t buf[8] = {0};

	memcpy(buf, &v, sizeof(v));
	return put_raw(fd, buf, len);
}

static void test_fcopy(void)
{
	uint8_t buf[64], msg[36] = {0};
	uint32_t v = 0;
	struct emu_req r;
	unsigned int id = 0;
	int fd = open(fcopy_path, O_RDWR | O_CLOEXEC);

	check(fd >= 0, "open hv_fcopy");
	check(put_u32(fd, 1, 8) == -EINVAL, "FCOPY: 8-byte registration: EINVAL");
	check(put_u32(fd, 2, 4) == -EINVAL, "FCOPY: version 2: EINVAL");
	check(put_u32(fd, 1, 4) == 4, "FCOPY: register with version 1");
	check(get(fd, buf, 2) == -EINVAL, "FCOPY: 2-byte read of the version: EINVAL");
	check(get(fd, &v, sizeof(buf)) == 4 && v == 1, "FCOPY: read the 4-byte version 1");
	check(put_u32(fd, 1, 4) == -EINVAL,
	      "FCOPY: a 4-byte write once registered is a reply: EINVAL");

	msg[0] = 2; /* COMPLETE_FCOPY, a le32 */
	emu_chardev_post(fcopy, msg, sizeof(msg), 5000, &id);
	check(get(fd, buf, sizeof(buf)) == 36, "FCOPY: read a 36-byte message");
	check(put_u32(fd, 0, 12) == -EINVAL, "FCOPY: 12-byte reply: EINVAL");
	check(put_u32(fd, HV_E_FAIL, 4) == 4, "FCOPY: 4-byte reply HV_E_FAIL");
	r = wait_on(fcopy, id);
	check(r.result == EMU_REQ_FAILED && r.status == HV_E_FAIL && r.op == 2 &&
		  r.reply_len == 4 && emu_chardev_reply(fcopy, id, &v, sizeof(v)) == 4 &&
		  v == HV_E_FAIL,
	      "FCOPY: op %u (le32), status 0x%08x, 4-byte reply kept", r.op, r.status);

	msg[0] = 0;
	msg[1] = 1; /* le32 256: the op is not only byte 0 */
	emu_chardev_post(fcopy, msg, sizeof(msg), 5000, &id);
	check(get(fd, buf, sizeof(buf)) == 36 && put_u32(fd, 0, 4) == 4, "FCOPY: read, reply 0");
	r = wait_on(fcopy, id);
	check(r.result == EMU_REQ_OK && r.op == 256, "FCOPY: op read as a le32 (%u)", r.op);
	close(fd);

	fd = open(fcopy_path, O_RDWR | O_CLOEXEC);
	check(fd >= 0 && put_u32(fd, 0, 4) == 4 && poll_now(fd, 0) == 0 &&
		  emu_chardev_state(fcopy) == EMU_DEV_READY,
	      "FCOPY: version 0 registers without an answer");
	close(fd);
}

static void test_dir(const char *dir)
{
	struct stat st;
	bool found = false;
	struct dirent *de;
	DIR *d = opendir(dir);

	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, "hv_vss") == 0)
			found = true;
	if (d)
		closedir(d);
	check(found, "readdir lists hv_vss");
	check(stat(dev_path, &st) == 0 && S_ISREG(st.st_mode), "hv_vss is a regular file");
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/hv-emu-selftest.XXXXXX";
	struct sigaction sa = { .sa_handler = on_usr1 };
	struct emu_devdir *d = NULL;
	bool verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
	int r;

	if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) < 0) {
		printf("1..0 # SKIP needs root and /dev/fuse\n");
		return SKIP;
	}

	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		printf("1..0 # SKIP cannot create a private mount namespace: %s\n",
		       strerror(errno));
		return SKIP;
	}

	/* SIGUSR1 interrupts a blocked read (no SA_RESTART) */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	emu_timeline_init(!verbose, stdout);

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	snprintf(dev_path, sizeof(dev_path), "%s/hv_vss", dir);
	snprintf(kvp_path, sizeof(kvp_path), "%s/hv_kvp", dir);
	snprintf(fcopy_path, sizeof(fcopy_path), "%s/hv_fcopy", dir);

	r = emu_devdir_new(dir, event, NULL, &d);
	if (r == 0)
		r = emu_devdir_add(d, &emu_svc_vss, &vss);
	if (r == 0)
		r = emu_devdir_add(d, &emu_svc_kvp, &kvp);
	if (r == 0)
		r = emu_devdir_add(d, &emu_svc_fcopy, &fcopy);
	if (r == 0)
		r = emu_devdir_start(d);
	if (r < 0) {
		printf("1..0 # SKIP cannot mount FUSE at %s: %s\n", dir, strerror(-r));
		emu_devdir_free(d);
		rmdir(dir);
		return SKIP;
	}

	test_dir(dir);
	test_open_register();
	test_requests();
	test_reset();
	test_kvp();
	test_fcopy();

	emu_devdir_free(d);
	rmdir(dir);
	printf("1..%u\n", n_tests);
	if (n_failed)
		printf("# %u of %u failed\n", n_failed, n_tests);
	return n_failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
