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

/*
 * Record positions written since some version of the file: single records
 * (a SET of an existing key) and everything from @tail on (an append, a
 * delete moves later records up).
 */
#define DIRTY_MAX 32
/* Records per read() and write(): 320 KiB rather than a buffer for the whole pool. */
#define IO_CHUNK 128
typedef struct dirty_set {
	guint n;
	guint idx[DIRTY_MAX];
	guint tail; /* G_MAXUINT: none */
} dirty_set;

static void dirty_clear(dirty_set *d)
{
	d->n = 0;
	d->tail = G_MAXUINT;
}

static void dirty_mark_tail(dirty_set *d, guint from)
{
	d->tail = MIN(d->tail, from);
}

static bool dirty_has(const dirty_set *d, guint i)
{
	for (guint k = 0; k < d->n; k++)
		if (d->idx[k] == i)
			return true;
	return false;
}

static void dirty_mark(dirty_set *d, guint i)
{
	if (i >= d->tail || dirty_has(d, i))
		return;

	if (d->n == DIRTY_MAX) {
		/* Many scattered records: write them all. */
		d->tail = 0;
		return;
	}

	d->idx[d->n++] = i;
}

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
	/*
	 * The inode our last write replaced, to merge what is appended to it
	 * late. Also the spare (kept at spare_path) that the next write brings
	 * up to date and exchanges with the pool.
	 */
	int old_fd;
	off_t old_size;
	char *spare_path;
	/* The spare held spare_nrec records of the pool file before our last write. */
	bool spare_ok;
	guint spare_nrec;
	file_id spare_id; /* the spare as we left it (appends to it are allowed) */
	/* P's contents are exactly the records in memory (before the mutation being committed). */
	bool base_exact;
	/* How to take back the mutation being committed when its write fails (commit()). */
	struct {
		enum { UNDO_NONE, UNDO_VALUE, UNDO_APPEND, UNDO_DELETE } kind;
		guint index;	 /* UNDO_APPEND, UNDO_DELETE: where the record was */
		kvp_record *rec; /* UNDO_VALUE: the record; UNDO_DELETE: the removed record */
		char *old_value; /* UNDO_VALUE */
	} undo;
	/* What the spare lacks of the pool file (last), the pool file of memory (new). */
	dirty_set dirty_last;
	dirty_set dirty_new;
	uint8_t *buf; /* IO_CHUNK records */
	/*
	 * The buffer holds zero-padded records of these key and value lengths
	 * (the last ones formatted in each slot): the next record formatted in
	 * a slot only clears what is left of the previous one.
	 */
	bool buf_formatted;
	uint16_t buf_key_len[IO_CHUNK];
	uint16_t buf_value_len[IO_CHUNK];
	int dir_fd;
	bool has_duplicates; /* some key is in more than one record (appended by others) */
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
	p->dir_fd = -1;
	p->spare_path = g_strdup_printf("%s.spare", path);
	dirty_clear(&p->dirty_last);
	dirty_clear(&p->dirty_new);
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
	if (p->dir_fd >= 0)
		close(p->dir_fd);
	g_hash_table_unref(p->index);
	g_ptr_array_unref(p->records);
	g_free(p->spare_path);
	g_free(p->buf);
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
	p->has_duplicates = false;
	for (guint i = 0; i < p->records->len; i++) {
		kvp_record *r = g_ptr_array_index(p->records, i);

		if (!g_hash_table_contains(p->index, r->key))
			g_hash_table_insert(p->index, r->key, r);
		else
			p->has_duplicates = true;
	}
}

static void append_record(kvp_pool *p, kvp_record *r)
{
	dirty_mark_tail(&p->dirty_new, p->records->len);
	g_ptr_array_add(p->records, r);
	if (!g_hash_table_contains(p->index, r->key))
		g_hash_table_insert(p->index, r->key, r);
	else
		p->has_duplicates = true;
}

/* Whether the @size bytes at @p are all zero. */
static bool all_zero(const char *p, size_t size)
{
	return size == 0 || (p[0] == 0 && memcmp(p, p + 1, size - 1) == 0);
}

/*
 * Parses the whole records in @buf (@len a multiple of the record size) into
 * @out. A record whose key or value has no NUL within its field is skipped
 * (counted in *n_invalid). *n_loose counts the records taken that are not
 * as we write them: bytes other than zero after the NUL of the key or the
 * value (upstream and other writers may leave them; a record we write is
 * zero-padded).
 */
static void parse_records(const char *path, const uint8_t *buf, size_t len, off_t base,
			  GPtrArray *out, guint *n_invalid, guint *n_loose)
{
	size_t n = len / HV_KVP_POOL_RECORD_SIZE;

	for (size_t i = 0; i < n; i++) {
		const char *key = (const char *)buf + i * HV_KVP_POOL_RECORD_SIZE;
		const char *value = key + HV_KVP_MAX_KEY_SIZE;
		const char *key_end = memchr(key, '\0', HV_KVP_MAX_KEY_SIZE);
		const char *value_end = memchr(value, '\0', HV_KVP_MAX_VALUE_SIZE);
		bool key_ok = key_end != NULL;
		bool value_ok = value_end != NULL;

		if (!key_ok || !value_ok) {
			g_warning("%s: the record at offset %lld has no terminating NUL in its %s: skipped",
				  path, (long long)(base + (off_t)(i * HV_KVP_POOL_RECORD_SIZE)),
				  key_ok ? "value" : "key");
			(*n_invalid)++;
			continue;
		}

		if (!all_zero(key_end, (size_t)(key + HV_KVP_MAX_KEY_SIZE - key_end)) ||
		    !all_zero(value_end, (size_t)(value + HV_KVP_MAX_VALUE_SIZE - value_end)))
			(*n_loose)++;
		g_ptr_array_add(out, record_new(key, value));
	}
}

/* The buffer for reading and writing records, kept: a new one costs page faults every time. */
static uint8_t *io_buf(kvp_pool *p)
{
	if (!p->buf)
		p->buf = g_malloc(IO_CHUNK * HV_KVP_POOL_RECORD_SIZE);
	return p->buf;
}

/*
 * Reads the records of @fd from @offset to its end into @out, a chunk at a
 * time. *n_invalid: records skipped; *trailing: bytes after the last whole
 * record (left unread for the caller to judge).
 */
static int read_records(kvp_pool *p, int fd, off_t offset, GPtrArray *out, guint *n_invalid,
			guint *n_loose, size_t *trailing, off_t *ret_end)
{
	const size_t cap = IO_CHUNK * HV_KVP_POOL_RECORD_SIZE;
	uint8_t *buf = io_buf(p);
	size_t have = 0;

	p->buf_formatted = false;

	*n_invalid = 0;
	*n_loose = 0;
	for (;;) {
		ssize_t n = pread(fd, buf + have, cap - have, offset + (off_t)have);
		size_t whole;

		if (n < 0 && errno == EINTR)
			continue;

		if (n < 0)
			return -errno;

		if (n == 0)
			break;

		have += (size_t)n;
		whole = have - have % HV_KVP_POOL_RECORD_SIZE;
		parse_records(p->path, buf, whole, offset, out, n_invalid, n_loose);
		memmove(buf, buf + whole, have - whole);
		offset += (off_t)whole;
		have -= whole;
	}

	*trailing = have;
	if (ret_end)
		*ret_end = offset;
	return 0;
}

/* Replaces the records in memory with the contents of @fd (locked by the caller). */
static int load_from_fd(kvp_pool *p, int fd)
{
	g_autoptr(GPtrArray) records = NULL;
	struct stat st;
	guint n_loose;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;

	records = g_ptr_array_new_full((guint)MIN(st.st_size / HV_KVP_POOL_RECORD_SIZE, 1 << 20),
				       record_free);
	r = read_records(p, fd, 0, records, &p->n_invalid, &n_loose, &p->trailing, NULL);
	if (r < 0)
		return r;

	if (p->trailing)
		g_warning("%s: %zu bytes after the last whole record (a partial record: records are %u bytes): ignored",
			  p->path, p->trailing, HV_KVP_POOL_RECORD_SIZE);
	p->corrupt = p->n_invalid > 0 || p->trailing > 0;

	g_ptr_array_unref(p->records);
	p->records = g_steal_pointer(&records);
	rebuild_index(p);
	file_id_from_stat(&p->id, &st);
	p->loaded = true;
	p->n_loads++;
	/*
	 * Someone else wrote the file: what the spare lacks is unknown. A file
	 * with bytes that are not ours (padding that is not zero) is never
	 * kept in part: the next write writes every record.
	 */
	p->base_exact = !p->corrupt && n_loose == 0;
	if (n_loose)
		g_debug("%s: %u records with bytes after a NUL: the next write rewrites them all",
			p->path, n_loose);
	p->spare_ok = false;
	dirty_clear(&p->dirty_new);
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
static int open_locked(kvp_pool *p, bool exclusive, bool create, int *ret_fd, struct stat *ret_st)
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
				if (ret_st)
					*ret_st = a;
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
 * Removes the temporary files a writer killed mid-write left next to the
 * pool (<pool>.tmp-XXXXXX: only written under the exclusive lock, so none
 * is in use while we hold it). Returns how many were removed.
 */
int kvp_pool_remove_leftovers(kvp_pool *p)
{
	g_autofree char *dir = g_path_get_dirname(p->path);
	g_autofree char *base = g_path_get_basename(p->path);
	g_autofree char *prefix = g_strconcat(base, ".tmp-", NULL);
	g_autoptr(GDir) d = NULL;
	hv_autofd int fd = -1;
	const char *name;
	int r, n = 0;

	r = open_locked(p, true, false, &fd, NULL);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;

	d = g_dir_open(dir, 0, NULL);
	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *path = NULL;

		if (!g_str_has_prefix(name, prefix) || strlen(name) != strlen(prefix) + 6)
			continue;
		path = g_build_filename(dir, name, NULL);
		if (unlink(path) == 0) {
			g_info("%s: removed %s, left by a write that was interrupted", p->path,
			       name);
			n++;
		} else if (errno != ENOENT) {
			g_warning("%s: failed to remove the leftover %s: %m", p->path, name);
		}
	}
	unlock_fd(fd);
	return n;
}

/*
 * Records appended to the inode our last write replaced (a writer that had
 * opened the pool before the rename and waited for the lock). Adds them to
 * @out; 0 when there are none. @locked: we hold both locks on it already.
 */
static int collect_late_appends(kvp_pool *p, bool locked, const struct stat *st, GPtrArray *out)
{
	guint n_invalid, n_loose;
	size_t trailing;
	off_t end;
	int r;

	if (p->old_fd < 0 || st->st_size <= p->old_size)
		return 0;

	/* Let the appender finish: it writes under flock(LOCK_EX). */
	if (!locked) {
		gint64 deadline = g_get_monotonic_time() + (gint64)p->lock_timeout_ms * 1000;

		while (flock(p->old_fd, LOCK_SH | LOCK_NB) < 0) {
			if (errno != EWOULDBLOCK && errno != EINTR)
				return -errno;
			if (g_get_monotonic_time() >= deadline)
				return -ETIMEDOUT;
			sleep_ms(10);
		}
	}

	r = read_records(p, p->old_fd, p->old_size, out, &n_invalid, &n_loose, &trailing, &end);
	if (!locked)
		flock(p->old_fd, LOCK_UN);
	if (r < 0)
		return r;

	g_info("%s: %u record%s appended to the replaced file after our write: merged", p->path,
	       out->len, out->len == 1 ? "" : "s");
	/* Whole records only: the rest of a record being appended comes later. */
	p->old_size = end;
	return (int)out->len;
}

/* The pool's directory, kept open after the first write. */
static int fsync_dir(kvp_pool *p)
{
	if (p->dir_fd < 0) {
		g_autofree char *dir = g_path_get_dirname(p->path);

		p->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (p->dir_fd < 0)
			return -errno;
	}

	if (fsync(p->dir_fd) < 0)
		return -errno;

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

/* Writes records [@first, @end) at their place in @fd, zero padded. */
static int write_records(kvp_pool *p, int fd, guint first, guint end)
{
	guint chunk = IO_CHUNK;
	uint8_t *buf;

	if (first >= end)
		return 0;

	buf = io_buf(p);
	/*
	 * Zeroed once after a read into it, then each record clears only what
	 * the previous one in its slot left (not 2,560 bytes a record).
	 */
	if (!p->buf_formatted) {
		memset(buf, 0, IO_CHUNK * HV_KVP_POOL_RECORD_SIZE);
		memset(p->buf_key_len, 0, sizeof(p->buf_key_len));
		memset(p->buf_value_len, 0, sizeof(p->buf_value_len));
		p->buf_formatted = true;
	}
	for (guint i = first; i < end; i += chunk) {
		guint n = MIN(chunk, end - i);
		size_t len = (size_t)n * HV_KVP_POOL_RECORD_SIZE;
		size_t done = 0;

		for (guint k = 0; k < n; k++) {
			const kvp_record *rec = g_ptr_array_index(p->records, i + k);
			char *dst = (char *)buf + (size_t)k * HV_KVP_POOL_RECORD_SIZE;
			/* Lengths were checked when the record was made: NUL and zero padding fit. */
			size_t key_len = strlen(rec->key), value_len = strlen(rec->value);

			memcpy(dst, rec->key, key_len);
			if (key_len < p->buf_key_len[k])
				memset(dst + key_len, 0, p->buf_key_len[k] - key_len);
			memcpy(dst + HV_KVP_MAX_KEY_SIZE, rec->value, value_len);
			if (value_len < p->buf_value_len[k])
				memset(dst + HV_KVP_MAX_KEY_SIZE + value_len, 0,
				       p->buf_value_len[k] - value_len);
			p->buf_key_len[k] = (uint16_t)key_len;
			p->buf_value_len[k] = (uint16_t)value_len;
		}

		while (done < len) {
			ssize_t w = pwrite(fd, buf + done, len - done,
					   (off_t)i * HV_KVP_POOL_RECORD_SIZE + (off_t)done);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -errno;
			if (w == 0)
				return -EIO;
			done += (size_t)w;
		}
	}

	return 0;
}

static int exchange(const char *a, const char *b)
{
#ifdef RENAME_EXCHANGE
	if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0)
		return 0;
	return -errno;
#else
	return -ENOSYS;
#endif
}

/*
 * The full write: all records into a new file, fdatasync()ed, which takes the
 * place of the pool. The replaced pool file becomes the spare (exchanged,
 * then renamed to the spare's name) where the file system can exchange
 * names; else it is simply replaced. *ret_spare: whether @pool_fd (the
 * replaced file) is now at spare_path.
 */
static int write_full(kvp_pool *p, file_id *ret_id, bool *ret_spare)
{
	g_autofree char *tmp = g_strdup_printf("%s.tmp-XXXXXX", p->path);
	hv_autofd int fd = -1;
	struct stat st;
	int r;

	*ret_spare = false;
	/*
	 * The spare is of no use to this write and is replaced after it: gone
	 * now, the file system needs room for two copies of the pool, not
	 * three. (Records appended to it late are still read through old_fd.)
	 */
	if (unlink(p->spare_path) < 0 && errno != ENOENT)
		g_debug("%s: failed to remove %s: %m", p->path, p->spare_path);
	fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, (int)p->mode);
	if (fd < 0)
		return -errno;

	if (fchmod(fd, p->mode) < 0)
		goto fail_errno;

	r = write_records(p, fd, 0, p->records->len);
	if (r < 0)
		goto fail;

	/* Data and size; the timestamps need not reach the disk first (one journal commit less). */
	if (fdatasync(fd) < 0)
		goto fail_errno;

	if (p->corrupt)
		keep_corrupt_copy(p);

	r = exchange(tmp, p->path);
	if (r == 0) {
		/* tmp is now the replaced pool file: it becomes the spare. */
		if (rename(tmp, p->spare_path) == 0)
			*ret_spare = true;
		else {
			hv_log_errno(-errno, "%s: failed to keep the replaced file as %s: %m",
				     p->path, p->spare_path);
			unlink(tmp);
		}
	} else if (rename(tmp, p->path) < 0)
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

	r = fsync_dir(p);
	if (r < 0)
		hv_log_errno(r, "%s: failed to sync the directory after the rename: %m", p->path);
	return 0;

fail_errno:
	r = -errno;
fail:
	unlink(tmp);
	return r;
}

/*
 * The spare can be brought up to date in place: it is the file our last
 * write replaced, still at spare_path, as we left it or only appended to
 * (the appends were merged into memory already), and the pool file is the
 * one we wrote. Its locks are held by the caller.
 */
static bool spare_usable(kvp_pool *p, const struct stat *sp)
{
	struct stat st = *sp, named;

	if (!p->spare_ok || !p->base_exact || p->corrupt || p->old_fd < 0)
		return false;

	if (lstat(p->spare_path, &named) < 0) {
		g_debug("%s: spare gone (%m): full write", p->path);
		return false;
	}

	if (named.st_dev != st.st_dev || named.st_ino != st.st_ino || st.st_nlink != 1 ||
	    !S_ISREG(st.st_mode)) {
		g_info("%s: %s is not the file we left there: full write", p->path, p->spare_path);
		return false;
	}

	/* Changed in place or cut (its mtime is no longer our mark), rather than appended to. */
	if (st.st_size < p->spare_id.size ||
	    (st.st_size == p->spare_id.size &&
	     (st.st_mtim.tv_sec != p->spare_id.mtim.tv_sec ||
	      st.st_mtim.tv_nsec != p->spare_id.mtim.tv_nsec))) {
		g_info("%s: %s was changed by someone else: full write", p->path, p->spare_path);
		return false;
	}

	if ((st.st_mode & 07777) != p->mode && fchmod(p->old_fd, p->mode) < 0)
		return false;

	return true;
}

/*
 * The incremental write: the records the spare lacks (changed since the
 * version it holds, which is one write behind the pool file) are written
 * into it, it is cut to size, fdatasync()ed and exchanged with the pool file,
 * which becomes the next spare. The same guarantees as a full write: the
 * pool file is always a whole, synced file.
 */
static int write_spare(kvp_pool *p, off_t spare_size, file_id *ret_id)
{
	guint len = p->records->len;
	guint from = MIN(MIN(p->dirty_last.tail, p->dirty_new.tail), p->spare_nrec);
	off_t size = (off_t)len * HV_KVP_POOL_RECORD_SIZE;
	const dirty_set *sets[] = { &p->dirty_last, &p->dirty_new };
	struct stat st;
	int r;

	from = MIN(from, len);
	for (int s = 0; s < 2; s++) {
		for (guint k = 0; k < sets[s]->n; k++) {
			guint i = sets[s]->idx[k];

			if (i >= from || (s == 1 && dirty_has(&p->dirty_last, i)))
				continue;
			r = write_records(p, p->old_fd, i, i + 1);
			if (r < 0)
				return r;
		}
	}

	r = write_records(p, p->old_fd, from, len);
	if (r < 0)
		return r;

	/* Shorter than it was: cut. (Longer: the writes above reached the new end.) */
	if (spare_size > size && ftruncate(p->old_fd, size) < 0)
		return -errno;

	if (fdatasync(p->old_fd) < 0)
		return -errno;

	r = exchange(p->spare_path, p->path);
	if (r < 0)
		return r;

	/* Done: the pool file is the one we wrote. Unknown id: read it again next time. */
	if (fstat(p->old_fd, &st) == 0)
		file_id_from_stat(ret_id, &st);
	else
		*ret_id = (file_id){ .exists = false };
	r = fsync_dir(p);
	if (r < 0)
		hv_log_errno(r, "%s: failed to sync the directory after the rename: %m", p->path);
	return 0;
}

typedef int (*mutate_fn)(kvp_pool *p, const void *userdata);

/* The mutation was written: what undo kept is no longer needed. */
static void undo_forget(kvp_pool *p)
{
	if (p->undo.kind == UNDO_VALUE)
		g_free(p->undo.old_value);
	else if (p->undo.kind == UNDO_DELETE)
		record_free(p->undo.rec);
	p->undo.kind = UNDO_NONE;
}

/*
 * The write failed: memory goes back to what it held before the mutation
 * (records appended late by others stay: they are on disk), so that a
 * change the host was told failed is never answered from memory.
 */
static void undo_apply(kvp_pool *p)
{
	kvp_record *r;

	switch (p->undo.kind) {
	case UNDO_NONE:
		break;
	case UNDO_VALUE:
		g_free(p->undo.rec->value);
		p->undo.rec->value = p->undo.old_value;
		break;
	case UNDO_APPEND:
		r = g_ptr_array_index(p->records, p->undo.index);
		/* A new key: no other record has it. */
		g_hash_table_remove(p->index, r->key);
		g_ptr_array_remove_index(p->records, p->undo.index);
		break;
	case UNDO_DELETE:
		/* It was the first record with its key. */
		g_ptr_array_insert(p->records, (gint)p->undo.index, p->undo.rec);
		g_hash_table_insert(p->index, p->undo.rec->key, p->undo.rec);
		break;
	}
	p->undo.kind = UNDO_NONE;
}

/* The spare's mtime after each write (atime left alone). */
static const struct timespec spare_mark[2] = {
	{ .tv_nsec = UTIME_OMIT },
	{ .tv_sec = 0, .tv_nsec = 0 },
};

/*
 * The write path: lock the pool file (fcntl and flock), re-read it if it
 * changed since our last read, lock the spare, add late appends to the old
 * inode (the spare), apply @mutate, write the spare (or a new file) and
 * exchange it with the pool, release.
 */
static int commit(kvp_pool *p, mutate_fn mutate, const void *userdata)
{
	g_autoptr(GPtrArray) late = g_ptr_array_new_with_free_func(record_free);
	hv_autofd int fd = -1;
	struct stat st, old_st;
	file_id cur, written;
	guint n_late, base_len;
	bool spare_locked = false, incremental = false, now_spare = false, reloaded = false;
	bool have_old;
	int r, result;

	r = open_locked(p, true, true, &fd, &st);
	if (r < 0)
		return hv_log_errno(r, "%s: failed to open and lock the pool file: %m", p->path);

	file_id_from_stat(&cur, &st);
	if (!p->loaded || !file_id_equal(&cur, &p->id)) {
		r = load_from_fd(p, fd);
		if (r < 0) {
			hv_log_errno(r, "%s: failed to read the pool file: %m", p->path);
			goto out;
		}
		reloaded = true;
	}

	/*
	 * The file we replaced last time renamed back to the pool's name (by
	 * hand): it is the file we just read, not an old inode, and its
	 * flock() is ours through @fd.
	 */
	if (p->old_fd >= 0 && reloaded && fstat(p->old_fd, &old_st) == 0 &&
	    old_st.st_dev == st.st_dev && old_st.st_ino == st.st_ino) {
		p->spare_ok = false;
		p->old_size = st.st_size;
	}

	/*
	 * The spare is written only under both its locks: whoever holds one
	 * (an appender that opened the pool before our last write) is not
	 * waited for long, we write a new file instead.
	 */
	if (p->old_fd >= 0 && p->spare_ok && p->base_exact)
		spare_locked = lock_fd(p->old_fd, true, 20) == 0;

	have_old = p->old_fd >= 0 && fstat(p->old_fd, &old_st) == 0;
	base_len = p->records->len;
	dirty_clear(&p->dirty_new);
	r = have_old ? collect_late_appends(p, spare_locked, &old_st, late) : 0;
	if (r < 0)
		hv_log_errno(r, "%s: failed to read records appended to the replaced file: %m",
			     p->path);
	n_late = late->len;
	for (guint i = 0; i < late->len; i++)
		append_record(p, g_ptr_array_steal_index(late, i--));

	p->undo.kind = UNDO_NONE;
	result = mutate ? mutate(p, userdata) : 0;
	/* Nothing to write, unless late appends must reach the file anyway. */
	if (result < 0 && n_late == 0) {
		r = result;
		goto out;
	}

	if (spare_locked && have_old && spare_usable(p, &old_st)) {
		r = write_spare(p, old_st.st_size, &written);
		if (r == 0)
			incremental = now_spare = true;
		else
			hv_log_errno(r, "%s: failed to update the spare %s, writing a new file: %m",
				     p->path, p->spare_path);
	}

	if (!incremental) {
		r = write_full(p, &written, &now_spare);
		if (r < 0) {
			hv_log_errno(r, "%s: failed to write the pool file (left as it was): %m",
				     p->path);
			/* The change is taken back; read the file again next time. */
			undo_apply(p);
			p->loaded = false;
			p->spare_ok = false;
			goto out;
		}
	}

	undo_forget(p);
	p->id = written;
	unlock_fd(fd);
	if (spare_locked)
		unlock_fd(p->old_fd);
	if (p->old_fd >= 0)
		close(p->old_fd);
	p->old_fd = hv_steal_fd(&fd);
	p->old_size = st.st_size;
	/* The replaced pool file held the records before this write. */
	p->spare_ok = now_spare && p->base_exact &&
		      st.st_size == (off_t)base_len * HV_KVP_POOL_RECORD_SIZE;
	p->spare_nrec = base_len;
	p->dirty_last = p->dirty_new;
	dirty_clear(&p->dirty_new);
	p->base_exact = true;
	/*
	 * A mark on the spare: its mtime set to 0. Anyone who writes to it or
	 * cuts it sets the mtime to the present, so we can tell (timestamps
	 * alone are too coarse: a write right after ours can keep the mtime).
	 */
	if (p->spare_ok && futimens(p->old_fd, spare_mark) == 0)
		/* What spare_usable() looks at: untouched since we locked it. */
		p->spare_id = (file_id){ .exists = true, .size = st.st_size };
	else
		p->spare_ok = false;
	return result;
out:
	if (spare_locked)
		unlock_fd(p->old_fd);
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

	r = open_locked(p, false, false, &fd, NULL);
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
		p->undo.kind = UNDO_VALUE;
		p->undo.rec = r;
		p->undo.old_value = r->value;
		r->value = g_strdup(a->value);
		for (guint i = 0; i < p->records->len; i++) {
			if (g_ptr_array_index(p->records, i) == r) {
				dirty_mark(&p->dirty_new, i);
				break;
			}
		}
		return 0;
	}

	p->undo.kind = UNDO_APPEND;
	p->undo.index = p->records->len;
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
		dirty_mark_tail(&p->dirty_new, i);
		g_hash_table_remove(p->index, key);
		/* A later duplicate of the key is now the first. */
		for (guint k = i + 1; p->has_duplicates && k < p->records->len; k++) {
			kvp_record *dup = g_ptr_array_index(p->records, k);

			if (strcmp(dup->key, key) == 0) {
				g_hash_table_insert(p->index, dup->key, dup);
				break;
			}
		}
		p->undo.kind = UNDO_DELETE;
		p->undo.index = i;
		p->undo.rec = g_ptr_array_steal_index(p->records, i);
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
			r = kvp_pool_remove_leftovers(pools->pool[i]);
			if (r < 0)
				hv_log_errno(r, "%s: failed to look for leftover temporary files: %m",
					     path);
		}

		r = kvp_pool_refresh(pools->pool[i]);
		if (r < 0)
			return hv_log_errno(r, "Failed to read the pool file %s: %m", path);
	}

	*ret = g_steal_pointer(&pools);
	return 0;
}
