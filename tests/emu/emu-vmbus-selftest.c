/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The emulated VMBus host (emu-vmbus.c) against the daemon's own UIO
 * transport (kernel/transport-uio.c, unmodified, device "emu:<dir>") in a
 * child process that answers like an IC service: negotiation with
 * hv_ic_negotiate(), every other message echoed with status = the body
 * length it saw. Covers negotiation (offers with unsupported versions,
 * refusals, malformed counts), thousands of round trips that wrap both
 * rings, a burst that fills the host -> guest ring and the guest -> host
 * ring, a guest killed and another one opening the channel (reset headers,
 * negotiation again), a host reset of the channel (the guest sees the end
 * of its interrupt fd and reopens), and the guest seeing the host go away.
 * TAP output; needs no root.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "emu-util.h"
#include "emu-vmbus.h"
#include "hv-status.h"
#include "hv-transport.h"

#define RING_SIZE  0x4000U /* per direction, as the upstream daemon's HV_RING_SIZE */
#define TIMEOUT_MS 10000

static unsigned int n_tests, n_failed;

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void check(bool ok, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);

	n_tests++;
	if (!ok)
		n_failed++;
	printf("%sok %u - %s\n", ok ? "" : "not ", n_tests, buf);
	fflush(stdout);
}

/*
 * The guest: a minimal IC service on the real transport code. When the host
 * closes the channel it reopens, reopens times; then it exits 0.
 */
static int guest_main(const char *device, int reopens)
{
	static const hv_service svc = {
	    .name = "fcopy",
	    .uio_instance_guid = HV_IC_FCOPY_INSTANCE_GUID,
	    .uio_class_guid = HV_IC_FCOPY_CLASS_GUID,
	};
	const uint32_t fw[] = {HV_UTIL_FW_VERSION}, srv[] = {HV_IC_FCOPY_SRV_VERSION};
	static uint8_t buf[RING_SIZE];
	hv_transport *t;
	const char *why;
	int r;

	if (hv_transport_new(&svc, HV_TRANSPORT_UIO, device, &t, &why) < 0)
		return 10;

	r = hv_transport_open(t);
	if (r < 0) {
		fprintf(stderr, "guest: open %s: %s %s\n", device, strerror(-r), t->open_why);
		return 11;
	}

	/* Drain first (packets posted before interrupts were on raise none), then poll. */
	for (bool first = true;;) {
		struct pollfd p = {.fd = t->fd, .events = POLLIN};
		ssize_t n;

		r = first ? 1 : poll(&p, 1, TIMEOUT_MS);
		first = false;
		if (r == 0) {
			fprintf(stderr, "guest: no interrupt for %d ms\n", TIMEOUT_MS);
			return 12;
		}

		while ((n = hv_transport_recv(t, buf, sizeof(buf))) >= 0) {
			uint64_t give_up = emu_now_ns() + (uint64_t)TIMEOUT_MS * EMU_NSEC_PER_MSEC;
			hv_ic_msg m;

			if (hv_ic_msg_parse(buf, (size_t)n, &m) < 0)
				return 13;

			if (m.hdr.icmsgtype == HV_ICMSGTYPE_NEGOTIATE)
				(void)hv_ic_negotiate(buf, (size_t)n, fw, 1, srv, 1, NULL, NULL);
			else
				hv_ic_set_response(buf, (size_t)n, (uint32_t)m.body_len);

			/* TX full: the host is not reading yet; it drains without signalling us. */
			while ((r = hv_transport_send(t, buf, (size_t)n)) == -EAGAIN) {
				if (emu_now_ns() > give_up)
					return 14;
				usleep(200);
			}
			if (r < 0)
				return 15;
		}

		if (n == -EPIPE && reopens-- > 0) {
			/* what the daemon does: close, reopen (the host may be setting up) */
			hv_transport_close(t);
			for (int i = 0; (r = hv_transport_open(t)) < 0; i++) {
				if (i == 500)
					return 17;
				usleep(10000);
			}
			first = true;
			continue;
		}
		if (n == -EPIPE) {
			hv_transport_free(t);
			return 0;
		}
		if (n != -EAGAIN) {
			fprintf(stderr, "guest: recv: %s\n", strerror((int)-n));
			return 16;
		}
	}
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 13 + i * 3);
}

static void test_negotiation(emu_vmbus *v)
{
	const uint32_t fw[] = {HV_IC_VERSION(1, 0), HV_IC_VERSION(3, 0), HV_IC_VERSION(4, 0)};
	const uint32_t srv[] = {HV_IC_VERSION(1, 0), HV_IC_VERSION(1, 1), HV_IC_VERSION(2, 0)};
	const uint32_t bad_fw[] = {HV_IC_VERSION(4, 0), HV_IC_VERSION(5, 0)};
	uint32_t many[101];
	uint32_t f = 0, s = 0;
	int r;

	r = emu_vmbus_negotiate(v, fw, 3, srv, 3, TIMEOUT_MS, &f, &s);
	check(r == 0 && f == HV_IC_VERSION(3, 0) && s == HV_IC_VERSION(1, 1),
	      "negotiation among unsupported versions picks 3.0 / 1.1 (r=%d, %u.%u / %u.%u)", r,
	      f >> 16, f & 0xffff, s >> 16, s & 0xffff);

	r = emu_vmbus_negotiate(v, bad_fw, 2, srv, 3, TIMEOUT_MS, &f, &s);
	check(r == -EPROTO, "no common framework version: refused with counts 0/0 (r=%d)", r);

	for (int i = 0; i < 101; i++)
		many[i] = HV_IC_VERSION(3, 0);
	r = emu_vmbus_negotiate(v, many, 101, srv, 3, TIMEOUT_MS, &f, &s);
	check(r == -EPROTO, "101 framework versions (over the limit of 100): refused (r=%d)", r);
}

static void test_round_trips(emu_vmbus *v)
{
	static uint8_t body[6400], back[6400];
	const emu_vmbus_stats *st = emu_vmbus_get_stats(v);
	unsigned int bad = 0, first_bad = 0;
	uint64_t worst = 0, sum = 0;
	unsigned seed = 99;
	const int rounds = 3000;

	for (int i = 0; i < rounds; i++) {
		emu_vmbus_times tm = {0};
		uint32_t status = 0;
		size_t len;
		ssize_t n;

		seed = seed * 1103515245U + 12345U;
		len = (seed >> 8) % 6300;
		fill(body, len, (unsigned)i);
		n = emu_vmbus_request(v, HV_ICMSGTYPE_FCOPY, HV_IC_FCOPY_SRV_VERSION, body, len,
				      TIMEOUT_MS, &status, back, sizeof(back), &tm);
		/* Bodies come back padded: the packet payload is a multiple of 8. */
		if (n < (ssize_t)len || status != (uint32_t)n || memcmp(back, body, len) != 0 ||
		    tm.answered < tm.posted) {
			if (!bad++) {
				first_bad = (unsigned)i;
				printf("# first bad: len %zu, n %zd, status %#x\n", len, n, status);
			}
			continue;
		}
		sum += tm.answered - tm.posted;
		if (tm.answered - tm.posted > worst)
			worst = tm.answered - tm.posted;
	}
	check(bad == 0, "%d request/reply round trips of 0-6299 bytes intact (%u bad, first %u)",
	      rounds, bad, first_bad);
	check(st->rx_wraps > 10 && st->tx_wraps > 10,
	      "both rings wrapped many times (rx %u, tx %u)", st->rx_wraps, st->tx_wraps);
	printf("# round trip: mean %.3f ms, worst %.3f ms; %u interrupts, %u guest signals\n",
	       (double)sum / rounds / 1e6, (double)worst / 1e6, st->interrupts, st->guest_signals);
}

static void test_full_rings(emu_vmbus *v)
{
	static uint8_t pkt[4000], back[RING_SIZE];
	const emu_vmbus_stats *st = emu_vmbus_get_stats(v);
	unsigned int before_waits = st->rx_full_waits;
	unsigned int ok = 0;
	const int burst = 40;
	int posted = 0;

	/* Post without reading replies: RX fills, the guest's TX fills behind it. */
	for (int i = 0; i < burst; i++) {
		size_t len;
		int r;

		len = (size_t)hv_ic_build_request(pkt, sizeof(pkt), HV_ICMSGTYPE_FCOPY, 0, 0,
						  (uint8_t)i, NULL, 0);
		fill(pkt + len, 3000, (unsigned)i + 1000);
		r = emu_vmbus_post(v, pkt, len + 3000, 5000 + (uint64_t)i, TIMEOUT_MS, NULL);
		if (r < 0) {
			printf("# burst: post %d: %s\n", i, strerror(-r));
			break;
		}
		posted++;
	}
	check(posted == burst, "a burst of %d 3 KiB packets posted into a 16 KiB ring", burst);
	check(st->rx_full_waits > before_waits,
	      "the host -> guest ring was full and the host waited for room (%u waits)",
	      st->rx_full_waits - before_waits);

	for (int i = 0; i < posted; i++) {
		struct hv_vmpacket_descriptor d;
		ssize_t n = emu_vmbus_wait_reply(v, back, sizeof(back), &d, NULL, TIMEOUT_MS);

		fill(pkt, 3000, (unsigned)i + 1000);
		if (n == (ssize_t)hv_vmbus_packet_size(28 + 3000) - 16 &&
		    d.trans_id == 5000 + (uint64_t)i && back[24] == (uint8_t)i &&
		    memcmp(back + 28, pkt, 3000) == 0)
			ok++;
	}
	check(ok == (unsigned)posted, "all %u replies in order and intact after the full rings",
	      ok);
}

static void test_guest_ignores_nothing_when_idle(emu_vmbus *v)
{
	uint8_t back[64];
	ssize_t n = emu_vmbus_wait_reply(v, back, sizeof(back), NULL, NULL, 200);

	check(n == -ETIMEDOUT, "an idle guest sends nothing unasked (r=%zd)", n);
}

/* One FCOPY-typed round trip on the current channel. */
static bool one_round_trip(emu_vmbus *v)
{
	uint8_t body[64], back[72];
	uint32_t status = 0;
	ssize_t n;

	fill(body, sizeof(body), 7);
	n = emu_vmbus_request(v, HV_ICMSGTYPE_FCOPY, HV_IC_FCOPY_SRV_VERSION, body, sizeof(body),
			      TIMEOUT_MS, &status, back, sizeof(back), NULL);
	/* the body comes back padded to the packet's 8-byte multiple */
	return n >= (ssize_t)sizeof(body) && status == (uint32_t)n &&
	       memcmp(back, body, sizeof(body)) == 0;
}

static bool negotiates(emu_vmbus *v)
{
	const uint32_t fw[] = {HV_IC_VERSION(3, 0)}, srv[] = {HV_IC_VERSION(1, 1)};
	uint32_t f = 0, s = 0;

	return emu_vmbus_negotiate(v, fw, 1, srv, 1, TIMEOUT_MS, &f, &s) == 0 &&
	       f == HV_IC_VERSION(3, 0) && s == HV_IC_VERSION(1, 1);
}

static pid_t start_guest(emu_vmbus *v, int reopens)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		alarm(120);
		_exit(guest_main(emu_vmbus_device(v), reopens));
	}
	return pid;
}

/*
 * The guest is killed (a daemon restarted by systemd): the channel is
 * released, the headers reset, and the next guest is taken and negotiates.
 * Then the host resets the channel: the guest reopens and negotiates again.
 * Returns the second guest's pid (-1 if none).
 */
static pid_t test_restart_and_reset(emu_vmbus *v, pid_t pid)
{
	const emu_vmbus_stats *st = emu_vmbus_get_stats(v);
	hv_ring *rx = emu_vmbus_rx(v), *tx = emu_vmbus_tx(v);
	int r, status = 0;

	/* something unread in RX, so that the reset has indices to clear */
	r = emu_vmbus_post(v, "stale!!!", 8, 77, TIMEOUT_MS, NULL);
	check(r == 0, "a packet left unread in RX (r=%d)", r);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);

	r = emu_vmbus_post(v, "x", 1, 78, 0, NULL);
	check(r == 0 || r == -EPIPE, "posting to a killed guest does not block (r=%d)", r);
	r = emu_vmbus_wait_gone(v, TIMEOUT_MS);
	check(r == 0 && st->releases == 1, "the killed guest's channel was released (r=%d, %u)", r,
	      st->releases);
	check(!emu_vmbus_connected(v) && rx->hdr->write_index == 0 && rx->hdr->read_index == 0 &&
		  tx->hdr->write_index == 0 && tx->hdr->read_index == 0 &&
		  hv_ring_interrupt_masked(rx) && !hv_ring_interrupt_masked(tx),
	      "headers as after open: indices 0, RX masked, TX not");
	r = emu_vmbus_post(v, "x", 1, 79, 0, NULL);
	check(r == -EPIPE, "no guest: posting says -EPIPE (r=%d)", r);

	pid = start_guest(v, 1);
	if (pid < 0)
		return -1;
	r = emu_vmbus_accept(v, TIMEOUT_MS);
	check(r == 0 && st->opens == 2, "a second guest opened the channel (r=%d, opens %u)", r,
	      st->opens);
	if (r < 0)
		return pid;
	check(negotiates(v), "the second guest negotiates 3.0 / 1.1 again");
	check(one_round_trip(v), "a round trip with the second guest (no stale packet)");

	r = emu_vmbus_reset(v);
	check(r == 0 && !emu_vmbus_connected(v), "the host reset the channel (r=%d)", r);
	check(emu_vmbus_post(v, "x", 1, 80, 0, NULL) == -ENOTCONN,
	      "posting before the guest reopens: -ENOTCONN");
	r = emu_vmbus_accept(v, TIMEOUT_MS);
	check(r == 0 && st->opens == 3, "the guest reopened after the reset (r=%d, opens %u)", r,
	      st->opens);
	if (r < 0)
		return pid;
	check(negotiates(v), "negotiation again on the reset channel");
	check(one_round_trip(v), "a round trip on the reset channel");
	return pid;
}

int main(void)
{
	char dir[] = "/tmp/emu-vmbus-XXXXXX";
	emu_vmbus *v = NULL;
	int status = -1, r;
	pid_t pid;

	printf("TAP version 13\n");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}

	r = emu_vmbus_new(dir, RING_SIZE, &v);
	if (r < 0) {
		fprintf(stderr, "emu_vmbus_new: %s\n", strerror(-r));
		rmdir(dir);
		return 1;
	}

	pid = start_guest(v, 0);
	if (pid < 0) {
		perror("fork");
		return 1;
	}

	/* Only signals wake the host: a lost wake-up either way fails a check by timeout. */
	emu_vmbus_set_look_interval(v, 0);
	r = emu_vmbus_accept(v, TIMEOUT_MS);
	check(r == 0, "the guest transport opened %s (r=%d)", emu_vmbus_device(v), r);
	if (r == 0) {
		test_negotiation(v);
		test_round_trips(v);
		test_full_rings(v);
		test_guest_ignores_nothing_when_idle(v);
		pid = test_restart_and_reset(v, pid);
	}

	/* The host goes away: the guest's recv sees -EPIPE and it exits 0. */
	emu_vmbus_free(v);
	for (int i = 0; pid > 0 && i < 1000 && waitpid(pid, &status, WNOHANG) == 0; i++)
		emu_sleep_ms(10);
	if (status == -1 && pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the guest saw the host leave and exited cleanly (status %#x)", status);
	rmdir(dir);

	printf("1..%u\n", n_tests);
	return n_failed ? 1 : 0;
}
