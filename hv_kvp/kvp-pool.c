/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kvp-pool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hv-log.h"
#include "hv-macro.h"

/* What identifies the contents we read: a writer changes at least one of these. */
typedef struct file_id {
	bool exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim;
	struct timespec ctim;
} file_id;

struct kvp_pool {
	char *path;
	mode_t mode;
	GPtrArray *records; /* kvp_record *, file order */
	GHashTable *index;  /* key -> first kvp_record * with that key (keys not owned) */
	bool loaded;
	file_id id;         /* of the file the records came from (or we wrote) */
	bool corrupt;       /* the last read skipped something: keep a copy before rewriting */
	guint n_invalid;
	size_t trailing;
	guint n_loads;
	unsigned int lock_timeout_ms;
	/* The inode our last write replaced, to merge what is appended to it late. */
	int old_fd;
	off_t old_size;
};

static void record_free(gpointer data)
{
	kvp_record *r = data;

	g_free(r->key);
	g_free(r->value);
	g_free(r);
}

static kvp_record *record_new(const char *key, const char *value)
{
	kvp_record *r = g_new(kvp_record, 1);

	r->key = g_strdup(key);
	r->value = g_strdup(value);
	return r;
}

static void file_id_from_stat(file_id *id, const struct stat *st)
{
	*id = (file_id){
		.exists = true,
		.dev = st->st_dev,
		.ino = st->st_ino,
		.size = st->st_size,
		.mtim = st->st_mtim,
		.ctim = st->st_ctim,
	};
}

static bool file_id_equal(const file_id *a, const file_id *b)
{
	if (a->exists != b->exists)
		return false;

	if (!a->exists)
		return true;

	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec &&
	       a->ctim.tv_sec == b->ctim.tv_sec && a->ctim.tv_nsec == b->ctim.tv_nsec;
}

kvp_pool *kvp_pool_new(const char *path, mode_t mode)
{
	kvp_pool *p = g_new0(kvp_pool, 1);

	p->path = g_strdup(path);
	p->mode = mode & 07777;
	p->records = g_ptr_array_new_with_free_func(record_free);
	p->index = g_hash_table_new(g_str_hash, g_str_equal);
	p->old_fd = -1;
	p->lock_timeout_ms = KVP_POOL_DEFAULT_LOCK_TIMEOUT_MS;
	return p;
}

void kvp_pool_set_lock_timeout(kvp_pool *p, unsigned int timeout_ms)
{
	p->lock_timeout_ms = timeout_ms;
}

void kvp_pool_free(kvp_pool *p)
{
	if (!p)
		return;

	if (p->old_fd >= 0)
		close(p->old_fd);
	g_hash_table_unref(p->index);
	g_ptr_array_unref(p->records);
	g_free(p->path);
	g_free(p);
}

const char *kvp_pool_get_path(const kvp_pool *p)
{
	return p->path;
}

guint kvp_pool_count(const kvp_pool *p)
{
	return p->records->len;
}

const kvp_record *kvp_pool_get_at(const kvp_pool *p, guint index)
{
	if (index >= p->records->len)
		return NULL;

	return g_ptr_array_index(p->records, index);
}

const char *kvp_pool_lookup(const kvp_pool *p, const char *key)
{
	const kvp_record *r = key ? g_hash_table_lookup(p->index, key) : NULL;

	return r ? r->value : NULL;
}

guint kvp_pool_n_invalid(const kvp_pool *p)
{
	return p->n_invalid;
}

size_t kvp_pool_trailing_bytes(const kvp_pool *p)
{
	return p->trailing;
}

guint kvp_pool_n_loads(const kvp_pool *p)
{
	return p->n_loads;
}

static void rebuild_index(kvp_pool *p)
{
	g_hash_table_remove_all(p->index);
	for (guint i = 0; i < p->records->len; i++) {
		kvp_record *r = g_ptr_array_index(p->records, i);

		if (!g_hash_table_contains(p->index, r->key))
			g_hash_table_insert(p->index, r->key, r);
	}
}

static void append_record(kvp_pool *p, kvp_record *r)
{
	g_ptr_array_add(p->records, r);
	if (!g_hash_table_contains(p->index, r->key))
		g_hash_table_insert(p->index, r->key, r);
}

/*
 * Parses whole records from @buf into @out. A record whose key or value has
 * no NUL within its field is skipped (counted in *n_invalid); bytes after
 * the last whole record are counted in *trailing.
 */
static void parse_records(const char *path, const uint8_t *buf, size_t len, off_t base,
			  GPtrArray *out, guint *n_invalid, size_t *trailing)
{
	size_t n = len / HV_KVP_POOL_RECORD_SIZE;

	*n_invalid = 0;
	*trailing = len % HV_KVP_POOL_RECORD_SIZE;

	for (size_t i = 0; i < n; i++) {
		const char *key = (const char *)buf + i * HV_KVP_POOL_RECORD_SIZE;
		const char *value = key + HV_KVP_MAX_KEY_SIZE;
		bool key_ok = memchr(key, '\0', HV_KVP_MAX_KEY_SIZE) != NULL;
		bool value_ok = memchr(value, '\0', HV_KVP_MAX_VALUE_SIZE) != NULL;

		if (!key_ok || !value_ok) {
			g_warning("%s: the record at offset %lld has no terminating NUL in its %s: skipped",
				  path, (long long)(base + (off_t)(i * HV_KVP_POOL_RECORD_SIZE)),
				  key_ok ? "value" : "key");
			(*n_invalid)++;
			continue;
		}

		g_ptr_array_add(out, record_new(key, value));
	}

	if (*trailing)
		g_warning("%s: %zu bytes after the last whole record at offset %lld (a partial record: records are %u bytes): ignored",
			  path, *trailing, (long long)(base + (off_t)(n * HV_KVP_POOL_RECORD_SIZE)),
			  HV_KVP_POOL_RECORD_SIZE);
}

/* Reads @fd from @offset to its end. */
static int read_from(int fd, off_t offset, GByteArray **ret)
{
	g_autoptr(GByteArray) buf = g_byte_array_new();
	uint8_t chunk[64 * 1024];

	for (;;) {
		ssize_t n = pread(fd, chunk, sizeof(chunk), offset);

		if (n < 0 && errno == EINTR)
			continue;

		if (n < 0)
			return -errno;

		if (n == 0)
			break;

		g_byte_array_append(buf, chunk, (guint)n);
		offset += n;
	}

	*ret = g_steal_pointer(&buf);
	return 0;
}

/* Replaces the records in memory with the contents of @fd (locked by the caller). */
static int load_from_fd(kvp_pool *p, int fd)
{
	g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func(record_free);
	g_autoptr(GByteArray) buf = NULL;
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;

	r = read_from(fd, 0, &buf);
	if (r < 0)
		return r;

	parse_records(p->path, buf->data, buf->len, 0, records, &p->n_invalid, &p->trailing);
	p->corrupt = p->n_invalid > 0 || p->trailing > 0;

	g_ptr_array_unref(p->records);
	p->records = g_steal_pointer(&records);
	rebuild_index(p);
	file_id_from_stat(&p->id, &st);
	p->loaded = true;
	p->n_loads++;
	g_debug("%s: read %u records", p->path, p->records->len);
	return 0;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Takes the fcntl() lock, then the flock(), waiting at most @timeout_ms for
 * both together: a process that holds a lock forever must not hang the
 * daemon (the driver gives up on a request after 30 s anyway).
 */
static int lock_fd(int fd, bool exclusive, unsigned int timeout_ms)
{
	struct flock fl = {
		.l_type = exclusive ? F_WRLCK : F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0, /* the whole file, however it grows */
	};
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	unsigned int delay_ms = 1;
	bool have_fcntl = false;

	for (;;) {
		if (!have_fcntl) {
			if (fcntl(fd, F_SETLK, &fl) == 0)
				have_fcntl = true;
			else if (errno != EAGAIN && errno != EACCES && errno != EINTR)
				return -errno;
		}

		if (have_fcntl) {
			if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0)
				return 0;

			if (errno != EWOULDBLOCK && errno != EINTR) {
				int r = -errno;

				fl.l_type = F_UNLCK;
				fcntl(fd, F_SETLK, &fl);
				return r;
			}
		}

		if (g_get_monotonic_time() >= deadline) {
			if (have_fcntl) {
				fl.l_type = F_UNLCK;
				fcntl(fd, F_SETLK, &fl);
			}
			return -ETIMEDOUT;
		}

		sleep_ms(delay_ms);
		delay_ms = MIN(delay_ms * 2, 50U);
	}
}

static void unlock_fd(int fd)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

	flock(fd, LOCK_UN);
	fcntl(fd, F_SETLK, &fl);
}

/*
 * Opens the pool file and locks it. Another writer may have renamed a new
 * file over the path while we waited for the lock: then the inode we
 * locked is no longer the pool, and we start again.
 */
static int open_locked(kvp_pool *p, bool exclusive, bool create, int *ret_fd)
{
	for (int attempt = 0; attempt < 100; attempt++) {
		hv_autofd int fd = -1;
		struct stat a, b;
		int flags = (exclusive ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY;
		int r;

		fd = open(p->path, flags | (create ? O_CREAT : 0), p->mode);
		if (fd < 0)
			return -errno;

		r = lock_fd(fd, exclusive, p->lock_timeout_ms);
		if (r < 0)
			return r;

		if (fstat(fd, &a) < 0)
			return -errno;

		if (stat(p->path, &b) == 0) {
			if (a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
				*ret_fd = hv_steal_fd(&fd);
				return 0;
			}
		} else if (errno != ENOENT || !create) {
			r = -errno;
			unlock_fd(fd);
			return r;
		}

		/* Replaced (or removed) while we waited: lock the new file. */
		unlock_fd(fd);
	}

	return -EAGAIN;
}

int kvp_pool_create_file(kvp_pool *p)
{
	hv_autofd int fd = open(p->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY,
				p->mode);

	if (fd < 0 && errno == EEXIST) {
		struct stat st;

		/* An existing pool (e.g. 0644 from the upstream daemon) gets the configured mode. */
		if (stat(p->path, &st) < 0)
			return -errno;
		if (!S_ISREG(st.st_mode))
			return -EISDIR;
		if ((st.st_mode & 07777) != p->mode) {
			if (chmod(p->path, p->mode) < 0)
				return -errno;
			g_info("%s: mode changed from %04o to the configured %04o", p->path,
			       (unsigned int)(st.st_mode & 07777), (unsigned int)p->mode);
		}
		return 0;
	}

	if (fd < 0)
		return -errno;

	/* Not what the umask left of it. */
	if (fchmod(fd, p->mode) < 0)
		return -errno;

	return 0;
}

/*
 * Records appended to the inode our last write replaced (a writer that had
 * opened the pool before the rename and waited for the lock). Adds them to
 * @out; 0 when there are none.
 */
static int collect_late_appends(kvp_pool *p, GPtrArray *out)
{
	g_autoptr(GByteArray) buf = NULL;
	struct stat st;
	guint n_invalid;
	size_t trailing, whole;
	int r;

	if (p->old_fd < 0)
		return 0;

	if (fstat(p->old_fd, &st) < 0)
		return -errno;

	if (st.st_size <= p->old_size)
		return 0;

	/* Let the appender finish: it writes under flock(LOCK_EX). */
	{
		gint64 deadline = g_get_monotonic_time() + (gint64)p->lock_timeout_ms * 1000;

		while (flock(p->old_fd, LOCK_SH | LOCK_NB) < 0) {
			if (errno != EWOULDBLOCK && errno != EINTR)
				return -errno;
			if (g_get_monotonic_time() >= deadline)
				return -ETIMEDOUT;
			sleep_ms(10);
		}
	}

	r = read_from(p->old_fd, p->old_size, &buf);
	flock(p->old_fd, LOCK_UN);
	if (r < 0)
		return r;

	whole = buf->len - buf->len % HV_KVP_POOL_RECORD_SIZE;
	parse_records(p->path, buf->data, whole, p->old_size, out, &n_invalid, &trailing);
	g_info("%s: %u record%s appended to the replaced file after our write: merged", p->path,
	       out->len, out->len == 1 ? "" : "s");
	p->old_size += (off_t)whole;
	return (int)out->len;
}

static int fsync_dir_of(const char *path)
{
	g_autofree char *dir = g_path_get_dirname(path);
	hv_autofd int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;

	if (fsync(fd) < 0)
		return -errno;

	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *b = buf;

	while (len > 0) {
		ssize_t n = write(fd, b, len);

		if (n < 0 && errno == EINTR)
			continue;

		if (n < 0)
			return -errno;

		b += n;
		len -= (size_t)n;
	}

	return 0;
}

/* Keeps the corrupt file we are about to replace as <pool>.corrupt-<time>[-N]. */
static void keep_corrupt_copy(kvp_pool *p)
{
	long long now = (long long)time(NULL);

	for (int n = 0; n < 100; n++) {
		g_autofree char *copy = n ? g_strdup_printf("%s.corrupt-%lld-%d", p->path, now, n)
					  : g_strdup_printf("%s.corrupt-%lld", p->path, now);

		if (link(p->path, copy) == 0) {
			g_warning("%s: kept the original (corrupt) file as %s", p->path, copy);
			return;
		}

		if (errno != EEXIST) {
			hv_log_errno(-errno, "%s: failed to keep a copy of the corrupt file as %s: %m",
				     p->path, copy);
			return;
		}
	}

	g_warning("%s: too many copies of corrupt files, this one is not kept", p->path);
}

/* Writes the records in memory to a new file renamed over the pool. *ret_id: the new file. */
static int write_replace(kvp_pool *p, file_id *ret_id)
{
	g_autofree char *tmp = g_strdup_printf("%s.tmp-XXXXXX", p->path);
	g_autofree uint8_t *buf = NULL;
	size_t len = (size_t)p->records->len * HV_KVP_POOL_RECORD_SIZE;
	hv_autofd int fd = -1;
	struct stat st;
	int r;

	buf = g_malloc0(len ? len : 1);
	for (guint i = 0; i < p->records->len; i++) {
		const kvp_record *rec = g_ptr_array_index(p->records, i);
		char *dst = (char *)buf + (size_t)i * HV_KVP_POOL_RECORD_SIZE;

		/* Lengths were checked when the record was made: NUL and zero padding fit. */
		memcpy(dst, rec->key, strlen(rec->key));
		memcpy(dst + HV_KVP_MAX_KEY_SIZE, rec->value, strlen(rec->value));
	}

	fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, (int)p->mode);
	if (fd < 0)
		return -errno;

	if (fchmod(fd, p->mode) < 0)
		goto fail_errno;

	r = write_all(fd, buf, len);
	if (r < 0)
		goto fail;

	if (fsync(fd) < 0)
		goto fail_errno;

	if (p->corrupt)
		keep_corrupt_copy(p);

	if (rename(tmp, p->path) < 0)
		goto fail_errno;

	/* After the rename, which changes the ctime. */
	if (fstat(fd, &st) < 0) {
		r = -errno;
		p->loaded = false;
		return r;
	}

	p->corrupt = false;
	p->n_invalid = 0;
	p->trailing = 0;
	file_id_from_stat(ret_id, &st);

	r = fsync_dir_of(p->path);
	if (r < 0)
		hv_log_errno(r, "%s: failed to sync the directory after the rename: %m", p->path);
	return 0;

fail_errno:
	r = -errno;
fail:
	unlink(tmp);
	return r;
}

typedef int (*mutate_fn)(kvp_pool *p, const void *userdata);

/*
 * The write path: lock the pool file (fcntl and flock), re-read it if it
 * changed since our last read, add late appends to the old inode, apply
 * @mutate, write a new file and rename it over the pool, release.
 */
static int commit(kvp_pool *p, mutate_fn mutate, const void *userdata)
{
	g_autoptr(GPtrArray) late = g_ptr_array_new_with_free_func(record_free);
	hv_autofd int fd = -1;
	struct stat st;
	file_id cur, written;
	guint n_late;
	int r, result;

	r = open_locked(p, true, true, &fd);
	if (r < 0)
		return hv_log_errno(r, "%s: failed to open and lock the pool file: %m", p->path);

	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}

	file_id_from_stat(&cur, &st);
	if (!p->loaded || !file_id_equal(&cur, &p->id)) {
		r = load_from_fd(p, fd);
		if (r < 0) {
			hv_log_errno(r, "%s: failed to read the pool file: %m", p->path);
			goto out;
		}
	}

	r = collect_late_appends(p, late);
	if (r < 0)
		hv_log_errno(r, "%s: failed to read records appended to the replaced file: %m",
			     p->path);
	n_late = late->len;
	for (guint i = 0; i < late->len; i++)
		append_record(p, g_ptr_array_steal_index(late, i--));

	result = mutate ? mutate(p, userdata) : 0;
	/* Nothing to write, unless late appends must reach the file anyway. */
	if (result < 0 && n_late == 0) {
		r = result;
		goto out;
	}

	r = write_replace(p, &written);
	if (r < 0) {
		hv_log_errno(r, "%s: failed to write the pool file (left as it was): %m", p->path);
		/* Memory no longer matches the file: read it again next time. */
		p->loaded = false;
		goto out;
	}

	p->id = written;
	unlock_fd(fd);
	if (p->old_fd >= 0)
		close(p->old_fd);
	p->old_fd = hv_steal_fd(&fd);
	p->old_size = st.st_size;
	return result;
out:
	unlock_fd(fd);
	return r;
}

int kvp_pool_refresh(kvp_pool *p)
{
	struct stat st;
	file_id cur;
	hv_autofd int fd = -1;
	bool merged = false;
	int r;

	if (p->old_fd >= 0) {
		struct stat old;

		/* Late appends to the replaced inode: a write merges them. */
		if (fstat(p->old_fd, &old) == 0 && old.st_size > p->old_size) {
			r = commit(p, NULL, NULL);
			if (r < 0)
				return r;
			merged = true;
		}
	}

	if (stat(p->path, &st) < 0) {
		if (errno != ENOENT)
			return -errno;

		cur = (file_id){ .exists = false };
	} else
		file_id_from_stat(&cur, &st);

	if (p->loaded && file_id_equal(&cur, &p->id))
		return merged ? 1 : 0;

	if (!cur.exists) {
		g_ptr_array_set_size(p->records, 0);
		g_hash_table_remove_all(p->index);
		p->id = cur;
		p->loaded = true;
		p->corrupt = false;
		p->n_invalid = 0;
		p->trailing = 0;
		return 1;
	}

	r = open_locked(p, false, false, &fd);
	if (r == -ENOENT)
		return kvp_pool_refresh(p);
	if (r < 0)
		return r;

	r = load_from_fd(p, fd);
	unlock_fd(fd);
	return r < 0 ? r : 1;
}

typedef struct set_args {
	const char *key;
	const char *value;
} set_args;

static int mutate_set(kvp_pool *p, const void *userdata)
{
	const set_args *a = userdata;
	kvp_record *r = g_hash_table_lookup(p->index, a->key);

	if (r) {
		g_free(r->value);
		r->value = g_strdup(a->value);
		return 0;
	}

	append_record(p, record_new(a->key, a->value));
	return 0;
}

int kvp_pool_set(kvp_pool *p, const char *key, const char *value)
{
	set_args a = { .key = key, .value = value };

	if (!key || !value || !*key)
		return -EINVAL;

	if (strlen(key) > KVP_POOL_MAX_KEY_LEN || strlen(value) > KVP_POOL_MAX_VALUE_LEN)
		return -E2BIG;

	return commit(p, mutate_set, &a);
}

static int mutate_delete(kvp_pool *p, const void *userdata)
{
	const char *key = userdata;

	for (guint i = 0; i < p->records->len; i++) {
		const kvp_record *r = g_ptr_array_index(p->records, i);

		if (strcmp(r->key, key) != 0)
			continue;

		/* Later records move up by one, as upstream does. */
		g_ptr_array_remove_index(p->records, i);
		rebuild_index(p);
		return 0;
	}

	return -ENOENT;
}

int kvp_pool_delete(kvp_pool *p, const char *key)
{
	if (!key)
		return -EINVAL;

	return commit(p, mutate_delete, key);
}

void kvp_pools_free(kvp_pools *pools)
{
	if (!pools)
		return;

	for (int i = 0; i < _HV_KVP_POOL_COUNT; i++)
		kvp_pool_free(pools->pool[i]);
	g_free(pools->dir);
	g_free(pools);
}

int kvp_pools_open(const char *dir, mode_t mode, bool create, kvp_pools **ret)
{
	g_autoptr(kvp_pools) pools = g_new0(kvp_pools, 1);
	int r;

	pools->dir = g_strdup(dir);

	if (create && !g_file_test(dir, G_FILE_TEST_IS_DIR)) {
		if (g_mkdir_with_parents(dir, 0755) < 0)
			return hv_log_errno(-errno, "Failed to create the pool directory %s: %m",
					    dir);
		if (chmod(dir, 0755) < 0)
			return hv_log_errno(-errno, "Failed to set the mode of %s: %m", dir);
	}

	for (int i = 0; i < _HV_KVP_POOL_COUNT; i++) {
		g_autofree char *name = g_strdup_printf(".kvp_pool_%d", i);
		g_autofree char *path = g_build_filename(dir, name, NULL);

		pools->pool[i] = kvp_pool_new(path, mode);
		if (create) {
			r = kvp_pool_create_file(pools->pool[i]);
			if (r < 0)
				return hv_log_errno(r, "Failed to create the pool file %s: %m",
						    path);
		}

		r = kvp_pool_refresh(pools->pool[i]);
		if (r < 0)
			return hv_log_errno(r, "Failed to read the pool file %s: %m", path);
	}

	*ret = g_steal_pointer(&pools);
	return 0;
}
