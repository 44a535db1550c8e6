/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Freeze plan: which file systems a backup freezes, and in which order.
 *
 * Pure policy: the only files read are under policy->sysfs_root (loop and
 * device-mapper lookups); mount points are never opened nor stat()ed, so a
 * hung NFS server or a dead FUSE daemon cannot block the plan.
 *
 * Rules, in this order, first match wins for the skip reason:
 *  1. read-only mount or superblock              HV_SKIP_READ_ONLY
 *  2. fuse, fuseblk, fuse.*                       HV_SKIP_FUSE
 *     network and host-share file systems         HV_SKIP_NETWORK
 *     pseudo and read-only image file systems     HV_SKIP_PSEUDO
 *  3. anonymous device (major 0) and a source
 *     outside /dev (btrfs has an anonymous device
 *     but a /dev source: it is block-backed)      HV_SKIP_NOT_BLOCK
 *  4. mount point matching an excluded glob       HV_SKIP_EXCLUDED_PATH
 *     excluded file system type                   HV_SKIP_EXCLUDED_FSTYPE
 *  5. another mount of a superblock already kept  HV_SKIP_DUPLICATE
 * FUSE is checked before the network and pseudo lists because libmount
 * counts plain "fuse" as pseudo and fuse.sshfs as network.
 *
 * Exclusion globs use fnmatch() without flags: '*' also matches '/', so
 * "/mnt/?*" excludes every mount below /mnt, however deep, and "/mnt"
 * only /mnt itself; no leading-dot special case either. A glob excludes
 * the mounts it matches, not their superblock: a bind mount of an excluded
 * file system elsewhere still gets it frozen (exclude its fstype, or every
 * mount point of it, to keep it out). File system types are compared
 * exactly.
 *
 * Order: a file system stacked on a file of another one (loop device, or a
 * device-mapper stack over loop devices) is frozen in an earlier wave than
 * the file system holding the file, since freezing the lower one first
 * would block the writeback of the upper one:
 *   wave(B) = 1 + max(wave(A) for every A stacked on B), 0 if none.
 * Within a wave, reverse mountinfo order (children before parents, "/"
 * last), as qemu-ga does.
 */
#include "hv-freeze-plan.h"

#include <errno.h>
#include <fnmatch.h>
#include <libmount.h>
#include <string.h>
#include <sys/sysmacros.h>

/* Deepest loop/dm/partition stack followed in sysfs. */
#define MAX_STACK_DEPTH 16
/* Longest dependency chain honoured; deeper levels are ignored. */
#define MAX_WAVES 32

#define DEFAULT_SYSFS_ROOT "/sys"

static const char *const skip_reason_names[_HV_SKIP_REASON_MAX] = {
	[HV_SKIP_READ_ONLY] = "read-only",
	[HV_SKIP_PSEUDO] = "pseudo",
	[HV_SKIP_NETWORK] = "network",
	[HV_SKIP_FUSE] = "fuse",
	[HV_SKIP_NOT_BLOCK] = "not-block",
	[HV_SKIP_EXCLUDED_PATH] = "excluded-path",
	[HV_SKIP_EXCLUDED_FSTYPE] = "excluded-fstype",
	[HV_SKIP_DUPLICATE] = "duplicate",
};

const char *hv_skip_reason_to_string(hv_skip_reason reason)
{
	if ((int)reason < 0 || reason >= _HV_SKIP_REASON_MAX)
		return NULL;

	return skip_reason_names[reason];
}

/*
 * Added to libmount's pseudo list: what it misses (layered and read-only
 * image file systems: nothing of theirs to flush, or it is flushed through
 * the file system under them) and what older libmount releases miss.
 */
/* clang-format off */
static const char *const extra_pseudo_fstypes[] = {
	"aufs", "binder", "binderfs", "cramfs", "devtmpfs", "efivarfs", "erofs",
	"nsfs", "overlay", "overlayfs", "ramfs", "rootfs", "shiftfs", "squashfs",
	"tmpfs",
};
/* clang-format on */

/*
 * Added to libmount's network list (nfs*, cifs, smb3, smbfs, afs, ncpfs,
 * glusterfs, 9p*, fuse.sshfs, fuse.curlftpfs): cluster and host-share file
 * systems. Host shares (virtiofs, vboxsf, vmhgfs) count as network, their
 * data lives outside the guest; libmount calls virtiofs and vboxsf pseudo,
 * which is why this list is checked first.
 */
/* clang-format off */
static const char *const extra_network_fstypes[] = {
	"beegfs", "ceph", "cifs", "coda", "gpfs", "lustre", "nfs", "nfs4",
	"orangefs", "pvfs2", "smb3", "smbfs", "vboxsf", "virtiofs", "vmhgfs",
};
/* clang-format on */

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;

	return false;
}

static bool is_fuse(const char *fstype)
{
	return strcmp(fstype, "fuse") == 0 || strcmp(fstype, "fuseblk") == 0 ||
	       g_str_has_prefix(fstype, "fuse.");
}

static bool is_network(const char *fstype)
{
	return mnt_fstype_is_netfs(fstype) ||
	       in_list(fstype, extra_network_fstypes, G_N_ELEMENTS(extra_network_fstypes));
}

static bool is_pseudo(const char *fstype)
{
	return mnt_fstype_is_pseudofs(fstype) || g_str_has_prefix(fstype, "cgroup") ||
	       in_list(fstype, extra_pseudo_fstypes, G_N_ELEMENTS(extra_pseudo_fstypes));
}

static const char *str_or_empty(const char *s)
{
	return s ? s : "";
}

static bool is_block_backed(const hv_mount *m)
{
	return major(m->dev) != 0 || g_str_has_prefix(str_or_empty(m->source), "/dev/");
}

static bool matches_any_glob(const char *s, const char *const *patterns)
{
	for (; patterns && *patterns; patterns++)
		if (fnmatch(*patterns, s, 0) == 0)
			return true;

	return false;
}

static bool matches_any(const char *s, const char *const *list)
{
	for (; list && *list; list++)
		if (strcmp(*list, s) == 0)
			return true;

	return false;
}

/* Returns true and sets @reason if @m is not a freeze candidate. */
static bool classify(const hv_mount *m, const hv_freeze_policy *policy, hv_skip_reason *reason)
{
	const char *fstype = str_or_empty(m->fstype);
	const char *target = str_or_empty(m->target);

	if (m->read_only)
		*reason = HV_SKIP_READ_ONLY;
	else if (is_fuse(fstype))
		*reason = HV_SKIP_FUSE;
	else if (is_network(fstype))
		*reason = HV_SKIP_NETWORK;
	else if (is_pseudo(fstype))
		*reason = HV_SKIP_PSEUDO;
	else if (!is_block_backed(m))
		*reason = HV_SKIP_NOT_BLOCK;
	else if (matches_any_glob(target, policy->exclude_mountpoints))
		*reason = HV_SKIP_EXCLUDED_PATH;
	else if (matches_any(fstype, policy->exclude_fstypes))
		*reason = HV_SKIP_EXCLUDED_FSTYPE;
	else
		return false;

	return true;
}

/* A planned superblock: its representative mount and its dependencies. */
typedef struct node {
	guint index; /* of the representative in the mount table */
	gint64 dev; /* hash key */
	GArray *uppers; /* of node *: file systems stacked on a file of this one */
	int wave;
	enum {
		NODE_NEW,
		NODE_VISITING,
		NODE_DONE
	} state;
} node;

static void node_free(node *n)
{
	if (!n)
		return;

	if (n->uppers)
		g_array_unref(n->uppers);
	g_free(n);
}

static const hv_mount *mount_at(const hv_mount_table *table, guint i)
{
	return g_ptr_array_index(table->mounts, i);
}

static bool is_root_mount(const hv_mount *m)
{
	return g_strcmp0(m->root, "/") == 0;
}

/* --- sysfs: from a block device to the files it is stacked on --- */

/* A plain device name as found in /dev or a slaves/ directory. */
static bool is_device_name(const char *name)
{
	return *name && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* sysfs directory of block device @name: whole disks, then partitions. */
static char *block_dir(const char *sysfs, const char *name)
{
	char *dir;

	if (!is_device_name(name))
		return NULL;

	dir = g_build_filename(sysfs, "block", name, NULL);
	if (g_file_test(dir, G_FILE_TEST_IS_DIR))
		return dir;

	g_free(dir);
	dir = g_build_filename(sysfs, "class", "block", name, NULL);
	if (g_file_test(dir, G_FILE_TEST_IS_DIR))
		return dir;

	g_free(dir);
	return NULL;
}

/* sysfs directory of the device-mapper device called @dm_name. */
static char *dm_dir_by_name(const char *sysfs, const char *dm_name)
{
	g_autofree char *block = g_build_filename(sysfs, "block", NULL);
	g_autoptr(GDir) dir = g_dir_open(block, 0, NULL);
	const char *entry;

	if (!dir)
		return NULL;

	while ((entry = g_dir_read_name(dir))) {
		g_autofree char *path = NULL;
		g_autofree char *name = NULL;

		if (!g_str_has_prefix(entry, "dm-"))
			continue;

		path = g_build_filename(block, entry, "dm", "name", NULL);
		if (!g_file_get_contents(path, &name, NULL, NULL))
			continue;

		if (strcmp(g_strchomp(name), dm_name) == 0)
			return g_build_filename(block, entry, NULL);
	}

	return NULL;
}

static void add_unique(GPtrArray *files, char *file)
{
	if (g_ptr_array_find_with_equal_func(files, file, g_str_equal, NULL))
		g_free(file);
	else
		g_ptr_array_add(files, file);
}

/*
 * Adds to @files the backing file of the loop device at @devdir, and
 * recursively those of the devices it sits on (slaves/ of device-mapper
 * and md, the whole disk of a partition). Anything missing means "not
 * stacked on a file".
 */
static void collect_backing_files(const char *sysfs, const char *devdir, unsigned int depth,
				  GPtrArray *files)
{
	g_autofree char *backing = g_build_filename(devdir, "loop", "backing_file", NULL);
	g_autofree char *partition = g_build_filename(devdir, "partition", NULL);
	g_autofree char *slaves = g_build_filename(devdir, "slaves", NULL);
	g_autoptr(GDir) dir = NULL;
	char *contents = NULL;
	const char *entry;

	if (depth >= MAX_STACK_DEPTH) {
		g_debug("freeze plan: device stack deeper than %d at %s, not followed",
			MAX_STACK_DEPTH, devdir);
		return;
	}

	if (g_file_get_contents(backing, &contents, NULL, NULL)) {
		g_strchomp(contents);
		if (contents[0] == '/')
			add_unique(files, contents);
		else
			g_free(contents);
	}

	/* a partition's parent directory is its whole disk (physical "..") */
	if (g_file_test(partition, G_FILE_TEST_EXISTS)) {
		g_autofree char *parent = g_build_filename(devdir, "..", NULL);

		collect_backing_files(sysfs, parent, depth + 1, files);
	}

	dir = g_dir_open(slaves, 0, NULL);
	while (dir && (entry = g_dir_read_name(dir))) {
		g_autofree char *lower = block_dir(sysfs, entry);

		if (lower)
			collect_backing_files(sysfs, lower, depth + 1, files);
	}
}

/* Files the device(s) under @m are stacked on, found by number and by name. */
static GPtrArray *backing_files_of(const char *sysfs, const hv_mount *m)
{
	GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
	const char *source = str_or_empty(m->source);
	g_autofree char *by_name = NULL;

	if (major(m->dev) != 0) {
		g_autofree char *numbered =
			g_strdup_printf("%s/dev/block/%u:%u", sysfs, major(m->dev), minor(m->dev));

		collect_backing_files(sysfs, numbered, 0, files);
	}

	/* btrfs has an anonymous device number: only its source names the device */
	if (g_str_has_prefix(source, "/dev/mapper/"))
		by_name = dm_dir_by_name(sysfs, source + strlen("/dev/mapper/"));
	else if (g_str_has_prefix(source, "/dev/"))
		by_name = block_dir(sysfs, source + strlen("/dev/"));

	if (by_name)
		collect_backing_files(sysfs, by_name, 0, files);

	return files;
}

/* @path is @prefix or lies below it, component-wise ("/data" is not under "/dat"). */
static bool path_is_below(const char *path, const char *prefix)
{
	size_t len = strlen(prefix);

	if (strcmp(prefix, "/") == 0)
		return path[0] == '/';

	return strncmp(path, prefix, len) == 0 && (path[len] == '/' || path[len] == '\0');
}

/* The mount holding @path: longest target prefix; the latest mount on a tie (it is on top). */
static const hv_mount *mount_holding(const hv_mount_table *table, const char *path)
{
	const hv_mount *best = NULL;
	size_t best_len = 0;

	for (guint i = 0; i < table->mounts->len; i++) {
		const hv_mount *m = mount_at(table, i);
		size_t len;

		if (!m->target || !path_is_below(path, m->target))
			continue;

		len = strlen(m->target);
		if (!best || len >= best_len) {
			best = m;
			best_len = len;
		}
	}

	return best;
}

static void add_edge(node *lower, node *upper)
{
	for (guint i = 0; i < lower->uppers->len; i++)
		if (g_array_index(lower->uppers, node *, i) == upper)
			return;

	g_array_append_val(lower->uppers, upper);
}

/* Records, for every planned file system, which planned ones are stacked on it. */
static void link_stacks(const hv_mount_table *table, const char *sysfs, GPtrArray *nodes,
			GHashTable *by_dev)
{
	for (guint i = 0; i < nodes->len; i++) {
		node *upper = g_ptr_array_index(nodes, i);
		const hv_mount *m = mount_at(table, upper->index);
		g_autoptr(GPtrArray) files = backing_files_of(sysfs, m);

		for (guint f = 0; f < files->len; f++) {
			const char *file = g_ptr_array_index(files, f);
			const hv_mount *holder = mount_holding(table, file);
			gint64 dev;
			node *lower;

			if (!holder)
				continue;

			dev = (gint64)holder->dev;
			lower = g_hash_table_lookup(by_dev, &dev);
			if (!lower || lower == upper)
				continue;

			g_debug("freeze plan: %s is stacked on %s (%s)", str_or_empty(m->target),
				str_or_empty(mount_at(table, lower->index)->target), file);
			add_edge(lower, upper);
		}
	}
}

/*
 * wave(n) = 1 + max(wave(u) for u stacked on n), 0 if none. An edge back
 * into the current path (a cycle, which only a confused sysfs can produce)
 * or past MAX_WAVES is ignored. Returns -1 for an ignored edge.
 */
static int compute_wave(node *n, unsigned int depth)
{
	int wave = 0;

	if (n->state == NODE_DONE)
		return n->wave;

	if (n->state == NODE_VISITING) {
		g_debug("freeze plan: stacking cycle, one dependency ignored");
		return -1;
	}

	if (depth >= MAX_WAVES) {
		g_debug("freeze plan: stacking deeper than %d, deeper levels ignored", MAX_WAVES);
		return -1;
	}

	n->state = NODE_VISITING;
	for (guint i = 0; i < n->uppers->len; i++) {
		int w = compute_wave(g_array_index(n->uppers, node *, i), depth + 1);

		if (w >= 0 && w + 1 > wave)
			wave = w + 1;
	}
	n->state = NODE_DONE;
	n->wave = wave;

	return wave;
}

static int compare_freeze_order(gconstpointer a, gconstpointer b)
{
	const node *x = *(node *const *)a;
	const node *y = *(node *const *)b;

	if (x->wave != y->wave)
		return x->wave < y->wave ? -1 : 1;

	/* reverse mountinfo order: children before parents */
	if (x->index != y->index)
		return x->index > y->index ? -1 : 1;

	return 0;
}

/* Renumbers waves 0, 1, 2 ... without gaps; returns the number of waves. */
static unsigned int compact_waves(GPtrArray *sorted)
{
	unsigned int n_waves = 0;
	int last = -1;

	for (guint i = 0; i < sorted->len; i++) {
		node *n = g_ptr_array_index(sorted, i);

		if (n->wave != last) {
			last = n->wave;
			n_waves++;
		}
		n->wave = (int)n_waves - 1;
	}

	return n_waves;
}

static void target_free(hv_freeze_target *t)
{
	if (!t)
		return;

	g_free(t->mountpoint);
	g_free(t->fstype);
	g_free(t->source);
	g_free(t);
}

static void skip_free(hv_plan_skip *s)
{
	if (!s)
		return;

	g_free(s->mountpoint);
	g_free(s->fstype);
	g_free(s);
}

void hv_freeze_plan_free(hv_freeze_plan *plan)
{
	if (!plan)
		return;

	if (plan->targets)
		g_ptr_array_unref(plan->targets);
	if (plan->skipped)
		g_ptr_array_unref(plan->skipped);
	g_free(plan);
}

hv_freeze_plan *hv_freeze_plan_new(void)
{
	hv_freeze_plan *plan = g_new0(hv_freeze_plan, 1);

	plan->targets = g_ptr_array_new_with_free_func((GDestroyNotify)target_free);
	plan->skipped = g_ptr_array_new_with_free_func((GDestroyNotify)skip_free);
	return plan;
}

hv_freeze_target *hv_freeze_plan_add_target(hv_freeze_plan *plan, const char *mountpoint,
					    const char *fstype, const char *source, dev_t dev,
					    unsigned int wave)
{
	hv_freeze_target *t = g_new0(hv_freeze_target, 1);

	t->mountpoint = g_strdup(str_or_empty(mountpoint));
	t->fstype = g_strdup(str_or_empty(fstype));
	t->source = g_strdup(str_or_empty(source));
	t->dev = dev;
	t->wave = wave;
	plan->n_waves = MAX(plan->n_waves, wave + 1);
	g_ptr_array_add(plan->targets, t);
	return t;
}

static hv_plan_skip *skip_new(const hv_mount *m, hv_skip_reason reason)
{
	hv_plan_skip *s = g_new0(hv_plan_skip, 1);

	s->mountpoint = g_strdup(str_or_empty(m->target));
	s->fstype = g_strdup(str_or_empty(m->fstype));
	s->reason = reason;

	return s;
}

#define NOT_SKIPPED ((int)_HV_SKIP_REASON_MAX)

int hv_freeze_plan_build(const hv_mount_table *table, const hv_freeze_policy *policy,
			 hv_freeze_plan **ret)
{
	static const hv_freeze_policy default_policy;
	g_autoptr(hv_freeze_plan) plan = NULL;
	g_autoptr(GPtrArray) nodes = NULL; /* owns the nodes, in mountinfo order */
	g_autoptr(GPtrArray) sorted = NULL; /* the same, in freeze order */
	g_autoptr(GHashTable) by_dev = NULL;
	g_autofree int *skip = NULL;
	const char *sysfs;
	guint n_mounts;

	if (!table || !table->mounts || !ret)
		return -EINVAL;

	if (!policy)
		policy = &default_policy;
	sysfs = policy->sysfs_root ? policy->sysfs_root : DEFAULT_SYSFS_ROOT;

	n_mounts = table->mounts->len;
	skip = g_new(int, n_mounts ? n_mounts : 1);
	nodes = g_ptr_array_new_with_free_func((GDestroyNotify)node_free);
	by_dev = g_hash_table_new(g_int64_hash, g_int64_equal);

	/* rules 1-4, then rule 5: one node per superblock, at a root mount if any */
	for (guint i = 0; i < n_mounts; i++) {
		const hv_mount *m = mount_at(table, i);
		hv_skip_reason reason;
		gint64 dev = (gint64)m->dev;
		node *n;

		if (classify(m, policy, &reason)) {
			skip[i] = (int)reason;
			continue;
		}

		skip[i] = NOT_SKIPPED;
		n = g_hash_table_lookup(by_dev, &dev);
		if (!n) {
			n = g_new0(node, 1);
			n->index = i;
			n->dev = dev;
			n->uppers = g_array_new(FALSE, FALSE, sizeof(node *));
			g_ptr_array_add(nodes, n);
			g_hash_table_insert(by_dev, &n->dev, n);
		} else if (!is_root_mount(mount_at(table, n->index)) && is_root_mount(m)) {
			skip[n->index] = HV_SKIP_DUPLICATE;
			n->index = i;
		} else {
			skip[i] = HV_SKIP_DUPLICATE;
		}
	}

	link_stacks(table, sysfs, nodes, by_dev);
	for (guint i = 0; i < nodes->len; i++)
		compute_wave(g_ptr_array_index(nodes, i), 0);

	/* not g_ptr_array_copy(): the copy would inherit the free function */
	sorted = g_ptr_array_sized_new(nodes->len);
	for (guint i = 0; i < nodes->len; i++)
		g_ptr_array_add(sorted, g_ptr_array_index(nodes, i));
	g_ptr_array_sort(sorted, compare_freeze_order);

	plan = hv_freeze_plan_new();
	plan->n_waves = compact_waves(sorted);

	for (guint i = 0; i < sorted->len; i++) {
		const node *n = g_ptr_array_index(sorted, i);
		const hv_mount *m = mount_at(table, n->index);

		hv_freeze_plan_add_target(plan, m->target, m->fstype, m->source, m->dev,
					  (unsigned int)n->wave);
	}

	for (guint i = 0; i < n_mounts; i++)
		if (skip[i] != NOT_SKIPPED)
			g_ptr_array_add(plan->skipped,
					skip_new(mount_at(table, i), (hv_skip_reason)skip[i]));

	*ret = g_steal_pointer(&plan);
	return 0;
}
