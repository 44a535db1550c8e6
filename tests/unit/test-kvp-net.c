/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GET_IP_INFO and the auto pool's address lists against real interfaces:
 * veth pairs with addresses, MACs and default routes in a network
 * namespace this test creates for itself (unshare(CLONE_NEWNET), so it
 * disappears with the process). Needs root; exits 77 otherwise. The
 * machine's own network is never touched.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "hv-status.h"
#include "kvp-auto.h"
#include "kvp-net.h"
#include "kvp-net-test-util.h"

#define MAC_UPPER "00:15:5D:01:02:03"
#define MAC_OTHER "00:15:5d:09:09:09"

static char *root;
static char *scripts;

/* `ip` in the fixture only, never in the code under test. */
static void ip(const char *args)
{
	g_autofree char *cmd = g_strconcat("ip ", args, NULL);
	g_auto(GStrv) argv = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *err = NULL;
	int status = 0;

	assert_true(g_shell_parse_argv(cmd, NULL, &argv, NULL));
	if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
			  NULL, NULL, &err, &status, &error) ||
	    !g_spawn_check_wait_status(status, NULL))
		fail_msg("%s failed: %s", cmd, err ? err : error ? error->message : "");
}

static void helper(const char *name, const char *body)
{
	g_autofree char *path = g_build_filename(scripts, name, NULL);
	g_autofree char *text = g_strdup_printf("#!/bin/sh\n%s\n", body);

	kvp_test_write(path, text, 0755);
}

static int group_setup(void **state)
{
	root = g_dir_make_tmp("kvp-net-XXXXXX", NULL);
	scripts = g_build_filename(root, "libexec", NULL);
	g_mkdir_with_parents(scripts, 0755);

	ip("link set lo up");
	/*
	 * kvpvf: the same MAC as kvp0 and no address, created first (a VF
	 * next to its synthetic NIC): GET_IP_INFO must answer for kvp0.
	 */
	ip("link add kvpvf address " MAC_UPPER " type veth peer name kvpvfp");
	ip("link add kvp0 address " MAC_UPPER " type veth peer name kvp0p");
	ip("link add kvp1 address " MAC_OTHER " type veth peer name kvp1p");
	/* No link-local addresses: the lists below are exactly what is added. */
	for (int i = 0; i < 6; i++) {
		static const char *const names[] = {"kvpvf", "kvpvfp", "kvp0",
						    "kvp0p", "kvp1",   "kvp1p"};
		g_autofree char *a = g_strdup_printf("link set %s addrgenmode none", names[i]);
		g_autofree char *b = g_strdup_printf("link set %s up", names[i]);

		ip(a);
		ip(b);
	}
	ip("addr add 192.0.2.10/24 dev kvp0");
	ip("addr add 198.51.100.7/25 dev kvp0");
	ip("-6 addr add 2001:db8:5::10/64 dev kvp0 nodad");
	ip("addr add 203.0.113.4/24 dev kvp1");
	ip("route add default via 192.0.2.1 dev kvp0");
	ip("-6 route add default via 2001:db8:5::1 dev kvp0");
	/* A default route through another interface is not kvp0's. */
	ip("route add default via 203.0.113.1 dev kvp1 metric 50");

	helper("hv_get_dns_info",
	       "echo 192.0.2.53\necho ' 2001:db8:5::53 '\necho 'nameserver junk'");
	helper("hv_get_dhcp_info", "[ \"$1\" = kvp0 ] && echo Enabled || echo Disabled");
	return 0;
}

static int group_teardown(void **state)
{
	/* The namespace goes away with the process; the files do not. */
	kvp_test_rmtree(root);
	g_free(root);
	g_free(scripts);
	return 0;
}

static kvp_net *new_net(const char *scripts_dir, unsigned int timeout_ms, kvp_provider *p)
{
	kvp_net_config cfg = {
	    .scripts_dir = scripts_dir,
	    .ifcfg_dir = root,
	    .nm_dir = root,
	    .no_fqdn_lookup = true,
	    .helper_timeout_ms = timeout_ms,
	};
	kvp_net *n = NULL;

	assert_int_equal(kvp_net_provider_new(&cfg, p, &n), 0);
	return n;
}

static uint32_t get(kvp_provider *p, const char *mac, struct hv_kvp_ipaddr_value *reply)
{
	struct hv_kvp_ipaddr_value req = {0};

	kvp_test_set(&req, adapter_id, mac);
	req.addr_family = HV_KVP_ADDR_FAMILY_IPV4;
	return p->get_ip_info(p->userdata, &req, reply);
}

static void test_get_ip_info(void **state)
{
	kvp_provider p;
	g_autoptr(kvp_net) n = new_net(scripts, 5000, &p);
	struct hv_kvp_ipaddr_value reply;

	assert_int_equal(get(&p, MAC_UPPER, &reply), HV_S_OK);
	assert_string_equal(kvp_test_get(&reply, adapter_id), MAC_UPPER);
	/* Every family whatever was asked for, as upstream answers. */
	assert_int_equal(reply.addr_family, HV_KVP_ADDR_FAMILY_IPV4 | HV_KVP_ADDR_FAMILY_IPV6);
	assert_string_equal(kvp_test_get(&reply, ip_addr),
			    "192.0.2.10;198.51.100.7;2001:db8:5::10");
	assert_string_equal(kvp_test_get(&reply, sub_net), "255.255.255.0;255.255.255.128;/64");
	assert_string_equal(kvp_test_get(&reply, gate_way), "192.0.2.1;2001:db8:5::1");
	assert_string_equal(kvp_test_get(&reply, dns_addr), "192.0.2.53;2001:db8:5::53");
	assert_int_equal(reply.dhcp_enabled, 1);
}

static void test_mac_spellings(void **state)
{
	static const char *const spellings[] = {"00:15:5d:01:02:03", "00-15-5D-01-02-03",
						"00-15-5d-01-02-03"};
	kvp_provider p;
	g_autoptr(kvp_net) n = new_net(scripts, 5000, &p);

	for (size_t i = 0; i < G_N_ELEMENTS(spellings); i++) {
		struct hv_kvp_ipaddr_value reply;

		assert_int_equal(get(&p, spellings[i], &reply), HV_S_OK);
		assert_string_equal(kvp_test_get(&reply, ip_addr),
				    "192.0.2.10;198.51.100.7;2001:db8:5::10");
	}
}

static void test_other_interface(void **state)
{
	kvp_provider p;
	g_autoptr(kvp_net) n = new_net(scripts, 5000, &p);
	struct hv_kvp_ipaddr_value reply;

	assert_int_equal(get(&p, "00:15:5D:09:09:09", &reply), HV_S_OK);
	assert_int_equal(reply.addr_family, HV_KVP_ADDR_FAMILY_IPV4);
	assert_string_equal(kvp_test_get(&reply, ip_addr), "203.0.113.4");
	assert_string_equal(kvp_test_get(&reply, sub_net), "255.255.255.0");
	assert_string_equal(kvp_test_get(&reply, gate_way), "203.0.113.1");
	assert_int_equal(reply.dhcp_enabled, 0);
}

static void test_unknown_and_bad_mac(void **state)
{
	static const char *const bad[] = {"00:15:5D:01:0", "00:15-5D:01:02:03", "zz:15:5D:01:02:03",
					  "00:15:5D:01:02:03; reboot", ""};
	kvp_provider p;
	g_autoptr(kvp_net) n = new_net(scripts, 5000, &p);
	struct hv_kvp_ipaddr_value reply;

	assert_int_equal(get(&p, "00:15:5D:FF:FF:FF", &reply), HV_E_FAIL);
	/* A well-formed but shorter address matches no Ethernet NIC. */
	assert_int_equal(get(&p, "00:15:5D:01:02", &reply), HV_E_FAIL);
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		if (get(&p, bad[i], &reply) != HV_INVALIDARG)
			fail_msg("\"%s\" not refused", bad[i]);
}

static void test_changes_are_seen(void **state)
{
	kvp_provider p;
	g_autoptr(kvp_net) n = new_net(scripts, 5000, &p);
	struct hv_kvp_ipaddr_value reply;
	char key[HV_KVP_MAX_KEY_SIZE], value[HV_KVP_MAX_VALUE_SIZE];

	assert_int_equal(p.auto_record(p.userdata, KVP_AUTO_NETWORK_ADDRESS_IPV4, key, sizeof(key),
				       value, sizeof(value)),
			 0);
	assert_string_equal(key, "NetworkAddressIPv4");
	/* Every interface but loopback. */
	assert_string_equal(value, "192.0.2.10;198.51.100.7;203.0.113.4");
	assert_int_equal(p.auto_record(p.userdata, KVP_AUTO_NETWORK_ADDRESS_IPV6, key, sizeof(key),
				       value, sizeof(value)),
			 0);
	assert_string_equal(value, "2001:db8:5::10");

	/*
	 * Changed after the caches were filled: the notifications bring it in,
	 * listed where the kernel lists it (a secondary address after the
	 * primaries; not appended after kvp1's as it arrived).
	 */
	ip("addr add 192.0.2.99/24 dev kvp0");
	ip("-6 route del default via 2001:db8:5::1 dev kvp0");
	assert_int_equal(get(&p, MAC_UPPER, &reply), HV_S_OK);
	assert_string_equal(kvp_test_get(&reply, ip_addr),
			    "192.0.2.10;198.51.100.7;192.0.2.99;2001:db8:5::10");
	assert_string_equal(kvp_test_get(&reply, gate_way), "192.0.2.1");
	assert_int_equal(p.auto_record(p.userdata, KVP_AUTO_NETWORK_ADDRESS_IPV4, key, sizeof(key),
				       value, sizeof(value)),
			 0);
	assert_string_equal(value, "192.0.2.10;198.51.100.7;192.0.2.99;203.0.113.4");

	ip("addr del 192.0.2.99/24 dev kvp0");
	ip("-6 route add default via 2001:db8:5::1 dev kvp0");
	assert_int_equal(get(&p, MAC_UPPER, &reply), HV_S_OK);
	assert_string_equal(kvp_test_get(&reply, ip_addr),
			    "192.0.2.10;198.51.100.7;2001:db8:5::10");
}

static void test_main_loop_watch(void **state)
{
	g_autoptr(GMainContext) ctx = g_main_context_new();
	kvp_net_config cfg = {.scripts_dir = scripts, .no_fqdn_lookup = true, .context = ctx};
	kvp_provider p;
	kvp_net *n = NULL;
	int dispatched = 0;

	assert_int_equal(kvp_net_provider_new(&cfg, &p, &n), 0);
	/* Nothing to do while nothing changes: no wake-up. */
	assert_false(g_main_context_iteration(ctx, FALSE));
	ip("addr add 192.0.2.77/24 dev kvp0");
	for (int i = 0; i < 100 && !dispatched; i++) {
		dispatched = g_main_context_iteration(ctx, FALSE);
		if (!dispatched)
			g_usleep(10000);
	}
	assert_true(dispatched);
	/* And quiet again once the notification is taken in. */
	while (g_main_context_iteration(ctx, FALSE))
		;
	assert_false(g_main_context_iteration(ctx, FALSE));
	ip("addr del 192.0.2.77/24 dev kvp0");
	kvp_net_free(n);
}

static void test_helpers_missing_reported_once(void **state)
{
	g_autofree char *empty = g_build_filename(root, "no-helpers", NULL);
	kvp_provider p;
	kvp_net *n;
	struct hv_kvp_ipaddr_value reply;
	g_autofree char *log = NULL;

	g_mkdir_with_parents(empty, 0755);
	n = new_net(empty, 5000, &p);
	kvp_test_log_start();
	for (int i = 0; i < 3; i++) {
		assert_int_equal(get(&p, MAC_UPPER, &reply), HV_S_OK);
		/* What netlink knows is still there. */
		assert_string_equal(kvp_test_get(&reply, ip_addr),
				    "192.0.2.10;198.51.100.7;2001:db8:5::10");
		assert_string_equal(kvp_test_get(&reply, gate_way), "192.0.2.1;2001:db8:5::1");
		assert_string_equal(kvp_test_get(&reply, dns_addr), "");
		assert_int_equal(reply.dhcp_enabled, 0);
	}
	log = kvp_test_log_text();
	kvp_test_log_stop();
	assert_int_equal(kvp_test_count(log, "hv_get_dns_info is missing"), 1);
	assert_int_equal(kvp_test_count(log, "hv_get_dhcp_info is missing"), 1);
	kvp_net_free(n);
}

static void test_helper_timeout(void **state)
{
	g_autofree char *slow = g_build_filename(root, "slow-helpers", NULL);
	g_autofree char *dns = g_build_filename(slow, "hv_get_dns_info", NULL);
	g_autofree char *dhcp = g_build_filename(slow, "hv_get_dhcp_info", NULL);
	kvp_provider p;
	kvp_net *n;
	struct hv_kvp_ipaddr_value reply;
	gint64 start;

	kvp_test_write(dns, "#!/bin/sh\necho 192.0.2.53\nexec sleep 30\n", 0755);
	kvp_test_write(dhcp, "#!/bin/sh\nexec sleep 30\n", 0755);
	n = new_net(slow, 200, &p);
	start = g_get_monotonic_time();
	assert_int_equal(get(&p, MAC_UPPER, &reply), HV_S_OK);
	assert_true(g_get_monotonic_time() - start < 2 * G_USEC_PER_SEC);
	/* What it printed before it was killed. */
	assert_string_equal(kvp_test_get(&reply, dns_addr), "192.0.2.53");
	assert_int_equal(reply.dhcp_enabled, 0);
	kvp_net_free(n);
}

static void test_reply_limits(void **state)
{
	kvp_provider p;
	g_autoptr(kvp_net) n = NULL;
	struct hv_kvp_ipaddr_value reply;
	const char *ips;
	const char *masks;
	size_t n_ips = 1, n_masks = 1;

	/* 120 more addresses: more than the 1,023 bytes the host can get. */
	for (int i = 0; i < 120; i++) {
		g_autofree char *a =
		    g_strdup_printf("-6 addr add 2001:db8:6::%x/64 dev kvp1 nodad", 0x1000 + i);

		ip(a);
	}
	n = new_net(scripts, 5000, &p);
	assert_int_equal(get(&p, "00:15:5D:09:09:09", &reply), HV_S_OK);
	ips = kvp_test_get(&reply, ip_addr);
	masks = kvp_test_get(&reply, sub_net);
	assert_true(strlen(ips) <= 1023);
	/* Whole addresses only, and as many masks as addresses. */
	for (const char *c = ips; *c; c++)
		n_ips += *c == ';';
	for (const char *c = masks; *c; c++)
		n_masks += *c == ';';
	assert_int_equal(n_ips, n_masks);
	assert_true(n_ips > 10 && n_ips < 121);
	{
		g_auto(GStrv) items = g_strsplit(ips, ";", -1);

		for (char **it = items; *it; it++) {
			kvp_ip parsed;

			if (kvp_ip_parse(*it, &parsed) < 0)
				fail_msg("\"%s\" is not a whole address", *it);
		}
	}
	for (int i = 0; i < 120; i++) {
		g_autofree char *a =
		    g_strdup_printf("-6 addr del 2001:db8:6::%x/64 dev kvp1", 0x1000 + i);

		ip(a);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get_ip_info),
	    cmocka_unit_test(test_mac_spellings),
	    cmocka_unit_test(test_other_interface),
	    cmocka_unit_test(test_unknown_and_bad_mac),
	    cmocka_unit_test(test_changes_are_seen),
	    cmocka_unit_test(test_main_loop_watch),
	    cmocka_unit_test(test_helpers_missing_reported_once),
	    cmocka_unit_test(test_helper_timeout),
	    cmocka_unit_test(test_reply_limits),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test-kvp-net: needs root for a network namespace; skipped\n");
		return 77;
	}
	/* Before any thread exists: from here on only the new namespace is seen. */
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "test-kvp-net: unshare(CLONE_NEWNET): %s; skipped\n",
			g_strerror(errno));
		return 77;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
