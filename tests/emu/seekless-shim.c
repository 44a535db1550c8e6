/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * LD_PRELOAD shim for running Debian's upstream hv_fcopy_daemon against the
 * emulated char device: that daemon reads and answers with pread()/pwrite()
 * at offset 0, which the kernel's misc device accepts (it ignores the
 * offset), while the emulated FUSE file is opened nonseekable and refuses
 * them with ESPIPE. On ESPIPE only, the call is retried as read()/write(),
 * which is what the kernel does with it. Used by the reference scenario
 * only; our daemon uses read()/write().
 */
#include <dlfcn.h>
#include <errno.h>
#include <sys/types.h>
#include <unistd.h>

ssize_t pread(int fd, void *buf, size_t count, off_t offset)
{
	static ssize_t (*real)(int, void *, size_t, off_t);
	ssize_t r;

	if (!real)
		real = (ssize_t(*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, "pread");
	r = real(fd, buf, count, offset);
	if (r < 0 && errno == ESPIPE && offset == 0)
		return read(fd, buf, count);
	return r;
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	ssize_t r;

	if (!real)
		real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
	r = real(fd, buf, count, offset);
	if (r < 0 && errno == ESPIPE && offset == 0)
		return write(fd, buf, count);
	return r;
}
