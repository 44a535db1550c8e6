/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hv_fcopy_daemon: owns the transport, its loop source and the copy
 * session; each whole message from the kernel goes through the transport's
 * adapter (fcopy-adapter.h) into the session (fcopy-session.h), and the
 * status goes back the same way.
 */
#pragma once

#include "hv-daemon.h"

extern const hv_daemon_ops fcopy_daemon_ops;
