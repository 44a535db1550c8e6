/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vss-daemon.h"

int main(int argc, char **argv)
{
	return hv_daemon_main(&vss_daemon_ops, argc, argv);
}
