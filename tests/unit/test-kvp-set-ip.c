/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SET_IP_INFO through the provider: adapter found by GUID in a fake sysfs,
 * files written into temp directories, hv_set_ifconfig (a recording fake)
 * run with their paths.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <glib.h>

#include "hv-status.h"
#include "kvp-net.h"
#include "kvp-net-test-util.h"

#define GUID "{f8615163-df3e-46c5-913f-f2d2f965ed0e}"

typedef struct fixture {
	char *root;
	char *scripts;
	char *ifcfg_dir;
	char *nm_dir;
	char *record; /* what the fake hv_set_ifconfig was given */
	kvp_net *net;
	kvp_provider p;
} fixture;

static void set_helper(fixture *f, const char *exit_code_or_body)
{
	g_autofree char *path = g_build_filename(f->scripts, "hv_set_ifconfig", NULL);
	g_autofree char *text = g_strdup_printf(
	    "#!/bin/sh\nprintf '%%s\\n' \"$#\" \"$@\" > '%s'\n%s\n", f->record, exit_code_or_body);

	kvp_test_write(path, text, 0755);
}

static int setup(void **state)
{
	fixture *f = g_new0(fixture, 1);
	g_autofree char *sysfs = NULL;
	g_autofree char *other = NULL;
	kvp_net_config cfg = {0};

	f->root = g_dir_make_tmp("kvp-set-XXXXXX", NULL);
	sysfs = g_build_filename(f->root, "sys", NULL);
	f->scripts = g_build_filename(f->root, "libexec", NULL);
	f->ifcfg_dir = g_build_filename(f->root, "state", NULL);
	f->nm_dir = g_build_filename(f->root, "state", "nm", NULL);
	f->record = g_build_filename(f->root, "helper-args", NULL);

	/* Two NICs; the second is the one the host means. */
	other = g_build_filename(sysfs, "class/net/eth0/device/device_id", NULL);
	kvp_test_write(other, "{00000000-0000-0000-0000-000000000001}\n", 0644);
	g_free(other);
	other = g_build_filename(sysfs, "class/net/eth0/address", NULL);
	kvp_test_write(other, "00:15:5d:00:00:01\n", 0644);
	g_free(other);
	other = g_build_filename(sysfs, "class/net/lo/address", NULL);
	kvp_test_write(other, "00:00:00:00:00:00\n", 0644);
	g_free(other);
	other = g_build_filename(sysfs, "class/net/eth1/device/device_id", NULL);
	kvp_test_write(other, GUID "\n", 0644);
	g_free(other);
	other = g_build_filename(sysfs, "class/net/eth1/address", NULL);
	kvp_test_write(other, "00:15:5d:aa:bb:cc\n", 0644);
	g_mkdir_with_parents(f->scripts, 0755);
	set_helper(f, "exit 0");

	cfg.scripts_dir = f->scripts;
	cfg.ifcfg_dir = f->ifcfg_dir;
	cfg.nm_dir = f->nm_dir;
	cfg.sysfs_root = sysfs;
	cfg.no_fqdn_lookup = true;
	cfg.set_helper_timeout_ms = 2000;
	assert_int_equal(kvp_net_provider_new(&cfg, &f->p, &f->net), 0);
	kvp_test_log_start();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	kvp_test_log_stop();
	kvp_net_free(f->net);
	kvp_test_rmtree(f->root);
	g_free(f->root);
	g_free(f->scripts);
	g_free(f->ifcfg_dir);
	g_free(f->nm_dir);
	g_free(f->record);
	g_free(f);
	return 0;
}

static void static_request(struct hv_kvp_ipaddr_value *req, const char *guid)
{
	memset(req, 0, sizeof(*req));
	kvp_test_set(req, adapter_id, guid);
	kvp_test_set(req, ip_addr, "192.168.10.5;2001:db8:1::5;192.168.20.5; fe80::1:2");
	kvp_test_set(req, sub_net, "255.255.255.0;64;255.255.0.0;/64");
	kvp_test_set(req, gate_way, "192.168.10.1;2001:db8:1::1;192.168.10.254");
	kvp_test_set(req, dns_addr, "192.168.10.53;2001:4860:4860::8888;8.8.8.8;");
}

/* The golden files are for eth0: the same content with eth1's names. */
static char *golden_for_eth1(const char *name)
{
	g_autofree char *text = kvp_test_golden(name);
	g_auto(GStrv) parts = NULL;

	assert_non_null(text);
	parts = g_strsplit(text, "=eth0\n", -1);
	return g_strjoinv("=eth1\n", parts);
}

static void test_set_writes_files_and_runs_helper(void **state)
{
	fixture *f = *state;
	struct hv_kvp_ipaddr_value req;
	g_autofree char *ifcfg_path = g_build_filename(f->ifcfg_dir, "ifcfg-eth1", NULL);
	g_autofree char *nm_path = g_build_filename(f->nm_dir, "eth1.nmconnection", NULL);
	g_autofree char *ifcfg = NULL;
	g_autofree char *nm = NULL;
	g_autofree char *want_ifcfg = golden_for_eth1("ifcfg-eth0-static.golden");
	g_autofree char *want_nm = golden_for_eth1("eth0-static.nmconnection.golden");
	g_autofree char *args = NULL;
	g_autofree char *want_args = NULL;
	g_autofree char *log = NULL;
	struct stat st;

	/* Upper case, as some hosts send it, matches sysfs's lower case. */
	static_request(&req, "{F8615163-DF3E-46C5-913F-F2D2F965ED0E}");
	assert_int_equal(f->p.set_ip_info(f->p.userdata, &req), HV_S_OK);

	ifcfg = kvp_test_read(ifcfg_path);
	nm = kvp_test_read(nm_path);
	assert_non_null(ifcfg);
	assert_non_null(nm);
	assert_string_equal(ifcfg, want_ifcfg);
	assert_string_equal(nm, want_nm);
	assert_int_equal(stat(nm_path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	args = kvp_test_read(f->record);
	want_args = g_strdup_printf("2\n%s\n%s\n", ifcfg_path, nm_path);
	assert_string_equal(args, want_args);

	/* Two IPv4 gateways: the keyfile keeps one, and says so. */
	log = kvp_test_log_text();
	assert_non_null(strstr(log, "eth1: the keyfile takes the first gateway of each family"));
	assert_non_null(strstr(log, "SET_IP_INFO: eth1 configured (static, 4 addresses)"));
}

static void test_dhcp_request(void **state)
{
	fixture *f = *state;
	struct hv_kvp_ipaddr_value req = {0};
	g_autofree char *ifcfg_path = g_build_filename(f->ifcfg_dir, "ifcfg-eth1", NULL);
	g_autofree char *ifcfg = NULL;
	g_autofree char *want = golden_for_eth1("ifcfg-eth0-dhcp.golden");

	kvp_test_set(&req, adapter_id, GUID);
	req.dhcp_enabled = 1;
	assert_int_equal(f->p.set_ip_info(f->p.userdata, &req), HV_S_OK);
	ifcfg = kvp_test_read(ifcfg_path);
	assert_string_equal(ifcfg, want);
}

static void test_unknown_guid(void **state)
{
	fixture *f = *state;
	struct hv_kvp_ipaddr_value req;
	g_autofree char *log = NULL;

	static_request(&req, "{11111111-2222-3333-4444-555555555555}");
	assert_int_equal(f->p.set_ip_info(f->p.userdata, &req), HV_GUID_NOTFOUND);
	assert_false(g_file_test(f->record, G_FILE_TEST_EXISTS));
	log = kvp_test_log_text();
	assert_non_null(strstr(log, "no interface has the device id"));
}

typedef struct bad_case {
	const char *what;
	const char *adapter;
	const char *ip_addr;
	const char *sub_net;
	const char *gate_way;
	const char *dns_addr;
	uint32_t status;
} bad_case;

static void test_malicious_requests_write_nothing(void **state)
{
	fixture *f = *state;
	static const bad_case cases[] = {
	    {"path in the GUID", "../../etc/passwd", "10.0.0.5", "24", "", "", HV_INVALIDARG},
	    {"shell in the GUID", "{$(reboot)}", "10.0.0.5", "24", "", "", HV_INVALIDARG},
	    {"newline in an address", GUID, "10.0.0.5\nDEVICE=x", "24", "", "", HV_INVALIDARG},
	    {"quote in dns", GUID, "10.0.0.5", "24", "", "8.8.8.8\"; rm -rf /", HV_INVALIDARG},
	    {"semicolon-separated command", GUID, "10.0.0.5", "24", "10.0.0.1;reboot", "",
	     HV_INVALIDARG},
	    {"bad mask", GUID, "10.0.0.5", "255.255.0.255", "", "", HV_INVALIDARG},
	    {"too long prefix", GUID, "2001:db8::1", "200", "", "", HV_INVALIDARG},
	    {"unpaired masks", GUID, "10.0.0.5;10.0.0.6", "24", "", "", HV_INVALIDARG},
	};
	g_autofree char *ifcfg_path = g_build_filename(f->ifcfg_dir, "ifcfg-eth1", NULL);
	g_autofree char *log = NULL;

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct hv_kvp_ipaddr_value req = {0};
		uint32_t status;

		kvp_test_set(&req, adapter_id, cases[i].adapter);
		kvp_test_set(&req, ip_addr, cases[i].ip_addr);
		kvp_test_set(&req, sub_net, cases[i].sub_net);
		kvp_test_set(&req, gate_way, cases[i].gate_way);
		kvp_test_set(&req, dns_addr, cases[i].dns_addr);
		status = f->p.set_ip_info(f->p.userdata, &req);
		if (status != cases[i].status)
			fail_msg("%s: status 0x%x", cases[i].what, status);
		if (g_file_test(ifcfg_path, G_FILE_TEST_EXISTS) ||
		    g_file_test(f->record, G_FILE_TEST_EXISTS))
			fail_msg("%s: something was written or run", cases[i].what);
	}

	/* Each refusal is one clear line. */
	log = kvp_test_log_text();
	assert_int_equal(kvp_test_count(log, "refused"), (int)G_N_ELEMENTS(cases));
	assert_non_null(strstr(log, "is not a GUID"));
	assert_non_null(strstr(log, "sub_net entry 1 is not a valid netmask"));
	/* Host data is escaped in the log, never written raw. */
	assert_null(strstr(log, "\nDEVICE=x"));
}

static void test_unterminated_adapter_id(void **state)
{
	fixture *f = *state;
	struct hv_kvp_ipaddr_value req = {0};

	memset(KVP_IP_FIELD(&req, adapter_id), 'a', KVP_IP_FIELD_SIZE(adapter_id));
	assert_int_equal(f->p.set_ip_info(f->p.userdata, &req), HV_INVALIDARG);
}

static void test_helper_fails_or_missing(void **state)
{
	fixture *f = *state;
	struct hv_kvp_ipaddr_value req;
	g_autofree char *helper = g_build_filename(f->scripts, "hv_set_ifconfig", NULL);
	g_autofree char *log = NULL;

	static_request(&req, GUID);
	set_helper(f, "exit 1");
	assert_int_equal(f->p.set_ip_info(f->p.userdata, &req), HV_E_FAIL);
	assert_true(g_file_test(f->record, G_FILE_TEST_EXISTS));

	set_helper(f, "sleep 30");
	assert_int_equal(f->p.set_ip_info(f->p.userdata, &req), HV_E_FAIL);

	g_unlink(helper);
	assert_int_equal(f->p.set_ip_info(f->p.userdata, &req), HV_E_FAIL);
	log = kvp_test_log_text();
	assert_non_null(strstr(log, "failed (status 0x100)"));
	assert_non_null(strstr(log, "did not finish within 2000 ms"));
	assert_non_null(strstr(log, "could not run"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_set_writes_files_and_runs_helper, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dhcp_request, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_guid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malicious_requests_write_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unterminated_adapter_id, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_helper_fails_or_missing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
