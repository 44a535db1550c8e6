/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <glib.h>

#include "kvp-helper.h"
#include "kvp-net-test-util.h"

static char *dir;

static int setup(void **state)
{
	dir = g_dir_make_tmp("kvp-helper-XXXXXX", NULL);
	assert_non_null(dir);
	return 0;
}

static int teardown(void **state)
{
	kvp_test_rmtree(dir);
	g_clear_pointer(&dir, g_free);
	return 0;
}

static char *script(const char *name, const char *body, mode_t mode)
{
	char *path = g_build_filename(dir, name, NULL);
	g_autofree char *text = g_strdup_printf("#!/bin/sh\n%s\n", body);

	kvp_test_write(path, text, mode);
	return path;
}

static void test_argv_is_not_shell_text(void **state)
{
	g_autofree char *path =
	    script("args", "for a in \"$@\"; do printf '<%s>\\n' \"$a\"; done", 0755);
	g_autofree char *canary = g_build_filename(dir, "canary", NULL);
	g_autofree char *evil =
	    g_strdup_printf("$(touch %s); `touch %s` ; rm -rf /nonexistent", canary, canary);
	const char *argv[] = {path, evil, "two words", "", NULL};
	g_autofree char *expected = g_strdup_printf("<%s>\n<two words>\n<>\n", evil);
	kvp_helper_result res;

	assert_int_equal(kvp_helper_run(argv, 5000, 4096, &res), 0);
	assert_true(kvp_helper_succeeded(&res));
	assert_string_equal(res.output, expected);
	assert_false(g_file_test(canary, G_FILE_TEST_EXISTS));
	kvp_helper_result_clear(&res);
}

static void test_exit_status(void **state)
{
	g_autofree char *path = script("fails", "echo partial; exit 3", 0755);
	const char *argv[] = {path, NULL};
	kvp_helper_result res;

	assert_int_equal(kvp_helper_run(argv, 5000, 4096, &res), 0);
	assert_false(kvp_helper_succeeded(&res));
	assert_true(WIFEXITED(res.wait_status));
	assert_int_equal(WEXITSTATUS(res.wait_status), 3);
	assert_string_equal(res.output, "partial\n");
	kvp_helper_result_clear(&res);
}

static void test_missing_and_not_executable(void **state)
{
	g_autofree char *missing = g_build_filename(dir, "nothing-here", NULL);
	g_autofree char *plain = script("plain", "echo hi", 0644);
	const char *argv1[] = {missing, NULL};
	const char *argv2[] = {plain, NULL};
	kvp_helper_result res;

	assert_int_equal(kvp_helper_run(argv1, 1000, 4096, &res), -ENOENT);
	assert_null(res.output);
	/* As root, access(X_OK) fails too when no execute bit is set at all. */
	assert_int_equal(kvp_helper_run(argv2, 1000, 4096, &res), -EACCES);
}

static void test_timeout_kills_the_group(void **state)
{
	g_autofree char *pidfile = g_build_filename(dir, "grandchild.pid", NULL);
	g_autofree char *body =
	    g_strdup_printf("echo started\nsleep 60 &\necho $! > %s\nwait\necho never", pidfile);
	g_autofree char *path = script("slow", body, 0755);
	g_autofree char *pid_text = NULL;
	const char *argv[] = {path, NULL};
	kvp_helper_result res;
	gint64 start = g_get_monotonic_time();
	pid_t grandchild;

	assert_int_equal(kvp_helper_run(argv, 300, 4096, &res), 0);
	assert_true(g_get_monotonic_time() - start < 3 * G_USEC_PER_SEC);
	assert_true(res.timed_out);
	assert_false(kvp_helper_succeeded(&res));
	assert_string_equal(res.output, "started\n");
	kvp_helper_result_clear(&res);

	pid_text = kvp_test_read(pidfile);
	assert_non_null(pid_text);
	grandchild = (pid_t)atoi(pid_text);
	assert_true(grandchild > 0);
	/* Killed with its parent's group; reaped by init (or gone) shortly after. */
	for (int i = 0; i < 200; i++) {
		g_autofree char *stat_path = g_strdup_printf("/proc/%d/stat", grandchild);
		g_autofree char *stat = kvp_test_read(stat_path);

		if (!stat || strstr(stat, ") Z "))
			return;
		g_usleep(10000);
	}
	fail_msg("the helper's child %d still runs", grandchild);
}

static void test_background_child_holding_stdout(void **state)
{
	/* The helper exits but leaves a child holding its stdout open. */
	g_autofree char *path = script("leaves", "echo done\nsleep 60 &\nexit 0", 0755);
	const char *argv[] = {path, NULL};
	kvp_helper_result res;
	gint64 start = g_get_monotonic_time();

	assert_int_equal(kvp_helper_run(argv, 2000, 4096, &res), 0);
	assert_true(g_get_monotonic_time() - start < 1500 * 1000);
	assert_true(kvp_helper_succeeded(&res));
	assert_string_equal(res.output, "done\n");
	kvp_helper_result_clear(&res);
}

static void test_output_cap(void **state)
{
	g_autofree char *path = script("chatty",
				       "i=0\nwhile [ $i -lt 20000 ]; do "
				       "echo 0123456789012345678901234567890123456789; "
				       "i=$((i+1)); done",
				       0755);
	const char *argv[] = {path, NULL};
	kvp_helper_result res;

	assert_int_equal(kvp_helper_run(argv, 20000, 100, &res), 0);
	assert_true(kvp_helper_succeeded(&res));
	assert_true(res.truncated);
	assert_int_equal(res.output_len, 100);
	assert_int_equal(strlen(res.output), 100);
	kvp_helper_result_clear(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_argv_is_not_shell_text, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exit_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_and_not_executable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeout_kills_the_group, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_background_child_holding_stdout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_output_cap, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
