/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Transport adapters: what FCOPY requests look like on one kernel interface.
 *
 * The daemon (fcopy-daemon.c) owns an hv_transport and a receive buffer of
 * adapter->max_msg bytes. For every whole message the transport hands over
 * it calls:
 *
 *   r = adapter->decode(buf, len, &req, &reply_len, &why);
 *     FCOPY_DECODED_REQUEST  req is filled (names already UTF-8, data
 *                            pointing into buf): the session runs it, then
 *                            n = adapter->encode_reply(buf, len, max_msg, status)
 *                            and the first n bytes of buf are sent.
 *     FCOPY_DECODED_REPLY    a transport-level message (e.g. the IC version
 *                            negotiation on the VMBus ring) was answered in
 *                            place: the first reply_len bytes of buf are sent,
 *                            no request runs.
 *     FCOPY_DECODED_IGNORE   nothing to run and nothing to send.
 *     -errno                 malformed (why says how, a static string): the
 *                            daemon logs it and still answers through
 *                            encode_reply() with fcopy_status_from_errno(r),
 *                            so that the host is never left waiting.
 *
 * encode_reply() returns the number of bytes to send, or -errno when no
 * reply can be built from what was received (then nothing is sent).
 *
 * Char device (Linux <= 6.9, fcopy-chardev.c): the kernel did the IC framing
 * and converted the names to UTF-8; messages are hv_start_fcopy,
 * hv_do_fcopy or a bare hv_fcopy_hdr, the reply is a 4-byte status.
 *
 * UIO ring (Linux >= 6.10, fcopy-uio.c): messages are IC messages from
 * kernel/transport-uio.c (pipe header first); decode() answers
 * ICMSGTYPE_NEGOTIATE in place (FCOPY_DECODED_REPLY, with the outcome in
 * why), takes ICMSGTYPE_FCOPY bodies at offset 28 and decodes the UTF-16LE
 * names with fcopy_utf16le_to_utf8(); encode_reply() sets the IC status and
 * icflags (TRANSACTION|RESPONSE) and returns len.
 *
 * Another transport: an adapter like these two, one line in
 * fcopy_adapters[] (fcopy-daemon.c) and its name in the [fcopy] transport
 * names; the daemon loop, the session, logging and the start-up error
 * messages need no change.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fcopy-session.h"
#include "hv-transport.h"

typedef enum fcopy_decoded {
	FCOPY_DECODED_REQUEST,
	FCOPY_DECODED_REPLY,
	FCOPY_DECODED_IGNORE,
} fcopy_decoded;

typedef struct fcopy_adapter {
	const char *name;
	const hv_service *service; /* handed to hv_transport_new() */
	size_t max_msg;		   /* receive buffer size */
	/*
	 * After a wakeup, receive until -EAGAIN (the UIO ring: one interrupt
	 * may stand for several packets). false: one message per wakeup (the
	 * char device, whose read() would block when nothing is queued).
	 */
	bool drain;
	int (*decode)(void *buf, size_t len, fcopy_request *ret_req, size_t *ret_reply_len,
		      const char **ret_why);
	ssize_t (*encode_reply)(void *buf, size_t len, size_t bufsize, uint32_t status);
} fcopy_adapter;

extern const fcopy_adapter fcopy_adapter_chardev;
extern const fcopy_adapter fcopy_adapter_uio;

#define FCOPY_CHARDEV_DEFAULT "/dev/vmbus/hv_fcopy"
/* The FCOPY device's instance id on VMBus, and its class id (for new_id). */
#define FCOPY_VMBUS_DEVICE_ID "eb765408-105f-49b6-b4aa-c123b64d17d4"
#define FCOPY_VMBUS_CLASS_ID  "34d14be3-dee4-41c8-9ae7-6b174977c192"

typedef enum fcopy_kernel_iface {
	FCOPY_IFACE_CHARDEV, /* the char device node exists */
	FCOPY_IFACE_UIO,     /* the device is bound to uio_hv_generic */
	FCOPY_IFACE_UNBOUND, /* the VMBus device exists, bound to nothing we can use */
	FCOPY_IFACE_NONE,    /* no char device, no FCOPY device on VMBus */
	_FCOPY_IFACE_MAX,
} fcopy_kernel_iface;

/*
 * Which kernel interface this machine offers: @chardev is the char device
 * path, @sysfs_root normally "/sys". With FCOPY_IFACE_UIO, *ret_uio_dev
 * (may be NULL) is "/dev/uioN". Pure apart from reading the two paths.
 */
fcopy_kernel_iface fcopy_probe_kernel(const char *chardev, const char *sysfs_root,
				      char **ret_uio_dev);
