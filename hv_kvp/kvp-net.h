/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The KVP daemon's provider (kvp-provider.h): the auto pool (kvp-auto.h),
 * GET_IP_INFO and SET_IP_INFO.
 *
 * GET_IP_INFO (facts from Linux tools/hv/hv_kvp_daemon.c, kvp_mac_to_ip()
 * and kvp_get_ip_info(), and drivers/hv/hv_kvp.c):
 *   - the adapter is the interface whose MAC address is adapter_id (upstream
 *     compares with the upper-case "00:15:5D:..." form; here any case, ':'
 *     or '-' between bytes). Of several (a VF next to its synthetic NIC),
 *     the first one with an address wins.
 *   - the family asked for is ignored, as upstream does: every IPv4, then
 *     every IPv6 address of the interface, ';'-separated, with sub_net
 *     entries in the same order (IPv4: dotted netmask, IPv6: "/<prefix>");
 *     addr_family is the set of families found (1 IPv4, 2 IPv6).
 *   - gate_way: the gateways of the default routes through the interface,
 *     IPv4 then IPv6 (libnl-route, main table; upstream: `ip route | awk`).
 *   - dns_addr: the lines printed by hv_get_dns_info <if> that are
 *     addresses; dhcp_enabled: hv_get_dhcp_info <if> printed "Enabled".
 *     A missing helper is logged once and its part left empty.
 *   - lists end between entries, never inside one, and within what the
 *     kernel can pass on as UTF-16 (units - 1 bytes per field).
 *   - no interface with that MAC: HV_E_FAIL; adapter_id not a MAC: HV_INVALIDARG.
 *
 * SET_IP_INFO (kvp_set_ip_info()): the interface whose
 * <sysfs>/class/net/<if>/device/device_id is adapter_id (HV_GUID_NOTFOUND
 * if none); the request checked (kvp-ifcfg.h; HV_INVALIDARG and nothing
 * written if anything is wrong); <ifcfg_dir>/ifcfg-<if> and
 * <nm_dir>/<if>.nmconnection written (mode 0600, temp file + rename); then
 * hv_set_ifconfig <ifcfg file> <keyfile> run. HV_E_FAIL if writing or the
 * helper fails.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#include "kvp-provider.h"

#define KVP_NET_HELPER_TIMEOUT_MS 5000U
/* The driver gives up on a request after 30 s (HV_UTIL_TIMEOUT). */
#define KVP_NET_SET_HELPER_TIMEOUT_MS 25000U
#define KVP_NET_HELPER_OUTPUT_MAX     (16U * 1024U)

typedef struct kvp_net_config {
	/* The driver's version string (REGISTER1 answer); NULL: "Unknown version". */
	const char *integration_version;
	/* os-release files in order, NULL-terminated; NULL: /etc, then /usr/lib. */
	const char *const *os_release_paths;
	/* Pre-os-release files; NULL: /etc/SuSE-release, /etc/redhat-release. */
	const char *const *legacy_release_paths;
	/* hv_get_dns_info, hv_get_dhcp_info, hv_set_ifconfig; NULL: libexecdir/hypervkvpd. */
	const char *scripts_dir;
	/* Where ifcfg-<if> and <if>.nmconnection go; NULL: /var/lib/hyperv (upstream). */
	const char *ifcfg_dir;
	const char *nm_dir;
	/* NULL: /sys. */
	const char *sysfs_root;
	/* 0: the defaults above. */
	unsigned int helper_timeout_ms;
	unsigned int set_helper_timeout_ms;
	size_t helper_output_max;
	/* Serve the host name as FullyQualifiedDomainName, never resolve it. */
	bool no_fqdn_lookup;
	/*
	 * Where the netlink notification watch runs (NULL: the thread-default
	 * context). Requests also take in pending notifications themselves.
	 */
	GMainContext *context;
} kvp_net_config;

typedef struct kvp_net kvp_net;

/*
 * Fills @ret with the provider (userdata = *ret_state). Fails only on
 * memory or configuration errors: without rtnetlink (logged), the
 * address keys are empty and GET_IP_INFO answers HV_E_FAIL.
 */
int kvp_net_provider_new(const kvp_net_config *cfg, kvp_provider *ret, kvp_net **ret_state);
void kvp_net_free(kvp_net *n);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(kvp_net, kvp_net_free)

/* The driver's version string arrived (or changed after a reconnect). */
void kvp_net_set_integration_version(kvp_net *n, const char *version);
/* Takes in pending rtnetlink notifications now (tests; the main loop does it too). */
int kvp_net_sync(kvp_net *n);
/* Tests: the auto pool part. */
struct kvp_auto *kvp_net_get_auto(kvp_net *n);
