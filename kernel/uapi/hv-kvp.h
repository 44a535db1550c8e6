/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * KVP wire format between the hv_utils KVP driver and its daemon.
 *
 * Written from the layout documented in Linux include/uapi/linux/hyperv.h
 * (checked against linux-libc-dev 6.1) and drivers/hv/hv_kvp.c. All
 * structures are packed and little-endian, except the DELETE body, which is
 * not packed in the kernel header: it gives the body union an alignment of
 * 4, so struct hv_kvp_msg is 7,432 bytes and not 7,430.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Registration ops, written by the daemon as the first message. */
#define HV_KVP_OP_REGISTER 4U    /* legacy: no IP injection */
#define HV_KVP_OP_REGISTER1 100U /* the driver answers with its version string */

enum hv_kvp_op {
	HV_KVP_OP_GET = 0,
	HV_KVP_OP_SET = 1,
	HV_KVP_OP_DELETE = 2,
	HV_KVP_OP_ENUMERATE = 3,
	HV_KVP_OP_GET_IP_INFO = 4,
	HV_KVP_OP_SET_IP_INFO = 5,
	_HV_KVP_OP_COUNT,
};

enum hv_kvp_pool {
	HV_KVP_POOL_EXTERNAL = 0,      /* host -> guest (admin data) */
	HV_KVP_POOL_GUEST = 1,         /* guest -> host */
	HV_KVP_POOL_AUTO = 2,          /* guest intrinsics, generated */
	HV_KVP_POOL_AUTO_EXTERNAL = 3, /* host -> guest (host name, ...) */
	HV_KVP_POOL_AUTO_INTERNAL = 4,
	_HV_KVP_POOL_COUNT,
};

/* Value types (Windows registry types). */
#define HV_KVP_REG_SZ 1U
#define HV_KVP_REG_U32 4U
#define HV_KVP_REG_U64 8U

#define HV_KVP_ADDR_FAMILY_IPV4 1U
#define HV_KVP_ADDR_FAMILY_IPV6 2U

/* Sizes in bytes, including the terminating NUL. */
#define HV_KVP_MAX_KEY_SIZE 512U
#define HV_KVP_MAX_VALUE_SIZE 2048U
/* Sizes in UTF-16 units (the kernel converts them to UTF-8 in place). */
#define HV_KVP_MAX_ADAPTER_ID_SIZE 128U
#define HV_KVP_MAX_IP_ADDR_SIZE 1024U
#define HV_KVP_MAX_GATEWAY_SIZE 512U

/*
 * What the host can see of guest data: the kernel converts UTF-8 to UTF-16
 * with a cap of (MAX/2)-2 units, so longer strings are truncated on the way
 * to the host (PROTOCOL.md section 2).
 */
#define HV_KVP_HOST_MAX_KEY_BYTES 254U
#define HV_KVP_HOST_MAX_VALUE_BYTES 1022U

/* One record of a pool file (/var/lib/hyperv/.kvp_pool_N): 2,560 bytes. */
#define HV_KVP_POOL_RECORD_SIZE (HV_KVP_MAX_KEY_SIZE + HV_KVP_MAX_VALUE_SIZE)

struct hv_kvp_ipaddr_value {
	uint16_t adapter_id[HV_KVP_MAX_ADAPTER_ID_SIZE];
	uint8_t addr_family;
	uint8_t dhcp_enabled;
	uint16_t ip_addr[HV_KVP_MAX_IP_ADDR_SIZE];
	uint16_t sub_net[HV_KVP_MAX_IP_ADDR_SIZE];
	uint16_t gate_way[HV_KVP_MAX_GATEWAY_SIZE];
	uint16_t dns_addr[HV_KVP_MAX_IP_ADDR_SIZE];
} __attribute__((packed));

struct hv_kvp_hdr {
	uint8_t operation;
	uint8_t pool;
	uint16_t pad;
} __attribute__((packed));

struct hv_kvp_exchg_msg_value {
	uint32_t value_type;
	uint32_t key_size;
	uint32_t value_size;
	uint8_t key[HV_KVP_MAX_KEY_SIZE];
	union {
		uint8_t value[HV_KVP_MAX_VALUE_SIZE];
		uint32_t value_u32;
		uint64_t value_u64;
	};
} __attribute__((packed));

struct hv_kvp_msg_enumerate {
	uint32_t index;
	struct hv_kvp_exchg_msg_value data;
} __attribute__((packed));

struct hv_kvp_msg_get {
	struct hv_kvp_exchg_msg_value data;
};

struct hv_kvp_msg_set {
	struct hv_kvp_exchg_msg_value data;
};

/* Not packed in the kernel header (see the top of this file). */
struct hv_kvp_msg_delete {
	uint32_t key_size;
	uint8_t key[HV_KVP_MAX_KEY_SIZE];
};

struct hv_kvp_register {
	uint8_t version[HV_KVP_MAX_KEY_SIZE];
};

/*
 * The message read from and written back to the driver. In a reply the
 * first four bytes are the status (they overlap the header). The kernel
 * reads the value of a GET reply from the ENUMERATE layout
 * (body.kvp_enum_data.data.value), 4 bytes further than body.kvp_get.
 */
struct hv_kvp_msg {
	union {
		struct hv_kvp_hdr kvp_hdr;
		int32_t error;
	};
	union {
		struct hv_kvp_msg_get kvp_get;
		struct hv_kvp_msg_set kvp_set;
		struct hv_kvp_msg_delete kvp_delete;
		struct hv_kvp_msg_enumerate kvp_enum_data;
		struct hv_kvp_ipaddr_value kvp_ip_val;
		struct hv_kvp_register kvp_register;
	} body;
} __attribute__((packed));

/* The host's wire form of the IP operations (hv_kvp_ip_msg). */
struct hv_kvp_ip_msg {
	uint8_t operation;
	uint8_t pool;
	struct hv_kvp_ipaddr_value kvp_ip_val;
} __attribute__((packed));

_Static_assert(sizeof(struct hv_kvp_hdr) == 4, "hv_kvp_hdr is 4 bytes");
_Static_assert(sizeof(struct hv_kvp_exchg_msg_value) == 2572, "exchg value is 2572 bytes");
_Static_assert(sizeof(struct hv_kvp_msg_enumerate) == 2576, "enumerate body is 2576 bytes");
_Static_assert(sizeof(struct hv_kvp_msg_delete) == 516, "delete body is 516 bytes");
_Static_assert(sizeof(struct hv_kvp_register) == 512, "register body is 512 bytes");
_Static_assert(sizeof(struct hv_kvp_ipaddr_value) == 7426, "ipaddr value is 7426 bytes");
_Static_assert(sizeof(struct hv_kvp_msg) == 7432, "hv_kvp_msg is 7432 bytes");
_Static_assert(sizeof(struct hv_kvp_ip_msg) == 7428, "hv_kvp_ip_msg is 7428 bytes");
_Static_assert(offsetof(struct hv_kvp_msg, body) == 4, "body follows the header");
_Static_assert(offsetof(struct hv_kvp_msg, body.kvp_enum_data.data.value) ==
		       offsetof(struct hv_kvp_msg, body.kvp_get.data.value) + 4,
	       "GET replies are read from the enumerate layout, 4 bytes further");
_Static_assert(HV_KVP_POOL_RECORD_SIZE == 2560, "pool records are 2560 bytes");
