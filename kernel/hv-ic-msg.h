/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * IC framing: VMBus packet descriptors, the pipe and IC message headers,
 * version negotiation and responses. Pure functions over caller buffers: no
 * I/O, no logging, no allocation; errors are -errno.
 *
 *   -EINVAL    a NULL pointer or an impossible argument from the caller
 *   -EBADMSG   malformed input (too short, lengths that contradict each other)
 *   -EMSGSIZE  the output does not fit the caller's buffer
 *   -EPROTO    a well-formed negotiation we refuse (no common version, bad
 *              counts); the reply has been built in place all the same
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv-ic.h"

/* A VMBus packet, decoded; payload points into the parsed buffer. */
typedef struct hv_vmbus_packet {
	uint16_t type;
	uint16_t flags;
	uint32_t hdr_len;   /* offset8 << 3: where the payload starts */
	uint32_t total_len; /* len8 << 3: descriptor + payload + padding, no trailer */
	uint64_t trans_id;
	const uint8_t *payload;
	size_t payload_len; /* total_len - hdr_len */
} hv_vmbus_packet;

/*
 * Checks a descriptor against the bytes available for it (the rest of a
 * buffer, or what a ring holds after the descriptor's start). -EBADMSG when
 * offset8 is below the descriptor size, offset8 > len8, or len8 << 3 is more
 * than avail. Returns the packet's total length in bytes.
 */
int hv_vmbus_desc_check(const struct hv_vmpacket_descriptor *desc, size_t avail);

/* Parses the packet at the start of buf (n bytes, the trailer need not be there). */
int hv_vmbus_packet_parse(const void *buf, size_t n, hv_vmbus_packet *ret);

/* Bytes a packet with a payload of len takes in a ring, without the trailer. */
size_t hv_vmbus_packet_size(size_t payload_len);

/*
 * Builds descriptor + payload + zero padding to 8 bytes into buf (offset8 2,
 * len8 the padded total). Returns the total, -EMSGSIZE if it does not fit
 * buf or len8 (16 bits of 8-byte units).
 */
int hv_vmbus_packet_build(void *buf, size_t size, uint16_t type, uint16_t flags, uint64_t trans_id,
			  const void *payload, size_t len);

/* An IC message: the VMBus payload starting at the pipe header. */
typedef struct hv_ic_msg {
	struct hv_vmbuspipe_hdr pipe;
	struct hv_icmsg_hdr hdr;
	size_t body_offset; /* HV_ICMSG_HDR_LEN */
	size_t body_len;    /* what follows the headers in this packet */
} hv_ic_msg;

/*
 * Parses the two headers (copies: buf need not be aligned). -EBADMSG if len
 * is shorter than HV_ICMSG_HDR_LEN. icmsgsize is reported, not enforced:
 * neither the kernel's util drivers nor the UIO daemon check it against the
 * packet, and the host's value for each message type is not documented.
 */
int hv_ic_msg_parse(const void *buf, size_t len, hv_ic_msg *ret);

/*
 * Turns the IC message in buf (len bytes, at least HV_ICMSG_HDR_LEN) into its
 * response in place: status, icflags = TRANSACTION | RESPONSE; everything
 * else is echoed, as the kernel's util drivers and the UIO daemon do.
 */
int hv_ic_set_response(void *buf, size_t len, uint32_t status);

/*
 * Version negotiation, the guest side: exactly the choice the kernel's
 * vmbus_prep_negotiate_resp() (drivers/hv/channel_mgmt.c, also
 * tools/hv/hv_fcopy_uio_daemon.c) makes. buf holds the IC message (pipe
 * header first) of len bytes and becomes the reply in place.
 *
 * fw and srv are our versions (HV_IC_VERSION(major, minor)) in order of
 * preference, highest first: the first of ours that the host also offers
 * wins, separately for the framework (among the host's first icframe_vercnt
 * entries) and the service (among the icmsg_vercnt entries after them).
 *
 * Returns 0 with *ret_fw / *ret_srv set (either may be NULL): the reply says
 * counts 1/1, data[0] = framework, data[1] = service, status HV_S_OK.
 * Returns -EPROTO when the offer has a count above HV_IC_MAX_VER_COUNT, a
 * zero count, more entries than the packet holds, or no common version: the
 * reply says counts 0/0, status HV_E_FAIL. Both replies get icmsgsize 0x10
 * and icflags TRANSACTION | RESPONSE, and are as long as the offer (the
 * kernel echoes the whole packet); data[0] and data[1] are written only where
 * they fit in len. -EBADMSG (buf untouched) when len cannot hold the two
 * counts, or the message is not a negotiation.
 */
int hv_ic_negotiate(void *buf, size_t len, const uint32_t *fw, size_t n_fw, const uint32_t *srv,
		    size_t n_srv, uint32_t *ret_fw, uint32_t *ret_srv);

/*
 * The host side, for the emulator and tests: builds a request (pipe header,
 * IC header with icflags TRANSACTION | REQUEST, body) into buf. The pipe
 * header says flags 0 and msgsize = the IC header + body; icmsgsize is
 * body_len. Returns the total length or -EMSGSIZE.
 */
int hv_ic_build_request(void *buf, size_t size, uint16_t type, uint32_t fw_version,
			uint32_t msg_version, uint8_t transaction_id, const void *body,
			size_t body_len);

/*
 * A negotiate offer listing n_fw framework and n_srv service versions (any
 * values, counts up to 0xffff, so malformed offers can be built too).
 */
int hv_ic_build_offer(void *buf, size_t size, const uint32_t *fw, size_t n_fw, const uint32_t *srv,
		      size_t n_srv, uint8_t transaction_id);

/*
 * Reads a negotiate reply: -EBADMSG if it is not a negotiate response or is
 * too short, -EPROTO for a refusal (counts 0/0), 0 with the chosen versions.
 */
int hv_ic_parse_negotiate_reply(const void *buf, size_t len, uint32_t *ret_fw, uint32_t *ret_srv,
				uint32_t *ret_status);
