/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One KVP pool file (/var/lib/hyperv/.kvp_pool_N), byte-compatible with the
 * upstream daemon (Linux tools/hv/hv_kvp_daemon.c) in both directions: a
 * headerless array of 2,560-byte records, key[512] + value[2048], each a
 * NUL-terminated UTF-8 string, zero-padded (PROTOCOL.md section 2).
 *
 * In memory the records are kept in file order (the ENUMERATE index is the
 * position), duplicates included, as the upstream daemon serves them:
 * GET, SET and DELETE act on the first record with the key, SET of a new
 * key appends, DELETE moves the later records up by one.
 *
 * The file is re-read only when stat() says it changed (inode, size, mtime
 * and ctime in ns). Every change is written under an fcntl() write lock and
 * a flock() on the pool file (the upstream daemon uses the first, cloud-init
 * and azure-init the second), after re-reading what others appended, into
 * another file in the same directory that is fsync()ed and takes the
 * pool's name, then the directory is fsync()ed. Reads take both locks shared.
 *
 * That other file is the spare, <pool>.spare: the pool file our previous
 * write replaced, one version behind. A write brings it up to date by
 * writing only the records changed since its version (tracked in memory:
 * single records for SETs, everything from a position on for appends and
 * DELETEs), cuts it to size, fsync()s it and exchanges it with the pool
 * (renameat2(RENAME_EXCHANGE)); the replaced pool file is the next spare.
 * The spare is used only under both its locks (taken without waiting long),
 * when it is still at its name, as we left it or only appended to (its mtime
 * is set to 0 after each write, so any other write shows), and when the pool
 * file is the one we wrote. Otherwise, and on file systems without
 * RENAME_EXCHANGE, a write is a full one: all records into a new temporary
 * file, exchanged (or renamed) with the pool. A crash at any point leaves
 * the pool file whole: the spare is never the pool while it is written.
 * Waiting for a lock is bounded (kvp_pool_set_lock_timeout(), 10 s by
 * default): a process that never lets go fails our read or write with
 * -ETIMEDOUT instead of hanging the daemon.
 *
 * The appender race: a writer that opened the pool before our rename and
 * waits for flock() appends to the old inode (the spare) once we release
 * the locks. The old inode stays open after each write; records appended to
 * it are merged into the pool on the next kvp_pool_refresh() or write. A process
 * that exits right after its write (the hv-kvp CLI) cannot do that: such a
 * record is lost, as it would be with the upstream daemon's truncating
 * rewrite.
 *
 * Corrupt files (size not a multiple of 2,560, a key or value without its
 * NUL) are logged; the valid records are served, the invalid ones skipped.
 * The first write after that keeps the original file as
 * <pool>.corrupt-<time> (a hard link, so nothing is lost).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "hv-kvp.h"

#define KVP_POOL_DEFAULT_DIR "/var/lib/hyperv"
#define KVP_POOL_DEFAULT_MODE 0644
#define KVP_POOL_DEFAULT_LOCK_TIMEOUT_MS 10000
/* What fits in a record: the strings without their NUL. */
#define KVP_POOL_MAX_KEY_LEN (HV_KVP_MAX_KEY_SIZE - 1)
#define KVP_POOL_MAX_VALUE_LEN (HV_KVP_MAX_VALUE_SIZE - 1)

typedef struct kvp_record {
	char *key;
	char *value;
} kvp_record;

typedef struct kvp_pool kvp_pool;

/* A pool backed by @path; nothing is read or created yet. */
kvp_pool *kvp_pool_new(const char *path, mode_t mode);
void kvp_pool_free(kvp_pool *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(kvp_pool, kvp_pool_free)

const char *kvp_pool_get_path(const kvp_pool *p);

/*
 * How long to wait for the locks (both kinds) before a read or write fails
 * with -ETIMEDOUT (default KVP_POOL_DEFAULT_LOCK_TIMEOUT_MS). The wait polls
 * with a growing delay (1 to 50 ms), since fcntl() and flock() have no
 * timed wait.
 */
void kvp_pool_set_lock_timeout(kvp_pool *p, unsigned int timeout_ms);

/*
 * Creates the file (mode as given to kvp_pool_new()) if missing, else sets
 * that mode on it; never truncates. -EISDIR if the path is not a regular file.
 */
int kvp_pool_create_file(kvp_pool *p);

/*
 * Removes the temporary files (<pool>.tmp-XXXXXX) of writes that were killed
 * part-way, under the exclusive lock. How many, or -errno.
 */
int kvp_pool_remove_leftovers(kvp_pool *p);

/*
 * Re-reads the file if it changed since the last read (a missing file is an
 * empty pool), and merges records appended to the inode our last write
 * replaced. 1: re-read, 0: unchanged, -errno on failure (the records in
 * memory are kept).
 */
int kvp_pool_refresh(kvp_pool *p);

guint kvp_pool_count(const kvp_pool *p);
/* The record at @index in file order, NULL past the end. */
const kvp_record *kvp_pool_get_at(const kvp_pool *p, guint index);
/* The value of the first record with @key, NULL if none. */
const char *kvp_pool_lookup(const kvp_pool *p, const char *key);

/*
 * Upsert: changes the first record with @key, or appends one. -EINVAL for
 * an empty key, -E2BIG when the key is longer than 511 or the value than
 * 2,047 bytes. Writes the file as described above.
 */
int kvp_pool_set(kvp_pool *p, const char *key, const char *value);
/* Removes the first record with @key; -ENOENT if there is none. */
int kvp_pool_delete(kvp_pool *p, const char *key);

/* Records skipped at the last read (no NUL), and bytes of a partial last record. */
guint kvp_pool_n_invalid(const kvp_pool *p);
size_t kvp_pool_trailing_bytes(const kvp_pool *p);
/* Number of times the file was read (for tests of the reload rule). */
guint kvp_pool_n_loads(const kvp_pool *p);

/* The five pools of a directory. */
typedef struct kvp_pools {
	char *dir;
	kvp_pool *pool[_HV_KVP_POOL_COUNT];
} kvp_pools;

/*
 * @dir/.kvp_pool_0 ... _4. With @create, creates @dir (0755) and the five
 * files if missing, and reads them.
 */
int kvp_pools_open(const char *dir, mode_t mode, bool create, kvp_pools **ret);
void kvp_pools_free(kvp_pools *pools);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(kvp_pools, kvp_pools_free)
