/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The freeze marker: a small text file in a tmpfs (/run) naming every file
 * system we may hold frozen, so that whoever finds it after a crash (the
 * guard process, a restarted daemon, an emergency --thaw-all) thaws exactly
 * those and nothing else.
 *
 * Format, version 1. One record per line, every line ends in '\n':
 *
 *   hv-freeze-marker 1 <pid>   header, first line, written when the marker is created
 *   F <dev> <path>             may be frozen by us: written before its FIFREEZE
 *   N <dev> <path>             not frozen by us after all (EBUSY, i.e. frozen by
 *                              somebody else; EOPNOTSUPP; an error; not tried)
 *   T <dev> <path>             thawed by us
 *   # text                     comment, ignored
 *
 * <dev> is "<major>:<minor>" in decimal, the st_dev of the mount point as the
 * executor opened it, or "-" when unknown. Recovery skips a path whose st_dev
 * is no longer that one (unmounted since, something else mounted there).
 * <path> is absolute; every byte <= 0x20, 0x7f and '\' in it is written as
 * '\' and three octal digits (as /proc/self/mountinfo does), so a record
 * never holds a raw space, tab or newline inside its path.
 *
 * The file is only appended to (O_APPEND, one write() per batch of whole
 * lines), so a crash leaves at worst a torn last line, which recovery reports
 * as damage. A path is ours to thaw when one of its F lines is followed by no
 * N or T line for the same path. Recovery thaws those in the reverse order of
 * their F lines, i.e. the reverse of the freeze order, which the dependency
 * waves of the plan need (a file system holding a loop file thaws before the
 * file system inside it).
 *
 * Recovery also runs in the guard process right after fork(), so it uses
 * plain system calls only: no malloc, no stdio, no glib.
 */
#include "hv-freeze.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define MARKER_MAGIC "hv-freeze-marker"
#define MARKER_VERSION "1"

typedef struct marker_record {
	char tag;
	bool have_dev;
	dev_t dev;
	const char *path;  /* escaped, inside the mapping, not NUL-terminated */
	size_t path_len;
} marker_record;

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;

			return -errno;
		}

		if (k == 0)
			return -EIO;

		p += k;
		n -= (size_t) k;
	}

	return 0;
}

int hv_freeze_marker_create(const char *marker_path)
{
	char header[64];
	int fd, n, r;

	if (!marker_path)
		return -EINVAL;

	fd = open(marker_path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC |
		  O_NOCTTY | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;

	n = snprintf(header, sizeof(header), MARKER_MAGIC " " MARKER_VERSION " %ld\n",
		     (long) getpid());
	r = write_all(fd, header, (size_t) n);
	if (r < 0) {
		unlink(marker_path);
		close(fd);
		return r;
	}

	return fd;
}

void hv_freeze_marker_add(GString *buf, hv_freeze_mark mark, dev_t dev, const char *path)
{
	const unsigned char *p;

	g_string_append_c(buf, (char) mark);
	g_string_append_c(buf, ' ');
	if (dev == 0)
		g_string_append_c(buf, '-');
	else
		g_string_append_printf(buf, "%u:%u", major(dev), minor(dev));

	g_string_append_c(buf, ' ');
	for (p = (const unsigned char *) path; *p; p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == '\\')
			g_string_append_printf(buf, "\\%03o", *p);
		else
			g_string_append_c(buf, (char) *p);
	}

	g_string_append_c(buf, '\n');
}

int hv_freeze_marker_write(int marker_fd, const GString *buf)
{
	if (marker_fd < 0 || !buf)
		return -EINVAL;

	return write_all(marker_fd, buf->str, buf->len);
}

/* --- reading: plain system calls only from here on (see above) --- */

static int unescape_path(const char *s, size_t len, char *out, size_t size)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char) s[i];

		if (c <= 0x20 || c == 0x7f)
			return -EBADMSG;

		if (c == '\\') {
			unsigned int v = 0, k;

			if (len - i < 4)
				return -EBADMSG;

			for (k = 1; k <= 3; k++) {
				if (s[i + k] < '0' || s[i + k] > '7')
					return -EBADMSG;

				v = v * 8 + (unsigned int) (s[i + k] - '0');
			}

			if (v == 0 || v > 0xff)
				return -EBADMSG;

			c = (unsigned char) v;
			i += 3;
		}

		if (o + 1 >= size)
			return -EBADMSG;

		out[o++] = (char) c;
	}

	if (o == 0 || out[0] != '/')
		return -EBADMSG;

	out[o] = '\0';
	return 0;
}

static int parse_uint(const char *s, size_t len, unsigned int *ret)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return -EBADMSG;

	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EBADMSG;

		v = v * 10 + (unsigned long) (s[i] - '0');
	}

	if (v > UINT_MAX)
		return -EBADMSG;

	*ret = (unsigned int) v;
	return 0;
}

static bool is_header(const char *s, size_t len)
{
	size_t n = strlen(MARKER_MAGIC " ");

	return len >= n && memcmp(s, MARKER_MAGIC " ", n) == 0;
}

static bool is_valid_header(const char *s, size_t len)
{
	size_t n = strlen(MARKER_MAGIC " " MARKER_VERSION);

	return len >= n && memcmp(s, MARKER_MAGIC " " MARKER_VERSION, n) == 0 &&
	       (len == n || s[n] == ' ');
}

/*
 * Parses one line, without its '\n'. Returns 1 for a record, 0 for a line
 * to ignore (comment), -EBADMSG for a damaged one. The header is handled by
 * the caller.
 */
static int parse_record(const char *s, size_t len, marker_record *rec)
{
	const char *dev, *colon, *space;
	size_t dev_len;

	if (len > 0 && s[0] == '#')
		return 0;

	if (len < 5 || s[1] != ' ')
		return -EBADMSG;

	if (s[0] != HV_FREEZE_MARK_OURS && s[0] != HV_FREEZE_MARK_NOT_OURS &&
	    s[0] != HV_FREEZE_MARK_THAWED)
		return -EBADMSG;

	dev = s + 2;
	space = memchr(dev, ' ', len - 2);
	if (!space)
		return -EBADMSG;

	dev_len = (size_t) (space - dev);
	rec->tag = s[0];
	if (dev_len == 1 && dev[0] == '-') {
		rec->have_dev = false;
		rec->dev = 0;
	} else {
		unsigned int maj, min;

		colon = memchr(dev, ':', dev_len);
		if (!colon || parse_uint(dev, (size_t) (colon - dev), &maj) < 0 ||
		    parse_uint(colon + 1, (size_t) (space - colon - 1), &min) < 0)
			return -EBADMSG;

		rec->have_dev = true;
		rec->dev = makedev(maj, min);
	}

	rec->path = space + 1;
	rec->path_len = len - (size_t) (rec->path - s);
	if (rec->path_len == 0)
		return -EBADMSG;

	return 1;
}

/* Is there an N or T line for @path in [from, end)? */
static bool is_superseded(const char *buf, size_t from, size_t end, const char *path)
{
	char other[PATH_MAX];

	while (from < end) {
		const char *nl = memchr(buf + from, '\n', end - from);
		size_t len = (size_t) (nl - (buf + from));
		marker_record rec;

		if (parse_record(buf + from, len, &rec) == 1 && rec.tag != HV_FREEZE_MARK_OURS &&
		    unescape_path(rec.path, rec.path_len, other, sizeof(other)) == 0 &&
		    strcmp(other, path) == 0)
			return true;

		from += len + 1;
	}

	return false;
}

/* Returns 1 when thawed, 0 when there was nothing of ours to thaw, or -errno. */
static int thaw_path(const char *path, bool have_dev, dev_t dev)
{
	struct stat st;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			return 0;

		return -errno;
	}

	/* Not the file system we froze any more: not ours to thaw. */
	if (have_dev && (fstat(fd, &st) < 0 || st.st_dev != dev))
		goto out;

	if (ioctl(fd, FITHAW, 0) == 0)
		r = 1;
	else if (errno != EINVAL) /* EINVAL: not frozen (any more) */
		r = -errno;

out:
	close(fd);
	return r;
}

int hv_thaw_mountpoint(const char *path)
{
	if (!path)
		return -EINVAL;

	return thaw_path(path, false, 0);
}

/*
 * Thaws what @buf lists as ours, last F line first. Sets *damaged when a
 * line could not be read and adds the number thawed to *n_thawed. Returns
 * the first thaw error.
 */
static int recover_buffer(const char *buf, size_t size, bool *damaged, int *n_thawed)
{
	char path[PATH_MAX];
	size_t end = size, valid_end;
	int first_error = 0;

	/* A last line without its '\n' is a torn write: damaged, not read. */
	if (end > 0 && buf[end - 1] != '\n') {
		*damaged = true;
		while (end > 0 && buf[end - 1] != '\n')
			end--;
	}

	valid_end = end;

	while (end > 0) {
		size_t line_end = end - 1, start = line_end, len;
		marker_record rec;
		int r;

		while (start > 0 && buf[start - 1] != '\n')
			start--;

		end = start;
		len = line_end - start;
		if (is_header(buf + start, len)) {
			if (start != 0 || !is_valid_header(buf + start, len))
				*damaged = true;

			continue;
		}

		if (start == 0)
			*damaged = true; /* no header */

		r = parse_record(buf + start, len, &rec);
		if (r < 0) {
			*damaged = true;
			continue;
		}

		if (r == 0 || rec.tag != HV_FREEZE_MARK_OURS)
			continue;

		if (unescape_path(rec.path, rec.path_len, path, sizeof(path)) < 0) {
			*damaged = true;
			continue;
		}

		if (is_superseded(buf, line_end + 1, valid_end, path))
			continue;

		r = thaw_path(path, rec.have_dev, rec.dev);
		if (r > 0)
			(*n_thawed)++;
		else if (r < 0 && first_error == 0)
			first_error = r;
	}

	return first_error;
}

int hv_freeze_marker_recover(const char *marker_path)
{
	bool damaged = false;
	void *map = NULL;
	struct stat st;
	int fd, r, n_thawed = 0;

	if (!marker_path)
		return -EINVAL;

	fd = open(marker_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;

	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}

	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -EBADMSG;
	}

	if (st.st_size > 0) {
		map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			r = -errno;
			close(fd);
			return r;
		}
	}

	close(fd);
	r = 0;
	if (map) {
		r = recover_buffer(map, (size_t) st.st_size, &damaged, &n_thawed);
		munmap(map, (size_t) st.st_size);
	}

	/*
	 * A thaw that failed (not "gone", not "not frozen") keeps the marker so
	 * that a later recovery tries again; damage alone does not, since it
	 * would never go away.
	 */
	if (r < 0)
		return r;

	if (unlink(marker_path) < 0 && errno != ENOENT)
		return -errno;

	return damaged ? -EBADMSG : n_thawed;
}
