/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon under test as a child process: started with posix_spawn (own
 * process group, default signal dispositions), its stdout/stderr appended to
 * a log file or passed through with a "daemon| " prefix by a reader thread,
 * and reaped by a monitor thread that records how and when it exited.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct emu_daemon {
	char **argv;          /* argv[0] is the executable path */
	const char *log_path; /* NULL: pass output through with a prefix */
	void (*on_exit)(void *userdata);
	void *userdata;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	pid_t pid;
	bool running;
	int status;       /* waitpid status of the last exit */
	uint64_t exit_ns;
	unsigned int starts;
	bool kill_sent;   /* an exit now is expected */
	bool stopping;
	bool awaited;     /* a wait-exit is in progress */
	bool unexpected;  /* exited unexpectedly and no wait-exit acknowledged it */
	char unexpected_desc[160];

	pthread_t monitor;
	bool monitor_started;
	pthread_t logger;
	bool logger_started;
	int log_fd;
};

void emu_daemon_init(struct emu_daemon *d, char **argv, const char *log_path,
		     void (*on_exit)(void *userdata), void *userdata);
void emu_daemon_done(struct emu_daemon *d);

int emu_daemon_start(struct emu_daemon *d);
bool emu_daemon_running(struct emu_daemon *d);
int emu_daemon_signal(struct emu_daemon *d, int sig);
/* With @group, to the daemon's whole process group (e.g. its helpers too). */
int emu_daemon_signal_full(struct emu_daemon *d, int sig, bool group);
/* 0 with the waitpid status in *ret_status, -ETIMEDOUT, -ECHILD (never started). */
int emu_daemon_wait_exit(struct emu_daemon *d, uint64_t max_ms, int *ret_status);
/* SIGTERM, up to term_ms, then SIGKILL, up to kill_ms: 0 or -ETIMEDOUT. */
int emu_daemon_stop(struct emu_daemon *d, uint64_t term_ms, uint64_t kill_ms);
/* "exit status 0", "killed by SIGKILL" */
void emu_daemon_describe(int status, char *buf, size_t len);
