/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VMBus ring: layout, wrap-around at every offset, full ring and gap,
 * corrupt indices and descriptors, the signalling rules, a property test
 * against a model queue and a two-thread producer/consumer stress test.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "hv-ic-msg.h"
#include "vmbus-ring.h"

#define SMALL_DSIZE 256U

typedef struct fixture {
	uint8_t *mem;
	size_t size;
	hv_ring r;
} fixture;

static fixture *fixture_new(uint32_t dsize)
{
	fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->size = HV_RING_HDR_SIZE + dsize;
	/* C11 aligned_alloc(): the size must be a multiple of the alignment */
	f->mem = aligned_alloc(4096, (f->size + 4095) & ~(size_t)4095);
	assert_non_null(f->mem);
	memset(f->mem, 0xcc, f->size);
	assert_int_equal(hv_ring_attach(&f->r, f->mem, f->size), 0);
	hv_ring_init(&f->r);
	return f;
}

static void fixture_free(fixture *f)
{
	free(f->mem);
	free(f);
}

static int setup_small(void **state)
{
	*state = fixture_new(SMALL_DSIZE);
	return 0;
}

static int teardown(void **state)
{
	fixture_free(*state);
	return 0;
}

static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7 + 1);
}

static void set_indices(hv_ring *r, uint32_t rd, uint32_t wr)
{
	r->hdr->read_index = rd;
	r->hdr->write_index = wr;
}

/* Reads ring data bytes at a ring offset, wrapping. */
static void ring_bytes(const hv_ring *r, uint32_t at, void *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		((uint8_t *)dst)[i] = r->data[(at + i) % r->dsize];
}

static void test_layout(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct hv_ring_hdr), 4096);
	assert_int_equal(offsetof(struct hv_ring_hdr, write_index), 0);
	assert_int_equal(offsetof(struct hv_ring_hdr, read_index), 4);
	assert_int_equal(offsetof(struct hv_ring_hdr, interrupt_mask), 8);
	assert_int_equal(offsetof(struct hv_ring_hdr, pending_send_sz), 12);
	assert_int_equal(offsetof(struct hv_ring_hdr, feature_bits), 64);
}

static void test_attach(void **state)
{
	fixture *f = *state;
	hv_ring r;

	assert_int_equal(f->r.dsize, SMALL_DSIZE);
	assert_ptr_equal(f->r.data, f->mem + 4096);
	assert_int_equal(f->r.hdr->feature_bits, HV_RING_FEAT_PENDING_SEND_SZ);
	assert_int_equal(f->r.hdr->read_index, 0);
	assert_int_equal(f->r.hdr->write_index, 0);
	/* Data area bytes are not touched by init. */
	assert_int_equal(f->r.data[0], 0xcc);

	assert_int_equal(hv_ring_attach(&r, f->mem, 4096), -EINVAL);
	assert_int_equal(hv_ring_attach(&r, f->mem, 4096 + 20), -EINVAL);
	assert_int_equal(hv_ring_attach(&r, f->mem, 4096 + 36), -EINVAL);
	assert_int_equal(hv_ring_attach(&r, NULL, 8192), -EINVAL);
	assert_int_equal(hv_ring_attach(&r, f->mem, 4096 + 40), 0);
}

static void test_empty(void **state)
{
	fixture *f = *state;
	struct hv_vmpacket_descriptor d;
	uint8_t buf[64];

	assert_int_equal(hv_ring_avail_read(&f->r), 0);
	assert_int_equal(hv_ring_avail_write(&f->r), SMALL_DSIZE);
	assert_int_equal(hv_ring_peek(&f->r, &d), -EAGAIN);
	assert_int_equal(hv_ring_read(&f->r, buf, sizeof(buf), false, NULL, NULL), -EAGAIN);
	assert_int_equal(hv_ring_skip(&f->r, NULL), -EAGAIN);
}

static void test_one_packet(void **state)
{
	fixture *f = *state;
	struct hv_vmpacket_descriptor d;
	uint8_t payload[21], buf[64];
	uint64_t trailer;
	bool sig = false;
	ssize_t n;

	fill_pattern(payload, sizeof(payload), 1);
	set_indices(&f->r, 40, 40);
	assert_int_equal(hv_ring_write_packet(&f->r, HV_VM_PKT_DATA_INBAND, 0, 77, payload,
					      sizeof(payload), &sig),
			 0);
	assert_true(sig);
	/* 16 descriptor + 24 padded payload + 8 trailer. */
	assert_int_equal(f->r.hdr->write_index, 40 + 48);
	assert_int_equal(hv_ring_avail_read(&f->r), 48);
	memcpy(&trailer, f->r.data + 40 + 40, 8);
	assert_true(trailer == (uint64_t)40 << 32);

	assert_int_equal(hv_ring_peek(&f->r, &d), 0);
	assert_int_equal(d.type, HV_VM_PKT_DATA_INBAND);
	assert_int_equal(d.offset8, 2);
	assert_int_equal(d.len8, 5);
	assert_true(d.trans_id == 77);

	n = hv_ring_read(&f->r, buf, sizeof(buf), false, &d, &sig);
	assert_int_equal(n, 24);
	assert_memory_equal(buf, payload, sizeof(payload));
	assert_int_equal(buf[21] | buf[22] | buf[23], 0);
	assert_false(sig);
	assert_int_equal(f->r.hdr->read_index, 88);
	assert_int_equal(hv_ring_avail_read(&f->r), 0);
}

static void test_raw_read_and_small_buffer(void **state)
{
	fixture *f = *state;
	struct hv_vmpacket_descriptor d;
	uint8_t payload[40], buf[64];
	hv_vmbus_packet p;
	ssize_t n;

	fill_pattern(payload, sizeof(payload), 2);
	assert_int_equal(hv_ring_write_packet(&f->r, 6, 1, 5, payload, 40, NULL), 0);
	assert_int_equal(hv_ring_write_packet(&f->r, 11, 0, 6, payload, 8, NULL), 0);

	/* Too small: nothing consumed, the descriptor tells the size. */
	assert_int_equal(hv_ring_read(&f->r, buf, 39, false, &d, NULL), -ENOBUFS);
	assert_int_equal(d.len8 * 8 - d.offset8 * 8, 40);
	assert_int_equal(f->r.hdr->read_index, 0);
	assert_int_equal(hv_ring_read(&f->r, buf, 55, true, &d, NULL), -ENOBUFS);

	n = hv_ring_read(&f->r, buf, sizeof(buf), true, &d, NULL);
	assert_int_equal(n, 56);
	assert_int_equal(hv_vmbus_packet_parse(buf, (size_t)n, &p), 0);
	assert_int_equal(p.flags, 1);
	assert_true(p.trans_id == 5);
	assert_memory_equal(p.payload, payload, 40);

	assert_int_equal(hv_ring_skip(&f->r, NULL), 0);
	assert_int_equal(hv_ring_avail_read(&f->r), 0);
	assert_int_equal(f->r.hdr->read_index, 64 + 32);
}

/*
 * Every start offset of a small ring, payloads of several sizes: what was
 * written is read back, the trailer lies where the ring wraps it, and the
 * indices advance modulo the data size.
 */
static void test_wrap_every_offset(void **state)
{
	fixture *f = *state;
	static const size_t lens[] = {0, 1, 7, 8, 9, 63, 100, 200, 216};

	for (uint32_t start = 0; start < SMALL_DSIZE; start += 8)
		for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
			size_t len = lens[li];
			size_t total = hv_vmbus_packet_size(len);
			uint8_t payload[256], out[256];
			uint64_t trailer;
			bool sig;
			ssize_t n;

			fill_pattern(payload, len, start + (uint32_t)li);
			memset(f->r.data, 0xcc, SMALL_DSIZE);
			set_indices(&f->r, start, start);
			assert_int_equal(hv_ring_write_packet(&f->r, 6, 0, start, payload, len,
							      &sig),
					 0);
			assert_int_equal(f->r.hdr->write_index,
					 (start + total + 8) % SMALL_DSIZE);
			ring_bytes(&f->r, (uint32_t)((start + total) % SMALL_DSIZE), &trailer, 8);
			assert_true(trailer == (uint64_t)start << 32);

			memset(out, 0, sizeof(out));
			n = hv_ring_read(&f->r, out, sizeof(out), false, NULL, &sig);
			assert_int_equal(n, (ssize_t)(total - 16));
			if (len)
				assert_memory_equal(out, payload, len);
			assert_int_equal(f->r.hdr->read_index, f->r.hdr->write_index);
		}
}

static void test_too_big_never_fits(void **state)
{
	fixture *f = *state;
	uint8_t payload[256] = {0};

	/* 16 + 232 + 8 = 256 = dsize: can never fit (a gap must remain). */
	assert_int_equal(hv_ring_write_packet(&f->r, 6, 0, 0, payload, 232, NULL), -EMSGSIZE);
	/* 16 + 224 + 8 = 248: fits in an empty ring, leaving the 8-byte gap. */
	assert_int_equal(hv_ring_write_packet(&f->r, 6, 0, 0, payload, 224, NULL), 0);
	assert_int_equal(hv_ring_avail_write(&f->r), 8);
	assert_int_equal(hv_ring_write_packet(&f->r, 6, 0, 0, NULL, 0, NULL), -EAGAIN);
}

static void test_full_ring(void **state)
{
	fixture *f = *state;
	uint8_t payload[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8];
	int written = 0;
	uint32_t before;

	/* 32-byte packets: 7 fit into 256 (224 used), the 8th would close the gap. */
	while (written < 100) {
		int r = hv_ring_write_packet(&f->r, 6, 0, (uint64_t)written, payload, 8, NULL);

		if (r == -EAGAIN)
			break;
		assert_int_equal(r, 0);
		written++;
	}
	assert_int_equal(written, 7);
	assert_int_equal(hv_ring_avail_read(&f->r), 7 * 32);
	before = f->r.hdr->write_index;
	/* A failed write changes nothing. */
	assert_int_equal(hv_ring_write_packet(&f->r, 6, 0, 0, payload, 8, NULL), -EAGAIN);
	assert_int_equal(f->r.hdr->write_index, before);

	/* Draining one makes room for exactly one more. */
	assert_int_equal(hv_ring_read(&f->r, out, sizeof(out), false, NULL, NULL), 8);
	assert_int_equal(hv_ring_write_packet(&f->r, 6, 0, 99, payload, 8, NULL), 0);
	assert_int_equal(hv_ring_write_packet(&f->r, 6, 0, 0, payload, 8, NULL), -EAGAIN);
	for (int i = 1; i <= 7; i++) {
		struct hv_vmpacket_descriptor d;

		assert_int_equal(hv_ring_read(&f->r, out, sizeof(out), false, &d, NULL), 8);
		assert_true(d.trans_id == (i == 7 ? 99U : (uint64_t)i));
	}
	assert_int_equal(hv_ring_avail_read(&f->r), 0);
}

static void test_write_rejects(void **state)
{
	fixture *f = *state;
	uint8_t b[16] = {0};
	hv_ring_piece odd[] = {{b, 16}, {b, 3}};
	hv_ring_piece ok[] = {{b, 16}, {b, 8}};

	assert_int_equal(hv_ring_write(&f->r, odd, 2, NULL), -EINVAL);
	assert_int_equal(hv_ring_write(&f->r, NULL, 0, NULL), -EINVAL);
	f->r.hdr->read_index = 12; /* misaligned consumer index */
	assert_int_equal(hv_ring_write(&f->r, ok, 2, NULL), -EBADMSG);
	f->r.hdr->read_index = SMALL_DSIZE;
	assert_int_equal(hv_ring_write(&f->r, ok, 2, NULL), -EBADMSG);
	f->r.hdr->read_index = 0;
	assert_int_equal(hv_ring_write(&f->r, ok, 2, NULL), 0);
}

static void test_corrupt(void **state)
{
	fixture *f = *state;
	struct hv_vmpacket_descriptor d = {.type = 6, .offset8 = 2, .len8 = 4};
	uint8_t buf[512];

	/* Descriptor says 32 bytes, only 24 (16 + trailer) published. */
	memcpy(f->r.data, &d, sizeof(d));
	set_indices(&f->r, 0, 24);
	assert_int_equal(hv_ring_read(&f->r, buf, sizeof(buf), false, NULL, NULL), -EBADMSG);
	assert_int_equal(f->r.hdr->read_index, 0);

	/* Less than a descriptor and trailer. */
	set_indices(&f->r, 0, 16);
	assert_int_equal(hv_ring_peek(&f->r, &d), -EBADMSG);

	/* offset8 below the descriptor, and above len8. */
	d.len8 = 2;
	d.offset8 = 1;
	memcpy(f->r.data, &d, sizeof(d));
	set_indices(&f->r, 0, 24);
	assert_int_equal(hv_ring_read(&f->r, buf, sizeof(buf), false, NULL, NULL), -EBADMSG);
	d.offset8 = 3;
	memcpy(f->r.data, &d, sizeof(d));
	assert_int_equal(hv_ring_read(&f->r, buf, sizeof(buf), true, NULL, NULL), -EBADMSG);
	assert_int_equal(hv_ring_skip(&f->r, NULL), -EBADMSG);

	/* A huge len8 never makes us read past the ring. */
	d.offset8 = 2;
	d.len8 = 0xffff;
	memcpy(f->r.data, &d, sizeof(d));
	set_indices(&f->r, 0, 248);
	assert_int_equal(hv_ring_read(&f->r, buf, sizeof(buf), true, NULL, NULL), -EBADMSG);

	/* Indices out of range or misaligned. */
	set_indices(&f->r, 0, SMALL_DSIZE);
	assert_int_equal(hv_ring_peek(&f->r, &d), -EBADMSG);
	set_indices(&f->r, 4, 40);
	assert_int_equal(hv_ring_peek(&f->r, &d), -EBADMSG);
	set_indices(&f->r, 0, 0);
}

static void test_signal_on_write(void **state)
{
	fixture *f = *state;
	uint8_t p[8] = {0}, out[8];
	bool sig;

	assert_int_equal(hv_ring_write_packet(&f->r, 6, 0, 0, p, 8, &sig), 0);
	assert_true(sig);
	/* Not empty before: the consumer is already due to read. */
	assert_int_equal(hv_ring_write_packet(&f->r, 6, 0, 0, p, 8, &sig), 0);
	assert_false(sig);
	assert_int_equal(hv_ring_read(&f->r, out, 8, false, NULL, NULL), 8);
	assert_int_equal(hv_ring_read(&f->r, out, 8, false, NULL, NULL), 8);
	/* The consumer masked interrupts (it is draining). */
	hv_ring_set_interrupt_mask(&f->r, true);
	assert_true(hv_ring_interrupt_masked(&f->r));
	assert_int_equal(hv_ring_write_packet(&f->r, 6, 0, 0, p, 8, &sig), 0);
	assert_false(sig);
	assert_int_equal(hv_ring_read(&f->r, out, 8, false, NULL, NULL), 8);
	hv_ring_set_interrupt_mask(&f->r, false);
	assert_int_equal(hv_ring_write_packet(&f->r, 6, 0, 0, p, 8, &sig), 0);
	assert_true(sig);
}

static void test_signal_on_read(void **state)
{
	fixture *f = *state;
	uint8_t p[8] = {0}, out[8];
	bool sig;

	/* 7 packets of 32: 32 bytes free (the producer sees 32, needs > 64 for 64 total). */
	for (int i = 0; i < 7; i++)
		assert_int_equal(hv_ring_write_packet(&f->r, 6, 0, 0, p, 8, NULL), 0);
	assert_int_equal(hv_ring_avail_write(&f->r), 32);

	/* No pending size: nothing to tell. */
	assert_int_equal(hv_ring_read(&f->r, out, 8, false, NULL, &sig), 8);
	assert_false(sig);
	assert_int_equal(hv_ring_avail_write(&f->r), 64);

	/* The producer waits for 100 bytes: 64 -> 96 is not enough, 96 -> 128 is. */
	hv_ring_set_pending_send(&f->r, 100);
	assert_int_equal(hv_ring_read(&f->r, out, 8, false, NULL, &sig), 8);
	assert_false(sig);
	assert_int_equal(hv_ring_read(&f->r, out, 8, false, NULL, &sig), 8);
	assert_true(sig);
	/* Already had room before this read: no new signal. */
	assert_int_equal(hv_ring_read(&f->r, out, 8, false, NULL, &sig), 8);
	assert_false(sig);

	/* Exactly the pending size free counts as not enough (the gap). */
	hv_ring_init(&f->r);
	for (int i = 0; i < 7; i++)
		assert_int_equal(hv_ring_write_packet(&f->r, 6, 0, 0, p, 8, NULL), 0);
	hv_ring_set_pending_send(&f->r, 64);
	assert_int_equal(hv_ring_read(&f->r, out, 8, false, NULL, &sig), 8);
	assert_false(sig);
	assert_int_equal(hv_ring_skip(&f->r, &sig), 0);
	assert_true(sig);

	/* Without the feature bit the producer polls: never signal. */
	hv_ring_init(&f->r);
	f->r.hdr->feature_bits = 0;
	for (int i = 0; i < 7; i++)
		assert_int_equal(hv_ring_write_packet(&f->r, 6, 0, 0, p, 8, NULL), 0);
	hv_ring_set_pending_send(&f->r, 40);
	for (int i = 0; i < 7; i++) {
		assert_int_equal(hv_ring_read(&f->r, out, 8, false, NULL, &sig), 8);
		assert_false(sig);
	}
}

/* Random writes and reads against a model FIFO; a write fails exactly when it must. */
static void test_model(void **state)
{
	fixture *f = *state;
	enum { MAXQ = 64 };
	size_t qlen[MAXQ];
	unsigned qseed[MAXQ];
	size_t head = 0, count = 0, used = 0;
	unsigned seed = 12345;

	(void)state;
	for (int step = 0; step < 200000; step++) {
		uint8_t payload[256], out[256];

		seed = seed * 1103515245U + 12345U;
		if ((seed >> 16) % 2 == 0) {
			size_t len = (seed >> 8) % 120;
			size_t need = hv_vmbus_packet_size(len) + 8;
			int r;

			fill_pattern(payload, len, (unsigned)step);
			r = hv_ring_write_packet(&f->r, 6, 0, (uint64_t)step, payload, len, NULL);
			if (SMALL_DSIZE - used > need) {
				assert_int_equal(r, 0);
				assert_true(count < MAXQ);
				qlen[(head + count) % MAXQ] = len;
				qseed[(head + count) % MAXQ] = (unsigned)step;
				count++;
				used += need;
			} else {
				assert_int_equal(r, -EAGAIN);
			}
		} else {
			struct hv_vmpacket_descriptor d;
			ssize_t n = hv_ring_read(&f->r, out, sizeof(out), false, &d, NULL);

			if (!count) {
				assert_int_equal(n, -EAGAIN);
				continue;
			}
			assert_int_equal(n, (ssize_t)(hv_vmbus_packet_size(qlen[head]) - 16));
			assert_true(d.trans_id == qseed[head]);
			fill_pattern(payload, qlen[head], qseed[head]);
			assert_memory_equal(out, payload, qlen[head]);
			used -= hv_vmbus_packet_size(qlen[head]) + 8;
			head = (head + 1) % MAXQ;
			count--;
		}
		assert_int_equal(hv_ring_avail_read(&f->r), used);
	}
}

/* Two threads, one ring: every packet arrives once, in order, intact. */
#define STRESS_PACKETS 200000
#define STRESS_SECONDS 20

/* A lost wake-up or a ring that looks empty when full must fail, not hang. */
static bool past(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec - start->tv_sec > STRESS_SECONDS;
}

static void *producer(void *arg)
{
	hv_ring *r = arg;
	unsigned seed = 777;
	struct timespec start;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (uint64_t i = 0; i < STRESS_PACKETS; i++) {
		uint8_t payload[300];
		size_t len;

		seed = seed * 1103515245U + 12345U;
		len = 8 + (seed >> 16) % 290;
		fill_pattern(payload, len, (unsigned)i);
		memcpy(payload, &i, sizeof(i));
		while (hv_ring_write_packet(r, 6, 0, len, payload, len, NULL) == -EAGAIN) {
			if (past(&start))
				return NULL;
			sched_yield();
		}
	}
	return NULL;
}

static void test_two_threads(void **state)
{
	fixture *f = fixture_new(4096);
	struct timespec start;
	pthread_t th;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &start);
	assert_int_equal(pthread_create(&th, NULL, producer, &f->r), 0);
	for (uint64_t i = 0; i < STRESS_PACKETS; i++) {
		struct hv_vmpacket_descriptor d;
		uint8_t out[320], want[300];
		uint64_t seq;
		ssize_t n;

		while ((n = hv_ring_read(&f->r, out, sizeof(out), false, &d, NULL)) == -EAGAIN) {
			assert_false(past(&start));
			sched_yield();
		}
		assert_true(n > 0);
		assert_true(d.trans_id >= 8 && d.trans_id < 300);
		memcpy(&seq, out, sizeof(seq));
		assert_true(seq == i);
		fill_pattern(want, (size_t)d.trans_id, (unsigned)i);
		memcpy(want, &i, sizeof(i));
		assert_memory_equal(out, want, (size_t)d.trans_id);
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(hv_ring_avail_read(&f->r), 0);
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test_setup_teardown(test_attach, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_empty, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_one_packet, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_raw_read_and_small_buffer, setup_small,
						teardown),
		cmocka_unit_test_setup_teardown(test_wrap_every_offset, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_too_big_never_fits, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_full_ring, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_write_rejects, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_signal_on_write, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_signal_on_read, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_model, setup_small, teardown),
		cmocka_unit_test(test_two_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
