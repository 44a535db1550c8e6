/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The thaw's scheduling boost: whatever it could do, the thread is put back
 * exactly as it was (policy, RESET_ON_FORK flag, priority, nice), and a
 * thread that is real-time already is left alone. Runs on the test thread
 * itself, for a moment only.
 */
#include <errno.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "hv-sched-boost.h"

typedef struct sched_now {
	int policy;
	int priority;
	int nice;
} sched_now;

static sched_now now(void)
{
	struct sched_param p;
	sched_now s;

	s.policy = sched_getscheduler(0);
	assert_true(s.policy >= 0);
	assert_int_equal(sched_getparam(0, &p), 0);
	s.priority = p.sched_priority;
	errno = 0;
	s.nice = getpriority(PRIO_PROCESS, 0);
	assert_int_equal(errno, 0);
	return s;
}

static void assert_same(sched_now a, sched_now b)
{
	assert_int_equal(a.policy, b.policy);
	assert_int_equal(a.priority, b.priority);
	assert_int_equal(a.nice, b.nice);
}

static void test_begin_end_restores(void **state)
{
	sched_now before = now(), during;
	hv_sched_boost b;
	hv_sched_boost_kind kind = hv_sched_boost_begin(&b);

	during = now();
	switch (kind) {
	case HV_SCHED_BOOST_FIFO:
		assert_int_equal(during.policy, SCHED_FIFO | SCHED_RESET_ON_FORK);
		assert_int_equal(during.priority, sched_get_priority_min(SCHED_FIFO));
		assert_int_equal(b.error, 0);
		break;
	case HV_SCHED_BOOST_NICE:
		assert_int_equal(during.policy, before.policy);
		assert_int_equal(during.nice, -20);
		assert_true(b.error < 0);
		break;
	case HV_SCHED_BOOST_NONE:
		assert_same(before, during);
		break;
	}

	hv_sched_boost_end(&b);
	assert_same(before, now());
	assert_int_equal(b.kind, kind);
	/* twice is harmless */
	hv_sched_boost_end(&b);
	assert_same(before, now());
	assert_string_equal(hv_sched_boost_kind_to_string(kind),
			    kind == HV_SCHED_BOOST_FIFO	  ? "SCHED_FIFO"
			    : kind == HV_SCHED_BOOST_NICE ? "nice -20"
							  : "none");
}

/* A thread that runs real-time already keeps its own policy and priority. */
static void test_realtime_left_alone(void **state)
{
	struct sched_param rr = { .sched_priority = 3 }, other = { .sched_priority = 0 };
	sched_now before;
	hv_sched_boost b;

	if (sched_setscheduler(0, SCHED_RR, &rr) < 0)
		skip(); /* not allowed here: nothing to test */

	before = now();
	assert_int_equal(hv_sched_boost_begin(&b), HV_SCHED_BOOST_NONE);
	assert_same(before, now());
	hv_sched_boost_end(&b);
	assert_same(before, now());
	assert_int_equal(sched_setscheduler(0, SCHED_OTHER, &other), 0);
}

/* SCHED_OTHER with RESET_ON_FORK set gets its flag back, and is boosted. */
static void test_reset_on_fork_kept(void **state)
{
	struct sched_param other = { .sched_priority = 0 };
	sched_now before;
	hv_sched_boost b;

	assert_int_equal(sched_setscheduler(0, SCHED_OTHER | SCHED_RESET_ON_FORK, &other), 0);
	before = now();
	assert_int_equal(before.policy, SCHED_OTHER | SCHED_RESET_ON_FORK);
	hv_sched_boost_begin(&b);
	hv_sched_boost_end(&b);
	assert_same(before, now());
	assert_int_equal(sched_setscheduler(0, SCHED_OTHER, &other), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_begin_end_restores),
		cmocka_unit_test(test_realtime_left_alone),
		cmocka_unit_test(test_reset_on_fork_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
