/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The request handler: one struct hv_kvp_msg as read from the driver in,
 * the whole reply out. It touches nothing but the pools and the provider,
 * so tests drive it with tables of requests and expected replies.
 *
 * Replies follow the upstream daemon (Linux tools/hv/hv_kvp_daemon.c)
 * where the kernel reads them (Linux drivers/hv/hv_kvp.c,
 * kvp_respond_to_host()): the status in the first four bytes; for
 * ENUMERATE the key and value strings in body.kvp_enum_data.data; the rest
 * of the reply is the request as received. GET and ENUMERATE of a missing
 * key or index answer HV_S_CONT, as do DELETE of a missing key.
 *
 * Where we differ, on purpose:
 * - GET places the value where the kernel reads it,
 *   body.kvp_enum_data.data.value (4 bytes after body.kvp_get.data.value).
 *   The upstream daemon copies value_size bytes, which the kernel sets to
 *   0 for GET, so the host always receives an empty value from it.
 * - Bad input is refused instead of being used: a pool number >= 5 or a
 *   key/value whose size does not match its NUL-terminated string
 *   (HV_INVALIDARG), an unknown operation (HV_E_FAIL); a failed write of a
 *   pool file is HV_E_FAIL (upstream exits).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "hv-kvp.h"
#include "kvp-pool.h"
#include "kvp-provider.h"

const char *kvp_op_to_string(unsigned int op);

/*
 * Handles @req (@len bytes as read from the driver) and builds the whole
 * reply in @reply (may be the same buffer as @req). Returns false when the
 * message must not be answered (a late answer to our registration).
 * @provider may be NULL or have NULL functions: the operations needing
 * them fail with HV_E_FAIL and a log line.
 */
bool kvp_ops_handle(kvp_pools *pools, const kvp_provider *provider, const void *req, size_t len,
		    struct hv_kvp_msg *reply);
