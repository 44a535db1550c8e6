/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vmbus-ring.h"

#include <errno.h>
#include <string.h>

#include "hv-ic-msg.h"

/* The header is exactly one page, data starts on the next (hyperv.h: "Pad it to PAGE_SIZE"). */
_Static_assert(offsetof(struct hv_ring_hdr, write_index) == 0, "write_index at 0");
_Static_assert(offsetof(struct hv_ring_hdr, read_index) == 4, "read_index at 4");
_Static_assert(offsetof(struct hv_ring_hdr, interrupt_mask) == 8, "interrupt_mask at 8");
_Static_assert(offsetof(struct hv_ring_hdr, pending_send_sz) == 12, "pending_send_sz at 12");
_Static_assert(offsetof(struct hv_ring_hdr, reserved1) == 16, "reserved1 at 16");
_Static_assert(offsetof(struct hv_ring_hdr, feature_bits) == 64, "feature_bits at 64");
_Static_assert(offsetof(struct hv_ring_hdr, reserved2) == 68, "reserved2 at 68");
_Static_assert(sizeof(struct hv_ring_hdr) == HV_RING_HDR_SIZE, "ring header is one 4 KiB page");

#define DESC_LEN ((uint32_t)sizeof(struct hv_vmpacket_descriptor))

static uint32_t load_acquire(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static uint32_t load_relaxed(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void store_release(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

int hv_ring_attach(hv_ring *r, void *mem, size_t size)
{
	if (!r || !mem)
		return -EINVAL;

	if (size <= HV_RING_HDR_SIZE + 2 * DESC_LEN || size % HV_VMBUS_PKT_ALIGN ||
	    size - HV_RING_HDR_SIZE > INT32_MAX)
		return -EINVAL;

	r->hdr = mem;
	r->data = (uint8_t *)mem + HV_RING_HDR_SIZE;
	r->dsize = (uint32_t)(size - HV_RING_HDR_SIZE);
	return 0;
}

void hv_ring_init(hv_ring *r)
{
	memset(r->hdr, 0, sizeof(*r->hdr));
	r->hdr->feature_bits = HV_RING_FEAT_PENDING_SEND_SZ;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static bool index_ok(const hv_ring *r, uint32_t i)
{
	return i < r->dsize && i % HV_VMBUS_PKT_ALIGN == 0;
}

/* Readable bytes between a read index and a write index (hv_get_bytes_to_read()). */
static uint32_t bytes_between(const hv_ring *r, uint32_t rd, uint32_t wr)
{
	return wr >= rd ? wr - rd : r->dsize - rd + wr;
}

uint32_t hv_ring_avail_read(const hv_ring *r)
{
	return bytes_between(r, load_relaxed(&r->hdr->read_index),
			     load_acquire(&r->hdr->write_index));
}

uint32_t hv_ring_avail_write(const hv_ring *r)
{
	return r->dsize - bytes_between(r, load_acquire(&r->hdr->read_index),
					load_relaxed(&r->hdr->write_index));
}

static uint32_t idx_add(const hv_ring *r, uint32_t i, uint32_t n)
{
	i += n;
	if (i >= r->dsize)
		i -= r->dsize;
	return i;
}

static uint32_t copy_from(const hv_ring *r, uint32_t at, void *dst, uint32_t len)
{
	uint32_t first = r->dsize - at;

	/* An empty payload may be read into no buffer at all (NULL, size 0). */
	if (len == 0)
		return at;

	if (len > first) {
		memcpy(dst, r->data + at, first);
		memcpy((uint8_t *)dst + first, r->data, len - first);
	} else {
		memcpy(dst, r->data + at, len);
	}

	return idx_add(r, at, len);
}

static uint32_t copy_to(hv_ring *r, uint32_t at, const void *src, uint32_t len)
{
	uint32_t first = r->dsize - at;

	if (len > first) {
		memcpy(r->data + at, src, first);
		memcpy(r->data, (const uint8_t *)src + first, len - first);
	} else {
		memcpy(r->data + at, src, len);
	}

	return idx_add(r, at, len);
}

/*
 * The consumer's view of the next packet: its descriptor, total length
 * (trailer excluded) and the read index it starts at.
 */
static int next_packet(const hv_ring *r, struct hv_vmpacket_descriptor *desc, uint32_t *ret_rd,
		       uint32_t *ret_total)
{
	uint32_t rd = load_relaxed(&r->hdr->read_index);
	uint32_t wr = load_acquire(&r->hdr->write_index);
	uint32_t avail;
	int total;

	if (!index_ok(r, rd) || !index_ok(r, wr))
		return -EBADMSG;

	avail = bytes_between(r, rd, wr);
	if (avail == 0)
		return -EAGAIN;

	/*
	 * The producer publishes its index only after a whole packet and its
	 * trailer, so anything shorter than a descriptor + trailer, or a
	 * descriptor claiming more than what is published, is corruption,
	 * not a packet in flight.
	 */
	if (avail < DESC_LEN + HV_VMBUS_PKT_TRAILER)
		return -EBADMSG;

	copy_from(r, rd, desc, DESC_LEN);
	total = hv_vmbus_desc_check(desc, avail - HV_VMBUS_PKT_TRAILER);
	if (total < 0)
		return total;

	*ret_rd = rd;
	*ret_total = (uint32_t)total;
	return 0;
}

int hv_ring_peek(const hv_ring *r, struct hv_vmpacket_descriptor *ret)
{
	struct hv_vmpacket_descriptor desc;
	uint32_t rd, total;
	int k;

	if (!r || !ret)
		return -EINVAL;

	k = next_packet(r, &desc, &rd, &total);
	if (k < 0)
		return k;

	*ret = desc;
	return 0;
}

/*
 * Publishes the consumer's new index, then decides whether the producer
 * waits for room (drivers/hv/ring_buffer.c hv_pkt_iter_close()): only if it
 * announced the feature and a pending size, did not have that room before
 * this read, and has it now.
 */
static bool publish_read(hv_ring *r, uint32_t start, uint32_t next)
{
	uint32_t pending, curr_write, bytes_read;

	store_release(&r->hdr->read_index, next);

	if (!(load_relaxed(&r->hdr->feature_bits) & HV_RING_FEAT_PENDING_SEND_SZ))
		return false;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	pending = load_relaxed(&r->hdr->pending_send_sz);
	if (!pending)
		return false;

	curr_write = hv_ring_avail_write(r);
	bytes_read = bytes_between(r, start, next);
	if (curr_write - bytes_read > pending)
		return false;

	/* Exactly full counts as "not enough room": the ring keeps a gap. */
	if (curr_write <= pending)
		return false;

	return true;
}

ssize_t hv_ring_read(hv_ring *r, void *buf, size_t size, bool raw,
		     struct hv_vmpacket_descriptor *ret_desc, bool *ret_signal)
{
	struct hv_vmpacket_descriptor desc;
	uint32_t rd, total, off, len, next;
	bool signal;
	int k;

	if (ret_signal)
		*ret_signal = false;

	if (!r || (!buf && size))
		return -EINVAL;

	k = next_packet(r, &desc, &rd, &total);
	if (k < 0)
		return k;

	if (ret_desc)
		*ret_desc = desc;

	off = raw ? 0 : (uint32_t)desc.offset8 << HV_VMBUS_PKT_SHIFT;
	len = total - off;
	if (len > size)
		return -ENOBUFS;

	next = copy_from(r, idx_add(r, rd, off), buf, len);
	next = idx_add(r, next, HV_VMBUS_PKT_TRAILER);
	signal = publish_read(r, rd, next);
	if (ret_signal)
		*ret_signal = signal;
	return (ssize_t)len;
}

int hv_ring_skip(hv_ring *r, bool *ret_signal)
{
	struct hv_vmpacket_descriptor desc;
	uint32_t rd, total;
	bool signal;
	int k;

	if (ret_signal)
		*ret_signal = false;

	if (!r)
		return -EINVAL;

	k = next_packet(r, &desc, &rd, &total);
	if (k < 0)
		return k;

	signal = publish_read(r, rd, idx_add(r, rd, total + HV_VMBUS_PKT_TRAILER));
	if (ret_signal)
		*ret_signal = signal;
	return 0;
}

int hv_ring_write(hv_ring *r, const hv_ring_piece *iov, size_t n_iov, bool *ret_signal)
{
	uint32_t wr, rd, used, next;
	uint64_t trailer;
	size_t total = HV_VMBUS_PKT_TRAILER;
	bool signal;

	if (ret_signal)
		*ret_signal = false;

	if (!r || (n_iov && !iov))
		return -EINVAL;

	for (size_t i = 0; i < n_iov; i++) {
		if (iov[i].len && !iov[i].base)
			return -EINVAL;
		total += iov[i].len;
		/* Can never fit: with the gap, a packet is at most dsize - 8 bytes. */
		if (total >= r->dsize)
			return -EMSGSIZE;
	}

	if (total % HV_VMBUS_PKT_ALIGN || total == HV_VMBUS_PKT_TRAILER)
		return -EINVAL;

	wr = load_relaxed(&r->hdr->write_index);
	/* Acquire: the consumer's copies out of the space we reuse are done. */
	rd = load_acquire(&r->hdr->read_index);
	if (!index_ok(r, wr) || !index_ok(r, rd))
		return -EBADMSG;

	used = bytes_between(r, rd, wr);
	/* hv_ringbuffer_write(): only room for the packet counts as full. */
	if (r->dsize - used <= total)
		return -EAGAIN;

	next = wr;
	for (size_t i = 0; i < n_iov; i++)
		if (iov[i].len)
			next = copy_to(r, next, iov[i].base, (uint32_t)iov[i].len);

	trailer = (uint64_t)wr << 32;
	next = copy_to(r, next, &trailer, sizeof(trailer));

	store_release(&r->hdr->write_index, next);

	/* hv_signal_on_write(): only when the consumer listens and the ring was empty. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	signal = !load_relaxed(&r->hdr->interrupt_mask) && wr == load_relaxed(&r->hdr->read_index);
	if (ret_signal)
		*ret_signal = signal;
	return 0;
}

int hv_ring_write_packet(hv_ring *r, uint16_t type, uint16_t flags, uint64_t trans_id,
			 const void *payload, size_t len, bool *ret_signal)
{
	static const uint8_t zeros[HV_VMBUS_PKT_ALIGN];
	struct hv_vmpacket_descriptor desc;
	size_t total = hv_vmbus_packet_size(len);
	hv_ring_piece iov[3];

	if (ret_signal)
		*ret_signal = false;

	if (!r || (len && !payload))
		return -EINVAL;

	if ((total >> HV_VMBUS_PKT_SHIFT) > UINT16_MAX || total >= r->dsize)
		return -EMSGSIZE;

	desc = (struct hv_vmpacket_descriptor){
	    .type = type,
	    .offset8 = DESC_LEN >> HV_VMBUS_PKT_SHIFT,
	    .len8 = (uint16_t)(total >> HV_VMBUS_PKT_SHIFT),
	    .flags = flags,
	    .trans_id = trans_id,
	};
	iov[0] = (hv_ring_piece){.base = &desc, .len = sizeof(desc)};
	iov[1] = (hv_ring_piece){.base = payload, .len = len};
	iov[2] = (hv_ring_piece){.base = zeros, .len = total - DESC_LEN - len};
	return hv_ring_write(r, iov, 3, ret_signal);
}

void hv_ring_set_interrupt_mask(hv_ring *r, bool masked)
{
	__atomic_store_n(&r->hdr->interrupt_mask, masked ? 1U : 0U, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool hv_ring_interrupt_masked(const hv_ring *r)
{
	return load_relaxed(&r->hdr->interrupt_mask) != 0;
}

void hv_ring_set_pending_send(hv_ring *r, uint32_t size)
{
	__atomic_store_n(&r->hdr->pending_send_sz, size, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}
