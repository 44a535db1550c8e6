/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A short scheduling boost of the calling thread, for the few hundred
 * microseconds between the host's THAW and our reply. Each FITHAW wakes the
 * writers that were blocked on that file system; without a boost they
 * preempt the thawing thread, so the last file system is thawed (and the
 * host answered) only after every woken writer had its turn (measured: the
 * thaw loop needs 0.5-1 ms of CPU for 16 file systems but took 1-10 ms of
 * wall time; with SCHED_FIFO it took what it costs in CPU).
 */
#pragma once

#include <sched.h>
#include <stdbool.h>

typedef enum hv_sched_boost_kind {
	HV_SCHED_BOOST_NONE,  /* not permitted, or the thread was real-time already */
	HV_SCHED_BOOST_FIFO,  /* SCHED_FIFO, lowest priority, reset on fork */
	HV_SCHED_BOOST_NICE,  /* SCHED_FIFO refused (e.g. RestrictRealtime=): nice -20 */
} hv_sched_boost_kind;

typedef struct hv_sched_boost {
	hv_sched_boost_kind kind;
	int policy;           /* what to go back to */
	struct sched_param param;
	int nice;
	int error;            /* -errno of the SCHED_FIFO attempt, 0 when it worked */
	bool ended;
} hv_sched_boost;

/* Boosts the calling thread; never fails (kind NONE when nothing was allowed). */
hv_sched_boost_kind hv_sched_boost_begin(hv_sched_boost *b);
/* Puts the calling thread back as it was before hv_sched_boost_begin(@b); @b keeps ->kind. */
void hv_sched_boost_end(hv_sched_boost *b);
const char *hv_sched_boost_kind_to_string(hv_sched_boost_kind kind);
