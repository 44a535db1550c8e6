/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The FCOPY char device of Linux <= 6.9 (drivers/hv/hv_fcopy.c):
 * registration is a 4-byte int FCOPY_CURRENT_VERSION (1), answered with the
 * driver's 4-byte version (version 0 would get no answer). START reaches us
 * as a whole hv_start_fcopy with the names converted to UTF-8 by the kernel
 * (at most 259 bytes, zero-filled), WRITE as a whole hv_do_fcopy, COMPLETE
 * and CANCEL as the host's message: fcopy_send_data() forwards those with
 * the length of the whole VMBus packet (recv_len), up to the driver's
 * 2-page receive buffer, and a read() with a smaller buffer would fail
 * (hv_utils_transport), so we read with room for that. Every reply is a
 * 4-byte status; any other length gets -EINVAL from fcopy_on_msg().
 */
#include "fcopy-adapter.h"

#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "fcopy-utf16.h"
#include "hv-fcopy.h"

static int parse_register_reply(const void *buf, size_t len, uint32_t *ret_version)
{
	uint32_t v;

	if (len != sizeof(uint32_t))
		return -EBADMSG;

	memcpy(&v, buf, sizeof(v));
	*ret_version = v;
	return 0;
}

static const int32_t register_version = HV_FCOPY_CURRENT_VERSION;

/* The driver's receive buffer (PAGE_SIZE * 2 in hv_fcopy_onchannelcallback()). */
#define FCOPY_CHARDEV_MAX_MSG (2 * 4096)
_Static_assert(FCOPY_CHARDEV_MAX_MSG >= sizeof(struct hv_do_fcopy), "a WRITE fits");

static const hv_service fcopy_chardev_service = {
	.name = "fcopy",
	.device = FCOPY_CHARDEV_DEFAULT,
	.max_msg = FCOPY_CHARDEV_MAX_MSG,
	.register_msg = &register_version,
	.register_len = sizeof(register_version),
	.register_reply_len = sizeof(uint32_t),
	.parse_register_reply = parse_register_reply,
	/* no netlink connector for FCOPY */
};

/* A name as the kernel left it: UTF-8 in the u16 array, NUL-terminated. */
static int copy_name(const void *field, char *dst, size_t dst_size, const char **ret_why,
		     const char *what_missing, const char *what_bad)
{
	uint8_t raw[sizeof(uint16_t) * HV_FCOPY_W_MAX_PATH];
	size_t len = 0;
	int r;

	memcpy(raw, field, sizeof(raw));
	r = fcopy_utf8_check(raw, sizeof(raw), &len, NULL);
	if (r == -EBADMSG) {
		*ret_why = what_missing;
		return r;
	}
	if (r < 0) {
		*ret_why = what_bad;
		return r;
	}
	if (len + 1 > dst_size) {
		*ret_why = "name too long";
		return -ENAMETOOLONG;
	}

	memcpy(dst, raw, len + 1);
	return 0;
}

static int chardev_decode(void *buf, size_t len, fcopy_request *ret_req, size_t *ret_reply_len,
			  const char **ret_why)
{
	struct hv_fcopy_hdr hdr;
	int r;

	/* every char device message is answered through encode_reply() */
	(void)ret_reply_len;
	*ret_why = "";
	memset(ret_req, 0, sizeof(*ret_req));
	/* not known until the header is there */
	ret_req->op = UINT32_MAX;

	if (len < sizeof(hdr)) {
		*ret_why = "shorter than the FCOPY header";
		return -EBADMSG;
	}

	memcpy(&hdr, buf, sizeof(hdr));
	ret_req->op = hdr.operation;

	switch (hdr.operation) {
	case HV_FCOPY_START_FILE_COPY: {
		const struct hv_start_fcopy *m = buf;

		if (len < sizeof(*m)) {
			*ret_why = "START shorter than hv_start_fcopy";
			return -EBADMSG;
		}
		r = copy_name((const uint8_t *)buf + offsetof(struct hv_start_fcopy, file_name),
			      ret_req->file_name, sizeof(ret_req->file_name), ret_why,
			      "file name without terminator", "file name is not valid UTF-8");
		if (r < 0)
			return r;
		r = copy_name((const uint8_t *)buf + offsetof(struct hv_start_fcopy, path_name),
			      ret_req->path_name, sizeof(ret_req->path_name), ret_why,
			      "path name without terminator", "path name is not valid UTF-8");
		if (r < 0)
			return r;
		ret_req->copy_flags = m->copy_flags;
		ret_req->file_size = m->file_size;
		return FCOPY_DECODED_REQUEST;
	}
	case HV_FCOPY_WRITE_TO_FILE: {
		const struct hv_do_fcopy *m = buf;

		if (len < offsetof(struct hv_do_fcopy, data)) {
			*ret_why = "WRITE shorter than its header";
			return -EBADMSG;
		}
		ret_req->offset = m->offset;
		ret_req->size = m->size;
		if (m->size > HV_FCOPY_DATA_FRAGMENT) {
			*ret_why = "WRITE size above 6144 bytes";
			return -EMSGSIZE;
		}
		if (len < offsetof(struct hv_do_fcopy, data) + m->size) {
			*ret_why = "WRITE shorter than its data size";
			return -EBADMSG;
		}
		ret_req->data = m->data;
		return FCOPY_DECODED_REQUEST;
	}
	case HV_FCOPY_COMPLETE_FCOPY:
	case HV_FCOPY_CANCEL_FCOPY:
		return FCOPY_DECODED_REQUEST;
	default:
		/* Unknown ops still get an answer (the session refuses them). */
		return FCOPY_DECODED_REQUEST;
	}
}

static ssize_t chardev_encode_reply(void *buf, size_t len, size_t bufsize, uint32_t status)
{
	if (bufsize < sizeof(hv_fcopy_reply))
		return -ENOBUFS;

	memcpy(buf, &status, sizeof(hv_fcopy_reply));
	return sizeof(hv_fcopy_reply);
}

const fcopy_adapter fcopy_adapter_chardev = {
	.name = "chardev",
	.service = &fcopy_chardev_service,
	.max_msg = FCOPY_CHARDEV_MAX_MSG,
	.drain = false,
	.decode = chardev_decode,
	.encode_reply = chardev_encode_reply,
};

fcopy_kernel_iface fcopy_probe_kernel(const char *chardev, const char *sysfs_root,
				      char **ret_uio_dev)
{
	g_autofree char *devdir = NULL;
	g_autofree char *uiodir = NULL;
	fcopy_kernel_iface iface = FCOPY_IFACE_NONE;
	DIR *d;

	if (chardev && access(chardev, F_OK) == 0)
		return FCOPY_IFACE_CHARDEV;

	devdir = g_build_filename(sysfs_root ? sysfs_root : "/sys", "bus/vmbus/devices",
				  FCOPY_VMBUS_DEVICE_ID, NULL);
	if (access(devdir, F_OK) < 0)
		return FCOPY_IFACE_NONE;

	iface = FCOPY_IFACE_UNBOUND;
	uiodir = g_build_filename(devdir, "uio", NULL);
	d = opendir(uiodir);
	if (!d)
		return iface;

	for (struct dirent *e; (e = readdir(d));) {
		if (strncmp(e->d_name, "uio", 3) != 0)
			continue;
		iface = FCOPY_IFACE_UIO;
		if (ret_uio_dev)
			*ret_uio_dev = g_strconcat("/dev/", e->d_name, NULL);
		break;
	}
	closedir(d);
	return iface;
}
