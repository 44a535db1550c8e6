/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pure functions for the connector framing: build one nlmsghdr + cn_msg +
 * payload datagram, and check a received one. No sockets, no libnl: the
 * netlink transport and the emulated host both use these, and the unit
 * tests feed them bytes built in memory.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv-connector.h"

/* Size of the header in front of the payload: nlmsghdr (16) + cn_msg (20). */
#define HV_CN_HDR_LEN 36U

/* What a parsed datagram carried besides the payload. */
typedef struct hv_cn_frame {
	uint32_t idx, val;
	uint32_t seq, ack;
	uint16_t flags;
	uint32_t nl_seq;     /* nlmsg_seq */
	const uint8_t *data; /* points into the buffer that was parsed */
	size_t len;
} hv_cn_frame;

/*
 * Writes nlmsghdr (type NLMSG_DONE, as the kernel's connector uses, sender
 * port @portid) + cn_msg {idx, val, seq, ack, len} + @data into @buf.
 * Returns the datagram length, -EMSGSIZE if it does not fit in @size or the
 * payload is longer than a cn_msg can say (u16).
 */
int hv_cn_build(void *buf, size_t size, uint32_t idx, uint32_t val, uint32_t seq, uint32_t ack,
		uint32_t portid, const void *data, size_t len);

/*
 * Checks one received datagram of @n bytes and points *ret at its payload.
 * -EBADMSG: truncated or inconsistent lengths (nlmsg_len, cn_msg len), or a
 *           netlink control message (error, noop, overrun);
 * -EMSGSIZE: the payload is longer than @max_len;
 * -ENOMSG: another connector id than @idx/@val.
 * Bytes after the first netlink message are ignored (the kernel sends one
 * message per datagram).
 */
int hv_cn_parse(const void *buf, size_t n, uint32_t idx, uint32_t val, size_t max_len,
		hv_cn_frame *ret);

/*
 * Whether a message from netlink port @portid may be taken as coming from
 * the driver. Normally only port 0, the kernel. A transport that talks to
 * a user-space peer instead (@user_peer, tests against the emulated driver)
 * takes only user-space ports, and only the one it heard from first
 * (@bound_peer, 0 while none): a real driver on the machine is not heard.
 */
bool hv_cn_sender_allowed(uint32_t portid, bool user_peer, uint32_t bound_peer);

/* Group bitmask for sockaddr_nl.nl_groups of connector group @idx (1..32), 0 otherwise. */
uint32_t hv_cn_group_mask(uint32_t idx);
