/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by the hv-kvp-net tests: building IP requests, temp trees, files. */
#pragma once

#include <string.h>
#include <sys/stat.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "kvp-ifcfg.h"

/* Puts @s into a string field the way the kernel hands it over (UTF-8 bytes). */
#define kvp_test_set(msg, field, s) \
	g_strlcpy(KVP_IP_FIELD(msg, field), (s), KVP_IP_FIELD_SIZE(field))
#define kvp_test_get(msg, field) ((const char *)KVP_IP_FIELD(msg, field))

static inline char *kvp_test_read(const char *path)
{
	char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return NULL;
	return text;
}

static inline char *kvp_test_golden(const char *name)
{
	g_autofree char *path = g_build_filename(HV_FIXTURES_DIR, "kvp-net", name, NULL);

	return kvp_test_read(path);
}

static inline void kvp_test_write(const char *path, const char *text, mode_t mode)
{
	g_autofree char *dir = g_path_get_dirname(path);

	g_mkdir_with_parents(dir, 0755);
	g_file_set_contents(path, text, -1, NULL);
	chmod(path, mode);
}

/* rm -r of a temp tree (no symlinks followed). */
static inline void kvp_test_rmtree(const char *path)
{
	GDir *d = g_dir_open(path, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(path, name, NULL);

		if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
			kvp_test_rmtree(p);
		else
			g_unlink(p);
	}
	if (d)
		g_dir_close(d);
	g_rmdir(path);
}

/* Log lines of the code under test, captured into a temp file. */
#include <stdio.h>

#include "hv-log.h"

static FILE *kvp_test_log_file;

static inline void kvp_test_log_start(void)
{
	kvp_test_log_file = tmpfile();
	hv_log_setup("test-kvp", HV_LOG_TARGET_STDERR, false);
	hv_log_set_stream(kvp_test_log_file);
}

static inline void kvp_test_log_stop(void)
{
	hv_log_set_stream(NULL);
	if (kvp_test_log_file)
		fclose(kvp_test_log_file);
	kvp_test_log_file = NULL;
}

/* Everything logged since the start. */
static inline char *kvp_test_log_text(void)
{
	long n;
	char *buf;

	fflush(kvp_test_log_file);
	n = ftell(kvp_test_log_file);
	buf = g_malloc0((gsize)n + 1);
	rewind(kvp_test_log_file);
	if (fread(buf, 1, (size_t)n, kvp_test_log_file) != (size_t)n)
		buf[0] = '\0';
	return buf;
}

/* How many times @needle occurs in @haystack. */
static inline int kvp_test_count(const char *haystack, const char *needle)
{
	int n = 0;

	for (const char *p = haystack; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}
