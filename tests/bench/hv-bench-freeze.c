/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hv-bench-freeze: one benchmark round of one freezing tool on the scratch
 * file systems of an hv-sandbox (/mnt/fs*), with the application stall
 * measured by writer threads. Runs ONLY inside tests/emu/hv-sandbox: it
 * refuses to run unless / is a tmpfs and every target is under /mnt/fs.
 *
 *   hv-bench-freeze TOOL DIRTY_MIB [ARGS...]
 *
 * TOOL:
 *   ours PATH | upstream PATH   the daemon at PATH through hv-emu (on PATH)
 *   ours-sock PATH | upstream-sock PATH   the same through hv-emu --transport socket:
 *                               the device is a unix socket that the daemon opens
 *                               through /bin/sockdev-shim.so (LD_PRELOAD), without
 *                               FUSE's round trips; dispatch is not seen (0)
 *   qga SOCKET                  guest-fsfreeze-freeze/thaw over qemu-ga's socket
 *   fsfreeze                    fsfreeze -f / -u per file system, one after another
 *   loop-seq                    in-process FIFREEZE loop, FITHAW loop
 *   loop-par                    FIFREEZE (and FITHAW) by one thread per fs
 *   loop-flush-par              parallel syncfs, then the loop-par freeze; FITHAW loop
 *   loop-flush-seq              parallel syncfs, then the loop-seq freeze; FITHAW loop
 *
 *   idle-ours|idle-upstream PATH  the daemon at PATH idle under hv-emu: context
 *                               switches per second (wake-ups) and resident memory
 *
 * Per round: writer threads (one per fs, 4 KiB every ~1 ms) run throughout;
 * DIRTY_MIB MiB of unsynced data is left on every fs; the tool freezes; probe
 * writes must stay blocked for 100 ms; the tool thaws; probes must complete.
 * Prints one line:
 *   RESULT tool=T n=N dirty=D freeze_ms=F thaw_ms=T dispatch_ms=D stall_ms=S flush_ms=X
 *          noop_ms=R ok=1
 * stall_ms is, at the freeze reply, the longest time any writer had been
 * blocked in one write. dispatch_ms is -1 where the tool has no dispatch,
 * else the median over the round's FREEZE and nine HOT_BACKUPs (2 ms apart,
 * before the FREEZE) of request posted to read by the daemon. noop_ms
 * (daemons only, else -1) is the median of those HOT_BACKUPs posted to
 * reply: a request that needs no work, i.e. the round trip through the
 * emulated device (hv-emu) plus the daemon's dispatch.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_FS	       64
#define MAX_GAPS       4096
#define PROBE_BLOCK_MS 100

static unsigned int n_fs;
static char mnts[MAX_FS][64];

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *msg)
{
	fprintf(stderr, "hv-bench-freeze: %s: %s\n", msg, strerror(errno));
	exit(1);
}

/* ---- writers: the application whose stall is measured ---- */

struct writer {
	pthread_t thread;
	int fd;
	int64_t gap_start[MAX_GAPS], gap_end[MAX_GAPS];
	unsigned int n_gaps;
};

static struct writer writers[MAX_FS];
static volatile int writers_stop;

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char block[4096];
	off_t off = 0;

	memset(block, 0x77, sizeof(block));
	while (!writers_stop) {
		struct timespec ms = {0, 1000000};
		int64_t t0 = now_ns(), t1;

		if (pwrite(w->fd, block, sizeof(block), off) != (ssize_t)sizeof(block))
			break;

		t1 = now_ns();
		off = (off + (off_t)sizeof(block)) % (1 << 20);
		/* Only writes that took over 0.5 ms are of interest. */
		if (t1 - t0 > 500000 && w->n_gaps < MAX_GAPS) {
			w->gap_start[w->n_gaps] = t0;
			w->gap_end[w->n_gaps] = t1;
			w->n_gaps++;
		}

		nanosleep(&ms, NULL);
	}

	return NULL;
}

static void writers_start(void)
{
	for (unsigned int i = 0; i < n_fs; i++) {
		char path[128];

		snprintf(path, sizeof(path), "%s/.bench-writer", mnts[i]);
		writers[i].fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (writers[i].fd < 0)
			die(path);

		if (pthread_create(&writers[i].thread, NULL, writer_main, &writers[i]) != 0)
			die("pthread_create");
	}
}

static void writers_stop_all(void)
{
	writers_stop = 1;
	for (unsigned int i = 0; i < n_fs; i++) {
		pthread_join(writers[i].thread, NULL);
		close(writers[i].fd);
	}
}

/* At @reply, the longest time any writer had been blocked in one write since @req. */
static double stall_ms(int64_t req, int64_t reply)
{
	int64_t worst = 0;

	for (unsigned int i = 0; i < n_fs; i++)
		for (unsigned int k = 0; k < writers[i].n_gaps; k++) {
			int64_t s = writers[i].gap_start[k], e = writers[i].gap_end[k];

			if (s >= reply || e <= req)
				continue;

			if (e > reply)
				e = reply;

			if (e - s > worst)
				worst = e - s;
		}

	return worst / 1e6;
}

/* ---- dirty data, as hv-emu's dirty:MIB does it ---- */

struct job {
	pthread_t thread;
	unsigned int i;
	unsigned long mib;
	int fd;
	int r;
	bool done;
	int64_t done_ns;
};

static void *dirty_main(void *arg)
{
	struct job *j = arg;
	static char chunk[1 << 20];
	char path[128];
	int fd;

	memset(chunk, 0x5a, sizeof(chunk));
	snprintf(path, sizeof(path), "%s/.bench-dirty", mnts[j->i]);
	unlink(path);
	/* Always a new file: closing a truncated file starts writeback. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		j->r = -errno;
		return NULL;
	}

	for (unsigned long k = 0; k < j->mib; k++)
		if (write(fd, chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk)) {
			j->r = -EIO;
			break;
		}

	close(fd);
	return NULL;
}

static void make_dirty(unsigned long mib)
{
	struct job jobs[MAX_FS] = {0};

	for (unsigned int i = 0; i < n_fs; i++) {
		jobs[i].i = i;
		jobs[i].mib = mib;
		pthread_create(&jobs[i].thread, NULL, dirty_main, &jobs[i]);
	}

	for (unsigned int i = 0; i < n_fs; i++) {
		pthread_join(jobs[i].thread, NULL);
		if (jobs[i].r < 0) {
			errno = -jobs[i].r;
			die("dirty data");
		}
	}
}

/* ---- probes: a write per fs that must block while frozen ---- */

static struct job probes[MAX_FS];

static void *probe_main(void *arg)
{
	struct job *j = arg;
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/.bench-probe", mnts[j->i]);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, "probe\n", 6) != 6)
		j->r = -errno;

	if (fd >= 0)
		close(fd);

	__atomic_store_n(&j->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* Starts the probes; true if none completed within PROBE_BLOCK_MS. */
static bool probes_blocked(void)
{
	struct timespec wait = {0, PROBE_BLOCK_MS * 1000000L};
	bool blocked = true;

	for (unsigned int i = 0; i < n_fs; i++) {
		probes[i] = (struct job){.i = i};
		pthread_create(&probes[i].thread, NULL, probe_main, &probes[i]);
	}

	nanosleep(&wait, NULL);
	for (unsigned int i = 0; i < n_fs; i++)
		if (__atomic_load_n(&probes[i].done, __ATOMIC_ACQUIRE))
			blocked = false;

	return blocked;
}

/* After the thaw: every probe completes (within 5 s) without error. */
static bool probes_released(void)
{
	bool ok = true;

	for (unsigned int i = 0; i < n_fs; i++) {
		struct timespec deadline;

		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += 5;
		if (pthread_timedjoin_np(probes[i].thread, NULL, &deadline) != 0) {
			fprintf(stderr, "probe on %s still blocked after the thaw\n", mnts[i]);
			exit(1); /* a thread is stuck: nothing sane left to report */
		}

		if (probes[i].r < 0)
			ok = false;
	}

	return ok;
}

/* ---- the in-process floors ---- */

static int fds[MAX_FS];

static void *ioctl_main(void *arg)
{
	struct job *j = arg;

	if (ioctl(fds[j->i], (unsigned long)j->mib, 0) < 0)
		j->r = -errno;

	return NULL;
}

static void *syncfs_main(void *arg)
{
	struct job *j = arg;

	syncfs(fds[j->i]);
	return NULL;
}

/* @req FIFREEZE or FITHAW on every fs; by one thread per fs if @parallel. */
static void ioctl_all(unsigned long req, bool parallel)
{
	struct job jobs[MAX_FS] = {0};

	for (unsigned int i = 0; i < n_fs; i++) {
		jobs[i].i = i;
		jobs[i].mib = req;
		if (!parallel)
			ioctl_main(&jobs[i]);
		else
			pthread_create(&jobs[i].thread, NULL, ioctl_main, &jobs[i]);
	}

	for (unsigned int i = 0; i < n_fs; i++) {
		if (parallel)
			pthread_join(jobs[i].thread, NULL);

		if (jobs[i].r < 0) {
			errno = -jobs[i].r;
			fprintf(stderr, "%s on %s: %s\n", req == FIFREEZE ? "FIFREEZE" : "FITHAW",
				mnts[i], strerror(errno));
		}
	}
}

static void syncfs_all(void)
{
	struct job jobs[MAX_FS] = {0};

	for (unsigned int i = 0; i < n_fs; i++) {
		jobs[i].i = i;
		pthread_create(&jobs[i].thread, NULL, syncfs_main, &jobs[i]);
	}

	for (unsigned int i = 0; i < n_fs; i++)
		pthread_join(jobs[i].thread, NULL);
}

/* ---- external tools ---- */

static int run(const char *const argv[])
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		die("fork");

	if (pid == 0) {
		/* Our stdout carries only the RESULT line. */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execvp(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}

	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");

	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int qga_fd = -1;

/* Sends one command line, reads one reply line; false on error replies. */
static bool qga(const char *sock, const char *cmd)
{
	char reply[4096];
	size_t len = 0;

	if (qga_fd < 0) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
		qga_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (qga_fd < 0 || connect(qga_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("connect to qemu-ga");
	}

	if (write(qga_fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd))
		die("write to qemu-ga");

	while (len < sizeof(reply) - 1) {
		ssize_t k = read(qga_fd, reply + len, 1);

		if (k <= 0)
			die("read from qemu-ga");

		if (reply[len++] == '\n')
			break;
	}

	reply[len] = '\0';
	if (strstr(reply, "\"error\"")) {
		fprintf(stderr, "qemu-ga: %s", reply);
		return false;
	}

	return true;
}

/* ---- hv-emu ---- */

#define MAX_SAMPLES 16

struct emu_times {
	double freeze_ms, thaw_ms, dispatch_ms, noop_ms;
	double disp[MAX_SAMPLES], noop[MAX_SAMPLES];
	unsigned int n_disp, n_noop;
	int64_t freeze_post, freeze_reply;
	bool ok;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The median of n values (sorts them); -1 when there are none. */
static double median(double *v, unsigned int n)
{
	if (!n)
		return -1;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Picks the requests out of hv-emu's --json file: FREEZE and THAW, and the
 * medians of the dispatch (posted to read) of every HOT_BACKUP and the
 * FREEZE, and of the HOT_BACKUP round trips.
 */
static void parse_emu_json(const char *path, struct emu_times *t)
{
	FILE *f = fopen(path, "re");
	char line[1024];
	long long t0 = 0;

	if (!f)
		die(path);

	while (fgets(line, sizeof(line), f)) {
		long long posted, rd, answered;
		const char *p;

		if ((p = strstr(line, "\"t0_monotonic_ns\":")))
			t0 = strtoll(p + 18, NULL, 10);

		if (strstr(line, "\"passed\": true") && !strstr(line, "\"step\""))
			t->ok = true;

		if (!(p = strstr(line, "\"posted_ns\":")) ||
		    sscanf(p, "\"posted_ns\": %lld, \"read_ns\": %lld, \"answered_ns\": %lld",
			   &posted, &rd, &answered) != 3)
			continue;

		if (t->n_disp < MAX_SAMPLES &&
		    (strstr(line, "\"name\": \"FREEZE\"") || strstr(line, "\"name\": \"HOT_BACKUP\"")))
			t->disp[t->n_disp++] = (rd - posted) / 1e6;

		if (strstr(line, "\"name\": \"FREEZE\"")) {
			t->freeze_ms = (answered - posted) / 1e6;
			t->freeze_post = t0 + posted;
			t->freeze_reply = t0 + answered;
		} else if (strstr(line, "\"name\": \"THAW\"")) {
			t->thaw_ms = (answered - posted) / 1e6;
		} else if (strstr(line, "\"name\": \"HOT_BACKUP\"")) {
			/* a request with no work: the round trip through hv-emu */
			if (t->n_noop < MAX_SAMPLES)
				t->noop[t->n_noop++] = (answered - posted) / 1e6;
		}
	}

	fclose(f);
	t->dispatch_ms = median(t->disp, t->n_disp);
	t->noop_ms = median(t->noop, t->n_noop);
}

/* ---- idle ---- */

/* Pss of one process (/proc/PID/smaps_rollup), 0 if unknown. */
static unsigned long pss_kib(const char *pid)
{
	unsigned long long v = 0;
	char path[300], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/smaps_rollup", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;

	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Pss: %llu", &v) == 1)
			break;

	fclose(f);
	return (unsigned long)v;
}

/*
 * Sums voluntary+involuntary context switches, VmRSS and Pss over the
 * processes named @comm. RSS counts a page shared by two of them (the guard
 * is a fork of the daemon; both map the same libraries) twice; Pss splits
 * it between the processes that map it.
 */
static void proc_sum(const char *comm, unsigned long long *switches, unsigned long *rss_kib,
		     unsigned long *pss, unsigned int *n_procs)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	*switches = 0;
	*rss_kib = 0;
	*pss = 0;
	*n_procs = 0;
	if (!d)
		die("/proc");

	while ((de = readdir(d))) {
		char path[300], line[256];
		FILE *f;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;

		snprintf(path, sizeof(path), "/proc/%s/status", de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;

		if (!fgets(line, sizeof(line), f) || strncmp(line, "Name:\t", 6) != 0 ||
		    strncmp(line + 6, comm, strlen(comm)) != 0 || line[6 + strlen(comm)] != '\n') {
			fclose(f);
			continue;
		}

		(*n_procs)++;
		*pss += pss_kib(de->d_name);
		while (fgets(line, sizeof(line), f)) {
			unsigned long long v;

			if (sscanf(line, "VmRSS: %llu", &v) == 1)
				*rss_kib += (unsigned long)v;
			else if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1 ||
				 sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
				*switches += v;
		}

		fclose(f);
	}

	closedir(d);
}

/* The daemon idles for 3 s after registering; wake-ups are counted over 2 s of it. */
static int idle(const char *tool, const char *daemon)
{
	const char *base = strrchr(daemon, '/') ? strrchr(daemon, '/') + 1 : daemon;
	const char *emu_argv[] = {"hv-emu",
				  "--quiet",
				  "--daemon",
				  daemon,
				  "--daemon-log",
				  "/tmp/daemon.log",
				  strcmp(tool, "ours") == 0 ? "--daemon-arg=--runtime-dir=/run/hv"
							    : "--daemon-arg=-n",
				  "wait-register",
				  "sleep:4000",
				  NULL};
	struct timespec settle = {1, 0}, window = {2, 0};
	unsigned long long s0, s1, g0, g1;
	unsigned long rss0, rss1, grss, pss0, pss1, gpss;
	unsigned int n0, n1, gn;
	char comm[16];
	int status;
	pid_t pid;

	snprintf(comm, sizeof(comm), "%s", base); /* the kernel keeps 15 characters */
	pid = fork();
	if (pid < 0)
		die("fork");

	if (pid == 0) {
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execvp("hv-emu", (char **)(uintptr_t)emu_argv);
		_exit(127);
	}

	nanosleep(&settle, NULL);
	proc_sum(comm, &s0, &rss0, &pss0, &n0);
	proc_sum("hv-freeze-guard", &g0, &grss, &gpss, &gn);
	nanosleep(&window, NULL);
	proc_sum(comm, &s1, &rss1, &pss1, &n1);
	/* ours forks a guard process (named hv-freeze-guard): it counts too */
	proc_sum("hv-freeze-guard", &g1, &grss, &gpss, &gn);
	s0 += g0;
	s1 += g1;
	rss1 += grss;
	pss1 += gpss;
	n1 += gn;
	n0 += gn;
	waitpid(pid, &status, 0);
	printf("IDLE tool=%s procs=%u wakeups_per_s=%.1f rss_kib=%lu pss_kib=%lu ok=%d\n", tool,
	       n1, (double)(s1 - s0) / 2.0, rss1, pss1,
	       n0 > 0 && n0 == n1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return 0;
}

/* ---- main ---- */

static void find_scratch(void)
{
	struct statfs sfs;
	glob_t g;

	if (statfs("/", &sfs) < 0 || sfs.f_type != TMPFS_MAGIC) {
		fprintf(stderr, "hv-bench-freeze: / is not a tmpfs: run me inside hv-sandbox\n");
		exit(2);
	}

	if (glob("/mnt/fs[0-9]*", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
		fprintf(stderr, "hv-bench-freeze: no /mnt/fs*: run me inside hv-sandbox\n");
		exit(2);
	}

	for (size_t i = 0; i < g.gl_pathc && n_fs < MAX_FS; i++)
		snprintf(mnts[n_fs++], sizeof(mnts[0]), "%s", g.gl_pathv[i]);

	globfree(&g);
}

int main(int argc, char **argv)
{
	const char *tool;
	unsigned long dirty;
	double freeze_ms = -1, thaw_ms = -1, dispatch_ms = -1, flush_ms = -1, noop_ms = -1;
	int64_t req = 0, reply = 0, t;
	bool ok = true;

	if (argc < 3) {
		fprintf(stderr, "usage: hv-bench-freeze TOOL DIRTY_MIB [ARGS...]\n");
		return 2;
	}

	tool = argv[1];
	dirty = strtoul(argv[2], NULL, 10);
	find_scratch();
	if (strcmp(tool, "idle-ours") == 0 || strcmp(tool, "idle-upstream") == 0)
		return argc < 4 ? 2 : idle(tool + 5, argv[3]);

	writers_start();
	make_dirty(dirty);

	if (strcmp(tool, "ours") == 0 || strcmp(tool, "upstream") == 0 ||
	    strcmp(tool, "ours-sock") == 0 || strcmp(tool, "upstream-sock") == 0) {
		bool sock = strstr(tool, "-sock") != NULL;
		struct emu_times et = {0};
		const char *emu_argv[] = {"hv-emu",
					  "--quiet",
					  "--transport",
					  sock ? "socket" : "chardev",
					  "--preload",
					  sock ? "/bin/sockdev-shim.so" : "",
					  "--daemon",
					  argv[3],
					  "--daemon-log",
					  "/tmp/daemon.log",
					  strncmp(tool, "ours", 4) == 0
					      ? "--daemon-arg=--runtime-dir=/run/hv"
					      : "--daemon-arg=-n",
					  "--json",
					  "/tmp/emu.json",
					  "wait-register",
					  /* idle first: the no-op round trip is not start-up work */
					  "sleep:50",
					  /* dispatch and no-op samples: the medians of these */
					  "hot-backup", "sleep:2", "hot-backup", "sleep:2",
					  "hot-backup", "sleep:2", "hot-backup", "sleep:2",
					  "hot-backup", "sleep:2", "hot-backup", "sleep:2",
					  "hot-backup", "sleep:2", "hot-backup", "sleep:2",
					  "hot-backup", "sleep:2",
					  "freeze",
					  "probe-frozen:100",
					  "thaw",
					  "probe-released",
					  NULL};

		if (argc < 4)
			return 2;

		unlink("/tmp/emu.json");
		if (run(emu_argv) != 0)
			ok = false;

		parse_emu_json("/tmp/emu.json", &et);
		ok = ok && et.ok;
		freeze_ms = et.freeze_ms;
		thaw_ms = et.thaw_ms;
		dispatch_ms = et.dispatch_ms;
		noop_ms = et.noop_ms;
		req = et.freeze_post;
		reply = et.freeze_reply;
	} else if (strcmp(tool, "fsfreeze") == 0 || strcmp(tool, "qga") == 0) {
		bool is_qga = strcmp(tool, "qga") == 0;

		if (is_qga && argc < 4)
			return 2;

		req = now_ns();
		if (is_qga) {
			ok = qga(argv[3], "{\"execute\":\"guest-fsfreeze-freeze\"}\n");
		} else {
			for (unsigned int i = 0; i < n_fs; i++) {
				const char *a[] = {"fsfreeze", "-f", mnts[i], NULL};

				ok = run(a) == 0 && ok;
			}
		}

		reply = now_ns();
		freeze_ms = (reply - req) / 1e6;
		ok = probes_blocked() && ok;
		t = now_ns();
		if (is_qga) {
			ok = qga(argv[3], "{\"execute\":\"guest-fsfreeze-thaw\"}\n") && ok;
		} else {
			for (unsigned int i = n_fs; i-- > 0;) {
				const char *a[] = {"fsfreeze", "-u", mnts[i], NULL};

				ok = run(a) == 0 && ok;
			}
		}

		thaw_ms = (now_ns() - t) / 1e6;
		ok = probes_released() && ok;
	} else if (strncmp(tool, "loop-", 5) == 0) {
		bool par = strcmp(tool, "loop-seq") != 0 && strcmp(tool, "loop-flush-seq") != 0;

		for (unsigned int i = 0; i < n_fs; i++) {
			fds[i] = open(mnts[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fds[i] < 0)
				die(mnts[i]);
		}

		if (strncmp(tool, "loop-flush-", 11) == 0) {
			t = now_ns();
			syncfs_all();
			flush_ms = (now_ns() - t) / 1e6;
		}

		req = now_ns();
		ioctl_all(FIFREEZE, par);
		reply = now_ns();
		freeze_ms = (reply - req) / 1e6;
		ok = probes_blocked();
		/* loop-par thaws in parallel, the others one after another (reverse). */
		t = now_ns();
		if (strcmp(tool, "loop-par") == 0) {
			ioctl_all(FITHAW, true);
		} else {
			for (unsigned int i = n_fs; i-- > 0;)
				if (ioctl(fds[i], FITHAW, 0) < 0)
					fprintf(stderr, "FITHAW %s: %s\n", mnts[i],
						strerror(errno));
		}

		thaw_ms = (now_ns() - t) / 1e6;
		ok = probes_released() && ok;
		for (unsigned int i = 0; i < n_fs; i++)
			close(fds[i]);
	} else {
		fprintf(stderr, "hv-bench-freeze: unknown tool %s\n", tool);
		return 2;
	}

	writers_stop_all();
	printf("RESULT tool=%s n=%u dirty=%lu freeze_ms=%.3f thaw_ms=%.3f dispatch_ms=%.3f "
	       "stall_ms=%.3f flush_ms=%.3f noop_ms=%.3f ok=%d\n",
	       tool, n_fs, dirty, freeze_ms, thaw_ms, dispatch_ms,
	       req && reply ? stall_ms(req, reply) : -1.0, flush_ms, noop_ms, ok ? 1 : 0);
	return ok ? 0 : 1;
}
