/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kvp-ops.h"

#include <errno.h>
#include <string.h>

#include <glib.h>

#include "hv-log.h"
#include "hv-status.h"

static const char *const op_names[_HV_KVP_OP_COUNT] = {
	[HV_KVP_OP_GET] = "GET",
	[HV_KVP_OP_SET] = "SET",
	[HV_KVP_OP_DELETE] = "DELETE",
	[HV_KVP_OP_ENUMERATE] = "ENUMERATE",
	[HV_KVP_OP_GET_IP_INFO] = "GET_IP_INFO",
	[HV_KVP_OP_SET_IP_INFO] = "SET_IP_INFO",
};

const char *kvp_op_to_string(unsigned int op)
{
	if (op < _HV_KVP_OP_COUNT)
		return op_names[op];

	if (op == HV_KVP_OP_REGISTER)
		return "REGISTER";

	if (op == HV_KVP_OP_REGISTER1)
		return "REGISTER1";

	return "unknown";
}

/*
 * A string field as the kernel fills it: @size bytes including the NUL,
 * no NUL before it, within @max; empty only if @allow_empty.
 */
static bool string_ok(const uint8_t *buf, uint32_t size, uint32_t max, bool allow_empty)
{
	if (size < 1 || size > max)
		return false;

	if (buf[size - 1] != '\0')
		return false;

	if (strnlen((const char *)buf, max) != size - 1)
		return false;

	return allow_empty || size > 1;
}

static void put_string(uint8_t *field, size_t field_size, const char *s)
{
	size_t n = strnlen(s, field_size - 1);

	memset(field, 0, field_size);
	memcpy(field, s, n);
}

/* ENUMERATE answer: key and value where the kernel reads them. */
static void put_enum_record(struct hv_kvp_msg *reply, const char *key, const char *value)
{
	struct hv_kvp_exchg_msg_value *d = &reply->body.kvp_enum_data.data;

	put_string(d->key, sizeof(d->key), key);
	put_string(d->value, sizeof(d->value), value);
	d->key_size = (uint32_t)strlen((const char *)d->key) + 1;
	d->value_size = (uint32_t)strlen((const char *)d->value) + 1;
	d->value_type = HV_KVP_REG_SZ;
}

static void refresh(kvp_pool *p)
{
	int r = kvp_pool_refresh(p);

	if (r < 0)
		hv_log_errno(r, "%s: failed to re-read the pool file, answering from memory: %m",
			     kvp_pool_get_path(p));
}

static uint32_t do_get(kvp_pool *p, struct hv_kvp_msg *reply)
{
	const struct hv_kvp_exchg_msg_value *d = &reply->body.kvp_get.data;
	char key[HV_KVP_MAX_KEY_SIZE];
	const char *value;

	/* value_size is 0 in a GET from the kernel: not checked. */
	if (!string_ok(d->key, d->key_size, HV_KVP_MAX_KEY_SIZE, false)) {
		g_warning("GET: key_size %u does not match a NUL-terminated key: refused",
			  d->key_size);
		return HV_INVALIDARG;
	}

	memcpy(key, d->key, d->key_size);
	refresh(p);
	value = kvp_pool_lookup(p, key);
	if (!value) {
		g_debug("GET %s: no such key", key);
		return HV_S_CONT;
	}

	/* Where the kernel reads a GET answer (see kvp-ops.h). */
	put_string(reply->body.kvp_enum_data.data.value,
		   sizeof(reply->body.kvp_enum_data.data.value), value);
	return HV_S_OK;
}

static uint32_t do_set(kvp_pool *p, struct hv_kvp_msg *reply)
{
	const struct hv_kvp_exchg_msg_value *d = &reply->body.kvp_set.data;
	int r;

	if (!string_ok(d->key, d->key_size, HV_KVP_MAX_KEY_SIZE, false)) {
		g_warning("SET: key_size %u does not match a NUL-terminated key: refused",
			  d->key_size);
		return HV_INVALIDARG;
	}

	if (!string_ok(d->value, d->value_size, HV_KVP_MAX_VALUE_SIZE, true)) {
		g_warning("SET %s: value_size %u does not match a NUL-terminated value: refused",
			  (const char *)d->key, d->value_size);
		return HV_INVALIDARG;
	}

	r = kvp_pool_set(p, (const char *)d->key, (const char *)d->value);
	if (r < 0) {
		hv_log_errno(r, "SET %s in %s failed: %m", (const char *)d->key,
			     kvp_pool_get_path(p));
		return HV_E_FAIL;
	}

	return HV_S_OK;
}

static uint32_t do_delete(kvp_pool *p, struct hv_kvp_msg *reply)
{
	struct hv_kvp_msg_delete del;
	const struct hv_kvp_msg_delete *d = &del;
	int r;

	/* Not packed in the kernel's layout: copied out rather than pointed into. */
	memcpy(&del, (const uint8_t *)reply + offsetof(struct hv_kvp_msg, body), sizeof(del));

	if (!string_ok(d->key, d->key_size, HV_KVP_MAX_KEY_SIZE, false)) {
		g_warning("DELETE: key_size %u does not match a NUL-terminated key: refused",
			  d->key_size);
		return HV_INVALIDARG;
	}

	r = kvp_pool_delete(p, (const char *)d->key);
	if (r == -ENOENT) {
		g_debug("DELETE %s: no such key", (const char *)d->key);
		return HV_S_CONT;
	}

	if (r < 0) {
		hv_log_errno(r, "DELETE %s in %s failed: %m", (const char *)d->key,
			     kvp_pool_get_path(p));
		return HV_E_FAIL;
	}

	return HV_S_OK;
}

static uint32_t do_enumerate_auto(const kvp_provider *provider, struct hv_kvp_msg *reply)
{
	char key[HV_KVP_MAX_KEY_SIZE] = "";
	char value[HV_KVP_MAX_VALUE_SIZE] = "";
	uint32_t index = reply->body.kvp_enum_data.index;
	int r;

	if (!provider || !provider->auto_record) {
		g_warning("ENUMERATE of the auto pool (2), index %u: no auto pool provider (kvp-auto) in this build: answering failure",
			  index);
		return HV_E_FAIL;
	}

	r = provider->auto_record(provider->userdata, index, key, sizeof(key), value,
				  sizeof(value));
	if (r == -ENOENT)
		return HV_S_CONT;

	if (r < 0) {
		hv_log_errno(r, "ENUMERATE of the auto pool (2), index %u failed: %m", index);
		return HV_E_FAIL;
	}

	key[sizeof(key) - 1] = '\0';
	value[sizeof(value) - 1] = '\0';
	put_enum_record(reply, key, value);
	return HV_S_OK;
}

static uint32_t do_enumerate(kvp_pool *p, struct hv_kvp_msg *reply)
{
	uint32_t index = reply->body.kvp_enum_data.index;
	const kvp_record *r;

	refresh(p);
	r = kvp_pool_get_at(p, index);
	if (!r)
		return HV_S_CONT;

	put_enum_record(reply, r->key, r->value);
	return HV_S_OK;
}

static uint32_t do_ip_info(const kvp_provider *provider, unsigned int op, struct hv_kvp_msg *reply)
{
	struct hv_kvp_ipaddr_value req = reply->body.kvp_ip_val;
	uint8_t *adapter = (uint8_t *)req.adapter_id;

	/* The kernel converted the adapter id to UTF-8 in place; make sure it ends. */
	adapter[sizeof(req.adapter_id) - 1] = '\0';

	if (op == HV_KVP_OP_GET_IP_INFO) {
		if (!provider || !provider->get_ip_info) {
			g_warning("GET_IP_INFO for adapter %s: no IP information provider (kvp-net) in this build: answering failure",
				  (const char *)adapter);
			return HV_E_FAIL;
		}

		return provider->get_ip_info(provider->userdata, &req, &reply->body.kvp_ip_val);
	}

	if (!provider || !provider->set_ip_info) {
		g_warning("SET_IP_INFO for adapter %s: no IP configuration provider (kvp-net) in this build: answering failure",
			  (const char *)adapter);
		return HV_E_FAIL;
	}

	return provider->set_ip_info(provider->userdata, &req);
}

bool kvp_ops_handle(kvp_pools *pools, const kvp_provider *provider, const void *req, size_t len,
		    struct hv_kvp_msg *reply)
{
	struct hv_kvp_msg msg = { 0 };
	unsigned int op, pool;
	uint32_t status;

	memcpy(&msg, req, MIN(len, sizeof(msg)));
	op = msg.kvp_hdr.operation;
	pool = msg.kvp_hdr.pool;
	*reply = msg;

	if (len < sizeof(msg)) {
		g_warning("Short message from the driver (%zu bytes, expected %zu, op %u): answering failure",
			  len, sizeof(msg), op);
		status = HV_INVALIDARG;
		goto done;
	}

	/*
	 * Op 100 (REGISTER1) here is not our registration's answer: the
	 * transport consumed that in open(). The driver passes the host's op
	 * through unchecked, so it is a host request like any other unknown op
	 * and is answered (unanswered, the host would wait for the driver's
	 * 30 s timeout).
	 */
	if (op >= _HV_KVP_OP_COUNT) {
		g_warning("Unknown operation %u from the driver: answering failure", op);
		status = HV_E_FAIL;
		goto done;
	}

	if (op == HV_KVP_OP_GET_IP_INFO || op == HV_KVP_OP_SET_IP_INFO) {
		status = do_ip_info(provider, op, reply);
		goto done;
	}

	if (pool >= _HV_KVP_POOL_COUNT) {
		g_warning("%s on pool %u: there are pools 0 to %u only: refused", op_names[op], pool,
			  _HV_KVP_POOL_COUNT - 1);
		status = HV_INVALIDARG;
		goto done;
	}

	switch ((enum hv_kvp_op)op) {
	case HV_KVP_OP_GET:
		status = do_get(pools->pool[pool], reply);
		break;
	case HV_KVP_OP_SET:
		status = do_set(pools->pool[pool], reply);
		break;
	case HV_KVP_OP_DELETE:
		status = do_delete(pools->pool[pool], reply);
		break;
	case HV_KVP_OP_ENUMERATE:
		/* The auto pool is generated; its file is not enumerated (as upstream). */
		if (pool == HV_KVP_POOL_AUTO)
			status = do_enumerate_auto(provider, reply);
		else
			status = do_enumerate(pools->pool[pool], reply);
		break;
	case HV_KVP_OP_GET_IP_INFO:
	case HV_KVP_OP_SET_IP_INFO:
	case _HV_KVP_OP_COUNT:
	default:
		status = HV_E_FAIL;
		break;
	}

done:
	reply->error = (int32_t)status;
	g_debug("%s pool %u: status %#x", kvp_op_to_string(op), pool, status);
	return true;
}
