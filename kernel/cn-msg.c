/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "hv-cn.h"

#include <errno.h>
#include <linux/netlink.h>
#include <string.h>

_Static_assert(NLMSG_HDRLEN + sizeof(struct hv_cn_msg) == HV_CN_HDR_LEN,
	       "nlmsghdr + cn_msg is 36 bytes");

int hv_cn_build(void *buf, size_t size, uint32_t idx, uint32_t val, uint32_t seq, uint32_t ack,
		uint32_t portid, const void *data, size_t len)
{
	struct nlmsghdr nlh = {0};
	struct hv_cn_msg cn = {0};
	size_t total;

	if (!buf || (len && !data))
		return -EINVAL;

	if (len > UINT16_MAX)
		return -EMSGSIZE;

	total = NLMSG_SPACE(sizeof(cn) + len);
	if (total > size || total > INT32_MAX)
		return -EMSGSIZE;

	nlh.nlmsg_len = (uint32_t)NLMSG_LENGTH(sizeof(cn) + len);
	nlh.nlmsg_type = NLMSG_DONE;
	nlh.nlmsg_flags = 0;
	nlh.nlmsg_seq = seq;
	nlh.nlmsg_pid = portid;

	cn.id.idx = idx;
	cn.id.val = val;
	cn.seq = seq;
	cn.ack = ack;
	cn.len = (uint16_t)len;

	memset(buf, 0, total);
	memcpy(buf, &nlh, sizeof(nlh));
	memcpy((uint8_t *)buf + NLMSG_HDRLEN, &cn, sizeof(cn));
	if (len)
		memcpy((uint8_t *)buf + HV_CN_HDR_LEN, data, len);
	return (int)total;
}

int hv_cn_parse(const void *buf, size_t n, uint32_t idx, uint32_t val, size_t max_len,
		hv_cn_frame *ret)
{
	const uint8_t *p = buf;
	struct nlmsghdr nlh;
	struct hv_cn_msg cn;

	if (!buf || !ret)
		return -EINVAL;

	if (n < NLMSG_HDRLEN)
		return -EBADMSG;

	memcpy(&nlh, p, sizeof(nlh));
	if (nlh.nlmsg_len < NLMSG_HDRLEN || nlh.nlmsg_len > n)
		return -EBADMSG;

	if (nlh.nlmsg_type == NLMSG_ERROR || nlh.nlmsg_type == NLMSG_NOOP ||
	    nlh.nlmsg_type == NLMSG_OVERRUN)
		return -EBADMSG;

	if (nlh.nlmsg_len < HV_CN_HDR_LEN)
		return -EBADMSG;

	memcpy(&cn, p + NLMSG_HDRLEN, sizeof(cn));
	/* The payload must lie inside this netlink message. */
	if ((size_t)cn.len > nlh.nlmsg_len - HV_CN_HDR_LEN)
		return -EBADMSG;

	if (cn.id.idx != idx || cn.id.val != val)
		return -ENOMSG;

	if (cn.len > max_len)
		return -EMSGSIZE;

	*ret = (hv_cn_frame){
	    .idx = cn.id.idx,
	    .val = cn.id.val,
	    .seq = cn.seq,
	    .ack = cn.ack,
	    .flags = cn.flags,
	    .nl_seq = nlh.nlmsg_seq,
	    .data = p + HV_CN_HDR_LEN,
	    .len = cn.len,
	};
	return 0;
}

bool hv_cn_sender_allowed(uint32_t portid, bool user_peer, uint32_t bound_peer)
{
	if (!user_peer)
		return portid == 0;

	return portid != 0 && (bound_peer == 0 || portid == bound_peer);
}

uint32_t hv_cn_group_mask(uint32_t idx)
{
	if (idx == 0 || idx > 32)
		return 0;

	return 1U << (idx - 1);
}
