/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "fcopy-daemon.h"

int main(int argc, char **argv)
{
	return hv_daemon_main(&fcopy_daemon_ops, argc, argv);
}
