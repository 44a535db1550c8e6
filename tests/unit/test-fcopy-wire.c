/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Our FCOPY wire definitions against the build host's <linux/hyperv.h>. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hv-fcopy.h"
#include "test-fcopy-wire-linux.h"

static void test_layout_matches_linux(void **state)
{
	struct fcopy_layout l;

	linux_fcopy_layout(&l);

	assert_int_equal(sizeof(struct hv_fcopy_hdr), l.hdr_size);
	assert_int_equal(offsetof(struct hv_fcopy_hdr, service_id0), l.hdr_service_id0);
	assert_int_equal(offsetof(struct hv_fcopy_hdr, service_id1), l.hdr_service_id1);
	assert_int_equal(sizeof(struct hv_start_fcopy), l.start_size);
	assert_int_equal(offsetof(struct hv_start_fcopy, file_name), l.start_file_name);
	assert_int_equal(offsetof(struct hv_start_fcopy, path_name), l.start_path_name);
	assert_int_equal(offsetof(struct hv_start_fcopy, copy_flags), l.start_copy_flags);
	assert_int_equal(offsetof(struct hv_start_fcopy, file_size), l.start_file_size);
	assert_int_equal(sizeof(struct hv_do_fcopy), l.do_size);
	assert_int_equal(offsetof(struct hv_do_fcopy, offset), l.do_offset);
	assert_int_equal(offsetof(struct hv_do_fcopy, size), l.do_data_size);
	assert_int_equal(offsetof(struct hv_do_fcopy, data), l.do_data);
}

static void test_constants_match_linux(void **state)
{
	struct fcopy_layout l;

	linux_fcopy_layout(&l);

	assert_int_equal(HV_FCOPY_W_MAX_PATH, l.w_max_path);
	assert_int_equal(HV_FCOPY_DATA_FRAGMENT, l.data_fragment);
	assert_int_equal(HV_FCOPY_OVER_WRITE, l.over_write);
	assert_int_equal(HV_FCOPY_CREATE_PATH, l.create_path);
	assert_int_equal(HV_FCOPY_VERSION_0, l.version_0);
	assert_int_equal(HV_FCOPY_VERSION_1, l.version_1);
	assert_int_equal(HV_FCOPY_CURRENT_VERSION, l.current_version);
	assert_int_equal(HV_FCOPY_START_FILE_COPY, l.op_start);
	assert_int_equal(HV_FCOPY_WRITE_TO_FILE, l.op_write);
	assert_int_equal(HV_FCOPY_COMPLETE_FCOPY, l.op_complete);
	assert_int_equal(HV_FCOPY_CANCEL_FCOPY, l.op_cancel);
}

static void test_documented_sizes(void **state)
{
	/* PROTOCOL.md section 1 */
	assert_int_equal(sizeof(struct hv_fcopy_hdr), 36);
	assert_int_equal(sizeof(struct hv_start_fcopy), 1088);
	assert_int_equal(sizeof(struct hv_do_fcopy), 6196);
	assert_int_equal(HV_FCOPY_DATA_FRAGMENT, 6144);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_layout_matches_linux),
	    cmocka_unit_test(test_constants_match_linux),
	    cmocka_unit_test(test_documented_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
