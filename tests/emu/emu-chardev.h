/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The emulated hv_utils char devices (/dev/vmbus/hv_vss, ...) as a FUSE
 * file system, following the hv_utils_transport semantics in PROTOCOL.md
 * (sections 3 and 4): one opener, registration, whole messages, blocking
 * and interruptible reads, poll, one outstanding host request, per-request
 * timeout, reset on close and an emulated driver reset.
 *
 * The FUSE side runs in its own thread; every function below is for the
 * host side and may be called from any other thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Largest message the host may post (the kernel VSS buffer is 2 pages). */
#define EMU_MSG_MAX 16384

/* What one file in the device directory plays. */
struct emu_svc {
	const char *name;      /* file name, e.g. "hv_vss" */
	size_t msg_size;       /* exact size of registration and reply writes */
	uint8_t reg_op;        /* registration answered with a version (129) */
	uint8_t reg_op_legacy; /* registration without an answer (128) */
	uint32_t version;      /* the u32 queued after reg_op */
	size_t flags_offset;   /* offset of the u32 feature flags in a reply */
};

extern const struct emu_svc emu_svc_vss;

enum emu_req_result {
	EMU_REQ_PENDING,     /* posted, no answer yet */
	EMU_REQ_OK,          /* the daemon replied status 0 */
	EMU_REQ_FAILED,      /* the daemon replied a non-zero status */
	EMU_REQ_TIMEOUT,     /* no reply in time: the driver answered HV_E_FAIL */
	EMU_REQ_NOT_READY,   /* no registered daemon: the driver answered HV_E_FAIL */
	EMU_REQ_SEND_FAILED, /* an older message was still queued (EFAULT in the driver) */
	EMU_REQ_RESET,       /* the daemon closed the device or the driver was reset */
	EMU_REQ_CANCELLED,   /* cancelled by the hibernation path */
	EMU_REQ_FAKE,        /* the driver's own THAW before hibernation, no host request */
	_EMU_REQ_RESULT_MAX,
};

const char *emu_req_result_to_string(enum emu_req_result r);

/* One message posted to the daemon, with CLOCK_MONOTONIC timestamps (0 = never). */
struct emu_req {
	unsigned int id; /* 1, 2, ... in posting order */
	uint8_t op;      /* first byte of the message */
	size_t len;
	uint64_t posted_ns;
	uint64_t read_ns;     /* handed to a read() of the daemon */
	uint64_t answered_ns; /* reply written, or timeout/reset/failure time */
	uint64_t timeout_ms;
	uint64_t deadline_ns;
	enum emu_req_result result;
	uint32_t status; /* what the host received (HV_E_FAIL unless the daemon said otherwise) */
	uint32_t flags;  /* feature flags of the daemon's reply */
	uint64_t late_ns;     /* a reply that came after the timeout (rejected) */
	uint32_t late_status;
	int late_errno;
};

enum emu_dev_state {
	EMU_DEV_CLOSED, /* nobody has the file open */
	EMU_DEV_OPEN,   /* opened, not registered yet */
	EMU_DEV_READY,  /* registered: host requests are delivered */
	EMU_DEV_DEAD,   /* driver reset: everything fails until the daemon closes */
	_EMU_DEV_STATE_MAX,
};

const char *emu_dev_state_to_string(enum emu_dev_state s);

/* Called (with the device lock held: only print) for notable device events. */
typedef void (*emu_event_fn)(uint64_t t_ns, const char *dev, const char *text,
			     void *userdata);

/* Returns true when a wait should give up (daemon gone, ^C). */
typedef bool (*emu_abort_fn)(void *userdata);

struct emu_devdir;
struct emu_chardev;

int emu_devdir_new(const char *path, emu_event_fn event, void *userdata,
		   struct emu_devdir **ret);
int emu_devdir_add(struct emu_devdir *d, const struct emu_svc *svc,
		   struct emu_chardev **ret);
/* Mount the directory and start the FUSE thread. */
int emu_devdir_start(struct emu_devdir *d);
/* Stop the thread, fail held requests, unmount, free; NULL-safe. */
struct emu_devdir *emu_devdir_free(struct emu_devdir *d);
/* Wake all waiters so that they re-check their abort condition. */
void emu_devdir_kick(struct emu_devdir *d);

/*
 * Post a host request. When no daemon is registered, or an older message is
 * still queued, the request fails at once like in the driver; that is not an
 * error of this call. -EBUSY if a request is still outstanding.
 */
int emu_chardev_post(struct emu_chardev *c, const void *msg, size_t len,
		     uint64_t timeout_ms, unsigned int *ret_id);
/* Queue the THAW the driver sends before hibernation (no host request). */
int emu_chardev_fake_thaw(struct emu_chardev *c, unsigned int *ret_id);
/* Emulated driver reset (transport destroyed until the daemon closes). */
void emu_chardev_reset(struct emu_chardev *c);

/*
 * Wait until request id is answered (or failed), at most max_ms (0: until
 * its own timeout fires). 0 when done, -ETIMEDOUT, -ECANCELED when abort
 * returned true. *ret gets a copy of the record either way.
 */
int emu_chardev_wait(struct emu_chardev *c, unsigned int id, uint64_t max_ms,
		     emu_abort_fn abort_fn, void *userdata, struct emu_req *ret);
/*
 * Wait until registered with a registration number > after_seq and the
 * version answer read by the daemon (a request posted while that answer is
 * still queued would fail like in the driver).
 */
int emu_chardev_wait_registered(struct emu_chardev *c, unsigned int after_seq,
				uint64_t max_ms, emu_abort_fn abort_fn,
				void *userdata);

int emu_chardev_get(struct emu_chardev *c, unsigned int id, struct emu_req *ret);
unsigned int emu_chardev_count(struct emu_chardev *c);
/* Number of registrations so far (0: never registered). */
unsigned int emu_chardev_reg_seq(struct emu_chardev *c);
enum emu_dev_state emu_chardev_state(struct emu_chardev *c);
const char *emu_chardev_name(const struct emu_chardev *c);

/*
 * Netlink mode (emu-netlink.c): no FUSE file is served; every message the
 * driver would queue is handed to @fn at once (the kernel's
 * hvutil_transport_send() in netlink mode: sent, never "unread"); a
 * negative return fails it like the driver's send failure. The daemon's
 * connector messages come in through emu_chardev_inject(), which applies
 * the same registration and reply rules as a write() on the char device and
 * returns what the driver's handler would (not reported over the connector).
 * @late: the message answers an earlier message than the last one sent (its
 * connector seq says so), e.g. the hibernation THAW after a new request.
 */
typedef int (*emu_deliver_fn)(const void *msg, size_t len, void *userdata);
void emu_chardev_set_deliver(struct emu_chardev *c, emu_deliver_fn fn, void *userdata);
int emu_chardev_inject(struct emu_chardev *c, const void *buf, size_t size, uint32_t sender,
		       bool late);
