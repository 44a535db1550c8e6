/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "hv-kvp.h"
#include "kvp-auto.h"

static const struct utsname uts = {
    .sysname = "Linux",
    .release = "5.15.0-1052-azure",
    .machine = "x86_64",
};

static int address_calls;

static void fake_addresses(void *userdata, int family, char *buf, size_t size)
{
	address_calls++;
	g_strlcpy(buf, family == AF_INET ? "10.0.0.4;192.168.1.20" : "fe80::215:5dff:fe01:203",
		  size);
}

static kvp_auto *new_auto(const char *version, bool lookup)
{
	g_autofree char *os = g_build_filename(HV_FIXTURES_DIR, "os-release", "ubuntu-22.04", NULL);
	const char *paths[] = {os, NULL};
	const char *none[] = {NULL};
	kvp_auto_config cfg = {
	    .integration_version = version,
	    .os_release_paths = paths,
	    .legacy_release_paths = none,
	    .uts = &uts,
	    .no_fqdn_lookup = !lookup,
	};

	/* The paths are read in kvp_auto_new(), not kept. */
	return kvp_auto_new(&cfg, fake_addresses, NULL);
}

static char *host_name(void)
{
	char buf[256] = "";

	assert_int_equal(gethostname(buf, sizeof(buf) - 1), 0);
	return g_strdup(buf);
}

static void test_order_and_values(void **state)
{
	g_autoptr(kvp_auto) a = new_auto("3.1", false);
	g_autofree char *host = host_name();
	const char *expected[][2] = {
	    {"FullyQualifiedDomainName", host},
	    {"IntegrationServicesVersion", "3.1"},
	    {"NetworkAddressIPv4", "10.0.0.4;192.168.1.20"},
	    {"NetworkAddressIPv6", "fe80::215:5dff:fe01:203"},
	    {"OSBuildNumber", "5.15.0-1052-azure"},
	    {"OSName", "Ubuntu"},
	    {"OSMajorVersion", "22.04"},
	    {"OSMinorVersion", ""},
	    {"OSVersion", "5.15.0"},
	    {"ProcessorArchitecture", "x86_64"},
	};
	char key[HV_KVP_MAX_KEY_SIZE];
	char value[HV_KVP_MAX_VALUE_SIZE];

	assert_int_equal(G_N_ELEMENTS(expected), _KVP_AUTO_KEY_COUNT);
	for (uint32_t i = 0; i < G_N_ELEMENTS(expected); i++) {
		memset(value, 'X', sizeof(value));
		assert_int_equal(kvp_auto_record(a, i, key, sizeof(key), value, sizeof(value)), 0);
		assert_string_equal(key, expected[i][0]);
		assert_string_equal(kvp_auto_key_name(i), expected[i][0]);
		assert_string_equal(value, expected[i][1]);
	}
	assert_int_equal(kvp_auto_record(a, 10, key, sizeof(key), value, sizeof(value)), -ENOENT);
	assert_int_equal(kvp_auto_record(a, UINT32_MAX, key, sizeof(key), value, sizeof(value)),
			 -ENOENT);
	assert_null(kvp_auto_key_name(10));
}

static void test_version_default_and_update(void **state)
{
	g_autoptr(kvp_auto) a = new_auto(NULL, false);
	char key[64], value[64];

	assert_int_equal(kvp_auto_record(a, KVP_AUTO_INTEGRATION_SERVICES_VERSION, key, sizeof(key),
					 value, sizeof(value)),
			 0);
	assert_string_equal(value, "Unknown version");
	kvp_auto_set_integration_version(a, "10.0.20348");
	assert_int_equal(kvp_auto_record(a, KVP_AUTO_INTEGRATION_SERVICES_VERSION, key, sizeof(key),
					 value, sizeof(value)),
			 0);
	assert_string_equal(value, "10.0.20348");
}

static void test_truncation(void **state)
{
	g_autoptr(kvp_auto) a = new_auto("3.1", false);
	char key[8], value[5];

	/* Cut to fit, always terminated. */
	assert_int_equal(
	    kvp_auto_record(a, KVP_AUTO_OS_NAME, key, sizeof(key), value, sizeof(value)), 0);
	assert_string_equal(key, "OSName");
	assert_string_equal(value, "Ubun");
	assert_int_equal(
	    kvp_auto_record(a, KVP_AUTO_OS_BUILD_NUMBER, key, sizeof(key), value, sizeof(value)),
	    0);
	assert_string_equal(key, "OSBuild");
	assert_string_equal(value, "5.15");
}

static void test_utf8_copy(void **state)
{
	char buf[6];

	/* "aé€" is 1 + 2 + 3 bytes: 5 bytes of room keep "aé", not half a "€". */
	kvp_utf8_copy(buf, sizeof(buf), "a\xc3\xa9\xe2\x82\xac");
	assert_string_equal(buf, "a\xc3\xa9");
	kvp_utf8_copy(buf, sizeof(buf), "ab\xffxy");
	assert_string_equal(buf, "ab");
	kvp_utf8_copy(buf, 1, "abc");
	assert_string_equal(buf, "");
}

static void test_fqdn_background(void **state)
{
	g_autoptr(kvp_auto) a = new_auto("3.1", true);
	g_autofree char *host = host_name();
	char key[64], value[HV_KVP_MAX_VALUE_SIZE];
	gint64 start;

	/* Whatever the resolver does, a request never waits for it. */
	start = g_get_monotonic_time();
	assert_int_equal(kvp_auto_record(a, KVP_AUTO_FQDN, key, sizeof(key), value, sizeof(value)),
			 0);
	assert_true(g_get_monotonic_time() - start < 100 * 1000);
	assert_true(value[0] != '\0');

	if (!kvp_auto_fqdn_settle(a, 10000))
		skip(); /* a resolver that does not answer in 10 s: nothing more to check */
	assert_int_equal(kvp_auto_record(a, KVP_AUTO_FQDN, key, sizeof(key), value, sizeof(value)),
			 0);
	/* The canonical name, or the host name when it does not resolve. */
	assert_true(value[0] != '\0');
	assert_true(g_utf8_validate(value, -1, NULL));

	/* A network change makes the next request start a new resolution. */
	kvp_auto_network_changed(a);
	start = g_get_monotonic_time();
	assert_int_equal(kvp_auto_record(a, KVP_AUTO_FQDN, key, sizeof(key), value, sizeof(value)),
			 0);
	assert_true(g_get_monotonic_time() - start < 100 * 1000);
	assert_true(kvp_auto_fqdn_settle(a, 10000));
	(void)host;
}

static void test_free_while_resolving(void **state)
{
	/* Freed right away: the resolver thread finishes on its own data. */
	kvp_auto *a = new_auto("3.1", true);

	kvp_auto_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_and_values),
	    cmocka_unit_test(test_version_default_and_update),
	    cmocka_unit_test(test_truncation),
	    cmocka_unit_test(test_utf8_copy),
	    cmocka_unit_test(test_fqdn_background),
	    cmocka_unit_test(test_free_while_resolving),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
