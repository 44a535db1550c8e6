/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Any bytes as a KVP pool file (hv_kvp/kvp-pool.c): damaged, truncated,
 * foreign, or a pool another program wrote. The first two input bytes pick
 * what the daemon then does (a re-read only, a SET of an existing key or a
 * new one, a DELETE, two changes in a row); the rest is the file.
 *
 * The target parses the file itself (2,560-byte records, key[512] +
 * value[2048], each valid only with a NUL in its field) and checks:
 *  - the pool serves exactly the valid records, in file order, and a
 *    lookup answers the first record with the key;
 *  - after a change, the file on disk is whole records only, each key and
 *    value NUL-terminated and zero-padded (no byte that was not part of a
 *    key or value is ever written: stale bytes after a NUL in the damaged
 *    file do not reach the new one), holding the valid records with the
 *    change applied, and a fresh reader sees the same;
 *  - a damaged file is kept as <pool>.corrupt-<time>, byte for byte.
 */
#include <dirent.h>
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "kvp-pool.h"

#define REC HV_KVP_POOL_RECORD_SIZE
#define KEY HV_KVP_MAX_KEY_SIZE
#define VAL HV_KVP_MAX_VALUE_SIZE

static char *dir, *path; /* live as long as the process */

/* The pool warns about damaged files, by design; only criticals are bugs. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	hv_fuzz_glib_quiet();
	dir = g_build_filename(hv_fuzz_tmpdir(), "pool", NULL);
	HV_FUZZ_CHECK(g_mkdir_with_parents(dir, 0700) == 0);
	path = g_build_filename(dir, ".kvp_pool_0", NULL);
	return 0;
}

/* The valid records of a pool file image, as the format defines them. */
static GPtrArray *model_parse(const uint8_t *buf, size_t len, bool *damaged)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

	*damaged = len % REC != 0;
	for (size_t i = 0; i + REC <= len; i += REC) {
		const char *key = (const char *)buf + i, *value = key + KEY;

		if (!memchr(key, 0, KEY) || !memchr(value, 0, VAL)) {
			*damaged = true;
			continue;
		}
		g_ptr_array_add(out, g_strdup(key));
		g_ptr_array_add(out, g_strdup(value));
	}
	return out;
}

static void check_pool_is(const kvp_pool *p, const GPtrArray *m)
{
	HV_FUZZ_CHECK(kvp_pool_count(p) * 2 == m->len);
	for (guint i = 0; i < m->len / 2; i++) {
		const kvp_record *r = kvp_pool_get_at(p, i);
		const char *key = g_ptr_array_index(m, 2 * i);

		HV_FUZZ_CHECK(strcmp(r->key, key) == 0);
		HV_FUZZ_CHECK(strcmp(r->value, g_ptr_array_index(m, 2 * i + 1)) == 0);
		/* the first record with the key answers a lookup */
		for (guint j = 0; j <= i; j++) {
			if (strcmp(g_ptr_array_index(m, 2 * j), key) == 0) {
				HV_FUZZ_CHECK(strcmp(kvp_pool_lookup(p, key),
						     g_ptr_array_index(m, 2 * j + 1)) == 0);
				break;
			}
		}
	}
	HV_FUZZ_CHECK(kvp_pool_get_at(p, m->len / 2) == NULL);
}

/* The file our write left: whole records, NUL-terminated and zero-padded, equal to @m. */
static void check_file_is(const GPtrArray *m)
{
	g_autofree char *buf = NULL;
	gsize len = 0;

	HV_FUZZ_CHECK(g_file_get_contents(path, &buf, &len, NULL));
	HV_FUZZ_CHECK(len % REC == 0);
	HV_FUZZ_CHECK(len / REC * 2 == m->len);
	for (gsize i = 0; i < len / REC; i++) {
		const char *key = buf + i * REC, *value = key + KEY;
		size_t kl = strnlen(key, KEY), vl = strnlen(value, VAL);

		HV_FUZZ_CHECK(kl < KEY && vl < VAL);
		HV_FUZZ_CHECK(strcmp(key, g_ptr_array_index(m, 2 * i)) == 0);
		HV_FUZZ_CHECK(strcmp(value, g_ptr_array_index(m, 2 * i + 1)) == 0);
		for (size_t j = kl; j < KEY; j++)
			HV_FUZZ_CHECK(key[j] == 0);
		for (size_t j = vl; j < VAL; j++)
			HV_FUZZ_CHECK(value[j] == 0);
	}

	/* a fresh reader (the next daemon, the hv-kvp CLI) sees the same */
	{
		g_autoptr(kvp_pool) fresh = kvp_pool_new(path, 0600);

		HV_FUZZ_CHECK(kvp_pool_refresh(fresh) == 1);
		HV_FUZZ_CHECK(kvp_pool_n_invalid(fresh) == 0 &&
			      kvp_pool_trailing_bytes(fresh) == 0);
		check_pool_is(fresh, m);
	}
}

/* The model's SET: the first record with the key changes, else one is appended. */
static void model_set(GPtrArray *m, const char *key, const char *value)
{
	for (guint i = 0; i < m->len; i += 2) {
		if (strcmp(g_ptr_array_index(m, i), key) == 0) {
			g_free(m->pdata[i + 1]);
			m->pdata[i + 1] = g_strdup(value);
			return;
		}
	}
	g_ptr_array_add(m, g_strdup(key));
	g_ptr_array_add(m, g_strdup(value));
}

static bool model_delete(GPtrArray *m, const char *key)
{
	for (guint i = 0; i < m->len; i += 2) {
		if (strcmp(g_ptr_array_index(m, i), key) == 0) {
			g_ptr_array_remove_range(m, i, 2);
			return true;
		}
	}
	return false;
}

/* Removes what the last input left in the directory; checks the corrupt copy first. */
static void clean_dir(const uint8_t *file, size_t len, bool expect_copy)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	unsigned int copies = 0;
	const char *name;

	HV_FUZZ_CHECK(d);
	while ((name = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(dir, name, NULL);

		if (g_str_has_prefix(name, ".kvp_pool_0.corrupt-")) {
			g_autofree char *copy = NULL;
			gsize clen = 0;

			HV_FUZZ_CHECK(g_file_get_contents(p, &copy, &clen, NULL));
			HV_FUZZ_CHECK(clen == len && memcmp(copy, file, len) == 0);
			copies++;
		} else {
			/* no temporary file is left behind: the pool, and the spare
			 * (the file the last change replaced, written to by the next) */
			HV_FUZZ_CHECK(strcmp(name, ".kvp_pool_0") == 0 ||
				      strcmp(name, ".kvp_pool_0.spare") == 0);
		}
		HV_FUZZ_CHECK(g_unlink(p) == 0);
	}
	HV_FUZZ_CHECK(copies == (expect_copy ? 1U : 0U));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GPtrArray) m = NULL;
	g_autoptr(kvp_pool) p = NULL;
	const uint8_t *file = data + MIN(size, 2);
	size_t len = size - MIN(size, 2);
	uint8_t op = size > 0 ? data[0] : 0, which = size > 1 ? data[1] : 0;
	bool damaged, wrote = false;
	int r;

	hv_fuzz_write_file(path, file, len);
	m = model_parse(file, len, &damaged);

	p = kvp_pool_new(path, 0600);
	HV_FUZZ_CHECK(kvp_pool_refresh(p) == 1);
	HV_FUZZ_CHECK(kvp_pool_trailing_bytes(p) == len % REC);
	HV_FUZZ_CHECK((kvp_pool_n_invalid(p) > 0 || kvp_pool_trailing_bytes(p) > 0) == damaged);
	check_pool_is(p, m);
	/* unchanged file: not read again */
	HV_FUZZ_CHECK(kvp_pool_refresh(p) == 0);

	for (int step = 0; step < 1 + (op >> 7); step++) {
		guint n = m->len / 2;
		g_autofree char *key = NULL;
		g_autofree char *value = g_strdup_printf("value-%u-%d", which, step);

		/* a key of the file (possibly not UTF-8, possibly a duplicate), or a new one */
		if (n && !(op & 0x40))
			key = g_strdup(g_ptr_array_index(m, 2 * (which % n)));
		else
			key = g_strdup_printf("fuzz-new-key-%d", step);

		switch (op % 4) {
		case 0:
			continue;
		case 1:
		case 2:
			r = kvp_pool_set(p, key, value);
			if (!*key) {
				/* an empty key in a foreign file cannot be set */
				HV_FUZZ_CHECK(r == -EINVAL);
				continue;
			}
			HV_FUZZ_CHECK(r == 0);
			model_set(m, key, value);
			break;
		case 3:
			r = kvp_pool_delete(p, key);
			HV_FUZZ_CHECK(r == (model_delete(m, key) ? 0 : -ENOENT));
			if (r < 0)
				continue;
			break;
		}
		wrote = true;
		check_pool_is(p, m);
		check_file_is(m);
	}

	clean_dir(file, len, wrote && damaged);
	return 0;
}
