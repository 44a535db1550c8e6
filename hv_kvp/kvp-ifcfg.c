/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kvp-ifcfg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int kvp_ip_parse(const char *s, kvp_ip *ret)
{
	kvp_ip ip = {0};

	if (inet_pton(AF_INET, s, &ip.v4) == 1)
		ip.family = AF_INET;
	else if (inet_pton(AF_INET6, s, &ip.v6) == 1)
		ip.family = AF_INET6;
	else
		return -EINVAL;
	*ret = ip;
	return 0;
}

const char *kvp_ip_to_string(const kvp_ip *ip, char *buf)
{
	return inet_ntop(ip->family,
			 ip->family == AF_INET ? (const void *)&ip->v4 : (const void *)&ip->v6, buf,
			 INET6_ADDRSTRLEN);
}

const char *kvp_ipv4_mask_string(unsigned int prefix, char *buf)
{
	struct in_addr a = {.s_addr = htonl(prefix ? ~0U << (32 - prefix) : 0)};

	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

/* Upstream's ifcfg form of an IPv6 address: 8 groups of 4 hex digits. */
static void ipv6_expanded(const struct in6_addr *a, char buf[40])
{
	char *p = buf;

	for (int i = 0; i < 16; i += 2)
		p += sprintf(p, "%s%02x%02x", i ? ":" : "", a->s6_addr[i], a->s6_addr[i + 1]);
}

/* Leading ones of a mask, or -1 if it is not contiguous. */
static int mask_prefix(const uint8_t *bytes, size_t n)
{
	int prefix = 0;
	bool zero = false;

	for (size_t i = 0; i < n; i++)
		for (int b = 7; b >= 0; b--) {
			bool one = bytes[i] & (1U << b);

			if (one && zero)
				return -1;
			if (one)
				prefix++;
			else
				zero = true;
		}
	return prefix;
}

static int parse_uint(const char *s, unsigned int max, unsigned int *ret)
{
	unsigned int v = 0;

	if (!*s || strlen(s) > 3)
		return -EINVAL;
	for (; *s; s++) {
		if (!g_ascii_isdigit(*s))
			return -EINVAL;
		v = v * 10 + (unsigned int)(*s - '0');
	}
	if (v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* A netmask or prefix for an address of @family: 1..32 or 1..128 bits. */
static int parse_prefix(const char *s, int family, unsigned int *ret)
{
	unsigned int max = family == AF_INET ? 32 : 128;
	unsigned int v;
	kvp_ip m;
	int p;

	if (*s == '/')
		s++;
	if (parse_uint(s, max, &v) == 0) {
		if (v == 0)
			return -EINVAL;
		*ret = v;
		return 0;
	}
	if (kvp_ip_parse(s, &m) < 0 || m.family != family)
		return -EINVAL;
	p = family == AF_INET ? mask_prefix((const uint8_t *)&m.v4, 4)
			      : mask_prefix(m.v6.s6_addr, 16);
	if (p <= 0)
		return -EINVAL;
	*ret = (unsigned int)p;
	return 0;
}

static bool ip_is_unspecified(const kvp_ip *ip)
{
	return ip->family == AF_INET ? ip->v4.s_addr == 0 : IN6_IS_ADDR_UNSPECIFIED(&ip->v6);
}

/* For log lines: a host string, escaped and shortened. */
static char *shown(const char *s)
{
	g_autofree char *cut = g_strndup(s, 64);

	return g_strescape(cut, NULL);
}

/*
 * One ';'-separated list (blanks around items ignored, empty items
 * skipped, as the host ends lists with ';'). Only characters that can be
 * part of an address, a mask or a prefix are accepted at all.
 */
static int split_field(const char *field, size_t size, const char *name, GPtrArray **ret,
		       char **ret_error)
{
	g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func(g_free);
	g_auto(GStrv) parts = NULL;
	size_t len = strnlen(field, size);

	if (len == size) {
		*ret_error = g_strdup_printf("%s is not NUL-terminated", name);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)field[i];

		if (!g_ascii_isxdigit(c) && !strchr(".:;/ \t", c)) {
			g_autofree char *s = shown(field);

			*ret_error = g_strdup_printf(
			    "%s holds a character that is not part of an address list "
			    "(0x%02x at %zu): \"%s\"",
			    name, c, i, s);
			return -EINVAL;
		}
	}

	parts = g_strsplit(field, ";", -1);
	for (char **p = parts; *p; p++) {
		g_strstrip(*p);
		if (!**p)
			continue;
		if (items->len >= KVP_IP_MAX_ENTRIES) {
			*ret_error = g_strdup_printf("%s has more than %d entries", name,
						     KVP_IP_MAX_ENTRIES);
			return -EINVAL;
		}
		g_ptr_array_add(items, g_strdup(*p));
	}
	*ret = g_steal_pointer(&items);
	return 0;
}

static int parse_ip_list(const char *field, size_t size, const char *name, GArray *out,
			 char **ret_error)
{
	g_autoptr(GPtrArray) items = NULL;
	int r;

	r = split_field(field, size, name, &items, ret_error);
	if (r < 0)
		return r;
	for (guint i = 0; i < items->len; i++) {
		const char *s = g_ptr_array_index(items, i);
		kvp_ip ip;

		if (kvp_ip_parse(s, &ip) < 0 || ip_is_unspecified(&ip)) {
			g_autofree char *e = shown(s);

			*ret_error = g_strdup_printf("%s entry %u is not an address: \"%s\"", name,
						     i + 1, e);
			return -EINVAL;
		}
		g_array_append_val(out, ip);
	}
	return 0;
}

int kvp_ip_request_parse(const struct hv_kvp_ipaddr_value *req, kvp_ip_request **ret,
			 char **ret_error)
{
	g_autoptr(kvp_ip_request) r = g_new0(kvp_ip_request, 1);
	g_autoptr(GPtrArray) addrs = NULL;
	g_autoptr(GPtrArray) masks = NULL;
	int k;

	r->addrs = g_array_new(FALSE, TRUE, sizeof(kvp_ip_addr));
	r->gateways = g_array_new(FALSE, TRUE, sizeof(kvp_ip));
	r->dns = g_array_new(FALSE, TRUE, sizeof(kvp_ip));
	r->dhcp = req->dhcp_enabled != 0;

	k = split_field(KVP_IP_FIELD_CONST(req, ip_addr), KVP_IP_FIELD_SIZE(ip_addr), "ip_addr",
			&addrs, ret_error);
	if (k < 0)
		return k;
	k = split_field(KVP_IP_FIELD_CONST(req, sub_net), KVP_IP_FIELD_SIZE(sub_net), "sub_net",
			&masks, ret_error);
	if (k < 0)
		return k;
	if (addrs->len != masks->len) {
		*ret_error = g_strdup_printf("ip_addr has %u entries but sub_net has %u",
					     addrs->len, masks->len);
		return -EINVAL;
	}
	for (guint i = 0; i < addrs->len; i++) {
		const char *a = g_ptr_array_index(addrs, i);
		const char *m = g_ptr_array_index(masks, i);
		kvp_ip_addr entry = {0};

		if (kvp_ip_parse(a, &entry.ip) < 0 || ip_is_unspecified(&entry.ip)) {
			g_autofree char *e = shown(a);

			*ret_error =
			    g_strdup_printf("ip_addr entry %u is not an address: \"%s\"", i + 1, e);
			return -EINVAL;
		}
		if (parse_prefix(m, entry.ip.family, &entry.prefix) < 0) {
			g_autofree char *e = shown(m);

			*ret_error = g_strdup_printf(
			    "sub_net entry %u is not a valid %s for an %s address: \"%s\"", i + 1,
			    entry.ip.family == AF_INET ? "netmask" : "prefix length",
			    entry.ip.family == AF_INET ? "IPv4" : "IPv6", e);
			return -EINVAL;
		}
		g_array_append_val(r->addrs, entry);
	}

	k = parse_ip_list(KVP_IP_FIELD_CONST(req, gate_way), KVP_IP_FIELD_SIZE(gate_way),
			  "gate_way", r->gateways, ret_error);
	if (k < 0)
		return k;
	k = parse_ip_list(KVP_IP_FIELD_CONST(req, dns_addr), KVP_IP_FIELD_SIZE(dns_addr),
			  "dns_addr", r->dns, ret_error);
	if (k < 0)
		return k;

	*ret = g_steal_pointer(&r);
	return 0;
}

void kvp_ip_request_free(kvp_ip_request *r)
{
	if (!r)
		return;
	if (r->addrs)
		g_array_unref(r->addrs);
	if (r->gateways)
		g_array_unref(r->gateways);
	if (r->dns)
		g_array_unref(r->dns);
	g_free(r);
}

int kvp_guid_normalize(const char *s, char buf[static 37])
{
	static const int dashes[] = {8, 13, 18, 23};
	size_t len = strlen(s);

	if (len == 38 && s[0] == '{' && s[37] == '}') {
		s++;
		len = 36;
	}
	if (len != 36)
		return -EINVAL;
	for (size_t i = 0; i < 36; i++) {
		bool dash = i == (size_t)dashes[0] || i == (size_t)dashes[1] ||
			    i == (size_t)dashes[2] || i == (size_t)dashes[3];

		if (dash ? s[i] != '-' : !g_ascii_isxdigit(s[i]))
			return -EINVAL;
		buf[i] = g_ascii_tolower(s[i]);
	}
	buf[36] = '\0';
	return 0;
}

bool kvp_ifname_is_safe(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 15 || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (const char *p = name; *p; p++)
		if (!g_ascii_isalnum(*p) && !strchr("_.:@+-", *p))
			return false;
	return name[0] != '-';
}

char *kvp_mac_normalize(const char *s)
{
	size_t len = strlen(s);

	/* "xx" plus ":xx" per further byte. */
	if (len < 2 || len > 32 * 3 - 1 || (len + 1) % 3 != 0)
		return NULL;
	for (size_t i = 0; i < len; i++)
		if (i % 3 == 2 ? s[i] != ':' : !g_ascii_isxdigit(s[i]))
			return NULL;
	return g_ascii_strup(s, -1);
}

static void add(GString *out, const char *key, const char *suffix, const char *value)
{
	g_string_append_printf(out, "%s%s=%s\n", key, suffix, value);
}

char *kvp_ifcfg_render(const kvp_ip_request *r, const char *ifname, const char *mac)
{
	GString *out = g_string_new(KVP_IFCFG_HEADER);
	char text[INET6_ADDRSTRLEN];
	char suffix[16];
	unsigned int n4 = 0, n6 = 0;

	add(out, "HWADDR", "", mac);
	add(out, "DEVICE", "", ifname);
	add(out, "BOOTPROTO", "", r->dhcp ? "dhcp" : "none");

	/* Upstream numbers IPv4 entries from 0, IPv6 ones as X, X_1, X_2... */
	for (guint i = 0; i < r->addrs->len; i++) {
		const kvp_ip_addr *a = &g_array_index(r->addrs, kvp_ip_addr, i);

		if (a->ip.family == AF_INET) {
			g_snprintf(suffix, sizeof(suffix), "%u", n4++);
			add(out, "IPADDR", suffix, kvp_ip_to_string(&a->ip, text));
		} else {
			char full[40];

			g_snprintf(suffix, sizeof(suffix), n6 ? "_%u" : "", n6);
			n6++;
			ipv6_expanded(&a->ip.v6, full);
			add(out, "IPV6ADDR", suffix, full);
		}
	}

	n4 = n6 = 0;
	for (guint i = 0; i < r->addrs->len; i++) {
		const kvp_ip_addr *a = &g_array_index(r->addrs, kvp_ip_addr, i);

		if (a->ip.family == AF_INET) {
			g_snprintf(suffix, sizeof(suffix), "%u", n4++);
			add(out, "NETMASK", suffix, kvp_ipv4_mask_string(a->prefix, text));
		} else {
			char plen[8];

			g_snprintf(suffix, sizeof(suffix), n6 ? "_%u" : "", n6);
			n6++;
			g_snprintf(plen, sizeof(plen), "%u", a->prefix);
			add(out, "IPV6NETMASK", suffix, plen);
		}
	}

	/* GATEWAY, GATEWAY1, GATEWAY2...; IPV6_DEFAULTGW, IPV6_DEFAULTGW_1... */
	n4 = n6 = 0;
	for (guint i = 0; i < r->gateways->len; i++) {
		const kvp_ip *g = &g_array_index(r->gateways, kvp_ip, i);

		if (g->family == AF_INET) {
			g_snprintf(suffix, sizeof(suffix), n4 ? "%u" : "", n4);
			n4++;
			add(out, "GATEWAY", suffix, kvp_ip_to_string(g, text));
		} else {
			char full[40];

			g_snprintf(suffix, sizeof(suffix), n6 ? "_%u" : "", n6);
			n6++;
			ipv6_expanded(&g->v6, full);
			add(out, "IPV6_DEFAULTGW", suffix, full);
		}
	}

	/* DNS1, DNS2... over both families. */
	for (guint i = 0; i < r->dns->len; i++) {
		const kvp_ip *d = &g_array_index(r->dns, kvp_ip, i);
		char full[40];

		g_snprintf(suffix, sizeof(suffix), "%u", i + 1);
		if (d->family == AF_INET) {
			add(out, "DNS", suffix, kvp_ip_to_string(d, text));
		} else {
			ipv6_expanded(&d->v6, full);
			add(out, "DNS", suffix, full);
		}
	}
	return g_string_free(out, FALSE);
}

static void nm_section(GString *out, const kvp_ip_request *r, int family)
{
	char text[INET6_ADDRSTRLEN];
	unsigned int n = 0;
	bool gateway = false;
	GString *dns = g_string_new(NULL);

	g_string_append_printf(out, "\n[%s]\n", family == AF_INET ? "ipv4" : "ipv6");
	for (guint i = 0; i < r->addrs->len; i++) {
		const kvp_ip_addr *a = &g_array_index(r->addrs, kvp_ip_addr, i);

		if (a->ip.family != family)
			continue;
		g_string_append_printf(out, "address%u=%s/%u\n", ++n,
				       kvp_ip_to_string(&a->ip, text), a->prefix);
	}

	/* dhcp_enabled is about IPv4 only; IPv6 falls back to SLAAC. */
	if (family == AF_INET)
		g_string_append_printf(out, "method=%s\n",
				       r->dhcp ? "auto"
				       : n     ? "manual"
					       : "disabled");
	else
		g_string_append_printf(out, "method=%s\n", n ? "manual" : "auto");

	/*
	 * A keyfile takes one gateway per family (upstream writes them all,
	 * comma-separated, which NetworkManager rejects): the first one. The
	 * others stay in the ifcfg file.
	 */
	for (guint i = 0; i < r->gateways->len && !gateway; i++) {
		const kvp_ip *g = &g_array_index(r->gateways, kvp_ip, i);

		if (g->family != family)
			continue;
		g_string_append_printf(out, "gateway=%s\n", kvp_ip_to_string(g, text));
		gateway = true;
	}

	/* A keyfile list: ';'-separated and -terminated, as NetworkManager writes it. */
	for (guint i = 0; i < r->dns->len; i++) {
		const kvp_ip *d = &g_array_index(r->dns, kvp_ip, i);

		if (d->family == family)
			g_string_append_printf(dns, "%s;", kvp_ip_to_string(d, text));
	}
	if (dns->len)
		g_string_append_printf(out, "dns=%s\n", dns->str);
	g_string_free(dns, TRUE);
}

char *kvp_nm_keyfile_render(const kvp_ip_request *r, const char *ifname, const char *mac)
{
	GString *out = g_string_new(KVP_IFCFG_HEADER);

	g_string_append_printf(out, "\n[connection]\ninterface-name=%s\n", ifname);
	g_string_append_printf(out, "\n[ethernet]\nmac-address=%s\n", mac);
	nm_section(out, r, AF_INET);
	nm_section(out, r, AF_INET6);
	return g_string_free(out, FALSE);
}
