/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hv-sandbox: run a command where the only block-backed file systems it can
 * see, and so the only ones it can freeze, are scratch file systems created
 * for this run.
 *
 *   outer process (original namespaces): creates zram or loop devices,
 *   formats them, forwards SIGTERM/SIGINT/SIGHUP, removes the devices on
 *   every exit path.
 *     relay (optional): copies the sandbox's stdout/stderr to the caller's
 *     when those are files on a block-backed file system, so no descriptor
 *     inside the sandbox refers to one.
 *     mid: unshare(CLONE_NEWPID), forks ns-init, passes its exit status on.
 *       ns-init (PID 1 of the new pid namespace, own mount namespace):
 *       stage A (running from the host binary): tmpfs root, /dev nodes,
 *       copies of the executables and their libraries, a copy of itself,
 *       pivot_root, proc, the scratch mounts; then execs its own copy
 *       so that even /proc/1/exe lies inside the sandbox.
 *       stage B (the copy): checks the mount table, runs COMMAND as the
 *       watchdog, then thaws, kills, thaws again and unmounts.
 *
 * The rule this exists for (DESIGN.md, "Safety rule"): freezing the root or
 * work file system of this machine hangs it, so nothing from the host file
 * system is ever bind-mounted into the sandbox.
 */

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/btrfs.h>
#include <linux/loop.h>
#include <linux/magic.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* <linux/fs.h> clashes with <sys/mount.h> on glibc 2.36; these are stable ABI. */
#ifndef FIFREEZE
#define FIFREEZE _IOWR('X', 119, int)
#endif
#ifndef FITHAW
#define FITHAW _IOWR('X', 120, int)
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define EXIT_USAGE        2
#define EXIT_LEFT_FROZEN  3
#define EXIT_SKIP         77
#define EXIT_TIMEOUT      124
#define EXIT_CANNOT_EXEC  127

#define MAX_DEVICES       64
#define DEFAULT_SIZE_MIB  320
#define DEFAULT_TIMEOUT   120
#define NS_INIT_ARG       "--hv-sandbox-ns-init"
#define INIT_DIR          "/run/hv-sandbox"
#define INIT_PATH         INIT_DIR "/init"
#define ZRAM_CONTROL      "/sys/class/zram-control"
#define REAP_TIMEOUT_MS   10000
#define IDLE_TIMEOUT_MS   1000          /* unmounts in a dying namespace take ms */
#define BUSY_TIMEOUT_MS   5000
#define RESCUE_TIMEOUT_MS 15000

enum backend {
	BACKEND_ZRAM,
	BACKEND_LOOP,
};

struct scratch {
	enum backend backend;
	bool created;           /* the device exists because of this run */
	int number;             /* N of zramN / loopN */
	char name[32];          /* "zram5" */
	char node[128];         /* host path of the node, for mkfs */
	bool node_is_ours;      /* node mknod'ed in our temporary directory */
	char sandbox_node[48];  /* "/dev/zram5" */
	char mnt[32];           /* "/mnt/fs0" */
	const char *fstype;
	dev_t devno;
	int loop_fd;            /* loop: held open until the device is released */
};

struct options {
	char *fs_buf;           /* owns the strings in fs[] */
	const char *fs[MAX_DEVICES];
	unsigned n_fs;
	unsigned count;
	bool count_set;
	uint64_t size_mib;
	enum backend backend;
	bool backend_set;
	const char **copy;
	unsigned n_copy;
	unsigned timeout;
	bool allow_frozen;
	bool sysfs;             /* a read-only sysfs at /sys (KVP: /sys/class/net) */
	bool netns;             /* a private network namespace (lo up) */
	bool test_foreign_mount;
	char **command;
};

struct sandbox {
	const struct options *opt;
	char tmpdir[64];
	char root[96];
	struct scratch dev[MAX_DEVICES];
	unsigned n_dev;
};

static bool verbose;
static uint64_t t_start;
static volatile sig_atomic_t got_signal;
static volatile pid_t forward_pid;

/* ---- small helpers ---------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000L,
	};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void log_line(const char *prefix, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void log_line(const char *prefix, const char *fmt, va_list ap)
{
	char buf[2048];
	int n, m;

	n = snprintf(buf, sizeof(buf), "hv-sandbox: %s", prefix);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return;
	m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	write_all(STDERR_FILENO, buf, (size_t)n);
}

static void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void log_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line("", fmt, ap);
	va_end(ap);
}

/* Logs "<message>: <strerror(-r)>" and returns r, so it can end a return. */
static int log_errno(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int log_errno(int r, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_err("%s: %s", msg, strerror(r < 0 ? -r : r));
	return r;
}

static void log_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void log_verbose(const char *fmt, ...)
{
	char prefix[32];
	va_list ap;

	if (!verbose)
		return;
	snprintf(prefix, sizeof(prefix), "[%8.1f ms] ",
		 (double)(now_ns() - t_start) / 1e6);
	va_start(ap, fmt);
	log_line(prefix, fmt, ap);
	va_end(ap);
}

/* execv() wants char *const[]; our argument vectors hold string constants. */
static char *const *argv_cast(const char *const *argv)
{
	union {
		const char *const *c;
		char *const *m;
	} u = { .c = argv };

	return u.m;
}

static int write_string(const char *path, const char *s)
{
	size_t len = strlen(s);
	ssize_t n;
	int fd, r;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, s, len);
	r = n < 0 ? -errno : ((size_t)n == len ? 0 : -EIO);
	close(fd);
	return r;
}

static int read_string(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int create_file(const char *path, const char *content, mode_t mode)
{
	size_t len = strlen(content);
	ssize_t n;
	int fd, r;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	n = write(fd, content, len);
	r = n < 0 ? -errno : ((size_t)n == len ? 0 : -EIO);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

/* Creates the directories leading to path, not path itself. */
static int mkdir_parents(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	char *p;

	if (strlen(path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	strcpy(tmp, path);
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

static void child_reset_signals(void)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	sigset_t empty;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		signal(sigs[i], SIG_DFL);
	sigemptyset(&empty);
	sigprocmask(SIG_SETMASK, &empty, NULL);
}

static int exit_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

static int wait_pid(pid_t pid, int *ret_status)
{
	for (;;) {
		if (waitpid(pid, ret_status, 0) >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

/* Waits for our child at most timeout_ms; -ETIMEDOUT leaves it running. */
static int wait_pid_timeout(pid_t pid, unsigned timeout_ms, int *ret_status)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	pid_t r;

	for (;;) {
		r = waitpid(pid, ret_status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (now_ns() >= deadline)
			return -ETIMEDOUT;
		sleep_ms(10);
	}
}

/* Runs argv with stdin from /dev/null and stdout to /dev/null (quiet) or stderr. */
static pid_t spawn(const char *const argv[], bool quiet)
{
	pid_t pid;
	int fd;

	pid = fork();
	if (pid != 0)
		return pid < 0 ? -errno : pid;

	child_reset_signals();
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, STDIN_FILENO);
	if (quiet && fd >= 0)
		dup2(fd, STDOUT_FILENO);
	else if (!quiet)
		dup2(STDERR_FILENO, STDOUT_FILENO);
	close_range(3, ~0U, 0);
	execv(argv[0], argv_cast(argv));
	log_errno(-errno, "cannot run %s", argv[0]);
	_exit(EXIT_CANNOT_EXEC);
}

static void on_signal(int sig)
{
	int saved = errno;

	got_signal = sig;
	if (forward_pid > 0)
		kill(forward_pid, sig);
	errno = saved;
}

static void install_signal_handlers(void)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct sigaction sa = { .sa_handler = on_signal };
	size_t i;

	sigemptyset(&sa.sa_mask);
	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
}

static void block_forwarded_signals(int how)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(how, &set, NULL);
}

/* File systems on which an open descriptor cannot lead to a freezable block device. */
static bool fs_magic_is_safe(unsigned long magic)
{
	switch (magic) {
	case TMPFS_MAGIC:
	case RAMFS_MAGIC:
	case DEVPTS_SUPER_MAGIC:
	case PIPEFS_MAGIC:
	case SOCKFS_MAGIC:
	case PROC_SUPER_MAGIC:
	case SYSFS_MAGIC:
	case ANON_INODE_FS_MAGIC:
	case FUSE_SUPER_MAGIC:
		return true;
	default:
		return false;
	}
}

/* Mount types that are never block-backed. */
static bool fstype_is_pseudo(const char *type)
{
	static const char *const pseudo[] = {
		"tmpfs", "proc", "devtmpfs", "devpts", "mqueue", "sysfs",
		"fuse", "fusectl",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(pseudo); i++)
		if (!strcmp(type, pseudo[i]))
			return true;
	return !strncmp(type, "fuse.", 5);
}

/* ---- mountinfo ----------------------------------------------------------- */

struct mount_entry {
	unsigned major;
	unsigned minor;
	char *mountpoint;
	char *fstype;
	char *source;
	char *line;
};

static void unescape_octal(char *s)
{
	char *w = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
			s += 4;
		} else {
			*w++ = *s++;
		}
	}
	*w = '\0';
}

static void mount_entries_free(struct mount_entry *e, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(e[i].mountpoint);
		free(e[i].fstype);
		free(e[i].source);
		free(e[i].line);
	}
	free(e);
}

/* Parses one line of /proc/self/mountinfo (proc(5)); -EBADMSG if malformed. */
static int mountinfo_parse_line(const char *line, struct mount_entry *ret)
{
	char *copy, *field[64], *save = NULL, *tok;
	unsigned nf = 0, dash = 0, i;
	int r = -EBADMSG;

	copy = strdup(line);
	if (!copy)
		return -ENOMEM;
	copy[strcspn(copy, "\n")] = '\0';
	for (tok = strtok_r(copy, " ", &save); tok && nf < ARRAY_SIZE(field);
	     tok = strtok_r(NULL, " ", &save))
		field[nf++] = tok;
	for (i = 6; i < nf; i++) {
		if (!strcmp(field[i], "-")) {
			dash = i;
			break;
		}
	}
	if (nf < 10 || dash == 0 || dash + 2 >= nf)
		goto out;
	if (sscanf(field[2], "%u:%u", &ret->major, &ret->minor) != 2)
		goto out;
	unescape_octal(field[4]);
	unescape_octal(field[dash + 2]);
	ret->mountpoint = strdup(field[4]);
	ret->fstype = strdup(field[dash + 1]);
	ret->source = strdup(field[dash + 2]);
	ret->line = strdup(line);
	if (!ret->mountpoint || !ret->fstype || !ret->source || !ret->line) {
		r = -ENOMEM;
		goto out;
	}
	if (ret->line[0])
		ret->line[strcspn(ret->line, "\n")] = '\0';
	r = 0;
out:
	free(copy);
	return r;
}

static int mountinfo_read(struct mount_entry **ret, size_t *ret_n)
{
	struct mount_entry *e = NULL, *tmp;
	size_t n = 0, cap = 0, len = 0;
	char *line = NULL;
	FILE *f;
	int r = 0;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (getline(&line, &len, f) > 0) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			tmp = realloc(e, cap * sizeof(*e));
			if (!tmp) {
				r = -ENOMEM;
				break;
			}
			e = tmp;
		}
		memset(&e[n], 0, sizeof(e[n]));
		r = mountinfo_parse_line(line, &e[n]);
		n++;
		if (r < 0)
			break;
	}
	free(line);
	fclose(f);
	if (r < 0) {
		mount_entries_free(e, n);
		return r;
	}
	*ret = e;
	*ret_n = n;
	return 0;
}

/* ---- scratch devices (outer process) -------------------------------------- */

static int sysfs_devno(const char *name, dev_t *ret)
{
	char path[128], buf[32];
	unsigned maj, min;
	int r;

	snprintf(path, sizeof(path), "/sys/block/%s/dev", name);
	r = read_string(path, buf, sizeof(buf));
	if (r < 0)
		return r;
	if (sscanf(buf, "%u:%u", &maj, &min) != 2)
		return -EBADMSG;
	*ret = makedev(maj, min);
	return 0;
}

/*
 * /dev is devtmpfs here, so the kernel has made the node already; if not,
 * make our own in the temporary directory.
 */
static int scratch_node(struct sandbox *sb, struct scratch *s)
{
	struct stat st;
	int i;

	snprintf(s->sandbox_node, sizeof(s->sandbox_node), "/dev/%s", s->name);
	for (i = 0; i < 50; i++) {
		if (stat(s->sandbox_node, &st) == 0 && S_ISBLK(st.st_mode) &&
		    st.st_rdev == s->devno) {
			snprintf(s->node, sizeof(s->node), "%s", s->sandbox_node);
			return 0;
		}
		sleep_ms(10);
	}
	snprintf(s->node, sizeof(s->node), "%s/%s", sb->tmpdir, s->name);
	if (mknod(s->node, S_IFBLK | 0600, s->devno) < 0)
		return log_errno(-errno, "mknod %s", s->node);
	s->node_is_ours = true;
	return 0;
}

static int zram_create(struct sandbox *sb, struct scratch *s, uint64_t bytes)
{
	char path[128], buf[32];
	ssize_t n;
	int fd, r;

	/* Every read of hot_add creates a device: read it exactly once. */
	fd = open(ZRAM_CONTROL "/hot_add", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	r = n < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return r;
	buf[n] = '\0';
	if (sscanf(buf, "%d", &s->number) != 1 || s->number < 0)
		return -EBADMSG;
	s->backend = BACKEND_ZRAM;
	s->created = true;
	snprintf(s->name, sizeof(s->name), "zram%d", s->number);

	snprintf(path, sizeof(path), "/sys/block/%s/disksize", s->name);
	snprintf(buf, sizeof(buf), "%" PRIu64, bytes);
	r = write_string(path, buf);
	if (r < 0)
		return log_errno(r, "cannot set the size of %s", s->name);
	r = sysfs_devno(s->name, &s->devno);
	if (r < 0)
		return log_errno(r, "cannot read the device number of %s", s->name);
	return scratch_node(sb, s);
}

static int loop_attach(int lfd, int bfd, const char *backing)
{
	struct loop_config cfg = {
		.fd = (uint32_t)bfd,
		.info.lo_flags = LO_FLAGS_AUTOCLEAR,
	};
	struct loop_info64 info = { .lo_flags = LO_FLAGS_AUTOCLEAR };

	snprintf((char *)cfg.info.lo_file_name, sizeof(cfg.info.lo_file_name), "%s", backing);
	if (ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOTTY)
		return -errno;
	/* Kernels before 5.8. */
	if (ioctl(lfd, LOOP_SET_FD, bfd) < 0)
		return -errno;
	if (ioctl(lfd, LOOP_SET_STATUS64, &info) < 0) {
		int r = -errno;

		ioctl(lfd, LOOP_CLR_FD, 0);
		return r;
	}
	return 0;
}

static int loop_create(struct sandbox *sb, struct scratch *s, uint64_t bytes)
{
	char backing[] = "/dev/shm/hv-sandbox-XXXXXX";
	int ctl = -1, bfd, lfd = -1, tries, r;

	bfd = mkostemp(backing, O_CLOEXEC);
	if (bfd < 0)
		return log_errno(-errno, "cannot create a backing file in /dev/shm");
	if (ftruncate(bfd, (off_t)bytes) < 0) {
		r = log_errno(-errno, "cannot size %s", backing);
		goto out;
	}
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		r = -errno;
		goto out;
	}
	r = -EBUSY;
	for (tries = 0; tries < 32 && r == -EBUSY; tries++) {
		struct scratch probe = *s;
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);

		if (n < 0) {
			r = log_errno(-errno, "LOOP_CTL_GET_FREE");
			break;
		}
		probe.backend = BACKEND_LOOP;
		probe.loop_fd = -1;
		probe.node_is_ours = false;
		probe.number = n;
		snprintf(probe.name, sizeof(probe.name), "loop%d", n);
		r = sysfs_devno(probe.name, &probe.devno);
		if (r < 0) {
			log_errno(r, "cannot read the device number of %s", probe.name);
			break;
		}
		r = scratch_node(sb, &probe);
		if (r < 0)
			break;
		lfd = open(probe.node, O_RDWR | O_CLOEXEC);
		if (lfd < 0) {
			r = log_errno(-errno, "cannot open %s", probe.node);
			if (probe.node_is_ours)
				unlink(probe.node);
			break;
		}
		r = loop_attach(lfd, bfd, backing);
		if (r == 0) {
			/* From here on the device is ours. */
			probe.loop_fd = lfd;
			probe.created = true;
			*s = probe;
			lfd = -1;
			break;
		}
		close(lfd);
		lfd = -1;
		if (probe.node_is_ours)
			unlink(probe.node);
		/* -EBUSY: somebody else took it between GET_FREE and CONFIGURE. */
	}
	if (r < 0 && r != -EBUSY)
		log_errno(r, "cannot set up a loop device");
out:
	if (ctl >= 0)
		close(ctl);
	/* The loop device holds the file; unlinked now, nothing is left behind. */
	unlink(backing);
	close(bfd);
	return r;
}

static bool scratch_busy(const struct scratch *s)
{
	int fd;

	/* A mounted file system holds its block device exclusively. */
	fd = open(s->node, O_RDONLY | O_EXCL | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errno == EBUSY;
	close(fd);
	return false;
}

static bool scratch_wait_idle(const struct scratch *s, unsigned timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ULL;

	while (scratch_busy(s)) {
		if (now_ns() >= deadline)
			return false;
		sleep_ms(20);
	}
	return true;
}

/*
 * The device is still in use: a mount namespace being torn down, or a file
 * system left frozen whose unmount cannot finish. Mounting the device again
 * returns the same superblock, which we can then thaw. Done in a child with
 * a private mount namespace so the host never sees the mount.
 */
static void scratch_rescue(struct sandbox *sb, const struct scratch *s)
{
	char mp[160];
	pid_t pid;
	int status, r;

	snprintf(mp, sizeof(mp), "%s/rescue-%s", sb->tmpdir, s->name);
	if (mkdir(mp, 0700) < 0 && errno != EEXIST) {
		log_errno(-errno, "mkdir %s", mp);
		return;
	}
	pid = fork();
	if (pid < 0) {
		log_errno(-errno, "fork");
		rmdir(mp);
		return;
	}
	if (pid == 0) {
		int thawed = 0, fd;

		child_reset_signals();
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(1);
		if (mount(s->node, mp, s->fstype, 0, NULL) < 0) {
			log_errno(-errno, "rescue: cannot mount %s", s->node);
			_exit(1);
		}
		fd = open(mp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		while (fd >= 0 && thawed < 16 && ioctl(fd, FITHAW, 0) == 0)
			thawed++;
		if (fd >= 0)
			close(fd);
		if (thawed)
			log_err("rescue: %s was still frozen, thawed", s->node);
		if (umount2(mp, 0) < 0)
			_exit(1);
		_exit(0);
	}
	r = wait_pid_timeout(pid, RESCUE_TIMEOUT_MS, &status);
	if (r < 0)
		log_errno(r, "rescue of %s did not finish", s->node);
	else
		rmdir(mp);
}

static void btrfs_forget(const struct scratch *s)
{
	struct btrfs_ioctl_vol_args args = { 0 };
	int fd;

	fd = open("/dev/btrfs-control", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	snprintf(args.name, sizeof(args.name), "%s", s->node);
	if (ioctl(fd, BTRFS_IOC_FORGET_DEV, &args) < 0)
		log_verbose("btrfs forget %s: %s, ignoring", s->node, strerror(errno));
	close(fd);
}

static int zram_release(const struct scratch *s)
{
	char path[128], num[16];
	int i, r = 0;

	snprintf(path, sizeof(path), "/sys/block/%s/reset", s->name);
	for (i = 0; i < 100; i++) {
		r = write_string(path, "1");
		if (r != -EBUSY)
			break;
		sleep_ms(20);
	}
	if (r < 0)
		return log_errno(r, "cannot reset %s", s->name);
	snprintf(num, sizeof(num), "%d", s->number);
	for (i = 0; i < 100; i++) {
		r = write_string(ZRAM_CONTROL "/hot_remove", num);
		if (r != -EBUSY)
			break;
		sleep_ms(20);
	}
	if (r < 0)
		return log_errno(r, "cannot remove %s", s->name);
	return 0;
}

static int loop_release(struct scratch *s)
{
	char path[128];
	int i, r = 0;

	if (ioctl(s->loop_fd, LOOP_CLR_FD, 0) < 0 && errno != ENXIO)
		r = log_errno(-errno, "LOOP_CLR_FD %s", s->name);
	close(s->loop_fd);
	s->loop_fd = -1;
	/* Autoclear finishes the detach once the last opener is gone. */
	snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", s->name);
	for (i = 0; i < 100; i++) {
		if (access(path, F_OK) < 0)
			return r;
		sleep_ms(20);
	}
	return log_errno(-EBUSY, "%s is still attached", s->name);
}

static int scratch_release(struct sandbox *sb, struct scratch *s)
{
	uint64_t t = now_ns();
	int r = 0;

	if (!s->created)
		return 0;
	if (!scratch_wait_idle(s, IDLE_TIMEOUT_MS)) {
		log_err("%s is still in use, trying to thaw it", s->name);
		scratch_rescue(sb, s);
		if (!scratch_wait_idle(s, BUSY_TIMEOUT_MS))
			log_err("%s is still in use", s->name);
	}
	if (s->fstype && !strcmp(s->fstype, "btrfs"))
		btrfs_forget(s);

	switch (s->backend) {
	case BACKEND_ZRAM:
		r = zram_release(s);
		break;
	case BACKEND_LOOP:
		r = loop_release(s);
		break;
	}
	if (s->node_is_ours)
		unlink(s->node);
	if (r == 0) {
		s->created = false;
		log_verbose("removed %s (%.1f ms)", s->name, (double)(now_ns() - t) / 1e6);
	}
	return r;
}

static int scratch_create_all(struct sandbox *sb)
{
	const struct options *opt = sb->opt;
	uint64_t bytes = opt->size_mib << 20;
	enum backend backend = opt->backend;
	unsigned i;
	int r;

	for (i = 0; i < opt->count; i++) {
		struct scratch *s = &sb->dev[i];
		uint64_t t = now_ns();

		if (got_signal)
			return -EINTR;
		*s = (struct scratch) { .loop_fd = -1 };
		s->fstype = opt->fs[i % opt->n_fs];
		snprintf(s->mnt, sizeof(s->mnt), "/mnt/fs%u", i);
		sb->n_dev = i + 1;

		r = -ENODEV;
		switch (backend) {
		case BACKEND_ZRAM:
			r = zram_create(sb, s, bytes);
			if (r == 0 || s->created || opt->backend_set)
				break;
			log_verbose("zram unavailable (%s), using loop devices", strerror(-r));
			backend = BACKEND_LOOP;
			__attribute__((fallthrough));
		case BACKEND_LOOP:
			r = loop_create(sb, s, bytes);
			break;
		}
		if (r < 0)
			return log_errno(r, "cannot create scratch device %u", i);
		log_verbose("created %s (%s, %" PRIu64 " MiB, %u:%u) for %s in %.1f ms",
			    s->name, s->backend == BACKEND_ZRAM ? "zram" : "loop",
			    opt->size_mib, major(s->devno), minor(s->devno), s->mnt,
			    (double)(now_ns() - t) / 1e6);
	}
	return 0;
}

static const char *const *mkfs_flags(const char *fstype)
{
	static const char *const ext[] = { "-q", "-F", NULL };
	static const char *const force[] = { "-q", "-f", NULL };
	static const char *const none[] = { NULL };

	if (!strcmp(fstype, "ext2") || !strcmp(fstype, "ext3") || !strcmp(fstype, "ext4"))
		return ext;
	if (!strcmp(fstype, "xfs") || !strcmp(fstype, "btrfs"))
		return force;
	return none;
}

static int find_program(const char *name, char *buf, size_t size)
{
	static const char *const dirs[] = {
		"/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(buf, size, "%s/%s", dirs[i], name);
		if (access(buf, X_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

static int scratch_format_all(struct sandbox *sb)
{
	pid_t pids[MAX_DEVICES];
	uint64_t t = now_ns();
	unsigned i, started = 0;
	int r = 0;

	/* In parallel: mkfs time dominates setup with many devices. */
	for (i = 0; i < sb->n_dev; i++) {
		const struct scratch *s = &sb->dev[i];
		const char *const *flags = mkfs_flags(s->fstype);
		const char *argv[8];
		char prog[64], path[PATH_MAX];
		unsigned a = 0;

		snprintf(prog, sizeof(prog), "mkfs.%s", s->fstype);
		if (find_program(prog, path, sizeof(path)) < 0) {
			r = log_errno(-ENOENT, "%s", prog);
			break;
		}
		argv[a++] = path;
		while (*flags)
			argv[a++] = *flags++;
		argv[a++] = s->node;
		argv[a] = NULL;
		pids[i] = spawn(argv, !verbose);
		if (pids[i] < 0) {
			r = log_errno(pids[i], "cannot start %s", prog);
			break;
		}
		started++;
	}
	for (i = 0; i < started; i++) {
		int status = 0, q;

		q = wait_pid(pids[i], &status);
		if (q < 0) {
			r = log_errno(q, "waitpid");
			continue;
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			log_err("mkfs.%s %s failed (status %d)", sb->dev[i].fstype,
				sb->dev[i].node, exit_status(status));
			r = -EIO;
		}
	}
	if (r == 0)
		log_verbose("formatted %u file system(s) in %.1f ms", sb->n_dev,
			    (double)(now_ns() - t) / 1e6);
	return r;
}

/* ---- stage A: building the root (ns-init, host binary) ------------------ */

/* Path of abs inside the new root; too long a path becomes "", which every call rejects. */
static void root_path(const struct sandbox *sb, const char *abs, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s%s", sb->root, abs);

	if (n < 0 || (size_t)n >= size)
		buf[0] = '\0';
}

/* Copies a file's contents (symlinks followed) and mode; an existing target is kept. */
static int copy_file(const char *src, const char *dst)
{
	char buf[128 * 1024];
	struct stat st;
	int in, out, r = 0;
	ssize_t n;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return log_errno(-errno, "cannot open %s", src);
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(in);
		return log_errno(-EINVAL, "%s is not a regular file", src);
	}
	r = mkdir_parents(dst, 0755);
	if (r < 0) {
		close(in);
		return log_errno(r, "cannot create the directory for %s", dst);
	}
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		r = errno == EEXIST ? 0 : log_errno(-errno, "cannot create %s", dst);
		close(in);
		return r;
	}
	for (;;) {
		n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				r = log_errno(-errno, "read %s", src);
			break;
		}
		if (write(out, buf, (size_t)n) != n) {
			r = log_errno(-EIO, "write %s", dst);
			break;
		}
	}
	if (r == 0 && fchmod(out, st.st_mode & 07777) < 0)
		r = log_errno(-errno, "chmod %s", dst);
	close(out);
	close(in);
	return r;
}

/* 1 and the PT_INTERP path of a dynamic ELF file, 0 if there is none. */
static int elf_interp(int fd, char *buf, size_t size)
{
	unsigned char ident[EI_NIDENT];
	uint64_t off, filesz;
	unsigned i;

	if (pread(fd, ident, sizeof(ident), 0) != (ssize_t)sizeof(ident) ||
	    memcmp(ident, ELFMAG, SELFMAG))
		return 0;
	if (ident[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr eh;
		Elf64_Phdr ph;

		if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
			return -ENOEXEC;
		for (i = 0; i < eh.e_phnum; i++) {
			if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) !=
			    (ssize_t)sizeof(ph))
				return -ENOEXEC;
			if (ph.p_type != PT_INTERP)
				continue;
			off = ph.p_offset;
			filesz = ph.p_filesz;
			goto found;
		}
	} else if (ident[EI_CLASS] == ELFCLASS32) {
		Elf32_Ehdr eh;
		Elf32_Phdr ph;

		if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
			return -ENOEXEC;
		for (i = 0; i < eh.e_phnum; i++) {
			if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) !=
			    (ssize_t)sizeof(ph))
				return -ENOEXEC;
			if (ph.p_type != PT_INTERP)
				continue;
			off = ph.p_offset;
			filesz = ph.p_filesz;
			goto found;
		}
	}
	return 0;
found:
	if (filesz == 0 || filesz >= size)
		return -ENAMETOOLONG;
	if (pread(fd, buf, (size_t)filesz, (off_t)off) != (ssize_t)filesz)
		return -ENOEXEC;
	buf[filesz] = '\0';
	return 1;
}

/* 1 and the interpreter of a "#!" script, 0 if the file is not one. */
static int script_interp(int fd, char *buf, size_t size)
{
	char line[256];
	ssize_t n;
	size_t len;
	char *p;

	n = pread(fd, line, sizeof(line) - 1, 0);
	if (n < 2 || line[0] != '#' || line[1] != '!')
		return 0;
	line[n] = '\0';
	p = line + 2;
	p += strspn(p, " \t");
	len = strcspn(p, " \t\n");
	if (len == 0 || len >= size || p[0] != '/')
		return -ENOEXEC;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return 1;
}

/* Runs "<interp> --list <exe>" (what ldd does) and returns its output. */
static int list_libraries(const char *interp, const char *exe, char **ret)
{
	const char *argv[] = { interp, "--list", exe, NULL };
	size_t len = 0, cap = 4096;
	char *out, *tmp;
	int p[2], status = 0, r;
	ssize_t n;
	pid_t pid;

	out = malloc(cap);
	if (!out)
		return -ENOMEM;
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(out);
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		free(out);
		return r;
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		child_reset_signals();
		if (fd >= 0)
			dup2(fd, STDIN_FILENO);
		dup2(p[1], STDOUT_FILENO);
		execv(interp, argv_cast(argv));
		_exit(EXIT_CANNOT_EXEC);
	}
	close(p[1]);
	for (;;) {
		if (len + 1 >= cap) {
			cap *= 2;
			tmp = realloc(out, cap);
			if (!tmp)
				break;
			out = tmp;
		}
		n = read(p[0], out + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	out[len] = '\0';
	close(p[0]);
	r = wait_pid(pid, &status);
	if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		free(out);
		return r < 0 ? r : -ENOEXEC;
	}
	*ret = out;
	return 0;
}

static int install_libraries(const struct sandbox *sb, const char *interp, const char *exe)
{
	char *out = NULL, *line, *save = NULL;
	char dst[PATH_MAX];
	int r;

	r = list_libraries(interp, exe, &out);
	if (r < 0)
		return log_errno(r, "cannot list the libraries of %s", exe);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *path = line + strspn(line, " \t");
		char *arrow = strstr(path, " => ");
		char *end;

		if (arrow)
			path = arrow + 4;
		if (!strncmp(path, "not found", 9)) {
			r = log_errno(-ENOENT, "%s needs %.*s", exe,
				      (int)(arrow ? (size_t)(arrow - line) : strlen(line)), line);
			break;
		}
		if (path[0] != '/')
			continue;       /* linux-vdso.so.1 */
		end = strstr(path, " (");
		if (end)
			*end = '\0';
		root_path(sb, path, dst, sizeof(dst));
		r = copy_file(path, dst);
		if (r < 0)
			break;
	}
	free(out);
	return r;
}

/* Copies an executable to dst_abs in the new root, with its interpreter and libraries. */
static int install_executable(const struct sandbox *sb, const char *src, const char *dst_abs,
			      unsigned depth)
{
	char interp[PATH_MAX], dst[PATH_MAX];
	int fd, r;

	if (depth > 4)
		return log_errno(-ELOOP, "%s: too many nested interpreters", src);
	root_path(sb, dst_abs, dst, sizeof(dst));
	r = copy_file(src, dst);
	if (r < 0)
		return r;
	fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return log_errno(-errno, "cannot open %s", src);
	r = script_interp(fd, interp, sizeof(interp));
	if (r == 0)
		r = elf_interp(fd, interp, sizeof(interp));
	else if (r > 0)
		r = 2;
	close(fd);
	if (r < 0)
		return log_errno(r, "cannot read the interpreter of %s", src);
	if (r == 0)
		return 0;       /* static */
	if (r == 2)
		return install_executable(sb, interp, interp, depth + 1);
	root_path(sb, interp, dst, sizeof(dst));
	r = copy_file(interp, dst);
	if (r < 0)
		return r;
	return install_libraries(sb, interp, src);
}

static int build_root(const struct sandbox *sb)
{
	static const char *const dirs[] = {
		"/bin", "/dev", "/dev/vmbus", "/dev/shm", "/proc", "/run", INIT_DIR,
		"/tmp", "/etc", "/etc/hyperv", "/mnt", "/var", "/var/lib", "/var/tmp",
	};
	static const char *const sticky[] = { "/tmp", "/dev/shm", "/var/tmp" };
	static const struct {
		const char *name;
		unsigned maj, min;
	} nodes[] = {
		{ "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 },
		{ "urandom", 1, 9 }, { "tty", 5, 0 }, { "fuse", 10, 229 },
	};
	static const struct {
		const char *path, *target;
	} links[] = {
		{ "/etc/mtab", "/proc/self/mounts" }, { "/dev/fd", "/proc/self/fd" },
		{ "/dev/stdin", "/proc/self/fd/0" }, { "/dev/stdout", "/proc/self/fd/1" },
		{ "/dev/stderr", "/proc/self/fd/2" },
	};
	char path[PATH_MAX];
	unsigned i;
	int r;

	for (i = 0; i < ARRAY_SIZE(dirs); i++) {
		root_path(sb, dirs[i], path, sizeof(path));
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return log_errno(-errno, "mkdir %s", path);
	}
	for (i = 0; i < ARRAY_SIZE(sticky); i++) {
		root_path(sb, sticky[i], path, sizeof(path));
		if (chmod(path, 01777) < 0)
			return log_errno(-errno, "chmod %s", path);
	}
	for (i = 0; i < ARRAY_SIZE(nodes); i++) {
		snprintf(path, sizeof(path), "%s/dev/%s", sb->root, nodes[i].name);
		if (mknod(path, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0 ||
		    chmod(path, 0666) < 0)
			return log_errno(-errno, "mknod %s", path);
	}
	for (i = 0; i < sb->n_dev; i++) {
		const struct scratch *s = &sb->dev[i];

		root_path(sb, s->sandbox_node, path, sizeof(path));
		if (mknod(path, S_IFBLK | 0600, s->devno) < 0)
			return log_errno(-errno, "mknod %s", path);
		root_path(sb, s->mnt, path, sizeof(path));
		if (mkdir(path, 0755) < 0)
			return log_errno(-errno, "mkdir %s", path);
	}
	for (i = 0; i < ARRAY_SIZE(links); i++) {
		root_path(sb, links[i].path, path, sizeof(path));
		if (symlink(links[i].target, path) < 0)
			return log_errno(-errno, "symlink %s", path);
	}
	root_path(sb, "/etc/passwd", path, sizeof(path));
	r = create_file(path, "root:x:0:0:root:/tmp:/bin/sh\n", 0644);
	if (r == 0) {
		root_path(sb, "/etc/group", path, sizeof(path));
		r = create_file(path, "root:x:0:\n", 0644);
	}
	if (r < 0)
		return log_errno(r, "cannot write %s", path);
	return 0;
}

static int install_programs(const struct sandbox *sb)
{
	const struct options *opt = sb->opt;
	char dst[PATH_MAX], self[PATH_MAX];
	const char *base;
	unsigned i;
	ssize_t n;
	int r;

	for (i = 0; i < opt->n_copy; i++) {
		base = strrchr(opt->copy[i], '/');
		snprintf(dst, sizeof(dst), "/bin/%s", base ? base + 1 : opt->copy[i]);
		r = install_executable(sb, opt->copy[i], dst, 0);
		if (r < 0)
			return r;
	}
	base = strrchr(opt->command[0], '/');
	if (base) {
		snprintf(dst, sizeof(dst), "/bin/%s", base + 1);
		r = install_executable(sb, opt->command[0], dst, 0);
		if (r < 0)
			return r;
	}
	/* Our own copy: ns-init re-executes itself from inside the sandbox. */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return log_errno(-errno, "readlink /proc/self/exe");
	self[n] = '\0';
	return install_executable(sb, self, INIT_PATH, 0);
}

static int enter_root(const struct sandbox *sb)
{
	if (chdir(sb->root) < 0)
		return log_errno(-errno, "chdir %s", sb->root);
	if (mkdir(".oldroot", 0700) < 0)
		return log_errno(-errno, "mkdir .oldroot");
	if (syscall(SYS_pivot_root, ".", ".oldroot") < 0)
		return log_errno(-errno, "pivot_root %s", sb->root);
	if (chdir("/") < 0)
		return log_errno(-errno, "chdir /");
	if (umount2("/.oldroot", MNT_DETACH) < 0)
		return log_errno(-errno, "umount /.oldroot");
	if (rmdir("/.oldroot") < 0)
		return log_errno(-errno, "rmdir /.oldroot");
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return log_errno(-errno, "mount /proc");
	if (sb->opt->sysfs) {
		if (mkdir("/sys", 0555) < 0 && errno != EEXIST)
			return log_errno(-errno, "mkdir /sys");
		if (mount("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  NULL) < 0)
			return log_errno(-errno, "mount /sys");
	}
	return 0;
}

static int mount_scratch(const struct sandbox *sb)
{
	char line[160];
	char *table = NULL, *tmp;
	size_t len = 0;
	unsigned i;
	int r = 0, fd;

	for (i = 0; i < sb->n_dev; i++) {
		const struct scratch *s = &sb->dev[i];

		if (mount(s->sandbox_node, s->mnt, s->fstype, 0, NULL) < 0) {
			r = log_errno(-errno, "cannot mount %s (%s) on %s", s->sandbox_node,
				      s->fstype, s->mnt);
			while (i-- > 0)
				umount2(sb->dev[i].mnt, 0);
			return r;
		}
		snprintf(line, sizeof(line), "%s %s %s\n", s->mnt, s->sandbox_node, s->fstype);
		tmp = realloc(table, len + strlen(line) + 1);
		if (!tmp) {
			free(table);
			return -ENOMEM;
		}
		table = tmp;
		strcpy(table + len, line);
		len += strlen(line);
	}
	r = create_file("/etc/hv-scratch", table ? table : "", 0644);
	free(table);
	if (r < 0)
		return log_errno(r, "cannot write /etc/hv-scratch");
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
		return log_errno(-errno, "cannot open /dev/null");
	close(fd);
	return 0;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		log_err("out of memory");
		_exit(1);
	}
	return s;
}

static bool env_passed_through(const char *entry)
{
	static const char *const names[] = {
		"ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS=", "TSAN_OPTIONS=",
	};
	size_t i;

	if (!strncmp(entry, "HV_SCRATCH=", 11))
		return false;
	if (!strncmp(entry, "HV_", 3))
		return true;
	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (!strncmp(entry, names[i], strlen(names[i])))
			return true;
	return false;
}

/*
 * The environment COMMAND gets: PATH, HOME, HV_SCRATCH, the caller's HV_*
 * and the sanitizer options (so sanitized builds behave the same inside).
 */
static char **command_environment(const struct sandbox *sb)
{
	extern char **environ;
	static char path[] = "PATH=/bin", home[] = "HOME=/tmp";
	size_t n = 0, k = 0, i;
	char *scratch = xasprintf("HV_SCRATCH=");
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 4, sizeof(*env));
	if (!env) {
		log_err("out of memory");
		_exit(1);
	}
	for (i = 0; i < sb->n_dev; i++) {
		char *tmp = xasprintf("%s%s%s", scratch, i ? " " : "", sb->dev[i].mnt);

		free(scratch);
		scratch = tmp;
	}
	env[k++] = path;
	env[k++] = home;
	env[k++] = scratch;
	for (i = 0; i < n; i++)
		if (env_passed_through(environ[i]))
			env[k++] = environ[i];
	env[k] = NULL;
	return env;
}

/*
 * Stage B argument vector:
 *   init NS_INIT_ARG FLAGS TIMEOUT T0 N {NODE MAJ:MIN FSTYPE MNT}*N EXEC ARGV...
 */
static char **init_arguments(const struct sandbox *sb)
{
	const struct options *opt = sb->opt;
	size_t nargs = 0, k = 0, i;
	const char *base = strrchr(opt->command[0], '/');
	char **argv, *exec;

	while (opt->command[nargs])
		nargs++;
	argv = calloc(6 + 4 * sb->n_dev + 1 + nargs + 1, sizeof(*argv));
	if (!argv) {
		log_err("out of memory");
		_exit(1);
	}
	argv[k++] = xasprintf("hv-sandbox");
	argv[k++] = xasprintf("%s", NS_INIT_ARG);
	argv[k++] = xasprintf("%s%s-", verbose ? "v" : "", opt->allow_frozen ? "a" : "");
	argv[k++] = xasprintf("%u", opt->timeout);
	argv[k++] = xasprintf("%" PRIu64, t_start);
	argv[k++] = xasprintf("%u", sb->n_dev);
	for (i = 0; i < sb->n_dev; i++) {
		const struct scratch *s = &sb->dev[i];

		argv[k++] = xasprintf("%s", s->sandbox_node);
		argv[k++] = xasprintf("%u:%u", major(s->devno), minor(s->devno));
		argv[k++] = xasprintf("%s", s->fstype);
		argv[k++] = xasprintf("%s", s->mnt);
	}
	/* A COMMAND given as a path runs as the copy in /bin. */
	exec = base ? xasprintf("/bin/%s", base + 1) : opt->command[0];
	argv[k++] = exec;
	for (i = 0; i < nargs; i++)
		argv[k++] = (i == 0 && base) ? exec : opt->command[i];
	argv[k] = NULL;
	return argv;
}

/* Brings up the loopback interface of a new network namespace. */
static int loopback_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r = 0;

	if (fd < 0)
		return log_errno(-errno, "socket(AF_INET)");
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		r = log_errno(-errno, "SIOCGIFFLAGS lo");
	} else {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			r = log_errno(-errno, "SIOCSIFFLAGS lo");
	}
	close(fd);
	return r;
}

static void ns_init_setup(const struct sandbox *sb)
{
	uint64_t t = now_ns();
	char **argv, **env;

	/*
	 * A network namespace of its own: netlink multicast groups (the
	 * connector's) and interfaces are per namespace, so two sandboxes
	 * running netlink scenarios at once cannot hear each other.
	 */
	if (sb->opt->netns && (unshare(CLONE_NEWNET) < 0 || loopback_up() < 0)) {
		log_errno(-errno, "cannot set up a private network namespace");
		_exit(1);
	}

	if (unshare(CLONE_NEWNS) < 0) {
		log_errno(-errno, "unshare(CLONE_NEWNS)");
		_exit(1);
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		log_errno(-errno, "cannot make / private");
		_exit(1);
	}
	if (mount("hv-sandbox", sb->root, "tmpfs", 0, "mode=0755") < 0) {
		log_errno(-errno, "cannot mount a tmpfs on %s", sb->root);
		_exit(1);
	}
	if (build_root(sb) < 0 || install_programs(sb) < 0)
		_exit(1);
	log_verbose("root ready in %.1f ms", (double)(now_ns() - t) / 1e6);
	if (enter_root(sb) < 0 || mount_scratch(sb) < 0)
		_exit(1);
	/* Self-test of the safety check: a harmless mount it must refuse. */
	if (sb->opt->test_foreign_mount &&
	    (mkdir("/run/foreign", 0755) < 0 ||
	     mount("foreign", "/run/foreign", "ramfs", 0, NULL) < 0)) {
		log_errno(-errno, "cannot mount the test ramfs");
		_exit(1);
	}

	argv = init_arguments(sb);
	env = command_environment(sb);
	execve(INIT_PATH, argv, env);
	log_errno(-errno, "cannot execute %s in the sandbox", INIT_PATH);
	_exit(1);
}

/*
 * The outer process died (SIGKILL) while the sandbox ran, so it never reached
 * its cleanup. zram numbers are not reused before hot_remove, so releasing
 * them here is safe; loop devices were closed in this process and detach by
 * themselves (autoclear, backing file already unlinked), so they are not
 * touched: their numbers may already belong to somebody else.
 */
static void mid_orphan_cleanup(struct sandbox *sb)
{
	unsigned i;

	for (i = sb->n_dev; i-- > 0;) {
		struct scratch *s = &sb->dev[i];

		switch (s->backend) {
		case BACKEND_ZRAM:
			scratch_release(sb, s);
			break;
		case BACKEND_LOOP:
			if (s->node_is_ours)
				unlink(s->node);
			break;
		}
	}
	rmdir(sb->root);
	rmdir(sb->tmpdir);
}

/* The intermediate process: the pid namespace applies to its children only. */
static void mid_main(struct sandbox *sb, pid_t outer)
{
	int status = 0;
	pid_t pid;

	forward_pid = 0;
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != outer)
		got_signal = SIGTERM;
	if (unshare(CLONE_NEWPID) < 0) {
		log_errno(-errno, "unshare(CLONE_NEWPID)");
		_exit(1);
	}
	pid = fork();
	if (pid < 0) {
		log_errno(-errno, "fork");
		_exit(1);
	}
	if (pid == 0) {
		/* PID 1 now; the forwarded signals stay blocked until stage B waits for them. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		ns_init_setup(sb);
	}
	forward_pid = pid;
	if (got_signal)
		kill(pid, got_signal);
	block_forwarded_signals(SIG_UNBLOCK);
	if (wait_pid(pid, &status) < 0)
		_exit(1);
	if (getppid() != outer) {
		log_err("the outer process is gone, cleaning up for it");
		mid_orphan_cleanup(sb);
	}
	_exit(exit_status(status));
}

static int sandbox_run(struct sandbox *sb)
{
	pid_t outer = getpid(), pid;
	int status = 0, r;

	block_forwarded_signals(SIG_BLOCK);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		block_forwarded_signals(SIG_UNBLOCK);
		return log_errno(r, "fork");
	}
	if (pid == 0) {
		close_range(3, ~0U, 0);
		mid_main(sb, outer);
	}
	forward_pid = pid;
	block_forwarded_signals(SIG_UNBLOCK);
	r = wait_pid(pid, &status);
	forward_pid = 0;
	if (r < 0)
		return log_errno(r, "waitpid");
	return exit_status(status);
}

/* ---- stage B: watchdog (ns-init, running from inside the sandbox) ------- */

struct ns_scratch {
	const char *node;
	dev_t devno;
	const char *fstype;
	const char *mnt;
};

struct ns_config {
	bool allow_frozen;
	unsigned timeout;
	unsigned n;
	struct ns_scratch dev[MAX_DEVICES];
	const char *exec;
	char **argv;
	char *frozen[MAX_DEVICES * 2];
	unsigned n_frozen;
};

static void ns_record_frozen(struct ns_config *c, const char *path)
{
	unsigned i;

	for (i = 0; i < c->n_frozen; i++)
		if (!strcmp(c->frozen[i], path))
			return;
	if (c->n_frozen < ARRAY_SIZE(c->frozen))
		c->frozen[c->n_frozen++] = strdup(path);
	log_verbose("thawed %s: it was frozen", path);
}

/* Thaws path until the kernel says it is not frozen; true if that is now known. */
static bool ns_thaw(struct ns_config *c, const char *path)
{
	int fd, i, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return false;
	for (i = 0; i < 16; i++) {
		if (ioctl(fd, FITHAW, 0) == 0) {
			ns_record_frozen(c, path);
			continue;
		}
		err = errno;
		break;
	}
	close(fd);
	return err == EINVAL || err == EOPNOTSUPP || err == ENOTTY;
}

static void ns_thaw_all(struct ns_config *c)
{
	struct mount_entry *e;
	size_t n, i;
	unsigned k;

	for (k = 0; k < c->n; k++)
		ns_thaw(c, c->dev[k].mnt);
	/* Also wherever COMMAND mounted a scratch file system again. */
	if (mountinfo_read(&e, &n) < 0)
		return;
	for (i = n; i-- > 0;)
		if (!fstype_is_pseudo(e[i].fstype))
			ns_thaw(c, e[i].mountpoint);
	mount_entries_free(e, n);
}

static bool ns_mount_allowed(const struct ns_config *c, const struct mount_entry *e)
{
	dev_t devno = makedev(e->major, e->minor);
	unsigned k;

	if (fstype_is_pseudo(e->fstype))
		return e->major == 0;
	for (k = 0; k < c->n; k++) {
		if (strcmp(e->source, c->dev[k].node))
			continue;
		/* btrfs reports an anonymous device number (0:N) per subvolume. */
		if (e->major == 0 || devno == c->dev[k].devno)
			return true;
	}
	return false;
}

/* Refuses to go on if any mount, file or descriptor could lead outside the scratch devices. */
static int ns_safety_check(const struct ns_config *c)
{
	struct mount_entry *e;
	struct statfs sf;
	size_t n, i;
	unsigned k;
	int r = 0, fd;

	if (statfs("/proc/self/exe", &sf) < 0 || !fs_magic_is_safe((unsigned long)sf.f_type))
		return log_errno(-EPERM, "refusing to run: the init binary is not on a tmpfs");
	if (statfs("/", &sf) < 0 || (unsigned long)sf.f_type != TMPFS_MAGIC)
		return log_errno(-EPERM, "refusing to run: / is not a tmpfs");
	for (fd = 0; fd <= 2; fd++) {
		if (fstatfs(fd, &sf) < 0)
			continue;
		if (!fs_magic_is_safe((unsigned long)sf.f_type))
			return log_errno(-EPERM, "refusing to run: descriptor %d is on a "
					 "block-backed file system (0x%lx)", fd,
					 (unsigned long)sf.f_type);
	}

	r = mountinfo_read(&e, &n);
	if (r < 0)
		return log_errno(r, "cannot read /proc/self/mountinfo");
	for (i = 0; i < n; i++) {
		if (ns_mount_allowed(c, &e[i]))
			continue;
		log_err("refusing to run: mount not created by this sandbox: %s", e[i].line);
		r = -EPERM;
	}
	for (k = 0; k < c->n && r == 0; k++) {
		for (i = 0; i < n; i++)
			if (!strcmp(e[i].mountpoint, c->dev[k].mnt) &&
			    !strcmp(e[i].source, c->dev[k].node))
				break;
		if (i == n) {
			log_err("refusing to run: %s is not mounted on %s", c->dev[k].node,
				c->dev[k].mnt);
			r = -EPERM;
		}
	}
	if (r == 0)
		log_verbose("safety check passed: %zu mounts, %u scratch", n, c->n);
	mount_entries_free(e, n);
	return r;
}

static int ns_parse(int argc, char **argv, struct ns_config *c)
{
	unsigned maj, min, k;
	int i = 2;

	if (argc < 8)
		return -EINVAL;
	verbose = strchr(argv[i], 'v') != NULL;
	c->allow_frozen = strchr(argv[i++], 'a') != NULL;
	c->timeout = (unsigned)strtoul(argv[i++], NULL, 10);
	t_start = strtoull(argv[i++], NULL, 10);
	c->n = (unsigned)strtoul(argv[i++], NULL, 10);
	if (c->n > MAX_DEVICES || argc < i + 4 * (int)c->n + 2)
		return -EINVAL;
	for (k = 0; k < c->n; k++) {
		c->dev[k].node = argv[i++];
		if (sscanf(argv[i++], "%u:%u", &maj, &min) != 2)
			return -EINVAL;
		c->dev[k].devno = makedev(maj, min);
		c->dev[k].fstype = argv[i++];
		c->dev[k].mnt = argv[i++];
	}
	c->exec = argv[i++];
	c->argv = argv + i;
	return 0;
}

static void ns_noop(int sig)
{
}

static int ns_pending_stop_signal(const sigset_t *set)
{
	sigset_t pending;
	int sig;

	sigpending(&pending);
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGCHLD && sigismember(set, sig) && sigismember(&pending, sig))
			return sig;
	return 0;
}

static int ns_init_main(int argc, char **argv)
{
	struct ns_config c = { 0 };
	struct mount_entry *e = NULL;
	struct sigaction sa = { .sa_handler = ns_noop };
	enum { END_EXITED, END_TIMEOUT, END_SIGNAL } end = END_EXITED;
	int cmd_status = 0, end_sig = 0, status, r, reaped = 0, err = 0;
	uint64_t deadline = 0, t;
	bool unmount_failed = false;
	sigset_t set;
	pid_t pid, p;
	size_t n = 0, i;
	unsigned k;

	if (getpid() != 1 || ns_parse(argc, argv, &c) < 0) {
		log_err("%s is for internal use", NS_INIT_ARG);
		return EXIT_USAGE;
	}

	/* Handlers so PID 1 does not drop them; they are only ever taken by sigtimedwait(). */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	close_range(3, ~0U, 0);

	if (ns_safety_check(&c) < 0)
		return 1;

	/* Stopped while the sandbox was being set up: do not start COMMAND at all. */
	end_sig = ns_pending_stop_signal(&set);
	if (end_sig) {
		log_verbose("got signal %d during setup, not starting the command", end_sig);
		end = END_SIGNAL;
		goto teardown;
	}

	t = now_ns();
	pid = fork();
	if (pid < 0)
		return log_errno(-errno, "fork"), 1;
	if (pid == 0) {
		child_reset_signals();
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (strchr(c.exec, '/'))
			execv(c.exec, c.argv);
		else
			execvp(c.exec, c.argv);
		log_errno(-errno, "cannot run %s", c.exec);
		_exit(EXIT_CANNOT_EXEC);
	}
	log_verbose("started %s as pid %d", c.exec, (int)pid);

	if (c.timeout)
		deadline = t + (uint64_t)c.timeout * 1000000000ULL;
	for (;;) {
		struct timespec ts, *tsp = NULL;
		siginfo_t info;
		int sig;

		if (deadline) {
			uint64_t now = now_ns();

			if (now >= deadline) {
				end = END_TIMEOUT;
				break;
			}
			ts.tv_sec = (time_t)((deadline - now) / 1000000000ULL);
			ts.tv_nsec = (long)((deadline - now) % 1000000000ULL);
			tsp = &ts;
		}
		sig = sigtimedwait(&set, &info, tsp);
		if (sig < 0) {
			if (errno == EAGAIN) {
				end = END_TIMEOUT;
				break;
			}
			continue;
		}
		if (sig != SIGCHLD) {
			end = END_SIGNAL;
			end_sig = sig;
			break;
		}
		while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
			if (p == pid) {
				cmd_status = exit_status(status);
				pid = 0;
			}
		}
		if (pid == 0)
			break;
	}

teardown:
	switch (end) {
	case END_EXITED:
		log_verbose("command exited with status %d after %.1f ms", cmd_status,
			    (double)(now_ns() - t) / 1e6);
		break;
	case END_TIMEOUT:
		log_err("watchdog: timeout after %u s", c.timeout);
		break;
	case END_SIGNAL:
		log_verbose("got signal %d, stopping the command", end_sig);
		break;
	}

	/*
	 * Thaw first: a process blocked on a frozen file system cannot die.
	 * Then kill everything, thawing while we reap, then thaw once more.
	 */
	t = now_ns();
	ns_thaw_all(&c);
	kill(-1, SIGKILL);
	for (;;) {
		while ((p = waitpid(-1, &status, WNOHANG)) > 0)
			reaped++;
		if (p < 0 && errno == ECHILD)
			break;
		if (now_ns() - t > (uint64_t)REAP_TIMEOUT_MS * 1000000ULL) {
			log_err("some processes did not die, giving up on them");
			break;
		}
		ns_thaw_all(&c);
		sleep_ms(5);
	}
	ns_thaw_all(&c);
	log_verbose("killed and reaped %d process(es) in %.1f ms", reaped,
		    (double)(now_ns() - t) / 1e6);

	/* Unmount everything but / and /proc, top-most first; never lazily while frozen. */
	r = mountinfo_read(&e, &n);
	if (r < 0) {
		log_errno(r, "cannot read /proc/self/mountinfo");
		unmount_failed = true;
		n = 0;
	}
	for (i = n; i-- > 0;) {
		const char *mp = e[i].mountpoint;
		bool thawed = false;
		int tries;

		if (!strcmp(mp, "/") || !strcmp(mp, "/proc"))
			continue;
		if (fstype_is_pseudo(e[i].fstype)) {
			umount2(mp, MNT_DETACH);
			continue;
		}
		for (tries = 0; tries < 50; tries++) {
			thawed = ns_thaw(&c, mp);
			if (umount2(mp, 0) == 0)
				break;
			err = errno;
			if (err == EINVAL || err == ENOENT)
				break;
			sleep_ms(20);
		}
		if (tries < 50)
			continue;
		if (thawed && ns_thaw(&c, mp) && umount2(mp, MNT_DETACH) == 0) {
			log_verbose("%s was busy, detached it", mp);
			continue;
		}
		log_err("cannot unmount %s (%s)%s", mp, strerror(err),
			thawed ? "" : ": it may still be frozen");
		unmount_failed = true;
	}
	mount_entries_free(e, n);

	for (k = 0; k < c.n_frozen; k++) {
		if (c.allow_frozen)
			log_verbose("was left frozen (allowed): %s", c.frozen[k]);
		else
			log_err("left frozen: %s", c.frozen[k]);
	}

	switch (end) {
	case END_EXITED:
		if (c.n_frozen && !c.allow_frozen)
			r = EXIT_LEFT_FROZEN;
		else if (unmount_failed && cmd_status == 0)
			r = 1;
		else
			r = cmd_status;
		break;
	case END_TIMEOUT:
		r = EXIT_TIMEOUT;
		break;
	case END_SIGNAL:
		r = 128 + end_sig;
		break;
	}
	for (k = 0; k < c.n_frozen; k++)
		free(c.frozen[k]);
	return r;
}

/* ---- relay of stdout/stderr ------------------------------------------- */

static bool fd_needs_relay(int fd)
{
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return false;
	return !fs_magic_is_safe((unsigned long)sf.f_type);
}

static void relay_loop(int r1, int r2)
{
	struct pollfd pfd[2] = { { .fd = r1, .events = POLLIN }, { .fd = r2, .events = POLLIN } };
	int target[2] = { STDOUT_FILENO, STDERR_FILENO };
	char buf[65536];
	ssize_t n;
	int i;

	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < 2; i++) {
			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			n = read(pfd[i].fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				continue;
			}
			write_all(target[i], buf, (size_t)n);
		}
	}
	_exit(0);
}

/*
 * If stdout or stderr is a file on a block-backed file system (say "> log"
 * on the root disk), the sandbox gets a pipe instead: FIFREEZE works on any
 * descriptor, and /proc/N/fd would reach it.
 */
static pid_t relay_start(void)
{
	bool need1 = fd_needs_relay(STDOUT_FILENO), need2 = fd_needs_relay(STDERR_FILENO);
	int p1[2] = { -1, -1 }, p2[2] = { -1, -1 };
	struct stat s1, s2;
	bool shared = false;
	pid_t pid;

	if (!need1 && !need2)
		return 0;
	if (need1 && need2 && fstat(STDOUT_FILENO, &s1) == 0 && fstat(STDERR_FILENO, &s2) == 0 &&
	    s1.st_dev == s2.st_dev && s1.st_ino == s2.st_ino)
		shared = true;
	if ((need1 && pipe2(p1, O_CLOEXEC) < 0) ||
	    (need2 && !shared && pipe2(p2, O_CLOEXEC) < 0))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (p1[1] >= 0)
			close(p1[1]);
		if (p2[1] >= 0)
			close(p2[1]);
		relay_loop(p1[0], p2[0]);
	}
	if (p1[0] >= 0)
		close(p1[0]);
	if (p2[0] >= 0)
		close(p2[0]);
	if (need1)
		dup2(p1[1], STDOUT_FILENO);
	if (need2)
		dup2(shared ? p1[1] : p2[1], STDERR_FILENO);
	if (p1[1] >= 0)
		close(p1[1]);
	if (p2[1] >= 0)
		close(p2[1]);
	return pid;
}

/* ---- outer process ---------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hv-sandbox [OPTIONS] -- COMMAND [ARGS...]\n"
		"Runs COMMAND as root in a private mount and pid namespace on a tmpfs root\n"
		"whose only block-backed mounts are new scratch file systems at /mnt/fs0...\n"
		"\n"
		"  --fs LIST          file system types, cycled over the devices (default ext4)\n"
		"  --count N          number of scratch file systems (default: length of --fs)\n"
		"  --size MIB         size of each device (default %d)\n"
		"  --backend TYPE     zram or loop (default zram, loop if zram is unavailable)\n"
		"  --copy PATH        copy an executable and its libraries to /bin (repeatable)\n"
		"  --timeout SEC      kill COMMAND after SEC seconds, 0 = never (default %d)\n"
		"  --allow-frozen     do not fail when COMMAND leaves a file system frozen\n"
		"  --sysfs            mount a read-only sysfs at /sys (network interfaces for KVP)\n"
		"  --netns            a private network namespace (only lo, up): netlink groups\n"
		"                     and interfaces not shared with other runs\n"
		"  --verbose          log setup and teardown with timings\n"
		"\n"
		"Exit status: COMMAND's (128+N if killed by signal N), 3 if it left a file\n"
		"system frozen, 124 on timeout, 1 on setup errors or a failed safety check,\n"
		"2 on usage errors, 77 if the sandbox cannot be created on this machine.\n",
		DEFAULT_SIZE_MIB, DEFAULT_TIMEOUT);
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *ret)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return false;
	*ret = v;
	return true;
}

static bool fstype_valid(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len < 16 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789") == len;
}

static int parse_options(int argc, char **argv, struct options *opt)
{
	static const struct option longopts[] = {
		{ "fs", required_argument, NULL, 'f' },
		{ "count", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 's' },
		{ "backend", required_argument, NULL, 'b' },
		{ "copy", required_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 't' },
		{ "allow-frozen", no_argument, NULL, 'a' },
		{ "sysfs", no_argument, NULL, 'S' },
		{ "netns", no_argument, NULL, 'N' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "test-foreign-mount", no_argument, NULL, 'T' },
		{}
	};
	unsigned long v;
	char *save, *tok, *list;
	const char **tmp;
	int c;

	*opt = (struct options) {
		.size_mib = DEFAULT_SIZE_MIB,
		.timeout = DEFAULT_TIMEOUT,
	};
	while ((c = getopt_long(argc, argv, "+hv", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			opt->n_fs = 0;
			free(opt->fs_buf);
			list = opt->fs_buf = strdup(optarg);
			if (!list)
				return -ENOMEM;
			for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				if (!fstype_valid(tok) || opt->n_fs == MAX_DEVICES) {
					log_err("invalid --fs: %s", optarg);
					return -EINVAL;
				}
				opt->fs[opt->n_fs++] = tok;
			}
			break;
		case 'c':
			if (!parse_uint(optarg, MAX_DEVICES, &v)) {
				log_err("invalid --count (0..%d): %s", MAX_DEVICES, optarg);
				return -EINVAL;
			}
			opt->count = (unsigned)v;
			opt->count_set = true;
			break;
		case 's':
			if (!parse_uint(optarg, 1UL << 20, &v) || v == 0) {
				log_err("invalid --size: %s", optarg);
				return -EINVAL;
			}
			opt->size_mib = v;
			break;
		case 'b':
			if (!strcmp(optarg, "zram")) {
				opt->backend = BACKEND_ZRAM;
			} else if (!strcmp(optarg, "loop")) {
				opt->backend = BACKEND_LOOP;
			} else {
				log_err("invalid --backend: %s", optarg);
				return -EINVAL;
			}
			opt->backend_set = true;
			break;
		case 'C':
			tmp = realloc(opt->copy, (opt->n_copy + 1) * sizeof(*tmp));
			if (!tmp)
				return -ENOMEM;
			opt->copy = tmp;
			opt->copy[opt->n_copy++] = optarg;
			break;
		case 't':
			if (!parse_uint(optarg, 86400 * 365, &v)) {
				log_err("invalid --timeout: %s", optarg);
				return -EINVAL;
			}
			opt->timeout = (unsigned)v;
			break;
		case 'a':
			opt->allow_frozen = true;
			break;
		case 'S':
			opt->sysfs = true;
			break;
		case 'N':
			opt->netns = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'T':
			opt->test_foreign_mount = true;
			break;
		case 'h':
			usage(stdout);
			return -ECANCELED;
		default:
			return -EINVAL;
		}
	}
	if (optind >= argc) {
		log_err("no COMMAND given");
		return -EINVAL;
	}
	opt->command = argv + optind;
	if (!opt->n_fs)
		opt->fs[opt->n_fs++] = "ext4";
	if (!opt->count_set)
		opt->count = opt->n_fs;
	return 0;
}

static void options_done(struct options *opt)
{
	free(opt->fs_buf);
	free(opt->copy);
}

static int check_environment(const struct options *opt)
{
	char prog[64], path[PATH_MAX];
	unsigned i;

	if (geteuid() != 0) {
		log_err("skipped: must run as root (mount and pid namespaces, block devices)");
		return EXIT_SKIP;
	}
	if (access("/dev/fuse", R_OK | W_OK) < 0) {
		log_err("skipped: /dev/fuse is not available (%s)", strerror(errno));
		return EXIT_SKIP;
	}
	if (opt->count > 0) {
		bool zram = access(ZRAM_CONTROL "/hot_add", R_OK) == 0;
		bool loop = access("/dev/loop-control", R_OK | W_OK) == 0;

		if ((opt->backend_set && opt->backend == BACKEND_ZRAM && !zram) ||
		    (opt->backend_set && opt->backend == BACKEND_LOOP && !loop) ||
		    (!zram && !loop)) {
			log_err("skipped: cannot create block devices (%s)",
				opt->backend_set && opt->backend == BACKEND_LOOP ?
				"no /dev/loop-control" : "no zram-control or /dev/loop-control");
			return EXIT_SKIP;
		}
	}
	for (i = 0; i < opt->n_fs && i < opt->count; i++) {
		snprintf(prog, sizeof(prog), "mkfs.%s", opt->fs[i]);
		if (find_program(prog, path, sizeof(path)) < 0) {
			log_err("%s not found: cannot create %s file systems", prog, opt->fs[i]);
			return 1;
		}
	}
	return 0;
}

static int sandbox_main(const struct options *opt)
{
	struct sandbox *sb;
	int status = 1, r;
	bool cleanup_failed = false;
	unsigned i;

	sb = calloc(1, sizeof(*sb));
	if (!sb)
		return log_errno(-ENOMEM, "setup"), 1;
	sb->opt = opt;
	snprintf(sb->tmpdir, sizeof(sb->tmpdir), "/tmp/hv-sandbox.XXXXXX");
	if (!mkdtemp(sb->tmpdir)) {
		log_errno(-errno, "mkdtemp %s", sb->tmpdir);
		free(sb);
		return 1;
	}
	snprintf(sb->root, sizeof(sb->root), "%s/root", sb->tmpdir);
	log_verbose("working directory %s", sb->tmpdir);
	if (mkdir(sb->root, 0755) < 0) {
		log_errno(-errno, "mkdir %s", sb->root);
		goto out;
	}

	r = scratch_create_all(sb);
	if (r < 0)
		goto out;
	if (got_signal)
		goto out;
	r = scratch_format_all(sb);
	if (r < 0 || got_signal)
		goto out;
	log_verbose("setup done, entering the sandbox");
	status = sandbox_run(sb);
	log_verbose("sandbox exited with status %d", status);

out:
	for (i = sb->n_dev; i-- > 0;)
		if (scratch_release(sb, &sb->dev[i]) < 0)
			cleanup_failed = true;
	rmdir(sb->root);
	if (rmdir(sb->tmpdir) < 0) {
		log_errno(-errno, "cannot remove %s", sb->tmpdir);
		cleanup_failed = true;
	}
	if (got_signal && status == 1) {
		log_err("interrupted by signal %d", (int)got_signal);
		status = 128 + got_signal;
	}
	if (cleanup_failed && status == 0)
		status = 1;
	log_verbose("done");
	free(sb);
	return status;
}

int main(int argc, char **argv)
{
	struct options opt;
	int status, r;
	pid_t relay;

	if (argc > 1 && !strcmp(argv[1], NS_INIT_ARG))
		return ns_init_main(argc, argv);

	t_start = now_ns();
	r = parse_options(argc, argv, &opt);
	if (r < 0) {
		options_done(&opt);
		if (r == -ECANCELED)
			return 0;
		usage(stderr);
		return EXIT_USAGE;
	}
	status = check_environment(&opt);
	if (status != 0) {
		options_done(&opt);
		return status;
	}

	install_signal_handlers();
	relay = relay_start();
	if (relay < 0) {
		options_done(&opt);
		log_errno(relay, "cannot set up the output relay");
		return 1;
	}

	status = sandbox_main(&opt);
	options_done(&opt);

	if (relay > 0) {
		int st;

		/* Bounded: a process we could not kill may still hold the pipe. */
		close(STDOUT_FILENO);
		close(STDERR_FILENO);
		wait_pid_timeout(relay, 5000, &st);
	}
	return status;
}
