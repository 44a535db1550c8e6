/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hv_kvp_daemon: the pool daemon (kvp-daemon.c) with the auto pool and the
 * IP configuration operations of kvp-net.c as its provider.
 */
#include <errno.h>

#include "hv-config.h"
#include "hv-log.h"
#include "kvp-daemon.h"
#include "kvp-net.h"

#define KVP_GROUP "kvp"

static int net_provider_init(const hv_config *config, kvp_provider *ret)
{
	g_autofree char *scripts_dir = NULL, *ifcfg_dir = NULL, *error = NULL;
	kvp_net *state = NULL;
	bool fqdn_lookup = true;
	int r;

	r = hv_config_get_string(config, KVP_GROUP, "scripts-dir", NULL, &scripts_dir, &error);
	if (r >= 0)
		r = hv_config_get_string(config, KVP_GROUP, "ifcfg-dir", NULL, &ifcfg_dir, &error);
	if (r >= 0)
		r = hv_config_get_bool(config, KVP_GROUP, "fqdn-lookup", true, &fqdn_lookup, &error);
	if (r < 0) {
		g_critical("%s", error);
		return -EINVAL;
	}
	if ((scripts_dir && !g_path_is_absolute(scripts_dir)) ||
	    (ifcfg_dir && !g_path_is_absolute(ifcfg_dir))) {
		g_critical("[kvp] scripts-dir and ifcfg-dir must be absolute paths (%s)",
			   hv_config_origin(config, KVP_GROUP,
					    scripts_dir && !g_path_is_absolute(scripts_dir)
						    ? "scripts-dir"
						    : "ifcfg-dir"));
		return -EINVAL;
	}

	r = kvp_net_provider_new(
		&(kvp_net_config){
			.integration_version = NULL, /* set when the driver answers */
			.scripts_dir = scripts_dir,
			.ifcfg_dir = ifcfg_dir,
			.nm_dir = ifcfg_dir,
			.no_fqdn_lookup = !fqdn_lookup,
		},
		ret, &state);
	if (r < 0)
		hv_log_errno(r, "Failed to set up the auto pool and IP configuration: %m");
	return r;
}

static void net_provider_fini(kvp_provider *provider)
{
	kvp_net_free(provider->userdata);
	provider->userdata = NULL;
}

int main(int argc, char **argv)
{
	kvp_daemon_set_provider_init(net_provider_init, net_provider_fini);
	return hv_daemon_main(&kvp_daemon_ops, argc, argv);
}
