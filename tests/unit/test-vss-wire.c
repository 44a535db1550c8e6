/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The VSS messages as the driver sends and expects them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hv-status.h"
#include "hv-vss.h"
#include "vss-state.h"

static void msg_with_op(uint8_t op, struct hv_vss_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->vss_hdr.operation = op;
}

static void test_sizes(void **state)
{
	assert_int_equal(sizeof(struct hv_vss_msg), 12);
	assert_int_equal(sizeof(struct hv_vss_hdr), 8);
	assert_int_equal(offsetof(struct hv_vss_msg, vss_cf.flags), 8);
	assert_int_equal(offsetof(struct hv_vss_msg, dm_info.flags), 8);
}

static void test_parse_ops(void **state)
{
	static const struct {
		uint8_t op;
		vss_event event;
	} cases[] = {
		{ HV_VSS_OP_CREATE, VSS_EVENT_OTHER_OP },
		{ HV_VSS_OP_DELETE, VSS_EVENT_OTHER_OP },
		{ HV_VSS_OP_HOT_BACKUP, VSS_EVENT_HOT_BACKUP },
		{ HV_VSS_OP_GET_DM_INFO, VSS_EVENT_OTHER_OP },
		{ HV_VSS_OP_BU_COMPLETE, VSS_EVENT_OTHER_OP },
		{ HV_VSS_OP_FREEZE, VSS_EVENT_FREEZE },
		{ HV_VSS_OP_THAW, VSS_EVENT_THAW },
		{ HV_VSS_OP_AUTO_RECOVER, VSS_EVENT_OTHER_OP },
		{ 8, VSS_EVENT_BAD_REQUEST },
		{ 42, VSS_EVENT_BAD_REQUEST },
		{ HV_VSS_OP_REGISTER, VSS_EVENT_BAD_REQUEST },
		{ HV_VSS_OP_REGISTER1, VSS_EVENT_BAD_REQUEST },
		{ 255, VSS_EVENT_BAD_REQUEST },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hv_vss_msg m;
		uint8_t op = 0;

		msg_with_op(cases[i].op, &m);
		assert_int_equal(vss_parse_request(&m, sizeof(m), &op), cases[i].event);
		assert_int_equal(op, cases[i].op);
	}
}

static void test_parse_malformed(void **state)
{
	uint8_t big[6260] = { HV_VSS_OP_FREEZE };
	struct hv_vss_msg m;
	uint8_t op = 0;

	msg_with_op(HV_VSS_OP_FREEZE, &m);
	/* Too short, too long, empty, NULL: always a bad request, never a read past the end. */
	assert_int_equal(vss_parse_request(&m, 11, &op), VSS_EVENT_BAD_REQUEST);
	assert_int_equal(op, HV_VSS_OP_FREEZE);
	assert_int_equal(vss_parse_request(&m, 1, NULL), VSS_EVENT_BAD_REQUEST);
	assert_int_equal(vss_parse_request(big, sizeof(big), &op), VSS_EVENT_BAD_REQUEST);
	assert_int_equal(vss_parse_request(&m, 0, &op), VSS_EVENT_BAD_REQUEST);
	assert_int_equal(op, 0xff);
	assert_int_equal(vss_parse_request(NULL, 12, &op), VSS_EVENT_BAD_REQUEST);
}

static void test_reply(void **state)
{
	struct hv_vss_msg r;
	uint8_t raw[12];

	vss_build_reply(HV_VSS_OP_HOT_BACKUP, HV_S_OK, &r);
	memcpy(raw, &r, sizeof(raw));
	/* Status in the first four bytes (little-endian), flags at offset 8. */
	assert_int_equal(raw[0] | raw[1] << 8 | raw[2] << 16 | (uint32_t)raw[3] << 24, 0);
	assert_int_equal(r.vss_cf.flags, HV_VSS_HBU_NO_AUTO_RECOVERY);

	vss_build_reply(HV_VSS_OP_FREEZE, HV_E_FAIL, &r);
	memcpy(raw, &r, sizeof(raw));
	assert_int_equal(raw[0], 0x05);
	assert_int_equal(raw[1], 0x40);
	assert_int_equal(raw[2], 0x00);
	assert_int_equal(raw[3], 0x80);
	assert_int_equal(r.vss_cf.flags, 0);

	vss_build_reply(HV_VSS_OP_HOT_BACKUP, HV_E_FAIL, &r);
	assert_int_equal(r.vss_cf.flags, 0);
}

static void test_register_reply(void **state)
{
	uint32_t v = HV_VSS_OP_REGISTER1, got = 0;
	uint32_t wrong = 128;
	uint8_t twelve[12] = { 0 };

	assert_int_equal(vss_parse_register_reply(&v, sizeof(v), &got), 0);
	assert_int_equal(got, 129);
	assert_int_equal(vss_parse_register_reply(&wrong, sizeof(wrong), &got), -EPROTO);
	assert_int_equal(vss_parse_register_reply(twelve, sizeof(twelve), &got), -EBADMSG);
	assert_int_equal(vss_parse_register_reply(&v, 2, &got), -EBADMSG);
	assert_int_equal(vss_parse_register_reply(NULL, 4, &got), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_parse_ops),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_register_reply),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
