/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "fcopy-session.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fcopy-path.h"
#include "hv-status.h"

struct fcopy_session {
	fcopy_options opt;
	char **allowed;
	char *state_path;

	fcopy_state state;
	int dir_fd;
	int fd;
	char *dir;     /* normalised target directory */
	char *name;    /* final file name */
	char *target;  /* dir + name, for logs */
	char temp[64]; /* named temporary file, "" for O_TMPFILE */
	uint32_t flags;
	uint64_t file_size;
	uint64_t written;
	const char *step;
	bool cancelled_previous;
	int temp_left; /* -errno: the last cancel could not remove the named temporary file */

	/* WRITEs not yet in the file: batch_len bytes for offset batch_off */
	uint8_t *batch;
	size_t batch_len;
	uint64_t batch_off;
	int write_error; /* a batch that could not be written: sticks until the copy ends */
};

static const char *const state_names[_FCOPY_STATE_MAX] = {
	[FCOPY_STATE_IDLE] = "idle",
	[FCOPY_STATE_COPYING] = "copying",
};

const char *fcopy_state_to_string(fcopy_state state)
{
	if (state < 0 || state >= _FCOPY_STATE_MAX)
		return "invalid";

	return state_names[state];
}

const char *fcopy_op_to_string(uint32_t op)
{
	switch (op) {
	case HV_FCOPY_START_FILE_COPY:
		return "START_FILE_COPY";
	case HV_FCOPY_WRITE_TO_FILE:
		return "WRITE_TO_FILE";
	case HV_FCOPY_COMPLETE_FCOPY:
		return "COMPLETE_FCOPY";
	case HV_FCOPY_CANCEL_FCOPY:
		return "CANCEL_FCOPY";
	default:
		return "unknown";
	}
}

uint32_t fcopy_status_from_errno(int r)
{
	switch (r) {
	case 0:
		return HV_S_OK;
	case -EEXIST:
		return HV_ERROR_ALREADY_EXISTS;
	case -ENOSPC:
	case -EDQUOT:
		return HV_ERROR_DISK_FULL;
	case -EINVAL:
	case -EILSEQ:
	case -EBADMSG:
	case -ENAMETOOLONG:
	case -EMSGSIZE:
		return HV_INVALIDARG;
	case -EOPNOTSUPP:
		return HV_ERROR_NOT_SUPPORTED;
	default:
		/* what the upstream daemons answer for every other failure */
		return HV_E_FAIL;
	}
}

int fcopy_session_new(const fcopy_options *options, fcopy_session **ret)
{
	fcopy_session *s;

	if (!options || !ret)
		return -EINVAL;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;

	s->opt = *options;
	if (options->allowed) {
		size_t n = 0;

		while (options->allowed[n])
			n++;
		s->allowed = g_new0(char *, n + 1);
		for (size_t i = 0; i < n; i++)
			s->allowed[i] = g_strdup(options->allowed[i]);
	}
	s->opt.allowed = (const char *const *)s->allowed;
	s->state_path = g_strdup(options->state_path);
	s->opt.state_path = s->state_path;
	s->dir_fd = -1;
	s->fd = -1;
	s->step = "";
	*ret = s;
	return 0;
}

fcopy_state fcopy_session_get_state(const fcopy_session *s)
{
	return s->state;
}

const char *fcopy_session_target(const fcopy_session *s)
{
	return s->target ? s->target : "";
}

const char *fcopy_session_failed_step(const fcopy_session *s)
{
	return s->step;
}

bool fcopy_session_cancelled_previous(const fcopy_session *s)
{
	return s->cancelled_previous;
}

uint64_t fcopy_session_written(const fcopy_session *s)
{
	return s->written;
}

uint64_t fcopy_session_announced_size(const fcopy_session *s)
{
	return s->file_size;
}

int fcopy_session_temp_left(const fcopy_session *s)
{
	return s->temp_left;
}

bool fcopy_session_temp_is_named(const fcopy_session *s)
{
	return s->state == FCOPY_STATE_COPYING && s->temp[0];
}

static int fail(fcopy_session *s, const char *step, int r)
{
	s->step = step;
	return r;
}

/*
 * The state file lists the named temporary files that may exist, one path a
 * line: the one of the copy in progress, and any that a cancel could not
 * remove (an I/O error), until the next start removes them.
 */
static void record_temp(fcopy_session *s)
{
	g_autofree char *line = NULL;
	int fd;

	if (!s->state_path)
		return;

	line = g_strdup_printf("%s%s%s\n", s->dir, strcmp(s->dir, "/") == 0 ? "" : "/", s->temp);
	/* Best effort: losing the record only means a leftover that is not cleaned. */
	fd = open(s->state_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	(void)!write(fd, line, strlen(line));
	close(fd);
}

/* Drops the line @path from the state file (the file goes when it is empty). */
static void state_drop(const char *state_path, const char *path)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	g_autoptr(GString) rest = g_string_new(NULL);

	if (!g_file_get_contents(state_path, &text, NULL, NULL))
		return;

	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++)
		if (**l && strcmp(*l, path) != 0)
			g_string_append_printf(rest, "%s\n", *l);

	if (rest->len == 0)
		(void)unlink(state_path);
	else
		(void)g_file_set_contents(state_path, rest->str, (gssize)rest->len, NULL);
}

/* The named temporary file is gone (or has its final name): no longer recorded. */
static void forget_temp(fcopy_session *s)
{
	if (s->state_path && s->temp[0] && s->dir) {
		g_autofree char *path =
		    g_strdup_printf("%s%s%s", s->dir, strcmp(s->dir, "/") == 0 ? "" : "/", s->temp);

		state_drop(s->state_path, path);
	}
	s->temp[0] = '\0';
}

static int make_temp_name(char buf[64])
{
	uint64_t rnd;

	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -errno;

	snprintf(buf, 64, FCOPY_TEMP_PREFIX "%016llx", (unsigned long long)rnd);
	return 0;
}

/* Creates a hidden temporary file in the target directory. */
static int create_named_temp(fcopy_session *s, char name[64])
{
	for (int attempt = 0; attempt < 16; attempt++) {
		int fd, r;

		r = make_temp_name(name);
		if (r < 0)
			return r;

		fd = openat(s->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    s->opt.file_mode);
		if (fd >= 0)
			return fd;

		if (errno != EEXIST)
			return -errno;
	}

	return -EEXIST;
}

static void end_copy(fcopy_session *s, bool remove_temp)
{
	s->batch_len = 0;
	s->write_error = 0;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;

	if (remove_temp)
		s->temp_left = 0;
	if (remove_temp && s->temp[0] && s->dir_fd >= 0 && unlinkat(s->dir_fd, s->temp, 0) < 0 &&
	    errno != ENOENT) {
		/* e.g. EIO: it stays recorded, and the next start removes it */
		s->temp_left = -errno;
		s->temp[0] = '\0';
	}
	if (s->temp[0])
		forget_temp(s);

	if (s->dir_fd >= 0)
		close(s->dir_fd);
	s->dir_fd = -1;
	s->state = FCOPY_STATE_IDLE;
}

int fcopy_session_cancel(fcopy_session *s)
{
	if (!s)
		return -EINVAL;

	end_copy(s, true);
	return 0;
}

void fcopy_session_free(fcopy_session *s)
{
	if (!s)
		return;

	end_copy(s, true);
	free(s->batch);
	g_strfreev(s->allowed);
	g_free(s->state_path);
	g_free(s->dir);
	g_free(s->name);
	g_free(s->target);
	free(s);
}

int fcopy_session_start(fcopy_session *s, const char *dir, const char *name, uint32_t flags,
			uint64_t file_size)
{
	g_autofree char *norm = NULL;
	struct stat st;
	int r, fd;

	if (!s || !dir || !name)
		return -EINVAL;

	s->cancelled_previous = s->state == FCOPY_STATE_COPYING;
	end_copy(s, true);

	s->written = 0;
	s->file_size = file_size;
	s->flags = flags;
	/* as the host gave it, for the log, until the directory is normalised */
	g_free(s->target);
	s->target = g_strdup_printf("%s/%s", dir, name);

	r = fcopy_check_file_name(name);
	if (r < 0)
		return fail(s, "check the file name", r);

	r = fcopy_normalize_dir(dir, &norm);
	if (r < 0)
		return fail(s, "check the directory name", r);

	g_free(s->dir);
	g_free(s->name);
	g_free(s->target);
	s->dir = g_steal_pointer(&norm);
	s->name = g_strdup(name);
	s->target = g_strdup_printf("%s%s%s", s->dir, strcmp(s->dir, "/") == 0 ? "" : "/", name);
	if (!s->name || !s->target)
		return fail(s, "allocate", -ENOMEM);

	if (!fcopy_dir_allowed(s->dir, s->opt.allowed))
		return fail(s, "check the allowed directories", -EACCES);

	r = fcopy_dir_open(s->dir, flags & HV_FCOPY_CREATE_PATH, s->opt.dir_mode, &s->dir_fd);
	if (r < 0)
		return fail(s,
			    flags & HV_FCOPY_CREATE_PATH ? "open or create the directory"
							 : "open the directory",
			    r);

	if (fstatat(s->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode)) {
			end_copy(s, false);
			return fail(s, "check the target", -EISDIR);
		}
		if (!(flags & HV_FCOPY_OVER_WRITE)) {
			end_copy(s, false);
			return fail(s, "check the target", -EEXIST);
		}
	} else if (errno != ENOENT) {
		r = -errno;
		end_copy(s, false);
		return fail(s, "check the target", r);
	}

	fd = -1;
	if (s->opt.use_tmpfile) {
		fd = openat(s->dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, s->opt.file_mode);
		/* Not every file system has O_TMPFILE: fall back to a hidden name. */
		if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
			r = -errno;
			end_copy(s, false);
			return fail(s, "create the temporary file", r);
		}
	}

	if (fd < 0) {
		fd = create_named_temp(s, s->temp);
		if (fd < 0) {
			s->temp[0] = '\0';
			end_copy(s, false);
			return fail(s, "create the temporary file", fd);
		}
		record_temp(s);
	}
	s->fd = fd;
	s->state = FCOPY_STATE_COPYING;

	/* The configured mode, not whatever the umask left. */
	if (fchmod(s->fd, s->opt.file_mode) < 0) {
		r = -errno;
		end_copy(s, true);
		return fail(s, "set the file mode", r);
	}

	return 0;
}

/* Writes the batch into the file; a failure sticks (see fcopy_session_write()). */
static int flush_batch(fcopy_session *s)
{
	size_t done = 0;

	if (s->write_error)
		return s->write_error;

	while (done < s->batch_len) {
		ssize_t n = pwrite(s->fd, s->batch + done, s->batch_len - done,
				   (off_t)(s->batch_off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			s->write_error = n < 0 ? -errno : -EIO;
			s->batch_len = 0;
			return s->write_error;
		}
		done += (size_t)n;
	}

	s->batch_off += s->batch_len;
	s->batch_len = 0;
	return 0;
}

int fcopy_session_write(fcopy_session *s, uint64_t offset, const void *data, uint32_t size)
{
	const uint8_t *p = data;
	size_t done = 0;
	int r;

	if (!s || (!data && size))
		return -EINVAL;

	if (s->state != FCOPY_STATE_COPYING)
		return fail(s, "write (no copy started)", -EBADFD);

	if (size > HV_FCOPY_DATA_FRAGMENT)
		return fail(s, "check the fragment size", -EMSGSIZE);

	if (offset > (uint64_t)INT64_MAX - size)
		return fail(s, "check the offset", -EFBIG);

	if (s->write_error)
		return fail(s, "write", s->write_error);

	if (!s->batch) {
		s->batch = malloc(FCOPY_WRITE_BATCH);
		if (!s->batch)
			return fail(s, "allocate", -ENOMEM);
	}

	/* Only a WRITE that continues the batch joins it. */
	if (s->batch_len && offset != s->batch_off + s->batch_len) {
		r = flush_batch(s);
		if (r < 0)
			return fail(s, "write", r);
	}
	if (!s->batch_len)
		s->batch_off = offset;

	while (done < size) {
		size_t n = MIN(size - done, FCOPY_WRITE_BATCH - s->batch_len);

		memcpy(s->batch + s->batch_len, p + done, n);
		s->batch_len += n;
		done += n;
		if (s->batch_len == FCOPY_WRITE_BATCH) {
			r = flush_batch(s);
			if (r < 0)
				return fail(s, "write", r);
		}
	}

	s->written += size;
	return 0;
}

static int link_tmpfile(fcopy_session *s, const char *name)
{
	char proc[64];

	if (linkat(s->fd, "", s->dir_fd, name, AT_EMPTY_PATH) == 0)
		return 0;

	/* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc/self/fd does not. */
	if (errno != ENOENT && errno != EPERM)
		return -errno;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", s->fd);
	if (linkat(AT_FDCWD, proc, s->dir_fd, name, AT_SYMLINK_FOLLOW) < 0)
		return -errno;

	return 0;
}

static int publish(fcopy_session *s)
{
	bool overwrite = s->flags & HV_FCOPY_OVER_WRITE;
	int r;

	if (!s->temp[0]) {
		if (!overwrite)
			/* linkat never replaces: EEXIST if the name appeared meanwhile. */
			return link_tmpfile(s, s->name);

		/* Give it a hidden name first, then rename over the target in one step. */
		r = make_temp_name(s->temp);
		if (r < 0)
			return r;
		record_temp(s);
		r = link_tmpfile(s, s->temp);
		if (r < 0) {
			forget_temp(s);
			return r;
		}
	}

	if (overwrite) {
		if (renameat(s->dir_fd, s->temp, s->dir_fd, s->name) < 0)
			return -errno;
		forget_temp(s);
		return 0;
	}

	if (renameat2(s->dir_fd, s->temp, s->dir_fd, s->name, RENAME_NOREPLACE) == 0) {
		forget_temp(s);
		return 0;
	}

	if (errno != EINVAL && errno != ENOSYS)
		return -errno;

	/* No RENAME_NOREPLACE on this file system: link (never replaces), then unlink. */
	if (linkat(s->dir_fd, s->temp, s->dir_fd, s->name, 0) < 0)
		return -errno;
	(void)unlinkat(s->dir_fd, s->temp, 0);
	forget_temp(s);
	return 0;
}

int fcopy_session_complete(fcopy_session *s)
{
	int r;

	if (!s)
		return -EINVAL;

	if (s->state != FCOPY_STATE_COPYING)
		return fail(s, "complete (no copy started)", -EBADFD);

	r = flush_batch(s);
	if (r < 0) {
		end_copy(s, true);
		return fail(s, "write", r);
	}

	if (fsync(s->fd) < 0) {
		r = -errno;
		end_copy(s, true);
		return fail(s, "sync the file", r);
	}

	r = publish(s);
	if (r < 0) {
		end_copy(s, true);
		return fail(s, "move the file into place", r);
	}

	/* The new name must survive a crash too. */
	if (fsync(s->dir_fd) < 0) {
		r = -errno;
		end_copy(s, false);
		return fail(s, "sync the directory", r);
	}

	end_copy(s, false);
	return 0;
}

int fcopy_session_handle(fcopy_session *s, const fcopy_request *req)
{
	if (!s || !req)
		return -EINVAL;

	switch (req->op) {
	case HV_FCOPY_START_FILE_COPY:
		return fcopy_session_start(s, req->path_name, req->file_name, req->copy_flags,
					   req->file_size);
	case HV_FCOPY_WRITE_TO_FILE:
		return fcopy_session_write(s, req->offset, req->data, req->size);
	case HV_FCOPY_COMPLETE_FCOPY:
		return fcopy_session_complete(s);
	case HV_FCOPY_CANCEL_FCOPY:
		return fcopy_session_cancel(s);
	default:
		return fail(s, "dispatch (unknown operation)", -EOPNOTSUPP);
	}
}

/* Removes one recorded leftover: 1 removed, 0 nothing there, -errno (keep the record). */
static int remove_leftover(const char *line)
{
	g_autofree char *dir = NULL;
	g_autofree char *norm = NULL;
	const char *base = strrchr(line, '/');
	int dir_fd = -1;
	int r;

	/* Only our hidden names, and nothing that is not one component. */
	if (!base || strncmp(base + 1, FCOPY_TEMP_PREFIX, strlen(FCOPY_TEMP_PREFIX)) != 0)
		return -EBADMSG;
	base++;

	dir = g_strndup(line, (gsize)(base - line));
	r = fcopy_normalize_dir(dir, &norm);
	if (r < 0)
		return r == -ENOMEM ? r : -EBADMSG;

	r = fcopy_dir_open(norm, false, 0, &dir_fd);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;

	r = unlinkat(dir_fd, base, 0) < 0 ? -errno : 1;
	close(dir_fd);
	return r == -ENOENT ? 0 : r;
}

int fcopy_cleanup_leftover(const char *state_path, char **ret_removed)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	g_autoptr(GString) keep = g_string_new(NULL);
	g_autoptr(GString) removed = g_string_new(NULL);
	int n = 0, first_error = 0;

	if (!state_path)
		return -EINVAL;

	if (!g_file_get_contents(state_path, &text, NULL, NULL))
		return 0;

	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		int r;

		if (!**l)
			continue;
		r = remove_leftover(*l);
		if (r > 0) {
			g_string_append_printf(removed, "%s%s", n ? ", " : "", *l);
			n++;
		} else if (r < 0 && r != -EBADMSG) {
			/* still there (e.g. the file system is not back yet): next start */
			g_string_append_printf(keep, "%s\n", *l);
		}
		if (r < 0 && !first_error)
			first_error = r;
	}

	if (keep->len == 0)
		(void)unlink(state_path);
	else
		(void)g_file_set_contents(state_path, keep->str, (gssize)keep->len, NULL);

	if (n > 0 && ret_removed)
		*ret_removed = g_string_free(g_steal_pointer(&removed), FALSE);
	return n > 0 ? n : first_error;
}
