/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The service manager notification protocol (READY=1, STOPPING=1, STATUS=)
 * spoken directly on $NOTIFY_SOCKET, without libsystemd.
 */
#pragma once

/* Sends @state ("READY=1\nSTATUS=..."). 0 when sent or when no manager listens. */
int hv_notify(const char *state);
int hv_notify_status(const char *format, ...) __attribute__((format(printf, 1, 2)));
