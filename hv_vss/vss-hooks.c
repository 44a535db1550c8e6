/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vss-hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hv-macro.h"

#define HOOK_OUTPUT_MAX (64 * 1024)

extern char **environ;

bool vss_hook_name_ignored(const char *name)
{
	static const char *const suffixes[] = {
		"~",	    ".dpkg-old",  ".dpkg-new", ".dpkg-dist", ".dpkg-bak", ".dpkg-tmp",
		".ucf-old", ".ucf-new",	  ".ucf-dist", ".rpmnew",    ".rpmsave",  ".rpmorig",
		".swp",	    ".bak",	  ".orig",     ".disabled",
	};

	if (!name || !*name || name[0] == '.')
		return true;

	for (size_t i = 0; i < G_N_ELEMENTS(suffixes); i++)
		if (g_str_has_suffix(name, suffixes[i]))
			return true;

	/* Emacs lock and autosave files. */
	return name[0] == '#';
}

static int by_name(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Why @path may not be trusted to run as root (following symlinks, as exec
 * does): writable by group or others, or owned by somebody other than root
 * and us. NULL when it is fine (or gone: the caller finds that out).
 */
#define REFUSED_WRITABLE "writable by group or others"
#define REFUSED_OWNER "owned by another user than root"

static const char *unsafe_owner_or_mode(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return NULL;

	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return REFUSED_WRITABLE;

	if (st.st_uid != 0 && st.st_uid != geteuid())
		return REFUSED_OWNER;

	return NULL;
}

bool vss_hook_skip_is_refusal(const char *entry)
{
	return entry && (strstr(entry, ": " REFUSED_WRITABLE) || strstr(entry, ": " REFUSED_OWNER));
}

int vss_hooks_list(const char *dir, GPtrArray **ret_hooks, GPtrArray **ret_skipped)
{
	g_autoptr(GPtrArray) hooks = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) skipped = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error = NULL;
	g_autoptr(GDir) d = NULL;
	const char *name;

	if (!dir || !ret_hooks)
		return -EINVAL;

	d = g_dir_open(dir, 0, &error);
	if (!d && !g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
		return g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_ACCES) ? -EACCES : -EIO;

	/*
	 * Hooks run as root: one that somebody else could have written or
	 * replaced is not run, nor is anything in a directory others may write.
	 */
	if (d) {
		const char *why = unsafe_owner_or_mode(dir);

		if (why) {
			g_ptr_array_add(skipped,
					g_strdup_printf("%s: %s: no hook in it is run", dir, why));
			g_clear_pointer(&d, g_dir_close);
		}
	}

	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *path = g_build_filename(dir, name, NULL);
		const char *why;
		struct stat st;

		if (vss_hook_name_ignored(name)) {
			g_ptr_array_add(skipped, g_strdup_printf("%s: name left by a package manager or editor, or hidden", name));
			continue;
		}

		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
			g_ptr_array_add(skipped, g_strdup_printf("%s: not a regular file", name));
			continue;
		}

		if (access(path, X_OK) < 0) {
			g_ptr_array_add(skipped, g_strdup_printf("%s: not executable", name));
			continue;
		}

		why = unsafe_owner_or_mode(path);
		if (why) {
			g_ptr_array_add(skipped, g_strdup_printf("%s: %s", name, why));
			continue;
		}

		g_ptr_array_add(hooks, g_steal_pointer(&path));
	}

	g_ptr_array_sort(hooks, by_name);
	*ret_hooks = g_steal_pointer(&hooks);
	if (ret_skipped)
		*ret_skipped = g_steal_pointer(&skipped);
	return 0;
}

void vss_hook_result_clear(vss_hook_result *r)
{
	if (!r)
		return;

	g_clear_pointer(&r->output, g_free);
}

static void read_output(int fd, GString *out, bool *truncated)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		size_t room = HOOK_OUTPUT_MAX - MIN(out->len, (gsize)HOOK_OUTPUT_MAX);

		if ((size_t)n > room)
			*truncated = true;
		g_string_append_len(out, buf, (gssize)MIN((size_t)n, room));
	}
}

int vss_hook_run(const char *path, const char *arg, unsigned int timeout_ms,
		 vss_hook_result *ret)
{
	char env_path[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	char env_lang[] = "LANG=C.UTF-8";
	char env_home[] = "HOME=/";
	char *const env[] = { env_path, env_lang, env_home, NULL };
	g_autofree char *argv0 = g_strdup(path);
	g_autofree char *argv1 = g_strdup(arg);
	char *const argv[] = { argv0, argv1, NULL };
	g_autoptr(GString) out = g_string_new(NULL);
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	hv_autofd int rd = -1;
	int pipefd[2];
	gint64 start = g_get_monotonic_time();
	gint64 deadline = start + (gint64)timeout_ms * 1000;
	bool truncated = false, timed_out = false;
	sigset_t none, all;
	pid_t pid;
	int status = -1;
	int r;

	if (!path || !arg || !ret)
		return -EINVAL;

	*ret = (vss_hook_result){ .status = -1 };

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	rd = pipefd[0];

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
						 POSIX_SPAWN_SETPGROUP);

	r = posix_spawn(&pid, path, &fa, &attr, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(pipefd[1]);
	if (r != 0)
		return -r;

	if (fcntl(rd, F_SETFL, O_NONBLOCK) < 0) {
		/* Cannot happen on a pipe; stay safe anyway. */
		timed_out = true;
	}

	/* Collect output until the hook closes it and exits, or time runs out. */
	for (;;) {
		struct pollfd p = { .fd = rd, .events = POLLIN };
		gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
		pid_t w;

		w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			read_output(rd, out, &truncated);
			break;
		}

		if (timed_out || left_ms <= 0) {
			timed_out = true;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			read_output(rd, out, &truncated);
			status = -1;
			break;
		}

		/* Wake at least every 50 ms to notice an exit that kept the pipe open. */
		if (poll(&p, 1, (int)MIN(left_ms, 50)) > 0)
			read_output(rd, out, &truncated);
	}

	ret->timed_out = timed_out;
	ret->truncated = truncated;
	ret->duration_us = g_get_monotonic_time() - start;
	if (status >= 0 && WIFEXITED(status))
		ret->status = WEXITSTATUS(status);
	else
		ret->status = -1;
	ret->output = g_string_free(g_steal_pointer(&out), FALSE);

	if (timed_out)
		return -ETIMEDOUT;
	return ret->status == 0 ? 0 : -EPROTO;
}
