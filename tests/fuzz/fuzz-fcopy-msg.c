/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FCOPY requests as the two transport adapters receive them
 * (hv_fcopy/fcopy-chardev.c: UTF-8 names the kernel converted; fcopy-uio.c:
 * IC messages with raw UTF-16LE names and the version negotiation), run
 * through the copy session (fcopy-session.c, fcopy-path.c) the way
 * fcopy-daemon.c does it, against a real directory tree:
 *
 *   <root>/allowed/            the one allowed target directory
 *   <root>/allowed/exists      a file already there
 *   <root>/allowed/sub/        a directory
 *   <root>/allowed/link ->     <root>/outside (a symbolic link to a directory)
 *   <root>/allowed/flink ->    <root>/outside/target (a link to a file)
 *   <root>/outside/target      a file that must never change
 *
 * Input: a flags byte (adapter, O_TMPFILE or named temporary files), then
 * up to 16 messages, each a 16-bit little-endian length and its bytes. A
 * START's absolute path is taken relative to <root> (the host cannot know
 * the private directory's name); everything else is as the host sent it.
 *
 * Checked: decoded names are NUL-terminated UTF-8, a WRITE's data lies
 * inside the message; the reply is what the transport expects (4-byte
 * status, or the same IC message with status and response flags); and
 * after every message the tree changed only as allowed: nothing outside
 * <root>/allowed, no symbolic link followed, no file under a final name
 * before COMPLETE succeeded (a completed copy holds exactly the bytes
 * written, mode 0644), new directories only from a START with CREATE_PATH,
 * and no temporary file left once no copy is open.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fcopy-adapter.h"
#include "fcopy-session.h"
#include "fuzz-util.h"
#include "hv-ic-msg.h"

#define MODEL_MAX (64 * 1024)

static char *root, *allowed, *outside, *state_path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	hv_fuzz_glib_quiet();
	root = g_build_filename(hv_fuzz_tmpdir(), "fcopy", NULL);
	allowed = g_build_filename(root, "allowed", NULL);
	outside = g_build_filename(root, "outside", NULL);
	state_path = g_build_filename(hv_fuzz_tmpdir(), "fcopy-state", NULL);
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void make_tree(void)
{
	g_autofree char *p = NULL;

	nftw(root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	g_unlink(state_path);
	HV_FUZZ_CHECK(g_mkdir_with_parents(allowed, 0755) == 0);
	HV_FUZZ_CHECK(g_mkdir_with_parents(outside, 0755) == 0);
	p = g_build_filename(allowed, "sub", NULL);
	HV_FUZZ_CHECK(g_mkdir(p, 0755) == 0);
	g_free(p);
	p = g_build_filename(allowed, "exists", NULL);
	hv_fuzz_write_file(p, "old contents", 12);
	g_free(p);
	p = g_build_filename(outside, "target", NULL);
	hv_fuzz_write_file(p, "outside", 7);
	g_free(p);
	p = g_build_filename(allowed, "link", NULL);
	HV_FUZZ_CHECK(symlink(outside, p) == 0);
	g_free(p);
	p = g_build_filename(allowed, "flink", NULL);
	HV_FUZZ_CHECK(symlink("../outside/target", p) == 0);
}

/* The tree: path -> "type mode size checksum" (links: their target). */
static GHashTable *walk_into;

static int note_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	char *desc;

	if (S_ISREG(st->st_mode) && st->st_size > 4 * MODEL_MAX) {
		/* sparse writes far out: size only */
		desc = g_strdup_printf("f %o %lld big", (unsigned int)(st->st_mode & 07777),
				       (long long)st->st_size);
	} else if (S_ISREG(st->st_mode)) {
		g_autofree char *data = NULL;
		gsize len = 0;
		g_autofree char *sum = NULL;

		HV_FUZZ_CHECK(g_file_get_contents(path, &data, &len, NULL));
		sum = g_compute_checksum_for_data(G_CHECKSUM_SHA1, (const guchar *)data, len);
		desc =
		    g_strdup_printf("f %o %zu %s", (unsigned int)(st->st_mode & 07777), len, sum);
	} else if (S_ISLNK(st->st_mode)) {
		char target[4096];
		ssize_t n = readlink(path, target, sizeof(target) - 1);

		HV_FUZZ_CHECK(n >= 0);
		target[n] = '\0';
		desc = g_strdup_printf("l %s", target);
	} else if (S_ISDIR(st->st_mode)) {
		desc = g_strdup_printf("d %o", (unsigned int)(st->st_mode & 07777));
	} else {
		desc = g_strdup("?");
	}
	g_hash_table_insert(walk_into, g_strdup(path), desc);
	return 0;
}

static GHashTable *snapshot(void)
{
	walk_into = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	HV_FUZZ_CHECK(nftw(root, note_one, 16, FTW_PHYS) == 0);
	return walk_into;
}

static bool is_temp(const char *path)
{
	g_autofree char *base = g_path_get_basename(path);

	return g_str_has_prefix(base, FCOPY_TEMP_PREFIX);
}

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/* What the writes of the open copy should have produced. */
typedef struct model {
	bool copying;
	GByteArray *bytes;
	uint64_t end;
	bool known; /* every write fell within MODEL_MAX */
} model;

static void model_reset(model *m)
{
	g_byte_array_set_size(m->bytes, 0);
	m->end = 0;
	m->known = true;
}

static void model_write(model *m, uint64_t offset, const uint8_t *data, uint32_t size)
{
	if (!size)
		return;
	m->end = MAX(m->end, offset + size);
	if (offset + size > MODEL_MAX) {
		m->known = false;
		return;
	}
	if (m->bytes->len < offset + size) {
		guint old = m->bytes->len;

		g_byte_array_set_size(m->bytes, (guint)(offset + size));
		memset(m->bytes->data + old, 0, m->bytes->len - old);
	}
	memcpy(m->bytes->data + offset, data, size);
}

static void check_completed(const char *target, const model *m)
{
	struct stat st;

	HV_FUZZ_CHECK(lstat(target, &st) == 0 && S_ISREG(st.st_mode));
	HV_FUZZ_CHECK((st.st_mode & 07777) == FCOPY_DEFAULT_FILE_MODE);
	HV_FUZZ_CHECK((uint64_t)st.st_size == m->end);
	if (m->known) {
		g_autofree char *data = NULL;
		gsize len = 0;

		HV_FUZZ_CHECK(g_file_get_contents(target, &data, &len, NULL));
		/* an empty GByteArray has no data pointer: no memcmp() of NULL */
		HV_FUZZ_CHECK(len == m->bytes->len &&
			      (len == 0 || memcmp(data, m->bytes->data, len) == 0));
	}
}

/* Every change between two snapshots is one the request may make. */
static void check_changes(GHashTable *before, GHashTable *after, uint32_t op, int r,
			  const char *target, bool create_path)
{
	GHashTableIter it;
	gpointer key, value;

	g_hash_table_iter_init(&it, after);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		const char *path = key, *now = value, *was = g_hash_table_lookup(before, path);

		if (was && strcmp(was, now) == 0)
			continue;
		/* nothing outside the allowed directory ever changes */
		HV_FUZZ_CHECK(under(path, allowed));
		if (is_temp(path))
			continue;
		if (!was && now[0] == 'd') {
			HV_FUZZ_CHECK(op == HV_FCOPY_START_FILE_COPY && create_path);
			continue;
		}
		/* a final name changes only when a COMPLETE succeeds */
		HV_FUZZ_CHECK(op == HV_FCOPY_COMPLETE_FCOPY && r == 0);
		HV_FUZZ_CHECK(strcmp(path, target) == 0);
	}

	g_hash_table_iter_init(&it, before);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		/* only temporary files disappear (a completed copy replaces, never removes) */
		if (!g_hash_table_contains(after, key))
			HV_FUZZ_CHECK(is_temp(key));
	}
}

static void check_decoded(const fcopy_request *req, const uint8_t *buf, size_t len)
{
	if (req->op == HV_FCOPY_START_FILE_COPY) {
		HV_FUZZ_CHECK(memchr(req->file_name, 0, sizeof(req->file_name)));
		HV_FUZZ_CHECK(memchr(req->path_name, 0, sizeof(req->path_name)));
		HV_FUZZ_CHECK(g_utf8_validate(req->file_name, -1, NULL));
		HV_FUZZ_CHECK(g_utf8_validate(req->path_name, -1, NULL));
	} else if (req->op == HV_FCOPY_WRITE_TO_FILE) {
		HV_FUZZ_CHECK(req->size <= HV_FCOPY_DATA_FRAGMENT);
		HV_FUZZ_CHECK(req->data >= buf && req->data + req->size <= buf + len);
	}
}

static void check_reply(const fcopy_adapter *a, const uint8_t *buf, size_t len, ssize_t n,
			uint32_t status)
{
	if (a == &fcopy_adapter_chardev) {
		uint32_t got;

		HV_FUZZ_CHECK(n == sizeof(uint32_t));
		memcpy(&got, buf, sizeof(got));
		HV_FUZZ_CHECK(got == status);
	} else {
		hv_ic_msg msg;

		/* no IC headers: nothing to answer with (the host gets no reply) */
		if (len < HV_ICMSG_HDR_LEN) {
			HV_FUZZ_CHECK(n == -EBADMSG);
			return;
		}
		HV_FUZZ_CHECK(n == (ssize_t)len);
		HV_FUZZ_CHECK(hv_ic_msg_parse(buf, len, &msg) == 0);
		HV_FUZZ_CHECK(msg.hdr.status == status);
		HV_FUZZ_CHECK(msg.hdr.icflags ==
			      (HV_ICMSGHDRFLAG_TRANSACTION | HV_ICMSGHDRFLAG_RESPONSE));
	}
}

/* A START's path, as the host meant it, inside our private tree. */
static void rebase_path(fcopy_request *req)
{
	g_autofree char *p = NULL;

	if (req->path_name[0] != '/')
		return;
	p = g_strconcat(root, req->path_name, NULL);
	if (strlen(p) < sizeof(req->path_name))
		memcpy(req->path_name, p, strlen(p) + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	uint8_t flags = size ? *p++ : 0;
	const fcopy_adapter *a = (flags & 1) ? &fcopy_adapter_uio : &fcopy_adapter_chardev;
	const char *allowed_list[] = {allowed, NULL};
	fcopy_options opt = {
	    .file_mode = FCOPY_DEFAULT_FILE_MODE,
	    .dir_mode = FCOPY_DEFAULT_DIR_MODE,
	    .allowed = allowed_list,
	    .state_path = (flags & 4) ? state_path : NULL,
	    .use_tmpfile = flags & 2,
	};
	g_autoptr(fcopy_session) s = NULL;
	model m = {.bytes = g_byte_array_new()};

	make_tree();
	HV_FUZZ_CHECK(fcopy_session_new(&opt, &s) == 0);

	for (int i = 0; i < 16 && end - p >= 2; i++) {
		size_t len = (size_t)p[0] | (size_t)p[1] << 8;
		/* the receive buffer: exactly what arrived (no message is larger than max_msg) */
		size_t bufsize;
		g_autofree uint8_t *buf = NULL;
		g_autoptr(GHashTable) before = NULL;
		g_autoptr(GHashTable) after = NULL;
		g_autofree char *target = NULL;
		fcopy_request req;
		const char *why = NULL;
		size_t reply_len = 0;
		uint32_t status;
		ssize_t n;
		int r, d;

		p += 2;
		len = MIN(len, (size_t)(end - p));
		len = MIN(len, a->max_msg);
		bufsize = MAX(len, sizeof(uint32_t));
		buf = g_malloc0(bufsize);
		memcpy(buf, p, len);
		p += len;

		before = snapshot();
		d = a->decode(buf, len, &req, &reply_len, &why);
		HV_FUZZ_CHECK(why != NULL);
		HV_FUZZ_CHECK(d == FCOPY_DECODED_REQUEST || d == FCOPY_DECODED_REPLY ||
			      d == FCOPY_DECODED_IGNORE || d < 0);
		if (d == FCOPY_DECODED_IGNORE)
			continue;
		if (d == FCOPY_DECODED_REPLY) {
			HV_FUZZ_CHECK(a == &fcopy_adapter_uio && reply_len <= len);
			continue;
		}

		if (d < 0) {
			r = d;
			/* as handle_message(): a broken START ends the open copy */
			if (req.op == HV_FCOPY_START_FILE_COPY)
				fcopy_session_cancel(s);
		} else {
			check_decoded(&req, buf, len);
			if (req.op == HV_FCOPY_START_FILE_COPY)
				rebase_path(&req);
			target = g_strdup(fcopy_session_target(s));
			r = fcopy_session_handle(s, &req);
			if (req.op == HV_FCOPY_START_FILE_COPY) {
				g_free(target);
				target = g_strdup(fcopy_session_target(s));
			}
		}
		status = fcopy_status_from_errno(r);

		after = snapshot();
		check_changes(before, after, req.op, r, target ? target : "",
			      d >= 0 && (req.copy_flags & HV_FCOPY_CREATE_PATH));

		switch (d < 0 ? UINT32_MAX : req.op) {
		case HV_FCOPY_START_FILE_COPY:
			model_reset(&m);
			m.copying = r == 0;
			if (r == 0)
				HV_FUZZ_CHECK(under(fcopy_session_target(s), allowed));
			break;
		case HV_FCOPY_WRITE_TO_FILE:
			HV_FUZZ_CHECK(r == 0 || !m.copying || r == -EFBIG || r == -EINVAL);
			if (r == 0)
				model_write(&m, req.offset, req.data, req.size);
			break;
		case HV_FCOPY_COMPLETE_FCOPY:
			if (r == 0) {
				HV_FUZZ_CHECK(m.copying);
				check_completed(target, &m);
			}
			m.copying = false;
			break;
		case HV_FCOPY_CANCEL_FCOPY:
			HV_FUZZ_CHECK(r == 0);
			m.copying = false;
			break;
		default:
			if (d < 0 && req.op == HV_FCOPY_START_FILE_COPY)
				m.copying = false;
			break;
		}
		HV_FUZZ_CHECK(m.copying == (fcopy_session_get_state(s) == FCOPY_STATE_COPYING));

		/* no temporary file (named or its record) outlives the copy */
		if (!m.copying) {
			GHashTableIter it;
			gpointer key;

			g_hash_table_iter_init(&it, after);
			while (g_hash_table_iter_next(&it, &key, NULL))
				HV_FUZZ_CHECK(!is_temp(key));
			HV_FUZZ_CHECK(!g_file_test(state_path, G_FILE_TEST_EXISTS));
		}

		n = a->encode_reply(buf, len, bufsize, status);
		check_reply(a, buf, len, n, status);
	}

	g_byte_array_unref(m.bytes);
	return 0;
}
