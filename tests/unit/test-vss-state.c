/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hv-status.h"
#include "vss-state.h"

typedef struct transition {
	vss_state from;
	vss_event event;
	vss_state to;
	vss_action action;
} transition;

static const transition table[] = {
	{ VSS_STATE_DISCONNECTED, VSS_EVENT_CONNECTED, VSS_STATE_IDLE, VSS_ACTION_NONE },
	{ VSS_STATE_DISCONNECTED, VSS_EVENT_STOP, VSS_STATE_STOPPED, VSS_ACTION_QUIT },
	{ VSS_STATE_DISCONNECTED, VSS_EVENT_FREEZE, VSS_STATE_DISCONNECTED, VSS_ACTION_NONE },
	{ VSS_STATE_IDLE, VSS_EVENT_HOT_BACKUP, VSS_STATE_IDLE, VSS_ACTION_REPLY_OK },
	{ VSS_STATE_IDLE, VSS_EVENT_OTHER_OP, VSS_STATE_IDLE, VSS_ACTION_REPLY_OK },
	{ VSS_STATE_IDLE, VSS_EVENT_BAD_REQUEST, VSS_STATE_IDLE, VSS_ACTION_REPLY_FAIL },
	{ VSS_STATE_IDLE, VSS_EVENT_FREEZE, VSS_STATE_FREEZING, VSS_ACTION_FREEZE },
	{ VSS_STATE_IDLE, VSS_EVENT_THAW, VSS_STATE_IDLE, VSS_ACTION_REPLY_OK },
	{ VSS_STATE_IDLE, VSS_EVENT_TRANSPORT_LOST, VSS_STATE_DISCONNECTED, VSS_ACTION_REOPEN },
	{ VSS_STATE_IDLE, VSS_EVENT_STOP, VSS_STATE_STOPPED, VSS_ACTION_QUIT },
	{ VSS_STATE_IDLE, VSS_EVENT_AUTO_THAW, VSS_STATE_IDLE, VSS_ACTION_NONE },
	{ VSS_STATE_IDLE, VSS_EVENT_REPLY_FAILED, VSS_STATE_IDLE, VSS_ACTION_NONE },
	{ VSS_STATE_FREEZING, VSS_EVENT_FREEZE_DONE, VSS_STATE_FROZEN, VSS_ACTION_REPLY_OK },
	{ VSS_STATE_FREEZING, VSS_EVENT_FREEZE_FAILED, VSS_STATE_IDLE, VSS_ACTION_REPLY_FAIL },
	{ VSS_STATE_FREEZING, VSS_EVENT_STOP, VSS_STATE_FREEZING, VSS_ACTION_NONE },
	{ VSS_STATE_FROZEN, VSS_EVENT_THAW, VSS_STATE_IDLE, VSS_ACTION_THAW_REPLY },
	{ VSS_STATE_FROZEN, VSS_EVENT_FREEZE, VSS_STATE_FROZEN, VSS_ACTION_REPLY_OK },
	{ VSS_STATE_FROZEN, VSS_EVENT_HOT_BACKUP, VSS_STATE_FROZEN, VSS_ACTION_REPLY_OK },
	{ VSS_STATE_FROZEN, VSS_EVENT_BAD_REQUEST, VSS_STATE_FROZEN, VSS_ACTION_REPLY_FAIL },
	{ VSS_STATE_FROZEN, VSS_EVENT_AUTO_THAW, VSS_STATE_AUTO_THAWED, VSS_ACTION_THAW },
	{ VSS_STATE_FROZEN, VSS_EVENT_REPLY_FAILED, VSS_STATE_IDLE, VSS_ACTION_THAW },
	{ VSS_STATE_FROZEN, VSS_EVENT_TRANSPORT_LOST, VSS_STATE_DISCONNECTED,
	  VSS_ACTION_THAW_REOPEN },
	{ VSS_STATE_FROZEN, VSS_EVENT_STOP, VSS_STATE_STOPPED, VSS_ACTION_THAW_QUIT },
	{ VSS_STATE_AUTO_THAWED, VSS_EVENT_THAW, VSS_STATE_IDLE, VSS_ACTION_REPLY_FAIL },
	{ VSS_STATE_AUTO_THAWED, VSS_EVENT_FREEZE, VSS_STATE_FREEZING, VSS_ACTION_FREEZE },
	{ VSS_STATE_AUTO_THAWED, VSS_EVENT_HOT_BACKUP, VSS_STATE_AUTO_THAWED,
	  VSS_ACTION_REPLY_OK },
	{ VSS_STATE_AUTO_THAWED, VSS_EVENT_STOP, VSS_STATE_STOPPED, VSS_ACTION_QUIT },
	{ VSS_STATE_STOPPED, VSS_EVENT_FREEZE, VSS_STATE_STOPPED, VSS_ACTION_NONE },
};

static void test_transitions(void **state)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const transition *t = &table[i];
		vss_action action = _VSS_ACTION_MAX;
		vss_state to = vss_state_next(t->from, t->event, &action);

		print_message("%s + %s -> %s / %s\n", vss_state_to_string(t->from),
			      vss_event_to_string(t->event), vss_state_to_string(to),
			      vss_action_to_string(action));
		assert_int_equal(to, t->to);
		assert_int_equal(action, t->action);
	}
}

/* Whatever arrives, a frozen daemon never ends up "idle" without a thaw. */
static void test_frozen_never_left_without_thaw(void **state)
{
	for (int e = 0; e < _VSS_EVENT_MAX; e++) {
		vss_action action;
		vss_state to = vss_state_next(VSS_STATE_FROZEN, (vss_event)e, &action);

		if (to != VSS_STATE_FROZEN)
			assert_true(action == VSS_ACTION_THAW || action == VSS_ACTION_THAW_REPLY ||
				    action == VSS_ACTION_THAW_REOPEN ||
				    action == VSS_ACTION_THAW_QUIT);
	}
}

static void test_every_name_defined(void **state)
{
	for (int s = 0; s < _VSS_STATE_MAX; s++)
		assert_non_null(vss_state_to_string((vss_state)s));
	for (int e = 0; e < _VSS_EVENT_MAX; e++)
		assert_non_null(vss_event_to_string((vss_event)e));
	for (int a = 0; a < _VSS_ACTION_MAX; a++)
		assert_non_null(vss_action_to_string((vss_action)a));
	assert_string_equal(vss_state_to_string(_VSS_STATE_MAX), "invalid");
	assert_string_equal(vss_op_to_string(5), "FREEZE");
	assert_string_equal(vss_op_to_string(200), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transitions),
		cmocka_unit_test(test_frozen_never_left_without_thaw),
		cmocka_unit_test(test_every_name_defined),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
