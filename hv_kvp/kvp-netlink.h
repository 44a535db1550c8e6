/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Links, addresses and routes of the network namespace the daemon runs in,
 * through libnl-route caches that the kernel keeps current (rtnetlink
 * notifications on one socket): nothing is polled and nothing runs while
 * the network does not change. kvp_nl_sync() takes in the notifications
 * that arrived (the daemon does it from its main loop on the socket's fd);
 * kvp_nl_refresh(), called before answering a request, also reloads the
 * caches once after changes (or a lost notification), so that answers
 * list addresses in the kernel's order.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

typedef struct kvp_nl kvp_nl;

/* @changed is called for each link/address/route change taken in. */
int kvp_nl_new(void (*changed)(void *userdata), void *userdata, kvp_nl **ret);
void kvp_nl_free(kvp_nl *nl);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(kvp_nl, kvp_nl_free)

/* The notification socket, for the main loop (readable: call kvp_nl_sync()). */
int kvp_nl_get_fd(kvp_nl *nl);
/* Takes in pending notifications (cheap: what the main loop calls). */
int kvp_nl_sync(kvp_nl *nl);
/*
 * Before answering: kvp_nl_sync(), then, if anything changed since the
 * last time, the caches reloaded in the kernel's order.
 */
int kvp_nl_refresh(kvp_nl *nl);

/*
 * Interfaces (not loopback) whose link-layer address is @mac (@mac_len
 * bytes), in interface index order: an array of ifindex (int).
 */
GArray *kvp_nl_links_by_mac(kvp_nl *nl, const uint8_t *mac, size_t mac_len);
/* Name of interface @ifindex into @buf (IFNAMSIZ), or -ENODEV. */
int kvp_nl_link_name(kvp_nl *nl, int ifindex, char *buf, size_t size);

typedef struct kvp_nl_addr {
	int family;
	uint8_t addr[16];
	unsigned int prefix;
} kvp_nl_addr;

/*
 * Addresses of @family (AF_INET, AF_INET6) on @ifindex, or on every
 * non-loopback interface for @ifindex 0, in the kernel's order: kvp_nl_addr.
 */
GArray *kvp_nl_addresses(kvp_nl *nl, int ifindex, int family);
/*
 * Gateways of the default routes of @family in the main table that leave
 * through @ifindex: kvp_nl_addr (prefix 0).
 */
GArray *kvp_nl_default_gateways(kvp_nl *nl, int ifindex, int family);
