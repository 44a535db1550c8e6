/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The netlink connector framing (NETLINK_CONNECTOR, protocol 11), written
 * from the layout documented in Linux include/uapi/linux/connector.h and
 * checked against linux-libc-dev 6.1: a struct cn_msg follows the nlmsghdr,
 * and the service message follows the cn_msg. Host byte order; the cn_msg
 * is not padded (20 bytes).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifndef NETLINK_CONNECTOR
#define NETLINK_CONNECTOR 11
#endif

/* Connector ids of the hv_utils services (Linux include/uapi/linux/connector.h). */
#define HV_CN_KVP_IDX 0x9U
#define HV_CN_KVP_VAL 0x1U
#define HV_CN_VSS_IDX 0xAU
#define HV_CN_VSS_VAL 0x1U

struct hv_cn_id {
	uint32_t idx;
	uint32_t val;
} __attribute__((packed));

struct hv_cn_msg {
	struct hv_cn_id id;
	uint32_t seq;
	uint32_t ack;
	uint16_t len; /* bytes of data[] */
	uint16_t flags;
	uint8_t data[];
} __attribute__((packed));

_Static_assert(sizeof(struct hv_cn_id) == 8, "cb_id is 8 bytes");
_Static_assert(sizeof(struct hv_cn_msg) == 20, "cn_msg is 20 bytes");
_Static_assert(offsetof(struct hv_cn_msg, len) == 16, "len follows seq and ack");
