/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The mount table (libmount on a mountinfo file, common/mount-table.c) and
 * the freeze plan built from it (common/freeze-plan.c) against the fake
 * sysfs trees of tests/fixtures/sysfs: the input is written to a file and
 * loaded the way the daemon loads /proc/self/mountinfo.
 *
 * Checked: a loaded table has no NULL strings; the plan accounts for every
 * mount exactly once (a target or a skip with a valid reason), has one
 * target per superblock, and its targets are in wave order within the
 * number of waves it reports.
 */
#include <errno.h>
#include <glib.h>
#include <stdio.h>

#include "fuzz-util.h"
#include "hv-freeze-plan.h"
#include "hv-mount.h"

static const char *const sysfs_roots[] = {"stack", "cycle", "sandbox"};
static char *mountinfo_path; /* lives as long as the process */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	hv_fuzz_glib_fatal_warnings();
	mountinfo_path = g_build_filename(hv_fuzz_tmpdir(), "mountinfo", NULL);
	return 0;
}

static void check_plan(const hv_mount_table *table, const hv_freeze_plan *plan)
{
	g_autoptr(GHashTable) devs = g_hash_table_new(g_int64_hash, g_int64_equal);
	g_autofree gint64 *keys = g_new0(gint64, plan->targets->len + 1);
	unsigned int last_wave = 0;

	HV_FUZZ_CHECK(plan->targets->len + plan->skipped->len == table->mounts->len);
	if (plan->targets->len)
		HV_FUZZ_CHECK(plan->n_waves >= 1);

	for (guint i = 0; i < plan->targets->len; i++) {
		const hv_freeze_target *t = g_ptr_array_index(plan->targets, i);

		HV_FUZZ_CHECK(t->mountpoint && t->fstype && t->source);
		HV_FUZZ_CHECK(t->wave < plan->n_waves);
		HV_FUZZ_CHECK(t->wave >= last_wave);
		last_wave = t->wave;

		keys[i] = (gint64)t->dev;
		HV_FUZZ_CHECK(!g_hash_table_contains(devs, &keys[i]));
		g_hash_table_add(devs, &keys[i]);
	}

	for (guint i = 0; i < plan->skipped->len; i++) {
		const hv_plan_skip *s = g_ptr_array_index(plan->skipped, i);

		HV_FUZZ_CHECK(s->mountpoint && s->fstype);
		HV_FUZZ_CHECK(hv_skip_reason_to_string(s->reason) != NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const exclude_paths[] = {"/mnt/?*", "/data", NULL};
	static const char *const exclude_types[] = {"xfs", NULL};
	g_autoptr(hv_mount_table) table = NULL;
	g_autoptr(hv_freeze_plan) plan = NULL;
	g_autofree char *sysfs = NULL;
	hv_freeze_policy policy = {0};
	int r;

	hv_fuzz_write_file(mountinfo_path, data, size);
	r = hv_mount_table_load(mountinfo_path, &table);
	HV_FUZZ_CHECK(r <= 0 && r > -4096);
	if (r < 0)
		return 0;

	for (guint i = 0; i < table->mounts->len; i++) {
		const hv_mount *m = g_ptr_array_index(table->mounts, i);

		HV_FUZZ_CHECK(m->root && m->target && m->fstype && m->source && m->vfs_options &&
			      m->fs_options);
	}

	sysfs = g_build_filename(HV_FIXTURES_DIR, "sysfs", sysfs_roots[size % 3], NULL);
	policy.sysfs_root = sysfs;
	if (size & 4) {
		policy.exclude_mountpoints = exclude_paths;
		policy.exclude_fstypes = exclude_types;
	}

	r = hv_freeze_plan_build(table, &policy, &plan);
	HV_FUZZ_CHECK(r == 0 && plan);
	check_plan(table, plan);
	return 0;
}
