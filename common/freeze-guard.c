/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Guard process: a child forked at start-up that holds the read end of a
 * pipe and nothing else. The daemon holds the write end (O_CLOEXEC). When
 * the daemon goes away, however it goes (exit, crash, SIGKILL), the kernel
 * closes the write end, the guard's read() returns EOF, and the guard thaws
 * what the marker lists (hv_freeze_marker_recover()) and exits.
 *
 * The child never returns into the daemon's code and uses plain system calls
 * only (no glib, no malloc, no stdio): it is a fork without exec, and the
 * daemon must call hv_freeze_guard_start() while it is still single-threaded.
 */
#include "hv-freeze.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

struct hv_freeze_guard {
	pid_t pid;
	int fd;            /* write end of the pipe */
	char *marker_path;
};

/*
 * systemd sends SIGTERM to the whole cgroup, a terminal sends SIGINT/SIGQUIT
 * and the stop signals to the whole process group: the guard must outlive
 * the daemon until the daemon is gone.
 */
static const int ignored_signals[] = {
	SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU,
};

static void guard_close_fds(int keep)
{
	unsigned int fd;
	struct rlimit rl;
	rlim_t max = 65536;

	if (keep < 3) {
		if (close_range(3, ~0U, 0) == 0)
			return;
	} else if ((keep == 3 || close_range(3, (unsigned int) keep - 1, 0) == 0) &&
		   close_range((unsigned int) keep + 1, ~0U, 0) == 0) {
		return;
	}

	/* Kernels before 5.9. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max)
		max = rl.rlim_cur;

	for (fd = 3; fd < max; fd++)
		if ((int) fd != keep)
			close((int) fd);
}

static _Noreturn void guard_main(int fd, const char *marker_path)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };
	char buf[64];
	sigset_t none;
	unsigned int i;
	int sig, r;

	/* The daemon's handlers mean nothing here; its mask neither. */
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL);

	sa.sa_handler = SIG_IGN;
	for (i = 0; i < G_N_ELEMENTS(ignored_signals); i++)
		sigaction(ignored_signals[i], &sa, NULL);

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	/* Keep 0-2 and our pipe only; pin no mount with a stray fd or cwd. */
	guard_close_fds(fd);

	if (chdir("/") < 0) {
		/* nothing to do about it */
	}

	prctl(PR_SET_NAME, "hv-freeze-guard", 0, 0, 0);

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n > 0)
			continue;

		if (n < 0 && errno == EINTR)
			continue;

		break; /* EOF: the daemon is gone; or an error, same answer */
	}

	r = hv_freeze_marker_recover(marker_path);
	_exit(r < 0 ? 1 : 0);
}

int hv_freeze_guard_start(const char *marker_path, hv_freeze_guard **ret)
{
	g_autofree char *path = NULL;
	hv_freeze_guard *guard;
	int fds[2];
	pid_t pid;

	if (!marker_path || !ret)
		return -EINVAL;

	path = g_strdup(marker_path);
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;

	pid = fork();
	if (pid < 0) {
		int r = -errno;

		close(fds[0]);
		close(fds[1]);
		return r;
	}

	if (pid == 0) {
		close(fds[1]);
		guard_main(fds[0], path);
	}

	close(fds[0]);
	guard = g_new0(hv_freeze_guard, 1);
	guard->pid = pid;
	guard->fd = fds[1];
	guard->marker_path = g_steal_pointer(&path);
	*ret = guard;
	return 0;
}

pid_t hv_freeze_guard_get_pid(const hv_freeze_guard *guard)
{
	return guard ? guard->pid : -1;
}

void hv_freeze_guard_free(hv_freeze_guard *guard)
{
	if (!guard)
		return;

	if (guard->fd >= 0)
		close(guard->fd);

	while (guard->pid > 0 && waitpid(guard->pid, NULL, 0) < 0 && errno == EINTR)
		;

	g_free(guard->marker_path);
	g_free(guard);
}
