/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vss-state.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "hv-status.h"

static const char *const state_names[_VSS_STATE_MAX] = {
	[VSS_STATE_DISCONNECTED] = "disconnected",
	[VSS_STATE_IDLE] = "idle",
	[VSS_STATE_FREEZING] = "freezing",
	[VSS_STATE_FROZEN] = "frozen",
	[VSS_STATE_AUTO_THAWED] = "auto-thawed",
	[VSS_STATE_STOPPED] = "stopped",
};

static const char *const event_names[_VSS_EVENT_MAX] = {
	[VSS_EVENT_CONNECTED] = "connected",
	[VSS_EVENT_HOT_BACKUP] = "hot-backup",
	[VSS_EVENT_FREEZE] = "freeze",
	[VSS_EVENT_THAW] = "thaw",
	[VSS_EVENT_OTHER_OP] = "other-op",
	[VSS_EVENT_BAD_REQUEST] = "bad-request",
	[VSS_EVENT_FREEZE_DONE] = "freeze-done",
	[VSS_EVENT_FREEZE_FAILED] = "freeze-failed",
	[VSS_EVENT_AUTO_THAW] = "auto-thaw",
	[VSS_EVENT_REPLY_FAILED] = "reply-failed",
	[VSS_EVENT_TRANSPORT_LOST] = "transport-lost",
	[VSS_EVENT_STOP] = "stop",
};

static const char *const action_names[_VSS_ACTION_MAX] = {
	[VSS_ACTION_NONE] = "none",
	[VSS_ACTION_REPLY_OK] = "reply-ok",
	[VSS_ACTION_REPLY_FAIL] = "reply-fail",
	[VSS_ACTION_FREEZE] = "freeze",
	[VSS_ACTION_THAW_REPLY] = "thaw-reply",
	[VSS_ACTION_THAW] = "thaw",
	[VSS_ACTION_REOPEN] = "reopen",
	[VSS_ACTION_THAW_REOPEN] = "thaw-reopen",
	[VSS_ACTION_QUIT] = "quit",
	[VSS_ACTION_THAW_QUIT] = "thaw-quit",
};

static const char *const op_names[_HV_VSS_OP_COUNT] = {
	[HV_VSS_OP_CREATE] = "CREATE",
	[HV_VSS_OP_DELETE] = "DELETE",
	[HV_VSS_OP_HOT_BACKUP] = "HOT_BACKUP",
	[HV_VSS_OP_GET_DM_INFO] = "GET_DM_INFO",
	[HV_VSS_OP_BU_COMPLETE] = "BU_COMPLETE",
	[HV_VSS_OP_FREEZE] = "FREEZE",
	[HV_VSS_OP_THAW] = "THAW",
	[HV_VSS_OP_AUTO_RECOVER] = "AUTO_RECOVER",
};

const char *vss_state_to_string(vss_state state)
{
	return state < _VSS_STATE_MAX ? state_names[state] : "invalid";
}

const char *vss_event_to_string(vss_event event)
{
	return event < _VSS_EVENT_MAX ? event_names[event] : "invalid";
}

const char *vss_action_to_string(vss_action action)
{
	return action < _VSS_ACTION_MAX ? action_names[action] : "invalid";
}

const char *vss_op_to_string(unsigned int op)
{
	return op < _HV_VSS_OP_COUNT ? op_names[op] : "unknown";
}

/*
 * Events every state answers the same way: requests that need no file
 * system work. Returns true when handled.
 */
static bool common_event(vss_event event, vss_action *action)
{
	switch (event) {
	case VSS_EVENT_HOT_BACKUP:
	case VSS_EVENT_OTHER_OP:
		*action = VSS_ACTION_REPLY_OK;
		return true;
	case VSS_EVENT_BAD_REQUEST:
		*action = VSS_ACTION_REPLY_FAIL;
		return true;
	case VSS_EVENT_CONNECTED:
	case VSS_EVENT_FREEZE:
	case VSS_EVENT_THAW:
	case VSS_EVENT_FREEZE_DONE:
	case VSS_EVENT_FREEZE_FAILED:
	case VSS_EVENT_AUTO_THAW:
	case VSS_EVENT_REPLY_FAILED:
	case VSS_EVENT_TRANSPORT_LOST:
	case VSS_EVENT_STOP:
	case _VSS_EVENT_MAX:
		break;
	}
	return false;
}

vss_state vss_state_next(vss_state state, vss_event event, vss_action *ret_action)
{
	vss_action action = VSS_ACTION_NONE;
	vss_state next = state;

	switch (state) {
	case VSS_STATE_DISCONNECTED:
		if (event == VSS_EVENT_CONNECTED)
			next = VSS_STATE_IDLE;
		else if (event == VSS_EVENT_STOP) {
			next = VSS_STATE_STOPPED;
			action = VSS_ACTION_QUIT;
		}
		/* Nothing can be read while disconnected; anything else is ignored. */
		break;

	case VSS_STATE_IDLE:
	case VSS_STATE_AUTO_THAWED:
		if (common_event(event, &action))
			break;

		switch (event) {
		case VSS_EVENT_FREEZE:
			next = VSS_STATE_FREEZING;
			action = VSS_ACTION_FREEZE;
			break;
		case VSS_EVENT_THAW:
			/*
			 * Nothing of ours is frozen: the fake THAW the driver sends
			 * before hibernation, or a THAW after our auto-thaw, which
			 * must tell the host that its snapshot is not consistent.
			 */
			next = VSS_STATE_IDLE;
			action = state == VSS_STATE_AUTO_THAWED ? VSS_ACTION_REPLY_FAIL
								: VSS_ACTION_REPLY_OK;
			break;
		case VSS_EVENT_TRANSPORT_LOST:
			next = VSS_STATE_DISCONNECTED;
			action = VSS_ACTION_REOPEN;
			break;
		case VSS_EVENT_STOP:
			next = VSS_STATE_STOPPED;
			action = VSS_ACTION_QUIT;
			break;
		case VSS_EVENT_CONNECTED:
		case VSS_EVENT_HOT_BACKUP:
		case VSS_EVENT_OTHER_OP:
		case VSS_EVENT_BAD_REQUEST:
		case VSS_EVENT_FREEZE_DONE:
		case VSS_EVENT_FREEZE_FAILED:
		case VSS_EVENT_AUTO_THAW:
		case VSS_EVENT_REPLY_FAILED:
		case _VSS_EVENT_MAX:
			break;
		}
		break;

	case VSS_STATE_FREEZING:
		switch (event) {
		case VSS_EVENT_FREEZE_DONE:
			next = VSS_STATE_FROZEN;
			action = VSS_ACTION_REPLY_OK;
			break;
		case VSS_EVENT_FREEZE_FAILED:
			next = VSS_STATE_IDLE;
			action = VSS_ACTION_REPLY_FAIL;
			break;
		case VSS_EVENT_CONNECTED:
		case VSS_EVENT_HOT_BACKUP:
		case VSS_EVENT_FREEZE:
		case VSS_EVENT_THAW:
		case VSS_EVENT_OTHER_OP:
		case VSS_EVENT_BAD_REQUEST:
		case VSS_EVENT_AUTO_THAW:
		case VSS_EVENT_REPLY_FAILED:
		case VSS_EVENT_TRANSPORT_LOST:
		case VSS_EVENT_STOP:
		case _VSS_EVENT_MAX:
			/* The freeze runs to completion before anything else is looked at. */
			break;
		}
		break;

	case VSS_STATE_FROZEN:
		if (common_event(event, &action))
			break;

		switch (event) {
		case VSS_EVENT_FREEZE:
			/* Still frozen from the last FREEZE whose THAW was lost: say so. */
			action = VSS_ACTION_REPLY_OK;
			break;
		case VSS_EVENT_THAW:
			next = VSS_STATE_IDLE;
			action = VSS_ACTION_THAW_REPLY;
			break;
		case VSS_EVENT_AUTO_THAW:
			next = VSS_STATE_AUTO_THAWED;
			action = VSS_ACTION_THAW;
			break;
		case VSS_EVENT_REPLY_FAILED:
			/* The driver gave up on our FREEZE reply: the host will not THAW. */
			next = VSS_STATE_IDLE;
			action = VSS_ACTION_THAW;
			break;
		case VSS_EVENT_TRANSPORT_LOST:
			next = VSS_STATE_DISCONNECTED;
			action = VSS_ACTION_THAW_REOPEN;
			break;
		case VSS_EVENT_STOP:
			next = VSS_STATE_STOPPED;
			action = VSS_ACTION_THAW_QUIT;
			break;
		case VSS_EVENT_CONNECTED:
		case VSS_EVENT_HOT_BACKUP:
		case VSS_EVENT_OTHER_OP:
		case VSS_EVENT_BAD_REQUEST:
		case VSS_EVENT_FREEZE_DONE:
		case VSS_EVENT_FREEZE_FAILED:
		case _VSS_EVENT_MAX:
			break;
		}
		break;

	case VSS_STATE_STOPPED:
	case _VSS_STATE_MAX:
		break;
	}

	if (ret_action)
		*ret_action = action;
	return next;
}

vss_event vss_parse_request(const void *buf, size_t len, uint8_t *ret_op)
{
	const struct hv_vss_msg *msg = buf;
	uint8_t op;

	if (!buf || len < 1) {
		if (ret_op)
			*ret_op = 0xff;
		return VSS_EVENT_BAD_REQUEST;
	}

	op = msg->vss_hdr.operation;
	if (ret_op)
		*ret_op = op;

	/* The driver always sends a whole struct hv_vss_msg (drivers/hv/hv_snapshot.c). */
	if (len != sizeof(struct hv_vss_msg))
		return VSS_EVENT_BAD_REQUEST;

	switch (op) {
	case HV_VSS_OP_HOT_BACKUP:
		return VSS_EVENT_HOT_BACKUP;
	case HV_VSS_OP_FREEZE:
		return VSS_EVENT_FREEZE;
	case HV_VSS_OP_THAW:
		return VSS_EVENT_THAW;
	case HV_VSS_OP_CREATE:
	case HV_VSS_OP_DELETE:
	case HV_VSS_OP_GET_DM_INFO:
	case HV_VSS_OP_BU_COMPLETE:
	case HV_VSS_OP_AUTO_RECOVER:
		return VSS_EVENT_OTHER_OP;
	default:
		return VSS_EVENT_BAD_REQUEST;
	}
}

void vss_build_reply(uint8_t op, uint32_t status, struct hv_vss_msg *ret)
{
	memset(ret, 0, sizeof(*ret));
	/* The status overlaps the op byte: the driver reads the first four bytes. */
	ret->error = (int32_t)status;
	if (op == HV_VSS_OP_HOT_BACKUP && status == HV_S_OK)
		ret->vss_cf.flags = HV_VSS_HBU_NO_AUTO_RECOVERY;
}

int vss_parse_register_reply(const void *buf, size_t len, uint32_t *ret_version)
{
	uint32_t v;

	if (!buf || len != sizeof(hv_vss_version))
		return -EBADMSG;

	memcpy(&v, buf, sizeof(v));
	if (v != HV_VSS_OP_REGISTER1)
		return -EPROTO;

	if (ret_version)
		*ret_version = v;
	return 0;
}
