/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The copy session on a real tmpdir: START/WRITE/COMPLETE/CANCEL, with an
 * unnamed (O_TMPFILE) and a named temporary file. pwrite is wrapped only to
 * inject ENOSPC; a real full file system is tried too (a tiny tmpfs in a
 * private mount namespace) when running as root.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "fcopy-path.h"
#include "fcopy-session.h"
#include "hv-status.h"

/* Inject a failure of the n-th pwrite from now (0: never). */
static int fail_pwrite_after = 0;
static int fail_pwrite_errno = ENOSPC;
static unsigned int n_pwrite;

ssize_t __real_pwrite(int fd, const void *buf, size_t count, off_t offset);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t count, off_t offset);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t count, off_t offset)
{
	n_pwrite++;
	if (fail_pwrite_after > 0 && --fail_pwrite_after == 0) {
		errno = fail_pwrite_errno;
		return -1;
	}
	return __real_pwrite(fd, buf, count, offset);
}

struct fixture {
	char *dir;   /* target directory */
	char *run;   /* runtime directory */
	char *state; /* state file */
	bool tmpfile;
	fcopy_session *s;
};

static int setup_mode(void **state, bool tmpfile)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char tmpl[] = "/tmp/test-fcopy-session-XXXXXX";
	fcopy_options opts = {
	    .file_mode = 0644,
	    .dir_mode = 0755,
	    .use_tmpfile = tmpfile,
	};

	assert_non_null(mkdtemp(tmpl));
	f->run = realpath(tmpl, NULL);
	f->dir = g_build_filename(f->run, "target", NULL);
	assert_int_equal(mkdir(f->dir, 0755), 0);
	f->state = g_build_filename(f->run, "fcopy-partial", NULL);
	f->tmpfile = tmpfile;
	opts.state_path = f->state;
	assert_int_equal(fcopy_session_new(&opts, &f->s), 0);
	fail_pwrite_after = 0;
	*state = f;
	return 0;
}

static int setup_tmpfile(void **state)
{
	return setup_mode(state, true);
}

static int setup_named(void **state)
{
	return setup_mode(state, false);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->run);

	fcopy_session_free(f->s);
	assert_int_equal(system(cmd), 0);
	free(f->run);
	g_free(f->dir);
	g_free(f->state);
	free(f);
	return 0;
}

static gint cmp_names(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in @dir, sorted, joined with ' '. */
static char *list_dir(const char *dir)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	DIR *d = opendir(dir);

	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			g_ptr_array_add(names, g_strdup(e->d_name));
	closedir(d);
	g_ptr_array_sort(names, cmp_names);
	g_ptr_array_add(names, NULL);
	return g_strjoinv(" ", (char **)names->pdata);
}

static uint8_t *pattern(size_t len, unsigned int seed)
{
	uint8_t *p = g_malloc(len ? len : 1);

	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
	return p;
}

/* Writes @len bytes as the host does, in 6,144-byte fragments. */
static int write_all(fcopy_session *s, const uint8_t *data, size_t len)
{
	for (size_t off = 0; off < len; off += HV_FCOPY_DATA_FRAGMENT) {
		size_t n = MIN((size_t)HV_FCOPY_DATA_FRAGMENT, len - off);
		int r = fcopy_session_write(s, off, data + off, (uint32_t)n);

		if (r < 0)
			return r;
	}
	return 0;
}

static void assert_file(const char *path, const uint8_t *data, size_t len, mode_t mode)
{
	g_autofree char *got = NULL;
	gsize got_len = 0;
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, mode);
	assert_true(g_file_get_contents(path, &got, &got_len, NULL));
	assert_int_equal(got_len, len);
	assert_memory_equal(got, data, len);
}

static void copy_size(struct fixture *f, size_t len)
{
	g_autofree uint8_t *data = pattern(len, (unsigned int)len);
	g_autofree char *name = g_strdup_printf("f%zu.bin", len);
	g_autofree char *path = g_build_filename(f->dir, name, NULL);
	g_autofree char *listing = NULL;
	mode_t old = umask(077);

	assert_int_equal(fcopy_session_start(f->s, f->dir, name, 0, len), 0);
	umask(old);
	assert_int_equal(fcopy_session_get_state(f->s), FCOPY_STATE_COPYING);
	assert_int_equal(fcopy_session_temp_is_named(f->s), !f->tmpfile);
	/* nothing under the final name until COMPLETE */
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(write_all(f->s, data, len), 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(fcopy_session_written(f->s), len);
	assert_int_equal(fcopy_session_complete(f->s), 0);
	assert_int_equal(fcopy_session_get_state(f->s), FCOPY_STATE_IDLE);
	assert_file(path, data, len, 0644);

	listing = list_dir(f->dir);
	assert_string_equal(listing, name);
	assert_int_equal(access(f->state, F_OK), -1);
	assert_int_equal(unlink(path), 0);
}

static void test_sizes(void **state)
{
	struct fixture *f = *state;
	const size_t sizes[] = {0, 1, 6143, 6144, 6145, 3 * 1024 * 1024 + 17};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		copy_size(f, sizes[i]);
}

static void test_out_of_order_and_sparse(void **state)
{
	struct fixture *f = *state;
	g_autofree uint8_t *data = pattern(3 * HV_FCOPY_DATA_FRAGMENT, 7);
	g_autofree char *path = g_build_filename(f->dir, "sparse", NULL);
	g_autofree uint8_t *want = g_malloc0(5 * HV_FCOPY_DATA_FRAGMENT);

	assert_int_equal(fcopy_session_start(f->s, f->dir, "sparse", 0, 0), 0);
	/* chunks 2, 0, 4 (1 and 3 left as holes) */
	assert_int_equal(fcopy_session_write(f->s, 2 * 6144, data + 6144, 6144), 0);
	assert_int_equal(fcopy_session_write(f->s, 0, data, 6144), 0);
	assert_int_equal(fcopy_session_write(f->s, 4 * 6144, data + 2 * 6144, 6144), 0);
	assert_int_equal(fcopy_session_complete(f->s), 0);
	memcpy(want, data, 6144);
	memcpy(want + 2 * 6144, data + 6144, 6144);
	memcpy(want + 4 * 6144, data + 2 * 6144, 6144);
	assert_file(path, want, 5 * 6144, 0644);
}

static void test_no_overwrite(void **state)
{
	struct fixture *f = *state;
	g_autofree char *path = g_build_filename(f->dir, "exists", NULL);
	const uint8_t old[] = "old content";
	const uint8_t new[] = "new";

	assert_true(g_file_set_contents(path, (const char *)old, sizeof(old), NULL));
	assert_int_equal(fcopy_session_start(f->s, f->dir, "exists", 0, 3), -EEXIST);
	assert_int_equal(fcopy_status_from_errno(-EEXIST), HV_ERROR_ALREADY_EXISTS);
	assert_int_equal(fcopy_session_get_state(f->s), FCOPY_STATE_IDLE);
	assert_true(strlen(fcopy_session_failed_step(f->s)) > 0);

	/* the host goes on anyway: WRITE has no copy to write to */
	assert_int_equal(fcopy_session_write(f->s, 0, new, 3), -EBADFD);
	assert_int_equal(fcopy_status_from_errno(-EBADFD), HV_E_FAIL);

	chmod(path, 0600);
	assert_file(path, old, sizeof(old), 0600);
	g_autofree char *listing = list_dir(f->dir);
	assert_string_equal(listing, "exists");
}

static void test_overwrite(void **state)
{
	struct fixture *f = *state;
	g_autofree char *path = g_build_filename(f->dir, "exists", NULL);
	g_autofree uint8_t *data = pattern(10000, 3);
	struct stat before, after;

	assert_true(g_file_set_contents(path, "old content that is longer than nothing", -1, NULL));
	assert_int_equal(stat(path, &before), 0);
	assert_int_equal(fcopy_session_start(f->s, f->dir, "exists", HV_FCOPY_OVER_WRITE, 10000),
			 0);
	assert_int_equal(write_all(f->s, data, 10000), 0);
	assert_int_equal(fcopy_session_complete(f->s), 0);
	assert_file(path, data, 10000, 0644);
	/* replaced by rename: a new inode, never a truncated old one */
	assert_int_equal(stat(path, &after), 0);
	assert_true(before.st_ino != after.st_ino);
	g_autofree char *listing = list_dir(f->dir);
	assert_string_equal(listing, "exists");
}

static void test_appeared_meanwhile(void **state)
{
	struct fixture *f = *state;
	g_autofree char *path = g_build_filename(f->dir, "race", NULL);

	assert_int_equal(fcopy_session_start(f->s, f->dir, "race", 0, 1), 0);
	assert_int_equal(fcopy_session_write(f->s, 0, "x", 1), 0);
	assert_true(g_file_set_contents(path, "theirs", -1, NULL));
	assert_int_equal(fcopy_session_complete(f->s), -EEXIST);
	assert_int_equal(fcopy_session_get_state(f->s), FCOPY_STATE_IDLE);
	g_autofree char *got = NULL;
	assert_true(g_file_get_contents(path, &got, NULL, NULL));
	assert_string_equal(got, "theirs");
	g_autofree char *listing = list_dir(f->dir);
	assert_string_equal(listing, "race");
	assert_int_equal(access(f->state, F_OK), -1);
}

static void test_symlink_target_replaced_not_followed(void **state)
{
	struct fixture *f = *state;
	g_autofree char *victim = g_build_filename(f->run, "victim", NULL);
	g_autofree char *link = g_build_filename(f->dir, "link", NULL);
	g_autofree char *got = NULL;
	struct stat st;

	assert_true(g_file_set_contents(victim, "precious", -1, NULL));
	assert_int_equal(symlink(victim, link), 0);
	/* without OVER_WRITE the link counts as an existing file */
	assert_int_equal(fcopy_session_start(f->s, f->dir, "link", 0, 3), -EEXIST);
	assert_int_equal(fcopy_session_start(f->s, f->dir, "link", HV_FCOPY_OVER_WRITE, 3), 0);
	assert_int_equal(fcopy_session_write(f->s, 0, "new", 3), 0);
	assert_int_equal(fcopy_session_complete(f->s), 0);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_true(g_file_get_contents(victim, &got, NULL, NULL));
	assert_string_equal(got, "precious");
}

static void test_create_path(void **state)
{
	struct fixture *f = *state;
	g_autofree char *deep = g_build_filename(f->dir, "a", "b", "c", NULL);
	g_autofree char *path = g_build_filename(deep, "file", NULL);
	struct stat st;

	assert_int_equal(fcopy_session_start(f->s, deep, "file", 0, 1), -ENOENT);
	assert_int_equal(fcopy_status_from_errno(-ENOENT), HV_E_FAIL);
	assert_int_equal(access(deep, F_OK), -1);

	assert_int_equal(fcopy_session_start(f->s, deep, "file", HV_FCOPY_CREATE_PATH, 1), 0);
	assert_int_equal(fcopy_session_write(f->s, 0, "z", 1), 0);
	assert_int_equal(fcopy_session_complete(f->s), 0);
	assert_file(path, (const uint8_t *)"z", 1, 0644);
	assert_int_equal(stat(deep, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
}

static void test_cancel_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	g_autofree uint8_t *data = pattern(50000, 9);

	assert_int_equal(fcopy_session_start(f->s, f->dir, "partial", 0, 100000), 0);
	assert_int_equal(write_all(f->s, data, 50000), 0);
	if (!f->tmpfile) {
		/* the named temporary file exists and is recorded */
		g_autofree char *listing = list_dir(f->dir);
		g_autofree char *rec = NULL;

		assert_true(g_str_has_prefix(listing, FCOPY_TEMP_PREFIX));
		assert_true(g_file_get_contents(f->state, &rec, NULL, NULL));
		assert_true(g_str_has_prefix(rec, f->dir));
	}
	assert_int_equal(fcopy_session_cancel(f->s), 0);
	assert_int_equal(fcopy_session_get_state(f->s), FCOPY_STATE_IDLE);
	g_autofree char *listing = list_dir(f->dir);
	assert_string_equal(listing, "");
	assert_int_equal(access(f->state, F_OK), -1);

	/* a second CANCEL, or one with nothing open, is fine */
	assert_int_equal(fcopy_session_cancel(f->s), 0);
	/* COMPLETE after CANCEL: nothing to complete */
	assert_int_equal(fcopy_session_complete(f->s), -EBADFD);
}

static void test_start_while_copying(void **state)
{
	struct fixture *f = *state;
	g_autofree char *first = g_build_filename(f->dir, "first", NULL);
	g_autofree char *second = g_build_filename(f->dir, "second", NULL);

	assert_int_equal(fcopy_session_start(f->s, f->dir, "first", 0, 2), 0);
	assert_int_equal(fcopy_session_write(f->s, 0, "1", 1), 0);
	assert_false(fcopy_session_cancelled_previous(f->s));
	assert_int_equal(fcopy_session_start(f->s, f->dir, "second", 0, 1), 0);
	assert_true(fcopy_session_cancelled_previous(f->s));
	assert_int_equal(fcopy_session_write(f->s, 0, "2", 1), 0);
	assert_int_equal(fcopy_session_complete(f->s), 0);
	assert_int_equal(access(first, F_OK), -1);
	assert_file(second, (const uint8_t *)"2", 1, 0644);
	g_autofree char *listing = list_dir(f->dir);
	assert_string_equal(listing, "second");
}

static void test_bad_requests(void **state)
{
	struct fixture *f = *state;
	g_autofree char *link = g_build_filename(f->run, "link", NULL);
	g_autofree char *via_link = g_build_filename(link, "x", NULL);
	g_autofree char *dotdot = g_strdup_printf("%s/../target", f->dir);
	g_autofree char *subdir = g_build_filename(f->dir, "subdir", NULL);
	uint8_t big[HV_FCOPY_DATA_FRAGMENT + 1] = {0};

	assert_int_equal(symlink(f->dir, link), 0);
	assert_int_equal(fcopy_session_start(f->s, link, "x", 0, 0), -ELOOP);
	assert_int_equal(fcopy_session_start(f->s, via_link, "x", HV_FCOPY_CREATE_PATH, 0), -ELOOP);
	assert_int_equal(fcopy_session_start(f->s, dotdot, "x", 0, 0), -EINVAL);
	assert_int_equal(fcopy_session_start(f->s, f->dir, "..", 0, 0), -EINVAL);
	assert_int_equal(fcopy_session_start(f->s, f->dir, "a/b", 0, 0), -EINVAL);
	assert_int_equal(fcopy_session_start(f->s, f->dir, "", 0, 0), -EINVAL);
	assert_int_equal(fcopy_session_start(f->s, "relative", "x", 0, 0), -EINVAL);
	assert_int_equal(fcopy_status_from_errno(-EINVAL), HV_INVALIDARG);
	assert_int_equal(mkdir(subdir, 0755), 0);
	assert_int_equal(fcopy_session_start(f->s, f->dir, "subdir", HV_FCOPY_OVER_WRITE, 0),
			 -EISDIR);

	assert_int_equal(fcopy_session_start(f->s, f->dir, "ok", 0, 0), 0);
	assert_int_equal(fcopy_session_write(f->s, 0, big, sizeof(big)), -EMSGSIZE);
	assert_int_equal(fcopy_status_from_errno(-EMSGSIZE), HV_INVALIDARG);
	assert_int_equal(fcopy_session_write(f->s, UINT64_MAX - 10, big, 100), -EFBIG);
	assert_int_equal(fcopy_session_write(f->s, (uint64_t)INT64_MAX, big, 1), -EFBIG);
	/* the copy is still usable after refused fragments */
	assert_int_equal(fcopy_session_write(f->s, 0, big, 6144), 0);
	assert_int_equal(fcopy_session_complete(f->s), 0);
	g_autofree char *listing = list_dir(f->dir);
	assert_string_equal(listing, "ok subdir");
}

static void test_dispatch(void **state)
{
	struct fixture *f = *state;
	fcopy_request req = {.op = HV_FCOPY_START_FILE_COPY, .copy_flags = 0};

	g_strlcpy(req.path_name, f->dir, sizeof(req.path_name));
	g_strlcpy(req.file_name, "R\xc3\xa9sum\xc3\xa9 \xe6\x96\x87\xe4\xbb\xb6 \xf0\x9f\x98\x80",
		  sizeof(req.file_name));
	assert_int_equal(fcopy_session_handle(f->s, &req), 0);
	req.op = HV_FCOPY_WRITE_TO_FILE;
	req.data = (const uint8_t *)"abc";
	req.size = 3;
	assert_int_equal(fcopy_session_handle(f->s, &req), 0);
	req.op = HV_FCOPY_COMPLETE_FCOPY;
	assert_int_equal(fcopy_session_handle(f->s, &req), 0);
	req.op = 77;
	assert_int_equal(fcopy_session_handle(f->s, &req), -EOPNOTSUPP);
	assert_int_equal(fcopy_status_from_errno(-EOPNOTSUPP), HV_ERROR_NOT_SUPPORTED);

	g_autofree char *listing = list_dir(f->dir);
	assert_string_equal(listing,
			    "R\xc3\xa9sum\xc3\xa9 \xe6\x96\x87\xe4\xbb\xb6 \xf0\x9f\x98\x80");
}

static void test_enospc_injected(void **state)
{
	struct fixture *f = *state;
	const size_t len = FCOPY_WRITE_BATCH + 4 * 6144;
	const uint64_t accepted = FCOPY_WRITE_BATCH / 6144 * 6144;
	g_autofree uint8_t *data = pattern(len, 5);

	/* the batch is written by the WRITE that fills it: that one fails */
	assert_int_equal(fcopy_session_start(f->s, f->dir, "full", 0, len), 0);
	fail_pwrite_after = 1;
	fail_pwrite_errno = ENOSPC;
	assert_int_equal(write_all(f->s, data, len), -ENOSPC);
	assert_string_equal(fcopy_session_failed_step(f->s), "write");
	assert_int_equal(fcopy_status_from_errno(-ENOSPC), HV_ERROR_DISK_FULL);
	assert_int_equal(fcopy_status_from_errno(-EDQUOT), HV_ERROR_DISK_FULL);
	assert_int_equal(fcopy_session_written(f->s), accepted);
	/* and it sticks: no later WRITE or COMPLETE may leave a hole in the file */
	assert_int_equal(fcopy_session_write(f->s, accepted, data + accepted, 6144), -ENOSPC);
	assert_int_equal(fcopy_session_write(f->s, 0, data, 6144), -ENOSPC);
	/* the host cancels after the failure */
	assert_int_equal(fcopy_session_cancel(f->s), 0);
	g_autofree char *listing = list_dir(f->dir);
	assert_string_equal(listing, "");

	/* a failure of the last batch is COMPLETE's, and drops the copy */
	fail_pwrite_after = 1;
	fail_pwrite_errno = EIO;
	assert_int_equal(fcopy_session_start(f->s, f->dir, "eio", 0, 1), 0);
	assert_int_equal(fcopy_session_write(f->s, 0, "x", 1), 0);
	assert_int_equal(fcopy_session_complete(f->s), -EIO);
	assert_string_equal(fcopy_session_failed_step(f->s), "write");
	assert_int_equal(fcopy_status_from_errno(-EIO), HV_E_FAIL);
	assert_int_equal(fcopy_session_get_state(f->s), FCOPY_STATE_IDLE);
	g_autofree char *listing2 = list_dir(f->dir);
	assert_string_equal(listing2, "");

	/* the next copy starts clean */
	assert_int_equal(fcopy_session_start(f->s, f->dir, "ok", 0, 1), 0);
	assert_int_equal(fcopy_session_write(f->s, 0, "y", 1), 0);
	assert_int_equal(fcopy_session_complete(f->s), 0);
}

/* Fragments are gathered: one pwrite() per FCOPY_WRITE_BATCH, not per WRITE. */
static void test_write_batching(void **state)
{
	struct fixture *f = *state;
	const size_t len = 4 * FCOPY_WRITE_BATCH + 100;
	g_autofree uint8_t *data = pattern(len, 11);
	g_autofree char *path = g_build_filename(f->dir, "batched", NULL);
	uint8_t want[16] = "aaaabbbbcc";

	assert_int_equal(fcopy_session_start(f->s, f->dir, "batched", 0, len), 0);
	n_pwrite = 0;
	assert_int_equal(write_all(f->s, data, len), 0);
	assert_int_equal(n_pwrite, 4);
	assert_int_equal(fcopy_session_complete(f->s), 0);
	assert_int_equal(n_pwrite, 5);
	assert_file(path, data, len, 0644);

	/* a WRITE that does not continue the batch: what was batched goes first */
	assert_int_equal(fcopy_session_start(f->s, f->dir, "rewrite", 0, 10), 0);
	assert_int_equal(fcopy_session_write(f->s, 0, "aaaaaaaa", 8), 0);
	assert_int_equal(fcopy_session_write(f->s, 4, "bbbb", 4), 0);
	assert_int_equal(fcopy_session_write(f->s, 8, "cc", 2), 0);
	assert_int_equal(fcopy_session_complete(f->s), 0);
	g_autofree char *rpath = g_build_filename(f->dir, "rewrite", NULL);
	assert_file(rpath, want, 10, 0644);
}

static void test_file_mode(void **state)
{
	struct fixture *f = *state;
	fcopy_options opts = {.file_mode = 0600, .dir_mode = 0700, .use_tmpfile = f->tmpfile};
	g_autoptr(fcopy_session) s = NULL;
	g_autofree char *deep = g_build_filename(f->dir, "d", NULL);
	g_autofree char *path = g_build_filename(deep, "secret", NULL);
	mode_t old = umask(0);
	struct stat st;

	assert_int_equal(fcopy_session_new(&opts, &s), 0);
	assert_int_equal(fcopy_session_start(s, deep, "secret", HV_FCOPY_CREATE_PATH, 1), 0);
	umask(old);
	assert_int_equal(fcopy_session_write(s, 0, "s", 1), 0);
	assert_int_equal(fcopy_session_complete(s), 0);
	assert_file(path, (const uint8_t *)"s", 1, 0600);
	assert_int_equal(stat(deep, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
}

static void test_allowed_dirs(void **state)
{
	struct fixture *f = *state;
	g_autofree char *in = g_build_filename(f->dir, "in", NULL);
	g_autofree char *below = g_build_filename(in, "deeper", NULL);
	const char *const allowed[] = {in, NULL};
	fcopy_options opts = {
	    .file_mode = 0644, .dir_mode = 0755, .allowed = allowed, .use_tmpfile = f->tmpfile};
	g_autoptr(fcopy_session) s = NULL;

	assert_int_equal(fcopy_session_new(&opts, &s), 0);
	assert_int_equal(fcopy_session_start(s, f->dir, "x", 0, 0), -EACCES);
	assert_int_equal(fcopy_session_start(s, "/etc", "x", 0, 0), -EACCES);
	assert_int_equal(fcopy_session_start(s, below, "x", HV_FCOPY_CREATE_PATH, 0), 0);
	assert_int_equal(fcopy_session_complete(s), 0);
	g_autofree char *below_x = g_build_filename(below, "x", NULL);
	assert_int_equal(access(below_x, F_OK), 0);
}

/* A daemon killed mid-copy: its child plays the daemon and dies without cleaning up. */
static void test_crash_leaves_no_partial_file(void **state)
{
	struct fixture *f = *state;
	g_autofree char *path = g_build_filename(f->dir, "big", NULL);
	g_autofree char *removed = NULL;
	int status = 0;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		g_autofree uint8_t *data = pattern(100000, 1);

		if (fcopy_session_start(f->s, f->dir, "big", 0, 200000) < 0 ||
		    write_all(f->s, data, 100000) < 0)
			_exit(1);
		_exit(0); /* no COMPLETE, no CANCEL, no cleanup */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	assert_int_equal(access(path, F_OK), -1);
	if (f->tmpfile) {
		/* an O_TMPFILE dies with its last descriptor */
		g_autofree char *listing = list_dir(f->dir);
		assert_string_equal(listing, "");
		assert_int_equal(fcopy_cleanup_leftover(f->state, &removed), 0);
		return;
	}

	g_autofree char *listing = list_dir(f->dir);
	assert_true(g_str_has_prefix(listing, FCOPY_TEMP_PREFIX));
	/* the next start removes it */
	assert_int_equal(fcopy_cleanup_leftover(f->state, &removed), 1);
	assert_non_null(removed);
	assert_true(g_str_has_prefix(removed, f->dir));
	g_autofree char *after = list_dir(f->dir);
	assert_string_equal(after, "");
	assert_int_equal(access(f->state, F_OK), -1);
	assert_int_equal(fcopy_cleanup_leftover(f->state, NULL), 0);
}

/*
 * The state file lists every named temporary file that may be left (a
 * cancel that hit an I/O error keeps its line while other copies come and
 * go): the next start removes them all, and a copy that completed in
 * between is not in it.
 */
static void test_cleanup_several_leftovers(void **state)
{
	struct fixture *f = *state;
	g_autofree char *a = g_build_filename(f->dir, FCOPY_TEMP_PREFIX "00000000000000aa", NULL);
	g_autofree char *b = g_build_filename(f->dir, FCOPY_TEMP_PREFIX "00000000000000bb", NULL);
	g_autofree char *rec = g_strdup_printf("%s\n%s\n", a, b);
	g_autofree char *removed = NULL;
	g_autofree char *text = NULL;
	g_autofree uint8_t *data = pattern(100, 3);

	assert_true(g_file_set_contents(a, "partial", -1, NULL));
	assert_true(g_file_set_contents(b, "partial", -1, NULL));
	assert_true(g_file_set_contents(f->state, rec, -1, NULL));

	/* a copy with its own named temporary file comes and goes: the two lines stay */
	assert_int_equal(fcopy_session_start(f->s, f->dir, "done", 0, 100), 0);
	assert_int_equal(write_all(f->s, data, 100), 0);
	assert_int_equal(fcopy_session_complete(f->s), 0);
	assert_true(g_file_get_contents(f->state, &text, NULL, NULL));
	assert_string_equal(text, rec);

	assert_int_equal(fcopy_cleanup_leftover(f->state, &removed), 2);
	assert_non_null(strstr(removed, a));
	assert_non_null(strstr(removed, b));
	assert_int_equal(access(a, F_OK), -1);
	assert_int_equal(access(b, F_OK), -1);
	assert_int_equal(access(f->state, F_OK), -1);
	assert_int_equal(fcopy_session_temp_left(f->s), 0);
}

static void test_cleanup_refuses_foreign_names(void **state)
{
	struct fixture *f = *state;
	g_autofree char *important = g_build_filename(f->dir, "important", NULL);
	g_autofree char *rec = g_strdup_printf("%s\n", important);
	g_autofree char *link = g_build_filename(f->run, "lnk", NULL);
	g_autofree char *via = g_build_filename(link, FCOPY_TEMP_PREFIX "0123456789abcdef", NULL);
	g_autofree char *rec2 = g_strdup_printf("%s\n", via);
	g_autofree char *temp =
	    g_build_filename(f->dir, FCOPY_TEMP_PREFIX "0123456789abcdef", NULL);

	assert_true(g_file_set_contents(important, "keep", -1, NULL));
	assert_true(g_file_set_contents(f->state, rec, -1, NULL));
	assert_int_equal(fcopy_cleanup_leftover(f->state, NULL), -EBADMSG);
	assert_int_equal(access(important, F_OK), 0);

	/* a recorded directory reached through a link is not followed */
	assert_true(g_file_set_contents(temp, "partial", -1, NULL));
	assert_int_equal(symlink(f->dir, link), 0);
	assert_true(g_file_set_contents(f->state, rec2, -1, NULL));
	assert_int_equal(fcopy_cleanup_leftover(f->state, NULL), -ELOOP);
	assert_int_equal(access(temp, F_OK), 0);
}

/* A real full file system: a 256 KiB tmpfs in a private mount namespace (root only). */
static void test_enospc_real(void **state)
{
	struct fixture *f = *state;
	int status = 0;
	pid_t pid;

	if (geteuid() != 0) {
		print_message("not root: real ENOSPC not tried (the injected one is)\n");
		skip();
	}

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		g_autofree uint8_t *data = pattern(1024 * 1024, 2);
		int r;

		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(77);
		if (mount("tmpfs", f->dir, "tmpfs", 0, "size=256k,mode=0755") < 0)
			_exit(77);
		if (fcopy_session_start(f->s, f->dir, "huge", 0, 1024 * 1024) < 0)
			_exit(2);
		r = write_all(f->s, data, 1024 * 1024);
		if (r != -ENOSPC)
			_exit(3);
		if (fcopy_status_from_errno(r) != HV_ERROR_DISK_FULL)
			_exit(4);
		fcopy_session_cancel(f->s);
		{
			g_autofree char *listing = list_dir(f->dir);

			if (strcmp(listing, "") != 0)
				_exit(5);
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_status_table(void **state)
{
	assert_int_equal(fcopy_status_from_errno(0), HV_S_OK);
	assert_int_equal(fcopy_status_from_errno(-EEXIST), HV_ERROR_ALREADY_EXISTS);
	assert_int_equal(fcopy_status_from_errno(-ENOSPC), HV_ERROR_DISK_FULL);
	assert_int_equal(fcopy_status_from_errno(-EILSEQ), HV_INVALIDARG);
	assert_int_equal(fcopy_status_from_errno(-EBADMSG), HV_INVALIDARG);
	assert_int_equal(fcopy_status_from_errno(-ENAMETOOLONG), HV_INVALIDARG);
	assert_int_equal(fcopy_status_from_errno(-ELOOP), HV_E_FAIL);
	assert_int_equal(fcopy_status_from_errno(-EACCES), HV_E_FAIL);
	assert_int_equal(fcopy_status_from_errno(-ENOENT), HV_E_FAIL);
	assert_string_equal(fcopy_op_to_string(HV_FCOPY_CANCEL_FCOPY), "CANCEL_FCOPY");
	assert_string_equal(fcopy_op_to_string(9), "unknown");
	assert_string_equal(fcopy_state_to_string(FCOPY_STATE_COPYING), "copying");
}

#define BOTH(fn)                                                      \
	cmocka_unit_test_setup_teardown(fn, setup_tmpfile, teardown), \
	    cmocka_unit_test_setup_teardown(fn, setup_named, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_sizes),
	    BOTH(test_out_of_order_and_sparse),
	    BOTH(test_no_overwrite),
	    BOTH(test_overwrite),
	    BOTH(test_appeared_meanwhile),
	    BOTH(test_symlink_target_replaced_not_followed),
	    BOTH(test_create_path),
	    BOTH(test_cancel_leaves_nothing),
	    BOTH(test_start_while_copying),
	    BOTH(test_bad_requests),
	    BOTH(test_dispatch),
	    BOTH(test_enospc_injected),
	    BOTH(test_write_batching),
	    BOTH(test_file_mode),
	    BOTH(test_allowed_dirs),
	    BOTH(test_crash_leaves_no_partial_file),
	    BOTH(test_enospc_real),
	    cmocka_unit_test_setup_teardown(test_cleanup_refuses_foreign_names, setup_named,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_cleanup_several_leftovers, setup_named, teardown),
	    cmocka_unit_test(test_status_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
