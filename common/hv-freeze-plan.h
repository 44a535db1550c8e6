/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Freeze plan: pure policy. Decides from a mount table which file systems a
 * backup freezes, and in which order.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

#include "hv-mount.h"

typedef enum hv_skip_reason {
	HV_SKIP_READ_ONLY,
	HV_SKIP_PSEUDO,          /* proc, sysfs, tmpfs, cgroup, overlay ... */
	HV_SKIP_NETWORK,         /* nfs, cifs, ceph ... */
	HV_SKIP_FUSE,
	HV_SKIP_NOT_BLOCK,       /* no block device behind it */
	HV_SKIP_EXCLUDED_PATH,   /* configured mount point glob */
	HV_SKIP_EXCLUDED_FSTYPE, /* configured file system type */
	HV_SKIP_DUPLICATE,       /* another mount of an already planned superblock */
	_HV_SKIP_REASON_MAX,
} hv_skip_reason;

/* Short stable name ("read-only", "duplicate" ...); NULL if out of range. */
const char *hv_skip_reason_to_string(hv_skip_reason reason);

typedef struct hv_freeze_target {
	char *mountpoint;
	char *fstype;
	char *source;
	dev_t dev;
	/*
	 * Dependency wave, 0 is frozen first. A file system stacked on another
	 * (loop file, device-mapper over a loop file) gets a lower wave than the
	 * file system holding its backing file; thaw runs in reverse.
	 */
	unsigned int wave;
} hv_freeze_target;

typedef struct hv_plan_skip {
	char *mountpoint;
	char *fstype;
	hv_skip_reason reason;
} hv_plan_skip;

typedef struct hv_freeze_plan {
	GPtrArray *targets;  /* of hv_freeze_target *, in freeze order (wave asc) */
	GPtrArray *skipped;  /* of hv_plan_skip * */
	unsigned int n_waves;
} hv_freeze_plan;

typedef struct hv_freeze_policy {
	/* NULL-terminated; may be NULL */
	/*
	 * glob patterns (fnmatch, no flags: '*' matches '/' too, so "/mnt/?*"
	 * is every mount below /mnt); they exclude the mounts they match, not
	 * the superblock: another mount of the same file system may still be
	 * planned.
	 */
	const char *const *exclude_mountpoints;
	const char *const *exclude_fstypes; /* exact names */
	/* Root of sysfs for loop/dm lookups; NULL means "/sys". */
	const char *sysfs_root;
} hv_freeze_policy;

/*
 * @policy may be NULL (no exclusions, /sys). Every mount of @table ends up
 * either in targets (one per superblock) or in skipped (mountinfo order).
 * Returns 0, or -EINVAL if @table or @ret is NULL.
 */
int hv_freeze_plan_build(const hv_mount_table *table, const hv_freeze_policy *policy,
			 hv_freeze_plan **ret);
void hv_freeze_plan_free(hv_freeze_plan *plan);

/* An empty plan, and adding a target to it (for callers that plan by hand, and tests). */
hv_freeze_plan *hv_freeze_plan_new(void);
hv_freeze_target *hv_freeze_plan_add_target(hv_freeze_plan *plan, const char *mountpoint,
					    const char *fstype, const char *source, dev_t dev,
					    unsigned int wave);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_freeze_plan, hv_freeze_plan_free)
