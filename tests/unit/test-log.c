/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "hv-log.h"

static FILE *out;

static int setup(void **state)
{
	out = tmpfile();
	assert_non_null(out);
	hv_log_setup("test-log", HV_LOG_TARGET_STDERR, false);
	hv_log_set_stream(out);
	return 0;
}

static int teardown(void **state)
{
	hv_log_set_stream(NULL);
	fclose(out);
	return 0;
}

static char *contents(void)
{
	long n;
	char *buf;

	fflush(out);
	n = ftell(out);
	buf = g_malloc0((gsize)n + 1);
	rewind(out);
	assert_int_equal(fread(buf, 1, (size_t)n, out), (size_t)n);
	return buf;
}

static void test_errno_helper(void **state)
{
	g_autofree char *text = NULL;

	assert_int_equal(hv_log_errno(-ENOENT, "Failed to open '%s': %m", "/x"), -ENOENT);
	text = contents();
	assert_non_null(strstr(text, "warning: Failed to open '/x': No such file or directory"));
}

static void test_hold_and_release(void **state)
{
	g_autofree char *before = NULL;
	g_autofree char *after = NULL;

	hv_log_hold();
	assert_true(hv_log_is_held());
	g_info("line while frozen");
	g_warning("warning while frozen");
	/* Nested holds: only the outermost release writes. */
	hv_log_hold();
	hv_log_release();
	before = contents();
	assert_string_equal(before, "");

	hv_log_release();
	assert_false(hv_log_is_held());
	after = contents();
	assert_non_null(strstr(after, "line while frozen (held while frozen"));
	assert_non_null(strstr(after, "warning: warning while frozen"));
	/* Order is kept. */
	assert_true(strstr(after, "line while") < strstr(after, "warning while"));
}

static void test_debug_filter(void **state)
{
	g_autofree char *a = NULL;
	g_autofree char *b = NULL;

	g_debug("invisible");
	a = contents();
	assert_null(strstr(a, "invisible"));
	hv_log_set_debug(true);
	g_debug("visible");
	hv_log_set_debug(false);
	b = contents();
	assert_non_null(strstr(b, "debug: visible"));
}

static void test_release_without_hold(void **state)
{
	hv_log_release();
	assert_false(hv_log_is_held());
	g_info("still works");
	g_autofree char *t = contents();
	assert_non_null(strstr(t, "still works"));
}

static void test_targets(void **state)
{
	assert_int_equal(hv_log_target_from_string("journal"), HV_LOG_TARGET_JOURNAL);
	assert_int_equal(hv_log_target_from_string("nope"), _HV_LOG_TARGET_INVALID);
	assert_string_equal(hv_log_target_to_string(HV_LOG_TARGET_SYSLOG), "syslog");
	assert_null(hv_log_target_to_string(_HV_LOG_TARGET_MAX));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_errno_helper, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_and_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debug_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_without_hold, setup, teardown),
		cmocka_unit_test(test_targets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
