/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * KVP requests as the driver hands them on (hv_kvp/kvp-ops.c,
 * kvp_ops_handle()), against five real pool files in a private directory,
 * emptied before every input; no provider (the auto pool and IP
 * operations answer failure).
 *
 * Checked: the reply status is one of those the handler documents; a SET
 * answered OK can be read back by a GET of the same key in the same pool,
 * with the same value, and an ENUMERATE of index 0 finds a record (in the
 * auto pool it fails: that one is enumerated from the provider, none
 * here); the pool files stay readable.
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "hv-status.h"
#include "kvp-ops.h"

static char *dir; /* lives as long as the process */

/* Logs are dropped (a malformed request is logged as a warning, by design). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	hv_fuzz_glib_quiet();
	dir = g_build_filename(hv_fuzz_tmpdir(), "kvp", NULL);
	return 0;
}

static kvp_pools *fresh_pools(void)
{
	kvp_pools *pools = NULL;

	for (int i = 0; i < _HV_KVP_POOL_COUNT; i++) {
		g_autofree char *name = g_strdup_printf("%s/.kvp_pool_%d", dir, i);

		g_unlink(name);
	}
	HV_FUZZ_CHECK(kvp_pools_open(dir, 0600, true, &pools) == 0);
	return pools;
}

static bool known_status(uint32_t s)
{
	return s == HV_S_OK || s == HV_E_FAIL || s == HV_S_CONT || s == HV_INVALIDARG;
}

static void read_back(kvp_pools *pools, const struct hv_kvp_msg *set)
{
	g_autofree struct hv_kvp_msg *get = g_new0(struct hv_kvp_msg, 1);
	g_autofree struct hv_kvp_msg *reply = g_new0(struct hv_kvp_msg, 1);
	const struct hv_kvp_exchg_msg_value *in = &set->body.kvp_set.data;
	const struct hv_kvp_exchg_msg_value *out;
	uint32_t status;

	get->kvp_hdr.operation = HV_KVP_OP_GET;
	get->kvp_hdr.pool = set->kvp_hdr.pool;
	get->body.kvp_get.data.key_size = in->key_size;
	memcpy(get->body.kvp_get.data.key, in->key, sizeof(in->key));
	HV_FUZZ_CHECK(kvp_ops_handle(pools, NULL, get, sizeof(*get), reply));
	memcpy(&status, reply, sizeof(status));
	HV_FUZZ_CHECK(status == HV_S_OK);
	/* the value where the kernel reads a GET's answer */
	out = &reply->body.kvp_enum_data.data;
	HV_FUZZ_CHECK(strncmp((const char *)out->value, (const char *)in->value,
			      sizeof(out->value)) == 0);

	memset(get, 0, sizeof(*get));
	get->kvp_hdr.operation = HV_KVP_OP_ENUMERATE;
	get->kvp_hdr.pool = set->kvp_hdr.pool;
	get->body.kvp_enum_data.index = 0;
	HV_FUZZ_CHECK(kvp_ops_handle(pools, NULL, get, sizeof(*get), reply));
	memcpy(&status, reply, sizeof(status));
	/* the auto pool is enumerated from the provider (none here), never from its file */
	HV_FUZZ_CHECK(status == (set->kvp_hdr.pool == HV_KVP_POOL_AUTO ? HV_E_FAIL : HV_S_OK));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(kvp_pools) pools = fresh_pools();
	g_autofree struct hv_kvp_msg *req = NULL;
	g_autofree struct hv_kvp_msg *reply = g_new0(struct hv_kvp_msg, 1);
	/* an exact-size copy: reading past what the driver gave is caught */
	g_autofree uint8_t *copy = g_memdup2(data, size ? size : 1);
	uint32_t status;

	if (!kvp_ops_handle(pools, NULL, copy, size, reply))
		return 0;

	memcpy(&status, reply, sizeof(status));
	HV_FUZZ_CHECK(known_status(status));

	if (size >= sizeof(*req) && status == HV_S_OK && data[0] == HV_KVP_OP_SET) {
		req = g_memdup2(data, sizeof(*req));
		read_back(pools, req);
	}

	for (int i = 0; i < _HV_KVP_POOL_COUNT; i++)
		HV_FUZZ_CHECK(kvp_pool_refresh(pools->pool[i]) == 0);
	return 0;
}
