/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kvp-daemon.h"

int main(int argc, char **argv)
{
	return hv_daemon_main(&kvp_daemon_ops, argc, argv);
}
