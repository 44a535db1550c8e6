/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The host end of a UIO VMBus channel (what Hyper-V and uio_hv_generic do
 * for the fcopy service), for the daemon's unmodified transport-uio code
 * opened with the device "emu:<dir>":
 *
 *   <dir>/ring  both rings, TX (guest -> host) first, as uio map0; the host
 *               writes the second half (RX) and reads the first (TX), through
 *               the same kernel/vmbus-ring.c the daemon uses
 *   <dir>/irq   a listening SOCK_SEQPACKET socket, the stand-in for the
 *               /dev/uioN interrupt fd: the host sends a 4-byte event count
 *               per interrupt, the guest sends int 1 to signal the host
 *
 * Interrupts follow uio_hv_generic: an interrupt masks the guest's RX ring
 * (hv_uio_channel_cb sets interrupt_mask = 1) and is raised only when
 * hv_signal_on_write() says so; a signal from the guest clears the mask, as
 * hv_uio_irqcontrol() does. The host keeps its own (TX) mask at 0 and drains
 * TX completely whenever it looks, so replies are queued in arrival order
 * with their timestamps.
 *
 * Single-threaded: the caller posts and waits from one thread. Every
 * function returns 0 / a length or -errno.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hv-ic-msg.h"
#include "vmbus-ring.h"

typedef struct emu_vmbus emu_vmbus;

typedef struct emu_vmbus_stats {
	unsigned int interrupts;    /* host -> guest notifications sent */
	unsigned int interrupts_coalesced; /* of those, not queued: the guest had unread ones */
	unsigned int guest_signals; /* int 1 written by the guest */
	unsigned int posted;	    /* packets written to RX */
	unsigned int replies;	    /* packets read from TX */
	unsigned int rx_full_waits; /* posts that had to wait for room */
	unsigned int rx_wraps;	    /* times the RX write index wrapped */
	unsigned int tx_wraps;	    /* times the TX read index wrapped */
	unsigned int opens;	    /* guest connections accepted */
	unsigned int releases;	    /* guest connections that ended (channel released) */
	unsigned int resets;	    /* emu_vmbus_reset() calls */
} emu_vmbus_stats;

/* One request's timeline (CLOCK_MONOTONIC ns, emu_now_ns()). */
typedef struct emu_vmbus_times {
	uint64_t posted;   /* written to RX and, if due, the interrupt sent */
	uint64_t answered; /* the reply found in TX (after the guest's signal, or on a look) */
} emu_vmbus_times;

/*
 * Creates <dir>/ring (2 * ring_size bytes; ring_size per direction, header
 * page included, a multiple of 8 above 4096) and the listening <dir>/irq.
 * dir must exist. The guest's RX interrupts start masked, as after
 * hv_uio_open().
 */
int emu_vmbus_new(const char *dir, size_t ring_size, emu_vmbus **ret);
/* Closes the guest's interrupt channel (it sees -EPIPE), unmaps, removes the files. */
void emu_vmbus_free(emu_vmbus *v);

/* "emu:<dir>", for --device / hv_transport_new(). */
const char *emu_vmbus_device(const emu_vmbus *v);

/*
 * Waits for the guest's transport to open (connect). -ETIMEDOUT. Returns 0
 * at once while the current guest is connected; once it has closed its end
 * (a daemon killed or restarted) the next one is taken.
 *
 * When the guest's end closes (seen by any function here, -EPIPE) the
 * channel is released as hv_uio_release() -> vmbus_disconnect_ring() does,
 * and set up for the next open as __vmbus_open() and hv_uio_open() leave
 * it: both rings' indices 0, the guest's RX masked until it unmasks it,
 * replies not yet taken dropped. A new guest negotiates the IC versions
 * again (the host does that on every channel open: wait-register).
 */
int emu_vmbus_accept(emu_vmbus *v, int timeout_ms);
/*
 * Waits until the guest has closed its end and the channel is released
 * (call it after killing the daemon, before starting another, so that the
 * release cannot overwrite what the new guest sets up). -ETIMEDOUT.
 */
int emu_vmbus_wait_gone(emu_vmbus *v, int timeout_ms);
/*
 * The host resets the channel: a rescind and a new offer. On a real guest
 * hv_uio_rescind() makes the uio fd's next read fail with EIO and the
 * device is removed; the re-offered channel gets new ring memory. Here the
 * guest's interrupt socket is closed (its next read sees end of file, which
 * transport-uio reports as -EPIPE) and <dir>/ring is replaced by a new file
 * with fresh headers (a guest still mapping the old one writes into the
 * void). The guest reopens and is taken by emu_vmbus_accept(). The
 * difference: a real re-offer may bring a different /dev/uioN.
 */
int emu_vmbus_reset(emu_vmbus *v);
bool emu_vmbus_connected(const emu_vmbus *v);

/*
 * Host -> guest: one VM_PKT_DATA_INBAND packet (flags
 * COMPLETION_REQUESTED, as the host sends IC requests) with this payload and
 * transaction id. Waits up to timeout_ms for room when RX is full (pending
 * send size set, woken by the guest's signal; 0: -EAGAIN at once), draining
 * TX meanwhile. *ret_posted_ns (may be NULL): when it was written.
 */
int emu_vmbus_post(emu_vmbus *v, const void *payload, size_t len, uint64_t trans_id, int timeout_ms,
		   uint64_t *ret_posted_ns);

/*
 * The next guest -> host packet: its payload into buf, descriptor and
 * arrival time. -ETIMEDOUT, -EPIPE (the guest closed), -ENOBUFS (buf too
 * small; the packet stays queued).
 */
ssize_t emu_vmbus_wait_reply(emu_vmbus *v, void *buf, size_t size,
			     struct hv_vmpacket_descriptor *ret_desc, uint64_t *ret_ns,
			     int timeout_ms);

/*
 * IC negotiation from the host: offers the versions given (any, unsupported
 * ones included), waits for the answer. 0 with the versions chosen, -EPROTO
 * when the guest refused (counts 0/0), -EBADMSG for a malformed answer.
 */
int emu_vmbus_negotiate(emu_vmbus *v, const uint32_t *fw, size_t n_fw, const uint32_t *srv,
			size_t n_srv, int timeout_ms, uint32_t *ret_fw, uint32_t *ret_srv);

/*
 * One IC request/response: builds the request (type, body; framework 3.0
 * and message version msg_version in the header), posts it, waits for the
 * reply. The reply's IC status in *ret_status, its body (after the 28-byte
 * headers) copied to reply_body (up to reply_size; the body length is
 * returned; VMBus payloads are padded to 8 bytes, so it may exceed what was
 * sent). -EPROTO when the reply's transaction id is not the request's (the
 * guest echoes it). times may be NULL.
 */
ssize_t emu_vmbus_request(emu_vmbus *v, uint16_t type, uint32_t msg_version, const void *body,
			  size_t body_len, int timeout_ms, uint32_t *ret_status, void *reply_body,
			  size_t reply_size, emu_vmbus_times *times);

/*
 * Besides waking on the guest's signals, the host looks at the rings every
 * ms milliseconds (default 10), which hides a missing signal. 0: only
 * signals wake it, so a guest that fails to signal makes waits time out
 * (what the self-test uses).
 */
void emu_vmbus_set_look_interval(emu_vmbus *v, int ms);

/* The rings as the host sees them (tests that corrupt or inspect state). */
hv_ring *emu_vmbus_rx(emu_vmbus *v);
hv_ring *emu_vmbus_tx(emu_vmbus *v);
const emu_vmbus_stats *emu_vmbus_get_stats(const emu_vmbus *v);
