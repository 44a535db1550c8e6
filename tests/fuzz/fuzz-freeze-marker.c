/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The /run freeze marker reader (common/freeze-marker.c), which the guard
 * process and a restarted daemon trust to decide what to FITHAW.
 *
 * ioctl is wrapped (-Wl,--wrap=ioctl): nothing reaches the kernel; FITHAW
 * is counted and answers EINVAL ("not frozen"), anything else ENOTTY.
 *
 * Two parts per input:
 *  - the input as a marker file: recovery must not crash, must remove the
 *    marker when no thaw failed, and must report what it read;
 *  - the input as a path component: a marker written with
 *    hv_freeze_marker_add() for a directory of that name (escaping every
 *    byte the format needs) must be read back as exactly one thaw of
 *    exactly that directory, and not at all when a T line follows.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fuzz-util.h"
#include "hv-freeze.h"

int __wrap_ioctl(int fd, unsigned long request, ...);

static char *marker_path; /* lives as long as the process */
static struct {
	unsigned int n_thaw;
	int answer; /* 0: "thawed", else the errno */
	dev_t dev;
	ino_t ino;
	bool other; /* a FITHAW of anything but dev/ino */
} w;

int __wrap_ioctl(int fd, unsigned long request, ...)
{
	struct stat st;

	if (request != FITHAW) {
		errno = ENOTTY;
		return -1;
	}

	w.n_thaw++;
	if (fstat(fd, &st) < 0 || st.st_dev != w.dev || st.st_ino != w.ino)
		w.other = true;
	if (w.answer) {
		errno = w.answer;
		return -1;
	}
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	marker_path = g_build_filename(hv_fuzz_tmpdir(), "vss-frozen", NULL);
	return 0;
}

static void as_marker(const uint8_t *data, size_t size)
{
	int r;

	hv_fuzz_write_file(marker_path, data, size);
	w = (typeof(w)){.answer = EINVAL};
	r = hv_freeze_marker_recover(marker_path);
	/* every FITHAW answered "not frozen": nothing was thawed */
	HV_FUZZ_CHECK(r <= 0);
	if (r == 0 || r == -EBADMSG) {
		/* read to the end: removed, damaged or not */
		HV_FUZZ_CHECK(access(marker_path, F_OK) < 0 && errno == ENOENT);
	} else {
		/* a path that could not be opened (e.g. too long) keeps it for a retry */
		HV_FUZZ_CHECK(access(marker_path, F_OK) == 0);
		unlink(marker_path);
	}
}

/* A directory name from the input: any byte but '/' and NUL, not "." or "..". */
static char *name_from(const uint8_t *data, size_t size)
{
	size_t n = size > 200 ? 200 : size;
	char *name = g_malloc(n + 2);

	for (size_t i = 0; i < n; i++)
		name[i] = data[i] == '/' || data[i] == '\0' ? '_' : (char)data[i];
	name[n] = '\0';
	if (n == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		strcpy(name + n, "_");
	return name;
}

static void round_trip(const uint8_t *data, size_t size)
{
	g_autofree char *name = name_from(data, size);
	g_autofree char *dir = g_build_filename(hv_fuzz_tmpdir(), name, NULL);
	g_autoptr(GString) lines = g_string_new(NULL);
	struct stat st;
	int fd, r;

	if (g_mkdir(dir, 0700) < 0 && errno != EEXIST)
		HV_FUZZ_CHECK(!"mkdir of the test directory");
	HV_FUZZ_CHECK(stat(dir, &st) == 0);

	fd = hv_freeze_marker_create(marker_path);
	HV_FUZZ_CHECK(fd >= 0);
	hv_freeze_marker_add(lines, HV_FREEZE_MARK_OURS, st.st_dev, dir);
	HV_FUZZ_CHECK(hv_freeze_marker_write(fd, lines) == 0);
	close(fd);

	w = (typeof(w)){.answer = 0, .dev = st.st_dev, .ino = st.st_ino};
	r = hv_freeze_marker_recover(marker_path);
	HV_FUZZ_CHECK(r == 1 && w.n_thaw == 1 && !w.other);

	/* The same with a T line after it: thawed already, nothing to do. */
	fd = hv_freeze_marker_create(marker_path);
	HV_FUZZ_CHECK(fd >= 0);
	hv_freeze_marker_add(lines, HV_FREEZE_MARK_THAWED, st.st_dev, dir);
	HV_FUZZ_CHECK(hv_freeze_marker_write(fd, lines) == 0);
	close(fd);

	w = (typeof(w)){.answer = 0, .dev = st.st_dev, .ino = st.st_ino};
	r = hv_freeze_marker_recover(marker_path);
	HV_FUZZ_CHECK(r == 0 && w.n_thaw == 0);

	g_rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	as_marker(data, size);
	round_trip(data, size);
	return 0;
}
