/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Target names and directories: the pure checks, and the no-symlink walk on a tmpdir. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "fcopy-path.h"

static void test_file_names(void **state)
{
	char longest[NAME_MAX + 2];

	assert_int_equal(fcopy_check_file_name("a.txt"), 0);
	assert_int_equal(fcopy_check_file_name(".hidden"), 0);
	assert_int_equal(fcopy_check_file_name("..."), 0);
	assert_int_equal(fcopy_check_file_name("R\xc3\xa9sum\xc3\xa9"), 0);
	assert_int_equal(fcopy_check_file_name(""), -EINVAL);
	assert_int_equal(fcopy_check_file_name("."), -EINVAL);
	assert_int_equal(fcopy_check_file_name(".."), -EINVAL);
	assert_int_equal(fcopy_check_file_name("a/b"), -EINVAL);
	assert_int_equal(fcopy_check_file_name("/etc/passwd"), -EINVAL);
	assert_int_equal(fcopy_check_file_name("../x"), -EINVAL);
	assert_int_equal(fcopy_check_file_name(NULL), -EINVAL);

	memset(longest, 'n', NAME_MAX);
	longest[NAME_MAX] = '\0';
	assert_int_equal(fcopy_check_file_name(longest), 0);
	longest[NAME_MAX] = 'n';
	longest[NAME_MAX + 1] = '\0';
	assert_int_equal(fcopy_check_file_name(longest), -ENAMETOOLONG);
}

static void test_normalize(void **state)
{
	static const struct {
		const char *in;
		const char *out;
		int r;
	} cases[] = {
	    {"/", "/", 0},
	    {"//", "/", 0},
	    {"/tmp", "/tmp", 0},
	    {"/tmp/", "/tmp", 0},
	    {"//tmp//a///b/", "/tmp/a/b", 0},
	    {"/tmp/./a/.", "/tmp/a", 0},
	    {"/./.", "/", 0},
	    {"/a/..b/c..", "/a/..b/c..", 0},
	    {"/tmp/../etc", NULL, -EINVAL},
	    {"/..", NULL, -EINVAL},
	    {"/a/b/..", NULL, -EINVAL},
	    {"tmp", NULL, -EINVAL},
	    {"", NULL, -EINVAL},
	    {"./x", NULL, -EINVAL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = NULL;

		assert_int_equal(fcopy_normalize_dir(cases[i].in, &out), cases[i].r);
		if (cases[i].out)
			assert_string_equal(out, cases[i].out);
		free(out);
	}
}

static void test_allowed(void **state)
{
	const char *const list[] = {"/srv/in", "/home/admin/drop", NULL};
	const char *const root[] = {"/", NULL};
	const char *const empty[] = {NULL};

	assert_true(fcopy_dir_allowed("/srv/in", list));
	assert_true(fcopy_dir_allowed("/srv/in/deeper/still", list));
	assert_true(fcopy_dir_allowed("/home/admin/drop", list));
	assert_false(fcopy_dir_allowed("/srv/incoming", list)); /* not a component boundary */
	assert_false(fcopy_dir_allowed("/srv", list));
	assert_false(fcopy_dir_allowed("/etc", list));
	assert_false(fcopy_dir_allowed("/", list));
	assert_true(fcopy_dir_allowed("/etc", root));
	assert_true(fcopy_dir_allowed("/etc", empty));
	assert_true(fcopy_dir_allowed("/etc", NULL));
}

struct fixture {
	char *dir;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char tmpl[] = "/tmp/test-fcopy-path-XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	/* the tmpdir itself must be reachable without links for the walk to accept it */
	f->dir = realpath(tmpl, NULL);
	assert_non_null(f->dir);
	*state = f;
	fcopy_path_set_use_openat2(true);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);

	assert_int_equal(system(cmd), 0);
	free(f->dir);
	free(f);
	fcopy_path_set_use_openat2(true);
	return 0;
}

static char *at(const struct fixture *f, const char *rel)
{
	return g_strdup_printf("%s/%s", f->dir, rel);
}

static void check_open(const struct fixture *f, bool openat2)
{
	g_autofree char *real = at(f, "real");
	g_autofree char *sub = at(f, "real/sub");
	g_autofree char *link = at(f, "link");
	g_autofree char *via_link = at(f, "link/sub");
	g_autofree char *via_link_new = at(f, "link/new");
	g_autofree char *file = at(f, "file");
	g_autofree char *via_file = at(f, "file/x");
	g_autofree char *missing = at(f, "missing/a/b");
	g_autofree char *leaf_link = at(f, "real/leaf");
	struct stat st;
	int fd = -1;

	fcopy_path_set_use_openat2(openat2);
	(void)mkdir(real, 0755);
	(void)mkdir(sub, 0755);
	(void)symlink(real, link);
	(void)symlink(sub, leaf_link);
	close(open(file, O_CREAT | O_WRONLY, 0644));

	assert_int_equal(fcopy_dir_open(sub, false, 0755, &fd), 0);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	close(fd);

	/* a link in the middle, or as the last component: refused */
	assert_int_equal(fcopy_dir_open(via_link, false, 0755, &fd), -ELOOP);
	assert_int_equal(fcopy_dir_open(link, false, 0755, &fd), -ELOOP);
	assert_int_equal(fcopy_dir_open(leaf_link, false, 0755, &fd), -ELOOP);
	/* ...also when directories are to be created below it, and nothing is created */
	assert_int_equal(fcopy_dir_open(via_link_new, true, 0755, &fd), -ELOOP);
	g_autofree char *real_new = g_build_filename(real, "new", NULL);
	assert_int_equal(lstat(real_new, &st), -1);

	assert_int_equal(fcopy_dir_open(via_file, false, 0755, &fd), -ENOTDIR);
	assert_int_equal(fcopy_dir_open(missing, false, 0755, &fd), -ENOENT);
	assert_int_equal(fcopy_dir_open("relative/dir", false, 0755, &fd), -EINVAL);
}

static void test_open_openat2(void **state)
{
	check_open(*state, true);
}

static void test_open_walk(void **state)
{
	check_open(*state, false);
}

static void check_create(const struct fixture *f, bool openat2)
{
	g_autofree char *deep = at(f, openat2 ? "n2/a/b/c" : "nw/a/b/c");
	g_autofree char *top = at(f, openat2 ? "n2" : "nw");
	mode_t old = umask(077);
	struct stat st;
	int fd = -1;

	fcopy_path_set_use_openat2(openat2);
	assert_int_equal(fcopy_dir_open(deep, true, 0755, &fd), 0);
	umask(old);
	close(fd);

	/* created with the requested mode whatever the umask */
	assert_int_equal(stat(deep, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(stat(top, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);

	/* again: everything exists now */
	assert_int_equal(fcopy_dir_open(deep, true, 0755, &fd), 0);
	close(fd);
}

static void test_create_openat2(void **state)
{
	check_create(*state, true);
}

static void test_create_walk(void **state)
{
	check_create(*state, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_file_names),
	    cmocka_unit_test(test_normalize),
	    cmocka_unit_test(test_allowed),
	    cmocka_unit_test_setup_teardown(test_open_openat2, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_walk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_openat2, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_walk, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
