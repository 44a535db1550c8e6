/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kvp-net.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <glib-unix.h>
#include <glib/gstdio.h>

#include "hv-log.h"
#include "hv-status.h"
#include "kvp-auto.h"
#include "kvp-helper.h"
#include "kvp-ifcfg.h"
#include "kvp-netlink.h"

#ifndef HV_KVP_SCRIPTS_DIR
#define HV_KVP_SCRIPTS_DIR "/usr/libexec/hypervkvpd"
#endif
#ifndef HV_KVP_STATEDIR
#define HV_KVP_STATEDIR "/var/lib/hyperv"
#endif

enum helper_id {
	HELPER_DNS,
	HELPER_DHCP,
	HELPER_SET,
	_HELPER_COUNT,
};

static const char *const helper_names[_HELPER_COUNT] = {
    [HELPER_DNS] = "hv_get_dns_info",
    [HELPER_DHCP] = "hv_get_dhcp_info",
    [HELPER_SET] = "hv_set_ifconfig",
};

struct kvp_net {
	char *scripts_dir;
	char *ifcfg_dir;
	char *nm_dir;
	char *sysfs_root;
	unsigned int helper_timeout_ms;
	unsigned int set_helper_timeout_ms;
	size_t helper_output_max;
	bool missing_reported[_HELPER_COUNT];

	kvp_auto *autop;
	kvp_nl *nl;
	GSource *watch;
};

/* Bytes a string field can carry to the host: its UTF-16 units minus the NUL. */
#define HOST_FIELD_MAX(field) (KVP_IP_FIELD_SIZE(field) / 2 - 1)

static void on_network_change(void *userdata)
{
	kvp_net *n = userdata;

	if (n->autop)
		kvp_auto_network_changed(n->autop);
}

static gboolean on_netlink_ready(gint fd, GIOCondition cond, gpointer userdata)
{
	kvp_net *n = userdata;

	kvp_nl_sync(n->nl);
	return G_SOURCE_CONTINUE;
}

static const char *addr_string(const kvp_nl_addr *a, char *buf)
{
	return inet_ntop(a->family, a->addr, buf, INET6_ADDRSTRLEN);
}

/*
 * Joins whole entries with ';' into @buf (@size bytes, of which at most
 * @max are used, NUL excluded). Returns how many entries fit.
 */
static guint join_fit(GPtrArray *items, guint count, char *buf, size_t size, size_t max)
{
	size_t used = 0;
	guint n = 0;

	if (size == 0)
		return 0;
	max = MIN(max, size - 1);
	buf[0] = '\0';
	for (; n < MIN(count, items->len); n++) {
		const char *s = g_ptr_array_index(items, n);
		size_t len = strlen(s) + (n ? 1 : 0);

		if (used + len > max)
			break;
		if (n)
			buf[used++] = ';';
		memcpy(buf + used, s, strlen(s));
		used += strlen(s);
		buf[used] = '\0';
	}
	return n;
}

static void auto_addresses(void *userdata, int family, char *buf, size_t size)
{
	kvp_net *n = userdata;
	g_autoptr(GArray) addrs = NULL;
	g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func(g_free);
	char text[INET6_ADDRSTRLEN];
	int r;

	buf[0] = '\0';
	if (!n->nl)
		return;
	r = kvp_nl_refresh(n->nl);
	if (r < 0)
		hv_log_debug_errno(r, "Could not reload the network state: %m");
	addrs = kvp_nl_addresses(n->nl, 0, family);
	for (guint i = 0; i < addrs->len; i++)
		g_ptr_array_add(items,
				g_strdup(addr_string(&g_array_index(addrs, kvp_nl_addr, i), text)));
	/* What the host can see of a value: whole addresses only. */
	join_fit(items, items->len, buf, size, HV_KVP_HOST_MAX_VALUE_BYTES);
}

static int auto_record(void *userdata, uint32_t index, char *key, size_t key_size, char *value,
		       size_t value_size)
{
	kvp_net *n = userdata;

	return kvp_auto_record(n->autop, index, key, key_size, value, value_size);
}

/* Runs helper @id; NULL if it is missing (reported once), failed or timed out. */
static char *run_helper(kvp_net *n, enum helper_id id, const char *ifname, bool *ret_ok)
{
	g_autofree char *path = g_build_filename(n->scripts_dir, helper_names[id], NULL);
	const char *argv[] = {path, ifname, NULL};
	kvp_helper_result res;
	int r;

	*ret_ok = false;
	r = kvp_helper_run(argv, n->helper_timeout_ms, n->helper_output_max, &res);
	if (r == -ENOENT || r == -EACCES) {
		if (!n->missing_reported[id])
			hv_log_errno(
			    r,
			    "Helper %s is missing (%m): GET_IP_INFO answers without what it "
			    "would tell; reported once",
			    path);
		n->missing_reported[id] = true;
		return NULL;
	}
	if (r < 0) {
		hv_log_errno(r, "Could not run %s: %m", path);
		return NULL;
	}
	n->missing_reported[id] = false;
	if (res.timed_out)
		g_warning("%s %s did not finish within %u ms and was killed; its output so far "
			  "is used",
			  path, ifname, n->helper_timeout_ms);
	else if (!kvp_helper_succeeded(&res))
		g_message("%s %s ended with status 0x%x", path, ifname, (unsigned)res.wait_status);
	if (res.truncated)
		g_warning("%s %s printed more than %zu bytes; the rest was ignored", path, ifname,
			  n->helper_output_max);
	*ret_ok = true;
	return g_steal_pointer(&res.output);
}

/* hv_get_dns_info: one address per line; anything else on a line is ignored. */
static GPtrArray *dns_servers(kvp_net *n, const char *ifname)
{
	GPtrArray *items = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *out = NULL;
	g_auto(GStrv) lines = NULL;
	bool ok;

	out = run_helper(n, HELPER_DNS, ifname, &ok);
	if (!out)
		return items;
	lines = g_strsplit(out, "\n", -1);
	for (char **l = lines; *l; l++) {
		char text[INET6_ADDRSTRLEN];
		kvp_ip ip;

		g_strstrip(*l);
		if (!**l)
			continue;
		if (kvp_ip_parse(*l, &ip) < 0) {
			g_debug("hv_get_dns_info printed a line that is not an address; ignored");
			continue;
		}
		g_ptr_array_add(items, g_strdup(kvp_ip_to_string(&ip, text)));
	}
	return items;
}

static bool dhcp_enabled(kvp_net *n, const char *ifname)
{
	g_autofree char *out = NULL;
	bool ok;

	out = run_helper(n, HELPER_DHCP, ifname, &ok);
	/* Upstream: the first line begins with "Enabled". */
	return out && g_str_has_prefix(out, "Enabled");
}

/* "00:15:5D:0A:0B:0C" or "00-15-5d-0a-0b-0c" into bytes. */
static int parse_mac(const char *s, uint8_t *mac, size_t max, size_t *ret_len)
{
	size_t len = strlen(s);
	size_t n;

	if (len < 2 || (len + 1) % 3 != 0 || (len + 1) / 3 > max)
		return -EINVAL;
	n = (len + 1) / 3;
	for (size_t i = 0; i < n; i++) {
		const char *p = s + i * 3;

		if (!g_ascii_isxdigit(p[0]) || !g_ascii_isxdigit(p[1]))
			return -EINVAL;
		if (i + 1 < n && p[2] != ':' && p[2] != '-')
			return -EINVAL;
		if (i > 0 && p[-1] != s[2])
			return -EINVAL; /* one separator throughout */
		mac[i] = (uint8_t)(g_ascii_xdigit_value(p[0]) << 4 | g_ascii_xdigit_value(p[1]));
	}
	*ret_len = n;
	return 0;
}

/* A field from the host as a C string, or NULL if it is not terminated. */
static const char *host_string(const char *field, size_t size)
{
	return strnlen(field, size) < size ? field : NULL;
}

static uint32_t get_ip_info(void *userdata, const struct hv_kvp_ipaddr_value *req,
			    struct hv_kvp_ipaddr_value *reply)
{
	kvp_net *n = userdata;
	const char *adapter =
	    host_string(KVP_IP_FIELD_CONST(req, adapter_id), KVP_IP_FIELD_SIZE(adapter_id));
	g_autoptr(GArray) links = NULL;
	g_autoptr(GPtrArray) addrs = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) masks = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) gateways = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) dns = NULL;
	static const int families[] = {AF_INET, AF_INET6};
	char ifname[IF_NAMESIZE] = "";
	uint8_t mac[32];
	size_t mac_len;
	int ifindex = 0;
	guint fit;

	memset(reply, 0, sizeof(*reply));
	if (!adapter || parse_mac(adapter, mac, sizeof(mac), &mac_len) < 0) {
		g_autofree char *e = g_strescape(adapter ?: "(not terminated)", NULL);

		g_warning("GET_IP_INFO: the adapter id \"%.64s\" is not a MAC address", e);
		return HV_INVALIDARG;
	}
	/* The reply names the adapter as it was asked for. */
	kvp_utf8_copy(KVP_IP_FIELD(reply, adapter_id), HOST_FIELD_MAX(adapter_id) + 1, adapter);

	if (!n->nl) {
		g_warning("GET_IP_INFO for %s: no rtnetlink access", adapter);
		return HV_E_FAIL;
	}
	if (kvp_nl_refresh(n->nl) < 0)
		g_message("GET_IP_INFO for %s: could not reload the network state; answering "
			  "from notifications",
			  adapter);
	links = kvp_nl_links_by_mac(n->nl, mac, mac_len);
	if (links->len == 0) {
		g_message("GET_IP_INFO: no interface has the MAC address %s", adapter);
		return HV_E_FAIL;
	}

	/* A VF shares its MAC with the synthetic NIC: take the one with addresses. */
	ifindex = g_array_index(links, int, 0);
	for (guint i = 0; i < links->len; i++) {
		int idx = g_array_index(links, int, i);
		g_autoptr(GArray) v4 = kvp_nl_addresses(n->nl, idx, AF_INET);
		g_autoptr(GArray) v6 = kvp_nl_addresses(n->nl, idx, AF_INET6);

		if (v4->len || v6->len) {
			ifindex = idx;
			break;
		}
	}
	if (kvp_nl_link_name(n->nl, ifindex, ifname, sizeof(ifname)) < 0 ||
	    !kvp_ifname_is_safe(ifname)) {
		g_warning("GET_IP_INFO: interface %d (MAC %s) has a name helpers cannot be given",
			  ifindex, adapter);
		return HV_E_FAIL;
	}

	for (size_t f = 0; f < G_N_ELEMENTS(families); f++) {
		g_autoptr(GArray) a = kvp_nl_addresses(n->nl, ifindex, families[f]);
		g_autoptr(GArray) g = kvp_nl_default_gateways(n->nl, ifindex, families[f]);
		char text[INET6_ADDRSTRLEN];

		if (a->len)
			reply->addr_family |= families[f] == AF_INET ? HV_KVP_ADDR_FAMILY_IPV4
								     : HV_KVP_ADDR_FAMILY_IPV6;
		for (guint i = 0; i < a->len; i++) {
			const kvp_nl_addr *e = &g_array_index(a, kvp_nl_addr, i);

			g_ptr_array_add(addrs, g_strdup(addr_string(e, text)));
			if (families[f] == AF_INET)
				g_ptr_array_add(masks,
						g_strdup(kvp_ipv4_mask_string(e->prefix, text)));
			else
				g_ptr_array_add(masks, g_strdup_printf("/%u", e->prefix));
		}
		for (guint i = 0; i < g->len; i++)
			g_ptr_array_add(gateways, g_strdup(addr_string(
						      &g_array_index(g, kvp_nl_addr, i), text)));
	}

	/* Addresses and masks stay paired: as many of each as both fit. */
	fit = join_fit(addrs, addrs->len, KVP_IP_FIELD(reply, ip_addr), KVP_IP_FIELD_SIZE(ip_addr),
		       HOST_FIELD_MAX(ip_addr));
	fit = join_fit(masks, fit, KVP_IP_FIELD(reply, sub_net), KVP_IP_FIELD_SIZE(sub_net),
		       HOST_FIELD_MAX(sub_net));
	join_fit(addrs, fit, KVP_IP_FIELD(reply, ip_addr), KVP_IP_FIELD_SIZE(ip_addr),
		 HOST_FIELD_MAX(ip_addr));
	if (fit < addrs->len)
		g_message("GET_IP_INFO for %s: %u of %u addresses fit in the reply", ifname, fit,
			  addrs->len);
	join_fit(gateways, gateways->len, KVP_IP_FIELD(reply, gate_way),
		 KVP_IP_FIELD_SIZE(gate_way), HOST_FIELD_MAX(gate_way));

	dns = dns_servers(n, ifname);
	join_fit(dns, dns->len, KVP_IP_FIELD(reply, dns_addr), KVP_IP_FIELD_SIZE(dns_addr),
		 HOST_FIELD_MAX(dns_addr));
	reply->dhcp_enabled = dhcp_enabled(n, ifname) ? 1 : 0;
	return HV_S_OK;
}

static char *read_line(const char *path)
{
	g_autofree char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return NULL;
	text[strcspn(text, "\n")] = '\0';
	return g_steal_pointer(&text);
}

/* The interface whose VMBus device id is @guid (normalized), or NULL. */
static char *ifname_by_guid(kvp_net *n, const char *guid)
{
	g_autofree char *dir = g_build_filename(n->sysfs_root, "class", "net", NULL);
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *path = g_build_filename(dir, name, "device", "device_id", NULL);
		g_autofree char *id = read_line(path);
		char norm[37];

		if (!id || kvp_guid_normalize(id, norm) < 0 || strcmp(norm, guid) != 0)
			continue;
		return g_strdup(name);
	}
	return NULL;
}

static int write_file(const char *dir, const char *name, const char *contents, char **ret_path)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	g_autoptr(GError) error = NULL;

	if (g_mkdir_with_parents(dir, 0755) < 0)
		return hv_log_errno(-errno, "Could not create %s: %m", dir);
	if (!g_file_set_contents_full(path, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
				      &error)) {
		g_warning("Could not write %s: %s", path, error->message);
		return -EIO;
	}
	*ret_path = g_steal_pointer(&path);
	return 0;
}

static uint32_t set_ip_info(void *userdata, const struct hv_kvp_ipaddr_value *req)
{
	kvp_net *n = userdata;
	const char *adapter =
	    host_string(KVP_IP_FIELD_CONST(req, adapter_id), KVP_IP_FIELD_SIZE(adapter_id));
	g_autoptr(kvp_ip_request) r = NULL;
	g_autofree char *error = NULL;
	g_autofree char *ifname = NULL;
	g_autofree char *mac = NULL;
	g_autofree char *raw_mac = NULL;
	g_autofree char *mac_path = NULL;
	g_autofree char *ifcfg = NULL;
	g_autofree char *keyfile = NULL;
	g_autofree char *ifcfg_name = NULL;
	g_autofree char *nm_name = NULL;
	g_autofree char *ifcfg_path = NULL;
	g_autofree char *nm_path = NULL;
	g_autofree char *helper = NULL;
	const char *argv[4];
	kvp_helper_result res;
	char guid[37];
	int k;

	if (!adapter || kvp_guid_normalize(adapter, guid) < 0) {
		g_autofree char *e = g_strescape(adapter ?: "(not terminated)", NULL);

		g_warning("SET_IP_INFO refused: the adapter id \"%.64s\" is not a GUID", e);
		return HV_INVALIDARG;
	}
	ifname = ifname_by_guid(n, guid);
	if (!ifname) {
		g_warning("SET_IP_INFO: no interface has the device id %s", guid);
		return HV_GUID_NOTFOUND;
	}
	if (!kvp_ifname_is_safe(ifname)) {
		g_warning("SET_IP_INFO refused: interface name of %s is not usable in a file name",
			  guid);
		return HV_E_FAIL;
	}
	mac_path = g_build_filename(n->sysfs_root, "class", "net", ifname, "address", NULL);
	raw_mac = read_line(mac_path);
	mac = raw_mac ? kvp_mac_normalize(raw_mac) : NULL;
	if (!mac) {
		g_warning("SET_IP_INFO for %s: no usable MAC address in %s", ifname, mac_path);
		return HV_E_FAIL;
	}

	k = kvp_ip_request_parse(req, &r, &error);
	if (k < 0) {
		g_warning("SET_IP_INFO for %s refused, nothing written: %s", ifname, error);
		return HV_INVALIDARG;
	}

	{
		guint v4 = 0, v6 = 0;

		for (guint i = 0; i < r->gateways->len; i++)
			if (g_array_index(r->gateways, kvp_ip, i).family == AF_INET)
				v4++;
			else
				v6++;
		if (v4 > 1 || v6 > 1)
			g_message("SET_IP_INFO for %s: the keyfile takes the first gateway of each "
				  "family; all %u are in the ifcfg file",
				  ifname, r->gateways->len);
	}
	ifcfg = kvp_ifcfg_render(r, ifname, mac);
	keyfile = kvp_nm_keyfile_render(r, ifname, mac);
	ifcfg_name = g_strconcat("ifcfg-", ifname, NULL);
	nm_name = g_strconcat(ifname, ".nmconnection", NULL);
	if (write_file(n->ifcfg_dir, ifcfg_name, ifcfg, &ifcfg_path) < 0)
		return HV_E_FAIL;
	if (write_file(n->nm_dir, nm_name, keyfile, &nm_path) < 0) {
		g_unlink(ifcfg_path);
		return HV_E_FAIL;
	}

	helper = g_build_filename(n->scripts_dir, helper_names[HELPER_SET], NULL);
	argv[0] = helper;
	argv[1] = ifcfg_path;
	argv[2] = nm_path;
	argv[3] = NULL;
	k = kvp_helper_run(argv, n->set_helper_timeout_ms, n->helper_output_max, &res);
	if (k < 0) {
		hv_log_errno(k, "SET_IP_INFO for %s: could not run %s: %m", ifname, helper);
		return HV_E_FAIL;
	}
	if (!kvp_helper_succeeded(&res)) {
		if (res.timed_out)
			g_warning("SET_IP_INFO for %s: %s did not finish within %u ms and was "
				  "killed",
				  ifname, helper, n->set_helper_timeout_ms);
		else
			g_warning("SET_IP_INFO for %s: %s failed (status 0x%x)", ifname, helper,
				  (unsigned)res.wait_status);
		kvp_helper_result_clear(&res);
		return HV_E_FAIL;
	}
	kvp_helper_result_clear(&res);
	g_message("SET_IP_INFO: %s configured (%s, %u address%s) through %s", ifname,
		  r->dhcp ? "DHCP" : "static", r->addrs->len, r->addrs->len == 1 ? "" : "es",
		  helper);
	return HV_S_OK;
}

static void driver_version(void *userdata, const char *version)
{
	kvp_net_set_integration_version(userdata, version);
}

int kvp_net_provider_new(const kvp_net_config *cfg, kvp_provider *ret, kvp_net **ret_state)
{
	g_autoptr(kvp_net) n = g_new0(kvp_net, 1);
	kvp_auto_config ac = {
	    .integration_version = cfg->integration_version,
	    .os_release_paths = cfg->os_release_paths,
	    .legacy_release_paths = cfg->legacy_release_paths,
	    .no_fqdn_lookup = cfg->no_fqdn_lookup,
	};
	int r;

	n->scripts_dir = g_strdup(cfg->scripts_dir ?: HV_KVP_SCRIPTS_DIR);
	n->ifcfg_dir = g_strdup(cfg->ifcfg_dir ?: HV_KVP_STATEDIR);
	n->nm_dir = g_strdup(cfg->nm_dir ?: HV_KVP_STATEDIR);
	n->sysfs_root = g_strdup(cfg->sysfs_root ?: "/sys");
	n->helper_timeout_ms = cfg->helper_timeout_ms ?: KVP_NET_HELPER_TIMEOUT_MS;
	n->set_helper_timeout_ms = cfg->set_helper_timeout_ms ?: KVP_NET_SET_HELPER_TIMEOUT_MS;
	n->helper_output_max = cfg->helper_output_max ?: KVP_NET_HELPER_OUTPUT_MAX;
	if (!g_path_is_absolute(n->scripts_dir) || !g_path_is_absolute(n->ifcfg_dir) ||
	    !g_path_is_absolute(n->nm_dir) || !g_path_is_absolute(n->sysfs_root))
		return -EINVAL;

	r = kvp_nl_new(on_network_change, n, &n->nl);
	if (r < 0) {
		hv_log_errno(r, "No rtnetlink access (%m): no addresses in the auto pool, "
				"GET_IP_INFO fails");
		n->nl = NULL;
	} else {
		n->watch = g_unix_fd_source_new(kvp_nl_get_fd(n->nl), G_IO_IN);
		g_source_set_callback(n->watch, G_SOURCE_FUNC(on_netlink_ready), n, NULL);
		g_source_set_name(n->watch, "kvp-netlink");
		g_source_attach(n->watch, cfg->context ?: g_main_context_get_thread_default());
	}
	n->autop = kvp_auto_new(&ac, auto_addresses, n);

	*ret = (kvp_provider){
	    .userdata = n,
	    .auto_record = auto_record,
	    .get_ip_info = get_ip_info,
	    .set_ip_info = set_ip_info,
	    .driver_version = driver_version,
	};
	*ret_state = g_steal_pointer(&n);
	return 0;
}

void kvp_net_free(kvp_net *n)
{
	if (!n)
		return;
	if (n->watch) {
		g_source_destroy(n->watch);
		g_source_unref(n->watch);
	}
	kvp_auto_free(n->autop);
	kvp_nl_free(n->nl);
	g_free(n->scripts_dir);
	g_free(n->ifcfg_dir);
	g_free(n->nm_dir);
	g_free(n->sysfs_root);
	g_free(n);
}

void kvp_net_set_integration_version(kvp_net *n, const char *version)
{
	kvp_auto_set_integration_version(n->autop, version);
}

int kvp_net_sync(kvp_net *n)
{
	return n->nl ? kvp_nl_refresh(n->nl) : -ENOTCONN;
}

struct kvp_auto *kvp_net_get_auto(kvp_net *n)
{
	return n->autop;
}
