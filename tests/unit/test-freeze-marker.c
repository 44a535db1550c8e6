/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Marker recovery and the guard process, on real directories in a tmpfs
 * test directory (/dev/shm). ioctl is wrapped (-Wl,--wrap): FIFREEZE and
 * FITHAW never reach the kernel, they act on a fake "frozen" set and append
 * a line to a log file in the test directory, which also works from the
 * guard child, where nothing can report to cmocka. (On a tmpfs a real
 * FIFREEZE would fail with EOPNOTSUPP anyway.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv-freeze.h"

#define FROZEN_MAX 16

/* Plain static state: the guard child reads its copy after fork(). */
static struct {
	char dir[256];
	char log[300];
	char frozen[FROZEN_MAX][512];
	char busy[512];        /* FIFREEZE says EBUSY (frozen by somebody else) */
	char thaw_fail[512];   /* FITHAW says EIO */
} t;

int __real_ioctl(int fd, unsigned long request, ...);
int __wrap_ioctl(int fd, unsigned long request, ...);
int __real_syncfs(int fd);
int __wrap_syncfs(int fd);

/* Appends "<op> <path relative to the test dir, escaped> <result>\n". */
static void log_call(const char *op, const char *path, int result)
{
	char line[2048];
	size_t n = 0, skip = strlen(t.dir);
	const unsigned char *p;
	int fd;

	n += (size_t) snprintf(line + n, sizeof(line) - n, "%s ", op);
	p = (const unsigned char *) path + (strncmp(path, t.dir, skip) == 0 ? skip : 0);
	for (; *p && n + 8 < sizeof(line); p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == '\\')
			n += (size_t) snprintf(line + n, sizeof(line) - n, "\\%03o", *p);
		else
			line[n++] = (char) *p;
	}

	n += (size_t) snprintf(line + n, sizeof(line) - n, " %d\n", result);
	fd = open(t.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return;

	if (write(fd, line, n) < 0) {
		/* the test sees the line missing */
	}

	close(fd);
}

static int frozen_find(const char *path)
{
	int i;

	for (i = 0; i < FROZEN_MAX; i++)
		if (t.frozen[i][0] && strcmp(t.frozen[i], path) == 0)
			return i;

	return -1;
}

static void frozen_add(const char *path)
{
	int i;

	if (frozen_find(path) >= 0)
		return;

	for (i = 0; i < FROZEN_MAX; i++) {
		if (!t.frozen[i][0]) {
			g_strlcpy(t.frozen[i], path, sizeof(t.frozen[i]));
			return;
		}
	}

	abort();
}

int __wrap_ioctl(int fd, unsigned long request, ...)
{
	char link[64], path[512];
	unsigned long arg;
	ssize_t n;
	va_list ap;
	int i, r;

	va_start(ap, request);
	arg = va_arg(ap, unsigned long);
	va_end(ap);

	if (request != FIFREEZE && request != FITHAW)
		return __real_ioctl(fd, request, arg);

	/* Never the kernel. Never anything outside the test directory. */
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n >= 0)
		path[n] = '\0';

	if (n < 0 || t.dir[0] == '\0' || strncmp(path, t.dir, strlen(t.dir)) != 0 ||
	    (path[strlen(t.dir)] != '/' && path[strlen(t.dir)] != '\0')) {
		fprintf(stderr, "FATAL: FIFREEZE/FITHAW outside the test directory\n");
		abort();
	}

	if (request == FIFREEZE) {
		if (strcmp(path, t.busy) == 0) {
			r = -EBUSY;
		} else {
			frozen_add(path);
			r = 0;
		}
	} else {
		i = frozen_find(path);
		if (strcmp(path, t.thaw_fail) == 0) {
			r = -EIO;
		} else if (i < 0) {
			r = -EINVAL;
		} else {
			t.frozen[i][0] = '\0';
			r = 0;
		}
	}

	log_call(request == FIFREEZE ? "FIFREEZE" : "FITHAW", path, r);
	if (r < 0) {
		errno = -r;
		return -1;
	}

	return 0;
}

int __wrap_syncfs(int fd)
{
	return 0;
}

/* --- helpers --- */

static char *path_in(const char *name)
{
	return g_build_filename(t.dir, name, NULL);
}

static char *make_dir(const char *name)
{
	char *p = path_in(name);

	assert_int_equal(g_mkdir(p, 0700), 0);
	return p;
}

static char *marker_file(void)
{
	return path_in("freeze.marker");
}

static char *read_log(void)
{
	char *contents = NULL;

	if (!g_file_get_contents(t.log, &contents, NULL, NULL))
		return g_strdup("");

	return contents;
}

static void assert_log(const char *expected)
{
	g_autofree char *got = read_log();

	assert_string_equal(got, expected);
}

static void clear_log(void)
{
	g_remove(t.log);
}

/* A record line as the executor writes it. */
static void add_line(GString *s, hv_freeze_mark mark, dev_t dev, const char *name)
{
	g_autofree char *p = path_in(name);

	hv_freeze_marker_add(s, mark, dev, p);
}

static void write_marker(const GString *s)
{
	g_autofree char *marker = marker_file();

	assert_true(g_file_set_contents(marker, s->str, (gssize) s->len, NULL));
}

static GString *marker_new(void)
{
	return g_string_new("hv-freeze-marker 1 4242\n");
}

static bool marker_exists(void)
{
	g_autofree char *marker = marker_file();

	return g_file_test(marker, G_FILE_TEST_EXISTS);
}

static void freeze_fake(const char *name)
{
	g_autofree char *p = path_in(name);

	frozen_add(p);
}

static bool is_frozen(const char *name)
{
	g_autofree char *p = path_in(name);

	return frozen_find(p) >= 0;
}

static void remove_tree(const char *path)
{
	GDir *dir = g_dir_open(path, 0, NULL);
	const char *name;

	if (dir) {
		while ((name = g_dir_read_name(dir))) {
			g_autofree char *child = g_build_filename(path, name, NULL);

			remove_tree(child);
		}

		g_dir_close(dir);
	}

	g_remove(path);
}

static int setup(void **state)
{
	memset(&t, 0, sizeof(t));
	g_strlcpy(t.dir, "/dev/shm/hv-test-freeze-marker-XXXXXX", sizeof(t.dir));
	if (!g_mkdtemp(t.dir))
		return -1;

	snprintf(t.log, sizeof(t.log), "%s/ioctl.log", t.dir);
	return 0;
}

static int teardown(void **state)
{
	remove_tree(t.dir);
	return 0;
}

static void plan_add(hv_freeze_plan *plan, const char *name, unsigned int wave)
{
	g_autofree char *path = make_dir(name);

	hv_freeze_plan_add_target(plan, path, "ext4", NULL, 0, wave);
}

static gint64 now_ms(void)
{
	return g_get_monotonic_time() / 1000;
}

/* --- recovery --- */

static void test_recover_no_marker(void **state)
{
	g_autofree char *marker = marker_file();

	assert_int_equal(hv_freeze_marker_recover(marker), 0);
	assert_int_equal(hv_freeze_marker_recover(NULL), -EINVAL);
	assert_log("");
}

static void test_recover_reverse_order(void **state)
{
	g_autoptr(GString) m = marker_new();
	g_autofree char *marker = marker_file();
	g_autofree char *a = make_dir("a"), *b = make_dir("b"), *c = make_dir("c");

	add_line(m, HV_FREEZE_MARK_OURS, 0, "a");
	add_line(m, HV_FREEZE_MARK_OURS, 0, "b");
	add_line(m, HV_FREEZE_MARK_OURS, 0, "c");
	write_marker(m);
	freeze_fake("a");
	freeze_fake("b");
	freeze_fake("c");
	assert_int_equal(hv_freeze_marker_recover(marker), 3);
	assert_log("FITHAW /c 0\nFITHAW /b 0\nFITHAW /a 0\n");
	assert_false(marker_exists());
	/* and a second time there is nothing left */
	assert_int_equal(hv_freeze_marker_recover(marker), 0);
}

static void test_recover_only_ours(void **state)
{
	g_autoptr(GString) m = marker_new();
	g_autofree char *marker = marker_file();
	g_autofree char *a = make_dir("a"), *b = make_dir("b"), *c = make_dir("c");
	g_autofree char *e = make_dir("e");

	add_line(m, HV_FREEZE_MARK_OURS, 0, "a");
	add_line(m, HV_FREEZE_MARK_OURS, 0, "b");
	add_line(m, HV_FREEZE_MARK_NOT_OURS, 0, "b"); /* foreign */
	add_line(m, HV_FREEZE_MARK_OURS, 0, "c");
	add_line(m, HV_FREEZE_MARK_THAWED, 0, "c");   /* thawed before the crash */
	add_line(m, HV_FREEZE_MARK_OURS, 0, "e");
	add_line(m, HV_FREEZE_MARK_THAWED, 0, "e");
	add_line(m, HV_FREEZE_MARK_OURS, 0, "e");     /* and frozen again */
	write_marker(m);
	freeze_fake("a");
	freeze_fake("b");
	freeze_fake("c");
	freeze_fake("e");
	assert_int_equal(hv_freeze_marker_recover(marker), 2);
	assert_log("FITHAW /e 0\nFITHAW /a 0\n");
	assert_true(is_frozen("b"));
	assert_true(is_frozen("c"));
	assert_false(marker_exists());
}

static void test_recover_damaged(void **state)
{
	g_autoptr(GString) m = marker_new();
	g_autofree char *marker = marker_file();
	g_autofree char *a = make_dir("a"), *b = make_dir("b"), *c = make_dir("c");

	add_line(m, HV_FREEZE_MARK_OURS, 0, "a");
	g_string_append(m, "X - /junk\n");
	g_string_append(m, "F - relative/path\n");
	g_string_append_printf(m, "F - %s/bad\\9escape\n", t.dir);
	g_string_append_printf(m, "F - %s/nul\\000\n", t.dir);
	g_string_append_printf(m, "F 12 %s/c\n", t.dir);
	g_string_append_printf(m, "F 1:x %s/c\n", t.dir);
	g_string_append_printf(m, "F -\n");
	g_string_append(m, "\n");
	g_string_append(m, "hv-freeze-marker 1 99\n");
	g_string_append(m, "# a comment is fine\n");
	add_line(m, HV_FREEZE_MARK_OURS, 0, "b");
	g_string_append_printf(m, "F - %s/c", t.dir); /* torn last write */
	write_marker(m);
	freeze_fake("a");
	freeze_fake("b");
	freeze_fake("c");
	assert_int_equal(hv_freeze_marker_recover(marker), -EBADMSG);
	/* everything readable was tried, the rest left alone */
	assert_log("FITHAW /b 0\nFITHAW /a 0\n");
	assert_true(is_frozen("c"));
	assert_false(marker_exists());
}

static void test_recover_no_header(void **state)
{
	g_autoptr(GString) m = g_string_new(NULL);
	g_autofree char *marker = marker_file();
	g_autofree char *a = make_dir("a"), *b = make_dir("b");

	add_line(m, HV_FREEZE_MARK_OURS, 0, "a");
	add_line(m, HV_FREEZE_MARK_OURS, 0, "b");
	write_marker(m);
	freeze_fake("a");
	freeze_fake("b");
	assert_int_equal(hv_freeze_marker_recover(marker), -EBADMSG);
	assert_log("FITHAW /b 0\nFITHAW /a 0\n");
	assert_false(marker_exists());
}

static void test_recover_empty(void **state)
{
	g_autoptr(GString) m = g_string_new(NULL);
	g_autofree char *marker = marker_file();

	/* created, crashed before the header: nothing was frozen yet */
	write_marker(m);
	assert_int_equal(hv_freeze_marker_recover(marker), 0);
	assert_false(marker_exists());
	assert_log("");
}

static void test_recover_tolerates_gone_and_thawed(void **state)
{
	g_autoptr(GString) m = marker_new();
	g_autofree char *marker = marker_file();
	g_autofree char *a = make_dir("a"), *file = path_in("file");

	assert_true(g_file_set_contents(file, "", 0, NULL));
	add_line(m, HV_FREEZE_MARK_OURS, 0, "missing");
	add_line(m, HV_FREEZE_MARK_OURS, 0, "a");   /* thawed by an admin: EINVAL */
	add_line(m, HV_FREEZE_MARK_OURS, 0, "file"); /* not a mount point any more */
	write_marker(m);
	assert_int_equal(hv_freeze_marker_recover(marker), 0);
	assert_log("FITHAW /a -22\n");
	assert_false(marker_exists());
}

static void test_recover_checks_device(void **state)
{
	g_autoptr(GString) m = marker_new();
	g_autofree char *marker = marker_file();
	g_autofree char *a = make_dir("a"), *b = make_dir("b");
	struct stat st;

	assert_int_equal(stat(a, &st), 0);
	/* something else is mounted on a now */
	add_line(m, HV_FREEZE_MARK_OURS, makedev(major(st.st_dev) + 1, minor(st.st_dev)), "a");
	add_line(m, HV_FREEZE_MARK_OURS, st.st_dev, "b");
	write_marker(m);
	freeze_fake("a");
	freeze_fake("b");
	assert_int_equal(hv_freeze_marker_recover(marker), 1);
	assert_log("FITHAW /b 0\n");
	assert_true(is_frozen("a"));
}

static void test_recover_thaw_error_keeps_marker(void **state)
{
	g_autoptr(GString) m = marker_new();
	g_autofree char *marker = marker_file();
	g_autofree char *a = make_dir("a"), *b = make_dir("b"), *c = make_dir("c");

	add_line(m, HV_FREEZE_MARK_OURS, 0, "a");
	add_line(m, HV_FREEZE_MARK_OURS, 0, "b");
	add_line(m, HV_FREEZE_MARK_OURS, 0, "c");
	write_marker(m);
	freeze_fake("a");
	freeze_fake("b");
	freeze_fake("c");
	g_strlcpy(t.thaw_fail, b, sizeof(t.thaw_fail));
	assert_int_equal(hv_freeze_marker_recover(marker), -EIO);
	assert_log("FITHAW /c 0\nFITHAW /b -5\nFITHAW /a 0\n");
	assert_true(marker_exists());

	/* the next recovery finishes the job */
	t.thaw_fail[0] = '\0';
	clear_log();
	assert_int_equal(hv_freeze_marker_recover(marker), 1);
	assert_log("FITHAW /c -22\nFITHAW /b 0\nFITHAW /a -22\n");
	assert_false(marker_exists());
}

/* What the executor writes is what recovery reads: a crash while frozen. */
static void test_execute_then_recover(void **state)
{
	g_autofree char *marker = marker_file();
	const hv_freeze_options opts = { .preflush = true, .foreign_is_error = false,
					 .marker_path = marker };
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;
	g_autofree char *busy = path_in("busy");

	g_strlcpy(t.busy, busy, sizeof(t.busy));
	plan_add(plan, "a", 0);
	plan_add(plan, "busy", 0);
	plan_add(plan, "b", 0);
	plan_add(plan, "c", 1);
	assert_int_equal(hv_freeze_execute(plan, &opts, &f), 0);
	assert_log("FIFREEZE /a 0\nFIFREEZE /busy -16\nFIFREEZE /b 0\nFIFREEZE /c 0\n");
	assert_true(marker_exists());

	clear_log();
	assert_int_equal(hv_freeze_marker_recover(marker), 3);
	assert_log("FITHAW /c 0\nFITHAW /b 0\nFITHAW /a 0\n");
	assert_false(marker_exists());

	/* the handle's own thaw now finds them thawed: fine */
	clear_log();
	assert_int_equal(hv_freeze_thaw(f), 0);
	assert_log("FITHAW /c -22\nFITHAW /b -22\nFITHAW /a -22\n");
	assert_false(hv_freeze_is_frozen(f));
}

static void test_execute_then_recover_odd_names(void **state)
{
	g_autofree char *marker = marker_file();
	const hv_freeze_options opts = { .foreign_is_error = true, .marker_path = marker };
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;

	plan_add(plan, "sp ace", 0);
	plan_add(plan, "new\nline", 0);
	plan_add(plan, "back\\slash", 0);
	plan_add(plan, "tab\there", 1);
	plan_add(plan, "caf\xc3\xa9", 1);
	assert_int_equal(hv_freeze_execute(plan, &opts, &f), 0);
	clear_log();
	assert_int_equal(hv_freeze_marker_recover(marker), 5);
	assert_log("FITHAW /caf\xc3\xa9 0\n"
		   "FITHAW /tab\\011here 0\n"
		   "FITHAW /back\\134slash 0\n"
		   "FITHAW /new\\012line 0\n"
		   "FITHAW /sp\\040ace 0\n");
}

/* --- guard --- */

static bool guard_ready(pid_t pid)
{
	g_autofree char *comm_path = g_strdup_printf("/proc/%d/comm", (int) pid);
	gint64 deadline = now_ms() + 5000;

	while (now_ms() < deadline) {
		g_autofree char *comm = NULL;

		if (g_file_get_contents(comm_path, &comm, NULL, NULL) &&
		    strcmp(comm, "hv-freeze-guard\n") == 0)
			return true;

		g_usleep(5000);
	}

	return false;
}

static void test_guard_no_marker_thaws_nothing(void **state)
{
	g_autofree char *marker = marker_file();
	hv_freeze_guard *guard = NULL;
	pid_t pid;

	assert_int_equal(hv_freeze_guard_start(NULL, &guard), -EINVAL);
	assert_int_equal(hv_freeze_guard_start(marker, &guard), 0);
	pid = hv_freeze_guard_get_pid(guard);
	assert_true(pid > 0);
	freeze_fake("x");
	hv_freeze_guard_free(guard);
	/* reaped, and it did nothing */
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
	assert_log("");
	hv_freeze_guard_free(NULL);
	assert_int_equal(hv_freeze_guard_get_pid(NULL), -1);
}

static void test_guard_survives_signals_holds_no_fds(void **state)
{
	g_autofree char *marker = marker_file();
	g_autofree char *fd_dir = NULL;
	g_autoptr(hv_freeze_guard) guard = NULL;
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT };
	unsigned int i, n_fds = 0, n_pipes = 0;
	int extra[2], status;
	struct dirent *de;
	DIR *dir;
	pid_t pid;

	/* an fd the daemon holds must not stay open in the guard */
	assert_int_equal(pipe(extra), 0);
	assert_int_equal(hv_freeze_guard_start(marker, &guard), 0);
	pid = hv_freeze_guard_get_pid(guard);
	assert_true(guard_ready(pid));

	fd_dir = g_strdup_printf("/proc/%d/fd", (int) pid);
	dir = opendir(fd_dir);
	assert_non_null(dir);
	while ((de = readdir(dir))) {
		char link[PATH_MAX] = "";
		g_autofree char *p = NULL;
		int fd;

		if (de->d_name[0] == '.')
			continue;

		fd = atoi(de->d_name);
		/* valgrind keeps its own fds at the top of the range */
		if (fd >= 1000)
			continue;

		n_fds++;
		p = g_strdup_printf("%s/%s", fd_dir, de->d_name);
		assert_true(readlink(p, link, sizeof(link) - 1) > 0);
		if (fd > 2) {
			assert_true(g_str_has_prefix(link, "pipe:"));
			n_pipes++;
		}
	}

	closedir(dir);
	assert_int_equal(n_pipes, 1);
	assert_true(n_fds <= 4);

	for (i = 0; i < G_N_ELEMENTS(sigs); i++)
		assert_int_equal(kill(pid, sigs[i]), 0);

	g_usleep(200 * 1000);
	assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
	close(extra[0]);
	close(extra[1]);
}

static void test_guard_thaws_on_eof(void **state)
{
	g_autofree char *marker = marker_file();
	const hv_freeze_options opts = { .foreign_is_error = true, .marker_path = marker };
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	g_autoptr(hv_freeze) f = NULL;
	hv_freeze_guard *guard = NULL;
	gint64 start;

	plan_add(plan, "a", 0);
	plan_add(plan, "b", 1);
	/* the guard's copy of the fake kernel state sees them frozen */
	freeze_fake("a");
	freeze_fake("b");
	assert_int_equal(hv_freeze_guard_start(marker, &guard), 0);
	assert_int_equal(hv_freeze_execute(plan, &opts, &f), 0);
	assert_true(marker_exists());
	clear_log();

	start = now_ms();
	hv_freeze_guard_free(guard);
	/* includes the guard's exit, which valgrind makes slow */
	print_message("guard thawed and exited in %" G_GINT64_FORMAT " ms\n", now_ms() - start);
	assert_true(now_ms() - start < 5000);
	assert_log("FITHAW /b 0\nFITHAW /a 0\n");
	assert_false(marker_exists());
}

/*
 * The real case: a "daemon" child starts the guard, freezes, and is killed
 * by SIGKILL. This process is a child subreaper, so the orphaned guard becomes
 * its child and can be waited for.
 */
static void test_guard_thaws_after_sigkill(void **state)
{
	g_autofree char *marker = marker_file();
	g_autoptr(hv_freeze_plan) plan = hv_freeze_plan_new();
	pid_t daemon_pid, guard_pid = 0;
	int status, sync_pipe[2];
	gint64 start;

	plan_add(plan, "a", 0);
	plan_add(plan, "b", 0);
	plan_add(plan, "c", 1);
	assert_int_equal(pipe2(sync_pipe, O_CLOEXEC), 0);
	daemon_pid = fork();
	assert_true(daemon_pid >= 0);
	if (daemon_pid == 0) {
		const hv_freeze_options opts = { .foreign_is_error = true, .marker_path = marker };
		hv_freeze_guard *guard = NULL;
		hv_freeze *f = NULL;
		pid_t pid;

		close(sync_pipe[0]);
		if (hv_freeze_guard_start(marker, &guard) < 0)
			_exit(2);

		if (hv_freeze_execute(plan, &opts, &f) < 0)
			_exit(3);

		pid = hv_freeze_guard_get_pid(guard);
		if (write(sync_pipe[1], &pid, sizeof(pid)) != sizeof(pid))
			_exit(4);

		for (;;)
			pause();
	}

	close(sync_pipe[1]);
	assert_int_equal(read(sync_pipe[0], &guard_pid, sizeof(guard_pid)), sizeof(guard_pid));
	close(sync_pipe[0]);
	assert_int_equal(kill(daemon_pid, SIGKILL), 0);
	assert_int_equal(waitpid(daemon_pid, &status, 0), daemon_pid);
	start = now_ms();
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);

	/* thawed (the marker goes last) well within a second */
	while (marker_exists() && now_ms() - start < 5000)
		g_usleep(1000);

	print_message("guard thawed %" G_GINT64_FORMAT " ms after the daemon died\n",
		      now_ms() - start);
	assert_false(marker_exists());
	assert_true(now_ms() - start < 1000);
	assert_int_equal(waitpid(guard_pid, &status, 0), guard_pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* the guard's state was copied before the freeze: it finds nothing frozen,
	 * but it tried each of them, in reverse */
	assert_log("FIFREEZE /a 0\nFIFREEZE /b 0\nFIFREEZE /c 0\n"
		   "FITHAW /c -22\nFITHAW /b -22\nFITHAW /a -22\n");
	assert_false(marker_exists());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_recover_no_marker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_reverse_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_only_ours, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_damaged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_no_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_tolerates_gone_and_thawed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recover_checks_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_thaw_error_keeps_marker, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_execute_then_recover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_execute_then_recover_odd_names, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_guard_no_marker_thaws_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_guard_survives_signals_holds_no_fds, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_guard_thaws_on_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guard_thaws_after_sigkill, setup, teardown),
	};
	struct statfs sfs;

	/* Real directories, but only in a tmpfs, which cannot be frozen. */
	if (statfs("/dev/shm", &sfs) < 0 || sfs.f_type != TMPFS_MAGIC) {
		fprintf(stderr, "/dev/shm is not a tmpfs: skipped\n");
		return 77;
	}

	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		fprintf(stderr, "cannot become a child subreaper: skipped\n");
		return 77;
	}

	return cmocka_run_group_tests(tests, NULL, NULL);
}
