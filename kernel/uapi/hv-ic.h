/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VMBus packets and the integration-component (IC) framing carried in them,
 * as a UIO-based service daemon (hv_fcopy over uio_hv_generic) sees them.
 *
 * Written from the layouts in Linux include/linux/hyperv.h (struct
 * vmpacket_descriptor, vmbuspipe_hdr, ic_version, icmsg_hdr,
 * icmsg_negotiate, the ICMSGTYPE_* and ICMSGHDRFLAG_* constants,
 * IC_VERSION_NEGOTIATION_MAX_VER_COUNT, ICMSG_HDR, ICMSG_NEGOTIATE_PKT_SIZE,
 * enum vmbus_packet_type) and tools/hv/vmbus_bufring.h (struct
 * vmbus_chanpkt_hdr, the same 16 bytes as vmpacket_descriptor). All
 * structures are packed and little-endian.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * struct vmpacket_descriptor (include/linux/hyperv.h): offset8 and len8 are
 * in 8-byte units; offset8 is where the payload starts (the descriptor is
 * 2 units), len8 is the whole packet, descriptor included, padding included,
 * trailer excluded. tools/hv/vmbus_bufring.h names them hlen and tlen.
 */
struct hv_vmpacket_descriptor {
	uint16_t type;
	uint16_t offset8;
	uint16_t len8;
	uint16_t flags;
	uint64_t trans_id;
} __attribute__((packed));

_Static_assert(sizeof(struct hv_vmpacket_descriptor) == 16, "vmpacket_descriptor is 16 bytes");
_Static_assert(offsetof(struct hv_vmpacket_descriptor, trans_id) == 8, "trans_id at 8");

/* Sizes are in 8-byte units on the wire (VMBUS_CHANPKT_SIZE_SHIFT 3). */
#define HV_VMBUS_PKT_SHIFT 3U
#define HV_VMBUS_PKT_ALIGN 8U
/* Every packet in a ring is followed by a u64: the writer's old write index << 32 (ring_buffer.c VMBUS_PKT_TRAILER). */
#define HV_VMBUS_PKT_TRAILER 8U

/* enum vmbus_packet_type (include/linux/hyperv.h). */
enum hv_vmbus_packet_type {
	HV_VM_PKT_INVALID = 0x0,
	HV_VM_PKT_SYNCH = 0x1,
	HV_VM_PKT_ADD_XFER_PAGESET = 0x2,
	HV_VM_PKT_RM_XFER_PAGESET = 0x3,
	HV_VM_PKT_ESTABLISH_GPADL = 0x4,
	HV_VM_PKT_TEARDOWN_GPADL = 0x5,
	HV_VM_PKT_DATA_INBAND = 0x6,
	HV_VM_PKT_DATA_USING_XFER_PAGES = 0x7,
	HV_VM_PKT_DATA_USING_GPADL = 0x8,
	HV_VM_PKT_DATA_USING_GPA_DIRECT = 0x9,
	HV_VM_PKT_CANCEL_REQUEST = 0xa,
	HV_VM_PKT_COMP = 0xb,
	HV_VM_PKT_DATA_USING_ADDITIONAL_PKT = 0xc,
	HV_VM_PKT_ADDITIONAL_DATA = 0xd,
};

/* VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED (include/linux/hyperv.h). */
#define HV_VMBUS_PKT_FLAG_COMPLETION_REQUESTED 0x1U

/* The IC payload: pipe header, then the IC message header, then the body. */
struct hv_vmbuspipe_hdr {
	uint32_t flags;
	uint32_t msgsize;
} __attribute__((packed));

struct hv_ic_version {
	uint16_t major;
	uint16_t minor;
} __attribute__((packed));

struct hv_icmsg_hdr {
	struct hv_ic_version icverframe;
	uint16_t icmsgtype;
	struct hv_ic_version icvermsg;
	uint16_t icmsgsize;
	uint32_t status;
	uint8_t ictransaction_id;
	uint8_t icflags;
	uint8_t reserved[2];
} __attribute__((packed));

struct hv_icmsg_negotiate {
	uint16_t icframe_vercnt;
	uint16_t icmsg_vercnt;
	uint32_t reserved;
	struct hv_ic_version icversion_data[];
} __attribute__((packed));

_Static_assert(sizeof(struct hv_vmbuspipe_hdr) == 8, "vmbuspipe_hdr is 8 bytes");
_Static_assert(sizeof(struct hv_ic_version) == 4, "ic_version is 4 bytes");
_Static_assert(sizeof(struct hv_icmsg_hdr) == 20, "icmsg_hdr is 20 bytes");
_Static_assert(offsetof(struct hv_icmsg_hdr, icmsgtype) == 4, "icmsgtype at 4");
_Static_assert(offsetof(struct hv_icmsg_hdr, icmsgsize) == 10, "icmsgsize at 10");
_Static_assert(offsetof(struct hv_icmsg_hdr, status) == 12, "status at 12");
_Static_assert(offsetof(struct hv_icmsg_hdr, icflags) == 17, "icflags at 17");
_Static_assert(sizeof(struct hv_icmsg_negotiate) == 8, "icmsg_negotiate header is 8 bytes");

/* ICMSG_HDR: where an IC message body starts inside the VMBus payload. */
#define HV_ICMSG_HDR_LEN (sizeof(struct hv_vmbuspipe_hdr) + sizeof(struct hv_icmsg_hdr))
_Static_assert(HV_ICMSG_HDR_LEN == 28, "ICMSG_HDR is 28 bytes");

/* IC_VERSION_NEGOTIATION_MAX_VER_COUNT. */
#define HV_IC_MAX_VER_COUNT 100U

/* ICMSG_NEGOTIATE_PKT_SIZE(fw, srv): the bytes a negotiate offer must have. */
#define HV_ICMSG_NEGOTIATE_PKT_SIZE(fw, srv)                                                       \
	(HV_ICMSG_HDR_LEN + sizeof(struct hv_icmsg_negotiate) +                                    \
	 ((size_t)(fw) + (size_t)(srv)) * sizeof(struct hv_ic_version))

/* The icmsgsize the kernel (and the UIO daemon) put in a negotiate reply. */
#define HV_ICMSG_NEGOTIATE_REPLY_SIZE 0x10U

/* ICMSGTYPE_* (include/linux/hyperv.h; FCOPY from tools/hv/hv_fcopy_uio_daemon.c). */
enum hv_icmsg_type {
	HV_ICMSGTYPE_NEGOTIATE = 0,
	HV_ICMSGTYPE_HEARTBEAT = 1,
	HV_ICMSGTYPE_KVPEXCHANGE = 2,
	HV_ICMSGTYPE_SHUTDOWN = 3,
	HV_ICMSGTYPE_TIMESYNC = 4,
	HV_ICMSGTYPE_VSS = 5,
	HV_ICMSGTYPE_FCOPY = 7,
};

/* ICMSGHDRFLAG_*. */
#define HV_ICMSGHDRFLAG_TRANSACTION 0x1U
#define HV_ICMSGHDRFLAG_REQUEST 0x2U
#define HV_ICMSGHDRFLAG_RESPONSE 0x4U

/* A version as the kernel's int lists hold it: major << 16 | minor. */
#define HV_IC_VERSION(major, minor) ((uint32_t)(((uint32_t)(major) << 16) | ((minor) & 0xffffU)))
#define HV_IC_VERSION_MAJOR(v) ((uint16_t)((uint32_t)(v) >> 16))
#define HV_IC_VERSION_MINOR(v) ((uint16_t)((uint32_t)(v) & 0xffffU))

/*
 * The Guest services (fcopy) device: its fixed instance GUID is the directory
 * tools/hv/hv_fcopy_uio_daemon.c looks in (FCOPY_UIO); the class GUID is the
 * "Guest services" class (PROTOCOL.md section 6, HV_FCOPY_GUID in
 * include/linux/hyperv.h).
 */
#define HV_IC_FCOPY_INSTANCE_GUID "eb765408-105f-49b6-b4aa-c123b64d17d4"
#define HV_IC_FCOPY_CLASS_GUID "34d14be3-dee4-41c8-9ae7-6b174977c192"
/* WIN8_SRV_VERSION, the fcopy service version the UIO daemon offers. */
#define HV_IC_FCOPY_SRV_VERSION HV_IC_VERSION(1, 1)
