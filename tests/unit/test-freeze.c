/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Freeze executor against a fake kernel: open, ioctl, close and syncfs are
 * wrapped (-Wl,--wrap). Targets are paths under /fake/ that get fake fds
 * (FAKE_FD_BASE + index, above any real fd); everything else (the marker in
 * a tmpfs test directory) passes through to the real calls, except that a
 * FIFREEZE/FITHAW on a real fd aborts the test binary: nothing here may ever
 * freeze a real file system. The executor calls FIFREEZE and syncfs from
 * several threads at once: the fake kernel's shared state is under a lock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "hv-freeze.h"

#define FAKE_FD_BASE 100000
#define FAKE_MAX 32
#define EVENTS_MAX 512

typedef enum ev_type { EV_OPEN, EV_SYNCFS, EV_FREEZE, EV_THAW, EV_CLOSE } ev_type;

typedef struct fake_fs {
	char path[128];
	int open_errno;
	int freeze_errno;       /* 0: FIFREEZE freezes it */
	int thaw_errnos[4];     /* the n-th FITHAW fails with this, 0: normal */
	unsigned int n_thaw_calls;
	bool frozen;            /* the fake kernel's state */
	bool is_open;
	bool marker_named;      /* the marker named it when FIFREEZE came */
} fake_fs;

typedef struct event {
	ev_type type;
	unsigned int idx;
} event;

static struct {
	fake_fs fs[FAKE_MAX];
	unsigned int n_fs;
	event ev[EVENTS_MAX];
	unsigned int n_ev;
	unsigned int bad_calls;      /* double close, unknown fd ... */
	char marker_path[256];
	unsigned int freeze_delay_us; /* each FIFREEZE takes this long */
	unsigned int in_flight;      /* FIFREEZE calls running right now */
	unsigned int max_in_flight;
} fake;

static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static char test_dir[256];

int __real_open(const char *path, int flags, ...);
int __real_ioctl(int fd, unsigned long request, ...);
int __real_close(int fd);
int __real_syncfs(int fd);
int __wrap_open(const char *path, int flags, ...);
int __wrap_ioctl(int fd, unsigned long request, ...);
int __wrap_close(int fd);
int __wrap_syncfs(int fd);

static void record(ev_type type, unsigned int idx)
{
	pthread_mutex_lock(&fake_lock);
	if (fake.n_ev < EVENTS_MAX)
		fake.ev[fake.n_ev++] = (event) { type, idx };
	else
		fake.bad_calls++;

	pthread_mutex_unlock(&fake_lock);
}

static void bad_call(void)
{
	pthread_mutex_lock(&fake_lock);
	fake.bad_calls++;
	pthread_mutex_unlock(&fake_lock);
}

static fake_fs *fake_by_fd(int fd)
{
	if (fd < FAKE_FD_BASE || fd >= FAKE_FD_BASE + (int) fake.n_fs)
		return NULL;

	return &fake.fs[fd - FAKE_FD_BASE];
}

int __wrap_open(const char *path, int flags, ...)
{
	unsigned int i;
	mode_t mode = 0;

	if (strncmp(path, "/fake/", 6) != 0) {
		if (flags & (O_CREAT | O_TMPFILE)) {
			va_list ap;

			va_start(ap, flags);
			mode = va_arg(ap, mode_t);
			va_end(ap);
		}

		return __real_open(path, flags, mode);
	}

	for (i = 0; i < fake.n_fs; i++) {
		if (strcmp(fake.fs[i].path, path) != 0)
			continue;

		record(EV_OPEN, i);
		if (!(flags & O_DIRECTORY) || !(flags & O_CLOEXEC))
			bad_call();

		if (fake.fs[i].open_errno) {
			errno = fake.fs[i].open_errno;
			return -1;
		}

		fake.fs[i].is_open = true;
		return FAKE_FD_BASE + (int) i;
	}

	errno = ENOENT;
	return -1;
}

/* Does the marker name @fs with an F line right now? */
static bool marker_names(const fake_fs *fs)
{
	g_autofree char *contents = NULL;
	g_autoptr(GString) line = g_string_new(NULL);

	if (!g_file_get_contents(fake.marker_path, &contents, NULL, NULL))
		return false;

	hv_freeze_marker_add(line, HV_FREEZE_MARK_OURS, 0, fs->path);
	return strstr(contents, line->str) != NULL;
}

int __wrap_ioctl(int fd, unsigned long request, ...)
{
	fake_fs *fs = fake_by_fd(fd);
	unsigned long arg;
	unsigned int n;
	va_list ap;

	va_start(ap, request);
	arg = va_arg(ap, unsigned long);
	va_end(ap);

	if (!fs) {
		if (request == FIFREEZE || request == FITHAW) {
			fprintf(stderr, "FATAL: FIFREEZE/FITHAW on a real fd %d\n", fd);
			abort();
		}

		return __real_ioctl(fd, request, arg);
	}

	if (!fs->is_open) {
		bad_call();
		errno = EBADF;
		return -1;
	}

	switch (request) {
	case FIFREEZE:
		record(EV_FREEZE, (unsigned int) (fs - fake.fs));
		if (fake.marker_path[0])
			fs->marker_named = marker_names(fs);

		if (fake.freeze_delay_us) {
			pthread_mutex_lock(&fake_lock);
			fake.in_flight++;
			fake.max_in_flight = MAX(fake.max_in_flight, fake.in_flight);
			pthread_mutex_unlock(&fake_lock);
			g_usleep(fake.freeze_delay_us);
			pthread_mutex_lock(&fake_lock);
			fake.in_flight--;
			pthread_mutex_unlock(&fake_lock);
		}

		if (fs->freeze_errno) {
			errno = fs->freeze_errno;
			return -1;
		}

		if (fs->frozen) {
			errno = EBUSY;
			return -1;
		}

		fs->frozen = true;
		return 0;
	case FITHAW:
		record(EV_THAW, (unsigned int) (fs - fake.fs));
		n = fs->n_thaw_calls++;
		if (n < G_N_ELEMENTS(fs->thaw_errnos) && fs->thaw_errnos[n]) {
			errno = fs->thaw_errnos[n];
			return -1;
		}

		if (!fs->frozen) {
			errno = EINVAL;
			return -1;
		}

		fs->frozen = false;
		return 0;
	default:
		errno = ENOTTY;
		return -1;
	}
}

int __wrap_close(int fd)
{
	fake_fs *fs = fake_by_fd(fd);

	if (!fs)
		return __real_close(fd);

	record(EV_CLOSE, (unsigned int) (fs - fake.fs));
	if (!fs->is_open) {
		bad_call();
		errno = EBADF;
		return -1;
	}

	fs->is_open = false;
	return 0;
}

int __wrap_syncfs(int fd)
{
	fake_fs *fs = fake_by_fd(fd);

	if (!fs) {
		pthread_mutex_lock(&fake_lock);
		bad_call();
		pthread_mutex_unlock(&fake_lock);
		errno = EBADF;
		return -1;
	}

	record(EV_SYNCFS, (unsigned int) (fs - fake.fs));
	return 0;
}

/* --- plans built by hand --- */

/* Adds a target and its fake file system; returns the fake. */
static fake_fs *plan_add(hv_freeze_plan *plan, const char *path, unsigned int wave)
{
	fake_fs *fs;

	assert_true(fake.n_fs < FAKE_MAX);
	fs = &fake.fs[fake.n_fs++];
	g_strlcpy(fs->path, path, sizeof(fs->path));
	hv_freeze_plan_add_target(plan, path, "ext4", "/dev/fake", 0, wave);
	return fs;
}

/* The events of the types in @types ("OSFTC"), as "F0 F1 T1 T0". */
static char *events(const char *types)
{
	static const char letters[] = { [EV_OPEN] = 'O', [EV_SYNCFS] = 'S', [EV_FREEZE] = 'F',
					[EV_THAW] = 'T', [EV_CLOSE] = 'C' };
	GString *s = g_string_new(NULL);
	unsigned int i;

	for (i = 0; i < fake.n_ev; i++) {
		char c = letters[fake.ev[i].type];

		if (!strchr(types, c))
			continue;

		if (s->len)
			g_string_append_c(s, ' ');

		g_string_append_printf(s, "%c%u", c, fake.ev[i].idx);
	}

	return g_string_free(s, FALSE);
}

static void assert_events(const char *types, const char *expected)
{
	g_autofree char *got = events(types);

	assert_string_equal(got, expected);
}

static void clear_events(void)
{
	fake.n_ev = 0;
}

static const hv_freeze_entry *entry(const hv_freeze *f, unsigned int i)
{
	const hv_freeze_entry *e = hv_freeze_get_entry(f, i);

	assert_non_null(e);
	return e;
}

static void assert_result(const hv_freeze *f, unsigned int i, hv_freeze_result result, int error)
{
	const hv_freeze_entry *e = entry(f, i);

	if (e->result != result)
		fail_msg("entry %u (%s): %s, expected %s", i, e->mountpoint,
			 hv_freeze_result_to_string(e->result), hv_freeze_result_to_string(result));

	assert_int_equal(e->error, error);
}

static const hv_freeze_options no_preflush = { .preflush = false, .foreign_is_error = true };
static const hv_freeze_options sequential = { .preflush = true, .foreign_is_error = true };
static const hv_freeze_options parallel = { .parallel_freeze = true, .foreign_is_error = true };

static int setup(void **state)
{
	memset(&fake, 0, sizeof(fake));
	return 0;
}

/* Every fake fd was closed exactly once, and no call went astray. */
static int teardown(void **state)
{
	unsigned int i;

	for (i = 0; i < fake.n_fs; i++) {
		if (fake.fs[i].is_open) {
			print_error("%s is still open\n", fake.fs[i].path);
			return -1;
		}
	}

	if (fake.bad_calls) {
		print_error("%u bad calls\n", fake.bad_calls);
		return -1;
	}

	return 0;
}

static char *marker_file(void)
{
	return g_build_filename(test_dir, "freeze.marker", NULL);
}

static char *read_marker(const char *path)
{
	char *contents = NULL;

	if (!g_file_get_contents(path, &contents, NULL, NULL))
		return NULL;

	return contents;
}

static char *header(void)
{
	return g_strdup_printf("hv-freeze-marker 1 %ld\n", (long) getpid());
}

/* --- tests --- */

static void test_result_names(void **state)
{
	assert_string_equal(hv_freeze_result_to_string(HV_FREEZE_FROZEN), "frozen");
	assert_string_equal(hv_freeze_result_to_string(HV_FREEZE_UNSUPPORTED), "unsupported");
	assert_string_equal(hv_freeze_result_to_string(HV_FREEZE_GONE), "gone");
	assert_string_equal(hv_freeze_result_to_string(HV_FREEZE_FOREIGN), "foreign");
	assert_string_equal(hv_freeze_result_to_string(HV_FREEZE_FAILED), "failed");
	assert_string_equal(hv_freeze_result_to_string(HV_FREEZE_NOT_TRIED), "not-tried");
	assert_string_equal(hv_freeze_result_to_string(HV_FREEZE_THAWED), "thawed");
	assert_null(hv_freeze_result_to_string(_HV_FREEZE_RESULT_MAX));
	assert_null(hv_freeze_result_to_string((hv_freeze_result) -1));
}

static void test_invalid(void **state)
{
	hv_freeze *f = NULL;

	assert_int_equal(hv_freeze_execute(NULL, NULL, &f), -EINVAL);
	assert_null(f);
	assert_int_equal(hv_freeze_thaw(NULL), -EINVAL);
	assert_false(hv_freeze_is_frozen(NULL));
	assert_int_equal(hv_freeze_n_entries(NULL), 0);
	assert_null(hv_freeze_get_entry(NULL, 0));
	hv_freeze_free(NULL);
}

static void test_empty_plan(void **state)
{
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;

	assert_int_equal(hv_freeze_execute(plan, NULL, &f), 0);
	assert_non_null(f);
	assert_false(hv_freeze_is_frozen(f));
	assert_int_equal(hv_freeze_n_entries(f), 0);
	assert_null(hv_freeze_get_entry(f, 0));
	assert_int_equal(hv_freeze_thaw(f), 0);
	assert_int_equal(fake.n_ev, 0);
}

static void test_all_frozen_thaw_reverse(void **state)
{
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	hv_freeze *f = NULL;
	unsigned int i;

	plan_add(plan, "/fake/loopfs", 0);
	plan_add(plan, "/fake/data", 0);
	plan_add(plan, "/fake/root", 1);
	assert_int_equal(hv_freeze_execute(plan, &no_preflush, &f), 0);
	assert_true(hv_freeze_is_frozen(f));
	assert_int_equal(hv_freeze_n_entries(f), 3);
	/* every open before the first freeze, then plan order */
	assert_events("OFTC", "O0 O1 O2 F0 F1 F2");
	for (i = 0; i < 3; i++) {
		const hv_freeze_entry *e = entry(f, i);

		assert_result(f, i, HV_FREEZE_FROZEN, 0);
		assert_string_equal(e->mountpoint, fake.fs[i].path);
		assert_string_equal(e->fstype, "ext4");
		assert_true(e->freeze_us >= 0);
		assert_true(fake.fs[i].frozen);
	}

	assert_int_equal(entry(f, 0)->wave, 0);
	assert_int_equal(entry(f, 2)->wave, 1);

	clear_events();
	assert_int_equal(hv_freeze_thaw(f), 0);
	assert_false(hv_freeze_is_frozen(f));
	/* reverse order; each fd closed once thawed */
	assert_events("FT", "T2 T1 T0");
	assert_events("C", "C2 C1 C0");
	for (i = 0; i < 3; i++) {
		assert_result(f, i, HV_FREEZE_THAWED, 0);
		assert_false(fake.fs[i].frozen);
		assert_true(entry(f, i)->thaw_us >= 0);
	}

	clear_events();
	hv_freeze_free(f);
	assert_int_equal(fake.n_ev, 0);
}

static void test_partial_failure_rolls_back(void **state)
{
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;
	unsigned int i;

	plan_add(plan, "/fake/a", 0);
	plan_add(plan, "/fake/b", 0);
	plan_add(plan, "/fake/c", 1)->freeze_errno = EIO;
	plan_add(plan, "/fake/d", 1);
	assert_int_equal(hv_freeze_execute(plan, &no_preflush, &f), -EIO);
	assert_non_null(f);
	assert_false(hv_freeze_is_frozen(f));
	assert_events("FT", "F0 F1 F2 T1 T0");
	assert_result(f, 0, HV_FREEZE_THAWED, 0);
	assert_result(f, 1, HV_FREEZE_THAWED, 0);
	assert_result(f, 2, HV_FREEZE_FAILED, -EIO);
	assert_result(f, 3, HV_FREEZE_NOT_TRIED, 0);
	for (i = 0; i < 4; i++) {
		assert_false(fake.fs[i].frozen);
		assert_false(fake.fs[i].is_open);
	}

	clear_events();
	assert_int_equal(hv_freeze_thaw(f), 0);
	assert_int_equal(fake.n_ev, 0);
}

static void test_unsupported_skipped(void **state)
{
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;

	plan_add(plan, "/fake/a", 0);
	plan_add(plan, "/fake/vfat", 0)->freeze_errno = EOPNOTSUPP;
	plan_add(plan, "/fake/c", 0);
	assert_int_equal(hv_freeze_execute(plan, &no_preflush, &f), 0);
	assert_result(f, 0, HV_FREEZE_FROZEN, 0);
	assert_result(f, 1, HV_FREEZE_UNSUPPORTED, -EOPNOTSUPP);
	assert_result(f, 2, HV_FREEZE_FROZEN, 0);
	/* nothing to hold on to: closed right away */
	assert_false(fake.fs[1].is_open);
	clear_events();
	assert_int_equal(hv_freeze_thaw(f), 0);
	assert_events("T", "T2 T0");
	assert_result(f, 1, HV_FREEZE_UNSUPPORTED, -EOPNOTSUPP);
}

static void test_foreign_is_error(void **state)
{
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;
	fake_fs *foreign;

	plan_add(plan, "/fake/a", 0);
	foreign = plan_add(plan, "/fake/foreign", 0);
	foreign->frozen = true; /* fsfreeze(8) got there first */
	plan_add(plan, "/fake/c", 0);
	assert_int_equal(hv_freeze_execute(plan, &sequential, &f), -EBUSY);
	assert_result(f, 0, HV_FREEZE_THAWED, 0);
	assert_result(f, 1, HV_FREEZE_FOREIGN, -EBUSY);
	assert_result(f, 2, HV_FREEZE_NOT_TRIED, 0);
	assert_events("FT", "F0 F1 T0");
	assert_true(foreign->frozen);
	hv_freeze_free(g_steal_pointer(&f));
	assert_events("T", "T0");
	assert_true(foreign->frozen);
}

static void test_foreign_skipped(void **state)
{
	const hv_freeze_options opts = { .foreign_is_error = false };
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;
	fake_fs *foreign;

	plan_add(plan, "/fake/a", 0);
	foreign = plan_add(plan, "/fake/foreign", 0);
	foreign->frozen = true;
	plan_add(plan, "/fake/c", 1);
	assert_int_equal(hv_freeze_execute(plan, &opts, &f), 0);
	assert_result(f, 0, HV_FREEZE_FROZEN, 0);
	assert_result(f, 1, HV_FREEZE_FOREIGN, -EBUSY);
	assert_result(f, 2, HV_FREEZE_FROZEN, 0);
	assert_false(foreign->is_open);
	assert_int_equal(hv_freeze_thaw(f), 0);
	assert_int_equal(hv_freeze_thaw(f), 0);
	hv_freeze_free(g_steal_pointer(&f));
	/* never thawed: we did not freeze it */
	assert_events("FT", "F0 F1 F2 T2 T0");
	assert_true(foreign->frozen);
}

static void test_gone_skipped(void **state)
{
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;

	plan_add(plan, "/fake/unmounted", 0)->open_errno = ENOENT;
	plan_add(plan, "/fake/b", 0);
	plan_add(plan, "/fake/now-a-file", 1)->open_errno = ENOTDIR;
	assert_int_equal(hv_freeze_execute(plan, &no_preflush, &f), 0);
	assert_result(f, 0, HV_FREEZE_GONE, -ENOENT);
	assert_result(f, 1, HV_FREEZE_FROZEN, 0);
	assert_result(f, 2, HV_FREEZE_GONE, -ENOTDIR);
	assert_events("OF", "O0 O1 O2 F1");
	assert_int_equal(hv_freeze_thaw(f), 0);
	assert_events("T", "T1");
}

static void test_open_failure_freezes_nothing(void **state)
{
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;

	plan_add(plan, "/fake/a", 0);
	plan_add(plan, "/fake/denied", 0)->open_errno = EACCES;
	plan_add(plan, "/fake/c", 1)->open_errno = EIO;
	plan_add(plan, "/fake/d", 1);
	assert_int_equal(hv_freeze_execute(plan, NULL, &f), -EACCES);
	/* every failure is reported, not only the first */
	assert_result(f, 0, HV_FREEZE_NOT_TRIED, 0);
	assert_result(f, 1, HV_FREEZE_FAILED, -EACCES);
	assert_result(f, 2, HV_FREEZE_FAILED, -EIO);
	assert_result(f, 3, HV_FREEZE_NOT_TRIED, 0);
	assert_events("OSFT", "O0 O1 O2 O3");
	assert_false(hv_freeze_is_frozen(f));
}

static void test_thaw_failure_thaws_the_others(void **state)
{
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;
	fake_fs *b;

	plan_add(plan, "/fake/a", 0);
	b = plan_add(plan, "/fake/b", 0);
	b->thaw_errnos[0] = EIO;
	plan_add(plan, "/fake/c", 0);
	assert_int_equal(hv_freeze_execute(plan, &no_preflush, &f), 0);
	clear_events();
	assert_int_equal(hv_freeze_thaw(f), -EIO);
	assert_events("T", "T2 T1 T0");
	assert_result(f, 0, HV_FREEZE_THAWED, 0);
	assert_result(f, 1, HV_FREEZE_FROZEN, -EIO);
	assert_result(f, 2, HV_FREEZE_THAWED, 0);
	assert_true(hv_freeze_is_frozen(f));
	assert_true(b->frozen);
	assert_true(b->is_open);

	/* a second thaw retries only what is left */
	clear_events();
	assert_int_equal(hv_freeze_thaw(f), 0);
	assert_events("T", "T1");
	assert_result(f, 1, HV_FREEZE_THAWED, 0);
	assert_false(hv_freeze_is_frozen(f));
	assert_false(b->frozen);
}

static void test_thaw_einval_is_thawed(void **state)
{
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;

	plan_add(plan, "/fake/a", 0);
	plan_add(plan, "/fake/b", 0);
	assert_int_equal(hv_freeze_execute(plan, &no_preflush, &f), 0);
	fake.fs[0].frozen = false; /* fsfreeze -u by an admin */
	assert_int_equal(hv_freeze_thaw(f), 0);
	assert_result(f, 0, HV_FREEZE_THAWED, 0);
	assert_result(f, 1, HV_FREEZE_THAWED, 0);
}

static void test_free_thaws(void **state)
{
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;

	plan_add(plan, "/fake/a", 0);
	plan_add(plan, "/fake/b", 1);
	plan_add(plan, "/fake/c", 2);
	assert_int_equal(hv_freeze_execute(plan, &no_preflush, &f), 0);
	clear_events();
	g_clear_pointer(&f, hv_freeze_free);
	/* every FITHAW first, back to back; the closes after */
	assert_events("TC", "T2 T1 T0 C2 C1 C0");
	assert_false(fake.fs[0].frozen || fake.fs[1].frozen || fake.fs[2].frozen);
}

static void test_double_thaw(void **state)
{
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;

	plan_add(plan, "/fake/a", 0);
	plan_add(plan, "/fake/b", 0);
	assert_int_equal(hv_freeze_execute(plan, &no_preflush, &f), 0);
	clear_events();
	assert_int_equal(hv_freeze_thaw(f), 0);
	assert_int_equal(hv_freeze_thaw(f), 0);
	g_clear_pointer(&f, hv_freeze_free);
	assert_events("FTC", "T1 T0 C1 C0");
}

static void test_preflush_before_first_freeze(void **state)
{
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;
	unsigned int i, n = 24, first_freeze = EVENTS_MAX, n_sync = 0;
	bool synced[FAKE_MAX] = { false };
	char path[64];

	/* more targets than flusher threads; one of them gone */
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/fake/fs%u", i);
		plan_add(plan, path, i % 3);
	}

	fake.fs[5].open_errno = ENOENT;
	assert_int_equal(hv_freeze_execute(plan, NULL, &f), 0);
	for (i = 0; i < fake.n_ev; i++) {
		if (fake.ev[i].type == EV_FREEZE && first_freeze == EVENTS_MAX)
			first_freeze = i;

		if (fake.ev[i].type != EV_SYNCFS)
			continue;

		assert_true(i < first_freeze);
		assert_false(synced[fake.ev[i].idx]);
		synced[fake.ev[i].idx] = true;
		n_sync++;
	}

	assert_int_equal(n_sync, n - 1);
	assert_false(synced[5]);
	/* plan order preserved even though the plan is not sorted by wave */
	assert_result(f, 0, HV_FREEZE_FROZEN, 0);
	assert_result(f, 5, HV_FREEZE_GONE, -ENOENT);
	assert_int_equal(hv_freeze_thaw(f), 0);
}

static void test_no_preflush(void **state)
{
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;

	plan_add(plan, "/fake/a", 0);
	plan_add(plan, "/fake/b", 0);
	assert_int_equal(hv_freeze_execute(plan, &no_preflush, &f), 0);
	assert_events("S", "");
}

/* Where in the event list the first and last event of @type on [lo, hi) are. */
static void event_span(ev_type type, unsigned int lo, unsigned int hi, unsigned int *first,
		       unsigned int *last)
{
	unsigned int i;

	*first = EVENTS_MAX;
	*last = 0;
	for (i = 0; i < fake.n_ev; i++) {
		if (fake.ev[i].type != type || fake.ev[i].idx < lo || fake.ev[i].idx >= hi)
			continue;

		*first = MIN(*first, i);
		*last = MAX(*last, i);
	}
}

static void test_parallel_waves(void **state)
{
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;
	unsigned int i, n = 8, f0_first, f0_last, f1_first, f1_last;
	char path[64];

	/* wave 0: eight independent file systems; wave 1: the one under them */
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/fake/loop%u", i);
		plan_add(plan, path, 0);
	}

	plan_add(plan, "/fake/root", 1);
	fake.freeze_delay_us = 20000;
	assert_int_equal(hv_freeze_execute(plan, NULL, &f), 0);
	for (i = 0; i <= n; i++)
		assert_result(f, i, HV_FREEZE_FROZEN, 0);

	/* they overlapped, and the lower layer came only after all of wave 0 */
	assert_true(fake.max_in_flight >= 2);
	event_span(EV_FREEZE, 0, n, &f0_first, &f0_last);
	event_span(EV_FREEZE, n, n + 1, &f1_first, &f1_last);
	assert_true(f0_last < f1_first);
	assert_int_equal(hv_freeze_n_entries(f), n + 1);

	/* thawed in reverse wave order: the lower layer first */
	clear_events();
	assert_int_equal(hv_freeze_thaw(f), 0);
	assert_events("T", "T8 T7 T6 T5 T4 T3 T2 T1 T0");
	for (i = 0; i <= n; i++)
		assert_false(fake.fs[i].frozen);
}

static void test_parallel_failure_rolls_back(void **state)
{
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;
	unsigned int i, n = 6, n_failed = 0, first, last;

	for (i = 0; i < n; i++) {
		char path[64];

		snprintf(path, sizeof(path), "/fake/fs%u", i);
		plan_add(plan, path, 0);
	}

	fake.fs[3].freeze_errno = EIO;
	plan_add(plan, "/fake/root", 1);
	assert_int_equal(hv_freeze_execute(plan, &parallel, &f), -EIO);
	assert_false(hv_freeze_is_frozen(f));
	for (i = 0; i < n; i++) {
		const hv_freeze_entry *e = entry(f, i);

		/* frozen then rolled back, or never started once fs3 failed */
		assert_true(e->result == HV_FREEZE_THAWED || e->result == HV_FREEZE_NOT_TRIED ||
			    (i == 3 && e->result == HV_FREEZE_FAILED));
		n_failed += e->result == HV_FREEZE_FAILED;
		assert_false(fake.fs[i].frozen);
		assert_false(fake.fs[i].is_open);
	}

	assert_int_equal(n_failed, 1);
	assert_result(f, 3, HV_FREEZE_FAILED, -EIO);
	assert_result(f, n, HV_FREEZE_NOT_TRIED, 0);
	/* the lower layer's wave never started */
	event_span(EV_FREEZE, n, n + 1, &first, &last);
	assert_int_equal(first, EVENTS_MAX);
}

static void test_parallel_marker(void **state)
{
	g_autofree char *marker = marker_file();
	const hv_freeze_options opts = { .parallel_freeze = true, .marker_path = marker };
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;
	g_autofree char *contents = NULL, *expected = NULL, *hdr = header();
	unsigned int i;

	g_strlcpy(fake.marker_path, marker, sizeof(fake.marker_path));
	plan_add(plan, "/fake/a", 0);
	plan_add(plan, "/fake/foreign", 0)->frozen = true;
	plan_add(plan, "/fake/vfat", 0)->freeze_errno = EOPNOTSUPP;
	plan_add(plan, "/fake/b", 0);
	plan_add(plan, "/fake/root", 1);
	fake.freeze_delay_us = 5000;
	/* EBUSY tolerated (foreign_is_error is false) */
	assert_int_equal(hv_freeze_execute(plan, &opts, &f), 0);
	for (i = 0; i < fake.n_fs; i++)
		assert_true(fake.fs[i].marker_named);

	/* the whole wave named before its first FIFREEZE, N lines after it */
	contents = read_marker(marker);
	assert_non_null(contents);
	expected = g_strconcat(hdr,
			       "F - /fake/a\n"
			       "F - /fake/foreign\n"
			       "F - /fake/vfat\n"
			       "F - /fake/b\n"
			       "N - /fake/foreign\n"
			       "N - /fake/vfat\n"
			       "F - /fake/root\n",
			       NULL);
	assert_string_equal(contents, expected);
	assert_result(f, 1, HV_FREEZE_FOREIGN, -EBUSY);
	assert_result(f, 2, HV_FREEZE_UNSUPPORTED, -EOPNOTSUPP);
	assert_int_equal(hv_freeze_thaw(f), 0);
	assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
	assert_true(fake.fs[1].frozen);
	assert_false(fake.fs[0].frozen || fake.fs[3].frozen || fake.fs[4].frozen);
}

static void test_parallel_off_is_plan_order(void **state)
{
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;
	unsigned int i;

	for (i = 0; i < 5; i++) {
		char path[64];

		snprintf(path, sizeof(path), "/fake/fs%u", i);
		plan_add(plan, path, 0);
	}

	fake.freeze_delay_us = 1000;
	assert_int_equal(hv_freeze_execute(plan, &sequential, &f), 0);
	assert_events("F", "F0 F1 F2 F3 F4");
	assert_int_equal(fake.max_in_flight, 1);
}

static int setup_dir(void **state)
{
	setup(state);
	g_strlcpy(test_dir, "/dev/shm/hv-test-freeze-XXXXXX", sizeof(test_dir));
	if (!g_mkdtemp(test_dir))
		return -1;

	return 0;
}

static int teardown_dir(void **state)
{
	g_autofree char *marker = marker_file();
	int r = teardown(state);

	g_remove(marker);
	if (g_rmdir(test_dir) < 0) {
		print_error("%s not empty\n", test_dir);
		r = -1;
	}

	fake.marker_path[0] = '\0';
	return r;
}

static void test_marker_contents(void **state)
{
	g_autofree char *marker = marker_file();
	const hv_freeze_options opts = { .foreign_is_error = false, .marker_path = marker };
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;
	g_autofree char *contents = NULL, *expected = NULL, *hdr = header();
	unsigned int i;

	g_strlcpy(fake.marker_path, marker, sizeof(fake.marker_path));
	plan_add(plan, "/fake/a", 0);
	plan_add(plan, "/fake/sp ace\nnew\\line\t", 0);
	plan_add(plan, "/fake/foreign", 1)->frozen = true;
	plan_add(plan, "/fake/vfat", 1)->freeze_errno = EOPNOTSUPP;
	plan_add(plan, "/fake/gone", 1)->open_errno = ENOENT;
	plan_add(plan, "/fake/b", 2);
	assert_int_equal(hv_freeze_execute(plan, &opts, &f), 0);

	/* named before its FIFREEZE, every one of them */
	for (i = 0; i < fake.n_fs; i++)
		if (i != 4)
			assert_true(fake.fs[i].marker_named);

	contents = read_marker(marker);
	assert_non_null(contents);
	expected = g_strconcat(hdr,
			       "F - /fake/a\n"
			       "F - /fake/sp\\040ace\\012new\\134line\\011\n"
			       "F - /fake/foreign\n"
			       "F - /fake/vfat\n"
			       "N - /fake/foreign\n"
			       "N - /fake/vfat\n"
			       "F - /fake/b\n",
			       NULL);
	assert_string_equal(contents, expected);

	assert_int_equal(hv_freeze_thaw(f), 0);
	assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
	assert_true(fake.fs[2].frozen);
}

static void test_marker_removed_after_rollback(void **state)
{
	g_autofree char *marker = marker_file();
	const hv_freeze_options opts = { .foreign_is_error = true, .marker_path = marker };
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;

	g_strlcpy(fake.marker_path, marker, sizeof(fake.marker_path));
	plan_add(plan, "/fake/a", 0);
	plan_add(plan, "/fake/b", 1)->freeze_errno = EIO;
	assert_int_equal(hv_freeze_execute(plan, &opts, &f), -EIO);
	assert_events("FT", "F0 F1 T0");
	assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
}

static void test_marker_kept_while_thaw_fails(void **state)
{
	g_autofree char *marker = marker_file();
	const hv_freeze_options opts = { .foreign_is_error = true, .marker_path = marker };
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;
	g_autofree char *contents = NULL, *expected = NULL, *hdr = header();

	plan_add(plan, "/fake/a", 0);
	plan_add(plan, "/fake/b", 0)->thaw_errnos[0] = EIO;
	plan_add(plan, "/fake/c", 0);
	assert_int_equal(hv_freeze_execute(plan, &opts, &f), 0);
	assert_int_equal(hv_freeze_thaw(f), -EIO);
	contents = read_marker(marker);
	expected = g_strconcat(hdr, "F - /fake/a\nF - /fake/b\nF - /fake/c\n",
			       "T - /fake/c\nT - /fake/a\n", NULL);
	assert_string_equal(contents, expected);

	assert_int_equal(hv_freeze_thaw(f), 0);
	assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
}

/*
 * hv_freeze_thaw_now(): only the FITHAW calls. The fds stay open and the
 * marker names everything until hv_freeze_settle(), which closes what is
 * thawed, records it, and removes the marker once nothing is frozen.
 */
static void test_thaw_now_then_settle(void **state)
{
	g_autofree char *marker = marker_file();
	const hv_freeze_options opts = { .marker_path = marker };
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;
	g_autofree char *frozen = NULL, *hdr = header();
	g_autofree char *contents = NULL, *expected = NULL;
	fake_fs *b;

	plan_add(plan, "/fake/a", 0);
	b = plan_add(plan, "/fake/b", 0);
	b->thaw_errnos[0] = EIO;
	plan_add(plan, "/fake/c", 1);
	assert_int_equal(hv_freeze_execute(plan, &opts, &f), 0);
	frozen = read_marker(marker);
	assert_non_null(frozen);

	clear_events();
	assert_int_equal(hv_freeze_thaw_now(f), -EIO);
	assert_events("OFTC", "T2 T1 T0");
	assert_result(f, 0, HV_FREEZE_THAWED, 0);
	assert_result(f, 1, HV_FREEZE_FROZEN, -EIO);
	assert_result(f, 2, HV_FREEZE_THAWED, 0);
	assert_false(fake.fs[0].frozen || fake.fs[2].frozen);
	assert_true(fake.fs[0].is_open && b->is_open && fake.fs[2].is_open);
	contents = read_marker(marker);
	assert_string_equal(contents, frozen);
	g_free(contents);

	clear_events();
	hv_freeze_settle(f);
	assert_events("OFTC", "C2 C0");
	assert_true(b->is_open);
	contents = read_marker(marker);
	expected = g_strconcat(hdr, "F - /fake/a\nF - /fake/b\nF - /fake/c\n",
			       "T - /fake/c\nT - /fake/a\n", NULL);
	assert_string_equal(contents, expected);

	/* settling twice changes nothing */
	clear_events();
	hv_freeze_settle(f);
	assert_events("OFTC", "");

	assert_int_equal(hv_freeze_thaw_now(f), 0);
	assert_events("OFTC", "T1");
	assert_true(g_file_test(marker, G_FILE_TEST_EXISTS));
	hv_freeze_settle(f);
	assert_events("OFTC", "T1 C1");
	assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
	assert_false(hv_freeze_is_frozen(f));
	assert_int_equal(hv_freeze_thaw_now(NULL), -EINVAL);
	hv_freeze_settle(NULL);
}

/* A thaw that never succeeds leaves the marker for the guard. */
static void test_marker_left_when_free_cannot_thaw(void **state)
{
	g_autofree char *marker = marker_file();
	const hv_freeze_options opts = { .marker_path = marker };
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	hv_freeze *f = NULL;
	fake_fs *a;

	a = plan_add(plan, "/fake/a", 0);
	a->thaw_errnos[0] = EIO;
	a->thaw_errnos[1] = EIO;
	assert_int_equal(hv_freeze_execute(plan, &opts, &f), 0);
	assert_int_equal(hv_freeze_thaw(f), -EIO);
	hv_freeze_free(f);
	assert_false(a->is_open);
	assert_true(g_file_test(marker, G_FILE_TEST_EXISTS));
	a->frozen = false;
}

static void test_marker_exists(void **state)
{
	g_autofree char *marker = marker_file();
	const hv_freeze_options opts = { .marker_path = marker };
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;
	g_autofree char *contents = NULL;

	assert_true(g_file_set_contents(marker, "left over\n", -1, NULL));
	plan_add(plan, "/fake/a", 0);
	assert_int_equal(hv_freeze_execute(plan, &opts, &f), -EEXIST);
	assert_events("FT", "");
	assert_result(f, 0, HV_FREEZE_NOT_TRIED, 0);
	contents = read_marker(marker);
	assert_string_equal(contents, "left over\n");
}

static void test_marker_dir_missing(void **state)
{
	g_autofree char *marker = g_build_filename(test_dir, "no-such-dir", "m", NULL);
	const hv_freeze_options opts = { .marker_path = marker };
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;

	plan_add(plan, "/fake/a", 0);
	assert_int_equal(hv_freeze_execute(plan, &opts, &f), -ENOENT);
	assert_events("FT", "");
	assert_false(hv_freeze_is_frozen(f));
}

/* Nothing frozen in the end (all unsupported): no marker is left either. */
static void test_marker_nothing_frozen(void **state)
{
	g_autofree char *marker = marker_file();
	const hv_freeze_options opts = { .marker_path = marker };
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;

	plan_add(plan, "/fake/vfat", 0)->freeze_errno = EOPNOTSUPP;
	assert_int_equal(hv_freeze_execute(plan, &opts, &f), 0);
	assert_false(hv_freeze_is_frozen(f));
	assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_result_names),
		cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_plan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_frozen_thaw_reverse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_failure_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsupported_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_is_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_failure_freezes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thaw_failure_thaws_the_others, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thaw_einval_is_thawed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_thaws, setup, teardown),
		cmocka_unit_test_setup_teardown(test_double_thaw, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preflush_before_first_freeze, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_preflush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parallel_waves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parallel_failure_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parallel_off_is_plan_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parallel_marker, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_thaw_now_then_settle, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_marker_contents, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_marker_removed_after_rollback, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_marker_kept_while_thaw_fails, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_marker_left_when_free_cannot_thaw, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_marker_exists, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_marker_dir_missing, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_marker_nothing_frozen, setup_dir, teardown_dir),
	};
	struct statfs sfs;

	/* The marker belongs in a tmpfs; so does the test's. */
	if (statfs("/dev/shm", &sfs) < 0 || sfs.f_type != TMPFS_MAGIC) {
		fprintf(stderr, "/dev/shm is not a tmpfs: skipped\n");
		return 77;
	}

	return cmocka_run_group_tests(tests, NULL, NULL);
}
