/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Configuration files (common/config.c): the main file and its drop-ins
 * through GKeyFile, then every getter with the keys, bounds and names the
 * daemons use, and the unknown-key report.
 *
 * Input: the main file, then up to three drop-ins, separated by NUL bytes
 * (a configuration file is text: no NUL of its own).
 *
 * Checked: a failed load or getter says why, naming the file or key;
 * numbers are within their bounds, enums within their names; every
 * unknown key is reported with its file, and no known key is.
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "fuzz-util.h"
#include "hv-config.h"

#define MAX_DROPINS 3

static char *main_path, *dropin_dir; /* live as long as the process */

/* The keys of common/daemon.c and hv_vss/vss-daemon.c. */
static const char *const known[] = {
    "daemon.runtime-dir",
    "daemon.log-target",
    "daemon.debug",
    "vss.transport",
    "vss.device",
    "vss.freeze-timeout",
    "vss.exclude-mountpoints",
    "vss.exclude-fstypes",
    "vss.preflush",
    "vss.parallel-freeze",
    "vss.foreign-frozen",
    "vss.hooks-dir",
    "vss.hook-timeout",
    NULL,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	hv_fuzz_glib_fatal_warnings();
	main_path = g_build_filename(hv_fuzz_tmpdir(), "hyperv-daemons.conf", NULL);
	dropin_dir = g_strconcat(main_path, ".d", NULL);
	if (g_mkdir(dropin_dir, 0700) < 0)
		abort();
	return 0;
}

static void check_error(int r, char **error)
{
	if (r == 0) {
		HV_FUZZ_CHECK(*error == NULL);
		return;
	}

	HV_FUZZ_CHECK(r == -EINVAL);
	HV_FUZZ_CHECK(*error && strstr(*error, "is not valid"));
	g_clear_pointer(error, g_free);
}

static void get_all(const hv_config *c)
{
	static const char *const transports[] = {"auto", "chardev", "netlink", NULL};
	static const char *const foreign[] = {"fail", "ignore", NULL};
	static const char *const strings[] = {"device", "hooks-dir"};
	static const char *const lists[] = {"exclude-mountpoints", "exclude-fstypes"};
	static const char *const bools[] = {"preflush", "parallel-freeze"};
	char *error = NULL;
	unsigned int u = 0;
	bool b;
	int r, e;

	r = hv_config_get_bool(c, "daemon", "debug", false, &b, &error);
	check_error(r, &error);

	for (size_t i = 0; i < G_N_ELEMENTS(strings); i++) {
		g_autofree char *s = NULL;

		r = hv_config_get_string(c, "vss", strings[i], "/default", &s, &error);
		check_error(r, &error);
		if (r == 0)
			HV_FUZZ_CHECK(s && g_utf8_validate(s, -1, NULL));
	}
	{
		g_autofree char *s = NULL;

		r = hv_config_get_string(c, "daemon", "runtime-dir", NULL, &s, &error);
		check_error(r, &error);
	}

	r = hv_config_get_uint(c, "vss", "freeze-timeout", 120, 1, 24 * 3600, &u, &error);
	check_error(r, &error);
	if (r == 0)
		HV_FUZZ_CHECK(u >= 1 && u <= 24 * 3600);
	r = hv_config_get_uint(c, "vss", "hook-timeout", 30, 1, 3600, &u, &error);
	check_error(r, &error);
	if (r == 0)
		HV_FUZZ_CHECK(u >= 1 && u <= 3600);

	for (size_t i = 0; i < G_N_ELEMENTS(lists); i++) {
		g_auto(GStrv) v = NULL;

		r = hv_config_get_strv(c, "vss", lists[i], &v, &error);
		check_error(r, &error);
		HV_FUZZ_CHECK(v);
		for (char **p = v; *p; p++)
			HV_FUZZ_CHECK(**p && !strpbrk(*p, ";,") && !g_ascii_isspace(**p));
	}

	for (size_t i = 0; i < G_N_ELEMENTS(bools); i++) {
		r = hv_config_get_bool(c, "vss", bools[i], true, &b, &error);
		check_error(r, &error);
	}

	r = hv_config_get_enum(c, "vss", "transport", transports, 0, &e, &error);
	check_error(r, &error);
	if (r == 0)
		HV_FUZZ_CHECK(e >= 0 && e < 3);
	r = hv_config_get_enum(c, "vss", "foreign-frozen", foreign, 0, &e, &error);
	check_error(r, &error);
	if (r == 0)
		HV_FUZZ_CHECK(e >= 0 && e < 2);
}

static void check_unknown(const hv_config *c)
{
	g_autoptr(GPtrArray) unknown = hv_config_unknown_keys(c, known);
	g_autoptr(GPtrArray) all = hv_config_unknown_keys(c, NULL);

	HV_FUZZ_CHECK(unknown->len <= all->len);
	for (guint i = 0; i < unknown->len; i++) {
		const char *u = g_ptr_array_index(unknown, i);

		HV_FUZZ_CHECK(g_str_has_prefix(u, main_path) || g_str_has_prefix(u, dropin_dir));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(hv_config) c = NULL;
	g_autofree char *error = NULL;
	const uint8_t *part = data, *end = data + size;
	int r;

	for (int i = 0; i < MAX_DROPINS; i++) {
		g_autofree char *name = g_strdup_printf("%s/%d0-fuzz.conf", dropin_dir, i + 1);

		g_unlink(name);
	}

	for (int i = 0; i <= MAX_DROPINS; i++) {
		const uint8_t *nul = memchr(part, '\0', (size_t)(end - part));
		const uint8_t *stop = nul && i < MAX_DROPINS ? nul : end;
		g_autofree char *name = i == 0 ? g_strdup(main_path)
					       : g_strdup_printf("%s/%d0-fuzz.conf", dropin_dir, i);

		hv_fuzz_write_file(name, part, (size_t)(stop - part));
		if (stop == end)
			break;
		part = stop + 1;
	}

	r = hv_config_load(main_path, &c, &error);
	if (r < 0) {
		HV_FUZZ_CHECK(r == -EINVAL || r == -EIO);
		HV_FUZZ_CHECK(error && (g_str_has_prefix(error, main_path) ||
					g_str_has_prefix(error, dropin_dir)));
		return 0;
	}

	HV_FUZZ_CHECK(error == NULL);
	HV_FUZZ_CHECK(g_strcmp0(hv_config_files(c)[0], main_path) == 0);
	get_all(c);
	check_unknown(c);
	return 0;
}
