/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FCOPY (guest services, host-to-guest file copy) wire format.
 *
 * Written from the layout documented in Linux include/uapi/linux/hyperv.h
 * (struct hv_fcopy_hdr, hv_start_fcopy, hv_do_fcopy; checked against
 * linux-libc-dev 6.1 by tests/unit/test-fcopy-wire.c) and the drivers that
 * use it: drivers/hv/hv_fcopy.c (Linux <= 6.9, char device /dev/vmbus/hv_fcopy)
 * and tools/hv/hv_fcopy_uio_daemon.c (Linux >= 6.10, uio_hv_generic).
 * All structures are packed and little-endian.
 *
 * File and path names: on the wire (and so over the UIO ring) they are
 * UTF-16LE, NUL-terminated, at most HV_FCOPY_W_MAX_PATH units. Over the char
 * device the kernel has already converted them to UTF-8 (utf16s_to_utf8s()
 * into the same arrays, at most HV_FCOPY_W_MAX_PATH - 1 bytes, zero-filled),
 * so there the u16 arrays hold bytes of a UTF-8 string.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Registration on the char device: the daemon writes an int version. */
#define HV_FCOPY_VERSION_0	 0U /* the driver answers nothing */
#define HV_FCOPY_VERSION_1	 1U /* the driver answers with its u32 version */
#define HV_FCOPY_CURRENT_VERSION HV_FCOPY_VERSION_1

/* IC service version negotiated over VMBus (drivers/hv/hv_fcopy.c WIN8_SRV_VERSION). */
#define HV_FCOPY_IC_SRV_VERSION ((1U << 16) | 1U)

#define HV_FCOPY_W_MAX_PATH    260
#define HV_FCOPY_DATA_FRAGMENT (6 * 1024)

enum hv_fcopy_op {
	HV_FCOPY_START_FILE_COPY = 0,
	HV_FCOPY_WRITE_TO_FILE = 1,
	HV_FCOPY_COMPLETE_FCOPY = 2,
	HV_FCOPY_CANCEL_FCOPY = 3,
	_HV_FCOPY_OP_COUNT,
};

/* copy_flags of START */
#define HV_FCOPY_OVER_WRITE  0x1U
#define HV_FCOPY_CREATE_PATH 0x2U

struct hv_fcopy_hdr {
	uint32_t operation;
	uint8_t service_id0[16]; /* unused */
	uint8_t service_id1[16]; /* unused */
} __attribute__((packed));

struct hv_start_fcopy {
	struct hv_fcopy_hdr hdr;
	uint16_t file_name[HV_FCOPY_W_MAX_PATH];
	uint16_t path_name[HV_FCOPY_W_MAX_PATH];
	uint32_t copy_flags;
	uint64_t file_size;
} __attribute__((packed));

struct hv_do_fcopy {
	struct hv_fcopy_hdr hdr;
	uint32_t pad;
	uint64_t offset;
	uint32_t size;
	uint8_t data[HV_FCOPY_DATA_FRAGMENT];
} __attribute__((packed));

_Static_assert(sizeof(struct hv_fcopy_hdr) == 36, "hv_fcopy_hdr is 36 bytes");
_Static_assert(sizeof(struct hv_start_fcopy) == 1088, "hv_start_fcopy is 1088 bytes");
_Static_assert(offsetof(struct hv_start_fcopy, file_name) == 36, "file_name after the header");
_Static_assert(offsetof(struct hv_start_fcopy, path_name) == 556, "path_name after file_name");
_Static_assert(offsetof(struct hv_start_fcopy, copy_flags) == 1076, "flags after the names");
_Static_assert(offsetof(struct hv_start_fcopy, file_size) == 1080, "size after the flags");
_Static_assert(sizeof(struct hv_do_fcopy) == 6196, "hv_do_fcopy is 6196 bytes");
_Static_assert(offsetof(struct hv_do_fcopy, offset) == 40, "offset after header and pad");
_Static_assert(offsetof(struct hv_do_fcopy, size) == 48, "size after the offset");
_Static_assert(offsetof(struct hv_do_fcopy, data) == 52, "data after the size");

/* The daemon's answer on the char device: a bare 4-byte status. */
typedef uint32_t hv_fcopy_reply;
_Static_assert(sizeof(hv_fcopy_reply) == 4, "the reply is 4 bytes");
