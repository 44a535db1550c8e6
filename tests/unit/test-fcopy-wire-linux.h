/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

struct fcopy_layout {
	size_t hdr_size, hdr_service_id0, hdr_service_id1;
	size_t start_size, start_file_name, start_path_name, start_copy_flags, start_file_size;
	size_t do_size, do_offset, do_data_size, do_data;
	long w_max_path, data_fragment, over_write, create_path;
	long version_0, version_1, current_version;
	long op_start, op_write, op_complete, op_cancel;
};

void linux_fcopy_layout(struct fcopy_layout *l);
