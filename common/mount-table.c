/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The mount table, read through libmount.
 *
 * libmount quirks this file works around (util-linux 2.38):
 *  - a line it cannot parse is skipped silently unless a parser error
 *    callback says otherwise, and an error on the last line (a truncated
 *    file) is never fatal whatever the callback returns; so the callback
 *    only counts, and any count makes the whole load fail: a freeze plan
 *    built from half a mount table is wrong;
 *  - the format is guessed from the first line; a file whose first line
 *    does not start with two numbers is parsed as fstab and yields entries
 *    without a root, which are rejected here.
 */
#include "hv-mount.h"

#include <errno.h>
#include <libmount.h>
#include <string.h>

#define PROC_SELF_MOUNTINFO "/proc/self/mountinfo"

void hv_mount_free(hv_mount *m)
{
	if (!m)
		return;

	g_free(m->root);
	g_free(m->target);
	g_free(m->fstype);
	g_free(m->source);
	g_free(m->vfs_options);
	g_free(m->fs_options);
	g_free(m);
}

void hv_mount_table_free(hv_mount_table *table)
{
	if (!table)
		return;

	if (table->mounts)
		g_ptr_array_unref(table->mounts);
	g_free(table);
}

static void unref_table(struct libmnt_table **tb)
{
	mnt_unref_table(*tb);
}

static void unref_iter(struct libmnt_iter **itr)
{
	mnt_free_iter(*itr);
}

/* Counts the lines libmount could not parse; see the top of this file. */
static int count_parse_error(struct libmnt_table *tb, const char *filename, int line)
{
	unsigned int *errors = mnt_table_get_userdata(tb);

	if (errors)
		(*errors)++;

	return 1; /* recoverable: keep parsing, the caller decides */
}

/* "ro" as an option of its own, not a substring such as "errors=remount-ro". */
static bool optstr_has_ro(const char *optstr)
{
	if (!optstr)
		return false;

	return mnt_optstr_get_option(optstr, "ro", NULL, NULL) == 0;
}

static char *dup_or_empty(const char *s)
{
	return g_strdup(s ? s : "");
}

static int mount_from_fs(struct libmnt_fs *fs, hv_mount **ret)
{
	const char *root = mnt_fs_get_root(fs);
	const char *target = mnt_fs_get_target(fs);
	const char *fstype = mnt_fs_get_fstype(fs);
	hv_mount *m;

	/* every mountinfo line has these; fstab-style parsing has no root */
	if (!root || !target || !fstype)
		return -EBADMSG;

	m = g_new0(hv_mount, 1);
	m->id = mnt_fs_get_id(fs);
	m->parent_id = mnt_fs_get_parent_id(fs);
	m->dev = mnt_fs_get_devno(fs);
	m->vfs_options = dup_or_empty(mnt_fs_get_vfs_options(fs));
	m->fs_options = dup_or_empty(mnt_fs_get_fs_options(fs));
	m->read_only = optstr_has_ro(m->vfs_options) || optstr_has_ro(m->fs_options);
	m->root = g_strdup(root);
	m->target = g_strdup(target);
	m->fstype = g_strdup(fstype);
	m->source = dup_or_empty(mnt_fs_get_source(fs));

	*ret = m;
	return 0;
}

int hv_mount_table_load(const char *path, hv_mount_table **ret)
{
	__attribute__((cleanup(unref_table))) struct libmnt_table *tb = NULL;
	__attribute__((cleanup(unref_iter))) struct libmnt_iter *itr = NULL;
	g_autoptr(hv_mount_table) table = NULL;
	struct libmnt_fs *fs;
	unsigned int errors = 0;
	int r;

	if (!ret)
		return -EINVAL;

	if (!path)
		path = PROC_SELF_MOUNTINFO;

	tb = mnt_new_table();
	itr = mnt_new_iter(MNT_ITER_FORWARD);
	if (!tb || !itr)
		return -ENOMEM;

	mnt_table_set_userdata(tb, &errors);
	mnt_table_set_parser_errcb(tb, count_parse_error);

	r = mnt_table_parse_file(tb, path);
	if (r < 0)
		return r;

	if (errors > 0)
		return -EBADMSG;

	table = g_new0(hv_mount_table, 1);
	table->mounts = g_ptr_array_new_with_free_func((GDestroyNotify)hv_mount_free);

	while ((r = mnt_table_next_fs(tb, itr, &fs)) == 0) {
		hv_mount *m;

		r = mount_from_fs(fs, &m);
		if (r < 0)
			return r;

		g_ptr_array_add(table->mounts, m);
	}

	if (r < 0)
		return r;

	*ret = g_steal_pointer(&table);
	return 0;
}
