/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FCOPY over the VMBus ring (Linux >= 6.10): the UIO adapter on IC messages
 * built with the host-side helpers of kernel/ic.c (raw UTF-16LE names,
 * negotiation, malformed input), then the whole daemon in a forked child
 * on kernel/transport-uio.c against the emulated host end of the channel
 * (tests/emu/emu-vmbus.c: ring file + interrupt socket in a tmpdir).
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "emu-vmbus.h"
#include "fcopy-adapter.h"
#include "fcopy-daemon.h"
#include "fcopy-utf16.h"
#include "hv-fcopy.h"
#include "hv-ic-msg.h"
#include "hv-status.h"

static const fcopy_adapter *a = &fcopy_adapter_uio;
static uint8_t pkt[16384];

static size_t start_body(struct hv_start_fcopy *m, const char *dir, const char *name,
			 uint32_t flags, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	m->hdr.operation = HV_FCOPY_START_FILE_COPY;
	assert_int_equal(fcopy_utf8_to_utf16le(name, (uint8_t *)m + offsetof(struct hv_start_fcopy,
									      file_name),
					       HV_FCOPY_W_MAX_PATH, NULL),
			 0);
	assert_int_equal(fcopy_utf8_to_utf16le(dir, (uint8_t *)m + offsetof(struct hv_start_fcopy,
									     path_name),
					       HV_FCOPY_W_MAX_PATH, NULL),
			 0);
	m->copy_flags = flags;
	m->file_size = size;
	return sizeof(*m);
}

static size_t ic(uint16_t type, const void *body, size_t len)
{
	int n = hv_ic_build_request(pkt, sizeof(pkt), type, HV_UTIL_FW_VERSION,
				    HV_FCOPY_IC_SRV_VERSION, 1, body, len);

	assert_true(n > 0);
	return (size_t)n;
}

static int decode(size_t len, fcopy_request *req, size_t *reply_len, const char **why)
{
	return a->decode(pkt, len, req, reply_len, why);
}

static void test_start_utf16(void **state)
{
	struct hv_start_fcopy m;
	fcopy_request req;
	size_t reply_len = 0;
	const char *why = NULL;
	size_t n = ic(HV_ICMSGTYPE_FCOPY, &m,
		      start_body(&m, "/srv/\xe6\x96\x87\xe4\xbb\xb6", "R\xc3\xa9sum\xc3\xa9 \xf0\x9f\x98\x80",
				 HV_FCOPY_OVER_WRITE, 42));

	assert_int_equal(decode(n, &req, &reply_len, &why), FCOPY_DECODED_REQUEST);
	assert_int_equal(req.op, HV_FCOPY_START_FILE_COPY);
	assert_string_equal(req.file_name, "R\xc3\xa9sum\xc3\xa9 \xf0\x9f\x98\x80");
	assert_string_equal(req.path_name, "/srv/\xe6\x96\x87\xe4\xbb\xb6");
	assert_int_equal(req.copy_flags, HV_FCOPY_OVER_WRITE);
	assert_int_equal(req.file_size, 42);
}

static void test_start_bad_names(void **state)
{
	struct hv_start_fcopy m;
	fcopy_request req;
	size_t reply_len = 0, n;
	const char *why = NULL;
	uint8_t *name;

	/* an unpaired high surrogate in the file name */
	start_body(&m, "/srv", "ab", 0, 0);
	name = (uint8_t *)&m + offsetof(struct hv_start_fcopy, file_name);
	name[2] = 0x3d;
	name[3] = 0xd8;
	n = ic(HV_ICMSGTYPE_FCOPY, &m, sizeof(m));
	assert_int_equal(decode(n, &req, &reply_len, &why), -EILSEQ);
	assert_non_null(strstr(why, "unpaired surrogate"));
	assert_int_equal(req.op, HV_FCOPY_START_FILE_COPY);

	/* no terminator in the path */
	start_body(&m, "/srv", "ab", 0, 0);
	memset((uint8_t *)&m + offsetof(struct hv_start_fcopy, path_name), 'x',
	       2 * HV_FCOPY_W_MAX_PATH);
	n = ic(HV_ICMSGTYPE_FCOPY, &m, sizeof(m));
	assert_int_equal(decode(n, &req, &reply_len, &why), -EBADMSG);
	assert_non_null(strstr(why, "path name without terminator"));

	/* START cut short */
	start_body(&m, "/srv", "ab", 0, 0);
	n = ic(HV_ICMSGTYPE_FCOPY, &m, sizeof(m) - 1);
	assert_int_equal(decode(n, &req, &reply_len, &why), -EBADMSG);
}

static void test_write_and_others(void **state)
{
	static struct hv_do_fcopy d;
	struct hv_fcopy_hdr h = {.operation = HV_FCOPY_COMPLETE_FCOPY};
	fcopy_request req;
	size_t reply_len = 0, n;
	const char *why = NULL;

	memset(&d, 0, sizeof(d));
	d.hdr.operation = HV_FCOPY_WRITE_TO_FILE;
	d.offset = 12288;
	d.size = 100;
	d.data[99] = 0x5a;
	n = ic(HV_ICMSGTYPE_FCOPY, &d, sizeof(d));
	assert_int_equal(decode(n, &req, &reply_len, &why), FCOPY_DECODED_REQUEST);
	assert_int_equal(req.offset, 12288);
	assert_int_equal(req.size, 100);
	assert_int_equal(req.data[99], 0x5a);
	assert_ptr_equal(req.data, pkt + HV_ICMSG_HDR_LEN + offsetof(struct hv_do_fcopy, data));

	d.size = 6145;
	n = ic(HV_ICMSGTYPE_FCOPY, &d, sizeof(d));
	assert_int_equal(decode(n, &req, &reply_len, &why), -EMSGSIZE);
	d.size = 100;
	n = ic(HV_ICMSGTYPE_FCOPY, &d, offsetof(struct hv_do_fcopy, data) + 99);
	assert_int_equal(decode(n, &req, &reply_len, &why), -EBADMSG);

	n = ic(HV_ICMSGTYPE_FCOPY, &h, sizeof(h));
	assert_int_equal(decode(n, &req, &reply_len, &why), FCOPY_DECODED_REQUEST);
	assert_int_equal(req.op, HV_FCOPY_COMPLETE_FCOPY);
	n = ic(HV_ICMSGTYPE_FCOPY, &h, sizeof(h) - 1);
	assert_int_equal(decode(n, &req, &reply_len, &why), -EBADMSG);

	/* another service's message, and a packet shorter than the IC headers */
	n = ic(HV_ICMSGTYPE_KVPEXCHANGE, &h, sizeof(h));
	assert_int_equal(decode(n, &req, &reply_len, &why), -EOPNOTSUPP);
	assert_int_equal(decode(HV_ICMSG_HDR_LEN - 1, &req, &reply_len, &why), -EBADMSG);
	assert_int_equal(req.op, UINT32_MAX);
}

static void test_reply(void **state)
{
	struct hv_fcopy_hdr h = {.operation = HV_FCOPY_CANCEL_FCOPY};
	size_t n = ic(HV_ICMSGTYPE_FCOPY, &h, sizeof(h));
	hv_ic_msg msg;

	assert_int_equal(a->encode_reply(pkt, n, sizeof(pkt), HV_ERROR_DISK_FULL), (ssize_t)n);
	assert_int_equal(hv_ic_msg_parse(pkt, n, &msg), 0);
	assert_int_equal(msg.hdr.status, HV_ERROR_DISK_FULL);
	assert_int_equal(msg.hdr.icflags, HV_ICMSGHDRFLAG_TRANSACTION | HV_ICMSGHDRFLAG_RESPONSE);
	assert_true(a->encode_reply(pkt, HV_ICMSG_HDR_LEN - 1, sizeof(pkt), 0) < 0);
}

static void test_negotiate(void **state)
{
	const uint32_t fw[] = {HV_IC_VERSION(3, 0), HV_IC_VERSION(1, 0)};
	const uint32_t srv[] = {HV_IC_VERSION(1, 1)};
	const uint32_t srv_unknown[] = {HV_IC_VERSION(9, 9)};
	uint32_t got_fw = 0, got_srv = 0, status = 1;
	fcopy_request req;
	size_t reply_len = 0;
	const char *why = NULL;
	int n;

	n = hv_ic_build_offer(pkt, sizeof(pkt), fw, 2, srv, 1, 3);
	assert_true(n > 0);
	assert_int_equal(decode((size_t)n, &req, &reply_len, &why), FCOPY_DECODED_REPLY);
	assert_int_equal(reply_len, (size_t)n);
	assert_non_null(strstr(why, "framework 3.0, service 1.1"));
	assert_int_equal(hv_ic_parse_negotiate_reply(pkt, reply_len, &got_fw, &got_srv, &status), 0);
	assert_int_equal(got_fw, HV_IC_VERSION(3, 0));
	assert_int_equal(got_srv, HV_IC_VERSION(1, 1));
	assert_int_equal(status, HV_S_OK);

	n = hv_ic_build_offer(pkt, sizeof(pkt), fw, 2, srv_unknown, 1, 4);
	assert_int_equal(decode((size_t)n, &req, &reply_len, &why), FCOPY_DECODED_REPLY);
	assert_non_null(strstr(why, "refused"));
	assert_int_equal(hv_ic_parse_negotiate_reply(pkt, reply_len, &got_fw, &got_srv, &status),
			 -EPROTO);
}

/* The whole daemon over the emulated ring. */
struct fixture {
	char *root, *ring, *target, *run, *conf;
	emu_vmbus *v;
	pid_t pid;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char tmpl[] = "/tmp/test-fcopy-uio-XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	f->root = realpath(tmpl, NULL);
	f->ring = g_build_filename(f->root, "ring", NULL);
	f->target = g_build_filename(f->root, "target", NULL);
	f->run = g_build_filename(f->root, "run", NULL);
	f->conf = g_build_filename(f->root, "test.conf", NULL);
	assert_int_equal(mkdir(f->ring, 0755), 0);
	assert_int_equal(mkdir(f->target, 0755), 0);
	assert_int_equal(mkdir(f->run, 0755), 0);
	assert_true(g_file_set_contents(f->conf, "[fcopy]\ntransport=uio\n", -1, NULL));
	assert_int_equal(emu_vmbus_new(f->ring, 0x4000, &f->v), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->root);
	int status;

	if (f->pid > 0) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, &status, 0);
	}
	emu_vmbus_free(f->v);
	assert_int_equal(system(cmd), 0);
	free(f->root);
	g_free(f->ring);
	g_free(f->target);
	g_free(f->run);
	g_free(f->conf);
	free(f);
	return 0;
}

static uint32_t request(struct fixture *f, const void *body, size_t len)
{
	uint32_t status = 0xdeadbeef;
	ssize_t n = emu_vmbus_request(f->v, HV_ICMSGTYPE_FCOPY, HV_FCOPY_IC_SRV_VERSION, body, len,
				      10000, &status, NULL, 0, NULL);

	assert_true(n >= 0);
	return status;
}

static void test_daemon_over_ring(void **state)
{
	struct fixture *f = *state;
	const char *name = "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xf0\x9f\x8e\x89.bin";
	const uint32_t fw[] = {HV_IC_VERSION(3, 0)}, srv[] = {HV_IC_VERSION(1, 1)};
	g_autofree char *path = g_build_filename(f->target, name, NULL);
	g_autofree char *got = NULL;
	static struct hv_do_fcopy d;
	struct hv_start_fcopy m;
	struct hv_fcopy_hdr h = {.operation = HV_FCOPY_COMPLETE_FCOPY};
	uint32_t got_fw = 0, got_srv = 0;
	gsize got_len = 0;
	uint8_t *name16;
	int status = 0;

	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0) {
		char *argv[] = {g_strdup("hv_fcopy_daemon"),
				g_strdup_printf("--device=%s", emu_vmbus_device(f->v)),
				g_strdup_printf("--config=%s", f->conf),
				g_strdup_printf("--runtime-dir=%s", f->run),
				g_strdup("--log-target=stderr"),
				g_strdup("--debug"),
				NULL};

		alarm(60);
		_exit(hv_daemon_main(&fcopy_daemon_ops, 6, argv));
	}

	assert_int_equal(emu_vmbus_accept(f->v, 10000), 0);
	assert_int_equal(emu_vmbus_negotiate(f->v, fw, 1, srv, 1, 10000, &got_fw, &got_srv), 0);
	assert_int_equal(got_fw, HV_IC_VERSION(3, 0));
	assert_int_equal(got_srv, HV_IC_VERSION(1, 1));

	assert_int_equal(request(f, &m, start_body(&m, f->target, name, 0, 20000)), HV_S_OK);
	memset(&d, 0, sizeof(d));
	d.hdr.operation = HV_FCOPY_WRITE_TO_FILE;
	for (uint32_t off = 0; off < 20000; off += 6144) {
		d.offset = off;
		d.size = MIN(6144u, 20000 - off);
		for (uint32_t i = 0; i < d.size; i++)
			d.data[i] = (uint8_t)((off + i) * 13);
		assert_int_equal(request(f, &d, sizeof(d)), HV_S_OK);
	}
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(request(f, &h, sizeof(h)), HV_S_OK);
	assert_true(g_file_get_contents(path, &got, &got_len, NULL));
	assert_int_equal(got_len, 20000);
	for (uint32_t i = 0; i < 20000; i++)
		assert_int_equal((uint8_t)got[i], (uint8_t)(i * 13));

	/* raw UTF-16 straight from the host: an unpaired surrogate is refused, not mangled */
	start_body(&m, f->target, "xy", 0, 1);
	name16 = (uint8_t *)&m + offsetof(struct hv_start_fcopy, file_name);
	name16[0] = 0x00;
	name16[1] = 0xdc;
	assert_int_equal(request(f, &m, sizeof(m)), HV_INVALIDARG);
	/* exists without OVER_WRITE; cancel leaves nothing */
	assert_int_equal(request(f, &m, start_body(&m, f->target, name, 0, 1)),
			 HV_ERROR_ALREADY_EXISTS);
	assert_int_equal(request(f, &m, start_body(&m, f->target, "partial", 0, 1)), HV_S_OK);
	d.offset = 0;
	d.size = 1;
	assert_int_equal(request(f, &d, sizeof(d)), HV_S_OK);
	h.operation = HV_FCOPY_CANCEL_FCOPY;
	assert_int_equal(request(f, &h, sizeof(h)), HV_S_OK);
	{
		g_autoptr(GDir) dir = g_dir_open(f->target, 0, NULL);
		const char *e;
		int count = 0;

		while ((e = g_dir_read_name(dir)))
			count++;
		assert_int_equal(count, 1);
	}

	kill(f->pid, SIGTERM);
	assert_int_equal(waitpid(f->pid, &status, 0), f->pid);
	f->pid = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_start_utf16),
		cmocka_unit_test(test_start_bad_names),
		cmocka_unit_test(test_write_and_others),
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_negotiate),
		cmocka_unit_test_setup_teardown(test_daemon_over_ring, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
