/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The UIO transport: sysfs discovery in a fake /sys tree, the map size, a
 * /dev/uioN stand-in (a regular file, mmap only), and the full recv/send
 * path against the "emu:<dir>" device with this test playing the host on
 * the other side of the ring file and the interrupt socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv-ic-msg.h"
#include "hv-transport.h"
#include "transport-uio.h"
#include "vmbus-ring.h"

#define RING 8192U /* one direction, header page included */

static const hv_service fcopy = {
    .name = "fcopy",
    .max_msg = RING,
    .uio_instance_guid = HV_IC_FCOPY_INSTANCE_GUID,
    .uio_class_guid = HV_IC_FCOPY_CLASS_GUID,
};

typedef struct fx {
	char dir[64];
	/* emulated host */
	uint8_t *map;
	hv_ring tx, rx;
	int listen_fd, host_fd;
	hv_transport *t;
} fx;

static void mkdirs(const char *base, const char *rel)
{
	char path[PATH_MAX], *p;

	snprintf(path, sizeof(path), "%s/%s", base, rel);
	for (p = path + strlen(base) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
	assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
}

static void write_file(const char *base, const char *rel, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", base, rel);
	f = fopen(path, "we");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-uio-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->listen_fd = f->host_fd = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	char cmd[PATH_MAX + 16];

	hv_transport_free(f->t);
	if (f->map)
		munmap(f->map, 2 * RING);
	if (f->host_fd >= 0)
		close(f->host_fd);
	if (f->listen_fd >= 0)
		close(f->listen_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void test_kind_and_new(void **state)
{
	hv_service none = {.name = "x"};
	hv_transport *t = NULL;
	const char *why = NULL;

	(void)state;
	assert_string_equal(hv_transport_kind_to_string(HV_TRANSPORT_UIO), "uio");
	assert_int_equal(hv_transport_kind_from_string("uio"), HV_TRANSPORT_UIO);
	assert_int_equal(hv_transport_new(&none, HV_TRANSPORT_UIO, NULL, &t, &why), -EOPNOTSUPP);
	assert_non_null(why);
	assert_int_equal(hv_transport_new(&fcopy, HV_TRANSPORT_UIO, NULL, &t, &why), 0);
	assert_int_equal(t->kind, HV_TRANSPORT_UIO);
	assert_string_equal(t->device, "uio:sysfs");
	assert_false(hv_transport_is_open(t));
	hv_transport_free(t);
}

static void test_discover_instance(void **state)
{
	fx *f = *state;
	char name[32] = "", why[512] = "";

	mkdirs(f->dir, "bus/vmbus/devices/" HV_IC_FCOPY_INSTANCE_GUID);
	/* Present but not bound: -ENODEV and the commands that bind it. */
	assert_int_equal(hv_uio_discover(f->dir, HV_IC_FCOPY_INSTANCE_GUID, HV_IC_FCOPY_CLASS_GUID,
					 name, sizeof(name), why, sizeof(why)),
			 -ENODEV);
	assert_non_null(strstr(why, "echo " HV_IC_FCOPY_CLASS_GUID
				    " > /sys/bus/vmbus/drivers/uio_hv_generic/new_id"));
	assert_non_null(strstr(why, "modprobe uio_hv_generic"));
	assert_non_null(strstr(why, "uio_hv_generic/bind"));

	mkdirs(f->dir, "bus/vmbus/devices/" HV_IC_FCOPY_INSTANCE_GUID "/uio/uio3");
	assert_int_equal(hv_uio_discover(f->dir, HV_IC_FCOPY_INSTANCE_GUID, HV_IC_FCOPY_CLASS_GUID,
					 name, sizeof(name), NULL, 0),
			 0);
	assert_string_equal(name, "uio3");
}

static void test_discover_class(void **state)
{
	fx *f = *state;
	char name[32] = "", why[512] = "";

	/* Nothing at all. */
	assert_int_equal(hv_uio_discover(f->dir, HV_IC_FCOPY_INSTANCE_GUID, HV_IC_FCOPY_CLASS_GUID,
					 name, sizeof(name), why, sizeof(why)),
			 -ENODEV);
	assert_non_null(strstr(why, "not a Hyper-V guest"));

	mkdirs(f->dir, "bus/vmbus/devices/other");
	write_file(f->dir, "bus/vmbus/devices/other/class_id",
		   "{f8615163-df3e-46c5-913f-f2d2f965ed0e}\n");
	mkdirs(f->dir, "bus/vmbus/devices/other/uio/uio0");
	why[0] = '\0';
	assert_int_equal(hv_uio_discover(f->dir, HV_IC_FCOPY_INSTANCE_GUID, HV_IC_FCOPY_CLASS_GUID,
					 name, sizeof(name), why, sizeof(why)),
			 -ENODEV);
	assert_non_null(strstr(why, "no VMBus device of class " HV_IC_FCOPY_CLASS_GUID));

	/* A fcopy device under another instance id, class_id in upper case and braces. */
	mkdirs(f->dir, "bus/vmbus/devices/1234");
	write_file(f->dir, "bus/vmbus/devices/1234/class_id",
		   "{34D14BE3-DEE4-41C8-9AE7-6B174977C192}\n");
	assert_int_equal(hv_uio_discover(f->dir, NULL, HV_IC_FCOPY_CLASS_GUID, name, sizeof(name),
					 why, sizeof(why)),
			 -ENODEV);
	assert_non_null(strstr(why, "new_id"));
	mkdirs(f->dir, "bus/vmbus/devices/1234/uio/uio7");
	assert_int_equal(hv_uio_discover(f->dir, HV_IC_FCOPY_INSTANCE_GUID, HV_IC_FCOPY_CLASS_GUID,
					 name, sizeof(name), NULL, 0),
			 0);
	assert_string_equal(name, "uio7");
	assert_int_equal(hv_uio_discover(f->dir, NULL, NULL, name, sizeof(name), NULL, 0), -EINVAL);
}

static void test_map_size(void **state)
{
	fx *f = *state;
	size_t size = 0;

	assert_int_equal(hv_uio_map_size(f->dir, "uio3", &size), -ENOENT);
	mkdirs(f->dir, "class/uio/uio3/maps/map0");
	write_file(f->dir, "class/uio/uio3/maps/map0/size", "0x8000\n");
	assert_int_equal(hv_uio_map_size(f->dir, "uio3", &size), 0);
	assert_int_equal(size, 0x8000);
	write_file(f->dir, "class/uio/uio3/maps/map0/size", "lots\n");
	assert_int_equal(hv_uio_map_size(f->dir, "uio3", &size), -EBADMSG);
}

/* The sysfs path end to end, with a regular file for /dev/uio3 (open + mmap). */
static void test_open_sysfs_device(void **state)
{
	fx *f = *state;
	char dev[PATH_MAX], devroot[PATH_MAX], size[32];
	uint32_t imask;
	const char *why;
	int fd;

	mkdirs(f->dir, "bus/vmbus/devices/" HV_IC_FCOPY_INSTANCE_GUID "/uio/uio3");
	mkdirs(f->dir, "class/uio/uio3/maps/map0");
	snprintf(size, sizeof(size), "%#x\n", 2 * RING);
	write_file(f->dir, "class/uio/uio3/maps/map0/size", size);
	mkdirs(f->dir, "dev");
	snprintf(dev, sizeof(dev), "%s/dev/uio3", f->dir);
	fd = open(dev, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 2 * RING), 0);
	imask = 1;
	assert_int_equal(pwrite(fd, &imask, 4, RING + 8), 4);

	assert_int_equal(hv_transport_new(&fcopy, HV_TRANSPORT_UIO, NULL, &f->t, &why), 0);
	f->t->sysfs_root = f->dir;
	snprintf(devroot, sizeof(devroot), "%s/dev", f->dir);
	f->t->dev_root = devroot;
	assert_int_equal(hv_transport_open(f->t), 0);
	assert_string_equal(f->t->device, dev);
	assert_true(f->t->fd >= 0);
	/* RX interrupts were enabled in the mapped memory: RX is the second half. */
	assert_int_equal(pread(fd, &imask, 4, RING + 8), 4);
	assert_int_equal(imask, 0);
	hv_transport_close(f->t);
	f->t->dev_root = NULL;
	close(fd);
}

/* A fake uioN: sysfs entries under the fcopy instance and class/uio, and a /dev file. */
static void make_uio(fx *f, const char *name)
{
	char rel[PATH_MAX], size[32], dev[PATH_MAX];
	int fd;

	snprintf(rel, sizeof(rel), "bus/vmbus/devices/" HV_IC_FCOPY_INSTANCE_GUID "/uio/%s", name);
	mkdirs(f->dir, rel);
	snprintf(rel, sizeof(rel), "class/uio/%s/maps/map0", name);
	mkdirs(f->dir, rel);
	snprintf(rel, sizeof(rel), "class/uio/%s/maps/map0/size", name);
	snprintf(size, sizeof(size), "%#x\n", 2 * RING);
	write_file(f->dir, rel, size);
	mkdirs(f->dir, "dev");
	snprintf(dev, sizeof(dev), "%s/dev/%s", f->dir, name);
	fd = open(dev, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 2 * RING), 0);
	close(fd);
}

static void remove_uio(fx *f, const char *name)
{
	char cmd[3 * PATH_MAX];

	snprintf(cmd, sizeof(cmd),
		 "rm -r '%s/bus/vmbus/devices/" HV_IC_FCOPY_INSTANCE_GUID
		 "/uio/%s' '%s/class/uio/%s' '%s/dev/%s'",
		 f->dir, name, f->dir, name, f->dir, name);
	assert_int_equal(system(cmd), 0);
}

/*
 * The host rescinds the channel and offers it again: the device comes back
 * as another uioN. A transport that found its device in sysfs (uio:sysfs,
 * or uio_rediscover set, as the daemon's auto mode does) looks it up again
 * when it reopens; one given a fixed path keeps it.
 */
static void test_reopen_rediscovers(void **state)
{
	fx *f = *state;
	char devroot[PATH_MAX], want[PATH_MAX];
	hv_transport *fixed = NULL, *flagged = NULL;
	const char *why;

	make_uio(f, "uio3");
	snprintf(devroot, sizeof(devroot), "%s/dev", f->dir);

	assert_int_equal(hv_transport_new(&fcopy, HV_TRANSPORT_UIO, NULL, &f->t, &why), 0);
	snprintf(want, sizeof(want), "%s/dev/uio3", f->dir);
	assert_int_equal(hv_transport_new(&fcopy, HV_TRANSPORT_UIO, want, &fixed, &why), 0);
	assert_int_equal(hv_transport_new(&fcopy, HV_TRANSPORT_UIO, want, &flagged, &why), 0);
	flagged->uio_rediscover = true;
	for (hv_transport **t = (hv_transport *[]){f->t, fixed, flagged, NULL}; *t; t++) {
		(*t)->sysfs_root = f->dir;
		(*t)->dev_root = devroot;
		assert_int_equal(hv_transport_open(*t), 0);
		assert_string_equal((*t)->device, want);
		hv_transport_close(*t);
	}

	/* rescinded: nothing to open until the new offer */
	remove_uio(f, "uio3");
	assert_int_equal(hv_transport_open(f->t), -ENODEV);
	assert_int_equal(hv_transport_open(fixed), -ENOENT);

	/* offered again as uio4 */
	make_uio(f, "uio4");
	snprintf(want, sizeof(want), "%s/dev/uio4", f->dir);
	assert_int_equal(hv_transport_open(f->t), 0);
	assert_string_equal(f->t->device, want);
	assert_int_equal(hv_transport_open(flagged), 0);
	assert_string_equal(flagged->device, want);
	assert_int_equal(hv_transport_open(fixed), -ENOENT);

	hv_transport_close(f->t);
	hv_transport_close(flagged);
	hv_transport_free(fixed);
	hv_transport_free(flagged);
	f->t->dev_root = NULL;
}

static void test_open_unbound_explains(void **state)
{
	fx *f = *state;
	const char *why;

	mkdirs(f->dir, "bus/vmbus/devices/" HV_IC_FCOPY_INSTANCE_GUID);
	assert_int_equal(hv_transport_new(&fcopy, HV_TRANSPORT_UIO, NULL, &f->t, &why), 0);
	f->t->sysfs_root = f->dir;
	assert_int_equal(hv_transport_open(f->t), -ENODEV);
	assert_non_null(strstr(f->t->open_why, "uio_hv_generic/new_id"));
	assert_false(hv_transport_is_open(f->t));
}

/* The emulated device: the test is the host. */
static void host_setup(fx *f)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char path[PATH_MAX], dev[PATH_MAX + 8];
	const char *why;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", f->dir, HV_UIO_EMU_RING_FILE);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 2 * RING), 0);
	f->map = mmap(NULL, 2 * RING, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(f->map != MAP_FAILED);
	close(fd);
	assert_int_equal(hv_ring_attach(&f->tx, f->map, RING), 0);
	assert_int_equal(hv_ring_attach(&f->rx, f->map + RING, RING), 0);
	hv_ring_init(&f->tx);
	hv_ring_init(&f->rx);
	/* As hv_uio_open() leaves it: inbound interrupts masked until the daemon asks. */
	hv_ring_set_interrupt_mask(&f->rx, true);

	f->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(f->listen_fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", f->dir, HV_UIO_EMU_IRQ_SOCKET);
	assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->listen_fd, 1), 0);

	snprintf(dev, sizeof(dev), "emu:%s", f->dir);
	assert_int_equal(hv_transport_new(&fcopy, HV_TRANSPORT_UIO, dev, &f->t, &why), 0);
	assert_int_equal(hv_transport_open(f->t), 0);
	f->host_fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(f->host_fd >= 0);
	assert_false(hv_ring_interrupt_masked(&f->rx));
}

static void host_post(fx *f, const void *payload, size_t len, uint64_t xid)
{
	bool sig = false;
	uint32_t count = 1;

	assert_int_equal(
	    hv_ring_write_packet(&f->rx, HV_VM_PKT_DATA_INBAND, 1, xid, payload, len, &sig), 0);
	if (sig) {
		/* hv_uio_channel_cb(): mask, then notify. */
		hv_ring_set_interrupt_mask(&f->rx, true);
		assert_int_equal(send(f->host_fd, &count, 4, 0), 4);
	}
}

static bool fd_readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void test_emu_recv_send(void **state)
{
	fx *f = *state;
	uint8_t offer[128], buf[RING], reply[RING];
	const uint32_t fw[] = {HV_IC_VERSION(3, 0)}, srv[] = {HV_IC_FCOPY_SRV_VERSION};
	struct hv_vmpacket_descriptor d;
	uint32_t got_fw, got_srv, sig;
	ssize_t n;
	int len;

	host_setup(f);
	len = hv_ic_build_offer(offer, sizeof(offer), fw, 1, srv, 1, 1);
	host_post(f, offer, (size_t)len, 0xabcdef);
	assert_true(fd_readable(f->t->fd));

	n = hv_transport_recv(f->t, buf, sizeof(buf));
	assert_int_equal(n, 48); /* 44 padded to 8 */
	assert_memory_equal(buf, offer, (size_t)len);
	assert_true(f->t->last_trans_id == 0xabcdef);
	assert_int_equal(f->t->n_interrupts, 1);
	assert_false(fd_readable(f->t->fd));
	assert_int_equal(hv_transport_recv(f->t, buf, sizeof(buf)), -EAGAIN);
	/* Drained: interrupts re-enabled for the next packet. */
	assert_false(hv_ring_interrupt_masked(&f->rx));

	assert_int_equal(hv_ic_negotiate(buf, (size_t)n, fw, 1, srv, 1, NULL, NULL), 0);
	assert_int_equal(hv_transport_send(f->t, buf, (size_t)n), 0);
	/* The TX ring was empty and the host listening: one signal. */
	assert_int_equal(f->t->n_signals, 1);
	assert_int_equal(recv(f->host_fd, &sig, 4, MSG_DONTWAIT), 4);
	assert_int_equal(sig, 1);

	n = hv_ring_read(&f->tx, reply, sizeof(reply), false, &d, NULL);
	assert_int_equal(n, 48);
	assert_int_equal(d.type, HV_VM_PKT_DATA_INBAND);
	assert_int_equal(d.flags, 0);
	assert_true(d.trans_id == 0xabcdef);
	assert_int_equal(hv_ic_parse_negotiate_reply(reply, (size_t)n, &got_fw, &got_srv, NULL), 0);
	assert_int_equal(got_fw, HV_IC_VERSION(3, 0));
	assert_int_equal(got_srv, HV_IC_VERSION(1, 1));
}

static void test_emu_missed_interrupt(void **state)
{
	fx *f = *state;
	uint8_t p[24] = {1}, buf[RING];
	bool sig;

	host_setup(f);
	/* Written while the guest had interrupts masked: no notification at all. */
	hv_ring_set_interrupt_mask(&f->rx, true);
	assert_int_equal(hv_ring_write_packet(&f->rx, 6, 0, 1, p, sizeof(p), &sig), 0);
	assert_false(sig);
	assert_false(fd_readable(f->t->fd));
	/* recv still finds it, and the next one; the re-arm check sees the late one. */
	assert_int_equal(hv_transport_recv(f->t, buf, sizeof(buf)), 24);
	assert_int_equal(hv_transport_recv(f->t, buf, sizeof(buf)), -EAGAIN);
	assert_false(hv_ring_interrupt_masked(&f->rx));
	assert_int_equal(f->t->n_interrupts, 0);
}

static void test_emu_oversized_dropped(void **state)
{
	fx *f = *state;
	uint8_t p[200] = {0}, buf[64];

	host_setup(f);
	host_post(f, p, sizeof(p), 1);
	host_post(f, p, 16, 2);
	assert_int_equal(hv_transport_recv(f->t, buf, sizeof(buf)), -EMSGSIZE);
	assert_int_equal(f->t->n_dropped, 1);
	assert_int_equal(hv_transport_recv(f->t, buf, sizeof(buf)), 16);
	assert_true(f->t->last_trans_id == 2);
}

static void test_emu_tx_full_and_signal_rules(void **state)
{
	fx *f = *state;
	uint8_t p[1000] = {0};
	unsigned int sent = 0;
	uint32_t sig;
	int r;

	host_setup(f);
	/* The host is not reading: the second send finds the ring non-empty, no signal. */
	while ((r = hv_transport_send(f->t, p, sizeof(p))) == 0)
		sent++;
	assert_int_equal(r, -EAGAIN);
	/* 4096 data bytes hold four 1024-byte packets (16 + 1000 + 8) but for the gap: 3. */
	assert_int_equal(sent, 3);
	assert_int_equal(f->t->n_signals, 1);

	/* With uio_signal_always, every send signals (the upstream daemon's way). */
	while (recv(f->host_fd, &sig, 4, MSG_DONTWAIT) == 4)
		;
	assert_int_equal(hv_ring_skip(&f->tx, NULL), 0);
	f->t->uio_signal_always = true;
	assert_int_equal(hv_transport_send(f->t, p, 8), 0);
	assert_int_equal(f->t->n_signals, 2);
	assert_int_equal(recv(f->host_fd, &sig, 4, MSG_DONTWAIT), 4);
}

/* A signal that finds the socket full is already owed: send still succeeds, once. */
static void test_emu_signal_backlog(void **state)
{
	fx *f = *state;
	uint8_t p[8] = {0}, out[64];
	int small = 1;

	host_setup(f);
	assert_int_equal(setsockopt(f->t->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	f->t->uio_signal_always = true;
	for (int i = 0; i < 3000; i++) {
		assert_int_equal(hv_transport_send(f->t, p, sizeof(p)), 0);
		assert_int_equal(hv_ring_read(&f->tx, out, sizeof(out), false, NULL, NULL), 8);
	}
	/* The host never read a signal: most were dropped as already pending. */
	assert_true(f->t->n_signals < 3000);
	assert_int_equal(hv_ring_avail_read(&f->tx), 0);
}

static void test_emu_host_gone(void **state)
{
	fx *f = *state;
	uint8_t buf[64];

	host_setup(f);
	close(f->host_fd);
	f->host_fd = -1;
	assert_int_equal(hv_transport_recv(f->t, buf, sizeof(buf)), -EPIPE);
}

static void test_emu_bad_dir(void **state)
{
	fx *f = *state;
	char dev[PATH_MAX + 16];
	const char *why;

	snprintf(dev, sizeof(dev), "emu:%s/nowhere", f->dir);
	assert_int_equal(hv_transport_new(&fcopy, HV_TRANSPORT_UIO, dev, &f->t, &why), 0);
	assert_int_equal(hv_transport_open(f->t), -ENOENT);
	assert_false(hv_transport_is_open(f->t));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kind_and_new),
	    cmocka_unit_test_setup_teardown(test_discover_instance, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_discover_class, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_map_size, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_sysfs_device, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_rediscovers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_unbound_explains, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_emu_recv_send, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_emu_missed_interrupt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_emu_oversized_dropped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_emu_tx_full_and_signal_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_emu_signal_backlog, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_emu_host_gone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_emu_bad_dir, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
