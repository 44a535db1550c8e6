/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hv-emu: the emulated Hyper-V host and kernel VSS driver.
 *
 * Mounts the FUSE device directory (/dev/vmbus/hv_vss), optionally starts
 * the daemon under test, runs a script of host steps, prints a timeline
 * and exits 0 when every expectation held, 1 when one did not, 2 on usage
 * or setup errors. See usage() for the steps.
 *
 * It freezes nothing itself except on foreign-freeze steps, and it starts
 * a daemon or freezes only after checking that every block-backed mount it
 * can see is one of the sandbox's scratch file systems (hv-sandbox).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu-chardev.h"
#include "emu-daemon.h"
#include "emu-netlink.h"
#include "emu-scratch.h"
#include "emu-util.h"
#include "hv-status.h"
#include "hv-vss.h"

#define DEFAULT_DEVDIR "/dev/vmbus"
/* the driver's timeouts: VSS_FREEZE_TIMEOUT 15 min, HV_UTIL_TIMEOUT 30 s */
#define DEFAULT_TIMEOUT_FREEZE_MS (15ULL * 60 * 1000)
#define DEFAULT_TIMEOUT_MS (30ULL * 1000)
#define STOP_TERM_MS 5000
#define STOP_KILL_MS 5000
#define EXIT_THAW_WAIT_MS 2000

enum step_kind {
	STEP_WAIT_REGISTER,
	STEP_EXPECT_REGISTERED,
	STEP_HOT_BACKUP,
	STEP_FREEZE,
	STEP_THAW,
	STEP_OP,
	STEP_RAW,
	STEP_FAKE_THAW,
	STEP_PROBE_WRITABLE,
	STEP_PROBE_FROZEN,
	STEP_PROBE_RELEASED,
	STEP_EXPECT_WRITABLE,
	STEP_SLEEP,
	STEP_DIRTY,
	STEP_KILL,
	STEP_KILL_GROUP,
	STEP_WAIT_EXIT,
	STEP_START_DAEMON,
	STEP_RESET,
	STEP_FOREIGN_FREEZE,
	STEP_FOREIGN_THAW,
	STEP_RUN,
	STEP_NL_FOREIGN,
	STEP_EXPECT_LATE_REPLY,
	_STEP_KIND_MAX,
};

enum step_arg {
	ARG_NONE,
	ARG_MS_OPT, /* [:MS] */
	ARG_MS,     /* :MS */
	ARG_OP,     /* :N */
	ARG_HEX,    /* :HEX */
	ARG_ARGV,   /* :PROGRAM[,ARG...] */
	ARG_SIG,    /* :SIGNAME */
	ARG_INDEX,  /* :I */
};

enum expect {
	EXPECT_NONE,
	EXPECT_OK,
	EXPECT_FAIL,
	EXPECT_TIMEOUT,
	EXPECT_ANY,
	EXPECT_CODE,   /* wait-exit=N */
	EXPECT_SIGNAL, /* wait-exit=SIGNAME */
};

/* which expectations a step accepts */
#define X_REQ (1U << EXPECT_OK | 1U << EXPECT_FAIL | 1U << EXPECT_TIMEOUT | 1U << EXPECT_ANY)
#define X_OKFAIL (1U << EXPECT_OK | 1U << EXPECT_FAIL | 1U << EXPECT_ANY)
#define X_EXIT (1U << EXPECT_ANY | 1U << EXPECT_CODE | 1U << EXPECT_SIGNAL)

static const struct step_def {
	const char *name;
	enum step_kind kind;
	enum step_arg arg;
	uint64_t def_ms;
	unsigned int expects;
	enum expect def_expect;
} step_defs[_STEP_KIND_MAX] = {
	{ "wait-register", STEP_WAIT_REGISTER, ARG_MS_OPT, 10000, 0, EXPECT_NONE },
	{ "expect-registered", STEP_EXPECT_REGISTERED, ARG_MS_OPT, 10000, 0, EXPECT_NONE },
	{ "hot-backup", STEP_HOT_BACKUP, ARG_NONE, 0, X_REQ, EXPECT_OK },
	{ "freeze", STEP_FREEZE, ARG_NONE, 0, X_REQ, EXPECT_OK },
	{ "thaw", STEP_THAW, ARG_NONE, 0, X_REQ, EXPECT_OK },
	{ "op", STEP_OP, ARG_OP, 0, X_REQ, EXPECT_OK },
	{ "raw", STEP_RAW, ARG_HEX, 0, X_REQ, EXPECT_OK },
	{ "fake-thaw", STEP_FAKE_THAW, ARG_NONE, 0, 0, EXPECT_NONE },
	{ "probe-writable", STEP_PROBE_WRITABLE, ARG_NONE, 2000, 0, EXPECT_NONE },
	{ "probe-frozen", STEP_PROBE_FROZEN, ARG_MS_OPT, 200, 0, EXPECT_NONE },
	{ "probe-released", STEP_PROBE_RELEASED, ARG_MS_OPT, 5000, 0, EXPECT_NONE },
	{ "expect-writable", STEP_EXPECT_WRITABLE, ARG_MS_OPT, 3000, 0, EXPECT_NONE },
	{ "sleep", STEP_SLEEP, ARG_MS, 0, 0, EXPECT_NONE },
	{ "dirty", STEP_DIRTY, ARG_MS, 0, 0, EXPECT_NONE },
	{ "kill", STEP_KILL, ARG_SIG, 0, 0, EXPECT_NONE },
	{ "kill-group", STEP_KILL_GROUP, ARG_SIG, 0, 0, EXPECT_NONE },
	{ "wait-exit", STEP_WAIT_EXIT, ARG_MS_OPT, 10000, X_EXIT, EXPECT_ANY },
	{ "start-daemon", STEP_START_DAEMON, ARG_NONE, 0, 0, EXPECT_NONE },
	{ "reset", STEP_RESET, ARG_NONE, 0, 0, EXPECT_NONE },
	{ "foreign-freeze", STEP_FOREIGN_FREEZE, ARG_INDEX, 0, X_OKFAIL, EXPECT_OK },
	{ "foreign-thaw", STEP_FOREIGN_THAW, ARG_INDEX, 0, X_OKFAIL, EXPECT_OK },
	{ "run", STEP_RUN, ARG_ARGV, 30000, X_EXIT, EXPECT_CODE },
	{ "nl-foreign", STEP_NL_FOREIGN, ARG_OP, 500, 0, EXPECT_NONE },
	{ "expect-late-reply", STEP_EXPECT_LATE_REPLY, ARG_MS_OPT, 10000, 0, EXPECT_NONE },
};

struct step {
	const struct step_def *def;
	const char *word;
	uint64_t ms;
	unsigned int num; /* op code, fs index */
	int sig;
	uint8_t *raw;
	size_t raw_len;
	enum expect expect;
	int code; /* exit code or signal for wait-exit */

	/* outcome, for --json */
	bool ran, passed;
	uint64_t start_ns, end_ns;
};

struct opts {
	const char *devdir;
	char *daemon;
	char **daemon_args;
	size_t n_daemon_args;
	const char *daemon_log;
	uint64_t timeout_freeze_ms;
	uint64_t timeout_ms;
	bool quiet;
	bool keep_going;
	const char *json;
	bool netlink; /* --transport netlink */
	bool socket;  /* --transport socket */
	bool legacy_driver; /* --legacy-driver */
};

struct emu {
	struct opts o;
	struct step *steps;
	size_t n_steps;

	struct emu_devdir *dir;
	struct emu_chardev *vss;
	struct emu_netlink *nl;
	struct emu_scratch *scratch;
	struct emu_probes probes;
	struct emu_daemon daemon;
	bool have_daemon;
	char **daemon_argv;

	unsigned int reg_mark;       /* registrations counted before the last disruption */
	struct emu_probe **frozen_set; /* probes of the last probe-frozen */
	unsigned int n_frozen_set;
};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static bool abort_on_signal(void *userdata)
{
	return got_signal != 0;
}

static bool abort_on_signal_or_exit(void *userdata)
{
	struct emu *e = userdata;

	if (got_signal)
		return true;
	return e->have_daemon && !emu_daemon_running(&e->daemon);
}

/* netlink: only our daemon (or its process group) is the peer */
static bool is_our_daemon(pid_t pid, void *userdata)
{
	struct emu *e = userdata;
	pid_t ours;

	if (!e->have_daemon)
		return true;
	pthread_mutex_lock(&e->daemon.lock);
	ours = e->daemon.pid;
	pthread_mutex_unlock(&e->daemon.lock);
	return pid > 0 && ours > 0 && (pid == ours || getpgid(pid) == ours);
}

static void device_event(uint64_t t_ns, const char *dev, const char *text,
			 void *userdata)
{
	emu_tl_at(t_ns, "%-11s %s", dev, text);
}

static const char *op_name(uint8_t op)
{
	switch (op) {
	case HV_VSS_OP_CREATE:
		return "CREATE";
	case HV_VSS_OP_DELETE:
		return "DELETE";
	case HV_VSS_OP_HOT_BACKUP:
		return "HOT_BACKUP";
	case HV_VSS_OP_GET_DM_INFO:
		return "GET_DM_INFO";
	case HV_VSS_OP_BU_COMPLETE:
		return "BU_COMPLETE";
	case HV_VSS_OP_FREEZE:
		return "FREEZE";
	case HV_VSS_OP_THAW:
		return "THAW";
	case HV_VSS_OP_AUTO_RECOVER:
		return "AUTO_RECOVER";
	default:
		return NULL;
	}
}

static void req_label(const struct emu_req *r, char *buf, size_t len)
{
	const char *n = op_name(r->op);

	if (r->len != sizeof(struct hv_vss_msg))
		snprintf(buf, len, "RAW[%zu]", r->len);
	else if (n)
		snprintf(buf, len, "%s", n);
	else
		snprintf(buf, len, "OP_%u", r->op);
}

static void print_req(const struct emu_req *r)
{
	char label[32], rd[48], res[160];

	req_label(r, label, sizeof(label));
	if (r->read_ns)
		snprintf(rd, sizeof(rd), "read +%.2f ms", emu_ms(r->posted_ns, r->read_ns));
	else
		snprintf(rd, sizeof(rd), "never read");

	switch (r->result) {
	case EMU_REQ_OK:
		if (r->op == HV_VSS_OP_HOT_BACKUP)
			snprintf(res, sizeof(res), "replied +%.2f ms  status OK  flags 0x%08x",
				 emu_ms(r->posted_ns, r->answered_ns), r->flags);
		else
			snprintf(res, sizeof(res), "replied +%.2f ms  status OK",
				 emu_ms(r->posted_ns, r->answered_ns));
		break;
	case EMU_REQ_FAILED:
		snprintf(res, sizeof(res), "replied +%.2f ms  status FAIL (0x%08x)",
			 emu_ms(r->posted_ns, r->answered_ns), r->status);
		break;
	case EMU_REQ_TIMEOUT:
		snprintf(res, sizeof(res), "TIMEOUT after %llu ms (driver answered HV_E_FAIL)",
			 (unsigned long long)r->timeout_ms);
		break;
	case EMU_REQ_NOT_READY:
		snprintf(res, sizeof(res), "not delivered: no registered daemon (driver answered HV_E_FAIL)");
		break;
	case EMU_REQ_SEND_FAILED:
		snprintf(res, sizeof(res), "not delivered: an older message is still queued (driver answered HV_E_FAIL)");
		break;
	case EMU_REQ_RESET:
		snprintf(res, sizeof(res), "failed +%.2f ms: device closed or reset before the reply (HV_E_FAIL)",
			 emu_ms(r->posted_ns, r->answered_ns));
		break;
	case EMU_REQ_CANCELLED:
		snprintf(res, sizeof(res), "cancelled by hibernation");
		break;
	case EMU_REQ_FAKE:
		snprintf(res, sizeof(res), "driver's own THAW (hibernation), no host request");
		break;
	case EMU_REQ_PENDING:
		snprintf(res, sizeof(res), "still pending");
		break;
	case _EMU_REQ_RESULT_MAX:
		res[0] = '\0';
		break;
	}

	emu_tl_at(r->posted_ns, "%-11s posted   %s  %s  [#%u]", label, rd, res, r->id);
}

/* What the host saw, as the class an expectation names. */
static enum expect req_outcome(enum emu_req_result r)
{
	switch (r) {
	case EMU_REQ_OK:
		return EXPECT_OK;
	case EMU_REQ_TIMEOUT:
		return EXPECT_TIMEOUT;
	case EMU_REQ_FAILED:
	case EMU_REQ_NOT_READY:
	case EMU_REQ_SEND_FAILED:
	case EMU_REQ_RESET:
	case EMU_REQ_CANCELLED:
	case EMU_REQ_FAKE:
	case EMU_REQ_PENDING:
	case _EMU_REQ_RESULT_MAX:
		break;
	}
	return EXPECT_FAIL;
}

static const char *expect_name(enum expect x)
{
	switch (x) {
	case EXPECT_OK:
		return "ok";
	case EXPECT_FAIL:
		return "fail";
	case EXPECT_TIMEOUT:
		return "timeout";
	case EXPECT_ANY:
		return "any";
	case EXPECT_CODE:
		return "exit code";
	case EXPECT_SIGNAL:
		return "signal";
	case EXPECT_NONE:
		break;
	}
	return "-";
}

/* ---- steps -------------------------------------------------------------- */

#define FAIL(...) (snprintf(why, why_len, __VA_ARGS__), -1)

static int require_sandbox(struct emu *e, const char *what, char *why, size_t why_len)
{
	char reason[2048];

	if (emu_sandbox_check(e->scratch, reason, sizeof(reason)) == 0)
		return 0;

	return FAIL("refusing to %s outside hv-sandbox: %s", what, reason);
}

static int step_request(struct emu *e, struct step *s, char *why, size_t why_len)
{
	struct hv_vss_msg msg = { .vss_hdr.operation = 0 };
	const void *data = &msg;
	size_t len = sizeof(msg);
	struct emu_req r;
	uint64_t timeout;
	unsigned int id;
	enum expect got;
	int rc;

	switch (s->def->kind) {
	case STEP_HOT_BACKUP:
		msg.vss_hdr.operation = HV_VSS_OP_HOT_BACKUP;
		break;
	case STEP_FREEZE:
		msg.vss_hdr.operation = HV_VSS_OP_FREEZE;
		break;
	case STEP_THAW:
		msg.vss_hdr.operation = HV_VSS_OP_THAW;
		break;
	case STEP_OP:
		msg.vss_hdr.operation = (uint8_t)s->num;
		break;
	case STEP_RAW:
		data = s->raw;
		len = s->raw_len;
		break;
	case STEP_WAIT_REGISTER:
	case STEP_EXPECT_REGISTERED:
	case STEP_FAKE_THAW:
	case STEP_PROBE_WRITABLE:
	case STEP_PROBE_FROZEN:
	case STEP_PROBE_RELEASED:
	case STEP_EXPECT_WRITABLE:
	case STEP_SLEEP:
	case STEP_DIRTY:
	case STEP_KILL:
	case STEP_KILL_GROUP:
	case STEP_WAIT_EXIT:
	case STEP_START_DAEMON:
	case STEP_RESET:
	case STEP_FOREIGN_FREEZE:
	case STEP_FOREIGN_THAW:
	case STEP_RUN:
	case STEP_NL_FOREIGN:
	case STEP_EXPECT_LATE_REPLY:
	case _STEP_KIND_MAX:
		return FAIL("not a request step");
	}

	timeout = ((const uint8_t *)data)[0] == HV_VSS_OP_FREEZE ? e->o.timeout_freeze_ms
								 : e->o.timeout_ms;
	rc = emu_chardev_post(e->vss, data, len, timeout, &id);
	if (rc < 0)
		return FAIL("cannot post: %s", strerror(-rc));

	rc = emu_chardev_wait(e->vss, id, 0, abort_on_signal, e, &r);
	print_req(&r);
	if (rc == -ECANCELED)
		return FAIL("interrupted by a signal while waiting for the reply");
	if (rc < 0)
		return FAIL("waiting for the reply: %s", strerror(-rc));

	if (r.result == EMU_REQ_TIMEOUT)
		e->reg_mark = emu_chardev_reg_seq(e->vss);

	got = req_outcome(r.result);
	if (s->expect != EXPECT_ANY && got != s->expect)
		return FAIL("expected %s, got %s (%s, status 0x%08x)", expect_name(s->expect),
			    expect_name(got), emu_req_result_to_string(r.result), r.status);
	return 0;
}

static int step_registered(struct emu *e, struct step *s, bool again, char *why,
			   size_t why_len)
{
	unsigned int after = again ? e->reg_mark : 0;
	int rc;

	rc = emu_chardev_wait_registered(e->vss, after, s->ms, abort_on_signal_or_exit, e);
	if (rc == 0) {
		e->reg_mark = emu_chardev_reg_seq(e->vss);
		emu_tl("host        daemon registered (registration #%u)", e->reg_mark);
		return 0;
	}

	if (got_signal)
		return FAIL("interrupted by a signal");
	if (e->have_daemon && !emu_daemon_running(&e->daemon))
		return FAIL("the daemon is not running");
	return FAIL("no %sregistration within %llu ms (device %s)", again ? "new " : "",
		    (unsigned long long)s->ms,
		    emu_dev_state_to_string(emu_chardev_state(e->vss)));
}

/* Start one probe per scratch fs; the set is malloc'ed. */
static int probes_start_all(struct emu *e, struct emu_probe ***ret_set, char *why,
			    size_t why_len)
{
	struct emu_probe **set;

	if (!e->scratch->n)
		return FAIL("no scratch file systems (/etc/hv-scratch, $HV_SCRATCH)");

	set = calloc(e->scratch->n, sizeof(*set));
	if (!set)
		return FAIL("out of memory");

	for (unsigned int i = 0; i < e->scratch->n; i++) {
		int rc = emu_probe_start(&e->probes, e->scratch, i, &set[i]);

		if (rc < 0) {
			/* the ones started stay tracked in e->probes */
			free(set);
			return FAIL("cannot start a probe on %s: %s", e->scratch->fs[i].mnt,
				    strerror(-rc));
		}
	}

	*ret_set = set;
	return 0;
}

static void remove_dirty_files(const char *mnt)
{
	DIR *d = opendir(mnt);
	struct dirent *de;

	if (!d)
		return;

	while ((de = readdir(d)))
		if (strncmp(de->d_name, ".hv-emu-dirty-", 14) == 0)
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

struct dirty_job {
	pthread_t thread;
	char path[512];
	uint64_t bytes;
	int err;
};

static void *dirty_writer(void *arg)
{
	struct dirty_job *j = arg;
	static char chunk[1 << 20];
	int fd;

	memset(chunk, 0x5a, sizeof(chunk));
	/*
	 * Always a new file: ext4 and xfs start writeback when a truncated
	 * file is closed, which would leave nothing dirty for the freeze.
	 */
	fd = open(j->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		j->err = errno;
		return NULL;
	}

	for (uint64_t done = 0; done < j->bytes; done += sizeof(chunk))
		if (write(fd, chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk)) {
			j->err = errno ? errno : EIO;
			break;
		}

	if (close(fd) < 0 && !j->err)
		j->err = errno;
	return NULL;
}

/*
 * dirty:MIB: leaves MIB MiB of dirty page cache on every scratch file system
 * (written in parallel, never synced), so that a freeze has data to write
 * back, as on a busy guest.
 */
static int step_dirty(struct emu *e, const struct step *s, char *why, size_t why_len)
{
	static unsigned int round;
	struct dirty_job *jobs;
	uint64_t start = emu_now_ns();
	int failed = 0;

	jobs = calloc(e->scratch->n, sizeof(*jobs));
	if (!jobs)
		return FAIL("out of memory");

	round++;
	for (unsigned int i = 0; i < e->scratch->n; i++) {
		/* Drop the data of earlier rounds (unlinking writes nothing back). */
		remove_dirty_files(e->scratch->fs[i].mnt);
		snprintf(jobs[i].path, sizeof(jobs[i].path), "%s/.hv-emu-dirty-%d-%u",
			 e->scratch->fs[i].mnt, (int)getpid(), round);
		jobs[i].bytes = s->ms << 20;
		if (pthread_create(&jobs[i].thread, NULL, dirty_writer, &jobs[i]) != 0)
			jobs[i].err = EAGAIN;
	}

	for (unsigned int i = 0; i < e->scratch->n; i++) {
		if (jobs[i].err != EAGAIN)
			pthread_join(jobs[i].thread, NULL);
		if (jobs[i].err && !failed)
			failed = jobs[i].err;
	}
	free(jobs);

	emu_tl("host        %llu MiB dirty on each of %u scratch fs in %.1f ms",
	       (unsigned long long)s->ms, e->scratch->n,
	       (double)(emu_now_ns() - start) / 1e6);
	return failed ? FAIL("writing dirty data: %s", strerror(failed)) : 0;
}

static int step_writable(struct emu *e, struct step *s, char *why, size_t why_len)
{
	struct emu_probe **set;
	uint64_t start = emu_now_ns();
	unsigned int n = e->scratch->n, done;
	char list[1024] = "";
	int rc = 0;

	if (probes_start_all(e, &set, why, why_len) < 0)
		return -1;

	done = emu_probes_wait(&e->probes, set, n, start + s->ms * EMU_NSEC_PER_MSEC);
	for (unsigned int i = 0; i < n; i++) {
		struct emu_probe p;
		size_t used = strlen(list);

		emu_probe_get(&e->probes, set[i], &p);
		if (!p.done_ns)
			snprintf(list + used, sizeof(list) - used, " %s:BLOCKED",
				 e->scratch->fs[i].mnt);
		else if (p.err)
			snprintf(list + used, sizeof(list) - used, " %s:%s",
				 e->scratch->fs[i].mnt, strerror(p.err));
		else
			snprintf(list + used, sizeof(list) - used, " %s:%.2fms",
				 e->scratch->fs[i].mnt, emu_ms(p.start_ns, p.done_ns));
		if (!p.done_ns || p.err)
			rc = -1;
	}
	free(set);

	emu_tl("probes      %u/%u writable within %llu ms:%s", rc == 0 ? n : done, n,
	       (unsigned long long)s->ms, list);
	if (rc < 0)
		return FAIL("not every scratch fs took a write within %llu ms:%s",
			    (unsigned long long)s->ms, list);
	return 0;
}

static int step_frozen(struct emu *e, struct step *s, char *why, size_t why_len)
{
	struct emu_probe **set;
	unsigned int n = e->scratch->n, blocked = 0;
	char list[1024] = "";

	if (probes_start_all(e, &set, why, why_len) < 0)
		return -1;

	/* every probe must still be blocked after MS */
	emu_sleep_ms(s->ms);
	for (unsigned int i = 0; i < n; i++) {
		struct emu_probe p;
		size_t used = strlen(list);

		emu_probe_get(&e->probes, set[i], &p);
		if (!p.done_ns) {
			blocked++;
			continue;
		}
		snprintf(list + used, sizeof(list) - used, " %s:%s after %.2fms",
			 e->scratch->fs[i].mnt, p.err ? strerror(p.err) : "written",
			 emu_ms(p.start_ns, p.done_ns));
	}

	free(e->frozen_set);
	e->frozen_set = set;
	e->n_frozen_set = n;

	emu_tl("probes      %u/%u blocked for %llu ms while frozen%s%s", blocked, n,
	       (unsigned long long)s->ms, blocked == n ? "" : "; NOT blocked:", list);
	if (blocked != n)
		return FAIL("%u of %u scratch file systems are not frozen:%s", n - blocked, n,
			    list);
	return 0;
}

/*
 * When the last THAW was answered: the daemon's reply to a host THAW, or
 * its (rejected) reply to the driver's hibernation THAW. 0 if none.
 */
/*
 * The daemon answered the last request that timed out, and the driver
 * refused that late reply: after it, the daemon has read the request (a
 * timed-out request it has not read yet stays queued, as in the kernel, and
 * makes the next one fail with "older message still queued").
 */
static int step_late_reply(struct emu *e, struct step *s, char *why, size_t why_len)
{
	uint64_t end = emu_now_ns() + s->ms * EMU_NSEC_PER_MSEC;
	unsigned int id = 0;
	struct emu_req r;

	if (e->nl)
		return FAIL("expect-late-reply: the connector drops a late reply unseen");
	for (unsigned int i = emu_chardev_count(e->vss); i > 0 && !id; i--)
		if (emu_chardev_get(e->vss, i, &r) == 0 && r.result == EMU_REQ_TIMEOUT)
			id = i;
	if (!id)
		return FAIL("expect-late-reply: no request has timed out");
	while (!got_signal && emu_chardev_get(e->vss, id, &r) == 0 && !r.late_ns &&
	       emu_now_ns() < end)
		emu_sleep_ms(5);
	if (!r.late_ns)
		return FAIL("no late reply to request #%u within %llu ms", id,
			    (unsigned long long)s->ms);
	emu_tl("host        the late reply to request #%u came %.1f ms after the timeout (refused)",
	       id, (double)(r.late_ns - r.answered_ns) / 1e6);
	return 0;
}

static uint64_t last_thaw_reply(struct emu *e, const char **ret_label)
{
	for (unsigned int id = emu_chardev_count(e->vss); id > 0; id--) {
		struct emu_req r;

		if (emu_chardev_get(e->vss, id, &r) < 0 || r.op != HV_VSS_OP_THAW ||
		    r.len != sizeof(struct hv_vss_msg))
			continue;

		if (r.result == EMU_REQ_OK || r.result == EMU_REQ_FAILED) {
			*ret_label = "THAW reply";
			return r.answered_ns;
		}
		if (r.result == EMU_REQ_FAKE && r.late_ns) {
			*ret_label = "the reply to the hibernation THAW";
			return r.late_ns;
		}
	}
	return 0;
}

static int step_released(struct emu *e, struct step *s, char *why, size_t why_len)
{
	uint64_t start = emu_now_ns(), ref;
	const char *ref_label;
	unsigned int n = e->n_frozen_set, done;
	double max = -1e9;
	char list[1024] = "";
	int rc = 0;

	if (!e->frozen_set)
		return FAIL("no probes pending (run probe-frozen first)");

	done = emu_probes_wait(&e->probes, e->frozen_set, n, start + s->ms * EMU_NSEC_PER_MSEC);
	ref = last_thaw_reply(e, &ref_label);
	if (!ref) {
		ref = start;
		ref_label = "this step started";
	}
	for (unsigned int i = 0; i < n; i++) {
		struct emu_probe p;
		size_t used = strlen(list);

		emu_probe_get(&e->probes, e->frozen_set[i], &p);
		if (!p.done_ns) {
			snprintf(list + used, sizeof(list) - used, " %s:BLOCKED",
				 e->scratch->fs[p.fs].mnt);
			rc = -1;
			continue;
		}
		if (p.err) {
			snprintf(list + used, sizeof(list) - used, " %s:%s",
				 e->scratch->fs[p.fs].mnt, strerror(p.err));
			rc = -1;
			continue;
		}
		snprintf(list + used, sizeof(list) - used, " %s:%+.2fms",
			 e->scratch->fs[p.fs].mnt, emu_ms(ref, p.done_ns));
		if (emu_ms(ref, p.done_ns) > max)
			max = emu_ms(ref, p.done_ns);
	}

	if (rc == 0) {
		emu_tl("probes      %u/%u released; %.2f ms (max) after %s:%s", n, n, max,
		       ref_label, list);
		free(e->frozen_set);
		e->frozen_set = NULL;
		e->n_frozen_set = 0;
		return 0;
	}

	emu_tl("probes      %u/%u released within %llu ms:%s", done, n,
	       (unsigned long long)s->ms, list);
	return FAIL("probes still blocked or failed %llu ms after the step started:%s",
		    (unsigned long long)s->ms, list);
}

/* Whether a process ended as the step expects (=CODE, =SIGNAL or =any). */
static int check_exit(const struct step *s, int status, const char *desc, char *why,
		      size_t why_len)
{
	switch (s->expect) {
	case EXPECT_CODE:
		if (!WIFEXITED(status) || WEXITSTATUS(status) != s->code)
			return FAIL("expected exit status %d, got %s", s->code, desc);
		break;
	case EXPECT_SIGNAL:
		if (!WIFSIGNALED(status) || WTERMSIG(status) != s->code)
			return FAIL("expected death by %s, got %s", emu_signal_name(s->code), desc);
		break;
	case EXPECT_ANY:
	case EXPECT_NONE:
	case EXPECT_OK:
	case EXPECT_FAIL:
	case EXPECT_TIMEOUT:
		break;
	}
	return 0;
}

/*
 * run:PROGRAM[,ARG...][=CODE|SIGNAL|any]: runs a program inside the sandbox
 * (e.g. the daemon's --thaw-all) and checks how it ended (default: status 0).
 */
static int step_run(struct emu *e, struct step *s, char *why, size_t why_len)
{
	char *copy = strdup((const char *)s->raw);
	char *argv[32];
	size_t argc = 0;
	uint64_t end = emu_now_ns() + s->ms * EMU_NSEC_PER_MSEC;
	char desc[64];
	pid_t pid;
	int status = 0, r;

	if (!copy)
		return FAIL("out of memory");
	if (require_sandbox(e, "run a program", why, why_len) < 0) {
		free(copy);
		return -1;
	}

	for (char *tok = strtok(copy, ","); tok && argc < 31; tok = strtok(NULL, ","))
		argv[argc++] = tok;
	argv[argc] = NULL;

	r = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
	if (r != 0) {
		free(copy);
		return FAIL("cannot run %s: %s", argv[0], strerror(r));
	}
	emu_tl("host        running %s (pid %d)", (const char *)s->raw, (int)pid);

	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (emu_now_ns() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			free(copy);
			return FAIL("%s still running after %llu ms", (const char *)s->raw,
				    (unsigned long long)s->ms);
		}
		emu_sleep_ms(10);
	}
	free(copy);

	emu_daemon_describe(status, desc, sizeof(desc));
	emu_tl("host        %s ended: %s", (const char *)s->raw, desc);
	return check_exit(s, status, desc, why, why_len);
}

static int step_wait_exit(struct emu *e, struct step *s, char *why, size_t why_len)
{
	char desc[64];
	int status, rc;

	if (!e->have_daemon)
		return FAIL("no daemon (--daemon) to wait for");

	rc = emu_daemon_wait_exit(&e->daemon, s->ms, &status);
	if (rc == -ETIMEDOUT)
		return FAIL("the daemon is still running after %llu ms",
			    (unsigned long long)s->ms);
	if (rc < 0)
		return FAIL("%s", strerror(-rc));

	pthread_mutex_lock(&e->daemon.lock);
	e->daemon.unexpected = false; /* acknowledged */
	pthread_mutex_unlock(&e->daemon.lock);

	emu_daemon_describe(status, desc, sizeof(desc));
	emu_tl("host        daemon exited: %s", desc);
	e->reg_mark = emu_chardev_reg_seq(e->vss);

	return check_exit(s, status, desc, why, why_len);
}

static int step_foreign(struct emu *e, struct step *s, bool freeze, char *why,
			size_t why_len)
{
	int rc;

	if (s->num >= e->scratch->n)
		return FAIL("no scratch file system #%u (have %u)", s->num, e->scratch->n);
	if (freeze && require_sandbox(e, "FIFREEZE", why, why_len) < 0)
		return -1;

	rc = emu_scratch_ioctl(e->scratch, s->num, freeze);
	emu_tl("host        %s %s: %s", freeze ? "FIFREEZE" : "FITHAW",
	       e->scratch->fs[s->num].mnt, rc == 0 ? "ok" : strerror(-rc));

	if (s->expect == EXPECT_OK && rc < 0)
		return FAIL("%s %s failed: %s", freeze ? "FIFREEZE" : "FITHAW",
			    e->scratch->fs[s->num].mnt, strerror(-rc));
	if (s->expect == EXPECT_FAIL && rc == 0)
		return FAIL("%s %s succeeded, expected a failure",
			    freeze ? "FIFREEZE" : "FITHAW", e->scratch->fs[s->num].mnt);
	return 0;
}

static int run_step(struct emu *e, struct step *s, char *why, size_t why_len)
{
	unsigned int id;
	int rc;

	switch (s->def->kind) {
	case STEP_WAIT_REGISTER:
		return step_registered(e, s, false, why, why_len);
	case STEP_EXPECT_REGISTERED:
		return step_registered(e, s, true, why, why_len);
	case STEP_HOT_BACKUP:
	case STEP_FREEZE:
	case STEP_THAW:
	case STEP_OP:
	case STEP_RAW:
		return step_request(e, s, why, why_len);
	case STEP_FAKE_THAW:
		e->reg_mark = emu_chardev_reg_seq(e->vss);
		rc = emu_chardev_fake_thaw(e->vss, &id);
		if (rc < 0)
			return FAIL("%s", strerror(-rc));
		return 0;
	case STEP_PROBE_WRITABLE:
	case STEP_EXPECT_WRITABLE:
		return step_writable(e, s, why, why_len);
	case STEP_PROBE_FROZEN:
		return step_frozen(e, s, why, why_len);
	case STEP_PROBE_RELEASED:
		return step_released(e, s, why, why_len);
	case STEP_DIRTY:
		return step_dirty(e, s, why, why_len);
	case STEP_SLEEP: {
		uint64_t end = emu_now_ns() + s->ms * EMU_NSEC_PER_MSEC;

		while (!got_signal && emu_now_ns() < end) {
			uint64_t left = (end - emu_now_ns()) / EMU_NSEC_PER_MSEC;

			emu_sleep_ms(left < 50 ? left + 1 : 50);
		}
		return got_signal ? FAIL("interrupted by a signal") : 0;
	}
	case STEP_KILL:
	case STEP_KILL_GROUP:
		if (!e->have_daemon)
			return FAIL("no daemon (--daemon) to signal");
		e->reg_mark = emu_chardev_reg_seq(e->vss);
		rc = emu_daemon_signal_full(&e->daemon, s->sig, s->def->kind == STEP_KILL_GROUP);
		emu_tl("host        %s to the daemon%s: %s", emu_signal_name(s->sig),
		       s->def->kind == STEP_KILL_GROUP ? "'s process group" : "",
		       rc == 0 ? "sent" : strerror(-rc));
		return rc < 0 ? FAIL("cannot signal the daemon: %s", strerror(-rc)) : 0;
	case STEP_WAIT_EXIT:
		return step_wait_exit(e, s, why, why_len);
	case STEP_RUN:
		return step_run(e, s, why, why_len);
	case STEP_EXPECT_LATE_REPLY:
		return step_late_reply(e, s, why, why_len);
	case STEP_NL_FOREIGN: {
		struct hv_vss_msg msg = { .vss_hdr.operation = (uint8_t)s->num };
		uint32_t port = 0;

		if (!e->nl)
			return FAIL("nl-foreign needs --transport netlink");
		rc = emu_netlink_foreign(e->nl, &msg, sizeof(msg), s->ms, &port);
		emu_tl("host        op %u from foreign port %u: %s", s->num, port,
		       rc == 0 ? "no answer (refused)" : strerror(-rc));
		return rc < 0 ? FAIL("foreign request: %s", rc == -EPROTO ? "the daemon answered it"
									   : strerror(-rc))
			      : 0;
	}
	case STEP_START_DAEMON:
		if (!e->have_daemon)
			return FAIL("no daemon (--daemon) to start");
		if (require_sandbox(e, "start the daemon", why, why_len) < 0)
			return -1;
		e->reg_mark = emu_chardev_reg_seq(e->vss);
		rc = emu_daemon_start(&e->daemon);
		return rc < 0 ? FAIL("cannot start %s: %s", e->daemon_argv[0], strerror(-rc)) : 0;
	case STEP_RESET:
		e->reg_mark = emu_chardev_reg_seq(e->vss);
		emu_chardev_reset(e->vss);
		return 0;
	case STEP_FOREIGN_FREEZE:
		return step_foreign(e, s, true, why, why_len);
	case STEP_FOREIGN_THAW:
		return step_foreign(e, s, false, why, why_len);
	case _STEP_KIND_MAX:
		break;
	}
	return FAIL("unknown step");
}

/* ---- parsing ------------------------------------------------------------ */

static int parse_step(const char *word, struct step *s)
{
	const struct step_def *def = NULL;
	char *copy = strdup(word), *arg, *exp;
	size_t nlen;
	int rc = -EINVAL;

	if (!copy)
		return -ENOMEM;

	exp = strchr(copy, '=');
	if (exp)
		*exp++ = '\0';
	arg = strchr(copy, ':');
	if (arg)
		*arg++ = '\0';
	nlen = strlen(copy);

	for (size_t i = 0; i < _STEP_KIND_MAX; i++)
		if (strlen(step_defs[i].name) == nlen && strcmp(step_defs[i].name, copy) == 0)
			def = &step_defs[i];
	if (!def) {
		fprintf(stderr, "hv-emu: unknown step '%s'\n", word);
		goto out;
	}

	*s = (struct step){ .def = def, .word = word, .ms = def->def_ms,
			    .expect = def->def_expect };

	switch (def->arg) {
	case ARG_NONE:
		if (arg)
			goto bad_arg;
		break;
	case ARG_MS_OPT:
	case ARG_MS:
		if (!arg && def->arg == ARG_MS)
			goto bad_arg;
		if (arg && emu_parse_u64(arg, &s->ms) < 0)
			goto bad_arg;
		break;
	case ARG_OP:
	case ARG_INDEX: {
		uint64_t v;

		if (!arg || emu_parse_u64(arg, &v) < 0 || v > (def->arg == ARG_OP ? 255 : 1023))
			goto bad_arg;
		s->num = (unsigned int)v;
		break;
	}
	case ARG_HEX:
		if (!arg || emu_parse_hex(arg, &s->raw, &s->raw_len) < 0 ||
		    s->raw_len > EMU_MSG_MAX)
			goto bad_arg;
		break;
	case ARG_SIG:
		if (!arg || emu_parse_signal(arg, &s->sig) < 0)
			goto bad_arg;
		break;
	case ARG_ARGV:
		if (!arg || !*arg)
			goto bad_arg;
		s->raw = (uint8_t *)strdup(arg);
		if (!s->raw)
			goto bad_arg;
		s->raw_len = strlen(arg);
		break;
	}

	if (exp) {
		uint64_t v;
		int sig;

		if (!strcmp(exp, "ok"))
			s->expect = EXPECT_OK;
		else if (!strcmp(exp, "fail"))
			s->expect = EXPECT_FAIL;
		else if (!strcmp(exp, "timeout"))
			s->expect = EXPECT_TIMEOUT;
		else if (!strcmp(exp, "any"))
			s->expect = EXPECT_ANY;
		else if (emu_parse_u64(exp, &v) == 0 && v < 256) {
			s->expect = EXPECT_CODE;
			s->code = (int)v;
		} else if (emu_parse_signal(exp, &sig) == 0) {
			s->expect = EXPECT_SIGNAL;
			s->code = sig;
		} else {
			s->expect = EXPECT_NONE;
		}

		if (s->expect == EXPECT_NONE || !(def->expects & (1U << s->expect))) {
			fprintf(stderr, "hv-emu: step '%s': expectation '=%s' not valid here\n",
				word, exp);
			goto out;
		}
	}

	rc = 0;
	goto out;

bad_arg:
	fprintf(stderr, "hv-emu: step '%s': missing or bad argument\n", word);
out:
	free(copy);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: hv-emu [OPTIONS] STEP...\n"
"The emulated Hyper-V host and VSS driver: FUSE DEVDIR/hv_vss plus a host script.\n"
"\n"
"Options:\n"
"  --devdir DIR          mount the device directory here (default " DEFAULT_DEVDIR ")\n"
"  --daemon PATH         start this daemon (it must stay in the foreground, e.g. -n)\n"
"  --daemon-arg ARG      one argument for the daemon (repeat)\n"
"  --daemon-log FILE     append the daemon's stdout/stderr here (default: \"daemon| \" lines)\n"
"  --timeout-freeze MS   driver timeout for FREEZE (default 900000, the kernel's 15 min)\n"
"  --timeout MS          driver timeout for other requests (default 30000)\n"
"  --json FILE           write every request, probe and step with timestamps\n"
"                        (\"-\": JSON on stdout, the timeline on stderr)\n"
"  --keep-going          run the remaining steps after a failed one\n"
"  --quiet               print failures and the result only\n"
"  --transport chardev|netlink|socket   how the daemon reaches the emulated driver: the\n"
"                        FUSE char device (default), the netlink connector (no FUSE; the\n"
"                        daemon needs --transport=netlink --allow-user-peer; see\n"
"                        emu-netlink.h), or socket: DEVDIR/hv_vss is a unix socket that\n"
"                        the daemon opens through --preload sockdev-shim.so (benchmarks:\n"
"                        the device's cost close to the kernel's; see emu-chardev.h)\n"
"  --preload LIB         LD_PRELOAD for the daemon\n"
"  --legacy-driver       with --transport netlink: play an old driver that knows only\n"
"                        VSS_OP_REGISTER (128, no answer) and ignores REGISTER1 (129)\n"
"\n"
"Steps (=X sets the expected result; requests default to =ok):\n"
"  wait-register[:MS]          the daemon registered (default 10000)\n"
"  expect-registered[:MS]      a new registration since the last reset/kill/start/\n"
"                              fake-thaw/timeout/wait-register (default 10000)\n"
"  hot-backup[=ok|fail|timeout|any]   post HOT_BACKUP (op 2)\n"
"  freeze[=...]  thaw[=...]    post FREEZE (5) / THAW (6)\n"
"  op:N[=...]                  post a 12-byte message with op N\n"
"  raw:HEX[=...]               post these bytes as one message\n"
"  fake-thaw                   the THAW the driver queues before hibernation\n"
"  probe-writable              a write to every scratch fs completes within 2 s\n"
"  probe-frozen[:MS]           writers on every scratch fs stay blocked MS (default 200)\n"
"  probe-released[:MS]         those writers complete within MS (default 5000)\n"
"  expect-writable[:MS]        like probe-writable, waiting up to MS (default 3000)\n"
"  dirty:MIB                   leave MIB MiB of unsynced data on every scratch fs\n"
"  sleep:MS  kill:SIGNAME  kill-group:SIGNAME  wait-exit[:MS][=CODE|SIGNAME|any]  start-daemon\n"
"  reset                       emulated driver reset (EBADF until the daemon reopens)\n"
"  foreign-freeze:I[=ok|fail]  FIFREEZE scratch fs I from the emulator\n"
"  foreign-thaw:I[=ok|fail]    FITHAW scratch fs I\n"
"  run:PROGRAM[,ARG...][=CODE|SIGNAME|any]  run a program in the sandbox (default =0)\n"
"  expect-late-reply[:MS]      the daemon's reply to the last timed-out request came\n"
"                              (late, refused) within MS (default 10000)\n"
"  nl-foreign:N                (netlink) op N from another user-space port; the daemon\n"
"                              must not answer within 500 ms\n"
"\n"
"Request lines: posted at T, read and replied relative to the post time.\n"
"Exit: 0 all expectations held, 1 one failed, 2 usage or setup error.\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	enum {
		OPT_DEVDIR = 0x100,
		OPT_DAEMON,
		OPT_DAEMON_ARG,
		OPT_DAEMON_LOG,
		OPT_TIMEOUT_FREEZE,
		OPT_TIMEOUT,
		OPT_JSON,
		OPT_KEEP_GOING,
		OPT_TRANSPORT,
		OPT_PRELOAD,
		OPT_LEGACY_DRIVER,
	};
	static const struct option longopts[] = {
		{ "devdir", required_argument, NULL, OPT_DEVDIR },
		{ "daemon", required_argument, NULL, OPT_DAEMON },
		{ "daemon-arg", required_argument, NULL, OPT_DAEMON_ARG },
		{ "daemon-log", required_argument, NULL, OPT_DAEMON_LOG },
		{ "timeout-freeze", required_argument, NULL, OPT_TIMEOUT_FREEZE },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "json", required_argument, NULL, OPT_JSON },
		{ "keep-going", no_argument, NULL, OPT_KEEP_GOING },
		{ "transport", required_argument, NULL, OPT_TRANSPORT },
		{ "preload", required_argument, NULL, OPT_PRELOAD },
		{ "legacy-driver", no_argument, NULL, OPT_LEGACY_DRIVER },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int c;

	*o = (struct opts){
		.devdir = DEFAULT_DEVDIR,
		.timeout_freeze_ms = DEFAULT_TIMEOUT_FREEZE_MS,
		.timeout_ms = DEFAULT_TIMEOUT_MS,
	};

	while ((c = getopt_long(argc, argv, "+qh", longopts, NULL)) >= 0) {
		switch (c) {
		case OPT_DEVDIR:
			o->devdir = optarg;
			break;
		case OPT_DAEMON:
			o->daemon = optarg;
			break;
		case OPT_DAEMON_ARG: {
			char **n = realloc(o->daemon_args,
					   (o->n_daemon_args + 1) * sizeof(*n));

			if (!n)
				return -ENOMEM;
			o->daemon_args = n;
			o->daemon_args[o->n_daemon_args++] = optarg;
			break;
		}
		case OPT_DAEMON_LOG:
			o->daemon_log = optarg;
			break;
		case OPT_TIMEOUT_FREEZE:
		case OPT_TIMEOUT: {
			uint64_t v;

			if (emu_parse_u64(optarg, &v) < 0 || v == 0) {
				fprintf(stderr, "hv-emu: bad timeout '%s'\n", optarg);
				return -EINVAL;
			}
			if (c == OPT_TIMEOUT)
				o->timeout_ms = v;
			else
				o->timeout_freeze_ms = v;
			break;
		}
		case OPT_JSON:
			o->json = optarg;
			break;
		case OPT_KEEP_GOING:
			o->keep_going = true;
			break;
		case OPT_TRANSPORT:
			if (strcmp(optarg, "netlink") != 0 && strcmp(optarg, "chardev") != 0 &&
			    strcmp(optarg, "socket") != 0) {
				fprintf(stderr,
					"hv-emu: --transport: '%s' is not chardev, netlink or socket\n",
					optarg);
				return -EINVAL;
			}
			o->netlink = strcmp(optarg, "netlink") == 0;
			o->socket = strcmp(optarg, "socket") == 0;
			break;
		case OPT_PRELOAD:
			if (*optarg && setenv("LD_PRELOAD", optarg, 1) < 0)
				return -errno;
			break;
		case OPT_LEGACY_DRIVER:
			o->legacy_driver = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}

	if (o->daemon_args && !o->daemon) {
		fprintf(stderr, "hv-emu: --daemon-arg without --daemon\n");
		return -EINVAL;
	}
	if (o->legacy_driver && !o->netlink) {
		fprintf(stderr, "hv-emu: --legacy-driver needs --transport netlink (drivers without REGISTER1 had only the connector)\n");
		return -EINVAL;
	}
	return optind;
}

/* ---- output ------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static long long rel_ns(uint64_t t)
{
	return t ? (long long)(t - emu_t0_ns()) : -1;
}

static int write_json(struct emu *e, const char *path, bool passed)
{
	unsigned int n = emu_chardev_count(e->vss);
	bool to_stdout = strcmp(path, "-") == 0;
	FILE *f = to_stdout ? stdout : fopen(path, "we");

	if (!f)
		return -errno;

	fprintf(f, "{\n  \"t0_monotonic_ns\": %llu,\n  \"passed\": %s,\n",
		(unsigned long long)emu_t0_ns(), passed ? "true" : "false");
	fprintf(f, "  \"note\": \"*_ns are relative to t0 (CLOCK_MONOTONIC); -1 = never\",\n");

	fprintf(f, "  \"requests\": [");
	for (unsigned int id = 1; id <= n; id++) {
		struct emu_req r;
		char label[32];

		if (emu_chardev_get(e->vss, id, &r) < 0)
			continue;
		req_label(&r, label, sizeof(label));
		fprintf(f, "%s\n    {\"id\": %u, \"op\": %u, \"name\": \"%s\", \"len\": %zu, "
			"\"result\": \"%s\", \"status\": %u, \"flags\": %u, \"timeout_ms\": %llu, "
			"\"posted_ns\": %lld, \"read_ns\": %lld, \"answered_ns\": %lld, "
			"\"late_reply_ns\": %lld, \"late_reply_errno\": %d}",
			id > 1 ? "," : "", r.id, r.op, label, r.len,
			emu_req_result_to_string(r.result), r.status, r.flags,
			(unsigned long long)r.timeout_ms, rel_ns(r.posted_ns), rel_ns(r.read_ns),
			rel_ns(r.answered_ns), rel_ns(r.late_ns), r.late_errno);
	}
	fprintf(f, "\n  ],\n  \"probes\": [");

	pthread_mutex_lock(&e->probes.lock);
	for (unsigned int i = 0; i < e->probes.n; i++) {
		const struct emu_probe *p = e->probes.list[i];

		fprintf(f, "%s\n    {\"fs\": ", i ? "," : "");
		json_str(f, e->scratch->fs[p->fs].mnt);
		fprintf(f, ", \"start_ns\": %lld, \"done_ns\": %lld, \"errno\": %d}",
			rel_ns(p->start_ns), rel_ns(p->done_ns), p->err);
	}
	pthread_mutex_unlock(&e->probes.lock);

	fprintf(f, "\n  ],\n  \"steps\": [");
	for (size_t i = 0; i < e->n_steps; i++) {
		const struct step *s = &e->steps[i];

		fprintf(f, "%s\n    {\"step\": ", i ? "," : "");
		json_str(f, s->word);
		fprintf(f, ", \"ran\": %s, \"passed\": %s, \"start_ns\": %lld, \"end_ns\": %lld}",
			s->ran ? "true" : "false", s->passed ? "true" : "false",
			rel_ns(s->start_ns), rel_ns(s->end_ns));
	}
	fprintf(f, "\n  ]\n}\n");

	if (to_stdout)
		return fflush(f) == 0 ? 0 : -errno;
	if (fclose(f) != 0)
		return -errno;
	return 0;
}

/* ---- teardown ----------------------------------------------------------- */

/*
 * Nothing may stay frozen or blocked behind us: thaw every scratch fs that
 * is still frozen (FITHAW fails with EINVAL when it is not) and say so.
 */
static unsigned int thaw_leftovers(struct emu *e)
{
	unsigned int pending = emu_probes_pending(&e->probes), thawed = 0;
	char reason[2048];

	if (pending)
		emu_tl_always(0, "WARNING     %u probe writer(s) still blocked at exit", pending);

	/* outside the sandbox nothing was frozen by us or a daemon of ours: touch nothing */
	if (emu_sandbox_check(e->scratch, reason, sizeof(reason)) < 0) {
		if (pending)
			emu_tl_always(0, "WARNING     not inside hv-sandbox: not thawing anything");
		return 0;
	}

	for (unsigned int i = 0; i < e->scratch->n; i++) {
		int rc = emu_scratch_ioctl(e->scratch, i, false);

		if (rc == 0) {
			thawed++;
			emu_tl_always(0, "WARNING     %s was still frozen at exit: thawed (FITHAW)",
				      e->scratch->fs[i].mnt);
		} else if (rc != -EINVAL) {
			emu_tl_always(0, "WARNING     FITHAW %s at exit: %s",
				      e->scratch->fs[i].mnt, strerror(-rc));
		}
	}

	if (pending) {
		uint64_t end = emu_now_ns() + EXIT_THAW_WAIT_MS * EMU_NSEC_PER_MSEC;

		while (emu_probes_pending(&e->probes) && emu_now_ns() < end)
			emu_sleep_ms(10);
		pending = emu_probes_pending(&e->probes);
		if (pending)
			emu_tl_always(0, "WARNING     %u probe writer(s) STILL blocked; this process "
				      "cannot exit until their file system is thawed", pending);
		else
			emu_tl_always(0, "WARNING     all probe writers completed after the thaw");
	}
	return thawed;
}

/*
 * HV_EMU_CONFIG: the text of a daemon configuration file ("\n" for line
 * breaks), written to /tmp/test.conf inside the sandbox before the daemon
 * starts; the integration scenarios pass --config=/tmp/test.conf.
 */
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

	if (fclose(f) != 0)
		return -errno;

	return 0;
}

int main(int argc, char **argv)
{
	struct emu e = { .dir = NULL };
	struct sigaction sa = { .sa_handler = on_signal };
	char why[4096];
	int first, rc, exit_code = EXIT_SUCCESS;
	size_t failed_step = 0;
	bool failed = false, json_stdout;

	first = parse_args(argc, argv, &e.o);
	if (first < 0)
		return 2;
	if (first >= argc) {
		fprintf(stderr, "hv-emu: no steps\n");
		usage(stderr);
		return 2;
	}

	e.n_steps = (size_t)(argc - first);
	e.steps = calloc(e.n_steps, sizeof(*e.steps));
	if (!e.steps)
		return 2;
	for (size_t i = 0; i < e.n_steps; i++)
		if (parse_step(argv[first + (int)i], &e.steps[i]) < 0)
			return 2;

	/* with --json - stdout carries only the JSON; the timeline goes to stderr */
	json_stdout = e.o.json && strcmp(e.o.json, "-") == 0;
	emu_timeline_init(e.o.quiet, json_stdout ? stderr : stdout);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	emu_probes_init(&e.probes);

	rc = emu_scratch_load(&e.scratch);
	if (rc < 0) {
		fprintf(stderr, "hv-emu: cannot read the scratch list: %s\n", strerror(-rc));
		return 2;
	}

	if (e.o.daemon) {
		e.daemon_argv = calloc(e.o.n_daemon_args + 2, sizeof(char *));
		if (!e.daemon_argv)
			return 2;
		e.daemon_argv[0] = e.o.daemon;
		for (size_t i = 0; i < e.o.n_daemon_args; i++)
			e.daemon_argv[i + 1] = e.o.daemon_args[i];
		/* waits poll emu_daemon_running() every 50 ms: no exit callback needed */
		emu_daemon_init(&e.daemon, e.daemon_argv, e.o.daemon_log, NULL, NULL);
		e.have_daemon = true;

		/* before anything is mounted: refuse early */
		if (require_sandbox(&e, "start a daemon", why, sizeof(why)) < 0) {
			fprintf(stderr, "hv-emu: %s\n", why);
			exit_code = 2;
			goto out_scratch;
		}
	}

	rc = emu_devdir_new(e.o.devdir, device_event, &e, &e.dir);
	if (rc == 0)
		rc = emu_devdir_add(e.dir, &emu_svc_vss, &e.vss);
	if (rc == 0)
		rc = e.o.netlink ? emu_netlink_start(e.vss, HV_CN_VSS_IDX, HV_CN_VSS_VAL, device_event,
						     &e, &e.nl)
		     : e.o.socket ? emu_devdir_start_socket(e.dir)
				  : emu_devdir_start(e.dir);
	if (rc == 0 && e.nl)
		emu_netlink_set_filter(e.nl, is_our_daemon, &e);
	if (rc == 0 && e.nl && e.o.legacy_driver)
		emu_netlink_set_legacy(e.nl, true);
	if (rc < 0 && e.o.netlink) {
		fprintf(stderr, "hv-emu: cannot open the netlink connector (group %#x): %s\n",
			HV_CN_VSS_IDX, strerror(-rc));
		exit_code = 2;
		goto out_dir;
	}
	if (rc < 0) {
		fprintf(stderr, "hv-emu: cannot %s the device directory at %s: %s\n",
			e.o.socket ? "make the sockets of" : "mount the FUSE", e.o.devdir,
			strerror(-rc));
		exit_code = 2;
		goto out_dir;
	}
	emu_tl("host        %s%s%s ready (%s); %u scratch fs; timeouts FREEZE %llu ms, other %llu ms",
	       e.o.netlink ? "netlink connector " : e.o.devdir, e.o.netlink ? "" : "/",
	       e.o.netlink ? "0xa.1" : emu_svc_vss.name,
	       e.o.netlink ? "netlink" : e.o.socket ? "socket" : "FUSE",
	       e.scratch->n,
	       (unsigned long long)e.o.timeout_freeze_ms, (unsigned long long)e.o.timeout_ms);

	if (e.have_daemon) {
		rc = write_test_config();
		if (rc < 0) {
			fprintf(stderr, "hv-emu: cannot write /tmp/test.conf: %s\n", strerror(-rc));
			exit_code = 2;
			goto out_dir;
		}
		rc = emu_daemon_start(&e.daemon);
		if (rc < 0) {
			fprintf(stderr, "hv-emu: cannot start %s: %s\n", e.o.daemon, strerror(-rc));
			exit_code = 2;
			goto out_dir;
		}
	}

	for (size_t i = 0; i < e.n_steps && !got_signal; i++) {
		struct step *s = &e.steps[i];

		if (failed && !e.o.keep_going)
			break;

		emu_tl("step %-6zu %s", i + 1, s->word);
		s->ran = true;
		s->start_ns = emu_now_ns();
		why[0] = '\0';
		s->passed = run_step(&e, s, why, sizeof(why)) == 0;
		s->end_ns = emu_now_ns();
		if (!s->passed) {
			emu_tl_always(0, "FAIL        step %zu (%s): %s", i + 1, s->word, why);
			if (!failed)
				failed_step = i + 1;
			failed = true;
		}
	}

	if (got_signal) {
		emu_tl_always(0, "host        interrupted by %s: cleaning up",
			      emu_signal_name(got_signal));
		if (!failed)
			failed_step = 0;
		failed = true;
	}

	/* teardown: daemon, leftovers, device */
	if (e.have_daemon) {
		if (emu_daemon_stop(&e.daemon, STOP_TERM_MS, STOP_KILL_MS) < 0)
			emu_tl_always(0, "WARNING     the daemon did not exit even after SIGKILL");

		pthread_mutex_lock(&e.daemon.lock);
		if (e.daemon.unexpected) {
			emu_tl_always(0, "FAIL        %s", e.daemon.unexpected_desc);
			failed = true;
		}
		pthread_mutex_unlock(&e.daemon.lock);
	}

	if (thaw_leftovers(&e)) {
		emu_tl_always(0, "FAIL        a scratch file system was left frozen");
		failed = true;
	}
	/* a daemon that was stuck behind a frozen fs may be able to die now */
	if (e.have_daemon && emu_daemon_running(&e.daemon))
		emu_daemon_stop(&e.daemon, 1000, 2000);

	if (e.o.json) {
		rc = write_json(&e, e.o.json, !failed);
		if (rc < 0)
			emu_tl_always(0, "WARNING     cannot write %s: %s", e.o.json, strerror(-rc));
	}

	if (failed) {
		exit_code = EXIT_FAILURE;
		if (failed_step)
			emu_tl_raw(true, "hv-emu: FAIL (first failed step %zu: %s)", failed_step,
				   e.steps[failed_step - 1].word);
		else
			emu_tl_raw(true, "hv-emu: FAIL");
	} else {
		emu_tl_raw(true, "hv-emu: PASS (%zu steps)", e.n_steps);
	}

out_dir:
	e.nl = emu_netlink_free(e.nl);
	e.dir = emu_devdir_free(e.dir);
	if (e.have_daemon && exit_code == 2 && emu_daemon_running(&e.daemon))
		emu_daemon_stop(&e.daemon, STOP_TERM_MS, STOP_KILL_MS);
out_scratch:
	if (e.have_daemon)
		emu_daemon_done(&e.daemon);
	free(e.frozen_set);
	emu_probes_done(&e.probes);
	e.scratch = emu_scratch_free(e.scratch);
	for (size_t i = 0; i < e.n_steps; i++)
		free(e.steps[i].raw);
	free(e.steps);
	free(e.daemon_argv);
	free(e.o.daemon_args);
	return exit_code;
}
