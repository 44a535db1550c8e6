/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The kernel's own definitions, in a translation unit of their own (the
 * struct names clash with ours): sizes and offsets for test-fcopy-wire.c.
 */
#include <linux/hyperv.h>
#include <stddef.h>

#include "test-fcopy-wire-linux.h"

void linux_fcopy_layout(struct fcopy_layout *l)
{
	l->hdr_size = sizeof(struct hv_fcopy_hdr);
	l->hdr_service_id0 = offsetof(struct hv_fcopy_hdr, service_id0);
	l->hdr_service_id1 = offsetof(struct hv_fcopy_hdr, service_id1);
	l->start_size = sizeof(struct hv_start_fcopy);
	l->start_file_name = offsetof(struct hv_start_fcopy, file_name);
	l->start_path_name = offsetof(struct hv_start_fcopy, path_name);
	l->start_copy_flags = offsetof(struct hv_start_fcopy, copy_flags);
	l->start_file_size = offsetof(struct hv_start_fcopy, file_size);
	l->do_size = sizeof(struct hv_do_fcopy);
	l->do_offset = offsetof(struct hv_do_fcopy, offset);
	l->do_data_size = offsetof(struct hv_do_fcopy, size);
	l->do_data = offsetof(struct hv_do_fcopy, data);
	l->w_max_path = W_MAX_PATH;
	l->data_fragment = DATA_FRAGMENT;
	l->over_write = OVER_WRITE;
	l->create_path = CREATE_PATH;
	l->version_0 = FCOPY_VERSION_0;
	l->version_1 = FCOPY_VERSION_1;
	l->current_version = FCOPY_CURRENT_VERSION;
	l->op_start = START_FILE_COPY;
	l->op_write = WRITE_TO_FILE;
	l->op_complete = COMPLETE_FCOPY;
	l->op_cancel = CANCEL_FCOPY;
}
