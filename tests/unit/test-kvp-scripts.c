/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The KVP helper scripts (packaging/kvp), each backend forced with
 * HV_KVP_BACKEND and pointed at a temp root with HV_KVP_ROOT; nothing is
 * activated (HV_KVP_NO_APPLY=1) and nothing outside the temp root is written.
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

#include "kvp-net-test-util.h"

static char *dir;

static int setup(void **state)
{
	dir = g_dir_make_tmp("kvp-scripts-XXXXXX", NULL);
	assert_non_null(dir);
	return 0;
}

static int teardown(void **state)
{
	kvp_test_rmtree(dir);
	g_clear_pointer(&dir, g_free);
	return 0;
}

/* Runs packaging/kvp/@script with @args under /bin/sh; returns the exit status. */
static int run(const char *script, const char *backend, const char *const *args, char **out)
{
	g_autofree char *path = g_build_filename(HV_KVP_SCRIPTS_SRCDIR, script, NULL);
	g_autofree char *root = g_build_filename(dir, "root", NULL);
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_auto(GStrv) env = g_get_environ();
	g_autoptr(GError) error = NULL;
	int status = 0;

	env = g_environ_setenv(env, "HV_KVP_ROOT", root, TRUE);
	env = g_environ_setenv(env, "HV_KVP_BACKEND", backend, TRUE);
	env = g_environ_setenv(env, "HV_KVP_NO_APPLY", "1", TRUE);
	g_ptr_array_add(argv, g_strdup("/bin/sh"));
	g_ptr_array_add(argv, g_strdup(path));
	for (const char *const *a = args; *a; a++)
		g_ptr_array_add(argv, g_strdup(*a));
	g_ptr_array_add(argv, NULL);

	if (!g_spawn_sync(NULL, (char **)argv->pdata, env, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
			  out, NULL, &status, &error))
		fail_msg("%s: %s", script, error->message);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static char *in_root(const char *rel)
{
	return g_build_filename(dir, "root", rel, NULL);
}

static void inputs(char **ifcfg, char **keyfile)
{
	g_autofree char *a = kvp_test_golden("ifcfg-eth0-static.golden");
	g_autofree char *b = kvp_test_golden("eth0-static.nmconnection.golden");

	*ifcfg = g_build_filename(dir, "ifcfg-eth0", NULL);
	*keyfile = g_build_filename(dir, "eth0.nmconnection", NULL);
	kvp_test_write(*ifcfg, a, 0600);
	kvp_test_write(*keyfile, b, 0600);
}

typedef struct backend_case {
	const char *backend;
	const char *written; /* under the root */
	const char *golden;
	mode_t mode;
} backend_case;

static void test_set_ifconfig_backends(void **state)
{
	static const backend_case cases[] = {
	    {"networkmanager", "etc/NetworkManager/system-connections/eth0.nmconnection",
	     "scripts/networkmanager.golden", 0600},
	    {"networkd", "etc/systemd/network/10-hyperv-kvp-eth0.network",
	     "scripts/networkd.golden", 0644},
	    {"ifupdown", "etc/network/interfaces.d/hyperv-kvp-eth0", "scripts/ifupdown.golden",
	     0644},
	    {"ifcfg", "etc/sysconfig/network-scripts/ifcfg-eth0", "scripts/ifcfg.golden", 0644},
	};
	g_autofree char *ifcfg = NULL;
	g_autofree char *keyfile = NULL;

	inputs(&ifcfg, &keyfile);
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		const char *args[] = {ifcfg, keyfile, NULL};
		g_autofree char *written = in_root(cases[i].written);
		g_autofree char *got = NULL;
		g_autofree char *want = kvp_test_golden(cases[i].golden);
		struct stat st;

		assert_non_null(want);
		if (run("hv_set_ifconfig", cases[i].backend, args, NULL) != 0)
			fail_msg("%s: failed", cases[i].backend);
		got = kvp_test_read(written);
		if (!got || strcmp(got, want) != 0)
			fail_msg("%s: %s is\n%s", cases[i].backend, cases[i].written,
				 got ? got : "(missing)");
		assert_int_equal(stat(written, &st), 0);
		assert_int_equal(st.st_mode & 07777, cases[i].mode);
	}
}

static void test_set_ifconfig_refuses_tampered_input(void **state)
{
	static const char *const lines[] = {
	    "IPADDR0=$(reboot)\n", "DEVICE=eth0;reboot\n", "DNS1=\"8.8.8.8\"\n",
	    "DEVICE=../../etc\n",  "SOMETHING=else\n",
	};
	g_autofree char *ifcfg = g_build_filename(dir, "ifcfg-eth0", NULL);
	g_autofree char *keyfile = g_build_filename(dir, "eth0.nmconnection", NULL);
	g_autofree char *target = in_root("etc/systemd/network/10-hyperv-kvp-eth0.network");
	const char *args[] = {ifcfg, keyfile, NULL};
	const char *few[] = {ifcfg, NULL};

	kvp_test_write(keyfile, "[connection]\n", 0600);
	for (size_t i = 0; i < G_N_ELEMENTS(lines); i++) {
		g_autofree char *text =
		    g_strconcat("HWADDR=00:15:5D:AA:BB:CC\nDEVICE=eth0\n", lines[i], NULL);

		kvp_test_write(ifcfg, text, 0600);
		if (run("hv_set_ifconfig", "networkd", args, NULL) != 1)
			fail_msg("accepted: %s", lines[i]);
		assert_false(g_file_test(target, G_FILE_TEST_EXISTS));
	}
	assert_int_equal(run("hv_set_ifconfig", "networkd", few, NULL), 1);
	/* An address without its mask. */
	kvp_test_write(ifcfg, "HWADDR=00:15:5D:AA:BB:CC\nDEVICE=eth0\nIPADDR0=10.0.0.5\n", 0600);
	assert_int_equal(run("hv_set_ifconfig", "networkd", args, NULL), 1);
	assert_false(g_file_test(target, G_FILE_TEST_EXISTS));
}

static void test_dns_info_resolv_conf(void **state)
{
	g_autofree char *conf = in_root("etc/resolv.conf");
	g_autofree char *stub = in_root("run/systemd/resolve/resolv.conf");
	g_autofree char *out = NULL;
	const char *args[] = {"eth0", NULL};
	const char *bad[] = {"-rf", NULL};

	kvp_test_write(conf,
		       "# comment\nsearch example.com\nnameserver 192.0.2.53\n"
		       "nameserver   2001:db8::53\noptions edns0\n",
		       0644);
	assert_int_equal(run("hv_get_dns_info", "resolvconf", args, &out), 0);
	assert_string_equal(out, "192.0.2.53\n2001:db8::53\n");
	g_clear_pointer(&out, g_free);

	/* systemd-resolved's list of real servers wins over its stub. */
	kvp_test_write(stub, "nameserver 198.51.100.1\n", 0644);
	assert_int_equal(run("hv_get_dns_info", "resolvconf", args, &out), 0);
	assert_string_equal(out, "198.51.100.1\n");
	g_clear_pointer(&out, g_free);

	assert_int_equal(run("hv_get_dns_info", "resolvconf", bad, &out), 2);
	assert_string_equal(out, "");
}

typedef struct dhcp_case {
	const char *backend;
	const char *ifname;
	const char *answer;
} dhcp_case;

static void test_dhcp_info(void **state)
{
	static const dhcp_case cases[] = {
	    {"ifupdown", "eth0", "Enabled\n"},	{"ifupdown", "eth1", "Disabled\n"},
	    {"ifupdown", "eth9", "Disabled\n"}, {"ifcfg", "eth0", "Enabled\n"},
	    {"ifcfg", "eth1", "Disabled\n"},	{"networkd", "eth0", "Enabled\n"},
	    {"networkd", "eth1", "Disabled\n"}, {"networkd", "eth9", "Disabled\n"},
	};
	g_autofree char *interfaces = in_root("etc/network/interfaces");
	g_autofree char *extra = in_root("etc/network/interfaces.d/eth1");
	g_autofree char *ifcfg0 = in_root("etc/sysconfig/network-scripts/ifcfg-eth0");
	g_autofree char *ifcfg1 = in_root("etc/sysconfig/network-scripts/ifcfg-eth1");
	g_autofree char *idx0 = in_root("sys/class/net/eth0/ifindex");
	g_autofree char *idx1 = in_root("sys/class/net/eth1/ifindex");
	g_autofree char *link0 = in_root("run/systemd/netif/links/2");
	g_autofree char *link1 = in_root("run/systemd/netif/links/3");
	g_autofree char *lease0 = in_root("run/systemd/netif/leases/2");
	const char *bad[] = {"eth0; reboot", NULL};
	g_autofree char *out = NULL;

	kvp_test_write(interfaces,
		       "source /etc/network/interfaces.d/*\nauto eth0\n"
		       "iface eth0 inet dhcp\niface eth0 inet6 auto\n",
		       0644);
	kvp_test_write(extra, "iface eth1 inet static\n\taddress 10.0.0.5/24\n", 0644);
	kvp_test_write(ifcfg0, "DEVICE=eth0\nBOOTPROTO=\"dhcp\"\n", 0644);
	kvp_test_write(ifcfg1, "DEVICE=eth1\nBOOTPROTO=none\n", 0644);
	kvp_test_write(idx0, "2\n", 0644);
	kvp_test_write(idx1, "3\n", 0644);
	kvp_test_write(link0, "ADMIN_STATE=configured\nOPER_STATE=routable\n", 0644);
	kvp_test_write(link1, "ADMIN_STATE=configured\nOPER_STATE=routable\n", 0644);
	kvp_test_write(lease0, "ADDRESS=10.0.0.4\n", 0644);

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		const char *args[] = {cases[i].ifname, NULL};

		assert_int_equal(run("hv_get_dhcp_info", cases[i].backend, args, &out), 0);
		if (strcmp(out, cases[i].answer) != 0)
			fail_msg("%s %s: %s", cases[i].backend, cases[i].ifname, out);
		g_clear_pointer(&out, g_free);
	}
	assert_int_equal(run("hv_get_dhcp_info", "ifupdown", bad, &out), 2);
	assert_string_equal(out, "Disabled\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_set_ifconfig_backends, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_set_ifconfig_refuses_tampered_input, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_dns_info_resolv_conf, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dhcp_info, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
