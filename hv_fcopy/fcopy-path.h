/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where a copied file may go, and opening its directory without ever
 * following a symbolic link. The checks are pure; fcopy_dir_open() is the
 * only function here that touches the file system. Every function returns
 * 0 or -errno and logs nothing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * A file name as the host sends it: not empty, not "." or "..", no '/',
 * at most NAME_MAX bytes. -EINVAL or -ENAMETOOLONG.
 */
int fcopy_check_file_name(const char *name);

/*
 * Normalises a target directory: it must be absolute and have no ".."
 * component; "." components, repeated and trailing slashes are dropped.
 * *ret (malloc'ed) is "/" or "/a/b". -EINVAL (relative, ".."),
 * -ENAMETOOLONG (PATH_MAX), -ENOMEM.
 */
int fcopy_normalize_dir(const char *path, char **ret);

/*
 * Whether the normalised directory @dir is one of @allowed (normalised
 * absolute directories, NULL-terminated) or below one. An empty or NULL
 * list allows everything.
 */
bool fcopy_dir_allowed(const char *dir, const char *const *allowed);

/*
 * Opens the normalised absolute directory @dir (O_RDONLY|O_DIRECTORY|
 * O_CLOEXEC) without following a symbolic link in any component: openat2()
 * with RESOLVE_NO_SYMLINKS where the kernel has it, else component by
 * component with O_NOFOLLOW. With @create, missing components are created
 * with @dir_mode (then chmod'ed to it, whatever the umask).
 * -ENOENT (missing, !create), -ELOOP (a symbolic link), -ENOTDIR (a
 * component is not a directory), or another -errno.
 */
int fcopy_dir_open(const char *dir, bool create, mode_t dir_mode, int *ret_fd);

/* For tests: false makes fcopy_dir_open() skip openat2() and walk. */
void fcopy_path_set_use_openat2(bool use);
