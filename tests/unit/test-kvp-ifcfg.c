/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <glib.h>

#include "kvp-ifcfg.h"
#include "kvp-net-test-util.h"

static void static_request(struct hv_kvp_ipaddr_value *req)
{
	memset(req, 0, sizeof(*req));
	kvp_test_set(req, ip_addr, "192.168.10.5;2001:db8:1::5;192.168.20.5; fe80::1:2");
	kvp_test_set(req, sub_net, "255.255.255.0;64;255.255.0.0;/64");
	kvp_test_set(req, gate_way, "192.168.10.1;2001:db8:1::1;192.168.10.254");
	kvp_test_set(req, dns_addr, "192.168.10.53;2001:4860:4860::8888;8.8.8.8;");
	req->dhcp_enabled = 0;
}

static void check_render(const struct hv_kvp_ipaddr_value *req, const char *ifcfg_golden,
			 const char *nm_golden)
{
	g_autoptr(kvp_ip_request) r = NULL;
	g_autofree char *error = NULL;
	g_autofree char *ifcfg = NULL;
	g_autofree char *nm = NULL;
	g_autofree char *want_ifcfg = kvp_test_golden(ifcfg_golden);
	g_autofree char *want_nm = kvp_test_golden(nm_golden);

	assert_non_null(want_ifcfg);
	assert_non_null(want_nm);
	assert_int_equal(kvp_ip_request_parse(req, &r, &error), 0);
	assert_null(error);
	ifcfg = kvp_ifcfg_render(r, "eth0", "00:15:5D:AA:BB:CC");
	nm = kvp_nm_keyfile_render(r, "eth0", "00:15:5D:AA:BB:CC");
	assert_string_equal(ifcfg, want_ifcfg);
	assert_string_equal(nm, want_nm);
}

static void test_render_static(void **state)
{
	struct hv_kvp_ipaddr_value req;

	static_request(&req);
	check_render(&req, "ifcfg-eth0-static.golden", "eth0-static.nmconnection.golden");
}

static void test_render_dhcp(void **state)
{
	struct hv_kvp_ipaddr_value req = {0};

	req.dhcp_enabled = 1;
	check_render(&req, "ifcfg-eth0-dhcp.golden", "eth0-dhcp.nmconnection.golden");
}

static void test_parse_values(void **state)
{
	struct hv_kvp_ipaddr_value req;
	g_autoptr(kvp_ip_request) r = NULL;
	g_autofree char *error = NULL;

	static_request(&req);
	/* Masks in every accepted spelling. */
	kvp_test_set(&req, sub_net, "24;ffff:ffff:ffff:ffff::;/16;48");
	assert_int_equal(kvp_ip_request_parse(&req, &r, &error), 0);
	assert_int_equal(r->addrs->len, 4);
	assert_int_equal(g_array_index(r->addrs, kvp_ip_addr, 0).prefix, 24);
	assert_int_equal(g_array_index(r->addrs, kvp_ip_addr, 1).prefix, 64);
	assert_int_equal(g_array_index(r->addrs, kvp_ip_addr, 2).prefix, 16);
	assert_int_equal(g_array_index(r->addrs, kvp_ip_addr, 3).prefix, 48);
	assert_int_equal(g_array_index(r->addrs, kvp_ip_addr, 3).ip.family, AF_INET6);
	assert_int_equal(r->gateways->len, 3);
	assert_int_equal(r->dns->len, 3);
	assert_false(r->dhcp);
}

typedef struct bad_case {
	const char *what;
	const char *ip_addr;
	const char *sub_net;
	const char *gate_way;
	const char *dns_addr;
	const char *error_has; /* part of the error text */
} bad_case;

static void test_rejects(void **state)
{
	static const bad_case cases[] = {
	    {"newline", "192.168.1.5\nDEVICE=evil", "255.255.255.0", "", "", "0x0a"},
	    {"double quote", "192.168.1.5\"", "255.255.255.0", "", "", "0x22"},
	    {"command substitution", "$(reboot)", "255.255.255.0", "", "", "0x24"},
	    {"backquote after separator", "192.168.1.5;`id`", "24;24", "", "", "0x60"},
	    {"single quote in dns", "", "", "", "8.8.8.8'", "0x27"},
	    {"scope id", "fe80::1%eth0", "64", "", "", "0x25"},
	    {"non-ASCII digits", "", "", "", "\xef\xbc\x98.8.8.8", "0xef"},
	    {"blank inside an entry", "1.2.3.4 5.6.7.8", "255.0.0.0", "", "", "not an address"},
	    {"octet out of range", "999.1.1.1", "255.0.0.0", "", "", "not an address"},
	    {"prefix inside the address", "10.0.0.5/24", "24", "", "", "not an address"},
	    {"unspecified IPv4", "0.0.0.0", "255.0.0.0", "", "", "not an address"},
	    {"unspecified IPv6", "::", "64", "", "", "not an address"},
	    {"non-contiguous mask", "10.0.0.5", "255.0.255.0", "", "", "not a valid netmask"},
	    {"IPv4 prefix 33", "10.0.0.5", "33", "", "", "not a valid netmask"},
	    {"IPv6 prefix 129", "2001:db8::5", "129", "", "", "not a valid prefix"},
	    {"prefix 0", "10.0.0.5", "0", "", "", "not a valid netmask"},
	    {"mask 0.0.0.0", "10.0.0.5", "0.0.0.0", "", "", "not a valid netmask"},
	    {"IPv6 mask for IPv4", "10.0.0.5", "ffff::", "", "", "not a valid netmask"},
	    {"IPv4 mask for IPv6", "2001:db8::5", "255.255.255.0", "", "", "not a valid prefix"},
	    {"fewer masks", "10.0.0.5;10.0.1.5", "24", "", "", "sub_net has 1"},
	    {"more masks", "10.0.0.5", "24;24", "", "", "sub_net has 2"},
	    {"word in gateway", "", "", "10.0.0.1;now", "", "0x6e"},
	    {"hex word in gateway", "", "", "10.0.0.1;beef", "", "not an address"},
	    {"hex word in dns", "", "", "", "dead::beef::1", "not an address"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct hv_kvp_ipaddr_value req = {0};
		kvp_ip_request *r = NULL;
		g_autofree char *error = NULL;

		kvp_test_set(&req, ip_addr, cases[i].ip_addr);
		kvp_test_set(&req, sub_net, cases[i].sub_net);
		kvp_test_set(&req, gate_way, cases[i].gate_way);
		kvp_test_set(&req, dns_addr, cases[i].dns_addr);
		if (kvp_ip_request_parse(&req, &r, &error) != -EINVAL)
			fail_msg("%s: accepted", cases[i].what);
		assert_null(r);
		assert_non_null(error);
		if (!strstr(error, cases[i].error_has))
			fail_msg("%s: error \"%s\" does not say \"%s\"", cases[i].what, error,
				 cases[i].error_has);
	}
}

static void test_reject_unterminated_and_too_many(void **state)
{
	struct hv_kvp_ipaddr_value req = {0};
	kvp_ip_request *r = NULL;
	g_autofree char *error = NULL;
	GString *many = g_string_new(NULL);

	memset(KVP_IP_FIELD(&req, gate_way), '1', KVP_IP_FIELD_SIZE(gate_way));
	assert_int_equal(kvp_ip_request_parse(&req, &r, &error), -EINVAL);
	assert_non_null(strstr(error, "gate_way is not NUL-terminated"));
	g_clear_pointer(&error, g_free);

	memset(&req, 0, sizeof(req));
	for (int i = 0; i < KVP_IP_MAX_ENTRIES + 1; i++)
		g_string_append_printf(many, "10.0.%d.1;", i);
	kvp_test_set(&req, dns_addr, many->str);
	assert_int_equal(kvp_ip_request_parse(&req, &r, &error), -EINVAL);
	assert_non_null(strstr(error, "more than 64"));
	g_string_free(many, TRUE);
}

static void test_guid(void **state)
{
	char buf[37];

	assert_int_equal(kvp_guid_normalize("{F8615163-DF3E-46C5-913F-F2D2F965ED0E}", buf), 0);
	assert_string_equal(buf, "f8615163-df3e-46c5-913f-f2d2f965ed0e");
	assert_int_equal(kvp_guid_normalize("f8615163-df3e-46c5-913f-f2d2f965ed0e", buf), 0);
	assert_string_equal(buf, "f8615163-df3e-46c5-913f-f2d2f965ed0e");
	assert_int_equal(kvp_guid_normalize("{f8615163-df3e-46c5-913f-f2d2f965ed0e", buf), -EINVAL);
	assert_int_equal(kvp_guid_normalize("../../../etc/passwd", buf), -EINVAL);
	assert_int_equal(kvp_guid_normalize("f8615163-df3e-46c5-913f-f2d2f965ed0g", buf), -EINVAL);
	assert_int_equal(kvp_guid_normalize("f8615163df3e-46c5-913f-f2d2f965ed0e0", buf), -EINVAL);
	assert_int_equal(kvp_guid_normalize("", buf), -EINVAL);
}

static void test_ifname_and_mac(void **state)
{
	static const char *const good[] = {"eth0", "enP1s2", "ens160.100", "br-lan", "v@x", "a:b"};
	static const char *const bad[] = {"",	 ".",	 "..",	"a/b",	"eth 0",	   "e$(x)",
					  "-rf", "a\nb", "a'b", "a\"b", "sixteen-chars-xx"};
	g_autofree char *mac = NULL;

	for (size_t i = 0; i < G_N_ELEMENTS(good); i++)
		if (!kvp_ifname_is_safe(good[i]))
			fail_msg("\"%s\" refused", good[i]);
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
		if (kvp_ifname_is_safe(bad[i]))
			fail_msg("\"%s\" accepted", bad[i]);

	mac = kvp_mac_normalize("00:15:5d:aa:bb:cc");
	assert_string_equal(mac, "00:15:5D:AA:BB:CC");
	assert_null(kvp_mac_normalize("00:15:5d:aa:bb:c"));
	assert_null(kvp_mac_normalize("00-15-5d-aa-bb-cc"));
	assert_null(kvp_mac_normalize("00:15:5d:aa:bb:cc\n"));
	assert_null(kvp_mac_normalize(""));
}

static void test_mask_string(void **state)
{
	char buf[INET_ADDRSTRLEN];

	assert_string_equal(kvp_ipv4_mask_string(24, buf), "255.255.255.0");
	assert_string_equal(kvp_ipv4_mask_string(25, buf), "255.255.255.128");
	assert_string_equal(kvp_ipv4_mask_string(32, buf), "255.255.255.255");
	assert_string_equal(kvp_ipv4_mask_string(1, buf), "128.0.0.0");
	assert_string_equal(kvp_ipv4_mask_string(0, buf), "0.0.0.0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_render_static),
	    cmocka_unit_test(test_render_dhcp),
	    cmocka_unit_test(test_parse_values),
	    cmocka_unit_test(test_rejects),
	    cmocka_unit_test(test_reject_unterminated_and_too_many),
	    cmocka_unit_test(test_guid),
	    cmocka_unit_test(test_ifname_and_mac),
	    cmocka_unit_test(test_mask_string),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
