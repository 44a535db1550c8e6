/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VSS daemon's protocol state: an explicit enum, a pure transition
 * function, and the pure parsing/building of the 12-byte messages.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "hv-vss.h"

typedef enum vss_state {
	VSS_STATE_DISCONNECTED, /* no transport: opening or reopening */
	VSS_STATE_IDLE,         /* registered, nothing frozen */
	VSS_STATE_FREEZING,     /* FREEZE under way */
	VSS_STATE_FROZEN,       /* our file systems are frozen, waiting for THAW */
	VSS_STATE_AUTO_THAWED,  /* the auto-thaw timer fired; the next THAW reports failure */
	VSS_STATE_STOPPED,
	_VSS_STATE_MAX,
} vss_state;

typedef enum vss_event {
	VSS_EVENT_CONNECTED,      /* transport opened and registered */
	VSS_EVENT_HOT_BACKUP,     /* host asks whether a hot backup is possible */
	VSS_EVENT_FREEZE,
	VSS_EVENT_THAW,
	VSS_EVENT_OTHER_OP,       /* a defined op with nothing for the daemon to do */
	VSS_EVENT_BAD_REQUEST,    /* unknown op or malformed message */
	VSS_EVENT_FREEZE_DONE,
	VSS_EVENT_FREEZE_FAILED,
	VSS_EVENT_AUTO_THAW,      /* THAW never came in time */
	VSS_EVENT_REPLY_FAILED,   /* the driver refused our reply (late: it gave up) */
	VSS_EVENT_TRANSPORT_LOST, /* reset or close by the kernel */
	VSS_EVENT_STOP,           /* SIGTERM/SIGINT */
	_VSS_EVENT_MAX,
} vss_event;

typedef enum vss_action {
	VSS_ACTION_NONE,
	VSS_ACTION_REPLY_OK,
	VSS_ACTION_REPLY_FAIL,
	VSS_ACTION_FREEZE,        /* freeze, then feed FREEZE_DONE/FREEZE_FAILED */
	VSS_ACTION_THAW_REPLY,    /* thaw, reply with the thaw's status */
	VSS_ACTION_THAW,          /* thaw, no reply */
	VSS_ACTION_REOPEN,        /* close the transport, reopen later */
	VSS_ACTION_THAW_REOPEN,
	VSS_ACTION_QUIT,
	VSS_ACTION_THAW_QUIT,
	_VSS_ACTION_MAX,
} vss_action;

const char *vss_state_to_string(vss_state state);
const char *vss_event_to_string(vss_event event);
const char *vss_action_to_string(vss_action action);
const char *vss_op_to_string(unsigned int op);

/* Pure: the next state for @event in @state, and what to do. */
vss_state vss_state_next(vss_state state, vss_event event, vss_action *ret_action);

/*
 * Classifies a message read from the driver. Returns the event; *ret_op is
 * the op byte (0xff when the message is too short to have one).
 */
vss_event vss_parse_request(const void *buf, size_t len, uint8_t *ret_op);

/* Fills the 12-byte reply to @op with @status (HV_S_OK / HV_E_FAIL). */
void vss_build_reply(uint8_t op, uint32_t status, struct hv_vss_msg *ret);

/* Checks the driver's answer to REGISTER1 (a u32 equal to 129). */
int vss_parse_register_reply(const void *buf, size_t len, uint32_t *ret_version);
