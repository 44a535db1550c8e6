/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "vss-hooks.h"

static char *dir;

static int setup(void **state)
{
	dir = g_dir_make_tmp("hv-hooks-XXXXXX", NULL);
	assert_non_null(dir);
	return 0;
}

static int teardown(void **state)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(dir, name, NULL);

		if (g_file_test(p, G_FILE_TEST_IS_DIR))
			g_rmdir(p);
		else
			g_unlink(p);
	}
	g_rmdir(dir);
	g_clear_pointer(&dir, g_free);
	return 0;
}

static char *script(const char *name, const char *body, int mode)
{
	char *path = g_build_filename(dir, name, NULL);
	g_autofree char *text = g_strdup_printf("#!/bin/sh\n%s\n", body);

	assert_true(g_file_set_contents(path, text, -1, NULL));
	assert_int_equal(chmod(path, (mode_t)mode), 0);
	return path;
}

static void test_ignored_names(void **state)
{
	static const char *const ignored[] = { "x~", "a.dpkg-old", "a.dpkg-new", "a.dpkg-dist",
					       "a.rpmnew", "a.rpmsave", "a.ucf-old", ".hidden",
					       "#lock#", "a.swp", "", NULL };
	static const char *const kept[] = { "10-postgres", "mysql.sh", "a.dpkg", "hook", NULL };

	for (const char *const *n = ignored; *n; n++)
		assert_true(vss_hook_name_ignored(*n));
	for (const char *const *n = kept; *n; n++)
		assert_false(vss_hook_name_ignored(*n));
	assert_true(vss_hook_name_ignored(NULL));
}

static void test_list(void **state)
{
	g_autoptr(GPtrArray) hooks = NULL;
	g_autoptr(GPtrArray) skipped = NULL;
	g_autofree char *b = script("20-b", "exit 0", 0755);
	g_autofree char *a = script("10-a", "exit 0", 0700);
	g_autofree char *old = script("15-a.dpkg-old", "exit 0", 0755);
	g_autofree char *noexec = script("30-c", "exit 0", 0644);
	g_autofree char *sub = g_build_filename(dir, "40-dir", NULL);

	assert_int_equal(g_mkdir(sub, 0755), 0);
	assert_int_equal(vss_hooks_list(dir, &hooks, &skipped), 0);
	assert_int_equal(hooks->len, 2);
	assert_string_equal(g_ptr_array_index(hooks, 0), a);
	assert_string_equal(g_ptr_array_index(hooks, 1), b);
	assert_int_equal(skipped->len, 3);
}

static bool skipped_has(GPtrArray *skipped, const char *text)
{
	for (guint i = 0; i < skipped->len; i++)
		if (strstr(g_ptr_array_index(skipped, i), text))
			return true;
	return false;
}

/* Hooks run as root: what others could have written is not run. */
static void test_list_refuses_writable(void **state)
{
	g_autoptr(GPtrArray) hooks = NULL;
	g_autoptr(GPtrArray) skipped = NULL;
	g_autofree char *ok = script("10-ok", "exit 0", 0755);
	g_autofree char *grp = script("20-group", "exit 0", 0775);
	g_autofree char *oth = script("30-others", "exit 0", 0757);
	g_autofree char *foreign = script("40-foreign", "exit 0", 0755);
	bool root = geteuid() == 0;

	if (root)
		assert_int_equal(chown(foreign, 1, (gid_t)-1), 0);

	assert_int_equal(vss_hooks_list(dir, &hooks, &skipped), 0);
	assert_int_equal(hooks->len, root ? 1 : 2);
	assert_string_equal(g_ptr_array_index(hooks, 0), ok);
	assert_true(skipped_has(skipped, "20-group: writable by group or others"));
	assert_true(skipped_has(skipped, "30-others: writable by group or others"));
	if (root)
		assert_true(skipped_has(skipped, "40-foreign: owned by another user than root"));
	for (guint i = 0; i < skipped->len; i++)
		assert_true(vss_hook_skip_is_refusal(g_ptr_array_index(skipped, i)));
	assert_false(vss_hook_skip_is_refusal("15-a.dpkg-old: name left by a package manager"));
	assert_false(vss_hook_skip_is_refusal(NULL));

	/* A directory others may write into: nothing in it runs. */
	g_clear_pointer(&hooks, g_ptr_array_unref);
	g_clear_pointer(&skipped, g_ptr_array_unref);
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(vss_hooks_list(dir, &hooks, &skipped), 0);
	assert_int_equal(hooks->len, 0);
	assert_true(skipped_has(skipped, "writable by group or others: no hook in it is run"));
	assert_int_equal(chmod(dir, 0700), 0);
}

static void test_list_missing_dir(void **state)
{
	g_autoptr(GPtrArray) hooks = NULL;

	assert_int_equal(vss_hooks_list("/nonexistent/vss.d", &hooks, NULL), 0);
	assert_int_equal(hooks->len, 0);
	assert_int_equal(vss_hooks_list(NULL, &hooks, NULL), -EINVAL);
}

static void test_run_ok_and_output(void **state)
{
	/* Argument, clean environment, stdin from /dev/null, stderr captured too. */
	g_autofree char *p = script("hook", "echo \"arg=$1 secret=${HV_SECRET:-unset}\"; "
					    "read x && echo got-input; echo err >&2; exit 0",
				    0755);
	vss_hook_result res;

	setenv("HV_SECRET", "leaked", 1);
	assert_int_equal(vss_hook_run(p, "freeze", 5000, &res), 0);
	unsetenv("HV_SECRET");
	assert_int_equal(res.status, 0);
	assert_false(res.timed_out);
	assert_non_null(strstr(res.output, "arg=freeze secret=unset"));
	assert_null(strstr(res.output, "got-input"));
	assert_non_null(strstr(res.output, "err"));
	vss_hook_result_clear(&res);
}

static void test_run_failure(void **state)
{
	g_autofree char *p = script("hook", "exit 3", 0755);
	vss_hook_result res;

	assert_int_equal(vss_hook_run(p, "thaw", 5000, &res), -EPROTO);
	assert_int_equal(res.status, 3);
	vss_hook_result_clear(&res);
}

static void test_run_timeout_kills_group(void **state)
{
	/* The child sleep keeps the pipe open: it must be killed with the group. */
	g_autofree char *p = script("hook", "sleep 30 & sleep 30", 0755);
	vss_hook_result res;
	gint64 start = g_get_monotonic_time();

	assert_int_equal(vss_hook_run(p, "freeze", 200, &res), -ETIMEDOUT);
	assert_true(res.timed_out);
	assert_true(g_get_monotonic_time() - start < 5 * G_USEC_PER_SEC);
	vss_hook_result_clear(&res);
}

static void test_run_truncates_output(void **state)
{
	g_autofree char *p = script("hook", "i=0; while [ $i -lt 9000 ]; do "
					    "echo 0123456789; i=$((i+1)); done",
				    0755);
	vss_hook_result res;

	assert_int_equal(vss_hook_run(p, "freeze", 10000, &res), 0);
	assert_true(res.truncated);
	assert_int_equal(strlen(res.output), 64 * 1024);
	vss_hook_result_clear(&res);
}

static void test_run_missing(void **state)
{
	vss_hook_result res;

	assert_true(vss_hook_run("/nonexistent/hook", "freeze", 1000, &res) < 0);
	vss_hook_result_clear(&res);
	assert_int_equal(vss_hook_run(NULL, "freeze", 1000, &res), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ignored_names),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_refuses_writable, setup, teardown),
		cmocka_unit_test(test_list_missing_dir),
		cmocka_unit_test_setup_teardown(test_run_ok_and_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_timeout_kills_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_truncates_output, setup, teardown),
		cmocka_unit_test(test_run_missing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
