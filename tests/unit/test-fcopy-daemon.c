/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The whole daemon (skeleton, config, char device transport, adapter,
 * session) in a forked child, its device a SOCK_SEQPACKET socketpair (one
 * message per read and write, as the driver's char device), with the test
 * playing the Linux <= 6.9 FCOPY driver. Everything it writes goes into a
 * tmpdir; nothing of the machine's is touched (open is wrapped for the fake
 * device path only).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "fcopy-daemon.h"
#include "fcopy-session.h"
#include "hv-fcopy.h"
#include "hv-status.h"

#define FAKE_DEVICE "/fake/vmbus/hv_fcopy"

static int daemon_end = -1;

int __real_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	if (strcmp(path, FAKE_DEVICE) == 0)
		return dup(daemon_end);

	va_start(ap, flags);
	mode = va_arg(ap, mode_t);
	va_end(ap);
	return __real_open(path, flags, mode);
}

struct fixture {
	char *root;
	char *target;
	char *run;
	char *conf;
	int driver;
	pid_t pid;
};

static union {
	struct hv_fcopy_hdr hdr;
	struct hv_start_fcopy start;
	struct hv_do_fcopy data;
	uint8_t raw[8192];
} msg;

static void spawn(struct fixture *f)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	f->driver = sv[0];
	daemon_end = sv[1];

	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0) {
		g_autofree char *config = g_strdup_printf("--config=%s", f->conf);
		g_autofree char *rundir = g_strdup_printf("--runtime-dir=%s", f->run);
		char *argv[] = {g_strdup("hv_fcopy_daemon"),
				g_strdup("--transport=chardev"),
				g_strdup("--device=" FAKE_DEVICE),
				config,
				rundir,
				g_strdup("--log-target=stderr"),
				g_strdup("--debug"),
				NULL};

		close(f->driver);
		_exit(hv_daemon_main(&fcopy_daemon_ops, G_N_ELEMENTS(argv) - 1, argv));
	}
	close(daemon_end);
	daemon_end = -1;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char tmpl[] = "/tmp/test-fcopy-daemon-XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	f->root = realpath(tmpl, NULL);
	f->target = g_build_filename(f->root, "target", NULL);
	f->run = g_build_filename(f->root, "run", NULL);
	f->conf = g_build_filename(f->root, "test.conf", NULL);
	assert_int_equal(mkdir(f->target, 0755), 0);
	assert_int_equal(mkdir(f->run, 0755), 0);
	/* named temporary files, so that their removal can be seen */
	assert_true(
	    g_file_set_contents(f->conf, "[fcopy]\ntmpfile=false\nfile-mode=0640\n", -1, NULL));
	f->driver = -1;
	*state = f;
	return 0;
}

static void stop(struct fixture *f, int expect_exit)
{
	int status = 0;

	if (f->pid <= 0)
		return;
	kill(f->pid, SIGTERM);
	assert_int_equal(waitpid(f->pid, &status, 0), f->pid);
	f->pid = 0;
	if (expect_exit >= 0) {
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), expect_exit);
	}
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->root);

	stop(f, -1);
	if (f->driver >= 0)
		close(f->driver);
	assert_int_equal(system(cmd), 0);
	free(f->root);
	g_free(f->target);
	g_free(f->run);
	g_free(f->conf);
	free(f);
	return 0;
}

static ssize_t recv_timeout(int fd, void *buf, size_t size, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (poll(&p, 1, ms) != 1)
		return -ETIMEDOUT;
	return read(fd, buf, size);
}

static void handshake(struct fixture *f)
{
	uint8_t buf[8];
	int32_t reg = 0;
	uint32_t version = HV_FCOPY_CURRENT_VERSION;

	/* room for more than 4 bytes: a longer registration would be seen */
	assert_int_equal(recv_timeout(f->driver, buf, sizeof(buf), 5000), 4);
	memcpy(&reg, buf, sizeof(reg));
	assert_int_equal(reg, HV_FCOPY_CURRENT_VERSION);
	assert_int_equal(write(f->driver, &version, sizeof(version)), 4);
}

/* Posts @len bytes of msg, returns the daemon's 4-byte status. */
static uint32_t request(struct fixture *f, size_t len)
{
	uint32_t status = 0xdeadbeef;
	uint8_t reply[16];
	ssize_t n;

	assert_int_equal(write(f->driver, &msg, len), (ssize_t)len);
	n = recv_timeout(f->driver, reply, sizeof(reply), 10000);
	assert_int_equal(n, 4);
	memcpy(&status, reply, 4);
	return status;
}

static uint32_t start(struct fixture *f, const char *dir, const char *name, uint32_t flags,
		      uint64_t size)
{
	memset(&msg, 0, sizeof(msg));
	msg.hdr.operation = HV_FCOPY_START_FILE_COPY;
	memcpy(msg.raw + offsetof(struct hv_start_fcopy, file_name), name, strlen(name));
	memcpy(msg.raw + offsetof(struct hv_start_fcopy, path_name), dir, strlen(dir));
	msg.start.copy_flags = flags;
	msg.start.file_size = size;
	return request(f, sizeof(struct hv_start_fcopy));
}

/* @size is what the message claims; @have bytes of @data are copied. */
static uint32_t send_data_claim(struct fixture *f, uint64_t offset, const void *data, uint32_t have,
				uint32_t size)
{
	memset(&msg, 0, sizeof(struct hv_do_fcopy));
	msg.hdr.operation = HV_FCOPY_WRITE_TO_FILE;
	msg.data.offset = offset;
	msg.data.size = size;
	memcpy(msg.data.data, data, have);
	return request(f, sizeof(struct hv_do_fcopy));
}

static uint32_t send_data(struct fixture *f, uint64_t offset, const void *data, uint32_t size)
{
	return send_data_claim(f, offset, data, size, size);
}

static uint32_t simple(struct fixture *f, uint32_t op)
{
	memset(&msg, 0, sizeof(struct hv_fcopy_hdr));
	msg.hdr.operation = op;
	return request(f, sizeof(struct hv_fcopy_hdr));
}

static char *listing(const char *dir)
{
	GString *s = g_string_new(NULL);
	DIR *d = opendir(dir);

	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			g_string_append_printf(s, "%s%s", s->len ? " " : "", e->d_name);
	closedir(d);
	return g_string_free(s, FALSE);
}

static void test_copy_and_errors(void **state)
{
	struct fixture *f = *state;
	const char *name = "R\xc3\xa9sum\xc3\xa9 \xe6\x96\x87\xe4\xbb\xb6 \xf0\x9f\x98\x80.bin";
	g_autofree char *path = g_build_filename(f->target, name, NULL);
	g_autofree uint8_t *data = g_malloc(20000);
	g_autofree char *got = NULL;
	gsize got_len = 0;
	struct stat st;

	for (size_t i = 0; i < 20000; i++)
		data[i] = (uint8_t)(i * 7 + 3);

	spawn(f);
	handshake(f);

	assert_int_equal(start(f, f->target, name, 0, 20000), HV_S_OK);
	for (uint32_t off = 0; off < 20000; off += 6144)
		assert_int_equal(send_data(f, off, data + off, MIN(6144u, 20000 - off)), HV_S_OK);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(simple(f, HV_FCOPY_COMPLETE_FCOPY), HV_S_OK);
	assert_true(g_file_get_contents(path, &got, &got_len, NULL));
	assert_int_equal(got_len, 20000);
	assert_memory_equal(got, data, 20000);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);

	/* exists, no OVER_WRITE */
	assert_int_equal(start(f, f->target, name, 0, 1), HV_ERROR_ALREADY_EXISTS);
	/* the host's WRITE after a refused START */
	assert_int_equal(send_data(f, 0, "x", 1), HV_E_FAIL);
	/* bad names */
	assert_int_equal(start(f, f->target, "a\x80", 0, 1), HV_INVALIDARG);
	assert_int_equal(start(f, f->target, "..", 0, 1), HV_INVALIDARG);
	assert_int_equal(start(f, "/nonexistent-fcopy-dir/x", "a", 0, 1), HV_E_FAIL);
	/* malformed messages */
	memset(&msg, 0, sizeof(msg));
	assert_int_equal(request(f, 10), HV_INVALIDARG);
	msg.hdr.operation = HV_FCOPY_START_FILE_COPY;
	assert_int_equal(request(f, 100), HV_INVALIDARG);
	assert_int_equal(send_data_claim(f, 0, "x", 1, 7000), HV_INVALIDARG);
	assert_int_equal(simple(f, 9), HV_ERROR_NOT_SUPPORTED);
	/* COMPLETE as the driver forwards it: the whole host packet's length, up to 2 pages */
	memset(&msg, 0, sizeof(msg));
	msg.hdr.operation = HV_FCOPY_CANCEL_FCOPY;
	assert_int_equal(request(f, 8192), HV_S_OK);

	/* cancel part-way: nothing left but the first file */
	assert_int_equal(start(f, f->target, "partial", 0, 20000), HV_S_OK);
	assert_int_equal(send_data(f, 0, data, 6144), HV_S_OK);
	{
		g_autofree char *l = listing(f->target);
		assert_non_null(strstr(l, FCOPY_TEMP_PREFIX));
	}
	assert_int_equal(simple(f, HV_FCOPY_CANCEL_FCOPY), HV_S_OK);
	{
		g_autofree char *l = listing(f->target);
		assert_string_equal(l, name);
	}

	/* CREATE_PATH + OVER_WRITE */
	g_autofree char *deep = g_build_filename(f->target, "a", "b", NULL);
	assert_int_equal(start(f, deep, "x", HV_FCOPY_CREATE_PATH | HV_FCOPY_OVER_WRITE, 1),
			 HV_S_OK);
	assert_int_equal(send_data(f, 0, "y", 1), HV_S_OK);
	assert_int_equal(simple(f, HV_FCOPY_COMPLETE_FCOPY), HV_S_OK);
	g_autofree char *deep_x = g_build_filename(deep, "x", NULL);
	assert_int_equal(access(deep_x, F_OK), 0);

	stop(f, 0);
}

static void test_driver_reset_mid_copy(void **state)
{
	struct fixture *f = *state;
	uint8_t chunk[6144] = {1};

	spawn(f);
	handshake(f);
	assert_int_equal(start(f, f->target, "big", 0, 100000), HV_S_OK);
	assert_int_equal(send_data(f, 0, chunk, 6144), HV_S_OK);

	/* the driver resets: the daemon drops the copy (and then keeps reopening) */
	close(f->driver);
	f->driver = -1;
	for (int i = 0; i < 100; i++) {
		g_autofree char *l = listing(f->target);

		if (strcmp(l, "") == 0)
			break;
		usleep(20000);
	}
	g_autofree char *l = listing(f->target);
	assert_string_equal(l, "");
	stop(f, 0);
}

static void test_restart_mid_copy(void **state)
{
	struct fixture *f = *state;
	g_autofree char *state_file = g_build_filename(f->run, "fcopy-partial", NULL);
	uint8_t chunk[6144] = {2};
	int status;

	spawn(f);
	handshake(f);
	assert_int_equal(start(f, f->target, "big", 0, 100000), HV_S_OK);
	assert_int_equal(send_data(f, 0, chunk, 6144), HV_S_OK);

	/* killed outright: no cleanup runs */
	kill(f->pid, SIGKILL);
	assert_int_equal(waitpid(f->pid, &status, 0), f->pid);
	f->pid = 0;
	close(f->driver);
	{
		g_autofree char *l = listing(f->target);
		assert_true(g_str_has_prefix(l, FCOPY_TEMP_PREFIX));
		assert_int_equal(access(state_file, F_OK), 0);
	}

	/* the next daemon removes the leftover at start-up, then serves */
	spawn(f);
	handshake(f);
	{
		g_autofree char *l = listing(f->target);
		assert_string_equal(l, "");
		assert_int_equal(access(state_file, F_OK), -1);
	}
	assert_int_equal(start(f, f->target, "big", 0, 1), HV_S_OK);
	assert_int_equal(send_data(f, 0, chunk, 1), HV_S_OK);
	assert_int_equal(simple(f, HV_FCOPY_COMPLETE_FCOPY), HV_S_OK);
	stop(f, 0);
}

static void test_idle_timeout(void **state)
{
	struct fixture *f = *state;
	uint8_t chunk[6144] = {4};

	assert_true(g_file_set_contents(f->conf, "[fcopy]\ntmpfile=false\nidle-timeout=1\n", -1,
					NULL));
	spawn(f);
	handshake(f);
	assert_int_equal(start(f, f->target, "slow", 0, 100000), HV_S_OK);
	assert_int_equal(send_data(f, 0, chunk, 6144), HV_S_OK);
	{
		g_autofree char *l = listing(f->target);
		assert_true(g_str_has_prefix(l, FCOPY_TEMP_PREFIX));
	}
	/* the host vanished without a CANCEL */
	for (int i = 0; i < 100; i++) {
		g_autofree char *l = listing(f->target);

		if (strcmp(l, "") == 0)
			break;
		usleep(50000);
	}
	g_autofree char *l = listing(f->target);
	assert_string_equal(l, "");
	/* its late fragment finds no copy */
	assert_int_equal(send_data(f, 6144, chunk, 6144), HV_E_FAIL);
	/* a copy that keeps talking is not affected */
	assert_int_equal(start(f, f->target, "steady", 0, 3 * 6144), HV_S_OK);
	for (int i = 0; i < 3; i++) {
		usleep(600000);
		assert_int_equal(send_data(f, (uint64_t)i * 6144, chunk, 6144), HV_S_OK);
	}
	assert_int_equal(simple(f, HV_FCOPY_COMPLETE_FCOPY), HV_S_OK);
	stop(f, 0);
}

static void test_sigterm_mid_copy(void **state)
{
	struct fixture *f = *state;
	uint8_t chunk[6144] = {3};

	spawn(f);
	handshake(f);
	assert_int_equal(start(f, f->target, "big", 0, 100000), HV_S_OK);
	assert_int_equal(send_data(f, 0, chunk, 6144), HV_S_OK);
	stop(f, 0);
	g_autofree char *l = listing(f->target);
	assert_string_equal(l, "");
}

/* Runs the daemon with @args in a child; returns its exit code, its stderr in *ret_err. */
static int run_capture(const char *const *args, char **ret_err)
{
	GString *err = g_string_new(NULL);
	char buf[4096];
	int pipefd[2], status = 0;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[16];
		int argc = 0;

		dup2(pipefd[1], STDERR_FILENO);
		close(pipefd[0]);
		argv[argc++] = g_strdup("hv_fcopy_daemon");
		for (; args[argc - 1] && argc < 15; argc++)
			argv[argc] = g_strdup(args[argc - 1]);
		argv[argc] = NULL;
		_exit(hv_daemon_main(&fcopy_daemon_ops, argc, argv));
	}
	close(pipefd[1]);
	while ((n = read(pipefd[0], buf, sizeof(buf))) > 0)
		g_string_append_len(err, buf, n);
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	*ret_err = g_string_free(err, FALSE);
	return WEXITSTATUS(status);
}

static void test_no_kernel_interface(void **state)
{
	struct fixture *f = *state;
	g_autofree char *sys = g_build_filename(f->root, "sys", NULL);
	g_autofree char *dev = g_build_filename(sys, "bus/vmbus/devices",
						"eb765408-105f-49b6-b4aa-c123b64d17d4", NULL);
	g_autofree char *uio = g_build_filename(dev, "uio", "uio0", NULL);
	g_autofree char *sysarg = g_strdup_printf("--sysfs-root=%s", sys);
	g_autofree char *rundir = g_strdup_printf("--runtime-dir=%s", f->run);
	g_autofree char *config = g_strdup_printf("--config=%s", f->conf);
	const char *args[] = {
	    "--device=/nonexistent/hv_fcopy", sysarg, rundir, config, "--log-target=stderr", NULL};
	char *err = NULL;

	/* nothing at all: both ways named */
	assert_int_equal(mkdir(sys, 0755), 0);
	assert_int_equal(run_capture(args, &err), 1);
	assert_non_null(strstr(err, "No FCOPY interface: /nonexistent/hv_fcopy does not exist"));
	assert_non_null(strstr(err, "Linux <= 6.9: load hv_utils"));
	assert_non_null(strstr(err, "echo 34d14be3-dee4-41c8-9ae7-6b174977c192 > "
				    "/sys/bus/vmbus/drivers/uio_hv_generic/new_id"));
	g_free(err);

	/* the VMBus device, bound to nothing */
	assert_int_equal(g_mkdir_with_parents(dev, 0755), 0);
	assert_int_equal(run_capture(args, &err), 1);
	assert_non_null(strstr(err, "is not bound to uio_hv_generic"));
	assert_non_null(strstr(err, "modprobe uio_hv_generic"));
	g_free(err);

	/* bound to uio_hv_generic: the UIO transport is chosen (its device is absent here) */
	assert_int_equal(g_mkdir_with_parents(uio, 0755), 0);
	assert_int_equal(run_capture(args, &err), 1);
	assert_non_null(strstr(err, "Using the uio transport on /dev/uio0"));
	assert_non_null(strstr(err, "/dev/uio0"));
	g_free(err);
}

static void test_bad_config(void **state)
{
	struct fixture *f = *state;
	g_autofree char *rundir = g_strdup_printf("--runtime-dir=%s", f->run);
	g_autofree char *config = g_strdup_printf("--config=%s", f->conf);
	const char *args[] = {"--device=/nonexistent/hv_fcopy", rundir, config,
			      "--log-target=stderr", NULL};
	char *err = NULL;

	assert_true(g_file_set_contents(f->conf, "[fcopy]\nfile-mode=0999\n", -1, NULL));
	assert_int_equal(run_capture(args, &err), 2);
	assert_non_null(strstr(err, "[fcopy] file-mode = '0999' is not valid"));
	g_free(err);

	assert_true(
	    g_file_set_contents(f->conf, "[fcopy]\nallowed-dirs=/srv;relative\n", -1, NULL));
	assert_int_equal(run_capture(args, &err), 2);
	assert_non_null(strstr(err, "allowed-dirs: 'relative' is not valid"));
	g_free(err);

	assert_true(g_file_set_contents(f->conf, "[fcopy]\ntransport=netlink\n", -1, NULL));
	assert_int_equal(run_capture(args, &err), 2);
	assert_non_null(strstr(err, "transport"));
	g_free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_copy_and_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_driver_reset_mid_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_mid_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigterm_mid_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_kernel_interface, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
