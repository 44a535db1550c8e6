/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "hv-ic-msg.h"

#include <errno.h>
#include <string.h>

#include "hv-status.h"

#define DESC_LEN sizeof(struct hv_vmpacket_descriptor)

int hv_vmbus_desc_check(const struct hv_vmpacket_descriptor *desc, size_t avail)
{
	size_t hdr, total;

	if (!desc)
		return -EINVAL;

	hdr = (size_t)desc->offset8 << HV_VMBUS_PKT_SHIFT;
	total = (size_t)desc->len8 << HV_VMBUS_PKT_SHIFT;
	/* VMBUS_CHANPKT_HLEN_MIN and hlen <= tlen (tools/hv/vmbus_bufring.c). */
	if (hdr < DESC_LEN || hdr > total)
		return -EBADMSG;

	if (total > avail)
		return -EBADMSG;

	return (int)total;
}

int hv_vmbus_packet_parse(const void *buf, size_t n, hv_vmbus_packet *ret)
{
	struct hv_vmpacket_descriptor desc;
	int r;

	if (!buf || !ret)
		return -EINVAL;

	if (n < DESC_LEN)
		return -EBADMSG;

	memcpy(&desc, buf, sizeof(desc));
	r = hv_vmbus_desc_check(&desc, n);
	if (r < 0)
		return r;

	*ret = (hv_vmbus_packet){
		.type = desc.type,
		.flags = desc.flags,
		.hdr_len = (uint32_t)desc.offset8 << HV_VMBUS_PKT_SHIFT,
		.total_len = (uint32_t)r,
		.trans_id = desc.trans_id,
	};
	ret->payload = (const uint8_t *)buf + ret->hdr_len;
	ret->payload_len = ret->total_len - ret->hdr_len;
	return 0;
}

size_t hv_vmbus_packet_size(size_t payload_len)
{
	return DESC_LEN + ((payload_len + HV_VMBUS_PKT_ALIGN - 1) & ~(size_t)(HV_VMBUS_PKT_ALIGN - 1));
}

int hv_vmbus_packet_build(void *buf, size_t size, uint16_t type, uint16_t flags, uint64_t trans_id,
			  const void *payload, size_t len)
{
	struct hv_vmpacket_descriptor desc;
	size_t total;

	if (!buf || (len && !payload))
		return -EINVAL;

	if (len > (size_t)UINT16_MAX << HV_VMBUS_PKT_SHIFT)
		return -EMSGSIZE;

	total = hv_vmbus_packet_size(len);
	if (total > size || (total >> HV_VMBUS_PKT_SHIFT) > UINT16_MAX)
		return -EMSGSIZE;

	desc = (struct hv_vmpacket_descriptor){
		.type = type,
		.offset8 = DESC_LEN >> HV_VMBUS_PKT_SHIFT,
		.len8 = (uint16_t)(total >> HV_VMBUS_PKT_SHIFT),
		.flags = flags,
		.trans_id = trans_id,
	};
	memcpy(buf, &desc, sizeof(desc));
	if (len)
		memcpy((uint8_t *)buf + DESC_LEN, payload, len);
	memset((uint8_t *)buf + DESC_LEN + len, 0, total - DESC_LEN - len);
	return (int)total;
}

int hv_ic_msg_parse(const void *buf, size_t len, hv_ic_msg *ret)
{
	if (!buf || !ret)
		return -EINVAL;

	if (len < HV_ICMSG_HDR_LEN)
		return -EBADMSG;

	memcpy(&ret->pipe, buf, sizeof(ret->pipe));
	memcpy(&ret->hdr, (const uint8_t *)buf + sizeof(ret->pipe), sizeof(ret->hdr));
	ret->body_offset = HV_ICMSG_HDR_LEN;
	ret->body_len = len - HV_ICMSG_HDR_LEN;
	return 0;
}

static void put_hdr(void *buf, const struct hv_icmsg_hdr *hdr)
{
	memcpy((uint8_t *)buf + sizeof(struct hv_vmbuspipe_hdr), hdr, sizeof(*hdr));
}

static void get_hdr(const void *buf, struct hv_icmsg_hdr *hdr)
{
	memcpy(hdr, (const uint8_t *)buf + sizeof(struct hv_vmbuspipe_hdr), sizeof(*hdr));
}

int hv_ic_set_response(void *buf, size_t len, uint32_t status)
{
	struct hv_icmsg_hdr hdr;

	if (!buf)
		return -EINVAL;

	if (len < HV_ICMSG_HDR_LEN)
		return -EBADMSG;

	get_hdr(buf, &hdr);
	hdr.status = status;
	hdr.icflags = HV_ICMSGHDRFLAG_TRANSACTION | HV_ICMSGHDRFLAG_RESPONSE;
	put_hdr(buf, &hdr);
	return 0;
}

static struct hv_ic_version ver_at(const uint8_t *data, size_t i)
{
	struct hv_ic_version v;

	memcpy(&v, data + i * sizeof(v), sizeof(v));
	return v;
}

/* The first of ours (in our order) that the host lists in data[from, from + count). */
static bool pick(const uint8_t *data, size_t from, size_t count, const uint32_t *ours, size_t n_ours,
		 struct hv_ic_version *ret)
{
	for (size_t i = 0; i < n_ours; i++)
		for (size_t j = from; j < from + count; j++) {
			struct hv_ic_version v = ver_at(data, j);

			if (v.major == HV_IC_VERSION_MAJOR(ours[i]) &&
			    v.minor == HV_IC_VERSION_MINOR(ours[i])) {
				*ret = v;
				return true;
			}
		}

	return false;
}

int hv_ic_negotiate(void *buf, size_t len, const uint32_t *fw, size_t n_fw, const uint32_t *srv,
		    size_t n_srv, uint32_t *ret_fw, uint32_t *ret_srv)
{
	const size_t neg_off = HV_ICMSG_HDR_LEN;
	const size_t data_off = neg_off + sizeof(struct hv_icmsg_negotiate);
	struct hv_icmsg_negotiate neg;
	struct hv_ic_version chosen[2] = {{0}};
	struct hv_icmsg_hdr hdr;
	uint8_t *p = buf;
	bool ok = false;

	if (!buf || (n_fw && !fw) || (n_srv && !srv))
		return -EINVAL;

	/* The kernel's first check: room for icframe_vercnt and icmsg_vercnt. */
	if (len < neg_off + offsetof(struct hv_icmsg_negotiate, reserved))
		return -EBADMSG;

	get_hdr(buf, &hdr);
	if (hdr.icmsgtype != HV_ICMSGTYPE_NEGOTIATE)
		return -EBADMSG;

	/* The reserved field may be cut off; copy only what is there. */
	memset(&neg, 0, sizeof(neg));
	memcpy(&neg, p + neg_off, len - neg_off < sizeof(neg) ? len - neg_off : sizeof(neg));

	if (neg.icframe_vercnt > 0 && neg.icmsg_vercnt > 0 &&
	    neg.icframe_vercnt <= HV_IC_MAX_VER_COUNT && neg.icmsg_vercnt <= HV_IC_MAX_VER_COUNT &&
	    HV_ICMSG_NEGOTIATE_PKT_SIZE(neg.icframe_vercnt, neg.icmsg_vercnt) <= len)
		ok = pick(p + data_off, 0, neg.icframe_vercnt, fw, n_fw, &chosen[0]) &&
		     pick(p + data_off, neg.icframe_vercnt, neg.icmsg_vercnt, srv, n_srv, &chosen[1]);

	neg.icframe_vercnt = ok ? 1 : 0;
	neg.icmsg_vercnt = ok ? 1 : 0;
	memcpy(p + neg_off, &neg, offsetof(struct hv_icmsg_negotiate, reserved));
	for (size_t i = 0; i < 2; i++)
		if (ok || data_off + (i + 1) * sizeof(chosen[i]) <= len)
			memcpy(p + data_off + i * sizeof(chosen[i]), &chosen[i], sizeof(chosen[i]));

	hdr.icmsgsize = HV_ICMSG_NEGOTIATE_REPLY_SIZE;
	hdr.status = ok ? HV_S_OK : HV_E_FAIL;
	hdr.icflags = HV_ICMSGHDRFLAG_TRANSACTION | HV_ICMSGHDRFLAG_RESPONSE;
	put_hdr(buf, &hdr);

	if (!ok)
		return -EPROTO;

	if (ret_fw)
		*ret_fw = HV_IC_VERSION(chosen[0].major, chosen[0].minor);
	if (ret_srv)
		*ret_srv = HV_IC_VERSION(chosen[1].major, chosen[1].minor);
	return 0;
}

/* Pipe and IC headers for a request whose body_len bytes the caller fills in. */
static int put_request_headers(void *buf, size_t size, uint16_t type, uint32_t fw_version,
			       uint32_t msg_version, uint8_t transaction_id, size_t body_len)
{
	struct hv_vmbuspipe_hdr pipe;
	struct hv_icmsg_hdr hdr;
	size_t total;

	if (body_len > UINT16_MAX)
		return -EMSGSIZE;

	total = HV_ICMSG_HDR_LEN + body_len;
	if (total > size)
		return -EMSGSIZE;

	pipe = (struct hv_vmbuspipe_hdr){
		.flags = 0,
		.msgsize = (uint32_t)(sizeof(hdr) + body_len),
	};
	hdr = (struct hv_icmsg_hdr){
		.icverframe = {HV_IC_VERSION_MAJOR(fw_version), HV_IC_VERSION_MINOR(fw_version)},
		.icmsgtype = type,
		.icvermsg = {HV_IC_VERSION_MAJOR(msg_version), HV_IC_VERSION_MINOR(msg_version)},
		.icmsgsize = (uint16_t)body_len,
		.status = 0,
		.ictransaction_id = transaction_id,
		.icflags = HV_ICMSGHDRFLAG_TRANSACTION | HV_ICMSGHDRFLAG_REQUEST,
	};
	memcpy(buf, &pipe, sizeof(pipe));
	put_hdr(buf, &hdr);
	return (int)total;
}

int hv_ic_build_request(void *buf, size_t size, uint16_t type, uint32_t fw_version,
			uint32_t msg_version, uint8_t transaction_id, const void *body,
			size_t body_len)
{
	int r;

	if (!buf || (body_len && !body))
		return -EINVAL;

	r = put_request_headers(buf, size, type, fw_version, msg_version, transaction_id, body_len);
	if (r < 0)
		return r;

	if (body_len)
		memmove((uint8_t *)buf + HV_ICMSG_HDR_LEN, body, body_len);
	return r;
}

int hv_ic_build_offer(void *buf, size_t size, const uint32_t *fw, size_t n_fw, const uint32_t *srv,
		      size_t n_srv, uint8_t transaction_id)
{
	struct hv_icmsg_negotiate neg = {0};
	uint8_t *data;
	size_t body_len;
	int r;

	if (!buf || (n_fw && !fw) || (n_srv && !srv) || n_fw > UINT16_MAX || n_srv > UINT16_MAX)
		return -EINVAL;

	body_len = sizeof(neg) + (n_fw + n_srv) * sizeof(struct hv_ic_version);
	/* The offer's version fields: the first framework and service versions offered. */
	r = put_request_headers(buf, size, HV_ICMSGTYPE_NEGOTIATE, n_fw ? fw[0] : 0,
				n_srv ? srv[0] : 0, transaction_id, body_len);
	if (r < 0)
		return r;

	neg.icframe_vercnt = (uint16_t)n_fw;
	neg.icmsg_vercnt = (uint16_t)n_srv;
	memcpy((uint8_t *)buf + HV_ICMSG_HDR_LEN, &neg, sizeof(neg));
	data = (uint8_t *)buf + HV_ICMSG_HDR_LEN + sizeof(neg);
	for (size_t i = 0; i < n_fw + n_srv; i++) {
		uint32_t v = i < n_fw ? fw[i] : srv[i - n_fw];
		struct hv_ic_version iv = {HV_IC_VERSION_MAJOR(v), HV_IC_VERSION_MINOR(v)};

		memcpy(data + i * sizeof(iv), &iv, sizeof(iv));
	}

	return r;
}

int hv_ic_parse_negotiate_reply(const void *buf, size_t len, uint32_t *ret_fw, uint32_t *ret_srv,
				uint32_t *ret_status)
{
	const size_t data_off = HV_ICMSG_HDR_LEN + sizeof(struct hv_icmsg_negotiate);
	struct hv_icmsg_negotiate neg;
	struct hv_ic_version v[2];
	hv_ic_msg m;
	int r;

	r = hv_ic_msg_parse(buf, len, &m);
	if (r < 0)
		return r;

	if (m.hdr.icmsgtype != HV_ICMSGTYPE_NEGOTIATE || !(m.hdr.icflags & HV_ICMSGHDRFLAG_RESPONSE))
		return -EBADMSG;

	if (ret_status)
		*ret_status = m.hdr.status;

	if (len < HV_ICMSG_HDR_LEN + offsetof(struct hv_icmsg_negotiate, reserved))
		return -EBADMSG;

	memset(&neg, 0, sizeof(neg));
	memcpy(&neg, (const uint8_t *)buf + HV_ICMSG_HDR_LEN,
	       offsetof(struct hv_icmsg_negotiate, reserved));
	if (neg.icframe_vercnt == 0 && neg.icmsg_vercnt == 0)
		return -EPROTO;

	if (neg.icframe_vercnt != 1 || neg.icmsg_vercnt != 1 || len < data_off + sizeof(v))
		return -EBADMSG;

	memcpy(v, (const uint8_t *)buf + data_off, sizeof(v));
	if (ret_fw)
		*ret_fw = HV_IC_VERSION(v[0].major, v[0].minor);
	if (ret_srv)
		*ret_srv = HV_IC_VERSION(v[1].major, v[1].minor);
	return 0;
}
