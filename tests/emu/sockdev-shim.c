/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * LD_PRELOAD shim for the emulator's socket mode (emu_devdir_start_socket()):
 * an open() of a unix socket file, which the kernel refuses with ENXIO, is
 * turned into a connection to it (SOCK_SEQPACKET, O_CLOEXEC and O_NONBLOCK
 * kept), and the emulator's first message, a le32 errno, is the open()'s
 * result (EBUSY for a second opener). Everything else goes to the real
 * calls untouched, so a daemon's read(), write() and poll() on the device
 * are plain socket calls. Used by benchmarks for the upstream daemons and
 * ours alike.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

typedef int (*openat_fn)(int, const char *, int, ...);

static int connect_socket_file(int dirfd, const char *path, int flags)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct pollfd p;
	struct stat st;
	uint32_t err = 0;
	int fd, type = SOCK_SEQPACKET;

	if (path[0] != '/' && dirfd != AT_FDCWD)
		return -ENXIO;
	if (fstatat(dirfd, path, &st, 0) < 0 || !S_ISSOCK(st.st_mode) ||
	    strlen(path) >= sizeof(sa.sun_path))
		return -ENXIO;
	memcpy(sa.sun_path, path, strlen(path) + 1);

	if (flags & O_CLOEXEC)
		type |= SOCK_CLOEXEC;
	fd = socket(AF_UNIX, type, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = (uint32_t)errno;
		goto fail;
	}
	p = (struct pollfd){.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 5000) != 1 || recv(fd, &err, sizeof(err), 0) != (ssize_t)sizeof(err)) {
		err = ENXIO;
		goto fail;
	}
	if (err)
		goto fail;
	if ((flags & O_NONBLOCK) && fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		err = (uint32_t)errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -(int)err;
}

static int shim_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	static openat_fn real;
	int fd, saved, r;

	if (!real)
		real = (openat_fn)dlsym(RTLD_NEXT, "openat");
	fd = real(dirfd, path, flags, mode);
	if (fd >= 0 || errno != ENXIO)
		return fd;
	saved = errno;
	r = connect_socket_file(dirfd, path, flags);
	if (r >= 0)
		return r;
	errno = r == -ENXIO ? saved : -r;
	return -1;
}

static mode_t va_mode(int flags, va_list ap)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

/* The mode argument of a variadic open function whose last named parameter is @flags. */
#define MODE_ARG(flags)                                                                  \
	({                                                                               \
		va_list ap_;                                                             \
		mode_t mode_;                                                            \
		va_start(ap_, flags);                                                    \
		mode_ = va_mode(flags, ap_);                                             \
		va_end(ap_);                                                             \
		mode_;                                                                   \
	})

int open(const char *path, int flags, ...)
{
	return shim_openat(AT_FDCWD, path, flags, MODE_ARG(flags));
}

int openat(int dirfd, const char *path, int flags, ...)
{
	return shim_openat(dirfd, path, flags, MODE_ARG(flags));
}

/* The same functions under their large-file names (one and the same on 64-bit). */
int open64(const char *path, int flags, ...) __attribute__((alias("open")));
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

/* _FORTIFY_SOURCE entry points (no O_CREAT: no mode) */
int __open_2(const char *path, int flags);

int __open_2(const char *path, int flags)
{
	return shim_openat(AT_FDCWD, path, flags, 0);
}

int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));
