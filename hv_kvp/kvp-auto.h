/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The auto pool (2): ten generated records, in the upstream daemon's
 * enumerate order (Linux tools/hv/hv_kvp_daemon.c, enum key_index):
 *
 *   0 FullyQualifiedDomainName   3 NetworkAddressIPv6   6 OSMajorVersion   9 ProcessorArchitecture
 *   1 IntegrationServicesVersion 4 OSBuildNumber        7 OSMinorVersion
 *   2 NetworkAddressIPv4         5 OSName               8 OSVersion
 *
 * Nothing here blocks: the OS values are read once, the FQDN is resolved
 * (getaddrinfo with AI_CANONNAME, as upstream) in a background thread and
 * the last known value is served meanwhile (the host name before the
 * first answer), and it is resolved again on the next request after the
 * network changed or the host name did. The address lists come from the
 * caller (the netlink caches).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/utsname.h>

#include <glib.h>

enum kvp_auto_key {
	KVP_AUTO_FQDN = 0,
	KVP_AUTO_INTEGRATION_SERVICES_VERSION,
	KVP_AUTO_NETWORK_ADDRESS_IPV4,
	KVP_AUTO_NETWORK_ADDRESS_IPV6,
	KVP_AUTO_OS_BUILD_NUMBER,
	KVP_AUTO_OS_NAME,
	KVP_AUTO_OS_MAJOR_VERSION,
	KVP_AUTO_OS_MINOR_VERSION,
	KVP_AUTO_OS_VERSION,
	KVP_AUTO_PROCESSOR_ARCHITECTURE,
	_KVP_AUTO_KEY_COUNT,
};

/* Upstream's value until the driver told its version. */
#define KVP_AUTO_UNKNOWN_VERSION "Unknown version"

typedef struct kvp_auto_config {
	const char *integration_version;	 /* NULL: "Unknown version" */
	const char *const *os_release_paths;	 /* NULL: /etc/os-release, /usr/lib/os-release */
	const char *const *legacy_release_paths; /* NULL: /etc/SuSE-release, /etc/redhat-release */
	const struct utsname *uts;		 /* NULL: uname() */
	bool no_fqdn_lookup;			 /* serve the host name, never resolve */
} kvp_auto_config;

typedef struct kvp_auto kvp_auto;

/*
 * Fills @buf (@size bytes) with the addresses of @family of every
 * non-loopback interface, ';'-separated.
 */
typedef void (*kvp_auto_addresses_fn)(void *userdata, int family, char *buf, size_t size);

kvp_auto *kvp_auto_new(const kvp_auto_config *cfg, kvp_auto_addresses_fn addresses, void *userdata);
void kvp_auto_free(kvp_auto *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(kvp_auto, kvp_auto_free)

void kvp_auto_set_integration_version(kvp_auto *a, const char *version);
/* The network changed: the FQDN is resolved again on its next request. */
void kvp_auto_network_changed(kvp_auto *a);
/* Tests: waits up to @timeout_ms for a running resolution; true if none runs. */
bool kvp_auto_fqdn_settle(kvp_auto *a, unsigned int timeout_ms);

/* The key name of record @index, or NULL past the last one. */
const char *kvp_auto_key_name(uint32_t index);
/*
 * Record @index: 0, or -ENOENT past the last one. Strings are cut at a
 * UTF-8 character boundary to fit; address lists only between addresses.
 */
int kvp_auto_record(kvp_auto *a, uint32_t index, char *key, size_t key_size, char *value,
		    size_t value_size);
/* Copies @src into @dst (@size bytes), cut at a UTF-8 character boundary. */
void kvp_utf8_copy(char *dst, size_t size, const char *src);
