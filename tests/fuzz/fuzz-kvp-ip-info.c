/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SET_IP_INFO from the host (hv_kvp/kvp-ifcfg.c): the input is a
 * struct hv_kvp_ipaddr_value (zero-filled if short; the address fields
 * hold the UTF-8 the driver converted), then a free string fed to the
 * helpers that vet names from outside (kvp_guid_normalize,
 * kvp_ifname_is_safe, kvp_mac_normalize).
 *
 * Checked: a refused request says why in one printable line; an accepted
 * one has at most 64 entries per list, addresses with sane prefixes, and
 * both rendered files (ifcfg-<if> and the NetworkManager keyfile) contain
 * only the header, section lines and KEY=value lines whose values are made
 * of address characters or the interface name and MAC we gave: nothing
 * the host sent reaches a file unparsed (no quote, blank, '$', '`',
 * newline or other shell character). A normalised GUID is 36 lower-case
 * hex digits and dashes, a normalised MAC upper-case hex pairs and ':', a
 * "safe" interface name has no '/' and is not "." or "..".
 */
#include <arpa/inet.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "kvp-ifcfg.h"

#define IFNAME "eth0"
#define MAC    "00:15:5D:00:00:01"

static bool only(const char *s, const char *allowed)
{
	return s[strspn(s, allowed)] == '\0';
}

static void check_rendered(const char *text)
{
	g_auto(GStrv) lines = NULL;

	HV_FUZZ_CHECK(g_str_has_prefix(text, KVP_IFCFG_HEADER));
	lines = g_strsplit(text + strlen(KVP_IFCFG_HEADER), "\n", -1);
	for (char **l = lines; *l; l++) {
		const char *eq;

		if (!**l || ((*l)[0] == '[' && g_str_has_suffix(*l, "]")))
			continue;
		eq = strchr(*l, '=');
		HV_FUZZ_CHECK(eq && eq > *l);
		HV_FUZZ_CHECK(only(eq + 1, "0123456789abcdefABCDEF.:/;,") ||
			      strcmp(eq + 1, IFNAME) == 0 || strcmp(eq + 1, "dhcp") == 0 ||
			      strcmp(eq + 1, "none") == 0 || strcmp(eq + 1, "auto") == 0 ||
			      strcmp(eq + 1, "manual") == 0 || strcmp(eq + 1, "disabled") == 0 ||
			      strcmp(eq + 1, "true") == 0 || strcmp(eq + 1, "false") == 0 ||
			      strcmp(eq + 1, "ethernet") == 0 ||
			      strcmp(eq + 1, "Hyper-V " IFNAME) == 0 ||
			      strcmp(eq + 1, "hyperv-" IFNAME) == 0);
		HV_FUZZ_CHECK(only(
		    *l, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-=.:/;, "));
	}
}

static void check_request(const kvp_ip_request *r)
{
	HV_FUZZ_CHECK(r->addrs->len <= KVP_IP_MAX_ENTRIES);
	HV_FUZZ_CHECK(r->gateways->len <= KVP_IP_MAX_ENTRIES);
	HV_FUZZ_CHECK(r->dns->len <= KVP_IP_MAX_ENTRIES);
	for (guint i = 0; i < r->addrs->len; i++) {
		const kvp_ip_addr *a = &g_array_index(r->addrs, kvp_ip_addr, i);

		HV_FUZZ_CHECK(a->ip.family == AF_INET || a->ip.family == AF_INET6);
		HV_FUZZ_CHECK(a->prefix <= (a->ip.family == AF_INET ? 32U : 128U));
	}
	for (guint i = 0; i < r->gateways->len; i++) {
		int f = g_array_index(r->gateways, kvp_ip, i).family;

		HV_FUZZ_CHECK(f == AF_INET || f == AF_INET6);
	}
	for (guint i = 0; i < r->dns->len; i++) {
		int f = g_array_index(r->dns, kvp_ip, i).family;

		HV_FUZZ_CHECK(f == AF_INET || f == AF_INET6);
	}
}

static void check_helpers(const char *s)
{
	char guid[37];
	g_autofree char *mac = NULL;

	if (kvp_guid_normalize(s, guid) == 0) {
		HV_FUZZ_CHECK(strlen(guid) == 36);
		HV_FUZZ_CHECK(only(guid, "0123456789abcdef-"));
	}

	if (kvp_ifname_is_safe(s)) {
		HV_FUZZ_CHECK(*s && !strchr(s, '/'));
		HV_FUZZ_CHECK(strcmp(s, ".") != 0 && strcmp(s, "..") != 0);
		HV_FUZZ_CHECK(only(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				      "0123456789_.:@+-"));
	}

	mac = kvp_mac_normalize(s);
	if (mac) {
		size_t n = strlen(mac);

		HV_FUZZ_CHECK(n >= 2 && (n + 1) % 3 == 0 && n <= 32 * 3 - 1);
		HV_FUZZ_CHECK(only(mac, "0123456789ABCDEF:"));
		for (size_t i = 2; i < n; i += 3)
			HV_FUZZ_CHECK(mac[i] == ':');
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree struct hv_kvp_ipaddr_value *req = g_new0(struct hv_kvp_ipaddr_value, 1);
	g_autoptr(kvp_ip_request) r = NULL;
	g_autofree char *error = NULL;
	g_autofree char *rest = NULL;
	size_t n = MIN(size, sizeof(*req));
	int k;

	memcpy(req, data, n);
	rest = g_strndup((const char *)data + n, size - n);
	check_helpers(rest);

	k = kvp_ip_request_parse(req, &r, &error);
	if (k < 0) {
		HV_FUZZ_CHECK(error && *error);
		HV_FUZZ_CHECK(g_utf8_validate(error, -1, NULL) && !strchr(error, '\n'));
		HV_FUZZ_CHECK(!r);
		return 0;
	}

	HV_FUZZ_CHECK(k == 0 && r);
	check_request(r);
	{
		g_autofree char *ifcfg = kvp_ifcfg_render(r, IFNAME, MAC);
		g_autofree char *nm = kvp_nm_keyfile_render(r, IFNAME, MAC);

		check_rendered(ifcfg);
		check_rendered(nm);
	}
	return 0;
}
