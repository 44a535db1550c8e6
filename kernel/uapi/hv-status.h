/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Status codes the host understands (HRESULT values used by the hv_utils
 * drivers, Linux include/uapi/linux/hyperv.h and drivers/hv/hyperv_vmbus.h).
 */
#pragma once

#include <stdint.h>

#define HV_S_OK 0x00000000U
#define HV_E_FAIL 0x80004005U
#define HV_S_CONT 0x80070103U
#define HV_ERROR_NOT_SUPPORTED 0x80070032U
#define HV_ERROR_MACHINE_LOCKED 0x800704F7U
#define HV_ERROR_DEVICE_NOT_CONNECTED 0x8007048FU
#define HV_INVALIDARG 0x80070057U
#define HV_GUID_NOTFOUND 0x80041002U
#define HV_ERROR_ALREADY_EXISTS 0x80070050U
#define HV_ERROR_DISK_FULL 0x80070070U

/* Integration services framework versions (major << 16 | minor). */
#define HV_UTIL_FW_VERSION ((3U << 16) | 0U)
#define HV_UTIL_WS2K8_FW_VERSION ((1U << 16) | 0U)
