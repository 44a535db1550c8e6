/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "fcopy-path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static bool use_openat2 = true;

void fcopy_path_set_use_openat2(bool use)
{
	use_openat2 = use;
}

int fcopy_check_file_name(const char *name)
{
	size_t len;

	if (!name)
		return -EINVAL;

	len = strlen(name);
	if (len == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strchr(name, '/'))
		return -EINVAL;

	if (len > NAME_MAX)
		return -ENAMETOOLONG;

	return 0;
}

int fcopy_normalize_dir(const char *path, char **ret)
{
	size_t len;
	char *out;
	size_t o = 0;

	if (!path || !ret)
		return -EINVAL;

	if (path[0] != '/')
		return -EINVAL;

	len = strlen(path);
	if (len >= PATH_MAX)
		return -ENAMETOOLONG;

	out = malloc(len + 2);
	if (!out)
		return -ENOMEM;

	for (const char *p = path; *p;) {
		size_t n;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (n == 0)
			break;

		if (n == 1 && p[0] == '.') {
			p += n;
			continue;
		}

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			free(out);
			return -EINVAL;
		}

		out[o++] = '/';
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}

	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	*ret = out;
	return 0;
}

bool fcopy_dir_allowed(const char *dir, const char *const *allowed)
{
	if (!allowed || !allowed[0])
		return true;

	for (const char *const *a = allowed; *a; a++) {
		size_t n = strlen(*a);

		/* "/" allows everything; else a component boundary must follow. */
		if (strcmp(*a, "/") == 0)
			return true;

		if (strncmp(dir, *a, n) == 0 && (dir[n] == '\0' || dir[n] == '/'))
			return true;
	}

	return false;
}

static int open_with_openat2(const char *dir, int *ret_fd)
{
	struct open_how how = {
	    .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
	    .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, AT_FDCWD, dir, &how, sizeof(how));

	if (fd < 0)
		return -errno;

	*ret_fd = (int)fd;
	return 0;
}

/* One component below @parent, never following a link. */
static int open_component(int parent, const char *name, bool create, mode_t dir_mode)
{
	struct stat st;
	int fd, err;

	for (int attempt = 0; attempt < 2; attempt++) {
		fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			break;

		err = errno;
		/* O_DIRECTORY|O_NOFOLLOW on a link says ENOTDIR: tell a link apart. */
		if (err == ENOTDIR && fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(st.st_mode))
			return -ELOOP;

		if (err != ENOENT || !create)
			return -err;

		if (mkdirat(parent, name, dir_mode) < 0 && errno != EEXIST)
			return -errno;

		/* mkdir honours the umask; the configured mode is what we promise. */
		if (fchmodat(parent, name, dir_mode, AT_SYMLINK_NOFOLLOW) < 0 &&
		    errno != EOPNOTSUPP)
			return -errno;
	}

	if (fd < 0)
		return -ENOENT;

	/* O_NOFOLLOW on a link gives ELOOP; a link to a directory must never pass. */
	if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		close(fd);
		return -ENOTDIR;
	}

	return fd;
}

static int open_by_walking(const char *dir, bool create, mode_t dir_mode, int *ret_fd)
{
	char name[NAME_MAX + 1];
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;

	for (const char *p = dir; *p;) {
		size_t n;
		int next;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (n == 0)
			break;

		if (n > NAME_MAX) {
			close(fd);
			return -ENAMETOOLONG;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		p += n;

		next = open_component(fd, name, create, dir_mode);
		close(fd);
		if (next < 0)
			return next;
		fd = next;
	}

	*ret_fd = fd;
	return 0;
}

int fcopy_dir_open(const char *dir, bool create, mode_t dir_mode, int *ret_fd)
{
	int r;

	if (!dir || dir[0] != '/' || !ret_fd)
		return -EINVAL;

	if (use_openat2) {
		r = open_with_openat2(dir, ret_fd);
		if (r == 0)
			return 0;

		/* ELOOP: a link in the path. ENOENT without create: missing. Both final. */
		if (r != -ENOSYS && r != -E2BIG && r != -EPERM && !(r == -ENOENT && create))
			return r;
	}

	return open_by_walking(dir, create, dir_mode, ret_fd);
}
