/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The few helpers glib lacks on the distros we target. */
#pragma once

#include <errno.h>
#include <glib.h>
#include <unistd.h>

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

/* g_autofd arrived in GLib 2.76; Debian 12 has 2.74. */
static inline void hv_close_fdp(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;

		close(*fd);
		errno = saved;
	}
}
#define hv_autofd __attribute__((cleanup(hv_close_fdp)))

static inline int hv_steal_fd(int *fd)
{
	int r = *fd;

	*fd = -1;
	return r;
}
