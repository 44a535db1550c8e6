/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "hv-notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "hv-macro.h"

int hv_notify(const char *state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = getenv("NOTIFY_SOCKET");
	hv_autofd int fd = -1;
	socklen_t salen;
	size_t len;
	ssize_t n;

	if (!state)
		return -EINVAL;

	if (!path || !*path)
		return 0;

	len = strlen(path);
	/* Only absolute paths and abstract sockets ('@') are valid. */
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return -EINVAL;

	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '@' ? 0 : 1));

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;

	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	if (n < 0)
		return -errno;

	return 0;
}

int hv_notify_status(const char *format, ...)
{
	char buf[512];
	va_list ap;
	int n;

	memcpy(buf, "STATUS=", 7);
	va_start(ap, format);
	n = vsnprintf(buf + 7, sizeof(buf) - 7, format, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;

	return hv_notify(buf);
}
