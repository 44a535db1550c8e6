/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VSS messages as the transports hand them on, through the daemon's entry
 * point (vss_parse_request) and the state machine it drives.
 *
 * Input: one flags byte (bit 0: the netlink connector, whose datagrams are
 * first checked by hv_cn_parse() as transport-netlink.c does; else the char
 * device, whose read() returns the message as is), then records
 * [event byte][length byte][message]: a length of 255 means "the rest of
 * the input". The event byte injects what the daemon sees besides requests
 * (bits 0-2: 4 auto-thaw timer, 5 refused reply, 6 transport lost and
 * reopened, 7 stop) and the outcome of a freeze (bit 3: it fails).
 *
 * Checked: what the parser says about length and op; every state and
 * action is in range; every host request gets exactly one answer; the
 * model of "our file systems are frozen" agrees with the state, and every
 * way out of FROZEN (THAW, stop, transport lost, timer, refused reply)
 * thaws; the reply bytes are what the driver reads.
 */
#include <string.h>

#include "fuzz-util.h"
#include "hv-cn.h"
#include "hv-status.h"
#include "vss-state.h"

#define VSS_MAX_MSG (2 * 4096) /* what the daemon reads at most (vss-daemon.c) */

typedef struct model {
	vss_state state;
	bool frozen;
	bool freeze_fails;
} model;

static bool action_thaws(vss_action a)
{
	return a == VSS_ACTION_THAW || a == VSS_ACTION_THAW_REPLY || a == VSS_ACTION_THAW_REOPEN ||
	       a == VSS_ACTION_THAW_QUIT;
}

static bool action_replies(vss_action a)
{
	return a == VSS_ACTION_REPLY_OK || a == VSS_ACTION_REPLY_FAIL || a == VSS_ACTION_THAW_REPLY;
}

static void check_reply(uint8_t op, uint32_t status)
{
	struct hv_vss_msg reply;
	uint8_t bytes[sizeof(reply)];
	uint32_t first, flags;

	vss_build_reply(op, status, &reply);
	memcpy(bytes, &reply, sizeof(bytes));
	memcpy(&first, bytes, 4);
	memcpy(&flags, bytes + 8, 4);
	HV_FUZZ_CHECK(first == status);
	HV_FUZZ_CHECK(
	    flags ==
	    (op == HV_VSS_OP_HOT_BACKUP && status == HV_S_OK ? HV_VSS_HBU_NO_AUTO_RECOVERY : 0));
}

/* Feeds @event; returns the action after the freeze (if any) ran. */
static vss_action step(model *m, vss_event event, uint8_t op)
{
	bool was_frozen_state = m->state == VSS_STATE_FROZEN;
	vss_action action;
	vss_state next;

	HV_FUZZ_CHECK(m->frozen == (m->state == VSS_STATE_FROZEN));
	next = vss_state_next(m->state, event, &action);
	HV_FUZZ_CHECK(next < _VSS_STATE_MAX);
	HV_FUZZ_CHECK(action < _VSS_ACTION_MAX);
	HV_FUZZ_CHECK(strcmp(vss_action_to_string(action), "invalid") != 0);
	HV_FUZZ_CHECK(strcmp(vss_state_to_string(next), "invalid") != 0);

	/* Leaving FROZEN any way but a repeated FREEZE thaws. */
	if (was_frozen_state && next != VSS_STATE_FROZEN)
		HV_FUZZ_CHECK(action_thaws(action));
	if (action_thaws(action))
		HV_FUZZ_CHECK(m->frozen || m->state == VSS_STATE_FROZEN);

	m->state = next;
	if (action_thaws(action))
		m->frozen = false;

	if (action == VSS_ACTION_FREEZE) {
		HV_FUZZ_CHECK(next == VSS_STATE_FREEZING);
		next = vss_state_next(
		    m->state, m->freeze_fails ? VSS_EVENT_FREEZE_FAILED : VSS_EVENT_FREEZE_DONE,
		    &action);
		HV_FUZZ_CHECK(next == (m->freeze_fails ? VSS_STATE_IDLE : VSS_STATE_FROZEN));
		HV_FUZZ_CHECK(action ==
			      (m->freeze_fails ? VSS_ACTION_REPLY_FAIL : VSS_ACTION_REPLY_OK));
		m->state = next;
		m->frozen = !m->freeze_fails;
	}

	if (action == VSS_ACTION_REPLY_OK || action == VSS_ACTION_THAW_REPLY)
		check_reply(op, HV_S_OK);
	else if (action == VSS_ACTION_REPLY_FAIL)
		check_reply(op, HV_E_FAIL);

	HV_FUZZ_CHECK(m->frozen == (m->state == VSS_STATE_FROZEN));
	return action;
}

static void request(model *m, const uint8_t *msg, size_t len)
{
	uint32_t version = 0;
	vss_event event;
	vss_action action;
	uint8_t op = 0;

	event = vss_parse_request(msg, len, &op);
	HV_FUZZ_CHECK(event == VSS_EVENT_HOT_BACKUP || event == VSS_EVENT_FREEZE ||
		      event == VSS_EVENT_THAW || event == VSS_EVENT_OTHER_OP ||
		      event == VSS_EVENT_BAD_REQUEST);
	HV_FUZZ_CHECK(op == (len ? msg[0] : 0xff));
	if (len != sizeof(struct hv_vss_msg) || op >= _HV_VSS_OP_COUNT ||
	    op == HV_VSS_OP_REGISTER || op == HV_VSS_OP_REGISTER1)
		HV_FUZZ_CHECK(event == VSS_EVENT_BAD_REQUEST);
	(void)vss_op_to_string(op);

	if (vss_parse_register_reply(msg, len, &version) == 0)
		HV_FUZZ_CHECK(len == 4 && version == HV_VSS_OP_REGISTER1);

	action = step(m, event, op);
	/* Registered and not stopped: the host gets exactly one answer. */
	if (m->state != VSS_STATE_DISCONNECTED && m->state != VSS_STATE_STOPPED)
		HV_FUZZ_CHECK(action_replies(action));
}

/* The datagram check of transport-netlink.c: NULL when it would be dropped. */
static const uint8_t *netlink_payload(const uint8_t *dgram, size_t n, size_t *len)
{
	hv_cn_frame f;

	if (hv_cn_parse(dgram, n, HV_CN_VSS_IDX, HV_CN_VSS_VAL, VSS_MAX_MSG, &f) < 0)
		return NULL;

	HV_FUZZ_CHECK(f.data == dgram + HV_CN_HDR_LEN);
	HV_FUZZ_CHECK(f.len <= n - HV_CN_HDR_LEN && f.len <= VSS_MAX_MSG);
	*len = f.len;
	return f.data;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	model m = {.state = VSS_STATE_DISCONNECTED};
	bool netlink;
	size_t i = 1;

	if (size < 1)
		return 0;

	netlink = data[0] & 1;
	step(&m, VSS_EVENT_CONNECTED, 0);
	HV_FUZZ_CHECK(m.state == VSS_STATE_IDLE);

	while (i + 2 <= size && m.state != VSS_STATE_STOPPED) {
		uint8_t ev = data[i];
		size_t len = data[i + 1];
		const uint8_t *msg = data + i + 2;
		const uint8_t *payload;
		size_t payload_len = 0;

		i += 2;
		if (len == 255 || len > size - i)
			len = size - i;
		i += len;

		m.freeze_fails = ev & 8;
		payload = netlink ? netlink_payload(msg, len, &payload_len) : msg;
		if (!netlink)
			payload_len = len;
		/* A message too big for the daemon's buffer never gets to it. */
		if (payload && payload_len <= VSS_MAX_MSG)
			request(&m, payload, payload_len);

		switch (ev & 7) {
		case 4:
			step(&m, VSS_EVENT_AUTO_THAW, 0);
			break;
		case 5:
			step(&m, VSS_EVENT_REPLY_FAILED, 0);
			break;
		case 6:
			step(&m, VSS_EVENT_TRANSPORT_LOST, 0);
			HV_FUZZ_CHECK(m.state == VSS_STATE_DISCONNECTED && !m.frozen);
			step(&m, VSS_EVENT_CONNECTED, 0);
			HV_FUZZ_CHECK(m.state == VSS_STATE_IDLE);
			break;
		case 7:
			step(&m, VSS_EVENT_STOP, 0);
			HV_FUZZ_CHECK(m.state == VSS_STATE_STOPPED && !m.frozen);
			break;
		default:
			break;
		}
	}

	return 0;
}
