/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "emu-daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "emu-util.h"

extern char **environ;

void emu_daemon_init(struct emu_daemon *d, char **argv, const char *log_path,
		     void (*on_exit)(void *userdata), void *userdata)
{
	pthread_condattr_t ca;

	*d = (struct emu_daemon){
		.argv = argv,
		.log_path = log_path,
		.on_exit = on_exit,
		.userdata = userdata,
		.log_fd = -1,
	};
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &ca);
	pthread_condattr_destroy(&ca);
}

void emu_daemon_describe(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by %s%s", emu_signal_name(WTERMSIG(status)),
			 WCOREDUMP(status) ? " (core dumped)" : "");
	else
		snprintf(buf, len, "wait status 0x%x", status);
}

static void *logger_thread(void *arg)
{
	struct emu_daemon *d = arg;
	char buf[4096];
	size_t used = 0;

	for (;;) {
		ssize_t n = read(d->log_fd, buf + used, sizeof(buf) - 1 - used);
		char *start, *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;

		used += (size_t)n;
		buf[used] = '\0';
		start = buf;
		while ((nl = strchr(start, '\n'))) {
			*nl = '\0';
			emu_tl_raw(false, "daemon| %s", start);
			start = nl + 1;
		}

		used = (size_t)(buf + used - start);
		memmove(buf, start, used);
		if (used == sizeof(buf) - 1) {
			buf[used] = '\0';
			emu_tl_raw(false, "daemon| %s", buf);
			used = 0;
		}
	}

	if (used) {
		buf[used] = '\0';
		emu_tl_raw(false, "daemon| %s", buf);
	}
	return NULL;
}

static void *monitor_thread(void *arg)
{
	struct emu_daemon *d = arg;
	char desc[64];
	int status = 0;
	pid_t pid, r;

	pthread_mutex_lock(&d->lock);
	pid = d->pid;
	pthread_mutex_unlock(&d->lock);

	do {
		r = waitpid(pid, &status, 0);
	} while (r < 0 && errno == EINTR);

	emu_daemon_describe(r < 0 ? 0 : status, desc, sizeof(desc));

	pthread_mutex_lock(&d->lock);
	d->running = false;
	d->status = status;
	d->exit_ns = emu_now_ns();
	if (d->kill_sent || d->stopping || d->awaited) {
		emu_tl_at(d->exit_ns, "daemon      pid %d exited: %s", (int)pid, desc);
	} else {
		d->unexpected = true;
		snprintf(d->unexpected_desc, sizeof(d->unexpected_desc),
			 "daemon pid %d died unexpectedly at %.2f ms: %s", (int)pid,
			 emu_ms(emu_t0_ns(), d->exit_ns), desc);
		emu_tl_always(d->exit_ns, "daemon      pid %d DIED UNEXPECTEDLY: %s",
			      (int)pid, desc);
	}
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);

	/* outside the lock: waiters hold their own locks while asking emu_daemon_running() */
	if (d->on_exit)
		d->on_exit(d->userdata);
	return NULL;
}

/* Join the threads of the previous instance (it has exited). */
static void join_previous(struct emu_daemon *d)
{
	if (d->monitor_started) {
		pthread_join(d->monitor, NULL);
		d->monitor_started = false;
	}

	if (d->logger_started) {
		struct timespec ts;

		/* a grandchild may still hold the pipe: give it a second */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		if (pthread_timedjoin_np(d->logger, NULL, &ts) != 0) {
			pthread_cancel(d->logger);
			pthread_join(d->logger, NULL);
		}
		d->logger_started = false;
	}

	if (d->log_fd >= 0) {
		close(d->log_fd);
		d->log_fd = -1;
	}
}

int emu_daemon_start(struct emu_daemon *d)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int pipefd[2] = { -1, -1 };
	pid_t pid;
	int r;

	pthread_mutex_lock(&d->lock);
	if (d->running) {
		pthread_mutex_unlock(&d->lock);
		return -EBUSY;
	}
	pthread_mutex_unlock(&d->lock);

	join_previous(d);

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);

	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (d->log_path) {
		posix_spawn_file_actions_addopen(&fa, 1, d->log_path,
						 O_WRONLY | O_CREAT | O_APPEND, 0644);
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
	} else {
		if (pipe2(pipefd, O_CLOEXEC) < 0) {
			r = -errno;
			goto out;
		}
		posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
		posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	}

	/* own process group (a ^C on the terminal is ours to handle), clean signals */
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
						 POSIX_SPAWN_SETPGROUP);

	pthread_mutex_lock(&d->lock);
	r = posix_spawn(&pid, d->argv[0], &fa, &attr, d->argv, environ);
	if (r != 0) {
		pthread_mutex_unlock(&d->lock);
		r = -r;
		goto out;
	}

	d->pid = pid;
	d->running = true;
	d->kill_sent = false;
	d->stopping = false;
	d->starts++;
	pthread_mutex_unlock(&d->lock);

	emu_tl("daemon      started pid %d: %s", (int)pid, d->argv[0]);

	if (pipefd[0] >= 0) {
		close(pipefd[1]);
		pipefd[1] = -1;
		d->log_fd = pipefd[0];
		pipefd[0] = -1;
		if (emu_thread_start(&d->logger, logger_thread, d) == 0)
			d->logger_started = true;
	}

	r = emu_thread_start(&d->monitor, monitor_thread, d);
	if (r == 0)
		d->monitor_started = true;

out:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return r;
}

bool emu_daemon_running(struct emu_daemon *d)
{
	bool r;

	pthread_mutex_lock(&d->lock);
	r = d->running;
	pthread_mutex_unlock(&d->lock);
	return r;
}

int emu_daemon_signal(struct emu_daemon *d, int sig)
{
	return emu_daemon_signal_full(d, sig, false);
}

int emu_daemon_signal_full(struct emu_daemon *d, int sig, bool group)
{
	int r = 0;

	pthread_mutex_lock(&d->lock);
	if (!d->running) {
		r = -ESRCH;
	} else {
		/* after a signal that may end it, an exit is not a surprise */
		if (sig != SIGSTOP && sig != SIGCONT && sig != SIGTSTP && sig != SIGCHLD &&
		    sig != SIGWINCH && sig != SIGURG)
			d->kill_sent = true;
		/* The daemon leads its own process group (setpgroup above). */
		if (kill(group ? -d->pid : d->pid, sig) < 0)
			r = -errno;
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}

int emu_daemon_wait_exit(struct emu_daemon *d, uint64_t max_ms, int *ret_status)
{
	uint64_t end = emu_now_ns() + max_ms * EMU_NSEC_PER_MSEC;
	int r = 0;

	pthread_mutex_lock(&d->lock);
	if (d->starts == 0) {
		pthread_mutex_unlock(&d->lock);
		return -ECHILD;
	}

	d->awaited = true;
	while (d->running) {
		struct timespec ts;

		if (emu_now_ns() >= end) {
			r = -ETIMEDOUT;
			break;
		}
		emu_ns_to_timespec(end, &ts);
		pthread_cond_timedwait(&d->cond, &d->lock, &ts);
	}
	d->awaited = false;

	if (r == 0 && ret_status)
		*ret_status = d->status;
	pthread_mutex_unlock(&d->lock);
	return r;
}

int emu_daemon_stop(struct emu_daemon *d, uint64_t term_ms, uint64_t kill_ms)
{
	int r;

	pthread_mutex_lock(&d->lock);
	if (!d->running) {
		pthread_mutex_unlock(&d->lock);
		return 0;
	}
	d->stopping = true;
	kill(d->pid, SIGTERM);
	kill(d->pid, SIGCONT); /* a stopped daemon would not see SIGTERM */
	pthread_mutex_unlock(&d->lock);

	r = emu_daemon_wait_exit(d, term_ms, NULL);
	if (r == -ETIMEDOUT) {
		pthread_mutex_lock(&d->lock);
		if (d->running) {
			emu_tl_always(0, "daemon      pid %d still running %llu ms after SIGTERM: SIGKILL",
				      (int)d->pid, (unsigned long long)term_ms);
			kill(d->pid, SIGKILL);
		}
		pthread_mutex_unlock(&d->lock);
		r = emu_daemon_wait_exit(d, kill_ms, NULL);
	}
	return r;
}

void emu_daemon_done(struct emu_daemon *d)
{
	/* a monitor still waiting for a process we could not kill keeps using d */
	if (emu_daemon_running(d))
		return;

	join_previous(d);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
}
