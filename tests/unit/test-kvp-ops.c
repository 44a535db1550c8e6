/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "hv-log.h"
#include "hv-status.h"
#include "kvp-daemon.h"
#include "kvp-ops.h"

/* Offsets in the 7,432-byte message where the kernel reads a reply. */
#define OFF_STATUS 0
#define OFF_ENUM_KEY (4 + 4 + 12)
#define OFF_ENUM_VALUE (OFF_ENUM_KEY + 512)

static char *dir;
static kvp_pools *pools;

static int setup(void **state)
{
	dir = g_dir_make_tmp("hv-kvp-ops-XXXXXX", NULL);
	assert_non_null(dir);
	assert_int_equal(kvp_pools_open(dir, 0644, true, &pools), 0);
	return 0;
}

static int teardown(void **state)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	g_clear_pointer(&pools, kvp_pools_free);
	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(dir, name, NULL);

		g_unlink(p);
	}
	g_rmdir(dir);
	g_clear_pointer(&dir, g_free);
	return 0;
}

/* Requests as the kernel builds them (drivers/hv/hv_kvp.c, kvp_send_key()). */
static void req_init(struct hv_kvp_msg *m, unsigned int op, unsigned int pool)
{
	memset(m, 0, sizeof(*m));
	m->kvp_hdr.operation = (uint8_t)op;
	m->kvp_hdr.pool = (uint8_t)pool;
}

static void req_get(struct hv_kvp_msg *m, unsigned int pool, const char *key)
{
	req_init(m, HV_KVP_OP_GET, pool);
	memcpy(m->body.kvp_get.data.key, key, strlen(key));
	m->body.kvp_get.data.key_size = (uint32_t)strlen(key) + 1;
}

static void req_set(struct hv_kvp_msg *m, unsigned int pool, const char *key, const char *value)
{
	req_init(m, HV_KVP_OP_SET, pool);
	m->body.kvp_set.data.value_type = HV_KVP_REG_SZ;
	memcpy(m->body.kvp_set.data.key, key, strlen(key));
	m->body.kvp_set.data.key_size = (uint32_t)strlen(key) + 1;
	memcpy(m->body.kvp_set.data.value, value, strlen(value));
	m->body.kvp_set.data.value_size = (uint32_t)strlen(value) + 1;
}

static void req_delete(struct hv_kvp_msg *m, unsigned int pool, const char *key)
{
	uint32_t size = (uint32_t)strlen(key) + 1;
	uint8_t *body = (uint8_t *)m + offsetof(struct hv_kvp_msg, body);

	req_init(m, HV_KVP_OP_DELETE, pool);
	memcpy(body, &size, sizeof(size));
	memcpy(body + 4, key, strlen(key));
}

static void req_enum(struct hv_kvp_msg *m, unsigned int pool, uint32_t index)
{
	req_init(m, HV_KVP_OP_ENUMERATE, pool);
	m->body.kvp_enum_data.index = index;
}

static uint32_t status_of(const struct hv_kvp_msg *m)
{
	uint32_t s;

	memcpy(&s, (const uint8_t *)m + OFF_STATUS, sizeof(s));
	return s;
}

static uint32_t handle(const kvp_provider *prov, struct hv_kvp_msg *req, struct hv_kvp_msg *reply)
{
	assert_true(kvp_ops_handle(pools, prov, req, sizeof(*req), reply));
	return status_of(reply);
}

static const char *enum_key(const struct hv_kvp_msg *m)
{
	return (const char *)m + OFF_ENUM_KEY;
}

static const char *enum_value(const struct hv_kvp_msg *m)
{
	return (const char *)m + OFF_ENUM_VALUE;
}

typedef struct step {
	const char *what;
	unsigned int op;
	unsigned int pool;
	const char *key;   /* or the index for ENUMERATE, as a string */
	const char *value;
	uint32_t status;
	const char *want_key;   /* ENUMERATE: in the enumerate layout */
	const char *want_value; /* GET/ENUMERATE: in the enumerate layout */
} step;

static void run_steps(const step *steps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const step *s = &steps[i];
		struct hv_kvp_msg req, reply;

		switch (s->op) {
		case HV_KVP_OP_GET:
			req_get(&req, s->pool, s->key);
			break;
		case HV_KVP_OP_SET:
			req_set(&req, s->pool, s->key, s->value);
			break;
		case HV_KVP_OP_DELETE:
			req_delete(&req, s->pool, s->key);
			break;
		case HV_KVP_OP_ENUMERATE:
			req_enum(&req, s->pool, (uint32_t)atoi(s->key));
			break;
		default:
			fail();
		}

		print_message("step %zu: %s\n", i, s->what);
		assert_int_equal(handle(NULL, &req, &reply), s->status);
		if (s->want_key)
			assert_string_equal(enum_key(&reply), s->want_key);
		if (s->want_value)
			assert_string_equal(enum_value(&reply), s->want_value);
		/* Beyond the status, SET and DELETE replies are the request. */
		if (s->op == HV_KVP_OP_SET || s->op == HV_KVP_OP_DELETE)
			assert_memory_equal((uint8_t *)&reply + 4, (uint8_t *)&req + 4,
					    sizeof(req) - 4);
	}
}

static void test_ops_table(void **state)
{
	static const step steps[] = {
		{ "GET from an empty pool", HV_KVP_OP_GET, 0, "k1", NULL, HV_S_CONT },
		{ "ENUMERATE an empty pool", HV_KVP_OP_ENUMERATE, 0, "0", NULL, HV_S_CONT },
		{ "DELETE from an empty pool", HV_KVP_OP_DELETE, 0, "k1", NULL, HV_S_CONT },
		{ "SET k1", HV_KVP_OP_SET, 0, "k1", "v1", HV_S_OK },
		{ "SET k2", HV_KVP_OP_SET, 0, "k2", "v2", HV_S_OK },
		{ "SET k3", HV_KVP_OP_SET, 0, "k3", "v3", HV_S_OK },
		{ "GET k2", HV_KVP_OP_GET, 0, "k2", NULL, HV_S_OK, NULL, "v2" },
		{ "GET k2 from another pool", HV_KVP_OP_GET, 1, "k2", NULL, HV_S_CONT },
		{ "ENUMERATE 0", HV_KVP_OP_ENUMERATE, 0, "0", NULL, HV_S_OK, "k1", "v1" },
		{ "ENUMERATE 2", HV_KVP_OP_ENUMERATE, 0, "2", NULL, HV_S_OK, "k3", "v3" },
		{ "ENUMERATE past the end", HV_KVP_OP_ENUMERATE, 0, "3", NULL, HV_S_CONT },
		{ "ENUMERATE far past the end", HV_KVP_OP_ENUMERATE, 0, "4000000000", NULL,
		  HV_S_CONT },
		{ "SET k1 again keeps its place", HV_KVP_OP_SET, 0, "k1", "changed", HV_S_OK },
		{ "ENUMERATE 0 after upsert", HV_KVP_OP_ENUMERATE, 0, "0", NULL, HV_S_OK, "k1",
		  "changed" },
		{ "DELETE k2", HV_KVP_OP_DELETE, 0, "k2", NULL, HV_S_OK },
		{ "DELETE k2 again", HV_KVP_OP_DELETE, 0, "k2", NULL, HV_S_CONT },
		{ "ENUMERATE 1 after the delete", HV_KVP_OP_ENUMERATE, 0, "1", NULL, HV_S_OK, "k3",
		  "v3" },
		{ "ENUMERATE 2 after the delete", HV_KVP_OP_ENUMERATE, 0, "2", NULL, HV_S_CONT },
		{ "GET k2 after the delete", HV_KVP_OP_GET, 0, "k2", NULL, HV_S_CONT },
		{ "SET an empty value", HV_KVP_OP_SET, 3, "empty", "", HV_S_OK },
		{ "GET an empty value", HV_KVP_OP_GET, 3, "empty", NULL, HV_S_OK, NULL, "" },
		{ "SET UTF-8", HV_KVP_OP_SET, 4, "Schlüssel", "Wert ✓", HV_S_OK },
		{ "GET UTF-8", HV_KVP_OP_GET, 4, "Schlüssel", NULL, HV_S_OK, NULL, "Wert ✓" },
		{ "ENUMERATE UTF-8", HV_KVP_OP_ENUMERATE, 4, "0", NULL, HV_S_OK, "Schlüssel",
		  "Wert ✓" },
		/* As upstream: GET/SET/DELETE of pool 2 use its file. */
		{ "SET in pool 2", HV_KVP_OP_SET, 2, "a", "b", HV_S_OK },
		{ "GET from pool 2", HV_KVP_OP_GET, 2, "a", NULL, HV_S_OK, NULL, "b" },
		{ "pool 5 GET", HV_KVP_OP_GET, 5, "k1", NULL, HV_INVALIDARG },
		{ "pool 255 SET", HV_KVP_OP_SET, 255, "k1", "v", HV_INVALIDARG },
		{ "pool 5 DELETE", HV_KVP_OP_DELETE, 5, "k1", NULL, HV_INVALIDARG },
		{ "pool 5 ENUMERATE", HV_KVP_OP_ENUMERATE, 5, "0", NULL, HV_INVALIDARG },
		{ "SET an empty key", HV_KVP_OP_SET, 0, "", "v", HV_INVALIDARG },
		{ "GET an empty key", HV_KVP_OP_GET, 0, "", NULL, HV_INVALIDARG },
		{ "DELETE an empty key", HV_KVP_OP_DELETE, 0, "", NULL, HV_INVALIDARG },
	};

	run_steps(steps, G_N_ELEMENTS(steps));

	/* What the handler wrote is in the files, for any reader. */
	{
		g_autoptr(kvp_pool) p = kvp_pool_new(kvp_pool_get_path(pools->pool[0]), 0644);

		assert_int_equal(kvp_pool_refresh(p), 1);
		assert_int_equal(kvp_pool_count(p), 2);
		assert_string_equal(kvp_pool_get_at(p, 0)->value, "changed");
		assert_string_equal(kvp_pool_get_at(p, 1)->key, "k3");
	}
}

static void test_get_value_where_the_kernel_reads_it(void **state)
{
	struct hv_kvp_msg req, reply;

	req_set(&req, 1, "HostName", "guest-01");
	assert_int_equal(handle(NULL, &req, &reply), HV_S_OK);

	req_get(&req, 1, "HostName");
	assert_int_equal(handle(NULL, &req, &reply), HV_S_OK);
	assert_string_equal((const char *)reply.body.kvp_enum_data.data.value, "guest-01");
	assert_string_equal((const char *)&reply + OFF_ENUM_VALUE, "guest-01");
	/* The key the kernel sent is still there. */
	assert_string_equal((const char *)reply.body.kvp_get.data.key, "HostName");
	assert_int_equal(reply.body.kvp_get.data.key_size, 9);
	assert_int_equal(reply.kvp_hdr.operation, 0); /* status HV_S_OK */

	/* In place: reply and request may be the same buffer. */
	req_get(&req, 1, "HostName");
	assert_true(kvp_ops_handle(pools, NULL, &req, sizeof(req), &req));
	assert_int_equal(status_of(&req), HV_S_OK);
	assert_string_equal(enum_value(&req), "guest-01");

	/* The largest value fits whole. */
	{
		g_autofree char *v = g_strnfill(2047, 'z');

		req_set(&req, 1, "big", v);
		assert_int_equal(handle(NULL, &req, &reply), HV_S_OK);
		req_get(&req, 1, "big");
		assert_int_equal(handle(NULL, &req, &reply), HV_S_OK);
		assert_string_equal(enum_value(&reply), v);
	}
}

static void test_enumerate_reply_layout(void **state)
{
	struct hv_kvp_msg req, reply;
	g_autofree char *k = g_strnfill(511, 'k');
	g_autofree char *v = g_strnfill(2047, 'v');

	req_set(&req, 0, "short", "s");
	assert_int_equal(handle(NULL, &req, &reply), HV_S_OK);
	req_set(&req, 0, k, v);
	assert_int_equal(handle(NULL, &req, &reply), HV_S_OK);

	/* A long record first, then a short one: no stale bytes of the first. */
	req_enum(&req, 0, 1);
	assert_int_equal(handle(NULL, &req, &reply), HV_S_OK);
	assert_string_equal(enum_key(&reply), k);
	assert_string_equal(enum_value(&reply), v);
	assert_int_equal(reply.body.kvp_enum_data.index, 1);
	assert_int_equal(reply.body.kvp_enum_data.data.key_size, 512);
	assert_int_equal(reply.body.kvp_enum_data.data.value_size, 2048);

	req_enum(&reply, 0, 0);
	memset(reply.body.kvp_enum_data.data.key, 'X', 512);
	assert_true(kvp_ops_handle(pools, NULL, &reply, sizeof(reply), &reply));
	assert_int_equal(status_of(&reply), HV_S_OK);
	assert_string_equal(enum_key(&reply), "short");
	assert_string_equal(enum_value(&reply), "s");
	for (size_t i = 6; i < 512; i++)
		assert_int_equal(reply.body.kvp_enum_data.data.key[i], 0);
	assert_int_equal(reply.body.kvp_enum_data.data.value_type, HV_KVP_REG_SZ);
}

static void test_malformed_requests(void **state)
{
	struct hv_kvp_msg req, reply;
	uint8_t *body;
	uint32_t v;

	/* key_size larger than the string (a NUL inside). */
	req_get(&req, 0, "abc");
	req.body.kvp_get.data.key_size = 10;
	assert_int_equal(handle(NULL, &req, &reply), HV_INVALIDARG);
	/* key_size smaller than the string. */
	req_set(&req, 0, "abcdef", "v");
	req.body.kvp_set.data.key_size = 3;
	assert_int_equal(handle(NULL, &req, &reply), HV_INVALIDARG);
	/* key_size 0 and key_size beyond the field. */
	req_get(&req, 0, "abc");
	req.body.kvp_get.data.key_size = 0;
	assert_int_equal(handle(NULL, &req, &reply), HV_INVALIDARG);
	req.body.kvp_get.data.key_size = 513;
	assert_int_equal(handle(NULL, &req, &reply), HV_INVALIDARG);
	req.body.kvp_get.data.key_size = 0xffffffff;
	assert_int_equal(handle(NULL, &req, &reply), HV_INVALIDARG);
	/* A key filling the field without a NUL. */
	req_init(&req, HV_KVP_OP_SET, 0);
	memset(req.body.kvp_set.data.key, 'a', 512);
	req.body.kvp_set.data.key_size = 512;
	memcpy(req.body.kvp_set.data.value, "v", 2);
	req.body.kvp_set.data.value_size = 2;
	assert_int_equal(handle(NULL, &req, &reply), HV_INVALIDARG);
	/* value_size 0 (what the kernel sends for an unknown value type). */
	req_set(&req, 0, "k", "v");
	req.body.kvp_set.data.value_size = 0;
	assert_int_equal(handle(NULL, &req, &reply), HV_INVALIDARG);
	/* value_size not matching, and beyond the field. */
	req.body.kvp_set.data.value_size = 5;
	assert_int_equal(handle(NULL, &req, &reply), HV_INVALIDARG);
	req.body.kvp_set.data.value_size = 2049;
	assert_int_equal(handle(NULL, &req, &reply), HV_INVALIDARG);
	/* A value filling the field without a NUL. */
	req_set(&req, 0, "k", "v");
	memset(req.body.kvp_set.data.value, 'v', 2048);
	req.body.kvp_set.data.value_size = 2048;
	assert_int_equal(handle(NULL, &req, &reply), HV_INVALIDARG);
	/* DELETE with a bad key_size. */
	req_delete(&req, 0, "k");
	body = (uint8_t *)&req + offsetof(struct hv_kvp_msg, body);
	v = 7;
	memcpy(body, &v, sizeof(v));
	assert_int_equal(handle(NULL, &req, &reply), HV_INVALIDARG);

	/* Nothing was stored by any of these. */
	assert_int_equal(kvp_pool_count(pools->pool[0]), 0);

	/* Unknown operations. */
	for (unsigned int op = _HV_KVP_OP_COUNT; op < 256; op++) {
		req_init(&req, op, 0);
		assert_int_equal(handle(NULL, &req, &reply), HV_E_FAIL);
	}

	/* A short message. */
	req_get(&req, 0, "k");
	assert_true(kvp_ops_handle(pools, NULL, &req, 100, &reply));
	assert_int_equal(status_of(&reply), HV_INVALIDARG);
	assert_true(kvp_ops_handle(pools, NULL, &req, 0, &reply));
	assert_int_equal(status_of(&reply), HV_INVALIDARG);

	/* Op 100 from the host (the driver passes ops through): answered, failure. */
	req_init(&req, HV_KVP_OP_REGISTER1, 0);
	assert_true(kvp_ops_handle(pools, NULL, &req, sizeof(req), &reply));
	assert_int_equal(status_of(&reply), HV_E_FAIL);
	/* Op 4 is both the legacy REGISTER and GET_IP_INFO: answered (no provider: failure). */
	req_init(&req, HV_KVP_OP_REGISTER, 0);
	assert_true(kvp_ops_handle(pools, NULL, &req, sizeof(req), &reply));
	assert_int_equal(status_of(&reply), HV_E_FAIL);
}

/* A provider for the tests: two auto records, IP answers from a table. */
typedef struct fake {
	int auto_error;
	uint32_t ip_status;
	char seen_adapter[256];
	unsigned int n_get_ip, n_set_ip;
} fake;

static int fake_auto(void *userdata, uint32_t index, char *key, size_t key_size, char *value,
		     size_t value_size)
{
	fake *f = userdata;
	static const char *const kv[][2] = { { "FullyQualifiedDomainName", "guest.example" },
					     { "OSName", "Debian GNU/Linux" } };

	if (f->auto_error)
		return f->auto_error;
	if (index >= G_N_ELEMENTS(kv))
		return -ENOENT;
	g_strlcpy(key, kv[index][0], key_size);
	g_strlcpy(value, kv[index][1], value_size);
	return 0;
}

static uint32_t fake_get_ip(void *userdata, const struct hv_kvp_ipaddr_value *req,
			    struct hv_kvp_ipaddr_value *reply)
{
	fake *f = userdata;

	f->n_get_ip++;
	g_strlcpy(f->seen_adapter, (const char *)req->adapter_id, sizeof(f->seen_adapter));
	g_strlcpy((char *)reply->ip_addr, "192.0.2.10", sizeof(reply->ip_addr));
	reply->dhcp_enabled = 1;
	return f->ip_status;
}

static uint32_t fake_set_ip(void *userdata, const struct hv_kvp_ipaddr_value *req)
{
	fake *f = userdata;

	f->n_set_ip++;
	g_strlcpy(f->seen_adapter, (const char *)req->adapter_id, sizeof(f->seen_adapter));
	return f->ip_status;
}

static void test_auto_pool(void **state)
{
	fake f = { 0 };
	kvp_provider prov = { .userdata = &f, .auto_record = fake_auto };
	kvp_provider none = { 0 };
	struct hv_kvp_msg req, reply;

	req_enum(&req, HV_KVP_POOL_AUTO, 0);
	assert_int_equal(handle(&prov, &req, &reply), HV_S_OK);
	assert_string_equal(enum_key(&reply), "FullyQualifiedDomainName");
	assert_string_equal(enum_value(&reply), "guest.example");
	req_enum(&req, HV_KVP_POOL_AUTO, 1);
	assert_int_equal(handle(&prov, &req, &reply), HV_S_OK);
	assert_string_equal(enum_key(&reply), "OSName");
	req_enum(&req, HV_KVP_POOL_AUTO, 2);
	assert_int_equal(handle(&prov, &req, &reply), HV_S_CONT);

	f.auto_error = -EIO;
	req_enum(&req, HV_KVP_POOL_AUTO, 0);
	assert_int_equal(handle(&prov, &req, &reply), HV_E_FAIL);

	/* No provider, or no function: failure, never a crash. */
	assert_int_equal(handle(NULL, &req, &reply), HV_E_FAIL);
	assert_int_equal(handle(&none, &req, &reply), HV_E_FAIL);

	/* The auto pool's file is not what ENUMERATE serves. */
	assert_int_equal(kvp_pool_set(pools->pool[HV_KVP_POOL_AUTO], "file", "record"), 0);
	f.auto_error = 0;
	req_enum(&req, HV_KVP_POOL_AUTO, 0);
	assert_int_equal(handle(&prov, &req, &reply), HV_S_OK);
	assert_string_equal(enum_key(&reply), "FullyQualifiedDomainName");
}

static void test_ip_info(void **state)
{
	fake f = { .ip_status = HV_S_OK };
	kvp_provider prov = { .userdata = &f, .get_ip_info = fake_get_ip,
			      .set_ip_info = fake_set_ip };
	kvp_provider none = { 0 };
	struct hv_kvp_msg req, reply;

	req_init(&req, HV_KVP_OP_GET_IP_INFO, 0);
	g_strlcpy((char *)req.body.kvp_ip_val.adapter_id, "00:15:5D:01:02:03",
		  sizeof(req.body.kvp_ip_val.adapter_id));
	req.body.kvp_ip_val.addr_family = HV_KVP_ADDR_FAMILY_IPV4;
	assert_int_equal(handle(&prov, &req, &reply), HV_S_OK);
	assert_int_equal(f.n_get_ip, 1);
	assert_string_equal(f.seen_adapter, "00:15:5D:01:02:03");
	assert_string_equal((const char *)reply.body.kvp_ip_val.ip_addr, "192.0.2.10");
	assert_int_equal(reply.body.kvp_ip_val.dhcp_enabled, 1);
	/* What the provider did not touch is the request's. */
	assert_int_equal(reply.body.kvp_ip_val.addr_family, HV_KVP_ADDR_FAMILY_IPV4);

	/* The provider's status is the reply's. */
	f.ip_status = HV_E_FAIL;
	assert_int_equal(handle(&prov, &req, &reply), HV_E_FAIL);

	/* An adapter id without a NUL is cut at the end of its field. */
	f.ip_status = HV_S_OK;
	memset(req.body.kvp_ip_val.adapter_id, 'A', sizeof(req.body.kvp_ip_val.adapter_id));
	assert_int_equal(handle(&prov, &req, &reply), HV_S_OK);
	assert_int_equal(strlen(f.seen_adapter), sizeof(req.body.kvp_ip_val.adapter_id) - 1);

	/* The pool byte does not matter for IP operations. */
	req_init(&req, HV_KVP_OP_SET_IP_INFO, 77);
	g_strlcpy((char *)req.body.kvp_ip_val.adapter_id, "{A1B2C3D4-0000-1111-2222-333344445555}",
		  sizeof(req.body.kvp_ip_val.adapter_id));
	f.ip_status = HV_GUID_NOTFOUND;
	assert_int_equal(handle(&prov, &req, &reply), HV_GUID_NOTFOUND);
	assert_int_equal(f.n_set_ip, 1);
	assert_string_equal(f.seen_adapter, "{A1B2C3D4-0000-1111-2222-333344445555}");

	/* No provider. */
	assert_int_equal(handle(NULL, &req, &reply), HV_E_FAIL);
	assert_int_equal(handle(&none, &req, &reply), HV_E_FAIL);
	req_init(&req, HV_KVP_OP_GET_IP_INFO, 0);
	assert_int_equal(handle(&none, &req, &reply), HV_E_FAIL);
}

static void test_sees_other_writers(void **state)
{
	g_autoptr(kvp_pool) cli = kvp_pool_new(kvp_pool_get_path(pools->pool[1]), 0644);
	struct hv_kvp_msg req, reply;

	/* Another process (hv-kvp, cloud-init) writes between requests. */
	assert_int_equal(kvp_pool_set(cli, "from-cli", "1"), 0);
	req_get(&req, 1, "from-cli");
	assert_int_equal(handle(NULL, &req, &reply), HV_S_OK);
	assert_string_equal(enum_value(&reply), "1");
	req_enum(&req, 1, 0);
	assert_int_equal(handle(NULL, &req, &reply), HV_S_OK);
	assert_string_equal(enum_key(&reply), "from-cli");
	assert_int_equal(kvp_pool_delete(cli, "from-cli"), 0);
	req_enum(&req, 1, 0);
	assert_int_equal(handle(NULL, &req, &reply), HV_S_CONT);
}

static void test_register_reply(void **state)
{
	struct hv_kvp_msg m;
	uint32_t version = 0;

	memset(&m, 0, sizeof(m));
	m.kvp_hdr.operation = HV_KVP_OP_REGISTER1;
	g_strlcpy((char *)m.body.kvp_register.version, "3.1", sizeof(m.body.kvp_register.version));
	assert_int_equal(kvp_parse_register_reply(&m, sizeof(m) - 1, &version), -EBADMSG);
	assert_int_equal(kvp_parse_register_reply(&m, 4, &version), -EBADMSG);
	assert_int_equal(kvp_parse_register_reply(NULL, sizeof(m), &version), -EBADMSG);
	m.kvp_hdr.operation = HV_KVP_OP_REGISTER;
	assert_int_equal(kvp_parse_register_reply(&m, sizeof(m), &version), -EPROTO);
	m.kvp_hdr.operation = HV_KVP_OP_REGISTER1;
	assert_int_equal(kvp_parse_register_reply(&m, sizeof(m), &version), 0);
	assert_int_equal(version, HV_KVP_OP_REGISTER1);
	assert_string_equal(kvp_daemon_get_driver_version(), "3.1");

	/* A version string without a NUL is cut, not overrun. */
	memset(m.body.kvp_register.version, '9', sizeof(m.body.kvp_register.version));
	assert_int_equal(kvp_parse_register_reply(&m, sizeof(m), &version), 0);
	assert_int_equal(strlen(kvp_daemon_get_driver_version()), 511);
}

/* Random messages: never a crash, only the statuses the handler defines, files stay whole. */
static void test_random_messages(void **state)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(20261123);
	struct hv_kvp_msg req, reply;

	for (int i = 0; i < 3000; i++) {
		uint8_t *b = (uint8_t *)&req;
		size_t len = sizeof(req);
		uint32_t st;

		/* Mostly zeros with a few random bytes and plausible sizes, as a fuzzer would. */
		memset(&req, 0, sizeof(req));
		for (int k = 0; k < 40; k++)
			b[g_rand_int_range(rand, 0, sizeof(req))] = (uint8_t)g_rand_int(rand);
		req.kvp_hdr.operation = (uint8_t)g_rand_int_range(rand, 0, 8);
		req.kvp_hdr.pool = (uint8_t)g_rand_int_range(rand, 0, 7);
		if (g_rand_boolean(rand)) {
			req.body.kvp_set.data.key[g_rand_int_range(rand, 1, 8)] = 0;
			req.body.kvp_set.data.key_size = (uint32_t)g_rand_int_range(rand, 0, 10);
			req.body.kvp_set.data.value_size = (uint32_t)g_rand_int_range(rand, 0, 10);
		}
		if (g_rand_int_range(rand, 0, 20) == 0)
			len = (size_t)g_rand_int_range(rand, 0, sizeof(req));

		if (!kvp_ops_handle(pools, NULL, &req, len, &reply))
			continue;

		st = status_of(&reply);
		assert_true(st == HV_S_OK || st == HV_S_CONT || st == HV_E_FAIL ||
			    st == HV_INVALIDARG);
	}

	for (int i = 0; i < _HV_KVP_POOL_COUNT; i++) {
		g_autoptr(kvp_pool) p = kvp_pool_new(kvp_pool_get_path(pools->pool[i]), 0644);

		assert_true(kvp_pool_refresh(p) >= 0);
		assert_int_equal(kvp_pool_n_invalid(p), 0);
		assert_int_equal(kvp_pool_trailing_bytes(p), 0);
		for (guint k = 0; k < kvp_pool_count(p); k++)
			assert_true(kvp_pool_get_at(p, k)->key[0] != '\0');
	}
}

static void test_op_names(void **state)
{
	assert_string_equal(kvp_op_to_string(HV_KVP_OP_GET), "GET");
	assert_string_equal(kvp_op_to_string(HV_KVP_OP_SET_IP_INFO), "SET_IP_INFO");
	assert_string_equal(kvp_op_to_string(HV_KVP_OP_REGISTER1), "REGISTER1");
	assert_string_equal(kvp_op_to_string(77), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ops_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_value_where_the_kernel_reads_it, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_enumerate_reply_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auto_pool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ip_info, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sees_other_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_messages, setup, teardown),
		cmocka_unit_test(test_register_reply),
		cmocka_unit_test(test_op_names),
	};

	hv_log_setup("test-kvp-ops", HV_LOG_TARGET_STDERR, false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
