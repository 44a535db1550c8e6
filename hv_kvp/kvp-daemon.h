/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hv_kvp_daemon: creates the five pool files at start-up, owns the
 * transport and its loop source, and answers each request through
 * kvp_ops_handle() with the pools and the provider.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "hv-daemon.h"
#include "kvp-provider.h"

extern const hv_daemon_ops kvp_daemon_ops;

/*
 * The table the daemon answers the auto pool (2) and GET/SET_IP_INFO with.
 * Call before hv_daemon_main(); the table must outlive it. NULL (the
 * default) means none: those requests are answered HV_E_FAIL with a log
 * line naming what is missing.
 */
void kvp_daemon_set_provider(const kvp_provider *provider);

/*
 * For a provider that needs the configuration (helper paths, ...): @init
 * runs in the daemon's init, after the configuration is read and the pools
 * are created, before the driver is opened, and fills *ret; its failure
 * stops the daemon (-EINVAL: exit code 2, as a bad configuration; others:
 * 1). @fini (may be NULL) runs when the daemon is freed. Takes precedence
 * over kvp_daemon_set_provider(). Call before hv_daemon_main().
 */
typedef int (*kvp_provider_init_fn)(const hv_config *config, kvp_provider *ret);
typedef void (*kvp_provider_fini_fn)(kvp_provider *provider);
void kvp_daemon_set_provider_init(kvp_provider_init_fn init, kvp_provider_fini_fn fini);

/*
 * The version string the driver sent in its answer to our registration
 * (HV_DRV_VERSION, e.g. "3.1"), for the auto pool's
 * IntegrationServicesVersion; "" until the driver answered.
 */
const char *kvp_daemon_get_driver_version(void);

/*
 * Checks the driver's answer to KVP_OP_REGISTER1: a whole hv_kvp_msg whose
 * op is 100, with the version string in body.kvp_register.version (Linux
 * drivers/hv/hv_kvp.c, kvp_register()). Keeps the string for
 * kvp_daemon_get_driver_version(); *ret_version = 100.
 */
int kvp_parse_register_reply(const void *buf, size_t len, uint32_t *ret_version);
