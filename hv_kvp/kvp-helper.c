/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kvp-helper.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hv-macro.h"

static void child_setup(gpointer data)
{
	/* Its own group, so that a timeout kills whatever it started too. */
	setpgid(0, 0);
}

static int pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	errno = ENOSYS;
	return -1;
#endif
}

static void kill_group(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
}

int kvp_helper_run(const char *const *argv, unsigned int timeout_ms, size_t max_output,
		   kvp_helper_result *ret)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GByteArray) buf = g_byte_array_new();
	hv_autofd int out_fd = -1;
	hv_autofd int pid_fd = -1;
	g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
	g_auto(GStrv) args = NULL;
	gint64 deadline;
	GPid pid;
	bool exited = false;
	int status = 0;

	*ret = (kvp_helper_result){0};
	if (access(argv[0], F_OK) < 0)
		return -errno;
	if (access(argv[0], X_OK) < 0)
		return -errno;

	for (const char *const *a = argv; *a; a++)
		g_strv_builder_add(builder, *a);
	args = g_strv_builder_end(builder);
	if (!g_spawn_async_with_pipes(NULL, args, NULL,
				      G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDERR_TO_DEV_NULL |
					  G_SPAWN_CLOEXEC_PIPES,
				      child_setup, NULL, &pid, NULL, &out_fd, NULL, &error))
		return error->domain == G_SPAWN_ERROR && error->code == G_SPAWN_ERROR_NOENT
			   ? -ENOENT
			   : -EIO;

	fcntl(out_fd, F_SETFL, fcntl(out_fd, F_GETFL) | O_NONBLOCK);
	pid_fd = pidfd_open_compat(pid);
	deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	while (!exited) {
		struct pollfd pfd[2];
		nfds_t n = 0;
		gint64 left = deadline - g_get_monotonic_time();
		int timeout;
		int r;

		if (left <= 0) {
			ret->timed_out = true;
			break;
		}
		timeout = (int)MIN((left + 999) / 1000, (gint64)G_MAXINT);
		if (out_fd >= 0)
			pfd[n++] = (struct pollfd){.fd = out_fd, .events = POLLIN};
		if (pid_fd >= 0)
			pfd[n++] = (struct pollfd){.fd = pid_fd, .events = POLLIN};
		else if (out_fd < 0)
			/* No pidfd (old kernel) and stdout closed: poll the exit. */
			timeout = MIN(timeout, 10);

		r = poll(pfd, n, timeout);
		if (r < 0 && errno != EINTR)
			break;

		if (out_fd >= 0) {
			for (;;) {
				char chunk[4096];
				ssize_t k = read(out_fd, chunk, sizeof(chunk));

				if (k > 0) {
					size_t room =
					    max_output > buf->len ? max_output - buf->len : 0;

					if ((size_t)k > room)
						ret->truncated = true;
					g_byte_array_append(buf, (const guint8 *)chunk,
							    (guint)MIN((size_t)k, room));
					continue;
				}
				if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
					close(hv_steal_fd(&out_fd));
				}
				break;
			}
		}

		/*
		 * Look (without reaping: its group id must stay valid for the
		 * kill below) once stdout is closed or the pidfd says it ended.
		 */
		if (out_fd < 0 || pid_fd >= 0) {
			siginfo_t si = {0};

			if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
			    si.si_pid == pid)
				exited = true;
		}
	}

	/* On timeout the helper, and in any case what it left running in its group. */
	if (!exited)
		kill_group(pid);
	else
		kill(-pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	g_spawn_close_pid(pid);

	ret->wait_status = status;
	ret->output_len = buf->len;
	g_byte_array_append(buf, (const guint8 *)"", 1);
	ret->output = (char *)g_byte_array_free(g_steal_pointer(&buf), FALSE);
	return 0;
}

void kvp_helper_result_clear(kvp_helper_result *res)
{
	g_clear_pointer(&res->output, g_free);
	res->output_len = 0;
}

bool kvp_helper_succeeded(const kvp_helper_result *res)
{
	return !res->timed_out && WIFEXITED(res->wait_status) && WEXITSTATUS(res->wait_status) == 0;
}
