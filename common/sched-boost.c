/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "hv-sched-boost.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

/* On Linux both calls act on the calling thread (pid 0), not the whole process. */

hv_sched_boost_kind hv_sched_boost_begin(hv_sched_boost *b)
{
	struct sched_param fifo = { .sched_priority = sched_get_priority_min(SCHED_FIFO) };
	int nice, policy;

	memset(b, 0, sizeof(*b));
	b->policy = sched_getscheduler(0);
	if (b->policy < 0 || sched_getparam(0, &b->param) < 0) {
		b->error = -errno;
		return b->kind = HV_SCHED_BOOST_NONE;
	}

	/* Real-time already (an administrator's choice): leave it alone. */
	policy = b->policy & ~SCHED_RESET_ON_FORK;
	if (policy != SCHED_OTHER && policy != SCHED_BATCH && policy != SCHED_IDLE)
		return b->kind = HV_SCHED_BOOST_NONE;

	/* Hooks spawned while boosted (there are none) would not inherit it. */
	if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &fifo) == 0)
		return b->kind = HV_SCHED_BOOST_FIFO;

	b->error = -errno;
	errno = 0;
	nice = getpriority(PRIO_PROCESS, 0);
	if (nice == -1 && errno != 0)
		return b->kind = HV_SCHED_BOOST_NONE;

	b->nice = nice;
	if (nice > -20 && setpriority(PRIO_PROCESS, 0, -20) == 0)
		return b->kind = HV_SCHED_BOOST_NICE;

	return b->kind = HV_SCHED_BOOST_NONE;
}

void hv_sched_boost_end(hv_sched_boost *b)
{
	if (b->ended)
		return;

	switch (b->kind) {
	case HV_SCHED_BOOST_FIFO:
		/* Back to the policy (with its RESET_ON_FORK flag) and parameters we found. */
		(void)sched_setscheduler(0, b->policy, &b->param);
		break;
	case HV_SCHED_BOOST_NICE:
		(void)setpriority(PRIO_PROCESS, 0, b->nice);
		break;
	case HV_SCHED_BOOST_NONE:
		break;
	}

	/* ->kind stays for the caller's log line; a second call changes nothing. */
	b->ended = true;
}

const char *hv_sched_boost_kind_to_string(hv_sched_boost_kind kind)
{
	switch (kind) {
	case HV_SCHED_BOOST_FIFO:
		return "SCHED_FIFO";
	case HV_SCHED_BOOST_NICE:
		return "nice -20";
	case HV_SCHED_BOOST_NONE:
		break;
	}

	return "none";
}
