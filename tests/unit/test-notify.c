/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv-notify.h"

static int listener(const char *name, bool abstract)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, name);
	len = offsetof(struct sockaddr_un, sun_path) + strlen(name) + (abstract ? 0 : 1);
	if (abstract)
		sa.sun_path[0] = '\0';
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	return fd;
}

static void expect_datagram(int fd, const char *want)
{
	char buf[600] = { 0 };

	assert_int_equal(recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT), (ssize_t)strlen(want));
	assert_string_equal(buf, want);
}

static void test_path_socket(void **state)
{
	char dir[] = "/tmp/hv-notify-XXXXXX";
	char path[128];
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/notify", dir);
	fd = listener(path, false);
	setenv("NOTIFY_SOCKET", path, 1);

	assert_int_equal(hv_notify("READY=1"), 0);
	expect_datagram(fd, "READY=1");
	assert_int_equal(hv_notify_status("Frozen: %d file systems", 3), 0);
	expect_datagram(fd, "STATUS=Frozen: 3 file systems");

	close(fd);
	unlink(path);
	rmdir(dir);
	unsetenv("NOTIFY_SOCKET");
}

static void test_abstract_socket(void **state)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "@hv-notify-test-%d", (int)getpid());
	fd = listener(name, true);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(hv_notify("STOPPING=1"), 0);
	expect_datagram(fd, "STOPPING=1");
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

static void test_no_manager(void **state)
{
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(hv_notify("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(hv_notify("READY=1"), -EINVAL);
	setenv("NOTIFY_SOCKET", "/nonexistent/dir/sock", 1);
	assert_true(hv_notify("READY=1") < 0);
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(hv_notify(NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_socket),
		cmocka_unit_test(test_abstract_socket),
		cmocka_unit_test(test_no_manager),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
