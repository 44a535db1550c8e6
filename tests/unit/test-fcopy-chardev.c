/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The char device adapter: messages as drivers/hv/hv_fcopy.c (Linux <= 6.9)
 * hands them over, malformed ones, the 4-byte reply; and the probe that
 * picks the kernel interface, on sysfs fixtures built in a tmpdir.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "fcopy-adapter.h"
#include "hv-fcopy.h"
#include "hv-status.h"

static const fcopy_adapter *a = &fcopy_adapter_chardev;

static union {
	struct hv_fcopy_hdr hdr;
	struct hv_start_fcopy start;
	struct hv_do_fcopy data;
	uint8_t raw[8192];
} msg;

static void start_msg(const char *file, const char *path, uint32_t flags, uint64_t size)
{
	memset(&msg, 0, sizeof(msg));
	msg.hdr.operation = HV_FCOPY_START_FILE_COPY;
	/* as the kernel leaves them: UTF-8 bytes in the u16 arrays */
	memcpy((uint8_t *)&msg + offsetof(struct hv_start_fcopy, file_name), file, strlen(file));
	memcpy((uint8_t *)&msg + offsetof(struct hv_start_fcopy, path_name), path, strlen(path));
	msg.start.copy_flags = flags;
	msg.start.file_size = size;
}

static int decode(size_t len, fcopy_request *req, const char **why)
{
	size_t reply_len = 0;

	return a->decode(&msg, len, req, &reply_len, why);
}

static void test_service(void **state)
{
	const hv_service *s = a->service;
	int32_t reg;
	uint32_t version = 0;
	uint32_t answer = 1;

	assert_string_equal(s->device, "/dev/vmbus/hv_fcopy");
	assert_int_equal(s->register_len, 4);
	memcpy(&reg, s->register_msg, sizeof(reg));
	assert_int_equal(reg, HV_FCOPY_CURRENT_VERSION);
	assert_int_equal(s->register_reply_len, 4);
	assert_int_equal(s->parse_register_reply(&answer, 4, &version), 0);
	assert_int_equal(version, 1);
	assert_int_equal(s->parse_register_reply(&answer, 3, &version), -EBADMSG);
	assert_int_equal(s->cn_idx, 0);
	/* room for a whole WRITE, and for anything the driver's 2-page buffer holds */
	assert_true(a->max_msg >= sizeof(struct hv_do_fcopy));
	assert_int_equal(a->max_msg, 8192);
	assert_int_equal(s->max_msg, a->max_msg);
}

static void test_start(void **state)
{
	fcopy_request req;
	const char *why = NULL;

	start_msg("R\xc3\xa9sum\xc3\xa9.txt", "/home/u/\xe6\x96\x87\xe4\xbb\xb6",
		  HV_FCOPY_OVER_WRITE | HV_FCOPY_CREATE_PATH, 12345);
	assert_int_equal(decode(sizeof(struct hv_start_fcopy), &req, &why), FCOPY_DECODED_REQUEST);
	assert_int_equal(req.op, HV_FCOPY_START_FILE_COPY);
	assert_string_equal(req.file_name, "R\xc3\xa9sum\xc3\xa9.txt");
	assert_string_equal(req.path_name, "/home/u/\xe6\x96\x87\xe4\xbb\xb6");
	assert_int_equal(req.copy_flags, HV_FCOPY_OVER_WRITE | HV_FCOPY_CREATE_PATH);
	assert_int_equal(req.file_size, 12345);
}

static void test_start_longest_name(void **state)
{
	char name[HV_FCOPY_W_MAX_PATH];
	fcopy_request req;
	const char *why = NULL;

	/* the kernel converts into at most W_MAX_PATH - 1 bytes, zero-filled */
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	start_msg(name, "/tmp", 0, 0);
	assert_int_equal(decode(sizeof(struct hv_start_fcopy), &req, &why), FCOPY_DECODED_REQUEST);
	assert_int_equal(strlen(req.file_name), HV_FCOPY_W_MAX_PATH - 1);
}

static void test_start_malformed(void **state)
{
	fcopy_request req;
	const char *why = NULL;

	start_msg("a", "/tmp", 0, 0);
	assert_int_equal(decode(sizeof(struct hv_start_fcopy) - 1, &req, &why), -EBADMSG);
	assert_non_null(strstr(why, "START"));

	/* invalid UTF-8 (a lone continuation byte) in either name */
	start_msg("a\x80", "/tmp", 0, 0);
	assert_int_equal(decode(sizeof(struct hv_start_fcopy), &req, &why), -EILSEQ);
	assert_non_null(strstr(why, "file name"));
	start_msg("a", "/tmp/\xed\xa0\x80", 0, 0);
	assert_int_equal(decode(sizeof(struct hv_start_fcopy), &req, &why), -EILSEQ);
	assert_non_null(strstr(why, "path name"));
	assert_int_equal(fcopy_status_from_errno(-EILSEQ), HV_INVALIDARG);

	/* no terminator anywhere in the 520-byte field */
	start_msg("a", "/tmp", 0, 0);
	memset((uint8_t *)&msg + offsetof(struct hv_start_fcopy, file_name), 'x', 520);
	assert_int_equal(decode(sizeof(struct hv_start_fcopy), &req, &why), -EBADMSG);
	assert_non_null(strstr(why, "terminator"));
}

static void test_write(void **state)
{
	fcopy_request req;
	const char *why = NULL;

	memset(&msg, 0, sizeof(msg));
	msg.data.hdr.operation = HV_FCOPY_WRITE_TO_FILE;
	msg.data.offset = 6144ULL * 1000;
	msg.data.size = 6144;
	msg.data.data[0] = 0xab;
	msg.data.data[6143] = 0xcd;
	assert_int_equal(decode(sizeof(struct hv_do_fcopy), &req, &why), FCOPY_DECODED_REQUEST);
	assert_int_equal(req.op, HV_FCOPY_WRITE_TO_FILE);
	assert_int_equal(req.offset, 6144ULL * 1000);
	assert_int_equal(req.size, 6144);
	assert_ptr_equal(req.data, msg.data.data);
	assert_int_equal(req.data[0], 0xab);
	assert_int_equal(req.data[6143], 0xcd);

	/* a short message that still holds all its data is fine */
	msg.data.size = 10;
	assert_int_equal(decode(offsetof(struct hv_do_fcopy, data) + 10, &req, &why),
			 FCOPY_DECODED_REQUEST);
	assert_int_equal(decode(offsetof(struct hv_do_fcopy, data) + 9, &req, &why), -EBADMSG);
	assert_int_equal(decode(offsetof(struct hv_do_fcopy, data) - 1, &req, &why), -EBADMSG);

	msg.data.size = 6145;
	assert_int_equal(decode(sizeof(msg.raw), &req, &why), -EMSGSIZE);
	assert_non_null(strstr(why, "6144"));
	msg.data.size = UINT32_MAX;
	assert_int_equal(decode(sizeof(struct hv_do_fcopy), &req, &why), -EMSGSIZE);
}

static void test_other_ops(void **state)
{
	fcopy_request req;
	const char *why = NULL;

	memset(&msg, 0, sizeof(msg));
	msg.hdr.operation = HV_FCOPY_COMPLETE_FCOPY;
	assert_int_equal(decode(sizeof(struct hv_fcopy_hdr), &req, &why), FCOPY_DECODED_REQUEST);
	assert_int_equal(req.op, HV_FCOPY_COMPLETE_FCOPY);
	msg.hdr.operation = HV_FCOPY_CANCEL_FCOPY;
	/* the kernel passes the whole host packet: longer is fine */
	assert_int_equal(decode(sizeof(struct hv_fcopy_hdr) + 64, &req, &why),
			 FCOPY_DECODED_REQUEST);
	assert_int_equal(req.op, HV_FCOPY_CANCEL_FCOPY);
	/* unknown ops reach the session, which refuses them with an answer */
	msg.hdr.operation = 42;
	assert_int_equal(decode(sizeof(struct hv_fcopy_hdr), &req, &why), FCOPY_DECODED_REQUEST);
	assert_int_equal(req.op, 42);
	/* shorter than the header */
	assert_int_equal(decode(sizeof(struct hv_fcopy_hdr) - 1, &req, &why), -EBADMSG);
	assert_int_equal(decode(0, &req, &why), -EBADMSG);
	/* no op could be read: not mistaken for START (0) */
	assert_int_equal(req.op, UINT32_MAX);
}

static void test_reply(void **state)
{
	uint8_t buf[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint32_t status;

	assert_int_equal(a->encode_reply(buf, 6196, sizeof(buf), HV_ERROR_ALREADY_EXISTS), 4);
	memcpy(&status, buf, 4);
	assert_int_equal(status, HV_ERROR_ALREADY_EXISTS);
	assert_int_equal(a->encode_reply(buf, 36, sizeof(buf), HV_S_OK), 4);
	memcpy(&status, buf, 4);
	assert_int_equal(status, 0);
	assert_int_equal(a->encode_reply(buf, 36, 3, HV_S_OK), -ENOBUFS);
}

static void test_probe(void **state)
{
	char tmpl[] = "/tmp/test-fcopy-probe-XXXXXX";
	g_autofree char *root = NULL;
	g_autofree char *chardev = NULL;
	g_autofree char *devdir = NULL;
	g_autofree char *uio = NULL;
	g_autofree char *cmd = NULL;
	char *uio_dev = NULL;

	assert_non_null(mkdtemp(tmpl));
	root = g_strdup(tmpl);
	chardev = g_build_filename(root, "hv_fcopy", NULL);
	devdir = g_build_filename(root, "bus/vmbus/devices", FCOPY_VMBUS_DEVICE_ID, NULL);
	uio = g_build_filename(devdir, "uio", "uio3", NULL);

	assert_int_equal(fcopy_probe_kernel(chardev, root, NULL), FCOPY_IFACE_NONE);
	assert_int_equal(g_mkdir_with_parents(devdir, 0755), 0);
	assert_int_equal(fcopy_probe_kernel(chardev, root, NULL), FCOPY_IFACE_UNBOUND);
	assert_int_equal(g_mkdir_with_parents(uio, 0755), 0);
	assert_int_equal(fcopy_probe_kernel(chardev, root, &uio_dev), FCOPY_IFACE_UIO);
	assert_string_equal(uio_dev, "/dev/uio3");
	g_free(uio_dev);
	/* the char device wins when both exist */
	assert_true(g_file_set_contents(chardev, "", 0, NULL));
	assert_int_equal(fcopy_probe_kernel(chardev, root, NULL), FCOPY_IFACE_CHARDEV);

	cmd = g_strdup_printf("rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_service),
	    cmocka_unit_test(test_start),
	    cmocka_unit_test(test_start_longest_name),
	    cmocka_unit_test(test_start_malformed),
	    cmocka_unit_test(test_write),
	    cmocka_unit_test(test_other_ops),
	    cmocka_unit_test(test_reply),
	    cmocka_unit_test(test_probe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
