/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "hv-transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hv-connector.h"
#include "transport-uio.h"

static const char *const kind_names[_HV_TRANSPORT_KIND_MAX] = {
	[HV_TRANSPORT_AUTO] = "auto",
	[HV_TRANSPORT_CHARDEV] = "chardev",
	[HV_TRANSPORT_NETLINK] = "netlink",
	[HV_TRANSPORT_UIO] = "uio",
};

const char *hv_transport_kind_to_string(hv_transport_kind kind)
{
	if (kind < 0 || kind >= _HV_TRANSPORT_KIND_MAX)
		return NULL;

	return kind_names[kind];
}

hv_transport_kind hv_transport_kind_from_string(const char *s)
{
	if (!s)
		return _HV_TRANSPORT_KIND_INVALID;

	for (int i = 0; i < _HV_TRANSPORT_KIND_MAX; i++)
		if (strcmp(s, kind_names[i]) == 0)
			return (hv_transport_kind)i;

	return _HV_TRANSPORT_KIND_INVALID;
}

bool hv_transport_connector_available(void)
{
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);

	if (fd < 0)
		return false;

	close(fd);
	return true;
}

int hv_transport_new(const hv_service *service, hv_transport_kind kind, const char *device,
		     hv_transport **ret, const char **ret_why)
{
	const hv_transport_ops *ops = &hv_transport_chardev_ops;
	char cn_name[32];
	const char *path;
	const char *why;
	hv_transport *t;

	if (!service || !ret)
		return -EINVAL;

	path = device ? device : service->device;
	snprintf(cn_name, sizeof(cn_name), "netlink:%#x.%u", service->cn_idx, service->cn_val);

	switch (kind) {
	case HV_TRANSPORT_AUTO:
		if (path && access(path, F_OK) == 0) {
			why = "auto: the char device node exists";
			break;
		}
		if ((service->uio_instance_guid || service->uio_class_guid) &&
		    hv_uio_discover(NULL, service->uio_instance_guid, service->uio_class_guid,
				    NULL, 0, NULL, 0) == 0) {
			why = "auto: no char device node, a uio_hv_generic device is bound";
			ops = &hv_transport_uio_ops;
			path = NULL;
			break;
		}
		if (service->cn_idx && hv_transport_connector_available()) {
			why = "auto: no char device node, the kernel has the netlink connector";
			ops = &hv_transport_netlink_ops;
			path = cn_name;
			break;
		}
		if (ret_why)
			*ret_why = service->cn_idx ? "neither the char device node nor the netlink connector (CONFIG_CONNECTOR) exists"
						   : "no char device node, and the service has no connector id";
		return -ENODEV;
	case HV_TRANSPORT_CHARDEV:
		why = device ? "chosen by configuration (device given)" : "chosen by configuration";
		break;
	case HV_TRANSPORT_NETLINK:
		if (!service->cn_idx) {
			if (ret_why)
				*ret_why = "the service has no connector id";
			return -EOPNOTSUPP;
		}
		if (!hv_transport_connector_available()) {
			if (ret_why)
				*ret_why = "the kernel has no netlink connector (CONFIG_CONNECTOR)";
			return -ENODEV;
		}
		why = "chosen by configuration";
		ops = &hv_transport_netlink_ops;
		path = cn_name;
		break;
	case HV_TRANSPORT_UIO:
		if (!device && !service->uio_instance_guid && !service->uio_class_guid) {
			if (ret_why)
				*ret_why = "the service has no VMBus device GUID and no device was given";
			return -EOPNOTSUPP;
		}
		why = device ? "chosen by configuration (device given)" : "chosen by configuration";
		ops = &hv_transport_uio_ops;
		path = device;
		break;
	case _HV_TRANSPORT_KIND_MAX:
	case _HV_TRANSPORT_KIND_INVALID:
	default:
		return -EINVAL;
	}

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;

	/* UIO without a device: found in sysfs at open, until then "uio:sysfs". */
	t->device = strdup(path ? path : "uio:sysfs");
	if (!t->device) {
		free(t);
		return -ENOMEM;
	}
	t->ops = ops;
	t->service = service;
	t->kind = ops == &hv_transport_netlink_ops ? HV_TRANSPORT_NETLINK
		: ops == &hv_transport_uio_ops	   ? HV_TRANSPORT_UIO
						   : HV_TRANSPORT_CHARDEV;
	t->fd = -1;
	t->handshake_timeout_ms = 5000;
	t->legacy_fallback_ms = 1000;

	if (ret_why)
		*ret_why = why;
	*ret = t;
	return 0;
}

void hv_transport_set_allow_user_peer(hv_transport *t, bool allow)
{
	if (t)
		t->allow_user_peer = allow;
}

int hv_transport_open(hv_transport *t)
{
	if (!t)
		return -EINVAL;

	if (t->fd >= 0)
		return -EALREADY;

	return t->ops->open(t);
}

ssize_t hv_transport_recv(hv_transport *t, void *buf, size_t size)
{
	if (!t || !buf)
		return -EINVAL;

	if (t->fd < 0)
		return -ENOTCONN;

	return t->ops->recv(t, buf, size);
}

int hv_transport_send(hv_transport *t, const void *buf, size_t len)
{
	if (!t || !buf)
		return -EINVAL;

	if (t->fd < 0)
		return -ENOTCONN;

	return t->ops->send(t, buf, len);
}

void hv_transport_close(hv_transport *t)
{
	if (!t || t->fd < 0)
		return;

	t->ops->close(t);
	t->fd = -1;
}

bool hv_transport_is_open(const hv_transport *t)
{
	return t && t->fd >= 0;
}

void hv_transport_free(hv_transport *t)
{
	if (!t)
		return;

	hv_transport_close(t);
	free(t->device);
	free(t);
}
