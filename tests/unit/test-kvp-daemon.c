/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The whole daemon (hv_daemon_main with kvp_daemon_ops) against a fake
 * driver: the char device is one end of a SOCK_SEQPACKET socket pair (one
 * read/write = one whole message, as hv_utils_transport does), the other
 * end is played by a thread: registration, requests, replies, SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "hv-status.h"
#include "kvp-daemon.h"

#define FAKE_DEVICE "/fake/vmbus/hv_kvp"

static int daemon_end = -1;

int __real_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	if (strcmp(path, FAKE_DEVICE) == 0)
		return daemon_end >= 0 ? dup(daemon_end) : (errno = ENOENT, -1);

	va_start(ap, flags);
	mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
	va_end(ap);
	return __real_open(path, flags, mode);
}

typedef struct driver {
	int fd;
	char errors[4096];
	struct hv_kvp_msg registration;
	ssize_t registration_len;
	struct hv_kvp_msg replies[8];
	ssize_t reply_len[8];
	int n_replies;
} driver;

static void driver_error(driver *d, const char *what)
{
	size_t n = strlen(d->errors);

	snprintf(d->errors + n, sizeof(d->errors) - n, "%s; ", what);
}

static ssize_t recv_msg(driver *d, void *buf, size_t size)
{
	struct pollfd p = { .fd = d->fd, .events = POLLIN };

	if (poll(&p, 1, 5000) != 1) {
		driver_error(d, "no message from the daemon within 5 s");
		return -1;
	}
	return recv(d->fd, buf, size, 0);
}

static void request(driver *d, unsigned int op, unsigned int pool, const char *key,
		    const char *value, uint32_t index)
{
	struct hv_kvp_msg m;

	memset(&m, 0, sizeof(m));
	m.kvp_hdr.operation = (uint8_t)op;
	m.kvp_hdr.pool = (uint8_t)pool;
	if (op == HV_KVP_OP_ENUMERATE)
		m.body.kvp_enum_data.index = index;
	if (key) {
		memcpy(m.body.kvp_set.data.key, key, strlen(key));
		m.body.kvp_set.data.key_size = (uint32_t)strlen(key) + 1;
	}
	if (value) {
		memcpy(m.body.kvp_set.data.value, value, strlen(value));
		m.body.kvp_set.data.value_size = (uint32_t)strlen(value) + 1;
	}

	if (send(d->fd, &m, sizeof(m), 0) != (ssize_t)sizeof(m)) {
		driver_error(d, "send failed");
		return;
	}

	/* One byte more than a message: a longer reply would show. */
	{
		uint8_t buf[sizeof(struct hv_kvp_msg) + 1];
		ssize_t n = recv_msg(d, buf, sizeof(buf));

		d->reply_len[d->n_replies] = n;
		if (n > 0)
			memcpy(&d->replies[d->n_replies], buf, MIN((size_t)n, sizeof(m)));
		d->n_replies++;
	}
}

static void *driver_thread(void *data)
{
	driver *d = data;
	struct hv_kvp_msg answer;
	uint8_t buf[sizeof(struct hv_kvp_msg) + 1];

	d->registration_len = recv_msg(d, buf, sizeof(buf));
	if (d->registration_len > 0)
		memcpy(&d->registration, buf,
		       MIN((size_t)d->registration_len, sizeof(d->registration)));

	/* The driver's answer: a whole message, op 100, its version string. */
	memset(&answer, 0, sizeof(answer));
	answer.kvp_hdr.operation = HV_KVP_OP_REGISTER1;
	strcpy((char *)answer.body.kvp_register.version, "3.1");
	if (send(d->fd, &answer, sizeof(answer), 0) != (ssize_t)sizeof(answer))
		driver_error(d, "registration answer not sent");

	request(d, HV_KVP_OP_SET, 1, "key", "value", 0);
	request(d, HV_KVP_OP_GET, 1, "key", NULL, 0);
	request(d, HV_KVP_OP_ENUMERATE, 1, NULL, NULL, 0);
	request(d, HV_KVP_OP_ENUMERATE, 2, NULL, NULL, 0);
	request(d, HV_KVP_OP_ENUMERATE, 2, NULL, NULL, 1);
	request(d, HV_KVP_OP_GET_IP_INFO, 0, NULL, NULL, 0);
	request(d, HV_KVP_OP_GET, 9, "key", NULL, 0);

	kill(getpid(), SIGTERM);
	return NULL;
}

/* A provider with the auto pool only, answering with the driver's version. */
static int auto_record(void *userdata, uint32_t index, char *key, size_t key_size, char *value,
		       size_t value_size)
{
	if (index > 0)
		return -ENOENT;
	g_strlcpy(key, "IntegrationServicesVersion", key_size);
	g_strlcpy(value, kvp_daemon_get_driver_version(), value_size);
	return 0;
}

static const kvp_provider auto_only = { .auto_record = auto_record };

static uint32_t get_ip_info(void *userdata, const struct hv_kvp_ipaddr_value *req,
			    struct hv_kvp_ipaddr_value *reply)
{
	g_strlcpy((char *)reply->ip_addr, "192.0.2.1", sizeof(reply->ip_addr));
	return HV_S_OK;
}

static int n_init, n_fini, init_result;
static const hv_config *seen_config;

static int provider_init(const hv_config *config, kvp_provider *ret)
{
	n_init++;
	seen_config = config;
	if (init_result < 0)
		return init_result;
	*ret = (kvp_provider){ .auto_record = auto_record, .get_ip_info = get_ip_info };
	return 0;
}

static void provider_fini(kvp_provider *p)
{
	assert_ptr_equal(p->get_ip_info, get_ip_info);
	n_fini++;
}

static uint32_t status_of(const struct hv_kvp_msg *m)
{
	uint32_t s;

	memcpy(&s, m, sizeof(s));
	return s;
}

static void run_daemon(bool with_init)
{
	g_autofree char *dir = g_dir_make_tmp("hv-kvp-daemon-XXXXXX", NULL);
	g_autofree char *conf = g_build_filename(dir, "empty.conf", NULL);
	g_autofree char *pools = g_build_filename(dir, "pools", NULL);
	g_autofree char *run = g_build_filename(dir, "run", NULL);
	g_autofree char *cmd = NULL;
	g_auto(GStrv) argv = NULL;
	driver d = { 0 };
	pthread_t thread;
	int sv[2], argc, rc;

	assert_true(g_file_set_contents(conf, "", 0, NULL));
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	daemon_end = sv[0];
	d.fd = sv[1];

	argv = g_strsplit("hv_kvp_daemon -n --transport chardev --device " FAKE_DEVICE
			  " --log-target stderr",
			  " ", -1);
	{
		const char *more[] = { "--config", conf, "--pool-dir", pools, "--runtime-dir", run };
		guint n = g_strv_length(argv);

		argv = g_renew(char *, argv, n + G_N_ELEMENTS(more) + 1);
		for (size_t i = 0; i < G_N_ELEMENTS(more); i++)
			argv[n + i] = g_strdup(more[i]);
		argv[n + G_N_ELEMENTS(more)] = NULL;
	}
	argc = (int)g_strv_length(argv);

	kvp_daemon_set_provider(&auto_only);
	if (with_init)
		kvp_daemon_set_provider_init(provider_init, provider_fini);
	assert_int_equal(pthread_create(&thread, NULL, driver_thread, &d), 0);
	{
		/* hv_daemon_main may reorder argv; give it a copy of the pointers. */
		g_autofree char **copy = g_memdup2(argv, sizeof(char *) * (size_t)(argc + 1));

		rc = hv_daemon_main(&kvp_daemon_ops, argc, copy);
	}
	pthread_join(thread, NULL);
	kvp_daemon_set_provider(NULL);
	kvp_daemon_set_provider_init(NULL, NULL);

	assert_string_equal(d.errors, "");
	assert_int_equal(rc, HV_EXIT_OK);

	/* Registration: a whole message with op 100. */
	assert_int_equal(d.registration_len, sizeof(struct hv_kvp_msg));
	assert_int_equal(d.registration.kvp_hdr.operation, HV_KVP_OP_REGISTER1);
	assert_string_equal(kvp_daemon_get_driver_version(), "3.1");

	assert_int_equal(d.n_replies, 7);
	for (int i = 0; i < d.n_replies; i++)
		assert_int_equal(d.reply_len[i], sizeof(struct hv_kvp_msg));

	assert_int_equal(status_of(&d.replies[0]), HV_S_OK);
	assert_int_equal(status_of(&d.replies[1]), HV_S_OK);
	assert_string_equal((const char *)d.replies[1].body.kvp_enum_data.data.value, "value");
	assert_int_equal(status_of(&d.replies[2]), HV_S_OK);
	assert_string_equal((const char *)d.replies[2].body.kvp_enum_data.data.key, "key");
	assert_string_equal((const char *)d.replies[2].body.kvp_enum_data.data.value, "value");
	assert_int_equal(status_of(&d.replies[3]), HV_S_OK);
	assert_string_equal((const char *)d.replies[3].body.kvp_enum_data.data.key,
			    "IntegrationServicesVersion");
	assert_string_equal((const char *)d.replies[3].body.kvp_enum_data.data.value, "3.1");
	assert_int_equal(status_of(&d.replies[4]), HV_S_CONT);
	if (with_init) {
		assert_int_equal(status_of(&d.replies[5]), HV_S_OK);
		assert_string_equal((const char *)d.replies[5].body.kvp_ip_val.ip_addr, "192.0.2.1");
		assert_int_equal(n_init, 1);
		assert_int_equal(n_fini, 1);
		assert_non_null(seen_config);
	} else {
		assert_int_equal(status_of(&d.replies[5]), HV_E_FAIL); /* no IP provider */
	}
	assert_int_equal(status_of(&d.replies[6]), HV_INVALIDARG);

	/* The pools were created and pool 1 holds the record. */
	for (int i = 0; i < 5; i++) {
		g_autofree char *name = g_strdup_printf("%s/.kvp_pool_%d", pools, i);

		assert_true(g_file_test(name, G_FILE_TEST_IS_REGULAR));
	}
	{
		g_autofree char *name = g_strdup_printf("%s/.kvp_pool_1", pools);
		g_autofree char *data = NULL;
		gsize len;

		assert_true(g_file_get_contents(name, &data, &len, NULL));
		assert_int_equal(len, HV_KVP_POOL_RECORD_SIZE);
		assert_string_equal(data, "key");
		assert_string_equal(data + HV_KVP_MAX_KEY_SIZE, "value");
	}

	close(sv[0]);
	close(sv[1]);
	daemon_end = -1;
	cmd = g_strdup_printf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_daemon_serves_requests(void **state)
{
	run_daemon(false);
}

static void test_daemon_provider_init(void **state)
{
	n_init = n_fini = 0;
	run_daemon(true);
}

/* A provider that cannot start stops the daemon before the device is opened. */
static void test_daemon_provider_init_fails(void **state)
{
	g_autofree char *dir = g_dir_make_tmp("hv-kvp-daemon-XXXXXX", NULL);
	g_autofree char *conf = g_build_filename(dir, "empty.conf", NULL);
	g_autofree char *pools = g_build_filename(dir, "pools", NULL);
	g_autofree char *run = g_build_filename(dir, "run", NULL);
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	const char *args[] = { "hv_kvp_daemon", "--config",    conf,	  "--pool-dir",
			       pools,	       "--runtime-dir", run,	  "--transport",
			       "chardev",      "--device",	FAKE_DEVICE };

	for (size_t i = 0; i < G_N_ELEMENTS(args); i++)
		g_ptr_array_add(argv, g_strdup(args[i]));
	g_ptr_array_add(argv, NULL);
	assert_true(g_file_set_contents(conf, "", 0, NULL));
	n_init = n_fini = 0;
	daemon_end = -1; /* opening the device would fail with ENOENT */
	kvp_daemon_set_provider_init(provider_init, provider_fini);

	for (int round = 0; round < 2; round++) {
		/* hv_daemon_main may reorder argv: a copy of the pointers each time. */
		g_autofree char **copy = g_memdup2(argv->pdata, sizeof(char *) * argv->len);

		init_result = round == 0 ? -EINVAL : -ENOMEM;
		assert_int_equal(hv_daemon_main(&kvp_daemon_ops, (int)argv->len - 1, copy),
				 round == 0 ? HV_EXIT_USAGE : HV_EXIT_FAILURE);
	}
	assert_int_equal(n_init, 2);
	assert_int_equal(n_fini, 0);

	init_result = 0;
	kvp_daemon_set_provider_init(NULL, NULL);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_daemon_serves_requests),
		cmocka_unit_test(test_daemon_provider_init),
		cmocka_unit_test(test_daemon_provider_init_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
