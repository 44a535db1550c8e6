/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The corpus runner for builds without libFuzzer: feeds every regular file
 * of the directories (and files) named on the command line to the target,
 * in name order, and fails when there was none (a corpus that went missing
 * would otherwise pass). A crash or a broken invariant aborts, so the test
 * fails.
 */
#include <dirent.h>
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz-util.h"

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

static int by_name(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_file(const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *data = NULL;
	gsize size;

	if (!g_file_get_contents(path, &data, &size, &error)) {
		fprintf(stderr, "%s\n", error->message);
		return -1;
	}

	/* An exact-size copy, so that a read past the end is caught under ASan. */
	{
		g_autofree uint8_t *copy = size ? g_memdup2(data, size) : NULL;

		LLVMFuzzerTestOneInput(copy, size);
	}
	return 0;
}

static int run_path(const char *path, unsigned int *n)
{
	g_autoptr(GPtrArray) names = NULL;
	g_autoptr(GDir) dir = NULL;
	g_autoptr(GError) error = NULL;
	const char *name;
	struct stat st;

	if (stat(path, &st) < 0) {
		/* A regression directory exists only once something was found. */
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}

	if (!S_ISDIR(st.st_mode)) {
		if (run_file(path) < 0)
			return -1;
		(*n)++;
		return 0;
	}

	dir = g_dir_open(path, 0, &error);
	if (!dir) {
		fprintf(stderr, "%s\n", error->message);
		return -1;
	}

	names = g_ptr_array_new_with_free_func(g_free);
	while ((name = g_dir_read_name(dir)))
		if (name[0] != '.')
			g_ptr_array_add(names, g_build_filename(path, name, NULL));
	g_ptr_array_sort(names, by_name);

	for (guint i = 0; i < names->len; i++) {
		const char *file = g_ptr_array_index(names, i);

		if (stat(file, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (run_file(file) < 0)
			return -1;
		(*n)++;
	}

	return 0;
}

int main(int argc, char **argv)
{
	unsigned int n = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++)
		if (run_path(argv[i], &n) < 0)
			return EXIT_FAILURE;

	printf("%s: %u inputs replayed\n", argv[0], n);
	return n > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
