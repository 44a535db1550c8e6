/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kvp-netlink.h"

#include <errno.h>
#include <net/if.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/rtnetlink.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>

struct kvp_nl {
	struct nl_cache_mngr *mngr;
	struct nl_cache *links;
	struct nl_cache *addrs;
	struct nl_cache *routes;
	/* For reloading the caches in the kernel's order. */
	struct nl_sock *dump_sock;
	bool dirty;
	void (*changed)(void *userdata);
	void *userdata;
};

static int nl_to_errno(int nlerr)
{
	switch (-nlerr) {
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_PERM:
		return -EPERM;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_NOADDR:
	case NLE_OBJ_NOTFOUND:
		return -ENOENT;
	default:
		return -EIO;
	}
}

static void on_change(struct nl_cache *cache, struct nl_object *obj, int action, void *data)
{
	kvp_nl *nl = data;

	nl->dirty = true;
	if (nl->changed)
		nl->changed(nl->userdata);
}

int kvp_nl_new(void (*changed)(void *userdata), void *userdata, kvp_nl **ret)
{
	g_autoptr(kvp_nl) nl = g_new0(kvp_nl, 1);
	int r;

	nl->changed = changed;
	nl->userdata = userdata;

	r = nl_cache_mngr_alloc(NULL, NETLINK_ROUTE, 0, &nl->mngr);
	if (r < 0)
		return nl_to_errno(r);
	r = nl_cache_mngr_add(nl->mngr, "route/link", on_change, nl, &nl->links);
	if (r >= 0)
		r = nl_cache_mngr_add(nl->mngr, "route/addr", on_change, nl, &nl->addrs);
	if (r >= 0)
		r = nl_cache_mngr_add(nl->mngr, "route/route", on_change, nl, &nl->routes);
	if (r < 0)
		return nl_to_errno(r);

	nl->dump_sock = nl_socket_alloc();
	if (!nl->dump_sock)
		return -ENOMEM;
	r = nl_connect(nl->dump_sock, NETLINK_ROUTE);
	if (r < 0)
		return nl_to_errno(r);

	*ret = g_steal_pointer(&nl);
	return 0;
}

void kvp_nl_free(kvp_nl *nl)
{
	if (!nl)
		return;
	/* The manager owns the caches it filled. */
	if (nl->mngr)
		nl_cache_mngr_free(nl->mngr);
	if (nl->dump_sock)
		nl_socket_free(nl->dump_sock);
	g_free(nl);
}

int kvp_nl_get_fd(kvp_nl *nl)
{
	return nl_cache_mngr_get_fd(nl->mngr);
}

int kvp_nl_sync(kvp_nl *nl)
{
	/* The socket is non-blocking: this takes what is there and returns. */
	int r = nl_cache_mngr_data_ready(nl->mngr);

	if (r < 0) {
		/* Notifications were lost (socket buffer overflow): reload on next use. */
		nl->dirty = true;
		if (nl->changed)
			nl->changed(nl->userdata);
	}
	return 0;
}

int kvp_nl_refresh(kvp_nl *nl)
{
	int r;

	kvp_nl_sync(nl);
	if (!nl->dirty)
		return 0;

	/*
	 * Something changed since the last dump. The caches were updated
	 * from the notifications, but appended to in arrival order: reload
	 * them so that lists come in the kernel's order (primary addresses
	 * first), as a fresh `ip addr` or getifaddrs() would show them.
	 */
	r = nl_cache_refill(nl->dump_sock, nl->links);
	if (r >= 0)
		r = nl_cache_refill(nl->dump_sock, nl->addrs);
	if (r >= 0)
		r = nl_cache_refill(nl->dump_sock, nl->routes);
	if (r < 0)
		return nl_to_errno(r);
	nl->dirty = false;
	return 0;
}

static bool link_is_loopback(kvp_nl *nl, int ifindex)
{
	struct rtnl_link *link = rtnl_link_get(nl->links, ifindex);
	bool loopback;

	if (!link)
		return false;
	loopback = rtnl_link_get_flags(link) & IFF_LOOPBACK;
	rtnl_link_put(link);
	return loopback;
}

GArray *kvp_nl_links_by_mac(kvp_nl *nl, const uint8_t *mac, size_t mac_len)
{
	GArray *out = g_array_new(FALSE, FALSE, sizeof(int));

	for (struct nl_object *o = nl_cache_get_first(nl->links); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *link = (struct rtnl_link *)o;
		struct nl_addr *lladdr = rtnl_link_get_addr(link);
		int ifindex = rtnl_link_get_ifindex(link);

		if (rtnl_link_get_flags(link) & IFF_LOOPBACK)
			continue;
		if (!lladdr || nl_addr_get_len(lladdr) != mac_len ||
		    memcmp(nl_addr_get_binary_addr(lladdr), mac, mac_len) != 0)
			continue;
		g_array_append_val(out, ifindex);
	}
	return out;
}

int kvp_nl_link_name(kvp_nl *nl, int ifindex, char *buf, size_t size)
{
	struct rtnl_link *link = rtnl_link_get(nl->links, ifindex);

	if (!link)
		return -ENODEV;
	g_strlcpy(buf, rtnl_link_get_name(link) ?: "", size);
	rtnl_link_put(link);
	return 0;
}

static bool fill_addr(struct nl_addr *a, int family, unsigned int prefix, kvp_nl_addr *ret)
{
	size_t len = family == AF_INET ? 4 : 16;

	if (!a || nl_addr_get_family(a) != family || nl_addr_get_len(a) != len)
		return false;
	*ret = (kvp_nl_addr){.family = family, .prefix = prefix};
	memcpy(ret->addr, nl_addr_get_binary_addr(a), len);
	return true;
}

GArray *kvp_nl_addresses(kvp_nl *nl, int ifindex, int family)
{
	GArray *out = g_array_new(FALSE, TRUE, sizeof(kvp_nl_addr));

	for (struct nl_object *o = nl_cache_get_first(nl->addrs); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		int index = rtnl_addr_get_ifindex(a);
		kvp_nl_addr entry;

		if (rtnl_addr_get_family(a) != family)
			continue;
		if (ifindex ? index != ifindex : link_is_loopback(nl, index))
			continue;
		if (fill_addr(rtnl_addr_get_local(a), family,
			      (unsigned int)rtnl_addr_get_prefixlen(a), &entry))
			g_array_append_val(out, entry);
	}
	return out;
}

GArray *kvp_nl_default_gateways(kvp_nl *nl, int ifindex, int family)
{
	GArray *out = g_array_new(FALSE, TRUE, sizeof(kvp_nl_addr));

	for (struct nl_object *o = nl_cache_get_first(nl->routes); o; o = nl_cache_get_next(o)) {
		struct rtnl_route *route = (struct rtnl_route *)o;
		struct nl_addr *dst = rtnl_route_get_dst(route);
		int n;

		if (rtnl_route_get_family(route) != family ||
		    rtnl_route_get_table(route) != RT_TABLE_MAIN ||
		    rtnl_route_get_type(route) != RTN_UNICAST)
			continue;
		if (dst && nl_addr_get_prefixlen(dst) != 0)
			continue;

		n = rtnl_route_get_nnexthops(route);
		for (int i = 0; i < n; i++) {
			struct rtnl_nexthop *nh = rtnl_route_nexthop_n(route, i);
			kvp_nl_addr gw;

			if (rtnl_route_nh_get_ifindex(nh) != ifindex)
				continue;
			if (fill_addr(rtnl_route_nh_get_gateway(nh), family, 0, &gw))
				g_array_append_val(out, gw);
		}
	}
	return out;
}
