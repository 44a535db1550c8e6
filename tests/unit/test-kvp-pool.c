/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "hv-log.h"
#include "kvp-pool.h"

#define REC HV_KVP_POOL_RECORD_SIZE

static char *dir;

static int setup(void **state)
{
	dir = g_dir_make_tmp("hv-kvp-pool-XXXXXX", NULL);
	assert_non_null(dir);
	return 0;
}

static void rm_rf(const char *path)
{
	g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(path, name, NULL);

		if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
			rm_rf(p);
		else
			g_unlink(p);
	}
	g_rmdir(path);
}

static int teardown(void **state)
{
	rm_rf(dir);
	g_clear_pointer(&dir, g_free);
	return 0;
}

static char *path_in_dir(const char *name)
{
	return g_build_filename(dir, name, NULL);
}

/* Copies a fixture into the test directory as .kvp_pool_1; returns its path. */
static char *fixture(const char *name)
{
	g_autofree char *src = g_build_filename(HV_FIXTURES_DIR, "kvp", name, NULL);
	g_autofree char *data = NULL;
	char *dst = path_in_dir(".kvp_pool_1");
	gsize len;

	assert_true(g_file_get_contents(src, &data, &len, NULL));
	assert_true(g_file_set_contents(dst, data, (gssize)len, NULL));
	return dst;
}

static GBytes *read_file(const char *path)
{
	g_autofree char *data = NULL;
	gsize len;

	assert_true(g_file_get_contents(path, &data, &len, NULL));
	return g_bytes_new_take(g_steal_pointer(&data), len);
}

/* One record in the upstream layout, zero-padded. */
static void make_record(uint8_t rec[REC], const char *key, const char *value)
{
	memset(rec, 0, REC);
	memcpy(rec, key, strlen(key));
	memcpy(rec + HV_KVP_MAX_KEY_SIZE, value, strlen(value));
}

static void append_raw(int fd, const char *key, const char *value)
{
	uint8_t rec[REC];

	make_record(rec, key, value);
	assert_int_equal(lseek(fd, 0, SEEK_END) >= 0, 1);
	assert_int_equal(write(fd, rec, REC), REC);
}

/* The file must hold exactly these records, zero-padded, in this order. */
static void assert_file_records(const char *path, const char *const *kv, size_t n)
{
	g_autoptr(GBytes) b = read_file(path);
	const uint8_t *d = g_bytes_get_data(b, NULL);

	assert_int_equal(g_bytes_get_size(b), n * REC);
	for (size_t i = 0; i < n; i++) {
		uint8_t want[REC];

		make_record(want, kv[2 * i], kv[2 * i + 1]);
		assert_memory_equal(d + i * REC, want, REC);
	}
}

static void assert_record(kvp_pool *p, guint i, const char *key, const char *value)
{
	const kvp_record *r = kvp_pool_get_at(p, i);

	assert_non_null(r);
	assert_string_equal(r->key, key);
	assert_string_equal(r->value, value);
}

static void test_upstream_fixture(void **state)
{
	g_autofree char *path = fixture("upstream-pool");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	g_autofree char *k511 = g_strnfill(511, 'K');
	g_autofree char *v2047 = g_strnfill(2047, 'v');

	assert_int_equal(kvp_pool_refresh(p), 1);
	assert_int_equal(kvp_pool_count(p), 6);
	assert_int_equal(kvp_pool_n_invalid(p), 0);
	assert_int_equal(kvp_pool_trailing_bytes(p), 0);
	/* Stale bytes after the NULs are not part of the strings. */
	assert_record(p, 0, "ProvisioningState", "Ready");
	assert_record(p, 1, "Grüße", "日本語のテキスト");
	assert_record(p, 2, "B", "second");
	assert_record(p, 3, k511, v2047);
	assert_record(p, 4, "empty-value", "");
	assert_int_equal(strlen(kvp_pool_get_at(p, 5)->value), 1023);
	assert_null(kvp_pool_get_at(p, 6));
	assert_string_equal(kvp_pool_lookup(p, "B"), "second");
	assert_null(kvp_pool_lookup(p, "b"));
	assert_null(kvp_pool_lookup(p, "Ready"));
}

static void test_write_is_upstream_layout(void **state)
{
	g_autofree char *path = fixture("upstream-pool");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	g_autoptr(GBytes) before = read_file(path);
	g_autoptr(GBytes) after = NULL;
	const uint8_t *a;

	assert_int_equal(kvp_pool_refresh(p), 1);
	assert_int_equal(kvp_pool_set(p, "new", "value"), 0);

	after = read_file(path);
	a = g_bytes_get_data(after, NULL);
	assert_int_equal(g_bytes_get_size(after), 7 * REC);
	/* Every old record re-written as its strings, zero-padded. */
	for (guint i = 0; i < 6; i++) {
		const kvp_record *r = kvp_pool_get_at(p, i);
		uint8_t want[REC];

		make_record(want, r->key, r->value);
		assert_memory_equal(a + i * REC, want, REC);
	}
	{
		uint8_t want[REC];

		make_record(want, "new", "value");
		assert_memory_equal(a + 6 * REC, want, REC);
	}

	/* A second reader sees the same. */
	{
		g_autoptr(kvp_pool) q = kvp_pool_new(path, 0644);

		assert_int_equal(kvp_pool_refresh(q), 1);
		assert_int_equal(kvp_pool_count(q), 7);
		assert_record(q, 1, "Grüße", "日本語のテキスト");
		assert_record(q, 6, "new", "value");
	}
}

static void test_upsert_keeps_position(void **state)
{
	g_autofree char *path = path_in_dir(".kvp_pool_0");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	static const char *const want[] = { "a", "1", "b", "two", "c", "3" };

	assert_int_equal(kvp_pool_set(p, "a", "1"), 0);
	assert_int_equal(kvp_pool_set(p, "b", "2"), 0);
	assert_int_equal(kvp_pool_set(p, "c", "3"), 0);
	assert_int_equal(kvp_pool_set(p, "b", "two"), 0);
	assert_int_equal(kvp_pool_count(p), 3);
	assert_record(p, 1, "b", "two");
	assert_file_records(path, want, 3);

	/* A shorter value leaves no stale bytes behind. */
	assert_int_equal(kvp_pool_set(p, "b", "t"), 0);
	{
		static const char *const want2[] = { "a", "1", "b", "t", "c", "3" };

		assert_file_records(path, want2, 3);
	}
}

static void test_delete_moves_later_records_up(void **state)
{
	g_autofree char *path = path_in_dir(".kvp_pool_0");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	static const char *const want[] = { "a", "1", "c", "3", "d", "4" };

	assert_int_equal(kvp_pool_set(p, "a", "1"), 0);
	assert_int_equal(kvp_pool_set(p, "b", "2"), 0);
	assert_int_equal(kvp_pool_set(p, "c", "3"), 0);
	assert_int_equal(kvp_pool_set(p, "d", "4"), 0);
	assert_int_equal(kvp_pool_delete(p, "b"), 0);
	assert_int_equal(kvp_pool_count(p), 3);
	assert_record(p, 0, "a", "1");
	assert_record(p, 1, "c", "3");
	assert_record(p, 2, "d", "4");
	assert_file_records(path, want, 3);

	assert_int_equal(kvp_pool_delete(p, "b"), -ENOENT);
	assert_int_equal(kvp_pool_delete(p, "d"), 0);
	assert_int_equal(kvp_pool_delete(p, "a"), 0);
	assert_int_equal(kvp_pool_delete(p, "c"), 0);
	assert_int_equal(kvp_pool_count(p), 0);
	assert_file_records(path, NULL, 0);
	/* A new key after a delete goes at the end. */
	assert_int_equal(kvp_pool_set(p, "e", "5"), 0);
	assert_record(p, 0, "e", "5");
}

static void test_duplicates(void **state)
{
	g_autofree char *path = fixture("duplicates-pool");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	static const char *const after_set[] = { "dup", "changed", "other", "o", "dup", "second" };
	static const char *const after_delete[] = { "other", "o", "dup", "second" };

	assert_int_equal(kvp_pool_refresh(p), 1);
	assert_int_equal(kvp_pool_count(p), 3);
	assert_string_equal(kvp_pool_lookup(p, "dup"), "first");

	/* As upstream: SET and DELETE act on the first record with the key. */
	assert_int_equal(kvp_pool_set(p, "dup", "changed"), 0);
	assert_file_records(path, after_set, 3);
	assert_int_equal(kvp_pool_delete(p, "dup"), 0);
	assert_file_records(path, after_delete, 2);
	assert_string_equal(kvp_pool_lookup(p, "dup"), "second");
}

static void test_limits(void **state)
{
	g_autofree char *path = path_in_dir(".kvp_pool_0");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	g_autofree char *k511 = g_strnfill(511, 'k');
	g_autofree char *k512 = g_strnfill(512, 'k');
	g_autofree char *v2047 = g_strnfill(2047, 'v');
	g_autofree char *v2048 = g_strnfill(2048, 'v');

	assert_int_equal(kvp_pool_set(p, k511, v2047), 0);
	assert_int_equal(kvp_pool_set(p, k512, "x"), -E2BIG);
	assert_int_equal(kvp_pool_set(p, "x", v2048), -E2BIG);
	assert_int_equal(kvp_pool_set(p, "", "x"), -EINVAL);
	assert_int_equal(kvp_pool_set(p, "x", ""), 0);
	assert_int_equal(kvp_pool_count(p), 2);

	{
		g_autoptr(kvp_pool) q = kvp_pool_new(path, 0644);

		assert_int_equal(kvp_pool_refresh(q), 1);
		assert_record(q, 0, k511, v2047);
		assert_record(q, 1, "x", "");
	}
}

static guint count_corrupt_copies(void)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;
	guint n = 0;

	while ((name = g_dir_read_name(d)))
		if (g_str_has_prefix(name, ".kvp_pool_1.corrupt-"))
			n++;
	return n;
}

static void test_truncated(void **state)
{
	g_autofree char *path = fixture("truncated-pool");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	static const char *const want[] = { "ProvisioningState", "Ready", "B", "second", "n",
					    "v" };

	assert_int_equal(kvp_pool_refresh(p), 1);
	assert_int_equal(kvp_pool_count(p), 2);
	assert_int_equal(kvp_pool_trailing_bytes(p), 1000);
	assert_record(p, 0, "ProvisioningState", "Ready");
	assert_record(p, 1, "B", "second");

	/* The first write keeps the original bytes next to the pool. */
	assert_int_equal(count_corrupt_copies(), 0);
	assert_int_equal(kvp_pool_set(p, "n", "v"), 0);
	assert_file_records(path, want, 3);
	assert_int_equal(count_corrupt_copies(), 1);
	assert_int_equal(kvp_pool_trailing_bytes(p), 0);
	{
		g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
		const char *name;

		while ((name = g_dir_read_name(d)))
			if (g_str_has_prefix(name, ".kvp_pool_1.corrupt-")) {
				g_autofree char *copy = path_in_dir(name);
				g_autoptr(GBytes) b = read_file(copy);

				assert_int_equal(g_bytes_get_size(b), 2 * REC + 1000);
			}
	}

	/* A healthy file is not copied again. */
	assert_int_equal(kvp_pool_set(p, "n", "w"), 0);
	assert_int_equal(count_corrupt_copies(), 1);
}

static void test_unterminated(void **state)
{
	g_autofree char *path = fixture("unterminated-pool");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);

	assert_int_equal(kvp_pool_refresh(p), 1);
	assert_int_equal(kvp_pool_count(p), 2);
	assert_int_equal(kvp_pool_n_invalid(p), 2);
	assert_record(p, 0, "ProvisioningState", "Ready");
	assert_record(p, 1, "B", "second");
	assert_null(kvp_pool_lookup(p, "bad-value"));
}

/* Random files: never a crash; what is read is rewritten as whole records. */
static void test_random_files(void **state)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(42);
	g_autofree char *path = path_in_dir(".kvp_pool_2");

	for (int i = 0; i < 200; i++) {
		g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
		gsize len = (gsize)g_rand_int_range(rand, 0, 4 * REC + 100);
		g_autofree uint8_t *data = g_malloc(len + 1);
		int nul_every = g_rand_int_range(rand, 1, 3000);
		struct stat st;

		for (gsize k = 0; k < len; k++)
			data[k] = g_rand_int_range(rand, 0, nul_every) == 0 ? 0 :
									     (uint8_t)g_rand_int(rand);
		assert_true(g_file_set_contents(path, (const char *)data, (gssize)len, NULL));

		assert_int_equal(kvp_pool_refresh(p), 1);
		assert_true(kvp_pool_count(p) + kvp_pool_n_invalid(p) == len / REC);
		assert_int_equal(kvp_pool_trailing_bytes(p), len % REC);
		for (guint k = 0; k < kvp_pool_count(p); k++) {
			assert_true(strlen(kvp_pool_get_at(p, k)->key) < HV_KVP_MAX_KEY_SIZE);
			assert_true(strlen(kvp_pool_get_at(p, k)->value) < HV_KVP_MAX_VALUE_SIZE);
		}
		if (kvp_pool_count(p) > 0 && kvp_pool_get_at(p, 0)->key[0] != '\0') {
			g_autofree char *key = g_strdup(kvp_pool_get_at(p, 0)->key);

			assert_int_equal(kvp_pool_delete(p, key), 0);
			assert_int_equal(stat(path, &st), 0);
			assert_int_equal(st.st_size % REC, 0);
		}
	}
}

static void test_empty_and_missing(void **state)
{
	g_autofree char *path = path_in_dir(".kvp_pool_4");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0600);
	struct stat st;

	/* Missing file: an empty pool, nothing created by reading. */
	assert_int_equal(kvp_pool_refresh(p), 1);
	assert_int_equal(kvp_pool_count(p), 0);
	assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
	assert_int_equal(kvp_pool_refresh(p), 0);

	assert_int_equal(kvp_pool_create_file(p), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(kvp_pool_refresh(p), 1);
	assert_int_equal(kvp_pool_count(p), 0);

	/* create_file never truncates. */
	assert_int_equal(kvp_pool_set(p, "k", "v"), 0);
	assert_int_equal(kvp_pool_create_file(p), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, REC);
	assert_int_equal(st.st_mode & 07777, 0600);
}

/* A writer killed mid-write leaves <pool>.tmp-XXXXXX: removed at start-up, nothing else. */
static void test_remove_leftovers(void **state)
{
	g_autofree char *path = path_in_dir(".kvp_pool_1");
	g_autofree char *tmp1 = g_strconcat(path, ".tmp-AbC123", NULL);
	g_autofree char *tmp2 = g_strconcat(path, ".tmp-zzzzzz", NULL);
	g_autofree char *other = path_in_dir(".kvp_pool_2.tmp-AbC123");
	g_autofree char *longer = g_strconcat(path, ".tmp-AbC1234", NULL);
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);

	(void)state;
	/* No pool file yet: nothing to do. */
	assert_int_equal(kvp_pool_remove_leftovers(p), 0);
	assert_int_equal(kvp_pool_create_file(p), 0);
	assert_int_equal(kvp_pool_set(p, "k", "v"), 0);
	assert_true(g_file_set_contents(tmp1, "x", 1, NULL));
	assert_true(g_file_set_contents(tmp2, "y", 1, NULL));
	assert_true(g_file_set_contents(other, "z", 1, NULL));
	assert_true(g_file_set_contents(longer, "w", 1, NULL));
	assert_int_equal(kvp_pool_remove_leftovers(p), 2);
	assert_false(g_file_test(tmp1, G_FILE_TEST_EXISTS));
	assert_false(g_file_test(tmp2, G_FILE_TEST_EXISTS));
	/* Another pool's and a name that is not ours stay. */
	assert_true(g_file_test(other, G_FILE_TEST_EXISTS));
	assert_true(g_file_test(longer, G_FILE_TEST_EXISTS));
	assert_int_equal(kvp_pool_refresh(p), 0);
	assert_string_equal(kvp_pool_lookup(p, "k"), "v");
	g_unlink(other);
	g_unlink(longer);
}

static void test_utf8(void **state)
{
	g_autofree char *path = path_in_dir(".kvp_pool_1");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	g_autoptr(kvp_pool) q = kvp_pool_new(path, 0644);
	static const char *const keys[] = { "Ключ", "键", "🔑emoji", "mixed ascii é" };
	static const char *const values[] = { "значение", "值", "🗝️ value", "ü\tnewline\nend" };

	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
		assert_int_equal(kvp_pool_set(p, keys[i], values[i]), 0);

	assert_int_equal(kvp_pool_refresh(q), 1);
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
		assert_record(q, (guint)i, keys[i], values[i]);
		assert_string_equal(kvp_pool_lookup(q, keys[i]), values[i]);
	}
}

static void test_reload_only_on_change(void **state)
{
	g_autofree char *path = path_in_dir(".kvp_pool_1");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	g_autoptr(kvp_pool) other = kvp_pool_new(path, 0644);
	guint n0;
	int fd;

	assert_int_equal(kvp_pool_set(p, "a", "1"), 0);
	n0 = kvp_pool_n_loads(p);
	/* Our own write needs no read, nor does an unchanged file. */
	assert_int_equal(kvp_pool_refresh(p), 0);
	assert_int_equal(kvp_pool_refresh(p), 0);
	assert_int_equal(kvp_pool_n_loads(p), n0);

	/* An appender such as cloud-init: in place, under flock. */
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	append_raw(fd, "cloud-init", "appended");
	close(fd);

	assert_int_equal(kvp_pool_refresh(p), 1);
	assert_int_equal(kvp_pool_n_loads(p), n0 + 1);
	assert_record(p, 1, "cloud-init", "appended");
	assert_int_equal(kvp_pool_refresh(p), 0);
	assert_int_equal(kvp_pool_n_loads(p), n0 + 1);

	/* Another writer replacing the file (a new inode). */
	assert_int_equal(kvp_pool_set(other, "b", "2"), 0);
	assert_int_equal(kvp_pool_refresh(p), 1);
	assert_int_equal(kvp_pool_count(p), 3);

	/* Same size, rewritten in place: the mtime (ns) tells. */
	{
		uint8_t rec[REC];
		struct timespec ts = { 0, 2 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		make_record(rec, "a", "X");
		assert_int_equal(pwrite(fd, rec, REC, 0), REC);
		close(fd);
	}
	assert_int_equal(kvp_pool_refresh(p), 1);
	assert_record(p, 0, "a", "X");

	/* Removed: an empty pool. */
	assert_int_equal(g_unlink(path), 0);
	assert_int_equal(kvp_pool_refresh(p), 1);
	assert_int_equal(kvp_pool_count(p), 0);
}

static void test_write_merges_concurrent_append(void **state)
{
	g_autofree char *path = path_in_dir(".kvp_pool_1");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	static const char *const want[] = { "a", "1", "ext", "x", "b", "2" };
	int fd;

	assert_int_equal(kvp_pool_set(p, "a", "1"), 0);
	/* Appended after our last read: the next write must not lose it. */
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	append_raw(fd, "ext", "x");
	close(fd);
	assert_int_equal(kvp_pool_set(p, "b", "2"), 0);
	assert_file_records(path, want, 3);
}

/* Forks a child that takes a lock on @path, holds it for @hold_ms, appends a record. */
static pid_t locker(const char *path, bool use_flock, int hold_ms, int *ret_ready_fd)
{
	int pipefd[2];
	pid_t pid;

	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(path, O_RDWR | O_CLOEXEC);
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		struct timespec ts = { hold_ms / 1000, (hold_ms % 1000) * 1000000L };

		if (fd < 0)
			_exit(10);
		if (use_flock ? flock(fd, LOCK_EX) : fcntl(fd, F_SETLKW, &fl))
			_exit(11);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(12);
		nanosleep(&ts, NULL);
		append_raw(fd, use_flock ? "by-flock-holder" : "by-fcntl-holder", "child");
		_exit(0);
	}

	close(pipefd[1]);
	*ret_ready_fd = pipefd[0];
	return pid;
}

static void lock_interplay(bool use_flock)
{
	g_autofree char *path = path_in_dir(".kvp_pool_1");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	const char *child_key = use_flock ? "by-flock-holder" : "by-fcntl-holder";
	int ready, status;
	gint64 t0, elapsed;
	char c;
	pid_t pid;

	assert_int_equal(kvp_pool_set(p, "a", "1"), 0);
	pid = locker(path, use_flock, 300, &ready);
	assert_int_equal(read(ready, &c, 1), 1);
	close(ready);

	t0 = g_get_monotonic_time();
	assert_int_equal(kvp_pool_set(p, "b", "2"), 0);
	elapsed = g_get_monotonic_time() - t0;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* We waited for the holder, then read what it appended before writing. */
	assert_true(elapsed >= 250 * 1000);
	{
		const char *want[] = { "a", "1", child_key, "child", "b", "2" };

		assert_file_records(path, want, 3);
	}
}

static void test_flock_holder_blocks_write(void **state)
{
	lock_interplay(true);
}

static void test_fcntl_holder_blocks_write(void **state)
{
	lock_interplay(false);
}

static void test_lock_timeout(void **state)
{
	g_autofree char *path = path_in_dir(".kvp_pool_1");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	static const char *const want[] = { "a", "1" };
	int ready, status;
	gint64 t0, elapsed;
	char c;
	pid_t pid;

	assert_int_equal(kvp_pool_set(p, "a", "1"), 0);
	kvp_pool_set_lock_timeout(p, 200);

	/* A holder that does not let go in time: the write fails, nothing changes. */
	pid = locker(path, true, 1500, &ready);
	assert_int_equal(read(ready, &c, 1), 1);
	close(ready);
	t0 = g_get_monotonic_time();
	assert_int_equal(kvp_pool_set(p, "b", "2"), -ETIMEDOUT);
	elapsed = g_get_monotonic_time() - t0;
	assert_true(elapsed >= 150 * 1000 && elapsed < 1200 * 1000);
	assert_file_records(path, want, 1);
	assert_int_equal(kvp_pool_count(p), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);

	/* Then it works again, with what the holder appended. */
	assert_int_equal(kvp_pool_set(p, "b", "2"), 0);
	assert_int_equal(kvp_pool_count(p), 3);
	assert_record(p, 1, "by-flock-holder", "child");
}

static void test_late_append_to_replaced_inode(void **state)
{
	g_autofree char *path = path_in_dir(".kvp_pool_1");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	static const char *const want[] = { "a", "1", "b", "2", "late", "appender" };
	int fd;

	assert_int_equal(kvp_pool_set(p, "a", "1"), 0);
	/* An appender opens the pool, then waits for the lock... */
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd >= 0);
	/* ...while we replace the file... */
	assert_int_equal(kvp_pool_set(p, "b", "2"), 0);
	/* ...and appends to the old inode once it gets the lock. */
	assert_int_equal(flock(fd, LOCK_EX), 0);
	append_raw(fd, "late", "appender");
	close(fd);

	assert_int_equal(kvp_pool_refresh(p), 1);
	assert_file_records(path, want, 3);
	assert_record(p, 2, "late", "appender");
	/* A failed delete still writes late appends it merged. */
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(kvp_pool_set(p, "b", "two"), 0);
	append_raw(fd, "late2", "x");
	close(fd);
	assert_int_equal(kvp_pool_delete(p, "no-such-key"), -ENOENT);
	{
		static const char *const want2[] = { "a", "1", "b", "two", "late", "appender",
						     "late2", "x" };

		assert_file_records(path, want2, 4);
	}

	/* Merged once only. */
	assert_int_equal(kvp_pool_refresh(p), 0);
	assert_int_equal(kvp_pool_set(p, "c", "3"), 0);
	assert_int_equal(kvp_pool_count(p), 5);
}

/* ---- the spare: incremental writes ------------------------------------ */

/* What the file must hold: keys and values in file order, first occurrence wins. */
typedef struct model {
	GPtrArray *kv; /* char *: key, value, key, value... */
} model;

static void model_init(model *m)
{
	m->kv = g_ptr_array_new_with_free_func(g_free);
}

static void model_clear(model *m)
{
	g_ptr_array_unref(m->kv);
}

static guint model_len(const model *m)
{
	return m->kv->len / 2;
}

static int model_find(const model *m, const char *key)
{
	for (guint i = 0; i < model_len(m); i++)
		if (strcmp(g_ptr_array_index(m->kv, 2 * i), key) == 0)
			return (int)i;
	return -1;
}

static void model_append(model *m, const char *key, const char *value)
{
	g_ptr_array_add(m->kv, g_strdup(key));
	g_ptr_array_add(m->kv, g_strdup(value));
}

static void model_set(model *m, const char *key, const char *value)
{
	int i = model_find(m, key);

	if (i < 0) {
		model_append(m, key, value);
		return;
	}
	g_free(g_ptr_array_index(m->kv, 2 * i + 1));
	m->kv->pdata[2 * i + 1] = g_strdup(value);
}

static bool model_delete(model *m, const char *key)
{
	int i = model_find(m, key);

	if (i < 0)
		return false;
	g_ptr_array_remove_range(m->kv, 2 * (guint)i, 2);
	return true;
}

static void assert_file_model(const char *path, const model *m)
{
	assert_file_records(path, (const char *const *)m->kv->pdata, model_len(m));
}

static ino_t ino_of(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return 0;
	return st.st_ino;
}

/* Appends a record under flock(), like cloud-init, to @fd (opened earlier). */
static void flock_append(int fd, const char *key, const char *value)
{
	assert_int_equal(flock(fd, LOCK_EX), 0);
	append_raw(fd, key, value);
	assert_int_equal(flock(fd, LOCK_UN), 0);
}

/*
 * Random SETs (new and existing keys), DELETEs, appends behind our back to
 * the pool and to the file our last write replaced (now the spare), each
 * followed by a check of the whole file against a model. Most writes must
 * have gone through the spare (the pool's inode is the spare's before).
 */
static void test_spare_random_model(void **state)
{
	g_autofree char *path = path_in_dir(".kvp_pool_1");
	g_autofree char *spare = path_in_dir(".kvp_pool_1.spare");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	g_autoptr(GRand) rnd = g_rand_new_with_seed(4242);
	guint n_writes = 0, n_incremental = 0, next_key = 0;
	model m;

	model_init(&m);
	for (int op = 0; op < 400; op++) {
		guint what = g_rand_int_range(rnd, 0, 100);
		char key[32], value[64];
		ino_t spare_before = ino_of(spare);
		bool wrote = false;

		snprintf(value, sizeof(value), "value-%d-%u", op, g_rand_int(rnd));
		if (what < 35 && model_len(&m) > 0) {
			/* SET of an existing key */
			guint i = g_rand_int_range(rnd, 0, (gint32)model_len(&m));

			g_strlcpy(key, g_ptr_array_index(m.kv, 2 * i), sizeof(key));
			assert_int_equal(kvp_pool_set(p, key, value), 0);
			model_set(&m, key, value);
			wrote = true;
		} else if (what < 60) {
			snprintf(key, sizeof(key), "k%u", next_key++);
			assert_int_equal(kvp_pool_set(p, key, value), 0);
			model_set(&m, key, value);
			wrote = true;
		} else if (what < 85 && model_len(&m) > 0) {
			guint i = g_rand_int_range(rnd, 0, (gint32)model_len(&m));

			g_strlcpy(key, g_ptr_array_index(m.kv, 2 * i), sizeof(key));
			assert_int_equal(kvp_pool_delete(p, key), 0);
			assert_true(model_delete(&m, key));
			wrote = true;
		} else if (what < 88) {
			assert_int_equal(kvp_pool_delete(p, "no-such-key"), -ENOENT);
		} else if (what < 93) {
			/* Appended to the pool behind our back (a duplicate key at times). */
			int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);

			assert_true(fd >= 0);
			if (model_len(&m) > 0 && g_rand_boolean(rnd))
				g_strlcpy(key, g_ptr_array_index(m.kv, 0), sizeof(key));
			else
				snprintf(key, sizeof(key), "ext%d", op);
			flock_append(fd, key, value);
			close(fd);
			model_append(&m, key, value);
		} else {
			/* Opened before our write, appended after it: lands in the spare. */
			int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
			char late[32];

			assert_true(fd >= 0);
			snprintf(key, sizeof(key), "k%u", next_key++);
			assert_int_equal(kvp_pool_set(p, key, value), 0);
			model_set(&m, key, value);
			snprintf(late, sizeof(late), "late%d", op);
			flock_append(fd, late, "appended-late");
			close(fd);
			assert_int_equal(kvp_pool_refresh(p), 1);
			model_append(&m, late, "appended-late");
		}

		if (wrote) {
			n_writes++;
			if (spare_before && ino_of(path) == spare_before)
				n_incremental++;
		}
		assert_file_model(path, &m);
		assert_true(kvp_pool_refresh(p) >= 0);
		assert_int_equal(kvp_pool_count(p), model_len(&m));
	}

	print_message("%u writes, %u through the spare, %u records at the end\n", n_writes,
		      n_incremental, model_len(&m));
	assert_true(n_incremental * 10 >= n_writes * 7);
	/* A new reader sees the same. */
	{
		g_autoptr(kvp_pool) q = kvp_pool_new(path, 0644);

		assert_int_equal(kvp_pool_refresh(q), 1);
		assert_int_equal(kvp_pool_count(q), model_len(&m));
		assert_int_equal(kvp_pool_n_invalid(q), 0);
	}
	model_clear(&m);
}

/* How the spare is spoiled before the next write. */
enum spoil {
	SPOIL_REMOVED,
	SPOIL_FOREIGN,    /* another file renamed to its name */
	SPOIL_CUT,        /* truncated (a crash half-way through bringing it up to date) */
	SPOIL_OVERWRITTEN, /* written in place, same size */
	SPOIL_PARTIAL_APPEND, /* half a record appended */
	SPOIL_RESTART,    /* written in place and the process started again */
	_SPOIL_MAX,
};

static void spoil_spare(const char *spare, enum spoil how)
{
	uint8_t junk[REC];
	int fd;

	memset(junk, 'J', sizeof(junk));
	switch (how) {
	case SPOIL_REMOVED:
		assert_int_equal(unlink(spare), 0);
		break;
	case SPOIL_FOREIGN: {
		g_autofree char *other = g_strdup_printf("%s.other", spare);

		fd = open(other, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		assert_true(fd >= 0);
		append_raw(fd, "foreign", "record");
		close(fd);
		assert_int_equal(rename(other, spare), 0);
		break;
	}
	case SPOIL_CUT:
		assert_int_equal(truncate(spare, REC + 100), 0);
		break;
	case SPOIL_OVERWRITTEN:
	case SPOIL_RESTART:
		fd = open(spare, O_WRONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, junk, 100, 0), 100);
		make_record(junk, "stale", "record");
		assert_int_equal(pwrite(fd, junk, REC, 3 * REC), REC);
		close(fd);
		break;
	case SPOIL_PARTIAL_APPEND:
		fd = open(spare, O_WRONLY | O_APPEND | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, junk, 1000), 1000);
		close(fd);
		break;
	case _SPOIL_MAX:
		fail();
	}
}

/*
 * A spare that is missing, foreign, cut, changed or left by an earlier
 * process is not trusted: the write is a full one and the file exactly right.
 */
static void test_spare_spoiled(void **state)
{
	for (int how = 0; how < _SPOIL_MAX; how++) {
		g_autofree char *path = path_in_dir(".kvp_pool_1");
		g_autofree char *spare = path_in_dir(".kvp_pool_1.spare");
		kvp_pool *p = kvp_pool_new(path, 0644);
		model m;

		unlink(path);
		unlink(spare);
		model_init(&m);
		for (int i = 0; i < 40; i++) {
			char key[16], value[16];

			snprintf(key, sizeof(key), "key%02d", i);
			snprintf(value, sizeof(value), "v%d", i);
			assert_int_equal(kvp_pool_set(p, key, value), 0);
			model_set(&m, key, value);
		}
		/* One write behind the pool: key05 is stale in the spare. */
		assert_int_equal(kvp_pool_set(p, "key05", "five"), 0);
		model_set(&m, "key05", "five");
		assert_true(g_file_test(spare, G_FILE_TEST_IS_REGULAR));

		spoil_spare(spare, (enum spoil)how);
		if (how == SPOIL_RESTART) {
			kvp_pool_free(p);
			p = kvp_pool_new(path, 0644);
		}

		assert_int_equal(kvp_pool_set(p, "key10", "ten"), 0);
		model_set(&m, "key10", "ten");
		assert_file_model(path, &m);
		/* And the writes after it, through the new spare. */
		assert_int_equal(kvp_pool_delete(p, "key00"), 0);
		model_delete(&m, "key00");
		assert_file_model(path, &m);
		assert_int_equal(kvp_pool_set(p, "key20", "twenty"), 0);
		model_set(&m, "key20", "twenty");
		assert_int_equal(kvp_pool_set(p, "new", "n"), 0);
		model_set(&m, "new", "n");
		assert_file_model(path, &m);
		kvp_pool_free(p);
		model_clear(&m);
	}
}

/* A key or value of @len bytes (1 to 2,047), its characters from @seed. */
static char *text_of_len(size_t len, guint seed)
{
	char *t = g_malloc(len + 1);

	for (size_t i = 0; i < len; i++)
		t[i] = (char)('a' + (seed + i) % 26);
	t[len] = '\0';
	return t;
}

/*
 * Writes through the spare re-use the write buffer and clear only what the
 * previous record in each slot left: records of very different lengths
 * (over several buffers' worth), DELETEs of the first, a middle and the last
 * record, SETs to longer and shorter values, and a re-read of the file in
 * between (the buffer then holds what was read, padding junk of another
 * writer included). After each write the file must be byte for byte what a
 * full write of the records gives (every record zero-padded), and the
 * writes must have gone through the spare.
 */
static void test_spare_writes_match_full_write(void **state)
{
	g_autofree char *path = path_in_dir(".kvp_pool_1");
	g_autofree char *spare = path_in_dir(".kvp_pool_1.spare");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	const guint n = 300;
	guint n_spare = 0, n_writes = 0;
	bool after_junk = false;
	model m;

	model_init(&m);
	for (guint i = 0; i < n; i++) {
		g_autofree char *key = text_of_len(1 + (i * 131) % KVP_POOL_MAX_KEY_LEN, i);
		g_autofree char *value = text_of_len(1 + (i * 977) % KVP_POOL_MAX_VALUE_LEN, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		/* Distinct keys: the length and the first character tell them apart. */
		key[0] = (char)('A' + i % 26);
		assert_true(fd >= 0);
		append_raw(fd, key, value);
		close(fd);
		model_append(&m, key, value);
	}
	assert_int_equal(kvp_pool_refresh(p), 1);
	assert_int_equal(kvp_pool_count(p), n);

	for (int step = 0; step < 24; step++) {
		/*
		 * The write after a file with junk was read is a full one too: the
		 * file it replaced (now the spare) holds that junk.
		 */
		ino_t spare_before = after_junk ? 0 : ino_of(spare);
		guint len = model_len(&m);
		char key[HV_KVP_MAX_KEY_SIZE];

		switch (step % 6) {
		case 0: /* the first record */
		case 1: /* one in the middle */
		case 2: { /* the last */
			guint at = step % 6 == 0 ? 0 : step % 6 == 1 ? len / 2 : len - 1;

			g_strlcpy(key, g_ptr_array_index(m.kv, 2 * at), sizeof(key));
			assert_int_equal(kvp_pool_delete(p, key), 0);
			assert_true(model_delete(&m, key));
			break;
		}
		case 3: /* a long value, then a short one, in the same place */
		case 4: {
			g_autofree char *value =
				text_of_len(step % 6 == 3 ? KVP_POOL_MAX_VALUE_LEN : 1, (guint)step);

			g_strlcpy(key, g_ptr_array_index(m.kv, 2 * ((guint)step * 7 % len)),
				  sizeof(key));
			assert_int_equal(kvp_pool_set(p, key, value), 0);
			model_set(&m, key, value);
			break;
		}
		default: {
			/* Appended behind our back, junk after the NULs: read before the write. */
			uint8_t rec[REC];
			int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);

			make_record(rec, "appended", "x");
			memset(rec + 20, 'J', HV_KVP_MAX_KEY_SIZE - 20);
			memset(rec + HV_KVP_MAX_KEY_SIZE + 2, 'J', HV_KVP_MAX_VALUE_SIZE - 2);
			assert_true(fd >= 0);
			assert_int_equal(flock(fd, LOCK_EX), 0);
			assert_int_equal(write(fd, rec, REC), REC);
			close(fd);
			model_append(&m, "appended", "x");
			/* A full write (the pool is not ours): the junk is gone after it. */
			assert_int_equal(kvp_pool_delete(p, "appended"), 0);
			assert_true(model_delete(&m, "appended"));
			spare_before = 0;
			after_junk = true;
			assert_file_model(path, &m);
			continue;
		}
		}

		assert_file_model(path, &m);
		after_junk = false;
		if (spare_before) {
			n_writes++;
			if (ino_of(path) == spare_before)
				n_spare++;
		}
	}

	/* All but the first write, the ones after the appends and the next ones (not counted). */
	print_message("%u writes through the spare out of %u\n", n_spare, n_writes);
	assert_int_equal(n_spare, n_writes);
	model_clear(&m);
}

/*
 * A pool file written by someone else with bytes after the NULs (upstream
 * and other writers may leave them): every record is rewritten zero-padded,
 * also by the writes after the first, which go through the spare (the
 * foreign file: it is never kept in part). Found by fuzz-kvp-pool.
 */
static void test_foreign_junk_never_kept(void **state)
{
	g_autofree char *path = path_in_dir(".kvp_pool_1");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	static const char *const keys[] = { "k0", "k1", "k2", "k3" };
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	model m;

	assert_true(fd >= 0);
	model_init(&m);
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
		uint8_t rec[REC];

		make_record(rec, keys[i], "v");
		memset(rec + 10, 'J', 100);
		memset(rec + HV_KVP_MAX_KEY_SIZE + 10, 'J', 100);
		assert_int_equal(write(fd, rec, REC), REC);
		model_append(&m, keys[i], "v");
	}
	close(fd);
	assert_int_equal(kvp_pool_refresh(p), 1);
	assert_int_equal(kvp_pool_count(p), G_N_ELEMENTS(keys));

	for (int step = 0; step < 4; step++) {
		g_autofree char *value = g_strdup_printf("step-%d", step);

		assert_int_equal(kvp_pool_set(p, keys[step % 2 ? 3 : 0], value), 0);
		model_set(&m, keys[step % 2 ? 3 : 0], value);
		assert_file_model(path, &m);
	}
	assert_int_equal(kvp_pool_delete(p, "k2"), 0);
	assert_true(model_delete(&m, "k2"));
	assert_file_model(path, &m);
	model_clear(&m);
}

/*
 * One change whose write fails (EFBIG: RLIMIT_FSIZE below the pool's size),
 * then the pool's name made unreadable (a directory), so that reads are
 * answered from memory: memory must hold what it held before the change.
 */
static void failed_write_then_unreadable(const char *path, kvp_pool *p, int op)
{
	g_autofree char *away = g_strconcat(path, ".away", NULL);
	struct rlimit saved, small = { 4096, 4096 };
	void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
	small.rlim_max = saved.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	if (op == 0)
		assert_true(kvp_pool_set(p, "new", "v") < 0);
	else if (op == 1)
		assert_true(kvp_pool_set(p, "k1", "changed") < 0);
	else
		assert_true(kvp_pool_delete(p, "k1") < 0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
	signal(SIGXFSZ, old_handler);

	assert_int_equal(rename(path, away), 0);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_true(kvp_pool_refresh(p) < 0);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(rename(away, path), 0);
}

static void test_failed_write_taken_back(void **state)
{
	g_autofree char *path = path_in_dir(".kvp_pool_1");
	static const char *const want[] = { "k0", "v0", "k1", "v1", "k2", "v2" };

	for (int op = 0; op < 3; op++) {
		g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		assert_true(fd >= 0);
		for (size_t i = 0; i < G_N_ELEMENTS(want); i += 2)
			append_raw(fd, want[i], want[i + 1]);
		close(fd);
		assert_int_equal(kvp_pool_refresh(p), 1);

		failed_write_then_unreadable(path, p, op);
		assert_int_equal(kvp_pool_count(p), 3);
		for (guint i = 0; i < 3; i++)
			assert_record(p, i, want[2 * i], want[2 * i + 1]);
		assert_null(kvp_pool_lookup(p, "new"));
		assert_string_equal(kvp_pool_lookup(p, "k1"), "v1");
		assert_file_records(path, want, 3);

		/* and the pool works again once it can be written */
		assert_int_equal(kvp_pool_set(p, "k1", "after"), 0);
		assert_string_equal(kvp_pool_lookup(p, "k1"), "after");
	}
}

/* Someone holds a lock on the spare: a full write, no waiting for it. */
static void test_spare_locked_by_other(void **state)
{
	g_autofree char *path = path_in_dir(".kvp_pool_1");
	g_autofree char *spare = path_in_dir(".kvp_pool_1.spare");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	static const char *const want[] = { "a", "3", "b", "2" };
	ino_t spare_ino;
	gint64 t0;
	int fd;

	assert_int_equal(kvp_pool_set(p, "a", "1"), 0);
	assert_int_equal(kvp_pool_set(p, "b", "2"), 0);
	spare_ino = ino_of(spare);
	fd = open(spare, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_SH), 0);
	t0 = g_get_monotonic_time();
	assert_int_equal(kvp_pool_set(p, "a", "3"), 0);
	assert_true(g_get_monotonic_time() - t0 < 2 * G_USEC_PER_SEC);
	assert_true(ino_of(path) != spare_ino);
	assert_file_records(path, want, 2);
	close(fd);
}

/* The spare renamed back over the pool by hand: read as the pool, no wait for our own lock. */
static void test_spare_moved_back(void **state)
{
	g_autofree char *path = path_in_dir(".kvp_pool_1");
	g_autofree char *spare = path_in_dir(".kvp_pool_1.spare");
	g_autoptr(kvp_pool) p = kvp_pool_new(path, 0644);
	static const char *const want[] = { "a", "1", "c", "3" };
	gint64 t0;

	assert_int_equal(kvp_pool_set(p, "a", "1"), 0);
	assert_int_equal(kvp_pool_set(p, "b", "2"), 0);
	/* The spare holds the version before "b". */
	assert_int_equal(rename(spare, path), 0);
	t0 = g_get_monotonic_time();
	assert_int_equal(kvp_pool_set(p, "c", "3"), 0);
	assert_true(g_get_monotonic_time() - t0 < 2 * G_USEC_PER_SEC);
	assert_file_records(path, want, 2);
	assert_int_equal(kvp_pool_refresh(p), 0);
	assert_int_equal(kvp_pool_count(p), 2);
}

/*
 * SIGKILL during a burst of writes (SETs of new and existing keys,
 * DELETEs, into a pool big enough for a write to take a while): the pool
 * file is whole and holds every acknowledged change.
 */
static void test_kill_during_writes(void **state)
{
	g_autofree char *path = path_in_dir(".kvp_pool_1");

	for (int round = 0; round < 8; round++) {
		int pipefd[2], status;
		guint last = 0;
		bool any = false;
		pid_t pid;

		{
			int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

			assert_true(fd >= 0);
			for (int i = 0; i < 300; i++) {
				char key[16];

				snprintf(key, sizeof(key), "seed%03d", i);
				append_raw(fd, key, "initial");
			}
			close(fd);
		}

		assert_int_equal(pipe(pipefd), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			kvp_pool *p = kvp_pool_new(path, 0644);

			close(pipefd[0]);
			for (guint i = 0;; i++) {
				char key[16], value[16];
				int r;

				snprintf(value, sizeof(value), "v%u", i);
				if (i % 3 == 0) {
					snprintf(key, sizeof(key), "new%u", i);
					r = kvp_pool_set(p, key, value);
				} else if (i % 3 == 1) {
					snprintf(key, sizeof(key), "seed%03u", (i * 7) % 300);
					r = kvp_pool_set(p, key, value);
				} else {
					snprintf(key, sizeof(key), "new%u", i - 2);
					r = kvp_pool_delete(p, key);
				}
				if (r < 0 || write(pipefd[1], &i, sizeof(i)) != sizeof(i))
					_exit(1);
			}
		}

		close(pipefd[1]);
		/* Some acknowledged writes, then the kill at a moment that varies. */
		for (int n = 0; n < 20 + round * 7; n++) {
			assert_int_equal(read(pipefd[0], &last, sizeof(last)), sizeof(last));
			any = true;
		}
		g_usleep(g_random_int_range(0, 3000));
		kill(pid, SIGKILL);
		while (read(pipefd[0], &last, sizeof(last)) == sizeof(last))
			;
		close(pipefd[0]);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		assert_true(any);

		{
			g_autoptr(kvp_pool) q = kvp_pool_new(path, 0644);
			guint inflight = last + 1;

			assert_int_equal(kvp_pool_refresh(q), 1);
			assert_int_equal(kvp_pool_n_invalid(q), 0);
			assert_int_equal(kvp_pool_trailing_bytes(q), 0);
			for (guint i = 0; i <= inflight; i++) {
				char key[16], value[16];
				const char *got;

				if (i % 3 == 0) {
					snprintf(key, sizeof(key), "new%u", i);
					got = kvp_pool_lookup(q, key);
					if (i + 2 < inflight && i < inflight)
						assert_null(got);
					else if (i + 2 > inflight && i < inflight)
						assert_non_null(got);
				} else if (i % 3 == 1 && i < inflight) {
					guint last_for_key = i;

					/* The value of the last acknowledged SET of this key, or the one in flight. */
					for (guint j = i + 3; j <= inflight; j += 3)
						if ((j * 7) % 300 == (i * 7) % 300)
							last_for_key = j;
					if (last_for_key != i)
						continue;
					snprintf(key, sizeof(key), "seed%03u", (i * 7) % 300);
					snprintf(value, sizeof(value), "v%u", i);
					assert_non_null(kvp_pool_lookup(q, key));
					assert_string_equal(kvp_pool_lookup(q, key), value);
				}
			}
		}
	}
}

static void test_pools_open_creates_five(void **state)
{
	g_autofree char *sub = path_in_dir("var/lib/hyperv");
	g_autoptr(kvp_pools) pools = NULL;
	struct stat st;

	assert_int_equal(kvp_pools_open(sub, 0640, false, &pools), 0);
	assert_false(g_file_test(sub, G_FILE_TEST_EXISTS));
	g_clear_pointer(&pools, kvp_pools_free);

	assert_int_equal(kvp_pools_open(sub, 0640, true, &pools), 0);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	for (int i = 0; i < 5; i++) {
		g_autofree char *name = g_strdup_printf(".kvp_pool_%d", i);
		g_autofree char *path = g_build_filename(sub, name, NULL);

		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_size, 0);
		assert_int_equal(st.st_mode & 07777, 0640);
		assert_string_equal(kvp_pool_get_path(pools->pool[i]), path);
	}

	/* An existing file gets the configured mode; a directory in the way is an error. */
	{
		g_autofree char *p1 = g_build_filename(sub, ".kvp_pool_1", NULL);
		g_autofree char *p4 = g_build_filename(sub, ".kvp_pool_4", NULL);
		g_autoptr(kvp_pools) again = NULL;

		assert_int_equal(chmod(p1, 0644), 0);
		assert_int_equal(kvp_pools_open(sub, 0600, true, &again), 0);
		assert_int_equal(stat(p1, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
		g_clear_pointer(&again, kvp_pools_free);

		assert_int_equal(g_unlink(p4), 0);
		assert_int_equal(g_mkdir(p4, 0755), 0);
		assert_int_equal(kvp_pools_open(sub, 0640, true, &again), -EISDIR);
		assert_null(again);
		assert_int_equal(g_rmdir(p4), 0);
	}

	/* Existing contents are kept and read. */
	assert_int_equal(kvp_pool_set(pools->pool[3], "PhysicalHostName", "HOST-01"), 0);
	g_clear_pointer(&pools, kvp_pools_free);
	assert_int_equal(kvp_pools_open(sub, 0640, true, &pools), 0);
	assert_string_equal(kvp_pool_lookup(pools->pool[3], "PhysicalHostName"), "HOST-01");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_upstream_fixture, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_is_upstream_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upsert_keeps_position, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_moves_later_records_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unterminated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_and_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_leftovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_only_on_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_merges_concurrent_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flock_holder_blocks_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fcntl_holder_blocks_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_append_to_replaced_inode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pools_open_creates_five, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spare_random_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spare_spoiled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spare_writes_match_full_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_junk_never_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_write_taken_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spare_locked_by_other, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spare_moved_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill_during_writes, setup, teardown),
	};

	hv_log_setup("test-kvp-pool", HV_LOG_TARGET_STDERR, false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
