/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Freeze executor: a handle that owns the frozen file systems. Freeing the
 * handle thaws whatever it still holds frozen.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "hv-freeze-plan.h"

typedef enum hv_freeze_result {
	HV_FREEZE_FROZEN,        /* frozen by us */
	HV_FREEZE_UNSUPPORTED,   /* EOPNOTSUPP: cannot be frozen, skipped */
	HV_FREEZE_GONE,          /* unmounted since the plan (ENOENT...), skipped */
	HV_FREEZE_FOREIGN,       /* EBUSY: already frozen by somebody else */
	HV_FREEZE_FAILED,        /* any other error */
	HV_FREEZE_NOT_TRIED,     /* the freeze stopped before reaching it */
	HV_FREEZE_THAWED,        /* was frozen by us, thawed since */
	_HV_FREEZE_RESULT_MAX,
} hv_freeze_result;

const char *hv_freeze_result_to_string(hv_freeze_result result);

typedef struct hv_freeze_entry {
	char *mountpoint;
	char *fstype;
	hv_freeze_result result;
	int error;               /* -errno of the failed step, 0 otherwise */
	unsigned int wave;
	gint64 freeze_us;        /* how long its FIFREEZE took (CLOCK_MONOTONIC) */
	gint64 thaw_us;          /* how long its FITHAW took */
} hv_freeze_entry;

typedef struct hv_freeze_options {
	bool preflush;           /* syncfs() every target in parallel before the first freeze */
	bool parallel_freeze;    /* FIFREEZE the targets of a wave at the same time */
	bool foreign_is_error;   /* EBUSY fails the freeze (default true) */
	const char *marker_path; /* NULL: no marker */
} hv_freeze_options;

/* The defaults, also what a NULL @options to hv_freeze_execute() means. */
#define HV_FREEZE_OPTIONS_INIT                                                             \
	{ .preflush = true, .parallel_freeze = true, .foreign_is_error = true, .marker_path = NULL }

typedef struct hv_freeze hv_freeze;

/*
 * Opens every target of @plan, then freezes them wave by wave in plan order
 * (with options->parallel_freeze, the targets of one wave at the same time,
 * by up to 16 threads; the first error stops the others from starting
 * theirs). On success,
 * *ret owns the frozen file systems. On failure, everything frozen so far is
 * thawed again, *ret is still set (when not NULL) so that the caller can
 * report per-entry results, and the first error is returned.
 *
 * With options->marker_path set, the marker is created with O_EXCL: an
 * existing marker (a freeze nobody recovered) fails with -EEXIST before
 * anything is frozen; call hv_freeze_marker_recover() first. Its directory
 * must exist. The handle closes the fd of every entry that is not frozen
 * (so that nothing pins a mount once thawed).
 */
int hv_freeze_execute(const hv_freeze_plan *plan, const hv_freeze_options *options,
		      hv_freeze **ret);

/*
 * Thaws what is frozen, in reverse order, every entry even after a failure;
 * then closes the fds of the thawed entries and updates the marker (removed
 * once nothing is frozen). Same as hv_freeze_thaw_now() + hv_freeze_settle().
 */
int hv_freeze_thaw(hv_freeze *freeze);

/*
 * For a caller that answers somebody as soon as everything is thawed: only
 * the FITHAW calls, back to back (results in the entries, first error
 * returned). The fds stay open and the marker still names the thawed file
 * systems (recovery skips what is not frozen) until hv_freeze_settle(),
 * hv_freeze_thaw() or hv_freeze_free().
 */
int hv_freeze_thaw_now(hv_freeze *freeze);
void hv_freeze_settle(hv_freeze *freeze);

bool hv_freeze_is_frozen(const hv_freeze *freeze);
unsigned int hv_freeze_n_entries(const hv_freeze *freeze);
const hv_freeze_entry *hv_freeze_get_entry(const hv_freeze *freeze, unsigned int i);

/* Thaws if needed, then frees. NULL-safe. */
void hv_freeze_free(hv_freeze *freeze);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_freeze, hv_freeze_free)

/*
 * Marker of what we froze, in a tmpfs (/run). Written before the first
 * FIFREEZE, removed after the last FITHAW. hv_freeze_marker_recover() thaws
 * what a marker left by a dead daemon lists; it returns the number of file
 * systems it thawed or -errno.
 */
int hv_freeze_marker_recover(const char *marker_path);

/*
 * FITHAW of whatever is mounted at @path, frozen by anybody (for an
 * administrator's emergency thaw). 1 when it was frozen and is thawed now,
 * 0 when it was not frozen or is gone, -errno otherwise.
 */
int hv_thaw_mountpoint(const char *path);

/*
 * Guard process: forked at start-up, before anything is frozen. It holds
 * nothing but a pipe; when the daemon dies (even by SIGKILL) it sees EOF,
 * and if the marker still exists it thaws what it lists and removes it.
 */
typedef struct hv_freeze_guard hv_freeze_guard;
/*
 * Must be called while the process has a single thread (before the main
 * loop, GTask, g_spawn or anything else that starts threads) and early, so
 * that the child is a small copy: it forks without exec. The pipe end kept
 * by the daemon is O_CLOEXEC, so spawned hooks do not hold the guard up.
 * The guard ignores SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGPIPE and the terminal
 * stop signals; only SIGKILL or the daemon going away ends it.
 */
int hv_freeze_guard_start(const char *marker_path, hv_freeze_guard **ret);
pid_t hv_freeze_guard_get_pid(const hv_freeze_guard *guard);
/*
 * Closes the pipe and reaps the guard. Like any EOF, this makes the guard
 * recover the marker if one is left (there is none after a clean thaw, so
 * then it thaws nothing). NULL-safe.
 */
void hv_freeze_guard_free(hv_freeze_guard *guard);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_freeze_guard, hv_freeze_guard_free)

/*
 * Internal to common/freeze*.c: the marker writer, next to its reader in
 * freeze-marker.c, which documents the format.
 */
typedef enum hv_freeze_mark {
	HV_FREEZE_MARK_OURS = 'F',     /* may be frozen by us: written before FIFREEZE */
	HV_FREEZE_MARK_NOT_OURS = 'N', /* its FIFREEZE did not freeze it (EBUSY, error, not tried) */
	HV_FREEZE_MARK_THAWED = 'T',   /* thawed by us */
} hv_freeze_mark;

/* Creates the marker (O_EXCL) and writes its header; returns the fd or -errno. */
int hv_freeze_marker_create(const char *marker_path);
/* Appends one line to @buf; @dev 0 means unknown. */
void hv_freeze_marker_add(GString *buf, hv_freeze_mark mark, dev_t dev, const char *path);
/* Appends @buf to the marker in as few write()s as possible; 0 or -errno. */
int hv_freeze_marker_write(int marker_fd, const GString *buf);
