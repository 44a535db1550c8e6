/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One direction of a VMBus channel: the ring buffer shared with the other
 * side (the host, or the emulator playing it). Each ring has exactly one
 * producer and one consumer; a daemon reads the RX ring (host -> guest) and
 * writes the TX ring (guest -> host), the emulated host the opposite.
 *
 * Layout (Linux include/linux/hyperv.h struct hv_ring_buffer, also
 * tools/hv/vmbus_bufring.h struct vmbus_bufring): a one-page header
 * (write_index, read_index, interrupt_mask, pending_send_sz, 12 reserved
 * u32, feature_bits, padding to 4096), then the data area; the indices are
 * byte offsets into the data area. Equal indices mean empty, so a writer
 * must always leave a gap (hv_ringbuffer_write: "if there is only room for
 * the packet, assume it is full"). Every packet is followed by an 8-byte
 * trailer, the writer's previous write index << 32.
 *
 * Memory ordering: the consumer loads write_index with acquire before it
 * copies data and stores read_index with release after; the producer loads
 * read_index with acquire before it overwrites and stores write_index with
 * release after the data. The signalling decisions follow the kernel's
 * drivers/hv/ring_buffer.c hv_signal_on_write() and hv_pkt_iter_close(),
 * each after a full fence.
 *
 * Pure memory operations: no I/O, no logging, -errno results.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hv-ic.h"

#define HV_RING_HDR_SIZE 4096U

/* struct hv_ring_buffer (include/linux/hyperv.h), without the data area. */
struct hv_ring_hdr {
	uint32_t write_index;
	uint32_t read_index;
	uint32_t interrupt_mask;
	uint32_t pending_send_sz;
	uint32_t reserved1[12];
	uint32_t feature_bits; /* bit 0: feat_pending_send_sz */
	uint8_t reserved2[HV_RING_HDR_SIZE - 68];
};

/* feature_bits.feat_pending_send_sz; hv_ringbuffer_init() sets it on both rings. */
#define HV_RING_FEAT_PENDING_SEND_SZ 0x1U

typedef struct hv_ring {
	struct hv_ring_hdr *hdr;
	uint8_t *data;
	uint32_t dsize; /* ring size - HV_RING_HDR_SIZE; ring_datasize in the kernel */
} hv_ring;

/*
 * Attaches to size bytes at mem (header page + data area). -EINVAL if size
 * is not a multiple of 8 above the header page or the data area exceeds 2 GiB.
 * Touches nothing in the shared memory.
 */
int hv_ring_attach(hv_ring *r, void *mem, size_t size);

/*
 * What hv_ringbuffer_init() does for a fresh ring: indices 0, interrupt mask
 * and pending size 0, feature_bits = HV_RING_FEAT_PENDING_SEND_SZ. For the
 * side that owns the ring memory (the kernel; the emulated host).
 */
void hv_ring_init(hv_ring *r);

/* Bytes the consumer may read / the producer may write (write: gap included). */
uint32_t hv_ring_avail_read(const hv_ring *r);
uint32_t hv_ring_avail_write(const hv_ring *r);

/*
 * The next packet's descriptor, not consumed. -EAGAIN: no whole packet.
 * -EBADMSG: a corrupt ring (indices out of range or not 8-aligned, a
 * descriptor whose lengths contradict each other or claim more than the
 * ring holds); the ring is then unusable and nothing is ever read past the
 * published write index.
 */
int hv_ring_peek(const hv_ring *r, struct hv_vmpacket_descriptor *ret);

/*
 * Consumes one packet. raw: copies the whole packet (descriptor first);
 * else only the payload (from offset8 << 3). Returns the bytes copied.
 * -ENOBUFS when size is too small: nothing is consumed, *ret_desc (if not
 * NULL) tells the size; hv_ring_skip() drops it. -EAGAIN, -EBADMSG as for
 * hv_ring_peek(). *ret_signal (may be NULL) says whether the producer must
 * be told (it set pending_send_sz and now has room; hv_pkt_iter_close()).
 */
ssize_t hv_ring_read(hv_ring *r, void *buf, size_t size, bool raw,
		     struct hv_vmpacket_descriptor *ret_desc, bool *ret_signal);

/* Consumes one packet without copying it. */
int hv_ring_skip(hv_ring *r, bool *ret_signal);

/*
 * Writes one packet given as pieces (their sum a multiple of 8, the
 * descriptor first; hv_ring_write_packet() builds one), then the trailer,
 * then publishes the new write index. -EAGAIN when it does not fit with a
 * gap left (nothing written), -EINVAL when the total is not a multiple of 8,
 * -EBADMSG when the consumer's index is corrupt. *ret_signal: the ring was
 * empty and the consumer has not masked interrupts (hv_signal_on_write()).
 */
typedef struct hv_ring_piece {
	const void *base;
	size_t len;
} hv_ring_piece;

int hv_ring_write(hv_ring *r, const hv_ring_piece *pieces, size_t n, bool *ret_signal);

/* Descriptor (offset8 2) + payload + zero padding to 8, as one packet. */
int hv_ring_write_packet(hv_ring *r, uint16_t type, uint16_t flags, uint64_t trans_id,
			 const void *payload, size_t len, bool *ret_signal);

/*
 * The consumer's interrupt mask (1: "I am draining, do not signal"), with a
 * full fence after the store so that a re-check of the ring that follows
 * cannot be ordered before it.
 */
void hv_ring_set_interrupt_mask(hv_ring *r, bool masked);
bool hv_ring_interrupt_masked(const hv_ring *r);

/* The producer asks to be signalled once size bytes are free (0: no longer waiting). */
void hv_ring_set_pending_send(hv_ring *r, uint32_t size);

