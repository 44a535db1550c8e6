/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * os-release parsing (hv_kvp/kvp-osinfo.c), which fills the KVP auto pool's
 * OS name and version records sent to the host: the input as os-release
 * (and as a legacy release file when it is not), through
 * kvp_os_release_parse() and kvp_os_info_load().
 *
 * Checked: every parsed key and value is a string without a newline; the
 * OS info always has all six fields; unquoting a value never yields more
 * bytes than it was given.
 */
#include <errno.h>
#include <glib.h>
#include <string.h>
#include <sys/utsname.h>

#include "fuzz-util.h"
#include "kvp-osinfo.h"

static char *path; /* lives as long as the process */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	hv_fuzz_glib_fatal_warnings();
	path = g_build_filename(hv_fuzz_tmpdir(), "os-release", NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct utsname uts = {
		.sysname = "Linux", .release = "6.1.0-13-amd64", .machine = "x86_64"
	};
	const char *const paths[] = { path, NULL };
	g_autoptr(GHashTable) table = NULL;
	g_autofree char *text = g_strndup((const char *)data, size);
	kvp_os_info info = { 0 };
	GHashTableIter it;
	gpointer k, v;
	int r;

	hv_fuzz_write_file(path, data, size);
	r = kvp_os_release_parse(path, &table);
	HV_FUZZ_CHECK(r == 0 && table);
	g_hash_table_iter_init(&it, table);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		HV_FUZZ_CHECK(k && v);
		HV_FUZZ_CHECK(!strchr(k, '\n') && !strchr(v, '\n'));
	}

	/* the input as the text after "KEY=" */
	{
		char *nl = strchr(text, '\n');
		g_autofree char *u = NULL;

		if (nl)
			*nl = '\0';
		u = kvp_os_release_unquote(text);
		HV_FUZZ_CHECK(u && strlen(u) <= strlen(text));
	}

	kvp_os_info_load(paths, paths, &uts, &info);
	HV_FUZZ_CHECK(info.name && info.major && info.minor && info.build && info.version &&
		      info.arch);
	kvp_os_info_clear(&info);
	return 0;
}
