/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for common/mount-table.c on the mountinfo fixtures
 * (tests/fixtures/mountinfo/, see capture-sandbox.sh there).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/sysmacros.h>

#include <cmocka.h>

#include "hv-mount.h"

static char *fixture(const char *name)
{
	return g_build_filename(HV_FIXTURES_DIR, "mountinfo", name, NULL);
}

static hv_mount_table *load_fixture(const char *name)
{
	g_autofree char *path = fixture(name);
	hv_mount_table *table = NULL;

	assert_int_equal(hv_mount_table_load(path, &table), 0);
	assert_non_null(table);
	assert_non_null(table->mounts);
	return table;
}

static const hv_mount *find_target(const hv_mount_table *table, const char *target)
{
	for (guint i = 0; i < table->mounts->len; i++) {
		const hv_mount *m = g_ptr_array_index(table->mounts, i);

		if (strcmp(m->target, target) == 0)
			return m;
	}

	return NULL;
}

static const hv_mount *find_id(const hv_mount_table *table, int id)
{
	for (guint i = 0; i < table->mounts->len; i++) {
		const hv_mount *m = g_ptr_array_index(table->mounts, i);

		if (m->id == id)
			return m;
	}

	return NULL;
}

static guint count_lines(const char *name)
{
	g_autofree char *path = fixture(name);
	g_autofree char *contents = NULL;
	guint n = 0;

	assert_true(g_file_get_contents(path, &contents, NULL, NULL));
	for (const char *p = contents; *p; p++)
		if (*p == '\n')
			n++;

	return n;
}

static void test_null_args(void **state)
{
	g_autofree char *path = fixture("sandbox.txt");

	assert_int_equal(hv_mount_table_load(path, NULL), -EINVAL);
	assert_int_equal(hv_mount_table_load(NULL, NULL), -EINVAL);
}

static void test_free_null(void **state)
{
	g_autoptr(hv_mount_table) table = NULL;

	hv_mount_table_free(NULL);
}

static void test_missing_file(void **state)
{
	hv_mount_table *table = NULL;

	assert_int_equal(hv_mount_table_load(HV_FIXTURES_DIR "/mountinfo/no-such-file", &table),
			 -ENOENT);
	assert_null(table);
}

static void test_empty(void **state)
{
	g_autoptr(hv_mount_table) table = load_fixture("empty.txt");

	assert_int_equal(table->mounts->len, 0);
}

/* Files that must be refused as a whole, leaving *ret untouched. */
static void test_damaged(void **state)
{
	static const struct {
		const char *name;
		int expected;
	} cases[] = {
		/* last line cut in the middle (no superblock options) */
		{ "truncated.txt", -EBADMSG },
		/* "7:zero" in the major:minor field of a middle line */
		{ "damaged.txt", -EBADMSG },
		/* /proc/self/mounts is not mountinfo: libmount parses it as fstab */
		{ "mounts-format.txt", -EBADMSG },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *path = fixture(cases[i].name);
		hv_mount_table *table = NULL;

		print_message("%s\n", cases[i].name);
		assert_int_equal(hv_mount_table_load(path, &table), cases[i].expected);
		assert_null(table);
	}
}

static void test_self(void **state)
{
	g_autoptr(hv_mount_table) table = NULL;

	assert_int_equal(hv_mount_table_load(NULL, &table), 0);
	assert_non_null(table);
	assert_true(table->mounts->len > 0);

	for (guint i = 0; i < table->mounts->len; i++) {
		const hv_mount *m = g_ptr_array_index(table->mounts, i);

		assert_non_null(m->root);
		assert_non_null(m->target);
		assert_non_null(m->fstype);
		assert_non_null(m->source);
		assert_non_null(m->vfs_options);
		assert_non_null(m->fs_options);
		assert_true(m->target[0] == '/');
	}
}

/* Every line becomes one entry, in file order. */
static void test_counts(void **state)
{
	static const char *const names[] = {
		"sandbox.txt", "host.txt", "workstation.txt", "stack.txt", "cycle.txt",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autoptr(hv_mount_table) table = load_fixture(names[i]);

		print_message("%s\n", names[i]);
		assert_int_equal(table->mounts->len, count_lines(names[i]));
	}
}

static void test_sandbox_order(void **state)
{
	/* ids as they appear in the file: not sorted, 43 comes after 61 */
	static const int ids[] = {
		42, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58,
		59, 60, 61, 43, 63, 62, 64, 65, 66, 67, 68, 70, 71, 72, 74, 75, 76,
	};
	g_autoptr(hv_mount_table) table = load_fixture("sandbox.txt");

	assert_int_equal(table->mounts->len, G_N_ELEMENTS(ids));
	for (guint i = 0; i < table->mounts->len; i++) {
		const hv_mount *m = g_ptr_array_index(table->mounts, i);

		assert_int_equal(m->id, ids[i]);
	}
}

typedef struct expected_mount {
	int id;
	int parent_id;
	unsigned int major;
	unsigned int minor;
	const char *root;
	const char *target;
	const char *fstype;
	const char *source;
	const char *vfs_options;
	const char *fs_options;
	bool read_only;
} expected_mount;

static void check_mounts(const char *name, const expected_mount *cases, size_t n)
{
	g_autoptr(hv_mount_table) table = load_fixture(name);

	for (size_t i = 0; i < n; i++) {
		const expected_mount *e = &cases[i];
		const hv_mount *m = find_id(table, e->id);

		print_message("%s: id %d\n", name, e->id);
		assert_non_null(m);
		assert_int_equal(m->parent_id, e->parent_id);
		assert_int_equal(major(m->dev), e->major);
		assert_int_equal(minor(m->dev), e->minor);
		assert_string_equal(m->root, e->root);
		assert_string_equal(m->target, e->target);
		assert_string_equal(m->fstype, e->fstype);
		assert_string_equal(m->source, e->source);
		assert_string_equal(m->vfs_options, e->vfs_options);
		assert_string_equal(m->fs_options, e->fs_options);
		assert_int_equal(m->read_only, e->read_only);
	}
}

static void test_sandbox_fields(void **state)
{
	static const expected_mount cases[] = {
		{ 42, 41, 254, 0, "/", "/", "ext4", "/dev/vda", "rw,relatime",
		  "rw,discard,resv_strict,resuid=65534,resgid=65534", false },
		{ 43, 42, 0, 38, "/", "/tmp/hvfix", "tmpfs", "hvfix-tmp", "rw,relatime",
		  "rw,size=524288k", false },
		{ 63, 43, 7, 0, "/sub", "/tmp/hvfix/data-sub", "ext4", "/dev/loop0", "rw,relatime",
		  "rw", false },
		{ 62, 43, 7, 0, "/", "/tmp/hvfix/ext4", "ext4", "/dev/loop0", "rw,relatime", "rw",
		  false },
		/* \040, \011 and \134 in the file */
		{ 64, 62, 7, 0, "/sub", "/tmp/hvfix/ext4/with space", "ext4", "/dev/loop0",
		  "rw,relatime", "rw", false },
		{ 65, 62, 7, 0, "/sub", "/tmp/hvfix/ext4/with\ttab", "ext4", "/dev/loop0",
		  "rw,relatime", "rw", false },
		{ 66, 62, 7, 0, "/sub", "/tmp/hvfix/ext4/back\\slash", "ext4", "/dev/loop0",
		  "rw,relatime", "rw", false },
		/* read-only bind mount of a writable superblock */
		{ 67, 43, 7, 0, "/", "/tmp/hvfix/robind", "ext4", "/dev/loop0", "ro,relatime", "rw",
		  true },
		{ 68, 43, 7, 2, "/", "/tmp/hvfix/ro", "ext4", "/dev/loop2", "ro,relatime", "ro",
		  true },
		/* btrfs: anonymous device, /dev source, subvolume as root */
		{ 70, 43, 0, 39, "/@a", "/tmp/hvfix/btrfs-a", "btrfs", "/dev/loop1", "rw,relatime",
		  "rw,ssd,discard=async,space_cache=v2,subvolid=256,subvol=/@a", false },
		{ 72, 43, 0, 39, "/", "/tmp/hvfix/btrfs-top", "btrfs", "/dev/loop1", "rw,relatime",
		  "rw,ssd,discard=async,space_cache=v2,subvolid=5,subvol=/", false },
		{ 74, 43, 0, 43, "/", "/tmp/hvfix/overlay", "overlay", "overlay", "rw,relatime",
		  "rw,lowerdir=/tmp/hvfix/ext4/lower,upperdir=/tmp/hvfix/ext4/upper,"
		  "workdir=/tmp/hvfix/ext4/work,uuid=on",
		  false },
		{ 76, 43, 7, 4, "/", "/tmp/hvfix/deep", "ext4", "/dev/loop4", "rw,relatime", "rw",
		  false },
	};

	check_mounts("sandbox.txt", cases, G_N_ELEMENTS(cases));
}

static void test_workstation_fields(void **state)
{
	static const expected_mount cases[] = {
		/* "errors=remount-ro" is not "ro" */
		{ 28, 1, 259, 2, "/", "/", "ext4", "/dev/nvme0n1p2", "rw,relatime",
		  "rw,errors=remount-ro", false },
		{ 63, 28, 259, 1, "/", "/boot/efi", "vfat", "/dev/nvme0n1p1", "rw,relatime",
		  "rw,fmask=0077,dmask=0077,codepage=437,iocharset=iso8859-1,shortname=mixed,"
		  "errors=remount-ro",
		  false },
		/* read-only superblock under a writable mount */
		{ 68, 28, 8, 33, "/", "/mnt/backup", "ext4", "/dev/sdc1", "rw,relatime",
		  "ro,errors=remount-ro", true },
		{ 60, 28, 7, 1, "/", "/snap/core22/1122", "squashfs", "/dev/loop1",
		  "ro,nodev,relatime", "ro,errors=continue,threads=single", true },
		{ 82, 28, 0, 52, "/", "/media/user/USB DISK", "fuseblk", "/dev/sdd1",
		  "rw,nosuid,nodev,relatime",
		  "rw,user_id=0,group_id=0,default_permissions,allow_other,blksize=4096", false },
		{ 91, 26, 0, 4, "net:[4026532710]", "/run/docker/netns/8a2b", "nsfs", "nsfs", "rw",
		  "rw", false },
		{ 96, 28, 8, 49, "/", "/data\ttab", "xfs", "/dev/sde1", "rw,relatime",
		  "rw,attr2,inode64,noquota", false },
		{ 80, 28, 0, 50, "/", "/mnt/nas", "nfs4", "nas.example.com:/export/media",
		  "rw,relatime",
		  "rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,"
		  "retrans=2,sec=sys,clientaddr=192.0.2.10,local_lock=none,addr=192.0.2.20",
		  false },
	};

	check_mounts("workstation.txt", cases, G_N_ELEMENTS(cases));
}

static void test_host(void **state)
{
	g_autoptr(hv_mount_table) table = load_fixture("host.txt");
	const hv_mount *root = find_target(table, "/");
	const hv_mount *shm;
	guint n_shm = 0;

	assert_non_null(root);
	assert_string_equal(root->fstype, "ext4");
	assert_string_equal(root->source, "/dev/vda");
	assert_int_equal(root->dev, makedev(254, 0));
	assert_false(root->read_only);

	/* over-mounted: two entries with the same target, both kept */
	for (guint i = 0; i < table->mounts->len; i++) {
		shm = g_ptr_array_index(table->mounts, i);
		if (strcmp(shm->target, "/dev/shm") == 0)
			n_shm++;
	}
	assert_int_equal(n_shm, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_null_args),
		cmocka_unit_test(test_free_null),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_damaged),
		cmocka_unit_test(test_self),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_sandbox_order),
		cmocka_unit_test(test_sandbox_fields),
		cmocka_unit_test(test_workstation_fields),
		cmocka_unit_test(test_host),
	};

	return cmocka_run_group_tests_name("mount-table", tests, NULL, NULL);
}
