/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "emu-scratch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "emu-util.h"

#define SCRATCH_LIST "/etc/hv-scratch"
#define PROBE_NAME ".hv-emu-probe"

static int scratch_add(struct emu_scratch *s, const char *mnt, const char *dev,
		       const char *fstype)
{
	struct emu_scratch_fs *n;

	for (unsigned int i = 0; i < s->n; i++)
		if (strcmp(s->fs[i].mnt, mnt) == 0)
			return 0;

	n = realloc(s->fs, (s->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	s->fs = n;

	n = &s->fs[s->n];
	*n = (struct emu_scratch_fs){
		.mnt = strdup(mnt),
		.dev = dev ? strdup(dev) : NULL,
		.fstype = fstype ? strdup(fstype) : NULL,
	};
	if (!n->mnt)
		return -ENOMEM;
	s->n++;
	return 0;
}

int emu_scratch_load(struct emu_scratch **ret)
{
	struct emu_scratch *s;
	const char *env;
	FILE *f;
	int r = 0;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;

	f = fopen(SCRATCH_LIST, "re");
	if (f) {
		char line[1024];

		while (r == 0 && fgets(line, sizeof(line), f)) {
			char mnt[512], dev[256], type[64];
			int n;

			if (line[0] == '#')
				continue;

			n = sscanf(line, "%511s %255s %63s", mnt, dev, type);
			if (n >= 1 && mnt[0] == '/')
				r = scratch_add(s, mnt, n >= 2 ? dev : NULL,
						n >= 3 ? type : NULL);
		}
		fclose(f);
	}

	env = getenv("HV_SCRATCH");
	if (r == 0 && s->n == 0 && env) {
		char *copy = strdup(env), *save = NULL;

		if (!copy)
			r = -ENOMEM;
		for (char *t = copy ? strtok_r(copy, " \t\n", &save) : NULL;
		     t && r == 0; t = strtok_r(NULL, " \t\n", &save))
			if (t[0] == '/')
				r = scratch_add(s, t, NULL, NULL);
		free(copy);
	}

	if (r < 0) {
		emu_scratch_free(s);
		return r;
	}

	*ret = s;
	return 0;
}

struct emu_scratch *emu_scratch_free(struct emu_scratch *s)
{
	if (!s)
		return NULL;

	for (unsigned int i = 0; i < s->n; i++) {
		free(s->fs[i].mnt);
		free(s->fs[i].dev);
		free(s->fs[i].fstype);
	}
	free(s->fs);
	free(s);
	return NULL;
}

/* Undo the octal escapes of /proc/self/mountinfo (\040 etc.) in place. */
static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

static bool is_disk_fstype(const char *t)
{
	static const char *const disk[] = {
		"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "vfat", "msdos",
		"exfat", "ntfs", "ntfs3", "jfs", "reiserfs", "zfs", "bcachefs",
		"nilfs2", "hfs", "hfsplus", "udf", "iso9660", "erofs", "squashfs",
		"gfs2", "ocfs2", "fuseblk",
	};

	for (size_t i = 0; i < sizeof(disk) / sizeof(disk[0]); i++)
		if (strcmp(t, disk[i]) == 0)
			return true;
	return false;
}

static void append(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void append(char *why, size_t len, const char *fmt, ...)
{
	size_t used = strlen(why);
	va_list ap;

	if (used + 1 >= len)
		return;

	va_start(ap, fmt);
	vsnprintf(why + used, len - used, fmt, ap);
	va_end(ap);
}

int emu_sandbox_check(const struct emu_scratch *s, char *why, size_t why_len)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	unsigned int bad = 0, seen = 0;

	why[0] = '\0';

	if (!s || s->n == 0) {
		snprintf(why, why_len,
			 "no scratch file systems (%s, $HV_SCRATCH): not inside hv-sandbox",
			 SCRATCH_LIST);
		return -EPERM;
	}

	f = fopen("/proc/self/mountinfo", "re");
	if (!f) {
		snprintf(why, why_len, "cannot read /proc/self/mountinfo: %s",
			 strerror(errno));
		return -EPERM;
	}

	while (getline(&line, &cap, f) > 0) {
		char mnt[4096], fstype[256], source[4096];
		unsigned int major, minor;
		bool scratch = false, block;
		char *sep;

		/* id parent major:minor root mountpoint opts [optional...] - fstype source superopts */
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &major, &minor, mnt) != 3)
			continue;
		sep = strstr(line, " - ");
		if (!sep || sscanf(sep + 3, "%255s %4095s", fstype, source) != 2)
			continue;

		unescape(mnt);
		unescape(source);

		for (unsigned int i = 0; i < s->n; i++)
			if (strcmp(s->fs[i].mnt, mnt) == 0)
				scratch = true;

		if (scratch) {
			if (strcmp(mnt, "/") == 0) {
				append(why, why_len, "scratch list names the root '%s'; ", mnt);
				bad++;
			}
			seen++;
			continue;
		}

		/* what a freezing daemon would consider: /dev/ sources, real devices, disk types */
		block = strncmp(source, "/dev/", 5) == 0 || major != 0 ||
			is_disk_fstype(fstype);
		if (block) {
			append(why, why_len, "%s (%s on %s) is block-backed and not a scratch fs; ",
			       mnt, fstype, source);
			bad++;
		}
	}
	free(line);
	fclose(f);

	if (seen == 0) {
		append(why, why_len, "none of the scratch file systems is mounted; ");
		bad++;
	}

	return bad ? -EPERM : 0;
}

int emu_scratch_ioctl(struct emu_scratch *s, unsigned int i, bool freeze)
{
	int fd, r = 0;

	if (i >= s->n)
		return -ENOENT;

	fd = open(s->fs[i].mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;

	if (ioctl(fd, freeze ? FIFREEZE : FITHAW, 0) < 0)
		r = -errno;
	close(fd);

	if (r == 0)
		s->fs[i].foreign_frozen = freeze;
	return r;
}

/* ---- probes ------------------------------------------------------------- */

struct probe_arg {
	struct emu_probes *p;
	struct emu_probe *probe;
};

static void *probe_thread(void *arg)
{
	struct probe_arg *a = arg;
	struct emu_probes *p = a->p;
	struct emu_probe *probe = a->probe;
	static const char data[] = "hv-emu probe write\n";
	int fd, err = 0;

	free(a);

	fd = open(probe->path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		err = errno;
	} else {
		ssize_t n = write(fd, data, sizeof(data) - 1);

		if (n < 0)
			err = errno;
		else if ((size_t)n != sizeof(data) - 1)
			err = EIO;
		if (close(fd) < 0 && !err)
			err = errno;
	}

	pthread_mutex_lock(&p->lock);
	probe->err = err;
	probe->done_ns = emu_now_ns();
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void emu_probes_init(struct emu_probes *p)
{
	pthread_condattr_t ca;

	*p = (struct emu_probes){ .list = NULL };
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
}

void emu_probes_done(struct emu_probes *p)
{
	pthread_mutex_lock(&p->lock);
	for (unsigned int i = 0; i < p->n; i++) {
		if (!p->list[i]->done_ns)
			continue; /* still used by a blocked thread */
		free(p->list[i]->path);
		free(p->list[i]);
	}
	free(p->list);
	p->list = NULL;
	p->n = p->cap = 0;
	pthread_mutex_unlock(&p->lock);
}

int emu_probe_start(struct emu_probes *p, const struct emu_scratch *s,
		    unsigned int fs, struct emu_probe **ret)
{
	struct emu_probe *probe;
	struct probe_arg *a;
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t th;
	int r;

	if (fs >= s->n)
		return -ENOENT;

	probe = calloc(1, sizeof(*probe));
	a = calloc(1, sizeof(*a));
	if (!probe || !a || asprintf(&probe->path, "%s/%s", s->fs[fs].mnt, PROBE_NAME) < 0) {
		free(probe);
		free(a);
		return -ENOMEM;
	}
	probe->fs = fs;

	pthread_mutex_lock(&p->lock);
	if (p->n == p->cap) {
		unsigned int cap = p->cap ? p->cap * 2 : 16;
		struct emu_probe **n = realloc(p->list, cap * sizeof(*n));

		if (!n) {
			pthread_mutex_unlock(&p->lock);
			free(probe->path);
			free(probe);
			free(a);
			return -ENOMEM;
		}
		p->list = n;
		p->cap = cap;
	}
	p->list[p->n++] = probe;
	probe->start_ns = emu_now_ns();
	pthread_mutex_unlock(&p->lock);

	a->p = p;
	a->probe = probe;

	/* detached: a writer on a frozen fs may block for as long as it stays frozen */
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&th, &attr, probe_thread, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);

	if (r != 0) {
		pthread_mutex_lock(&p->lock);
		probe->err = r;
		probe->done_ns = emu_now_ns();
		pthread_mutex_unlock(&p->lock);
		free(a);
		return -r;
	}

	*ret = probe;
	return 0;
}

unsigned int emu_probes_wait(struct emu_probes *p, struct emu_probe *const *set,
			     unsigned int n, uint64_t until_ns)
{
	unsigned int done;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct timespec ts;
		uint64_t slice;

		done = 0;
		for (unsigned int i = 0; i < n; i++)
			if (set[i]->done_ns)
				done++;

		if (done == n || emu_now_ns() >= until_ns)
			break;

		/* bounded slices, so that a caller's ^C is noticed soon */
		slice = emu_now_ns() + 50 * EMU_NSEC_PER_MSEC;
		emu_ns_to_timespec(slice < until_ns ? slice : until_ns, &ts);
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	}
	pthread_mutex_unlock(&p->lock);
	return done;
}

void emu_probe_get(struct emu_probes *p, const struct emu_probe *probe,
		   struct emu_probe *ret)
{
	pthread_mutex_lock(&p->lock);
	*ret = *probe;
	pthread_mutex_unlock(&p->lock);
}

unsigned int emu_probes_pending(struct emu_probes *p)
{
	unsigned int n = 0;

	pthread_mutex_lock(&p->lock);
	for (unsigned int i = 0; i < p->n; i++)
		if (!p->list[i]->done_ns)
			n++;
	pthread_mutex_unlock(&p->lock);
	return n;
}
