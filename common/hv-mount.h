/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The mount table, read through libmount from a mountinfo file path
 * (/proc/self/mountinfo in production, fixtures in tests).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct hv_mount {
	int id;
	int parent_id;
	dev_t dev;          /* superblock device, major:minor field */
	char *root;         /* root of the mount inside its file system */
	char *target;       /* mount point, unescaped */
	char *fstype;       /* "ext4", "fuse.sshfs", ... */
	char *source;       /* "/dev/sda1", "server:/export", "none" ... */
	char *vfs_options;  /* per-mount options, e.g. "rw,relatime" */
	char *fs_options;   /* superblock options */
	bool read_only;     /* the mount or its superblock is read-only */
} hv_mount;

typedef struct hv_mount_table {
	GPtrArray *mounts;  /* of hv_mount *, in mountinfo order */
} hv_mount_table;

/*
 * Parses @path (NULL means /proc/self/mountinfo). Returns 0 or -errno:
 * -EINVAL if @ret is NULL, the errno of open() (-ENOENT ...), -EBADMSG if
 * any line is not valid mountinfo (a damaged or truncated file is refused
 * as a whole). Strings of the entries are never NULL (maybe "").
 */
int hv_mount_table_load(const char *path, hv_mount_table **ret);
void hv_mount_table_free(hv_mount_table *table);
/* Frees one entry (NULL-safe); for tables built by hand. */
void hv_mount_free(hv_mount *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_mount_table, hv_mount_table_free)
