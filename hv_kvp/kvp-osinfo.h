/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the auto pool says about the operating system, built the way the
 * upstream daemon (Linux tools/hv/hv_kvp_daemon.c, kvp_get_os_info()) builds
 * it, so that hosts and tools reading these keys see the same values:
 *
 *   OSName          os-release NAME; else the first line of a legacy
 *                   /etc/SuSE-release or /etc/redhat-release; else uname sysname
 *   OSMajorVersion  os-release VERSION_ID (whole, e.g. "22.04"); legacy: 2nd line
 *   OSMinorVersion  "" (legacy files only: 3rd line)
 *   OSBuildNumber   uname release ("6.1.0-18-amd64")
 *   OSVersion       uname release up to the first '-' ("6.1.0")
 *   ProcessorArchitecture  uname machine
 *
 * Unlike upstream, os-release is parsed with its own quoting rules (double
 * quotes with backslash escapes, single quotes, unquoted values, comments,
 * leading blanks), /usr/lib/os-release is the fallback for /etc/os-release,
 * and values are made valid UTF-8 without control characters.
 */
#pragma once

#include <glib.h>
#include <sys/utsname.h>

typedef struct kvp_os_info {
	char *name;
	char *major;
	char *minor;
	char *build;
	char *version;
	char *arch;
} kvp_os_info;

/* Where os-release is looked for, in order (the first existing file wins). */
extern const char *const kvp_os_release_default_paths[];
/* Pre-os-release files of old Red Hat and SUSE releases, in upstream's order. */
extern const char *const kvp_legacy_release_default_paths[];

/*
 * One os-release value, unquoted: @raw is what follows "KEY=" on its line.
 * Returns a newly allocated string.
 */
char *kvp_os_release_unquote(const char *raw);

/*
 * Parses an os-release file into a table of KEY -> value (later assignments
 * win). -errno if the file cannot be read.
 */
int kvp_os_release_parse(const char *path, GHashTable **ret);

/*
 * Fills @ret from the first readable file of @os_release_paths, else of
 * @legacy_paths, and from @uts (NULL: uname()). NULL path lists mean the
 * defaults. Never fails: what is missing stays as upstream leaves it.
 */
void kvp_os_info_load(const char *const *os_release_paths, const char *const *legacy_paths,
		      const struct utsname *uts, kvp_os_info *ret);
void kvp_os_info_clear(kvp_os_info *info);
