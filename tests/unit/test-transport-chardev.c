/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The char device transport against a SOCK_SEQPACKET peer standing in for
 * the driver (whole messages, like hv_utils_transport); open() of the fake
 * device path is redirected to our end of the socket pair.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv-transport.h"
#include "hv-vss.h"

#define FAKE_DEVICE "/fake/vmbus/hv_vss"

static int our_end = -1;
static int driver_end = -1;

int __real_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	if (strcmp(path, FAKE_DEVICE) == 0) {
		if (our_end < 0) {
			errno = EBUSY;
			return -1;
		}
		/* The transport must ask for close-on-exec. */
		assert_true(flags & O_CLOEXEC);
		return dup(our_end);
	}

	va_start(ap, flags);
	mode = va_arg(ap, mode_t);
	va_end(ap);
	return __real_open(path, flags, mode);
}

static int parse_reply(const void *buf, size_t len, uint32_t *ret_version)
{
	uint32_t v;

	if (len != sizeof(v))
		return -EBADMSG;
	memcpy(&v, buf, sizeof(v));
	if (v != HV_VSS_OP_REGISTER1)
		return -EPROTO;
	*ret_version = v;
	return 0;
}

static const struct hv_vss_msg reg = { .vss_hdr.operation = HV_VSS_OP_REGISTER1 };
static const hv_service service = {
	.name = "test",
	.device = FAKE_DEVICE,
	.max_msg = 64,
	.register_msg = &reg,
	.register_len = sizeof(reg),
	.register_reply_len = 4,
	.parse_register_reply = parse_reply,
};

static int setup(void **state)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	our_end = sv[0];
	driver_end = sv[1];
	return 0;
}

static int teardown(void **state)
{
	if (our_end >= 0)
		close(our_end);
	if (driver_end >= 0)
		close(driver_end);
	our_end = driver_end = -1;
	return 0;
}

static hv_transport *new_transport(void)
{
	hv_transport *t = NULL;
	const char *why = NULL;

	assert_int_equal(hv_transport_new(&service, HV_TRANSPORT_CHARDEV, NULL, &t, &why), 0);
	assert_non_null(why);
	assert_string_equal(t->device, FAKE_DEVICE);
	t->handshake_timeout_ms = 200;
	return t;
}

static void test_handshake(void **state)
{
	hv_transport *t = new_transport();
	uint32_t version = HV_VSS_OP_REGISTER1;
	uint8_t got[32];

	assert_int_equal(write(driver_end, &version, sizeof(version)), 4);
	assert_int_equal(hv_transport_open(t), 0);
	assert_true(hv_transport_is_open(t));
	assert_int_equal(t->version, 129);
	/* The driver saw exactly one 12-byte REGISTER1. */
	assert_int_equal(read(driver_end, got, sizeof(got)), 12);
	assert_int_equal(got[0], HV_VSS_OP_REGISTER1);
	assert_int_equal(hv_transport_open(t), -EALREADY);
	hv_transport_free(t);
}

static void test_handshake_wrong_version(void **state)
{
	hv_transport *t = new_transport();
	uint32_t version = 7;

	assert_int_equal(write(driver_end, &version, sizeof(version)), 4);
	assert_int_equal(hv_transport_open(t), -EPROTO);
	assert_false(hv_transport_is_open(t));
	hv_transport_free(t);
}

static void test_handshake_wrong_size(void **state)
{
	hv_transport *t = new_transport();
	uint8_t twelve[12] = { 129 };

	assert_int_equal(write(driver_end, twelve, sizeof(twelve)), 12);
	assert_int_equal(hv_transport_open(t), -EBADMSG);
	hv_transport_free(t);
}

static void test_handshake_timeout(void **state)
{
	hv_transport *t = new_transport();

	assert_int_equal(hv_transport_open(t), -ETIMEDOUT);
	assert_false(hv_transport_is_open(t));
	hv_transport_free(t);
}

static void test_handshake_driver_gone(void **state)
{
	hv_transport *t = new_transport();

	close(driver_end);
	driver_end = -1;
	/* The registration write itself fails (EPIPE) or the answer never comes. */
	assert_true(hv_transport_open(t) < 0);
	assert_false(hv_transport_is_open(t));
	hv_transport_free(t);
}

static void test_busy(void **state)
{
	hv_transport *t = new_transport();

	close(our_end);
	our_end = -1;
	assert_int_equal(hv_transport_open(t), -EBUSY);
	hv_transport_free(t);
}

static void test_recv_send(void **state)
{
	hv_transport *t = new_transport();
	uint32_t version = HV_VSS_OP_REGISTER1;
	struct hv_vss_msg req = { .vss_hdr.operation = HV_VSS_OP_FREEZE }, reply = { 0 }, got;
	uint8_t buf[64];

	assert_int_equal(write(driver_end, &version, sizeof(version)), 4);
	assert_int_equal(hv_transport_open(t), 0);
	assert_int_equal(read(driver_end, buf, sizeof(buf)), 12);

	/* Two queued messages come back one at a time, whole. */
	assert_int_equal(write(driver_end, &req, sizeof(req)), 12);
	assert_int_equal(write(driver_end, buf, 5), 5);
	assert_int_equal(hv_transport_recv(t, buf, sizeof(buf)), 12);
	assert_int_equal(buf[0], HV_VSS_OP_FREEZE);
	assert_int_equal(hv_transport_recv(t, buf, sizeof(buf)), 5);

	assert_int_equal(hv_transport_send(t, &reply, sizeof(reply)), 0);
	assert_int_equal(read(driver_end, &got, sizeof(got)), 12);

	/* The driver going away reads as a reset. */
	close(driver_end);
	driver_end = -1;
	assert_int_equal(hv_transport_recv(t, buf, sizeof(buf)), -EPIPE);
	assert_true(hv_transport_send(t, &reply, sizeof(reply)) < 0);

	hv_transport_close(t);
	assert_false(hv_transport_is_open(t));
	assert_int_equal(hv_transport_recv(t, buf, sizeof(buf)), -ENOTCONN);
	assert_int_equal(hv_transport_send(t, &reply, sizeof(reply)), -ENOTCONN);
	hv_transport_free(t);
}

static void test_selection(void **state)
{
	hv_transport *t = NULL;
	const char *why = NULL;

	assert_int_equal(hv_transport_new(&service, HV_TRANSPORT_AUTO, "/nonexistent/hv_vss", &t,
					  &why),
			 -ENODEV);
	assert_null(t);
	assert_non_null(why);
	assert_int_equal(hv_transport_new(&service, HV_TRANSPORT_AUTO, "/dev/null", &t, &why), 0);
	assert_string_equal(t->ops->name, "chardev");
	assert_string_equal(t->device, "/dev/null");
	hv_transport_free(t);
	assert_int_equal(hv_transport_new(&service, _HV_TRANSPORT_KIND_INVALID, NULL, &t, NULL),
			 -EINVAL);
	assert_int_equal(hv_transport_new(NULL, HV_TRANSPORT_AUTO, NULL, &t, NULL), -EINVAL);

	assert_int_equal(hv_transport_kind_from_string("chardev"), HV_TRANSPORT_CHARDEV);
	assert_int_equal(hv_transport_kind_from_string("auto"), HV_TRANSPORT_AUTO);
	assert_int_equal(hv_transport_kind_from_string("pigeon"), _HV_TRANSPORT_KIND_INVALID);
	assert_int_equal(hv_transport_kind_from_string(NULL), _HV_TRANSPORT_KIND_INVALID);
	assert_string_equal(hv_transport_kind_to_string(HV_TRANSPORT_CHARDEV), "chardev");
	assert_null(hv_transport_kind_to_string(_HV_TRANSPORT_KIND_MAX));
	hv_transport_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_handshake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_wrong_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_wrong_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_driver_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recv_send, setup, teardown),
		cmocka_unit_test(test_selection),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
