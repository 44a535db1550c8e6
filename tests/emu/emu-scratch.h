/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The scratch file systems of the sandbox (tests/emu/hv-sandbox): their
 * list, the check that nothing else block-backed is visible (so that a
 * daemon freezing "every file system" can only freeze these), probe
 * writers that show whether a file system is frozen, and FIFREEZE/FITHAW
 * done by the emulator itself.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct emu_scratch_fs {
	char *mnt;
	char *dev;    /* may be NULL when only $HV_SCRATCH named it */
	char *fstype; /* may be NULL */
	bool foreign_frozen;
};

struct emu_scratch {
	struct emu_scratch_fs *fs;
	unsigned int n;
};

/* /etc/hv-scratch ("MOUNTPOINT DEVICE FSTYPE" lines), else $HV_SCRATCH. */
int emu_scratch_load(struct emu_scratch **ret);
struct emu_scratch *emu_scratch_free(struct emu_scratch *s);

/*
 * 0 when every block-backed mount in /proc/self/mountinfo is one of the
 * scratch file systems and the root is not block-backed; -EPERM otherwise,
 * with the offending mounts described in why.
 */
int emu_sandbox_check(const struct emu_scratch *s, char *why, size_t why_len);

/* FIFREEZE (freeze=true) or FITHAW on scratch file system i: 0 or -errno. */
int emu_scratch_ioctl(struct emu_scratch *s, unsigned int i, bool freeze);

/* One writer: open(O_CREAT|O_WRONLY)+write+close of <mnt>/.hv-emu-probe. */
struct emu_probe {
	unsigned int fs;
	char *path;
	uint64_t start_ns;
	uint64_t done_ns; /* 0 while blocked */
	int err;          /* errno of a failed open/write/close */
};

struct emu_probes {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct emu_probe **list;
	unsigned int n, cap;
};

void emu_probes_init(struct emu_probes *p);
/* Frees finished probes; blocked ones are left to their threads (leaked). */
void emu_probes_done(struct emu_probes *p);
int emu_probe_start(struct emu_probes *p, const struct emu_scratch *s,
		    unsigned int fs, struct emu_probe **ret);
/* Wait until every probe in set is done or until_ns passes; returns how many are done. */
unsigned int emu_probes_wait(struct emu_probes *p, struct emu_probe *const *set,
			     unsigned int n, uint64_t until_ns);
/* Copy of a probe's state under the lock. */
void emu_probe_get(struct emu_probes *p, const struct emu_probe *probe,
		   struct emu_probe *ret);
/* Number of probes still blocked. */
unsigned int emu_probes_pending(struct emu_probes *p);
