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
};

extern const hv_transport_ops hv_transport_chardev_ops;

/*
 * Chooses an implementation: CHARDEV uses @device (or the service default);
 * AUTO picks the char device when its node exists. Does not open anything.
 * -ENODEV when no usable kernel interface exists, with *ret_why describing
 * the choice (static string).
 */
int hv_transport_new(const hv_service *service, hv_transport_kind kind, const char *device,
		     hv_transport **ret, const char **ret_why);

/* Opens and registers with the driver. -EBUSY: another daemon holds it. */
int hv_transport_open(hv_transport *t);
/* One whole message. -EAGAIN: none queued. -EPIPE/-EIO...: reset, reopen. */
ssize_t hv_transport_recv(hv_transport *t, void *buf, size_t size);
int hv_transport_send(hv_transport *t, const void *buf, size_t len);
void hv_transport_close(hv_transport *t);
bool hv_transport_is_open(const hv_transport *t);
void hv_transport_free(hv_transport *t);
