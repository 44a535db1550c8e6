/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * IC framing (kernel/ic.c) as the UIO transport meets it: a VMBus packet
 * read from the ring (hv_vmbus_packet_parse), the IC headers in its payload
 * (hv_ic_msg_parse), and, for a negotiation, the reply built in place
 * (hv_ic_negotiate) with the FCOPY versions.
 *
 * Checked: an accepted packet's payload lies inside the input and its
 * lengths agree; a parsed IC message's body lies inside the payload; a
 * negotiation answered 0 chose versions of ours that the host offered and
 * its reply parses back to them; -EPROTO answers a refusal the reply says
 * so; nothing is written past the message.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "hv-ic-msg.h"

static const uint32_t fw[] = { HV_IC_VERSION(3, 0), HV_IC_VERSION(1, 0) };
static const uint32_t srv[] = { HV_IC_FCOPY_SRV_VERSION, HV_IC_VERSION(1, 0) };

static bool offered(const uint8_t *msg, size_t len, uint32_t v, bool framework)
{
	struct hv_icmsg_negotiate neg;
	size_t first, count;

	memcpy(&neg, msg + HV_ICMSG_HDR_LEN, sizeof(neg));
	first = framework ? 0 : neg.icframe_vercnt;
	count = framework ? neg.icframe_vercnt : neg.icmsg_vercnt;
	for (size_t i = first; i < first + count; i++) {
		size_t off = HV_ICMSG_HDR_LEN + sizeof(neg) + i * sizeof(struct hv_ic_version);
		struct hv_ic_version ver;

		if (off + sizeof(ver) > len)
			return false;
		memcpy(&ver, msg + off, sizeof(ver));
		if (HV_IC_VERSION(ver.major, ver.minor) == v)
			return true;
	}
	return false;
}

static void negotiate(const uint8_t *payload, size_t len)
{
	/* a copy with a guard zone behind it: the reply must stay within len */
	uint8_t *buf = malloc(len + 64);
	uint32_t chosen_fw = 0, chosen_srv = 0, rfw = 0, rsrv = 0, status = 0;
	int r;

	memcpy(buf, payload, len);
	memset(buf + len, 0xa5, 64);
	r = hv_ic_negotiate(buf, len, fw, 2, srv, 2, &chosen_fw, &chosen_srv);
	HV_FUZZ_CHECK(r == 0 || r == -EPROTO || r == -EBADMSG);
	for (size_t i = 0; i < 64; i++)
		HV_FUZZ_CHECK(buf[len + i] == 0xa5);

	if (r == 0) {
		HV_FUZZ_CHECK(chosen_fw == fw[0] || chosen_fw == fw[1]);
		HV_FUZZ_CHECK(chosen_srv == srv[0] || chosen_srv == srv[1]);
		HV_FUZZ_CHECK(offered(payload, len, chosen_fw, true));
		HV_FUZZ_CHECK(offered(payload, len, chosen_srv, false));
		HV_FUZZ_CHECK(hv_ic_parse_negotiate_reply(buf, len, &rfw, &rsrv, &status) == 0);
		HV_FUZZ_CHECK(rfw == chosen_fw && rsrv == chosen_srv && status == 0);
	} else if (r == -EPROTO) {
		int p = hv_ic_parse_negotiate_reply(buf, len, &rfw, &rsrv, &status);

		HV_FUZZ_CHECK(p == -EPROTO || p == -EBADMSG);
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hv_vmbus_packet pkt;
	hv_ic_msg msg;
	int r;

	r = hv_vmbus_packet_parse(data, size, &pkt);
	HV_FUZZ_CHECK(r >= 0 || r == -EBADMSG);
	if (r < 0) {
		/* the bare IC message too: the char-device-free paths hand on payloads */
		if (hv_ic_msg_parse(data, size, &msg) == 0) {
			HV_FUZZ_CHECK(msg.body_offset + msg.body_len == size);
			if (msg.hdr.icmsgtype == HV_ICMSGTYPE_NEGOTIATE)
				negotiate(data, size);
		}
		return 0;
	}

	HV_FUZZ_CHECK(pkt.hdr_len <= pkt.total_len && pkt.total_len <= size);
	HV_FUZZ_CHECK(pkt.payload == data + pkt.hdr_len);
	HV_FUZZ_CHECK(pkt.payload_len == pkt.total_len - pkt.hdr_len);

	r = hv_ic_msg_parse(pkt.payload, pkt.payload_len, &msg);
	HV_FUZZ_CHECK(r == 0 || r == -EBADMSG);
	if (r < 0)
		return 0;

	HV_FUZZ_CHECK(msg.body_offset == HV_ICMSG_HDR_LEN);
	HV_FUZZ_CHECK(msg.body_offset + msg.body_len == pkt.payload_len);
	if (msg.hdr.icmsgtype == HV_ICMSGTYPE_NEGOTIATE)
		negotiate(pkt.payload, pkt.payload_len);
	return 0;
}
