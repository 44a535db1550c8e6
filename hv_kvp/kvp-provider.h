/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the KVP daemon answers without a pool file: the auto pool (2) and
 * the IP configuration operations. kvp-auto.c and kvp-net.c implement it;
 * the request handler calls it through this table, so that the handler
 * stays pure and its tests can pass a table of their own.
 *
 * Strings are NUL-terminated UTF-8. In struct hv_kvp_ipaddr_value the kernel
 * has already converted the host's UTF-16 into UTF-8 bytes stored in the
 * u16 arrays (read them as char arrays of sizeof(field) bytes), and converts
 * the daemon's UTF-8 answer back the same way.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "hv-kvp.h"

typedef struct kvp_provider {
	void *userdata;
	/*
	 * Auto pool record @index (0-based, the upstream daemon's order):
	 * 0 on success, -ENOENT past the last record, other -errno on failure.
	 * Must not block: values that take time (FQDN) are computed in the
	 * background and the last known value is returned.
	 */
	int (*auto_record)(void *userdata, uint32_t index, char *key, size_t key_size,
			   char *value, size_t value_size);
	/*
	 * GET_IP_INFO: @req->adapter_id holds the adapter's MAC address, and
	 * @req->addr_family the family asked for. Fills @reply (adapter_id,
	 * addr_family, dhcp_enabled, ip_addr, sub_net, gate_way, dns_addr)
	 * and returns an HV_* status (HV_S_OK, HV_E_FAIL, ...).
	 */
	uint32_t (*get_ip_info)(void *userdata, const struct hv_kvp_ipaddr_value *req,
				struct hv_kvp_ipaddr_value *reply);
	/* SET_IP_INFO: @req->adapter_id holds the adapter's GUID. HV_* status. */
	uint32_t (*set_ip_info)(void *userdata, const struct hv_kvp_ipaddr_value *req);
	/*
	 * The driver answered our registration with this version string
	 * (again after every reconnect); for IntegrationServicesVersion.
	 * May be NULL.
	 */
	void (*driver_version)(void *userdata, const char *version);
} kvp_provider;
