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
