/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Runs one distro helper script (hv_get_dns_info, hv_get_dhcp_info,
 * hv_set_ifconfig): argv only, never a shell command line; stdin from
 * /dev/null, stderr discarded; its own process group, killed as a whole
 * when it overruns its time limit; standard output captured up to a cap
 * (the rest is read and discarded, so a chatty helper cannot block).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct kvp_helper_result {
	int wait_status; /* as from waitpid() */
	bool timed_out;
	bool truncated; /* more output than the cap */
	char *output;	/* NUL-terminated, never NULL after a run */
	size_t output_len;
} kvp_helper_result;

/*
 * 0 when the helper ran (see @ret for how it ended), -ENOENT if argv[0]
 * does not exist, -EACCES if it is not executable, other -errno if it
 * could not be started.
 */
int kvp_helper_run(const char *const *argv, unsigned int timeout_ms, size_t max_output,
		   kvp_helper_result *ret);
void kvp_helper_result_clear(kvp_helper_result *res);
/* True if the helper ended on its own with exit status 0. */
bool kvp_helper_succeeded(const kvp_helper_result *res);
