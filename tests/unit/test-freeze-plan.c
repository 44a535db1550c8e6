/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for common/freeze-plan.c: mountinfo fixtures from
 * tests/fixtures/mountinfo/ with fake sysfs trees from tests/fixtures/sysfs/,
 * plus tables built in memory.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/sysmacros.h>

#include <cmocka.h>
#include <glib/gstdio.h>

#include "hv-freeze-plan.h"

#define SYSFS(name) HV_FIXTURES_DIR "/sysfs/" name
/* No such directory: every sysfs lookup misses. */
#define NO_SYSFS SYSFS("none")

/* "planned" in the expectation tables */
#define PLANNED _HV_SKIP_REASON_MAX

static hv_mount_table *load_fixture(const char *name)
{
	g_autofree char *path = g_build_filename(HV_FIXTURES_DIR, "mountinfo", name, NULL);
	hv_mount_table *table = NULL;

	assert_int_equal(hv_mount_table_load(path, &table), 0);
	assert_non_null(table);
	return table;
}

static hv_freeze_plan *build(const hv_mount_table *table, const hv_freeze_policy *policy)
{
	hv_freeze_plan *plan = NULL;

	assert_int_equal(hv_freeze_plan_build(table, policy, &plan), 0);
	assert_non_null(plan);
	assert_non_null(plan->targets);
	assert_non_null(plan->skipped);
	/* every mount is either planned or skipped, exactly once */
	assert_int_equal(plan->targets->len + plan->skipped->len, table->mounts->len);
	return plan;
}

static hv_freeze_plan *build_fixture(const char *name, const char *sysfs)
{
	g_autoptr(hv_mount_table) table = load_fixture(name);
	const hv_freeze_policy policy = { .sysfs_root = sysfs };

	return build(table, &policy);
}

static const hv_freeze_target *find_target(const hv_freeze_plan *plan, const char *mountpoint)
{
	for (guint i = 0; i < plan->targets->len; i++) {
		const hv_freeze_target *t = g_ptr_array_index(plan->targets, i);

		if (strcmp(t->mountpoint, mountpoint) == 0)
			return t;
	}

	return NULL;
}

/* The skip reason of @mountpoint, PLANNED if it is a target; fails if absent. */
static int reason_of(const hv_freeze_plan *plan, const char *mountpoint)
{
	const hv_freeze_target *t = find_target(plan, mountpoint);
	int found = -1;

	for (guint i = 0; i < plan->skipped->len; i++) {
		const hv_plan_skip *s = g_ptr_array_index(plan->skipped, i);

		if (strcmp(s->mountpoint, mountpoint) == 0) {
			assert_int_equal(found, -1); /* once per mount point here */
			found = (int)s->reason;
		}
	}

	if (t) {
		assert_int_equal(found, -1);
		return PLANNED;
	}

	assert_int_not_equal(found, -1);
	return found;
}

typedef struct expected_reason {
	const char *mountpoint;
	int reason;
} expected_reason;

static void check_reasons(const hv_freeze_plan *plan, const expected_reason *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		print_message("%s\n", cases[i].mountpoint);
		assert_int_equal(reason_of(plan, cases[i].mountpoint), cases[i].reason);
	}
}

typedef struct expected_target {
	const char *mountpoint;
	unsigned int wave;
} expected_target;

/* The plan is exactly @expected, in this order. */
static void check_order(const hv_freeze_plan *plan, const expected_target *expected, size_t n,
			unsigned int n_waves)
{
	for (guint i = 0; i < plan->targets->len; i++) {
		const hv_freeze_target *t = g_ptr_array_index(plan->targets, i);

		print_message("  %u: %s wave %u\n", i, t->mountpoint, t->wave);
	}

	assert_int_equal(plan->targets->len, n);
	assert_int_equal(plan->n_waves, n_waves);
	for (size_t i = 0; i < n; i++) {
		const hv_freeze_target *t = g_ptr_array_index(plan->targets, i);

		assert_string_equal(t->mountpoint, expected[i].mountpoint);
		assert_int_equal(t->wave, expected[i].wave);
	}
}

/* --- tables built in memory --- */

static hv_mount *fake_mount(unsigned int maj, unsigned int min, const char *root,
			    const char *target, const char *fstype, const char *source, bool ro)
{
	hv_mount *m = g_new0(hv_mount, 1);

	m->dev = makedev(maj, min);
	m->root = g_strdup(root);
	m->target = g_strdup(target);
	m->fstype = g_strdup(fstype);
	m->source = g_strdup(source);
	m->vfs_options = g_strdup(ro ? "ro" : "rw");
	m->fs_options = g_strdup("rw");
	m->read_only = ro;
	return m;
}

static hv_mount_table *fake_table(void)
{
	hv_mount_table *table = g_new0(hv_mount_table, 1);

	table->mounts = g_ptr_array_new_with_free_func((GDestroyNotify)hv_mount_free);
	return table;
}

static void add_mount(hv_mount_table *table, hv_mount *m)
{
	m->id = (int)table->mounts->len + 1;
	g_ptr_array_add(table->mounts, m);
}

/* --- tests --- */

static void test_reason_names(void **state)
{
	static const struct {
		hv_skip_reason reason;
		const char *name;
	} cases[] = {
		{ HV_SKIP_READ_ONLY, "read-only" },
		{ HV_SKIP_PSEUDO, "pseudo" },
		{ HV_SKIP_NETWORK, "network" },
		{ HV_SKIP_FUSE, "fuse" },
		{ HV_SKIP_NOT_BLOCK, "not-block" },
		{ HV_SKIP_EXCLUDED_PATH, "excluded-path" },
		{ HV_SKIP_EXCLUDED_FSTYPE, "excluded-fstype" },
		{ HV_SKIP_DUPLICATE, "duplicate" },
	};

	assert_int_equal(G_N_ELEMENTS(cases), _HV_SKIP_REASON_MAX);
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
		assert_string_equal(hv_skip_reason_to_string(cases[i].reason), cases[i].name);

	assert_null(hv_skip_reason_to_string(_HV_SKIP_REASON_MAX));
	assert_null(hv_skip_reason_to_string((hv_skip_reason)-1));
}

static void test_null_args(void **state)
{
	g_autoptr(hv_mount_table) table = load_fixture("empty.txt");
	const hv_freeze_policy policy = { .sysfs_root = NO_SYSFS };
	hv_mount_table no_array = { .mounts = NULL };
	hv_freeze_plan *plan = NULL;

	assert_int_equal(hv_freeze_plan_build(NULL, &policy, &plan), -EINVAL);
	assert_int_equal(hv_freeze_plan_build(table, &policy, NULL), -EINVAL);
	assert_int_equal(hv_freeze_plan_build(&no_array, &policy, &plan), -EINVAL);
	assert_null(plan);

	hv_freeze_plan_free(NULL);
}

/* A NULL policy means no exclusions and /sys (not read for an empty table). */
static void test_null_policy(void **state)
{
	g_autoptr(hv_mount_table) table = load_fixture("empty.txt");
	g_autoptr(hv_freeze_plan) plan = build(table, NULL);

	assert_int_equal(plan->targets->len, 0);
}

static void test_empty_table(void **state)
{
	g_autoptr(hv_freeze_plan) plan = build_fixture("empty.txt", NO_SYSFS);

	assert_int_equal(plan->targets->len, 0);
	assert_int_equal(plan->skipped->len, 0);
	assert_int_equal(plan->n_waves, 0);
}

/* One mount per file system type, all on distinct block devices. */
static void test_fstype_reasons(void **state)
{
	static const struct {
		const char *fstype;
		int reason;
	} cases[] = {
		{ "ext4", PLANNED },
		{ "xfs", PLANNED },
		{ "vfat", PLANNED },
		{ "btrfs", PLANNED },
		{ "proc", HV_SKIP_PSEUDO },
		{ "sysfs", HV_SKIP_PSEUDO },
		{ "tmpfs", HV_SKIP_PSEUDO },
		{ "devtmpfs", HV_SKIP_PSEUDO },
		{ "ramfs", HV_SKIP_PSEUDO },
		{ "cgroup", HV_SKIP_PSEUDO },
		{ "cgroup2", HV_SKIP_PSEUDO },
		{ "overlay", HV_SKIP_PSEUDO },
		{ "squashfs", HV_SKIP_PSEUDO },
		{ "erofs", HV_SKIP_PSEUDO },
		{ "nsfs", HV_SKIP_PSEUDO },
		{ "efivarfs", HV_SKIP_PSEUDO },
		{ "autofs", HV_SKIP_PSEUDO },
		{ "fusectl", HV_SKIP_PSEUDO },
		{ "nfs", HV_SKIP_NETWORK },
		{ "nfs4", HV_SKIP_NETWORK },
		{ "cifs", HV_SKIP_NETWORK },
		{ "smb3", HV_SKIP_NETWORK },
		{ "ceph", HV_SKIP_NETWORK },
		{ "glusterfs", HV_SKIP_NETWORK },
		{ "9p", HV_SKIP_NETWORK },
		{ "virtiofs", HV_SKIP_NETWORK },
		{ "vboxsf", HV_SKIP_NETWORK },
		{ "fuse", HV_SKIP_FUSE },
		{ "fuseblk", HV_SKIP_FUSE },
		{ "fuse.sshfs", HV_SKIP_FUSE },
		{ "fuse.glusterfs", HV_SKIP_FUSE },
		{ "fuse.gvfsd-fuse", HV_SKIP_FUSE },
	};
	const hv_freeze_policy policy = { .sysfs_root = NO_SYSFS };
	g_autoptr(hv_mount_table) table = fake_table();
	g_autoptr(hv_freeze_plan) plan = NULL;

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *target = g_strdup_printf("/mnt/%s", cases[i].fstype);
		g_autofree char *source = g_strdup_printf("/dev/disk%zu", i);
		unsigned int min = 16 * (unsigned int)i;

		add_mount(table, fake_mount(8, min, "/", target, cases[i].fstype, source, false));
	}

	plan = build(table, &policy);
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *target = g_strdup_printf("/mnt/%s", cases[i].fstype);

		print_message("%s\n", cases[i].fstype);
		assert_int_equal(reason_of(plan, target), cases[i].reason);
	}
}

/* Read-only wins over everything; not-block needs both major 0 and no /dev source. */
static void test_read_only_and_not_block(void **state)
{
	static const expected_reason expected[] = {
		{ "/ro-nfs", HV_SKIP_READ_ONLY },
		{ "/ro-ext4", HV_SKIP_READ_ONLY },
		{ "/zfs", HV_SKIP_NOT_BLOCK },
		{ "/ecryptfs", HV_SKIP_NOT_BLOCK },
		{ "/btrfs", PLANNED },
		{ "/ext4", PLANNED },
	};
	const hv_freeze_policy policy = { .sysfs_root = NO_SYSFS };
	g_autoptr(hv_mount_table) table = fake_table();
	g_autoptr(hv_freeze_plan) plan = NULL;

	add_mount(table, fake_mount(0, 50, "/", "/ro-nfs", "nfs4", "srv:/x", true));
	add_mount(table, fake_mount(8, 1, "/", "/ro-ext4", "ext4", "/dev/sda1", true));
	add_mount(table, fake_mount(0, 51, "/", "/zfs", "zfs", "tank/data", false));
	add_mount(table, fake_mount(0, 52, "/", "/ecryptfs", "ecryptfs", "/home/.Private", false));
	add_mount(table, fake_mount(0, 53, "/", "/btrfs", "btrfs", "/dev/sdb", false));
	add_mount(table, fake_mount(8, 32, "/", "/ext4", "ext4", "UUID=1234", false));

	plan = build(table, &policy);
	check_reasons(plan, expected, G_N_ELEMENTS(expected));
}

/* Entries with NULL strings (a table built by hand) do not crash the plan. */
static void test_null_fields(void **state)
{
	const hv_freeze_policy policy = { .sysfs_root = NO_SYSFS };
	g_autoptr(hv_mount_table) table = fake_table();
	g_autoptr(hv_freeze_plan) plan = NULL;
	const hv_plan_skip *s;

	add_mount(table, fake_mount(0, 60, NULL, NULL, NULL, NULL, false));
	add_mount(table, fake_mount(8, 1, NULL, "/", "ext4", NULL, false));

	plan = build(table, &policy);
	assert_int_equal(plan->targets->len, 1);
	assert_int_equal(plan->skipped->len, 1);
	s = g_ptr_array_index(plan->skipped, 0);
	assert_int_equal(s->reason, HV_SKIP_NOT_BLOCK);
	assert_string_equal(s->mountpoint, "");
}

static void test_workstation(void **state)
{
	static const expected_reason expected[] = {
		{ "/", PLANNED }, /* errors=remount-ro is not ro */
		{ "/boot/efi", PLANNED },
		{ "/home", PLANNED },
		{ "/srv", PLANNED }, /* no mount of the btrfs at its root: the first */
		{ "/srv/db", HV_SKIP_DUPLICATE },
		{ "/data\ttab", PLANNED },
		{ "/sys", HV_SKIP_PSEUDO },
		{ "/proc", HV_SKIP_PSEUDO },
		{ "/dev", HV_SKIP_PSEUDO },
		{ "/run", HV_SKIP_PSEUDO },
		{ "/sys/fs/cgroup", HV_SKIP_PSEUDO },
		{ "/sys/firmware/efi/efivars", HV_SKIP_PSEUDO },
		{ "/proc/sys/fs/binfmt_misc", HV_SKIP_PSEUDO },
		{ "/sys/fs/fuse/connections", HV_SKIP_PSEUDO },
		{ "/snap/core22/1122", HV_SKIP_READ_ONLY },
		{ "/snap/firefox/3836", HV_SKIP_PSEUDO },
		{ "/mnt/backup", HV_SKIP_READ_ONLY }, /* superblock ro */
		{ "/tank", HV_SKIP_NOT_BLOCK },
		{ "/mnt/none", HV_SKIP_NOT_BLOCK },
		{ "/run/user/1000/gvfs", HV_SKIP_FUSE },
		{ "/run/user/1000/doc", HV_SKIP_FUSE },
		{ "/media/user/USB DISK", HV_SKIP_FUSE },
		{ "/mnt/remote", HV_SKIP_FUSE },
		{ "/var/lib/lxcfs", HV_SKIP_FUSE },
		{ "/mnt/nas", HV_SKIP_NETWORK },
		{ "/mnt/share", HV_SKIP_NETWORK },
		{ "/mnt/ceph", HV_SKIP_NETWORK },
		{ "/mnt/host", HV_SKIP_NETWORK },
		{ "/mnt/9p", HV_SKIP_NETWORK },
		{ "/mnt/gluster", HV_SKIP_NETWORK },
		{ "/mnt/smb", HV_SKIP_NETWORK },
		{ "/var/lib/docker/overlay2/4f1c/merged", HV_SKIP_PSEUDO },
		{ "/run/docker/netns/8a2b", HV_SKIP_PSEUDO },
		{ "/var/lib/docker/overlay2/4f1c/merged/var/lib/postgresql", HV_SKIP_DUPLICATE },
		{ "/mnt/erofs", HV_SKIP_PSEUDO },
		{ "/mnt/ramfs", HV_SKIP_PSEUDO },
	};
	static const expected_target order[] = {
		{ "/data\ttab", 0 }, { "/srv", 0 }, { "/home", 0 }, { "/boot/efi", 0 }, { "/", 0 },
	};
	g_autoptr(hv_freeze_plan) plan = build_fixture("workstation.txt", NO_SYSFS);
	const hv_freeze_target *srv = find_target(plan, "/srv");

	check_reasons(plan, expected, G_N_ELEMENTS(expected));
	check_order(plan, order, G_N_ELEMENTS(order), 1);

	assert_non_null(srv);
	assert_string_equal(srv->fstype, "btrfs");
	assert_string_equal(srv->source, "/dev/sda1");
	assert_int_equal(srv->dev, makedev(0, 40));
}

/* Skipped mounts are listed in mountinfo order with their file system type. */
static void test_skipped_order(void **state)
{
	g_autoptr(hv_freeze_plan) plan = build_fixture("workstation.txt", NO_SYSFS);
	const hv_plan_skip *first = g_ptr_array_index(plan->skipped, 0);
	const hv_plan_skip *last = g_ptr_array_index(plan->skipped, plan->skipped->len - 1);

	assert_string_equal(first->mountpoint, "/sys");
	assert_string_equal(first->fstype, "sysfs");
	assert_string_equal(last->mountpoint, "/mnt/none");
	assert_string_equal(last->fstype, "ecryptfs");
}

/* Bind mounts and btrfs subvolumes: one target per superblock, at its root if mounted. */
static void test_sandbox_dedup(void **state)
{
	static const expected_reason expected[] = {
		{ "/tmp/hvfix/data-sub", HV_SKIP_DUPLICATE }, /* first, but not the root */
		{ "/tmp/hvfix/ext4", PLANNED },
		{ "/tmp/hvfix/ext4/with space", HV_SKIP_DUPLICATE },
		{ "/tmp/hvfix/ext4/with\ttab", HV_SKIP_DUPLICATE },
		{ "/tmp/hvfix/ext4/back\\slash", HV_SKIP_DUPLICATE },
		{ "/tmp/hvfix/robind", HV_SKIP_READ_ONLY },
		{ "/tmp/hvfix/ro", HV_SKIP_READ_ONLY },
		{ "/tmp/hvfix/btrfs-a", HV_SKIP_DUPLICATE },
		{ "/tmp/hvfix/btrfs-b", HV_SKIP_DUPLICATE },
		{ "/tmp/hvfix/btrfs-top", PLANNED }, /* last, but the root */
		{ "/tmp/hvfix/overlay", HV_SKIP_PSEUDO },
		{ "/tmp/hvfix", HV_SKIP_PSEUDO },
		{ "/tmp/hvfix/inner", PLANNED },
		{ "/tmp/hvfix/deep", PLANNED },
		{ "/", PLANNED },
	};
	g_autoptr(hv_freeze_plan) plan = build_fixture("sandbox.txt", SYSFS("sandbox"));

	check_reasons(plan, expected, G_N_ELEMENTS(expected));
}

/* Real two-level stack: deep.img on the inner ext4, inner.img on the outer ext4. */
static void test_sandbox_waves(void **state)
{
	static const expected_target order[] = {
		{ "/tmp/hvfix/deep", 0 },
		{ "/tmp/hvfix/btrfs-top", 0 },
		{ "/", 0 },
		{ "/tmp/hvfix/inner", 1 },
		{ "/tmp/hvfix/ext4", 2 },
	};
	g_autoptr(hv_freeze_plan) plan = build_fixture("sandbox.txt", SYSFS("sandbox"));

	check_order(plan, order, G_N_ELEMENTS(order), 3);
}

/*
 * stack.txt: loop files on /data (loop0 directly, loop1 under dm-0, loop5
 * under a btrfs found by source name, loop7 under a dm found by
 * /dev/mapper name, loop8 under a partition), a second level on /srv/img
 * (loop2, and loop6 under dm-2 under dm-1), and misses (loop3 has no sysfs
 * entry, loop4's file is on tmpfs).
 */
static void test_stack_waves(void **state)
{
	static const expected_target order[] = {
		{ "/srv/part", 0 },    { "/srv/dmbtrfs", 0 }, { "/srv/dm2", 0 },
		{ "/srv/btrfs", 0 },   { "/srv/shm", 0 },     { "/srv/nosys", 0 },
		{ "/srv/deep", 0 },    { "/srv/dm", 0 },      { "/", 0 },
		{ "/srv/img", 1 },     { "/data", 2 },
	};
	g_autoptr(hv_freeze_plan) plan = build_fixture("stack.txt", SYSFS("stack"));

	check_order(plan, order, G_N_ELEMENTS(order), 3);
	assert_int_equal(reason_of(plan, "/srv/images"), HV_SKIP_DUPLICATE);
}

/* Without sysfs there is no dependency: one wave, reverse mountinfo order. */
static void test_missing_sysfs(void **state)
{
	static const expected_target order[] = {
		{ "/srv/part", 0 },   { "/srv/dmbtrfs", 0 }, { "/srv/dm2", 0 }, { "/srv/btrfs", 0 },
		{ "/srv/shm", 0 },    { "/srv/nosys", 0 },   { "/srv/deep", 0 }, { "/srv/dm", 0 },
		{ "/srv/img", 0 },    { "/data", 0 },	     { "/", 0 },
	};
	g_autoptr(hv_freeze_plan) plan = build_fixture("stack.txt", NO_SYSFS);

	check_order(plan, order, G_N_ELEMENTS(order), 1);
}

static const hv_freeze_target *find_dev(const hv_freeze_plan *plan, dev_t dev)
{
	for (guint i = 0; i < plan->targets->len; i++) {
		const hv_freeze_target *t = g_ptr_array_index(plan->targets, i);

		if (t->dev == dev)
			return t;
	}

	return NULL;
}

/*
 * Each lookup path on its own, against the stack sysfs tree: one stacked
 * file system over a base table, and the file system that must wait for it.
 */
static void test_stack_lookups(void **state)
{
	static const struct {
		const char *name;
		unsigned int major, minor;
		const char *fstype;
		const char *source;
		const char *lower; /* NULL: no dependency */
	} cases[] = {
		{ "loop by name", 7, 0, "ext4", "/dev/loop0", "/data" },
		{ "dm by number over loop", 253, 0, "xfs", "/dev/mapper/vg-lv", "/data" },
		{ "btrfs on loop by source", 0, 50, "btrfs", "/dev/loop5", "/data" },
		{ "btrfs on dm by mapper name", 0, 51, "btrfs", "/dev/mapper/vg-btrfs", "/data" },
		{ "partition of a loop", 259, 5, "ext4", "/dev/loop8p1", "/data" },
		{ "dm over dm over loop", 253, 1, "ext4", "/dev/mapper/vg-stack", "/srv/img" },
		{ "loop, second level", 7, 2, "ext4", "/dev/loop2", "/srv/img" },
		{ "loop without sysfs entry", 7, 3, "ext4", "/dev/loop3", NULL },
		{ "loop file on tmpfs", 7, 4, "ext4", "/dev/loop4", NULL },
		{ "unknown mapper name", 0, 52, "btrfs", "/dev/mapper/vg-missing", NULL },
		{ "dm without slaves", 0, 53, "btrfs", "/dev/mapper/vg-unused", NULL },
		{ "source outside /dev", 0, 54, "btrfs", "/dev/../dev/loop0", NULL },
	};
	const hv_freeze_policy policy = { .sysfs_root = SYSFS("stack") };

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(hv_mount_table) table = fake_table();
		g_autoptr(hv_freeze_plan) plan = NULL;
		const hv_freeze_target *stacked;

		print_message("%s\n", cases[i].name);
		add_mount(table, fake_mount(8, 1, "/", "/", "ext4", "/dev/sda1", false));
		add_mount(table, fake_mount(0, 21, "/", "/dev/shm", "tmpfs", "tmpfs", false));
		add_mount(table, fake_mount(8, 17, "/", "/data", "ext4", "/dev/sdb1", false));
		add_mount(table, fake_mount(8, 17, "/images", "/srv/images", "ext4", "/dev/sdb1",
					    false));
		add_mount(table, fake_mount(8, 33, "/", "/srv/img", "ext4", "/dev/sdc1", false));
		add_mount(table, fake_mount(cases[i].major, cases[i].minor, "/", "/stacked",
					    cases[i].fstype, cases[i].source, false));

		plan = build(table, &policy);
		stacked = find_target(plan, "/stacked");
		assert_non_null(stacked);
		assert_int_equal(stacked->wave, 0);
		for (guint t = 0; t < plan->targets->len; t++) {
			const hv_freeze_target *other = g_ptr_array_index(plan->targets, t);
			bool is_lower = cases[i].lower &&
					strcmp(other->mountpoint, cases[i].lower) == 0;

			assert_int_equal(other->wave, is_lower ? 1 : 0);
		}
		assert_int_equal(plan->n_waves, cases[i].lower ? 2 : 1);
	}
}

/* The backing file is on the file system mounted last over the same directory. */
static void test_overmounted_holder(void **state)
{
	const hv_freeze_policy policy = { .sysfs_root = SYSFS("stack") };
	g_autoptr(hv_mount_table) table = fake_table();
	g_autoptr(hv_freeze_plan) plan = NULL;

	add_mount(table, fake_mount(8, 1, "/", "/", "ext4", "/dev/sda1", false));
	add_mount(table, fake_mount(8, 17, "/", "/data", "ext4", "/dev/sdb1", false));
	add_mount(table, fake_mount(8, 33, "/", "/data", "ext4", "/dev/sdc1", false));
	add_mount(table, fake_mount(7, 0, "/", "/srv/img", "ext4", "/dev/loop0", false));

	plan = build(table, &policy);
	assert_int_equal(plan->n_waves, 2);
	assert_int_equal(find_dev(plan, makedev(8, 33))->wave, 1);
	assert_int_equal(find_dev(plan, makedev(8, 17))->wave, 0);
	assert_int_equal(find_dev(plan, makedev(7, 0))->wave, 0);
}

/* "/" is the last target of every fixture without dependencies on it. */
static void test_root_last(void **state)
{
	static const struct {
		const char *name;
		const char *sysfs;
	} cases[] = {
		{ "host.txt", NO_SYSFS },
		{ "workstation.txt", NO_SYSFS },
		{ "sandbox.txt", NO_SYSFS },
		{ "stack.txt", NO_SYSFS },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(hv_freeze_plan) plan = build_fixture(cases[i].name, cases[i].sysfs);
		const hv_freeze_target *last;

		print_message("%s\n", cases[i].name);
		assert_true(plan->targets->len > 0);
		last = g_ptr_array_index(plan->targets, plan->targets->len - 1);
		assert_string_equal(last->mountpoint, "/");
	}
}

/*
 * cycle.txt: /a and /b on files of each other, /c on a file of itself,
 * /srv/boundary on /database/f.img (on "/", not on "/data"), a relative
 * backing file, and a device-mapper device listed as its own slave.
 */
static void test_cycles(void **state)
{
	g_autoptr(hv_freeze_plan) plan = build_fixture("cycle.txt", SYSFS("cycle"));
	const hv_freeze_target *a = find_target(plan, "/a");
	const hv_freeze_target *b = find_target(plan, "/b");
	const hv_freeze_target *root = find_target(plan, "/");
	const hv_freeze_target *boundary = find_target(plan, "/srv/boundary");
	const hv_freeze_target *data = find_target(plan, "/data");

	assert_int_equal(plan->targets->len, 8);
	assert_int_equal(plan->n_waves, 2);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_not_equal(a->wave, b->wave);
	assert_int_equal(find_target(plan, "/c")->wave, 0);
	assert_int_equal(find_target(plan, "/srv/relative")->wave, 0);
	assert_int_equal(find_target(plan, "/srv/dmloop")->wave, 0);
	assert_int_equal(boundary->wave, 0);
	assert_int_equal(root->wave, 1);
	assert_int_equal(data->wave, 0);
}

static char *write_file(const char *dir, const char *rel, const char *contents)
{
	g_autofree char *path = g_build_filename(dir, rel, NULL);
	g_autofree char *parent = g_path_get_dirname(path);

	assert_int_equal(g_mkdir_with_parents(parent, 0755), 0);
	assert_true(g_file_set_contents(path, contents, -1, NULL));
	return g_steal_pointer(&path);
}

static void remove_tree(const char *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const char *entry;

	while (dir && (entry = g_dir_read_name(dir))) {
		g_autofree char *child = g_build_filename(path, entry, NULL);

		if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
			remove_tree(child);
		else
			g_unlink(child);
	}
	g_rmdir(path);
}

/*
 * A chain of 40 loop file systems, each on a file of the previous one:
 * waves stop growing at the cap instead of following the chain, and the
 * plan still lists every file system once.
 */
static void test_deep_chain(void **state)
{
	enum { CHAIN = 40 };
	g_autoptr(GError) error = NULL;
	g_autofree char *sysfs = g_dir_make_tmp("test-freeze-plan-XXXXXX", &error);
	g_autoptr(hv_mount_table) table = fake_table();
	g_autoptr(hv_freeze_plan) plan = NULL;
	hv_freeze_policy policy = { .sysfs_root = sysfs };
	const hv_freeze_target *first, *last;

	assert_non_null(sysfs);
	add_mount(table, fake_mount(8, 1, "/", "/", "ext4", "/dev/sda1", false));
	for (unsigned int i = 0; i < CHAIN; i++) {
		g_autofree char *target = g_strdup_printf("/l%u", i);
		g_autofree char *source = g_strdup_printf("/dev/loop%u", i);
		g_autofree char *rel = g_strdup_printf("block/loop%u/loop/backing_file", i);
		g_autofree char *backing = i == 0 ? g_strdup("/img") :
						    g_strdup_printf("/l%u/img", i - 1);
		g_autofree char *file = write_file(sysfs, rel, backing);

		add_mount(table, fake_mount(7, i, "/", target, "ext4", source, false));
	}

	plan = build(table, &policy);
	remove_tree(sysfs);

	assert_int_equal(plan->targets->len, CHAIN + 1);
	assert_true(plan->n_waves >= 2);
	assert_true(plan->n_waves <= 33);
	first = g_ptr_array_index(plan->targets, 0);
	last = g_ptr_array_index(plan->targets, plan->targets->len - 1);
	assert_string_equal(first->mountpoint, "/l39");
	assert_int_equal(first->wave, 0);
	assert_int_equal(last->wave, plan->n_waves - 1);
	for (guint i = 1; i < plan->targets->len; i++) {
		const hv_freeze_target *prev = g_ptr_array_index(plan->targets, i - 1);
		const hv_freeze_target *t = g_ptr_array_index(plan->targets, i);

		assert_true(prev->wave <= t->wave);
	}
}

typedef struct exclusion_case {
	const char *name;
	const char *const *mountpoints;
	const char *const *fstypes;
	expected_reason expected[4];
} exclusion_case;

static void test_exclusions(void **state)
{
	static const char *const efi[] = { "/boot/efi", NULL };
	static const char *const boot_tree[] = { "/boot/?*", NULL };
	static const char *const star[] = { "/h*", "/data?tab", NULL };
	static const char *const srv[] = { "/srv", NULL };
	static const char *const none[] = { NULL };
	static const char *const vfat_xfs[] = { "vfat", "xfs", NULL };
	static const char *const prefix_only[] = { "ext", NULL };
	static const char *const proc_backup[] = { "/proc", "/mnt/backup", NULL };
	static const exclusion_case cases[] = {
		{ "exact path", efi, NULL,
		  { { "/boot/efi", HV_SKIP_EXCLUDED_PATH },
		    { "/", PLANNED },
		    { "/home", PLANNED } } },
		{ "glob below a directory", boot_tree, NULL,
		  { { "/boot/efi", HV_SKIP_EXCLUDED_PATH }, { "/", PLANNED } } },
		{ "star and question mark (matches a tab)", star, NULL,
		  { { "/home", HV_SKIP_EXCLUDED_PATH },
		    { "/data\ttab", HV_SKIP_EXCLUDED_PATH },
		    { "/", PLANNED },
		    { "/srv", PLANNED } } },
		/* per mount: another mount of the same btrfs takes over */
		{ "excluded mount, other mount kept", srv, NULL,
		  { { "/srv", HV_SKIP_EXCLUDED_PATH }, { "/srv/db", PLANNED } } },
		{ "empty lists", none, none, { { "/", PLANNED }, { "/boot/efi", PLANNED } } },
		{ "fstypes", NULL, vfat_xfs,
		  { { "/boot/efi", HV_SKIP_EXCLUDED_FSTYPE },
		    { "/home", HV_SKIP_EXCLUDED_FSTYPE },
		    { "/data\ttab", HV_SKIP_EXCLUDED_FSTYPE },
		    { "/", PLANNED } } },
		{ "fstypes compare exactly", NULL, prefix_only, { { "/", PLANNED } } },
		/* an earlier rule gives the reason */
		{ "path after pseudo", proc_backup, NULL,
		  { { "/proc", HV_SKIP_PSEUDO }, { "/mnt/backup", HV_SKIP_READ_ONLY } } },
		{ "path before fstype", efi, vfat_xfs,
		  { { "/boot/efi", HV_SKIP_EXCLUDED_PATH },
		    { "/home", HV_SKIP_EXCLUDED_FSTYPE } } },
	};
	g_autoptr(hv_mount_table) table = load_fixture("workstation.txt");

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		const exclusion_case *c = &cases[i];
		const hv_freeze_policy policy = {
			.exclude_mountpoints = c->mountpoints,
			.exclude_fstypes = c->fstypes,
			.sysfs_root = NO_SYSFS,
		};
		g_autoptr(hv_freeze_plan) plan = NULL;
		size_t n = 0;

		print_message("%s\n", c->name);
		plan = build(table, &policy);
		while (n < G_N_ELEMENTS(c->expected) && c->expected[n].mountpoint)
			n++;
		check_reasons(plan, c->expected, n);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reason_names),
		cmocka_unit_test(test_null_args),
		cmocka_unit_test(test_null_policy),
		cmocka_unit_test(test_empty_table),
		cmocka_unit_test(test_fstype_reasons),
		cmocka_unit_test(test_read_only_and_not_block),
		cmocka_unit_test(test_null_fields),
		cmocka_unit_test(test_workstation),
		cmocka_unit_test(test_skipped_order),
		cmocka_unit_test(test_sandbox_dedup),
		cmocka_unit_test(test_sandbox_waves),
		cmocka_unit_test(test_stack_waves),
		cmocka_unit_test(test_stack_lookups),
		cmocka_unit_test(test_overmounted_holder),
		cmocka_unit_test(test_missing_sysfs),
		cmocka_unit_test(test_root_last),
		cmocka_unit_test(test_cycles),
		cmocka_unit_test(test_deep_chain),
		cmocka_unit_test(test_exclusions),
	};

	return cmocka_run_group_tests_name("freeze-plan", tests, NULL, NULL);
}
