/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hv_vss_daemon: owns the transport, its loop source, the freeze handle and
 * the auto-thaw timer; turns what the driver sends into vss_state events.
 */
#pragma once

#include "hv-daemon.h"

extern const hv_daemon_ops vss_daemon_ops;
