/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The emulated driver over the netlink connector, for hv-emu --transport
 * netlink. It plays the kernel's side of hv_utils_transport in netlink mode
 * on top of the same request bookkeeping as the emulated char device
 * (emu-chardev.c), so that the same host steps and timelines apply.
 *
 * How the emulator and the daemon find each other (a user-space process
 * cannot receive what the daemon sends to the kernel, port 0):
 *   - the daemon runs with --allow-user-peer, which makes its transport
 *     multicast the registration to the service's group (0xA for VSS)
 *     instead of sending it to the kernel (so a real driver on the machine
 *     never hears of it), and take requests from the first user-space port
 *     that sends it one (never from the kernel, port 0);
 *   - the emulator joins that group (root), learns the daemon's port from
 *     the registration's source address, and sends the version answer and
 *     every host request to that port (unicast; root may send to any port);
 *   - the daemon answers to the port the request came from, i.e. to us.
 * The kernel multicasts to the group instead of unicasting; unicast lets
 * the emulator see a daemon that is gone (ECONNREFUSED), which the kernel
 * learns from cn_netlink_send() failing, and answer HV_E_FAIL at once.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "emu-chardev.h"
#include "hv-connector.h"

struct emu_netlink;

/* Whether a message sent by process @pid (0: not visible in our pid namespace) is our daemon's. */
typedef bool (*emu_sender_fn)(pid_t pid, void *userdata);

/* Opens the connector socket, joins group @idx and starts the receiving thread. */
int emu_netlink_start(struct emu_chardev *c, uint32_t idx, uint32_t val, emu_event_fn event,
		      void *userdata, struct emu_netlink **ret);
/*
 * Other tests may run daemons on the connector in the same network
 * namespace: only messages whose sender passes @fn (SCM_CREDENTIALS) are
 * taken; NULL takes all.
 */
void emu_netlink_set_filter(struct emu_netlink *nl, emu_sender_fn fn, void *userdata);
/*
 * Plays an old driver (before VSS_OP_REGISTER1): REGISTER1 (129) is ignored
 * without an answer, the legacy REGISTER (128) registers without one.
 */
void emu_netlink_set_legacy(struct emu_netlink *nl, bool legacy);
/*
 * A foreign sender: sends @msg to the daemon's port from a new socket (another
 * user-space port than the one the daemon answered) and waits @wait_ms for an
 * answer. 0: none came (refused), -EPROTO: the daemon answered it,
 * -ENOTCONN: no daemon port known yet. *ret_port: the port used.
 */
int emu_netlink_foreign(struct emu_netlink *nl, const void *msg, size_t len, uint64_t wait_ms,
			uint32_t *ret_port);
/* Stops the thread, closes the socket, frees; NULL-safe. Call before emu_devdir_free(). */
struct emu_netlink *emu_netlink_free(struct emu_netlink *nl);
