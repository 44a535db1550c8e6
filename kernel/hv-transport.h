/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The kernel edge: one ops table, several implementations (char device now;
 * the netlink connector and the UIO/VMBus ring plug in behind the same
 * interface). Daemons are handed a transport; they never open the device nodes
 * themselves. Every function returns 0/length or -errno and logs nothing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum hv_transport_kind {
	HV_TRANSPORT_AUTO,
	HV_TRANSPORT_CHARDEV,
	HV_TRANSPORT_NETLINK,
	HV_TRANSPORT_UIO,
	_HV_TRANSPORT_KIND_MAX,
	_HV_TRANSPORT_KIND_INVALID = -1,
} hv_transport_kind;

const char *hv_transport_kind_to_string(hv_transport_kind kind);
hv_transport_kind hv_transport_kind_from_string(const char *s);

/* What a service (VSS, KVP, ...) tells the transport about itself. */
typedef struct hv_service {
	const char *name;            /* "vss" */
	const char *device;          /* default char device, "/dev/vmbus/hv_vss" */
	size_t max_msg;              /* largest message the kernel may hand us */
	/* Registration message written first on the char device. */
	const void *register_msg;
	size_t register_len;
	/*
	 * Size of the driver's answer to the registration, 0 if none is
	 * expected. parse_register_reply() checks it and returns the version.
	 */
	size_t register_reply_len;
	int (*parse_register_reply)(const void *buf, size_t len, uint32_t *ret_version);
	/*
	 * Netlink connector id (CN_VSS_IDX 0xA / CN_KVP_IDX 0x9, value 1); the
	 * group joined is cn_idx. 0: the service has no connector. The same
	 * registration message and answer are used over the connector.
	 */
	uint32_t cn_idx;
	uint32_t cn_val;
	/*
	 * Connector only: the legacy registration (VSS_OP_REGISTER, 128) that
	 * old drivers take instead, answering nothing. Sent when no answer to
	 * register_msg came within t->legacy_fallback_ms; the transport is
	 * then registered with t->version = legacy_version. NULL: no fallback.
	 */
	const void *legacy_register_msg;
	size_t legacy_register_len;
	uint32_t legacy_version;
	/*
	 * UIO (uio_hv_generic, VMBus rings mapped into the daemon): the
	 * device's instance GUID (looked up first) and class GUID (any device
	 * of that class otherwise), lower case, no braces. NULL: no UIO.
	 */
	const char *uio_instance_guid;
	const char *uio_class_guid;
} hv_service;

typedef struct hv_transport hv_transport;

typedef struct hv_transport_ops {
	const char *name;
	int (*open)(hv_transport *t);
	ssize_t (*recv)(hv_transport *t, void *buf, size_t size);
	int (*send)(hv_transport *t, const void *buf, size_t len);
	void (*close)(hv_transport *t);
} hv_transport_ops;

struct hv_transport {
	const hv_transport_ops *ops;
	const hv_service *service;
	hv_transport_kind kind;
	char *device;                /* path actually used */
	int fd;                      /* what the main loop polls, -1 when closed */
	uint32_t version;            /* what the driver answered at registration */
	int handshake_timeout_ms;

	/* Netlink connector only. */
	void *priv;
	bool allow_user_peer;        /* accept requests from user-space ports (tests) */
	unsigned int n_dropped;      /* malformed, oversized or foreign-id messages dropped */
	unsigned int n_refused;      /* messages from a refused (user-space) sender */
	uint32_t refused_port;       /* the last refused sender's port */
	int legacy_fallback_ms;      /* wait for the version answer before the legacy REGISTER */
	bool legacy_registered;      /* registered with the legacy message (no version answer) */
	unsigned int n_late_version; /* version answers that came after the legacy fallback */

	/* UIO only (see transport-uio.h). */
	const char *sysfs_root;      /* NULL: "/sys"; not copied, must outlive open() */
	const char *dev_root;        /* NULL: "/dev"; not copied */
	bool uio_signal_always;      /* signal the host after every send (upstream does) */
	/*
	 * Look the device up in sysfs at every open, not only while device is
	 * "uio:sysfs" (set by open when it was): a channel the host rescinds
	 * and offers again is a new device, maybe another /dev/uioN.
	 */
	bool uio_rediscover;
	uint64_t last_trans_id;      /* of the last packet received; echoed by send */
	unsigned int n_signals;      /* signals (write 1) sent to the host */
	unsigned int n_interrupts;   /* interrupt notifications consumed */
	char open_why[320];          /* why open() failed, when it can say ("" otherwise) */
};

extern const hv_transport_ops hv_transport_chardev_ops;
extern const hv_transport_ops hv_transport_netlink_ops;
extern const hv_transport_ops hv_transport_uio_ops;

/* Whether a NETLINK_CONNECTOR socket can be created (CONFIG_CONNECTOR). */
bool hv_transport_connector_available(void);

/*
 * Chooses an implementation: CHARDEV uses @device (or the service default);
 * NETLINK the connector (t->device is then "netlink:<idx>.<val>"); UIO the
 * VMBus rings through uio_hv_generic (@device: /dev/uioN, "emu:<dir>" for
 * the emulated host, or NULL to find the device in sysfs at open; see
 * transport-uio.h). AUTO picks the char device when its node exists, else
 * the UIO device when the service has GUIDs and one is bound in /sys, else
 * the connector when the kernel has one and the service an id. Does not
 * open anything.
 * -ENODEV when no usable kernel interface exists, with *ret_why describing
 * the choice (static string).
 */
int hv_transport_new(const hv_service *service, hv_transport_kind kind, const char *device,
		     hv_transport **ret, const char **ret_why);

/*
 * Opens and registers with the driver. -EBUSY: another daemon holds it.
 * Netlink: -ENODEV when /proc/net/connector lists no handler for the
 * service's id (no driver), -ETIMEDOUT when the version answer never came
 * and the service has no legacy registration. With one, no answer within
 * t->legacy_fallback_ms (default 1000) sends the legacy registration, which
 * has no answer, and succeeds with t->legacy_registered set; a version
 * answer arriving later is dropped by recv (t->n_late_version).
 */
int hv_transport_open(hv_transport *t);
/* One whole message. -EAGAIN: none queued. -EPIPE/-EIO...: reset, reopen. */
ssize_t hv_transport_recv(hv_transport *t, void *buf, size_t size);
int hv_transport_send(hv_transport *t, const void *buf, size_t len);
void hv_transport_close(hv_transport *t);
bool hv_transport_is_open(const hv_transport *t);
/*
 * Netlink, for tests against the emulated driver: talk to a user-space peer
 * instead of the kernel. The registration is multicast to the service's
 * group (not sent to port 0), and requests are taken from the first
 * user-space port heard from after open only. Set before open.
 */
void hv_transport_set_allow_user_peer(hv_transport *t, bool allow);
void hv_transport_free(hv_transport *t);
