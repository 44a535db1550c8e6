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

/*
 * Which driver's on_msg() rules a file follows (Linux drivers/hv/):
 *
 *   VSS    hv_snapshot.c: registration is a 12-byte hv_vss_msg with op 129
 *          (a u32 129 is queued) or 128 (no answer); a reply is exactly
 *          12 bytes, status in the first 4; the op is byte 0.
 *   KVP    hv_kvp.c: every write shorter than a whole hv_kvp_msg (7,432)
 *          gets EINVAL (longer is accepted). Before registration the write
 *          is the handshake: op (byte 0) 100 or 4, answered with a whole
 *          hv_kvp_msg carrying the same op and the driver version string
 *          "3.1" in body.kvp_register.version; any other op: EINVAL. Once
 *          registered, every write is a reply (also one with op 100): EINVAL
 *          unless a request was sent (read or not). Status: the first 4
 *          bytes, or, after a legacy op 4 registration, HV_S_CONT when
 *          body.kvp_enum_data.data.key is empty, else 0. The op is byte 0,
 *          the pool byte 1. Simplified: before registration the real
 *          driver leaves host requests in the channel (and fails them only
 *          after HV_UTIL_NEGO_TIMEOUT); here they fail at once like VSS's,
 *          so a KVP host side waits for the registration before posting.
 *   FCOPY  hv_fcopy.c (Linux <= 6.9): every write must be 4 bytes, else
 *          EINVAL. Before registration it is the version: 1 (a u32 1 is
 *          queued), 0 (no answer), anything else EINVAL. Once registered a
 *          4-byte write is the reply (an int status), EINVAL unless a
 *          request was sent. The op is a le32 at offset 0.
 */
enum emu_svc_kind {
	EMU_SVC_KIND_VSS,
	EMU_SVC_KIND_KVP,
	EMU_SVC_KIND_FCOPY,
};

/* What one file in the device directory plays. */
struct emu_svc {
	const char *name; /* file name, e.g. "hv_vss" */
	enum emu_svc_kind kind;
	size_t msg_size;	/* VSS: exact size of registration and reply writes;
				 * KVP: minimum size of every write; FCOPY: exact (4) */
	uint32_t reg_op;	/* registration answered with a version (129, 100, 1) */
	uint32_t reg_op_legacy; /* VSS 128 / FCOPY 0: no answer; KVP 4: answered, legacy replies */
	uint32_t version;	/* VSS, FCOPY: the u32 queued after reg_op */
	size_t flags_offset;	/* offset of the u32 feature flags in a reply (0: none) */
};

extern const struct emu_svc emu_svc_vss, emu_svc_kvp, emu_svc_fcopy;

/* The driver version string the KVP driver answers the handshake with (HV_DRV_VERSION). */
#define EMU_KVP_DRV_VERSION "3.1"
/* How many of the latest replies are kept for emu_chardev_reply(). */
#define EMU_REPLIES_KEPT 64

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
	uint32_t op;	 /* VSS, KVP: byte 0; FCOPY: le32 at offset 0 */
	uint8_t pool;	 /* KVP: byte 1 (hv_kvp_hdr.pool), else 0 */
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
	size_t reply_len; /* size of the accepted reply write (0: none) */
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
/*
 * Socket mode, for benchmarks: instead of the FUSE mount, every file is a
 * listening unix SOCK_SEQPACKET socket at DIR/NAME, which a daemon opens
 * through the LD_PRELOAD shim sockdev-shim.so (its open() of a socket file
 * connects to it). One message a packet each way; no extra thread: the
 * host's calls take in the daemon's messages themselves. Saves the FUSE
 * round trips of poll(), read() and write() (a daemon's read() and write()
 * are plain socket calls), so that the device costs about what the
 * kernel's char device costs. Differences from the FUSE mode: when the
 * daemon read a message is not seen (it counts as read when sent; a
 * reply counts from when the daemon wrote it, by the socket's timestamp), an
 * erroneous write of the daemon is logged but not failed, a driver reset
 * closes the connection (the daemon reads EOF and may open again at once).
 */
int emu_devdir_start_socket(struct emu_devdir *d);
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
/*
 * Copy the reply the daemon wrote for request id (the accepted write, as
 * the driver saw it) into buf, at most size bytes. Returns the reply's
 * length (may exceed size: truncated copy), -ENOENT for an unknown id,
 * -ENODATA when the request got no accepted reply, -ESTALE when the reply
 * is older than the last EMU_REPLIES_KEPT replies.
 */
ssize_t emu_chardev_reply(struct emu_chardev *c, unsigned int id, void *buf, size_t size);
unsigned int emu_chardev_count(struct emu_chardev *c);
/* Number of registrations so far (0: never registered). */
unsigned int emu_chardev_reg_seq(struct emu_chardev *c);
enum emu_dev_state emu_chardev_state(struct emu_chardev *c);
const char *emu_chardev_name(const struct emu_chardev *c);
const struct emu_svc *emu_chardev_svc(const struct emu_chardev *c);

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
