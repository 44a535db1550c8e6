/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Application hooks: executables in a directory (default /etc/hyperv/vss.d),
 * run in name order with "freeze" before the first file system is frozen,
 * and in reverse order with "thaw" after the last one is thawed, or with
 * "freeze-fail" when the freeze did not happen. Like open-vm-tools' backup
 * scripts and qemu-ga's fsfreeze hook, but argv only, never a shell of ours.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#define VSS_HOOKS_DEFAULT_DIR HV_CONFIG_SYSCONFDIR "/vss.d"

/* True for names package managers and editors leave behind, and hidden files. */
bool vss_hook_name_ignored(const char *name);

/*
 * The hooks to run, sorted by name (full paths). A missing directory is an
 * empty list. Entries that are not regular executable files, whose names
 * are ignored, or that are writable by group or others or owned by another
 * user than root and us, go to @ret_skipped (may be NULL) as "name: why"; a
 * directory that is itself writable by group or others or owned by another
 * user yields no hooks at all (and one "dir: why: no hook in it is run").
 */
int vss_hooks_list(const char *dir, GPtrArray **ret_hooks, GPtrArray **ret_skipped);

/* Whether a @ret_skipped entry is a hook refused for its owner or mode (worth a warning). */
bool vss_hook_skip_is_refusal(const char *entry);

typedef struct vss_hook_result {
	int status;        /* exit status, or -1 when killed */
	bool timed_out;
	char *output;      /* stdout and stderr, at most 64 KiB */
	bool truncated;
	gint64 duration_us;
} vss_hook_result;

void vss_hook_result_clear(vss_hook_result *r);

/*
 * Runs @path with the single argument @arg, stdin from /dev/null, stdout and
 * stderr captured, a clean environment, in its own process group, killed
 * after @timeout_ms. Returns 0 when it exited 0, -ETIMEDOUT, -EPROTO for
 * another exit status, or -errno when it could not be started.
 */
int vss_hook_run(const char *path, const char *arg, unsigned int timeout_ms,
		 vss_hook_result *ret);
