/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VMBus ring (kernel/vmbus-ring.c) with a hostile host: the input sets
 * the data area size, every header field (both indices, interrupt mask,
 * pending send size, feature bits) and the data area, then a sequence of
 * operations: the guest's peek, read (raw or payload, any buffer size),
 * skip and write, interleaved with the host moving either index anywhere
 * and scribbling over the data area.
 *
 * The ring memory is one exact-size allocation, so ASan sees any access
 * past it. Checked after every operation:
 *  - a call that fails (-EAGAIN, -EBADMSG, -ENOBUFS, -EMSGSIZE, -EINVAL)
 *    changed no byte of the ring;
 *  - peek, read and skip of a packet accept only one that lies within the
 *    published write index, trailer included, with sane lengths; a read
 *    copies exactly the packet's bytes (or its payload) and moves the read
 *    index by packet + trailer, nothing else;
 *  - a write only fills bytes that were free (a gap always stays), writes
 *    the descriptor, payload, zero padding and trailer asked for, moves the
 *    write index by that much, nothing else.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "vmbus-ring.h"

typedef struct input {
	const uint8_t *p;
	size_t left;
} input;

static uint8_t take8(input *in)
{
	uint8_t v = 0;

	if (in->left) {
		v = *in->p++;
		in->left--;
	}
	return v;
}

static uint16_t take16(input *in)
{
	return (uint16_t)(take8(in) | take8(in) << 8);
}

static uint32_t take32(input *in)
{
	return (uint32_t)take16(in) | (uint32_t)take16(in) << 16;
}

typedef struct ring_state {
	uint8_t *mem;
	size_t size;
	hv_ring r;
	uint8_t *before; /* snapshot, same size */
} ring_state;

static void snapshot(ring_state *s)
{
	memcpy(s->before, s->mem, s->size);
}

static void check_unchanged(const ring_state *s)
{
	HV_FUZZ_CHECK(memcmp(s->before, s->mem, s->size) == 0);
}

/* Byte @i of the data area as it was before the operation, wrapping. */
static uint8_t old_data(const ring_state *s, uint32_t i)
{
	return s->before[HV_RING_HDR_SIZE + i % s->r.dsize];
}

static uint32_t hdr_field(const uint8_t *mem, size_t off)
{
	uint32_t v;

	memcpy(&v, mem + off, sizeof(v));
	return v;
}

#define OLD_FIELD(s, f) hdr_field((s)->before, offsetof(struct hv_ring_hdr, f))
#define NEW_FIELD(s, f) hdr_field((s)->mem, offsetof(struct hv_ring_hdr, f))

static uint32_t between(uint32_t dsize, uint32_t rd, uint32_t wr)
{
	return wr >= rd ? wr - rd : dsize - rd + wr;
}

/* Only the 4 bytes of the header field at @off changed. */
static void check_only_field_changed(const ring_state *s, size_t off)
{
	HV_FUZZ_CHECK(memcmp(s->before, s->mem, off) == 0);
	HV_FUZZ_CHECK(memcmp(s->before + off + 4, s->mem + off + 4, s->size - off - 4) == 0);
}

/* The descriptor at the old read index, as the guest must have seen it. */
static void old_desc(const ring_state *s, struct hv_vmpacket_descriptor *d)
{
	uint8_t raw[sizeof(*d)];
	uint32_t rd = OLD_FIELD(s, read_index);

	for (uint32_t i = 0; i < sizeof(raw); i++)
		raw[i] = old_data(s, rd + i);
	memcpy(d, raw, sizeof(*d));
}

/* A packet the guest accepted was whole and published before it looked. */
static uint32_t check_accepted(const ring_state *s, const struct hv_vmpacket_descriptor *d)
{
	uint32_t rd = OLD_FIELD(s, read_index), wr = OLD_FIELD(s, write_index);
	uint32_t total = (uint32_t)d->len8 << 3, hdr = (uint32_t)d->offset8 << 3;

	HV_FUZZ_CHECK(rd < s->r.dsize && rd % 8 == 0);
	HV_FUZZ_CHECK(wr < s->r.dsize && wr % 8 == 0);
	HV_FUZZ_CHECK(hdr >= sizeof(*d) && hdr <= total);
	HV_FUZZ_CHECK(total + HV_VMBUS_PKT_TRAILER <= between(s->r.dsize, rd, wr));
	return total;
}

static void op_peek(ring_state *s)
{
	struct hv_vmpacket_descriptor d, expect;
	int r;

	snapshot(s);
	r = hv_ring_peek(&s->r, &d);
	HV_FUZZ_CHECK(r == 0 || r == -EAGAIN || r == -EBADMSG);
	check_unchanged(s);
	if (r < 0)
		return;

	old_desc(s, &expect);
	HV_FUZZ_CHECK(memcmp(&d, &expect, sizeof(d)) == 0);
	check_accepted(s, &d);
}

static void check_signal(const ring_state *s, bool signal)
{
	if (!signal)
		return;
	HV_FUZZ_CHECK(NEW_FIELD(s, feature_bits) & HV_RING_FEAT_PENDING_SEND_SZ);
	HV_FUZZ_CHECK(NEW_FIELD(s, pending_send_sz) != 0);
}

/* After a read or skip of the packet @d: only the read index moved, by packet + trailer. */
static void check_consumed(const ring_state *s, const struct hv_vmpacket_descriptor *d)
{
	uint32_t total = check_accepted(s, d);
	uint32_t rd = OLD_FIELD(s, read_index);

	check_only_field_changed(s, offsetof(struct hv_ring_hdr, read_index));
	HV_FUZZ_CHECK(NEW_FIELD(s, read_index) == (rd + total + HV_VMBUS_PKT_TRAILER) % s->r.dsize);
}

static void op_read(ring_state *s, input *in)
{
	uint8_t flags = take8(in);
	bool raw = flags & 1;
	size_t size = take16(in) % (s->r.dsize + 64);
	/* exact size: a copy past it is an ASan report */
	uint8_t *buf = malloc(size ? size : 1);
	struct hv_vmpacket_descriptor d = {0}, expect;
	bool signal = true;
	ssize_t n;

	snapshot(s);
	n = hv_ring_read(&s->r, size ? buf : NULL, size, raw, (flags & 2) ? &d : NULL, &signal);
	HV_FUZZ_CHECK(n >= 0 || n == -EAGAIN || n == -EBADMSG || n == -ENOBUFS);
	if (n < 0) {
		check_unchanged(s);
		HV_FUZZ_CHECK(!signal);
		if (n == -ENOBUFS && (flags & 2)) {
			old_desc(s, &expect);
			HV_FUZZ_CHECK(memcmp(&d, &expect, sizeof(d)) == 0);
			HV_FUZZ_CHECK(
			    ((uint32_t)d.len8 << 3) - (raw ? 0 : (uint32_t)d.offset8 << 3) > size);
		}
		free(buf);
		return;
	}

	old_desc(s, &expect);
	if (flags & 2)
		HV_FUZZ_CHECK(memcmp(&d, &expect, sizeof(d)) == 0);
	check_consumed(s, &expect);
	{
		uint32_t off = raw ? 0 : (uint32_t)expect.offset8 << 3;
		uint32_t rd = OLD_FIELD(s, read_index);

		HV_FUZZ_CHECK((size_t)n == ((uint32_t)expect.len8 << 3) - off);
		HV_FUZZ_CHECK((size_t)n <= size);
		for (uint32_t i = 0; i < (uint32_t)n; i++)
			HV_FUZZ_CHECK(buf[i] == old_data(s, rd + off + i));
	}
	check_signal(s, signal);
	free(buf);
}

static void op_skip(ring_state *s)
{
	struct hv_vmpacket_descriptor expect;
	bool signal = true;
	int r;

	snapshot(s);
	r = hv_ring_skip(&s->r, &signal);
	HV_FUZZ_CHECK(r == 0 || r == -EAGAIN || r == -EBADMSG);
	if (r < 0) {
		check_unchanged(s);
		HV_FUZZ_CHECK(!signal);
		return;
	}
	old_desc(s, &expect);
	check_consumed(s, &expect);
	check_signal(s, signal);
}

/* What a successful write must have done: @pkt (descriptor .. padding) then the trailer at wr. */
static void check_written(const ring_state *s, const uint8_t *pkt, uint32_t len)
{
	uint32_t dsize = s->r.dsize;
	uint32_t wr = OLD_FIELD(s, write_index), rd = OLD_FIELD(s, read_index);
	uint32_t total = len + HV_VMBUS_PKT_TRAILER;
	uint64_t trailer = (uint64_t)wr << 32;
	const uint8_t *data = s->mem + HV_RING_HDR_SIZE;

	HV_FUZZ_CHECK(wr < dsize && wr % 8 == 0 && rd < dsize && rd % 8 == 0);
	/* free space only, with a gap left: unread bytes are never overwritten */
	HV_FUZZ_CHECK(between(dsize, rd, wr) + total < dsize);
	HV_FUZZ_CHECK(NEW_FIELD(s, write_index) == (wr + total) % dsize);
	/* the header: only the write index */
	HV_FUZZ_CHECK(memcmp(s->before + 4, s->mem + 4, HV_RING_HDR_SIZE - 4) == 0);

	for (uint32_t i = 0; i < dsize; i++) {
		uint32_t rel = (i + dsize - wr) % dsize;
		uint8_t want;

		if (rel < len)
			want = pkt[rel];
		else if (rel < total)
			want = ((const uint8_t *)&trailer)[rel - len];
		else
			want = s->before[HV_RING_HDR_SIZE + i];
		HV_FUZZ_CHECK(data[i] == want);
	}
}

static void op_write_packet(ring_state *s, input *in)
{
	uint16_t type = take16(in), flags = take16(in);
	uint64_t trans_id = take32(in);
	size_t len = take16(in) % (s->r.dsize + 64);
	uint8_t *payload = malloc(len ? len : 1);
	size_t plen = (len + 7) & ~(size_t)7;
	uint8_t *pkt = calloc(1, sizeof(struct hv_vmpacket_descriptor) + plen);
	struct hv_vmpacket_descriptor d;
	bool signal;
	int r;

	for (size_t i = 0; i < len; i++)
		payload[i] = take8(in);

	snapshot(s);
	r = hv_ring_write_packet(&s->r, type, flags, trans_id, len ? payload : NULL, len, &signal);
	HV_FUZZ_CHECK(r == 0 || r == -EAGAIN || r == -EBADMSG || r == -EMSGSIZE);
	if (r < 0) {
		check_unchanged(s);
		goto out;
	}

	d = (struct hv_vmpacket_descriptor){
	    .type = type,
	    .offset8 = 2,
	    .len8 = (uint16_t)((sizeof(d) + plen) >> 3),
	    .flags = flags,
	    .trans_id = trans_id,
	};
	memcpy(pkt, &d, sizeof(d));
	if (len)
		memcpy(pkt + sizeof(d), payload, len);
	check_written(s, pkt, (uint32_t)(sizeof(d) + plen));
	/* signalled only when the ring was empty and the host listens */
	if (signal) {
		HV_FUZZ_CHECK(OLD_FIELD(s, write_index) == OLD_FIELD(s, read_index));
		HV_FUZZ_CHECK(NEW_FIELD(s, interrupt_mask) == 0);
	}
out:
	free(pkt);
	free(payload);
}

/* hv_ring_write() with pieces of any length, the sum possibly not a multiple of 8. */
static void op_write_pieces(ring_state *s, input *in)
{
	hv_ring_piece pieces[3];
	uint8_t *bufs[3] = {NULL, NULL, NULL};
	uint8_t *pkt;
	size_t n = take8(in) % 4, sum = 0, at = 0;
	bool signal;
	int r;

	for (size_t i = 0; i < n; i++) {
		size_t len = take16(in) % (s->r.dsize + 16);

		bufs[i] = malloc(len ? len : 1);
		for (size_t j = 0; j < len; j++)
			bufs[i][j] = take8(in);
		pieces[i] = (hv_ring_piece){.base = bufs[i], .len = len};
		sum += len;
	}
	pkt = malloc(sum ? sum : 1);
	for (size_t i = 0; i < n; i++) {
		memcpy(pkt + at, bufs[i], pieces[i].len);
		at += pieces[i].len;
	}

	snapshot(s);
	r = hv_ring_write(&s->r, n ? pieces : NULL, n, &signal);
	HV_FUZZ_CHECK(r == 0 || r == -EAGAIN || r == -EBADMSG || r == -EMSGSIZE || r == -EINVAL);
	if (r < 0) {
		check_unchanged(s);
	} else {
		HV_FUZZ_CHECK(sum % 8 == 0 && sum > 0);
		check_written(s, pkt, (uint32_t)sum);
	}

	free(pkt);
	for (size_t i = 0; i < n; i++)
		free(bufs[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	input in = {data, size};
	ring_state s;
	struct hv_ring_hdr *h;
	uint32_t dsize = 8 * (5 + (uint32_t)take8(&in));

	s.size = HV_RING_HDR_SIZE + dsize;
	s.mem = malloc(s.size);
	s.before = malloc(s.size);
	HV_FUZZ_CHECK(s.mem && s.before);
	memset(s.mem, 0, s.size);
	HV_FUZZ_CHECK(hv_ring_attach(&s.r, s.mem, s.size) == 0);
	HV_FUZZ_CHECK(s.r.dsize == dsize);

	/* the host sets up the header, any values */
	h = (struct hv_ring_hdr *)s.mem;
	h->write_index = take32(&in);
	h->read_index = take32(&in);
	h->interrupt_mask = take32(&in);
	h->pending_send_sz = take32(&in);
	h->feature_bits = take32(&in);
	/* ... and the data area */
	for (uint32_t i = 0; i < dsize && in.left; i++)
		s.mem[HV_RING_HDR_SIZE + i] = take8(&in);

	for (int steps = 0; in.left && steps < 64; steps++) {
		switch (take8(&in) % 9) {
		case 0:
			op_peek(&s);
			break;
		case 1:
		case 2:
			op_read(&s, &in);
			break;
		case 3:
			op_skip(&s);
			break;
		case 4:
			op_write_packet(&s, &in);
			break;
		case 5:
			op_write_pieces(&s, &in);
			break;
		case 6:
			/* the host produces: its write index, anywhere */
			h->write_index = take32(&in);
			break;
		case 7:
			/* the host consumes: its read index, anywhere */
			h->read_index = take32(&in);
			break;
		case 8: {
			/* the host writes data or flips header fields */
			uint16_t at = take16(&in);
			uint8_t v = take8(&in);

			if (at & 0x8000)
				s.mem[HV_RING_HDR_SIZE + (at & 0x7fff) % dsize] = v;
			else
				s.mem[8 + (at % 60)] = v;
			break;
		}
		}
		/* attaching never touches the memory, and the view stays put */
		HV_FUZZ_CHECK(s.r.hdr == (void *)s.mem && s.r.dsize == dsize);
	}

	free(s.before);
	free(s.mem);
	return 0;
}
