/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "kvp-osinfo.h"

static const struct utsname uts = {
    .sysname = "Linux",
    .release = "6.1.0-18-amd64",
    .machine = "x86_64",
};

static char *fixture(const char *name)
{
	return g_build_filename(HV_FIXTURES_DIR, "os-release", name, NULL);
}

typedef struct os_case {
	const char *file;
	const char *name;
	const char *major;
} os_case;

static void test_os_release_variants(void **state)
{
	static const os_case cases[] = {
	    {"debian-12", "Debian GNU/Linux", "12"},
	    {"ubuntu-22.04", "Ubuntu", "22.04"},
	    {"fedora-39-unquoted", "Fedora Linux", "39"},
	    {"arch-single-quotes", "Arch Linux", ""},
	    {"escapes-comments-crlf", "My \"Special\" OS \\ $HOME", "1.0 beta"},
	    /* No NAME: upstream keeps the kernel's name. */
	    {"missing-fields", "Linux", ""},
	    {"repeated-keys", "Overridden OS", "7.9"},
	    /* Control characters dropped, invalid UTF-8 replaced. */
	    {"invalid-utf8-control", "Bad\xef\xbf\xbd OSx", "2"},
	    {"unterminated-quote", "Unterminated OS", "3"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *path = fixture(cases[i].file);
		const char *paths[] = {path, NULL};
		const char *none[] = {NULL};
		kvp_os_info info;

		kvp_os_info_load(paths, none, &uts, &info);
		if (g_strcmp0(info.name, cases[i].name) || g_strcmp0(info.major, cases[i].major))
			fail_msg("%s: name \"%s\" major \"%s\"", cases[i].file, info.name,
				 info.major);
		assert_string_equal(info.minor, "");
		assert_string_equal(info.build, "6.1.0-18-amd64");
		assert_string_equal(info.version, "6.1.0");
		assert_string_equal(info.arch, "x86_64");
		kvp_os_info_clear(&info);
	}
}

static void test_usr_lib_fallback(void **state)
{
	g_autofree char *usr_lib = fixture("ubuntu-22.04");
	const char *paths[] = {"/nonexistent/etc/os-release", usr_lib, NULL};
	g_autofree char *legacy = fixture("legacy-redhat-release");
	const char *legacy_paths[] = {legacy, NULL};
	kvp_os_info info;

	/* The second os-release path is used, and the legacy files are not. */
	kvp_os_info_load(paths, legacy_paths, &uts, &info);
	assert_string_equal(info.name, "Ubuntu");
	assert_string_equal(info.major, "22.04");
	kvp_os_info_clear(&info);
}

static void test_legacy_files(void **state)
{
	g_autofree char *suse = fixture("legacy-SuSE-release");
	g_autofree char *redhat = fixture("legacy-redhat-release");
	const char *none[] = {"/nonexistent/os-release", NULL};
	const char *both[] = {suse, redhat, NULL};
	const char *rh_only[] = {"/nonexistent/SuSE-release", redhat, NULL};
	kvp_os_info info;

	/* Upstream: up to three lines, name, major, minor, as they are. */
	kvp_os_info_load(none, both, &uts, &info);
	assert_string_equal(info.name, "SUSE Linux Enterprise Server 11 (x86_64)");
	assert_string_equal(info.major, "VERSION = 11");
	assert_string_equal(info.minor, "PATCHLEVEL = 4");
	kvp_os_info_clear(&info);

	kvp_os_info_load(none, rh_only, &uts, &info);
	assert_string_equal(info.name, "Red Hat Enterprise Linux Server release 6.10 (Santiago)");
	assert_string_equal(info.major, "");
	assert_string_equal(info.minor, "");
	kvp_os_info_clear(&info);
}

static void test_nothing_found(void **state)
{
	const char *none[] = {"/nonexistent/os-release", NULL};
	const struct utsname plain = {.sysname = "Linux", .release = "6.8.0", .machine = "aarch64"};
	kvp_os_info info;

	kvp_os_info_load(none, none, &plain, &info);
	assert_string_equal(info.name, "Linux");
	assert_string_equal(info.major, "");
	assert_string_equal(info.version, "6.8.0");
	assert_string_equal(info.build, "6.8.0");
	assert_string_equal(info.arch, "aarch64");
	kvp_os_info_clear(&info);
}

static void test_unquote(void **state)
{
	static const char *const cases[][2] = {
	    {"plain", "plain"},
	    {"\"double quoted\"", "double quoted"},
	    {"'single $quoted \\n'", "single $quoted \\n"},
	    {"\"a\\\"b\\\\c\\$d\\`e\\x\"", "a\"b\\c$d`e\\x"},
	    {"unquoted\\ blank", "unquoted blank"},
	    {"value # comment", "value"},
	    {"\"joined\"'parts'", "joinedparts"},
	    {"", ""},
	    {"\"\"", ""},
	    {"trailing\r", "trailing"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *v = kvp_os_release_unquote(cases[i][0]);

		if (strcmp(v, cases[i][1]) != 0)
			fail_msg("unquote(%s) = \"%s\", expected \"%s\"", cases[i][0], v,
				 cases[i][1]);
	}
}

static void test_parse_missing(void **state)
{
	GHashTable *t = NULL;

	assert_int_equal(kvp_os_release_parse("/nonexistent/os-release", &t), -ENOENT);
	assert_null(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_os_release_variants),
	    cmocka_unit_test(test_usr_lib_fallback),
	    cmocka_unit_test(test_legacy_files),
	    cmocka_unit_test(test_nothing_found),
	    cmocka_unit_test(test_unquote),
	    cmocka_unit_test(test_parse_missing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
