/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VSS wire format between the hv_utils VSS driver and its daemon.
 *
 * Written from the layout documented in Linux include/uapi/linux/hyperv.h
 * (struct hv_vss_msg and friends, checked against linux-libc-dev 6.1) and
 * drivers/hv/hv_snapshot.c. All structures are packed and little-endian.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Registration ops, written by the daemon as the first message. */
#define HV_VSS_OP_REGISTER 128U  /* legacy, connector only, no reply */
#define HV_VSS_OP_REGISTER1 129U /* the driver answers with a u32 version */

/* Host requests (enum hv_vss_op in the uapi header). */
enum hv_vss_op {
	HV_VSS_OP_CREATE = 0,
	HV_VSS_OP_DELETE = 1,
	HV_VSS_OP_HOT_BACKUP = 2,
	HV_VSS_OP_GET_DM_INFO = 3,
	HV_VSS_OP_BU_COMPLETE = 4,
	HV_VSS_OP_FREEZE = 5,
	HV_VSS_OP_THAW = 6,
	HV_VSS_OP_AUTO_RECOVER = 7,
	_HV_VSS_OP_COUNT,
};

/* Feature flags returned for HOT_BACKUP. */
#define HV_VSS_HBU_NO_AUTO_RECOVERY 0x00000005U

struct hv_vss_hdr {
	uint8_t operation;
	uint8_t reserved[7];
} __attribute__((packed));

struct hv_vss_check_feature {
	uint32_t flags;
} __attribute__((packed));

struct hv_vss_check_dm_info {
	uint32_t flags;
} __attribute__((packed));

/*
 * The daemon reads this for every request and writes it back as the reply.
 * In the reply, the first four bytes are the status (they overlap the op).
 */
struct hv_vss_msg {
	union {
		struct hv_vss_hdr vss_hdr;
		int32_t error;
	};
	union {
		struct hv_vss_check_feature vss_cf;
		struct hv_vss_check_dm_info dm_info;
	};
} __attribute__((packed));

_Static_assert(sizeof(struct hv_vss_hdr) == 8, "hv_vss_hdr is 8 bytes");
_Static_assert(sizeof(struct hv_vss_msg) == 12, "hv_vss_msg is 12 bytes");
_Static_assert(offsetof(struct hv_vss_msg, vss_cf) == 8, "flags follow the header");

/* The driver's version answer to REGISTER1 (a bare u32 on the char device). */
typedef uint32_t hv_vss_version;
_Static_assert(sizeof(hv_vss_version) == 4, "version reply is 4 bytes");
