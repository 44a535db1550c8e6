/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hv-emu-fcopy: a scripted Hyper-V host copying files into the guest over
 * the emulated FCOPY char device of Linux <= 6.9 (tests/emu/emu-chardev.h,
 * emu_svc_fcopy), or with --transport uio over the emulated VMBus channel of
 * Linux >= 6.10 (tests/emu/emu-vmbus.h: names sent as raw UTF-16, IC
 * negotiation first; the daemon gets --transport=uio --device=emu:<dir>
 * appended), run inside hv-sandbox like hv-emu.
 *
 * Each copy step plays what Copy-VMFile makes the host and the kernel do:
 * START (the host's UTF-16 names, converted to UTF-8 as the kernel's
 * utf16s_to_utf8s() does), WRITE in 6,144-byte fragments, COMPLETE; or
 * CANCEL part-way, or after a failed WRITE (disk full). Every status is
 * checked, the guest file is read back and compared (FNV-1a 64 of the
 * whole content), and no temporary file may be left in the target
 * directory after the step.
 *
 * Steps (one argument each):
 *   wait-register[:MS]        wait for the daemon's registration (--transport uio:
 *                             its ring connection and the IC version negotiation)
 *   copy:SRC:DST[:FLAGS][=EXPECT]
 *       SRC   a file inside the sandbox, or gen/SIZE (deterministic bytes,
 *             SIZE with an optional K or M suffix, 1024-based)
 *       DST   absolute guest path; the last component is the file name
 *       FLAGS o OVER_WRITE, p CREATE_PATH, s send the directory with a
 *             trailing '/', cN CANCEL after N bytes,
 *             kN SIGKILL the daemon after N bytes, restart it, and check
 *             that nothing is left under the final name,
 *             eN shut the target's file system down after N bytes (EIO
 *             from then on; journal flushed, data not); the host CANCELs after the
 *             failed WRITE; check with remount: and expect-absent: after,
 *             (--transport uio: the daemon's ring connection must end and
 *             the channel be released before the new daemon opens it and
 *             negotiates again),
 *             rN reset the driver right after posting the WRITE at N bytes:
 *             the daemon must register again, nothing may be left
 *             (--transport uio: the host resets the channel, a rescind and
 *             a new offer, see emu_vmbus_reset()),
 *             tN freeze the target's file system before the WRITE at N bytes
 *             so that it times out (1 s), thaw, expect the daemon's late
 *             reply to be refused, CANCEL: nothing may be left (char
 *             device only: it is the 6.9 driver's timeout)
 *       EXPECT ok (default), exists, fail, full, invalid, or 0xHEX: the
 *             first non-zero status the host gets
 *   raw:HEX[=EXPECT]          a hand-made message (malformed input)
 *   expect-absent:PATH        no such file
 *   expect-no-temp:DIR        no .hv-fcopy-* file in DIR
 *   expect-mode:PATH:OCTAL    the file's permission bits
 *   remount:MNT               unmount the scratch file system MNT and mount its device
 *                             again (a reboot after an I/O error)
 *   expect-gen:PATH:SIZE      PATH holds exactly gen/SIZE
 *   kill:SIG                  signal the daemon
 *   wait-exit[:MS]            wait until the daemon has exited (--transport uio: and
 *                             its ring connection has ended)
 *   start-daemon              start it again (then wait-register)
 *   sleep:MS
 *
 * Benchmark steps (tests/bench/run-fcopy-bench.sh; with --bench every
 * completed copy prints a "B| op=fcopy ..." line: wall time START to the
 * COMPLETE reply, the daemon's CPU time in that window (all its threads,
 * /proc schedstat; user/system from /proc stat), its peak RSS (VmHWM) and
 * this host's own CPU time, so the reader sees who the bottleneck is. A
 * file SRC is then read with pread() and hashed before START and the guest
 * file after COMPLETE, both outside the timed window):
 *   make-file:PATH:SIZE       write SIZE deterministic bytes (gen/SIZE) to PATH
 *   cp:SRC:DST                run --cp (default /bin/cp) SRC DST, then fsync DST in a
 *                             child; check DST; print "B| op=cp ..." with both
 *                             children's CPU time (getrusage) and wall times
 *   rm:PATH                   unlink PATH (absent is fine)
 *   syncfs:PATH               syncfs() the file system holding PATH (untimed)
 *   pingpong:N                the floor of any one-request-at-a-time protocol on
 *                             this machine: N round trips of 4 bytes over a socket
 *                             pair to a child that polls, reads and answers, as the
 *                             daemon does per fragment; "B| op=pingpong ..." with the
 *                             child's CPU time (getrusage)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "emu-chardev.h"
#include "emu-daemon.h"
#include "emu-scratch.h"
#include "emu-util.h"
#include "emu-vmbus.h"
#include "fcopy-utf16.h"
#include "hv-fcopy.h"
#include "hv-status.h"

#define DEFAULT_DEVDIR "/dev/vmbus"
/* HV_UTIL_TIMEOUT in drivers/hv/hyperv_vmbus.h (the 6.9 driver's per-request timeout) */
#define DEFAULT_TIMEOUT_MS 30000
#define REGISTER_WAIT_MS   10000
#define TEMP_PREFIX	   ".hv-fcopy-"
/* The upstream UIO daemon's ring size (one direction, header page included). */
#define HV_UIO_RING_SIZE 0x4000

struct opts {
	const char *devdir;
	char *daemon;
	char **daemon_args;
	size_t n_daemon_args;
	uint64_t timeout_ms;
	bool uio;   /* --transport uio: the VMBus ring of Linux >= 6.10 (emu-vmbus) */
	bool bench; /* --bench: "B| " result lines, hashing outside the timed window */
	char *cp_path;
};

struct emu {
	struct opts o;
	struct emu_scratch *scratch;
	struct emu_devdir *dir;
	struct emu_chardev *dev;
	emu_vmbus *vm;
	struct emu_daemon daemon;
	char **daemon_argv;
	bool have_daemon;
	unsigned int reg_seen;
};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static bool should_abort(void *userdata)
{
	struct emu *e = userdata;

	return got_signal || (e->have_daemon && !emu_daemon_running(&e->daemon));
}

#define FAIL(...) (snprintf(why, why_len, __VA_ARGS__), -1)

static void device_event(uint64_t t_ns, const char *dev, const char *text, void *userdata)
{
	emu_tl_at(t_ns, "%-11s %s", dev, text);
}

static const char *status_name(uint32_t s)
{
	switch (s) {
	case HV_S_OK:
		return "ok";
	case HV_E_FAIL:
		return "fail";
	case HV_ERROR_ALREADY_EXISTS:
		return "exists";
	case HV_ERROR_DISK_FULL:
		return "full";
	case HV_INVALIDARG:
		return "invalid";
	case HV_ERROR_NOT_SUPPORTED:
		return "not-supported";
	default:
		return "other";
	}
}

static int parse_expect(const char *s, uint32_t *ret)
{
	static const struct {
		const char *name;
		uint32_t status;
	} names[] = {
	    {"ok", HV_S_OK},
	    {"fail", HV_E_FAIL},
	    {"exists", HV_ERROR_ALREADY_EXISTS},
	    {"full", HV_ERROR_DISK_FULL},
	    {"invalid", HV_INVALIDARG},
	    {"not-supported", HV_ERROR_NOT_SUPPORTED},
	};
	char *end;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0) {
			*ret = names[i].status;
			return 0;
		}

	if (strncmp(s, "0x", 2) == 0) {
		unsigned long v = strtoul(s + 2, &end, 16);

		if (*end == '\0' && v <= UINT32_MAX) {
			*ret = (uint32_t)v;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_size(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (*end == 'K' || *end == 'k') {
		v *= 1024;
		end++;
	} else if (*end == 'M' || *end == 'm') {
		v *= 1024 * 1024;
		end++;
	}
	if (*end)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* One post and its answer: 0 with *ret_status, or -1 with why filled. */
static int transact(struct emu *e, const void *msg, size_t len, uint32_t *ret_status, char *why,
		    size_t why_len)
{
	struct emu_req r;
	unsigned int id;
	uint32_t reply = 0;
	ssize_t n;
	int rc;

	if (e->o.uio) {
		/* one IC request on the ring; the body is the FCOPY message */
		n = emu_vmbus_request(e->vm, HV_ICMSGTYPE_FCOPY, HV_FCOPY_IC_SRV_VERSION, msg, len,
				      (int)e->o.timeout_ms, ret_status, NULL, 0, NULL);
		if (n < 0)
			return FAIL("IC request: no answer (%s)", strerror((int)-n));
		return 0;
	}

	rc = emu_chardev_post(e->dev, msg, len, e->o.timeout_ms, &id);
	if (rc < 0)
		return FAIL("cannot post: %s", strerror(-rc));

	rc = emu_chardev_wait(e->dev, id, 0, should_abort, e, &r);
	if (rc < 0)
		return FAIL("request #%u: no answer (%s)", id, strerror(-rc));

	if (r.result != EMU_REQ_OK && r.result != EMU_REQ_FAILED)
		return FAIL("request #%u (op %u): %s", id, r.op,
			    emu_req_result_to_string(r.result));

	/* the reply as the driver saw it: exactly one 4-byte int */
	n = emu_chardev_reply(e->dev, id, &reply, sizeof(reply));
	if (n != (ssize_t)sizeof(reply))
		return FAIL("request #%u: reply of %zd bytes, expected 4", id, n);
	if (reply != r.status)
		return FAIL("request #%u: reply 0x%08x but status recorded 0x%08x", id, reply,
			    r.status);

	*ret_status = r.status;
	return 0;
}

/*
 * The content check: FNV-1a's xor-multiply over 64-bit little-endian words
 * (each step a bijection, so any one changed word changes the result), the
 * tail bytes one by one. Streaming, whatever the chunk sizes.
 */
#define FNV_INIT  0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

struct hasher {
	uint64_t h;
	uint8_t tail[8];
	size_t n_tail;
};

static void hash_init(struct hasher *x)
{
	x->h = FNV_INIT;
	x->n_tail = 0;
}

static inline void hash_word(struct hasher *x, uint64_t w)
{
	x->h = (x->h ^ w) * FNV_PRIME;
	x->h ^= x->h >> 32;
}

static void hash_update(struct hasher *x, const uint8_t *p, size_t n)
{
	uint64_t w;

	while (n && x->n_tail) {
		x->tail[x->n_tail++] = *p++;
		n--;
		if (x->n_tail == 8) {
			memcpy(&w, x->tail, 8);
			hash_word(x, w);
			x->n_tail = 0;
		}
	}
	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&w, p, 8);
		hash_word(x, w);
	}
	while (n--)
		x->tail[x->n_tail++] = *p++;
}

static uint64_t hash_final(const struct hasher *x)
{
	uint64_t h = x->h;

	for (size_t i = 0; i < x->n_tail; i++)
		h = (h ^ x->tail[i]) * FNV_PRIME;
	return h;
}

/* Deterministic content: byte i of gen/SIZE, same whichever fragment asks. */
static void gen_bytes(uint64_t off, uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t x = (off + i) * 0x9e3779b97f4a7c15ULL;

		x ^= x >> 29;
		buf[i] = (uint8_t)(x >> 24);
	}
}

static int hash_file(const char *path, uint64_t *ret_hash, uint64_t *ret_size)
{
	static uint8_t buf[1 << 20];
	struct hasher x;
	uint64_t size = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return -errno;
	hash_init(&x);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		hash_update(&x, buf, (size_t)n);
		size += (uint64_t)n;
	}
	close(fd);
	if (n < 0)
		return -EIO;
	*ret_hash = hash_final(&x);
	*ret_size = size;
	return 0;
}

static int count_temps(const char *dir, char *first, size_t first_len)
{
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	for (struct dirent *de; (de = readdir(d));)
		if (strncmp(de->d_name, TEMP_PREFIX, strlen(TEMP_PREFIX)) == 0) {
			if (n++ == 0 && first)
				snprintf(first, first_len, "%s", de->d_name);
		}
	closedir(d);
	return n;
}

/*
 * The name as the guest daemon receives it: the host's UTF-16 (at most
 * W_MAX_PATH units with the terminator), converted back to UTF-8 by the
 * kernel into at most W_MAX_PATH - 1 bytes.
 */
static int host_name(const char *utf8, uint8_t field[2 * HV_FCOPY_W_MAX_PATH], bool raw, char *why,
		     size_t why_len)
{
	uint8_t utf16[2 * HV_FCOPY_W_MAX_PATH];
	char back[FCOPY_NAME_UTF8_MAX];
	size_t len = 0;
	int rc;

	rc = fcopy_utf8_to_utf16le(utf8, utf16, HV_FCOPY_W_MAX_PATH, NULL);
	if (rc < 0)
		return FAIL("'%s' cannot be sent as a W_MAX_PATH UTF-16 name: %s", utf8,
			    strerror(-rc));
	/* over the ring no kernel converts: the daemon gets the host's UTF-16 */
	if (raw) {
		memcpy(field, utf16, sizeof(utf16));
		return 0;
	}
	rc = fcopy_utf16le_to_utf8(utf16, HV_FCOPY_W_MAX_PATH, back, sizeof(back), &len, NULL);
	if (rc < 0 || len > HV_FCOPY_W_MAX_PATH - 1)
		return FAIL("'%s' is longer than the kernel's %d-byte UTF-8 name buffer", utf8,
			    HV_FCOPY_W_MAX_PATH - 1);
	memset(field, 0, 2 * HV_FCOPY_W_MAX_PATH);
	memcpy(field, back, len);
	return 0;
}

/*
 * --transport uio: the daemon's transport opens the ring (a new connection
 * once the previous daemon's is gone), then the host negotiates the IC
 * versions, as it does on every channel open.
 */
static int uio_register(struct emu *e, uint64_t ms, char *why, size_t why_len)
{
	const uint32_t fw[] = {HV_UTIL_FW_VERSION, HV_UTIL_WS2K8_FW_VERSION};
	const uint32_t srv[] = {HV_FCOPY_IC_SRV_VERSION};
	uint32_t got_fw = 0, got_srv = 0;
	int rc;

	rc = emu_vmbus_accept(e->vm, (int)ms);
	if (rc < 0)
		return FAIL("the daemon did not open the ring: %s", strerror(-rc));
	rc = emu_vmbus_negotiate(e->vm, fw, 2, srv, 1, (int)ms, &got_fw, &got_srv);
	if (rc < 0)
		return FAIL("IC negotiation failed: %s", strerror(-rc));
	emu_tl("host        IC versions agreed: framework %u.%u, service %u.%u (channel open #%u)",
	       HV_IC_VERSION_MAJOR(got_fw), HV_IC_VERSION_MINOR(got_fw),
	       HV_IC_VERSION_MAJOR(got_srv), HV_IC_VERSION_MINOR(got_srv),
	       emu_vmbus_get_stats(e->vm)->opens);
	return 0;
}

/*
 * --transport uio, after the daemon exited: its end of the ring closed, the
 * channel released (headers reset for the next open) before another daemon
 * may map it.
 */
static int uio_wait_released(struct emu *e, char *why, size_t why_len)
{
	int rc = emu_vmbus_wait_gone(e->vm, 5000);

	if (rc < 0)
		return FAIL("the daemon's ring connection did not end: %s", strerror(-rc));
	emu_tl("host        the daemon's ring connection ended; channel released (%u so far)",
	       emu_vmbus_get_stats(e->vm)->releases);
	return 0;
}

static int restart_daemon(struct emu *e, char *why, size_t why_len)
{
	unsigned int seq;
	int rc;

	if (e->o.uio) {
		rc = emu_daemon_start(&e->daemon);
		if (rc < 0)
			return FAIL("cannot start the daemon: %s", strerror(-rc));
		return uio_register(e, REGISTER_WAIT_MS, why, why_len);
	}

	seq = emu_chardev_reg_seq(e->dev);

	rc = emu_daemon_start(&e->daemon);
	if (rc < 0)
		return FAIL("cannot start the daemon: %s", strerror(-rc));
	rc = emu_chardev_wait_registered(e->dev, seq, REGISTER_WAIT_MS, should_abort, e);
	if (rc < 0)
		return FAIL("the restarted daemon did not register: %s", strerror(-rc));
	return 0;
}

/* ---- bench ------------------------------------------------------------- */

struct cpu_sample {
	uint64_t ns;	  /* on-CPU time, all threads (schedstat; else stat ticks) */
	uint64_t user_ns; /* /proc stat utime (clock ticks) */
	uint64_t sys_ns;  /* /proc stat stime */
};

static void proc_cpu(pid_t pid, struct cpu_sample *ret)
{
	uint64_t tick = EMU_NSEC_PER_SEC / (uint64_t)sysconf(_SC_CLK_TCK);
	unsigned long long ut = 0, st = 0;
	char path[64], buf[1024], *p;
	struct dirent *de;
	bool any = false;
	DIR *d;
	FILE *f;

	memset(ret, 0, sizeof(*ret));
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d && (de = readdir(d))) {
		char tp[320];
		unsigned long long ns;

		if (de->d_name[0] == '.')
			continue;
		snprintf(tp, sizeof(tp), "/proc/%d/task/%s/schedstat", (int)pid, de->d_name);
		f = fopen(tp, "re");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &ns) == 1) {
			ret->ns += ns;
			any = true;
		}
		fclose(f);
	}
	if (d)
		closedir(d);

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (f && fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2) {
		ret->user_ns = ut * tick;
		ret->sys_ns = st * tick;
	}
	if (f)
		fclose(f);
	if (!any)
		ret->ns = ret->user_ns + ret->sys_ns;
}

/* A "VmHWM:"-style line of /proc/PID/status in KiB, 0 if unknown. */
static unsigned long proc_status_kb(pid_t pid, const char *key)
{
	char path[64], line[256];
	unsigned long kb = 0;
	size_t klen = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			kb = strtoul(line + klen + 1, NULL, 10);
			break;
		}
	if (f)
		fclose(f);
	return kb;
}

static uint64_t self_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * EMU_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static pid_t daemon_pid(struct emu *e)
{
	pid_t pid;

	if (!e->have_daemon)
		return 0;
	pthread_mutex_lock(&e->daemon.lock);
	pid = e->daemon.running ? e->daemon.pid : 0;
	pthread_mutex_unlock(&e->daemon.lock);
	return pid;
}

static uint64_t tv_ns(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * EMU_NSEC_PER_SEC + (uint64_t)tv->tv_usec * 1000;
}

/* FS_IOC_SHUTDOWN (ext4's EXT4_IOC_SHUTDOWN, xfs's XFS_IOC_GOINGDOWN): _IOR('X', 125, __u32) */
#define EMU_IOC_SHUTDOWN      _IOR('X', 125, uint32_t)
#define EMU_SHUTDOWN_LOGFLUSH 1U

/* The scratch file system that holds @path (longest mount point prefix). */
static int scratch_of(const char *path, struct emu_scratch **ret_s, unsigned int *ret_i)
{
	struct emu_scratch *s = NULL;
	size_t best = 0;
	int rc = emu_scratch_load(&s);

	if (rc < 0)
		return rc;
	for (unsigned int i = 0; i < s->n; i++) {
		size_t n = strlen(s->fs[i].mnt);

		if (strncmp(path, s->fs[i].mnt, n) == 0 && (path[n] == '/' || !path[n]) &&
		    n > best && s->fs[i].dev && s->fs[i].fstype) {
			best = n;
			*ret_i = i;
		}
	}
	if (!best) {
		emu_scratch_free(s);
		return -ENOENT;
	}
	*ret_s = s;
	return 0;
}

/* A file system was shut down and not mounted again since. */
static bool fs_down;

/*
 * The file system holding @path fails like a dying disk: every later
 * read or write there gets EIO. The journal is flushed first (LOGFLUSH),
 * data blocks are not: a named temporary file created before is still
 * there after a remount, for the next start to remove.
 */
static int shutdown_fs(const char *path)
{
	struct emu_scratch *s = NULL;
	uint32_t how = EMU_SHUTDOWN_LOGFLUSH;
	unsigned int i = 0;
	int fd, rc;

	rc = scratch_of(path, &s, &i);
	if (rc < 0)
		return rc;
	fd = open(s->fs[i].mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = fd < 0 || ioctl(fd, EMU_IOC_SHUTDOWN, &how) < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	fs_down = rc == 0;
	emu_tl("host        %s shut down (I/O errors from now on): %s", s->fs[i].mnt,
	       rc ? strerror(-rc) : "ok");
	emu_scratch_free(s);
	return rc;
}

/* What a reboot does after the I/O error: unmount, mount the device again. */
static int remount_fs(const char *mnt)
{
	struct emu_scratch *s = NULL;
	unsigned int i = 0;
	int rc;

	rc = scratch_of(mnt, &s, &i);
	if (rc < 0)
		return rc;
	if (strcmp(s->fs[i].mnt, mnt) != 0)
		rc = -EINVAL;
	else if (umount2(mnt, 0) < 0 || mount(s->fs[i].dev, mnt, s->fs[i].fstype, 0, NULL) < 0)
		rc = -errno;
	else
		fs_down = false;
	emu_tl("host        %s (%s) mounted again: %s", mnt, rc == -EINVAL ? "?" : s->fs[i].dev,
	       rc ? strerror(-rc) : "ok");
	emu_scratch_free(s);
	return rc;
}

/*
 * A WRITE that meets a fault (flags rN and tN of copy:):
 *  reset: the driver is reset right after posting it (the transport torn
 *         down until the daemon reopens); the host gets a failure, the
 *         daemon must drop the copy, reopen and register again.
 *  late:  the target file system is frozen first, so the daemon's write
 *         blocks past the driver's timeout (1 s here); then it is thawed,
 *         the daemon's late reply is refused by the driver, and the host
 *         cancels.
 */
/* The file system frozen by a "t" copy until a WRITE blocks on it. */
static struct {
	struct emu_scratch *s;
	unsigned int fs;
} late_frozen;

static void late_thaw(void)
{
	if (!late_frozen.s)
		return;
	(void)emu_scratch_ioctl(late_frozen.s, late_frozen.fs, false);
	emu_tl("host        %s thawed", late_frozen.s->fs[late_frozen.fs].mnt);
	emu_scratch_free(late_frozen.s);
	late_frozen.s = NULL;
}

/*
 * --transport uio, flag rN: the host posts the WRITE, then resets the
 * channel (emu_vmbus_reset(): a rescind and a new offer); the request is
 * lost with the old channel. The daemon sees its interrupt fd end, drops
 * the copy and reopens; the host negotiates again on the new channel.
 */
static int uio_reset_write(struct emu *e, const void *msg, size_t len, char *why, size_t why_len)
{
	static uint8_t buf[HV_ICMSG_HDR_LEN + sizeof(struct hv_do_fcopy) + 8];
	int n, rc;

	n = hv_ic_build_request(buf, sizeof(buf), HV_ICMSGTYPE_FCOPY, HV_UTIL_FW_VERSION,
				HV_FCOPY_IC_SRV_VERSION, 0, msg, len);
	if (n < 0)
		return FAIL("cannot build the WRITE: %s", strerror(-n));
	rc = emu_vmbus_post(e->vm, buf, (size_t)n, UINT64_C(0x5e5e7), (int)e->o.timeout_ms, NULL);
	if (rc < 0)
		return FAIL("WRITE: cannot post: %s", strerror(-rc));
	rc = emu_vmbus_reset(e->vm);
	if (rc < 0)
		return FAIL("cannot reset the channel: %s", strerror(-rc));
	emu_tl("host        channel reset (rescind, new offer) right after posting the WRITE");

	if (uio_register(e, REGISTER_WAIT_MS, why, why_len) < 0)
		return -1;
	emu_tl("host        the daemon registered again after the reset");
	return 0;
}

/*
 * 0: the fault happened (reset, or a WRITE that timed out and whose late
 * reply was refused); 1 (late only): the WRITE was answered in time, since
 * the daemon gathers WRITEs before it writes them; the caller sends the next
 * fragment, the file system still frozen, until one blocks.
 */
static int fault_write(struct emu *e, const void *msg, size_t len, const char *dst, bool late,
		       char *why, size_t why_len)
{
	struct emu_req r;
	unsigned int id;
	uint64_t end;
	int rc;

	if (e->o.uio && late)
		/* no driver between the host and the ring times the daemon out */
		return FAIL("flag t is not supported with --transport uio");
	if (e->o.uio)
		return uio_reset_write(e, msg, len, why, why_len);
	if (late && !late_frozen.s) {
		struct emu_scratch *s = NULL;
		unsigned int fs = 0;

		rc = scratch_of(dst, &s, &fs);
		if (rc < 0)
			return FAIL("%s is on no scratch file system", dst);
		rc = emu_scratch_ioctl(s, fs, true);
		if (rc < 0) {
			snprintf(why, why_len, "FIFREEZE %s: %s", s->fs[fs].mnt, strerror(-rc));
			emu_scratch_free(s);
			return -1;
		}
		late_frozen.s = s;
		late_frozen.fs = fs;
		emu_tl("host        %s frozen: a WRITE that reaches it will block", s->fs[fs].mnt);
	}
	rc = emu_chardev_post(e->dev, msg, len, late ? 1000 : e->o.timeout_ms, &id);
	if (rc == 0 && !late)
		emu_chardev_reset(e->dev);
	if (rc == 0)
		rc = emu_chardev_wait(e->dev, id, 0, should_abort, e, &r);
	if (late && rc == 0 && r.result == EMU_REQ_OK)
		return 1;
	if (late) {
		/* thaw whatever happened: nothing may stay frozen */
		emu_sleep_ms(500);
		late_thaw();
	}
	if (rc < 0)
		return FAIL("WRITE: %s", strerror(-rc));
	if (r.result != (late ? EMU_REQ_TIMEOUT : EMU_REQ_RESET))
		return FAIL("WRITE: %s, expected %s", emu_req_result_to_string(r.result),
			    late ? "a timeout" : "a reset");
	emu_tl("host        WRITE failed towards the host as planned: %s",
	       emu_req_result_to_string(r.result));

	if (late) {
		end = emu_now_ns() + 5000 * EMU_NSEC_PER_MSEC;
		while (emu_now_ns() < end && emu_chardev_get(e->dev, id, &r) == 0 && !r.late_ns)
			emu_sleep_ms(20);
		if (!r.late_ns)
			return FAIL("no late reply from the daemon after the thaw");
		emu_tl(
		    "host        the daemon's reply came %.0f ms after the timeout and was refused",
		    (double)(r.late_ns - r.answered_ns) / 1e6);
		return 0;
	}

	rc = emu_chardev_wait_registered(e->dev, e->reg_seen, REGISTER_WAIT_MS, should_abort, e);
	if (rc < 0)
		return FAIL("the daemon did not register again after the reset: %s", strerror(-rc));
	e->reg_seen = emu_chardev_reg_seq(e->dev);
	emu_tl("host        the daemon registered again after the reset");
	return 0;
}

static int step_copy(struct emu *e, char *spec, char *why, size_t why_len)
{
	static union {
		struct hv_fcopy_hdr hdr;
		struct hv_start_fcopy start;
		struct hv_do_fcopy data;
	} m;
	char *src, *dst, *flags = NULL, *exp, *slash;
	char dir[2048], name[1024], path_sent[2050];
	uint32_t expect = HV_S_OK, status = HV_S_OK, first_bad = HV_S_OK, copy_flags = 0;
	uint64_t size = 0, cancel_at = UINT64_MAX, kill_at = UINT64_MAX, h = 0, src_hash = 0;
	uint64_t eio_at = UINT64_MAX, reset_at = UINT64_MAX, late_at = UINT64_MAX;
	bool eio = false, reset = false, late = false;
	uint64_t before_hash = 0, before_size = 0, got_hash = 0, got_size = 0, sent = 0;
	bool gen, existed, started, cancelled = false, killed = false, trailing_slash = false;
	bool hash_in_loop;
	struct cpu_sample d0 = {0}, d1 = {0};
	uint64_t t0, t1 = 0, emu0 = 0, emu1 = 0;
	struct hasher hx;
	pid_t pid = 0;
	uint8_t *map = NULL; /* a file SRC, mapped and populated before START */
	int in = -1;
	int rc;

	exp = strchr(spec, '=');
	if (exp) {
		*exp++ = '\0';
		if (parse_expect(exp, &expect) < 0)
			return FAIL("unknown expectation '%s'", exp);
	}
	src = spec;
	dst = strchr(src, ':');
	if (!dst)
		return FAIL("copy:SRC:DST[:FLAGS]");
	*dst++ = '\0';
	flags = strchr(dst, ':');
	if (flags)
		*flags++ = '\0';
	for (char *f = flags; f && *f;) {
		char *end;

		switch (*f) {
		case 'o':
			copy_flags |= HV_FCOPY_OVER_WRITE;
			f++;
			break;
		case 'p':
			copy_flags |= HV_FCOPY_CREATE_PATH;
			f++;
			break;
		case 's':
			trailing_slash = true;
			f++;
			break;
		case 'c':
		case 'e':
		case 'r':
		case 't':
		case 'k': {
			uint64_t v = strtoull(f + 1, &end, 10);

			if (end == f + 1)
				return FAIL("flag %c needs a byte count", *f);
			if (*f == 'c')
				cancel_at = v;
			else if (*f == 'e')
				eio_at = v;
			else if (*f == 'r')
				reset_at = v;
			else if (*f == 't')
				late_at = v;
			else
				kill_at = v;
			f = end;
			break;
		}
		default:
			return FAIL("unknown flag '%c'", *f);
		}
	}

	slash = strrchr(dst, '/');
	if (!slash || dst[0] != '/')
		return FAIL("DST must be an absolute path");
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - dst ? slash - dst : 1), dst);
	snprintf(name, sizeof(name), "%s", slash + 1);
	snprintf(path_sent, sizeof(path_sent), "%s%s", dir,
		 trailing_slash && strcmp(dir, "/") ? "/" : "");

	gen = strncmp(src, "gen/", 4) == 0;
	if (gen) {
		if (parse_size(src + 4, &size) < 0)
			return FAIL("bad size in '%s'", src);
	} else {
		struct stat st;

		in = open(src, O_RDONLY | O_CLOEXEC);
		if (in < 0 || fstat(in, &st) < 0) {
			rc = FAIL("cannot open %s: %m", src);
			goto fail;
		}
		size = (uint64_t)st.st_size;
		/* the host reads its file as fast as it can: no system call per fragment */
		if (size > 0) {
			map =
			    mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, in, 0);
			if (map == MAP_FAILED) {
				map = NULL;
				rc = FAIL("cannot map %s: %m", src);
				goto fail;
			}
		}
	}
	/* --bench: the host's hashing stays out of the timed window */
	hash_in_loop = gen || !e->o.bench;
	hash_init(&hx);
	if (!hash_in_loop && hash_file(src, &src_hash, &got_size) < 0) {
		rc = FAIL("cannot read %s", src);
		goto fail;
	}

	existed = hash_file(dst, &before_hash, &before_size) == 0;

	memset(&m, 0, sizeof(m));
	m.hdr.operation = HV_FCOPY_START_FILE_COPY;
	if (host_name(name, (uint8_t *)&m + offsetof(struct hv_start_fcopy, file_name), e->o.uio,
		      why, why_len) < 0 ||
	    host_name(path_sent, (uint8_t *)&m + offsetof(struct hv_start_fcopy, path_name),
		      e->o.uio, why, why_len) < 0)
		goto fail;
	m.start.copy_flags = copy_flags;
	m.start.file_size = size;

	if (e->o.bench) {
		pid = daemon_pid(e);
		proc_cpu(pid, &d0);
		emu0 = self_cpu_ns();
	}
	t0 = emu_now_ns();
	if (transact(e, &m, sizeof(m.start), &status, why, why_len) < 0)
		goto fail;
	if (status != HV_S_OK)
		first_bad = status;
	started = status == HV_S_OK;

	while (status == HV_S_OK && sent < size && !cancelled && !killed) {
		size_t n = size - sent < HV_FCOPY_DATA_FRAGMENT ? (size_t)(size - sent)
								: HV_FCOPY_DATA_FRAGMENT;

		if (sent >= cancel_at) {
			cancelled = true;
			break;
		}
		if (sent >= kill_at) {
			killed = true;
			break;
		}
		if (sent >= eio_at && !eio) {
			eio = true;
			if (shutdown_fs(dst) < 0)
				return FAIL("cannot shut down the file system of %s", dst);
		}

		memset(&m, 0, offsetof(struct hv_do_fcopy, data));
		m.hdr.operation = HV_FCOPY_WRITE_TO_FILE;
		m.data.offset = sent;
		m.data.size = (uint32_t)n;
		if (gen)
			gen_bytes(sent, m.data.data, n);
		else
			memcpy(m.data.data, map + sent, n);
		if (hash_in_loop)
			hash_update(&hx, m.data.data, n);
		if (sent >= reset_at || sent >= late_at) {
			rc = fault_write(e, &m, sizeof(m.data), dst, sent >= late_at, why, why_len);
			if (rc < 0)
				goto fail;
			if (rc == 1) { /* gathered, not written yet: the next one */
				sent += n;
				continue;
			}
			reset = sent >= reset_at;
			late = !reset;
			break;
		}
		if (transact(e, &m, sizeof(m.data), &status, why, why_len) < 0)
			goto fail;
		if (status != HV_S_OK)
			first_bad = status;
		else
			sent += n;
	}
	if (map) {
		munmap(map, (size_t)size);
		map = NULL;
	}
	if (in >= 0) {
		close(in);
		in = -1;
	}
	h = hash_in_loop ? hash_final(&hx) : src_hash;
	if (late_frozen.s) {
		late_thaw();
		return FAIL("no WRITE blocked on the frozen file system of %s", dst);
	}
	if (!cancelled && sent >= cancel_at && size > 0)
		cancelled = true;
	if (!killed && sent >= kill_at && size > 0)
		killed = true;

	if (reset || late) {
		char first[300] = "";

		if (late) {
			/* what the host does after a WRITE that timed out */
			memset(&m, 0, sizeof(m.hdr));
			m.hdr.operation = HV_FCOPY_CANCEL_FCOPY;
			if (transact(e, &m, sizeof(m.hdr), &status, why, why_len) < 0)
				goto fail;
			if (status != HV_S_OK)
				return FAIL("CANCEL after the late WRITE answered 0x%08x", status);
		}
		if (!existed && access(dst, F_OK) == 0)
			return FAIL("%s exists after the %s", dst,
				    late ? "timed-out WRITE" : "reset");
		rc = count_temps(dir, first, sizeof(first));
		if (rc != 0)
			return FAIL("%d temporary file(s) left in %s (%s)", rc, dir, first);
		emu_tl("host        nothing of the copy to %s is left after the %s", dst,
		       late ? "timed-out WRITE and CANCEL" : "driver reset");
		return 0;
	}

	if (killed) {
		int st = 0;
		char first[300] = "";

		emu_tl("host        SIGKILL to the daemon after %llu of %llu bytes",
		       (unsigned long long)sent, (unsigned long long)size);
		emu_daemon_signal(&e->daemon, SIGKILL);
		if (emu_daemon_wait_exit(&e->daemon, 5000, &st) < 0)
			return FAIL("the daemon did not die");
		if (e->o.uio && uio_wait_released(e, why, why_len) < 0)
			return -1;
		/* the driver resets on close: nothing pending */
		if (!existed && access(dst, F_OK) == 0)
			return FAIL("%s exists after the daemon was killed mid-copy", dst);
		if (restart_daemon(e, why, why_len) < 0)
			return -1;
		rc = count_temps(dir, first, sizeof(first));
		if (rc != 0)
			return FAIL("%d temporary file(s) left in %s after the restart (%s)", rc,
				    dir, first);
		if (!existed && access(dst, F_OK) == 0)
			return FAIL("%s exists after the restart", dst);
		emu_tl("host        restarted daemon left nothing of the interrupted copy");
		return 0;
	}

	if (started && (cancelled || status != HV_S_OK)) {
		/* what the host does after a failed WRITE or on its own cancel */
		memset(&m, 0, sizeof(m.hdr));
		m.hdr.operation = HV_FCOPY_CANCEL_FCOPY;
		if (transact(e, &m, sizeof(m.hdr), &status, why, why_len) < 0)
			goto fail;
		if (status != HV_S_OK)
			return FAIL("CANCEL answered 0x%08x", status);
		emu_tl("host        CANCEL after %llu of %llu bytes", (unsigned long long)sent,
		       (unsigned long long)size);
	} else if (started) {
		memset(&m, 0, sizeof(m.hdr));
		m.hdr.operation = HV_FCOPY_COMPLETE_FCOPY;
		if (transact(e, &m, sizeof(m.hdr), &status, why, why_len) < 0)
			goto fail;
		t1 = emu_now_ns();
		if (e->o.bench) {
			emu1 = self_cpu_ns();
			proc_cpu(pid, &d1);
		}
		if (status != HV_S_OK)
			first_bad = status;
	}

	if (first_bad != expect)
		return FAIL("status 0x%08x (%s), expected 0x%08x (%s)", first_bad,
			    status_name(first_bad), expect, status_name(expect));

	if (eio) {
		/* nothing can be read there now: remount, then expect-absent / expect-no-temp */
		emu_tl("host        %s: status %s after the I/O error at %llu bytes, as expected",
		       dst, status_name(first_bad), (unsigned long long)sent);
		return 0;
	}

	rc = count_temps(dir, NULL, 0);
	if (rc == -EIO && fs_down) {
		/* a file system shut down by an eN copy: checked after remount: */
		emu_tl("host        %s: status %s as expected; %s unreadable (shut down), not "
		       "checked",
		       dst, status_name(first_bad), dir);
		return 0;
	}
	if (rc != 0)
		return FAIL("%d temporary file(s) left in %s", rc, dir);

	if (first_bad == HV_S_OK && !cancelled) {
		double ms = emu_ms(t0, t1);
		char irq_text[128] = "";

		if (e->vm) {
			const emu_vmbus_stats *st = emu_vmbus_get_stats(e->vm);

			snprintf(irq_text, sizeof(irq_text),
				 " interrupts=%u coalesced=%u guest_signals=%u", st->interrupts,
				 st->interrupts_coalesced, st->guest_signals);
		}

		if (hash_file(dst, &got_hash, &got_size) < 0)
			return FAIL("%s missing after COMPLETE", dst);
		if (got_size != size || got_hash != h)
			return FAIL("%s: %llu bytes, hash %016llx; sent %llu bytes, hash %016llx",
				    dst, (unsigned long long)got_size, (unsigned long long)got_hash,
				    (unsigned long long)size, (unsigned long long)h);
		emu_tl(
		    "host        copied %llu bytes to %s in %.1f ms (%.1f MiB/s), content verified",
		    (unsigned long long)size, dst, ms,
		    ms > 0 ? (double)size / 1048576.0 / (ms / 1000.0) : 0.0);
		if (e->o.bench)
			emu_tl_raw(
			    true,
			    "B| op=fcopy transport=%s size=%llu wall_ns=%llu cpu_ns=%llu "
			    "user_ns=%llu sys_ns=%llu hwm_kb=%lu emu_cpu_ns=%llu verified=1%s",
			    e->o.uio ? "uio" : "chardev", (unsigned long long)size,
			    (unsigned long long)(t1 - t0), (unsigned long long)(d1.ns - d0.ns),
			    (unsigned long long)(d1.user_ns - d0.user_ns),
			    (unsigned long long)(d1.sys_ns - d0.sys_ns),
			    proc_status_kb(pid, "VmHWM"), (unsigned long long)(emu1 - emu0),
			    irq_text);
		return 0;
	}

	/* refused or cancelled: what was there is untouched, nothing new appeared */
	if (existed) {
		if (hash_file(dst, &got_hash, &got_size) < 0 || got_hash != before_hash ||
		    got_size != before_size)
			return FAIL("%s changed although the copy did not complete", dst);
	} else if (access(dst, F_OK) == 0) {
		return FAIL("%s exists although the copy did not complete", dst);
	}
	emu_tl("host        %s: status %s as expected, target %s", dst, status_name(first_bad),
	       existed ? "unchanged" : "absent");
	return 0;
fail:
	late_thaw(); /* nothing may stay frozen */
	if (map)
		munmap(map, (size_t)size);
	if (in >= 0)
		close(in);
	return -1;
}

static int step_raw(struct emu *e, char *spec, char *why, size_t why_len)
{
	uint32_t expect = HV_INVALIDARG, status = 0;
	char *exp = strchr(spec, '=');
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	if (exp) {
		*exp++ = '\0';
		if (parse_expect(exp, &expect) < 0)
			return FAIL("unknown expectation '%s'", exp);
	}
	if (emu_parse_hex(spec, &buf, &len) < 0)
		return FAIL("bad hex '%s'", spec);
	rc = transact(e, buf, len, &status, why, why_len);
	free(buf);
	if (rc < 0)
		return -1;
	if (status != expect)
		return FAIL("status 0x%08x, expected 0x%08x", status, expect);
	return 0;
}

static int step_make_file(char *arg, char *why, size_t why_len)
{
	static uint8_t buf[1 << 20];
	char *colon = strrchr(arg, ':');
	uint64_t size, off = 0;
	int fd;

	if (!colon || parse_size(colon + 1, &size) < 0)
		return FAIL("make-file:PATH:SIZE");
	*colon = '\0';
	fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return FAIL("cannot create %s: %m", arg);
	while (off < size) {
		size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);

		gen_bytes(off, buf, n);
		if (write(fd, buf, n) != (ssize_t)n) {
			close(fd);
			return FAIL("cannot write %s: %m", arg);
		}
		off += n;
	}
	if (close(fd) < 0)
		return FAIL("cannot write %s: %m", arg);
	return 0;
}

/* Runs argv (a child, waited for with its rusage): 0, or -1 with why set. */
static int run_child(char *const argv[], const char *fsync_path, struct rusage *ru,
		     uint64_t *ret_wall_ns, char *why, size_t why_len)
{
	uint64_t t0 = emu_now_ns();
	int st = 0;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return FAIL("fork: %m");
	if (pid == 0) {
		if (fsync_path) {
			/* what sync(1) FILE does: the copy's data on disk */
			int fd = open(fsync_path, O_RDONLY | O_CLOEXEC);

			_exit(fd >= 0 && fsync(fd) == 0 ? 0 : 1);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	if (wait4(pid, &st, 0, ru) < 0)
		return FAIL("wait4: %m");
	*ret_wall_ns = emu_now_ns() - t0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return FAIL("%s %s failed (wait status 0x%x)", fsync_path ? "fsync of" : argv[0],
			    fsync_path ? fsync_path : argv[1], st);
	return 0;
}

/* cp:SRC:DST, the reference the daemon is measured against (tests/bench). */
static int step_cp(struct emu *e, char *arg, char *why, size_t why_len)
{
	char *dst = strchr(arg, ':');
	uint64_t src_hash, src_size, got_hash, got_size, cp_ns, sync_ns;
	struct rusage cp_ru, sync_ru;
	char *argv[] = {e->o.cp_path, arg, NULL, NULL};

	if (!dst)
		return FAIL("cp:SRC:DST");
	*dst++ = '\0';
	if (hash_file(arg, &src_hash, &src_size) < 0)
		return FAIL("cannot read %s", arg);

	argv[2] = dst;
	if (run_child(argv, NULL, &cp_ru, &cp_ns, why, why_len) < 0 ||
	    run_child(argv, dst, &sync_ru, &sync_ns, why, why_len) < 0)
		return -1;
	if (hash_file(dst, &got_hash, &got_size) < 0)
		return FAIL("%s missing after cp", dst);
	if (got_size != src_size || got_hash != src_hash)
		return FAIL("%s: %llu bytes, hash %016llx; %s has %llu bytes, hash %016llx", dst,
			    (unsigned long long)got_size, (unsigned long long)got_hash, arg,
			    (unsigned long long)src_size, (unsigned long long)src_hash);
	emu_tl("host        cp %s %s: %.1f ms, fsync %.1f ms, content verified", arg, dst,
	       emu_ms(0, cp_ns), emu_ms(0, sync_ns));
	emu_tl_raw(true,
		   "B| op=cp size=%llu wall_ns=%llu cpu_ns=%llu user_ns=%llu sys_ns=%llu "
		   "maxrss_kb=%ld sync_wall_ns=%llu sync_cpu_ns=%llu verified=1",
		   (unsigned long long)src_size, (unsigned long long)cp_ns,
		   (unsigned long long)(tv_ns(&cp_ru.ru_utime) + tv_ns(&cp_ru.ru_stime)),
		   (unsigned long long)tv_ns(&cp_ru.ru_utime),
		   (unsigned long long)tv_ns(&cp_ru.ru_stime), cp_ru.ru_maxrss,
		   (unsigned long long)sync_ns,
		   (unsigned long long)(tv_ns(&sync_ru.ru_utime) + tv_ns(&sync_ru.ru_stime)));
	return 0;
}

/* pingpong:N (see the top of the file) */
static int step_pingpong(char *arg, char *why, size_t why_len)
{
	uint64_t n, t0, wall;
	struct rusage ru;
	int sv[2], st = 0;
	int32_t x = 1;
	pid_t pid;

	if (emu_parse_u64(arg, &n) < 0 || n == 0)
		return FAIL("pingpong:N");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return FAIL("socketpair: %m");
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return FAIL("fork: %m");
	}
	if (pid == 0) {
		struct pollfd p = {.fd = sv[1], .events = POLLIN};
		int32_t y;

		close(sv[0]);
		for (uint64_t i = 0; i < n; i++)
			if (poll(&p, 1, -1) != 1 || read(sv[1], &y, sizeof(y)) != sizeof(y) ||
			    write(sv[1], &y, sizeof(y)) != sizeof(y))
				_exit(1);
		_exit(0);
	}
	close(sv[1]);
	t0 = emu_now_ns();
	for (uint64_t i = 0; i < n; i++)
		if (write(sv[0], &x, sizeof(x)) != sizeof(x) ||
		    read(sv[0], &x, sizeof(x)) != sizeof(x))
			break;
	wall = emu_now_ns() - t0;
	close(sv[0]);
	if (wait4(pid, &st, 0, &ru) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return FAIL("the ping-pong child failed");
	emu_tl_raw(true, "B| op=pingpong n=%llu wall_ns=%llu cpu_ns=%llu", (unsigned long long)n,
		   (unsigned long long)wall,
		   (unsigned long long)(tv_ns(&ru.ru_utime) + tv_ns(&ru.ru_stime)));
	return 0;
}

static int run_step(struct emu *e, const char *word, char *why, size_t why_len)
{
	char *s = strdup(word);
	char *arg = strchr(s, ':');
	uint64_t v = 0;
	int rc = 0, sig;

	if (arg)
		*arg++ = '\0';

	if (strcmp(s, "wait-register") == 0 && e->o.uio) {
		v = REGISTER_WAIT_MS;
		if (arg && emu_parse_u64(arg, &v) < 0)
			rc = FAIL("bad milliseconds");
		else
			rc = uio_register(e, v, why, why_len);
	} else if (strcmp(s, "wait-register") == 0) {
		v = REGISTER_WAIT_MS;
		if (arg && emu_parse_u64(arg, &v) < 0)
			rc = FAIL("bad milliseconds");
		else if ((rc = emu_chardev_wait_registered(e->dev, e->reg_seen, v, should_abort,
							   e)) < 0)
			rc = FAIL("no registration: %s", strerror(-rc));
		else
			e->reg_seen = emu_chardev_reg_seq(e->dev);
	} else if (strcmp(s, "copy") == 0 && arg) {
		rc = step_copy(e, arg, why, why_len);
		if (!e->o.uio)
			e->reg_seen = emu_chardev_reg_seq(e->dev);
	} else if (strcmp(s, "raw") == 0 && arg) {
		rc = step_raw(e, arg, why, why_len);
	} else if (strcmp(s, "remount") == 0 && arg) {
		rc = remount_fs(arg);
		if (rc < 0)
			rc = FAIL("remount %s: %s", arg, strerror(-rc));
	} else if (strcmp(s, "expect-gen") == 0 && arg && strrchr(arg, ':')) {
		char *sz = strrchr(arg, ':');
		uint64_t want = 0, got_h = 0, got_n = 0;
		static uint8_t chunk[65536];
		struct hasher gx;

		*sz++ = '\0';
		if (parse_size(sz, &want) < 0)
			rc = FAIL("bad size");
		else if (hash_file(arg, &got_h, &got_n) < 0)
			rc = FAIL("%s: %m", arg);
		else {
			hash_init(&gx);
			for (uint64_t off = 0; off < want; off += sizeof(chunk)) {
				size_t n = want - off < sizeof(chunk) ? (size_t)(want - off)
								      : sizeof(chunk);

				gen_bytes(off, chunk, n);
				hash_update(&gx, chunk, n);
			}
			if (got_n != want || got_h != hash_final(&gx))
				rc = FAIL("%s: %llu bytes, not gen/%llu", arg,
					  (unsigned long long)got_n, (unsigned long long)want);
		}
	} else if (strcmp(s, "make-file") == 0 && arg) {
		rc = step_make_file(arg, why, why_len);
	} else if (strcmp(s, "cp") == 0 && arg) {
		rc = step_cp(e, arg, why, why_len);
	} else if (strcmp(s, "pingpong") == 0 && arg) {
		rc = step_pingpong(arg, why, why_len);
	} else if (strcmp(s, "rm") == 0 && arg) {
		if (unlink(arg) < 0 && errno != ENOENT)
			rc = FAIL("cannot remove %s: %m", arg);
	} else if (strcmp(s, "syncfs") == 0 && arg) {
		int fd = open(arg, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || syncfs(fd) < 0)
			rc = FAIL("syncfs %s: %m", arg);
		if (fd >= 0)
			close(fd);
	} else if (strcmp(s, "expect-absent") == 0 && arg) {
		if (access(arg, F_OK) == 0)
			rc = FAIL("%s exists", arg);
	} else if (strcmp(s, "expect-no-temp") == 0 && arg) {
		char first[300] = "";
		int n = count_temps(arg, first, sizeof(first));

		if (n != 0)
			rc = FAIL("%d temporary file(s) in %s (%s)", n, arg, first);
	} else if (strcmp(s, "expect-mode") == 0 && arg && strrchr(arg, ':')) {
		char *mode = strrchr(arg, ':');
		struct stat st;

		*mode++ = '\0';
		if (lstat(arg, &st) < 0)
			rc = FAIL("%s: %m", arg);
		else if ((unsigned long)(st.st_mode & 07777) != strtoul(mode, NULL, 8))
			rc = FAIL("%s has mode %04o, expected %s", arg,
				  (unsigned int)(st.st_mode & 07777), mode);
	} else if (strcmp(s, "kill") == 0 && arg) {
		if (emu_parse_signal(arg, &sig) < 0)
			rc = FAIL("bad signal");
		else
			emu_daemon_signal(&e->daemon, sig);
	} else if (strcmp(s, "wait-exit") == 0) {
		int st = 0;

		v = 5000;
		if (arg && emu_parse_u64(arg, &v) < 0)
			rc = FAIL("bad milliseconds");
		else if (emu_daemon_wait_exit(&e->daemon, v, &st) < 0)
			rc = FAIL("the daemon did not exit within %llu ms", (unsigned long long)v);
		else {
			char desc[64];

			emu_daemon_describe(st, desc, sizeof(desc));
			emu_tl("host        daemon %s", desc);
			if (e->o.uio)
				rc = uio_wait_released(e, why, why_len);
		}
	} else if (strcmp(s, "start-daemon") == 0) {
		/* the previous daemon's ring connection must be gone before the next maps it */
		if (e->o.uio && emu_vmbus_connected(e->vm) && !emu_daemon_running(&e->daemon))
			rc = uio_wait_released(e, why, why_len);
		if (rc == 0)
			rc = emu_daemon_start(&e->daemon);
		if (rc < 0)
			rc = FAIL("cannot start: %s", strerror(-rc));
	} else if (strcmp(s, "sleep") == 0 && arg && emu_parse_u64(arg, &v) == 0) {
		emu_sleep_ms(v);
	} else {
		rc = FAIL("unknown step");
	}

	free(s);
	return rc < 0 ? -1 : 0;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: hv-emu-fcopy [--devdir DIR] [--daemon PATH [--daemon-arg ARG]...]\n"
	    "                    [--timeout MS] [--daemon-preload SO] [--transport chardev|uio]\n"
	    "                    [--bench] [--cp PATH]\n"
	    "                    STEP...\n"
	    "steps: wait-register[:MS] copy:SRC:DST[:FLAGS][=EXPECT] raw:HEX[=EXPECT]\n"
	    "       expect-absent:PATH expect-no-temp:DIR expect-mode:PATH:OCTAL\n"
	    "       remount:MNT expect-gen:PATH:SIZE\n"
	    "       kill:SIG wait-exit[:MS]\n"
	    "       make-file:PATH:SIZE cp:SRC:DST rm:PATH syncfs:PATH pingpong:N (--bench)\n"
	    "       start-daemon sleep:MS (see the comment at the top of hv-emu-fcopy.c)\n");
}

/* HV_EMU_CONFIG (as for hv-emu): written to /tmp/test.conf inside the sandbox. */
static int write_test_config(void)
{
	const char *text = getenv("HV_EMU_CONFIG");
	FILE *f;

	if (!text || !*text)
		return 0;
	f = fopen("/tmp/test.conf", "we");
	if (!f)
		return -errno;
	for (const char *p = text; *p; p++) {
		if (p[0] == '\\' && p[1] == 'n') {
			fputc('\n', f);
			p++;
		} else {
			fputc(*p, f);
		}
	}
	return fclose(f) == 0 ? 0 : -errno;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"devdir", required_argument, NULL, 'D'},
	    {"daemon", required_argument, NULL, 'd'},
	    {"daemon-arg", required_argument, NULL, 'a'},
	    {"timeout", required_argument, NULL, 't'},
	    {"daemon-preload", required_argument, NULL, 'p'},
	    {"transport", required_argument, NULL, 'T'},
	    {"bench", no_argument, NULL, 'B'},
	    {"cp", required_argument, NULL, 'C'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static char default_cp[] = "/bin/cp";
	struct emu e = {.o = {.devdir = DEFAULT_DEVDIR,
			      .timeout_ms = DEFAULT_TIMEOUT_MS,
			      .cp_path = default_cp}};
	struct sigaction sa = {.sa_handler = on_signal};
	char why[4096], reason[2048];
	char *uio_device_arg = NULL;
	char uio_transport_arg[] = "--transport=uio";
	int c, rc, exit_code = EXIT_SUCCESS;
	size_t n_passed = 0, n_steps;

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) >= 0) {
		switch (c) {
		case 'D':
			e.o.devdir = optarg;
			break;
		case 'd':
			e.o.daemon = optarg;
			break;
		case 'a':
			e.o.daemon_args =
			    realloc(e.o.daemon_args, (e.o.n_daemon_args + 1) * sizeof(char *));
			if (!e.o.daemon_args)
				return 2;
			e.o.daemon_args[e.o.n_daemon_args++] = optarg;
			break;
		case 't':
			if (emu_parse_u64(optarg, &e.o.timeout_ms) < 0)
				return 2;
			break;
		case 'T':
			if (strcmp(optarg, "uio") == 0)
				e.o.uio = true;
			else if (strcmp(optarg, "chardev") != 0) {
				usage(stderr);
				return 2;
			}
			break;
		case 'B':
			e.o.bench = true;
			break;
		case 'C':
			e.o.cp_path = optarg;
			break;
		case 'p':
			/* inherited by the daemon (posix_spawn with environ) only */
			setenv("LD_PRELOAD", optarg, 1);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	n_steps = (size_t)(argc - optind);

	emu_timeline_init(false, stdout);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = emu_scratch_load(&e.scratch);
	if (rc < 0) {
		fprintf(stderr, "hv-emu-fcopy: cannot read the scratch list: %s\n", strerror(-rc));
		return 2;
	}

	if (e.o.daemon) {
		/* the daemon writes where the host says: only ever inside the sandbox */
		if (emu_sandbox_check(e.scratch, reason, sizeof(reason)) < 0) {
			fprintf(stderr,
				"hv-emu-fcopy: refusing to start a daemon outside hv-sandbox: %s\n",
				reason);
			e.scratch = emu_scratch_free(e.scratch);
			return 2;
		}
		e.daemon_argv = calloc(e.o.n_daemon_args + 4, sizeof(char *));
		if (!e.daemon_argv)
			return 2;
		e.daemon_argv[0] = e.o.daemon;
		for (size_t i = 0; i < e.o.n_daemon_args; i++)
			e.daemon_argv[i + 1] = e.o.daemon_args[i];
		emu_daemon_init(&e.daemon, e.daemon_argv, NULL, NULL, NULL);
		e.have_daemon = true;
	}

	if (e.o.uio) {
		const char *vmdir = "/tmp/hv-emu-fcopy-vmbus";

		if (mkdir(vmdir, 0700) < 0 && errno != EEXIST) {
			fprintf(stderr, "hv-emu-fcopy: cannot create %s: %m\n", vmdir);
			exit_code = 2;
			goto out;
		}
		rc = emu_vmbus_new(vmdir, HV_UIO_RING_SIZE, &e.vm);
		if (rc < 0) {
			fprintf(
			    stderr,
			    "hv-emu-fcopy: cannot create the emulated VMBus channel in %s: %s\n",
			    vmdir, strerror(-rc));
			exit_code = 2;
			goto out;
		}
		if (e.have_daemon) {
			size_t n = e.o.n_daemon_args + 1;

			e.daemon_argv[n++] = uio_transport_arg;
			uio_device_arg = malloc(strlen(emu_vmbus_device(e.vm)) + 16);
			if (!uio_device_arg)
				return 2;
			sprintf(uio_device_arg, "--device=%s", emu_vmbus_device(e.vm));
			e.daemon_argv[n] = uio_device_arg;
		}
		emu_tl("host        %s ready (emulated VMBus channel); request timeout %llu ms",
		       emu_vmbus_device(e.vm), (unsigned long long)e.o.timeout_ms);
	} else {
		rc = emu_devdir_new(e.o.devdir, device_event, &e, &e.dir);
		if (rc == 0)
			rc = emu_devdir_add(e.dir, &emu_svc_fcopy, &e.dev);
		if (rc == 0)
			rc = emu_devdir_start(e.dir);
	}
	if (rc < 0) {
		fprintf(stderr, "hv-emu-fcopy: cannot mount the FUSE device directory at %s: %s\n",
			e.o.devdir, strerror(-rc));
		exit_code = 2;
		goto out;
	}
	if (!e.o.uio)
		emu_tl("host        %s/%s ready (FUSE); request timeout %llu ms", e.o.devdir,
		       emu_svc_fcopy.name, (unsigned long long)e.o.timeout_ms);

	if (e.have_daemon) {
		rc = write_test_config();
		if (rc == 0)
			rc = emu_daemon_start(&e.daemon);
		if (rc < 0) {
			fprintf(stderr, "hv-emu-fcopy: cannot start %s: %s\n", e.o.daemon,
				strerror(-rc));
			exit_code = 2;
			goto out;
		}
	}

	for (size_t i = 0; i < n_steps && !got_signal; i++) {
		const char *word = argv[optind + (int)i];

		emu_tl("step %-6zu %s", i + 1, word);
		why[0] = '\0';
		if (run_step(&e, word, why, sizeof(why)) < 0) {
			emu_tl_always(0, "FAIL        step %zu (%s): %s", i + 1, word, why);
			exit_code = EXIT_FAILURE;
			break;
		}
		n_passed++;
	}
	if (got_signal)
		exit_code = EXIT_FAILURE;

	if (e.have_daemon) {
		if (emu_daemon_stop(&e.daemon, 5000, 5000) < 0)
			emu_tl_always(0, "WARNING     the daemon did not exit even after SIGKILL");
		pthread_mutex_lock(&e.daemon.lock);
		if (e.daemon.unexpected) {
			emu_tl_always(0, "FAIL        %s", e.daemon.unexpected_desc);
			exit_code = EXIT_FAILURE;
		}
		pthread_mutex_unlock(&e.daemon.lock);
	}

	if (exit_code == EXIT_SUCCESS)
		emu_tl_raw(true, "hv-emu-fcopy: PASS (%zu steps)", n_steps);
	else
		emu_tl_raw(true, "hv-emu-fcopy: FAIL (%zu of %zu steps passed)", n_passed, n_steps);
out:
	e.dir = emu_devdir_free(e.dir);
	if (e.vm)
		emu_vmbus_free(e.vm);
	free(uio_device_arg);
	if (e.have_daemon)
		emu_daemon_done(&e.daemon);
	e.scratch = emu_scratch_free(e.scratch);
	free(e.daemon_argv);
	free(e.o.daemon_args);
	return exit_code;
}
