/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Connector framing (kernel/cn-msg.c): hv_cn_parse() on any datagram, for
 * the VSS and KVP ids and with payload limits taken from the input.
 *
 * Checked: an accepted frame's payload lies inside the datagram and inside
 * its nlmsg_len, is not longer than the limit, and carries the id asked
 * for; rebuilding it with hv_cn_build() and parsing that gives the same
 * fields and bytes back; a datagram shorter than the header is never
 * accepted; the sender and group helpers stay in their documented range.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <string.h>

#include "fuzz-util.h"
#include "hv-cn.h"

static void check_one(const uint8_t *data, size_t size, uint32_t idx, uint32_t val, size_t max)
{
	static uint8_t rebuilt[HV_CN_HDR_LEN + UINT16_MAX + 8];
	uint32_t nlmsg_len;
	hv_cn_frame f, g;
	int r, n;

	r = hv_cn_parse(data, size, idx, val, max, &f);
	HV_FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EMSGSIZE || r == -ENOMSG);
	if (r < 0)
		return;

	HV_FUZZ_CHECK(size >= HV_CN_HDR_LEN);
	memcpy(&nlmsg_len, data, sizeof(nlmsg_len));
	HV_FUZZ_CHECK(nlmsg_len <= size);
	HV_FUZZ_CHECK(f.data == data + HV_CN_HDR_LEN);
	HV_FUZZ_CHECK(f.len <= nlmsg_len - HV_CN_HDR_LEN);
	HV_FUZZ_CHECK(f.len <= max);
	HV_FUZZ_CHECK(f.idx == idx && f.val == val);

	n = hv_cn_build(rebuilt, sizeof(rebuilt), f.idx, f.val, f.seq, f.ack, 0, f.data, f.len);
	HV_FUZZ_CHECK(n >= (int)(HV_CN_HDR_LEN + f.len));
	r = hv_cn_parse(rebuilt, (size_t)n, idx, val, max, &g);
	HV_FUZZ_CHECK(r == 0);
	HV_FUZZ_CHECK(g.seq == f.seq && g.ack == f.ack && g.len == f.len);
	HV_FUZZ_CHECK(g.nl_seq == f.seq);
	HV_FUZZ_CHECK(memcmp(g.data, f.data, f.len) == 0);

	/* One byte short of the header is always refused. */
	HV_FUZZ_CHECK(hv_cn_parse(rebuilt, HV_CN_HDR_LEN - 1, idx, val, max, &g) == -EBADMSG);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t limit = size ? data[0] * 64U : 0;
	uint32_t port = 0, peer = 0;

	check_one(data, size, HV_CN_VSS_IDX, HV_CN_VSS_VAL, 2 * 4096);
	check_one(data, size, HV_CN_KVP_IDX, HV_CN_KVP_VAL, limit);
	if (size > 0)
		check_one(data + 1, size - 1, HV_CN_VSS_IDX, HV_CN_VSS_VAL, UINT16_MAX);

	if (size >= 8) {
		memcpy(&port, data, 4);
		memcpy(&peer, data + 4, 4);
	}
	/* the kernel is port 0: taken only when not in user-peer mode */
	HV_FUZZ_CHECK(hv_cn_sender_allowed(port, false, peer) == (port == 0));
	if (hv_cn_sender_allowed(port, true, peer))
		HV_FUZZ_CHECK(port != 0 && (peer == 0 || peer == port));
	HV_FUZZ_CHECK(hv_cn_group_mask(port) == 0 || (port >= 1 && port <= 32));
	return 0;
}
