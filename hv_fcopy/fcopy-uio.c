/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FCOPY over the VMBus ring (Linux >= 6.10, uio_hv_generic; transport in
 * kernel/transport-uio.c, IC framing in kernel/ic.c). Each message is an IC
 * message, pipe header first: ICMSGTYPE_NEGOTIATE is answered in place
 * (framework 3.0, service 1.1, as drivers/hv/hv_fcopy.c and
 * tools/hv/hv_fcopy_uio_daemon.c offer), ICMSGTYPE_FCOPY carries an
 * hv_fcopy_hdr/hv_start_fcopy/hv_do_fcopy body whose names are raw UTF-16LE
 * (no kernel converts them here). The reply is the same message with the
 * status in the IC header and icflags TRANSACTION|RESPONSE.
 */
#include "fcopy-adapter.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "fcopy-utf16.h"
#include "hv-fcopy.h"
#include "hv-ic-msg.h"
#include "hv-status.h"
#include "transport-uio.h"

static const uint32_t fw_versions[] = { HV_UTIL_FW_VERSION };
static const uint32_t srv_versions[] = { HV_FCOPY_IC_SRV_VERSION };

static const hv_service fcopy_uio_service = {
	.name = "fcopy",
	.device = FCOPY_CHARDEV_DEFAULT,
	/* a whole inbound ring: no packet can be larger */
	.max_msg = HV_UIO_DEFAULT_RING_SIZE,
	.uio_instance_guid = FCOPY_VMBUS_DEVICE_ID,
	.uio_class_guid = FCOPY_VMBUS_CLASS_ID,
};

static int decode_name(const uint8_t *field, char *dst, size_t dst_size, const char **ret_why,
		       const char *what_missing, const char *what_bad, const char *what_long)
{
	int r = fcopy_utf16le_to_utf8(field, HV_FCOPY_W_MAX_PATH, dst, dst_size, NULL, NULL);

	if (r == -EBADMSG)
		*ret_why = what_missing;
	else if (r == -EILSEQ)
		*ret_why = what_bad;
	else if (r < 0)
		*ret_why = what_long;
	return r;
}

static int uio_decode(void *buf, size_t len, fcopy_request *ret_req, size_t *ret_reply_len,
		      const char **ret_why)
{
	const uint8_t *body;
	struct hv_fcopy_hdr hdr;
	hv_ic_msg msg;
	size_t blen;
	int r;

	*ret_why = "";
	memset(ret_req, 0, sizeof(*ret_req));
	ret_req->op = UINT32_MAX;

	r = hv_ic_msg_parse(buf, len, &msg);
	if (r < 0) {
		*ret_why = "shorter than the IC headers";
		return r;
	}

	if (msg.hdr.icmsgtype == HV_ICMSGTYPE_NEGOTIATE) {
		r = hv_ic_negotiate(buf, len, fw_versions, 1, srv_versions, 1, NULL, NULL);
		if (r == -EBADMSG) {
			*ret_why = "IC negotiation too short";
			return r;
		}
		*ret_reply_len = len;
		*ret_why = r == 0 ? "IC versions agreed: framework 3.0, service 1.1"
				  : "IC negotiation: no common version in the host's offer (refused)";
		return FCOPY_DECODED_REPLY;
	}

	if (msg.hdr.icmsgtype != HV_ICMSGTYPE_FCOPY) {
		*ret_why = "not an FCOPY IC message";
		return -EOPNOTSUPP;
	}

	body = (const uint8_t *)buf + HV_ICMSG_HDR_LEN;
	blen = len - HV_ICMSG_HDR_LEN;
	if (blen < sizeof(hdr)) {
		*ret_why = "shorter than the FCOPY header";
		return -EBADMSG;
	}
	memcpy(&hdr, body, sizeof(hdr));
	ret_req->op = hdr.operation;

	switch (hdr.operation) {
	case HV_FCOPY_START_FILE_COPY: {
		struct hv_start_fcopy m;

		if (blen < sizeof(m)) {
			*ret_why = "START shorter than hv_start_fcopy";
			return -EBADMSG;
		}
		memcpy(&m, body, sizeof(m));
		r = decode_name(body + offsetof(struct hv_start_fcopy, file_name), ret_req->file_name,
				sizeof(ret_req->file_name), ret_why, "file name without terminator",
				"file name is not valid UTF-16 (unpaired surrogate)",
				"file name too long");
		if (r < 0)
			return r;
		r = decode_name(body + offsetof(struct hv_start_fcopy, path_name), ret_req->path_name,
				sizeof(ret_req->path_name), ret_why, "path name without terminator",
				"path name is not valid UTF-16 (unpaired surrogate)",
				"path name too long");
		if (r < 0)
			return r;
		ret_req->copy_flags = m.copy_flags;
		ret_req->file_size = m.file_size;
		return FCOPY_DECODED_REQUEST;
	}
	case HV_FCOPY_WRITE_TO_FILE: {
		const size_t data_off = offsetof(struct hv_do_fcopy, data);
		uint64_t offset;
		uint32_t size;

		if (blen < data_off) {
			*ret_why = "WRITE shorter than its header";
			return -EBADMSG;
		}
		memcpy(&offset, body + offsetof(struct hv_do_fcopy, offset), sizeof(offset));
		memcpy(&size, body + offsetof(struct hv_do_fcopy, size), sizeof(size));
		ret_req->offset = offset;
		ret_req->size = size;
		if (size > HV_FCOPY_DATA_FRAGMENT) {
			*ret_why = "WRITE size above 6144 bytes";
			return -EMSGSIZE;
		}
		if (blen < data_off + size) {
			*ret_why = "WRITE shorter than its data size";
			return -EBADMSG;
		}
		ret_req->data = body + data_off;
		return FCOPY_DECODED_REQUEST;
	}
	default:
		/* COMPLETE, CANCEL; unknown ops are answered by the session */
		return FCOPY_DECODED_REQUEST;
	}
}

static ssize_t uio_encode_reply(void *buf, size_t len, size_t bufsize, uint32_t status)
{
	int r;

	if (len > bufsize)
		return -ENOBUFS;

	r = hv_ic_set_response(buf, len, status);
	if (r < 0)
		return r;

	return (ssize_t)len;
}

const fcopy_adapter fcopy_adapter_uio = {
	.name = "uio",
	.service = &fcopy_uio_service,
	.max_msg = HV_UIO_DEFAULT_RING_SIZE,
	.drain = true,
	.decode = uio_decode,
	.encode_reply = uio_encode_reply,
};
