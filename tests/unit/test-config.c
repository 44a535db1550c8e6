/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "hv-config.h"

typedef struct fixture {
	char *dir;
	char *main;
	char *dropins;
} fixture;

static int setup(void **state)
{
	fixture *f = g_new0(fixture, 1);

	f->dir = g_dir_make_tmp("hv-config-XXXXXX", NULL);
	assert_non_null(f->dir);
	f->main = g_build_filename(f->dir, "hyperv-daemons.conf", NULL);
	f->dropins = g_build_filename(f->dir, "hyperv-daemons.conf.d", NULL);
	*state = f;
	return 0;
}

static void rm_rf(const char *path)
{
	g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(path, name, NULL);

		if (g_file_test(p, G_FILE_TEST_IS_DIR))
			rm_rf(p);
		else
			g_unlink(p);
	}
	g_rmdir(path);
}

static int teardown(void **state)
{
	fixture *f = *state;

	rm_rf(f->dir);
	g_free(f->dir);
	g_free(f->main);
	g_free(f->dropins);
	g_free(f);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void write_dropin(fixture *f, const char *name, const char *text)
{
	g_autofree char *p = g_build_filename(f->dropins, name, NULL);

	g_mkdir_with_parents(f->dropins, 0755);
	write_file(p, text);
}

static void test_defaults_when_missing(void **state)
{
	g_autoptr(hv_config) c = hv_config_new_empty();
	g_autofree char *s = NULL;
	g_auto(GStrv) v = NULL;
	unsigned int n = 0;
	bool b = false;
	int e = -1;
	static const char *const names[] = { "a", "b", NULL };

	assert_int_equal(hv_config_get_uint(c, "vss", "freeze-timeout", 120, 1, 3600, &n, NULL), 0);
	assert_int_equal(n, 120);
	assert_int_equal(hv_config_get_bool(c, "vss", "preflush", true, &b, NULL), 0);
	assert_true(b);
	assert_int_equal(hv_config_get_string(c, "vss", "device", "/dev/x", &s, NULL), 0);
	assert_string_equal(s, "/dev/x");
	assert_int_equal(hv_config_get_strv(c, "vss", "exclude-fstypes", &v, NULL), 0);
	assert_int_equal(g_strv_length(v), 0);
	assert_int_equal(hv_config_get_enum(c, "vss", "mode", names, 1, &e, NULL), 0);
	assert_int_equal(e, 1);
	assert_string_equal(hv_config_origin(c, "vss", "device"), "built-in default");
}

static void test_missing_default_file_is_fine(void **state)
{
	fixture *f = *state;
	g_autoptr(hv_config) c = NULL;
	g_autofree char *err = NULL;

	/* An explicitly named file must exist. */
	assert_int_equal(hv_config_load(f->main, &c, &err), -ENOENT);
	assert_null(c);
	assert_non_null(strstr(err, f->main));
}

static void test_layering(void **state)
{
	fixture *f = *state;
	g_autoptr(hv_config) c = NULL;
	g_autofree char *err = NULL;
	g_autofree char *dev = NULL;
	g_auto(GStrv) types = NULL;
	unsigned int n = 0;

	write_file(f->main, "# comment\n[vss]\nfreeze-timeout = 60\ndevice=/dev/a\n"
			    "exclude-fstypes = vfat; ntfs ,,\n");
	write_dropin(f, "20-b.conf", "[vss]\nfreeze-timeout=30\n");
	write_dropin(f, "10-a.conf", "[vss]\nfreeze-timeout=10\ndevice=/dev/b\n");
	write_dropin(f, "ignored.txt", "[vss]\nfreeze-timeout=999\n");

	assert_int_equal(hv_config_load(f->main, &c, &err), 0);
	assert_int_equal(hv_config_get_uint(c, "vss", "freeze-timeout", 1, 1, 3600, &n, &err), 0);
	/* Drop-ins apply in name order, the last one wins. */
	assert_int_equal(n, 30);
	assert_non_null(strstr(hv_config_origin(c, "vss", "freeze-timeout"), "20-b.conf"));
	assert_int_equal(hv_config_get_string(c, "vss", "device", NULL, &dev, &err), 0);
	assert_string_equal(dev, "/dev/b");
	assert_int_equal(hv_config_get_strv(c, "vss", "exclude-fstypes", &types, &err), 0);
	assert_int_equal(g_strv_length(types), 2);
	assert_string_equal(types[0], "vfat");
	assert_string_equal(types[1], "ntfs");
	n = 0;
	for (const char *const *p = hv_config_files(c); *p; p++)
		n++;
	assert_int_equal(n, 3);
}

static void test_bad_values_name_file_key_value(void **state)
{
	fixture *f = *state;
	g_autoptr(hv_config) c = NULL;
	g_autofree char *err = NULL;
	static const char *const names[] = { "fail", "ignore", NULL };
	unsigned int n = 0;
	bool b;
	int e;

	write_file(f->main, "[vss]\nfreeze-timeout=soon\npreflush=maybe\nforeign-frozen=panic\n"
			    "big=99999\n");
	assert_int_equal(hv_config_load(f->main, &c, &err), 0);

	assert_int_equal(hv_config_get_uint(c, "vss", "freeze-timeout", 1, 1, 3600, &n, &err),
			 -EINVAL);
	assert_non_null(strstr(err, f->main));
	assert_non_null(strstr(err, "freeze-timeout"));
	assert_non_null(strstr(err, "'soon'"));
	g_clear_pointer(&err, g_free);

	assert_int_equal(hv_config_get_uint(c, "vss", "big", 1, 1, 3600, &n, &err), -EINVAL);
	assert_non_null(strstr(err, "from 1 to 3600"));
	g_clear_pointer(&err, g_free);

	assert_int_equal(hv_config_get_bool(c, "vss", "preflush", true, &b, &err), -EINVAL);
	assert_non_null(strstr(err, "'maybe'"));
	g_clear_pointer(&err, g_free);

	assert_int_equal(hv_config_get_enum(c, "vss", "foreign-frozen", names, 0, &e, &err),
			 -EINVAL);
	assert_non_null(strstr(err, "fail, ignore"));
}

static void test_syntax_error(void **state)
{
	fixture *f = *state;
	g_autoptr(hv_config) c = NULL;
	g_autofree char *err = NULL;

	write_file(f->main, "[vss]\nfreeze-timeout=1\n");
	write_dropin(f, "50-broken.conf", "this is not a key file\n");
	assert_true(hv_config_load(f->main, &c, &err) < 0);
	assert_null(c);
	assert_non_null(strstr(err, "50-broken.conf"));
}

static void test_bools(void **state)
{
	fixture *f = *state;
	g_autoptr(hv_config) c = NULL;
	static const char *const yes[] = { "a", "b", "c", "d" };
	bool b;

	write_file(f->main, "[x]\na=yes\nb=On\nc=1\nd=TRUE\ne=no\n");
	assert_int_equal(hv_config_load(f->main, &c, NULL), 0);
	for (size_t i = 0; i < 4; i++) {
		b = false;
		assert_int_equal(hv_config_get_bool(c, "x", yes[i], false, &b, NULL), 0);
		assert_true(b);
	}
	assert_int_equal(hv_config_get_bool(c, "x", "e", true, &b, NULL), 0);
	assert_false(b);
}

static void test_unknown_keys(void **state)
{
	fixture *f = *state;
	g_autoptr(hv_config) c = NULL;
	g_autoptr(GPtrArray) u = NULL;
	static const char *const known[] = { "vss.freeze-timeout", NULL };

	write_file(f->main, "[vss]\nfreeze-timeout=5\nfreeze-timout=5\n");
	assert_int_equal(hv_config_load(f->main, &c, NULL), 0);
	u = hv_config_unknown_keys(c, known);
	assert_int_equal(u->len, 1);
	assert_non_null(strstr(g_ptr_array_index(u, 0), "freeze-timout"));
}

/* "group.*" takes a whole section: another daemon's, in the suite's shared file. */
static void test_unknown_keys_whole_group(void **state)
{
	fixture *f = *state;
	g_autoptr(hv_config) c = NULL;
	g_autoptr(GPtrArray) u = NULL;
	static const char *const known[] = { "vss.freeze-timeout", "kvp.*", NULL };

	write_file(f->main, "[vss]\nfreeze-timeout=5\n[kvp]\npool-dir=/x\nanything=1\n"
			    "[kvpp]\npool-dir=/y\n");
	assert_int_equal(hv_config_load(f->main, &c, NULL), 0);
	u = hv_config_unknown_keys(c, known);
	assert_int_equal(u->len, 1);
	assert_non_null(strstr(g_ptr_array_index(u, 0), "[kvpp] pool-dir"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_when_missing),
		cmocka_unit_test_setup_teardown(test_missing_default_file_is_fine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layering, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_values_name_file_key_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bools, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_keys_whole_group, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
